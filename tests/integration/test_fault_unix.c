/*
 * io_timeout_s over a Unix-domain socket. The stall: SIGSTOP of the
 * connection's own backend (the server process stops; the socket stays
 * open and nothing is closed), on the shared cluster's socket; only our
 * backend is stopped, so other tests never notice. SIGCONT resumes it.
 *
 * - a statement gets no answer;
 * - a COPY FROM STDIN stops draining mid-way (the records writer);
 * - a COPY TO STDOUT stops mid-stream (query->Arrow);
 * - a statement whose backend sleeps (no CPU, no bytes: pg_sleep);
 * each must fail within the bound (hang watchdog: 3x + 2 s) with
 * ECONNLOST/EIO naming io_timeout_s, nothing committed, and the pool must
 * hand out a working connection after the backend is resumed. The other
 * side: a connection idle (in the pool, in a transaction) for longer than
 * the bound, a COPY that pauses between rows, and streams in both
 * directions that keep moving are never ended.
 */
#define _GNU_SOURCE
#include "fault_helpers.h"

#include "pgetl/libpq.h"

#include <signal.h>

#define BOUND 1.0

typedef struct env {
    PGconn *pg;
    char app[64];
    int fds0;
    pgetl_pool *pool;
    pgetl_conn *conn;
    int backend;
} env;

static void env_open(env *e, const char *app, double bound) {
    memset(e, 0, sizeof *e);
    e->pg = harness_pq();
    fh_reset_table(e->pg);
    snprintf(e->app, sizeof e->app, "%s", app);
    e->fds0 = fh_fd_count();
    /* The harness DSN is the cluster's Unix socket directory. */
    assert_non_null(strstr(harness_dsn(), "host=/"));
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = harness_dsn();
    cfg.application_name = e->app;
    cfg.pool_min = 1;
    cfg.pool_max = 2;
    cfg.acquire_timeout_s = 5;
    cfg.io_timeout_s = bound;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &e->pool, &err), &err);
    assert_pgetl_ok(pgetl_pool_acquire(e->pool, &e->conn, &err), &err);
    e->backend = PQbackendPID(pgetl_conn_pg(e->conn));
    assert_true(e->backend > 0);
}

static void env_close(env *e) {
    pgetl_pool_destroy(e->pool);
    assert_int_equal(fh_wait_backends_gone(e->pg, e->app), 0);
    assert_int_equal(fh_fd_count(), e->fds0);
    PQfinish(e->pg);
}

static void stop_backend(env *e) {
    assert_int_equal(kill(e->backend, SIGSTOP), 0);
}

/* Resumes the backend, gives the connection back; the pool must work again. */
static void resume_and_recover(env *e) {
    assert_int_equal(kill(e->backend, SIGCONT), 0);
    pgetl_pool_release(e->pool, e->conn);
    e->conn = NULL;
    fh_assert_pool_recovers(e->pool);
}

static void assert_io_timeout(pgetl_code rc, pgetl_code want, const pgetl_error *err) {
    assert_int_equal(rc, want);
    assert_non_null(strstr(err->message, "io_timeout_s (1.0 s) expired"));
}

static void unix_statement_stalled(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_unix_stmt", BOUND);
    pgetl_error err;
    assert_pgetl_ok(pgetl_begin(e.conn, &err), &err);
    stop_backend(&e);
    fh_watchdog_arm(3 * BOUND + 2, "a statement on a stopped backend (Unix socket)");
    double t0 = fh_now();
    pgetl_code rc = pgetl_execute(e.conn, "SELECT 1", 0, NULL, NULL, &err);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | backend SIGSTOPped, Unix socket (io_timeout_s 1) | pgetl_execute | %s | "
           "%.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_io_timeout(rc, PGETL_ECONNLOST, &err);
    resume_and_recover(&e);
    env_close(&e);
}

static void unix_statement_sleeps(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_unix_sleep", BOUND);
    pgetl_error err;
    fh_watchdog_arm(3 * BOUND + 2, "pg_sleep(30) over a Unix socket");
    double t0 = fh_now();
    pgetl_code rc = pgetl_execute(e.conn, "SELECT pg_sleep(30)", 0, NULL, NULL, &err);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | server silent (pg_sleep), Unix socket (io_timeout_s 1) | pgetl_execute | %s | "
           "%.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_io_timeout(rc, PGETL_ECONNLOST, &err);
    pgetl_pool_release(e.pool, e.conn);
    /* The shut-down socket ends the backend once pg_sleep notices. */
    fh_terminate(e.pg, e.app);
    fh_assert_pool_recovers(e.pool);
    env_close(&e);
}

static void unix_copy_in_stalled(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_unix_copy_in", BOUND);
    pgetl_error err;
    pgetl_copy *copy = NULL;
    assert_pgetl_ok(pgetl_copy_begin(e.conn, "fault_t", NULL, &copy, &err), &err);
    char id[32], v[128];
    const char *vals[2] = {id, v};
    pgetl_code rc = PGETL_OK;
    fh_watchdog_arm(3 * BOUND + 2 + 10, "COPY into a stopped backend (Unix socket)");
    double t0 = 0;
    for (int64_t i = 1; rc == PGETL_OK && i <= 5000000; i++) {
        if (i == 10000) {
            stop_backend(&e);
            t0 = fh_now();
        }
        snprintf(id, sizeof id, "%lld", (long long)i);
        snprintf(v, sizeof v, "row %lld with some padding text", (long long)i);
        rc = pgetl_copy_write_row(copy, vals, NULL, &err);
    }
    if (rc == PGETL_OK)
        rc = pgetl_copy_end(copy, NULL, &err);
    else
        pgetl_copy_abort(copy, "test");
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | backend SIGSTOPped mid-COPY, Unix socket (io_timeout_s 1) | records writer | "
           "%s | %.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_io_timeout(rc, PGETL_ECONNLOST, &err);
    resume_and_recover(&e);
    assert_int_equal(fh_rows(e.pg), 0);
    env_close(&e);
}

static void unix_copy_out_stalled(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_unix_copy_out", BOUND);
    pgetl_error err;
    struct ArrowArrayStream st;
    assert_pgetl_ok(pgetl_query_arrow(e.conn,
                                      "SELECT generate_series(1, 50000000) AS i, "
                                      "'row with some padding text' AS t",
                                      0, NULL, &st, &err),
                    &err);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    a.release(&a);
    stop_backend(&e);
    fh_watchdog_arm(3 * BOUND + 2 + 10, "COPY TO from a stopped backend (Unix socket)");
    double t0 = fh_now();
    int en = 0;
    for (int i = 0; i < 100000 && en == 0; i++) {
        en = st.get_next(&st, &a);
        if (en == 0 && a.release)
            a.release(&a);
    }
    double secs = fh_now() - t0;
    const char *m = st.get_last_error(&st);
    printf("FAULT | backend SIGSTOPped mid-stream, Unix socket (io_timeout_s 1) | query->Arrow | "
           "errno %d | %.2f s | %s\n",
           en, secs, m ? m : "");
    assert_int_equal(en, EIO);
    assert_non_null(m);
    assert_non_null(strstr(m, "io_timeout_s (1.0 s) expired"));
    st.release(&st);
    fh_watchdog_disarm();
    resume_and_recover(&e);
    env_close(&e);
}

/*
 * Never a false stall: idle time, a COPY that pauses between rows, and
 * streams that keep moving in both directions, with a tight bound.
 */
static void unix_spares_moving(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_unix_spares", 0.5);
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(e.conn, "SELECT 1", 0, NULL, NULL, &err), &err);
    usleep(1200000); /* idle inside the caller's transaction */
    assert_pgetl_ok(pgetl_rollback(e.conn, &err), &err);
    /* The backend's CPU time counts as movement: computing is not a stall. */
    assert_pgetl_ok(pgetl_execute(e.conn, "SELECT count(*) FROM generate_series(1, 6000000)", 0,
                                  NULL, NULL, &err),
                    &err);
    assert_pgetl_ok(pgetl_rollback(e.conn, &err), &err);
    /* Many MB out of the server, and a big result in one blocking call. */
    struct ArrowArrayStream st;
    assert_pgetl_ok(pgetl_query_arrow(e.conn,
                                      "SELECT generate_series(1, 2000000) AS i, "
                                      "'row with some padding text' AS t",
                                      0, NULL, &st, &err),
                    &err);
    int64_t rows = 0;
    for (;;) {
        struct ArrowArray a;
        assert_int_equal(st.get_next(&st, &a), 0);
        if (!a.release)
            break;
        rows += a.length;
        a.release(&a);
    }
    st.release(&st);
    assert_int_equal(rows, 2000000);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(e.conn,
                                   "SELECT g, repeat('x', 100) FROM generate_series(1, "
                                   "300000) g",
                                   0, NULL, &res, &err),
                    &err);
    assert_int_equal(pgetl_result_nrows(res), 300000);
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_rollback(e.conn, &err), &err);
    /* Many MB into the server, and a COPY whose producer pauses longer than the bound. */
    pgetl_copy *copy = NULL;
    assert_pgetl_ok(pgetl_copy_begin(e.conn, "fault_t", NULL, &copy, &err), &err);
    char id[32], v[128];
    const char *vals[2] = {id, v};
    for (int i = 1; i <= 300000; i++) {
        snprintf(id, sizeof id, "%d", i);
        snprintf(v, sizeof v, "row %d with some padding text", i);
        assert_pgetl_ok(pgetl_copy_write_row(copy, vals, NULL, &err), &err);
        if (i == 150000)
            usleep(1200000);
    }
    pgetl_copy_stats cst;
    assert_pgetl_ok(pgetl_copy_end(copy, &cst, &err), &err);
    assert_int_equal(cst.rows_loaded, 300000);
    assert_pgetl_ok(pgetl_commit(e.conn, &err), &err);
    assert_int_equal(fh_rows(e.pg), 300000);
    pgetl_pool_release(e.pool, e.conn);
    pgetl_pool_stats ps;
    pgetl_pool_get_stats(e.pool, &ps);
    assert_int_equal(ps.lost, 0);
    assert_int_equal(ps.returned_bad, 0);
    env_close(&e);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unix_spares_moving),    cmocka_unit_test(unix_statement_stalled),
        cmocka_unit_test(unix_statement_sleeps), cmocka_unit_test(unix_copy_in_stalled),
        cmocka_unit_test(unix_copy_out_stalled),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
