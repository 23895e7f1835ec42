/*
 * Export: `COPY (query) TO STDOUT` / `COPY "s"."t" TO STDOUT` streamed into a
 * file descriptor, optionally compressed.
 *
 * Bounded memory: libpq hands over one row per PQgetCopyData call (freed at
 * once); rows are gathered into one block of PGETL_EXPORT_BLOCK bytes before
 * going to the sink, so memory is one row + one block + the compressor,
 * whatever the table size.
 *
 * The statement is sent with the extended protocol (PQexecParams), which
 * refuses several statements in one string: a --query cannot smuggle a second
 * command past the COPY. Table names go through pgetl_ident_parse and are
 * quoted, so a hostile name is only ever a name.
 */
#include "connect/connect.h"
#include "copy/copy_out.h"
#include "load/sink.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Rows are gathered into blocks of this size before they are written (or
 * compressed). Rows are typically 50-200 bytes, so one write per ~2000 rows;
 * 256 KiB matches the sink's block.
 */
#define PGETL_EXPORT_BLOCK (256 * 1024)

/* Progress is looked at every this many rows (a clock read per row is waste). */
#define PGETL_EXPORT_PROGRESS_EVERY 512

void pgetl_export_options_init(pgetl_export_options *opts) {
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->format = PGETL_EXPORT_CSV;
    opts->compression = PGETL_COMPRESS_NONE;
    opts->progress_interval_s = 0.2;
}

static pgetl_code check_options(const pgetl_export_options *o, pgetl_error *err) {
    bool has_q = o->query != NULL, has_t = o->table != NULL;
    if (has_q == has_t)
        return pgetl_error_set(err, PGETL_EINVAL, "export: give exactly one of query or table");
    if (has_q) {
        const char *p = o->query;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';')
            p++;
        if (!*p)
            return pgetl_error_set(err, PGETL_EINVAL, "export: the query is empty");
    }
    if (o->format != PGETL_EXPORT_CSV && o->format != PGETL_EXPORT_TSV &&
        o->format != PGETL_EXPORT_BINARY)
        return pgetl_error_set(err, PGETL_EINVAL, "export: unknown format %d", (int)o->format);
    if (o->format == PGETL_EXPORT_BINARY && o->header)
        return pgetl_error_set(err, PGETL_EINVAL, "export: a header needs format csv or tsv");
    return PGETL_OK;
}

/*
 * Skips blanks and comments (-- to end of line, nested block comments) from
 * p; returns where the next token starts.
 */
static const char *skip_blank(const char *p) {
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            int depth = 0;
            do {
                if (p[0] == '/' && p[1] == '*') {
                    depth++;
                    p += 2;
                } else if (p[0] == '*' && p[1] == '/') {
                    depth--;
                    p += 2;
                } else {
                    p++;
                }
            } while (*p && depth > 0);
        } else {
            return p;
        }
    }
}

/*
 * Length of the query without a trailing statement terminator: a ';' outside
 * literals, quoted names and comments after which only blanks, comments and
 * more ';' follow. Anything else is left for the server to judge (a second
 * statement inside COPY ( ... ) is a syntax error there).
 */
static size_t query_length(const char *q) {
    const char *p = q;
    while (*p) {
        if (*p == '\'' || *p == '"') {
            /* '' and "" inside are doubled quotes; E'' strings may escape with \. */
            char quote = *p;
            bool backslash = quote == '\'' && p > q && (p[-1] == 'E' || p[-1] == 'e');
            p++;
            while (*p) {
                if (backslash && *p == '\\' && p[1]) {
                    p += 2;
                } else if (*p == quote && p[1] == quote) {
                    p += 2;
                } else if (*p == quote) {
                    p++;
                    break;
                } else {
                    p++;
                }
            }
        } else if (*p == '$' && (p == q || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            /* $tag$ ... $tag$ (a $1 parameter is not a dollar quote) */
            const char *t = p + 1;
            while (isalnum((unsigned char)*t) || *t == '_')
                t++;
            if (*t != '$' || isdigit((unsigned char)p[1])) {
                p++;
                continue;
            }
            size_t tag = (size_t)(t - p + 1);
            const char *end = t + 1;
            while (*end && strncmp(end, p, tag) != 0)
                end++;
            p = *end ? end + tag : end;
        } else if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*')) {
            p = skip_blank(p);
        } else if (*p == ';') {
            const char *rest = p;
            while (*rest == ';')
                rest = skip_blank(rest + 1);
            if (!*rest)
                return (size_t)(p - q);
            p++;
        } else {
            p++;
        }
    }
    return (size_t)(p - q);
}

/* Builds the COPY statement into b. */
static pgetl_code build_sql(const pgetl_export_options *o, pgetl_buf *b, pgetl_error *err) {
    pgetl_code rc;
    if (o->table) {
        pgetl_qualified_name qn;
        rc = pgetl_ident_parse(o->table, &qn, err);
        if (rc != PGETL_OK)
            return rc;
        char quoted[4 * PGETL_IDENT_MAX + 8];
        pgetl_qualified_name_quote(&qn, quoted, sizeof quoted);
        rc = pgetl__buf_printf(b, "COPY %s TO STDOUT", quoted);
    } else {
        /* A trailing ';' would end the statement inside the parentheses; the
         * newlines keep a final -- comment from swallowing the ')'. */
        size_t n = query_length(o->query);
        rc = pgetl__buf_printf(b, "COPY (\n%.*s\n) TO STDOUT", (int)n, o->query);
    }
    if (rc != PGETL_OK)
        return pgetl__error_oom(err, "export");
    switch (o->format) {
    case PGETL_EXPORT_CSV:
        rc = pgetl__buf_printf(b, " (FORMAT csv%s)", o->header ? ", HEADER true" : "");
        break;
    case PGETL_EXPORT_TSV:
        rc = pgetl__buf_printf(b, " (FORMAT csv, DELIMITER E'\\t'%s)",
                               o->header ? ", HEADER true" : "");
        break;
    case PGETL_EXPORT_BINARY:
        rc = pgetl__buf_printf(b, " (FORMAT binary)");
        break;
    }
    if (rc == PGETL_OK)
        rc = pgetl__buf_append(b, "", 1);
    return rc == PGETL_OK ? PGETL_OK : pgetl__error_oom(err, "export");
}

/*
 * After a local failure in the middle of COPY OUT (the output failed): read
 * what already arrived, else ask the server to stop and read the rest, so
 * the connection can be rolled back and reused. Bounded: against a server
 * that stopped answering, the cancel and the drain each give up after the
 * connection's cancel bound and the connection is abandoned (it then fails
 * at once instead of hanging, and the pool discards it).
 */
static void abandon_copy(PGconn *pg, int64_t rows) {
    pgetl__copyout_stop(pg, true, rows);
}

static void report(const pgetl_export_options *o, const char *label, int64_t bytes, int64_t rows,
                   double t0, bool done) {
    pgetl_load_progress p = {
        .file = label,
        .bytes_read = bytes,
        .bytes_total = -1,
        .rows_read = rows,
        .rows_loaded = rows,
        .rows_rejected = 0,
        .seconds = pgetl__now_s() - t0,
        .done = done,
    };
    o->progress(o->progress_user, &p);
}

pgetl_code pgetl_export_fd(pgetl_conn *conn, const pgetl_export_options *opts, int fd,
                           int64_t *rows_out, int64_t *bytes_out, pgetl_error *err) {
    if (rows_out)
        *rows_out = 0;
    if (bytes_out)
        *bytes_out = 0;
    if (!conn || !opts)
        return pgetl_error_set(err, PGETL_EINVAL, "export: conn and opts must not be NULL");
    pgetl_code rc = check_options(opts, err);
    if (rc != PGETL_OK)
        return rc;
    PGconn *pg = pgetl__conn_pg(conn);

    pgetl_buf sql, block;
    pgetl__buf_init(&sql);
    pgetl__buf_init(&block);
    pgetl_sink *sink = NULL;
    PGresult *res = NULL;
    bool in_copy = false;
    int64_t rows = 0, received = 0;
    const char *label = opts->table ? opts->table : "(query)";
    double t0 = pgetl__now_s(), next_report = t0 + opts->progress_interval_s;

    rc = build_sql(opts, &sql, err);
    if (rc != PGETL_OK)
        goto done;
    rc = pgetl__sink_create(fd, opts->compression, &sink, err);
    if (rc != PGETL_OK)
        goto done;
    if (pgetl__buf_reserve(&block, PGETL_EXPORT_BLOCK) != PGETL_OK) {
        rc = pgetl__error_oom(err, "export");
        goto done;
    }
    rc = pgetl_begin(conn, err);
    if (rc != PGETL_OK)
        goto done;

    pgetl__conn_wait_begin(pg);
    res = PQexecParams(pg, sql.data, 0, NULL, NULL, NULL, NULL, 0);
    pgetl__conn_wait_end(pg);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        rc = pgetl__error_from_pg(err, res, pg, "export");
        goto done;
    }
    PQclear(res);
    res = NULL;
    in_copy = true;

    for (;;) {
        char *row = NULL;
        int n = pgetl__conn_get_copy_data(pg, &row);
        if (n == -1)
            break;
        if (n < 0) {
            in_copy = false; /* -2: libpq gave up on the connection */
            rc = pgetl__error_from_pg(err, NULL, pg, "export");
            goto done;
        }
        if (block.len + (size_t)n > PGETL_EXPORT_BLOCK && block.len > 0) {
            rc = pgetl__sink_write(sink, block.data, block.len, err);
            pgetl__buf_clear(&block);
        }
        if (rc == PGETL_OK) {
            if ((size_t)n > PGETL_EXPORT_BLOCK)
                rc = pgetl__sink_write(sink, row, (size_t)n, err); /* one huge row */
            else
                pgetl__buf_append_unchecked(&block, row, (size_t)n);
        }
        PQfreemem(row);
        if (rc != PGETL_OK)
            goto done;
        rows++;
        received += n;
        if (opts->progress && rows % PGETL_EXPORT_PROGRESS_EVERY == 0 &&
            pgetl__now_s() >= next_report) {
            report(opts, label, received, rows, t0, false);
            next_report = pgetl__now_s() + opts->progress_interval_s;
        }
    }
    in_copy = false;
    res = PQgetResult(pg);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pgetl__error_from_pg(err, res, pg, "export");
        goto done;
    }
    /* "COPY n" is exact; the message count above is one more in binary format. */
    const char *tuples = PQcmdTuples(res);
    if (tuples && tuples[0])
        rows = strtoll(tuples, NULL, 10);
    rc = pgetl__sink_write(sink, block.data, block.len, err);
    if (rc == PGETL_OK)
        rc = pgetl__sink_finish(sink, err);
    if (rc == PGETL_OK && opts->progress)
        report(opts, label, received, rows, t0, true);

done:
    if (in_copy)
        abandon_copy(pg, rows);
    if (res) {
        PQclear(res);
        while (PQstatus(pg) == CONNECTION_OK && (res = PQgetResult(pg)) != NULL)
            PQclear(res);
    }
    if (rows_out)
        *rows_out = rows;
    if (bytes_out && sink)
        *bytes_out = pgetl__sink_bytes_written(sink);
    pgetl__sink_destroy(sink);
    pgetl__buf_reset(&sql);
    pgetl__buf_reset(&block);
    return rc;
}
