/*
 * Configuration (src/connect/config.c): defaults, validation of every field,
 * and DSN redaction with hostile input. The rule under test: the password
 * never appears in redacted text or in a validation message, whatever the
 * DSN looks like, even when libpq cannot parse it.
 */
#include "harness.h"
#include "connect/connect.h"

#include <math.h>

static const char *const SECRET = "hunter2";

static void assert_no_secret(const char *text, const char *secret) {
    if (strstr(text, secret))
        fail_msg("password <%s> leaked in <%s>", secret, text);
}

static void test_defaults(void **state) {
    (void)state;
    pgetl_config cfg;
    memset(&cfg, 0x7f, sizeof cfg);
    pgetl_config_init(&cfg);
    assert_null(cfg.dsn);
    assert_int_equal(cfg.pool_min, 1);
    assert_int_equal(cfg.pool_max, 5);
    assert_true(cfg.acquire_timeout_s == 30.0);
    assert_true(cfg.max_lifetime_s == 3600.0);
    assert_true(cfg.max_idle_s == 600.0);
    assert_int_equal(cfg.max_waiters, 0);
    assert_true(cfg.leak_threshold_s == 0.0);
    assert_true(cfg.connect_timeout_s == 10.0);
    assert_true(cfg.reconnect_timeout_s == 60.0);
    assert_string_equal(cfg.application_name, "pgetl");
    cfg.dsn = "host=localhost";
    assert_int_equal(pgetl_config_validate(&cfg, NULL), PGETL_OK);
}

static void expect_econfig(const pgetl_config *cfg, const char *needle) {
    pgetl_error err;
    assert_int_equal(pgetl_config_validate(cfg, &err), PGETL_ECONFIG);
    assert_int_equal(err.code, PGETL_ECONFIG);
    if (!strstr(err.message, needle))
        fail_msg("expected <%s> in <%s>", needle, err.message);
}

static void test_validate_fields(void **state) {
    (void)state;
    pgetl_config base;
    pgetl_config_init(&base);
    base.dsn = "host=localhost";
    pgetl_config c;
    pgetl_error err;

    assert_int_equal(pgetl_config_validate(NULL, &err), PGETL_EINVAL);

    c = base, c.pool_min = -1;
    expect_econfig(&c, "pool_min must be between 0 and 10000 (got -1)");
    c = base, c.pool_min = 10001, c.pool_max = 10000;
    expect_econfig(&c, "pool_min");
    c = base, c.pool_max = 0;
    expect_econfig(&c, "pool_max must be between 1 and 10000 (got 0)");
    c = base, c.pool_max = 10001;
    expect_econfig(&c, "pool_max");
    c = base, c.pool_min = 3, c.pool_max = 2;
    expect_econfig(&c, "pool_max (2) is less than pool_min (3)");
    c = base, c.max_waiters = -5;
    expect_econfig(&c, "max_waiters must be >= 0 (got -5)");
    c = base, c.pool_min = 0, c.pool_max = 10000;
    assert_int_equal(pgetl_config_validate(&c, &err), PGETL_OK);

    c = base, c.acquire_timeout_s = -0.5;
    expect_econfig(&c, "acquire_timeout_s must be between 0 and 86400 seconds");
    c = base, c.acquire_timeout_s = NAN;
    expect_econfig(&c, "acquire_timeout_s");
    c = base, c.connect_timeout_s = INFINITY;
    expect_econfig(&c, "connect_timeout_s");
    c = base, c.reconnect_timeout_s = 86400.5;
    expect_econfig(&c, "reconnect_timeout_s");
    c = base, c.leak_threshold_s = -1;
    expect_econfig(&c, "leak_threshold_s");
    c = base, c.max_lifetime_s = 86400.0 * 367;
    expect_econfig(&c, "max_lifetime_s must be between 0 and 31622400 seconds");
    c = base, c.max_idle_s = -INFINITY;
    expect_econfig(&c, "max_idle_s");
    c = base, c.max_lifetime_s = 86400.0 * 366, c.acquire_timeout_s = 86400, c.max_idle_s = 0;
    assert_int_equal(pgetl_config_validate(&c, &err), PGETL_OK);

    char app[80];
    memset(app, 'a', 64);
    app[64] = '\0';
    c = base, c.application_name = app;
    expect_econfig(&c, "application_name is longer than 63 bytes");
    app[63] = '\0';
    assert_int_equal(pgetl_config_validate(&c, &err), PGETL_OK);
}

static void test_dsn_fallback(void **state) {
    (void)state;
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    unsetenv("PGETL_DSN");
    assert_string_equal(pgetl_config_dsn(&cfg), "");
    assert_string_equal(pgetl_config_dsn(NULL), "");
    setenv("PGETL_DSN", "host=from-env", 1);
    assert_string_equal(pgetl_config_dsn(&cfg), "host=from-env");
    cfg.dsn = "host=explicit";
    assert_string_equal(pgetl_config_dsn(&cfg), "host=explicit");
    /* A bad DSN from the environment is validated (and redacted) like any other. */
    cfg.dsn = NULL;
    setenv("PGETL_DSN", "host=h password=hunter2 junk", 1);
    pgetl_error err;
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    assert_no_secret(err.message, SECRET);
    unsetenv("PGETL_DSN");
}

/* Redacts dsn; asserts the secret is gone and the result equals `want` (when given). */
static void redact_case(const char *dsn, const char *secret, const char *want) {
    char buf[512];
    assert_ptr_equal(pgetl_dsn_redact(dsn, buf, sizeof buf), buf);
    if (secret)
        assert_no_secret(buf, secret);
    if (want && strcmp(buf, want) != 0)
        fail_msg("redact(<%s>) = <%s>, want <%s>", dsn, buf, want);
    /* Validation messages follow the same rule, whether or not libpq parses the DSN. */
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    pgetl_error err;
    pgetl_config_validate(&cfg, &err);
    if (secret) {
        assert_no_secret(err.message, secret);
        char fmt[2048];
        assert_no_secret(pgetl_error_format(&err, fmt, sizeof fmt), secret);
    }
}

static void test_redact_key_value(void **state) {
    (void)state;
    redact_case("host=h password=hunter2 user=u", SECRET, "host=h password=******** user=u");
    redact_case("password=hunter2", SECRET, "password=********");
    redact_case("PassWord=hunter2", SECRET, "PassWord=********");
    redact_case("host=h password = hunter2", SECRET, "host=h password = ********");
    redact_case("host=h password='hun ter2' user=u", "ter2", "host=h password=******** user=u");
    redact_case("password='it\\'s hunter2' dbname=x", SECRET, "password=******** dbname=x");
    redact_case("password=hun\\ ter2 dbname=x", "ter2", "password=******** dbname=x");
    redact_case("password='unterminated hunter2", SECRET, "password=********");
    redact_case("host=h password=", NULL, "host=h password=********");
    redact_case("password=a password=hunter2", SECRET, "password=******** password=********");
    redact_case("password=hunter2 junk", SECRET, "password=******** junk");
    /* An unterminated quote swallows the password assignment into another
     * value: everything from that assignment on is masked. */
    redact_case("host='x password=hunter2", SECRET, "host='x password=********");
    redact_case("user='a b password = hunter2 c", SECRET, "user='a b password =********");
    /* Malformed: the intended password is still hidden. */
    redact_case("password hunter2", SECRET, "password ********");
    redact_case("password:hunter2", SECRET, "password********");
    redact_case("host=h passwordhunter2=x", SECRET, NULL);
    redact_case("host='a b' dbname=db", NULL, "host='a b' dbname=db");
    redact_case("", NULL, "");
    redact_case("   ", NULL, "   ");
}

static void test_redact_uri(void **state) {
    (void)state;
    redact_case("postgresql://u:hunter2@h:5432/db", SECRET, "postgresql://u:********@h:5432/db");
    redact_case("postgres://u:hunter2@h/db", SECRET, "postgres://u:********@h/db");
    redact_case("postgresql://u@h/db", NULL, "postgresql://u@h/db");
    redact_case("postgresql://h/db?password=hunter2&sslmode=require", SECRET,
                "postgresql://h/db?password=********&sslmode=require");
    redact_case("postgresql://u:a@h/db?user=v&password=hunter2", SECRET,
                "postgresql://u:********@h/db?user=v&password=********");
    redact_case("postgresql://u:hun%40ter2@h/db", "ter2", "postgresql://u:********@h/db");
    /* A percent-encoded key is still the password key (libpq decodes keys). */
    redact_case("postgresql://h/db?pass%77ord=hunter2", SECRET,
                "postgresql://h/db?pass%77ord=********");
    /* Unescaped '/', '?', '@' inside the password. */
    redact_case("postgresql://u:hun/ter2@h/db", "ter2", "postgresql://u:********@h/db");
    redact_case("postgresql://u:hun?ter2@h/db", "ter2", "postgresql://u:********@h/db");
    redact_case("postgresql://u:hun@ter2@h/db", "ter2", "postgresql://u:********@h/db");
    /* Not a URI libpq accepts, but it holds a password all the same. */
    redact_case("POSTGRESQL://u:hunter2@h/db", SECRET, "POSTGRESQL://u:********@h/db");
    redact_case("  postgresql://u:hunter2@h/db", SECRET, NULL);
    /* Malformed URIs: libpq's own message repeats the URI or the token. */
    redact_case("postgresql://u:hunter2@[badhost/db", SECRET, NULL);
    redact_case("postgresql://u:hunter2%zz@h/db", SECRET, NULL);
    redact_case("postgresql://h/db?password=hun=ter2", "ter2", NULL);
    redact_case("postgresql://u:hunter2@h/db?x", SECRET, NULL);
    redact_case("postgresql://u:hunter2@h:port/db", SECRET, NULL);
    redact_case("postgresql://u:hunter2@h/db?password", SECRET, NULL);
    redact_case("postgresql://u:hunter2@", SECRET, "postgresql://u:********@");
    redact_case("postgresql://", NULL, "postgresql://");
}

static void test_redact_validation_message(void **state) {
    (void)state;
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = "postgresql://u:hunter2@[badhost/db";
    pgetl_error err;
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    /* The message still says what is wrong, with the DSN redacted. */
    assert_non_null(strstr(err.message, "invalid DSN \"postgresql://u:********@[badhost/db\""));
    assert_non_null(strstr(err.message, "IPv6 host address"));
    assert_no_secret(err.message, SECRET);

    cfg.dsn = "host=h password=hunter2 bogus";
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    assert_string_equal(err.message, "invalid DSN \"host=h password=******** bogus\": missing "
                                     "\"=\" after \"bogus\" in connection info string");
}

static void test_redact_buffers(void **state) {
    (void)state;
    char small[12];
    pgetl_dsn_redact("host=h password=hunter2", small, sizeof small);
    assert_string_equal(small, "host=h pass");
    pgetl_dsn_redact("password=hunter2", small, sizeof small);
    assert_string_equal(small, "password=**");
    char one[1] = {'x'};
    pgetl_dsn_redact("password=hunter2", one, 1);
    assert_string_equal(one, "");
    assert_null(pgetl_dsn_redact("x", NULL, 10));
    char buf[16] = "zz";
    pgetl_dsn_redact(NULL, buf, sizeof buf);
    assert_string_equal(buf, "");
    /* Very long and very many passwords. */
    static char big[8192];
    size_t pos = 0;
    for (int i = 0; i < 300; i++)
        pos += (size_t)snprintf(big + pos, sizeof big - pos, "password=hunter2_%03d ", i);
    static char out[16384];
    pgetl_dsn_redact(big, out, sizeof out);
    assert_no_secret(out, SECRET);
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    strcat(big, "junk");
    cfg.dsn = big;
    pgetl_error err;
    assert_int_equal(pgetl_config_validate(&cfg, &err), PGETL_ECONFIG);
    assert_no_secret(err.message, SECRET);
}

static void test_scrub(void **state) {
    (void)state;
    char buf[256];
    pgetl__dsn_scrub("postgresql://u:hunter2@h/db", "bad URI: \"postgresql://u:hunter2@h/db\"", buf,
                     sizeof buf);
    assert_string_equal(buf, "bad URI: \"postgresql://u:********@h/db\"");
    pgetl__dsn_scrub("host=h", "nothing secret", buf, sizeof buf);
    assert_string_equal(buf, "nothing secret");
    pgetl__dsn_scrub(NULL, "text", buf, sizeof buf);
    assert_string_equal(buf, "text");
    pgetl__dsn_scrub("password=x", NULL, buf, sizeof buf);
    assert_string_equal(buf, "");
    /* More passwords than tracked: the text is withheld rather than half-scrubbed. */
    static char many[4096];
    size_t pos = 0;
    for (int i = 0; i < 40; i++)
        pos += (size_t)snprintf(many + pos, sizeof many - pos, "password=pw%02d ", i);
    pgetl__dsn_scrub(many, many, buf, sizeof buf);
    assert_null(strstr(buf, "pw39"));
    assert_null(strstr(buf, "pw00"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_validate_fields),
    cmocka_unit_test(test_dsn_fallback),
    cmocka_unit_test(test_redact_key_value),
    cmocka_unit_test(test_redact_uri),
    cmocka_unit_test(test_redact_validation_message),
    cmocka_unit_test(test_redact_buffers),
    cmocka_unit_test(test_scrub),
};

PGETL_TEST_MAIN(tests)
