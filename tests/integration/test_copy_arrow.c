/*
 * pgetl_copy_from_arrow against a real server: every supported type round
 * trips (read back as text with SQL), slices, many batches, 1M rows, the
 * spec's empty-input and missing-column rules, refused type pairs, hostile
 * arrays and streams, bad-row isolation, and the promise that a failed load
 * leaves neither COPY mode nor a table lock behind once rolled back. Every
 * test also checks that each Arrow object was released exactly once.
 */
#include "harness.h"

#include "arrow_fixture.h"

#include <math.h>

static PGconn *pg;
static pgetl_conn *conn;

static int setup(void **state) {
    (void)state;
    fx_reset_counts();
    pg = harness_pq();
    harness_sql(pg, "SET TimeZone = 'UTC'");
    conn = harness_connect();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
    PQfinish(pg);
    harness_log_restore();
    return 0;
}

/* The first column of the first row as text ("" for NULL). Caller frees. */
static char *query_text(const char *sql) {
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("query failed: %s\n%s", sql, PQerrorMessage(pg));
    char *s = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

static void expect_text(const char *sql, const char *want) {
    char *got = query_text(sql);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n got  %s\n want %s", sql, got, want);
    free(got);
}

/* Moves a built schema/array into a fixture slot. */
static void move_schema(struct ArrowSchema *dst, struct ArrowSchema *src) {
    *dst = *src;
    src->release = NULL;
}
static void move_array(struct ArrowArray *dst, struct ArrowArray *src) {
    *dst = *src;
    src->release = NULL;
}

/*
 * Loads field `f` (named "v") with values `a` into rt(i int, v <pgtype>)
 * beside an ordinal column, commits, and compares
 * string_agg(coalesce(v::text, 'NULL'), '|' ORDER BY i) with `expect`.
 */
static void rt(const char *pgtype, struct ArrowSchema *f, struct ArrowArray *a,
               const char *expect) {
    char sql[256];
    harness_sql(pg, "DROP TABLE IF EXISTS rt");
    snprintf(sql, sizeof sql, "CREATE TABLE rt (i int, v %s)", pgtype);
    harness_sql(pg, sql);
    int64_t n = a->length;
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 2);
    fx_schema(fx_schema_child(&s, 0), "i", "i", 0);
    move_schema(fx_schema_child(&s, 1), f);
    struct ArrowArray b;
    fx_struct(&b, n, 2);
    int32_t *ids = calloc((size_t)n + 1, sizeof *ids);
    for (int64_t k = 0; k < n; k++)
        ids[k] = (int32_t)k;
    fx_prim(fx_child(&b, 0), n, ids, 4, NULL);
    free(ids);
    move_array(fx_child(&b, 1), a);
    struct ArrowArrayStream st;
    fx_stream(&st, &s, &b, 1, -1);
    pgetl_error err;
    pgetl_copy_stats stats;
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "rt", &st, NULL, 0, &stats, &err), &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(stats.rows_loaded, n);
    assert_null(st.release);
    assert_int_equal(fx_live(), 0);
    expect_text("SELECT string_agg(coalesce(v::text, 'NULL'), '|' ORDER BY i) FROM rt", expect);
}

/* rt() for a field of a simple format built from fixed-width values. */
static void rt_prim(const char *pgtype, const char *fmt, const void *vals, size_t elem, int64_t n,
                    const bool *valid, const char *expect) {
    struct ArrowSchema f;
    struct ArrowArray a;
    fx_schema(&f, fmt, "v", 0);
    fx_prim(&a, n, vals, elem, valid);
    rt(pgtype, &f, &a, expect);
}

static void rt_strings(const char *pgtype, const char *fmt, const char *const *v, int64_t n,
                       const char *expect) {
    struct ArrowSchema f;
    struct ArrowArray a;
    fx_schema(&f, fmt, "v", 0);
    if (strcmp(fmt, "vu") == 0 || strcmp(fmt, "vz") == 0)
        fx_views(&a, n, v, NULL);
    else
        fx_strings(&a, n, v, fmt[0] == 'U' || fmt[0] == 'Z');
    rt(pgtype, &f, &a, expect);
}

static void types_integers(void **state) {
    (void)state;
    bool v3[] = {true, true, false};
    int8_t i8[] = {-128, 127, 5};
    rt_prim("smallint", "c", i8, 1, 3, v3, "-128|127|NULL");
    rt_prim("bigint", "c", i8, 1, 3, v3, "-128|127|NULL");
    int16_t i16[] = {-32768, 32767, 0};
    rt_prim("integer", "s", i16, 2, 3, v3, "-32768|32767|NULL");
    int32_t i32[] = {INT32_MIN, INT32_MAX, 0};
    rt_prim("integer", "i", i32, 4, 3, v3, "-2147483648|2147483647|NULL");
    rt_prim("bigint", "i", i32, 4, 3, v3, "-2147483648|2147483647|NULL");
    int64_t i64[] = {INT64_MIN, INT64_MAX, 0};
    rt_prim("bigint", "l", i64, 8, 3, v3, "-9223372036854775808|9223372036854775807|NULL");
    rt_prim("numeric", "l", i64, 8, 3, v3, "-9223372036854775808|9223372036854775807|NULL");
    uint8_t u8[] = {0, 255};
    rt_prim("smallint", "C", u8, 1, 2, NULL, "0|255");
    uint16_t u16[] = {0, 65535};
    rt_prim("integer", "S", u16, 2, 2, NULL, "0|65535");
    uint32_t u32[] = {0, UINT32_MAX};
    rt_prim("bigint", "I", u32, 4, 2, NULL, "0|4294967295");
    uint64_t u64[] = {0, (uint64_t)INT64_MAX};
    rt_prim("bigint", "L", u64, 8, 2, NULL, "0|9223372036854775807");
    uint64_t u64max[] = {UINT64_MAX};
    rt_prim("numeric", "L", u64max, 8, 1, NULL, "18446744073709551615");
}

static void types_floats(void **state) {
    (void)state;
    uint16_t h[] = {0x3c00, 0x8000, 0x7c00, 0x7e00, 0x7bff, 0x0001};
    rt_prim("real", "e", h, 2, 6, NULL, "1|-0|Infinity|NaN|65504|5.9604645e-08");
    rt_prim("double precision", "e", h, 2, 6, NULL,
            "1|-0|Infinity|NaN|65504|5.960464477539063e-08");
    float f[] = {1.5f, -INFINITY, 3.4028235e38f};
    rt_prim("real", "f", f, 4, 3, NULL, "1.5|-Infinity|3.4028235e+38");
    rt_prim("double precision", "f", f, 4, 3, NULL, "1.5|-Infinity|3.4028234663852886e+38");
    double d[] = {NAN, INFINITY, -INFINITY, -0.0, 1e308, 5e-324, 0.1};
    bool dv[] = {true, true, true, true, true, true, false};
    rt_prim("double precision", "g", d, 8, 7, dv, "NaN|Infinity|-Infinity|-0|1e+308|5e-324|NULL");
}

static void types_bool_and_decimal(void **state) {
    (void)state;
    struct ArrowSchema f;
    struct ArrowArray a;
    bool b[] = {true, false, true};
    bool bv[] = {true, true, false};
    fx_schema(&f, "b", "v", 0);
    fx_bools(&a, 3, b, bv);
    rt("boolean", &f, &a, "true|false|NULL");

    /* 10^38 - 1, -1, 0, NULL at scale 10 */
    int64_t dec[] = {
        (int64_t)0x098a223fffffffffull, (int64_t)0x4b3b4ca85a86c47aull, -1, -1, 0, 0, 7, 0};
    bool dv[] = {true, true, true, false};
    rt_prim("numeric", "d:38,10", dec, 16, 4, dv,
            "9999999999999999999999999999.9999999999|-0.0000000001|0.0000000000|NULL");
    rt_prim("numeric(40,10)", "d:38,10", dec, 16, 4, dv,
            "9999999999999999999999999999.9999999999|-0.0000000001|0.0000000000|NULL");
    int64_t small[] = {12345, 0, -5, -1};
    rt_prim("numeric", "d:5,7", small, 16, 2, NULL, "0.0012345|-0.0000005");
}

static void types_strings(void **state) {
    (void)state;
    const char *v[] = {"", NULL, "h\xc3\xa9llo", "\xf0\x9f\x8e\x89 4-byte", "tab\tnl\n\\"};
    rt_strings("text", "u", v, 5, "|NULL|h\xc3\xa9llo|\xf0\x9f\x8e\x89 4-byte|tab\tnl\n\\");
    rt_strings("varchar(20)", "U", v, 5, "|NULL|h\xc3\xa9llo|\xf0\x9f\x8e\x89 4-byte|tab\tnl\n\\");
    const char *lv[] = {"short", NULL, "a string well beyond twelve bytes \xf0\x9f\x8e\x89", ""};
    rt_strings("text", "vu", lv, 4,
               "short|NULL|a string well beyond twelve bytes \xf0\x9f\x8e\x89|");
    const char *c[] = {"ab"};
    rt_strings("char(3)", "u", c, 1, "ab");
    expect_text("SELECT octet_length(v) || ':' || (v = 'ab ')::text FROM rt", "3:true");
    const char *j[] = {"{\"b\": 2, \"a\": [1, \"x\"]}", NULL};
    rt_strings("json", "u", j, 2, "{\"b\": 2, \"a\": [1, \"x\"]}|NULL");
    rt_strings("jsonb", "U", j, 2, "{\"a\": [1, \"x\"], \"b\": 2}|NULL");
    rt_strings("jsonb", "vu", j, 2, "{\"a\": [1, \"x\"], \"b\": 2}|NULL");

    struct ArrowSchema f;
    struct ArrowArray a;
    const char *bin[] = {"\x00\x01\xff", "", NULL};
    size_t lens[] = {3, 0, 0};
    fx_schema(&f, "z", "v", 0);
    fx_bytes(&a, 3, bin, lens, false);
    rt("bytea", &f, &a, "\\x0001ff|\\x|NULL");
    fx_schema(&f, "Z", "v", 0);
    fx_bytes(&a, 3, bin, lens, true);
    rt("bytea", &f, &a, "\\x0001ff|\\x|NULL");
    const char *bv[] = {"0123456789abcdef-long", "x"};
    fx_schema(&f, "vz", "v", 0);
    fx_views(&a, 2, bv, NULL);
    rt("bytea", &f, &a, "\\x303132333435363738396162636465662d6c6f6e67|\\x78");
    uint8_t u[32];
    for (int k = 0; k < 32; k++)
        u[k] = (uint8_t)(k * 7);
    rt_prim("uuid", "w:16", u, 16, 2, NULL,
            "00070e15-1c23-2a31-383f-464d545b6269|70777e85-8c93-9aa1-a8af-b6bdc4cbd2d9");
    rt_prim("bytea", "w:2", u, 2, 2, NULL, "\\x0007|\\x0e15");
}

static void types_dates_times(void **state) {
    (void)state;
    /* 0001-01-01, 9999-12-31, 2000-02-29, 1969-12-31, 2024-02-29 */
    int32_t d32[] = {-719162, 2932896, 11016, -1, 19782};
    rt_prim("date", "tdD", d32, 4, 5, NULL,
            "0001-01-01|9999-12-31|2000-02-29|1969-12-31|2024-02-29");
    int64_t d64[] = {INT64_C(11016) * 86400000, INT64_C(-719162) * 86400000};
    rt_prim("date", "tdm", d64, 8, 2, NULL, "2000-02-29|0001-01-01");

    int64_t us[] = {-1, 0, INT64_C(951782400000000), INT64_C(-62135596800000000),
                    INT64_C(946684799999999)};
    rt_prim("timestamp", "tsu:", us, 8, 5, NULL,
            "1969-12-31 23:59:59.999999|1970-01-01 00:00:00|2000-02-29 00:00:00|"
            "0001-01-01 00:00:00|1999-12-31 23:59:59.999999");
    rt_prim("timestamptz", "tsu:UTC", us, 8, 2, NULL,
            "1969-12-31 23:59:59.999999+00|1970-01-01 00:00:00+00");
    /* ns: floor to the microsecond (see arrow_int.h): -1 ns, 1999 ns, 2000-01-01 - 1 ns */
    int64_t ns[] = {-1, 1999, INT64_C(946684799999999999), INT64_C(-1001)};
    rt_prim("timestamptz", "tsn:UTC", ns, 8, 4, NULL,
            "1969-12-31 23:59:59.999999+00|1970-01-01 00:00:00.000001+00|"
            "1999-12-31 23:59:59.999999+00|1969-12-31 23:59:59.999998+00");
    rt_prim("timestamp", "tsn:", ns, 8, 2, NULL,
            "1969-12-31 23:59:59.999999|1970-01-01 00:00:00.000001");
    /* a zoned timestamp keeps its instant whatever the zone name */
    int64_t s[] = {0, 951782400};
    rt_prim("timestamptz", "tss:Europe/Paris", s, 8, 2, NULL,
            "1970-01-01 00:00:00+00|2000-02-29 00:00:00+00");
    int64_t ms[] = {1, -1};
    rt_prim("timestamp(3)", "tsm:", ms, 8, 2, NULL,
            "1970-01-01 00:00:00.001|1969-12-31 23:59:59.999");

    int64_t tu[] = {0, INT64_C(86399999999), INT64_C(86400000000)};
    rt_prim("time", "ttu", tu, 8, 3, NULL, "00:00:00|23:59:59.999999|24:00:00");
    int32_t ts[] = {3600, 45296};
    rt_prim("time", "tts", ts, 4, 2, NULL, "01:00:00|12:34:56");
    int32_t tm[] = {1};
    rt_prim("time", "ttm", tm, 4, 1, NULL, "00:00:00.001");
    int64_t tn[] = {1999};
    rt_prim("time", "ttn", tn, 8, 1, NULL, "00:00:00.000001");

    int64_t dur[] = {90061, -1};
    rt_prim("interval", "tDs", dur, 8, 2, NULL, "25:01:01|-00:00:01");
    int64_t durn[] = {-1, 1500};
    rt_prim("interval", "tDn", durn, 8, 2, NULL, "-00:00:00.000001|00:00:00.000001");
    int64_t durm[] = {1};
    rt_prim("interval", "tDm", durm, 8, 1, NULL, "00:00:00.001");
    rt_prim("interval", "tDu", durm, 8, 1, NULL, "00:00:00.000001");
}

static void types_dictionary(void **state) {
    (void)state;
    struct ArrowSchema f;
    struct ArrowArray a;
    /* polars' Categorical: uint32 indices into large_utf8 values */
    uint32_t idx[] = {2, 0, 0, 1, 2};
    bool valid[] = {true, true, false, true, true};
    fx_schema(&f, "I", "v", 0);
    fx_schema(fx_schema_dictionary(&f), "U", NULL, 0);
    fx_prim(&a, 5, idx, 4, valid);
    const char *words[] = {"red", "gr\xc3\xbcn", "blue"};
    fx_strings(fx_dictionary(&a), 3, words, true);
    rt("text", &f, &a, "blue|red|NULL|gr\xc3\xbcn|blue");

    int8_t i8[] = {0, 1};
    fx_schema(&f, "c", "v", 0);
    fx_schema(fx_schema_dictionary(&f), "u", NULL, 0);
    fx_prim(&a, 2, i8, 1, NULL);
    const char *w2[] = {"x", NULL};
    fx_strings(fx_dictionary(&a), 2, w2, false);
    rt("varchar(5)", &f, &a, "x|NULL");

    /* dictionary slice: offset 1 on the dictionary */
    int64_t i64[] = {0, 1};
    fx_schema(&f, "l", "v", 0);
    fx_schema(fx_schema_dictionary(&f), "u", NULL, 0);
    fx_prim(&a, 2, i64, 8, NULL);
    const char *w3[] = {"skipped", "one", "two"};
    struct ArrowArray *d = fx_dictionary(&a);
    fx_strings(d, 3, w3, false);
    d->offset = 1;
    d->length = 2;
    rt("text", &f, &a, "one|two");
}

static void types_lists(void **state) {
    (void)state;
    struct ArrowSchema f;
    struct ArrowArray a;
    int32_t offs[] = {0, 2, 2, 2, 4};
    bool lv[] = {true, true, false, true};
    fx_schema(&f, "+l", "v", 1);
    fx_schema(fx_schema_child(&f, 0), "i", "item", 0);
    struct ArrowArray *kid = fx_list(&a, 4, offs, lv, false);
    int32_t items[] = {1, 2, 0, 3};
    bool iv[] = {true, true, false, true};
    fx_prim(kid, 4, items, 4, iv);
    rt("integer[]", &f, &a, "{1,2}|{}|NULL|{NULL,3}");

    int64_t loffs[] = {0, 2, 3};
    fx_schema(&f, "+L", "v", 1);
    fx_schema(fx_schema_child(&f, 0), "u", "item", 0);
    kid = fx_list(&a, 2, loffs, NULL, true);
    const char *s[] = {"a", "b c", "\xf0\x9f\x8e\x89"};
    fx_strings(kid, 3, s, false);
    rt("text[]", &f, &a, "{a,\"b c\"}|{\xf0\x9f\x8e\x89}");

    int32_t o2[] = {0, 3};
    fx_schema(&f, "+l", "v", 1);
    fx_schema(fx_schema_child(&f, 0), "g", "item", 0);
    kid = fx_list(&a, 1, o2, NULL, false);
    double g[] = {1.5, NAN, -INFINITY};
    fx_prim(kid, 3, g, 8, NULL);
    rt("double precision[]", &f, &a, "{1.5,NaN,-Infinity}");

    fx_schema(&f, "+l", "v", 1);
    fx_schema(fx_schema_child(&f, 0), "tsu:UTC", "item", 0);
    kid = fx_list(&a, 1, o2, NULL, false);
    int64_t t[] = {0, 1, -1};
    fx_prim(kid, 3, t, 8, NULL);
    rt("timestamptz[]", &f, &a,
       "{\"1970-01-01 00:00:00+00\",\"1970-01-01 00:00:00.000001+00\","
       "\"1969-12-31 23:59:59.999999+00\"}");

    /* widening inside lists: int16 elements into bigint[]; list slice with child offset */
    int32_t o3[] = {0, 1, 3};
    fx_schema(&f, "+l", "v", 1);
    fx_schema(fx_schema_child(&f, 0), "s", "item", 0);
    kid = fx_list(&a, 2, o3, NULL, false);
    int16_t sh[] = {99, -1, 7, 8};
    fx_prim(kid, 4, sh, 2, NULL);
    kid->offset = 1;
    kid->length = 3;
    rt("bigint[]", &f, &a, "{-1}|{7,8}");
}

/* Slices: a struct offset on top of children with their own offsets. */
static void slices_with_offsets(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS sl");
    harness_sql(pg, "CREATE TABLE sl (a bigint, b text, c boolean)");
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 3);
    fx_schema(fx_schema_child(&s, 0), "l", "a", 0);
    fx_schema(fx_schema_child(&s, 1), "u", "b", 0);
    fx_schema(fx_schema_child(&s, 2), "b", "c", 0);
    struct ArrowArray b;
    fx_struct(&b, 4, 3);
    b.offset = 3; /* rows 3..6 of the struct */
    int64_t av[12];
    bool avalid[12];
    for (int k = 0; k < 12; k++) {
        av[k] = k * 10;
        avalid[k] = k % 4 != 1;
    }
    fx_prim(fx_child(&b, 0), 12, av, 8, avalid);
    fx_child(&b, 0)->offset = 2; /* a: physical 5..8: NULL (5 % 4 == 1), 60, 70, 80 */
    const char *bv[] = {"s0", "s1", "s2", "s3", "s4", NULL, "s6", "s7", "s8"};
    fx_strings(fx_child(&b, 1), 9, bv, false);
    fx_child(&b, 1)->offset = 1; /* b: physical 4..7 */
    bool cv[] = {false, false, false, false, false, false, false, false, false, true, false, true};
    fx_bools(fx_child(&b, 2), 12, cv, NULL);
    fx_child(&b, 2)->offset = 5; /* c: physical 8..11 */
    fx_child(&b, 2)->length = 7;
    struct ArrowArrayStream st;
    fx_stream(&st, &s, &b, 1, -1);
    pgetl_error err;
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "sl", &st, NULL, 0, NULL, &err), &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(fx_live(), 0);
    expect_text("SELECT string_agg(concat_ws(',', coalesce(a::text, 'NULL'), coalesce(b, 'NULL'), "
                "c::text), ' ' ORDER BY ctid) FROM sl",
                "NULL,s4,false 60,NULL,true 70,s6,false 80,s7,true");
}

/* A stream of `nb` batches of `rows` rows: id = global row, note text, every 7th note NULL. */
static void make_batches(struct ArrowArrayStream *st, struct ArrowSchema *s, int nb, int64_t rows,
                         int fail_at) {
    fx_schema(s, "+s", "", 2);
    fx_schema(fx_schema_child(s, 0), "l", "id", 0);
    fx_schema(fx_schema_child(s, 1), "u", "note", 0);
    struct ArrowArray *bs = calloc((size_t)nb, sizeof *bs);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)rows);
    const char **notes = malloc(sizeof(char *) * (size_t)rows);
    static const char *const words[] = {"alpha", "beta", "", "gamma delta", "\xc3\xa9t\xc3\xa9"};
    for (int k = 0; k < nb; k++) {
        for (int64_t r = 0; r < rows; r++) {
            int64_t id = (int64_t)k * rows + r;
            ids[r] = id;
            notes[r] = id % 7 == 3 ? NULL : words[id % 5];
        }
        fx_struct(&bs[k], rows, 2);
        fx_prim(fx_child(&bs[k], 0), rows, ids, 8, NULL);
        fx_strings(fx_child(&bs[k], 1), rows, notes, false);
    }
    fx_stream(st, s, bs, nb, fail_at);
    free(ids);
    free(notes);
    free(bs);
}

static void hundred_batches(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS hb");
    harness_sql(pg, "CREATE TABLE hb (id bigint primary key, note text)");
    struct ArrowSchema s;
    struct ArrowArrayStream st;
    make_batches(&st, &s, 100, 1000, -1);
    pgetl_error err;
    pgetl_copy_stats stats;
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "hb", &st, NULL, 0, &stats, &err), &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(fx_live(), 0);
    assert_int_equal(stats.rows_loaded, 100000);
    assert_int_equal(stats.batches, 100);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM hb"), 100000);
    assert_int_equal(harness_scalar(pg, "SELECT sum(id) FROM hb"), INT64_C(4999950000));
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM hb WHERE note IS NULL"),
                     harness_scalar(pg, "SELECT count(*) FROM generate_series(0, 99999) g "
                                        "WHERE g % 7 = 3"));
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM hb WHERE note = ''"),
                     harness_scalar(pg, "SELECT count(*) FROM generate_series(0, 99999) g "
                                        "WHERE g % 7 <> 3 AND g % 5 = 2"));
    expect_text("SELECT note FROM hb WHERE id = 99999", "\xc3\xa9t\xc3\xa9");
}

static void one_million_rows(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS mr");
    harness_sql(pg, "CREATE TABLE mr (id bigint, note text)");
    struct ArrowSchema s;
    struct ArrowArrayStream st;
    make_batches(&st, &s, 16, 62500, -1);
    pgetl_error err;
    pgetl_copy_stats stats;
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "mr", &st, NULL, 0, &stats, &err), &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(fx_live(), 0);
    assert_int_equal(stats.rows_loaded, 1000000);
    assert_int_equal(harness_scalar(pg, "SELECT count(DISTINCT id) FROM mr"), 1000000);
    assert_int_equal(harness_scalar(pg, "SELECT sum(id) FROM mr"), INT64_C(499999500000));
    assert_int_equal(harness_scalar(pg, "SELECT sum(octet_length(note)) FROM mr"),
                     harness_scalar(pg, "SELECT sum(CASE g % 5 WHEN 0 THEN 5 WHEN 1 THEN 4 "
                                        "WHEN 2 THEN 0 WHEN 3 THEN 11 ELSE 5 END) FROM "
                                        "generate_series(0, 999999) g WHERE g % 7 <> 3"));
}

static void empty_stream_skipped(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS em");
    harness_sql(pg, "CREATE TABLE em (id bigint, note text)");
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    struct ArrowSchema s;
    struct ArrowArrayStream st;
    make_batches(&st, &s, 0, 0, -1);
    pgetl_error err;
    pgetl_copy_stats stats;
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "em", &st, NULL, 0, &stats, &err), &err);
    assert_int_equal(stats.rows_read, 0);
    assert_int_equal(fx_live(), 0);
    assert_non_null(strstr(log->text, "level=info event=copy_from_arrow"));
    assert_non_null(strstr(log->text, "copy_from_arrow: no rows for table=em; skipping"));
    /* nothing was sent: no transaction was even opened */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);

    /* batches of zero rows are the same as none; even missing columns are not checked */
    memset(log, 0, sizeof *log);
    make_batches(&st, &s, 3, 0, -1);
    const char *cols[] = {"id", "nope"};
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "em", &st, cols, 2, NULL, &err), &err);
    assert_non_null(strstr(log->text, "no rows for table=em; skipping"));
    assert_int_equal(fx_live(), 0);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM em"), 0);
}

static void missing_columns_named(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS mc");
    harness_sql(pg, "CREATE TABLE mc (id bigint, note text, zz int, yy int)");
    struct ArrowSchema s;
    struct ArrowArrayStream st;
    make_batches(&st, &s, 2, 10, -1);
    const char *cols[] = {"id", "zz", "note", "yy"};
    pgetl_error err;
    assert_int_equal(pgetl_copy_from_arrow(conn, "mc", &st, cols, 4, NULL, &err), PGETL_ESCHEMA);
    assert_string_equal(err.message, "data missing required columns for COPY into mc: [zz, yy]");
    assert_int_equal(fx_live(), 0);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE); /* nothing sent */

    /* the data has a field the table lacks */
    harness_sql(pg, "DROP TABLE IF EXISTS mc");
    harness_sql(pg, "CREATE TABLE mc (id bigint)");
    make_batches(&st, &s, 1, 10, -1);
    assert_int_equal(pgetl_copy_from_arrow(conn, "mc", &st, NULL, 0, NULL, &err), PGETL_ESCHEMA);
    assert_non_null(strstr(err.message, "note"));
    assert_non_null(strstr(err.message, "unknown column"));
    assert_int_equal(fx_live(), 0);
    pgetl_rollback(conn, NULL);

    /* a subset in another order is fine */
    harness_sql(pg, "DROP TABLE IF EXISTS mc");
    harness_sql(pg, "CREATE TABLE mc (note text, extra int DEFAULT 5, id bigint)");
    make_batches(&st, &s, 1, 3, -1);
    const char *sub[] = {"note", "id"};
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "mc", &st, sub, 2, NULL, &err), &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    expect_text("SELECT string_agg(id || ':' || coalesce(note, 'NULL') || ':' || extra, ' ' "
                "ORDER BY id) FROM mc",
                "0:alpha:5 1:beta:5 2::5");
    assert_int_equal(pgetl_copy_from_arrow(conn, "no_such_table", NULL, NULL, 0, NULL, &err),
                     PGETL_EINVAL);
    make_batches(&st, &s, 1, 3, -1);
    assert_int_equal(pgetl_copy_from_arrow(conn, "no_such_table", &st, NULL, 0, NULL, &err),
                     PGETL_ENOTFOUND);
    assert_int_equal(fx_live(), 0);
}

/* Data may carry columns of types pgetl cannot load, as long as they are not loaded. */
static void unsupported_extra_field(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS ux");
    harness_sql(pg, "CREATE TABLE ux (id bigint, s text)");
    for (int ask = 0; ask < 2; ask++) {
        struct ArrowSchema s;
        fx_schema(&s, "+s", "", 2);
        fx_schema(fx_schema_child(&s, 0), "l", "id", 0);
        fx_schema(fx_schema_child(&s, 1), "+s", "s", 0); /* a struct column */
        struct ArrowArray b;
        fx_struct(&b, 2, 2);
        int64_t ids[] = {1, 2};
        fx_prim(fx_child(&b, 0), 2, ids, 8, NULL);
        fx_struct(fx_child(&b, 1), 2, 0);
        struct ArrowArrayStream st;
        fx_stream(&st, &s, &b, 1, -1);
        const char *only_id[] = {"id"};
        const char *both[] = {"id", "s"};
        pgetl_error err;
        pgetl_code rc =
            pgetl_copy_from_arrow(conn, "ux", &st, ask ? both : only_id, ask ? 2 : 1, NULL, &err);
        assert_int_equal(fx_live(), 0);
        if (!ask) {
            assert_pgetl_ok(rc, &err);
            assert_pgetl_ok(pgetl_commit(conn, &err), &err);
            expect_text("SELECT string_agg(id::text, ',' ORDER BY id) FROM ux", "1,2");
        } else {
            assert_int_equal(rc, PGETL_EUNSUPPORTED);
            assert_string_equal(err.message, "field \"s\": struct fields are not supported");
            pgetl_rollback(conn, NULL);
        }
    }
}

/* Builds a one-column stream (field "v" of `fmt`) of three int32/int64 values. */
static void one_col(struct ArrowArrayStream *st, const char *fmt, const void *vals, size_t elem) {
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 1);
    fx_schema(fx_schema_child(&s, 0), fmt, "v", 0);
    struct ArrowArray b;
    fx_struct(&b, 3, 1);
    fx_prim(fx_child(&b, 0), 3, vals, elem, NULL);
    fx_stream(st, &s, &b, 1, -1);
}

static void refused(const char *pgtype, const char *fmt, const void *vals, size_t elem,
                    const char *text) {
    char sql[128];
    harness_sql(pg, "DROP TABLE IF EXISTS it");
    snprintf(sql, sizeof sql, "CREATE TABLE it (v %s)", pgtype);
    harness_sql(pg, sql);
    struct ArrowArrayStream st;
    one_col(&st, fmt, vals, elem);
    pgetl_error err;
    assert_int_equal(pgetl_copy_from_arrow(conn, "it", &st, NULL, 0, NULL, &err), PGETL_ESCHEMA);
    if (!strstr(err.message, text))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, text);
    assert_int_equal(fx_live(), 0);
    /* refused before COPY: the transaction is still healthy */
    assert_int_not_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INERROR);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM it"), 0);
}

static void impossible_types_refused(void **state) {
    (void)state;
    int32_t i32[] = {1, 2, 3};
    int64_t i64[] = {1, 2, 3, 4, 5, 6}; /* also three decimal128 values */
    double g[] = {1, 2, 3};
    refused("date", "i", i32, 4, "column \"v\": cannot load Arrow type \"i\" into date");
    refused("timestamptz", "l", i64, 8,
            "column \"v\": cannot load Arrow type \"l\" into timestamp with time zone");
    refused("timestamp", "tsu:UTC", i64, 8,
            "cannot load Arrow type \"tsu:UTC\" into timestamp without time zone: a zoned");
    refused("timestamptz", "tsu:", i64, 8,
            "cannot load Arrow type \"tsu:\" into timestamp with time zone: an Arrow timestamp "
            "without time zone");
    refused("integer", "l", i64, 8, "\"l\" into integer");
    refused("smallint", "i", i32, 4, "\"i\" into smallint");
    refused("real", "g", g, 8, "\"g\" into real");
    refused("bigint", "g", g, 8, "\"g\" into bigint");
    refused("text", "i", i32, 4, "\"i\" into text");
    refused("numeric(10,2)", "d:5,3", i64, 16, "3 decimal places would be rounded to 2");
    refused("timestamp(0)", "tsm:", i64, 8, "would be rounded to 0");
    refused("varchar(4)[]", "i", i32, 4, "\"i\" into character varying(4)[]");
}

/* After a failed load and a rollback, another session can lock the table at once. */
static void expect_unlocked(const char *table) {
    PGconn *other = harness_pq();
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT; ROLLBACK",
             table);
    harness_sql(other, sql);
    PQfinish(other);
}

static void fails_cleanly(const char *table, pgetl_code want, pgetl_code got,
                          const pgetl_error *err, const char *text) {
    if (got != want)
        fail_msg("got %s (%s), want %s", pgetl_code_name(got), err->message, pgetl_code_name(want));
    if (!strstr(err->message, text))
        fail_msg("message \"%s\" lacks \"%s\"", err->message, text);
    assert_int_equal(fx_live(), 0);
    /* out of COPY: the connection takes commands after the rollback */
    pgetl_error e;
    assert_pgetl_ok(pgetl_rollback(conn, &e), &e);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    assert_int_equal(harness_scalar(pg, sql), 0);
    expect_unlocked(table);
    assert_pgetl_ok(pgetl_begin(conn, &e), &e);
    assert_pgetl_ok(pgetl_rollback(conn, &e), &e);
}

static void stream_error_midway(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS se");
    harness_sql(pg, "CREATE TABLE se (id bigint, note text)");
    struct ArrowSchema s;
    struct ArrowArrayStream st;
    make_batches(&st, &s, 6, 20000, 3);
    pgetl_error err;
    pgetl_code rc = pgetl_copy_from_arrow(conn, "se", &st, NULL, 0, NULL, &err);
    fails_cleanly("se", PGETL_EARROW, rc, &err, "fixture: producer failed at batch 3");

    make_batches(&st, &s, 2, 10, -1);
    fx_stream_fail_schema(&st);
    rc = pgetl_copy_from_arrow(conn, "se", &st, NULL, 0, NULL, &err);
    fails_cleanly("se", PGETL_EARROW, rc, &err, "fixture: schema unavailable");
}

/* Batch 2 of 4 is malformed in one of several ways; nothing may be stored. */
static void malformed_batches(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS mb");
    harness_sql(pg, "CREATE TABLE mb (id bigint, note text)");
    for (int how = 0; how < 8; how++) {
        struct ArrowSchema s;
        struct ArrowArrayStream st;
        make_batches(&st, &s, 4, 5000, -1);
        struct fx_stream_priv *p = st.private_data;
        /* Batch 2 after two good ones were sent; case 7 breaks batch 0, before COPY starts. */
        int bad_batch = how == 7 ? 0 : 2;
        struct ArrowArray *b = &p->batches[bad_batch];
        struct ArrowArray *ids = b->children[0], *notes = b->children[1];
        const char *text = NULL;
        switch (how) {
        case 0:
        case 7:
            ((int32_t *)notes->buffers[1])[100] = 1 << 30;
            ((int32_t *)notes->buffers[1])[101] = 5;
            text = "offsets decrease";
            break;
        case 1:
            notes->length = -5;
            text = "negative length";
            break;
        case 2:
            ids->buffers[1] = NULL;
            text = "data buffer is NULL";
            break;
        case 3:
            notes->n_buffers = 2;
            text = "n_buffers is 2";
            break;
        case 4:
            b->n_children = 1;
            text = "n_children is 1";
            break;
        case 5:
            ids->offset = -1;
            text = "negative offset";
            break;
        case 6:
            ids->length = 10; /* shorter than the batch */
            text = "shorter than";
            break;
        }
        pgetl_error err;
        pgetl_code rc = pgetl_copy_from_arrow(conn, "mb", &st, NULL, 0, NULL, &err);
        fails_cleanly("mb", PGETL_EDATA, rc, &err, text);
        char where[32];
        snprintf(where, sizeof where, "batch %d: ", bad_batch);
        if (strncmp(err.message, where, strlen(where)) != 0)
            fail_msg("message \"%s\" does not start with \"%s\"", err.message, where);
    }
}

/* A dictionary index outside its dictionary is caught before encoding. */
static void dictionary_index_out_of_range(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS di");
    harness_sql(pg, "CREATE TABLE di (v text)");
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 1);
    struct ArrowSchema *f = fx_schema_child(&s, 0);
    fx_schema(f, "i", "v", 0);
    fx_schema(fx_schema_dictionary(f), "u", NULL, 0);
    struct ArrowArray bs[2];
    const char *words[] = {"a", "b"};
    for (int k = 0; k < 2; k++) {
        int32_t idx[] = {0, 1, k == 1 ? 2 : 0};
        fx_struct(&bs[k], 3, 1);
        fx_prim(fx_child(&bs[k], 0), 3, idx, 4, NULL);
        fx_strings(fx_dictionary(fx_child(&bs[k], 0)), 2, words, false);
    }
    struct ArrowArrayStream st;
    fx_stream(&st, &s, bs, 2, -1);
    pgetl_error err;
    pgetl_code rc = pgetl_copy_from_arrow(conn, "di", &st, NULL, 0, NULL, &err);
    fails_cleanly("di", PGETL_EDATA, rc, &err,
                  "batch 1: malformed Arrow array for column \"v\": dictionary index 2 at "
                  "element 2 is out of range");
}

static void bad_value_midway(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS bv");
    harness_sql(pg, "CREATE TABLE bv (v bigint)");
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 1);
    fx_schema(fx_schema_child(&s, 0), "L", "v", 0);
    struct ArrowArray bs[2];
    uint64_t ok[] = {1, 2, 3}, bad[] = {4, UINT64_MAX, 6};
    fx_struct(&bs[0], 3, 1);
    fx_prim(fx_child(&bs[0], 0), 3, ok, 8, NULL);
    fx_struct(&bs[1], 3, 1);
    fx_prim(fx_child(&bs[1], 0), 3, bad, 8, NULL);
    struct ArrowArrayStream st;
    fx_stream(&st, &s, bs, 2, -1);
    pgetl_error err;
    pgetl_code rc = pgetl_copy_from_arrow(conn, "bv", &st, NULL, 0, NULL, &err);
    fails_cleanly("bv", PGETL_EOVERFLOW, rc, &err,
                  "column \"v\" (Arrow \"L\" into bigint), batch 1 row 1: uint64 value");

    /* a server-side refusal (date out of PostgreSQL's range) also ends cleanly */
    harness_sql(pg, "DROP TABLE IF EXISTS bv");
    harness_sql(pg, "CREATE TABLE bv (v date)");
    fx_schema(&s, "+s", "", 1);
    fx_schema(fx_schema_child(&s, 0), "tdD", "v", 0);
    int32_t days[] = {0, INT32_MAX - 20000, 1};
    fx_struct(&bs[0], 3, 1);
    fx_prim(fx_child(&bs[0], 0), 3, days, 4, NULL);
    fx_stream(&st, &s, bs, 1, -1);
    rc = pgetl_copy_from_arrow(conn, "bv", &st, NULL, 0, NULL, &err);
    fails_cleanly("bv", PGETL_ESERVER, rc, &err, "date out of range");
}

typedef struct rejects {
    int n;
    int64_t batch[8], row[8];
    char state[8][6];
} rejects;

static int on_reject(void *user, const pgetl_reject *r) {
    rejects *rj = user;
    if (rj->n < 8) {
        rj->batch[rj->n] = r->batch_index;
        rj->row[rj->n] = r->batch_row;
        memcpy(rj->state[rj->n], r->sqlstate, 6);
    }
    rj->n++;
    return 0;
}

/* 1M rows, three bad ones (unique, check, foreign key) isolated; the rest loaded once. */
static void isolate_three_bad_rows(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS iso, iso_parent");
    harness_sql(pg, "CREATE TABLE iso_parent (k int PRIMARY KEY)");
    harness_sql(pg, "INSERT INTO iso_parent VALUES (0), (1), (2)");
    harness_sql(pg, "CREATE TABLE iso (id bigint PRIMARY KEY, qty int CHECK (qty >= 0), "
                    "k int REFERENCES iso_parent)");
    harness_sql(pg, "INSERT INTO iso VALUES (-1, 0, 0)");
    enum { NB = 16, ROWS = 62500 };
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 3);
    fx_schema(fx_schema_child(&s, 0), "l", "id", 0);
    fx_schema(fx_schema_child(&s, 1), "i", "qty", 0);
    fx_schema(fx_schema_child(&s, 2), "i", "k", 0);
    struct ArrowArray *bs = calloc(NB, sizeof *bs);
    int64_t *ids = malloc(sizeof(int64_t) * ROWS);
    int32_t *qty = malloc(sizeof(int32_t) * ROWS);
    int32_t *k = malloc(sizeof(int32_t) * ROWS);
    for (int b = 0; b < NB; b++) {
        for (int r = 0; r < ROWS; r++) {
            ids[r] = (int64_t)b * ROWS + r;
            qty[r] = r % 10;
            k[r] = r % 3;
        }
        if (b == 2)
            ids[777] = -1; /* unique violation with the existing row */
        if (b == 7)
            qty[40000] = -3; /* check violation */
        if (b == 13)
            k[5] = 99; /* foreign-key violation (found at end of statement) */
        fx_struct(&bs[b], ROWS, 3);
        fx_prim(fx_child(&bs[b], 0), ROWS, ids, 8, NULL);
        fx_prim(fx_child(&bs[b], 1), ROWS, qty, 4, NULL);
        fx_prim(fx_child(&bs[b], 2), ROWS, k, 4, NULL);
    }
    struct ArrowArrayStream st;
    fx_stream(&st, &s, bs, NB, -1);
    free(bs);
    free(ids);
    free(qty);
    free(k);

    rejects rj = {0};
    pgetl_arrow_options opts;
    pgetl_arrow_options_init(&opts);
    opts.max_rejects = 10;
    opts.on_reject = on_reject;
    opts.reject_user = &rj;
    pgetl_error err;
    pgetl_copy_stats stats;
    assert_pgetl_ok(pgetl_copy_from_arrow_opts(conn, "iso", &st, &opts, &stats, &err), &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(fx_live(), 0);
    assert_int_equal(rj.n, 3);
    assert_int_equal(stats.rows_rejected, 3);
    assert_int_equal(stats.rows_loaded, NB * ROWS - 3);
    assert_int_equal(stats.rows_read, NB * ROWS);
    assert_int_equal(rj.batch[0], 2);
    assert_int_equal(rj.row[0], 777);
    assert_string_equal(rj.state[0], "23505");
    assert_int_equal(rj.batch[1], 7);
    assert_int_equal(rj.row[1], 40000);
    assert_string_equal(rj.state[1], "23514");
    assert_int_equal(rj.batch[2], 13);
    assert_int_equal(rj.row[2], 5);
    assert_string_equal(rj.state[2], "23503");
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM iso"), NB * ROWS - 3 + 1);
    assert_int_equal(harness_scalar(pg, "SELECT count(DISTINCT id) FROM iso"), NB * ROWS - 3 + 1);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM iso WHERE id IN (2 * 62500 + 777, "
                                        "7 * 62500 + 40000, 13 * 62500 + 5)"),
                     0);

    /* with max_rejects 2 the third bad row fails the load */
    harness_sql(pg, "TRUNCATE iso");
    struct ArrowArray one[3];
    fx_schema(&s, "+s", "", 3);
    fx_schema(fx_schema_child(&s, 0), "l", "id", 0);
    fx_schema(fx_schema_child(&s, 1), "i", "qty", 0);
    fx_schema(fx_schema_child(&s, 2), "i", "k", 0);
    for (int b = 0; b < 3; b++) {
        int64_t id[2] = {b * 2, b * 2 + 1};
        int32_t q[2] = {-1, 1}, kk[2] = {0, 0};
        fx_struct(&one[b], 2, 3);
        fx_prim(fx_child(&one[b], 0), 2, id, 8, NULL);
        fx_prim(fx_child(&one[b], 1), 2, q, 4, NULL);
        fx_prim(fx_child(&one[b], 2), 2, kk, 4, NULL);
    }
    fx_stream(&st, &s, one, 3, -1);
    memset(&rj, 0, sizeof rj);
    opts.max_rejects = 2;
    pgetl_code rc = pgetl_copy_from_arrow_opts(conn, "iso", &st, &opts, NULL, &err);
    fails_cleanly("iso", PGETL_EREJECTS, rc, &err, "");
}

/*
 * Allocation failure: pgetl's allocator is replaced (in main, before any
 * other call) by one that delegates to malloc but can be armed to fail the
 * Nth allocation. Each N from 1 up fails one allocation inside
 * pgetl_copy_from_arrow; every run must end in PGETL_OK or PGETL_ENOMEM with
 * all Arrow objects released and the connection usable after rollback.
 */
static long alloc_countdown; /* 0: never fail; k: fail the k-th allocation from now */
static long alloc_failed;
static long alloc_calls; /* every malloc/realloc through pgetl's allocator */

static bool alloc_should_fail(void) {
    alloc_calls++;
    if (alloc_countdown > 0 && --alloc_countdown == 0) {
        alloc_failed++;
        return true;
    }
    return false;
}
static void *failing_malloc(size_t n) {
    return alloc_should_fail() ? NULL : malloc(n);
}
static void *failing_realloc(void *p, size_t n) {
    return alloc_should_fail() ? NULL : realloc(p, n);
}

static void allocation_failures(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS af");
    harness_sql(pg, "CREATE TABLE af (id bigint, note text)");
    int failures = 0;
    for (long n = 1; n < 500; n++) {
        struct ArrowSchema s;
        struct ArrowArrayStream st;
        make_batches(&st, &s, 3, 100, -1);
        alloc_failed = 0;
        alloc_countdown = n;
        pgetl_error err;
        pgetl_code rc = pgetl_copy_from_arrow(conn, "af", &st, NULL, 0, NULL, &err);
        alloc_countdown = 0;
        assert_int_equal(fx_live(), 0);
        if (!alloc_failed) {
            /* n is past the last allocation: the load went through untouched. */
            assert_pgetl_ok(rc, &err);
            assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
            assert_true(failures > 3);
            return;
        }
        failures++;
        if (rc != PGETL_OK && rc != PGETL_ENOMEM)
            fail_msg("allocation %ld failed: got %s (%s)", n, pgetl_code_name(rc), err.message);
        assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
        assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM af"), 0);
    }
    fail_msg("copy_from_arrow still allocating after 500 allocations for 300 rows");
}

/* pgetl's allocations do not depend on the row count: 2 x 5 rows and 2 x 5000 rows cost the same. */
static void no_allocation_per_row(void **state) {
    (void)state;
    harness_sql(pg, "DROP TABLE IF EXISTS ap");
    harness_sql(pg, "CREATE TABLE ap (id bigint, note text)");
    long calls[2];
    const int64_t rows[2] = {5, 5000};
    for (int k = 0; k < 2; k++) {
        struct ArrowSchema s;
        struct ArrowArrayStream st;
        make_batches(&st, &s, 2, rows[k], -1);
        pgetl_error err;
        long before = alloc_calls;
        assert_pgetl_ok(pgetl_copy_from_arrow(conn, "ap", &st, NULL, 0, NULL, &err), &err);
        calls[k] = alloc_calls - before;
        assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    }
    if (calls[0] != calls[1])
        fail_msg("allocations: %ld for 10 rows, %ld for 10000 rows", calls[0], calls[1]);
    assert_true(calls[0] > 0); /* the counter does see pgetl's allocations */
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(types_integers, setup, teardown),
        cmocka_unit_test_setup_teardown(types_floats, setup, teardown),
        cmocka_unit_test_setup_teardown(types_bool_and_decimal, setup, teardown),
        cmocka_unit_test_setup_teardown(types_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(types_dates_times, setup, teardown),
        cmocka_unit_test_setup_teardown(types_dictionary, setup, teardown),
        cmocka_unit_test_setup_teardown(types_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(slices_with_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(hundred_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(one_million_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_stream_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_columns_named, setup, teardown),
        cmocka_unit_test_setup_teardown(unsupported_extra_field, setup, teardown),
        cmocka_unit_test_setup_teardown(impossible_types_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(stream_error_midway, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(dictionary_index_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_value_midway, setup, teardown),
        cmocka_unit_test_setup_teardown(isolate_three_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(no_allocation_per_row, setup, teardown),
    };
    pgetl_set_allocator(failing_malloc, failing_realloc, free);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
