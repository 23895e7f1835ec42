/*
 * pgetl_export_fd: output bytes against the server's own COPY output,
 * compression round trips (zlib / libzstd decoders), option checks, query
 * terminators, server errors, a write failure mid-stream (the connection
 * must stay usable), progress reports, and hostile table names.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* Reads a whole file into a malloc'd buffer (NUL-terminated); *n_out gets its size. */
static char *slurp_fd(int fd, size_t *n_out) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        assert_true(r >= 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *n_out = n;
    return buf;
}

static int temp_fd(void) {
    char path[] = "/tmp/pgetl-test-export-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* Exports with the given options into a fresh temp file; returns its bytes. */
static char *export_to_buf(pgetl_conn *conn, const pgetl_export_options *o, size_t *n_out,
                           int64_t *rows_out) {
    int fd = temp_fd();
    pgetl_error err;
    int64_t bytes = -1;
    assert_pgetl_ok(pgetl_export_fd(conn, o, fd, rows_out, &bytes, &err), &err);
    char *buf = slurp_fd(fd, n_out);
    assert_int_equal((int64_t)*n_out, bytes);
    close(fd);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    return buf;
}

/* The reference: the server's own COPY TO STDOUT through plain libpq. */
static char *server_copy(const char *sql, size_t *n_out) {
    PGconn *pg = harness_pq();
    PGresult *r = PQexec(pg, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COPY_OUT);
    PQclear(r);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    char *row;
    int len;
    while ((len = PQgetCopyData(pg, &row, 0)) > 0) {
        while (n + (size_t)len > cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        memcpy(buf + n, row, (size_t)len);
        n += (size_t)len;
        PQfreemem(row);
    }
    r = PQgetResult(pg);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(pg);
    buf[n] = '\0';
    *n_out = n;
    return buf;
}

static int setup_table(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS export_t");
    harness_sql(pg, "CREATE TABLE export_t (id int, note text, amount float8, day date)");
    harness_sql(pg, "INSERT INTO export_t SELECT i, CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN '' "
                    "WHEN 2 THEN 'a,\"b\"' || chr(10) || 'c' WHEN 3 THEN 'é 日本 \\N' ELSE "
                    "repeat('x', i % 300) END, i / 7.0, date '2024-01-01' + i % 400 "
                    "FROM generate_series(1, 5000) i");
    PQfinish(pg);
    return 0;
}

static void csv_equals_server_copy(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.table = "export_t";
    o.header = true;
    size_t n, m;
    int64_t rows = -1;
    char *got = export_to_buf(conn, &o, &n, &rows);
    char *want = server_copy("COPY export_t TO STDOUT (FORMAT csv, HEADER true)", &m);
    assert_int_equal(rows, 5000);
    assert_int_equal(n, m);
    assert_memory_equal(got, want, n);
    free(got);
    free(want);

    o.format = PGETL_EXPORT_BINARY;
    o.header = false;
    got = export_to_buf(conn, &o, &n, &rows);
    want = server_copy("COPY export_t TO STDOUT (FORMAT binary)", &m);
    assert_int_equal(rows, 5000); /* "COPY n", not the message count */
    assert_int_equal(n, m);
    assert_memory_equal(got, want, n);
    free(got);
    free(want);

    o.format = PGETL_EXPORT_TSV;
    got = export_to_buf(conn, &o, &n, &rows);
    want = server_copy("COPY export_t TO STDOUT (FORMAT csv, DELIMITER E'\\t')", &m);
    assert_int_equal(n, m);
    assert_memory_equal(got, want, n);
    free(got);
    free(want);
    pgetl_conn_close(conn);
}

static char *gunzip(const char *in, size_t n, size_t *out_n) {
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    int zr;
    do {
        if (z.total_out == cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        z.next_out = (Bytef *)out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        zr = inflate(&z, Z_NO_FLUSH);
        assert_true(zr == Z_OK || zr == Z_STREAM_END);
    } while (zr != Z_STREAM_END);
    assert_int_equal(z.avail_in, 0); /* nothing after the gzip trailer */
    *out_n = z.total_out;
    inflateEnd(&z);
    return out;
}

static char *unzstd(const char *in, size_t n, size_t *out_n) {
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {in, n, 0};
    size_t left = 1;
    while (ib.pos < ib.size || left != 0) {
        if (len == cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        ZSTD_outBuffer ob = {out + len, cap - len, 0};
        left = ZSTD_decompressStream(d, &ob, &ib);
        assert_false(ZSTD_isError(left));
        len += ob.pos;
        if (ob.pos == 0 && ib.pos == ib.size && left != 0)
            fail_msg("truncated zstd frame");
    }
    ZSTD_freeDCtx(d);
    *out_n = len;
    return out;
}

static void compressed_outputs_decompress_to_same_bytes(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.query = "SELECT e.*, g FROM export_t e, generate_series(1, 20) g";
    size_t n, zn, dn;
    int64_t rows;
    char *plain = export_to_buf(conn, &o, &n, &rows);
    assert_int_equal(rows, 100000);
    o.compression = PGETL_COMPRESS_GZIP;
    char *gz = export_to_buf(conn, &o, &zn, &rows);
    assert_true(zn < n);
    char *d = gunzip(gz, zn, &dn);
    assert_int_equal(dn, n);
    assert_memory_equal(d, plain, n);
    free(d);
    free(gz);
    o.compression = PGETL_COMPRESS_ZSTD;
    char *zs = export_to_buf(conn, &o, &zn, &rows);
    assert_true(zn < n);
    d = unzstd(zs, zn, &dn);
    assert_int_equal(dn, n);
    assert_memory_equal(d, plain, n);
    free(d);
    free(zs);
    /* An empty result still makes a valid (empty) compressed stream. */
    o.query = "SELECT 1 WHERE false";
    o.compression = PGETL_COMPRESS_GZIP;
    gz = export_to_buf(conn, &o, &zn, &rows);
    assert_int_equal(rows, 0);
    d = gunzip(gz, zn, &dn);
    assert_int_equal(dn, 0);
    free(d);
    free(gz);
    free(plain);
    pgetl_conn_close(conn);
}

static void bad_options_are_einval(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_export_options o;
    pgetl_error err;
    pgetl_export_options_init(&o);
    assert_int_equal(pgetl_export_fd(conn, &o, 1, NULL, NULL, &err), PGETL_EINVAL);
    assert_non_null(strstr(err.message, "exactly one of query or table"));
    o.query = "SELECT 1";
    o.table = "export_t";
    assert_int_equal(pgetl_export_fd(conn, &o, 1, NULL, NULL, &err), PGETL_EINVAL);
    o.table = NULL;
    o.format = PGETL_EXPORT_BINARY;
    o.header = true;
    assert_int_equal(pgetl_export_fd(conn, &o, 1, NULL, NULL, &err), PGETL_EINVAL);
    assert_non_null(strstr(err.message, "header"));
    o.header = false;
    o.query = " ;; \n";
    assert_int_equal(pgetl_export_fd(conn, &o, 1, NULL, NULL, &err), PGETL_EINVAL);
    assert_non_null(strstr(err.message, "empty"));
    o.query = NULL;
    o.table = "a.b.c";
    assert_int_equal(pgetl_export_fd(conn, &o, 1, NULL, NULL, &err), PGETL_EINVAL);
    o.table = "export_t";
    assert_int_equal(pgetl_export_fd(conn, &o, -1, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_export_fd(NULL, &o, 1, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(pgetl_export_fd(conn, NULL, 1, NULL, NULL, NULL), PGETL_EINVAL);
    /* Nothing was sent: the connection is still idle. */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_IDLE);
    pgetl_conn_close(conn);
}

static void export_query(pgetl_conn *conn, const char *q, const char *want) {
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.query = q;
    size_t n;
    char *got = export_to_buf(conn, &o, &n, NULL);
    assert_string_equal(got, want);
    free(got);
}

static void query_terminators_and_literals(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    export_query(conn, "SELECT 1;", "1\n");
    export_query(conn, "SELECT 1 ; ;\n -- done\n", "1\n");
    export_query(conn, "SELECT 1; /* a /* nested */ comment */", "1\n");
    export_query(conn, "SELECT 1 -- trailing comment", "1\n");
    export_query(conn, "SELECT ';' AS s;", ";\n");
    export_query(conn, "SELECT 'it''s; fine';", "it's; fine\n");
    export_query(conn, "SELECT E'a\\';b';", "a';b\n");
    export_query(conn, "SELECT $$x;$$ || $t$;y$t$;", "x;;y\n");
    export_query(conn, "SELECT 1 AS \"a;b\";", "1\n");

    /* A second statement is never run. */
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.query = "SELECT 1; DROP TABLE export_t";
    pgetl_error err;
    assert_int_equal(pgetl_export_fd(conn, &o, 1, NULL, NULL, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42601");
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    PGconn *pg = harness_pq();
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM export_t"), 5000);
    PQfinish(pg);
    pgetl_conn_close(conn);
}

static void server_error_mid_stream(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.query = "SELECT CASE WHEN i = 30000 THEN 1/0 ELSE i END FROM generate_series(1, 60000) i";
    int fd = temp_fd();
    pgetl_error err;
    int64_t rows = -1;
    assert_int_equal(pgetl_export_fd(conn, &o, fd, &rows, NULL, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22012");
    assert_non_null(strstr(err.message, "division by zero"));
    close(fd);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    /* The connection works afterwards. */
    export_query(conn, "SELECT 42", "42\n");
    pgetl_conn_close(conn);
}

static void write_failure_leaves_connection_usable(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    pgetl_conn *conn = harness_connect();
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]); /* nobody reads: the first write fails with EPIPE */
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.query = "SELECT i, repeat('y', 100) FROM generate_series(1, 2000000) i";
    pgetl_error err;
    assert_int_equal(pgetl_export_fd(conn, &o, p[1], NULL, NULL, &err), PGETL_EIO);
    assert_non_null(strstr(err.message, "Broken pipe"));
    close(p[1]);
    /* The COPY was cancelled and drained: roll back and use it again. */
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    export_query(conn, "SELECT 'still alive'", "still alive\n");
    pgetl_conn_close(conn);
}

typedef struct progress_log {
    int calls;
    int done_calls;
    int64_t last_rows;
    int64_t last_bytes;
} progress_log;

static void on_progress(void *user, const pgetl_load_progress *p) {
    progress_log *l = user;
    l->calls++;
    l->done_calls += p->done;
    assert_true(p->rows_read >= l->last_rows); /* monotonic */
    l->last_rows = p->rows_read;
    l->last_bytes = p->bytes_read;
}

static void progress_is_reported(void **state) {
    (void)state;
    pgetl_conn *conn = harness_connect();
    progress_log log = {0};
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.query = "SELECT i FROM generate_series(1, 300000) i";
    o.progress = on_progress;
    o.progress_user = &log;
    o.progress_interval_s = 0;
    size_t n;
    int64_t rows;
    char *got = export_to_buf(conn, &o, &n, &rows);
    assert_int_equal(rows, 300000);
    assert_true(log.calls > 2);
    assert_int_equal(log.done_calls, 1);
    assert_int_equal(log.last_rows, 300000);
    assert_int_equal(log.last_bytes, (int64_t)n); /* uncompressed bytes received */
    free(got);
    pgetl_conn_close(conn);
}

static void hostile_table_names(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS \"Odd\"\"; DROP TABLE export_t; --\"");
    harness_sql(pg, "CREATE TABLE \"Odd\"\"; DROP TABLE export_t; --\" (v text)");
    harness_sql(pg, "INSERT INTO \"Odd\"\"; DROP TABLE export_t; --\" VALUES ('ok')");
    pgetl_conn *conn = harness_connect();
    pgetl_export_options o;
    pgetl_export_options_init(&o);
    o.table = "\"Odd\"\"; DROP TABLE export_t; --\"";
    size_t n;
    char *got = export_to_buf(conn, &o, &n, NULL);
    assert_string_equal(got, "ok\n");
    free(got);
    o.table = "Odd\"; DROP TABLE export_t; --"; /* unquoted: not an identifier */
    pgetl_error err;
    assert_int_equal(pgetl_export_fd(conn, &o, 1, NULL, NULL, &err), PGETL_EINVAL);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM export_t"), 5000);
    harness_sql(pg, "DROP TABLE \"Odd\"\"; DROP TABLE export_t; --\"");
    PQfinish(pg);
    pgetl_conn_close(conn);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_equals_server_copy),
        cmocka_unit_test(compressed_outputs_decompress_to_same_bytes),
        cmocka_unit_test(bad_options_are_einval),
        cmocka_unit_test(query_terminators_and_literals),
        cmocka_unit_test(server_error_mid_stream),
        cmocka_unit_test(write_failure_leaves_connection_usable),
        cmocka_unit_test(progress_is_reported),
        cmocka_unit_test(hostile_table_names),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup_table, NULL);
}
