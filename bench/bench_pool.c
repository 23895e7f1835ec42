/*
 * bench_pool: acquire+release pairs per second on a pool of 5, with 1 and
 * with 16 threads, printed beside two baselines measured in the same run:
 *
 *   floor      a bare pthread mutex lock/unlock loop with the same thread
 *              count (the least any thread-safe pool can cost);
 *   psycopg    psycopg_pool getconn/putconn (bench_pool_psycopg.py run with
 *              /usr/bin/python3 as a subprocess, same sizes and duration).
 *
 * Floor and pool are measured alternately, five rounds each, best round
 * kept; psycopg_pool runs once for the five rounds' total time.
 *
 * usage: bench_pool [DSN] [seconds-per-round] [hot]  (DSN default: $PGETL_DSN)
 *        `hot` runs only the 1-thread pool loop (for strace -f -c).
 * Not a test: nothing is asserted; read the ratios (see bench/README.md).
 */
#include "pgetl/pgetl.h"

#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { POOL_SIZE = 5, MAX_THREADS = 16, ROUNDS = 5 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct run {
    pgetl_pool *pool; /* NULL: the mutex floor */
    pthread_mutex_t *mu;
    atomic_int *stop;
    long long count;
    int failed;
} run;

static void *mutex_loop(void *p) {
    run *r = p;
    long long n = 0;
    /* Check the stop flag every 1024 pairs so its load does not dominate. */
    while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
        for (int i = 0; i < 1024; i++) {
            pthread_mutex_lock(r->mu);
            pthread_mutex_unlock(r->mu);
        }
        n += 1024;
    }
    r->count = n;
    return NULL;
}

static void *pool_loop(void *p) {
    run *r = p;
    long long n = 0;
    while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
        for (int i = 0; i < 64; i++) {
            pgetl_conn *c = NULL;
            pgetl_error err;
            if (pgetl_pool_acquire(r->pool, &c, &err) != PGETL_OK) {
                fprintf(stderr, "bench_pool: acquire failed: %s\n", err.message);
                r->failed = 1;
                r->count = n;
                return NULL;
            }
            pgetl_pool_release(r->pool, c);
        }
        n += 64;
    }
    r->count = n;
    return NULL;
}

/* Runs `threads` copies of fn for `secs`; returns pairs per second. */
static double measure(void *(*fn)(void *), pgetl_pool *pool, int threads, double secs) {
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    atomic_int stop = 0;
    run r[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        r[i] = (run){.pool = pool, .mu = &mu, .stop = &stop};
        pthread_create(&t[i], NULL, fn, &r[i]);
    }
    struct timespec ts = {.tv_sec = (time_t)secs,
                          .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    long long total = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += r[i].count;
        failed |= r[i].failed;
    }
    double elapsed = now_s() - t0;
    pthread_mutex_destroy(&mu);
    return failed ? -1 : (double)total / elapsed;
}

static double psycopg_rate(const char *dsn, int threads, double secs) {
    char here[1024];
    snprintf(here, sizeof here, "%s", __FILE__);
    char cmd[4096];
    /* The DSN goes through the environment, not the command line, so that a
     * password never shows in `ps`. */
    setenv("BENCH_POOL_DSN", dsn, 1);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/bench_pool_psycopg.py' \"$BENCH_POOL_DSN\" %d %d %.2f",
             dirname(here), threads, POOL_SIZE, secs);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[256];
    double rate = -1;
    while (fgets(line, sizeof line, p))
        if (strncmp(line, "ops_per_s=", 10) == 0)
            rate = atof(line + 10);
    if (pclose(p) != 0)
        return -1;
    return rate;
}

int main(int argc, char **argv) {
    const char *dsn = argc > 1 ? argv[1] : getenv("PGETL_DSN");
    double secs = argc > 2 ? atof(argv[2]) : 0.4;
    if (!dsn || secs <= 0) {
        fprintf(stderr, "usage: bench_pool [DSN] [seconds-per-round]  (or set PGETL_DSN)\n");
        return 2;
    }
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    cfg.pool_min = POOL_SIZE;
    cfg.pool_max = POOL_SIZE;
    cfg.application_name = "bench_pool";
    pgetl_pool *pool = NULL;
    pgetl_error err;
    if (pgetl_pool_create(&cfg, &pool, &err) != PGETL_OK) {
        fprintf(stderr, "bench_pool: %s\n", err.message);
        return 1;
    }
    if (argc > 3 && strcmp(argv[3], "hot") == 0) {
        /* Only the uncontended pool loop, for `strace -f -c` to show that a
         * hot acquire+release makes no system call. */
        double r = measure(pool_loop, pool, 1, secs);
        printf("hot: %.0f acquire+release pairs/s (1 thread)\n", r);
        pgetl_pool_destroy(pool);
        return r < 0;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_pool: acquire+release pairs/s, pool of %d, best of %d x %.1f s, %ld CPUs\n",
           POOL_SIZE, ROUNDS, secs, cpus);
    printf("%-8s %14s %14s %14s %12s %12s\n", "threads", "pgetl", "mutex floor", "psycopg_pool",
           "floor/pgetl", "pgetl/psycopg");
    const int thread_counts[] = {1, MAX_THREADS};
    int rc = 0;
    for (size_t i = 0; i < sizeof thread_counts / sizeof thread_counts[0]; i++) {
        int n = thread_counts[i];
        measure(pool_loop, pool, n, secs / 4); /* warm-up */
        /* Alternate the floor and the pool and keep each one's best round,
         * so that load from other processes skews the ratio less. */
        double floor_rate = 0, pgetl_rate = 0;
        for (int round = 0; round < ROUNDS; round++) {
            double f = measure(mutex_loop, NULL, n, secs);
            double p = measure(pool_loop, pool, n, secs);
            if (f > floor_rate)
                floor_rate = f;
            if (p < 0 || pgetl_rate < 0)
                pgetl_rate = -1;
            else if (p > pgetl_rate)
                pgetl_rate = p;
        }
        double py_rate = psycopg_rate(dsn, n, secs * ROUNDS);
        if (pgetl_rate < 0)
            rc = 1;
        printf("%-8d %14.0f %14.0f %14.0f %11.2fx %11.1fx\n", n, pgetl_rate, floor_rate, py_rate,
               floor_rate / pgetl_rate, py_rate > 0 ? pgetl_rate / py_rate : 0.0);
        fflush(stdout);
    }
    pgetl_pool_stats st;
    pgetl_pool_get_stats(pool, &st);
    printf("pool stats: acquired=%lld opened=%lld wait_s=%.2f timeouts=%lld\n",
           (long long)st.acquired, (long long)st.opened, st.wait_seconds, (long long)st.timeouts);
    pgetl_pool_destroy(pool);
    return rc;
}
