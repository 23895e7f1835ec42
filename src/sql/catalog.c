/*
 * Catalog look-ups: a target table's columns, as the COPY encoders and the
 * loader's column checks need them.
 *
 * One parameterised query does the whole job, so the answer is one
 * consistent snapshot: the relation is resolved by to_regclass() on the
 * quoted name (the server's own search_path rules), its live columns come
 * in attnum order, and a recursive walk down pg_type resolves domains to
 * their base type and typmod the way getBaseTypeAndTypmod() does (only the
 * domain directly over the base type can carry a typmod). The relation row
 * is LEFT JOINed so a table with no columns still answers.
 *
 * elem_oid is the array's own typelem, not resolved further: binary COPY
 * writes that OID into each array header and array_recv() insists on it.
 * has_default also covers identity columns: omitting either is fine.
 */
#include "sql/sql_int.h"

#include <stdio.h>
#include <stdlib.h>

static const char catalog_sql[] =
    "WITH RECURSIVE rel AS ("
    "  SELECT c.oid, c.relkind, n.nspname, c.relname"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE c.oid = pg_catalog.to_regclass($1::text)),"
    " att AS ("
    "  SELECT a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull,"
    "         a.atthasdef OR a.attidentity <> '' AS hasdef, a.attgenerated <> '' AS gen,"
    "         pg_catalog.format_type(a.atttypid, a.atttypmod) AS tname"
    "  FROM pg_catalog.pg_attribute a JOIN rel ON a.attrelid = rel.oid"
    "  WHERE a.attnum > 0 AND NOT a.attisdropped),"
    " dom(attnum, typ, typmod, depth) AS ("
    "  SELECT attnum, atttypid, atttypmod, 0 FROM att"
    "  UNION ALL"
    "  SELECT d.attnum, t.typbasetype, t.typtypmod, d.depth + 1"
    "  FROM dom d JOIN pg_catalog.pg_type t ON t.oid = d.typ"
    "  WHERE t.typtype = 'd'),"
    " base AS ("
    "  SELECT DISTINCT ON (attnum) attnum, typ, typmod FROM dom ORDER BY attnum, depth DESC)"
    " SELECT rel.oid, rel.relkind, rel.nspname, rel.relname,"
    "        att.attname, base.typ, base.typmod,"
    "        CASE WHEN t.typlen = -1 AND t.typelem <> 0 THEN t.typelem ELSE 0 END,"
    "        att.attnotnull, att.hasdef, att.gen, att.tname"
    " FROM rel LEFT JOIN att ON true"
    " LEFT JOIN base ON base.attnum = att.attnum"
    " LEFT JOIN pg_catalog.pg_type t ON t.oid = base.typ"
    " ORDER BY att.attnum";

enum { C_OID, C_RELKIND, C_NSP, C_REL, C_ATT, C_TYP, C_TYPMOD, C_ELEM, C_NOTNULL, C_HASDEF,
       C_GEN, C_TNAME, C_COUNT };

static const char *relkind_noun(char k) {
    switch (k) {
    case 'i':
    case 'I':
        return "an index";
    case 'S':
        return "a sequence";
    case 'c':
        return "a composite type";
    case 't':
        return "a TOAST table";
    default:
        return "not a table";
    }
}

static uint32_t get_u32(const PGresult *res, int row, int col) {
    return (uint32_t)strtoul(PQgetvalue(res, row, col), NULL, 10);
}

static bool get_bool(const PGresult *res, int row, int col) {
    return PQgetvalue(res, row, col)[0] == 't';
}

static void fill_column(pgetl_column_info *c, const PGresult *res, int row) {
    pgetl__strlcpy_utf8(c->name, PQgetvalue(res, row, C_ATT), sizeof c->name);
    c->type_oid = get_u32(res, row, C_TYP);
    c->typmod = (int32_t)strtol(PQgetvalue(res, row, C_TYPMOD), NULL, 10);
    c->elem_oid = get_u32(res, row, C_ELEM);
    c->not_null = get_bool(res, row, C_NOTNULL);
    c->has_default = get_bool(res, row, C_HASDEF);
    c->generated = get_bool(res, row, C_GEN);
    pgetl__strlcpy_utf8(c->type_name, PQgetvalue(res, row, C_TNAME), sizeof c->type_name);
}

pgetl_code pgetl__catalog_table(pgetl_conn *conn, const char *table, pgetl_table_info **info_out,
                                pgetl_error *err) {
    if (!info_out)
        return pgetl_error_set(err, PGETL_EINVAL, "catalog lookup: info_out is NULL");
    *info_out = NULL;
    pgetl_qualified_name qn;
    pgetl_code rc = pgetl_ident_parse(table, &qn, err);
    if (rc != PGETL_OK)
        return rc;
    char quoted[sizeof ((pgetl_table_info *)0)->quoted];
    pgetl_qualified_name_quote(&qn, quoted, sizeof quoted);
    char what[sizeof quoted + 32];
    snprintf(what, sizeof what, "catalog lookup for %s", quoted);

    const char *params[1] = {quoted};
    PGresult *res;
    rc = pgetl__sql_run(conn, catalog_sql, 1, params, what, &res, err);
    if (rc != PGETL_OK)
        return rc;
    int nrows = PQntuples(res);
    if (nrows == 0) {
        PQclear(res);
        return pgetl_error_set(err, PGETL_ENOTFOUND, "table %s does not exist", quoted);
    }
    if (PQnfields(res) != C_COUNT) {
        PQclear(res);
        return pgetl_error_set(err, PGETL_ESERVER, "%s: unexpected result shape", what);
    }
    char relkind = PQgetvalue(res, 0, C_RELKIND)[0];
    if (!strchr("rpvfm", relkind)) {
        PQclear(res);
        return pgetl_error_set(err, PGETL_ENOTFOUND, "table %s does not exist (it is %s)", quoted,
                               relkind_noun(relkind));
    }
    /* A relation without columns still yields its one LEFT JOINed row. */
    int ncols = PQgetisnull(res, 0, C_ATT) ? 0 : nrows;

    /* One block for the struct and its columns: freed at once. */
    pgetl_table_info *info =
        pgetl__calloc(1, sizeof *info + (size_t)ncols * sizeof(pgetl_column_info));
    if (!info) {
        PQclear(res);
        return pgetl__error_oom(err, what);
    }
    info->columns = ncols ? (pgetl_column_info *)(info + 1) : NULL;
    info->ncolumns = ncols;
    info->oid = get_u32(res, 0, C_OID);
    info->relkind = relkind;
    pgetl__strlcpy_utf8(info->name.schema, PQgetvalue(res, 0, C_NSP), sizeof info->name.schema);
    pgetl__strlcpy_utf8(info->name.name, PQgetvalue(res, 0, C_REL), sizeof info->name.name);
    pgetl_qualified_name_quote(&info->name, info->quoted, sizeof info->quoted);
    for (int i = 0; i < ncols; i++)
        fill_column(&info->columns[i], res, i);
    PQclear(res);
    *info_out = info;
    return PGETL_OK;
}

void pgetl__table_info_free(pgetl_table_info *info) {
    pgetl__free(info);
}

int pgetl__table_column_index(const pgetl_table_info *info, const char *name) {
    if (!info || !name)
        return -1;
    for (int i = 0; i < info->ncolumns; i++)
        if (strcmp(info->columns[i].name, name) == 0)
            return i;
    return -1;
}

/*
 * A bounded, comma-separated list of names for one message. `cap` is the
 * list's share of the message, so the whole message (prefix and both lists)
 * fits and a cut list still ends with "...", never mid-name.
 */
typedef struct name_list {
    char text[PGETL_ERROR_MESSAGE_SIZE];
    size_t len, cap;
    int count;
    bool cut;
} name_list;

static void list_add(name_list *l, const char *name) {
    const char *sep = l->count++ ? ", " : "";
    size_t need = strlen(sep) + strlen(name);
    /* Keep room for ", ..." and the NUL. */
    if (l->cut || l->len + need + 6 > l->cap) {
        l->cut = true;
        return;
    }
    memcpy(l->text + l->len, sep, strlen(sep));
    memcpy(l->text + l->len + strlen(sep), name, strlen(name));
    l->len += need;
    l->text[l->len] = '\0';
}

static const char *list_text(name_list *l) {
    if (l->cut) {
        const char *more = l->len ? ", ..." : "...";
        memcpy(l->text + l->len, more, strlen(more) + 1);
    }
    return l->text;
}

static bool is_duplicate(const int *idx, int i) {
    for (int j = 0; j < i; j++)
        if (idx[j] == idx[i])
            return true;
    return false;
}

pgetl_code pgetl__table_resolve_columns(const pgetl_table_info *info, const char *const *names,
                                        int n, int *idx_out, pgetl_error *err) {
    if (!info || n < 0 || (n > 0 && (!names || !idx_out)))
        return pgetl_error_set(err, PGETL_EINVAL, "resolve columns: invalid arguments");
    int nunknown = 0, ndup = 0;
    for (int i = 0; i < n; i++) {
        idx_out[i] = names[i] ? pgetl__table_column_index(info, names[i]) : -1;
        if (idx_out[i] < 0)
            nunknown++;
        else if (is_duplicate(idx_out, i))
            ndup++;
    }
    if (nunknown == 0 && ndup == 0)
        return PGETL_OK;

    /* Share what the message has left after its fixed text between the lists. */
    size_t fixed = strlen("unknown columns for table : []; duplicate columns: []") +
                   strlen(info->quoted) + 1;
    size_t avail = PGETL_ERROR_MESSAGE_SIZE > fixed ? PGETL_ERROR_MESSAGE_SIZE - fixed : 0;
    name_list unknown = {.cap = nunknown && ndup ? avail / 2 : avail};
    name_list dup = {.cap = avail - (nunknown ? unknown.cap : 0)};
    unknown.text[0] = dup.text[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (idx_out[i] < 0) {
            list_add(&unknown, names[i] ? names[i] : "(null)");
            continue;
        }
        /* Report a duplicate once: at its second occurrence. */
        int seen = 0;
        for (int j = 0; j < i && seen < 2; j++)
            if (idx_out[j] == idx_out[i])
                seen++;
        if (seen == 1)
            list_add(&dup, names[i]);
    }
    if (nunknown && ndup)
        return pgetl_error_set(err, PGETL_ESCHEMA,
                               "unknown columns for table %s: [%s]; duplicate columns: [%s]",
                               info->quoted, list_text(&unknown), list_text(&dup));
    if (nunknown)
        return pgetl_error_set(err, PGETL_ESCHEMA, "unknown columns for table %s: [%s]",
                               info->quoted, list_text(&unknown));
    return pgetl_error_set(err, PGETL_ESCHEMA, "duplicate columns for table %s: [%s]",
                           info->quoted, list_text(&dup));
}
