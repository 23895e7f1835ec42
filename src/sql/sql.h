/*
 * Private sql layer: catalog look-ups used by the COPY and load layers.
 * Identifier parsing/quoting is public (query.h).
 */
#ifndef PGETL_SRC_SQL_H
#define PGETL_SRC_SQL_H

#include "connect/connect.h"

/* One column of a table, as pg_attribute / pg_type describe it. */
typedef struct pgetl_column_info {
    char name[PGETL_IDENT_MAX];      /* as stored (case kept)                        */
    uint32_t type_oid;               /* atttypid (domains resolved to base type)     */
    int32_t typmod;                  /* atttypmod (-1 when none)                     */
    uint32_t elem_oid;               /* element type for arrays, else 0              */
    bool not_null;
    bool has_default;
    bool generated;                  /* generated columns cannot be COPY targets     */
    char type_name[PGETL_IDENT_MAX]; /* format_type() output, for messages ("numeric(10,2)") */
} pgetl_column_info;

/* A table's columns in attnum order (dropped columns excluded). */
typedef struct pgetl_table_info {
    pgetl_qualified_name name;  /* resolved: schema always filled in              */
    char quoted[2 * (2 * PGETL_IDENT_MAX + 2) + 2]; /* "schema"."table", ready for SQL */
    uint32_t oid;
    char relkind;               /* 'r', 'p', 'v', 'f', ...                        */
    int ncolumns;
    pgetl_column_info *columns;
} pgetl_table_info;

/*
 * Looks up `table` (parsed with pgetl_ident_parse; unqualified names follow
 * search_path, as the server would resolve them) with one parameterised
 * query. PGETL_ENOTFOUND "table "x" does not exist" when there is none.
 * Opens a transaction first when the connection is idle (like every helper).
 * Free with pgetl__table_info_free().
 */
pgetl_code pgetl__catalog_table(pgetl_conn *conn, const char *table, pgetl_table_info **info_out,
                                pgetl_error *err);

void pgetl__table_info_free(pgetl_table_info *info);

/* Index of the column with exactly this (already folded) name, or -1. */
int pgetl__table_column_index(const pgetl_table_info *info, const char *name);

/*
 * Resolves a list of caller-given column names against the table, each
 * matched exactly as stored (pgetl does not case-fold column names given
 * through the API; the CLI folds header names by identifier rules itself).
 * On success fills idx_out[i]. When any is unknown (or listed twice), returns
 * PGETL_ESCHEMA naming every offending name:
 *   `unknown columns for table "s"."t": [a, b]` / `duplicate columns ...`.
 */
pgetl_code pgetl__table_resolve_columns(const pgetl_table_info *info, const char *const *names,
                                        int n, int *idx_out, pgetl_error *err);

/* Well-known type OIDs (pg_type.h), for the encoders' dispatch tables. */
enum {
    PGETL_OID_BOOL = 16,
    PGETL_OID_BYTEA = 17,
    PGETL_OID_CHAR = 18,
    PGETL_OID_NAME = 19,
    PGETL_OID_INT8 = 20,
    PGETL_OID_INT2 = 21,
    PGETL_OID_INT4 = 23,
    PGETL_OID_TEXT = 25,
    PGETL_OID_OID = 26,
    PGETL_OID_JSON = 114,
    PGETL_OID_FLOAT4 = 700,
    PGETL_OID_FLOAT8 = 701,
    PGETL_OID_BPCHAR = 1042,
    PGETL_OID_VARCHAR = 1043,
    PGETL_OID_DATE = 1082,
    PGETL_OID_TIME = 1083,
    PGETL_OID_TIMESTAMP = 1114,
    PGETL_OID_TIMESTAMPTZ = 1184,
    PGETL_OID_INTERVAL = 1186,
    PGETL_OID_TIMETZ = 1266,
    PGETL_OID_NUMERIC = 1700,
    PGETL_OID_UUID = 2950,
    PGETL_OID_JSONB = 3802
};

#endif /* PGETL_SRC_SQL_H */
