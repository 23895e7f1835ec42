/*
 * Input reader: a file or standard input, read in PGETL_LOAD_BLOCK blocks,
 * decompressed on the fly. The compression is recognised by the stream's
 * first bytes (gzip 1f 8b, zstd 28 b5 2f fd), never by the file name, so a
 * "data.csv" that is really gzip loads and a "data.gz" that is plain text
 * does too. Concatenated gzip members and zstd frames are read in sequence,
 * as gzip -d and zstd -d do. A stream that ends inside a member is
 * PGETL_EDATA: loading a truncated download must fail, not load a prefix.
 *
 * Memory: one raw block for compressed inputs plus the decompressor state
 * (zlib ~40 KiB, zstd up to its window, 8 MiB at most by default limits).
 */
#include "load/load_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

struct pgetl_reader {
    int fd;
    bool own_fd;
    pgetl_reader_compression comp;
    char name[256];
    int64_t size;     /* raw size for regular files, else -1 */
    int64_t bytes_in; /* raw bytes read from fd                */
    bool raw_eof;
    /* Raw input for the decompressors (and the sniffed prefix for plain files). */
    unsigned char *raw;
    size_t raw_len, raw_pos;
    z_stream z;
    bool z_ready;
    bool z_member_done; /* between gzip members: end of input is fine here */
    ZSTD_DCtx *zd;
    bool zstd_frame_done;
};

static pgetl_code read_raw(pgetl_reader *r, pgetl_error *err) {
    /* Refills r->raw from the descriptor; sets raw_eof at end of input. */
    if (r->raw_pos < r->raw_len && r->raw_pos > 0) {
        memmove(r->raw, r->raw + r->raw_pos, r->raw_len - r->raw_pos);
        r->raw_len -= r->raw_pos;
        r->raw_pos = 0;
    } else if (r->raw_pos >= r->raw_len) {
        r->raw_len = r->raw_pos = 0;
    }
    while (r->raw_len < PGETL_LOAD_BLOCK) {
        ssize_t n = read(r->fd, r->raw + r->raw_len, PGETL_LOAD_BLOCK - r->raw_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return pgetl_error_set(err, PGETL_EIO, "%s: read failed: %s", r->name, strerror(errno));
        }
        if (n == 0) {
            r->raw_eof = true;
            break;
        }
        r->raw_len += (size_t)n;
        r->bytes_in += n;
        /* A pipe delivers little at a time; one successful read is enough. */
        break;
    }
    return PGETL_OK;
}

static pgetl_code sniff(pgetl_reader *r, pgetl_error *err) {
    /* Read until at least 4 bytes or EOF so the magic check is reliable on pipes. */
    while (r->raw_len < 4 && !r->raw_eof) {
        pgetl_code rc = read_raw(r, err);
        if (rc != PGETL_OK)
            return rc;
    }
    const unsigned char *b = r->raw;
    if (r->raw_len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        r->comp = PGETL_READER_GZIP;
        memset(&r->z, 0, sizeof r->z);
        /* 15 + 32: zlib or gzip header, detected; gzip is what we saw. */
        if (inflateInit2(&r->z, 15 + 16) != Z_OK)
            return pgetl__error_oom(err, "gzip reader");
        r->z_ready = true;
    } else if (r->raw_len >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) {
        r->comp = PGETL_READER_ZSTD;
        r->zd = ZSTD_createDCtx();
        if (!r->zd)
            return pgetl__error_oom(err, "zstd reader");
    }
    return PGETL_OK;
}

static pgetl_code reader_new(int fd, bool own, const char *name, pgetl_reader **out,
                             pgetl_error *err) {
    pgetl_reader *r = pgetl__calloc(1, sizeof *r);
    if (!r) {
        if (own)
            close(fd);
        return pgetl__error_oom(err, "reader");
    }
    r->fd = fd;
    r->own_fd = own;
    r->size = -1;
    snprintf(r->name, sizeof r->name, "%s", name);
    struct stat st;
    if (fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            pgetl__reader_close(r);
            return pgetl_error_set(err, PGETL_EIO, "%s: is a directory, not a file", name);
        }
        if (S_ISREG(st.st_mode))
            r->size = (int64_t)st.st_size;
    }
    r->raw = pgetl__malloc(PGETL_LOAD_BLOCK);
    if (!r->raw) {
        pgetl__reader_close(r);
        return pgetl__error_oom(err, "reader block");
    }
    pgetl_code rc = sniff(r, err);
    if (rc != PGETL_OK) {
        pgetl__reader_close(r);
        return rc;
    }
    *out = r;
    return PGETL_OK;
}

pgetl_code pgetl__reader_open(const char *path, pgetl_reader **out, pgetl_error *err) {
    *out = NULL;
    if (!path || !path[0])
        return pgetl_error_set(err, PGETL_EINVAL, "input path is empty");
    if (strcmp(path, "-") == 0)
        return reader_new(STDIN_FILENO, false, "-", out, err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return pgetl_error_set(err, e == ENOENT ? PGETL_ENOTFOUND : PGETL_EIO,
                               "%s: cannot open: %s", path, strerror(e));
    }
    return reader_new(fd, true, path, out, err);
}

pgetl_code pgetl__reader_open_fd(int fd, const char *name, pgetl_reader **out, pgetl_error *err) {
    *out = NULL;
    if (fd < 0)
        return pgetl_error_set(err, PGETL_EINVAL, "%s: bad file descriptor", name);
    return reader_new(fd, false, name ? name : "(fd)", out, err);
}

static pgetl_code read_plain(pgetl_reader *r, char *dst, size_t cap, size_t *n_out,
                             pgetl_error *err) {
    /* The sniffed prefix first, then straight from the descriptor. */
    if (r->raw_pos < r->raw_len) {
        size_t n = r->raw_len - r->raw_pos;
        if (n > cap)
            n = cap;
        memcpy(dst, r->raw + r->raw_pos, n);
        r->raw_pos += n;
        *n_out = n;
        return PGETL_OK;
    }
    for (;;) {
        ssize_t n = read(r->fd, dst, cap);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return pgetl_error_set(err, PGETL_EIO, "%s: read failed: %s", r->name, strerror(errno));
        }
        r->bytes_in += n;
        *n_out = (size_t)n;
        return PGETL_OK;
    }
}

static pgetl_code read_gzip(pgetl_reader *r, char *dst, size_t cap, size_t *n_out,
                            pgetl_error *err) {
    r->z.next_out = (Bytef *)dst;
    r->z.avail_out = (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap);
    while (r->z.avail_out == (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap)) {
        if (r->raw_pos >= r->raw_len) {
            if (r->raw_eof) {
                if (!r->z_member_done)
                    return pgetl_error_set(err, PGETL_EDATA,
                                           "%s: truncated gzip data (unexpected end of file)",
                                           r->name);
                break;
            }
            pgetl_code rc = read_raw(r, err);
            if (rc != PGETL_OK)
                return rc;
            continue;
        }
        if (r->z_member_done) {
            /* Another gzip member follows: a concatenated .gz, as gzip -d reads it. */
            if (inflateReset(&r->z) != Z_OK)
                return pgetl_error_set(err, PGETL_EDATA, "%s: corrupt gzip data", r->name);
            r->z_member_done = false;
        }
        r->z.next_in = r->raw + r->raw_pos;
        r->z.avail_in = (uInt)(r->raw_len - r->raw_pos);
        int zr = inflate(&r->z, Z_NO_FLUSH);
        r->raw_pos = r->raw_len - r->z.avail_in;
        if (zr == Z_STREAM_END) {
            r->z_member_done = true;
        } else if (zr == Z_BUF_ERROR) {
            /* No progress possible with this input: need more (handled above). */
            if (r->raw_pos < r->raw_len)
                return pgetl_error_set(err, PGETL_EDATA, "%s: corrupt gzip data", r->name);
        } else if (zr != Z_OK) {
            return pgetl_error_set(err, PGETL_EDATA, "%s: corrupt gzip data: %s", r->name,
                                   r->z.msg ? r->z.msg : "inflate failed");
        }
    }
    *n_out = cap - r->z.avail_out;
    return PGETL_OK;
}

static pgetl_code read_zstd(pgetl_reader *r, char *dst, size_t cap, size_t *n_out,
                            pgetl_error *err) {
    ZSTD_outBuffer out = {dst, cap, 0};
    while (out.pos == 0) {
        if (r->raw_pos >= r->raw_len) {
            if (r->raw_eof) {
                if (!r->zstd_frame_done)
                    return pgetl_error_set(err, PGETL_EDATA,
                                           "%s: truncated zstd data (unexpected end of file)",
                                           r->name);
                break;
            }
            pgetl_code rc = read_raw(r, err);
            if (rc != PGETL_OK)
                return rc;
            continue;
        }
        ZSTD_inBuffer in = {r->raw, r->raw_len, r->raw_pos};
        size_t zr = ZSTD_decompressStream(r->zd, &out, &in);
        r->raw_pos = in.pos;
        if (ZSTD_isError(zr))
            return pgetl_error_set(err, PGETL_EDATA, "%s: corrupt zstd data: %s", r->name,
                                   ZSTD_getErrorName(zr));
        /* 0 means a frame just ended; anything else means more of it is due. */
        r->zstd_frame_done = zr == 0;
    }
    *n_out = out.pos;
    return PGETL_OK;
}

pgetl_code pgetl__reader_read(pgetl_reader *r, char *dst, size_t cap, size_t *n_out,
                              pgetl_error *err) {
    *n_out = 0;
    if (cap == 0)
        return PGETL_OK;
    switch (r->comp) {
    case PGETL_READER_GZIP:
        return read_gzip(r, dst, cap, n_out, err);
    case PGETL_READER_ZSTD:
        return read_zstd(r, dst, cap, n_out, err);
    case PGETL_READER_PLAIN:
        break;
    }
    return read_plain(r, dst, cap, n_out, err);
}

int64_t pgetl__reader_bytes_in(const pgetl_reader *r) {
    return r ? r->bytes_in : 0;
}

int64_t pgetl__reader_size(const pgetl_reader *r) {
    return r ? r->size : -1;
}

pgetl_reader_compression pgetl__reader_compression(const pgetl_reader *r) {
    return r ? r->comp : PGETL_READER_PLAIN;
}

void pgetl__reader_close(pgetl_reader *r) {
    if (!r)
        return;
    if (r->z_ready)
        inflateEnd(&r->z);
    ZSTD_freeDCtx(r->zd);
    if (r->own_fd)
        close(r->fd);
    pgetl__free(r->raw);
    pgetl__free(r);
}
