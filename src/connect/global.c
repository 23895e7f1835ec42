/*
 * The process-wide pool behind pgetl_get_connection / pgetl_release_connection
 * (the spec's module-level `_pool`). It is created on first use. Acquires
 * hold a read lock for their whole duration, so pgetl_shutdown can close the
 * pool (failing any waiters at once), then take the write lock knowing no
 * acquire still uses the pool, and destroy it. Releases do not need this
 * lock: they find their pool through the registry (pool_registry.c).
 */
#include "connect/pool_int.h"

#include <stdio.h>

static pthread_rwlock_t global_lock = PTHREAD_RWLOCK_INITIALIZER;
static pgetl_pool *global_pool;
static char *global_dsn;

static pgetl_code create_global(const pgetl_config *cfg, pgetl_error *err) {
    pgetl_pool *pool = NULL;
    pgetl_code rc = pgetl_pool_create(cfg, &pool, err);
    if (rc != PGETL_OK)
        return rc;
    global_dsn = pgetl__strdup(pgetl_config_dsn(cfg));
    if (!global_dsn) {
        pgetl_pool_destroy(pool);
        return pgetl__error_oom(err, "pgetl_get_connection");
    }
    global_pool = pool;
    return PGETL_OK;
}

pgetl_code pgetl_get_connection_at(const pgetl_config *cfg, const char *file, int line,
                                   pgetl_conn **conn_out, pgetl_error *err) {
    if (!conn_out)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_get_connection: conn_out is NULL");
    *conn_out = NULL;
    pgetl_config defaults;
    if (!cfg) {
        pgetl_config_init(&defaults);
        cfg = &defaults;
    }
    const char *dsn = pgetl_config_dsn(cfg);
    pthread_rwlock_rdlock(&global_lock);
    while (!global_pool) {
        pthread_rwlock_unlock(&global_lock);
        pthread_rwlock_wrlock(&global_lock);
        pgetl_code rc = global_pool ? PGETL_OK : create_global(cfg, err);
        pthread_rwlock_unlock(&global_lock);
        if (rc != PGETL_OK)
            return rc;
        pthread_rwlock_rdlock(&global_lock);
    }
    pgetl_code rc;
    if (strcmp(global_dsn, dsn) != 0) {
        char a[512], b[512];
        rc = pgetl_error_set(err, PGETL_ECONFIG,
                             "the process-wide pool was created for \"%s\"; a different DSN "
                             "\"%s\" needs pgetl_shutdown() first or a pgetl_pool of its own",
                             pgetl_dsn_redact(global_dsn, a, sizeof a),
                             pgetl_dsn_redact(dsn, b, sizeof b));
    } else {
        rc = pgetl_pool_acquire_at(global_pool, file, line, conn_out, err);
    }
    pthread_rwlock_unlock(&global_lock);
    return rc;
}

void pgetl_shutdown(void) {
    /* Close first under the read lock: waiting acquires fail at once and
     * drop their read locks, so the write lock below cannot wait long. */
    pthread_rwlock_rdlock(&global_lock);
    if (global_pool)
        pgetl_pool_close(global_pool);
    pthread_rwlock_unlock(&global_lock);

    pthread_rwlock_wrlock(&global_lock);
    pgetl_pool *pool = global_pool;
    char *dsn = global_dsn;
    global_pool = NULL;
    global_dsn = NULL;
    pthread_rwlock_unlock(&global_lock);
    pgetl__free(dsn);
    pgetl_pool_destroy(pool);
}
