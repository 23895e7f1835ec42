#!/usr/bin/env bash
# pgetl export: bytes equal to the server's own COPY output (csv, tsv,
# binary), gzip/zstd outputs that decompress to the same bytes, a clean
# stdout, no file left behind by a failed export, hostile table names, valid
# JSON summaries, an export -> load round trip, and bounded memory.
. "$(dirname "$0")/lib_load.sh"

E=$(uname_table exp)
create_events_table "$E"
"$GEN" --rows 20000 -o "$WORK/ev.csv"
psql -X -q -v ON_ERROR_STOP=1 "$DSN" -c "\\copy $E FROM '$WORK/ev.csv' (FORMAT csv, HEADER)"
expect_rows "$E" 20000

# psql_copy FILE OPTIONS: the server's own COPY output, as the reference.
psql_copy() {
    psql -X -q -v ON_ERROR_STOP=1 "$DSN" -c "\\copy $E TO '$1' ($2)"
}

psql_copy "$WORK/ref.csv" "FORMAT csv, HEADER"
run "$PGETL" export --dsn "$DSN" --table "$E" --header -o "$WORK/out.csv"
expect_rc 0
cmp "$WORK/out.csv" "$WORK/ref.csv" || fail "csv export differs from COPY's output"
expect_contains "$ERR" "export ok: $E -> $WORK/out.csv" "summary"
expect_contains "$ERR" "rows:          20000" "summary"
expect_eq "$OUT" "" "stdout with -o"
ok "csv export equals the server's COPY output, summary on stderr"

run "$PGETL" export --dsn "$DSN" --table "$E" --header
expect_rc 0
cmp "$WORK/out" "$WORK/ref.csv" || fail "export to stdout is not exactly the data"
expect_contains "$ERR" "rows:          20000" "summary on stderr"
ok "export to stdout: stdout holds exactly the data"

psql_copy "$WORK/ref.tsv" "FORMAT csv, DELIMITER E'\\t'"
run "$PGETL" export --dsn "$DSN" --table "$E" --format tsv -o "$WORK/out.tsv"
expect_rc 0
cmp "$WORK/out.tsv" "$WORK/ref.tsv" || fail "tsv export differs"
psql_copy "$WORK/ref.bin" "FORMAT binary"
run "$PGETL" export --dsn "$DSN" --table "$E" --format binary -o "$WORK/out.bin"
expect_rc 0
cmp "$WORK/out.bin" "$WORK/ref.bin" || fail "binary export differs"
expect_contains "$ERR" "rows:          20000" "binary summary counts rows, not messages"
ok "tsv and binary exports equal COPY's output"

for ext in gz zst; do
    run "$PGETL" export --dsn "$DSN" --table "$E" --header -o "$WORK/out.csv.$ext" --summary-json "$WORK/s.json"
    expect_rc 0
    case $ext in
    gz) gzip -t "$WORK/out.csv.gz"; gzip -dc "$WORK/out.csv.gz" >"$WORK/dec.csv" ;;
    zst) zstd -q -t "$WORK/out.csv.zst"; zstd -q -dc "$WORK/out.csv.zst" >"$WORK/dec.csv" ;;
    esac
    cmp "$WORK/dec.csv" "$WORK/ref.csv" || fail "$ext output does not decompress to the csv bytes"
    csize=$(stat -c %s "$WORK/out.csv.$ext")
    [ "$csize" -lt "$(stat -c %s "$WORK/ref.csv")" ] || fail "$ext output is not smaller"
    bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$WORK/s.json")
    expect_eq "$bytes" "$csize" "$ext summary bytes = compressed size"
    ok "$ext output decompresses ($ext -d) to the same bytes"
done
run "$PGETL" export --dsn "$DSN" --table "$E" --header --compress zstd
expect_rc 0
zstd -q -dc "$WORK/out" | cmp - "$WORK/ref.csv" || fail "--compress zstd to a pipe"
ok "--compress zstd to stdout"

# Queries: trailing semicolon and comment; several statements are refused.
run "$PGETL" export --dsn "$DSN" --query "SELECT id FROM $E WHERE id <= 10 ORDER BY id; -- first ten"
expect_rc 0
expect_eq "$OUT" "$(seq 1 10)" "query export"
ok "query with a trailing ; and -- comment"
run "$PGETL" export --dsn "$DSN" --query "SELECT 1; DROP TABLE $E"
expect_rc 1
expect_contains "$ERR" "[SQLSTATE 42601]"
expect_rows "$E" 20000 "after a smuggled DROP"
ok "a second statement in --query is refused (42601), the table survives"

# A failure leaves no file: neither a new one nor a clobbered old one.
echo "old content" >"$WORK/keep.csv"
run "$PGETL" export --dsn "$DSN" -o "$WORK/keep.csv" \
    --query "SELECT CASE WHEN i = 50000 THEN 1/0 ELSE i END FROM generate_series(1, 100000) i"
expect_rc 1
expect_contains "$ERR" "division by zero [SQLSTATE 22012]"
expect_eq "$(cat "$WORK/keep.csv")" "old content" "output after a failed export"
ls "$WORK" | grep -q pgetl- && fail "a temporary file was left behind: $(ls "$WORK")"
run "$PGETL" export --dsn "$DSN" -o "$WORK/new.csv" --query "SELECT * FROM nosuch_table_$$"
expect_rc 1
expect_contains "$ERR" "[SQLSTATE 42P01]"
[ ! -e "$WORK/new.csv" ] || fail "a failed export created its output"
run "$PGETL" export --dsn "$DSN" --table "nosuch_$$" -o "$WORK/new.csv"
expect_rc 1
expect_contains "$ERR" "does not exist [SQLSTATE 42P01]"
ok "failed exports (mid-stream 22012, unknown table) leave no file and keep old ones"

run "$PGETL" export --dsn "$DSN" --table "$E" -o "$WORK/no/such/dir/x.csv"
expect_rc 1
expect_contains "$ERR" "cannot write \"$WORK/no/such/dir/x.csv\": No such file or directory"
run "$PGETL" export --dsn "$DSN" --table "$E" -o "$WORK"
expect_rc 1
expect_contains "$ERR" "it is a directory"
ok "unwritable outputs: clear errors"

# Hostile table names are names.
H='we"ird; DROP TABLE '"$E"'; --'
sql "CREATE TABLE \"${H//\"/\"\"}\" (v text)"
sql "INSERT INTO \"${H//\"/\"\"}\" VALUES ('a,b'), ('q\"q')"
run "$PGETL" export --dsn "$DSN" --table "\"${H//\"/\"\"}\""
expect_rc 0
expect_eq "$OUT" $'"a,b"\n"q""q"' "hostile-name export"
expect_rows "$E" 20000 "after the hostile name"
sql "DROP TABLE \"${H//\"/\"\"}\""
ok "a table named like an injection is exported as a name"

# The JSON summary escapes names with quotes, backslashes, unicode, newlines.
J="$WORK/sum \"q\" \\ é
x.json"
O="$WORK/out \"q\" \\ ü.csv"
run "$PGETL" export --dsn "$DSN" --query 'SELECT 1 AS "a""b"' --header -o "$O" --summary-json "$J"
expect_rc 0
python3 - "$J" "$O" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
assert d["output"] == sys.argv[2], d["output"]
assert d["query"] == 'SELECT 1 AS "a""b"', d["query"]
assert d["status"] == "ok" and d["exit_code"] == 0 and d["rows_read"] == 1, d
assert d["error"] is None
PY
ok "summary JSON is valid and holds hostile names exactly"

run "$PGETL" export --dsn "$DSN" --query "SELECT 1/0" --summary-json "$WORK/f.json"
expect_rc 1
python3 - "$WORK/f.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "failed" and d["exit_code"] == 1, d
assert d["error"]["sqlstate"] == "22012", d
assert "division by zero" in d["error"]["message"], d
PY
ok "failed export: JSON status failed with the SQLSTATE"

# Round trip: export, then pgetl load into an empty copy, equal row for row.
E2=$(uname_table exp_rt)
create_events_table "$E2"
run "$PGETL" export --dsn "$DSN" --table "$E" --header -o "$WORK/rt.csv.zst"
expect_rc 0
run "$PGETL" load --dsn "$DSN" --table "$E2" "$WORK/rt.csv.zst"
expect_rc 0
expect_rows "$E2" 20000
diff=$(sql "SELECT count(*) FROM ((TABLE $E EXCEPT ALL TABLE $E2) UNION ALL (TABLE $E2 EXCEPT ALL TABLE $E)) d")
expect_eq "$diff" 0 "rows differing after the round trip"
n=$(sql "SELECT count(*) FROM $E2 WHERE note IS NULL")
expect_eq "$n" "$(sql "SELECT count(*) FROM $E WHERE note IS NULL")" "NULL notes after the round trip"
ok "export -> load round trip (zstd) keeps every row, NULLs and empty strings"

# Bounded memory: a 1M-row export peaks at about the same RSS as a 100k one.
B=$(uname_table exp_big)
sql "CREATE TABLE $B AS SELECT i AS id, md5(i::text) AS h, repeat('x', i % 200) AS pad FROM generate_series(1, 1000000) i"
sanitized=$(grep -E '^PGETL_SANITIZE:STRING=.+' "$PGETL_BINARY_DIR/CMakeCache.txt" || true)
rss_of() { # query -> peak RSS in KiB
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=8" /usr/bin/time -v -o "$WORK/time.txt" \
        "$PGETL" export --dsn "$DSN" --query "$1" -o "$WORK/big.csv.zst" 2>/dev/null
    awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt"
}
small=$(rss_of "SELECT * FROM $B WHERE id <= 100000")
big=$(rss_of "SELECT * FROM $B")
lines=$(zstd -q -dc "$WORK/big.csv.zst" | wc -l)
expect_eq "$lines" 1000000 "lines in the 1M export"
echo "peak RSS: 100k rows ${small} KiB, 1M rows ${big} KiB"
[ "$big" -lt $((small * 3 / 2 + 4096)) ] || fail "RSS grows with the export size: ${small} -> ${big} KiB"
if [ -z "$sanitized" ]; then
    [ "$big" -lt $((64 * 1024)) ] || fail "1M-row export peaked at ${big} KiB (> 64 MiB)"
fi
sql "DROP TABLE $B"
ok "1M-row export keeps RSS bounded (${big} KiB vs ${small} KiB at 100k)"

sql "DROP TABLE $E; DROP TABLE $E2"
done_testing
