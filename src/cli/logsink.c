/*
 * The CLI's log sink. The library logs every rejected row (twice: the COPY
 * writer's copy_reject and the loader's load_reject, which has the file and
 * line) and the end of every COPY at WARN; on a terminal that is noise the
 * summary and the reject log already carry (a load with 1000 rejects would
 * print 2000 lines). So by default copy_reject, copy_end and load_end are
 * dropped, and load_reject too when a reject file records the rows; every
 * other WARN or ERROR line is shown. --verbose shows everything from INFO up.
 */
#include "cli/cli.h"

#include <string.h>

/* Events whose content the summary, the error line or the reject log already shows. */
static const char *const quiet_events[] = {"copy_reject", "copy_end", "load_end", NULL};

static bool is_event(const char *line, const char *event) {
    const char *e = strstr(line, "event=");
    size_t n = strlen(event);
    return e && strncmp(e + 6, event, n) == 0 && (e[6 + n] == ' ' || e[6 + n] == '\0');
}

static bool is_quiet(const char *line) {
    for (int i = 0; quiet_events[i]; i++)
        if (is_event(line, quiet_events[i]))
            return true;
    return false;
}

typedef struct sink_mode {
    bool verbose;
    bool rejects_in_file;
} sink_mode;

static void sink(void *user, pgetl_log_level level, const char *line) {
    const sink_mode *m = user;
    if (!m->verbose && level < PGETL_LOG_ERROR &&
        (is_quiet(line) || (m->rejects_in_file && is_event(line, "load_reject"))))
        return;
    cli_progress_clear_line(); /* the bar is redrawn on the next update */
    fprintf(stderr, "pgetl: %s\n", line);
}

void cli_log_install(bool verbose, bool rejects_in_file) {
    static sink_mode mode;
    mode.verbose = verbose;
    mode.rejects_in_file = rejects_in_file;
    pgetl_log_set_handler(sink, &mode, verbose ? PGETL_LOG_INFO : PGETL_LOG_WARN);
}
