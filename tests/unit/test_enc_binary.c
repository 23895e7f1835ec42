/* Typed values to binary COPY fields, and decimal text to binary numeric (no server). */
#include "harness.h"

#include "copy/enc.h"
#include "sql/sql.h"

#include <math.h>

typedef struct out {
    pgetl_code rc;
    unsigned char bytes[256];
    size_t len;
    char why[192];
} out;

static out encode(pgetl_type type, uint32_t oid, pgetl_value v) {
    pgetl__bin_col col;
    assert_true(pgetl__bin_col_init(&col, type, oid));
    pgetl_buf b;
    pgetl__buf_init(&b);
    size_t bound = pgetl__bin_bound(&col, &v);
    assert_int_equal(pgetl__buf_reserve(&b, bound), PGETL_OK);
    out o = {0};
    o.rc = pgetl__bin_encode(&col, &b, &v, o.why, sizeof o.why);
    assert_true(b.len <= bound);
    assert_true(b.len <= sizeof o.bytes);
    memcpy(o.bytes, b.data, b.len);
    o.len = b.len;
    pgetl__buf_reset(&b);
    return o;
}

static pgetl_value ival(int64_t i) {
    return (pgetl_value){.v.i = i};
}
static pgetl_value fval(double f) {
    return (pgetl_value){.v.f = f};
}
static pgetl_value sval(const void *p, size_t n) {
    return (pgetl_value){.v.s = {p, n}};
}

#define BYTES(...) ((const unsigned char[]){__VA_ARGS__})
static void expect_bytes(out o, const unsigned char *want, size_t n) {
    if (o.rc != PGETL_OK)
        fail_msg("encode failed: %s", o.why);
    assert_int_equal(o.len, n);
    assert_memory_equal(o.bytes, want, n);
}
#define EXPECT(o, ...) expect_bytes((o), BYTES(__VA_ARGS__), sizeof(BYTES(__VA_ARGS__)))

static void bin_integers_big_endian(void **state) {
    (void)state;
    EXPECT(encode(PGETL_TYPE_INT16, PGETL_OID_INT2, ival(-2)), 0, 0, 0, 2, 0xff, 0xfe);
    EXPECT(encode(PGETL_TYPE_INT32, PGETL_OID_INT4, ival(0x01020304)), 0, 0, 0, 4, 1, 2, 3, 4);
    EXPECT(encode(PGETL_TYPE_INT64, PGETL_OID_INT8, ival(INT64_MIN)), 0, 0, 0, 8, 0x80, 0, 0, 0, 0,
           0, 0, 0);
    EXPECT(encode(PGETL_TYPE_INT64, PGETL_OID_INT8, ival(INT64_MAX)), 0, 0, 0, 8, 0x7f, 0xff, 0xff,
           0xff, 0xff, 0xff, 0xff, 0xff);
    /* widening: int16 into bigint */
    EXPECT(encode(PGETL_TYPE_INT16, PGETL_OID_INT8, ival(-1)), 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff,
           0xff, 0xff, 0xff, 0xff);
}

static void bin_narrowing_range_checked(void **state) {
    (void)state;
    EXPECT(encode(PGETL_TYPE_INT64, PGETL_OID_INT4, ival(INT32_MAX)), 0, 0, 0, 4, 0x7f, 0xff, 0xff,
           0xff);
    out o = encode(PGETL_TYPE_INT64, PGETL_OID_INT4, ival((int64_t)INT32_MAX + 1));
    assert_int_equal(o.rc, PGETL_EOVERFLOW);
    assert_non_null(strstr(o.why, "2147483648"));
    assert_non_null(strstr(o.why, "integer"));
    o = encode(PGETL_TYPE_INT32, PGETL_OID_INT2, ival(-32769));
    assert_int_equal(o.rc, PGETL_EOVERFLOW);
    assert_non_null(strstr(o.why, "smallint"));
    /* A declared int16 holding 70000 is wrong even for a bigint column. */
    o = encode(PGETL_TYPE_INT16, PGETL_OID_INT8, ival(70000));
    assert_int_equal(o.rc, PGETL_EOVERFLOW);
    assert_non_null(strstr(o.why, "int16"));
    o = encode(PGETL_TYPE_FLOAT64, PGETL_OID_FLOAT4, fval(1e300));
    assert_int_equal(o.rc, PGETL_EOVERFLOW);
}

static void bin_floats_ieee(void **state) {
    (void)state;
    EXPECT(encode(PGETL_TYPE_FLOAT64, PGETL_OID_FLOAT8, fval(1.0)), 0, 0, 0, 8, 0x3f, 0xf0, 0, 0, 0,
           0, 0, 0);
    EXPECT(encode(PGETL_TYPE_FLOAT64, PGETL_OID_FLOAT8, fval(-0.0)), 0, 0, 0, 8, 0x80, 0, 0, 0, 0,
           0, 0, 0);
    EXPECT(encode(PGETL_TYPE_FLOAT32, PGETL_OID_FLOAT4, fval(1.0)), 0, 0, 0, 4, 0x3f, 0x80, 0, 0);
    EXPECT(encode(PGETL_TYPE_FLOAT64, PGETL_OID_FLOAT4, fval(-INFINITY)), 0, 0, 0, 4, 0xff, 0x80, 0,
           0);
    out o = encode(PGETL_TYPE_FLOAT64, PGETL_OID_FLOAT8, fval(NAN));
    assert_int_equal(o.rc, PGETL_OK);
    assert_true((o.bytes[4] & 0x7f) == 0x7f && (o.bytes[5] & 0xf0) == 0xf0);
}

static void bin_dates_and_timestamps_shift_epoch(void **state) {
    (void)state;
    /* 1970-01-01 is -10957 days from 2000-01-01 */
    EXPECT(encode(PGETL_TYPE_DATE, PGETL_OID_DATE, ival(0)), 0, 0, 0, 4, 0xff, 0xff, 0xd5, 0x33);
    EXPECT(encode(PGETL_TYPE_DATE, PGETL_OID_DATE, ival(10957)), 0, 0, 0, 4, 0, 0, 0, 0);
    EXPECT(encode(PGETL_TYPE_TIMESTAMPTZ, PGETL_OID_TIMESTAMPTZ, ival(946684800000000)), 0, 0, 0, 8,
           0, 0, 0, 0, 0, 0, 0, 0);
    EXPECT(encode(PGETL_TYPE_TIMESTAMP, PGETL_OID_TIMESTAMP, ival(946684800000001)), 0, 0, 0, 8, 0,
           0, 0, 0, 0, 0, 0, 1);
    assert_int_equal(encode(PGETL_TYPE_TIMESTAMP, PGETL_OID_TIMESTAMP, ival(INT64_MIN)).rc,
                     PGETL_EOVERFLOW);
    assert_int_equal(encode(PGETL_TYPE_DATE, PGETL_OID_DATE, ival(INT64_MAX)).rc, PGETL_EOVERFLOW);
    assert_int_equal(encode(PGETL_TYPE_DATE, PGETL_OID_DATE, ival(INT32_MIN)).rc, PGETL_EOVERFLOW);
}

static void bin_text_bytea_uuid_jsonb(void **state) {
    (void)state;
    EXPECT(encode(PGETL_TYPE_TEXT, PGETL_OID_TEXT, sval("a\tb", 3)), 0, 0, 0, 3, 'a', '\t', 'b');
    EXPECT(encode(PGETL_TYPE_TEXT, PGETL_OID_TEXT, sval("", 0)), 0, 0, 0, 0);
    EXPECT(encode(PGETL_TYPE_TEXT, PGETL_OID_JSONB, sval("{}", 2)), 0, 0, 0, 3, 1, '{', '}');
    EXPECT(encode(PGETL_TYPE_BYTEA, PGETL_OID_BYTEA, sval("\0\xff", 2)), 0, 0, 0, 2, 0, 0xff);
    out o = encode(PGETL_TYPE_TEXT, PGETL_OID_VARCHAR, sval("ab\0", 3));
    assert_int_equal(o.rc, PGETL_EDATA);
    assert_non_null(strstr(o.why, "NUL"));
    assert_non_null(strstr(o.why, "offset 2"));
    o = encode(PGETL_TYPE_UUID, PGETL_OID_UUID, sval("0123456789abcde", 15));
    assert_int_equal(o.rc, PGETL_EDATA);
    assert_non_null(strstr(o.why, "16 bytes"));
    o = encode(PGETL_TYPE_UUID, PGETL_OID_UUID, sval("0123456789abcdef", 16));
    assert_int_equal(o.rc, PGETL_OK);
    assert_int_equal(o.len, 20);
    assert_memory_equal(o.bytes + 4, "0123456789abcdef", 16);
    o = encode(PGETL_TYPE_BYTEA, PGETL_OID_BYTEA, sval(NULL, 5));
    assert_int_equal(o.rc, PGETL_EDATA);
}

static void bin_impossible_pairs_refused(void **state) {
    (void)state;
    pgetl__bin_col col;
    assert_false(pgetl__bin_col_init(&col, PGETL_TYPE_INT64, PGETL_OID_UUID));
    assert_false(pgetl__bin_col_init(&col, PGETL_TYPE_TEXT, PGETL_OID_INT4));
    assert_false(pgetl__bin_col_init(&col, PGETL_TYPE_FLOAT64, PGETL_OID_INT8));
    assert_false(pgetl__bin_col_init(&col, PGETL_TYPE_TIMESTAMP, PGETL_OID_TIMESTAMPTZ));
    assert_false(pgetl__bin_col_init(&col, PGETL_TYPE_BOOL, PGETL_OID_INT2));
    assert_false(pgetl__bin_col_init(&col, (pgetl_type)999, PGETL_OID_INT2));
    assert_true(pgetl__bin_col_init(&col, PGETL_TYPE_INT32, PGETL_OID_INT8));
    assert_true(pgetl__bin_col_init(&col, PGETL_TYPE_INT64, PGETL_OID_NUMERIC));
    assert_string_equal(pgetl__type_name(PGETL_TYPE_TIMESTAMPTZ), "timestamptz");
}

/* ---- numeric ------------------------------------------------------------ */

static out numeric(const char *s) {
    pgetl_buf b;
    pgetl__buf_init(&b);
    size_t len = strlen(s);
    assert_int_equal(pgetl__buf_reserve(&b, pgetl__numeric_bound(len)), PGETL_OK);
    out o = {0};
    o.rc = pgetl__enc_numeric_text(&b, s, len, o.why, sizeof o.why);
    assert_true(b.len <= pgetl__numeric_bound(len));
    memcpy(o.bytes, b.data, b.len);
    o.len = b.len;
    pgetl__buf_reset(&b);
    return o;
}

static void numeric_layout(void **state) {
    (void)state;
    /* ndigits, weight, sign, dscale, digits... */
    EXPECT(numeric("0"), 0, 0, 0, 0, 0, 0, 0, 0);
    EXPECT(numeric("-0.00"), 0, 0, 0, 0, 0, 0, 0, 2);
    EXPECT(numeric("-12.50"), 0, 2, 0, 0, 0x40, 0, 0, 2, 0, 12, 0x13, 0x88);
    EXPECT(numeric("1e-3"), 0, 1, 0xff, 0xff, 0, 0, 0, 3, 0, 10);
    EXPECT(numeric("10000"), 0, 1, 0, 1, 0, 0, 0, 0, 0, 1);
    EXPECT(numeric("+1.5E3"), 0, 1, 0, 0, 0, 0, 0, 0, 0x05, 0xdc);
    EXPECT(numeric("0.0001"), 0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1);
    EXPECT(numeric("  42  "), 0, 1, 0, 0, 0, 0, 0, 0, 0, 42);
    EXPECT(numeric("123456789"), 0, 3, 0, 2, 0, 0, 0, 0, 0, 1, 0x09, 0x29, 0x1a, 0x85);
    EXPECT(numeric(".5"), 0, 1, 0xff, 0xff, 0, 0, 0, 1, 0x13, 0x88);
    EXPECT(numeric("5."), 0, 1, 0, 0, 0, 0, 0, 0, 0, 5);
}

static void numeric_specials(void **state) {
    (void)state;
    EXPECT(numeric("NaN"), 0, 0, 0, 0, 0xc0, 0, 0, 0);
    EXPECT(numeric("nan"), 0, 0, 0, 0, 0xc0, 0, 0, 0);
    EXPECT(numeric("Infinity"), 0, 0, 0, 0, 0xd0, 0, 0, 0);
    EXPECT(numeric("-Infinity"), 0, 0, 0, 0, 0xf0, 0, 0, 0);
    EXPECT(numeric("+inf"), 0, 0, 0, 0, 0xd0, 0, 0, 0);
}

static void numeric_38_digits(void **state) {
    (void)state;
    out o = numeric("-12345678901234567890123456789012345678");
    assert_int_equal(o.rc, PGETL_OK);
    /* 38 digits: first group "12", then 9 groups of 4 -> 10 digits, weight 9 */
    assert_int_equal(o.bytes[1], 10);
    assert_int_equal(o.bytes[3], 9);
    assert_int_equal(o.bytes[4], 0x40);
    assert_int_equal((o.bytes[8] << 8) | o.bytes[9], 12);
    assert_int_equal((o.bytes[10] << 8) | o.bytes[11], 3456);
    assert_int_equal((o.bytes[26] << 8) | o.bytes[27], 5678);
}

static void numeric_malformed_refused(void **state) {
    (void)state;
    const char *bad[] = {"",     " ",    "abc",     "1.2.3", "1e", "1e+", "--1",
                         "+-1",  "1 2",  "0x10",    "+",     ".",  "-.",  "1,5",
                         "NaNx", "-NaN", "infinit", "1e5.5", "١٢"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out o = numeric(bad[i]);
        if (o.rc != PGETL_EDATA)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_non_null(strstr(o.why, "invalid numeric value"));
    }
}

static void numeric_out_of_range(void **state) {
    (void)state;
    assert_int_equal(numeric("1e99999999999").rc, PGETL_EOVERFLOW);
    assert_int_equal(numeric("1e-20000").rc, PGETL_EOVERFLOW); /* dscale above 16383 */
    assert_int_equal(numeric("1e200000").rc, PGETL_EOVERFLOW); /* weight above int16 */
    assert_int_equal(numeric("1e131000").rc, PGETL_OK);
}

static void numeric_hostile_bytes_never_crash(void **state) {
    (void)state;
    uint32_t x = 7;
    char s[64];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        size_t len = 1 + (x >> 8) % 40;
        for (; n < len; n++) {
            x = x * 1103515245u + 12345u;
            static const char alpha[] = "0123456789.eE+- nNaAiIfx";
            s[n] = alpha[(x >> 16) % (sizeof alpha - 1)];
        }
        s[n] = '\0';
        out o = numeric(s);
        assert_true(o.rc == PGETL_OK || o.rc == PGETL_EDATA || o.rc == PGETL_EOVERFLOW);
        if (o.rc == PGETL_OK) {
            int nd = (o.bytes[0] << 8) | o.bytes[1];
            assert_int_equal(o.len, 8 + 2 * (size_t)nd);
            for (int k = 0; k < nd; k++)
                assert_true(((o.bytes[8 + 2 * k] << 8) | o.bytes[9 + 2 * k]) < 10000);
        }
    }
}

static void int_into_numeric(void **state) {
    (void)state;
    EXPECT(encode(PGETL_TYPE_INT64, PGETL_OID_NUMERIC, ival(-10000)), 0, 0, 0, 10, 0, 1, 0, 1, 0x40,
           0, 0, 0, 0, 1);
    out o = encode(PGETL_TYPE_INT64, PGETL_OID_NUMERIC, ival(INT64_MIN));
    assert_int_equal(o.rc, PGETL_OK);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bin_integers_big_endian),
        cmocka_unit_test(bin_narrowing_range_checked),
        cmocka_unit_test(bin_floats_ieee),
        cmocka_unit_test(bin_dates_and_timestamps_shift_epoch),
        cmocka_unit_test(bin_text_bytea_uuid_jsonb),
        cmocka_unit_test(bin_impossible_pairs_refused),
        cmocka_unit_test(numeric_layout),
        cmocka_unit_test(numeric_specials),
        cmocka_unit_test(numeric_38_digits),
        cmocka_unit_test(numeric_malformed_refused),
        cmocka_unit_test(numeric_out_of_range),
        cmocka_unit_test(numeric_hostile_bytes_never_crash),
        cmocka_unit_test(int_into_numeric),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
