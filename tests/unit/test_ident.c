/* Identifier parsing and quoting: the one place where names become SQL. */
#include "harness.h"

static void parse_ok(const char *text, const char *schema, const char *name) {
    pgetl_qualified_name qn;
    pgetl_error err;
    assert_pgetl_ok(pgetl_ident_parse(text, &qn, &err), &err);
    assert_string_equal(qn.schema, schema);
    assert_string_equal(qn.name, name);
}

/* Asserts EINVAL and that the message names `why`; returns nothing was filled. */
static void parse_bad(const char *text, const char *why) {
    pgetl_qualified_name qn;
    memset(&qn, 'x', sizeof qn);
    pgetl_error err;
    pgetl_code rc = pgetl_ident_parse(text, &qn, &err);
    assert_int_equal(rc, PGETL_EINVAL);
    assert_int_equal(err.code, PGETL_EINVAL);
    if (!strstr(err.message, why))
        fail_msg("message for <%s> lacks <%s>: %s", text, why, err.message);
    assert_string_equal(err.sqlstate, "");
    assert_string_equal(qn.schema, "");
    assert_string_equal(qn.name, "");
}

static void test_simple_and_qualified(void **state) {
    (void)state;
    parse_ok("t", "", "t");
    parse_ok("public.t", "public", "t");
    parse_ok("_x1$", "", "_x1$");
    parse_ok("  s . t  ", "s", "t");
    parse_ok("\ts\n.\tt", "s", "t");
}

static void test_case_folding(void **state) {
    (void)state;
    parse_ok("MyTable", "", "mytable");
    parse_ok("\"MyTable\"", "", "MyTable");
    parse_ok("MySchema.\"MyTable\"", "myschema", "MyTable");
    parse_ok("\"MySchema\".MyTable", "MySchema", "mytable");
    /* Only ASCII folds, as the server does for UTF-8 databases. */
    parse_ok("ÄBC", "", "Äbc");
}

static void test_quoted_specials(void **state) {
    (void)state;
    parse_ok("\"a\"\"b\"", "", "a\"b");
    parse_ok("\"with space\"", "", "with space");
    parse_ok("\"semi;colon\"", "", "semi;colon");
    parse_ok("\"dot.ted\".\"na.me\"", "dot.ted", "na.me");
    parse_ok("\"x\"\"; DROP TABLE canary; --\"", "", "x\"; DROP TABLE canary; --");
    parse_ok("\"select\"", "", "select");
    parse_ok("select", "", "select"); /* always quoted on output, so keywords are fine */
    parse_ok("\"1abc\"", "", "1abc");
    parse_ok("\"\"\"\"", "", "\"");
}

static void test_unicode(void **state) {
    (void)state;
    parse_ok("données.tâble", "données", "tâble");
    parse_ok("\"😀 emoji\"", "", "😀 emoji");
    parse_ok("表", "", "表");
}

static void test_length_limit(void **state) {
    (void)state;
    char name63[64], name64[65], q[80];
    memset(name63, 'a', 63);
    name63[63] = '\0';
    memset(name64, 'a', 64);
    name64[64] = '\0';
    parse_ok(name63, "", name63);
    parse_bad(name64, "longer than 63 bytes");
    snprintf(q, sizeof q, "\"%s\"", name64);
    parse_bad(q, "longer than 63 bytes");
    snprintf(q, sizeof q, "%s.t", name64);
    parse_bad(q, "longer than 63 bytes");
    /* 16 four-byte characters = 64 bytes: counted in bytes, as NAMEDATALEN is. */
    char emoji[80] = "";
    for (int i = 0; i < 16; i++)
        strcat(emoji, "😀");
    parse_bad(emoji, "longer than 63 bytes");
    emoji[60] = '\0';
    parse_ok(emoji, "", emoji);
    /* 63 bytes once "" is unescaped: fits. */
    char quoted[140] = "\"";
    for (int i = 0; i < 63; i++)
        strcat(quoted, "\"\"");
    strcat(quoted, "\"");
    char quotes63[64];
    memset(quotes63, '"', 63);
    quotes63[63] = '\0';
    parse_ok(quoted, "", quotes63);
}

static void test_malformed(void **state) {
    (void)state;
    parse_bad("", "empty name part");
    parse_bad("   ", "empty name part");
    parse_bad(".t", "empty name part");
    parse_bad("s.", "empty name part");
    parse_bad("s..t", "empty name part");
    parse_bad("\"\"", "zero-length quoted identifier");
    parse_bad("s.\"\"", "zero-length quoted identifier");
    parse_bad("\"abc", "unterminated quoted identifier");
    parse_bad("\"a\"\"", "unterminated quoted identifier");
    parse_bad("db.s.t", "too many dotted parts");
    parse_bad("a.b.c.d", "too many dotted parts");
    parse_bad("t extra", "unexpected text after the name");
    parse_bad("\"t\"x", "unexpected text after the name");
    parse_bad("t;", "unexpected text after the name");
    parse_bad("x\"; DROP TABLE canary; --", "unexpected text after the name");
    parse_bad("t(", "unexpected text after the name");
    parse_bad("1abc", "unexpected character");
    parse_bad("$a", "unexpected character");
    parse_bad("-t", "unexpected character");
    parse_bad("'t'", "unexpected character");
    parse_bad(NULL, "name is NULL");
}

static void test_error_echo_is_bounded(void **state) {
    (void)state;
    char big[4096];
    memset(big, 'a', sizeof big - 2);
    big[sizeof big - 2] = ';';
    big[sizeof big - 1] = '\0';
    pgetl_error err;
    assert_int_equal(pgetl_ident_parse(big, NULL, &err), PGETL_EINVAL);
    assert_true(strlen(err.message) < 300);
    assert_non_null(strstr(err.message, "..."));
    /* A NULL err and NULL out are accepted. */
    assert_int_equal(pgetl_ident_parse("bad name", NULL, NULL), PGETL_EINVAL);
    assert_int_equal(pgetl_ident_parse("ok", NULL, NULL), PGETL_OK);
}

static void test_quote(void **state) {
    (void)state;
    char buf[64];
    assert_int_equal(pgetl_ident_quote("abc", buf, sizeof buf), 5);
    assert_string_equal(buf, "\"abc\"");
    assert_int_equal(pgetl_ident_quote("a\"b", buf, sizeof buf), 6);
    assert_string_equal(buf, "\"a\"\"b\"");
    assert_int_equal(pgetl_ident_quote("x\"; DROP TABLE canary; --", buf, sizeof buf), 28);
    assert_string_equal(buf, "\"x\"\"; DROP TABLE canary; --\"");
    assert_int_equal(pgetl_ident_quote("", buf, sizeof buf), 2);
    assert_string_equal(buf, "\"\"");
    assert_int_equal(pgetl_ident_quote("MiXed", buf, sizeof buf), 7);
    assert_string_equal(buf, "\"MiXed\"");
}

static void test_quote_too_small(void **state) {
    (void)state;
    char buf[6];
    memset(buf, 'z', sizeof buf);
    /* "abcd" needs 6 bytes + NUL: reports 6, and never hands out a cut quote. */
    assert_int_equal(pgetl_ident_quote("abcd", buf, sizeof buf), 6);
    assert_string_equal(buf, "");
    assert_int_equal(pgetl_ident_quote("abcd", NULL, 0), 6);
    char seven[7];
    assert_int_equal(pgetl_ident_quote("abcd", seven, sizeof seven), 6);
    assert_string_equal(seven, "\"abcd\"");
}

static void test_qualified_quote(void **state) {
    (void)state;
    pgetl_qualified_name qn;
    char buf[300];
    assert_pgetl_ok(pgetl_ident_parse("My.\"T\"\"x\"", &qn, NULL), NULL);
    assert_int_equal(pgetl_qualified_name_quote(&qn, buf, sizeof buf), 11);
    assert_string_equal(buf, "\"my\".\"T\"\"x\"");
    assert_pgetl_ok(pgetl_ident_parse("t", &qn, NULL), NULL);
    assert_int_equal(pgetl_qualified_name_quote(&qn, buf, sizeof buf), 3);
    assert_string_equal(buf, "\"t\"");
    char small[5];
    assert_int_equal(pgetl_qualified_name_quote(&qn, small, 3), 3);
    assert_string_equal(small, "");

    /* The worst case: two 63-byte parts of quotes fit the documented 258 bytes. */
    char quoted[140] = "\"";
    for (int i = 0; i < 63; i++)
        strcat(quoted, "\"\"");
    strcat(quoted, "\"");
    char text[300];
    snprintf(text, sizeof text, "%s.%s", quoted, quoted);
    assert_pgetl_ok(pgetl_ident_parse(text, &qn, NULL), NULL);
    size_t n = pgetl_qualified_name_quote(&qn, buf, sizeof buf);
    assert_int_equal(n, 257);
    assert_string_equal(buf, text);
}

static void test_round_trip(void **state) {
    (void)state;
    /* Whatever parses, quoted and parsed again, is the same name. */
    const char *inputs[] = {"a", "A.B", "\"A\".\"b c\"", "\"x\"\"y\".z", "\"😀\".\"; --\"",
                            "\"\\\"", "\" \""};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        pgetl_qualified_name a, b;
        char buf[300];
        assert_pgetl_ok(pgetl_ident_parse(inputs[i], &a, NULL), NULL);
        pgetl_qualified_name_quote(&a, buf, sizeof buf);
        assert_pgetl_ok(pgetl_ident_parse(buf, &b, NULL), NULL);
        assert_string_equal(a.schema, b.schema);
        assert_string_equal(a.name, b.name);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_simple_and_qualified),
    cmocka_unit_test(test_case_folding),
    cmocka_unit_test(test_quoted_specials),
    cmocka_unit_test(test_unicode),
    cmocka_unit_test(test_length_limit),
    cmocka_unit_test(test_malformed),
    cmocka_unit_test(test_error_echo_is_bounded),
    cmocka_unit_test(test_quote),
    cmocka_unit_test(test_quote_too_small),
    cmocka_unit_test(test_qualified_quote),
    cmocka_unit_test(test_round_trip),
};

PGETL_TEST_MAIN(tests)
