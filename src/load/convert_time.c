/*
 * Strict ISO dates and timestamps to binary COPY (days / microseconds since
 * 2000-01-01, PostgreSQL's epoch). Accepted, and nothing else:
 *
 *   date         YYYY-MM-DD                      (year 0001-9999, real day)
 *   timestamp    YYYY-MM-DD[ T]HH:MM:SS[.f{1,6}] (no zone: the server would
 *                                                 silently drop one)
 *   timestamptz  the same plus Z, +HH, +HH:MM or -HH:MM (|offset| < 16 h);
 *                without an explicit offset the session TimeZone would
 *                decide, so that goes to the server.
 *
 * Hours 00-23, minutes and seconds 00-59 (PostgreSQL's 24:00:00 and leap
 * second 60 are left to it). These forms are read the same way under every
 * DateStyle.
 */
#include "load/convert_int.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

#define PG_EPOCH_DAYS 10957 /* 2000-01-01 in days since 1970-01-01 */
#define USECS_PER_DAY INT64_C(86400000000)

static bool digits(const char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + (int)d;
    }
    *out = v;
    return true;
}

static bool parse_date(const char *p, size_t n, int64_t *days) {
    int y, m, d;
    if (n < 10 || p[4] != '-' || p[7] != '-' || !digits(p, 4, &y) || !digits(p + 5, 2, &m) ||
        !digits(p + 8, 2, &d))
        return false;
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return false;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d) - PG_EPOCH_DAYS;
    return true;
}

int pgetl__conv_date(const char *p, size_t n, unsigned char *dst) {
    int64_t days;
    if (n != 10 || !parse_date(p, n, &days))
        return -1;
    pgetl__conv_be32(dst, (uint32_t)(int32_t)days);
    return 4;
}

/* Date and time of day; *rest points after the seconds (and fraction). */
static bool parse_ts(const char *p, size_t n, int64_t *usec, size_t *rest) {
    int64_t days;
    int hh, mi, ss;
    if (n < 19 || !parse_date(p, 10, &days) || (p[10] != ' ' && p[10] != 'T') || p[13] != ':' ||
        p[16] != ':' || !digits(p + 11, 2, &hh) || !digits(p + 14, 2, &mi) ||
        !digits(p + 17, 2, &ss))
        return false;
    if (hh > 23 || mi > 59 || ss > 59)
        return false;
    size_t i = 19;
    int64_t frac = 0;
    if (i < n && p[i] == '.') {
        i++;
        int nd = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && nd < 7) {
            frac = frac * 10 + (p[i] - '0');
            nd++;
            i++;
        }
        /* More than 6 digits would be rounded by the server: its business. */
        if (nd == 0 || nd > 6)
            return false;
        for (; nd < 6; nd++)
            frac *= 10;
    }
    *usec = days * USECS_PER_DAY + ((int64_t)hh * 3600 + mi * 60 + ss) * 1000000 + frac;
    *rest = i;
    return true;
}

int pgetl__conv_timestamp(const char *p, size_t n, unsigned char *dst) {
    int64_t us;
    size_t rest;
    if (!parse_ts(p, n, &us, &rest) || rest != n)
        return -1;
    pgetl__conv_be64(dst, (uint64_t)us);
    return 8;
}

int pgetl__conv_timestamptz(const char *p, size_t n, unsigned char *dst) {
    int64_t us;
    size_t i;
    if (!parse_ts(p, n, &us, &i) || i >= n)
        return -1;
    int64_t off = 0;
    if (p[i] == 'Z' && i + 1 == n) {
        off = 0;
    } else if (p[i] == '+' || p[i] == '-') {
        int hh, mm = 0;
        size_t k = n - i - 1;
        if (!(k == 2 || k == 5) || !digits(p + i + 1, 2, &hh))
            return -1;
        if (k == 5 && (p[i + 3] != ':' || !digits(p + i + 4, 2, &mm)))
            return -1;
        if (hh > 15 || mm > 59)
            return -1;
        off = ((int64_t)hh * 3600 + mm * 60) * 1000000;
        if (p[i] == '-')
            off = -off;
    } else {
        return -1;
    }
    pgetl__conv_be64(dst, (uint64_t)(us - off));
    return 8;
}
