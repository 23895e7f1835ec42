/*
 * The server goes away mid-transfer: `testdb.sh halt <private> immediate`
 * (no shutdown message, like a crash or a power cut) while each of the
 * seven paths is ~0.5 MB in, on a PRIVATE cluster so the shared one is
 * never disturbed. The transfer runs through the fault proxy, throttled (or
 * with a slow query), so the halt lands mid-way. Checks: a clear error, no
 * rows committed (counted after the server is back), the pool recovers once
 * the server is resumed, no backend of ours and no descriptor left behind.
 */
#define _GNU_SOURCE /* accept4, POLLRDHUP in faultproxy.h */
#include "fault_helpers.h"

#define HALT_AT 500000

static harness_private priv;

static int testdb(const char *cmd, const char *arg) {
    return harness_private_cmd(&priv, cmd, arg);
}

static int setup(void **state) {
    (void)state;
    return harness_private_start(&priv, "fault-halt");
}

static int teardown(void **state) {
    (void)state;
    harness_private_stop(&priv);
    fh_csv_cleanup();
    return 0;
}

static PGconn *direct(void) {
    return harness_private_pq(&priv);
}

static int halted;

static void halt_action(void *arg) {
    (void)arg;
    halted = testdb("halt", "immediate") == 0;
}

static void run_halt(fh_path path) {
    PGconn *pg = direct();
    /* The test cluster runs with synchronous_commit = off: make the new
     * table's commit reach the WAL before the crash, or it may vanish. */
    harness_sql(pg, "SET synchronous_commit = on");
    fh_reset_table(pg);
    PQfinish(pg);
    char app[64];
    snprintf(app, sizeof app, "fault_halt_%d", (int)path);
    char dsn[512];
    faultproxy *fp = fh_proxy_start(priv.port, "postgres", dsn, sizeof dsn);
    fh_csv(path == FH_LOAD_MAXERR);
    int fds0 = fh_fd_count();

    pgetl_config cfg = fh_config(dsn, app);
    cfg.acquire_timeout_s = 15;
    cfg.reconnect_timeout_s = 30;
    pgetl_pool *pool = fh_pool_create(&cfg);
    pgetl_error err;

    fp_dir dir = fh_path_dir(path);
    if (dir == FP_UP)
        fp_set(fp, dir, FP_SLOW, 0, 2 << 20); /* ~1.7 s for the whole path */
    /* Reading paths: a query the server paces over ~1 s. */
    fh_query = "SELECT g AS id, 'row ' || g || ' with some padding text' AS v "
               "FROM generate_series(1, 100000) g WHERE g % 10000 <> 0 OR pg_sleep(0.1)::text = ''";
    halted = 0;
    fh_trigger trig = {.fp = fp, .dir = dir, .bytes = HALT_AT, .action = halt_action};
    fh_trigger_start(&trig);
    double secs;
    pgetl_code rc = fh_run_watched(path, pool, 30, fh_path_name[path], &secs, &err);
    assert_true(fh_trigger_join(&trig));
    assert_true(halted);
    fh_query = FH_QUERY;
    fp_pass(fp);
    fh_report("server halted (immediate) after 0.5 MB", path, rc, &err, secs);

    assert_int_equal(rc, path == FH_QUERY_ARROW ? PGETL_EIO : PGETL_ECONNLOST);
    assert_true(strstr(err.message, "server closed the connection unexpectedly") ||
                strstr(err.message, "terminating connection because of") ||
                strstr(err.message, "connection to the server lost"));
    fh_assert_loss_message(path, &err);

    assert_int_equal(testdb("resume", NULL), 0);
    pg = direct();
    if (fh_path_writes(path))
        assert_int_equal(fh_rows(pg), 0);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    assert_int_equal(fh_wait_backends_gone(pg, app), 0);
    PQfinish(pg);
    assert_int_equal(fh_wait_proxy_idle(fp), 0);
    assert_int_equal(fh_fd_count(), fds0);
    fp_stop(fp);
}

static void halt_load(void **s) {
    (void)s;
    run_halt(FH_LOAD);
}
static void halt_load_maxerr(void **s) {
    (void)s;
    run_halt(FH_LOAD_MAXERR);
}
static void halt_load_jobs2(void **s) {
    (void)s;
    run_halt(FH_LOAD_JOBS2);
}
static void halt_arrow(void **s) {
    (void)s;
    run_halt(FH_ARROW);
}
static void halt_records(void **s) {
    (void)s;
    run_halt(FH_RECORDS);
}
static void halt_query_arrow(void **s) {
    (void)s;
    run_halt(FH_QUERY_ARROW);
}
static void halt_export(void **s) {
    (void)s;
    run_halt(FH_EXPORT);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(halt_load),       cmocka_unit_test(halt_load_maxerr),
        cmocka_unit_test(halt_load_jobs2), cmocka_unit_test(halt_arrow),
        cmocka_unit_test(halt_records),    cmocka_unit_test(halt_query_arrow),
        cmocka_unit_test(halt_export),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
