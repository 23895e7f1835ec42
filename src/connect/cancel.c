/*
 * Bounded cancel requests.
 *
 * libpq 15's PQcancel opens a new connection to the server, sends the
 * request and waits for the server to close that connection, with no
 * deadline: against a hung server or network it blocks for ever (in
 * practice until the server's authentication_timeout, if the request got
 * through at all). pgetl runs it on a short-lived detached thread and waits
 * at most the connection's cancel bound: connect_timeout_s or io_timeout_s,
 * whichever is smaller and set (a cancel request is a connection attempt
 * that waits for one answer), else 10 s. A request still running then is
 * abandoned, not stopped: the thread owns the PGcancel, and the record it
 * shares with the caller is freed by whichever of the two lets go last, so
 * nothing is freed under the other and nothing leaks once PQcancel returns.
 *
 * A connection the io_timeout_s watchdog already shut down, or one libpq
 * knows is broken, is not cancelled at all: there is no command left to
 * stop, and a server that stalled would not answer the request either.
 */
#include "connect/connect.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

typedef struct cancel_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* the caller and the thread */
    bool done, sent;
    PGcancel *cancel; /* the thread's alone once it runs */
    char errbuf[256];
} cancel_job;

/* Drops one reference; called with j->mu held, returns with it released. */
static void job_release(cancel_job *j) {
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) {
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        pgetl__free(j);
    }
}

static void *cancel_main(void *arg) {
    cancel_job *j = arg;
    char errbuf[sizeof j->errbuf] = "";
    bool sent = PQcancel(j->cancel, errbuf, sizeof errbuf) == 1;
    PQfreeCancel(j->cancel);
    pthread_mutex_lock(&j->mu);
    j->cancel = NULL;
    j->sent = sent;
    memcpy(j->errbuf, errbuf, sizeof errbuf);
    j->done = true;
    pthread_cond_signal(&j->cv);
    job_release(j);
    return NULL;
}

static pgetl__cancel_result start_and_wait(PGcancel *cancel, double bound_s, char *errbuf,
                                           size_t size) {
    cancel_job *j = pgetl__calloc(1, sizeof *j);
    if (!j) {
        PQfreeCancel(cancel);
        snprintf(errbuf, size, "out of memory");
        return PGETL__CANCEL_FAILED;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->cancel = cancel;
    j->refs = 2;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &a, cancel_main, j);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        /* Never fall back to an unbounded PQcancel on this thread. */
        PQfreeCancel(cancel);
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        pgetl__free(j);
        snprintf(errbuf, size, "could not start the cancel thread (error %d)", rc);
        return PGETL__CANCEL_FAILED;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)(bound_s * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec += (long)(ns % 1000000000);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (!j->done && pthread_cond_timedwait(&j->cv, &j->mu, &ts) == 0) {
    }
    pgetl__cancel_result out;
    if (j->done) {
        out = j->sent ? PGETL__CANCEL_SENT : PGETL__CANCEL_FAILED;
        snprintf(errbuf, size, "%s", j->errbuf);
    } else {
        out = PGETL__CANCEL_TIMEOUT;
        snprintf(errbuf, size, "the cancel request got no answer within %.1f s", bound_s);
    }
    job_release(j);
    return out;
}

pgetl__cancel_result pgetl__conn_cancel(PGconn *pg, char *errbuf, size_t size) {
    char dummy[8];
    if (!errbuf || size == 0) {
        errbuf = dummy;
        size = sizeof dummy;
    }
    errbuf[0] = '\0';
    if (!pg || PQstatus(pg) != CONNECTION_OK || pgetl__conn_stalled(pg)) {
        snprintf(errbuf, size, "not sent: the connection is closed or was found stalled");
        return PGETL__CANCEL_SKIPPED;
    }
    PGcancel *cancel = PQgetCancel(pg);
    if (!cancel) {
        snprintf(errbuf, size, "not sent: no cancel key for this connection");
        return PGETL__CANCEL_FAILED;
    }
    double bound = pgetl__conn_cancel_bound(pg);
    pgetl__cancel_result out = start_and_wait(cancel, bound, errbuf, size);
    if (out == PGETL__CANCEL_TIMEOUT) {
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_WARN, "cancel_timeout")) {
            pgetl__log_double(&l, "bound_s", bound);
            pgetl__log_end(&l);
        }
    }
    return out;
}

void pgetl__conn_abandon(PGconn *pg) {
    /* shutdown, not close: the descriptor stays libpq's, so its number cannot
     * be reused under it; every later read or write fails at once and the
     * connection reads as broken (the pool then discards it). */
    int fd = pg ? PQsocket(pg) : -1;
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    if (pg)
        pgetl__conn_mark_abandoned(pg);
}
