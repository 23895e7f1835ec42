/*
 * Errors: one value type, carried through every call.
 *
 * Every fallible function returns a pgetl_code and, when its last argument
 * `pgetl_error *err` is non-NULL, fills it. NULL is always accepted. The code
 * that detects a failure writes the message; callers may add a prefix with
 * pgetl_error_prefix() but never overwrite it. Server errors carry the
 * SQLSTATE and the server's detail, hint and context (no context for a FATAL
 * that ended the session: it names what was interrupted, such as a COPY
 * line that did nothing wrong). No message ever holds a password.
 *
 * Thread note: a pgetl_error is a plain value; use one per thread.
 */
#ifndef PGETL_ERROR_H
#define PGETL_ERROR_H

#include "pgetl/export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The one table of error codes: X(name, value, description). Values never
 * change and new codes are only appended.
 */
#define PGETL_CODE_MAP(X)                                                                          \
    X(OK, 0, "success")                                                                            \
    X(EINVAL, 1, "invalid argument")                                                               \
    X(ENOMEM, 2, "out of memory")                                                                  \
    X(ECONFIG, 3, "invalid configuration")                                                         \
    X(ECONNECT, 4, "could not connect to the server")                                              \
    X(ESERVER, 5, "the server reported an error")                                                  \
    X(ETIMEOUT, 6, "timed out")                                                                    \
    X(EEXHAUSTED, 7, "connection pool exhausted")                                                  \
    X(ECLOSED, 8, "closed")                                                                        \
    X(ESTATE, 9, "operation not valid in this state")                                              \
    X(ECONNLOST, 10, "connection to the server lost")                                              \
    X(EIO, 11, "input/output error")                                                               \
    X(EDATA, 12, "invalid input data")                                                             \
    X(ESCHEMA, 13, "data does not match the target table")                                         \
    X(EUNSUPPORTED, 14, "not supported")                                                           \
    X(EOVERFLOW, 15, "value out of range")                                                         \
    X(EABORTED, 16, "aborted by the caller")                                                       \
    X(ENOTFOUND, 17, "not found")                                                                  \
    X(EREJECTS, 18, "too many rejected rows")                                                      \
    X(EARROW, 19, "the Arrow producer reported an error")                                        \
    X(EAGAIN, 20, "operation in progress")

typedef enum pgetl_code {
#define PGETL_CODE_ENUM_(name, value, text) PGETL_##name = value,
    PGETL_CODE_MAP(PGETL_CODE_ENUM_)
#undef PGETL_CODE_ENUM_
} pgetl_code;

/* Sizes of the text fields; a longer text is cut at a UTF-8 boundary. */
#define PGETL_ERROR_MESSAGE_SIZE 1024
#define PGETL_ERROR_DETAIL_SIZE 512
#define PGETL_ERROR_HINT_SIZE 256
#define PGETL_ERROR_CONTEXT_SIZE 512

typedef struct pgetl_error {
    pgetl_code code;                         /* PGETL_OK or a PGETL_E* value            */
    char sqlstate[6];                        /* "23505" when the server sent one, else "" */
    char message[PGETL_ERROR_MESSAGE_SIZE];  /* what failed, where, and why               */
    char detail[PGETL_ERROR_DETAIL_SIZE];    /* server's DETAIL, else ""                  */
    char hint[PGETL_ERROR_HINT_SIZE];        /* server's HINT, else ""                    */
    char context[PGETL_ERROR_CONTEXT_SIZE];  /* server's CONTEXT (e.g. "COPY t, line 5") */
} pgetl_error;

/* Resets *err to PGETL_OK with empty texts. Accepts NULL. */
PGETL_API void pgetl_error_init(pgetl_error *err);

/* "EINVAL" for PGETL_EINVAL; "UNKNOWN" for a value not in the table. */
PGETL_API const char *pgetl_code_name(pgetl_code code);

/* A short English description of the code. Static storage. */
PGETL_API const char *pgetl_strerror(pgetl_code code);

/*
 * Sets code and a printf-style message, clearing the other fields. Returns
 * `code` so a caller can write `return pgetl_error_set(err, ...)`. Accepts a
 * NULL err.
 */
PGETL_API pgetl_code pgetl_error_set(pgetl_error *err, pgetl_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * Prepends printf-style context to the existing message ("sales.csv line
 * 812: " + message). Keeps code, SQLSTATE and the server fields. A prefix
 * the message already starts with is not added again.
 */
PGETL_API void pgetl_error_prefix(pgetl_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/*
 * Formats the error for a person on one or more lines into buf (always NUL
 * terminated when size > 0): "message [SQLSTATE xxxxx]" then "DETAIL: ...",
 * "HINT: ...", "CONTEXT: ..." lines when present. Returns buf.
 */
PGETL_API char *pgetl_error_format(const pgetl_error *err, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_ERROR_H */
