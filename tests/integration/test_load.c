/*
 * pgetl_load_files: the raw CSV/text path, header checks, transactions and
 * hostile input. Every failing case also checks that nothing was committed.
 */
#include "load_helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <zlib.h>
#include <zstd.h>

static void reset_table(void) {
    harness_sql(lh_pg, "DROP TABLE IF EXISTS lt");
    harness_sql(lh_pg, "CREATE TABLE lt (id int PRIMARY KEY, name text, amount numeric)");
}

static int64_t count_lt(void) {
    return harness_scalar(lh_pg, "SELECT count(*) FROM lt");
}

static void basic_csv_quotes_newlines(void **state) {
    (void)state;
    reset_table();
    const char *csv = "id,name,amount\n"
                      "1,plain,1.5\n"
                      "2,\"comma, inside\",2\n"
                      "3,\"line\nbreak\",3\n"
                      "4,\"quote \"\" here\",\n"
                      "5,,5\n"
                      "6,\"\",6\n"
                      "7,last no newline,7";
    const char *p = lh_text("basic.csv", csv);
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_read, 7);
    assert_int_equal(st.rows_loaded, 7);
    assert_true(st.committed);
    assert_int_equal(count_lt(), 7);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 2"), "comma, inside");
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 3"), "line\nbreak");
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 4"), "quote \" here");
    assert_int_equal(
        harness_scalar(lh_pg, "SELECT count(*) FROM lt WHERE id = 4 AND amount IS NULL"), 1);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lt WHERE id = 5 AND name IS NULL"),
                     1);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lt WHERE id = 6 AND name = ''"),
                     1);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 7"), "last no newline");
}

static void small_batches_multiline_rows(void **state) {
    /* Batches of 2 rows over rows spanning lines: no row repeated, dropped or split. */
    (void)state;
    reset_table();
    char line[256];
    FILE *f = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/multi.csv", lh_dir);
    f = fopen(path, "w");
    fputs("name,id\n", f);
    for (int i = 0; i < 101; i++) {
        snprintf(line, sizeof line, "\"r%d\nsecond, line\n\"\"third\"\"\",%d\n", i, i);
        fputs(line, f);
    }
    fclose(f);
    pgetl_load_options o = lh_opts("lt");
    o.batch_rows = 2;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(path, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_loaded, 101);
    assert_int_equal(st.batches, 51);
    assert_int_equal(count_lt(), 101);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 57"),
                        "r57\nsecond, line\n\"third\"");
    assert_int_equal(harness_scalar(lh_pg, "SELECT sum(id) FROM lt"), 100 * 101 / 2);
}

static void header_folding_and_order(void **state) {
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS lh");
    harness_sql(lh_pg, "CREATE TABLE lh (id int, \"Amount\" int, note text DEFAULT 'dflt')");
    /* ID folds to id; Amount matches the quoted column exactly; note is absent -> default. */
    const char *p = lh_text("fold.csv", "Amount,ID\n10,1\n20,2\n");
    pgetl_load_options o = lh_opts("lh");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(harness_scalar(lh_pg, "SELECT sum(\"Amount\") FROM lh WHERE id = 2"), 20);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lh WHERE note = 'dflt'"), 2);
    /* "amount" (lower case) is not the quoted column "Amount". */
    p = lh_text("fold2.csv", "amount,id\n1,1\n");
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESCHEMA);
    assert_contains(err.message, "[amount]");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lh"), 2);
}

static void header_unknown_and_duplicate_all_listed(void **state) {
    (void)state;
    reset_table();
    const char *good = lh_text("good.csv", "id,name\n1,a\n");
    const char *bad = lh_text("badhdr.csv", "id,nme,Name,NAME,bogus\n1,a,b,c,d\n");
    const char *paths[2] = {good, bad};
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(pgetl_load_files(lh_pool, paths, 2, &o, &st, &err), PGETL_ESCHEMA);
    assert_contains(err.message, "badhdr.csv");
    assert_contains(err.message, "unknown columns [nme, bogus]");
    assert_contains(err.message, "duplicate columns [NAME]");
    /* An empty header field is named too. */
    bad = lh_text("emptyhdr.csv", "id,,name\n1,a,b\n");
    assert_int_equal(lh_load1(bad, &o, &st, &err), PGETL_ESCHEMA);
    assert_contains(err.message, "unknown columns [\"\"]");
    assert_false(st.committed);
    assert_int_equal(count_lt(), 0); /* the good first file was not loaded either */
}

static void wrong_delimiter(void **state) {
    (void)state;
    reset_table();
    const char *p = lh_text("semi.csv", "id;name;amount\n1;a;2\n");
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESCHEMA);
    assert_contains(err.message, "unknown columns [id;name;amount]");
    assert_contains(err.message, "delimiter");
    assert_int_equal(count_lt(), 0);
}

static void unknown_table_and_columns(void **state) {
    (void)state;
    reset_table();
    const char *p = lh_text("t.csv", "id\n1\n");
    pgetl_load_options o = lh_opts("no_such_table");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ENOTFOUND);
    assert_contains(err.message, "no_such_table");
    o = lh_opts("lt");
    const char *cols[3] = {"id", "nope", "nada"};
    o.columns = cols;
    o.ncolumns = 3;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESCHEMA);
    assert_contains(err.message, "nope");
    assert_contains(err.message, "nada");
}

static void columns_option_and_no_header(void **state) {
    (void)state;
    reset_table();
    /* No header: all columns in table order. */
    const char *p = lh_text("nohdr.csv", "1,a,1.5\n2,b,2.5\n");
    pgetl_load_options o = lh_opts("lt");
    o.header = false;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(count_lt(), 2);
    /* Given columns with a header line that is skipped unchecked. */
    p = lh_text("cols.csv", "whatever,ignored\nx3,3\n");
    o = lh_opts("lt");
    const char *cols[2] = {"name", "id"};
    o.columns = cols;
    o.ncolumns = 2;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 3"), "x3");
}

static void bom_and_crlf(void **state) {
    (void)state;
    reset_table();
    const char *csv = "\xEF\xBB\xBFid,name\r\n1,\"a\r\nb\"\r\n2,c\r\n";
    const char *p = lh_text("bom.csv", csv);
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(count_lt(), 2);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 2"), "c");
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 1"), "a\r\nb");
    /* CRLF without a line end on the last row. */
    reset_table();
    p = lh_text("crlf_noeol.csv", "id,name\r\n1,a\r\n2,b");
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 2"), "b");
}

static void empty_and_header_only(void **state) {
    (void)state;
    reset_table();
    const char *e = lh_text("empty.csv", "");
    const char *h = lh_text("hdr.csv", "id,name\n");
    const char *paths[2] = {e, h};
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(pgetl_load_files(lh_pool, paths, 2, &o, &st, &err), &err);
    assert_int_equal(st.rows_read, 0);
    assert_true(st.committed);
    assert_int_equal(count_lt(), 0);
}

static void file_not_found_and_directory(void **state) {
    (void)state;
    reset_table();
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/missing.csv", lh_dir);
    assert_int_equal(lh_load1(path, &o, &st, &err), PGETL_ENOTFOUND);
    assert_contains(err.message, "missing.csv");
    assert_int_equal(lh_load1(lh_dir, &o, &st, &err), PGETL_EIO);
    assert_contains(err.message, "is a directory");
    /* Without a header too, and before the good first file is sent. */
    const char *good = lh_text("nf_good.csv", "1,a,1\n");
    const char *paths[2] = {good, path};
    o.header = false;
    assert_int_equal(pgetl_load_files(lh_pool, paths, 2, &o, &st, &err), PGETL_ENOTFOUND);
    assert_int_equal(st.batches, 0);
    assert_int_equal(count_lt(), 0);
}

static void unterminated_quote_at_eof(void **state) {
    (void)state;
    reset_table();
    const char *good = lh_text("ok.csv", "id,name\n1,a\n");
    const char *bad = lh_text("unterm.csv", "id,name\n2,b\n3,c\n4,\"never closed\n5,e\n");
    const char *paths[2] = {good, bad};
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(pgetl_load_files(lh_pool, paths, 2, &o, &st, &err), PGETL_EDATA);
    assert_contains(err.message, "unterm.csv line 4");
    assert_contains(err.message, "unterminated quoted field");
    assert_false(st.committed);
    assert_int_equal(count_lt(), 0);
}

static void ragged_rows(void **state) {
    (void)state;
    reset_table();
    const char *p = lh_text("ragged.csv", "id,name\n1,a\n2\n3,c\n");
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_EDATA);
    assert_contains(err.message, "ragged.csv line 3");
    assert_contains(err.message, "expected 2 fields, found 1");
    p = lh_text("ragged2.csv", "id,name\n1,a\n2,b,extra\n");
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_EDATA);
    assert_contains(err.message, "ragged2.csv line 3");
    assert_contains(err.message, "found 3");
    assert_int_equal(count_lt(), 0);
}

/* Loads `text` as file `name`, expects a server error whose message holds `want`. */
static void expect_server_error(const char *name, const char *text, const pgetl_load_options *o,
                                const char *want) {
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(lh_text(name, text), o, &st, &err), PGETL_ESERVER);
    assert_contains(err.message, want);
    assert_false(st.committed);
    assert_int_equal(count_lt(), 0);
}

static void server_errors_name_the_line(void **state) {
    (void)state;
    reset_table();
    pgetl_load_options o = lh_opts("lt");
    o.batch_rows = 3; /* the multi-line row shares the failing COPY */
    /* Row 3 (line 5: the quoted newline shifts it) is not an integer. */
    expect_server_error("types.csv", "id,name\n1,\"two\nlines\"\n2,b\nx3,c\n4,d\n", &o,
                        "types.csv line 5");
    /* The multi-line row in the middle of the COPY this time. */
    expect_server_error("types2.csv", "id,name\n1,a\n2,\"x\ny\"\nx3,c\n", &o, "types2.csv line 5");
    /* An embedded CRLF in the first row of an LF file: COPY counts its '\r' there. */
    expect_server_error("types3.csv", "id,name\n1,\"a\r\nb\"\n2,\"c\nd\"\nx3,e\n", &o,
                        "types3.csv line 6");
    /* A CRLF file with embedded CRLFs. */
    expect_server_error("types4.csv", "id,name\r\n1,\"a\r\nb\"\r\n2,\"c\r\nd\"\r\nx3,e\r\n", &o,
                        "types4.csv line 6");
    /*
     * A bare CR inside quotes, no LF: COPY counts it as a line in the first
     * row (line end not known yet) and in a CRLF file, so those rows are
     * tracked although none spans input lines; the COPY's row is right too.
     */
    o.convert = PGETL_CONVERT_NEVER;
    expect_server_error("types5.csv", "id,name\n1,\"a\rb\"\n2,b\nx3,c\n", &o,
                        "types5.csv line 4: COPY \"public\".\"lt\" row 3, column \"id\"");
    expect_server_error("types6.csv", "id,name\r\n1,a\r\n2,\"b\rc\"\r\nx3,d\r\n", &o,
                        "types6.csv line 4: COPY \"public\".\"lt\" row 3, column \"id\"");
    /* A CRLF file whose quoted break is a bare LF: COPY counts only CRs there. */
    expect_server_error("types8.csv", "id,name\r\n1,a\r\n2,\"b\nc\"\r\nx3,d\r\n", &o,
                        "types8.csv line 5: COPY \"public\".\"lt\" row 3, column \"id\"");
    o.convert = PGETL_CONVERT_AUTO;
    /* The SQLSTATE comes along: a bad integer, then a duplicate key. */
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(lh_text("types7.csv", "id,name\nx1,a\n"), &o, &st, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22P02");
    expect_server_error("dup.csv", "id,name\n1,a\n2,b\n1,c\n", &o, "dup.csv line 4");
    assert_int_equal(lh_load1(lh_text("dup.csv", "id,name\n1,a\n2,b\n1,c\n"), &o, &st, &err),
                     PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23505");
}

/*
 * A batch of many CopyData messages whose quoted line breaks come before
 * the bad row, in every message: the error still names the input line and
 * the COPY's row.
 */
static void server_error_line_after_many_chunks(void **state) {
    (void)state;
    reset_table();
    char *data = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&data, &len);
    assert_non_null(f);
    fputs("id,name\n", f);
    int64_t line = 2, bad_line = 0;
    const int rows = 50000; /* ~3.5 MiB: one batch, many messages */
    for (int i = 1; i <= rows; i++) {
        bool multi = i % 7 == 0;
        bool bad = i == rows - 5;
        if (bad)
            bad_line = line;
        fprintf(f, "%s%d,\"row %d padding padding padding padding padding padding%s\"\n",
                bad ? "x" : "", i, i, multi ? "\nsecond line" : "");
        line += multi ? 2 : 1;
    }
    assert_int_equal(fclose(f), 0);
    assert_true(len > 3 * PGETL_COPY_CHUNK && len < PGETL_LOAD_BATCH_BYTES);
    const char *p = lh_file("chunks.csv", data, len);
    free(data);
    pgetl_load_options o = lh_opts("lt");
    o.convert = PGETL_CONVERT_NEVER;
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    char want[64];
    snprintf(want, sizeof want, "chunks.csv line %lld:", (long long)bad_line);
    assert_contains(err.message, want);
    /* The COPY's own row count, which the tracked line breaks correct. */
    snprintf(want, sizeof want, " row %d, column \"id\"", rows - 5);
    assert_contains(err.message, want);
    assert_string_equal(err.sqlstate, "22P02");
    assert_int_equal(count_lt(), 0);
}

static void invalid_utf8_and_nul(void **state) {
    (void)state;
    reset_table();
    const char *p = lh_text("utf8.csv", "id,name\n1,ok\n2,bad\xC3\x28here\n");
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22021");
    assert_contains(err.message, "utf8.csv line 3");
    assert_int_equal(count_lt(), 0);
    static const char nul[] = "id,name\n1,a\n2,b\0c\n";
    p = lh_file("nul.csv", nul, sizeof nul - 1);
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22021");
    assert_contains(err.message, "nul.csv line 3");
    assert_int_equal(count_lt(), 0);
}

static size_t gz(const char *in, size_t n, unsigned char *out, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

static void compressed_inputs(void **state) {
    (void)state;
    reset_table();
    size_t cap = 1 << 20, n = 0;
    char *csv = malloc(cap);
    n += (size_t)snprintf(csv, cap, "id,name\n");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(csv + n, cap - n, "%d,name %d\n", i, i);
    unsigned char *z = malloc(cap);
    size_t zl = gz(csv, n, z, cap);
    const char *p = lh_file("data.csv", z, zl); /* gzip, named .csv */
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(count_lt(), 20000);
    assert_int_equal(st.bytes_read, (int64_t)zl);
    /* zstd, truncating the table first. */
    size_t zc = ZSTD_compress(z, cap, csv, n, 3);
    p = lh_file("data.zst", z, zc);
    o.truncate = true;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(count_lt(), 20000);
    /* Truncated gzip: error, and the truncate in the same transaction is undone too. */
    zl = gz(csv, n, z, cap);
    p = lh_file("cut.csv.gz", z, zl - 100);
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_EDATA);
    assert_contains(err.message, "truncated gzip");
    assert_int_equal(count_lt(), 20000);
    free(z);
    free(csv);
}

static void truncate_is_atomic(void **state) {
    (void)state;
    reset_table();
    harness_sql(lh_pg, "INSERT INTO lt VALUES (100, 'old', 1)");
    const char *p = lh_text("tr.csv", "id,name\n1,new\n");
    pgetl_load_options o = lh_opts("lt");
    o.truncate = true;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(count_lt(), 1);
    assert_string_equal(lh_text_query("SELECT name FROM lt"), "new");
    /* A failing load with truncate leaves the old rows. */
    p = lh_text("trbad.csv", "id,name\n2,x\nbad,y\n");
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    assert_string_equal(lh_text_query("SELECT name FROM lt"), "new");
}

/* Tuples on the table's first page written frozen (HEAP_XMIN_FROZEN = 0x0300). */
static int64_t frozen_on_page0(const char *table) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FILTER (WHERE (t_infomask & 768) = 768) * 1000 + count(*) "
             "FROM heap_page_items(get_raw_page('%s', 0))",
             table);
    return harness_scalar(lh_pg, sql);
}

static void truncate_uses_freeze(void **state) {
    (void)state;
    harness_sql(lh_pg, "CREATE EXTENSION IF NOT EXISTS pageinspect");
    reset_table();
    harness_sql(lh_pg, "INSERT INTO lt VALUES (100, 'old', 1)");
    const char *p = lh_text("fr.csv", "id,name\n1,a\n2,b\n3,c\n");
    pgetl_load_options o = lh_opts("lt");
    o.truncate = true;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(count_lt(), 3);
    assert_int_equal(frozen_on_page0("lt"), 3 * 1000 + 3); /* all 3 tuples frozen */
    /* Without truncate: plain COPY, nothing frozen. */
    reset_table();
    pgetl_load_options plain = lh_opts("lt");
    assert_pgetl_ok(lh_load1(p, &plain, &st, &err), &err);
    assert_int_equal(frozen_on_page0("lt"), 3);
    /* With bad-row isolation (savepoints): FREEZE is not allowed, falls back to plain COPY. */
    reset_table();
    o.max_errors = 5;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(frozen_on_page0("lt"), 3);
    /* A partitioned table refuses FREEZE: loads with plain COPY. */
    harness_sql(lh_pg, "DROP TABLE IF EXISTS lpart");
    harness_sql(lh_pg, "CREATE TABLE lpart (id int, name text) PARTITION BY RANGE (id)");
    harness_sql(lh_pg, "CREATE TABLE lpart_1 PARTITION OF lpart FOR VALUES FROM (0) TO (100)");
    harness_sql(lh_pg, "INSERT INTO lpart VALUES (50, 'old')");
    o = lh_opts("lpart");
    o.truncate = true;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lpart"), 3);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lpart WHERE id = 50"), 0);
}

static void stray_quote_in_huge_file_is_bounded(void **state) {
    /* A quote that never closes must not make the loader buffer the whole file. */
    (void)state;
    reset_table();
    char path[512];
    snprintf(path, sizeof path, "%s/stray.csv", lh_dir);
    FILE *f = fopen(path, "w");
    fputs("id,name\n1,a\n2,\"oops\n", f);
    static char chunk[1 << 16];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (i % 16 == 15) ? '\n' : 'x';
    for (int i = 0; i < 80 * 16; i++) /* 80 MiB */
        fwrite(chunk, 1, sizeof chunk, f);
    fclose(f);
    pgetl_load_options o = lh_opts("lt");
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(path, &o, &st, &err), PGETL_EDATA);
    assert_contains(err.message, "stray.csv line 3");
    assert_contains(err.message, "longer than 64 MiB");
    assert_contains(err.message, "quote");
    assert_int_equal(count_lt(), 0);
    remove(path);
}

static void latin1_encoding(void **state) {
    (void)state;
    reset_table();
    const char *p = lh_text("latin1.csv", "id,name\n1,caf\xE9\n");
    pgetl_load_options o = lh_opts("lt");
    o.encoding = "LATIN1";
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 1"), "caf\xC3\xA9");
    assert_int_equal(st.batches_binary, 0); /* conversion needs UTF-8 input */
}

static void text_format_and_end_marker(void **state) {
    (void)state;
    reset_table();
    const char *p = lh_text("t.txt", "id\tname\n1\ttab\\there\n2\t\\N\n3\tback\\\\slash\n\\.\n");
    pgetl_load_options o = lh_opts("lt");
    o.format = PGETL_LOAD_TEXT;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_read, 3);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 1"), "tab\there");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lt WHERE name IS NULL"), 1);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 3"), "back\\slash");
    /* "\." in the middle would silently end COPY: refused. */
    reset_table();
    p = lh_text("t2.txt", "id\tname\n1\ta\n\\.\n2\tb\n");
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_EDATA);
    assert_contains(err.message, "t2.txt line 3");
    assert_int_equal(count_lt(), 0);
}

static void csv_end_marker_is_data(void **state) {
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS l1");
    harness_sql(lh_pg, "CREATE TABLE l1 (v text)");
    const char *p = lh_text("eod.csv", "v\na\n\\.\nb\n");
    pgetl_load_options o = lh_opts("l1");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM l1"), 3);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM l1 WHERE v = '\\.'"), 1);
    /* CRLF lines, and the marker as the last line without a line end. */
    p = lh_text("eod2.csv", "v\r\na\r\n\\.\r\nb\r\n\\.");
    o.truncate = true;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM l1"), 4);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM l1 WHERE v = '\\.'"), 2);
}

static void custom_dialects(void **state) {
    (void)state;
    reset_table();
    /* TSV: CSV rules with tabs; re-encoded for the server. */
    const char *p = lh_text("d.tsv", "id\tname\n1\t\"a\tb\"\n2\tx,y\n3\t\n");
    pgetl_load_options o = lh_opts("lt");
    o.format = PGETL_LOAD_TSV;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 1"), "a\tb");
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 2"), "x,y");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lt WHERE id = 3 AND name IS NULL"),
                     1);
    /* ';' delimiter, single quotes, backslash escape, NA for NULL. */
    reset_table();
    p = lh_text("d.csv", "id;name;amount\n1;'it\\'s; ok';NA\n2;'';3\n3;\"dq\";NA\n");
    o = lh_opts("lt");
    o.delimiter = ';';
    o.quote = '\'';
    o.escape = '\\';
    o.null_string = "NA";
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 1"), "it's; ok");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lt WHERE amount IS NULL"), 2);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lt WHERE id = 2 AND name = ''"),
                     1);
    assert_string_equal(lh_text_query("SELECT name FROM lt WHERE id = 3"), "\"dq\"");
}

typedef struct prog {
    int calls;
    int done_calls;
    pgetl_load_progress last;
} prog;

static void on_progress(void *user, const pgetl_load_progress *p) {
    prog *g = user;
    g->calls++;
    g->done_calls += p->done;
    g->last = *p;
}

static void progress_and_stats(void **state) {
    (void)state;
    reset_table();
    char path[512];
    snprintf(path, sizeof path, "%s/prog.csv", lh_dir);
    FILE *f = fopen(path, "w");
    fputs("id,name\n", f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "%d,n%d\n", i, i);
    fclose(f);
    prog g = {0};
    pgetl_load_options o = lh_opts("lt");
    o.batch_rows = 100;
    o.progress = on_progress;
    o.progress_user = &g;
    o.progress_interval_s = 0;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(path, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_true(g.calls >= 50);
    assert_int_equal(g.done_calls, 1);
    assert_true(g.last.done);
    assert_int_equal(g.last.rows_read, 5000);
    assert_int_equal(g.last.rows_loaded, 5000);
    struct stat sb;
    stat(path, &sb);
    assert_int_equal(st.bytes_read, (int64_t)sb.st_size);
    assert_int_equal(st.batches, 50);
}

static void dry_run_sends_nothing(void **state) {
    (void)state;
    reset_table();
    const char *p = lh_text("dry.csv", "id,name\n1,a\n2,b\n");
    pgetl_load_options o = lh_opts("lt");
    o.dry_run = true;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(st.rows_read, 2);
    assert_false(st.committed);
    assert_int_equal(count_lt(), 0);
    /* A dry run still finds bad input. */
    p = lh_text("dry2.csv", "id,name\n1,a\n2\n");
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_EDATA);
}

/* ---- bounded memory: a large generated input through a pipe on stdin ---- */

typedef struct gen_job {
    int fd;
    int64_t rows;
} gen_job;

static void *generate(void *arg) {
    gen_job *j = arg;
    char buf[65536];
    size_t n = (size_t)snprintf(buf, sizeof buf, "id,name\n");
    for (int64_t i = 0; i < j->rows; i++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%lld,\"padding padding padding padding, %lld\nsecond line\"\n",
                              (long long)i, (long long)i);
        if (n > sizeof buf - 200) {
            if (write(j->fd, buf, n) != (ssize_t)n)
                break;
            n = 0;
        }
    }
    if (n)
        (void)!write(j->fd, buf, n);
    close(j->fd);
    return NULL;
}

static long vm_hwm_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/*
 * A counting allocator (installed before any other pgetl call) tracks the
 * library's live bytes and their peak: an allocator-independent high-water
 * mark that also holds under ASan, whose quarantine makes RSS meaningless.
 */
static atomic_llong live_bytes, peak_bytes;

static void note(long long delta) {
    long long now = atomic_fetch_add(&live_bytes, delta) + delta;
    long long peak = atomic_load(&peak_bytes);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now))
        ;
}

static void *count_malloc(size_t n) {
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    note((long long)n);
    return (char *)p + 16;
}

static void count_free(void *q) {
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    note(-(long long)p[0]);
    free(p);
}

static void *count_realloc(void *q, size_t n) {
    if (!q)
        return count_malloc(n);
    size_t *p = (size_t *)((char *)q - 16);
    size_t old = p[0];
    size_t *r = realloc(p, n + 16);
    if (!r)
        return NULL;
    r[0] = n;
    note((long long)n - (long long)old);
    return (char *)r + 16;
}

static void bounded_memory_from_pipe(void **state) {
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS lbig");
    harness_sql(lh_pg, "CREATE UNLOGGED TABLE lbig (id bigint, name text)");
    int64_t rows = 1000000; /* ~66 MB of input */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(0);
    assert_int_equal(dup2(fds[0], 0), 0);
    close(fds[0]);
    /* Reset the peak-RSS mark so earlier tests do not count. */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    assert_non_null(cr);
    fputs("5", cr);
    fclose(cr);
    long before = vm_hwm_kb();
    atomic_store(&peak_bytes, atomic_load(&live_bytes));
    long long live0 = atomic_load(&live_bytes);
    gen_job job = {fds[1], rows};
    pthread_t t;
    pthread_create(&t, NULL, generate, &job);
    pgetl_load_options o = lh_opts("lbig");
    o.batch_rows = 20000;
    pgetl_load_stats st;
    pgetl_error err;
    const char *paths[1] = {"-"};
    pgetl_code rc = pgetl_load_files(lh_pool, paths, 1, &o, &st, &err);
    pthread_join(t, NULL);
    dup2(saved, 0);
    close(saved);
    assert_pgetl_ok(rc, &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_loaded, rows);
    /*
     * Input ~66 MB. What stays live is per batch in flight, not per input
     * byte: three batches (read window, row offsets, binary tuples and, as
     * every row here has a quoted line break, one break entry per row), I/O
     * blocks and the COPY chunk; measured ~25 MiB. A load that buffered its
     * input would pass 66 MB.
     */
    long long lib_peak = atomic_load(&peak_bytes) - live0;
    if (lib_peak > 32LL << 20)
        fail_msg("pgetl's live allocations peaked at %lld bytes loading %lld rows", lib_peak,
                 (long long)rows);
    assert_true(lib_peak > 1 << 20); /* the counter really saw the load's buffers */
    fprintf(stderr, "bounded_memory: pgetl peak %lld KiB for %lld rows\n", lib_peak >> 10,
            (long long)rows);
    /* Sanitizers' shadow memory grows RSS with every byte touched; live_bytes still counts. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    long growth = vm_hwm_kb() - before;
    if (growth > 40 * 1024)
        fail_msg("peak RSS grew by %ld KiB loading %lld rows", growth, (long long)rows);
#else
    (void)before;
#endif
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM lbig"), rows);
    harness_sql(lh_pg, "DROP TABLE lbig");
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basic_csv_quotes_newlines),
        cmocka_unit_test(small_batches_multiline_rows),
        cmocka_unit_test(header_folding_and_order),
        cmocka_unit_test(header_unknown_and_duplicate_all_listed),
        cmocka_unit_test(wrong_delimiter),
        cmocka_unit_test(unknown_table_and_columns),
        cmocka_unit_test(columns_option_and_no_header),
        cmocka_unit_test(bom_and_crlf),
        cmocka_unit_test(empty_and_header_only),
        cmocka_unit_test(file_not_found_and_directory),
        cmocka_unit_test(unterminated_quote_at_eof),
        cmocka_unit_test(ragged_rows),
        cmocka_unit_test(server_errors_name_the_line),
        cmocka_unit_test(server_error_line_after_many_chunks),
        cmocka_unit_test(invalid_utf8_and_nul),
        cmocka_unit_test(compressed_inputs),
        cmocka_unit_test(truncate_is_atomic),
        cmocka_unit_test(truncate_uses_freeze),
        cmocka_unit_test(stray_quote_in_huge_file_is_bounded),
        cmocka_unit_test(latin1_encoding),
        cmocka_unit_test(text_format_and_end_marker),
        cmocka_unit_test(csv_end_marker_is_data),
        cmocka_unit_test(custom_dialects),
        cmocka_unit_test(progress_and_stats),
        cmocka_unit_test(dry_run_sends_nothing),
        cmocka_unit_test(bounded_memory_from_pipe),
    };
    if (pgetl_set_allocator(count_malloc, count_realloc, count_free) != PGETL_OK)
        return 1;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, lh_setup, lh_teardown);
}
