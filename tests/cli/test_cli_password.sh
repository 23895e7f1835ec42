#!/usr/bin/env bash
# A wrong password: exit 1, a clear message, and the password appears in no
# output (stdout, stderr, the JSON summary) of load, export or check. A right
# password works and is not printed either.
. "$(dirname "$0")/lib_load.sh"

T=$(uname_table pw)
create_small_table "$T"
printf 'id,name,amount,day\n1,a,1,2024-01-01\n' >"$WORK/a.csv"
SECRET="Wr0ng-Pa55-$$-zq"
BAD_KV="host=127.0.0.1 port=$PORT user=pgetl_pw password=$SECRET dbname=postgres"
BAD_URI="postgresql://pgetl_pw:$SECRET@127.0.0.1:$PORT/postgres"

for dsn in "$BAD_KV" "$BAD_URI"; do
    run "$PGETL" load --dsn "$dsn" --table "$T" --summary-json "$WORK/s.json" "$WORK/a.csv"
    expect_rc 1
    expect_contains "$ERR" "password authentication failed"
    expect_not_contains "$OUT$ERR$(cat "$WORK/s.json")" "$SECRET" "load output"
    expect_rows "$T" 0 "wrong password"
    run env PGETL_DSN="$dsn" "$PGETL" export --table "$T" --summary-json "$WORK/s.json" -o "$WORK/x.csv"
    expect_rc 1
    expect_contains "$ERR" "password authentication failed"
    expect_not_contains "$OUT$ERR$(cat "$WORK/s.json")" "$SECRET" "export output"
    [ ! -e "$WORK/x.csv" ] || fail "a failed export left its output"
    run "$PGETL" check --dsn "$dsn"
    expect_rc 1
    expect_not_contains "$OUT$ERR" "$SECRET" "check output"
done
ok "wrong password (key=value and URI): exit 1, message, never printed"

# DSNs that do not even parse: a clear error, still without the password.
for dsn in "host=127.0.0.1 port=$PORT password=$SECRET nosuchkey=1" \
    "postgresql://pgetl_pw:$SECRET@127.0.0.1:$PORT/postgres?nosuchparam=1" \
    "host='unterminated password=$SECRET" "postgresql://pgetl_pw:$SECRET@[::1"; do
    run "$PGETL" load --dsn "$dsn" --table "$T" --summary-json "$WORK/s.json" "$WORK/a.csv"
    expect_rc 1
    [ -n "$ERR" ] || fail "no message for the bad DSN"
    expect_not_contains "$OUT$ERR$(cat "$WORK/s.json")" "$SECRET" "load output for a bad DSN"
    run "$PGETL" export --dsn "$dsn" --table "$T"
    expect_rc 1
    expect_not_contains "$OUT$ERR" "$SECRET" "export output for a bad DSN"
done
expect_rows "$T" 0 "bad DSNs"
ok "unparseable DSNs: exit 1, a message, the password never printed"

run "$PGETL" load --dsn "$PW_DSN" --table "$T" --summary-json "$WORK/s.json" "$WORK/a.csv"
expect_rc 0
expect_rows "$T" 1
expect_not_contains "$OUT$ERR$(cat "$WORK/s.json")" "pgetl-secret" "load output"
run "$PGETL" export --dsn "$PW_DSN" --table "$T" --summary-json "$WORK/s.json"
expect_rc 0
expect_not_contains "$OUT$ERR$(cat "$WORK/s.json")" "pgetl-secret" "export output"
ok "right password: works, never printed"

sql "DROP TABLE $T"
done_testing
