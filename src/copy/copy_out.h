/*
 * Private interface of the query-to-Arrow path (pgetl_query_arrow).
 *
 * Three parts, each testable alone:
 *   - copy_out_parse.c: an I/O-free parser of the binary COPY stream. It is
 *     handed byte chunks of any size and yields one tuple at a time as field
 *     views (pointer + length). It never sees a connection, so unit tests feed
 *     it hostile bytes.
 *   - arrow_build*.c: per-type decoders from PostgreSQL binary values (the
 *     `send` format, identical in a COPY field and in a binary PGresult) into
 *     Arrow column builders, and the export of finished batches as
 *     ArrowArray/ArrowSchema with release callbacks.
 *   - copy_out.c: runs the query and owns the stream's lifecycle.
 */
#ifndef PGETL_SRC_COPY_OUT_H
#define PGETL_SRC_COPY_OUT_H

#include "sql/sql.h"

/* One field of a tuple: len == -1 is SQL NULL. Valid until the next parser call. */
typedef struct pgetl_field {
    const uint8_t *data;
    int32_t len;
} pgetl_field;

/* ------------------------------------------------------------------------ */
/* Binary COPY parser (copy_out_parse.c)                                     */
/* ------------------------------------------------------------------------ */

/*
 * The largest field accepted. PostgreSQL cannot produce a datum above 1 GiB
 * (MaxAllocSize), so a larger length can only be corruption; refusing it
 * early keeps a hostile length from making us buffer gigabytes first.
 */
#define PGETL_COPYOUT_MAX_FIELD 0x3FFFFFFF

typedef enum pgetl_copyout_event {
    PGETL_COPYOUT_NEED_MORE = 0, /* push the next chunk (the previous one may be freed) */
    PGETL_COPYOUT_ROW,           /* parser->fields holds one tuple                      */
    PGETL_COPYOUT_END            /* the end-of-data marker was read                     */
} pgetl_copyout_event;

typedef struct pgetl_copyout_parser {
    int state;           /* header, tuples, done (copy_out_parse.c)         */
    int nfields;         /* fields every tuple must carry                   */
    pgetl_field *fields; /* nfields views, filled for each ROW              */
    const uint8_t *view; /* bytes being parsed: a pushed chunk or pending   */
    size_t view_len;
    size_t pos;
    pgetl_buf pending; /* an incomplete item carried to the next chunk    */
    int64_t rows;      /* tuples returned so far                          */
    int64_t offset;    /* stream offset of view[0], for messages          */
} pgetl_copyout_parser;

/* Prepares a parser for tuples of `nfields` fields. PGETL_ENOMEM. */
pgetl_code pgetl__copyout_init(pgetl_copyout_parser *p, int nfields, pgetl_error *err);

/* Frees what the parser holds. Accepts a zeroed struct. */
void pgetl__copyout_reset(pgetl_copyout_parser *p);

/*
 * Hands the parser the next chunk of the stream. Call only when the parser
 * has asked for more (or before the first next()). The chunk must stay valid
 * until next() returns NEED_MORE; the parser copies only the tail of an item
 * split across chunks. Data after the end-of-data marker is PGETL_EDATA.
 */
pgetl_code pgetl__copyout_push(pgetl_copyout_parser *p, const void *data, size_t len,
                               pgetl_error *err);

/*
 * Parses the next item. On ROW, p->fields is valid until the next call. Bad
 * bytes (signature, flags, field count, negative or huge lengths, bytes after
 * the marker) are PGETL_EDATA with the stream offset in the message.
 */
pgetl_code pgetl__copyout_next(pgetl_copyout_parser *p, pgetl_copyout_event *ev_out,
                               pgetl_error *err);

/* The stream is over: PGETL_EDATA unless the marker was read and nothing is left. */
pgetl_code pgetl__copyout_finish(pgetl_copyout_parser *p, pgetl_error *err);

/* ------------------------------------------------------------------------ */
/* Arrow column builders (arrow_build*.c)                                   */
/* ------------------------------------------------------------------------ */

/* What a decoder reports. ERROR fills err; FULL means "cut the batch before this row". */
typedef enum pgetl_dec { PGETL_DEC_OK = 0, PGETL_DEC_FULL, PGETL_DEC_ERROR } pgetl_dec;

/* Buffer layouts, which decide nulls, truncation and export. */
typedef enum pgetl_layout {
    PGETL_LAYOUT_FIXED = 0, /* validity + values (width bytes each)     */
    PGETL_LAYOUT_BOOL,      /* validity + bit-packed values              */
    PGETL_LAYOUT_VAR,       /* validity + int32 offsets + data (utf8, binary) */
    PGETL_LAYOUT_LIST       /* validity + int32 offsets, one child       */
} pgetl_layout;

typedef struct pgetl_arrow_col pgetl_arrow_col;

/* Appends one non-NULL binary value of len bytes at p. */
typedef pgetl_dec (*pgetl_decode_fn)(pgetl_arrow_col *c, const uint8_t *p, int32_t len,
                                     pgetl_error *err);

/*
 * The largest int32-offset buffer (data bytes, or list elements) in one
 * batch. Arrow's utf8/binary/list use int32 offsets; the batch is cut before
 * a row that would pass this. Tests lower it to exercise the cut.
 */
#define PGETL_ARROW_VAR_LIMIT ((int64_t)INT32_MAX)

struct pgetl_arrow_col {
    pgetl_decode_fn decode; /* chosen once from the type OID             */
    pgetl_layout layout;
    int width;       /* FIXED: bytes per value                    */
    char format[24]; /* Arrow format string ("l", "tsu:UTC", ...) */
    char *name;      /* column name (owned)                       */
    uint32_t type_oid;
    int32_t typmod;
    int precision, scale; /* decimal128 columns                        */
    uint32_t elem_oid;    /* LIST: element type OID                    */
    int64_t length;
    int64_t null_count;
    int64_t var_limit;
    pgetl_buf validity;
    pgetl_buf values;       /* FIXED/BOOL values, or VAR/LIST offsets    */
    pgetl_buf data;         /* VAR bytes                                 */
    pgetl_arrow_col *child; /* LIST element builder                      */
};

/*
 * True when values of this type are decoded from binary (otherwise the query
 * is wrapped so the column arrives as its text output).
 */
bool pgetl__arrow_type_supported(uint32_t oid, int32_t typmod);

/*
 * Sets up a builder for one column. A type without a binary decoder is
 * PGETL_EUNSUPPORTED (check pgetl__arrow_type_supported first).
 */
pgetl_code pgetl__arrow_col_init(pgetl_arrow_col *c, const char *name, uint32_t oid, int32_t typmod,
                                 pgetl_error *err);

/* Frees the builder's memory (and its child's). Accepts a zeroed struct. */
void pgetl__arrow_col_reset(pgetl_arrow_col *c);

/* Appends a NULL. PGETL_DEC_ERROR only when out of memory. */
pgetl_dec pgetl__arrow_col_append_null(pgetl_arrow_col *c, pgetl_error *err);

/* Drops values so that `length` remain (length <= c->length). */
void pgetl__arrow_col_truncate(pgetl_arrow_col *c, int64_t length);

/* Appends one field (NULL when f->len < 0) through the column's decoder. */
static inline pgetl_dec pgetl__arrow_col_append(pgetl_arrow_col *c, const pgetl_field *f,
                                                pgetl_error *err) {
    if (f->len < 0)
        return pgetl__arrow_col_append_null(c, err);
    return c->decode(c, f->data, f->len, err);
}

/*
 * Chooses decoder, layout and Arrow format for a type (arrow_build_decode.c).
 * For arrays sets elem_oid (the caller builds the child). False when the
 * type has no binary decoder.
 */
bool pgetl__arrow_kind_set(pgetl_arrow_col *c, uint32_t oid, int32_t typmod);

/* Decoder helpers shared by arrow_build*.c. */
pgetl_dec pgetl__arrow_oom(pgetl_error *err);
pgetl_dec pgetl__arrow_bad(pgetl_error *err, pgetl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes room for `n` more bytes in b; false when out of memory. */
static inline bool pgetl__arrow_ensure(pgetl_buf *b, size_t n) {
    return b->cap - b->len >= n || pgetl__buf_reserve(b, n) == PGETL_OK;
}

/* Marks the next slot valid or null in c->validity (room for the bit ensured here). */
static inline bool pgetl__arrow_validity_push(pgetl_arrow_col *c, bool valid) {
    int64_t i = c->length;
    if ((i & 7) == 0) {
        if (!pgetl__arrow_ensure(&c->validity, 1))
            return false;
        c->validity.data[c->validity.len++] = 0;
    }
    if (valid)
        c->validity.data[i >> 3] = (char)(c->validity.data[i >> 3] | (1 << (i & 7)));
    else
        c->null_count++;
    return true;
}

/* Ends a VAR/LIST value: stores the next offset. Room must have been ensured. */
static inline void pgetl__arrow_offset_push(pgetl_arrow_col *c, int64_t end) {
    int32_t o = (int32_t)end;
    pgetl__buf_append_unchecked(&c->values, &o, sizeof o);
}

/* The numeric decoders (arrow_build_numeric.c). */
pgetl_dec pgetl__arrow_dec_numeric_text(pgetl_arrow_col *c, const uint8_t *p, int32_t len,
                                        pgetl_error *err);
pgetl_dec pgetl__arrow_dec_numeric_decimal(pgetl_arrow_col *c, const uint8_t *p, int32_t len,
                                           pgetl_error *err);

/*
 * Writes the text PostgreSQL prints for a binary numeric into out (which
 * needs PGETL_NUMERIC_TEXT_MAX bytes; no NUL). Returns the length, or -1 with
 * err filled when the bytes are not a valid numeric.
 */
#define PGETL_NUMERIC_TEXT_MAX (1 + 4 * 32768 + 1 + 0x3FFF + 4)
int64_t pgetl__numeric_to_text(const uint8_t *p, int32_t len, char *out, pgetl_error *err);

/* ------------------------------------------------------------------------ */
/* Record batches                                                           */
/* ------------------------------------------------------------------------ */

typedef struct pgetl_arrow_batch {
    int ncols;
    pgetl_arrow_col *cols;
    int64_t rows;     /* rows in the batch being built               */
    int64_t row_base; /* rows already exported (for error messages)  */
} pgetl_arrow_batch;

/*
 * One builder per column. names/oids/typmods describe the columns as they
 * arrive (a text-wrapped column arrives as text, OID 25). var_limit: 0 for
 * PGETL_ARROW_VAR_LIMIT.
 */
pgetl_code pgetl__arrow_batch_init(pgetl_arrow_batch *b, int ncols, const char *const *names,
                                   const uint32_t *oids, const int32_t *typmods, int64_t var_limit,
                                   pgetl_error *err);

void pgetl__arrow_batch_reset(pgetl_arrow_batch *b);

/*
 * Appends one row. On FULL (a var-size buffer would pass its limit) or ERROR
 * the columns are rolled back to the row's start, so the batch stays
 * consistent. FULL with an empty batch becomes an ERROR (PGETL_EOVERFLOW):
 * the value alone is too big for an Arrow batch. Error messages are prefixed
 * with `column "name" (row N)`.
 */
pgetl_dec pgetl__arrow_batch_append_row(pgetl_arrow_batch *b, const pgetl_field *fields,
                                        pgetl_error *err);

/*
 * Copies the built rows into *out as a struct array (one child per column,
 * all buffers in one 64-byte-aligned block) and empties the builders, which
 * keep their memory for the next batch. The caller releases *out; children
 * may be moved out and released in any order.
 */
pgetl_code pgetl__arrow_batch_finish(pgetl_arrow_batch *b, struct ArrowArray *out,
                                     pgetl_error *err);

/* Exports the batch's schema ("+s", one nullable child per column). */
pgetl_code pgetl__arrow_batch_schema(const pgetl_arrow_batch *b, struct ArrowSchema *out,
                                     pgetl_error *err);

/* The export of one column's schema (arrow_build_export.c). */
pgetl_code pgetl__arrow_col_schema(const pgetl_arrow_col *c, struct ArrowSchema *out,
                                   pgetl_error *err);

/* Writes an empty offsets buffer ({0}) for a VAR/LIST builder (not its child). */
bool pgetl__arrow_col_start(pgetl_arrow_col *c);

/* ------------------------------------------------------------------------ */
/* The stream (copy_out.c)                                                  */
/* ------------------------------------------------------------------------ */

/* The savepoint pgetl_query_arrow works under. */
#define PGETL_QUERY_ARROW_SAVEPOINT "pgetl_query_arrow"

/*
 * Stops a running query_arrow command, or any COPY TO STDOUT (copy_out_stop.c):
 * reads what already arrived (up to 1 MiB or 1024 results), else cancels
 * and drains, both bounded by pgetl__conn_cancel_bound() (connect_timeout_s
 * or io_timeout_s; 10 s by default). Logs `query_arrow_cancel` when it had
 * to cancel (warn if a bound was hit: the connection is then abandoned, its
 * socket shut down, so later calls fail at once and the pool discards it).
 */
void pgetl__copyout_stop(PGconn *pg, bool copy_mode, int64_t rows_read);

/* ROLLBACK TO / RELEASE the savepoint when the connection is idle in a transaction. */
void pgetl__copyout_restore_savepoint(PGconn *pg);

/* Knobs that tests lower; 0 means the default. */
typedef struct pgetl_query_arrow_limits {
    int64_t batch_rows; /* default PGETL_ARROW_BATCH_ROWS */
    int64_t var_limit;  /* default PGETL_ARROW_VAR_LIMIT  */
} pgetl_query_arrow_limits;

pgetl_code pgetl__query_arrow_ex(pgetl_conn *conn, const char *sql, int nparams,
                                 const char *const *params, const pgetl_query_arrow_limits *lim,
                                 struct ArrowArrayStream *stream_out, pgetl_error *err);

#endif /* PGETL_SRC_COPY_OUT_H */
