/*
 * The error value: code table, setters and formatting. Nothing here
 * allocates, so out-of-memory errors can be reported with it.
 */
#include "base/base.h"

#include <stdio.h>

static const struct {
    pgetl_code code;
    const char *name;
    const char *text;
} code_table[] = {
#define PGETL_CODE_ROW_(name, value, text) {PGETL_##name, #name, text},
    PGETL_CODE_MAP(PGETL_CODE_ROW_)
#undef PGETL_CODE_ROW_
};

#define CODE_COUNT (sizeof code_table / sizeof code_table[0])

const char *pgetl_code_name(pgetl_code code) {
    for (size_t i = 0; i < CODE_COUNT; i++)
        if (code_table[i].code == code)
            return code_table[i].name;
    return "UNKNOWN";
}

const char *pgetl_strerror(pgetl_code code) {
    for (size_t i = 0; i < CODE_COUNT; i++)
        if (code_table[i].code == code)
            return code_table[i].text;
    return "unknown error code";
}

void pgetl_error_init(pgetl_error *err) {
    if (!err)
        return;
    err->code = PGETL_OK;
    err->sqlstate[0] = '\0';
    err->message[0] = '\0';
    err->detail[0] = '\0';
    err->hint[0] = '\0';
    err->context[0] = '\0';
}

/* Cuts `s` (NUL terminated, at most size-1 bytes) back to a UTF-8 boundary. */
static void trim_partial_utf8(char *s, size_t len) {
    size_t i = len;
    /* Walk back over continuation bytes to the lead byte of the last char. */
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - (i - 1) < want)
        s[i - 1] = '\0';
}

void pgetl__strlcpy_utf8(char *dst, const char *src, size_t size) {
    if (size == 0)
        return;
    size_t n = strlen(src);
    if (n < size) {
        memcpy(dst, src, n + 1);
        return;
    }
    memcpy(dst, src, size - 1);
    dst[size - 1] = '\0';
    trim_partial_utf8(dst, size - 1);
}

static void append(char *buf, size_t size, size_t *used, const char *s);

static void vset(pgetl_error *err, pgetl_code code, const char *fmt, va_list ap) {
    pgetl_error_init(err);
    err->code = code;
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    if (n >= (int)sizeof err->message)
        trim_partial_utf8(err->message, sizeof err->message - 1);
}

pgetl_code pgetl_error_set(pgetl_error *err, pgetl_code code, const char *fmt, ...) {
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void pgetl_error_prefix(pgetl_error *err, const char *fmt, ...) {
    if (!err)
        return;
    char prefix[PGETL_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if (n >= (int)sizeof prefix)
        trim_partial_utf8(prefix, sizeof prefix - 1);
    /*
     * Two layers that both name the same context (the COPY writer and its
     * caller both say "COPY t: ") must not repeat it: a prefix the message
     * already starts with adds nothing.
     */
    if (strncmp(err->message, prefix, strlen(prefix)) == 0)
        return;
    char joined[PGETL_ERROR_MESSAGE_SIZE];
    size_t used = 0;
    joined[0] = '\0';
    append(joined, sizeof joined, &used, prefix);
    append(joined, sizeof joined, &used, err->message);
    memcpy(err->message, joined, used + 1);
}

pgetl_code pgetl__error_oom(pgetl_error *err, const char *where) {
    if (!err)
        return PGETL_ENOMEM;
    pgetl_error_init(err);
    err->code = PGETL_ENOMEM;
    /* Fixed text plus a bounded copy: no formatting machinery that could allocate. */
    static const char text[] = "out of memory";
    memcpy(err->message, text, sizeof text);
    if (where) {
        size_t used = sizeof text - 1;
        static const char sep[] = " in ";
        memcpy(err->message + used, sep, sizeof sep);
        used += sizeof sep - 1;
        pgetl__strlcpy_utf8(err->message + used, where, sizeof err->message - used);
    }
    return PGETL_ENOMEM;
}

pgetl_code pgetl__error_copy(pgetl_error *dst, const pgetl_error *src) {
    if (dst && dst != src)
        *dst = *src;
    return src->code;
}

/* Appends s to buf, cutting at a UTF-8 boundary when full. */
static void append(char *buf, size_t size, size_t *used, const char *s) {
    if (*used + 1 >= size)
        return;
    pgetl__strlcpy_utf8(buf + *used, s, size - *used);
    *used += strlen(buf + *used);
}

char *pgetl_error_format(const pgetl_error *err, char *buf, size_t size) {
    if (!buf || size == 0)
        return buf;
    buf[0] = '\0';
    if (!err)
        return buf;
    size_t used = 0;
    append(buf, size, &used, err->message[0] ? err->message : pgetl_strerror(err->code));
    if (err->sqlstate[0]) {
        append(buf, size, &used, " [SQLSTATE ");
        append(buf, size, &used, err->sqlstate);
        append(buf, size, &used, "]");
    }
    static const struct {
        const char *label;
        size_t offset;
    } fields[] = {
        {"\nDETAIL: ", offsetof(pgetl_error, detail)},
        {"\nHINT: ", offsetof(pgetl_error, hint)},
        {"\nCONTEXT: ", offsetof(pgetl_error, context)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *text = (const char *)err + fields[i].offset;
        if (text[0]) {
            append(buf, size, &used, fields[i].label);
            append(buf, size, &used, text);
        }
    }
    return buf;
}
