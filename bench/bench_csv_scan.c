/*
 * CSV scanner and field splitter throughput vs the floor: counting newlines
 * with memchr over the same buffer (what any line splitter must at least do). Run in the same
 * process on the same bytes, so the ratio holds across machines. "portable" is
 * the scanner without its block path (pgetl__csv_scan_row_generic).
 *
 *   bench_csv_scan [MiB] [reps] [FILE]   default 64 MiB, 5 repetitions (median);
 *                                        FILE: also the first MiB of a CSV file
 *
 * Inputs: "plain" (no quotes: the common case), "quoted" (every third field
 * quoted, some holding commas and doubled quotes), "multiline" (a quoted
 * field with a line break in every tenth row), "text" (PostgreSQL text
 * format with backslash escapes).
 */
#include "load/load_int.h"

#include <stdio.h>
#include <stdlib.h>

static char *make(const char *kind, size_t n, size_t *len_out) {
    char *p = malloc(n + 256);
    size_t len = 0;
    unsigned s = 1;
    int64_t row = 0;
    while (len < n) {
        s = s * 1103515245u + 12345u;
        unsigned r = (s >> 8) & 0xffff;
        if (strcmp(kind, "plain") == 0)
            len += (size_t)snprintf(p + len, 256, "%lld,2024-01-%02u,user_%u,%u.%02u,ok\n",
                                    (long long)row, r % 28 + 1, r, r % 1000, r % 100);
        else if (strcmp(kind, "quoted") == 0)
            len += (size_t)snprintf(p + len, 256, "%lld,\"name, %u\",%u,\"say \"\"hi\"\"\",x\n",
                                    (long long)row, r, r % 1000);
        else if (strcmp(kind, "multiline") == 0)
            len += (size_t)snprintf(
                p + len, 256, row % 10 ? "%lld,\"a %u\",b,c\n" : "%lld,\"line %u\nnext\",b,c\n",
                (long long)row, r);
        else
            len += (size_t)snprintf(p + len, 256, "%lld\tuser_%u\tback\\\\slash\\ttab\t\\N\n",
                                    (long long)row, r);
        row++;
    }
    *len_out = len;
    return p;
}

/* Up to max bytes of a CSV file, cut after its last whole line. */
static char *slurp(const char *path, size_t max, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    char *p = f ? malloc(max) : NULL;
    size_t n = p ? fread(p, 1, max, f) : 0;
    if (f)
        fclose(f);
    while (n > 0 && p[n - 1] != '\n')
        n--;
    if (n == 0) {
        fprintf(stderr, "bench_csv_scan: cannot read lines from %s\n", path);
        free(p);
        return NULL;
    }
    *len_out = n;
    return p;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static volatile int64_t sink;

static double time_memchr(const char *p, size_t n) {
    int64_t t0 = pgetl__now_ns();
    int64_t lines = 0;
    const char *e = p + n;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
        lines++;
    sink = lines;
    return (double)(pgetl__now_ns() - t0) / 1e9;
}

typedef bool (*scan_fn)(const pgetl_csv_dialect *, pgetl_csv_scan *, const char *, size_t,
                        size_t *);

static double time_scan(scan_fn scan, const pgetl_csv_dialect *d, const char *p, size_t n) {
    int64_t t0 = pgetl__now_ns();
    int64_t rows = 0, fields = 0;
    size_t off = 0, len;
    pgetl_csv_scan st;
    pgetl__csv_scan_reset(&st);
    while (off < n && scan(d, &st, p + off, n - off, &len)) {
        rows++;
        fields += st.nfields;
        off += len;
        pgetl__csv_scan_next(&st);
    }
    sink = rows + fields;
    return (double)(pgetl__now_ns() - t0) / 1e9;
}

/* Scan plus field splitting (unquoting, unescaping), as the binary conversion path does. */
static double time_split(const pgetl_csv_dialect *d, const char *p, size_t n) {
    pgetl_buf out;
    pgetl__buf_init(&out);
    pgetl_csv_field fields[64];
    int64_t t0 = pgetl__now_ns();
    int64_t bytes = 0;
    size_t off = 0, len;
    pgetl_csv_scan st;
    pgetl__csv_scan_reset(&st);
    while (off < n && pgetl__csv_scan_row(d, &st, p + off, n - off, &len)) {
        int nf;
        if (pgetl__csv_split(d, "", 0, p + off, len, &out, fields, 64, &nf, NULL) != PGETL_OK)
            break;
        bytes += (int64_t)out.len + nf;
        off += len;
        pgetl__csv_scan_next(&st);
    }
    sink = bytes;
    double t = (double)(pgetl__now_ns() - t0) / 1e9;
    pgetl__buf_reset(&out);
    return t;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 64;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (mib < 1 || reps < 1 || reps > 100)
        return 2;
    const char *kinds[] = {"plain", "quoted", "multiline", "text", "file"};
    int nkinds = argc > 3 ? 5 : 4;
    printf("%-10s %12s %12s %8s %14s %12s %8s\n", "input", "memchr MB/s", "scan MB/s", "ratio",
           "portable MB/s", "split MB/s", "ratio");
    for (int k = 0; k < nkinds; k++) {
        size_t n;
        char *p = k == 4 ? slurp(argv[3], mib << 20, &n) : make(kinds[k], mib << 20, &n);
        if (!p)
            return 1;
        pgetl_csv_dialect d = {.text = k == 3,
                               .delim = k == 3 ? '\t' : ',',
                               .quote = k == 3 ? 0 : '"',
                               .escape = k == 3 ? 0 : '"'};
        double tm[100], ts[100], tg[100], tp[100];
        for (int r = 0; r < reps; r++) {
            tm[r] = time_memchr(p, n);
            ts[r] = time_scan(pgetl__csv_scan_row, &d, p, n);
            tg[r] = time_scan(pgetl__csv_scan_row_generic, &d, p, n);
            tp[r] = time_split(&d, p, n);
        }
        qsort(tm, (size_t)reps, sizeof(double), cmp);
        qsort(ts, (size_t)reps, sizeof(double), cmp);
        qsort(tg, (size_t)reps, sizeof(double), cmp);
        qsort(tp, (size_t)reps, sizeof(double), cmp);
        double mb = (double)n / 1e6;
        double m = mb / tm[reps / 2], s = mb / ts[reps / 2], g = mb / tg[reps / 2],
               sp = mb / tp[reps / 2];
        printf("%-10s %12.0f %12.0f %8.2f %14.0f %12.0f %8.2f\n", kinds[k], m, s, s / m, g, sp,
               sp / m);
        free(p);
    }
    return 0;
}
