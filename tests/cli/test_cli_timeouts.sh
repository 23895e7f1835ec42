#!/usr/bin/env bash
# The timeout flags (--connect-timeout, --statement-timeout, --io-timeout,
# --tcp-user-timeout, --keepalives-idle) of check, load and export:
#  1. every command documents them in --help;
#  2. hostile values (negative, NaN, inf, text, exponent, huge, empty, ...)
#     are a usage error (exit 2) naming the flag, and nothing is done;
#  3. good values (0, fractions, the maximum) are accepted;
#  4. through the fault proxy, a connection that stops forwarding mid-COPY
#     makes `load` (client->server) and `export` (server->client) fail
#     within --io-timeout: exit 1, the message names io_timeout_s and the
#     flag, nothing committed, no output file;
#     The same for an export over the Unix socket whose backend is
#     stopped (SIGSTOP) mid-stream;
#  5. --statement-timeout against a locked table: exit 1 naming the flag.
# A `timeout 60` around every run catches a hang; durations are only
# checked against the bound plus generous slack.
. "$(dirname "$0")/lib_load.sh"

: "${PGETL_FAULTPROXY:?run through ctest (PGETL_FAULTPROXY unset)}"
FLAGS="--connect-timeout --statement-timeout --io-timeout --tcp-user-timeout --keepalives-idle"

now() { date +%s.%N; }
# within START LIMIT: the time since START is at most LIMIT seconds
within() {
    awk -v s="$1" -v e="$(now)" -v l="$2" 'BEGIN { d = e - s; printf "%.2f s\n", d; exit !(d <= l) }'
}

# 1. --help
for cmd in check load export; do
    run "$PGETL" "$cmd" --help
    expect_rc 0
    for f in $FLAGS; do
        expect_contains "$OUT" "$f SECS" "$cmd --help"
    done
    expect_contains "$OUT" "default 3600" "$cmd --help"
done
ok "check, load and export document the five timeout flags"

# 2. hostile values: exit 2, the flag named, nothing done
T=$(uname_table to_bad)
create_small_table "$T"
printf 'id,name\n1,a\n' >"$WORK/one.csv"
n=0
for v in -1 -0.5 nan NaN inf -inf 1e3 0x10 abc 5s " 5" "5 " 1.2.3 . "" 86401 99999999999999999999 \
    1,5 +3; do
    for f in $FLAGS; do
        for cmd in check load export; do
            case $cmd in
            check) run "$PGETL" check --dsn "$DSN" "$f" "$v" ;;
            load) run "$PGETL" load --dsn "$DSN" --table "$T" --no-progress "$f" "$v" "$WORK/one.csv" ;;
            export) run "$PGETL" export --dsn "$DSN" --table "$T" -o "$WORK/x.csv" "$f" "$v" ;;
            esac
            expect_rc 2
            expect_contains "$ERR" "$f" "$cmd $f '$v' stderr"
            expect_eq "$OUT" "" "$cmd $f '$v' stdout"
            n=$((n + 1))
        done
    done
done
# --flag=VALUE spelling and a flag as the value
run "$PGETL" load --dsn "$DSN" --table "$T" --io-timeout=-3 "$WORK/one.csv"
expect_rc 2
expect_contains "$ERR" "--io-timeout" "--io-timeout=-3"
run "$PGETL" export --dsn "$DSN" --table "$T" --io-timeout --header
expect_rc 2
run "$PGETL" check --dsn "$DSN" --connect-timeout --dsn "$DSN"
expect_rc 2
expect_contains "$ERR" "needs a value" "check --connect-timeout --dsn"
run "$PGETL" check --dsn "$DSN" --io-timeout
expect_rc 2
expect_rows "$T" 0 "after usage errors"
[ ! -e "$WORK/x.csv" ] || fail "an export with a bad flag wrote its output"
ok "$n hostile values (and missing ones) are usage errors naming the flag; nothing done"

# 3. good values are accepted
run "$PGETL" check --dsn "$DSN" --connect-timeout 2.5 --statement-timeout 0 --io-timeout 86400 \
    --tcp-user-timeout .5 --keepalives-idle 0
expect_rc 0
run "$PGETL" load --dsn "$DSN" --table "$T" --no-progress --io-timeout 30 --statement-timeout 30 \
    --tcp-user-timeout 30 --keepalives-idle 30 --connect-timeout=5 "$WORK/one.csv"
expect_rc 0
expect_rows "$T" 1 "load with timeouts"
run "$PGETL" export --dsn "$DSN" --table "$T" --io-timeout 0 --statement-timeout 1.5 -o "$WORK/x.csv"
expect_rc 0
expect_eq "$(cat "$WORK/x.csv")" "1,a,," "export with timeouts"
ok "good values (0, fractions, the maximum, --flag=VALUE) are accepted"

# 4. stalls through the fault proxy
PROXY_PID=""
start_proxy() { # dir mode after
    "$PGETL_FAULTPROXY" "$PORT" "$@" >"$WORK/proxy.port" &
    PROXY_PID=$!
    wait_port_file "$WORK/proxy.port" "the fault proxy"
    PDSN="host=127.0.0.1 port=$(cat "$WORK/proxy.port") user=pgetl_pw password=pgetl-secret dbname=$TEST_DB"
}
stop_proxy() {
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=""
}
trap 'stop_proxy; rm -rf "$WORK"' EXIT

# load: the proxy stops forwarding client->server after 0.5 MB of the COPY
S=$(uname_table to_stall)
create_small_table "$S"
{
    echo "id,name"
    seq 1 200000 | awk '{ print $1 ",row " $1 " with some padding text" }'
} >"$WORK/big.csv"
start_proxy up stall 500000
t0=$(now)
run timeout 60 "$PGETL" load --dsn "$PDSN" --table "$S" --no-progress --io-timeout 1 "$WORK/big.csv"
took=$(within "$t0" 20) || fail "load did not fail within --io-timeout 1 + slack (took $took)"
stop_proxy
[ "$RC" != 124 ] || fail "load hung on a stalled connection"
expect_rc 1
expect_contains "$ERR" "io_timeout_s (1.0 s) expired" "stalled load stderr"
expect_contains "$ERR" "--io-timeout 1" "stalled load stderr"
expect_contains "$ERR" "nothing was committed" "stalled load stderr"
expect_not_contains "$ERR" "pgetl-secret" "stalled load stderr"
expect_rows "$S" 0 "after the stalled load"
ok "load stalled client->server mid-COPY: exit 1 in $took naming io_timeout_s / --io-timeout, 0 rows"

# export: the proxy stops forwarding server->client after 0.5 MB of rows
start_proxy down stall 500000
t0=$(now)
run timeout 60 "$PGETL" export --dsn "$PDSN" --no-progress --io-timeout 1 -o "$WORK/out.csv" \
    --query "SELECT g, repeat('x', 50) FROM generate_series(1, 200000) g"
took=$(within "$t0" 20) || fail "export did not fail within --io-timeout 1 + slack (took $took)"
stop_proxy
[ "$RC" != 124 ] || fail "export hung on a stalled connection"
expect_rc 1
expect_contains "$ERR" "io_timeout_s (1.0 s) expired" "stalled export stderr"
expect_contains "$ERR" "--io-timeout 1" "stalled export stderr"
[ ! -e "$WORK/out.csv" ] || fail "a stalled export left its output file"
[ -z "$(ls "$WORK" | grep pgetl-)" ] || fail "a stalled export left a temporary file"
ok "export stalled server->client mid-COPY: exit 1 in $took naming io_timeout_s / --io-timeout, no file"

# export over the Unix socket: its backend is stopped (SIGSTOP) mid-stream
paced_export_start unix 60 --io-timeout 1
sleep 0.3
kill -STOP "$BACKEND"
t0=$(now)
wait "$EXPORTER" || true
took=$(within "$t0" 20) || { kill -CONT "$BACKEND"; fail "Unix export did not fail within --io-timeout 1 + slack"; }
kill -CONT "$BACKEND"
paced_export_result unix
[ "$RC" != 124 ] || fail "export hung on a stopped backend (Unix socket)"
expect_rc 1
expect_contains "$ERR" "io_timeout_s (1.0 s) expired" "Unix export stderr"
expect_contains "$ERR" "--io-timeout 1" "Unix export stderr"
[ ! -e "$WORK/unix.csv" ] || fail "a stalled Unix export left its output file"
ok "export over the Unix socket, backend stopped mid-stream: exit 1 in $took naming io_timeout_s / --io-timeout"

# The proxy is gone: its connections closed, so no backend of ours may stay.
for _ in $(seq 1 100); do
    left=$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = '$TEST_DB'
                AND application_name = 'pgetl' AND pid <> pg_backend_pid()")
    [ "$left" = 0 ] && break
    sleep 0.1
done
expect_eq "$left" 0 "backends left after the stalls"

# 5. --statement-timeout: the table is locked by another session
L=$(uname_table to_locked)
create_small_table "$L"
PGAPPNAME=to_locker psql -X -q "$DSN" -c "BEGIN" -c "LOCK TABLE $L IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(30)" \
    >/dev/null 2>&1 &
LOCKER=$!
for _ in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE c.relname = '$L' AND l.granted")" != 0 ] && break
    sleep 0.05
done
t0=$(now)
run timeout 60 "$PGETL" load --dsn "$DSN" --table "$L" --no-progress --statement-timeout 1 \
    "$WORK/one.csv"
took=$(within "$t0" 20) || fail "load did not fail within --statement-timeout 1 + slack"
expect_rc 1
expect_contains "$ERR" "statement timeout" "locked load stderr"
expect_contains "$ERR" "--statement-timeout 1" "locked load stderr"
run timeout 60 "$PGETL" export --dsn "$DSN" --table "$L" --statement-timeout 1 -o "$WORK/l.csv"
expect_rc 1
expect_contains "$ERR" "--statement-timeout 1" "locked export stderr"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'to_locker'" \
    >/dev/null
wait "$LOCKER" 2>/dev/null || true
ok "load and export of a locked table: exit 1 within --statement-timeout, naming it"

done_testing
