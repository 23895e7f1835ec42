/*
 * SQL injection through names. Hostile table, schema and column names go
 * through every library entry point that takes a name: pgetl_truncate_table,
 * pgetl_table_exists, pgetl_copy_begin (table and columns),
 * pgetl_copy_from_arrow (table and field names) and pgetl_load_files (table,
 * columns, CSV header cells). Each attempt either fails with a clear error
 * (a name that does not parse, no such table, no such column) or, when a
 * table or column with exactly that weird name exists, uses it literally.
 * After every attempt, whatever it returned, the work is COMMITTED (so an
 * injected statement would have taken effect) and the canary tables must
 * still exist with all their rows.
 */
#include "harness.h"
#include "arrow_fixture.h"

#include <unistd.h>

/* A table and a column whose stored names are injection attempts. */
#define WEIRD_TABLE "x\"; DROP TABLE canary; --"
#define WEIRD_TABLE_SQL "\"x\"\"; DROP TABLE canary; --\""
#define WEIRD_COL "v\"); DROP TABLE canary; --"
#define WEIRD_SCHEMA_SQL "\"s\"\"; DROP TABLE public.canary; --\""
#define WEIRD_COL_SQL "\"v\"\"); DROP TABLE canary; --\""

static PGconn *pg;
static pgetl_conn *conn;

/* Table names as a caller would pass them; none names an existing table. */
static const char *const hostile_tables[] = {
    "canary; DROP TABLE canary",
    "canary; DROP TABLE canary; --",
    "canary\"; DROP TABLE canary; --",
    "\"canary\"; DROP TABLE canary; --",
    "canary, victim",
    "canary CASCADE",
    "victim RESTART IDENTITY, canary",
    "'; DROP TABLE canary; --",
    "\"canary; DROP TABLE canary\"",
    "public.\"canary\"\" CASCADE; DROP TABLE canary; --\"",
    "public.canary; DROP TABLE canary",
    "$$; DROP TABLE canary; $$",
    "canary/**/",
    "canary --",
    "pg_catalog.pg_class; DROP TABLE canary",
    "\"x\"\"; DROP TABLE canary; --",
    "x\"; DROP TABLE canary; --",
    "public.canary.victim",
    "canary\nDROP TABLE canary",
    "\"\"",
    "",
    "(SELECT 1)",
    "canary WHERE false",
    "\"public.canary\"",
    "evil\".\"canary",
};
#define NHOSTILE (sizeof hostile_tables / sizeof hostile_tables[0])

/* Column names as given (taken literally); none names an existing column. */
static const char *const hostile_cols[] = {
    "id) FROM STDIN; DROP TABLE canary; --",
    "id\"); DROP TABLE canary; --",
    "\"id\"",
    "id, id",
    "id\" , \"id",
    "v\"\"); DROP TABLE canary; --",
    "ID",
    "id;",
    "'; DROP TABLE canary; --",
    "id\n",
};
#define NHOSTILE_COLS (sizeof hostile_cols / sizeof hostile_cols[0])

static void reset_tables(void) {
    harness_sql(pg, "DROP TABLE IF EXISTS canary, victim, " WEIRD_TABLE_SQL);
    harness_sql(pg, "DROP SCHEMA IF EXISTS " WEIRD_SCHEMA_SQL " CASCADE");
    harness_sql(pg, "CREATE SCHEMA " WEIRD_SCHEMA_SQL);
    harness_sql(pg, "CREATE TABLE " WEIRD_SCHEMA_SQL ".canary (id int)");
    harness_sql(pg, "INSERT INTO " WEIRD_SCHEMA_SQL ".canary VALUES (1)");
    harness_sql(pg, "CREATE TABLE canary (id int)");
    harness_sql(pg, "INSERT INTO canary VALUES (1), (2), (3)");
    harness_sql(pg, "CREATE TABLE victim (id serial, v text)");
    harness_sql(pg, "INSERT INTO victim (v) VALUES ('a'), ('b')");
    harness_sql(pg, "CREATE TABLE " WEIRD_TABLE_SQL " (id int, " WEIRD_COL_SQL " text)");
    harness_sql(pg, "INSERT INTO " WEIRD_TABLE_SQL " VALUES (1, 'w')");
}

/*
 * Ends the attempt's transaction with COMMIT (ROLLBACK only when the server
 * left it failed), so whatever an injected statement did would stick, then
 * checks the canaries from another connection.
 */
static void settle_and_check(const char *what) {
    pgetl_error err;
    if (pgetl_conn_txn_state(conn) == PGETL_TXN_INERROR)
        assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    else if (pgetl_conn_txn_state(conn) != PGETL_TXN_IDLE)
        assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    PGresult *r = PQexec(pg, "SELECT (SELECT count(*) FROM canary), (SELECT count(*) FROM victim),"
                             " (SELECT max(id) FROM victim)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("after %s: a canary is gone: %s", what, PQerrorMessage(pg));
    if (strcmp(PQgetvalue(r, 0, 0), "3") != 0 || strcmp(PQgetvalue(r, 0, 1), "2") != 0 ||
        strcmp(PQgetvalue(r, 0, 2), "2") != 0)
        fail_msg("after %s: canary rows changed: canary %s, victim %s (max id %s)", what,
                 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    PQclear(r);
}

/* A refused name: an error of the expected kinds, with a message. */
static void assert_refused(pgetl_code rc, const pgetl_error *err, const char *what) {
    if (rc == PGETL_OK)
        fail_msg("%s: accepted", what);
    if (rc != PGETL_EINVAL && rc != PGETL_ENOTFOUND && rc != PGETL_ESCHEMA &&
        !(rc == PGETL_ESERVER && strcmp(err->sqlstate, "42P01") == 0))
        fail_msg("%s: unexpected %s: %s", what, pgetl_code_name(rc), err->message);
    assert_true(err->message[0] != '\0');
}

static int setup(void **state) {
    (void)state;
    pg = harness_pq();
    conn = harness_connect();
    reset_tables();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    pgetl_conn_close(conn);
    PQfinish(pg);
    return 0;
}

static void truncate_and_exists(void **state) {
    (void)state;
    pgetl_error err;
    for (size_t i = 0; i < NHOSTILE; i++) {
        pgetl_code rc = pgetl_truncate_table(conn, hostile_tables[i], true, &err);
        assert_refused(rc, &err, hostile_tables[i]);
        settle_and_check(hostile_tables[i]);
        bool exists = true;
        rc = pgetl_table_exists(conn, hostile_tables[i], &exists, &err);
        if (rc == PGETL_OK)
            assert_false(exists);
        else
            assert_int_equal(rc, PGETL_EINVAL);
        settle_and_check(hostile_tables[i]);
    }
    /* Unquoted names that do not parse say why. */
    assert_int_equal(pgetl_truncate_table(conn, "canary; DROP TABLE canary", false, &err),
                     PGETL_EINVAL);
    settle_and_check("the message check");
    /* A quoted one that parses is looked up as a name and not found. */
    pgetl_code rc = pgetl_truncate_table(conn, "\"canary; DROP TABLE canary\"", false, &err);
    assert_non_null(strstr(err.message, "canary; DROP TABLE canary"));
    assert_non_null(strstr(err.message, "does not exist"));
    assert_int_not_equal(rc, PGETL_OK);
    settle_and_check("quoted");

    /* The table whose name is an injection attempt exists: used literally. */
    bool exists = false;
    assert_pgetl_ok(pgetl_table_exists(conn, WEIRD_TABLE_SQL, &exists, &err), &err);
    assert_true(exists);
    assert_pgetl_ok(pgetl_table_exists(conn, "public." WEIRD_TABLE_SQL, &exists, &err), &err);
    assert_true(exists);
    assert_pgetl_ok(pgetl_truncate_table(conn, "public." WEIRD_TABLE_SQL, false, &err), &err);
    settle_and_check("weird table truncated");
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM " WEIRD_TABLE_SQL), 0);

    /* A schema named like an attack: its canary is the one truncated. */
    assert_pgetl_ok(pgetl_table_exists(conn, WEIRD_SCHEMA_SQL ".canary", &exists, &err), &err);
    assert_true(exists);
    assert_pgetl_ok(pgetl_table_exists(conn, WEIRD_SCHEMA_SQL ".victim", &exists, &err), &err);
    assert_false(exists);
    assert_pgetl_ok(pgetl_truncate_table(conn, WEIRD_SCHEMA_SQL ".canary", false, &err), &err);
    settle_and_check("weird schema truncated");
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM " WEIRD_SCHEMA_SQL ".canary"), 0);
    assert_refused(pgetl_truncate_table(conn, WEIRD_SCHEMA_SQL ".victim", false, &err), &err,
                   "weird schema, no such table");
    settle_and_check("weird schema, no such table");
    reset_tables();
}

static void copy_begin_names(void **state) {
    (void)state;
    pgetl_error err;
    pgetl_copy *copy = NULL;
    for (size_t i = 0; i < NHOSTILE; i++) {
        pgetl_code rc = pgetl_copy_begin(conn, hostile_tables[i], NULL, &copy, &err);
        assert_null(copy);
        assert_refused(rc, &err, hostile_tables[i]);
        settle_and_check(hostile_tables[i]);
    }
    for (size_t i = 0; i < NHOSTILE_COLS; i++) {
        const char *cols[] = {hostile_cols[i]};
        pgetl_copy_options o;
        pgetl_copy_options_init(&o);
        o.columns = cols;
        o.ncolumns = 1;
        pgetl_code rc = pgetl_copy_begin(conn, "canary", &o, &copy, &err);
        assert_null(copy);
        assert_int_equal(rc, PGETL_ESCHEMA);
        if (!strstr(err.message, hostile_cols[i]))
            fail_msg("the error does not name column \"%s\": %s", hostile_cols[i], err.message);
        settle_and_check(hostile_cols[i]);
    }
    /* The weird column of the weird table: used as it is. */
    const char *cols[] = {"id", WEIRD_COL};
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 2;
    assert_pgetl_ok(pgetl_copy_begin(conn, WEIRD_TABLE_SQL, &o, &copy, &err), &err);
    const char *row[] = {"2", "'); DROP TABLE canary; --"};
    assert_pgetl_ok(pgetl_copy_write_row(copy, row, NULL, &err), &err);
    assert_pgetl_ok(pgetl_copy_end(copy, NULL, &err), &err);
    settle_and_check("weird COPY");
    assert_int_equal(harness_scalar(pg,
                                    "SELECT count(*) FROM " WEIRD_TABLE_SQL " WHERE " WEIRD_COL_SQL
                                    " = '''); DROP TABLE canary; --' AND id = 2"),
                     1);
    reset_tables();
}

/* A one-column (int32) stream with field `name`, values 7 and 8. */
static void int_stream(struct ArrowArrayStream *st, const char *name) {
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 1);
    fx_schema(fx_schema_child(&s, 0), "i", name, 0);
    struct ArrowArray b;
    fx_struct(&b, 2, 1);
    int32_t v[] = {7, 8};
    fx_prim(fx_child(&b, 0), 2, v, sizeof v[0], NULL);
    fx_stream(st, &s, &b, 1, -1);
}

static void arrow_names(void **state) {
    (void)state;
    pgetl_error err;
    struct ArrowArrayStream st;
    for (size_t i = 0; i < NHOSTILE; i++) {
        int_stream(&st, "id");
        pgetl_code rc = pgetl_copy_from_arrow(conn, hostile_tables[i], &st, NULL, 0, NULL, &err);
        assert_refused(rc, &err, hostile_tables[i]);
        assert_null(st.release);
        settle_and_check(hostile_tables[i]);
    }
    for (size_t i = 0; i < NHOSTILE_COLS; i++) {
        /* As a field name (columns taken from the schema) ... */
        int_stream(&st, hostile_cols[i]);
        pgetl_code rc = pgetl_copy_from_arrow(conn, "canary", &st, NULL, 0, NULL, &err);
        assert_int_equal(rc, PGETL_ESCHEMA);
        if (!strstr(err.message, hostile_cols[i]))
            fail_msg("the error does not name field \"%s\": %s", hostile_cols[i], err.message);
        settle_and_check(hostile_cols[i]);
        /* ... and as an explicit column list naming that field. */
        int_stream(&st, hostile_cols[i]);
        const char *cols[] = {hostile_cols[i]};
        rc = pgetl_copy_from_arrow(conn, "canary", &st, cols, 1, NULL, &err);
        assert_int_equal(rc, PGETL_ESCHEMA);
        settle_and_check(hostile_cols[i]);
    }
    assert_int_equal(fx_live(), 0);

    /* A field named like the weird column loads into it, literally. */
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 2);
    fx_schema(fx_schema_child(&s, 0), "i", "id", 0);
    fx_schema(fx_schema_child(&s, 1), "u", WEIRD_COL, 0);
    struct ArrowArray b;
    fx_struct(&b, 1, 2);
    int32_t v[] = {5};
    fx_prim(fx_child(&b, 0), 1, v, sizeof v[0], NULL);
    fx_strings(fx_child(&b, 1), 1, (const char *[]){"arrow"}, false);
    fx_stream(&st, &s, &b, 1, -1);
    pgetl_copy_stats stats;
    assert_pgetl_ok(
        pgetl_copy_from_arrow(conn, "public." WEIRD_TABLE_SQL, &st, NULL, 0, &stats, &err), &err);
    assert_int_equal(stats.rows_loaded, 1);
    settle_and_check("weird Arrow load");
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM " WEIRD_TABLE_SQL
                                        " WHERE id = 5 AND " WEIRD_COL_SQL " = 'arrow'"),
                     1);
    assert_int_equal(fx_live(), 0);
    reset_tables();
}

static char *write_csv(const char *content) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/pgetl_injection_%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static void load_names(void **state) {
    (void)state;
    pgetl_config cfg = harness_config();
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &pool, &err), &err);
    const char *path = write_csv("id\n1\n");
    pgetl_load_options o;
    for (size_t i = 0; i < NHOSTILE; i++) {
        pgetl_load_options_init(&o);
        o.table = hostile_tables[i];
        pgetl_code rc = pgetl_load_files(pool, &path, 1, &o, NULL, &err);
        assert_refused(rc, &err, hostile_tables[i]);
        settle_and_check(hostile_tables[i]);
    }
    char csv[512];
    for (size_t i = 0; i < NHOSTILE_COLS; i++) {
        /* As --columns ... */
        const char *cols[] = {hostile_cols[i]};
        pgetl_load_options_init(&o);
        o.table = "canary";
        o.columns = cols;
        o.ncolumns = 1;
        pgetl_code rc = pgetl_load_files(pool, &path, 1, &o, NULL, &err);
        assert_int_equal(rc, PGETL_ESCHEMA);
        settle_and_check(hostile_cols[i]);
        /* ... and as a (CSV-quoted) header cell. */
        char cell[256];
        size_t k = 0;
        cell[k++] = '"';
        for (const char *p = hostile_cols[i]; *p && k < sizeof cell - 3; p++) {
            if (*p == '"')
                cell[k++] = '"';
            cell[k++] = *p;
        }
        cell[k++] = '"';
        cell[k] = '\0';
        snprintf(csv, sizeof csv, "%s\n1\n", cell);
        const char *hpath = write_csv(csv);
        pgetl_load_options_init(&o);
        o.table = "canary";
        rc = pgetl_load_files(pool, &hpath, 1, &o, NULL, &err);
        if (strcmp(hostile_cols[i], "ID") == 0) {
            /* A header name folds like an unquoted identifier: ID is column id. */
            assert_pgetl_ok(rc, &err);
            harness_sql(pg, "DELETE FROM canary WHERE id = 1 AND ctid <> (SELECT min(ctid) FROM "
                            "canary WHERE id = 1)");
        } else {
            assert_int_equal(rc, PGETL_ESCHEMA);
        }
        settle_and_check(hostile_cols[i]);
    }
    /* The weird table and column, through the header and through columns. */
    path = write_csv("id,"
                     "\"v\"\"); DROP TABLE canary; --\""
                     "\n9,hdr\n");
    pgetl_load_options_init(&o);
    o.table = WEIRD_TABLE_SQL;
    assert_pgetl_ok(pgetl_load_files(pool, &path, 1, &o, NULL, &err), &err);
    const char *cols[] = {"id", WEIRD_COL};
    o.columns = cols;
    o.ncolumns = 2;
    path = write_csv("a,b\n10,cols\n");
    assert_pgetl_ok(pgetl_load_files(pool, &path, 1, &o, NULL, &err), &err);
    settle_and_check("weird loads");
    assert_int_equal(harness_scalar(pg,
                                    "SELECT count(*) FROM " WEIRD_TABLE_SQL
                                    " WHERE (id, " WEIRD_COL_SQL ") IN ((9, 'hdr'), (10, 'cols'))"),
                     2);
    unlink(path);
    pgetl_pool_destroy(pool);
    reset_tables();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(truncate_and_exists),
        cmocka_unit_test(copy_begin_names),
        cmocka_unit_test(arrow_names),
        cmocka_unit_test(load_names),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
