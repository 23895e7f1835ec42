/* The CSV/text row-boundary scanner and field splitter, fed bytes only. */
#include "harness.h"

#include "load/load_int.h"

static const pgetl_csv_dialect CSV = {.text = false, .delim = ',', .quote = '"', .escape = '"'};
static const pgetl_csv_dialect TEXT = {.text = true, .delim = '\t', .quote = 0, .escape = 0};

/* Scans the whole buffer (eof: trailing partial row reported with len -1). */
typedef struct row_info {
    size_t len;
    int64_t nfields, nlines;
} row_info;

static int scan_all(const pgetl_csv_dialect *d, const char *p, size_t n, row_info *rows, int max,
                    size_t *rest) {
    int nr = 0;
    size_t off = 0;
    pgetl_csv_scan st;
    pgetl__csv_scan_reset(&st);
    size_t len;
    while (off < n && pgetl__csv_scan_row(d, &st, p + off, n - off, &len)) {
        if (nr < max)
            rows[nr] = (row_info){len, st.nfields, st.nlines};
        nr++;
        off += len;
        pgetl__csv_scan_next(&st);
    }
    *rest = n - off;
    return nr;
}

/*
 * The same scan, but the bytes arrive `step` at a time (the scanner resumes
 * from its saved state). Must find exactly the same rows.
 */
static int scan_chunked(const pgetl_csv_dialect *d, const char *p, size_t n, size_t step,
                        row_info *rows, int max, size_t *rest) {
    int nr = 0;
    size_t off = 0, avail = 0;
    pgetl_csv_scan st;
    pgetl__csv_scan_reset(&st);
    while (avail < n) {
        avail = avail + step > n ? n : avail + step;
        size_t len;
        while (off < avail && pgetl__csv_scan_row(d, &st, p + off, avail - off, &len)) {
            if (nr < max)
                rows[nr] = (row_info){len, st.nfields, st.nlines};
            nr++;
            off += len;
            pgetl__csv_scan_next(&st);
        }
    }
    *rest = n - off;
    return nr;
}

static void simple_rows(void **state) {
    (void)state;
    const char *in = "a,b,c\n1,2,3\n\nx\n";
    row_info r[8];
    size_t rest;
    int n = scan_all(&CSV, in, strlen(in), r, 8, &rest);
    assert_int_equal(n, 4);
    assert_int_equal(rest, 0);
    assert_int_equal(r[0].len, 6);
    assert_int_equal(r[0].nfields, 3);
    assert_int_equal(r[2].len, 1);
    assert_int_equal(r[2].nfields, 1);
    assert_int_equal(r[3].nfields, 1);
}

static void quoted_delims_newlines(void **state) {
    (void)state;
    const char *in = "1,\"a,b\nc\"\"d\n\",3\n2,\"\",\"x\"\n";
    row_info r[8];
    size_t rest;
    int n = scan_all(&CSV, in, strlen(in), r, 8, &rest);
    assert_int_equal(n, 2);
    assert_int_equal(rest, 0);
    assert_int_equal(r[0].len, strlen("1,\"a,b\nc\"\"d\n\",3\n"));
    assert_int_equal(r[0].nfields, 3);
    assert_int_equal(r[0].nlines, 2);
    assert_int_equal(r[1].nfields, 3);
    assert_int_equal(r[1].nlines, 0);
}

static void quote_mid_field_toggles(void **state) {
    /* COPY toggles quoting on any quote, not only at a field start. */
    (void)state;
    const char *in = "ab\"c,\nd\"e,f\n";
    row_info r[4];
    size_t rest;
    int n = scan_all(&CSV, in, strlen(in), r, 4, &rest);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].nfields, 2);
    assert_int_equal(r[0].nlines, 1);
}

static void crlf_rows(void **state) {
    (void)state;
    const char *in = "a,b\r\n\"x\r\ny\",2\r\n";
    row_info r[4];
    size_t rest;
    int n = scan_all(&CSV, in, strlen(in), r, 4, &rest);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].len, 5);
    assert_int_equal(r[1].nlines, 1);
    assert_int_equal(r[1].nfields, 2);
}

static void unterminated_quote_needs_more(void **state) {
    (void)state;
    const char *in = "1,2\n3,\"abc\n4,5\n";
    row_info r[4];
    size_t rest;
    int n = scan_all(&CSV, in, strlen(in), r, 4, &rest);
    assert_int_equal(n, 1);
    assert_int_equal(rest, strlen("3,\"abc\n4,5\n"));
}

static void custom_dialect(void **state) {
    (void)state;
    pgetl_csv_dialect d = {.text = false, .delim = ';', .quote = '\'', .escape = '\\'};
    /* 'a\'b;\\' is one field: a'b;\ ; then a field holding a newline. */
    const char *in = "'a\\'b;\\\\';'x\ny'\nq;r\n";
    row_info r[4];
    size_t rest;
    int n = scan_all(&d, in, strlen(in), r, 4, &rest);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].nfields, 2);
    assert_int_equal(r[0].nlines, 1);
    assert_int_equal(r[1].nfields, 2);

    pgetl_buf out;
    pgetl__buf_init(&out);
    pgetl_csv_field f[4];
    int nf;
    pgetl_error err;
    assert_pgetl_ok(pgetl__csv_split(&d, "", 0, in, r[0].len, &out, f, 4, &nf, &err), &err);
    assert_int_equal(nf, 2);
    assert_int_equal(f[0].len, 5);
    assert_memory_equal(out.data + f[0].off, "a'b;\\", 5);
    assert_int_equal(f[1].len, 3);
    assert_memory_equal(out.data + f[1].off, "x\ny", 3);
    pgetl__buf_reset(&out);
}

static void text_format_escapes(void **state) {
    (void)state;
    const char *in = "1\ta\\\nb\t\\N\n2\t\\\\\tc\\td\n";
    row_info r[4];
    size_t rest;
    int n = scan_all(&TEXT, in, strlen(in), r, 4, &rest);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].nfields, 3);
    assert_int_equal(r[0].nlines, 1);
    assert_int_equal(r[1].nfields, 3);

    pgetl_buf out;
    pgetl__buf_init(&out);
    pgetl_csv_field f[4];
    int nf;
    pgetl_error err;
    assert_pgetl_ok(pgetl__csv_split(&TEXT, "\\N", 2, in, r[0].len, &out, f, 4, &nf, &err), &err);
    assert_int_equal(nf, 3);
    assert_memory_equal(out.data + f[1].off, "a\nb", 3);
    assert_true(f[2].null);
    assert_false(f[1].null);
    assert_pgetl_ok(
        pgetl__csv_split(&TEXT, "\\N", 2, in + r[0].len, r[1].len, &out, f, 4, &nf, &err), &err);
    assert_int_equal(f[1].len, 1);
    assert_memory_equal(out.data + f[1].off, "\\", 1);
    assert_int_equal(f[2].len, 3);
    assert_memory_equal(out.data + f[2].off, "c\td", 3);
    /* Octal and hex escapes. */
    const char *oct = "\\101\\x42\\x4\n";
    assert_pgetl_ok(pgetl__csv_split(&TEXT, "\\N", 2, oct, strlen(oct), &out, f, 4, &nf, &err),
                    &err);
    assert_int_equal(f[0].len, 3);
    assert_memory_equal(out.data + f[0].off, "AB\x04", 3);
    pgetl__buf_reset(&out);
}

static void split_nulls_and_quotes(void **state) {
    (void)state;
    const char *row = ",\"\",\"a\"\"b\",x\"y,z\"w,NA\r\n";
    pgetl_buf out;
    pgetl__buf_init(&out);
    pgetl_csv_field f[8];
    int nf;
    pgetl_error err;
    assert_pgetl_ok(pgetl__csv_split(&CSV, "", 0, row, strlen(row), &out, f, 8, &nf, &err), &err);
    assert_int_equal(nf, 5);
    assert_true(f[0].null);
    assert_false(f[1].null);
    assert_int_equal(f[1].len, 0);
    assert_true(f[1].quoted);
    assert_int_equal(f[2].len, 3);
    assert_memory_equal(out.data + f[2].off, "a\"b", 3);
    assert_int_equal(f[3].len, 5);
    assert_memory_equal(out.data + f[3].off, "xy,zw", 5);
    /* Trailing CRLF stripped: NA has no \r. */
    assert_int_equal(f[4].len, 2);
    /* A custom NULL string. */
    assert_pgetl_ok(pgetl__csv_split(&CSV, "NA", 2, row, strlen(row), &out, f, 8, &nf, &err), &err);
    assert_false(f[0].null);
    assert_true(f[4].null);
    /* More fields than room: the count is still right. */
    assert_pgetl_ok(pgetl__csv_split(&CSV, "", 0, row, strlen(row), &out, f, 2, &nf, &err), &err);
    assert_int_equal(nf, 5);
    pgetl__buf_reset(&out);
}

static void split_unterminated_quote(void **state) {
    (void)state;
    const char *row = "1,\"abc\n";
    pgetl_buf out;
    pgetl__buf_init(&out);
    pgetl_csv_field f[4];
    int nf;
    pgetl_error err;
    assert_int_equal(pgetl__csv_split(&CSV, "", 0, row, strlen(row), &out, f, 4, &nf, &err),
                     PGETL_EDATA);
    assert_non_null(strstr(err.message, "unterminated"));
    pgetl__buf_reset(&out);
}

/*
 * Reference: PostgreSQL's own CSV line reader logic (CopyReadLineText),
 * byte by byte with last_was_esc. Returns row lengths.
 */
static int reference_rows(const pgetl_csv_dialect *d, const char *p, size_t n, size_t *lens,
                          int max) {
    int nr = 0;
    size_t start = 0;
    bool in_quote = false, last_was_esc = false;
    /* As copyfromparse.c: escape processing is off when escape == quote. */
    char escape = d->escape == d->quote ? '\0' : d->escape;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_quote && c == escape)
            last_was_esc = !last_was_esc;
        if (c == d->quote && !last_was_esc)
            in_quote = !in_quote;
        if (c != escape)
            last_was_esc = false;
        if (c == '\n' && !in_quote) {
            if (nr < max)
                lens[nr] = i + 1 - start;
            nr++;
            start = i + 1;
            last_was_esc = false;
        }
    }
    return nr;
}

static void fuzz_against_reference(void **state) {
    (void)state;
    static const char alphabet[] = "ab,\"\n\\\r";
    const pgetl_csv_dialect dialects[2] = {
        CSV, {.text = false, .delim = ',', .quote = '"', .escape = '\\'}};
    unsigned seed = 12345;
    char buf[200];
    row_info r[200];
    size_t ref[200];
    for (int iter = 0; iter < 20000; iter++) {
        const pgetl_csv_dialect *d = &dialects[iter % 2];
        size_t n = (size_t)(iter % 150) + 1;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        size_t rest, rest2;
        int nr = scan_all(d, buf, n, r, 200, &rest);
        int nref = reference_rows(d, buf, n, ref, 200);
        size_t tot = 0;
        row_info r2[200];
        int nr2 = scan_chunked(d, buf, n, (size_t)(iter % 7) + 1, r2, 200, &rest2);
        if (nr2 != nr || nr != nref) {
            fprintf(stderr, "iter %d step %zu esc %c: ", iter, (size_t)(iter % 7) + 1, d->escape);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "%s",
                        buf[i] == '\n'   ? "\\n"
                        : buf[i] == '\r' ? "\\r"
                                         : (char[2]){buf[i], 0});
            fprintf(stderr, "\n");
        }
        assert_int_equal(nr, nref);
        assert_int_equal(nr2, nr);
        for (int i = 0; i < nr; i++) {
            assert_int_equal(r[i].len, ref[i]);
            tot += r[i].len;
        }
        assert_int_equal(tot + rest, n);
        assert_int_equal(rest2, rest);
        for (int i = 0; i < nr; i++) {
            assert_int_equal(r2[i].len, r[i].len);
            assert_int_equal(r2[i].nfields, r[i].nfields);
            assert_int_equal(r2[i].nlines, r[i].nlines);
        }
    }
}

static void chunked_text_backslash_at_boundary(void **state) {
    (void)state;
    const char *in = "a\\\nb\tc\nd\\\\\n";
    row_info r[4], r2[4];
    size_t rest, rest2;
    int n = scan_all(&TEXT, in, strlen(in), r, 4, &rest);
    assert_int_equal(n, 2);
    for (size_t step = 1; step < 5; step++) {
        int n2 = scan_chunked(&TEXT, in, strlen(in), step, r2, 4, &rest2);
        assert_int_equal(n2, 2);
        assert_int_equal(r2[0].len, r[0].len);
        assert_int_equal(r2[1].len, r[1].len);
        assert_int_equal(r2[0].nfields, 2);
    }
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_rows),
        cmocka_unit_test(quoted_delims_newlines),
        cmocka_unit_test(quote_mid_field_toggles),
        cmocka_unit_test(crlf_rows),
        cmocka_unit_test(unterminated_quote_needs_more),
        cmocka_unit_test(custom_dialect),
        cmocka_unit_test(text_format_escapes),
        cmocka_unit_test(split_nulls_and_quotes),
        cmocka_unit_test(split_unterminated_quote),
        cmocka_unit_test(fuzz_against_reference),
        cmocka_unit_test(chunked_text_backslash_at_boundary),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
