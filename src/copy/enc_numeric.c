/*
 * Decimal text to PostgreSQL's binary numeric, the format numeric_recv()
 * reads:
 *
 *     int16 ndigits   number of base-10000 digits that follow
 *     int16 weight    power of 10000 of the first digit
 *     uint16 sign     0x0000 +, 0x4000 -, 0xC000 NaN, 0xD000 +Inf, 0xF000 -Inf
 *     int16 dscale    digits after the decimal point to display
 *     int16 digits[ndigits], each 0..9999
 *
 * The text is read in place (no copy): its decimal digits form one virtual
 * sequence d1 d2 ... dm (leading and trailing zeros dropped) with the value
 * 0.d1d2...dm x 10^p. Padding p up to a multiple of 4 on the left aligns the
 * base-10000 groups on the decimal point, which is how the server groups
 * them. dscale follows numeric_in: fraction digits minus the exponent,
 * never negative.
 */
#include "copy/enc.h"

#include <stdio.h>

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define NUMERIC_DSCALE_MAX 0x3FFF
/* An exponent beyond this cannot produce a weight that fits an int16. */
#define NUMERIC_EXP_LIMIT 1000000

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool word_eq(const char *s, size_t len, const char *word) {
    size_t n = strlen(word);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

static void put_head(pgetl_buf *b, int ndigits, int weight, unsigned sign, int dscale) {
    pgetl__buf_be16_unchecked(b, (uint16_t)ndigits);
    pgetl__buf_be16_unchecked(b, (uint16_t)(int16_t)weight);
    pgetl__buf_be16_unchecked(b, (uint16_t)sign);
    pgetl__buf_be16_unchecked(b, (uint16_t)dscale);
}

static pgetl_code malformed(const char *s, size_t len, char *why, size_t n) {
    int show = len > 40 ? 40 : (int)len;
    snprintf(why, n, "invalid numeric value \"%.*s%s\"", show, s, len > 40 ? "..." : "");
    return PGETL_EDATA;
}

/* Digit k (0-based) of the virtual sequence: the integer digits, then the fraction digits. */
static int seq_digit(const char *ip, size_t ni, const char *fp, size_t k) {
    return k < ni ? ip[k] - '0' : fp[k - ni] - '0';
}

pgetl_code pgetl__enc_numeric_text(pgetl_buf *b, const char *s, size_t len, char *why,
                                   size_t why_size) {
    const char *orig = s;
    size_t orig_len = len;
    while (len && is_space(*s))
        s++, len--;
    while (len && is_space(s[len - 1]))
        len--;
    if (word_eq(s, len, "nan")) {
        put_head(b, 0, 0, NUMERIC_NAN, 0);
        return PGETL_OK;
    }
    bool neg = false;
    if (len && (*s == '+' || *s == '-')) {
        neg = *s == '-';
        s++, len--;
    }
    if (word_eq(s, len, "infinity") || word_eq(s, len, "inf")) {
        put_head(b, 0, 0, neg ? NUMERIC_NINF : NUMERIC_PINF, 0);
        return PGETL_OK;
    }

    size_t i = 0;
    const char *ip = s;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t ni = i;
    const char *fp = s + i;
    size_t nf = 0;
    if (i < len && s[i] == '.') {
        i++;
        fp = s + i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        nf = (size_t)(s + i - fp);
    }
    if (ni + nf == 0)
        return malformed(orig, orig_len, why, why_size);
    int64_t exp = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        size_t e0 = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (exp <= NUMERIC_EXP_LIMIT)
                exp = exp * 10 + (s[i] - '0');
            i++;
        }
        if (i == e0)
            return malformed(orig, orig_len, why, why_size);
        if (exp > NUMERIC_EXP_LIMIT) {
            snprintf(why, why_size, "numeric exponent out of range");
            return PGETL_EOVERFLOW;
        }
        if (eneg)
            exp = -exp;
    }
    if (i != len)
        return malformed(orig, orig_len, why, why_size);

    int64_t dscale = (int64_t)nf - exp;
    if (dscale < 0)
        dscale = 0;
    if (dscale > NUMERIC_DSCALE_MAX) {
        snprintf(why, why_size, "numeric scale %lld exceeds the maximum %d", (long long)dscale,
                 NUMERIC_DSCALE_MAX);
        return PGETL_EOVERFLOW;
    }

    size_t total = ni + nf;
    size_t lz = 0;
    while (lz < total && seq_digit(ip, ni, fp, lz) == 0)
        lz++;
    if (lz == total) {
        put_head(b, 0, 0, NUMERIC_POS, (int)dscale);
        return PGETL_OK;
    }
    size_t last = total - 1;
    while (seq_digit(ip, ni, fp, last) == 0)
        last--;
    int64_t m = (int64_t)(last - lz + 1);
    int64_t p = (int64_t)ni + exp - (int64_t)lz;
    int64_t left = (4 - ((p % 4) + 4) % 4) % 4;
    int64_t weight = (p + left) / 4 - 1;
    int64_t padded = left + m;
    int64_t ndigits = (padded + 3) / 4;
    if (weight < INT16_MIN || weight > INT16_MAX || ndigits > INT16_MAX) {
        snprintf(why, why_size, "numeric value is out of the range PostgreSQL can store");
        return PGETL_EOVERFLOW;
    }
    put_head(b, (int)ndigits, (int)weight, neg ? NUMERIC_NEG : NUMERIC_POS, (int)dscale);
    for (int64_t g = 0; g < ndigits; g++) {
        int v = 0;
        for (int64_t j = 4 * g; j < 4 * g + 4; j++) {
            int d = 0;
            if (j >= left && j - left < m)
                d = seq_digit(ip, ni, fp, lz + (size_t)(j - left));
            v = v * 10 + d;
        }
        pgetl__buf_be16_unchecked(b, (uint16_t)v);
    }
    return PGETL_OK;
}
