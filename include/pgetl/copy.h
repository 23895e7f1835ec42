/*
 * The COPY engine: a streaming COPY-in writer fed with records (text, CSV or
 * typed binary values), Arrow ingest through binary COPY (the spec's
 * copy_from_polars), and query results out as an Arrow stream (the spec's
 * copy_table_to_polars).
 *
 * All COPY-in paths run inside the caller's transaction (opening one when the
 * connection is idle) and never commit. Memory is bounded by one batch
 * whatever the input size. After any failure the connection is out of COPY
 * and usable again once the caller rolls the transaction back.
 *
 * Thread note: a pgetl_copy is used by one thread at a time, like its
 * connection.
 */
#ifndef PGETL_COPY_H
#define PGETL_COPY_H

#include "pgetl/export.h"
#include "pgetl/error.h"
#include "pgetl/pool.h"
#include "pgetl/arrow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pgetl_copy_format {
    PGETL_COPY_TEXT = 0, /* PostgreSQL text format: tab-separated, \N for NULL  */
    PGETL_COPY_CSV,      /* CSV: comma-separated, "" quoting, unquoted empty = NULL */
    PGETL_COPY_BINARY    /* binary tuples, values given with pgetl_copy_write_values */
} pgetl_copy_format;

/* Value types for the typed binary mode (records and internal encoders). */
typedef enum pgetl_type {
    PGETL_TYPE_INT16 = 1,
    PGETL_TYPE_INT32,
    PGETL_TYPE_INT64,
    PGETL_TYPE_FLOAT32,
    PGETL_TYPE_FLOAT64,
    PGETL_TYPE_BOOL,
    PGETL_TYPE_TEXT,        /* UTF-8 bytes (text, varchar, bpchar, json)        */
    PGETL_TYPE_BYTEA,
    PGETL_TYPE_DATE,        /* days since 1970-01-01                            */
    PGETL_TYPE_TIMESTAMP,   /* microseconds since 1970-01-01 00:00 (no zone)    */
    PGETL_TYPE_TIMESTAMPTZ, /* microseconds since 1970-01-01 00:00 UTC          */
    PGETL_TYPE_UUID,        /* 16 bytes, in s.bytes                             */
    PGETL_TYPE_NUMERIC      /* decimal text ("-12.50", "NaN"), in s.bytes       */
} pgetl_type;

/* One typed value. */
typedef struct pgetl_value {
    bool is_null;
    union {
        int64_t i;   /* INT16/32/64, DATE, TIMESTAMP, TIMESTAMPTZ */
        double f;    /* FLOAT32/64                               */
        bool b;      /* BOOL                                     */
        struct {
            const void *bytes;
            size_t len;
        } s;         /* TEXT, BYTEA, UUID (len 16), NUMERIC      */
    } v;
} pgetl_value;

/* A row the server refused, handed to the reject callback. */
typedef struct pgetl_reject {
    int64_t row_index;    /* 0-based among all rows written in this COPY           */
    int64_t batch_index;  /* 0-based batch (Arrow: the stream's batch)             */
    int64_t batch_row;    /* 0-based row within that batch                         */
    char sqlstate[6];
    const char *column;   /* column named by the server, or NULL                   */
    const char *message;  /* the server's message (valid during the callback)      */
    const void *data;     /* the row as encoded for COPY (valid during the callback) */
    size_t data_len;
} pgetl_reject;

/* Return 0 to go on, non-zero to stop the load (it then fails with EABORTED). */
typedef int (*pgetl_reject_fn)(void *user, const pgetl_reject *reject);

typedef struct pgetl_copy_options {
    pgetl_copy_format format;     /* default PGETL_COPY_TEXT                               */
    const char *const *columns;   /* target columns in order; NULL = all, in table order   */
    int ncolumns;
    const pgetl_type *types;      /* BINARY only: one per column, checked against catalog */
    int64_t batch_rows;           /* rows per batch (spec's batch_size); default 50000    */
    size_t chunk_bytes;           /* PQputCopyData chunk size; default PGETL_COPY_CHUNK   */
    int64_t max_rejects;          /* -1 (default): first bad row fails the COPY;          */
                                  /* N >= 0: isolate bad rows, fail after more than N     */
    pgetl_reject_fn on_reject;    /* called for each isolated row (may be NULL)           */
    void *reject_user;
    bool freeze;                  /* COPY ... FREEZE: rows written frozen. The server      */
                                  /* allows it only when the table was created or        */
                                  /* truncated in this transaction (and not inside a     */
                                  /* savepoint): not with max_rejects >= 0 (EINVAL)      */
} pgetl_copy_options;

/*
 * Default PQputCopyData chunk, chosen with bench/bench_copy (bench/README.md,
 * "COPY writer"): of 64 KiB, 256 KiB, 1 MiB and 4 MiB, 1 MiB loaded 1M rows
 * fastest (binary 0.44x of the server's own CSV COPY; the others 0.50-0.58x).
 * Differences are within the shared machine's noise: above 64 KiB the
 * per-call cost is negligible and the server's parsing dominates, so the
 * chunk mainly bounds memory.
 */
#define PGETL_COPY_CHUNK ((size_t)1 << 20)

/* Fills *opts with the defaults above. */
PGETL_API void pgetl_copy_options_init(pgetl_copy_options *opts);

typedef struct pgetl_copy_stats {
    int64_t rows_read;      /* rows handed to pgetl                        */
    int64_t rows_loaded;    /* rows the server accepted                    */
    int64_t rows_rejected;  /* rows isolated and handed to the callback    */
    int64_t batches;
    int64_t bytes_sent;     /* COPY payload bytes                          */
    double seconds;
} pgetl_copy_stats;

typedef struct pgetl_copy pgetl_copy;

/*
 * Starts `COPY "schema"."table" ("c1", ...) FROM STDIN (FORMAT ...)`. The
 * table and columns are checked against the catalog first: a missing table
 * is PGETL_ENOTFOUND; unknown (or repeated, or generated) columns fail with
 * PGETL_ESCHEMA naming every one. In BINARY format each opts->types[i] is
 * checked against its column's type; impossible pairs fail with
 * PGETL_ESCHEMA naming column, pgetl type and PostgreSQL type, before
 * anything is sent. Opens a transaction when the connection is idle; never
 * commits. opts may be NULL (defaults); batch_rows 0 and chunk_bytes 0 mean
 * the defaults. End with pgetl_copy_end() or pgetl_copy_abort(); either frees
 * the session. *copy_out is NULL on failure.
 *
 * Streaming (max_rejects -1): one COPY for the whole session; memory is one
 * chunk plus one row; the server reports a bad row at pgetl_copy_end(), and
 * the message names it ("COPY "public"."t" row 500001: duplicate key ...").
 * Isolation (max_rejects >= 0): each batch is kept in memory and loaded
 * under SAVEPOINT pgetl_batch by COPYs of a few thousand rows at most, each
 * kept once it loads; a row the server refuses with a data or constraint
 * error (SQLSTATE class 22, 23, P0) is handed to on_reject and the rows
 * around it sent again (each good row about twice at most; bench_isolate:
 * 0.1% bad rows cost 1.3-1.5x a clean load). The row that would exceed
 * max_rejects is not handed over: the COPY fails with PGETL_EREJECTS (the
 * rows accepted so far stay in the transaction for the caller to roll back).
 * Values pgetl itself refuses (NUL bytes, out-of-range numbers) always fail
 * the session; they are caller bugs, not server verdicts.
 */
PGETL_API pgetl_code pgetl_copy_begin(pgetl_conn *conn, const char *table,
                                      const pgetl_copy_options *opts, pgetl_copy **copy_out,
                                      pgetl_error *err);

/*
 * Writes one row of text values (TEXT or CSV format): values[i] points to
 * lengths[i] bytes (lengths may be NULL for NUL-terminated values); a NULL
 * pointer is SQL NULL, distinct from an empty string. Every byte is escaped
 * as the format requires. Errors are sticky: after one, every call but
 * end/abort returns it.
 */
PGETL_API pgetl_code pgetl_copy_write_row(pgetl_copy *copy, const char *const *values,
                                          const size_t *lengths, pgetl_error *err);

/*
 * Writes one row of typed values (BINARY format), one per column, each
 * encoded as its declared pgetl_type into its column's type. A value out of
 * the column's range (int64 into integer) is PGETL_EOVERFLOW, a malformed one
 * (numeric text, uuid not 16 bytes, NUL in text) PGETL_EDATA; both name the
 * row (1-based) and column, and are sticky.
 */
PGETL_API pgetl_code pgetl_copy_write_values(pgetl_copy *copy, const pgetl_value *values,
                                             pgetl_error *err);

/*
 * Finishes the COPY and checks the server's result. *stats_out (may be NULL)
 * receives the counts. Frees the session whatever the outcome. A server error
 * carries SQLSTATE, message and context, and names the failing row.
 */
PGETL_API pgetl_code pgetl_copy_end(pgetl_copy *copy, pgetl_copy_stats *stats_out,
                                    pgetl_error *err);

/*
 * Abandons the COPY: the server gets PQputCopyEnd with `reason`, nothing of
 * it is stored, and the transaction is left failed for the caller to roll
 * back. Frees the session. Accepts NULL.
 */
PGETL_API void pgetl_copy_abort(pgetl_copy *copy, const char *reason);

/* ------------------------------------------------------------------------ */
/* Arrow in                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct pgetl_arrow_options {
    const char *const *columns;   /* NULL: every field of the schema, by name */
    int ncolumns;
    size_t chunk_bytes;           /* default PGETL_COPY_CHUNK                 */
    int64_t max_rejects;          /* as in pgetl_copy_options                 */
    pgetl_reject_fn on_reject;
    void *reject_user;
} pgetl_arrow_options;

PGETL_API void pgetl_arrow_options_init(pgetl_arrow_options *opts);

/*
 * Loads an Arrow stream into `table` through binary COPY (spec's
 * copy_from_polars). Consumes the stream: it is released exactly once,
 * whatever happens, and so is every schema and array taken from it.
 * - no rows: logs `copy_from_arrow: no rows for table=<table>; skipping`
 *   (info), sends nothing, returns PGETL_OK;
 * - columns given: exactly those, in that order; any absent from the data:
 *   PGETL_ESCHEMA "data missing required columns for COPY into <table>:
 *   [a, b]" before anything is sent;
 * - every field's Arrow type is checked against its column's type before
 *   sending; a pair that cannot convert losslessly is PGETL_ESCHEMA naming
 *   column, Arrow format string and PostgreSQL type;
 * - malformed arrays are PGETL_EDATA; a stream error PGETL_EARROW with the
 *   stream's own message.
 * Value rules (type table in docs/ARROW.md): nanosecond timestamps, times
 * and durations are truncated to microseconds toward negative infinity
 * (-1 ns is stored as -1 us); a timestamp with a time zone loads only into
 * timestamptz (instant kept) and one without only into timestamp, never
 * shifted; integers never load into date/time columns; uint64 above
 * INT64_MAX into bigint, and timestamps that overflow or hit PostgreSQL's
 * infinity encodings, fail with PGETL_EOVERFLOW naming column, batch and row.
 */
PGETL_API pgetl_code pgetl_copy_from_arrow(pgetl_conn *conn, const char *table,
                                           struct ArrowArrayStream *stream,
                                           const char *const *columns, int ncolumns,
                                           pgetl_copy_stats *stats_out, pgetl_error *err);

/* pgetl_copy_from_arrow() with options (bad-row isolation, chunk size). */
PGETL_API pgetl_code pgetl_copy_from_arrow_opts(pgetl_conn *conn, const char *table,
                                                struct ArrowArrayStream *stream,
                                                const pgetl_arrow_options *opts,
                                                pgetl_copy_stats *stats_out, pgetl_error *err);

/* ------------------------------------------------------------------------ */
/* Arrow out                                                                */
/* ------------------------------------------------------------------------ */

/* Rows per Arrow batch produced by pgetl_query_arrow(). */
#define PGETL_ARROW_BATCH_ROWS 65536

/*
 * Runs a query and exposes its rows as an Arrow C stream in *stream_out,
 * decoded a batch at a time (memory bounded by one batch whatever the result
 * size). The spec's copy_table_to_polars.
 *
 * How: the query is first described as the unnamed prepared statement; that
 * checks the SQL and reports its errors with SQLSTATE before anything
 * streams, and gives the column names, types and typmods. Without parameters
 * the rows come through `COPY (sql) TO STDOUT (FORMAT binary)`; with
 * parameters (COPY cannot bind them) through the prepared statement in
 * single-row mode with binary results. Both give the same Arrow output.
 * Columns whose type has no binary decoder (see docs/ARROW.md, "Query to
 * Arrow", for the type mapping) arrive as their text output: the query is
 * then wrapped as `SELECT c1, c2::text, ... FROM (sql) AS q(c1, c2, ...)`,
 * so it must be usable as a subquery (SELECT, VALUES, TABLE). `sql` is one
 * statement; trailing semicolons and blanks are dropped.
 *
 * params: nparams text-format values for $1..$n (a NULL pointer is SQL
 * NULL); nparams must equal the statement's parameter count.
 *
 * Transactions: opens one when the connection is idle and never commits.
 * Its work runs under `SAVEPOINT pgetl_query_arrow`, released when the
 * stream ends and rolled back when it fails or is stopped early, so the
 * caller's transaction is left as it was (and usable) whatever happens,
 * unless the connection itself is lost.
 *
 * Returns PGETL_OK with *stream_out set (release it exactly once), or:
 * PGETL_EINVAL (NULL argument, parameter count), PGETL_EUNSUPPORTED
 * (client_encoding is not UTF8), PGETL_ESTATE (the connection is busy, e.g.
 * another stream still borrows it), PGETL_ESERVER with SQLSTATE (bad SQL,
 * errors found when execution starts), PGETL_ECONNLOST, PGETL_ENOMEM. On
 * failure stream_out->release is NULL.
 *
 * The stream: get_schema gives a struct ("+s") with one nullable child per
 * column, named as the query names them (duplicates kept). get_next gives
 * batches of up to PGETL_ARROW_BATCH_ROWS rows (fewer when a string, binary
 * or list column would pass the 2 GiB its int32 offsets can address), then
 * returns 0 with out->release == NULL at the end; an empty result is a valid
 * stream with its schema and no batches. On failure get_next returns EINVAL
 * (a value Arrow cannot hold, e.g. 'infinity' dates, NaN in decimal128,
 * multi-dimensional arrays, or bytes that do not decode), ENOMEM, or EIO (a
 * server error mid-stream, the connection lost, or the connection released
 * under the stream), and get_last_error() returns the message, "... [SQLSTATE
 * xxxxx]" for server errors; failures are sticky. Batches are independent of
 * the stream and the connection and may outlive both.
 *
 * Connection contract: the stream borrows the connection until get_next has
 * reported the end or a failure, or the stream is released. Meanwhile use
 * the connection for nothing else. Releasing the stream early cancels the
 * server-side command (after reading whatever already arrived), drains it
 * (bounded by a 10 s timeout) and leaves the connection idle and usable.
 * Giving the connection back to its pool, or closing it, while the stream is
 * open does the same, and the stream's next get_next fails with EIO and
 * "the connection was released while the stream was open"; the stream never
 * touches the connection again.
 *
 * Thread note: the stream is used by one thread at a time, like its
 * connection.
 */
PGETL_API pgetl_code pgetl_query_arrow(pgetl_conn *conn, const char *sql, int nparams,
                                       const char *const *params,
                                       struct ArrowArrayStream *stream_out, pgetl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_COPY_H */
