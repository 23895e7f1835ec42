/*
 * 16 threads hammering a pool of 5 for a few seconds: no connection is ever
 * held by two threads at once (checked by an ownership table and by backend
 * pid uniqueness among holders), nobody deadlocks, the counters balance, and
 * no backend outlives the pool. Some iterations misbehave on purpose (leave
 * a transaction open, abort one) to drive the slow release path concurrently.
 */
#include "pool_helpers.h"

#include <stdatomic.h>

enum { THREADS = 16, POOL = 5, RUN_MS = 2000 };

typedef struct shared {
    pgetl_pool *pool;
    pthread_mutex_t mu;
    pgetl_conn *held[THREADS]; /* what each thread holds now */
    int pid[THREADS];          /* backend pid it saw, 0 when unknown */
    atomic_int failures;
    atomic_int stop;
    atomic_llong acquires;
    atomic_llong queries;
    atomic_llong bad_returns;
    atomic_llong kills;
    int killing; /* a killer thread terminates backends meanwhile */
    char app[64];
    char first_error[PGETL_ERROR_MESSAGE_SIZE + 64];
} shared;

typedef struct worker {
    shared *sh;
    int id;
} worker;

static void record_failure(shared *sh, const char *what) {
    pthread_mutex_lock(&sh->mu);
    if (!sh->first_error[0])
        snprintf(sh->first_error, sizeof sh->first_error, "%s", what);
    pthread_mutex_unlock(&sh->mu);
    atomic_fetch_add(&sh->failures, 1);
}

/* Claims conn for thread id; fails if any other thread holds it (or the
 * same backend pid). */
static void claim(shared *sh, int id, pgetl_conn *conn, int pid) {
    pthread_mutex_lock(&sh->mu);
    for (int i = 0; i < THREADS; i++) {
        if (i == id)
            continue;
        if (sh->held[i] == conn || (pid && sh->pid[i] == pid)) {
            pthread_mutex_unlock(&sh->mu);
            record_failure(sh, "one connection handed to two callers");
            pthread_mutex_lock(&sh->mu);
        }
    }
    sh->held[id] = conn;
    sh->pid[id] = pid;
    pthread_mutex_unlock(&sh->mu);
}

static void unclaim(shared *sh, int id) {
    pthread_mutex_lock(&sh->mu);
    sh->held[id] = NULL;
    sh->pid[id] = 0;
    pthread_mutex_unlock(&sh->mu);
}

static int backend_pid(pgetl_conn *c) {
    PGresult *r = PQexec(pgetl_conn_pg(c), "SELECT pg_backend_pid()");
    int pid = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return pid;
}

static void *worker_main(void *p) {
    worker *w = p;
    shared *sh = w->sh;
    unsigned seed = (unsigned)w->id * 2654435761u;
    for (long it = 0; !atomic_load(&sh->stop); it++) {
        pgetl_conn *c = NULL;
        pgetl_error err;
        pgetl_code rc = pgetl_pool_acquire(sh->pool, &c, &err);
        if (rc != PGETL_OK) {
            record_failure(sh, err.message);
            continue;
        }
        atomic_fetch_add(&sh->acquires, 1);
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 100;
        int pid = 0;
        if (r < 10) {
            pid = backend_pid(c);
            /* With the killer active a query may meet a terminated backend;
             * the connection must then be broken, not silently odd. */
            if (!pid && !(sh->killing && PQstatus(pgetl_conn_pg(c)) != CONNECTION_OK))
                record_failure(sh, "query on a pooled connection failed");
            atomic_fetch_add(&sh->queries, 1);
        }
        claim(sh, w->id, c, pid);
        if (r == 10) {
            /* Caller bug on purpose: left inside a transaction. */
            PQclear(PQexec(pgetl_conn_pg(c), "BEGIN"));
            atomic_fetch_add(&sh->bad_returns, 1);
        } else if (r == 11) {
            PQclear(PQexec(pgetl_conn_pg(c), "BEGIN"));
            PQclear(PQexec(pgetl_conn_pg(c), "SELECT 1/0"));
            atomic_fetch_add(&sh->bad_returns, 1);
        }
        if (pgetl_conn_txn_state(c) == PGETL_TXN_ACTIVE)
            record_failure(sh, "connection handed out busy");
        unclaim(sh, w->id);
        pgetl_pool_release(sh->pool, c);
    }
    return NULL;
}

static void *killer_main(void *p) {
    shared *sh = p;
    PGconn *pg = PQconnectdb(harness_dsn());
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (SELECT pid FROM "
             "pg_stat_activity WHERE application_name = '%s' ORDER BY random() LIMIT 1) k",
             sh->app);
    while (!atomic_load(&sh->stop) && PQstatus(pg) == CONNECTION_OK) {
        PGresult *r = PQexec(pg, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            atomic_fetch_add(&sh->kills, atoll(PQgetvalue(r, 0, 0)));
        PQclear(r);
        ph_sleep_ms(40);
    }
    PQfinish(pg);
    return NULL;
}

static void run_stress(const char *name, int killing) {
    char app[64];
    ph_app(name, app, sizeof app);
    pgetl_config cfg = ph_config(app, 2, POOL);
    cfg.acquire_timeout_s = 20;
    PGconn *pg = harness_pq();
    static shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.mu, NULL);
    sh.killing = killing;
    snprintf(sh.app, sizeof sh.app, "%s", app);
    pgetl_error err;
    assert_pgetl_ok(pgetl_pool_create(&cfg, &sh.pool, &err), &err);
    harness_log_capture(PGETL_LOG_ERROR); /* the deliberate caller bugs warn */

    worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){&sh, i};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    pthread_t killer;
    if (killing)
        pthread_create(&killer, NULL, killer_main, &sh);
    int max_backends = 0;
    for (double end = ph_now() + RUN_MS / 1000.0; ph_now() < end;) {
        int n = (int)ph_backends_on(pg, app);
        if (n > max_backends)
            max_backends = n;
        pgetl_pool_stats st;
        pgetl_pool_get_stats(sh.pool, &st);
        assert_true(st.in_use <= POOL);
        assert_true(st.in_use + st.idle <= POOL);
        ph_sleep_ms(50);
    }
    atomic_store(&sh.stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    if (killing)
        pthread_join(killer, NULL);
    harness_log_restore();

    if (atomic_load(&sh.failures))
        fail_msg("%d failures, first: %s", atomic_load(&sh.failures), sh.first_error);
    assert_true(max_backends <= POOL);

    pgetl_pool_stats st;
    pgetl_pool_get_stats(sh.pool, &st);
    long long acquires = atomic_load(&sh.acquires);
    print_message("acquires=%lld queries=%lld bad=%lld kills=%lld lost=%lld opened=%lld "
                  "closed=%lld wait=%.2fs\n",
                  acquires, (long long)atomic_load(&sh.queries),
                  (long long)atomic_load(&sh.bad_returns), (long long)atomic_load(&sh.kills),
                  (long long)st.lost, (long long)st.opened, (long long)st.closed, st.wait_seconds);
    assert_true(acquires > 1000);
    assert_int_equal(st.acquired, acquires);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.timeouts, 0);
    if (killing) {
        /* Every kill is found: on release, on acquire or by the watcher
         * (a kill of a backend already gone counts nothing). */
        assert_true(atomic_load(&sh.kills) >= 5);
        assert_true(st.lost >= 1);
        assert_true(st.lost <= atomic_load(&sh.kills));
        assert_true(st.returned_bad >= atomic_load(&sh.bad_returns) / 2);
    } else {
        assert_int_equal(st.returned_bad, atomic_load(&sh.bad_returns));
        assert_int_equal(st.lost, 0);
    }
    /* Quiet now: every open connection is idle, none half-counted. */
    PH_WAIT_STAT(sh.pool, idle, (int)(st.opened - st.closed));
    pgetl_pool_get_stats(sh.pool, &st);
    assert_int_equal(st.idle, st.opened - st.closed);
    assert_true(st.opened - st.closed <= POOL);
    assert_true(st.opened >= 2);

    pgetl_pool_destroy(sh.pool);
    assert_int_equal(ph_wait_backends(pg, app, 0), 0);
    pthread_mutex_destroy(&sh.mu);
    PQfinish(pg);
}

static void sixteen_threads_pool_of_five(void **state) {
    (void)state;
    run_stress("stress", 0);
}

/* The same while backends are terminated at random under the pool. */
static void sixteen_threads_backends_killed(void **state) {
    (void)state;
    run_stress("stresskill", 1);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sixteen_threads_pool_of_five),
        cmocka_unit_test(sixteen_threads_backends_killed),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
