/*
 * Private session layer: sits above copy (it may include copy, sql, connect
 * and base headers; nothing below includes it). Shared helpers of the
 * non-blocking files and the session struct.
 */
#ifndef PGETL_SRC_SESSION_INT_H
#define PGETL_SRC_SESSION_INT_H

#include "pgetl/session.h"
#include "sql/sql.h"

#include <pthread.h>

/*
 * Turns libpq's non-blocking mode on for an operation; *was_nonblocking
 * remembers the previous mode for pgetl__async_restore_mode().
 */
pgetl_code pgetl__async_nonblocking(PGconn *pg, bool *was_nonblocking, pgetl_error *err);
void pgetl__async_restore_mode(PGconn *pg, bool was_nonblocking);

/*
 * Reads what has arrived and flushes what is queued, without waiting.
 * Returns PGETL_OK with *flush_pending set when libpq still holds output,
 * or the connection's error.
 */
pgetl_code pgetl__async_pump(PGconn *pg, bool *flush_pending, const char *what, pgetl_error *err);

/*
 * Discards every remaining result of the current command. Used on error and
 * destroy paths only (it may wait for the server).
 */
void pgetl__async_drain(PGconn *pg);

/*
 * io_timeout_s for the non-blocking operations. libpq never waits there, so
 * the watchdog thread's bracketing does not apply; instead each operation
 * keeps a clock. A poll looks, before reading or flushing anything, whether
 * bytes moved since the last one (data or a close to read, or output that
 * was stuck now draining). While the operation waits on the server (not
 * while it waits for the caller's rows), time without movement counts; past
 * io_timeout_s the poll fails with ECONNLOST naming the bound and the
 * connection is shut down. An event loop learns when to poll again for that
 * from pgetl_async_timeout_ms() / pgetl_async_copy_timeout_ms().
 */
typedef struct pgetl__async_clock {
    int64_t limit_ns;       /* io_timeout_s; 0: off                               */
    int64_t quiet_since_ns; /* the wait began or bytes last moved                */
    bool waiting;           /* the last poll left the operation waiting on it    */
    bool pending;           /* libpq still held output after the last poll       */
    unsigned long long cpu; /* Unix socket: the backend's CPU time at the last poll */
} pgetl__async_clock;

void pgetl__async_clock_init(pgetl__async_clock *c, PGconn *pg);

/*
 * Whether bytes moved since the last poll (or, on a Unix socket, the
 * backend used CPU, as the watchdog counts it); call before pumping.
 */
bool pgetl__async_moved(pgetl__async_clock *c, PGconn *pg);

/*
 * After a poll's I/O: records whether bytes moved and whether the operation
 * now waits on the server (with output still pending or not). Returns
 * PGETL_OK, or PGETL_ECONNLOST (err filled, "what: io_timeout_s ...", the
 * connection shut down) when it waited without movement past the bound.
 */
pgetl_code pgetl__async_clock_tick(pgetl__async_clock *c, PGconn *pg, bool moved, bool waiting,
                                   bool pending, const char *what, pgetl_error *err);

/* Milliseconds until the bound expires; -1 when nothing is being timed. */
int pgetl__async_clock_ms(const pgetl__async_clock *c);

/* Wraps a PGresult in a pgetl_result (takes it; PQclears it on failure). */
pgetl_code pgetl__result_wrap(PGresult *res, pgetl_result **out, pgetl_error *err);

/* Waits until the socket is ready for `want` (PGETL_WANT_* bits); blocking helpers only. */
pgetl_code pgetl__async_wait(PGconn *pg, int want, const char *what, pgetl_error *err);

/* The session. One recursive mutex serialises every call (see session.h). */
struct pgetl_session {
    pthread_mutex_t mu;
    pgetl_conn *conn; /* NULL once closed                                  */
    pgetl_pool *pool; /* the pool it came from, NULL for the global/standalone */
    int kind;         /* SESSION_STANDALONE / _POOLED / _GLOBAL            */
    int depth;        /* nesting of transaction scopes                     */
    bool closed;
    bool is_default; /* references managed by default_session.c           */
    int refs;        /* default session only; guarded by its registry lock */
};

enum { PGETL_SESSION_STANDALONE = 0, PGETL_SESSION_POOLED, PGETL_SESSION_GLOBAL };

/* Closes the connection of s; caller holds s->mu. */
pgetl_code pgetl__session_close_locked(pgetl_session *s, pgetl_error *err);

/* Frees s (closing it first); no lock held, no other user left. */
void pgetl__session_free(pgetl_session *s);

/* default_session.c: drops a reference of the default session. */
void pgetl__default_session_unref(pgetl_session *s);

#endif /* PGETL_SRC_SESSION_INT_H */
