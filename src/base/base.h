/*
 * Private base layer: allocation, growable buffers, error helpers, log line
 * building, clocks. Every other layer may include this; it includes nothing
 * of theirs.
 */
#ifndef PGETL_SRC_BASE_H
#define PGETL_SRC_BASE_H

#include "pgetl/pgetl.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Internal functions shared across files are pgetl__; statics have no prefix. */

/* ---- allocation (alloc.c): routed through pgetl_set_allocator() ---------- */
void *pgetl__malloc(size_t n);
void *pgetl__calloc(size_t count, size_t size); /* overflow-checked */
void *pgetl__realloc(void *p, size_t n);
void pgetl__free(void *p);
char *pgetl__strdup(const char *s);
char *pgetl__strndup(const char *s, size_t n);

/* ---- growable byte buffer (buf.c) ---------------------------------------- */

/*
 * Grows geometrically (doubling) so that appending n bytes costs amortised
 * O(n); reserve once per batch, then append with the _unchecked helpers.
 */
typedef struct pgetl_buf {
    char *data;
    size_t len;
    size_t cap;
} pgetl_buf;

void pgetl__buf_init(pgetl_buf *b);
void pgetl__buf_reset(pgetl_buf *b); /* frees the memory */
/* Ensures room for `extra` more bytes. PGETL_ENOMEM on failure (buffer kept). */
pgetl_code pgetl__buf_reserve(pgetl_buf *b, size_t extra);
pgetl_code pgetl__buf_append(pgetl_buf *b, const void *p, size_t n);
pgetl_code pgetl__buf_printf(pgetl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void pgetl__buf_clear(pgetl_buf *b) {
    b->len = 0;
}
static inline void pgetl__buf_append_unchecked(pgetl_buf *b, const void *p, size_t n) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static inline void pgetl__buf_byte_unchecked(pgetl_buf *b, char c) {
    b->data[b->len++] = c;
}
static inline void pgetl__buf_be16_unchecked(pgetl_buf *b, uint16_t v) {
    unsigned char *p = (unsigned char *)b->data + b->len;
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    b->len += 2;
}
static inline void pgetl__buf_be32_unchecked(pgetl_buf *b, uint32_t v) {
    unsigned char *p = (unsigned char *)b->data + b->len;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    b->len += 4;
}
static inline void pgetl__buf_be64_unchecked(pgetl_buf *b, uint64_t v) {
    pgetl__buf_be32_unchecked(b, (uint32_t)(v >> 32));
    pgetl__buf_be32_unchecked(b, (uint32_t)v);
}

/* Reads back what the writers above wrote (network byte order). */
static inline uint32_t pgetl__get_be32(const void *p) {
    const unsigned char *u = p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}
static inline uint64_t pgetl__get_be64(const void *p) {
    const unsigned char *u = p;
    return (uint64_t)pgetl__get_be32(u) << 32 | pgetl__get_be32(u + 4);
}

/* ---- errors (error.c, error_pg.c) ---------------------------------------- */

/* The preformatted out-of-memory error: needs no allocation. */
pgetl_code pgetl__error_oom(pgetl_error *err, const char *where);

/* Copies a whole error value (dst may be NULL). Returns src->code. */
pgetl_code pgetl__error_copy(pgetl_error *dst, const pgetl_error *src);

/* Bounded copy that never splits a UTF-8 sequence; always NUL terminates. */
void pgetl__strlcpy_utf8(char *dst, const char *src, size_t size);

struct pg_result;
struct pg_conn;
/*
 * Fills err from a failed PGresult (SQLSTATE, primary message, detail, hint,
 * context) or, when res carries nothing, from the connection's message.
 * `what` says what pgetl was doing ("TRUNCATE public.t"); it prefixes the
 * message. Returns PGETL_ESERVER, or PGETL_ECONNLOST when the connection is
 * broken.
 */
pgetl_code pgetl__error_from_pg(pgetl_error *err, const struct pg_result *res,
                                const struct pg_conn *conn, const char *what);

/*
 * A hook the connect layer installs (iowatch.c): for a broken connection
 * (and libpq's text about it) it may name the bound that ended it ("io_timeout_s (2.0 s) expired: ..."),
 * writing into buf and returning it, else NULL. pgetl__error_from_pg leads
 * the message with that reason. Safe to call from any thread, any time.
 */
typedef const char *(*pgetl__error_pg_note_fn)(const struct pg_conn *conn, const char *text,
                                               char *buf, size_t size);
void pgetl__error_pg_set_note(pgetl__error_pg_note_fn fn);

/* ---- logging (log.c) ----------------------------------------------------- */

#define PGETL_LOG_LINE_MAX 2048

/*
 * Builds one structured line on the stack, with no allocation:
 *     pgetl_logline l;
 *     if (pgetl__log_begin(&l, PGETL_LOG_INFO, "copy_from_arrow")) {
 *         pgetl__log_str(&l, "table", name);
 *         pgetl__log_int(&l, "rows", n);
 *         pgetl__log_end(&l);
 *     }
 * begin returns false (and costs one load) when the level is filtered out.
 */
typedef struct pgetl_logline {
    pgetl_log_level level;
    size_t len;
    bool full; /* a value was cut: nothing more is appended */
    char text[PGETL_LOG_LINE_MAX];
} pgetl_logline;

bool pgetl__log_enabled(pgetl_log_level level);
bool pgetl__log_begin(pgetl_logline *l, pgetl_log_level level, const char *event);
void pgetl__log_str(pgetl_logline *l, const char *key, const char *value);
void pgetl__log_strn(pgetl_logline *l, const char *key, const char *value, size_t n);
void pgetl__log_int(pgetl_logline *l, const char *key, int64_t value);
void pgetl__log_double(pgetl_logline *l, const char *key, double value);
void pgetl__log_end(pgetl_logline *l);

/* ---- time (clock.c) ------------------------------------------------------ */

/* Monotonic clock in nanoseconds and in seconds. */
int64_t pgetl__now_ns(void);
double pgetl__now_s(void);

#endif /* PGETL_SRC_BASE_H */
