/*
 * Arrow -> binary COPY field encoders, fed fixture arrays and compared byte
 * for byte with PostgreSQL's binary send format; and the chooser's refusals.
 */
#include "harness.h"

#include "arrow_fixture.h"
#include "copy/arrow_int.h"

static pgetl_column_info colinfo(uint32_t oid, int32_t typmod, uint32_t elem, const char *tname) {
    pgetl_column_info ci;
    memset(&ci, 0, sizeof ci);
    snprintf(ci.name, sizeof ci.name, "col");
    ci.type_oid = oid;
    ci.typmod = typmod;
    ci.elem_oid = elem;
    snprintf(ci.type_name, sizeof ci.type_name, "%s", tname);
    return ci;
}

typedef struct enc_ctx {
    pgetl_arrow_field f;
    pgetl_arrow_col c, kid;
    pgetl_buf b;
} enc_ctx;

/* Parses s, chooses the encoder for ci and binds it to a; fails the test when refused. */
static void ctx_open(enc_ctx *x, struct ArrowSchema *s, const pgetl_column_info *ci,
                     struct ArrowArray *a) {
    pgetl_error err;
    memset(x, 0, sizeof *x);
    pgetl__buf_init(&x->b);
    assert_pgetl_ok(pgetl__arrow_field_parse(s, &x->f, &err), &err);
    assert_pgetl_ok(pgetl__arrow_col_choose(&x->c, &x->kid, &x->f, ci, &err), &err);
    assert_pgetl_ok(pgetl__arrow_validate_range(&x->f, a, 0, a->length, "col", &err), &err);
    pgetl__arrow_col_bind(&x->c, a, 0);
}

/* Encodes element i as the driver does (null check, reserve, encoder); returns the reason. */
static const char *ctx_encode(enc_ctx *x, int64_t i) {
    pgetl__buf_clear(&x->b);
    bool valid = pgetl__arrow_valid(&x->c.v, i);
    size_t need = x->c.fixed + (x->c.size && valid ? x->c.size(&x->c, i) : 0);
    assert_int_equal(pgetl__buf_reserve(&x->b, need), PGETL_OK);
    if (!valid) {
        pgetl__buf_be32_unchecked(&x->b, (uint32_t)-1);
        return NULL;
    }
    const char *why = x->c.enc(&x->c, i, &x->b);
    if (!why && x->b.len > need)
        fail_msg("encoder wrote %zu bytes but reserved %zu", x->b.len, need);
    return why;
}

static void ctx_close(enc_ctx *x, struct ArrowSchema *s, struct ArrowArray *a) {
    pgetl__buf_reset(&x->b);
    if (s && s->release)
        s->release(s);
    if (a && a->release)
        a->release(a);
    assert_int_equal(fx_live(), 0);
}

/* Compares the buffer with hex text (spaces ignored). */
static void expect_hex(const pgetl_buf *b, const char *hex) {
    char got[2048], want[2048];
    size_t n = 0;
    for (size_t i = 0; i < b->len && n + 3 < sizeof got; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%02x", (unsigned char)b->data[i]);
    got[n] = '\0';
    n = 0;
    for (const char *p = hex; *p && n + 1 < sizeof want; p++)
        if (*p != ' ')
            want[n++] = *p;
    want[n] = '\0';
    if (strcmp(got, want) != 0)
        fail_msg("bytes differ\n got  %s\n want %s", got, want);
}

/* One scalar column of format `fmt` from fixed-width values. */
static void prim_case(enc_ctx *x, struct ArrowSchema *s, struct ArrowArray *a, const char *fmt,
                      const void *vals, size_t elem, int64_t n, const bool *valid,
                      pgetl_column_info ci) {
    fx_schema(s, fmt, "col", 0);
    fx_prim(a, n, vals, elem, valid);
    ctx_open(x, s, &ci, a);
}

static void ints_widen(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    int32_t v[] = {42, -1, INT32_MIN};
    bool valid[] = {true, true, false};
    prim_case(&x, &s, &a, "i", v, 4, 3, valid, colinfo(PGETL_OID_INT8, -1, 0, "bigint"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000008 000000000000002a");
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "00000008 ffffffffffffffff");
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "ffffffff");
    ctx_close(&x, &s, &a);

    uint8_t u[] = {255};
    prim_case(&x, &s, &a, "C", u, 1, 1, NULL, colinfo(PGETL_OID_INT2, -1, 0, "smallint"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000002 00ff");
    ctx_close(&x, &s, &a);

    uint16_t u16[] = {65535};
    prim_case(&x, &s, &a, "S", u16, 2, 1, NULL, colinfo(PGETL_OID_INT4, -1, 0, "integer"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000004 0000ffff");
    ctx_close(&x, &s, &a);

    int64_t big[] = {INT64_MIN, INT64_MAX};
    prim_case(&x, &s, &a, "l", big, 8, 2, NULL, colinfo(PGETL_OID_INT8, -1, 0, "bigint"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000008 8000000000000000");
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "00000008 7fffffffffffffff");
    ctx_close(&x, &s, &a);
}

static void uint64_overflow_checked(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    uint64_t v[] = {(uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    prim_case(&x, &s, &a, "L", v, 8, 3, NULL, colinfo(PGETL_OID_INT8, -1, 0, "bigint"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000008 7fffffffffffffff");
    const char *why = ctx_encode(&x, 1);
    assert_non_null(why);
    assert_non_null(strstr(why, "does not fit in bigint"));
    assert_non_null(ctx_encode(&x, 2));
    ctx_close(&x, &s, &a);
}

static void floats(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    /* half: 1.0, -0.0, +inf, smallest subnormal 2^-24, NaN */
    uint16_t h[] = {0x3c00, 0x8000, 0x7c00, 0x0001, 0x7e00};
    prim_case(&x, &s, &a, "e", h, 2, 5, NULL, colinfo(PGETL_OID_FLOAT4, -1, 0, "real"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000004 3f800000");
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "00000004 80000000");
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "00000004 7f800000");
    assert_null(ctx_encode(&x, 3));
    expect_hex(&x.b, "00000004 33800000");
    assert_null(ctx_encode(&x, 4));
    expect_hex(&x.b, "00000004 7fc00000");
    ctx_close(&x, &s, &a);

    float f[] = {1.5f};
    prim_case(&x, &s, &a, "f", f, 4, 1, NULL, colinfo(PGETL_OID_FLOAT8, -1, 0, "double precision"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000008 3ff8000000000000");
    ctx_close(&x, &s, &a);

    double d[] = {-0.0};
    prim_case(&x, &s, &a, "g", d, 8, 1, NULL, colinfo(PGETL_OID_FLOAT8, -1, 0, "double precision"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000008 8000000000000000");
    ctx_close(&x, &s, &a);
}

static void bools_with_offset(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    bool v[] = {true, false, false, true, true, false, false, false, false, true};
    bool valid[] = {true, true, true, true, true, true, true, true, false, true};
    fx_schema(&s, "b", "col", 0);
    fx_bools(&a, 10, v, valid);
    a.offset = 7; /* a slice starting inside the first bitmap byte */
    a.length = 3;
    pgetl_column_info ci = colinfo(PGETL_OID_BOOL, -1, 0, "boolean");
    ctx_open(&x, &s, &ci, &a);
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000001 00");
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "ffffffff");
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "00000001 01");
    ctx_close(&x, &s, &a);
}

/* decimal128 values from (lo, hi) 64-bit halves. */
static void decimal_numeric(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    int64_t v[] = {12345, 0, -12345, -1, 0, 0, 1, 0};
    prim_case(&x, &s, &a, "d:10,2", v, 16, 4, NULL, colinfo(PGETL_OID_NUMERIC, -1, 0, "numeric"));
    /* 123.45: ndigits 2, weight 0, sign +, dscale 2, digits 123 4500 */
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "0000000c 0002 0000 0000 0002 007b 1194");
    /* -123.45 (two's complement across 128 bits) */
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "0000000c 0002 0000 4000 0002 007b 1194");
    /* 0: no digits, dscale kept */
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "00000008 0000 0000 0000 0002");
    /* 0.01: one digit 100 at weight -1 */
    assert_null(ctx_encode(&x, 3));
    expect_hex(&x.b, "0000000a 0001 ffff 0000 0002 0064");
    ctx_close(&x, &s, &a);

    /* 10^38 - 1 with scale 0: 38 nines = 99 then nine groups of 9999. */
    uint64_t lo = 0x098a223fffffffffull, hi = 0x4b3b4ca85a86c47aull;
    int64_t m[2] = {(int64_t)lo, (int64_t)hi};
    prim_case(&x, &s, &a, "d:38,0", m, 16, 1, NULL, colinfo(PGETL_OID_NUMERIC, -1, 0, "numeric"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "0000001c 000a 0009 0000 0000 0063 270f 270f 270f 270f 270f 270f 270f "
                     "270f 270f");
    ctx_close(&x, &s, &a);
}

static void ints_to_numeric(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    int64_t v[] = {INT64_MIN, 10000};
    prim_case(&x, &s, &a, "l", v, 8, 2, NULL, colinfo(PGETL_OID_NUMERIC, -1, 0, "numeric"));
    /* -9223372036854775808 = 922 3372 0368 5477 5808, weight 4 */
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000012 0005 0004 4000 0000 039a 0d2c 0170 1565 16b0");
    /* 10000: one digit 1 at weight 1 (trailing zero group dropped) */
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "0000000a 0001 0001 0000 0000 0001");
    ctx_close(&x, &s, &a);
}

static void dates(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    int32_t d[] = {0, 10957, INT32_MIN + 10957};
    prim_case(&x, &s, &a, "tdD", d, 4, 3, NULL, colinfo(PGETL_OID_DATE, -1, 0, "date"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000004 ffffd533"); /* -10957 */
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "00000004 00000000");
    /* would be PostgreSQL's -infinity sentinel: refused */
    assert_non_null(ctx_encode(&x, 2));
    ctx_close(&x, &s, &a);

    int64_t ms[] = {86400000, 86400001};
    prim_case(&x, &s, &a, "tdm", ms, 8, 2, NULL, colinfo(PGETL_OID_DATE, -1, 0, "date"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000004 ffffd534");
    const char *why = ctx_encode(&x, 1);
    assert_non_null(why);
    assert_non_null(strstr(why, "whole number of days"));
    ctx_close(&x, &s, &a);
}

static void timestamps_ns_floor(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    /* 1970-01-01 + {0, -1 ns, 1999 ns, -1001 ns} */
    int64_t v[] = {0, -1, 1999, -1001};
    prim_case(&x, &s, &a, "tsn:UTC", v, 8, 4, NULL,
              colinfo(PGETL_OID_TIMESTAMPTZ, -1, 0, "timestamp with time zone"));
    int64_t e0 = -INT64_C(946684800000000);
    char want[64];
    int64_t expect[] = {e0, e0 - 1, e0 + 1, e0 - 2};
    for (int i = 0; i < 4; i++) {
        assert_null(ctx_encode(&x, i));
        snprintf(want, sizeof want, "00000008 %016llx", (unsigned long long)expect[i]);
        expect_hex(&x.b, want);
    }
    ctx_close(&x, &s, &a);

    int64_t sec[] = {INT64_MAX / 1000, 946684800};
    prim_case(&x, &s, &a, "tss:", sec, 8, 2, NULL,
              colinfo(PGETL_OID_TIMESTAMP, -1, 0, "timestamp without time zone"));
    assert_non_null(strstr(ctx_encode(&x, 0), "out of range"));
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "00000008 0000000000000000");
    ctx_close(&x, &s, &a);

    /* A value that would land exactly on -infinity is refused, not stored as infinity. */
    int64_t inf[] = {INT64_MIN + INT64_C(946684800000000)};
    prim_case(&x, &s, &a, "tsu:", inf, 8, 1, NULL,
              colinfo(PGETL_OID_TIMESTAMP, -1, 0, "timestamp without time zone"));
    assert_non_null(ctx_encode(&x, 0));
    ctx_close(&x, &s, &a);
}

static void times_and_durations(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    int32_t t[] = {1500};
    prim_case(&x, &s, &a, "ttm", t, 4, 1, NULL,
              colinfo(PGETL_OID_TIME, -1, 0, "time without time zone"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000008 000000000016e360"); /* 1 500 000 us */
    ctx_close(&x, &s, &a);

    int64_t d[] = {-1, 3};
    prim_case(&x, &s, &a, "tDs", d, 8, 2, NULL, colinfo(PGETL_OID_INTERVAL, -1, 0, "interval"));
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000010 fffffffffff0bdc0 00000000 00000000");
    ctx_close(&x, &s, &a);
}

static void strings_and_jsonb(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    const char *v[] = {"", NULL, "h\xc3\xa9", "{\"a\":1}"};
    fx_schema(&s, "U", "col", 0);
    fx_strings(&a, 4, v, true);
    pgetl_column_info ci = colinfo(PGETL_OID_TEXT, -1, 0, "text");
    ctx_open(&x, &s, &ci, &a);
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000000");
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "ffffffff");
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "00000003 68c3a9");
    pgetl__buf_reset(&x.b);

    ci = colinfo(PGETL_OID_JSONB, -1, 0, "jsonb");
    ctx_open(&x, &s, &ci, &a);
    assert_null(ctx_encode(&x, 3));
    expect_hex(&x.b, "00000008 01 7b2261223a317d");
    ctx_close(&x, &s, &a);
}

static void views_inline_and_out_of_line(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    const char *v[] = {"short", "a string longer than twelve", NULL};
    fx_schema(&s, "vu", "col", 0);
    fx_views(&a, 3, v, NULL);
    pgetl_column_info ci = colinfo(PGETL_OID_VARCHAR, -1, 0, "character varying");
    ctx_open(&x, &s, &ci, &a);
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000005 73686f7274");
    assert_null(ctx_encode(&x, 1));
    assert_int_equal(x.b.len, 4 + 27);
    assert_memory_equal(x.b.data + 4, v[1], 27);
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "ffffffff");
    ctx_close(&x, &s, &a);
}

static void uuid_and_bytea(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    uint8_t u[32];
    for (int i = 0; i < 32; i++)
        u[i] = (uint8_t)i;
    prim_case(&x, &s, &a, "w:16", u, 16, 2, NULL, colinfo(PGETL_OID_UUID, -1, 0, "uuid"));
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "00000010 101112131415161718191a1b1c1d1e1f");
    ctx_close(&x, &s, &a);

    const char *b[] = {"a\0b"};
    size_t lens[] = {3};
    fx_schema(&s, "z", "col", 0);
    fx_bytes(&a, 1, b, lens, false);
    pgetl_column_info ci = colinfo(PGETL_OID_BYTEA, -1, 0, "bytea");
    ctx_open(&x, &s, &ci, &a);
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000003 610062");
    ctx_close(&x, &s, &a);
}

static void dictionary_lookup(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    int8_t idx[] = {1, 0, 1, 2};
    bool valid[] = {true, true, false, true};
    fx_schema(&s, "c", "col", 0);
    fx_schema(fx_schema_dictionary(&s), "u", NULL, 0);
    fx_prim(&a, 4, idx, 1, valid);
    const char *words[] = {"red", "green", NULL};
    fx_strings(fx_dictionary(&a), 3, words, false);
    pgetl_column_info ci = colinfo(PGETL_OID_TEXT, -1, 0, "text");
    ctx_open(&x, &s, &ci, &a);
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000005 677265656e");
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "00000003 726564");
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "ffffffff");
    assert_null(ctx_encode(&x, 3)); /* a null value inside the dictionary */
    expect_hex(&x.b, "ffffffff");
    ctx_close(&x, &s, &a);
}

static void list_to_array(void **state) {
    (void)state;
    enc_ctx x;
    struct ArrowSchema s;
    struct ArrowArray a;
    int32_t offs[] = {0, 2, 2, 3};
    fx_schema(&s, "+l", "col", 1);
    fx_schema(fx_schema_child(&s, 0), "i", "item", 0);
    struct ArrowArray *kid = fx_list(&a, 3, offs, NULL, false);
    int32_t items[] = {7, 0, -2};
    bool kvalid[] = {true, false, true};
    fx_prim(kid, 3, items, 4, kvalid);
    pgetl_column_info ci = colinfo(1007, -1, PGETL_OID_INT4, "integer[]");
    ctx_open(&x, &s, &ci, &a);
    /* {7,NULL}: ndim 1, hasnull 1, int4, dim 2, lbound 1, 7, NULL */
    assert_null(ctx_encode(&x, 0));
    expect_hex(&x.b, "00000020 00000001 00000001 00000017 00000002 00000001 00000004 00000007 "
                     "ffffffff");
    /* {}: ndim 0 */
    assert_null(ctx_encode(&x, 1));
    expect_hex(&x.b, "0000000c 00000000 00000000 00000017");
    assert_null(ctx_encode(&x, 2));
    expect_hex(&x.b, "0000001c 00000001 00000000 00000017 00000001 00000001 00000004 fffffffe");
    ctx_close(&x, &s, &a);
}

static void refuse(const char *fmt, pgetl_column_info ci, const char *text) {
    struct ArrowSchema s;
    fx_schema(&s, fmt, "col", 0);
    pgetl_arrow_field f;
    pgetl_arrow_col c, kid;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_field_parse(&s, &f, &err), &err);
    assert_int_equal(pgetl__arrow_col_choose(&c, &kid, &f, &ci, &err), PGETL_ESCHEMA);
    if (!strstr(err.message, text))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, text);
    s.release(&s);
}

static void impossible_pairs_refused(void **state) {
    (void)state;
    refuse("i", colinfo(PGETL_OID_DATE, -1, 0, "date"),
           "column \"col\": cannot load Arrow type \"i\" into date");
    refuse("l", colinfo(PGETL_OID_TIMESTAMPTZ, -1, 0, "timestamp with time zone"),
           "cannot load Arrow type \"l\" into timestamp with time zone");
    refuse("l", colinfo(PGETL_OID_INT4, -1, 0, "integer"), "\"l\" into integer");
    refuse("I", colinfo(PGETL_OID_INT4, -1, 0, "integer"), "\"I\" into integer");
    refuse("g", colinfo(PGETL_OID_FLOAT4, -1, 0, "real"), "\"g\" into real");
    refuse("g", colinfo(PGETL_OID_NUMERIC, -1, 0, "numeric"), "\"g\" into numeric");
    refuse("u", colinfo(PGETL_OID_INT4, -1, 0, "integer"), "\"u\" into integer");
    refuse("z", colinfo(PGETL_OID_TEXT, -1, 0, "text"), "\"z\" into text");
    refuse("w:8", colinfo(PGETL_OID_UUID, -1, 0, "uuid"), "\"w:8\" into uuid");
    refuse("tsu:UTC", colinfo(PGETL_OID_TIMESTAMP, -1, 0, "timestamp without time zone"),
           "would drop the zone");
    refuse("tsu:", colinfo(PGETL_OID_TIMESTAMPTZ, -1, 0, "timestamp with time zone"),
           "would assume a zone");
    refuse("i", colinfo(1007, -1, PGETL_OID_INT4, "integer[]"), "\"i\" into integer[]");
    refuse("d:5,-2", colinfo(PGETL_OID_NUMERIC, -1, 0, "numeric"), "\"d:5,-2\" into numeric");
    /* declared precision would round */
    refuse("d:12,4", colinfo(PGETL_OID_NUMERIC, ((10 << 16) | 2) + 4, 0, "numeric(10,2)"),
           "4 decimal places would be rounded to 2");
    refuse("tsu:", colinfo(PGETL_OID_TIMESTAMP, 0, 0, "timestamp(0) without time zone"),
           "would be rounded to 0");
    refuse("tDu", colinfo(PGETL_OID_INTERVAL, 0x7fff0000, 0, "interval year"), "truncate");
    assert_int_equal(fx_live(), 0);
}

static void list_element_refused(void **state) {
    (void)state;
    struct ArrowSchema s;
    fx_schema(&s, "+l", "col", 1);
    fx_schema(fx_schema_child(&s, 0), "g", "item", 0);
    pgetl_arrow_field f;
    pgetl_arrow_col c, kid;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_field_parse(&s, &f, &err), &err);
    pgetl_column_info ci = colinfo(1007, -1, PGETL_OID_INT4, "integer[]");
    assert_int_equal(pgetl__arrow_col_choose(&c, &kid, &f, &ci, &err), PGETL_ESCHEMA);
    assert_non_null(strstr(err.message, "\"+l<g>\" into integer[]"));
    ci = colinfo(PGETL_OID_TEXT, -1, 0, "text");
    assert_int_equal(pgetl__arrow_col_choose(&c, &kid, &f, &ci, &err), PGETL_ESCHEMA);
    assert_non_null(strstr(err.message, "array column"));
    s.release(&s);
}

static void validity_words(void **state) {
    (void)state;
    uint8_t bits[10];
    for (int i = 0; i < 10; i++)
        bits[i] = (uint8_t)(0xa5 ^ (i * 37));
    for (int64_t off = 0; off < 16; off++) {
        for (int n = 1; n <= 64; n++) {
            pgetl_arrow_view v = {.validity = bits, .offset = off};
            uint64_t w = pgetl__arrow_validity_word(&v, 0, n);
            for (int k = 0; k < n; k++)
                if (((w >> k) & 1) != (uint64_t)pgetl__arrow_valid(&v, k))
                    fail_msg("offset %lld n %d bit %d", (long long)off, n, k);
        }
    }
    pgetl_arrow_view none = {0};
    assert_true(pgetl__arrow_validity_word(&none, 5, 64) == ~(uint64_t)0);
}

/* A failed test leaks its fixtures; start every test from zero. */
static int reset_counts(void **state) {
    (void)state;
    fx_reset_counts();
    return 0;
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(ints_widen, reset_counts),
        cmocka_unit_test_setup(uint64_overflow_checked, reset_counts),
        cmocka_unit_test_setup(floats, reset_counts),
        cmocka_unit_test_setup(bools_with_offset, reset_counts),
        cmocka_unit_test_setup(decimal_numeric, reset_counts),
        cmocka_unit_test_setup(ints_to_numeric, reset_counts),
        cmocka_unit_test_setup(dates, reset_counts),
        cmocka_unit_test_setup(timestamps_ns_floor, reset_counts),
        cmocka_unit_test_setup(times_and_durations, reset_counts),
        cmocka_unit_test_setup(strings_and_jsonb, reset_counts),
        cmocka_unit_test_setup(views_inline_and_out_of_line, reset_counts),
        cmocka_unit_test_setup(uuid_and_bytea, reset_counts),
        cmocka_unit_test_setup(dictionary_lookup, reset_counts),
        cmocka_unit_test_setup(list_to_array, reset_counts),
        cmocka_unit_test_setup(impossible_pairs_refused, reset_counts),
        cmocka_unit_test_setup(list_element_refused, reset_counts),
        cmocka_unit_test_setup(validity_words, reset_counts),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
