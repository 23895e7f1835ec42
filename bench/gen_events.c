/*
 * gen_events: writes the bench_events data set (bench/gen_events.h) as CSV
 * with a header, deterministically: the same arguments give the same bytes
 * on every machine. Optionally injects K bad rows at known positions and
 * lists them, so tests and benchmarks can check exactly which rows a load
 * rejected.
 *
 *   gen_events [--rows N] [--bad K] [--bad-list PATH] [-o FILE] [--sql]
 *
 * Bad rows stay well-formed CSV (same field count, balanced quotes) so they
 * are found by the server, row by row; their kinds cycle through type errors
 * and constraint violations of the table --sql prints:
 *   user_id "not-a-number"    22P02 invalid input syntax for type integer
 *   user_id 99999999999       22003 out of range for type integer
 *   day     2023-02-30        22008 date/time field value out of range
 *   active  "maybe"           22P02 invalid input syntax for type boolean
 *   id      (NULL)            23502 not-null constraint
 *   qty     -999              23514 check constraint bench_events_qty_check
 * The list has one line per bad row: "<row> <line> <sqlstate> <kind>", row
 * being the 1-based data row and line the 1-based physical line where the
 * row starts (the header is line 1; notes hold line breaks).
 */
#include "gen_events.h"

#include <errno.h>
#include <stdlib.h>

#define GEN_TABLE_SQL                                                                              \
    "CREATE TABLE bench_events (id bigint NOT NULL, user_id integer, event_time timestamptz, "    \
    "day date, amount double precision, qty integer CHECK (qty >= -10), active boolean, "         \
    "country text, note text);\n"

typedef struct bad_kind {
    int col;
    const char *value; /* NULL: an empty (NULL) field */
    const char *sqlstate;
    const char *name;
} bad_kind;

static const bad_kind kinds[] = {
    {1, "not-a-number", "22P02", "type:user_id-not-integer"},
    {1, "99999999999", "22003", "type:user_id-out-of-range"},
    {3, "2023-02-30", "22008", "type:day-invalid-date"},
    {6, "maybe", "22P02", "type:active-not-boolean"},
    {0, NULL, "23502", "constraint:id-not-null"},
    {5, "-999", "23514", "constraint:qty-check"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static void usage(FILE *out) {
    fputs("usage: gen_events [--rows N] [--bad K] [--bad-list PATH] [-o FILE] [--sql]\n"
          "  --rows N        data rows (default 1000000)\n"
          "  --bad K         make K of them bad, evenly spread (type errors, constraint\n"
          "                  violations of the --sql table)\n"
          "  --bad-list P    write \"<row> <line> <sqlstate> <kind>\" per bad row to P\n"
          "  -o FILE         output file (default stdout)\n"
          "  --sql           print the CREATE TABLE for the data and exit\n",
          out);
}

static int parse_u64(const char *flag, const char *s, uint64_t max, uint64_t *out) {
    char *end;
    if (!s || !*s || *s == '-' || *s == '+') {
        fprintf(stderr, "gen_events: %s takes a whole number\n", flag);
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > max) {
        fprintf(stderr, "gen_events: %s takes a whole number up to %llu (got \"%s\")\n", flag,
                (unsigned long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Writes one field; text columns are quoted, NULL is an empty field. Returns '\n' count. */
static uint64_t put_field(FILE *f, int col, const char *v, size_t n) {
    uint64_t lines = 0;
    if (!v)
        return 0;
    if (col < 7) {
        fwrite(v, 1, n, f);
        return 0;
    }
    fputc('"', f);
    for (size_t k = 0; k < n; k++) {
        if (v[k] == '"')
            fputc('"', f);
        lines += v[k] == '\n';
        fputc(v[k], f);
    }
    fputc('"', f);
    return lines;
}

int main(int argc, char **argv) {
    uint64_t rows = 1000000, bad = 0;
    const char *out_path = NULL, *list_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--rows") == 0) {
            if (parse_u64(a, v, UINT64_C(1) << 40, &rows))
                return 2;
            i++;
        } else if (strcmp(a, "--bad") == 0) {
            if (parse_u64(a, v, UINT64_C(1) << 40, &bad))
                return 2;
            i++;
        } else if (strcmp(a, "--bad-list") == 0 && v) {
            list_path = v;
            i++;
        } else if (strcmp(a, "-o") == 0 && v) {
            out_path = v;
            i++;
        } else if (strcmp(a, "--sql") == 0) {
            fputs(GEN_TABLE_SQL, stdout);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "gen_events: bad argument \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (bad > rows) {
        fprintf(stderr, "gen_events: --bad %llu is more than --rows %llu\n",
                (unsigned long long)bad, (unsigned long long)rows);
        return 2;
    }
    FILE *f = out_path ? fopen(out_path, "w") : stdout;
    FILE *list = list_path ? fopen(list_path, "w") : NULL;
    if (!f || (list_path && !list)) {
        fprintf(stderr, "gen_events: cannot open %s: %s\n", !f ? out_path : list_path,
                strerror(errno));
        return 1;
    }
    static char iobuf[1 << 20];
    setvbuf(f, iobuf, _IOFBF, sizeof iobuf);

    fputs("id,user_id,event_time,day,amount,qty,active,country,note\n", f);
    uint64_t line = 2, next_bad_j = 0;
    /* Bad row j (0-based) is data row floor((j + 0.5) * rows / bad): evenly spread. */
    uint64_t next_bad = bad ? (uint64_t)((0.5 * (double)rows) / (double)bad) : UINT64_MAX;
    gen_event e;
    gen_event_text t;
    for (uint64_t i = 0; i < rows; i++) {
        gen_event_row(i, &e);
        gen_event_format(&e, &t);
        const bad_kind *k = NULL;
        if (i == next_bad) {
            k = &kinds[next_bad_j % NKINDS];
            if (list)
                fprintf(list, "%llu %llu %s %s\n", (unsigned long long)(i + 1),
                        (unsigned long long)line, k->sqlstate, k->name);
            next_bad_j++;
            next_bad = next_bad_j < bad
                           ? (uint64_t)(((double)next_bad_j + 0.5) * (double)rows / (double)bad)
                           : UINT64_MAX;
            if (next_bad <= i) /* more bad rows than spacing allows: take the next row */
                next_bad = i + 1;
        }
        for (int c = 0; c < GEN_EVENTS_NCOLS; c++) {
            if (c)
                fputc(',', f);
            if (k && k->col == c)
                line += put_field(f, c, k->value, k->value ? strlen(k->value) : 0);
            else
                line += put_field(f, c, t.values[c], t.lengths[c]);
        }
        fputc('\n', f);
        line++;
    }
    int rc = 0;
    if (fflush(f) != 0 || ferror(f) || (out_path && fclose(f) != 0)) {
        fprintf(stderr, "gen_events: write failed: %s\n", strerror(errno));
        rc = 1;
    }
    if (list && fclose(list) != 0)
        rc = 1;
    return rc;
}
