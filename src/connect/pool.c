/*
 * The connection pool: create, acquire, release, close, destroy. The design
 * note (why one mutex, a slot array, a LIFO idle stack and FIFO hand-off) is
 * in pool_int.h; the maintenance thread is in pool_maint.c.
 */
#define _GNU_SOURCE /* sem_clockwait: a semaphore wait on CLOCK_MONOTONIC */
#include "connect/pool_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

/* ---- small helpers --------------------------------------------------------- */

static struct timespec abs_deadline(int64_t at_ns) {
    struct timespec ts = {.tv_sec = (time_t)(at_ns / 1000000000),
                          .tv_nsec = (long)(at_ns % 1000000000)};
    return ts;
}

static void log_slot(pgetl_log_level level, const char *event, const pgetl_pool_slot *s,
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

static void log_simple(pgetl_log_level level, const char *event, const char *msg) {
    pgetl_logline l;
    if (pgetl__log_begin(&l, level, event)) {
        pgetl__log_str(&l, "msg", msg);
        pgetl__log_end(&l);
    }
}

static void take_slot(pgetl_pool *pool, pgetl_pool_slot *s, const char *file, int line,
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
        take_slot(pool, s, w->file, w->line, now);
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
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    bool fatal = sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
    if (fatal)
        s->server_fatal = true;
    pgetl_log_level level =
        fatal || (sev && strcmp(sev, "WARNING") == 0) ? PGETL_LOG_WARN : PGETL_LOG_INFO;
    pgetl_logline l;
    if (pgetl__log_begin(&l, level, "server_notice")) {
        pgetl__log_str(&l, "severity", sev ? sev : "");
        pgetl__log_str(&l, "sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE));
        pgetl__log_str(&l, "msg", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        pgetl__log_end(&l);
    }
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

static void pool_free(pgetl_pool *pool) {
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
        PQfinish(pgetl__pool_slot_clear(pool, s));
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
        pool_free(pool);
        return rc;
    }
    pthread_mutex_unlock(&pool->mu);

    if (pthread_create(&pool->maint, NULL, pgetl__pool_maint_main, pool) != 0) {
        pthread_mutex_lock(&pool->mu);
        close_all_idle(pool);
        pthread_mutex_unlock(&pool->mu);
        pool_free(pool);
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

/* ---- acquire --------------------------------------------------------------- */

static void unlink_waiter(pgetl_pool *pool, pgetl_pool_waiter *w) {
    pgetl_pool_waiter *prev = NULL;
    for (pgetl_pool_waiter *p = pool->head; p; prev = p, p = p->next) {
        if (p == w) {
            if (prev)
                prev->next = w->next;
            else
                pool->head = w->next;
            if (pool->tail == w)
                pool->tail = prev;
            pool->n_queued--;
            return;
        }
    }
}

static pgetl_code fail_down(pgetl_pool *pool, pgetl_error *err) {
    return pgetl_error_set(err, PGETL_ECONNECT,
                           "pool cannot connect: failing for %.1f s (reconnect_timeout_s %.1f): %s",
                           (double)(pgetl__now_ns() - pool->fail_since_ns) / 1e9,
                           pool->cfg.reconnect_timeout_s, pool->last_err.message);
}

/*
 * Queues the caller and waits for a hand-off. Called with mu held; returns
 * with mu released. A served waiter sleeps on its semaphore once and
 * returns without the lock (see pgetl_pool_waiter).
 */
static pgetl_code wait_turn(pgetl_pool *pool, const char *file, int line,
                            pgetl_pool_slot **slot_out, pgetl_error *err) {
    int64_t start = pgetl__now_ns();
    int64_t deadline = start + (int64_t)(pool->cfg.acquire_timeout_s * 1e9);
    pgetl_pool_waiter w = {.file = file, .line = line, .start_ns = pgetl__pool_clock_ns()};
    sem_init(&w.sem, 0, 0);
    atomic_init(&w.slot, NULL);
    if (pool->tail)
        pool->tail->next = &w;
    else
        pool->head = &w;
    pool->tail = &w;
    pool->n_queued++;
    pool->n_waiting++;
    /* Growth is the maintenance thread's job; tell it someone is waiting. */
    if (pool->n_open < pool->cfg.pool_max)
        pthread_cond_signal(&pool->maint_cv);
    pthread_mutex_unlock(&pool->mu);

    struct timespec ts = abs_deadline(deadline);
    int r;
    while ((r = sem_clockwait(&w.sem, CLOCK_MONOTONIC, &ts)) != 0 && errno == EINTR) {
    }
    bool locked = false;
    if (r != 0) {
        /* Timed out, unless a hand-off or failure raced with the timeout:
         * then its post is due, and must land before this frame goes. */
        pthread_mutex_lock(&pool->mu);
        locked = true;
        if (atomic_load_explicit(&w.slot, memory_order_acquire) || w.fail != PGETL_OK) {
            pthread_mutex_unlock(&pool->mu);
            locked = false;
            while (sem_wait(&w.sem) != 0 && errno == EINTR) {
            }
        } else {
            unlink_waiter(pool, &w);
        }
    }
    pgetl_pool_slot *s = atomic_load_explicit(&w.slot, memory_order_acquire);
    if (s) {
        /* pgetl__pool_place did the bookkeeping. */
        if (locked)
            pthread_mutex_unlock(&pool->mu);
        sem_destroy(&w.sem);
        *slot_out = s;
        return PGETL_OK;
    }
    if (!locked)
        pthread_mutex_lock(&pool->mu);
    sem_destroy(&w.sem);
    int64_t now = pgetl__now_ns();
    pool->n_waiting--;
    pool->wait_ns += now - start;
    if (pool->n_waiting == 0)
        pthread_cond_broadcast(&pool->drain_cv);
    pgetl_code rc;
    if (w.fail == PGETL_ECLOSED) {
        rc = pgetl_error_set(err, PGETL_ECLOSED, "pool closed while waiting for a connection");
    } else if (w.fail == PGETL_ECONNECT) {
        rc = fail_down(pool, err);
    } else {
        pool->timeouts++;
        /* The configured timeout, not the measured wait: it is what the
         * caller set and recognises; the two differ only by scheduling. */
        double waited = pool->cfg.acquire_timeout_s;
        if (pool->fail_since_ns)
            rc = pgetl_error_set(err, PGETL_ETIMEOUT,
                                 "pool exhausted: waited %.1f s, %d of %d in use; "
                                 "last connection attempt failed: %s",
                                 waited, pool->n_out, pool->cfg.pool_max, pool->last_err.message);
        else
            rc = pgetl_error_set(err, PGETL_ETIMEOUT,
                                 "pool exhausted: waited %.1f s, %d of %d in use", waited,
                                 pool->n_out, pool->cfg.pool_max);
    }
    pthread_mutex_unlock(&pool->mu);
    return rc;
}

pgetl_code pgetl_pool_acquire_at(pgetl_pool *pool, const char *file, int line,
                                 pgetl_conn **conn_out, pgetl_error *err) {
    if (!conn_out)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_pool_acquire: conn_out is NULL");
    *conn_out = NULL;
    if (!pool)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_pool_acquire: pool is NULL");

again:
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        pgetl_code rc;
        if (pool->closed) {
            rc = pgetl_error_set(err, PGETL_ECLOSED, "pool is closed");
        } else if (pool->n_idle > 0 && !pool->head) {
            break;
        } else if (pool->down) {
            pool->want_conn = true;
            pthread_cond_signal(&pool->maint_cv);
            rc = fail_down(pool, err);
        } else if (pool->cfg.max_waiters > 0 && pool->n_queued >= pool->cfg.max_waiters) {
            pool->rejected++;
            rc = pgetl_error_set(err, PGETL_EEXHAUSTED,
                                 "pool exhausted: %d callers already waiting (max_waiters %d), "
                                 "%d of %d in use",
                                 pool->n_queued, pool->cfg.max_waiters, pool->n_out,
                                 pool->cfg.pool_max);
        } else {
            /* A handed-over connection was just released or opened: it
             * needs no check. */
            pgetl_pool_slot *s = NULL;
            rc = wait_turn(pool, file, line, &s, err);
            if (rc == PGETL_OK)
                *conn_out = &s->conn;
            return rc;
        }
        pthread_mutex_unlock(&pool->mu);
        return rc;
    }

    /* An idle connection: the hottest one, top of the stack. */
    {
        int64_t now = pgetl__pool_clock_ns();
        pgetl_pool_slot *s = pool->idle[--pool->n_idle];
        take_slot(pool, s, file, line, now);
        bool retire = s->dsn_gen != pool->dsn_gen || (s->expires_ns && now >= s->expires_ns);
        if (!retire && now - s->idle_since_ns < PGETL_POOL_CHECK_AFTER_NS) {
            pool->acquired++;
            pthread_mutex_unlock(&pool->mu);
            *conn_out = &s->conn;
            return PGETL_OK;
        }
        /* The slot is ours (OUT), so the check runs without the lock. */
        pthread_mutex_unlock(&pool->mu);
        bool alive = !retire && pgetl__pool_conn_alive(s);
        pthread_mutex_lock(&pool->mu);
        if (alive) {
            pool->acquired++;
            pthread_mutex_unlock(&pool->mu);
            *conn_out = &s->conn;
            return PGETL_OK;
        }
        if (!retire) {
            pool->lost++;
            log_simple(PGETL_LOG_INFO, "pool_conn_lost",
                       "discarding a dead idle connection (server restarted or backend killed)");
        }
        pool->n_out--;
        PGconn *pg = pgetl__pool_slot_clear(pool, s);
        pthread_mutex_unlock(&pool->mu);
        PQfinish(pg);
        goto again; /* the next idle one, or queue */
    }
}

/* ---- release --------------------------------------------------------------- */

static const char *txn_name(PGTransactionStatusType t) {
    switch (t) {
    case PQTRANS_INTRANS:
        return "in a transaction";
    case PQTRANS_INERROR:
        return "in a failed transaction";
    case PQTRANS_ACTIVE:
        return "with a command still running";
    default:
        return "broken";
    }
}

/* Everything that needs I/O: the detach hook, rollback, discarding. The slot
 * is RETURNING (counted in n_out), so the pool stays alive meanwhile. */
static void release_slow(pgetl_pool *pool, pgetl_pool_slot *s) {
    pgetl__conn_run_detach(&s->conn);
    PGconn *pg = s->conn.pg;
    bool keep = true, bad = false, lost = false;
    PGTransactionStatusType t = PQtransactionStatus(pg);
    if (PQstatus(pg) != CONNECTION_OK || t == PQTRANS_UNKNOWN || s->server_fatal) {
        keep = false;
        bad = lost = true;
        log_slot(PGETL_LOG_WARN, "pool_release_broken", s,
                 "connection given back broken; closing it", pgetl__pool_clock_ns());
    } else if (t != PQTRANS_IDLE) {
        bad = true;
        char msg[160];
        if (t == PQTRANS_ACTIVE) {
            /* A query or COPY is still running; draining it could take long.
             * The connection is closed and replaced instead. */
            keep = false;
            snprintf(msg, sizeof msg, "connection given back %s; closing it (caller bug)",
                     txn_name(t));
        } else {
            snprintf(msg, sizeof msg, "connection given back %s; rolling back (caller bug)",
                     txn_name(t));
        }
        log_slot(PGETL_LOG_WARN, "pool_release_in_transaction", s, msg, pgetl__pool_clock_ns());
        if (keep) {
            PGresult *r = PQexec(pg, "ROLLBACK");
            keep = PQresultStatus(r) == PGRES_COMMAND_OK && PQtransactionStatus(pg) == PQTRANS_IDLE;
            PQclear(r);
        }
    }

    pthread_mutex_lock(&pool->mu);
    int64_t now = pgetl__pool_clock_ns();
    if (keep &&
        (pool->closed || s->dsn_gen != pool->dsn_gen || (s->expires_ns && now >= s->expires_ns)))
        keep = false;
    pool->n_out--;
    if (bad)
        pool->returned_bad++;
    if (lost)
        pool->lost++;
    PGconn *dead = NULL;
    pgetl_pool_waiter *w = NULL;
    if (keep)
        w = pgetl__pool_place(pool, s, now);
    else
        dead = pgetl__pool_slot_clear(pool, s);
    bool free_now = pool->destroyed && pool->n_out == 0 && !pool->freeing;
    if (free_now)
        pool->freeing = true;
    pthread_mutex_unlock(&pool->mu);
    pgetl__pool_wake(w);
    PQfinish(dead);
    if (free_now)
        pool_free(pool);
}

/*
 * Called with pool->mu held and, when `registry` is set, the registry's read
 * lock; releases both.
 */
static void release_owned(pgetl_pool *pool, pgetl_pool_slot *s, bool registry) {
    if (s->state != PGETL_SLOT_OUT) {
        pthread_mutex_unlock(&pool->mu);
        if (registry)
            pgetl__pool_registry_unlock();
        log_simple(PGETL_LOG_WARN, "pool_release_twice",
                   "release of a connection that is not out (released twice?); ignored");
        return;
    }
    PGconn *pg = s->conn.pg;
    int64_t now = pgetl__pool_clock_ns();
    /* Fast path: nothing borrowed, healthy, idle, still current. The caller
     * owns the connection, so reading its libpq state here is race-free. */
    if (!s->conn.detach && !pool->closed && !s->server_fatal && PQstatus(pg) == CONNECTION_OK &&
        PQtransactionStatus(pg) == PQTRANS_IDLE && s->dsn_gen == pool->dsn_gen &&
        (!s->expires_ns || now < s->expires_ns)) {
        pool->n_out--;
        pgetl_pool_waiter *w = pgetl__pool_place(pool, s, now);
        pthread_mutex_unlock(&pool->mu);
        if (registry)
            pgetl__pool_registry_unlock();
        pgetl__pool_wake(w);
        return;
    }
    s->state = PGETL_SLOT_RETURNING;
    pthread_mutex_unlock(&pool->mu);
    if (registry)
        pgetl__pool_registry_unlock();
    release_slow(pool, s);
}

static void release_via_registry(pgetl_pool *hint, pgetl_conn *conn) {
    bool hint_known = false;
    pgetl_pool *pool = pgetl__pool_registry_find(conn, &hint_known, hint);
    if (!pool) {
        pgetl__pool_registry_unlock();
        log_simple(PGETL_LOG_WARN, "pool_release_unknown",
                   "release of a connection no live pool owns (standalone, or its pool is "
                   "gone); ignored");
        return;
    }
    if (hint && hint != pool)
        log_simple(PGETL_LOG_WARN, "pool_release_wrong_pool",
                   hint_known ? "connection released to the wrong pool; returning it to its own"
                              : "connection released to a pool that no longer exists; returning "
                                "it to its own");
    pthread_mutex_lock(&pool->mu);
    release_owned(pool, (pgetl_pool_slot *)conn, true);
}

void pgetl_pool_release(pgetl_pool *pool, pgetl_conn *conn) {
    if (!conn)
        return;
    /* The common case, the caller's own pool: an address test on the
     * caller's handle, no registry lock. The handle is valid by contract
     * (not destroyed, or destroyed with this connection still out, which
     * keeps it alive). Everything else goes through the registry. */
    if (pool && pgetl__pool_owns(pool, conn)) {
        pthread_mutex_lock(&pool->mu);
        release_owned(pool, (pgetl_pool_slot *)conn, false);
        return;
    }
    release_via_registry(pool, conn);
}

void pgetl_release_connection(pgetl_conn *conn) {
    if (conn)
        release_via_registry(NULL, conn);
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
                log_slot(PGETL_LOG_WARN, "pool_close_outstanding", s,
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
        pool_free(pool);
}
