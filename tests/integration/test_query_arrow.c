/*
 * pgetl_query_arrow against a real server: every mapped type with NULLs and
 * extremes (values checked in the Arrow buffers, often against what the
 * server itself computes), text-wrapped types, empty results, multi-batch
 * results, the parameter path matching the COPY path byte for byte, errors
 * before and during streaming, and the stream/connection contract (early
 * release, connection closed or released while streaming, caller's
 * transaction preserved).
 */
#include "harness.h"

#include "copy/copy_out.h"
#include "pgetl/libpq.h"

#include <errno.h>
#include <math.h>

__extension__ typedef __int128 i128;

#define MAX_BATCHES 64

typedef struct result {
    struct ArrowSchema schema;
    struct ArrowArray batch[MAX_BATCHES];
    int nbatches;
    int64_t rows;
} result;

static void result_free(result *r) {
    if (r->schema.release)
        r->schema.release(&r->schema);
    for (int i = 0; i < r->nbatches; i++)
        if (r->batch[i].release)
            r->batch[i].release(&r->batch[i]);
    memset(r, 0, sizeof *r);
}

/* Reads the whole stream into r; fails the test on any stream error. */
static void drain_stream(struct ArrowArrayStream *st, result *r) {
    memset(r, 0, sizeof *r);
    assert_int_equal(st->get_schema(st, &r->schema), 0);
    for (;;) {
        struct ArrowArray a;
        int rc = st->get_next(st, &a);
        if (rc != 0)
            fail_msg("get_next: %d %s", rc, st->get_last_error(st));
        if (!a.release)
            break;
        assert_true(r->nbatches < MAX_BATCHES);
        r->rows += a.length;
        r->batch[r->nbatches++] = a;
    }
    /* The end is sticky. */
    struct ArrowArray again;
    assert_int_equal(st->get_next(st, &again), 0);
    assert_null(again.release);
    st->release(st);
    assert_null(st->release);
}

static void run_params(pgetl_conn *conn, const char *sql, int nparams, const char *const *params,
                       result *r) {
    struct ArrowArrayStream st;
    pgetl_error err;
    assert_pgetl_ok(pgetl_query_arrow(conn, sql, nparams, params, &st, &err), &err);
    drain_stream(&st, r);
}

static void run(pgetl_conn *conn, const char *sql, result *r) {
    run_params(conn, sql, 0, NULL, r);
}

/* Column i of the first (only) batch. */
static struct ArrowArray *col(result *r, int i) {
    assert_int_equal(r->nbatches, 1);
    assert_true(i < r->batch[0].n_children);
    return r->batch[0].children[i];
}

static bool is_valid(const struct ArrowArray *a, int64_t i) {
    if (!a->buffers[0])
        return true;
    return ((const uint8_t *)a->buffers[0])[(a->offset + i) >> 3] >> ((a->offset + i) & 7) & 1;
}

static void assert_utf8(const struct ArrowArray *a, int64_t i, const char *want) {
    const int32_t *off = a->buffers[1];
    const char *data = a->buffers[2];
    int32_t n = off[i + 1] - off[i];
    if ((size_t)n != strlen(want) || memcmp(data + off[i], want, (size_t)n) != 0)
        fail_msg("row %lld: got '%.*s' want '%s'", (long long)i, (int)n, data + off[i], want);
}

static int64_t i64_at(const struct ArrowArray *a, int64_t i) {
    return ((const int64_t *)a->buffers[1])[i];
}

static pgetl_conn *conn_open(void) {
    return harness_connect();
}

/* ---- types ----------------------------------------------------------------- */

static void type_ints(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT a, b, d FROM (VALUES (1, (-32768)::int2, (-2147483648)::int4, "
        "(-9223372036854775808)::int8), (2, 32767::int2, 2147483647::int4, "
        "9223372036854775807::int8), (3, NULL, NULL, NULL), (4, 0::int2, 0, 0)) v(k, a, b, d) "
        "ORDER BY k",
        &r);
    assert_int_equal(r.rows, 4);
    assert_string_equal(r.schema.children[0]->format, "s");
    assert_string_equal(r.schema.children[1]->format, "i");
    assert_string_equal(r.schema.children[2]->format, "l");
    assert_string_equal(r.schema.children[2]->name, "d");
    assert_int_equal(r.schema.children[2]->flags & ARROW_FLAG_NULLABLE, ARROW_FLAG_NULLABLE);
    const int16_t *a = col(&r, 0)->buffers[1];
    const int32_t *b = col(&r, 1)->buffers[1];
    assert_int_equal(a[0], INT16_MIN);
    assert_int_equal(a[1], INT16_MAX);
    assert_int_equal(b[0], INT32_MIN);
    assert_int_equal(b[1], INT32_MAX);
    assert_true(i64_at(col(&r, 2), 0) == INT64_MIN);
    assert_true(i64_at(col(&r, 2), 1) == INT64_MAX);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(col(&r, k)->null_count, 1);
        assert_false(is_valid(col(&r, k), 2));
        assert_true(is_valid(col(&r, k), 3));
    }
    result_free(&r);
    pgetl_conn_close(c);
}

static void type_floats(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT f4, f8 FROM (VALUES (1, 'NaN'::float4, 'NaN'::float8), (2, 'Infinity', "
        "'Infinity'), (3, '-Infinity', '-Infinity'), (4, '-0', '-0'), (5, NULL, NULL), "
        "(6, 1.5, 1.7976931348623157e308), (7, 1e-45, 5e-324)) v(k, f4, f8) ORDER BY k",
        &r);
    assert_string_equal(r.schema.children[0]->format, "f");
    assert_string_equal(r.schema.children[1]->format, "g");
    const float *f = col(&r, 0)->buffers[1];
    const double *d = col(&r, 1)->buffers[1];
    assert_true(isnan(f[0]) && isnan(d[0]));
    assert_true(isinf(f[1]) && f[1] > 0 && isinf(d[1]) && d[1] > 0);
    assert_true(isinf(f[2]) && f[2] < 0 && isinf(d[2]) && d[2] < 0);
    assert_true(f[3] == 0 && signbit(f[3]) && d[3] == 0 && signbit(d[3]));
    assert_false(is_valid(col(&r, 0), 4));
    assert_false(is_valid(col(&r, 1), 4));
    assert_true(f[5] == 1.5f && d[5] == 1.7976931348623157e308);
    assert_true(d[6] == 5e-324 && f[6] > 0);
    result_free(&r);
    pgetl_conn_close(c);
}

static void type_bool(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c, "SELECT (ARRAY[true, false, NULL])[1 + i % 3] AS b FROM generate_series(0, 9) i", &r);
    struct ArrowArray *b = col(&r, 0);
    assert_string_equal(r.schema.children[0]->format, "b");
    assert_int_equal(b->length, 10);
    assert_int_equal(b->null_count, 3);
    const uint8_t *bits = b->buffers[1];
    for (int i = 0; i < 10; i++) {
        bool v = bits[i >> 3] >> (i & 7) & 1;
        assert_int_equal(is_valid(b, i), i % 3 != 2);
        if (i % 3 == 0)
            assert_true(v);
        if (i % 3 == 1)
            assert_false(v);
    }
    result_free(&r);
    pgetl_conn_close(c);
}

static void type_text(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT t, vc, bp, nm, js, jb FROM (VALUES "
        "(1, ''::text, ''::varchar(5), 'ab'::char(4), 'n'::name, '[]'::json, '{}'::jsonb), "
        "(2, NULL, NULL, NULL, NULL, NULL, NULL), "
        "(3, E'\\U0001F600 caf\\u00e9 \\u20ac,\"q\"\\n\\t\\\\', E'v\\u00e9', 'x', repeat('n', 63), "
        "'{\"a\" :  1}', '{\"b\":[1, 2], \"a\":null}')) v(k, t, vc, bp, nm, js, jb) ORDER BY k",
        &r);
    for (int k = 0; k < 6; k++) {
        assert_string_equal(r.schema.children[k]->format, "u");
        assert_int_equal(col(&r, k)->null_count, 1);
        assert_false(is_valid(col(&r, k), 1));
        assert_true(is_valid(col(&r, k), 0));
    }
    assert_utf8(col(&r, 0), 0, ""); /* empty string, not NULL */
    assert_utf8(col(&r, 1), 0, "");
    assert_utf8(col(&r, 2), 0, "ab  "); /* bpchar keeps its padding, as ::text does not */
    assert_utf8(col(&r, 3), 0, "n");
    assert_utf8(col(&r, 4), 0, "[]");
    assert_utf8(col(&r, 5), 0, "{}");
    assert_utf8(col(&r, 0), 2, "\xF0\x9F\x98\x80 caf\xC3\xA9 \xE2\x82\xAC,\"q\"\n\t\\");
    assert_utf8(col(&r, 1), 2, "v\xC3\xA9");
    assert_utf8(col(&r, 2), 2, "x"); /* VALUES resolved the column to bpchar without length */
    assert_utf8(col(&r, 3), 2, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    assert_utf8(col(&r, 4), 2, "{\"a\" :  1}");                 /* json: as stored */
    assert_utf8(col(&r, 5), 2, "{\"a\": null, \"b\": [1, 2]}"); /* jsonb: normalised */
    result_free(&r);
    pgetl_conn_close(c);
}

static void type_bytea_uuid(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT b, u FROM (VALUES (1, '\\x00ff10'::bytea, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid), (2, ''::bytea, NULL), (3, NULL, "
        "'00000000-0000-0000-0000-000000000000')) v(k, b, u) ORDER BY k",
        &r);
    assert_string_equal(r.schema.children[0]->format, "z");
    assert_string_equal(r.schema.children[1]->format, "w:16");
    struct ArrowArray *b = col(&r, 0), *u = col(&r, 1);
    const int32_t *off = b->buffers[1];
    assert_int_equal(off[1], 3);
    assert_int_equal(off[2], 3); /* empty, valid */
    assert_true(is_valid(b, 1));
    assert_false(is_valid(b, 2));
    assert_memory_equal(b->buffers[2], "\x00\xff\x10", 3);
    const uint8_t want[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                              0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
    assert_memory_equal(u->buffers[1], want, 16);
    assert_false(is_valid(u, 1));
    const uint8_t zero[16] = {0};
    assert_memory_equal((const uint8_t *)u->buffers[1] + 32, zero, 16);
    result_free(&r);
    pgetl_conn_close(c);
}

/* Dates and timestamps, each checked against the server's own epoch arithmetic. */
static void type_dates_timestamps(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    PGconn *pq = harness_pq();
    harness_sql(pq, "SET TIME ZONE 'UTC'");
    static const char *dates[] = {"0001-01-01", "9999-12-31", "1970-01-01", "2000-01-01",
                                  "2000-02-29", "1969-12-31", "1900-03-01", "2024-02-29"};
    static const char *stamps[] = {"0001-01-01 00:00:00",        "9999-12-31 23:59:59.999999",
                                   "1969-12-31 23:59:59.999999", "1970-01-01 00:00:00",
                                   "1999-12-31 23:59:59.999999", "2000-02-29 12:34:56.789012",
                                   "1900-01-01 00:00:00.000001", "2024-02-29 23:00:00"};
    for (int i = 0; i < 8; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT '%s'::date AS d, '%s'::timestamp AS ts, '%s+05:30'::timestamptz AS tz, "
                 "NULL::date AS nd",
                 dates[i], stamps[i], stamps[i]);
        result r;
        run(c, sql, &r);
        if (i == 0) {
            assert_string_equal(r.schema.children[0]->format, "tdD");
            assert_string_equal(r.schema.children[1]->format, "tsu:");
            assert_string_equal(r.schema.children[2]->format, "tsu:UTC");
        }
        snprintf(sql, sizeof sql, "SELECT '%s'::date - '1970-01-01'::date", dates[i]);
        assert_int_equal(((const int32_t *)col(&r, 0)->buffers[1])[0], harness_scalar(pq, sql));
        snprintf(sql, sizeof sql, "SELECT (extract(epoch from '%s'::timestamp) * 1000000)::int8",
                 stamps[i]);
        assert_true(i64_at(col(&r, 1), 0) == harness_scalar(pq, sql));
        snprintf(sql, sizeof sql,
                 "SELECT (extract(epoch from '%s+05:30'::timestamptz) * 1000000)::int8", stamps[i]);
        assert_true(i64_at(col(&r, 2), 0) == harness_scalar(pq, sql));
        assert_false(is_valid(col(&r, 3), 0));
        result_free(&r);
    }
    PQfinish(pq);
    pgetl_conn_close(c);
}

static void type_time_interval(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT t, iv FROM (VALUES (1, '00:00:00'::time, '1 year 2 mons 3 days "
        "04:05:06.000007'::interval), (2, '24:00:00', '-1 mons -2 days -00:00:00.000001'), "
        "(3, '13:14:15.161718', NULL), (4, NULL, '1000000 hours')) v(k, t, iv) ORDER BY k",
        &r);
    assert_string_equal(r.schema.children[0]->format, "ttu");
    assert_string_equal(r.schema.children[1]->format, "tin");
    struct ArrowArray *t = col(&r, 0), *iv = col(&r, 1);
    assert_true(i64_at(t, 0) == 0);
    assert_true(i64_at(t, 1) == 86400000000LL);
    assert_true(i64_at(t, 2) == ((13 * 3600 + 14 * 60 + 15) * 1000000LL + 161718));
    assert_false(is_valid(t, 3));
    const uint8_t *v = iv->buffers[1];
    int32_t months, days;
    int64_t ns;
    memcpy(&months, v, 4);
    memcpy(&days, v + 4, 4);
    memcpy(&ns, v + 8, 8);
    assert_int_equal(months, 14);
    assert_int_equal(days, 3);
    assert_true(ns == (4 * 3600 + 5 * 60 + 6) * 1000000000LL + 7000);
    memcpy(&months, v + 16, 4);
    memcpy(&days, v + 20, 4);
    memcpy(&ns, v + 24, 8);
    assert_int_equal(months, -1);
    assert_int_equal(days, -2);
    assert_true(ns == -1000);
    assert_false(is_valid(iv, 2));
    memcpy(&ns, v + 56, 8);
    assert_true(ns == 1000000LL * 3600 * 1000000000LL);
    result_free(&r);
    pgetl_conn_close(c);
}

static i128 dec_at(const struct ArrowArray *a, int64_t i) {
    i128 v;
    memcpy(&v, (const uint8_t *)a->buffers[1] + 16 * i, 16);
    return v;
}

static void type_numeric_decimal(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT a::numeric(38,0) AS a, b::numeric(10,2) AS b FROM (VALUES (1, "
        "99999999999999999999999999999999999999::numeric(38,0), "
        "12345678.91::numeric(10,2)), (2, -99999999999999999999999999999999999999, -0.01), "
        "(3, NULL, NULL), (4, 0, 5)) v(k, a, b) ORDER BY k",
        &r);
    assert_string_equal(r.schema.children[0]->format, "d:38,0");
    assert_string_equal(r.schema.children[1]->format, "d:10,2");
    i128 max = 0;
    for (int i = 0; i < 38; i++)
        max = max * 10 + 9;
    struct ArrowArray *a = col(&r, 0), *b = col(&r, 1);
    assert_true(dec_at(a, 0) == max);
    assert_true(dec_at(a, 1) == -max);
    assert_false(is_valid(a, 2));
    assert_true(dec_at(a, 3) == 0);
    assert_true(dec_at(b, 0) == 1234567891);
    assert_true(dec_at(b, 1) == -1);
    assert_true(dec_at(b, 3) == 500);
    result_free(&r);
    pgetl_conn_close(c);
}

/* numeric without a usable typmod: the text must be exactly what ::text prints. */
static void type_numeric_text(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    static const char *const vals =
        "('0'), ('-0'), ('0.000'), ('1'), ('-1'), ('123456789012345678901234567890.123456789'), "
        "('0.000000000000000000001'), ('-0.5'), ('1e100'), ('-1.5e-30'), ('NaN'), "
        "('Infinity'), ('-Infinity'), ('10000'), ('9999.9999'), ('100000000.00000001'), "
        "('3.14159265358979323846264338327950288419716939937510'), (NULL), ('12.3400'), "
        "('99999999999999999999999999999999999999999')";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT n::numeric AS n, 123.456::numeric(50,5) AS wide, n::numeric::text AS t FROM "
             "(VALUES %s) v(n)",
             vals);
    result r;
    run(c, sql, &r);
    assert_string_equal(r.schema.children[0]->format, "u");
    assert_string_equal(r.schema.children[1]->format, "u"); /* precision 50 > 38 */
    struct ArrowArray *n = col(&r, 0), *t = col(&r, 2);
    assert_utf8(col(&r, 1), 0, "123.45600");
    assert_int_equal(n->length, 20);
    assert_int_equal(n->null_count, 1);
    const int32_t *no = n->buffers[1], *to = t->buffers[1];
    for (int64_t i = 0; i < n->length; i++) {
        assert_int_equal(is_valid(n, i), is_valid(t, i));
        int32_t a = no[i + 1] - no[i], b = to[i + 1] - to[i];
        if (a != b || memcmp((const char *)n->buffers[2] + no[i],
                             (const char *)t->buffers[2] + to[i], (size_t)a) != 0)
            fail_msg("row %lld: ours '%.*s' server '%.*s'", (long long)i, (int)a,
                     (const char *)n->buffers[2] + no[i], (int)b,
                     (const char *)t->buffers[2] + to[i]);
    }
    result_free(&r);
    /* Wide values and many random ones against the server's text. */
    run(c,
        "SELECT x, x::text FROM (SELECT (random() * 10 ^ (i % 40) - 10 ^ (i % 17))::numeric "
        "* (10::numeric ^ (i % 50 - 25)) AS x FROM generate_series(1, 2000) i) s",
        &r);
    n = col(&r, 0);
    t = col(&r, 1);
    no = n->buffers[1];
    to = t->buffers[1];
    assert_int_equal(no[n->length], to[t->length]);
    assert_memory_equal(n->buffers[2], t->buffers[2], (size_t)no[n->length]);
    result_free(&r);
    pgetl_conn_close(c);
}

static void type_arrays(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT ia, ta, na, da FROM (VALUES "
        "(1, ARRAY[1, NULL, -3]::int4[], ARRAY['a', NULL, '']::text[], ARRAY[1.5, NULL]::numeric[],"
        " ARRAY['2000-01-01']::date[]), "
        "(2, '{}'::int4[], '{}'::text[], '{}'::numeric[], NULL), "
        "(3, NULL, NULL, NULL, '{}'), "
        "(4, '[5:6]={7,8}'::int4[], ARRAY[E'\\U0001F600'], ARRAY['NaN'::numeric], "
        "ARRAY[NULL::date])) v(k, ia, ta, na, da) ORDER BY k",
        &r);
    assert_string_equal(r.schema.children[0]->format, "+l");
    assert_string_equal(r.schema.children[0]->children[0]->format, "i");
    assert_string_equal(r.schema.children[1]->children[0]->format, "u");
    assert_string_equal(r.schema.children[2]->children[0]->format, "u");
    assert_string_equal(r.schema.children[3]->children[0]->format, "tdD");
    struct ArrowArray *ia = col(&r, 0), *ta = col(&r, 1), *na = col(&r, 2), *da = col(&r, 3);
    const int32_t *off = ia->buffers[1];
    assert_int_equal(off[0], 0);
    assert_int_equal(off[1], 3);
    assert_int_equal(off[2], 3); /* empty list */
    assert_int_equal(off[3], 3); /* NULL list */
    assert_int_equal(off[4], 5); /* lower bound 5 is dropped */
    assert_true(is_valid(ia, 1));
    assert_false(is_valid(ia, 2));
    struct ArrowArray *ie = ia->children[0];
    assert_int_equal(ie->length, 5);
    assert_int_equal(ie->null_count, 1);
    assert_false(is_valid(ie, 1));
    const int32_t *iv = ie->buffers[1];
    assert_int_equal(iv[0], 1);
    assert_int_equal(iv[2], -3);
    assert_int_equal(iv[3], 7);
    assert_int_equal(iv[4], 8);
    struct ArrowArray *te = ta->children[0];
    assert_int_equal(te->length, 4);
    assert_utf8(te, 0, "a");
    assert_false(is_valid(te, 1));
    assert_true(is_valid(te, 2));
    assert_utf8(te, 2, "");
    assert_utf8(te, 3, "\xF0\x9F\x98\x80");
    struct ArrowArray *ne = na->children[0];
    assert_utf8(ne, 0, "1.5");
    assert_false(is_valid(ne, 1));
    assert_utf8(ne, 2, "NaN");
    struct ArrowArray *de = da->children[0];
    assert_int_equal(((const int32_t *)de->buffers[1])[0], 10957);
    assert_false(is_valid(de, 1));
    assert_false(is_valid(da, 1));
    result_free(&r);
    pgetl_conn_close(c);
}

/* Types without a decoder arrive as their text output, under their own names. */
static void type_text_fallback(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT 1::int4 AS \"a\", '10.1.2.3/8'::inet AS \"a\", '(1,2)'::point AS \"we\"\"ird "
        "name\", '12:00+02'::timetz AS tz, 'x'::\"char\" AS ch, ARRAY['1.2.3.4'::inet] AS ia, "
        "B'101'::bit(3) AS \"m;d\", NULL::money AS m, ';--' AS s -- trailing comment",
        &r);
    assert_int_equal(r.schema.n_children, 9);
    const char *names[] = {"a", "a", "we\"ird name", "tz", "ch", "ia", "m;d", "m", "s"};
    for (int i = 0; i < 9; i++)
        assert_string_equal(r.schema.children[i]->name, names[i]);
    assert_string_equal(r.schema.children[0]->format, "i");
    for (int i = 1; i < 8; i++)
        assert_string_equal(r.schema.children[i]->format, "u");
    assert_utf8(col(&r, 1), 0, "10.1.2.3/8");
    assert_utf8(col(&r, 2), 0, "(1,2)");
    assert_utf8(col(&r, 3), 0, "12:00:00+02");
    assert_utf8(col(&r, 4), 0, "x");
    assert_utf8(col(&r, 5), 0, "{1.2.3.4}");
    assert_utf8(col(&r, 6), 0, "101");
    assert_false(is_valid(col(&r, 7), 0));
    assert_utf8(col(&r, 8), 0, ";--");
    result_free(&r);
    pgetl_conn_close(c);
}

/* ---- values Arrow cannot hold ------------------------------------------------ */

static void expect_stream_error(pgetl_conn *c, const char *sql, int want_errno,
                                const char *needle) {
    struct ArrowArrayStream st;
    pgetl_error err;
    assert_pgetl_ok(pgetl_query_arrow(c, sql, 0, NULL, &st, &err), &err);
    struct ArrowArray a;
    int rc = st.get_next(&st, &a);
    const char *msg = st.get_last_error(&st);
    if (rc != want_errno || !msg || !strstr(msg, needle))
        fail_msg("want %d '%s', got %d '%s'", want_errno, needle, rc, msg ? msg : "(null)");
    assert_null(a.release);
    assert_int_equal(st.get_next(&st, &a), want_errno); /* sticky */
    st.release(&st);
    /* The connection is out of COPY and its transaction usable. */
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_INTRANS);
    assert_pgetl_ok(pgetl_execute(c, "SELECT 1", 0, NULL, NULL, &err), &err);
}

static void unrepresentable_values(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    expect_stream_error(c, "SELECT d FROM (VALUES ('2000-01-01'::date), ('infinity')) v(d)", EINVAL,
                        "column \"d\" (row 2): date 'infinity' has no Arrow date32 value");
    expect_stream_error(c, "SELECT '-infinity'::timestamptz AS t", EINVAL, "timestamp '-infinity'");
    expect_stream_error(c, "SELECT 'NaN'::numeric(10,2) AS n", EINVAL,
                        "numeric 'NaN' has no decimal128(10,2) value");
    expect_stream_error(c, "SELECT '{{1,2},{3,4}}'::int4[] AS m", EINVAL,
                        "multi-dimensional array (2 dimensions)");
    expect_stream_error(c, "SELECT '2562048 hours'::interval AS iv", EINVAL,
                        "overflows int64 nanoseconds");
    pgetl_conn_close(c);
}

/* ---- shapes ---------------------------------------------------------------- */

static void empty_result_schema(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    struct ArrowArrayStream st;
    pgetl_error err;
    assert_pgetl_ok(pgetl_query_arrow(c,
                                      "SELECT 1::int8 AS id, 'x'::text AS name, now() AS t "
                                      "WHERE false",
                                      0, NULL, &st, &err),
                    &err);
    struct ArrowSchema s;
    assert_int_equal(st.get_schema(&st, &s), 0);
    assert_string_equal(s.format, "+s");
    assert_int_equal(s.n_children, 3);
    assert_string_equal(s.children[0]->name, "id");
    assert_string_equal(s.children[0]->format, "l");
    assert_string_equal(s.children[1]->format, "u");
    assert_string_equal(s.children[2]->format, "tsu:UTC");
    s.release(&s);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    assert_null(a.release);
    assert_null(st.get_last_error(&st));
    st.release(&st);
    /* Same through the parameter path. */
    const char *p[] = {"0"};
    result r;
    run_params(c, "SELECT i FROM generate_series(1, $1::int) i", 1, p, &r);
    assert_int_equal(r.nbatches, 0);
    assert_string_equal(r.schema.children[0]->format, "i");
    result_free(&r);
    pgetl_conn_close(c);
}

/* Zero columns, and DML with RETURNING: rows stay in the caller's transaction. */
static void odd_shapes(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c, "SELECT FROM generate_series(1, 3)", &r);
    assert_int_equal(r.schema.n_children, 0);
    assert_int_equal(r.rows, 3);
    assert_int_equal(r.batch[0].n_children, 0);
    result_free(&r);
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(c, "CREATE TEMP TABLE qa_ins (x int)", 0, NULL, NULL, &err),
                    &err);
    run(c, "INSERT INTO qa_ins SELECT generate_series(1, 5) RETURNING x * 10 AS y", &r);
    assert_int_equal(r.rows, 5);
    assert_int_equal(((const int32_t *)col(&r, 0)->buffers[1])[4], 50);
    result_free(&r);
    const char *p[] = {"7"};
    run_params(c, "INSERT INTO qa_ins VALUES ($1::int) RETURNING x", 1, p, &r);
    assert_int_equal(((const int32_t *)col(&r, 0)->buffers[1])[0], 7);
    result_free(&r);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(c, "SELECT count(*) FROM qa_ins", 0, NULL, &res, &err), &err);
    assert_string_equal(pgetl_result_get(res, 0, 0, NULL), "6");
    pgetl_result_free(res);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_INTRANS); /* never committed */
    assert_pgetl_ok(pgetl_rollback(c, &err), &err);
    pgetl_conn_close(c);
}

static void multi_batch(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    result r;
    run(c,
        "SELECT i::int8 AS id, CASE WHEN i % 10 = 0 THEN NULL ELSE 'row ' || i END AS t "
        "FROM generate_series(1, 200000) i",
        &r);
    assert_int_equal(r.nbatches, 4);
    assert_int_equal(r.rows, 200000);
    int64_t sum = 0, next = 1, tlen = 0, nulls = 0;
    for (int b = 0; b < r.nbatches; b++) {
        struct ArrowArray *id = r.batch[b].children[0], *t = r.batch[b].children[1];
        assert_int_equal(r.batch[b].length, b < 3 ? 65536 : 200000 - 3 * 65536);
        for (int64_t i = 0; i < id->length; i++) {
            assert_true(i64_at(id, i) == next);
            next++;
            sum += i64_at(id, i);
        }
        tlen += ((const int32_t *)t->buffers[1])[t->length];
        nulls += t->null_count;
    }
    assert_true(sum == 200000LL * 200001 / 2);
    assert_int_equal(nulls, 20000);
    PGconn *pq = harness_pq();
    assert_int_equal(tlen, harness_scalar(pq, "SELECT sum(length('row ' || i)) FROM "
                                              "generate_series(1, 200000) i WHERE i % 10 <> 0"));
    PQfinish(pq);
    result_free(&r);
    pgetl_conn_close(c);
}

/* Text past the int32 limit cuts the batch early; the cut row starts the next one. */
static void batch_cut_on_var_limit(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    struct ArrowArrayStream st;
    pgetl_error err;
    pgetl_query_arrow_limits lim = {.batch_rows = 0, .var_limit = 1000};
    assert_pgetl_ok(pgetl__query_arrow_ex(c,
                                          "SELECT i, repeat('x', 100) AS t FROM "
                                          "generate_series(1, 95) i",
                                          0, NULL, &lim, &st, &err),
                    &err);
    result r;
    drain_stream(&st, &r);
    assert_int_equal(r.nbatches, 10);
    assert_int_equal(r.rows, 95);
    int32_t next = 1;
    for (int b = 0; b < r.nbatches; b++) {
        assert_int_equal(r.batch[b].length, b < 9 ? 10 : 5);
        const int32_t *id = r.batch[b].children[0]->buffers[1];
        for (int64_t i = 0; i < r.batch[b].length; i++)
            assert_int_equal(id[i], next++);
    }
    result_free(&r);
    /* One value alone over the limit: a clear error. */
    assert_pgetl_ok(
        pgetl__query_arrow_ex(c, "SELECT repeat('y', 2000) AS big", 0, NULL, &lim, &st, &err),
        &err);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), EINVAL);
    assert_non_null(strstr(st.get_last_error(&st), "column \"big\" (row 1): value is too large"));
    st.release(&st);
    pgetl_conn_close(c);
}

/* ---- the parameter path ----------------------------------------------------- */

static void assert_arrays_equal(const struct ArrowSchema *s, const struct ArrowArray *a,
                                const struct ArrowArray *b) {
    assert_int_equal(a->length, b->length);
    assert_int_equal(a->null_count, b->null_count);
    assert_int_equal(a->n_buffers, b->n_buffers);
    assert_int_equal(a->n_children, b->n_children);
    int64_t n = a->length;
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(is_valid(a, i), is_valid(b, i));
    const char *f = s->format;
    size_t width = 0;
    if (!strcmp(f, "s"))
        width = 2;
    else if (!strcmp(f, "i") || !strcmp(f, "f") || !strcmp(f, "tdD"))
        width = 4;
    else if (!strcmp(f, "l") || !strcmp(f, "g") || !strncmp(f, "ts", 2) || !strcmp(f, "ttu"))
        width = 8;
    else if (!strcmp(f, "tin") || !strcmp(f, "w:16") || f[0] == 'd')
        width = 16;
    if (width) {
        assert_memory_equal(a->buffers[1], b->buffers[1], (size_t)n * width);
    } else if (!strcmp(f, "b")) {
        for (int64_t i = 0; i < n; i++)
            assert_int_equal(((const uint8_t *)a->buffers[1])[i >> 3] >> (i & 7) & 1,
                             ((const uint8_t *)b->buffers[1])[i >> 3] >> (i & 7) & 1);
    } else if (!strcmp(f, "+s")) {
        /* a struct has only its (absent) validity buffer; the children follow */
    } else if (!strcmp(f, "u") || !strcmp(f, "z") || !strcmp(f, "+l")) {
        assert_memory_equal(a->buffers[1], b->buffers[1], (size_t)(n + 1) * 4);
        if (f[0] != '+')
            assert_memory_equal(a->buffers[2], b->buffers[2],
                                (size_t)((const int32_t *)a->buffers[1])[n]);
    } else {
        fail_msg("unexpected format %s", f);
    }
    for (int64_t k = 0; k < a->n_children; k++)
        assert_arrays_equal(s->children[k], a->children[k], b->children[k]);
}

static void params_match_copy(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    const char *cols =
        "(i % 30000)::int2 AS s, i AS n, i::int8 * 1000003 AS l, i / 7.0::float4 AS f, "
        "CASE WHEN i % 5 = 0 THEN NULL ELSE i / 3.0::float8 END AS g, i % 2 = 0 AS b, "
        "'t' || i AS t, decode(md5(i::text), 'hex') AS z, DATE '2000-01-01' + i AS d, "
        "TIMESTAMP '1960-01-01' + i * interval '1 hour 1 second' AS ts, "
        "TIMESTAMPTZ '1999-01-01 00:00+00' + i * interval '1 minute' AS tz, "
        "TIME '00:00' + i * interval '1 second' AS tm, i * interval '1 mon 1 day 1 us' AS iv, "
        "(i * 1.25)::numeric(12,2) AS dec, i * 1.5 AS num, md5(i::text)::uuid AS u, "
        "ARRAY[i, NULL, -i] AS arr, ('10.0.0.' || (i % 250))::inet AS ip, "
        "json_build_object('i', i) AS js";
    char copy_sql[2048], param_sql[2048];
    snprintf(copy_sql, sizeof copy_sql, "SELECT %s FROM generate_series(1, 70000) i", cols);
    snprintf(param_sql, sizeof param_sql,
             "SELECT %s FROM generate_series(1, $1::int) i WHERE $2::text IS NULL", cols);
    result a, b;
    run(c, copy_sql, &a);
    const char *params[] = {"70000", NULL};
    run_params(c, param_sql, 2, params, &b);
    assert_int_equal(a.nbatches, 2);
    assert_int_equal(b.nbatches, 2);
    assert_int_equal(a.schema.n_children, b.schema.n_children);
    for (int64_t k = 0; k < a.schema.n_children; k++) {
        assert_string_equal(a.schema.children[k]->format, b.schema.children[k]->format);
        assert_string_equal(a.schema.children[k]->name, b.schema.children[k]->name);
    }
    assert_string_equal(a.schema.children[17]->format, "u"); /* inet, text-wrapped */
    for (int i = 0; i < a.nbatches; i++)
        assert_arrays_equal(&a.schema, &a.batch[i], &b.batch[i]);
    result_free(&a);
    result_free(&b);
    pgetl_conn_close(c);
}

/* ---- errors ------------------------------------------------------------------ */

static void sql_error_before_streaming(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    struct ArrowArrayStream st;
    pgetl_error err;
    assert_int_equal(pgetl_query_arrow(c, "SELECT * FROM no_such_table_qa", 0, NULL, &st, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42P01");
    assert_non_null(strstr(err.message, "relation \"no_such_table_qa\" does not exist"));
    assert_null(st.release);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_INTRANS); /* not left failed */
    assert_int_equal(pgetl_query_arrow(c, "SELEC 1", 0, NULL, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42601");
    assert_int_equal(pgetl_query_arrow(c, "SELECT 1; SELECT 2", 0, NULL, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42601");
    /* Parameters: count checked against the statement. */
    const char *p[] = {"1"};
    assert_int_equal(pgetl_query_arrow(c, "SELECT $1::int, $2::int", 1, p, &st, &err),
                     PGETL_EINVAL);
    assert_string_equal(err.message, "query_arrow: the query has 2 parameters but 1 were given");
    assert_int_equal(pgetl_query_arrow(c, "SELECT $1::int", 0, NULL, &st, &err), PGETL_EINVAL);
    /* Execution-time error on the parameter path is reported before streaming too. */
    const char *zero[] = {"0"};
    assert_int_equal(pgetl_query_arrow(c, "SELECT 1 / $1::int AS x", 1, zero, &st, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22012");
    assert_int_equal(pgetl_query_arrow(c, NULL, 0, NULL, &st, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_query_arrow(NULL, "SELECT 1", 0, NULL, &st, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_query_arrow(c, "SELECT 1", 1, NULL, &st, &err), PGETL_EINVAL);
    pgetl_error_init(&err);
    assert_pgetl_ok(pgetl_execute(c, "SELECT 1", 0, NULL, NULL, &err), &err);
    assert_pgetl_ok(pgetl_rollback(c, &err), &err);
    pgetl_conn_close(c);
}

static void server_error_mid_stream(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    const char *sql = "SELECT CASE WHEN i = 150000 THEN 1 / (i - i) ELSE i END AS v "
                      "FROM generate_series(1, 200000) i";
    for (int params = 0; params < 2; params++) {
        struct ArrowArrayStream st;
        pgetl_error err;
        const char *p[] = {"x"};
        char q[512];
        snprintf(q, sizeof q, "%s%s", sql, params ? " WHERE $1::text IS NOT NULL" : "");
        assert_pgetl_ok(pgetl_query_arrow(c, q, params, params ? p : NULL, &st, &err), &err);
        struct ArrowArray a;
        int batches = 0, rc;
        while ((rc = st.get_next(&st, &a)) == 0 && a.release) {
            batches++;
            a.release(&a);
        }
        assert_int_equal(rc, EIO);
        assert_int_equal(batches, 2); /* 131072 rows came before the failing one */
        const char *msg = st.get_last_error(&st);
        assert_non_null(strstr(msg, "division by zero"));
        assert_non_null(strstr(msg, "[SQLSTATE 22012]"));
        assert_int_equal(st.get_next(&st, &a), EIO);
        st.release(&st);
        assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_INTRANS);
        assert_pgetl_ok(pgetl_execute(c, "SELECT 1", 0, NULL, NULL, &err), &err);
    }
    pgetl_conn_close(c);
}

/* ---- the stream/connection contract ---------------------------------------- */

static void early_release_cancels(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    pgetl_error err;
    /* The caller's own work in the transaction survives the early stop. */
    assert_pgetl_ok(pgetl_execute(c, "CREATE TEMP TABLE qa_keep (x int)", 0, NULL, NULL, &err),
                    &err);
    assert_pgetl_ok(pgetl_execute(c, "INSERT INTO qa_keep VALUES (42)", 0, NULL, NULL, &err), &err);
    for (int params = 0; params < 2; params++) {
        harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
        struct ArrowArrayStream st;
        const char *p[] = {"1000000000"};
        /* A billion rows: only a working cancel lets this test finish. (The SRF sits in
         * the select list so that rows stream; in FROM it would be materialised first.) */
        assert_pgetl_ok(pgetl_query_arrow(c,
                                          params ? "SELECT generate_series(1, $1::int8) AS i, "
                                                   "'x' AS t"
                                                 : "SELECT generate_series(1, 1000000000) AS i, "
                                                   "'x' AS t",
                                          params, params ? p : NULL, &st, &err),
                        &err);
        struct ArrowArray a;
        assert_int_equal(st.get_next(&st, &a), 0);
        assert_int_equal(a.length, 65536);
        st.release(&st);
        assert_null(st.release);
        a.release(&a); /* batches outlive their stream */
        assert_non_null(strstr(log->text, "event=query_arrow_cancel"));
        assert_non_null(strstr(log->text, "drained=true"));
        harness_log_restore();
        assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_INTRANS);
        pgetl_result *res = NULL;
        assert_pgetl_ok(pgetl_fetchall(c, "SELECT x FROM qa_keep", 0, NULL, &res, &err), &err);
        assert_int_equal(pgetl_result_nrows(res), 1);
        pgetl_result_free(res);
    }
    /* Released before reading anything, and released after the end: both clean. */
    struct ArrowArrayStream st;
    assert_pgetl_ok(
        pgetl_query_arrow(c, "SELECT generate_series(1, 100000000)", 0, NULL, &st, &err), &err);
    st.release(&st);
    result r;
    run(c, "SELECT 1 AS one;  ", &r); /* a trailing semicolon is fine */
    assert_int_equal(r.rows, 1);
    result_free(&r);
    assert_pgetl_ok(pgetl_commit(c, &err), &err);
    PGconn *pq = harness_pq();
    PQfinish(pq);
    pgetl_conn_close(c);
}

static void conn_closed_while_streaming(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    struct ArrowArrayStream st;
    pgetl_error err;
    assert_pgetl_ok(
        pgetl_query_arrow(c, "SELECT generate_series(1, 1000000000) AS i", 0, NULL, &st, &err),
        &err);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    a.release(&a);
    pgetl_conn_close(c); /* runs the detach hook; the conn is freed */
    assert_int_equal(st.get_next(&st, &a), EIO);
    assert_null(a.release);
    assert_string_equal(st.get_last_error(&st),
                        "query_arrow: the connection was released while the stream was open");
    struct ArrowSchema s;
    assert_int_equal(st.get_schema(&st, &s), 0); /* the schema needs no connection */
    s.release(&s);
    st.release(&st); /* must not touch the freed connection (ASan checks) */
}

static void pool_release_while_streaming(void **state) {
    (void)state;
    pgetl_config cfg = harness_config();
    cfg.pool_min = 1;
    cfg.pool_max = 1;
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &pool, &err), &err);
    pgetl_conn *c = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &c, &err), &err);
    struct ArrowArrayStream st;
    assert_pgetl_ok(
        pgetl_query_arrow(c, "SELECT generate_series(1, 1000000000) AS i", 0, NULL, &st, &err),
        &err);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    a.release(&a);
    harness_log_capture(PGETL_LOG_ERROR); /* the pool warns about the open transaction */
    pgetl_pool_release(pool, c);
    harness_log_restore();
    assert_int_equal(st.get_next(&st, &a), EIO);
    assert_non_null(strstr(st.get_last_error(&st), "connection was released"));
    /* The same (only) connection is usable by the next borrower. */
    pgetl_conn *c2 = NULL;
    assert_pgetl_ok(pgetl_pool_acquire(pool, &c2, &err), &err);
    result r;
    run(c2, "SELECT 7 AS seven", &r);
    assert_int_equal(((const int32_t *)col(&r, 0)->buffers[1])[0], 7);
    result_free(&r);
    assert_pgetl_ok(pgetl_rollback(c2, &err), &err);
    pgetl_pool_release(pool, c2);
    st.release(&st);
    pgetl_pool_destroy(pool);
}

static void backend_killed_mid_stream(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    struct ArrowArrayStream st;
    pgetl_error err;
    assert_pgetl_ok(
        pgetl_query_arrow(c, "SELECT generate_series(1, 1000000000) AS i", 0, NULL, &st, &err),
        &err);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    a.release(&a);
    PGconn *pq = harness_pq();
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)::int",
             PQbackendPID(pgetl_conn_pg(c)));
    assert_int_equal(harness_scalar(pq, sql), 1);
    PQfinish(pq);
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = st.get_next(&st, &a);
        if (rc == 0) {
            assert_non_null(a.release); /* the stream cannot end normally */
            a.release(&a);
        }
    }
    assert_int_equal(rc, EIO);
    const char *msg = st.get_last_error(&st);
    assert_non_null(msg);
    if (!strstr(msg, "terminat") && !strstr(msg, "closed"))
        fail_msg("unexpected message: %s", msg);
    st.release(&st);
    assert_int_equal(pgetl_conn_txn_state(c), PGETL_TXN_UNKNOWN);
    pgetl_conn_close(c);
}

static void non_utf8_client_encoding(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    assert_int_equal(PQsetClientEncoding(pgetl_conn_pg(c), "LATIN1"), 0);
    struct ArrowArrayStream st;
    pgetl_error err;
    assert_int_equal(pgetl_query_arrow(c, "SELECT 'x'", 0, NULL, &st, &err), PGETL_EUNSUPPORTED);
    assert_non_null(strstr(err.message, "client_encoding is LATIN1"));
    pgetl_conn_close(c);
}

static void stream_while_busy(void **state) {
    (void)state;
    pgetl_conn *c = conn_open();
    struct ArrowArrayStream st, st2;
    pgetl_error err;
    assert_pgetl_ok(pgetl_query_arrow(c, "SELECT generate_series(1, 1000000)", 0, NULL, &st, &err),
                    &err);
    /* A second stream on a connection the first still borrows is refused. */
    assert_int_equal(pgetl_query_arrow(c, "SELECT 1", 0, NULL, &st2, &err), PGETL_ESTATE);
    assert_null(st2.release);
    st.release(&st);
    result r;
    run(c, "SELECT 2 AS two", &r);
    assert_int_equal(r.rows, 1);
    result_free(&r);
    pgetl_conn_close(c);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(type_ints),
        cmocka_unit_test(type_floats),
        cmocka_unit_test(type_bool),
        cmocka_unit_test(type_text),
        cmocka_unit_test(type_bytea_uuid),
        cmocka_unit_test(type_dates_timestamps),
        cmocka_unit_test(type_time_interval),
        cmocka_unit_test(type_numeric_decimal),
        cmocka_unit_test(type_numeric_text),
        cmocka_unit_test(type_arrays),
        cmocka_unit_test(type_text_fallback),
        cmocka_unit_test(unrepresentable_values),
        cmocka_unit_test(empty_result_schema),
        cmocka_unit_test(odd_shapes),
        cmocka_unit_test(multi_batch),
        cmocka_unit_test(batch_cut_on_var_limit),
        cmocka_unit_test(params_match_copy),
        cmocka_unit_test(sql_error_before_streaming),
        cmocka_unit_test(server_error_mid_stream),
        cmocka_unit_test(early_release_cancels),
        cmocka_unit_test(conn_closed_while_streaming),
        cmocka_unit_test(pool_release_while_streaming),
        cmocka_unit_test(backend_killed_mid_stream),
        cmocka_unit_test(non_utf8_client_encoding),
        cmocka_unit_test(stream_while_busy),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
