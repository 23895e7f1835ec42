/*
 * pgetl — bulk data in and out of PostgreSQL.
 *
 * Umbrella header: version, export macro, allocator hook, and every public
 * module. Including this header never pulls in libpq or any Arrow library.
 */
#ifndef PGETL_PGETL_H
#define PGETL_PGETL_H

#define PGETL_VERSION_MAJOR 0
#define PGETL_VERSION_MINOR 1
#define PGETL_VERSION_PATCH 0
#define PGETL_VERSION_NUM                                                                          \
    (PGETL_VERSION_MAJOR * 10000 + PGETL_VERSION_MINOR * 100 + PGETL_VERSION_PATCH)

#include "pgetl/export.h"
#include "pgetl/error.h"
#include "pgetl/log.h"
#include "pgetl/arrow.h"
#include "pgetl/pool.h"
#include "pgetl/query.h"
#include "pgetl/copy.h"
#include "pgetl/load.h"
#include "pgetl/session.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* PGETL_VERSION_NUM of the library actually linked. */
PGETL_API int pgetl_version(void);

/* "0.1.0": the version of the library actually linked. Static storage. */
PGETL_API const char *pgetl_version_string(void);

/*
 * Replaces the allocator used for everything pgetl allocates itself (libpq's
 * own allocations are outside it). Call before any other pgetl function; the
 * three functions must be thread-safe and behave like malloc/realloc/free.
 * Passing NULL for all three restores the C library's. Returns PGETL_EINVAL
 * when only some are NULL.
 */
PGETL_API pgetl_code pgetl_set_allocator(void *(*malloc_fn)(size_t),
                                         void *(*realloc_fn)(void *, size_t),
                                         void (*free_fn)(void *));

#ifdef __cplusplus
}
#endif

#endif /* PGETL_PGETL_H */
