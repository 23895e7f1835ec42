/*
 * bench_soak: a long run of concurrent loads, exports and pool churn in one
 * process, checking that nothing drifts.
 *
 *   bench_soak [--seconds N] [--dsn DSN] [--quiet]
 *
 * DSN: --dsn, else $PGETL_DSN, else libpq's PG* variables. bench/soak runs
 * it for 600 s against a private cluster; tests/cli/test_cli_soak.sh runs a
 * CI-sized minute against the shared test cluster.
 *
 * Threads, all until the deadline:
 * - 2 loaders, a table each: pgetl_load_files() of a CSV file through a
 *   shared pool, alternating jobs 1 and 2; every 4th load holds one bad row
 *   and runs with max_errors 1 (1 rejected), every 7th holds a bad row and is
 *   atomic (must fail and commit nothing), every 20th truncates first.
 * - 2 exporters: pgetl_export_fd() of a reference table to /dev/null and
 *   pgetl_query_arrow() of it (every row counted), and every 5th time a
 *   query stream released after its first batch (the cancel path).
 * - 1 churner: creates and destroys small pools, acquires up to their max,
 *   runs a query on each, rotates the DSN, gives one back inside an open
 *   transaction, and hands the shared pool a connection with an unfinished
 *   transaction.
 * The main thread samples the process's VmRSS (/proc/self/status) and open
 * descriptors (/proc/self/fd) once a second, and the server's backends for
 * this run's application_name (pg_stat_activity).
 *
 * Checks at the end (exit 1 naming the failure):
 * - counts reconcile: every load has rows_read = rows_loaded + rows_rejected
 *   with the expected rejects; each table holds exactly the sum of its
 *   committed loads since its last truncate; every export and every Arrow read saw every reference
 *   row; no unexpected error;
 * - RSS is flat: the highest sample of the last fifth of the run is at most
 *   RSS_SLACK_MB (+5 %) above the highest of the fifth after the warm-up;
 * - descriptors are flat: the same comparison with FD_SLACK, and after every
 *   pool is destroyed the count is back to what it was before the first;
 * - no backend leaks: never more backends than the pools allow, and none
 *   left once the pools are gone.
 */
#include <pgetl/pgetl.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Slack for "flat". glibc keeps freed memory in per-thread arenas and
 * returns it lazily, so RSS wanders by a few MB between samples of a healthy
 * run; a real per-operation leak over thousands of operations is far more.
 * Descriptors: a sample can land while a load has its input and a pool its
 * sockets open.
 */
#define RSS_SLACK_MB 8.0
#define FD_SLACK 8
#define LOAD_ROWS 5000
#define REF_ROWS 20000
#define SHARED_MAX 6
#define CHURN_MAX 3

static char dsn_buf[2048];
static const char *dsn;
static char app_name[64];
static char load_table[2][64], ref_table[64];
/* Rows each loader's table should hold: the committed loads since its last --truncate. */
static int64_t table_rows[2];
static char good_csv[256], bad_csv[256];
static double deadline;
static atomic_int failures;
static atomic_llong loads, loads_failed_ok, loaded_rows, rejected_rows;
static atomic_llong exports, arrow_reads, arrow_cancels, churn_pools, churn_acquires;
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
static pgetl_pool *shared;
static bool quiet;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void failf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&report_mu);
    fputs("soak: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&report_mu);
    va_end(ap);
    atomic_fetch_add(&failures, 1);
}

static void write_csv(const char *path, int bad_row) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs("id,name,amount,day\n", f);
    for (int i = 1; i <= LOAD_ROWS; i++) {
        if (i == bad_row)
            fprintf(f, "%d,bad,-1,2024-01-01\n", i); /* violates CHECK (amount >= 0) */
        else
            fprintf(f, "%d,\"name %d, quoted\",%d.5,2024-%02d-%02d\n", i, i, i % 1000, i % 12 + 1,
                    i % 28 + 1);
    }
    fclose(f);
}

static PGconn *admin_connect(void) {
    PGconn *pg = PQconnectdb(dsn);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "soak: cannot connect: %s", PQerrorMessage(pg));
        exit(1);
    }
    return pg;
}

static void admin_sql(PGconn *pg, const char *sql) {
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "soak: %s: %s", sql, PQerrorMessage(pg));
        exit(1);
    }
    PQclear(r);
}

static long long admin_scalar(PGconn *pg, const char *sql) {
    PGresult *r = PQexec(pg, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = atoll(PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "soak: %s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    return v;
}

static pgetl_config base_config(int min, int max) {
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    cfg.pool_min = min;
    cfg.pool_max = max;
    cfg.acquire_timeout_s = 60;
    cfg.application_name = app_name;
    return cfg;
}

/* ---- loaders --------------------------------------------------------------- */

static void *loader(void *arg) {
    int id = (int)(intptr_t)arg;
    for (long n = 0; now_s() < deadline; n++) {
        pgetl_load_options o;
        pgetl_load_options_init(&o);
        o.table = load_table[id];
        o.jobs = (n + id) % 2 ? 2 : 1;
        /* Every 20th load empties the table first, so a 10-minute run stays small. */
        o.truncate = n % 20 == 19;
        o.batch_rows = 1000;
        const char *path = good_csv;
        int64_t want_rejects = 0;
        bool must_fail = false;
        if (n % 7 == 6) {
            path = bad_csv;
            must_fail = true;
        } else if (n % 4 == 3) {
            path = bad_csv;
            o.max_errors = 1;
            want_rejects = 1;
        }
        pgetl_load_stats st;
        pgetl_error err;
        pgetl_code rc = pgetl_load_files(shared, &path, 1, &o, &st, &err);
        atomic_fetch_add(&loads, 1);
        if (must_fail) {
            if (rc == PGETL_OK || st.committed)
                failf("loader %d: an atomic load with a bad row committed", id);
            else
                atomic_fetch_add(&loads_failed_ok, 1);
            continue;
        }
        if (rc != PGETL_OK) {
            failf("loader %d: load %ld: %s", id, n, err.message);
            continue;
        }
        if (!st.committed || st.rows_read != LOAD_ROWS ||
            st.rows_loaded + st.rows_rejected != st.rows_read || st.rows_rejected != want_rejects)
            failf("loader %d: load %ld: read %" PRId64 " loaded %" PRId64 " rejected %" PRId64
                  " committed %d",
                  id, n, st.rows_read, st.rows_loaded, st.rows_rejected, (int)st.committed);
        atomic_fetch_add(&loaded_rows, st.rows_loaded);
        table_rows[id] = o.truncate ? st.rows_loaded : table_rows[id] + st.rows_loaded;
        atomic_fetch_add(&rejected_rows, st.rows_rejected);
    }
    return NULL;
}

/* ---- exporters ------------------------------------------------------------- */

static int64_t read_stream(struct ArrowArrayStream *st, bool first_only, pgetl_error *err) {
    struct ArrowSchema schema;
    if (st->get_schema(st, &schema) != 0) {
        snprintf(err->message, sizeof err->message, "get_schema: %s", st->get_last_error(st));
        return -1;
    }
    schema.release(&schema);
    int64_t rows = 0;
    for (;;) {
        struct ArrowArray a;
        if (st->get_next(st, &a) != 0) {
            snprintf(err->message, sizeof err->message, "get_next: %s", st->get_last_error(st));
            return -1;
        }
        if (!a.release)
            break;
        rows += a.length;
        a.release(&a);
        if (first_only)
            break;
    }
    return rows;
}

static void *exporter(void *arg) {
    int id = (int)(intptr_t)arg;
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT id, name, amount, day FROM %s", ref_table);
    for (long n = 0; now_s() < deadline; n++) {
        pgetl_conn *conn = NULL;
        pgetl_error err;
        if (pgetl_pool_acquire(shared, &conn, &err) != PGETL_OK) {
            failf("exporter %d: acquire: %s", id, err.message);
            continue;
        }
        if (n % 2 == 0) {
            pgetl_export_options o;
            pgetl_export_options_init(&o);
            o.table = ref_table;
            o.format = n % 4 == 0 ? PGETL_EXPORT_CSV : PGETL_EXPORT_BINARY;
            o.compression = n % 8 == 0 ? PGETL_COMPRESS_GZIP : PGETL_COMPRESS_NONE;
            int64_t rows = 0;
            if (pgetl_export_fd(conn, &o, devnull, &rows, NULL, &err) != PGETL_OK)
                failf("exporter %d: export: %s", id, err.message);
            else if (rows != REF_ROWS)
                failf("exporter %d: export saw %" PRId64 " rows, not %d", id, rows, REF_ROWS);
            atomic_fetch_add(&exports, 1);
        } else {
            bool cancel = n % 5 == 1;
            struct ArrowArrayStream st;
            if (pgetl_query_arrow(conn, sql, 0, NULL, &st, &err) != PGETL_OK) {
                failf("exporter %d: query_arrow: %s", id, err.message);
            } else {
                int64_t rows = read_stream(&st, cancel, &err);
                st.release(&st);
                if (rows < 0)
                    failf("exporter %d: arrow: %s", id, err.message);
                else if (!cancel && rows != REF_ROWS)
                    failf("exporter %d: arrow saw %" PRId64 " rows, not %d", id, rows, REF_ROWS);
                atomic_fetch_add(cancel ? &arrow_cancels : &arrow_reads, 1);
            }
        }
        /* query_arrow runs in the caller's transaction; end it before giving back. */
        if (pgetl_conn_txn_state(conn) != PGETL_TXN_IDLE && pgetl_rollback(conn, &err) != PGETL_OK)
            failf("exporter %d: rollback: %s", id, err.message);
        pgetl_pool_release(shared, conn);
    }
    close(devnull);
    return NULL;
}

/* ---- pool churn ------------------------------------------------------------ */

static void *churner(void *arg) {
    (void)arg;
    for (long n = 0; now_s() < deadline; n++) {
        pgetl_config cfg = base_config(1, CHURN_MAX);
        cfg.acquire_timeout_s = 10;
        pgetl_pool *pool = NULL;
        pgetl_error err;
        if (pgetl_pool_create(&cfg, &pool, &err) != PGETL_OK) {
            failf("churn: pool_create: %s", err.message);
            continue;
        }
        atomic_fetch_add(&churn_pools, 1);
        pgetl_conn *c[CHURN_MAX] = {0};
        for (int i = 0; i < CHURN_MAX; i++) {
            if (pgetl_pool_acquire(pool, &c[i], &err) != PGETL_OK) {
                failf("churn: acquire %d: %s", i, err.message);
                continue;
            }
            atomic_fetch_add(&churn_acquires, 1);
            if (pgetl_execute(c[i], "SELECT pg_backend_pid()", 0, NULL, NULL, &err) != PGETL_OK)
                failf("churn: execute: %s", err.message);
        }
        if (n % 3 == 0 && pgetl_pool_set_dsn(pool, dsn, &err) != PGETL_OK)
            failf("churn: set_dsn: %s", err.message);
        for (int i = 0; i < CHURN_MAX; i++) {
            if (!c[i])
                continue;
            /* Some go back inside their transaction: the pool must roll back or replace. */
            if (i != n % CHURN_MAX) {
                pgetl_error e2;
                if (pgetl_rollback(c[i], &e2) != PGETL_OK)
                    failf("churn: rollback: %s", e2.message);
            }
            pgetl_pool_release(pool, c[i]);
        }
        /* The shared pool too gets a connection back with a transaction open. */
        pgetl_conn *sc = NULL;
        if (pgetl_pool_acquire(shared, &sc, &err) == PGETL_OK) {
            if (pgetl_execute(sc, "SELECT 1", 0, NULL, NULL, &err) != PGETL_OK)
                failf("churn: shared execute: %s", err.message);
            pgetl_pool_release(shared, sc);
        } else {
            failf("churn: shared acquire: %s", err.message);
        }
        pgetl_pool_destroy(pool);
    }
    return NULL;
}

/* ---- sampling -------------------------------------------------------------- */

static double rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    fclose(f);
    return kb / 1024.0;
}

static int fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

typedef struct sample {
    double t, rss;
    int fds;
    long long backends;
} sample;

static void log_sink(void *user, pgetl_log_level level, const char *line) {
    (void)user;
    if (level >= PGETL_LOG_ERROR)
        fprintf(stderr, "soak: log: %s\n", line);
}

int main(int argc, char **argv) {
    double seconds = 600;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc)
            snprintf(dsn_buf, sizeof dsn_buf, "%s", argv[++i]);
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet = true;
        else if (argv[i][0] != '-' && atof(argv[i]) > 0)
            seconds = atof(argv[i]);
        else {
            fprintf(stderr, "usage: bench_soak [--seconds N] [--dsn DSN] [--quiet]\n");
            return 2;
        }
    }
    if (seconds < 10) {
        fprintf(stderr, "soak: at least 10 seconds\n");
        return 2;
    }
    if (!dsn_buf[0] && getenv("PGETL_DSN"))
        snprintf(dsn_buf, sizeof dsn_buf, "%s", getenv("PGETL_DSN"));
    dsn = dsn_buf;
    pgetl_log_set_handler(log_sink, NULL, PGETL_LOG_ERROR);

    int pid = (int)getpid();
    snprintf(app_name, sizeof app_name, "pgetl_soak_%d", pid);
    for (int i = 0; i < 2; i++)
        snprintf(load_table[i], sizeof load_table[i], "soak_load_%d_%d", pid, i);
    snprintf(ref_table, sizeof ref_table, "soak_ref_%d", pid);
    snprintf(good_csv, sizeof good_csv, "/tmp/pgetl_soak_%d_good.csv", pid);
    snprintf(bad_csv, sizeof bad_csv, "/tmp/pgetl_soak_%d_bad.csv", pid);
    write_csv(good_csv, 0);
    write_csv(bad_csv, LOAD_ROWS / 2);

    PGconn *pg = admin_connect();
    char sql[512];
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql,
                 "CREATE TABLE %s (id int NOT NULL, name text, amount numeric CHECK (amount >= 0),"
                 " day date)",
                 load_table[i]);
        admin_sql(pg, sql);
    }
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s AS SELECT g AS id, 'row ' || g AS name, g * 1.25 AS amount,"
             " date '2024-01-01' + g %% 365 AS day FROM generate_series(1, %d) g",
             ref_table, REF_ROWS);
    admin_sql(pg, sql);
    char backends_sql[256];
    snprintf(backends_sql, sizeof backends_sql,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", app_name);

    int fds_before = fd_count();
    pgetl_config cfg = base_config(2, SHARED_MAX);
    pgetl_error err;
    if (pgetl_pool_create(&cfg, &shared, &err) != PGETL_OK) {
        fprintf(stderr, "soak: pool_create: %s\n", err.message);
        return 1;
    }

    double start = now_s();
    deadline = start + seconds;
    pthread_t th[5];
    pthread_create(&th[0], NULL, loader, (void *)(intptr_t)0);
    pthread_create(&th[1], NULL, loader, (void *)(intptr_t)1);
    pthread_create(&th[2], NULL, exporter, (void *)(intptr_t)0);
    pthread_create(&th[3], NULL, exporter, (void *)(intptr_t)1);
    pthread_create(&th[4], NULL, churner, NULL);

    size_t cap = (size_t)seconds + 16, ns = 0;
    sample *s = calloc(cap, sizeof *s);
    long long max_backends = 0;
    while (now_s() < deadline && ns < cap) {
        sleep(1);
        sample x = {now_s() - start, rss_mb(), fd_count(), admin_scalar(pg, backends_sql)};
        s[ns++] = x;
        if (x.backends > max_backends)
            max_backends = x.backends;
        if (!quiet && (ns % 10 == 0))
            printf("soak: t=%4.0fs rss=%.1f MB fds=%d backends=%lld loads=%lld exports=%lld"
                   " arrow=%lld pools=%lld\n",
                   x.t, x.rss, x.fds, x.backends, (long long)atomic_load(&loads),
                   (long long)atomic_load(&exports), (long long)atomic_load(&arrow_reads),
                   (long long)atomic_load(&churn_pools));
        fflush(stdout);
    }
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    pgetl_pool_destroy(shared);
    pgetl_shutdown();

    /* Counts reconcile. */
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", load_table[i]);
        long long in_table = admin_scalar(pg, sql);
        if (in_table != table_rows[i])
            failf("%s holds %lld rows, its committed loads reported %" PRId64, load_table[i],
                  in_table, table_rows[i]);
    }
    if (atomic_load(&loads) < 4 || atomic_load(&exports) < 2 || atomic_load(&arrow_reads) < 2 ||
        atomic_load(&churn_pools) < 2 || atomic_load(&loads_failed_ok) < 1)
        failf("too little work done to judge (loads %lld, exports %lld, arrow %lld, pools %lld)",
              (long long)atomic_load(&loads), (long long)atomic_load(&exports),
              (long long)atomic_load(&arrow_reads), (long long)atomic_load(&churn_pools));

    /* RSS and descriptors flat: after warm-up vs the end. */
    size_t warm = ns / 5, win = ns / 5 ? ns / 5 : 1;
    double rss_base = 0, rss_end = 0;
    int fd_base = 0, fd_end = 0;
    for (size_t i = warm; i < warm + win && i < ns; i++) {
        rss_base = s[i].rss > rss_base ? s[i].rss : rss_base;
        fd_base = s[i].fds > fd_base ? s[i].fds : fd_base;
    }
    for (size_t i = ns - win; i < ns; i++) {
        rss_end = s[i].rss > rss_end ? s[i].rss : rss_end;
        fd_end = s[i].fds > fd_end ? s[i].fds : fd_end;
    }
    if (rss_end > rss_base * 1.05 + RSS_SLACK_MB)
        failf("RSS grew: %.1f MB after warm-up, %.1f MB at the end", rss_base, rss_end);
    if (fd_end > fd_base + FD_SLACK)
        failf("descriptors grew: %d after warm-up, %d at the end", fd_base, fd_end);
    int fds_after = fd_count();
    if (fds_after != fds_before)
        failf("descriptors: %d before the pools, %d after destroying them", fds_before, fds_after);

    /* Backends: bounded while running, none left after. */
    /* A closed connection's backend leaves pg_stat_activity a moment after
     * PQfinish, so a pool destroyed just before a sample may still show. */
    if (max_backends > SHARED_MAX + 2 * CHURN_MAX)
        failf("%lld backends seen, the pools allow %d", max_backends, SHARED_MAX + CHURN_MAX);
    long long left = -1;
    for (int i = 0; i < 50 && left != 0; i++) {
        left = admin_scalar(pg, backends_sql);
        if (left != 0)
            usleep(100000);
    }
    if (left != 0)
        failf("%lld backends of this run still connected after every pool was destroyed", left);

    snprintf(sql, sizeof sql, "DROP TABLE %s, %s, %s", load_table[0], load_table[1], ref_table);
    admin_sql(pg, sql);
    PQfinish(pg);
    unlink(good_csv);
    unlink(bad_csv);

    printf("soak: %.0f s: loads %lld (failed as expected %lld), rows loaded %lld, rejected %lld;"
           " exports %lld, arrow reads %lld, cancelled streams %lld; pools %lld, acquires %lld\n",
           seconds, (long long)atomic_load(&loads), (long long)atomic_load(&loads_failed_ok),
           (long long)atomic_load(&loaded_rows), (long long)atomic_load(&rejected_rows),
           (long long)atomic_load(&exports), (long long)atomic_load(&arrow_reads),
           (long long)atomic_load(&arrow_cancels), (long long)atomic_load(&churn_pools),
           (long long)atomic_load(&churn_acquires));
    printf("soak: rss %.1f MB after warm-up, %.1f MB at the end (slack %.0f MB + 5%%); fds %d -> %d"
           " (before pools %d, after %d); backends max %lld, left %lld\n",
           rss_base, rss_end, RSS_SLACK_MB, fd_base, fd_end, fds_before, fds_after, max_backends,
           left);
    free(s);
    int f = atomic_load(&failures);
    printf("soak: %s\n", f ? "FAILED" : "ok");
    return f ? 1 : 0;
}
