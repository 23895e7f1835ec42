/*
 * 16 threads hammering a pool of 5 for a few seconds: no connection is ever
 * held by two threads at once (checked by an ownership table and by backend
 * pid uniqueness among holders), nobody deadlocks, the counters balance, and
 * no backend outlives the pool. Some iterations misbehave on purpose (leave
 * a transaction open, abort one) to drive the slow release path concurrently.
 */
#include "pool_helpers.h"

#include <stdatomic.h>

enum { THREADS = 16, POOL = 5, RUN_MS = 2500 };

typedef struct shared {
    pgetl_pool *pool;
    pthread_mutex_t mu;
    pgetl_conn *held[THREADS]; /* what each thread holds now */
    int pid[THREADS];          /* backend pid it saw, 0 when unknown */
    atomic_int failures;
    atomic_int stop;
    atomic_llong acquires;
    atomic_llong queries;
    atomic_llong bad_returns;
    char first_error[PGETL_ERROR_MESSAGE_SIZE + 64];
} shared;

typedef struct worker {
    shared *sh;
    int id;
} worker;

static void record_failure(shared *sh, const char *what) {
    pthread_mutex_lock(&sh->mu);
    if (!sh->first_error[0])
        snprintf(sh->first_error, sizeof sh->first_error, "%s", what);
    pthread_mutex_unlock(&sh->mu);
    atomic_fetch_add(&sh->failures, 1);
}

/* Claims conn for thread id; fails if any other thread holds it (or the
 * same backend pid). */
static void claim(shared *sh, int id, pgetl_conn *conn, int pid) {
    pthread_mutex_lock(&sh->mu);
    for (int i = 0; i < THREADS; i++) {
        if (i == id)
            continue;
        if (sh->held[i] == conn || (pid && sh->pid[i] == pid)) {
            pthread_mutex_unlock(&sh->mu);
            record_failure(sh, "one connection handed to two callers");
            pthread_mutex_lock(&sh->mu);
        }
    }
    sh->held[id] = conn;
    sh->pid[id] = pid;
    pthread_mutex_unlock(&sh->mu);
}

static void unclaim(shared *sh, int id) {
    pthread_mutex_lock(&sh->mu);
    sh->held[id] = NULL;
    sh->pid[id] = 0;
    pthread_mutex_unlock(&sh->mu);
}

static int backend_pid(pgetl_conn *c) {
    PGresult *r = PQexec(pgetl_conn_pg(c), "SELECT pg_backend_pid()");
    int pid = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return pid;
}

static void *worker_main(void *p) {
    worker *w = p;
    shared *sh = w->sh;
    unsigned seed = (unsigned)w->id * 2654435761u;
    for (long it = 0; !atomic_load(&sh->stop); it++) {
        pgetl_conn *c = NULL;
        pgetl_error err;
        pgetl_code rc = pgetl_pool_acquire(sh->pool, &c, &err);
        if (rc != PGETL_OK) {
            record_failure(sh, err.message);
            continue;
        }
        atomic_fetch_add(&sh->acquires, 1);
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 100;
        int pid = 0;
        if (r < 10) {
            pid = backend_pid(c);
            if (!pid)
                record_failure(sh, "query on a pooled connection failed");
            atomic_fetch_add(&sh->queries, 1);
        }
        claim(sh, w->id, c, pid);
        if (r == 10) {
            /* Caller bug on purpose: left inside a transaction. */
            PQclear(PQexec(pgetl_conn_pg(c), "BEGIN"));
            atomic_fetch_add(&sh->bad_returns, 1);
        } else if (r == 11) {
            PQclear(PQexec(pgetl_conn_pg(c), "BEGIN"));
            PQclear(PQexec(pgetl_conn_pg(c), "SELECT 1/0"));
            atomic_fetch_add(&sh->bad_returns, 1);
        }
        if (pgetl_conn_txn_state(c) == PGETL_TXN_ACTIVE)
            record_failure(sh, "connection handed out busy");
        unclaim(sh, w->id);
        pgetl_pool_release(sh->pool, c);
    }
    return NULL;
}

static void sixteen_threads_pool_of_five(void **state) {
    (void)state;
    char app[64];
    ph_app("stress", app, sizeof app);
    pgetl_config cfg = ph_config(app, 2, POOL);
    cfg.acquire_timeout_s = 20;
    PGconn *pg = harness_pq();
    static shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.mu, NULL);
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &sh.pool, &err), &err);
    harness_log_capture(PGETL_LOG_ERROR); /* the deliberate caller bugs warn */

    worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){&sh, i};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    int max_backends = 0;
    for (double end = ph_now() + RUN_MS / 1000.0; ph_now() < end;) {
        int n = (int)ph_backends_on(pg, app);
        if (n > max_backends)
            max_backends = n;
        pgetl_pool_stats st;
        pgetl_pool_get_stats(sh.pool, &st);
        assert_true(st.in_use <= POOL);
        assert_true(st.in_use + st.idle <= POOL);
        ph_sleep_ms(50);
    }
    atomic_store(&sh.stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    harness_log_restore();

    if (atomic_load(&sh.failures))
        fail_msg("%d failures, first: %s", atomic_load(&sh.failures), sh.first_error);
    assert_true(max_backends <= POOL);

    pgetl_pool_stats st;
    pgetl_pool_get_stats(sh.pool, &st);
    long long acquires = atomic_load(&sh.acquires);
    print_message("acquires=%lld queries=%lld bad=%lld opened=%lld closed=%lld wait=%.2fs\n",
                  acquires, (long long)atomic_load(&sh.queries),
                  (long long)atomic_load(&sh.bad_returns), (long long)st.opened,
                  (long long)st.closed, st.wait_seconds);
    assert_true(acquires > 1000);
    assert_int_equal(st.acquired, acquires);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.timeouts, 0);
    assert_int_equal(st.returned_bad, atomic_load(&sh.bad_returns));
    assert_int_equal(st.idle, st.opened - st.closed);
    assert_true(st.opened <= POOL + st.closed);
    assert_true(st.opened >= 2);

    pgetl_pool_destroy(sh.pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    pthread_mutex_destroy(&sh.mu);
    PQfinish(pg);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sixteen_threads_pool_of_five),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
