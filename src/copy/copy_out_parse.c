/*
 * Parser of the binary COPY stream (COPY ... TO STDOUT (FORMAT binary)):
 *
 *   header:  "PGCOPY\n\377\r\n\0", int32 flags, int32 extension length, extension
 *   tuple:   int16 field count, then per field int32 length (-1 = NULL) and bytes
 *   trailer: int16 -1
 *
 * All integers are big-endian. libpq hands us one CopyData message at a time
 * (the server sends one tuple per message, the header riding with the first),
 * but nothing here relies on that: an item split across chunks is carried in
 * `pending` and completed from the next chunk, so the common case parses in
 * place with no copy. Every length is checked against what is present before
 * it is used; the server is untrusted input.
 */
#include "copy/copy_out.h"

#include <stdio.h>

enum { ST_HEADER = 0, ST_TUPLES, ST_DONE };

static const uint8_t SIGNATURE[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0};
#define HEADER_FIXED 19 /* signature + flags + extension length */

static inline int16_t be16s(const uint8_t *p) {
    return (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
}

pgetl_code pgetl__copyout_init(pgetl_copyout_parser *p, int nfields, pgetl_error *err) {
    memset(p, 0, sizeof *p);
    pgetl__buf_init(&p->pending);
    if (nfields < 0 || nfields > 1664 /* MaxTupleAttributeNumber */)
        return pgetl_error_set(err, PGETL_EINVAL, "COPY parser: bad field count %d", nfields);
    p->nfields = nfields;
    p->fields = pgetl__calloc((size_t)nfields + 1, sizeof *p->fields);
    if (!p->fields)
        return pgetl__error_oom(err, "COPY parser");
    return PGETL_OK;
}

void pgetl__copyout_reset(pgetl_copyout_parser *p) {
    pgetl__free(p->fields);
    pgetl__buf_reset(&p->pending);
    memset(p, 0, sizeof *p);
}

static pgetl_code bad(pgetl_copyout_parser *p, pgetl_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pgetl_code bad(pgetl_copyout_parser *p, pgetl_error *err, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return pgetl_error_set(err, PGETL_EDATA, "invalid binary COPY data at byte %lld: %s",
                           (long long)(p->offset + (int64_t)p->pos), what);
}

pgetl_code pgetl__copyout_push(pgetl_copyout_parser *p, const void *data, size_t len,
                               pgetl_error *err) {
    if (p->view && p->pos < p->view_len)
        return pgetl_error_set(err, PGETL_ESTATE,
                               "COPY parser: chunk pushed before the last "
                               "one was consumed");
    if (p->view)
        p->offset += (int64_t)p->pos;
    p->view = NULL;
    p->view_len = 0;
    p->pos = 0;
    if (p->state == ST_DONE && len > 0)
        return bad(p, err, "%zu bytes after the end-of-data marker", len);
    if (p->pending.len > 0) {
        /* Finish the split item in pending; the rest of the chunk parses from there too. */
        if (pgetl__buf_append(&p->pending, data, len) != PGETL_OK)
            return pgetl__error_oom(err, "COPY parser");
        p->view = (const uint8_t *)p->pending.data;
        p->view_len = p->pending.len;
    } else {
        p->view = data;
        p->view_len = len;
    }
    return PGETL_OK;
}

/* Keeps the unparsed tail for the next chunk; the current chunk may then be freed. */
static pgetl_code carry(pgetl_copyout_parser *p, pgetl_error *err) {
    size_t rest = p->view_len - p->pos;
    const uint8_t *tail = p->view + p->pos;
    /* offset becomes the stream position of pending's first byte. */
    p->offset += (int64_t)p->pos;
    if (p->view == (const uint8_t *)p->pending.data) {
        memmove(p->pending.data, tail, rest);
        p->pending.len = rest;
    } else {
        p->pending.len = 0;
        if (rest && pgetl__buf_append(&p->pending, tail, rest) != PGETL_OK)
            return pgetl__error_oom(err, "COPY parser");
    }
    p->view = NULL;
    p->view_len = 0;
    p->pos = 0;
    return PGETL_OK;
}

/* Parses the header at pos. Returns 1 when parsed, 0 when incomplete, -1 on error. */
static int parse_header(pgetl_copyout_parser *p, pgetl_error *err) {
    const uint8_t *s = p->view + p->pos;
    size_t avail = p->view_len - p->pos;
    /* Check what is there of the signature now, so garbage fails at once. */
    size_t n = avail < sizeof SIGNATURE ? avail : sizeof SIGNATURE;
    if (memcmp(s, SIGNATURE, n) != 0) {
        bad(p, err, "bad signature (not a binary COPY stream)");
        return -1;
    }
    if (avail < HEADER_FIXED)
        return 0;
    uint32_t flags = pgetl__get_be32(s + 11);
    if (flags & (1u << 16)) {
        bad(p, err, "header has the WITH OIDS flag, which pgetl does not read");
        return -1;
    }
    if (flags >> 17) {
        bad(p, err, "unrecognized critical flags 0x%08x in header", (unsigned)flags);
        return -1;
    }
    uint32_t ext = pgetl__get_be32(s + 15);
    if (ext > PGETL_COPYOUT_MAX_FIELD) {
        bad(p, err, "bad header extension length %lld", (long long)(int32_t)ext);
        return -1;
    }
    if (avail - HEADER_FIXED < ext)
        return 0;
    p->pos += HEADER_FIXED + ext;
    p->state = ST_TUPLES;
    return 1;
}

/*
 * Parses one tuple (or the trailer) at pos. Returns 1 for a tuple, 2 for the
 * trailer, 0 when incomplete, -1 on error. Fields are filled as we go; an
 * incomplete tuple is simply parsed again once more bytes arrive.
 */
static int parse_tuple(pgetl_copyout_parser *p, pgetl_error *err) {
    const uint8_t *s = p->view + p->pos;
    size_t avail = p->view_len - p->pos;
    if (avail < 2)
        return 0;
    int16_t count = be16s(s);
    if (count == -1) {
        p->pos += 2;
        p->state = ST_DONE;
        return 2;
    }
    if (count != p->nfields) {
        bad(p, err, "tuple %lld has %d fields, expected %d", (long long)p->rows + 1, count,
            p->nfields);
        return -1;
    }
    size_t at = 2;
    for (int i = 0; i < p->nfields; i++) {
        if (avail - at < 4)
            return 0;
        int32_t len = (int32_t)pgetl__get_be32(s + at);
        at += 4;
        if (len == -1) {
            p->fields[i].data = NULL;
            p->fields[i].len = -1;
            continue;
        }
        if (len < 0 || len > PGETL_COPYOUT_MAX_FIELD) {
            p->pos += at - 4;
            bad(p, err, "tuple %lld field %d has invalid length %ld", (long long)p->rows + 1, i + 1,
                (long)len);
            return -1;
        }
        if (avail - at < (size_t)len)
            return 0;
        p->fields[i].data = s + at;
        p->fields[i].len = len;
        at += (size_t)len;
    }
    p->pos += at;
    p->rows++;
    return 1;
}

pgetl_code pgetl__copyout_next(pgetl_copyout_parser *p, pgetl_copyout_event *ev_out,
                               pgetl_error *err) {
    *ev_out = PGETL_COPYOUT_NEED_MORE;
    if (p->state == ST_DONE) {
        if (p->view && p->pos < p->view_len)
            return bad(p, err, "%zu bytes after the end-of-data marker", p->view_len - p->pos);
        *ev_out = PGETL_COPYOUT_END;
        return PGETL_OK;
    }
    if (!p->view)
        return PGETL_OK;
    if (p->state == ST_HEADER) {
        int r = parse_header(p, err);
        if (r < 0)
            return PGETL_EDATA;
        if (r == 0)
            return carry(p, err);
    }
    int r = parse_tuple(p, err);
    if (r < 0)
        return PGETL_EDATA;
    if (r == 0)
        return carry(p, err);
    if (r == 2)
        return pgetl__copyout_next(p, ev_out, err);
    *ev_out = PGETL_COPYOUT_ROW;
    return PGETL_OK;
}

pgetl_code pgetl__copyout_finish(pgetl_copyout_parser *p, pgetl_error *err) {
    /* When parsing from pending, its consumed bytes are behind pos, not left over. */
    size_t left = p->view ? p->view_len - p->pos : p->pending.len;
    if (p->state == ST_DONE) {
        if (left)
            return bad(p, err, "%zu bytes after the end-of-data marker", left);
        return PGETL_OK;
    }
    if (p->state == ST_HEADER)
        return bad(p, err, "stream ended inside the header (%zu bytes)", left);
    if (left)
        return bad(p, err, "stream ended inside tuple %lld (%zu bytes of it)",
                   (long long)p->rows + 1, left);
    return bad(p, err, "stream ended after %lld tuples without the end-of-data marker",
               (long long)p->rows);
}
