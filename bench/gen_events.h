/*
 * Deterministic rows for the COPY benchmarks (writer, Arrow ingest, loader),
 * so every bench measures the same data. Header-only, no allocation.
 *
 * Table:
 *   CREATE TABLE bench_events (id bigint, user_id integer, event_time timestamptz,
 *       day date, amount double precision, qty integer, active boolean,
 *       country text, note text)
 *
 * Row i is a pure function of i (splitmix64 of the index), so a bench can
 * generate rows in any order or in parallel. About 10% of amount, active,
 * country and note are NULL; notes hold commas, quotes, newlines, tabs,
 * backslashes, multi-byte UTF-8 and empty strings, so the CSV/text escapers
 * do real work. Amounts are multiples of 1/100 below 10^6, so their shortest
 * decimal text round-trips exactly.
 */
#ifndef PGETL_BENCH_GEN_EVENTS_H
#define PGETL_BENCH_GEN_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define GEN_EVENTS_NCOLS 9
#define GEN_EVENTS_NOTE_MAX 160

#define GEN_EVENTS_CREATE_SQL                                                                      \
    "CREATE TABLE bench_events (id bigint, user_id integer, event_time timestamptz, day date, "    \
    "amount double precision, qty integer, active boolean, country text, note text)"

static const char *const gen_events_columns[GEN_EVENTS_NCOLS] = {
    "id", "user_id", "event_time", "day", "amount", "qty", "active", "country", "note"};

typedef struct gen_event {
    int64_t id;
    int32_t user_id;
    int64_t event_time_us; /* microseconds since 1970-01-01 UTC             */
    int32_t day;           /* days since 1970-01-01 (the event_time's date) */
    double amount;
    int32_t qty;
    bool active;
    const char *country; /* static string */
    size_t country_len;
    char note[GEN_EVENTS_NOTE_MAX];
    size_t note_len;
    bool amount_null, active_null, country_null, note_null;
} gen_event;

static inline uint64_t gen_events_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static const char *const gen_events_countries[] = {"DE",         "FR",     "US",   "JP", "BR",
                                                   "Österreich", "España", "中国", "CA", "IN"};

static const char *const gen_events_fragments[] = {"plain note",
                                                   "with, comma",
                                                   "a \"quoted\" word",
                                                   "line one\nline two",
                                                   "tab\tseparated",
                                                   "back\\slash",
                                                   "crlf\r\nend",
                                                   "unicode café ü 日本 🎉",
                                                   "",
                                                   "\\N",
                                                   "NULL",
                                                   "semi;colon|pipe",
                                                   "'single' quotes",
                                                   "trailing space ",
                                                   "\\.",
                                                   "emoji 🚀🚀"};

/* Fills *e with row i (0-based). */
static inline void gen_event_row(uint64_t i, gen_event *e) {
    uint64_t r = gen_events_mix(i);
    uint64_t s = gen_events_mix(r);
    e->id = (int64_t)i + 1;
    e->user_id = (int32_t)(r % 1000000u);
    /* 2020-01-01 plus up to ~4 years, microsecond precision. */
    e->event_time_us = 1577836800000000ll + (int64_t)(s % (4ull * 365 * 86400 * 1000000ull));
    e->day = (int32_t)(e->event_time_us / 86400000000ll);
    e->amount = (double)(int64_t)((r >> 20) % 100000000u) / 100.0;
    e->qty = (int32_t)((r >> 40) % 1000u) - 10;
    e->active = ((r >> 50) & 1u) != 0;
    e->country = gen_events_countries[(s >> 8) % 10u];
    e->country_len = strlen(e->country);
    unsigned nulls = (unsigned)((s >> 16) % 40u);
    e->amount_null = nulls < 4;
    e->active_null = nulls >= 4 && nulls < 8;
    e->country_null = (s >> 24) % 10u == 0;
    e->note_null = (s >> 32) % 10u == 0;
    size_t n = 0;
    unsigned nfrag = 1 + (unsigned)((s >> 40) % 3u);
    for (unsigned k = 0; k < nfrag; k++) {
        const char *f = gen_events_fragments[(s >> (44 + 4 * k)) % 16u];
        size_t fl = strlen(f);
        if (n + fl + 1 >= GEN_EVENTS_NOTE_MAX)
            break;
        if (k) {
            e->note[n++] = ' ';
        }
        memcpy(e->note + n, f, fl);
        n += fl;
    }
    e->note[n] = '\0';
    e->note_len = n;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static inline void gen_events_civil(int64_t z, int *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

/* Text form of each column, as PostgreSQL's text/CSV input accepts it. */
typedef struct gen_event_text {
    char id[24], user_id[16], event_time[40], day[16], amount[32], qty[16], active[2];
    const char *values[GEN_EVENTS_NCOLS]; /* NULL for SQL NULL */
    size_t lengths[GEN_EVENTS_NCOLS];
} gen_event_text;

static inline void gen_event_format(const gen_event *e, gen_event_text *t) {
    int y;
    unsigned mo, d;
    int64_t secs = e->event_time_us / 1000000;
    int64_t us = e->event_time_us % 1000000;
    gen_events_civil(secs / 86400, &y, &mo, &d);
    int64_t sod = secs % 86400;
    size_t n;
    n = (size_t)snprintf(t->id, sizeof t->id, "%lld", (long long)e->id);
    t->values[0] = t->id, t->lengths[0] = n;
    n = (size_t)snprintf(t->user_id, sizeof t->user_id, "%d", (int)e->user_id);
    t->values[1] = t->user_id, t->lengths[1] = n;
    n = (size_t)snprintf(t->event_time, sizeof t->event_time,
                         "%04d-%02u-%02u %02d:%02d:%02d.%06d+00", y, mo, d, (int)(sod / 3600),
                         (int)(sod / 60 % 60), (int)(sod % 60), (int)us);
    t->values[2] = t->event_time, t->lengths[2] = n;
    n = (size_t)snprintf(t->day, sizeof t->day, "%04d-%02u-%02u", y, mo, d);
    t->values[3] = t->day, t->lengths[3] = n;
    n = (size_t)snprintf(t->amount, sizeof t->amount, "%.2f", e->amount);
    t->values[4] = e->amount_null ? NULL : t->amount, t->lengths[4] = n;
    n = (size_t)snprintf(t->qty, sizeof t->qty, "%d", (int)e->qty);
    t->values[5] = t->qty, t->lengths[5] = n;
    t->active[0] = e->active ? 't' : 'f';
    t->active[1] = '\0';
    t->values[6] = e->active_null ? NULL : t->active, t->lengths[6] = 1;
    t->values[7] = e->country_null ? NULL : e->country, t->lengths[7] = e->country_len;
    t->values[8] = e->note_null ? NULL : e->note, t->lengths[8] = e->note_len;
}

/*
 * Writes rows [0, n) as RFC 4180 CSV with a header line (NULL = unquoted
 * empty field, every non-NULL text field quoted), the way a plain CSV
 * producer would, independently of pgetl's encoders. Returns 0 or -1.
 */
static inline int gen_events_write_csv(FILE *f, uint64_t n) {
    fputs("id,user_id,event_time,day,amount,qty,active,country,note\n", f);
    gen_event e;
    gen_event_text t;
    for (uint64_t i = 0; i < n; i++) {
        gen_event_row(i, &e);
        gen_event_format(&e, &t);
        for (int c = 0; c < GEN_EVENTS_NCOLS; c++) {
            if (c)
                fputc(',', f);
            if (!t.values[c])
                continue;
            if (c < 7) {
                fwrite(t.values[c], 1, t.lengths[c], f);
                continue;
            }
            fputc('"', f);
            for (size_t k = 0; k < t.lengths[c]; k++) {
                if (t.values[c][k] == '"')
                    fputc('"', f);
                fputc(t.values[c][k], f);
            }
            fputc('"', f);
        }
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

#endif /* PGETL_BENCH_GEN_EVENTS_H */
