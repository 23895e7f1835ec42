/*
 * Export of built columns and batches through the Arrow C Data Interface.
 *
 * Each exported ArrowArray / ArrowSchema has one private allocation holding
 * its buffer pointers, its children's structs and (for schemas) its strings;
 * the release callback frees that and the buffers it took from the builder,
 * after releasing any child the consumer did not move out. Children are
 * released independently, as the specification requires.
 */
#include "copy/copy_out.h"

/* ---- arrays -------------------------------------------------------------- */

typedef struct array_node {
    void *owned[3];               /* buffers this array frees            */
    const void *buffers[3];
    struct ArrowArray **children; /* into the same allocation            */
} array_node;

static void release_array(struct ArrowArray *a) {
    if (!a || !a->release)
        return;
    array_node *n = a->private_data;
    for (int64_t i = 0; i < a->n_children; i++) {
        struct ArrowArray *ch = n->children[i];
        if (ch->release)
            ch->release(ch);
    }
    for (int i = 0; i < 3; i++)
        pgetl__free(n->owned[i]);
    pgetl__free(n);
    a->release = NULL;
}

/* Allocates the node with room for n children and points `a` at it. */
static array_node *array_new(struct ArrowArray *a, int64_t nbuffers, int64_t nchildren) {
    size_t size = sizeof(array_node) + (size_t)nchildren * (sizeof(struct ArrowArray) +
                                                            sizeof(struct ArrowArray *));
    array_node *n = pgetl__calloc(1, size);
    if (!n)
        return NULL;
    struct ArrowArray *storage = (struct ArrowArray *)(n + 1);
    n->children = (struct ArrowArray **)(storage + nchildren);
    for (int64_t i = 0; i < nchildren; i++)
        n->children[i] = &storage[i];
    memset(a, 0, sizeof *a);
    a->n_buffers = nbuffers;
    a->n_children = nchildren;
    a->buffers = n->buffers;
    a->children = nchildren ? n->children : NULL;
    a->private_data = n;
    a->release = release_array;
    return n;
}

/*
 * Moves a builder buffer into the array, leaving the builder a fresh buffer
 * with the same capacity reserved (a failed reserve only means it grows later).
 * Buffers are never NULL: consumers differ on whether an empty one may be.
 */
static bool take(pgetl_buf *b, array_node *n, int slot) {
    if (!pgetl__arrow_ensure(b, 8))
        return false;
    size_t keep = b->len;
    n->owned[slot] = b->data;
    n->buffers[slot] = b->data;
    pgetl__buf_init(b);
    (void)pgetl__buf_reserve(b, keep);
    return true;
}

pgetl_code pgetl__arrow_col_export(pgetl_arrow_col *c, struct ArrowArray *out, pgetl_error *err) {
    int64_t nbuf = c->layout == PGETL_LAYOUT_VAR ? 3 : 2;
    array_node *n = array_new(out, nbuf, c->child ? 1 : 0);
    if (!n)
        return pgetl__error_oom(err, "Arrow export");
    out->length = c->length;
    out->null_count = c->null_count;
    if (c->child) {
        pgetl_code rc = pgetl__arrow_col_export(c->child, n->children[0], err);
        if (rc != PGETL_OK) {
            out->n_children = 0;
            release_array(out);
            return rc;
        }
    }
    bool ok = true;
    if (c->null_count > 0)
        ok = take(&c->validity, n, 0);
    else
        pgetl__buf_clear(&c->validity); /* all valid: the bitmap may be omitted */
    ok = ok && take(&c->values, n, 1);
    if (ok && nbuf == 3)
        ok = take(&c->data, n, 2);
    c->length = 0;
    c->null_count = 0;
    pgetl__buf_clear(&c->validity);
    pgetl__buf_clear(&c->values);
    pgetl__buf_clear(&c->data);
    /* Only this column's offsets restart here: the child restarted in its own export. */
    if (ok && (c->layout == PGETL_LAYOUT_VAR || c->layout == PGETL_LAYOUT_LIST)) {
        ok = pgetl__arrow_ensure(&c->values, 4);
        if (ok)
            pgetl__arrow_offset_push(c, 0);
    }
    if (!ok) {
        release_array(out);
        return pgetl__error_oom(err, "Arrow export");
    }
    return PGETL_OK;
}

pgetl_code pgetl__arrow_batch_finish(pgetl_arrow_batch *b, struct ArrowArray *out,
                                     pgetl_error *err) {
    array_node *n = array_new(out, 1, b->ncols);
    if (!n)
        return pgetl__error_oom(err, "Arrow export");
    out->length = b->rows;
    for (int i = 0; i < b->ncols; i++) {
        pgetl_code rc = pgetl__arrow_col_export(&b->cols[i], n->children[i], err);
        if (rc != PGETL_OK) {
            out->n_children = i;
            release_array(out);
            return rc;
        }
    }
    b->row_base += b->rows;
    b->rows = 0;
    return PGETL_OK;
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
