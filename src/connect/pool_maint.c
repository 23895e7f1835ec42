/*
 * The pool's maintenance thread: opens connections when callers wait or the
 * pool is below pool_min, retires idle and expired ones, reports leaks, and
 * reconnects with exponential backoff after an outage. Opening happens here,
 * never in the caller, so a caller that triggered growth simply waits in the
 * FIFO queue and gets whichever connection is ready first: a released one or
 * the new one.
 */
#include "connect/pool_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

double pgetl__pool_rand_unit(pgetl_pool *pool) {
    uint64_t x = pool->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    pool->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static bool need_open(const pgetl_pool *pool) {
    if (pool->closed || pool->n_open >= pool->cfg.pool_max)
        return false;
    return pool->n_open < pool->cfg.pool_min || pool->n_queued > pool->n_opening ||
           (pool->want_conn && pool->n_opening == 0);
}

static void close_slot_locked(pgetl_pool *pool, pgetl_pool_slot *s, int idle_index,
                              const char *why) {
    /* Removing from the middle of the idle stack keeps the order of the rest. */
    memmove(&pool->idle[idle_index], &pool->idle[idle_index + 1],
            (size_t)(pool->n_idle - idle_index - 1) * sizeof pool->idle[0]);
    pool->n_idle--;
    /* PQfinish under the lock: it only writes a Terminate message to a socket
     * buffer and closes the socket, which does not block. */
    pgetl__conn_finish(pgetl__pool_slot_clear(pool, s));
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_DEBUG, "pool_conn_retired")) {
        pgetl__log_str(&l, "reason", why);
        pgetl__log_end(&l);
    }
}

/*
 * Finds idle connections that died (backend killed, server restarted) with
 * one zero-timeout poll() over their sockets, so that the pool heals back to
 * pool_min before anyone asks. Only sockets with something to read get a
 * closer look. At most WATCH_BATCH per tick, oldest first, to bound the time
 * spent under the lock.
 */
enum { WATCH_BATCH = 128 };

static void watch_idle(pgetl_pool *pool) {
    struct pollfd fds[WATCH_BATCH];
    pgetl_pool_slot *who[WATCH_BATCH];
    int n = 0;
    for (int i = 0; i < pool->n_idle && n < WATCH_BATCH; i++) {
        pgetl_pool_slot *s = pool->idle[i];
        fds[n] = (struct pollfd){.fd = PQsocket(s->conn.pg), .events = POLLIN};
        who[n++] = s;
    }
    if (n == 0 || poll(fds, (nfds_t)n, 0) <= 0)
        return;
    for (int k = 0; k < n; k++) {
        if (!fds[k].revents || pgetl__pool_conn_alive(who[k]))
            continue;
        for (int i = 0; i < pool->n_idle; i++) {
            if (pool->idle[i] == who[k]) {
                pool->lost++;
                close_slot_locked(pool, who[k], i, "lost");
                break;
            }
        }
    }
}

static void housekeep(pgetl_pool *pool, int64_t now) {
    const pgetl_config *c = &pool->cfg;
    /* Oldest idle first (bottom of the stack). */
    for (int i = 0; i < pool->n_idle;) {
        pgetl_pool_slot *s = pool->idle[i];
        const char *why = NULL;
        if (s->expires_ns && now >= s->expires_ns)
            why = "max_lifetime";
        else if (s->dsn_gen != pool->dsn_gen)
            why = "dsn_rotated";
        else if (c->max_idle_s > 0 && pool->n_open > c->pool_min &&
                 now - s->idle_since_ns > (int64_t)(c->max_idle_s * 1e9))
            why = "max_idle";
        if (why)
            close_slot_locked(pool, s, i, why);
        else
            i++;
    }
    watch_idle(pool);
    if (c->leak_threshold_s > 0) {
        int64_t limit = (int64_t)(c->leak_threshold_s * 1e9);
        for (int i = 0; i < c->pool_max; i++) {
            pgetl_pool_slot *s = &pool->slots[i];
            if (s->state != PGETL_SLOT_OUT || s->leak_reported || now - s->acquired_ns <= limit)
                continue;
            s->leak_reported = true;
            pool->leaks_reported++;
            pgetl_logline l;
            if (pgetl__log_begin(&l, PGETL_LOG_WARN, "pool_conn_leak")) {
                char where[512];
                snprintf(where, sizeof where, "%s:%d", s->file ? s->file : "?", s->line);
                pgetl__log_str(&l, "msg", "connection held longer than leak_threshold_s");
                pgetl__log_str(&l, "acquired_at", where);
                pgetl__log_double(&l, "held_s", (double)(now - s->acquired_ns) / 1e9);
                pgetl__log_double(&l, "leak_threshold_s", c->leak_threshold_s);
                pgetl__log_end(&l);
            }
        }
    }
}

static void on_open_failed(pgetl_pool *pool, const pgetl_error *e, int64_t now) {
    pool->connect_errors++;
    pgetl__error_copy(&pool->last_err, e);
    if (!pool->fail_since_ns)
        pool->fail_since_ns = now;
    pool->backoff_ns = pool->backoff_ns ? pool->backoff_ns * 2 : PGETL_POOL_BACKOFF_MIN_NS;
    if (pool->backoff_ns > PGETL_POOL_BACKOFF_MAX_NS)
        pool->backoff_ns = PGETL_POOL_BACKOFF_MAX_NS;
    pool->next_attempt_ns = now + pool->backoff_ns;
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_WARN, "pool_connect_failed")) {
        pgetl__log_str(&l, "error", e->message);
        pgetl__log_double(&l, "failing_s", (double)(now - pool->fail_since_ns) / 1e9);
        pgetl__log_double(&l, "retry_in_s", (double)pool->backoff_ns / 1e9);
        pgetl__log_end(&l);
    }
    if (!pool->down &&
        now - pool->fail_since_ns >= (int64_t)(pool->cfg.reconnect_timeout_s * 1e9)) {
        pool->down = true;
        /* Waiters fail now only if no connection is out that could still
         * come back (new connections may be refused while old ones work,
         * e.g. "too many clients"); otherwise they wait as usual. */
        if (pool->n_out == 0)
            pgetl__pool_fail_waiters(pool, PGETL_ECONNECT);
        if (pgetl__log_begin(&l, PGETL_LOG_ERROR, "pool_down")) {
            pgetl__log_str(&l, "msg",
                           "server unreachable past reconnect_timeout_s; acquires fail "
                           "until a reconnect succeeds");
            pgetl__log_end(&l);
        }
    }
}

static void on_opened(pgetl_pool *pool, pgetl_pool_slot *s, PGconn *pg, uint32_t gen, int64_t now) {
    s->conn.pg = pg;
    s->server_fatal = false;
    s->dsn_gen = gen;
    s->opened_ns = now;
    s->expires_ns = 0;
    if (pool->cfg.max_lifetime_s > 0)
        s->expires_ns = now + (int64_t)(pool->cfg.max_lifetime_s *
                                        (0.9 + 0.2 * pgetl__pool_rand_unit(pool)) * 1e9);
    PQsetNoticeReceiver(pg, pgetl__pool_notice_receiver, s);
    pool->opened++;
    if (pool->down || pool->fail_since_ns) {
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_INFO, "pool_reconnected")) {
            pgetl__log_double(&l, "failed_for_s", (double)(now - pool->fail_since_ns) / 1e9);
            pgetl__log_end(&l);
        }
    }
    pool->fail_since_ns = 0;
    pool->backoff_ns = 0;
    pool->next_attempt_ns = 0;
    pool->down = false;
    pool->want_conn = false;
    if (pool->closed || gen != pool->dsn_gen) {
        /* Closed, or the DSN rotated while we connected: not usable. */
        pgetl__conn_finish(pgetl__pool_slot_clear(pool, s));
        return;
    }
    /* Posting under mu is fine here: this thread is not on the hot path. */
    pgetl__pool_wake(pgetl__pool_place(pool, s, now));
}

/* Opens one connection with the lock dropped. Caller holds mu. */
static void open_one(pgetl_pool *pool) {
    pgetl_pool_slot *s = NULL;
    for (int i = 0; i < pool->cfg.pool_max && !s; i++)
        if (pool->slots[i].state == PGETL_SLOT_EMPTY)
            s = &pool->slots[i];
    if (!s)
        return; /* cannot happen while n_open < pool_max */
    s->state = PGETL_SLOT_OPENING;
    pool->n_open++;
    pool->n_opening++;
    char *dsn = pgetl__strdup(pool->dsn);
    uint32_t gen = pool->dsn_gen;
    pgetl_config cfg = pool->cfg;
    cfg.dsn = dsn; /* pool->dsn may be replaced (and freed) meanwhile */
    pthread_mutex_unlock(&pool->mu);

    pgetl_error e;
    pgetl_error_init(&e);
    PGconn *pg = NULL;
    pgetl_code rc = dsn ? pgetl__conn_open(dsn, &cfg, &pg, &e)
                        : pgetl__error_oom(&e, "pool: opening a connection");
    if (rc != PGETL_OK && dsn) {
        /* The message is kept and shown to later callers: never a password. */
        char clean[PGETL_ERROR_MESSAGE_SIZE];
        pgetl__dsn_scrub(dsn, e.message, clean, sizeof clean);
        memcpy(e.message, clean, sizeof e.message);
    }
    pgetl__free(dsn);

    pthread_mutex_lock(&pool->mu);
    pool->n_opening--;
    if (rc == PGETL_OK) {
        on_opened(pool, s, pg, gen, pgetl__pool_clock_ns());
        return;
    }
    s->state = PGETL_SLOT_EMPTY;
    pool->n_open--;
    /* Reconnect scheduling runs on the precise clock, like the waits. */
    on_open_failed(pool, &e, pgetl__now_ns());
}

void *pgetl__pool_maint_main(void *arg) {
    pgetl_pool *pool = arg;
    pthread_mutex_lock(&pool->mu);
    int64_t next_housekeep = 0;
    while (!pool->closed) {
        /* Scheduling uses the precise clock, which the timed wait below also
         * uses (a coarse deadline would wake early and spin until the next
         * tick); slot timestamps are compared on the coarse one. */
        int64_t now = pgetl__now_ns();
        if (now >= next_housekeep) {
            housekeep(pool, pgetl__pool_clock_ns());
            next_housekeep = now + pool->tick_ns;
        }
        if (need_open(pool) && now >= pool->next_attempt_ns) {
            open_one(pool);
            continue;
        }
        int64_t wake = next_housekeep;
        if (need_open(pool) && pool->next_attempt_ns < wake)
            wake = pool->next_attempt_ns;
        struct timespec ts = {.tv_sec = (time_t)(wake / 1000000000),
                              .tv_nsec = (long)(wake % 1000000000)};
        pthread_cond_timedwait(&pool->maint_cv, &pool->mu, &ts);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}
