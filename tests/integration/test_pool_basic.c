/*
 * Pool basics against the shared cluster: opening min, growing to max,
 * "autocommit off", exhaustion (timeout text, max_waiters, FIFO), rollback on
 * release, misuse (double release, wrong pool, release after close/destroy)
 * and bad configurations.
 */
#include "pool_helpers.h"

#include "connect/connect.h"

#include <math.h>
#include <stdatomic.h>

static void opens_min_grows_to_max(void **state) {
    (void)state;
    char app[64];
    ph_app("grow", app, sizeof app);
    pgetl_config cfg = ph_config(app, 2, 4);
    cfg.acquire_timeout_s = 0.3;
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);

    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.idle, 2);
    assert_int_equal(ph_wait_backends(pg, app, 2), 2);

    pgetl_conn *c[4];
    int pids[4];
    for (int i = 0; i < 4; i++) {
        c[i] = ph_get(pool);
        pids[i] = (int)ph_conn_scalar(c[i], "SELECT pg_backend_pid()");
        for (int j = 0; j < i; j++)
            assert_int_not_equal(pids[i], pids[j]);
    }
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.opened, 4);
    assert_int_equal(st.in_use, 4);
    assert_int_equal(st.idle, 0);
    assert_int_equal(ph_wait_backends(pg, app, 4), 4);

    /* Never more than max. */
    pgetl_conn *extra = NULL;
    pgetl_error err;
    assert_int_equal(pgetl_pool_acquire(pool, &extra, &err), PGETL_ETIMEOUT);
    assert_null(extra);
    assert_int_equal(ph_backends_on(pg, app), 4);

    for (int i = 0; i < 4; i++)
        pgetl_pool_release(pool, c[i]);
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.idle, 4);
    assert_int_equal(st.acquired, 4);
    assert_int_equal(st.timeouts, 1);
    pgetl_pool_destroy(pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

static void min_zero_opens_on_demand(void **state) {
    (void)state;
    char app[64];
    ph_app("min0", app, sizeof app);
    pgetl_config cfg = ph_config(app, 0, 2);
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.opened, 0);
    assert_int_equal(ph_backends_on(pg, app), 0);
    pgetl_conn *c = ph_get(pool);
    assert_int_equal(ph_conn_scalar(c, "SELECT 1"), 1);
    pgetl_pool_release(pool, c);
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.idle, 1);
    pgetl_pool_destroy(pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

static void autocommit_off_caller_commits(void **state) {
    (void)state;
    char app[64];
    ph_app("txn", app, sizeof app);
    PGconn *pg = harness_pq();
    harness_sql(pg, "SET client_min_messages = warning; DROP TABLE IF EXISTS pool_txn; CREATE "
                    "TABLE pool_txn (v int)");
    pgetl_config cfg = ph_config(app, 1, 2);
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *c = ph_get(pool);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_IDLE);
    pgetl_error err;
    assert_pgetl_ok(pgetl_begin(c, &err), &err);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_INTRANS);
    ph_conn_exec(c, "INSERT INTO pool_txn VALUES (1)");
    /* Not visible to others until the caller commits. */
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pool_txn"), 0);
    assert_pgetl_ok(pgetl_commit(c, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pool_txn"), 1);
    pgetl_pool_release(pool, c);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.returned_bad, 0);
    pgetl_pool_destroy(pool);
    harness_sql(pg, "DROP TABLE pool_txn");
    PQfinish(pg);
}

static void rollback_on_release(void **state) {
    (void)state;
    char app[64];
    ph_app("rb", app, sizeof app);
    PGconn *pg = harness_pq();
    harness_sql(pg, "SET client_min_messages = warning; DROP TABLE IF EXISTS pool_rb; CREATE TABLE "
                    "pool_rb (v int)");
    pgetl_config cfg = ph_config(app, 1, 1);
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);

    pgetl_conn *c = ph_get(pool);
    int line = __LINE__ - 1;
    int pid = (int)ph_conn_scalar(c, "SELECT pg_backend_pid()");
    pgetl_error err;
    assert_pgetl_ok(pgetl_begin(c, &err), &err);
    ph_conn_exec(c, "INSERT INTO pool_rb VALUES (42)");
    pgetl_pool_release(pool, c); /* caller bug: never committed */
    assert_non_null(strstr(log->text, "event=pool_release_in_transaction"));
    assert_non_null(strstr(log->text, "rolling back"));
    char where[128];
    snprintf(where, sizeof where, "test_pool_basic.c:%d", line);
    assert_non_null(strstr(log->text, where));
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pool_rb"), 0);

    /* An aborted transaction too. */
    c = ph_get(pool);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_IDLE);
    assert_int_equal((int)ph_conn_scalar(c, "SELECT pg_backend_pid()"), pid); /* kept */
    assert_pgetl_ok(pgetl_begin(c, &err), &err);
    ph_conn_exec(c, "INSERT INTO pool_rb VALUES (7)");
    PQclear(PQexec(pgetl_conn_pg(c), "SELECT 1/0"));
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_INERROR);
    pgetl_pool_release(pool, c);
    assert_non_null(strstr(log->text, "in a failed transaction"));
    c = ph_get(pool);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_IDLE);
    assert_int_equal(ph_conn_scalar(c, "SELECT count(*) FROM pool_rb"), 0);
    pgetl_pool_release(pool, c);
    harness_log_restore();

    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.returned_bad, 2);
    assert_int_equal(st.opened, 1); /* rolled back and reused, not replaced */
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pool_rb"), 0);
    pgetl_pool_destroy(pool);
    harness_sql(pg, "DROP TABLE pool_rb");
    PQfinish(pg);
}

typedef struct detach_probe {
    pgetl_conn *conn;
    int calls;
    pgetl_txn_state state_seen;
} detach_probe;

static void on_detach(void *arg) {
    detach_probe *p = arg;
    p->calls++;
    p->state_seen = pgetl_conn_txn_state(p->conn);
}

/* A borrower (an Arrow stream) is detached before anything else happens to
 * the connection on release: before the rollback, exactly once. */
static void release_runs_detach_first(void **state) {
    (void)state;
    char app[64];
    ph_app("detach", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 1);
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log_capture(PGETL_LOG_ERROR);
    pgetl_conn *c = ph_get(pool);
    detach_probe probe = {.conn = c};
    pgetl_error err;
    assert_pgetl_ok(pgetl_begin(c, &err), &err);
    pgetl__conn_set_detach(c, on_detach, &probe);
    pgetl_pool_release(pool, c);
    assert_int_equal(probe.calls, 1);
    assert_int_equal(probe.state_seen, PGETL_TXN_INTRANS);
    /* An idle connection with a borrower: detached too, then reused. */
    c = ph_get(pool);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_IDLE);
    probe.conn = c;
    pgetl__conn_set_detach(c, on_detach, &probe);
    pgetl_pool_release(pool, c);
    assert_int_equal(probe.calls, 2);
    assert_int_equal(probe.state_seen, PGETL_TXN_IDLE);
    c = ph_get(pool);
    pgetl_pool_release(pool, c);
    assert_int_equal(probe.calls, 2); /* the hook was cleared */
    harness_log_restore();
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.returned_bad, 1);
    assert_int_equal(st.opened, 1);
    pgetl_pool_destroy(pool);
}

/* Given back with a query still running (results never read, or a COPY left
 * open): the connection is closed and replaced, never handed out busy. */
static void busy_conn_closed_on_release(void **state) {
    (void)state;
    char app[64];
    ph_app("busy", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 1);
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    pgetl_conn *c = ph_get(pool);
    int pid = (int)ph_conn_scalar(c, "SELECT pg_backend_pid()");
    assert_int_equal(PQsendQuery(pgetl_conn_pg(c), "SELECT pg_sleep(0.05)"), 1);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_ACTIVE);
    pgetl_pool_release(pool, c);
    assert_non_null(strstr(log->text, "with a command still running; closing it"));
    c = ph_get(pool);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_IDLE);
    assert_int_not_equal((int)ph_conn_scalar(c, "SELECT pg_backend_pid()"), pid);
    /* A COPY left open. */
    pid = (int)ph_conn_scalar(c, "SELECT pg_backend_pid()");
    PGresult *r = PQexec(pgetl_conn_pg(c), "COPY (SELECT 1) TO STDOUT");
    assert_int_equal(PQresultStatus(r), PGRES_COPY_OUT);
    PQclear(r);
    pgetl_pool_release(pool, c);
    c = ph_get(pool);
    assert_int_not_equal((int)ph_conn_scalar(c, "SELECT pg_backend_pid()"), pid);
    pgetl_pool_release(pool, c);
    harness_log_restore();
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.returned_bad, 2);
    assert_int_equal(st.opened, 3);
    assert_int_equal(st.closed, 2);
    pgetl_pool_destroy(pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

static void broken_conn_replaced(void **state) {
    (void)state;
    char app[64];
    ph_app("broken", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 1);
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log_capture(PGETL_LOG_ERROR); /* the warning is expected */
    pgetl_conn *c = ph_get(pool);
    int pid = (int)ph_conn_scalar(c, "SELECT pg_backend_pid()");
    /* The session ends itself while out with the caller. */
    PQclear(PQexec(pgetl_conn_pg(c), "SELECT pg_terminate_backend(pg_backend_pid())"));
    PQclear(PQexec(pgetl_conn_pg(c), "SELECT 1"));
    pgetl_pool_release(pool, c);
    harness_log_restore();
    c = ph_get(pool);
    assert_int_not_equal((int)ph_conn_scalar(c, "SELECT pg_backend_pid()"), pid);
    pgetl_pool_release(pool, c);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.returned_bad, 1);
    assert_int_equal(st.lost, 1);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.closed, 1);
    pgetl_pool_destroy(pool);
}

static void exhausted_timeout_message(void **state) {
    (void)state;
    char app[64];
    ph_app("exh", app, sizeof app);
    pgetl_config cfg = ph_config(app, 5, 5);
    cfg.acquire_timeout_s = 0.5;
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *c[5];
    for (int i = 0; i < 5; i++)
        c[i] = ph_get(pool);
    pgetl_conn *x = NULL;
    pgetl_error err;
    double t0 = ph_now();
    assert_int_equal(pgetl_pool_acquire(pool, &x, &err), PGETL_ETIMEOUT);
    double took = ph_now() - t0;
    assert_true(took >= 0.5);
    assert_true(took < 3.0);
    assert_null(x);
    assert_int_equal(err.code, PGETL_ETIMEOUT);
    assert_string_equal(err.message, "pool exhausted: waited 0.5 s, 5 of 5 in use");
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.waiting, 0);
    assert_true(st.wait_seconds >= 0.5);
    for (int i = 0; i < 5; i++)
        pgetl_pool_release(pool, c[i]);
    pgetl_pool_destroy(pool);

    /* Zero timeout: fails at once. */
    cfg.acquire_timeout_s = 0;
    ph_app("exh0", app, sizeof app);
    pool = ph_make_pool(&cfg);
    for (int i = 0; i < 5; i++)
        c[i] = ph_get(pool);
    t0 = ph_now();
    assert_int_equal(pgetl_pool_acquire(pool, &x, &err), PGETL_ETIMEOUT);
    assert_true(ph_now() - t0 < 0.5);
    assert_string_equal(err.message, "pool exhausted: waited 0.0 s, 5 of 5 in use");
    for (int i = 0; i < 5; i++)
        pgetl_pool_release(pool, c[i]);
    pgetl_pool_destroy(pool);
}

/* ---- waiters: FIFO, hand-off, max_waiters, close ----------------------------- */

typedef struct waiter_arg {
    pgetl_pool *pool;
    int id;
    atomic_int *order; /* next ticket */
    int ticket;        /* when this waiter got its connection */
    pgetl_code rc;
    pgetl_error err;
    double waited;
    int hold_ms;
} waiter_arg;

static void *waiter_main(void *p) {
    waiter_arg *a = p;
    pgetl_conn *c = NULL;
    double t0 = ph_now();
    a->rc = pgetl_pool_acquire(a->pool, &c, &a->err);
    a->waited = ph_now() - t0;
    if (a->rc == PGETL_OK) {
        a->ticket = atomic_fetch_add(a->order, 1);
        ph_sleep_ms(a->hold_ms);
        pgetl_pool_release(a->pool, c);
    }
    return NULL;
}

static void wait_for_waiters(pgetl_pool *pool, int n) {
    PH_WAIT_STAT(pool, waiting, n);
}

static void waiters_served_fifo(void **state) {
    (void)state;
    char app[64];
    ph_app("fifo", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 1);
    cfg.acquire_timeout_s = 10;
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *held = ph_get(pool);
    atomic_int order = 0;
    enum { N = 4 };
    waiter_arg a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (waiter_arg){.pool = pool, .id = i, .order = &order, .hold_ms = 20};
        pthread_create(&t[i], NULL, waiter_main, &a[i]);
        wait_for_waiters(pool, i + 1); /* queue them in a known order */
    }
    pgetl_pool_release(pool, held);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].rc, PGETL_OK);
        assert_int_equal(a[i].ticket, i);
    }
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.acquired, N + 1);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.in_use, 0);
    pgetl_pool_destroy(pool);
}

static void max_waiters_rejects_at_once(void **state) {
    (void)state;
    char app[64];
    ph_app("maxw", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 1);
    cfg.acquire_timeout_s = 10;
    cfg.max_waiters = 2;
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *held = ph_get(pool);
    atomic_int order = 0;
    waiter_arg a[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (waiter_arg){.pool = pool, .id = i, .order = &order, .hold_ms = 1};
        pthread_create(&t[i], NULL, waiter_main, &a[i]);
        wait_for_waiters(pool, i + 1);
    }
    pgetl_conn *x = NULL;
    pgetl_error err;
    double t0 = ph_now();
    assert_int_equal(pgetl_pool_acquire(pool, &x, &err), PGETL_EEXHAUSTED);
    assert_true(ph_now() - t0 < 1.0);
    assert_null(x);
    assert_string_equal(err.message,
                        "pool exhausted: 2 callers already waiting (max_waiters 2), 1 of 1 in use");
    pgetl_pool_release(pool, held);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, PGETL_OK);
    }
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.acquired, 3);
    pgetl_pool_destroy(pool);
}

static void close_fails_waiters(void **state) {
    (void)state;
    char app[64];
    ph_app("closew", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 1);
    cfg.acquire_timeout_s = 20;
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *held = ph_get(pool);
    int line = __LINE__ - 1;
    atomic_int order = 0;
    waiter_arg a = {.pool = pool, .order = &order};
    pthread_t t;
    pthread_create(&t, NULL, waiter_main, &a);
    wait_for_waiters(pool, 1);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    assert_int_equal(pgetl_pool_close(pool), 1); /* one still out */
    pthread_join(t, NULL);
    assert_int_equal(a.rc, PGETL_ECLOSED);
    assert_true(a.waited < 5.0);
    assert_string_equal(a.err.message, "pool closed while waiting for a connection");
    /* Close reports the outstanding connection with where it was taken. */
    char where[128];
    snprintf(where, sizeof where, "test_pool_basic.c:%d", line);
    assert_non_null(strstr(log->text, "event=pool_close_outstanding"));
    assert_non_null(strstr(log->text, where));
    assert_int_equal(pgetl_pool_close(pool), 1); /* idempotent */

    pgetl_conn *x = NULL;
    pgetl_error err;
    assert_int_equal(pgetl_pool_acquire(pool, &x, &err), PGETL_ECLOSED);
    assert_string_equal(err.message, "pool is closed");

    /* Release after close closes the connection. */
    PGconn *pg = harness_pq();
    assert_int_equal(ph_backends_on(pg, app), 1);
    pgetl_pool_release(pool, held);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.closed, st.opened);
    harness_log_restore();
    pgetl_pool_destroy(pool);
    PQfinish(pg);
}

/* ---- misuse ------------------------------------------------------------------ */

static void double_release_is_harmless(void **state) {
    (void)state;
    char app[64];
    ph_app("dbl", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 2);
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    pgetl_conn *c = ph_get(pool);
    pgetl_pool_release(pool, c);
    pgetl_pool_release(pool, c);
    pgetl_release_connection(c);
    assert_non_null(strstr(log->text, "event=pool_release_twice"));
    assert_int_equal(log->lines, 2);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.idle, 1);
    /* The one idle connection is still handed to one caller only. */
    pgetl_conn *a = ph_get(pool);
    pgetl_conn *b = ph_get(pool);
    assert_ptr_not_equal(a, b);
    pgetl_pool_release(pool, a);
    pgetl_pool_release(pool, b);
    pgetl_pool_release(pool, NULL); /* accepted */
    harness_log_restore();
    pgetl_pool_destroy(pool);
}

static void wrong_pool_goes_home(void **state) {
    (void)state;
    char app1[64], app2[64];
    ph_app("wp1", app1, sizeof app1);
    ph_app("wp2", app2, sizeof app2);
    pgetl_config c1 = ph_config(app1, 1, 2);
    pgetl_config c2 = ph_config(app2, 1, 2);
    pgetl_pool *p1 = ph_make_pool(&c1);
    pgetl_pool *p2 = ph_make_pool(&c2);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    pgetl_conn *c = ph_get(p1);
    pgetl_pool_release(p2, c);
    assert_non_null(strstr(log->text, "event=pool_release_wrong_pool"));
    pgetl_pool_stats s1, s2;
    pgetl_pool_get_stats(p1, &s1);
    pgetl_pool_get_stats(p2, &s2);
    assert_int_equal(s1.in_use, 0);
    assert_int_equal(s1.idle, 1);
    assert_int_equal(s2.in_use, 0);
    assert_int_equal(s2.idle, 1);

    /* A standalone connection given to a pool is not the pool's to keep. */
    pgetl_conn *solo = harness_connect();
    pgetl_pool_release(p1, solo);
    assert_non_null(strstr(log->text, "event=pool_release_unknown"));
    pgetl_pool_get_stats(p1, &s1);
    assert_int_equal(s1.idle, 1);
    assert_int_equal(ph_conn_scalar(solo, "SELECT 1"), 1); /* still usable */
    pgetl_conn_close(solo);

    /* Garbage pointers are never dereferenced. */
    char junk[64];
    memset(junk, 0xA5, sizeof junk);
    pgetl_release_connection((pgetl_conn *)junk);
    pgetl_pool_release(p1, (pgetl_conn *)((char *)c + 1)); /* inside the slot array */
    pgetl_pool_get_stats(p1, &s1);
    assert_int_equal(s1.idle, 1);
    assert_int_equal(s1.in_use, 0);
    harness_log_restore();
    pgetl_pool_destroy(p1);
    pgetl_pool_destroy(p2);
}

static void destroy_with_conn_out(void **state) {
    (void)state;
    char app[64];
    ph_app("dout", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 2);
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    pgetl_conn *c = ph_get(pool);
    pgetl_conn *d = ph_get(pool);
    pgetl_pool_destroy(pool); /* memory stays until both are back */
    assert_non_null(strstr(log->text, "event=pool_close_outstanding"));
    assert_int_equal(ph_backends_on(pg, app), 2);
    /* Still usable by their holders until released. */
    assert_int_equal(ph_conn_scalar(c, "SELECT 1"), 1);
    pgetl_conn_close(c); /* a pooled conn: goes back to its (closed) pool */
    assert_int_equal(ph_wait_backends(pg, app, 1), 1);
    pgetl_release_connection(d); /* the last one frees the pool */
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    /* A late double release after the pool is freed: found nowhere, ignored. */
    pgetl_release_connection(d);
    assert_non_null(strstr(log->text, "event=pool_release_unknown"));
    harness_log_restore();
    PQfinish(pg);
}

/* ---- configuration ----------------------------------------------------------- */

static void expect_config_error(pgetl_config *cfg, const char *needle) {
    pgetl_pool *pool = (pgetl_pool *)1;
    pgetl_error err;
    assert_int_equal(pgetl_pool_create(cfg, &pool, &err), PGETL_ECONFIG);
    assert_null(pool);
    if (!strstr(err.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
    assert_null(strstr(err.message, "hunter2"));
}

static void bad_configs(void **state) {
    (void)state;
    pgetl_config cfg = ph_config("pt_bad", 3, 2);
    expect_config_error(&cfg, "pool_max (2) is less than pool_min (3)");
    cfg = ph_config("pt_bad", -1, 2);
    expect_config_error(&cfg, "pool_min");
    cfg = ph_config("pt_bad", 0, 0);
    expect_config_error(&cfg, "pool_max");
    cfg = ph_config("pt_bad", 1, 2);
    cfg.acquire_timeout_s = NAN;
    expect_config_error(&cfg, "acquire_timeout_s");
    cfg = ph_config("pt_bad", 1, 2);
    cfg.max_lifetime_s = -5;
    expect_config_error(&cfg, "max_lifetime_s");
    cfg = ph_config("pt_bad", 1, 2);
    cfg.leak_threshold_s = INFINITY;
    expect_config_error(&cfg, "leak_threshold_s");
    cfg = ph_config("pt_bad", 1, 2);
    cfg.max_waiters = -1;
    expect_config_error(&cfg, "max_waiters");
    cfg = ph_config("pt_bad", 1, 2);
    cfg.dsn = "host=localhost password=hunter2 port='5432";
    expect_config_error(&cfg, "invalid DSN");
    cfg.dsn = "postgresql://bob:hunter2@host/db?nosuchparam=1";
    expect_config_error(&cfg, "invalid DSN");
    cfg.dsn = "password=hunter2 nosuchoption=1";
    expect_config_error(&cfg, "nosuchoption");

    /* A wrong password is the server's error, and still never shows it. */
    PGconn *pg = harness_pq();
    char dsn[512];
    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%s dbname=%s user=pgetl_pw password=hunter2 connect_timeout=5",
             PQport(pg), PQdb(pg));
    PQfinish(pg);
    cfg = ph_config("pt_bad", 1, 2);
    cfg.dsn = dsn;
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_int_equal(pgetl_pool_create(&cfg, &pool, &err), PGETL_ECONNECT);
    assert_null(pool);
    assert_non_null(strstr(err.message, "password authentication failed"));
    assert_null(strstr(err.message, "hunter2"));

    /* NULL arguments. */
    assert_int_equal(pgetl_pool_create(&cfg, NULL, &err), PGETL_EINVAL);
    pgetl_conn *c = NULL;
    assert_int_equal(pgetl_pool_acquire(NULL, &c, &err), PGETL_EINVAL);
    pgetl_pool_destroy(NULL);
    assert_int_equal(pgetl_pool_close(NULL), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opens_min_grows_to_max),
        cmocka_unit_test(min_zero_opens_on_demand),
        cmocka_unit_test(autocommit_off_caller_commits),
        cmocka_unit_test(rollback_on_release),
        cmocka_unit_test(release_runs_detach_first),
        cmocka_unit_test(busy_conn_closed_on_release),
        cmocka_unit_test(broken_conn_replaced),
        cmocka_unit_test(exhausted_timeout_message),
        cmocka_unit_test(waiters_served_fifo),
        cmocka_unit_test(max_waiters_rejects_at_once),
        cmocka_unit_test(close_fails_waiters),
        cmocka_unit_test(double_release_is_harmless),
        cmocka_unit_test(wrong_pool_goes_home),
        cmocka_unit_test(destroy_with_conn_out),
        cmocka_unit_test(bad_configs),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
