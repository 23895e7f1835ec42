/* Transactions: begin/commit/rollback semantics, "autocommit off" style. */
#include "harness.h"

static void begin_is_idempotent_and_commit_persists(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS txn_t; CREATE TABLE txn_t (i int)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_pgetl_ok(pgetl_begin(conn, &err), &err);
    assert_pgetl_ok(pgetl_begin(conn, &err), &err); /* no nested BEGIN warning, no error */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_pgetl_ok(pgetl_execute(conn, "INSERT INTO txn_t VALUES (1)", 0, NULL, NULL, &err), &err);
    /* Not visible to others before the caller commits. */
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM txn_t"), 0);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM txn_t"), 1);
    /* COMMIT and ROLLBACK with nothing open are no-ops. */
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE txn_t");
    PQfinish(pg);
}

static void rollback_discards(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS txn_r; CREATE TABLE txn_r (i int)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(conn, "INSERT INTO txn_r VALUES (1)", 0, NULL, NULL, &err), &err);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM txn_r"), 0);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE txn_r");
    PQfinish(pg);
}

static void commit_of_failed_transaction_is_not_success(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS txn_f; CREATE TABLE txn_f (i int PRIMARY KEY)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(conn, "INSERT INTO txn_f VALUES (1)", 0, NULL, NULL, &err), &err);
    assert_int_equal(pgetl_execute(conn, "INSERT INTO txn_f VALUES (1)", 0, NULL, NULL, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INERROR);
    assert_int_equal(pgetl_commit(conn, &err), PGETL_ESTATE);
    assert_non_null(strstr(err.message, "had failed and was rolled back"));
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM txn_f"), 0);
    /* The connection is usable again. */
    assert_pgetl_ok(pgetl_execute(conn, "INSERT INTO txn_f VALUES (2)", 0, NULL, NULL, &err), &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM txn_f"), 1);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE txn_f");
    PQfinish(pg);
}

static void deferred_constraint_fails_at_commit(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS txn_c, txn_p;"
                    "CREATE TABLE txn_p (k int PRIMARY KEY);"
                    "CREATE TABLE txn_c (k int REFERENCES txn_p DEFERRABLE INITIALLY DEFERRED)");
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(conn, "INSERT INTO txn_c VALUES (7)", 0, NULL, NULL, &err), &err);
    assert_int_equal(pgetl_commit(conn, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23503");
    assert_non_null(strstr(err.message, "COMMIT"));
    assert_true(err.detail[0] != '\0');
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM txn_c"), 0);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE txn_c, txn_p");
    PQfinish(pg);
}

static void broken_connection_reports_lost(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(pgetl_begin(conn, &err), &err);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(conn, "SELECT pg_backend_pid()", 0, NULL, &res, &err), &err);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)", pgetl_result_get(res, 0, 0, NULL));
    pgetl_result_free(res);
    harness_sql(pg, sql);
    /* The next statement finds the connection gone. */
    pgetl_code rc = pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err);
    assert_int_equal(rc, PGETL_ECONNLOST);
    assert_int_equal(pgetl_commit(conn, &err), PGETL_ECONNLOST);
    assert_int_equal(pgetl_begin(conn, &err), PGETL_ECONNLOST);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_UNKNOWN);
    pgetl_conn_close(conn);
    PQfinish(pg);
}

static void null_connection_is_einval(void **state) {
    (void)state;
    pgetl_error err;
    assert_int_equal(pgetl_begin(NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_commit(NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_rollback(NULL, NULL), PGETL_EINVAL);
    assert_int_equal(pgetl_conn_txn_state(NULL), PGETL_TXN_UNKNOWN);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(begin_is_idempotent_and_commit_persists),
        cmocka_unit_test(rollback_discards),
        cmocka_unit_test(commit_of_failed_transaction_is_not_success),
        cmocka_unit_test(deferred_constraint_fails_at_commit),
        cmocka_unit_test(broken_connection_reports_lost),
        cmocka_unit_test(null_connection_is_einval),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
