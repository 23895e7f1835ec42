/*
 * Encoders for composite Arrow types: dictionary-encoded columns (polars'
 * Categorical) look the index up and hand the value to the value type's
 * encoder; lists become one-dimensional PostgreSQL arrays in the binary
 * array format (ndim, hasnull, element OID, then dimension and lower bound
 * 1, then one field per element) with each element written by the element
 * type's encoder. Both reuse the scalar encoders through c->child.
 */
#include "copy/arrow_int.h"

#define AT(T, c, i) (((const T *)(c)->v.data)[(c)->v.offset + (i)])

static const char *put_child(const pgetl_arrow_col *k, int64_t j, pgetl_buf *b) {
    if (!pgetl__arrow_valid(&k->v, j)) {
        pgetl__buf_be32_unchecked(b, (uint32_t)-1);
        return NULL;
    }
    return k->enc(k, j, b);
}

#define DICT(T)                                                                                    \
    static const char *enc_dict_##T(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {           \
        return put_child(c->child, (int64_t)AT(T, c, i), b);                                       \
    }                                                                                              \
    static size_t size_dict_##T(const pgetl_arrow_col *c, int64_t i) {                             \
        int64_t k = (int64_t)AT(T, c, i);                                                          \
        /* A null dictionary entry may hold any bytes; it costs only its -1. */                    \
        return pgetl__arrow_valid(&c->child->v, k) ? c->child->size(c->child, k) : 0;              \
    }
DICT(int8_t)
DICT(int16_t)
DICT(int32_t)
DICT(int64_t)
DICT(uint8_t)
DICT(uint16_t)
DICT(uint32_t)
DICT(uint64_t)

static void put_be32_at(pgetl_buf *b, size_t pos, uint32_t v) {
    unsigned char *p = (unsigned char *)b->data + pos;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Array header: 4 length + ndim + hasnull + elemtype, then dim + lbound. */
#define ARRAY_HEADER 24

static const char *put_array(const pgetl_arrow_col *c, int64_t start, int64_t end, pgetl_buf *b) {
    const pgetl_arrow_col *k = c->child;
    int64_t n = end - start;
    if (n > INT32_MAX)
        return "list has more than 2147483647 elements";
    size_t at = b->len;
    pgetl__buf_be32_unchecked(b, 0); /* field length, patched below */
    pgetl__buf_be32_unchecked(b, n ? 1 : 0);
    pgetl__buf_be32_unchecked(b, 0); /* hasnull, patched below */
    pgetl__buf_be32_unchecked(b, c->elem_oid);
    if (n) {
        pgetl__buf_be32_unchecked(b, (uint32_t)n);
        pgetl__buf_be32_unchecked(b, 1);
    }
    uint32_t hasnull = 0;
    for (int64_t j = start; j < end; j++) {
        if (!pgetl__arrow_valid(&k->v, j)) {
            pgetl__buf_be32_unchecked(b, (uint32_t)-1);
            hasnull = 1;
            continue;
        }
        const char *why = k->enc(k, j, b);
        if (why)
            return why;
    }
    put_be32_at(b, at, (uint32_t)(b->len - at - 4));
    put_be32_at(b, at + 8, hasnull);
    return NULL;
}

static size_t array_size(const pgetl_arrow_col *c, int64_t start, int64_t end) {
    const pgetl_arrow_col *k = c->child;
    size_t n = (size_t)(end - start) * k->fixed;
    if (k->size)
        for (int64_t j = start; j < end; j++)
            if (pgetl__arrow_valid(&k->v, j))
                n += k->size(k, j);
    return n;
}

#define LIST(T)                                                                                    \
    static const char *enc_list_##T(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {           \
        const T *o = (const T *)c->v.data + c->v.offset + i;                                       \
        return put_array(c, (int64_t)o[0], (int64_t)o[1], b);                                      \
    }                                                                                              \
    static size_t size_list_##T(const pgetl_arrow_col *c, int64_t i) {                             \
        const T *o = (const T *)c->v.data + c->v.offset + i;                                       \
        return array_size(c, (int64_t)o[0], (int64_t)o[1]);                                        \
    }
LIST(int32_t)
LIST(int64_t)

typedef struct dict_entry {
    pgetl_arrow_kind index;
    pgetl_arrow_enc_fn enc;
    pgetl_arrow_size_fn size;
} dict_entry;

static const dict_entry dict_table[] = {
    {PGETL_AK_INT8, enc_dict_int8_t, size_dict_int8_t},
    {PGETL_AK_INT16, enc_dict_int16_t, size_dict_int16_t},
    {PGETL_AK_INT32, enc_dict_int32_t, size_dict_int32_t},
    {PGETL_AK_INT64, enc_dict_int64_t, size_dict_int64_t},
    {PGETL_AK_UINT8, enc_dict_uint8_t, size_dict_uint8_t},
    {PGETL_AK_UINT16, enc_dict_uint16_t, size_dict_uint16_t},
    {PGETL_AK_UINT32, enc_dict_uint32_t, size_dict_uint32_t},
    {PGETL_AK_UINT64, enc_dict_uint64_t, size_dict_uint64_t},
};

bool pgetl__arrow_enc_pick_nest(pgetl_arrow_col *c, const pgetl_arrow_field *f) {
    if (!c->child)
        return false;
    if (f->type.kind == PGETL_AK_DICTIONARY) {
        for (size_t k = 0; k < sizeof dict_table / sizeof dict_table[0]; k++) {
            if (dict_table[k].index == f->index.kind) {
                c->enc = dict_table[k].enc;
                c->size = c->child->size ? dict_table[k].size : NULL;
                c->fixed = c->child->fixed;
                return true;
            }
        }
        return false;
    }
    if (f->type.kind == PGETL_AK_LIST || f->type.kind == PGETL_AK_LARGE_LIST) {
        bool large = f->type.kind == PGETL_AK_LARGE_LIST;
        c->enc = large ? enc_list_int64_t : enc_list_int32_t;
        c->size = large ? size_list_int64_t : size_list_int32_t;
        c->fixed = ARRAY_HEADER;
        return true;
    }
    return false;
}
