/*
 * The loader's binary conversion path vs its raw CSV path, same file, same
 * server, same run: pgetl_load_files with convert NEVER (the raw bytes to
 * COPY csv: the baseline) and ALWAYS (client-side strict parsing to binary
 * COPY, parsing overlapped with sending), into an UNLOGGED table truncated
 * before each load. Prints medians and the ratio.
 *
 *   PGETL_BENCH_DSN=... bench_load_convert [rows] [reps]   (default 500000, 3)
 *
 * The DSN falls back to PGETL_TEST_DSN. Start a throwaway cluster with
 * scripts/testdb.sh start DIR. Columns: int8, int4, float8, bool, date,
 * timestamptz (with offset), text: the typed mix where the server's own
 * text parsing (timestamptz above all) costs most.
 */
#include <pgetl/pgetl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_sql(pgetl_pool *pool, const char *sql) {
    pgetl_conn *c;
    pgetl_error err;
    if (pgetl_pool_acquire(pool, &c, &err) != PGETL_OK ||
        pgetl_execute(c, sql, 0, NULL, NULL, &err) != PGETL_OK ||
        pgetl_commit(c, &err) != PGETL_OK) {
        fprintf(stderr, "bench_load_convert: %s\n", err.message);
        return 1;
    }
    pgetl_pool_release(pool, c);
    return 0;
}

int main(int argc, char **argv) {
    long rows = argc > 1 ? atol(argv[1]) : 500000;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (rows < 1 || reps < 1 || reps > 20)
        return 2;
    const char *dsn = getenv("PGETL_BENCH_DSN");
    if (!dsn || !dsn[0])
        dsn = getenv("PGETL_TEST_DSN");
    if (!dsn || !dsn[0]) {
        fprintf(stderr, "bench_load_convert: set PGETL_BENCH_DSN (scripts/testdb.sh start DIR)\n");
        return 2;
    }
    char path[] = "/tmp/pgetl_bench_convert.XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f)
        return 1;
    fputs("id,user_id,amount,ok,day,ts,note\n", f);
    unsigned s = 1;
    for (long i = 0; i < rows; i++) {
        s = s * 1103515245u + 12345u;
        unsigned r = s >> 8;
        fprintf(
            f,
            "%ld,%u,%u.%04u,%c,2024-%02ld-%02ld,2024-01-01 %02ld:%02ld:%02ld.%06ld+02,note %ld\n",
            i, r % 1000000000u, r % 100000u, r % 10000u, i % 2 ? 't' : 'f', 1 + i % 12, 1 + i % 28,
            i % 24, i % 60, (i / 7) % 60, i % 1000000, i);
    }
    fclose(f);

    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    pgetl_pool *pool;
    pgetl_error err;
    if (pgetl_pool_create(&cfg, &pool, &err) != PGETL_OK) {
        fprintf(stderr, "bench_load_convert: %s\n", err.message);
        unlink(path);
        return 1;
    }
    int rc = run_sql(pool, "DROP TABLE IF EXISTS pgetl_bench_convert") ||
             run_sql(pool, "CREATE UNLOGGED TABLE pgetl_bench_convert (id int8, user_id int4, "
                           "amount float8, ok bool, day date, ts timestamptz, note text)");
    const char *paths[1] = {path};
    double t[2][20];
    for (int r = 0; r < reps && !rc; r++) {
        for (int m = 0; m < 2 && !rc; m++) {
            pgetl_load_options o;
            pgetl_load_options_init(&o);
            o.table = "pgetl_bench_convert";
            o.truncate = true;
            o.convert = m ? PGETL_CONVERT_ALWAYS : PGETL_CONVERT_NEVER;
            pgetl_load_stats st;
            double t0 = now_s();
            if (pgetl_load_files(pool, paths, 1, &o, &st, &err) != PGETL_OK) {
                fprintf(stderr, "bench_load_convert: %s\n", err.message);
                rc = 1;
                break;
            }
            t[m][r] = now_s() - t0;
            if (st.rows_loaded != rows || (m == 1 && st.batches_binary != st.batches)) {
                fprintf(stderr, "bench_load_convert: unexpected stats\n");
                rc = 1;
            }
        }
    }
    if (!rc) {
        qsort(t[0], (size_t)reps, sizeof(double), cmp);
        qsort(t[1], (size_t)reps, sizeof(double), cmp);
        double raw = t[0][reps / 2], bin = t[1][reps / 2];
        printf("rows %ld, median of %d\n", rows, reps);
        printf("raw CSV (convert NEVER)  %7.2f s  %9.0f rows/s\n", raw, (double)rows / raw);
        printf("binary  (convert ALWAYS) %7.2f s  %9.0f rows/s\n", bin, (double)rows / bin);
        printf("speedup binary / raw     %7.2fx\n", raw / bin);
    }
    run_sql(pool, "DROP TABLE IF EXISTS pgetl_bench_convert");
    pgetl_pool_destroy(pool);
    unlink(path);
    return rc;
}
