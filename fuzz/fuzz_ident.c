/*
 * Fuzz target: identifier parsing and quoting (src/sql/ident.c).
 *
 * Input: a mode byte, a buffer size for the quoting calls, then text.
 * Invariants checked:
 *   - parse -> pgetl_qualified_name_quote -> parse gives the same schema and
 *     name (the quoted form means exactly what was parsed);
 *   - any name of 1-63 bytes without NUL, quoted with pgetl_ident_quote (or
 *     as schema.name with pgetl_qualified_name_quote), parses back to itself:
 *     a quoted name is only ever a name;
 *   - quoted output is balanced: it starts and ends with '"', holds an even
 *     number of quotes, and the only quote not doubled inside a part is the
 *     one closing it;
 *   - into a buffer too small, the result is the needed length and an empty
 *     buffer (never a cut, unbalanced name); otherwise strlen == result;
 *   - a refused name comes with PGETL_EINVAL, a message, and empty parts.
 */
#include "fuzz_util.h"
#include "pgetl/pgetl.h"

#define BIG 1024

/* Quotes in s balance as one or two quoted parts joined by '.'. */
static void check_balanced(const char *s, size_t n) {
    FUZZ_CHECK(n >= 2 && s[0] == '"' && s[n - 1] == '"', "not quoted: [%s]", s);
    int parts = 0;
    size_t i = 0;
    while (i < n) {
        FUZZ_CHECK(s[i] == '"', "part %d does not open with a quote: [%s]", parts, s);
        i++;
        for (;;) {
            FUZZ_CHECK(i < n, "unterminated part: [%s]", s);
            if (s[i] == '"') {
                if (i + 1 < n && s[i + 1] == '"') {
                    i += 2;
                    continue;
                }
                i++;
                break;
            }
            i++;
        }
        parts++;
        if (i < n) {
            FUZZ_CHECK(s[i] == '.' && parts == 1, "unexpected byte after part %d: [%s]", parts, s);
            i++;
        }
    }
    FUZZ_CHECK(parts >= 1 && parts <= 2, "%d parts: [%s]", parts, s);
}

/* Quotes qn into a buffer of `small` bytes and a big one; returns the big result. */
static size_t quote_both(const pgetl_qualified_name *qn, char *big, size_t small) {
    size_t need = pgetl_qualified_name_quote(qn, big, BIG);
    FUZZ_CHECK(need < BIG && strlen(big) == need, "quote: %zu vs strlen %zu", need, strlen(big));
    check_balanced(big, need);
    char *b = malloc(small ? small : 1);
    memset(b, 'x', small ? small : 1);
    size_t got = pgetl_qualified_name_quote(qn, small ? b : NULL, small);
    FUZZ_CHECK(got == need, "needed %zu with a big buffer, %zu with %zu bytes", need, got, small);
    if (small) {
        if (need >= small)
            FUZZ_CHECK(b[0] == '\0', "a cut quoted name was handed out: [%.*s]", (int)small, b);
        else
            FUZZ_CHECK(strcmp(b, big) == 0, "small buffer holds [%s], big [%s]", b, big);
    }
    free(b);
    return need;
}

static void round_trip(const pgetl_qualified_name *qn, size_t small) {
    char big[BIG];
    quote_both(qn, big, small);
    pgetl_qualified_name back;
    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_code rc = pgetl_ident_parse(big, &back, &err);
    FUZZ_CHECK(rc == PGETL_OK, "quoted [%s] does not parse: %s", big, err.message);
    FUZZ_CHECK(strcmp(back.schema, qn->schema) == 0 && strcmp(back.name, qn->name) == 0,
               "[%s].[%s] came back as [%s].[%s]", qn->schema, qn->name, back.schema, back.name);
}

/* A raw name of 1..63 bytes from the input (NUL bytes replaced). */
static void take_name(fuzz_in *in, char *dst) {
    size_t n = 1 + fuzz_u8(in) % (PGETL_IDENT_MAX - 1);
    n = fuzz_bytes(in, dst, n);
    if (n == 0)
        dst[n++] = 'x';
    for (size_t i = 0; i < n; i++)
        if (dst[i] == '\0')
            dst[i] = '"';
    dst[n] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    size_t small = fuzz_u8(&in);
    pgetl_qualified_name qn;
    memset(&qn, 0, sizeof qn);

    if (mode & 1) {
        /* Arbitrary names, quoted, must parse back to themselves. */
        take_name(&in, qn.name);
        if (mode & 2)
            take_name(&in, qn.schema);
        round_trip(&qn, small);
        char one[BIG];
        size_t n = pgetl_ident_quote(qn.name, one, sizeof one);
        FUZZ_CHECK(n < sizeof one && strlen(one) == n, "ident_quote length");
        check_balanced(one, n);
        return 0;
    }
    /* Arbitrary text parsed; what parses must survive quoting and parsing again. */
    char *text = malloc(in.n + 1);
    memcpy(text, in.p, in.n);
    text[in.n] = '\0';
    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_code rc = pgetl_ident_parse(text, &qn, &err);
    if (rc != PGETL_OK) {
        FUZZ_CHECK(rc == PGETL_EINVAL && err.message[0], "refused with code %d", (int)rc);
        FUZZ_CHECK(qn.schema[0] == '\0' && qn.name[0] == '\0', "refused but parts filled");
    } else {
        FUZZ_CHECK(qn.name[0] != '\0', "parsed to an empty name");
        FUZZ_CHECK(strlen(qn.name) < PGETL_IDENT_MAX && strlen(qn.schema) < PGETL_IDENT_MAX,
                   "part too long");
        round_trip(&qn, small);
    }
    free(text);
    return 0;
}
