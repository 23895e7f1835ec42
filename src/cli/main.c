/* pgetl: dispatch to sub-commands. */
#include "cli/cli.h"

#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: pgetl [--version] [--help] COMMAND [ARGS]\n"
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
            "\n"
            "Exit codes:\n"
            "  0  success\n"
            "  1  the operation failed (an atomic load rolled back: nothing committed)\n"
            "  2  usage error (bad command line)\n"
            "  3  loaded, with rejected rows (see --max-errors)\n");
}

int main(int argc, char **argv) {
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
        return cli_cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "load") == 0)
        return cli_cmd_load(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0)
        return cli_cmd_export(argc - 1, argv + 1);
    cli_errorf("unknown command \"%s\" (see pgetl --help)", cmd);
    return CLI_EXIT_USAGE;
}
