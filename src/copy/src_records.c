/*
 * The records source (the spec's copy_from_records): the caller hands rows
 * of values and the writer escapes them. Text values go through the text or
 * CSV encoder, typed values through one binary encoder per column chosen at
 * begin, after each declared pgetl_type was checked against the column's
 * catalog type, so an impossible pair fails before anything is sent.
 *
 * Each row is sized first (worst-case bound per value), then encoded with
 * unchecked appends into the reserved space: one reserve, no allocation.
 */
#include "copy/writer.h"

#include <stdio.h>

/* Appends "; column "x": <given> into <pg>" for each mismatch, into a message buffer. */
static pgetl_code check_types(const pgetl_table_info *info, const int *idx, int n,
                              const pgetl_type *types, pgetl__bin_col *cols, pgetl_error *err) {
    char list[PGETL_ERROR_MESSAGE_SIZE];
    size_t len = 0;
    int bad = 0;
    list[0] = '\0';
    for (int i = 0; i < n; i++) {
        const pgetl_column_info *ci = &info->columns[idx[i]];
        if (pgetl__bin_col_init(&cols[i], types[i], ci->type_oid))
            continue;
        bad++;
        if (len < sizeof list) {
            int w =
                snprintf(list + len, sizeof list - len, "%scolumn \"%s\": %s into %s",
                         bad > 1 ? "; " : "", ci->name, pgetl__type_name(types[i]), ci->type_name);
            len += w > 0 ? (size_t)w : 0;
        }
    }
    if (!bad)
        return PGETL_OK;
    return pgetl_error_set(err, PGETL_ESCHEMA, "COPY %s: cannot convert %s", info->quoted, list);
}

pgetl_code pgetl_copy_begin(pgetl_conn *conn, const char *table, const pgetl_copy_options *opts,
                            pgetl_copy **copy_out, pgetl_error *err) {
    if (copy_out)
        *copy_out = NULL;
    if (!conn || !table || !copy_out)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "pgetl_copy_begin: connection, table and copy_out are required");
    pgetl_copy_options dflt;
    pgetl_copy_options_init(&dflt);
    if (!opts)
        opts = &dflt;
    if (opts->ncolumns < 0 || (opts->ncolumns > 0 && !opts->columns))
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_copy_begin: bad column list");
    if (opts->format == PGETL_COPY_BINARY && !opts->types)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "pgetl_copy_begin: BINARY format needs options.types "
                               "(one pgetl_type per column)");

    pgetl_table_info *info = NULL;
    pgetl_code rc = pgetl__catalog_table(conn, table, &info, err);
    if (rc != PGETL_OK)
        return rc;
    int n = opts->ncolumns;
    if (n == 0)
        for (int i = 0; i < info->ncolumns; i++)
            n += !info->columns[i].generated;
    int *idx = pgetl__malloc(sizeof(int) * (size_t)(n ? n : 1));
    pgetl__bin_col *cols = NULL;
    if (!idx) {
        rc = pgetl__error_oom(err, "COPY");
        goto fail;
    }
    if (opts->ncolumns > 0) {
        rc = pgetl__table_resolve_columns(info, opts->columns, n, idx, err);
        if (rc != PGETL_OK)
            goto fail;
        for (int i = 0; i < n; i++) {
            if (info->columns[idx[i]].generated) {
                rc = pgetl_error_set(err, PGETL_ESCHEMA,
                                     "COPY %s: column \"%s\" is generated and cannot be written",
                                     info->quoted, info->columns[idx[i]].name);
                goto fail;
            }
        }
    } else {
        int k = 0;
        for (int i = 0; i < info->ncolumns; i++)
            if (!info->columns[i].generated)
                idx[k++] = i;
    }
    if (n == 0) {
        rc = pgetl_error_set(err, PGETL_ESCHEMA, "COPY %s: the table has no columns to write",
                             info->quoted);
        goto fail;
    }
    if (opts->format == PGETL_COPY_BINARY) {
        cols = pgetl__calloc((size_t)n, sizeof *cols);
        if (!cols) {
            rc = pgetl__error_oom(err, "COPY");
            goto fail;
        }
        rc = check_types(info, idx, n, opts->types, cols, err);
        if (rc != PGETL_OK)
            goto fail;
    }
    pgetl_copy *c = NULL;
    rc = pgetl__copy_begin_resolved(conn, info, idx, n, opts, &c, err);
    if (rc != PGETL_OK)
        goto fail;
    pgetl__free(idx);
    c->owned_info = info;
    c->bincols = cols;
    *copy_out = c;
    return PGETL_OK;
fail:
    pgetl__free(idx);
    pgetl__free(cols);
    pgetl__table_info_free(info);
    return rc;
}

/* Fails the session for a bad value in the current row (1-based row number in the message). */
static pgetl_code value_error(pgetl_copy *c, int col, pgetl_code code, const char *why,
                              pgetl_error *err) {
    pgetl__copy_row_cancel(c);
    pgetl_error e;
    pgetl_error_set(&e, code, "COPY %s row %lld, column \"%s\": %s", c->info->quoted,
                    (long long)(c->rows + 1), c->info->columns[c->colidx[col]].name, why);
    pgetl__copy_fail(c, &e);
    return pgetl__error_copy(err, &c->error);
}

pgetl_code pgetl_copy_write_row(pgetl_copy *c, const char *const *values, const size_t *lengths,
                                pgetl_error *err) {
    if (!c)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_copy_write_row: copy is NULL");
    if (c->failed)
        return pgetl__error_copy(err, &c->error);
    if (c->format == PGETL_COPY_BINARY)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "pgetl_copy_write_row: the COPY is BINARY; use "
                               "pgetl_copy_write_values");
    if (!values)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_copy_write_row: values is NULL");
    if (!c->lens && !(c->lens = pgetl__malloc(sizeof(size_t) * (size_t)c->ncols))) {
        pgetl_error e;
        pgetl__error_oom(&e, "COPY row");
        pgetl__copy_fail(c, &e);
        return pgetl__error_copy(err, &c->error);
    }

    /* Both formats' bound is 2 * len + 2 per value, plus a delimiter or newline each. */
    size_t need = (size_t)c->ncols;
    for (int i = 0; i < c->ncols; i++) {
        if (!values[i]) {
            need += 2;
            continue;
        }
        size_t len = lengths ? lengths[i] : strlen(values[i]);
        if (len > PGETL_ENC_MAX_FIELD)
            return value_error(c, i, PGETL_EDATA, "value exceeds PostgreSQL's 1 GB field limit",
                               err);
        c->lens[i] = len;
        need += pgetl__enc_text_bound(len);
    }
    pgetl_buf *b = pgetl__copy_row_begin(c, need, err);
    if (!b)
        return c->error.code;
    bool csv = c->format == PGETL_COPY_CSV;
    char delim = csv ? ',' : '\t';
    for (int i = 0; i < c->ncols; i++) {
        if (i)
            pgetl__buf_byte_unchecked(b, delim);
        if (!values[i]) {
            if (!csv)
                pgetl__enc_text_null(b);
            continue;
        }
        size_t nul_at = 0;
        bool ok = csv ? pgetl__enc_csv_value(b, values[i], c->lens[i], &nul_at)
                      : pgetl__enc_text_value(b, values[i], c->lens[i], &nul_at);
        if (!ok) {
            char why[128];
            snprintf(why, sizeof why,
                     "value contains a NUL byte at offset %zu (PostgreSQL text cannot hold NUL)",
                     nul_at);
            return value_error(c, i, PGETL_EDATA, why, err);
        }
    }
    pgetl__buf_byte_unchecked(b, '\n');
    return pgetl__copy_row_end(c, err);
}

pgetl_code pgetl_copy_write_values(pgetl_copy *c, const pgetl_value *values, pgetl_error *err) {
    if (!c)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_copy_write_values: copy is NULL");
    if (c->failed)
        return pgetl__error_copy(err, &c->error);
    if (c->format != PGETL_COPY_BINARY || !c->bincols)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "pgetl_copy_write_values: the COPY was not begun in BINARY format "
                               "with types; use pgetl_copy_write_row");
    if (!values)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_copy_write_values: values is NULL");
    size_t need = 2;
    for (int i = 0; i < c->ncols; i++) {
        if (values[i].is_null) {
            need += 4;
            continue;
        }
        if (c->bincols[i].varlen && values[i].v.s.len > PGETL_ENC_MAX_FIELD)
            return value_error(c, i, PGETL_EDATA, "value exceeds PostgreSQL's 1 GB field limit",
                               err);
        need += pgetl__bin_bound(&c->bincols[i], &values[i]);
    }
    pgetl_buf *b = pgetl__copy_row_begin(c, need, err);
    if (!b)
        return c->error.code;
    pgetl__buf_be16_unchecked(b, (uint16_t)c->ncols);
    for (int i = 0; i < c->ncols; i++) {
        if (values[i].is_null) {
            pgetl__buf_be32_unchecked(b, UINT32_MAX);
            continue;
        }
        char why[192];
        pgetl_code rc = pgetl__bin_encode(&c->bincols[i], b, &values[i], why, sizeof why);
        if (rc != PGETL_OK)
            return value_error(c, i, rc, why, err);
    }
    return pgetl__copy_row_end(c, err);
}
