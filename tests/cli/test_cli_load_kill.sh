#!/usr/bin/env bash
# The server goes away in the middle of a load fed through a pipe:
#  1. pg_terminate_backend() of the loading backend from another session;
#  2. an immediate shutdown of a private cluster this test starts.
# Either way: non-zero exit, a clear message, zero rows committed.
. "$(dirname "$0")/lib_load.sh"

PRIV=$WORK/privdb
trap '"$PGETL_SCRIPTS/testdb.sh" stop "$PRIV" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

# start_load DSN TABLE [OPTION...]: a big generated file piped into pgetl load, in the background.
start_load() {
    local dsn=$1 table=$2
    shift 2
    (
        set +e
        "$GEN" --rows 5000000 | timeout 300 "$PGETL" load --dsn "$dsn" --table "$table" --batch-rows 20000 "$@" - \
            >"$WORK/out" 2>"$WORK/err"
        echo "${PIPESTATUS[1]}" >"$WORK/rc"
    ) &
    LOADER=$!
}

# wait_for_copy DSN TABLE: until a backend runs (or ran) COPY into TABLE.
wait_for_copy() {
    for _ in $(seq 1 600); do
        pid=$(psql -X -At "$1" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
              AND query ILIKE '%COPY%$2%' AND pid <> pg_backend_pid() LIMIT 1" 2>/dev/null || true)
        [ -n "$pid" ] && return 0
        sleep 0.1
    done
    fail "no COPY into $2 seen within 60 s"
}

finish_load() {
    wait "$LOADER" || true
    RC=$(cat "$WORK/rc")
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

# expect_loss_message TABLE WHAT: the error names the input and the batch in
# flight, the table once (also when sending failed), then what happened (the
# server's words with their SQLSTATE, or libpq's); no row or line is blamed
# and no CONTEXT follows: a lost connection is no row's fault.
expect_loss_message() {
    local first
    first=$(printf '%s\n' "$ERR" | grep -v '^pgetl: level=' | head -1)
    printf '%s\n' "$first" | grep -Eq "^pgetl: - \(rows from line [0-9]+\): COPY \"public\"\.\"$1\": (sending data: )?(terminating connection due to (administrator|immediate shutdown) command \[SQLSTATE 57P01\]|server closed the connection unexpectedly)\$" ||
        fail "$2: unexpected message: $ERR"
    expect_not_contains "$ERR" "CONTEXT:" "$2"
    [ "$(printf '%s\n' "$ERR" | grep -o 'COPY "public"' | wc -l)" = 1 ] || fail "$2: the table is named twice: $ERR"
    if printf '%s\n' "$ERR" | grep -Eq ' row [0-9]|line [0-9]+:'; then
        fail "$2: a row or line is blamed for the lost connection: $ERR"
    fi
}

# 1. pg_terminate_backend
T=$(uname_table kill)
create_events_table "$T"
start_load "$DSN" "$T"
wait_for_copy "$DSN" "$T"
sleep 0.5
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'COPY%$T%' AND pid <> pg_backend_pid()" >/dev/null
finish_load
[ "$RC" != 0 ] || fail "load survived pg_terminate_backend with exit 0"
[ "$RC" != 124 ] || fail "load hung after pg_terminate_backend"
expect_rc 1
expect_contains "$ERR" "connection" "message after pg_terminate_backend"
expect_contains "$ERR" "nothing was committed" "message after pg_terminate_backend"
expect_loss_message "$T" "message after pg_terminate_backend"
expect_rows "$T" 0 "after pg_terminate_backend"
sql "DROP TABLE $T"
ok "pg_terminate_backend mid-load: exit 1, clear message, 0 rows"

# 1b. the same with --max-errors (batches under savepoints, in windows)
T=$(uname_table killiso)
create_events_table "$T"
start_load "$DSN" "$T" --max-errors 10
wait_for_copy "$DSN" "$T"
sleep 0.5
# Between windows the backend's last statement may be a bare RELEASE SAVEPOINT:
# every other backend of this test's own database is the load's.
killed=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()
              AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
[ "$killed" -ge 1 ] || fail "no backend to terminate for the --max-errors load"
finish_load
[ "$RC" != 124 ] || fail "--max-errors load hung after pg_terminate_backend"
expect_rc 1
expect_contains "$ERR" "nothing was committed" "--max-errors message after pg_terminate_backend"
expect_loss_message "$T" "--max-errors message after pg_terminate_backend"
expect_rows "$T" 0 "--max-errors load after pg_terminate_backend"
sql "DROP TABLE $T"
ok "pg_terminate_backend mid-load with --max-errors: exit 1, message blames no row, 0 rows"

# 2. immediate shutdown of a private cluster
PDSN=$("$PGETL_SCRIPTS/testdb.sh" start "$PRIV" | tail -1)
ddl=$("$GEN" --sql)
psql -X -q -v ON_ERROR_STOP=1 "$PDSN" -c "$ddl"
start_load "$PDSN" bench_events
wait_for_copy "$PDSN" bench_events
sleep 0.5
"$PGETL_SCRIPTS/testdb.sh" halt "$PRIV" immediate
finish_load
[ "$RC" != 0 ] || fail "load survived a server crash with exit 0"
[ "$RC" != 124 ] || fail "load hung after the server went away"
expect_rc 1
expect_contains "$ERR" "connection" "message after the crash"
expect_loss_message bench_events "message after the crash"
"$PGETL_SCRIPTS/testdb.sh" resume "$PRIV"
n=$(psql -X -At "$PDSN" -c "SELECT count(*) FROM bench_events")
expect_eq "$n" 0 "rows after the crash and recovery"
ok "immediate shutdown mid-load: exit 1, clear message, 0 rows after recovery"

done_testing
