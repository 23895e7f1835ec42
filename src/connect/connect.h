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
 * io_timeout_s (iowatch.c): starts watching a TCP connection for a stall
 * (nothing moved for io_timeout_s while a request is outstanding); a no-op
 * for 0 or a Unix socket. Every PGconn pgetl opens is closed with
 * pgetl__conn_finish(), which stops watching it and PQfinish()es it.
 */
void pgetl__conn_watch(const PGconn *pg, double io_timeout_s);
void pgetl__conn_finish(PGconn *pg);

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
