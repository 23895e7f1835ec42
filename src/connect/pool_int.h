/*
 * Private pool state shared by pool.c (life cycle, hand-off), pool_acquire.c,
 * pool_release.c, pool_maint.c (the maintenance thread), pool_registry.c
 * (which pool owns a pointer) and global.c (the process-wide pool).
 *
 * Design note. One mutex guards everything; the hot path (an idle, recently
 * used connection handed out and given back) takes it once per call and
 * makes no system call (the clock is a vDSO read). Connections live in one
 * slot array allocated at create time (pool_max entries) and never moved, so
 * "is this pointer one of ours?" is an address-range test, and a pgetl_conn
 * handed to a caller is simply &slot->conn. Idle slots form a LIFO stack so
 * the hottest connection is reused and cold ones age out at the bottom.
 * Callers that must wait queue FIFO, each on its own semaphore; a released
 * or freshly opened connection is handed straight to the head waiter, so
 * there is no thundering herd and no barging. Everything slow
 * (opening, expiring, reconnect backoff, leak reports) happens on the
 * maintenance thread.
 */
#ifndef PGETL_SRC_CONNECT_POOL_INT_H
#define PGETL_SRC_CONNECT_POOL_INT_H

#include "connect/connect.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

typedef enum pgetl_slot_state {
    PGETL_SLOT_EMPTY = 0, /* no connection                                   */
    PGETL_SLOT_OPENING,   /* the maintenance thread is connecting            */
    PGETL_SLOT_IDLE,      /* on the idle stack                               */
    PGETL_SLOT_OUT,       /* with a caller (or being checked for acquire)    */
    PGETL_SLOT_RETURNING  /* being released: rollback etc. outside the lock  */
} pgetl_slot_state;

typedef struct pgetl_pool_slot {
    pgetl_conn conn; /* first member: &slot->conn == (pgetl_conn *)slot */
    pgetl_slot_state state;
    uint32_t dsn_gen;   /* which DSN opened it (rotation retires old ones)  */
    bool leak_reported; /* logged once per hand-out                         */
    bool server_fatal;  /* the server sent FATAL/PANIC: the session is over */
    int line;           /* where it was acquired                            */
    const char *file;
    int64_t opened_ns;
    int64_t expires_ns;    /* max lifetime with jitter; 0 = never              */
    int64_t idle_since_ns; /* when it was last given back                      */
    int64_t acquired_ns;
} pgetl_pool_slot;

/*
 * A caller queued in acquire, on its own stack. Whoever hands it a
 * connection does its bookkeeping under mu and then posts `sem` (after
 * dropping mu), so a served waiter wakes once and never takes the pool lock
 * again; only failed or timed-out waiters do. `slot` is atomic because the
 * served waiter reads it without mu.
 */
typedef struct pgetl_pool_waiter {
    sem_t sem;
    struct pgetl_pool_waiter *next;
    _Atomic(struct pgetl_pool_slot *) slot; /* set when served                  */
    pgetl_code fail;                        /* set (under mu) when failed       */
    const char *file;
    int line;
    int64_t start_ns;
} pgetl_pool_waiter;

struct pgetl_pool {
    pthread_mutex_t mu;
    pthread_condattr_t cond_attr; /* CLOCK_MONOTONIC for every timed wait    */
    pthread_cond_t maint_cv;      /* wakes the maintenance thread            */
    pthread_cond_t drain_cv;      /* destroy waits for waiters/thread to go  */

    pgetl_config cfg; /* strings below replace the caller's borrowed ones */
    char *dsn;
    char *app_name;
    uint32_t dsn_gen;

    pgetl_pool_slot *slots; /* pool_max entries, never moved */
    pgetl_pool_slot **idle; /* LIFO stack of idle slots      */
    int n_idle;
    int n_open;    /* slots not EMPTY (OPENING included)            */
    int n_opening; /* OPENING                                       */
    int n_out;     /* OUT or RETURNING                              */

    pgetl_pool_waiter *head, *tail;
    int n_queued;  /* waiters in the queue, not yet served (growth demand) */
    int n_waiting; /* threads inside wait_turn (destroy waits for 0)      */

    bool want_conn; /* an acquire found nothing while down: keep trying */
    bool closed;
    bool destroyed;
    bool freeing;
    bool maint_started, maint_join_claimed, maint_done;
    pthread_t maint;
    int64_t tick_ns;

    /* Reconnect state: 0 when the last attempt succeeded. */
    int64_t fail_since_ns;
    int64_t next_attempt_ns;
    int64_t backoff_ns;
    bool down; /* failing longer than reconnect_timeout_s */
    pgetl_error last_err;
    uint64_t rng;

    /* Counters for pgetl_pool_get_stats. */
    int64_t opened, closed_count, acquired, timeouts, rejected, lost, returned_bad, connect_errors,
        leaks_reported;
    int64_t wait_ns;

    struct pgetl_pool *reg_next; /* pool_registry.c's list */
};

/*
 * The pool's clock for per-hand-out timestamps (idle since, acquired at,
 * expiry): CLOCK_MONOTONIC_COARSE, a vDSO read of the last timer tick that
 * costs ~6 ns instead of ~22 ns (bench_pool: the two clock reads were a
 * third of an uncontended acquire+release). Its resolution is one kernel
 * tick (1-4 ms), which every limit here tolerates. Waits and timeouts use
 * pgetl__now_ns() (precise).
 */
static inline int64_t pgetl__pool_clock_ns(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Idle connections unused for longer than this get a liveness check on acquire
 * (a zero-timeout poll(), plus PQconsumeInput when something arrived). A
 * connection used within the last millisecond (as the coarse clock sees it:
 * within the same kernel tick) is handed out unchecked, which keeps the hot
 * path free of system calls; one that died in that window fails on first use
 * and is discarded on release, like any connection that dies while out. */
#define PGETL_POOL_CHECK_AFTER_NS 1000000

/* Reconnect backoff: starts here, doubles per failure, capped. */
#define PGETL_POOL_BACKOFF_MIN_NS 50000000LL
#define PGETL_POOL_BACKOFF_MAX_NS 2000000000LL

/* ---- pool.c ---------------------------------------------------------------- */

/* Marks a slot OUT for a caller (file:line for leak reports). Caller holds mu. */
void pgetl__pool_take_slot(pgetl_pool *pool, pgetl_pool_slot *slot, const char *file, int line,
                           int64_t now);

/* Structured warnings about a slot (with where it was acquired), or plain. */
void pgetl__pool_log_slot(pgetl_log_level level, const char *event, const pgetl_pool_slot *slot,
                          const char *msg, int64_t now);
void pgetl__pool_log(pgetl_log_level level, const char *event, const char *msg);

/* Unlinks the pool from the registry and frees it. Called once, by whoever
 * set `freeing` (destroy, or the release of the last connection out). */
void pgetl__pool_free(pgetl_pool *pool);

/* Gives an open, healthy slot to the head waiter, else puts it on the idle
 * stack. The slot must not be counted in n_out. Caller holds mu. Returns the
 * waiter served, which the caller must pass to pgetl__pool_wake() (best after
 * dropping mu), or NULL. */
pgetl_pool_waiter *pgetl__pool_place(pgetl_pool *pool, pgetl_pool_slot *slot, int64_t now);

/* Wakes a waiter served by pgetl__pool_place. Accepts NULL. */
void pgetl__pool_wake(pgetl_pool_waiter *w);

/* Fails every waiter with `code` (ECLOSED, ECONNECT). Caller holds mu. */
void pgetl__pool_fail_waiters(pgetl_pool *pool, pgetl_code code);

/* Takes a slot's PGconn away and marks it EMPTY; the caller PQfinish()es the
 * returned PGconn after dropping mu. Caller holds mu. */
PGconn *pgetl__pool_slot_clear(pgetl_pool *pool, pgetl_pool_slot *slot);

/* True when the connection looks usable: not broken, no FATAL received, and
 * nothing pending on the socket that turns out to be an error or EOF. The
 * caller must own the slot (OUT) or hold mu with the slot IDLE. */
bool pgetl__pool_conn_alive(pgetl_pool_slot *slot);

/* Routes server notices on pooled connections to the log (never stderr) and
 * notes FATAL ones on the slot. */
void pgetl__pool_notice_receiver(void *arg, const PGresult *res);

/* ---- pool_maint.c ---------------------------------------------------------- */

void *pgetl__pool_maint_main(void *arg);

/* A uniform number in [0, 1) (xorshift64*; jitter only, no quality needed).
 * Caller holds mu. */
double pgetl__pool_rand_unit(pgetl_pool *pool);

/* ---- pool_registry.c ------------------------------------------------------- */

void pgetl__pool_registry_add(pgetl_pool *pool);
/* Unlinks the pool; after it returns no release can reach the pool. */
void pgetl__pool_registry_remove(pgetl_pool *pool);
/*
 * Read-locks the registry and finds the live pool whose slot array holds
 * conn, comparing addresses only (conn is never dereferenced unless it is
 * one of ours). Returns NULL when no pool owns it. The caller must call
 * pgetl__pool_registry_unlock() in every case.
 */
pgetl_pool *pgetl__pool_registry_find(const pgetl_conn *conn, bool *hint_known,
                                      const pgetl_pool *hint);
void pgetl__pool_registry_unlock(void);

/* True when conn is exactly the address of one of pool's slots. Reads only
 * the pool (slot array bounds), never *conn. */
bool pgetl__pool_owns(const pgetl_pool *pool, const pgetl_conn *conn);

#endif /* PGETL_SRC_CONNECT_POOL_INT_H */
