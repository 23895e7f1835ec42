/*
 * Encoders for variable-width and byte types: utf8/large_utf8/string_view
 * into text-like columns (jsonb gets its version byte), binary/large_binary/
 * binary_view into bytea, fixed_size_binary into bytea and (width 16) uuid.
 * PostgreSQL checks UTF-8 validity, varchar(n) limits and JSON syntax on
 * receive, so those are not repeated here.
 */
#include "copy/arrow_int.h"

/* Largest field PostgreSQL accepts (MaxAllocSize - 1 less the varlena header). */
#define FIELD_MAX ((int64_t)0x3fffffff - 4)

static const char *const TOO_LONG = "value longer than 1 GB";

/*
 * Reads value i of an offsets-based array as (pointer, length). An empty
 * value may come with a NULL data buffer (validation allows that when the
 * offsets span no bytes), and NULL + offset is undefined even unread (found
 * by fuzz/fuzz_arrow_import.c under UBSan).
 */
#define SPAN(T)                                                                                    \
    static inline const char *span_##T(const pgetl_arrow_col *c, int64_t i, int64_t *len) {        \
        const T *o = (const T *)c->v.data + c->v.offset + i;                                       \
        *len = (int64_t)o[1] - (int64_t)o[0];                                                      \
        return *len ? (const char *)c->v.data2 + o[0] : "";                                        \
    }
SPAN(int32_t)
SPAN(int64_t)

/* Reads a 16-byte view: inline when short, else (buffer index, offset). */
static inline const char *span_view(const pgetl_arrow_col *c, int64_t i, int64_t *len) {
    const uint8_t *v = (const uint8_t *)c->v.data + 16 * (c->v.offset + i);
    int32_t n, idx, off;
    memcpy(&n, v, 4);
    *len = n;
    if (n <= 12)
        return (const char *)v + 4;
    memcpy(&idx, v + 8, 4);
    memcpy(&off, v + 12, 4);
    return (const char *)c->v.vbufs[idx] + off;
}

#define ENC_SPAN(name, SPANFN, EXTRA)                                                              \
    static const char *name(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {                   \
        int64_t n;                                                                                 \
        const char *p = SPANFN(c, i, &n);                                                          \
        if (n > FIELD_MAX)                                                                         \
            return TOO_LONG;                                                                       \
        pgetl__buf_be32_unchecked(b, (uint32_t)(n + EXTRA));                                       \
        if (EXTRA)                                                                                 \
            pgetl__buf_byte_unchecked(b, 1); /* jsonb binary format version */                     \
        pgetl__buf_append_unchecked(b, p, (size_t)n);                                              \
        return NULL;                                                                               \
    }                                                                                              \
    static size_t name##_size(const pgetl_arrow_col *c, int64_t i) {                               \
        int64_t n;                                                                                 \
        (void)SPANFN(c, i, &n);                                                                    \
        return n > FIELD_MAX ? 0 : (size_t)n;                                                      \
    }
ENC_SPAN(enc_s32, span_int32_t, 0)
ENC_SPAN(enc_s64, span_int64_t, 0)
ENC_SPAN(enc_view, span_view, 0)
ENC_SPAN(enc_s32_jsonb, span_int32_t, 1)
ENC_SPAN(enc_s64_jsonb, span_int64_t, 1)
ENC_SPAN(enc_view_jsonb, span_view, 1)

static const char *enc_fixed(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    size_t w = c->fixed - 4;
    pgetl__buf_be32_unchecked(b, (uint32_t)w);
    pgetl__buf_append_unchecked(b, (const char *)c->v.data + (size_t)(c->v.offset + i) * w, w);
    return NULL;
}

static bool is_text_oid(uint32_t oid) {
    return oid == PGETL_OID_TEXT || oid == PGETL_OID_VARCHAR || oid == PGETL_OID_BPCHAR ||
           oid == PGETL_OID_JSON || oid == PGETL_OID_NAME || oid == PGETL_OID_JSONB;
}

static void set(pgetl_arrow_col *c, pgetl_arrow_enc_fn enc, pgetl_arrow_size_fn size,
                size_t fixed) {
    c->enc = enc;
    c->size = size;
    c->fixed = fixed;
}

bool pgetl__arrow_enc_pick_var(pgetl_arrow_col *c, const pgetl_arrow_type *t, uint32_t oid) {
    bool jsonb = oid == PGETL_OID_JSONB;
    /* 4 bytes of length, plus jsonb's version byte. */
    size_t fixed = jsonb ? 5 : 4;
    switch (t->kind) {
    case PGETL_AK_UTF8:
    case PGETL_AK_LARGE_UTF8:
    case PGETL_AK_UTF8_VIEW:
        if (!is_text_oid(oid))
            return false;
        if (t->kind == PGETL_AK_UTF8)
            set(c, jsonb ? enc_s32_jsonb : enc_s32, jsonb ? enc_s32_jsonb_size : enc_s32_size,
                fixed);
        else if (t->kind == PGETL_AK_LARGE_UTF8)
            set(c, jsonb ? enc_s64_jsonb : enc_s64, jsonb ? enc_s64_jsonb_size : enc_s64_size,
                fixed);
        else
            set(c, jsonb ? enc_view_jsonb : enc_view, jsonb ? enc_view_jsonb_size : enc_view_size,
                fixed);
        c->jsonb = jsonb;
        return true;
    case PGETL_AK_BINARY:
        if (oid != PGETL_OID_BYTEA)
            return false;
        set(c, enc_s32, enc_s32_size, 4);
        return true;
    case PGETL_AK_LARGE_BINARY:
        if (oid != PGETL_OID_BYTEA)
            return false;
        set(c, enc_s64, enc_s64_size, 4);
        return true;
    case PGETL_AK_BINARY_VIEW:
        if (oid != PGETL_OID_BYTEA)
            return false;
        set(c, enc_view, enc_view_size, 4);
        return true;
    case PGETL_AK_FIXED_BINARY:
        if (oid == PGETL_OID_BYTEA || (oid == PGETL_OID_UUID && t->width == 16)) {
            set(c, enc_fixed, NULL, 4 + (size_t)t->width);
            return true;
        }
        return false;
    default:
        return false;
    }
}
