/* The error value (src/base/error.c, error_pg.c): codes, setters, prefix, format, UTF-8 cuts. */
#include "harness.h"
#include "base/base.h"

/* True when s is well-formed UTF-8 (no cut sequence at the end or anywhere). */
static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                                                       : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (!n)
            return false;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

/* n copies of a 4-byte character followed by nothing. */
static char *emoji_string(size_t n) {
    char *s = malloc(4 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + 4 * i, "😀", 4);
    s[4 * n] = '\0';
    return s;
}

static void test_code_names(void **state) {
    (void)state;
    assert_string_equal(pgetl_code_name(PGETL_OK), "OK");
    assert_string_equal(pgetl_code_name(PGETL_EINVAL), "EINVAL");
    assert_string_equal(pgetl_code_name(PGETL_ECONNLOST), "ECONNLOST");
    assert_string_equal(pgetl_code_name(PGETL_EARROW), "EARROW");
    assert_string_equal(pgetl_code_name((pgetl_code)999), "UNKNOWN");
    assert_string_equal(pgetl_code_name((pgetl_code)-1), "UNKNOWN");
    assert_string_equal(pgetl_strerror(PGETL_OK), "success");
    assert_string_equal(pgetl_strerror(PGETL_ENOMEM), "out of memory");
    assert_string_equal(pgetl_strerror((pgetl_code)999), "unknown error code");
    /* Values are part of the ABI: they never change. */
    assert_int_equal(PGETL_EINVAL, 1);
    assert_int_equal(PGETL_ESERVER, 5);
    assert_int_equal(PGETL_ECONNLOST, 10);
    assert_int_equal(PGETL_EOVERFLOW, 15);
    assert_int_equal(PGETL_EARROW, 19);
    /* Every code in the table has a distinct name and a description. */
#define CHECK_(name, value, text)                                                                  \
    assert_string_equal(pgetl_code_name(PGETL_##name), #name);                                     \
    assert_string_equal(pgetl_strerror(PGETL_##name), text);
    PGETL_CODE_MAP(CHECK_)
#undef CHECK_
}

static void test_set_and_init(void **state) {
    (void)state;
    pgetl_error err;
    memset(&err, 'x', sizeof err);
    pgetl_error_init(&err);
    assert_int_equal(err.code, PGETL_OK);
    assert_string_equal(err.message, "");
    assert_string_equal(err.sqlstate, "");
    assert_string_equal(err.detail, "");
    assert_string_equal(err.hint, "");
    assert_string_equal(err.context, "");
    pgetl_error_init(NULL);

    strcpy(err.sqlstate, "23505");
    strcpy(err.detail, "old detail");
    assert_int_equal(pgetl_error_set(&err, PGETL_EDATA, "row %d: %s", 7, "bad"), PGETL_EDATA);
    assert_int_equal(err.code, PGETL_EDATA);
    assert_string_equal(err.message, "row 7: bad");
    /* set clears the server fields: they belonged to an older error. */
    assert_string_equal(err.sqlstate, "");
    assert_string_equal(err.detail, "");
    assert_int_equal(pgetl_error_set(NULL, PGETL_EIO, "x"), PGETL_EIO);
}

static void test_set_cuts_at_utf8_boundary(void **state) {
    (void)state;
    pgetl_error err;
    char *big = emoji_string(600); /* 2400 bytes */
    for (int shift = 0; shift < 4; shift++) {
        pgetl_error_set(&err, PGETL_EDATA, "%.*s%s", shift, "abc", big);
        assert_true(strlen(err.message) < sizeof err.message);
        assert_true(strlen(err.message) >= sizeof err.message - 4);
        assert_true(utf8_valid(err.message));
    }
    free(big);
}

static void test_prefix(void **state) {
    (void)state;
    pgetl_error err;
    pgetl_error_set(&err, PGETL_ESERVER, "duplicate key");
    strcpy(err.sqlstate, "23505");
    strcpy(err.detail, "Key (id)=(1) already exists.");
    pgetl_error_prefix(&err, "sales.csv line %d: ", 812);
    assert_string_equal(err.message, "sales.csv line 812: duplicate key");
    assert_int_equal(err.code, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
    assert_string_equal(err.detail, "Key (id)=(1) already exists.");
    pgetl_error_prefix(&err, "%s", "");
    assert_string_equal(err.message, "sales.csv line 812: duplicate key");
    pgetl_error_prefix(NULL, "x");

    /* Context already there is not repeated ("COPY t: COPY t: ..." after a kill). */
    pgetl_error_set(&err, PGETL_ECONNLOST, "COPY \"public\".\"t\": server closed the connection");
    pgetl_error_prefix(&err, "COPY %s: ", "\"public\".\"t\"");
    assert_string_equal(err.message, "COPY \"public\".\"t\": server closed the connection");
    pgetl_error_prefix(&err, "a.csv (rows from line %d): ", 2);
    pgetl_error_prefix(&err, "COPY %s: ", "\"public\".\"t\"");
    assert_string_equal(err.message,
                        "COPY \"public\".\"t\": a.csv (rows from line 2): COPY \"public\".\"t\": "
                        "server closed the connection");
    /* Only a whole prefix counts: "COPY t row 5: " differs from "COPY t: ". */
    pgetl_error_set(&err, PGETL_ESERVER, "COPY t: bad");
    pgetl_error_prefix(&err, "COPY t row 5: ");
    assert_string_equal(err.message, "COPY t row 5: COPY t: bad");

    /* A prefix that fills the message still leaves valid UTF-8. */
    char *big = emoji_string(300);
    for (int shift = 0; shift < 4; shift++) {
        pgetl_error_set(&err, PGETL_EDATA, "tail");
        pgetl_error_prefix(&err, "%.*s%s", shift, "abc", big);
        assert_true(strlen(err.message) < sizeof err.message);
        assert_true(utf8_valid(err.message));
    }
    pgetl_error_set(&err, PGETL_EDATA, "%s", big);
    pgetl_error_prefix(&err, "p: ");
    assert_true(strncmp(err.message, "p: 😀", 7) == 0);
    assert_true(utf8_valid(err.message));
    free(big);
}

static void test_format(void **state) {
    (void)state;
    pgetl_error err;
    char buf[512];
    pgetl_error_set(&err, PGETL_ESERVER, "duplicate key value");
    strcpy(err.sqlstate, "23505");
    strcpy(err.detail, "Key (id)=(1) already exists.");
    strcpy(err.hint, "Use another key.");
    strcpy(err.context, "COPY t, line 5");
    assert_ptr_equal(pgetl_error_format(&err, buf, sizeof buf), buf);
    assert_string_equal(buf, "duplicate key value [SQLSTATE 23505]\n"
                             "DETAIL: Key (id)=(1) already exists.\n"
                             "HINT: Use another key.\n"
                             "CONTEXT: COPY t, line 5");
    pgetl_error_set(&err, PGETL_EIO, "read failed");
    pgetl_error_format(&err, buf, sizeof buf);
    assert_string_equal(buf, "read failed");
    /* No message: the code's description stands in. */
    pgetl_error_init(&err);
    err.code = PGETL_ETIMEOUT;
    pgetl_error_format(&err, buf, sizeof buf);
    assert_string_equal(buf, "timed out");
    pgetl_error_format(NULL, buf, sizeof buf);
    assert_string_equal(buf, "");
    /* Small and zero-sized buffers. */
    pgetl_error_set(&err, PGETL_EDATA, "abcdef");
    char small[4] = "zzz";
    pgetl_error_format(&err, small, sizeof small);
    assert_string_equal(small, "abc");
    char none[1] = {'q'};
    pgetl_error_format(&err, none, 0);
    assert_int_equal(none[0], 'q');
    assert_null(pgetl_error_format(&err, NULL, 10));
    /* Cut inside a 4-byte character: never half of it. */
    pgetl_error_set(&err, PGETL_EDATA, "ab😀😀");
    char cut[8];
    for (size_t size = 1; size <= sizeof cut; size++) {
        pgetl_error_format(&err, cut, size);
        assert_true(strlen(cut) < size);
        assert_true(utf8_valid(cut));
    }
    pgetl_error_format(&err, cut, 7);
    assert_string_equal(cut, "ab😀");
}

static void test_strlcpy_utf8(void **state) {
    (void)state;
    char dst[8];
    pgetl__strlcpy_utf8(dst, "hello", sizeof dst);
    assert_string_equal(dst, "hello");
    pgetl__strlcpy_utf8(dst, "abcdefghij", sizeof dst);
    assert_string_equal(dst, "abcdefg");
    pgetl__strlcpy_utf8(dst, "abcde😀", sizeof dst); /* 9 bytes: the emoji does not fit */
    assert_string_equal(dst, "abcde");
    pgetl__strlcpy_utf8(dst, "abé😀", sizeof dst); /* a 2-byte and a 4-byte char: 8 bytes */
    assert_string_equal(dst, "abé");
    pgetl__strlcpy_utf8(dst, "ab😀", sizeof dst);
    assert_string_equal(dst, "ab😀");
    pgetl__strlcpy_utf8(dst, "x", 1);
    assert_string_equal(dst, "");
    dst[0] = 'q';
    pgetl__strlcpy_utf8(dst, "x", 0);
    assert_int_equal(dst[0], 'q');
}

static void test_oom_and_copy(void **state) {
    (void)state;
    pgetl_error err;
    assert_int_equal(pgetl__error_oom(&err, "copy buffer"), PGETL_ENOMEM);
    assert_string_equal(err.message, "out of memory in copy buffer");
    assert_int_equal(pgetl__error_oom(&err, NULL), PGETL_ENOMEM);
    assert_string_equal(err.message, "out of memory");
    assert_int_equal(pgetl__error_oom(NULL, "x"), PGETL_ENOMEM);
    char *big = emoji_string(400);
    pgetl__error_oom(&err, big);
    assert_true(utf8_valid(err.message));
    free(big);

    pgetl_error a, b;
    pgetl_error_set(&a, PGETL_ESERVER, "m");
    strcpy(a.hint, "h");
    assert_int_equal(pgetl__error_copy(&b, &a), PGETL_ESERVER);
    assert_string_equal(b.message, "m");
    assert_string_equal(b.hint, "h");
    assert_int_equal(pgetl__error_copy(NULL, &a), PGETL_ESERVER);
}

/*
 * error_from_pg without a server: a failed connection attempt carries only
 * libpq's own message, and an unknown option name lets the test make it as
 * long (and as multi-byte) as it likes.
 */
static void test_from_pg_client_message(void **state) {
    (void)state;
    char *big = emoji_string(400);
    char conninfo[2048];
    snprintf(conninfo, sizeof conninfo, "%s=1", big);
    PGconn *pg = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(pg), CONNECTION_BAD);
    pgetl_error err;
    for (int shift = 0; shift < 4; shift++) {
        char what[8];
        snprintf(what, sizeof what, "%.*s", shift + 1, "wxyz");
        assert_int_equal(pgetl__error_from_pg(&err, NULL, pg, what), PGETL_ECONNLOST);
        assert_int_equal(err.code, PGETL_ECONNLOST);
        assert_string_equal(err.sqlstate, "");
        assert_true(strncmp(err.message, what, strlen(what)) == 0);
        assert_non_null(strstr(err.message, "invalid connection option"));
        assert_true(utf8_valid(err.message));
        /* No trailing newline from libpq. */
        assert_true(err.message[strlen(err.message) - 1] != '\n');
    }
    assert_int_equal(pgetl__error_from_pg(NULL, NULL, pg, "x"), PGETL_ECONNLOST);
    PQfinish(pg);
    free(big);

    /* A result with no error and no connection: still a message. */
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    assert_int_equal(pgetl__error_from_pg(&err, res, NULL, "step"), PGETL_ESERVER);
    assert_string_equal(err.message, "step: unknown error");
    assert_int_equal(pgetl__error_from_pg(&err, res, NULL, NULL), PGETL_ESERVER);
    assert_string_equal(err.message, "unknown error");
    PQclear(res);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_code_names),
    cmocka_unit_test(test_set_and_init),
    cmocka_unit_test(test_set_cuts_at_utf8_boundary),
    cmocka_unit_test(test_prefix),
    cmocka_unit_test(test_format),
    cmocka_unit_test(test_strlcpy_utf8),
    cmocka_unit_test(test_oom_and_copy),
    cmocka_unit_test(test_from_pg_client_message),
};

PGETL_TEST_MAIN(tests)
