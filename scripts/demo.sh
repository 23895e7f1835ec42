#!/usr/bin/env bash
# The README's main job, on a fresh Debian 12 machine (as root):
#   installs the packages (scripts/deps.sh), builds into build/, starts a
#   throwaway PostgreSQL 15 cluster (.demo-db), generates a 1M-row sample
#   data set, loads it with `pgetl load` (progress bar, summary), runs a
#   sample query, then loads a file with a few bad rows with --max-errors and
#   shows the reject file. Prints how to stop the database at the end.
# Runs in a few minutes. Run it again at will: it reuses the database.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing the packages pgetl needs (scripts/deps.sh)"
scripts/deps.sh

step "Building (cmake, build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target pgetl_cli gen_events >/dev/null
PGETL=build/pgetl
GEN=build/bench/gen_events
"$PGETL" --version

step "Starting a local database (scripts/testdb.sh start .demo-db)"
DSN=$(scripts/testdb.sh start "$PWD/.demo-db" | tail -1)
echo "DSN: $DSN"
"$PGETL" check --dsn "$DSN"

DATA=.demo-data
mkdir -p "$DATA"
step "Generating the sample data: 1,000,000 events as CSV ($DATA/events.csv)"
"$GEN" --rows 1000000 -o "$DATA/events.csv"
ls -lh "$DATA/events.csv" | awk '{print $5, $NF}'
echo "first lines (notes hold quotes, commas, line breaks and unicode; ~10% NULLs):"
head -4 "$DATA/events.csv"

step "Creating the table"
PGOPTIONS="-c client_min_messages=warning" psql -X -q "$DSN" -c "DROP TABLE IF EXISTS bench_events" -c "$("$GEN" --sql)"
psql -X "$DSN" -c "\\d bench_events"

step "Loading it: pgetl load --table bench_events $DATA/events.csv"
"$PGETL" load --dsn "$DSN" --table bench_events --progress "$DATA/events.csv"

step "A sample query"
psql -X "$DSN" -c "SELECT country, count(*) AS events, round(avg(amount)::numeric, 2) AS avg_amount,
                          count(*) FILTER (WHERE note IS NULL) AS no_note
                   FROM bench_events GROUP BY country ORDER BY events DESC"

step "A file with 5 bad rows, loaded with --max-errors 10 --reject-file"
"$GEN" --rows 10000 --bad 5 --bad-list "$DATA/bad-rows.txt" -o "$DATA/events_with_bad_rows.csv"
echo "the generator put bad rows at (row, line, expected SQLSTATE, kind):"
cat "$DATA/bad-rows.txt"
rc=0
"$PGETL" load --dsn "$DSN" --table bench_events --max-errors 10 \
    --reject-file "$DATA/rejects.csv" "$DATA/events_with_bad_rows.csv" || rc=$?
echo "exit code: $rc (3 = loaded, with rejected rows)"
[ "$rc" = 3 ] || { echo "demo: expected exit 3" >&2; exit 1; }
echo
echo "--- $DATA/rejects.csv (the rejected rows, verbatim) ---"
cat "$DATA/rejects.csv"
echo "--- $DATA/rejects.csv.log (where and why) ---"
cat "$DATA/rejects.csv.log"
psql -X "$DSN" -c "SELECT count(*) AS rows_in_bench_events FROM bench_events"

step "Done"
echo "Export it again:    $PGETL export --dsn \"$DSN\" --table bench_events -o $DATA/events.csv.zst"
# testdb.sh matches the state directory by its absolute path.
echo "Stop the database:  scripts/testdb.sh stop $PWD/.demo-db"
