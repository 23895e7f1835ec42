/*
 * Fuzz target: the binary load path's strict value parsers
 * (src/load/convert_num.c, convert_time.c: pgetl__conv_int2 ... _timestamptz).
 *
 * Input: a selector byte (type, and whether the text is raw fuzz bytes or
 * generated inside the type's grammar from fuzz numbers), then the bytes.
 * Every field is an exact-size heap copy, so ASan sees any read past it.
 * Invariants checked, against independent oracles (strtoll, strtod/strtof,
 * timegm, gmtime_r), never the converters' own helpers:
 *   - what is accepted matches the documented grammar exactly, fills
 *     exactly the type's width, and holds the value the oracle computes
 *     (an int equals strtoll's value; a float is bit-identical to
 *     strtod/strtof's; a date/timestamp equals timegm's reading of its
 *     fields, minus the offset for timestamptz);
 *   - everything inside the grammar (generated: any in-range integer with
 *     at most 20 digits, any real date 0001-9999, any time, 1-6 fraction
 *     digits, Z/+HH/+HH:MM offsets below 16 h) is accepted;
 *   - an accepted value printed canonically (%lld, %.17g / %.9g, ISO
 *     with UTC offset) parses again to the same binary;
 *   - what is refused writes nothing past the type's width.
 */
#define _GNU_SOURCE
#include "fuzz_util.h"
#include "load/convert_int.h"

#include <errno.h>
#include <time.h>

typedef int (*conv_fn)(const char *, size_t, unsigned char *);

enum { T_INT2, T_INT4, T_INT8, T_FLOAT4, T_FLOAT8, T_BOOL, T_DATE, T_TS, T_TSTZ, T_COUNT };

static const conv_fn fns[T_COUNT] = {
    pgetl__conv_int2,   pgetl__conv_int4,      pgetl__conv_int8,
    pgetl__conv_float4, pgetl__conv_float8,    pgetl__conv_bool,
    pgetl__conv_date,   pgetl__conv_timestamp, pgetl__conv_timestamptz};
static const int widths[T_COUNT] = {2, 4, 8, 4, 8, 1, 4, 8, 8};

#define PG_EPOCH_SECS INT64_C(946684800)

static uint64_t be(const unsigned char *d, int w) {
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | d[i];
    return v;
}

/* Runs a converter on an exact-size copy; dst gets a guard pattern past the width. */
static int run(int t, const char *p, size_t n, unsigned char *dst) {
    char *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    unsigned char out[16];
    memset(out, 0xA5, sizeof out);
    int w = fns[t](copy, n, out);
    free(copy);
    for (int i = w > 0 ? w : 0; i < (int)sizeof out; i++)
        FUZZ_CHECK(out[i] == 0xA5, "type %d wrote byte %d (returned %d)", t, i, w);
    memcpy(dst, out, 8);
    return w;
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static bool int_grammar(const char *p, size_t n) {
    size_t i = n && p[0] == '-';
    if (i == n || n - i > 20)
        return false;
    for (; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return true;
}

/* -?D+(.D+)?([eE][-+]?D+)? with a NUL-terminated copy for strtod. */
static bool float_grammar(const char *p, size_t n) {
    size_t i = 0, k;
    if (i < n && p[i] == '-')
        i++;
    for (k = i; i < n && is_digit(p[i]); i++)
        ;
    if (i == k)
        return false;
    if (i < n && p[i] == '.') {
        for (k = ++i; i < n && is_digit(p[i]); i++)
            ;
        if (i == k)
            return false;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '-' || p[i] == '+'))
            i++;
        for (k = i; i < n && is_digit(p[i]); i++)
            ;
        if (i == k)
            return false;
    }
    return i == n;
}

static void check_int(int t, const char *p, size_t n, int w, const unsigned char *d) {
    static const long long lo[] = {INT16_MIN, INT32_MIN, INT64_MIN};
    static const long long hi[] = {INT16_MAX, INT32_MAX, INT64_MAX};
    char buf[64];
    bool gram = int_grammar(p, n);
    long long v = 0;
    bool in_range = false;
    if (gram) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        errno = 0;
        v = strtoll(buf, NULL, 10);
        in_range = errno == 0 && v >= lo[t] && v <= hi[t];
    }
    FUZZ_CHECK((w > 0) == (gram && in_range), "int type %d: accepted %d, grammar %d, range %d", t,
               w, gram, in_range);
    if (w < 0)
        return;
    FUZZ_CHECK(w == widths[t], "int width %d", w);
    uint64_t bits = be(d, w);
    long long got = t == T_INT2   ? (int16_t)bits
                    : t == T_INT4 ? (int32_t)bits
                                  : (long long)(int64_t)bits;
    FUZZ_CHECK(got == v, "int value %lld, strtoll %lld", got, v);
    int m = snprintf(buf, sizeof buf, "%lld", v);
    unsigned char again[8];
    FUZZ_CHECK(run(t, buf, (size_t)m, again) == w && memcmp(again, d, (size_t)w) == 0,
               "canonical %s did not round-trip", buf);
}

static void check_float(int t, const char *p, size_t n, int w, const unsigned char *d) {
    bool gram = n < 64 && float_grammar(p, n);
    char buf[80];
    bool ok = false;
    double dv = 0;
    float fv = 0;
    if (gram) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        errno = 0;
        if (t == T_FLOAT8) {
            dv = strtod(buf, NULL);
            ok = errno == 0 && isfinite(dv);
        } else {
            fv = strtof(buf, NULL);
            ok = errno == 0 && isfinite(fv);
        }
    }
    FUZZ_CHECK((w > 0) == ok, "float type %d: accepted %d, grammar %d, strto* ok %d", t, w, gram,
               ok);
    if (w < 0)
        return;
    FUZZ_CHECK(w == widths[t], "float width %d", w);
    uint64_t bits = be(d, w);
    int cls;
    int m;
    if (t == T_FLOAT8) {
        uint64_t want;
        memcpy(&want, &dv, 8);
        FUZZ_CHECK(bits == want, "float8 bits %016llx, strtod %016llx", (unsigned long long)bits,
                   (unsigned long long)want);
        cls = fpclassify(dv);
        m = snprintf(buf, sizeof buf, "%.17g", dv);
    } else {
        uint32_t want;
        memcpy(&want, &fv, 4);
        FUZZ_CHECK(bits == want, "float4 bits %08x, strtof %08x", (unsigned)bits, want);
        cls = fpclassify(fv);
        m = snprintf(buf, sizeof buf, "%.9g", (double)fv);
    }
    if (cls != FP_NORMAL && cls != FP_ZERO)
        return; /* subnormals: strto* reports ERANGE, so the server decides */
    unsigned char again[8];
    FUZZ_CHECK(run(t, buf, (size_t)m, again) == w && memcmp(again, d, (size_t)w) == 0,
               "canonical %s did not round-trip", buf);
}

/* Fields of an ISO date-time, parsed by sscanf-free hand code; false when malformed. */
typedef struct dt {
    int y, mo, d, h, mi, s;
    int64_t frac_us;
    int nfrac;
    int64_t off_s;
    bool has_time;
} dt;

static bool num(const char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* A real calendar date: timegm leaves it unchanged. Returns days since 2000-01-01. */
static bool real_date(int y, int mo, int d, int64_t *days) {
    if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = 12};
    time_t s = timegm(&tm);
    if (tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d)
        return false;
    *days = ((int64_t)s - 12 * 3600) / 86400 - PG_EPOCH_SECS / 86400;
    return true;
}

/* The documented grammar, read independently; *us_out in microseconds since 2000 (UTC). */
static bool parse_grammar(int t, const char *p, size_t n, int64_t *out) {
    dt v = {0};
    if (n < 10 || p[4] != '-' || p[7] != '-' || !num(p, 4, &v.y) || !num(p + 5, 2, &v.mo) ||
        !num(p + 8, 2, &v.d))
        return false;
    int64_t days;
    if (!real_date(v.y, v.mo, v.d, &days))
        return false;
    if (t == T_DATE) {
        *out = days;
        return n == 10;
    }
    if (n < 19 || (p[10] != ' ' && p[10] != 'T') || p[13] != ':' || p[16] != ':' ||
        !num(p + 11, 2, &v.h) || !num(p + 14, 2, &v.mi) || !num(p + 17, 2, &v.s) || v.h > 23 ||
        v.mi > 59 || v.s > 59)
        return false;
    size_t i = 19;
    if (i < n && p[i] == '.') {
        size_t f0 = ++i;
        while (i < n && is_digit(p[i]))
            i++;
        size_t nf = i - f0;
        if (nf < 1 || nf > 6)
            return false;
        int64_t f = 0;
        for (size_t k = 0; k < 6; k++)
            f = f * 10 + (k < nf ? p[f0 + k] - '0' : 0);
        v.frac_us = f;
    }
    int64_t off = 0;
    if (t == T_TSTZ) {
        if (i + 1 == n && p[i] == 'Z') {
            i++;
        } else if (i < n && (p[i] == '+' || p[i] == '-')) {
            int hh, mm = 0;
            size_t k = n - i - 1;
            if (!(k == 2 || (k == 5 && p[i + 3] == ':')) || !num(p + i + 1, 2, &hh) ||
                (k == 5 && !num(p + i + 4, 2, &mm)) || hh > 15 || mm > 59)
                return false;
            off = (hh * 3600 + mm * 60) * (p[i] == '-' ? -1 : 1);
            i = n;
        } else {
            return false;
        }
    }
    if (i != n)
        return false;
    int64_t secs = days * 86400 + v.h * 3600 + v.mi * 60 + v.s - off;
    *out = secs * 1000000 + v.frac_us;
    return true;
}

static void check_time(int t, const char *p, size_t n, int w, const unsigned char *d) {
    int64_t want = 0;
    bool gram = parse_grammar(t, p, n, &want);
    FUZZ_CHECK((w > 0) == gram, "time type %d: accepted %d, grammar %d: %.*s", t, w, gram, (int)n,
               p);
    if (w < 0)
        return;
    FUZZ_CHECK(w == widths[t], "time width %d", w);
    int64_t got = t == T_DATE ? (int32_t)be(d, 4) : (int64_t)be(d, 8);
    FUZZ_CHECK(got == want, "time type %d value %lld, oracle %lld: %.*s", t, (long long)got,
               (long long)want, (int)n, p);
    /* Canonical form from the value (gmtime_r): must parse to the same binary. */
    int64_t us = t == T_DATE ? got * 86400 * 1000000 : got;
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    time_t tt = (time_t)(secs + PG_EPOCH_SECS);
    struct tm tm;
    FUZZ_CHECK(gmtime_r(&tt, &tm) != NULL, "gmtime_r failed");
    char buf[64];
    int m =
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (t != T_DATE)
        m += snprintf(buf + m, sizeof buf - (size_t)m, "T%02d:%02d:%02d.%06lld%s", tm.tm_hour,
                      tm.tm_min, tm.tm_sec, (long long)frac, t == T_TSTZ ? "Z" : "");
    unsigned char again[8];
    int w2 = run(t, buf, (size_t)m, again);
    if (tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) {
        /* A tz offset can move 0001-01-01 / 9999-12-31 out of the written range. */
        FUZZ_CHECK(t == T_TSTZ, "year %d from type %d", tm.tm_year + 1900, t);
        return;
    }
    FUZZ_CHECK(w2 == w && memcmp(again, d, (size_t)w) == 0, "canonical %s did not round-trip", buf);
    if (t == T_DATE)
        FUZZ_CHECK(n == 10 && memcmp(buf, p, 10) == 0, "date %.*s re-prints as %s", (int)n, p, buf);
}

/* Text inside the grammar, built from fuzz numbers. */
static size_t generate(int t, fuzz_in *in, char *b, size_t cap) {
    int m = 0;
    switch (t) {
    case T_INT2:
    case T_INT4:
    case T_INT8: {
        int64_t v = (int64_t)fuzz_u64(in);
        if (t == T_INT2)
            v = (int16_t)v;
        if (t == T_INT4)
            v = (int32_t)v;
        int zeros = fuzz_u8(in) % 8;
        bool neg = v < 0;
        uint64_t mag = neg ? 0 - (uint64_t)v : (uint64_t)v;
        char digs[32];
        int nd = snprintf(digs, sizeof digs, "%llu", (unsigned long long)mag);
        if (nd + zeros > 20)
            zeros = 20 - nd;
        m = snprintf(b, cap, "%s%.*s%s", neg ? "-" : "", zeros, "00000000", digs);
        break;
    }
    case T_FLOAT4:
    case T_FLOAT8: {
        uint64_t mant = fuzz_u64(in) % 100000000000000000ull;
        uint32_t frac = fuzz_u32(in);
        int e = (int8_t)fuzz_u8(in);
        uint8_t form = fuzz_u8(in);
        m = snprintf(b, cap, "%s%llu", form & 1 ? "-" : "", (unsigned long long)mant);
        if (form & 2)
            m += snprintf(b + m, cap - (size_t)m, ".%u", frac);
        if (form & 4)
            m += snprintf(b + m, cap - (size_t)m, "%c%s%d", form & 8 ? 'E' : 'e',
                          e >= 0 && (form & 16) ? "+" : "", t == T_FLOAT4 ? e % 38 : e);
        break;
    }
    case T_BOOL: {
        static const char *const v[] = {"t", "f", "true", "false"};
        m = snprintf(b, cap, "%s", v[fuzz_u8(in) % 4]);
        break;
    }
    default: {
        int y = 1 + fuzz_u16(in) % 9999, mo = 1 + fuzz_u8(in) % 12, d = 1 + fuzz_u8(in) % 31;
        static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
            d = 28;
        m = snprintf(b, cap, "%04d-%02d-%02d", y, mo, d);
        if (t == T_DATE)
            break;
        uint8_t form = fuzz_u8(in);
        m += snprintf(b + m, cap - (size_t)m, "%c%02d:%02d:%02d", form & 1 ? 'T' : ' ',
                      fuzz_u8(in) % 24, fuzz_u8(in) % 60, fuzz_u8(in) % 60);
        int nf = (form >> 1) % 7;
        if (nf)
            m += snprintf(b + m, cap - (size_t)m, ".%0*u", nf,
                          fuzz_u32(in) % (unsigned)(nf == 6   ? 1000000
                                                    : nf == 5 ? 100000
                                                    : nf == 4 ? 10000
                                                    : nf == 3 ? 1000
                                                    : nf == 2 ? 100
                                                              : 10));
        if (t == T_TSTZ) {
            int z = (form >> 4) % 3;
            char sign = form & 0x80 ? '-' : '+';
            if (z == 0)
                m += snprintf(b + m, cap - (size_t)m, "Z");
            else if (z == 1)
                m += snprintf(b + m, cap - (size_t)m, "%c%02d", sign, fuzz_u8(in) % 16);
            else
                m += snprintf(b + m, cap - (size_t)m, "%c%02d:%02d", sign, fuzz_u8(in) % 16,
                              fuzz_u8(in) % 60);
        }
        break;
    }
    }
    return (size_t)m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t sel = fuzz_u8(&in);
    int t = (sel & 0x7f) % T_COUNT;
    bool gen = (sel & 0x80) != 0;
    char text[128];
    size_t n;
    if (gen) {
        n = generate(t, &in, text, sizeof text);
    } else {
        n = fuzz_bytes(&in, text, 100);
    }
    unsigned char d[8];
    int w = run(t, text, n, d);
    if (gen && t != T_FLOAT4 && t != T_FLOAT8)
        FUZZ_CHECK(w > 0, "type %d refused generated %.*s", t, (int)n, text);
    switch (t) {
    case T_INT2:
    case T_INT4:
    case T_INT8:
        check_int(t, text, n, w, d);
        break;
    case T_FLOAT4:
    case T_FLOAT8:
        check_float(t, text, n, w, d);
        break;
    case T_BOOL:
        FUZZ_CHECK((w == 1) == ((n == 1 && (text[0] == 't' || text[0] == 'f')) ||
                                (n == 4 && !memcmp(text, "true", 4)) ||
                                (n == 5 && !memcmp(text, "false", 5))),
                   "bool accepted %d: %.*s", w, (int)n, text);
        if (w == 1)
            FUZZ_CHECK(d[0] == (text[0] == 't'), "bool value %d for %.*s", d[0], (int)n, text);
        break;
    default:
        check_time(t, text, n, w, d);
        break;
    }
    return 0;
}
