/*
 * Flag parsing shared by load and export. Every helper prints a usage error
 * naming the flag and the bad value (values are the user's own text, never a
 * DSN) and returns false; the caller then exits with CLI_EXIT_USAGE.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool cli_parse_range(const char *flag, const char *text, long long min, long long max,
                     long long *out) {
    bool ok = text && *text;
    for (const char *p = text; ok && *p; p++)
        ok = *p >= '0' && *p <= '9';
    long long v = 0;
    if (ok) {
        errno = 0;
        v = strtoll(text, NULL, 10);
        ok = errno != ERANGE && v >= min && v <= max;
    }
    if (!ok) {
        char shown[256];
        cli_errorf("%s takes a whole number from %lld to %lld (got \"%s\")", flag, min, max,
                   cli_arg_shown(text ? text : "", shown, sizeof shown));
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *flag, const char *text, double max, double *out) {
    /* Checked by hand before strtod, which would also take signs, spaces,
     * exponents, hex, "nan" and "inf". */
    bool ok = text && *text;
    int digits = 0, dots = 0;
    for (const char *p = text; ok && *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.' && dots == 0)
            dots++;
        else
            ok = false;
    }
    double v = 0;
    if (ok && digits > 0) {
        v = strtod(text, NULL);
        ok = v >= 0 && v <= max;
    } else {
        ok = false;
    }
    if (!ok) {
        char shown[256];
        cli_errorf("%s takes seconds from 0 to %.0f, such as 30 or 2.5 (got \"%s\")", flag, max,
                   cli_arg_shown(text ? text : "", shown, sizeof shown));
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_byte(const char *flag, const char *text, char *out) {
    /* Shells make a literal tab awkward to type, so the two-character
     * spelling \t is accepted for it. */
    if (text && strcmp(text, "\\t") == 0) {
        *out = '\t';
        return true;
    }
    if (!text || strlen(text) != 1) {
        /* "pgetl load -d postgres://u:pw@h": check's -d is --dsn, load's is --delimiter. */
        char shown[256];
        cli_errorf("%s takes exactly one single-byte character (got \"%s\")", flag,
                   cli_arg_shown(text ? text : "", shown, sizeof shown));
        return false;
    }
    unsigned char c = (unsigned char)text[0];
    if (c == '\n' || c == '\r' || c >= 0x80) {
        cli_errorf("%s cannot be a line break or a non-ASCII byte", flag);
        return false;
    }
    *out = (char)c;
    return true;
}

int cli_parse_choice(const char *flag, const char *text, const char *const *choices) {
    for (int i = 0; choices[i]; i++)
        if (strcmp(text, choices[i]) == 0)
            return i;
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    char shown[256];
    cli_errorf("%s must be one of %s (got \"%s\")", flag, list,
               cli_arg_shown(text, shown, sizeof shown));
    return -1;
}

/*
 * Splits "a,B,\"Odd, name\"" into identifiers, folding each by PostgreSQL's
 * rules (pgetl_ident_parse): unquoted names go to lower case, quoted ones
 * keep their case and may hold commas. A name with a dot is refused (it
 * would be a qualified name, not a column).
 */
bool cli_parse_columns(const char *flag, const char *text, cli_columns *out) {
    memset(out, 0, sizeof *out);
    const char *p = text;
    for (;;) {
        const char *start = p;
        bool quoted = false;
        while (*p && (quoted || *p != ',')) {
            if (*p == '"')
                quoted = !quoted;
            p++;
        }
        size_t n = (size_t)(p - start);
        if (out->n == CLI_MAX_COLUMNS) {
            cli_errorf("%s: at most %d columns", flag, CLI_MAX_COLUMNS);
            return false;
        }
        char part[4 * PGETL_IDENT_MAX];
        if (n == 0 || n >= sizeof part) {
            cli_errorf("%s: %s column name in \"%s\"", flag, n ? "too long a" : "empty", text);
            return false;
        }
        memcpy(part, start, n);
        part[n] = '\0';
        pgetl_qualified_name qn;
        pgetl_error err;
        if (pgetl_ident_parse(part, &qn, &err) != PGETL_OK) {
            cli_errorf("%s: bad column name %s: %s", flag, part, err.message);
            return false;
        }
        if (qn.schema[0]) {
            cli_errorf("%s: %s is not a column name (it has a dot; quote it as \"a.b\")", flag,
                       part);
            return false;
        }
        memcpy(out->names[out->n], qn.name, sizeof qn.name);
        out->ptrs[out->n] = out->names[out->n];
        out->n++;
        if (!*p)
            break;
        p++; /* the comma */
    }
    return true;
}

bool cli_value_is_option(const char *value, const struct option *opts) {
    if (!value || value[0] != '-' || value[1] != '-')
        return false;
    for (const struct option *o = opts; o->name; o++) {
        size_t n = strlen(o->name);
        if (strncmp(value + 2, o->name, n) == 0 && (value[2 + n] == '\0' || value[2 + n] == '='))
            return true;
    }
    return false;
}
