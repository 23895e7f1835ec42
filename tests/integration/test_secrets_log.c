/*
 * The library never logs or reports a password: every log line (DEBUG and
 * up) and every error text produced while connecting, failing to connect,
 * creating a pool and rotating its DSN (pgetl_pool_set_dsn to a wrong
 * password and back) is searched for the secrets. The CLI-level version of
 * this test is tests/cli/test_cli_secrets.sh.
 */
#include "harness.h"

#include <time.h>

#define WRONG "Wr0ng-r0tated-Pw"
#define RIGHT "pgetl-secret"

static char kv_dsn[512], uri_dsn[512], wrong_kv[512], wrong_uri[512];

static void make_dsns(void) {
    const char *base = harness_dsn();
    const char *p = strstr(base, "port=");
    assert_non_null(p);
    int port = atoi(p + 5);
    snprintf(kv_dsn, sizeof kv_dsn,
             "host=127.0.0.1 port=%d user=pgetl_pw password=" RIGHT " dbname=pgetl_%s", port,
             PGETL_TEST_NAME);
    snprintf(uri_dsn, sizeof uri_dsn, "postgresql://pgetl_pw:" RIGHT "@127.0.0.1:%d/pgetl_%s", port,
             PGETL_TEST_NAME);
    snprintf(wrong_kv, sizeof wrong_kv,
             "host=127.0.0.1 port=%d user=pgetl_pw password=" WRONG " dbname=pgetl_%s", port,
             PGETL_TEST_NAME);
    snprintf(wrong_uri, sizeof wrong_uri,
             "postgresql://pgetl_pw:" WRONG "@127.0.0.1:%d/pgetl_%s?connect_timeout=5", port,
             PGETL_TEST_NAME);
}

static void assert_no_secret(const char *text, const char *what) {
    if (strstr(text, RIGHT) || strstr(text, WRONG))
        fail_msg("%s holds a password: %s", what, text);
}

static void assert_err_clean(const pgetl_error *err) {
    char buf[8192];
    assert_no_secret(pgetl_error_format(err, buf, sizeof buf), "error");
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void connect_failures_are_clean(void **state) {
    (void)state;
    make_dsns();
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    const char *bad[] = {wrong_kv, wrong_uri,
                         /* unparseable: the redactor masks up to the end */
                         "host=127.0.0.1 password='" WRONG " port=1",
                         "postgresql://pgetl_pw:" WRONG "@[::1", "password=" WRONG " nosuchkey=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pgetl_config cfg;
        pgetl_config_init(&cfg);
        cfg.dsn = bad[i];
        cfg.acquire_timeout_s = 2;
        cfg.reconnect_timeout_s = 1;
        pgetl_error err;
        pgetl_conn *conn = NULL;
        assert_int_not_equal(pgetl_connect(&cfg, &conn, &err), PGETL_OK);
        assert_null(conn);
        assert_true(err.message[0] != '\0');
        assert_err_clean(&err);
        pgetl_pool *pool = NULL;
        assert_int_not_equal(pgetl_pool_create(&cfg, &pool, &err), PGETL_OK);
        assert_err_clean(&err);
        if (i >= 2) { /* the unparseable ones are refused before any connection */
            assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
            assert_err_clean(&err);
        }
    }
    /* The wrong password was really tried (the server's verdict came back). */
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = wrong_kv;
    pgetl_error err;
    pgetl_conn *conn = NULL;
    assert_int_equal(pgetl_connect(&cfg, &conn, &err), PGETL_ECONNECT);
    assert_non_null(strstr(err.message, "password authentication failed"));
    assert_no_secret(log->text, "log");
    harness_log_restore();
}

static void pool_rotation_is_clean(void **state) {
    (void)state;
    make_dsns();
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = kv_dsn;
    cfg.pool_min = 1;
    cfg.pool_max = 2;
    cfg.acquire_timeout_s = 3;
    cfg.reconnect_timeout_s = 1;
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &pool, &err), &err);
    pgetl_conn *conn = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    pgetl_pool_release(pool, conn);

    /* Rotate to a wrong password: the old connection is retired, new ones fail. */
    assert_pgetl_ok(pgetl_pool_set_dsn(pool, wrong_uri, &err), &err);
    pgetl_code rc = pgetl_pool_acquire(pool, &conn, &err);
    assert_int_not_equal(rc, PGETL_OK);
    assert_non_null(strstr(err.message, "password authentication failed"));
    assert_err_clean(&err);
    sleep_ms(1200); /* past reconnect_timeout_s: the pool reports itself down */
    rc = pgetl_pool_acquire(pool, &conn, &err);
    assert_int_not_equal(rc, PGETL_OK);
    assert_err_clean(&err);

    /* An unparseable DSN is refused without echoing it. */
    assert_int_equal(pgetl_pool_set_dsn(pool, "host=x password='" WRONG, &err), PGETL_ECONFIG);
    assert_err_clean(&err);

    /* And back to the right one (as a URI this time). */
    assert_pgetl_ok(pgetl_pool_set_dsn(pool, uri_dsn, &err), &err);
    assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
    pgetl_pool_release(pool, conn);
    pgetl_pool_destroy(pool);

    /* The log saw all of it, with the passwords masked. */
    assert_non_null(strstr(log->text, "event=pool_create"));
    assert_non_null(strstr(log->text, "event=pool_set_dsn"));
    assert_non_null(strstr(log->text, "event=pool_connect_failed"));
    assert_non_null(strstr(log->text, "password authentication failed"));
    assert_non_null(strstr(log->text, "********"));
    assert_no_secret(log->text, "log");
    harness_log_restore();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_failures_are_clean),
        cmocka_unit_test(pool_rotation_is_clean),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
