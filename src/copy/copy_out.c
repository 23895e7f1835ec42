/*
 * pgetl_query_arrow: a query's rows as an Arrow C stream.
 *
 * The query is described first (unnamed prepared statement): that checks the
 * SQL, reports errors with their SQLSTATE before anything streams, and gives
 * the column names, type OIDs and typmods that binary COPY does not carry.
 * Columns whose type has no binary decoder are cast to text by wrapping the
 * query positionally. Without parameters the rows come through
 * `COPY (...) TO STDOUT (FORMAT binary)`; with parameters (which COPY cannot
 * bind) through the prepared statement in single-row mode with binary
 * results. Either way each row becomes field views for the same decoders.
 *
 * The stream borrows the connection while the server-side command runs. Its
 * work sits inside a savepoint, so stopping early (stream released, or the
 * connection released or closed under it: the detach hook) cancels the
 * command, drains what is in flight, and rolls back to the savepoint: the
 * caller's transaction is left as it was, never failed, never committed.
 */
#include "copy/copy_out.h"

#include <errno.h>
#include <stdio.h>

#define SAVEPOINT PGETL_QUERY_ARROW_SAVEPOINT

enum { MODE_COPY = 0, MODE_ROWS };
enum { ST_STREAMING = 0, ST_DONE, ST_FAILED, ST_DETACHED };

typedef struct qa_stream {
    pgetl_conn *conn; /* borrowed; NULL once the stream lets go of it */
    PGconn *pg;
    int mode;
    int state;
    bool active; /* the server-side command has not been read to its end */
    pgetl_copyout_parser parser;
    char *chunk;            /* MODE_COPY: PQgetCopyData buffer the parser reads   */
    PGresult *row;          /* MODE_ROWS: the current single-row result           */
    bool row_used;          /* MODE_ROWS: `row` was handed out                    */
    pgetl_field *fields;    /* MODE_ROWS: views into `row`                        */
    const pgetl_field *cur; /* fields of the row being appended                   */
    bool row_pending;       /* `cur` did not fit the last batch; it starts the next */
    pgetl_arrow_batch batch;
    int64_t batch_rows;
    int64_t batches;
    int64_t t0_ns;
    int errcode; /* what get_next returns once failed                  */
    char message[PGETL_ERROR_MESSAGE_SIZE + PGETL_ERROR_DETAIL_SIZE + PGETL_ERROR_HINT_SIZE +
                 PGETL_ERROR_CONTEXT_SIZE + 64];
} qa_stream;

/* Lets go of the connection: nothing after this touches it. */
static void let_go(qa_stream *s, bool clear_hook) {
    if (s->chunk) {
        PQfreemem(s->chunk);
        s->chunk = NULL;
    }
    if (s->row) {
        PQclear(s->row);
        s->row = NULL;
    }
    if (!s->conn)
        return;
    if (s->active) {
        s->active = false;
        pgetl__copyout_stop(s->pg, s->mode == MODE_COPY, s->batch.row_base + s->batch.rows);
        pgetl__copyout_restore_savepoint(s->pg);
    } else if (s->state == ST_FAILED) {
        pgetl__copyout_restore_savepoint(s->pg);
    }
    if (clear_hook)
        pgetl__conn_set_detach(s->conn, NULL, NULL);
    s->conn = NULL;
    s->pg = NULL;
}

static int errno_for(pgetl_code code) {
    switch (code) {
    case PGETL_ENOMEM:
        return ENOMEM;
    case PGETL_EDATA:
    case PGETL_EOVERFLOW:
    case PGETL_EUNSUPPORTED:
        return EINVAL;
    default:
        return EIO;
    }
}

/* Records the failure in err, stops the command and lets go. Returns the errno code. */
static int fail(qa_stream *s, const pgetl_error *err) {
    s->state = ST_FAILED;
    s->errcode = errno_for(err->code);
    pgetl_error_format(err, s->message, sizeof s->message);
    let_go(s, true);
    return s->errcode;
}

/* The command's output has been read to its end: check, release the savepoint, let go. */
static int finish_ok(qa_stream *s) {
    pgetl_error err;
    pgetl_error_init(&err);
    if (pgetl__conn_exec_simple(s->conn, "RELEASE SAVEPOINT " SAVEPOINT, &err) != PGETL_OK)
        return fail(s, &err);
    s->state = ST_DONE;
    let_go(s, true);
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_DEBUG, "query_arrow_done")) {
        pgetl__log_int(&l, "rows", s->batch.row_base + s->batch.rows);
        pgetl__log_int(&l, "batches", s->batches + (s->batch.rows > 0));
        pgetl__log_double(&l, "seconds", (double)(pgetl__now_ns() - s->t0_ns) / 1e9);
        pgetl__log_end(&l);
    }
    return 0;
}

/* Collects the command's final result(s); a server error fails the stream. */
static int end_of_command(qa_stream *s, PGresult *first) {
    pgetl_error err;
    pgetl_error_init(&err);
    PGresult *res = first ? first : PQgetResult(s->pg);
    ExecStatusType st = PQresultStatus(res);
    bool ok = res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    if (!ok)
        pgetl__error_from_pg(&err, res, s->pg, "query_arrow");
    PQclear(res);
    while ((res = PQgetResult(s->pg)) != NULL)
        PQclear(res);
    s->active = false;
    if (!ok) {
        if (!err.message[0])
            pgetl_error_set(&err, PGETL_EIO, "query_arrow: the command ended without a result");
        return fail(s, &err);
    }
    return 0;
}

/* ---- reading rows --------------------------------------------------------- */

/* Next row into s->cur: 1 row, 0 end of data, -1 failed (s->errcode set). */
static int next_row_copy(qa_stream *s) {
    pgetl_error err;
    for (;;) {
        if (s->chunk) {
            pgetl_copyout_event ev;
            if (pgetl__copyout_next(&s->parser, &ev, &err) != PGETL_OK)
                return fail(s, &err), -1;
            if (ev == PGETL_COPYOUT_ROW) {
                s->cur = s->parser.fields;
                return 1;
            }
            /* NEED_MORE, or END: the parser keeps nothing of the chunk (the tail of a
             * split item was copied), so it can go. */
            PQfreemem(s->chunk);
            s->chunk = NULL;
        }
        char *buf = NULL;
        int n = pgetl__conn_get_copy_data(s->pg, &buf);
        if (n > 0) {
            s->chunk = buf;
            if (pgetl__copyout_push(&s->parser, buf, (size_t)n, &err) != PGETL_OK)
                return fail(s, &err), -1;
            continue;
        }
        if (n == -1) {
            if (end_of_command(s, NULL) != 0)
                return -1;
            if (pgetl__copyout_finish(&s->parser, &err) != PGETL_OK)
                return fail(s, &err), -1;
            return 0;
        }
        pgetl__error_from_pg(&err, NULL, s->pg, "query_arrow: reading COPY data");
        s->active = PQstatus(s->pg) != CONNECTION_BAD;
        return fail(s, &err), -1;
    }
}

static int next_row_rows(qa_stream *s) {
    pgetl_error err;
    if (s->row_used || !s->row) {
        PQclear(s->row);
        pgetl__conn_wait_begin(s->pg);
        s->row = PQgetResult(s->pg);
        pgetl__conn_wait_end(s->pg);
        s->row_used = false;
    }
    PGresult *res = s->row;
    ExecStatusType st = PQresultStatus(res);
    if (res && st == PGRES_SINGLE_TUPLE) {
        int nf = PQnfields(res);
        if (nf != s->batch.ncols) {
            pgetl_error_set(&err, PGETL_EDATA, "query_arrow: row has %d fields, expected %d", nf,
                            s->batch.ncols);
            return fail(s, &err), -1;
        }
        for (int i = 0; i < nf; i++) {
            if (PQgetisnull(res, 0, i)) {
                s->fields[i].data = NULL;
                s->fields[i].len = -1;
            } else {
                s->fields[i].data = (const uint8_t *)PQgetvalue(res, 0, i);
                s->fields[i].len = PQgetlength(res, 0, i);
            }
        }
        s->row_used = true;
        s->cur = s->fields;
        return 1;
    }
    s->row = NULL;
    return end_of_command(s, res) == 0 ? 0 : -1;
}

static int next_row(qa_stream *s) {
    if (s->row_pending) {
        s->row_pending = false;
        return 1;
    }
    return s->mode == MODE_COPY ? next_row_copy(s) : next_row_rows(s);
}

/* ---- the ArrowArrayStream callbacks -------------------------------------- */

static int qa_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
    qa_stream *s = stream->private_data;
    pgetl_error err;
    if (pgetl__arrow_batch_schema(&s->batch, out, &err) != PGETL_OK) {
        pgetl_error_format(&err, s->message, sizeof s->message);
        return ENOMEM;
    }
    return 0;
}

static int qa_get_next(struct ArrowArrayStream *stream, struct ArrowArray *out) {
    qa_stream *s = stream->private_data;
    memset(out, 0, sizeof *out);
    out->release = NULL;
    if (s->state == ST_FAILED || s->state == ST_DETACHED)
        return s->errcode;
    if (s->state == ST_DONE)
        return 0;
    pgetl_error err;
    while (s->batch.rows < s->batch_rows) {
        int r = next_row(s);
        if (r < 0)
            return s->errcode;
        if (r == 0) {
            if (finish_ok(s) != 0)
                return s->errcode;
            break;
        }
        pgetl_dec d = pgetl__arrow_batch_append_row(&s->batch, s->cur, &err);
        if (d == PGETL_DEC_FULL) {
            s->row_pending = true;
            break;
        }
        if (d == PGETL_DEC_ERROR)
            return fail(s, &err);
    }
    if (s->batch.rows == 0)
        return 0; /* end of stream: out->release stays NULL */
    if (pgetl__arrow_batch_finish(&s->batch, out, &err) != PGETL_OK)
        return fail(s, &err);
    s->batches++;
    return 0;
}

static const char *qa_get_last_error(struct ArrowArrayStream *stream) {
    qa_stream *s = stream->private_data;
    return s->message[0] ? s->message : NULL;
}

static void qa_free(qa_stream *s) {
    pgetl__copyout_reset(&s->parser);
    pgetl__arrow_batch_reset(&s->batch);
    pgetl__free(s->fields);
    pgetl__free(s);
}

static void qa_release(struct ArrowArrayStream *stream) {
    if (!stream || !stream->release)
        return;
    qa_stream *s = stream->private_data;
    let_go(s, true);
    qa_free(s);
    memset(stream, 0, sizeof *stream);
}

/* The connection is being released or closed under the stream. */
static void qa_detach(void *arg) {
    qa_stream *s = arg;
    let_go(s, false); /* the hook was cleared by the caller */
    if (s->state == ST_STREAMING) {
        s->state = ST_DETACHED;
        s->errcode = EIO;
        snprintf(s->message, sizeof s->message,
                 "query_arrow: the connection was released while the stream was open");
    }
}

/* ---- starting ------------------------------------------------------------- */

/* The caller's SQL without trailing blanks and semicolons (COPY (...) rejects them). */
static size_t trimmed_len(const char *sql) {
    size_t n = strlen(sql);
    while (n > 0 && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\t' ||
                     sql[n - 1] == '\n' || sql[n - 1] == '\r'))
        n--;
    return n;
}

/*
 * The statement that returns the rows with text-wrapped columns:
 *   SELECT c1, c2::text FROM (\n<sql>\n) AS pgetl_q(c1, c2)
 * Positional aliases sidestep duplicate or odd column names. The newlines
 * keep a trailing `-- comment` in the caller's SQL from eating the ')'.
 */
static pgetl_code build_select(pgetl_buf *b, const char *sql, size_t sql_len, int ncols,
                               const bool *wrap) {
    pgetl__buf_clear(b);
    pgetl_code rc = pgetl__buf_append(b, "SELECT ", 7);
    for (int i = 0; rc == PGETL_OK && i < ncols; i++)
        rc = pgetl__buf_printf(b, "%sc%d%s", i ? ", " : "", i + 1, wrap[i] ? "::text" : "");
    if (rc == PGETL_OK)
        rc = pgetl__buf_append(b, " FROM (\n", 8);
    if (rc == PGETL_OK)
        rc = pgetl__buf_append(b, sql, sql_len);
    if (rc == PGETL_OK)
        rc = pgetl__buf_append(b, "\n) AS pgetl_q(", 14);
    for (int i = 0; rc == PGETL_OK && i < ncols; i++)
        rc = pgetl__buf_printf(b, "%sc%d", i ? ", " : "", i + 1);
    if (rc == PGETL_OK)
        rc = pgetl__buf_append(b, ")", 2); /* with the NUL */
    return rc;
}

static pgetl_code check_result(PGresult *res, ExecStatusType want, PGconn *pg, const char *what,
                               pgetl_error *err) {
    if (res && PQresultStatus(res) == want)
        return PGETL_OK;
    return res ? pgetl__error_from_pg(err, res, pg, what) : pgetl__error_oom(err, what);
}

/* Describes the query and builds the column builders; *wrap_out says which go through ::text. */
static pgetl_code describe(qa_stream *s, const char *sql, int nparams, int64_t var_limit,
                           bool **wrap_out, pgetl_error *err) {
    PGconn *pg = s->pg;
    pgetl__conn_wait_begin(pg);
    PGresult *res = PQprepare(pg, "", sql, nparams, NULL);
    pgetl__conn_wait_end(pg);
    pgetl_code rc = check_result(res, PGRES_COMMAND_OK, pg, "query_arrow", err);
    PQclear(res);
    if (rc != PGETL_OK)
        return rc;
    PGresult *desc = PQdescribePrepared(pg, "");
    rc = check_result(desc, PGRES_COMMAND_OK, pg, "query_arrow: describe", err);
    if (rc != PGETL_OK) {
        PQclear(desc);
        return rc;
    }
    if (PQnparams(desc) != nparams) {
        rc = pgetl_error_set(err, PGETL_EINVAL,
                             "query_arrow: the query has %d parameters but %d were given",
                             PQnparams(desc), nparams);
        PQclear(desc);
        return rc;
    }
    int ncols = PQnfields(desc);
    const char **names = pgetl__calloc((size_t)ncols + 1, sizeof *names);
    uint32_t *oids = pgetl__calloc((size_t)ncols + 1, sizeof *oids);
    int32_t *mods = pgetl__calloc((size_t)ncols + 1, sizeof *mods);
    bool *wrap = pgetl__calloc((size_t)ncols + 1, sizeof *wrap);
    if (!names || !oids || !mods || !wrap) {
        rc = pgetl__error_oom(err, "query_arrow");
    } else {
        for (int i = 0; i < ncols; i++) {
            names[i] = PQfname(desc, i);
            oids[i] = PQftype(desc, i);
            mods[i] = PQfmod(desc, i);
            if (!pgetl__arrow_type_supported(oids[i], mods[i])) {
                wrap[i] = true;
                oids[i] = PGETL_OID_TEXT;
                mods[i] = -1;
            }
        }
        rc = pgetl__arrow_batch_init(&s->batch, ncols, names, oids, mods, var_limit, err);
    }
    PQclear(desc);
    pgetl__free(names);
    pgetl__free(oids);
    pgetl__free(mods);
    if (rc != PGETL_OK) {
        pgetl__free(wrap);
        return rc;
    }
    *wrap_out = wrap;
    return PGETL_OK;
}

/* Starts the command that streams the rows; its first result is checked here. */
static pgetl_code start(qa_stream *s, const char *sql, int nparams, const char *const *params,
                        const bool *wrap, pgetl_error *err) {
    PGconn *pg = s->pg;
    int ncols = s->batch.ncols;
    size_t sql_len = trimmed_len(sql);
    bool any_wrap = false;
    for (int i = 0; i < ncols; i++)
        any_wrap |= wrap[i];
    pgetl_buf q;
    pgetl__buf_init(&q);
    pgetl_code rc = PGETL_OK;
    if (any_wrap)
        rc = build_select(&q, sql, sql_len, ncols, wrap);
    if (rc != PGETL_OK)
        goto oom;
    if (nparams == 0) {
        s->mode = MODE_COPY;
        pgetl_buf c;
        pgetl__buf_init(&c);
        const char *body = any_wrap ? q.data : sql;
        size_t body_len = any_wrap ? q.len - 1 : sql_len;
        if (pgetl__buf_append(&c, "COPY (\n", 7) != PGETL_OK ||
            pgetl__buf_append(&c, body, body_len) != PGETL_OK ||
            pgetl__buf_append(&c, "\n) TO STDOUT (FORMAT binary)", 29) != PGETL_OK) {
            pgetl__buf_reset(&c);
            goto oom;
        }
        pgetl__conn_wait_begin(pg);
        PGresult *res = PQexec(pg, c.data);
        pgetl__conn_wait_end(pg);
        pgetl__buf_reset(&c);
        rc = check_result(res, PGRES_COPY_OUT, pg, "query_arrow", err);
        if (rc == PGETL_OK && (PQbinaryTuples(res) != 1 || PQnfields(res) != ncols))
            rc = pgetl_error_set(err, PGETL_EDATA,
                                 "query_arrow: the server started a COPY of %d %s columns, "
                                 "expected %d binary",
                                 PQnfields(res), PQbinaryTuples(res) ? "binary" : "text", ncols);
        if (rc == PGETL_OK || PQresultStatus(res) == PGRES_COPY_OUT)
            s->active = true;
        PQclear(res);
        if (rc == PGETL_OK)
            rc = pgetl__copyout_init(&s->parser, ncols, err);
    } else {
        s->mode = MODE_ROWS;
        if (any_wrap) {
            pgetl__conn_wait_begin(pg);
            PGresult *res = PQprepare(pg, "", q.data, nparams, NULL);
            pgetl__conn_wait_end(pg);
            rc = check_result(res, PGRES_COMMAND_OK, pg, "query_arrow", err);
            PQclear(res);
        }
        s->fields = rc == PGETL_OK ? pgetl__calloc((size_t)ncols + 1, sizeof *s->fields) : NULL;
        if (rc == PGETL_OK && !s->fields)
            rc = pgetl__error_oom(err, "query_arrow");
        if (rc == PGETL_OK) {
            if (!PQsendQueryPrepared(pg, "", nparams, params, NULL, NULL, 1)) {
                rc = pgetl__error_from_pg(err, NULL, pg, "query_arrow");
            } else {
                s->active = true;
                if (!PQsetSingleRowMode(pg))
                    rc = pgetl_error_set(err, PGETL_ESTATE,
                                         "query_arrow: could not enter single-row mode");
            }
        }
        if (rc == PGETL_OK) {
            /* The first result shows errors found at execution start, before streaming. */
            pgetl__conn_wait_begin(pg);
            s->row = PQgetResult(pg);
            pgetl__conn_wait_end(pg);
            ExecStatusType st = PQresultStatus(s->row);
            if (!s->row || (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK))
                rc = s->row ? pgetl__error_from_pg(err, s->row, pg, "query_arrow")
                            : pgetl_error_set(err, PGETL_EIO, "query_arrow: no result");
        }
    }
    pgetl__buf_reset(&q);
    return rc;
oom:
    pgetl__buf_reset(&q);
    return pgetl__error_oom(err, "query_arrow");
}

pgetl_code pgetl__query_arrow_ex(pgetl_conn *conn, const char *sql, int nparams,
                                 const char *const *params, const pgetl_query_arrow_limits *lim,
                                 struct ArrowArrayStream *stream_out, pgetl_error *err) {
    if (stream_out)
        memset(stream_out, 0, sizeof *stream_out);
    if (!conn || !pgetl__conn_pg(conn) || !sql || !stream_out || nparams < 0 ||
        (nparams > 0 && !params))
        return pgetl_error_set(err, PGETL_EINVAL,
                               "query_arrow: conn, sql and stream_out are required, and params "
                               "when nparams > 0");
    PGconn *pg = pgetl__conn_pg(conn);
    if (PQclientEncoding(pg) != pg_char_to_encoding("UTF8"))
        return pgetl_error_set(err, PGETL_EUNSUPPORTED,
                               "query_arrow: client_encoding is %s; Arrow text is UTF-8, so set "
                               "client_encoding=UTF8 on the connection",
                               pg_encoding_to_char(PQclientEncoding(pg)));
    pgetl_code rc = pgetl_begin(conn, err);
    if (rc != PGETL_OK)
        return rc;
    rc = pgetl__conn_exec_simple(conn, "SAVEPOINT " SAVEPOINT, err);
    if (rc != PGETL_OK)
        return rc;

    qa_stream *s = pgetl__calloc(1, sizeof *s);
    if (!s) {
        pgetl__copyout_restore_savepoint(pg);
        return pgetl__error_oom(err, "query_arrow");
    }
    s->conn = conn;
    s->pg = pg;
    s->t0_ns = pgetl__now_ns();
    s->batch_rows = lim && lim->batch_rows > 0 ? lim->batch_rows : PGETL_ARROW_BATCH_ROWS;
    bool *wrap = NULL;
    rc = describe(s, sql, nparams, lim ? lim->var_limit : 0, &wrap, err);
    if (rc == PGETL_OK)
        rc = start(s, sql, nparams, params, wrap, err);
    pgetl__free(wrap);
    if (rc != PGETL_OK) {
        s->state = ST_FAILED;
        let_go(s, false);
        qa_free(s);
        return rc;
    }
    pgetl__conn_set_detach(conn, qa_detach, s);
    stream_out->get_schema = qa_get_schema;
    stream_out->get_next = qa_get_next;
    stream_out->get_last_error = qa_get_last_error;
    stream_out->release = qa_release;
    stream_out->private_data = s;
    return PGETL_OK;
}

pgetl_code pgetl_query_arrow(pgetl_conn *conn, const char *sql, int nparams,
                             const char *const *params, struct ArrowArrayStream *stream_out,
                             pgetl_error *err) {
    return pgetl__query_arrow_ex(conn, sql, nparams, params, NULL, stream_out, err);
}
