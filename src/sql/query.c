/*
 * Statement helpers: execute, fetchall, truncate, table_exists.
 *
 * Everything goes through PQexecParams, even statements without
 * parameters: the extended protocol refuses several statements in one
 * string, so text that smuggles a second command in fails instead of
 * running. Values travel as text parameters; names are parsed and quoted by
 * ident.c. Nothing here ends a transaction: the caller owns it.
 */
#include "sql/sql_int.h"

#include <stdio.h>
#include <stdlib.h>

/* A COPY started through the generic runner is ended at once (it needs the COPY API). */
static void abandon_copy(PGconn *pg, ExecStatusType st) {
    if (st == PGRES_COPY_OUT) {
        char *row;
        while (PQgetCopyData(pg, &row, 0) > 0)
            PQfreemem(row);
    } else {
        PQputCopyEnd(pg, "COPY is not supported by pgetl_execute/pgetl_fetchall");
    }
    PGresult *r;
    while ((r = PQgetResult(pg)) != NULL)
        PQclear(r);
}

pgetl_code pgetl__sql_run(pgetl_conn *conn, const char *sql, int nparams,
                          const char *const *params, const char *what, PGresult **res_out,
                          pgetl_error *err) {
    *res_out = NULL;
    if (!sql)
        return pgetl_error_set(err, PGETL_EINVAL, "%s: sql is NULL", what);
    if (nparams < 0 || (nparams > 0 && !params))
        return pgetl_error_set(err, PGETL_EINVAL, "%s: %d parameters but params is NULL", what,
                               nparams);
    pgetl_code rc = pgetl_begin(conn, err);
    if (rc != PGETL_OK)
        return rc;
    PGconn *pg = pgetl__conn_pg(conn);
    pgetl__conn_wait_begin(pg);
    PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    pgetl__conn_wait_end(pg);
    ExecStatusType st = PQresultStatus(res);
    switch (st) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        *res_out = res;
        return PGETL_OK;
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        PQclear(res);
        abandon_copy(pg, st);
        if (PQstatus(pg) == CONNECTION_BAD)
            return pgetl__error_from_pg(err, NULL, pg, what);
        return pgetl_error_set(err, PGETL_EUNSUPPORTED,
                               "%s: COPY statements need the COPY API (pgetl_copy_*); "
                               "the COPY was cancelled",
                               what);
    default:
        break;
    }
    if (!res && PQstatus(pg) != CONNECTION_BAD)
        return pgetl__error_oom(err, what);
    rc = pgetl__error_from_pg(err, res, pg, what);
    PQclear(res);
    return rc;
}

pgetl_code pgetl_execute(pgetl_conn *conn, const char *sql, int nparams,
                         const char *const *params, int64_t *rows_out, pgetl_error *err) {
    if (rows_out)
        *rows_out = 0;
    PGresult *res;
    pgetl_code rc = pgetl__sql_run(conn, sql, nparams, params, "execute", &res, err);
    if (rc != PGETL_OK)
        return rc;
    if (rows_out) {
        const char *n = PQcmdTuples(res);
        *rows_out = n && n[0] ? strtoll(n, NULL, 10) : 0;
    }
    PQclear(res);
    return PGETL_OK;
}

pgetl_code pgetl_fetchall(pgetl_conn *conn, const char *sql, int nparams,
                          const char *const *params, pgetl_result **result_out,
                          pgetl_error *err) {
    if (!result_out)
        return pgetl_error_set(err, PGETL_EINVAL, "fetchall: result_out is NULL");
    *result_out = NULL;
    pgetl_result *out = pgetl__malloc(sizeof *out);
    if (!out)
        return pgetl__error_oom(err, "fetchall");
    PGresult *res;
    pgetl_code rc = pgetl__sql_run(conn, sql, nparams, params, "fetchall", &res, err);
    if (rc != PGETL_OK) {
        pgetl__free(out);
        return rc;
    }
    out->pg = res;
    *result_out = out;
    return PGETL_OK;
}

/* Parses and quotes a table name; the quoted form is at most 2*(2*63+2)+1 bytes. */
static pgetl_code quote_table(const char *table, char *quoted, size_t size, pgetl_error *err) {
    pgetl_qualified_name qn;
    pgetl_code rc = pgetl_ident_parse(table, &qn, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl_qualified_name_quote(&qn, quoted, size);
    return PGETL_OK;
}

#define QUOTED_MAX (2 * (2 * (PGETL_IDENT_MAX - 1) + 2) + 2)

pgetl_code pgetl_truncate_table(pgetl_conn *conn, const char *table, bool cascade,
                                pgetl_error *err) {
    char quoted[QUOTED_MAX];
    pgetl_code rc = quote_table(table, quoted, sizeof quoted, err);
    if (rc != PGETL_OK)
        return rc;
    char sql[sizeof quoted + 32];
    snprintf(sql, sizeof sql, "TRUNCATE TABLE %s%s", quoted, cascade ? " CASCADE" : "");
    PGresult *res;
    rc = pgetl__sql_run(conn, sql, 0, NULL, sql, &res, err);
    if (rc == PGETL_OK)
        PQclear(res);
    return rc;
}

/*
 * to_regclass() resolves the quoted name exactly as the server resolves a
 * relation in a statement (search_path, pg_temp first, for an unqualified
 * name), and returns NULL rather than failing when it does not exist. The
 * relkinds are those information_schema.tables lists (tables, partitioned
 * tables, views, foreign tables) plus materialized views.
 */
static const char exists_sql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
    " WHERE c.oid = pg_catalog.to_regclass($1::text)"
    " AND c.relkind IN ('r', 'p', 'v', 'f', 'm'))";

pgetl_code pgetl_table_exists(pgetl_conn *conn, const char *table, bool *exists_out,
                              pgetl_error *err) {
    if (exists_out)
        *exists_out = false;
    char quoted[QUOTED_MAX];
    pgetl_code rc = quote_table(table, quoted, sizeof quoted, err);
    if (rc != PGETL_OK)
        return rc;
    char what[sizeof quoted + 16];
    snprintf(what, sizeof what, "table_exists %s", quoted);
    const char *params[1] = {quoted};
    PGresult *res;
    rc = pgetl__sql_run(conn, exists_sql, 1, params, what, &res, err);
    if (rc != PGETL_OK)
        return rc;
    bool exists = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (exists_out)
        *exists_out = exists;
    return PGETL_OK;
}
