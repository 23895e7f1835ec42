/* COPY CSV-format quoting, fed hostile bytes (no server). */
#include "harness.h"

#include "copy/enc.h"

static bool enc(const char *v, size_t len, pgetl_buf *b, size_t *nul_at) {
    pgetl__buf_init(b);
    assert_int_equal(pgetl__buf_reserve(b, pgetl__enc_csv_bound(len)), PGETL_OK);
    size_t cap = b->cap;
    bool ok = pgetl__enc_csv_value(b, v, len, nul_at);
    assert_true(b->len <= pgetl__enc_csv_bound(len));
    assert_int_equal(b->cap, cap);
    return ok;
}

static void expect(const char *v, size_t len, const char *want, size_t want_len) {
    pgetl_buf b;
    size_t nul_at = 0;
    assert_true(enc(v, len, &b, &nul_at));
    if (b.len != want_len || memcmp(b.data, want, want_len) != 0)
        fail_msg("encoded [%.*s], want [%.*s]", (int)b.len, b.data, (int)want_len, want);
    pgetl__buf_reset(&b);
}
#define EXPECT(v, want) expect(v, sizeof(v) - 1, want, sizeof(want) - 1)

static void csv_plain_values_unquoted(void **state) {
    (void)state;
    EXPECT("hello", "hello");
    EXPECT("back\\slash", "back\\slash"); /* backslash is ordinary in CSV */
    EXPECT("\\N", "\\N");
    EXPECT("NULL", "NULL");
    EXPECT("tab\there", "tab\there");
    EXPECT(" lead and trail ", " lead and trail ");
    EXPECT("\xf0\x9f\x9a\x80", "\xf0\x9f\x9a\x80");
}

static void csv_empty_string_is_quoted(void **state) {
    (void)state;
    /* An unquoted empty field is NULL; "" keeps the empty string distinct. */
    EXPECT("", "\"\"");
}

static void csv_end_marker_is_quoted(void **state) {
    (void)state;
    EXPECT("\\.", "\"\\.\"");
    EXPECT("\\.x", "\\.x");
}

static void csv_specials_quoted(void **state) {
    (void)state;
    EXPECT("a,b", "\"a,b\"");
    EXPECT("say \"hi\"", "\"say \"\"hi\"\"\"");
    EXPECT("\"", "\"\"\"\"");
    EXPECT("\"\"", "\"\"\"\"\"\"");
    EXPECT("line\nbreak", "\"line\nbreak\"");
    EXPECT("cr\ronly", "\"cr\ronly\"");
    EXPECT("\r\n", "\"\r\n\"");
    EXPECT(",", "\",\"");
}

static void csv_nul_refused_with_offset(void **state) {
    (void)state;
    pgetl_buf b;
    size_t nul_at = 0;
    assert_false(enc("a,\"\0", 4, &b, &nul_at));
    assert_int_equal(nul_at, 3);
    pgetl__buf_reset(&b);
}

/* Reads one CSV field the way PostgreSQL does (quote and escape both '"'). */
static size_t decode(const char *s, size_t n, char *out, bool *quoted) {
    size_t o = 0;
    *quoted = n > 0 && s[0] == '"';
    if (!*quoted) {
        for (size_t i = 0; i < n; i++) {
            assert_true(s[i] != ',' && s[i] != '"' && s[i] != '\n' && s[i] != '\r');
            out[o++] = s[i];
        }
        return o;
    }
    assert_true(n >= 2 && s[n - 1] == '"');
    for (size_t i = 1; i < n - 1; i++) {
        if (s[i] == '"') {
            assert_true(s[i + 1] == '"');
            i++;
        }
        out[o++] = s[i];
    }
    return o;
}

static void csv_every_byte_round_trips(void **state) {
    (void)state;
    char in[255 * 2];
    size_t n = 0;
    for (int rep = 0; rep < 2; rep++)
        for (int c = 1; c < 256; c++)
            in[n++] = (char)c;
    pgetl_buf b;
    size_t nul_at;
    bool quoted;
    assert_true(enc(in, n, &b, &nul_at));
    char out[sizeof in];
    assert_int_equal(decode(b.data, b.len, out, &quoted), n);
    assert_true(quoted);
    assert_memory_equal(out, in, n);
    pgetl__buf_reset(&b);

    /* All quotes: the worst case, exactly 2 * len + 2. */
    memset(in, '"', 300);
    assert_true(enc(in, 300, &b, &nul_at));
    assert_int_equal(b.len, 602);
    assert_int_equal(decode(b.data, b.len, out, &quoted), 300);
    assert_memory_equal(out, in, 300);
    pgetl__buf_reset(&b);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_plain_values_unquoted),   cmocka_unit_test(csv_empty_string_is_quoted),
        cmocka_unit_test(csv_end_marker_is_quoted),    cmocka_unit_test(csv_specials_quoted),
        cmocka_unit_test(csv_nul_refused_with_offset), cmocka_unit_test(csv_every_byte_round_trips),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
