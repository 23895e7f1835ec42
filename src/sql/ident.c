/*
 * Identifiers: the one place where a table name becomes SQL.
 *
 * Names are parsed by the server's rules for qualified names (the lexer's
 * identifier rules as SplitIdentifierString applies them): white space around
 * parts and dots is allowed, unquoted parts fold ASCII letters to lower case
 * and may hold letters, digits, '_', '$' and any byte >= 0x80 (never a digit
 * or '$' first); quoted parts keep everything, with "" for one quote. Every
 * name is then written back double-quoted, so what reaches SQL is always
 * exactly one identifier per part, whatever the caller passed.
 *
 * Over-long parts are rejected rather than truncated: the server silently
 * cuts identifiers at NAMEDATALEN-1 bytes, which would make "a_very_long..."
 * quietly name a different table.
 */
#include "sql/sql.h"

#include <stdio.h>

#define NAME_MAX_BYTES (PGETL_IDENT_MAX - 1)
/* How much of a rejected input a message repeats: enough to recognise it. */
#define ECHO_MAX 128

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_ident_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_ident_cont(unsigned char c) {
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* Length of the longest prefix of s (at most max bytes) that ends on a UTF-8 boundary. */
static int echo_len(const char *s) {
    size_t n = strlen(s);
    if (n <= ECHO_MAX)
        return (int)n;
    n = ECHO_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

static pgetl_code fail(const char *text, pgetl_qualified_name *out, pgetl_error *err,
                       const char *why, size_t pos) {
    out->schema[0] = '\0';
    out->name[0] = '\0';
    int n = echo_len(text);
    return pgetl_error_set(err, PGETL_EINVAL, "invalid table name \"%.*s%s\": %s (at byte %zu)", n,
                           text, text[n] ? "..." : "", why, pos);
}

/*
 * Parses one part starting at *pp into dst (NAME_MAX_BYTES + 1 bytes).
 * Returns NULL on success, else the reason; *pp is left where parsing stopped.
 */
static const char *parse_part(const char **pp, char *dst) {
    const unsigned char *p = (const unsigned char *)*pp;
    size_t len = 0;
    const char *why = NULL;
    if (*p == '"') {
        p++;
        for (;;) {
            if (*p == '\0') {
                why = "unterminated quoted identifier";
                break;
            }
            if (*p == '"') {
                if (p[1] != '"') {
                    p++;
                    break;
                }
                p++; /* "" stands for one quote */
            }
            if (len == NAME_MAX_BYTES) {
                why = "identifier is longer than 63 bytes (the server would truncate it)";
                break;
            }
            dst[len++] = (char)*p++;
        }
        if (!why && len == 0)
            why = "zero-length quoted identifier";
    } else if (is_ident_start(*p)) {
        while (is_ident_cont(*p)) {
            if (len == NAME_MAX_BYTES) {
                why = "identifier is longer than 63 bytes (the server would truncate it)";
                break;
            }
            unsigned char c = *p++;
            dst[len++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
    } else if (*p == '\0' || *p == '.') {
        why = "empty name part";
    } else {
        why = "unexpected character (quote the name to use it)";
    }
    dst[len] = '\0';
    *pp = (const char *)p;
    return why;
}

pgetl_code pgetl_ident_parse(const char *text, pgetl_qualified_name *out, pgetl_error *err) {
    pgetl_qualified_name scratch;
    if (!out)
        out = &scratch;
    if (!text)
        return fail("", out, err, "name is NULL", 0);
    char parts[2][PGETL_IDENT_MAX];
    int nparts = 0;
    const char *p = text;
    for (;;) {
        while (is_space((unsigned char)*p))
            p++;
        if (nparts == 2)
            return fail(text, out, err, "too many dotted parts (expected table or schema.table)",
                        (size_t)(p - text));
        const char *why = parse_part(&p, parts[nparts]);
        if (why)
            return fail(text, out, err, why, (size_t)(p - text));
        nparts++;
        while (is_space((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        if (*p != '.')
            return fail(text, out, err, "unexpected text after the name", (size_t)(p - text));
        p++;
    }
    if (nparts == 2) {
        memcpy(out->schema, parts[0], sizeof out->schema);
        memcpy(out->name, parts[1], sizeof out->name);
    } else {
        out->schema[0] = '\0';
        memcpy(out->name, parts[0], sizeof out->name);
    }
    return PGETL_OK;
}

/* Appends `name` double-quoted at buf[pos...]; returns the new position (may exceed size). */
static size_t quote_at(const char *name, char *buf, size_t size, size_t pos) {
    if (pos < size)
        buf[pos] = '"';
    pos++;
    for (const char *p = name; *p; p++) {
        if (*p == '"') {
            if (pos < size)
                buf[pos] = '"';
            pos++;
        }
        if (pos < size)
            buf[pos] = *p;
        pos++;
    }
    if (pos < size)
        buf[pos] = '"';
    return pos + 1;
}

/*
 * Unlike snprintf, a result that does not fit leaves buf empty: a cut quoted
 * identifier (an opening quote with no closing one) is exactly the kind of
 * text that turns a name into SQL, so it is never handed out.
 */
static size_t finish(char *buf, size_t size, size_t need) {
    if (size == 0 || !buf)
        return need;
    if (need >= size)
        buf[0] = '\0';
    else
        buf[need] = '\0';
    return need;
}

size_t pgetl_ident_quote(const char *name, char *buf, size_t size) {
    if (!buf)
        size = 0;
    size_t need = quote_at(name ? name : "", buf, size, 0);
    return finish(buf, size, need);
}

size_t pgetl_qualified_name_quote(const pgetl_qualified_name *qn, char *buf, size_t size) {
    if (!buf)
        size = 0;
    size_t pos = 0;
    if (qn && qn->schema[0]) {
        pos = quote_at(qn->schema, buf, size, pos);
        if (pos < size)
            buf[pos] = '.';
        pos++;
    }
    pos = quote_at(qn ? qn->name : "", buf, size, pos);
    return finish(buf, size, pos);
}
