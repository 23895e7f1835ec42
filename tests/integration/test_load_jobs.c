/*
 * jobs > 1: batches dealt to several connections. The load is still one
 * unit: every connection commits (two-phase when the server allows it) or
 * none does.
 */
#include "load_helpers.h"

static void reset_table(void) {
    harness_sql(lh_pg, "DROP TABLE IF EXISTS jt");
    harness_sql(lh_pg, "CREATE TABLE jt (id int PRIMARY KEY, name text)");
}

/* Writes rows 1..n; row `bad` (if > 0) gets a non-integer id. Returns the path. */
static const char *gen(const char *name, int n, int bad) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", lh_dir, name);
    FILE *f = fopen(path, "w");
    fputs("id,name\n", f);
    for (int i = 1; i <= n; i++) {
        if (i == bad)
            fprintf(f, "x%d,bad\n", i);
        else if (i % 7 == 0)
            fprintf(f, "%d,\"multi\nline %d, with comma\"\n", i, i);
        else
            fprintf(f, "%d,name %d\n", i, i);
    }
    fclose(f);
    return path;
}

static int64_t prepared_left(void) {
    return harness_scalar(lh_pg,
                          "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'pgetl_load_%'");
}

static void jobs_load_everything(void **state) {
    (void)state;
    reset_table();
    const char *p = gen("j.csv", 20000, 0);
    pgetl_load_options o = lh_opts("jt");
    o.jobs = 3;
    o.batch_rows = 500;
    pgetl_load_stats st;
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    pgetl_code rc = lh_load1(p, &o, &st, &err);
    harness_log_restore();
    assert_pgetl_ok(rc, &err);
    lh_check_stats(&st);
    assert_true(st.committed);
    assert_int_equal(st.rows_loaded, 20000);
    assert_int_equal(st.batches, 40);
    assert_contains(log->text, "event=load_commit mode=2pc connections=3");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM jt"), 20000);
    assert_int_equal(harness_scalar(lh_pg, "SELECT sum(id) FROM jt"), 20000LL * 20001 / 2);
    assert_string_equal(lh_text_query("SELECT name FROM jt WHERE id = 14"),
                        "multi\nline 14, with comma");
    assert_int_equal(prepared_left(), 0);
}

static void jobs_failure_rolls_back_all(void **state) {
    (void)state;
    reset_table();
    /* The bad row is near the end: the other connections have loaded many batches by then. */
    const char *p = gen("jbad.csv", 20000, 19001);
    pgetl_load_options o = lh_opts("jt");
    o.jobs = 3;
    o.batch_rows = 500;
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "22P02");
    /* Line: header + 19000 rows, of which 2714 (every 7th) span two lines. */
    char want[64];
    snprintf(want, sizeof want, "jbad.csv line %d", 1 + 19000 + 19000 / 7 + 1);
    assert_contains(err.message, want);
    assert_false(st.committed);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM jt"), 0);
    assert_int_equal(prepared_left(), 0);
}

static void jobs_with_rejects(void **state) {
    (void)state;
    reset_table();
    const char *p = gen("jrej.csv", 5000, 2500);
    pgetl_load_options o = lh_opts("jt");
    o.jobs = 2;
    o.batch_rows = 300;
    o.max_errors = 3;
    char rej[512];
    snprintf(rej, sizeof rej, "%s/jrej.rej", lh_dir);
    o.reject_path = rej;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(st.rows_rejected, 1);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM jt"), 4999);
    size_t n;
    char *r = lh_read_file(rej, &n);
    assert_string_equal(r, "x2500,bad\n");
    free(r);
}

static void jobs_with_truncate_runs_serial(void **state) {
    (void)state;
    reset_table();
    harness_sql(lh_pg, "INSERT INTO jt VALUES (999999, 'old')");
    const char *p = gen("jtr.csv", 3000, 0);
    pgetl_load_options o = lh_opts("jt");
    o.jobs = 3;
    o.batch_rows = 500;
    o.truncate = true;
    pgetl_load_stats st;
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    pgetl_code rc = lh_load1(p, &o, &st, &err);
    harness_log_restore();
    assert_pgetl_ok(rc, &err);
    assert_contains(log->text, "event=load_truncate_serial");
    assert_contains(log->text, "mode=single");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM jt"), 3000);
}

static void jobs_many_files(void **state) {
    (void)state;
    reset_table();
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s", gen("m1.csv", 1000, 0));
    /* Second file: other ids, columns in the other order. */
    snprintf(p2, sizeof p2, "%s/m2.csv", lh_dir);
    FILE *f = fopen(p2, "w");
    fputs("name,id\n", f);
    for (int i = 1001; i <= 2500; i++)
        fprintf(f, "n%d,%d\n", i, i);
    fclose(f);
    const char *paths[2] = {p1, p2};
    pgetl_load_options o = lh_opts("jt");
    o.jobs = 4;
    o.batch_rows = 100;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(pgetl_load_files(lh_pool, paths, 2, &o, &st, &err), &err);
    lh_check_stats(&st);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM jt"), 2500);
    assert_string_equal(lh_text_query("SELECT name FROM jt WHERE id = 2000"), "n2000");
}

static void jobs_beyond_prepared_limit_commit_in_turn(void **state) {
    /*
     * More connections than max_prepared_transactions (16 on the test
     * cluster): no two-phase commit; the connections commit one after the
     * other, still only after every one has finished without error.
     */
    (void)state;
    int64_t maxp =
        harness_scalar(lh_pg, "SELECT current_setting('max_prepared_transactions')::int");
    int jobs = (int)maxp + 1;
    if (jobs < 2 || jobs > 20)
        fail_msg("test cluster has max_prepared_transactions=%lld; scripts/testdb.sh sets 16",
                 (long long)maxp);
    reset_table();
    const char *p = gen("jseq.csv", 6000, 0);
    pgetl_load_options o = lh_opts("jt");
    o.jobs = jobs;
    o.batch_rows = 100;
    pgetl_load_stats st;
    pgetl_error err;
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    pgetl_code rc = lh_load1(p, &o, &st, &err);
    harness_log_restore();
    assert_pgetl_ok(rc, &err);
    lh_check_stats(&st);
    assert_contains(log->text, "mode=sequential");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM jt"), 6000);
    /* And a failure still rolls back every connection. */
    reset_table();
    p = gen("jseqbad.csv", 6000, 5999);
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM jt"), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_load_everything),
        cmocka_unit_test(jobs_failure_rolls_back_all),
        cmocka_unit_test(jobs_with_rejects),
        cmocka_unit_test(jobs_with_truncate_runs_serial),
        cmocka_unit_test(jobs_many_files),
        cmocka_unit_test(jobs_beyond_prepared_limit_commit_in_turn),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, lh_setup, lh_teardown);
}
