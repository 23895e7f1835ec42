/*
 * Fuzz target: the CLI's command lines (src/cli/dispatch.c and the getopt
 * loops of cmd_load.c, cmd_export.c, cmd_check.c), through
 * cli_dispatch and cli_<command>_parse_only, which parse and check every
 * flag exactly as the commands do and then stop: nothing is opened,
 * connected or loaded, so one process runs every input.
 *
 * Input: a selector byte (command, or a hostile top-level word), then
 * units: each a complete group of words (an option and its value, an
 * option with a bad value, an unknown option or short cluster, a help
 * flag, a file, "--", a DSN holding the marker S3CRET given through --dsn
 * in one of its forms: "--dsn X", "--dsn=X", "--ds=X", "--d=X", "-d X" for
 * check), or a raw fuzz word. Invariants checked:
 *   - never a crash or a sanitizer report;
 *   - the result is -1 (would run), CLI_EXIT_OK or CLI_EXIT_USAGE, never
 *     anything else; usage errors print "pgetl: ..." on stderr, and the
 *     other outcomes print nothing there;
 *   - the first unit getopt reads that is a bad option or value makes the
 *     command line a usage error (never a run), and a help flag read before
 *     any bad unit gives CLI_EXIT_OK (when no raw word came first);
 *   - the password marker never appears in what is printed on stderr.
 * The C stream stderr is pointed at a memory stream per input and stdout
 * at /dev/null; the target's own failures go to the real stderr.
 */
#define _GNU_SOURCE
#include <stdio.h>

static FILE *fuzz_real_stderr;
#define FUZZ_OUT (fuzz_real_stderr ? fuzz_real_stderr : stderr)

#include "cli/cli.h"
#include "fuzz_util.h"

#include <unistd.h>

#define MAX_WORDS 48
#define SECRET "S3CRET"

enum { CMD_LOAD, CMD_EXPORT, CMD_CHECK, NCMDS };

typedef enum { U_GOOD, U_BAD, U_HELP, U_POS, U_END, U_RAW } unit_kind;

typedef struct unit {
    unit_kind kind[NCMDS];
    const char *w[2];
} unit;

#define G3                                                                                         \
    { U_GOOD, U_GOOD, U_GOOD }
#define B3                                                                                         \
    { U_BAD, U_BAD, U_BAD }
/* Meaning per command: load, export, check. */
static const unit units[] = {
    /* --dsn in every form; the DSN holds the marker (filled in at run time) */
    {G3, {"--dsn", "@dsn"}},
    {G3, {"--dsn=@dsn", NULL}},
    {G3, {"--ds=@dsn", NULL}},
    {{U_BAD, U_GOOD, U_GOOD}, {"--d=@dsn", NULL}}, /* load: dsn, delimiter, dry-run */
    {{U_BAD, U_BAD, U_GOOD}, {"-d", "@dsn"}},      /* load: a bad delimiter; export: none */
    /* load */
    {{U_GOOD, U_GOOD, U_BAD}, {"--table", "t"}},
    {{U_GOOD, U_GOOD, U_BAD}, {"-t", "s.T"}},
    {{U_GOOD, U_BAD, U_BAD}, {"--columns", "a,\"B c\""}},
    {{U_GOOD, U_GOOD, U_BAD}, {"--header", NULL}},
    {{U_GOOD, U_GOOD, U_BAD}, {"--no-header", NULL}},
    {{U_GOOD, U_GOOD, U_BAD}, {"--format", "csv"}},
    {{U_GOOD, U_BAD, U_BAD}, {"-f", "text"}},
    {{U_GOOD, U_BAD, U_BAD}, {"--delimiter", ";"}},
    {{U_GOOD, U_BAD, U_BAD}, {"--null", "NA"}},
    {{U_GOOD, U_BAD, U_BAD}, {"--encoding", "LATIN1"}},
    {{U_GOOD, U_BAD, U_BAD}, {"--truncate", NULL}},
    {{U_GOOD, U_BAD, U_BAD}, {"--batch-rows", "1000"}},
    {{U_GOOD, U_BAD, U_BAD}, {"-j", "2"}},
    {{U_GOOD, U_BAD, U_BAD}, {"--max-errors=10", NULL}},
    {{U_GOOD, U_BAD, U_BAD}, {"--reject-file", "rej.csv"}},
    {{U_GOOD, U_GOOD, U_BAD}, {"--progress", NULL}},
    {{U_GOOD, U_GOOD, U_BAD}, {"--summary-json", "s.json"}},
    {{U_GOOD, U_BAD, U_BAD}, {"--dry-run", NULL}},
    {{U_GOOD, U_BAD, U_BAD}, {"--convert", "always"}},
    {{U_GOOD, U_BAD, U_BAD}, {"-v", NULL}},
    {G3, {"--connect-timeout", "5"}},
    {G3, {"--io-timeout=2.5", NULL}},
    {B3, {"--jobs", "0"}},
    {B3, {"--jobs=65", NULL}},
    {{U_BAD, U_BAD, U_BAD}, {"-j", "x"}},
    {B3, {"--format", "xml"}},
    {B3, {"--delimiter", ";;"}},
    {B3, {"--null", "a\nb"}},
    {B3, {"--encoding", "no such"}},
    {B3, {"--batch-rows", "0"}},
    {B3, {"--max-errors", "-1"}},
    {B3, {"--reject-file=", NULL}},
    {B3, {"--convert", "sometimes"}},
    {B3, {"--truncate=1", NULL}},
    {B3, {"--connect-timeout", "-1"}},
    {B3, {"--io-timeout=soon", NULL}},
    /* export */
    {{U_BAD, U_GOOD, U_BAD}, {"--query", "SELECT 1"}},
    {{U_BAD, U_GOOD, U_BAD}, {"-o", "out.csv.zst"}},
    {{U_BAD, U_GOOD, U_BAD}, {"--compress", "gzip"}},
    {{U_GOOD, U_GOOD, U_BAD}, {"--format", "tsv"}},
    {B3, {"--compress", "lz4"}},
    {B3, {"-o", ""}},
    {B3, {"--summary-json", ""}},
    /* unknown options and clusters */
    {B3, {"--bogus", NULL}},
    {B3, {"--bogus=postgres://u:pw@h", NULL}},
    {B3, {"-X", NULL}},
    {B3, {"-Xv", NULL}},
    {{U_BAD, U_BAD, U_BAD}, {"-vX", NULL}},
    /* help */
    {{U_HELP, U_HELP, U_HELP}, {"--help", NULL}},
    {{U_HELP, U_HELP, U_HELP}, {"-h", NULL}},
    {{U_HELP, U_BAD, U_BAD}, {"-vh", NULL}},
    /* words */
    {{U_POS, U_POS, U_POS}, {"data.csv", NULL}},
    {{U_POS, U_POS, U_POS}, {"-", NULL}},
    {{U_END, U_END, U_END}, {"--", NULL}},
};
#define NUNITS (sizeof units / sizeof units[0])

static const char *const dsns[] = {
    "postgres://u:" SECRET "pw@db.example/app",
    "host=db.example password=" SECRET "pw user=u",
    "password = '" SECRET " pw' host=h",
    "postgresql://u:" SECRET "%40x@h:5432/d?sslmode=require",
};

static char *words[MAX_WORDS + 2];
static FILE *devnull;

static void setup(void) {
    if (fuzz_real_stderr)
        return;
    fuzz_real_stderr = fdopen(dup(2), "w");
    devnull = fopen("/dev/null", "w");
    if (devnull)
        stdout = devnull;
}

static char *word(const char *w, const char *dsn) {
    if (strstr(w, "@dsn")) {
        size_t pre = (size_t)(strstr(w, "@dsn") - w);
        char *s = malloc(pre + strlen(dsn) + 1);
        memcpy(s, w, pre);
        strcpy(s + pre, dsn);
        return s;
    }
    return strdup(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    fuzz_in in = {data, size};
    uint8_t sel = fuzz_u8(&in);
    int cmd = sel % 4; /* 3: a hostile top-level word */
    const char *dsn = dsns[(sel >> 2) % 4];
    int argc = 0;
    words[argc++] = strdup("pgetl");
    static const char *const names[] = {"load", "export", "check"};
    if (cmd < NCMDS) {
        words[argc++] = strdup(names[cmd]);
    } else {
        uint8_t k = fuzz_u8(&in) % 4;
        words[argc++] = k == 0   ? word("--dsn=@dsn", dsn)
                        : k == 1 ? strdup("--help")
                        : k == 2 ? strdup("-V")
                                 : strdup("frobnicate");
    }

    /* What getopt must conclude from the units it reads as options. */
    int expect = -2; /* -2: unknown; else the exit code the first decisive unit implies */
    bool options_over = false, raw_seen = false;
    while (in.n && argc < MAX_WORDS) {
        uint8_t u = fuzz_u8(&in);
        if (u >= 0xf0) { /* a raw word: up to 15 fuzz bytes, NUL-free */
            char buf[16];
            size_t n = fuzz_bytes(&in, buf, u & 0x0f);
            buf[n] = '\0';
            for (char *m; (m = strstr(buf, SECRET)) != NULL;)
                *m = 's'; /* the marker only ever comes in through --dsn */
            words[argc++] = strdup(buf);
            raw_seen |= !options_over;
            continue;
        }
        const unit *un = &units[u % NUNITS];
        for (int k = 0; k < 2 && un->w[k]; k++)
            words[argc++] = word(un->w[k], dsn);
        if (cmd >= NCMDS || options_over || raw_seen || expect != -2)
            continue;
        unit_kind kind = un->kind[cmd];
        if (kind == U_END || (kind == U_POS && cmd == CMD_CHECK))
            options_over = true; /* "--" ends options; check stops at its first word */
        if (kind == U_POS && cmd == CMD_CHECK)
            expect = CLI_EXIT_USAGE; /* check takes no arguments */
        else if (kind == U_BAD)
            expect = CLI_EXIT_USAGE;
        else if (kind == U_HELP)
            expect = CLI_EXIT_OK;
    }
    words[argc] = NULL;

    char *err_text = NULL;
    size_t err_len = 0;
    FILE *saved = stderr;
    stderr = open_memstream(&err_text, &err_len);
    cli_cmd_fn fn = NULL;
    int code = cli_dispatch(argc, words, &fn);
    if (code < 0) {
        FUZZ_CHECK(cmd < NCMDS, "dispatch accepted a hostile command word");
        FUZZ_CHECK(fn == (cmd == CMD_LOAD     ? cli_cmd_load
                          : cmd == CMD_EXPORT ? cli_cmd_export
                                              : cli_cmd_check),
                   "dispatch chose the wrong command");
        code = cmd == CMD_LOAD     ? cli_load_parse_only(argc - 1, words + 1)
               : cmd == CMD_EXPORT ? cli_export_parse_only(argc - 1, words + 1)
                                   : cli_check_parse_only(argc - 1, words + 1);
    }
    fclose(stderr);
    stderr = saved;

    FUZZ_CHECK(code == -1 || code == CLI_EXIT_OK || code == CLI_EXIT_USAGE, "exit code %d", code);
    if (code == CLI_EXIT_USAGE)
        FUZZ_CHECK(err_len > 7 && strncmp(err_text, "pgetl: ", 7) == 0,
                   "usage error without a message: [%s]", err_text);
    else
        FUZZ_CHECK(err_len == 0, "exit %d printed on stderr: [%s]", code, err_text);
    if (expect != -2)
        FUZZ_CHECK(code == expect, "command %d: exit %d, the first decisive unit says %d [%s]", cmd,
                   code, expect, err_text);
    FUZZ_CHECK(strstr(err_text, SECRET) == NULL, "the password was printed: [%s]", err_text);
    free(err_text);
    for (int i = 0; i < argc; i++)
        free(words[i]);
    return 0;
}
