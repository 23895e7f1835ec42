/*
 * Stopping a query_arrow command early, without leaving the connection
 * stuck in COPY or single-row mode: first read whatever has already arrived
 * (cheap, and enough when the consumer stops near the end); otherwise send a
 * cancel request (pgetl__conn_cancel: bounded) and drain the rest, bounded
 * by the same bound. A connection whose command could not be stopped in
 * time (the cancel got no answer, or the drain did not finish) is
 * abandoned: its socket is shut down, so later calls fail at once instead
 * of hanging, and the pool discards it. Then the caller's transaction is
 * put back with ROLLBACK TO SAVEPOINT.
 *
 * A cancel is asynchronous in PostgreSQL: it may arrive after the command
 * ended. We drain until libpq is idle before returning, and a backend that
 * gets the signal while idle ignores it, so a late cancel cannot hit the
 * caller's next statement unless it arrives after that statement started.
 */
#include "copy/copy_out.h"

#include <errno.h>
#include <poll.h>

/* Waits until the socket is readable; deadline 0 only looks (no waiting). */
static bool wait_readable(PGconn *pg, int64_t deadline_ns) {
    int ms = 0;
    if (deadline_ns) {
        int64_t left = deadline_ns - pgetl__now_ns();
        if (left <= 0)
            return false;
        ms = (int)(left / 1000000) + 1;
    }
    struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
    int r = poll(&pfd, 1, ms);
    return r > 0 || (r < 0 && errno == EINTR);
}

/*
 * Reads and discards the rest of the command's output until libpq is idle.
 * With timeout_s == 0 it takes only what has already arrived, and gives up
 * after `budget` bytes (COPY) or results (single-row mode): that is the cheap
 * attempt before a cancel. True when the command is fully consumed, or the
 * connection is dead so nothing is left to read.
 */
static bool drain(PGconn *pg, bool copy_mode, double timeout_s, int64_t budget) {
    int64_t deadline = timeout_s > 0 ? pgetl__now_ns() + (int64_t)(timeout_s * 1e9) : 0;
    int64_t seen = 0;
    if (copy_mode) {
        for (;;) {
            char *buf = NULL;
            int n = PQgetCopyData(pg, &buf, 1);
            if (n > 0) {
                PQfreemem(buf);
                seen += n;
                if (!deadline && seen > budget)
                    return false;
                continue;
            }
            if (n < 0)
                break; /* -1: COPY ended; -2: failed. Either way results follow. */
            if (PQstatus(pg) == CONNECTION_BAD)
                return true;
            if (!wait_readable(pg, deadline))
                return false;
            if (!PQconsumeInput(pg))
                return true; /* broken: nothing more will come */
        }
    }
    for (;;) {
        while (PQisBusy(pg)) {
            if (PQstatus(pg) == CONNECTION_BAD)
                return true;
            if (!wait_readable(pg, deadline))
                return false;
            if (!PQconsumeInput(pg))
                return true;
        }
        PGresult *res = PQgetResult(pg);
        if (!res)
            return true;
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
            return false; /* cannot happen once the COPY ended; never spin on it */
        if (!deadline && ++seen > budget)
            return false;
    }
}

/*
 * What the cheap drain may read before we cancel instead: a stream released
 * near its end usually has only the tail in the socket, and reading it costs
 * less than the cancel request's extra connection.
 */
#define DRAIN_BUDGET_BYTES (1 << 20)
#define DRAIN_BUDGET_RESULTS 1024

void pgetl__copyout_stop(PGconn *pg, bool copy_mode, int64_t rows_read) {
    if (PQstatus(pg) == CONNECTION_BAD ||
        drain(pg, copy_mode, 0, copy_mode ? DRAIN_BUDGET_BYTES : DRAIN_BUDGET_RESULTS))
        return;
    char errbuf[256] = "";
    pgetl__cancel_result cr = pgetl__conn_cancel(pg, errbuf, sizeof errbuf);
    bool sent = cr == PGETL__CANCEL_SENT;
    /* A cancelled command stops within milliseconds; the bound only matters
     * for a server that stopped answering. After a cancel that timed out or
     * was skipped (a stalled connection) nobody is answering: do not wait. */
    bool drained = (cr == PGETL__CANCEL_SENT || cr == PGETL__CANCEL_FAILED) &&
                   drain(pg, copy_mode, pgetl__conn_cancel_bound(pg), 0);
    if (!drained)
        pgetl__conn_abandon(pg);
    pgetl_logline l;
    if (pgetl__log_begin(&l, drained ? PGETL_LOG_DEBUG : PGETL_LOG_WARN, "query_arrow_cancel")) {
        pgetl__log_int(&l, "rows_read", rows_read);
        pgetl__log_str(&l, "cancel_sent", sent ? "true" : "false");
        if (!sent)
            pgetl__log_str(&l, "cancel_error", errbuf);
        pgetl__log_str(&l, "drained", drained ? "true" : "false");
        pgetl__log_end(&l);
    }
}

/* Puts the caller's transaction back as it was before pgetl_query_arrow. */
void pgetl__copyout_restore_savepoint(PGconn *pg) {
    if (PQstatus(pg) != CONNECTION_OK || PQisBusy(pg))
        return;
    PGTransactionStatusType t = PQtransactionStatus(pg);
    if (t != PQTRANS_INTRANS && t != PQTRANS_INERROR)
        return;
    pgetl__conn_wait_begin(pg);
    PGresult *res = PQexec(pg, "ROLLBACK TO SAVEPOINT " PGETL_QUERY_ARROW_SAVEPOINT
                               "; RELEASE SAVEPOINT " PGETL_QUERY_ARROW_SAVEPOINT);
    pgetl__conn_wait_end(pg);
    PQclear(res);
}
