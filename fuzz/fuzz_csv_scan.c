/*
 * Fuzz target: the CSV/text row scanner and field splitter (src/load/csv_scan.c).
 *
 * Input: 5 header bytes choose the dialect (format, delimiter, quote,
 * escape; only dialects pgetl_load_files accepts) and a seed for chunk
 * sizes; the rest is the file's bytes. Invariants checked:
 *   - rows found one after another cover a prefix of the input exactly, in
 *     order, each ending in '\n'; no row end is found in what is left;
 *   - the rows, and each row's field count and line breaks ('\n' and '\r')
 *     inside quotes, are those a plain byte-by-byte reading of the
 *     documented rules finds (the scanner's shortcuts change nothing);
 *   - the block scanner and the portable one agree on all of it;
 *   - a scan fed the input in arbitrary chunks (resuming with kept state, as
 *     batch.c does) finds exactly the same rows, field counts, line counts
 *     and final quote state as a one-shot scan;
 *   - every newline inside a row but the last is counted in nlines;
 *   - every complete row splits without error into as many fields as the
 *     scanner counted, each inside the output buffer, never longer in total
 *     than the row, with the values, quoted and NULL flags of a byte-by-byte
 *     reading of the same rules.
 * The scanner only ever sees exactly the bytes it was given (a heap copy of
 * that size), so ASan reports any read past them.
 */
#include "fuzz_util.h"
#include "load/load_int.h"

#define MAX_ROWS 4096

typedef struct row_rec {
    size_t len;
    int64_t nfields, nlines, ncr;
} row_rec;

/* The dialect rules of load.c's option check, applied to fuzz bytes. */
static void pick_dialect(fuzz_in *in, pgetl_csv_dialect *d) {
    uint8_t fmt = fuzz_u8(in);
    char delim = (char)fuzz_u8(in), quote = (char)fuzz_u8(in), esc = (char)fuzz_u8(in);
    d->text = (fmt % 3) == 2;
    if (delim == '\n' || delim == '\r' || delim == '\0' || (fmt & 0x80))
        delim = d->text || (fmt % 3) == 1 ? '\t' : ',';
    if (d->text) {
        if (strchr("\\.abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", delim))
            delim = '\t';
        d->delim = delim;
        d->quote = d->escape = 0;
        return;
    }
    if (quote == '\n' || quote == '\r' || quote == '\0' || (fmt & 0x40))
        quote = '"';
    if (esc == '\n' || esc == '\r' || esc == '\0' || (fmt & 0x20))
        esc = quote;
    if (delim == quote)
        delim = quote == ',' ? ';' : ',';
    d->delim = delim;
    d->quote = quote;
    d->escape = esc;
}

/* One-shot: every row of buf, and the state left on the incomplete tail. */
typedef bool (*scan_fn)(const pgetl_csv_dialect *, pgetl_csv_scan *, const char *, size_t,
                        size_t *);

static int scan_all(scan_fn scan, const pgetl_csv_dialect *d, const char *buf, size_t n,
                    row_rec *rows, pgetl_csv_scan *tail) {
    int nrows = 0;
    size_t start = 0;
    pgetl_csv_scan st;
    pgetl__csv_scan_reset(&st);
    for (;;) {
        size_t len = 0;
        if (start >= n || !scan(d, &st, buf + start, n - start, &len))
            break;
        FUZZ_CHECK(len > 0 && len <= n - start, "row length %zu with %zu bytes left", len,
                   n - start);
        FUZZ_CHECK(buf[start + len - 1] == '\n', "row %d does not end in a newline", nrows);
        FUZZ_CHECK(nrows < MAX_ROWS, "too many rows");
        rows[nrows].len = len;
        rows[nrows].nfields = st.nfields;
        rows[nrows].nlines = st.nlines;
        rows[nrows].ncr = st.ncr;
        nrows++;
        start += len;
        pgetl__csv_scan_next(&st);
    }
    *tail = st;
    return nrows;
}

/* Chunked: bytes arrive in pieces; each call sees an exact-size heap copy. */
static int scan_chunked(const pgetl_csv_dialect *d, const char *src, size_t n, uint32_t seed,
                        row_rec *rows, pgetl_csv_scan *tail) {
    int nrows = 0;
    size_t start = 0, avail = 0;
    char *win = NULL; /* bytes [start, avail) of src */
    pgetl_csv_scan st;
    pgetl__csv_scan_reset(&st);
    for (;;) {
        size_t len = 0;
        if (start < avail) {
            free(win);
            win = malloc(avail - start);
            memcpy(win, src + start, avail - start);
            if (pgetl__csv_scan_row(d, &st, win, avail - start, &len)) {
                rows[nrows].len = len;
                rows[nrows].nfields = st.nfields;
                rows[nrows].nlines = st.nlines;
                rows[nrows].ncr = st.ncr;
                nrows++;
                start += len;
                pgetl__csv_scan_next(&st);
                continue;
            }
        }
        if (avail >= n)
            break;
        size_t step = 1 + fuzz_rand(&seed) % 17;
        if (fuzz_rand(&seed) % 8 == 0)
            step = 1 + fuzz_rand(&seed) % 512;
        avail = avail + step > n ? n : avail + step;
    }
    free(win);
    *tail = st;
    return nrows;
}

/*
 * The row ends by the rules in csv_scan.c's header, byte by byte and
 * without any of the scanner's shortcuts: the reference the fast scanner
 * must agree with. Returns the number of complete rows, their lengths in len.
 */
static int reference_rows(const pgetl_csv_dialect *d, const char *s, size_t n, row_rec *out) {
    int nrows = 0;
    size_t start = 0;
    bool inq = false;
    row_rec r = {0, 1, 0, 0};
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (d->text) {
            if (c == '\\') {
                r.nlines += i + 1 < n && s[i + 1] == '\n';
                i++;
                continue;
            }
        } else if (inq) {
            if (d->escape != d->quote && c == d->escape && i + 1 < n &&
                (s[i + 1] == d->quote || s[i + 1] == d->escape)) {
                i++;
                continue;
            }
            if (c == d->quote)
                inq = false;
            r.nlines += c == '\n';
            r.ncr += c == '\r';
            continue;
        } else if (c == d->quote) {
            inq = true;
            continue;
        }
        r.nfields += c == d->delim;
        if (c == '\n' && nrows < MAX_ROWS) {
            r.len = i + 1 - start;
            out[nrows++] = r;
            start = i + 1;
            r = (row_rec){0, 1, 0, 0};
        }
    }
    return nrows;
}

/*
 * One row's fields by the same rules, byte by byte (the splitter copies in
 * runs): values appended to `vals`, each field's end offset, quoted and NULL
 * flags. Returns the field count (at most 64 recorded).
 */
typedef struct ref_field {
    size_t end;
    bool quoted, null;
} ref_field;

static int oct_or_hex(const char *s, size_t len, size_t *i, int base, int maxd) {
    int v = 0, k = 0;
    for (; k < maxd && *i < len; k++) {
        char c = s[*i];
        int dv = c >= '0' && c <= '9'                 ? c - '0'
                 : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
                 : base == 16 && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                      : 99;
        if (dv >= base)
            break;
        v = v * base + dv;
        (*i)++;
    }
    return k ? v : -1;
}

static int reference_split(const pgetl_csv_dialect *d, const char *null_str, const char *row,
                           size_t len, char *vals, ref_field *f) {
    if (len && row[len - 1] == '\n')
        len--;
    if (len && row[len - 1] == '\r')
        len--;
    size_t i = 0, o = 0, nl = strlen(null_str);
    int nf = 0;
    for (;;) {
        size_t start = i;
        bool inq = false, saw = false;
        while (i < len) {
            char c = row[i];
            if (d->text) {
                if (c == d->delim)
                    break;
                i++;
                if (c == '\\' && i < len) {
                    static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
                    char e = row[i++];
                    const char *m = strchr(from, e);
                    int v;
                    if (e && m) {
                        c = to[m - from];
                    } else if (e == 'x' && (v = oct_or_hex(row, len, &i, 16, 2)) >= 0) {
                        c = (char)v;
                    } else if (e >= '0' && e <= '7') {
                        i--;
                        c = (char)(oct_or_hex(row, len, &i, 8, 3) & 0xff);
                    } else {
                        c = e;
                    }
                }
                vals[o++] = c;
                continue;
            }
            if (!inq && c == d->delim)
                break;
            if (!inq && c == d->quote) {
                inq = saw = true;
            } else if (inq && c == d->escape && i + 1 < len &&
                       (row[i + 1] == d->quote || row[i + 1] == d->escape)) {
                vals[o++] = row[++i];
            } else if (inq && c == d->quote) {
                inq = false;
            } else {
                vals[o++] = c;
            }
            i++;
        }
        if (nf < 64)
            f[nf] = (ref_field){o, saw,
                                !saw && i - start == nl && memcmp(row + start, null_str, nl) == 0};
        nf++;
        if (i >= len)
            return nf;
        i++;
    }
}

static int64_t count_nl(const char *p, size_t n) {
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '\n';
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    pgetl_csv_dialect d;
    pick_dialect(&in, &d);
    uint32_t seed = fuzz_u8(&in) * 2654435761u + 1;
    size_t n = in.n;
    char *buf = malloc(n ? n : 1);
    memcpy(buf, in.p, n);

    static row_rec a[MAX_ROWS], b[MAX_ROWS];
    pgetl_csv_scan ta, tb;
    int na = scan_all(pgetl__csv_scan_row, &d, buf, n, a, &ta);
    int nb = scan_chunked(&d, buf, n, seed, b, &tb);
    FUZZ_CHECK(na == nb, "one-shot found %d rows, chunked %d", na, nb);
    size_t covered = 0;
    for (int i = 0; i < na; i++) {
        FUZZ_CHECK(a[i].len == b[i].len && a[i].nfields == b[i].nfields &&
                       a[i].nlines == b[i].nlines && a[i].ncr == b[i].ncr,
                   "row %d: one-shot len %zu fields %lld lines %lld, chunked %zu %lld %lld", i,
                   a[i].len, (long long)a[i].nfields, (long long)a[i].nlines, b[i].len,
                   (long long)b[i].nfields, (long long)b[i].nlines);
        covered += a[i].len;
    }
    FUZZ_CHECK(covered <= n, "rows cover %zu of %zu bytes", covered, n);
    /* The block scanner (where the CPU has one) against the portable one. */
    static row_rec g[MAX_ROWS];
    pgetl_csv_scan tg;
    int ng = scan_all(pgetl__csv_scan_row_generic, &d, buf, n, g, &tg);
    FUZZ_CHECK(ng == na, "portable scanner finds %d rows, scanner %d", ng, na);
    for (int i = 0; i < na; i++)
        FUZZ_CHECK(memcmp(&g[i], &a[i], sizeof g[i]) == 0,
                   "row %d: portable and block scans differ", i);
    FUZZ_CHECK(covered == n || tg.in_quote == ta.in_quote, "tail quote state differs (portable)");
    static row_rec ref[MAX_ROWS];
    int nref = reference_rows(&d, buf, n, ref);
    FUZZ_CHECK(nref == na, "reference finds %d rows, scanner %d", nref, na);
    for (int i = 0; i < na; i++)
        FUZZ_CHECK(ref[i].len == a[i].len && ref[i].nfields == a[i].nfields &&
                       ref[i].nlines == a[i].nlines && ref[i].ncr == a[i].ncr,
                   "row %d: reference len %zu fields %lld breaks %lld/%lld, scanner %zu %lld "
                   "%lld/%lld",
                   i, ref[i].len, (long long)ref[i].nfields, (long long)ref[i].nlines,
                   (long long)ref[i].ncr, a[i].len, (long long)a[i].nfields, (long long)a[i].nlines,
                   (long long)a[i].ncr);
    /* The tail state only matters when there is a tail (batch.c checks in_quote at EOF). */
    if (covered < n)
        FUZZ_CHECK(ta.in_quote == tb.in_quote, "tail quote state differs");

    pgetl_buf out;
    pgetl__buf_init(&out);
    pgetl_csv_field fields[64];
    const char *null_str = d.text ? "\\N" : "";
    size_t off = 0;
    for (int i = 0; i < na; i++) {
        const char *row = buf + off;
        size_t len = a[i].len;
        FUZZ_CHECK(a[i].nlines == count_nl(row, len) - 1,
                   "row %d: %lld newlines counted inside, %lld present", i, (long long)a[i].nlines,
                   (long long)count_nl(row, len) - 1);
        /* The splitter sees the row alone, in an exact-size copy. */
        char *copy = malloc(len);
        memcpy(copy, row, len);
        int nf = 0;
        pgetl_error err;
        pgetl_error_init(&err);
        pgetl_code rc = pgetl__csv_split(&d, null_str, strlen(null_str), copy, len, &out, fields,
                                         64, &nf, &err);
        FUZZ_CHECK(rc == PGETL_OK, "row %d: complete row does not split: %s", i, err.message);
        FUZZ_CHECK(nf == a[i].nfields, "row %d: scanner counted %lld fields, splitter %d", i,
                   (long long)a[i].nfields, nf);
        FUZZ_CHECK(out.len <= len, "row %d: split output %zu bytes from a %zu-byte row", i, out.len,
                   len);
        for (int k = 0; k < nf && k < 64; k++)
            FUZZ_CHECK(fields[k].off <= out.len && fields[k].len <= out.len - fields[k].off,
                       "row %d field %d outside the output", i, k);
        /* Every value, flag and NULL as the byte-by-byte reading has them. */
        char *vals = malloc(len + 1);
        static ref_field rf[64];
        int rn = reference_split(&d, null_str, copy, len, vals, rf);
        FUZZ_CHECK(rn == nf, "row %d: reference splits %d fields, splitter %d", i, rn, nf);
        for (int k = 0; k < nf && k < 64; k++) {
            size_t rs = k ? rf[k - 1].end : 0, rl = rf[k].end - rs;
            FUZZ_CHECK(fields[k].len == rl && memcmp(out.data + fields[k].off, vals + rs, rl) == 0,
                       "row %d field %d: value differs from the reference", i, k);
            FUZZ_CHECK(fields[k].quoted == rf[k].quoted && fields[k].null == rf[k].null,
                       "row %d field %d: quoted/null flags differ from the reference", i, k);
        }
        free(vals);
        free(copy);
        off += len;
    }
    /* The tail, as batch.c hands it over at EOF (a newline appended), when no quote is open. */
    if (covered < n && !ta.in_quote) {
        size_t len = n - covered;
        char *copy = malloc(len + 1);
        memcpy(copy, buf + covered, len);
        copy[len] = '\n';
        pgetl_csv_scan st;
        pgetl__csv_scan_reset(&st);
        size_t rl = 0;
        bool found = pgetl__csv_scan_row(&d, &st, copy, len + 1, &rl);
        /* Text: a trailing backslash escapes that newline (batch.c then appends another). */
        bool escaped_nl = d.text && len > 0 && copy[len - 1] == '\\';
        FUZZ_CHECK((found && rl == len + 1) || (!found && escaped_nl),
                   "tail plus newline is not one row");
        free(copy);
    }
    pgetl__buf_reset(&out);
    free(buf);
    return 0;
}
