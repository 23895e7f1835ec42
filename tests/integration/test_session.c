/*
 * Sessions: transaction scope (commit on success, rollback on every error
 * path, including a COPY failing midway), nested savepoints, misuse errors,
 * pooled sessions, and the wrapped operations with their log lines.
 */
#include "harness.h"

static PGconn *check_pg;

static int setup(void **state) {
    (void)state;
    check_pg = harness_pq();
    harness_sql(check_pg, "DROP TABLE IF EXISTS sess_t");
    harness_sql(check_pg, "CREATE TABLE sess_t (id int PRIMARY KEY, name text)");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_sql(check_pg, "DROP TABLE IF EXISTS sess_t");
    PQfinish(check_pg);
    return 0;
}

static int64_t count_rows(void) {
    return harness_scalar(check_pg, "SELECT count(*) FROM sess_t");
}

static pgetl_session *new_session(void) {
    pgetl_config cfg = harness_config();
    pgetl_session *s = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_session_create(&cfg, &s, &err), &err);
    return s;
}

static pgetl_code insert(pgetl_session *s, int id, pgetl_error *err) {
    char ids[16];
    snprintf(ids, sizeof ids, "%d", id);
    const char *p[] = {ids, "x"};
    return pgetl_session_execute(s, "INSERT INTO sess_t VALUES ($1::int, $2)", 2, p, NULL, err);
}

/* ---- commit / rollback ---------------------------------------------------- */

static pgetl_code fn_insert_two(pgetl_session *s, void *user, pgetl_error *err) {
    (void)user;
    pgetl_code rc = insert(s, 1, err);
    return rc != PGETL_OK ? rc : insert(s, 2, err);
}

static void scope_commits_on_success(void **state) {
    (void)state;
    harness_sql(check_pg, "TRUNCATE sess_t");
    pgetl_session *s = new_session();
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    assert_pgetl_ok(pgetl_session_transaction(s, fn_insert_two, NULL, &err), &err);
    harness_log_restore();
    assert_int_equal(count_rows(), 2);
    assert_int_equal(pgetl_conn_txn_state(pgetl_session_conn(s)), PGETL_TXN_IDLE);
    assert_non_null(strstr(log->text, "event=session_transaction"));
    assert_non_null(strstr(log->text, "outcome=commit"));
    assert_non_null(strstr(log->text, "event=session_execute target=INSERT rows=1"));
    assert_non_null(strstr(log->text, "seconds="));
    pgetl_session_destroy(s);
}

static pgetl_code fn_insert_then_fail(pgetl_session *s, void *user, pgetl_error *err) {
    (void)user;
    pgetl_code rc = insert(s, 1, err);
    if (rc != PGETL_OK)
        return rc;
    return pgetl_error_set(err, PGETL_EABORTED, "caller changed its mind");
}

static void scope_rolls_back_on_fn_error(void **state) {
    (void)state;
    harness_sql(check_pg, "TRUNCATE sess_t");
    pgetl_session *s = new_session();
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    assert_int_equal(pgetl_session_transaction(s, fn_insert_then_fail, NULL, &err), PGETL_EABORTED);
    harness_log_restore();
    assert_string_equal(err.message, "caller changed its mind"); /* fn's error, untouched */
    assert_int_equal(count_rows(), 0);
    assert_non_null(strstr(log->text, "outcome=rollback"));
    /* The session is usable again. */
    assert_pgetl_ok(pgetl_session_transaction(s, fn_insert_two, NULL, &err), &err);
    assert_int_equal(count_rows(), 2);
    pgetl_session_destroy(s);
}

static pgetl_code fn_duplicate(pgetl_session *s, void *user, pgetl_error *err) {
    bool swallow = user != NULL;
    pgetl_code rc = insert(s, 7, err);
    if (rc == PGETL_OK)
        rc = insert(s, 7, err); /* unique violation */
    return swallow ? PGETL_OK : rc;
}

static void scope_rolls_back_on_server_error(void **state) {
    (void)state;
    harness_sql(check_pg, "TRUNCATE sess_t");
    pgetl_session *s = new_session();
    pgetl_error err;
    assert_int_equal(pgetl_session_transaction(s, fn_duplicate, NULL, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
    assert_int_equal(count_rows(), 0);
    /* fn swallowing the error gets no false success. */
    int flag = 1;
    assert_int_equal(pgetl_session_transaction(s, fn_duplicate, &flag, &err), PGETL_ESTATE);
    assert_non_null(strstr(err.message, "rolled back"));
    assert_int_equal(count_rows(), 0);
    assert_int_equal(pgetl_conn_txn_state(pgetl_session_conn(s)), PGETL_TXN_IDLE);
    pgetl_session_destroy(s);
}

static pgetl_code fn_deferred_dup(pgetl_session *s, void *user, pgetl_error *err) {
    (void)user;
    pgetl_code rc =
        pgetl_session_execute(s, "INSERT INTO sess_def VALUES (1), (1)", 0, NULL, NULL, err);
    return rc; /* fine until COMMIT checks the deferred constraint */
}

static void scope_commit_failure_is_reported(void **state) {
    (void)state;
    harness_sql(check_pg, "DROP TABLE IF EXISTS sess_def");
    harness_sql(check_pg, "CREATE TABLE sess_def (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)");
    pgetl_session *s = new_session();
    pgetl_error err;
    assert_int_equal(pgetl_session_transaction(s, fn_deferred_dup, NULL, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
    assert_int_equal(harness_scalar(check_pg, "SELECT count(*) FROM sess_def"), 0);
    assert_int_equal(pgetl_conn_txn_state(pgetl_session_conn(s)), PGETL_TXN_IDLE);
    pgetl_session_destroy(s);
    harness_sql(check_pg, "DROP TABLE sess_def");
}

typedef struct copy_job {
    int nrows;
    int bad_row; /* -1: none */
} copy_job;

static pgetl_code fn_copy(pgetl_session *s, void *user, pgetl_error *err) {
    copy_job *job = user;
    /* A statement before the COPY: must roll back with it. */
    pgetl_code rc = insert(s, 1000000, err);
    if (rc != PGETL_OK)
        return rc;
    static const char *const cols[] = {"id", "name"};
    char(*ids)[16] = malloc((size_t)job->nrows * sizeof *ids);
    const char **vals = malloc((size_t)job->nrows * 2 * sizeof *vals);
    for (int i = 0; i < job->nrows; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i);
        vals[2 * i] = i == job->bad_row ? "not-an-int" : ids[i];
        vals[2 * i + 1] = "copied\ttab";
    }
    int64_t rows = 0;
    rc = pgetl_session_copy_records(s, "sess_t", cols, 2, job->nrows, vals, &rows, err);
    free(ids);
    free(vals);
    if (rc == PGETL_OK && rows != job->nrows)
        rc = pgetl_error_set(err, PGETL_EDATA, "copied %lld rows", (long long)rows);
    return rc;
}

static void scope_rolls_back_copy_failing_midway(void **state) {
    (void)state;
    harness_sql(check_pg, "TRUNCATE sess_t");
    pgetl_session *s = new_session();
    pgetl_error err;
    copy_job bad = {.nrows = 20000, .bad_row = 12345};
    assert_int_equal(pgetl_session_transaction(s, fn_copy, &bad, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22P02");
    assert_int_equal(count_rows(), 0);
    assert_int_equal(pgetl_conn_txn_state(pgetl_session_conn(s)), PGETL_TXN_IDLE);
    copy_job good = {.nrows = 20000, .bad_row = -1};
    assert_pgetl_ok(pgetl_session_transaction(s, fn_copy, &good, &err), &err);
    assert_int_equal(count_rows(), 20001);
    assert_int_equal(
        harness_scalar(check_pg, "SELECT count(*) FROM sess_t WHERE name = E'copied\\ttab'"),
        20000);
    pgetl_session_destroy(s);
}

/* ---- nested scopes ---------------------------------------------------------- */

typedef struct nest {
    int inner_fails; /* which level (1-based below the outer) fails, 0 none */
    pgetl_code inner_rc;
    pgetl_error inner_err;
    bool outer_fails;
} nest;

static pgetl_code fn_level2(pgetl_session *s, void *user, pgetl_error *err) {
    nest *n = user;
    pgetl_code rc = insert(s, 30, err);
    if (rc == PGETL_OK && n->inner_fails == 2)
        rc = insert(s, 30, err); /* duplicate */
    return rc;
}

static pgetl_code fn_level1(pgetl_session *s, void *user, pgetl_error *err) {
    nest *n = user;
    pgetl_code rc = insert(s, 20, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl_error e2;
    pgetl_code rc2 = pgetl_session_transaction(s, fn_level2, n, &e2);
    if (rc2 != PGETL_OK) {
        n->inner_rc = rc2;
        n->inner_err = e2;
    }
    if (n->inner_fails == 1)
        return pgetl_error_set(err, PGETL_EABORTED, "level 1 fails");
    return insert(s, 21, err);
}

static pgetl_code fn_outer(pgetl_session *s, void *user, pgetl_error *err) {
    nest *n = user;
    pgetl_code rc = insert(s, 10, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl_error e1;
    pgetl_code rc1 = pgetl_session_transaction(s, fn_level1, n, &e1);
    if (rc1 != PGETL_OK && n->inner_rc == PGETL_OK) {
        n->inner_rc = rc1;
        n->inner_err = e1;
    }
    rc = insert(s, 11, err);
    if (rc == PGETL_OK && n->outer_fails)
        rc = pgetl_error_set(err, PGETL_EABORTED, "outer fails");
    return rc;
}

static void nested_scopes_are_savepoints(void **state) {
    (void)state;
    pgetl_session *s = new_session();
    pgetl_error err;

    /* Everything succeeds: every level committed. */
    harness_sql(check_pg, "TRUNCATE sess_t");
    nest all = {0};
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    assert_pgetl_ok(pgetl_session_transaction(s, fn_outer, &all, &err), &err);
    harness_log_restore();
    assert_int_equal(count_rows(), 5);
    assert_non_null(strstr(log->text, "outcome=release"));

    /* The innermost fails: only its row is undone. */
    harness_sql(check_pg, "TRUNCATE sess_t");
    nest deep = {.inner_fails = 2};
    assert_pgetl_ok(pgetl_session_transaction(s, fn_outer, &deep, &err), &err);
    assert_int_equal(deep.inner_rc, PGETL_ESERVER);
    assert_string_equal(deep.inner_err.sqlstate, "23505");
    assert_int_equal(count_rows(), 4);
    assert_int_equal(harness_scalar(check_pg, "SELECT count(*) FROM sess_t WHERE id = 30"), 0);
    assert_int_equal(
        harness_scalar(check_pg, "SELECT count(*) FROM sess_t WHERE id IN (10, 11, 20, 21)"), 4);

    /* The middle level fails: it and the level inside it are undone. */
    harness_sql(check_pg, "TRUNCATE sess_t");
    nest mid = {.inner_fails = 1};
    assert_pgetl_ok(pgetl_session_transaction(s, fn_outer, &mid, &err), &err);
    assert_int_equal(mid.inner_rc, PGETL_EABORTED);
    assert_int_equal(count_rows(), 2);
    assert_int_equal(harness_scalar(check_pg, "SELECT count(*) FROM sess_t WHERE id IN (10, 11)"),
                     2);

    /* The outer fails after the inner ones succeeded: everything is undone. */
    harness_sql(check_pg, "TRUNCATE sess_t");
    nest outer = {.outer_fails = true};
    assert_int_equal(pgetl_session_transaction(s, fn_outer, &outer, &err), PGETL_EABORTED);
    assert_int_equal(count_rows(), 0);
    pgetl_session_destroy(s);
}

/* ---- misuse ---------------------------------------------------------------- */

static pgetl_code fn_misuse(pgetl_session *s, void *user, pgetl_error *err) {
    (void)user;
    pgetl_error e;
    assert_int_equal(pgetl_session_close(s, &e), PGETL_ESTATE);
    assert_int_equal(pgetl_session_commit(s, &e), PGETL_ESTATE);
    assert_int_equal(pgetl_session_rollback(s, &e), PGETL_ESTATE);
    /* A statement fails; a nested scope then cannot start. */
    assert_int_equal(pgetl_session_execute(s, "SELECT 1/0", 0, NULL, NULL, &e), PGETL_ESERVER);
    assert_int_equal(pgetl_session_transaction(s, fn_insert_two, NULL, &e), PGETL_ESTATE);
    assert_non_null(strstr(e.message, "enclosing transaction has failed"));
    return pgetl_error_set(err, PGETL_EABORTED, "done");
}

static void misuse_gets_clear_errors(void **state) {
    (void)state;
    harness_sql(check_pg, "TRUNCATE sess_t");
    pgetl_session *s = new_session();
    pgetl_error err;
    assert_int_equal(pgetl_session_transaction(s, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_session_transaction(NULL, fn_insert_two, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_session_transaction(s, fn_misuse, NULL, &err), PGETL_EABORTED);

    /* An implicit transaction from calls outside a scope blocks a scope... */
    assert_pgetl_ok(insert(s, 5, &err), &err);
    assert_int_equal(pgetl_session_transaction(s, fn_insert_two, NULL, &err), PGETL_ESTATE);
    assert_int_equal(count_rows(), 0); /* ...and nothing was committed */
    assert_pgetl_ok(pgetl_session_commit(s, &err), &err);
    assert_int_equal(count_rows(), 1);

    /* Close: later calls are ECLOSED, never a crash. */
    assert_pgetl_ok(insert(s, 6, &err), &err);
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    assert_pgetl_ok(pgetl_session_close(s, &err), &err);
    harness_log_restore();
    assert_non_null(strstr(log->text, "rolled back, not committed"));
    assert_int_equal(count_rows(), 1); /* close rolled the open transaction back */
    assert_pgetl_ok(pgetl_session_close(s, &err), &err); /* idempotent */
    assert_null(pgetl_session_conn(s));
    assert_int_equal(insert(s, 7, &err), PGETL_ECLOSED);
    assert_non_null(strstr(err.message, "closed"));
    assert_int_equal(pgetl_session_transaction(s, fn_insert_two, NULL, &err), PGETL_ECLOSED);
    pgetl_result *res = NULL;
    assert_int_equal(pgetl_session_query(s, "SELECT 1", 0, NULL, &res, &err), PGETL_ECLOSED);
    assert_int_equal(pgetl_session_commit(s, &err), PGETL_ECLOSED);
    assert_int_equal(pgetl_session_bulk_exec(s, "SELECT 1", 0, 1, NULL, NULL, NULL, &err),
                     PGETL_ECLOSED);
    assert_int_equal(pgetl_session_copy_records(s, "sess_t", NULL, 0, 0, NULL, NULL, &err),
                     PGETL_ECLOSED);
    pgetl_session_destroy(s);
    pgetl_session_destroy(NULL);

    /* A bad DSN fails at create with the server's/libpq's message. */
    pgetl_config cfg = harness_config();
    cfg.dsn = "host=127.0.0.1 port=1 connect_timeout=2";
    assert_int_equal(pgetl_session_create(&cfg, &s, &err), PGETL_ECONNECT);
    assert_null(s);
}

/* ---- pooled sessions and the other operations ------------------------------ */

static pgetl_code fn_bulk(pgetl_session *s, void *user, pgetl_error *err) {
    (void)user;
    enum { N = 3000 };
    static char ids[N][16];
    static const char *p[N * 2];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i % 2000); /* 1000 duplicates */
        p[2 * i] = ids[i];
        p[2 * i + 1] = "bulk";
    }
    pgetl_pipeline_options o;
    pgetl_pipeline_options_init(&o);
    o.on_error = PGETL_PIPELINE_CONTINUE;
    pgetl_pipeline_report rep;
    pgetl_code rc = pgetl_session_bulk_exec(s, "INSERT INTO sess_t VALUES ($1::int, $2)", 2, N, p,
                                            &o, &rep, err);
    if (rc == PGETL_ESERVER && rep.failed == 1000 && rep.applied == 2000 &&
        rep.failed_index == 2000)
        return PGETL_OK; /* the duplicates were expected; keep the rest */
    return rc == PGETL_OK ? pgetl_error_set(err, PGETL_EDATA, "expected duplicates") : rc;
}

static void pooled_session_and_operations(void **state) {
    (void)state;
    harness_sql(check_pg, "TRUNCATE sess_t");
    pgetl_config cfg = harness_config();
    cfg.pool_min = 1;
    cfg.pool_max = 2;
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &pool, &err), &err);
    pgetl_session *s = NULL;
    assert_pgetl_ok(pgetl_session_create_pooled(pool, &s, &err), &err);
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 1);

    assert_pgetl_ok(pgetl_session_transaction(s, fn_bulk, NULL, &err), &err);
    assert_int_equal(count_rows(), 2000);

    pgetl_result *res = NULL;
    const char *p[] = {"1500"};
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    assert_pgetl_ok(pgetl_session_query(s,
                                        "SELECT id, name FROM sess_t WHERE id >= $1::int "
                                        "ORDER BY id",
                                        1, p, &res, &err),
                    &err);
    harness_log_restore();
    assert_non_null(strstr(log->text, "event=session_query target=SELECT rows=500"));
    assert_int_equal(pgetl_result_nrows(res), 500);
    assert_string_equal(pgetl_result_get_by_name(res, 0, "name", NULL), "bulk");
    pgetl_result_free(res);
    assert_pgetl_ok(pgetl_session_rollback(s, &err), &err);

    /* Arrow round trip: query_arrow on one session feeds copy_from_arrow on another. */
    harness_sql(check_pg,
                "DROP TABLE IF EXISTS sess_copy; CREATE TABLE sess_copy (id int, name text)");
    pgetl_session *s2 = NULL;
    assert_pgetl_ok(pgetl_session_create_pooled(pool, &s2, &err), &err);
    struct ArrowArrayStream stream;
    memset(&stream, 0, sizeof stream);
    assert_pgetl_ok(
        pgetl_session_query_arrow(s, "SELECT id, name FROM sess_t", 0, NULL, &stream, &err), &err);
    pgetl_copy_stats cs;
    assert_pgetl_ok(pgetl_session_copy_from_arrow(s2, "sess_copy", &stream, NULL, 0, &cs, &err),
                    &err);
    assert_int_equal(cs.rows_loaded, 2000);
    assert_pgetl_ok(pgetl_session_commit(s2, &err), &err);
    assert_int_equal(harness_scalar(check_pg, "SELECT count(*) FROM sess_copy WHERE name = 'bulk'"),
                     2000);
    harness_sql(check_pg, "DROP TABLE sess_copy");

    /* Close returns the connections to the pool. */
    assert_pgetl_ok(pgetl_session_close(s2, &err), &err);
    pgetl_session_destroy(s);
    pgetl_session_destroy(s2);
    pgetl_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    pgetl_pool_destroy(pool);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scope_commits_on_success),
        cmocka_unit_test(scope_rolls_back_on_fn_error),
        cmocka_unit_test(scope_rolls_back_on_server_error),
        cmocka_unit_test(scope_commit_failure_is_reported),
        cmocka_unit_test(scope_rolls_back_copy_failing_midway),
        cmocka_unit_test(nested_scopes_are_savepoints),
        cmocka_unit_test(misuse_gets_clear_errors),
        cmocka_unit_test(pooled_session_and_operations),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
