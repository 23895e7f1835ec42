#!/usr/bin/env bash
# Memcheck of the CLI's load and export paths on small inputs: every run
# must end with zero memcheck errors and no definitely or indirectly lost
# block (valgrind --error-exitcode=99 --leak-check=full
# --errors-for-leak-kinds=definite,indirect). Covered: a plain load, a
# parallel load of a plain and a gzip file, client-side conversion, rejects
# with a reject file and JSON summary, a load that fails (atomic and too
# many rejects), --dry-run, a missing table, stdin; exports to CSV (gzip),
# TSV (zstd) and binary, a failing query; check; a failed connection; a
# usage error.
#
# Valgrind cannot run a binary built with AddressSanitizer. In such a build
# (scripts/test.sh --sanitize address,undefined) the same commands run under
# LeakSanitizer instead (ASAN_OPTIONS detect_leaks=1, exit code 99), which
# checks the same two things: no memory error, no leak.
. "$(dirname "$0")/lib_load.sh"

if nm "$PGETL" 2>/dev/null | grep -q '__asan_init' || ldd "$PGETL" 2>/dev/null | grep -q libasan; then
    CHECKER=(env "ASAN_OPTIONS=detect_leaks=1:exitcode=99:abort_on_error=0")
    TOOL=LeakSanitizer
else
    command -v valgrind >/dev/null || fail "valgrind not installed (scripts/deps.sh installs it)"
    CHECKER=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
        --track-fds=no --child-silent-after-fork=yes)
    TOOL=valgrind
fi

T=$(uname_table vg)
create_small_table "$T"
printf 'id,name,amount,day\n1,a,1,2024-01-01\n2,"b, quoted",2.5,2024-01-02\n' >"$WORK/good.csv"
printf 'id,name,amount,day\n1,a,1,2024-01-01\n2,b,-5,2024-01-02\n3,c,x,2024-01-03\n4,d,4,2024-01-04\n' >"$WORK/bad.csv"
gzip -c "$WORK/good.csv" >"$WORK/good.csv.gz"

NRUN=0
# mc EXPECTED_RC ARGS... : pgetl ARGS under the checker
mc() {
    local want=$1
    shift
    NRUN=$((NRUN + 1))
    set +e
    "${CHECKER[@]}" "$PGETL" "$@" >"$WORK/mc.out" 2>"$WORK/mc.err" <"${MC_STDIN:-/dev/null}"
    RC=$?
    set -e
    if [ "$RC" = 99 ] || grep -qE '==[0-9]+== (Invalid|Conditional|Mismatched|Syscall param)|definitely lost: [1-9]|indirectly lost: [1-9]|ERROR: (Address|Leak)Sanitizer' "$WORK/mc.err"; then
        fail "$TOOL found errors in: pgetl $*
$(cat "$WORK/mc.err")"
    fi
    [ "$RC" = "$want" ] || fail "pgetl $*: expected exit $want, got $RC: $(cat "$WORK/mc.err")"
}

mc 0 load --dsn "$DSN" --table "$T" "$WORK/good.csv"
mc 0 load --dsn "$DSN" --table "$T" --jobs 2 --batch-rows 1 --progress "$WORK/good.csv" "$WORK/good.csv.gz"
mc 0 load --dsn "$DSN" --table "$T" --convert always --truncate "$WORK/good.csv"
mc 3 load --dsn "$DSN" --table "$T" --max-errors 5 --reject-file "$WORK/rej.csv" \
    --summary-json "$WORK/s.json" --verbose "$WORK/bad.csv"
mc 1 load --dsn "$DSN" --table "$T" --max-errors 1 --jobs 2 --batch-rows 2 "$WORK/bad.csv"
mc 1 load --dsn "$DSN" --table "$T" "$WORK/bad.csv"
mc 0 load --dsn "$DSN" --table "$T" --dry-run "$WORK/good.csv" "$WORK/good.csv.gz"
mc 1 load --dsn "$DSN" --table "no_such_$T" "$WORK/good.csv"
MC_STDIN=$WORK/good.csv mc 0 load --dsn "$DSN" --table "$T" -
expect_rows "$T" 6 "rows after the load runs"
ok "$TOOL: load paths (plain, jobs, gzip, convert, rejects, failures, dry-run, stdin) clean"

mc 0 export --dsn "$DSN" --table "$T" --header -o "$WORK/x.csv.gz" --summary-json "$WORK/x.json" --progress
expect_eq "$(gzip -dc "$WORK/x.csv.gz" | wc -l | tr -d ' ')" 7 "exported lines"
mc 0 export --dsn "$DSN" --query "SELECT * FROM $T ORDER BY id" --format tsv -o "$WORK/x.tsv.zst"
mc 0 export --dsn "$DSN" --query "SELECT * FROM $T" --format binary -o "$WORK/x.bin"
mc 1 export --dsn "$DSN" --query "SELECT 1/(id - id) FROM $T" -o "$WORK/y.csv"
ok "$TOOL: export paths (csv.gz, tsv.zst, binary, failing query) clean"

mc 0 check --dsn "$DSN"
mc 1 load --dsn "host=127.0.0.1 port=1 connect_timeout=2 user=x password=y" --table "$T" "$WORK/good.csv"
mc 2 load --table "$T" --bogus "$WORK/good.csv"
ok "$TOOL: check, failed connection, usage error clean ($NRUN runs)"

sql "DROP TABLE $T"
done_testing
