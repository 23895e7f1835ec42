/*
 * Growable byte buffer. Doubling keeps appends amortised O(1); encoders
 * reserve once per row or batch and then use the unchecked appenders.
 */
#include "base/base.h"

#include <stdio.h>

/* First allocation: small buffers (SQL text, names) rarely need more. */
#define BUF_MIN_CAP 256

void pgetl__buf_init(pgetl_buf *b) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void pgetl__buf_reset(pgetl_buf *b) {
    pgetl__free(b->data);
    pgetl__buf_init(b);
}

pgetl_code pgetl__buf_reserve(pgetl_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len)
        return PGETL_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return PGETL_OK;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = pgetl__realloc(b->data, cap);
    if (!p)
        return PGETL_ENOMEM;
    b->data = p;
    b->cap = cap;
    return PGETL_OK;
}

pgetl_code pgetl__buf_append(pgetl_buf *b, const void *p, size_t n) {
    pgetl_code rc = pgetl__buf_reserve(b, n);
    if (rc != PGETL_OK)
        return rc;
    if (n)
        pgetl__buf_append_unchecked(b, p, n);
    return PGETL_OK;
}

pgetl_code pgetl__buf_printf(pgetl_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return PGETL_EINVAL;
    }
    pgetl_code rc = pgetl__buf_reserve(b, (size_t)n + 1);
    if (rc == PGETL_OK) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
    return rc;
}
