/*
 * Helpers shared by the test_pool_*.c binaries: per-test application names
 * (so backend counts in pg_stat_activity see only our connections), waiting
 * for the server to notice closed connections, and small SQL probes through
 * a pooled connection.
 */
#ifndef PGETL_TESTS_POOL_HELPERS_H
#define PGETL_TESTS_POOL_HELPERS_H

#include "harness.h"
#include "pgetl/libpq.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static inline void ph_sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static inline double ph_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A pool from cfg; fails the test if it cannot be made. */
static inline pgetl_pool *ph_make_pool(const pgetl_config *cfg) {
    pgetl_pool *pool = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(cfg, &pool, &err), &err);
    return pool;
}

/* Acquires with the caller's file:line, as the pgetl_pool_acquire macro does. */
static inline pgetl_conn *ph_get_at(pgetl_pool *pool, const char *file, int line) {
    pgetl_conn *c = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_acquire_at(pool, file, line, &c, &err), &err);
    assert_non_null(c);
    return c;
}
#define ph_get(pool) ph_get_at((pool), __FILE__, __LINE__)

/* A unique application_name for this test and process. */
static inline const char *ph_app(const char *test, char *buf, size_t size) {
    snprintf(buf, size, "pt_%s_%d", test, (int)getpid());
    return buf;
}

static inline int64_t ph_backends_on(PGconn *pg, const char *app) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'",
             app);
    return harness_scalar(pg, sql);
}

/* Backends come and go asynchronously; wait up to 5 s for the count. */
static inline int64_t ph_wait_backends(PGconn *pg, const char *app, int64_t want) {
    int64_t n = -1;
    for (int i = 0; i < 500; i++) {
        n = ph_backends_on(pg, app);
        if (n == want)
            return n;
        ph_sleep_ms(10);
    }
    return n;
}

/* The first column of the first row of a query run on a pgetl connection. */
static inline int64_t ph_conn_scalar(pgetl_conn *conn, const char *sql) {
    PGresult *r = PQexec(pgetl_conn_pg(conn), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("query failed on pooled connection: %s: %s", sql,
                 PQerrorMessage(pgetl_conn_pg(conn)));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static inline void ph_conn_text(pgetl_conn *conn, const char *sql, char *out, size_t size) {
    PGresult *r = PQexec(pgetl_conn_pg(conn), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("query failed on pooled connection: %s: %s", sql,
                 PQerrorMessage(pgetl_conn_pg(conn)));
    snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static inline void ph_conn_exec(pgetl_conn *conn, const char *sql) {
    PGresult *r = PQexec(pgetl_conn_pg(conn), sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("statement failed on pooled connection: %s: %s", sql,
                 PQerrorMessage(pgetl_conn_pg(conn)));
    PQclear(r);
}

/* A config for the shared cluster with a unique application_name. */
static inline pgetl_config ph_config(const char *app, int min, int max) {
    pgetl_config cfg = harness_config();
    cfg.application_name = app;
    cfg.pool_min = min;
    cfg.pool_max = max;
    return cfg;
}

/* Waits up to 5 s for a stats field to reach a value (the maintenance
 * thread works asynchronously). */
#define PH_WAIT_STAT(pool, field, want)                                                            \
    do {                                                                                           \
        pgetl_pool_stats st_;                                                                      \
        for (int i_ = 0; i_ < 500; i_++) {                                                         \
            pgetl_pool_get_stats((pool), &st_);                                                    \
            if (st_.field == (want))                                                               \
                break;                                                                             \
            ph_sleep_ms(10);                                                                       \
        }                                                                                          \
        assert_int_equal(st_.field, (want));                                                       \
    } while (0)

#endif /* PGETL_TESTS_POOL_HELPERS_H */
