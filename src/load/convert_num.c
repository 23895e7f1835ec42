/*
 * Strict client-side parsers for integers, floats and booleans, writing
 * binary COPY values. Each accepts only a conservative grammar whose value
 * is provably the one PostgreSQL's own input function computes; anything
 * else returns -1 and the whole batch goes to the server as CSV, where the
 * server decides (accepts "+5", " 5", "yes", or raises the error).
 *
 * - integers: -?[0-9]+ within the type's range (int2in/int4in/int8in
 *   accept this and more);
 * - floats: -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)? parsed with strtod /
 *   strtof, exactly what float8in / float4in call (both correctly rounded
 *   in glibc); a result out of range (ERANGE) is left to the server;
 * - bool: exactly t, f, true, false.
 */
#include "load/convert_int.h"

#include <errno.h>
#include <stdlib.h>

static void be16(unsigned char *d, uint16_t v) {
    d[0] = (unsigned char)(v >> 8);
    d[1] = (unsigned char)v;
}

static void be32(unsigned char *d, uint32_t v) {
    d[0] = (unsigned char)(v >> 24);
    d[1] = (unsigned char)(v >> 16);
    d[2] = (unsigned char)(v >> 8);
    d[3] = (unsigned char)v;
}

void pgetl__conv_be64(unsigned char *d, uint64_t v) {
    be32(d, (uint32_t)(v >> 32));
    be32(d + 4, (uint32_t)v);
}

void pgetl__conv_be32(unsigned char *d, uint32_t v) {
    be32(d, v);
}

/* -?[0-9]+ into [min, max]; false outside the grammar or the range. */
static bool parse_int(const char *p, size_t n, int64_t min, uint64_t max_mag_neg,
                      uint64_t max_mag_pos, int64_t *out) {
    (void)min;
    bool neg = n > 0 && p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i >= n || n - i > 20)
        return false;
    uint64_t v = 0;
    uint64_t lim = neg ? max_mag_neg : max_mag_pos;
    for (; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9)
            return false;
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

int pgetl__conv_int2(const char *p, size_t n, unsigned char *dst) {
    int64_t v;
    if (!parse_int(p, n, INT16_MIN, 32768u, 32767u, &v))
        return -1;
    be16(dst, (uint16_t)(int16_t)v);
    return 2;
}

int pgetl__conv_int4(const char *p, size_t n, unsigned char *dst) {
    int64_t v;
    if (!parse_int(p, n, INT32_MIN, 2147483648u, 2147483647u, &v))
        return -1;
    be32(dst, (uint32_t)(int32_t)v);
    return 4;
}

int pgetl__conv_int8(const char *p, size_t n, unsigned char *dst) {
    int64_t v;
    if (!parse_int(p, n, INT64_MIN, (uint64_t)INT64_MAX + 1, (uint64_t)INT64_MAX, &v))
        return -1;
    pgetl__conv_be64(dst, (uint64_t)v);
    return 8;
}

/* The float grammar above, copied NUL-terminated into buf (size 64). */
static bool float_text(const char *p, size_t n, char *buf) {
    if (n == 0 || n >= 64)
        return false;
    size_t i = 0;
    if (p[i] == '-')
        i++;
    size_t d0 = i;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i == d0)
        return false;
    if (i < n && p[i] == '.') {
        size_t f0 = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == f0)
            return false;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t e0 = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == e0)
            return false;
    }
    if (i != n)
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return true;
}

int pgetl__conv_float8(const char *p, size_t n, unsigned char *dst) {
    char buf[64];
    if (!float_text(p, n, buf))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return -1;
    uint64_t bits;
    memcpy(&bits, &v, 8);
    pgetl__conv_be64(dst, bits);
    return 8;
}

int pgetl__conv_float4(const char *p, size_t n, unsigned char *dst) {
    char buf[64];
    if (!float_text(p, n, buf))
        return -1;
    errno = 0;
    char *end;
    float v = strtof(buf, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return -1;
    uint32_t bits;
    memcpy(&bits, &v, 4);
    be32(dst, bits);
    return 4;
}

int pgetl__conv_bool(const char *p, size_t n, unsigned char *dst) {
    if ((n == 1 && p[0] == 't') || (n == 4 && memcmp(p, "true", 4) == 0)) {
        dst[0] = 1;
        return 1;
    }
    if ((n == 1 && p[0] == 'f') || (n == 5 && memcmp(p, "false", 5) == 0)) {
        dst[0] = 0;
        return 1;
    }
    return -1;
}
