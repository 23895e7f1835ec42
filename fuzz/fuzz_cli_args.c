/*
 * Fuzz target: the CLI's value parsers (src/cli/args.c, util.c), called as
 * the commands call them; the getopt loops in cmd_*.c around them are
 * fuzz_cli_getopt's.
 *
 * Input: a selector byte, then the value text. Invariants checked:
 *   - cli_parse_columns: what it accepts is 1..1600 non-empty names that
 *     pgetl_ident_parse would give for each comma-separated part; quoting
 *     each name and joining them with ',' parses back to the same list;
 *   - cli_parse_range / cli_parse_count: accept exactly the non-empty
 *     all-digit texts whose value (no overflow) lies in range, and return
 *     that value;
 *   - cli_parse_byte: accepts exactly "\t" and single bytes other than a
 *     line break or a non-ASCII byte;
 *   - cli_value_is_option: true exactly for "--name" or "--name=..." of a
 *     listed option.
 * The parsers print usage errors on stderr; the target points the C
 * stream stderr at /dev/null (file descriptor 2, where the sanitizers and
 * libFuzzer report, stays open) and writes its own failures to the real one.
 */
#include <stdio.h>

static FILE *fuzz_real_stderr;
#define FUZZ_OUT (fuzz_real_stderr ? fuzz_real_stderr : stderr)

#include "cli/cli.h"
#include "fuzz_util.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

static cli_columns cols, again;

static void quiet(void) {
    if (fuzz_real_stderr)
        return;
    fuzz_real_stderr = fdopen(dup(2), "w");
    FILE *null = fopen("/dev/null", "w");
    if (fuzz_real_stderr && null)
        stderr = null;
}

static void check_columns(const char *text) {
    if (!cli_parse_columns("--columns", text, &cols))
        return;
    FUZZ_CHECK(cols.n >= 1 && cols.n <= CLI_MAX_COLUMNS, "%d columns", cols.n);
    size_t cap = (size_t)cols.n * (2 * PGETL_IDENT_MAX + 3) + 1, len = 0;
    char *joined = malloc(cap);
    for (int i = 0; i < cols.n; i++) {
        FUZZ_CHECK(cols.ptrs[i] == cols.names[i] && cols.names[i][0], "column %d empty", i);
        FUZZ_CHECK(strlen(cols.names[i]) < PGETL_IDENT_MAX, "column %d too long", i);
        if (i)
            joined[len++] = ',';
        size_t n = pgetl_ident_quote(cols.names[i], joined + len, cap - len);
        FUZZ_CHECK(n < cap - len, "quoting overflowed");
        len += n;
    }
    joined[len] = '\0';
    FUZZ_CHECK(cli_parse_columns("--columns", joined, &again), "quoted list refused: [%s]",
               joined);
    FUZZ_CHECK(again.n == cols.n, "%d columns became %d: [%s]", cols.n, again.n, joined);
    for (int i = 0; i < cols.n; i++)
        FUZZ_CHECK(strcmp(again.names[i], cols.names[i]) == 0, "column %d: [%s] became [%s]", i,
                   cols.names[i], again.names[i]);
    free(joined);
}

/* The rule the range/count parsers document, computed independently. */
static bool want_number(const char *text, long long min, long long max, long long *v) {
    if (!*text)
        return false;
    long long x = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (x > (LLONG_MAX - (*p - '0')) / 10)
            return false; /* overflow */
        x = x * 10 + (*p - '0');
    }
    *v = x;
    return x >= min && x <= max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    quiet();
    fuzz_in in = {data, size};
    uint8_t sel = fuzz_u8(&in);
    long long lim = (long long)(fuzz_u64(&in) >> (fuzz_u8(&in) % 64));
    char *text = malloc(in.n + 1);
    memcpy(text, in.p, in.n);
    text[in.n] = '\0';
    switch (sel % 5) {
    case 0:
        check_columns(text);
        break;
    case 1: {
        long long lo = lim % 1000, hi = lim, v = -1, w = -1;
        bool got = cli_parse_range("--x", text, lo, hi, &v);
        bool want = want_number(text, lo, hi, &w);
        FUZZ_CHECK(got == want, "range [%lld,%lld] of [%s]: got %d want %d", lo, hi, text, got,
                   want);
        if (got)
            FUZZ_CHECK(v == w, "range value %lld, want %lld", v, w);
        break;
    }
    case 2: {
        long long v = -1, w = -1;
        bool got = cli_parse_count("--x", text, lim, &v);
        bool want = want_number(text, 0, lim, &w);
        FUZZ_CHECK(got == want, "count max %lld of [%s]: got %d want %d", lim, text, got, want);
        if (got)
            FUZZ_CHECK(v == w, "count value %lld, want %lld", v, w);
        break;
    }
    case 3: {
        char c = 0;
        bool got = cli_parse_byte("--delimiter", text, &c);
        unsigned char u = (unsigned char)text[0];
        bool want = strcmp(text, "\\t") == 0 ||
                    (strlen(text) == 1 && u != '\n' && u != '\r' && u < 0x80);
        FUZZ_CHECK(got == want, "byte [%s]: got %d want %d", text, got, want);
        if (got)
            FUZZ_CHECK(c == (strcmp(text, "\\t") == 0 ? '\t' : text[0]), "byte value");
        break;
    }
    default: {
        static const struct option opts[] = {{"table", required_argument, NULL, 't'},
                                             {"columns", required_argument, NULL, 'c'},
                                             {"max-errors", required_argument, NULL, 'm'},
                                             {NULL, 0, NULL, 0}};
        bool got = cli_value_is_option(text, opts);
        bool want = false;
        for (const struct option *o = opts; o->name && text[0] == '-' && text[1] == '-'; o++) {
            size_t n = strlen(o->name);
            want |= strncmp(text + 2, o->name, n) == 0 && (text[2 + n] == '\0' || text[2 + n] == '=');
        }
        FUZZ_CHECK(got == want, "is_option [%s]: got %d want %d", text, got, want);
        break;
    }
    }
    free(text);
    return 0;
}
