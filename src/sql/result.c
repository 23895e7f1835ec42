/*
 * Query results: a thin, read-only view over the PGresult, which libpq
 * never changes after it is built, so a result may be read from any thread.
 *
 * The typed getters are strict: they accept exactly what PostgreSQL prints
 * for the type (no surrounding blanks, no trailing text) so a text column
 * holding "12abc" is an error, not 12. Doubles are parsed in the C locale
 * whatever the application's LC_NUMERIC says.
 */
#include "sql/sql_int.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* How much of a bad value an error message repeats. */
#define VALUE_ECHO_MAX 64

void pgetl_result_free(pgetl_result *res) {
    if (!res)
        return;
    PQclear(res->pg);
    pgetl__free(res);
}

int64_t pgetl_result_nrows(const pgetl_result *res) {
    return res ? PQntuples(res->pg) : 0;
}

int pgetl_result_ncols(const pgetl_result *res) {
    return res ? PQnfields(res->pg) : 0;
}

static bool in_range(const pgetl_result *res, int64_t row, int col) {
    return res && row >= 0 && row < PQntuples(res->pg) && col >= 0 && col < PQnfields(res->pg);
}

const char *pgetl_result_colname(const pgetl_result *res, int col) {
    if (!res || col < 0 || col >= PQnfields(res->pg))
        return NULL;
    return PQfname(res->pg, col);
}

/* Not PQfnumber: it case-folds unquoted names, and we promise exact matches. */
int pgetl_result_colindex(const pgetl_result *res, const char *name) {
    if (!res || !name)
        return -1;
    int n = PQnfields(res->pg);
    for (int i = 0; i < n; i++)
        if (strcmp(PQfname(res->pg, i), name) == 0)
            return i;
    return -1;
}

uint32_t pgetl_result_coltype(const pgetl_result *res, int col) {
    if (!res || col < 0 || col >= PQnfields(res->pg))
        return 0;
    return (uint32_t)PQftype(res->pg, col);
}

bool pgetl_result_isnull(const pgetl_result *res, int64_t row, int col) {
    return !in_range(res, row, col) || PQgetisnull(res->pg, (int)row, col);
}

const char *pgetl_result_get(const pgetl_result *res, int64_t row, int col, size_t *len_out) {
    if (len_out)
        *len_out = 0;
    if (pgetl_result_isnull(res, row, col))
        return NULL;
    if (len_out)
        *len_out = (size_t)PQgetlength(res->pg, (int)row, col);
    return PQgetvalue(res->pg, (int)row, col);
}

const char *pgetl_result_get_by_name(const pgetl_result *res, int64_t row, const char *name,
                                     size_t *len_out) {
    return pgetl_result_get(res, row, pgetl_result_colindex(res, name), len_out);
}

/* ---- typed getters ---------------------------------------------------------- */

/* The value's text for a typed getter, or an error naming the cell. */
static pgetl_code typed_value(const pgetl_result *res, int64_t row, int col, const char *type,
                              const char **text_out, pgetl_error *err) {
    *text_out = NULL;
    if (!in_range(res, row, col))
        return pgetl_error_set(err, PGETL_EINVAL, "row %lld, column %d: out of range (%lld rows, "
                               "%d columns)",
                               (long long)row, col, (long long)pgetl_result_nrows(res),
                               pgetl_result_ncols(res));
    if (PQgetisnull(res->pg, (int)row, col))
        return pgetl_error_set(err, PGETL_EDATA, "row %lld, column \"%s\": NULL is not %s",
                               (long long)row, PQfname(res->pg, col), type);
    *text_out = PQgetvalue(res->pg, (int)row, col);
    return PGETL_OK;
}

static int echo_len(const char *s) {
    size_t n = strlen(s);
    if (n <= VALUE_ECHO_MAX)
        return (int)n;
    n = VALUE_ECHO_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

static pgetl_code bad_value(const pgetl_result *res, int64_t row, int col, const char *text,
                            pgetl_code code, const char *why, pgetl_error *err) {
    int n = echo_len(text);
    return pgetl_error_set(err, code, "row %lld, column \"%s\": \"%.*s%s\" %s", (long long)row,
                           PQfname(res->pg, col), n, text, text[n] ? "..." : "", why);
}

pgetl_code pgetl_result_get_int64(const pgetl_result *res, int64_t row, int col, int64_t *out,
                                  pgetl_error *err) {
    const char *s;
    pgetl_code rc = typed_value(res, row, col, "an integer", &s, err);
    if (rc != PGETL_OK)
        return rc;
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return bad_value(res, row, col, s, PGETL_EDATA, "is not an integer", err);
    /* Accumulate the magnitude unsigned so INT64_MIN parses without overflow. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    bool overflow = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (*p != '\0')
        return bad_value(res, row, col, s, PGETL_EDATA, "is not an integer", err);
    if (overflow)
        return bad_value(res, row, col, s, PGETL_EOVERFLOW, "does not fit in 64 bits", err);
    if (out)
        *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return PGETL_OK;
}

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void make_c_locale(void) {
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* PostgreSQL prints digits, sign, '.', and 'e'; strtod alone would also take hex, "inf", blanks. */
static bool decimal_syntax(const char *p) {
    if (*p == '-' || *p == '+')
        p++;
    bool digits = false;
    while (*p >= '0' && *p <= '9')
        p++, digits = true;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits = true;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

pgetl_code pgetl_result_get_double(const pgetl_result *res, int64_t row, int col, double *out,
                                   pgetl_error *err) {
    const char *s;
    pgetl_code rc = typed_value(res, row, col, "a number", &s, err);
    if (rc != PGETL_OK)
        return rc;
    double v;
    if (strcmp(s, "NaN") == 0) {
        v = NAN;
    } else if (strcmp(s, "Infinity") == 0) {
        v = INFINITY;
    } else if (strcmp(s, "-Infinity") == 0) {
        v = -INFINITY;
    } else {
        if (!decimal_syntax(s))
            return bad_value(res, row, col, s, PGETL_EDATA, "is not a number", err);
        pthread_once(&c_locale_once, make_c_locale);
        if (!c_locale)
            return pgetl__error_oom(err, "get_double (C locale)");
        locale_t prev = uselocale(c_locale);
        errno = 0;
        v = strtod(s, NULL);
        int e = errno;
        uselocale(prev);
        if (e == ERANGE && isinf(v))
            return bad_value(res, row, col, s, PGETL_EOVERFLOW, "does not fit in a double", err);
    }
    if (out)
        *out = v;
    return PGETL_OK;
}

pgetl_code pgetl_result_get_bool(const pgetl_result *res, int64_t row, int col, bool *out,
                                 pgetl_error *err) {
    const char *s;
    pgetl_code rc = typed_value(res, row, col, "a boolean", &s, err);
    if (rc != PGETL_OK)
        return rc;
    if ((s[0] != 't' && s[0] != 'f') || s[1] != '\0')
        return bad_value(res, row, col, s, PGETL_EDATA, "is not a boolean (expected t or f)", err);
    if (out)
        *out = s[0] == 't';
    return PGETL_OK;
}
