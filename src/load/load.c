/*
 * pgetl_load_files: the driver. Order of work, and why:
 *
 * 1. Options and dialect (nothing touched yet).
 * 2. Connection(s), transaction, catalog: a missing table fails here.
 * 3. Every file's header (or the given columns) resolved against the
 *    table, before the first row of any file is sent, so a bad header in
 *    the third file does not cost a rolled-back load of the first two.
 * 4. TRUNCATE (same transaction: readers never see an empty table).
 * 5. Rows: batches read and sent one after the other (jobs 1) or dealt to
 *    worker connections (jobs > 1, workers.c).
 * 6. Commit only if every file loaded and rejects <= max_errors; otherwise
 *    roll back (jobs > 1: see load.h for the two-phase commit).
 */
#include "load/load_int.h"

#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void pgetl_load_options_init(pgetl_load_options *opts) {
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->format = PGETL_LOAD_CSV;
    opts->header = true;
    opts->batch_rows = 100000;
    opts->jobs = 1;
    opts->max_errors = 0;
    opts->convert = PGETL_CONVERT_AUTO;
    opts->progress_interval_s = 0.2;
}

/* Upper bound on rows per batch: the row index arrays are sized by it. */
#define MAX_BATCH_ROWS 10000000
#define MAX_JOBS 64

typedef struct load_run {
    pgetl_pool *pool;
    const pgetl_load_options *opts;
    pgetl_load_ctx ctx;
    pgetl_table_info *info;
    pgetl_load_file *files;
    int nfiles;
    pgetl_conn **conns;
    int nconns;
    pgetl_load_stats stats;
    int64_t bytes_done; /* raw bytes of finished files */
    int64_t t0_ns;
    double last_progress;
    const char *cur_file;
    int64_t cur_size;
    bool prepared; /* jobs > 1 with two-phase commit */
    /* The commit failed after some of it may have taken effect (stats.commit_unknown). */
    bool commit_unknown;
} load_run;

static pgetl_code check_options(const pgetl_load_options *o, pgetl_error *err) {
    if (!o->table || !o->table[0])
        return pgetl_error_set(err, PGETL_EINVAL, "load: no table given");
    if (o->format != PGETL_LOAD_CSV && o->format != PGETL_LOAD_TSV && o->format != PGETL_LOAD_TEXT)
        return pgetl_error_set(err, PGETL_EINVAL, "load: unknown format %d", (int)o->format);
    if (o->jobs < 1 || o->jobs > MAX_JOBS)
        return pgetl_error_set(err, PGETL_EINVAL, "load: jobs must be 1..%d (got %d)", MAX_JOBS,
                               o->jobs);
    if (o->max_errors < 0)
        return pgetl_error_set(err, PGETL_EINVAL, "load: max_errors must be >= 0");
    if (o->batch_rows < 0 || o->batch_rows > MAX_BATCH_ROWS)
        return pgetl_error_set(err, PGETL_EINVAL, "load: batch_rows must be 0..%d", MAX_BATCH_ROWS);
    if (o->columns && o->ncolumns < 1)
        return pgetl_error_set(err, PGETL_EINVAL, "load: columns given but ncolumns < 1");
    for (int i = 0; o->columns && i < o->ncolumns; i++)
        if (!o->columns[i])
            return pgetl_error_set(err, PGETL_EINVAL, "load: column %d is NULL", i);
    const char bad[] = {'\n', '\r', '\0'};
    for (int i = 0; i < 3; i++) {
        if (o->delimiter == bad[i] && i < 2)
            return pgetl_error_set(err, PGETL_EINVAL, "load: the delimiter cannot be a newline");
        if ((o->quote == bad[i] || o->escape == bad[i]) && i < 2)
            return pgetl_error_set(err, PGETL_EINVAL, "load: quote and escape cannot be newlines");
    }
    if (o->format == PGETL_LOAD_TEXT && (o->quote || o->escape))
        return pgetl_error_set(err, PGETL_EINVAL, "load: quote/escape apply to CSV/TSV only");
    /*
     * PostgreSQL's rule for text, plus A-F: a backslash escape runs on into
     * following digits (\101, \x41, \xAB), so such a delimiter would be
     * counted by the row scanner but eaten by the field splitter (found by
     * fuzz/fuzz_csv_scan.c).
     */
    if (o->format == PGETL_LOAD_TEXT && o->delimiter &&
        strchr("\\.abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", o->delimiter))
        return pgetl_error_set(err, PGETL_EINVAL,
                               "load: the text delimiter cannot be '%c' (backslash, '.', a "
                               "lower-case letter, a digit or A-F)",
                               o->delimiter);
    if (o->format != PGETL_LOAD_TEXT) {
        char d = o->delimiter ? o->delimiter : (o->format == PGETL_LOAD_TSV ? '\t' : ',');
        char q = o->quote ? o->quote : '"';
        if (d == q)
            return pgetl_error_set(err, PGETL_EINVAL,
                                   "load: the delimiter and the quote must differ");
    }
    return PGETL_OK;
}

static void setup_ctx(load_run *run) {
    const pgetl_load_options *o = run->opts;
    pgetl_load_ctx *c = &run->ctx;
    c->opts = o;
    c->dialect.text = o->format == PGETL_LOAD_TEXT;
    c->dialect.delim = o->delimiter ? o->delimiter : (o->format == PGETL_LOAD_CSV ? ',' : '\t');
    c->dialect.quote = c->dialect.text ? 0 : (o->quote ? o->quote : '"');
    c->dialect.escape = c->dialect.text ? 0 : (o->escape ? o->escape : c->dialect.quote);
    c->null_str = o->null_string ? o->null_string : (c->dialect.text ? "\\N" : "");
    c->null_len = strlen(c->null_str);
    c->utf8 = !o->encoding || strcasecmp(o->encoding, "UTF8") == 0 ||
              strcasecmp(o->encoding, "UTF-8") == 0;
    if (c->dialect.text) {
        c->copy_format = PGETL_COPY_TEXT;
        c->raw = c->dialect.delim == '\t' && strcmp(c->null_str, "\\N") == 0;
    } else {
        c->copy_format = PGETL_COPY_CSV;
        c->raw = c->dialect.delim == ',' && c->dialect.quote == '"' && c->dialect.escape == '"' &&
                 c->null_len == 0;
    }
    c->batch_rows = o->batch_rows ? o->batch_rows : 100000;
    c->max_errors = o->max_errors;
}

static void progress(load_run *run, bool done, int64_t bytes_now) {
    if (!run->opts->progress)
        return;
    double now = pgetl__now_s();
    if (!done && now - run->last_progress < run->opts->progress_interval_s)
        return;
    run->last_progress = now;
    pthread_mutex_lock(&run->ctx.mu);
    int64_t loaded = run->ctx.rows_loaded;
    pthread_mutex_unlock(&run->ctx.mu);
    pgetl_load_progress p = {
        .file = run->cur_file ? run->cur_file : "",
        .bytes_read = run->bytes_done + bytes_now,
        .bytes_total = run->cur_size,
        .rows_read = run->stats.rows_read,
        .rows_loaded = loaded,
        .rows_rejected = pgetl__rejects_count(run->ctx.rejects),
        .seconds = (double)(pgetl__now_ns() - run->t0_ns) / 1e9,
        .done = done,
    };
    run->opts->progress(run->opts->progress_user, &p);
}

/* Header names -> f->colidx. */
static pgetl_code match_names(load_run *run, pgetl_load_file *f, const pgetl_buf *names,
                              const pgetl_csv_field *fields, int n, pgetl_error *err) {
    const char **ptrs = pgetl__malloc(sizeof(char *) * (size_t)n);
    size_t *lens = pgetl__malloc(sizeof(size_t) * (size_t)n);
    pgetl__free(f->colidx);
    f->colidx = pgetl__malloc(sizeof(int) * (size_t)n);
    pgetl_code rc;
    if (!ptrs || !lens || !f->colidx) {
        rc = pgetl__error_oom(err, "header");
    } else {
        for (int k = 0; k < n; k++) {
            ptrs[k] = names->data + fields[k].off;
            lens[k] = fields[k].len;
        }
        f->ncols = n;
        rc = pgetl__header_match(run->info, ptrs, lens, n, f->colidx, err);
        if (rc != PGETL_OK)
            pgetl_error_prefix(err, "%s: ", f->path);
    }
    pgetl__free(ptrs);
    pgetl__free(lens);
    return rc;
}

/* Opens a file once, so a missing or unreadable one fails before any data moves. */
static pgetl_code check_readable(const char *path, pgetl_error *err) {
    if (strcmp(path, "-") == 0)
        return PGETL_OK;
    pgetl_reader *r = NULL;
    pgetl_code rc = pgetl__reader_open(path, &r, err);
    pgetl__reader_close(r);
    return rc;
}

/* Resolves file i's columns: given names, its header, or the whole table. */
static pgetl_code resolve_file(load_run *run, int i, pgetl_error *err) {
    pgetl_load_file *f = &run->files[i];
    const pgetl_table_info *info = run->info;
    if (run->opts->columns) {
        pgetl_code rc = check_readable(f->path, err);
        if (rc != PGETL_OK)
            return rc;
        f->ncols = run->opts->ncolumns;
        f->colidx = pgetl__malloc(sizeof(int) * (size_t)f->ncols);
        if (!f->colidx)
            return pgetl__error_oom(err, "load columns");
        return pgetl__table_resolve_columns(info, run->opts->columns, f->ncols, f->colidx, err);
    }
    if (!run->opts->header) {
        pgetl_code rc = check_readable(f->path, err);
        if (rc != PGETL_OK)
            return rc;
        f->colidx = pgetl__malloc(sizeof(int) * (size_t)(info->ncolumns ? info->ncolumns : 1));
        if (!f->colidx)
            return pgetl__error_oom(err, "load columns");
        for (int k = 0; k < info->ncolumns; k++)
            if (!info->columns[k].generated)
                f->colidx[f->ncols++] = k;
        if (f->ncols == 0)
            return pgetl_error_set(err, PGETL_ESCHEMA, "table %s has no loadable columns",
                                   info->quoted);
        return PGETL_OK;
    }
    /* Read just the header. The file is read again from the start when loaded. */
    pgetl_load_src src;
    pgetl_buf names;
    pgetl__buf_init(&names);
    pgetl_csv_field *fields = NULL;
    int n = 0;
    bool has_header = false;
    pgetl_code rc = pgetl__src_open(&run->ctx, f, &src, &names, &fields, &n, &has_header, err);
    pgetl__src_close(&src);
    if (rc == PGETL_OK && has_header) {
        rc = match_names(run, f, &names, fields, n, err);
    } else if (rc == PGETL_OK) {
        /* Empty file: nothing to load, but keep a valid column list. */
        f->ncols = 0;
    }
    pgetl__free(fields);
    pgetl__buf_reset(&names);
    return rc;
}

/*
 * Opens file i for loading. Standard input's header could not be checked up
 * front (it cannot be read twice), so it is checked here, before its rows.
 */
static pgetl_code open_for_load(load_run *run, int i, pgetl_load_src *src, pgetl_error *err) {
    pgetl_load_file *f = &run->files[i];
    bool has_header;
    run->cur_file = f->path;
    if (f->colidx || !run->opts->header || run->opts->columns) {
        pgetl_code rc = pgetl__src_open(&run->ctx, f, src, NULL, NULL, NULL, &has_header, err);
        run->cur_size = pgetl__reader_size(src->reader);
        return rc;
    }
    pgetl_buf names;
    pgetl__buf_init(&names);
    pgetl_csv_field *fields = NULL;
    int n = 0;
    pgetl_code rc = pgetl__src_open(&run->ctx, f, src, &names, &fields, &n, &has_header, err);
    run->cur_size = pgetl__reader_size(src->reader);
    if (rc == PGETL_OK && has_header)
        rc = match_names(run, f, &names, fields, n, err);
    if (rc == PGETL_OK && has_header)
        rc = pgetl__convert_plan(&run->ctx, f, run->opts->convert, err);
    pgetl__free(fields);
    pgetl__buf_reset(&names);
    return rc;
}

/*
 * Reads every file in batches. With workers, each batch is converted and
 * handed to them; without (--dry-run), `spare` is filled again and again:
 * every row is read and checked (field counts, quoting), nothing is sent.
 */
static pgetl_code read_files(load_run *run, pgetl_load_workers *w, pgetl_load_batch *spare,
                             pgetl_error *err) {
    pgetl_code rc = PGETL_OK;
    int64_t batch_index = 0;
    int64_t rows_read = 0;
    for (int i = 0; i < run->nfiles && rc == PGETL_OK; i++) {
        pgetl_load_src src;
        rc = open_for_load(run, i, &src, err);
        while (rc == PGETL_OK && !src.done) {
            pgetl_load_batch *b = w ? pgetl__workers_get_free(w) : spare;
            if (!b) /* a worker failed: its error is reported by finish */
                break;
            rc = pgetl__batch_fill(&run->ctx, &src, b, err);
            if (rc == PGETL_OK && w)
                rc = pgetl__convert_batch(&run->ctx, b, err);
            run->stats.rows_read = rows_read + src.rows_read;
            if (rc != PGETL_OK || b->nrows == 0) {
                if (w)
                    pgetl__workers_put_free(w, b);
                break;
            }
            if (w) {
                b->index = batch_index++;
                pgetl__workers_submit(w, b);
            }
            progress(run, false, pgetl__reader_bytes_in(src.reader));
        }
        rows_read += src.rows_read;
        run->stats.rows_read = rows_read;
        run->bytes_done += pgetl__reader_bytes_in(src.reader);
        pgetl__src_close(&src);
    }
    return rc;
}

static pgetl_code load_parallel(load_run *run, pgetl_error *err) {
    pgetl_load_workers *w = NULL;
    pgetl_code rc = pgetl__workers_start(&run->ctx, run->conns, run->nconns, &w, err);
    if (rc != PGETL_OK)
        return rc;
    rc = read_files(run, w, NULL, err);
    pgetl_error werr;
    pgetl_code wrc = pgetl__workers_finish(w, &werr);
    pgetl__workers_destroy(w);
    if (rc == PGETL_OK && wrc != PGETL_OK)
        rc = pgetl__error_copy(err, &werr);
    return rc;
}

/*
 * Two-phase commit of a jobs > 1 load. Each connection PREPAREs its
 * transaction under a gid "pgetl_load_<pid>_<start>_<i>"; once all have, the
 * INFO line "load_prepared" names every gid and the load is decided: from
 * then on it must commit, never roll back. That line is the decision record
 * the documentation (load.h, docs/RELIABILITY.md) tells an operator to look
 * for when a crash leaves prepared transactions behind.
 *
 * A prepared transaction belongs to no session, so one that its own
 * connection cannot finish (the connection was lost or stalled) is finished
 * from another of the load's connections. A statement cut off on a lost
 * connection has an unknown outcome: the server may have run it. Its gid is
 * settled by name all the same (a gid that is no longer there needed
 * nothing), after waiting for the lost backend to stop running it.
 */
enum { GID_OPEN, GID_PREPARED, GID_UNSURE, GID_DONE };

typedef struct twopc {
    char gid[MAX_JOBS][64];
    int pid[MAX_JOBS];
    int state[MAX_JOBS];
} twopc;

/* How long a second connection waits for a lost backend, or for a busy gid. */
#define TWOPC_WAIT_NS ((int64_t)10 * 1000000000)

static bool conn_idle(pgetl_conn *conn) {
    PGconn *pg = pgetl__conn_pg(conn);
    return PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE;
}

/* Waits (bounded) until backend `pid` is no longer running a statement. */
static void wait_backend_quiet(pgetl_conn *conn, int pid) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT 1 FROM pg_stat_activity WHERE pid = %d AND state = 'active'",
             pid);
    int64_t until = pgetl__now_ns() + TWOPC_WAIT_NS;
    while (pid > 0) {
        int64_t rows = 0;
        pgetl_code rc = pgetl_execute(conn, sql, 0, NULL, &rows, NULL);
        pgetl_rollback(conn, NULL);
        if (rc != PGETL_OK || rows == 0 || pgetl__now_ns() >= until)
            return;
        usleep(50000);
    }
}

/*
 * Runs `verb` ('COMMIT PREPARED' / 'ROLLBACK PREPARED') for transaction i on
 * its own connection when that one is usable, else on any other idle one.
 * A gid already gone counts as settled only when its outcome was unsure.
 */
static bool settle_gid(load_run *run, twopc *t, int i, const char *verb, pgetl_error *err) {
    char sql[128];
    snprintf(sql, sizeof sql, "%s '%s'", verb, t->gid[i]);
    for (int k = 0; k < run->nconns; k++) {
        int j = (i + k) % run->nconns; /* its own connection first */
        pgetl_conn *conn = run->conns[j];
        if (!conn_idle(conn))
            continue;
        if (t->state[i] == GID_UNSURE)
            wait_backend_quiet(conn, t->pid[i]);
        int64_t until = pgetl__now_ns() + TWOPC_WAIT_NS;
        for (;;) {
            pgetl_error e;
            if (pgetl__conn_exec_simple(conn, sql, &e) == PGETL_OK) {
                t->state[i] = GID_DONE;
                return true;
            }
            if (strcmp(e.sqlstate, "42704") == 0 && t->state[i] == GID_UNSURE) {
                t->state[i] = GID_DONE; /* never prepared, or already finished */
                return true;
            }
            /* "prepared transaction ... is busy": another backend still holds it. */
            bool busy = strcmp(e.sqlstate, "55000") == 0 && pgetl__now_ns() < until;
            if (!busy) {
                pgetl__error_copy(err, &e);
                break;
            }
            usleep(50000);
        }
    }
    return false;
}

/* Appends "'gid'" for every transaction not settled to buf; returns how many. */
static int list_unsettled(const load_run *run, const twopc *t, char *buf, size_t size) {
    int n = 0;
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < run->nconns; i++) {
        if (t->state[i] == GID_DONE || t->state[i] == GID_OPEN)
            continue;
        int w = snprintf(buf + used, size - used, "%s'%s'", n ? ", " : "", t->gid[i]);
        if (w > 0 && (size_t)w < size - used)
            used += (size_t)w;
        n++;
    }
    return n;
}

/* Logs the gids (all, or only those not settled) as one comma-separated field. */
static void log_gids(pgetl_log_level level, const char *event, const load_run *run, const twopc *t,
                     bool unsettled_only) {
    pgetl_logline l;
    if (!pgetl__log_begin(&l, level, event))
        return;
    char list[MAX_JOBS * 64 + 1];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < run->nconns; i++) {
        if (unsettled_only && (t->state[i] == GID_DONE || t->state[i] == GID_OPEN))
            continue;
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? "," : "", t->gid[i]);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    pgetl__log_str(&l, "gids", list);
    pgetl__log_end(&l);
}

/* PREPARE every connection's transaction, then COMMIT PREPARED all (see above). */
static pgetl_code commit_two_phase(load_run *run, pgetl_error *err) {
    twopc t;
    int n = run->nconns;
    for (int i = 0; i < n; i++) {
        snprintf(t.gid[i], sizeof t.gid[i], "pgetl_load_%d_%lld_%d", (int)getpid(),
                 (long long)run->t0_ns, i);
        t.pid[i] = PQbackendPID(pgetl__conn_pg(run->conns[i]));
        t.state[i] = GID_OPEN;
    }
    log_gids(PGETL_LOG_DEBUG, "load_prepare", run, &t, false);
    pgetl_code rc = PGETL_OK;
    int failed_at = -1;
    for (int i = 0; i < n && rc == PGETL_OK; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "PREPARE TRANSACTION '%s'", t.gid[i]);
        rc = pgetl__conn_exec_simple(run->conns[i], sql, err);
        if (rc == PGETL_OK) {
            t.state[i] = GID_PREPARED;
        } else {
            failed_at = i;
            /* Lost with the statement in flight: the server may have prepared it. */
            if (rc == PGETL_ECONNLOST || PQstatus(pgetl__conn_pg(run->conns[i])) != CONNECTION_OK)
                t.state[i] = GID_UNSURE;
            else
                t.state[i] = GID_DONE; /* a failed PREPARE rolls the transaction back */
        }
    }
    if (rc != PGETL_OK) {
        /* Not decided: undo. Open transactions first, so their connections can settle gids. */
        for (int i = 0; i < n; i++)
            if (t.state[i] == GID_OPEN)
                pgetl_rollback(run->conns[i], NULL);
        for (int i = 0; i < n; i++)
            if (t.state[i] == GID_PREPARED || t.state[i] == GID_UNSURE)
                settle_gid(run, &t, i, "ROLLBACK PREPARED", NULL);
        char left[MAX_JOBS * 70];
        if (list_unsettled(run, &t, left, sizeof left) == 0) {
            pgetl_error_prefix(err,
                               "load: PREPARE TRANSACTION on connection %d of %d failed; every "
                               "connection was rolled back, nothing was committed: ",
                               failed_at + 1, n);
        } else {
            log_gids(PGETL_LOG_ERROR, "load_prepared_left", run, &t, true);
            pgetl_error_prefix(err,
                               "load: PREPARE TRANSACTION on connection %d of %d failed; nothing "
                               "was committed, but %s may be left prepared (no connection left "
                               "to check): run ROLLBACK PREPARED for each that pg_prepared_xacts "
                               "lists: ",
                               failed_at + 1, n, left);
        }
        return rc;
    }
    log_gids(PGETL_LOG_INFO, "load_prepared", run, &t, false);
    pgetl_error first;
    pgetl_error_init(&first);
    int retried = 0;
    for (int i = 0; i < n; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "COMMIT PREPARED '%s'", t.gid[i]);
        pgetl_error e;
        if (pgetl__conn_exec_simple(run->conns[i], sql, &e) == PGETL_OK) {
            t.state[i] = GID_DONE;
            continue;
        }
        if (first.code == PGETL_OK)
            first = e;
        if (e.code == PGETL_ECONNLOST || PQstatus(pgetl__conn_pg(run->conns[i])) != CONNECTION_OK)
            t.state[i] = GID_UNSURE;
    }
    for (int i = 0; i < n; i++) {
        if (t.state[i] == GID_DONE)
            continue;
        retried++;
        settle_gid(run, &t, i, "COMMIT PREPARED", NULL);
    }
    char left[MAX_JOBS * 70];
    int nleft = list_unsettled(run, &t, left, sizeof left);
    if (nleft == 0) {
        if (retried > 0) {
            pgetl_logline l;
            if (pgetl__log_begin(&l, PGETL_LOG_WARN, "load_commit_finished_elsewhere")) {
                pgetl__log_int(&l, "transactions", retried);
                pgetl__log_str(&l, "message", first.message);
                pgetl__log_end(&l);
            }
        }
        return PGETL_OK;
    }
    log_gids(PGETL_LOG_ERROR, "load_prepared_left", run, &t, true);
    run->commit_unknown = true;
    rc = pgetl__error_copy(err, &first);
    pgetl_error_prefix(err,
                       "load: COMMIT PREPARED failed after all %d connections prepared (the load "
                       "is decided: commit); not confirmed committed: %s: run COMMIT PREPARED "
                       "for each that pg_prepared_xacts still lists, to complete the load: ",
                       n, left);
    return rc;
}

/* Ends every connection's transaction: commit all (2PC when possible) or roll back all. */
static pgetl_code finish_txns(load_run *run, bool commit, pgetl_error *err) {
    pgetl_code rc = PGETL_OK;
    if (!commit) {
        for (int i = 0; i < run->nconns; i++) {
            pgetl_error e;
            if (pgetl_rollback(run->conns[i], &e) != PGETL_OK) {
                pgetl_logline l;
                if (pgetl__log_begin(&l, PGETL_LOG_WARN, "load_rollback_failed")) {
                    pgetl__log_str(&l, "message", e.message);
                    pgetl__log_end(&l);
                }
            }
        }
        return PGETL_OK;
    }
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_INFO, "load_commit")) {
        pgetl__log_str(&l, "mode",
                       run->nconns == 1 ? "single"
                       : run->prepared  ? "2pc"
                                        : "sequential");
        pgetl__log_int(&l, "connections", run->nconns);
        pgetl__log_end(&l);
    }
    if (run->nconns == 1) {
        rc = pgetl_commit(run->conns[0], err);
        /* A COMMIT lost on the way may have been carried out; a refused one was not. */
        run->commit_unknown = rc == PGETL_ECONNLOST;
        return rc;
    }
    if (run->prepared)
        return commit_two_phase(run, err);
    int committed = 0;
    for (int i = 0; i < run->nconns; i++) {
        pgetl_error e;
        pgetl_code c = pgetl_commit(run->conns[i], &e);
        if (c == PGETL_OK) {
            committed++;
        } else {
            run->commit_unknown |= committed > 0 || c == PGETL_ECONNLOST;
        }
        if (c != PGETL_OK && rc == PGETL_OK) {
            rc = pgetl__error_copy(err, &e);
            pgetl_error_prefix(err,
                               "load: commit of connection %d of %d failed after %d "
                               "committed (partly committed load): ",
                               i + 1, run->nconns, committed);
        }
    }
    return rc;
}

/* Is `a` the same file as input `b` (both existing)? */
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* The reject file and its log are truncated when written: never onto an input. */
static pgetl_code check_reject_paths(const char *reject, const char *const *paths, int n,
                                     pgetl_error *err) {
    if (!reject || !reject[0])
        return PGETL_OK;
    char log[4096];
    snprintf(log, sizeof log, "%s.log", reject);
    for (int i = 0; i < n; i++) {
        if (strcmp(paths[i], "-") == 0)
            continue;
        if (same_file(reject, paths[i]) || same_file(log, paths[i]))
            return pgetl_error_set(err, PGETL_EINVAL,
                                   "load: the reject file %s (or its .log) is the input %s", reject,
                                   paths[i]);
    }
    return PGETL_OK;
}

/* Does the server allow n prepared transactions? */
static bool can_prepare(pgetl_conn *conn, int n) {
    pgetl_result *res = NULL;
    pgetl_error e;
    if (pgetl_fetchall(conn, "SELECT current_setting('max_prepared_transactions')::int", 0, NULL,
                       &res, &e) != PGETL_OK)
        return false;
    int64_t v = 0;
    bool ok = pgetl_result_get_int64(res, 0, 0, &v, &e) == PGETL_OK && v >= n;
    pgetl_result_free(res);
    return ok;
}

static pgetl_code run_load(load_run *run, const char *const *paths, pgetl_error *err) {
    const pgetl_load_options *o = run->opts;
    int jobs = o->jobs;
    if (o->truncate && jobs > 1) {
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_WARN, "load_truncate_serial")) {
            pgetl__log_str(&l, "reason", "TRUNCATE locks the table: loading with one connection");
            pgetl__log_int(&l, "jobs", jobs);
            pgetl__log_end(&l);
        }
        jobs = 1;
    }
    if (o->dry_run)
        jobs = 1;
    run->conns = pgetl__calloc((size_t)jobs, sizeof *run->conns);
    if (!run->conns)
        return pgetl__error_oom(err, "load");
    for (int i = 0; i < jobs; i++) {
        pgetl_code rc = pgetl_pool_acquire(run->pool, &run->conns[i], err);
        if (rc != PGETL_OK)
            return rc;
        run->nconns++;
        rc = pgetl_begin(run->conns[i], err);
        if (rc == PGETL_OK && !run->ctx.utf8) {
            const char *params[1] = {o->encoding};
            rc = pgetl_execute(run->conns[i], "SELECT set_config('client_encoding', $1, true)", 1,
                               params, NULL, err);
        }
        if (rc != PGETL_OK)
            return rc;
    }
    pgetl_code rc = pgetl__catalog_table(run->conns[0], o->table, &run->info, err);
    if (rc != PGETL_OK)
        return rc;
    run->ctx.info = run->info;

    run->files = pgetl__calloc((size_t)run->nfiles, sizeof *run->files);
    if (!run->files)
        return pgetl__error_oom(err, "load");
    for (int i = 0; i < run->nfiles; i++) {
        run->files[i].path = paths[i];
        /* Standard input cannot be read twice: its header is checked when it is loaded. */
        if (strcmp(paths[i], "-") == 0 && o->header && !o->columns)
            continue;
        rc = resolve_file(run, i, err);
        if (rc == PGETL_OK)
            rc = pgetl__convert_plan(&run->ctx, &run->files[i], o->convert, err);
        if (rc != PGETL_OK)
            return rc;
    }
    rc = check_reject_paths(o->reject_path, paths, run->nfiles, err);
    if (rc != PGETL_OK)
        return rc;
    rc = pgetl__rejects_create(o->reject_path, &run->ctx.rejects, err);
    if (rc != PGETL_OK)
        return rc;
    if (o->truncate && !o->dry_run) {
        char sql[sizeof run->info->quoted + 16];
        snprintf(sql, sizeof sql, "TRUNCATE %s", run->info->quoted);
        rc = pgetl_execute(run->conns[0], sql, 0, NULL, NULL, err);
        if (rc != PGETL_OK)
            return rc;
    }
    run->prepared = jobs > 1 && can_prepare(run->conns[0], jobs);
    /*
     * FREEZE only where the server accepts it: the table truncated in this
     * very transaction on this connection, no SAVEPOINT (isolation uses
     * them), and a plain table (partitioned ones refuse FREEZE). Anything
     * else loads with plain COPY rather than failing.
     */
    run->ctx.freeze =
        o->truncate && !o->dry_run && jobs == 1 && o->max_errors == 0 && run->info->relkind == 'r';

    /*
     * Even with one connection, this thread reads, scans (and converts)
     * the next batch while a sender thread ships the previous one (the
     * worker pipeline). Done in turn, the server would sit idle for every
     * batch's read and scan: that made raw passthrough 1.5x the server's
     * own COPY. A dry run sends nothing and stays on this thread.
     */
    if (!o->dry_run)
        return load_parallel(run, err);
    pgetl_load_batch batch;
    rc = pgetl__batch_init(&batch, run->ctx.batch_rows, err);
    if (rc != PGETL_OK)
        return rc;
    rc = read_files(run, NULL, &batch, err);
    pgetl__batch_free(&batch);
    return rc;
}

pgetl_code pgetl_load_files(pgetl_pool *pool, const char *const *paths, int npaths,
                            const pgetl_load_options *opts, pgetl_load_stats *stats_out,
                            pgetl_error *err) {
    if (stats_out)
        memset(stats_out, 0, sizeof *stats_out);
    if (!pool || !paths || npaths < 1 || !opts)
        return pgetl_error_set(err, PGETL_EINVAL,
                               "load: pool, paths (at least one) and options are required");
    for (int i = 0; i < npaths; i++)
        if (!paths[i] || !paths[i][0])
            return pgetl_error_set(err, PGETL_EINVAL, "load: path %d is empty", i);
    pgetl_code rc = check_options(opts, err);
    if (rc != PGETL_OK)
        return rc;
    load_run run;
    memset(&run, 0, sizeof run);
    run.pool = pool;
    run.opts = opts;
    run.nfiles = npaths;
    run.t0_ns = pgetl__now_ns();
    run.cur_size = -1;
    pthread_mutex_init(&run.ctx.mu, NULL);
    setup_ctx(&run);

    rc = run_load(&run, paths, err);
    int64_t rejected = pgetl__rejects_count(run.ctx.rejects);
    if (rc == PGETL_OK && rejected > opts->max_errors)
        rc = pgetl_error_set(err, PGETL_EREJECTS,
                             "%lld rows rejected, more than max_errors %lld: rolled back",
                             (long long)rejected, (long long)opts->max_errors);
    bool commit = rc == PGETL_OK && !opts->dry_run;
    if (run.nconns > 0) {
        pgetl_code frc = finish_txns(&run, commit, err);
        if (rc == PGETL_OK && frc != PGETL_OK) {
            rc = frc;
            run.stats.commit_unknown = run.commit_unknown;
            commit = false;
        }
    }
    for (int i = 0; i < run.nconns; i++)
        pgetl_pool_release(pool, run.conns[i]);
    pgetl__free(run.conns);

    run.stats.rows_loaded = run.ctx.rows_loaded;
    run.stats.rows_rejected = rejected;
    run.stats.bytes_read = run.bytes_done;
    run.stats.batches = run.ctx.batches_sent;
    run.stats.batches_binary = run.ctx.batches_binary;
    run.stats.rows_screened = run.ctx.rows_screened;
    run.stats.seconds = (double)(pgetl__now_ns() - run.t0_ns) / 1e9;
    run.stats.committed = commit;
    if (run.ctx.rejects) {
        pgetl_error e;
        pgetl_code rrc = pgetl__rejects_destroy(run.ctx.rejects, &e);
        if (rc == PGETL_OK && rrc != PGETL_OK)
            rc = pgetl__error_copy(err, &e);
        run.ctx.rejects = NULL;
    }
    progress(&run, true, 0);
    pgetl_logline l;
    if (pgetl__log_begin(&l, rc == PGETL_OK ? PGETL_LOG_INFO : PGETL_LOG_WARN, "load_end")) {
        pgetl__log_str(&l, "table", opts->table);
        pgetl__log_str(&l, "status", pgetl_code_name(rc));
        pgetl__log_int(&l, "rows_read", run.stats.rows_read);
        pgetl__log_int(&l, "rows_loaded", run.stats.rows_loaded);
        pgetl__log_int(&l, "rows_rejected", run.stats.rows_rejected);
        if (run.stats.rows_screened > 0)
            pgetl__log_int(&l, "rows_screened", run.stats.rows_screened);
        pgetl__log_int(&l, "committed", commit);
        pgetl__log_double(&l, "seconds", run.stats.seconds);
        pgetl__log_end(&l);
    }
    if (stats_out)
        *stats_out = run.stats;
    for (int i = 0; run.files && i < run.nfiles; i++) {
        pgetl__free(run.files[i].colidx);
        pgetl__free(run.files[i].conv);
    }
    pgetl__free(run.files);
    pgetl__table_info_free(run.info);
    pgetl__screen_free(run.ctx.screen);
    pthread_mutex_destroy(&run.ctx.mu);
    return rc;
}
