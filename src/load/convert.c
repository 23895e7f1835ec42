/*
 * The binary path ("beyond the floor"): when every target column has a
 * strict parser, each batch is converted on the client into binary COPY
 * tuples, so the server skips text parsing. Exactness is not negotiable:
 * a batch holding any value outside the strict grammars, any text that is
 * not valid UTF-8 or holds NUL, or anything the CSV reader would treat
 * specially (a carriage return outside quotes, line ends that differ from
 * the batch's first row, which COPY would refuse) goes to the server as CSV
 * instead, unchanged, in its own COPY in the same transaction. With
 * max_errors, where bad rows are expected, only the rows concerned (the
 * "suspects", at most a sixteenth of the batch) go as CSV, in a COPY after
 * the batch's binary one. The differential tests load the same files both
 * ways and compare.
 *
 * Conversion runs on the reader thread while a sender thread ships the
 * previous batch (load.c uses the worker pipeline with one connection), so
 * client parsing overlaps the server's ingest on a 2-core machine.
 */
#include "load/convert_int.h"

pgetl_code pgetl__convert_plan(const pgetl_load_ctx *ctx, pgetl_load_file *f,
                               pgetl_load_convert want, pgetl_error *err) {
    f->convert = false;
    if (want == PGETL_CONVERT_NEVER || !ctx->utf8 || f->ncols < 1)
        return PGETL_OK;
    pgetl_conv_fn *conv = pgetl__calloc((size_t)f->ncols, sizeof *conv);
    if (!conv)
        return pgetl__error_oom(err, "convert plan");
    bool all = true, some_typed = false;
    for (int i = 0; i < f->ncols && all; i++) {
        const pgetl_column_info *c = &ctx->info->columns[f->colidx[i]];
        pgetl_conv_fn fn = NULL;
        bool text = false;
        switch (c->type_oid) {
        case PGETL_OID_INT2:
            fn = pgetl__conv_int2;
            break;
        case PGETL_OID_INT4:
            fn = pgetl__conv_int4;
            break;
        case PGETL_OID_INT8:
            fn = pgetl__conv_int8;
            break;
        case PGETL_OID_FLOAT4:
            fn = pgetl__conv_float4;
            break;
        case PGETL_OID_FLOAT8:
            fn = pgetl__conv_float8;
            break;
        case PGETL_OID_BOOL:
            fn = pgetl__conv_bool;
            break;
        case PGETL_OID_DATE:
            fn = pgetl__conv_date;
            break;
        case PGETL_OID_TIMESTAMP:
            fn = pgetl__conv_timestamp;
            break;
        case PGETL_OID_TIMESTAMPTZ:
            fn = pgetl__conv_timestamptz;
            break;
        /* text and varchar receive the bytes as they are (varchar_recv applies the typmod). */
        case PGETL_OID_TEXT:
        case PGETL_OID_VARCHAR:
            text = true;
            break;
        default:
            all = false;
            break;
        }
        conv[i] = fn;
        some_typed |= fn != NULL;
        (void)text;
    }
    if (!all || (want == PGETL_CONVERT_AUTO && !some_typed)) {
        pgetl__free(conv);
        return PGETL_OK;
    }
    pgetl__free(f->conv);
    f->conv = conv;
    f->convert = true;
    return PGETL_OK;
}

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and no NUL. */
static bool utf8_ok(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        if (c == 0)
            return false;
        size_t k;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += k + 1;
    }
    return true;
}

static bool crlf_end(const char *row, size_t len) {
    return len >= 2 && row[len - 1] == '\n' && row[len - 2] == '\r';
}

/* Outcome of converting one row. */
enum { ROW_OK, ROW_SUSPECT, ROW_OOM };

/* Appends row's binary tuple to b->bin, or says why it cannot be converted exactly. */
static int convert_row(const pgetl_load_ctx *ctx, pgetl_load_batch *b, const char *row, size_t len,
                       bool crlf0, bool notnull_suspect) {
    const pgetl_load_file *f = b->file;
    if (crlf_end(row, len) != crlf0)
        return ROW_SUSPECT;
    if (ctx->dialect.text) {
        /* COPY text refuses a literal CR; leave any row holding one to the server. */
        size_t body = len - (crlf0 ? 2 : 1);
        if (memchr(row, '\r', body))
            return ROW_SUSPECT;
    }
    int nf;
    pgetl_error e;
    if (pgetl__csv_split(&ctx->dialect, ctx->null_str, ctx->null_len, row, len, &b->scratch,
                         b->fields, b->nfields_cap, &nf, &e) != PGETL_OK ||
        nf != f->ncols || nf > b->nfields_cap)
        return ROW_SUSPECT;
    /* Tuple: field count, then per field a length (-1: NULL) and the bytes. */
    if (pgetl__buf_reserve(&b->bin, 2 + (size_t)nf * (4 + PGETL_CONV_MAX) + b->scratch.len) !=
        PGETL_OK)
        return ROW_OOM;
    pgetl__buf_be16_unchecked(&b->bin, (uint16_t)nf);
    for (int k = 0; k < nf; k++) {
        const pgetl_csv_field *fd = &b->fields[k];
        if (fd->null) {
            if (notnull_suspect && ctx->info->columns[f->colidx[k]].not_null)
                return ROW_SUSPECT;
            pgetl__buf_be32_unchecked(&b->bin, UINT32_MAX);
            continue;
        }
        const char *p = b->scratch.data + fd->off;
        if (!ctx->dialect.text && !fd->quoted && memchr(p, '\r', fd->len))
            return ROW_SUSPECT;
        if (f->conv[k]) {
            unsigned char tmp[PGETL_CONV_MAX];
            int w = f->conv[k](p, fd->len, tmp);
            if (w < 0)
                return ROW_SUSPECT;
            pgetl__buf_be32_unchecked(&b->bin, (uint32_t)w);
            pgetl__buf_append_unchecked(&b->bin, tmp, (size_t)w);
        } else {
            if (!utf8_ok((const unsigned char *)p, fd->len))
                return ROW_SUSPECT;
            pgetl__buf_be32_unchecked(&b->bin, (uint32_t)fd->len);
            pgetl__buf_append_unchecked(&b->bin, p, fd->len);
        }
    }
    return ROW_OK;
}

pgetl_code pgetl__convert_batch(const pgetl_load_ctx *ctx, pgetl_load_batch *b, pgetl_error *err) {
    b->binary = false;
    b->nsuspect = 0;
    const pgetl_load_file *f = b->file;
    if (!f->convert || b->nrows == 0)
        return PGETL_OK;
    if (!b->bin_end)
        b->bin_end = pgetl__malloc(sizeof(size_t) * (size_t)b->cap);
    if (!b->suspect)
        b->suspect = pgetl__malloc(sizeof(int64_t) * (size_t)b->cap);
    if (!b->bin_end || !b->suspect)
        return pgetl__error_oom(err, "convert");
    if (b->nfields_cap < f->ncols) {
        pgetl_csv_field *fl = pgetl__realloc(b->fields, sizeof *fl * (size_t)f->ncols);
        if (!fl)
            return pgetl__error_oom(err, "convert");
        b->fields = fl;
        b->nfields_cap = f->ncols;
    }
    pgetl__buf_clear(&b->bin);
    bool split = ctx->max_errors > 0;
    int64_t max_suspects = split ? b->nrows / PGETL_LOAD_SUSPECT_SHARE : 0;
    bool crlf0 = crlf_end(b->data.data, b->row_end[0]);
    for (int64_t r = 0; r < b->nrows; r++) {
        size_t off = r ? b->row_end[r - 1] : 0;
        size_t start = b->bin.len;
        switch (convert_row(ctx, b, b->data.data + off, b->row_end[r] - off, crlf0, split)) {
        case ROW_OOM:
            return pgetl__error_oom(err, "convert");
        case ROW_SUSPECT:
            if (b->nsuspect >= max_suspects) {
                b->nsuspect = 0;
                return PGETL_OK;
            }
            b->suspect[b->nsuspect++] = r;
            b->bin.len = start;
            break;
        }
        b->bin_end[r] = b->bin.len;
    }
    b->binary = true;
    return PGETL_OK;
}
