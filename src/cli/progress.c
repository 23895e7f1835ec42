/*
 * Progress on stderr. On a terminal: one line redrawn in place (\r, erase to
 * end of line) with a bar when the input size is known:
 *   [#########.............]  41%  112.0/270.9 MB  412803 rows  301233 rows/s  ETA 0:05
 * Not a terminal: nothing, unless --progress, then one plain line per
 * CLI_PLAIN_INTERVAL_S so logs stay readable:
 *   pgetl: load: 412803 rows, 112.0 MB, 1.4 s (301233 rows/s)
 * stdout is never touched, so exporting to stdout stays clean.
 */
#include "cli/cli.h"

#include <string.h>
#include <unistd.h>

/* The library is asked for updates this often on a terminal (smooth, cheap). */
#define CLI_TTY_INTERVAL_S 0.2
/* Plain lines go to logs: one every few seconds is plenty. */
#define CLI_PLAIN_INTERVAL_S 2.0
#define CLI_BAR_WIDTH 24

/* The bar on screen, if any, so a log line can clear it first (logsink.c). */
static cli_progress *active;

void cli_progress_clear_line(void) {
    cli_progress *p = active;
    if (p && p->drawn) {
        fputs("\r\033[K", p->out);
        p->drawn = false;
    }
}

double cli_progress_init(cli_progress *p, cli_progress_mode mode, const char *verb) {
    memset(p, 0, sizeof *p);
    active = p;
    p->out = stderr;
    p->verb = verb;
    p->tty = isatty(fileno(stderr)) == 1;
    p->enabled = mode == CLI_PROGRESS_ON || (mode == CLI_PROGRESS_AUTO && p->tty);
    return p->tty ? CLI_TTY_INTERVAL_S : CLI_PLAIN_INTERVAL_S;
}

static void fmt_eta(char *buf, size_t size, double s) {
    if (!(s >= 0) || s > 360000) {
        snprintf(buf, size, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

static void draw_bar(cli_progress *p, const pgetl_load_progress *pr) {
    double secs = pr->seconds > 1e-6 ? pr->seconds : 1e-6;
    double rate = (double)pr->rows_read / secs;
    char line[256];
    int n = 0;
    if (pr->bytes_total > 0) {
        double frac = (double)pr->bytes_read / (double)pr->bytes_total;
        if (frac > 1)
            frac = 1;
        int fill = (int)(frac * CLI_BAR_WIDTH);
        char bar[CLI_BAR_WIDTH + 1];
        for (int i = 0; i < CLI_BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[CLI_BAR_WIDTH] = '\0';
        char eta[32];
        double bps = (double)pr->bytes_read / secs;
        fmt_eta(eta, sizeof eta,
                bps > 0 ? (double)(pr->bytes_total - pr->bytes_read) / bps : -1);
        n = snprintf(line, sizeof line, "[%s] %3d%%  %.1f/%.1f MB  %lld rows  %.0f rows/s  ETA %s",
                     bar, (int)(frac * 100), (double)pr->bytes_read / 1e6,
                     (double)pr->bytes_total / 1e6, (long long)pr->rows_read, rate, eta);
    } else {
        n = snprintf(line, sizeof line, "%.1f MB  %lld rows  %.0f rows/s  %.1f s",
                     (double)pr->bytes_read / 1e6, (long long)pr->rows_read, rate, pr->seconds);
    }
    if (n > 0 && pr->rows_rejected > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, "  %lld rejected",
                 (long long)pr->rows_rejected);
    fprintf(p->out, "\r%s\033[K", line);
    fflush(p->out);
    p->drawn = true;
}

void cli_progress_update(void *user, const pgetl_load_progress *pr) {
    cli_progress *p = user;
    if (!p->enabled || !pr)
        return;
    if (p->tty) {
        draw_bar(p, pr);
        return;
    }
    if (!pr->done && pr->seconds - p->last_plain < CLI_PLAIN_INTERVAL_S)
        return;
    p->last_plain = pr->seconds;
    double secs = pr->seconds > 1e-6 ? pr->seconds : 1e-6;
    fprintf(p->out, "pgetl: %s: %lld rows, %.1f MB, %.1f s (%.0f rows/s)%s\n", p->verb,
            (long long)pr->rows_read, (double)pr->bytes_read / 1e6, pr->seconds,
            (double)pr->rows_read / secs, pr->done ? ", done" : "");
    fflush(p->out);
}

void cli_progress_finish(cli_progress *p) {
    if (p->drawn) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
        p->drawn = false;
    }
    if (active == p)
        active = NULL;
}
