/*
 * The process-wide default session (the spec's DatabaseConnection.get_instance,
 * get_db_connection and close_db_connection).
 *
 * Design note. One mutex guards the pointer to the current default session
 * and every session's reference count. The registry itself holds one
 * reference; each pgetl_default_session() call adds one. Closing detaches the
 * session from the registry first (so the next call creates a new one), then
 * closes its connection under the session's own mutex, which waits for a call
 * running on it to finish; handles still held then see PGETL_ECLOSED. Memory
 * goes with the last reference, so a close racing with users never frees a
 * session underneath them. Creation happens under the registry mutex: callers
 * arriving meanwhile wait for it rather than create a second one.
 */
#include "session/session_int.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pgetl_session *current;

pgetl_code pgetl_default_session(const pgetl_config *cfg, pgetl_session **session_out,
                                 pgetl_error *err) {
    if (!session_out)
        return pgetl_error_set(err, PGETL_EINVAL, "default session: session_out is NULL");
    *session_out = NULL;
    pthread_mutex_lock(&registry_mu);
    if (!current) {
        pgetl_session *s = NULL;
        pgetl_code rc = pgetl_session_create_global(cfg, &s, err);
        if (rc != PGETL_OK) {
            pthread_mutex_unlock(&registry_mu);
            return rc;
        }
        s->is_default = true;
        s->refs = 1; /* the registry's own */
        current = s;
    }
    current->refs++;
    *session_out = current;
    pthread_mutex_unlock(&registry_mu);
    return PGETL_OK;
}

void pgetl__default_session_unref(pgetl_session *s) {
    pthread_mutex_lock(&registry_mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&registry_mu);
    if (last)
        pgetl__session_free(s);
}

void pgetl_default_session_release(pgetl_session *s) {
    if (s && s->is_default)
        pgetl__default_session_unref(s);
}

void pgetl_default_session_close(void) {
    pthread_mutex_lock(&registry_mu);
    pgetl_session *s = current;
    current = NULL;
    pthread_mutex_unlock(&registry_mu);
    if (!s)
        return;
    /* Waits for a call in progress (the session mutex), then closes. A scope
     * still running on this thread makes close refuse; the last reference's
     * free closes it then. */
    pgetl_session_close(s, NULL);
    pgetl__default_session_unref(s);
}
