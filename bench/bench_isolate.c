/*
 * Bad-row isolation benchmark: the records writer (text format, max_rejects
 * set) loading the bench_events rows of gen_events.h into a table with a
 * primary key on id and CHECK (qty > -1000), once clean and once with 0.1%
 * bad rows, alternately within each repetition (best of `reps` kept). Bad
 * rows: every 1000th row (i % 1000 == 500) gets qty = -1000 (check
 * violation), except every 50000th (i % 50000 == 25500), which repeats
 * row 0's id (unique violation, raised by the index with a line number).
 *
 * Prints both times, the ratio (goal <= 1.5x, bench/README.md "Bad-row
 * isolation"), the COPY payload bytes of each run and their ratio, and
 * checks that the stored rows are exactly the good ones (count and EXCEPT
 * against the clean run's table).
 *
 * usage: bench_isolate [rows] [reps] [batch_rows]   (default 200000 3 50000)
 * DSN: $PGETL_BENCH_DSN, else $PGETL_TEST_DSN.
 */
#include "pgetl/pgetl.h"
#include "pgetl/libpq.h"

#include "gen_events.h"

#include <libpq-fe.h>
#include <stdlib.h>

#define BENCH_NAME "bench_isolate"
#include "bench_util.h"

/* Which rows are bad in the "bad" run: 0 good, 1 check violation, 2 duplicate id. */
static int bad_kind(uint64_t i) {
    if (i % 50000 == 25500)
        return 2;
    return i % 1000 == 500 ? 1 : 0;
}

/* All rows in text form, prepared beforehand: the timing covers the writer only. */
typedef struct rows {
    uint64_t n;
    char *arena;
    size_t *start; /* n * 9 offsets into arena */
    int32_t *len;  /* n * 9 lengths, -1 = NULL */
} rows;

static void rows_build(rows *r, uint64_t n) {
    r->n = n;
    r->start = malloc(sizeof *r->start * n * GEN_EVENTS_NCOLS);
    r->len = malloc(sizeof *r->len * n * GEN_EVENTS_NCOLS);
    size_t cap = (size_t)n * 200 + 4096, used = 0;
    r->arena = malloc(cap);
    if (!r->start || !r->len || !r->arena)
        die("malloc", "out of memory");
    gen_event e;
    gen_event_text t;
    for (uint64_t i = 0; i < n; i++) {
        gen_event_row(i, &e);
        gen_event_format(&e, &t);
        for (int c = 0; c < GEN_EVENTS_NCOLS; c++) {
            size_t k = (size_t)i * GEN_EVENTS_NCOLS + (size_t)c;
            if (used + t.lengths[c] > cap) {
                cap *= 2;
                r->arena = realloc(r->arena, cap);
                if (!r->arena)
                    die("realloc", "out of memory");
            }
            r->start[k] = used;
            r->len[k] = t.values[c] ? (int32_t)t.lengths[c] : -1;
            if (t.values[c]) {
                memcpy(r->arena + used, t.values[c], t.lengths[c]);
                used += t.lengths[c];
            }
        }
    }
}

typedef struct result {
    double seconds;
    int64_t bytes, loaded, rejected;
} result;

static int count_reject(void *user, const pgetl_reject *rj) {
    (void)rj;
    (*(int64_t *)user)++;
    return 0;
}

static result load(pgetl_conn *conn, const rows *r, bool with_bad, int64_t batch_rows) {
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.columns = gen_events_columns;
    o.ncolumns = GEN_EVENTS_NCOLS;
    o.batch_rows = batch_rows;
    o.max_rejects = 1000000;
    int64_t seen = 0;
    o.on_reject = count_reject;
    o.reject_user = &seen;
    double t0 = now_s();
    pgetl_copy *c = NULL;
    if (pgetl_copy_begin(conn, "bench_events", &o, &c, &err) != PGETL_OK)
        die("copy_begin", err.message);
    for (uint64_t i = 0; i < r->n; i++) {
        size_t k = (size_t)i * GEN_EVENTS_NCOLS;
        const char *vals[GEN_EVENTS_NCOLS];
        size_t lens[GEN_EVENTS_NCOLS];
        for (int col = 0; col < GEN_EVENTS_NCOLS; col++) {
            vals[col] = r->len[k + (size_t)col] < 0 ? NULL : r->arena + r->start[k + (size_t)col];
            lens[col] = r->len[k + (size_t)col] < 0 ? 0 : (size_t)r->len[k + (size_t)col];
        }
        int kind = with_bad ? bad_kind(i) : 0;
        if (kind == 1) {
            vals[5] = "-1000";
            lens[5] = 5;
        } else if (kind == 2) {
            vals[0] = "1";
            lens[0] = 1;
        }
        if (pgetl_copy_write_row(c, vals, lens, &err) != PGETL_OK)
            die("copy_write_row", err.message);
    }
    pgetl_copy_stats st;
    if (pgetl_copy_end(c, &st, &err) != PGETL_OK)
        die("copy_end", err.message);
    if (pgetl_commit(conn, &err) != PGETL_OK)
        die("commit", err.message);
    if (seen != st.rows_rejected || st.rows_loaded + st.rows_rejected != (int64_t)r->n)
        die("stats", "rows_loaded + rows_rejected != rows, or callback count differs");
    return (result){now_s() - t0, st.bytes_sent, st.rows_loaded, st.rows_rejected};
}

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    int64_t batch = argc > 3 ? atoll(argv[3]) : 50000;
    if (n == 0 || reps < 1 || batch < 1)
        die("usage", "bench_isolate [rows >= 1] [reps >= 1] [batch_rows >= 1]");
    const char *dsn = bench_dsn();
    pgetl_log_set_handler(NULL, NULL, PGETL_LOG_ERROR);
    PGconn *pg = PQconnectdb(dsn);
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));
    sql(pg, "DROP TABLE IF EXISTS bench_events");
    sql(pg, "DROP TABLE IF EXISTS bench_isolate_clean");
    sql(pg, GEN_EVENTS_CREATE_SQL);
    sql(pg, "ALTER TABLE bench_events ADD PRIMARY KEY (id), ADD CHECK (qty > -1000)");

    rows r;
    rows_build(&r, n);
    int64_t nbad = 0;
    for (uint64_t i = 0; i < n; i++)
        nbad += bad_kind(i) != 0;

    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    pgetl_conn *conn = NULL;
    pgetl_error err;
    if (pgetl_connect(&cfg, &conn, &err) != PGETL_OK)
        die("connect", err.message);

    result best[2] = {{1e9, 0, 0, 0}, {1e9, 0, 0, 0}};
    for (int rep = 0; rep < reps; rep++) {
        for (int m = 0; m < 2; m++) {
            sql(pg, "TRUNCATE bench_events");
            result res = load(conn, &r, m == 1, batch);
            if (res.rejected != (m == 1 ? nbad : 0))
                die("rejects", "wrong number of rejected rows");
            if (m == 0 && rep == 0)
                sql(pg, "CREATE TABLE bench_isolate_clean AS TABLE bench_events");
            if (m == 1 && rep == 0) {
                /* Exactly the good rows: the clean table minus the bad rows' originals. */
                char q[512];
                snprintf(q, sizeof q,
                         "SELECT count(*) FROM ((TABLE bench_events EXCEPT ALL"
                         " SELECT * FROM bench_isolate_clean WHERE (id - 1) %% 1000 <> 500)"
                         " UNION ALL (SELECT * FROM bench_isolate_clean WHERE (id - 1) %% 1000"
                         " <> 500 EXCEPT ALL TABLE bench_events)) d");
                if (scalar(pg, q) != 0)
                    die("check", "stored rows differ from the good rows");
            }
            if (res.seconds < best[m].seconds)
                best[m] = res;
        }
    }
    printf("bench_isolate: %llu rows, batch_rows %lld, %lld bad (%.2f%%), best of %d\n",
           (unsigned long long)n, (long long)batch, (long long)nbad, 100.0 * (double)nbad / (double)n,
           reps);
    printf("  clean          %8.3f s  %12lld bytes sent\n", best[0].seconds, (long long)best[0].bytes);
    printf("  with bad rows  %8.3f s  %12lld bytes sent  (%lld rejected)\n", best[1].seconds,
           (long long)best[1].bytes, (long long)best[1].rejected);
    printf("  ratio time %.2fx (goal <= 1.5x), bytes %.2fx\n", best[1].seconds / best[0].seconds,
           (double)best[1].bytes / (double)best[0].bytes);
    sql(pg, "DROP TABLE IF EXISTS bench_isolate_clean");
    pgetl_conn_close(conn);
    PQfinish(pg);
    return 0;
}
