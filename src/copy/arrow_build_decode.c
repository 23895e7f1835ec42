/*
 * Per-type decoders: one PostgreSQL binary value (its `send` format) into an
 * Arrow column builder. A column's decoder is chosen once, from its type OID
 * (pgetl__arrow_kind_set), and called through a function pointer for every
 * value: no switch per value. Every decoder checks the value's length and
 * contents before using them, since the bytes come from the server.
 *
 * Values Arrow cannot hold are errors, never silently changed: 'infinity'
 * dates and timestamps (PostgreSQL keeps them as INT32/INT64 min/max, which
 * would read as real instants), intervals whose microseconds overflow int64
 * nanoseconds, and multi-dimensional arrays.
 */
#include "copy/copy_out.h"

#include <stdio.h>

/* Days and microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_US INT64_C(946684800000000)
#define USECS_PER_DAY INT64_C(86400000000)

pgetl_dec pgetl__arrow_oom(pgetl_error *err) {
    pgetl__error_oom(err, "Arrow builder");
    return PGETL_DEC_ERROR;
}

pgetl_dec pgetl__arrow_bad(pgetl_error *err, pgetl_code code, const char *fmt, ...) {
    char msg[PGETL_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pgetl_error_set(err, code, "%s", msg);
    return PGETL_DEC_ERROR;
}

static pgetl_dec bad_len(pgetl_error *err, const char *type, int32_t len, int want) {
    return pgetl__arrow_bad(err, PGETL_EDATA, "%s value has %ld bytes, expected %d", type,
                            (long)len, want);
}

/* Reserves one fixed-width slot, marks it valid and returns where to write. */
static inline uint8_t *fixed_slot(pgetl_arrow_col *c, size_t w) {
    if (!pgetl__arrow_ensure(&c->values, w) || !pgetl__arrow_validity_push(c, true))
        return NULL;
    uint8_t *dst = (uint8_t *)c->values.data + c->values.len;
    c->values.len += w;
    c->length++;
    return dst;
}

static pgetl_dec dec_int2(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 2)
        return bad_len(err, "int2", len, 2);
    uint8_t *d = fixed_slot(c, 2);
    if (!d)
        return pgetl__arrow_oom(err);
    int16_t v = (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
    memcpy(d, &v, 2);
    return PGETL_DEC_OK;
}

static pgetl_dec dec_int4(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 4)
        return bad_len(err, "int4", len, 4);
    uint8_t *d = fixed_slot(c, 4);
    if (!d)
        return pgetl__arrow_oom(err);
    uint32_t v = pgetl__get_be32(p);
    memcpy(d, &v, 4);
    return PGETL_DEC_OK;
}

static pgetl_dec dec_int8(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 8)
        return bad_len(err, "int8", len, 8);
    uint8_t *d = fixed_slot(c, 8);
    if (!d)
        return pgetl__arrow_oom(err);
    uint64_t v = pgetl__get_be64(p);
    memcpy(d, &v, 8);
    return PGETL_DEC_OK;
}

/* float4/float8 travel as their IEEE bit patterns, so the int decoders' bytes are exact. */
static pgetl_dec dec_float4(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 4)
        return bad_len(err, "float4", len, 4);
    return dec_int4(c, p, len, err);
}

static pgetl_dec dec_float8(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 8)
        return bad_len(err, "float8", len, 8);
    return dec_int8(c, p, len, err);
}

static pgetl_dec dec_bool(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 1)
        return bad_len(err, "bool", len, 1);
    int64_t i = c->length;
    if ((i & 7) == 0) {
        if (!pgetl__arrow_ensure(&c->values, 1))
            return pgetl__arrow_oom(err);
        c->values.data[c->values.len++] = 0;
    }
    if (!pgetl__arrow_validity_push(c, true))
        return pgetl__arrow_oom(err);
    if (p[0]) /* boolrecv: any non-zero byte is true */
        c->values.data[i >> 3] = (char)(c->values.data[i >> 3] | (1 << (i & 7)));
    c->length++;
    return PGETL_DEC_OK;
}

static pgetl_dec dec_date(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 4)
        return bad_len(err, "date", len, 4);
    int32_t d = (int32_t)pgetl__get_be32(p);
    int32_t out;
    if (d == INT32_MIN || d == INT32_MAX)
        return pgetl__arrow_bad(err, PGETL_EOVERFLOW,
                                "date '%s' has no Arrow date32 value (cast it, or map it with "
                                "CASE/NULLIF)",
                                d == INT32_MIN ? "-infinity" : "infinity");
    if (__builtin_add_overflow(d, PG_EPOCH_DAYS, &out))
        return pgetl__arrow_bad(err, PGETL_EOVERFLOW, "date %ld is out of range", (long)d);
    uint8_t *dst = fixed_slot(c, 4);
    if (!dst)
        return pgetl__arrow_oom(err);
    memcpy(dst, &out, 4);
    return PGETL_DEC_OK;
}

static pgetl_dec dec_time(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 8)
        return bad_len(err, "time", len, 8);
    int64_t v = (int64_t)pgetl__get_be64(p);
    if (v < 0 || v > USECS_PER_DAY) /* time_recv's own check; 24:00:00 is valid */
        return pgetl__arrow_bad(err, PGETL_EDATA, "time value %lld us is out of range",
                                (long long)v);
    uint8_t *dst = fixed_slot(c, 8);
    if (!dst)
        return pgetl__arrow_oom(err);
    memcpy(dst, &v, 8);
    return PGETL_DEC_OK;
}

static pgetl_dec dec_timestamp(pgetl_arrow_col *c, const uint8_t *p, int32_t len,
                               pgetl_error *err) {
    if (len != 8)
        return bad_len(err, "timestamp", len, 8);
    int64_t v = (int64_t)pgetl__get_be64(p);
    int64_t out;
    if (v == INT64_MIN || v == INT64_MAX)
        return pgetl__arrow_bad(err, PGETL_EOVERFLOW,
                                "timestamp '%s' has no Arrow timestamp value (cast it, or map "
                                "it with CASE/NULLIF)",
                                v == INT64_MIN ? "-infinity" : "infinity");
    if (__builtin_add_overflow(v, PG_EPOCH_US, &out))
        return pgetl__arrow_bad(err, PGETL_EOVERFLOW, "timestamp %lld us is out of range",
                                (long long)v);
    uint8_t *dst = fixed_slot(c, 8);
    if (!dst)
        return pgetl__arrow_oom(err);
    memcpy(dst, &out, 8);
    return PGETL_DEC_OK;
}

/* PostgreSQL: int64 microseconds, int32 days, int32 months. Arrow "tin": months, days, ns. */
static pgetl_dec dec_interval(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 16)
        return bad_len(err, "interval", len, 16);
    int64_t us = (int64_t)pgetl__get_be64(p);
    int32_t days = (int32_t)pgetl__get_be32(p + 8);
    int32_t months = (int32_t)pgetl__get_be32(p + 12);
    int64_t ns;
    if (__builtin_mul_overflow(us, 1000, &ns))
        return pgetl__arrow_bad(err, PGETL_EOVERFLOW,
                                "interval time part %lld us overflows int64 nanoseconds",
                                (long long)us);
    uint8_t *dst = fixed_slot(c, 16);
    if (!dst)
        return pgetl__arrow_oom(err);
    memcpy(dst, &months, 4);
    memcpy(dst + 4, &days, 4);
    memcpy(dst + 8, &ns, 8);
    return PGETL_DEC_OK;
}

static pgetl_dec dec_uuid(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len != 16)
        return bad_len(err, "uuid", len, 16);
    uint8_t *dst = fixed_slot(c, 16);
    if (!dst)
        return pgetl__arrow_oom(err);
    memcpy(dst, p, 16);
    return PGETL_DEC_OK;
}

/*
 * Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF),
 * eight bytes at a time while the text is ASCII.
 */
static bool utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else
            return false;
        if (n - i - 1 < need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

/* The common case: all ASCII, tested eight bytes at a time with no branch per byte. */
static inline bool ascii_only(const uint8_t *s, size_t n) {
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= s[i];
    return !(acc & UINT64_C(0x8080808080808080));
}

/* Appends len bytes as one VAR value; FULL when the batch's data would pass var_limit. */
static inline pgetl_dec var_append(pgetl_arrow_col *c, const uint8_t *p, size_t len,
                                   pgetl_error *err) {
    if ((int64_t)(c->data.len + len) > c->var_limit)
        return PGETL_DEC_FULL;
    if (!pgetl__arrow_ensure(&c->data, len) || !pgetl__arrow_ensure(&c->values, 4) ||
        !pgetl__arrow_validity_push(c, true))
        return pgetl__arrow_oom(err);
    if (len)
        pgetl__buf_append_unchecked(&c->data, p, len);
    pgetl__arrow_offset_push(c, (int64_t)c->data.len);
    c->length++;
    return PGETL_DEC_OK;
}

static pgetl_dec dec_text(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (!ascii_only(p, (size_t)len) && !utf8_valid(p, (size_t)len))
        return pgetl__arrow_bad(err, PGETL_EDATA, "text value is not valid UTF-8");
    return var_append(c, p, (size_t)len, err);
}

static pgetl_dec dec_bytea(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    return var_append(c, p, (size_t)len, err);
}

/* jsonb_send: a version byte (1) and then the JSON text. */
static pgetl_dec dec_jsonb(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len < 1 || p[0] != 1)
        return pgetl__arrow_bad(err, PGETL_EDATA, "jsonb value has unknown format version %d",
                                len < 1 ? -1 : p[0]);
    return dec_text(c, p + 1, len - 1, err);
}

/*
 * array_send: int32 ndim, int32 has-nulls flag, uint32 element OID, then
 * (int32 size, int32 lower bound) per dimension and the elements as
 * (int32 length or -1, bytes). Lower bounds are dropped: a list starts at 0.
 */
static pgetl_dec dec_list(pgetl_arrow_col *c, const uint8_t *p, int32_t len, pgetl_error *err) {
    if (len < 12)
        return pgetl__arrow_bad(err, PGETL_EDATA, "array value of %ld bytes has no header",
                                (long)len);
    int32_t ndim = (int32_t)pgetl__get_be32(p);
    int32_t flags = (int32_t)pgetl__get_be32(p + 4);
    uint32_t elem = pgetl__get_be32(p + 8);
    if (ndim < 0 || ndim > 6 /* MAXDIM */)
        return pgetl__arrow_bad(err, PGETL_EDATA, "array has invalid dimension count %ld",
                                (long)ndim);
    if (flags != 0 && flags != 1)
        return pgetl__arrow_bad(err, PGETL_EDATA, "array has invalid flags %ld", (long)flags);
    if (elem != c->elem_oid)
        return pgetl__arrow_bad(err, PGETL_EDATA, "array element type OID %lu, expected %lu",
                                (unsigned long)elem, (unsigned long)c->elem_oid);
    if (ndim > 1)
        return pgetl__arrow_bad(err, PGETL_EUNSUPPORTED,
                                "multi-dimensional array (%ld dimensions) has no Arrow list "
                                "mapping; cast the column to text or unnest it",
                                (long)ndim);
    size_t at = 12;
    int64_t n = 0;
    if (ndim == 1) {
        if (len < 20)
            return pgetl__arrow_bad(err, PGETL_EDATA, "array header is truncated");
        n = (int32_t)pgetl__get_be32(p + 12);
        at = 20;
        /* Every element takes at least its 4-byte length word. */
        if (n < 0 || n > (len - 20) / 4)
            return pgetl__arrow_bad(err, PGETL_EDATA,
                                    "array of %lld elements does not fit in %ld bytes",
                                    (long long)n, (long)len);
    }
    pgetl_arrow_col *ch = c->child;
    if (ch->length + n > c->var_limit)
        return PGETL_DEC_FULL;
    for (int64_t i = 0; i < n; i++) {
        if ((size_t)len - at < 4)
            return pgetl__arrow_bad(err, PGETL_EDATA, "array element %lld is truncated",
                                    (long long)i + 1);
        int32_t elen = (int32_t)pgetl__get_be32(p + at);
        at += 4;
        pgetl_dec r;
        if (elen == -1) {
            r = pgetl__arrow_col_append_null(ch, err);
        } else {
            if (elen < 0 || (size_t)elen > (size_t)len - at)
                return pgetl__arrow_bad(err, PGETL_EDATA,
                                        "array element %lld has invalid length %ld",
                                        (long long)i + 1, (long)elen);
            r = ch->decode(ch, p + at, elen, err);
            at += (size_t)elen;
        }
        if (r == PGETL_DEC_ERROR)
            pgetl_error_prefix(err, "array element %lld: ", (long long)i + 1);
        if (r != PGETL_DEC_OK)
            return r;
    }
    if (at != (size_t)len)
        return pgetl__arrow_bad(err, PGETL_EDATA, "%zu bytes after the array's elements",
                                (size_t)len - at);
    if (!pgetl__arrow_ensure(&c->values, 4) || !pgetl__arrow_validity_push(c, true))
        return pgetl__arrow_oom(err);
    pgetl__arrow_offset_push(c, ch->length);
    c->length++;
    return PGETL_DEC_OK;
}

/* ---- type table ---------------------------------------------------------- */

typedef struct kind {
    uint32_t oid;
    pgetl_decode_fn decode;
    pgetl_layout layout;
    int width;
    const char *format;
} kind;

static const kind KINDS[] = {
    {PGETL_OID_BOOL, dec_bool, PGETL_LAYOUT_BOOL, 0, "b"},
    {PGETL_OID_INT2, dec_int2, PGETL_LAYOUT_FIXED, 2, "s"},
    {PGETL_OID_INT4, dec_int4, PGETL_LAYOUT_FIXED, 4, "i"},
    {PGETL_OID_INT8, dec_int8, PGETL_LAYOUT_FIXED, 8, "l"},
    {PGETL_OID_FLOAT4, dec_float4, PGETL_LAYOUT_FIXED, 4, "f"},
    {PGETL_OID_FLOAT8, dec_float8, PGETL_LAYOUT_FIXED, 8, "g"},
    {PGETL_OID_TEXT, dec_text, PGETL_LAYOUT_VAR, 0, "u"},
    {PGETL_OID_VARCHAR, dec_text, PGETL_LAYOUT_VAR, 0, "u"},
    {PGETL_OID_BPCHAR, dec_text, PGETL_LAYOUT_VAR, 0, "u"},
    {PGETL_OID_NAME, dec_text, PGETL_LAYOUT_VAR, 0, "u"},
    {PGETL_OID_JSON, dec_text, PGETL_LAYOUT_VAR, 0, "u"},
    {PGETL_OID_JSONB, dec_jsonb, PGETL_LAYOUT_VAR, 0, "u"},
    {PGETL_OID_BYTEA, dec_bytea, PGETL_LAYOUT_VAR, 0, "z"},
    {PGETL_OID_DATE, dec_date, PGETL_LAYOUT_FIXED, 4, "tdD"},
    {PGETL_OID_TIME, dec_time, PGETL_LAYOUT_FIXED, 8, "ttu"},
    {PGETL_OID_TIMESTAMP, dec_timestamp, PGETL_LAYOUT_FIXED, 8, "tsu:"},
    {PGETL_OID_TIMESTAMPTZ, dec_timestamp, PGETL_LAYOUT_FIXED, 8, "tsu:UTC"},
    {PGETL_OID_INTERVAL, dec_interval, PGETL_LAYOUT_FIXED, 16, "tin"},
    {PGETL_OID_UUID, dec_uuid, PGETL_LAYOUT_FIXED, 16, "w:16"},
};

/* Built-in array types and their elements (OIDs are fixed in pg_type.dat). */
static const uint32_t ARRAYS[][2] = {
    {1000, PGETL_OID_BOOL},     {1001, PGETL_OID_BYTEA},     {1003, PGETL_OID_NAME},
    {1005, PGETL_OID_INT2},     {1007, PGETL_OID_INT4},      {1009, PGETL_OID_TEXT},
    {1014, PGETL_OID_BPCHAR},   {1015, PGETL_OID_VARCHAR},   {1016, PGETL_OID_INT8},
    {1021, PGETL_OID_FLOAT4},   {1022, PGETL_OID_FLOAT8},    {1182, PGETL_OID_DATE},
    {1183, PGETL_OID_TIME},     {1115, PGETL_OID_TIMESTAMP}, {1185, PGETL_OID_TIMESTAMPTZ},
    {1187, PGETL_OID_INTERVAL}, {1231, PGETL_OID_NUMERIC},   {2951, PGETL_OID_UUID},
    {199, PGETL_OID_JSON},      {3807, PGETL_OID_JSONB},
};

/* numeric(p,s) typmod: ((p << 16) | (s & 0x7ff)) + 4; scale is an 11-bit signed field. */
static bool numeric_typmod(int32_t typmod, int *p_out, int *s_out) {
    if (typmod < 4)
        return false;
    int32_t t = typmod - 4;
    int p = (t >> 16) & 0xFFFF;
    int s = ((t & 0x7FF) ^ 0x400) - 0x400;
    *p_out = p;
    *s_out = s;
    return true;
}

bool pgetl__arrow_kind_set(pgetl_arrow_col *c, uint32_t oid, int32_t typmod) {
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) {
        if (KINDS[i].oid != oid)
            continue;
        c->decode = KINDS[i].decode;
        c->layout = KINDS[i].layout;
        c->width = KINDS[i].width;
        snprintf(c->format, sizeof c->format, "%s", KINDS[i].format);
        return true;
    }
    if (oid == PGETL_OID_NUMERIC) {
        int p, s;
        /* decimal128 when the type fixes precision <= 38 and 0 <= scale <= precision. */
        if (numeric_typmod(typmod, &p, &s) && p >= 1 && p <= 38 && s >= 0 && s <= p) {
            c->decode = pgetl__arrow_dec_numeric_decimal;
            c->layout = PGETL_LAYOUT_FIXED;
            c->width = 16;
            c->precision = p;
            c->scale = s;
            snprintf(c->format, sizeof c->format, "d:%d,%d", p, s);
        } else {
            c->decode = pgetl__arrow_dec_numeric_text;
            c->layout = PGETL_LAYOUT_VAR;
            c->width = 0;
            snprintf(c->format, sizeof c->format, "u");
        }
        return true;
    }
    for (size_t i = 0; i < sizeof ARRAYS / sizeof ARRAYS[0]; i++) {
        if (ARRAYS[i][0] != oid)
            continue;
        c->decode = dec_list;
        c->layout = PGETL_LAYOUT_LIST;
        c->width = 0;
        c->elem_oid = ARRAYS[i][1];
        snprintf(c->format, sizeof c->format, "+l");
        return true;
    }
    return false;
}
