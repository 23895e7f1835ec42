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
        (rc = check_seconds("max_idle_s", cfg->max_idle_s, PGETL_LIFETIME_MAX_S, err)) ||
        (rc = check_seconds("tcp_user_timeout_s", cfg->tcp_user_timeout_s, PGETL_TIMEOUT_MAX_S,
                            err)) ||
        (rc = check_seconds("keepalives_idle_s", cfg->keepalives_idle_s, PGETL_TIMEOUT_MAX_S,
                            err)) ||
        (rc = check_seconds("statement_timeout_s", cfg->statement_timeout_s,
                            PGETL_TIMEOUT_MAX_S, err)) ||
        (rc = check_seconds("io_timeout_s", cfg->io_timeout_s, PGETL_TIMEOUT_MAX_S, err)))
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
        /* libpq's text may repeat the DSN or its tokens: scrub it before cutting it. */
        char scrubbed[1024], why[256];
        pgetl__dsn_scrub(dsn, perr ? perr : "out of memory", scrubbed, sizeof scrubbed);
        pgetl__strlcpy_utf8(why, scrubbed, sizeof why);
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

/*
 * Redaction errs on the side of hiding too much: the text may be malformed,
 * hostile, or in a form libpq rejects, and it is still shown in messages and
 * logs. Every span that is masked is also remembered as a secret, so the
 * text libpq writes about a DSN it could not parse (which often repeats the
 * DSN or one of its tokens verbatim) can be scrubbed of the same bytes.
 */

#define MASK "********"
#define MAX_SECRETS 16

typedef struct out_t {
    char *buf;
    size_t size, len;
    const char *secret[MAX_SECRETS];
    size_t secret_len[MAX_SECRETS];
    int nsecrets;
    bool too_many; /* more secrets than we track: callers drop libpq's text */
    int assigned;  /* secrets that were the value of a "password =" key */
} out_t;

static void out_put(out_t *o, const char *s, size_t n) {
    if (!o->buf)
        return;
    for (size_t i = 0; i < n && o->len + 1 < o->size; i++)
        o->buf[o->len++] = s[i];
    o->buf[o->len] = '\0';
}

static void out_secret(out_t *o, const char *s, size_t n) {
    out_put(o, MASK, strlen(MASK));
    if (n == 0)
        return;
    if (o->nsecrets == MAX_SECRETS) {
        o->too_many = true;
        return;
    }
    o->secret[o->nsecrets] = s;
    o->secret_len[o->nsecrets++] = n;
}

/*
 * A URI as libpq would see it, and also any scheme://... (libpq only knows
 * postgresql:// and postgres://, case-sensitively, but "POSTGRESQL://u:pw@h"
 * still holds a password and is echoed back in libpq's error).
 */
static bool is_uri(const char *s) {
    while (isspace((unsigned char)*s))
        s++;
    if (!isalpha((unsigned char)*s))
        return false;
    while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    return strncmp(s, "://", 3) == 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Whether a URI query key is "password" once percent-decoded (libpq decodes keys). */
static bool is_password_key(const char *k, size_t n) {
    static const char want[] = "password";
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (c == '%' && i + 2 < n) {
            int hi = hex_value(k[i + 1]), lo = hex_value(k[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi * 16 + lo);
                i += 2;
            }
        }
        if (w == sizeof want - 1 || tolower((unsigned char)c) != want[w])
            return false;
        w++;
    }
    return w == sizeof want - 1;
}

/*
 * URI: scheme://user:secret@host/db?password=secret&x=y. The user-info ends
 * at the last '@' anywhere (a password may hold unescaped '/', '?' or '@';
 * hosts and ports never hold '@'), and everything between the first ':'
 * after the scheme and that '@' is masked. Query parameters whose decoded
 * key is "password" are masked up to the next '&'.
 */
static void redact_uri(const char *s, out_t *o) {
    const char *p = strstr(s, "://") + 3;
    out_put(o, s, (size_t)(p - s));
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            out_put(o, p, (size_t)(colon - p) + 1);
            out_secret(o, colon + 1, (size_t)(at - colon - 1));
        } else {
            out_put(o, p, (size_t)(at - p));
        }
        p = at;
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
        if (p[klen] == '=' && is_password_key(p, klen)) {
            out_put(o, p, klen + 1);
            p += klen + 1;
            size_t vlen = strcspn(p, "&");
            out_secret(o, p, vlen);
            p += vlen;
        }
    }
}

/* Skips one key=value value (bare or single-quoted, with \ escapes); returns its end. */
static const char *skip_value(const char *p) {
    if (*p == '\'') {
        p++;
        while (*p && *p != '\'') {
            if (*p == '\\' && p[1])
                p++;
            p++;
        }
        if (*p == '\'')
            p++;
        return p;
    }
    while (*p && !isspace((unsigned char)*p)) {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    return p;
}

/*
 * key=value form, following libpq's lexical rules: keys are words, values
 * either bare (up to white space, with \ escapes) or single-quoted with \
 * escapes. Malformed text is masked too: after a "password" key that lacks
 * its '=' the next word is masked, and a word that starts with "password"
 * ("password:secret") keeps only that prefix.
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
        bool secret = klen >= 8 && strncasecmp(key, "password", 8) == 0;
        if (secret && klen > 8) {
            out_put(o, key, 8);
            out_secret(o, key + 8, klen - 8);
        } else {
            out_put(o, key, klen);
        }
        const char *sp = p;
        while (isspace((unsigned char)*p))
            p++;
        out_put(o, sp, (size_t)(p - sp));
        bool assigned = false;
        if (*p == '=') {
            assigned = secret && klen == 8;
            out_put(o, "=", 1);
            p++;
            sp = p;
            while (isspace((unsigned char)*p))
                p++;
            out_put(o, sp, (size_t)(p - sp));
        } else if (!(secret && klen == 8) || !*p) {
            continue;
        }
        const char *val = p;
        p = skip_value(p);
        if (secret) {
            out_secret(o, val, (size_t)(p - val));
            o->assigned += assigned;
        } else {
            out_put(o, val, (size_t)(p - val));
        }
    }
}

static void redact(const char *dsn, out_t *o) {
    if (is_uri(dsn))
        redact_uri(dsn, o);
    else
        redact_kv(dsn, o);
}

/* Counts "password" words followed by optional blanks and '=' in s. */
static int count_password_assignments(const char *s, const char **first_out) {
    int n = 0;
    *first_out = NULL;
    for (const char *p = s; *p; p++) {
        if (strncasecmp(p, "password", 8) != 0)
            continue;
        const char *q = p + 8;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == '=') {
            if (!*first_out)
                *first_out = p;
            n++;
        }
    }
    return n;
}

/*
 * A key=value DSN libpq cannot parse may have token boundaries the redactor
 * cannot see (an unterminated quote swallows "password=..." into another
 * value). When the tokenizer found fewer password keys than the raw text
 * has "password =" assignments, one was swallowed: everything from the first
 * such assignment on is secret. Returns where that starts, else NULL.
 */
static const char *unparsable_secret_start(const char *dsn) {
    if (is_uri(dsn))
        return NULL;
    const char *first;
    int assignments = count_password_assignments(dsn, &first);
    if (assignments == 0)
        return NULL;
    out_t found = {.buf = NULL};
    redact_kv(dsn, &found);
    /*
     * Compare assignments with assignments: a malformed "password word"
     * also yields a secret, and counting it hid a swallowed assignment
     * (found by fuzz/fuzz_dsn.c).
     */
    if (!found.too_many && found.assigned >= assignments)
        return NULL;
    return first;
}

/*
 * A URI whose password holds '/', '?' or '#' (not percent-encoded) is split
 * by libpq at that character, and pieces of the password come back in its
 * messages as a port or database name.
 */
static bool uri_password_splits(const char *dsn) {
    if (!is_uri(dsn))
        return false;
    const char *p = strstr(dsn, "://") + 3;
    const char *at = strrchr(p, '@');
    if (!at)
        return false;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon)
        return false;
    for (const char *q = colon + 1; q < at; q++)
        if (*q == '/' || *q == '?' || *q == '#')
            return true;
    return false;
}

/*
 * Whether libpq itself takes dsn for a URI: only these two prefixes, at the
 * very start. Anything else that looks like one here (" postgresql://",
 * "POSTGRESQL://", "pg+x://") is split by libpq at white space as key=value
 * text, and its error quotes a word of it, which may be part of the
 * password masked as a whole above (found by fuzz/fuzz_dsn.c).
 */
static bool libpq_uri(const char *dsn) {
    return strncmp(dsn, "postgresql://", 13) == 0 || strncmp(dsn, "postgres://", 11) == 0;
}

char *pgetl_dsn_redact(const char *dsn, char *buf, size_t size) {
    if (!buf || size == 0)
        return buf;
    out_t o = {.buf = buf, .size = size};
    buf[0] = '\0';
    if (!dsn)
        return buf;
    const char *cut = unparsable_secret_start(dsn);
    if (!cut) {
        redact(dsn, &o);
        return buf;
    }
    size_t keep = (size_t)(cut - dsn);
    char *prefix = pgetl__strndup(dsn, keep);
    if (prefix) {
        redact(prefix, &o);
        pgetl__free(prefix);
    }
    /* Keep "password =" as written, then the mask. */
    const char *eq = strchr(cut, '=');
    out_put(&o, cut, (size_t)(eq - cut) + 1);
    out_put(&o, MASK, strlen(MASK));
    return buf;
}

char *pgetl__dsn_scrub(const char *dsn, const char *text, char *buf, size_t size) {
    if (!buf || size == 0)
        return buf;
    buf[0] = '\0';
    if (!text)
        return buf;
    out_t secrets = {.buf = NULL};
    if (dsn)
        redact(dsn, &secrets);
    out_t o = {.buf = buf, .size = size};
    if (secrets.too_many || (dsn && unparsable_secret_start(dsn))) {
        out_put(&o, "(message withheld: it may contain a password)", 45);
        return buf;
    }
    if (dsn && secrets.nsecrets > 0 && is_uri(dsn) && !libpq_uri(dsn)) {
        static const char why[] = "(message withheld: libpq reads this URI as key=value text and "
                                  "may quote pieces of its password)";
        out_put(&o, why, sizeof why - 1);
        return buf;
    }
    if (dsn && uri_password_splits(dsn)) {
        static const char why[] = "(message withheld: the URI's password holds '/', '?' or '#'; "
                                  "percent-encode them, e.g. %2F)";
        out_put(&o, why, sizeof why - 1);
        return buf;
    }
    for (const char *p = text; *p;) {
        /*
         * The longest secret that matches here: with "password=ab password=abcd",
         * masking "ab" first would show the "cd" of the second (found by
         * fuzz/fuzz_dsn.c).
         */
        size_t hit = 0;
        for (int i = 0; i < secrets.nsecrets; i++)
            if (secrets.secret_len[i] > hit &&
                strncmp(p, secrets.secret[i], secrets.secret_len[i]) == 0)
                hit = secrets.secret_len[i];
        if (hit) {
            out_put(&o, MASK, strlen(MASK));
            p += hit;
        } else {
            out_put(&o, p++, 1);
        }
    }
    return buf;
}
