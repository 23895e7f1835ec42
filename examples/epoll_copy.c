/*
 * epoll_copy: drives a whole COPY from an epoll loop with pgetl's
 * non-blocking API. The loop never blocks on the database: it queues rows
 * until the buffer is full, then waits on epoll for what pgetl asks for.
 *
 *   epoll_copy DSN TABLE NROWS [SNDBUF_BYTES]
 *
 * Creates TABLE (id bigint, name text) if needed, appends NROWS rows
 * (id = 1..NROWS, name = "row <id>" with a tab and a backslash mixed in, to
 * exercise escaping), commits, and prints "copied <n> rows" on stdout.
 * SNDBUF_BYTES, when given, shrinks the socket's send and receive buffers so
 * the kernel pushes back early and every "would block" path is taken.
 *
 * A stalled server never makes the socket ready, so each wait is bounded by
 * pgetl_async_copy_timeout_ms(): when it runs out the loop polls anyway, and
 * a poll past io_timeout_s fails with "io_timeout_s (N s) expired".
 */
#include <pgetl/pgetl.h>

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static int die(const char *what, const pgetl_error *err) {
    char buf[2048];
    fprintf(stderr, "epoll_copy: %s: %s\n", what, pgetl_error_format(err, buf, sizeof buf));
    return 1;
}

/* How long the server may stay silent while the COPY waits on it. */
#define IO_TIMEOUT_S 30.0

/*
 * Waits on epoll for the events pgetl asked for, at most timeout_ms (-1: no
 * bound is running, wait for the socket alone). Returns 0 when the socket is
 * ready or the time ran out (either way the caller polls next), -1 on error.
 */
static int wait_for(int ep, int fd, int want, int timeout_ms) {
    struct epoll_event ev = {.events = 0, .data.fd = fd};
    if (want & PGETL_WANT_READ)
        ev.events |= EPOLLIN;
    if (want & PGETL_WANT_WRITE)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0)
        return -1;
    struct epoll_event out;
    for (;;) {
        if (epoll_wait(ep, &out, 1, timeout_ms) >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: epoll_copy DSN TABLE NROWS [SNDBUF_BYTES]\n");
        return 2;
    }
    const char *table = argv[2];
    int64_t nrows = strtoll(argv[3], NULL, 10);
    int sockbuf = argc > 4 ? atoi(argv[4]) : 0;

    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = argv[1];
    cfg.io_timeout_s = IO_TIMEOUT_S;
    pgetl_error err;
    pgetl_conn *conn = NULL;
    if (pgetl_connect(&cfg, &conn, &err) != PGETL_OK)
        return die("connect", &err);

    char sql[512];
    pgetl_qualified_name qn;
    char quoted[300];
    if (pgetl_ident_parse(table, &qn, &err) != PGETL_OK)
        return die("table name", &err);
    pgetl_qualified_name_quote(&qn, quoted, sizeof quoted);
    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s (id bigint, name text)", quoted);
    if (pgetl_execute(conn, sql, 0, NULL, NULL, &err) != PGETL_OK)
        return die("create table", &err);

    int fd = pgetl_async_socket(conn);
    if (sockbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        perror("epoll_copy: epoll");
        return 1;
    }

    static const char *const columns[] = {"id", "name"};
    pgetl_async_copy_options opts;
    pgetl_async_copy_options_init(&opts);
    opts.columns = columns;
    opts.ncolumns = 2;
    opts.buffer_bytes = sockbuf > 0 ? 16384 : PGETL_ASYNC_COPY_BUFFER;
    pgetl_async_copy *op = NULL;
    if (pgetl_async_copy_start(conn, table, &opts, &op, &err) != PGETL_OK)
        return die("copy start", &err);

    int64_t next = 1, waits = 0, rows = 0;
    int want = PGETL_WANT_READ;
    bool polled = false; /* a poll since the last refused row: time to wait */
    pgetl_code rc = PGETL_OK;
    char id[32], name[64];
    const char *values[2] = {id, name};
    while (next <= nrows) {
        snprintf(id, sizeof id, "%" PRId64, next);
        snprintf(name, sizeof name, "row\t%" PRId64 "\\x", next);
        rc = pgetl_async_copy_write_row(op, values, NULL, &err);
        if (rc == PGETL_OK) {
            next++;
            polled = false;
            continue;
        }
        if (rc != PGETL_EAGAIN)
            break;
        /* Buffer full. If polling already made no room, wait for the socket. */
        if (polled) {
            waits++;
            if (wait_for(ep, fd, want, pgetl_async_copy_timeout_ms(op)) != 0) {
                rc = pgetl_error_set(&err, PGETL_EIO, "epoll wait failed");
                break;
            }
        }
        rc = pgetl_async_copy_poll(op, &want, NULL, &err);
        if (rc != PGETL_EAGAIN && rc != PGETL_OK)
            break;
        polled = true;
    }
    if (next > nrows)
        rc = pgetl_async_copy_end(op, &err);
    while (rc == PGETL_OK || rc == PGETL_EAGAIN) {
        rc = pgetl_async_copy_poll(op, &want, &rows, &err);
        if (rc != PGETL_EAGAIN)
            break;
        waits++;
        if (wait_for(ep, fd, want, pgetl_async_copy_timeout_ms(op)) != 0) {
            rc = PGETL_EIO;
            pgetl_error_set(&err, PGETL_EIO, "epoll wait failed");
            break;
        }
    }
    pgetl_async_copy_destroy(op);
    if (rc != PGETL_OK) {
        pgetl_rollback(conn, NULL);
        return die("copy", &err);
    }
    if (pgetl_commit(conn, &err) != PGETL_OK)
        return die("commit", &err);
    printf("copied %" PRId64 " rows (%" PRId64 " waits)\n", rows, waits);
    pgetl_conn_close(conn);
    return 0;
}
