/*
 * Private load layer: the pieces pgetl_load_files() is built from, each
 * free of database I/O except load.c and workers.c.
 *
 *   reader.c    bytes from a file / stdin, decompressed (gzip, zstd by magic)
 *   csv_scan.c  quote-aware row boundaries and field splitting over buffers
 *   header.c    header names -> table columns (identifier rules)
 *   reject.c    reject file + reject log
 *   load.c      the driver: checks, transactions, batches, COPY
 */
#ifndef PGETL_SRC_LOAD_INT_H
#define PGETL_SRC_LOAD_INT_H

#include "copy/copy_int.h"

#include <stdio.h>

/* ---- reader.c ------------------------------------------------------------ */

typedef enum pgetl_reader_compression {
    PGETL_READER_PLAIN = 0,
    PGETL_READER_GZIP,
    PGETL_READER_ZSTD
} pgetl_reader_compression;

typedef struct pgetl_reader pgetl_reader;

/*
 * Opens `path` ("-": standard input, not closed at the end). The
 * compression is detected from the first bytes. PGETL_ENOTFOUND when the
 * file does not exist, PGETL_EIO for a directory or another open/read
 * failure (with strerror text), PGETL_ENOMEM. Free with pgetl__reader_close.
 */
pgetl_code pgetl__reader_open(const char *path, pgetl_reader **out, pgetl_error *err);

/* Same on a descriptor the caller owns (not closed). `name` is used in messages. */
pgetl_code pgetl__reader_open_fd(int fd, const char *name, pgetl_reader **out, pgetl_error *err);

/*
 * Reads up to `cap` decompressed bytes into dst. *n_out = 0 means end of
 * input. A compressed stream that ends early or is corrupt is PGETL_EDATA
 * ("x.csv.gz: truncated gzip data").
 */
pgetl_code pgetl__reader_read(pgetl_reader *r, char *dst, size_t cap, size_t *n_out,
                              pgetl_error *err);

int64_t pgetl__reader_bytes_in(const pgetl_reader *r); /* raw bytes consumed so far     */
int64_t pgetl__reader_size(const pgetl_reader *r);     /* raw size when known, else -1  */
pgetl_reader_compression pgetl__reader_compression(const pgetl_reader *r);
void pgetl__reader_close(pgetl_reader *r); /* accepts NULL */

/* ---- csv_scan.c ---------------------------------------------------------- */

/* The input dialect, as COPY understands it. */
typedef struct pgetl_csv_dialect {
    bool text;   /* PostgreSQL text format (backslash escapes) instead of CSV */
    char delim;
    char quote;  /* CSV only */
    char escape; /* CSV only: inside quotes, escape+quote / escape+escape is literal */
} pgetl_csv_dialect;

/*
 * Scanner state for the row being scanned. Zero it (pgetl__csv_scan_reset)
 * before each row. The state lets a scan resume after more bytes arrive
 * without rescanning what was already seen.
 */
typedef struct pgetl_csv_scan {
    size_t pos;       /* bytes of the row already scanned                    */
    int64_t nfields;  /* delimiters seen outside quotes, plus one            */
    int64_t nlines;   /* newlines inside the row (quoted / escaped)          */
    bool in_quote;
} pgetl_csv_scan;

static inline void pgetl__csv_scan_reset(pgetl_csv_scan *st) {
    st->pos = 0;
    st->nfields = 1;
    st->nlines = 0;
    st->in_quote = false;
}

/*
 * Looks for the end of the row starting at p[0], given n bytes. Returns true
 * when the row ends within them: *row_len then includes the '\n'. Returns
 * false when more bytes are needed (state kept: call again with the same
 * row start and a larger n). Row ends follow COPY's own reader: CSV quotes
 * toggle anywhere in a field, a newline inside quotes is data; in text
 * format a backslash escapes the next byte, newline included.
 */
bool pgetl__csv_scan_row(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p, size_t n,
                         size_t *row_len);

/* One field of a split row: bytes at out->data + off. */
typedef struct pgetl_csv_field {
    size_t off;
    size_t len;
    bool null;   /* matched the NULL string (unquoted)      */
    bool quoted; /* CSV: the field held a quote character    */
} pgetl_csv_field;

/*
 * Splits one row (without its line end: a trailing "\n" or "\r\n" is
 * ignored) into fields the way COPY does, unquoting / unescaping each into
 * `out` (cleared first). `null_str` (null_len bytes) is the NULL marker
 * compared against the raw field. Up to `max` fields are stored;
 * *nfields_out is the true count. PGETL_EDATA for an unterminated quote
 * (CSV). PGETL_ENOMEM.
 */
pgetl_code pgetl__csv_split(const pgetl_csv_dialect *d, const char *null_str, size_t null_len,
                            const char *row, size_t len, pgetl_buf *out, pgetl_csv_field *fields,
                            int max, int *nfields_out, pgetl_error *err);

/* ---- header.c ------------------------------------------------------------ */

/*
 * Matches header names (n of them, names[i] of lens[i] bytes) to table
 * columns by the rules in load.h. Fills colidx_out[i]. PGETL_ESCHEMA listing
 * every unknown, duplicate and generated name.
 */
pgetl_code pgetl__header_match(const pgetl_table_info *info, const char *const *names,
                               const size_t *lens, int n, int *colidx_out, pgetl_error *err);

/* ---- reject.c ------------------------------------------------------------ */

typedef struct pgetl_rejects pgetl_rejects;

/* Creates the reject sink (path may be NULL: count and WARN-log only). */
pgetl_code pgetl__rejects_create(const char *path, pgetl_rejects **out, pgetl_error *err);

/*
 * Records one rejected row: `data` verbatim (a '\n' is added when it does
 * not end with one) to the reject file, and "file:line: [SQLSTATE] message"
 * to the log. Thread-safe. Files are created on the first call.
 */
pgetl_code pgetl__rejects_add(pgetl_rejects *rj, const char *file, int64_t line,
                              const char *sqlstate, const char *message, const void *data,
                              size_t len, pgetl_error *err);

int64_t pgetl__rejects_count(const pgetl_rejects *rj);
/* Flushes and closes the files. Accepts NULL. */
pgetl_code pgetl__rejects_destroy(pgetl_rejects *rj, pgetl_error *err);

#endif /* PGETL_SRC_LOAD_INT_H */
