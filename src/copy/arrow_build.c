/*
 * Arrow column builders and record batches for query results.
 *
 * A builder owns its buffers (validity bitmap, values or offsets, data) as
 * pgetl_bufs that grow geometrically; a finished batch moves them into the
 * exported ArrowArray, and the next batch starts with capacity for as much
 * as the last one needed, so steady-state batches cost a handful of
 * allocations and no copying. A row is appended column by column; when a
 * decoder fails, or reports that a var-size buffer would pass its int32
 * limit, every column is rolled back to the row's start. The rollback needs
 * no per-row bookkeeping: each column held exactly `rows` values before the
 * row, and the offsets buffers say where their data ended.
 */
#include "copy/copy_out.h"

#include <stdio.h>

bool pgetl__arrow_type_supported(uint32_t oid, int32_t typmod) {
    pgetl_arrow_col probe;
    memset(&probe, 0, sizeof probe);
    if (!pgetl__arrow_kind_set(&probe, oid, typmod))
        return false;
    return probe.layout != PGETL_LAYOUT_LIST || pgetl__arrow_type_supported(probe.elem_oid, typmod);
}

bool pgetl__arrow_col_start(pgetl_arrow_col *c) {
    /* Not recursive: a child starts itself in its own init or export. */
    if (c->layout == PGETL_LAYOUT_VAR || c->layout == PGETL_LAYOUT_LIST) {
        if (!pgetl__arrow_ensure(&c->values, 4))
            return false;
        pgetl__arrow_offset_push(c, 0);
    }
    return true;
}

pgetl_code pgetl__arrow_col_init(pgetl_arrow_col *c, const char *name, uint32_t oid, int32_t typmod,
                                 pgetl_error *err) {
    memset(c, 0, sizeof *c);
    pgetl__buf_init(&c->validity);
    pgetl__buf_init(&c->values);
    pgetl__buf_init(&c->data);
    c->type_oid = oid;
    c->typmod = typmod;
    c->var_limit = PGETL_ARROW_VAR_LIMIT;
    c->name = pgetl__strdup(name ? name : "");
    if (!c->name)
        return pgetl__error_oom(err, "Arrow builder");
    if (!pgetl__arrow_kind_set(c, oid, typmod)) {
        pgetl__arrow_col_reset(c);
        return pgetl_error_set(err, PGETL_EUNSUPPORTED, "no binary decoder for type OID %lu",
                               (unsigned long)oid);
    }
    if (c->layout == PGETL_LAYOUT_LIST) {
        c->child = pgetl__malloc(sizeof *c->child);
        pgetl_code rc = c->child ? pgetl__arrow_col_init(c->child, "item", c->elem_oid, typmod, err)
                                 : pgetl__error_oom(err, "Arrow builder");
        if (rc != PGETL_OK) {
            pgetl__free(c->child);
            c->child = NULL;
            pgetl__arrow_col_reset(c);
            return rc;
        }
    }
    if (!pgetl__arrow_col_start(c)) {
        pgetl__arrow_col_reset(c);
        return pgetl__error_oom(err, "Arrow builder");
    }
    return PGETL_OK;
}

void pgetl__arrow_col_reset(pgetl_arrow_col *c) {
    if (c->child) {
        pgetl__arrow_col_reset(c->child);
        pgetl__free(c->child);
    }
    pgetl__free(c->name);
    pgetl__buf_reset(&c->validity);
    pgetl__buf_reset(&c->values);
    pgetl__buf_reset(&c->data);
    memset(c, 0, sizeof *c);
}

pgetl_dec pgetl__arrow_col_append_null(pgetl_arrow_col *c, pgetl_error *err) {
    switch (c->layout) {
    case PGETL_LAYOUT_FIXED:
        if (!pgetl__arrow_ensure(&c->values, (size_t)c->width))
            return pgetl__arrow_oom(err);
        memset(c->values.data + c->values.len, 0, (size_t)c->width);
        c->values.len += (size_t)c->width;
        break;
    case PGETL_LAYOUT_BOOL:
        if ((c->length & 7) == 0) {
            if (!pgetl__arrow_ensure(&c->values, 1))
                return pgetl__arrow_oom(err);
            c->values.data[c->values.len++] = 0;
        }
        break;
    case PGETL_LAYOUT_VAR:
        if (!pgetl__arrow_ensure(&c->values, 4))
            return pgetl__arrow_oom(err);
        pgetl__arrow_offset_push(c, (int64_t)c->data.len);
        break;
    case PGETL_LAYOUT_LIST:
        if (!pgetl__arrow_ensure(&c->values, 4))
            return pgetl__arrow_oom(err);
        pgetl__arrow_offset_push(c, c->child->length);
        break;
    }
    if (!pgetl__arrow_validity_push(c, false)) {
        /* Undo the value slot so the builder stays consistent. */
        pgetl__arrow_col_truncate(c, c->length);
        return pgetl__arrow_oom(err);
    }
    c->length++;
    return PGETL_DEC_OK;
}

/* Clears the bits at and above `n` in a bitmap holding at least n bits. */
static void bitmap_cut(pgetl_buf *b, int64_t n) {
    b->len = (size_t)((n + 7) / 8);
    if (n & 7)
        b->data[n >> 3] = (char)(b->data[n >> 3] & ((1 << (n & 7)) - 1));
}

static int64_t count_nulls(const pgetl_buf *validity, int64_t from, int64_t to) {
    int64_t nulls = 0;
    for (int64_t i = from; i < to; i++)
        nulls += !((unsigned char)validity->data[i >> 3] >> (i & 7) & 1);
    return nulls;
}

static int32_t offset_at(const pgetl_arrow_col *c, int64_t i) {
    int32_t o;
    memcpy(&o, c->values.data + 4 * i, 4);
    return o;
}

void pgetl__arrow_col_truncate(pgetl_arrow_col *c, int64_t n) {
    /* Appends push the validity bit last, so the bitmap holds exactly `length` bits. */
    c->null_count -= count_nulls(&c->validity, n, c->length);
    bitmap_cut(&c->validity, n);
    switch (c->layout) {
    case PGETL_LAYOUT_FIXED:
        c->values.len = (size_t)n * (size_t)c->width;
        break;
    case PGETL_LAYOUT_BOOL:
        bitmap_cut(&c->values, n);
        break;
    case PGETL_LAYOUT_VAR:
        c->values.len = (size_t)(n + 1) * 4;
        c->data.len = (size_t)offset_at(c, n);
        break;
    case PGETL_LAYOUT_LIST:
        c->values.len = (size_t)(n + 1) * 4;
        pgetl__arrow_col_truncate(c->child, offset_at(c, n));
        break;
    }
    c->length = n;
}

/* ---- batches ------------------------------------------------------------- */

static void set_limit(pgetl_arrow_col *c, int64_t limit) {
    for (; c; c = c->child)
        c->var_limit = limit;
}

pgetl_code pgetl__arrow_batch_init(pgetl_arrow_batch *b, int ncols, const char *const *names,
                                   const uint32_t *oids, const int32_t *typmods, int64_t var_limit,
                                   pgetl_error *err) {
    memset(b, 0, sizeof *b);
    b->cols = pgetl__calloc((size_t)ncols + 1, sizeof *b->cols);
    if (!b->cols)
        return pgetl__error_oom(err, "Arrow batch");
    for (int i = 0; i < ncols; i++) {
        pgetl_code rc = pgetl__arrow_col_init(&b->cols[i], names[i], oids[i], typmods[i], err);
        if (rc != PGETL_OK) {
            pgetl_error_prefix(err, "column \"%s\": ", names[i]);
            pgetl__arrow_batch_reset(b);
            return rc;
        }
        b->ncols = i + 1;
        set_limit(&b->cols[i], var_limit > 0 ? var_limit : PGETL_ARROW_VAR_LIMIT);
    }
    return PGETL_OK;
}

void pgetl__arrow_batch_reset(pgetl_arrow_batch *b) {
    for (int i = 0; i < b->ncols; i++)
        pgetl__arrow_col_reset(&b->cols[i]);
    pgetl__free(b->cols);
    memset(b, 0, sizeof *b);
}

pgetl_dec pgetl__arrow_batch_append_row(pgetl_arrow_batch *b, const pgetl_field *fields,
                                        pgetl_error *err) {
    int i = 0;
    pgetl_dec r = PGETL_DEC_OK;
    for (; i < b->ncols; i++) {
        r = pgetl__arrow_col_append(&b->cols[i], &fields[i], err);
        if (r != PGETL_DEC_OK)
            break;
    }
    if (r == PGETL_DEC_OK) {
        b->rows++;
        return r;
    }
    for (int k = 0; k <= i && k < b->ncols; k++)
        pgetl__arrow_col_truncate(&b->cols[k], b->rows);
    if (r == PGETL_DEC_FULL && b->rows == 0) {
        pgetl_error_set(err, PGETL_EOVERFLOW,
                        "value is too large for one Arrow batch (int32 offsets; limit %lld bytes "
                        "or elements)",
                        (long long)b->cols[i].var_limit);
        r = PGETL_DEC_ERROR;
    }
    if (r == PGETL_DEC_ERROR)
        pgetl_error_prefix(err, "column \"%s\" (row %lld): ", b->cols[i].name,
                           (long long)(b->row_base + b->rows + 1));
    return r;
}
