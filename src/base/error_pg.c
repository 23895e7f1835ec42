/* Server errors: copies the structured fields libpq keeps on a PGresult. */
#include "base/base.h"

#include <libpq-fe.h>
#include <stdatomic.h>

/* libpq messages end with a newline; error text is one line per field. */
static void copy_field(char *dst, size_t size, const char *src) {
    if (!src) {
        dst[0] = '\0';
        return;
    }
    pgetl__strlcpy_utf8(dst, src, size);
    size_t n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
        dst[--n] = '\0';
}

static _Atomic(pgetl__error_pg_note_fn) note_fn;

void pgetl__error_pg_set_note(pgetl__error_pg_note_fn fn) {
    atomic_store(&note_fn, fn);
}

pgetl_code pgetl__error_from_pg(pgetl_error *err, const PGresult *res, const PGconn *conn,
                                const char *what) {
    bool broken = conn && PQstatus(conn) == CONNECTION_BAD;
    /* A FATAL or PANIC error ends the session: the server closes the
     * connection right after it (pg_terminate_backend, shutdown, crash),
     * though libpq may hand the result over before it notices the close. */
    const char *sev = res ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    bool fatal = sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
    pgetl_code code = broken || fatal ? PGETL_ECONNLOST : PGETL_ESERVER;
    if (!err)
        return code;
    pgetl_error_init(err);
    err->code = code;

    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[PGETL_ERROR_MESSAGE_SIZE];
    if (primary) {
        copy_field(msg, sizeof msg, primary);
        copy_field(err->sqlstate, sizeof err->sqlstate, PQresultErrorField(res, PG_DIAG_SQLSTATE));
        copy_field(err->detail, sizeof err->detail, PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
        copy_field(err->hint, sizeof err->hint, PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
        /*
         * The CONTEXT of an error that ends the session says what it
         * interrupted ("COPY t, line 1131" after a kill); shown next to the
         * message it reads as if that line were at fault. Dropped.
         */
        if (!fatal)
            copy_field(err->context, sizeof err->context, PQresultErrorField(res, PG_DIAG_CONTEXT));
    } else {
        /* No structured error: a client-side or connection failure. */
        const char *text = res ? PQresultErrorMessage(res) : "";
        if ((!text || !text[0]) && conn)
            text = PQerrorMessage(conn);
        copy_field(msg, sizeof msg, text && text[0] ? text : "unknown error");
    }
    /* A connection pgetl itself shut down (a timeout): say which bound, then libpq's words. */
    pgetl__error_pg_note_fn fn = broken ? atomic_load(&note_fn) : NULL;
    char why[512];
    if (fn && fn(conn, msg, why, sizeof why)) {
        char both[PGETL_ERROR_MESSAGE_SIZE];
        pgetl__strlcpy_utf8(both, why, sizeof both);
        size_t k = strlen(both);
        pgetl__strlcpy_utf8(both + k, " (", sizeof both - k);
        k += strlen(both + k);
        pgetl__strlcpy_utf8(both + k, msg, sizeof both - k);
        k += strlen(both + k);
        pgetl__strlcpy_utf8(both + k, ")", sizeof both - k);
        memcpy(msg, both, sizeof msg);
    }
    /* Joined piece by piece so a long message is cut at a UTF-8 boundary. */
    size_t used = 0;
    if (what && what[0]) {
        pgetl__strlcpy_utf8(err->message, what, sizeof err->message);
        used = strlen(err->message);
        pgetl__strlcpy_utf8(err->message + used, ": ", sizeof err->message - used);
        used += strlen(err->message + used);
    }
    pgetl__strlcpy_utf8(err->message + used, msg, sizeof err->message - used);
    return err->code;
}
