#!/usr/bin/env bash
# Usage errors never echo a password given with the DSN (found by the fuzz
# target fuzz_cli_getopt; its reproducers are in fuzz/corpus/cli_getopt/).
# Each command line below printed the password before the fix: getopt's
# argv[optind - 1] was the DSN for an unknown option inside a "-Xv" cluster
# and argv[optind - 2] for "--table=--progress"; "--dsn=..." before the
# command, an ambiguous "--d=...", load's -d (--delimiter, but check's -d is
# --dsn) and "-t --d=..." (the table name) were echoed whole. Nothing
# connects: every one is exit 2.
. "$(dirname "$0")/lib_load.sh"

S="Pw7-usage-$$"
URI="postgresql://u:$S@127.0.0.1:1/db"
KV="host=127.0.0.1 port=1 password=$S"

# leak_free "expected message" ARGS...: exit 2, the message, no password on stdout or stderr
leak_free() {
    local msg=$1
    shift
    run "$PGETL" "$@"
    expect_rc 2
    expect_contains "$ERR" "$msg" "stderr of $*"
    expect_not_contains "$ERR$OUT" "$S" "output of $*"
    ok "$* -> $msg"
}

for D in "$URI" "$KV"; do
    leak_free 'unknown option "-X"' load --dsn "$D" -Xv -t t f.csv
    leak_free 'unknown option "-X"' export --dsn "$D" -Xh -t t
    leak_free 'unknown or incomplete option "-X"' check --dsn "$D" -Xh
    leak_free 'unknown command "--dsn=..."' "--dsn=$D" load -t t f.csv
    leak_free 'unknown option "--d=..."' load "--d=$D" -t t f.csv
    leak_free '--delimiter takes exactly one single-byte character' load -d "$D" -t t f.csv
    leak_free 'option "-t" needs a value (got the option "--d=...")' load -t "--d=$D" f.csv
    leak_free 'option "-t" needs a value (got the option "--ds=...")' export -t "--ds=$D"
    leak_free 'option "--table" needs a value (got the option "--progress")' \
        load --dsn "$D" --table=--progress f.csv
    leak_free 'option "--query" needs a value (got the option "--header")' \
        export --dsn "$D" --query=--header
    leak_free 'unexpected argument' check --dsn x "$D"
    leak_free '--jobs takes a whole number from 1 to 64' load --jobs "$D" -t t f.csv
done
done_testing
