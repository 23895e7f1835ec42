/*
 * Encoders for dates, times, timestamps and durations. Arrow counts from
 * 1970-01-01 in its own unit; PostgreSQL's binary format counts days (date)
 * or microseconds (time, timestamp, interval) from 2000-01-01. One encoder
 * exists per unit, so the unit is decided once per column.
 *
 * Nanoseconds become microseconds by flooring (toward negative infinity),
 * the microsecond that contains the instant; see arrow_int.h. Results that
 * would collide with PostgreSQL's infinity sentinels (INT32_MIN/MAX days,
 * INT64_MIN/MAX microseconds) or overflow are refused, never wrapped.
 */
#include "copy/arrow_int.h"

#define AT(T, c, i) (((const T *)(c)->v.data)[(c)->v.offset + (i)])

/* 2000-01-01 minus 1970-01-01. */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_US (INT64_C(946684800) * 1000000)
#define MS_PER_DAY INT64_C(86400000)

static const char *const TS_RANGE = "timestamp out of range";

static inline int64_t floor_div(int64_t a, int64_t d) {
    int64_t q = a / d;
    return (a % d != 0 && a < 0) ? q - 1 : q;
}

static bool s_to_us(int64_t x, int64_t *out) {
    return !__builtin_mul_overflow(x, INT64_C(1000000), out);
}
static bool ms_to_us(int64_t x, int64_t *out) {
    return !__builtin_mul_overflow(x, INT64_C(1000), out);
}
static bool us_to_us(int64_t x, int64_t *out) {
    *out = x;
    return true;
}
static bool ns_to_us(int64_t x, int64_t *out) {
    *out = floor_div(x, 1000);
    return true;
}

static const char *put_date(pgetl_buf *b, int64_t days_1970) {
    int64_t d = days_1970 - PG_EPOCH_DAYS;
    /* INT32_MIN/MAX are -infinity/infinity to PostgreSQL. */
    if (d <= INT32_MIN || d >= INT32_MAX)
        return "date out of range";
    pgetl__buf_be32_unchecked(b, 4);
    pgetl__buf_be32_unchecked(b, (uint32_t)(int32_t)d);
    return NULL;
}

static const char *enc_date32(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    return put_date(b, AT(int32_t, c, i));
}

static const char *enc_date64(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {
    int64_t ms = AT(int64_t, c, i);
    if (ms % MS_PER_DAY != 0)
        return "date64 value is not a whole number of days";
    return put_date(b, ms / MS_PER_DAY);
}

#define ENC_TS(name, T, CONV)                                                                      \
    static const char *name(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {                   \
        int64_t us, pg;                                                                            \
        if (!CONV(AT(T, c, i), &us) || __builtin_sub_overflow(us, PG_EPOCH_US, &pg) ||             \
            pg == INT64_MIN || pg == INT64_MAX)                                                    \
            return TS_RANGE;                                                                       \
        pgetl__buf_be32_unchecked(b, 8);                                                           \
        pgetl__buf_be64_unchecked(b, (uint64_t)pg);                                                \
        return NULL;                                                                               \
    }
ENC_TS(enc_ts_s, int64_t, s_to_us)
ENC_TS(enc_ts_ms, int64_t, ms_to_us)
ENC_TS(enc_ts_us, int64_t, us_to_us)
ENC_TS(enc_ts_ns, int64_t, ns_to_us)

/* time: microseconds since midnight; the server checks 0..24:00:00. */
#define ENC_TIME(name, T, CONV)                                                                    \
    static const char *name(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {                   \
        int64_t us;                                                                                \
        if (!CONV(AT(T, c, i), &us))                                                               \
            return "time out of range";                                                            \
        pgetl__buf_be32_unchecked(b, 8);                                                           \
        pgetl__buf_be64_unchecked(b, (uint64_t)us);                                                \
        return NULL;                                                                               \
    }
ENC_TIME(enc_time_s, int32_t, s_to_us)
ENC_TIME(enc_time_ms, int32_t, ms_to_us)
ENC_TIME(enc_time_us, int64_t, us_to_us)
ENC_TIME(enc_time_ns, int64_t, ns_to_us)

/* interval: int64 microseconds, int32 days, int32 months; durations use only the first. */
#define ENC_DUR(name, CONV)                                                                        \
    static const char *name(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b) {                   \
        int64_t us;                                                                                \
        if (!CONV(AT(int64_t, c, i), &us))                                                         \
            return "interval out of range";                                                        \
        pgetl__buf_be32_unchecked(b, 16);                                                          \
        pgetl__buf_be64_unchecked(b, (uint64_t)us);                                                \
        pgetl__buf_be32_unchecked(b, 0);                                                           \
        pgetl__buf_be32_unchecked(b, 0);                                                           \
        return NULL;                                                                               \
    }
ENC_DUR(enc_dur_s, s_to_us)
ENC_DUR(enc_dur_ms, ms_to_us)
ENC_DUR(enc_dur_us, us_to_us)
ENC_DUR(enc_dur_ns, ns_to_us)

/* Indexed by pgetl_arrow_unit (S, MS, US, NS). */
static const pgetl_arrow_enc_fn ts_by_unit[] = {NULL, enc_ts_s, enc_ts_ms, enc_ts_us, enc_ts_ns};
static const pgetl_arrow_enc_fn time_by_unit[] = {NULL, enc_time_s, enc_time_ms, enc_time_us,
                                                  enc_time_ns};
static const pgetl_arrow_enc_fn dur_by_unit[] = {NULL, enc_dur_s, enc_dur_ms, enc_dur_us,
                                                 enc_dur_ns};

bool pgetl__arrow_enc_pick_time(pgetl_arrow_col *c, const pgetl_arrow_type *t, uint32_t oid) {
    pgetl_arrow_enc_fn fn = NULL;
    size_t fixed = 12;
    if (t->kind == PGETL_AK_DATE32 && oid == PGETL_OID_DATE) {
        fn = enc_date32;
        fixed = 8;
    } else if (t->kind == PGETL_AK_DATE64 && oid == PGETL_OID_DATE) {
        fn = enc_date64;
        fixed = 8;
    } else if (t->kind == PGETL_AK_TIMESTAMP && ((oid == PGETL_OID_TIMESTAMPTZ && t->has_tz) ||
                                                 (oid == PGETL_OID_TIMESTAMP && !t->has_tz))) {
        fn = ts_by_unit[t->unit];
    } else if ((t->kind == PGETL_AK_TIME32 || t->kind == PGETL_AK_TIME64) &&
               oid == PGETL_OID_TIME) {
        fn = time_by_unit[t->unit];
    } else if (t->kind == PGETL_AK_DURATION && oid == PGETL_OID_INTERVAL) {
        fn = dur_by_unit[t->unit];
        fixed = 20;
    }
    if (!fn)
        return false;
    c->enc = fn;
    c->size = NULL;
    c->fixed = fixed;
    return true;
}
