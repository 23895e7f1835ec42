#!/usr/bin/env bash
# pgetl --version / --help / check: output, redaction, usage errors.
. "$(dirname "$0")/lib.sh"

run "$PGETL" --version
expect_rc 0
expect_contains "$OUT" "pgetl 0." "--version"

run "$PGETL" --help
expect_rc 0
for word in check "Exit codes" "usage error"; do expect_contains "$OUT" "$word" "--help"; done
# The timeout flags that check, load and export share, each with its default.
for word in "--connect-timeout SECS" "(default 10)" "--statement-timeout SECS" \
    "--io-timeout SECS" "(default 3600)" "--tcp-user-timeout SECS" "--keepalives-idle SECS" \
    "(default 60)"; do
    expect_contains "$OUT" "$word" "--help"
done

run "$PGETL"
expect_rc 2

run "$PGETL" frobnicate
expect_rc 2
expect_contains "$ERR" 'unknown command "frobnicate"'

run "$PGETL" check --bogus
expect_rc 2
expect_contains "$ERR" "--bogus"

run "$PGETL" check --dsn "$DSN" extra
expect_rc 2
expect_contains "$ERR" 'unexpected argument "extra"'

# A working connection over the socket.
run "$PGETL" check --dsn "$DSN"
expect_rc 0
expect_contains "$OUT" "server:   PostgreSQL 15" "check"
expect_contains "$OUT" "user:     postgres" "check"
expect_contains "$OUT" "tls:      off" "check"

# With a password: it works, and the password is never printed.
run "$PGETL" check --dsn "$PW_DSN"
expect_rc 0
expect_contains "$OUT" "user:     pgetl_pw"
expect_contains "$OUT" "password=********"
expect_not_contains "$OUT$ERR" "pgetl-secret" "check output"

# Same through a URI and through the environment.
run "$PGETL" check --dsn "postgresql://pgetl_pw:pgetl-secret@127.0.0.1:$PORT/postgres"
expect_rc 0
expect_not_contains "$OUT$ERR" "pgetl-secret" "check output (URI)"
expect_contains "$OUT" "postgresql://pgetl_pw:********@127.0.0.1"

PGETL_DSN="$PW_DSN" run "$PGETL" check
expect_rc 0
expect_contains "$OUT" "user:     pgetl_pw"
expect_not_contains "$OUT$ERR" "pgetl-secret"

env -u PGETL_DSN PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=pgetl_pw PGPASSWORD=pgetl-secret \
    PGDATABASE=postgres "$PGETL" check >"$WORK/out" 2>"$WORK/err" || fail "check from PG* env failed: $(cat "$WORK/err")"
grep -q "user:     pgetl_pw" "$WORK/out" || fail "PG* environment not used"
! grep -q "pgetl-secret" "$WORK/out" "$WORK/err" || fail "password printed (PG* env)"

# Wrong password: exit 1, clear message, password never printed.
run "$PGETL" check --dsn "host=127.0.0.1 port=$PORT user=pgetl_pw password=wrong-hunter2 dbname=postgres"
expect_rc 1
expect_contains "$ERR" "password authentication failed"
expect_not_contains "$OUT$ERR" "wrong-hunter2" "wrong-password output"

# A DSN libpq cannot parse: configuration error naming it, secret masked.
run "$PGETL" check --dsn "host=x password='unterminated-secret"
expect_rc 1
expect_contains "$ERR" "invalid DSN"
expect_not_contains "$ERR" "unterminated-secret" "bad DSN message"

# An unterminated quote swallows "password=..." into another value: the
# tokens can't be trusted, so everything from "password" on is masked.
run "$PGETL" check --dsn "host='x password=SWALLOWED-secret"
expect_rc 1
expect_contains "$ERR" "invalid DSN"
expect_not_contains "$ERR" "SWALLOWED-secret" "unterminated-quote message"
expect_not_contains "$ERR" "SWALLOWED" "unterminated-quote message"

# A URI password with an unescaped '/' is split by libpq, which then reports a
# piece of it as the port: the message is withheld, with the fix named.
run "$PGETL" check --dsn "postgresql://pgetl_pw:SPLIT/secret@127.0.0.1:$PORT/postgres"
expect_rc 1
expect_contains "$ERR" "percent-encode"
expect_not_contains "$ERR" "SPLIT" "split-password message"
expect_not_contains "$ERR" "secret@" "split-password message"

# Nobody listening.
run "$PGETL" check --dsn "host=127.0.0.1 port=1 connect_timeout=2 user=x"
expect_rc 1
expect_contains "$ERR" "could not connect"
echo "ok"
