/*
 * The io_timeout_s watchdog: bounds how long a call can wait on a server or
 * network that stopped answering.
 *
 * pgetl drives libpq in blocking mode, and libpq's blocking waits have no
 * deadline. Rather than wrap every wait, one thread watches every TCP
 * connection opened with io_timeout_s > 0 through the kernel's TCP_INFO: a
 * connection whose last sent byte is newer than its last received byte has
 * a request outstanding, and when no byte has moved in either direction for
 * io_timeout_s it is stalled. The watchdog then shuts the socket down, which
 * wakes libpq's wait with an error; pgetl__error_from_pg() asks us for the
 * reason so the caller's message names the bound. pgetl brackets its
 * blocking calls (pgetl__conn_wait_begin/end: statements, COPY start, COPY
 * writes, end and reads), which is what matters in practice: the kernel
 * updates "last received" on bare ACKs too, so the TCP heuristic alone only
 * sees a peer that stopped acknowledging. Inside a COPY, between calls, the
 * time is the caller's own and never counts.
 *
 * A Unix socket has no TCP_INFO and no byte counters at all, and its queue
 * lengths alone cannot tell a stream that flows from one that stopped (a
 * fast reader keeps the receive queue empty; a blocked writer keeps the send
 * queue full). But a Unix socket means the server runs on this machine, so
 * while a bracketed wait is outstanding the watchdog samples the receive
 * and send queues (SIOCINQ/SIOCOUTQ) and the backend's CPU time
 * (/proc/<pid>/stat): a backend that is sending, reading or computing uses
 * CPU. When none of the three changed for io_timeout_s, nothing moved: the
 * same stall, the same shutdown and the same message as for TCP. The
 * backend is trusted to be PQbackendPID() only when its parent is the
 * socket's peer (SO_PEERCRED, the postmaster); a server in another PID
 * namespace or behind a pooler's socket cannot be observed, and such a
 * connection is not watched (a DEBUG log line says so).
 *
 * The watchdog holds its own dup() of each socket, so it can never shut down
 * a descriptor number that libpq closed and the process reused; the entry
 * (and the dup) goes away in pgetl__conn_finish(). An idle connection (the
 * last thing that moved was the server's answer) is never touched.
 *
 * Every connection opened with any bound gets an entry, also when nothing
 * is watched (io_timeout_s 0): cancel.c asks it for the connection's cancel
 * bound and whether the watchdog already found it stalled.
 */
#define _GNU_SOURCE /* struct ucred (SO_PEERCRED) */
#include "connect/connect.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* What a Unix socket's watch compares between samples. */
typedef struct unix_sample {
    int inq, outq;          /* bytes queued to us / not yet read by the server */
    unsigned long long cpu; /* the backend's utime + stime, in clock ticks     */
} unix_sample;

typedef struct watch {
    struct watch *next;
    const PGconn *pg;
    int fd;                                   /* our dup of libpq's socket; -1: none       */
    uint32_t limit_ms;                        /* io_timeout_s; 0: nothing watched          */
    double connect_timeout_s, io_timeout_s;   /* for the cancel bound                      */
    double user_timeout_s, keepalives_idle_s; /* for naming the kernel's bound             */
    bool fired;
    bool abandoned;   /* pgetl__conn_abandon gave it up                       */
    bool awaiting;    /* inside a bracketed blocking wait on the server     */
    bool copy_in;     /* in a COPY between calls: the caller's own time      */
    uint32_t idle_ms; /* how long nothing had moved when it fired        */
    /* Unix sockets only. */
    bool is_unix;
    int backend_pid;
    bool sampled; /* `last` holds a sample from this wait           */
    unix_sample last;
    int64_t quiet_since_ns; /* when the wait began or something last moved    */
} watch;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static watch *head;
static bool running;
static atomic_int nwatched; /* entries whose waits are watched: lets others skip the lock */

/* Reads a process's parent and CPU time from /proc; false when it is gone. */
static bool proc_stat(int pid, int *ppid, unsigned long long *cpu) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields follow the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    char state;
    unsigned long long utime, stime;
    int parent;
    if (sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state, &parent,
               &utime, &stime) != 4)
        return false;
    if (ppid)
        *ppid = parent;
    if (cpu)
        *cpu = utime + stime;
    return true;
}

static bool unix_sample_take(const watch *w, unix_sample *s) {
    if (ioctl(w->fd, SIOCINQ, &s->inq) != 0 || ioctl(w->fd, SIOCOUTQ, &s->outq) != 0)
        return false;
    s->cpu = 0;
    /* A backend that is gone counts as unchanged: its socket says the rest. */
    (void)proc_stat(w->backend_pid, NULL, &s->cpu);
    return true;
}

/* A Unix socket's stall: an outstanding wait in which no queue and no CPU time moved. */
static bool unix_stalled(watch *w, int64_t now) {
    unix_sample s;
    if (!w->awaiting || !unix_sample_take(w, &s))
        return false;
    if (!w->sampled || s.inq != w->last.inq || s.outq != w->last.outq || s.cpu != w->last.cpu) {
        if (w->sampled)
            w->quiet_since_ns = now;
        w->sampled = true;
        w->last = s;
        return false;
    }
    int64_t quiet_ms = (now - w->quiet_since_ns) / 1000000;
    if (quiet_ms < (int64_t)w->limit_ms)
        return false;
    w->idle_ms = quiet_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)quiet_ms;
    return true;
}

/* One pass: returns the next sleep in ms (a tenth of the smallest bound). */
static uint32_t scan(void) {
    uint32_t tick = 1000;
    int64_t now = pgetl__now_ns();
    for (watch *w = head; w; w = w->next) {
        if (w->limit_ms == 0 || w->fired)
            continue;
        if (w->limit_ms / 10 < tick)
            tick = w->limit_ms / 10;
        if (w->is_unix) {
            if (unix_stalled(w, now)) {
                w->fired = true;
                shutdown(w->fd, SHUT_RDWR);
                pgetl_logline l;
                if (pgetl__log_begin(&l, PGETL_LOG_WARN, "io_timeout")) {
                    pgetl__log_int(&l, "limit_ms", w->limit_ms);
                    pgetl__log_int(&l, "idle_ms", w->idle_ms);
                    pgetl__log_str(&l, "socket", "unix");
                    pgetl__log_end(&l);
                }
            }
            continue;
        }
        struct tcp_info ti;
        socklen_t len = sizeof ti;
        if (getsockopt(w->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.tcpi_state != 1)
            continue; /* not an established TCP connection */
        /* A request is outstanding when pgetl sent after it last received, or
         * is blocked reading a COPY stream that stopped mid-way. */
        bool outstanding =
            w->awaiting || (!w->copy_in && ti.tcpi_last_data_sent < ti.tcpi_last_data_recv);
        uint32_t idle = ti.tcpi_last_data_sent < ti.tcpi_last_data_recv ? ti.tcpi_last_data_sent
                                                                        : ti.tcpi_last_data_recv;
        if (outstanding && idle >= w->limit_ms) {
            w->fired = true;
            w->idle_ms = idle;
            shutdown(w->fd, SHUT_RDWR);
            pgetl_logline l;
            if (pgetl__log_begin(&l, PGETL_LOG_WARN, "io_timeout")) {
                pgetl__log_int(&l, "limit_ms", w->limit_ms);
                pgetl__log_int(&l, "idle_ms", w->idle_ms);
                pgetl__log_end(&l);
            }
        }
    }
    return tick < 20 ? 20 : tick;
}

static void *watch_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    while (head) {
        uint32_t ms = scan();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cv, &mu, &ts);
    }
    running = false;
    pthread_mutex_unlock(&mu);
    return NULL;
}

/*
 * Whether the kernel closed the socket itself after unanswered probes or
 * retransmissions (libpq often reports that as "server closed the
 * connection unexpectedly"): closed, never shut down by us, with probes or
 * retransmits outstanding at the end.
 */
static bool kernel_gave_up(int fd) {
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    return ti.tcpi_state == 7 /* TCP_CLOSE */ &&
           (ti.tcpi_probes > 0 || ti.tcpi_retransmits > 0 || ti.tcpi_backoff > 0);
}

static const char *note(const struct pg_conn *pg, const char *text, char *buf, size_t size) {
    const char *out = NULL;
    pthread_mutex_lock(&mu);
    for (watch *w = head; w; w = w->next) {
        if (w->pg != pg)
            continue;
        if (w->fired) {
            snprintf(buf, size,
                     "io_timeout_s (%.1f s) expired: the server sent nothing and took nothing "
                     "for %.1f s while a request was outstanding; the connection was closed",
                     w->limit_ms / 1000.0, w->idle_ms / 1000.0);
            out = buf;
        } else if (w->abandoned) {
            snprintf(buf, size,
                     "the connection was given up earlier: a command on it could not be stopped "
                     "within %.1f s (the server did not answer)",
                     w->connect_timeout_s > 0 &&
                             (w->io_timeout_s <= 0 || w->connect_timeout_s < w->io_timeout_s)
                         ? w->connect_timeout_s
                         : w->io_timeout_s);
            out = buf;
        } else if (!w->is_unix && (w->user_timeout_s > 0 || w->keepalives_idle_s > 0) &&
                   ((text && strstr(text, "timed out")) || kernel_gave_up(w->fd))) {
            /* ETIMEDOUT from the kernel: one of the TCP bounds gave up. */
            if (w->user_timeout_s > 0 && w->keepalives_idle_s > 0)
                snprintf(buf, size,
                         "tcp_user_timeout_s (%g s) or keepalives_idle_s (%g s) expired: the "
                         "kernel dropped the connection",
                         w->user_timeout_s, w->keepalives_idle_s);
            else if (w->user_timeout_s > 0)
                snprintf(buf, size,
                         "tcp_user_timeout_s (%g s) expired: sent data stayed unacknowledged "
                         "and the kernel dropped the connection",
                         w->user_timeout_s);
            else
                snprintf(buf, size,
                         "keepalives_idle_s (%g s) expired: keepalive probes went unanswered "
                         "and the kernel dropped the connection",
                         w->keepalives_idle_s);
            out = buf;
        }
        break;
    }
    pthread_mutex_unlock(&mu);
    return out;
}

/* The backend's pid when it can be observed through /proc, else 0. */
static int unix_backend(const PGconn *pg, int fd) {
    struct ucred cr;
    socklen_t len = sizeof cr;
    int ppid = 0, pid = PQbackendPID(pg);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.pid <= 0 || pid <= 0 ||
        !proc_stat(pid, &ppid, NULL) || ppid != cr.pid)
        return 0;
    return pid;
}

void pgetl__conn_watch(const PGconn *pg, const pgetl_config *cfg) {
    if (!pg || !cfg || PQsocket(pg) < 0 ||
        (cfg->io_timeout_s <= 0 && cfg->tcp_user_timeout_s <= 0 && cfg->keepalives_idle_s <= 0 &&
         cfg->connect_timeout_s <= 0))
        return;
    int sock = PQsocket(pg);
    struct sockaddr_storage addr;
    socklen_t alen = sizeof addr;
    bool is_unix =
        getsockname(sock, (struct sockaddr *)&addr, &alen) == 0 && addr.ss_family == AF_UNIX;
    watch *w = pgetl__calloc(1, sizeof *w);
    if (!w)
        return;
    double ms = cfg->io_timeout_s * 1000.0;
    w->limit_ms = cfg->io_timeout_s <= 0 ? 0
                  : ms > 86400000.0      ? 86400000u
                                         : (uint32_t)(ms < 1 ? 1 : ms);
    w->connect_timeout_s = cfg->connect_timeout_s;
    w->io_timeout_s = cfg->io_timeout_s;
    w->is_unix = is_unix;
    w->pg = pg;
    w->fd = -1;
    if (!is_unix) {
        w->user_timeout_s = cfg->tcp_user_timeout_s;
        w->keepalives_idle_s = cfg->keepalives_idle_s;
    } else if (w->limit_ms > 0 && (w->backend_pid = unix_backend(pg, sock)) == 0) {
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_DEBUG, "io_timeout_unwatched")) {
            pgetl__log_str(&l, "reason",
                           "the server process behind the Unix socket cannot be "
                           "observed from here");
            pgetl__log_end(&l);
        }
        w->limit_ms = 0;
    }
    bool needs_fd = w->limit_ms > 0 || w->user_timeout_s > 0 || w->keepalives_idle_s > 0;
    if (needs_fd && (w->fd = fcntl(sock, F_DUPFD_CLOEXEC, 0)) < 0) {
        pgetl__free(w);
        return;
    }
    pgetl__error_pg_set_note(note);
    pthread_mutex_lock(&mu);
    w->next = head;
    head = w;
    if (w->limit_ms > 0) {
        atomic_fetch_add(&nwatched, 1);
        if (!running) {
            pthread_t t;
            pthread_attr_t a;
            pthread_attr_init(&a);
            pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
            running = pthread_create(&t, &a, watch_main, NULL) == 0;
            pthread_attr_destroy(&a);
        } else {
            pthread_cond_signal(&cv);
        }
    }
    pthread_mutex_unlock(&mu);
}

void pgetl__conn_finish(PGconn *pg) {
    if (!pg)
        return;
    watch *gone = NULL;
    pthread_mutex_lock(&mu);
    for (watch **p = &head; *p; p = &(*p)->next) {
        if ((*p)->pg == pg) {
            gone = *p;
            *p = gone->next;
            if (gone->limit_ms > 0)
                atomic_fetch_sub(&nwatched, 1);
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    PQfinish(pg);
    if (gone) {
        if (gone->fd >= 0)
            close(gone->fd);
        pgetl__free(gone);
    }
}

/* The default cancel bound when a connection has neither bound set. */
#define CANCEL_BOUND_DEFAULT_S 10.0

double pgetl__conn_cancel_bound(const PGconn *pg) {
    double bound = 0;
    pthread_mutex_lock(&mu);
    for (watch *w = head; w; w = w->next) {
        if (w->pg != pg)
            continue;
        bound = w->connect_timeout_s;
        if (w->io_timeout_s > 0 && (bound <= 0 || w->io_timeout_s < bound))
            bound = w->io_timeout_s;
        break;
    }
    pthread_mutex_unlock(&mu);
    return bound > 0 ? bound : CANCEL_BOUND_DEFAULT_S;
}

void pgetl__conn_mark_abandoned(const PGconn *pg) {
    pthread_mutex_lock(&mu);
    for (watch *w = head; w; w = w->next) {
        if (w->pg == pg) {
            w->abandoned = true;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

unsigned long long pgetl__conn_backend_cpu(const PGconn *pg) {
    int pid = 0;
    pthread_mutex_lock(&mu);
    for (watch *w = head; w; w = w->next) {
        if (w->pg == pg) {
            pid = w->is_unix ? w->backend_pid : 0;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    unsigned long long cpu = 0;
    if (pid > 0)
        (void)proc_stat(pid, NULL, &cpu);
    return cpu;
}

double pgetl__conn_io_timeout(const PGconn *pg) {
    double s = 0;
    pthread_mutex_lock(&mu);
    for (watch *w = head; w; w = w->next) {
        if (w->pg == pg) {
            s = w->io_timeout_s;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return s;
}

bool pgetl__conn_stalled(const PGconn *pg) {
    bool fired = false;
    pthread_mutex_lock(&mu);
    for (watch *w = head; w; w = w->next) {
        if (w->pg == pg) {
            fired = w->fired || w->abandoned;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return fired;
}

static void set_awaiting(const PGconn *pg, bool on) {
    /* Read on the connection's own thread, so no race with libpq: still in
     * a COPY after a call means the next pause is the caller's (a producer
     * between writes, a consumer between batches), never a server stall. */
    bool copy_in = !on && PQtransactionStatus(pg) == PQTRANS_ACTIVE;
    int64_t now = on ? pgetl__now_ns() : 0;
    pthread_mutex_lock(&mu);
    for (watch *w = head; w; w = w->next) {
        if (w->pg == pg) {
            w->awaiting = on;
            w->copy_in = copy_in;
            /* A Unix socket's quiet time counts from the start of this wait. */
            w->sampled = false;
            w->quiet_since_ns = now;
        }
    }
    pthread_mutex_unlock(&mu);
}

void pgetl__conn_wait_begin(const PGconn *pg) {
    if (atomic_load(&nwatched) != 0)
        set_awaiting(pg, true);
}

void pgetl__conn_wait_end(const PGconn *pg) {
    if (atomic_load(&nwatched) != 0)
        set_awaiting(pg, false);
}

int pgetl__conn_get_copy_data(PGconn *pg, char **buf) {
    if (atomic_load(&nwatched) == 0)
        return PQgetCopyData(pg, buf, 0);
    /* Only a wait that would block needs the watchdog's attention. */
    int n = PQgetCopyData(pg, buf, 1);
    if (n != 0)
        return n;
    set_awaiting(pg, true);
    n = PQgetCopyData(pg, buf, 0);
    set_awaiting(pg, false);
    return n;
}
