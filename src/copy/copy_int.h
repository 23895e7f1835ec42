/*
 * Private COPY-in writer interface, for encoders that live outside copy_in.c
 * (Arrow ingest, the CSV loader). copy_in.c owns struct pgetl_copy.
 *
 * A caller encodes each row straight into the writer's buffer:
 *
 *     pgetl_buf *b = pgetl__copy_row_begin(copy, estimated_bytes, &err);
 *     ... append the row's bytes to b (binary tuple, or a text/CSV line) ...
 *     rc = pgetl__copy_row_end(copy, &err);
 *
 * The writer owns framing (binary header and trailer), chunking into
 * PQputCopyData calls, batch accounting, and bad-row isolation: in isolation
 * mode (max_rejects >= 0) it keeps each batch's rows with their boundaries
 * until the batch is accepted, loads each batch under a SAVEPOINT in COPYs
 * of a window of rows, and on a server error sets the offending row aside
 * (found from the error's "COPY t, line N" context, else by bisection),
 * handing it to the reject callback, and resends only the rows around it
 * (isolate.c). Row boundaries are what make this possible; that is
 * why rows go through row_begin/row_end rather than raw appends.
 */
#ifndef PGETL_SRC_COPY_INT_H
#define PGETL_SRC_COPY_INT_H

#include "sql/sql.h"

/*
 * Starts a COPY into an already looked-up table. colidx[i] indexes
 * info->columns (ncols of them, in the order the rows will carry them).
 * opts->columns/ncolumns/types are ignored here (the caller resolved them);
 * the format, batch, chunk and reject fields apply. `info` must outlive the
 * session.
 */
pgetl_code pgetl__copy_begin_resolved(pgetl_conn *conn, const pgetl_table_info *info,
                                      const int *colidx, int ncols, const pgetl_copy_options *opts,
                                      pgetl_copy **copy_out, pgetl_error *err);

/* A row whose quoted values hold line breaks, as the caller's scanner counted them. */
typedef struct pgetl__row_breaks {
    int64_t row; /* index among the rows of the put_rows call */
    int32_t nl;  /* '\n' inside quotes (a row is at most PGETL_LOAD_MAX_ROW bytes) */
    int32_t cr;  /* '\r' inside quotes */
} pgetl__row_breaks;

/*
 * Sends nrows whole rows already in the session's text or CSV format
 * (row i ends at data + row_end[i]) straight from the caller's memory:
 * no copy into the chunk buffer, no per-row call. Streaming sessions only
 * (no isolation); a row that is COPY's end-of-data marker must not be
 * among them. CSV: `breaks` lists, in row order, every row holding a line
 * break inside quotes (none: nbreaks 0), so the server's line numbers map
 * back to rows (lines.c) without a pass over the bytes.
 */
pgetl_code pgetl__copy_put_rows(pgetl_copy *copy, const char *data, const size_t *row_end,
                                int64_t nrows, const pgetl__row_breaks *breaks, int64_t nbreaks,
                                pgetl_error *err);

/* Returns the buffer to append one row to, with `reserve` bytes reserved. */
pgetl_buf *pgetl__copy_row_begin(pgetl_copy *copy, size_t reserve, pgetl_error *err);

/* Marks the end of the row appended since row_begin; may flush or end a batch. */
pgetl_code pgetl__copy_row_end(pgetl_copy *copy, pgetl_error *err);

/*
 * Sets the caller's batch number reported in pgetl_reject.batch_index, and
 * resets batch_row numbering (Arrow ingest calls it per record batch).
 */
void pgetl__copy_set_source_batch(pgetl_copy *copy, int64_t batch_index);

/*
 * Bad-row isolation's estimate, so a caller that opens one session per
 * batch can carry what earlier batches showed into the next instead of
 * starting each with no reject seen (whole-batch windows) or with the
 * clean run cut short (small windows again after every batch). Set before
 * the first row; read before end (which frees the session), after the
 * batch ran.
 */
typedef struct pgetl__iso_est {
    int64_t gap_avg; /* average rows between rejects, 0: none seen yet */
    int64_t run;     /* rows stored since the last reject              */
} pgetl__iso_est;
void pgetl__copy_set_iso(pgetl_copy *copy, const pgetl__iso_est *est);
void pgetl__copy_get_iso(const pgetl_copy *copy, pgetl__iso_est *est);

/* The session's table info (for encoders that need column types). */
const pgetl_table_info *pgetl__copy_table(const pgetl_copy *copy);

/*
 * Discards the bytes appended since pgetl__copy_row_begin (an encoder that
 * found a bad value calls it before reporting the error).
 */
void pgetl__copy_row_cancel(pgetl_copy *copy);

/*
 * Makes `err` the session's sticky error (the first one wins) and takes the
 * server out of COPY. Every later call but end/abort returns it. Returns its
 * code.
 */
pgetl_code pgetl__copy_fail(pgetl_copy *copy, const pgetl_error *err);

/*
 * Capacity of the writer's encode buffer: at most chunk_bytes plus 64 KiB
 * in streaming mode (unless one row is larger), one batch in isolation
 * mode. Tests use it to check memory stays bounded.
 */
size_t pgetl__copy_buffer_capacity(const pgetl_copy *copy);

#endif /* PGETL_SRC_COPY_INT_H */
