/*
 * The connection pool's life cycle: create, DSN rotation, stats, close,
 * destroy, and the hand-off primitives the other pool files share. The
 * design note (why one mutex, a slot array, a LIFO idle stack and FIFO
 * hand-off) is in pool_int.h. Acquire is in pool_acquire.c, release in
 * pool_release.c, the maintenance thread in pool_maint.c.
 */
#include "connect/pool_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

/* ---- helpers shared by pool_acquire.c and pool_release.c -------------------- */

void pgetl__pool_log_slot(pgetl_log_level level, const char *event, const pgetl_pool_slot *s,
                          const char *msg, int64_t now) {
    pgetl_logline l;
    if (!pgetl__log_begin(&l, level, event))
        return;
    pgetl__log_str(&l, "msg", msg);
    if (s->file) {
        char where[512];
        snprintf(where, sizeof where, "%s:%d", s->file, s->line);
        pgetl__log_str(&l, "acquired_at", where);
    }
    if (s->acquired_ns)
        pgetl__log_double(&l, "held_s", (double)(now - s->acquired_ns) / 1e9);
    pgetl__log_end(&l);
}

void pgetl__pool_log(pgetl_log_level level, const char *event, const char *msg) {
    pgetl_logline l;
    if (pgetl__log_begin(&l, level, event)) {
        pgetl__log_str(&l, "msg", msg);
        pgetl__log_end(&l);
    }
}

void pgetl__pool_take_slot(pgetl_pool *pool, pgetl_pool_slot *s, const char *file, int line,
                           int64_t now) {
    s->state = PGETL_SLOT_OUT;
    s->file = file;
    s->line = line;
    s->acquired_ns = now;
    s->leak_reported = false;
    pool->n_out++;
}

/* ---- shared with pool_maint.c ------------------------------------------------ */

pgetl_pool_waiter *pgetl__pool_place(pgetl_pool *pool, pgetl_pool_slot *s, int64_t now) {
    s->idle_since_ns = now;
    pgetl_pool_waiter *w = pool->head;
    if (w) {
        /* The waiter's whole bookkeeping happens here, so that once woken
         * it returns without touching the pool again. */
        pool->head = w->next;
        if (!pool->head)
            pool->tail = NULL;
        pool->n_queued--;
        pool->n_waiting--;
        pool->acquired++;
        pool->wait_ns += now > w->start_ns ? now - w->start_ns : 0;
        pgetl__pool_take_slot(pool, s, w->file, w->line, now);
        atomic_store_explicit(&w->slot, s, memory_order_release);
        return w;
    }
    s->state = PGETL_SLOT_IDLE;
    pool->idle[pool->n_idle++] = s;
    return NULL;
}

void pgetl__pool_wake(pgetl_pool_waiter *w) {
    /* glibc's sem_post touches the semaphore only in its atomic increment,
     * so the waiter may return (and its stack frame go) right after. */
    if (w)
        sem_post(&w->sem);
}

void pgetl__pool_fail_waiters(pgetl_pool *pool, pgetl_code code) {
    for (pgetl_pool_waiter *w = pool->head; w;) {
        pgetl_pool_waiter *next = w->next;
        w->fail = code;
        w->next = NULL;
        /* Failed waiters take mu to leave, so posting under it is safe. */
        sem_post(&w->sem);
        w = next;
    }
    pool->head = pool->tail = NULL;
    pool->n_queued = 0;
}

PGconn *pgetl__pool_slot_clear(pgetl_pool *pool, pgetl_pool_slot *s) {
    PGconn *pg = s->conn.pg;
    s->conn.pg = NULL;
    s->conn.detach = NULL;
    s->conn.detach_arg = NULL;
    s->state = PGETL_SLOT_EMPTY;
    s->file = NULL;
    s->line = 0;
    s->acquired_ns = 0;
    pool->n_open--;
    pool->closed_count++;
    /* A replacement may be needed (waiters, or below pool_min). */
    pthread_cond_signal(&pool->maint_cv);
    return pg;
}

void pgetl__pool_notice_receiver(void *arg, const PGresult *res) {
    pgetl_pool_slot *s = arg;
    /* A FATAL notice means the server is closing this connection. */
    if (pgetl__conn_log_notice(res))
        s->server_fatal = true;
}

bool pgetl__pool_conn_alive(pgetl_pool_slot *s) {
    PGconn *pg = s->conn.pg;
    /* A FATAL message and the EOF after it may arrive in separate reads, so
     * look a few times; an idle connection normally has nothing to read and
     * the first poll() says so. */
    for (int i = 0; i < 4; i++) {
        if (s->server_fatal || PQstatus(pg) != CONNECTION_OK)
            return false;
        struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
        if (p.fd < 0)
            return false;
        int r = poll(&p, 1, 0);
        if (r == 0)
            return PQtransactionStatus(pg) == PQTRANS_IDLE;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (p.revents & (POLLERR | POLLNVAL))
            return false;
        if (!PQconsumeInput(pg))
            return false;
        PGnotify *n;
        while ((n = PQnotifies(pg)) != NULL)
            PQfreemem(n);
    }
    return !s->server_fatal && PQstatus(pg) == CONNECTION_OK;
}

/* ---- create ---------------------------------------------------------------- */

void pgetl__pool_free(pgetl_pool *pool) {
    pgetl__pool_registry_remove(pool);
    pthread_cond_destroy(&pool->maint_cv);
    pthread_cond_destroy(&pool->drain_cv);
    pthread_condattr_destroy(&pool->cond_attr);
    pthread_mutex_destroy(&pool->mu);
    pgetl__free(pool->slots);
    pgetl__free(pool->idle);
    pgetl__free(pool->dsn);
    pgetl__free(pool->app_name);
    pgetl__free(pool);
}

static int64_t pick_tick(const pgetl_config *cfg) {
    /* Housekeeping runs a few times per shortest configured limit so that
     * expiry and leak reports are late by a fraction of the limit at most,
     * and at least once a second otherwise; never faster than every 5 ms. */
    double t = 1.0;
    if (cfg->max_idle_s > 0 && cfg->max_idle_s / 4 < t)
        t = cfg->max_idle_s / 4;
    if (cfg->max_lifetime_s > 0 && cfg->max_lifetime_s / 10 < t)
        t = cfg->max_lifetime_s / 10;
    if (cfg->leak_threshold_s > 0 && cfg->leak_threshold_s / 4 < t)
        t = cfg->leak_threshold_s / 4;
    if (t < 0.005)
        t = 0.005;
    return (int64_t)(t * 1e9);
}

/* Opens the first pool_min connections in the caller's thread, so that a bad
 * DSN or an unreachable server fails pgetl_pool_create with libpq's message. */
static pgetl_code open_initial(pgetl_pool *pool, pgetl_error *err) {
    for (int i = 0; i < pool->cfg.pool_min; i++) {
        pgetl_pool_slot *s = &pool->slots[i];
        pgetl_code rc = pgetl__conn_open(pool->dsn, &pool->cfg, &s->conn.pg, err);
        if (rc != PGETL_OK) {
            if (err) {
                char clean[PGETL_ERROR_MESSAGE_SIZE];
                pgetl__dsn_scrub(pool->dsn, err->message, clean, sizeof clean);
                memcpy(err->message, clean, sizeof err->message);
            }
            return rc;
        }
        PQsetNoticeReceiver(s->conn.pg, pgetl__pool_notice_receiver, s);
        int64_t now = pgetl__pool_clock_ns();
        s->opened_ns = now;
        s->dsn_gen = pool->dsn_gen;
        s->expires_ns = 0;
        if (pool->cfg.max_lifetime_s > 0) {
            /* ±10 % jitter, as for the maintenance thread's connections. */
            double f = 0.9 + 0.2 * pgetl__pool_rand_unit(pool);
            s->expires_ns = now + (int64_t)(pool->cfg.max_lifetime_s * f * 1e9);
        }
        pool->n_open++;
        pool->opened++;
        pgetl__pool_place(pool, s, now);
    }
    return PGETL_OK;
}

static void close_all_idle(pgetl_pool *pool) {
    while (pool->n_idle > 0) {
        pgetl_pool_slot *s = pool->idle[--pool->n_idle];
        pgetl__conn_finish(pgetl__pool_slot_clear(pool, s));
    }
}

pgetl_code pgetl_pool_create(const pgetl_config *cfg, pgetl_pool **pool_out, pgetl_error *err) {
    if (!pool_out)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_pool_create: pool_out is NULL");
    *pool_out = NULL;
    pgetl_config defaults;
    if (!cfg) {
        pgetl_config_init(&defaults);
        cfg = &defaults;
    }
    pgetl_code rc = pgetl_config_validate(cfg, err);
    if (rc != PGETL_OK)
        return rc;

    pgetl_pool *pool = pgetl__calloc(1, sizeof *pool);
    if (!pool)
        return pgetl__error_oom(err, "pgetl_pool_create");
    pool->cfg = *cfg;
    pool->dsn = pgetl__strdup(pgetl_config_dsn(cfg));
    pool->app_name = pgetl__strdup(cfg->application_name ? cfg->application_name : "pgetl");
    pool->slots = pgetl__calloc((size_t)cfg->pool_max, sizeof *pool->slots);
    pool->idle = pgetl__calloc((size_t)cfg->pool_max, sizeof *pool->idle);
    if (!pool->dsn || !pool->app_name || !pool->slots || !pool->idle) {
        pgetl__free(pool->dsn);
        pgetl__free(pool->app_name);
        pgetl__free(pool->slots);
        pgetl__free(pool->idle);
        pgetl__free(pool);
        return pgetl__error_oom(err, "pgetl_pool_create");
    }
    pool->cfg.dsn = pool->dsn;
    pool->cfg.application_name = pool->app_name;
    pool->dsn_gen = 1;
    pool->tick_ns = pick_tick(cfg);
    pool->rng = (uint64_t)pgetl__now_ns() ^ (uint64_t)(uintptr_t)pool ^ 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < cfg->pool_max; i++) {
        pool->slots[i].conn.pool = pool;
        pool->slots[i].conn.slot = &pool->slots[i];
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_condattr_init(&pool->cond_attr);
    pthread_condattr_setclock(&pool->cond_attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->maint_cv, &pool->cond_attr);
    pthread_cond_init(&pool->drain_cv, &pool->cond_attr);

    /* No other thread can see the pool yet; the lock keeps the analysers
     * (and the helpers' "caller holds mu" contract) honest. */
    pthread_mutex_lock(&pool->mu);
    rc = open_initial(pool, err);
    if (rc != PGETL_OK) {
        close_all_idle(pool);
        pthread_mutex_unlock(&pool->mu);
        pgetl__pool_free(pool);
        return rc;
    }
    pthread_mutex_unlock(&pool->mu);

    if (pthread_create(&pool->maint, NULL, pgetl__pool_maint_main, pool) != 0) {
        pthread_mutex_lock(&pool->mu);
        close_all_idle(pool);
        pthread_mutex_unlock(&pool->mu);
        pgetl__pool_free(pool);
        return pgetl_error_set(err, PGETL_ENOMEM,
                               "pgetl_pool_create: could not start the maintenance thread");
    }
    pool->maint_started = true;
    pgetl__pool_registry_add(pool);

    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_INFO, "pool_create")) {
        char red[512];
        pgetl__log_str(&l, "dsn", pgetl_dsn_redact(pool->dsn, red, sizeof red));
        pgetl__log_int(&l, "min", cfg->pool_min);
        pgetl__log_int(&l, "max", cfg->pool_max);
        pgetl__log_end(&l);
    }
    *pool_out = pool;
    return PGETL_OK;
}

/* ---- DSN rotation, stats --------------------------------------------------- */

pgetl_code pgetl_pool_set_dsn(pgetl_pool *pool, const char *dsn, pgetl_error *err) {
    if (!pool || !dsn)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_pool_set_dsn: pool or dsn is NULL");
    pgetl_config probe;
    pgetl_config_init(&probe);
    probe.dsn = dsn;
    pgetl_code rc = pgetl_config_validate(&probe, err);
    if (rc != PGETL_OK)
        return rc;
    char *copy = pgetl__strdup(dsn);
    if (!copy)
        return pgetl__error_oom(err, "pgetl_pool_set_dsn");
    pthread_mutex_lock(&pool->mu);
    char *old = pool->dsn;
    pool->dsn = copy;
    pool->cfg.dsn = copy;
    pool->dsn_gen++;
    /* A failure streak belonged to the old credentials. */
    pool->fail_since_ns = 0;
    pool->next_attempt_ns = 0;
    pool->backoff_ns = 0;
    pool->down = false;
    pthread_cond_signal(&pool->maint_cv);
    pthread_mutex_unlock(&pool->mu);
    pgetl__free(old);
    char red[512];
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_INFO, "pool_set_dsn")) {
        pgetl__log_str(&l, "dsn", pgetl_dsn_redact(dsn, red, sizeof red));
        pgetl__log_end(&l);
    }
    return PGETL_OK;
}

void pgetl_pool_get_stats(pgetl_pool *pool, pgetl_pool_stats *st) {
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    st->opened = pool->opened;
    st->closed = pool->closed_count;
    st->in_use = pool->n_out;
    st->idle = pool->n_idle;
    st->waiting = pool->n_waiting;
    st->acquired = pool->acquired;
    st->wait_seconds = (double)pool->wait_ns / 1e9;
    st->timeouts = pool->timeouts;
    st->rejected = pool->rejected;
    st->lost = pool->lost;
    st->returned_bad = pool->returned_bad;
    st->connect_errors = pool->connect_errors;
    st->leaks_reported = pool->leaks_reported;
    pthread_mutex_unlock(&pool->mu);
}

/* ---- close, destroy -------------------------------------------------------- */

int pgetl_pool_close(pgetl_pool *pool) {
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->mu);
    if (!pool->closed) {
        pool->closed = true;
        pgetl__pool_fail_waiters(pool, PGETL_ECLOSED);
        close_all_idle(pool);
        int64_t now = pgetl__pool_clock_ns();
        for (int i = 0; i < pool->cfg.pool_max; i++) {
            pgetl_pool_slot *s = &pool->slots[i];
            if (s->state == PGETL_SLOT_OUT || s->state == PGETL_SLOT_RETURNING)
                pgetl__pool_log_slot(
                    PGETL_LOG_WARN, "pool_close_outstanding", s,
                    "pool closed while a connection is still out; it will be closed "
                    "when released",
                    now);
        }
        pthread_cond_signal(&pool->maint_cv);
    }
    int out = pool->n_out;
    bool join = pool->maint_started && !pool->maint_join_claimed;
    pool->maint_join_claimed = true;
    pthread_mutex_unlock(&pool->mu);
    if (join) {
        pthread_join(pool->maint, NULL);
        pthread_mutex_lock(&pool->mu);
        pool->maint_done = true;
        pthread_cond_broadcast(&pool->drain_cv);
        pthread_mutex_unlock(&pool->mu);
    }
    return out;
}

void pgetl_pool_destroy(pgetl_pool *pool) {
    if (!pool)
        return;
    pgetl_pool_close(pool);
    pthread_mutex_lock(&pool->mu);
    /* Waiters were failed by close but may not have left yet, and another
     * thread's close may still be joining the maintenance thread. */
    while (pool->n_waiting > 0 || (pool->maint_started && !pool->maint_done))
        pthread_cond_wait(&pool->drain_cv, &pool->mu);
    pool->destroyed = true;
    bool free_now = pool->n_out == 0 && !pool->freeing;
    if (free_now)
        pool->freeing = true;
    pthread_mutex_unlock(&pool->mu);
    if (free_now)
        pgetl__pool_free(pool);
}
