/* Shared helpers for the loader's integration tests. */
#ifndef PGETL_TESTS_LOAD_HELPERS_H
#define PGETL_TESTS_LOAD_HELPERS_H

#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>

static char lh_dir[256];
static pgetl_pool *lh_pool;
static PGconn *lh_pg;

static int lh_setup(void **state) {
    (void)state;
    snprintf(lh_dir, sizeof lh_dir, "/tmp/pgetl_test_load.XXXXXX");
    if (!mkdtemp(lh_dir))
        return -1;
    pgetl_config cfg = harness_config();
    cfg.pool_max = 24; /* jobs tests go past max_prepared_transactions */
    pgetl_error err;
    if (pgetl_pool_create(&cfg, &lh_pool, &err) != PGETL_OK) {
        fprintf(stderr, "pool: %s\n", err.message);
        return -1;
    }
    lh_pg = harness_pq();
    return 0;
}

static int lh_teardown(void **state) {
    (void)state;
    pgetl_pool_destroy(lh_pool);
    PQfinish(lh_pg);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", lh_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes n bytes to <dir>/name; returns the path (static, rotating buffers). */
static inline const char *lh_file(const char *name, const void *data, size_t n) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", lh_dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}

static inline const char *lh_text(const char *name, const char *text) {
    return lh_file(name, text, strlen(text));
}

static inline pgetl_load_options lh_opts(const char *table) {
    pgetl_load_options o;
    pgetl_load_options_init(&o);
    o.table = table;
    return o;
}

/* Loads one file; returns the code, fills stats and err. */
static inline pgetl_code lh_load1(const char *path, const pgetl_load_options *o,
                                  pgetl_load_stats *st, pgetl_error *err) {
    const char *paths[1] = {path};
    return pgetl_load_files(lh_pool, paths, 1, o, st, err);
}

/* Every rows_read = loaded + rejected check the contract promises. */
static inline void lh_check_stats(const pgetl_load_stats *st) {
    assert_int_equal(st->rows_read, st->rows_loaded + st->rows_rejected);
}

static inline char *lh_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    *len = fread(p, 1, (size_t)n, f);
    p[*len] = '\0';
    fclose(f);
    return p;
}

/* A single-value text query result (static buffer); "" for NULL. */
static inline const char *lh_text_query(const char *sql) {
    static char out[8192];
    PGresult *r = PQexec(lh_pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("query failed: %s\n%s", sql, PQerrorMessage(lh_pg));
    snprintf(out, sizeof out, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                                \
    } while (0)

#endif /* PGETL_TESTS_LOAD_HELPERS_H */
