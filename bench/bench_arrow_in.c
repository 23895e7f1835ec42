/*
 * Arrow ingest benchmark: pgetl_copy_from_arrow() of the bench_events rows
 * (bench/gen_events.h), built into Arrow batches in memory beforehand,
 * against the baseline of the server reading the same rows from a CSV file
 * itself: COPY bench_events FROM '<file>' (FORMAT csv, HEADER). Both run in
 * the same invocation, alternately, best of `reps`; the ratio pgetl/baseline
 * is printed (goal <= 0.5).
 *
 * Then peak RSS of an ingest at 100k, 1M and 5M rows, each in a fresh child
 * process (this program re-executed with --rss N) whose stream generates its
 * batches on the fly, so memory should not grow with the row count.
 *
 * usage: bench_arrow_in [rows] [reps]
 * DSN: $PGETL_BENCH_DSN, else $PGETL_TEST_DSN (scripts/testdb.sh start DIR
 * prints one). The server must be on this machine (it reads the CSV file),
 * and the user needs pg_read_server_files or superuser.
 */
#include "pgetl/pgetl.h"

#include "../tests/arrow_fixture.h"
#include "gen_events.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench_arrow_in"
#include "bench_util.h"

/* Rows per Arrow batch: polars' and pyarrow's usual chunk sizes are 64Ki-1Mi rows. */
#define BATCH_ROWS 65536

static void make_schema(struct ArrowSchema *s) {
    static const char *const formats[GEN_EVENTS_NCOLS] = {"l", "i", "tsu:UTC", "tdD", "g",
                                                          "i", "b", "u",       "u"};
    fx_schema(s, "+s", "", GEN_EVENTS_NCOLS);
    for (int c = 0; c < GEN_EVENTS_NCOLS; c++)
        fx_schema(fx_schema_child(s, c), formats[c], gen_events_columns[c], 0);
}

/* Scratch for one batch's columns, reused batch after batch (no per-row allocation). */
typedef struct scratch {
    gen_event *ev;
    int64_t *id, *ts;
    int32_t *user, *day, *qty;
    double *amount;
    bool *active, *v_amount, *v_active;
    const char **country, **note;
} scratch;

static void scratch_init(scratch *s, int64_t n) {
    s->ev = fx_xcalloc((size_t)n, sizeof *s->ev);
    s->id = fx_xcalloc((size_t)n, 8);
    s->ts = fx_xcalloc((size_t)n, 8);
    s->user = fx_xcalloc((size_t)n, 4);
    s->day = fx_xcalloc((size_t)n, 4);
    s->qty = fx_xcalloc((size_t)n, 4);
    s->amount = fx_xcalloc((size_t)n, 8);
    s->active = fx_xcalloc((size_t)n, 1);
    s->v_amount = fx_xcalloc((size_t)n, 1);
    s->v_active = fx_xcalloc((size_t)n, 1);
    s->country = fx_xcalloc((size_t)n, sizeof(char *));
    s->note = fx_xcalloc((size_t)n, sizeof(char *));
}

static void scratch_free(scratch *s) {
    free(s->ev);
    free(s->id);
    free(s->ts);
    free(s->user);
    free(s->day);
    free(s->qty);
    free(s->amount);
    free(s->active);
    free(s->v_amount);
    free(s->v_active);
    free(s->country);
    free(s->note);
}

/* Rows [start, start + n) of bench_events as one Arrow record batch. */
static void build_batch(scratch *s, uint64_t start, int64_t n, struct ArrowArray *out) {
    for (int64_t i = 0; i < n; i++) {
        gen_event *e = &s->ev[i];
        gen_event_row(start + (uint64_t)i, e);
        s->id[i] = e->id;
        s->user[i] = e->user_id;
        s->ts[i] = e->event_time_us;
        s->day[i] = e->day;
        s->amount[i] = e->amount;
        s->v_amount[i] = !e->amount_null;
        s->qty[i] = e->qty;
        s->active[i] = e->active;
        s->v_active[i] = !e->active_null;
        s->country[i] = e->country_null ? NULL : e->country;
        s->note[i] = e->note_null ? NULL : e->note;
    }
    fx_struct(out, n, GEN_EVENTS_NCOLS);
    fx_prim(fx_child(out, 0), n, s->id, 8, NULL);
    fx_prim(fx_child(out, 1), n, s->user, 4, NULL);
    fx_prim(fx_child(out, 2), n, s->ts, 8, NULL);
    fx_prim(fx_child(out, 3), n, s->day, 4, NULL);
    fx_prim(fx_child(out, 4), n, s->amount, 8, s->v_amount);
    fx_prim(fx_child(out, 5), n, s->qty, 4, NULL);
    fx_bools(fx_child(out, 6), n, s->active, s->v_active);
    fx_strings(fx_child(out, 7), n, s->country, false);
    fx_strings(fx_child(out, 8), n, s->note, false);
}

/* ---- a stream that generates its batches on the fly (for the RSS runs) ---- */

typedef struct gen_stream {
    uint64_t next, total;
    scratch s;
} gen_stream;

static int gen_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
    (void)st;
    make_schema(out);
    return 0;
}

static int gen_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
    gen_stream *g = st->private_data;
    if (g->next >= g->total) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    int64_t n = (int64_t)(g->total - g->next < BATCH_ROWS ? g->total - g->next : BATCH_ROWS);
    build_batch(&g->s, g->next, n, out);
    g->next += (uint64_t)n;
    return 0;
}

static const char *gen_last_error(struct ArrowArrayStream *st) {
    (void)st;
    return NULL;
}

static void gen_release(struct ArrowArrayStream *st) {
    gen_stream *g = st->private_data;
    scratch_free(&g->s);
    free(g);
    st->release = NULL;
}

static void gen_stream_init(struct ArrowArrayStream *st, uint64_t rows) {
    gen_stream *g = fx_xcalloc(1, sizeof *g);
    g->total = rows;
    scratch_init(&g->s, BATCH_ROWS);
    st->get_schema = gen_get_schema;
    st->get_next = gen_get_next;
    st->get_last_error = gen_last_error;
    st->release = gen_release;
    st->private_data = g;
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

/* Child: ingest `rows` generated rows (rolled back) and exit; the parent reads ru_maxrss. */
static int rss_child(uint64_t rows) {
    pgetl_conn *conn = connect_or_die();
    struct ArrowArrayStream st;
    gen_stream_init(&st, rows);
    pgetl_error err;
    pgetl_copy_stats stats;
    if (pgetl_copy_from_arrow(conn, "bench_events", &st, NULL, 0, &stats, &err) != PGETL_OK)
        die("copy_from_arrow", err.message);
    if (stats.rows_loaded != (int64_t)rows)
        die("copy_from_arrow", "row count differs");
    pgetl_rollback(conn, NULL);
    pgetl_conn_close(conn);
    return 0;
}

static double rss_of_child(const char *self, uint64_t rows) {
    char arg[32];
    snprintf(arg, sizeof arg, "%llu", (unsigned long long)rows);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", "failed");
    if (pid == 0) {
        execl(self, self, "--rss", arg, (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("rss child", "failed");
    return (double)ru.ru_maxrss / 1024.0; /* KiB -> MiB */
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--rss") == 0)
        return rss_child(strtoull(argv[2], NULL, 10));
    uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (rows == 0 || reps < 1) {
        fprintf(stderr, "usage: bench_arrow_in [rows] [reps]\n");
        return 2;
    }
    pgetl_log_set_handler(NULL, NULL, PGETL_LOG_WARN);
    PGconn *pg = PQconnectdb(bench_dsn());
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));
    sql(pg, "DROP TABLE IF EXISTS bench_events");
    sql(pg, GEN_EVENTS_CREATE_SQL);

    /* RSS first, while this process is small (the children are fresh processes anyway). */
    static const uint64_t rss_rows[] = {100000, 1000000, 5000000};
    double rss[3];
    for (int k = 0; k < 3; k++)
        rss[k] = rss_of_child("/proc/self/exe", rss_rows[k]);

    char csv[128];
    snprintf(csv, sizeof csv, "/tmp/pgetl_bench_arrow_in_%ld.csv", (long)getpid());
    FILE *f = fopen(csv, "w");
    if (!f || gen_events_write_csv(f, rows) != 0 || fclose(f) != 0)
        die("write csv", csv);
    chmod(csv, 0644);

    /* All batches built up front: the timing covers ingest, not generation. */
    int nb = (int)((rows + BATCH_ROWS - 1) / BATCH_ROWS);
    struct ArrowSchema schema;
    struct ArrowArray *batches = fx_xcalloc((size_t)nb, sizeof *batches);
    scratch s;
    scratch_init(&s, BATCH_ROWS);

    pgetl_conn *conn = connect_or_die();
    double best_base = 1e9, best_pgetl = 1e9, best_cpu = 1e9, best_bin = 1e9;
    /*
     * A second reference: the server reading the same rows as a binary COPY
     * file it wrote itself. No client can load faster than that, so
     * pgetl/binary-file shows what is left to gain on the client side.
     */
    char bin[128], bin_sql[256];
    snprintf(bin, sizeof bin, "/tmp/pgetl_bench_arrow_in_%ld.bin", (long)getpid());
    snprintf(bin_sql, sizeof bin_sql, "COPY bench_events FROM '%s' (FORMAT binary)", bin);
    char copy_sql[256];
    snprintf(copy_sql, sizeof copy_sql, "COPY bench_events FROM '%s' (FORMAT csv, HEADER)", csv);
    for (int r = 0; r < reps; r++) {
        sql(pg, "TRUNCATE bench_events");
        sql(pg, "BEGIN");
        double t0 = now_s();
        sql(pg, copy_sql);
        double tb = now_s() - t0;
        sql(pg, "COMMIT");
        if (tb < best_base)
            best_base = tb;
        if (scalar(pg, "SELECT count(*) FROM bench_events") != (long long)rows)
            die("baseline", "row count differs");
        if (r == 0) {
            char out[256];
            snprintf(out, sizeof out, "COPY bench_events TO '%s' (FORMAT binary)", bin);
            sql(pg, out);
        }
        sql(pg, "TRUNCATE bench_events");
        sql(pg, "BEGIN");
        t0 = now_s();
        sql(pg, bin_sql);
        double tbin = now_s() - t0;
        sql(pg, "COMMIT");
        if (tbin < best_bin)
            best_bin = tbin;

        for (int b = 0; b < nb; b++) {
            uint64_t start = (uint64_t)b * BATCH_ROWS;
            int64_t n = (int64_t)(rows - start < BATCH_ROWS ? rows - start : BATCH_ROWS);
            build_batch(&s, start, n, &batches[b]);
        }
        make_schema(&schema);
        struct ArrowArrayStream st;
        fx_stream(&st, &schema, batches, nb, -1);
        sql(pg, "TRUNCATE bench_events");
        pgetl_error err;
        pgetl_copy_stats stats;
        double c0 = cpu_s();
        t0 = now_s();
        if (pgetl_copy_from_arrow(conn, "bench_events", &st, NULL, 0, &stats, &err) != PGETL_OK)
            die("copy_from_arrow", err.message);
        if (pgetl_commit(conn, &err) != PGETL_OK)
            die("commit", err.message);
        double tp = now_s() - t0;
        double tc = cpu_s() - c0;
        if (tp < best_pgetl)
            best_pgetl = tp;
        if (tc < best_cpu)
            best_cpu = tc;
        if (scalar(pg, "SELECT count(*) FROM bench_events") != (long long)rows)
            die("pgetl", "row count differs");
        printf("rep %d: baseline %.3f s, server binary file %.3f s, pgetl %.3f s (client CPU "
               "%.3f s)\n",
               r + 1, tb, tbin, tp, tc);
    }
    /* Same rows either way: the two loads must store identical data. */
    sql(pg, "CREATE TEMP TABLE csv_copy AS SELECT * FROM bench_events WITH NO DATA");
    sql(pg, "BEGIN");
    snprintf(copy_sql, sizeof copy_sql, "COPY csv_copy FROM '%s' (FORMAT csv, HEADER)", csv);
    sql(pg, copy_sql);
    long long diff = scalar(pg, "SELECT count(*) FROM ((TABLE bench_events EXCEPT ALL TABLE "
                                "csv_copy) UNION ALL (TABLE csv_copy EXCEPT ALL TABLE "
                                "bench_events)) d");
    sql(pg, "ROLLBACK");
    unlink(csv);
    /* The server wrote the binary file as its own user; /tmp's sticky bit may forbid this. */
    if (unlink(bin) != 0)
        fprintf(stderr, "bench_arrow_in: could not remove %s (owned by the server's user)\n", bin);

    printf("bench_arrow_in: rows=%llu batch_rows=%d reps=%d (best of each)\n",
           (unsigned long long)rows, BATCH_ROWS, reps);
    printf("  baseline  server COPY FROM csv file  %8.3f s  %9.0f rows/s\n", best_base,
           (double)rows / best_base);
    printf("  floor     server COPY FROM binary file %6.3f s  %9.0f rows/s\n", best_bin,
           (double)rows / best_bin);
    printf("  pgetl     copy_from_arrow (binary)   %8.3f s  %9.0f rows/s\n", best_pgetl,
           (double)rows / best_pgetl);
    printf("  pgetl client CPU (encode + send)     %8.3f s\n", best_cpu);
    printf("  ratio pgetl/baseline = %.2fx (goal <= 0.5x)\n", best_pgetl / best_base);
    printf("  ratio pgetl/binary-file floor = %.2fx\n", best_pgetl / best_bin);
    printf("  rows differing between the two loads: %lld\n", diff);
    double lo = rss[0], hi = rss[0];
    for (int k = 0; k < 3; k++) {
        lo = rss[k] < lo ? rss[k] : lo;
        hi = rss[k] > hi ? rss[k] : hi;
        printf("  peak RSS ingest of %7llu rows (generated on the fly): %6.1f MiB\n",
               (unsigned long long)rss_rows[k], rss[k]);
    }
    printf("  RSS max/min = %.3f (goal <= 1.10)\n", hi / lo);

    scratch_free(&s);
    free(batches);
    pgetl_conn_close(conn);
    sql(pg, "DROP TABLE bench_events");
    PQfinish(pg);
    return diff == 0 ? 0 : 1;
}
