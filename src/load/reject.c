/*
 * Rejected rows: the row's original bytes go to the reject file unchanged
 * (embedded newlines and all), so the file can be fixed and loaded again
 * with the same options; where each came from and why goes to
 * "<reject_path>.log", one line per row:
 *
 *     <input file>:<line>: [<SQLSTATE>] <message>
 *
 * Files are created on the first reject, so a clean load leaves nothing
 * behind. A mutex serialises writers (jobs > 1 rejects from several
 * threads); rejects are rare, so contention does not matter.
 */
#include "load/load_int.h"

#include <errno.h>
#include <pthread.h>

struct pgetl_rejects {
    char *path;
    char *log_path;
    FILE *data;
    FILE *log;
    int64_t count;
    pthread_mutex_t mu;
};

pgetl_code pgetl__rejects_create(const char *path, pgetl_rejects **out, pgetl_error *err) {
    *out = NULL;
    pgetl_rejects *rj = pgetl__calloc(1, sizeof *rj);
    if (!rj)
        return pgetl__error_oom(err, "rejects");
    pthread_mutex_init(&rj->mu, NULL);
    if (path && path[0]) {
        size_t n = strlen(path);
        rj->path = pgetl__strdup(path);
        rj->log_path = pgetl__malloc(n + 5);
        if (!rj->path || !rj->log_path) {
            pgetl__rejects_destroy(rj, NULL);
            return pgetl__error_oom(err, "rejects");
        }
        memcpy(rj->log_path, path, n);
        memcpy(rj->log_path + n, ".log", 5);
    }
    *out = rj;
    return PGETL_OK;
}

static pgetl_code open_files(pgetl_rejects *rj, pgetl_error *err) {
    rj->data = fopen(rj->path, "wb");
    if (!rj->data)
        return pgetl_error_set(err, PGETL_EIO, "reject file %s: %s", rj->path, strerror(errno));
    rj->log = fopen(rj->log_path, "w");
    if (!rj->log)
        return pgetl_error_set(err, PGETL_EIO, "reject log %s: %s", rj->log_path, strerror(errno));
    return PGETL_OK;
}

/* Writes msg and a newline, line breaks inside it turned into spaces: one line per reject. */
static bool put_line(FILE *f, const char *msg) {
    for (const char *p = msg; *p; p++)
        if (fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f) == EOF)
            return false;
    return fputc('\n', f) != EOF;
}

pgetl_code pgetl__rejects_add(pgetl_rejects *rj, const char *file, int64_t line,
                              const char *sqlstate, const char *message, const void *data,
                              size_t len, pgetl_error *err) {
    pgetl_code rc = PGETL_OK;
    pthread_mutex_lock(&rj->mu);
    rj->count++;
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_WARN, "load_reject")) {
        pgetl__log_str(&l, "file", file);
        pgetl__log_int(&l, "line", line);
        pgetl__log_str(&l, "sqlstate", sqlstate ? sqlstate : "");
        pgetl__log_str(&l, "message", message ? message : "");
        pgetl__log_end(&l);
    }
    if (rj->path) {
        if (!rj->data)
            rc = open_files(rj, err);
        if (rc == PGETL_OK) {
            const char *p = data;
            bool nl = len > 0 && p[len - 1] == '\n';
            if (fwrite(p, 1, len, rj->data) != len || (!nl && fputc('\n', rj->data) == EOF))
                rc = pgetl_error_set(err, PGETL_EIO, "reject file %s: %s", rj->path,
                                     strerror(errno));
            else if (fprintf(rj->log, "%s:%lld: [%s] ", file, (long long)line,
                             sqlstate && sqlstate[0] ? sqlstate : "-----") < 0 ||
                     !put_line(rj->log, message ? message : ""))
                rc = pgetl_error_set(err, PGETL_EIO, "reject log %s: %s", rj->log_path,
                                     strerror(errno));
        }
    }
    pthread_mutex_unlock(&rj->mu);
    return rc;
}

int64_t pgetl__rejects_count(const pgetl_rejects *rj) {
    if (!rj)
        return 0;
    /* Workers read the count while others add: take the lock (rare, cheap). */
    pgetl_rejects *m = (pgetl_rejects *)rj;
    pthread_mutex_lock(&m->mu);
    int64_t n = m->count;
    pthread_mutex_unlock(&m->mu);
    return n;
}

pgetl_code pgetl__rejects_destroy(pgetl_rejects *rj, pgetl_error *err) {
    if (!rj)
        return PGETL_OK;
    pgetl_code rc = PGETL_OK;
    if (rj->data && fclose(rj->data) != 0)
        rc = pgetl_error_set(err, PGETL_EIO, "reject file %s: %s", rj->path, strerror(errno));
    if (rj->log && fclose(rj->log) != 0 && rc == PGETL_OK)
        rc = pgetl_error_set(err, PGETL_EIO, "reject log %s: %s", rj->log_path, strerror(errno));
    pthread_mutex_destroy(&rj->mu);
    pgetl__free(rj->path);
    pgetl__free(rj->log_path);
    pgetl__free(rj);
    return rc;
}
