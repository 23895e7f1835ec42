/*
 * Output sink: plain, gzip or zstd, streaming. The compressors are driven in
 * their streaming modes so memory never depends on the output size. gzip
 * uses zlib's deflate with windowBits 15 + 16 (gzip wrapper) at level 6, the
 * gzip(1) default; zstd uses level 3, zstd(1)'s default: both are what a
 * user who compressed the file by hand would get.
 */
#include "load/sink.h"

#include <errno.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/*
 * Compressed output is collected in one block of this size before write():
 * 256 KiB keeps the syscall count low (a 1 GB export is ~4000 writes) while
 * staying far below the memory budget.
 */
#define PGETL_SINK_BLOCK (256 * 1024)

struct pgetl_sink {
    int fd;
    pgetl_compression comp;
    z_stream z;
    bool z_ready;
    ZSTD_CCtx *zc;
    unsigned char *block;
    int64_t written;
};

static pgetl_code write_all(pgetl_sink *s, const void *data, size_t n, pgetl_error *err) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return pgetl_error_set(err, PGETL_EIO, "writing the output failed: %s",
                                   strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        s->written += w;
    }
    return PGETL_OK;
}

pgetl_code pgetl__sink_create(int fd, pgetl_compression comp, pgetl_sink **sink_out,
                              pgetl_error *err) {
    *sink_out = NULL;
    if (fd < 0)
        return pgetl_error_set(err, PGETL_EINVAL, "export: bad output file descriptor %d", fd);
    if (comp != PGETL_COMPRESS_NONE && comp != PGETL_COMPRESS_GZIP && comp != PGETL_COMPRESS_ZSTD)
        return pgetl_error_set(err, PGETL_EINVAL, "export: unknown compression %d", (int)comp);
    pgetl_sink *s = pgetl__calloc(1, sizeof *s);
    if (!s)
        return pgetl__error_oom(err, "export sink");
    s->fd = fd;
    s->comp = comp;
    if (comp != PGETL_COMPRESS_NONE) {
        s->block = pgetl__malloc(PGETL_SINK_BLOCK);
        if (!s->block)
            goto oom;
    }
    if (comp == PGETL_COMPRESS_GZIP) {
        if (deflateInit2(&s->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            goto oom;
        s->z_ready = true;
    } else if (comp == PGETL_COMPRESS_ZSTD) {
        s->zc = ZSTD_createCCtx();
        if (!s->zc)
            goto oom;
        ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, 3);
    }
    *sink_out = s;
    return PGETL_OK;
oom:
    pgetl__sink_destroy(s);
    return pgetl__error_oom(err, "export compressor");
}

static pgetl_code gzip_run(pgetl_sink *s, const void *data, size_t n, int flush,
                           pgetl_error *err) {
    /* zlib counts in uInt; feed at most 1 GiB per round to stay in range. */
    const unsigned char *in = data;
    do {
        size_t take = n > (1u << 30) ? (1u << 30) : n;
        s->z.next_in = (Bytef *)(uintptr_t)in;
        s->z.avail_in = (uInt)take;
        int f = (take == n) ? flush : Z_NO_FLUSH;
        int zr;
        do {
            s->z.next_out = s->block;
            s->z.avail_out = PGETL_SINK_BLOCK;
            zr = deflate(&s->z, f);
            if (zr == Z_STREAM_ERROR)
                return pgetl_error_set(err, PGETL_EIO, "gzip compression failed");
            size_t have = PGETL_SINK_BLOCK - s->z.avail_out;
            pgetl_code rc = write_all(s, s->block, have, err);
            if (rc != PGETL_OK)
                return rc;
        } while (s->z.avail_out == 0 || (f == Z_FINISH && zr != Z_STREAM_END));
        in += take;
        n -= take;
    } while (n > 0);
    return PGETL_OK;
}

static pgetl_code zstd_run(pgetl_sink *s, const void *data, size_t n, ZSTD_EndDirective mode,
                           pgetl_error *err) {
    ZSTD_inBuffer in = {data, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {s->block, PGETL_SINK_BLOCK, 0};
        size_t left = ZSTD_compressStream2(s->zc, &out, &in, mode);
        if (ZSTD_isError(left))
            return pgetl_error_set(err, PGETL_EIO, "zstd compression failed: %s",
                                   ZSTD_getErrorName(left));
        pgetl_code rc = write_all(s, s->block, out.pos, err);
        if (rc != PGETL_OK)
            return rc;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return PGETL_OK;
    }
}

pgetl_code pgetl__sink_write(pgetl_sink *s, const void *data, size_t n, pgetl_error *err) {
    if (n == 0)
        return PGETL_OK;
    switch (s->comp) {
    case PGETL_COMPRESS_GZIP:
        return gzip_run(s, data, n, Z_NO_FLUSH, err);
    case PGETL_COMPRESS_ZSTD:
        return zstd_run(s, data, n, ZSTD_e_continue, err);
    case PGETL_COMPRESS_NONE:
        break;
    }
    return write_all(s, data, n, err);
}

pgetl_code pgetl__sink_finish(pgetl_sink *s, pgetl_error *err) {
    switch (s->comp) {
    case PGETL_COMPRESS_GZIP:
        return gzip_run(s, "", 0, Z_FINISH, err);
    case PGETL_COMPRESS_ZSTD:
        return zstd_run(s, "", 0, ZSTD_e_end, err);
    case PGETL_COMPRESS_NONE:
        break;
    }
    return PGETL_OK;
}

int64_t pgetl__sink_bytes_written(const pgetl_sink *s) {
    return s->written;
}

void pgetl__sink_destroy(pgetl_sink *s) {
    if (!s)
        return;
    if (s->z_ready)
        deflateEnd(&s->z);
    ZSTD_freeCCtx(s->zc);
    pgetl__free(s->block);
    pgetl__free(s);
}
