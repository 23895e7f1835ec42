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

typedef struct pgetl_load_options {
    const char *table;            /* "t" or "schema.t" (identifier rules)                 */
    const char *const *columns;   /* target columns in file order; NULL: from the header */
    int ncolumns;                 /* (or all table columns when there is no header)       */
    pgetl_load_format format;     /* default CSV                                          */
    bool header;                  /* first line is a header; default true                 */
    char delimiter;               /* 0: format default (',' or '\t')                      */
    char quote;                   /* 0: '"' (CSV/TSV only)                                */
    char escape;                  /* 0: same as quote (CSV/TSV only)                      */
    const char *null_string;      /* NULL: format default ("" unquoted / \N)              */
    const char *encoding;         /* input encoding, NULL: UTF8                           */
    bool truncate;                /* TRUNCATE in the same transaction first               */
    int64_t batch_rows;           /* rows per COPY batch; default 100000                  */
    int jobs;                     /* parallel connections; default 1                      */
    int64_t max_errors;           /* 0 (default): first bad row fails the load            */
    const char *reject_path;      /* rejected rows verbatim, with a .log beside it        */
    bool dry_run;                 /* validate files and table; load nothing               */
    pgetl_load_convert convert;   /* default AUTO                                         */
    pgetl_load_progress_fn progress;
    void *progress_user;
    double progress_interval_s;   /* default 0.2                                          */
} pgetl_load_options;

PGETL_API void pgetl_load_options_init(pgetl_load_options *opts);

typedef struct pgetl_load_stats {
    int64_t rows_read;
    int64_t rows_loaded;
    int64_t rows_rejected;
    int64_t bytes_read;
    int64_t batches;
    int64_t batches_binary;       /* batches sent converted to binary COPY */
    double seconds;
    bool committed;
} pgetl_load_stats;

/*
 * Loads `npaths` files ("-" is standard input) into opts->table using
 * connections from `pool` (one, or opts->jobs). The whole load is one unit:
 * it commits only when every file loaded and rejects <= max_errors, else it
 * rolls back everything (see docs for the exact atomicity of jobs > 1).
 * Returns PGETL_OK (possibly with rejected rows), PGETL_EREJECTS (too many,
 * rolled back), PGETL_EDATA (bad input, with file and line), PGETL_ESCHEMA
 * (header/columns do not match the table), PGETL_ENOTFOUND, PGETL_EIO,
 * PGETL_ESERVER, PGETL_ECONNLOST.
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
