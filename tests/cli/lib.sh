# Shared helpers for the shell tests. Sourced; expects the CTest environment:
# PGETL (CLI binary), PGETL_TEST_STATE (cluster state dir), PGETL_SCRIPTS,
# PGETL_SOURCE_DIR, PGETL_BINARY_DIR.
set -euo pipefail

: "${PGETL:?run through ctest (PGETL unset)}"
: "${PGETL_TEST_STATE:?run through ctest (PGETL_TEST_STATE unset)}"
DSN=$(cat "$PGETL_TEST_STATE/dsn")
PORT=$(cat "$PGETL_TEST_STATE/port")
PW_DSN="host=127.0.0.1 port=$PORT user=pgetl_pw password=pgetl-secret dbname=postgres"
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
