/* The input reader: plain, gzip and zstd by magic bytes, pipes, and broken inputs. */
#include "harness.h"

#include "load/load_int.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pgetl_test_reader.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Deterministic CSV-ish content of n bytes. */
static char *make_content(size_t n) {
    char *p = malloc(n);
    unsigned s = 7;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = (i % 40 == 39) ? '\n' : (char)('a' + (s >> 16) % 26);
    }
    return p;
}

static size_t gzip_bytes(const void *in, size_t n, unsigned char *out, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

/* Reads everything through the reader in odd-sized pieces. */
static pgetl_code read_all(pgetl_reader *r, char **out, size_t *len, pgetl_error *err) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - n < 70001) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t got;
        pgetl_code rc = pgetl__reader_read(r, buf + n, 70001, &got, err);
        if (rc != PGETL_OK) {
            free(buf);
            return rc;
        }
        if (got == 0)
            break;
        n += got;
    }
    *out = buf;
    *len = n;
    return PGETL_OK;
}

static void check_file(const char *path, const char *want, size_t want_len,
                       pgetl_reader_compression comp) {
    pgetl_reader *r;
    pgetl_error err;
    assert_pgetl_ok(pgetl__reader_open(path, &r, &err), &err);
    assert_int_equal(pgetl__reader_compression(r), comp);
    char *got;
    size_t n;
    assert_pgetl_ok(read_all(r, &got, &n, &err), &err);
    assert_int_equal(n, want_len);
    assert_memory_equal(got, want, want_len);
    if (want_len)
        assert_true(pgetl__reader_bytes_in(r) > 0);
    free(got);
    pgetl__reader_close(r);
}

static void plain_file(void **state) {
    (void)state;
    size_t n = 3 * 1024 * 1024 + 17;
    char *c = make_content(n);
    char path[512];
    snprintf(path, sizeof path, "%s/plain.csv", tmpdir);
    write_file(path, c, n);
    check_file(path, c, n, PGETL_READER_PLAIN);
    free(c);
}

static void gzip_by_magic_not_name(void **state) {
    (void)state;
    size_t n = 2 * 1024 * 1024 + 5;
    char *c = make_content(n);
    unsigned char *z = malloc(n + 1024);
    size_t zl = gzip_bytes(c, n, z, n + 1024);
    char path[512];
    snprintf(path, sizeof path, "%s/really_gzip.csv", tmpdir);
    write_file(path, z, zl);
    check_file(path, c, n, PGETL_READER_GZIP);
    /* Two concatenated members read as one stream, like gzip -d. */
    size_t zl2 = gzip_bytes(c, 1000, z + zl, 2000);
    snprintf(path, sizeof path, "%s/two_members.gz", tmpdir);
    write_file(path, z, zl + zl2);
    char *both = malloc(n + 1000);
    memcpy(both, c, n);
    memcpy(both + n, c, 1000);
    check_file(path, both, n + 1000, PGETL_READER_GZIP);
    free(both);
    free(z);
    free(c);
}

static void zstd_by_magic(void **state) {
    (void)state;
    size_t n = 2 * 1024 * 1024 + 99;
    char *c = make_content(n);
    size_t cap = ZSTD_compressBound(n);
    char *z = malloc(cap);
    size_t zl = ZSTD_compress(z, cap, c, n, 3);
    assert_false(ZSTD_isError(zl));
    char path[512];
    snprintf(path, sizeof path, "%s/data.bin", tmpdir);
    write_file(path, z, zl);
    check_file(path, c, n, PGETL_READER_ZSTD);
    free(z);
    free(c);
}

static void expect_read_error(const char *path, pgetl_code code, const char *text) {
    pgetl_reader *r;
    pgetl_error err;
    assert_pgetl_ok(pgetl__reader_open(path, &r, &err), &err);
    char *got = NULL;
    size_t n;
    assert_int_equal(read_all(r, &got, &n, &err), code);
    assert_non_null(strstr(err.message, text));
    assert_non_null(strstr(err.message, path));
    pgetl__reader_close(r);
}

static void truncated_gzip(void **state) {
    (void)state;
    size_t n = 500000;
    char *c = make_content(n);
    unsigned char *z = malloc(n + 1024);
    size_t zl = gzip_bytes(c, n, z, n + 1024);
    char path[512];
    snprintf(path, sizeof path, "%s/cut.csv.gz", tmpdir);
    write_file(path, z, zl / 2);
    expect_read_error(path, PGETL_EDATA, "truncated gzip");
    /* Only the trailer missing: still truncated (no silent prefix). */
    write_file(path, z, zl - 4);
    expect_read_error(path, PGETL_EDATA, "truncated gzip");
    /* Corrupt body. */
    for (size_t i = 100; i < 200; i++)
        z[i] ^= 0x5a;
    write_file(path, z, zl);
    expect_read_error(path, PGETL_EDATA, "gzip");
    free(z);
    free(c);
}

static void truncated_zstd(void **state) {
    (void)state;
    size_t n = 500000;
    char *c = make_content(n);
    size_t cap = ZSTD_compressBound(n);
    char *z = malloc(cap);
    size_t zl = ZSTD_compress(z, cap, c, n, 3);
    char path[512];
    snprintf(path, sizeof path, "%s/cut.zst", tmpdir);
    write_file(path, z, zl - 10);
    expect_read_error(path, PGETL_EDATA, "truncated zstd");
    free(z);
    free(c);
}

static void not_found_and_directory(void **state) {
    (void)state;
    pgetl_reader *r = NULL;
    pgetl_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/nope.csv", tmpdir);
    assert_int_equal(pgetl__reader_open(path, &r, &err), PGETL_ENOTFOUND);
    assert_null(r);
    assert_non_null(strstr(err.message, "nope.csv"));
    assert_int_equal(pgetl__reader_open(tmpdir, &r, &err), PGETL_EIO);
    assert_non_null(strstr(err.message, "is a directory"));
    assert_int_equal(pgetl__reader_open("", &r, &err), PGETL_EINVAL);
}

static void empty_and_tiny(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/empty.csv", tmpdir);
    write_file(path, "", 0);
    check_file(path, "", 0, PGETL_READER_PLAIN);
    /* One byte that starts like gzip magic is still plain. */
    snprintf(path, sizeof path, "%s/one.csv", tmpdir);
    write_file(path, "\x1f", 1);
    check_file(path, "\x1f", 1, PGETL_READER_PLAIN);
}

typedef struct pipe_job {
    int fd;
    const char *data;
    size_t n;
} pipe_job;

static void *pipe_writer(void *arg) {
    pipe_job *j = arg;
    size_t off = 0;
    while (off < j->n) {
        size_t k = j->n - off > 4093 ? 4093 : j->n - off;
        ssize_t w = write(j->fd, j->data + off, k);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(j->fd);
    return NULL;
}

static void pipe_gzip(void **state) {
    /* Compressed data trickling through a pipe: magic sniffing must wait for bytes. */
    (void)state;
    size_t n = 1500000;
    char *c = make_content(n);
    unsigned char *z = malloc(n + 1024);
    size_t zl = gzip_bytes(c, n, z, n + 1024);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pipe_job job = {fds[1], (const char *)z, zl};
    pthread_t t;
    pthread_create(&t, NULL, pipe_writer, &job);
    pgetl_reader *r;
    pgetl_error err;
    assert_pgetl_ok(pgetl__reader_open_fd(fds[0], "pipe", &r, &err), &err);
    assert_int_equal(pgetl__reader_compression(r), PGETL_READER_GZIP);
    assert_int_equal(pgetl__reader_size(r), -1);
    char *got;
    size_t len;
    assert_pgetl_ok(read_all(r, &got, &len, &err), &err);
    assert_int_equal(len, n);
    assert_memory_equal(got, c, n);
    free(got);
    pgetl__reader_close(r);
    pthread_join(t, NULL);
    close(fds[0]);
    free(z);
    free(c);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_file),     cmocka_unit_test(gzip_by_magic_not_name),
        cmocka_unit_test(zstd_by_magic),  cmocka_unit_test(truncated_gzip),
        cmocka_unit_test(truncated_zstd), cmocka_unit_test(not_found_and_directory),
        cmocka_unit_test(empty_and_tiny), cmocka_unit_test(pipe_gzip),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
