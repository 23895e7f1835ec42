#!/usr/bin/env bash
# pgetl load/export: every hostile or malformed flag is a usage error (exit 2)
# with a message naming it, and nothing is done: the table (which the
# command asks to --truncate) keeps its rows.
. "$(dirname "$0")/lib_load.sh"

T=$(uname_table args)
create_small_table "$T"
sql "INSERT INTO $T VALUES (1, 'keep', 1, '2024-01-01'), (2, 'me', 2, '2024-01-02')"
printf 'id,name,amount,day\n3,x,3,2024-01-03\n' >"$WORK/good.csv"

# bad_load "expected message" ARGS... : exit 2, message, table untouched
bad_load() {
    local msg=$1
    shift
    run "$PGETL" load --dsn "$DSN" --truncate "$@"
    expect_rc 2
    expect_contains "$ERR" "$msg" "stderr of load $*"
    expect_eq "$OUT" "" "stdout of load $*"
    expect_rows "$T" 2 "after load $*"
    ok "load $* -> usage error: $msg"
}

bad_load '--jobs takes a whole number from 1 to 64 (got "0")' --table "$T" --jobs 0 "$WORK/good.csv"
bad_load '--jobs takes a whole number from 1 to 64 (got "-1")' --table "$T" --jobs -1 "$WORK/good.csv"
bad_load '--jobs takes a whole number from 1 to 64 (got "abc")' --table "$T" --jobs abc "$WORK/good.csv"
bad_load '--jobs takes a whole number from 1 to 64 (got "65")' --table "$T" --jobs 65 "$WORK/good.csv"
bad_load '--jobs takes a whole number from 1 to 64 (got "2x")' --table "$T" -j 2x "$WORK/good.csv"
bad_load '--jobs takes a whole number from 1 to 64 (got "")' --table "$T" --jobs= "$WORK/good.csv"
bad_load '--jobs takes a whole number from 1 to 64 (got "99999999999999999999999")' \
    --table "$T" --jobs 99999999999999999999999 "$WORK/good.csv"
bad_load '--max-errors takes a whole number from 0 to' --table "$T" --max-errors -5 "$WORK/good.csv"
bad_load '--max-errors takes a whole number from 0 to' --table "$T" --max-errors 1.5 "$WORK/good.csv"
bad_load '--batch-rows takes a whole number from 1 to' --table "$T" --batch-rows 0 "$WORK/good.csv"
bad_load '--delimiter takes exactly one single-byte character (got ";;")' \
    --table "$T" --delimiter ';;' "$WORK/good.csv"
bad_load '--delimiter takes exactly one single-byte character (got "")' \
    --table "$T" --delimiter '' "$WORK/good.csv"
bad_load '--delimiter cannot be a line break or a non-ASCII byte' \
    --table "$T" --delimiter $'\n' "$WORK/good.csv"
bad_load '--delimiter takes exactly one single-byte character (got "é")' \
    --table "$T" --delimiter 'é' "$WORK/good.csv"
bad_load '--quote takes exactly one single-byte character' --table "$T" --quote "''" "$WORK/good.csv"
bad_load 'the delimiter and the quote must differ' --table "$T" --delimiter '"' "$WORK/good.csv"
bad_load '--quote and --escape apply to csv and tsv only' \
    --table "$T" --format text --quote "'" "$WORK/good.csv"
bad_load '--format must be one of csv, tsv, text (got "xml")' --table "$T" --format xml "$WORK/good.csv"
bad_load '--convert must be one of auto, never, always (got "sometimes")' \
    --table "$T" --convert sometimes "$WORK/good.csv"
bad_load '--encoding takes an encoding name' --table "$T" --encoding "UTF8'; DROP TABLE $T; --" "$WORK/good.csv"
bad_load '--null cannot contain a line break' --table "$T" --null $'a\nb' "$WORK/good.csv"
bad_load '--null cannot contain the delimiter' --table "$T" --null 'a,b' "$WORK/good.csv"
bad_load 'unknown option "--bogus"' --table "$T" --bogus "$WORK/good.csv"
bad_load 'unknown option "-x"' --table "$T" -x "$WORK/good.csv"
bad_load 'unknown option "--no-truncate=..."' --table "$T" --no-truncate=1 "$WORK/good.csv"
bad_load 'option "--table" needs a value' "$WORK/good.csv" --table
bad_load 'option "--table" needs a value (got the option "--jobs")' --table --jobs 2 "$WORK/good.csv"
bad_load 'option "--reject-file" needs a value' --table "$T" "$WORK/good.csv" --reject-file
bad_load '--table is required' "$WORK/good.csv"
bad_load 'no input files' --table "$T"
bad_load 'standard input (-) can be read only once' --table "$T" - -
bad_load 'bad --table' --table 'a.b.c' "$WORK/good.csv"
bad_load 'bad --table' --table '"unterminated' "$WORK/good.csv"
bad_load 'bad --table' --table '' "$WORK/good.csv"
bad_load 'bad --table' --table "$T; DROP TABLE $T" "$WORK/good.csv"
bad_load '--columns: empty column name' --table "$T" --columns 'id,,name' "$WORK/good.csv"
bad_load '--columns: a.b is not a column name' --table "$T" --columns 'id,a.b' "$WORK/good.csv"
bad_load '--columns: bad column name' --table "$T" --columns 'id,"open' "$WORK/good.csv"
bad_load 'an input file name is empty' --table "$T" ''

# An output that is also an input would be truncated: refused before anything opens.
cp "$WORK/good.csv" "$WORK/in.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" --truncate --summary-json "$WORK/in.csv" "$WORK/in.csv"
expect_rc 1
expect_contains "$ERR" "is an input file and cannot also be an output"
cmp -s "$WORK/in.csv" "$WORK/good.csv" || fail "the input file was modified"
expect_rows "$T" 2 "after --summary-json = input"
ok "--summary-json naming the input is refused and the input is intact"
run "$PGETL" load --dsn "$DSN" --table "$T" --truncate --max-errors 5 --reject-file "$WORK/in.csv" "$WORK/in.csv"
expect_rc 1
expect_contains "$ERR" "is an input file and cannot also be an output"
cmp -s "$WORK/in.csv" "$WORK/good.csv" || fail "the input file was modified"
ok "--reject-file naming the input is refused"

# An unwritable summary path is found before anything is loaded.
run "$PGETL" load --dsn "$DSN" --table "$T" --truncate --summary-json "$WORK/no/dir/s.json" "$WORK/good.csv"
expect_rc 1
expect_contains "$ERR" "cannot write the summary to \"$WORK/no/dir/s.json\": No such file or directory"
expect_rows "$T" 2 "after an unwritable --summary-json"
ok "unwritable --summary-json: exit 1 before loading (table untouched)"

# --help documents every option and the exit codes; it is not an error.
run "$PGETL" load --help
expect_rc 0
for word in --dsn --table --columns --header --no-header --format --delimiter --quote --escape \
    --null --encoding --truncate --batch-rows --jobs --max-errors --reject-file --progress \
    --no-progress --summary-json --dry-run --convert "Exit codes" "0  loaded" "1  failed" \
    "2  usage error" "3  loaded, but some rows were rejected" "Examples"; do
    expect_contains "$OUT" "$word" "load --help"
done
ok "load --help documents every flag and exit code"
run "$PGETL" --help
expect_rc 0
expect_contains "$OUT" "load" && expect_contains "$OUT" "export"
ok "pgetl --help lists load and export"

# export
bad_export() {
    local msg=$1
    shift
    run "$PGETL" export --dsn "$DSN" "$@"
    expect_rc 2
    expect_contains "$ERR" "$msg" "stderr of export $*"
    expect_eq "$OUT" "" "stdout of export $*"
    ok "export $* -> usage error: $msg"
}
bad_export 'give exactly one of --query and --table' --table "$T" --query 'SELECT 1'
bad_export 'give exactly one of --query and --table'
bad_export '--format must be one of csv, tsv, binary (got "xml")' --table "$T" --format xml
bad_export '--header needs --format csv or tsv' --table "$T" --format binary --header -o "$WORK/x.bin"
bad_export '--compress must be one of none, gzip, zstd, auto (got "lz4")' --table "$T" --compress lz4
bad_export 'unknown option "--bogus"' --table "$T" --bogus
bad_export 'option "--query" needs a value' --query
bad_export 'unexpected argument "extra"' --table "$T" extra
bad_export 'bad --table' --table 'x.y.z'
[ ! -e "$WORK/x.bin" ] || fail "a usage error created the output file"
run "$PGETL" export --help
expect_rc 0
for word in --query --table --format --header --output --compress --summary-json "Exit codes"; do
    expect_contains "$OUT" "$word" "export --help"
done
ok "export --help documents its flags"

sql "DROP TABLE $T"
done_testing
