/*
 * Non-blocking COPY-in.
 *
 * Design note. Rows are encoded into one bounded buffer (`cap` bytes). The
 * buffer is handed to PQputCopyData only when libpq's own output buffer is
 * empty (PQflush returned 0): in non-blocking mode PQputCopyData otherwise
 * grows libpq's buffer without limit, so this rule is what bounds memory to
 * about two buffers whatever the input size. When the kernel will take no
 * more, PQflush returns 1 and we ask the caller to wait for writability (and
 * readability: libpq reads while it cannot write, so a chatty server never
 * deadlocks us). A row that does not fit is refused with PGETL_EAGAIN.
 *
 * Text rows are sized by their worst case (every byte escaped) before
 * encoding, so encoding never checks bounds per byte. A server error during
 * the COPY (bad data) is only reported by libpq after PQputCopyEnd; the server
 * drops the rest of the data meanwhile, so the error comes back at the end.
 */
#include "session/session_int.h"

#include <stdio.h>
#include <stdlib.h>

enum { AC_STARTING = 0, AC_STREAMING, AC_ENDING, AC_DONE, AC_FAILED };

/* PostgreSQL's binary dates and timestamps count from 2000-01-01. */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_USECS INT64_C(946684800000000)

struct pgetl_async_copy {
    pgetl_conn *conn;
    PGconn *pg;
    bool was_nonblocking;
    int state;
    bool end_requested;
    pgetl_copy_format format;
    int ncols;
    pgetl_type *types; /* BINARY: copied from the options */
    pgetl_buf buf;
    size_t cap;
    int64_t rows_queued;
    int64_t rows_done; /* as the server reported */
    pgetl_error error; /* sticky */
    int64_t started_ns;
    pgetl__async_clock clock;
    char table[2 * (2 * PGETL_IDENT_MAX + 2) + 2];
};

void pgetl_async_copy_options_init(pgetl_async_copy_options *opts) {
    memset(opts, 0, sizeof *opts);
    opts->format = PGETL_COPY_TEXT;
    opts->buffer_bytes = PGETL_ASYNC_COPY_BUFFER;
}

static const char binary_header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";

/* Builds the COPY statement; returns false when it does not fit. */
static bool build_sql(pgetl_buf *sql, const char *quoted, const pgetl_async_copy_options *o) {
    if (pgetl__buf_printf(sql, "COPY %s", quoted) != PGETL_OK)
        return false;
    if (o->columns && o->ncolumns > 0) {
        char q[2 * PGETL_IDENT_MAX + 3];
        for (int i = 0; i < o->ncolumns; i++) {
            size_t need = pgetl_ident_quote(o->columns[i], q, sizeof q);
            if (need >= sizeof q)
                return false;
            if (pgetl__buf_printf(sql, "%s%s", i ? ", " : " (", q) != PGETL_OK)
                return false;
        }
        if (pgetl__buf_append(sql, ")", 1) != PGETL_OK)
            return false;
    }
    const char *fmt = o->format == PGETL_COPY_CSV      ? "csv"
                      : o->format == PGETL_COPY_BINARY ? "binary"
                                                       : "text";
    return pgetl__buf_printf(sql, " FROM STDIN (FORMAT %s)", fmt) == PGETL_OK &&
           pgetl__buf_append(sql, "", 1) == PGETL_OK;
}

static pgetl_code check_start(pgetl_conn *conn, const char *table,
                              const pgetl_async_copy_options *o, pgetl_error *err) {
    PGconn *pg = pgetl__conn_pg(conn);
    if (!pg || !table)
        return pgetl_error_set(err, PGETL_EINVAL, "async copy: %s is NULL",
                               pg ? "table" : "connection");
    if (PQstatus(pg) != CONNECTION_OK)
        return pgetl_error_set(err, PGETL_ECONNLOST, "async copy: connection to the server lost");
    if (PQtransactionStatus(pg) == PQTRANS_ACTIVE || PQisBusy(pg))
        return pgetl_error_set(err, PGETL_ESTATE,
                               "async copy: the connection is busy with another command");
    if (o->format != PGETL_COPY_TEXT && o->format != PGETL_COPY_CSV &&
        o->format != PGETL_COPY_BINARY)
        return pgetl_error_set(err, PGETL_EINVAL, "async copy: unknown format %d", (int)o->format);
    if (o->ncolumns < 0 || (o->ncolumns > 0 && !o->columns))
        return pgetl_error_set(err, PGETL_EINVAL, "async copy: bad column list");
    for (int i = 0; i < o->ncolumns; i++)
        if (!o->columns[i] || !o->columns[i][0])
            return pgetl_error_set(err, PGETL_EINVAL, "async copy: column %d has no name", i);
    if (o->format == PGETL_COPY_BINARY && (!o->types || o->ncolumns < 1))
        return pgetl_error_set(err, PGETL_EINVAL,
                               "async copy: BINARY format needs the column list and their types");
    return PGETL_OK;
}

pgetl_code pgetl_async_copy_start(pgetl_conn *conn, const char *table,
                                  const pgetl_async_copy_options *opts, pgetl_async_copy **op_out,
                                  pgetl_error *err) {
    if (!op_out)
        return pgetl_error_set(err, PGETL_EINVAL, "async copy: op_out is NULL");
    *op_out = NULL;
    pgetl_async_copy_options defaults;
    if (!opts) {
        pgetl_async_copy_options_init(&defaults);
        opts = &defaults;
    }
    pgetl_code rc = check_start(conn, table, opts, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl_qualified_name qn;
    rc = pgetl_ident_parse(table, &qn, err);
    if (rc != PGETL_OK)
        return rc;

    pgetl_async_copy *op = pgetl__calloc(1, sizeof *op);
    if (!op)
        return pgetl__error_oom(err, "async copy");
    pgetl_qualified_name_quote(&qn, op->table, sizeof op->table);
    op->conn = conn;
    op->pg = pgetl__conn_pg(conn);
    op->format = opts->format;
    op->ncols = opts->ncolumns;
    op->cap = opts->buffer_bytes < 1024 ? 1024 : opts->buffer_bytes;
    op->started_ns = pgetl__now_ns();
    pgetl__async_clock_init(&op->clock, op->pg);
    pgetl__buf_init(&op->buf);

    pgetl_buf sql;
    pgetl__buf_init(&sql);
    if (!build_sql(&sql, op->table, opts)) {
        rc = pgetl_error_set(err, PGETL_EINVAL, "async copy: bad column name or out of memory");
        goto fail;
    }
    if (pgetl__buf_reserve(&op->buf, op->cap) != PGETL_OK) {
        rc = pgetl__error_oom(err, "async copy");
        goto fail;
    }
    if (op->format == PGETL_COPY_BINARY) {
        op->types = pgetl__calloc((size_t)op->ncols, sizeof *op->types);
        if (!op->types) {
            rc = pgetl__error_oom(err, "async copy");
            goto fail;
        }
        memcpy(op->types, opts->types, (size_t)op->ncols * sizeof *op->types);
        pgetl__buf_append_unchecked(&op->buf, binary_header, sizeof binary_header);
    }
    rc = pgetl__async_nonblocking(op->pg, &op->was_nonblocking, err);
    if (rc != PGETL_OK)
        goto fail;
    if (!PQsendQuery(op->pg, sql.data)) {
        rc = pgetl__error_from_pg(err, NULL, op->pg, "async copy");
        pgetl__async_restore_mode(op->pg, op->was_nonblocking);
        goto fail;
    }
    pgetl__buf_reset(&sql);
    *op_out = op;
    return PGETL_OK;
fail:
    pgetl__buf_reset(&sql);
    pgetl__buf_reset(&op->buf);
    pgetl__free(op->types);
    pgetl__free(op);
    return rc;
}

static pgetl_code fail(pgetl_async_copy *op, pgetl_error *err) {
    op->state = AC_FAILED;
    return pgetl__error_copy(err, &op->error);
}

/* Collects the results of the COPY statement once libpq has them. */
static void read_results(pgetl_async_copy *op) {
    while (!PQisBusy(op->pg)) {
        PGresult *r = PQgetResult(op->pg);
        if (!r) {
            if (op->error.code == PGETL_OK && op->state == AC_STARTING)
                pgetl_error_set(&op->error, PGETL_ESERVER,
                                "async copy into %s: the server ended the COPY before it began",
                                op->table);
            op->state = op->error.code == PGETL_OK ? AC_DONE : AC_FAILED;
            return;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN && op->state == AC_STARTING) {
            PQclear(r);
            op->state = AC_STREAMING;
            return;
        }
        if (st == PGRES_COMMAND_OK && op->state == AC_ENDING) {
            const char *n = PQcmdTuples(r);
            op->rows_done = n && n[0] ? strtoll(n, NULL, 10) : 0;
        } else if (op->error.code == PGETL_OK) {
            char what[sizeof op->table + 32];
            snprintf(what, sizeof what, "COPY into %s", op->table);
            pgetl__error_from_pg(&op->error, r, op->pg, what);
        }
        PQclear(r);
    }
}

static pgetl_code step(pgetl_async_copy *op, int *want, bool *pending_out, pgetl_error *err);

/*
 * Does every step possible without waiting; returns EAGAIN with *want set.
 * io_timeout_s: the operation waits on the server while the COPY starts or
 * ends and while output is stuck; "ready for more rows" is the caller's time.
 */
static pgetl_code advance(pgetl_async_copy *op, int *want, pgetl_error *err) {
    *want = PGETL_WANT_NONE;
    if (op->state == AC_DONE)
        return PGETL_OK;
    if (op->state == AC_FAILED)
        return pgetl__error_copy(err, &op->error);
    bool moved = pgetl__async_moved(&op->clock, op->pg), pending = false;
    pgetl_code rc = step(op, want, &pending, err);
    if (rc != PGETL_EAGAIN)
        return rc;
    bool waiting = op->state != AC_STREAMING || pending || (*want & PGETL_WANT_WRITE);
    if (pgetl__async_clock_tick(&op->clock, op->pg, moved, waiting, pending, "async copy",
                                &op->error) != PGETL_OK) {
        *want = PGETL_WANT_NONE;
        return fail(op, err);
    }
    return rc;
}

static pgetl_code step(pgetl_async_copy *op, int *want, bool *pending_out, pgetl_error *err) {
    bool pending;
    if (pgetl__async_pump(op->pg, &pending, "async copy", &op->error) != PGETL_OK)
        return fail(op, err);
    *pending_out = pending;
    if (op->state == AC_STARTING) {
        read_results(op);
        if (op->state == AC_FAILED)
            return fail(op, err);
        if (op->state == AC_STARTING) {
            *want = PGETL_WANT_READ | (pending ? PGETL_WANT_WRITE : 0);
            return PGETL_EAGAIN;
        }
    }
    while (op->state == AC_STREAMING) {
        if (pending) {
            *want = PGETL_WANT_READ | PGETL_WANT_WRITE;
            return PGETL_EAGAIN;
        }
        int r;
        if (op->buf.len > 0) {
            r = PQputCopyData(op->pg, op->buf.data, (int)op->buf.len);
            if (r == 1)
                pgetl__buf_clear(&op->buf);
        } else if (op->end_requested) {
            r = PQputCopyEnd(op->pg, NULL);
            if (r == 1)
                op->state = AC_ENDING;
        } else {
            /* Everything queued went out: ready for more rows. */
            *want = PGETL_WANT_READ;
            return PGETL_EAGAIN;
        }
        if (r < 0) {
            pgetl__error_from_pg(&op->error, NULL, op->pg, "async copy");
            read_results(op);
            return fail(op, err);
        }
        if (r == 0) {
            *want = PGETL_WANT_READ | PGETL_WANT_WRITE;
            return PGETL_EAGAIN;
        }
        int f = PQflush(op->pg);
        if (f < 0) {
            pgetl__error_from_pg(&op->error, NULL, op->pg, "async copy");
            return fail(op, err);
        }
        pending = f == 1;
        *pending_out = pending;
    }
    if (op->state == AC_ENDING) {
        read_results(op);
        if (op->state == AC_FAILED)
            return fail(op, err);
        if (op->state == AC_DONE) {
            pgetl_logline l;
            if (pgetl__log_begin(&l, PGETL_LOG_INFO, "async_copy")) {
                pgetl__log_str(&l, "table", op->table);
                pgetl__log_int(&l, "rows", op->rows_done);
                pgetl__log_double(&l, "seconds", (double)(pgetl__now_ns() - op->started_ns) / 1e9);
                pgetl__log_end(&l);
            }
            return PGETL_OK;
        }
        *want = PGETL_WANT_READ | (pending ? PGETL_WANT_WRITE : 0);
        return PGETL_EAGAIN;
    }
    return op->state == AC_DONE ? PGETL_OK : fail(op, err);
}

int pgetl_async_copy_timeout_ms(const pgetl_async_copy *op) {
    return op && op->state != AC_DONE && op->state != AC_FAILED
               ? pgetl__async_clock_ms(&op->clock)
               : -1;
}

pgetl_code pgetl_async_copy_poll(pgetl_async_copy *op, int *want_out, int64_t *rows_out,
                                 pgetl_error *err) {
    int want = PGETL_WANT_NONE;
    if (!op)
        return pgetl_error_set(err, PGETL_EINVAL, "async copy poll: op is NULL");
    pgetl_code rc = advance(op, &want, err);
    if (want_out)
        *want_out = want;
    if (rows_out)
        *rows_out = op->rows_done;
    return rc;
}

/*
 * Makes room for `need` more bytes, pushing data out if possible. Returns
 * PGETL_OK when it fits, PGETL_EAGAIN when the caller must poll first.
 */
static pgetl_code make_room(pgetl_async_copy *op, size_t need, pgetl_error *err) {
    if (op->state == AC_FAILED)
        return pgetl__error_copy(err, &op->error);
    if (op->end_requested)
        return pgetl_error_set(err, PGETL_ESTATE, "async copy into %s: write after end", op->table);
    if (op->buf.len + need <= op->cap)
        return PGETL_OK;
    if (op->buf.len > 0 && op->state == AC_STREAMING) {
        int want;
        pgetl_code rc = advance(op, &want, err);
        if (rc != PGETL_OK && rc != PGETL_EAGAIN)
            return rc;
    }
    if (op->buf.len + need <= op->cap)
        return PGETL_OK;
    if (op->buf.len == 0)
        /* One row bigger than the whole buffer: take it alone. */
        return pgetl__buf_reserve(&op->buf, need) == PGETL_OK
                   ? PGETL_OK
                   : pgetl__error_oom(err, "async copy row");
    return PGETL_EAGAIN;
}

static size_t value_len(const char *v, const size_t *lengths, int i) {
    return lengths ? lengths[i] : strlen(v);
}

static void put_text_value(pgetl_buf *b, const char *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        switch (c) {
        case '\\':
            pgetl__buf_append_unchecked(b, "\\\\", 2);
            break;
        case '\t':
            pgetl__buf_append_unchecked(b, "\\t", 2);
            break;
        case '\n':
            pgetl__buf_append_unchecked(b, "\\n", 2);
            break;
        case '\r':
            pgetl__buf_append_unchecked(b, "\\r", 2);
            break;
        default:
            pgetl__buf_byte_unchecked(b, c);
        }
    }
}

static void put_csv_value(pgetl_buf *b, const char *v, size_t n) {
    /* Quote when the value could be misread: empty (else NULL), separators,
     * quotes, line breaks, or a backslash (a lone \. ends the data). */
    bool quote = n == 0 || memchr(v, '\\', n) != NULL;
    for (size_t i = 0; i < n && !quote; i++)
        quote = v[i] == ',' || v[i] == '"' || v[i] == '\n' || v[i] == '\r';
    if (!quote) {
        pgetl__buf_append_unchecked(b, v, n);
        return;
    }
    pgetl__buf_byte_unchecked(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"')
            pgetl__buf_byte_unchecked(b, '"');
        pgetl__buf_byte_unchecked(b, v[i]);
    }
    pgetl__buf_byte_unchecked(b, '"');
}

pgetl_code pgetl_async_copy_write_row(pgetl_async_copy *op, const char *const *values,
                                      const size_t *lengths, pgetl_error *err) {
    if (!op || (!values && op->ncols != 0))
        return pgetl_error_set(err, PGETL_EINVAL, "async copy write: NULL argument");
    if (op->format == PGETL_COPY_BINARY)
        return pgetl_error_set(
            err, PGETL_ESTATE,
            "async copy into %s: BINARY format takes pgetl_async_copy_write_values", op->table);
    if (op->ncols == 0)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "async copy into %s: write_row needs the column list in the options",
                               op->table);
    /* Worst case: every byte escaped or quoted, plus separators and \N. */
    size_t need = 1;
    for (int i = 0; i < op->ncols; i++)
        need += values[i] ? 2 * value_len(values[i], lengths, i) + 3 : 3;
    pgetl_code rc = make_room(op, need, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl_buf *b = &op->buf;
    char sep = op->format == PGETL_COPY_CSV ? ',' : '\t';
    for (int i = 0; i < op->ncols; i++) {
        if (i)
            pgetl__buf_byte_unchecked(b, sep);
        if (!values[i]) {
            if (op->format == PGETL_COPY_TEXT)
                pgetl__buf_append_unchecked(b, "\\N", 2);
            continue; /* CSV: an unquoted empty field is NULL */
        }
        size_t n = value_len(values[i], lengths, i);
        if (op->format == PGETL_COPY_CSV)
            put_csv_value(b, values[i], n);
        else
            put_text_value(b, values[i], n);
    }
    pgetl__buf_byte_unchecked(b, '\n');
    op->rows_queued++;
    return PGETL_OK;
}

static size_t binary_size(pgetl_type t, const pgetl_value *v) {
    switch (t) {
    case PGETL_TYPE_INT16:
        return 2;
    case PGETL_TYPE_BOOL:
        return 1;
    case PGETL_TYPE_INT32:
    case PGETL_TYPE_FLOAT32:
    case PGETL_TYPE_DATE:
        return 4;
    case PGETL_TYPE_INT64:
    case PGETL_TYPE_FLOAT64:
    case PGETL_TYPE_TIMESTAMP:
    case PGETL_TYPE_TIMESTAMPTZ:
        return 8;
    case PGETL_TYPE_TEXT:
    case PGETL_TYPE_BYTEA:
    case PGETL_TYPE_UUID:
        return v->v.s.len;
    case PGETL_TYPE_NUMERIC:
        break;
    }
    return SIZE_MAX;
}

static void put_binary_value(pgetl_buf *b, pgetl_type t, const pgetl_value *v, size_t n) {
    pgetl__buf_be32_unchecked(b, (uint32_t)n);
    switch (t) {
    case PGETL_TYPE_INT16:
        pgetl__buf_be16_unchecked(b, (uint16_t)v->v.i);
        break;
    case PGETL_TYPE_INT32:
        pgetl__buf_be32_unchecked(b, (uint32_t)v->v.i);
        break;
    case PGETL_TYPE_INT64:
        pgetl__buf_be64_unchecked(b, (uint64_t)v->v.i);
        break;
    case PGETL_TYPE_FLOAT32: {
        float f = (float)v->v.f;
        uint32_t u;
        memcpy(&u, &f, 4);
        pgetl__buf_be32_unchecked(b, u);
        break;
    }
    case PGETL_TYPE_FLOAT64: {
        uint64_t u;
        memcpy(&u, &v->v.f, 8);
        pgetl__buf_be64_unchecked(b, u);
        break;
    }
    case PGETL_TYPE_BOOL:
        pgetl__buf_byte_unchecked(b, v->v.b ? 1 : 0);
        break;
    case PGETL_TYPE_DATE:
        pgetl__buf_be32_unchecked(b, (uint32_t)(v->v.i - PG_EPOCH_DAYS));
        break;
    case PGETL_TYPE_TIMESTAMP:
    case PGETL_TYPE_TIMESTAMPTZ:
        pgetl__buf_be64_unchecked(b, (uint64_t)(v->v.i - PG_EPOCH_USECS));
        break;
    default:
        if (n)
            pgetl__buf_append_unchecked(b, v->v.s.bytes, n);
    }
}

pgetl_code pgetl_async_copy_write_values(pgetl_async_copy *op, const pgetl_value *values,
                                         pgetl_error *err) {
    if (!op || !values)
        return pgetl_error_set(err, PGETL_EINVAL, "async copy write: NULL argument");
    if (op->format != PGETL_COPY_BINARY)
        return pgetl_error_set(err, PGETL_ESTATE,
                               "async copy into %s: text formats take pgetl_async_copy_write_row",
                               op->table);
    size_t need = 2;
    for (int i = 0; i < op->ncols; i++) {
        if (values[i].is_null) {
            need += 4;
            continue;
        }
        size_t n = binary_size(op->types[i], &values[i]);
        if (n == SIZE_MAX)
            return pgetl_error_set(err, PGETL_EUNSUPPORTED,
                                   "async copy into %s: column %d: type %d is not supported in "
                                   "BINARY format here (use TEXT format)",
                                   op->table, i, (int)op->types[i]);
        if ((op->types[i] == PGETL_TYPE_UUID && n != 16) || n > INT32_MAX ||
            (n && !values[i].v.s.bytes && op->types[i] >= PGETL_TYPE_TEXT))
            return pgetl_error_set(err, PGETL_EDATA, "async copy into %s: column %d: bad value",
                                   op->table, i);
        need += 4 + n;
    }
    pgetl_code rc = make_room(op, need, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl_buf *b = &op->buf;
    pgetl__buf_be16_unchecked(b, (uint16_t)op->ncols);
    for (int i = 0; i < op->ncols; i++) {
        if (values[i].is_null)
            pgetl__buf_be32_unchecked(b, UINT32_MAX);
        else
            put_binary_value(b, op->types[i], &values[i], binary_size(op->types[i], &values[i]));
    }
    op->rows_queued++;
    return PGETL_OK;
}

pgetl_code pgetl_async_copy_end(pgetl_async_copy *op, pgetl_error *err) {
    if (!op)
        return pgetl_error_set(err, PGETL_EINVAL, "async copy end: op is NULL");
    if (op->state == AC_FAILED)
        return pgetl__error_copy(err, &op->error);
    if (op->end_requested)
        return pgetl_error_set(err, PGETL_ESTATE, "async copy into %s: end called twice",
                               op->table);
    if (op->format == PGETL_COPY_BINARY) {
        /* The trailer may exceed the cap by its two bytes: never a reason to wait. */
        if (pgetl__buf_reserve(&op->buf, 2) != PGETL_OK)
            return pgetl__error_oom(err, "async copy end");
        pgetl__buf_be16_unchecked(&op->buf, UINT16_MAX);
    }
    op->end_requested = true;
    return PGETL_OK;
}

void pgetl_async_copy_destroy(pgetl_async_copy *op) {
    if (!op)
        return;
    if (op->state != AC_DONE && PQstatus(op->pg) == CONNECTION_OK) {
        /* Blocking mode for the clean-up: the link must end up idle. The
         * waits are marked, so io_timeout_s bounds them (a stalled server). */
        pgetl__conn_wait_begin(op->pg);
        PQsetnonblocking(op->pg, 0);
        if (op->state == AC_STREAMING)
            PQputCopyEnd(op->pg, "COPY abandoned by the caller");
        pgetl__async_drain(op->pg);
        pgetl__conn_wait_end(op->pg);
    }
    pgetl__async_restore_mode(op->pg, op->was_nonblocking);
    pgetl__buf_reset(&op->buf);
    pgetl__free(op->types);
    pgetl__free(op);
}
