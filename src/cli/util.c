#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

void cli_print_error(const pgetl_error *err) {
    char buf[4096];
    pgetl_error_format(err, buf, sizeof buf);
    fprintf(stderr, "pgetl: %s\n", buf);
}

void cli_errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pgetl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_parse_count(const char *flag, const char *text, long long max, long long *out) {
    if (!text || !*text) {
        cli_errorf("%s needs a value", flag);
        return false;
    }
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') {
            cli_errorf("%s takes a whole number from 0 to %lld (got \"%s\")", flag, max, text);
            return false;
        }
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v > max) {
        cli_errorf("%s takes a whole number from 0 to %lld (got \"%s\")", flag, max, text);
        return false;
    }
    *out = v;
    return true;
}
