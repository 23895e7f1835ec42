/* The strict per-type parsers: exact binary values inside the grammar, refusal outside it. */
#include "harness.h"

#include "load/convert_int.h"

static int64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    if (n < 8 && (v >> (8 * n - 1)) & 1) /* sign-extend */
        v |= ~UINT64_C(0) << (8 * n);
    return (int64_t)v;
}

#define CONV(fn, s, buf) fn((s), strlen(s), (buf))

static void integers(void **state) {
    (void)state;
    unsigned char b[8];
    assert_int_equal(CONV(pgetl__conv_int4, "0", b), 4);
    assert_int_equal(be(b, 4), 0);
    assert_int_equal(CONV(pgetl__conv_int4, "-2147483648", b), 4);
    assert_int_equal(be(b, 4), INT32_MIN);
    assert_int_equal(CONV(pgetl__conv_int4, "2147483647", b), 4);
    assert_int_equal(be(b, 4), INT32_MAX);
    assert_int_equal(CONV(pgetl__conv_int4, "007", b), 4);
    assert_int_equal(be(b, 4), 7);
    assert_int_equal(CONV(pgetl__conv_int4, "2147483648", b), -1);
    assert_int_equal(CONV(pgetl__conv_int4, "-2147483649", b), -1);
    assert_int_equal(CONV(pgetl__conv_int2, "-32768", b), 2);
    assert_int_equal(be(b, 2), -32768);
    assert_int_equal(CONV(pgetl__conv_int2, "32768", b), -1);
    assert_int_equal(CONV(pgetl__conv_int8, "-9223372036854775808", b), 8);
    assert_int_equal(be(b, 8), INT64_MIN);
    assert_int_equal(CONV(pgetl__conv_int8, "9223372036854775807", b), 8);
    assert_int_equal(CONV(pgetl__conv_int8, "9223372036854775808", b), -1);
    assert_int_equal(CONV(pgetl__conv_int8, "99999999999999999999999", b), -1);
    /* Outside the strict grammar: left to the server. */
    const char *bad[] = {"", "-", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "١", "--1", "1-"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(CONV(pgetl__conv_int4, bad[i], b), -1);
}

static double f8(const unsigned char *b) {
    uint64_t v = (uint64_t)be(b, 8);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static void floats(void **state) {
    (void)state;
    unsigned char b[8];
    assert_int_equal(CONV(pgetl__conv_float8, "1.5", b), 8);
    assert_true(f8(b) == 1.5);
    assert_int_equal(CONV(pgetl__conv_float8, "-0", b), 8);
    assert_true(f8(b) == 0.0 && signbit(f8(b)));
    assert_int_equal(CONV(pgetl__conv_float8, "0.1", b), 8);
    assert_true(f8(b) == 0.1);
    assert_int_equal(CONV(pgetl__conv_float8, "1.7976931348623157e308", b), 8);
    assert_int_equal(CONV(pgetl__conv_float8, "2E-3", b), 8);
    assert_true(f8(b) == 2e-3);
    /* Overflow / underflow and non-grammar forms go to the server. */
    const char *bad[] = {"1e309", "1e-400", "NaN", "Infinity", "-inf", ".5", "5.",
                         "1e",    "+1",     " 1",  "0x1p3",    "1,5",  ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(CONV(pgetl__conv_float8, bad[i], b), -1);
    assert_int_equal(CONV(pgetl__conv_float4, "3.4028235e38", b), 4);
    assert_int_equal(CONV(pgetl__conv_float4, "3.5e38", b), -1);
    assert_int_equal(CONV(pgetl__conv_float4, "0.1", b), 4);
    uint32_t bits = (uint32_t)be(b, 4);
    float f;
    memcpy(&f, &bits, 4);
    assert_true(f == 0.1f);
}

static void bools(void **state) {
    (void)state;
    unsigned char b[8];
    assert_int_equal(CONV(pgetl__conv_bool, "t", b), 1);
    assert_int_equal(b[0], 1);
    assert_int_equal(CONV(pgetl__conv_bool, "false", b), 1);
    assert_int_equal(b[0], 0);
    const char *bad[] = {"T", "TRUE", "yes", "1", "on", " t", "tr", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(CONV(pgetl__conv_bool, bad[i], b), -1);
}

static void dates(void **state) {
    (void)state;
    unsigned char b[8];
    assert_int_equal(CONV(pgetl__conv_date, "2000-01-01", b), 4);
    assert_int_equal(be(b, 4), 0);
    assert_int_equal(CONV(pgetl__conv_date, "1970-01-01", b), 4);
    assert_int_equal(be(b, 4), -10957);
    assert_int_equal(CONV(pgetl__conv_date, "2024-02-29", b), 4);
    assert_int_equal(be(b, 4), 8825);
    assert_int_equal(CONV(pgetl__conv_date, "0001-01-01", b), 4);
    assert_int_equal(be(b, 4), -730119);
    const char *bad[] = {"2023-02-29",  "1900-02-29", "2024-13-01",  "2024-00-10",
                         "2024-04-31",  "0000-01-01", "2024-1-01",   "20240101",
                         "2024-01-01 ", "01/02/2024", "10000-01-01", "2024-01-01T00:00:00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(CONV(pgetl__conv_date, bad[i], b), -1);
    assert_int_equal(CONV(pgetl__conv_date, "2000-02-29", b), 4);
}

static void timestamps(void **state) {
    (void)state;
    unsigned char b[8];
    assert_int_equal(CONV(pgetl__conv_timestamp, "2000-01-01 00:00:01.5", b), 8);
    assert_int_equal(be(b, 8), 1500000);
    assert_int_equal(CONV(pgetl__conv_timestamp, "2000-01-02T00:00:00", b), 8);
    assert_int_equal(be(b, 8), INT64_C(86400000000));
    assert_int_equal(CONV(pgetl__conv_timestamp, "1999-12-31 23:59:59.999999", b), 8);
    assert_int_equal(be(b, 8), -1);
    const char *bad[] = {"2000-01-01 24:00:00",
                         "2000-01-01 23:60:00",
                         "2000-01-01 23:59:60",
                         "2000-01-01 1:00:00",
                         "2000-01-01 00:00:00.1234567",
                         "2000-01-01 00:00:00.",
                         "2000-01-01 00:00:00+00",
                         "2000-01-01",
                         "2000-01-01 00:00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(CONV(pgetl__conv_timestamp, bad[i], b), -1);
    /* timestamptz: explicit offsets only. */
    assert_int_equal(CONV(pgetl__conv_timestamptz, "2000-01-01 02:00:00+02", b), 8);
    assert_int_equal(be(b, 8), 0);
    assert_int_equal(CONV(pgetl__conv_timestamptz, "1999-12-31 19:30:00-04:30", b), 8);
    assert_int_equal(be(b, 8), 0);
    assert_int_equal(CONV(pgetl__conv_timestamptz, "2000-01-01 00:00:00Z", b), 8);
    assert_int_equal(be(b, 8), 0);
    const char *badtz[] = {"2000-01-01 00:00:00",       "2000-01-01 00:00:00 UTC",
                           "2000-01-01 00:00:00+0200",  "2000-01-01 00:00:00+16",
                           "2000-01-01 00:00:00+02:60", "2000-01-01 00:00:00 +02",
                           "2000-01-01 00:00:00Zx"};
    for (size_t i = 0; i < sizeof badtz / sizeof *badtz; i++)
        assert_int_equal(CONV(pgetl__conv_timestamptz, badtz[i], b), -1);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers), cmocka_unit_test(floats),     cmocka_unit_test(bools),
        cmocka_unit_test(dates),    cmocka_unit_test(timestamps),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
