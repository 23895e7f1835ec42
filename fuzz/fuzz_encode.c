/*
 * Fuzz target: the COPY text and CSV field encoders (src/copy/enc_text.c,
 * enc_csv.c), as pgetl_copy_write_row uses them: values escaped or quoted,
 * joined by the format's delimiter, NULL as \N (text) or nothing (CSV),
 * each row ending in '\n'.
 *
 * Input: a format byte, then up to 4 rows of up to 8 fields; per field a
 * byte (NULL or not, length) and the value's bytes (any byte: quotes,
 * backslashes, CR/LF, delimiters, \N and \. as whole values, NUL).
 * Each value is encoded into an exact-size heap block of the documented
 * bound, so ASan catches a write past it. Invariants checked:
 *   - a value holding NUL is refused with nul_at at its first NUL (then
 *     the target replaces NUL bytes and goes on);
 *   - the project's row scanner (pgetl__csv_scan_row) finds exactly the
 *     encoded rows, each with as many fields as were written;
 *   - the project's splitter (pgetl__csv_split, NULL marker "" for CSV and
 *     \N for text) gives back every field exactly: NULL stays NULL, an
 *     empty string stays an empty string, bytes are identical;
 *   - text format: a small reference decoder of COPY text (split on tabs,
 *     \N is NULL, backslash escapes) inside this target agrees too.
 */
#include "copy/enc.h"
#include "fuzz_util.h"
#include "load/load_int.h"

#define MAX_ROWS 4
#define MAX_FIELDS 8
#define MAX_VALUE 64

typedef struct field {
    bool null;
    size_t len;
    char v[MAX_VALUE];
} field;

static field rows[MAX_ROWS][MAX_FIELDS];
static int nf[MAX_ROWS];

/* Encodes one value through an exact-size block; appends it to row. */
static void encode(bool csv, const field *f, pgetl_buf *row) {
    size_t bound = csv ? pgetl__enc_csv_bound(f->len) : pgetl__enc_text_bound(f->len);
    pgetl_buf b = {.data = malloc(bound), .len = 0, .cap = bound};
    size_t nul_at = 12345;
    bool ok = csv ? pgetl__enc_csv_value(&b, f->v, f->len, &nul_at)
                  : pgetl__enc_text_value(&b, f->v, f->len, &nul_at);
    FUZZ_CHECK(ok, "value refused with no NUL");
    FUZZ_CHECK(b.len <= bound, "wrote %zu bytes, bound %zu", b.len, bound);
    pgetl__buf_append(row, b.data, b.len);
    free(b.data);
}

/* COPY text: one row (no '\n') into fields; false when an escape is cut. */
static bool ref_text_decode(const char *p, size_t n, int want, int r) {
    int k = 0;
    size_t i = 0;
    char val[2 * MAX_VALUE];
    for (;;) {
        size_t s = i;
        while (i < n && p[i] != '\t') {
            if (p[i] == '\\')
                i++;
            i++;
        }
        FUZZ_CHECK(i <= n, "escape cut at the row end");
        FUZZ_CHECK(k < want, "reference decoder: more than %d fields", want);
        const field *f = &rows[r][k];
        if (i - s == 2 && p[s] == '\\' && p[s + 1] == 'N') {
            FUZZ_CHECK(f->null, "row %d field %d: \\N for a value", r, k);
        } else {
            size_t m = 0;
            for (size_t j = s; j < i; j++) {
                char c = p[j];
                if (c == '\\') {
                    c = p[++j];
                    c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
                }
                val[m++] = c;
            }
            FUZZ_CHECK(!f->null && m == f->len && memcmp(val, f->v, m) == 0,
                       "row %d field %d: reference decoder read another value", r, k);
        }
        k++;
        if (i == n)
            break;
        i++; /* the tab */
    }
    return k == want;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t fmt = fuzz_u8(&in);
    bool csv = fmt & 1;
    int nrows = 1 + (fmt >> 1) % MAX_ROWS;
    for (int r = 0; r < nrows; r++) {
        nf[r] = 1 + fuzz_u8(&in) % MAX_FIELDS;
        for (int k = 0; k < nf[r]; k++) {
            uint8_t h = fuzz_u8(&in);
            field *f = &rows[r][k];
            f->null = h == 0xff;
            f->len = f->null ? 0 : fuzz_bytes(&in, f->v, h % MAX_VALUE);
            /* Common hostile whole values, so they need not be found by chance. */
            if (h == 0xfe)
                memcpy(f->v, "\\.", f->len = 2);
            if (h == 0xfd)
                memcpy(f->v, "\\N", f->len = 2);
        }
    }

    pgetl_buf all;
    pgetl__buf_init(&all);
    size_t ends[MAX_ROWS];
    for (int r = 0; r < nrows; r++) {
        for (int k = 0; k < nf[r]; k++) {
            field *f = &rows[r][k];
            if (f->null) {
                if (k)
                    pgetl__buf_append(&all, csv ? "," : "\t", 1);
                if (!csv)
                    pgetl__buf_append(&all, "\\N", 2);
                continue;
            }
            const char *nul = memchr(f->v, '\0', f->len);
            if (nul) {
                size_t bound = pgetl__enc_text_bound(f->len);
                pgetl_buf b = {.data = malloc(bound), .len = 0, .cap = bound};
                size_t at = 12345;
                bool ok = csv ? pgetl__enc_csv_value(&b, f->v, f->len, &at)
                              : pgetl__enc_text_value(&b, f->v, f->len, &at);
                FUZZ_CHECK(!ok && at == (size_t)(nul - f->v), "NUL at %zu: ok %d, nul_at %zu",
                           (size_t)(nul - f->v), ok, at);
                free(b.data);
                for (size_t j = 0; j < f->len; j++)
                    if (!f->v[j])
                        f->v[j] = '\x01';
            }
            if (k)
                pgetl__buf_append(&all, csv ? "," : "\t", 1);
            encode(csv, f, &all);
        }
        pgetl__buf_append(&all, "\n", 1);
        ends[r] = all.len;
    }

    /* Exact-size copy for the scanner and splitter. */
    char *text = malloc(all.len);
    memcpy(text, all.data, all.len);
    pgetl_csv_dialect d = {
        .text = !csv, .delim = csv ? ',' : '\t', .quote = csv ? '"' : 0, .escape = csv ? '"' : 0};
    pgetl_buf out;
    pgetl__buf_init(&out);
    pgetl_csv_field fields[MAX_FIELDS + 1];
    size_t start = 0;
    for (int r = 0; r < nrows; r++) {
        pgetl_csv_scan st;
        pgetl__csv_scan_reset(&st);
        size_t len = 0;
        FUZZ_CHECK(pgetl__csv_scan_row(&d, &st, text + start, all.len - start, &len),
                   "row %d not found", r);
        FUZZ_CHECK(start + len == ends[r], "row %d ends at %zu, encoded to end at %zu", r,
                   start + len, ends[r]);
        FUZZ_CHECK(st.nfields == nf[r], "row %d: scanner counted %lld fields, %d written", r,
                   (long long)st.nfields, nf[r]);
        int got = 0;
        pgetl_error err;
        pgetl_code rc = pgetl__csv_split(&d, csv ? "" : "\\N", csv ? 0 : 2, text + start, len, &out,
                                         fields, MAX_FIELDS + 1, &got, &err);
        FUZZ_CHECK(rc == PGETL_OK, "row %d split failed: %s", r, err.message);
        FUZZ_CHECK(got == nf[r], "row %d: split %d fields, %d written", r, got, nf[r]);
        for (int k = 0; k < got; k++) {
            const field *f = &rows[r][k];
            const pgetl_csv_field *g = &fields[k];
            FUZZ_CHECK(g->null == f->null, "row %d field %d: NULL %d, written %d", r, k, g->null,
                       f->null);
            if (f->null)
                continue;
            FUZZ_CHECK(g->off + g->len <= out.len, "field outside the output");
            FUZZ_CHECK(g->len == f->len && memcmp(out.data + g->off, f->v, f->len) == 0,
                       "row %d field %d: %zu bytes back for %zu written", r, k, g->len, f->len);
        }
        if (!csv)
            FUZZ_CHECK(ref_text_decode(text + start, len - 1, nf[r], r),
                       "reference decoder: too few fields in row %d", r);
        start += len;
    }
    FUZZ_CHECK(start == all.len, "bytes after the last row");
    free(text);
    pgetl__buf_reset(&out);
    pgetl__buf_reset(&all);
    return 0;
}
