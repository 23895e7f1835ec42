/*
 * COPY writer benchmark: the records writer (pgetl_copy_write_row in text
 * format, pgetl_copy_write_values in binary format) loading the bench_events
 * rows of gen_events.h, against the baseline of the server reading the same
 * rows from a CSV file itself: COPY bench_events FROM '<file>' (FORMAT csv,
 * HEADER). The rows are prepared in memory beforehand (text form and typed
 * form), so the timing covers escaping/encoding and sending, not generation.
 *
 * Runs, alternately within each repetition, best of `reps` kept: the
 * baseline, text mode at the default chunk, and binary mode at chunk sizes
 * 64 KiB, 256 KiB, 1 MiB and 4 MiB. Every run loads into the freshly
 * truncated table (TRUNCATE outside the timing); each mode's stored rows are
 * checked against the baseline's (EXCEPT ALL both ways: 0 rows differ).
 *
 * usage: bench_copy [rows] [reps]        (default 1000000 rows, 3 reps)
 * DSN: $PGETL_BENCH_DSN, else $PGETL_TEST_DSN. The server must be on this
 * machine (it reads the CSV file under /tmp).
 */
#include "pgetl/pgetl.h"
#include "pgetl/libpq.h"

#include "gen_events.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench_copy"
#include "bench_util.h"

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p)
        die("malloc", "out of memory");
    return p;
}

/* All rows, prepared: text values in one arena (len -1 = NULL) and the typed fields. */
typedef struct typed_row {
    int64_t id, event_time_us;
    double amount;
    int32_t user_id, day, qty;
    bool active;
} typed_row;

typedef struct rows {
    uint64_t n;
    char *arena;
    uint64_t *start; /* n * 9 offsets into arena */
    int32_t *len;    /* n * 9 lengths, -1 = NULL  */
    typed_row *typed;
} rows;

static void rows_build(rows *r, uint64_t n) {
    r->n = n;
    r->start = xmalloc(sizeof *r->start * n * GEN_EVENTS_NCOLS);
    r->len = xmalloc(sizeof *r->len * n * GEN_EVENTS_NCOLS);
    r->typed = xmalloc(sizeof *r->typed * n);
    size_t cap = (size_t)n * 200 + 4096, used = 0;
    r->arena = xmalloc(cap);
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
        r->typed[i] =
            (typed_row){e.id, e.event_time_us, e.amount, e.user_id, e.day, e.qty, e.active};
    }
}

static pgetl_conn *connect_or_die(void) {
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = bench_dsn();
    pgetl_conn *conn = NULL;
    pgetl_error err;
    if (pgetl_connect(&cfg, &conn, &err) != PGETL_OK)
        die("connect", err.message);
    return conn;
}

static const pgetl_type event_types[GEN_EVENTS_NCOLS] = {
    PGETL_TYPE_INT64, PGETL_TYPE_INT32, PGETL_TYPE_TIMESTAMPTZ, PGETL_TYPE_DATE, PGETL_TYPE_FLOAT64,
    PGETL_TYPE_INT32, PGETL_TYPE_BOOL,  PGETL_TYPE_TEXT,        PGETL_TYPE_TEXT};

typedef struct result {
    double seconds, cpu;
    int64_t bytes;
} result;

/* One timed load through the records writer; committed so the next TRUNCATE can run. */
static result load(pgetl_conn *conn, const rows *r, pgetl_copy_format format, size_t chunk) {
    pgetl_error err;
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = format;
    o.chunk_bytes = chunk;
    o.columns = gen_events_columns;
    o.ncolumns = GEN_EVENTS_NCOLS;
    o.types = format == PGETL_COPY_BINARY ? event_types : NULL;
    double t0 = now_s(), c0 = cpu_s();
    pgetl_copy *c = NULL;
    if (pgetl_copy_begin(conn, "bench_events", &o, &c, &err) != PGETL_OK)
        die("copy_begin", err.message);
    for (uint64_t i = 0; i < r->n; i++) {
        size_t k = (size_t)i * GEN_EVENTS_NCOLS;
        pgetl_code rc;
        if (format == PGETL_COPY_BINARY) {
            const typed_row *t = &r->typed[i];
            pgetl_value v[GEN_EVENTS_NCOLS] = {
                {.v.i = t->id},
                {.v.i = t->user_id},
                {.v.i = t->event_time_us},
                {.v.i = t->day},
                {.is_null = r->len[k + 4] < 0, .v.f = t->amount},
                {.v.i = t->qty},
                {.is_null = r->len[k + 6] < 0, .v.b = t->active},
                {.is_null = r->len[k + 7] < 0,
                 .v.s = {r->arena + r->start[k + 7],
                         (size_t)(r->len[k + 7] < 0 ? 0 : r->len[k + 7])}},
                {.is_null = r->len[k + 8] < 0,
                 .v.s = {r->arena + r->start[k + 8],
                         (size_t)(r->len[k + 8] < 0 ? 0 : r->len[k + 8])}},
            };
            rc = pgetl_copy_write_values(c, v, &err);
        } else {
            const char *vals[GEN_EVENTS_NCOLS];
            size_t lens[GEN_EVENTS_NCOLS];
            for (int col = 0; col < GEN_EVENTS_NCOLS; col++) {
                vals[col] =
                    r->len[k + (size_t)col] < 0 ? NULL : r->arena + r->start[k + (size_t)col];
                lens[col] = r->len[k + (size_t)col] < 0 ? 0 : (size_t)r->len[k + (size_t)col];
            }
            rc = pgetl_copy_write_row(c, vals, lens, &err);
        }
        if (rc != PGETL_OK)
            die("copy_write", err.message);
    }
    pgetl_copy_stats st;
    if (pgetl_copy_end(c, &st, &err) != PGETL_OK)
        die("copy_end", err.message);
    result res = {now_s() - t0, cpu_s() - c0, st.bytes_sent};
    if (st.rows_loaded != (int64_t)r->n)
        die("copy_end", "row count differs");
    if (pgetl_commit(conn, &err) != PGETL_OK)
        die("commit", err.message);
    return res;
}

/* Rows in bench_events that differ from the baseline's copy (both directions). */
static long long diff_rows(PGconn *pg) {
    return scalar(pg, "SELECT count(*) FROM ((TABLE bench_events EXCEPT ALL TABLE bench_copy_ref)"
                      " UNION ALL (TABLE bench_copy_ref EXCEPT ALL TABLE bench_events)) d");
}

enum { M_BASE, M_TEXT, M_BIN64K, M_BIN256K, M_BIN1M, M_BIN4M, NMODES };
static const char *const mode_name[NMODES] = {"server COPY FROM csv file",
                                              "records text",
                                              "records binary",
                                              "records binary",
                                              "records binary",
                                              "records binary"};
static const size_t mode_chunk[NMODES] = {0,         PGETL_COPY_CHUNK, 64 << 10,
                                          256 << 10, 1 << 20,          4 << 20};

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (n == 0 || reps < 1)
        die("usage", "bench_copy [rows >= 1] [reps >= 1]");
    pgetl_log_set_handler(NULL, NULL, PGETL_LOG_WARN);
    PGconn *pg = PQconnectdb(bench_dsn());
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));
    sql(pg, "DROP TABLE IF EXISTS bench_events");
    sql(pg, "DROP TABLE IF EXISTS bench_copy_ref");
    sql(pg, GEN_EVENTS_CREATE_SQL);

    char csv[128];
    snprintf(csv, sizeof csv, "/tmp/pgetl_bench_copy_%ld.csv", (long)getpid());
    FILE *f = fopen(csv, "w");
    if (!f || gen_events_write_csv(f, n) != 0 || fclose(f) != 0)
        die("write csv", csv);
    chmod(csv, 0644);
    struct stat sb;
    stat(csv, &sb);
    char copy_sql[256];
    snprintf(copy_sql, sizeof copy_sql, "COPY bench_events FROM '%s' (FORMAT csv, HEADER)", csv);

    rows r;
    rows_build(&r, n);
    pgetl_conn *conn = connect_or_die();

    result best[NMODES];
    for (int m = 0; m < NMODES; m++)
        best[m] = (result){1e9, 1e9, 0};
    bool checked[NMODES] = {false};
    for (int rep = 0; rep < reps; rep++) {
        for (int m = 0; m < NMODES; m++) {
            sql(pg, "TRUNCATE bench_events");
            result res;
            if (m == M_BASE) {
                sql(pg, "BEGIN");
                double t0 = now_s();
                sql(pg, copy_sql);
                res = (result){now_s() - t0, 0, (int64_t)sb.st_size};
                sql(pg, "COMMIT");
                if (rep == 0)
                    sql(pg, "CREATE TABLE bench_copy_ref AS TABLE bench_events");
            } else {
                res = load(conn, &r, m == M_TEXT ? PGETL_COPY_TEXT : PGETL_COPY_BINARY,
                           mode_chunk[m]);
            }
            if (!checked[m]) {
                long long d = diff_rows(pg);
                if (d != 0) {
                    char msg[64];
                    snprintf(msg, sizeof msg, "%lld rows differ from the baseline", d);
                    die(mode_name[m], msg);
                }
                checked[m] = true;
            }
            if (res.seconds < best[m].seconds)
                best[m] = res;
        }
    }
    unlink(csv);
    sql(pg, "DROP TABLE bench_copy_ref");

    printf("bench_copy: %llu rows x 9 columns, best of %d, rows identical to the baseline\n",
           (unsigned long long)n, reps);
    printf("%-28s %9s %9s %11s %9s %8s %8s\n", "mode", "chunk", "seconds", "rows/s", "MB sent",
           "cpu s", "ratio");
    double base = best[M_BASE].seconds;
    for (int m = 0; m < NMODES; m++) {
        char chunk[32] = "-";
        if (mode_chunk[m])
            snprintf(chunk, sizeof chunk, "%zu KiB", mode_chunk[m] >> 10);
        char cpu[16] = "-";
        if (m != M_BASE)
            snprintf(cpu, sizeof cpu, "%.2f", best[m].cpu);
        printf("%-28s %9s %9.3f %11.0f %9.1f %8s %7.2fx\n", mode_name[m], chunk, best[m].seconds,
               (double)n / best[m].seconds, (double)best[m].bytes / 1e6, cpu,
               best[m].seconds / base);
    }
    int bin_default = M_BIN1M;
    for (int m = M_BIN64K; m <= M_BIN4M; m++)
        if (mode_chunk[m] == PGETL_COPY_CHUNK)
            bin_default = m;
    double rt = best[M_TEXT].seconds / base, rb = best[bin_default].seconds / base;
    printf("goals: text <= 1.05x: %.2fx %s; binary (default chunk) <= 0.60x: %.2fx %s\n", rt,
           rt <= 1.05 ? "met" : "MISSED", rb, rb <= 0.60 ? "met" : "MISSED");
    pgetl_conn_close(conn);
    PQfinish(pg);
    return 0;
}
