/*
 * Differential test of the binary conversion path: the same generated files
 * (fixed seeds, full of edge values) are loaded with convert ALWAYS into one
 * table and NEVER (raw CSV to the server) into another, with bad-row
 * isolation on so both loads complete; the tables must be equal row for row
 * as text (EXCEPT ALL both ways: zero rows), and the rejects the same.
 */
#include "load_helpers.h"

static uint64_t rng;

static unsigned rnd(unsigned n) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng >> 33) % n);
}

static const char *pick(const char *const *v, size_t n) {
    return v[rnd((unsigned)n)];
}
#define PICK(arr) pick((arr), sizeof(arr) / sizeof *(arr))

/* Appends a CSV field (quoted when needed; `force_quote` for "" vs NULL). */
static void put_field(FILE *f, const char *v, bool first) {
    if (!first)
        fputc(',', f);
    if (!v)
        return; /* NULL: unquoted empty */
    bool q = v[0] == '\0' || strpbrk(v, ",\"\n\r") != NULL;
    if (!q) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static char scratch[16][128];
static int scratch_i;

static char *tmp(void) {
    return scratch[scratch_i++ % 16];
}

static const char *gen_int(int bits, bool clean) {
    static const char *const edge16[] = {"0", "-32768", "32767", "-0", "007", "1"};
    static const char *const edge32[] = {"0", "-2147483648", "2147483647", "-0", "000123"};
    static const char *const edge64[] = {"0", "-9223372036854775808", "9223372036854775807", "-0",
                                         "42"};
    static const char *const dirty[] = {
        "32768", "-2147483649", "9223372036854775808", " 5", "+5", "5 ", "1.0", "1e3", "0x1F", "",
        "abc",   "--1"};
    if (!clean && rnd(4) == 0)
        return PICK(dirty);
    if (rnd(3) == 0)
        return bits == 16 ? PICK(edge16) : bits == 32 ? PICK(edge32) : PICK(edge64);
    char *s = tmp();
    int64_t lim = bits == 16 ? 32767 : bits == 32 ? 2147483647 : INT64_C(922337203685477580);
    int64_t v = (int64_t)(((uint64_t)rnd(1u << 30) << 31 | rnd(1u << 31)) % (uint64_t)lim);
    snprintf(s, 128, "%s%lld", rnd(2) ? "-" : "", (long long)v);
    return s;
}

static const char *gen_float(bool f4, bool clean) {
    static const char *const edge[] = {"0",
                                       "-0",
                                       "1.5",
                                       "0.1",
                                       "0.30000000000000004",
                                       "1.7976931348623157e308",
                                       "2.2250738585072014E-308",
                                       "3.4028235e38",
                                       "1.5e-38",
                                       "123456789012345678901234567890",
                                       "9007199254740993",
                                       "1e22",
                                       "1e23"};
    static const char *const dirty[] = {"1e309",     "3.5e38", "1e-320", "1e-50", "NaN", "Infinity",
                                        "-Infinity", "inf",    ".5",     "5.",    "+1",  " 1",
                                        "1,5",       "0x1p3",  "",       "e5"};
    if (!clean && rnd(4) == 0)
        return PICK(dirty);
    if (rnd(3) == 0) {
        const char *v = PICK(edge);
        /* Values beyond float4's range belong to the dirty set there. */
        if (f4 && (strstr(v, "e308") || strstr(v, "E-308")))
            return "2.5";
        return v;
    }
    char *s = tmp();
    /* 1-20 significant digits, an optional fraction and exponent: rounding cases. */
    int nd = 1 + (int)rnd(20);
    int len = 0;
    if (rnd(2))
        s[len++] = '-';
    for (int i = 0; i < nd; i++)
        s[len++] = (char)('0' + rnd(10));
    if (rnd(2)) {
        s[len++] = '.';
        int nf = 1 + (int)rnd(12);
        for (int i = 0; i < nf; i++)
            s[len++] = (char)('0' + rnd(10));
    }
    s[len] = '\0';
    if (rnd(3) == 0) {
        /* Clean values stay inside the type's normal range; dirty ones may leave it. */
        int lim = f4 ? 37 - nd : 307 - nd;
        bool neg = rnd(2);
        unsigned e = clean ? rnd((unsigned)(neg ? (f4 ? 25 : 280) : lim)) : rnd(f4 ? 60 : 330);
        snprintf(s + len, 128 - (size_t)len, "%c%s%u", rnd(2) ? 'e' : 'E',
                 neg ? "-" : (rnd(2) ? "+" : ""), e);
    }
    return s;
}

static const char *gen_bool(bool clean) {
    static const char *const ok[] = {"t", "f", "true", "false"};
    static const char *const dirty[] = {"TRUE", "yes", "1", "0", "on", " t", "tr", "", "maybe"};
    return (!clean && rnd(4) == 0) ? PICK(dirty) : PICK(ok);
}

static const char *gen_text(bool clean, int maxlen) {
    static const char *const parts[] = {"a",    "Z",  " ", ",",   "\"",   "\n", "\\",  "é",
                                        "日本", "\t", "'", "\\N", "\r\n", "x",  "🙂"};
    static const char *const dirty[] = {"bad\xC3\x28utf8", "\xFF", "toolong-toolong-toolong"};
    if (!clean && rnd(8) == 0)
        return PICK(dirty);
    char *s = tmp();
    size_t len = 0;
    int n = (int)rnd((unsigned)maxlen + 1);
    for (int i = 0; i < n; i++) {
        const char *p = PICK(parts);
        size_t k = strlen(p);
        if (len + k >= 100)
            break;
        memcpy(s + len, p, k);
        len += k;
    }
    s[len] = '\0';
    return s;
}

static const char *gen_date(bool clean, char *s) {
    static const char *const dirty[] = {"2023-02-29",  "1900-02-29",  "2024-13-01", "2024-1-1",
                                        "infinity",    "epoch",       "20240101",   "0000-01-01",
                                        "10000-01-01", "2024-01-01 ", "Jan 5 2020", ""};
    if (!clean && rnd(4) == 0)
        return PICK(dirty);
    unsigned y = rnd(4) == 0 ? 1 + rnd(9999) : 1900 + rnd(200);
    unsigned m = 1 + rnd(12), d = 1 + rnd(m == 2 ? 29 : 31);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    static const unsigned md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d > md[m - 1] + (m == 2 && leap))
        d = md[m - 1];
    snprintf(s, 128, "%04u-%02u-%02u", y, m, d);
    return s;
}

/* ("now" and "today" are left out: they differ between the two loads.) */
static const char *gen_ts(bool clean, bool tz) {
    static const char *const dirty[] = {"2020-01-01 24:00:00",
                                        "2020-01-01 23:59:60",
                                        "2020-01-01 00:00:00.1234567",
                                        "2020-01-01",
                                        "2020-01-01 1:02:03",
                                        "epoch",
                                        "infinity",
                                        "2020-01-01 00:00:00 UTC",
                                        "2020-01-01 00:00:00+0530",
                                        "allballs",
                                        ""};
    char *s = tmp();
    if (!clean && rnd(4) == 0)
        return PICK(dirty);
    char d[128];
    gen_date(true, d);
    int len =
        snprintf(s, 128, "%s%c%02u:%02u:%02u", d, rnd(3) ? ' ' : 'T', rnd(24), rnd(60), rnd(60));
    unsigned nf = rnd(8);
    if (nf && nf <= 6) {
        s[len++] = '.';
        for (unsigned i = 0; i < nf; i++)
            s[len++] = (char)('0' + rnd(10));
        s[len] = '\0';
    }
    if (tz) {
        static const char *const offs[] = {"Z",      "+00", "+02",    "-05",   "+05:30",
                                           "-09:30", "+14", "-12:00", "+15:59"};
        static const char *const doffs[] = {"", " +02", "+0530", "+16", "+02:60", " Europe/Paris"};
        const char *o = (!clean && rnd(4) == 0) ? PICK(doffs) : PICK(offs);
        snprintf(s + len, 128 - (size_t)len, "%s", o);
    } else if (!clean && rnd(6) == 0) {
        snprintf(s + len, 128 - (size_t)len, "+02"); /* the server would drop it: not ours */
    }
    return s;
}

static const char *maybe_null(const char *v) {
    return rnd(12) == 0 ? NULL : v;
}

/* Writes `batches` x `rows` rows; even batches clean (strict grammar only). */
static void generate(const char *path, uint64_t seed, int batches, int rows) {
    rng = seed;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("i2,i4,i8,f4,f8,b,t,v,d,ts,tz\n", f);
    for (int bt = 0; bt < batches; bt++) {
        bool clean = bt % 2 == 0;
        for (int r = 0; r < rows; r++) {
            char d[128];
            put_field(f, maybe_null(gen_int(16, clean)), true);
            put_field(f, maybe_null(gen_int(32, clean)), false);
            put_field(f, maybe_null(gen_int(64, clean)), false);
            put_field(f, maybe_null(gen_float(true, clean)), false);
            put_field(f, maybe_null(gen_float(false, clean)), false);
            put_field(f, maybe_null(gen_bool(clean)), false);
            put_field(f, rnd(10) == 0 ? NULL : gen_text(clean, 8), false);
            put_field(f, maybe_null(gen_text(true, clean ? 3 : 16)), false); /* varchar(12) */
            put_field(f, maybe_null(gen_date(clean, d)), false);
            put_field(f, maybe_null(gen_ts(clean, false)), false);
            put_field(f, maybe_null(gen_ts(clean, true)), false);
            fputc('\n', f);
        }
    }
    fclose(f);
}

static void make_tables(void) {
    const char *cols = "(i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b bool, t text, "
                       "v varchar(12), d date, ts timestamp, tz timestamptz)";
    char sql[512];
    harness_sql(lh_pg, "DROP TABLE IF EXISTS dc_always; DROP TABLE IF EXISTS dc_never");
    snprintf(sql, sizeof sql, "CREATE TABLE dc_always %s", cols);
    harness_sql(lh_pg, sql);
    snprintf(sql, sizeof sql, "CREATE TABLE dc_never %s", cols);
    harness_sql(lh_pg, sql);
}

static void load_both(const char *path, int64_t batch_rows, pgetl_load_stats *sa,
                      pgetl_load_stats *sn) {
    pgetl_error err;
    char rej_a[512], rej_n[512];
    snprintf(rej_a, sizeof rej_a, "%s/always.rej", lh_dir);
    snprintf(rej_n, sizeof rej_n, "%s/never.rej", lh_dir);
    pgetl_load_options o = lh_opts("dc_always");
    o.convert = PGETL_CONVERT_ALWAYS;
    o.batch_rows = batch_rows;
    o.max_errors = 1000000;
    o.reject_path = rej_a;
    pgetl_log_set_handler(NULL, NULL, PGETL_LOG_ERROR); /* thousands of reject lines */
    pgetl_code rc = lh_load1(path, &o, sa, &err);
    if (rc == PGETL_OK) {
        o = lh_opts("dc_never");
        o.convert = PGETL_CONVERT_NEVER;
        o.batch_rows = batch_rows;
        o.max_errors = 1000000;
        o.reject_path = rej_n;
        rc = lh_load1(path, &o, sn, &err);
    }
    harness_log_restore();
    assert_pgetl_ok(rc, &err);
    lh_check_stats(sa);
    lh_check_stats(sn);
    assert_int_equal(sa->rows_loaded, sn->rows_loaded);
    assert_int_equal(sa->rows_rejected, sn->rows_rejected);
    assert_int_equal(sn->batches_binary, 0);
    size_t la, ln;
    char *ra = lh_read_file(rej_a, &la), *rn = lh_read_file(rej_n, &ln);
    if (ra && rn) {
        assert_int_equal(la, ln);
        assert_memory_equal(ra, rn, la);
    } else {
        assert_null(ra);
        assert_null(rn);
    }
    free(ra);
    free(rn);
}

static void assert_tables_equal(void) {
    /* Whole rows as text (alias r: t is a column), so -0 vs 0, float digits and zones count. */
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM (SELECT r::text FROM dc_always r "
                                           "EXCEPT ALL SELECT r::text FROM dc_never r) x"),
                     0);
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM (SELECT r::text FROM dc_never r "
                                           "EXCEPT ALL SELECT r::text FROM dc_always r) x"),
                     0);
}

static void differential_fuzz(void **state) {
    (void)state;
    static const uint64_t seeds[] = {1, 20240601, 0xC0FFEE};
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        make_tables();
        char path[512];
        snprintf(path, sizeof path, "%s/fuzz_%zu.csv", lh_dir, s);
        generate(path, seeds[s], 16, 150);
        pgetl_load_stats sa, sn;
        load_both(path, 150, &sa, &sn);
        assert_int_equal(sa.rows_read, 16 * 150);
        /* The clean half converts; dirty batches went as CSV. */
        assert_true(sa.batches_binary >= 8);
        assert_true(sa.batches_binary < sa.batches);
        assert_true(sa.rows_rejected > 0);
        assert_tables_equal();
        assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM dc_always"), sa.rows_loaded);
    }
}

static void differential_all_clean(void **state) {
    /* Only clean batches: every batch binary, still identical. */
    (void)state;
    make_tables();
    char path[512];
    snprintf(path, sizeof path, "%s/clean.csv", lh_dir);
    generate(path, 777, 1, 3000);
    pgetl_load_stats sa, sn;
    load_both(path, 500, &sa, &sn);
    assert_int_equal(sa.batches_binary, sa.batches);
    assert_int_equal(sa.rows_rejected, 0);
    assert_int_equal(sa.rows_loaded, 3000);
    assert_tables_equal();
}

static void auto_skips_all_text(void **state) {
    /* AUTO converts only when some column is not text; ALWAYS converts text too. */
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS dc_text");
    harness_sql(lh_pg, "CREATE TABLE dc_text (a text, b varchar(20))");
    const char *p = lh_text("txt.csv", "a,b\nx,y\n\"q,\"\"r\",\n");
    pgetl_load_options o = lh_opts("dc_text");
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(st.batches_binary, 0);
    o.convert = PGETL_CONVERT_ALWAYS;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(st.batches_binary, 1);
    assert_int_equal(
        harness_scalar(lh_pg, "SELECT count(*) FROM dc_text WHERE a = 'q,\"r' AND b IS NULL"), 2);
}

static void unsupported_type_never_converts(void **state) {
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS dc_num");
    harness_sql(lh_pg, "CREATE TABLE dc_num (a int, n numeric)");
    const char *p = lh_text("num.csv", "a,n\n1,1.50\n");
    pgetl_load_options o = lh_opts("dc_num");
    o.convert = PGETL_CONVERT_ALWAYS;
    pgetl_load_stats st;
    pgetl_error err;
    assert_pgetl_ok(lh_load1(p, &o, &st, &err), &err);
    assert_int_equal(st.batches_binary, 0);
    assert_string_equal(lh_text_query("SELECT n::text FROM dc_num"), "1.50");
}

static void binary_errors_name_the_line(void **state) {
    /* A constraint violation inside a converted batch still names its input line. */
    (void)state;
    harness_sql(lh_pg, "DROP TABLE IF EXISTS dc_chk");
    harness_sql(lh_pg, "CREATE TABLE dc_chk (a int CHECK (a < 100), d date)");
    const char *p = lh_text("chk.csv", "a,d\n1,2024-01-01\n2,2024-01-02\n300,2024-01-03\n");
    pgetl_load_options o = lh_opts("dc_chk");
    o.convert = PGETL_CONVERT_ALWAYS;
    pgetl_load_stats st;
    pgetl_error err;
    assert_int_equal(lh_load1(p, &o, &st, &err), PGETL_ESERVER);
    assert_string_equal(err.sqlstate, "23514");
    assert_contains(err.message, "chk.csv line 4");
    assert_int_equal(harness_scalar(lh_pg, "SELECT count(*) FROM dc_chk"), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(differential_fuzz),
        cmocka_unit_test(differential_all_clean),
        cmocka_unit_test(auto_skips_all_text),
        cmocka_unit_test(unsupported_type_never_converts),
        cmocka_unit_test(binary_errors_name_the_line),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, lh_setup, lh_teardown);
}
