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

#include <pthread.h>
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
    bool text; /* PostgreSQL text format (backslash escapes) instead of CSV */
    char delim;
    char quote;  /* CSV only */
    char escape; /* CSV only: inside quotes, escape+quote / escape+escape is literal */
} pgetl_csv_dialect;

/* Block scanner (csv_scan.c): bytes already classified, one bit each. */
typedef struct pgetl_csv_masks {
    uint64_t ends;   /* newlines outside quotes: row ends */
    uint64_t delims; /* delimiters outside quotes         */
    uint64_t qnl;    /* newlines inside quotes            */
    uint64_t qcr;    /* carriage returns inside quotes    */
} pgetl_csv_masks;

/*
 * Scanner state for the row being scanned. pgetl__csv_scan_reset before
 * the first row of a stream, pgetl__csv_scan_next after each row. The
 * state lets a scan resume after more bytes arrive without rescanning what
 * was already seen.
 */
typedef struct pgetl_csv_scan {
    size_t pos;      /* bytes of the row already scanned                    */
    int64_t nfields; /* delimiters seen outside quotes, plus one            */
    int64_t nlines;  /* newlines inside the row (quoted / escaped)          */
    int64_t ncr;     /* CSV: carriage returns inside quotes                 */
    bool in_quote;
    /*
     * Block scanner: what it already classified past the row it returned
     * (bit 0 = the next row's first byte), so that row starts without
     * reloading them. Valid for the bytes that follow the row in the same
     * stream, wherever the caller keeps them.
     */
    pgetl_csv_masks ahead;
    unsigned ahead_len;
    bool ahead_state; /* after them: inside quotes (CSV), escape pending (text) */
} pgetl_csv_scan;

/* Starts the row that follows the one just scanned, in the same stream. */
static inline void pgetl__csv_scan_next(pgetl_csv_scan *st) {
    st->pos = 0;
    st->nfields = 1;
    st->nlines = 0;
    st->ncr = 0;
    st->in_quote = false;
}

/* Starts a new stream. */
static inline void pgetl__csv_scan_reset(pgetl_csv_scan *st) {
    pgetl__csv_scan_next(st);
    st->ahead_len = 0;
}

/*
 * Looks for the end of the row starting at p[0], given n bytes. Returns true
 * when the row ends within them: *row_len then includes the '\n'. Returns
 * false when more bytes are needed (state kept: call again with the same
 * row start and a larger n). After a row, call pgetl__csv_scan_next and
 * scan from the byte after it with at least the bytes already given (they
 * may have moved in memory). Row ends follow COPY's own reader: CSV quotes
 * toggle anywhere in a field, a newline inside quotes is data; in text
 * format a backslash escapes the next byte, newline included.
 */
bool pgetl__csv_scan_row(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p, size_t n,
                         size_t *row_len);

/*
 * The same with the portable scanner only. pgetl__csv_scan_row uses a
 * block scanner where the CPU has one (SSE2: text format, and CSV whose
 * escape is the quote); fuzz_csv_scan and bench_csv_scan compare the two.
 */
bool pgetl__csv_scan_row_generic(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p,
                                 size_t n, size_t *row_len);

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

/* ---- batch.c: batches cut at row boundaries, and sending one ------------- */

typedef struct pgetl_load_screen pgetl_load_screen;

/* CHECK pre-screening's state for the load (screen.c), under pgetl_load_ctx.mu. */
typedef enum pgetl_screen_state {
    PGETL_SCREEN_IDLE = 0, /* no binary row refused by a CHECK yet               */
    PGETL_SCREEN_WANTED,   /* one was: the next binary batch plans the screen     */
    PGETL_SCREEN_PLANNING, /* a sender is reading the CHECKs                      */
    PGETL_SCREEN_ON,       /* binary batches are screened                         */
    PGETL_SCREEN_OFF       /* no usable CHECK, or the screen query failed: never  */
} pgetl_screen_state;

/* What every part of one load shares (read-only while rows flow, but counters). */
typedef struct pgetl_load_ctx {
    const pgetl_load_options *opts;
    pgetl_csv_dialect dialect;
    const char *null_str;
    size_t null_len;
    bool utf8; /* input is UTF-8: BOM stripped, conversion allowed  */
    /*
     * raw: the dialect is COPY's default for copy_format (CSV , " " NULL "" or
     * text TAB \N), so row bytes go to the server as they are. Otherwise each
     * row is split and re-encoded in COPY's text format (the writer states no
     * DELIMITER/QUOTE/NULL options; text keeps one row per line).
     */
    bool raw;
    pgetl_copy_format copy_format;
    /* COPY FREEZE: the table was truncated in this transaction, one connection, no savepoints. */
    bool freeze;
    const pgetl_table_info *info;
    int64_t batch_rows;
    int64_t max_errors;
    pgetl_rejects *rejects;
    /* Guarded by mu: rows the server accepted, set by senders on any thread. */
    pthread_mutex_t mu;
    int64_t rows_loaded;
    int64_t batches_sent;
    int64_t batches_binary;
    int64_t rows_screened;
    pgetl__iso_est iso; /* isolation's estimate of rows between rejects, carried across batches */
    pgetl_screen_state screen_state;
    pgetl_load_screen *screen;
} pgetl_load_ctx;

/* A strict parser for one column (convert_int.h), or NULL for text columns. */
typedef int (*pgetl_conv_fn)(const char *p, size_t n, unsigned char *dst);

/* One input file's resolved target columns. */
typedef struct pgetl_load_file {
    const char *path;
    int *colidx;
    int ncols;
    /* convert.c: one parser per column when every column has one, else NULL. */
    pgetl_conv_fn *conv;
    bool convert;
} pgetl_load_file;

/* A batch: whole rows, each with the input line it starts on. */
typedef struct pgetl_load_batch {
    pgetl_buf data;
    size_t *row_end; /* row i is data[i ? row_end[i-1] : 0, row_end[i]) */
    int64_t *row_line;
    int64_t nrows;
    int64_t cap;
    bool multiline; /* some row holds a line break inside quotes (CSV)        */
    bool has_eod;   /* some row is COPY's end-of-data marker \. (CSV)         */
    /* CSV: the rows holding line breaks inside quotes, for COPY's line count. */
    pgetl__row_breaks *breaks;
    int64_t nbreaks, breaks_cap;
    /* Binary COPY tuples for the rows, when convert.c could convert them (all but suspects). */
    bool binary;
    pgetl_buf bin;
    size_t *bin_end; /* tuple i is bin[i ? bin_end[i-1] : 0, bin_end[i]) */
    /*
     * With max_errors: rows convert.c could not convert exactly, or that give
     * NULL to a NOT NULL column. Their tuples are empty; batch.c sends them
     * in their own COPY in the input's format after the binary rows.
     */
    int64_t *suspect;
    int64_t nsuspect;
    int64_t *send_map; /* batch.c: batch row of each row of the COPY being sent */
    pgetl_buf held;    /* batch.c: rejects waiting to be written in input order */
    pgetl_buf *screen; /* screen.c: one array per field of the file, nscreen of them */
    int nscreen;
    const pgetl_load_file *file;
    int64_t index;     /* 0-based among the whole load's batches */
    pgetl_buf scratch; /* re-encoding and splitting */
    pgetl_csv_field *fields;
    int nfields_cap;
} pgetl_load_batch;

pgetl_code pgetl__batch_init(pgetl_load_batch *b, int64_t cap_rows, pgetl_error *err);
void pgetl__batch_free(pgetl_load_batch *b);

/* An open input: reader plus the partial row carried between batches. */
typedef struct pgetl_load_src {
    pgetl_reader *reader;
    const pgetl_load_file *file;
    pgetl_buf carry;
    pgetl_csv_scan st;
    int64_t line;                 /* input line where the next row starts (1-based)        */
    int64_t rows_read;            /* data rows scanned                                      */
    int64_t rows_rejected_client; /* rows set aside here (wrong field count)     */
    bool eof;
    bool done; /* no more rows                                           */
    bool crlf; /* the last row (or header) ended in CRLF                 */
} pgetl_load_src;

/*
 * Opens the file, strips a UTF-8 BOM, and when opts->header reads the header
 * row: its names (unquoted) are split into `names` (NULL to skip the header
 * unchecked). An empty file has no header: *has_header_out false.
 */
pgetl_code pgetl__src_open(const pgetl_load_ctx *ctx, const pgetl_load_file *file,
                           pgetl_load_src *src, pgetl_buf *names, pgetl_csv_field **fields_out,
                           int *nnames_out, bool *has_header_out, pgetl_error *err);
void pgetl__src_close(pgetl_load_src *src);

/*
 * Fills `b` with the next rows of `src` (cleared first) up to batch_rows
 * rows or PGETL_LOAD_BATCH_BYTES. Rows with the wrong number of fields are
 * rejected here when max_errors > 0, else PGETL_EDATA. b->nrows == 0 and
 * src->done mean the file is finished.
 */
pgetl_code pgetl__batch_fill(pgetl_load_ctx *ctx, pgetl_load_src *src, pgetl_load_batch *b,
                             pgetl_error *err);

/* Is this row COPY's end-of-data marker "\." (which would end the COPY early)? */
static inline bool pgetl__is_eod_marker(const char *row, size_t len) {
    return (len == 3 || (len == 4 && row[2] == '\r')) && row[0] == '\\' && row[1] == '.';
}

/*
 * CopyData message size of the loader's COPYs. The server parses a message
 * only once all of it has arrived (pq_getmessage), so a message larger
 * than the socket buffer leaves it waiting on the client mid-message: with
 * 1 MiB messages a raw load's backend sat idle ~0.13 s of a ~3 s load,
 * with 64 KiB ~0.06 s (bench/README.md, "pgetl load", fifth day).
 */
#define PGETL_LOAD_COPY_MESSAGE ((size_t)64 << 10)

/*
 * Sends one batch as one COPY on `conn` (inside its open transaction).
 * Server-refused rows are rejected when max_errors > 0. Errors carry
 * "<file> line <n>: ". *loaded_out gets the rows stored.
 */
pgetl_code pgetl__batch_send(pgetl_load_ctx *ctx, pgetl_conn *conn, pgetl_load_batch *b,
                             int64_t max_rejects, int64_t *loaded_out, pgetl_error *err);

/* ---- convert.c: the binary path ----------------------------------------- */

/*
 * Decides whether file f's columns can all be parsed exactly on the client
 * (int2/4/8, float4/8, bool, text, varchar, date, timestamp, timestamptz)
 * and sets f->convert / f->conv. `want` is opts->convert; AUTO converts only
 * when some column is not text (text gains nothing from binary).
 */
pgetl_code pgetl__convert_plan(const pgetl_load_ctx *ctx, pgetl_load_file *f,
                               pgetl_load_convert want, pgetl_error *err);

/*
 * Converts every row of b into binary tuples (b->bin). Sets b->binary when
 * all rows converted; any value outside the strict grammars (or any text
 * that is not valid UTF-8 without NUL) leaves b->binary false, and the
 * batch goes as CSV. With max_errors, where bad rows are expected, such
 * rows (and NULLs for NOT NULL columns) become suspects instead, up to
 * 1/PGETL_LOAD_SUSPECT_SHARE of the batch, and the rest still goes binary.
 * PGETL_ENOMEM only.
 */
#define PGETL_LOAD_SUSPECT_SHARE 16
pgetl_code pgetl__convert_batch(const pgetl_load_ctx *ctx, pgetl_load_batch *b, pgetl_error *err);

/* ---- screen.c: CHECK pre-screen of binary batches (--max-errors) ---------- */

/*
 * Reads the table's CHECK constraints that screening can evaluate (every
 * column they read has a type binary conversion produces). *out has none
 * when there are none. Errors are the catalog query's.
 */
pgetl_code pgetl__screen_plan(pgetl_conn *conn, const pgetl_table_info *info,
                              pgetl_load_screen **out, pgetl_error *err);
int pgetl__screen_count(const pgetl_load_screen *s);
void pgetl__screen_free(pgetl_load_screen *s); /* accepts NULL */

/*
 * Asks the server which binary rows of b some CHECK (of those reading only
 * b's file's columns) would refuse, and adds them to b->suspect (ascending)
 * so they go in the suspects' COPY (*flagged: how many). A failure of the query itself (a CHECK
 * that raises on some value) is undone by its own savepoint, logged, and
 * sets *failed: screening should stop; only connection-level errors are
 * returned.
 */
pgetl_code pgetl__screen_batch(const pgetl_load_screen *s, const pgetl_table_info *info,
                               pgetl_conn *conn, pgetl_load_batch *b, int64_t *flagged,
                               bool *failed, pgetl_error *err);

/* ---- workers.c: jobs > 1 -------------------------------------------------- */

typedef struct pgetl_load_workers pgetl_load_workers;

/* Starts n threads, each with a connection in an open transaction. */
pgetl_code pgetl__workers_start(pgetl_load_ctx *ctx, pgetl_conn **conns, int n,
                                pgetl_load_workers **out, pgetl_error *err);
/* A free batch to fill (waits for one). NULL when a worker failed. */
pgetl_load_batch *pgetl__workers_get_free(pgetl_load_workers *w);
/* Hands a filled batch to the next worker round-robin. */
void pgetl__workers_submit(pgetl_load_workers *w, pgetl_load_batch *b);
/* Returns an unused batch to the free list. */
void pgetl__workers_put_free(pgetl_load_workers *w, pgetl_load_batch *b);
/* Waits for every worker to finish its queue; the first failure, if any. */
pgetl_code pgetl__workers_finish(pgetl_load_workers *w, pgetl_error *err);
void pgetl__workers_destroy(pgetl_load_workers *w);

#endif /* PGETL_SRC_LOAD_INT_H */
