/*
 * The default session from 16 threads: create/use/close races. Every call
 * either works or reports PGETL_ECLOSED (its handle's session was closed
 * underneath it); nothing crashes, nothing is freed under a user, and every
 * committed transaction is in the table. Runs under ThreadSanitizer in CI
 * (the file name holds "pool", so `ctest -L pool` picks it up).
 */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

#define THREADS 16
#define ITERS 40

static pgetl_config cfg;
static atomic_int committed, closed_seen, closes, failures;
static char failure_text[1024];
static pthread_mutex_t failure_mu = PTHREAD_MUTEX_INITIALIZER;

static void note_failure(const char *what, pgetl_code rc, const pgetl_error *err) {
    atomic_fetch_add(&failures, 1);
    pthread_mutex_lock(&failure_mu);
    if (!failure_text[0]) {
        char buf[900];
        snprintf(failure_text, sizeof failure_text, "%s -> %s: %s", what, pgetl_code_name(rc),
                 pgetl_error_format(err, buf, sizeof buf));
    }
    pthread_mutex_unlock(&failure_mu);
}

typedef struct job {
    int thread, iter;
} job;

static pgetl_code fn_insert(pgetl_session *s, void *user, pgetl_error *err) {
    job *j = user;
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", j->thread);
    snprintf(b, sizeof b, "%d", j->iter);
    const char *p[] = {a, b};
    return pgetl_session_execute(s, "INSERT INTO pool_sess VALUES ($1::int, $2::int)", 2, p, NULL,
                                 err);
}

static pgetl_code fn_query(pgetl_session *s, void *user, pgetl_error *err) {
    (void)user;
    pgetl_result *res = NULL;
    pgetl_code rc = pgetl_session_query(s, "SELECT count(*) FROM pool_sess", 0, NULL, &res, err);
    if (rc != PGETL_OK)
        return rc;
    int64_t n = -1;
    rc = pgetl_result_get_int64(res, 0, 0, &n, err);
    pgetl_result_free(res);
    if (rc == PGETL_OK && n < 0)
        rc = pgetl_error_set(err, PGETL_EDATA, "negative count");
    return rc;
}

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < ITERS; i++) {
        pgetl_session *s = NULL;
        pgetl_error err;
        pgetl_code rc = pgetl_default_session(&cfg, &s, &err);
        if (rc != PGETL_OK) {
            note_failure("pgetl_default_session", rc, &err);
            continue;
        }
        job j = {.thread = t, .iter = i};
        rc = pgetl_session_transaction(s, fn_insert, &j, &err);
        if (rc == PGETL_OK)
            atomic_fetch_add(&committed, 1);
        else if (rc == PGETL_ECLOSED)
            atomic_fetch_add(&closed_seen, 1);
        else
            note_failure("transaction", rc, &err);
        /* Shared sessions do their work inside scopes: outside one, threads
         * would share the implicit transaction. */
        rc = pgetl_session_transaction(s, fn_query, NULL, &err);
        if (rc == PGETL_ECLOSED)
            atomic_fetch_add(&closed_seen, 1);
        else if (rc != PGETL_OK)
            note_failure("query", rc, &err);
        /* Every fourth thread closes the default session now and then. */
        if (t % 4 == 0 && i % 5 == 2) {
            pgetl_default_session_close();
            atomic_fetch_add(&closes, 1);
        }
        pgetl_default_session_release(s);
    }
    return NULL;
}

static void default_session_from_16_threads(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS pool_sess");
    harness_sql(pg, "CREATE TABLE pool_sess (t int, i int)");
    cfg = harness_config();
    cfg.pool_max = 8;
    cfg.acquire_timeout_s = 30;

    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    if (atomic_load(&failures))
        fail_msg("%d unexpected failures; first: %s", atomic_load(&failures), failure_text);
    assert_true(atomic_load(&closes) > 0);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pool_sess"), atomic_load(&committed));
    assert_true(atomic_load(&committed) > 0);

    /* After close, a held handle is ECLOSED, and the next call makes a new session. */
    pgetl_session *old = NULL, *fresh = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_default_session(&cfg, &old, &err), &err);
    pgetl_default_session_close();
    assert_int_equal(pgetl_session_execute(old, "SELECT 1", 0, NULL, NULL, &err), PGETL_ECLOSED);
    job j = {.thread = 99, .iter = 0};
    assert_int_equal(pgetl_session_transaction(old, fn_insert, &j, &err), PGETL_ECLOSED);
    assert_null(pgetl_session_conn(old));
    assert_pgetl_ok(pgetl_default_session(&cfg, &fresh, &err), &err);
    assert_ptr_not_equal(fresh, old);
    assert_pgetl_ok(pgetl_session_transaction(fresh, fn_insert, &j, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pool_sess WHERE t = 99"), 1);
    pgetl_default_session_release(old);
    pgetl_session_destroy(fresh); /* same as release for the default session */
    pgetl_default_session_close();
    pgetl_default_session_close(); /* no session: a no-op */
    pgetl_default_session_release(NULL);
    pgetl_shutdown();
    harness_sql(pg, "DROP TABLE pool_sess");
    PQfinish(pg);
}

static void *closer(void *arg) {
    (void)arg;
    pgetl_default_session_close();
    return NULL;
}

static void default_session_close_while_in_use(void **state) {
    (void)state;
    /* A close racing with a long call waits for it, then closes. */
    cfg = harness_config();
    pgetl_session *s = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_default_session(&cfg, &s, &err), &err);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, closer, NULL), 0);
    pgetl_code rc = pgetl_session_execute(s, "SELECT pg_sleep(0.3)", 0, NULL, NULL, &err);
    /* Either the call ran first (then it succeeded) or the close did (ECLOSED). */
    assert_true(rc == PGETL_OK || rc == PGETL_ECLOSED);
    pthread_join(th, NULL);
    assert_int_equal(pgetl_session_execute(s, "SELECT 1", 0, NULL, NULL, &err), PGETL_ECLOSED);
    pgetl_default_session_release(s);
    pgetl_shutdown();
}

static void default_session_from_pgetl_dsn(void **state) {
    (void)state;
    /* No config: the process configuration comes from $PGETL_DSN. */
    assert_int_equal(setenv("PGETL_DSN", harness_dsn(), 1), 0);
    pgetl_session *s = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_default_session(NULL, &s, &err), &err);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_session_query(s, "SELECT current_database()", 0, NULL, &res, &err), &err);
    assert_string_equal(pgetl_result_get(res, 0, 0, NULL), "pgetl_" PGETL_TEST_NAME);
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_session_rollback(s, &err), &err);
    pgetl_default_session_close();
    pgetl_default_session_release(s);
    pgetl_shutdown();
    unsetenv("PGETL_DSN");
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_session_from_16_threads),
        cmocka_unit_test(default_session_close_while_in_use),
        cmocka_unit_test(default_session_from_pgetl_dsn),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
