/*
 * pgetl_query_arrow against a fake server that speaks just enough of the
 * PostgreSQL protocol (startup, simple queries, Parse/Describe/Sync, COPY
 * OUT) and then sends hostile COPY data: a bad signature, a huge field
 * length, a short int4, truncated data, bytes after the trailer, an error
 * mid-COPY, and a socket closed mid-COPY. Each must end the stream with a
 * clear error, never a crash or a hang, and the stream must let go of the
 * connection cleanly. No database needed.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FAKE_MAX_CONNS 8

typedef struct fake fake;

/* One accepted connection, served on its own thread. */
typedef struct fake_conn {
    fake *f;
    int fd;
    pthread_t thread;
} fake_conn;

struct fake {
    char dir[64];
    int lfd;
    pthread_t thread;
    /* libpq 15's PQcancel opens a second connection and waits, without a
     * timeout, until the server closes it: a server that serves one
     * connection at a time deadlocks with a client cancelling a COPY. */
    fake_conn conns[FAKE_MAX_CONNS];
    int nconns;
    const uint8_t *copy; /* CopyData payload to send */
    size_t copy_len;
    int mode; /* 0: CopyDone, 1: ErrorResponse, 2: close the socket */
};

static void put_msg(int fd, char type, const void *payload, size_t len) {
    uint8_t hdr[5] = {(uint8_t)type};
    uint32_t n = (uint32_t)len + 4;
    hdr[1] = (uint8_t)(n >> 24);
    hdr[2] = (uint8_t)(n >> 16);
    hdr[3] = (uint8_t)(n >> 8);
    hdr[4] = (uint8_t)n;
    if (write(fd, hdr, 5) != 5 || (len && write(fd, payload, len) != (ssize_t)len))
        return;
}

static bool read_full(int fd, void *p, size_t n) {
    uint8_t *b = p;
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

static void ready(int fd) {
    put_msg(fd, 'Z', "T", 1);
}

/* Serves one client connection until it says goodbye (or the script closes it). */
static void serve(fake *f, int fd) {
    uint8_t lenb[4];
    if (!read_full(fd, lenb, 4))
        return;
    uint32_t len =
        (uint32_t)lenb[0] << 24 | (uint32_t)lenb[1] << 16 | (uint32_t)lenb[2] << 8 | lenb[3];
    /* Per connection: a cancel request is served while the main one runs. */
    static _Thread_local uint8_t buf[1 << 16];
    if (len < 8 || len > sizeof buf || !read_full(fd, buf, len - 4))
        return;
    if (len == 16)
        return; /* a CancelRequest: nothing to do here */
    put_msg(fd, 'R', "\0\0\0\0", 4);
    put_msg(fd, 'S', "client_encoding\0UTF8", 21);
    put_msg(fd, 'S',
            "server_version\0"
            "15.0",
            20);
    put_msg(fd, 'S', "integer_datetimes\0on", 21);
    put_msg(fd, 'K', "\0\0\0\1\0\0\0\2", 8);
    put_msg(fd, 'Z', "I", 1);
    for (;;) {
        uint8_t h[5];
        if (!read_full(fd, h, 5))
            return;
        uint32_t n = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
        if (n < 4 || n - 4 > sizeof buf - 1 || !read_full(fd, buf, n - 4))
            return;
        buf[n - 4] = 0;
        switch (h[0]) {
        case 'X':
            return;
        case 'P':
            put_msg(fd, '1', NULL, 0);
            break;
        case 'D': {
            put_msg(fd, 't', "\0\0", 2);
            /* One column "v" of type int4 (23). */
            static const uint8_t row[] = {0,    1,                /* one field                */
                                          'v',  0,                /* name                     */
                                          0,    0,    0,    0,    /* table OID                */
                                          0,    0,                /* column number            */
                                          0,    0,    0,    23,   /* type OID: int4           */
                                          0,    4,                /* type length              */
                                          0xFF, 0xFF, 0xFF, 0xFF, /* typmod -1                */
                                          0,    0};               /* format (text, in Describe) */
            put_msg(fd, 'T', row, sizeof row);
            break;
        }
        case 'S':
            ready(fd);
            break;
        case 'Q': {
            const char *q = (const char *)buf;
            if (strncmp(q, "COPY", 4) == 0) {
                static const uint8_t resp[] = {1, 0, 1, 0, 1};
                put_msg(fd, 'H', resp, sizeof resp);
                put_msg(fd, 'd', f->copy, f->copy_len);
                if (f->mode == 2) {
                    shutdown(fd, SHUT_RDWR); /* the caller closes fd */
                    return;
                }
                if (f->mode == 1) {
                    static const char e[] = "SERROR\0C22012\0Mboom from the fake server\0";
                    put_msg(fd, 'E', e, sizeof e);
                } else {
                    put_msg(fd, 'c', NULL, 0);
                    put_msg(fd, 'C', "COPY 1", 7);
                }
                ready(fd);
                break;
            }
            /* BEGIN, SAVEPOINT, ROLLBACK TO ...; RELEASE ...: one CommandComplete each. */
            for (const char *p = q; p && *p; p = strchr(p, ';')) {
                if (*p == ';')
                    p++;
                while (*p == ' ')
                    p++;
                put_msg(fd, 'C', "OK", 3);
            }
            ready(fd);
            break;
        }
        default:
            break;
        }
    }
}

static void *conn_main(void *arg) {
    fake_conn *c = arg;
    serve(c->f, c->fd);
    close(c->fd);
    return NULL;
}

static void *fake_main(void *arg) {
    fake *f = arg;
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        if (f->nconns == FAKE_MAX_CONNS) {
            close(fd);
            continue;
        }
        fake_conn *c = &f->conns[f->nconns];
        c->f = f;
        c->fd = fd;
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            close(fd);
            continue;
        }
        f->nconns++;
    }
}

static void fake_start(fake *f, const uint8_t *copy, size_t len, int mode) {
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pgetl-fake-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->copy = copy;
    f->copy_len = len;
    f->mode = mode;
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.s.PGSQL.5432", f->dir);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f) {
    shutdown(f->lfd, SHUT_RDWR);
    close(f->lfd);
    pthread_join(f->thread, NULL);
    /* The client has closed its connections by now, so each thread ends. */
    for (int i = 0; i < f->nconns; i++)
        pthread_join(f->conns[i].thread, NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/.s.PGSQL.5432", f->dir);
    unlink(path);
    rmdir(f->dir);
}

/* Runs the query against the fake; expects get_next to fail with `want` and `needle`. */
static void expect(const uint8_t *copy, size_t len, int mode, int want, const char *needle) {
    fake f;
    fake_start(&f, copy, len, mode);
    char dsn[160];
    snprintf(dsn, sizeof dsn, "host=%s port=5432 user=fake dbname=fake", f.dir);
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_connect(&cfg, &conn, &err), &err);
    struct ArrowArrayStream st;
    assert_pgetl_ok(pgetl_query_arrow(conn, "SELECT v FROM t", 0, NULL, &st, &err), &err);
    struct ArrowArray a;
    int rc = st.get_next(&st, &a);
    const char *msg = st.get_last_error(&st);
    if (rc != want || !msg || !strstr(msg, needle))
        fail_msg("want %d '%s', got %d '%s'", want, needle, rc, msg ? msg : "(null)");
    assert_null(a.release);
    assert_int_equal(st.get_next(&st, &a), want);
    st.release(&st);
    pgetl_conn_close(conn);
    fake_stop(&f);
}

/* A binary COPY stream: header, then `body`, as one CopyData message. */
static size_t stream(uint8_t *out, const void *body, size_t n) {
    memcpy(out, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
    memcpy(out + 19, body, n);
    return 19 + n;
}

static void good_row_then_trailer(void **state) {
    (void)state;
    /* The fake itself works: one int4 row, then the trailer. */
    uint8_t b[64];
    size_t n = stream(b, "\0\1\0\0\0\4\0\0\0\x2a\xff\xff", 12);
    fake f;
    fake_start(&f, b, n, 0);
    char dsn[160];
    snprintf(dsn, sizeof dsn, "host=%s port=5432 user=fake dbname=fake", f.dir);
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = dsn;
    pgetl_conn *conn = NULL;
    pgetl_error err;
    assert_pgetl_ok(pgetl_connect(&cfg, &conn, &err), &err);
    struct ArrowArrayStream st;
    assert_pgetl_ok(pgetl_query_arrow(conn, "SELECT v FROM t", 0, NULL, &st, &err), &err);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    assert_int_equal(a.length, 1);
    assert_int_equal(((const int32_t *)a.children[0]->buffers[1])[0], 42);
    a.release(&a);
    assert_int_equal(st.get_next(&st, &a), 0);
    assert_null(a.release);
    st.release(&st);
    pgetl_conn_close(conn);
    fake_stop(&f);
}

static void wire_bad_signature(void **state) {
    (void)state;
    const uint8_t b[] = "PGCOPX\n\377\r\n\0\0\0\0\0\0\0\0\0\xff\xff";
    expect(b, sizeof b - 1, 0, EINVAL, "bad signature");
}

static void wire_huge_length(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\0\1\x7f\xff\xff\xff", 6);
    expect(b, n, 0, EINVAL, "tuple 1 field 1 has invalid length 2147483647");
}

static void wire_short_int4(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\0\1\0\0\0\3abc\xff\xff", 11);
    expect(b, n, 0, EINVAL, "column \"v\" (row 1): int4 value has 3 bytes, expected 4");
}

static void wire_field_count(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\0\2\0\0\0\4\0\0\0\1\0\0\0\4\0\0\0\1\xff\xff", 20);
    expect(b, n, 0, EINVAL, "tuple 1 has 2 fields, expected 1");
}

static void wire_truncated(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\0\1\0\0\0\4\0\0", 8);
    expect(b, n, 0, EINVAL, "stream ended inside tuple 1");
}

static void wire_no_trailer(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\0\1\0\0\0\4\0\0\0\1", 10);
    expect(b, n, 0, EINVAL, "after 1 tuples without the end-of-data marker");
}

static void wire_garbage_after_trailer(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\xff\xffjunk", 6);
    expect(b, n, 0, EINVAL, "4 bytes after the end-of-data marker");
}

static void wire_error_mid_copy(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\0\1\0\0\0\4\0\0\0\1", 10);
    expect(b, n, 1, EIO, "boom from the fake server [SQLSTATE 22012]");
}

static void wire_closed_mid_copy(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = stream(b, "\0\1\0\0\0\4\0\0\0\1", 10);
    expect(b, n, 2, EIO, "query_arrow");
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_row_then_trailer), cmocka_unit_test(wire_bad_signature),
        cmocka_unit_test(wire_huge_length),      cmocka_unit_test(wire_short_int4),
        cmocka_unit_test(wire_field_count),      cmocka_unit_test(wire_truncated),
        cmocka_unit_test(wire_no_trailer),       cmocka_unit_test(wire_garbage_after_trailer),
        cmocka_unit_test(wire_error_mid_copy),   cmocka_unit_test(wire_closed_mid_copy),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
