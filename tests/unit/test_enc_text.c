/* COPY text-format escaping, fed hostile bytes (no server). */
#include "harness.h"

#include "copy/enc.h"

/* Encodes v into a buffer reserved to exactly the documented bound. */
static bool enc(const char *v, size_t len, pgetl_buf *b, size_t *nul_at) {
    pgetl__buf_init(b);
    assert_int_equal(pgetl__buf_reserve(b, pgetl__enc_text_bound(len)), PGETL_OK);
    size_t cap = b->cap;
    bool ok = pgetl__enc_text_value(b, v, len, nul_at);
    assert_true(b->len <= pgetl__enc_text_bound(len));
    assert_int_equal(b->cap, cap); /* never grew: unchecked appends stayed in bounds */
    return ok;
}

static void expect(const char *v, size_t len, const char *want, size_t want_len) {
    pgetl_buf b;
    size_t nul_at = 0;
    assert_true(enc(v, len, &b, &nul_at));
    assert_int_equal(b.len, want_len);
    assert_memory_equal(b.data, want, want_len);
    pgetl__buf_reset(&b);
}
#define EXPECT(v, want) expect(v, sizeof(v) - 1, want, sizeof(want) - 1)

static void text_plain_bytes_pass_through(void **state) {
    (void)state;
    EXPECT("", "");
    EXPECT("hello world", "hello world");
    EXPECT("comma, \"quote\" 'single'", "comma, \"quote\" 'single'");
    EXPECT("caf\xc3\xa9 \xf0\x9f\x8e\x89", "caf\xc3\xa9 \xf0\x9f\x8e\x89"); /* 4-byte UTF-8 */
}

static void text_specials_escaped(void **state) {
    (void)state;
    EXPECT("a\tb", "a\\tb");
    EXPECT("a\nb", "a\\nb");
    EXPECT("a\rb", "a\\rb");
    EXPECT("\r\n", "\\r\\n");
    EXPECT("a\\b", "a\\\\b");
    EXPECT("\\", "\\\\");
    /* Values that look like NULL or the end marker must stay literal. */
    EXPECT("\\N", "\\\\N");
    EXPECT("\\.", "\\\\.");
    EXPECT("NULL", "NULL");
    EXPECT("\\\\\\\\", "\\\\\\\\\\\\\\\\");
    EXPECT("\t\t\t", "\\t\\t\\t");
}

static void text_nul_refused_with_offset(void **state) {
    (void)state;
    pgetl_buf b;
    size_t nul_at = 99;
    assert_false(enc("a\tb\0cd", 6, &b, &nul_at));
    assert_int_equal(nul_at, 3);
    /* Encoded up to the NUL, so a caller may append it and go on after it. */
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "a\\tb", 4);
    pgetl__buf_reset(&b);
    assert_false(enc("\0", 1, &b, &nul_at));
    assert_int_equal(nul_at, 0);
    pgetl__buf_reset(&b);
    assert_false(enc("\\\t\0", 3, &b, &nul_at));
    assert_int_equal(nul_at, 2);
    pgetl__buf_reset(&b);
}

/* PostgreSQL's text-format field decoding for the escapes pgetl emits. */
static size_t decode(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            assert_true(s[i] != '\t' && s[i] != '\n' && s[i] != '\r');
            out[o++] = s[i];
            continue;
        }
        assert_true(i + 1 < n);
        char c = s[++i];
        out[o++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        assert_true(c == 't' || c == 'n' || c == 'r' || c == '\\');
    }
    return o;
}

static void text_every_byte_round_trips(void **state) {
    (void)state;
    char in[255 * 3];
    size_t n = 0;
    for (int rep = 0; rep < 3; rep++)
        for (int c = 1; c < 256; c++)
            in[n++] = (char)c;
    pgetl_buf b;
    size_t nul_at;
    assert_true(enc(in, n, &b, &nul_at));
    char out[sizeof in];
    assert_int_equal(decode(b.data, b.len, out), n);
    assert_memory_equal(out, in, n);
    pgetl__buf_reset(&b);
}

static void text_worst_case_fits_bound(void **state) {
    (void)state;
    char in[4096];
    memset(in, '\\', sizeof in);
    pgetl_buf b;
    size_t nul_at;
    assert_true(enc(in, sizeof in, &b, &nul_at));
    assert_int_equal(b.len, 2 * sizeof in);
    pgetl__buf_reset(&b);
    /* pseudo-random hostile bytes (no NUL) */
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof in; i++) {
        x = x * 1103515245u + 12345u;
        in[i] = (char)((x >> 16) % 255 + 1);
    }
    assert_true(enc(in, sizeof in, &b, &nul_at));
    char out[sizeof in];
    assert_int_equal(decode(b.data, b.len, out), sizeof in);
    assert_memory_equal(out, in, sizeof in);
    pgetl__buf_reset(&b);
}

static void text_null_marker(void **state) {
    (void)state;
    pgetl_buf b;
    pgetl__buf_init(&b);
    assert_int_equal(pgetl__buf_reserve(&b, 2), PGETL_OK);
    pgetl__enc_text_null(&b);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "\\N", 2);
    pgetl__buf_reset(&b);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_plain_bytes_pass_through),
        cmocka_unit_test(text_specials_escaped),
        cmocka_unit_test(text_nul_refused_with_offset),
        cmocka_unit_test(text_every_byte_round_trips),
        cmocka_unit_test(text_worst_case_fits_bound),
        cmocka_unit_test(text_null_marker),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
