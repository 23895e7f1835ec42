#!/usr/bin/env bash
# Faults seen from the CLI (the load paths' pg_terminate_backend and crash
# cases are in test_cli_load_kill.sh):
#  1. export: the backend is killed mid-stream -> exit 1, a clear message,
#     no output file left behind.
#  2. a server that accepts TCP connections but never answers: check, load
#     and export each fail (exit 1) within the default connect_timeout_s
#     (10 s) and say which bound expired; a 60 s `timeout` catches a hang.
. "$(dirname "$0")/lib_load.sh"

# 1. export killed mid-stream
paced_export_start killed 120
sleep 0.3
sql "SELECT pg_terminate_backend($BACKEND)" >/dev/null
wait "$EXPORTER" || true
paced_export_result killed
[ "$RC" != 124 ] || fail "export hung after pg_terminate_backend"
expect_rc 1
# The backend sends its FATAL before closing unless it was blocked writing
# rows to a client that reads slowly (the ASan build): then it cannot, and
# libpq reports the closed connection instead. Either is the clear message.
case "$ERR" in
*"pgetl: export: "*"terminating connection due to administrator command"*) ;;
*"pgetl: export: server closed the connection unexpectedly"*) ;;
*) fail "export stderr names neither the FATAL nor the closed connection: $ERR" ;;
esac
[ ! -e "$WORK/killed.csv" ] || fail "a partial export file was left behind"
ok "export killed mid-stream: exit 1, clear message, no partial file"

# 2. a server that never answers
port_file="$WORK/blackhole.port"
python3 - "$port_file" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
end = time.time() + 90
s.settimeout(1)
while time.time() < end:
    try:
        c, _ = s.accept()
        held.append(c)  # accepted, never answered
    except socket.timeout:
        pass
PY
HOLE=$!
trap 'kill $HOLE 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_port_file "$port_file" "blackhole listener"
BH="host=127.0.0.1 port=$(cat "$port_file") user=nobody dbname=nothing"
printf 'id,v\n1,a\n' >"$WORK/one.csv"
for cmd in check load export; do
    (
        set +e
        case $cmd in
        check) timeout 60 "$PGETL" check --dsn "$BH" ;;
        load) timeout 60 "$PGETL" load --dsn "$BH" --table t --no-progress "$WORK/one.csv" ;;
        export) timeout 60 "$PGETL" export --dsn "$BH" --no-progress --query "SELECT 1" ;;
        esac >"$WORK/$cmd.out" 2>"$WORK/$cmd.err"
        echo $? >"$WORK/$cmd.rc"
    ) &
done
for cmd in check load export; do
    while [ ! -s "$WORK/$cmd.rc" ]; do sleep 0.1; done
    RC=$(cat "$WORK/$cmd.rc")
    ERR=$(cat "$WORK/$cmd.err")
    [ "$RC" != 124 ] || fail "$cmd hung on a server that never answers"
    expect_rc 1
    expect_contains "$ERR" "connect_timeout_s" "$cmd stderr"
    expect_contains "$ERR" "timeout expired" "$cmd stderr"
    ok "$cmd against a server that never answers: exit 1 naming connect_timeout_s"
done

done_testing
