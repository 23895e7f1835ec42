/*
 * io_timeout_s on the non-blocking API (pgetl_async_*, pgetl_async_copy_*).
 * Each case drives the operation the way an event loop does: poll the
 * socket for what the operation wants, with pgetl_async_timeout_ms() /
 * pgetl_async_copy_timeout_ms() as the poll timeout, then call the
 * operation's poll. A stalled server never makes the socket ready, so only
 * that timeout gets the operation polled again; the poll must then fail
 * with ECONNLOST naming io_timeout_s, within the bound (hang watchdog: 3x +
 * 2 s). Stalls: the fault proxy stops forwarding (TCP), or the backend is
 * SIGSTOPped (Unix socket; there the watchdog thread does not see
 * non-blocking waits, so only the operation's own clock can fire). The
 * other side: moving streams and a COPY whose caller pauses are not ended.
 */
#define _GNU_SOURCE /* accept4, POLLRDHUP in faultproxy.h */
#include "fault_helpers.h"

#include "pgetl/libpq.h"

#include <poll.h>
#include <signal.h>

#define BOUND 1.0

typedef struct env {
    PGconn *pg;
    faultproxy *fp; /* NULL: the Unix socket */
    char dsn[1200];
    char app[64];
    int fds0;
    pgetl_pool *pool;
    pgetl_conn *conn;
} env;

static void env_open(env *e, const char *app, bool tcp, double bound) {
    memset(e, 0, sizeof *e);
    e->pg = harness_pq();
    fh_reset_table(e->pg);
    snprintf(e->app, sizeof e->app, "%s", app);
    if (tcp) {
        e->fp = fh_proxy_start(harness_port(), NULL, e->dsn, sizeof e->dsn);
    } else {
        snprintf(e->dsn, sizeof e->dsn, "%s", harness_dsn());
        assert_non_null(strstr(e->dsn, "host=/"));
    }
    e->fds0 = fh_fd_count();
    pgetl_config cfg = fh_config(e->dsn, e->app);
    cfg.pool_max = 2;
    cfg.io_timeout_s = bound;
    e->pool = fh_pool_create(&cfg);
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_acquire(e->pool, &e->conn, &err), &err);
}

static void env_close(env *e) {
    if (e->conn)
        pgetl_pool_release(e->pool, e->conn);
    if (e->fp)
        fp_pass(e->fp);
    fh_assert_pool_recovers(e->pool);
    pgetl_pool_destroy(e->pool);
    assert_int_equal(fh_wait_backends_gone(e->pg, e->app), 0);
    if (e->fp)
        assert_int_equal(fh_wait_proxy_idle(e->fp), 0);
    assert_int_equal(fh_fd_count(), e->fds0);
    fp_stop(e->fp);
    PQfinish(e->pg);
}

/* One event-loop wait: the socket for `want`, at most timeout_ms (-1: no limit). */
static void loop_wait(int fd, int want, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = 0};
    if (want & PGETL_WANT_READ)
        p.events |= POLLIN;
    if (want & PGETL_WANT_WRITE)
        p.events |= POLLOUT;
    poll(&p, 1, timeout_ms < 0 ? 30000 : timeout_ms);
}

static pgetl_code run_query(env *e, const char *sql, pgetl_error *err) {
    pgetl_async *op = NULL;
    pgetl_code rc = pgetl_async_query_start(e->conn, sql, 0, NULL, &op, err);
    if (rc != PGETL_OK)
        return rc;
    int fd = pgetl_async_socket(e->conn), want;
    while ((rc = pgetl_async_poll(op, &want, err)) == PGETL_EAGAIN) {
        int t = pgetl_async_timeout_ms(op);
        /* While it waits on the server, a bound is always running. */
        assert_true(t >= 0 && t <= 1000 * BOUND + 1);
        loop_wait(fd, want, t);
    }
    assert_int_equal(pgetl_async_timeout_ms(op), -1);
    pgetl_async_destroy(op);
    return rc;
}

static void assert_io_timeout(pgetl_code rc, const pgetl_error *err) {
    assert_int_equal(rc, PGETL_ECONNLOST);
    assert_non_null(strstr(err->message, "io_timeout_s (1.0 s) expired"));
}

static void async_query_stalled_tcp(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_async_query_tcp", true, BOUND);
    fp_set(e.fp, FP_DOWN, FP_STALL, 0, 0);
    pgetl_error err;
    fh_watchdog_arm(3 * BOUND + 2, "async query, proxy stalled");
    double t0 = fh_now();
    pgetl_code rc = run_query(&e, "SELECT 1", &err);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | server never answers, TCP (io_timeout_s 1) | pgetl_async_poll | %s | %.2f s | "
           "%s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_io_timeout(rc, &err);
    env_close(&e);
}

static void async_query_stalled_unix(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_async_query_unix", false, BOUND);
    int backend = PQbackendPID(pgetl_conn_pg(e.conn));
    assert_int_equal(kill(backend, SIGSTOP), 0);
    pgetl_error err;
    fh_watchdog_arm(3 * BOUND + 2, "async query, backend stopped");
    double t0 = fh_now();
    pgetl_code rc = run_query(&e, "SELECT 1", &err);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    assert_int_equal(kill(backend, SIGCONT), 0);
    printf("FAULT | backend SIGSTOPped, Unix socket (io_timeout_s 1) | pgetl_async_poll | %s | "
           "%.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_io_timeout(rc, &err);
    env_close(&e);
}

/* Writes rows until the COPY fails or ends; polls as an event loop would. */
static pgetl_code run_copy(env *e, int64_t nrows, int64_t pause_at, pgetl_error *err) {
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    static const char *const cols[2] = {"id", "v"};
    o.columns = cols;
    o.ncolumns = 2;
    pgetl_async_copy *op = NULL;
    pgetl_code rc = pgetl_async_copy_start(e->conn, "fault_t", &o, &op, err);
    if (rc != PGETL_OK)
        return rc;
    int fd = pgetl_async_socket(e->conn), want = 0;
    char id[32], v[64];
    const char *vals[2] = {id, v};
    for (int64_t i = 1; i <= nrows && (rc == PGETL_OK || rc == PGETL_EAGAIN);) {
        snprintf(id, sizeof id, "%lld", (long long)i);
        snprintf(v, sizeof v, "row %lld with some padding text", (long long)i);
        rc = pgetl_async_copy_write_row(op, vals, NULL, err);
        if (rc == PGETL_OK) {
            if (i == pause_at) {
                /* Everything queued goes out, then the caller takes its time. */
                while ((rc = pgetl_async_copy_poll(op, &want, NULL, err)) == PGETL_EAGAIN &&
                       pgetl_async_copy_timeout_ms(op) >= 0)
                    loop_wait(fd, want, pgetl_async_copy_timeout_ms(op));
                assert_int_equal(rc, PGETL_EAGAIN);
                assert_int_equal(pgetl_async_copy_timeout_ms(op), -1);
                usleep(1200000);
            }
            i++;
            continue;
        }
        if (rc != PGETL_EAGAIN)
            break;
        /* A poll that left it "ready for more rows" (no bound running) means write on. */
        rc = pgetl_async_copy_poll(op, &want, NULL, err);
        if (rc == PGETL_EAGAIN && pgetl_async_copy_timeout_ms(op) >= 0)
            loop_wait(fd, want, pgetl_async_copy_timeout_ms(op));
    }
    if (rc == PGETL_OK || rc == PGETL_EAGAIN) {
        rc = pgetl_async_copy_end(op, err);
        while (rc == PGETL_OK &&
               (rc = pgetl_async_copy_poll(op, &want, NULL, err)) == PGETL_EAGAIN) {
            loop_wait(fd, want, pgetl_async_copy_timeout_ms(op));
            rc = PGETL_OK;
        }
    }
    pgetl_async_copy_destroy(op);
    return rc;
}

static void async_copy_stalled_tcp(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_async_copy_tcp", true, BOUND);
    fp_set(e.fp, FP_UP, FP_STALL, 500000, 0);
    pgetl_error err;
    fh_watchdog_arm(3 * BOUND + 2 + 10, "async COPY, proxy stalled");
    double t0 = fh_now();
    pgetl_code rc = run_copy(&e, 5000000, 0, &err);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | stall client->server after 0.5 MB, TCP (io_timeout_s 1) | "
           "pgetl_async_copy_poll | %s | %.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_io_timeout(rc, &err);
    fp_pass(e.fp);
    assert_int_equal(fh_rows(e.pg), 0);
    env_close(&e);
}

static void async_copy_stalled_unix(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_async_copy_unix", false, BOUND);
    int backend = PQbackendPID(pgetl_conn_pg(e.conn));
    /* Stop the backend once the COPY runs: it then stops reading. */
    pgetl_error err;
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    static const char *const cols[2] = {"id", "v"};
    o.columns = cols;
    o.ncolumns = 2;
    pgetl_async_copy *op = NULL;
    assert_pgetl_ok(pgetl_async_copy_start(e.conn, "fault_t", &o, &op, &err), &err);
    int fd = pgetl_async_socket(e.conn), want;
    pgetl_code rc;
    while ((rc = pgetl_async_copy_poll(op, &want, NULL, &err)) == PGETL_EAGAIN &&
           pgetl_async_copy_timeout_ms(op) >= 0)
        loop_wait(fd, want, pgetl_async_copy_timeout_ms(op));
    assert_int_equal(kill(backend, SIGSTOP), 0);
    fh_watchdog_arm(3 * BOUND + 2 + 10, "async COPY, backend stopped");
    double t0 = fh_now();
    char id[32], v[64];
    const char *vals[2] = {id, v};
    rc = PGETL_OK;
    for (int64_t i = 1; i <= 5000000 && (rc == PGETL_OK || rc == PGETL_EAGAIN);) {
        snprintf(id, sizeof id, "%lld", (long long)i);
        snprintf(v, sizeof v, "row %lld with some padding text", (long long)i);
        rc = pgetl_async_copy_write_row(op, vals, NULL, &err);
        if (rc == PGETL_OK) {
            i++;
        } else if (rc == PGETL_EAGAIN) {
            rc = pgetl_async_copy_poll(op, &want, NULL, &err);
            if (rc == PGETL_EAGAIN && pgetl_async_copy_timeout_ms(op) >= 0)
                loop_wait(fd, want, pgetl_async_copy_timeout_ms(op));
        }
    }
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    pgetl_async_copy_destroy(op);
    assert_int_equal(kill(backend, SIGCONT), 0);
    printf("FAULT | backend SIGSTOPped mid-COPY, Unix socket (io_timeout_s 1) | "
           "pgetl_async_copy_poll | %s | %.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_io_timeout(rc, &err);
    assert_int_equal(fh_rows(e.pg), 0);
    env_close(&e);
}

/* A moving stream and a caller who pauses longer than the bound: never ended. */
static void async_spares_moving(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_async_spares", false, 0.5);
    pgetl_error err;
    assert_pgetl_ok(
        run_query(&e, "SELECT g, repeat('x', 100) FROM generate_series(1, 300000) g", &err), &err);
    /* Over a Unix socket the backend's CPU time counts as movement: a
     * statement computing for longer than the bound is not a stall. */
    assert_pgetl_ok(run_query(&e, "SELECT count(*) FROM generate_series(1, 6000000)", &err), &err);
    assert_pgetl_ok(run_copy(&e, 300000, 150000, &err), &err);
    assert_int_equal(fh_rows(e.pg), 300000);
    pgetl_pool_stats ps;
    pgetl_pool_get_stats(e.pool, &ps);
    assert_int_equal(ps.lost, 0);
    env_close(&e);
}

/* io_timeout_s off: no bound is ever running. */
static void async_no_bound(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_async_off", false, 0);
    pgetl_error err;
    pgetl_async *op = NULL;
    assert_pgetl_ok(pgetl_async_query_start(e.conn, "SELECT 1", 0, NULL, &op, &err), &err);
    int want;
    pgetl_code rc;
    while ((rc = pgetl_async_poll(op, &want, &err)) == PGETL_EAGAIN) {
        assert_int_equal(pgetl_async_timeout_ms(op), -1);
        loop_wait(pgetl_async_socket(e.conn), want, -1);
    }
    assert_pgetl_ok(rc, &err);
    pgetl_async_destroy(op);
    assert_int_equal(pgetl_async_timeout_ms(NULL), -1);
    assert_int_equal(pgetl_async_copy_timeout_ms(NULL), -1);
    env_close(&e);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(async_no_bound),          cmocka_unit_test(async_spares_moving),
        cmocka_unit_test(async_query_stalled_tcp), cmocka_unit_test(async_query_stalled_unix),
        cmocka_unit_test(async_copy_stalled_tcp),  cmocka_unit_test(async_copy_stalled_unix),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
