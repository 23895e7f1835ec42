/* pgetl: the top-level command line (dispatch.c), then the sub-command. */
#include "cli/cli.h"

int main(int argc, char **argv) {
    cli_cmd_fn cmd;
    int code = cli_dispatch(argc, argv, &cmd);
    return code >= 0 ? code : cmd(argc - 1, argv + 1);
}
