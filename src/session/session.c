/*
 * Sessions: one connection held for the session's life, a transaction scope
 * with savepoints for nested scopes, and the spec's operations wrapped with
 * one structured log line each.
 *
 * Design note. Every public call takes the session's recursive mutex, so a
 * session shared between threads (the default session) runs one call at a
 * time, and a transaction scope keeps the session for its whole duration
 * while fn may still call the session's own functions. The scope never
 * guesses: it commits only when fn returned PGETL_OK and the server agrees
 * the transaction is healthy, and otherwise rolls back with its own error
 * value so fn's error reaches the caller untouched.
 */
#include "session/session_int.h"

#include <inttypes.h>
#include <stdio.h>

/* ---- helpers ------------------------------------------------------------- */

static pgetl_code enter(pgetl_session *s, const char *what, pgetl_error *err) {
    if (!s)
        return pgetl_error_set(err, PGETL_EINVAL, "%s: session is NULL", what);
    pthread_mutex_lock(&s->mu);
    if (s->closed || !s->conn) {
        pthread_mutex_unlock(&s->mu);
        return pgetl_error_set(err, PGETL_ECLOSED, "%s: the session is closed", what);
    }
    return PGETL_OK;
}

static void leave(pgetl_session *s) {
    pthread_mutex_unlock(&s->mu);
}

static void log_op(const char *event, const char *target, int64_t rows, int64_t t0, pgetl_code rc,
                   int depth) {
    pgetl_logline l;
    if (!pgetl__log_begin(&l, rc == PGETL_OK ? PGETL_LOG_INFO : PGETL_LOG_WARN, event))
        return;
    if (target)
        pgetl__log_str(&l, "target", target);
    if (rows >= 0)
        pgetl__log_int(&l, "rows", rows);
    if (depth >= 0)
        pgetl__log_int(&l, "depth", depth);
    pgetl__log_double(&l, "seconds", (double)(pgetl__now_ns() - t0) / 1e9);
    pgetl__log_str(&l, "result", pgetl_code_name(rc));
    pgetl__log_end(&l);
}

/* The first word of a statement, for log lines: never its parameters. */
static const char *verb(const char *sql, char *buf, size_t size) {
    if (!sql)
        return "";
    while (*sql == ' ' || *sql == '\n' || *sql == '\t' || *sql == '(')
        sql++;
    size_t n = 0;
    while (sql[n] && sql[n] != ' ' && sql[n] != '\n' && sql[n] != '\t' && n + 1 < size) {
        buf[n] = sql[n];
        n++;
    }
    buf[n] = '\0';
    return buf;
}

/* ---- create / close ------------------------------------------------------ */

static pgetl_code make(pgetl_session **out, pgetl_error *err) {
    pgetl_session *s = pgetl__calloc(1, sizeof *s);
    if (!s)
        return pgetl__error_oom(err, "session");
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int e = pthread_mutex_init(&s->mu, &a);
    pthread_mutexattr_destroy(&a);
    if (e != 0) {
        pgetl__free(s);
        return pgetl_error_set(err, PGETL_ENOMEM, "session: cannot create its mutex");
    }
    *out = s;
    return PGETL_OK;
}

static pgetl_code finish_create(pgetl_session *s, pgetl_code rc, pgetl_session **out,
                                const char *kind, pgetl_error *err) {
    (void)err;
    if (rc != PGETL_OK) {
        pthread_mutex_destroy(&s->mu);
        pgetl__free(s);
        return rc;
    }
    *out = s;
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_INFO, "session_create")) {
        pgetl__log_str(&l, "kind", kind);
        pgetl__log_end(&l);
    }
    return PGETL_OK;
}

pgetl_code pgetl_session_create(const pgetl_config *cfg, pgetl_session **session_out,
                                pgetl_error *err) {
    if (!session_out)
        return pgetl_error_set(err, PGETL_EINVAL, "session: session_out is NULL");
    *session_out = NULL;
    pgetl_session *s;
    pgetl_code rc = make(&s, err);
    if (rc != PGETL_OK)
        return rc;
    s->kind = PGETL_SESSION_STANDALONE;
    return finish_create(s, pgetl_connect(cfg, &s->conn, err), session_out, "standalone", err);
}

pgetl_code pgetl_session_create_pooled(pgetl_pool *pool, pgetl_session **session_out,
                                       pgetl_error *err) {
    if (!session_out || !pool)
        return pgetl_error_set(err, PGETL_EINVAL, "session: %s is NULL",
                               pool ? "session_out" : "pool");
    *session_out = NULL;
    pgetl_session *s;
    pgetl_code rc = make(&s, err);
    if (rc != PGETL_OK)
        return rc;
    s->kind = PGETL_SESSION_POOLED;
    s->pool = pool;
    return finish_create(s, pgetl_pool_acquire(pool, &s->conn, err), session_out, "pooled", err);
}

pgetl_code pgetl_session_create_global(const pgetl_config *cfg, pgetl_session **session_out,
                                       pgetl_error *err) {
    if (!session_out)
        return pgetl_error_set(err, PGETL_EINVAL, "session: session_out is NULL");
    *session_out = NULL;
    pgetl_session *s;
    pgetl_code rc = make(&s, err);
    if (rc != PGETL_OK)
        return rc;
    s->kind = PGETL_SESSION_GLOBAL;
    return finish_create(s, pgetl_get_connection(cfg, &s->conn, err), session_out, "global", err);
}

pgetl_conn *pgetl_session_conn(pgetl_session *s) {
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    pgetl_conn *c = s->closed ? NULL : s->conn;
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* Ends a COPY or a borrowed stream left open, so ROLLBACK can run. */
static void settle_connection(pgetl_conn *conn) {
    pgetl__conn_run_detach(conn);
    PGconn *pg = pgetl__conn_pg(conn);
    if (pg && PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_ACTIVE)
        pgetl__async_drain(pg);
}

pgetl_code pgetl__session_close_locked(pgetl_session *s, pgetl_error *err) {
    if (s->closed)
        return PGETL_OK;
    if (s->depth > 0)
        return pgetl_error_set(err, PGETL_ESTATE,
                               "session close: inside a transaction scope; return from it first");
    int64_t t0 = pgetl__now_ns();
    settle_connection(s->conn);
    pgetl_txn_state st = pgetl_conn_txn_state(s->conn);
    if (st == PGETL_TXN_INTRANS || st == PGETL_TXN_INERROR) {
        /* Never commit on close: roll back and say so. */
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_WARN, "session_close")) {
            pgetl__log_str(&l, "note", "open transaction rolled back, not committed");
            pgetl__log_end(&l);
        }
        pgetl_rollback(s->conn, NULL);
    }
    switch (s->kind) {
    case PGETL_SESSION_POOLED:
        pgetl_pool_release(s->pool, s->conn);
        break;
    case PGETL_SESSION_GLOBAL:
        pgetl_release_connection(s->conn);
        break;
    default:
        pgetl_conn_close(s->conn);
    }
    s->conn = NULL;
    s->closed = true;
    log_op("session_close", NULL, -1, t0, PGETL_OK, -1);
    return PGETL_OK;
}

pgetl_code pgetl_session_close(pgetl_session *s, pgetl_error *err) {
    if (!s)
        return pgetl_error_set(err, PGETL_EINVAL, "session close: session is NULL");
    pthread_mutex_lock(&s->mu);
    pgetl_code rc = pgetl__session_close_locked(s, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void pgetl__session_free(pgetl_session *s) {
    pthread_mutex_lock(&s->mu);
    s->depth = 0;
    pgetl__session_close_locked(s, NULL);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&s->mu);
    pgetl__free(s);
}

void pgetl_session_destroy(pgetl_session *s) {
    if (!s)
        return;
    if (s->is_default) {
        pgetl__default_session_unref(s);
        return;
    }
    pgetl__session_free(s);
}

/* ---- transaction scope --------------------------------------------------- */

/* Ends a scope: COMMIT / RELEASE on success, ROLLBACK [TO] otherwise. */
static pgetl_code end_scope(pgetl_session *s, int depth, pgetl_code rc, pgetl_error *err,
                            const char **outcome) {
    char sql[64];
    pgetl_error own;
    PGconn *pg = pgetl__conn_pg(s->conn);
    bool failed_txn = PQtransactionStatus(pg) == PQTRANS_INERROR;
    if (rc == PGETL_OK && !failed_txn) {
        if (depth == 0) {
            *outcome = "commit";
            /* A failing COMMIT (deferred constraint) ends the transaction too. */
            return pgetl__conn_exec_simple(s->conn, "COMMIT", err);
        }
        *outcome = "release";
        snprintf(sql, sizeof sql, "RELEASE SAVEPOINT pgetl_sp_%d", depth);
        return pgetl__conn_exec_simple(s->conn, sql, err);
    }
    settle_connection(s->conn);
    pgetl_code rb;
    if (depth == 0) {
        *outcome = "rollback";
        rb = pgetl__conn_exec_simple(s->conn, "ROLLBACK", &own);
    } else {
        *outcome = "rollback_to_savepoint";
        snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT pgetl_sp_%d", depth);
        rb = pgetl__conn_exec_simple(s->conn, sql, &own);
        if (rb == PGETL_OK) {
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT pgetl_sp_%d", depth);
            rb = pgetl__conn_exec_simple(s->conn, sql, &own);
        }
    }
    if (rc == PGETL_OK) {
        /* fn said OK although a statement inside it failed: never a false success. */
        if (rb != PGETL_OK)
            return pgetl__error_copy(err, &own);
        return pgetl_error_set(err, PGETL_ESTATE,
                               "transaction scope: a statement inside it failed, so it was %s "
                               "although the function returned OK",
                               depth == 0 ? "rolled back" : "rolled back to its savepoint");
    }
    if (rb != PGETL_OK) {
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_WARN, "session_rollback_failed")) {
            pgetl__log_str(&l, "message", own.message);
            pgetl__log_end(&l);
        }
    }
    return rc; /* fn's code; err still holds fn's error */
}

pgetl_code pgetl_session_transaction(pgetl_session *s, pgetl_session_fn fn, void *user,
                                     pgetl_error *err) {
    pgetl_code rc = enter(s, "transaction", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    int depth = s->depth;
    PGconn *pg = pgetl__conn_pg(s->conn);
    PGTransactionStatusType st = PQtransactionStatus(pg);
    char sql[64];
    if (!fn) {
        rc = pgetl_error_set(err, PGETL_EINVAL, "transaction: fn is NULL");
    } else if (PQstatus(pg) != CONNECTION_OK) {
        rc = pgetl_error_set(err, PGETL_ECONNLOST, "transaction: connection to the server lost");
    } else if (depth == 0 && st != PQTRANS_IDLE) {
        rc = pgetl_error_set(err, PGETL_ESTATE,
                             "transaction: an implicit transaction is open on this session "
                             "(from calls outside a scope); commit or roll it back first");
    } else if (depth > 0 && st != PQTRANS_INTRANS) {
        rc = pgetl_error_set(err, PGETL_ESTATE,
                             "transaction: the enclosing transaction has failed; a nested scope "
                             "cannot start until the outer one rolls back");
    } else if (depth == 0) {
        rc = pgetl__conn_exec_simple(s->conn, "BEGIN", err);
    } else {
        snprintf(sql, sizeof sql, "SAVEPOINT pgetl_sp_%d", depth + 1);
        rc = pgetl__conn_exec_simple(s->conn, sql, err);
    }
    if (rc != PGETL_OK) {
        leave(s);
        return rc;
    }
    s->depth = depth + 1;
    pgetl_code frc = fn(s, user, err);
    s->depth = depth;
    const char *outcome = "";
    if (s->closed) {
        /* Cannot happen through the API (close refuses inside a scope). */
        rc = pgetl_error_set(err, PGETL_ECLOSED, "transaction: the session was closed inside it");
    } else {
        rc = end_scope(s, depth == 0 ? 0 : depth + 1, frc, err, &outcome);
    }
    pgetl_logline l;
    if (pgetl__log_begin(&l, rc == PGETL_OK ? PGETL_LOG_INFO : PGETL_LOG_WARN,
                         "session_transaction")) {
        pgetl__log_int(&l, "depth", depth);
        pgetl__log_str(&l, "outcome", outcome);
        pgetl__log_double(&l, "seconds", (double)(pgetl__now_ns() - t0) / 1e9);
        pgetl__log_str(&l, "result", pgetl_code_name(rc));
        pgetl__log_end(&l);
    }
    leave(s);
    return rc;
}

pgetl_code pgetl_session_commit(pgetl_session *s, pgetl_error *err) {
    pgetl_code rc = enter(s, "commit", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    rc = s->depth > 0 ? pgetl_error_set(err, PGETL_ESTATE,
                                        "commit: inside a transaction scope, which commits itself")
                      : pgetl_commit(s->conn, err);
    log_op("session_commit", NULL, -1, t0, rc, -1);
    leave(s);
    return rc;
}

pgetl_code pgetl_session_rollback(pgetl_session *s, pgetl_error *err) {
    pgetl_code rc = enter(s, "rollback", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    if (s->depth > 0) {
        rc = pgetl_error_set(err, PGETL_ESTATE,
                             "rollback: inside a transaction scope; return an error from it");
    } else {
        settle_connection(s->conn);
        rc = pgetl_rollback(s->conn, err);
    }
    log_op("session_rollback", NULL, -1, t0, rc, -1);
    leave(s);
    return rc;
}

/* ---- operations ---------------------------------------------------------- */

pgetl_code pgetl_session_execute(pgetl_session *s, const char *sql, int nparams,
                                 const char *const *params, int64_t *rows_out, pgetl_error *err) {
    if (rows_out)
        *rows_out = 0;
    pgetl_code rc = enter(s, "execute", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns(), rows = 0;
    rc = pgetl_execute(s->conn, sql, nparams, params, &rows, err);
    char v[32];
    log_op("session_execute", verb(sql, v, sizeof v), rows, t0, rc, s->depth);
    leave(s);
    if (rows_out)
        *rows_out = rows;
    return rc;
}

pgetl_code pgetl_session_query(pgetl_session *s, const char *sql, int nparams,
                               const char *const *params, pgetl_result **result_out,
                               pgetl_error *err) {
    pgetl_code rc = enter(s, "query", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    rc = pgetl_fetchall(s->conn, sql, nparams, params, result_out, err);
    char v[32];
    log_op("session_query", verb(sql, v, sizeof v),
           rc == PGETL_OK ? pgetl_result_nrows(*result_out) : 0, t0, rc, s->depth);
    leave(s);
    return rc;
}

pgetl_code pgetl_session_query_arrow(pgetl_session *s, const char *sql, int nparams,
                                     const char *const *params, struct ArrowArrayStream *stream_out,
                                     pgetl_error *err) {
    pgetl_code rc = enter(s, "query_arrow", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    rc = pgetl_query_arrow(s->conn, sql, nparams, params, stream_out, err);
    char v[32];
    /* Rows are decoded later, as the caller reads the stream. */
    log_op("session_query_arrow", verb(sql, v, sizeof v), -1, t0, rc, s->depth);
    leave(s);
    return rc;
}

pgetl_code pgetl_session_copy_from_arrow(pgetl_session *s, const char *table,
                                         struct ArrowArrayStream *stream,
                                         const char *const *columns, int ncolumns,
                                         pgetl_copy_stats *stats_out, pgetl_error *err) {
    pgetl_code rc = enter(s, "copy_from_arrow", err);
    if (rc != PGETL_OK) {
        /* The stream is consumed whatever happens, as pgetl_copy_from_arrow promises. */
        if (stream && stream->release)
            stream->release(stream);
        return rc;
    }
    int64_t t0 = pgetl__now_ns();
    pgetl_copy_stats st;
    memset(&st, 0, sizeof st);
    rc = pgetl_copy_from_arrow(s->conn, table, stream, columns, ncolumns, &st, err);
    log_op("session_copy_from_arrow", table, st.rows_loaded, t0, rc, s->depth);
    leave(s);
    if (stats_out)
        *stats_out = st;
    return rc;
}

pgetl_code pgetl_session_copy_records(pgetl_session *s, const char *table,
                                      const char *const *columns, int ncolumns, int64_t nrows,
                                      const char *const *values, int64_t *rows_out,
                                      pgetl_error *err) {
    if (rows_out)
        *rows_out = 0;
    if (nrows < 0 || (nrows > 0 && !values) || ncolumns < 0 || (ncolumns > 0 && !columns))
        return pgetl_error_set(err, PGETL_EINVAL, "copy_records: bad arguments");
    if (nrows > 0 && ncolumns == 0)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "copy_records: the column list is needed to lay out the values");
    pgetl_code rc = enter(s, "copy_records", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    pgetl_copy_stats st;
    memset(&st, 0, sizeof st);
    if (nrows == 0) {
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_INFO, "session_copy_records")) {
            pgetl__log_str(&l, "target", table ? table : "");
            pgetl__log_str(&l, "note", "no rows; skipping");
            pgetl__log_end(&l);
        }
        leave(s);
        return PGETL_OK;
    }
    pgetl_copy_options o;
    pgetl_copy_options_init(&o);
    o.format = PGETL_COPY_TEXT;
    o.columns = columns;
    o.ncolumns = ncolumns;
    pgetl_copy *copy = NULL;
    rc = pgetl_copy_begin(s->conn, table, &o, &copy, err);
    for (int64_t i = 0; rc == PGETL_OK && i < nrows; i++)
        rc = pgetl_copy_write_row(copy, values + i * ncolumns, NULL, err);
    if (copy) {
        if (rc == PGETL_OK) {
            rc = pgetl_copy_end(copy, &st, err);
        } else {
            pgetl_copy_abort(copy, "copy_records: a row could not be written");
        }
    }
    log_op("session_copy_records", table, st.rows_loaded, t0, rc, s->depth);
    leave(s);
    if (rows_out)
        *rows_out = st.rows_loaded;
    return rc;
}

pgetl_code pgetl_session_bulk_exec(pgetl_session *s, const char *sql, int nparams, int64_t nrows,
                                   const char *const *params, const pgetl_pipeline_options *opts,
                                   pgetl_pipeline_report *report_out, pgetl_error *err) {
    pgetl_code rc = enter(s, "bulk_exec", err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    pgetl_pipeline_report rep;
    rc = pgetl_pipeline_exec(s->conn, sql, nparams, nrows, params, opts, &rep, err);
    char v[32];
    log_op("session_bulk_exec", verb(sql, v, sizeof v), rep.rows, t0, rc, s->depth);
    leave(s);
    if (report_out)
        *report_out = rep;
    return rc;
}
