/*
 * Non-blocking API: queries and COPY-in driven by a poll() loop, with tiny
 * socket buffers so that PQflush / PQputCopyData really report "would block";
 * and the epoll example program run end to end.
 */
#include "harness.h"
#include "pgetl/libpq.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#ifndef RCVBUF_TEST
#define RCVBUF_TEST 0
#endif

/* TCP to 127.0.0.1 as the password role: small kernel buffers really bite there. */
static const char *tcp_dsn(void) {
    return harness_tcp_dsn();
}

static pgetl_conn *connect_dsn(const char *dsn) {
    pgetl_config cfg = harness_config();
    cfg.dsn = dsn;
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_connect(&cfg, &conn, &err), &err);
    return conn;
}

/* Shrinks the send buffer, and the receive buffer when rcv_bytes > 0. */
static void shrink_socket(pgetl_conn *conn, int bytes, int rcv_bytes) {
    int fd = pgetl_async_socket(conn);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
    if (rcv_bytes > 0)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv_bytes, sizeof rcv_bytes), 0);
}

static void wait_socket(pgetl_conn *conn, int want) {
    struct pollfd p = {.fd = pgetl_async_socket(conn), .events = 0};
    if (want & PGETL_WANT_READ)
        p.events |= POLLIN;
    if (want & PGETL_WANT_WRITE)
        p.events |= POLLOUT;
    assert_true(p.events != 0);
    int n = poll(&p, 1, 30000);
    assert_true(n > 0); /* 30 s without progress is a hang */
}

static pgetl_code run_query(pgetl_conn *conn, const char *sql, int nparams,
                            const char *const *params, pgetl_result **res, pgetl_error *err) {
    pgetl_async *op = NULL;
    pgetl_code rc = pgetl_async_query_start(conn, sql, nparams, params, &op, err);
    if (rc != PGETL_OK)
        return rc;
    int want;
    while ((rc = pgetl_async_poll(op, &want, err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    if (rc == PGETL_OK)
        rc = pgetl_async_result(op, res, err);
    pgetl_async_destroy(op);
    return rc;
}

static void async_query_rows(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_result *res = NULL;
    const char *params[] = {"5", "x"};
    assert_pgetl_ok(run_query(conn, "SELECT g, $2::text || g FROM generate_series(1, $1::int) g", 2,
                              params, &res, &err),
                    &err);
    assert_int_equal(pgetl_result_nrows(res), 5);
    assert_string_equal(pgetl_result_get(res, 4, 1, NULL), "x5");
    pgetl_result_free(res);
    /* The connection is back in blocking mode and usable by the blocking API. */
    int64_t n = 0;
    assert_pgetl_ok(pgetl_execute(conn, "SELECT 1", 0, NULL, &n, &err), &err);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void async_query_big_result_tiny_buffers(void **state) {
    (void)state;
    pgetl_conn *conn = connect_dsn(tcp_dsn());
    shrink_socket(conn, 2048, RCVBUF_TEST);
    pgetl_error err;
    pgetl_result *res = NULL;
    assert_pgetl_ok(run_query(conn, "SELECT g, repeat('y', 100) FROM generate_series(1, 50000) g",
                              0, NULL, &res, &err),
                    &err);
    assert_int_equal(pgetl_result_nrows(res), 50000);
    pgetl_result_free(res);
    pgetl_conn_close(conn);
}

static void async_query_error_is_sticky(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_async *op = NULL;
    assert_pgetl_ok(pgetl_async_query_start(conn, "SELECT 1/0", 0, NULL, &op, &err), &err);
    int want;
    pgetl_code rc;
    while ((rc = pgetl_async_poll(op, &want, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_int_equal(rc, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22012");
    pgetl_error again;
    assert_int_equal(pgetl_async_poll(op, &want, &again), PGETL_ESERVER);
    assert_string_equal(again.sqlstate, "22012");
    pgetl_result *res = NULL;
    assert_int_equal(pgetl_async_result(op, &res, &again), PGETL_ESERVER);
    assert_null(res);
    pgetl_async_destroy(op);
    assert_pgetl_ok(pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err), &err);
    pgetl_conn_close(conn);
}

static void async_query_misuse(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_async *op = NULL;
    assert_int_equal(pgetl_async_query_start(NULL, "SELECT 1", 0, NULL, &op, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_query_start(conn, NULL, 0, NULL, &op, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_query_start(conn, "SELECT $1", 1, NULL, &op, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_poll(NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_socket(NULL), -1);
    assert_pgetl_ok(pgetl_async_query_start(conn, "SELECT pg_sleep(0.2)", 0, NULL, &op, &err),
                    &err);
    pgetl_result *res = NULL;
    assert_int_equal(pgetl_async_result(op, &res, &err), PGETL_ESTATE);
    /* A second operation on a busy connection is refused, not interleaved. */
    pgetl_async *op2 = NULL;
    assert_int_equal(pgetl_async_query_start(conn, "SELECT 2", 0, NULL, &op2, &err), PGETL_ESTATE);
    int want;
    pgetl_code rc;
    while ((rc = pgetl_async_poll(op, &want, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_pgetl_ok(rc, &err);
    assert_pgetl_ok(pgetl_async_result(op, &res, &err), &err);
    pgetl_result *again = NULL;
    assert_int_equal(pgetl_async_result(op, &again, &err), PGETL_ESTATE); /* taken once */
    assert_null(again);
    assert_int_equal(pgetl_result_nrows(res), 1);
    pgetl_result_free(res);
    pgetl_async_destroy(op);
    pgetl_async_destroy(NULL);
    pgetl_conn_close(conn);
}

static void async_query_destroy_cancels(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_async *op = NULL;
    int64_t t0 = (int64_t)time(NULL);
    assert_pgetl_ok(pgetl_async_query_start(conn, "SELECT pg_sleep(30)", 0, NULL, &op, &err), &err);
    int want;
    assert_int_equal(pgetl_async_poll(op, &want, &err), PGETL_EAGAIN);
    assert_int_equal(want & PGETL_WANT_READ, PGETL_WANT_READ);
    pgetl_async_destroy(op);
    assert_true((int64_t)time(NULL) - t0 < 20);
    int64_t n = -1;
    assert_pgetl_ok(pgetl_execute(conn, "SELECT 1", 0, NULL, &n, &err), &err);
    assert_int_equal(n, 1);
    pgetl_conn_close(conn);
}

/* ---- COPY ---------------------------------------------------------------- */

typedef struct copy_run {
    int64_t polls, want_write, eagain_rows, rows;
} copy_run;

/* Drives a text COPY of n rows (id, 'name<id>') through poll(). */
static pgetl_code drive_copy(pgetl_conn *conn, const char *table, int64_t n, size_t bufsize,
                             copy_run *run, pgetl_error *err) {
    static const char *const cols[] = {"id", "name"};
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 2;
    o.buffer_bytes = bufsize;
    pgetl_async_copy *op = NULL;
    pgetl_code rc = pgetl_async_copy_start(conn, table, &o, &op, err);
    if (rc != PGETL_OK)
        return rc;
    memset(run, 0, sizeof *run);
    char id[32], name[48];
    const char *vals[] = {id, name};
    int want = PGETL_WANT_READ;
    bool polled = false;
    for (int64_t i = 1; i <= n;) {
        snprintf(id, sizeof id, "%lld", (long long)i);
        snprintf(name, sizeof name, "name%lld", (long long)i);
        rc = pgetl_async_copy_write_row(op, vals, NULL, err);
        if (rc == PGETL_OK) {
            i++;
            polled = false;
            continue;
        }
        if (rc != PGETL_EAGAIN)
            goto out;
        run->eagain_rows++;
        if (polled)
            wait_socket(conn, want);
        rc = pgetl_async_copy_poll(op, &want, NULL, err);
        run->polls++;
        if (want & PGETL_WANT_WRITE)
            run->want_write++;
        if (rc != PGETL_EAGAIN && rc != PGETL_OK)
            goto out;
        polled = true;
    }
    rc = pgetl_async_copy_end(op, err);
    if (rc != PGETL_OK)
        goto out;
    while ((rc = pgetl_async_copy_poll(op, &want, &run->rows, err)) == PGETL_EAGAIN) {
        run->polls++;
        if (want & PGETL_WANT_WRITE)
            run->want_write++;
        wait_socket(conn, want);
    }
out:
    pgetl_async_copy_destroy(op);
    return rc;
}

static void async_copy_million_rows_tiny_buffers(void **state) {
    (void)state;
    pgetl_conn *conn = connect_dsn(tcp_dsn());
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(conn, "DROP TABLE IF EXISTS async_m", 0, NULL, NULL, &err), &err);
    assert_pgetl_ok(
        pgetl_execute(conn, "CREATE TABLE async_m (id bigint, name text)", 0, NULL, NULL, &err),
        &err);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    shrink_socket(conn, 4096, 4096);
    assert_pgetl_ok(pgetl_begin(conn, &err), &err);
    copy_run run;
    assert_pgetl_ok(drive_copy(conn, "async_m", 1000000, 32768, &run, &err), &err);
    assert_int_equal(run.rows, 1000000);
    /* The tiny buffers really pushed back: the loop had to wait for writability. */
    assert_true(run.want_write > 0);
    assert_true(run.eagain_rows > 0);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);

    PGconn *pg = harness_pq();
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM async_m"), 1000000);
    assert_int_equal(harness_scalar(pg, "SELECT count(DISTINCT id) FROM async_m"), 1000000);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM async_m WHERE name = 'name' || id"),
                     1000000);
    harness_sql(pg, "DROP TABLE async_m");
    PQfinish(pg);
    pgetl_conn_close(conn);
}

static void async_copy_buffer_is_bounded(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(conn, "CREATE TEMP TABLE async_b (id bigint, name text)", 0, NULL,
                                  NULL, &err),
                    &err);
    static const char *const cols[] = {"id", "name"};
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 2;
    o.buffer_bytes = 1024;
    pgetl_async_copy *op = NULL;
    assert_pgetl_ok(pgetl_async_copy_start(conn, "async_b", &o, &op, &err), &err);
    /* Before the server accepted the COPY nothing can leave: the buffer fills
     * and further rows are refused instead of piling up. */
    const char *vals[] = {"12345", "abcdefghij"};
    int taken = 0;
    pgetl_code rc;
    while ((rc = pgetl_async_copy_write_row(op, vals, NULL, &err)) == PGETL_OK)
        taken++;
    assert_int_equal(rc, PGETL_EAGAIN);
    assert_true(taken > 10);
    assert_true(taken <= 1024 / 17);
    /* A refused row stays refused until a poll moves data. */
    assert_int_equal(pgetl_async_copy_write_row(op, vals, NULL, &err), PGETL_EAGAIN);
    int want;
    int64_t rows = 0;
    bool polled = false;
    while (pgetl_async_copy_write_row(op, vals, NULL, &err) == PGETL_EAGAIN) {
        if (polled)
            wait_socket(conn, want);
        rc = pgetl_async_copy_poll(op, &want, NULL, &err);
        assert_int_equal(rc, PGETL_EAGAIN);
        polled = true;
    }
    taken++;
    assert_pgetl_ok(pgetl_async_copy_end(op, &err), &err);
    assert_int_equal(pgetl_async_copy_end(op, &err), PGETL_ESTATE);
    assert_int_equal(pgetl_async_copy_write_row(op, vals, NULL, &err), PGETL_ESTATE);
    while ((rc = pgetl_async_copy_poll(op, &want, &rows, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_pgetl_ok(rc, &err);
    assert_int_equal(rows, taken);
    pgetl_async_copy_destroy(op);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(conn, "SELECT count(*) FROM async_b", 0, NULL, &res, &err),
                    &err);
    int64_t count = 0;
    assert_pgetl_ok(pgetl_result_get_int64(res, 0, 0, &count, &err), &err);
    assert_int_equal(count, taken);
    pgetl_result_free(res);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void async_copy_oversized_row(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(
        pgetl_execute(conn, "CREATE TEMP TABLE async_big (id int, body text)", 0, NULL, NULL, &err),
        &err);
    static const char *const cols[] = {"id", "body"};
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 2;
    o.buffer_bytes = 1024;
    pgetl_async_copy *op = NULL;
    assert_pgetl_ok(pgetl_async_copy_start(conn, "async_big", &o, &op, &err), &err);
    char *big = malloc(100001);
    assert_non_null(big);
    memset(big, 'b', 100000);
    big[100000] = '\0';
    const char *small[] = {"1", "s"};
    const char *large[] = {"2", big};
    /* A row larger than the whole buffer waits for an empty buffer, then goes alone. */
    assert_pgetl_ok(pgetl_async_copy_write_row(op, small, NULL, &err), &err);
    int want = PGETL_WANT_READ;
    pgetl_code rc;
    bool polled = false;
    while ((rc = pgetl_async_copy_write_row(op, large, NULL, &err)) == PGETL_EAGAIN) {
        if (polled)
            wait_socket(conn, want);
        rc = pgetl_async_copy_poll(op, &want, NULL, &err);
        assert_int_equal(rc, PGETL_EAGAIN);
        polled = true;
    }
    assert_pgetl_ok(rc, &err);
    assert_pgetl_ok(pgetl_async_copy_end(op, &err), &err);
    int64_t rows = 0;
    while ((rc = pgetl_async_copy_poll(op, &want, &rows, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_pgetl_ok(rc, &err);
    assert_int_equal(rows, 2);
    pgetl_async_copy_destroy(op);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(conn, "SELECT length(body) FROM async_big WHERE id = 2", 0, NULL,
                                   &res, &err),
                    &err);
    assert_string_equal(pgetl_result_get(res, 0, 0, NULL), "100000");
    pgetl_result_free(res);
    free(big);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void async_copy_escaping_and_nulls(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(
        pgetl_execute(conn, "CREATE TEMP TABLE async_e (k int, v text)", 0, NULL, NULL, &err),
        &err);
    static const char *const cols[] = {"k", "v"};
    static const char *const nasty[] = {"a\tb", "line\nbreak", "back\\slash", "cr\rx",
                                        "",     "\\.",         "\"q\",x",     "\\N"};
    for (int fmt = 0; fmt < 2; fmt++) {
        pgetl_async_copy_options o;
        pgetl_async_copy_options_init(&o);
        o.format = fmt ? PGETL_COPY_CSV : PGETL_COPY_TEXT;
        o.columns = cols;
        o.ncolumns = 2;
        pgetl_async_copy *op = NULL;
        assert_pgetl_ok(pgetl_async_copy_start(conn, "async_e", &o, &op, &err), &err);
        for (int i = 0; i < 9; i++) {
            char k[8];
            snprintf(k, sizeof k, "%d", fmt * 100 + i);
            const char *vals[] = {k, i < 8 ? nasty[i] : NULL};
            assert_pgetl_ok(pgetl_async_copy_write_row(op, vals, NULL, &err), &err);
        }
        assert_pgetl_ok(pgetl_async_copy_end(op, &err), &err);
        int want;
        int64_t rows;
        pgetl_code rc;
        while ((rc = pgetl_async_copy_poll(op, &want, &rows, &err)) == PGETL_EAGAIN)
            wait_socket(conn, want);
        assert_pgetl_ok(rc, &err);
        assert_int_equal(rows, 9);
        pgetl_async_copy_destroy(op);
    }
    pgetl_result *res = NULL;
    assert_pgetl_ok(
        pgetl_fetchall(conn, "SELECT k, v FROM async_e ORDER BY k", 0, NULL, &res, &err), &err);
    assert_int_equal(pgetl_result_nrows(res), 18);
    for (int fmt = 0; fmt < 2; fmt++) {
        for (int i = 0; i < 8; i++)
            assert_string_equal(pgetl_result_get(res, fmt * 9 + i, 1, NULL), nasty[i]);
        assert_null(pgetl_result_get(res, fmt * 9 + 8, 1, NULL)); /* NULL, not "" */
    }
    pgetl_result_free(res);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void async_copy_binary_values(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(conn,
                                  "CREATE TEMP TABLE async_bin (a int2, b int4, c int8, d float8, "
                                  "e bool, f text, g date, h timestamptz, i bytea)",
                                  0, NULL, NULL, &err),
                    &err);
    static const char *const cols[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    static const pgetl_type types[] = {
        PGETL_TYPE_INT16,   PGETL_TYPE_INT32,       PGETL_TYPE_INT64,
        PGETL_TYPE_FLOAT64, PGETL_TYPE_BOOL,        PGETL_TYPE_TEXT,
        PGETL_TYPE_DATE,    PGETL_TYPE_TIMESTAMPTZ, PGETL_TYPE_BYTEA};
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    o.format = PGETL_COPY_BINARY;
    o.columns = cols;
    o.ncolumns = 9;
    o.types = types;
    pgetl_async_copy *op = NULL;
    assert_pgetl_ok(pgetl_async_copy_start(conn, "async_bin", &o, &op, &err), &err);
    pgetl_value v[9];
    memset(v, 0, sizeof v);
    v[0].v.i = -7;
    v[1].v.i = 123456;
    v[2].v.i = INT64_C(9000000000);
    v[3].v.f = 2.5;
    v[4].v.b = true;
    v[5].v.s.bytes = "héllo";
    v[5].v.s.len = strlen("héllo");
    v[6].v.i = 19723;                     /* 2024-01-01 */
    v[7].v.i = INT64_C(1704067200000000); /* 2024-01-01 00:00:00 UTC */
    v[8].v.s.bytes = "\x00\x01\xff";
    v[8].v.s.len = 3;
    assert_pgetl_ok(pgetl_async_copy_write_values(op, v, &err), &err);
    for (int i = 0; i < 9; i++)
        v[i].is_null = true;
    assert_pgetl_ok(pgetl_async_copy_write_values(op, v, &err), &err);
    const char *text_row[] = {"1"};
    assert_int_equal(pgetl_async_copy_write_row(op, text_row, NULL, &err), PGETL_ESTATE);
    assert_pgetl_ok(pgetl_async_copy_end(op, &err), &err);
    int want;
    int64_t rows = 0;
    pgetl_code rc;
    while ((rc = pgetl_async_copy_poll(op, &want, &rows, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_pgetl_ok(rc, &err);
    assert_int_equal(rows, 2);
    pgetl_async_copy_destroy(op);
    pgetl_result *res = NULL;
    assert_pgetl_ok(pgetl_fetchall(conn,
                                   "SELECT a, b, c, d, e, f, g::text, "
                                   "(h AT TIME ZONE 'UTC')::text, encode(i, 'hex') "
                                   "FROM async_bin ORDER BY a NULLS LAST",
                                   0, NULL, &res, &err),
                    &err);
    assert_string_equal(pgetl_result_get(res, 0, 0, NULL), "-7");
    assert_string_equal(pgetl_result_get(res, 0, 1, NULL), "123456");
    assert_string_equal(pgetl_result_get(res, 0, 2, NULL), "9000000000");
    assert_string_equal(pgetl_result_get(res, 0, 3, NULL), "2.5");
    assert_string_equal(pgetl_result_get(res, 0, 4, NULL), "t");
    assert_string_equal(pgetl_result_get(res, 0, 5, NULL), "héllo");
    assert_string_equal(pgetl_result_get(res, 0, 6, NULL), "2024-01-01");
    assert_string_equal(pgetl_result_get(res, 0, 7, NULL), "2024-01-01 00:00:00");
    assert_string_equal(pgetl_result_get(res, 0, 8, NULL), "0001ff");
    for (int c = 0; c < 9; c++)
        assert_true(pgetl_result_isnull(res, 1, c));
    pgetl_result_free(res);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void async_copy_bad_data_fails_at_end(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(
        pgetl_execute(conn, "CREATE TEMP TABLE async_bad (id int, name text)", 0, NULL, NULL, &err),
        &err);
    copy_run run;
    static const char *const cols[] = {"id", "name"};
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 2;
    pgetl_async_copy *op = NULL;
    assert_pgetl_ok(pgetl_async_copy_start(conn, "async_bad", &o, &op, &err), &err);
    const char *good[] = {"1", "a"};
    const char *bad[] = {"not a number", "b"};
    assert_pgetl_ok(pgetl_async_copy_write_row(op, good, NULL, &err), &err);
    assert_pgetl_ok(pgetl_async_copy_write_row(op, bad, NULL, &err), &err);
    assert_pgetl_ok(pgetl_async_copy_end(op, &err), &err);
    int want;
    pgetl_code rc;
    while ((rc = pgetl_async_copy_poll(op, &want, NULL, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_int_equal(rc, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22P02");
    assert_non_null(strstr(err.context, "line 2"));
    assert_int_equal(pgetl_async_copy_poll(op, &want, NULL, &err), PGETL_ESERVER); /* sticky */
    pgetl_async_copy_destroy(op);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INERROR);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    (void)run;

    /* An unknown table fails on a poll, with the server's error. */
    assert_pgetl_ok(pgetl_async_copy_start(conn, "no_such_table", &o, &op, &err), &err);
    while ((rc = pgetl_async_copy_poll(op, &want, NULL, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_int_equal(rc, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42P01");
    pgetl_async_copy_destroy(op);
    assert_pgetl_ok(pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err), &err);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void async_copy_destroy_midway_stores_nothing(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    PGconn *pg = harness_pq();
    harness_sql(
        pg, "DROP TABLE IF EXISTS async_abort; CREATE TABLE async_abort (id bigint, name text)");
    copy_run run;
    (void)run;
    static const char *const cols[] = {"id", "name"};
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 2;
    o.buffer_bytes = 4096;
    pgetl_async_copy *op = NULL;
    assert_pgetl_ok(pgetl_async_copy_start(conn, "async_abort", &o, &op, &err), &err);
    const char *vals[] = {"1", "x"};
    int want;
    for (int i = 0; i < 20000; i++) {
        while (pgetl_async_copy_write_row(op, vals, NULL, &err) == PGETL_EAGAIN) {
            pgetl_code rc = pgetl_async_copy_poll(op, &want, NULL, &err);
            assert_int_equal(rc, PGETL_EAGAIN);
            if (want & PGETL_WANT_WRITE)
                wait_socket(conn, want);
        }
    }
    pgetl_async_copy_destroy(op); /* no end: the COPY is failed, nothing kept */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM async_abort"), 0);
    assert_pgetl_ok(pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err), &err);
    pgetl_rollback(conn, NULL);
    harness_sql(pg, "DROP TABLE async_abort");
    PQfinish(pg);
    pgetl_conn_close(conn);
}

static void async_copy_misuse(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_async_copy *op = NULL;
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    assert_int_equal(pgetl_async_copy_start(NULL, "t", &o, &op, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_copy_start(conn, NULL, &o, &op, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_copy_start(conn, "a.b.c", &o, &op, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_copy_start(conn, "\"unterminated", &o, &op, &err), PGETL_EINVAL);
    o.format = PGETL_COPY_BINARY; /* without types */
    assert_int_equal(pgetl_async_copy_start(conn, "t", &o, &op, &err), PGETL_EINVAL);
    o.format = (pgetl_copy_format)42;
    assert_int_equal(pgetl_async_copy_start(conn, "t", &o, &op, &err), PGETL_EINVAL);
    assert_null(op);
    assert_int_equal(pgetl_async_copy_poll(NULL, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_async_copy_end(NULL, &err), PGETL_EINVAL);
    pgetl_async_copy_destroy(NULL);
    /* A hostile column name is only ever a name: the server says it does not exist. */
    assert_pgetl_ok(pgetl_execute(conn, "CREATE TEMP TABLE async_h (id int)", 0, NULL, NULL, &err),
                    &err);
    static const char *const cols[] = {"id\"); DROP TABLE async_h; --"};
    pgetl_async_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 1;
    assert_pgetl_ok(pgetl_async_copy_start(conn, "async_h", &o, &op, &err), &err);
    int want;
    pgetl_code rc;
    while ((rc = pgetl_async_copy_poll(op, &want, NULL, &err)) == PGETL_EAGAIN)
        wait_socket(conn, want);
    assert_int_equal(rc, PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42703");
    pgetl_async_copy_destroy(op);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void async_copy_server_dies_midway(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    assert_pgetl_ok(pgetl_execute(conn, "CREATE TEMP TABLE async_die (id bigint, name text)", 0,
                                  NULL, NULL, &err),
                    &err);
    int pid = PQbackendPID(pgetl_conn_pg(conn));
    static const char *const cols[] = {"id", "name"};
    pgetl_async_copy_options o;
    pgetl_async_copy_options_init(&o);
    o.columns = cols;
    o.ncolumns = 2;
    o.buffer_bytes = 8192;
    pgetl_async_copy *op = NULL;
    assert_pgetl_ok(pgetl_async_copy_start(conn, "async_die", &o, &op, &err), &err);
    const char *vals[] = {"1", "some text to fill the buffer"};
    PGconn *killer = harness_pq();
    pgetl_code rc = PGETL_OK;
    int want = PGETL_WANT_READ;
    bool polled = false;
    for (int64_t i = 0; i < 50000000 && (rc == PGETL_OK || rc == PGETL_EAGAIN); i++) {
        if (i == 20000) {
            char sql[96];
            snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
            harness_sql(killer, sql);
        }
        rc = pgetl_async_copy_write_row(op, vals, NULL, &err);
        if (rc == PGETL_OK) {
            polled = false;
            continue;
        }
        if (rc != PGETL_EAGAIN)
            break;
        if (polled)
            wait_socket(conn, want);
        rc = pgetl_async_copy_poll(op, &want, NULL, &err);
        polled = true;
    }
    if (rc == PGETL_OK || rc == PGETL_EAGAIN) {
        rc = pgetl_async_copy_end(op, &err);
        while (rc == PGETL_OK || rc == PGETL_EAGAIN) {
            rc = pgetl_async_copy_poll(op, &want, NULL, &err);
            if (rc == PGETL_EAGAIN)
                wait_socket(conn, want);
        }
    }
    /* A clear error (lost connection, or the server's FATAL), never a hang. */
    assert_true(rc == PGETL_ECONNLOST || rc == PGETL_ESERVER);
    assert_true(err.message[0] != '\0');
    pgetl_async_copy_destroy(op);
    assert_int_equal(pgetl_async_socket(conn), -1);
    PQfinish(killer);
    pgetl_conn_close(conn);
}

static void epoll_example_runs(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS epoll_example");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/examples/epoll_copy' '%s' epoll_example 200000 4096",
             PGETL_BINARY_DIR, tcp_dsn());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = "";
    char *got = fgets(line, sizeof line, p);
    int status = pclose(p);
    assert_non_null(got);
    assert_int_equal(status, 0);
    assert_true(strncmp(line, "copied 200000 rows", 18) == 0);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM epoll_example"), 200000);
    assert_int_equal(harness_scalar(pg, "SELECT sum(id) FROM epoll_example"),
                     (int64_t)200000 * 200001 / 2);
    assert_int_equal(
        harness_scalar(pg, "SELECT count(*) FROM epoll_example WHERE name = E'row\\t' || id || "
                           "E'\\\\x'"),
        200000);
    harness_sql(pg, "DROP TABLE epoll_example");
    PQfinish(pg);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(async_query_rows),
        cmocka_unit_test(async_query_big_result_tiny_buffers),
        cmocka_unit_test(async_query_error_is_sticky),
        cmocka_unit_test(async_query_misuse),
        cmocka_unit_test(async_query_destroy_cancels),
        cmocka_unit_test(async_copy_million_rows_tiny_buffers),
        cmocka_unit_test(async_copy_buffer_is_bounded),
        cmocka_unit_test(async_copy_oversized_row),
        cmocka_unit_test(async_copy_escaping_and_nulls),
        cmocka_unit_test(async_copy_binary_values),
        cmocka_unit_test(async_copy_bad_data_fails_at_end),
        cmocka_unit_test(async_copy_destroy_midway_stores_nothing),
        cmocka_unit_test(async_copy_misuse),
        cmocka_unit_test(async_copy_server_dies_midway),
        cmocka_unit_test(epoll_example_runs),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
