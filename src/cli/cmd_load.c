/*
 * `pgetl load`: files (or stdin) into a table through pgetl_load_files().
 * Every flag is checked here before anything is opened, so a bad command
 * line costs nothing and changes nothing (exit 2). Inputs are checked next
 * (missing, unreadable, a directory: exit 1), then the summary file is
 * opened, then the pool is created and the load runs.
 *
 * Output: the summary goes to stdout (the load writes no data there, so
 * stdout is the report); progress and errors go to stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out) {
    fputs(
        "usage: pgetl load [--dsn DSN] --table [SCHEMA.]TABLE [options] FILE...\n"
        "\n"
        "Loads CSV, TSV or PostgreSQL text files (gzip or zstd compressed files are\n"
        "detected by content) into TABLE with COPY. FILE \"-\" reads standard input.\n"
        "By default the load is atomic: the first bad row fails it and nothing is\n"
        "committed. With --max-errors N, bad rows are set aside (in --reject-file)\n"
        "and the load commits if at most N were rejected.\n"
        "\n"
        "Options:\n"
        "  --dsn DSN             connection string or URI (else $PGETL_DSN, else PG*)\n"
        "  -t, --table NAME      target table, TABLE or SCHEMA.TABLE (SQL identifier\n"
        "                        rules: unquoted names fold to lower case)\n"
        "  --columns a,b,c       target columns in file order (a header line, if any,\n"
        "                        is then skipped); default: the header names them\n"
        "  --header              the first line names the columns (default)\n"
        "  --no-header           there is no header line: the file holds every column\n"
        "  -f, --format F        csv (default), tsv (CSV rules, tab delimiter) or text\n"
        "                        (PostgreSQL text format: tab, backslash escapes, \\N)\n"
        "  -d, --delimiter C     one single-byte character (\\t for a tab)\n"
        "  --quote C             quote character, csv/tsv only (default \")\n"
        "  --escape C            escape character, csv/tsv only (default: the quote)\n"
        "  --null STRING         the text standing for NULL (csv: unquoted empty; text: \\N)\n"
        "  --encoding NAME       input encoding (default UTF8; a UTF-8 BOM is skipped)\n"
        "  --truncate            TRUNCATE the table first, in the same transaction\n"
        "  --batch-rows N        rows per COPY batch (default 100000)\n"
        "  -j, --jobs N          parallel connections, 1-64 (default 1)\n"
        "  --max-errors N        reject at most N bad rows and commit the rest\n"
        "                        (default 0: the first bad row fails the load)\n"
        "  --reject-file PATH    rejected rows verbatim; PATH.log says why, by line\n"
        "  --progress            progress on stderr even when it is not a terminal\n"
        "                        (plain lines); a terminal gets a bar by default\n"
        "  --no-progress         no progress output\n"
        "  --summary-json PATH   also write the summary as JSON to PATH\n"
        "  --dry-run             check the table, headers and every file; load nothing\n"
        "  --convert MODE        auto (default): convert to binary COPY on the client\n"
        "                        when that is faster; never: send the bytes as they are;\n"
        "                        always: convert wherever the column types allow\n"
        "  -v, --verbose         also print the library's log (every rejected row, ...)\n"
        "  -h, --help            this text\n"
        "\n"
        "Output: the summary (files, rows read/loaded/rejected, COPY batches and how\n"
        "many went as binary COPY, bytes, seconds, rows/s, MB/s) goes to stdout;\n"
        "--summary-json adds rows_screened (rows a CHECK screen sent to the server\n"
        "one by one under --max-errors). Progress and errors go to stderr as\n"
        "\"pgetl: <message> [SQLSTATE xxxxx]\". Passwords are never printed.\n"
        "\n"
        "Examples:\n"
        "  pgetl load --table sales.orders orders.csv\n"
        "  zcat big.csv.gz | pgetl load -t events --jobs 2 -\n"
        "  pgetl load -t events --max-errors 100 --reject-file bad.csv day1.csv day2.csv\n"
        "  pgetl load -t t --format text --no-header --columns id,name dump.txt\n"
        "\n",
        out);
    fputs(CLI_TIMEOUT_HELP, out);
    fputs(
        "\n"
        "Exit codes:\n"
        "  0  loaded (every row)\n"
        "  1  failed: nothing was committed (bad input, server error, too many rejects,\n"
        "     a timeout: the bound that expired is named, with its flag); or the commit\n"
        "     itself failed, and the message says what may have been committed\n"
        "  2  usage error: bad command line, nothing was done\n"
        "  3  loaded, but some rows were rejected (at most --max-errors; see --reject-file)\n",
        out);
}

enum {
    OPT_NO_HEADER = 256,
    OPT_QUOTE,
    OPT_ESCAPE,
    OPT_NULL,
    OPT_ENCODING,
    OPT_TRUNCATE,
    OPT_BATCH,
    OPT_MAXERR,
    OPT_REJECT,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_SUMMARY,
    OPT_DRY_RUN,
    OPT_CONVERT,
    OPT_DSN,
    OPT_VERBOSE
};

static const struct option long_opts[] = {
    {"dsn", required_argument, NULL, OPT_DSN},
    {"table", required_argument, NULL, 't'},
    {"columns", required_argument, NULL, 'c'},
    {"header", no_argument, NULL, 'H'},
    {"no-header", no_argument, NULL, OPT_NO_HEADER},
    {"format", required_argument, NULL, 'f'},
    {"delimiter", required_argument, NULL, 'd'},
    {"quote", required_argument, NULL, OPT_QUOTE},
    {"escape", required_argument, NULL, OPT_ESCAPE},
    {"null", required_argument, NULL, OPT_NULL},
    {"encoding", required_argument, NULL, OPT_ENCODING},
    {"truncate", no_argument, NULL, OPT_TRUNCATE},
    {"batch-rows", required_argument, NULL, OPT_BATCH},
    {"jobs", required_argument, NULL, 'j'},
    {"max-errors", required_argument, NULL, OPT_MAXERR},
    {"reject-file", required_argument, NULL, OPT_REJECT},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"summary-json", required_argument, NULL, OPT_SUMMARY},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"convert", required_argument, NULL, OPT_CONVERT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    CLI_TIMEOUT_OPTIONS,
    {NULL, 0, NULL, 0},
};

#define CLI_MAX_JOBS 64
#define CLI_MAX_BATCH_ROWS 100000000LL
#define CLI_MAX_ERRORS_LIMIT 1000000000000LL

typedef struct load_args {
    const char *dsn;
    const char *summary_json;
    bool verbose;
    cli_progress_mode progress;
    bool quote_set, escape_set;
    pgetl_load_options o;
    cli_timeouts timeouts;
    cli_columns *columns;
    const char *const *files;
    int nfiles;
} load_args;

static bool valid_encoding(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

/* Parses one option; false after printing a usage error. */
static bool take_option(load_args *a, int c, const char *val) {
    static const char *const formats[] = {"csv", "tsv", "text", NULL};
    static const char *const converts[] = {"auto", "never", "always", NULL};
    long long n;
    int i;
    switch (c) {
    case OPT_DSN:
        a->dsn = val;
        return true;
    case 't':
        a->o.table = val;
        return true;
    case 'c':
        if (!a->columns)
            a->columns = calloc(1, sizeof *a->columns);
        if (!a->columns) {
            cli_errorf("out of memory");
            return false;
        }
        if (!cli_parse_columns("--columns", val, a->columns))
            return false;
        a->o.columns = a->columns->ptrs;
        a->o.ncolumns = a->columns->n;
        return true;
    case 'H':
        a->o.header = true;
        return true;
    case OPT_NO_HEADER:
        a->o.header = false;
        return true;
    case 'f':
        if ((i = cli_parse_choice("--format", val, formats)) < 0)
            return false;
        a->o.format = i == 0 ? PGETL_LOAD_CSV : i == 1 ? PGETL_LOAD_TSV : PGETL_LOAD_TEXT;
        return true;
    case 'd':
        return cli_parse_byte("--delimiter", val, &a->o.delimiter);
    case OPT_QUOTE:
        a->quote_set = true;
        return cli_parse_byte("--quote", val, &a->o.quote);
    case OPT_ESCAPE:
        a->escape_set = true;
        return cli_parse_byte("--escape", val, &a->o.escape);
    case OPT_NULL:
        if (strpbrk(val, "\r\n")) {
            cli_errorf("--null cannot contain a line break");
            return false;
        }
        a->o.null_string = val;
        return true;
    case OPT_ENCODING:
        if (!valid_encoding(val)) {
            char shown[256];
            cli_errorf("--encoding takes an encoding name such as UTF8 or LATIN1 (got \"%s\")",
                       cli_arg_shown(val, shown, sizeof shown));
            return false;
        }
        a->o.encoding = val;
        return true;
    case OPT_TRUNCATE:
        a->o.truncate = true;
        return true;
    case OPT_BATCH:
        if (!cli_parse_range("--batch-rows", val, 1, CLI_MAX_BATCH_ROWS, &n))
            return false;
        a->o.batch_rows = n;
        return true;
    case 'j':
        if (!cli_parse_range("--jobs", val, 1, CLI_MAX_JOBS, &n))
            return false;
        a->o.jobs = (int)n;
        return true;
    case OPT_MAXERR:
        if (!cli_parse_range("--max-errors", val, 0, CLI_MAX_ERRORS_LIMIT, &n))
            return false;
        a->o.max_errors = n;
        return true;
    case OPT_REJECT:
        if (!*val) {
            cli_errorf("--reject-file needs a path");
            return false;
        }
        a->o.reject_path = val;
        return true;
    case OPT_PROGRESS:
        a->progress = CLI_PROGRESS_ON;
        return true;
    case OPT_NO_PROGRESS:
        a->progress = CLI_PROGRESS_OFF;
        return true;
    case OPT_SUMMARY:
        if (!*val) {
            cli_errorf("--summary-json needs a path");
            return false;
        }
        a->summary_json = val;
        return true;
    case OPT_DRY_RUN:
        a->o.dry_run = true;
        return true;
    case 'v':
        a->verbose = true;
        return true;
    case OPT_CONVERT:
        if ((i = cli_parse_choice("--convert", val, converts)) < 0)
            return false;
        a->o.convert = i == 0 ? PGETL_CONVERT_AUTO : i == 1 ? PGETL_CONVERT_NEVER
                                                            : PGETL_CONVERT_ALWAYS;
        return true;
    default:
        return cli_timeouts_take(&a->timeouts, c, val) > 0;
    }
}

/* Checks that hold between flags. */
static bool check_combination(load_args *a) {
    pgetl_error err;
    pgetl_qualified_name qn;
    if (!a->o.table) {
        cli_errorf("load: --table is required (see pgetl load --help)");
        return false;
    }
    if (pgetl_ident_parse(a->o.table, &qn, &err) != PGETL_OK) {
        cli_errorf("load: bad --table: %s", err.message);
        return false;
    }
    if (a->nfiles == 0) {
        cli_errorf("load: no input files (give FILE..., or - for standard input)");
        return false;
    }
    int stdin_count = 0;
    for (int i = 0; i < a->nfiles; i++) {
        if (!a->files[i][0]) {
            cli_errorf("load: an input file name is empty");
            return false;
        }
        stdin_count += strcmp(a->files[i], "-") == 0;
    }
    if (stdin_count > 1) {
        cli_errorf("load: standard input (-) can be read only once");
        return false;
    }
    if (a->o.format == PGETL_LOAD_TEXT && (a->quote_set || a->escape_set)) {
        cli_errorf("load: --quote and --escape apply to csv and tsv only");
        return false;
    }
    char delim = a->o.delimiter ? a->o.delimiter : (a->o.format == PGETL_LOAD_CSV ? ',' : '\t');
    char quote = a->o.quote ? a->o.quote : '"';
    if (a->o.format != PGETL_LOAD_TEXT && delim == quote) {
        cli_errorf("load: the delimiter and the quote must differ");
        return false;
    }
    if (a->o.format == PGETL_LOAD_TEXT && a->o.delimiter == '\\') {
        cli_errorf("load: the text format cannot use a backslash as delimiter");
        return false;
    }
    if (a->o.null_string && a->o.null_string[0] && strchr(a->o.null_string, delim)) {
        cli_errorf("load: --null cannot contain the delimiter");
        return false;
    }
    return true;
}

static bool same_file(const struct stat *a, const char *path) {
    struct stat b;
    return path && stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/*
 * Inputs must exist, be readable and not be directories, and no output
 * (summary, reject file) may be one of them: opening an output truncates it.
 */
static bool check_inputs(const load_args *a) {
    for (int i = 0; i < a->nfiles; i++) {
        const char *f = a->files[i];
        if (strcmp(f, "-") == 0)
            continue;
        struct stat st;
        int fd = open(f, O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0) {
            cli_errorf("cannot read \"%s\": %s", f, strerror(errno));
            if (fd >= 0)
                close(fd);
            return false;
        }
        close(fd);
        if (S_ISDIR(st.st_mode)) {
            cli_errorf("cannot load \"%s\": it is a directory", f);
            return false;
        }
        const char *rej_log = NULL;
        char buf[4096];
        if (a->o.reject_path) {
            snprintf(buf, sizeof buf, "%s.log", a->o.reject_path);
            rej_log = buf;
        }
        if (same_file(&st, a->summary_json) || same_file(&st, a->o.reject_path) ||
            same_file(&st, rej_log)) {
            cli_errorf("\"%s\" is an input file and cannot also be an output", f);
            return false;
        }
    }
    return true;
}

static void load_args_init(load_args *a) {
    memset(a, 0, sizeof *a);
    pgetl_load_options_init(&a->o);
    cli_timeouts_init(&a->timeouts);
}

/* Every flag and their combination; -1 when the load may run, else the exit code. */
static int parse_args(load_args *a, int argc, char **argv) {
    int c, li = -1;
    char shown[256], shown2[256];
    optind = 0; /* glibc: a full reset, also of a half-read "-xv" cluster */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:c:f:d:j:hv", long_opts, &li)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == '?') {
            cli_errorf("load: unknown option \"%s\" (see pgetl load --help)",
                       cli_getopt_bad_option(argv, long_opts, shown, sizeof shown));
            return CLI_EXIT_USAGE;
        }
        if (c == ':') {
            cli_errorf("load: option \"%s\" needs a value",
                       cli_getopt_bad_option(argv, long_opts, shown, sizeof shown));
            return CLI_EXIT_USAGE;
        }
        if (optarg && (cli_value_is_option(optarg, long_opts) ||
                       cli_value_abbreviates_option(optarg, long_opts))) {
            /* Named from the table: argv[optind - 2] is another word for "--table=--jobs". */
            if (li >= 0)
                snprintf(shown, sizeof shown, "--%s", long_opts[li].name);
            else
                snprintf(shown, sizeof shown, "-%c", c);
            cli_errorf("load: option \"%s\" needs a value (got the option \"%s\")", shown,
                       cli_arg_shown(optarg, shown2, sizeof shown2));
            return CLI_EXIT_USAGE;
        }
        li = -1;
        if (!take_option(a, c, optarg))
            return CLI_EXIT_USAGE;
    }
    a->files = (const char *const *)(argv + optind);
    a->nfiles = argc - optind;
    return check_combination(a) ? -1 : CLI_EXIT_USAGE;
}

static int exit_code_for(pgetl_code rc, const pgetl_load_stats *st) {
    if (rc != PGETL_OK)
        return CLI_EXIT_FAILED;
    return st->rows_rejected > 0 ? CLI_EXIT_REJECTS : CLI_EXIT_OK;
}

static void finish_summary(const load_args *a, FILE *json, pgetl_code rc,
                           const pgetl_load_stats *st, const pgetl_error *err, int code,
                           bool print_text) {
    cli_summary s = {
        .command = "load",
        .status = rc != PGETL_OK                  ? "failed"
                  : a->o.dry_run                  ? "dry-run"
                  : code == CLI_EXIT_REJECTS      ? "rejects"
                                                  : "ok",
        .exit_code = code,
        .table = a->o.table,
        .files = a->files,
        .nfiles = a->nfiles,
        .reject_file = a->o.reject_path,
        .rows_read = st->rows_read,
        .rows_loaded = st->rows_loaded,
        .rows_rejected = st->rows_rejected,
        .bytes = st->bytes_read,
        .batches = st->batches,
        .batches_binary = st->batches_binary,
        .rows_screened = st->rows_screened,
        .seconds = st->seconds,
        .committed = st->committed,
        .commit_unknown = st->commit_unknown,
        .error = rc != PGETL_OK ? err : NULL,
    };
    if (print_text)
        cli_summary_print(stdout, &s);
    if (json && !cli_summary_write_json(json, &s))
        cli_errorf("writing the summary to \"%s\" failed", a->summary_json);
}

int cli_load_parse_only(int argc, char **argv) {
    load_args a;
    load_args_init(&a);
    int code = parse_args(&a, argc, argv);
    free(a.columns);
    return code;
}

int cli_cmd_load(int argc, char **argv) {
    load_args a;
    load_args_init(&a);
    int code = parse_args(&a, argc, argv);
    if (code >= 0) {
        free(a.columns);
        return code;
    }
    cli_log_install(a.verbose, a.o.reject_path != NULL);
    if (!check_inputs(&a)) {
        free(a.columns);
        return CLI_EXIT_FAILED;
    }
    FILE *json = NULL;
    if (a.summary_json) {
        json = fopen(a.summary_json, "w");
        if (!json) {
            cli_errorf("cannot write the summary to \"%s\": %s", a.summary_json,
                       strerror(errno));
            free(a.columns);
            return CLI_EXIT_FAILED;
        }
    }

    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_load_stats st;
    memset(&st, 0, sizeof st);
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = a.dsn;
    cli_timeouts_apply(&a.timeouts, &cfg);
    cfg.pool_min = 1;
    cfg.pool_max = (a.o.jobs > 0 ? a.o.jobs : 1) + 1;
    pgetl_pool *pool = NULL;
    pgetl_code rc = pgetl_pool_create(&cfg, &pool, &err);
    if (rc == PGETL_OK) {
        cli_progress prog;
        a.o.progress_interval_s = cli_progress_init(&prog, a.progress, "load");
        a.o.progress = cli_progress_update;
        a.o.progress_user = &prog;
        rc = pgetl_load_files(pool, a.files, a.nfiles, &a.o, &st, &err);
        cli_progress_finish(&prog);
    }
    code = exit_code_for(rc, &st);
    cli_error_hide_dsn(&err, pgetl_config_dsn(&cfg));
    if (rc != PGETL_OK) {
        cli_print_error(&err);
        cli_timeouts_hint(&a.timeouts, &err);
        if (pool && st.commit_unknown)
            cli_errorf("the commit did not complete: some or all rows may be committed (see "
                       "above)");
        else if (pool && !st.committed)
            cli_errorf("nothing was committed: the load was rolled back");
    } else if (st.rows_rejected > 0) {
        cli_errorf("%lld rows rejected%s%s", (long long)st.rows_rejected,
                   a.o.reject_path ? "; they are in " : "",
                   a.o.reject_path ? a.o.reject_path : "");
    }
    finish_summary(&a, json, rc, &st, &err, code, pool != NULL);
    if (json && fclose(json) != 0)
        cli_errorf("writing the summary to \"%s\" failed: %s", a.summary_json, strerror(errno));
    pgetl_pool_destroy(pool);
    free(a.columns);
    return code;
}
