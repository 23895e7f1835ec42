/*
 * Private to the sql layer: the one statement runner every helper shares,
 * and the result handle's layout.
 */
#ifndef PGETL_SRC_SQL_INT_H
#define PGETL_SRC_SQL_INT_H

#include "sql/sql.h"

/*
 * Opens a transaction when the connection is idle, then runs `sql` with
 * nparams text parameters (out of line; NULL pointer = SQL NULL). On success
 * *res_out holds a PGRES_COMMAND_OK or PGRES_TUPLES_OK result the caller
 * PQclears. On failure nothing is returned and err says why, prefixed with
 * `what` (which never contains parameter values). COPY statements are
 * refused after the server has been told to end them.
 */
pgetl_code pgetl__sql_run(pgetl_conn *conn, const char *sql, int nparams,
                          const char *const *params, const char *what, PGresult **res_out,
                          pgetl_error *err);

struct pgetl_result {
    PGresult *pg; /* immutable once returned; libpq's getters only read it */
};

#endif /* PGETL_SRC_SQL_INT_H */
