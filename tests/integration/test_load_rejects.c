/*
 * max_errors > 0: bad rows isolated (by the server's line, or by bisection
 * for errors without one, such as foreign keys), written verbatim to the
 * reject file, explained in the .log, and the load commits only when the
 * rejects stay within the limit.
 */
#include "load_helpers.h"

static void reset_tables(void) {
    harness_sql(lh_pg, "DROP TABLE IF EXISTS rj_child; DROP TABLE IF EXISTS rj; "
                       "DROP TABLE IF EXISTS rj_parent");
    harness_sql(lh_pg, "CREATE TABLE rj (id int PRIMARY KEY, name text, qty int CHECK (qty >= 0))");
}

static const char *reject_path(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", lh_dir, name);
    return p;
}

static void rejects_written_verbatim(void **state) {
    (void)state;
    reset_tables();
    /*
     * Line 1 header; bad rows: line 4 (not an int), lines 6-7 (a quoted
     * newline, then a CHECK violation), line 9 (missing field, caught before
     * the server), line 11 (duplicate key).
     */
    const char *csv = "id,name,qty\n"
                      "1,a,1\n"
                      "2,b,2\n"
                      "x3,c,3\n"
                      "4,d,4\n"
                      "5,\"multi\nline\",-5\n"
                      "6,f,6\n"
                      "7,g\n"
                      "8,h,8\n"
                      "1,dup,1\n"
                      "9,i,9\n";
    const char *p = lh_text("bad.csv", csv);
    pgetl_load_options o = lh_opts("rj");
    o.max_errors = 10;
    o.batch_rows = 3;
    o.reject_path = reject_path("bad.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_read, 10);
    assert_int_equal(st.rows_rejected, 4);
    assert_int_equal(st.rows_loaded, 6);
    assert_true(st.committed);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM rj"), 6);
    assert_int_equal(harness_scalar(lh_pg, "SELECT sum(id) FROM rj"), 1 + 2 + 4 + 6 + 8 + 9);

    size_t n;
    char *rej = lh_read_file(o.reject_path, &n);
    assert_non_null(rej);
    /* Order: the client-side reject (ragged) may come first; check each row verbatim. */
    assert_contains(rej, "x3,c,3\n");
    assert_contains(rej, "5,\"multi\nline\",-5\n");
    assert_contains(rej, "7,g\n");
    assert_contains(rej, "1,dup,1\n");
    assert_int_equal(n, strlen("x3,c,3\n5,\"multi\nline\",-5\n7,g\n1,dup,1\n"));
    free(rej);

    char logp[600];
    snprintf(logp, sizeof logp, "%s.log", o.reject_path);
    char *log = lh_read_file(logp, &n);
    assert_non_null(log);
    assert_contains(log, "bad.csv:4: [22P02]");
    assert_contains(log, "bad.csv:6: [23514]");
    assert_contains(log, "bad.csv:9: [22P04]");
    assert_contains(log, "expected 3 fields, found 2");
    assert_contains(log, "bad.csv:11: [23505]");
    free(log);
}

static void multiline_row_first_in_batch(void **state) {
    /* The row before the bad one spans lines and opens the batch: its neighbour must survive. */
    (void)state;
    reset_tables();
    const char *csv = "id,name,qty\n"
                      "1,\"a\nb\nc\",1\n"
                      "2,ok,2\n"
                      "3,bad,-3\n"
                      "4,\"d\ne\",4\n";
    const char *p = lh_text("ml.csv", csv);
    pgetl_load_options o = lh_opts("rj");
    o.max_errors = 3;
    o.batch_rows = 4;
    o.reject_path = reject_path("ml.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_rejected, 1);
    assert_int_equal(harness_scalar(lh_pg, "SELECT sum(id) FROM rj"), 1 + 2 + 4);
    assert_string_equal(lh_text_query("SELECT name FROM rj WHERE id = 1"), "a\nb\nc");
    size_t n;
    char *rej = lh_read_file(o.reject_path, &n);
    assert_string_equal(rej, "3,bad,-3\n");
    free(rej);
    char logp[600];
    snprintf(logp, sizeof logp, "%s.log", o.reject_path);
    char *log = lh_read_file(logp, &n);
    assert_contains(log, "ml.csv:6: [23514]");
    free(log);
}

static void too_many_rejects_rolls_back(void **state) {
    (void)state;
    reset_tables();
    const char *csv = "id,name,qty\n1,a,1\nx,b,2\n3,c,3\ny,d,4\nz,e,5\n6,f,6\n";
    const char *p = lh_text("many.csv", csv);
    pgetl_load_options o = lh_opts("rj");
    o.max_errors = 2;
    o.reject_path = reject_path("many.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_EREJECTS);
    assert_false(st.committed);
    assert_true(st.rows_rejected > 2);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM rj"), 0);
    /* The reject file is kept for diagnosis even though nothing was committed. */
    size_t n;
    char *rej = lh_read_file(o.reject_path, &n);
    assert_non_null(rej);
    assert_contains(rej, "x,b,2\n");
    free(rej);
    /* Exactly at the limit: commits. */
    o.max_errors = 3;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_rejected, 3);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM rj"), 3);
}

static void foreign_key_bisection(void **state) {
    /* FK errors come at the end of the COPY statement with no line: found by bisection. */
    (void)state;
    reset_tables();
    harness_sql(lh_pg, "CREATE TABLE rj_parent (id int PRIMARY KEY)");
    harness_sql(lh_pg, "INSERT INTO rj_parent SELECT generate_series(1, 100)");
    harness_sql(lh_pg, "CREATE TABLE rj_child (id int, parent int REFERENCES rj_parent)");
    char path[512];
    snprintf(path, sizeof path, "%s/fk.csv", lh_dir);
    FILE *f = fopen(path, "w");
    fputs("id,parent\n", f);
    for (int i = 1; i <= 200; i++)
        fprintf(f, "%d,%d\n", i, (i == 37 || i == 150) ? 1000 + i : (i % 100) + 1);
    fclose(f);
    pgetl_load_options o = lh_opts("rj_child");
    o.max_errors = 5;
    o.batch_rows = 64;
    o.reject_path = reject_path("fk.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(path, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_rejected, 2);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM rj_child"), 198);
    size_t n;
    char *rej = lh_read_file(o.reject_path, &n);
    assert_string_equal(rej, "37,1037\n150,1150\n");
    free(rej);
    char logp[600];
    snprintf(logp, sizeof logp, "%s.log", o.reject_path);
    char *log = lh_read_file(logp, &n);
    assert_contains(log, "fk.csv:38: [23503]");
    assert_contains(log, "fk.csv:151: [23503]");
    free(log);
}

static void no_reject_path_counts_only(void **state) {
    (void)state;
    reset_tables();
    const char *p = lh_text("np.csv", "id,name,qty\n1,a,1\nbad,b,2\n");
    pgetl_load_options o = lh_opts("rj");
    o.max_errors = 1;
    pgetl_load_stats st;
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_WARN);
    pgetl_code rc = lh_load1(p, &o, &st, &err);
    harness_log_restore();
    assert_pgetl_ok(rc, &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_rejected, 1);
    assert_contains(log->text, "event=load_reject");
    assert_contains(log->text, "line=3");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM rj"), 1);
}

static void clean_load_leaves_no_reject_file(void **state) {
    (void)state;
    reset_tables();
    const char *p = lh_text("clean.csv", "id,name,qty\n1,a,1\n");
    pgetl_load_options o = lh_opts("rj");
    o.max_errors = 1;
    o.reject_path = reject_path("clean.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(access(o.reject_path, F_OK), -1);
}

static void reject_file_never_overwrites_an_input(void **state) {
    (void)state;
    reset_tables();
    const char *csv = "id,name,qty\n1,a,1\nbad,b,2\n";
    const char *p = lh_text("self.csv", csv);
    pgetl_load_options o = lh_opts("rj");
    o.max_errors = 5;
    o.reject_path = p;
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_EINVAL);
    assert_contains(err.message, "is the input");
    size_t n;
    char *back = lh_read_file(p, &n);
    assert_string_equal(back, csv);
    free(back);
    /* Nor its .log. */
    char base[512];
    snprintf(base, sizeof base, "%s/self2", lh_dir);
    const char *p2 = lh_text("self2.log", csv);
    o.reject_path = base;
    assert_int_equal(lh_load1(p2, &o, &st, &err), PGETL_EINVAL);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM rj"), 0);
}

/*
 * With max_errors and conversion, a row pgetl cannot convert exactly (or
 * that gives NULL to a NOT NULL column) no longer sends its whole batch as
 * CSV: the other rows go binary and the "suspects" follow in their own
 * COPY, where the server decides each. A good suspect ("+7", which int4in
 * takes and pgetl's strict grammar does not) must load; the reject file
 * must still list the rejects in input order, the CHECK violation found in
 * the binary COPY merged between the suspects.
 */
static void suspects_load_after_binary_rows(void **state) {
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS sp");
    harness_sql(lh_pg, "CREATE TABLE sp (id int NOT NULL, qty int CHECK (qty >= 0), day date)");
    static char csv[16384];
    char want_rej[512] = "";
    strcpy(csv, "id,qty,day\n");
    for (int i = 1; i <= 200; i++) {
        char row[64];
        switch (i) {
        case 7:
            snprintf(row, sizeof row, "+7,7,2024-01-07\n");
            break; /* good suspect */
        case 20:
            snprintf(row, sizeof row, "20,x,2024-01-20\n");
            break; /* 22P02 */
        case 30:
            snprintf(row, sizeof row, ",30,2024-01-30\n");
            break; /* 23502 */
        case 40:
            snprintf(row, sizeof row, "40,-1,2024-02-09\n");
            break; /* 23514, binary */
        case 50:
            snprintf(row, sizeof row, "50,50,2023-02-30\n");
            break; /* 22008 */
        default:
            snprintf(row, sizeof row, "%d,%d,2024-03-01\n", i, i);
            break;
        }
        if (i == 20 || i == 30 || i == 40 || i == 50)
            strcat(want_rej, row);
        strcat(csv, row);
    }
    const char *p = lh_text("suspects.csv", csv);
    pgetl_load_options o = lh_opts("sp");
    o.max_errors = 10;
    o.convert = PGETL_CONVERT_ALWAYS;
    o.reject_path = reject_path("suspects.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_rejected, 4);
    assert_int_equal(st.rows_loaded, 196);
    assert_int_equal(st.batches_binary, 1);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM sp"), 196);
    assert_int_equal(harness_scalar(lh_pg, "SELECT qty FROM sp WHERE id = 7"), 7);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM sp WHERE id IN (20, 30, 40, 50) "
                                           "OR id IS NULL"),
                     0);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM sp WHERE day = '2024-03-01'"),
                     195);
    size_t n;
    char *rej = lh_read_file(o.reject_path, &n);
    assert_non_null(rej);
    assert_string_equal(rej, want_rej);
    free(rej);
    char logp[600];
    snprintf(logp, sizeof logp, "%s.log", o.reject_path);
    char *log = lh_read_file(logp, &n);
    assert_non_null(log);
    const char *a = strstr(log, "suspects.csv:21: [22P02]");
    const char *b = strstr(log, "suspects.csv:31: [23502]");
    const char *c = strstr(log, "suspects.csv:41: [23514]");
    const char *d = strstr(log, "suspects.csv:51: [22008]");
    assert_true(a && b && c && d);
    assert_true(a < b && b < c && c < d);
    free(log);
}

/*
 * A server error isolation cannot handle (here a trigger's 42501 at id 1500)
 * ends the load. Its CONTEXT line counts from the window that failed, not
 * from the batch, so the message must name the input line through the row
 * the writer identified, after rejects have already shrunk the windows.
 */
static void fatal_error_under_isolation_names_its_line(void **state) {
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS fx");
    harness_sql(lh_pg, "CREATE TABLE fx (id int, qty int CHECK (qty >= 0))");
    harness_sql(lh_pg, "CREATE FUNCTION fx_stop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                       "IF NEW.id = 1500 THEN RAISE EXCEPTION 'stop at %', NEW.id USING ERRCODE = "
                       "'42501'; END IF; RETURN NEW; END $$");
    harness_sql(lh_pg, "CREATE TRIGGER fx_stop BEFORE INSERT ON fx FOR EACH ROW EXECUTE FUNCTION "
                       "fx_stop()");
    static char csv[65536];
    strcpy(csv, "id,qty\n");
    for (int i = 1; i <= 3000; i++) {
        char row[32];
        snprintf(row, sizeof row, "%d,%d\n", i, i % 97 == 0 ? -1 : i);
        strcat(csv, row);
    }
    const char *p = lh_text("fatal.csv", csv);
    pgetl_load_options o = lh_opts("fx");
    o.max_errors = 100;
    o.convert = PGETL_CONVERT_NEVER;
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "42501");
    assert_contains(err.message, "fatal.csv line 1501: ");
    assert_contains(err.message, "stop at 1500");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM fx"), 0);
    harness_sql(lh_pg, "DROP TABLE fx; DROP FUNCTION fx_stop()");
}

/*
 * A file of n rows "id,qty,Big,pgetl_row" for table scr (see screen_table),
 * where qty is `bad_qty` on every 97th row and Big is 5000 on every 250th.
 * *want_rej gets the bad rows, in input order.
 */
static const char *screen_file(const char *name, int n, int bad_qty, int odd_row, int odd_qty,
                               char *want_rej, size_t cap, int *nbad) {
    static char csv[1 << 17];
    strcpy(csv, "id,qty,Big,pgetl_row\n");
    size_t len = strlen(csv), rl = 0;
    want_rej[0] = '\0';
    *nbad = 0;
    for (int i = 1; i <= n; i++) {
        int qty = i == odd_row ? odd_qty : i % 97 == 0 ? bad_qty : i % 7;
        int big = i % 250 == 0 ? 5000 : i % 500;
        /* Every 113th qty is NULL: the screen's arrays carry NULLs, which pass a CHECK. */
        char q[16] = "";
        if (i % 113 != 0)
            snprintf(q, sizeof q, "%d", qty);
        char row[64];
        int w = snprintf(row, sizeof row, "%d,%s,%d,%d\n", i, q, big, -i);
        assert_true(len + (size_t)w < sizeof csv);
        memcpy(csv + len, row, (size_t)w + 1);
        len += (size_t)w;
        if (i == odd_row || i % 97 == 0 || i % 250 == 0) {
            assert_true(rl + (size_t)w < cap);
            memcpy(want_rej + rl, row, (size_t)w + 1);
            rl += (size_t)w;
            (*nbad)++;
        }
    }
    return lh_text(name, csv);
}

/*
 * CHECKs the screen can evaluate: a named one, one on a quoted mixed-case
 * column, a column named like the screen's own index column, and a CHECK on
 * a column the file does not load (so the screen must leave it out).
 */
static void screen_table(const char *check) {
    char sql[512];
    harness_sql(lh_pg, "DROP TABLE IF EXISTS scr");
    snprintf(sql, sizeof sql,
             "CREATE TABLE scr (id int NOT NULL, qty int CONSTRAINT scr_q CHECK (%s), "
             "\"Big\" int CHECK (\"Big\" < 1000), pgetl_row int CHECK (pgetl_row < 0), "
             "d int DEFAULT 5 CHECK (d > 0))",
             check);
    harness_sql(lh_pg, sql);
}

static int cmp_line(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the lines of s in place (each ends in '\n'), for order-free comparison. */
static void sort_lines(char *s) {
    char *lines[4096], *copy = strdup(s);
    int n = 0;
    for (char *t = strtok(copy, "\n"); t && n < 4096; t = strtok(NULL, "\n"))
        lines[n++] = t;
    qsort(lines, (size_t)n, sizeof *lines, cmp_line);
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        strcat(strcat(s, lines[i]), "\n");
    free(copy);
}

/*
 * Every good row stored once, no bad one, and the rejects: in input order
 * with one connection; with several, each batch's in order but batches
 * interleave, so only the set is compared.
 */
static void screen_check_result(const pgetl_load_options *o, const pgetl_load_stats *st, int n,
                                int nbad, char *want_rej) {
    lh_check_stats(st);
    assert_int_equal(st->rows_rejected, nbad);
    assert_int_equal(st->rows_loaded, n - nbad);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM scr"), n - nbad);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(DISTINCT id) FROM scr"), n - nbad);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM scr WHERE id % 97 = 0 OR "
                                           "id % 250 = 0 OR pgetl_row <> -id OR d <> 5"),
                     0);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM scr WHERE qty IS NULL"), n / 113);
    size_t len;
    char *rej = lh_read_file(o->reject_path, &len);
    assert_non_null(rej);
    if (o->jobs > 1) {
        sort_lines(rej);
        sort_lines(want_rej);
    }
    assert_string_equal(rej, want_rej);
    free(rej);
}

/*
 * Once a CHECK refuses a converted row (row 97, first batch), later batches
 * ask the server which rows a CHECK would refuse and send those apart: every
 * bad row after the first batch is screened, and the load stores exactly the
 * good rows, with rejects in input order, on one connection and on two.
 */
static void check_screen_routes_later_batches(void **state) {
    (void)state;
    static char want[16384];
    for (int jobs = 1; jobs <= 2; jobs++) {
        screen_table("qty >= 0");
        int nbad, n = 3000;
        const char *p = screen_file("screen.csv", n, -1, 0, 0, want, sizeof want, &nbad);
        pgetl_load_options o = lh_opts("scr");
        o.max_errors = 100;
        o.convert = PGETL_CONVERT_ALWAYS;
        o.batch_rows = 500;
        o.jobs = jobs;
        o.reject_path = reject_path("screen.rej");
        pgetl_load_stats st;
        pgetl_error err;
        assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
        screen_check_result(&o, &st, n, nbad, want);
        assert_int_equal(st.batches_binary, 6);
        /* Bad rows of batches 2-6: ids 501..3000 that are multiples of 97 or 250. */
        int later = 0;
        for (int i = 501; i <= n; i++)
            later += i % 97 == 0 || i % 250 == 0;
        if (jobs == 1)
            assert_int_equal(st.rows_screened, later);
        else /* how many batches the other connection sends before row 97 is found varies */
            assert_in_range(st.rows_screened, 0, later);
    }
}

/*
 * A CHECK that raises an error on some value (division by zero at qty -1,
 * row 1400 in the third batch) makes the screen query fail: its savepoint
 * is rolled back, screening stops, and the load goes on with the server
 * deciding every row; nothing is lost or loaded twice.
 */
static void check_screen_error_stops_screening(void **state) {
    (void)state;
    static char want[16384];
    screen_table("100 / (qty + 1) > 0");
    int nbad, n = 3000;
    const char *p = screen_file("screen_err.csv", n, -5, 1400, -1, want, sizeof want, &nbad);
    pgetl_load_options o = lh_opts("scr");
    o.max_errors = 100;
    o.convert = PGETL_CONVERT_ALWAYS;
    o.batch_rows = 500;
    o.reject_path = reject_path("screen_err.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    screen_check_result(&o, &st, n, nbad, want);
    /* Only batch 2 (ids 501-1000) was screened. */
    int second = 0;
    for (int i = 501; i <= 1000; i++)
        second += i % 97 == 0 || i % 250 == 0;
    assert_int_equal(st.rows_screened, second);
    char logp[600];
    snprintf(logp, sizeof logp, "%s.log", o.reject_path);
    size_t len;
    char *log = lh_read_file(logp, &len);
    assert_non_null(log);
    assert_contains(log, "screen_err.csv:1401: [22012]");
    free(log);
}

/*
 * The connection lost during the screen query (its CHECK function ends its
 * own backend on qty -7, a row of the second batch, which only the screen
 * reaches first): the load fails naming that batch, and nothing stays.
 */
static void check_screen_connection_lost(void **state) {
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS scr");
    harness_sql(lh_pg,
                "CREATE OR REPLACE FUNCTION scr_ok(q int) RETURNS bool LANGUAGE plpgsql AS $$ "
                "BEGIN IF q = -7 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
                "PERFORM pg_sleep(5); END IF; RETURN q >= 0 OR q = -7; END $$");
    harness_sql(lh_pg, "CREATE TABLE scr (id int, qty int CHECK (scr_ok(qty)))");
    static char csv[65536];
    strcpy(csv, "id,qty\n");
    for (int i = 1; i <= 1000; i++) {
        char row[32];
        snprintf(row, sizeof row, "%d,%d\n", i, i == 97 ? -1 : i == 600 ? -7 : i);
        strcat(csv, row);
    }
    const char *p = lh_text("screen_lost.csv", csv);
    pgetl_load_options o = lh_opts("scr");
    o.max_errors = 100;
    o.convert = PGETL_CONVERT_ALWAYS;
    o.batch_rows = 500;
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ECONNLOST);
    assert_contains(err.message, "screen_lost.csv (rows from line 502): ");
    assert_contains(err.message, "CHECK screen");
    assert_false(st.committed);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM scr"), 0);
    harness_sql(lh_pg, "DROP TABLE scr; DROP FUNCTION scr_ok(int)");
}

/*
 * A NUL byte in a row that is re-encoded (here a ';' delimiter) goes to the
 * server as it is, so the server refuses that row with its own 22021, as
 * it would from the file, and the rows around it load.
 */
static void nul_byte_in_reencoded_row(void **state) {
    (void)state;
    reset_tables();
    static const char csv[] = "id;name;qty\n1;a\\b;1\n2;x\0y;2\n3;c\td;3\n";
    const char *p = lh_file("nul.csv", csv, sizeof csv - 1);
    pgetl_load_options o = lh_opts("rj");
    o.delimiter = ';';
    o.max_errors = 5;
    o.convert = PGETL_CONVERT_NEVER;
    o.reject_path = reject_path("nul.rej");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_rejected, 1);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM rj"), 2);
    assert_string_equal(lh_text_query("SELECT name FROM rj WHERE id = 1"), "a\\b");
    assert_string_equal(lh_text_query("SELECT name FROM rj WHERE id = 3"), "c\td");
    size_t n;
    char *rej = lh_read_file(o.reject_path, &n);
    assert_non_null(rej);
    assert_int_equal(n, 8);
    assert_memory_equal(rej, "2;x\0y;2\n", 8);
    free(rej);
    char logp[600];
    snprintf(logp, sizeof logp, "%s.log", o.reject_path);
    char *log = lh_read_file(logp, &n);
    assert_non_null(log);
    assert_contains(log, "nul.csv:3: [22021]");
    free(log);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rejects_written_verbatim),
        cmocka_unit_test(multiline_row_first_in_batch),
        cmocka_unit_test(too_many_rejects_rolls_back),
        cmocka_unit_test(foreign_key_bisection),
        cmocka_unit_test(no_reject_path_counts_only),
        cmocka_unit_test(clean_load_leaves_no_reject_file),
        cmocka_unit_test(reject_file_never_overwrites_an_input),
        cmocka_unit_test(suspects_load_after_binary_rows),
        cmocka_unit_test(fatal_error_under_isolation_names_its_line),
        cmocka_unit_test(check_screen_routes_later_batches),
        cmocka_unit_test(check_screen_error_stops_screening),
        cmocka_unit_test(check_screen_connection_lost),
        cmocka_unit_test(nul_byte_in_reencoded_row),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, lh_setup, lh_teardown);
}
