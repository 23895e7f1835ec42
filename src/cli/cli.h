/*
 * The command-line tool. Only this layer knows it runs in a terminal; it uses
 * nothing but the public header <pgetl/pgetl.h>.
 */
#ifndef PGETL_SRC_CLI_H
#define PGETL_SRC_CLI_H

#include "pgetl/pgetl.h"

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
 * Parses a non-negative integer flag value strictly (digits only, no sign, no
 * trailing text, at most max). Prints a usage error naming the flag and
 * returns false on bad input.
 */
bool cli_parse_count(const char *flag, const char *text, long long max, long long *out);

/* Sub-commands: argc/argv start at the sub-command's name. */
int cli_cmd_check(int argc, char **argv);

#endif /* PGETL_SRC_CLI_H */
