/*
 * Faults mid-transfer on every data path: the proxy cuts the connection
 * after ~0.5 MB of the path's bulk direction, or the backend is killed with
 * pg_terminate_backend at that point (the proxy throttles the transfer so
 * the kill lands mid-way). Each case checks: a clear error (code and text),
 * nothing committed by a writing path (counted from a direct connection),
 * the pool recovers, no backend of the test's application_name survives,
 * and the process has as many descriptors as before.
 */
#define _GNU_SOURCE /* accept4, POLLRDHUP in faultproxy.h */
#include "fault_helpers.h"

#define CUT_AT 500000

typedef enum fault_kind { CUT, TERMINATE } fault_kind;

static void terminate_action(void *arg) {
    const char *app = arg;
    PGconn *pg = harness_pq();
    fh_terminate(pg, app);
    PQfinish(pg);
}

static void run_fault(fh_path path, fault_kind kind) {
    PGconn *pg = harness_pq();
    fh_reset_table(pg);
    char app[64];
    snprintf(app, sizeof app, "fault_%s_%d", kind == CUT ? "cut" : "term", (int)path);
    char dsn[512];
    faultproxy *fp = fh_proxy_start(harness_port(), NULL, dsn, sizeof dsn);
    fh_csv(path == FH_LOAD_MAXERR); /* written before counting descriptors */
    int fds0 = fh_fd_count();

    pgetl_config cfg = fh_config(dsn, app);
    pgetl_pool *pool = fh_pool_create(&cfg);
    pgetl_error err;

    fp_dir dir = fh_path_dir(path);
    fh_trigger trig = {
        .fp = fp, .dir = dir, .bytes = CUT_AT, .action = terminate_action, .arg = app};
    if (kind == CUT) {
        fp_set(fp, dir, FP_CUT, CUT_AT, 0);
    } else {
        /* A writing path is throttled so the kill lands mid-COPY; a reading
         * path's server is slow enough by itself (FH_QUERY). */
        if (dir == FP_UP)
            fp_set(fp, dir, FP_SLOW, 0, 4 << 20);
        fh_trigger_start(&trig);
    }
    double secs;
    pgetl_code rc = fh_run_watched(path, pool, 30, fh_path_name[path], &secs, &err);
    if (kind == TERMINATE)
        assert_true(fh_trigger_join(&trig)); /* the kill happened mid-transfer */
    fp_pass(fp);
    fh_report(kind == CUT ? "proxy cut after 0.5 MB" : "pg_terminate_backend after 0.5 MB", path,
              rc, &err, secs);

    /* A clear error: the connection was lost, and the text says so. */
    if (path == FH_QUERY_ARROW) {
        assert_int_equal(rc, PGETL_EIO); /* the stream's get_next: EIO + message */
    } else {
        assert_int_equal(rc, PGETL_ECONNLOST);
    }
    /* After a kill, libpq reports the server's FATAL message when it read it
     * before its own send failed, else that the server closed the connection. */
    bool said_kill = strstr(err.message, "terminating connection due to administrator command");
    bool said_closed = strstr(err.message, "server closed the connection unexpectedly");
    if (kind == TERMINATE)
        assert_true(said_kill || said_closed);
    else
        assert_true(said_closed);
    fh_assert_loss_message(path, &err);

    if (fh_path_writes(path))
        assert_int_equal(fh_rows(pg), 0);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    assert_int_equal(fh_wait_backends_gone(pg, app), 0);
    assert_int_equal(fh_wait_proxy_idle(fp), 0);
    assert_int_equal(fh_fd_count(), fds0);
    fp_stop(fp);
    PQfinish(pg);
}

#define CASES(kind, k)                                                                             \
    static void kind##_load(void **s) {                                                            \
        (void)s;                                                                                   \
        run_fault(FH_LOAD, k);                                                                     \
    }                                                                                              \
    static void kind##_load_maxerr(void **s) {                                                     \
        (void)s;                                                                                   \
        run_fault(FH_LOAD_MAXERR, k);                                                              \
    }                                                                                              \
    static void kind##_load_jobs2(void **s) {                                                      \
        (void)s;                                                                                   \
        run_fault(FH_LOAD_JOBS2, k);                                                               \
    }                                                                                              \
    static void kind##_arrow(void **s) {                                                           \
        (void)s;                                                                                   \
        run_fault(FH_ARROW, k);                                                                    \
    }                                                                                              \
    static void kind##_records(void **s) {                                                         \
        (void)s;                                                                                   \
        run_fault(FH_RECORDS, k);                                                                  \
    }                                                                                              \
    static void kind##_query_arrow(void **s) {                                                     \
        (void)s;                                                                                   \
        run_fault(FH_QUERY_ARROW, k);                                                              \
    }                                                                                              \
    static void kind##_export(void **s) {                                                          \
        (void)s;                                                                                   \
        run_fault(FH_EXPORT, k);                                                                   \
    }

CASES(cut, CUT)
CASES(terminate, TERMINATE)

static int teardown_all(void **state) {
    (void)state;
    fh_csv_cleanup();
    return 0;
}

#define T(name) cmocka_unit_test(name)

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        T(cut_load),
        T(cut_load_maxerr),
        T(cut_load_jobs2),
        T(cut_arrow),
        T(cut_records),
        T(cut_query_arrow),
        T(cut_export),
        T(terminate_load),
        T(terminate_load_maxerr),
        T(terminate_load_jobs2),
        T(terminate_arrow),
        T(terminate_records),
        T(terminate_query_arrow),
        T(terminate_export),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
