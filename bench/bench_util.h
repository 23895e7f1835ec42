/*
 * Helpers shared by the bench programs: clocks, the DSN, and libpq calls that
 * end the program on failure (a benchmark has nothing to recover). Define
 * BENCH_NAME before including; it prefixes error messages.
 */
#ifndef PGETL_BENCH_UTIL_H
#define PGETL_BENCH_UTIL_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_util.h"
#endif

/* Monotonic wall-clock seconds. */
static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU seconds this process has used. */
static inline double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static inline void die(const char *what, const char *msg) {
    fprintf(stderr, BENCH_NAME ": %s: %s\n", what, msg);
    exit(1);
}

/* $PGETL_BENCH_DSN, else $PGETL_TEST_DSN; the server must run on this machine. */
static inline const char *bench_dsn(void) {
    const char *dsn = getenv("PGETL_BENCH_DSN");
    if (!dsn || !*dsn)
        dsn = getenv("PGETL_TEST_DSN");
    if (!dsn || !*dsn)
        die("no DSN", "set PGETL_BENCH_DSN or PGETL_TEST_DSN");
    return dsn;
}

static inline void sql(PGconn *pg, const char *q) {
    PGresult *r = PQexec(pg, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(q, PQerrorMessage(pg));
    PQclear(r);
}

/* The single value of a one-row query, as an integer. */
static inline long long scalar(PGconn *pg, const char *q) {
    PGresult *r = PQexec(pg, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        die(q, PQerrorMessage(pg));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

#endif /* PGETL_BENCH_UTIL_H */
