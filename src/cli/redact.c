/*
 * Defence in depth for "the CLI never prints a password": the library
 * redacts DSNs itself, but a DSN it cannot parse may be echoed as it was
 * given (the redactor cannot tell where its password ends). Before an error
 * is shown or written to a summary, any verbatim copy of the DSN the user
 * gave is replaced, so whatever the DSN held never reaches the output.
 */
#include "cli/cli.h"

#include <string.h>

#define CLI_DSN_HIDDEN "(DSN not shown)"

static void hide_in(char *text, size_t size, const char *dsn, size_t dlen) {
    char *p;
    while ((p = strstr(text, dsn)) != NULL) {
        size_t hl = strlen(CLI_DSN_HIDDEN), tail = strlen(p + dlen);
        if ((size_t)(p - text) + hl + tail + 1 > size)
            tail = size - 1 - (size_t)(p - text) - hl;
        memmove(p + hl, p + dlen, tail);
        p[hl + tail] = '\0';
        memcpy(p, CLI_DSN_HIDDEN, hl);
    }
}

void cli_error_hide_dsn(pgetl_error *err, const char *dsn) {
    size_t dlen = dsn ? strlen(dsn) : 0;
    /* A DSN of a few characters ("" or "x") is no secret and would match everywhere. */
    if (!err || dlen < 8)
        return;
    hide_in(err->message, sizeof err->message, dsn, dlen);
    hide_in(err->detail, sizeof err->detail, dsn, dlen);
    hide_in(err->hint, sizeof err->hint, dsn, dlen);
    hide_in(err->context, sizeof err->context, dsn, dlen);
}
