/*
 * Sending a batch: one COPY of its rows, raw, re-encoded as text, or as the
 * binary tuples convert.c made, with bad-row isolation when max_errors is
 * set (rows the conversion left as suspects follow in a COPY of their
 * own). Errors name the input file and line of the row the server refused.
 */
#include "load/load_int.h"

#include "copy/enc.h"

#include <stdlib.h>

static void row_span(const pgetl_load_batch *b, int64_t i, size_t *off, size_t *len) {
    size_t s = i ? b->row_end[i - 1] : 0;
    *off = s;
    *len = b->row_end[i] - s;
}

/* Which rows of a batch one COPY carries, and how. */
typedef struct send_plan {
    const int64_t *map; /* the batch rows, in order; NULL: rows 0 .. n-1 */
    int64_t n;
    bool binary; /* b->bin's tuples, else the input's bytes (raw) or text re-encoding */
    bool raw;
} send_plan;

static int64_t plan_row(const send_plan *p, int64_t k) {
    return p->map ? p->map[k] : k;
}

typedef struct send_state {
    pgetl_load_ctx *ctx;
    pgetl_load_batch *b;
    const send_plan *plan;
    /*
     * hold: rejects wait in b->held instead of going to the reject file, so
     * a batch sent as two COPYs (binary rows, then suspects) still writes
     * its rejects in input order; the second COPY merges them in.
     */
    bool hold;
    int64_t nheld;
    size_t held_at;  /* next held entry to write */
    pgetl_error err; /* a failure inside the reject callback */
    bool failed;
} send_state;

/* A held reject in b->held: its batch row, SQLSTATE, message length, then the message. */
typedef struct held_reject {
    int64_t row;
    char sqlstate[6];
    uint32_t msg_len;
} held_reject;

static pgetl_code add_reject(send_state *s, int64_t i, const char *sqlstate, const char *message) {
    size_t off, len;
    row_span(s->b, i, &off, &len);
    /* The original bytes, not the re-encoded ones: the reject file is the input's. */
    return pgetl__rejects_add(s->ctx->rejects, s->b->file->path, s->b->row_line[i], sqlstate,
                              message, s->b->data.data + off, len, &s->err);
}

/* Writes the held rejects of rows before `row` (all of them: INT64_MAX). */
static pgetl_code write_held(send_state *s, int64_t row) {
    pgetl_buf *h = &s->b->held;
    while (s->held_at < h->len) {
        held_reject hr;
        memcpy(&hr, h->data + s->held_at, sizeof hr);
        if (hr.row >= row)
            break;
        const char *msg = h->data + s->held_at + sizeof hr;
        char text[sizeof s->err.message];
        size_t n = hr.msg_len < sizeof text - 1 ? hr.msg_len : sizeof text - 1;
        memcpy(text, msg, n);
        text[n] = '\0';
        s->held_at += sizeof hr + hr.msg_len;
        s->nheld--;
        if (add_reject(s, hr.row, hr.sqlstate, text) != PGETL_OK)
            return s->err.code;
    }
    return PGETL_OK;
}

static pgetl_code hold_reject(send_state *s, int64_t i, const pgetl_reject *rj) {
    held_reject hr = {.row = i};
    memcpy(hr.sqlstate, rj->sqlstate, sizeof hr.sqlstate);
    size_t n = rj->message ? strlen(rj->message) : 0;
    hr.msg_len = (uint32_t)n;
    if (pgetl__buf_append(&s->b->held, &hr, sizeof hr) != PGETL_OK ||
        pgetl__buf_append(&s->b->held, rj->message ? rj->message : "", n) != PGETL_OK)
        return pgetl__error_oom(&s->err, "held rejects");
    s->nheld++;
    return PGETL_OK;
}

static int on_reject(void *user, const pgetl_reject *rj) {
    send_state *s = user;
    int64_t k = rj->batch_row;
    if (k < 0 || k >= s->plan->n)
        k = rj->row_index;
    if (k < 0 || k >= s->plan->n) {
        pgetl_error_set(&s->err, PGETL_ESTATE, "reject for unknown row %lld",
                        (long long)rj->row_index);
        s->failed = true;
        return 1;
    }
    int64_t i = plan_row(s->plan, k);
    if (s->plan->binary && strcmp(rj->sqlstate, "23514") == 0) {
        /* A CHECK refused a converted row: later batches are screened (screen.c). */
        pthread_mutex_lock(&s->ctx->mu);
        if (s->ctx->screen_state == PGETL_SCREEN_IDLE)
            s->ctx->screen_state = PGETL_SCREEN_WANTED;
        pthread_mutex_unlock(&s->ctx->mu);
    }
    pgetl_code rc = s->hold ? hold_reject(s, i, rj) : write_held(s, i);
    if (rc == PGETL_OK && !s->hold)
        rc = add_reject(s, i, rj->sqlstate, rj->message);
    if (rc != PGETL_OK) {
        s->failed = true;
        return 1;
    }
    return pgetl__rejects_count(s->ctx->rejects) + s->nheld > s->ctx->max_errors ? 1 : 0;
}

/*
 * Appends one value in COPY text format (NULL is \N). A NUL byte goes on
 * as it is: the server refuses the row (22021) as it would from the file,
 * so the row is rejected with the server's own words.
 */
static void encode_text_field(pgetl_buf *out, const char *p, size_t n, bool null) {
    if (null) {
        pgetl__enc_text_null(out);
        return;
    }
    size_t at;
    while (!pgetl__enc_text_value(out, p, n, &at)) {
        pgetl__buf_byte_unchecked(out, '\0');
        p += at + 1;
        n -= at + 1;
    }
}

static pgetl_code put_row(pgetl_load_ctx *ctx, pgetl_copy *copy, pgetl_load_batch *b, int64_t i,
                          bool binary, bool raw, pgetl_error *err) {
    size_t off, len;
    if (binary) {
        size_t s = i ? b->bin_end[i - 1] : 0;
        pgetl_buf *out = pgetl__copy_row_begin(copy, b->bin_end[i] - s, err);
        if (!out)
            return err ? err->code : PGETL_ESTATE;
        pgetl__buf_append_unchecked(out, b->bin.data + s, b->bin_end[i] - s);
        return pgetl__copy_row_end(copy, err);
    }
    row_span(b, i, &off, &len);
    const char *row = b->data.data + off;
    if (raw) {
        bool eod = pgetl__is_eod_marker(row, len);
        pgetl_buf *out = pgetl__copy_row_begin(copy, len + 2, err);
        if (!out)
            return err ? err->code : PGETL_ESTATE;
        if (eod) {
            /*
             * A lone \. is COPY's end-of-data marker; quoted it is the value
             * it means. The line end is kept (CRLF streams must stay CRLF).
             */
            pgetl__buf_append_unchecked(out, "\"\\.\"", 4);
            pgetl__buf_append_unchecked(out, row + 2, len - 2);
        } else {
            pgetl__buf_append_unchecked(out, row, len);
        }
        return pgetl__copy_row_end(copy, err);
    }
    int nf;
    pgetl_code rc = pgetl__csv_split(&ctx->dialect, ctx->null_str, ctx->null_len, row, len,
                                     &b->scratch, b->fields, b->nfields_cap, &nf, err);
    if (rc == PGETL_OK && nf > b->nfields_cap) {
        pgetl_csv_field *f = pgetl__realloc(b->fields, sizeof *f * (size_t)nf);
        if (!f)
            return pgetl__error_oom(err, "load fields");
        b->fields = f;
        b->nfields_cap = nf;
        rc = pgetl__csv_split(&ctx->dialect, ctx->null_str, ctx->null_len, row, len, &b->scratch,
                              b->fields, b->nfields_cap, &nf, err);
    }
    if (rc != PGETL_OK) {
        pgetl_error_prefix(err, "%s line %lld: ", b->file->path, (long long)b->row_line[i]);
        return rc;
    }
    /* Worst case: every byte escaped, plus \N and a separator per field. */
    pgetl_buf *out = pgetl__copy_row_begin(copy, 2 * b->scratch.len + 3 * (size_t)nf + 1, err);
    if (!out)
        return err ? err->code : PGETL_ESTATE;
    for (int k = 0; k < nf; k++) {
        if (k)
            pgetl__buf_byte_unchecked(out, '\t');
        encode_text_field(out, b->scratch.data + b->fields[k].off, b->fields[k].len,
                          b->fields[k].null);
    }
    pgetl__buf_byte_unchecked(out, '\n');
    return pgetl__copy_row_end(copy, err);
}

/* The server's "line N" (from CONTEXT, else "row N" in the message), 1-based; 0 if none. */
static int64_t error_row(const pgetl_error *e) {
    const char *p = strstr(e->context, ", line ");
    if (p)
        return strtoll(p + 7, NULL, 10);
    p = strstr(e->message, " row ");
    if (p)
        return strtoll(p + 5, NULL, 10);
    return 0;
}

/*
 * COPY's line counter (copyfromparse.c) for CSV: each row adds one, plus
 * every character inside quotes equal to the line-end style's last-but-one
 * marker: '\r' while the style is unknown (all of the first row) or CRLF,
 * '\n' once the first row ended in a bare LF. This counts such characters in
 * one row, following quotes and escapes as the scanner does.
 */
static int64_t inquote_count(const pgetl_csv_dialect *d, const char *p, size_t n, char ch) {
    int64_t k = 0;
    bool in_quote = false, last_was_esc = false;
    char esc = d->escape == d->quote ? '\0' : d->escape;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_quote && c == esc)
            last_was_esc = !last_was_esc;
        if (c == d->quote && !last_was_esc)
            in_quote = !in_quote;
        if (c != esc)
            last_was_esc = false;
        k += in_quote && c == ch;
    }
    return k;
}

/*
 * The row holding the server's "line N" of this COPY, -1 when none. Only
 * called after an error, so walking the batch's rows again costs nothing.
 */
static int64_t row_of_line(const pgetl_load_ctx *ctx, const pgetl_load_batch *b, const send_plan *p,
                           int64_t line) {
    if (line < 1)
        return -1;
    if (p->binary || !p->raw || ctx->dialect.text)
        return line <= p->n ? plan_row(p, line - 1) : -1;
    bool crlf = false;
    int64_t at = 1; /* COPY line where the k-th row sent starts */
    for (int64_t k = 0; k < p->n; k++) {
        size_t off, len;
        row_span(b, plan_row(p, k), &off, &len);
        if (k == 0)
            crlf = len >= 2 && b->data.data[off + len - 2] == '\r';
        char ch = (k == 0 || crlf) ? '\r' : '\n';
        int64_t next = at + 1 + inquote_count(&ctx->dialect, b->data.data + off, len, ch);
        if (line < next)
            return plan_row(p, k);
        at = next;
    }
    return -1;
}

/*
 * One COPY of the rows `p` names. With isolation (max_rejects >= 0) the
 * writer's estimate of rows between rejects comes from and goes back to
 * *iso, so each batch starts with the window earlier ones taught.
 */
static pgetl_code send_rows(send_state *st, pgetl_conn *conn, const send_plan *p,
                            int64_t max_rejects, pgetl__iso_est *iso, pgetl_copy_stats *cs,
                            pgetl_error *err) {
    pgetl_load_ctx *ctx = st->ctx;
    pgetl_load_batch *b = st->b;
    memset(cs, 0, sizeof *cs);
    st->plan = p;
    pgetl_copy_options co;
    pgetl_copy_options_init(&co);
    co.format = p->binary ? PGETL_COPY_BINARY : p->raw ? ctx->copy_format : PGETL_COPY_TEXT;
    co.batch_rows = p->n;
    co.chunk_bytes = PGETL_LOAD_COPY_MESSAGE;
    co.max_rejects = max_rejects;
    co.on_reject = on_reject;
    co.reject_user = st;
    co.freeze = ctx->freeze && max_rejects < 0;
    pgetl_copy *copy = NULL;
    pgetl_code rc = pgetl__copy_begin_resolved(conn, ctx->info, b->file->colidx, b->file->ncols,
                                               &co, &copy, err);
    if (rc != PGETL_OK) {
        /* The COPY never started (the connection died between batches): name the batch. */
        pgetl_error_prefix(err, "%s (rows from line %lld): ", b->file->path,
                           (long long)b->row_line[plan_row(p, 0)]);
        return rc;
    }
    pgetl__copy_set_source_batch(copy, b->index);
    if (max_rejects >= 0) {
        pthread_mutex_lock(&ctx->mu);
        pgetl__copy_set_iso(copy, iso);
        pthread_mutex_unlock(&ctx->mu);
    }
    if (p->raw && !p->binary && !p->map && max_rejects < 0 && !b->has_eod) {
        /* The batch is already what COPY wants: hand it over as it is. */
        rc = pgetl__copy_put_rows(copy, b->data.data, b->row_end, b->nrows, b->breaks, b->nbreaks,
                                  err);
    } else {
        for (int64_t k = 0; k < p->n && rc == PGETL_OK; k++)
            rc = put_row(ctx, copy, b, plan_row(p, k), p->binary, p->raw, err);
    }
    if (max_rejects >= 0) {
        pthread_mutex_lock(&ctx->mu);
        pgetl__copy_get_iso(copy, iso);
        pthread_mutex_unlock(&ctx->mu);
    }
    pgetl_error e2;
    pgetl_code rc2;
    if (rc != PGETL_OK && rc != PGETL_ESERVER && rc != PGETL_ECONNLOST && rc != PGETL_EABORTED &&
        rc != PGETL_EREJECTS) {
        /* Our own failure (bad quoting in a re-encoded row, memory): abandon the COPY. */
        pgetl_copy_abort(copy, "pgetl: load failed");
        rc2 = rc;
        pgetl__error_copy(&e2, err);
    } else {
        rc2 = pgetl_copy_end(copy, cs, &e2);
    }
    if (st->failed)
        return pgetl__error_copy(err, &st->err);
    if (max_rejects >= 0 && pgetl__rejects_count(ctx->rejects) + st->nheld > ctx->max_errors)
        return pgetl_error_set(err, PGETL_EREJECTS,
                               "more than %lld rows rejected (max_errors); see the reject log",
                               (long long)ctx->max_errors);
    if (rc2 == PGETL_OK && rc == PGETL_OK)
        return PGETL_OK;
    if (rc2 == PGETL_OK) /* cannot happen: a failed row put leaves the session failed */
        return rc;
    pgetl__error_copy(err, &e2);
    if (rc == rc2 && strstr(err->message, b->file->path))
        return rc2; /* already names the file and line */
    /* A lost connection is no row's fault, whatever line its CONTEXT had reached. */
    int64_t row = -1;
    if (rc2 == PGETL_ESERVER && max_rejects < 0) {
        row = row_of_line(ctx, b, p, error_row(&e2));
    } else if (rc2 == PGETL_ESERVER) {
        /*
         * Under isolation CONTEXT's line counts from the window that failed;
         * the writer has already turned it into "row N" of this COPY.
         */
        const char *r = strstr(e2.message, " row ");
        int64_t n = r ? strtoll(r + 5, NULL, 10) : 0;
        row = n >= 1 && n <= p->n ? plan_row(p, n - 1) : -1;
    }
    if (row >= 0)
        pgetl_error_prefix(err, "%s line %lld: ", b->file->path, (long long)b->row_line[row]);
    else
        pgetl_error_prefix(err, "%s (rows from line %lld): ", b->file->path,
                           (long long)b->row_line[plan_row(p, 0)]);
    return rc2;
}

/*
 * Screens binary batch b for rows a CHECK would refuse once a CHECK has
 * refused one (screen.c); the first sender to need the screen plans it.
 */
static pgetl_code screen(pgetl_load_ctx *ctx, pgetl_conn *conn, pgetl_load_batch *b,
                         pgetl_error *err) {
    pthread_mutex_lock(&ctx->mu);
    pgetl_screen_state state = ctx->screen_state;
    if (state == PGETL_SCREEN_WANTED)
        ctx->screen_state = PGETL_SCREEN_PLANNING;
    pthread_mutex_unlock(&ctx->mu);
    pgetl_code rc = PGETL_OK;
    if (state == PGETL_SCREEN_WANTED) {
        pgetl_load_screen *s = NULL;
        rc = pgetl__screen_plan(conn, ctx->info, &s, err);
        state = rc == PGETL_OK && pgetl__screen_count(s) > 0 ? PGETL_SCREEN_ON : PGETL_SCREEN_OFF;
        pthread_mutex_lock(&ctx->mu);
        ctx->screen = s;
        ctx->screen_state = state;
        /* The rejects the estimate came from now go with the suspects. */
        if (state == PGETL_SCREEN_ON)
            ctx->iso = (pgetl__iso_est){0};
        pthread_mutex_unlock(&ctx->mu);
    }
    if (rc == PGETL_OK && state == PGETL_SCREEN_ON) {
        bool failed = false;
        int64_t flagged;
        rc = pgetl__screen_batch(ctx->screen, ctx->info, conn, b, &flagged, &failed, err);
        pthread_mutex_lock(&ctx->mu);
        ctx->rows_screened += flagged;
        if (failed)
            ctx->screen_state = PGETL_SCREEN_OFF;
        pthread_mutex_unlock(&ctx->mu);
    }
    /* Only the connection (or memory) fails here: name the batch, as for a COPY not started. */
    if (rc != PGETL_OK)
        pgetl_error_prefix(err, "%s (rows from line %lld): ", b->file->path,
                           (long long)b->row_line[0]);
    return rc;
}

pgetl_code pgetl__batch_send(pgetl_load_ctx *ctx, pgetl_conn *conn, pgetl_load_batch *b,
                             int64_t max_rejects, int64_t *loaded_out, pgetl_error *err) {
    *loaded_out = 0;
    if (b->nrows == 0)
        return PGETL_OK;
    /*
     * With isolation, a CSV batch holding multi-line rows is re-encoded as
     * text (one row per line), so the server's line number is the row and a
     * bad row can never be mistaken for its neighbour.
     */
    bool raw = ctx->raw && !(max_rejects >= 0 && b->multiline && !ctx->dialect.text);
    pgetl_copy_stats cs;
    pgetl_code rc;
    send_state st = {.ctx = ctx, .b = b};
    if (b->binary && max_rejects >= 0 && (rc = screen(ctx, conn, b, err)) != PGETL_OK)
        return rc;
    if (!b->binary || b->nsuspect == 0) {
        send_plan all = {NULL, b->nrows, b->binary, raw};
        rc = send_rows(&st, conn, &all, max_rejects, &ctx->iso, &cs, err);
        *loaded_out = cs.rows_loaded;
    } else {
        /*
         * The converted rows go binary, then the suspects as the input had
         * them, so the server decides each of those itself (they load after
         * the rest of their batch). They are mostly bad rows, so their COPY
         * starts with the smallest window rather than the batch's estimate.
         */
        if (!b->send_map && !(b->send_map = pgetl__malloc(sizeof(int64_t) * (size_t)b->cap)))
            return pgetl__error_oom(err, "load batch");
        int64_t n = 0;
        for (int64_t r = 0, k = 0; r < b->nrows; r++) {
            if (k < b->nsuspect && b->suspect[k] == r)
                k++;
            else
                b->send_map[n++] = r;
        }
        pgetl__buf_clear(&b->held);
        send_plan good = {b->send_map, n, true, raw};
        st.hold = max_rejects >= 0;
        rc = send_rows(&st, conn, &good, max_rejects, &ctx->iso, &cs, err);
        *loaded_out = cs.rows_loaded;
        st.hold = false;
        if (rc == PGETL_OK) {
            send_plan suspects = {b->suspect, b->nsuspect, false, raw};
            pgetl__iso_est iso = {.gap_avg = 1};
            rc = send_rows(&st, conn, &suspects, max_rejects - cs.rows_rejected, &iso, &cs, err);
            *loaded_out += cs.rows_loaded;
        }
        /* Held rejects after the last suspect, or all of them when the COPY failed. */
        if (write_held(&st, INT64_MAX) != PGETL_OK && rc == PGETL_OK)
            rc = pgetl__error_copy(err, &st.err);
    }
    if (rc != PGETL_OK)
        *loaded_out = 0;
    if (rc == PGETL_OK && b->binary) {
        pthread_mutex_lock(&ctx->mu);
        ctx->batches_binary++;
        pthread_mutex_unlock(&ctx->mu);
    }
    return rc;
}
