/*
 * Configuration, connection pools and transactions (spec §2, §3).
 *
 * A pgetl_pool hands out pgetl_conn handles. Connections run with
 * "autocommit off" semantics: pgetl's helpers open a transaction when the
 * connection is idle (BEGIN is sent before the first statement), and only the
 * caller ends it with pgetl_commit() or pgetl_rollback(). The library never
 * commits behind the caller's back.
 *
 * Thread note: a pgetl_pool is thread-safe. A pgetl_conn is used by one thread
 * at a time (libpq's rule) and may be released from any thread. The pool may
 * call the log callback while holding its lock: a log callback must not call
 * back into the same pool.
 */
#ifndef PGETL_POOL_H
#define PGETL_POOL_H

#include "pgetl/export.h"
#include "pgetl/error.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

/*
 * A value type: fill with pgetl_config_init(), then override fields. Strings
 * are borrowed; a pool copies what it keeps. Durations are seconds; 0 turns
 * a limit off where the field says so.
 */
typedef struct pgetl_config {
    /* libpq connection string or URI. NULL: $PGETL_DSN, else "" so that
     * libpq's own PG* environment variables and defaults apply. */
    const char *dsn;
    int pool_min;                  /* connections kept open; default 1              */
    int pool_max;                  /* hard cap; default 5                           */
    double acquire_timeout_s;      /* wait for a free connection; default 30        */
    double max_lifetime_s;         /* close older connections; default 3600, 0 off  */
    double max_idle_s;             /* close ones idle longer (above min); 600, 0 off */
    int max_waiters;               /* callers allowed to wait; default 0 = no cap   */
    double leak_threshold_s;       /* log a connection held longer; default 0 off   */
    double connect_timeout_s;      /* per connection attempt; default 10            */
    double reconnect_timeout_s;    /* give up after failing this long; default 60   */
    const char *application_name;  /* default "pgetl"                              */
    /*
     * Bounds against a stalled server or network (see docs/RELIABILITY.md,
     * "Faults"). All default to 0 (off) and are whole-connection settings.
     *
     * tcp_user_timeout_s: libpq's tcp_user_timeout. The kernel drops the
     *   connection when sent data stays unacknowledged this long (including
     *   a peer that advertises a zero window: a COPY whose bytes stop
     *   draining). TCP only.
     * keepalives_idle_s: turns TCP keepalives on (libpq keepalives=1,
     *   keepalives_idle) with probes every keepalives_idle_s / 3 (at least
     *   1 s), 3 probes: a peer that vanishes without a FIN or RST is
     *   noticed after about twice this. TCP only.
     * statement_timeout_s: the server's statement_timeout, set on every
     *   connection after it opens (SET, whole milliseconds). A statement or
     *   COPY running longer fails with SQLSTATE 57014.
     * io_timeout_s: a client-side watchdog. While a pgetl call waits on the
     *   server (a statement, BEGIN/COMMIT, a COPY's start, writes, end or
     *   reads), a connection on which no byte moves in either direction for
     *   this long (a server that accepts but never answers, a network that
     *   stopped forwarding mid-COPY) is shut down; the call fails with
     *   PGETL_ECONNLOST and a message naming io_timeout_s. Idle connections
     *   and the caller's own time between COPY calls never count. Checked
     *   about 10 times per bound. TCP, and Unix sockets whose server process
     *   can be observed (there the backend's CPU time counts as movement,
     *   so only a stopped, sleeping or waiting backend is a stall). The
     *   non-blocking API applies it per operation (pgetl_async_timeout_ms).
     *   Set it above the longest time a statement may take to return its
     *   first byte.
     *
     * Cancel requests pgetl sends (a query->Arrow stream released early, an
     * export whose output failed, pgetl_async_destroy) wait at most the
     * smaller of connect_timeout_s and io_timeout_s that is set (else 10 s);
     * a connection whose command could not be stopped in that time is shut
     * down rather than waited for.
     */
    double tcp_user_timeout_s;
    double keepalives_idle_s;
    double statement_timeout_s;
    double io_timeout_s;
} pgetl_config;

/* Fills *cfg with the defaults above. */
PGETL_API void pgetl_config_init(pgetl_config *cfg);

/*
 * Checks every field: min >= 0, max >= 1, max >= min, max <= 10000, times
 * finite, non-negative and at most a day (timeouts) or a year (lifetimes),
 * and that the DSN (after the PGETL_DSN fallback) parses with
 * PQconninfoParse. Returns PGETL_OK or PGETL_ECONFIG naming the field; the
 * message never contains the DSN's password.
 */
PGETL_API pgetl_code pgetl_config_validate(const pgetl_config *cfg, pgetl_error *err);

/*
 * The DSN the config resolves to: cfg->dsn, else $PGETL_DSN, else "". The
 * result points into cfg or the environment; do not free it.
 */
PGETL_API const char *pgetl_config_dsn(const pgetl_config *cfg);

/*
 * Writes dsn with every password replaced by "********" into buf (NUL
 * terminated, cut to size). Works for key=value strings and postgresql://
 * URIs, including ones libpq cannot parse: then the text after any
 * "password" key or the user-info of a URI is masked. Returns buf.
 */
PGETL_API char *pgetl_dsn_redact(const char *dsn, char *buf, size_t size);

/* ------------------------------------------------------------------------ */
/* Pools                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct pgetl_pool pgetl_pool;
typedef struct pgetl_conn pgetl_conn;

/*
 * Creates a pool and opens cfg->pool_min connections before returning (so a
 * bad DSN fails here, with the server's message). A maintenance thread opens
 * further connections on demand, retires expired ones and reconnects with
 * exponential backoff after an outage. Destroy with pgetl_pool_destroy().
 * Returns PGETL_ECONFIG, PGETL_ECONNECT, PGETL_ENOMEM.
 */
PGETL_API pgetl_code pgetl_pool_create(const pgetl_config *cfg, pgetl_pool **pool_out,
                                       pgetl_error *err);

/*
 * Hands out a connection for the caller's exclusive use, waiting up to the
 * acquire timeout. Waiters are served first come, first served: a released
 * or newly opened connection goes straight to the longest waiter. A
 * connection that sat idle for more than ~1 ms is checked (a zero-timeout
 * poll of its socket) before it is handed out, so one that died while idle
 * (backend killed, server restarted) is never handed out; it is discarded
 * and replaced. `file`/`line` are remembered (not copied: pass a string
 * literal) for leak and close reports; use the pgetl_pool_acquire() macro.
 * Returns PGETL_OK, PGETL_ETIMEOUT ("pool exhausted: waited 2.0 s, 5 of 5 in
 * use"; when connecting is failing, the last connection error is appended),
 * PGETL_EEXHAUSTED (more waiters than max_waiters: at once), PGETL_ECONNECT
 * (at once, with the last connection error, password masked: connecting has
 * failed for longer than reconnect_timeout_s and no connection is out that
 * could come back; until a later attempt succeeds), PGETL_ECLOSED.
 */
PGETL_API pgetl_code pgetl_pool_acquire_at(pgetl_pool *pool, const char *file, int line,
                                           pgetl_conn **conn_out, pgetl_error *err);
#define pgetl_pool_acquire(pool, conn_out, err)                                                    \
    pgetl_pool_acquire_at((pool), __FILE__, __LINE__, (conn_out), (err))

/*
 * Gives a connection back. A connection still inside a transaction (or an
 * aborted one) is rolled back and a warning logged: that is a caller bug. A
 * broken connection is closed and replaced on demand. Releasing a connection
 * to a pool it does not belong to logs a warning and returns it to its own
 * pool; releasing one that is not out (a double release) logs a warning and
 * does nothing. After pgetl_pool_close(), a released connection is closed.
 * A borrower registered on the connection (a live Arrow stream) is detached
 * first. A connection opened before pgetl_pool_set_dsn() or past its
 * lifetime is closed instead of kept. Accepts NULL.
 *
 * `pool` must be a live handle, or one destroyed while `conn` was still out
 * (such a pool stays allocated until its last connection is back). Pointers
 * the pool cannot vouch for (a standalone connection, garbage, a connection
 * of a pool already freed) are found by address in the registry of live
 * pools, logged and ignored, never dereferenced.
 */
PGETL_API void pgetl_pool_release(pgetl_pool *pool, pgetl_conn *conn);

/*
 * Replaces the DSN on a live pool (credential rotation). New connections use
 * it; connections opened with the old one are closed as they come back.
 * Returns PGETL_ECONFIG when the DSN does not parse (the pool is unchanged).
 */
PGETL_API pgetl_code pgetl_pool_set_dsn(pgetl_pool *pool, const char *dsn, pgetl_error *err);

typedef struct pgetl_pool_stats {
    int64_t opened;          /* connections opened since creation              */
    int64_t closed;          /* connections closed (any reason)                */
    int in_use;              /* connections out with callers now               */
    int idle;                /* connections idle in the pool now               */
    int waiting;             /* callers waiting in acquire now                 */
    int64_t acquired;        /* successful acquires                            */
    double wait_seconds;     /* total time callers spent waiting               */
    int64_t timeouts;        /* acquires that timed out                        */
    int64_t rejected;        /* acquires refused because of max_waiters        */
    int64_t lost;            /* connections found dead (server gone, killed)   */
    int64_t returned_bad;    /* released in a transaction, aborted or broken   */
    int64_t connect_errors;  /* failed connection attempts                     */
    int64_t leaks_reported;  /* connections held past leak_threshold_s         */
} pgetl_pool_stats;

/* A consistent snapshot of the pool's counters. `in_use + idle` plus
 * connections being opened is the number open; `opened - closed` equals it
 * once the pool is quiet. Accepts NULL pool (all zero). */
PGETL_API void pgetl_pool_get_stats(pgetl_pool *pool, pgetl_pool_stats *stats_out);

/*
 * Closes the pool: idle connections are closed, waiters fail with
 * PGETL_ECLOSED, later acquires fail. Connections still out are reported
 * (one warning each, with where they were acquired) and closed when they are
 * released. Returns the number still out. Idempotent. Waits for the
 * maintenance thread to stop, which may be finishing a connection attempt
 * (at most connect_timeout_s).
 */
PGETL_API int pgetl_pool_close(pgetl_pool *pool);

/*
 * Closes the pool if needed and frees it. Memory of connections still out is
 * freed when they are released, so a late release stays safe. Accepts NULL.
 */
PGETL_API void pgetl_pool_destroy(pgetl_pool *pool);

/* ------------------------------------------------------------------------ */
/* The process-wide pool (the spec's get_connection / release_connection)   */
/* ------------------------------------------------------------------------ */

/*
 * Acquires from the process-wide pool, creating it on first use from *cfg
 * (later calls ignore cfg except to check it names the same DSN; a different
 * DSN is PGETL_ECONFIG). Thread-safe. Use the macro for leak reports.
 */
PGETL_API pgetl_code pgetl_get_connection_at(const pgetl_config *cfg, const char *file, int line,
                                             pgetl_conn **conn_out, pgetl_error *err);
#define pgetl_get_connection(cfg, conn_out, err)                                                   \
    pgetl_get_connection_at((cfg), __FILE__, __LINE__, (conn_out), (err))

/*
 * Returns a connection to the pool it came from. Unlike the spec's no-op,
 * a connection whose pool is gone is closed, never leaked. Accepts NULL.
 */
PGETL_API void pgetl_release_connection(pgetl_conn *conn);

/*
 * Closes and frees the process-wide pool (a later get_connection makes a new
 * one). Waiting acquires fail with PGETL_ECLOSED; connections still out are
 * reported and closed when released with pgetl_release_connection() or
 * pgetl_conn_close(). Thread-safe.
 */
PGETL_API void pgetl_shutdown(void);

/* ------------------------------------------------------------------------ */
/* Connections and transactions                                             */
/* ------------------------------------------------------------------------ */

typedef enum pgetl_txn_state {
    PGETL_TXN_IDLE = 0,      /* no transaction open                           */
    PGETL_TXN_ACTIVE,        /* a command is running                          */
    PGETL_TXN_INTRANS,       /* inside a transaction block                    */
    PGETL_TXN_INERROR,       /* inside a failed transaction block             */
    PGETL_TXN_UNKNOWN        /* connection broken                             */
} pgetl_txn_state;

/*
 * Opens a standalone connection outside any pool (the CLI's `check` uses it).
 * Close with pgetl_conn_close(). Returns PGETL_ECONFIG, PGETL_ECONNECT.
 */
PGETL_API pgetl_code pgetl_connect(const pgetl_config *cfg, pgetl_conn **conn_out,
                                   pgetl_error *err);

/* Closes a connection from pgetl_connect(). Accepts NULL. */
PGETL_API void pgetl_conn_close(pgetl_conn *conn);

/* The transaction state as the server last reported it. */
PGETL_API pgetl_txn_state pgetl_conn_txn_state(const pgetl_conn *conn);

/* Sends BEGIN if the connection is idle; a no-op inside a transaction. */
PGETL_API pgetl_code pgetl_begin(pgetl_conn *conn, pgetl_error *err);

/*
 * COMMIT; a no-op when no transaction is open. A failed transaction cannot
 * commit: pgetl rolls it back and returns PGETL_ESTATE ("the transaction had
 * failed and was rolled back"), so a caller never mistakes it for success.
 * A server error at commit (e.g. a deferred constraint) is PGETL_ESERVER.
 */
PGETL_API pgetl_code pgetl_commit(pgetl_conn *conn, pgetl_error *err);

/* ROLLBACK. A no-op when no transaction is open. */
PGETL_API pgetl_code pgetl_rollback(pgetl_conn *conn, pgetl_error *err);

typedef struct pgetl_conn_info {
    int server_version;         /* 150004 for 15.4                              */
    char host[256];             /* host name, address or socket directory        */
    char port[16];
    char database[128];
    char user[128];
    int tls;                    /* 1 when the connection uses SSL/TLS            */
    char tls_version[32];       /* "TLSv1.3" or ""                               */
    char tls_cipher[64];
} pgetl_conn_info;

/* Describes the connection. Never includes a password. */
PGETL_API void pgetl_conn_get_info(const pgetl_conn *conn, pgetl_conn_info *info_out);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_POOL_H */
