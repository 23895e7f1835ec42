/*
 * Arrow builders fed PostgreSQL binary values by hand: every decoder with
 * extremes and NULLs, hostile values (wrong lengths, bad UTF-8, bad numerics,
 * bad array headers), batch rollback and cutting, and the exported
 * ArrowArray / ArrowSchema structures with their release callbacks.
 */
#include "harness.h"

#include "copy/copy_out.h"

#include <math.h>

__extension__ typedef __int128 i128;

/* ---- helpers -------------------------------------------------------------- */

static void be16(uint8_t *p, int v) {
    p[0] = (uint8_t)((unsigned)v >> 8);
    p[1] = (uint8_t)v;
}
static void be32(uint8_t *p, int64_t v) {
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}
static void be64(uint8_t *p, uint64_t v) {
    be32(p, (int64_t)(uint32_t)(v >> 32));
    be32(p + 4, (int64_t)(uint32_t)v);
}

static pgetl_arrow_col make(uint32_t oid, int32_t typmod) {
    pgetl_arrow_col c;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_col_init(&c, "c", oid, typmod, &err), &err);
    return c;
}

static void add(pgetl_arrow_col *c, const void *p, int32_t len) {
    pgetl_error err;
    pgetl_field f = {.data = p, .len = len};
    pgetl_dec d = pgetl__arrow_col_append(c, &f, &err);
    if (d != PGETL_DEC_OK)
        fail_msg("append failed (%d): %s", d, err.message);
}

static void add_null(pgetl_arrow_col *c) {
    add(c, NULL, -1);
}

/* Expects an error with `code` and `needle`; the builder must be unchanged. */
static void add_bad(pgetl_arrow_col *c, const void *p, int32_t len, pgetl_code code,
                    const char *needle) {
    pgetl_error err;
    pgetl_error_init(&err);
    int64_t before = c->length;
    pgetl_field f = {.data = p, .len = len};
    pgetl_dec d = pgetl__arrow_col_append(c, &f, &err);
    if (d != PGETL_DEC_ERROR || err.code != code || !strstr(err.message, needle))
        fail_msg("want %s '%s', got dec %d %s '%s'", pgetl_code_name(code), needle, d,
                 pgetl_code_name(err.code), err.message);
    pgetl__arrow_col_truncate(c, before);
    assert_int_equal(c->length, before);
}

static bool valid(const pgetl_arrow_col *c, int64_t i) {
    return ((unsigned char)c->validity.data[i >> 3] >> (i & 7)) & 1;
}

static const char *str_at(const pgetl_arrow_col *c, int64_t i, int32_t *len) {
    const int32_t *off = (const int32_t *)c->values.data;
    *len = off[i + 1] - off[i];
    return c->data.data + off[i];
}

static void assert_str(const pgetl_arrow_col *c, int64_t i, const char *want) {
    int32_t n;
    const char *s = str_at(c, i, &n);
    if ((size_t)n != strlen(want) || memcmp(s, want, (size_t)n) != 0)
        fail_msg("value %lld: got '%.*s', want '%s'", (long long)i, (int)n, s, want);
}

/* ---- fixed-width types --------------------------------------------------- */

static void ints(void **state) {
    (void)state;
    pgetl_arrow_col c2 = make(PGETL_OID_INT2, -1), c4 = make(PGETL_OID_INT4, -1),
                    c8 = make(PGETL_OID_INT8, -1);
    assert_string_equal(c2.format, "s");
    assert_string_equal(c4.format, "i");
    assert_string_equal(c8.format, "l");
    uint8_t b[8];
    int16_t v2[] = {INT16_MIN, -1, 0, INT16_MAX};
    int32_t v4[] = {INT32_MIN, -1, 0, INT32_MAX};
    int64_t v8[] = {INT64_MIN, -1, 0, INT64_MAX};
    for (int i = 0; i < 4; i++) {
        be16(b, v2[i]);
        add(&c2, b, 2);
        be32(b, v4[i]);
        add(&c4, b, 4);
        be64(b, (uint64_t)v8[i]);
        add(&c8, b, 8);
    }
    add_null(&c2);
    add_null(&c4);
    add_null(&c8);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(((int16_t *)c2.values.data)[i], v2[i]);
        assert_int_equal(((int32_t *)c4.values.data)[i], v4[i]);
        assert_true(((int64_t *)c8.values.data)[i] == v8[i]);
        assert_true(valid(&c8, i));
    }
    assert_int_equal(c8.length, 5);
    assert_int_equal(c8.null_count, 1);
    assert_false(valid(&c8, 4));
    assert_int_equal(c2.values.len, 10); /* the NULL still takes its slot */
    add_bad(&c4, b, 3, PGETL_EDATA, "int4 value has 3 bytes, expected 4");
    add_bad(&c8, b, 4, PGETL_EDATA, "int8 value has 4 bytes, expected 8");
    add_bad(&c2, b, 0, PGETL_EDATA, "int2 value has 0 bytes");
    pgetl__arrow_col_reset(&c2);
    pgetl__arrow_col_reset(&c4);
    pgetl__arrow_col_reset(&c8);
}

static void floats(void **state) {
    (void)state;
    pgetl_arrow_col c4 = make(PGETL_OID_FLOAT4, -1), c8 = make(PGETL_OID_FLOAT8, -1);
    assert_string_equal(c4.format, "f");
    assert_string_equal(c8.format, "g");
    double d[] = {NAN, INFINITY, -INFINITY, -0.0, 1.5, -2.25e300, 5e-324};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        uint8_t b[8];
        uint64_t u;
        memcpy(&u, &d[i], 8);
        be64(b, u);
        add(&c8, b, 8);
        float f = (float)d[i];
        uint32_t u4;
        memcpy(&u4, &f, 4);
        be32(b, u4);
        add(&c4, b, 4);
    }
    const double *o8 = (const double *)c8.values.data;
    const float *o4 = (const float *)c4.values.data;
    assert_true(isnan(o8[0]) && isnan(o4[0]));
    assert_true(isinf(o8[1]) && o8[1] > 0 && isinf(o4[1]) && o4[1] > 0);
    assert_true(isinf(o8[2]) && o8[2] < 0);
    assert_true(o8[3] == 0 && signbit(o8[3]) && signbit(o4[3]));
    assert_true(o8[4] == 1.5 && o4[4] == 1.5f);
    assert_true(o8[5] == -2.25e300);
    assert_true(o8[6] == 5e-324);
    uint8_t b[8] = {0};
    add_bad(&c8, b, 4, PGETL_EDATA, "float8 value has 4 bytes, expected 8");
    add_bad(&c4, b, 8, PGETL_EDATA, "float4 value has 8 bytes, expected 4");
    pgetl__arrow_col_reset(&c4);
    pgetl__arrow_col_reset(&c8);
}

static void bools(void **state) {
    (void)state;
    pgetl_arrow_col c = make(PGETL_OID_BOOL, -1);
    assert_string_equal(c.format, "b");
    /* 19 values across three bitmap bytes: t f NULL t(2) ... */
    for (int i = 0; i < 19; i++) {
        if (i % 5 == 2) {
            add_null(&c);
            continue;
        }
        uint8_t v = (uint8_t)(i % 3 == 0 ? (i ? 2 : 1) : 0); /* any non-zero byte is true */
        add(&c, &v, 1);
    }
    assert_int_equal(c.length, 19);
    assert_int_equal(c.null_count, 4);
    for (int i = 0; i < 19; i++) {
        bool bit = ((unsigned char)c.values.data[i >> 3] >> (i & 7)) & 1;
        assert_int_equal(valid(&c, i), i % 5 != 2);
        if (i % 5 != 2)
            assert_int_equal(bit, i % 3 == 0);
        else
            assert_false(bit);
    }
    uint8_t two[2] = {1, 1};
    add_bad(&c, two, 2, PGETL_EDATA, "bool value has 2 bytes, expected 1");
    /* Truncating clears the dropped bits so later appends start clean. */
    pgetl__arrow_col_truncate(&c, 9);
    assert_int_equal(c.null_count, 2);
    assert_int_equal(c.values.len, 2);
    assert_int_equal((unsigned char)c.values.data[1] & 0xFE, 0);
    pgetl__arrow_col_reset(&c);
}

static void dates_and_times(void **state) {
    (void)state;
    pgetl_arrow_col d = make(PGETL_OID_DATE, -1);
    assert_string_equal(d.format, "tdD");
    uint8_t b[16];
    /* PostgreSQL days since 2000-01-01 -> Arrow days since 1970-01-01. */
    struct {
        int32_t pg, arrow;
    } dates[] = {
        {-730119, -719162},   /* 0001-01-01 */
        {2921939, 2932896},   /* 9999-12-31 */
        {-10957, 0},          /* 1970-01-01 */
        {0, 10957},           /* 2000-01-01 */
        {59, 11016},          /* 2000-02-29, a leap day */
        {-10957 - 365, -365}, /* 1969-01-01 */
    };
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        be32(b, dates[i].pg);
        add(&d, b, 4);
        assert_int_equal(((int32_t *)d.values.data)[i], dates[i].arrow);
    }
    be32(b, INT32_MAX);
    add_bad(&d, b, 4, PGETL_EOVERFLOW, "date 'infinity' has no Arrow date32 value");
    be32(b, INT32_MIN);
    add_bad(&d, b, 4, PGETL_EOVERFLOW, "date '-infinity'");
    be32(b, INT32_MAX - 5);
    add_bad(&d, b, 4, PGETL_EOVERFLOW, "out of range");
    pgetl__arrow_col_reset(&d);

    pgetl_arrow_col ts = make(PGETL_OID_TIMESTAMP, -1), tz = make(PGETL_OID_TIMESTAMPTZ, -1);
    assert_string_equal(ts.format, "tsu:");
    assert_string_equal(tz.format, "tsu:UTC");
    int64_t pg_us[] = {0, -946684800000000, -63082281600000000 /* 0001-01-01 */,
                       -1 /* 1999-12-31 23:59:59.999999 */};
    for (size_t i = 0; i < 4; i++) {
        be64(b, (uint64_t)pg_us[i]);
        add(&ts, b, 8);
        add(&tz, b, 8);
        int64_t want = pg_us[i] + 946684800000000;
        assert_true(((int64_t *)ts.values.data)[i] == want);
        assert_true(((int64_t *)tz.values.data)[i] == want);
    }
    be64(b, (uint64_t)INT64_MAX);
    add_bad(&tz, b, 8, PGETL_EOVERFLOW, "timestamp 'infinity' has no Arrow timestamp value");
    be64(b, (uint64_t)INT64_MIN);
    add_bad(&ts, b, 8, PGETL_EOVERFLOW, "timestamp '-infinity'");
    be64(b, (uint64_t)(INT64_MAX - 10));
    add_bad(&ts, b, 8, PGETL_EOVERFLOW, "out of range");
    pgetl__arrow_col_reset(&ts);
    pgetl__arrow_col_reset(&tz);

    pgetl_arrow_col t = make(PGETL_OID_TIME, -1);
    assert_string_equal(t.format, "ttu");
    be64(b, 0);
    add(&t, b, 8);
    be64(b, 86400000000ULL); /* 24:00:00 is a valid time */
    add(&t, b, 8);
    assert_true(((int64_t *)t.values.data)[1] == 86400000000LL);
    be64(b, (uint64_t)-1);
    add_bad(&t, b, 8, PGETL_EDATA, "time value -1 us is out of range");
    pgetl__arrow_col_reset(&t);
}

static void intervals(void **state) {
    (void)state;
    pgetl_arrow_col c = make(PGETL_OID_INTERVAL, -1);
    assert_string_equal(c.format, "tin");
    uint8_t b[16];
    be64(b, (uint64_t)-3723000001LL); /* -01:02:03.000001 */
    be32(b + 8, 5);
    be32(b + 12, -14);
    add(&c, b, 16);
    add_null(&c);
    const uint8_t *v = (const uint8_t *)c.values.data;
    int32_t months, days;
    int64_t ns;
    memcpy(&months, v, 4);
    memcpy(&days, v + 4, 4);
    memcpy(&ns, v + 8, 8);
    assert_int_equal(months, -14);
    assert_int_equal(days, 5);
    assert_true(ns == -3723000001000LL);
    assert_int_equal(c.values.len, 32);
    be64(b, (uint64_t)(INT64_MAX / 100));
    add_bad(&c, b, 16, PGETL_EOVERFLOW, "overflows int64 nanoseconds");
    add_bad(&c, b, 12, PGETL_EDATA, "interval value has 12 bytes, expected 16");
    pgetl__arrow_col_reset(&c);
}

static void uuids(void **state) {
    (void)state;
    pgetl_arrow_col c = make(PGETL_OID_UUID, -1);
    assert_string_equal(c.format, "w:16");
    uint8_t u[16];
    for (int i = 0; i < 16; i++)
        u[i] = (uint8_t)(0xA0 + i);
    add_null(&c);
    add(&c, u, 16);
    assert_memory_equal(c.values.data + 16, u, 16);
    add_bad(&c, u, 15, PGETL_EDATA, "uuid value has 15 bytes");
    pgetl__arrow_col_reset(&c);
}

/* ---- variable-width types ------------------------------------------------ */

static void texts(void **state) {
    (void)state;
    uint32_t oids[] = {PGETL_OID_TEXT, PGETL_OID_VARCHAR, PGETL_OID_BPCHAR, PGETL_OID_NAME,
                       PGETL_OID_JSON};
    for (size_t k = 0; k < sizeof oids / sizeof oids[0]; k++) {
        pgetl_arrow_col c = make(oids[k], -1);
        assert_string_equal(c.format, "u");
        add(&c, "", 0);
        add_null(&c);
        add(&c, "a,b\"c\nd", 7);
        add(&c, "\xF0\x9F\x98\x80 \xE2\x82\xAC \xC3\xA9", 11); /* 4-, 3- and 2-byte UTF-8 */
        assert_int_equal(c.length, 4);
        assert_int_equal(c.null_count, 1);
        assert_str(&c, 0, "");
        assert_true(valid(&c, 0));
        assert_false(valid(&c, 1));
        assert_str(&c, 1, "");
        assert_str(&c, 2, "a,b\"c\nd");
        assert_str(&c, 3, "\xF0\x9F\x98\x80 \xE2\x82\xAC \xC3\xA9");
        const char *bad[] = {"\xC3", "\xC0\xAF",    "\xED\xA0\x80", "\xF4\x90\x80\x80",
                             "\xFF", "abcdefgh\x80"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            add_bad(&c, bad[i], (int32_t)strlen(bad[i]), PGETL_EDATA, "not valid UTF-8");
        pgetl__arrow_col_reset(&c);
    }
}

static void byteas_and_jsonb(void **state) {
    (void)state;
    pgetl_arrow_col c = make(PGETL_OID_BYTEA, -1);
    assert_string_equal(c.format, "z");
    add(&c, "\x00\xFF\x80", 3); /* any bytes */
    add(&c, "", 0);
    int32_t n;
    const char *s = str_at(&c, 0, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "\x00\xFF\x80", 3);
    pgetl__arrow_col_reset(&c);

    pgetl_arrow_col j = make(PGETL_OID_JSONB, -1);
    assert_string_equal(j.format, "u");
    add(&j, "\x01{\"a\": 1}", 9);
    assert_str(&j, 0, "{\"a\": 1}");
    add_bad(&j, "\x02{}", 3, PGETL_EDATA, "jsonb value has unknown format version 2");
    add_bad(&j, "", 0, PGETL_EDATA, "unknown format version -1");
    add_bad(&j, "\x01\xFF", 2, PGETL_EDATA, "not valid UTF-8");
    pgetl__arrow_col_reset(&j);
}

/* ---- numeric -------------------------------------------------------------- */

/* Builds numeric_send bytes; returns the length. */
static int32_t numeric(uint8_t *b, int weight, unsigned sign, int dscale, int ndigits,
                       const int *digits) {
    be16(b, ndigits);
    be16(b + 2, weight);
    be16(b + 4, (int)sign);
    be16(b + 6, dscale);
    for (int i = 0; i < ndigits; i++)
        be16(b + 8 + 2 * i, digits[i]);
    return 8 + 2 * ndigits;
}

static void numeric_text(void **state) {
    (void)state;
    pgetl_arrow_col c = make(PGETL_OID_NUMERIC, -1); /* no typmod: text */
    assert_string_equal(c.format, "u");
    uint8_t b[64];
    struct {
        int weight;
        unsigned sign;
        int dscale, nd;
        int d[10];
        const char *want;
    } cases[] = {
        {1, 0, 3, 3, {1, 2345, 6780}, "12345.678"},
        {-1, 0, 3, 1, {10}, "0.001"},
        {1, 0, 0, 1, {100}, "1000000"},
        {0, 0, 2, 0, {0}, "0.00"},
        {0, 0, 0, 0, {0}, "0"},
        {0, 0x4000, 1, 2, {7, 5000}, "-7.5"},
        {-2, 0, 12, 2, {12, 3400}, "0.000000123400"},
        {2, 0x4000, 0, 3, {42, 0, 1}, "-4200000001"},
        {0, 0xC000, 0, 0, {0}, "NaN"},
        {0, 0xD000, 0, 0, {0}, "Infinity"},
        {0, 0xF000, 0, 0, {0}, "-Infinity"},
        {9,
         0,
         0,
         10,
         {99, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999},
         "99999999999999999999999999999999999999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t n =
            numeric(b, cases[i].weight, cases[i].sign, cases[i].dscale, cases[i].nd, cases[i].d);
        add(&c, b, n);
        assert_str(&c, (int64_t)i, cases[i].want);
    }
    /* The text helper alone, and the longest form fits its bound. */
    static char out[PGETL_NUMERIC_TEXT_MAX];
    int one = 1;
    int32_t n = numeric(b, 32767, 0x4000, 0x3FFF, 1, &one);
    pgetl_error err;
    int64_t len = pgetl__numeric_to_text(b, n, out, &err);
    assert_int_equal(len, 1 + 1 + 4 * 32767 + 1 + 0x3FFF);
    assert_int_equal(out[0], '-');
    assert_int_equal(out[1], '1');
    assert_int_equal(out[len - 1], '0');

    int dig = 10000;
    n = numeric(b, 0, 0, 0, 1, &dig);
    add_bad(&c, b, n, PGETL_EDATA, "invalid digit 10000");
    n = numeric(b, 0, 0x8000, 0, 1, &one);
    add_bad(&c, b, n, PGETL_EDATA, "invalid sign 0x8000");
    n = numeric(b, 0, 0, 0x4000, 1, &one);
    add_bad(&c, b, n, PGETL_EDATA, "invalid scale 16384");
    n = numeric(b, 0, 0, 0, 2, (int[]){1, 2});
    add_bad(&c, b, n - 1, PGETL_EDATA, "numeric value has 11 bytes for 2 digits");
    add_bad(&c, b, 5, PGETL_EDATA, "fewer than its header");
    be16(b, -1);
    add_bad(&c, b, 8, PGETL_EDATA, "for -1 digits");
    pgetl__arrow_col_reset(&c);
}

static i128 dec_at(const pgetl_arrow_col *c, int64_t i) {
    i128 v;
    memcpy(&v, c->values.data + 16 * i, 16);
    return v;
}

static void numeric_decimal(void **state) {
    (void)state;
    /* numeric(38,0) and numeric(10,2): typmod = (p << 16 | s) + 4 */
    pgetl_arrow_col c = make(PGETL_OID_NUMERIC, (38 << 16 | 0) + 4);
    assert_string_equal(c.format, "d:38,0");
    uint8_t b[64];
    int nines[] = {99, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999};
    add(&c, b, numeric(b, 9, 0, 0, 10, nines));
    add(&c, b, numeric(b, 9, 0x4000, 0, 10, nines));
    add_null(&c);
    i128 max = 0;
    for (int i = 0; i < 38; i++)
        max = max * 10 + 9;
    assert_true(dec_at(&c, 0) == max);
    assert_true(dec_at(&c, 1) == -max);
    assert_true(dec_at(&c, 2) == 0);
    int big[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* 10^36 * ... = 1e36? weight 9 -> 10^36 */
    add(&c, b, numeric(b, 9, 0, 0, 1, big));
    i128 e36 = 1;
    for (int i = 0; i < 36; i++)
        e36 *= 10;
    assert_true(dec_at(&c, 3) == e36);
    int over[] = {100}; /* 100 * 10000^9 = 10^38: one digit too many */
    add_bad(&c, b, numeric(b, 9, 0, 0, 1, over), PGETL_EOVERFLOW,
            "numeric value does not fit decimal128(38,0)");
    add_bad(&c, b, numeric(b, 10, 0, 0, 1, big), PGETL_EOVERFLOW, "does not fit");
    add_bad(&c, b, numeric(b, 0, 0xC000, 0, 0, NULL), PGETL_EOVERFLOW,
            "numeric 'NaN' has no decimal128(38,0) value");
    add_bad(&c, b, numeric(b, 0, 0xD000, 0, 0, NULL), PGETL_EOVERFLOW, "'Infinity'");
    add_bad(&c, b, numeric(b, 0, 0xF000, 0, 0, NULL), PGETL_EOVERFLOW, "'-Infinity'");
    int frac[] = {1, 5000};
    add_bad(&c, b, numeric(b, 0, 0, 1, 2, frac), PGETL_EDATA, "more fractional digits");
    pgetl__arrow_col_reset(&c);

    pgetl_arrow_col m = make(PGETL_OID_NUMERIC, (10 << 16 | 2) + 4);
    assert_string_equal(m.format, "d:10,2");
    int v1[] = {12, 3456, 7800}; /* 123456.78 */
    add(&m, b, numeric(b, 1, 0x4000, 2, 3, v1));
    assert_true(dec_at(&m, 0) == -12345678);
    int v2[] = {5}; /* 0.0005 cannot be held at scale 2 */
    add_bad(&m, b, numeric(b, -1, 0, 4, 1, v2), PGETL_EDATA, "more fractional digits");
    int v3[] = {1, 0, 0}; /* 100000000 = 10^8 needs 9+2 digits > 10 */
    add_bad(&m, b, numeric(b, 2, 0, 0, 1, v3), PGETL_EOVERFLOW, "decimal128(10,2)");
    int v4[] = {9999, 9999, 9900}; /* 99999999.99 fits exactly */
    add(&m, b, numeric(b, 1, 0, 2, 3, v4));
    assert_true(dec_at(&m, 1) == 9999999999LL);
    pgetl__arrow_col_reset(&m);

    /* Precision above 38, negative scale and no typmod fall back to text. */
    pgetl_arrow_col t = make(PGETL_OID_NUMERIC, (39 << 16 | 0) + 4);
    assert_string_equal(t.format, "u");
    pgetl__arrow_col_reset(&t);
    pgetl_arrow_col neg = make(PGETL_OID_NUMERIC, (5 << 16 | (-2 & 0x7FF)) + 4);
    assert_string_equal(neg.format, "u");
    pgetl__arrow_col_reset(&neg);
}

/* ---- arrays --------------------------------------------------------------- */

/* Builds array_send bytes for int4 elements (INT32_MIN stands for NULL). */
static int32_t int4_array(uint8_t *b, int ndim, const int32_t *v, int n, uint32_t elem) {
    be32(b, ndim);
    be32(b + 4, 0);
    be32(b + 8, elem);
    size_t at = 12;
    for (int d = 0; d < ndim; d++) {
        be32(b + at, d == 0 ? n : 1);
        be32(b + at + 4, 1);
        at += 8;
    }
    for (int i = 0; i < n; i++) {
        if (v[i] == INT32_MIN) {
            be32(b + at, -1);
            at += 4;
            continue;
        }
        be32(b + at, 4);
        be32(b + at + 4, v[i]);
        at += 8;
    }
    return (int32_t)at;
}

static void lists(void **state) {
    (void)state;
    pgetl_arrow_col c = make(1007 /* int4[] */, -1);
    assert_string_equal(c.format, "+l");
    assert_non_null(c.child);
    assert_string_equal(c.child->format, "i");
    uint8_t b[256];
    int32_t v[] = {1, INT32_MIN, -7};
    add(&c, b, int4_array(b, 1, v, 3, 23));
    add_null(&c);
    add(&c, b, int4_array(b, 0, NULL, 0, 23)); /* '{}' is sent with 0 dimensions */
    add(&c, b, int4_array(b, 1, v, 1, 23));
    assert_int_equal(c.length, 4);
    assert_int_equal(c.null_count, 1);
    const int32_t *off = (const int32_t *)c.values.data;
    assert_int_equal(off[0], 0);
    assert_int_equal(off[1], 3);
    assert_int_equal(off[2], 3);
    assert_int_equal(off[3], 3);
    assert_int_equal(off[4], 4);
    assert_int_equal(c.child->length, 4);
    assert_int_equal(c.child->null_count, 1);
    const int32_t *e = (const int32_t *)c.child->values.data;
    assert_int_equal(e[0], 1);
    assert_int_equal(e[2], -7);
    assert_int_equal(e[3], 1);
    assert_false(valid(c.child, 1));

    /* Hostile or unsupported array values leave the list and its child unchanged. */
    add_bad(&c, b, int4_array(b, 2, v, 1, 23), PGETL_EUNSUPPORTED,
            "multi-dimensional array (2 dimensions)");
    add_bad(&c, b, int4_array(b, 1, v, 3, 20), PGETL_EDATA,
            "array element type OID 20, expected 23");
    assert_int_equal(c.child->length, 4);
    int32_t n = int4_array(b, 1, v, 3, 23);
    add_bad(&c, b, n - 1, PGETL_EDATA, "array element 3 has invalid length 4");
    add_bad(&c, b, 11, PGETL_EDATA, "has no header");
    b[n] = 0;
    add_bad(&c, b, n + 1, PGETL_EDATA, "1 bytes after the array's elements");
    be32(b + 12, 1000000);
    add_bad(&c, b, n, PGETL_EDATA, "array of 1000000 elements does not fit");
    be32(b + 12, -1);
    add_bad(&c, b, n, PGETL_EDATA, "array of -1 elements");
    int4_array(b, 1, v, 3, 23);
    be32(b, 7);
    add_bad(&c, b, n, PGETL_EDATA, "invalid dimension count 7");
    int4_array(b, 1, v, 3, 23);
    be32(b + 4, 2);
    add_bad(&c, b, n, PGETL_EDATA, "invalid flags 2");
    int4_array(b, 1, v, 3, 23);
    be32(b + 20, 3); /* first element claims 3 bytes for an int4 */
    add_bad(&c, b, n, PGETL_EDATA, "array element 1: int4 value has 3 bytes");
    int4_array(b, 1, v, 3, 23);
    be32(b + 20, -5);
    add_bad(&c, b, n, PGETL_EDATA, "array element 1 has invalid length -5");
    assert_int_equal(c.length, 4);
    assert_int_equal(c.child->length, 4);
    assert_int_equal(c.child->null_count, 1);
    pgetl__arrow_col_reset(&c);

    /* text[] elements are validated as text. */
    pgetl_arrow_col t = make(1009, -1);
    assert_string_equal(t.child->format, "u");
    assert_int_equal(t.child->values.len, 4); /* one starting offset, not two */
    assert_int_equal(t.values.len, 4);
    be32(b, 1);
    be32(b + 4, 0);
    be32(b + 8, 25);
    be32(b + 12, 2);
    be32(b + 16, 1);
    be32(b + 20, 2);
    memcpy(b + 24, "hi", 2);
    be32(b + 26, 1);
    b[30] = 0xFF;
    add_bad(&t, b, 31, PGETL_EDATA, "array element 2: text value is not valid UTF-8");
    assert_int_equal(t.child->length, 0);
    b[30] = 'x';
    add(&t, b, 31);
    assert_int_equal(t.child->length, 2);
    assert_str(t.child, 0, "hi");
    assert_str(t.child, 1, "x");
    pgetl__arrow_col_reset(&t);
}

static void supported_types(void **state) {
    (void)state;
    assert_true(pgetl__arrow_type_supported(PGETL_OID_INT8, -1));
    assert_true(pgetl__arrow_type_supported(1231 /* numeric[] */, -1));
    assert_true(pgetl__arrow_type_supported(3807 /* jsonb[] */, -1));
    assert_false(pgetl__arrow_type_supported(PGETL_OID_TIMETZ, -1));
    assert_false(pgetl__arrow_type_supported(PGETL_OID_CHAR, -1));
    assert_false(pgetl__arrow_type_supported(PGETL_OID_OID, -1));
    assert_false(pgetl__arrow_type_supported(1270 /* timetz[] */, -1));
    assert_false(pgetl__arrow_type_supported(600 /* point */, -1));
    pgetl_arrow_col c;
    pgetl_error err;
    assert_int_equal(pgetl__arrow_col_init(&c, "p", 600, -1, &err), PGETL_EUNSUPPORTED);
    assert_non_null(strstr(err.message, "no binary decoder for type OID 600"));
}

/* ---- batches, rollback, cutting, export ----------------------------------- */

static pgetl_arrow_batch batch3(int64_t var_limit) {
    const char *names[] = {"id", "name", "tags"};
    uint32_t oids[] = {PGETL_OID_INT8, PGETL_OID_TEXT, 1009};
    int32_t mods[] = {-1, -1, -1};
    pgetl_arrow_batch b;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_batch_init(&b, 3, names, oids, mods, var_limit, &err), &err);
    return b;
}

/* One row: id, a text, and a one-element text[] holding the same text. */
static pgetl_dec row(pgetl_arrow_batch *b, int64_t id, const char *text, pgetl_error *err) {
    static uint8_t idb[8], arr[128];
    be64(idb, (uint64_t)id);
    size_t n = strlen(text);
    be32(arr, 1);
    be32(arr + 4, 0);
    be32(arr + 8, 25);
    be32(arr + 12, 1);
    be32(arr + 16, 1);
    be32(arr + 20, (int64_t)n);
    memcpy(arr + 24, text, n);
    pgetl_field f[3] = {{idb, 8}, {(const uint8_t *)text, (int32_t)n}, {arr, (int32_t)(24 + n)}};
    return pgetl__arrow_batch_append_row(b, f, err);
}

static void batch_rollback_on_error(void **state) {
    (void)state;
    pgetl_arrow_batch b = batch3(0);
    pgetl_error err;
    assert_int_equal(row(&b, 1, "one", &err), PGETL_DEC_OK);
    assert_int_equal(row(&b, 2, "two", &err), PGETL_DEC_OK);
    /* Bad UTF-8 in column 2: column 1 already took the id, and must give it back. */
    assert_int_equal(row(&b, 3, "\xFF", &err), PGETL_DEC_ERROR);
    assert_int_equal(err.code, PGETL_EDATA);
    assert_string_equal(err.message, "column \"name\" (row 3): text value is not valid UTF-8");
    assert_int_equal(b.rows, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(b.cols[i].length, 2);
    assert_int_equal(b.cols[0].values.len, 16);
    assert_int_equal(b.cols[1].data.len, 6);
    assert_int_equal(b.cols[2].child->length, 2);
    assert_int_equal(row(&b, 3, "three", &err), PGETL_DEC_OK);
    assert_int_equal(b.cols[2].child->data.len, 11);
    pgetl__arrow_batch_reset(&b);
}

static void batch_cut_when_full(void **state) {
    (void)state;
    /* A 10-byte limit: "abcd" x2 fits (8), a third row would make 12. */
    pgetl_arrow_batch b = batch3(10);
    pgetl_error err;
    assert_int_equal(row(&b, 1, "abcd", &err), PGETL_DEC_OK);
    assert_int_equal(row(&b, 2, "abcd", &err), PGETL_DEC_OK);
    assert_int_equal(row(&b, 3, "abcd", &err), PGETL_DEC_FULL);
    assert_int_equal(b.rows, 2);
    assert_int_equal(b.cols[0].length, 2);
    assert_int_equal(b.cols[1].data.len, 8);
    struct ArrowArray a;
    assert_pgetl_ok(pgetl__arrow_batch_finish(&b, &a, &err), &err);
    assert_int_equal(a.length, 2);
    assert_int_equal(b.row_base, 2);
    /* The cut row starts the next batch. */
    assert_int_equal(row(&b, 3, "abcd", &err), PGETL_DEC_OK);
    assert_int_equal(b.rows, 1);
    /* A value larger than a whole batch is an error, not an endless cut. */
    assert_int_equal(row(&b, 4, "0123456789ab", &err), PGETL_DEC_FULL);
    struct ArrowArray a2;
    assert_pgetl_ok(pgetl__arrow_batch_finish(&b, &a2, &err), &err);
    assert_int_equal(row(&b, 4, "0123456789ab", &err), PGETL_DEC_ERROR);
    assert_int_equal(err.code, PGETL_EOVERFLOW);
    assert_non_null(strstr(err.message, "column \"name\" (row 4): value is too large"));
    assert_int_equal(b.rows, 0);
    assert_int_equal(b.cols[0].length, 0);
    a.release(&a);
    a2.release(&a2);
    pgetl__arrow_batch_reset(&b);
}

static void export_arrays(void **state) {
    (void)state;
    pgetl_arrow_batch b = batch3(0);
    pgetl_error err;
    assert_int_equal(row(&b, 10, "x", &err), PGETL_DEC_OK);
    pgetl_field nulls[3] = {{NULL, -1}, {NULL, -1}, {NULL, -1}};
    assert_int_equal(pgetl__arrow_batch_append_row(&b, nulls, &err), PGETL_DEC_OK);
    assert_int_equal(row(&b, 30, "zz", &err), PGETL_DEC_OK);

    struct ArrowSchema s;
    assert_pgetl_ok(pgetl__arrow_batch_schema(&b, &s, &err), &err);
    assert_string_equal(s.format, "+s");
    assert_int_equal(s.n_children, 3);
    assert_string_equal(s.children[0]->name, "id");
    assert_string_equal(s.children[0]->format, "l");
    assert_int_equal(s.children[0]->flags, ARROW_FLAG_NULLABLE);
    assert_string_equal(s.children[1]->format, "u");
    assert_string_equal(s.children[2]->format, "+l");
    assert_int_equal(s.children[2]->n_children, 1);
    assert_string_equal(s.children[2]->children[0]->format, "u");
    assert_string_equal(s.children[2]->children[0]->name, "item");

    struct ArrowArray a;
    assert_pgetl_ok(pgetl__arrow_batch_finish(&b, &a, &err), &err);
    assert_int_equal(a.length, 3);
    assert_int_equal(a.n_buffers, 1);
    assert_null(a.buffers[0]);
    assert_int_equal(a.n_children, 3);
    struct ArrowArray *id = a.children[0], *name = a.children[1], *tags = a.children[2];
    assert_int_equal(id->length, 3);
    assert_int_equal(id->null_count, 1);
    assert_int_equal(id->n_buffers, 2);
    assert_int_equal(((const uint8_t *)id->buffers[0])[0], 0x5); /* rows 0 and 2 valid */
    assert_true(((const int64_t *)id->buffers[1])[2] == 30);
    assert_int_equal(name->n_buffers, 3);
    const int32_t *off = name->buffers[1];
    assert_int_equal(off[3], 3);
    assert_memory_equal(name->buffers[2], "xzz", 3);
    assert_int_equal(tags->n_children, 1);
    assert_int_equal(tags->children[0]->length, 2);
    assert_memory_equal(tags->children[0]->buffers[2], "xzz", 3);

    /* A consumer may move a child out and release it after the parent. */
    struct ArrowArray moved = *name;
    name->release = NULL;
    struct ArrowSchema moved_s = *s.children[2];
    s.children[2]->release = NULL;
    a.release(&a);
    assert_null(a.release);
    assert_memory_equal(moved.buffers[2], "xzz", 3);
    moved.release(&moved);
    s.release(&s);
    assert_string_equal(moved_s.children[0]->name, "item");
    moved_s.release(&moved_s);

    /* The builders start the next batch empty, with no NULLs: no validity buffer. */
    assert_int_equal(b.rows, 0);
    assert_int_equal(row(&b, 40, "w", &err), PGETL_DEC_OK);
    struct ArrowArray a2;
    assert_pgetl_ok(pgetl__arrow_batch_finish(&b, &a2, &err), &err);
    assert_int_equal(a2.length, 1);
    assert_null(a2.children[0]->buffers[0]);
    assert_int_equal(a2.children[0]->null_count, 0);
    assert_true(((const int64_t *)a2.children[0]->buffers[1])[0] == 40);
    assert_int_equal(((const int32_t *)a2.children[1]->buffers[1])[0], 0);
    assert_int_equal(((const int32_t *)a2.children[1]->buffers[1])[1], 1);
    a2.release(&a2);
    pgetl__arrow_batch_reset(&b);
}

static void batch_unsupported_type(void **state) {
    (void)state;
    const char *names[] = {"ok", "pt"};
    uint32_t oids[] = {PGETL_OID_INT4, 600};
    int32_t mods[] = {-1, -1};
    pgetl_arrow_batch b;
    pgetl_error err;
    assert_int_equal(pgetl__arrow_batch_init(&b, 2, names, oids, mods, 0, &err),
                     PGETL_EUNSUPPORTED);
    assert_string_equal(err.message, "column \"pt\": no binary decoder for type OID 600");
}

/* ---- allocator failure ---------------------------------------------------- */

/* Fails the fail_at-th allocation (counting malloc and realloc), then all later ones. */
static int64_t alloc_count, alloc_fail_at;

static void *failing_malloc(size_t n) {
    return ++alloc_count >= alloc_fail_at ? NULL : malloc(n);
}
static void *failing_realloc(void *p, size_t n) {
    return ++alloc_count >= alloc_fail_at ? NULL : realloc(p, n);
}

/* The whole life of a batch; returns the first failure's code (PGETL_OK if none). */
static pgetl_code batch_life(void) {
    pgetl_arrow_batch b;
    pgetl_error err;
    const char *names[] = {"id", "name", "tags", "n"};
    uint32_t oids[] = {PGETL_OID_INT8, PGETL_OID_TEXT, 1009, PGETL_OID_NUMERIC};
    int32_t mods[] = {-1, -1, -1, -1};
    pgetl_code rc = pgetl__arrow_batch_init(&b, 4, names, oids, mods, 0, &err);
    if (rc != PGETL_OK)
        return rc;
    uint8_t num[10];
    be16(num, 1);
    be16(num + 2, 0);
    be16(num + 4, 0);
    be16(num + 6, 0);
    be16(num + 8, 7);
    struct ArrowArray a[3];
    int na = 0;
    for (int batch = 0; rc == PGETL_OK && batch < 3; batch++) {
        for (int i = 0; i < 300; i++) {
            static uint8_t idb[8], arr[64];
            be64(idb, (uint64_t)i);
            be32(arr, 1);
            be32(arr + 4, 0);
            be32(arr + 8, 25);
            be32(arr + 12, 1);
            be32(arr + 16, 1);
            be32(arr + 20, 5);
            memcpy(arr + 24, "hello", 5);
            pgetl_field f[4] = {{idb, 8},
                                {(const uint8_t *)"some text", 9},
                                {arr, 29},
                                {i % 7 ? num : NULL, i % 7 ? 10 : -1}};
            pgetl_dec d = pgetl__arrow_batch_append_row(&b, f, &err);
            if (d != PGETL_DEC_OK) {
                assert_int_equal(d, PGETL_DEC_ERROR);
                rc = err.code;
                break;
            }
        }
        /* A failed row leaves the batch consistent: what was built still exports. */
        assert_int_equal(b.cols[0].length, b.rows);
        assert_int_equal(b.cols[2].length, b.rows);
        if (rc == PGETL_OK || b.rows > 0) {
            pgetl_code rc2 = pgetl__arrow_batch_finish(&b, &a[na], &err);
            if (rc2 == PGETL_OK)
                na++;
            else if (rc == PGETL_OK)
                rc = rc2;
        }
    }
    struct ArrowSchema s;
    pgetl_code rc3 = pgetl__arrow_batch_schema(&b, &s, &err);
    if (rc3 == PGETL_OK)
        s.release(&s);
    else if (rc == PGETL_OK)
        rc = rc3;
    for (int i = 0; i < na; i++)
        a[i].release(&a[i]);
    pgetl__arrow_batch_reset(&b);
    return rc;
}

static void allocation_failures(void **state) {
    (void)state;
    int failures = 0;
    for (alloc_fail_at = 1;; alloc_fail_at++) {
        alloc_count = 0;
        assert_pgetl_ok(pgetl_set_allocator(failing_malloc, failing_realloc, free), NULL);
        pgetl_code rc = batch_life();
        pgetl_set_allocator(NULL, NULL, NULL);
        if (rc == PGETL_OK)
            break; /* every allocation succeeded: all failure points were visited */
        assert_int_equal(rc, PGETL_ENOMEM);
        failures++;
    }
    assert_true(failures > 10);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ints),
        cmocka_unit_test(floats),
        cmocka_unit_test(bools),
        cmocka_unit_test(dates_and_times),
        cmocka_unit_test(intervals),
        cmocka_unit_test(uuids),
        cmocka_unit_test(texts),
        cmocka_unit_test(byteas_and_jsonb),
        cmocka_unit_test(numeric_text),
        cmocka_unit_test(numeric_decimal),
        cmocka_unit_test(lists),
        cmocka_unit_test(supported_types),
        cmocka_unit_test(batch_rollback_on_error),
        cmocka_unit_test(batch_cut_when_full),
        cmocka_unit_test(export_arrays),
        cmocka_unit_test(batch_unsupported_type),
        cmocka_unit_test(allocation_failures),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
