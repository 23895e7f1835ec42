/*
 * Optional escape hatch to libpq. Including this header pulls in libpq-fe.h;
 * pgetl.h never does.
 */
#ifndef PGETL_LIBPQ_H
#define PGETL_LIBPQ_H

#include "pgetl/pool.h"
#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The PGconn under a pgetl connection, borrowed: do not PQfinish it. Leave it
 * as you found it (no open COPY, no pending results) before using the pgetl
 * connection again.
 */
PGETL_API PGconn *pgetl_conn_pg(pgetl_conn *conn);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_LIBPQ_H */
