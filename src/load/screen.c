/*
 * CHECK pre-screen for --max-errors. A row that breaks a CHECK constraint
 * converts to binary like any good row, so only the server can refuse it,
 * and each refusal costs isolation a failed COPY plus smaller windows for
 * every row after it (on PostgreSQL 15 a COPY of a few hundred rows costs
 * its round trip and a quadratic slot bookkeeping, isolate.c). Once a
 * binary batch has lost a row to a CHECK (SQLSTATE 23514), each later
 * binary batch first asks the server, in one query over arrays of just the
 * referenced columns, which of its rows some CHECK would refuse:
 *
 *   SELECT s.o FROM (SELECT unnest($1) AS "qty", ...) AS s
 *   WHERE (<check 1>) IS FALSE OR (<check 2>) IS FALSE
 *
 * (build_sql has it whole; a CHECK refuses a row only when it is false,
 * NULL passes). Those rows join the batch's suspects: they go to the
 * server as the input had them,
 * in the COPY after the binary rows, and the server decides each one, so
 * the screen only routes rows and never decides one. A CHECK it gets wrong
 * (an expression that reads differently over the arrays, a column
 * collation) costs time, not correctness. The query runs under its own
 * savepoint; if it fails (a CHECK that raises an error on some value), the
 * savepoint is rolled back and screening stops for the load.
 */
#include "load/load_int.h"

#include "pgetl/query.h"
#include "sql/sql.h"

#include <libpq-fe.h>
#include <stdlib.h>

typedef struct screen_check {
    char *expr; /* pg_get_expr(conbin): refers to columns by name */
    int *cols;  /* table column indexes it reads                  */
    int ncols;
    bool usable;
} screen_check;

struct pgetl_load_screen {
    screen_check *checks;
    int nchecks;
};

/* The array type of each element type binary conversion produces (pg_type.typarray). */
static const struct {
    uint32_t elem, array;
} array_types[] = {
    {PGETL_OID_BOOL, 1000},      {PGETL_OID_INT2, 1005},        {PGETL_OID_INT4, 1007},
    {PGETL_OID_INT8, 1016},      {PGETL_OID_TEXT, 1009},        {PGETL_OID_FLOAT4, 1021},
    {PGETL_OID_FLOAT8, 1022},    {PGETL_OID_VARCHAR, 1015},     {PGETL_OID_DATE, 1182},
    {PGETL_OID_TIMESTAMP, 1115}, {PGETL_OID_TIMESTAMPTZ, 1185},
};

static uint32_t array_oid(uint32_t elem) {
    for (size_t i = 0; i < sizeof array_types / sizeof array_types[0]; i++)
        if (array_types[i].elem == elem)
            return array_types[i].array;
    return 0;
}

static void check_free(screen_check *c) {
    pgetl__free(c->expr);
    pgetl__free(c->cols);
}

int pgetl__screen_count(const pgetl_load_screen *s) {
    return s ? s->nchecks : 0;
}

void pgetl__screen_free(pgetl_load_screen *s) {
    if (!s)
        return;
    for (int i = 0; i < s->nchecks; i++)
        check_free(&s->checks[i]);
    pgetl__free(s->checks);
    pgetl__free(s);
}

/* Adds table column `name` to check c; a column screening cannot read makes c unusable. */
static pgetl_code check_add_col(screen_check *c, const pgetl_table_info *info, const char *name) {
    int col = pgetl__table_column_index(info, name);
    if (col < 0 || array_oid(info->columns[col].type_oid) == 0) {
        c->usable = false;
        return PGETL_OK;
    }
    int *cols = pgetl__realloc(c->cols, sizeof *cols * (size_t)(c->ncols + 1));
    if (!cols)
        return PGETL_ENOMEM;
    cols[c->ncols++] = col;
    c->cols = cols;
    return PGETL_OK;
}

/* Fills s from the catalog rows (constraint oid, expression, column name), one per column. */
static pgetl_code checks_from(pgetl_load_screen *s, const PGresult *res,
                              const pgetl_table_info *info) {
    int n = PQntuples(res);
    if (n > 0 && !(s->checks = pgetl__calloc((size_t)n, sizeof *s->checks)))
        return PGETL_ENOMEM;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(PQgetvalue(res, i, 0), PQgetvalue(res, i - 1, 0)) != 0) {
            screen_check *c = &s->checks[s->nchecks++];
            c->usable = true;
            if (!(c->expr = pgetl__strdup(PQgetvalue(res, i, 1))))
                return PGETL_ENOMEM;
        }
        if (check_add_col(&s->checks[s->nchecks - 1], info, PQgetvalue(res, i, 2)) != PGETL_OK)
            return PGETL_ENOMEM;
    }
    int kept = 0;
    for (int i = 0; i < s->nchecks; i++) {
        if (s->checks[i].usable)
            s->checks[kept++] = s->checks[i];
        else
            check_free(&s->checks[i]);
    }
    s->nchecks = kept;
    return PGETL_OK;
}

pgetl_code pgetl__screen_plan(pgetl_conn *conn, const pgetl_table_info *info,
                              pgetl_load_screen **out, pgetl_error *err) {
    /* One row per column a CHECK reads; a CHECK on no column (a constant) never shows. */
    static const char sql[] =
        "SELECT c.oid, pg_catalog.pg_get_expr(c.conbin, c.conrelid), a.attname "
        "FROM pg_catalog.pg_constraint c "
        "CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) AS k(n) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n "
        "WHERE c.conrelid = $1 AND c.contype = 'c' ORDER BY c.oid, k.n";
    *out = NULL;
    char oid[16];
    snprintf(oid, sizeof oid, "%u", (unsigned)info->oid);
    const char *params[1] = {oid};
    PGconn *pg = pgetl__conn_pg(conn);
    pgetl__conn_wait_begin(pg);
    PGresult *res = PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);
    pgetl__conn_wait_end(pg);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pgetl_code rc = res ? pgetl__error_from_pg(err, res, pg, "reading CHECK constraints")
                            : pgetl__error_oom(err, "reading CHECK constraints");
        PQclear(res);
        return rc;
    }
    pgetl_load_screen *s = pgetl__calloc(1, sizeof *s);
    pgetl_code rc = s ? checks_from(s, res, info) : PGETL_ENOMEM;
    PQclear(res);
    if (rc != PGETL_OK) {
        pgetl__screen_free(s);
        return pgetl__error_oom(err, "CHECK screen");
    }
    *out = s;
    return PGETL_OK;
}

/* Field of file f loading table column col, or -1. */
static int field_of(const pgetl_load_file *f, int col) {
    for (int k = 0; k < f->ncols; k++)
        if (f->colidx[k] == col)
            return k;
    return -1;
}

/* Does every column check c reads come from file f? */
static bool applies(const screen_check *c, const pgetl_load_file *f) {
    for (int j = 0; j < c->ncols; j++)
        if (field_of(f, c->cols[j]) < 0)
            return false;
    return true;
}

/*
 * The query over file f's fields marked in `want` (one array parameter
 * each, in field order):
 *
 *   SELECT s.o FROM (SELECT unnest($1) AS "qty", unnest($2) AS "x",
 *                           generate_subscripts($1, 1) AS o) AS s
 *   WHERE (<check 1>) IS FALSE OR (<check 2>) IS FALSE ORDER BY 1
 *
 * The set-returning functions run in the select list, side by side, rather
 * than as unnest(...) WITH ORDINALITY in FROM, which first copies every
 * element into a tuplestore: 2.5x the server time on 42k rows. The index
 * column gets a name no table column has, so no CHECK can mean it.
 */
static pgetl_code build_sql(const pgetl_load_screen *s, const pgetl_table_info *info,
                            const pgetl_load_file *f, const bool *want, pgetl_buf *sql) {
    char ord[PGETL_IDENT_MAX] = "pgetl_row";
    while (pgetl__table_column_index(info, ord) >= 0 && strlen(ord) + 2 < sizeof ord)
        strcat(ord, "_");
    pgetl_code rc = pgetl__buf_printf(sql, "SELECT s.%s FROM (SELECT ", ord);
    char q[2 * PGETL_IDENT_MAX + 3];
    int np = 0;
    for (int k = 0; k < f->ncols && rc == PGETL_OK; k++) {
        if (!want[k])
            continue;
        pgetl_ident_quote(info->columns[f->colidx[k]].name, q, sizeof q);
        rc = pgetl__buf_printf(sql, "pg_catalog.unnest($%d) AS %s, ", ++np, q);
    }
    if (rc == PGETL_OK)
        rc =
            pgetl__buf_printf(sql, "pg_catalog.generate_subscripts($1, 1) AS %s) AS s WHERE ", ord);
    int nc = 0;
    for (int i = 0; i < s->nchecks && rc == PGETL_OK; i++)
        if (applies(&s->checks[i], f))
            rc = pgetl__buf_printf(sql, "%s(%s) IS FALSE", nc++ ? " OR " : "", s->checks[i].expr);
    return rc == PGETL_OK ? pgetl__buf_printf(sql, " ORDER BY 1") : rc;
}

/*
 * Builds one binary array per wanted field from b's binary tuples (suspects
 * excluded) in b->screen[k]; map[i] gets the batch row of element i + 1.
 * Returns the element count, or -1 when out of memory.
 */
static int64_t build_arrays(const pgetl_table_info *info, pgetl_load_batch *b, const bool *want,
                            int64_t *map) {
    /* The header's has-null flag (bytes 4-7) and length (12-15) are set as elements arrive. */
    enum { HDR = 20, HAS_NULL_LAST_BYTE = 7, DIM_AT = 12 };
    const pgetl_load_file *f = b->file;
    for (int k = 0; k < f->ncols; k++) {
        if (!want[k])
            continue;
        pgetl_buf *a = &b->screen[k];
        pgetl__buf_clear(a);
        if (pgetl__buf_reserve(a, HDR) != PGETL_OK)
            return -1;
        pgetl__buf_be32_unchecked(a, 1); /* ndim */
        pgetl__buf_be32_unchecked(a, 0); /* has nulls */
        pgetl__buf_be32_unchecked(a, info->columns[f->colidx[k]].type_oid);
        pgetl__buf_be32_unchecked(a, 0); /* length */
        pgetl__buf_be32_unchecked(a, 1); /* lower bound */
    }
    int64_t m = 0, ks = 0;
    for (int64_t r = 0; r < b->nrows; r++) {
        if (ks < b->nsuspect && b->suspect[ks] == r) {
            ks++;
            continue;
        }
        const char *p = b->bin.data + (r ? b->bin_end[r - 1] : 0) + 2;
        for (int k = 0; k < f->ncols; k++) {
            int32_t len = (int32_t)pgetl__get_be32(p);
            size_t n = 4 + (len > 0 ? (size_t)len : 0);
            if (want[k]) {
                if (pgetl__buf_append(&b->screen[k], p, n) != PGETL_OK)
                    return -1;
                if (len < 0)
                    b->screen[k].data[HAS_NULL_LAST_BYTE] = 1;
            }
            p += n;
        }
        map[m++] = r;
    }
    for (int k = 0; k < f->ncols; k++) {
        if (!want[k])
            continue;
        pgetl_buf *a = &b->screen[k];
        size_t end = a->len;
        a->len = DIM_AT;
        pgetl__buf_be32_unchecked(a, (uint32_t)m);
        a->len = end;
    }
    return m;
}

/* Merges the ascending rows add[0..n) into b's ascending suspects (room for them is there). */
static void merge_suspects(pgetl_load_batch *b, const int64_t *add, int64_t n) {
    int64_t i = b->nsuspect - 1, j = n - 1, o = b->nsuspect + n - 1;
    while (j >= 0)
        b->suspect[o--] = i >= 0 && b->suspect[i] > add[j] ? b->suspect[i--] : add[j--];
    b->nsuspect += n;
}

/* One batch's query parameters: a binary array per wanted field of the file. */
typedef struct screen_params {
    bool *want; /* per field of the file */
    const char **values;
    Oid *types;
    int *lens;
    int *formats;
    int n;
} screen_params;

static void params_free(screen_params *p) {
    pgetl__free(p->want);
    pgetl__free(p->values);
    pgetl__free(p->types);
    pgetl__free(p->lens);
    pgetl__free(p->formats);
}

/* Marks the fields the checks that apply to file f read; false when none applies. */
static bool params_init(screen_params *p, const pgetl_load_screen *s, const pgetl_load_file *f,
                        pgetl_code *rc) {
    size_t nf = (size_t)f->ncols;
    *p = (screen_params){
        .want = pgetl__calloc(nf, sizeof *p->want),
        .values = pgetl__calloc(nf, sizeof *p->values),
        .types = pgetl__calloc(nf, sizeof *p->types),
        .lens = pgetl__calloc(nf, sizeof *p->lens),
        .formats = pgetl__calloc(nf, sizeof *p->formats),
    };
    *rc = p->want && p->values && p->types && p->lens && p->formats ? PGETL_OK : PGETL_ENOMEM;
    bool any = false;
    for (int i = 0; *rc == PGETL_OK && i < s->nchecks; i++) {
        if (!applies(&s->checks[i], f))
            continue;
        any = true;
        for (int j = 0; j < s->checks[i].ncols; j++)
            p->want[field_of(f, s->checks[i].cols[j])] = true;
    }
    return any;
}

/* Grows b's per-field array buffers to the file's field count. */
static pgetl_code batch_arrays(pgetl_load_batch *b, int nf) {
    if (b->nscreen < nf) {
        pgetl_buf *g = pgetl__realloc(b->screen, sizeof *g * (size_t)nf);
        if (!g)
            return PGETL_ENOMEM;
        memset(g + b->nscreen, 0, sizeof *g * (size_t)(nf - b->nscreen));
        b->screen = g;
        b->nscreen = nf;
    }
    if (!b->send_map && !(b->send_map = pgetl__malloc(sizeof(int64_t) * (size_t)b->cap)))
        return PGETL_ENOMEM;
    return PGETL_OK;
}

/* Points the parameters at the arrays build_arrays made. */
static void params_bind(screen_params *p, const pgetl_table_info *info, const pgetl_load_batch *b) {
    const pgetl_load_file *f = b->file;
    p->n = 0;
    for (int k = 0; k < f->ncols; k++) {
        if (!p->want[k])
            continue;
        p->types[p->n] = array_oid(info->columns[f->colidx[k]].type_oid);
        p->values[p->n] = b->screen[k].data;
        p->lens[p->n] = (int)b->screen[k].len;
        p->formats[p->n] = 1;
        p->n++;
    }
}

static const char sp_set[] = "SAVEPOINT pgetl_screen";
static const char sp_keep[] = "RELEASE SAVEPOINT pgetl_screen";
static const char sp_undo[] = "ROLLBACK TO SAVEPOINT pgetl_screen; RELEASE SAVEPOINT pgetl_screen";

/*
 * Runs the screen query under its own savepoint. A server error in the
 * query itself is not the load's failure: the savepoint is rolled back,
 * *failed is set and the error is logged; anything else (the connection)
 * is returned.
 */
static pgetl_code run(pgetl_conn *conn, const pgetl_buf *sql, const screen_params *p,
                      PGresult **res_out, bool *failed, pgetl_error *err) {
    *res_out = NULL;
    pgetl_code rc = pgetl__conn_exec_simple(conn, sp_set, err);
    if (rc != PGETL_OK)
        return rc;
    PGconn *pg = pgetl__conn_pg(conn);
    pgetl__conn_wait_begin(pg);
    PGresult *res = PQexecParams(pg, sql->data, p->n, p->types, p->values, p->lens, p->formats, 0);
    pgetl__conn_wait_end(pg);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        *res_out = res;
        return pgetl__conn_exec_simple(conn, sp_keep, err);
    }
    pgetl_error e;
    rc = res ? pgetl__error_from_pg(&e, res, pg, "CHECK screen")
             : pgetl__error_oom(&e, "CHECK screen");
    PQclear(res);
    if (rc != PGETL_ESERVER)
        return pgetl__error_copy(err, &e);
    *failed = true;
    pgetl_logline l;
    if (pgetl__log_begin(&l, PGETL_LOG_WARN, "load_check_screen_off")) {
        pgetl__log_str(&l, "sqlstate", e.sqlstate);
        pgetl__log_str(&l, "message", e.message);
        pgetl__log_end(&l);
    }
    return pgetl__conn_exec_simple(conn, sp_undo, err);
}

/* Turns the query's 1-based array indexes into batch rows, in place over map; returns how many. */
static int64_t flagged_rows(const PGresult *res, int64_t *map, int64_t m) {
    int64_t n = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        long long o = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        /* Ascending (ORDER BY), so map[o - 1] is read before anything overwrites it. */
        if (o >= 1 && o <= m && (n == 0 || map[o - 1] > map[n - 1]))
            map[n++] = map[o - 1];
    }
    return n;
}

pgetl_code pgetl__screen_batch(const pgetl_load_screen *s, const pgetl_table_info *info,
                               pgetl_conn *conn, pgetl_load_batch *b, int64_t *flagged,
                               bool *failed, pgetl_error *err) {
    *flagged = 0;
    screen_params p;
    pgetl_code rc;
    if (!params_init(&p, s, b->file, &rc) || rc != PGETL_OK) {
        params_free(&p);
        return rc == PGETL_OK ? PGETL_OK : pgetl__error_oom(err, "CHECK screen");
    }
    int64_t m = batch_arrays(b, b->file->ncols) == PGETL_OK
                    ? build_arrays(info, b, p.want, b->send_map)
                    : -1;
    pgetl_buf sql;
    pgetl__buf_init(&sql);
    if (m < 0 || (m > 0 && build_sql(s, info, b->file, p.want, &sql) != PGETL_OK)) {
        pgetl__buf_reset(&sql);
        params_free(&p);
        return pgetl__error_oom(err, "CHECK screen");
    }
    PGresult *res = NULL;
    rc = PGETL_OK;
    if (m > 0) {
        params_bind(&p, info, b);
        rc = run(conn, &sql, &p, &res, failed, err);
    }
    pgetl__buf_reset(&sql);
    params_free(&p);
    if (!res)
        return rc;
    int64_t n = flagged_rows(res, b->send_map, m);
    PQclear(res);
    if (rc == PGETL_OK) {
        merge_suspects(b, b->send_map, n);
        *flagged = n;
    }
    return rc;
}
