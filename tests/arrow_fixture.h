/*
 * A tiny Arrow builder for tests (header-only, no Arrow library): builds
 * ArrowArray / ArrowSchema / ArrowArrayStream values from C arrays with real
 * release callbacks that free everything they own and count themselves, so a
 * test can assert that every array, schema and stream was released exactly
 * once (fx_live() == 0 afterwards; ASan catches a second release's double
 * free).
 *
 * Arrays:
 *     struct ArrowArray a;
 *     int32_t v[] = {1, 2, 3};
 *     bool valid[] = {true, false, true};          // NULL: no validity bitmap
 *     fx_prim(&a, 3, v, sizeof v[0], valid);
 *     fx_strings(&a, 2, (const char *[]){"x", NULL}, false);   // NULL entry = null
 *     struct ArrowArray *kid = fx_list(&a, n, offsets, valid); // then fill *kid
 *     fx_struct(&batch, nrows, ncols); fx_prim(fx_child(&batch, 0), ...);
 * Schemas:
 *     fx_schema(&s, "+s", "", 2);
 *     fx_schema(fx_schema_child(&s, 0), "i", "id", 0);
 * Streams (take ownership of the schema and batches; fail_at >= 0 makes
 * get_next fail with EIO and "fixture: producer failed at batch N"):
 *     fx_stream(&st, &schema, batches, nbatches, -1);
 *
 * Tests may poke any field afterwards (negative length, NULL buffer, wrong
 * n_buffers) to build malformed input: release() frees what was allocated,
 * whatever the public fields say by then.
 */
#ifndef PGETL_TESTS_ARROW_FIXTURE_H
#define PGETL_TESTS_ARROW_FIXTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgetl/arrow.h"

#define FX_MAX_BUFFERS 8

static int fx_live_arrays, fx_live_schemas, fx_live_streams;
static int fx_released_arrays, fx_released_schemas, fx_released_streams;

/* Objects built here and not yet released. */
static inline int fx_live(void) {
    return fx_live_arrays + fx_live_schemas + fx_live_streams;
}

static inline void fx_reset_counts(void) {
    fx_live_arrays = fx_live_schemas = fx_live_streams = 0;
    fx_released_arrays = fx_released_schemas = fx_released_streams = 0;
}

static inline void *fx_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "arrow_fixture: out of memory\n");
        abort();
    }
    return p;
}

/* ---- arrays -------------------------------------------------------------- */

typedef struct fx_array_priv {
    const void **buffers;      /* the array handed out in a->buffers */
    void *mem[FX_MAX_BUFFERS]; /* owned buffer memory                */
    struct ArrowArray **children;
    int64_t n_children;
    struct ArrowArray *dictionary;
} fx_array_priv;

static void fx_array_release(struct ArrowArray *a) {
    fx_array_priv *p = a->private_data;
    for (int64_t i = 0; i < p->n_children; i++) {
        if (p->children[i]->release)
            p->children[i]->release(p->children[i]);
        free(p->children[i]);
    }
    if (p->dictionary) {
        if (p->dictionary->release)
            p->dictionary->release(p->dictionary);
        free(p->dictionary);
    }
    for (int i = 0; i < FX_MAX_BUFFERS; i++)
        free(p->mem[i]);
    free(p->children);
    free(p->buffers);
    free(p);
    a->release = NULL;
    a->private_data = NULL;
    fx_live_arrays--;
    fx_released_arrays++;
}

/* An array of `length` with empty buffer slots and zeroed child slots. */
static inline void fx_array_new(struct ArrowArray *a, int64_t length, int64_t n_buffers,
                                int64_t n_children) {
    fx_array_priv *p = fx_xcalloc(1, sizeof *p);
    p->buffers = fx_xcalloc((size_t)n_buffers, sizeof(void *));
    p->n_children = n_children;
    p->children = fx_xcalloc((size_t)n_children, sizeof(struct ArrowArray *));
    for (int64_t i = 0; i < n_children; i++)
        p->children[i] = fx_xcalloc(1, sizeof(struct ArrowArray));
    memset(a, 0, sizeof *a);
    a->length = length;
    a->n_buffers = n_buffers;
    a->n_children = n_children;
    a->buffers = p->buffers;
    a->children = n_children ? p->children : NULL;
    a->release = fx_array_release;
    a->private_data = p;
    fx_live_arrays++;
}

/* Copies nbytes of src (zeros when src is NULL) into owned buffer i. */
static inline void *fx_buffer(struct ArrowArray *a, int i, const void *src, size_t nbytes) {
    fx_array_priv *p = a->private_data;
    free(p->mem[i]);
    /* 8 extra zero bytes so a reader overrunning by a word does not fault on tiny tests. */
    p->mem[i] = fx_xcalloc(1, nbytes + 8);
    if (src && nbytes)
        memcpy(p->mem[i], src, nbytes);
    p->buffers[i] = p->mem[i];
    return p->mem[i];
}

static inline struct ArrowArray *fx_child(struct ArrowArray *a, int64_t i) {
    return ((fx_array_priv *)a->private_data)->children[i];
}

/* The dictionary slot of a (allocated on first use); fill it with a builder. */
static inline struct ArrowArray *fx_dictionary(struct ArrowArray *a) {
    fx_array_priv *p = a->private_data;
    if (!p->dictionary)
        p->dictionary = fx_xcalloc(1, sizeof(struct ArrowArray));
    a->dictionary = p->dictionary;
    return p->dictionary;
}

/* Buffer 0 from one bool per element (NULL: no bitmap, null_count 0). */
static inline void fx_validity(struct ArrowArray *a, const bool *valid, int64_t n) {
    a->null_count = 0;
    if (!valid)
        return;
    uint8_t *bits = fx_buffer(a, 0, NULL, (size_t)(n + 7) / 8);
    for (int64_t i = 0; i < n; i++) {
        if (valid[i])
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
        else
            a->null_count++;
    }
}

/* Fixed-width values (ints, floats, dates, decimals, fixed_size_binary). */
static inline void fx_prim(struct ArrowArray *a, int64_t n, const void *values, size_t elem,
                           const bool *valid) {
    fx_array_new(a, n, 2, 0);
    fx_validity(a, valid, n);
    fx_buffer(a, 1, values, (size_t)n * elem);
}

static inline void fx_bools(struct ArrowArray *a, int64_t n, const bool *values,
                            const bool *valid) {
    fx_array_new(a, n, 2, 0);
    fx_validity(a, valid, n);
    uint8_t *bits = fx_buffer(a, 1, NULL, (size_t)(n + 7) / 8);
    for (int64_t i = 0; i < n; i++)
        if (values[i])
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* utf8/binary (large: 64-bit offsets); s[i] == NULL is null; lens NULL: strlen. */
static inline void fx_bytes(struct ArrowArray *a, int64_t n, const char *const *s,
                            const size_t *lens, bool large) {
    fx_array_new(a, n, 3, 0);
    bool *valid = fx_xcalloc((size_t)n, sizeof(bool));
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        valid[i] = s[i] != NULL;
        if (s[i])
            total += lens ? lens[i] : strlen(s[i]);
    }
    fx_validity(a, valid, n);
    free(valid);
    char *data = fx_buffer(a, 2, NULL, total);
    void *offs = fx_buffer(a, 1, NULL, (size_t)(n + 1) * (large ? 8 : 4));
    size_t at = 0;
    for (int64_t i = 0; i <= n; i++) {
        if (large)
            ((int64_t *)offs)[i] = (int64_t)at;
        else
            ((int32_t *)offs)[i] = (int32_t)at;
        if (i < n && s[i]) {
            size_t len = lens ? lens[i] : strlen(s[i]);
            memcpy(data + at, s[i], len);
            at += len;
        }
    }
}

static inline void fx_strings(struct ArrowArray *a, int64_t n, const char *const *s, bool large) {
    fx_bytes(a, n, s, NULL, large);
}

/*
 * string_view/binary_view: values of <= 12 bytes inline, longer ones in one
 * data buffer; buffers = validity, views, data, sizes (4 buffers).
 */
static inline void fx_views(struct ArrowArray *a, int64_t n, const char *const *s,
                            const size_t *lens) {
    fx_array_new(a, n, 4, 0);
    bool *valid = fx_xcalloc((size_t)n, sizeof(bool));
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        valid[i] = s[i] != NULL;
        size_t len = s[i] ? (lens ? lens[i] : strlen(s[i])) : 0;
        if (len > 12)
            total += len;
    }
    fx_validity(a, valid, n);
    free(valid);
    uint8_t *views = fx_buffer(a, 1, NULL, (size_t)n * 16);
    char *data = fx_buffer(a, 2, NULL, total);
    int64_t size = (int64_t)total;
    fx_buffer(a, 3, &size, sizeof size);
    size_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!s[i])
            continue;
        int32_t len = (int32_t)(lens ? lens[i] : strlen(s[i]));
        uint8_t *v = views + 16 * i;
        memcpy(v, &len, 4);
        if (len <= 12) {
            memcpy(v + 4, s[i], (size_t)len);
        } else {
            int32_t idx = 0, off = (int32_t)at;
            memcpy(v + 4, s[i], 4);
            memcpy(v + 8, &idx, 4);
            memcpy(v + 12, &off, 4);
            memcpy(data + at, s[i], (size_t)len);
            at += (size_t)len;
        }
    }
}

/* A list (+l, or +L when large) of n entries; fill the returned child. */
static inline struct ArrowArray *fx_list(struct ArrowArray *a, int64_t n, const void *offsets,
                                         const bool *valid, bool large) {
    fx_array_new(a, n, 2, 1);
    fx_validity(a, valid, n);
    fx_buffer(a, 1, offsets, (size_t)(n + 1) * (large ? 8 : 4));
    return fx_child(a, 0);
}

/* A record batch: a struct of ncols children of n rows; fill fx_child(a, i). */
static inline void fx_struct(struct ArrowArray *a, int64_t n, int64_t ncols) {
    fx_array_new(a, n, 1, ncols);
}

/* ---- schemas ------------------------------------------------------------- */

typedef struct fx_schema_priv {
    char *format, *name;
    struct ArrowSchema **children;
    int64_t n_children;
    struct ArrowSchema *dictionary;
} fx_schema_priv;

static void fx_schema_release(struct ArrowSchema *s) {
    fx_schema_priv *p = s->private_data;
    for (int64_t i = 0; i < p->n_children; i++) {
        if (p->children[i]->release)
            p->children[i]->release(p->children[i]);
        free(p->children[i]);
    }
    if (p->dictionary) {
        if (p->dictionary->release)
            p->dictionary->release(p->dictionary);
        free(p->dictionary);
    }
    free(p->children);
    free(p->format);
    free(p->name);
    free(p);
    s->release = NULL;
    s->private_data = NULL;
    fx_live_schemas--;
    fx_released_schemas++;
}

static inline char *fx_strdup(const char *s) {
    if (!s)
        return NULL;
    char *d = fx_xcalloc(1, strlen(s) + 1);
    memcpy(d, s, strlen(s));
    return d;
}

static inline void fx_schema(struct ArrowSchema *s, const char *format, const char *name,
                             int64_t n_children) {
    fx_schema_priv *p = fx_xcalloc(1, sizeof *p);
    p->format = fx_strdup(format);
    p->name = fx_strdup(name);
    p->n_children = n_children;
    p->children = fx_xcalloc((size_t)n_children, sizeof(struct ArrowSchema *));
    for (int64_t i = 0; i < n_children; i++)
        p->children[i] = fx_xcalloc(1, sizeof(struct ArrowSchema));
    memset(s, 0, sizeof *s);
    s->format = p->format;
    s->name = p->name;
    s->flags = ARROW_FLAG_NULLABLE;
    s->n_children = n_children;
    s->children = n_children ? p->children : NULL;
    s->release = fx_schema_release;
    s->private_data = p;
    fx_live_schemas++;
}

static inline struct ArrowSchema *fx_schema_child(struct ArrowSchema *s, int64_t i) {
    return ((fx_schema_priv *)s->private_data)->children[i];
}

static inline struct ArrowSchema *fx_schema_dictionary(struct ArrowSchema *s) {
    fx_schema_priv *p = s->private_data;
    if (!p->dictionary)
        p->dictionary = fx_xcalloc(1, sizeof(struct ArrowSchema));
    s->dictionary = p->dictionary;
    return p->dictionary;
}

/* Deep copy (for get_schema, which hands the consumer its own schema). */
static inline void fx_schema_copy(const struct ArrowSchema *src, struct ArrowSchema *dst) {
    fx_schema(dst, src->format, src->name, src->n_children);
    dst->flags = src->flags;
    for (int64_t i = 0; i < src->n_children; i++)
        fx_schema_copy(src->children[i], fx_schema_child(dst, i));
    if (src->dictionary)
        fx_schema_copy(src->dictionary, fx_schema_dictionary(dst));
}

/* ---- streams ------------------------------------------------------------- */

typedef struct fx_stream_priv {
    struct ArrowSchema schema;
    struct ArrowArray *batches;
    int n, next, fail_at;
    bool schema_fails;
    char error[128];
} fx_stream_priv;

static int fx_stream_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
    fx_stream_priv *p = st->private_data;
    if (p->schema_fails) {
        snprintf(p->error, sizeof p->error, "fixture: schema unavailable");
        return EIO;
    }
    fx_schema_copy(&p->schema, out);
    return 0;
}

static int fx_stream_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
    fx_stream_priv *p = st->private_data;
    if (p->next == p->fail_at) {
        snprintf(p->error, sizeof p->error, "fixture: producer failed at batch %d", p->next);
        return EIO;
    }
    if (p->next >= p->n) {
        memset(out, 0, sizeof *out); /* end of stream: release == NULL */
        return 0;
    }
    *out = p->batches[p->next];
    p->batches[p->next].release = NULL; /* moved */
    p->next++;
    return 0;
}

static const char *fx_stream_last_error(struct ArrowArrayStream *st) {
    fx_stream_priv *p = st->private_data;
    return p->error[0] ? p->error : NULL;
}

static void fx_stream_release(struct ArrowArrayStream *st) {
    fx_stream_priv *p = st->private_data;
    for (int i = 0; i < p->n; i++)
        if (p->batches[i].release)
            p->batches[i].release(&p->batches[i]);
    if (p->schema.release)
        p->schema.release(&p->schema);
    free(p->batches);
    free(p);
    st->release = NULL;
    st->private_data = NULL;
    fx_live_streams--;
    fx_released_streams++;
}

/*
 * A stream over `schema` (moved) and `n` batches (moved; the caller's array
 * may be on the stack). fail_at >= 0: get_next fails with EIO at that batch.
 */
static inline void fx_stream(struct ArrowArrayStream *st, struct ArrowSchema *schema,
                             struct ArrowArray *batches, int n, int fail_at) {
    fx_stream_priv *p = fx_xcalloc(1, sizeof *p);
    p->schema = *schema;
    schema->release = NULL;
    p->batches = fx_xcalloc((size_t)n, sizeof(struct ArrowArray));
    for (int i = 0; i < n; i++) {
        p->batches[i] = batches[i];
        batches[i].release = NULL;
    }
    p->n = n;
    p->fail_at = fail_at;
    st->get_schema = fx_stream_get_schema;
    st->get_next = fx_stream_get_next;
    st->get_last_error = fx_stream_last_error;
    st->release = fx_stream_release;
    st->private_data = p;
    fx_live_streams++;
}

/* Makes get_schema fail (EIO, "fixture: schema unavailable"). */
static inline void fx_stream_fail_schema(struct ArrowArrayStream *st) {
    ((fx_stream_priv *)st->private_data)->schema_fails = true;
}

#endif /* PGETL_TESTS_ARROW_FIXTURE_H */
