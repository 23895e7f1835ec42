/*
 * Structural validation of Arrow arrays before any byte of them is encoded.
 * The producer is untrusted: every count, offset and index that decides
 * where an encoder reads is checked here once per batch, so the encoders can
 * index buffers without checks on the hot path. The checks are linear in the
 * rows of the batch and touch only offsets, views and dictionary indices.
 */
#include "copy/arrow_int.h"

#include <stdio.h>

/* Buffers a non-nested array of kind k carries; -1 for variadic views. */
static int64_t leaf_buffers(pgetl_arrow_kind k) {
    switch (k) {
    case PGETL_AK_NULL:
        return 0;
    case PGETL_AK_UTF8:
    case PGETL_AK_LARGE_UTF8:
    case PGETL_AK_BINARY:
    case PGETL_AK_LARGE_BINARY:
        return 3;
    case PGETL_AK_UTF8_VIEW:
    case PGETL_AK_BINARY_VIEW:
        return -1;
    default:
        return 2;
    }
}

static pgetl_code bad(pgetl_error *err, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pgetl_code bad(pgetl_error *err, const char *what, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pgetl_error_set(err, PGETL_EDATA, "malformed Arrow array for column \"%s\": %s", what,
                           msg);
}

/* Common header checks: counts, window, buffer and child counts. */
static pgetl_code check_header(const struct ArrowArray *a, int64_t start, int64_t count,
                               int64_t nbuf, int64_t nchild, const char *what, pgetl_error *err) {
    if (!a)
        return pgetl_error_set(err, PGETL_EDATA,
                               "malformed Arrow array for column \"%s\": array is NULL", what);
    if (a->length < 0)
        return bad(err, what, "negative length %lld", (long long)a->length);
    if (a->offset < 0)
        return bad(err, what, "negative offset %lld", (long long)a->offset);
    if (a->offset > INT64_MAX - a->length)
        return bad(err, what, "offset %lld + length %lld overflows", (long long)a->offset,
                   (long long)a->length);
    if (start < 0 || count < 0 || start > a->length || count > a->length - start)
        return bad(err, what, "length %lld is shorter than the %lld elements its parent uses",
                   (long long)a->length, (long long)(start + count));
    if (nbuf >= 0 && a->n_buffers != nbuf)
        return bad(err, what, "n_buffers is %lld, the format needs %lld", (long long)a->n_buffers,
                   (long long)nbuf);
    if (a->n_buffers > 0 && !a->buffers)
        return bad(err, what, "buffers array is NULL with n_buffers %lld", (long long)a->n_buffers);
    if (a->n_children != nchild)
        return bad(err, what, "n_children is %lld, the format needs %lld", (long long)a->n_children,
                   (long long)nchild);
    if (nchild > 0 && !a->children)
        return bad(err, what, "children array is NULL");
    for (int64_t i = 0; i < nchild; i++)
        if (!a->children[i])
            return bad(err, what, "child %lld is NULL", (long long)i);
    if (a->n_buffers > 0 && !a->buffers[0] && a->null_count > 0)
        return bad(err, what, "null_count is %lld but there is no validity bitmap",
                   (long long)a->null_count);
    return PGETL_OK;
}

/*
 * The bitmap the encoders will honour: pgetl__arrow_col_bind ignores it when
 * null_count is 0 (it may then be garbage), so a value it marks null is still
 * read and must be checked like any other (found by fuzz/fuzz_arrow_import.c).
 */
static const uint8_t *validity_used(const struct ArrowArray *a) {
    return a->n_buffers > 0 && a->null_count != 0 ? a->buffers[0] : NULL;
}

/* Offsets [p, p + count] non-decreasing and non-negative; returns first/last. */
#define CHECK_OFFSETS(T)                                                                           \
    static pgetl_code check_offsets_##T(const T *o, int64_t p, int64_t count, const char *what,    \
                                        int64_t *first, int64_t *last, pgetl_error *err) {         \
        if (o[p] < 0)                                                                              \
            return bad(err, what, "offset %lld is negative (%lld)", (long long)p,                  \
                       (long long)o[p]);                                                           \
        for (int64_t i = p; i < p + count; i++)                                                    \
            if (o[i + 1] < o[i])                                                                   \
                return bad(err, what, "offsets decrease at element %lld (to %lld)",                \
                           (long long)(i + 1 - p), (long long)o[i + 1]);                           \
        *first = o[p];                                                                             \
        *last = o[p + count];                                                                      \
        return PGETL_OK;                                                                           \
    }
CHECK_OFFSETS(int32_t)
CHECK_OFFSETS(int64_t)

static pgetl_code check_offsets(const struct ArrowArray *a, bool large, int64_t start,
                                int64_t count, const char *what, int64_t *first, int64_t *last,
                                pgetl_error *err) {
    *first = *last = 0;
    if (count == 0)
        return PGETL_OK;
    if (!a->buffers[1])
        return bad(err, what, "offsets buffer is NULL with %lld elements", (long long)count);
    int64_t p = a->offset + start;
    return large ? check_offsets_int64_t(a->buffers[1], p, count, what, first, last, err)
                 : check_offsets_int32_t(a->buffers[1], p, count, what, first, last, err);
}

static pgetl_code check_views(const struct ArrowArray *a, int64_t start, int64_t count,
                              const char *what, pgetl_error *err) {
    if (a->n_buffers < 3)
        return bad(err, what, "view array has %lld buffers; needs at least 3",
                   (long long)a->n_buffers);
    int64_t nvar = a->n_buffers - 3;
    const int64_t *sizes = a->buffers[a->n_buffers - 1];
    if (nvar > 0 && !sizes)
        return bad(err, what, "variadic buffer sizes are missing");
    for (int64_t k = 0; k < nvar; k++)
        if (sizes[k] < 0 || (sizes[k] > 0 && !a->buffers[2 + k]))
            return bad(err, what, "data buffer %lld is NULL or has size %lld", (long long)k,
                       (long long)sizes[k]);
    if (count == 0)
        return PGETL_OK;
    const uint8_t *views = a->buffers[1];
    const uint8_t *validity = validity_used(a);
    if (!views)
        return bad(err, what, "views buffer is NULL with %lld elements", (long long)count);
    for (int64_t i = start; i < start + count; i++) {
        int64_t p = a->offset + i;
        if (validity && !((validity[p >> 3] >> (p & 7)) & 1))
            continue;
        const uint8_t *v = views + 16 * p;
        int32_t len, idx, off;
        memcpy(&len, v, 4);
        if (len < 0)
            return bad(err, what, "view %lld has negative length %lld", (long long)(i - start),
                       (long long)len);
        if (len <= 12)
            continue;
        memcpy(&idx, v + 8, 4);
        memcpy(&off, v + 12, 4);
        if (idx < 0 || idx >= nvar)
            return bad(err, what, "view %lld names data buffer %lld, which does not exist",
                       (long long)(i - start), (long long)idx);
        if (off < 0 || (int64_t)off + len > sizes[idx])
            return bad(err, what, "view %lld reaches past the end of data buffer %lld",
                       (long long)(i - start), (long long)idx);
    }
    return PGETL_OK;
}

/* Checks dictionary indices of the valid elements in the window. */
#define CHECK_INDICES(T)                                                                           \
    static pgetl_code check_indices_##T(const struct ArrowArray *a, int64_t start, int64_t count,  \
                                        int64_t dlen, const char *what, pgetl_error *err) {        \
        const T *ix = a->buffers[1];                                                               \
        const uint8_t *validity = validity_used(a);                                                \
        for (int64_t i = start; i < start + count; i++) {                                          \
            int64_t p = a->offset + i;                                                             \
            if (validity && !((validity[p >> 3] >> (p & 7)) & 1))                                  \
                continue;                                                                          \
            /* Negative (signed) indices fail first; then one unsigned compare. */                 \
            if ((ix[p] < 0) || (uint64_t)ix[p] >= (uint64_t)dlen)                                  \
                return bad(err, what, "dictionary index %lld at element %lld is out of range",     \
                           (long long)ix[p], (long long)(i - start));                              \
        }                                                                                          \
        return PGETL_OK;                                                                           \
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"
CHECK_INDICES(int8_t)
CHECK_INDICES(int16_t)
CHECK_INDICES(int32_t)
CHECK_INDICES(int64_t)
CHECK_INDICES(uint8_t)
CHECK_INDICES(uint16_t)
CHECK_INDICES(uint32_t)
CHECK_INDICES(uint64_t)
#pragma GCC diagnostic pop

static pgetl_code check_indices(const struct ArrowArray *a, pgetl_arrow_kind k, int64_t start,
                                int64_t count, int64_t dlen, const char *what, pgetl_error *err) {
    switch (k) {
    case PGETL_AK_INT8:
        return check_indices_int8_t(a, start, count, dlen, what, err);
    case PGETL_AK_INT16:
        return check_indices_int16_t(a, start, count, dlen, what, err);
    case PGETL_AK_INT32:
        return check_indices_int32_t(a, start, count, dlen, what, err);
    case PGETL_AK_INT64:
        return check_indices_int64_t(a, start, count, dlen, what, err);
    case PGETL_AK_UINT8:
        return check_indices_uint8_t(a, start, count, dlen, what, err);
    case PGETL_AK_UINT16:
        return check_indices_uint16_t(a, start, count, dlen, what, err);
    case PGETL_AK_UINT32:
        return check_indices_uint32_t(a, start, count, dlen, what, err);
    case PGETL_AK_UINT64:
        return check_indices_uint64_t(a, start, count, dlen, what, err);
    default:
        return bad(err, what, "dictionary index type is not an integer");
    }
}

/* A non-nested array over [start, start + count). */
static pgetl_code check_leaf(const pgetl_arrow_type *t, const struct ArrowArray *a, int64_t start,
                             int64_t count, const char *what, pgetl_error *err) {
    pgetl_code rc = check_header(a, start, count, leaf_buffers(t->kind), 0, what, err);
    if (rc != PGETL_OK)
        return rc;
    switch (t->kind) {
    case PGETL_AK_NULL:
        return PGETL_OK;
    case PGETL_AK_UTF8:
    case PGETL_AK_LARGE_UTF8:
    case PGETL_AK_BINARY:
    case PGETL_AK_LARGE_BINARY: {
        bool large = t->kind == PGETL_AK_LARGE_UTF8 || t->kind == PGETL_AK_LARGE_BINARY;
        int64_t first, last;
        rc = check_offsets(a, large, start, count, what, &first, &last, err);
        if (rc == PGETL_OK && last > first && !a->buffers[2])
            rc = bad(err, what, "data buffer is NULL but offsets span %lld bytes",
                     (long long)(last - first));
        return rc;
    }
    case PGETL_AK_UTF8_VIEW:
    case PGETL_AK_BINARY_VIEW:
        return check_views(a, start, count, what, err);
    default:
        if (count > 0 && !a->buffers[1])
            return bad(err, what, "data buffer is NULL with %lld elements", (long long)count);
        return PGETL_OK;
    }
}

pgetl_code pgetl__arrow_validate_range(const pgetl_arrow_field *f, const struct ArrowArray *a,
                                       int64_t start, int64_t count, const char *what,
                                       pgetl_error *err) {
    pgetl_code rc;
    switch (f->type.kind) {
    case PGETL_AK_LIST:
    case PGETL_AK_LARGE_LIST: {
        rc = check_header(a, start, count, 2, 1, what, err);
        int64_t first = 0, last = 0;
        if (rc == PGETL_OK)
            rc = check_offsets(a, f->type.kind == PGETL_AK_LARGE_LIST, start, count, what, &first,
                               &last, err);
        if (rc != PGETL_OK)
            return rc;
        const struct ArrowArray *child = a->children[0];
        if (last > child->length)
            return bad(err, what, "list offsets reach element %lld of a child of length %lld",
                       (long long)last, (long long)child->length);
        return check_leaf(&f->child, child, first, last - first, what, err);
    }
    case PGETL_AK_DICTIONARY:
        rc = check_leaf(&f->index, a, start, count, what, err);
        if (rc != PGETL_OK)
            return rc;
        if (!a->dictionary)
            return bad(err, what, "dictionary-encoded array has no dictionary");
        rc = check_leaf(&f->child, a->dictionary, 0, a->dictionary->length, what, err);
        if (rc == PGETL_OK && count > 0)
            rc = check_indices(a, f->index.kind, start, count, a->dictionary->length, what, err);
        return rc;
    case PGETL_AK_STRUCT:
        return bad(err, what, "struct columns are not supported");
    default:
        if (a && a->dictionary)
            return bad(err, what, "array has a dictionary but its schema does not");
        return check_leaf(&f->type, a, start, count, what, err);
    }
}

pgetl_code pgetl__arrow_validate_batch(const pgetl_arrow_field *fields, int nfields, const int *use,
                                       int nuse, const struct ArrowArray *batch, pgetl_error *err) {
    pgetl_code rc = check_header(batch, 0, batch ? batch->length : 0, -1, nfields, "(batch)", err);
    if (rc != PGETL_OK)
        return rc;
    if (batch->n_buffers != 1 && batch->n_buffers != 0)
        return bad(err, "(batch)", "struct array has %lld buffers, expected 1",
                   (long long)batch->n_buffers);
    if (batch->null_count > 0 ||
        (batch->null_count < 0 && batch->n_buffers == 1 && batch->buffers[0] != NULL))
        return pgetl_error_set(err, PGETL_EDATA,
                               "Arrow record batch has null rows at the struct level; pgetl "
                               "cannot load a row that is itself null");
    int n = use ? nuse : nfields;
    for (int k = 0; k < n; k++) {
        int i = use ? use[k] : k;
        rc = pgetl__arrow_validate_range(&fields[i], batch->children[i], batch->offset,
                                         batch->length, fields[i].name, err);
        if (rc != PGETL_OK)
            return rc;
    }
    return PGETL_OK;
}
