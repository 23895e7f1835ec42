#!/usr/bin/env bash
# pgetl load --max-errors: a file with a few bad rows (type errors and
# constraint violations at known positions) loads with exit 3; the reject
# file holds exactly those rows, byte for byte; its .log names their lines
# and SQLSTATEs; the summary (text and JSON) reconciles read = loaded +
# rejected. One more bad row than allowed: exit 1, nothing committed.
. "$(dirname "$0")/lib_load.sh"

T=$(uname_table rej)
create_events_table "$T"
"$GEN" --rows 20000 --bad 6 --bad-list "$WORK/bad.txt" -o "$WORK/ev.csv"
[ "$(wc -l <"$WORK/bad.txt")" = 6 ] || fail "generator listed $(wc -l <"$WORK/bad.txt") bad rows"

# The bad rows' original bytes, cut from the file by an independent
# quote-aware record splitter.
python3 - "$WORK/ev.csv" "$WORK/bad.txt" "$WORK/expected_rejects.csv" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
want = {int(l.split()[0]) for l in open(sys.argv[2])}
out, rec, start, inq, i = [], -1, 0, False, 0  # rec -1 is the header
while i < len(data):
    c = data[i]
    if c == 0x22:
        inq = not inq
    elif c == 0x0A and not inq:
        if rec + 1 in want:  # rec counts data rows before this one
            out.append(data[start:i + 1])
        rec += 1
        start = i + 1
    i += 1
open(sys.argv[3], "wb").write(b"".join(out))
assert len(out) == len(want), (len(out), len(want))
PY

J="$WORK/sum \"quoted\" back\\slash ünïcødé.json"
R="$WORK/rejects.csv"
run "$PGETL" load --dsn "$DSN" --table "$T" --max-errors 10 --reject-file "$R" --summary-json "$J" "$WORK/ev.csv"
expect_rc 3
expect_rows "$T" 19994 "after --max-errors 10"
cmp "$R" "$WORK/expected_rejects.csv" || fail "the reject file is not exactly the bad rows"
expect_contains "$OUT" "rows read:     20000" "summary"
expect_contains "$OUT" "rows loaded:   19994" "summary"
expect_contains "$OUT" "rows rejected: 6 (in $R)" "summary"
expect_contains "$ERR" "6 rows rejected; they are in $R" "stderr"
while read -r row line state kind; do
    grep -q "line $line\b.*$state\|$state.*line $line\b\|:$line:.*$state" "$R.log" ||
        fail "reject log lacks line $line with $state ($kind): $(cat "$R.log")"
    # The id of a bad row never reached the table (except the NULL-id kind, which has none).
    n=$(sql "SELECT count(*) FROM $T WHERE id = $row")
    expect_eq "$n" 0 "row $row ($kind) in the table"
done <"$WORK/bad.txt"
python3 - "$J" "$WORK/ev.csv" "$R" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
assert d["command"] == "load" and d["status"] == "rejects" and d["exit_code"] == 3, d
assert d["rows_read"] == 20000 and d["rows_loaded"] == 19994 and d["rows_rejected"] == 6, d
assert d["rows_read"] == d["rows_loaded"] + d["rows_rejected"]
assert d["batches"] >= 1 and 0 <= d["batches_binary"] <= d["batches"], d
assert 0 <= d["rows_screened"] <= d["rows_read"], d
assert d["files"] == [sys.argv[2]] and d["reject_file"] == sys.argv[3], d
assert d["committed"] is True and d["error"] is None, d
import os
assert d["bytes"] == os.path.getsize(sys.argv[2]), d
PY
ok "--max-errors 10 with 6 bad rows: exit 3, reject file exact, log lines, JSON reconciles"

# stderr: with a reject file the rows are not repeated there; without one,
# each rejected row is named once (file and line), never twice.
n=$(grep -c "event=load_reject" <<<"$ERR" || true)
expect_eq "$n" 0 "load_reject lines on stderr with --reject-file"
sql "TRUNCATE $T"
run "$PGETL" load --dsn "$DSN" --table "$T" --max-errors 10 "$WORK/ev.csv"
expect_rc 3
n=$(grep -c "event=load_reject file=$WORK/ev.csv line=" <<<"$ERR" || true)
expect_eq "$n" 6 "load_reject lines on stderr without --reject-file"
expect_not_contains "$ERR" "event=copy_reject" "stderr without --verbose"
sql "TRUNCATE $T"
run "$PGETL" load --dsn "$DSN" --table "$T" --max-errors 10 --reject-file "$R" --verbose "$WORK/ev.csv"
expect_rc 3
expect_contains "$ERR" "event=copy_reject" "stderr with --verbose"
ok "stderr: rejected rows named once without a reject file, silent with one, all with --verbose"

# The same with two jobs.
sql "TRUNCATE $T"
run "$PGETL" load --dsn "$DSN" --table "$T" --jobs 2 --batch-rows 1000 --max-errors 6 --reject-file "$R" "$WORK/ev.csv"
expect_rc 3
expect_rows "$T" 19994 "--jobs 2 --max-errors 6"
python3 - "$R" "$WORK/expected_rejects.csv" <<'PY'
import sys
got = open(sys.argv[1], "rb").read()
want = open(sys.argv[2], "rb").read()
# With two jobs the order of rejects may differ; the set of rows may not.
def records(b):
    out, start, inq = [], 0, False
    for i, c in enumerate(b):
        if c == 0x22: inq = not inq
        elif c == 0x0A and not inq: out.append(b[start:i + 1]); start = i + 1
    return sorted(out)
assert records(got) == records(want), "reject rows differ with --jobs 2"
PY
ok "--jobs 2 --max-errors 6: exit 3, the same rows rejected"

# One more bad row than allowed: rolled back.
sql "TRUNCATE $T"
run "$PGETL" load --dsn "$DSN" --table "$T" --max-errors 5 --reject-file "$R" --summary-json "$J" "$WORK/ev.csv"
expect_rc 1
expect_contains "$ERR" "nothing was committed"
expect_rows "$T" 0 "--max-errors 5 with 6 bad"
python3 - "$J" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
assert d["status"] == "failed" and d["exit_code"] == 1 and d["committed"] is False, d
assert d["error"]["code"] == "EREJECTS", d
PY
ok "--max-errors 5 with 6 bad rows: exit 1 (EREJECTS), nothing committed"

# A reject file that cannot be created: the load fails cleanly, nothing committed.
run "$PGETL" load --dsn "$DSN" --table "$T" --max-errors 10 --reject-file "$WORK/no/such/dir/r.csv" "$WORK/ev.csv"
expect_rc 1
expect_contains "$ERR" "reject file $WORK/no/such/dir/r.csv: No such file or directory"
expect_contains "$ERR" "nothing was committed"
expect_rows "$T" 0 "unwritable reject file"
ok "an unwritable --reject-file fails the load, nothing committed"

# Atomic default: the first bad row fails the load, with its file line.
first_line=$(head -1 "$WORK/bad.txt" | cut -d' ' -f2)
first_state=$(head -1 "$WORK/bad.txt" | cut -d' ' -f3)
run "$PGETL" load --dsn "$DSN" --table "$T" "$WORK/ev.csv"
expect_rc 1
expect_contains "$ERR" "line $first_line" "atomic failure line"
expect_contains "$ERR" "[SQLSTATE $first_state]" "atomic failure SQLSTATE"
expect_rows "$T" 0 "atomic load with bad rows"
ok "default (atomic): first bad row at line $first_line fails the load, nothing committed"

# The CHECK screen, seen from the CLI: after the first CHECK reject, every
# later binary batch is screened, and --summary-json counts the CHECK-bad rows
# it flagged (one job, so batch k is the k-th 2000 rows).
"$GEN" --rows 20000 --bad 36 --bad-list "$WORK/bad36.txt" -o "$WORK/ev36.csv"
sql "TRUNCATE $T"
run "$PGETL" load --dsn "$DSN" --table "$T" --convert always --batch-rows 2000 --max-errors 36 \
    --reject-file "$R" --summary-json "$J" "$WORK/ev36.csv"
expect_rc 3
expect_rows "$T" 19964 "--max-errors 36 with 36 bad"
python3 - "$J" "$WORK/bad36.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
checks = [int(l.split()[0]) for l in open(sys.argv[2]) if l.split()[2] == "23514"]
first = (checks[0] - 1) // 2000
want = sum(1 for r in checks if (r - 1) // 2000 > first)
assert want >= 3, checks
assert d["rows_screened"] == want, (d, checks)
assert d["rows_rejected"] == 36 and d["batches"] == 10 and d["batches_binary"] == 10, d
PY
ok "--summary-json counts the rows the CHECK screen flagged"

sql "DROP TABLE $T"
done_testing
