/*
 * The COPY-in writer's session struct and the helpers its files share
 * (copy_in.c: session, buffering, sending, results; isolate.c: bad-row
 * isolation; src_records.c: the records API). Other code uses copy_int.h.
 */
#ifndef PGETL_SRC_COPY_WRITER_H
#define PGETL_SRC_COPY_WRITER_H

#include "copy/copy_int.h"
#include "copy/enc.h"

/* Where writer-batch row `start` onwards came from (set by pgetl__copy_set_source_batch). */
typedef struct pgetl__src_seg {
    int64_t start;       /* first writer-batch row of the segment */
    int64_t batch_index; /* caller's batch number                 */
    int64_t row0;        /* caller's row number of `start`        */
} pgetl__src_seg;

/* Streaming CSV: after session row `row`, PostgreSQL's line count is `cum` ahead. */
typedef struct pgetl__line_mark {
    int64_t row;
    int64_t cum;
} pgetl__line_mark;

/* At most this many marks (1 MiB); past it, errors name the COPY line instead of the row. */
#define PGETL_LINE_MARKS_MAX 65536

/*
 * Isolation windows (isolate.c): a batch goes out as COPYs of at most a
 * window of rows, each kept under the savepoint once it loads. A failed
 * COPY costs the rows sent after the bad one plus the accepted ones before
 * it (resent once): about one window, so the window bounds the work per bad
 * row. Until the first reject the window is 32768 rows: on PostgreSQL 15
 * each COPY of over 1000 rows costs ~2.5 ms of slot bookkeeping
 * (isolate.c), under 4% of 32768 rows' load, while the rows a failed COPY
 * sends blind past its bad row (the error only comes back at its end) stay
 * bounded. After it, the size isolate.c's cost model picks from the rows
 * seen between rejects, between 32 rows (about what one COPY's round trip
 * costs in server time) and PGETL_ISO_MAX_WINDOW.
 */
#define PGETL_ISO_FIRST_WINDOW 32768
#define PGETL_ISO_MIN_WINDOW 32
#define PGETL_ISO_MAX_WINDOW (INT64_C(1) << 20)

/* The outcome of one COPY statement, as finish() saw it. */
typedef struct pgetl__copy_outcome {
    pgetl_code code;
    int64_t tuples;               /* rows stored (COPY n), on success      */
    int64_t line;                 /* "COPY t, line N" from CONTEXT, else 0 */
    char column[PGETL_IDENT_MAX]; /* column named by CONTEXT, else ""      */
    pgetl_error err;              /* server error, message unprefixed      */
} pgetl__copy_outcome;

struct pgetl_copy {
    pgetl_conn *conn;
    PGconn *pg;
    const pgetl_table_info *info;
    pgetl_table_info *owned_info; /* set when pgetl_copy_begin looked the table up */
    int ncols;
    int *colidx;
    pgetl__bin_col *bincols; /* records in BINARY format: one encoder per column */
    size_t *lens;            /* records: per-column value lengths, scratch       */
    pgetl_copy_format format;
    size_t chunk_bytes;
    int64_t batch_rows;
    int64_t max_rejects;
    pgetl_reject_fn on_reject;
    void *reject_user;
    char *sql; /* the COPY ... FROM STDIN statement */

    /*
     * Streaming mode: encoded rows since the last PQputCopyData (at most one
     * chunk plus one row). Isolation mode: the whole current batch, rows
     * delimited by row_off[0..batch_row].
     */
    pgetl_buf buf;
    size_t row_start;
    bool in_row;
    bool in_copy; /* the server is in COPY IN for us */
    bool failed;  /* sticky: `error` holds the failure */
    pgetl_error error;

    int64_t rows;            /* rows completed in this session */
    int64_t batch_index;     /* writer batch being filled (0-based) */
    int64_t batch_row;       /* rows in it so far */
    int64_t batch_first_row; /* session row index of its row 0 */

    bool isolate;    /* max_rejects >= 0 */
    size_t *row_off; /* isolation: batch_row + 1 offsets into buf */
    int64_t *live;   /* isolation: rows still to send, scratch */
    int64_t row_cap; /* capacity of row_off - 1 and of live */

    int eol; /* streaming CSV: line ending seen by the server */
    int64_t extra_lines;
    pgetl__line_mark *lines;
    int nlines, lines_cap;
    bool lines_lost;

    bool has_source;
    int64_t source_batch;
    int64_t source_row;
    pgetl__src_seg *segs;
    int nsegs, segs_cap;

    pgetl__copy_outcome outcome; /* isolation: the latest COPY's outcome       */
    pgetl__copy_outcome held;    /* isolation: the error being worked on       */
    int64_t iso_gap;             /* isolation: rows stored since the last reject */
    int64_t iso_gap_avg;         /* isolation: average rows between rejects, 0 = none yet */
    char *iso_sql[3];            /* isolation: c->sql after SAVEPOINT, keep, undo */
    pgetl_copy_stats stats;
    int64_t t0_ns;
};

/* Sends `COPY ... FROM STDIN` and expects COPY IN (binary: sends the header too). */
pgetl_code pgetl__copy_start(pgetl_copy *copy, pgetl_error *err);

/* The same with `sql`, c->sql preceded by other statements (isolate.c's savepoints). */
pgetl_code pgetl__copy_start_sql(pgetl_copy *copy, const char *sql, pgetl_error *err);

/* PQputCopyData, counting bytes. */
pgetl_code pgetl__copy_send(pgetl_copy *copy, const char *data, size_t len, pgetl_error *err);

/* The same for bytes that stay in the caller's memory, as messages of chunk_bytes. */
pgetl_code pgetl__copy_send_chunks(pgetl_copy *copy, const char *data, size_t len,
                                   pgetl_error *err);

/*
 * Ends the COPY (binary: trailer first), reads every result and fills *out.
 * Leaves the connection out of COPY whatever happened.
 */
void pgetl__copy_finish(pgetl_copy *copy, pgetl__copy_outcome *out);

/* Is this server error about one row's data (so isolation may set the row aside)? */
bool pgetl__copy_row_error(const pgetl__copy_outcome *o);

/* Isolation mode: loads the buffered batch under a savepoint (isolate.c). */
pgetl_code pgetl__copy_run_batch(pgetl_copy *copy, pgetl_error *err);

/* The caller's (batch, row) for writer-batch row r. */
void pgetl__copy_source_of(const pgetl_copy *copy, int64_t r, int64_t *batch_out, int64_t *row_out);

/* lines.c: PostgreSQL's line count for one CSV row; *eol carries the line ending seen. */
int64_t pgetl__csv_row_lines(const char *row, size_t len, int *eol);

/* Streaming CSV: accounts for the row just ended (bytes row[0..len)). */
void pgetl__copy_track_lines(pgetl_copy *copy, const char *row, size_t len);

/*
 * Streaming CSV: accounts for the rows put_rows is about to add, from the
 * caller's list of rows with quoted line breaks; row0 (len0 bytes) is the
 * first of them, which sets the line ending when none is known yet.
 */
void pgetl__copy_mark_breaks(pgetl_copy *copy, const char *row0, size_t len0,
                             const pgetl__row_breaks *breaks, int64_t nbreaks);

/* Streaming: the 1-based session row at COPY line `line`, or 0 when unknown. */
int64_t pgetl__copy_stream_row(const pgetl_copy *copy, int64_t line);

/* Isolation: the position in live[0..n) of the row at COPY line `line`, or -1. */
int64_t pgetl__copy_line_pos(const pgetl_copy *copy, const int64_t *live, int64_t n, int64_t line);

#endif /* PGETL_SRC_COPY_WRITER_H */
