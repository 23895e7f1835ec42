/*
 * faultproxy: a loopback TCP proxy for fault-injection tests (header-only).
 *
 * fp_start(port) listens on 127.0.0.1:0 and forwards every accepted
 * connection to 127.0.0.1:port from one thread (non-blocking sockets, one
 * poll loop, a bounded buffer per direction). A rule per direction says what
 * happens once a connection has forwarded a given number of bytes that way:
 *
 *   FP_PASS   forward normally
 *   FP_STALL  stop forwarding (and stop reading, so the sender's buffers fill
 *             and it sees a zero window) without closing anything
 *   FP_CUT    close both sides of the connection
 *   FP_SLOW   forward at most `rate` bytes per second
 *
 * fp_set() applies a rule to connections open now (counting from the bytes
 * they have already forwarded, so `after` = 0 means "from now") and to later
 * ones (counting from their first byte). fp_set_one() gives one open
 * connection a rule of its own (until the next fp_set of that direction).
 * When either end closes, the proxy closes the other, so a client that gives
 * up frees its server backend even while a direction is stalled. Traffic only ever goes to 127.0.0.1.
 */
#ifndef PGETL_TESTS_FAULTPROXY_H
#define PGETL_TESTS_FAULTPROXY_H

/* accept4 and POLLRDHUP are GNU: define _GNU_SOURCE before the first include. */
#ifndef _GNU_SOURCE
#error "faultproxy.h needs _GNU_SOURCE defined before any system header"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef enum fp_mode { FP_PASS = 0, FP_STALL, FP_CUT, FP_SLOW } fp_mode;
typedef enum fp_dir { FP_UP = 0 /* client -> server */, FP_DOWN = 1 /* server -> client */ } fp_dir;

#define FP_MAX_CONNS 64
#define FP_BUF 65536

typedef struct fp_rule {
    fp_mode mode;
    int64_t after; /* bytes (per connection, this direction) before the rule applies */
    int64_t rate;  /* FP_SLOW: bytes per second                                      */
} fp_rule;

typedef struct fp_pair {
    int fd[2];            /* [0] client side, [1] server side                 */
    bool eof[2];          /* direction's source reached EOF, pending flushed  */
    int64_t count[2];     /* bytes forwarded per direction                   */
    int64_t threshold[2]; /* the rule applies from this count                 */
    char buf[2][FP_BUF];  /* bytes read from the source, not yet written      */
    size_t len[2], off[2];
    double budget[2]; /* FP_SLOW allowance                                */
    fp_rule own[2];   /* this connection's rule, when has_own (fp_set_one) */
    bool has_own[2];
} fp_pair;

typedef struct faultproxy {
    int lfd;
    int port, target_port;
    pthread_t thread;
    pthread_mutex_t mu;
    bool stop;
    fp_rule rule[2];
    fp_pair *pairs[FP_MAX_CONNS];
    int npairs, accepted;
    int64_t total[2]; /* bytes read per direction, all connections       */
} faultproxy;

static inline double fp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void fp_pair_close(faultproxy *p, int i) {
    fp_pair *c = p->pairs[i];
    for (int s = 0; s < 2; s++)
        if (c->fd[s] >= 0)
            close(c->fd[s]);
    free(c);
    p->pairs[i] = p->pairs[--p->npairs];
}

static inline void fp_accept(faultproxy *p) {
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->target_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fp_pair *c = p->npairs < FP_MAX_CONNS ? calloc(1, sizeof *c) : NULL;
    if (sfd < 0 || !c || connect(sfd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(cfd);
        if (sfd >= 0)
            close(sfd);
        free(c);
        return;
    }
    fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK);
    c->fd[0] = cfd;
    c->fd[1] = sfd;
    for (int d = 0; d < 2; d++)
        c->threshold[d] = p->rule[d].after;
    p->pairs[p->npairs++] = c;
    p->accepted++;
}

/* Moves bytes in direction d of pair c; returns false when the pair must close. */
static inline const fp_rule *fp_rule_of(const faultproxy *p, const fp_pair *c, int d) {
    return c->has_own[d] ? &c->own[d] : &p->rule[d];
}

static inline bool fp_pump(faultproxy *p, fp_pair *c, int d, short rev_src, short rev_dst,
                           double dt) {
    int src = c->fd[d], dst = c->fd[1 - d];
    const fp_rule *r = fp_rule_of(p, c, d);
    bool active = c->count[d] >= c->threshold[d];
    if (active && r->mode == FP_CUT)
        return false;
    if ((rev_dst & POLLOUT) && c->len[d] > c->off[d]) {
        /* MSG_NOSIGNAL: a peer that went away must not SIGPIPE the test. */
        ssize_t w = send(dst, c->buf[d] + c->off[d], c->len[d] - c->off[d], MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return false;
        if (w > 0)
            c->off[d] += (size_t)w;
        if (c->off[d] == c->len[d])
            c->off[d] = c->len[d] = 0;
    }
    if (r->mode == FP_SLOW && active) {
        c->budget[d] += (double)r->rate * dt;
        if (c->budget[d] > (double)r->rate)
            c->budget[d] = (double)r->rate;
    }
    if ((rev_src & (POLLIN | POLLHUP | POLLERR)) && c->len[d] == 0) {
        int64_t want = FP_BUF;
        if (!active && c->threshold[d] - c->count[d] < want)
            want = c->threshold[d] - c->count[d]; /* stop exactly at the threshold */
        if (active && r->mode == FP_STALL)
            want = 0;
        if (active && r->mode == FP_SLOW && (int64_t)c->budget[d] < want)
            want = (int64_t)c->budget[d];
        if (want > 0 && !c->eof[d]) {
            ssize_t n = read(src, c->buf[d], (size_t)want);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return false;
            if (n == 0) {
                /* The source closed: everything it sent has been forwarded (len
                 * is 0 here), so pass the close on as a half-close. */
                c->eof[d] = true;
                shutdown(dst, SHUT_WR);
                return !c->eof[1 - d];
            }
            if (n > 0) {
                c->len[d] = (size_t)n;
                c->count[d] += n;
                p->total[d] += n;
                if (active && r->mode == FP_SLOW)
                    c->budget[d] -= (double)n;
            }
        }
    }
    if (rev_src & POLLERR)
        return false;
    /* A stalled direction never reads, so it learns of its source closing here. */
    if ((rev_src & POLLRDHUP) && active && r->mode == FP_STALL)
        return false;
    return true;
}

/* Whether direction d of c wants POLLIN now (never while stalled or out of budget). */
static inline bool fp_can_read(const faultproxy *p, const fp_pair *c, int d) {
    if (c->len[d] != 0 || c->eof[d])
        return false;
    if (c->count[d] < c->threshold[d])
        return true;
    const fp_rule *r = fp_rule_of(p, c, d);
    if (r->mode == FP_STALL)
        return false;
    if (r->mode == FP_SLOW && c->budget[d] < 1.0)
        return false;
    return true;
}

static inline void *fp_main(void *arg) {
    faultproxy *p = arg;
    double last = fp_now();
    for (;;) {
        struct pollfd fds[1 + 2 * FP_MAX_CONNS];
        pthread_mutex_lock(&p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        fds[0] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (int i = 0; i < p->npairs; i++) {
            fp_pair *c = p->pairs[i];
            for (int s = 0; s < 2; s++) {
                /* fd[s] is the source of direction s and the destination of 1 - s. */
                short ev = c->eof[s] ? 0 : POLLRDHUP;
                if (fp_can_read(p, c, s))
                    ev |= POLLIN;
                if (c->len[1 - s] > c->off[1 - s])
                    ev |= POLLOUT;
                fds[1 + 2 * i + s] = (struct pollfd){.fd = c->fd[s], .events = ev};
            }
        }
        int n = p->npairs;
        pthread_mutex_unlock(&p->mu);
        poll(fds, (nfds_t)(1 + 2 * n), 20);
        pthread_mutex_lock(&p->mu);
        double now = fp_now(), dt = now - last;
        last = now;
        /* Pairs only change in this thread, so indexes from before the poll hold. */
        for (int i = n - 1; i >= 0; i--) {
            fp_pair *c = p->pairs[i];
            short r0 = fds[1 + 2 * i].revents, r1 = fds[2 + 2 * i].revents;
            bool ok = fp_pump(p, c, FP_UP, r0, r1, dt) && fp_pump(p, c, FP_DOWN, r1, r0, dt);
            /* A stalled direction still notices its source going away. */
            if (!ok)
                fp_pair_close(p, i);
        }
        if (fds[0].revents & POLLIN)
            fp_accept(p);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* Starts a proxy to 127.0.0.1:target_port; NULL on failure. */
static inline faultproxy *fp_start(int target_port) {
    faultproxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->target_port = target_port;
    pthread_mutex_init(&p->mu, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->lfd, 64) != 0 || getsockname(p->lfd, (struct sockaddr *)&a, &len) != 0) {
        if (p->lfd >= 0)
            close(p->lfd);
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    if (pthread_create(&p->thread, NULL, fp_main, p) != 0) {
        close(p->lfd);
        free(p);
        return NULL;
    }
    return p;
}

static inline int fp_port(const faultproxy *p) {
    return p->port;
}

/* Sets direction d's rule (see the top). FP_SLOW uses rate bytes/s. */
static inline void fp_set(faultproxy *p, fp_dir d, fp_mode mode, int64_t after, int64_t rate) {
    pthread_mutex_lock(&p->mu);
    p->rule[d] = (fp_rule){.mode = mode, .after = after, .rate = rate};
    /* Rebased under the same lock as the rule, so no pump sees one without the other. */
    for (int i = 0; i < p->npairs; i++) {
        p->pairs[i]->threshold[d] = p->pairs[i]->count[d] + after;
        p->pairs[i]->budget[d] = 0;
        p->pairs[i]->has_own[d] = false;
    }
    pthread_mutex_unlock(&p->mu);
}

/*
 * Sets direction d's rule for the open connection `index` only (0 = the
 * oldest while none has closed: connections are kept in accept order until
 * one closes). Returns false when there is no such connection.
 */
static inline bool fp_set_one(faultproxy *p, int index, fp_dir d, fp_mode mode, int64_t after,
                              int64_t rate) {
    pthread_mutex_lock(&p->mu);
    bool ok = index >= 0 && index < p->npairs;
    if (ok) {
        fp_pair *c = p->pairs[index];
        c->own[d] = (fp_rule){.mode = mode, .after = after, .rate = rate};
        c->has_own[d] = true;
        c->threshold[d] = c->count[d] + after;
        c->budget[d] = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* Both directions back to FP_PASS. */
static inline void fp_pass(faultproxy *p) {
    fp_set(p, FP_UP, FP_PASS, 0, 0);
    fp_set(p, FP_DOWN, FP_PASS, 0, 0);
}

/* Connections open through the proxy now. */
static inline int fp_nconns(faultproxy *p) {
    pthread_mutex_lock(&p->mu);
    int n = p->npairs;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Connections accepted since the start. */
static inline int fp_accepted(faultproxy *p) {
    pthread_mutex_lock(&p->mu);
    int n = p->accepted;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Bytes the proxy has taken in direction d, over all connections so far. */
static inline int64_t fp_forwarded(faultproxy *p, fp_dir d) {
    pthread_mutex_lock(&p->mu);
    int64_t n = p->total[d];
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Closes every open connection now (the rules stay). */
static inline void fp_cut_all(faultproxy *p) {
    pthread_mutex_lock(&p->mu);
    while (p->npairs > 0)
        fp_pair_close(p, p->npairs - 1);
    pthread_mutex_unlock(&p->mu);
}

/* Stops the thread, closes everything, frees. Accepts NULL. */
static inline void fp_stop(faultproxy *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    while (p->npairs > 0)
        fp_pair_close(p, p->npairs - 1);
    close(p->lfd);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

#endif /* PGETL_TESTS_FAULTPROXY_H */
