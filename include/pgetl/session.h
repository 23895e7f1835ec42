/*
 * Sessions, the default session, the non-blocking API and pipelining
 * (spec §6: the DatabaseConnection class and its async helpers, made real).
 *
 * A pgetl_session holds one connection for its whole life and offers the
 * spec's operations on it: a transaction scope (nested scopes become
 * savepoints), Arrow ingest, records bulk insert (COPY), pipelined bulk
 * statements (the spec's bulk_insert when COPY is not an option), queries
 * returning rows or an Arrow stream, execute, and close. Every operation logs
 * one structured line (event=session_<op>, with target, rows, seconds and
 * result; info level, warn when it failed). SQL text is logged only by its
 * first word and parameters never are.
 *
 * Outside pgetl_session_transaction() the session follows the library's
 * "autocommit off" rule: the first statement opens a transaction that the
 * caller ends with pgetl_session_commit() / pgetl_session_rollback(). Nothing
 * here ever commits unless the caller asked for exactly that.
 *
 * The non-blocking API (pgetl_async_*) drives one query or one COPY-in from
 * an event loop: start, then poll whenever the socket is ready for what the
 * last poll asked for. No call in it ever waits for the network.
 *
 * Thread contract:
 * - A pgetl_session serialises its own calls with an internal (recursive)
 *   mutex, so several threads may share one (the default session is meant to
 *   be shared); their statements run one after the other on the session's one
 *   connection, and a transaction scope holds the session for its whole
 *   duration. Threads sharing a session should do their work inside scopes:
 *   statements outside one share the session's implicit transaction.
 *   pgetl_session_destroy() must not race with other calls on the same
 *   handle; the default session uses references instead (see there).
 * - The default-session functions are safe from any number of threads.
 * - A pgetl_async / pgetl_async_copy operation, and the connection it runs on,
 *   are used by one thread at a time (libpq's rule).
 * - pgetl_pipeline_exec() uses its connection exclusively while it runs.
 */
#ifndef PGETL_SESSION_H
#define PGETL_SESSION_H

#include "pgetl/export.h"
#include "pgetl/error.h"
#include "pgetl/pool.h"
#include "pgetl/query.h"
#include "pgetl/copy.h"
#include "pgetl/arrow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Pipelining                                                               */
/* ------------------------------------------------------------------------ */

/*
 * What happens when a statement of a pipeline fails.
 *
 * In pipeline mode the server skips every statement after an error up to the
 * next sync point, so pgetl sends the statements in groups of `sync_every`,
 * each wrapped as SAVEPOINT; statements; RELEASE SAVEPOINT; Sync. When a
 * statement fails, pgetl stops sending, reads what is in flight, rolls back to
 * the failed group's savepoint and re-sends the group's statements that came
 * before the failed one. So the outcome is always exactly that of running
 * the statements one at a time:
 *
 * - PGETL_PIPELINE_STOP (default): statements [0, failed_index) are applied,
 *   the failed one and every later one are not (report.skipped counts the
 *   later ones). Returns the failed statement's error.
 * - PGETL_PIPELINE_CONTINUE: the failed statement is left out and sending
 *   resumes after it; every statement that does not fail is applied. The
 *   first failure's index and error are reported; report.failed counts all.
 *   Returns PGETL_ESERVER when any failed.
 */
typedef enum pgetl_pipeline_on_error {
    PGETL_PIPELINE_STOP = 0,
    PGETL_PIPELINE_CONTINUE
} pgetl_pipeline_on_error;

typedef struct pgetl_pipeline_options {
    int sync_every;                   /* statements per savepoint group; default 1000 */
    int max_inflight_groups;          /* groups sent but not yet answered; default 4  */
    pgetl_pipeline_on_error on_error; /* default PGETL_PIPELINE_STOP                  */
} pgetl_pipeline_options;

/* Fills *opts with the defaults above. */
PGETL_API void pgetl_pipeline_options_init(pgetl_pipeline_options *opts);

typedef struct pgetl_pipeline_report {
    int64_t statements;   /* statements given                                       */
    int64_t applied;      /* statements whose effects are kept                      */
    int64_t rows;         /* rows affected by the applied statements                */
    int64_t failed;       /* statements that failed (STOP: 0 or 1)                  */
    int64_t failed_index; /* index of the first failed statement, -1 when none      */
    int64_t skipped;      /* STOP: statements after the failed one, never applied   */
    int64_t sent;         /* statement executions sent, re-sends after a rollback included */
    char sqlstate[6];     /* the first failure's SQLSTATE, else ""                  */
    double seconds;
} pgetl_pipeline_report;

/*
 * Runs `sql` once per row of `params` (nrows rows of nparams text values,
 * row-major; a NULL pointer is SQL NULL) in libpq pipeline mode: prepared
 * once, then sent without waiting for each answer, reading results while
 * sending so full socket buffers never deadlock. Opens a transaction when the
 * connection is idle (BEGIN) and never commits it. Failures behave as
 * pgetl_pipeline_on_error describes; the error names the failed statement's
 * index, SQLSTATE and server message. opts and report_out may be NULL.
 * The connection is in its original (blocking, non-pipeline) mode on return.
 * Returns PGETL_OK, PGETL_EINVAL, PGETL_ESERVER, PGETL_ECONNLOST,
 * PGETL_ENOMEM.
 */
PGETL_API pgetl_code pgetl_pipeline_exec(pgetl_conn *conn, const char *sql, int nparams,
                                         int64_t nrows, const char *const *params,
                                         const pgetl_pipeline_options *opts,
                                         pgetl_pipeline_report *report_out, pgetl_error *err);

/* ------------------------------------------------------------------------ */
/* Non-blocking API                                                         */
/* ------------------------------------------------------------------------ */

/* Socket events a pending operation waits for (a bit set). */
enum { PGETL_WANT_NONE = 0, PGETL_WANT_READ = 1, PGETL_WANT_WRITE = 2 };

/*
 * The connection's socket, for registering with poll/epoll/kqueue; -1 when
 * the connection is NULL or broken. Valid until the connection is closed.
 */
PGETL_API int pgetl_async_socket(pgetl_conn *conn);

typedef struct pgetl_async pgetl_async;

/*
 * Sends one statement with nparams text parameters and returns at once; the
 * connection is switched to non-blocking mode for the operation's life.
 * Opening a transaction when idle is not done here (it would block): the
 * statement runs as sent. Free with pgetl_async_destroy(), which puts the
 * connection back in blocking mode. Returns PGETL_EINVAL, PGETL_ESTATE (the
 * connection is busy), PGETL_ECONNLOST, PGETL_ENOMEM.
 */
PGETL_API pgetl_code pgetl_async_query_start(pgetl_conn *conn, const char *sql, int nparams,
                                             const char *const *params, pgetl_async **op_out,
                                             pgetl_error *err);

/*
 * Does whatever I/O is possible without waiting. Returns PGETL_EAGAIN while
 * the operation is pending, with *want_out (may be NULL) holding the
 * PGETL_WANT_* events to wait for before the next poll; err is not touched.
 * Returns PGETL_OK when the result is complete (then *want_out is NONE), or
 * the statement's error (sticky: later polls return it again).
 */
PGETL_API pgetl_code pgetl_async_poll(pgetl_async *op, int *want_out, pgetl_error *err);

/*
 * io_timeout_s (pgetl_config) applies here too, without any waiting: while
 * an operation waits on the server (a query until its result; a COPY while
 * it starts, ends, or has output the kernel will not take), time in which
 * no byte moved either way counts, and a poll past the bound fails with
 * PGETL_ECONNLOST, "io_timeout_s (N s) expired: ..." (the connection is
 * shut down; the pool discards it). A stalled server never makes the socket
 * ready, so an event loop must also poll when this many milliseconds have
 * passed (0: poll now). -1 when no bound is running: io_timeout_s is 0, the
 * operation is finished, or (COPY) it waits for the caller's rows.
 */
PGETL_API int pgetl_async_timeout_ms(const pgetl_async *op);

/*
 * Hands over the completed result (once; the caller frees it with
 * pgetl_result_free()). PGETL_ESTATE before poll returned PGETL_OK or when
 * already taken.
 */
PGETL_API pgetl_code pgetl_async_result(pgetl_async *op, pgetl_result **result_out,
                                        pgetl_error *err);

/*
 * Frees the operation. One still running is cancelled (PQcancel, which
 * waits for the server's short reply) and its results discarded, so the
 * connection is idle again. Accepts NULL.
 */
PGETL_API void pgetl_async_destroy(pgetl_async *op);

/*
 * Non-blocking COPY-in.
 *
 * Rows are encoded into a buffer of at most `buffer_bytes` (a row bigger than
 * the whole buffer is taken only when the buffer is empty). When a row does
 * not fit, pgetl_async_copy_write_row() returns PGETL_EAGAIN without taking
 * it: the caller polls (when the socket is ready for what poll wants) until
 * the row goes in. Nothing grows without bound and nothing ever waits.
 */
typedef struct pgetl_async_copy pgetl_async_copy;

/* Default encode buffer: big enough for PQputCopyData chunks to be cheap. */
#define PGETL_ASYNC_COPY_BUFFER ((size_t)256 << 10)

typedef struct pgetl_async_copy_options {
    pgetl_copy_format format;   /* TEXT (default), CSV or BINARY                    */
    const char *const *columns; /* the target columns; required, since it also says */
    int ncolumns;               /* how many values each row carries                 */
    const pgetl_type *types;    /* BINARY: one per column, as the server expects  */
    size_t buffer_bytes;        /* default PGETL_ASYNC_COPY_BUFFER, at least 1024   */
} pgetl_async_copy_options;

PGETL_API void pgetl_async_copy_options_init(pgetl_async_copy_options *opts);

/*
 * Sends `COPY "schema"."table" ("c1", ...) FROM STDIN (FORMAT ...)` (the name
 * is parsed with pgetl_ident_parse; columns are quoted literally) and returns
 * at once. Rows may be queued straight away; they go out once the server has
 * accepted the COPY. Unknown tables or columns are reported by a later poll
 * (with the server's error). Runs in whatever transaction state the
 * connection is in. Free with pgetl_async_copy_destroy().
 * Returns PGETL_EINVAL (bad name, NULL argument, BINARY without types),
 * PGETL_ESTATE, PGETL_ECONNLOST, PGETL_ENOMEM.
 */
PGETL_API pgetl_code pgetl_async_copy_start(pgetl_conn *conn, const char *table,
                                            const pgetl_async_copy_options *opts,
                                            pgetl_async_copy **op_out, pgetl_error *err);

/*
 * Queues one row of text values (TEXT/CSV format, lengths may be NULL for
 * NUL-terminated values, a NULL pointer is SQL NULL). Returns PGETL_OK when
 * queued, PGETL_EAGAIN when the buffer is full (the row was not taken; poll,
 * then retry), PGETL_ESTATE after end or in BINARY format, or the sticky error.
 */
PGETL_API pgetl_code pgetl_async_copy_write_row(pgetl_async_copy *op, const char *const *values,
                                                const size_t *lengths, pgetl_error *err);

/*
 * Queues one row of typed values (BINARY format), one per column, of the
 * types given in the options (NUMERIC is PGETL_EUNSUPPORTED here; send it as
 * TEXT format). Returns as pgetl_async_copy_write_row().
 */
PGETL_API pgetl_code pgetl_async_copy_write_values(pgetl_async_copy *op, const pgetl_value *values,
                                                   pgetl_error *err);

/*
 * Marks the end of the data; poll until it returns PGETL_OK. Returns
 * PGETL_ESTATE when called twice, or the sticky error.
 */
PGETL_API pgetl_code pgetl_async_copy_end(pgetl_async_copy *op, pgetl_error *err);

/*
 * Moves queued data to the server as far as the socket allows. Returns
 * PGETL_EAGAIN while there is more to do (*want_out says what to wait for;
 * PGETL_WANT_READ alone after start means "waiting for the server", and
 * after all queued rows went out means "ready for more rows"), PGETL_OK once
 * the COPY ended and the server accepted it (*rows_out, may be NULL, gets the
 * row count the server reported), or the COPY's error (sticky).
 */
PGETL_API pgetl_code pgetl_async_copy_poll(pgetl_async_copy *op, int *want_out, int64_t *rows_out,
                                           pgetl_error *err);

/* The same as pgetl_async_timeout_ms(), for a COPY (see there). */
PGETL_API int pgetl_async_copy_timeout_ms(const pgetl_async_copy *op);

/*
 * Frees the operation. A COPY not yet finished is failed with PQputCopyEnd
 * (nothing of it is stored) and its results drained, which may wait briefly
 * for the server. The socket is put back in blocking mode. Accepts NULL.
 */
PGETL_API void pgetl_async_copy_destroy(pgetl_async_copy *op);

/* ------------------------------------------------------------------------ */
/* Sessions                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct pgetl_session pgetl_session;

/*
 * Creates a session on its own standalone connection (pgetl_connect with
 * cfg; NULL cfg: defaults and $PGETL_DSN). Destroy with
 * pgetl_session_destroy(). Returns PGETL_ECONFIG, PGETL_ECONNECT, PGETL_ENOMEM.
 */
PGETL_API pgetl_code pgetl_session_create(const pgetl_config *cfg, pgetl_session **session_out,
                                          pgetl_error *err);

/*
 * Creates a session holding one connection acquired from `pool` (borrowed;
 * it must outlive the session or at least its close) until close.
 * Errors as pgetl_pool_acquire().
 */
PGETL_API pgetl_code pgetl_session_create_pooled(pgetl_pool *pool, pgetl_session **session_out,
                                                 pgetl_error *err);

/*
 * Creates a session holding a connection from the process-wide pool
 * (pgetl_get_connection with cfg). Errors as pgetl_get_connection().
 */
PGETL_API pgetl_code pgetl_session_create_global(const pgetl_config *cfg,
                                                 pgetl_session **session_out, pgetl_error *err);

/*
 * The session's connection (borrowed), e.g. for the non-blocking API or
 * pgetl_copy_begin(). NULL after close. Do not close or release it.
 */
PGETL_API pgetl_conn *pgetl_session_conn(pgetl_session *s);

/* Called inside a transaction scope; return PGETL_OK to commit. */
typedef pgetl_code (*pgetl_session_fn)(pgetl_session *s, void *user, pgetl_error *err);

/*
 * Runs fn(s, user, err) inside a transaction: BEGIN, then COMMIT when fn
 * returns PGETL_OK, ROLLBACK when it returns anything else (its code and err
 * are returned unchanged, after the rollback). Called inside another scope,
 * it becomes SAVEPOINT / RELEASE SAVEPOINT, or ROLLBACK TO SAVEPOINT, which
 * undoes only the inner part; the outer fn decides what to do with the
 * inner error. A statement that fails inside fn leaves the transaction
 * failed: if fn then returns PGETL_OK anyway, the scope rolls back and returns
 * PGETL_ESTATE ("the transaction had failed"), never a false success.
 * A scope cannot start while the connection has an implicit transaction
 * open (from calls outside any scope): PGETL_ESTATE; commit or roll it back
 * first. Returns fn's code, PGETL_ECLOSED, PGETL_ESTATE, or the BEGIN/COMMIT
 * error (a COMMIT failure, e.g. a deferred constraint, is PGETL_ESERVER).
 */
PGETL_API pgetl_code pgetl_session_transaction(pgetl_session *s, pgetl_session_fn fn, void *user,
                                               pgetl_error *err);

/* Commits / rolls back the implicit transaction outside any scope. PGETL_ESTATE
 * inside a scope (the scope owns the transaction). */
PGETL_API pgetl_code pgetl_session_commit(pgetl_session *s, pgetl_error *err);
PGETL_API pgetl_code pgetl_session_rollback(pgetl_session *s, pgetl_error *err);

/* pgetl_execute() on the session's connection. */
PGETL_API pgetl_code pgetl_session_execute(pgetl_session *s, const char *sql, int nparams,
                                           const char *const *params, int64_t *rows_out,
                                           pgetl_error *err);

/* pgetl_fetchall() on the session's connection; free with pgetl_result_free(). */
PGETL_API pgetl_code pgetl_session_query(pgetl_session *s, const char *sql, int nparams,
                                         const char *const *params, pgetl_result **result_out,
                                         pgetl_error *err);

/*
 * pgetl_query_arrow() on the session's connection. The stream borrows the
 * connection: release it before the next call on the session.
 */
PGETL_API pgetl_code pgetl_session_query_arrow(pgetl_session *s, const char *sql, int nparams,
                                               const char *const *params,
                                               struct ArrowArrayStream *stream_out,
                                               pgetl_error *err);

/* pgetl_copy_from_arrow() on the session's connection (consumes the stream). */
PGETL_API pgetl_code pgetl_session_copy_from_arrow(pgetl_session *s, const char *table,
                                                   struct ArrowArrayStream *stream,
                                                   const char *const *columns, int ncolumns,
                                                   pgetl_copy_stats *stats_out, pgetl_error *err);

/*
 * Records bulk insert through COPY (the spec's copy_from_records): nrows rows
 * of ncolumns text values, row-major (a NULL pointer is SQL NULL), into
 * `table` (columns: NULL for all). Nothing is committed; a failure leaves the
 * transaction failed for the scope (or the caller) to roll back.
 */
PGETL_API pgetl_code pgetl_session_copy_records(pgetl_session *s, const char *table,
                                                const char *const *columns, int ncolumns,
                                                int64_t nrows, const char *const *values,
                                                int64_t *rows_out, pgetl_error *err);

/* pgetl_pipeline_exec() on the session's connection (the spec's bulk_insert). */
PGETL_API pgetl_code pgetl_session_bulk_exec(pgetl_session *s, const char *sql, int nparams,
                                             int64_t nrows, const char *const *params,
                                             const pgetl_pipeline_options *opts,
                                             pgetl_pipeline_report *report_out, pgetl_error *err);

/*
 * Gives the connection back (to its pool, or closes a standalone one). An
 * open implicit transaction is rolled back, never committed, with a warning.
 * Later calls on the session return PGETL_ECLOSED. PGETL_ESTATE inside a
 * transaction scope. Idempotent.
 */
PGETL_API pgetl_code pgetl_session_close(pgetl_session *s, pgetl_error *err);

/* Closes the session if needed and frees it (for the default session: drops
 * the reference, as pgetl_default_session_release). Accepts NULL. */
PGETL_API void pgetl_session_destroy(pgetl_session *s);

/* ------------------------------------------------------------------------ */
/* The default session (spec: get_instance / get_db_connection / close)     */
/* ------------------------------------------------------------------------ */

/*
 * Returns the process-wide session, creating it on first use from cfg (or,
 * cfg NULL, from $PGETL_DSN), on a connection of the process-wide pool. Each
 * successful call takes a reference: give it back with
 * pgetl_default_session_release(). After pgetl_default_session_close() the
 * next call creates a fresh session. Thread-safe.
 * Returns PGETL_OK or the creation error.
 */
PGETL_API pgetl_code pgetl_default_session(const pgetl_config *cfg, pgetl_session **session_out,
                                           pgetl_error *err);

/* Drops a reference from pgetl_default_session(). Accepts NULL. Thread-safe. */
PGETL_API void pgetl_default_session_release(pgetl_session *s);

/*
 * Closes the default session (the spec's close_db_connection): waits for a
 * call running on it to finish, gives its connection back, and detaches it
 * so the next pgetl_default_session() makes a new one. Handles still held
 * stay valid memory but every call on them returns PGETL_ECLOSED; the memory
 * is freed with the last reference. A no-op when there is none. Thread-safe.
 */
PGETL_API void pgetl_default_session_close(void);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_SESSION_H */
