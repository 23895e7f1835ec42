/*
 * pgetl's top-level command line: --help, --version, or a sub-command's
 * name. Kept apart from main() (main.c) so the fuzz target
 * fuzz_cli_getopt can run it once per input in one process.
 */
#include "cli/cli.h"

#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: pgetl [--version] [--help] COMMAND [ARGS]\n"
                 "\n"
                 "Bulk data in and out of PostgreSQL.\n"
                 "\n"
                 "Commands:\n"
                 "  check     connect and describe the server (pgetl check --help)\n"
                 "  load      load CSV/TSV/text files into a table (pgetl load --help)\n"
                 "  export    stream a table or query out as CSV/TSV/binary (pgetl export --help)\n"
                 "\n"
                 "Connection: --dsn DSN on each command, else $PGETL_DSN, else libpq's PG*\n"
                 "variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ~/.pgpass).\n"
                 "\n" CLI_TIMEOUT_SUMMARY "\n"
                 "Exit codes:\n"
                 "  0  success\n"
                 "  1  the operation failed (an atomic load rolled back: nothing committed)\n"
                 "  2  usage error (bad command line)\n"
                 "  3  loaded, with rejected rows (see --max-errors)\n");
}

int cli_dispatch(int argc, char **argv, cli_cmd_fn *cmd_out) {
    char shown[256];
    *cmd_out = NULL;
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("pgetl %s\n", pgetl_version_string());
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "check") == 0)
        *cmd_out = cli_cmd_check;
    else if (strcmp(cmd, "load") == 0)
        *cmd_out = cli_cmd_load;
    else if (strcmp(cmd, "export") == 0)
        *cmd_out = cli_cmd_export;
    if (*cmd_out)
        return -1;
    /* "pgetl --dsn=postgres://u:pw@h load" must not echo the password. */
    cli_errorf("unknown command \"%s\" (see pgetl --help)",
               cli_arg_shown(cmd, shown, sizeof shown));
    return CLI_EXIT_USAGE;
}
