/*
 * numeric: binary form into decimal128 or into the text PostgreSQL prints.
 *
 * numeric_send writes int16 ndigits, int16 weight, uint16 sign, uint16
 * dscale and ndigits base-10000 digits (most significant first); the value is
 * sum(digit[i] * 10000^(weight - i)). We check all of that as numeric_recv
 * does. The text form follows numeric.c's get_str_from_var digit for digit
 * (dscale decides the fractional digits shown), so a column reads the same as
 * `::text` would give. decimal128 needs 128-bit arithmetic; GCC and Clang
 * provide __int128 (marked __extension__ to stay quiet under -Wpedantic).
 */
#include "copy/copy_out.h"

__extension__ typedef unsigned __int128 u128;
__extension__ typedef __int128 i128;

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define NUMERIC_DSCALE_MASK 0x3FFF

typedef struct numeric_view {
    int ndigits;
    int weight;
    unsigned sign;
    int dscale;
    const uint8_t *digits; /* big-endian int16 each */
} numeric_view;

static inline int digit_at(const numeric_view *v, int i) {
    return (int)((unsigned)v->digits[2 * i] << 8 | v->digits[2 * i + 1]);
}

static bool numeric_parse(const uint8_t *p, int32_t len, numeric_view *v, pgetl_error *err) {
    if (len < 8) {
        pgetl__arrow_bad(err, PGETL_EDATA, "numeric value has %ld bytes, fewer than its header",
                         (long)len);
        return false;
    }
    v->ndigits = (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
    v->weight = (int16_t)(uint16_t)((unsigned)p[2] << 8 | p[3]);
    v->sign = (unsigned)p[4] << 8 | p[5];
    v->dscale = (int)((unsigned)p[6] << 8 | p[7]);
    v->digits = p + 8;
    if (v->ndigits < 0 || len != 8 + 2 * v->ndigits) {
        pgetl__arrow_bad(err, PGETL_EDATA, "numeric value has %ld bytes for %d digits", (long)len,
                         v->ndigits);
        return false;
    }
    if (v->sign != NUMERIC_POS && v->sign != NUMERIC_NEG && v->sign != NUMERIC_NAN &&
        v->sign != NUMERIC_PINF && v->sign != NUMERIC_NINF) {
        pgetl__arrow_bad(err, PGETL_EDATA, "numeric value has invalid sign 0x%04x", v->sign);
        return false;
    }
    if ((v->dscale & NUMERIC_DSCALE_MASK) != v->dscale) {
        pgetl__arrow_bad(err, PGETL_EDATA, "numeric value has invalid scale %d", v->dscale);
        return false;
    }
    for (int i = 0; i < v->ndigits; i++) {
        if (digit_at(v, i) > 9999) {
            pgetl__arrow_bad(err, PGETL_EDATA, "numeric value has invalid digit %d",
                             digit_at(v, i));
            return false;
        }
    }
    return true;
}

/* Upper bound of the text length, to reserve before writing. */
static size_t text_bound(const numeric_view *v) {
    size_t intpart = v->weight < 0 ? 1 : 4 * ((size_t)v->weight + 1);
    return 1 + intpart + 1 + (size_t)v->dscale + 4 + 10 /* "-Infinity" */;
}

static size_t write_text(const numeric_view *v, char *out) {
    if (v->sign == NUMERIC_NAN) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (v->sign == NUMERIC_PINF) {
        memcpy(out, "Infinity", 8);
        return 8;
    }
    if (v->sign == NUMERIC_NINF) {
        memcpy(out, "-Infinity", 9);
        return 9;
    }
    char *cp = out;
    if (v->sign == NUMERIC_NEG)
        *cp++ = '-';
    int d;
    if (v->weight < 0) {
        d = v->weight + 1;
        *cp++ = '0';
    } else {
        for (d = 0; d <= v->weight; d++) {
            int dig = d < v->ndigits ? digit_at(v, d) : 0;
            /* The first group drops its leading zeros, as get_str_from_var does. */
            bool putit = d > 0;
            int d1 = dig / 1000;
            dig -= d1 * 1000;
            putit |= d1 > 0;
            if (putit)
                *cp++ = (char)('0' + d1);
            d1 = dig / 100;
            dig -= d1 * 100;
            putit |= d1 > 0;
            if (putit)
                *cp++ = (char)('0' + d1);
            d1 = dig / 10;
            dig -= d1 * 10;
            putit |= d1 > 0;
            if (putit)
                *cp++ = (char)('0' + d1);
            *cp++ = (char)('0' + dig);
        }
    }
    if (v->dscale > 0) {
        *cp++ = '.';
        char *end = cp + v->dscale;
        for (int i = 0; i < v->dscale; d++, i += 4) {
            int dig = d >= 0 && d < v->ndigits ? digit_at(v, d) : 0;
            cp[0] = (char)('0' + dig / 1000);
            cp[1] = (char)('0' + dig / 100 % 10);
            cp[2] = (char)('0' + dig / 10 % 10);
            cp[3] = (char)('0' + dig % 10);
            cp += 4;
        }
        cp = end;
    }
    return (size_t)(cp - out);
}

int64_t pgetl__numeric_to_text(const uint8_t *p, int32_t len, char *out, pgetl_error *err) {
    numeric_view v;
    if (!numeric_parse(p, len, &v, err))
        return -1;
    return (int64_t)write_text(&v, out);
}

pgetl_dec pgetl__arrow_dec_numeric_text(pgetl_arrow_col *c, const uint8_t *p, int32_t len,
                                        pgetl_error *err) {
    numeric_view v;
    if (!numeric_parse(p, len, &v, err))
        return PGETL_DEC_ERROR;
    size_t bound = text_bound(&v);
    if (!pgetl__arrow_ensure(&c->data, bound) || !pgetl__arrow_ensure(&c->values, 4))
        return pgetl__arrow_oom(err);
    size_t n = write_text(&v, c->data.data + c->data.len);
    if ((int64_t)(c->data.len + n) > c->var_limit)
        return PGETL_DEC_FULL;
    if (!pgetl__arrow_validity_push(c, true))
        return pgetl__arrow_oom(err);
    c->data.len += n;
    pgetl__arrow_offset_push(c, (int64_t)c->data.len);
    c->length++;
    return PGETL_DEC_OK;
}

static u128 pow10_u128(int e) {
    u128 r = 1;
    while (e-- > 0)
        r *= 10;
    return r;
}

pgetl_dec pgetl__arrow_dec_numeric_decimal(pgetl_arrow_col *c, const uint8_t *p, int32_t len,
                                           pgetl_error *err) {
    numeric_view v;
    if (!numeric_parse(p, len, &v, err))
        return PGETL_DEC_ERROR;
    if (v.sign == NUMERIC_NAN || v.sign == NUMERIC_PINF || v.sign == NUMERIC_NINF)
        return pgetl__arrow_bad(err, PGETL_EOVERFLOW,
                                "numeric '%s' has no decimal128(%d,%d) value (cast the column "
                                "to text or float8)",
                                v.sign == NUMERIC_NAN    ? "NaN"
                                : v.sign == NUMERIC_PINF ? "Infinity"
                                                         : "-Infinity",
                                c->precision, c->scale);
    /* Values below 10^p fit; every group is scaled by 10^(4*(weight-i) + scale). */
    const u128 limit = pow10_u128(c->precision);
    u128 acc = 0;
    for (int i = 0; i < v.ndigits; i++) {
        u128 dig = (u128)digit_at(&v, i);
        if (dig == 0)
            continue;
        int e = 4 * (v.weight - i) + c->scale;
        if (e < 0) {
            /* Digits below the scale: the server rounds to the typmod, so this is corrupt. */
            u128 div = e <= -4 ? 0 : pow10_u128(-e);
            if (div == 0 || dig % div != 0)
                return pgetl__arrow_bad(err, PGETL_EDATA,
                                        "numeric value has more fractional digits than "
                                        "decimal128(%d,%d) holds",
                                        c->precision, c->scale);
            dig /= div;
            e = 0;
        }
        if (e >= 39 || dig >= limit / pow10_u128(e) + 1 || acc + dig * pow10_u128(e) >= limit)
            return pgetl__arrow_bad(err, PGETL_EOVERFLOW,
                                    "numeric value does not fit decimal128(%d,%d)", c->precision,
                                    c->scale);
        acc += dig * pow10_u128(e);
    }
    i128 out = v.sign == NUMERIC_NEG ? -(i128)acc : (i128)acc;
    if (!pgetl__arrow_ensure(&c->values, 16) || !pgetl__arrow_validity_push(c, true))
        return pgetl__arrow_oom(err);
    /* Arrow's C data interface uses native byte order: a little-endian int128 here. */
    memcpy(c->values.data + c->values.len, &out, 16);
    c->values.len += 16;
    c->length++;
    return PGETL_DEC_OK;
}
