/*
 * Structured logging. Lines are built on the caller's stack (no allocation)
 * and handed to one sink. The level is an atomic so the filtered-out case is
 * a single relaxed load; the sink itself is guarded by a mutex so a handler
 * may be swapped while the pool's thread logs.
 */
#include "base/base.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic int log_level = PGETL_LOG_WARN;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static pgetl_log_fn log_fn;
static void *log_user;

void pgetl_log_set_handler(pgetl_log_fn fn, void *user, pgetl_log_level min_level) {
    pthread_mutex_lock(&log_mutex);
    log_fn = fn;
    log_user = user;
    atomic_store(&log_level, (int)min_level);
    pthread_mutex_unlock(&log_mutex);
}

pgetl_log_level pgetl_log_get_level(void) {
    return (pgetl_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

const char *pgetl_log_level_name(pgetl_log_level level) {
    switch (level) {
    case PGETL_LOG_DEBUG:
        return "debug";
    case PGETL_LOG_INFO:
        return "info";
    case PGETL_LOG_WARN:
        return "warn";
    case PGETL_LOG_ERROR:
        return "error";
    case PGETL_LOG_OFF:
        return "off";
    }
    return "unknown";
}

bool pgetl__log_enabled(pgetl_log_level level) {
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed) &&
           level < PGETL_LOG_OFF;
}

/*
 * Appends raw bytes, keeping room for the NUL. A line that fills up is cut
 * at a UTF-8 boundary, never overrun, and takes nothing more, so a handler
 * never sees half a character or a later key glued to a cut value.
 */
static void put(pgetl_logline *l, const char *s, size_t n) {
    if (l->full)
        return;
    size_t room = sizeof l->text - 1 - l->len;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        l->full = true;
    }
    memcpy(l->text + l->len, s, n);
    l->len += n;
    l->text[l->len] = '\0';
}

bool pgetl__log_begin(pgetl_logline *l, pgetl_log_level level, const char *event) {
    if (!pgetl__log_enabled(level))
        return false;
    l->level = level;
    l->len = 0;
    l->full = false;
    l->text[0] = '\0';
    const char *name = pgetl_log_level_name(level);
    put(l, "level=", 6);
    put(l, name, strlen(name));
    pgetl__log_str(l, "event", event);
    return true;
}

static bool needs_quotes(const char *v, size_t n) {
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

void pgetl__log_strn(pgetl_logline *l, const char *key, const char *value, size_t n) {
    if (l->len)
        put(l, " ", 1);
    put(l, key, strlen(key));
    put(l, "=", 1);
    if (!value) {
        put(l, "null", 4);
        return;
    }
    if (!needs_quotes(value, n)) {
        put(l, value, n);
        return;
    }
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\r') {
            put(l, "\\r", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            int k = snprintf(esc, sizeof esc, "\\x%02x", c);
            put(l, esc, (size_t)k);
        } else {
            /* Copy the run of plain bytes at once: a cut then respects UTF-8. */
            size_t j = i + 1;
            while (j < n && (unsigned char)value[j] >= 0x20 && value[j] != '"' &&
                   value[j] != '\\' && value[j] != 0x7f)
                j++;
            put(l, value + i, j - i);
            i = j - 1;
        }
    }
    put(l, "\"", 1);
}

void pgetl__log_str(pgetl_logline *l, const char *key, const char *value) {
    pgetl__log_strn(l, key, value, value ? strlen(value) : 0);
}

void pgetl__log_int(pgetl_logline *l, const char *key, int64_t value) {
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", (long long)value);
    pgetl__log_strn(l, key, num, (size_t)n);
}

void pgetl__log_double(pgetl_logline *l, const char *key, double value) {
    char num[64];
    int n = isfinite(value) ? snprintf(num, sizeof num, "%.3f", value)
                            : snprintf(num, sizeof num, "%s",
                                       isnan(value) ? "nan" : value < 0 ? "-inf" : "inf");
    pgetl__log_strn(l, key, num, (size_t)n);
}

void pgetl__log_end(pgetl_logline *l) {
    pthread_mutex_lock(&log_mutex);
    if (log_fn) {
        log_fn(log_user, l->level, l->text);
    } else {
        /* The default sink: stderr, never stdout (the library's rule). */
        fprintf(stderr, "pgetl: %s\n", l->text);
    }
    pthread_mutex_unlock(&log_mutex);
}
