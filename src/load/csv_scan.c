/*
 * Quote-aware row boundaries and field splitting, on buffers only (no I/O),
 * following PostgreSQL's COPY reader (copyfromparse.c) so that a batch cut
 * here is cut where the server would see a row end:
 *
 * - CSV: a quote character toggles "inside quotes" wherever it appears (not
 *   only at a field start); inside quotes, escape+quote and escape+escape
 *   are literal pairs (with escape == quote this is the "" rule); a newline
 *   inside quotes is data. A row ends at the first newline outside quotes.
 * - text: a backslash escapes the byte after it, even a newline; a row ends
 *   at the first unescaped newline.
 *
 * Speed: text format and CSV whose escape is its quote (nearly all input)
 * go through a block scanner where the CPU has SSE2, 64 bytes per step
 * whatever the quoting. Elsewhere, rows without quotes cost two memchr
 * calls (the newline, then a quote/backslash check on the row) and one
 * delimiter count eight bytes at a time; inside quotes, memchr jumps to the
 * next quote; only CSV rows holding a distinct escape character are walked
 * byte by byte.
 *
 * The scanner also counts line breaks inside quotes (nlines, ncr):
 * they move COPY's line count away from the row count (copy/lines.c).
 */
#include "load/load_int.h"

/*
 * Bytes equal to c in [p, end), eight at a time: a byte loop is only
 * vectorised at -O3, and the default build is -O2. In x = w ^ pattern a
 * byte is zero exactly where w holds c; ((x & 0x7f..) + 0x7f..) | x sets
 * the high bit of every nonzero byte without carrying into the next, so
 * its complement marks exactly the matches, one high bit each, and a
 * multiply sums them.
 */
static int64_t count_byte(const char *p, const char *end, char c) {
    const uint64_t ones = 0x0101010101010101u, low7 = 0x7f7f7f7f7f7f7f7fu;
    const uint64_t pattern = ones * (unsigned char)c;
    int64_t n = 0;
    for (; end - p >= 8; p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t x = w ^ pattern;
        uint64_t hits = ~(((x & low7) + low7) | x | low7);
        n += (int64_t)(((hits >> 7) * ones) >> 56);
    }
    for (; p < end; p++)
        n += *p == c;
    return n;
}

static bool scan_csv(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p, size_t n,
                     size_t *row_len) {
    const char *end = p + n;
    const char *s = p + st->pos;
    for (;;) {
        if (!st->in_quote) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            const char *stop = nl ? nl : end;
            const char *q = memchr(s, d->quote, (size_t)(stop - s));
            if (!q) {
                st->nfields += count_byte(s, stop, d->delim);
                if (!nl) {
                    st->pos = n;
                    return false;
                }
                *row_len = (size_t)(nl + 1 - p);
                st->pos = *row_len;
                return true;
            }
            st->nfields += count_byte(s, q, d->delim);
            st->in_quote = true;
            s = q + 1;
            continue;
        }
        if (d->escape == d->quote) {
            /* Doubled quotes need no special case: they close and reopen. */
            const char *q = memchr(s, d->quote, (size_t)(end - s));
            const char *stop = q ? q : end;
            st->nlines += count_byte(s, stop, '\n');
            st->ncr += count_byte(s, stop, '\r');
            if (!q) {
                st->pos = n;
                return false;
            }
            st->in_quote = false;
            s = q + 1;
            continue;
        }
        /* A distinct escape character: walk byte by byte until the quote closes. */
        for (; s < end; s++) {
            char c = *s;
            if (c == d->escape) {
                if (s + 1 >= end) {
                    /* The escaped byte has not arrived: resume at the escape. */
                    st->pos = (size_t)(s - p);
                    return false;
                }
                if (s[1] == d->quote || s[1] == d->escape) {
                    s++;
                    continue;
                }
            }
            if (c == d->quote)
                break;
            st->nlines += c == '\n';
            st->ncr += c == '\r';
        }
        if (s >= end) {
            st->pos = n;
            return false;
        }
        st->in_quote = false;
        s++;
    }
}

static bool scan_text(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p, size_t n,
                      size_t *row_len) {
    const char *end = p + n;
    const char *s = p + st->pos;
    for (;;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *stop = nl ? nl : end;
        const char *b = memchr(s, '\\', (size_t)(stop - s));
        if (!b) {
            st->nfields += count_byte(s, stop, d->delim);
            if (!nl) {
                st->pos = n;
                return false;
            }
            *row_len = (size_t)(nl + 1 - p);
            st->pos = *row_len;
            return true;
        }
        st->nfields += count_byte(s, b, d->delim);
        if (b + 1 >= end) {
            st->pos = (size_t)(b - p);
            return false;
        }
        st->nlines += b[1] == '\n';
        s = b + 2;
    }
}

#ifdef __SSE2__
/*
 * CSV with escape == quote, 64 bytes at a time: one compare per byte class
 * gives bit masks of quotes, newlines, carriage returns and delimiters;
 * whether each byte lies inside quotes is the running parity of the quote
 * mask (a doubled quote closes and reopens, exactly the "" rule). A row
 * ends at the first newline outside quotes; the counts are popcounts of
 * the masks up to it. Branch-free per block, where the memchr scanner
 * pays calls and branches per quote. Text format is the same with
 * "escaped" (after an unescaped backslash) in place of "inside quotes".
 */
#include <emmintrin.h>

/* Bit i set where byte i of the block equals k's bytes (written out: -O2 keeps a loop here). */
static inline uint64_t eq_mask(__m128i a, __m128i b, __m128i c, __m128i d, __m128i k) {
    uint64_t m0 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, k));
    uint64_t m1 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(b, k));
    uint64_t m2 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(c, k));
    uint64_t m3 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(d, k));
    return m0 | m1 << 16 | m2 << 32 | m3 << 48;
}

/* Bit i: the parity of the bits 0..i of x. */
static inline uint64_t prefix_xor(uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    return x ^ x << 32;
}

/* x86-64 guarantees SSE2 but not POPCNT; a 64-bit count in twelve operations. */
static inline int64_t bit_count(uint64_t x) {
    x -= (x >> 1) & 0x5555555555555555u;
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (int64_t)((x * 0x0101010101010101u) >> 56);
}

/* Counts what m holds up to and including its first row end; false when it has none. */
static inline bool take(pgetl_csv_scan *st, const pgetl_csv_masks *m, unsigned *at) {
    uint64_t upto = m->ends ? m->ends ^ (m->ends - 1) : ~(uint64_t)0;
    st->nfields += bit_count(m->delims & upto);
    /* Quoted line breaks are rare: skip the counts when there are none. */
    if (m->qnl & upto)
        st->nlines += bit_count(m->qnl & upto);
    if (m->qcr & upto)
        st->ncr += bit_count(m->qcr & upto);
    if (!m->ends)
        return false;
    *at = (unsigned)__builtin_ctzll(m->ends);
    return true;
}

/* Keeps the bytes after bit `at` of m (`valid` bytes) as the next row's look-ahead. */
static inline void keep_ahead(pgetl_csv_scan *st, const pgetl_csv_masks *m, unsigned at,
                              unsigned valid, bool state_after) {
    unsigned sh = at + 1;
    if (sh >= valid) {
        st->ahead_len = 0;
        return;
    }
    st->ahead = (pgetl_csv_masks){m->ends >> sh, m->delims >> sh, m->qnl >> sh, m->qcr >> sh};
    st->ahead_len = valid - sh;
    st->ahead_state = state_after;
}

/*
 * Text format: bit i set where byte i is escaped, i.e. follows a backslash
 * that is not itself escaped. *pending: byte 0 is escaped; on return, the
 * byte after the block is. Backslashes are few in text data, so this walks
 * them one by one.
 */
static inline uint64_t escaped_mask(uint64_t backslashes, bool *pending) {
    uint64_t esc = *pending;
    *pending = false;
    for (uint64_t m = backslashes; m; m &= m - 1) {
        unsigned i = (unsigned)__builtin_ctzll(m);
        if (esc >> i & 1)
            continue; /* an escaped backslash is data */
        if (i == 63)
            *pending = true;
        else
            esc |= (uint64_t)2 << i;
    }
    return esc;
}

/*
 * The masks of one block of `valid` bytes (the rest zero). *state is the
 * state before the block (CSV: inside quotes; text: the first byte is
 * escaped) and, on return, after its valid bytes.
 */
static inline pgetl_csv_masks classify(bool text, const char *blk, unsigned valid,
                                       const __m128i k[4], bool *state) {
    const __m128i *v = (const __m128i *)(const void *)blk;
    __m128i a = _mm_loadu_si128(v), b = _mm_loadu_si128(v + 1);
    __m128i c = _mm_loadu_si128(v + 2), e = _mm_loadu_si128(v + 3);
    uint64_t special = eq_mask(a, b, c, e, k[0]); /* the quote, or text's backslash */
    uint64_t nl = eq_mask(a, b, c, e, k[2]);
    uint64_t delims = eq_mask(a, b, c, e, k[1]);
    if (text) {
        uint64_t esc = escaped_mask(special, state);
        /* A backslash on the last valid byte escapes what comes after it. */
        if (valid < 64)
            *state = esc >> valid & 1;
        return (pgetl_csv_masks){nl & ~esc, delims & ~esc, nl & esc, 0};
    }
    uint64_t in = prefix_xor(special) ^ ((uint64_t)0 - (uint64_t)*state);
    /* The top bit is the state after the block (zero padding keeps it). */
    *state = in >> 63;
    return (pgetl_csv_masks){nl & ~in, delims & ~in, nl & in, eq_mask(a, b, c, e, k[3]) & in};
}

static bool scan_blocks(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p, size_t n,
                        size_t *row_len) {
    unsigned at;
    if (st->ahead_len) {
        pgetl_csv_masks m = st->ahead;
        unsigned len = st->ahead_len;
        bool state_after = st->ahead_state;
        st->ahead_len = 0;
        /* Only a row start right after the last row (and its bytes) can use it. */
        if (st->pos == 0 && len <= n) {
            if (take(st, &m, &at)) {
                *row_len = st->pos = at + 1;
                keep_ahead(st, &m, at, len, state_after);
                return true;
            }
            st->pos = len;
            st->in_quote = state_after;
        }
    }
    const char *s = p + st->pos, *end = p + n;
    bool state = st->in_quote;
    const __m128i k[4] = {_mm_set1_epi8(d->text ? '\\' : d->quote), _mm_set1_epi8(d->delim),
                          _mm_set1_epi8('\n'), _mm_set1_epi8('\r')};
    char tail[64];
    while (s < end) {
        size_t left = (size_t)(end - s);
        unsigned valid = left < 64 ? (unsigned)left : 64;
        const char *blk = s;
        if (left < 64) {
            /* Zero padding matches no byte class: the dialect never uses NUL. */
            memset(tail, 0, sizeof tail);
            memcpy(tail, s, left);
            blk = tail;
        }
        pgetl_csv_masks m = classify(d->text, blk, valid, k, &state);
        if (take(st, &m, &at)) {
            *row_len = st->pos = (size_t)(s - p) + at + 1;
            st->in_quote = false;
            keep_ahead(st, &m, at, valid, state);
            return true;
        }
        s += valid;
    }
    if (d->text && state) {
        /* The last byte is a backslash: look at it again once its escaped byte arrives. */
        st->pos = n - 1;
        st->in_quote = false;
        return false;
    }
    st->pos = n;
    st->in_quote = state;
    return false;
}
#endif

bool pgetl__csv_scan_row(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p, size_t n,
                         size_t *row_len) {
    if (st->pos >= n)
        return false;
#ifdef __SSE2__
    if (d->text || d->escape == d->quote)
        return scan_blocks(d, st, p, n, row_len);
#endif
    return d->text ? scan_text(d, st, p, n, row_len) : scan_csv(d, st, p, n, row_len);
}

bool pgetl__csv_scan_row_generic(const pgetl_csv_dialect *d, pgetl_csv_scan *st, const char *p,
                                 size_t n, size_t *row_len) {
    if (st->pos >= n)
        return false;
    return d->text ? scan_text(d, st, p, n, row_len) : scan_csv(d, st, p, n, row_len);
}

static size_t strip_eol(const char *row, size_t len) {
    if (len && row[len - 1] == '\n') {
        len--;
        if (len && row[len - 1] == '\r')
            len--;
    }
    return len;
}

/*
 * Both splitters write through a local pointer and set out->len once:
 * appending with pgetl__buf_byte_unchecked reloads and stores out->len for
 * every byte (a char store may alias it); bench_csv_scan measured the
 * plain-CSV split 1.4x faster without it.
 */
static pgetl_code split_csv(const pgetl_csv_dialect *d, const char *null_str, size_t null_len,
                            const char *row, size_t len, pgetl_buf *out, pgetl_csv_field *fields,
                            int max, int *nfields_out, pgetl_error *err) {
    const char delim = d->delim, quote = d->quote, esc = d->escape;
    char *const base = out->data;
    char *dst = base + out->len;
    int nf = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        char *fstart = dst;
        bool saw_quote = false;
        for (;;) {
            for (char c; i < len && (c = row[i]) != delim && c != quote; i++)
                *dst++ = c;
            if (i >= len || row[i] == delim)
                break;
            /* A quote opens a quoted run wherever it stands, as in the server's reader. */
            saw_quote = true;
            i++;
            for (;;) {
                for (char c; i < len && (c = row[i]) != quote && c != esc; i++)
                    *dst++ = c;
                if (i >= len)
                    return pgetl_error_set(err, PGETL_EDATA, "unterminated CSV quoted field");
                if (row[i] == esc && i + 1 < len && (row[i + 1] == quote || row[i + 1] == esc)) {
                    *dst++ = row[i + 1];
                    i += 2;
                } else if (row[i] == quote) {
                    i++;
                    break;
                } else {
                    *dst++ = row[i++]; /* an escape before anything else is data */
                }
            }
        }
        if (nf < max) {
            fields[nf].off = (size_t)(fstart - base);
            fields[nf].len = (size_t)(dst - fstart);
            fields[nf].quoted = saw_quote;
            fields[nf].null =
                !saw_quote && i - start == null_len && memcmp(row + start, null_str, null_len) == 0;
        }
        nf++;
        if (i >= len)
            break;
        i++; /* the delimiter */
    }
    out->len = (size_t)(dst - base);
    *nfields_out = nf;
    return PGETL_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static pgetl_code split_text(const pgetl_csv_dialect *d, const char *null_str, size_t null_len,
                             const char *row, size_t len, pgetl_buf *out, pgetl_csv_field *fields,
                             int max, int *nfields_out) {
    const char delim = d->delim;
    char *const base = out->data;
    char *dst = base + out->len;
    int nf = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        char *fstart = dst;
        while (i < len && row[i] != delim) {
            char c = row[i++];
            if (c != '\\' || i >= len) {
                *dst++ = c;
                continue;
            }
            c = row[i++];
            switch (c) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'v':
                c = '\v';
                break;
            case 'x':
                if (i < len && hexval(row[i]) >= 0) {
                    int v = hexval(row[i++]);
                    if (i < len && hexval(row[i]) >= 0)
                        v = v * 16 + hexval(row[i++]);
                    c = (char)v;
                }
                break;
            default:
                if (c >= '0' && c <= '7') {
                    int v = c - '0';
                    for (int k = 0; k < 2 && i < len && row[i] >= '0' && row[i] <= '7'; k++)
                        v = v * 8 + (row[i++] - '0');
                    c = (char)(v & 0xff);
                }
                break;
            }
            *dst++ = c;
        }
        if (nf < max) {
            fields[nf].off = (size_t)(fstart - base);
            fields[nf].len = (size_t)(dst - fstart);
            fields[nf].quoted = false;
            fields[nf].null = i - start == null_len && memcmp(row + start, null_str, null_len) == 0;
        }
        nf++;
        if (i >= len)
            break;
        i++;
    }
    out->len = (size_t)(dst - base);
    *nfields_out = nf;
    return PGETL_OK;
}

pgetl_code pgetl__csv_split(const pgetl_csv_dialect *d, const char *null_str, size_t null_len,
                            const char *row, size_t len, pgetl_buf *out, pgetl_csv_field *fields,
                            int max, int *nfields_out, pgetl_error *err) {
    *nfields_out = 0;
    len = strip_eol(row, len);
    pgetl__buf_clear(out);
    /* Unquoting and unescaping only shrink, so the row length bounds the output. */
    if (pgetl__buf_reserve(out, len + 1) != PGETL_OK)
        return pgetl__error_oom(err, "csv split");
    if (d->text)
        return split_text(d, null_str, null_len, row, len, out, fields, max, nfields_out);
    return split_csv(d, null_str, null_len, row, len, out, fields, max, nfields_out, err);
}
