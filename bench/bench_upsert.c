/*
 * bench_upsert [ROWS] [ROUNDS]: single-row upserts into a table with a
 * primary key, three ways, in one run:
 *
 *   one-at-a-time  PQexecParams per row (one round trip each), one transaction
 *   pipelined      pgetl_pipeline_exec (libpq pipeline mode, savepoint groups)
 *   copy+merge     COPY into a temp staging table, then one
 *                  INSERT ... SELECT ... ON CONFLICT DO UPDATE
 *
 * Each round starts from the same table: half of the keys already present,
 * so half the upserts update and half insert. Every method runs in one
 * transaction and commits. Rounds alternate the methods (the machine is
 * shared, so load moves between rounds); the best round of each is kept and
 * ratios are printed against one-at-a-time. Runs over TCP to 127.0.0.1 (the
 * password role, as a real client would connect) and over the Unix socket.
 *
 * DSN: $PGETL_BENCH_DSN, else $PGETL_TEST_DSN (a scripts/testdb.sh cluster).
 */
#include "pgetl/pgetl.h"
#include "pgetl/libpq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_pg(PGconn *pg, const char *what) {
    fprintf(stderr, "bench_upsert: %s: %s", what, PQerrorMessage(pg));
    exit(1);
}

static void run_sql(PGconn *pg, const char *sql) {
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die_pg(pg, sql);
    PQclear(r);
}

static int64_t scalar(PGconn *pg, const char *sql) {
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        die_pg(pg, sql);
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

#define UPSERT_SQL                                                                                 \
    "INSERT INTO bench_upsert (id, name, n) VALUES ($1::bigint, $2, $3::int) "                     \
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, n = excluded.n"

static int64_t rows;
static const char **params; /* rows x 3, row-major */
static char *param_text;

static void make_params(int round) {
    free(params);
    free(param_text);
    params = malloc((size_t)rows * 3 * sizeof *params);
    param_text = malloc((size_t)rows * 80);
    if (!params || !param_text) {
        fprintf(stderr, "bench_upsert: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < rows; i++) {
        char *p = param_text + i * 80;
        /* Keys 0, 2, 4, ... exist before the round; 1, 3, 5 ... are new. */
        snprintf(p, 24, "%" PRId64, i % INT64_C(1000000000000));
        snprintf(p + 24, 40, "name-%" PRId64 "-r%d", i % INT64_C(1000000000000), round % 100000);
        snprintf(p + 64, 16, "%d", round % 100000);
        params[3 * i] = p;
        params[3 * i + 1] = p + 24;
        params[3 * i + 2] = p + 64;
    }
}

static void reset_table(PGconn *pg) {
    run_sql(pg, "DROP TABLE IF EXISTS bench_upsert");
    run_sql(pg, "CREATE TABLE bench_upsert (id bigint PRIMARY KEY, name text, n int)");
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO bench_upsert SELECT g, 'old', -1 FROM generate_series(0, %" PRId64
             " - 1, 2) g",
             rows);
    run_sql(pg, sql);
    run_sql(pg, "VACUUM ANALYZE bench_upsert");
}

static void check_table(PGconn *pg, int round) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM bench_upsert WHERE n = %d", round);
    int64_t n = scalar(pg, sql);
    int64_t total = scalar(pg, "SELECT count(*) FROM bench_upsert");
    if (n != rows || total != rows) {
        fprintf(stderr, "bench_upsert: wrong result: %" PRId64 " rows, %" PRId64 " upserted\n",
                total, n);
        exit(1);
    }
}

static double one_at_a_time(PGconn *pg) {
    double t0 = now_s();
    run_sql(pg, "BEGIN");
    for (int64_t i = 0; i < rows; i++) {
        PGresult *r = PQexecParams(pg, UPSERT_SQL, 3, NULL, params + 3 * i, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die_pg(pg, "upsert");
        PQclear(r);
    }
    run_sql(pg, "COMMIT");
    return now_s() - t0;
}

static double pipelined(pgetl_conn *conn) {
    double t0 = now_s();
    pgetl_error err;
    pgetl_pipeline_report rep;
    if (pgetl_pipeline_exec(conn, UPSERT_SQL, 3, rows, params, NULL, &rep, &err) != PGETL_OK ||
        pgetl_commit(conn, &err) != PGETL_OK) {
        char buf[2048];
        fprintf(stderr, "bench_upsert: pipeline: %s\n", pgetl_error_format(&err, buf, sizeof buf));
        exit(1);
    }
    return now_s() - t0;
}

/* The COPY text format needs no escaping for these values (no tabs, newlines
 * or backslashes), so lines are written as they are. */
static double copy_merge(PGconn *pg) {
    double t0 = now_s();
    run_sql(pg, "BEGIN");
    run_sql(pg, "CREATE TEMP TABLE bench_stage (id bigint, name text, n int) ON COMMIT DROP");
    PGresult *r = PQexec(pg, "COPY bench_stage FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        die_pg(pg, "COPY");
    PQclear(r);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (int64_t i = 0; i < rows; i++) {
        if (cap - len < 128) {
            if (PQputCopyData(pg, buf, (int)len) != 1)
                die_pg(pg, "PQputCopyData");
            len = 0;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\t%s\n", params[3 * i],
                                params[3 * i + 1], params[3 * i + 2]);
    }
    if ((len && PQputCopyData(pg, buf, (int)len) != 1) || PQputCopyEnd(pg, NULL) != 1)
        die_pg(pg, "COPY data");
    free(buf);
    r = PQgetResult(pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die_pg(pg, "COPY end");
    PQclear(r);
    while ((r = PQgetResult(pg)) != NULL)
        PQclear(r);
    run_sql(pg, "INSERT INTO bench_upsert (id, name, n) SELECT id, name, n FROM bench_stage "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, n = excluded.n");
    run_sql(pg, "COMMIT");
    return now_s() - t0;
}

static void bench(const char *label, const char *dsn, int nrounds) {
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    pgetl_conn *conn = NULL;
    pgetl_error err;
    if (pgetl_connect(&cfg, &conn, &err) != PGETL_OK) {
        char buf[2048];
        fprintf(stderr, "bench_upsert: connect (%s): %s\n", label,
                pgetl_error_format(&err, buf, sizeof buf));
        exit(1);
    }
    PGconn *pg = pgetl_conn_pg(conn);
    double best[3] = {1e30, 1e30, 1e30};
    static const char *names[3] = {"one-at-a-time", "pipelined", "copy+merge"};
    int round = 0;
    for (int k = 0; k < nrounds; k++) {
        for (int m = 0; m < 3; m++) {
            round++;
            make_params(round);
            reset_table(pg);
            double t = m == 0 ? one_at_a_time(pg) : m == 1 ? pipelined(conn) : copy_merge(pg);
            check_table(pg, round);
            if (t < best[m])
                best[m] = t;
        }
    }
    printf("\n%s, %" PRId64 " upserts (half update, half insert), best of %d rounds:\n", label,
           rows, nrounds);
    printf("  %-14s %10s %12s %10s\n", "method", "seconds", "rows/s", "vs one");
    for (int m = 0; m < 3; m++)
        printf("  %-14s %10.3f %12.0f %9.1fx\n", names[m], best[m], (double)rows / best[m],
               best[0] / best[m]);
    run_sql(pg, "DROP TABLE bench_upsert");
    pgetl_conn_close(conn);
}

int main(int argc, char **argv) {
    rows = argc > 1 ? strtoll(argv[1], NULL, 10) : 100000;
    int nrounds = argc > 2 ? atoi(argv[2]) : 3;
    if (rows < 2 || nrounds < 1) {
        fprintf(stderr, "usage: bench_upsert [ROWS >= 2] [ROUNDS >= 1]\n");
        return 2;
    }
    const char *dsn = getenv("PGETL_BENCH_DSN");
    if (!dsn || !dsn[0])
        dsn = getenv("PGETL_TEST_DSN");
    if (!dsn || !dsn[0]) {
        fprintf(stderr, "bench_upsert: set PGETL_BENCH_DSN or PGETL_TEST_DSN\n");
        return 2;
    }
    /* The TCP DSN reuses the cluster's port; the password stays out of the output. */
    const char *port = strstr(dsn, "port=");
    if (port) {
        char tcp[256];
        snprintf(tcp, sizeof tcp,
                 "host=127.0.0.1 port=%d user=pgetl_pw password=pgetl-secret dbname=postgres",
                 atoi(port + 5));
        bench("TCP 127.0.0.1 (scram, pgetl_pw)", tcp, nrounds);
    }
    bench("Unix socket", dsn, nrounds);
    free(params);
    free(param_text);
    return 0;
}
