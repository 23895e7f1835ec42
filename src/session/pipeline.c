/*
 * Pipelined bulk statements (the spec's bulk_insert when COPY is not an
 * option, e.g. INSERT ... ON CONFLICT DO UPDATE).
 *
 * Design note. The statement is prepared once, then sent in libpq pipeline
 * mode in groups of `sync_every`:
 *
 *     SAVEPOINT pgetl_pipeline; EXECUTE x N; RELEASE SAVEPOINT; Sync
 *
 * At most `max_inflight_groups` groups are unanswered at a time, which bounds
 * libpq's buffers; results are read whenever the socket has them, so the
 * server never blocks writing results we do not read while we block writing
 * statements it does not read (the classic pipeline deadlock). The socket is
 * in non-blocking mode and we wait with poll() for read, or read-or-write
 * while output is queued.
 *
 * When a statement fails the server skips the rest of its group and, the
 * transaction being failed, every later group fails at its SAVEPOINT. We stop
 * sending, read everything in flight, leave pipeline mode, ROLLBACK TO the
 * failed group's savepoint (which undoes only that group), and start again
 * from the group's first statement: the statements before the failed one are
 * re-sent, the failed one is dropped (CONTINUE) or ends the run (STOP). The
 * effect is exactly that of one-at-a-time execution, at the cost of
 * re-sending at most one group per failure. 1000 statements per group keeps
 * the SAVEPOINT/RELEASE overhead near 0.2% of messages; see bench_upsert.
 */
#include "session/session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_SYNC_EVERY 1000
#define DEFAULT_INFLIGHT_GROUPS 4
#define MAX_INFLIGHT_GROUPS 64
#define SAVEPOINT_SQL "SAVEPOINT pgetl_pipeline"
#define RELEASE_SQL "RELEASE SAVEPOINT pgetl_pipeline"

void pgetl_pipeline_options_init(pgetl_pipeline_options *opts) {
    memset(opts, 0, sizeof *opts);
    opts->sync_every = DEFAULT_SYNC_EVERY;
    opts->max_inflight_groups = DEFAULT_INFLIGHT_GROUPS;
    opts->on_error = PGETL_PIPELINE_STOP;
}

typedef struct group {
    int64_t start, end; /* statements [start, end)                              */
    int64_t rows;       /* rows affected by its statements so far               */
    bool failed;        /* something in it failed (it will be rolled back)      */
    bool sp_failed;     /* its SAVEPOINT failed: collateral of an earlier group */
} group;

typedef struct run {
    PGconn *pg;
    const char *stmt; /* prepared statement name */
    int nparams;
    int64_t nrows;
    const char *const *params;
    pgetl_pipeline_options o;
    pgetl_pipeline_report rep;

    group ring[MAX_INFLIGHT_GROUPS];
    int head, count;
    int pos;          /* in the head group: -1 SAVEPOINT, 0..n-1 statements, n RELEASE, n+1 Sync */
    bool expect_null; /* a result was read; its NULL terminator comes next     */

    int64_t next;    /* next statement to send                                */
    int64_t stop_at; /* STOP mode: nothing at or after this index is sent     */
    int64_t *skips;  /* CONTINUE mode: failed indexes to leave out, ascending */
    int64_t nskips, skip_cursor, skips_cap;

    bool recovering;    /* a group failed: drain, then roll back to its savepoint */
    int64_t fail_start; /* that group's first statement                           */
    int64_t fail_index; /* the failed statement, or -1 when SAVEPOINT/RELEASE did  */
    pgetl_error fatal;  /* a failure we cannot recover from                        */
    pgetl_error first;  /* first statement failure                                 */
} run;

static bool is_skipped(run *r, int64_t i) {
    while (r->skip_cursor < r->nskips && r->skips[r->skip_cursor] < i)
        r->skip_cursor++;
    return r->skip_cursor < r->nskips && r->skips[r->skip_cursor] == i;
}

static pgetl_code add_skip(run *r, int64_t i, pgetl_error *err) {
    if (r->nskips == r->skips_cap) {
        int64_t cap = r->skips_cap ? r->skips_cap * 2 : 16;
        int64_t *p = pgetl__realloc(r->skips, (size_t)cap * sizeof *p);
        if (!p)
            return pgetl__error_oom(err, "pipeline");
        r->skips = p;
        r->skips_cap = cap;
    }
    /* Keep ascending order; a re-failure can land before earlier skips. */
    int64_t k = r->nskips++;
    while (k > 0 && r->skips[k - 1] > i) {
        r->skips[k] = r->skips[k - 1];
        k--;
    }
    r->skips[k] = i;
    r->skip_cursor = 0;
    return PGETL_OK;
}

/* Queues one group (no I/O wait: libpq buffers; PQflush happens in the loop). */
static pgetl_code send_group(run *r, pgetl_error *err) {
    while (r->next < r->stop_at && is_skipped(r, r->next))
        r->next++;
    if (r->next >= r->stop_at)
        return PGETL_OK;
    group *g = &r->ring[(r->head + r->count) % MAX_INFLIGHT_GROUPS];
    *g = (group){.start = r->next};
    int64_t end = r->next;
    int64_t limit = r->next + r->o.sync_every;
    if (limit > r->stop_at)
        limit = r->stop_at;
    while (end < limit && !is_skipped(r, end))
        end++;
    g->end = end;
    if (!PQsendQueryParams(r->pg, SAVEPOINT_SQL, 0, NULL, NULL, NULL, NULL, 0))
        return pgetl__error_from_pg(err, NULL, r->pg, "pipeline");
    for (int64_t i = g->start; i < g->end; i++) {
        const char *const *p = r->nparams ? r->params + i * r->nparams : NULL;
        if (!PQsendQueryPrepared(r->pg, r->stmt, r->nparams, p, NULL, NULL, 0))
            return pgetl__error_from_pg(err, NULL, r->pg, "pipeline");
    }
    if (!PQsendQueryParams(r->pg, RELEASE_SQL, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(r->pg))
        return pgetl__error_from_pg(err, NULL, r->pg, "pipeline");
    r->rep.sent += g->end - g->start;
    r->next = g->end;
    r->count++;
    return PGETL_OK;
}

/* One result of the head group (not its Sync). */
static void on_result(run *r, PGresult *res) {
    group *g = &r->ring[r->head];
    int64_t n = g->end - g->start;
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (ok) {
        if (r->pos >= 0 && r->pos < n) {
            const char *t = PQcmdTuples(res);
            g->rows += t && t[0] ? strtoll(t, NULL, 10) : 0;
        }
        return;
    }
    bool was_failed = g->failed;
    g->failed = true;
    if (st == PGRES_PIPELINE_ABORTED || was_failed)
        return; /* skipped by the server after this group's error */
    if (r->pos < 0) {
        /* SAVEPOINT fails only in a transaction already failed by an earlier
         * group of this run; anything else we cannot explain or undo. */
        g->sp_failed = true;
        if (!r->recovering && r->fatal.code == PGETL_OK)
            pgetl__error_from_pg(&r->fatal, res, r->pg, "pipeline SAVEPOINT");
        return;
    }
    if (r->recovering) {
        if (r->fatal.code == PGETL_OK)
            pgetl__error_from_pg(&r->fatal, res, r->pg,
                                 "pipeline: second failure while recovering");
        return;
    }
    r->recovering = true;
    r->fail_start = g->start;
    r->fail_index = r->pos < n ? g->start + r->pos : -1;
    char what[96];
    if (r->fail_index >= 0)
        snprintf(what, sizeof what, "pipeline statement %" PRId64 " of %" PRId64, r->fail_index,
                 r->nrows);
    else
        snprintf(what, sizeof what, "pipeline RELEASE SAVEPOINT after statement %" PRId64,
                 g->end - 1);
    pgetl_error e;
    pgetl__error_from_pg(&e, res, r->pg, what);
    if (r->fail_index < 0) {
        pgetl__error_copy(&r->fatal, &e);
        return;
    }
    r->rep.failed++;
    if (r->rep.failed_index < 0 || r->fail_index < r->rep.failed_index) {
        r->rep.failed_index = r->fail_index;
        memcpy(r->rep.sqlstate, e.sqlstate, sizeof r->rep.sqlstate);
        pgetl__error_copy(&r->first, &e);
    }
}

/* The head group's Sync arrived: settle it. */
static void on_sync(run *r) {
    group *g = &r->ring[r->head];
    if (!g->failed) {
        r->rep.applied += g->end - g->start;
        r->rep.rows += g->rows;
    }
    r->head = (r->head + 1) % MAX_INFLIGHT_GROUPS;
    r->count--;
    r->pos = -1;
}

/* Reads every result available without waiting. */
static pgetl_code read_results(run *r, pgetl_error *err) {
    while (r->count > 0 && !PQisBusy(r->pg)) {
        PGresult *res = PQgetResult(r->pg);
        if (!res) {
            if (!r->expect_null)
                break;
            r->expect_null = false;
            r->pos++;
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            group *g = &r->ring[r->head];
            if (r->pos != g->end - g->start + 1)
                return pgetl_error_set(err, PGETL_ESERVER,
                                       "pipeline: protocol out of step (sync at position %d)",
                                       r->pos);
            on_sync(r);
            continue;
        }
        on_result(r, res);
        PQclear(res);
        r->expect_null = true;
    }
    if (PQstatus(r->pg) == CONNECTION_BAD)
        return pgetl__error_from_pg(err, NULL, r->pg, "pipeline");
    return PGETL_OK;
}

static pgetl_code wait_io(run *r, bool want_write, pgetl_error *err) {
    struct pollfd p = {.fd = PQsocket(r->pg), .events = POLLIN | (want_write ? POLLOUT : 0)};
    if (p.fd < 0)
        return pgetl_error_set(err, PGETL_ECONNLOST, "pipeline: connection to the server lost");
    /* A wait on the server: marked, so io_timeout_s bounds it. */
    pgetl__conn_wait_begin(r->pg);
    int n, e = 0;
    while ((n = poll(&p, 1, -1)) < 0 && (e = errno) == EINTR) {
    }
    pgetl__conn_wait_end(r->pg);
    if (n < 0)
        return pgetl_error_set(err, PGETL_EIO, "pipeline: poll failed (errno %d)", e);
    return PGETL_OK;
}

/* Runs the send/read loop until nothing is in flight and nothing is left to
 * send (or a failure needs recovery). */
static pgetl_code pump(run *r, pgetl_error *err) {
    for (;;) {
        pgetl_code rc;
        while (!r->recovering && r->fatal.code == PGETL_OK && r->count < r->o.max_inflight_groups &&
               r->next < r->stop_at) {
            int64_t before = r->next;
            rc = send_group(r, err);
            if (rc != PGETL_OK)
                return rc;
            if (r->next == before)
                break;
        }
        int f = PQflush(r->pg);
        if (f < 0)
            return pgetl__error_from_pg(err, NULL, r->pg, "pipeline");
        if (PQconsumeInput(r->pg) == 0)
            return pgetl__error_from_pg(err, NULL, r->pg, "pipeline");
        rc = read_results(r, err);
        if (rc != PGETL_OK)
            return rc;
        if (r->count == 0 && (r->recovering || r->fatal.code != PGETL_OK || r->next >= r->stop_at))
            return PGETL_OK;
        /* Something to read is coming; wait unless we can send more now. */
        bool can_send = !r->recovering && r->fatal.code == PGETL_OK &&
                        r->count < r->o.max_inflight_groups && r->next < r->stop_at;
        if (!can_send || f == 1) {
            rc = wait_io(r, f == 1, err);
            if (rc != PGETL_OK)
                return rc;
        }
    }
}

static pgetl_code leave_pipeline(run *r, bool was_nonblocking, pgetl_error *err) {
    if (PQpipelineStatus(r->pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(r->pg))
        return pgetl__error_from_pg(err, NULL, r->pg, "pipeline: leaving pipeline mode");
    pgetl__async_restore_mode(r->pg, was_nonblocking);
    return PGETL_OK;
}

static pgetl_code check_args(pgetl_conn *conn, const char *sql, int nparams, int64_t nrows,
                             const char *const *params, const pgetl_pipeline_options *o,
                             pgetl_error *err) {
    PGconn *pg = pgetl__conn_pg(conn);
    if (!pg || !sql)
        return pgetl_error_set(err, PGETL_EINVAL, "pipeline: %s is NULL",
                               pg ? "sql" : "connection");
    if (nparams < 0 || nrows < 0 || (nparams > 0 && nrows > 0 && !params))
        return pgetl_error_set(err, PGETL_EINVAL,
                               "pipeline: bad arguments (%d parameters, %" PRId64 " rows)", nparams,
                               nrows);
    if (nparams > 0 && nrows > INT64_MAX / nparams)
        return pgetl_error_set(err, PGETL_EINVAL, "pipeline: too many rows");
    if (o->sync_every < 1 || o->max_inflight_groups < 1 ||
        o->max_inflight_groups > MAX_INFLIGHT_GROUPS ||
        (o->on_error != PGETL_PIPELINE_STOP && o->on_error != PGETL_PIPELINE_CONTINUE))
        return pgetl_error_set(err, PGETL_EINVAL,
                               "pipeline: bad options (sync_every %d >= 1, max_inflight_groups %d "
                               "in 1..%d)",
                               o->sync_every, o->max_inflight_groups, MAX_INFLIGHT_GROUPS);
    if (PQstatus(pg) != CONNECTION_OK)
        return pgetl_error_set(err, PGETL_ECONNLOST, "pipeline: connection to the server lost");
    if (PQtransactionStatus(pg) == PQTRANS_INERROR)
        return pgetl_error_set(err, PGETL_ESTATE,
                               "pipeline: the transaction has failed; roll it back first");
    if (PQpipelineStatus(pg) != PQ_PIPELINE_OFF || PQisBusy(pg))
        return pgetl_error_set(err, PGETL_ESTATE, "pipeline: the connection is busy");
    return PGETL_OK;
}

/* After a failure: undo the failed group, and say where to start again. */
static pgetl_code recover(run *r, pgetl_conn *conn, pgetl_error *err) {
    pgetl_code rc = pgetl__conn_exec_simple(conn, "ROLLBACK TO SAVEPOINT pgetl_pipeline", err);
    if (rc == PGETL_OK)
        rc = pgetl__conn_exec_simple(conn, RELEASE_SQL, err);
    if (rc != PGETL_OK) {
        pgetl_error_prefix(err, "pipeline: undoing the failed group: ");
        return rc;
    }
    r->next = r->fail_start;
    if (r->o.on_error == PGETL_PIPELINE_STOP) {
        r->stop_at = r->fail_index;
    } else {
        rc = add_skip(r, r->fail_index, err);
        if (rc != PGETL_OK)
            return rc;
    }
    r->recovering = false;
    r->pos = -1;
    r->expect_null = false;
    return PGETL_OK;
}

pgetl_code pgetl_pipeline_exec(pgetl_conn *conn, const char *sql, int nparams, int64_t nrows,
                               const char *const *params, const pgetl_pipeline_options *opts,
                               pgetl_pipeline_report *report_out, pgetl_error *err) {
    static atomic_uint_fast64_t counter;
    run r;
    memset(&r, 0, sizeof r);
    if (opts)
        r.o = *opts;
    else
        pgetl_pipeline_options_init(&r.o);
    r.rep.failed_index = -1;
    r.rep.statements = nrows;
    if (report_out)
        *report_out = r.rep;
    pgetl_code rc = check_args(conn, sql, nparams, nrows, params, &r.o, err);
    if (rc != PGETL_OK)
        return rc;
    int64_t t0 = pgetl__now_ns();
    r.pg = pgetl__conn_pg(conn);
    r.nparams = nparams;
    r.nrows = nrows;
    r.params = params;
    r.stop_at = nrows;
    r.pos = -1;
    char name[64];
    snprintf(name, sizeof name, "pgetl_pipeline_%" PRIuFAST64, atomic_fetch_add(&counter, 1));
    r.stmt = name;

    rc = pgetl_begin(conn, err);
    if (rc != PGETL_OK)
        return rc;
    PGresult *res = PQprepare(r.pg, name, sql, nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = res ? pgetl__error_from_pg(err, res, r.pg, "pipeline: preparing the statement")
                 : pgetl__error_oom(err, "pipeline");
        PQclear(res);
        return rc;
    }
    PQclear(res);

    bool was_nonblocking;
    rc = pgetl__async_nonblocking(r.pg, &was_nonblocking, err);
    if (rc != PGETL_OK)
        goto done;
    for (;;) {
        if (!PQenterPipelineMode(r.pg)) {
            rc = pgetl__error_from_pg(err, NULL, r.pg, "pipeline: entering pipeline mode");
            break;
        }
        rc = pump(&r, err);
        if (rc != PGETL_OK)
            break; /* connection trouble: leave everything as it is */
        rc = leave_pipeline(&r, was_nonblocking, err);
        if (rc != PGETL_OK || r.fatal.code != PGETL_OK || !r.recovering)
            break;
        rc = recover(&r, conn, err);
        if (rc != PGETL_OK || r.next >= r.stop_at)
            break;
        rc = pgetl__async_nonblocking(r.pg, &was_nonblocking, err);
        if (rc != PGETL_OK)
            break;
    }
    if (PQstatus(r.pg) == CONNECTION_OK && PQpipelineStatus(r.pg) != PQ_PIPELINE_OFF) {
        /* Only reached after a connection-level failure mid-run. */
        PQexitPipelineMode(r.pg);
    }
    pgetl__async_restore_mode(r.pg, was_nonblocking);
    if (rc == PGETL_OK && r.fatal.code != PGETL_OK)
        rc = pgetl__error_copy(err, &r.fatal);
done:
    if (PQstatus(r.pg) == CONNECTION_OK && PQtransactionStatus(r.pg) == PQTRANS_INTRANS) {
        char dealloc[96];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", name);
        pgetl__conn_exec_simple(conn, dealloc, NULL);
    }
    if (rc == PGETL_OK && r.rep.failed > 0) {
        rc = pgetl__error_copy(err, &r.first);
        if (r.o.on_error == PGETL_PIPELINE_CONTINUE && err)
            pgetl_error_prefix(
                err, "%" PRId64 " of %" PRId64 " statements failed; first: ", r.rep.failed, nrows);
    }
    if (r.o.on_error == PGETL_PIPELINE_STOP && r.rep.failed_index >= 0)
        r.rep.skipped = nrows - r.rep.failed_index - 1;
    r.rep.seconds = (double)(pgetl__now_ns() - t0) / 1e9;
    pgetl__free(r.skips);
    if (report_out)
        *report_out = r.rep;
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_INFO, "pipeline")) {
        pgetl__log_int(&l, "statements", nrows);
        pgetl__log_int(&l, "applied", r.rep.applied);
        pgetl__log_int(&l, "rows", r.rep.rows);
        pgetl__log_int(&l, "failed", r.rep.failed);
        if (r.rep.failed_index >= 0) {
            pgetl__log_int(&l, "failed_index", r.rep.failed_index);
            pgetl__log_str(&l, "sqlstate", r.rep.sqlstate);
        }
        pgetl__log_double(&l, "seconds", r.rep.seconds);
        pgetl__log_end(&l);
    }
    return rc;
}
