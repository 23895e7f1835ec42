/*
 * What the maintenance thread and the liveness check do, against the shared
 * cluster: idle and lifetime expiry, leak reports, a backend killed while
 * idle, DSN rotation, and the process-wide pool.
 */
#include "pool_helpers.h"

#include "connect/pool_int.h"

#include <netinet/in.h>
#include <sys/socket.h>

static int pid_of(pgetl_conn *c) {
    return (int)ph_conn_scalar(c, "SELECT pg_backend_pid()");
}

static void idle_above_min_closed(void **state) {
    (void)state;
    char app[64];
    ph_app("idle", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 3);
    cfg.max_idle_s = 0.2;
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = ph_get(pool);
    assert_int_equal(ph_wait_backends(pg, app, 3), 3);
    for (int i = 0; i < 3; i++)
        pgetl_pool_release(pool, c[i]);
    /* Two are above min and go after ~0.2 s; min stays. */
    PH_WAIT_STAT(pool, idle, 1);
    assert_int_equal(ph_wait_backends(pg, app, 1), 1);
    ph_sleep_ms(400);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.idle, 1);
    assert_int_equal(st.opened, 3);
    assert_int_equal(st.closed, 2);
    c[0] = ph_get(pool);
    assert_int_equal(ph_conn_scalar(c[0], "SELECT 1"), 1);
    pgetl_pool_release(pool, c[0]);
    pgetl_pool_destroy(pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

static void lifetime_expires_with_jitter(void **state) {
    (void)state;
    char app[64];
    ph_app("life", app, sizeof app);
    pgetl_config cfg = ph_config(app, 4, 4);
    cfg.max_lifetime_s = 0.5;
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *c = ph_get(pool);
    int first = pid_of(c);
    pgetl_pool_release(pool, c);
    /* Past 0.5 s * 1.1 every original connection is gone and min is
     * restored with new ones. */
    ph_sleep_ms(900);
    pgetl_pool_stats st;
    PH_WAIT_STAT(pool, idle, 4);
    pgetl_pool_get_stats(pool, &st);
    assert_true(st.closed >= 4);
    assert_true(st.opened >= 8);
    c = ph_get(pool);
    assert_int_not_equal(pid_of(c), first);
    pgetl_pool_release(pool, c);
    pgetl_pool_destroy(pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

/* Lifetimes get ±10 % jitter so that connections opened together do not all
 * expire (and reconnect) together. Checked on the slots themselves. */
static void lifetime_jitter_spreads_expiry(void **state) {
    (void)state;
    char app[64];
    ph_app("jit", app, sizeof app);
    enum { N = 8 };
    pgetl_config cfg = ph_config(app, N / 2, N);
    cfg.max_lifetime_s = 100;
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *c[N];
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int i = 0; i < N; i++) {
        c[i] = ph_get(pool);
        const pgetl_pool_slot *s = c[i]->slot; /* white box: pool_int.h */
        int64_t life = s->expires_ns - s->opened_ns;
        assert_true(life >= (int64_t)(90 * 1e9));
        assert_true(life <= (int64_t)(110 * 1e9));
        if (life < lo)
            lo = life;
        if (life > hi)
            hi = life;
    }
    /* Eight uniform draws over 20 s spread by far more than 100 ms. */
    assert_true(hi - lo > (int64_t)1e8);
    for (int i = 0; i < N; i++)
        pgetl_pool_release(pool, c[i]);
    pgetl_pool_destroy(pool);
}

static void leak_reported_once(void **state) {
    (void)state;
    char app[64];
    ph_app("leak", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 2);
    cfg.leak_threshold_s = 0.1;
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    pgetl_conn *quick = ph_get(pool);
    pgetl_pool_release(pool, quick); /* returned in time: no report */
    pgetl_conn *c = ph_get(pool);
    int line = __LINE__ - 1;
    PH_WAIT_STAT(pool, leaks_reported, 1);
    ph_sleep_ms(400); /* still held: reported once, not every tick */
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.leaks_reported, 1);
    char where[128];
    snprintf(where, sizeof where, "test_pool_maint.c:%d", line);
    assert_non_null(strstr(log->text, "event=pool_conn_leak"));
    assert_non_null(strstr(log->text, where));
    assert_int_equal(log->lines, 1);
    pgetl_pool_release(pool, c);
    /* A new hand-out of the same connection gets its own report. */
    c = ph_get(pool);
    PH_WAIT_STAT(pool, leaks_reported, 2);
    pgetl_pool_release(pool, c);
    harness_log_restore();
    pgetl_pool_destroy(pool);
}

static void wait_pid_gone(PGconn *pg, int pid) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
    for (int i = 0; i < 500 && harness_scalar(pg, sql) != 0; i++)
        ph_sleep_ms(10);
    assert_int_equal(harness_scalar(pg, sql), 0);
}

static void terminated_idle_conn_not_handed_out(void **state) {
    (void)state;
    char app[64];
    ph_app("term", app, sizeof app);
    pgetl_config cfg = ph_config(app, 2, 2);
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log_capture(PGETL_LOG_ERROR); /* the server's FATAL notice is expected */
    /*
     * Kill every idle backend behind the pool's back, and wait for those
     * pids to be gone: not for the application's count to reach 0, since
     * the maintenance thread's idle watch may already have replaced them.
     */
    assert_int_equal(ph_wait_backends(pg, app, 2), 2);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s(pid) FROM pg_stat_activity WHERE application_name = '%s'",
             "min", app);
    int first = (int)harness_scalar(pg, sql);
    snprintf(sql, sizeof sql, "SELECT %s(pid) FROM pg_stat_activity WHERE application_name = '%s'",
             "max", app);
    int second = (int)harness_scalar(pg, sql);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d), pg_terminate_backend(%d)", first,
             second);
    harness_sql(pg, sql);
    wait_pid_gone(pg, first);
    wait_pid_gone(pg, second);
    ph_sleep_ms(25); /* idle past the check threshold, on a coarse clock */
    pgetl_conn *a = ph_get(pool);
    pgetl_conn *b = ph_get(pool);
    assert_int_equal(ph_conn_scalar(a, "SELECT 1"), 1);
    assert_int_equal(ph_conn_scalar(b, "SELECT 2"), 2);
    assert_int_not_equal(pid_of(a), pid_of(b));
    pgetl_pool_release(pool, a);
    pgetl_pool_release(pool, b);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.lost, 2);
    assert_int_equal(st.opened, 4);
    assert_int_equal(st.returned_bad, 0);

    /* One more, on a connection that was just used (the hot path): it is
     * killed, then sits idle past the check threshold before the acquire. */
    a = ph_get(pool);
    int pid = pid_of(a);
    pgetl_pool_release(pool, a);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
    harness_sql(pg, sql);
    wait_pid_gone(pg, pid);
    ph_sleep_ms(25);
    for (int i = 0; i < 2; i++) {
        pgetl_conn *x = ph_get(pool);
        assert_int_not_equal(pid_of(x), pid);
        pgetl_pool_release(pool, x);
    }
    harness_log_restore();
    pgetl_pool_destroy(pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

/* The maintenance thread notices idle connections that died and reopens
 * pool_min of them without waiting for an acquire. */
static void dead_idle_conns_replaced_in_background(void **state) {
    (void)state;
    char app[64];
    ph_app("heal", app, sizeof app);
    pgetl_config cfg = ph_config(app, 2, 3);
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log_capture(PGETL_LOG_ERROR);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
             "'%s'",
             app);
    harness_sql(pg, sql);
    PH_WAIT_STAT(pool, lost, 2);
    PH_WAIT_STAT(pool, opened, 4);
    PH_WAIT_STAT(pool, idle, 2);
    assert_int_equal(ph_wait_backends(pg, app, 2), 2);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.acquired, 0);
    harness_log_restore();
    pgetl_pool_destroy(pool);
    PQfinish(pg);
}

static void dsn_rotation(void **state) {
    (void)state;
    char app[64];
    ph_app("rot", app, sizeof app);
    PGconn *pg = harness_pq();
    char dsn[512];
    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%s dbname=%s user=pgetl_pw password=pgetl-secret", PQport(pg),
             PQdb(pg));
    pgetl_config cfg = ph_config(app, 2, 3);
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    char user[64];
    pgetl_conn *old = ph_get(pool);
    ph_conn_text(old, "SELECT current_user", user, sizeof user);
    assert_string_equal(user, "postgres");

    pgetl_error err;
    /* A DSN that does not parse leaves the pool as it was. */
    assert_int_equal(pgetl_pool_set_dsn(pool, "password=hunter2 host='oops", &err), PGETL_ECONFIG);
    assert_null(strstr(err.message, "hunter2"));
    pgetl_conn *still = ph_get(pool);
    ph_conn_text(still, "SELECT current_user", user, sizeof user);
    assert_string_equal(user, "postgres");
    pgetl_pool_release(pool, still);

    assert_pgetl_ok(pgetl_pool_set_dsn(pool, dsn, &err), &err);
    /* Every new hand-out is a new connection with the new credentials, even
     * though an idle old one exists. */
    pgetl_conn *n1 = ph_get(pool);
    pgetl_conn *n2 = ph_get(pool);
    ph_conn_text(n1, "SELECT current_user", user, sizeof user);
    assert_string_equal(user, "pgetl_pw");
    ph_conn_text(n2, "SELECT current_user", user, sizeof user);
    assert_string_equal(user, "pgetl_pw");
    /* The old one still works for its holder, and retires on return. */
    ph_conn_text(old, "SELECT current_user", user, sizeof user);
    assert_string_equal(user, "postgres");
    pgetl_pool_release(pool, old);
    pgetl_pool_release(pool, n1);
    pgetl_pool_release(pool, n2);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND usename = "
             "'postgres'",
             app);
    for (int i = 0; i < 500 && harness_scalar(pg, q) != 0; i++)
        ph_sleep_ms(10);
    assert_int_equal(harness_scalar(pg, q), 0);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.closed, 2); /* both postgres connections retired */
    /* The new password never reaches a log line. */
    assert_non_null(strstr(log->text, "event=pool_set_dsn"));
    assert_null(strstr(log->text, "pgetl-secret"));
    harness_log_restore();
    pgetl_pool_destroy(pool);
    PQfinish(pg);
}

/* Rotating to credentials the server refuses: callers get the server's
 * reason (never the password) and the pool recovers on the next rotation. */
static void dsn_rotation_to_bad_password(void **state) {
    (void)state;
    char app[64];
    ph_app("rotbad", app, sizeof app);
    PGconn *pg = harness_pq();
    char bad[512], good[512];
    snprintf(bad, sizeof bad,
             "host=127.0.0.1 port=%s dbname=%s user=pgetl_pw password=wrong-secret-42", PQport(pg),
             PQdb(pg));
    snprintf(good, sizeof good,
             "host=127.0.0.1 port=%s dbname=%s user=pgetl_pw password=pgetl-secret", PQport(pg),
             PQdb(pg));
    pgetl_config cfg = ph_config(app, 1, 1);
    cfg.acquire_timeout_s = 0.5;
    pgetl_pool *pool = ph_make_pool(&cfg);
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_set_dsn(pool, bad, &err), &err);
    pgetl_conn *c = NULL;
    assert_int_equal(pgetl_pool_acquire(pool, &c, &err), PGETL_ETIMEOUT);
    assert_null(c);
    assert_non_null(strstr(err.message, "last connection attempt failed"));
    assert_non_null(strstr(err.message, "password authentication failed"));
    assert_null(strstr(err.message, "wrong-secret-42"));
    assert_pgetl_ok(pgetl_pool_set_dsn(pool, good, &err), &err);
    c = ph_get(pool);
    char user[64];
    ph_conn_text(c, "SELECT current_user", user, sizeof user);
    assert_string_equal(user, "pgetl_pw");
    pgetl_pool_release(pool, c);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_true(st.connect_errors >= 1);
    assert_null(strstr(log->text, "wrong-secret-42"));
    assert_null(strstr(log->text, "pgetl-secret"));
    harness_log_restore();
    pgetl_pool_destroy(pool);
    PQfinish(pg);
}

static void global_pool(void **state) {
    (void)state;
    char app[64];
    ph_app("glob", app, sizeof app);
    PGconn *pg = harness_pq();
    pgetl_config cfg = ph_config(app, 1, 3);
    pgetl_conn *a = NULL, *b = NULL;
    pgetl_error err;
    /* Created on first use, with min connections, growing on demand. */
    assert_pgetl_ok(pgetl_get_connection(&cfg, &a, &err), &err);
    assert_pgetl_ok(pgetl_get_connection(&cfg, &b, &err), &err);
    assert_ptr_not_equal(a, b);
    assert_int_equal(ph_wait_backends(pg, app, 2), 2);
    pgetl_release_connection(a);
    pgetl_conn_close(b); /* a pooled connection goes back, not closed */
    assert_int_equal(ph_backends_on(pg, app), 2);
    /* Reuse, not reopen. */
    assert_pgetl_ok(pgetl_get_connection(&cfg, &a, &err), &err);
    assert_int_equal(ph_conn_scalar(a, "SELECT 1"), 1);
    pgetl_release_connection(a);
    assert_int_equal(ph_backends_on(pg, app), 2);

    /* Another DSN is refused, password redacted. */
    pgetl_config other = cfg;
    other.dsn = "host=127.0.0.1 user=x password=hunter2";
    assert_int_equal(pgetl_get_connection(&other, &a, &err), PGETL_ECONFIG);
    assert_null(a);
    assert_null(strstr(err.message, "hunter2"));
    assert_non_null(strstr(err.message, "pgetl_shutdown"));

    pgetl_shutdown();
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    pgetl_shutdown(); /* twice is fine */
    /* A later call makes a new pool. */
    assert_pgetl_ok(pgetl_get_connection(&cfg, &a, &err), &err);
    assert_int_equal(ph_wait_backends(pg, app, 1), 1);
    pgetl_release_connection(a);
    pgetl_shutdown();
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

typedef struct global_user {
    const pgetl_config *cfg;
    pgetl_conn *conn;
    pgetl_code rc;
    pgetl_error err;
} global_user;

static void *global_user_main(void *p) {
    global_user *u = p;
    u->rc = pgetl_get_connection(u->cfg, &u->conn, &u->err);
    return NULL;
}

/* Many threads racing to create the process-wide pool get one pool; a
 * connection still out at pgetl_shutdown is closed when released later. */
static void global_pool_concurrent_first_use(void **state) {
    (void)state;
    char app[64];
    ph_app("globrace", app, sizeof app);
    PGconn *pg = harness_pq();
    pgetl_config cfg = ph_config(app, 1, 8);
    enum { N = 8 };
    global_user u[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        u[i] = (global_user){.cfg = &cfg};
        pthread_create(&t[i], NULL, global_user_main, &u[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_pgetl_ok(u[i].rc, &u[i].err);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(u[i].conn, u[j].conn);
    }
    /* One pool: at most max backends, whatever the race. */
    assert_int_equal(ph_wait_backends(pg, app, N), N);
    for (int i = 1; i < N; i++)
        pgetl_release_connection(u[i].conn);
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    pgetl_shutdown(); /* u[0] is still out */
    assert_non_null(strstr(log->text, "event=pool_close_outstanding"));
    assert_int_equal(ph_wait_backends(pg, app, 1), 1);
    assert_int_equal(ph_conn_scalar(u[0].conn, "SELECT 1"), 1);
    pgetl_release_connection(u[0].conn);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    harness_log_restore();
    PQfinish(pg);
}

typedef struct holder {
    pgetl_pool *pool;
    int hold_ms;
} holder;

static void *hold_then_release(void *p) {
    holder *h = p;
    pgetl_conn *c = ph_get(h->pool);
    ph_sleep_ms(h->hold_ms);
    pgetl_pool_release(h->pool, c);
    return NULL;
}

static void growth_happens_off_the_caller(void **state) {
    (void)state;
    /* The connection beyond min is opened by the maintenance thread while
     * the caller waits in the queue; meanwhile a release hands over the
     * first connection free. Either way every caller is served and the pool
     * ends with max connections, none leaked. */
    char app[64];
    ph_app("growth", app, sizeof app);
    pgetl_config cfg = ph_config(app, 1, 2);
    PGconn *pg = harness_pq();
    pgetl_pool *pool = ph_make_pool(&cfg);
    pgetl_conn *a = ph_get(pool);
    holder h = {pool, 30};
    pthread_t t;
    pthread_create(&t, NULL, hold_then_release, &h);
    pthread_join(t, NULL);
    pgetl_conn *b = ph_get(pool);
    assert_int_not_equal(pid_of(a), pid_of(b));
    PH_WAIT_STAT(pool, opened, 2);
    pgetl_pool_release(pool, a);
    pgetl_pool_release(pool, b);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.idle, 2);
    assert_int_equal(st.acquired, 3);
    pgetl_pool_destroy(pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

/*
 * A listener that never accepts: the kernel completes the TCP handshake, then
 * libpq waits for an answer until connect_timeout. Listed first in a
 * multi-host DSN it makes every new connection take ~2 s before libpq falls
 * through to the real server.
 */
static int blackhole(int *port_out) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot set up the blackhole listener");
    *port_out = ntohs(a.sin_port);
    return fd;
}

typedef struct grower {
    pgetl_pool *pool;
    pgetl_conn *got;
    double waited;
} grower;

static void *grow_main(void *p) {
    grower *g = p;
    double t0 = ph_now();
    g->got = ph_get(g->pool);
    g->waited = ph_now() - t0;
    return NULL;
}

/* The caller that triggers growth is not stuck behind the slow connect: it
 * waits in the queue and takes whichever connection is ready first. */
static void growth_waiter_takes_first_free(void **state) {
    (void)state;
    char app[64];
    ph_app("slowgrow", app, sizeof app);
    PGconn *pg = harness_pq();
    int bh_port = 0;
    int bh = blackhole(&bh_port);
    char dsn[1024];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1,%s port=%d,%s user=%s dbname=%s", PQhost(pg), bh_port,
             PQport(pg), PQuser(pg), PQdb(pg));
    pgetl_config cfg = ph_config(app, 1, 2);
    cfg.dsn = dsn;
    cfg.connect_timeout_s = 2;
    cfg.acquire_timeout_s = 20;
    pgetl_pool *pool = ph_make_pool(&cfg); /* ~2 s: the first connection */
    pgetl_conn *a = ph_get(pool);
    grower g = {.pool = pool};
    pthread_t t;
    pthread_create(&t, NULL, grow_main, &g);
    PH_WAIT_STAT(pool, waiting, 1); /* queued; a new connection is on its way */
    ph_sleep_ms(100);
    pgetl_pool_release(pool, a);
    pthread_join(t, NULL);
    assert_ptr_equal(g.got, a); /* the released one, long before the new one */
    assert_true(g.waited < 1.5);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.opened, 1);
    /* The growth still completes in the background. */
    for (int i = 0; i < 600 && st.opened < 2; i++) {
        ph_sleep_ms(10);
        pgetl_pool_get_stats(pool, &st);
    }
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.idle, 1);
    pgetl_pool_release(pool, g.got);
    pgetl_pool_destroy(pool);
    close(bh);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    PQfinish(pg);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_above_min_closed),
        cmocka_unit_test(lifetime_expires_with_jitter),
        cmocka_unit_test(lifetime_jitter_spreads_expiry),
        cmocka_unit_test(leak_reported_once),
        cmocka_unit_test(terminated_idle_conn_not_handed_out),
        cmocka_unit_test(dead_idle_conns_replaced_in_background),
        cmocka_unit_test(dsn_rotation),
        cmocka_unit_test(dsn_rotation_to_bad_password),
        cmocka_unit_test(global_pool),
        cmocka_unit_test(global_pool_concurrent_first_use),
        cmocka_unit_test(growth_happens_off_the_caller),
        cmocka_unit_test(growth_waiter_takes_first_free),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
