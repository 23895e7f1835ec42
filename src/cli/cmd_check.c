/* `pgetl check`: connect and describe the server, with the password hidden. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *out) {
    fputs("usage: pgetl check [--dsn DSN] [timeouts]\n"
          "\n"
          "Connects and prints the server version, host, port, database, user and TLS\n"
          "state. The DSN comes from --dsn, else $PGETL_DSN, else libpq's PG* variables.\n"
          "Passwords are never printed.\n"
          "\n" CLI_TIMEOUT_HELP "\n"
          "Exit codes: 0 connected; 1 failed (a bound that expired is named, with its\n"
          "flag); 2 usage error.\n",
          out);
}

static const struct option opts[] = {
    {"dsn", required_argument, NULL, 'd'},
    {"help", no_argument, NULL, 'h'},
    CLI_TIMEOUT_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* The flags; -1 when the check may run, else the exit code. */
static int parse_args(int argc, char **argv, const char **dsn, cli_timeouts *timeouts) {
    int c, li = -1;
    char shown[256], shown2[256];
    optind = 0; /* glibc: a full reset, also of a half-read "-xv" cluster */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+d:h", opts, &li)) != -1) {
        switch (c) {
        case 'd':
            *dsn = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            if (c != '?' && optarg &&
                (cli_value_is_option(optarg, opts) || cli_value_abbreviates_option(optarg, opts))) {
                if (li >= 0)
                    snprintf(shown, sizeof shown, "--%s", opts[li].name);
                else
                    snprintf(shown, sizeof shown, "-%c", c);
                cli_errorf("check: option \"%s\" needs a value (got the option \"%s\")", shown,
                           cli_arg_shown(optarg, shown2, sizeof shown2));
                return CLI_EXIT_USAGE;
            }
            int t = c == '?' ? 0 : cli_timeouts_take(timeouts, c, optarg);
            if (t > 0)
                break;
            if (t < 0)
                return CLI_EXIT_USAGE;
            cli_errorf("check: unknown or incomplete option \"%s\"",
                       cli_getopt_bad_option(argv, opts, shown, sizeof shown));
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
        li = -1;
    }
    if (optind < argc) {
        cli_errorf("check: unexpected argument \"%s\"",
                   cli_arg_shown(argv[optind], shown, sizeof shown));
        return CLI_EXIT_USAGE;
    }
    return -1;
}

int cli_check_parse_only(int argc, char **argv) {
    const char *dsn = NULL;
    cli_timeouts timeouts;
    cli_timeouts_init(&timeouts);
    return parse_args(argc, argv, &dsn, &timeouts);
}

int cli_cmd_check(int argc, char **argv) {
    const char *dsn = NULL;
    cli_timeouts timeouts;
    cli_timeouts_init(&timeouts);
    int code = parse_args(argc, argv, &dsn, &timeouts);
    if (code >= 0)
        return code;

    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    cli_timeouts_apply(&timeouts, &cfg);
    pgetl_error err;
    pgetl_conn *conn = NULL;
    if (pgetl_connect(&cfg, &conn, &err) != PGETL_OK) {
        cli_print_error(&err);
        cli_timeouts_hint(&timeouts, &err);
        return CLI_EXIT_FAILED;
    }
    pgetl_conn_info info;
    pgetl_conn_get_info(conn, &info);
    char red[1024];
    pgetl_dsn_redact(pgetl_config_dsn(&cfg), red, sizeof red);
    int v = info.server_version;
    printf("server:   PostgreSQL %d.%d\n", v / 10000, v % 10000);
    printf("host:     %s\n", info.host);
    printf("port:     %s\n", info.port);
    printf("database: %s\n", info.database);
    printf("user:     %s\n", info.user);
    if (info.tls)
        printf("tls:      on (%s, %s)\n", info.tls_version, info.tls_cipher);
    else
        printf("tls:      off\n");
    printf("dsn:      %s\n", red[0] ? red : "(from the environment)");
    pgetl_conn_close(conn);
    return CLI_EXIT_OK;
}
