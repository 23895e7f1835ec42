/*
 * Bad-row isolation (max_rejects >= 0): each batch is kept in the writer's
 * buffer with its row boundaries (row_off) and loaded under
 * `SAVEPOINT pgetl_batch` as a series of COPYs ("windows", writer.h). A
 * window that loads is kept at once (RELEASE, new SAVEPOINT: one savepoint
 * at a time), so its rows are never sent again. When the server refuses a
 * window with a row-level error (SQLSTATE class 22, 23 or P0), the savepoint
 * is rolled back and:
 *
 * - the error names a line (CONTEXT "COPY t, line N"; lines.c maps it to
 *   the row): the rows before it were accepted, so they are resent alone and
 *   kept, then the bad row goes to the reject callback and the next window
 *   starts after it. If that prefix fails after all (a deferred check at the
 *   end of the statement), it is handled like any other window, and the row
 *   is tried again later rather than rejected on stale evidence.
 * - no line (foreign keys and other checks at the end of the statement):
 *   bisection over the failing window only: its first half is tried; if it
 *   loads it is kept and the second half measured, else the first half is
 *   split again; a single row that fails is the bad one.
 *
 * So a good row is sent about twice at most, and a batch with B bad rows
 * costs O(batch + B * window) bytes instead of O(B * batch). Only COPYs that
 * load are kept, so a good row is stored exactly once.
 *
 * Any other error (a lost connection, a permission error, a deadlock) ends
 * the load: isolation would only reject good rows.
 */
#include "copy/writer.h"

#include <stdio.h>

/*
 * Savepoint commands ride in front of the next COPY in one query string
 * (PQexec stops at its COPY IN), so keeping or undoing a window costs no
 * round trip of its own.
 */
enum { SP_BEGIN, SP_KEEP, SP_UNDO };
static const char *const sp_prefix[3] = {
    "SAVEPOINT pgetl_batch; ",
    "RELEASE SAVEPOINT pgetl_batch; SAVEPOINT pgetl_batch; ",
    "ROLLBACK TO SAVEPOINT pgetl_batch; ",
};
static const char sp_release[] = "RELEASE SAVEPOINT pgetl_batch";
static const char sp_undo_release[] =
    "ROLLBACK TO SAVEPOINT pgetl_batch; RELEASE SAVEPOINT pgetl_batch";
static const char sp_undo[] = "ROLLBACK TO SAVEPOINT pgetl_batch";

/* Sends batch rows live[0..n) as one COPY after savepoint command `sp`; *o gets the outcome. */
static void copy_rows(pgetl_copy *c, int sp, const int64_t *live, int64_t n,
                      pgetl__copy_outcome *o) {
    o->line = 0;
    o->column[0] = '\0';
    o->tuples = 0;
    o->code = pgetl__copy_start_sql(c, c->iso_sql[sp], &o->err);
    if (!c->in_copy)
        return;
    bool ok = o->code == PGETL_OK;
    /* Rows kept are mostly contiguous: send each run as it lies in the buffer. */
    for (int64_t i = 0; ok && i < n;) {
        int64_t j = i;
        while (j + 1 < n && live[j + 1] == live[j] + 1)
            j++;
        size_t from = c->row_off[live[i]], to = c->row_off[live[j] + 1];
        ok = pgetl__copy_send_chunks(c, c->buf.data + from, to - from, &o->err) == PGETL_OK;
        i = j + 1;
    }
    if (ok && c->format == PGETL_COPY_BINARY)
        pgetl__copy_send(c, pgetl__binary_trailer, PGETL_BINARY_TRAILER_LEN, &o->err);
    /* A send failure shows up again, with the server's own words, in the result. */
    pgetl__copy_finish(c, o);
}

/* A failure that isolation cannot handle: name the row when the server did. */
static pgetl_code fatal(pgetl_copy *c, pgetl__copy_outcome *o, const int64_t *live, int64_t n,
                        pgetl_error *err) {
    int64_t pos = pgetl__copy_line_pos(c, live, n, o->line);
    if (pos >= 0)
        pgetl_error_prefix(&o->err, "COPY %s row %lld: ", c->info->quoted,
                           (long long)(c->batch_first_row + live[pos] + 1));
    else
        pgetl_error_prefix(&o->err, "COPY %s: ", c->info->quoted);
    pgetl__copy_fail(c, &o->err);
    return pgetl__error_copy(err, &c->error);
}

static pgetl_code savepoint(pgetl_copy *c, const char *sql, pgetl_error *err) {
    pgetl_error e;
    if (pgetl__conn_exec_simple(c->conn, sql, &e) == PGETL_OK)
        return PGETL_OK;
    pgetl_error_prefix(&e, "COPY %s: ", c->info->quoted);
    pgetl__copy_fail(c, &e);
    return pgetl__error_copy(err, &c->error);
}

/* Hands batch row r to the callback, or fails when that is one reject too many. */
static pgetl_code reject(pgetl_copy *c, int64_t r, const pgetl__copy_outcome *o, pgetl_error *err) {
    int64_t row_index = c->batch_first_row + r;
    if (c->stats.rows_rejected + 1 > c->max_rejects) {
        pgetl_error e;
        pgetl_error_set(
            &e, PGETL_EREJECTS, "COPY %s: too many rejected rows (more than %lld); row %lld: %s",
            c->info->quoted, (long long)c->max_rejects, (long long)(row_index + 1), o->err.message);
        memcpy(e.sqlstate, o->err.sqlstate, sizeof e.sqlstate);
        pgetl__copy_fail(c, &e);
        return pgetl__error_copy(err, &c->error);
    }
    c->stats.rows_rejected++;
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_WARN, "copy_reject")) {
        pgetl__log_str(&l, "table", c->info->quoted);
        pgetl__log_int(&l, "row", row_index);
        pgetl__log_str(&l, "sqlstate", o->err.sqlstate);
        pgetl__log_str(&l, "message", o->err.message);
        pgetl__log_end(&l);
    }
    if (!c->on_reject)
        return PGETL_OK;
    pgetl_reject rj = {
        .row_index = row_index,
        .column = o->column[0] ? o->column : NULL,
        .message = o->err.message,
        .data = c->buf.data + c->row_off[r],
        .data_len = c->row_off[r + 1] - c->row_off[r],
    };
    pgetl__copy_source_of(c, r, &rj.batch_index, &rj.batch_row);
    memcpy(rj.sqlstate, o->err.sqlstate, sizeof rj.sqlstate);
    if (c->on_reject(c->reject_user, &rj) != 0) {
        pgetl_error e;
        pgetl_error_set(&e, PGETL_EABORTED, "COPY %s: stopped by the reject callback at row %lld",
                        c->info->quoted, (long long)(row_index + 1));
        pgetl__copy_fail(c, &e);
        return pgetl__error_copy(err, &c->error);
    }
    return PGETL_OK;
}

/*
 * Rows for the next window, from G, the rows expected between two rejects
 * (a moving average, or the current run of clean rows when that is
 * longer). Per G rows a window size W costs G/W COPYs, each a round trip
 * plus, on PostgreSQL 15 (and up to 16), server work quadratic in the
 * tuples it buffers: every buffered tuple slot pins the table's tuple
 * descriptor in the statement's resource owner, a hash that past 64
 * entries holds one key many times, so about (min(W, 1000) - 64)^2 probes
 * per COPY, to create the slots and again to drop them. A reject costs
 * about W/2 rows processed twice. So: minimise G/W * (COPY + probes(W)) +
 * W/2 * row over powers of two, at most G/2 so a window rarely holds two
 * bad rows and a good row is still sent about twice at most. Costs in ns
 * of server CPU, measured with `pgetl load --max-errors` on a clean 1M-row
 * file and fixed windows (bench/README.md, "pgetl load", third day): a COPY
 * with its savepoint ~100 us (64-row windows), a binary row ~1.8 us, a
 * probe ~2.5 ns (1000-row windows cost 2.2 ms more each than 64-row ones).
 * Before the first reject there is no G: PGETL_ISO_FIRST_WINDOW (writer.h).
 */
#define ISO_COPY_NS 100000.0
#define ISO_ROW_NS 1800.0
#define ISO_PROBE_NS 2.5

static double window_cost(double gap, int64_t w) {
    double slots = (double)(w < 1000 ? w : 1000) - 64;
    double probes = slots > 0 ? slots * slots * ISO_PROBE_NS : 0;
    return gap / (double)w * (ISO_COPY_NS + probes) + (double)w / 2 * ISO_ROW_NS;
}

static int64_t window_size(const pgetl_copy *c) {
    if (c->iso_gap_avg == 0)
        return PGETL_ISO_FIRST_WINDOW;
    int64_t expect = c->iso_gap > c->iso_gap_avg ? c->iso_gap : c->iso_gap_avg;
    int64_t best = PGETL_ISO_MIN_WINDOW;
    for (int64_t w = 2 * PGETL_ISO_MIN_WINDOW; w <= PGETL_ISO_MAX_WINDOW && w <= expect / 2; w *= 2)
        if (window_cost((double)expect, w) < window_cost((double)expect, best))
            best = w;
    return best;
}

/* The COPY statement behind each savepoint command, made once per session. */
static pgetl_code prepare(pgetl_copy *c, pgetl_error *err) {
    for (int i = 0; i < 3; i++) {
        if (c->iso_sql[i])
            continue;
        pgetl_buf b;
        pgetl__buf_init(&b);
        if (pgetl__buf_printf(&b, "%s%s", sp_prefix[i], c->sql) != PGETL_OK) {
            pgetl__buf_reset(&b);
            pgetl_error e;
            pgetl__error_oom(&e, "COPY");
            pgetl__copy_fail(c, &e);
            return pgetl__error_copy(err, &c->error);
        }
        c->iso_sql[i] = b.data;
    }
    return PGETL_OK;
}

pgetl_code pgetl__copy_run_batch(pgetl_copy *c, pgetl_error *err) {
    int64_t n = c->batch_row;
    int64_t *live = c->live;
    for (int64_t i = 0; i < n; i++)
        live[i] = i;
    pgetl_code rc = prepare(c, err);
    if (rc != PGETL_OK)
        return rc;
    int sp = SP_BEGIN; /* what the next COPY's query string starts with */
    pgetl__copy_outcome *o = &c->outcome, *held = &c->held;
    /*
     * Rows [0, s) are stored under the savepoint. pend >= s: row pend failed
     * with *held, naming its line, after rows [s, pend) were accepted in that
     * COPY. hi > s: rows [s, hi) failed as one COPY with *held, naming no
     * line. retry: after the first half of such a range loaded, the second
     * half is measured next, [s, retry).
     */
    int64_t s = 0, pend = -1, hi = -1, retry = -1;
    while (s < n) {
        int64_t bad = pend == s ? s : hi == s + 1 ? s : -1;
        if (bad >= 0) {
            rc = reject(c, bad, held, err);
            if (rc != PGETL_OK) {
                /* Undo the failed COPY (its ROLLBACK TO was to ride on the next one). */
                if (sp == SP_UNDO)
                    pgetl__conn_exec_simple(c->conn, sp_undo, NULL);
                return rc;
            }
            int64_t gap = c->iso_gap + 1;
            c->iso_gap_avg = c->iso_gap_avg ? (3 * c->iso_gap_avg + gap) / 4 : gap;
            c->iso_gap = 0;
            s++;
            pend = hi = -1;
            continue;
        }
        int64_t w = window_size(c);
        int64_t e = pend > s    ? pend
                    : hi > s    ? s + (hi - s) / 2
                    : retry > s ? retry
                    : n - s > w ? s + w
                                : n;
        copy_rows(c, sp, live + s, e - s, o);
        if (o->code == PGETL_OK) {
            c->stats.rows_loaded += o->tuples;
            c->iso_gap += e - s;
            s = e;
            if (hi > s)
                retry = hi;
            hi = -1;
            /* Keep what loaded: it is never sent again. One savepoint at a time. */
            sp = SP_KEEP;
            continue;
        }
        if (!pgetl__copy_row_error(o))
            return fatal(c, o, live + s, e - s, err);
        sp = SP_UNDO;
        retry = -1;
        /* A single row that fails is that row's error, whether or not it names a line. */
        int64_t k = e - s == 1 ? 0 : pgetl__copy_line_pos(c, live + s, e - s, o->line);
        if (k >= 0) {
            pend = s + k;
            hi = -1;
        } else {
            pend = -1;
            hi = e;
        }
        pgetl__copy_outcome *t = held;
        held = o;
        o = t;
    }
    return savepoint(c, sp == SP_UNDO ? sp_undo_release : sp_release, err);
}
