/*
 * Which live pool owns a connection pointer. A release may arrive for a
 * connection of another pool, twice, or after its pool was destroyed; we
 * never dereference such a pointer before an address-range test against a
 * pool we know is alive. The list is short (one entry per pool), so a walk
 * under a read lock is cheap, and readers never block each other. A pool is
 * unlinked under the write lock before it is freed, and releases hold the
 * read lock for their whole critical section, so a pool found here stays
 * alive until pgetl__pool_registry_unlock().
 */
#include "connect/pool_int.h"

#include <stdint.h>

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static pgetl_pool *registry_head;

void pgetl__pool_registry_add(pgetl_pool *pool) {
    pthread_rwlock_wrlock(&registry_lock);
    pool->reg_next = registry_head;
    registry_head = pool;
    pthread_rwlock_unlock(&registry_lock);
}

void pgetl__pool_registry_remove(pgetl_pool *pool) {
    pthread_rwlock_wrlock(&registry_lock);
    for (pgetl_pool **pp = &registry_head; *pp; pp = &(*pp)->reg_next) {
        if (*pp == pool) {
            *pp = pool->reg_next;
            break;
        }
    }
    pthread_rwlock_unlock(&registry_lock);
}

bool pgetl__pool_owns(const pgetl_pool *pool, const pgetl_conn *conn) {
    uintptr_t base = (uintptr_t)pool->slots;
    uintptr_t p = (uintptr_t)conn;
    if (p < base)
        return false;
    uintptr_t off = p - base;
    return off < (uintptr_t)pool->cfg.pool_max * sizeof(pgetl_pool_slot) &&
           off % sizeof(pgetl_pool_slot) == 0;
}

pgetl_pool *pgetl__pool_registry_find(const pgetl_conn *conn, bool *hint_known,
                                      const pgetl_pool *hint) {
    pthread_rwlock_rdlock(&registry_lock);
    pgetl_pool *found = NULL;
    bool known = false;
    for (pgetl_pool *p = registry_head; p; p = p->reg_next) {
        if (p == hint)
            known = true;
        if (!found && pgetl__pool_owns(p, conn))
            found = p;
        if (found && (known || !hint))
            break;
    }
    if (hint_known)
        *hint_known = known;
    return found;
}

void pgetl__pool_registry_unlock(void) {
    pthread_rwlock_unlock(&registry_lock);
}
