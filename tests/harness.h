/*
 * Test harness: cmocka plus database fixtures. Each test binary ends with
 * PGETL_TEST_MAIN(tests); `./test_x name` runs only the tests matching
 * `name` (cmocka's filter, * wildcards allowed).
 *
 * Integration tests find the shared throwaway cluster through
 * $PGETL_TEST_DSN or $PGETL_TEST_STATE/dsn (set by CTest's `db` fixture).
 * No database is a failure, never a skip.
 */
#ifndef PGETL_TESTS_HARNESS_H
#define PGETL_TESTS_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "pgetl/pgetl.h"

#define PGETL_TEST_MAIN(tests_array)                                                               \
    int main(int argc, char **argv) {                                                              \
        if (argc > 1)                                                                              \
            cmocka_set_test_filter(argv[1]);                                                       \
        return cmocka_run_group_tests(tests_array, NULL, NULL);                                    \
    }

/* Asserts a pgetl call succeeded, printing the error when it did not. */
#define assert_pgetl_ok(expr, errp)                                                                \
    do {                                                                                           \
        pgetl_code rc_ = (expr);                                                                   \
        if (rc_ != PGETL_OK) {                                                                     \
            char buf_[4096];                                                                       \
            fail_msg("%s -> %s: %s", #expr, pgetl_code_name(rc_),                                  \
                     pgetl_error_format((errp), buf_, sizeof buf_));                               \
        }                                                                                          \
    } while (0)

/*
 * The cluster's DSN as given (static storage): $PGETL_TEST_DSN, else
 * $PGETL_TEST_STATE/dsn. Fails the test when there is none.
 */
static inline const char *harness_cluster_dsn(void) {
    static char dsn[1024];
    if (dsn[0])
        return dsn;
    const char *env = getenv("PGETL_TEST_DSN");
    if (env && env[0]) {
        snprintf(dsn, sizeof dsn, "%s", env);
        return dsn;
    }
    const char *state = getenv("PGETL_TEST_STATE");
    if (state) {
        char path[1024];
        snprintf(path, sizeof path, "%s/dsn", state);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(dsn, sizeof dsn, f)) {
                size_t n = strlen(dsn);
                while (n && (dsn[n - 1] == '\n' || dsn[n - 1] == '\r'))
                    dsn[--n] = '\0';
            }
            fclose(f);
        }
    }
    if (!dsn[0])
        fail_msg("no test database: set PGETL_TEST_DSN or run through ctest "
                 "(scripts/testdb.sh start <dir> starts one)");
    return dsn;
}

#ifndef PGETL_TEST_NAME
#define PGETL_TEST_NAME "manual"
#endif

/*
 * The DSN tests use: the shared cluster, but a database of this test
 * binary's own (pgetl_<binary>), created on first use. CTest runs binaries
 * in parallel, and tests name their tables freely; a database each keeps
 * them from seeing each other's tables. A later dbname in a conninfo string
 * overrides an earlier one.
 */
static inline const char *harness_dsn(void) {
    static char dsn[1200];
    if (dsn[0])
        return dsn;
    const char *base = harness_cluster_dsn();
    char dbname[64];
    snprintf(dbname, sizeof dbname, "pgetl_%s", PGETL_TEST_NAME);
    PGconn *pg = PQconnectdb(base);
    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("cannot connect to the test cluster: %s", PQerrorMessage(pg));
    const char *params[1] = {dbname};
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
                               params, NULL, NULL, 0);
    int exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    if (!exists) {
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8'",
                 dbname);
        r = PQexec(pg, sql);
        /* 42P04: a concurrent run created it first, which is just as good. */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !(state && strcmp(state, "42P04") == 0))
            fail_msg("cannot create test database %s: %s", dbname, PQerrorMessage(pg));
        PQclear(r);
    }
    PQfinish(pg);
    snprintf(dsn, sizeof dsn, "%s dbname=%s", base, dbname);
    return dsn;
}

/* The shared cluster's port (from harness_dsn). Fails the test when the DSN has none. */
static inline int harness_port(void) {
    const char *port = strstr(harness_dsn(), "port=");
    if (!port)
        fail_msg("test DSN has no port: %s", harness_dsn());
    return atoi(port + 5);
}

/*
 * A DSN over TCP to 127.0.0.1:port (the shared cluster's, a private
 * cluster's, or a fault proxy's in front of either) as the password role
 * `pgetl_pw` (scram-sha-256), for database `dbname` (NULL: this binary's,
 * pgetl_<binary>).
 */
static inline void harness_tcp_dsn_at(int port, const char *dbname, char *dsn_out, size_t size) {
    char own[64];
    if (!dbname) {
        snprintf(own, sizeof own, "pgetl_%s", PGETL_TEST_NAME);
        dbname = own;
    }
    snprintf(dsn_out, size, "host=127.0.0.1 port=%d user=pgetl_pw password=pgetl-secret dbname=%s",
             port, dbname);
}

/*
 * The same database over TCP 127.0.0.1 as the password role `pgetl_pw`
 * (scram-sha-256), for tests that need a real socket or a password.
 */
static inline const char *harness_tcp_dsn(void) {
    static char dsn[512];
    if (!dsn[0])
        harness_tcp_dsn_at(harness_port(), NULL, dsn, sizeof dsn);
    return dsn;
}

/* A plain libpq connection for setting up and checking state behind pgetl's back. */
static inline PGconn *harness_pq(void) {
    PGconn *pg = PQconnectdb(harness_dsn());
    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("cannot connect to the test database: %s", PQerrorMessage(pg));
    return pg;
}

/* Runs SQL (autocommit) on a libpq connection; fails the test on error. */
static inline void harness_sql(PGconn *pg, const char *sql) {
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s\n%s", sql, PQerrorMessage(pg));
    PQclear(r);
}

/* The first column of the first row as int64 (fails on NULL/no rows). */
static inline int64_t harness_scalar(PGconn *pg, const char *sql) {
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQgetisnull(r, 0, 0))
        fail_msg("scalar query failed: %s\n%s", sql, PQerrorMessage(pg));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* A config for the shared cluster with test-friendly defaults. */
static inline pgetl_config harness_config(void) {
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = harness_dsn();
    cfg.acquire_timeout_s = 5;
    return cfg;
}

/* A standalone pgetl connection to the shared cluster. */
static inline pgetl_conn *harness_connect(void) {
    pgetl_config cfg = harness_config();
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_connect(&cfg, &conn, &err), &err);
    return conn;
}

/*
 * The fixture of tests that probe SQL through pgetl: an autocommit libpq
 * connection (pq) for setup and checks behind pgetl's back, a schema of the
 * binary's own (dropped and made afresh) holding canary(id) = {42}, which a
 * statement escaping its quoting would disturb, and a pgetl connection under
 * test (conn). Make it in a cmocka setup, free it in the teardown (which
 * drops the schema).
 */
typedef struct harness_canary {
    PGconn *pq;
    pgetl_conn *conn;
    char schema[64];
} harness_canary;

static inline harness_canary *harness_canary_fixture(const char *schema) {
    harness_canary *f = calloc(1, sizeof *f);
    if (!f)
        fail_msg("out of memory");
    snprintf(f->schema, sizeof f->schema, "%s", schema);
    f->pq = harness_pq();
    char sql[256];
    harness_sql(f->pq, "SET client_min_messages = warning");
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    harness_sql(f->pq, sql);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    harness_sql(f->pq, sql);
    snprintf(sql, sizeof sql, "CREATE TABLE %s.canary (id int)", schema);
    harness_sql(f->pq, sql);
    snprintf(sql, sizeof sql, "INSERT INTO %s.canary VALUES (42)", schema);
    harness_sql(f->pq, sql);
    f->conn = harness_connect();
    return f;
}

static inline void harness_canary_free(harness_canary *f) {
    if (!f)
        return;
    pgetl_conn_close(f->conn);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
    harness_sql(f->pq, sql);
    PQfinish(f->pq);
    free(f);
}

/* The canary still holds exactly its one row. */
static inline void harness_assert_canary(const harness_canary *f) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.canary WHERE id = 42", f->schema);
    assert_int_equal(harness_scalar(f->pq, sql), 1);
}

/*
 * Log capture: every line pgetl logs at `level` and above is appended to a
 * static buffer, so a test can assert what was (and was not) logged.
 */
typedef struct harness_log {
    char text[1 << 16];
    size_t len;
    int lines;
} harness_log;

static harness_log harness_log_buf;

static inline void harness_log_sink(void *user, pgetl_log_level level, const char *line) {
    (void)level;
    harness_log *h = user;
    size_t n = strlen(line);
    if (h->len + n + 2 < sizeof h->text) {
        memcpy(h->text + h->len, line, n);
        h->len += n;
        h->text[h->len++] = '\n';
        h->text[h->len] = '\0';
    }
    h->lines++;
}

static inline harness_log *harness_log_capture(pgetl_log_level level) {
    memset(&harness_log_buf, 0, sizeof harness_log_buf);
    pgetl_log_set_handler(harness_log_sink, &harness_log_buf, level);
    return &harness_log_buf;
}

static inline void harness_log_restore(void) {
    pgetl_log_set_handler(NULL, NULL, PGETL_LOG_WARN);
}

/*
 * A private throwaway cluster (scripts/testdb.sh in a temporary directory)
 * for tests that stop, halt or restart the server, which must never happen
 * to the cluster other tests share. dsn is TCP as the password role.
 */
typedef struct harness_private {
    char state_dir[256];
    char dsn[512];
    int port;
} harness_private;

/* Runs `testdb.sh CMD STATE_DIR [ARG]` on the private cluster; its exit status. */
static inline int harness_private_cmd(const harness_private *p, const char *cmd, const char *arg) {
    const char *s = getenv("PGETL_SCRIPTS");
    char line[1024];
    snprintf(line, sizeof line, "'%s/testdb.sh' %s '%s' %s >/dev/null",
             s && s[0] ? s : PGETL_SOURCE_DIR "/scripts", cmd, p->state_dir, arg ? arg : "");
    return system(line);
}

/* Starts one under /tmp/pgetl-<name>.XXXXXX; 0, or -1 (for cmocka setups). */
static inline int harness_private_start(harness_private *p, const char *name) {
    memset(p, 0, sizeof *p);
    snprintf(p->state_dir, sizeof p->state_dir, "/tmp/pgetl-%s.XXXXXX", name);
    if (!mkdtemp(p->state_dir) || harness_private_cmd(p, "start", NULL) != 0)
        return -1;
    char path[300];
    snprintf(path, sizeof path, "%s/port", p->state_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (fscanf(f, "%d", &p->port) != 1)
        p->port = 0;
    fclose(f);
    snprintf(p->dsn, sizeof p->dsn,
             "host=127.0.0.1 port=%d user=pgetl_pw password=pgetl-secret dbname=postgres",
             p->port);
    return p->port ? 0 : -1;
}

static inline void harness_private_stop(harness_private *p) {
    harness_private_cmd(p, "stop", NULL);
    rmdir(p->state_dir);
}

/* A libpq connection to it (fails the test when it cannot connect). */
static inline PGconn *harness_private_pq(const harness_private *p) {
    PGconn *pg = PQconnectdb(p->dsn);
    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("private cluster: %s", PQerrorMessage(pg));
    return pg;
}

#endif /* PGETL_TESTS_HARNESS_H */
