/*
 * Fuzz target: the load reader (src/load/reader.c): compression detected by
 * content, gzip/zstd decompressed on the fly.
 *
 * Input: a mode byte and a seed for read sizes, then a payload. The mode
 * says what the file is made of:
 *   0 the payload as it is (raw bytes; may happen to start with a magic);
 *   1 the payload gzip-compressed here (zlib), possibly as two members;
 *   2 the payload zstd-compressed here, possibly as two frames;
 *   3/4 as 1/2, then cut short by a fuzz amount or with one byte flipped.
 * The file is written to a memfd and opened by path (/proc/self/fd/N), as
 * pgetl__reader_open opens a load's input, and read with arbitrary read
 * sizes. Invariants checked:
 *   - input that starts with neither magic comes back byte-identical;
 *   - a valid gzip/zstd stream (one or two members) comes back as exactly
 *     the payload it was made from;
 *   - any other input either reads to a clean end or fails with a PGETL_E*
 *     code and a non-empty message naming the file; a stream cut inside a
 *     member is an error, never a silent short read (when the cut removed
 *     any compressed byte, the output may not equal the payload);
 *     a gzip stream with one flipped bit reads either exactly the payload
 *     or fails (CRC-32 and length); zstd frames made here carry no
 *     checksum, so a flipped zstd byte is only required not to crash.
 */
#define _GNU_SOURCE
#include "fuzz_util.h"
#include "load/load_int.h"

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define MAX_OUT (1u << 20)

static size_t gzip_into(const uint8_t *p, size_t n, uint8_t *dst, size_t cap, int level) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (Bytef *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    FUZZ_CHECK(rc == Z_STREAM_END, "deflate: %d", rc);
    size_t out = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static size_t zstd_into(const uint8_t *p, size_t n, uint8_t *dst, size_t cap, int level) {
    size_t r = ZSTD_compress(dst, cap, p, n, level);
    FUZZ_CHECK(!ZSTD_isError(r), "ZSTD_compress: %s", ZSTD_getErrorName(r));
    return r;
}

/* Writes the file into a fresh memfd; returns its descriptor. */
static int memfile(const uint8_t *p, size_t n) {
    int fd = memfd_create("fuzz_reader", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        FUZZ_CHECK(w > 0, "write failed");
        off += (size_t)w;
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    uint32_t seed = fuzz_u32(&in) | 1;
    uint16_t cut = fuzz_u16(&in);
    const uint8_t *payload = in.p;
    size_t plen = in.n;
    int kind = mode % 5;
    bool two = (mode & 0x10) != 0;                  /* two members / frames               */
    int level = 1 + (mode >> 5);                    /* 1-8                                */
    size_t split = two && plen ? cut % plen : plen; /* first member's share */

    size_t fcap = 2 * plen + 1024;
    uint8_t *file = malloc(fcap);
    size_t flen = 0;
    bool valid = false;
    if (kind == 0) {
        memcpy(file, payload, plen);
        flen = plen;
    } else {
        bool gz = kind == 1 || kind == 3;
        size_t (*comp)(const uint8_t *, size_t, uint8_t *, size_t, int) =
            gz ? gzip_into : zstd_into;
        flen = comp(payload, split, file, fcap, level);
        if (two)
            flen += comp(payload + split, plen - split, file + flen, fcap - flen, level);
        valid = kind <= 2;
        if (!valid) {
            if (cut & 0x8000) { /* flip a byte */
                file[(cut & 0x7fff) % flen] ^= (uint8_t)(1u << (seed % 8));
            } else {
                flen -= 1 + (cut % flen); /* drop 1..flen bytes from the end */
            }
        }
    }

    int fd = memfile(file, flen);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    pgetl_reader *r = NULL;
    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_code rc = pgetl__reader_open(path, &r, &err);
    FUZZ_CHECK(rc == PGETL_OK, "open failed: %s", err.message);
    FUZZ_CHECK(pgetl__reader_size(r) == (int64_t)flen, "size %lld, file %zu",
               (long long)pgetl__reader_size(r), flen);

    pgetl_reader_compression comp = pgetl__reader_compression(r);
    bool gz_magic = flen >= 2 && file[0] == 0x1f && file[1] == 0x8b;
    bool zs_magic = flen >= 4 && memcmp(file, "\x28\xb5\x2f\xfd", 4) == 0;
    FUZZ_CHECK(comp == (gz_magic   ? PGETL_READER_GZIP
                        : zs_magic ? PGETL_READER_ZSTD
                                   : PGETL_READER_PLAIN),
               "compression %d for magic %d/%d", (int)comp, gz_magic, zs_magic);

    uint8_t *out = malloc(MAX_OUT);
    size_t olen = 0;
    bool failed = false;
    for (;;) {
        size_t cap = 1 + fuzz_rand(&seed) % 9000;
        if (cap > MAX_OUT - olen)
            cap = MAX_OUT - olen;
        if (cap == 0)
            break;               /* a decompression bomb of a valid-looking stream: enough */
        char *dst = malloc(cap); /* exact size: ASan sees a write past cap */
        size_t got = 0;
        pgetl_error_init(&err);
        rc = pgetl__reader_read(r, dst, cap, &got, &err);
        if (rc != PGETL_OK) {
            free(dst);
            FUZZ_CHECK(rc == PGETL_EDATA || rc == PGETL_EIO, "read code %d", (int)rc);
            FUZZ_CHECK(err.code == rc && err.message[0], "error without a message");
            FUZZ_CHECK(strstr(err.message, path) != NULL, "message does not name the file: %s",
                       err.message);
            failed = true;
            break;
        }
        FUZZ_CHECK(got <= cap, "read %zu into %zu", got, cap);
        memcpy(out + olen, dst, got);
        free(dst);
        olen += got;
        if (got == 0)
            break;
    }
    FUZZ_CHECK(pgetl__reader_bytes_in(r) <= (int64_t)flen, "bytes_in past the file");

    if (comp == PGETL_READER_PLAIN) {
        FUZZ_CHECK(!failed, "plain read failed: %s", err.message);
        FUZZ_CHECK(olen == flen && memcmp(out, file, flen) == 0,
                   "plain input changed: %zu of %zu bytes", olen, flen);
        FUZZ_CHECK(pgetl__reader_bytes_in(r) == (int64_t)flen, "bytes_in %lld of %zu",
                   (long long)pgetl__reader_bytes_in(r), flen);
    } else if (valid) {
        FUZZ_CHECK(!failed, "valid %s stream refused: %s", kind == 1 ? "gzip" : "zstd",
                   err.message);
        FUZZ_CHECK(olen == plen && memcmp(out, payload, plen) == 0,
                   "decompressed %zu bytes, payload %zu", olen, plen);
    } else if (kind == 3 && (cut & 0x8000) && !failed) {
        /* gzip's CRC-32 and length catch any one flipped bit in the data; a clean read of
         * a flipped gzip stream (an OS or time byte, a text flag) must give the payload. */
        FUZZ_CHECK(olen == plen && memcmp(out, payload, plen) == 0,
                   "flipped gzip stream read as %zu other bytes without an error (payload %zu)",
                   olen, plen);
    } else if (kind >= 3 && !(cut & 0x8000) && !failed) {
        /*
         * A stream cut short read cleanly to its end: only possible when the
         * cut fell exactly between two complete members (then the output is
         * the first member's payload, which must then be exact).
         */
        FUZZ_CHECK(two && olen == split && memcmp(out, payload, split) == 0,
                   "truncated stream read as %zu bytes without an error (payload %zu)", olen, plen);
    }
    pgetl__reader_close(r);
    close(fd);
    free(out);
    free(file);
    return 0;
}
