/*
 * Fuzz target: DSN redaction (src/connect/config.c: pgetl_dsn_redact,
 * pgetl__dsn_scrub, pgetl_config_validate's message).
 *
 * The input drives a generator of DSN shapes: key=value lists (bare,
 * quoted and escaped values, odd spacing and case, malformed "password"
 * words) and URIs (any scheme, user-info with ':' and '@', percent-encoded
 * query keys), with a secret marker placed where the generator means a
 * password, and raw fuzz bytes everywhere else (with every '3' turned into
 * '4', so the marker "S3CR3T" only ever comes from the generator).
 *
 * libpq is the oracle for where the passwords are: when PQconninfoParse
 * accepts the DSN, the marker may appear in redacted text at most as often
 * as it appears in the DSN outside the password libpq ends up with; when libpq
 * rejects it, the documented fallback applies (key=value: everything from
 * the first "password =" assignment on is secret; URI: the user-info after its first
 * ':' and password= query values are secret). The same bound holds for
 * pgetl__dsn_scrub over the DSN itself; libpq's error text scrubbed, and the
 * message pgetl_config_validate returns, must show no marker at all when
 * every marker is a password (libpq may echo a token more than once, so
 * other markers give no bound there). Output buffers of every
 * size must come back NUL-terminated inside their size.
 */
#include "connect/connect.h"
#include "fuzz_util.h"

#include <libpq-fe.h>
#include <strings.h>

#define MARKER "S3CR3T"
#define DSN_MAX 2048

typedef struct gen {
    char s[DSN_MAX];
    size_t len;
} gen;

static void put(gen *g, const char *s, size_t n) {
    if (g->len + n >= DSN_MAX)
        n = DSN_MAX - 1 - g->len;
    memcpy(g->s + g->len, s, n);
    g->len += n;
    g->s[g->len] = '\0';
}

static void puts_(gen *g, const char *s) {
    put(g, s, strlen(s));
}

/* Up to max raw fuzz bytes, no NUL, no '3' (so never the marker); `ban` bytes become '_'. */
static void raw(gen *g, fuzz_in *in, size_t max, const char *ban) {
    size_t n = fuzz_u8(in) % (max + 1);
    for (size_t i = 0; i < n && in->n; i++) {
        char c = (char)fuzz_u8(in);
        if (c == '\0')
            c = ' ';
        if (c == '3')
            c = '4';
        if (ban && strchr(ban, c))
            c = '_';
        put(g, &c, 1);
    }
}

static void gen_kv(gen *g, fuzz_in *in) {
    /* Never empty: a "password" glued to the previous value is no key by any reading. */
    static const char *const seps[] = {" ", "  ", "\t", "\n", "\v", " \r\n "};
    static const char *const keys[] = {"host=", "port=", "user=", "dbname=", "sslmode=",
                                       "application_name=", "options="};
    int ntok = 1 + fuzz_u8(in) % 6;
    for (int t = 0; t < ntok; t++) {
        if (t)
            puts_(g, seps[fuzz_u8(in) % 6]);
        uint8_t k = fuzz_u8(in);
        switch (k % 9) {
        case 0:
        case 1:
            puts_(g, keys[fuzz_u8(in) % 7]);
            puts_(g, "v"); /* never empty: "host= Password:x" would make the next word its value */
            raw(g, in, 8, " \t\n\r\f\v'\\");
            break;
        case 2: /* bare password */
            puts_(g, (k & 0x10) ? "PASSWORD" : "password");
            puts_(g, (k & 0x20) ? " = " : "=");
            raw(g, in, 4, " \t\n\r\f\v'=");
            puts_(g, MARKER);
            raw(g, in, 4, " \t\n\r\f\v'");
            break;
        case 3: /* quoted password with escapes and spaces */
            puts_(g, "password='");
            raw(g, in, 4, "'\\");
            if (k & 0x10)
                puts_(g, "\\' ");
            puts_(g, MARKER);
            if (k & 0x20)
                puts_(g, "\\\\");
            raw(g, in, 4, "'\\");
            puts_(g, (k & 0x40) ? "" : "'"); /* sometimes unterminated */
            break;
        case 4:
            /*
             * Malformed: a password word without '='. Which word is "the
             * password" here has no answer libpq gives (config.c masks the
             * next word when it can tell), so it carries a value that is
             * not the marker and is not checked.
             */
            puts_(g, (k & 0x10) ? "password " : "Password:");
            puts_(g, "unchecked");
            break;
        case 5: /* a key whose value is a quoted string holding an '=' and spaces */
            puts_(g, "options='-c x=");
            raw(g, in, 6, "'\\");
            puts_(g, "'");
            break;
        default:
            raw(g, in, 12, "="); /* raw words, never an assignment that swallows the next word */
            break;
        }
    }
}

static void gen_uri(gen *g, fuzz_in *in) {
    static const char *const schemes[] = {"postgresql://", "postgres://", "POSTGRESQL://",
                                          "pg+x://", " postgresql://"};
    uint8_t f = fuzz_u8(in);
    puts_(g, schemes[f % 5]);
    if (f & 0x08) {
        raw(g, in, 6, ":@/?#&");
        if (f & 0x10) {
            puts_(g, ":");
            raw(g, in, 4, "@");
            puts_(g, MARKER);
            raw(g, in, 4, (f & 0x20) ? "@" : "@/?#");
        }
        puts_(g, "@");
    }
    raw(g, in, 8, "@?&");
    if (f & 0x40) {
        puts_(g, "/");
        raw(g, in, 6, "?@");
    }
    int nq = fuzz_u8(in) % 4;
    for (int q = 0; q < nq; q++) {
        puts_(g, q ? "&" : "?");
        uint8_t k = fuzz_u8(in);
        if (k % 3 == 0) {
            puts_(g, (k & 0x10) ? "pass%77ord=" : (k & 0x20) ? "PASSWORD=" : "password=");
            raw(g, in, 3, "&@");
            puts_(g, MARKER);
            raw(g, in, 3, "&@");
        } else {
            raw(g, in, 10, "&@");
        }
    }
    /*
     * No '@' after the user-info: libpq then reads everything before it as
     * user-info, and which of the two readings is "the password" is moot.
     */
    if (f & 0x80)
        raw(g, in, 8, "@");
}

static int count_marker(const char *s) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, MARKER)) != NULL; p++)
        n++;
    return n;
}

/* Markers the redacted text may show: those libpq does not take as a password. */
static int allowed_markers(const char *dsn, bool *parsed_out) {
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    *parsed_out = opts != NULL;
    if (opts) {
        /*
         * Every marker but those in the password libpq ends up with (a later
         * key overwrites an earlier one, so markers in values libpq dropped
         * still count as shown).
         */
        int n = count_marker(dsn);
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (o->val && strcmp(o->keyword, "password") == 0)
                n -= count_marker(o->val);
        PQconninfoFree(opts);
        return n < 0 ? 0 : n;
    }
    const char *s = dsn;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    const char *sep = strstr(dsn, "://");
    bool uri = false;
    if (sep && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) {
        uri = true;
        for (const char *p = s; p < sep; p++)
            if (!(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || (*p >= '0' && *p <= '9') ||
                  *p == '+' || *p == '-' || *p == '.'))
                uri = false;
    }
    if (!uri) {
        /*
         * key=value: everything from the first "password =" assignment on is
         * secret (config.c's rule for text whose tokens cannot be trusted).
         */
        const char *pw = NULL;
        for (const char *p = dsn; *p && !pw; p++) {
            if (strncasecmp(p, "password", 8) != 0)
                continue;
            const char *q = p + 8;
            while (*q == ' ' || (*q >= '\t' && *q <= '\r'))
                q++;
            if (*q == '=')
                pw = p;
        }
        int n = 0;
        for (const char *p = dsn; (p = strstr(p, MARKER)) != NULL; p++)
            n += !pw || p + strlen(MARKER) <= pw;
        return n;
    }
    /* URI: markers inside the user-info password or a password= value are secret. */
    const char *body = sep + 3;
    const char *at = strrchr(body, '@');
    const char *colon = at ? memchr(body, ':', (size_t)(at - body)) : NULL;
    int n = 0;
    for (const char *p = dsn; (p = strstr(p, MARKER)) != NULL; p++) {
        bool secret = colon && p > colon && p + strlen(MARKER) <= at;
        /* In a query value whose key is a form of "password": find the '=' before it. */
        const char *q = p;
        while (q > body && q[-1] != '&' && q[-1] != '?' && q[-1] != '=')
            q--;
        if (q > body && q[-1] == '=') {
            const char *k = q - 1;
            while (k > body && k[-1] != '&' && k[-1] != '?')
                k--;
            char key[64];
            size_t kl = (size_t)(q - 1 - k);
            if (kl < sizeof key && k > body && (k[-1] == '&' || k[-1] == '?')) {
                memcpy(key, k, kl);
                key[kl] = '\0';
                if (strcasecmp(key, "password") == 0 || strcasecmp(key, "pass%77ord") == 0)
                    secret = true;
            }
        }
        n += !secret;
    }
    return n;
}

static void check_buf(const char *what, const char *buf, size_t size, int allowed,
                      const char *dsn) {
    FUZZ_CHECK(memchr(buf, '\0', size) != NULL, "%s: no NUL within %zu bytes", what, size);
    int seen = count_marker(buf);
    FUZZ_CHECK(seen <= allowed, "%s shows the secret %d times (allowed %d)\n  dsn: [%s]\n  out: [%s]",
               what, seen, allowed, dsn, buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t shape = fuzz_u8(&in);
    size_t outsize = 1 + fuzz_u16(&in) % 700;
    gen g = {.len = 0};
    g.s[0] = '\0';
    if (shape % 3 == 0)
        gen_uri(&g, &in);
    else if (shape % 3 == 1)
        gen_kv(&g, &in);
    else {
        /* Raw text with the marker after a fuzz-chosen prefix. */
        raw(&g, &in, 24, NULL);
        puts_(&g, MARKER);
        raw(&g, &in, 24, NULL);
    }
    const char *dsn = g.s;
    bool parsed = false;
    int allowed = allowed_markers(dsn, &parsed);
    /*
     * Raw text libpq cannot parse has no reading that says which word is a
     * password (the marker may be a host value swallowed by "host= "), so
     * only the generated shapes are held to the fallback rule.
     */
    if (shape % 3 == 2 && !parsed)
        allowed = 1 << 30;
    /*
     * libpq's messages may repeat a token more than once, so with a marker
     * outside a password the count in a message is not bounded; with none,
     * no message may show one at all.
     */
    int echo_allowed = allowed ? 1 << 30 : 0;

    char *buf = malloc(outsize);
    pgetl_dsn_redact(dsn, buf, outsize);
    check_buf("pgetl_dsn_redact", buf, outsize, allowed, dsn);
    char big[4 * DSN_MAX];
    pgetl_dsn_redact(dsn, big, sizeof big);
    check_buf("pgetl_dsn_redact (large buffer)", big, sizeof big, allowed, dsn);

    /* libpq's own complaint, scrubbed, and the DSN itself as the "message". */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    if (opts)
        PQconninfoFree(opts);
    if (perr) {
        pgetl__dsn_scrub(dsn, perr, big, sizeof big);
        check_buf("pgetl__dsn_scrub(libpq error)", big, sizeof big, echo_allowed, dsn);
        PQfreemem(perr);
    }
    pgetl__dsn_scrub(dsn, dsn, buf, outsize);
    check_buf("pgetl__dsn_scrub(dsn)", buf, outsize, allowed, dsn);

    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_code rc = pgetl_config_validate(&cfg, &err);
    FUZZ_CHECK((rc == PGETL_OK) == parsed, "validate %s a DSN libpq %s",
               rc == PGETL_OK ? "accepted" : "refused", parsed ? "parses" : "rejects");
    if (rc != PGETL_OK)
        check_buf("pgetl_config_validate message", err.message, sizeof err.message, echo_allowed,
                  dsn);
    free(buf);
    return 0;
}
