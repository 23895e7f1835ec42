#!/usr/bin/env bash
# pgetl load, bad input: each case asserts the exit code, the message text
# and that nothing was committed (atomic mode), and that the input is
# untouched. BOM and CRLF files are not bad: they load.
. "$(dirname "$0")/lib_load.sh"

T=$(uname_table bad)
create_small_table "$T"
HDR='id,name,amount,day'

# load_fails NAME EXPECTED_MESSAGE FILE [ARGS...]: exit 1, message, 0 rows, input unchanged
load_fails() {
    local name=$1 msg=$2 file=$3
    shift 3
    local before=""
    [ -f "$file" ] && before=$(md5sum <"$file")
    run "$PGETL" load --dsn "$DSN" --table "$T" --no-progress "$@" "$file"
    expect_rc 1
    expect_contains "$ERR" "$msg" "$name: stderr"
    [ -n "${PRECHECK:-}" ] || expect_contains "$ERR" "nothing was committed" "$name: stderr"
    expect_rows "$T" 0 "$name"
    [ -z "$before" ] || [ "$(md5sum <"$file")" = "$before" ] || fail "$name: the input file changed"
    ok "$name: exit 1, '$msg', nothing committed"
}

f=$WORK/unterminated.csv
printf '%s\n1,ok,1,2024-01-01\n2,"never closed,2,2024-01-02\n3,x,3,2024-01-03\n' "$HDR" >"$f"
load_fails "unterminated quote at EOF" "line 3" "$f"
expect_contains "$ERR" "quote" "unterminated quote message"

f=$WORK/ragged.csv
printf '%s\n1,a,1,2024-01-01\n2,b\n3,c,3,2024-01-03,extra\n' "$HDR" >"$f"
load_fails "ragged rows" "line 3" "$f"

f=$WORK/invalid_utf8.csv
printf '%s\n1,a,1,2024-01-01\n2,b\xff\xfe,2,2024-01-02\n' "$HDR" >"$f"
load_fails "invalid UTF-8" "line 3" "$f"
expect_contains "$ERR" "UTF8" "invalid UTF-8 message"

f=$WORK/nul.csv
printf '%s\n1,a,1,2024-01-01\n2,b\0c,2,2024-01-02\n' "$HDR" >"$f"
load_fails "embedded NUL" "line 3" "$f"

f=$WORK/type.csv
printf '%s\n1,a,1,2024-01-01\n2,b,2,2024-01-02\nthree,c,3,2024-01-03\n' "$HDR" >"$f"
load_fails "type violation" "[SQLSTATE 22P02]" "$f"
expect_contains "$ERR" "line 4" "type violation line"
expect_contains "$ERR" 'invalid input syntax for type integer: "three"' "type violation"

f=$WORK/date.csv
printf '%s\n1,a,1,2024-02-30\n' "$HDR" >"$f"
load_fails "bad date" "[SQLSTATE 22008]" "$f"

f=$WORK/check.csv
printf '%s\n1,a,1,2024-01-01\n2,b,-5,2024-01-02\n' "$HDR" >"$f"
load_fails "check constraint" "[SQLSTATE 23514]" "$f"
expect_contains "$ERR" "line 3" "check constraint line"

f=$WORK/notnull.csv
printf '%s\n1,a,1,2024-01-01\n,b,2,2024-01-02\n' "$HDR" >"$f"
load_fails "not-null constraint" "[SQLSTATE 23502]" "$f"

f=$WORK/semicolon.csv
printf 'id;name;amount;day\n1;a;1;2024-01-01\n' >"$f"
load_fails "wrong delimiter (header)" "id;name;amount;day" "$f"
expect_contains "$ERR" "unknown column" "wrong delimiter"
printf '1;a;1;2024-01-01\n' >"$f"
load_fails "wrong delimiter (no header)" "line 1" "$f" --no-header

f=$WORK/second_bad.csv
printf '%s\n10,ok,1,2024-01-01\n' "$HDR" >"$WORK/first_good.csv"
printf '%s\n11,bad,-1,2024-01-01\n' "$HDR" >"$f"
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/first_good.csv" "$f"
expect_rc 1
expect_contains "$ERR" "second_bad.csv" "the failing file is named"
expect_rows "$T" 0 "two files, the second bad"
ok "two files, the second bad: the first one's rows are not committed either"

# An empty file is no data (like a header-only file): nothing to load, exit 0.
printf '' >"$WORK/empty.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/empty.csv"
expect_rc 0
expect_contains "$OUT" "rows read:     0"
expect_rows "$T" 0 "empty file"
ok "empty file: exit 0, 0 rows read, 0 loaded"

printf '%s\n1,a,1,2024-01-01\n' "$HDR" | gzip -c >"$WORK/full.csv.gz"
"$GEN" --rows 20000 | gzip -c >"$WORK/big.csv.gz"
head -c $(($(stat -c %s "$WORK/big.csv.gz") / 2)) "$WORK/big.csv.gz" >"$WORK/truncated.csv.gz"
E=$(uname_table bad_ev)
create_events_table "$E"
run "$PGETL" load --dsn "$DSN" --table "$E" "$WORK/truncated.csv.gz"
expect_rc 1
expect_contains "$ERR" "truncated.csv.gz" "truncated gzip names the file"
expect_contains "$ERR" "gzip" "truncated gzip says gzip"
expect_rows "$E" 0 "truncated gzip"
ok "truncated gzip: exit 1, named, nothing committed"

# Checked before connecting: nothing was started, so there is nothing to roll back.
PRECHECK=1 load_fails "file not found" "cannot read \"$WORK/nope.csv\": No such file or directory" "$WORK/nope.csv"
mkdir "$WORK/adir"
PRECHECK=1 load_fails "a directory as FILE" "cannot load \"$WORK/adir\": it is a directory" "$WORK/adir"

run "$PGETL" load --dsn "$DSN" --table "nosuch_$$" "$WORK/first_good.csv"
expect_rc 1
expect_contains "$ERR" "does not exist"
expect_contains "$ERR" "nosuch_$$"
ok "unknown table: exit 1, named"

run "$PGETL" load --dsn "$DSN" --table "$T" --columns id,nosuchcol "$WORK/first_good.csv"
expect_rc 1
expect_contains "$ERR" "nosuchcol"
expect_rows "$T" 0 "unknown column"
ok "unknown --columns name: exit 1, named"

# Not bad: a UTF-8 BOM and CRLF line ends load.
printf '\xef\xbb\xbf%s\n1,bom,1,2024-01-01\n' "$HDR" >"$WORK/bom.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/bom.csv"
expect_rc 0
expect_eq "$(sql "SELECT id || ':' || name FROM $T")" "1:bom" "BOM file"
ok "UTF-8 BOM: loads, the BOM is not part of the first column name"
sql "TRUNCATE $T"

printf '%s\r\n1,crlf,1,2024-01-01\r\n2,"two\r\nlines",2,2024-01-02\r\n' "$HDR" >"$WORK/crlf.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/crlf.csv"
expect_rc 0
expect_eq "$(sql "SELECT string_agg(name || '|' || day, ';' ORDER BY id) FROM $T")" \
    $'crlf|2024-01-01;two\r\nlines|2024-01-02' "CRLF file"
ok "CRLF line ends: load, no stray \\r in values (quoted CRLF kept)"
sql "TRUNCATE $T"

printf '%s\n' "$HDR" >"$WORK/header_only.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/header_only.csv"
expect_rc 0
expect_contains "$OUT" "rows read:     0"
expect_rows "$T" 0 "header only"
ok "header only: exit 0, 0 rows"

sql "DROP TABLE $T; DROP TABLE $E"
done_testing
