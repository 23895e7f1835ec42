/*
 * Logging: structured `key=value` lines through a replaceable callback.
 *
 * Every line starts with `level=<level> event=<event>` and continues with
 * key=value pairs; values holding spaces, quotes or '=' are double-quoted
 * with \" and \\ escapes. The default sink writes lines at PGETL_LOG_WARN and
 * above to stderr. pgetl never logs a password: DSNs and connection strings
 * are redacted before they reach a line.
 *
 * Thread note: the callback may be called from any thread, including the
 * pool's maintenance thread, so it must be thread-safe. Set it before other
 * threads use pgetl.
 */
#ifndef PGETL_LOG_H
#define PGETL_LOG_H

#include "pgetl/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pgetl_log_level {
    PGETL_LOG_DEBUG = 10,
    PGETL_LOG_INFO = 20,
    PGETL_LOG_WARN = 30,
    PGETL_LOG_ERROR = 40,
    PGETL_LOG_OFF = 100
} pgetl_log_level;

/* Receives one complete line, without a trailing newline. */
typedef void (*pgetl_log_fn)(void *user, pgetl_log_level level, const char *line);

/*
 * Routes lines at `min_level` and above to fn(user, ...). fn == NULL restores
 * the default stderr sink (with min_level still applied).
 */
PGETL_API void pgetl_log_set_handler(pgetl_log_fn fn, void *user, pgetl_log_level min_level);

/* The current minimum level. */
PGETL_API pgetl_log_level pgetl_log_get_level(void);

/* "debug", "info", "warn", "error", "off". */
PGETL_API const char *pgetl_log_level_name(pgetl_log_level level);

#ifdef __cplusplus
}
#endif

#endif /* PGETL_LOG_H */
