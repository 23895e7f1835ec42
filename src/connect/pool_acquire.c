/*
 * Acquire: the idle fast path, the liveness check for connections that sat
 * idle, and the FIFO wait for a hand-off.
 */
#define _GNU_SOURCE /* sem_clockwait: a semaphore wait on CLOCK_MONOTONIC */
#include "connect/pool_int.h"

#include <errno.h>
#include <time.h>

static struct timespec abs_deadline(int64_t at_ns) {
    struct timespec ts = {.tv_sec = (time_t)(at_ns / 1000000000),
                          .tv_nsec = (long)(at_ns % 1000000000)};
    return ts;
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
        } else if (pool->down && pool->n_out == 0) {
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
        pgetl__pool_take_slot(pool, s, file, line, now);
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
        if (!retire)
            pool->lost++;
        pool->n_out--;
        PGconn *pg = pgetl__pool_slot_clear(pool, s);
        pthread_mutex_unlock(&pool->mu);
        pgetl__conn_finish(pg);
        if (!retire)
            pgetl__pool_log(
                PGETL_LOG_INFO, "pool_conn_lost",
                "discarding a dead idle connection (server restarted or backend killed)");
        goto again; /* the next idle one, or queue */
    }
}
