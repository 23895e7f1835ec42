/*
 * The timeout flags shared by check, load and export, and their defaults.
 *
 * Defaults. connect 10 s is the library's. keepalives 60 s: probes only go
 * out on an idle connection and any live kernel answers them, so they never
 * end a healthy load; they find a peer that vanished (a host that died, a
 * NAT that forgot us) in about two minutes. io 3600 s: the watchdog only
 * counts time during which nothing at all moved while pgetl waited on the
 * server, so a long load that keeps sending never comes near it; what it
 * can end early is a legitimate wait with no traffic (a lock wait, a query
 * that needs more than an hour for its first row), and an hour is long
 * enough that such a run is rare and short enough that a stalled server
 * never blocks a nightly job for ever. statement_timeout stays off: a whole
 * COPY is one statement, and a big load may rightly run for hours. TCP user
 * timeout stays off: data unacknowledged for ~15 minutes already makes the
 * kernel give up on its own (tcp_retries2), and a server that stops
 * reading a COPY (a zero window) is caught by the io bound.
 */
#include "cli/cli.h"

#include <string.h>

/* pgetl_config_validate's limit for a timeout. */
#define CLI_MAX_TIMEOUT_S 86400.0

void cli_timeouts_init(cli_timeouts *t) {
    *t = (cli_timeouts){
        .connect_s = 10,
        .statement_s = 0,
        .io_s = 3600,
        .tcp_user_s = 0,
        .keepalives_idle_s = 60,
    };
}

int cli_timeouts_take(cli_timeouts *t, int c, const char *val) {
    const char *flag;
    double *field;
    switch (c) {
    case CLI_OPT_CONNECT_TIMEOUT:
        flag = "--connect-timeout", field = &t->connect_s;
        break;
    case CLI_OPT_STATEMENT_TIMEOUT:
        flag = "--statement-timeout", field = &t->statement_s;
        break;
    case CLI_OPT_IO_TIMEOUT:
        flag = "--io-timeout", field = &t->io_s;
        break;
    case CLI_OPT_TCP_USER_TIMEOUT:
        flag = "--tcp-user-timeout", field = &t->tcp_user_s;
        break;
    case CLI_OPT_KEEPALIVES_IDLE:
        flag = "--keepalives-idle", field = &t->keepalives_idle_s;
        break;
    default:
        return 0;
    }
    return cli_parse_seconds(flag, val, CLI_MAX_TIMEOUT_S, field) ? 1 : -1;
}

void cli_timeouts_apply(const cli_timeouts *t, pgetl_config *cfg) {
    cfg->connect_timeout_s = t->connect_s;
    cfg->statement_timeout_s = t->statement_s;
    cfg->io_timeout_s = t->io_s;
    cfg->tcp_user_timeout_s = t->tcp_user_s;
    cfg->keepalives_idle_s = t->keepalives_idle_s;
}

void cli_timeouts_hint(const cli_timeouts *t, const pgetl_error *err) {
    /* The library's message names the config field (or, for the server's
     * statement_timeout, says "statement timeout"); name the flag too. */
    const struct {
        const char *needle, *flag;
        double value;
    } bounds[] = {
        {"connect_timeout_s", "--connect-timeout", t->connect_s},
        {"io_timeout_s", "--io-timeout", t->io_s},
        {"statement timeout", "--statement-timeout", t->statement_s},
        {"tcp_user_timeout_s", "--tcp-user-timeout", t->tcp_user_s},
        {"keepalives_idle_s", "--keepalives-idle", t->keepalives_idle_s},
    };
    if (!err || err->code == PGETL_OK)
        return;
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        if (strstr(err->message, bounds[i].needle)) {
            cli_errorf("the bound that expired is %s %g (0 turns it off)", bounds[i].flag,
                       bounds[i].value);
            return;
        }
    }
}
