# Shared helpers for the shell tests. Sourced; expects the CTest environment:
# PGETL (CLI binary), PGETL_TEST_STATE (cluster state dir), PGETL_SCRIPTS,
# PGETL_SOURCE_DIR, PGETL_BINARY_DIR.
set -euo pipefail

: "${PGETL:?run through ctest (PGETL unset)}"
: "${PGETL_TEST_STATE:?run through ctest (PGETL_TEST_STATE unset)}"
CLUSTER_DSN=$(cat "$PGETL_TEST_STATE/dsn")
PORT=$(cat "$PGETL_TEST_STATE/port")
# Each test script gets a database of its own on the shared cluster (CTest
# runs tests in parallel and they name tables freely). A later dbname in a
# conninfo string overrides the earlier one.
TEST_DB="pgetl_$(basename "${BASH_SOURCE[${#BASH_SOURCE[@]} - 1]}" .sh)"
if [ "$(psql -X -At "$CLUSTER_DSN" -c "SELECT count(*) FROM pg_database WHERE datname = '$TEST_DB'")" = 0 ]; then
    psql -X -q "$CLUSTER_DSN" -c "CREATE DATABASE \"$TEST_DB\" TEMPLATE template0 ENCODING 'UTF8'" \
        >/dev/null 2>&1 || [ "$(psql -X -At "$CLUSTER_DSN" -c "SELECT count(*) FROM pg_database WHERE datname = '$TEST_DB'")" = 1 ]
fi
DSN="$CLUSTER_DSN dbname=$TEST_DB"
PW_DSN="host=127.0.0.1 port=$PORT user=pgetl_pw password=pgetl-secret dbname=$TEST_DB"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# sql "SELECT ..." -> prints the result unaligned, tuples only
sql() {
    psql -X -q -v ON_ERROR_STOP=1 -At "$DSN" -c "$1"
}

# run CMD... : captures stdout/stderr/exit code in OUT, ERR, RC
run() {
    set +e
    "$@" >"$WORK/out" 2>"$WORK/err"
    RC=$?
    set -e
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

expect_rc() {
    [ "$RC" = "$1" ] || fail "expected exit $1, got $RC; stderr: $ERR; stdout: $OUT"
}

expect_contains() { # haystack needle what
    case "$1" in
    *"$2"*) ;;
    *) fail "${3:-output} does not contain '$2': $1" ;;
    esac
}

expect_not_contains() {
    case "$1" in
    *"$2"*) fail "${3:-output} contains '$2': $1" ;;
    *) ;;
    esac
}

# wait_port_file FILE WHAT: waits up to 5 s for FILE to have content (a
# listener started in the background writes its port there once it
# listens); fails saying WHAT did not start otherwise.
wait_port_file() {
    for _ in $(seq 1 100); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    fail "$2 did not start"
}

# paced_export_start NAME SECS [EXPORT FLAGS...]: starts, in the background
# and under `timeout SECS`, a `pgetl export` to $WORK/NAME.csv of a
# 3,000,000-row query that the server paces (0.1 s asleep every 100,000
# rows), so it is still streaming when the caller strikes. Sets EXPORTER (the
# background shell's pid) and BACKEND (the pid of the export's COPY backend,
# found by a column named NAME_<shell pid>; fails when not seen within 15 s).
# Once EXPORTER has been waited for, paced_export_result NAME sets RC, OUT
# and ERR from the export's exit code, stdout and stderr.
paced_export_start() {
    local name=$1 secs=$2
    shift 2
    local col="${name}_$$"
    (
        set +e
        timeout "$secs" "$PGETL" export --dsn "$DSN" --no-progress -o "$WORK/$name.csv" "$@" \
            --query "SELECT g, repeat('x', 50) AS $col FROM generate_series(1, 3000000) g
                     WHERE g % 100000 <> 0 OR pg_sleep(0.1)::text = ''" \
            >"$WORK/$name.out" 2>"$WORK/$name.err"
        echo $? >"$WORK/$name.rc"
    ) &
    EXPORTER=$!
    BACKEND=""
    for _ in $(seq 1 300); do
        BACKEND=$(sql "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'COPY%$col%'
                       AND pid <> pg_backend_pid() LIMIT 1")
        [ -n "$BACKEND" ] && return 0
        sleep 0.05
    done
    fail "no export COPY seen within 15 s"
}

paced_export_result() { # NAME
    RC=$(cat "$WORK/$1.rc")
    OUT=$(cat "$WORK/$1.out")
    ERR=$(cat "$WORK/$1.err")
}
