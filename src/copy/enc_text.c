/*
 * COPY text format: fields separated by tabs, rows by newlines, NULL as \N.
 * Only four bytes need escaping for the server to read a value back exactly:
 * the backslash (the escape character itself), the tab (delimiter), and
 * newline and carriage return (row ends). With the backslash escaped, values
 * such as \N or \. can never be mistaken for NULL or the end marker.
 *
 * Runs of ordinary bytes are copied with one memcpy; a 256-entry table makes
 * the scan one load and one test per byte.
 */
#include "copy/enc.h"

/* 0: copy as is; otherwise the letter after the backslash; 1: NUL (refused). */
static const unsigned char text_escape[256] = {
    [0] = 1, ['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r', ['\\'] = '\\',
};

bool pgetl__enc_text_value(pgetl_buf *b, const char *v, size_t len, size_t *nul_at) {
    const unsigned char *p = (const unsigned char *)v;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char e = text_escape[p[i]];
        if (e == 0)
            continue;
        if (e == 1) {
            pgetl__buf_append_unchecked(b, v + run, i - run);
            *nul_at = i;
            return false;
        }
        pgetl__buf_append_unchecked(b, v + run, i - run);
        b->data[b->len++] = '\\';
        b->data[b->len++] = (char)e;
        run = i + 1;
    }
    pgetl__buf_append_unchecked(b, v + run, len - run);
    return true;
}
