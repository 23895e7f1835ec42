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
