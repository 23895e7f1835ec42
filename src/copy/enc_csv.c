/*
 * COPY CSV format (delimiter ',', quote '"', NULL as an unquoted empty
 * field). A value is quoted only when it must be: when it holds the
 * delimiter, a quote, CR or LF; when it is empty, because an unquoted empty
 * field would read back as NULL; and when it is exactly \. , which the
 * server would otherwise take for the end-of-data marker. Inside quotes the
 * only escape is a doubled quote; backslashes are ordinary bytes in CSV.
 */
#include "copy/enc.h"

/* 1: forces quoting; 2: NUL (refused). */
static const unsigned char csv_class[256] = {
    [0] = 2, [','] = 1, ['"'] = 1, ['\n'] = 1, ['\r'] = 1,
};

bool pgetl__enc_csv_value(pgetl_buf *b, const char *v, size_t len, size_t *nul_at) {
    const unsigned char *p = (const unsigned char *)v;
    bool quote = len == 0 || (len == 2 && v[0] == '\\' && v[1] == '.');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = csv_class[p[i]];
        if (c == 2) {
            *nul_at = i;
            return false;
        }
        quote |= c != 0;
    }
    if (!quote) {
        pgetl__buf_append_unchecked(b, v, len);
        return true;
    }
    b->data[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] != '"')
            continue;
        /* Copy through the quote, then write it once more. */
        pgetl__buf_append_unchecked(b, v + run, i + 1 - run);
        b->data[b->len++] = '"';
        run = i + 1;
    }
    pgetl__buf_append_unchecked(b, v + run, len - run);
    b->data[b->len++] = '"';
    return true;
}
