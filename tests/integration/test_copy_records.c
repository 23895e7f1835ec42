/*
 * The records COPY writer against a real server: escaping round trips in
 * text and CSV, typed binary values at their extremes, type and column
 * checks before anything is sent, server errors naming the row, abort,
 * a server that dies mid-COPY, bounded memory and batch flushing.
 */
#include "harness.h"

#include "pgetl/libpq.h"
#include "copy/copy_int.h"

#include <math.h>
#include <time.h>

/* Runs SQL on the pgetl connection's own PGconn (inside its transaction). */
static PGresult *q(pgetl_conn *conn, const char *sql) {
    PGresult *r = PQexec(pgetl_conn_pg(conn), sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s\n%s", sql, PQerrorMessage(pgetl_conn_pg(conn)));
    return r;
}

static int64_t scalar(pgetl_conn *conn, const char *sql) {
    PGresult *r = q(conn, sql);
    assert_int_equal(PQntuples(r), 1);
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void setup_table(const char *sql) {
    PGconn *pg = harness_pq();
    /* A failed test may leave its connection holding locks: fail, don't hang. */
    harness_sql(pg, "SET lock_timeout = '20s'");
    harness_sql(pg, sql);
    PQfinish(pg);
}

/* ---- escaping round trips ------------------------------------------------ */

typedef struct val {
    const char *p;
    size_t n;
} val;
#define V(s)                                                                                       \
    { s, sizeof(s) - 1 }

static const val hostile[] = {
    V(""),
    {NULL, 0},
    V("\\."),
    V("\\N"),
    V("NULL"),
    V("null"),
    V("a\tb"),
    V("line\nbreak"),
    V("cr\ronly"),
    V("\r\n"),
    V("back\\slash"),
    V("\\"),
    V("\"quoted\""),
    V("\""),
    V("comma,comma"),
    V(","),
    V("\xf0\x9f\x8e\x89 party"),
    V("\xe6\x97\xa5\xe6\x9c\xac"),
    V("caf\xc3\xa9"),
    V(" spaces "),
    V("\\t literal"),
    V("'single'"),
    V("\x01\x02\x1f\x7f"),
    V("end\\"),
    V("\\\\."),
    V("a\\.b"),
};
#define NHOSTILE (sizeof hostile / sizeof hostile[0])

static void round_trip(pgetl_copy_format format) {
    setup_table("DROP TABLE IF EXISTS esc; CREATE TABLE esc (id int, v text, w text)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = format;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "esc", &o, &c, &err), &err);
    for (size_t i = 0; i < NHOSTILE; i++) {
        char id[16];
        snprintf(id, sizeof id, "%zu", i);
        /* w holds the value reversed in position: exercise both column slots. */
        const val *w = &hostile[NHOSTILE - 1 - i];
        const char *vals[3] = {id, hostile[i].p, w->p};
        size_t lens[3] = {strlen(id), hostile[i].n, w->n};
        assert_pgetl_ok(pgetl_copy_write_row(c, vals, lens, &err), &err);
    }
    pgetl_copy_stats st;
    assert_pgetl_ok(pgetl_copy_end(c, &st, &err), &err);
    assert_int_equal(st.rows_read, NHOSTILE);
    assert_int_equal(st.rows_loaded, NHOSTILE);

    PGresult *r = q(conn, "SELECT v, w FROM esc ORDER BY id");
    assert_int_equal(PQntuples(r), NHOSTILE);
    for (size_t i = 0; i < NHOSTILE; i++) {
        for (int col = 0; col < 2; col++) {
            const val *want = col == 0 ? &hostile[i] : &hostile[NHOSTILE - 1 - i];
            if (!want->p) {
                if (!PQgetisnull(r, (int)i, col))
                    fail_msg("row %zu col %d: want NULL, got [%s]", i, col,
                             PQgetvalue(r, (int)i, col));
                continue;
            }
            if (PQgetisnull(r, (int)i, col))
                fail_msg("row %zu col %d: want [%s], got NULL", i, col, want->p);
            assert_int_equal(PQgetlength(r, (int)i, col), want->n);
            assert_memory_equal(PQgetvalue(r, (int)i, col), want->p, want->n);
        }
    }
    PQclear(r);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    pgetl_conn_close(conn);
}

static void text_escapes_round_trip(void **state) {
    (void)state;
    round_trip(PGETL_COPY_TEXT);
}

static void csv_escapes_round_trip(void **state) {
    (void)state;
    round_trip(PGETL_COPY_CSV);
}

/* One column: a value that is exactly \. would end the data if left bare. */
static void single_column_end_marker(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++) {
        setup_table("DROP TABLE IF EXISTS one; CREATE TABLE one (v text)");
        pgetl_conn *conn = harness_connect();
        pgetl_error err;
        pgetl_copy_options o;
        pgetl_copy_options_init(&o);
        o.format = f ? PGETL_COPY_CSV : PGETL_COPY_TEXT;
        pgetl_copy *c = NULL;
        assert_pgetl_ok(pgetl_copy_begin(conn, "one", &o, &c, &err), &err);
        const char *rows[] = {"\\.", "", NULL, "after"};
        for (int i = 0; i < 4; i++)
            assert_pgetl_ok(pgetl_copy_write_row(c, &rows[i], NULL, &err), &err);
        assert_pgetl_ok(pgetl_copy_end(c, NULL, &err), &err);
        assert_int_equal(scalar(conn, "SELECT count(*) FROM one"), 4);
        assert_int_equal(scalar(conn, "SELECT count(*) FROM one WHERE v = '\\.'"), 1);
        assert_int_equal(scalar(conn, "SELECT count(*) FROM one WHERE v = ''"), 1);
        assert_int_equal(scalar(conn, "SELECT count(*) FROM one WHERE v IS NULL"), 1);
        assert_int_equal(scalar(conn, "SELECT count(*) FROM one WHERE v = 'after'"), 1);
        pgetl_conn_close(conn);
    }
}

static void nul_byte_refused_and_sticky(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS esc; CREATE TABLE esc (id int, v text)");
    for (int f = 0; f < 2; f++) {
        pgetl_conn *conn = harness_connect();
        pgetl_error err;
        pgetl_copy_options o;
        pgetl_copy_options_init(&o);
        o.format = f ? PGETL_COPY_CSV : PGETL_COPY_TEXT;
        pgetl_copy *c = NULL;
        assert_pgetl_ok(pgetl_copy_begin(conn, "esc", &o, &c, &err), &err);
        const char *ok[2] = {"1", "fine"};
        assert_pgetl_ok(pgetl_copy_write_row(c, ok, NULL, &err), &err);
        const char *bad[2] = {"2", "ab\0cd"};
        size_t lens[2] = {1, 5};
        assert_int_equal(pgetl_copy_write_row(c, bad, lens, &err), PGETL_EDATA);
        assert_non_null(strstr(err.message, "NUL"));
        assert_non_null(strstr(err.message, "row 2"));
        assert_non_null(strstr(err.message, "\"v\""));
        char first[sizeof err.message];
        strcpy(first, err.message);
        /* Sticky: a good row now gets the same error. */
        assert_int_equal(pgetl_copy_write_row(c, ok, NULL, &err), PGETL_EDATA);
        assert_string_equal(err.message, first);
        assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_EDATA);
        assert_string_equal(err.message, first);
        /* Out of COPY, transaction failed; usable after rollback, nothing stored. */
        assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INERROR);
        assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
        assert_int_equal(scalar(conn, "SELECT count(*) FROM esc"), 0);
        pgetl_conn_close(conn);
    }
}

/* A length beyond PostgreSQL's 1 GB field limit is refused before any byte is read. */
static void oversized_value_refused(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS esc; CREATE TABLE esc (id int, v text)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "esc", NULL, &c, &err), &err);
    const char *vals[2] = {"1", "tiny"};
    size_t lens[2] = {1, ((size_t)1 << 30) + 1};
    assert_int_equal(pgetl_copy_write_row(c, vals, lens, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "1 GB"));
    assert_non_null(strstr(err.message, "row 1, column \"v\""));
    assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_EDATA);
    pgetl_rollback(conn, NULL);

    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = PGETL_COPY_BINARY;
    const pgetl_type types[2] = {PGETL_TYPE_INT32, PGETL_TYPE_TEXT};
    o.types = types;
    assert_pgetl_ok(pgetl_copy_begin(conn, "esc", &o, &c, &err), &err);
    pgetl_value v[2] = {{.v.i = 1}, {.v.s = {"tiny", SIZE_MAX}}};
    assert_int_equal(pgetl_copy_write_values(c, v, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "1 GB"));
    assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_EDATA);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

/* ---- typed binary ----------------------------------------------------- */

static const char typed_sql[] =
    "DROP TABLE IF EXISTS typed; CREATE TABLE typed (id int, i2 smallint, i4 integer, i8 bigint,"
    " f4 real, f8 double precision, b boolean, t text, vc varchar(12), j jsonb, js json, by bytea,"
    " d date, ts timestamp, tz timestamptz, u uuid, n numeric, n2 numeric(10,2), w bigint)";

enum { NTYPED = 19 };
static const pgetl_type typed_types[NTYPED] = {
    PGETL_TYPE_INT32,   PGETL_TYPE_INT16,     PGETL_TYPE_INT32,       PGETL_TYPE_INT64,
    PGETL_TYPE_FLOAT32, PGETL_TYPE_FLOAT64,   PGETL_TYPE_BOOL,        PGETL_TYPE_TEXT,
    PGETL_TYPE_TEXT,    PGETL_TYPE_TEXT,      PGETL_TYPE_TEXT,        PGETL_TYPE_BYTEA,
    PGETL_TYPE_DATE,    PGETL_TYPE_TIMESTAMP, PGETL_TYPE_TIMESTAMPTZ, PGETL_TYPE_UUID,
    PGETL_TYPE_NUMERIC, PGETL_TYPE_NUMERIC,   PGETL_TYPE_INT32};

static pgetl_value I(int64_t i) {
    return (pgetl_value){.v.i = i};
}
static pgetl_value F(double f) {
    return (pgetl_value){.v.f = f};
}
static pgetl_value B(bool b) {
    return (pgetl_value){.v.b = b};
}
static pgetl_value S(const char *s) {
    return (pgetl_value){.v.s = {s, strlen(s)}};
}
static pgetl_value SN(const void *s, size_t n) {
    return (pgetl_value){.v.s = {s, n}};
}
static pgetl_value NUL_(void) {
    return (pgetl_value){.is_null = true};
}

static void binary_types_round_trip(void **state) {
    (void)state;
    setup_table(typed_sql);
    pgetl_conn *conn = harness_connect();
    PQclear(q(conn, "SET TimeZone = 'UTC'"));
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = PGETL_COPY_BINARY;
    o.types = typed_types;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "typed", &o, &c, &err), &err);
    static const unsigned char uuid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                           0x0f, 0xed, 0xcb, 0xa9, 0x87, 0x65, 0x43, 0x21};
    pgetl_value rows[][NTYPED] = {
        {I(1), I(INT16_MIN), I(INT32_MIN), I(INT64_MIN), F(-INFINITY), F(NAN), B(false), S(""),
         S("short"), S("{\"a\": [1, 2]}"), S("{\"k\" : 1}"), SN("\0\xff\x01", 3), I(-719162), I(-1),
         I(-62135596800000000), SN(uuid, 16), S("-12345678901234567890123456789012345678"),
         S("-12.5"), I(INT32_MIN)},
        {I(2), I(INT16_MAX), I(INT32_MAX), I(INT64_MAX), F(INFINITY), F(-0.0), B(true),
         S("\xf0\x9f\x8e\x89\t\n\\"), S("twelve chars"), S("null"), S("[]"), SN("", 0), I(2932896),
         I(253402300799999999), I(0), SN(uuid, 16), S("NaN"), S("99999999.99"), I(INT32_MAX)},
        {I(3), NUL_(), NUL_(), NUL_(), F(1.5), F(-1e-300), NUL_(), NUL_(), NUL_(), NUL_(), NUL_(),
         NUL_(), I(0), I(1), I(-86400000000), NUL_(), S("0.000001"), S("-0"), NUL_()},
        {I(4), I(0), I(0), I(0), F(0), F(5e-324), B(true), S("x"), S(""), S("\"s\""), S("1"),
         SN("\\x", 2), I(10957), I(946684800000000), I(1577836800123456), NUL_(), S("Infinity"),
         S("1e3"), I(0)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_pgetl_ok(pgetl_copy_write_values(c, rows[i], &err), &err);
    pgetl_copy_stats st;
    assert_pgetl_ok(pgetl_copy_end(c, &st, &err), &err);
    assert_int_equal(st.rows_loaded, 4);

    static const char *const want[][NTYPED] = {
        {"1", "-32768", "-2147483648", "-9223372036854775808", "-Infinity", "NaN", "f", "", "short",
         "{\"a\": [1, 2]}", "{\"k\" : 1}", "\\x00ff01", "0001-01-01", "1969-12-31 23:59:59.999999",
         "0001-01-01 00:00:00+00", "12345678-9abc-def0-0fed-cba987654321",
         "-12345678901234567890123456789012345678", "-12.50", "-2147483648"},
        {"2", "32767", "2147483647", "9223372036854775807", "Infinity", "-0", "t",
         "\xf0\x9f\x8e\x89\t\n\\", "twelve chars", "null", "[]", "\\x", "9999-12-31",
         "9999-12-31 23:59:59.999999", "1970-01-01 00:00:00+00",
         "12345678-9abc-def0-0fed-cba987654321", "NaN", "99999999.99", "2147483647"},
        {"3", NULL, NULL, NULL, "1.5", "-1e-300", NULL, NULL, NULL, NULL, NULL, NULL, "1970-01-01",
         "1970-01-01 00:00:00.000001", "1969-12-31 00:00:00+00", NULL, "0.000001", "0.00", NULL},
        {"4", "0", "0", "0", "0", "5e-324", "t", "x", "", "\"s\"", "1", "\\x5c78", "2000-01-01",
         "2000-01-01 00:00:00", "2020-01-01 00:00:00.123456+00", NULL, "Infinity", "1000.00", "0"},
    };
    PGresult *r = q(conn, "SELECT id, i2, i4, i8, f4, f8, b, t, vc, j, js, by, d, ts, tz, u, n, "
                          "n2, w FROM typed ORDER BY id");
    assert_int_equal(PQntuples(r), 4);
    for (int i = 0; i < 4; i++) {
        for (int col = 0; col < NTYPED; col++) {
            const char *w = want[i][col];
            if (!w) {
                if (!PQgetisnull(r, i, col))
                    fail_msg("row %d col %d: want NULL, got %s", i, col, PQgetvalue(r, i, col));
                continue;
            }
            if (PQgetisnull(r, i, col) || strcmp(PQgetvalue(r, i, col), w) != 0)
                fail_msg("row %d col %s: want [%s], got [%s]", i, PQfname(r, col), w,
                         PQgetisnull(r, i, col) ? "NULL" : PQgetvalue(r, i, col));
        }
    }
    PQclear(r);
    /* The 38-digit numeric compares equal as a number too. */
    assert_int_equal(scalar(conn, "SELECT count(*) FROM typed WHERE n = "
                                  "-12345678901234567890123456789012345678"),
                     1);
    pgetl_conn_close(conn);
}

static void binary_type_mismatch_before_sending(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS mm; CREATE TABLE mm (a uuid, b integer, c text, d date)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = PGETL_COPY_BINARY;
    const pgetl_type types[4] = {PGETL_TYPE_INT64, PGETL_TYPE_TEXT, PGETL_TYPE_TEXT,
                                 PGETL_TYPE_DATE};
    o.types = types;
    pgetl_copy *c = (pgetl_copy *)&err; /* must be reset to NULL */
    assert_int_equal(pgetl_copy_begin(conn, "mm", &o, &c, &err), PGETL_ESCHEMA);
    assert_null(c);
    assert_non_null(strstr(err.message, "column \"a\": int64 into uuid"));
    assert_non_null(strstr(err.message, "column \"b\": text into integer"));
    assert_null(strstr(err.message, "column \"c\""));
    /* Nothing was sent: the transaction is fine and no COPY ran. */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM mm"), 0);
    /* BINARY without types, and write_row on a binary COPY, are caller errors. */
    o.types = NULL;
    assert_int_equal(pgetl_copy_begin(conn, "mm", &o, &c, &err), PGETL_EINVAL);
    pgetl_conn_close(conn);
}

static void binary_narrowing_overflow_names_row(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS nar; CREATE TABLE nar (a integer, b smallint)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = PGETL_COPY_BINARY;
    const pgetl_type types[2] = {PGETL_TYPE_INT64, PGETL_TYPE_INT64};
    o.types = types;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "nar", &o, &c, &err), &err);
    pgetl_value ok[2] = {I(INT32_MAX), I(INT16_MIN)};
    assert_pgetl_ok(pgetl_copy_write_values(c, ok, &err), &err);
    assert_int_equal(pgetl_copy_write_row(c, (const char *const[]){"1", "2"}, NULL, &err),
                     PGETL_EINVAL);
    pgetl_value bad[2] = {I(1), I(40000)};
    assert_int_equal(pgetl_copy_write_values(c, bad, &err), PGETL_EOVERFLOW);
    assert_non_null(strstr(err.message, "row 2"));
    assert_non_null(strstr(err.message, "column \"b\""));
    assert_non_null(strstr(err.message, "40000"));
    assert_int_equal(pgetl_copy_write_values(c, ok, &err), PGETL_EOVERFLOW);
    assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_EOVERFLOW);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM nar"), 0);
    pgetl_conn_close(conn);
}

/* ---- catalog checks ---------------------------------------------------- */

static void unknown_table_and_columns(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS cols; CREATE TABLE cols (a int, \"B\" text)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    pgetl_copy *c = NULL;
    assert_int_equal(pgetl_copy_begin(conn, "no_such_table", &o, &c, &err), PGETL_ENOTFOUND);
    assert_non_null(strstr(err.message, "no_such_table"));
    pgetl_rollback(conn, NULL);
    const char *cols[] = {"a", "nope1", "b", "B", "nope2"};
    o.columns = cols;
    o.ncolumns = 5;
    assert_int_equal(pgetl_copy_begin(conn, "cols", &o, &c, &err), PGETL_ESCHEMA);
    assert_null(c);
    assert_non_null(strstr(err.message, "[nope1, b, nope2]"));
    pgetl_conn_close(conn);
}

static void hostile_identifiers(void **state) {
    (void)state;
    setup_table("DROP SCHEMA IF EXISTS \"s p\" CASCADE; CREATE SCHEMA \"s p\";"
                "CREATE TABLE \"s p\".\"we\"\"ird, line 1\" (\"co,l\"\"1\" text, \"x; DROP\" int)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    const char *cols[] = {"x; DROP", "co,l\"1"};
    o.columns = cols;
    o.ncolumns = 2;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "\"s p\".\"we\"\"ird, line 1\"", &o, &c, &err), &err);
    assert_pgetl_ok(pgetl_copy_write_row(c, (const char *const[]){"7", "v"}, NULL, &err), &err);
    /* An error inside a hostile name: the row is still found from CONTEXT. */
    assert_pgetl_ok(pgetl_copy_write_row(c, (const char *const[]){"x", "v"}, NULL, &err), &err);
    assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22P02");
    assert_non_null(strstr(err.message, "row 2, column \"x; DROP\""));
    pgetl_rollback(conn, NULL);
    assert_pgetl_ok(pgetl_copy_begin(conn, "\"s p\".\"we\"\"ird, line 1\"", &o, &c, &err), &err);
    assert_pgetl_ok(pgetl_copy_write_row(c, (const char *const[]){"7", "v"}, NULL, &err), &err);
    assert_pgetl_ok(pgetl_copy_end(c, NULL, &err), &err);
    assert_int_equal(scalar(conn, "SELECT \"x; DROP\" FROM \"s p\".\"we\"\"ird, line 1\""), 7);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

/* ---- server errors, abort, lost server ---------------------------------- */

static void unique_violation_names_row(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS big; CREATE TABLE big (id int PRIMARY KEY, v text);"
                "INSERT INTO big VALUES (500001, 'already here')");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    pgetl_copy *c = NULL;
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_pgetl_ok(pgetl_copy_begin(conn, "big", &o, &c, &err), &err);
    char id[16];
    const char *vals[2] = {id, "some text, with \"quotes\"\nand a newline"};
    for (int i = 1; i <= 600000; i++) {
        snprintf(id, sizeof id, "%d", i);
        assert_pgetl_ok(pgetl_copy_write_row(c, vals, NULL, &err), &err);
    }
    pgetl_copy_stats st;
    assert_int_equal(pgetl_copy_end(c, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
    assert_non_null(strstr(err.message, "row 500001"));
    assert_non_null(strstr(err.message, "duplicate key"));
    assert_non_null(strstr(err.context, "line 500001"));
    assert_int_equal(st.rows_read, 600000);
    assert_int_equal(st.rows_loaded, 0);
    /* Out of COPY; after rollback the connection works and nothing new is stored. */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INERROR);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM big"), 1);
    pgetl_conn_close(conn);
    PGconn *pg = harness_pq();
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM big"), 1);
    PQfinish(pg);
}

/* Binary counts tuples and CSV counts records (not physical lines): the row is still right. */
static void error_row_in_binary_and_csv(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++) {
        setup_table("DROP TABLE IF EXISTS rowno; CREATE TABLE rowno (id int CHECK (id <> 2001), "
                    "v text)");
        pgetl_conn *conn = harness_connect();
        pgetl_error err;
        pgetl_copy_options o;
        pgetl_copy_options_init(&o);
        static const pgetl_type types[2] = {PGETL_TYPE_INT32, PGETL_TYPE_TEXT};
        o.format = f ? PGETL_COPY_BINARY : PGETL_COPY_CSV;
        o.types = types;
        pgetl_copy *c = NULL;
        assert_pgetl_ok(pgetl_copy_begin(conn, "rowno", &o, &c, &err), &err);
        for (int i = 1; i <= 3000; i++) {
            if (f) {
                pgetl_value v[2] = {I(i), S("multi\nline\r\n\"value\"")};
                assert_pgetl_ok(pgetl_copy_write_values(c, v, &err), &err);
            } else {
                char id[16];
                snprintf(id, sizeof id, "%d", i);
                const char *v[2] = {id, "multi\nline\r\n\"value\""};
                assert_pgetl_ok(pgetl_copy_write_row(c, v, NULL, &err), &err);
            }
        }
        assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_ESERVER);
        assert_string_equal(err.sqlstate, "23514");
        if (!strstr(err.message, "row 2001"))
            fail_msg("format %d: %s | %s", f, err.message, err.context);
        pgetl_rollback(conn, NULL);
        pgetl_conn_close(conn);
    }
}

static void abort_leaves_connection_usable(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS ab; CREATE TABLE ab (id int)");
    for (int iso = 0; iso < 2; iso++) {
        pgetl_conn *conn = harness_connect();
        pgetl_error err;
        pgetl_copy_options o;
        pgetl_copy_options_init(&o);
        o.max_rejects = iso ? 0 : -1;
        o.batch_rows = 10;
        pgetl_copy *c = NULL;
        assert_pgetl_ok(pgetl_copy_begin(conn, "ab", &o, &c, &err), &err);
        for (int i = 0; i < 25; i++)
            assert_pgetl_ok(pgetl_copy_write_row(c, (const char *const[]){"1"}, NULL, &err), &err);
        pgetl_copy_abort(c, "caller changed its mind");
        assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INERROR);
        assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
        assert_int_equal(scalar(conn, "SELECT count(*) FROM ab"), 0);
        pgetl_conn_close(conn);
    }
    pgetl_copy_abort(NULL, NULL);
}

static void server_dies_mid_copy(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS dies; CREATE TABLE dies (id int, v text)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.chunk_bytes = 64 << 10;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "dies", &o, &c, &err), &err);
    const char *vals[2] = {"1", "some payload to fill the chunks quickly ..................."};
    for (int i = 0; i < 5000; i++)
        assert_pgetl_ok(pgetl_copy_write_row(c, vals, NULL, &err), &err);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(pgetl_conn_pg(conn)));
    PGconn *pg = harness_pq();
    harness_sql(pg, sql);
    PQfinish(pg);
    pgetl_code rc = PGETL_OK;
    for (int i = 0; i < 200000 && rc == PGETL_OK; i++)
        rc = pgetl_copy_write_row(c, vals, NULL, &err);
    if (rc != PGETL_OK)
        assert_int_equal(rc, PGETL_ECONNLOST);
    assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_ECONNLOST);
    assert_true(err.message[0] != '\0');
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_UNKNOWN);
    pgetl_conn_close(conn);
}

/* ---- memory, batches, transactions ------------------------------------ */

static void memory_bounded(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS mem; CREATE TABLE mem (id int, v text)");
    for (int iso = 0; iso < 2; iso++) {
        pgetl_conn *conn = harness_connect();
        pgetl_error err;
        pgetl_copy_options o;
        pgetl_copy_options_init(&o);
        o.chunk_bytes = 64 << 10;
        o.batch_rows = 1000;
        o.max_rejects = iso ? 10 : -1;
        pgetl_copy *c = NULL;
        assert_pgetl_ok(pgetl_copy_begin(conn, "mem", &o, &c, &err), &err);
        char v[200];
        memset(v, 'x', sizeof v - 1);
        v[sizeof v - 1] = '\0';
        const char *vals[2] = {"42", v};
        size_t cap0 = 0;
        for (int i = 0; i < 300000; i++) {
            assert_pgetl_ok(pgetl_copy_write_row(c, vals, NULL, &err), &err);
            size_t cap = pgetl__copy_buffer_capacity(c);
            if (i == 1000)
                cap0 = cap;
            if (i > 1000 && cap != cap0)
                fail_msg("buffer grew from %zu to %zu at row %d", cap0, cap, i);
        }
        /* streaming: one chunk + slack; isolation: one batch of ~205-byte rows */
        size_t bound = iso ? 2 * 1000 * 205 + (64 << 10) : 2 * ((64 << 10) + (64 << 10));
        if (cap0 > bound)
            fail_msg("capacity %zu above bound %zu", cap0, bound);
        pgetl_copy_stats st;
        assert_pgetl_ok(pgetl_copy_end(c, &st, &err), &err);
        assert_int_equal(st.rows_loaded, 300000);
        assert_int_equal(st.batches, 300);
        pgetl_rollback(conn, NULL);
        pgetl_conn_close(conn);
    }
}

/* A batch boundary sends what is buffered: the server sees the rows before end. */
static void batch_boundary_flushes(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS fl; CREATE TABLE fl (id int)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.batch_rows = 1000;
    o.chunk_bytes = 4 << 20; /* far more than 1000 rows: only the boundary flushes */
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "fl", &o, &c, &err), &err);
    for (int i = 0; i < 1000; i++)
        assert_pgetl_ok(pgetl_copy_write_row(c, (const char *const[]){"5"}, NULL, &err), &err);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(tuples_processed), -1) FROM pg_stat_progress_copy WHERE pid = %d",
             PQbackendPID(pgetl_conn_pg(conn)));
    PGconn *pg = harness_pq();
    int64_t seen = -1;
    for (int tries = 0; tries < 500 && seen != 1000; tries++) {
        seen = harness_scalar(pg, sql);
        if (seen != 1000) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    PQfinish(pg);
    assert_int_equal(seen, 1000);
    pgetl_copy_stats st;
    assert_pgetl_ok(pgetl_copy_end(c, &st, &err), &err);
    assert_int_equal(st.batches, 1);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void never_commits(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS nc; CREATE TABLE nc (id int)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy *c = NULL;
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_pgetl_ok(pgetl_copy_begin(conn, "nc", NULL, &c, &err), &err);
    assert_pgetl_ok(pgetl_copy_write_row(c, (const char *const[]){"1"}, NULL, &err), &err);
    assert_pgetl_ok(pgetl_copy_end(c, NULL, &err), &err);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    PGconn *pg = harness_pq();
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM nc"), 0);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM nc"), 1);
    PQfinish(pg);
    pgetl_conn_close(conn);
}

/* ---- allocator failure --------------------------------------------------- */

static int alloc_countdown; /* fail the allocation that brings this to 0; < 0: never */
static int alloc_failed;

static void *fail_malloc(size_t n) {
    if (alloc_countdown >= 0 && alloc_countdown-- == 0) {
        alloc_failed++;
        return NULL;
    }
    return malloc(n);
}

static void *fail_realloc(void *p, size_t n) {
    if (alloc_countdown >= 0 && alloc_countdown-- == 0) {
        alloc_failed++;
        return NULL;
    }
    return realloc(p, n);
}

/*
 * Every allocation of begin / write / end fails in turn: each run ends in
 * ENOMEM ("out of memory") or success, never a crash or leak (ASan), and the
 * connection is out of COPY and usable after rollback.
 */
static void allocation_failures_are_clean(void **state) {
    (void)state;
    setup_table("DROP TABLE IF EXISTS oom; CREATE TABLE oom (id int, v text)");
    pgetl_conn *conn = harness_connect();
    for (int iso = 0; iso < 2; iso++) {
        int k = 0;
        for (;; k++) {
            pgetl_error err;
            pgetl_copy_options o;
            pgetl_copy_options_init(&o);
            o.max_rejects = iso ? 1 : -1;
            o.batch_rows = 2;
            alloc_failed = 0;
            alloc_countdown = k;
            assert_int_equal(pgetl_set_allocator(fail_malloc, fail_realloc, free), PGETL_OK);
            pgetl_copy *c = NULL;
            pgetl_code rc = pgetl_copy_begin(conn, "oom", &o, &c, &err);
            for (int i = 0; rc == PGETL_OK && i < 5; i++)
                rc = pgetl_copy_write_row(c, (const char *const[]){"1", "x"}, NULL, &err);
            pgetl_code end = c ? pgetl_copy_end(c, NULL, &err) : rc;
            alloc_countdown = -1;
            assert_int_equal(pgetl_set_allocator(NULL, NULL, NULL), PGETL_OK);
            if (rc != PGETL_OK)
                assert_int_equal(end, rc);
            if (alloc_failed == 0) {
                assert_pgetl_ok(end, &err);
                break;
            }
            if (end != PGETL_OK) {
                assert_int_equal(end, PGETL_ENOMEM);
                assert_non_null(strstr(err.message, "out of memory"));
            }
            assert_true(pgetl_conn_txn_state(conn) != PGETL_TXN_ACTIVE);
            assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
            assert_int_equal(scalar(conn, "SELECT count(*) FROM oom"), 0);
        }
        assert_true(k > 3); /* the loop did inject failures */
        pgetl_rollback(conn, NULL);
    }
    pgetl_conn_close(conn);
}

static void bad_arguments(void **state) {
    (void)state;
    pgetl_error err;
    pgetl_copy *c = NULL;
    assert_int_equal(pgetl_copy_begin(NULL, "t", NULL, &c, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_copy_write_row(NULL, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_copy_write_values(NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_copy_end(NULL, NULL, &err), PGETL_EINVAL);
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    assert_int_equal(o.batch_rows, 50000);
    assert_int_equal(o.chunk_bytes, PGETL_COPY_CHUNK);
    assert_int_equal(o.max_rejects, -1);
    assert_int_equal(o.format, PGETL_COPY_TEXT);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_escapes_round_trip),
        cmocka_unit_test(csv_escapes_round_trip),
        cmocka_unit_test(single_column_end_marker),
        cmocka_unit_test(nul_byte_refused_and_sticky),
        cmocka_unit_test(oversized_value_refused),
        cmocka_unit_test(binary_types_round_trip),
        cmocka_unit_test(binary_type_mismatch_before_sending),
        cmocka_unit_test(binary_narrowing_overflow_names_row),
        cmocka_unit_test(unknown_table_and_columns),
        cmocka_unit_test(hostile_identifiers),
        cmocka_unit_test(unique_violation_names_row),
        cmocka_unit_test(error_row_in_binary_and_csv),
        cmocka_unit_test(abort_leaves_connection_usable),
        cmocka_unit_test(server_dies_mid_copy),
        cmocka_unit_test(memory_bounded),
        cmocka_unit_test(batch_boundary_flushes),
        cmocka_unit_test(never_commits),
        cmocka_unit_test(allocation_failures_are_clean),
        cmocka_unit_test(bad_arguments),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
