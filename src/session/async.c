/*
 * Non-blocking queries for event loops, on libpq's non-blocking mode.
 *
 * Design note. libpq does all protocol work; we only decide when to call it.
 * A poll reads whatever arrived (PQconsumeInput), pushes queued output
 * (PQflush, which returns 1 while the kernel buffer is full), and collects
 * results while PQisBusy says a result can be had without waiting. What the
 * caller must wait for follows libpq's own rule: with output pending, either
 * readable or writable (the server may need us to read before it reads
 * more); otherwise readable. Errors are kept on the operation, so polling a
 * failed operation keeps returning the same error.
 */
#include "session/session_int.h"
#include "sql/sql_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>

enum { OP_RUNNING = 0, OP_DONE, OP_FAILED };

struct pgetl_async {
    pgetl_conn *conn;
    PGconn *pg;
    bool was_nonblocking;
    int state;
    bool copy_out;     /* a COPY TO was started by the statement: discard its data */
    PGresult *result;  /* the last successful result, until taken             */
    pgetl_error error; /* sticky                                              */
    int64_t started_ns;
    pgetl__async_clock clock;
};

void pgetl__async_clock_init(pgetl__async_clock *c, PGconn *pg) {
    double s = pgetl__conn_io_timeout(pg);
    c->limit_ns = s > 0 ? (int64_t)(s * 1e9) : 0;
    c->quiet_since_ns = pgetl__now_ns();
    c->waiting = true;
    c->pending = true; /* the statement was just queued */
    c->cpu = c->limit_ns ? pgetl__conn_backend_cpu(pg) : 0;
}

bool pgetl__async_moved(pgetl__async_clock *c, PGconn *pg) {
    if (c->limit_ns == 0)
        return true;
    unsigned long long cpu = pgetl__conn_backend_cpu(pg);
    if (cpu != c->cpu) {
        c->cpu = cpu;
        return true;
    }
    /* Readable: data or a close arrived since the last poll consumed input.
     * Writable after a flush that could not finish: the kernel took more. */
    struct pollfd p = {.fd = PQsocket(pg), .events = (short)(POLLIN | (c->pending ? POLLOUT : 0))};
    if (p.fd < 0)
        return true; /* broken: the pump reports it */
    return poll(&p, 1, 0) > 0 && p.revents != 0;
}

pgetl_code pgetl__async_clock_tick(pgetl__async_clock *c, PGconn *pg, bool moved, bool waiting,
                                   bool pending, const char *what, pgetl_error *err) {
    int64_t now = pgetl__now_ns();
    /* A wait starts counting when it starts: the caller's own time between
     * polls of a COPY that waited for rows is not the server's. */
    if (moved || !c->waiting)
        c->quiet_since_ns = now;
    c->waiting = waiting;
    c->pending = pending;
    if (c->limit_ns == 0 || !waiting || now - c->quiet_since_ns < c->limit_ns)
        return PGETL_OK;
    pgetl__conn_abandon(pg);
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_WARN, "io_timeout")) {
        pgetl__log_int(&l, "limit_ms", c->limit_ns / 1000000);
        pgetl__log_int(&l, "idle_ms", (now - c->quiet_since_ns) / 1000000);
        pgetl__log_str(&l, "api", "async");
        pgetl__log_end(&l);
    }
    return pgetl_error_set(err, PGETL_ECONNLOST,
                           "%s: io_timeout_s (%.1f s) expired: the server sent nothing and took "
                           "nothing for %.1f s while a request was outstanding; the connection "
                           "was closed",
                           what, (double)c->limit_ns / 1e9,
                           (double)(now - c->quiet_since_ns) / 1e9);
}

int pgetl__async_clock_ms(const pgetl__async_clock *c) {
    if (c->limit_ns == 0 || !c->waiting)
        return -1;
    int64_t left = c->quiet_since_ns + c->limit_ns - pgetl__now_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

pgetl_code pgetl__async_nonblocking(PGconn *pg, bool *was_nonblocking, pgetl_error *err) {
    *was_nonblocking = PQisnonblocking(pg) == 1;
    if (!*was_nonblocking && PQsetnonblocking(pg, 1) != 0)
        return pgetl__error_from_pg(err, NULL, pg, "PQsetnonblocking");
    return PGETL_OK;
}

void pgetl__async_restore_mode(PGconn *pg, bool was_nonblocking) {
    /* Switching back to blocking flushes whatever is still queued. */
    if (PQstatus(pg) == CONNECTION_OK)
        PQsetnonblocking(pg, was_nonblocking ? 1 : 0);
}

pgetl_code pgetl__async_pump(PGconn *pg, bool *flush_pending, const char *what, pgetl_error *err) {
    *flush_pending = false;
    if (PQconsumeInput(pg) == 0)
        return pgetl__error_from_pg(err, NULL, pg, what);
    int f = PQflush(pg);
    if (f < 0)
        return pgetl__error_from_pg(err, NULL, pg, what);
    *flush_pending = f == 1;
    return PGETL_OK;
}

void pgetl__async_drain(PGconn *pg) {
    PGresult *r;
    int guard = 0;
    while ((r = PQgetResult(pg)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_COPY_IN) {
            PQputCopyEnd(pg, "abandoned by pgetl");
        } else if (st == PGRES_COPY_OUT) {
            char *row;
            while (PQgetCopyData(pg, &row, 0) > 0)
                PQfreemem(row);
        }
        /* A broken connection may keep reporting; never loop forever. */
        if (++guard > 1000 || PQstatus(pg) == CONNECTION_BAD)
            break;
    }
}

pgetl_code pgetl__result_wrap(PGresult *res, pgetl_result **out, pgetl_error *err) {
    pgetl_result *r = pgetl__malloc(sizeof *r);
    if (!r) {
        PQclear(res);
        return pgetl__error_oom(err, "result");
    }
    r->pg = res;
    *out = r;
    return PGETL_OK;
}

pgetl_code pgetl__async_wait(PGconn *pg, int want, const char *what, pgetl_error *err) {
    struct pollfd p = {.fd = PQsocket(pg), .events = 0};
    if (p.fd < 0)
        return pgetl_error_set(err, PGETL_ECONNLOST, "%s: connection to the server lost", what);
    if (want & PGETL_WANT_READ)
        p.events |= POLLIN;
    if (want & PGETL_WANT_WRITE)
        p.events |= POLLOUT;
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n >= 0)
            return PGETL_OK;
        if (errno != EINTR)
            return pgetl_error_set(err, PGETL_EIO, "%s: poll failed (errno %d)", what, errno);
    }
}

int pgetl_async_socket(pgetl_conn *conn) {
    PGconn *pg = pgetl__conn_pg(conn);
    if (!pg || PQstatus(pg) != CONNECTION_OK)
        return -1;
    return PQsocket(pg);
}

pgetl_code pgetl_async_query_start(pgetl_conn *conn, const char *sql, int nparams,
                                   const char *const *params, pgetl_async **op_out,
                                   pgetl_error *err) {
    if (!op_out)
        return pgetl_error_set(err, PGETL_EINVAL, "async query: op_out is NULL");
    *op_out = NULL;
    PGconn *pg = pgetl__conn_pg(conn);
    if (!pg || !sql)
        return pgetl_error_set(err, PGETL_EINVAL, "async query: %s is NULL",
                               pg ? "sql" : "connection");
    if (nparams < 0 || (nparams > 0 && !params))
        return pgetl_error_set(err, PGETL_EINVAL, "async query: %d parameters but params is NULL",
                               nparams);
    if (PQstatus(pg) != CONNECTION_OK)
        return pgetl_error_set(err, PGETL_ECONNLOST, "async query: connection to the server lost");
    if (PQtransactionStatus(pg) == PQTRANS_ACTIVE || PQisBusy(pg))
        return pgetl_error_set(err, PGETL_ESTATE,
                               "async query: the connection is busy with another command");
    pgetl_async *op = pgetl__calloc(1, sizeof *op);
    if (!op)
        return pgetl__error_oom(err, "async query");
    op->conn = conn;
    op->pg = pg;
    op->started_ns = pgetl__now_ns();
    pgetl__async_clock_init(&op->clock, pg);
    pgetl_code rc = pgetl__async_nonblocking(pg, &op->was_nonblocking, err);
    if (rc != PGETL_OK) {
        pgetl__free(op);
        return rc;
    }
    /* In non-blocking mode this queues the message and tries one send. */
    if (!PQsendQueryParams(pg, sql, nparams, NULL, params, NULL, NULL, 0)) {
        rc = pgetl__error_from_pg(err, NULL, pg, "async query");
        pgetl__async_restore_mode(pg, op->was_nonblocking);
        pgetl__free(op);
        return rc;
    }
    *op_out = op;
    return PGETL_OK;
}

static pgetl_code fail(pgetl_async *op, pgetl_error *err) {
    op->state = OP_FAILED;
    return pgetl__error_copy(err, &op->error);
}

/* Takes one result off libpq; returns false when the command is complete. */
static bool take_result(pgetl_async *op, PGresult *r) {
    if (!r)
        return false;
    ExecStatusType st = PQresultStatus(r);
    switch (st) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        PQclear(op->result);
        op->result = r;
        return true;
    case PGRES_COPY_IN:
        PQclear(r);
        PQputCopyEnd(op->pg, "COPY is not supported by pgetl_async_query; use pgetl_async_copy");
        break;
    case PGRES_COPY_OUT:
        PQclear(r);
        op->copy_out = true;
        break;
    default:
        if (op->error.code == PGETL_OK)
            pgetl__error_from_pg(&op->error, r, op->pg, "async query");
        PQclear(r);
        return true;
    }
    if (op->error.code == PGETL_OK)
        pgetl_error_set(&op->error, PGETL_EUNSUPPORTED,
                        "async query: COPY statements need pgetl_async_copy; the COPY was ended");
    return true;
}

pgetl_code pgetl_async_poll(pgetl_async *op, int *want_out, pgetl_error *err) {
    if (want_out)
        *want_out = PGETL_WANT_NONE;
    if (!op)
        return pgetl_error_set(err, PGETL_EINVAL, "async poll: op is NULL");
    if (op->state == OP_DONE)
        return PGETL_OK;
    if (op->state == OP_FAILED)
        return pgetl__error_copy(err, &op->error);

    bool pending;
    bool moved = pgetl__async_moved(&op->clock, op->pg);
    if (pgetl__async_pump(op->pg, &pending, "async query", &op->error) != PGETL_OK)
        return fail(op, err);
    for (;;) {
        if (op->copy_out) {
            char *row;
            int n;
            while ((n = PQgetCopyData(op->pg, &row, 1)) > 0)
                PQfreemem(row);
            if (n == 0)
                break; /* more copy data to come: wait for it */
            op->copy_out = false;
        }
        if (PQisBusy(op->pg))
            break;
        if (!take_result(op, PQgetResult(op->pg))) {
            if (op->error.code != PGETL_OK)
                return fail(op, err);
            op->state = OP_DONE;
            if (!op->result)
                return pgetl_error_set(err, PGETL_ESERVER, "async query: no result");
            pgetl_logline l;
            if (pgetl__log_begin(&l, PGETL_LOG_DEBUG, "async_query")) {
                pgetl__log_int(&l, "rows", PQntuples(op->result));
                pgetl__log_double(&l, "seconds", (double)(pgetl__now_ns() - op->started_ns) / 1e9);
                pgetl__log_end(&l);
            }
            return PGETL_OK;
        }
    }
    if (PQstatus(op->pg) == CONNECTION_BAD) {
        pgetl__error_from_pg(&op->error, NULL, op->pg, "async query");
        return fail(op, err);
    }
    if (pgetl__async_clock_tick(&op->clock, op->pg, moved, true, pending, "async query",
                                &op->error) != PGETL_OK)
        return fail(op, err);
    if (want_out)
        *want_out = PGETL_WANT_READ | (pending ? PGETL_WANT_WRITE : 0);
    return PGETL_EAGAIN;
}

int pgetl_async_timeout_ms(const pgetl_async *op) {
    return op && op->state == OP_RUNNING ? pgetl__async_clock_ms(&op->clock) : -1;
}

pgetl_code pgetl_async_result(pgetl_async *op, pgetl_result **result_out, pgetl_error *err) {
    if (!op || !result_out)
        return pgetl_error_set(err, PGETL_EINVAL, "async result: NULL argument");
    *result_out = NULL;
    if (op->state == OP_FAILED)
        return pgetl__error_copy(err, &op->error);
    if (op->state != OP_DONE || !op->result)
        return pgetl_error_set(err, PGETL_ESTATE,
                               op->state == OP_DONE
                                   ? "async result: the result was already taken"
                                   : "async result: the query is still running (poll until OK)");
    PGresult *r = op->result;
    op->result = NULL;
    return pgetl__result_wrap(r, result_out, err);
}

/*
 * A cancel request that reaches the server before the backend has read the
 * query is lost (the backend clears it when it starts the command), so we
 * repeat it every CANCEL_RETRY_MS until the command ends, a bounded number of
 * times; then the caller's drain waits for whatever is left. Each request is
 * bounded (pgetl__conn_cancel). Returns false when the peer is hung (a
 * request got no answer in time) or the connection is broken or stalled:
 * then nothing is worth waiting for.
 */
#define CANCEL_RETRY_MS 500
#define CANCEL_ATTEMPTS 20

static bool cancel_running(PGconn *pg) {
    for (int attempt = 0; attempt < CANCEL_ATTEMPTS; attempt++) {
        pgetl__cancel_result cr = pgetl__conn_cancel(pg, NULL, 0);
        if (cr == PGETL__CANCEL_TIMEOUT || cr == PGETL__CANCEL_SKIPPED)
            return false;
        if (cr != PGETL__CANCEL_SENT)
            return true;
        struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
        int64_t deadline = pgetl__now_ns() + (int64_t)CANCEL_RETRY_MS * 1000000;
        while (PQisBusy(pg)) {
            int64_t left_ms = (deadline - pgetl__now_ns()) / 1000000;
            if (left_ms <= 0)
                break;
            if (poll(&p, 1, (int)left_ms) < 0 && errno != EINTR)
                return true;
            if (!PQconsumeInput(pg))
                return true;
        }
        if (!PQisBusy(pg))
            return true;
    }
    return true;
}

void pgetl_async_destroy(pgetl_async *op) {
    if (!op)
        return;
    if (op->state == OP_RUNNING && PQstatus(op->pg) == CONNECTION_OK) {
        /* A command on a hung peer cannot be stopped: give the connection up,
         * so the drain below ends at once instead of waiting for ever. */
        if (!cancel_running(op->pg))
            pgetl__conn_abandon(op->pg);
        /* Blocking mode for the drain: results must be read to idle the link.
         * Marked as a wait on the server, so io_timeout_s bounds it too. */
        PQsetnonblocking(op->pg, 0);
        pgetl__conn_wait_begin(op->pg);
        pgetl__async_drain(op->pg);
        pgetl__conn_wait_end(op->pg);
    }
    PQclear(op->result);
    pgetl__async_restore_mode(op->pg, op->was_nonblocking);
    pgetl__free(op);
}
