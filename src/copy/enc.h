/*
 * COPY field encoders: values in, COPY bytes out. No I/O and no connection:
 * each function appends to a pgetl_buf the caller has already reserved
 * (bounds below), so a row costs one reserve and no allocation.
 *
 * Text and CSV encoders take raw bytes; the typed binary encoders take a
 * pgetl_value and a per-column encoder chosen once at begin from the
 * (pgetl_type, column type) pair.
 */
#ifndef PGETL_SRC_COPY_ENC_H
#define PGETL_SRC_COPY_ENC_H

#include "base/base.h"

/* PostgreSQL refuses any field over 1 GB; refusing earlier keeps bounds from overflowing. */
#define PGETL_ENC_MAX_FIELD ((size_t)1 << 30)

/* ---- text format (enc_text.c) ------------------------------------------- */

/* Worst case for a value of len bytes: every byte escaped. */
static inline size_t pgetl__enc_text_bound(size_t len) {
    return 2 * len + 2;
}

/*
 * Appends `len` bytes escaped for COPY text format (backslash, tab, newline
 * and carriage return become \\, \t, \n, \r; everything else is copied).
 * Needs pgetl__enc_text_bound(len) bytes reserved. Returns false, after
 * storing the offset in *nul_at, when the value holds a NUL byte (PostgreSQL
 * text cannot); the buffer then holds the value encoded up to that byte,
 * which a caller either discards or continues after the NUL.
 */
bool pgetl__enc_text_value(pgetl_buf *b, const char *v, size_t len, size_t *nul_at);

/* Appends \N, the text format's NULL (2 bytes). */
static inline void pgetl__enc_text_null(pgetl_buf *b) {
    pgetl__buf_append_unchecked(b, "\\N", 2);
}

/* ---- CSV format (enc_csv.c) --------------------------------------------- */

static inline size_t pgetl__enc_csv_bound(size_t len) {
    return 2 * len + 2;
}

/*
 * Appends `len` bytes as one CSV field (delimiter ','). The value is quoted,
 * with inner quotes doubled, when it holds a delimiter, quote, CR or LF,
 * when it is empty (an unquoted empty field is NULL), or when it is exactly
 * \. (the end-of-data marker). A NULL is written by appending nothing.
 * Same NUL rule and reserve contract as the text encoder.
 */
bool pgetl__enc_csv_value(pgetl_buf *b, const char *v, size_t len, size_t *nul_at);

/* ---- binary format (enc_binary.c) --------------------------------------- */

/* "PGCOPY\n\377\r\n\0", flags 0, header extension length 0. */
#define PGETL_BINARY_HEADER_LEN 19
extern const char pgetl__binary_header[PGETL_BINARY_HEADER_LEN];

/* The file trailer: a field count of -1. */
#define PGETL_BINARY_TRAILER_LEN 2
extern const char pgetl__binary_trailer[PGETL_BINARY_TRAILER_LEN];

/*
 * Encodes one non-NULL value with its 4-byte length word. Needs
 * pgetl__bin_bound() bytes reserved. Returns PGETL_OK, PGETL_EOVERFLOW (value
 * out of the column type's range) or PGETL_EDATA (malformed value), with a
 * short reason written to why (NUL terminated) on failure.
 */
typedef pgetl_code (*pgetl__bin_enc_fn)(pgetl_buf *b, const pgetl_value *v, char *why,
                                        size_t why_size);

typedef struct pgetl__bin_col {
    pgetl__bin_enc_fn fn;
    pgetl_type type;
    uint32_t oid;
    bool check_decl; /* int16/int32 declarations: range-check against the declaration */
    bool varlen;     /* bound = fixed + value length                                 */
    size_t fixed;
} pgetl__bin_col;

/*
 * Chooses the encoder for writing values of `type` into a column of type
 * `oid` (domains already resolved). Returns false when the pair cannot
 * convert (text into integer, int64 into uuid, ...).
 */
bool pgetl__bin_col_init(pgetl__bin_col *col, pgetl_type type, uint32_t oid);

/* Bytes to reserve for one non-NULL value, length word included (NULL: 4). */
static inline size_t pgetl__bin_bound(const pgetl__bin_col *col, const pgetl_value *v) {
    return col->fixed + (col->varlen ? v->v.s.len : 0);
}

/*
 * Encodes one non-NULL value through col (declared-range check, then the
 * column encoder). Same contract as pgetl__bin_enc_fn.
 */
pgetl_code pgetl__bin_encode(const pgetl__bin_col *col, pgetl_buf *b, const pgetl_value *v,
                             char *why, size_t why_size);

/* "int64", "text", ... for messages. */
const char *pgetl__type_name(pgetl_type type);

/*
 * Encodes decimal text ("-12.50", "1e-3", "NaN", "-Infinity") as the body
 * of PostgreSQL's binary numeric (no length word): ndigits, weight, sign,
 * dscale, base-10000 digits. Needs pgetl__numeric_bound(len) bytes. Returns
 * PGETL_OK, PGETL_EDATA for malformed text, PGETL_EOVERFLOW when the weight
 * or scale do not fit the format.
 */
pgetl_code pgetl__enc_numeric_text(pgetl_buf *b, const char *s, size_t len, char *why,
                                   size_t why_size);

static inline size_t pgetl__numeric_bound(size_t len) {
    return 8 + 2 * (len / 4 + 3);
}

#endif /* PGETL_SRC_COPY_ENC_H */
