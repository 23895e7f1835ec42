/*
 * Opening, describing and closing connections. Pooled and standalone
 * connections share this code; the pool adds its bookkeeping on top.
 */
#include "connect/connect.h"

#include <stdio.h>

/* Whole seconds, rounded up, at least `min` (libpq's keepalive keywords take seconds). */
static void fmt_secs(char *buf, size_t size, double s, int min) {
    int secs = (int)s;
    if (secs < s)
        secs++;
    snprintf(buf, size, "%d", secs < min ? min : secs);
}

pgetl_code pgetl__conn_open(const char *dsn, const pgetl_config *cfg, PGconn **pg_out,
                            pgetl_error *err) {
    *pg_out = NULL;
    /* libpq takes whole seconds and treats 1 as 2; round up, at least 2. */
    char timeout[32] = "", user_to[32] = "", ka_idle[32] = "", ka_intvl[32] = "";
    if (cfg && cfg->connect_timeout_s > 0)
        fmt_secs(timeout, sizeof timeout, cfg->connect_timeout_s, 2);
    if (cfg && cfg->tcp_user_timeout_s > 0)
        snprintf(user_to, sizeof user_to, "%.0f", cfg->tcp_user_timeout_s * 1000.0);
    if (cfg && cfg->keepalives_idle_s > 0) {
        fmt_secs(ka_idle, sizeof ka_idle, cfg->keepalives_idle_s, 1);
        fmt_secs(ka_intvl, sizeof ka_intvl, cfg->keepalives_idle_s / 3, 1);
    }
    const char *app = cfg && cfg->application_name ? cfg->application_name : "pgetl";
    /* expand_dbname: the DSN itself may be a URI or key=value string. Later
     * keywords do not override what the DSN sets, because they come as
     * fallbacks (fallback_application_name) or only when set. */
    const char *keys[10];
    const char *vals[10];
    int n = 0;
    keys[n] = "dbname";
    vals[n++] = dsn ? dsn : "";
    keys[n] = "fallback_application_name";
    vals[n++] = app;
    if (timeout[0]) {
        keys[n] = "connect_timeout";
        vals[n++] = timeout;
    }
    if (user_to[0]) {
        keys[n] = "tcp_user_timeout";
        vals[n++] = user_to;
    }
    if (ka_idle[0]) {
        keys[n] = "keepalives";
        vals[n++] = "1";
        keys[n] = "keepalives_idle";
        vals[n++] = ka_idle;
        keys[n] = "keepalives_interval";
        vals[n++] = ka_intvl;
        keys[n] = "keepalives_count";
        vals[n++] = "3";
    }
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg)
        return pgetl__error_oom(err, "connect");
    if (PQstatus(pg) != CONNECTION_OK) {
        pgetl__error_from_pg(err, NULL, pg, NULL);
        if (err) {
            /* libpq may echo pieces of a malformed DSN; mask its secrets. */
            char clean[PGETL_ERROR_MESSAGE_SIZE];
            pgetl__dsn_scrub(dsn, err->message, clean, sizeof clean);
            pgetl_error_set(err, PGETL_ECONNECT, "could not connect: %s", clean);
            /* libpq says only "timeout expired": name the bound that expired. */
            if (timeout[0] && strstr(err->message, "timeout expired"))
                pgetl_error_prefix(err, "connect_timeout_s (%g s, libpq rounds to %s s): ",
                                   cfg->connect_timeout_s, timeout);
        }
        PQfinish(pg);
        return PGETL_ECONNECT;
    }
    if (cfg)
        pgetl__conn_watch(pg, cfg);
    if (cfg && cfg->statement_timeout_s > 0) {
        char sql[64];
        double ms = cfg->statement_timeout_s * 1000.0;
        snprintf(sql, sizeof sql, "SET statement_timeout = %.0f", ms < 1 ? 1.0 : ms);
        PGresult *res = PQexec(pg, sql);
        pgetl_code rc = PGETL_OK;
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = pgetl__error_from_pg(err, res, pg, "could not set statement_timeout");
            if (err)
                err->code = PGETL_ECONNECT;
            rc = PGETL_ECONNECT;
        }
        PQclear(res);
        if (rc != PGETL_OK) {
            pgetl__conn_finish(pg);
            return rc;
        }
    }
    *pg_out = pg;
    return PGETL_OK;
}

bool pgetl__conn_log_notice(const PGresult *res) {
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    bool fatal = sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
    pgetl_log_level level =
        fatal || (sev && strcmp(sev, "WARNING") == 0) ? PGETL_LOG_WARN : PGETL_LOG_INFO;
    pgetl_logline l;
    if (pgetl__log_begin(&l, level, "server_notice")) {
        pgetl__log_str(&l, "severity", sev ? sev : "");
        pgetl__log_str(&l, "sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE));
        pgetl__log_str(&l, "msg", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        pgetl__log_end(&l);
    }
    return fatal;
}

/* libpq's default receiver prints to stderr; ours goes through the log callback. */
static void notice_receiver(void *arg, const PGresult *res) {
    (void)arg;
    pgetl__conn_log_notice(res);
}

pgetl_code pgetl_connect(const pgetl_config *cfg, pgetl_conn **conn_out, pgetl_error *err) {
    pgetl_config defaults;
    if (!cfg) {
        pgetl_config_init(&defaults);
        cfg = &defaults;
    }
    if (!conn_out)
        return pgetl_error_set(err, PGETL_EINVAL, "pgetl_connect: conn_out is NULL");
    *conn_out = NULL;
    pgetl_code rc = pgetl_config_validate(cfg, err);
    if (rc != PGETL_OK)
        return rc;
    pgetl_conn *conn = pgetl__calloc(1, sizeof *conn);
    if (!conn)
        return pgetl__error_oom(err, "pgetl_connect");
    rc = pgetl__conn_open(pgetl_config_dsn(cfg), cfg, &conn->pg, err);
    if (rc != PGETL_OK) {
        pgetl__free(conn);
        return rc;
    }
    PQsetNoticeReceiver(conn->pg, notice_receiver, NULL);
    *conn_out = conn;
    return PGETL_OK;
}

void pgetl_conn_close(pgetl_conn *conn) {
    if (!conn)
        return;
    if (conn->pool) {
        /* A pooled connection goes back to its pool, never closed under it. */
        pgetl_release_connection(conn);
        return;
    }
    pgetl__conn_run_detach(conn);
    pgetl__conn_finish(conn->pg);
    pgetl__free(conn);
}

PGconn *pgetl__conn_pg(pgetl_conn *conn) {
    return conn ? conn->pg : NULL;
}

PGconn *pgetl_conn_pg(pgetl_conn *conn);
PGETL_API PGconn *pgetl_conn_pg(pgetl_conn *conn) {
    return pgetl__conn_pg(conn);
}

void pgetl__conn_set_detach(pgetl_conn *conn, void (*detach)(void *), void *arg) {
    conn->detach = detach;
    conn->detach_arg = arg;
}

void pgetl__conn_run_detach(pgetl_conn *conn) {
    void (*fn)(void *) = conn->detach;
    void *arg = conn->detach_arg;
    conn->detach = NULL;
    conn->detach_arg = NULL;
    if (fn)
        fn(arg);
}

pgetl_code pgetl__conn_exec_simple(pgetl_conn *conn, const char *sql, pgetl_error *err) {
    pgetl__conn_wait_begin(conn->pg);
    PGresult *res = PQexec(conn->pg, sql);
    pgetl__conn_wait_end(conn->pg);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return PGETL_OK;
    }
    pgetl_code rc = res ? pgetl__error_from_pg(err, res, conn->pg, sql)
                        : pgetl__error_oom(err, sql);
    PQclear(res);
    return rc;
}

static void copy_str(char *dst, size_t size, const char *src) {
    pgetl__strlcpy_utf8(dst, src ? src : "", size);
}

void pgetl_conn_get_info(const pgetl_conn *conn, pgetl_conn_info *info) {
    memset(info, 0, sizeof *info);
    if (!conn || !conn->pg)
        return;
    PGconn *pg = conn->pg;
    info->server_version = PQserverVersion(pg);
    copy_str(info->host, sizeof info->host, PQhost(pg));
    copy_str(info->port, sizeof info->port, PQport(pg));
    copy_str(info->database, sizeof info->database, PQdb(pg));
    copy_str(info->user, sizeof info->user, PQuser(pg));
    info->tls = PQsslInUse(pg);
    if (info->tls) {
        copy_str(info->tls_version, sizeof info->tls_version, PQsslAttribute(pg, "protocol"));
        copy_str(info->tls_cipher, sizeof info->tls_cipher, PQsslAttribute(pg, "cipher"));
    }
}
