/*
 * Transactions, "autocommit off" style: helpers call pgetl_begin() before
 * their first statement, so work happens inside a transaction the caller
 * ends. Nothing here commits on its own.
 */
#include "connect/connect.h"

pgetl_txn_state pgetl_conn_txn_state(const pgetl_conn *conn) {
    if (!conn || !conn->pg)
        return PGETL_TXN_UNKNOWN;
    switch (PQtransactionStatus(conn->pg)) {
    case PQTRANS_IDLE:
        return PGETL_TXN_IDLE;
    case PQTRANS_ACTIVE:
        return PGETL_TXN_ACTIVE;
    case PQTRANS_INTRANS:
        return PGETL_TXN_INTRANS;
    case PQTRANS_INERROR:
        return PGETL_TXN_INERROR;
    case PQTRANS_UNKNOWN:
        break;
    }
    return PGETL_TXN_UNKNOWN;
}

static pgetl_code check_conn(const pgetl_conn *conn, const char *what, pgetl_error *err) {
    if (!conn || !conn->pg)
        return pgetl_error_set(err, PGETL_EINVAL, "%s: connection is NULL", what);
    if (PQstatus(conn->pg) != CONNECTION_OK)
        return pgetl_error_set(err, PGETL_ECONNLOST, "%s: connection to the server lost", what);
    return PGETL_OK;
}

pgetl_code pgetl_begin(pgetl_conn *conn, pgetl_error *err) {
    pgetl_code rc = check_conn(conn, "BEGIN", err);
    if (rc != PGETL_OK)
        return rc;
    switch (PQtransactionStatus(conn->pg)) {
    case PQTRANS_IDLE:
        return pgetl__conn_exec_simple(conn, "BEGIN", err);
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        return PGETL_OK;
    case PQTRANS_ACTIVE:
        return pgetl_error_set(err, PGETL_ESTATE,
                               "BEGIN: the connection is busy (a command or COPY is running)");
    case PQTRANS_UNKNOWN:
        break;
    }
    return pgetl_error_set(err, PGETL_ECONNLOST, "BEGIN: connection to the server lost");
}

pgetl_code pgetl_commit(pgetl_conn *conn, pgetl_error *err) {
    pgetl_code rc = check_conn(conn, "COMMIT", err);
    if (rc != PGETL_OK)
        return rc;
    PGTransactionStatusType before = PQtransactionStatus(conn->pg);
    if (before == PQTRANS_IDLE)
        return PGETL_OK;
    if (before == PQTRANS_INERROR) {
        /* COMMIT of a failed transaction is a ROLLBACK: say so, don't pretend. */
        rc = pgetl__conn_exec_simple(conn, "ROLLBACK", err);
        if (rc != PGETL_OK)
            return rc;
        return pgetl_error_set(err, PGETL_ESTATE,
                               "COMMIT: the transaction had failed and was rolled back");
    }
    return pgetl__conn_exec_simple(conn, "COMMIT", err);
}

pgetl_code pgetl_rollback(pgetl_conn *conn, pgetl_error *err) {
    pgetl_code rc = check_conn(conn, "ROLLBACK", err);
    if (rc != PGETL_OK)
        return rc;
    if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
        return PGETL_OK;
    return pgetl__conn_exec_simple(conn, "ROLLBACK", err);
}
