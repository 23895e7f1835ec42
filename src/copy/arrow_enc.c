/*
 * Choosing and binding per-column encoders. The choice is made once per
 * stream from (Arrow type, column type, column typmod); a pair that would
 * change a value (narrowing, reinterpreting an integer as a date, adding or
 * dropping a time zone, rounding to a column's declared precision) has no
 * encoder and fails here, before anything is sent.
 */
#include "copy/arrow_int.h"

#include <stdio.h>

/* Fractional second digits an Arrow unit carries. */
static int unit_digits(pgetl_arrow_unit u) {
    static const int digits[] = {0, 0, 3, 6, 9};
    return digits[u];
}

/* PostgreSQL numeric typmod: ((precision << 16) | scale) + VARHDRSZ; PG 15 allows negative scale.
 */
static int32_t numeric_typmod_scale(int32_t typmod) {
    return (int32_t)(((typmod - 4) & 0x7ff) ^ 1024) - 1024;
}

static bool is_time_kind(pgetl_arrow_kind k) {
    return k == PGETL_AK_TIMESTAMP || k == PGETL_AK_TIME32 || k == PGETL_AK_TIME64 ||
           k == PGETL_AK_DURATION;
}

/*
 * A reason the column's declared precision would round the Arrow values, or
 * NULL. PostgreSQL's receive functions apply typmods silently (numeric(10,2)
 * rounds 1.005, timestamp(0) rounds 12:00:00.6), so pgetl refuses those pairs.
 */
static const char *typmod_loss(const pgetl_arrow_type *t, const pgetl_column_info *col, char *buf,
                               size_t size) {
    if (col->typmod < 0)
        return NULL;
    uint32_t oid = col->type_oid;
    if (oid == PGETL_OID_NUMERIC) {
        int32_t cs = numeric_typmod_scale(col->typmod);
        int32_t src = t->kind == PGETL_AK_DECIMAL128 ? t->scale : 0;
        if (src > cs) {
            snprintf(buf, size, "values with %d decimal places would be rounded to %d", (int)src,
                     (int)cs);
            return buf;
        }
        return NULL;
    }
    if ((oid == PGETL_OID_TIMESTAMP || oid == PGETL_OID_TIMESTAMPTZ || oid == PGETL_OID_TIME) &&
        is_time_kind(t->kind) && unit_digits(t->unit) > col->typmod) {
        snprintf(buf, size, "values with %d fractional second digits would be rounded to %d",
                 unit_digits(t->unit), (int)col->typmod);
        return buf;
    }
    if (oid == PGETL_OID_INTERVAL && t->kind == PGETL_AK_DURATION) {
        snprintf(buf, size, "the column's interval fields or precision would truncate values");
        return buf;
    }
    return NULL;
}

static bool pick_scalar(pgetl_arrow_col *c, const pgetl_arrow_type *t, uint32_t oid) {
    if (t->kind == PGETL_AK_DECIMAL128 && t->scale < 0)
        return false;
    return pgetl__arrow_enc_pick_num(c, t, oid) || pgetl__arrow_enc_pick_time(c, t, oid) ||
           pgetl__arrow_enc_pick_var(c, t, oid);
}

/* Extra words for a refused timestamp pair, which is the one users hit most. */
static const char *tz_reason(const pgetl_arrow_field *f, const pgetl_arrow_type *t, uint32_t oid) {
    (void)f;
    if (t->kind != PGETL_AK_TIMESTAMP)
        return NULL;
    if (oid == PGETL_OID_TIMESTAMP && t->has_tz)
        return "a zoned Arrow timestamp is an instant; storing it in timestamp without time zone "
               "would drop the zone (use a timestamptz column, or strip the zone in the data)";
    if (oid == PGETL_OID_TIMESTAMPTZ && !t->has_tz)
        return "an Arrow timestamp without time zone has no instant; storing it in timestamptz "
               "would assume a zone (give the Arrow field a time zone, e.g. UTC)";
    return NULL;
}

static pgetl_code refuse(pgetl_error *err, const pgetl_arrow_field *f, const pgetl_column_info *col,
                         const char *reason) {
    char desc[160];
    pgetl__arrow_field_describe(f, desc, sizeof desc);
    return pgetl_error_set(err, PGETL_ESCHEMA,
                           "column \"%s\": cannot load Arrow type \"%s\" into %s%s%s", col->name,
                           desc, col->type_name, reason ? ": " : "", reason ? reason : "");
}

pgetl_code pgetl__arrow_col_choose(pgetl_arrow_col *c, pgetl_arrow_col *child,
                                   const pgetl_arrow_field *f, const pgetl_column_info *col,
                                   pgetl_error *err) {
    memset(c, 0, sizeof *c);
    c->field = f;
    c->column = col;
    char why[160];
    pgetl_arrow_kind k = f->type.kind;
    if (k == PGETL_AK_LIST || k == PGETL_AK_LARGE_LIST || k == PGETL_AK_DICTIONARY) {
        bool list = k != PGETL_AK_DICTIONARY;
        if (!child)
            return pgetl_error_set(err, PGETL_EINVAL, "column \"%s\": no child encoder slot",
                                   col->name);
        memset(child, 0, sizeof *child);
        child->field = f;
        child->column = col;
        if (list && col->elem_oid == 0)
            return refuse(err, f, col, "a list loads only into an array column");
        uint32_t oid = list ? col->elem_oid : col->type_oid;
        if (!pick_scalar(child, &f->child, oid)) {
            const char *r = tz_reason(f, &f->child, oid);
            return refuse(err, f, col, r ? r : list ? "the element type does not convert" : NULL);
        }
        const char *loss = list ? NULL : typmod_loss(&f->child, col, why, sizeof why);
        if (loss)
            return refuse(err, f, col, loss);
        c->child = child;
        c->elem_oid = col->elem_oid;
        if (!pgetl__arrow_enc_pick_nest(c, f))
            return refuse(err, f, col, NULL);
        return PGETL_OK;
    }
    if (!pick_scalar(c, &f->type, col->type_oid))
        return refuse(err, f, col, tz_reason(f, &f->type, col->type_oid));
    const char *loss = typmod_loss(&f->type, col, why, sizeof why);
    if (loss)
        return refuse(err, f, col, loss);
    return PGETL_OK;
}

void pgetl__arrow_col_bind(pgetl_arrow_col *c, const struct ArrowArray *a, int64_t parent_offset) {
    const void *const *bufs = (const void *const *)a->buffers;
    c->v.offset = a->offset + parent_offset;
    /* A zero null_count lets the bitmap be ignored (it may even be garbage). */
    c->v.validity = (a->n_buffers > 0 && a->null_count != 0) ? bufs[0] : NULL;
    c->v.data = a->n_buffers > 1 ? bufs[1] : NULL;
    c->v.data2 = a->n_buffers > 2 ? bufs[2] : NULL;
    c->v.vbufs = a->n_buffers > 2 ? bufs + 2 : NULL;
    if (c->child) {
        if (c->field->type.kind == PGETL_AK_DICTIONARY)
            pgetl__arrow_col_bind(c->child, a->dictionary, 0);
        else
            pgetl__arrow_col_bind(c->child, a->children[0], 0);
    }
}

uint64_t pgetl__arrow_validity_word(const pgetl_arrow_view *v, int64_t i, int n) {
    if (!v->validity)
        return ~(uint64_t)0;
    int64_t p = v->offset + i;
    const uint8_t *s = v->validity + (p >> 3);
    int sh = (int)(p & 7);
    int nbytes = (sh + n + 7) / 8; /* only the bytes holding bits [p, p + n): at most 9 */
    uint64_t w = 0;
    for (int k = 0; k < nbytes && k < 8; k++)
        w |= (uint64_t)s[k] << (8 * k);
    w >>= sh;
    if (nbytes == 9)
        w |= (uint64_t)s[8] << (64 - sh);
    return w;
}
