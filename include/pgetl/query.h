/*
 * Query helpers, identifiers and catalog look-ups (spec §4, §7).
 *
 * Parameters always travel out of line ($1, $2, ... as text values); nothing
 * the caller passes as a value or a name is ever spliced into SQL unquoted.
 * Helpers that run SQL open a transaction first when the connection is idle
 * (pgetl_begin) and never end it.
 *
 * Thread note: a pgetl_result is immutable once returned and may be read from
 * any thread; free it once, with pgetl_result_free().
 */
#ifndef PGETL_QUERY_H
#define PGETL_QUERY_H

#include "pgetl/export.h"
#include "pgetl/error.h"
#include "pgetl/pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Identifiers                                                              */
/* ------------------------------------------------------------------------ */

#define PGETL_IDENT_MAX 64 /* NAMEDATALEN: 63 bytes plus NUL */

/*
 * A table name split into schema and table, each as the server stores it
 * (already case-folded and unquoted). schema is "" when not given.
 */
typedef struct pgetl_qualified_name {
    char schema[PGETL_IDENT_MAX];
    char name[PGETL_IDENT_MAX];
} pgetl_qualified_name;

/*
 * Parses `text` by PostgreSQL's rules: `table` or `schema.table`; unquoted
 * parts are folded to lower case (ASCII) and must be valid unquoted
 * identifiers; double-quoted parts keep their case and may hold anything
 * but NUL, with "" standing for one quote. Returns PGETL_EINVAL naming the
 * problem (empty part, unterminated quote, too long, trailing text, three
 * parts).
 */
PGETL_API pgetl_code pgetl_ident_parse(const char *text, pgetl_qualified_name *out,
                                       pgetl_error *err);

/*
 * Writes `name` (one identifier, taken literally) double-quoted with inner
 * quotes doubled. Returns the length written (excluding NUL), or the length
 * needed when it does not fit (like snprintf); unlike snprintf, buf is then
 * left empty rather than holding a cut (unbalanced) quoted name.
 */
PGETL_API size_t pgetl_ident_quote(const char *name, char *buf, size_t size);

/* Writes "schema"."name" (or "name" when schema is empty). As pgetl_ident_quote. */
PGETL_API size_t pgetl_qualified_name_quote(const pgetl_qualified_name *qn, char *buf, size_t size);

/* ------------------------------------------------------------------------ */
/* Statements                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Runs one SQL statement with nparams text parameters ($1..$n; a NULL
 * pointer is SQL NULL). Opens a transaction first when the connection is
 * idle. *rows_out (may be NULL) receives the affected row count.
 * Returns PGETL_ESERVER with SQLSTATE, detail, hint and context on a server
 * error (several statements in one string are refused by the server with
 * 42601, a wrong parameter count with 08P01); PGETL_ECONNLOST when the
 * connection broke; PGETL_EINVAL for a NULL conn or sql, or nparams > 0 with
 * NULL params; PGETL_EUNSUPPORTED for COPY (use the COPY API: the COPY is
 * ended at once, and a COPY FROM STDIN leaves the transaction aborted).
 */
PGETL_API pgetl_code pgetl_execute(pgetl_conn *conn, const char *sql, int nparams,
                                   const char *const *params, int64_t *rows_out, pgetl_error *err);

typedef struct pgetl_result pgetl_result;

/*
 * Runs a query and keeps every row (the spec's fetchall_dicts). Free the
 * result with pgetl_result_free(). Errors as pgetl_execute(), plus
 * PGETL_ENOMEM; *result_out is NULL on every error. A statement without
 * rows (INSERT without RETURNING) gives a result with 0 rows and 0 columns.
 */
PGETL_API pgetl_code pgetl_fetchall(pgetl_conn *conn, const char *sql, int nparams,
                                    const char *const *params, pgetl_result **result_out,
                                    pgetl_error *err);

/* Frees a result. Accepts NULL. */
PGETL_API void pgetl_result_free(pgetl_result *res);

PGETL_API int64_t pgetl_result_nrows(const pgetl_result *res);
PGETL_API int pgetl_result_ncols(const pgetl_result *res);

/* Column name (owned by the result), or NULL when col is out of range. */
PGETL_API const char *pgetl_result_colname(const pgetl_result *res, int col);

/* Column index by exact name, or -1 when there is none. */
PGETL_API int pgetl_result_colindex(const pgetl_result *res, const char *name);

/* The column's type OID (23 for int4, 25 for text, ...), 0 when out of range. */
PGETL_API uint32_t pgetl_result_coltype(const pgetl_result *res, int col);

/* True when the value is SQL NULL (or out of range). */
PGETL_API bool pgetl_result_isnull(const pgetl_result *res, int64_t row, int col);

/*
 * The value as text, owned by the result: NULL for SQL NULL (or out of
 * range) and "" for an empty string, so the two stay distinct. *len_out (may
 * be NULL) receives its length.
 */
PGETL_API const char *pgetl_result_get(const pgetl_result *res, int64_t row, int col,
                                       size_t *len_out);

/* pgetl_result_get() by column name. */
PGETL_API const char *pgetl_result_get_by_name(const pgetl_result *res, int64_t row,
                                               const char *name, size_t *len_out);

/*
 * Typed getters: parse the value into *out. Return PGETL_EINVAL for a bad
 * row/column, PGETL_EDATA for NULL or text that is not of the type,
 * PGETL_EOVERFLOW when it does not fit.
 */
PGETL_API pgetl_code pgetl_result_get_int64(const pgetl_result *res, int64_t row, int col,
                                            int64_t *out, pgetl_error *err);
PGETL_API pgetl_code pgetl_result_get_double(const pgetl_result *res, int64_t row, int col,
                                             double *out, pgetl_error *err);
PGETL_API pgetl_code pgetl_result_get_bool(const pgetl_result *res, int64_t row, int col,
                                           bool *out, pgetl_error *err);

/* ------------------------------------------------------------------------ */
/* Tables                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * TRUNCATE TABLE "schema"."table" [CASCADE]. `table` is parsed with
 * pgetl_ident_parse(), so a hostile name is only ever a name. Runs inside the
 * caller's transaction (opening one when idle) and does not commit.
 * Returns PGETL_EINVAL when the name does not parse (nothing is sent), else
 * as pgetl_execute() (e.g. SQLSTATE 0A000 when other tables reference it by
 * foreign key and cascade is false).
 */
PGETL_API pgetl_code pgetl_truncate_table(pgetl_conn *conn, const char *table, bool cascade,
                                          pgetl_error *err);

/*
 * *exists_out = whether `table` ("t" or "s.t", parsed as above) names a table
 * (plain or partitioned), view, materialized view or foreign table the
 * server can see: an unqualified name follows the search_path (temporary
 * tables first), a qualified one looks only in that schema; indexes,
 * sequences and composite types do not count. Parameterised. Returns
 * PGETL_EINVAL when the name does not parse, else as pgetl_execute().
 */
PGETL_API pgetl_code pgetl_table_exists(pgetl_conn *conn, const char *table, bool *exists_out,
                                        pgetl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_QUERY_H */
