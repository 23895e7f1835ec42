/*
 * Faults during the two-phase commit of a jobs=2 load (load.h: the load is
 * all-or-nothing). Each case injects one fault at one phase, on a PRIVATE
 * cluster (so it may be halted), through the fault proxy:
 *
 *   copy      one job's connection is cut, or stalls, mid-COPY;
 *   prepare   at the INFO line "load_commit" (just before the PREPAREs): a
 *             connection's reply is cut or stalled (the server prepared, the
 *             client cannot know), or the server halts;
 *   prepared  at "load_prepared" (every connection prepared, before any
 *             COMMIT PREPARED): one backend is killed;
 *   commit    at "load_prepared": a connection's COMMIT PREPARED is cut
 *             before it reaches the server, or its reply is cut or
 *             stalled, or the server halts.
 *
 * The log handler runs the fault on the loading thread, synchronously, so
 * it lands exactly between the two phases. Checks: either every row or
 * none (counted from a direct connection); no prepared transaction left
 * (after a halt in the commit phase, exactly the gids the error names are
 * left, and COMMIT PREPARED of each, as docs/RELIABILITY.md says, completes
 * the load); an error naming the phase; the pool recovers; no backend and
 * no descriptor left.
 */
#define _GNU_SOURCE /* accept4, POLLRDHUP in faultproxy.h */
#include "fault_helpers.h"

#define FAULT_AT 500000

static harness_private priv;

static int testdb(const char *cmd, const char *arg) {
    return harness_private_cmd(&priv, cmd, arg);
}

static int setup(void **state) {
    (void)state;
    return harness_private_start(&priv, "fault-2pc");
}

static int teardown(void **state) {
    (void)state;
    harness_private_stop(&priv);
    fh_csv_cleanup();
    return 0;
}

static PGconn *direct(void) {
    return harness_private_pq(&priv);
}

static int64_t prepared_left(PGconn *pg) {
    return harness_scalar(pg,
                          "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'pgetl_load_%'");
}

/* ---- the fault, run from the log handler ---------------------------------- */

typedef enum action {
    CUT_REQUEST, /* the proxy drops the next statement of one connection        */
    CUT_REPLY,   /* the server runs it; its reply is cut after one byte        */
    STALL_REPLY, /* the server runs it; its reply never comes (io_timeout_s)    */
    KILL_ONE,    /* pg_terminate_backend of one of the load's backends          */
    HALT,        /* testdb.sh halt immediate                                    */
    STALL_COPY,  /* one connection stops forwarding mid-COPY (io_timeout_s)     */
    CUT_COPY     /* one connection is cut mid-COPY                              */
} action;

static struct {
    pthread_mutex_t mu;
    const char *event; /* "event=load_commit ", "event=load_prepared " or NULL */
    action what;
    int pair; /* which of the two proxied connections */
    faultproxy *fp;
    const char *app;
    int fired;
    char log[1 << 16];
    size_t len;
} inj = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void act(void) {
    faultproxy *fp = inj.fp;
    switch (inj.what) {
    case CUT_REQUEST:
        assert_true(fp_set_one(fp, inj.pair, FP_UP, FP_CUT, 0, 0));
        break;
    case CUT_REPLY:
        assert_true(fp_set_one(fp, inj.pair, FP_DOWN, FP_CUT, 1, 0));
        break;
    case STALL_REPLY:
        assert_true(fp_set_one(fp, inj.pair, FP_DOWN, FP_STALL, 0, 0));
        break;
    case STALL_COPY:
        assert_true(fp_set_one(fp, inj.pair, FP_UP, FP_STALL, 0, 0));
        break;
    case CUT_COPY:
        assert_true(fp_set_one(fp, inj.pair, FP_UP, FP_CUT, 0, 0));
        break;
    case KILL_ONE: {
        PGconn *pg = direct();
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT pg_terminate_backend((SELECT pid FROM pg_stat_activity WHERE "
                 "application_name = '%s' ORDER BY backend_start OFFSET %d LIMIT 1), 5000)::int",
                 inj.app, inj.pair);
        assert_int_equal(harness_scalar(pg, sql), 1);
        assert_int_equal(fh_backends(pg, inj.app), 1); /* the other one lives */
        PQfinish(pg);
        break;
    }
    case HALT:
        assert_int_equal(testdb("halt", "immediate"), 0);
        break;
    }
    inj.fired = 1;
}

static void sink(void *user, pgetl_log_level level, const char *line) {
    (void)user;
    (void)level;
    pthread_mutex_lock(&inj.mu);
    size_t n = strlen(line);
    if (inj.len + n + 2 < sizeof inj.log) {
        memcpy(inj.log + inj.len, line, n);
        inj.len += n;
        inj.log[inj.len++] = '\n';
        inj.log[inj.len] = '\0';
    }
    bool now = inj.event && !inj.fired && strstr(line, inj.event);
    pthread_mutex_unlock(&inj.mu);
    /* The load's 2PC lines come from the loading thread, which waits for this. */
    if (now)
        act();
}

static void trigger_action(void *arg) {
    (void)arg;
    act();
}

/* The gids the "load_prepared" line named ("" when none). */
static const char *logged_gids(void) {
    static char gids[512];
    gids[0] = '\0';
    const char *p = strstr(inj.log, "event=load_prepared gids=");
    if (p) {
        p += strlen("event=load_prepared gids=");
        size_t n = strcspn(p, " \n");
        snprintf(gids, sizeof gids, "%.*s", (int)n, p);
    }
    return gids;
}

/* ---- one case ------------------------------------------------------------- */

typedef enum outcome {
    ALL_ROWS, /* the load committed in full, despite the fault              */
    NO_ROWS,  /* the load failed and nothing of it was committed           */
    DECIDED   /* commit decided, server gone: the named gids are left      */
} outcome;

typedef struct fault_case {
    const char *name;
    const char *event; /* NULL: trigger on bytes (mid-COPY) */
    action what;
    int pair;
    outcome want;
    const char *phase_text; /* the error names its phase with this */
    const char *cause_text; /* and its cause with this              */
} fault_case;

/* After a failed case: its prepared transactions would hold fault_t's lock for ever. */
static void forget_prepared(PGconn *pg) {
    PGresult *r = PQexec(pg, "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'pgetl_load_%'");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "ROLLBACK PREPARED '%s'", PQgetvalue(r, i, 0));
        harness_sql(pg, sql);
    }
    PQclear(r);
}

static void run_case(const fault_case *fc) {
    PGconn *pg = direct();
    /* The cluster runs with synchronous_commit off: keep the table across a halt. */
    harness_sql(pg, "SET synchronous_commit = on");
    harness_sql(pg, "SET lock_timeout = '10s'");
    forget_prepared(pg);
    fh_reset_table(pg);
    char app[64];
    snprintf(app, sizeof app, "fault_2pc_%d", (int)fc->what);
    char dsn[512];
    faultproxy *fp = fh_proxy_start(priv.port, "postgres", dsn, sizeof dsn);
    fh_csv(false);
    int fds0 = fh_fd_count();

    pgetl_config cfg = fh_config(dsn, app);
    /* Exactly the load's two connections go through the proxy: pairs 0 and 1. */
    cfg.pool_max = 2;
    cfg.acquire_timeout_s = 15;
    cfg.reconnect_timeout_s = 30;
    cfg.io_timeout_s = 1;
    pgetl_pool *pool = fh_pool_create(&cfg);
    pgetl_error err;

    pthread_mutex_lock(&inj.mu);
    inj.event = fc->event;
    inj.what = fc->what;
    inj.pair = fc->pair;
    inj.fp = fp;
    inj.app = app;
    inj.fired = 0;
    inj.len = 0;
    inj.log[0] = '\0';
    pthread_mutex_unlock(&inj.mu);
    pgetl_log_set_handler(sink, NULL, PGETL_LOG_DEBUG);
    fh_trigger trig = {.fp = fp, .dir = FP_UP, .bytes = FAULT_AT, .action = trigger_action};
    if (!fc->event) {
        fp_set(fp, FP_UP, FP_SLOW, 0, 4 << 20); /* so the fault lands mid-COPY */
        fh_trigger_start(&trig);
    }
    double secs;
    pgetl_code rc = fh_run_watched(FH_LOAD_JOBS2, pool, 60, fc->name, &secs, &err);
    if (!fc->event)
        fh_trigger_join(&trig);
    pgetl_log_set_handler(NULL, NULL, PGETL_LOG_WARN);
    fp_pass(fp);
    printf("FAULT | 2pc %s | %s | %.2f s | %.400s\n", fc->name, pgetl_code_name(rc), secs,
           err.message);
    fflush(stdout);
    assert_true(inj.fired);
    /* Both connections took part: the 2PC ran, or was about to. */
    if (fc->event)
        assert_non_null(strstr(inj.log, "event=load_commit mode=2pc connections=2"));
    if (getenv("FAULT_2PC_LOG"))
        fputs(inj.log, stdout);

    if (fc->what == HALT)
        assert_int_equal(testdb("resume", NULL), 0);
    PQfinish(pg);
    pg = direct();
    if (fc->want == ALL_ROWS) {
        assert_pgetl_ok(rc, &err);
        assert_int_equal(fh_rows(pg), FH_ROWS);
        /* The commit was finished on the other connection, and the log says so. */
        assert_non_null(strstr(inj.log, "event=load_commit_finished_elsewhere"));
    } else {
        assert_int_equal(rc, PGETL_ECONNLOST);
        if (!strstr(err.message, fc->phase_text) || !strstr(err.message, fc->cause_text))
            fail_msg("want \"%s\" and \"%s\" in: %s", fc->phase_text, fc->cause_text, err.message);
        if (!fc->event) /* mid-COPY: a data-path loss like any other */
            fh_assert_loss_message(FH_LOAD_JOBS2, &err);
    }
    /* Only a failure after the decision to commit leaves the outcome open. */
    assert_int_equal(fh_load_stats.committed, fc->want == ALL_ROWS);
    assert_int_equal(fh_load_stats.commit_unknown, fc->want == DECIDED);
    if (fc->want == NO_ROWS) {
        assert_int_equal(fh_rows(pg), 0);
    } else if (fc->want == DECIDED) {
        /* Nothing committed yet; the message names exactly the gids left. */
        assert_int_equal(fh_rows(pg), 0);
        char gids[512];
        snprintf(gids, sizeof gids, "%s", logged_gids());
        assert_true(gids[0]);
        int n = 0;
        for (char *g = strtok(gids, ","); g; g = strtok(NULL, ","), n++) {
            char quoted[128];
            snprintf(quoted, sizeof quoted, "'%s'", g);
            assert_non_null(strstr(err.message, quoted));
            /* The documented resolution: COMMIT PREPARED each gid named. */
            char sql[160];
            snprintf(sql, sizeof sql, "COMMIT PREPARED '%s'", g);
            harness_sql(pg, sql);
        }
        assert_int_equal(n, 2);
        assert_int_equal(fh_rows(pg), FH_ROWS);
    }
    assert_int_equal(prepared_left(pg), 0);

    fh_assert_pool_recovers(pool);
    pgetl_pool_destroy(pool);
    assert_int_equal(fh_wait_backends_gone(pg, app), 0);
    assert_int_equal(fh_wait_proxy_idle(fp), 0);
    assert_int_equal(fh_fd_count(), fds0); /* pg is open, as it was then */
    PQfinish(pg);
    fp_stop(fp);
}

#define PREP_FAILED "load: PREPARE TRANSACTION on connection "
#define PREP_UNDONE "every connection was rolled back, nothing was committed: PREPARE TRANSACTION"
#define CLOSED "server closed the connection unexpectedly"

static const fault_case cases[] = {
    {"copy_cut_one", NULL, CUT_COPY, 0, NO_ROWS, "fault_t", CLOSED},
    {"copy_stall_one", NULL, STALL_COPY, 1, NO_ROWS, "fault_t", "io_timeout_s (1.0 s) expired"},
    {"prepare_cut_reply_0", "event=load_commit ", CUT_REPLY, 0, NO_ROWS, PREP_UNDONE, CLOSED},
    {"prepare_cut_reply_1", "event=load_commit ", CUT_REPLY, 1, NO_ROWS, PREP_UNDONE, CLOSED},
    {"prepare_stall_reply", "event=load_commit ", STALL_REPLY, 1, NO_ROWS, PREP_UNDONE,
     "io_timeout_s (1.0 s) expired"},
    {"prepare_halt", "event=load_commit ", HALT, 0, NO_ROWS,
     PREP_FAILED "1 of 2 failed; nothing was committed, but 'pgetl_load_",
     "run ROLLBACK PREPARED for each"},
    {"prepared_kill_one_0", "event=load_prepared ", KILL_ONE, 0, ALL_ROWS, NULL, NULL},
    {"prepared_kill_one_1", "event=load_prepared ", KILL_ONE, 1, ALL_ROWS, NULL, NULL},
    {"commit_cut_request_0", "event=load_prepared ", CUT_REQUEST, 0, ALL_ROWS, NULL, NULL},
    {"commit_cut_request_1", "event=load_prepared ", CUT_REQUEST, 1, ALL_ROWS, NULL, NULL},
    {"commit_cut_reply_0", "event=load_prepared ", CUT_REPLY, 0, ALL_ROWS, NULL, NULL},
    {"commit_cut_reply_1", "event=load_prepared ", CUT_REPLY, 1, ALL_ROWS, NULL, NULL},
    {"commit_stall_reply", "event=load_prepared ", STALL_REPLY, 0, ALL_ROWS, NULL, NULL},
    {"commit_halt", "event=load_prepared ", HALT, 0, DECIDED,
     "load: COMMIT PREPARED failed after all 2 connections prepared",
     "run COMMIT PREPARED for each"},
};

static void run_named(void **state) {
    run_case((const fault_case *)*state);
}

int main(int argc, char **argv) {
    enum { N = sizeof cases / sizeof cases[0] };
    struct CMUnitTest tests[N];
    for (int i = 0; i < N; i++)
        tests[i] = (struct CMUnitTest){
            .name = cases[i].name, .test_func = run_named, .initial_state = (void *)&cases[i]};
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return _cmocka_run_group_tests("test_fault_2pc", tests, N, setup, teardown);
}
