/*
 * The final report of load and export, as aligned text and as JSON with the
 * same fields. Neither ever holds the DSN (so never a password). JSON strings
 * are escaped by RFC 8259 and any invalid UTF-8 byte (a file name is bytes,
 * not text) becomes U+FFFD, so the output is always valid JSON.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one. */
static int utf8_seq(const unsigned char *p) {
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    int n;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x3F >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

void cli_json_string(FILE *out, const char *text) {
    if (!text) {
        fputs("null", out);
        return;
    }
    const unsigned char *p = (const unsigned char *)text;
    fputc('"', out);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc((int)c, out);
            p++;
        } else if (c == '\n') {
            fputs("\\n", out);
            p++;
        } else if (c == '\t') {
            fputs("\\t", out);
            p++;
        } else if (c == '\r') {
            fputs("\\r", out);
            p++;
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\u%04x", c);
            p++;
        } else {
            int n = utf8_seq(p);
            if (n == 0) {
                fputs("\\ufffd", out);
                p++;
            } else {
                fwrite(p, 1, (size_t)n, out);
                p += n;
            }
        }
    }
    fputc('"', out);
}

/* Text output: control characters in names are shown escaped, not obeyed. */
static void print_name(FILE *out, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
}

static double rate(double n, double secs) {
    return secs > 1e-9 ? n / secs : 0.0;
}

void cli_summary_print(FILE *out, const cli_summary *s) {
    bool load = strcmp(s->command, "load") == 0;
    fprintf(out, "%s %s: ", s->command, s->status);
    if (load) {
        for (int i = 0; i < s->nfiles; i++) {
            if (i)
                fputs(", ", out);
            print_name(out, s->files[i]);
        }
        fputs(" -> ", out);
        print_name(out, s->table ? s->table : "");
    } else {
        print_name(out, s->table ? s->table : "(query)");
        fputs(" -> ", out);
        print_name(out, s->output && strcmp(s->output, "-") != 0 ? s->output : "(stdout)");
    }
    fputc('\n', out);
    if (load) {
        fprintf(out, "  rows read:     %" PRId64 "\n", s->rows_read);
        fprintf(out, "  rows loaded:   %" PRId64 "%s\n", s->rows_loaded,
                s->committed        ? ""
                : s->commit_unknown ? " (commit not confirmed)"
                                    : " (not committed)");
        fprintf(out, "  rows rejected: %" PRId64, s->rows_rejected);
        if (s->rows_rejected > 0 && s->reject_file) {
            fputs(" (in ", out);
            print_name(out, s->reject_file);
            fputc(')', out);
        }
        fputc('\n', out);
        fprintf(out, "  batches:       %" PRId64 " (%" PRId64 " as binary COPY)\n", s->batches,
                s->batches_binary);
    } else {
        fprintf(out, "  rows:          %" PRId64 "\n", s->rows_read);
    }
    fprintf(out, "  bytes:         %" PRId64 " (%.1f MB)\n", s->bytes, (double)s->bytes / 1e6);
    fprintf(out, "  seconds:       %.3f\n", s->seconds);
    fprintf(out, "  rate:          %.0f rows/s, %.1f MB/s\n",
            rate((double)s->rows_read, s->seconds), rate((double)s->bytes / 1e6, s->seconds));
}

bool cli_summary_write_json(FILE *out, const cli_summary *s) {
    fputs("{\"command\":", out);
    cli_json_string(out, s->command);
    fputs(",\"status\":", out);
    cli_json_string(out, s->status);
    fprintf(out, ",\"exit_code\":%d,\"table\":", s->exit_code);
    cli_json_string(out, s->table);
    if (s->query) {
        fputs(",\"query\":", out);
        cli_json_string(out, s->query);
    }
    if (s->output) {
        fputs(",\"output\":", out);
        cli_json_string(out, s->output);
    }
    fputs(",\"files\":[", out);
    for (int i = 0; i < s->nfiles; i++) {
        if (i)
            fputc(',', out);
        cli_json_string(out, s->files[i]);
    }
    fputs("],\"reject_file\":", out);
    cli_json_string(out, s->reject_file);
    if (strcmp(s->command, "load") == 0)
        fprintf(out,
                ",\"batches\":%" PRId64 ",\"batches_binary\":%" PRId64
                ",\"rows_screened\":%" PRId64,
                s->batches, s->batches_binary, s->rows_screened);
    fprintf(out,
            ",\"rows_read\":%" PRId64 ",\"rows_loaded\":%" PRId64 ",\"rows_rejected\":%" PRId64
            ",\"bytes\":%" PRId64 ",\"seconds\":%.6f,\"rows_per_second\":%.1f"
            ",\"mb_per_second\":%.3f,\"committed\":%s,\"commit_unknown\":%s,\"error\":",
            s->rows_read, s->rows_loaded, s->rows_rejected, s->bytes, s->seconds,
            rate((double)s->rows_read, s->seconds), rate((double)s->bytes / 1e6, s->seconds),
            s->committed ? "true" : "false", s->commit_unknown ? "true" : "false");
    if (s->error && s->error->code != PGETL_OK) {
        fputs("{\"code\":", out);
        cli_json_string(out, pgetl_code_name(s->error->code));
        fputs(",\"sqlstate\":", out);
        cli_json_string(out, s->error->sqlstate[0] ? s->error->sqlstate : NULL);
        fputs(",\"message\":", out);
        cli_json_string(out, s->error->message);
        fputs(",\"detail\":", out);
        cli_json_string(out, s->error->detail[0] ? s->error->detail : NULL);
        fputc('}', out);
    } else {
        fputs("null", out);
    }
    fputs("}\n", out);
    fflush(out);
    return !ferror(out);
}
