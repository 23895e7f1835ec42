/*
 * `pgetl export`: a query's or a table's rows streamed out with COPY ... TO
 * STDOUT (pgetl_export_fd), to stdout or a file, gzip/zstd compressed on the
 * way when the file name ends in .gz / .zst (or --compress says so).
 *
 * A file output is written to "<FILE>.pgetl-XXXXXX" beside it and renamed
 * over FILE only when the export succeeded, so a failed export never leaves
 * a truncated file that looks complete (nor destroys an older FILE).
 *
 * stdout carries only data: the summary, progress and errors go to stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out) {
    fputs("usage: pgetl export [--dsn DSN] (--query SQL | --table [SCHEMA.]TABLE) [options]\n"
          "\n"
          "Streams rows out with COPY ... TO STDOUT, to standard output or a file, in\n"
          "constant memory whatever the size.\n"
          "\n"
          "Options:\n"
          "  --dsn DSN             connection string or URI (else $PGETL_DSN, else PG*)\n"
          "  -q, --query SQL       export the rows of this query (SELECT, VALUES, or\n"
          "                        INSERT/UPDATE/DELETE ... RETURNING); one statement\n"
          "  -t, --table NAME      export a whole table (SQL identifier rules)\n"
          "  -f, --format F        csv (default), tsv, or binary (PostgreSQL binary COPY)\n"
          "  --header              write a header line (csv/tsv)\n"
          "  -o, --output FILE     write to FILE (\"-\": stdout, the default); a name\n"
          "                        ending in .gz or .zst is compressed with gzip or zstd\n"
          "  --compress C          auto (default: by file name), none, gzip or zstd\n"
          "  --progress            progress on stderr even when it is not a terminal\n"
          "  --no-progress         no progress output\n"
          "  --summary-json PATH   write the summary as JSON to PATH\n"
          "  -h, --help            this text\n"
          "\n"
          "The output file appears only when the export succeeded. The summary (rows,\n"
          "bytes written, seconds, rows/s, MB/s) goes to stderr, never stdout.\n"
          "A query export commits when it succeeded (it may be INSERT ... RETURNING).\n"
          "\n"
          "Examples:\n"
          "  pgetl export --table sales.orders -o orders.csv.zst\n"
          "  pgetl export --query 'SELECT id, total FROM orders WHERE day = current_date' --header\n"
          "  pgetl export -t events -f binary -o events.bin\n"
          "\n",
          out);
    fputs(CLI_TIMEOUT_HELP, out);
    fputs("\n"
          "Exit codes:\n"
          "  0  exported\n"
          "  1  failed (server error, lost connection, output not writable, a timeout:\n"
          "     the bound that expired is named, with its flag); no file left\n"
          "  2  usage error: bad command line, nothing was done\n",
          out);
}

enum { OPT_DSN = 256, OPT_HEADER, OPT_NO_HEADER, OPT_COMPRESS, OPT_PROGRESS, OPT_NO_PROGRESS,
       OPT_SUMMARY };

static const struct option long_opts[] = {
    {"dsn", required_argument, NULL, OPT_DSN},
    {"query", required_argument, NULL, 'q'},
    {"table", required_argument, NULL, 't'},
    {"format", required_argument, NULL, 'f'},
    {"header", no_argument, NULL, OPT_HEADER},
    {"no-header", no_argument, NULL, OPT_NO_HEADER},
    {"output", required_argument, NULL, 'o'},
    {"compress", required_argument, NULL, OPT_COMPRESS},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"summary-json", required_argument, NULL, OPT_SUMMARY},
    {"help", no_argument, NULL, 'h'},
    CLI_TIMEOUT_OPTIONS,
    {NULL, 0, NULL, 0},
};

typedef struct export_args {
    const char *dsn;
    const char *output;
    const char *summary_json;
    int compress; /* -1 auto, else a pgetl_compression */
    cli_progress_mode progress;
    pgetl_export_options o;
    cli_timeouts timeouts;
} export_args;

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int parse_args(export_args *a, int argc, char **argv) {
    static const char *const formats[] = {"csv", "tsv", "binary", NULL};
    static const char *const compressions[] = {"none", "gzip", "zstd", "auto", NULL};
    int c, i, li = -1;
    char shown[256], shown2[256];
    optind = 0; /* glibc: a full reset, also of a half-read "-xv" cluster */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":q:t:f:o:h", long_opts, &li)) != -1) {
        if (c == '?') {
            cli_errorf("export: unknown option \"%s\" (see pgetl export --help)",
                       cli_getopt_bad_option(argv, long_opts, shown, sizeof shown));
            return CLI_EXIT_USAGE;
        }
        if (c == ':') {
            cli_errorf("export: option \"%s\" needs a value",
                       cli_getopt_bad_option(argv, long_opts, shown, sizeof shown));
            return CLI_EXIT_USAGE;
        }
        if (optarg && (cli_value_is_option(optarg, long_opts) ||
                       cli_value_abbreviates_option(optarg, long_opts))) {
            if (li >= 0)
                snprintf(shown, sizeof shown, "--%s", long_opts[li].name);
            else
                snprintf(shown, sizeof shown, "-%c", c);
            cli_errorf("export: option \"%s\" needs a value (got the option \"%s\")", shown,
                       cli_arg_shown(optarg, shown2, sizeof shown2));
            return CLI_EXIT_USAGE;
        }
        li = -1;
        switch (c) {
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        case OPT_DSN:
            a->dsn = optarg;
            break;
        case 'q':
            a->o.query = optarg;
            break;
        case 't':
            a->o.table = optarg;
            break;
        case 'f':
            if ((i = cli_parse_choice("--format", optarg, formats)) < 0)
                return CLI_EXIT_USAGE;
            a->o.format = (pgetl_export_format)i;
            break;
        case OPT_HEADER:
            a->o.header = true;
            break;
        case OPT_NO_HEADER:
            a->o.header = false;
            break;
        case 'o':
            if (!*optarg) {
                cli_errorf("export: --output needs a file name");
                return CLI_EXIT_USAGE;
            }
            a->output = optarg;
            break;
        case OPT_COMPRESS:
            if ((i = cli_parse_choice("--compress", optarg, compressions)) < 0)
                return CLI_EXIT_USAGE;
            a->compress = i == 3 ? -1 : i;
            break;
        case OPT_PROGRESS:
            a->progress = CLI_PROGRESS_ON;
            break;
        case OPT_NO_PROGRESS:
            a->progress = CLI_PROGRESS_OFF;
            break;
        case OPT_SUMMARY:
            if (!*optarg) {
                cli_errorf("export: --summary-json needs a path");
                return CLI_EXIT_USAGE;
            }
            a->summary_json = optarg;
            break;
        default:
            if (cli_timeouts_take(&a->timeouts, c, optarg) <= 0)
                return CLI_EXIT_USAGE;
            break;
        }
    }
    if (optind < argc) {
        cli_errorf("export: unexpected argument \"%s\"",
                   cli_arg_shown(argv[optind], shown, sizeof shown));
        return CLI_EXIT_USAGE;
    }
    if ((a->o.query != NULL) == (a->o.table != NULL)) {
        cli_errorf("export: give exactly one of --query and --table");
        return CLI_EXIT_USAGE;
    }
    pgetl_error err;
    pgetl_qualified_name qn;
    if (a->o.table && pgetl_ident_parse(a->o.table, &qn, &err) != PGETL_OK) {
        cli_errorf("export: bad --table: %s", err.message);
        return CLI_EXIT_USAGE;
    }
    if (a->o.header && a->o.format == PGETL_EXPORT_BINARY) {
        cli_errorf("export: --header needs --format csv or tsv");
        return CLI_EXIT_USAGE;
    }
    if (a->output && strcmp(a->output, "-") == 0)
        a->output = NULL;
    if (a->compress >= 0)
        a->o.compression = (pgetl_compression)a->compress;
    else if (a->output && ends_with(a->output, ".gz"))
        a->o.compression = PGETL_COMPRESS_GZIP;
    else if (a->output && ends_with(a->output, ".zst"))
        a->o.compression = PGETL_COMPRESS_ZSTD;
    if (!a->output && isatty(STDOUT_FILENO) == 1 &&
        (a->o.format == PGETL_EXPORT_BINARY || a->o.compression != PGETL_COMPRESS_NONE)) {
        cli_errorf("export: not writing binary or compressed data to a terminal "
                   "(use -o FILE or a pipe)");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Opens "<output>.pgetl-XXXXXX" with the mode a plain creat() would give. */
static int open_temp(const char *output, char **tmp_out) {
    size_t n = strlen(output) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.pgetl-XXXXXX", output);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return -1;
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0) {
        /* Keep mkstemp's 0600: safe, just stricter than asked. */
    }
    *tmp_out = tmp;
    return fd;
}

static void export_args_init(export_args *a) {
    memset(a, 0, sizeof *a);
    a->compress = -1;
    pgetl_export_options_init(&a->o);
    cli_timeouts_init(&a->timeouts);
}

int cli_export_parse_only(int argc, char **argv) {
    export_args a;
    export_args_init(&a);
    return parse_args(&a, argc, argv);
}

int cli_cmd_export(int argc, char **argv) {
    export_args a;
    export_args_init(&a);
    int code = parse_args(&a, argc, argv);
    if (code >= 0)
        return code;
    cli_log_install(false, false);

    FILE *json = NULL;
    if (a.summary_json && !(json = fopen(a.summary_json, "w"))) {
        cli_errorf("cannot write the summary to \"%s\": %s", a.summary_json, strerror(errno));
        return CLI_EXIT_FAILED;
    }
    int fd = STDOUT_FILENO;
    char *tmp = NULL;
    if (a.output) {
        struct stat st;
        if (stat(a.output, &st) == 0 && S_ISDIR(st.st_mode)) {
            cli_errorf("cannot write \"%s\": it is a directory", a.output);
            if (json)
                fclose(json);
            return CLI_EXIT_FAILED;
        }
        /* A device or FIFO (/dev/null, a named pipe) is written directly: a
         * temporary file could not be renamed over it. */
        if (stat(a.output, &st) == 0 && !S_ISREG(st.st_mode))
            fd = open(a.output, O_WRONLY);
        else
            fd = open_temp(a.output, &tmp);
        if (fd < 0) {
            cli_errorf("cannot write \"%s\": %s", a.output, strerror(errno));
            if (json)
                fclose(json);
            return CLI_EXIT_FAILED;
        }
    }
    /* A closed pipe must be an error we report, not a silent death. */
    signal(SIGPIPE, SIG_IGN);

    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = a.dsn;
    cli_timeouts_apply(&a.timeouts, &cfg);
    pgetl_conn *conn = NULL;
    int64_t rows = 0, bytes = 0;
    double t0 = now_s();
    pgetl_code rc = pgetl_connect(&cfg, &conn, &err);
    if (rc == PGETL_OK) {
        cli_progress prog;
        a.o.progress_interval_s = cli_progress_init(&prog, a.progress, "export");
        a.o.progress = cli_progress_update;
        a.o.progress_user = &prog;
        rc = pgetl_export_fd(conn, &a.o, fd, &rows, &bytes, &err);
        cli_progress_finish(&prog);
        if (rc == PGETL_OK)
            rc = pgetl_commit(conn, &err);
        else
            pgetl_rollback(conn, NULL);
    }
    double secs = now_s() - t0;
    if (a.output && !tmp && close(fd) != 0 && rc == PGETL_OK)
        rc = pgetl_error_set(&err, PGETL_EIO, "writing \"%s\" failed: %s", a.output,
                             strerror(errno));
    if (tmp) {
        if (rc == PGETL_OK && fsync(fd) != 0 && errno != EINVAL)
            rc = pgetl_error_set(&err, PGETL_EIO, "writing \"%s\" failed: %s", a.output,
                                 strerror(errno));
        if (close(fd) != 0 && rc == PGETL_OK)
            rc = pgetl_error_set(&err, PGETL_EIO, "writing \"%s\" failed: %s", a.output,
                                 strerror(errno));
        if (rc == PGETL_OK && rename(tmp, a.output) != 0)
            rc = pgetl_error_set(&err, PGETL_EIO, "cannot rename the output to \"%s\": %s",
                                 a.output, strerror(errno));
        if (rc != PGETL_OK)
            unlink(tmp);
        free(tmp);
    }
    code = rc == PGETL_OK ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    cli_error_hide_dsn(&err, pgetl_config_dsn(&cfg));
    if (rc != PGETL_OK) {
        cli_print_error(&err);
        cli_timeouts_hint(&a.timeouts, &err);
    }
    cli_summary s = {
        .command = "export",
        .status = rc == PGETL_OK ? "ok" : "failed",
        .exit_code = code,
        .table = a.o.table,
        .query = a.o.query,
        .output = a.output ? a.output : "-",
        .rows_read = rows,
        .rows_loaded = rows,
        .bytes = bytes,
        .seconds = secs,
        .committed = rc == PGETL_OK,
        .error = rc == PGETL_OK ? NULL : &err,
    };
    if (conn)
        cli_summary_print(stderr, &s);
    if (json) {
        if (!cli_summary_write_json(json, &s) || fclose(json) != 0)
            cli_errorf("writing the summary to \"%s\" failed", a.summary_json);
    }
    pgetl_conn_close(conn);
    return code;
}
