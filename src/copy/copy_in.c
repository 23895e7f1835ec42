/*
 * The COPY-in writer: one session = one target table and column list.
 *
 * Streaming mode (max_rejects < 0) runs a single COPY for the session. Rows
 * are encoded straight into one reused buffer; when it holds chunk_bytes it
 * goes to the server in one PQputCopyData call, so memory is one chunk plus
 * one row however many rows are written. A batch boundary (every batch_rows
 * rows) flushes whatever is buffered. The server reports a bad row only when
 * the COPY ends; its CONTEXT ("COPY t, line N[, column c]") gives the row
 * (lines.c maps lines to rows: CSV counts quoted line breaks too).
 *
 * Isolation mode (max_rejects >= 0) keeps each batch's rows with their
 * boundaries and sends the batch as its own COPY under a savepoint when it
 * is full (isolate.c), so a bad row can be set aside and the rest resent.
 *
 * Every failure is sticky and takes the server out of COPY at once
 * (PQputCopyEnd with an error message, then every result read), so the
 * connection is usable again after the caller's ROLLBACK.
 */
#include "copy/writer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Slack reserved past chunk_bytes in streaming mode: a chunk is flushed
 * once it reaches chunk_bytes, so the buffer must also hold the row that
 * crosses the line. Rows up to this size never make the buffer grow.
 */
#define ROW_SLACK ((size_t)64 << 10)
/* Largest piece handed to one PQputCopyData call (its length is an int). */
#define MAX_PUT ((size_t)1 << 30)
#define DEFAULT_BATCH_ROWS 50000

void pgetl_copy_options_init(pgetl_copy_options *opts) {
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->format = PGETL_COPY_TEXT;
    opts->batch_rows = DEFAULT_BATCH_ROWS;
    opts->chunk_bytes = PGETL_COPY_CHUNK;
    opts->max_rejects = -1;
}

static const char *format_word(pgetl_copy_format f) {
    return f == PGETL_COPY_CSV ? "csv" : f == PGETL_COPY_BINARY ? "binary" : "text";
}

/* Ends a COPY the server is still in, with `reason` as its error, and reads every result. */
static void drain(pgetl_copy *c, const char *reason) {
    if (!c->in_copy)
        return;
    c->in_copy = false;
    pgetl__conn_wait_begin(c->pg);
    PQputCopyEnd(c->pg, reason);
    PGresult *res;
    int again = 0;
    while ((res = PQgetResult(c->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        /* Still in COPY: the end message did not go out; try again, a few times at most. */
        if ((st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) &&
            (++again > 3 || PQputCopyEnd(c->pg, reason) < 0))
            break;
        if (st == PGRES_COPY_OUT)
            break;
    }
    pgetl__conn_wait_end(c->pg);
}

pgetl_code pgetl__copy_fail(pgetl_copy *c, const pgetl_error *err) {
    if (!c->failed) {
        c->failed = true;
        pgetl__error_copy(&c->error, err);
    }
    drain(c, "pgetl: COPY abandoned after an error");
    c->in_row = false;
    return c->error.code;
}

/* Fails the session with a fresh message; returns the code. */
static pgetl_code fail_msg(pgetl_copy *c, pgetl_error *err, pgetl_code code, const char *msg) {
    pgetl_error e;
    pgetl_error_set(&e, code, "COPY %s: %s", c->info->quoted, msg);
    pgetl__copy_fail(c, &e);
    return pgetl__error_copy(err, &c->error);
}

pgetl_code pgetl__copy_send(pgetl_copy *c, const char *data, size_t len, pgetl_error *err) {
    while (len > 0) {
        size_t n = len < MAX_PUT ? len : MAX_PUT;
        pgetl__conn_wait_begin(c->pg);
        int put = PQputCopyData(c->pg, data, (int)n);
        pgetl__conn_wait_end(c->pg);
        if (put != 1) {
            char what[sizeof c->info->quoted + 32];
            snprintf(what, sizeof what, "COPY %s: sending data", c->info->quoted);
            return pgetl__error_from_pg(err, NULL, c->pg, what);
        }
        c->stats.bytes_sent += (int64_t)n;
        data += n;
        len -= n;
    }
    return PGETL_OK;
}

pgetl_code pgetl__copy_send_chunks(pgetl_copy *c, const char *data, size_t len, pgetl_error *err) {
    for (size_t off = 0; off < len;) {
        size_t n = len - off < c->chunk_bytes ? len - off : c->chunk_bytes;
        pgetl_code rc = pgetl__copy_send(c, data + off, n, err);
        if (rc != PGETL_OK)
            return rc;
        off += n;
    }
    return PGETL_OK;
}

pgetl_code pgetl__copy_start(pgetl_copy *c, pgetl_error *err) {
    return pgetl__copy_start_sql(c, c->sql, err);
}

pgetl_code pgetl__copy_start_sql(pgetl_copy *c, const char *sql, pgetl_error *err) {
    pgetl__conn_wait_begin(c->pg);
    PGresult *res = PQexec(c->pg, sql);
    pgetl__conn_wait_end(c->pg);
    if (!res)
        return pgetl__error_oom(err, "COPY");
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        char what[sizeof c->info->quoted + 8];
        snprintf(what, sizeof what, "COPY %s", c->info->quoted);
        pgetl_code rc = pgetl__error_from_pg(err, res, c->pg, what);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    c->in_copy = true;
    if (c->format == PGETL_COPY_BINARY)
        return pgetl__copy_send(c, pgetl__binary_header, PGETL_BINARY_HEADER_LEN, err);
    return PGETL_OK;
}

/*
 * Finds the COPY's own line in an error CONTEXT (the outermost, so the last
 * one): "COPY <relname>, line N[, column <col>][: ...]". The relation name is
 * matched literally, because a hostile name may itself hold ", line ".
 */
static void parse_context(const pgetl_copy *c, const char *ctx, pgetl__copy_outcome *o) {
    const char *rel = c->info->name.name;
    size_t rl = strlen(rel);
    for (const char *line = ctx; line && *line;) {
        const char *next = strchr(line, '\n');
        if (strncmp(line, "COPY ", 5) == 0 && strncmp(line + 5, rel, rl) == 0 &&
            strncmp(line + 5 + rl, ", line ", 7) == 0) {
            const char *p = line + 5 + rl + 7;
            int64_t n = 0;
            bool digits = false;
            while (*p >= '0' && *p <= '9' && n < INT64_MAX / 10) {
                n = n * 10 + (*p++ - '0');
                digits = true;
            }
            if (digits) {
                o->line = n;
                o->column[0] = '\0';
                if (strncmp(p, ", column ", 9) == 0) {
                    p += 9;
                    /* The longest of our column names that ends where the name must end. */
                    size_t best = 0;
                    for (int i = 0; i < c->ncols; i++) {
                        const char *name = c->info->columns[c->colidx[i]].name;
                        size_t nl = strlen(name);
                        if (nl > best && strncmp(p, name, nl) == 0 &&
                            (p[nl] == '\0' || p[nl] == '\n' || p[nl] == ':')) {
                            best = nl;
                            memcpy(o->column, name, nl + 1);
                        }
                    }
                }
            }
        }
        line = next ? next + 1 : NULL;
    }
}

void pgetl__copy_finish(pgetl_copy *c, pgetl__copy_outcome *o) {
    o->code = PGETL_OK;
    o->tuples = 0;
    o->line = 0;
    o->column[0] = '\0';
    pgetl_error_init(&o->err);
    c->in_copy = false;
    pgetl__conn_wait_begin(c->pg);
    PQputCopyEnd(c->pg, NULL);
    PGresult *first = NULL, *res;
    int again = 0;
    while ((res = PQgetResult(c->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
            PQclear(res);
            if (++again > 3 || PQputCopyEnd(c->pg, NULL) < 0)
                break;
            continue;
        }
        if (!first)
            first = res;
        else
            PQclear(res);
        if (st == PGRES_COPY_OUT)
            break;
    }
    pgetl__conn_wait_end(c->pg);
    if (first && PQresultStatus(first) == PGRES_COMMAND_OK) {
        o->tuples = strtoll(PQcmdTuples(first), NULL, 10);
    } else {
        o->code = pgetl__error_from_pg(&o->err, first, c->pg, NULL);
        /*
         * Only an error about the data names a row. After a FATAL (a kill, a
         * shutdown) the CONTEXT still says which line the server had reached,
         * but no row was refused.
         */
        if (first && o->code == PGETL_ESERVER) {
            const char *ctx = PQresultErrorField(first, PG_DIAG_CONTEXT);
            if (ctx)
                parse_context(c, ctx, o);
        }
        if (!first && !o->err.message[0])
            pgetl_error_set(&o->err, PGETL_ECONNLOST, "COPY ended without a result");
    }
    PQclear(first);
}

bool pgetl__copy_row_error(const pgetl__copy_outcome *o) {
    if (o->code != PGETL_ESERVER)
        return false;
    const char *s = o->err.sqlstate;
    /* Data exceptions, integrity violations, and errors raised by triggers (PL/pgSQL). */
    return strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0 || strncmp(s, "P0", 2) == 0;
}

static pgetl_code flush(pgetl_copy *c, bool push, pgetl_error *err) {
    pgetl_code rc = pgetl__copy_send(c, c->buf.data, c->buf.len, err);
    pgetl__buf_clear(&c->buf);
    /* libpq keeps up to 8 KiB in its own buffer; a batch boundary sends it all. */
    if (rc == PGETL_OK && push && PQflush(c->pg) != 0) {
        char what[sizeof c->info->quoted + 32];
        snprintf(what, sizeof what, "COPY %s: sending data", c->info->quoted);
        rc = pgetl__error_from_pg(err, NULL, c->pg, what);
    }
    if (rc != PGETL_OK) {
        pgetl__copy_fail(c, err);
        return pgetl__error_copy(err, &c->error);
    }
    return PGETL_OK;
}

static void next_batch(pgetl_copy *c) {
    c->stats.batches++;
    c->batch_index++;
    c->batch_row = 0;
    c->batch_first_row = c->rows;
    if (c->isolate) {
        pgetl__buf_clear(&c->buf);
        c->row_off[0] = 0;
        c->nsegs = 0;
        if (c->has_source) {
            c->segs[0] = (pgetl__src_seg){0, c->source_batch, c->source_row};
            c->nsegs = 1;
        }
    }
}

static void copy_free(pgetl_copy *c) {
    pgetl__buf_reset(&c->buf);
    pgetl__free(c->sql);
    for (int i = 0; i < 3; i++)
        pgetl__free(c->iso_sql[i]);
    pgetl__free(c->colidx);
    pgetl__free(c->bincols);
    pgetl__free(c->lens);
    pgetl__free(c->row_off);
    pgetl__free(c->live);
    pgetl__free(c->segs);
    pgetl__free(c->lines);
    if (c->owned_info)
        pgetl__table_info_free(c->owned_info);
    pgetl__free(c);
}

pgetl_code pgetl__copy_begin_resolved(pgetl_conn *conn, const pgetl_table_info *info,
                                      const int *colidx, int ncols, const pgetl_copy_options *opts,
                                      pgetl_copy **copy_out, pgetl_error *err) {
    if (copy_out)
        *copy_out = NULL;
    if (!conn || !pgetl__conn_pg(conn) || !info || !copy_out || ncols < 1 || !colidx)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "COPY: invalid arguments (connection, table "
                               "info, columns and copy_out are required)");
    for (int i = 0; i < ncols; i++)
        if (colidx[i] < 0 || colidx[i] >= info->ncolumns)
            return pgetl_error_set(err, PGETL_EINVAL, "COPY %s: column index %d out of range",
                                   info->quoted, colidx[i]);
    pgetl_copy_options dflt;
    pgetl_copy_options_init(&dflt);
    if (!opts)
        opts = &dflt;
    if (opts->format != PGETL_COPY_TEXT && opts->format != PGETL_COPY_CSV &&
        opts->format != PGETL_COPY_BINARY)
        return pgetl_error_set(err, PGETL_EINVAL, "COPY %s: unknown format %d", info->quoted,
                               (int)opts->format);
    if (opts->freeze && opts->max_rejects >= 0)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "COPY %s: freeze cannot be combined with bad-row isolation "
                               "(its savepoints make FREEZE fail)",
                               info->quoted);
    if (opts->batch_rows < 0 || opts->max_rejects < -1)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "COPY %s: batch_rows must be >= 0 and max_rejects >= -1",
                               info->quoted);
    if (opts->chunk_bytes > MAX_PUT)
        return pgetl_error_set(err, PGETL_EINVAL, "COPY %s: chunk_bytes above 1 GiB", info->quoted);

    pgetl_code rc = pgetl_begin(conn, err);
    if (rc != PGETL_OK)
        return rc;

    pgetl_copy *c = pgetl__calloc(1, sizeof *c);
    if (!c)
        return pgetl__error_oom(err, "COPY");
    c->conn = conn;
    c->pg = pgetl__conn_pg(conn);
    c->info = info;
    c->ncols = ncols;
    c->format = opts->format;
    c->chunk_bytes = opts->chunk_bytes ? opts->chunk_bytes : PGETL_COPY_CHUNK;
    c->batch_rows = opts->batch_rows ? opts->batch_rows : DEFAULT_BATCH_ROWS;
    c->max_rejects = opts->max_rejects;
    c->isolate = opts->max_rejects >= 0;
    c->on_reject = opts->on_reject;
    c->reject_user = opts->reject_user;
    c->t0_ns = pgetl__now_ns();
    pgetl__buf_init(&c->buf);

    pgetl_buf sql;
    pgetl__buf_init(&sql);
    c->colidx = pgetl__malloc(sizeof(int) * (size_t)ncols);
    bool ok = c->colidx != NULL && pgetl__buf_printf(&sql, "COPY %s (", info->quoted) == PGETL_OK;
    for (int i = 0; ok && i < ncols; i++) {
        c->colidx[i] = colidx[i];
        char q[2 * PGETL_IDENT_MAX + 3];
        pgetl_ident_quote(info->columns[colidx[i]].name, q, sizeof q);
        ok = pgetl__buf_printf(&sql, "%s%s", i ? ", " : "", q) == PGETL_OK;
    }
    ok = ok && pgetl__buf_printf(&sql, ") FROM STDIN (FORMAT %s%s)", format_word(c->format),
                                 opts->freeze ? ", FREEZE" : "") == PGETL_OK;
    c->sql = sql.data;
    if (c->isolate) {
        c->row_cap = c->batch_rows < 1024 ? c->batch_rows : 1024;
        c->row_off = pgetl__malloc(sizeof(size_t) * (size_t)(c->row_cap + 1));
        c->live = pgetl__malloc(sizeof(int64_t) * (size_t)c->row_cap);
        c->segs_cap = 4;
        c->segs = pgetl__malloc(sizeof(pgetl__src_seg) * (size_t)c->segs_cap);
        ok = ok && c->row_off && c->live && c->segs;
        if (ok)
            c->row_off[0] = 0;
    }
    ok = ok &&
         pgetl__buf_reserve(&c->buf, c->chunk_bytes + (c->isolate ? 0 : ROW_SLACK)) == PGETL_OK;
    if (!ok) {
        pgetl__error_oom(err, "COPY");
        copy_free(c);
        return PGETL_ENOMEM;
    }
    if (!c->isolate) {
        rc = pgetl__copy_start(c, err);
        if (rc != PGETL_OK) {
            drain(c, "pgetl: COPY could not start");
            copy_free(c);
            return rc;
        }
    }
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_DEBUG, "copy_begin")) {
        pgetl__log_str(&l, "table", info->quoted);
        pgetl__log_str(&l, "format", format_word(c->format));
        pgetl__log_int(&l, "columns", ncols);
        pgetl__log_int(&l, "max_rejects", c->max_rejects);
        pgetl__log_end(&l);
    }
    *copy_out = c;
    return PGETL_OK;
}

pgetl_buf *pgetl__copy_row_begin(pgetl_copy *c, size_t reserve, pgetl_error *err) {
    if (c->failed) {
        pgetl__error_copy(err, &c->error);
        return NULL;
    }
    if (c->in_row) {
        /* An unfinished row (the caller's encoder failed without row_cancel): drop it. */
        c->buf.len = c->row_start;
    }
    /* Send what is buffered rather than grow past the chunk bound. */
    if (!c->isolate && c->buf.len > 0 && reserve > c->buf.cap - c->buf.len &&
        flush(c, false, err) != PGETL_OK)
        return NULL;
    if (pgetl__buf_reserve(&c->buf, reserve) != PGETL_OK) {
        pgetl_error e;
        pgetl__error_oom(&e, "COPY row");
        pgetl__copy_fail(c, &e);
        pgetl__error_copy(err, &c->error);
        return NULL;
    }
    c->row_start = c->buf.len;
    c->in_row = true;
    return &c->buf;
}

void pgetl__copy_row_cancel(pgetl_copy *c) {
    if (c->in_row)
        c->buf.len = c->row_start;
    c->in_row = false;
}

/* Isolation: room for one more row boundary, grown geometrically up to batch_rows. */
static bool grow_rows(pgetl_copy *c) {
    int64_t cap = c->row_cap * 2;
    if (cap > c->batch_rows)
        cap = c->batch_rows;
    size_t *off = pgetl__realloc(c->row_off, sizeof(size_t) * (size_t)(cap + 1));
    if (!off)
        return false;
    c->row_off = off;
    int64_t *live = pgetl__realloc(c->live, sizeof(int64_t) * (size_t)cap);
    if (!live)
        return false;
    c->live = live;
    c->row_cap = cap;
    return true;
}

pgetl_code pgetl__copy_row_end(pgetl_copy *c, pgetl_error *err) {
    if (c->failed)
        return pgetl__error_copy(err, &c->error);
    if (!c->in_row)
        return pgetl_error_set(err, PGETL_ESTATE, "COPY %s: row_end without row_begin",
                               c->info->quoted);
    c->in_row = false;
    if (c->isolate) {
        if (c->batch_row >= c->row_cap && !grow_rows(c))
            return fail_msg(c, err, PGETL_ENOMEM, "out of memory for row boundaries");
        c->row_off[++c->batch_row] = c->buf.len;
    } else {
        c->batch_row++;
        if (c->format == PGETL_COPY_CSV)
            pgetl__copy_track_lines(c, c->buf.data + c->row_start, c->buf.len - c->row_start);
    }
    c->rows++;
    c->source_row++;
    c->stats.rows_read++;
    if (c->batch_row >= c->batch_rows) {
        pgetl_code rc = c->isolate ? pgetl__copy_run_batch(c, err) : flush(c, true, err);
        if (rc != PGETL_OK)
            return rc;
        next_batch(c);
        return PGETL_OK;
    }
    if (!c->isolate && c->buf.len >= c->chunk_bytes)
        return flush(c, false, err);
    return PGETL_OK;
}

pgetl_code pgetl__copy_put_rows(pgetl_copy *c, const char *data, const size_t *row_end,
                                int64_t nrows, const pgetl__row_breaks *breaks, int64_t nbreaks,
                                pgetl_error *err) {
    if (c->failed)
        return pgetl__error_copy(err, &c->error);
    if (c->isolate || c->in_row || c->format == PGETL_COPY_BINARY)
        return fail_msg(c, err, PGETL_ESTATE, "put_rows needs a streaming text or CSV session");
    if (c->buf.len > 0 && flush(c, false, err) != PGETL_OK)
        return err ? err->code : c->error.code;
    size_t len = nrows > 0 ? row_end[nrows - 1] : 0;
    if (c->format == PGETL_COPY_CSV && nrows > 0)
        pgetl__copy_mark_breaks(c, data, row_end[0], breaks, nbreaks);
    if (pgetl__copy_send_chunks(c, data, len, err) != PGETL_OK) {
        pgetl__copy_fail(c, err);
        return pgetl__error_copy(err, &c->error);
    }
    c->rows += nrows;
    c->source_row += nrows;
    c->stats.rows_read += nrows;
    c->batch_row += nrows;
    if (c->batch_row >= c->batch_rows) {
        pgetl_code rc = flush(c, true, err);
        if (rc != PGETL_OK)
            return rc;
        next_batch(c);
    }
    return PGETL_OK;
}

void pgetl__copy_set_iso(pgetl_copy *c, const pgetl__iso_est *est) {
    c->iso_gap_avg = est->gap_avg > 0 ? est->gap_avg : 0;
    c->iso_gap = est->run > 0 ? est->run : 0;
}

void pgetl__copy_get_iso(const pgetl_copy *c, pgetl__iso_est *est) {
    est->gap_avg = c->iso_gap_avg;
    est->run = c->iso_gap;
}

void pgetl__copy_set_source_batch(pgetl_copy *c, int64_t batch_index) {
    c->has_source = true;
    c->source_batch = batch_index;
    c->source_row = 0;
    if (!c->isolate)
        return;
    if (c->nsegs > 0 && c->segs[c->nsegs - 1].start == c->batch_row) {
        c->segs[c->nsegs - 1] = (pgetl__src_seg){c->batch_row, batch_index, 0};
        return;
    }
    if (c->nsegs == c->segs_cap) {
        pgetl__src_seg *s = pgetl__realloc(c->segs, sizeof *s * (size_t)c->segs_cap * 2);
        if (!s) {
            pgetl_error e;
            pgetl__error_oom(&e, "COPY source batch");
            pgetl__copy_fail(c, &e);
            return;
        }
        c->segs = s;
        c->segs_cap *= 2;
    }
    c->segs[c->nsegs++] = (pgetl__src_seg){c->batch_row, batch_index, 0};
}

void pgetl__copy_source_of(const pgetl_copy *c, int64_t r, int64_t *batch_out, int64_t *row_out) {
    if (!c->has_source || c->nsegs == 0) {
        *batch_out = c->batch_index;
        *row_out = r;
        return;
    }
    int i = c->nsegs - 1;
    while (i > 0 && c->segs[i].start > r)
        i--;
    *batch_out = c->segs[i].batch_index;
    *row_out = c->segs[i].row0 + (r - c->segs[i].start);
}

const pgetl_table_info *pgetl__copy_table(const pgetl_copy *c) {
    return c->info;
}

size_t pgetl__copy_buffer_capacity(const pgetl_copy *c) {
    return c->buf.cap;
}

/* Streaming mode: trailer, last chunk, end of COPY, and the server's verdict. */
static pgetl_code end_stream(pgetl_copy *c, pgetl_error *err) {
    if (c->format == PGETL_COPY_BINARY) {
        if (pgetl__buf_append(&c->buf, pgetl__binary_trailer, PGETL_BINARY_TRAILER_LEN) != PGETL_OK)
            return fail_msg(c, err, PGETL_ENOMEM, "out of memory");
    }
    pgetl_code rc = flush(c, false, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl__copy_outcome *o = &c->outcome;
    pgetl__copy_finish(c, o);
    if (o->code == PGETL_OK) {
        c->stats.rows_loaded = o->tuples;
        return PGETL_OK;
    }
    int64_t row = o->line > 0 ? pgetl__copy_stream_row(c, o->line) : 0;
    if (row > 0 && o->column[0])
        pgetl_error_prefix(&o->err, "COPY %s row %lld, column \"%s\": ", c->info->quoted,
                           (long long)row, o->column);
    else if (row > 0)
        pgetl_error_prefix(&o->err, "COPY %s row %lld: ", c->info->quoted, (long long)row);
    else if (o->line > 0)
        pgetl_error_prefix(&o->err, "COPY %s line %lld: ", c->info->quoted, (long long)o->line);
    else
        pgetl_error_prefix(&o->err, "COPY %s: ", c->info->quoted);
    pgetl__copy_fail(c, &o->err);
    return pgetl__error_copy(err, &c->error);
}

pgetl_code pgetl_copy_end(pgetl_copy *c, pgetl_copy_stats *stats_out, pgetl_error *err) {
    if (!c)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_copy_end: copy is NULL");
    pgetl_code rc;
    if (c->failed) {
        rc = pgetl__error_copy(err, &c->error);
    } else if (c->in_row) {
        rc = fail_msg(c, err, PGETL_ESTATE, "ended in the middle of a row");
    } else if (c->isolate) {
        rc = c->batch_row > 0 ? pgetl__copy_run_batch(c, err) : PGETL_OK;
        if (rc == PGETL_OK && c->batch_row > 0)
            c->stats.batches++;
    } else {
        bool partial = c->batch_row > 0;
        rc = end_stream(c, err);
        if (rc == PGETL_OK && partial)
            c->stats.batches++;
    }
    drain(c, "pgetl: COPY abandoned");
    c->stats.seconds = (double)(pgetl__now_ns() - c->t0_ns) / 1e9;
    pgetl_logline l;
    if (pgetl__log_begin(&l, rc == PGETL_OK ? PGETL_LOG_INFO : PGETL_LOG_WARN, "copy_end")) {
        pgetl__log_str(&l, "table", c->info->quoted);
        pgetl__log_str(&l, "status", pgetl_code_name(rc));
        pgetl__log_int(&l, "rows_read", c->stats.rows_read);
        pgetl__log_int(&l, "rows_loaded", c->stats.rows_loaded);
        pgetl__log_int(&l, "rows_rejected", c->stats.rows_rejected);
        pgetl__log_int(&l, "bytes", c->stats.bytes_sent);
        pgetl__log_double(&l, "seconds", c->stats.seconds);
        pgetl__log_end(&l);
    }
    if (stats_out)
        *stats_out = c->stats;
    copy_free(c);
    return rc;
}

void pgetl_copy_abort(pgetl_copy *c, const char *reason) {
    if (!c)
        return;
    const char *why = reason && reason[0] ? reason : "pgetl: COPY aborted by the caller";
    if (c->in_copy) {
        drain(c, why);
    } else if (!c->failed && c->sql && PQtransactionStatus(c->pg) == PQTRANS_INTRANS) {
        /*
         * Isolation mode between batches: earlier batches are already in the
         * transaction. Start and cancel a COPY so the transaction is failed,
         * as the contract says, and nothing of this session can be committed.
         */
        pgetl_error e;
        if (pgetl__copy_start(c, &e) == PGETL_OK)
            drain(c, why);
    }
    copy_free(c);
}
