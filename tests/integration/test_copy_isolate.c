/*
 * Bad-row isolation in the records writer (max_rejects >= 0): a unique
 * violation, a check violation and a foreign-key violation (no line number:
 * found by bisection) among 200k rows, in text, CSV and binary formats.
 * Every good row must be stored exactly once and the callback must see
 * exactly the bad ones, with their indexes and SQLSTATEs.
 */
#include "harness.h"

#include "pgetl/libpq.h"
#include "copy/copy_int.h"

#define NROWS 200000
#define BATCH 20000
#define BAD_UNIQUE 50000 /* id duplicates row 10's          */
#define BAD_CHECK 120000 /* val = -1 breaks CHECK (val >= 0) */
#define BAD_FK 170001    /* parent 5000 does not exist       */

typedef struct seen {
    int n;
    int64_t row_index[8], batch_index[8], batch_row[8];
    char sqlstate[8][6];
    char column[8][64];
    char message[8][256];
    char data[8][256];
    size_t data_len[8];
    int stop_after; /* return non-zero on this call (1-based), 0 never */
} seen;

static int on_reject(void *user, const pgetl_reject *r) {
    seen *s = user;
    if (s->n < 8) {
        int i = s->n;
        s->row_index[i] = r->row_index;
        s->batch_index[i] = r->batch_index;
        s->batch_row[i] = r->batch_row;
        memcpy(s->sqlstate[i], r->sqlstate, 6);
        snprintf(s->column[i], sizeof s->column[i], "%s", r->column ? r->column : "");
        snprintf(s->message[i], sizeof s->message[i], "%s", r->message);
        s->data_len[i] = r->data_len;
        memcpy(s->data[i], r->data, r->data_len < 256 ? r->data_len : 256);
    }
    s->n++;
    return s->stop_after && s->n == s->stop_after;
}

static void setup(void) {
    PGconn *pg = harness_pq();
    /* A failed test may leave its connection holding locks: fail, don't hang. */
    harness_sql(pg, "SET lock_timeout = '20s'");
    harness_sql(pg, "DROP TABLE IF EXISTS iso; DROP TABLE IF EXISTS iso_parent;"
                    "CREATE TABLE iso_parent (id int PRIMARY KEY);"
                    "INSERT INTO iso_parent SELECT generate_series(0, 999);"
                    "CREATE TABLE iso (id int PRIMARY KEY, val int CHECK (val >= 0),"
                    " parent int REFERENCES iso_parent (id), note text)");
    PQfinish(pg);
}

static int64_t scalar(pgetl_conn *conn, const char *sql) {
    PGresult *r = PQexec(pgetl_conn_pg(conn), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(pgetl_conn_pg(conn)));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static const char *note_for(int64_t i) {
    static const char *const notes[] = {
        "plain", "comma, and \"quote\"", "multi\nline\r\nnote", "tab\tback\\slash",
        "",      "\xf0\x9f\x8e\x89"};
    return notes[i % 6];
}

static void row_values(int64_t i, int64_t *id, int64_t *val, int64_t *parent) {
    *id = i;
    *val = i % 1000;
    *parent = i % 1000;
    if (i == BAD_UNIQUE)
        *id = 10;
    if (i == BAD_CHECK)
        *val = -1;
    if (i == BAD_FK)
        *parent = 5000;
}

/* Writes NROWS rows (with the 3 bad ones) in `format`; returns end's code. */
static pgetl_code load(pgetl_conn *conn, pgetl_copy_format format, int64_t max_rejects, seen *s,
                       pgetl_copy_stats *st, pgetl_error *err) {
    static const pgetl_type types[4] = {PGETL_TYPE_INT64, PGETL_TYPE_INT64, PGETL_TYPE_INT64,
                                        PGETL_TYPE_TEXT};
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = format;
    o.types = types;
    o.batch_rows = BATCH;
    o.max_rejects = max_rejects;
    o.on_reject = on_reject;
    o.reject_user = s;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "iso", &o, &c, err), err);
    pgetl_code rc = PGETL_OK;
    for (int64_t i = 0; i < NROWS && rc == PGETL_OK; i++) {
        int64_t id, val, parent;
        row_values(i, &id, &val, &parent);
        const char *note = note_for(i);
        if (format == PGETL_COPY_BINARY) {
            pgetl_value v[4] = {
                {.v.i = id}, {.v.i = val}, {.v.i = parent}, {.v.s = {note, strlen(note)}}};
            rc = pgetl_copy_write_values(c, v, err);
        } else {
            char a[24], b[24], p[24];
            snprintf(a, sizeof a, "%lld", (long long)id);
            snprintf(b, sizeof b, "%lld", (long long)val);
            snprintf(p, sizeof p, "%lld", (long long)parent);
            const char *v[4] = {a, b, p, note};
            rc = pgetl_copy_write_row(c, v, NULL, err);
        }
    }
    pgetl_code end = pgetl_copy_end(c, st, err);
    if (rc != PGETL_OK)
        assert_int_equal(end, rc);
    return end;
}

static void isolate_three_bad_rows(pgetl_copy_format format) {
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {0};
    pgetl_copy_stats st;
    assert_pgetl_ok(load(conn, format, 10, &s, &st, &err), &err);
    assert_int_equal(s.n, 3);
    const int64_t want_rows[3] = {BAD_UNIQUE, BAD_CHECK, BAD_FK};
    const char *want_state[3] = {"23505", "23514", "23503"};
    const char *want_word[3] = {"duplicate key", "check constraint", "foreign key"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.row_index[i], want_rows[i]);
        assert_int_equal(s.batch_index[i], want_rows[i] / BATCH);
        assert_int_equal(s.batch_row[i], want_rows[i] % BATCH);
        assert_string_equal(s.sqlstate[i], want_state[i]);
        if (!strstr(s.message[i], want_word[i]))
            fail_msg("reject %d: message [%s]", i, s.message[i]);
        assert_true(s.data_len[i] > 0);
    }
    /* The encoded row is handed over as sent. */
    if (format == PGETL_COPY_TEXT) {
        const char want[] = "120000\t-1\t0\tplain\n";
        assert_int_equal(s.data_len[1], sizeof want - 1);
        assert_memory_equal(s.data[1], want, sizeof want - 1);
    }
    if (format == PGETL_COPY_CSV) {
        /* Found by its line number although earlier rows span several lines. */
        const char want[] = "10,0,0,\"multi\nline\r\nnote\"\n";
        assert_int_equal(s.data_len[0], sizeof want - 1);
        assert_memory_equal(s.data[0], want, sizeof want - 1);
    }
    assert_int_equal(st.rows_read, NROWS);
    assert_int_equal(st.rows_loaded, NROWS - 3);
    assert_int_equal(st.rows_rejected, 3);
    assert_int_equal(st.batches, NROWS / BATCH);

    /* Every good row exactly once, nothing else. */
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso"), NROWS - 3);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT i, i %% 1000, i %% 1000 FROM generate_series(0, %d) i "
             "WHERE i NOT IN (%d, %d, %d) EXCEPT SELECT id, val, parent FROM iso) x",
             NROWS - 1, BAD_UNIQUE, BAD_CHECK, BAD_FK);
    assert_int_equal(scalar(conn, sql), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT id, val, parent FROM iso EXCEPT SELECT i, i %% 1000, "
             "i %% 1000 FROM generate_series(0, %d) i WHERE i NOT IN (%d, %d, %d)) x",
             NROWS - 1, BAD_UNIQUE, BAD_CHECK, BAD_FK);
    assert_int_equal(scalar(conn, sql), 0);
    /* Notes survived too (spot check a multi-line one and the empty string). */
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso WHERE id = 2 AND note = "
                                  "E'multi\\nline\\r\\nnote'"),
                     1);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso WHERE id = 4 AND note = ''"), 1);
    /* The savepoint was released: the transaction is clean and can commit. */
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    PGconn *pg = harness_pq();
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM iso"), NROWS - 3);
    PQfinish(pg);
    pgetl_conn_close(conn);
}

static void isolate_text(void **state) {
    (void)state;
    isolate_three_bad_rows(PGETL_COPY_TEXT);
}

static void isolate_csv(void **state) {
    (void)state;
    isolate_three_bad_rows(PGETL_COPY_CSV);
}

static void isolate_binary(void **state) {
    (void)state;
    isolate_three_bad_rows(PGETL_COPY_BINARY);
}

static void max_rejects_exceeded(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {0};
    pgetl_copy_stats st;
    assert_int_equal(load(conn, PGETL_COPY_TEXT, 2, &s, &st, &err), PGETL_EREJECTS);
    assert_int_equal(s.n, 2);
    assert_non_null(strstr(err.message, "too many rejected rows"));
    assert_non_null(strstr(err.message, "row 170002"));
    assert_string_equal(err.sqlstate, "23503");
    /* The transaction is left for the caller: roll back and nothing is stored. */
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso"), 0);
    pgetl_conn_close(conn);
}

static void max_rejects_zero_fails_first(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {0};
    pgetl_copy_stats st;
    assert_int_equal(load(conn, PGETL_COPY_BINARY, 0, &s, &st, &err), PGETL_EREJECTS);
    assert_int_equal(s.n, 0);
    assert_non_null(strstr(err.message, "row 50001"));
    assert_string_equal(err.sqlstate, "23505");
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

static void callback_stops_load(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {.stop_after = 1};
    pgetl_copy_stats st;
    assert_int_equal(load(conn, PGETL_COPY_CSV, 100, &s, &st, &err), PGETL_EABORTED);
    assert_int_equal(s.n, 1);
    assert_non_null(strstr(err.message, "row 50001"));
    pgetl_rollback(conn, NULL);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso"), 0);
    pgetl_conn_close(conn);
}

/* A bad value for a column: the callback gets the column; the rows around it load. */
static void reject_names_column_and_source_batch(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {0};
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.batch_rows = 4;
    o.max_rejects = 5;
    o.on_reject = on_reject;
    o.reject_user = &s;
    const char *cols[] = {"id", "val"};
    o.columns = cols;
    o.ncolumns = 2;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "iso", &o, &c, &err), &err);
    const char *rows[][2] = {{"1", "1"}, {"2", "x"},           {"3", "3"}, {"4", "4"},
                             {"5", "5"}, {"6", "99999999999"}, {"7", "7"}};
    /* The caller's own batches: rows 0-2 are its batch 7, rows 3-6 its batch 8. */
    for (int i = 0; i < 7; i++) {
        if (i == 0)
            pgetl__copy_set_source_batch(c, 7);
        if (i == 3)
            pgetl__copy_set_source_batch(c, 8);
        assert_pgetl_ok(pgetl_copy_write_row(c, rows[i], NULL, &err), &err);
    }
    pgetl_copy_stats st;
    assert_pgetl_ok(pgetl_copy_end(c, &st, &err), &err);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.row_index[0], 1);
    assert_int_equal(s.batch_index[0], 7);
    assert_int_equal(s.batch_row[0], 1);
    assert_string_equal(s.sqlstate[0], "22P02");
    assert_string_equal(s.column[0], "val");
    assert_int_equal(s.row_index[1], 5);
    assert_int_equal(s.batch_index[1], 8);
    assert_int_equal(s.batch_row[1], 2);
    assert_string_equal(s.sqlstate[1], "22003");
    assert_string_equal(s.column[1], "val");
    assert_int_equal(st.rows_loaded, 5);
    assert_int_equal(st.batches, 2);
    assert_int_equal(scalar(conn, "SELECT sum(id) FROM iso"), 1 + 3 + 4 + 5 + 7);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

/* Every row bad: all rejected, nothing stored, the transaction still usable. */
static void all_rows_bad(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {0};
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.batch_rows = 3;
    o.max_rejects = 10;
    o.on_reject = on_reject;
    o.reject_user = &s;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "iso", &o, &c, &err), &err);
    for (int i = 0; i < 5; i++)
        assert_pgetl_ok(
            pgetl_copy_write_row(c, (const char *const[]){"1", "-5", NULL, NULL}, NULL, &err),
            &err);
    pgetl_copy_stats st;
    assert_pgetl_ok(pgetl_copy_end(c, &st, &err), &err);
    assert_int_equal(s.n, 5);
    assert_int_equal(st.rows_loaded, 0);
    assert_int_equal(st.rows_rejected, 5);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso"), 0);
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
}

/* The server dies between batches: ECONNLOST, sticky, no hang. */
static void server_dies_between_batches(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.batch_rows = 100;
    o.max_rejects = 5;
    const char *cols[] = {"id"};
    o.columns = cols;
    o.ncolumns = 1;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "iso", &o, &c, &err), &err);
    char id[16];
    const char *v[1] = {id};
    int i = 0;
    for (; i < 150; i++) {
        snprintf(id, sizeof id, "%d", i);
        assert_pgetl_ok(pgetl_copy_write_row(c, v, NULL, &err), &err);
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(pgetl_conn_pg(conn)));
    PGconn *pg = harness_pq();
    harness_sql(pg, sql);
    PQfinish(pg);
    pgetl_code rc = PGETL_OK;
    for (; i < 1000 && rc == PGETL_OK; i++) {
        snprintf(id, sizeof id, "%d", i);
        rc = pgetl_copy_write_row(c, v, NULL, &err);
    }
    assert_int_equal(rc, PGETL_ECONNLOST);
    assert_int_equal(i, 200); /* the 200th row ended batch 2, which found it */
    assert_int_equal(pgetl_copy_write_row(c, v, NULL, &err), PGETL_ECONNLOST);
    assert_int_equal(pgetl_copy_end(c, NULL, &err), PGETL_ECONNLOST);
    pgetl_conn_close(conn);
}

/*
 * Rows sent: many bad rows in one batch must not make isolation resend the
 * batch once per bad row (that was O(bad x batch)). 50k rows in one batch,
 * every 100th breaks the CHECK (500 rejects, spread out) and every 5000th
 * (another 10) is a duplicate key: the payload sent may be at most 2.2 times
 * that of the same rows all good. Resending the batch per bad row would be
 * about 250 times.
 */
static int64_t load_bytes(pgetl_conn *conn, bool with_bad, seen *s, pgetl_copy_stats *st) {
    enum { N = 50000 };
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.batch_rows = N;
    o.max_rejects = N;
    o.on_reject = on_reject;
    o.reject_user = s;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "iso", &o, &c, &err), &err);
    for (int64_t i = 0; i < N; i++) {
        char a[24], b[24];
        bool dup = with_bad && i % 5000 == 4321;
        snprintf(a, sizeof a, "%lld", (long long)(dup ? 7 : i));
        snprintf(b, sizeof b, "%d", with_bad && i % 100 == 50 ? -1 : (int)(i % 1000));
        const char *v[4] = {a, b, "1", note_for(i)};
        assert_pgetl_ok(pgetl_copy_write_row(c, v, NULL, &err), &err);
    }
    assert_pgetl_ok(pgetl_copy_end(c, st, &err), &err);
    return st->bytes_sent;
}

static void bad_rows_resend_little(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {0};
    pgetl_copy_stats st;
    int64_t clean = load_bytes(conn, false, &s, &st);
    assert_int_equal(s.n, 0);
    assert_int_equal(st.rows_loaded, 50000);
    assert_pgetl_ok(pgetl_rollback(conn, &err), &err);

    int64_t bad = load_bytes(conn, true, &s, &st);
    assert_int_equal(s.n, 510);
    assert_int_equal(st.rows_rejected, 510);
    assert_int_equal(st.rows_loaded, 50000 - 510);
    /* The first rejects, in order, with their own errors. */
    assert_int_equal(s.row_index[0], 50);
    assert_string_equal(s.sqlstate[0], "23514");
    assert_int_equal(s.row_index[1], 150);
    assert_int_equal(s.batch_row[1], 150);
    /* Exactly the good rows are stored, once each. */
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso"), 50000 - 510);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM (SELECT i FROM generate_series(0, 49999) i"
                                  " WHERE i % 100 <> 50 AND i % 5000 <> 4321"
                                  " EXCEPT ALL SELECT id FROM iso) x"),
                     0);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso WHERE id = 7"), 1);
    assert_int_equal(pgetl_conn_txn_state(conn), PGETL_TXN_INTRANS);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    print_message("bytes sent: clean %lld, with 510 bad rows %lld (%.2fx)\n", (long long)clean,
                  (long long)bad, (double)bad / (double)clean);
    assert_true(bad <= clean * 22 / 10);
    pgetl_conn_close(conn);
}

/*
 * A prefix that was accepted row by row can still fail at the end of its
 * COPY (foreign keys are checked there, naming no line): rows 10 and 300
 * have no parent, row 200 breaks the CHECK. The first COPY fails at row
 * 200's line; resending rows [0, 200) fails on the foreign key, found by
 * bisection; row 200 is then tried again rather than rejected on evidence
 * from a COPY that also held row 10. Rejects come in row order, each once.
 */
static void deferred_error_in_prefix(void **state) {
    (void)state;
    setup();
    pgetl_conn *conn = harness_connect();
    pgetl_error err;
    seen s = {0};
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.batch_rows = 1000;
    o.max_rejects = 10;
    o.on_reject = on_reject;
    o.reject_user = &s;
    pgetl_copy *c = NULL;
    assert_pgetl_ok(pgetl_copy_begin(conn, "iso", &o, &c, &err), &err);
    for (int i = 0; i < 1000; i++) {
        char a[16], b[16], p[16];
        snprintf(a, sizeof a, "%d", i);
        snprintf(b, sizeof b, "%d", i == 200 ? -1 : i);
        snprintf(p, sizeof p, "%d", i == 10 || i == 300 ? 5000 : i % 1000);
        const char *v[4] = {a, b, p, NULL};
        assert_pgetl_ok(pgetl_copy_write_row(c, v, NULL, &err), &err);
    }
    pgetl_copy_stats st;
    assert_pgetl_ok(pgetl_copy_end(c, &st, &err), &err);
    assert_int_equal(s.n, 3);
    const int64_t want[3] = {10, 200, 300};
    const char *state_want[3] = {"23503", "23514", "23503"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.row_index[i], want[i]);
        assert_int_equal(s.batch_row[i], want[i]);
        assert_string_equal(s.sqlstate[i], state_want[i]);
    }
    assert_int_equal(st.rows_loaded, 997);
    assert_int_equal(st.rows_rejected, 3);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM iso"), 997);
    assert_int_equal(scalar(conn, "SELECT count(*) FROM (SELECT i FROM generate_series(0, 999) i"
                                  " WHERE i NOT IN (10, 200, 300) EXCEPT ALL SELECT id FROM iso) x"),
                     0);
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    pgetl_conn_close(conn);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(isolate_text),
        cmocka_unit_test(isolate_csv),
        cmocka_unit_test(isolate_binary),
        cmocka_unit_test(max_rejects_exceeded),
        cmocka_unit_test(max_rejects_zero_fails_first),
        cmocka_unit_test(callback_stops_load),
        cmocka_unit_test(reject_names_column_and_source_batch),
        cmocka_unit_test(all_rows_bad),
        cmocka_unit_test(server_dies_between_batches),
        cmocka_unit_test(bad_rows_resend_little),
        cmocka_unit_test(deferred_error_in_prefix),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
