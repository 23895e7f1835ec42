/*
 * The kernel's own bounds against a peer that vanished: tcp_user_timeout_s
 * and keepalives_idle_s, tested with a real black hole instead of the fault
 * proxy (whose kernel ACKs everything and answers keepalive probes, so it
 * can never look dead).
 *
 * Over TCP to the test cluster, the test opens a pool connection, reads its
 * local port (getsockname on PQsocket), and makes that one connection a
 * black hole: an nftables table of this process's own,
 * `inet pgetl_blackhole_<pid>`, whose input-hook chain drops every TCP
 * packet between the server's port and that client port, both ways. Packets
 * leave their sender normally and vanish (an output-hook drop would instead
 * fail the sender's transmit locally, which TCP handles differently from a
 * lost packet); no other connection on the machine is affected. The table
 * is deleted after each case, in each test's teardown, and by a guardian
 * process that deletes it when this process dies in any way (a failed
 * assertion, the hang watchdog's _exit, a crash or a kill).
 *
 * - tcp_user_timeout_s 2: a COPY in (records writer, pgetl_load_files) is
 *   sending when the black hole starts: the data stays unacknowledged and
 *   the kernel's user timeout ends the connection.
 * - keepalives_idle_s 2: a statement (pg_sleep) is waiting for its result,
 *   nothing is outstanding, so only keepalive probes can notice. pgetl sets
 *   idle 2 s, interval ceil(2/3) = 1 s, 3 probes: the kernel gives up about
 *   2 + 3 * 1 = 5 s after the last packet.
 *
 * io_timeout_s is off in every case, so only the kernel can end the wait.
 * Each case asserts PGETL_ECONNLOST and a message naming the bound, that it
 * returned within the bound plus generous slack (timed from the moment the
 * black hole started), zero rows committed, and that the pool recovers once
 * the table is deleted. The hang watchdog fails the binary at 3x the bound
 * plus 2 s.
 *
 * Root is required: nft needs CAP_NET_ADMIN. The CTest `db` fixture runs
 * only the PostgreSQL server as `postgres` (scripts/testdb.sh, runuser); the
 * test binaries run as the user who runs ctest, which is root in CI
 * (.ci/run). Without nft (scripts/deps.sh installs nftables) or without the
 * privilege every case FAILS with a message saying so; it never skips.
 */
#define _GNU_SOURCE
#include "fault_helpers.h"

#include "pgetl/libpq.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* Slack on top of each bound: generous, for a loaded machine. */
#define SLACK_S 5.0

/* ---- the black hole --------------------------------------------------------- */

static char bh_table[64]; /* inet pgetl_blackhole_<pid> */
static bool bh_on;
static int bh_guard_fd = -1; /* the guardian's pipe: held open, never written */

/* Runs an nft script; returns nft's exit status (127: no nft). */
static int nft_run(const char *script) {
    FILE *p = popen("nft -f - 2>&1", "w");
    if (!p)
        return -1;
    fputs(script, p);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void nft_fail(int rc, const char *what) {
    fail_msg("nft %s failed (exit %d). This test makes a connection a black hole with "
             "nftables: it needs the nft tool (scripts/deps.sh installs nftables) and root "
             "(CAP_NET_ADMIN); running as uid %d",
             what, rc, (int)geteuid());
}

/*
 * A child that deletes the table once this process is gone, however it went:
 * it reads a pipe whose only write end is ours until EOF. Started before any
 * thread, so the fork is plain.
 */
static void bh_guard_start(void) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "cat >/dev/null; nft delete table %s 2>/dev/null", bh_table);
        dup2(fds[0], 0);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    bh_guard_fd = fds[1];
}

/* Drops every TCP packet between server_port and client_port, both ways. */
static int bh_start(int server_port, int client_port) {
    char script[1024];
    /* Adding then deleting first makes the script start from nothing even if
     * a table of this name (a dead process with our pid) was left. */
    snprintf(script, sizeof script,
             "table %s\n"
             "delete table %s\n"
             "table %s {\n"
             "  chain drop_in {\n"
             "    type filter hook input priority -10; policy accept;\n"
             "    tcp sport %d tcp dport %d drop\n"
             "    tcp sport %d tcp dport %d drop\n"
             "  }\n"
             "}\n",
             bh_table, bh_table, bh_table, server_port, client_port, client_port, server_port);
    bh_on = true;
    return nft_run(script);
}

/* Deletes the table; returns nft's status (0 when there was none to delete). */
static int bh_stop(void) {
    if (!bh_on)
        return 0;
    bh_on = false;
    char script[128];
    snprintf(script, sizeof script, "delete table %s\n", bh_table);
    return nft_run(script);
}

static void bh_start_or_fail(int server_port, int client_port) {
    int rc = bh_start(server_port, client_port);
    if (rc != 0) {
        bh_stop();
        nft_fail(rc, "add table");
    }
}

static void bh_stop_or_fail(void) {
    int rc = bh_stop();
    if (rc != 0)
        nft_fail(rc, "delete table");
}

/* ---- environment ------------------------------------------------------------ */

static int local_port(pgetl_conn *conn) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    int fd = PQsocket(pgetl_conn_pg(conn));
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("getsockname on the connection's socket failed");
    if (a.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&a)->sin_port);
    if (a.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    fail_msg("the connection is not TCP (family %d)", (int)a.ss_family);
    return -1;
}

typedef struct env {
    PGconn *pg;
    char app[64];
    int fds0;
    pgetl_config cfg;
} env;

static void env_open(env *e, const char *app) {
    memset(e, 0, sizeof *e);
    /* Fail at once, before a pool exists, when nft cannot work here. */
    int rc = nft_run("list tables\n");
    if (rc != 0)
        nft_fail(rc, "list tables");
    e->pg = harness_pq();
    fh_reset_table(e->pg);
    snprintf(e->app, sizeof e->app, "%s", app);
    fh_csv(false);
    e->fds0 = fh_fd_count();
    e->cfg = fh_config(harness_tcp_dsn(), e->app);
    e->cfg.pool_max = 1; /* the connection whose port we read is the one used */
    e->cfg.acquire_timeout_s = 10;
    e->cfg.connect_timeout_s = 5;
    e->cfg.io_timeout_s = 0;
}

/*
 * After the pool is gone: no backend, no descriptor left, and still no row
 * once the old backend's transaction is gone. The backend of a black-holed
 * connection never learns that the client gave up (the client's kernel
 * gave up silently, or its reset was dropped too), so it is terminated here.
 */
static void env_close(env *e) {
    fh_terminate(e->pg, e->app);
    assert_int_equal(fh_wait_backends_gone(e->pg, e->app), 0);
    assert_int_equal(fh_fd_count(), e->fds0);
    assert_int_equal(fh_rows(e->pg), 0);
    PQfinish(e->pg);
}

/* Acquires the pool's one connection and returns its local port. */
static int pooled_port(pgetl_pool *pool) {
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    int port = local_port(conn);
    pgetl_pool_release(pool, conn);
    return port;
}

/* ---- tcp_user_timeout_s ------------------------------------------------------ */

#define USER_TIMEOUT 2.0
#define BH_AT_BYTES 500000

static void user_timeout_check(env *e, pgetl_pool *pool, const char *what, pgetl_code rc,
                               const pgetl_error *err, double secs, double bound) {
    printf("FAULT | black hole mid-COPY (tcp_user_timeout_s 2, io_timeout_s 0) | %s | %s | "
           "%.2f s | %s\n",
           what, pgetl_code_name(rc), secs, err->message);
    fflush(stdout);
    bh_stop_or_fail();
    assert_int_equal(rc, PGETL_ECONNLOST);
    assert_non_null(strstr(err->message, "tcp_user_timeout_s (2 s)"));
    assert_non_null(strstr(err->message, " expired"));
    assert_true(secs <= bound + SLACK_S);
    assert_int_equal(fh_rows(e->pg), 0);
    fh_assert_pool_recovers(pool);
    assert_int_equal(fh_rows(e->pg), 0);
}

static void user_timeout_records(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_bh_user_records");
    e.cfg.tcp_user_timeout_s = USER_TIMEOUT;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    pgetl_conn *conn = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    int port = local_port(conn);
    pgetl_copy *copy = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "fault_t", NULL, &copy, &err), &err);
    char id[32], v[128];
    const char *vals[2] = {id, v};
    pgetl_code rc = PGETL_OK;
    int64_t rows = 0, bytes = 0;
    double t0 = 0;
    /* Without the black hole this would finish (and commit) in seconds. */
    while (rc == PGETL_OK && rows < 2000000) {
        rows++;
        snprintf(id, sizeof id, "%lld", (long long)rows);
        int n = snprintf(v, sizeof v, "row %lld with a good deal of padding text", (long long)rows);
        bytes += n + 8;
        rc = pgetl_copy_write_row(copy, vals, NULL, &err);
        if (t0 == 0 && bytes >= BH_AT_BYTES) {
            bh_start_or_fail(harness_port(), port);
            fh_watchdog_arm(3 * USER_TIMEOUT + 2, "records writer into a black hole");
            t0 = fh_now();
        }
    }
    if (rc == PGETL_OK)
        rc = pgetl_copy_end(copy, NULL, &err);
    else
        pgetl_copy_abort(copy, "test");
    if (rc == PGETL_OK)
        rc = pgetl_commit(conn, &err);
    double secs = fh_now() - t0;
    fh_watchdog_disarm();
    pgetl_pool_release(pool, conn);
    user_timeout_check(&e, pool, "records writer", rc, &err, secs, USER_TIMEOUT);
    fh_assert_loss_message(FH_RECORDS, &err);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

typedef struct load_bh {
    int server_port, client_port;
    int nft_rc;
    bool started;
    double t0;
} load_bh;

/* The load's progress callback (on the calling thread, while batches go out):
 * starts the black hole once ~0.5 MB of input has been read. */
static void load_progress(void *user, const pgetl_load_progress *p) {
    load_bh *b = user;
    if (b->started || p->done || p->bytes_read < BH_AT_BYTES)
        return;
    b->started = true;
    /* No fail_msg here: a longjmp out of the loader would skip its cleanup. */
    b->nft_rc = bh_start(b->server_port, b->client_port);
    b->t0 = fh_now();
    if (b->nft_rc == 0)
        fh_watchdog_arm(3 * (USER_TIMEOUT + 3) + 2, "pgetl_load_files into a black hole");
}

static void user_timeout_load(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_bh_user_load");
    /*
     * The load sends from a worker thread while this callback runs on the
     * reader's, so the black hole may start while the worker waits for a
     * COPY's result with every byte it sent acknowledged: no unacknowledged
     * data, so only keepalives can notice (as with the CLI's defaults).
     * Both are set; whichever fires, the load ends within idle + 3 probes.
     */
    e.cfg.tcp_user_timeout_s = USER_TIMEOUT;
    e.cfg.keepalives_idle_s = USER_TIMEOUT;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    load_bh b = {.server_port = harness_port(), .client_port = pooled_port(pool)};
    pgetl_load_options o;
    pgetl_load_options_init(&o);
    o.table = "fault_t";
    o.batch_rows = 20000;
    o.progress = load_progress;
    o.progress_user = &b;
    o.progress_interval_s = 0;
    const char *paths[1] = {fh_csv(false)};
    pgetl_load_stats st;
    pgetl_code rc = pgetl_load_files(pool, paths, 1, &o, &st, &err);
    double secs = fh_now() - b.t0;
    if (b.started && b.nft_rc == 0)
        fh_watchdog_disarm();
    if (b.nft_rc != 0) {
        bh_stop();
        nft_fail(b.nft_rc, "add table");
    }
    if (!b.started)
        fail_msg("the load ended (%s) before the black hole started", pgetl_code_name(rc));
    user_timeout_check(&e, pool, "load (atomic)", rc, &err, secs, USER_TIMEOUT + 3 * 1.0);
    assert_false(st.committed);
    fh_assert_loss_message(FH_LOAD, &err);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/* ---- keepalives_idle_s -------------------------------------------------------- */

#define KA_IDLE 2.0
/* What pgetl gives libpq for keepalives_idle_s 2 (src/connect/conn.c): idle
 * 2 s, interval ceil(2 / 3) = 1 s, count 3. */
#define KA_TOTAL (KA_IDLE + 3 * 1.0)

typedef struct sleeper {
    pgetl_conn *conn;
    pgetl_code rc;
    pgetl_error err;
    double t_end;
    atomic_int done;
} sleeper;

static void *sleeper_main(void *arg) {
    sleeper *sl = arg;
    sl->rc = pgetl_execute(sl->conn, "SELECT pg_sleep(60)", 0, NULL, NULL, &sl->err);
    sl->t_end = fh_now();
    atomic_store(&sl->done, 1);
    return NULL;
}

/* Whether the backend of `app` is running pg_sleep (and so read the whole statement). */
static bool backend_sleeping(PGconn *pg, const char *app) {
    const char *params[1] = {app};
    PGresult *r = PQexecParams(pg,
                               "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                               "AND state = 'active' AND wait_event = 'PgSleep'",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg_stat_activity: %s", PQerrorMessage(pg));
    bool yes = strtoll(PQgetvalue(r, 0, 0), NULL, 10) == 1;
    PQclear(r);
    return yes;
}

static void keepalive_idle_wait(void **s) {
    (void)s;
    env e;
    env_open(&e, "fault_bh_keepalive");
    e.cfg.keepalives_idle_s = KA_IDLE;
    e.cfg.tcp_user_timeout_s = 0;
    pgetl_pool *pool = fh_pool_create(&e.cfg);
    pgetl_error err;
    pgetl_conn *conn = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    int port = local_port(conn);
    int fd = PQsocket(pgetl_conn_pg(conn));
    /* A write in the same transaction: it must not be committed. */
    assert_pgetl_ok(
        pgetl_execute(conn, "INSERT INTO fault_t VALUES (1, 'uncommitted')", 0, NULL, NULL, &err),
        &err);
    sleeper sl = {.conn = conn};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sleeper_main, &sl), 0);
    /* The statement reached the server, and every byte we sent is acknowledged:
     * from here on nothing is outstanding, so only keepalives can notice. */
    bool ready = false;
    for (int i = 0; i < 500 && !ready && !atomic_load(&sl.done); i++) {
        struct tcp_info ti;
        socklen_t len = sizeof ti;
        ready = backend_sleeping(e.pg, e.app) &&
                getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_unacked == 0;
        if (!ready)
            usleep(10000);
    }
    if (!ready) {
        fh_terminate(e.pg, e.app);
        pthread_join(t, NULL);
        fail_msg("pg_sleep never started with nothing unacknowledged (%s)", sl.err.message);
    }
    int nrc = bh_start(harness_port(), port);
    double t0 = fh_now();
    if (nrc != 0) {
        bh_stop();
        fh_terminate(e.pg, e.app);
        pthread_join(t, NULL);
        nft_fail(nrc, "add table");
    }
    fh_watchdog_arm(3 * KA_TOTAL + 2, "pg_sleep behind a black hole (keepalives_idle_s)");
    pthread_join(t, NULL);
    fh_watchdog_disarm();
    double secs = sl.t_end - t0;
    printf("FAULT | black hole while a statement waits (keepalives_idle_s 2: idle 2 + 3 x 1 s, "
           "tcp_user_timeout_s 0, io_timeout_s 0) | pgetl_execute | %s | %.2f s | %s\n",
           pgetl_code_name(sl.rc), secs, sl.err.message);
    fflush(stdout);
    pgetl_pool_release(pool, conn);
    bh_stop_or_fail();
    assert_int_equal(sl.rc, PGETL_ECONNLOST);
    assert_non_null(strstr(sl.err.message, "keepalives_idle_s (2 s) expired"));
    assert_true(secs <= KA_TOTAL + SLACK_S);
    assert_int_equal(fh_rows(e.pg), 0);
    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    env_close(&e);
}

/* ---- fixture ----------------------------------------------------------------- */

static int teardown_case(void **state) {
    (void)state;
    if (bh_stop() != 0)
        fprintf(stderr, "test_fault_blackhole: could not delete nft table %s\n", bh_table);
    return 0;
}

static int setup_all(void **state) {
    (void)state;
    /* A missing nft must fail the case that runs it, not kill us by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    snprintf(bh_table, sizeof bh_table, "inet pgetl_blackhole_%d", (int)getpid());
    bh_guard_start();
    return 0;
}

static int teardown_all(void **state) {
    (void)state;
    bh_stop();
    fh_csv_cleanup();
    return 0;
}

#define T(name) cmocka_unit_test_teardown(name, teardown_case)

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        T(user_timeout_records),
        T(user_timeout_load),
        T(keepalive_idle_wait),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
