/*
 * Configuration: defaults, validation and DSN redaction. Validation parses
 * the DSN with libpq's own parser so that what we accept is what libpq
 * accepts; every message that shows a DSN shows the redacted form.
 */
#include "connect/connect.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

void pgetl_config_init(pgetl_config *cfg) {
    *cfg = (pgetl_config){
        .dsn = NULL,
        .pool_min = 1,
        .pool_max = 5,
        .acquire_timeout_s = 30.0,
        .max_lifetime_s = 3600.0,
        .max_idle_s = 600.0,
        .max_waiters = 0,
        .leak_threshold_s = 0.0,
        .connect_timeout_s = 10.0,
        .reconnect_timeout_s = 60.0,
        .application_name = "pgetl",
    };
}

const char *pgetl_config_dsn(const pgetl_config *cfg) {
    if (cfg && cfg->dsn)
        return cfg->dsn;
    const char *env = getenv("PGETL_DSN");
    return env ? env : "";
}

static pgetl_code check_seconds(const char *field, double v, double max, pgetl_error *err) {
    if (!isfinite(v) || v < 0 || v > max)
        return pgetl_error_set(err, PGETL_ECONFIG,
                               "invalid configuration: %s must be between 0 and %.0f seconds "
                               "(got %g)",
                               field, max, v);
    return PGETL_OK;
}

pgetl_code pgetl_config_validate(const pgetl_config *cfg, pgetl_error *err) {
    if (!cfg)
        return pgetl_error_set(err, PGETL_EINVAL, "invalid configuration: config is NULL");
    if (cfg->pool_min < 0 || cfg->pool_min > PGETL_POOL_MAX_LIMIT)
        return pgetl_error_set(err, PGETL_ECONFIG,
                               "invalid configuration: pool_min must be between 0 and %d (got %d)",
                               PGETL_POOL_MAX_LIMIT, cfg->pool_min);
    if (cfg->pool_max < 1 || cfg->pool_max > PGETL_POOL_MAX_LIMIT)
        return pgetl_error_set(err, PGETL_ECONFIG,
                               "invalid configuration: pool_max must be between 1 and %d (got %d)",
                               PGETL_POOL_MAX_LIMIT, cfg->pool_max);
    if (cfg->pool_max < cfg->pool_min)
        return pgetl_error_set(err, PGETL_ECONFIG,
                               "invalid configuration: pool_max (%d) is less than pool_min (%d)",
                               cfg->pool_max, cfg->pool_min);
    if (cfg->max_waiters < 0)
        return pgetl_error_set(err, PGETL_ECONFIG,
                               "invalid configuration: max_waiters must be >= 0 (got %d)",
                               cfg->max_waiters);
    pgetl_code rc;
    if ((rc = check_seconds("acquire_timeout_s", cfg->acquire_timeout_s, PGETL_TIMEOUT_MAX_S,
                            err)) ||
        (rc = check_seconds("connect_timeout_s", cfg->connect_timeout_s, PGETL_TIMEOUT_MAX_S,
                            err)) ||
        (rc = check_seconds("reconnect_timeout_s", cfg->reconnect_timeout_s, PGETL_TIMEOUT_MAX_S,
                            err)) ||
        (rc = check_seconds("leak_threshold_s", cfg->leak_threshold_s, PGETL_TIMEOUT_MAX_S,
                            err)) ||
        (rc = check_seconds("max_lifetime_s", cfg->max_lifetime_s, PGETL_LIFETIME_MAX_S, err)) ||
        (rc = check_seconds("max_idle_s", cfg->max_idle_s, PGETL_LIFETIME_MAX_S, err)))
        return rc;
    if (cfg->application_name && strlen(cfg->application_name) >= 64)
        return pgetl_error_set(err, PGETL_ECONFIG,
                               "invalid configuration: application_name is longer than 63 bytes");

    const char *dsn = pgetl_config_dsn(cfg);
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    if (!opts) {
        char red[512];
        pgetl_dsn_redact(dsn, red, sizeof red);
        char why[256];
        pgetl__strlcpy_utf8(why, perr ? perr : "out of memory", sizeof why);
        size_t n = strlen(why);
        while (n && (why[n - 1] == '\n' || why[n - 1] == '\r'))
            why[--n] = '\0';
        PQfreemem(perr);
        return pgetl_error_set(err, PGETL_ECONFIG, "invalid DSN \"%s\": %s", red, why);
    }
    PQconninfoFree(opts);
    return PGETL_OK;
}

/* ---- redaction ------------------------------------------------------------ */

#define MASK "********"

static bool is_uri(const char *s) {
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

typedef struct out_t {
    char *buf;
    size_t size, len;
} out_t;

static void out_put(out_t *o, const char *s, size_t n) {
    for (size_t i = 0; i < n && o->len + 1 < o->size; i++)
        o->buf[o->len++] = s[i];
    o->buf[o->len] = '\0';
}

/*
 * URI: postgresql://user:secret@host/db?password=secret&x=y. Mask the
 * user-info password and any password= query parameter, whatever the URI's
 * other contents; percent-encoding does not matter because we never decode.
 */
static void redact_uri(const char *s, out_t *o) {
    const char *p = strstr(s, "://") + 3;
    out_put(o, s, (size_t)(p - s));
    const char *end_auth = p + strcspn(p, "/?");
    const char *at = NULL;
    for (const char *q = p; q < end_auth; q++)
        if (*q == '@')
            at = q; /* the last '@' ends the user-info */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            out_put(o, p, (size_t)(colon - p) + 1);
            out_put(o, MASK, strlen(MASK));
            p = at;
        }
    }
    while (*p) {
        /* Copy up to the next parameter boundary and inspect its key. */
        size_t k = strcspn(p, "?&");
        out_put(o, p, k);
        p += k;
        if (!*p)
            break;
        out_put(o, p, 1);
        p++;
        size_t klen = strcspn(p, "=&");
        if (klen == 8 && strncasecmp(p, "password", 8) == 0 && p[klen] == '=') {
            out_put(o, p, klen + 1);
            out_put(o, MASK, strlen(MASK));
            p += klen + 1;
            p += strcspn(p, "&");
        }
    }
}

/*
 * key=value form, following libpq's lexical rules: keys are words, values
 * either bare (up to white space, with \ escapes) or single-quoted with \
 * escapes. Malformed text is still masked after any "password" key.
 */
static void redact_kv(const char *s, out_t *o) {
    const char *p = s;
    while (*p) {
        const char *ws = p;
        while (isspace((unsigned char)*p))
            p++;
        out_put(o, ws, (size_t)(p - ws));
        if (!*p)
            break;
        const char *key = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t klen = (size_t)(p - key);
        out_put(o, key, klen);
        const char *sp = p;
        while (isspace((unsigned char)*p))
            p++;
        out_put(o, sp, (size_t)(p - sp));
        if (*p != '=')
            continue;
        out_put(o, "=", 1);
        p++;
        sp = p;
        while (isspace((unsigned char)*p))
            p++;
        out_put(o, sp, (size_t)(p - sp));
        bool secret = klen == 8 && strncasecmp(key, "password", 8) == 0;
        const char *val = p;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (*p == '\'')
                p++;
        } else {
            while (*p && !isspace((unsigned char)*p)) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
        }
        if (secret)
            out_put(o, MASK, strlen(MASK));
        else
            out_put(o, val, (size_t)(p - val));
    }
}

char *pgetl_dsn_redact(const char *dsn, char *buf, size_t size) {
    if (!buf || size == 0)
        return buf;
    out_t o = {buf, size, 0};
    buf[0] = '\0';
    if (!dsn)
        return buf;
    if (is_uri(dsn))
        redact_uri(dsn, &o);
    else
        redact_kv(dsn, &o);
    return buf;
}
