/*
 * The command-line tool. Only this layer knows it runs in a terminal; it uses
 * nothing but the public header <pgetl/pgetl.h>.
 */
#ifndef PGETL_SRC_CLI_H
#define PGETL_SRC_CLI_H

#include "pgetl/pgetl.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes, documented in `pgetl --help`. */
enum {
    CLI_EXIT_OK = 0,        /* success                                           */
    CLI_EXIT_FAILED = 1,    /* the operation failed; an atomic load rolled back  */
    CLI_EXIT_USAGE = 2,     /* bad command line                                  */
    CLI_EXIT_REJECTS = 3    /* loaded, with rejected rows (see --max-errors)     */
};

/* Prints "pgetl: <message> [SQLSTATE xxxxx]" (plus DETAIL/HINT lines) to stderr. */
void cli_print_error(const pgetl_error *err);

/* Prints "pgetl: <printf message>" to stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A command-line word as a usage error may echo it (into buf, returned): an
 * option only up to its '=' ("--dsn=..."), since its value may be a DSN
 * holding a password; another word that looks like a DSN (holds '=' or
 * "://") through pgetl_dsn_redact; anything else as it is.
 */
const char *cli_arg_shown(const char *arg, char *buf, size_t size);

/*
 * After getopt_long returned '?' or ':', the option it is about, safe to
 * echo (into buf, returned): "-x" for a short option (argv[optind - 1] may
 * be an earlier word when x sat inside a cluster such as "-xv"), else the
 * long option's word through cli_arg_shown.
 */
const char *cli_getopt_bad_option(char **argv, const struct option *opts, char *buf, size_t size);

/*
 * Parses a non-negative integer flag value strictly (digits only, no sign, no
 * trailing text, at most max). Prints a usage error naming the flag and
 * returns false on bad input.
 */
bool cli_parse_count(const char *flag, const char *text, long long max, long long *out);

/* ---- args.c: strict flag parsing (each prints its own usage error) ------ */

/* A whole number in [min, max]: digits only, no sign, no trailing text. */
bool cli_parse_range(const char *flag, const char *text, long long min, long long max,
                     long long *out);

/* Exactly one ASCII byte (or "\\t" for a tab); no line breaks. */
bool cli_parse_byte(const char *flag, const char *text, char *out);

/*
 * A duration in seconds from 0 to max: digits with an optional fraction
 * ("30", "2.5", ".5"). No sign, exponent, spaces, "nan" or "inf".
 */
bool cli_parse_seconds(const char *flag, const char *text, double max, double *out);

/* Index of text in the NULL-terminated choices, or -1 after an error message. */
int cli_parse_choice(const char *flag, const char *text, const char *const *choices);

#define CLI_MAX_COLUMNS 1600 /* PostgreSQL's MaxHeapAttributeNumber */
typedef struct cli_columns {
    int n;
    const char *ptrs[CLI_MAX_COLUMNS];
    char names[CLI_MAX_COLUMNS][PGETL_IDENT_MAX];
} cli_columns;

/* Comma-separated column names, folded by identifier rules; quotes keep case and commas. */
bool cli_parse_columns(const char *flag, const char *text, cli_columns *out);

/* True when a flag's value is itself one of the long options (a missing value). */
bool cli_value_is_option(const char *value, const struct option *opts);

/*
 * True when a flag's value is "--x" or "--x=..." with x the start of a long
 * option's name, as getopt would read it ("--d=postgres://..." after -t):
 * the flag's value is missing, and the word, perhaps a DSN, must not be
 * used (or echoed) as the value.
 */
bool cli_value_abbreviates_option(const char *value, const struct option *opts);

/* ---- timeouts.c: the bounds against a stalled server or network -------- */

/*
 * --connect-timeout, --statement-timeout, --io-timeout, --tcp-user-timeout
 * and --keepalives-idle, shared by check, load and export. Each command puts
 * CLI_TIMEOUT_OPTIONS in its option table and prints CLI_TIMEOUT_HELP; the
 * top-level --help prints CLI_TIMEOUT_SUMMARY. A default changed in
 * cli_timeouts_init() is changed in both texts.
 */
enum {
    CLI_OPT_CONNECT_TIMEOUT = 1024,
    CLI_OPT_STATEMENT_TIMEOUT,
    CLI_OPT_IO_TIMEOUT,
    CLI_OPT_TCP_USER_TIMEOUT,
    CLI_OPT_KEEPALIVES_IDLE
};

/* clang-format off */
#define CLI_TIMEOUT_OPTIONS                                                    \
    {"connect-timeout", required_argument, NULL, CLI_OPT_CONNECT_TIMEOUT},     \
    {"statement-timeout", required_argument, NULL, CLI_OPT_STATEMENT_TIMEOUT}, \
    {"io-timeout", required_argument, NULL, CLI_OPT_IO_TIMEOUT},               \
    {"tcp-user-timeout", required_argument, NULL, CLI_OPT_TCP_USER_TIMEOUT},   \
    {"keepalives-idle", required_argument, NULL, CLI_OPT_KEEPALIVES_IDLE}
/* clang-format on */

#define CLI_TIMEOUT_HELP                                                                           \
    "Timeouts (SECS: seconds, fractions allowed, 0 to 86400; 0 turns a bound off):\n"              \
    "  --connect-timeout SECS    each connection attempt (default 10; libpq rounds\n"              \
    "                            up to whole seconds, at least 2)\n"                               \
    "  --io-timeout SECS         fail when nothing moves either way for SECS while\n"              \
    "                            waiting on the server: a stalled server or network,\n"            \
    "                            but also a long lock wait or first row (default 3600)\n"          \
    "  --statement-timeout SECS  the server's statement_timeout for each statement\n"              \
    "                            (a whole COPY is one statement; default 0: off)\n"                \
    "  --tcp-user-timeout SECS   TCP: drop the connection when sent data stays\n"                  \
    "                            unacknowledged this long (default 0: the kernel's own)\n"         \
    "  --keepalives-idle SECS    TCP: keepalive probes after SECS idle; a peer that\n"             \
    "                            vanished is noticed after about twice this (default 60)\n"

/* The same flags, one line each, for the top-level `pgetl --help`. */
#define CLI_TIMEOUT_SUMMARY                                                                        \
    "Timeouts of check, load and export (SECS; 0 turns a bound off; COMMAND --help):\n"            \
    "  --connect-timeout SECS    each connection attempt (default 10)\n"                           \
    "  --io-timeout SECS         fail when nothing moves while waiting (default 3600)\n"           \
    "  --statement-timeout SECS  the server's statement_timeout (default 0: off)\n"                \
    "  --tcp-user-timeout SECS   sent data unacknowledged this long (default 0: off)\n"            \
    "  --keepalives-idle SECS    TCP: keepalive probes after SECS idle (default 60)\n"

typedef struct cli_timeouts {
    double connect_s, statement_s, io_s, tcp_user_s, keepalives_idle_s;
} cli_timeouts;

/* The CLI's defaults (see CLI_TIMEOUT_HELP and the note in timeouts.c). */
void cli_timeouts_init(cli_timeouts *t);

/* 1: c was a timeout option, parsed; 0: not one of them; -1: bad value (usage error printed). */
int cli_timeouts_take(cli_timeouts *t, int c, const char *val);

/* Copies the bounds into a config. */
void cli_timeouts_apply(const cli_timeouts *t, pgetl_config *cfg);

/* After an error: when a bound expired, says which flag sets it and its value. */
void cli_timeouts_hint(const cli_timeouts *t, const pgetl_error *err);

/* ---- progress.c: progress bar (TTY) or plain periodic lines ----------- */

typedef enum cli_progress_mode {
    CLI_PROGRESS_AUTO = 0, /* bar when stderr is a terminal, else nothing */
    CLI_PROGRESS_ON,       /* bar on a terminal, plain lines otherwise     */
    CLI_PROGRESS_OFF
} cli_progress_mode;

typedef struct cli_progress {
    FILE *out;
    bool enabled;
    bool tty;
    bool drawn;          /* a bar is on screen and must be cleared        */
    const char *verb;    /* "loaded" / "exported"                          */
    double last_plain;   /* when the last plain line was printed           */
} cli_progress;

/* Decides how to report; returns the interval the library should call at. */
double cli_progress_init(cli_progress *p, cli_progress_mode mode, const char *verb);

/* A pgetl_load_progress_fn; user is the cli_progress. */
void cli_progress_update(void *user, const pgetl_load_progress *pr);

/* Clears the bar so the next line starts clean; the progress is then inactive. */
void cli_progress_finish(cli_progress *p);

/* Clears the active bar, if one is drawn, before another line is printed. */
void cli_progress_clear_line(void);

/* ---- summary.c: the final report, as text and as JSON ------------------ */

typedef struct cli_summary {
    const char *command;          /* "load" or "export"                       */
    const char *status;           /* "ok", "rejects", "failed", "dry-run"      */
    int exit_code;
    const char *table;            /* as given on the command line (or NULL)   */
    const char *query;            /* export --query (or NULL)                 */
    const char *const *files;     /* load inputs                               */
    int nfiles;
    const char *output;           /* export output ("-" for stdout)            */
    const char *reject_file;
    int64_t rows_read, rows_loaded, rows_rejected, bytes;
    /* load only: COPY batches, how many went as binary COPY, rows the CHECK screen flagged */
    int64_t batches, batches_binary, rows_screened;
    double seconds;
    bool committed;
    bool commit_unknown; /* the commit itself failed: its outcome is unknown */
    const pgetl_error *error;     /* NULL on success                           */
} cli_summary;

/* The human summary: a few aligned lines. */
void cli_summary_print(FILE *out, const cli_summary *s);

/* The same as one JSON object plus a newline. Returns false on a write error. */
bool cli_summary_write_json(FILE *out, const cli_summary *s);

/* Writes text as a JSON string literal (quotes, escapes, invalid UTF-8 -> U+FFFD). */
void cli_json_string(FILE *out, const char *text);

/* ---- logsink.c: library log lines on stderr ---------------------------- */

/*
 * Default: WARN and up, minus per-row/per-load events the summary shows (and
 * minus per-row rejects when a reject file holds them); verbose: INFO and up.
 */
void cli_log_install(bool verbose, bool rejects_in_file);

/* ---- redact.c ------------------------------------------------------------ */

/* Replaces every verbatim copy of dsn in err's texts with "(DSN not shown)". */
void cli_error_hide_dsn(pgetl_error *err, const char *dsn);

/* Sub-commands: argc/argv start at the sub-command's name. */
int cli_cmd_check(int argc, char **argv);
int cli_cmd_load(int argc, char **argv);
int cli_cmd_export(int argc, char **argv);

/*
 * Each sub-command's command-line check alone: the flags parsed and checked
 * exactly as the command does first, and nothing opened, connected or
 * loaded. Returns -1 when the command line is good (the command would go on
 * to run), else the exit code the command returns: CLI_EXIT_OK after --help
 * (usage on stdout), CLI_EXIT_USAGE after a usage error on stderr. getopt is
 * reset (optind = 0, glibc's full reset), so these may be called any number
 * of times in one process; the fuzz target fuzz_cli_getopt does.
 */
int cli_check_parse_only(int argc, char **argv);
int cli_load_parse_only(int argc, char **argv);
int cli_export_parse_only(int argc, char **argv);

/* ---- dispatch.c: the top-level command line ----------------------------- */

typedef int (*cli_cmd_fn)(int argc, char **argv);

/*
 * Reads argv[1]: a sub-command's name sets *cmd_out (cli_cmd_load, ...) and
 * returns -1; --help / --version print to stdout and return CLI_EXIT_OK; a
 * missing or unknown command prints a usage error and returns CLI_EXIT_USAGE.
 */
int cli_dispatch(int argc, char **argv, cli_cmd_fn *cmd_out);

#endif /* PGETL_SRC_CLI_H */
