/*
 * Pipelined bulk statements: 100k inserts with failures in the middle, the
 * STOP and CONTINUE semantics checked by counting rows, error mapping to the
 * failed statement, and no deadlock with tiny socket buffers.
 */
#include "harness.h"
#include "pgetl/libpq.h"

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#define N 100000

/* Row-major params (id, name) with id = i and name = "n<i>"; tests then spoil some. */
typedef struct params {
    char (*ids)[24];
    char (*names)[24];
    const char **p;
} params;

static void params_make(params *ps, int64_t n) {
    ps->ids = malloc((size_t)n * sizeof *ps->ids);
    ps->names = malloc((size_t)n * sizeof *ps->names);
    ps->p = malloc((size_t)n * 2 * sizeof *ps->p);
    assert_non_null(ps->ids);
    assert_non_null(ps->names);
    assert_non_null(ps->p);
    for (int64_t i = 0; i < n; i++) {
        snprintf(ps->ids[i], sizeof ps->ids[i], "%lld", (long long)i);
        snprintf(ps->names[i], sizeof ps->names[i], "n%lld", (long long)i);
        ps->p[2 * i] = ps->ids[i];
        ps->p[2 * i + 1] = ps->names[i];
    }
}

static void params_free(params *ps) {
    free(ps->ids);
    free(ps->names);
    free(ps->p);
}

static void fresh_table(PGconn *pg) {
    harness_sql(pg, "DROP TABLE IF EXISTS pipe_t");
    harness_sql(pg, "CREATE TABLE pipe_t (id bigint PRIMARY KEY, name text NOT NULL)");
}

static const char *INSERT_SQL = "INSERT INTO pipe_t (id, name) VALUES ($1::bigint, $2)";

static void pipeline_all_ok_and_no_commit_behind_back(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    fresh_table(pg);
    params ps;
    params_make(&ps, N);
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_pipeline_report rep;
    assert_pgetl_ok(pgetl_pipeline_exec(conn, INSERT_SQL, 2, N, ps.p, NULL, &rep, &err), &err);
    assert_int_equal(rep.statements, N);
    assert_int_equal(rep.applied, N);
    assert_int_equal(rep.rows, N);
    assert_int_equal(rep.failed, 0);
    assert_int_equal(rep.failed_index, -1);
    assert_int_equal(rep.sent, N);
    /* Nothing committed behind the caller's back. */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t"), 0);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t"), N);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t WHERE name = 'n' || id"), N);

    /* Upserts: every row updated through ON CONFLICT. */
    static const char *upsert = "INSERT INTO pipe_t (id, name) VALUES ($1::bigint, $2) "
                                "ON CONFLICT (id) DO UPDATE SET name = excluded.name || '!'";
    assert_pgetl_ok(pgetl_pipeline_exec(conn, upsert, 2, N, ps.p, NULL, &rep, &err), &err);
    assert_int_equal(rep.rows, N);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(
        harness_scalar(pg, "SELECT count(*) FROM pipe_t WHERE name = 'n' || id || '!'"), N);
    /* The connection is back to normal (blocking, out of pipeline mode). */
    assert_int_equal(PQpipelineStatus(pgetl_conn_pg(conn)), PQ_PIPELINE_OFF);
    assert_int_equal(PQisnonblocking(pgetl_conn_pg(conn)), 0);
    params_free(&ps);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE pipe_t");
    PQfinish(pg);
}

static void pipeline_stop_at_failure(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    fresh_table(pg);
    /* Statement 50000 reuses the id of statement 10: a unique violation. */
    params ps;
    params_make(&ps, N);
    snprintf(ps.ids[50000], sizeof ps.ids[50000], "%d", 10); /* duplicate of statement 10 */
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_pipeline_report rep;
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    pgetl_code rc = pgetl_pipeline_exec(conn, INSERT_SQL, 2, N, ps.p, NULL, &rep, &err);
    harness_log_restore();
    assert_int_equal(rc, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
    assert_non_null(strstr(err.message, "statement 50000"));
    assert_non_null(strstr(err.message, "duplicate key"));
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.failed_index, 50000);
    assert_string_equal(rep.sqlstate, "23505");
    assert_int_equal(rep.applied, 50000);
    assert_int_equal(rep.skipped, N - 50001);
    assert_true(rep.sent > 50000);
    assert_non_null(strstr(log->text, "event=pipeline"));
    assert_non_null(strstr(log->text, "failed_index=50000"));
    /* The transaction is healthy: statements before the failure are kept. */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t"), 50000);
    assert_int_equal(harness_scalar(pg, "SELECT max(id) FROM pipe_t"), 49999);
    params_free(&ps);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE pipe_t");
    PQfinish(pg);
}

static void pipeline_continue_past_failures(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    fresh_table(pg);
    params ps;
    params_make(&ps, N);
    /* Failures at a group's first and last statement, mid-group, and the end. */
    static const int64_t bad[] = {999, 1000, 50000, 50001, 77777, N - 1};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        ps.ids[bad[k]][0] = 'x'; /* not a bigint: 22P02 */
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_pipeline_report rep;
    pgetl_pipeline_options o;
    pgetl_pipeline_options_init(&o);
    o.on_error = PGETL_PIPELINE_CONTINUE;
    pgetl_code rc = pgetl_pipeline_exec(conn, INSERT_SQL, 2, N, ps.p, &o, &rep, &err);
    assert_int_equal(rc, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22P02");
    assert_non_null(strstr(err.message, "6 of 100000 statements failed"));
    assert_non_null(strstr(err.message, "statement 999"));
    assert_int_equal(rep.failed, 6);
    assert_int_equal(rep.failed_index, 999);
    assert_int_equal(rep.applied, N - 6);
    assert_int_equal(rep.skipped, 0);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t"), N - 6);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t WHERE id IN "
                                        "(999, 1000, 50000, 50001, 77777, 99999)"),
                     0);
    assert_int_equal(harness_scalar(pg,
                                    "SELECT count(*) FROM pipe_t WHERE id IN (998, 1001, 49999, "
                                    "50002, 99998)"),
                     5);
    params_free(&ps);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE pipe_t");
    PQfinish(pg);
}

static void pipeline_small_groups_and_rollback(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    fresh_table(pg);
    params ps;
    params_make(&ps, 5000);
    ps.ids[0][0] = 'x'; /* very first statement fails */
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_pipeline_report rep;
    pgetl_pipeline_options o;
    pgetl_pipeline_options_init(&o);
    o.sync_every = 7;
    o.max_inflight_groups = 3;
    assert_int_equal(pgetl_pipeline_exec(conn, INSERT_SQL, 2, 5000, ps.p, &o, &rep, &err),
                     PGETL_ESERVER);
    assert_int_equal(rep.failed_index, 0);
    assert_int_equal(rep.applied, 0);
    assert_int_equal(rep.skipped, 4999);
    ps.ids[0][0] = '0';
    assert_pgetl_ok(pgetl_pipeline_exec(conn, INSERT_SQL, 2, 5000, ps.p, &o, &rep, &err), &err);
    assert_int_equal(rep.applied, 5000);
    /* The caller rolls back: nothing stays. */
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t"), 0);
    params_free(&ps);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE pipe_t");
    PQfinish(pg);
}

static void pipeline_tiny_socket_buffers(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    fresh_table(pg);
    params ps;
    params_make(&ps, 30000);
    pgetl_config cfg = harness_config();
    cfg.dsn = harness_tcp_dsn();
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_connect(&cfg, &conn, &err), &err);
    int fd = pgetl_async_socket(conn);
    int small = 2048;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    /* Big groups and many in flight: both directions fill up while we send. */
    pgetl_pipeline_options o;
    pgetl_pipeline_options_init(&o);
    o.sync_every = 10000;
    o.max_inflight_groups = 3;
    pgetl_pipeline_report rep;
    assert_pgetl_ok(pgetl_pipeline_exec(conn, INSERT_SQL, 2, 30000, ps.p, &o, &rep, &err), &err);
    assert_int_equal(rep.applied, 30000);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM pipe_t"), 30000);
    params_free(&ps);
    pgetl_conn_close(conn);
    harness_sql(pg, "DROP TABLE pipe_t");
    PQfinish(pg);
}

static void pipeline_misuse(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    const char *p[] = {"1", "a"};
    pgetl_pipeline_options o;
    pgetl_pipeline_options_init(&o);
    pgetl_pipeline_report rep;
    assert_int_equal(pgetl_pipeline_exec(NULL, "SELECT 1", 0, 1, NULL, NULL, &rep, &err),
                     PGETL_EINVAL);
    assert_int_equal(pgetl_pipeline_exec(conn, NULL, 0, 1, NULL, NULL, &rep, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_pipeline_exec(conn, "SELECT $1", 1, 1, NULL, NULL, &rep, &err),
                     PGETL_EINVAL);
    assert_int_equal(pgetl_pipeline_exec(conn, "SELECT 1", 0, -1, NULL, NULL, &rep, &err),
                     PGETL_EINVAL);
    o.sync_every = 0;
    assert_int_equal(pgetl_pipeline_exec(conn, "SELECT 1", 0, 1, NULL, &o, &rep, &err),
                     PGETL_EINVAL);
    o.sync_every = 10;
    o.max_inflight_groups = 100000;
    assert_int_equal(pgetl_pipeline_exec(conn, "SELECT 1", 0, 1, NULL, &o, &rep, &err),
                     PGETL_EINVAL);
    /* A statement the server cannot prepare fails up front. */
    assert_int_equal(pgetl_pipeline_exec(conn, "SELEC oops", 0, 3, NULL, NULL, &rep, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42601");
    /* ... and leaves the transaction failed: later pipelines refuse to run. */
    assert_int_equal(pgetl_pipeline_exec(conn, "SELECT $1::int, $2", 2, 1, p, NULL, &rep, &err),
                     PGETL_ESTATE);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    /* Zero rows: nothing to do. */
    assert_pgetl_ok(pgetl_pipeline_exec(conn, "SELECT $1::int, $2", 2, 0, NULL, NULL, &rep, &err),
                    &err);
    assert_int_equal(rep.applied, 0);
    /* Statements returning rows are fine too; their row counts add up. */
    assert_pgetl_ok(pgetl_pipeline_exec(conn, "SELECT $1::int, $2", 2, 1, p, NULL, &rep, &err),
                    &err);
    assert_int_equal(rep.rows, 1);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void *terminate_later(void *arg) {
    int pid = *(int *)arg;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 300 * 1000000L};
    nanosleep(&ts, NULL);
    PGconn *pg = harness_pq();
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
    PGresult *r = PQexec(pg, sql);
    PQclear(r);
    PQfinish(pg);
    return NULL;
}

static void pipeline_server_dies_midway(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    int pid = PQbackendPID(pgetl_conn_pg(conn));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, terminate_later, &pid), 0);
    /* 5000 statements of 1 ms each: still running when the backend is killed. */
    pgetl_pipeline_report rep;
    pgetl_code rc =
        pgetl_pipeline_exec(conn, "SELECT pg_sleep(0.001)", 0, 5000, NULL, NULL, &rep, &err);
    pthread_join(th, NULL);
    assert_true(rc == PGETL_ECONNLOST || rc == PGETL_ESERVER);
    assert_true(err.message[0] != '\0');
    assert_true(rep.applied < 5000);
    pgetl_conn_close(conn);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipeline_all_ok_and_no_commit_behind_back),
        cmocka_unit_test(pipeline_stop_at_failure),
        cmocka_unit_test(pipeline_continue_past_failures),
        cmocka_unit_test(pipeline_small_groups_and_rollback),
        cmocka_unit_test(pipeline_tiny_socket_buffers),
        cmocka_unit_test(pipeline_misuse),
        cmocka_unit_test(pipeline_server_dies_midway),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
