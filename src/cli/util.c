#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_print_error(const pgetl_error *err) {
    char buf[4096];
    pgetl_error_format(err, buf, sizeof buf);
    fprintf(stderr, "pgetl: %s\n", buf);
}

const char *cli_arg_shown(const char *arg, char *buf, size_t size) {
    if (arg[0] == '-') {
        size_t n = strcspn(arg, "=");
        snprintf(buf, size, "%.*s%s", (int)n, arg, arg[n] ? "=..." : "");
    } else if (strchr(arg, '=') || strstr(arg, "://")) {
        pgetl_dsn_redact(arg, buf, size);
    } else {
        snprintf(buf, size, "%s", arg);
    }
    return buf;
}

/* Whether word ("--name" or "--name=value") abbreviates a long option whose value is val. */
static bool long_word_is(const char *word, const struct option *opts, int val) {
    size_t n = strcspn(word + 2, "=");
    for (; opts->name; opts++)
        if (opts->val == val && strncmp(opts->name, word + 2, n) == 0)
            return true;
    return false;
}

/* The same for any long option. */
static bool long_word_is_any(const char *word, const struct option *opts) {
    size_t n = strcspn(word + 2, "=");
    for (; opts->name; opts++)
        if (strncmp(opts->name, word + 2, n) == 0)
            return true;
    return false;
}

bool cli_value_abbreviates_option(const char *value, const struct option *opts) {
    if (strncmp(value, "--", 2) != 0 || value[2] == '\0' || value[2] == '=')
        return false;
    return long_word_is_any(value, opts);
}

const char *cli_getopt_bad_option(char **argv, const struct option *opts, char *buf, size_t size) {
    const char *word = argv[optind - 1];
    if (optopt == 0 || (strncmp(word, "--", 2) == 0 && long_word_is(word, opts, optopt)))
        return cli_arg_shown(word, buf, size);
    snprintf(buf, size, "-%c", optopt);
    return buf;
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
    char shown[256];
    if (!text || !*text) {
        cli_errorf("%s needs a value", flag);
        return false;
    }
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') {
            cli_errorf("%s takes a whole number from 0 to %lld (got \"%s\")", flag, max,
                       cli_arg_shown(text, shown, sizeof shown));
            return false;
        }
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v > max) {
        cli_errorf("%s takes a whole number from 0 to %lld (got \"%s\")", flag, max,
                   cli_arg_shown(text, shown, sizeof shown));
        return false;
    }
    *out = v;
    return true;
}
