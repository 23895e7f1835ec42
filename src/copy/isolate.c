/*
 * Bad-row isolation (max_rejects >= 0): each batch is loaded by its own COPY
 * under `SAVEPOINT pgetl_batch`, from the rows kept in the writer's buffer
 * with their boundaries (row_off). When the server refuses the batch with a
 * row-level error (SQLSTATE class 22, 23 or P0), the savepoint is rolled
 * back, the offending row is found and handed to the reject callback, and
 * the batch is resent without it, until it loads. So a good row is stored
 * exactly once: only the COPY that finally succeeds is kept.
 *
 * Finding the row: the error's CONTEXT names "line N" of that COPY, which
 * lines.c maps to the row (binary counts tuples, text rows are single lines,
 * CSV also counts line breaks inside quoted values). Errors raised
 * after the last row, such as foreign-key checks at the end of the
 * statement, name no line; then the bad row is the first one whose prefix
 * fails, found by bisection over prefixes of the batch (each probe rolled
 * back), about log2(batch_rows) extra COPYs per such row.
 *
 * Any other error (a lost connection, a permission error, a deadlock) ends
 * the load: isolation would only reject good rows.
 */
#include "copy/writer.h"

#include <stdio.h>

static const char sp_begin[] = "SAVEPOINT pgetl_batch";
static const char sp_undo[] = "ROLLBACK TO SAVEPOINT pgetl_batch";
static const char sp_release[] = "RELEASE SAVEPOINT pgetl_batch";

/* Sends batch rows live[0..n) as one COPY; *o gets the outcome. */
static void copy_rows(pgetl_copy *c, const int64_t *live, int64_t n, pgetl__copy_outcome *o) {
    o->line = 0;
    o->column[0] = '\0';
    o->tuples = 0;
    o->code = pgetl__copy_start(c, &o->err);
    if (!c->in_copy)
        return;
    bool ok = o->code == PGETL_OK;
    /* Rows kept are mostly contiguous: send each run in chunk_bytes pieces. */
    for (int64_t i = 0; ok && i < n;) {
        int64_t j = i;
        while (j + 1 < n && live[j + 1] == live[j] + 1)
            j++;
        size_t from = c->row_off[live[i]], to = c->row_off[live[j] + 1];
        while (ok && from < to) {
            size_t len = to - from < c->chunk_bytes ? to - from : c->chunk_bytes;
            ok = pgetl__copy_send(c, c->buf.data + from, len, &o->err) == PGETL_OK;
            from += len;
        }
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

/*
 * Finds the position in live[0..n) of the row that made *o fail. On return
 * *o describes that row's error. Probes are always rolled back.
 */
static pgetl_code locate(pgetl_copy *c, int64_t *live, int64_t n, pgetl__copy_outcome *o,
                         int64_t *pos_out, pgetl_error *err) {
    int64_t pos = pgetl__copy_line_pos(c, live, n, o->line);
    if (pos >= 0) {
        *pos_out = pos;
        return PGETL_OK;
    }
    /* Invariant: prefix `lo` loads, prefix `hi` fails (with *o's error). */
    int64_t lo = 0, hi = n;
    pgetl__copy_outcome probe;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        copy_rows(c, live, mid, &probe);
        if (probe.code != PGETL_OK && !pgetl__copy_row_error(&probe))
            return fatal(c, &probe, live, mid, err);
        pgetl_code rc = savepoint(c, sp_undo, err);
        if (rc != PGETL_OK)
            return rc;
        if (probe.code == PGETL_OK) {
            lo = mid;
        } else if ((pos = pgetl__copy_line_pos(c, live, mid, probe.line)) >= 0) {
            *o = probe;
            *pos_out = pos;
            return PGETL_OK;
        } else {
            hi = mid;
            *o = probe;
        }
    }
    *pos_out = hi - 1;
    return PGETL_OK;
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

pgetl_code pgetl__copy_run_batch(pgetl_copy *c, pgetl_error *err) {
    int64_t n = c->batch_row;
    int64_t *live = c->live;
    for (int64_t i = 0; i < n; i++)
        live[i] = i;
    pgetl_code rc = savepoint(c, sp_begin, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl__copy_outcome *o = &c->outcome;
    while (n > 0) {
        copy_rows(c, live, n, o);
        if (o->code == PGETL_OK) {
            c->stats.rows_loaded += o->tuples;
            break;
        }
        if (!pgetl__copy_row_error(o))
            return fatal(c, o, live, n, err);
        rc = savepoint(c, sp_undo, err);
        int64_t pos = 0;
        if (rc == PGETL_OK)
            rc = locate(c, live, n, o, &pos, err);
        if (rc == PGETL_OK)
            rc = reject(c, live[pos], o, err);
        if (rc != PGETL_OK)
            return rc;
        memmove(live + pos, live + pos + 1, sizeof *live * (size_t)(n - pos - 1));
        n--;
    }
    return savepoint(c, sp_release, err);
}
