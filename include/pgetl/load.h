/*
 * Whole-file loads: CSV / TSV / PostgreSQL-text files (optionally gzip or
 * zstd compressed, detected by content) into a table through COPY.
 *
 * Data path: reader (large blocks, decompression) -> quote-aware row-boundary
 * scanner -> batches cut at row boundaries -> COPY. When the file's columns
 * need no conversion, the raw bytes go to COPY (FORMAT csv/text); when every
 * target column has a type pgetl parses exactly as PostgreSQL does, rows may
 * be converted to binary COPY on the client (a batch holding any value
 * outside the strict grammar goes as CSV instead).
 *
 * Invariants: rows read = rows loaded + rows rejected, always; a failed
 * atomic load commits nothing; memory is bounded by a few batches whatever
 * the input size.
 *
 * Thread note: one load runs on the calling thread (plus its own workers for
 * jobs > 1); callbacks are called on the calling thread.
 */
#ifndef PGETL_LOAD_H
#define PGETL_LOAD_H

#include "pgetl/export.h"
#include "pgetl/error.h"
#include "pgetl/pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pgetl_load_format {
    PGETL_LOAD_CSV = 0, /* RFC 4180-style CSV (COPY FORMAT csv)                 */
    PGETL_LOAD_TSV,     /* CSV rules with a tab delimiter                        */
    PGETL_LOAD_TEXT     /* PostgreSQL text format: tab, backslash escapes, \N     */
} pgetl_load_format;

typedef enum pgetl_load_convert {
    PGETL_CONVERT_AUTO = 0, /* binary conversion when every column allows it       */
    PGETL_CONVERT_NEVER,    /* always send the raw bytes                             */
    PGETL_CONVERT_ALWAYS    /* convert where possible even if not measured faster    */
} pgetl_load_convert;

/* Progress, reported at most every progress_interval_s and once at the end. */
typedef struct pgetl_load_progress {
    const char *file;        /* current input ("-" for stdin)                        */
    int64_t bytes_read;      /* input bytes consumed (compressed bytes if compressed) */
    int64_t bytes_total;     /* input size when known (regular file), else -1        */
    int64_t rows_read;
    int64_t rows_loaded;
    int64_t rows_rejected;
    double seconds;
    bool done;
} pgetl_load_progress;

typedef void (*pgetl_load_progress_fn)(void *user, const pgetl_load_progress *progress);

/*
 * Options. Fill with pgetl_load_options_init(), then set fields. Strings are
 * borrowed for the duration of the call.
 *
 * Header and columns (checked before any data moves):
 * - header true, columns NULL: the first line names the target columns. Each
 *   header name (after CSV/text unquoting) matches a column by PostgreSQL
 *   identifier rules: a name equal to a stored column name matches it
 *   exactly; otherwise a name that is not exactly a stored name matches the
 *   stored name equal to its ASCII lower-case fold (so `Amount` and `AMOUNT`
 *   find column amount, as an unquoted identifier would, while a column
 *   created as "Amount" is found only by `Amount`). No whitespace is trimmed.
 *   Unknown, duplicate (after folding) or generated-column names fail with
 *   PGETL_ESCHEMA listing every offending name. Table columns absent from
 *   the header get their defaults.
 * - columns given: those exact (stored, not folded) names in file order; a
 *   header line, if any, is skipped unchecked. Unknown ones: PGETL_ESCHEMA.
 * - header false, columns NULL: every non-generated table column in order.
 * - A missing table is PGETL_ENOTFOUND.
 * Every file is opened and its header checked before the first row of any
 * file is sent, except standard input ("-"), which cannot be read twice: its
 * header is checked when its turn comes (a mismatch still rolls back all).
 *
 * Rows: a row with more or fewer fields than columns is bad input, found by
 * the client ("expected 3 fields, found 2"; rejected with SQLSTATE 22P04
 * when max_errors > 0). In CSV a line holding only \. (COPY's end-of-data
 * marker) is loaded as the value \.; in text format it may only end the
 * file. A row longer than PGETL_LOAD_MAX_ROW is bad input.
 *
 * Line numbers in messages and reject logs are 1-based physical lines of the
 * (decompressed) input where the row starts; the header is line 1.
 */
typedef struct pgetl_load_options {
    const char *table;            /* "t" or "schema.t" (identifier rules)                 */
    const char *const *columns;   /* target columns in file order; NULL: see above        */
    int ncolumns;
    pgetl_load_format format;     /* default CSV                                          */
    bool header;                  /* first line is a header; default true                 */
    char delimiter;               /* 0: format default (',' or '\t')                      */
    char quote;                   /* 0: '"' (CSV/TSV only)                                */
    char escape;                  /* 0: same as quote (CSV/TSV only)                      */
    const char *null_string;      /* NULL: format default ("" unquoted / \N)              */
    const char *encoding;         /* input encoding, NULL: UTF8 (a leading BOM is
                                     stripped); another name becomes the transaction's
                                     client_encoding (SET LOCAL, so the server converts)
                                     and turns binary conversion off                     */
    bool truncate;                /* TRUNCATE in the same transaction first (readers
                                     never see the table empty); the COPYs then use
                                     FREEZE where the server allows it (a plain table,
                                     jobs 1, max_errors 0), else plain COPY              */
    int64_t batch_rows;           /* rows per COPY batch; default 100000. A batch is
                                     also cut at PGETL_LOAD_BATCH_BYTES                  */
    int jobs;                     /* parallel connections; default 1 (see atomicity)      */
    int64_t max_errors;           /* 0 (default): first bad row fails the load; N > 0:
                                     bad rows are isolated and rejected, the load commits
                                     if at most N were rejected, else PGETL_EREJECTS.
                                     With conversion, rows pgetl cannot convert exactly
                                     (or with NULL for a NOT NULL column) are sent as the
                                     input has them, after the rest of their batch, so
                                     the server decides each: same values stored, only
                                     their position in the table's physical order moves.
                                     Once a CHECK constraint has refused a converted row,
                                     each later converted batch is screened first: one
                                     query asks the server which of its rows a CHECK
                                     would refuse, and those go the same way (the
                                     screen only routes rows; if its query fails,
                                     screening stops). Rejects are written in input
                                     order (with jobs > 1, each batch's in order, but
                                     batches from different connections interleave)       */
    const char *reject_path;      /* rejected rows verbatim (original bytes); their
                                     file, line, SQLSTATE and message go to
                                     "<reject_path>.log". Both are created (truncated)
                                     when the first row is rejected and kept even when
                                     the load rolls back. NULL: rejects are only counted
                                     and logged at WARN                                   */
    bool dry_run;                 /* check table and headers, scan every file fully
                                     (quotes, field counts); send no rows (rows_loaded
                                     stays 0, committed false)                            */
    pgetl_load_convert convert;   /* default AUTO. Binary conversion needs UTF-8 input
                                     and every file column of type int2/4/8, float4/8,
                                     bool, text, varchar, date, timestamp or timestamptz;
                                     AUTO also needs one non-text column (text gains
                                     nothing), ALWAYS does not. A batch holding any value
                                     outside the strict grammars goes as CSV instead      */
    pgetl_load_progress_fn progress;
    void *progress_user;
    double progress_interval_s;   /* default 0.2                                          */
} pgetl_load_options;

/* Input is read in blocks of this size (large reads; chosen in bench/). */
#define PGETL_LOAD_BLOCK ((size_t)1 << 20)
/*
 * A batch is cut at batch_rows rows or once it holds this many bytes. Up to
 * three batches are alive at once on the binary path (one being parsed, one
 * converted, one sending), each with its raw and converted bytes: 16 MiB gave
 * an 80 MiB peak RSS on the 1M-row events file, 4 MiB gives 45 MiB, with no
 * measurable cost in time (alternating runs, bench/README.md "pgetl load").
 */
#define PGETL_LOAD_BATCH_BYTES ((size_t)4 << 20)
/* A single row longer than this is bad input (PGETL_EDATA; often a stray quote). */
#define PGETL_LOAD_MAX_ROW ((size_t)64 << 20)

/* Fills *opts with the defaults above (table NULL: the caller must set it). */
PGETL_API void pgetl_load_options_init(pgetl_load_options *opts);

typedef struct pgetl_load_stats {
    int64_t rows_read;            /* data rows read (header excluded)                      */
    int64_t rows_loaded;          /* rows the server accepted (see committed)            */
    int64_t rows_rejected;
    int64_t bytes_read;           /* input bytes (compressed size when compressed)       */
    int64_t batches;
    int64_t batches_binary;       /* batches sent converted to binary COPY */
    double seconds;
    bool committed;
    /*
     * The commit itself failed (a connection lost during COMMIT or COMMIT
     * PREPARED): whether, or how much of, the load stayed is not known to
     * pgetl; the error says what to check. committed is false then.
     */
    bool commit_unknown;
    /* Rows the CHECK screen (see max_errors) sent for the server to decide alone. */
    int64_t rows_screened;
} pgetl_load_stats;

/*
 * Loads `npaths` files ("-" is standard input) into opts->table using
 * connections from `pool` (one, or opts->jobs). Inputs may be gzip or zstd
 * compressed (detected by their first bytes, not their names); a UTF-8 BOM
 * at the start of a file is stripped; LF and CRLF line ends are accepted.
 *
 * Transactions. The whole load (all files) is one unit and pgetl_load_files
 * ends it itself (this is its contract; it never touches a transaction the
 * caller has open, because it uses its own pooled connections):
 * - jobs 1: one transaction; TRUNCATE (if asked) and every COPY run in it;
 *   it commits only when every file loaded and rejects <= max_errors, else
 *   it rolls back and the table is as it was.
 * - jobs N > 1: one reader deals whole batches (cut at row boundaries)
 *   round-robin to N connections, each in its own transaction. Nobody
 *   commits until every connection has finished its COPY without error;
 *   any failure rolls back all N. When the server has
 *   max_prepared_transactions >= N, each transaction is PREPAREd (gid
 *   "pgetl_load_<pid>_<start>_<i>") and then all are committed with COMMIT
 *   PREPARED. Once all are prepared, the INFO line "load_prepared" names
 *   every gid: the load is decided and must commit. A transaction whose own
 *   connection is lost or stalls during PREPARE or COMMIT PREPARED is
 *   rolled back or committed from another of the load's connections. Only
 *   when none is left (the server went away) or the client dies between
 *   the phases do prepared transactions stay behind, never a partial commit
 *   that cannot be completed: the error (or the log) names each gid, and
 *   docs/RELIABILITY.md ("Two-phase commit") says what to run. Otherwise
 *   the N COMMITs run back to back; a connection lost between them can
 *   leave a part committed, and the error then says so. truncate with
 *   jobs > 1 runs with one connection (a TRUNCATE lock would block the
 *   other connections); a WARN line says so.
 *
 * Stats: *stats_out (may be NULL) is filled on success and on failure.
 * rows_read = rows_loaded + rows_rejected after every load that reached the
 * end of its input (PGETL_OK and PGETL_EREJECTS); `committed` says whether
 * the loaded rows stayed.
 * Returns PGETL_OK (possibly with rejected rows), PGETL_EREJECTS (too many,
 * rolled back), PGETL_EDATA (bad input, "<file> line <n>: ..."),
 * PGETL_ESCHEMA (header/columns do not match the table), PGETL_ENOTFOUND
 * (table or file), PGETL_EIO, PGETL_EINVAL, PGETL_ESERVER (with the file and
 * line of the row the server refused), PGETL_ECONNLOST.
 */
PGETL_API pgetl_code pgetl_load_files(pgetl_pool *pool, const char *const *paths, int npaths,
                                      const pgetl_load_options *opts,
                                      pgetl_load_stats *stats_out, pgetl_error *err);

/* ------------------------------------------------------------------------ */
/* Export                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum pgetl_export_format {
    PGETL_EXPORT_CSV = 0,
    PGETL_EXPORT_TSV,
    PGETL_EXPORT_BINARY
} pgetl_export_format;

typedef enum pgetl_compression {
    PGETL_COMPRESS_NONE = 0,
    PGETL_COMPRESS_GZIP,
    PGETL_COMPRESS_ZSTD
} pgetl_compression;

typedef struct pgetl_export_options {
    const char *query;            /* exactly one of query / table                  */
    const char *table;
    pgetl_export_format format;
    bool header;                  /* CSV/TSV only                                   */
    pgetl_compression compression;
    pgetl_load_progress_fn progress; /* bytes_read = bytes received                 */
    void *progress_user;
    double progress_interval_s;
} pgetl_export_options;

PGETL_API void pgetl_export_options_init(pgetl_export_options *opts);

/*
 * Streams `COPY ... TO STDOUT` into file descriptor `fd` (not closed),
 * compressing if asked. Memory is bounded by libpq's row buffer and one
 * compression buffer. *rows_out / *bytes_out (may be NULL) get the counts.
 */
PGETL_API pgetl_code pgetl_export_fd(pgetl_conn *conn, const pgetl_export_options *opts, int fd,
                                     int64_t *rows_out, int64_t *bytes_out, pgetl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_LOAD_H */
