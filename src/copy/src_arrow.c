/*
 * Arrow ingest (the spec's copy_from_polars): an ArrowArrayStream loaded
 * into a table through binary COPY.
 *
 * Order of work, so that nothing is sent unless it can all be encoded:
 *   1. read the schema and batches up to the first non-empty one (an empty
 *      stream is logged and skipped, as the spec says);
 *   2. match the requested columns to the data's fields by exact name (all
 *      missing ones named in one error), look the table up, resolve the
 *      columns against it, and pick one encoder per column from the
 *      (Arrow type, column type) pair: refused pairs fail here;
 *   3. per batch: validate the arrays' structure, bind the encoders to the
 *      buffers, encode rows straight into the writer's buffer (one reserve
 *      per row, fixed-width big-endian stores, no allocation).
 * Any failure after the COPY started aborts it (the writer's abort), so the
 * connection leaves COPY mode and the caller only has to roll back.
 *
 * Ownership: the stream is consumed. Every schema and batch taken from it is
 * released exactly once, on every path; the stream itself last.
 */
#include "copy/arrow_int.h"
#include "copy/copy_int.h"

#include <stdio.h>

/* Rows per validity word: the encoder loop loads one 64-bit word per column and block. */
#define BLOCK_ROWS 64

typedef struct arrow_run {
    const char *table;
    struct ArrowArrayStream *stream;
    struct ArrowSchema schema;
    struct ArrowArray batch; /* the batch being worked on (release == NULL: none) */
    int64_t batch_index;     /* stream position of `batch`                         */
    pgetl_arrow_field *fields;
    int nfields;
    int ncols;
    int *field_of;             /* requested column -> field index                    */
    int *colidx;               /* requested column -> table column index             */
    pgetl_arrow_col *cols;     /* ncols encoders, then ncols child slots             */
    pgetl_arrow_col **varcols; /* the columns with a size() function                 */
    int nvar;
    size_t fixed_row; /* 2 (field count) + every column's fixed bytes       */
    pgetl_table_info *info;
    pgetl_copy *copy;
} arrow_run;

void pgetl_arrow_options_init(pgetl_arrow_options *opts) {
    memset(opts, 0, sizeof *opts);
    opts->chunk_bytes = PGETL_COPY_CHUNK;
    opts->max_rejects = -1;
}

static void release_batch(arrow_run *r) {
    if (r->batch.release)
        r->batch.release(&r->batch);
    r->batch.release = NULL;
}

static pgetl_code stream_error(arrow_run *r, int errnum, const char *what, pgetl_error *err) {
    const char *msg = r->stream->get_last_error ? r->stream->get_last_error(r->stream) : NULL;
    return pgetl_error_set(err, PGETL_EARROW, "Arrow stream %s failed (error %d): %s", what, errnum,
                           msg && msg[0] ? msg : "(the producer gave no message)");
}

/* Reads the next batch into r->batch; *end_out is set at the end of the stream. */
static pgetl_code next_batch(arrow_run *r, bool *end_out, pgetl_error *err) {
    release_batch(r);
    memset(&r->batch, 0, sizeof r->batch);
    int rc = r->stream->get_next(r->stream, &r->batch);
    if (rc != 0) {
        /* A failed get_next must leave `out` released; do not trust that. */
        if (r->batch.release)
            release_batch(r);
        char what[64];
        snprintf(what, sizeof what, "get_next at batch %lld", (long long)(r->batch_index + 1));
        return stream_error(r, rc, what, err);
    }
    r->batch_index++;
    *end_out = r->batch.release == NULL;
    return PGETL_OK;
}

static void log_no_rows(const char *table) {
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_INFO, "copy_from_arrow")) {
        char msg[PGETL_LOG_LINE_MAX / 2];
        snprintf(msg, sizeof msg, "copy_from_arrow: no rows for table=%s; skipping", table);
        pgetl__log_str(&l, "msg", msg);
        pgetl__log_str(&l, "table", table);
        pgetl__log_end(&l);
    }
}

/* Appends `name` to a "[a, b]" list kept within `size`; "..." marks a cut. */
static void list_add(char *buf, size_t size, size_t *len, const char *name, bool first) {
    int n = snprintf(buf + *len, size - *len, "%s%s", first ? "" : ", ", name);
    if (n < 0 || (size_t)n >= size - *len) {
        /* Keep room for "...]". */
        if (size > 5) {
            memcpy(buf + size - 5, "...", 4);
            *len = size - 2;
        }
        return;
    }
    *len += (size_t)n;
}

static pgetl_code match_fields(arrow_run *r, const char *const *names, pgetl_error *err) {
    char missing[768];
    size_t mlen = 0;
    int nmissing = 0;
    for (int i = 0; i < r->ncols; i++) {
        r->field_of[i] = -1;
        if (!names[i])
            return pgetl_error_set(err, PGETL_EINVAL,
                                   "copy_from_arrow into %s: column name %d is NULL", r->table, i);
        for (int f = 0; f < r->nfields; f++) {
            if (strcmp(r->fields[f].name, names[i]) == 0) {
                r->field_of[i] = f;
                break;
            }
        }
        if (r->field_of[i] < 0 && mlen < sizeof missing - 2)
            list_add(missing, sizeof missing, &mlen, names[i], nmissing++ == 0);
    }
    if (nmissing)
        return pgetl_error_set(err, PGETL_ESCHEMA,
                               "data missing required columns for COPY into %s: [%s]", r->table,
                               missing);
    return PGETL_OK;
}

static pgetl_code choose_encoders(arrow_run *r, pgetl_error *err) {
    r->fixed_row = 2;
    r->nvar = 0;
    for (int i = 0; i < r->ncols; i++) {
        pgetl_arrow_col *c = &r->cols[i];
        pgetl_code rc =
            pgetl__arrow_col_choose(c, &r->cols[r->ncols + i], &r->fields[r->field_of[i]],
                                    &r->info->columns[r->colidx[i]], err);
        if (rc != PGETL_OK)
            return rc;
        r->fixed_row += c->fixed;
        if (c->size)
            r->varcols[r->nvar++] = c;
    }
    return PGETL_OK;
}

/* The PostgreSQL error code for an encoder's refusal of one value. */
static pgetl_code value_code(const char *why) {
    return (strstr(why, "out of range") || strstr(why, "does not fit")) ? PGETL_EOVERFLOW
                                                                        : PGETL_EDATA;
}

static pgetl_code value_error(arrow_run *r, const pgetl_arrow_col *c, int64_t row, const char *why,
                              pgetl_error *err) {
    char desc[160];
    pgetl__arrow_field_describe(c->field, desc, sizeof desc);
    return pgetl_error_set(err, value_code(why),
                           "column \"%s\" (Arrow \"%s\" into %s), batch %lld row %lld: %s",
                           c->column->name, desc, c->column->type_name, (long long)r->batch_index,
                           (long long)row, why);
}

static pgetl_code encode_batch(arrow_run *r, pgetl_error *err) {
    int64_t n = r->batch.length;
    int ncols = r->ncols;
    for (int i = 0; i < ncols; i++)
        pgetl__arrow_col_bind(&r->cols[i], r->batch.children[r->field_of[i]], r->batch.offset);
    pgetl__copy_set_source_batch(r->copy, r->batch_index);
    for (int64_t r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
        int m = n - r0 < BLOCK_ROWS ? (int)(n - r0) : BLOCK_ROWS;
        for (int i = 0; i < ncols; i++)
            r->cols[i].vword = pgetl__arrow_validity_word(&r->cols[i].v, r0, m);
        for (int k = 0; k < m; k++) {
            int64_t row = r0 + k;
            size_t need = r->fixed_row;
            for (int v = 0; v < r->nvar; v++) {
                const pgetl_arrow_col *c = r->varcols[v];
                if ((c->vword >> k) & 1)
                    need += c->size(c, row);
            }
            pgetl_buf *b = pgetl__copy_row_begin(r->copy, need, err);
            if (!b)
                return err->code;
            pgetl__buf_be16_unchecked(b, (uint16_t)ncols);
            for (int i = 0; i < ncols; i++) {
                const pgetl_arrow_col *c = &r->cols[i];
                if (!((c->vword >> k) & 1)) {
                    pgetl__buf_be32_unchecked(b, (uint32_t)-1);
                    continue;
                }
                const char *why = c->enc(c, row, b);
                if (why)
                    return value_error(r, c, row, why, err);
            }
            pgetl_code rc = pgetl__copy_row_end(r->copy, err);
            if (rc != PGETL_OK)
                return rc;
        }
    }
    return PGETL_OK;
}

/* Steps 2 and 3 of the design note, from the first non-empty batch on. */
static pgetl_code load(arrow_run *r, pgetl_conn *conn, const pgetl_arrow_options *opts,
                       pgetl_copy_stats *stats, pgetl_error *err) {
    pgetl_code rc = pgetl__arrow_schema_parse(&r->schema, &r->fields, &r->nfields, err);
    if (rc != PGETL_OK)
        return rc;
    const char **all = NULL;
    const char *const *names = opts->columns;
    r->ncols = opts->columns ? opts->ncolumns : r->nfields;
    if (r->ncols < 1)
        return pgetl_error_set(err, PGETL_EINVAL, "copy_from_arrow into %s: no columns to load",
                               r->table);
    r->field_of = pgetl__calloc((size_t)r->ncols, sizeof *r->field_of);
    r->colidx = pgetl__calloc((size_t)r->ncols, sizeof *r->colidx);
    r->cols = pgetl__calloc(2 * (size_t)r->ncols, sizeof *r->cols);
    r->varcols = pgetl__calloc((size_t)r->ncols, sizeof *r->varcols);
    if (!names)
        names = all = pgetl__calloc((size_t)r->ncols, sizeof *all);
    if (!r->field_of || !r->colidx || !r->cols || !r->varcols || !names) {
        pgetl__free(all);
        return pgetl__error_oom(err, "copy_from_arrow");
    }
    if (all)
        for (int i = 0; i < r->ncols; i++)
            all[i] = r->fields[i].name;

    rc = match_fields(r, names, err);
    for (int i = 0; rc == PGETL_OK && i < r->ncols; i++) {
        /* A column of a type pgetl cannot ingest: parse it again for the reason. */
        const pgetl_arrow_field *f = &r->fields[r->field_of[i]];
        if (f->type.kind == PGETL_AK_INVALID) {
            pgetl_arrow_field again;
            rc = pgetl__arrow_field_parse(r->schema.children[r->field_of[i]], &again, err);
            if (rc == PGETL_OK)
                rc = pgetl_error_set(err, PGETL_EUNSUPPORTED,
                                     "field \"%s\": type \"%s\" is not supported", f->name,
                                     f->format);
        }
    }
    if (rc == PGETL_OK)
        rc = pgetl__catalog_table(conn, r->table, &r->info, err);
    if (rc == PGETL_OK)
        rc = pgetl__table_resolve_columns(r->info, names, r->ncols, r->colidx, err);
    pgetl__free(all);
    if (rc == PGETL_OK)
        rc = choose_encoders(r, err);
    if (rc != PGETL_OK)
        return rc;
    rc = pgetl__arrow_validate_batch(r->fields, r->nfields, r->field_of, r->ncols, &r->batch, err);
    if (rc != PGETL_OK) {
        pgetl_error_prefix(err, "batch %lld: ", (long long)r->batch_index);
        return rc;
    }

    pgetl_copy_options co;
    pgetl_copy_options_init(&co);
    co.format = PGETL_COPY_BINARY;
    co.chunk_bytes = opts->chunk_bytes;
    co.max_rejects = opts->max_rejects;
    co.on_reject = opts->on_reject;
    co.reject_user = opts->reject_user;
    rc = pgetl__copy_begin_resolved(conn, r->info, r->colidx, r->ncols, &co, &r->copy, err);
    if (rc != PGETL_OK)
        return rc;

    int64_t batches = 0;
    for (;;) {
        if (r->batch.length > 0) {
            rc = encode_batch(r, err);
            if (rc != PGETL_OK)
                return rc;
            batches++;
        }
        bool end = false;
        rc = next_batch(r, &end, err);
        if (rc != PGETL_OK)
            return rc;
        if (end)
            break;
        rc = pgetl__arrow_validate_batch(r->fields, r->nfields, r->field_of, r->ncols, &r->batch,
                                         err);
        if (rc != PGETL_OK) {
            pgetl_error_prefix(err, "batch %lld: ", (long long)r->batch_index);
            return rc;
        }
    }
    pgetl_copy *copy = r->copy;
    r->copy = NULL; /* end frees the session whatever happens */
    rc = pgetl_copy_end(copy, stats, err);
    if (rc == PGETL_OK)
        stats->batches = batches;
    return rc;
}

pgetl_code pgetl_copy_from_arrow_opts(pgetl_conn *conn, const char *table,
                                      struct ArrowArrayStream *stream,
                                      const pgetl_arrow_options *opts, pgetl_copy_stats *stats_out,
                                      pgetl_error *err) {
    pgetl_copy_stats stats;
    memset(&stats, 0, sizeof stats);
    int64_t t0 = pgetl__now_ns();
    if (stats_out)
        memset(stats_out, 0, sizeof *stats_out);
    if (!stream || !stream->release)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "copy_from_arrow: the stream is NULL or already released");
    if (!conn || !table || !stream->get_schema || !stream->get_next) {
        stream->release(stream);
        return pgetl_error_set(err, PGETL_EINVAL,
                               "copy_from_arrow: connection, table and a complete stream are "
                               "required");
    }
    pgetl_arrow_options dflt;
    pgetl_arrow_options_init(&dflt);
    if (!opts)
        opts = &dflt;

    /* Internal calls report into `e`, so a NULL err never hides a failure's code. */
    pgetl_error e;
    pgetl_error_init(&e);
    arrow_run r;
    memset(&r, 0, sizeof r);
    r.table = table;
    r.stream = stream;
    r.batch_index = -1;
    pgetl_code rc = PGETL_OK;

    int src = stream->get_schema(stream, &r.schema);
    if (src != 0) {
        if (r.schema.release)
            r.schema.release(&r.schema);
        r.schema.release = NULL;
        rc = stream_error(&r, src, "get_schema", &e);
        goto done;
    }
    if (opts->columns && opts->ncolumns < 1) {
        rc =
            pgetl_error_set(&e, PGETL_EINVAL, "copy_from_arrow into %s: no columns to load", table);
        goto done;
    }
    /* Skip leading empty batches; an entirely empty stream is not an error. */
    bool end = false;
    do {
        rc = next_batch(&r, &end, &e);
    } while (rc == PGETL_OK && !end && r.batch.length == 0);
    if (rc != PGETL_OK)
        goto done;
    if (end) {
        log_no_rows(table);
        goto done;
    }
    rc = load(&r, conn, opts, &stats, &e);

done:
    if (r.copy) {
        /* Leaves COPY mode with an error; the caller rolls the transaction back. */
        pgetl_copy_abort(r.copy, e.message[0] ? e.message : "pgetl: Arrow ingest failed");
    }
    release_batch(&r);
    if (r.schema.release)
        r.schema.release(&r.schema);
    stream->release(stream);
    pgetl__table_info_free(r.info);
    pgetl__free(r.fields);
    pgetl__free(r.field_of);
    pgetl__free(r.colidx);
    pgetl__free(r.cols);
    pgetl__free(r.varcols);
    stats.seconds = (double)(pgetl__now_ns() - t0) / 1e9;
    if (stats_out)
        *stats_out = stats;
    if (rc != PGETL_OK) {
        pgetl__error_copy(err, &e);
        return rc;
    }
    pgetl_logline l;
    if (stats.rows_read && pgetl__log_begin(&l, PGETL_LOG_INFO, "copy_from_arrow_done")) {
        pgetl__log_str(&l, "table", table);
        pgetl__log_int(&l, "rows", stats.rows_loaded);
        pgetl__log_int(&l, "rejected", stats.rows_rejected);
        pgetl__log_int(&l, "batches", stats.batches);
        pgetl__log_double(&l, "seconds", stats.seconds);
        pgetl__log_end(&l);
    }
    if (err)
        pgetl_error_init(err);
    return PGETL_OK;
}

pgetl_code pgetl_copy_from_arrow(pgetl_conn *conn, const char *table,
                                 struct ArrowArrayStream *stream, const char *const *columns,
                                 int ncolumns, pgetl_copy_stats *stats_out, pgetl_error *err) {
    pgetl_arrow_options opts;
    pgetl_arrow_options_init(&opts);
    opts.columns = columns;
    opts.ncolumns = ncolumns;
    return pgetl_copy_from_arrow_opts(conn, table, stream, &opts, stats_out, err);
}
