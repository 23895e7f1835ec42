/*
 * Batches: whole rows read straight into the batch's own buffer (the batch
 * is the read window, so the bytes are copied once on their way to COPY),
 * cut at batch_rows rows or PGETL_LOAD_BATCH_BYTES bytes, whichever comes
 * first. The bytes of a row that straddles the cut are carried into the
 * next batch with the scanner state, so a quoted field spanning lines never
 * straddles two batches and no row is repeated or dropped.
 *
 * Each batch goes to the server as one COPY statement. That keeps the
 * server's "line N" (= row N, since the header is never sent) inside a
 * batch whose rows' input lines are known, so every error names the input
 * line, and it lets jobs > 1 deal batches to connections (batch_send.c).
 */
#include "load/load_int.h"

#include <stdlib.h>

pgetl_code pgetl__batch_init(pgetl_load_batch *b, int64_t cap_rows, pgetl_error *err) {
    memset(b, 0, sizeof *b);
    pgetl__buf_init(&b->data);
    pgetl__buf_init(&b->scratch);
    pgetl__buf_init(&b->bin);
    pgetl__buf_init(&b->held);
    b->cap = cap_rows;
    b->row_end = pgetl__malloc(sizeof(size_t) * (size_t)cap_rows);
    b->row_line = pgetl__malloc(sizeof(int64_t) * (size_t)cap_rows);
    b->nfields_cap = 64;
    b->fields = pgetl__malloc(sizeof(pgetl_csv_field) * (size_t)b->nfields_cap);
    if (!b->row_end || !b->row_line || !b->fields ||
        pgetl__buf_reserve(&b->data, PGETL_LOAD_BLOCK * 2) != PGETL_OK) {
        pgetl__batch_free(b);
        return pgetl__error_oom(err, "load batch");
    }
    return PGETL_OK;
}

void pgetl__batch_free(pgetl_load_batch *b) {
    if (!b)
        return;
    pgetl__buf_reset(&b->data);
    pgetl__buf_reset(&b->scratch);
    pgetl__buf_reset(&b->bin);
    pgetl__buf_reset(&b->held);
    pgetl__free(b->bin_end);
    b->bin_end = NULL;
    pgetl__free(b->suspect);
    b->suspect = NULL;
    pgetl__free(b->send_map);
    b->send_map = NULL;
    pgetl__free(b->breaks);
    b->breaks = NULL;
    for (int k = 0; k < b->nscreen; k++)
        pgetl__buf_reset(&b->screen[k]);
    pgetl__free(b->screen);
    b->screen = NULL;
    b->nscreen = 0;
    pgetl__free(b->row_end);
    pgetl__free(b->row_line);
    pgetl__free(b->fields);
    b->row_end = NULL;
    b->row_line = NULL;
    b->fields = NULL;
}

/* Reads one more block into buf. Sets src->eof at the end of input. */
static pgetl_code read_more(pgetl_load_src *src, pgetl_buf *buf, pgetl_error *err) {
    if (pgetl__buf_reserve(buf, PGETL_LOAD_BLOCK) != PGETL_OK)
        return pgetl__error_oom(err, "load read");
    size_t n;
    pgetl_code rc =
        pgetl__reader_read(src->reader, buf->data + buf->len, PGETL_LOAD_BLOCK, &n, err);
    if (rc != PGETL_OK)
        return rc;
    if (n == 0)
        src->eof = true;
    buf->len += n;
    return PGETL_OK;
}

/*
 * Finds the next row in buf starting at `start`, reading more as needed.
 * *len_out 0: no more rows. The last row of a file may lack its line end;
 * one like the previous row's is appended so that batches stay
 * concatenations of whole lines.
 */
static pgetl_code next_row(const pgetl_load_ctx *ctx, pgetl_load_src *src, pgetl_buf *buf,
                           size_t start, size_t *len_out, pgetl_error *err) {
    *len_out = 0;
    for (;;) {
        size_t len;
        if (start < buf->len && pgetl__csv_scan_row(&ctx->dialect, &src->st, buf->data + start,
                                                    buf->len - start, &len)) {
            *len_out = len;
            src->crlf = len >= 2 && buf->data[start + len - 2] == '\r';
            return PGETL_OK;
        }
        if (src->eof) {
            if (start >= buf->len)
                return PGETL_OK;
            if (src->st.in_quote)
                return pgetl_error_set(err, PGETL_EDATA,
                                       "%s line %lld: unterminated quoted field (a quote opened "
                                       "in this row is never closed before the end of the file)",
                                       src->file->path, (long long)src->line);
            /* COPY wants every line ended alike: CRLF input gets a CRLF. */
            if (pgetl__buf_reserve(buf, 2) != PGETL_OK)
                return pgetl__error_oom(err, "load read");
            if (src->crlf)
                pgetl__buf_byte_unchecked(buf, '\r');
            pgetl__buf_byte_unchecked(buf, '\n');
            continue;
        }
        if (buf->len - start > PGETL_LOAD_MAX_ROW)
            return pgetl_error_set(err, PGETL_EDATA, "%s line %lld: row longer than %zu MiB (%s)",
                                   src->file->path, (long long)src->line, PGETL_LOAD_MAX_ROW >> 20,
                                   src->st.in_quote ? "a quote is never closed"
                                                    : "no line end found");
        pgetl_code rc = read_more(src, buf, err);
        if (rc != PGETL_OK)
            return rc;
    }
}

pgetl_code pgetl__src_open(const pgetl_load_ctx *ctx, const pgetl_load_file *file,
                           pgetl_load_src *src, pgetl_buf *names, pgetl_csv_field **fields_out,
                           int *nnames_out, bool *has_header_out, pgetl_error *err) {
    memset(src, 0, sizeof *src);
    pgetl__buf_init(&src->carry);
    src->file = file;
    src->line = 1;
    pgetl__csv_scan_reset(&src->st);
    *has_header_out = false;
    if (nnames_out)
        *nnames_out = 0;
    pgetl_code rc = pgetl__reader_open(file->path, &src->reader, err);
    if (rc != PGETL_OK)
        return rc;
    /* The BOM: at least 3 bytes (or EOF) before deciding. */
    while (src->carry.len < 3 && !src->eof) {
        rc = read_more(src, &src->carry, err);
        if (rc != PGETL_OK)
            return rc;
    }
    if (ctx->utf8 && src->carry.len >= 3 && memcmp(src->carry.data, "\xEF\xBB\xBF", 3) == 0) {
        memmove(src->carry.data, src->carry.data + 3, src->carry.len - 3);
        src->carry.len -= 3;
    }
    if (!ctx->opts->header)
        return PGETL_OK;
    size_t len;
    rc = next_row(ctx, src, &src->carry, 0, &len, err);
    if (rc != PGETL_OK)
        return rc;
    if (len == 0) {
        src->done = true;
        return PGETL_OK;
    }
    *has_header_out = true;
    if (names) {
        int cap = 64, n = 0;
        pgetl_csv_field *f = pgetl__malloc(sizeof *f * (size_t)cap);
        if (!f)
            return pgetl__error_oom(err, "header");
        rc = pgetl__csv_split(&ctx->dialect, ctx->null_str, ctx->null_len, src->carry.data, len,
                              names, f, cap, &n, err);
        if (rc == PGETL_OK && n > cap) {
            pgetl__free(f);
            cap = n;
            f = pgetl__malloc(sizeof *f * (size_t)cap);
            if (!f)
                return pgetl__error_oom(err, "header");
            rc = pgetl__csv_split(&ctx->dialect, ctx->null_str, ctx->null_len, src->carry.data, len,
                                  names, f, cap, &n, err);
        }
        if (rc != PGETL_OK) {
            pgetl__free(f);
            pgetl_error_prefix(err, "%s line 1 (header): ", file->path);
            return rc;
        }
        *fields_out = f;
        *nnames_out = n;
    }
    src->line += 1 + src->st.nlines;
    memmove(src->carry.data, src->carry.data + len, src->carry.len - len);
    src->carry.len -= len;
    pgetl__csv_scan_next(&src->st);
    return PGETL_OK;
}

void pgetl__src_close(pgetl_load_src *src) {
    pgetl__reader_close(src->reader);
    src->reader = NULL;
    pgetl__buf_reset(&src->carry);
}

static pgetl_code add_break(pgetl_load_batch *b, int64_t nl, int64_t ncr, pgetl_error *err) {
    if (b->nbreaks == b->breaks_cap) {
        /* Every row may hold one: grow up to the batch's row capacity, no further. */
        int64_t cap = b->breaks_cap ? b->breaks_cap * 2 : 64;
        if (cap > b->cap)
            cap = b->cap;
        pgetl__row_breaks *r = pgetl__realloc(b->breaks, sizeof *r * (size_t)cap);
        if (!r)
            return pgetl__error_oom(err, "load batch");
        b->breaks = r;
        b->breaks_cap = cap;
    }
    b->breaks[b->nbreaks++] = (pgetl__row_breaks){b->nrows, (int32_t)nl, (int32_t)ncr};
    return PGETL_OK;
}

pgetl_code pgetl__batch_fill(pgetl_load_ctx *ctx, pgetl_load_src *src, pgetl_load_batch *b,
                             pgetl_error *err) {
    b->nrows = 0;
    b->multiline = false;
    b->nbreaks = 0;
    b->has_eod = false;
    b->binary = false;
    b->file = src->file;
    pgetl__buf_clear(&b->data);
    if (src->done)
        return PGETL_OK;
    /* The carried partial row (and any read-ahead) starts the batch. */
    if (pgetl__buf_append(&b->data, src->carry.data, src->carry.len) != PGETL_OK)
        return pgetl__error_oom(err, "load batch");
    pgetl__buf_clear(&src->carry);
    int64_t limit = ctx->batch_rows < b->cap ? ctx->batch_rows : b->cap;
    size_t start = 0;
    while (b->nrows < limit && start < PGETL_LOAD_BATCH_BYTES) {
        size_t len;
        pgetl_code rc = next_row(ctx, src, &b->data, start, &len, err);
        if (rc != PGETL_OK)
            return rc;
        if (len == 0) {
            src->done = true;
            break;
        }
        int64_t line = src->line;
        src->line += 1 + src->st.nlines;
        int64_t nfields = src->st.nfields;
        int64_t nl = src->st.nlines, ncr = src->st.ncr;
        pgetl__csv_scan_next(&src->st);
        const char *row = b->data.data + start;
        if (ctx->dialect.text && pgetl__is_eod_marker(row, len)) {
            /* Text dumps may end with "\."; anywhere else it would cut the load short. */
            size_t after = b->data.len - start - len;
            while (after == 0 && !src->eof) {
                rc = read_more(src, &b->data, err);
                if (rc != PGETL_OK)
                    return rc;
                after = b->data.len - start - len;
            }
            if (after == 0) {
                b->data.len = start;
                src->done = true;
                break;
            }
            return pgetl_error_set(err, PGETL_EDATA,
                                   "%s line %lld: end-of-data marker \\. before the end of the "
                                   "file",
                                   src->file->path, (long long)line);
        }
        src->rows_read++;
        if (nfields != src->file->ncols) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s data: expected %d fields, found %lld",
                     nfields > src->file->ncols ? "extra" : "missing", src->file->ncols,
                     (long long)nfields);
            if (ctx->max_errors <= 0)
                return pgetl_error_set(err, PGETL_EDATA, "%s line %lld: %s", src->file->path,
                                       (long long)line, msg);
            rc = pgetl__rejects_add(ctx->rejects, src->file->path, line, "22P04", msg, row, len,
                                    err);
            if (rc != PGETL_OK)
                return rc;
            src->rows_rejected_client++;
            /* Drop the row: the bytes after it move down over it. */
            memmove(b->data.data + start, row + len, b->data.len - start - len);
            b->data.len -= len;
            if (pgetl__rejects_count(ctx->rejects) > ctx->max_errors)
                return pgetl_error_set(err, PGETL_EREJECTS,
                                       "more than %lld rows rejected (max_errors); the last: "
                                       "%s line %lld: %s",
                                       (long long)ctx->max_errors, src->file->path, (long long)line,
                                       msg);
            continue;
        }
        b->multiline |= src->line - line > 1;
        if (!ctx->dialect.text && (nl || ncr)) {
            rc = add_break(b, nl, ncr, err);
            if (rc != PGETL_OK)
                return rc;
        }
        b->has_eod |= len <= 4 && pgetl__is_eod_marker(row, len);
        start += len;
        b->row_end[b->nrows] = start;
        b->row_line[b->nrows] = line;
        b->nrows++;
    }
    /* Bytes past the last whole row wait for the next batch. */
    if (b->data.len > start) {
        if (pgetl__buf_append(&src->carry, b->data.data + start, b->data.len - start) != PGETL_OK)
            return pgetl__error_oom(err, "load batch");
        b->data.len = start;
    }
    return PGETL_OK;
}
