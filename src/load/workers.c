/*
 * The send pipeline: one reader (the calling thread) cuts batches at row
 * boundaries and deals them round-robin to N worker threads, each owning
 * one connection and its transaction. With jobs 1 it is still used, with
 * one worker, so reading, scanning and converting the next batch overlap
 * the server's ingest of the current one. Splitting a CSV file by byte ranges
 * instead cannot know whether an offset lands inside a quoted field, so the
 * reader stays single; with 2 cores the server's ingest, not the scan, is
 * the bottleneck anyway.
 *
 * Memory: 2 batches per worker (one being sent, one queued) plus one being
 * filled; the reader blocks when all are in use, so memory is bounded
 * whatever the input size.
 *
 * Failure: the first error stops everyone (the reader gets no more free
 * batches; workers drop their queues) and is the one reported. Commit or
 * rollback of the N transactions is load.c's job, after all threads ended.
 */
#include "load/load_int.h"

#define QUEUE_DEPTH 2

typedef struct worker {
    struct pgetl_load_workers *w;
    pgetl_conn *conn;
    pthread_t thread;
    bool started;
    pgetl_load_batch *queue[QUEUE_DEPTH];
    int head, count;
    pthread_cond_t cond; /* queue not empty, or stop */
} worker;

struct pgetl_load_workers {
    pgetl_load_ctx *ctx;
    int n;
    worker *workers;
    int next;
    pgetl_load_batch *batches;
    int nbatches;
    pgetl_load_batch **free_list;
    int nfree;
    pthread_mutex_t mu;
    pthread_cond_t space; /* a free batch or queue slot appeared, or failure */
    bool stop;
    bool failed;
    pgetl_error error;
};

static void fail(struct pgetl_load_workers *w, const pgetl_error *e) {
    /* Called with mu held. The first failure wins. */
    if (!w->failed) {
        w->failed = true;
        pgetl__error_copy(&w->error, e);
    }
    pthread_cond_broadcast(&w->space);
    for (int i = 0; i < w->n; i++)
        pthread_cond_broadcast(&w->workers[i].cond);
}

static void *worker_main(void *arg) {
    worker *k = arg;
    struct pgetl_load_workers *w = k->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (k->count == 0 && !w->stop && !w->failed)
            pthread_cond_wait(&k->cond, &w->mu);
        if (k->count == 0 || w->failed)
            break;
        pgetl_load_batch *b = k->queue[k->head];
        pthread_mutex_unlock(&w->mu);

        pgetl_error e;
        int64_t remaining = w->ctx->max_errors - pgetl__rejects_count(w->ctx->rejects);
        int64_t loaded = 0;
        pgetl_code rc = pgetl__batch_send(w->ctx, k->conn, b,
                                          w->ctx->max_errors > 0 ? remaining + 1 : -1, &loaded, &e);
        pthread_mutex_lock(&w->ctx->mu);
        w->ctx->rows_loaded += loaded;
        w->ctx->batches_sent++;
        pthread_mutex_unlock(&w->ctx->mu);

        pthread_mutex_lock(&w->mu);
        k->head = (k->head + 1) % QUEUE_DEPTH;
        k->count--;
        w->free_list[w->nfree++] = b;
        pthread_cond_broadcast(&w->space);
        if (rc != PGETL_OK)
            fail(w, &e);
    }
    /* Batches still queued after a failure go back unsent. */
    while (k->count > 0) {
        w->free_list[w->nfree++] = k->queue[k->head];
        k->head = (k->head + 1) % QUEUE_DEPTH;
        k->count--;
    }
    pthread_cond_broadcast(&w->space);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

pgetl_code pgetl__workers_start(pgetl_load_ctx *ctx, pgetl_conn **conns, int n,
                                pgetl_load_workers **out, pgetl_error *err) {
    *out = NULL;
    pgetl_load_workers *w = pgetl__calloc(1, sizeof *w);
    if (!w)
        return pgetl__error_oom(err, "load workers");
    w->ctx = ctx;
    w->n = n;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->space, NULL);
    w->nbatches = n * QUEUE_DEPTH + 1;
    w->workers = pgetl__calloc((size_t)n, sizeof *w->workers);
    w->batches = pgetl__calloc((size_t)w->nbatches, sizeof *w->batches);
    w->free_list = pgetl__calloc((size_t)w->nbatches, sizeof *w->free_list);
    if (!w->workers || !w->batches || !w->free_list) {
        pgetl__workers_destroy(w);
        return pgetl__error_oom(err, "load workers");
    }
    for (int i = 0; i < w->nbatches; i++) {
        pgetl_code rc = pgetl__batch_init(&w->batches[i], ctx->batch_rows, err);
        if (rc != PGETL_OK) {
            w->nbatches = i;
            pgetl__workers_destroy(w);
            return rc;
        }
        w->free_list[w->nfree++] = &w->batches[i];
    }
    for (int i = 0; i < n; i++) {
        worker *k = &w->workers[i];
        k->w = w;
        k->conn = conns[i];
        pthread_cond_init(&k->cond, NULL);
    }
    for (int i = 0; i < n; i++) {
        worker *k = &w->workers[i];
        if (pthread_create(&k->thread, NULL, worker_main, k) != 0) {
            pgetl_error e;
            pgetl_error_set(&e, PGETL_ENOMEM, "load: cannot start worker thread %d", i);
            pthread_mutex_lock(&w->mu);
            fail(w, &e);
            pthread_mutex_unlock(&w->mu);
            pgetl__workers_finish(w, NULL);
            pgetl__workers_destroy(w);
            return pgetl__error_copy(err, &e);
        }
        k->started = true;
    }
    *out = w;
    return PGETL_OK;
}

pgetl_load_batch *pgetl__workers_get_free(pgetl_load_workers *w) {
    pthread_mutex_lock(&w->mu);
    while (w->nfree == 0 && !w->failed)
        pthread_cond_wait(&w->space, &w->mu);
    pgetl_load_batch *b = w->failed ? NULL : w->free_list[--w->nfree];
    pthread_mutex_unlock(&w->mu);
    return b;
}

void pgetl__workers_put_free(pgetl_load_workers *w, pgetl_load_batch *b) {
    pthread_mutex_lock(&w->mu);
    w->free_list[w->nfree++] = b;
    pthread_cond_broadcast(&w->space);
    pthread_mutex_unlock(&w->mu);
}

void pgetl__workers_submit(pgetl_load_workers *w, pgetl_load_batch *b) {
    pthread_mutex_lock(&w->mu);
    worker *k = &w->workers[w->next];
    w->next = (w->next + 1) % w->n;
    while (k->count == QUEUE_DEPTH && !w->failed)
        pthread_cond_wait(&w->space, &w->mu);
    if (w->failed) {
        w->free_list[w->nfree++] = b;
    } else {
        k->queue[(k->head + k->count) % QUEUE_DEPTH] = b;
        k->count++;
        pthread_cond_signal(&k->cond);
    }
    pthread_mutex_unlock(&w->mu);
}

pgetl_code pgetl__workers_finish(pgetl_load_workers *w, pgetl_error *err) {
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    for (int i = 0; i < w->n; i++)
        pthread_cond_broadcast(&w->workers[i].cond);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->n; i++) {
        if (w->workers[i].started) {
            pthread_join(w->workers[i].thread, NULL);
            w->workers[i].started = false;
        }
    }
    if (w->failed)
        return pgetl__error_copy(err, &w->error);
    return PGETL_OK;
}

void pgetl__workers_destroy(pgetl_load_workers *w) {
    if (!w)
        return;
    for (int i = 0; w->workers && i < w->n; i++)
        pthread_cond_destroy(&w->workers[i].cond);
    for (int i = 0; w->batches && i < w->nbatches; i++)
        pgetl__batch_free(&w->batches[i]);
    pgetl__free(w->workers);
    pgetl__free(w->batches);
    pgetl__free(w->free_list);
    pthread_cond_destroy(&w->space);
    pthread_mutex_destroy(&w->mu);
    pgetl__free(w);
}
