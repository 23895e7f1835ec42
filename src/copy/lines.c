/*
 * From the server's "COPY t, line N" back to our row. In text format every
 * row is one line (newlines are escaped) and binary counts tuples, so
 * line N is row N. CSV is the exception: PostgreSQL also counts line breaks
 * inside quoted values, and only the kind that matches the data's line ending
 * (CopyReadLineText: `in_quote && c == (eol_type == EOL_NL ? '\n' : '\r')`).
 * While the first row is read the line ending is not known yet, so there a
 * quoted '\r' counts and a quoted '\n' does not. This file replays that rule.
 */
#include "copy/writer.h"

enum { EOL_UNKNOWN = 0, EOL_NL, EOL_CR, EOL_CRNL };

int64_t pgetl__csv_row_lines(const char *row, size_t len, int *eol) {
    bool in_quote = false;
    int64_t extra = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = row[i];
        if (ch == '"') {
            in_quote = !in_quote;
        } else if (in_quote) {
            if (ch == (*eol == EOL_NL ? '\n' : '\r'))
                extra++;
        } else if (ch == '\n' || ch == '\r') {
            if (*eol == EOL_UNKNOWN)
                *eol = ch == '\n'                            ? EOL_NL
                       : (i + 1 < len && row[i + 1] == '\n') ? EOL_CRNL
                                                             : EOL_CR;
            break;
        }
    }
    return 1 + extra;
}

/* Streaming CSV: after session row `row` the server's line count runs `extra` further ahead. */
static void add_mark(pgetl_copy *c, int64_t row, int64_t extra) {
    if (extra == 0 || c->lines_lost)
        return;
    c->extra_lines += extra;
    if (c->nlines == c->lines_cap) {
        int cap = c->lines_cap ? c->lines_cap * 2 : 64;
        pgetl__line_mark *m =
            cap <= PGETL_LINE_MARKS_MAX ? pgetl__realloc(c->lines, sizeof *m * (size_t)cap) : NULL;
        if (!m) {
            /* Past the bound: later errors report the line, not the row. */
            c->lines_lost = true;
            return;
        }
        c->lines = m;
        c->lines_cap = cap;
    }
    c->lines[c->nlines++] = (pgetl__line_mark){row, c->extra_lines};
}

void pgetl__copy_track_lines(pgetl_copy *c, const char *row, size_t len) {
    /* Fast path: no line break before the terminator, and the line ending is known. */
    if (c->eol != EOL_UNKNOWN && len > 0 && !memchr(row, '\n', len - 1) &&
        !memchr(row, '\r', len - 1))
        return;
    add_mark(c, c->rows, pgetl__csv_row_lines(row, len, &c->eol) - 1);
}

void pgetl__copy_mark_breaks(pgetl_copy *c, const char *row0, size_t len0,
                             const pgetl__row_breaks *breaks, int64_t nbreaks) {
    if (c->eol == EOL_UNKNOWN) {
        /*
         * The server takes the line ending from the first unquoted break.
         * The caller cut row 0 at its first unquoted '\n', so an unquoted
         * '\r' is either the "\r\n" ending or a bare CR before it; the
         * caller's count of quoted ones tells them apart without knowing the
         * quote character.
         */
        int64_t cr = 0;
        for (const char *p = row0, *end = row0 + len0; (p = memchr(p, '\r', (size_t)(end - p)));
             p++)
            cr++;
        if (nbreaks > 0 && breaks[0].row == 0)
            cr -= breaks[0].cr;
        bool crnl = len0 >= 2 && row0[len0 - 2] == '\r';
        c->eol = cr == 0 ? EOL_NL : cr == 1 && crnl ? EOL_CRNL : EOL_CR;
    }
    for (int64_t i = 0; i < nbreaks; i++) {
        int64_t row = c->rows + breaks[i].row;
        /* While the first row is read the ending is unknown: only '\r' counts. */
        bool by_cr = row == 0 || c->eol != EOL_NL;
        add_mark(c, row, by_cr ? breaks[i].cr : breaks[i].nl);
    }
}

int64_t pgetl__copy_stream_row(const pgetl_copy *c, int64_t line) {
    if (c->format != PGETL_COPY_CSV)
        return line;
    int64_t before = 0;
    for (int i = 0; i < c->nlines; i++) {
        int64_t r = c->lines[i].row; /* 0-based row whose quoted breaks moved the count */
        if (line <= r + 1 + c->lines[i].cum)
            return line >= r + 1 + before ? r + 1 : line - before;
        before = c->lines[i].cum;
    }
    if (c->lines_lost)
        return 0;
    return line - before;
}

int64_t pgetl__copy_line_pos(const pgetl_copy *c, const int64_t *live, int64_t n, int64_t line) {
    if (line < 1)
        return -1;
    if (c->format != PGETL_COPY_CSV)
        return line <= n ? line - 1 : -1;
    int eol = EOL_UNKNOWN;
    int64_t end = 0;
    for (int64_t pos = 0; pos < n; pos++) {
        size_t from = c->row_off[live[pos]];
        end += pgetl__csv_row_lines(c->buf.data + from, c->row_off[live[pos] + 1] - from, &eol);
        if (line <= end)
            return pos;
    }
    return -1;
}
