# Helpers for the load/export shell tests, on top of lib.sh. Sourced.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${PGETL_BINARY_DIR:?run through ctest (PGETL_BINARY_DIR unset)}"
GEN=$PGETL_BINARY_DIR/bench/gen_events
[ -x "$GEN" ] || fail "the data generator $GEN is not built (PGETL_BUILD_BENCH=ON builds it)"
PASSED=0

# A table name no other test (or run) uses.
uname_table() {
    echo "${1}_$$_${RANDOM}"
}

ok() {
    PASSED=$((PASSED + 1))
    echo "ok $PASSED - $*"
}

expect_eq() { # actual expected what
    [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}

count_rows() {
    sql "SELECT count(*) FROM $1"
}

expect_rows() { # table n what
    local n
    n=$(count_rows "$1")
    [ "$n" = "$2" ] || fail "${3:-$1}: expected $2 rows in $1, found $n"
}

# The bench_events schema (NOT NULL id, CHECK on qty) under another name.
create_events_table() {
    local ddl
    ddl=$("$GEN" --sql)
    sql "${ddl/bench_events/$1}" >/dev/null
}

# A simple table for small hand-written files.
create_small_table() {
    sql "CREATE TABLE $1 (id integer NOT NULL, name text, amount numeric CHECK (amount >= 0), day date)" >/dev/null
}

done_testing() {
    echo "$PASSED passed, 0 failed"
}
