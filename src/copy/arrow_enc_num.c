/*
 * Encoders for numbers and booleans: Arrow integers, floats, decimal128 and
 * bool into int2/int4/int8, float4/float8, numeric and bool. Only widening
 * pairs exist in the table; a narrowing pair is simply absent, so the
 * chooser rejects it before anything is sent.
 */
#include "copy/arrow_int.h"

__extension__ typedef unsigned __int128 u128;
__extension__ typedef __int128 i128;

#define AT(T, c, i) (((const T *)(c)->v.data)[(c)->v.offset + (i)])

#define ENC_INT(name, T, BITS)                                                                     \
    static const char *name(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {                   \
        pgetl__buf_be32_unchecked(b, BITS / 8);                                                    \
        pgetl__buf_be##BITS##_unchecked(b, (uint##BITS##_t)(int##BITS##_t)AT(T, c, i));            \
        return NULL;                                                                               \
    }

ENC_INT(enc_i8_int2, int8_t, 16)
ENC_INT(enc_i16_int2, int16_t, 16)
ENC_INT(enc_u8_int2, uint8_t, 16)
ENC_INT(enc_i8_int4, int8_t, 32)
ENC_INT(enc_i16_int4, int16_t, 32)
ENC_INT(enc_i32_int4, int32_t, 32)
ENC_INT(enc_u8_int4, uint8_t, 32)
ENC_INT(enc_u16_int4, uint16_t, 32)
ENC_INT(enc_i8_int8, int8_t, 64)
ENC_INT(enc_i16_int8, int16_t, 64)
ENC_INT(enc_i32_int8, int32_t, 64)
ENC_INT(enc_i64_int8, int64_t, 64)
ENC_INT(enc_u8_int8, uint8_t, 64)
ENC_INT(enc_u16_int8, uint16_t, 64)
ENC_INT(enc_u32_int8, uint32_t, 64)

static const char *enc_u64_int8(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    uint64_t x = AT(uint64_t, c, i);
    if (x > (uint64_t)INT64_MAX)
        return "uint64 value above 9223372036854775807 does not fit in bigint";
    pgetl__buf_be32_unchecked(b, 8);
    pgetl__buf_be64_unchecked(b, x);
    return NULL;
}

/* IEEE 754 half to single precision; exact for every half value. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / NaN (payload kept) */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign; /* +-0 */
    } else {
        /* Subnormal half: normalise into a single's exponent. */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void put_f32(pgetl_buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    pgetl__buf_be32_unchecked(b, 4);
    pgetl__buf_be32_unchecked(b, u);
}

static void put_f64(pgetl_buf *b, double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    pgetl__buf_be32_unchecked(b, 8);
    pgetl__buf_be64_unchecked(b, u);
}

static const char *enc_f16_float4(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    put_f32(b, half_to_float(AT(uint16_t, c, i)));
    return NULL;
}
static const char *enc_f16_float8(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    put_f64(b, (double)half_to_float(AT(uint16_t, c, i)));
    return NULL;
}
static const char *enc_f32_float4(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    put_f32(b, AT(float, c, i));
    return NULL;
}
static const char *enc_f32_float8(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    put_f64(b, (double)AT(float, c, i));
    return NULL;
}
static const char *enc_f64_float8(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    put_f64(b, AT(double, c, i));
    return NULL;
}

static const char *enc_bool(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    int64_t p = c->v.offset + i;
    const uint8_t *bits = c->v.data;
    pgetl__buf_be32_unchecked(b, 1);
    pgetl__buf_byte_unchecked(b, (char)((bits[p >> 3] >> (p & 7)) & 1));
    return NULL;
}

static const uint32_t pow10_small[5] = {1, 10, 100, 1000, 10000};

/*
 * Writes a numeric field for (neg ? -1 : 1) * mag / 10^scale (scale >= 0)
 * in PostgreSQL's binary layout: ndigits, weight, sign, dscale, then base
 * 10000 digits with the decimal point on a digit boundary.
 */
static void put_numeric(pgetl_buf *b, bool neg, u128 mag, int32_t scale) {
    uint16_t g[16]; /* least significant first; <= 12 used for 128-bit magnitudes */
    int n = 0;
    int fracg = (scale + 3) / 4;
    int r = scale % 4;
    if (r) {
        uint32_t p = pow10_small[r];
        g[n++] = (uint16_t)((uint32_t)(mag % p) * pow10_small[4 - r]);
        mag /= p;
    }
    while (mag > UINT64_MAX) {
        g[n++] = (uint16_t)(mag % 10000);
        mag /= 10000;
    }
    for (uint64_t m = (uint64_t)mag; m; m /= 10000)
        g[n++] = (uint16_t)(m % 10000);
    /*
     * No zero groups are added up to the decimal point: the weight below
     * already places a small value, and padding to (scale + 3) / 4 groups
     * overran g for large scales (found with fuzz/fuzz_arrow_import.c).
     */
    while (n > 0 && g[n - 1] == 0)
        n--;
    int lo = 0;
    while (lo < n && g[lo] == 0)
        lo++;
    int ndigits = n - lo;
    int weight = ndigits ? n - 1 - fracg : 0;
    pgetl__buf_be32_unchecked(b, (uint32_t)(8 + 2 * ndigits));
    pgetl__buf_be16_unchecked(b, (uint16_t)ndigits);
    pgetl__buf_be16_unchecked(b, (uint16_t)(int16_t)weight);
    pgetl__buf_be16_unchecked(b, (neg && ndigits) ? 0x4000 : 0x0000);
    pgetl__buf_be16_unchecked(b, (uint16_t)scale);
    for (int k = n - 1; k >= lo; k--)
        pgetl__buf_be16_unchecked(b, g[k]);
}

#define ENC_SINT_NUMERIC(name, T)                                                                  \
    static const char *name(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {                   \
        int64_t x = AT(T, c, i);                                                                   \
        /* Negate in unsigned arithmetic: INT64_MIN has no positive int64. */                      \
        uint64_t m = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;                              \
        put_numeric(b, x < 0, m, 0);                                                               \
        return NULL;                                                                               \
    }
#define ENC_UINT_NUMERIC(name, T)                                                                  \
    static const char *name(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {                   \
        put_numeric(b, false, AT(T, c, i), 0);                                                     \
        return NULL;                                                                               \
    }
ENC_SINT_NUMERIC(enc_i8_numeric, int8_t)
ENC_SINT_NUMERIC(enc_i16_numeric, int16_t)
ENC_SINT_NUMERIC(enc_i32_numeric, int32_t)
ENC_SINT_NUMERIC(enc_i64_numeric, int64_t)
ENC_UINT_NUMERIC(enc_u8_numeric, uint8_t)
ENC_UINT_NUMERIC(enc_u16_numeric, uint16_t)
ENC_UINT_NUMERIC(enc_u32_numeric, uint32_t)
ENC_UINT_NUMERIC(enc_u64_numeric, uint64_t)

static const char *enc_dec128_numeric(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    const uint8_t *p = (const uint8_t *)c->v.data + 16 * (c->v.offset + i);
    uint64_t lo, hi;
    memcpy(&lo, p, 8); /* Arrow buffers are little-endian on every platform we build for. */
    memcpy(&hi, p + 8, 8);
    u128 u = ((u128)hi << 64) | lo;
    bool neg = (int64_t)hi < 0;
    put_numeric(b, neg, neg ? (u128)0 - u : u, c->scale);
    return NULL;
}

typedef struct num_entry {
    pgetl_arrow_kind kind;
    uint32_t oid;
    pgetl_arrow_enc_fn enc;
    size_t fixed;
} num_entry;

/* The supported pairs; anything absent is refused by the chooser. */
static const num_entry num_table[] = {
    {PGETL_AK_INT8, PGETL_OID_INT2, enc_i8_int2, 6},
    {PGETL_AK_INT16, PGETL_OID_INT2, enc_i16_int2, 6},
    {PGETL_AK_UINT8, PGETL_OID_INT2, enc_u8_int2, 6},
    {PGETL_AK_INT8, PGETL_OID_INT4, enc_i8_int4, 8},
    {PGETL_AK_INT16, PGETL_OID_INT4, enc_i16_int4, 8},
    {PGETL_AK_INT32, PGETL_OID_INT4, enc_i32_int4, 8},
    {PGETL_AK_UINT8, PGETL_OID_INT4, enc_u8_int4, 8},
    {PGETL_AK_UINT16, PGETL_OID_INT4, enc_u16_int4, 8},
    {PGETL_AK_INT8, PGETL_OID_INT8, enc_i8_int8, 12},
    {PGETL_AK_INT16, PGETL_OID_INT8, enc_i16_int8, 12},
    {PGETL_AK_INT32, PGETL_OID_INT8, enc_i32_int8, 12},
    {PGETL_AK_INT64, PGETL_OID_INT8, enc_i64_int8, 12},
    {PGETL_AK_UINT8, PGETL_OID_INT8, enc_u8_int8, 12},
    {PGETL_AK_UINT16, PGETL_OID_INT8, enc_u16_int8, 12},
    {PGETL_AK_UINT32, PGETL_OID_INT8, enc_u32_int8, 12},
    {PGETL_AK_UINT64, PGETL_OID_INT8, enc_u64_int8, 12},
    {PGETL_AK_FLOAT16, PGETL_OID_FLOAT4, enc_f16_float4, 8},
    {PGETL_AK_FLOAT32, PGETL_OID_FLOAT4, enc_f32_float4, 8},
    {PGETL_AK_FLOAT16, PGETL_OID_FLOAT8, enc_f16_float8, 12},
    {PGETL_AK_FLOAT32, PGETL_OID_FLOAT8, enc_f32_float8, 12},
    {PGETL_AK_FLOAT64, PGETL_OID_FLOAT8, enc_f64_float8, 12},
    {PGETL_AK_BOOL, PGETL_OID_BOOL, enc_bool, 5},
    {PGETL_AK_INT8, PGETL_OID_NUMERIC, enc_i8_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_INT16, PGETL_OID_NUMERIC, enc_i16_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_INT32, PGETL_OID_NUMERIC, enc_i32_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_INT64, PGETL_OID_NUMERIC, enc_i64_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_UINT8, PGETL_OID_NUMERIC, enc_u8_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_UINT16, PGETL_OID_NUMERIC, enc_u16_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_UINT32, PGETL_OID_NUMERIC, enc_u32_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_UINT64, PGETL_OID_NUMERIC, enc_u64_numeric, PGETL_ARROW_NUMERIC_MAX},
    {PGETL_AK_DECIMAL128, PGETL_OID_NUMERIC, enc_dec128_numeric, PGETL_ARROW_NUMERIC_MAX},
};

/* PostgreSQL's largest display scale (NUMERIC_DSCALE_MASK); beyond it dscale would wrap. */
#define NUMERIC_DSCALE_MAX 0x3FFF

bool pgetl__arrow_enc_pick_num(pgetl_arrow_col *c, const pgetl_arrow_type *t, uint32_t oid) {
    if (t->kind == PGETL_AK_DECIMAL128 && t->scale > NUMERIC_DSCALE_MAX)
        return false;
    for (size_t k = 0; k < sizeof num_table / sizeof num_table[0]; k++) {
        if (num_table[k].kind == t->kind && num_table[k].oid == oid) {
            c->enc = num_table[k].enc;
            c->size = NULL;
            c->fixed = num_table[k].fixed;
            c->scale = t->scale;
            return true;
        }
    }
    return false;
}
