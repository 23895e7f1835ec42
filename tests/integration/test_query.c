/*
 * Query helpers against a real server: execute, fetchall and the typed
 * getters, truncate_table and table_exists. Everything lives in schema
 * "tq" so other test binaries can share the cluster.
 */
#include "harness.h"

#include <math.h>
#include <pthread.h>

typedef harness_canary fixture;

static int setup(void **state) {
    *state = harness_canary_fixture("tq");
    return 0;
}

static int teardown(void **state) {
    harness_canary_free(*state);
    return 0;
}

static void assert_contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle))
        fail_msg("expected <%s> in <%s>", needle, haystack);
}

/* ---- execute ------------------------------------------------------------------- */

static void test_execute_params_null_unicode_empty(void **state) {
    fixture *f = *state;
    harness_sql(f->pq, "CREATE TABLE tq.t (id int, s text)");
    pgetl_error err;
    int64_t rows = -1;
    const char *p1[] = {"1", "😀 four-byte ✓"};
    assert_pgetl_ok(pgetl_execute(f->conn, "INSERT INTO tq.t VALUES ($1, $2)", 2, p1, &rows, &err),
                    &err);
    assert_int_equal(rows, 1);
    const char *p2[] = {"2", ""};
    assert_pgetl_ok(pgetl_execute(f->conn, "INSERT INTO tq.t VALUES ($1, $2)", 2, p2, NULL, &err),
                    &err);
    const char *p3[] = {"3", NULL};
    assert_pgetl_ok(pgetl_execute(f->conn, "INSERT INTO tq.t VALUES ($1, $2)", 2, p3, NULL, &err),
                    &err);
    /* A value that looks like SQL is only ever a value. */
    const char *p4[] = {"4", "x'); DROP TABLE tq.canary; --"};
    assert_pgetl_ok(pgetl_execute(f->conn, "INSERT INTO tq.t VALUES ($1, $2)", 2, p4, NULL, &err),
                    &err);
    assert_int_equal(pgetl_conn_txn_state(f->conn), PGETL_TXN_INTRANS);
    /* The helper opened a transaction and did not commit it. */
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.t"), 0);
    assert_pgetl_ok(pgetl_commit(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.t"), 4);
    assert_int_equal(
        harness_scalar(f->pq, "SELECT count(*) FROM tq.t WHERE id = 1 AND s = '😀 four-byte ✓' "
                              "AND octet_length(s) = 18"),
        1);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.t WHERE id = 2 AND s = ''"),
                     1);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.t WHERE id = 3 AND s IS NULL"),
                     1);
    assert_int_equal(
        harness_scalar(f->pq, "SELECT count(*) FROM tq.t WHERE s = 'x''); DROP TABLE tq.canary; --'"),
        1);
    harness_assert_canary(f);

    assert_pgetl_ok(pgetl_execute(f->conn, "UPDATE tq.t SET s = 'u' WHERE id > $1", 1,
                                  (const char *[]){"1"}, &rows, &err),
                    &err);
    assert_int_equal(rows, 3);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.t WHERE s = 'u'"), 0);
}

static void test_execute_bad_sql(void **state) {
    fixture *f = *state;
    pgetl_error err;
    assert_int_equal(pgetl_execute(f->conn, "SELEC 1", 0, NULL, NULL, &err), PGETL_ESERVER);
    assert_int_equal(err.code, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42601");
    assert_contains(err.message, "syntax error at or near \"SELEC\"");
    /* The failed statement aborted the helper's transaction; the caller ends it. */
    assert_int_equal(pgetl_conn_txn_state(f->conn), PGETL_TXN_INERROR);
    assert_int_equal(pgetl_execute(f->conn, "SELECT 1", 0, NULL, NULL, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "25P02");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_pgetl_ok(pgetl_execute(f->conn, "SELECT 1", 0, NULL, NULL, &err), &err);

    /* An unknown table: 42P01 with the server's text. */
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_int_equal(pgetl_execute(f->conn, "SELECT * FROM tq.nope", 0, NULL, NULL, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42P01");
    assert_contains(err.message, "relation \"tq.nope\" does not exist");
}

static void test_execute_wrong_param_count(void **state) {
    fixture *f = *state;
    pgetl_error err;
    assert_int_equal(pgetl_execute(f->conn, "SELECT $1::int", 0, NULL, NULL, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "08P01");
    assert_contains(err.message,
                    "bind message supplies 0 parameters, but prepared statement \"\" requires 1");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    const char *two[] = {"1", "2"};
    assert_int_equal(pgetl_execute(f->conn, "SELECT $1::int", 2, two, NULL, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "08P01");
    assert_contains(err.message, "supplies 2 parameters");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    /* A parameter that is not of the type. */
    assert_int_equal(pgetl_execute(f->conn, "SELECT $1::int", 1, (const char *[]){"12abc"}, NULL,
                                   &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22P02");
    assert_contains(err.message, "invalid input syntax for type integer: \"12abc\"");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

static void test_execute_refuses_two_statements(void **state) {
    fixture *f = *state;
    pgetl_error err;
    assert_int_equal(pgetl_execute(f->conn, "SELECT 1; DROP TABLE tq.canary", 0, NULL, NULL, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42601");
    assert_contains(err.message, "cannot insert multiple commands into a prepared statement");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    harness_assert_canary(f);
}

static void test_execute_error_fields(void **state) {
    fixture *f = *state;
    pgetl_error err;
    assert_int_equal(pgetl_execute(f->conn,
                                   "DO $$BEGIN RAISE EXCEPTION 'boom %', 1 USING "
                                   "DETAIL = 'the detail', HINT = 'the hint', "
                                   "ERRCODE = '22012'; END$$",
                                   0, NULL, NULL, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22012");
    assert_contains(err.message, "boom 1");
    assert_string_equal(err.detail, "the detail");
    assert_string_equal(err.hint, "the hint");
    assert_contains(err.context, "PL/pgSQL function inline_code_block");
    char buf[4096];
    pgetl_error_format(&err, buf, sizeof buf);
    assert_contains(buf, "[SQLSTATE 22012]\nDETAIL: the detail\nHINT: the hint\nCONTEXT: ");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);

    harness_sql(f->pq, "CREATE TABLE tq.u (id int PRIMARY KEY)");
    harness_sql(f->pq, "INSERT INTO tq.u VALUES (1)");
    assert_int_equal(pgetl_execute(f->conn, "INSERT INTO tq.u VALUES ($1)", 1,
                                   (const char *[]){"1"}, NULL, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
    assert_contains(err.message, "duplicate key value violates unique constraint \"u_pkey\"");
    assert_string_equal(err.detail, "Key (id)=(1) already exists.");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

static void test_execute_copy_refused(void **state) {
    fixture *f = *state;
    harness_sql(f->pq, "CREATE TABLE tq.c (id int)");
    pgetl_error err;
    assert_int_equal(pgetl_execute(f->conn, "COPY tq.c FROM STDIN", 0, NULL, NULL, &err),
                     PGETL_EUNSUPPORTED);
    assert_contains(err.message, "COPY");
    /* Ending a COPY FROM STDIN early fails it, so the transaction is aborted. */
    assert_int_equal(pgetl_conn_txn_state(f->conn), PGETL_TXN_INERROR);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    pgetl_result *res = NULL;
    assert_int_equal(pgetl_fetchall(f->conn, "COPY (SELECT g FROM generate_series(1, 100000) g) "
                                             "TO STDOUT",
                                    0, NULL, &res, &err),
                     PGETL_EUNSUPPORTED);
    assert_null(res);
    /* The connection is left usable; nothing was loaded. */
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_pgetl_ok(pgetl_execute(f->conn, "SELECT 1", 0, NULL, NULL, &err), &err);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.c"), 0);
}

static void test_execute_bad_arguments(void **state) {
    fixture *f = *state;
    pgetl_error err;
    assert_int_equal(pgetl_execute(NULL, "SELECT 1", 0, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_execute(f->conn, NULL, 0, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_execute(f->conn, "SELECT $1", 1, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_execute(f->conn, "SELECT 1", -1, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_fetchall(f->conn, "SELECT 1", 0, NULL, NULL, &err), PGETL_EINVAL);
    /* NULL err is accepted everywhere. */
    assert_int_equal(pgetl_execute(f->conn, "SELEC", 0, NULL, NULL, NULL), PGETL_ESERVER);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

/* ---- fetchall and results ---------------------------------------------------------- */

static void test_fetchall_values(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(f->conn,
                                   "SELECT * FROM (VALUES (1, 'a'::text, $1::text), "
                                   "(2, '', NULL), (3, NULL, '😀')) AS v(id, \"MyCol\", other) "
                                   "ORDER BY id",
                                   1, (const char *[]){"p"}, &res, &err),
                    &err);
    assert_int_equal(pgetl_result_nrows(res), 3);
    assert_int_equal(pgetl_result_ncols(res), 3);
    assert_string_equal(pgetl_result_colname(res, 0), "id");
    assert_string_equal(pgetl_result_colname(res, 1), "MyCol");
    assert_null(pgetl_result_colname(res, 3));
    assert_null(pgetl_result_colname(res, -1));
    assert_int_equal(pgetl_result_colindex(res, "MyCol"), 1);
    assert_int_equal(pgetl_result_colindex(res, "mycol"), -1); /* exact, no folding */
    assert_int_equal(pgetl_result_colindex(res, "\"MyCol\""), -1);
    assert_int_equal(pgetl_result_colindex(res, "nope"), -1);
    assert_int_equal(pgetl_result_coltype(res, 0), 23);
    assert_int_equal(pgetl_result_coltype(res, 1), 25);
    assert_int_equal(pgetl_result_coltype(res, 9), 0);

    size_t len = 99;
    assert_string_equal(pgetl_result_get(res, 0, 1, &len), "a");
    assert_int_equal(len, 1);
    assert_string_equal(pgetl_result_get_by_name(res, 0, "other", &len), "p");
    /* Empty string and NULL stay distinct. */
    const char *empty = pgetl_result_get(res, 1, 1, &len);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    assert_int_equal(len, 0);
    assert_false(pgetl_result_isnull(res, 1, 1));
    assert_null(pgetl_result_get(res, 2, 1, &len));
    assert_int_equal(len, 0);
    assert_true(pgetl_result_isnull(res, 2, 1));
    assert_string_equal(pgetl_result_get_by_name(res, 2, "other", &len), "😀");
    assert_int_equal(len, 4);
    /* Out of range reads are NULL, never a crash. */
    assert_null(pgetl_result_get(res, 3, 0, NULL));
    assert_null(pgetl_result_get(res, -1, 0, NULL));
    assert_null(pgetl_result_get(res, 0, 3, NULL));
    assert_null(pgetl_result_get_by_name(res, 0, "nope", NULL));
    assert_true(pgetl_result_isnull(res, 5, 5));
    pgetl_result_free(res);
    pgetl_result_free(NULL);
    assert_int_equal(pgetl_result_nrows(NULL), 0);
    assert_int_equal(pgetl_result_ncols(NULL), 0);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

static void test_fetchall_many_rows_and_no_rows(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(f->conn, "SELECT g, g * 2 AS d FROM generate_series(1, $1::int) g",
                                   1, (const char *[]){"50000"}, &res, &err),
                    &err);
    assert_int_equal(pgetl_result_nrows(res), 50000);
    int64_t v;
    assert_pgetl_ok(pgetl_result_get_int64(res, 49999, pgetl_result_colindex(res, "d"), &v, &err),
                    &err);
    assert_int_equal(v, 100000);
    pgetl_result_free(res);

    assert_pgetl_ok(pgetl_fetchall(f->conn, "SELECT 1 AS x WHERE false", 0, NULL, &res, &err),
                    &err);
    assert_int_equal(pgetl_result_nrows(res), 0);
    assert_int_equal(pgetl_result_ncols(res), 1);
    assert_int_equal(pgetl_result_get_int64(res, 0, 0, &v, &err), PGETL_EINVAL);
    pgetl_result_free(res);

    /* A command without rows gives an empty result, not an error. */
    harness_sql(f->pq, "CREATE TABLE tq.t (id int)");
    assert_pgetl_ok(pgetl_fetchall(f->conn, "INSERT INTO tq.t VALUES (1)", 0, NULL, &res, &err),
                    &err);
    assert_int_equal(pgetl_result_nrows(res), 0);
    assert_int_equal(pgetl_result_ncols(res), 0);
    pgetl_result_free(res);

    /* Errors leave *result_out NULL. */
    res = (pgetl_result *)&err;
    assert_int_equal(pgetl_fetchall(f->conn, "SELECT 1/0", 0, NULL, &res, &err), PGETL_ESERVER);
    assert_null(res);
    assert_string_equal(err.sqlstate, "22012");
    assert_contains(err.message, "division by zero");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

static void test_typed_int64(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(
        pgetl_fetchall(f->conn,
                       "SELECT 9223372036854775807::int8, (-9223372036854775807 - 1)::int8, 0, "
                       "'9223372036854775808'::text, '-9223372036854775809'::text, '12abc'::text, "
                       "' 12'::text, ''::text, NULL::int, '1.0'::text, '-'::text, "
                       "'99999999999999999999999'::text, -17",
                       0, NULL, &res, &err),
        &err);
    int64_t v = 7;
    assert_pgetl_ok(pgetl_result_get_int64(res, 0, 0, &v, &err), &err);
    assert_true(v == INT64_MAX);
    assert_pgetl_ok(pgetl_result_get_int64(res, 0, 1, &v, &err), &err);
    assert_true(v == INT64_MIN);
    assert_pgetl_ok(pgetl_result_get_int64(res, 0, 2, &v, &err), &err);
    assert_int_equal(v, 0);
    assert_pgetl_ok(pgetl_result_get_int64(res, 0, 12, &v, &err), &err);
    assert_int_equal(v, -17);
    v = 7;
    assert_int_equal(pgetl_result_get_int64(res, 0, 3, &v, &err), PGETL_EOVERFLOW);
    assert_contains(err.message, "\"9223372036854775808\" does not fit in 64 bits");
    assert_int_equal(v, 7); /* untouched on error */
    assert_int_equal(pgetl_result_get_int64(res, 0, 4, &v, &err), PGETL_EOVERFLOW);
    assert_int_equal(pgetl_result_get_int64(res, 0, 11, &v, &err), PGETL_EOVERFLOW);
    assert_int_equal(pgetl_result_get_int64(res, 0, 5, &v, &err), PGETL_EDATA);
    assert_contains(err.message, "\"12abc\" is not an integer");
    assert_int_equal(pgetl_result_get_int64(res, 0, 6, &v, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_int64(res, 0, 7, &v, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_int64(res, 0, 8, &v, &err), PGETL_EDATA);
    assert_contains(err.message, "NULL");
    assert_int_equal(pgetl_result_get_int64(res, 0, 9, &v, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_int64(res, 0, 10, &v, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_int64(res, 0, 13, &v, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_result_get_int64(res, 1, 0, &v, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_result_get_int64(NULL, 0, 0, &v, &err), PGETL_EINVAL);
    assert_int_equal(v, 7);
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

static void test_typed_double_bool(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(f->conn,
                                   "SELECT 1.5::float8, 'NaN'::float8, 'Infinity'::float8, "
                                   "'-Infinity'::float8, 1e308::float8, 123.456::numeric, "
                                   "'1e400'::text, 'abc'::text, '0x10'::text, 'inf'::text, "
                                   "'1.5 '::text, NULL::float8, -2.5e-3::float8, 42, "
                                   "true, false, 'true'::text, ''::text, NULL::bool, 'tt'::text",
                                   0, NULL, &res, &err),
                    &err);
    double d = 0;
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 0, &d, &err), &err);
    assert_true(d == 1.5);
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 1, &d, &err), &err);
    assert_true(isnan(d));
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 2, &d, &err), &err);
    assert_true(isinf(d) && d > 0);
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 3, &d, &err), &err);
    assert_true(isinf(d) && d < 0);
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 4, &d, &err), &err);
    assert_true(d == 1e308);
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 5, &d, &err), &err);
    assert_true(d == 123.456);
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 12, &d, &err), &err);
    assert_true(d == -2.5e-3);
    assert_pgetl_ok(pgetl_result_get_double(res, 0, 13, &d, &err), &err);
    assert_true(d == 42.0);
    d = 9;
    assert_int_equal(pgetl_result_get_double(res, 0, 6, &d, &err), PGETL_EOVERFLOW);
    assert_contains(err.message, "\"1e400\" does not fit in a double");
    assert_int_equal(pgetl_result_get_double(res, 0, 7, &d, &err), PGETL_EDATA);
    assert_contains(err.message, "\"abc\" is not a number");
    assert_int_equal(pgetl_result_get_double(res, 0, 8, &d, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_double(res, 0, 9, &d, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_double(res, 0, 10, &d, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_double(res, 0, 11, &d, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_double(res, 0, 99, &d, &err), PGETL_EINVAL);
    assert_true(d == 9);

    bool b = false;
    assert_pgetl_ok(pgetl_result_get_bool(res, 0, 14, &b, &err), &err);
    assert_true(b);
    assert_pgetl_ok(pgetl_result_get_bool(res, 0, 15, &b, &err), &err);
    assert_false(b);
    assert_int_equal(pgetl_result_get_bool(res, 0, 16, &b, &err), PGETL_EDATA);
    assert_contains(err.message, "\"true\" is not a boolean");
    assert_int_equal(pgetl_result_get_bool(res, 0, 17, &b, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_bool(res, 0, 18, &b, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_bool(res, 0, 19, &b, &err), PGETL_EDATA);
    assert_int_equal(pgetl_result_get_bool(res, 0, -1, &b, &err), PGETL_EINVAL);
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

/* ---- truncate_table ------------------------------------------------------------------ */

static void test_truncate_then_rollback(void **state) {
    fixture *f = *state;
    harness_sql(f->pq, "CREATE TABLE tq.t AS SELECT g AS id FROM generate_series(1, 10) g");
    pgetl_error err;
    assert_pgetl_ok(pgetl_truncate_table(f->conn, "tq.t", false, &err), &err);
    assert_int_equal(pgetl_conn_txn_state(f->conn), PGETL_TXN_INTRANS);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(f->conn, "SELECT count(*) FROM tq.t", 0, NULL, &res, &err),
                    &err);
    assert_string_equal(pgetl_result_get(res, 0, 0, NULL), "0");
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.t"), 10);
    /* Committed by the caller, it sticks. */
    assert_pgetl_ok(pgetl_truncate_table(f->conn, "tq.t", false, &err), &err);
    assert_pgetl_ok(pgetl_commit(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.t"), 0);
}

static void test_truncate_fk_cascade(void **state) {
    fixture *f = *state;
    harness_sql(f->pq, "CREATE TABLE tq.parent (id int PRIMARY KEY)");
    harness_sql(f->pq, "CREATE TABLE tq.child (pid int REFERENCES tq.parent)");
    harness_sql(f->pq, "INSERT INTO tq.parent VALUES (1), (2)");
    harness_sql(f->pq, "INSERT INTO tq.child VALUES (1), (2), (2)");
    pgetl_error err;
    assert_int_equal(pgetl_truncate_table(f->conn, "tq.parent", false, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "0A000");
    assert_contains(err.message, "cannot truncate a table referenced in a foreign key constraint");
    assert_contains(err.message, "TRUNCATE TABLE \"tq\".\"parent\"");
    assert_contains(err.hint, "TRUNCATE ... CASCADE");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.parent"), 2);

    assert_pgetl_ok(pgetl_truncate_table(f->conn, "tq.parent", true, &err), &err);
    assert_pgetl_ok(pgetl_commit(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.parent"), 0);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.child"), 0);
}

static void test_truncate_names(void **state) {
    fixture *f = *state;
    harness_sql(f->pq, "CREATE TABLE tq.\"MyTable\" (id int)");
    harness_sql(f->pq, "CREATE TABLE tq.mytable (id int)");
    harness_sql(f->pq, "CREATE TABLE tq.\"x\"\"; DROP TABLE tq.canary; --\" (id int)");
    harness_sql(f->pq, "CREATE TABLE tq.\"sp ace;😀\" (id int)");
    harness_sql(f->pq, "INSERT INTO tq.\"MyTable\" VALUES (1)");
    harness_sql(f->pq, "INSERT INTO tq.mytable VALUES (1)");
    harness_sql(f->pq, "INSERT INTO tq.\"x\"\"; DROP TABLE tq.canary; --\" VALUES (1)");
    harness_sql(f->pq, "INSERT INTO tq.\"sp ace;😀\" VALUES (1)");
    pgetl_error err;

    /* Unquoted folds: only tq.mytable goes. */
    assert_pgetl_ok(pgetl_truncate_table(f->conn, "TQ.MyTable", false, &err), &err);
    assert_pgetl_ok(pgetl_commit(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.mytable"), 0);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.\"MyTable\""), 1);
    assert_pgetl_ok(pgetl_truncate_table(f->conn, "tq.\"MyTable\"", false, &err), &err);
    assert_pgetl_ok(pgetl_commit(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.\"MyTable\""), 0);

    /* The hostile text, unquoted, does not parse: nothing runs. */
    assert_int_equal(pgetl_truncate_table(f->conn, "x\"; DROP TABLE tq.canary; --", false, &err),
                     PGETL_EINVAL);
    assert_contains(err.message, "invalid table name");
    assert_int_equal(pgetl_truncate_table(f->conn, "tq.canary; DROP TABLE tq.canary", false, &err),
                     PGETL_EINVAL);
    assert_int_equal(pgetl_conn_txn_state(f->conn), PGETL_TXN_IDLE);
    /* Quoted, it is a name: that table (and only it) is truncated. */
    assert_pgetl_ok(
        pgetl_truncate_table(f->conn, "tq.\"x\"\"; DROP TABLE tq.canary; --\"", false, &err), &err);
    assert_pgetl_ok(pgetl_truncate_table(f->conn, "\"tq\".\"sp ace;😀\"", false, &err), &err);
    assert_pgetl_ok(pgetl_commit(f->conn, &err), &err);
    assert_int_equal(
        harness_scalar(f->pq, "SELECT count(*) FROM tq.\"x\"\"; DROP TABLE tq.canary; --\""), 0);
    assert_int_equal(harness_scalar(f->pq, "SELECT count(*) FROM tq.\"sp ace;😀\""), 0);
    harness_assert_canary(f);

    /* Missing tables, three-part and over-long names. */
    assert_int_equal(pgetl_truncate_table(f->conn, "tq.nope", false, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42P01");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_int_equal(pgetl_truncate_table(f->conn, "postgres.tq.canary", false, &err),
                     PGETL_EINVAL);
    assert_int_equal(
        pgetl_truncate_table(
            f->conn, "tq.canary_with_a_name_that_is_much_longer_than_the_sixty_three_byte_limit",
            false, &err),
        PGETL_EINVAL);
    assert_contains(err.message, "longer than 63 bytes");
    assert_int_equal(pgetl_truncate_table(f->conn, NULL, false, &err), PGETL_EINVAL);
    harness_assert_canary(f);
}

/* ---- table_exists ------------------------------------------------------------------- */

static bool exists(fixture *f, const char *name) {
    bool e = false;
    pgetl_error err;
    assert_pgetl_ok(pgetl_table_exists(f->conn, name, &e, &err), &err);
    return e;
}

static void test_table_exists_kinds(void **state) {
    fixture *f = *state;
    harness_sql(f->pq, "CREATE TABLE tq.t (id int PRIMARY KEY)");
    harness_sql(f->pq, "CREATE VIEW tq.v AS SELECT 1 AS x");
    harness_sql(f->pq, "CREATE MATERIALIZED VIEW tq.mv AS SELECT 1 AS x");
    harness_sql(f->pq, "CREATE TABLE tq.p (id int) PARTITION BY RANGE (id)");
    harness_sql(f->pq, "CREATE SEQUENCE tq.seq");
    harness_sql(f->pq, "CREATE TYPE tq.comp AS (a int)");
    harness_sql(f->pq, "DROP FOREIGN DATA WRAPPER IF EXISTS tq_fdw CASCADE");
    harness_sql(f->pq, "CREATE FOREIGN DATA WRAPPER tq_fdw");
    harness_sql(f->pq, "CREATE SERVER tq_srv FOREIGN DATA WRAPPER tq_fdw");
    harness_sql(f->pq, "CREATE FOREIGN TABLE tq.ft (a int) SERVER tq_srv");
    harness_sql(f->pq, "CREATE TABLE tq.\"MixedCase\" (id int)");

    assert_true(exists(f, "tq.t"));
    assert_true(exists(f, "tq.v"));
    assert_true(exists(f, "tq.mv"));
    assert_true(exists(f, "tq.p"));
    assert_true(exists(f, "tq.ft"));
    assert_true(exists(f, "\"tq\".\"MixedCase\""));
    assert_false(exists(f, "tq.MixedCase"));
    assert_false(exists(f, "tq.t_pkey")); /* an index */
    assert_false(exists(f, "tq.seq"));
    assert_false(exists(f, "tq.comp"));
    assert_false(exists(f, "tq.nope"));
    assert_false(exists(f, "no_such_schema.t"));
    /* The helper opened a transaction and leaves it to the caller. */
    assert_int_equal(pgetl_conn_txn_state(f->conn), PGETL_TXN_INTRANS);
    pgetl_error err;
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    harness_sql(f->pq, "DROP SCHEMA tq CASCADE");
    harness_sql(f->pq, "CREATE SCHEMA tq");
    harness_sql(f->pq, "DROP FOREIGN DATA WRAPPER tq_fdw CASCADE");
}

static void test_table_exists_search_path(void **state) {
    fixture *f = *state;
    harness_sql(f->pq, "CREATE TABLE tq.only_here (id int)");
    pgetl_error err;
    assert_false(exists(f, "only_here"));
    assert_true(exists(f, "tq.only_here"));
    assert_pgetl_ok(pgetl_execute(f->conn, "SET LOCAL search_path = tq, public", 0, NULL, NULL, &err),
                    &err);
    assert_true(exists(f, "only_here"));
    assert_true(exists(f, "ONLY_HERE"));
    assert_false(exists(f, "\"ONLY_HERE\""));
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_false(exists(f, "only_here"));
    /* Temporary tables: found unqualified, as the server finds them. */
    assert_pgetl_ok(pgetl_execute(f->conn, "CREATE TEMP TABLE tmp_q (id int)", 0, NULL, NULL, &err),
                    &err);
    assert_true(exists(f, "tmp_q"));
    assert_true(exists(f, "pg_temp.tmp_q"));
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_false(exists(f, "tmp_q"));
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

static void test_table_exists_hostile(void **state) {
    fixture *f = *state;
    pgetl_error err;
    bool e = true;
    const char *bad[] = {"x\"; DROP TABLE tq.canary; --", "tq.canary; DROP TABLE tq.canary",
                         "a.b.c", "", ".", "tq.", "\"unterminated",
                         "tq.canary_with_a_name_that_is_much_longer_than_the_sixty_three_byte_limit",
                         "t' OR '1'='1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = true;
        assert_int_equal(pgetl_table_exists(f->conn, bad[i], &e, &err), PGETL_EINVAL);
        assert_false(e);
        assert_contains(err.message, "invalid table name");
    }
    assert_int_equal(pgetl_table_exists(f->conn, NULL, &e, &err), PGETL_EINVAL);
    /* Well-formed hostile names are just names that do not exist. */
    assert_false(exists(f, "tq.\"x\"\"; DROP TABLE tq.canary; --\""));
    assert_false(exists(f, "\"tq.canary\""));
    assert_false(exists(f, "\"'; SELECT pg_sleep(10); --\""));
    assert_false(exists(f, "tq.\"😀🙃\""));
    assert_true(exists(f, "tq.canary"));
    /* Bytes that are not UTF-8 get the server's clear error, not a crash. */
    assert_int_equal(pgetl_table_exists(f->conn, "tq.\"\xff\xfe\"", &e, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22021");
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    harness_assert_canary(f);
}

/* ---- a connection that dies under us ----------------------------------------------------- */

static void test_connection_lost(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(f->conn, "SELECT pg_backend_pid()", 0, NULL, &res, &err), &err);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s, 10000)::int",
             pgetl_result_get(res, 0, 0, NULL));
    pgetl_result_free(res);
    assert_int_equal(harness_scalar(f->pq, sql), 1);

    assert_int_equal(pgetl_execute(f->conn, "SELECT 1", 0, NULL, NULL, &err), PGETL_ECONNLOST);
    assert_int_equal(err.code, PGETL_ECONNLOST);
    assert_true(err.message[0] != '\0');
    /* Every later call says the same, cleanly. */
    assert_int_equal(pgetl_fetchall(f->conn, "SELECT 1", 0, NULL, &res, &err), PGETL_ECONNLOST);
    assert_null(res);
    bool e;
    assert_int_equal(pgetl_table_exists(f->conn, "tq.canary", &e, &err), PGETL_ECONNLOST);
    assert_int_equal(pgetl_truncate_table(f->conn, "tq.canary", false, &err), PGETL_ECONNLOST);
    harness_assert_canary(f);
}

static void test_connection_lost_when_idle(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(f->conn, "SELECT pg_backend_pid()", 0, NULL, &res, &err), &err);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s, 10000)::int",
             pgetl_result_get(res, 0, 0, NULL));
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
    assert_int_equal(harness_scalar(f->pq, sql), 1);
    /* The helper's BEGIN is what finds out. */
    bool e = true;
    assert_int_equal(pgetl_table_exists(f->conn, "tq.canary", &e, &err), PGETL_ECONNLOST);
    assert_false(e);
}

typedef struct reader_arg {
    const pgetl_result *res;
    int64_t sum;
    int errors;
} reader_arg;

static void *read_all(void *p) {
    reader_arg *a = p;
    for (int64_t r = 0; r < pgetl_result_nrows(a->res); r++) {
        int64_t v;
        if (pgetl_result_get_int64(a->res, r, 0, &v, NULL) != PGETL_OK)
            a->errors++;
        else
            a->sum += v;
        if (!pgetl_result_get_by_name(a->res, r, "t", NULL))
            a->errors++;
    }
    return NULL;
}

/* A result is immutable: several threads may read it at once and all see the same rows. */
static void test_result_shared_by_threads(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(f->conn, "SELECT g, g::text AS t FROM generate_series(1, 20000) g",
                                   0, NULL, &res, &err),
                    &err);
    pthread_t th[4];
    reader_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (reader_arg){.res = res};
        pthread_create(&th[i], NULL, read_all, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].errors, 0);
        assert_int_equal(args[i].sum, 20000LL * 20001 / 2);
    }
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

static void *fail_malloc(size_t n) {
    (void)n;
    return NULL;
}
static void *fail_realloc(void *p, size_t n) {
    (void)p, (void)n;
    return NULL;
}

static void test_fetchall_out_of_memory(void **state) {
    fixture *f = *state;
    pgetl_error err;
    pgetl_result *res = (pgetl_result *)&err;
    assert_int_equal(pgetl_set_allocator(fail_malloc, fail_realloc, free), PGETL_OK);
    pgetl_code rc = pgetl_fetchall(f->conn, "SELECT 1", 0, NULL, &res, &err);
    assert_int_equal(pgetl_set_allocator(NULL, NULL, NULL), PGETL_OK);
    assert_int_equal(rc, PGETL_ENOMEM);
    assert_null(res);
    assert_contains(err.message, "out of memory");
    /* Nothing was sent: no transaction was opened. */
    assert_int_equal(pgetl_conn_txn_state(f->conn), PGETL_TXN_IDLE);
    assert_pgetl_ok(pgetl_fetchall(f->conn, "SELECT 1", 0, NULL, &res, &err), &err);
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_rollback(f->conn, &err), &err);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(test_execute_params_null_unicode_empty),
    T(test_execute_bad_sql),
    T(test_execute_wrong_param_count),
    T(test_execute_refuses_two_statements),
    T(test_execute_error_fields),
    T(test_execute_copy_refused),
    T(test_execute_bad_arguments),
    T(test_fetchall_values),
    T(test_fetchall_many_rows_and_no_rows),
    T(test_typed_int64),
    T(test_typed_double_bool),
    T(test_truncate_then_rollback),
    T(test_truncate_fk_cascade),
    T(test_truncate_names),
    T(test_table_exists_kinds),
    T(test_table_exists_search_path),
    T(test_table_exists_hostile),
    T(test_connection_lost),
    T(test_connection_lost_when_idle),
    T(test_fetchall_out_of_memory),
    T(test_result_shared_by_threads),
};

PGETL_TEST_MAIN(tests)
