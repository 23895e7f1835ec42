/*
 * Typed values to binary COPY fields. Each field is a 4-byte big-endian
 * length (-1 for NULL, written by the caller) followed by the type's binary
 * "send" form, which is what the server's *_recv functions read:
 * fixed-width big-endian integers and IEEE floats, 1-byte bool, raw bytes
 * for text and bytea (jsonb with a leading version byte 1), days and
 * microseconds counted from PostgreSQL's epoch 2000-01-01, and numeric as
 * base-10000 digits (see enc_numeric below).
 *
 * The encoder for a column is chosen once from the (pgetl_type, column
 * type) pair; a narrowing pair (int64 into integer) gets an encoder that
 * range-checks each value, a widening pair one that never fails.
 */
#include "copy/enc.h"
#include "sql/sql.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

const char pgetl__binary_header[PGETL_BINARY_HEADER_LEN] = {
    'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0', 0, 0, 0, 0, 0, 0, 0, 0};
const char pgetl__binary_trailer[PGETL_BINARY_TRAILER_LEN] = {'\377', '\377'};

/* Days and microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_USEC INT64_C(946684800000000)

const char *pgetl__type_name(pgetl_type type) {
    switch (type) {
    case PGETL_TYPE_INT16:
        return "int16";
    case PGETL_TYPE_INT32:
        return "int32";
    case PGETL_TYPE_INT64:
        return "int64";
    case PGETL_TYPE_FLOAT32:
        return "float32";
    case PGETL_TYPE_FLOAT64:
        return "float64";
    case PGETL_TYPE_BOOL:
        return "bool";
    case PGETL_TYPE_TEXT:
        return "text";
    case PGETL_TYPE_BYTEA:
        return "bytea";
    case PGETL_TYPE_DATE:
        return "date";
    case PGETL_TYPE_TIMESTAMP:
        return "timestamp";
    case PGETL_TYPE_TIMESTAMPTZ:
        return "timestamptz";
    case PGETL_TYPE_UUID:
        return "uuid";
    case PGETL_TYPE_NUMERIC:
        return "numeric";
    }
    return "unknown";
}

static pgetl_code int_range(int64_t v, int64_t lo, int64_t hi, const char *pg, char *why,
                            size_t n) {
    if (v >= lo && v <= hi)
        return PGETL_OK;
    snprintf(why, n, "value %lld is out of range for type %s", (long long)v, pg);
    return PGETL_EOVERFLOW;
}

static pgetl_code enc_int2(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    pgetl_code rc = int_range(v->v.i, INT16_MIN, INT16_MAX, "smallint", why, n);
    if (rc != PGETL_OK)
        return rc;
    pgetl__buf_be32_unchecked(b, 2);
    pgetl__buf_be16_unchecked(b, (uint16_t)(int16_t)v->v.i);
    return PGETL_OK;
}

static pgetl_code enc_int4(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    pgetl_code rc = int_range(v->v.i, INT32_MIN, INT32_MAX, "integer", why, n);
    if (rc != PGETL_OK)
        return rc;
    pgetl__buf_be32_unchecked(b, 4);
    pgetl__buf_be32_unchecked(b, (uint32_t)(int32_t)v->v.i);
    return PGETL_OK;
}

static pgetl_code enc_int8(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    (void)why, (void)n;
    pgetl__buf_be32_unchecked(b, 8);
    pgetl__buf_be64_unchecked(b, (uint64_t)v->v.i);
    return PGETL_OK;
}

/* An int64 holding an INT16/INT32 value must still be in that type's range. */
static pgetl_code check_declared_int(const pgetl_value *v, pgetl_type t, char *why, size_t n) {
    if (t == PGETL_TYPE_INT16)
        return int_range(v->v.i, INT16_MIN, INT16_MAX, "int16", why, n);
    if (t == PGETL_TYPE_INT32)
        return int_range(v->v.i, INT32_MIN, INT32_MAX, "int32", why, n);
    return PGETL_OK;
}

static pgetl_code enc_int_numeric(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    char text[24];
    int len = snprintf(text, sizeof text, "%lld", (long long)v->v.i);
    size_t at = b->len;
    pgetl__buf_be32_unchecked(b, 0);
    pgetl_code rc = pgetl__enc_numeric_text(b, text, (size_t)len, why, n);
    if (rc != PGETL_OK)
        return rc;
    uint32_t body = (uint32_t)(b->len - at - 4);
    unsigned char *p = (unsigned char *)b->data + at;
    p[0] = (unsigned char)(body >> 24), p[1] = (unsigned char)(body >> 16);
    p[2] = (unsigned char)(body >> 8), p[3] = (unsigned char)body;
    return PGETL_OK;
}

static pgetl_code enc_float4(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    double d = v->v.f;
    if (isfinite(d) && fabs(d) > FLT_MAX) {
        snprintf(why, n, "value %g is out of range for type real", d);
        return PGETL_EOVERFLOW;
    }
    float f = (float)d;
    uint32_t bits;
    memcpy(&bits, &f, 4);
    pgetl__buf_be32_unchecked(b, 4);
    pgetl__buf_be32_unchecked(b, bits);
    return PGETL_OK;
}

static pgetl_code enc_float8(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    (void)why, (void)n;
    uint64_t bits;
    memcpy(&bits, &v->v.f, 8);
    pgetl__buf_be32_unchecked(b, 8);
    pgetl__buf_be64_unchecked(b, bits);
    return PGETL_OK;
}

static pgetl_code enc_bool(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    (void)why, (void)n;
    pgetl__buf_be32_unchecked(b, 1);
    pgetl__buf_byte_unchecked(b, v->v.b ? 1 : 0);
    return PGETL_OK;
}

static pgetl_code check_len(const pgetl_value *v, char *why, size_t n) {
    if (v->v.s.len > PGETL_ENC_MAX_FIELD) {
        snprintf(why, n, "value of %zu bytes exceeds PostgreSQL's 1 GB field limit", v->v.s.len);
        return PGETL_EDATA;
    }
    if (v->v.s.len > 0 && !v->v.s.bytes) {
        snprintf(why, n, "value has length %zu but no bytes", v->v.s.len);
        return PGETL_EDATA;
    }
    return PGETL_OK;
}

static pgetl_code check_text(const pgetl_value *v, char *why, size_t n) {
    pgetl_code rc = check_len(v, why, n);
    if (rc != PGETL_OK)
        return rc;
    const char *nul = v->v.s.len ? memchr(v->v.s.bytes, 0, v->v.s.len) : NULL;
    if (nul) {
        snprintf(why, n,
                 "text value contains a NUL byte at offset %zu (PostgreSQL text cannot "
                 "hold NUL)",
                 (size_t)(nul - (const char *)v->v.s.bytes));
        return PGETL_EDATA;
    }
    return PGETL_OK;
}

static pgetl_code enc_text(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    pgetl_code rc = check_text(v, why, n);
    if (rc != PGETL_OK)
        return rc;
    pgetl__buf_be32_unchecked(b, (uint32_t)v->v.s.len);
    if (v->v.s.len)
        pgetl__buf_append_unchecked(b, v->v.s.bytes, v->v.s.len);
    return PGETL_OK;
}

/* jsonb_recv wants a format version byte (1) before the JSON text. */
static pgetl_code enc_jsonb(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    pgetl_code rc = check_text(v, why, n);
    if (rc != PGETL_OK)
        return rc;
    pgetl__buf_be32_unchecked(b, (uint32_t)v->v.s.len + 1);
    pgetl__buf_byte_unchecked(b, 1);
    if (v->v.s.len)
        pgetl__buf_append_unchecked(b, v->v.s.bytes, v->v.s.len);
    return PGETL_OK;
}

static pgetl_code enc_bytea(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    pgetl_code rc = check_len(v, why, n);
    if (rc != PGETL_OK)
        return rc;
    pgetl__buf_be32_unchecked(b, (uint32_t)v->v.s.len);
    if (v->v.s.len)
        pgetl__buf_append_unchecked(b, v->v.s.bytes, v->v.s.len);
    return PGETL_OK;
}

static pgetl_code enc_date(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    /* Keep the subtraction itself from overflowing. */
    if (v->v.i < (int64_t)INT32_MIN + PG_EPOCH_DAYS || v->v.i > (int64_t)INT32_MAX) {
        snprintf(why, n, "date %lld days from 1970-01-01 is out of range", (long long)v->v.i);
        return PGETL_EOVERFLOW;
    }
    pgetl__buf_be32_unchecked(b, 4);
    pgetl__buf_be32_unchecked(b, (uint32_t)(int32_t)(v->v.i - PG_EPOCH_DAYS));
    return PGETL_OK;
}

static pgetl_code enc_timestamp(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    if (v->v.i < INT64_MIN + PG_EPOCH_USEC) {
        snprintf(why, n, "timestamp %lld us from 1970-01-01 is out of range", (long long)v->v.i);
        return PGETL_EOVERFLOW;
    }
    pgetl__buf_be32_unchecked(b, 8);
    pgetl__buf_be64_unchecked(b, (uint64_t)(v->v.i - PG_EPOCH_USEC));
    return PGETL_OK;
}

static pgetl_code enc_uuid(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    if (v->v.s.len != 16 || !v->v.s.bytes) {
        snprintf(why, n, "uuid value must be 16 bytes, got %zu", v->v.s.len);
        return PGETL_EDATA;
    }
    pgetl__buf_be32_unchecked(b, 16);
    pgetl__buf_append_unchecked(b, v->v.s.bytes, 16);
    return PGETL_OK;
}

static pgetl_code enc_numeric(pgetl_buf *b, const pgetl_value *v, char *why, size_t n) {
    pgetl_code rc = check_len(v, why, n);
    if (rc != PGETL_OK)
        return rc;
    size_t at = b->len;
    pgetl__buf_be32_unchecked(b, 0);
    rc = pgetl__enc_numeric_text(b, v->v.s.bytes, v->v.s.len, why, n);
    if (rc != PGETL_OK)
        return rc;
    uint32_t body = (uint32_t)(b->len - at - 4);
    unsigned char *p = (unsigned char *)b->data + at;
    p[0] = (unsigned char)(body >> 24), p[1] = (unsigned char)(body >> 16);
    p[2] = (unsigned char)(body >> 8), p[3] = (unsigned char)body;
    return PGETL_OK;
}

typedef struct pair {
    pgetl_type type;
    uint32_t oid;
    pgetl__bin_enc_fn fn;
} pair;

static const pair pairs[] = {
    {PGETL_TYPE_INT16, PGETL_OID_INT2, enc_int2},
    {PGETL_TYPE_INT16, PGETL_OID_INT4, enc_int4},
    {PGETL_TYPE_INT16, PGETL_OID_INT8, enc_int8},
    {PGETL_TYPE_INT16, PGETL_OID_NUMERIC, enc_int_numeric},
    {PGETL_TYPE_INT32, PGETL_OID_INT2, enc_int2},
    {PGETL_TYPE_INT32, PGETL_OID_INT4, enc_int4},
    {PGETL_TYPE_INT32, PGETL_OID_INT8, enc_int8},
    {PGETL_TYPE_INT32, PGETL_OID_NUMERIC, enc_int_numeric},
    {PGETL_TYPE_INT64, PGETL_OID_INT2, enc_int2},
    {PGETL_TYPE_INT64, PGETL_OID_INT4, enc_int4},
    {PGETL_TYPE_INT64, PGETL_OID_INT8, enc_int8},
    {PGETL_TYPE_INT64, PGETL_OID_NUMERIC, enc_int_numeric},
    {PGETL_TYPE_FLOAT32, PGETL_OID_FLOAT4, enc_float4},
    {PGETL_TYPE_FLOAT32, PGETL_OID_FLOAT8, enc_float8},
    {PGETL_TYPE_FLOAT64, PGETL_OID_FLOAT4, enc_float4},
    {PGETL_TYPE_FLOAT64, PGETL_OID_FLOAT8, enc_float8},
    {PGETL_TYPE_BOOL, PGETL_OID_BOOL, enc_bool},
    {PGETL_TYPE_TEXT, PGETL_OID_TEXT, enc_text},
    {PGETL_TYPE_TEXT, PGETL_OID_VARCHAR, enc_text},
    {PGETL_TYPE_TEXT, PGETL_OID_BPCHAR, enc_text},
    {PGETL_TYPE_TEXT, PGETL_OID_NAME, enc_text},
    {PGETL_TYPE_TEXT, PGETL_OID_JSON, enc_text},
    {PGETL_TYPE_TEXT, PGETL_OID_JSONB, enc_jsonb},
    {PGETL_TYPE_BYTEA, PGETL_OID_BYTEA, enc_bytea},
    {PGETL_TYPE_DATE, PGETL_OID_DATE, enc_date},
    {PGETL_TYPE_TIMESTAMP, PGETL_OID_TIMESTAMP, enc_timestamp},
    {PGETL_TYPE_TIMESTAMPTZ, PGETL_OID_TIMESTAMPTZ, enc_timestamp},
    {PGETL_TYPE_UUID, PGETL_OID_UUID, enc_uuid},
    {PGETL_TYPE_NUMERIC, PGETL_OID_NUMERIC, enc_numeric},
};

bool pgetl__bin_col_init(pgetl__bin_col *col, pgetl_type type, uint32_t oid) {
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (pairs[i].type == type && pairs[i].oid == oid) {
            col->fn = pairs[i].fn;
            col->type = type;
            col->oid = oid;
            col->check_decl = type == PGETL_TYPE_INT16 || type == PGETL_TYPE_INT32;
            switch (type) {
            case PGETL_TYPE_TEXT:
            case PGETL_TYPE_BYTEA:
                col->fixed = 5; /* length word, jsonb version byte */
                col->varlen = true;
                break;
            case PGETL_TYPE_NUMERIC:
                /* pgetl__numeric_bound(len) <= 14 + len */
                col->fixed = 4 + 14;
                col->varlen = true;
                break;
            case PGETL_TYPE_UUID:
                col->fixed = 4 + 16;
                col->varlen = false;
                break;
            default:
                col->fixed = oid == PGETL_OID_NUMERIC ? 4 + pgetl__numeric_bound(24) : 4 + 8;
                col->varlen = false;
                break;
            }
            return true;
        }
    }
    return false;
}

/*
 * A value outside its declared integer type (an "int16" of 70000) is a
 * caller error even when the column is wide enough; say so rather than
 * storing it.
 */
pgetl_code pgetl__bin_encode(const pgetl__bin_col *col, pgetl_buf *b, const pgetl_value *v,
                             char *why, size_t why_size) {
    if (col->check_decl) {
        pgetl_code rc = check_declared_int(v, col->type, why, why_size);
        if (rc != PGETL_OK)
            return rc;
    }
    return col->fn(b, v, why, why_size);
}
