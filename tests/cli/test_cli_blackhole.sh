#!/usr/bin/env bash
# `pgetl load --tcp-user-timeout 2 --io-timeout 0` over TCP whose connection
# becomes a black hole mid-load: exit 1 within the bound plus slack, naming
# tcp_user_timeout_s and the flag, nothing committed; a load right after
# works. (The library cases, including keepalives, are in
# tests/integration/test_fault_blackhole.c.)
#
# The load reads stdin from a FIFO the test feeds, so the black hole lands
# while its transaction is open: ~3.4 MB go in, a batch's COPY is seen on
# the server (pg_stat_activity), then an nftables table of this shell's own,
# `inet pgetl_blackhole_cli_<pid>`, drops every TCP packet between the
# server's port and the load's client port(s) (pg_stat_activity.client_port
# of its application_name) in the input hook, and another ~8 MB are fed:
# they stay unacknowledged, and the kernel's user timeout ends the
# connection. No other connection on the machine is affected.
#
# The table is deleted after the case, by the EXIT trap, and by a watcher
# that deletes it once this shell is gone (even after a SIGKILL). Root is
# required (nft needs CAP_NET_ADMIN): the ctest fixture runs only the server
# as `postgres`; tests run as the ctest user, root in CI (.ci/run). Without
# nft (scripts/deps.sh installs nftables) or the privilege this test FAILS.
. "$(dirname "$0")/lib_load.sh"

NFT_TABLE="inet pgetl_blackhole_cli_$$"
command -v nft >/dev/null ||
    fail "nft not found: this test needs nftables (scripts/deps.sh installs it) and root"
nft list tables >/dev/null ||
    fail "nft list tables failed: this test needs root (CAP_NET_ADMIN); uid $(id -u)"

bh_stop() { nft delete table $NFT_TABLE 2>/dev/null || true; }
LOADER=""
WRITER=""
cleanup() {
    bh_stop
    [ -z "$WRITER" ] || kill "$WRITER" 2>/dev/null || true
    [ -z "$LOADER" ] || kill "$LOADER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# The watcher: outlives this shell by at most a second.
(
    while kill -0 $$ 2>/dev/null; do sleep 1; done
    nft delete table $NFT_TABLE
) </dev/null >/dev/null 2>&1 &
disown

now() { date +%s.%N; }
within() { # START LIMIT: prints the time since START; fails when above LIMIT
    awk -v s="$1" -v e="$(now)" -v l="$2" 'BEGIN { d = e - s; printf "%.2f s\n", d; exit !(d <= l) }'
}
rows() { # FROM TO: CSV rows of ~90 bytes
    seq "$1" "$2" | awk '{ print $1 ",row " $1 " with a good deal of padding text and then some more" }'
}

T=$(uname_table bh)
create_small_table "$T"
APP=bh_cli_$$
BDSN="$PW_DSN application_name=$APP"
mkfifo "$WORK/in.fifo"
(
    set +e
    timeout 60 "$PGETL" load --dsn "$BDSN" --table "$T" --no-progress --batch-rows 10000 \
        --tcp-user-timeout 2 --io-timeout 0 - <"$WORK/in.fifo" >"$WORK/bh.out" 2>"$WORK/bh.err"
    echo $? >"$WORK/bh.rc"
) &
LOADER=$!
exec 3>"$WORK/in.fifo"
# A load that stops reading early must fail this test with its message, not
# kill the shell with SIGPIPE.
trap '' PIPE
{
    echo "id,name"
    rows 1 45000
} >&3 2>/dev/null || fail "the load stopped reading its input: $(cat "$WORK/bh.err")"

# The load is under way: its transaction is open and a batch's COPY (one per
# batch) has run or is running.
copying=0
for _ in $(seq 1 300); do
    copying=$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP'
                   AND query LIKE 'COPY %' AND state IN ('active', 'idle in transaction')")
    [ "$copying" != 0 ] && break
    sleep 0.05
done
[ "$copying" != 0 ] || fail "the load's COPY was not seen within 15 s"
# The rows so far fill four batches and part of a fifth, which waits for more
# input. Let the sender get the fourth batch's result first: a black hole
# that swallowed that reply (every byte sent already acknowledged) could
# only be noticed by keepalives, not by --tcp-user-timeout.
sleep 0.5
ports=$(sql "SELECT client_port FROM pg_stat_activity WHERE application_name = '$APP'")
[ -n "$ports" ] || fail "no client port for $APP"
rules=""
for p in $ports; do
    rules="$rules
    tcp sport $PORT tcp dport $p drop
    tcp sport $p tcp dport $PORT drop"
done
nft -f - <<EOF || fail "nft could not add table $NFT_TABLE"
table $NFT_TABLE
delete table $NFT_TABLE
table $NFT_TABLE {
  chain drop_in {
    type filter hook input priority -10; policy accept;$rules
  }
}
EOF
t0=$(now)
# More data: it goes out and is never acknowledged. The writer dies of EPIPE
# once the load has given up.
rows 45001 135000 >&3 2>/dev/null &
WRITER=$!
exec 3>&-
wait "$LOADER" || true
LOADER=""
took=$(within "$t0" 10) || fail "load did not fail within --tcp-user-timeout 2 + slack (took $took)"
bh_stop
wait "$WRITER" 2>/dev/null || true
WRITER=""
RC=$(cat "$WORK/bh.rc")
ERR=$(cat "$WORK/bh.err")
OUT=$(cat "$WORK/bh.out")
[ "$RC" != 124 ] || fail "load hung on a black-holed connection"
expect_rc 1
# The CLI's default --keepalives-idle 60 is on too: the library names both
# kernel bounds, the CLI the one that was due.
expect_contains "$ERR" "tcp_user_timeout_s (2 s) or keepalives_idle_s (60 s) expired" \
    "black-holed load stderr"
expect_contains "$ERR" "the bound that expired is --tcp-user-timeout 2" "black-holed load stderr"
expect_contains "$ERR" "nothing was committed" "black-holed load stderr"
expect_not_contains "$ERR" "pgetl-secret" "black-holed load stderr"
echo "black-holed load: exit $RC in $took: $ERR"
# The backend never learns the client gave up (its reset was dropped too).
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$APP'" \
    >/dev/null
expect_rows "$T" 0 "after the black-holed load"
ok "load into a black hole mid-load: exit 1 in $took naming tcp_user_timeout_s / --tcp-user-timeout, 0 rows"

# With the table gone, the same load works.
printf 'id,name\n1,a\n2,b\n' >"$WORK/two.csv"
run timeout 60 "$PGETL" load --dsn "$BDSN" --table "$T" --no-progress --tcp-user-timeout 2 \
    --io-timeout 0 "$WORK/two.csv"
expect_rc 0
expect_rows "$T" 2 "load after the black hole"
left=""
for _ in $(seq 1 100); do
    left=$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP'")
    [ "$left" = 0 ] && break
    sleep 0.1
done
expect_eq "$left" 0 "backends left"
nft list tables | grep -q "pgetl_blackhole_cli_$$" && fail "table $NFT_TABLE left behind"
ok "after the black hole: a load works, no backend or nft table left"

done_testing
