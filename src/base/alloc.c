/*
 * Allocation hooks. The function pointers are written once, before any other
 * pgetl call (the documented contract), so reads need no synchronisation.
 */
#include "base/base.h"

#include <stdint.h>
#include <stdlib.h>

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

pgetl_code pgetl_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                               void (*free_fn)(void *)) {
    if (!malloc_fn && !realloc_fn && !free_fn) {
        alloc_malloc = malloc;
        alloc_realloc = realloc;
        alloc_free = free;
        return PGETL_OK;
    }
    if (!malloc_fn || !realloc_fn || !free_fn)
        return PGETL_EINVAL;
    alloc_malloc = malloc_fn;
    alloc_realloc = realloc_fn;
    alloc_free = free_fn;
    return PGETL_OK;
}

void *pgetl__malloc(size_t n) {
    return alloc_malloc(n ? n : 1);
}

void *pgetl__calloc(size_t count, size_t size) {
    /* A user-supplied allocator has no calloc, so the overflow check is ours. */
    if (size && count > SIZE_MAX / size)
        return NULL;
    size_t n = count * size;
    void *p = alloc_malloc(n ? n : 1);
    if (p)
        memset(p, 0, n);
    return p;
}

void *pgetl__realloc(void *p, size_t n) {
    return alloc_realloc(p, n ? n : 1);
}

void pgetl__free(void *p) {
    if (p)
        alloc_free(p);
}

char *pgetl__strndup(const char *s, size_t n) {
    char *d = alloc_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *pgetl__strdup(const char *s) {
    return s ? pgetl__strndup(s, strlen(s)) : NULL;
}
