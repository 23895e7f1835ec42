/*
 * No hangs: a stalled server or network makes every operation fail within
 * its configured bound, with a message naming the bound.
 *
 * - connect_timeout_s: the proxy accepts but never forwards the server's
 *   answer to the startup packet.
 * - io_timeout_s: the proxy stops forwarding mid-transfer (in the path's
 *   bulk direction) without closing anything, on all seven paths.
 * - tcp_user_timeout_s: the proxy stops reading mid-COPY, so the client's
 *   data stays unacknowledged behind a zero window and the kernel gives up.
 * - statement_timeout_s: the server accepts the statement but cannot answer
 *   (the table is locked by another session), on every path.
 * - keepalives_idle_s: the proxy cannot make the kernel's keepalive probes
 *   go unanswered (its own kernel answers them), so this checks the socket
 *   options libpq was given.
 *
 * A watchdog fails the binary if an operation has not returned within 3x
 * its bound plus 2 s; durations are printed, never asserted. Each case also
 * checks nothing was committed, the pool recovers once the proxy passes
 * again, and no backend or descriptor is left behind.
 */
#define _GNU_SOURCE /* accept4, POLLRDHUP in faultproxy.h */
#include "fault_helpers.h"

#include "pgetl/libpq.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define STALL_AT 500000
#define BOUND 1.0

typedef struct env {
    PGconn *pg;
    faultproxy *fp;
    char dsn[512];
    char app[64];
    int fds0;
    pgetl_config cfg;
} env;

static void env_open(env *e, const char *app) {
    memset(e, 0, sizeof *e);
    e->pg = harness_pq();
    fh_reset_table(e->pg);
    snprintf(e->app, sizeof e->app, "%s", app);
    e->fp = fh_proxy_start(harness_port(), NULL, e->dsn, sizeof e->dsn);
    fh_csv(false);
    fh_csv(true);
    e->fds0 = fh_fd_count();
    e->cfg = fh_config(e->dsn, e->app);
}

/* After the pool is gone: no backend, no proxied connection, no descriptor left. */
static void env_close(env *e) {
    assert_int_equal(fh_wait_backends_gone(e->pg, e->app), 0);
    assert_int_equal(fh_wait_proxy_idle(e->fp), 0);
    assert_int_equal(fh_fd_count(), e->fds0);
    fp_stop(e->fp);
    PQfinish(e->pg);
}

/* ---- connect_timeout_s ---------------------------------------------------- */

static void connect_stalled(bool pooled) {
    env e;
    env_open(&e, pooled ? "fault_stall_connect_pool" : "fault_stall_connect");
    e.cfg.connect_timeout_s = BOUND; /* libpq rounds up to 2 s */
    fp_set(e.fp, FP_DOWN, FP_STALL, 0, 0);
    pgetl_error err;
    pgetl_code rc;
    fh_watchdog_arm(3 * 2 + 2, "connect through a stalled proxy");
    double t0 = fh_now();
    if (pooled) {
        pgetl_pool *pool = NULL;
        rc = pgetl_pool_create(&e.cfg, &pool, &err);
        assert_null(pool);
    } else {
        pgetl_conn *conn = NULL;
        rc = pgetl_connect(&e.cfg, &conn, &err);
        assert_null(conn);
    }
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | stall: server never answers the startup | %s | %s | %.2f s | %s\n",
           pooled ? "pool create" : "pgetl_connect", pgetl_code_name(rc), secs, err.message);
    assert_int_equal(rc, PGETL_ECONNECT);
    assert_non_null(strstr(err.message, "connect_timeout_s"));
    assert_non_null(strstr(err.message, "timeout expired"));
    assert_null(strstr(err.message, "pgetl-secret"));
    fp_pass(e.fp);
    if (pooled) {
        /* The same config works once the proxy passes again. */
        pgetl_pool *pool = NULL;
        assert_pgetl_ok(pgetl_pool_create(&e.cfg, &pool, &err), &err);
        fh_assert_pool_recovers(pool);
        pgetl_pool_destroy(pool);
    }
    env_close(&e);
}

static void connect_timeout_standalone(void **s) {
    (void)s;
    connect_stalled(false);
}

static void connect_timeout_pool(void **s) {
    (void)s;
    connect_stalled(true);
}

/* ---- io_timeout_s ----------------------------------------------------------- */

static void io_stall(fh_path path) {
    env e;
    char app[64];
    snprintf(app, sizeof app, "fault_stall_io_%d", (int)path);
    env_open(&e, app);
    e.cfg.io_timeout_s = BOUND;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    fp_set(e.fp, fh_path_dir(path), FP_STALL, STALL_AT, 0);
    double secs;
    pgetl_code rc = fh_run_watched(path, pool, 3 * BOUND + 2, fh_path_name[path], &secs, &err);
    fh_report(fh_path_dir(path) == FP_UP ? "stall client->server after 0.5 MB (io_timeout_s 1)"
                                         : "stall server->client after 0.5 MB (io_timeout_s 1)",
              path, rc, &err, secs);
    assert_int_equal(rc, path == FH_QUERY_ARROW ? PGETL_EIO : PGETL_ECONNLOST);
    assert_non_null(strstr(err.message, "io_timeout_s (1.0 s) expired"));
    fp_pass(e.fp);
    if (fh_path_writes(path))
        assert_int_equal(fh_rows(e.pg), 0);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/*
 * The other side of io_timeout_s: a connection that is merely idle (in the
 * pool, or held by the caller inside a transaction) for longer than the
 * bound is never shut down, and a COPY whose rows keep coming is not either.
 */
static void io_timeout_spares_idle(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_stall_io_idle");
    e.cfg.io_timeout_s = 0.5;
    e.cfg.pool_max = 1;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    usleep(1200000); /* idle in the pool */
    pgetl_conn *conn = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    assert_pgetl_ok(pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err), &err);
    usleep(1200000); /* idle inside the caller's transaction */
    assert_pgetl_ok(pgetl_execute(conn, "SELECT 2", 0, NULL, NULL, &err), &err);
    /* A COPY fed a row every 0.1 s for 1.5 s: never idle for the bound. */
    pgetl_copy *copy = NULL;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.chunk_bytes = 1; /* every row goes out at once */
    assert_pgetl_ok(pgetl_copy_begin(conn, "fault_t", &o, &copy, &err), &err);
    for (int i = 1; i <= 15; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        const char *vals[2] = {id, "slow"};
        assert_pgetl_ok(pgetl_copy_write_row(copy, vals, NULL, &err), &err);
        usleep(100000);
    }
    pgetl_copy_stats st;
    assert_pgetl_ok(pgetl_copy_end(copy, &st, &err), &err);
    assert_int_equal(st.rows_loaded, 15);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    pgetl_pool_stats ps;
    pgetl_pool_get_stats(pool, &ps);
    assert_int_equal(ps.opened, 1); /* the one connection lived through it all */
    assert_int_equal(fh_rows(e.pg), 15);

    /* A producer that pauses longer than the bound after >8 KiB went out
     * (so data was sent after the server last spoke): still not a stall. */
    assert_pgetl_ok(pgetl_copy_begin(conn, "fault_t", &o, &copy, &err), &err);
    char pad[1000];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 16; i <= 60; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        const char *vals[2] = {id, pad};
        assert_pgetl_ok(pgetl_copy_write_row(copy, vals, NULL, &err), &err);
        if (i == 40)
            usleep(1500000);
    }
    assert_pgetl_ok(pgetl_copy_end(copy, &st, &err), &err);
    assert_int_equal(st.rows_loaded, 45);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    pgetl_pool_release(pool, conn);
    pgetl_pool_get_stats(pool, &ps);
    assert_int_equal(ps.opened, 1);
    assert_int_equal(fh_rows(e.pg), 60);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/*
 * A server that never answers a statement at all (the proxy stops
 * forwarding server->client right before it): a plain statement, the start
 * of a query->Arrow and the start of an export each fail within
 * io_timeout_s.
 */
static void io_timeout_no_answer(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_stall_io_noanswer");
    e.cfg.io_timeout_s = BOUND;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    static const char *const what[3] = {"pgetl_execute", "pgetl_query_arrow", "pgetl_export_fd"};
    for (int op = 0; op < 3; op++) {
        fp_pass(e.fp);
        pgetl_conn *conn = NULL;
        assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
        /* BEGIN first, so the statement itself is what gets no answer. */
        assert_pgetl_ok(pgetl_begin(conn, &err), &err);
        fp_set(e.fp, FP_DOWN, FP_STALL, 0, 0);
        fh_watchdog_arm(3 * BOUND + 2, what[op]);
        double t0 = fh_now();
        pgetl_code rc;
        if (op == 0) {
            rc = pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err);
        } else if (op == 1) {
            struct ArrowArrayStream st;
            rc = pgetl_query_arrow(conn, "SELECT 1 AS x", 0, NULL, &st, &err);
            if (rc == PGETL_OK)
                st.release(&st);
        } else {
            pgetl_export_options o;
            pgetl_export_options_init(&o);
            o.query = "SELECT 1";
            FILE *devnull = fopen("/dev/null", "w");
            rc = pgetl_export_fd(conn, &o, fileno(devnull), NULL, NULL, &err);
            fclose(devnull);
        }
        double secs = fh_now() - t0;
        fh_watchdog_disarm();
        printf("FAULT | server never answers (io_timeout_s 1) | %s | %s | %.2f s | %s\n", what[op],
               pgetl_code_name(rc), secs, err.message);
        assert_int_equal(rc, PGETL_ECONNLOST);
        assert_non_null(strstr(err.message, "io_timeout_s (1.0 s) expired"));
        assert_null(strstr(err.message, "BEGIN"));
        pgetl_pool_release(pool, conn);
    }
    fp_pass(e.fp);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/* query->Arrow with a parameter streams rows in single-row mode, not COPY. */
static void io_timeout_query_arrow_params(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_stall_io_qa_params");
    e.cfg.io_timeout_s = BOUND;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    pgetl_conn *conn = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    fp_set(e.fp, FP_DOWN, FP_STALL, STALL_AT, 0);
    const char *params[1] = {"100000"};
    fh_watchdog_arm(3 * BOUND + 2, "query->Arrow with a parameter");
    double t0 = fh_now();
    struct ArrowArrayStream st;
    pgetl_code rc =
        pgetl_query_arrow(conn,
                          "SELECT g AS id, 'row ' || g || ' with some padding text' AS v "
                          "FROM generate_series(1, $1::int) g",
                          1, params, &st, &err);
    if (rc == PGETL_OK) {
        for (;;) {
            struct ArrowArray a;
            int en = st.get_next(&st, &a);
            if (en != 0) {
                const char *m = st.get_last_error(&st);
                rc = pgetl_error_set(&err, PGETL_EIO, "get_next: %s", m ? m : "");
                break;
            }
            if (!a.release)
                break;
            a.release(&a);
        }
        st.release(&st);
    }
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | stall server->client after 0.5 MB (io_timeout_s 1) | query->Arrow, "
           "with $1 (single-row mode) | %s | %.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_true(rc == PGETL_EIO || rc == PGETL_ECONNLOST);
    assert_non_null(strstr(err.message, "io_timeout_s (1.0 s) expired"));
    pgetl_pool_release(pool, conn);
    fp_pass(e.fp);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/* ---- statement_timeout_s ---------------------------------------------------- */

static void statement_blocked(fh_path path) {
    env e;
    char app[64];
    snprintf(app, sizeof app, "fault_stall_stmt_%d", (int)path);
    env_open(&e, app);
    e.cfg.statement_timeout_s = BOUND;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    /* Another session holds the table: every path's statement waits on it. */
    PGconn *locker = harness_pq();
    harness_sql(locker, "BEGIN");
    harness_sql(locker, "LOCK TABLE fault_t IN ACCESS EXCLUSIVE MODE");
    fh_query = "SELECT id, v FROM fault_t";
    fh_query_rows = 0;
    double secs;
    pgetl_code rc = fh_run_watched(path, pool, 3 * BOUND + 2, fh_path_name[path], &secs, &err);
    fh_query = FH_QUERY;
    fh_query_rows = FH_ROWS;
    harness_sql(locker, "ROLLBACK");
    PQfinish(locker);
    fh_report("server never answers: table locked (statement_timeout_s 1)", path, rc, &err, secs);
    if (path == FH_QUERY_ARROW) {
        /* The COPY starts only when the lock is granted: the error comes at once. */
        assert_int_equal(rc, PGETL_ESERVER);
    } else {
        assert_int_equal(rc, PGETL_ESERVER);
        assert_string_equal(err.sqlstate, "57014");
    }
    assert_non_null(strstr(err.message, "statement timeout"));
    if (fh_path_writes(path))
        assert_int_equal(fh_rows(e.pg), 0);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/* ---- tcp_user_timeout_s ----------------------------------------------------- */

static void tcp_user_timeout_copy(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_stall_tcp_user");
    e.cfg.tcp_user_timeout_s = BOUND;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    pgetl_conn *conn = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    pgetl_copy *copy = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "fault_t", NULL, &copy, &err), &err);
    fp_set(e.fp, FP_UP, FP_STALL, STALL_AT, 0);
    /* Write until the kernel gives up: the proxy's and our socket buffers
     * fill first (a few MB), then the zero window keeps our data unacked. */
    char id[32], v[128];
    const char *vals[2] = {id, v};
    pgetl_code rc = PGETL_OK;
    int64_t rows = 0;
    fh_watchdog_arm(3 * BOUND + 2 + 5, "COPY into a stalled proxy (tcp_user_timeout_s)");
    double t0 = fh_now();
    while (rc == PGETL_OK && rows < 5000000) {
        rows++;
        snprintf(id, sizeof id, "%lld", (long long)rows);
        snprintf(v, sizeof v, "row %lld with a good deal more padding text than the others",
                 (long long)rows);
        rc = pgetl_copy_write_row(copy, vals, NULL, &err);
    }
    if (rc == PGETL_OK)
        rc = pgetl_copy_end(copy, NULL, &err);
    else
        pgetl_copy_abort(copy, "test");
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    printf("FAULT | stall client->server, zero window (tcp_user_timeout_s 1) | records writer | "
           "%s | %.2f s | %s\n",
           pgetl_code_name(rc), secs, err.message);
    assert_int_equal(rc, PGETL_ECONNLOST);
    assert_non_null(strstr(err.message, "tcp_user_timeout_s (1 s) expired"));
    pgetl_pool_release(pool, conn);
    fp_pass(e.fp);
    assert_int_equal(fh_rows(e.pg), 0);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/* ---- keepalives_idle_s: the options reach the socket ------------------------- */

static void keepalive_options_applied(void **s) {
    (void)s;
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = harness_tcp_dsn();
    cfg.keepalives_idle_s = 6;
    cfg.tcp_user_timeout_s = 1.5;
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_connect(&cfg, &conn, &err), &err);
    int fd = PQsocket(pgetl_conn_pg(conn));
    int v = 0;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
    assert_int_equal(v, 1);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
    assert_int_equal(v, 6);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len), 0);
    assert_int_equal(v, 2);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
    assert_int_equal(v, 3);
    unsigned int ut = 0;
    len = sizeof ut;
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, &len), 0);
    assert_int_equal(ut, 1500);
    pgetl_conn_close(conn);
}

static void config_rejects_bad_bounds(void **s) {
    (void)s;
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = "";
    pgetl_error err;
    cfg.io_timeout_s = -1;
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    assert_non_null(strstr(err.message, "io_timeout_s"));
    cfg.io_timeout_s = 0;
    cfg.statement_timeout_s = 1e9;
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    assert_non_null(strstr(err.message, "statement_timeout_s"));
    cfg.statement_timeout_s = 0;
    cfg.tcp_user_timeout_s = 0.0 / 0.0;
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    assert_non_null(strstr(err.message, "tcp_user_timeout_s"));
    cfg.tcp_user_timeout_s = 0;
    cfg.keepalives_idle_s = -0.5;
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    assert_non_null(strstr(err.message, "keepalives_idle_s"));
}

#define PATHS(fn, prefix)                                                                          \
    static void prefix##_load(void **s) {                                                          \
        (void)s;                                                                                   \
        fn(FH_LOAD);                                                                               \
    }                                                                                              \
    static void prefix##_load_maxerr(void **s) {                                                   \
        (void)s;                                                                                   \
        fn(FH_LOAD_MAXERR);                                                                        \
    }                                                                                              \
    static void prefix##_load_jobs2(void **s) {                                                    \
        (void)s;                                                                                   \
        fn(FH_LOAD_JOBS2);                                                                         \
    }                                                                                              \
    static void prefix##_arrow(void **s) {                                                         \
        (void)s;                                                                                   \
        fn(FH_ARROW);                                                                              \
    }                                                                                              \
    static void prefix##_records(void **s) {                                                       \
        (void)s;                                                                                   \
        fn(FH_RECORDS);                                                                            \
    }                                                                                              \
    static void prefix##_query_arrow(void **s) {                                                   \
        (void)s;                                                                                   \
        fn(FH_QUERY_ARROW);                                                                        \
    }                                                                                              \
    static void prefix##_export(void **s) {                                                        \
        (void)s;                                                                                   \
        fn(FH_EXPORT);                                                                             \
    }

PATHS(io_stall, io_timeout)
PATHS(statement_blocked, statement_timeout)

static int teardown_all(void **state) {
    (void)state;
    fh_csv_cleanup();
    return 0;
}

#define T(name) cmocka_unit_test(name)

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        T(config_rejects_bad_bounds),
        T(keepalive_options_applied),
        T(connect_timeout_standalone),
        T(connect_timeout_pool),
        T(io_timeout_spares_idle),
        T(io_timeout_no_answer),
        T(io_timeout_query_arrow_params),
        T(io_timeout_load),
        T(io_timeout_load_maxerr),
        T(io_timeout_load_jobs2),
        T(io_timeout_arrow),
        T(io_timeout_records),
        T(io_timeout_query_arrow),
        T(io_timeout_export),
        T(statement_timeout_load),
        T(statement_timeout_load_maxerr),
        T(statement_timeout_load_jobs2),
        T(statement_timeout_arrow),
        T(statement_timeout_records),
        T(statement_timeout_query_arrow),
        T(statement_timeout_export),
        T(tcp_user_timeout_copy),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
