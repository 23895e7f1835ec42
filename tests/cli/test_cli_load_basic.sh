#!/usr/bin/env bash
# pgetl load, good input: formats and flags land the right values; stdin,
# several files, compressed inputs, --truncate, --dry-run, --jobs and every
# --convert mode give the same table as the server's own COPY; progress
# output follows the TTY rules.
. "$(dirname "$0")/lib_load.sh"

T=$(uname_table basic)
create_small_table "$T"
vals() { sql "SELECT string_agg(concat_ws('|', id, coalesce(name, '<null>'), amount, day), ';' ORDER BY id) FROM $T"; }

printf 'ID,Name,amount,day\n1,"a, ""q""",1.5,2024-01-01\n2,,2,2024-01-02\n3,"",3,2024-01-03\n' >"$WORK/a.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/a.csv"
expect_rc 0
expect_eq "$ERR" "" "stderr of a quiet successful load (not a terminal)"
expect_eq "$(vals)" '1|a, "q"|1.5|2024-01-01;2|<null>|2|2024-01-02;3||3|2024-01-03' "csv"
expect_contains "$OUT" "load ok: $WORK/a.csv -> $T"
expect_contains "$OUT" "rows read:     3"
expect_contains "$OUT" "rows loaded:   3"
expect_contains "$OUT" "rows rejected: 0"
expect_contains "$OUT" "rows/s"
expect_contains "$OUT" "MB/s"
ok "csv with header (names folded), quotes, NULL vs empty; summary on stdout, stderr silent"

printf '4\tt\t4\t2024-01-04\n' >"$WORK/b.tsv"
run "$PGETL" load --dsn "$DSN" --table "$T" --format tsv --no-header "$WORK/b.tsv"
expect_rc 0
printf '5\t\\N\t5\t2024-01-05\n6\tx\\ty\t6\t2024-01-06\n' >"$WORK/c.txt"
run "$PGETL" load --dsn "$DSN" --table "$T" --format text --no-header "$WORK/c.txt"
expect_rc 0
printf 'day;amount;id;name\n2024-01-07;7;7;NA\n' >"$WORK/d.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" --delimiter ';' --null NA "$WORK/d.csv"
expect_rc 0
printf "8|'it''s'|8|2024-01-08\n" >"$WORK/e.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" --no-header --delimiter '|' --quote "'" --columns 'ID,name,amount,day' "$WORK/e.csv"
expect_rc 0
expect_eq "$(sql "SELECT string_agg(coalesce(name, '<null>'), ';' ORDER BY id) FROM $T WHERE id >= 4")" \
    $'t;<null>;x\ty;<null>;it\'s' "tsv/text/--null/--quote"
ok "tsv, text (\\N, \\t), --delimiter with --null, --quote with --columns"

# --encoding: LATIN1 bytes arrive as UTF-8 text.
sql "TRUNCATE $T"
printf 'id,name,amount,day\n1,caf\xe9,1,2024-01-01\n' >"$WORK/latin1.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" --encoding LATIN1 "$WORK/latin1.csv"
expect_rc 0
expect_eq "$(sql "SELECT name FROM $T")" "café" "--encoding LATIN1"
ok "--encoding LATIN1"

# --columns with quoted names: case kept, commas inside quotes.
Q=$(uname_table basic_q)
sql "CREATE TABLE $Q (id int, \"Odd, Name\" text, plain text)"
printf '1;x;y\n' >"$WORK/q.csv"
run "$PGETL" load --dsn "$DSN" --table "$Q" --no-header --delimiter ';' --columns 'ID,"Odd, Name",PLAIN' "$WORK/q.csv"
expect_rc 0
expect_eq "$(sql "SELECT id || \"Odd, Name\" || plain FROM $Q")" "1xy" "--columns with quotes"
sql "DROP TABLE $Q"
ok "--columns: unquoted names fold, quoted names keep case and commas"

sql "TRUNCATE $T"
printf 'id,name,amount,day\n1,s,1,2024-01-01\n' | "$PGETL" load --dsn "$DSN" --table "$T" - >"$WORK/o" 2>"$WORK/e"
expect_eq "$(vals)" '1|s|1|2024-01-01' "stdin"
grep -q "load ok: - -> $T" "$WORK/o" || fail "stdin summary: $(cat "$WORK/o")"
printf 'id,name,amount,day\n2,g,2,2024-01-02\n' | gzip -c >"$WORK/f.csv.gz"
printf 'id,name,amount,day\n3,z,3,2024-01-03\n' | zstd -q -c >"$WORK/f.csv.zst"
printf 'id,name,amount,day\n4,p,4,2024-01-04\n' | gzip -c >"$WORK/gz_without_suffix"
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/f.csv.gz" "$WORK/f.csv.zst" "$WORK/gz_without_suffix"
expect_rc 0
expect_eq "$(vals)" '1|s|1|2024-01-01;2|g|2|2024-01-02;3|z|3|2024-01-03;4|p|4|2024-01-04' "compressed"
ok "stdin, several files, gzip and zstd (detected by content)"

run "$PGETL" load --dsn "$DSN" --table "$T" --truncate "$WORK/a.csv"
expect_rc 0
expect_rows "$T" 3 "--truncate"
run "$PGETL" load --dsn "$DSN" --table "$T" --dry-run "$WORK/a.csv"
expect_rc 0
expect_rows "$T" 3 "--dry-run"
expect_contains "$OUT" "load dry-run"
ok "--truncate replaces, --dry-run loads nothing"

# A file name that is not UTF-8 still gives valid JSON (U+FFFD), and the text
# summary shows control characters escaped rather than obeying them.
sql "TRUNCATE $T"
NAME=$'odd\xff\x1b[31m name.csv'
cp "$WORK/a.csv" "$WORK/$NAME"
run "$PGETL" load --dsn "$DSN" --table "$T" --summary-json "$WORK/odd.json" "$WORK/$NAME"
expect_rc 0
expect_contains "$OUT" 'odd'$'\xff''\x1b[31m name.csv' "escaped control character in the text summary"
python3 - "$WORK/odd.json" <<'PYJ'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
assert d["files"][0].endswith("odd\ufffd\x1b[31m name.csv"), d["files"]
assert d["rows_loaded"] == 3 and d["status"] == "ok", d
PYJ
ok "non-UTF-8 and control characters in a file name: valid JSON, escaped text"

# Bigger data: every mode equals the server's own COPY of the same file.
E=$(uname_table basic_ref)
create_events_table "$E"
"$GEN" --rows 50000 -o "$WORK/ev.csv"
psql -X -q -v ON_ERROR_STOP=1 "$DSN" -c "\\copy $E FROM '$WORK/ev.csv' (FORMAT csv, HEADER)"
L=$(uname_table basic_ld)
create_events_table "$L"
for mode in "--convert never" "--convert auto" "--convert always" "--jobs 2 --batch-rows 5000" \
    "--jobs 3 --convert never --batch-rows 7000"; do
    sql "TRUNCATE $L"
    # shellcheck disable=SC2086
    run "$PGETL" load --dsn "$DSN" --table "$L" $mode --summary-json "$WORK/mode.json" "$WORK/ev.csv"
    expect_rc 0
    expect_contains "$OUT" "rows loaded:   50000" "$mode"
    # Batches: raw modes send none as binary, --convert always sends all (the
    # generated events are all convertible), and the text agrees with the JSON.
    python3 - "$WORK/mode.json" "$mode" "$OUT" <<'PYJ'
import json, sys
d, mode, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
n, nb = d["batches"], d["batches_binary"]
assert n >= 1 and 0 <= nb <= n and d["rows_screened"] == 0, d
if "never" in mode:
    assert nb == 0, d
if "always" in mode:
    assert nb == n, d
if "--batch-rows 5000" in mode:
    assert n == 10, d
assert "  batches:       %d (%d as binary COPY)\n" % (n, nb) in out + "\n", out
PYJ
    d=$(sql "SELECT count(*) FROM ((TABLE $E EXCEPT ALL TABLE $L) UNION ALL (TABLE $L EXCEPT ALL TABLE $E)) x")
    expect_eq "$d" 0 "rows differing from COPY with $mode"
    ok "50k events with $mode: identical to the server's COPY"
done

# Progress: nothing on stderr when it is not a terminal; --progress gives
# plain lines; a terminal gets the bar.
sql "TRUNCATE $L"
run "$PGETL" load --dsn "$DSN" --table "$L" --progress "$WORK/ev.csv"
expect_rc 0
expect_contains "$ERR" "pgetl: load: 50000 rows" "--progress plain line"
expect_contains "$ERR" "done" "--progress final line"
expect_not_contains "$ERR" $'\r' "--progress on a pipe"
sql "TRUNCATE $L"
script -qefc "$PGETL load --dsn '$DSN' --table $L $WORK/ev.csv" /dev/null >"$WORK/tty.txt" 2>&1 ||
    fail "load under a pseudo-terminal failed: $(cat "$WORK/tty.txt")"
grep -q $'\r' "$WORK/tty.txt" || fail "no progress bar on a terminal: $(cat "$WORK/tty.txt")"
grep -q "rows/s" "$WORK/tty.txt" || fail "the bar lacks rows/s"
grep -q "ETA" "$WORK/tty.txt" || fail "the bar lacks an ETA"
sql "TRUNCATE $L"
script -qefc "$PGETL load --dsn '$DSN' --table $L --no-progress $WORK/ev.csv" /dev/null >"$WORK/tty2.txt" 2>&1
grep -q "ETA" "$WORK/tty2.txt" && fail "--no-progress still drew a bar"
ok "progress: silent on pipes, plain lines with --progress, a bar (rows/s, ETA) on a terminal"

sql "DROP TABLE $T; DROP TABLE $E; DROP TABLE $L"
done_testing
