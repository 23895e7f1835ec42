/*
 * Release: the fast path for a healthy connection given back to its own
 * pool, the slow path (detach, rollback, discard) outside the lock, and the
 * registry look-up for pointers the pool handle cannot vouch for.
 */
#include "connect/pool_int.h"

#include <stdio.h>

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
    /* Stalled or abandoned (a timeout shut its socket down): broken, whatever
     * libpq still believes. */
    if (PQstatus(pg) != CONNECTION_OK || t == PQTRANS_UNKNOWN || s->server_fatal ||
        pgetl__conn_stalled(pg)) {
        keep = false;
        bad = lost = true;
        pgetl__pool_log_slot(PGETL_LOG_WARN, "pool_release_broken", s,
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
        pgetl__pool_log_slot(PGETL_LOG_WARN, "pool_release_in_transaction", s, msg,
                             pgetl__pool_clock_ns());
        if (keep) {
            pgetl__conn_wait_begin(pg);
            PGresult *r = PQexec(pg, "ROLLBACK");
            pgetl__conn_wait_end(pg);
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
    if (!keep && pool->down && pool->n_out == 0)
        pgetl__pool_fail_waiters(pool, PGETL_ECONNECT); /* nothing left to wait for */
    bool free_now = pool->destroyed && pool->n_out == 0 && !pool->freeing;
    if (free_now)
        pool->freeing = true;
    pthread_mutex_unlock(&pool->mu);
    pgetl__pool_wake(w);
    pgetl__conn_finish(dead);
    if (free_now)
        pgetl__pool_free(pool);
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
        pgetl__pool_log(PGETL_LOG_WARN, "pool_release_twice",
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
        pgetl__pool_log(PGETL_LOG_WARN, "pool_release_unknown",
                        "release of a connection no live pool owns (standalone, or its pool is "
                        "gone); ignored");
        return;
    }
    if (hint && hint != pool)
        pgetl__pool_log(PGETL_LOG_WARN, "pool_release_wrong_pool",
                        hint_known
                            ? "connection released to the wrong pool; returning it to its own"
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
