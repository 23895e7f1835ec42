/*
 * Bounded cancel: stopping a running command early must not hang when the
 * peer does not answer. libpq 15's PQcancel opens a new connection and waits
 * for the server to close it, with no deadline; here the fault proxy stops
 * forwarding client->server on every connection (the running one and the
 * cancel request's own) right before the early stop, so the request never
 * reaches the server, which keeps streaming rows (server->client still
 * passes). Without a bound, PQcancel waits until the server's
 * authentication_timeout (60 s) drops the request's connection.
 *
 * Cases: a query->Arrow stream released after one batch (COPY and
 * single-row mode), an export whose output breaks mid-stream, and a
 * non-blocking query destroyed while running. Each must return within its
 * bound (connect_timeout_s 2, io_timeout_s 1: the cancel bound is 1 s; the
 * hang watchdog allows 3x + 2 s), log the timed-out cancel, leave the
 * connection failing at once rather than hanging, and the pool must recover
 * once the proxy passes again, with no backend and no descriptor left.
 */
#define _GNU_SOURCE /* accept4, POLLRDHUP in faultproxy.h */
#include "fault_helpers.h"

#include <fcntl.h>
#include <signal.h>

#define BOUND 1.0

/* Streams ~40 bytes a row for far longer than any bound. */
#define ENDLESS "SELECT generate_series(1, 100000000) AS i, 'row with some padding text' AS t"

typedef struct env {
    PGconn *pg;
    faultproxy *fp;
    char dsn[512];
    char app[64];
    int fds0;
    pgetl_pool *pool;
} env;

static void env_open(env *e, const char *app) {
    memset(e, 0, sizeof *e);
    e->pg = harness_pq();
    snprintf(e->app, sizeof e->app, "%s", app);
    e->fp = fh_proxy_start(harness_port(), NULL, e->dsn, sizeof e->dsn);
    e->fds0 = fh_fd_count();
    pgetl_config cfg = fh_config(e->dsn, e->app);
    cfg.pool_max = 2;
    cfg.io_timeout_s = BOUND;
    e->pool = fh_pool_create(&cfg);
}

static void env_close(env *e) {
    fp_pass(e->fp);
    fh_assert_pool_recovers(e->pool);
    pgetl_pool_destroy(e->pool);
    assert_int_equal(fh_wait_backends_gone(e->pg, e->app), 0);
    assert_int_equal(fh_wait_proxy_idle(e->fp), 0);
    assert_int_equal(fh_fd_count(), e->fds0);
    fp_stop(e->fp);
    PQfinish(e->pg);
}

/* After an early stop on a hung peer: the connection fails at once, never waits. */
static void assert_fails_fast(pgetl_conn *conn) {
    pgetl_error err;
    fh_watchdog_arm(3 * BOUND + 2, "a statement on the abandoned connection");
    pgetl_code rc = pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err);
    fh_watchdog_disarm();
    assert_int_not_equal(rc, PGETL_OK);
}

/* ---- query->Arrow released early ------------------------------------------- */

static void query_arrow_release(bool params) {
    env e;
    env_open(&e, params ? "fault_cancel_qa_params" : "fault_cancel_qa");
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_acquire(e.pool, &conn, &err), &err);
    struct ArrowArrayStream st;
    const char *p[1] = {"100000000"};
    assert_pgetl_ok(pgetl_query_arrow(conn,
                                      params ? "SELECT generate_series(1, $1::int8) AS i, "
                                               "'row with some padding text' AS t"
                                             : ENDLESS,
                                      params, params ? p : NULL, &st, &err),
                    &err);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    assert_non_null(a.release);
    a.release(&a);
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    fp_set(e.fp, FP_UP, FP_STALL, 0, 0);
    fh_watchdog_arm(3 * BOUND + 2, "query->Arrow released early, cancel stalled");
    double t0 = fh_now();
    st.release(&st);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | cancel connection stalled (io_timeout_s 1, connect_timeout_s 2) | "
           "query->Arrow%s released after one batch | returned | %.2f s |\n",
           params ? " with $1 (single-row mode)" : "", secs);
    assert_non_null(strstr(log->text, "event=cancel_timeout"));
    assert_non_null(strstr(log->text, "event=query_arrow_cancel"));
    assert_non_null(strstr(log->text, "drained=false"));
    harness_log_restore();
    assert_null(st.release);
    assert_fails_fast(conn);
    pgetl_pool_release(e.pool, conn);
    env_close(&e);
}

static void query_arrow_release_copy(void **s) {
    (void)s;
    query_arrow_release(false);
}

static void query_arrow_release_single_row(void **s) {
    (void)s;
    query_arrow_release(true);
}

/* ---- export whose output breaks mid-stream ---------------------------------- */

typedef struct breaker {
    int fd;
    faultproxy *fp;
    pthread_t thread;
} breaker;

/* Reads a little of the export, stalls the proxy upstream, then closes the pipe. */
static void *breaker_main(void *arg) {
    breaker *b = arg;
    char buf[65536];
    size_t got = 0;
    while (got < (1u << 20)) {
        ssize_t n = read(b->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    fp_set(b->fp, FP_UP, FP_STALL, 0, 0);
    close(b->fd);
    return NULL;
}

static void export_output_breaks(void **s) {
    (void)s;
    signal(SIGPIPE, SIG_IGN);
    env e;
    env_open(&e, "fault_cancel_export");
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_acquire(e.pool, &conn, &err), &err);
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    breaker b = {.fd = fds[0], .fp = e.fp};
    pthread_create(&b.thread, NULL, breaker_main, &b);
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.query = ENDLESS;
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    /* The export itself runs until the pipe breaks (~1 MB): the bound is for what follows. */
    fh_watchdog_arm(3 * BOUND + 2 + 10, "export with a broken output, cancel stalled");
    double t0 = fh_now();
    pgetl_code rc = pgetl_export_fd(conn, &o, fds[1], NULL, NULL, &err);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    pthread_join(b.thread, NULL);
    close(fds[1]);
    printf("FAULT | output pipe closed, cancel connection stalled (io_timeout_s 1) | export | "
           "%s | %.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_int_equal(rc, PGETL_EIO);
    assert_non_null(strstr(log->text, "event=cancel_timeout"));
    harness_log_restore();
    assert_fails_fast(conn);
    pgetl_pool_release(e.pool, conn);
    env_close(&e);
}

/* ---- a non-blocking query destroyed while running --------------------------- */

static void async_destroy_running(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_cancel_async");
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_acquire(e.pool, &conn, &err), &err);
    pgetl_async *op = NULL;
    assert_pgetl_ok(pgetl_async_query_start(conn, "SELECT pg_sleep(60)", 0, NULL, &op, &err), &err);
    /* Wait until the server runs it, then cut the way to the server. */
    for (int i = 0; i < 200; i++) {
        int want;
        assert_int_equal(pgetl_async_poll(op, &want, &err), PGETL_EAGAIN);
        if (harness_scalar(e.pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                 "= 'fault_cancel_async' AND query LIKE '%pg_sleep(60)%'") > 0)
            break;
        usleep(20000);
    }
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    fp_set(e.fp, FP_UP, FP_STALL, 0, 0);
    fh_watchdog_arm(3 * BOUND + 2, "pgetl_async_destroy of a running query, cancel stalled");
    double t0 = fh_now();
    pgetl_async_destroy(op);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | cancel connection stalled (io_timeout_s 1) | pgetl_async_destroy of a running "
           "query | returned | %.2f s |\n",
           secs);
    assert_non_null(strstr(log->text, "event=cancel_timeout"));
    harness_log_restore();
    assert_fails_fast(conn);
    pgetl_pool_release(e.pool, conn);
    /* The backend still sleeps: end it so the checks below see it gone. */
    fh_terminate(e.pg, e.app);
    env_close(&e);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_arrow_release_copy),
        cmocka_unit_test(query_arrow_release_single_row),
        cmocka_unit_test(export_output_breaks),
        cmocka_unit_test(async_destroy_running),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
