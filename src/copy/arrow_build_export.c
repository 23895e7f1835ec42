/*
 * Export of built batches and schemas through the Arrow C Data Interface.
 *
 * A finished batch is copied into one block (every buffer 64-byte aligned,
 * as Arrow recommends) and the builders keep their own buffers for the next
 * batch. One block per batch is the arena of STYLE 7: the builders stop
 * allocating once they have seen a full batch, and the allocator sees one
 * same-sized request per batch, which glibc serves from mmap and returns at
 * once when freed; handing out the builders' growing buffers instead let
 * glibc's dynamic mmap threshold park freed batches in the heap, and peak
 * memory crept from one batch to three (bench/README.md, "Query to Arrow").
 * The copy costs about 1 ms per 5 MB batch.
 *
 * Every exported array (the struct and each column, list children too) holds
 * a reference on the block, so a consumer may move a child out and release
 * it after its parent, as the specification allows; the last release frees
 * the block.
 */
#include "copy/copy_out.h"

#include <stdatomic.h>

#define ALIGN 64
#define ALIGNED(n) (((n) + (size_t)(ALIGN - 1)) & ~(size_t)(ALIGN - 1))

/* ---- arrays -------------------------------------------------------------- */

typedef struct batch_block {
    atomic_llong refs;
} batch_block;

typedef struct array_node {
    batch_block *block;
    const void *buffers[3];
    struct ArrowArray **children; /* into the same allocation */
} array_node;

static void block_unref(batch_block *b) {
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        pgetl__free(b);
}

static void release_array(struct ArrowArray *a) {
    if (!a || !a->release)
        return;
    array_node *n = a->private_data;
    for (int64_t i = 0; i < a->n_children; i++) {
        struct ArrowArray *ch = n->children[i];
        if (ch->release)
            ch->release(ch);
    }
    block_unref(n->block);
    pgetl__free(n);
    a->release = NULL;
}

/* Allocates the node with room for n children, takes a block reference, points `a` at it. */
static array_node *array_new(struct ArrowArray *a, batch_block *block, int64_t nbuffers,
                             int64_t nchildren) {
    size_t size = sizeof(array_node) +
                  (size_t)nchildren * (sizeof(struct ArrowArray) + sizeof(struct ArrowArray *));
    array_node *n = pgetl__calloc(1, size);
    if (!n)
        return NULL;
    struct ArrowArray *storage = (struct ArrowArray *)(n + 1);
    n->children = (struct ArrowArray **)(storage + nchildren);
    for (int64_t i = 0; i < nchildren; i++)
        n->children[i] = &storage[i];
    n->block = block;
    atomic_fetch_add(&block->refs, 1);
    memset(a, 0, sizeof *a);
    a->n_buffers = nbuffers;
    a->n_children = nchildren;
    a->buffers = n->buffers;
    a->children = nchildren ? n->children : NULL;
    a->private_data = n;
    a->release = release_array;
    return n;
}

/* Bytes a column's buffers take in the block (children included). */
static size_t col_bytes(const pgetl_arrow_col *c) {
    size_t n = ALIGNED(c->values.len);
    if (c->null_count > 0)
        n += ALIGNED(c->validity.len);
    if (c->layout == PGETL_LAYOUT_VAR)
        n += ALIGNED(c->data.len);
    return n + (c->child ? col_bytes(c->child) : 0);
}

/* Copies one buffer to the cursor; an empty buffer still gets a valid pointer. */
static const void *put(uint8_t **cursor, const pgetl_buf *b) {
    uint8_t *dst = *cursor;
    if (b->len)
        memcpy(dst, b->data, b->len);
    *cursor += ALIGNED(b->len);
    return dst;
}

/* Empties a builder for the next batch, keeping its memory. */
static void col_restart(pgetl_arrow_col *c) {
    c->length = 0;
    c->null_count = 0;
    pgetl__buf_clear(&c->validity);
    pgetl__buf_clear(&c->values);
    pgetl__buf_clear(&c->data);
    /* Capacity for the starting offset is always there: it held a whole batch. */
    if (c->layout == PGETL_LAYOUT_VAR || c->layout == PGETL_LAYOUT_LIST)
        pgetl__arrow_offset_push(c, 0);
}

static pgetl_code col_export(pgetl_arrow_col *c, batch_block *block, uint8_t **cursor,
                             struct ArrowArray *out, pgetl_error *err) {
    int64_t nbuf = c->layout == PGETL_LAYOUT_VAR ? 3 : 2;
    array_node *n = array_new(out, block, nbuf, c->child ? 1 : 0);
    if (!n)
        return pgetl__error_oom(err, "Arrow export");
    out->length = c->length;
    out->null_count = c->null_count;
    n->buffers[0] = c->null_count > 0 ? put(cursor, &c->validity) : NULL;
    n->buffers[1] = put(cursor, &c->values);
    if (nbuf == 3)
        n->buffers[2] = put(cursor, &c->data);
    if (c->child) {
        pgetl_code rc = col_export(c->child, block, cursor, n->children[0], err);
        if (rc != PGETL_OK) {
            out->n_children = 0;
            release_array(out);
            return rc;
        }
    }
    return PGETL_OK;
}

static void col_restart_all(pgetl_arrow_col *c) {
    for (; c; c = c->child)
        col_restart(c);
}

pgetl_code pgetl__arrow_batch_finish(pgetl_arrow_batch *b, struct ArrowArray *out,
                                     pgetl_error *err) {
    size_t total = 0;
    for (int i = 0; i < b->ncols; i++)
        total += col_bytes(&b->cols[i]);
    /* Room to align the start, and slack so empty buffers at the end stay in bounds. */
    batch_block *block = pgetl__malloc(ALIGNED(sizeof(batch_block)) + total + 2 * ALIGN);
    if (!block)
        return pgetl__error_oom(err, "Arrow export");
    atomic_init(&block->refs, 1); /* ours, dropped at the end */
    uint8_t *cursor = (uint8_t *)ALIGNED((uintptr_t)(block + 1));
    pgetl_code rc = PGETL_OK;
    array_node *n = array_new(out, block, 1, b->ncols);
    if (!n)
        rc = pgetl__error_oom(err, "Arrow export");
    for (int i = 0; rc == PGETL_OK && i < b->ncols; i++) {
        rc = col_export(&b->cols[i], block, &cursor, n->children[i], err);
        if (rc != PGETL_OK) {
            out->n_children = i;
            release_array(out);
        }
    }
    if (rc == PGETL_OK) {
        out->length = b->rows;
        for (int i = 0; i < b->ncols; i++)
            col_restart_all(&b->cols[i]);
        b->row_base += b->rows;
        b->rows = 0;
    }
    block_unref(block);
    return rc;
}

/* ---- schemas ------------------------------------------------------------- */

typedef struct schema_node {
    struct ArrowSchema **children;
} schema_node;

static void release_schema(struct ArrowSchema *s) {
    if (!s || !s->release)
        return;
    schema_node *n = s->private_data;
    for (int64_t i = 0; i < s->n_children; i++) {
        struct ArrowSchema *ch = n->children[i];
        if (ch->release)
            ch->release(ch);
    }
    pgetl__free(n);
    s->release = NULL;
}

/* One allocation: node, child structs, child pointers, then format and name. */
static schema_node *schema_new(struct ArrowSchema *s, const char *format, const char *name,
                               int64_t flags, int64_t nchildren) {
    size_t flen = strlen(format) + 1, nlen = strlen(name) + 1;
    size_t size = sizeof(schema_node) +
                  (size_t)nchildren * (sizeof(struct ArrowSchema) + sizeof(struct ArrowSchema *)) +
                  flen + nlen;
    schema_node *n = pgetl__calloc(1, size);
    if (!n)
        return NULL;
    struct ArrowSchema *storage = (struct ArrowSchema *)(n + 1);
    n->children = (struct ArrowSchema **)(storage + nchildren);
    char *strings = (char *)(n->children + nchildren);
    for (int64_t i = 0; i < nchildren; i++)
        n->children[i] = &storage[i];
    memcpy(strings, format, flen);
    memcpy(strings + flen, name, nlen);
    memset(s, 0, sizeof *s);
    s->format = strings;
    s->name = strings + flen;
    s->flags = flags;
    s->n_children = nchildren;
    s->children = nchildren ? n->children : NULL;
    s->private_data = n;
    s->release = release_schema;
    return n;
}

pgetl_code pgetl__arrow_col_schema(const pgetl_arrow_col *c, struct ArrowSchema *out,
                                   pgetl_error *err) {
    schema_node *n =
        schema_new(out, c->format, c->name ? c->name : "", ARROW_FLAG_NULLABLE, c->child ? 1 : 0);
    if (!n)
        return pgetl__error_oom(err, "Arrow schema");
    if (c->child) {
        pgetl_code rc = pgetl__arrow_col_schema(c->child, n->children[0], err);
        if (rc != PGETL_OK) {
            out->n_children = 0;
            release_schema(out);
            return rc;
        }
    }
    return PGETL_OK;
}

pgetl_code pgetl__arrow_batch_schema(const pgetl_arrow_batch *b, struct ArrowSchema *out,
                                     pgetl_error *err) {
    schema_node *n = schema_new(out, "+s", "", 0, b->ncols);
    if (!n)
        return pgetl__error_oom(err, "Arrow schema");
    for (int i = 0; i < b->ncols; i++) {
        pgetl_code rc = pgetl__arrow_col_schema(&b->cols[i], n->children[i], err);
        if (rc != PGETL_OK) {
            out->n_children = i;
            release_schema(out);
            return rc;
        }
    }
    return PGETL_OK;
}
