/*
 * Private interface of Arrow ingest (pgetl_copy_from_arrow): format-string
 * parsing (arrow_schema.c), structural validation (arrow_validate.c) and the
 * per-column binary COPY encoders (arrow_enc*.c), driven by src_arrow.c.
 *
 * Design: a schema is parsed once into small descriptors (pgetl_arrow_field).
 * Each target column gets one pgetl_arrow_col whose encoder function pointer
 * is picked once, from the (Arrow type, PostgreSQL type) pair, out of a table
 * in the arrow_enc_*.c files; there is no switch per value. Per batch, the
 * columns are bound to the batch's buffers (pgetl__arrow_col_bind) after the
 * batch passed validation, so the encoders may index buffers without checks.
 *
 * Value rules an encoder applies (the "never reinterpret silently" contract):
 * - nanosecond timestamps, times and durations become microseconds by
 *   truncation toward negative infinity (floor): -1 ns is stored as -1 us,
 *   i.e. the microsecond that contains the instant;
 * - a timestamp whose value lands on PostgreSQL's +-infinity sentinel, or
 *   overflows int64 when scaled to microseconds, is an error (EOVERFLOW);
 * - date64 values that are not whole days are an error (EDATA);
 * - uint64 above INT64_MAX into bigint is an error (EOVERFLOW);
 * Range checks PostgreSQL's receive functions do themselves (dates, times,
 * varchar(n) lengths, UTF-8 validity, JSON syntax) are left to the server.
 */
#ifndef PGETL_SRC_ARROW_INT_H
#define PGETL_SRC_ARROW_INT_H

#include "base/base.h"
#include "sql/sql.h"

typedef enum pgetl_arrow_kind {
    PGETL_AK_INVALID = 0,
    PGETL_AK_NULL,
    PGETL_AK_BOOL,
    PGETL_AK_INT8,
    PGETL_AK_INT16,
    PGETL_AK_INT32,
    PGETL_AK_INT64,
    PGETL_AK_UINT8,
    PGETL_AK_UINT16,
    PGETL_AK_UINT32,
    PGETL_AK_UINT64,
    PGETL_AK_FLOAT16,
    PGETL_AK_FLOAT32,
    PGETL_AK_FLOAT64,
    PGETL_AK_UTF8,         /* u  */
    PGETL_AK_LARGE_UTF8,   /* U  */
    PGETL_AK_UTF8_VIEW,    /* vu */
    PGETL_AK_BINARY,       /* z  */
    PGETL_AK_LARGE_BINARY, /* Z  */
    PGETL_AK_BINARY_VIEW,  /* vz */
    PGETL_AK_FIXED_BINARY, /* w:N   (width)            */
    PGETL_AK_DECIMAL128,   /* d:P,S (precision, scale) */
    PGETL_AK_DATE32,       /* tdD */
    PGETL_AK_DATE64,       /* tdm */
    PGETL_AK_TIME32,       /* tts, ttm (unit)          */
    PGETL_AK_TIME64,       /* ttu, ttn (unit)          */
    PGETL_AK_TIMESTAMP,    /* ts?:tz (unit, has_tz)    */
    PGETL_AK_DURATION,     /* tD? (unit)               */
    PGETL_AK_LIST,         /* +l (child)               */
    PGETL_AK_LARGE_LIST,   /* +L (child)               */
    PGETL_AK_STRUCT,       /* +s (record batches only) */
    PGETL_AK_DICTIONARY    /* schema->dictionary set: index + child   */
} pgetl_arrow_kind;

typedef enum pgetl_arrow_unit {
    PGETL_AU_NONE = 0,
    PGETL_AU_S,
    PGETL_AU_MS,
    PGETL_AU_US,
    PGETL_AU_NS
} pgetl_arrow_unit;

/* One parsed format string. */
typedef struct pgetl_arrow_type {
    pgetl_arrow_kind kind;
    pgetl_arrow_unit unit; /* time32/64, timestamp, duration */
    bool has_tz;           /* timestamp: a non-empty time zone after ':' */
    int32_t precision;     /* decimal128 */
    int32_t scale;         /* decimal128 (may be negative in Arrow)      */
    int32_t width;         /* fixed_size_binary                         */
} pgetl_arrow_type;

/*
 * One field of a record batch. For a dictionary, `type.kind` is
 * PGETL_AK_DICTIONARY, `index` the index type and `child` the value type;
 * for a list, `child` is the element type. Strings are borrowed from the
 * schema, which outlives the field.
 */
typedef struct pgetl_arrow_field {
    const char *name;
    const char *format;       /* the field's own format string (indices for a dictionary) */
    const char *child_format; /* list element / dictionary value format, else NULL      */
    pgetl_arrow_type type;
    pgetl_arrow_type child;
    pgetl_arrow_type index;
} pgetl_arrow_field;

/* ---- arrow_schema.c ------------------------------------------------------ */

/*
 * Parses one format string. Malformed text ("d:x", "w:0", "ts") is
 * PGETL_EDATA; a well-formed type pgetl does not ingest (maps, unions,
 * decimal256, ...) is PGETL_EUNSUPPORTED. Messages quote the format.
 */
pgetl_code pgetl__arrow_type_parse(const char *format, pgetl_arrow_type *out, pgetl_error *err);

/*
 * Parses one field's schema, including a list's single child and a
 * dictionary's value schema (nested lists, lists of dictionaries and struct
 * fields are PGETL_EUNSUPPORTED). NULL pointers where the C Data Interface
 * requires a value are PGETL_EDATA.
 */
pgetl_code pgetl__arrow_field_parse(const struct ArrowSchema *schema, pgetl_arrow_field *out,
                                    pgetl_error *err);

/*
 * Parses a stream's top-level schema, which must be a struct ("+s") of
 * named fields. *fields_out (pgetl__free) receives n_children descriptors.
 * A field of a type pgetl cannot ingest (PGETL_EUNSUPPORTED) is kept with
 * kind PGETL_AK_INVALID, so data may carry columns the caller does not load;
 * loading one is refused later (pgetl__arrow_field_parse says why).
 */
pgetl_code pgetl__arrow_schema_parse(const struct ArrowSchema *schema,
                                     pgetl_arrow_field **fields_out, int *nfields_out,
                                     pgetl_error *err);

/*
 * Writes the field's type for messages: the format string, with the child's
 * for nested types ("+l<i>", "dictionary<i,u>"). Returns buf.
 */
const char *pgetl__arrow_field_describe(const pgetl_arrow_field *f, char *buf, size_t size);

/* ---- arrow_validate.c ---------------------------------------------------- */

/*
 * Checks that logical elements [start, start + count) of `a` can be read as
 * type `f` without leaving the buffers the C Data Interface lets us infer:
 * non-negative length/offset, buffer and child counts that match the
 * format, required buffers present, offsets non-decreasing and inside the
 * child (lists) or the declared variadic buffer sizes (views), dictionary
 * indices inside the dictionary, and the same for children over the range
 * they use. A utf8/binary data buffer's size is not carried by the
 * interface, so only the offsets' order can be checked there. Failure is
 * PGETL_EDATA naming `what` (the column) and the problem.
 */
pgetl_code pgetl__arrow_validate_range(const pgetl_arrow_field *f, const struct ArrowArray *a,
                                       int64_t start, int64_t count, const char *what,
                                       pgetl_error *err);

/*
 * Validates one record batch: a struct array with one child per field and
 * no struct-level nulls, then the children listed in use[0..nuse) (every
 * child when use is NULL) over the struct's window. Children that are not
 * loaded are never read, so they are not checked.
 */
pgetl_code pgetl__arrow_validate_batch(const pgetl_arrow_field *fields, int nfields, const int *use,
                                       int nuse, const struct ArrowArray *batch, pgetl_error *err);

/* ---- arrow_enc*.c -------------------------------------------------------- */

typedef struct pgetl_arrow_col pgetl_arrow_col;

/*
 * Appends one non-null value as a binary COPY field (int32 length, then the
 * bytes) at logical index i. The caller reserved enough room (fixed + size()).
 * Returns NULL, or a static text saying why the value cannot be stored.
 */
typedef const char *(*pgetl_arrow_enc_fn)(const pgetl_arrow_col *c, int64_t i, pgetl_buf *b);

/* Bytes value i needs beyond the column's fixed part (variable-width types). */
typedef size_t (*pgetl_arrow_size_fn)(const pgetl_arrow_col *c, int64_t i);

/* Bound view of one array: buffers with the offsets of all parents applied. */
typedef struct pgetl_arrow_view {
    const uint8_t *validity;  /* NULL: no nulls                          */
    const void *data;         /* values, offsets, views or indices       */
    const void *data2;        /* string bytes (u, U, z, Z)               */
    const void *const *vbufs; /* view data buffers (vu, vz)             */
    int64_t offset;           /* physical index of logical element 0     */
} pgetl_arrow_view;

struct pgetl_arrow_col {
    /* chosen once per schema */
    const pgetl_arrow_field *field;
    const pgetl_column_info *column;
    pgetl_arrow_enc_fn enc;
    pgetl_arrow_size_fn size; /* NULL: fixed-width                         */
    size_t fixed;             /* bytes always reserved for this field      */
    pgetl_arrow_col *child;   /* list elements / dictionary values, else NULL */
    uint32_t elem_oid;        /* lists: element type sent in the array header */
    int32_t scale;            /* decimal128 scale                          */
    bool jsonb;               /* text into jsonb: version byte first       */
    /* bound per batch */
    pgetl_arrow_view v;
    uint64_t vword; /* validity of the current 64-row block (driver) */
};

/*
 * Picks the encoder for field `f` into `column` (and for its child into
 * c->child, which the caller provides for list and dictionary fields).
 * A pair that cannot convert losslessly is PGETL_ESCHEMA:
 *   column "x": cannot load Arrow type "i" into date
 * plus a short reason when one helps (zoned vs unzoned timestamps).
 */
pgetl_code pgetl__arrow_col_choose(pgetl_arrow_col *c, pgetl_arrow_col *child,
                                   const pgetl_arrow_field *f, const pgetl_column_info *column,
                                   pgetl_error *err);

/*
 * Binds a column to array `a` (already validated), whose logical element 0
 * is at physical index a->offset + parent_offset.
 */
void pgetl__arrow_col_bind(pgetl_arrow_col *c, const struct ArrowArray *a, int64_t parent_offset);

/* Validity of logical element i of a bound view. */
static inline bool pgetl__arrow_valid(const pgetl_arrow_view *v, int64_t i) {
    if (!v->validity)
        return true;
    int64_t p = v->offset + i;
    return (v->validity[p >> 3] >> (p & 7)) & 1;
}

/*
 * Validity bits of logical elements [i, i + n) (n <= 64) of a bound view as
 * one word, bit k for element i + k; all ones when there is no bitmap. The
 * driver loads one word per 64 rows and column, so the per-value test is a
 * shift and a mask on a register.
 */
uint64_t pgetl__arrow_validity_word(const pgetl_arrow_view *v, int64_t i, int n);

/*
 * Per-family choosers, tried in turn by pgetl__arrow_col_choose; each
 * returns true and fills enc/size/fixed when it handles the pair.
 */
bool pgetl__arrow_enc_pick_num(pgetl_arrow_col *c, const pgetl_arrow_type *t, uint32_t oid);
bool pgetl__arrow_enc_pick_time(pgetl_arrow_col *c, const pgetl_arrow_type *t, uint32_t oid);
bool pgetl__arrow_enc_pick_var(pgetl_arrow_col *c, const pgetl_arrow_type *t, uint32_t oid);

/* Encoders used by composite types (lists, dictionaries) in arrow_enc_nest.c. */
bool pgetl__arrow_enc_pick_nest(pgetl_arrow_col *c, const pgetl_arrow_field *f);

/* Binary COPY sizes. */
#define PGETL_ARROW_NUMERIC_MAX 40 /* 4 length + 8 header + up to 11 base-10000 digits + slack */

#endif /* PGETL_SRC_ARROW_INT_H */
