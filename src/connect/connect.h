/*
 * Private connect layer: the connection struct shared by conn.c, txn.c and
 * the pool, and the accessors the upper layers (sql, copy, load) use. Upper
 * layers never touch the struct's fields directly.
 */
#ifndef PGETL_SRC_CONNECT_H
#define PGETL_SRC_CONNECT_H

#include "base/base.h"

#include <libpq-fe.h>

/*
 * A connection. Standalone ones (pgetl_connect) have pool == NULL; pooled
 * ones are owned by their pool (pool.c keeps its bookkeeping in `slot`).
 */
struct pgetl_conn {
    PGconn *pg;
    struct pgetl_pool *pool;
    void *slot;              /* pool.c's private per-connection record           */
    /*
     * Something that borrows the connection across calls (an Arrow stream
     * reading COPY TO STDOUT) registers here; giving the connection back or
     * closing it calls detach(arg) first so the borrower lets go safely.
     */
    void (*detach)(void *arg);
    void *detach_arg;
};

/* Opens a PGconn for a resolved DSN with pgetl's connection defaults. */
pgetl_code pgetl__conn_open(const char *dsn, const pgetl_config *cfg, PGconn **pg_out,
                            pgetl_error *err);

/*
 * io_timeout_s (iowatch.c): starts watching a connection (TCP, or a Unix
 * socket whose server process can be observed) for a stall (nothing moved
 * for io_timeout_s while a request is outstanding), and remembers its
 * bounds so a kernel timeout's message can name them and a cancel request
 * can be bounded; a no-op when none is set. Every PGconn pgetl opens is
 * closed with pgetl__conn_finish(), which stops watching it and
 * PQfinish()es it.
 */
void pgetl__conn_watch(const PGconn *pg, const pgetl_config *cfg);
void pgetl__conn_finish(PGconn *pg);

/*
 * PQgetCopyData(pg, buf, 0) (blocking) for COPY TO STDOUT readers: while it
 * waits, a watched connection counts as awaiting the server, so a stream
 * that stops mid-way is bounded by io_timeout_s too.
 */
int pgetl__conn_get_copy_data(PGconn *pg, char **buf);

/*
 * Brackets a blocking libpq call that waits on the server (sending COPY
 * data, ending a COPY and reading its result): while inside, a watched
 * connection where nothing moves for io_timeout_s is shut down, even when
 * the last thing that arrived came after the last thing sent (a server
 * error mid-COPY). Cheap when no connection is watched.
 */
void pgetl__conn_wait_begin(const PGconn *pg);
void pgetl__conn_wait_end(const PGconn *pg);

/*
 * Whether the io_timeout_s watchdog shut this connection down, or it was
 * abandoned (pgetl__conn_abandon; errors on it then say so) (iowatch.c).
 * The bound a cancel request of this connection may take: the smaller of
 * connect_timeout_s and io_timeout_s that is set, else 10 s.
 */
bool pgetl__conn_stalled(const PGconn *pg);
double pgetl__conn_cancel_bound(const PGconn *pg);
void pgetl__conn_mark_abandoned(const PGconn *pg);

/* The io_timeout_s the connection was opened with (0: off), for non-blocking callers. */
double pgetl__conn_io_timeout(const PGconn *pg);

/*
 * A Unix-socket connection's backend CPU time (clock ticks) when the
 * watchdog observes it, else 0: the non-blocking API counts a change as
 * movement, as the watchdog does.
 */
unsigned long long pgetl__conn_backend_cpu(const PGconn *pg);

/*
 * A bounded PQcancel (cancel.c): runs the request on a short-lived thread
 * and waits at most pgetl__conn_cancel_bound(pg); a request still running
 * then is abandoned safely (it frees its own resources whenever it ends).
 * Skipped for a connection that is broken or that the watchdog found
 * stalled. errbuf (may be NULL) says why a request was not sent. Call it
 * from the thread that uses the connection.
 */
typedef enum pgetl__cancel_result {
    PGETL__CANCEL_SENT = 0, /* the server took the request                   */
    PGETL__CANCEL_FAILED,   /* the request failed (errbuf says why)          */
    PGETL__CANCEL_TIMEOUT,  /* no answer within the bound: the peer is hung  */
    PGETL__CANCEL_SKIPPED   /* broken or stalled connection: nothing to stop */
} pgetl__cancel_result;
pgetl__cancel_result pgetl__conn_cancel(PGconn *pg, char *errbuf, size_t size);

/*
 * Gives up on a connection stuck in a command that could not be stopped
 * within its bounds: shuts its socket down, so every later call on it fails
 * at once instead of waiting (the pool discards it when it comes back).
 */
void pgetl__conn_abandon(PGconn *pg);

/*
 * Logs a server NOTICE/WARNING (a PQnoticeReceiver's result) as a structured
 * `server_notice` line. Returns true when its severity is FATAL or PANIC
 * (the server is about to close the connection).
 */
bool pgetl__conn_log_notice(const PGresult *res);

/* The borrowed PGconn (NULL when conn is NULL). */
PGconn *pgetl__conn_pg(pgetl_conn *conn);

/* Registers / clears the borrower hook described above. */
void pgetl__conn_set_detach(pgetl_conn *conn, void (*detach)(void *), void *arg);

/* Calls and clears the detach hook, if any. */
void pgetl__conn_run_detach(pgetl_conn *conn);

/*
 * Runs one utility statement with no parameters and no result rows
 * (BEGIN, ROLLBACK, SAVEPOINT ...). Errors as pgetl__error_from_pg.
 */
pgetl_code pgetl__conn_exec_simple(pgetl_conn *conn, const char *sql, pgetl_error *err);

/*
 * Copies `text` (typically libpq's message about `dsn`) into buf with every
 * password the DSN holds masked, as pgetl_dsn_redact finds them; libpq's
 * parse errors can repeat the DSN or a token of it verbatim. Returns buf.
 */
char *pgetl__dsn_scrub(const char *dsn, const char *text, char *buf, size_t size);

/* Bounds for config validation, shared with the CLI's messages. */
#define PGETL_POOL_MAX_LIMIT 10000
#define PGETL_TIMEOUT_MAX_S 86400.0
#define PGETL_LIFETIME_MAX_S (86400.0 * 366)

#endif /* PGETL_SRC_CONNECT_H */
