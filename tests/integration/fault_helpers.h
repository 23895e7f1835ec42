/*
 * Shared by the test_fault_* binaries: the seven data paths as uniform
 * operations, and the checks every fault test makes afterwards (a clear
 * error, nothing committed, the pool recovers, no backend or descriptor
 * left behind), plus a hang watchdog.
 *
 * Each path moves ~3-4 MB so that a fault injected after ~0.5 MB lands in
 * the middle of the transfer.
 */
#ifndef PGETL_TESTS_FAULT_HELPERS_H
#define PGETL_TESTS_FAULT_HELPERS_H

#include "harness.h"
#include "arrow_fixture.h"
#include "faultproxy.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <time.h>
#include <unistd.h>

#define FH_ROWS 100000 /* rows per path: ~3.5 MB of CSV */

/* ---- hang watchdog ------------------------------------------------------- */

static pthread_mutex_t fh_wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fh_wd_cv = PTHREAD_COND_INITIALIZER;
static int fh_wd_armed;
static double fh_wd_secs;
static char fh_wd_what[256];
static pthread_t fh_wd_thread;

static inline double fh_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *fh_wd_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&fh_wd_mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + fh_wd_secs;
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    while (fh_wd_armed) {
        if (pthread_cond_timedwait(&fh_wd_cv, &fh_wd_mu, &ts) == ETIMEDOUT && fh_wd_armed) {
            /* cmocka cannot fail a test from another thread: say why and stop. */
            fprintf(stderr, "HANG: %s did not return within %.1f s\n", fh_wd_what, fh_wd_secs);
            fflush(stderr);
            _exit(70);
        }
    }
    pthread_mutex_unlock(&fh_wd_mu);
    return NULL;
}

/* Fails the whole binary (exit 70) unless fh_watchdog_disarm() comes within secs. */
static inline void fh_watchdog_arm(double secs, const char *what) {
    pthread_mutex_lock(&fh_wd_mu);
    fh_wd_armed = 1;
    fh_wd_secs = secs;
    snprintf(fh_wd_what, sizeof fh_wd_what, "%s", what);
    pthread_mutex_unlock(&fh_wd_mu);
    pthread_create(&fh_wd_thread, NULL, fh_wd_main, NULL);
}

static inline void fh_watchdog_disarm(void) {
    pthread_mutex_lock(&fh_wd_mu);
    fh_wd_armed = 0;
    pthread_cond_signal(&fh_wd_cv);
    pthread_mutex_unlock(&fh_wd_mu);
    pthread_join(fh_wd_thread, NULL);
}

/* ---- resources ------------------------------------------------------------ */

static inline int fh_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

/* Backends with this application_name (from a direct connection). */
static inline int64_t fh_backends(PGconn *pg, const char *app) {
    const char *params[1] = {app};
    PGresult *r =
        PQexecParams(pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", 1,
                     NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg_stat_activity: %s", PQerrorMessage(pg));
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

/* Waits up to 10 s for the backends of `app` to go; returns how many are left. */
static inline int64_t fh_wait_backends_gone(PGconn *pg, const char *app) {
    int64_t n = 0;
    for (int i = 0; i < 200; i++) {
        if ((n = fh_backends(pg, app)) == 0)
            return 0;
        usleep(50000);
    }
    return n;
}

/* Terminates every backend of `app`; returns how many were signalled. */
static inline int64_t fh_terminate(PGconn *pg, const char *app) {
    const char *params[1] = {app};
    PGresult *r = PQexecParams(pg,
                               "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                               1, NULL, params, NULL, NULL, 0);
    int64_t n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return n;
}

/* Waits (up to 10 s) until the proxy has no connection open. */
static inline int fh_wait_proxy_idle(faultproxy *fp) {
    int n = 0;
    for (int i = 0; i < 200 && (n = fp_nconns(fp)) > 0; i++)
        usleep(50000);
    return n;
}

/* ---- setup: a proxy in front of a cluster, a pool through it ---------------- */

/*
 * Starts a fault proxy in front of 127.0.0.1:target_port (harness_port() for
 * the shared cluster) and writes the DSN that goes through it to dsn_out
 * (harness_tcp_dsn_at: role pgetl_pw, database dbname, NULL for this
 * binary's). Fails the test when the proxy cannot start; fp_stop() frees it.
 */
static inline faultproxy *fh_proxy_start(int target_port, const char *dbname, char *dsn_out,
                                         size_t size) {
    faultproxy *fp = fp_start(target_port);
    assert_non_null(fp);
    harness_tcp_dsn_at(fp_port(fp), dbname, dsn_out, size);
    return fp;
}

/*
 * The fault tests' pool config (dsn and app are borrowed): pool_min 1,
 * pool_max 3, acquire_timeout_s 5, connect_timeout_s 2 (short, so a stalled
 * connect fails fast), the rest pgetl's defaults. Cases override what they
 * test.
 */
static inline pgetl_config fh_config(const char *dsn, const char *app) {
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    cfg.application_name = app;
    cfg.pool_min = 1;
    cfg.pool_max = 3;
    cfg.acquire_timeout_s = 5;
    cfg.connect_timeout_s = 2;
    return cfg;
}

/* A pool for cfg (free with pgetl_pool_destroy); fails the test when it cannot be made. */
static inline pgetl_pool *fh_pool_create(const pgetl_config *cfg) {
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(cfg, &pool, &err), &err);
    return pool;
}

/* ---- trigger: act once the proxy has moved `bytes` in a direction ---------- */

typedef struct fh_trigger {
    faultproxy *fp;
    fp_dir dir;
    int64_t bytes;
    void (*action)(void *arg);
    void *arg;
    volatile int stop;
    int fired;
    pthread_t thread;
} fh_trigger;

static void *fh_trigger_main(void *arg) {
    fh_trigger *t = arg;
    while (!t->stop) {
        if (fp_forwarded(t->fp, t->dir) >= t->bytes) {
            t->action(t->arg);
            t->fired = 1;
            return NULL;
        }
        usleep(2000);
    }
    return NULL;
}

static inline void fh_trigger_start(fh_trigger *t) {
    t->stop = 0;
    t->fired = 0;
    t->bytes += fp_forwarded(t->fp, t->dir);
    pthread_create(&t->thread, NULL, fh_trigger_main, t);
}

static inline int fh_trigger_join(fh_trigger *t) {
    t->stop = 1;
    pthread_join(t->thread, NULL);
    return t->fired;
}

/* ---- the paths ----------------------------------------------------------- */

typedef enum fh_path {
    FH_LOAD,
    FH_LOAD_MAXERR,
    FH_LOAD_JOBS2,
    FH_ARROW,
    FH_RECORDS,
    FH_QUERY_ARROW,
    FH_EXPORT,
    FH_NPATHS
} fh_path;

static const char *const fh_path_name[FH_NPATHS] = {
    "load (atomic)",  "load max_errors", "load jobs=2", "Arrow ingest",
    "records writer", "query->Arrow",    "export"};

/* Whether the path writes (and so must leave zero rows behind). */
static inline bool fh_path_writes(fh_path p) {
    return p <= FH_RECORDS;
}

/* Which direction carries the path's bulk data. */
static inline fp_dir fh_path_dir(fh_path p) {
    return fh_path_writes(p) ? FP_UP : FP_DOWN;
}

/* A CSV of FH_ROWS rows (id,v) with two bad rows when `bad`; path static. */
static inline const char *fh_csv(bool bad) {
    static char path[2][256];
    char *out = path[bad];
    if (out[0])
        return out;
    snprintf(out, 256, "/tmp/pgetl_fault_%s_%d_%d.csv", PGETL_TEST_NAME, (int)getpid(), bad);
    FILE *f = fopen(out, "w");
    fputs("id,v\n", f);
    for (int i = 1; i <= FH_ROWS; i++) {
        if (bad && (i == 10 || i == 20))
            fprintf(f, "notanumber,bad row %d\n", i);
        else
            fprintf(f, "%d,row %d with some padding text\n", i, i);
    }
    fclose(f);
    return out;
}

static inline void fh_csv_cleanup(void) {
    for (int b = 0; b < 2; b++) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/pgetl_fault_%s_%d_%d.csv", PGETL_TEST_NAME, (int)getpid(),
                 b);
        unlink(path);
    }
}

/* An Arrow stream of FH_ROWS rows (id int64, v utf8) in 4 batches. */
static inline void fh_arrow_stream(struct ArrowArrayStream *st) {
    enum { NB = 4, PER = FH_ROWS / NB };
    struct ArrowSchema schema;
    fx_schema(&schema, "+s", "", 2);
    fx_schema(fx_schema_child(&schema, 0), "l", "id", 0);
    fx_schema(fx_schema_child(&schema, 1), "u", "v", 0);
    struct ArrowArray batches[NB];
    static int64_t ids[PER];
    static char text[PER][40];
    static const char *strs[PER];
    for (int b = 0; b < NB; b++) {
        for (int i = 0; i < PER; i++) {
            ids[i] = (int64_t)b * PER + i + 1;
            snprintf(text[i], sizeof text[i], "row %d with some padding text", b * PER + i + 1);
            strs[i] = text[i];
        }
        fx_struct(&batches[b], PER, 2);
        fx_prim(fx_child(&batches[b], 0), PER, ids, sizeof ids[0], NULL);
        fx_strings(fx_child(&batches[b], 1), PER, strs, false);
    }
    fx_stream(st, &schema, batches, NB, -1);
}

/* ~3.5 MB, produced over ~0.3 s (a 30 ms pause every 10000 rows), so that a
 * fault at 0.5 MB reaches a server still sending. */
#define FH_QUERY                                                                                   \
    "SELECT g AS id, 'row ' || g || ' with some padding text' AS v "                               \
    "FROM generate_series(1, 100000) g "                                                           \
    "WHERE g % 10000 <> 0 OR pg_sleep(0.03)::text = ''"

/* The query the reading paths run (tests may point it elsewhere). */
static const char *fh_query = FH_QUERY;
static int64_t fh_query_rows = FH_ROWS;

/* The stats of the last load fh_run ran. */
static pgetl_load_stats fh_load_stats;

/* Runs the path on `pool` (table fault_t); fills err; returns the code. */
static inline pgetl_code fh_run(fh_path p, pgetl_pool *pool, pgetl_error *err) {
    pgetl_error_init(err);
    if (p <= FH_LOAD_JOBS2) {
        pgetl_load_options o;
        pgetl_load_options_init(&o);
        o.table = "fault_t";
        o.batch_rows = 20000;
        if (p == FH_LOAD_MAXERR)
            o.max_errors = 10;
        if (p == FH_LOAD_JOBS2)
            o.jobs = 2;
        const char *paths[1] = {fh_csv(p == FH_LOAD_MAXERR)};
        return pgetl_load_files(pool, paths, 1, &o, &fh_load_stats, err);
    }
    pgetl_conn *conn = NULL;
    pgetl_code rc = pgetl_pool_acquire(pool, &conn, err);
    if (rc != PGETL_OK)
        return rc;
    if (p == FH_ARROW) {
        struct ArrowArrayStream st;
        fh_arrow_stream(&st);
        rc = pgetl_copy_from_arrow(conn, "fault_t", &st, NULL, 0, NULL, err);
        if (rc == PGETL_OK)
            rc = pgetl_commit(conn, err);
    } else if (p == FH_RECORDS) {
        pgetl_copy *copy = NULL;
        rc = pgetl_copy_begin(conn, "fault_t", NULL, &copy, err);
        char id[32], v[64];
        const char *vals[2] = {id, v};
        for (int i = 1; rc == PGETL_OK && i <= FH_ROWS; i++) {
            snprintf(id, sizeof id, "%d", i);
            snprintf(v, sizeof v, "row %d with some padding text", i);
            rc = pgetl_copy_write_row(copy, vals, NULL, err);
        }
        if (copy) {
            pgetl_error e2;
            pgetl_code rc2 = pgetl_copy_end(copy, NULL, &e2);
            if (rc == PGETL_OK && rc2 != PGETL_OK) {
                rc = rc2;
                *err = e2;
            }
        }
        if (rc == PGETL_OK)
            rc = pgetl_commit(conn, err);
    } else if (p == FH_QUERY_ARROW) {
        struct ArrowArrayStream st;
        rc = pgetl_query_arrow(conn, fh_query, 0, NULL, &st, err);
        if (rc == PGETL_OK) {
            int64_t rows = 0;
            for (;;) {
                struct ArrowArray a;
                int e = st.get_next(&st, &a);
                if (e != 0) {
                    const char *m = st.get_last_error(&st);
                    rc = pgetl_error_set(err, PGETL_EIO, "query_arrow stream: errno %d: %s", e,
                                         m ? m : "(no message)");
                    break;
                }
                if (!a.release)
                    break;
                rows += a.length;
                a.release(&a);
            }
            st.release(&st);
            if (rc == PGETL_OK && rows != fh_query_rows)
                rc = pgetl_error_set(err, PGETL_EDATA, "query_arrow: %lld rows", (long long)rows);
        }
        pgetl_rollback(conn, NULL);
    } else {
        pgetl_export_options o;
        pgetl_export_options_init(&o);
        o.query = fh_query;
        FILE *devnull = fopen("/dev/null", "w");
        int64_t rows = 0;
        rc = pgetl_export_fd(conn, &o, fileno(devnull), &rows, NULL, err);
        fclose(devnull);
        pgetl_rollback(conn, NULL);
    }
    pgetl_pool_release(pool, conn);
    return rc;
}

/*
 * fh_run under the hang watchdog (armed for watchdog_s, naming `what`);
 * *secs_out gets how long the path took.
 */
static inline pgetl_code fh_run_watched(fh_path p, pgetl_pool *pool, double watchdog_s,
                                        const char *what, double *secs_out, pgetl_error *err) {
    fh_watchdog_arm(watchdog_s, what);
    double t0 = fh_now();
    pgetl_code rc = fh_run(p, pool, err);
    *secs_out = fh_now() - t0;
    fh_watchdog_disarm();
    return rc;
}

/* Rows in fault_t, from a direct connection. */
static inline int64_t fh_rows(PGconn *pg) {
    return harness_scalar(pg, "SELECT count(*) FROM fault_t");
}

static inline void fh_reset_table(PGconn *pg) {
    harness_sql(pg, "DROP TABLE IF EXISTS fault_t");
    harness_sql(pg, "CREATE TABLE fault_t (id bigint, v text)");
}

/* The pool hands out a working connection again (within the acquire timeout). */
static inline void fh_assert_pool_recovers(pgetl_pool *pool) {
    pgetl_conn *conn = NULL;
    pgetl_error err;
    pgetl_code rc = PGETL_ETIMEOUT;
    /* The first acquire may get a connection that died with the fault but
     * looked alive; a query on it fails and it is replaced on release. */
    for (int attempt = 0; attempt < 3; attempt++) {
        assert_pgetl_ok(pgetl_pool_acquire(pool, &conn, &err), &err);
        rc = pgetl_execute(conn, "SELECT 1", 0, NULL, NULL, &err);
        if (rc == PGETL_OK)
            rc = pgetl_rollback(conn, &err);
        pgetl_pool_release(pool, conn);
        if (rc == PGETL_OK)
            break;
    }
    assert_pgetl_ok(rc, &err);
}

static inline bool fh_matches(const char *text, const char *pattern) {
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        fail_msg("bad pattern %s", pattern);
    bool m = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

/*
 * The shape of a connection-loss error (cut, kill, halt, stall): the path's
 * own context once, then the cause. The file is named, but no line or row:
 * a lost connection is no row's fault, whatever line the server's CONTEXT
 * had reached. When the server's own words came through, so did its
 * SQLSTATE.
 */
static inline void fh_assert_loss_message(fh_path p, const pgetl_error *err) {
    const char *m = err->message;
    const char *table = "COPY \"public\".\"fault_t\"";
    char shape[1024];
    if (p <= FH_LOAD_JOBS2)
        snprintf(shape, sizeof shape, "^%s \\(rows from line [0-9]+\\): %s: [a-z]",
                 fh_csv(p == FH_LOAD_MAXERR), "COPY \"public\"\\.\"fault_t\"");
    else if (p <= FH_RECORDS)
        snprintf(shape, sizeof shape, "^%s: [a-z]", "COPY \"public\"\\.\"fault_t\"");
    else if (p == FH_QUERY_ARROW)
        snprintf(shape, sizeof shape, "^query_arrow stream: errno 5: query_arrow: [a-z]");
    else
        snprintf(shape, sizeof shape, "^export: [a-z]");
    if (!fh_matches(m, shape))
        fail_msg("message does not match %s: %s", shape, m);
    const char *first = strstr(m, table);
    if (first && strstr(first + 1, table))
        fail_msg("the table is named twice: %s", m);
    if (fh_matches(m, " row [0-9]|line [0-9]+:|line [0-9]+,"))
        fail_msg("a row or line is blamed for a lost connection: %s", m);
    /* query->Arrow's stream error is text only: its SQLSTATE rides in the message. */
    if (p != FH_QUERY_ARROW && strstr(m, "terminating connection due to administrator command"))
        assert_string_equal(err->sqlstate, "57P01");
    /* Nor does a CONTEXT ("COPY fault_t, line 1131": where the kill landed) point at one. */
    assert_string_equal(err->context, "");
}

/* Logs one row of the results table (picked up for docs/RELIABILITY.md). */
static inline void fh_report(const char *fault, fh_path p, pgetl_code rc, const pgetl_error *err,
                             double secs) {
    printf("FAULT | %s | %s | %s | %.2f s | %.160s | %s\n", fault, fh_path_name[p],
           pgetl_code_name(rc), secs, err->message, err->context);
    fflush(stdout);
}

#endif /* PGETL_TESTS_FAULT_HELPERS_H */
