/*
 * Server outages, on a PRIVATE cluster (so stopping it never disturbs the
 * tests sharing the common one): a restart is survived without restarting
 * the process; a longer outage makes acquires fail at once with
 * PGETL_ECONNECT and the last (redacted) connection error, reconnects back
 * off exponentially, and the pool recovers when the server returns.
 * Connections use the password role over TCP so that the password's absence
 * from messages and logs is checked where it matters.
 */
#include "pool_helpers.h"

#include <sys/stat.h>

static harness_private priv;

static int testdb(const char *cmd, const char *arg) {
    return harness_private_cmd(&priv, cmd, arg);
}

static int setup(void **state) {
    (void)state;
    return harness_private_start(&priv, "pool-outage");
}

static int teardown(void **state) {
    (void)state;
    harness_private_stop(&priv);
    return 0;
}

static pgetl_config outage_config(const char *app, int min, int max) {
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = priv.dsn;
    cfg.application_name = app;
    cfg.pool_min = min;
    cfg.pool_max = max;
    cfg.acquire_timeout_s = 10;
    cfg.connect_timeout_s = 2;
    return cfg;
}

static void server_restart_recovered(void **state) {
    (void)state;
    char app[64];
    ph_app("restart", app, sizeof app);
    pgetl_config cfg = outage_config(app, 2, 3);
    pgetl_pool *pool = NULL;
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    assert_pgetl_ok(pgetl_pool_create(&cfg, &pool, &err), &err);
    pgetl_conn *c = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &c, &err), &err);
    int before = (int)ph_conn_scalar(c, "SELECT pg_backend_pid()");
    pgetl_pool_release(pool, c);

    assert_int_equal(testdb("restart", "fast"), 0);

    /* Both idle connections are dead now; neither may be handed out. */
    pgetl_conn *a = NULL, *b = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &a, &err), &err);
    assert_pgetl_ok(pgetl_pool_acquire(pool, &b, &err), &err);
    assert_int_equal(ph_conn_scalar(a, "SELECT 1"), 1);
    assert_int_equal(ph_conn_scalar(b, "SELECT 2"), 2);
    assert_int_not_equal((int)ph_conn_scalar(a, "SELECT pg_backend_pid()"), before);
    pgetl_pool_release(pool, a);
    pgetl_pool_release(pool, b);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.lost, 2);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.timeouts, 0);
    pgetl_pool_destroy(pool);
    assert_null(strstr(log->text, "pgetl-secret"));
    harness_log_restore();
}

static void outage_fails_fast_then_recovers(void **state) {
    (void)state;
    char app[64];
    ph_app("outage", app, sizeof app);
    pgetl_config cfg = outage_config(app, 1, 2);
    cfg.acquire_timeout_s = 0.3;
    cfg.reconnect_timeout_s = 1.0;
    pgetl_pool *pool = NULL;
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    assert_pgetl_ok(pgetl_pool_create(&cfg, &pool, &err), &err);

    assert_int_equal(testdb("halt", "fast"), 0);
    double down_at = ph_now();

    /* At first callers wait out their timeout (the server may come back);
     * past reconnect_timeout_s they fail at once with the last error. */
    pgetl_conn *c = NULL;
    pgetl_code rc = PGETL_OK;
    int timeouts = 0;
    while (ph_now() - down_at < 10) {
        rc = pgetl_pool_acquire(pool, &c, &err);
        assert_null(c);
        if (rc == PGETL_ECONNECT)
            break;
        assert_int_equal(rc, PGETL_ETIMEOUT);
        assert_non_null(strstr(err.message, "last connection attempt failed"));
        timeouts++;
    }
    assert_int_equal(rc, PGETL_ECONNECT);
    assert_true(timeouts >= 1);
    assert_true(ph_now() - down_at >= 1.0);
    double t0 = ph_now();
    rc = pgetl_pool_acquire(pool, &c, &err);
    assert_true(ph_now() - t0 < 0.1); /* at once, no waiting */
    assert_int_equal(rc, PGETL_ECONNECT);
    assert_non_null(strstr(err.message, "pool cannot connect: failing for"));
    assert_non_null(strstr(err.message, "Connection refused"));
    assert_null(strstr(err.message, "pgetl-secret"));

    /* Backoff: attempts at 50 ms, 100 ms, 200 ms ... not a busy loop. */
    ph_sleep_ms(1000);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    double elapsed = ph_now() - down_at;
    print_message("down %.1f s: %lld connect attempts failed\n", elapsed,
                  (long long)st.connect_errors);
    assert_true(st.connect_errors >= 3);
    assert_true(st.connect_errors <= 12);

    assert_int_equal(testdb("resume", NULL), 0);
    double up_at = ph_now();
    rc = PGETL_ECONNECT;
    while (ph_now() - up_at < 15) {
        rc = pgetl_pool_acquire(pool, &c, &err);
        if (rc == PGETL_OK)
            break;
        ph_sleep_ms(50);
    }
    assert_int_equal(rc, PGETL_OK);
    print_message("recovered %.2f s after the server came back\n", ph_now() - up_at);
    assert_int_equal(ph_conn_scalar(c, "SELECT 1"), 1);
    pgetl_pool_release(pool, c);
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_true(st.lost >= 1);
    pgetl_pool_destroy(pool);

    assert_non_null(strstr(log->text, "event=pool_down"));
    assert_non_null(strstr(log->text, "event=pool_reconnected"));
    assert_null(strstr(log->text, "pgetl-secret"));
    harness_log_restore();
}

typedef struct late_waiter {
    pgetl_pool *pool;
    pgetl_conn *got;
    pgetl_code rc;
    pgetl_error err;
} late_waiter;

static void *late_waiter_main(void *p) {
    late_waiter *w = p;
    w->rc = pgetl_pool_acquire(w->pool, &w->got, &w->err);
    return NULL;
}

/*
 * The server refuses new connections while the existing one works (a role
 * connection limit stands in for "too many clients"). Failing to grow for
 * longer than reconnect_timeout_s must not fail callers at once while a
 * connection is out that can still come back: they wait, get it when it is
 * released, and otherwise time out with the server's reason.
 */
static void refused_growth_still_serves_returns(void **state) {
    (void)state;
    char app[64], role[64];
    ph_app("limit", app, sizeof app);
    snprintf(role, sizeof role, "pt_limited_%d", (int)getpid());
    PGconn *pg = harness_pq(); /* the shared cluster: no restart here */
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN CONNECTION LIMIT 1", role);
    harness_sql(pg, sql);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "host=%s port=%s dbname=%s user=%s", PQhost(pg), PQport(pg), PQdb(pg),
             role);
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    cfg.application_name = app;
    cfg.pool_min = 1;
    cfg.pool_max = 2;
    cfg.acquire_timeout_s = 1.0;
    cfg.reconnect_timeout_s = 0.2;
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &pool, &err), &err);
    harness_log_capture(PGETL_LOG_OFF); /* the refusals are expected */
    pgetl_conn *a = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &a, &err), &err);

    late_waiter w = {.pool = pool};
    pthread_t t;
    pthread_create(&t, NULL, late_waiter_main, &w);
    ph_sleep_ms(600); /* past reconnect_timeout_s: growth keeps failing */
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_true(st.connect_errors >= 2);
    assert_int_equal(st.waiting, 1); /* still waiting, not failed */
    pgetl_pool_release(pool, a);
    pthread_join(t, NULL);
    assert_pgetl_ok(w.rc, &w.err);
    assert_ptr_equal(w.got, a);

    /* With the only connection out, a caller times out with the reason. */
    pgetl_conn *c = NULL;
    assert_int_equal(pgetl_pool_acquire(pool, &c, &err), PGETL_ETIMEOUT);
    assert_non_null(strstr(err.message, "pool exhausted: waited 1.0 s, 1 of 2 in use"));
    assert_non_null(strstr(err.message, "too many connections for role"));
    pgetl_pool_release(pool, w.got);
    pgetl_pool_destroy(pool);
    harness_log_restore();
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    snprintf(sql, sizeof sql, "DROP ROLE %s", role);
    harness_sql(pg, sql);
    PQfinish(pg);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_restart_recovered),
        cmocka_unit_test(outage_fails_fast_then_recovers),
        cmocka_unit_test(refused_growth_still_serves_returns),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
