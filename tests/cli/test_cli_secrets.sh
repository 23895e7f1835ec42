#!/usr/bin/env bash
# The password never leaves the process. A role of this test's own gets a
# unique password; every command (check; load: ok, --verbose, --progress,
# rejects with --max-errors, too many rejects, a bad row, a missing table or
# column, --dry-run; export: table, query, binary, a failing query; bad
# flags; a wrong password; nobody listening) runs with the password given
# each way libpq takes one: key=value DSN, URI, $PGETL_DSN, $PGPASSWORD, and
# a password file ($PGPASSFILE and ~/.pgpass with a temporary HOME). Every
# byte of stdout, stderr and every file written is kept and searched for the
# password (and its URI-encoded form).
. "$(dirname "$0")/lib_load.sh"

ROLE="pgetl_sec_$$"
SECRET="Zq7-s3cr3t/$$:x@y"                 # URI-special characters on purpose
SECRET_URI="Zq7-s3cr3t%2F$$%3Ax%40y"
sql "CREATE ROLE $ROLE LOGIN SUPERUSER PASSWORD '$SECRET'" >/dev/null
OUTDIR=$WORK/out.d
PRIV=$WORK/priv                           # the password file lives here, not in OUTDIR
mkdir -p "$OUTDIR" "$PRIV/home"
cleanup() {
    sql "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

T=$(uname_table sec)
create_small_table "$T"
G="$PGETL_BINARY_DIR/bench/gen_events"
printf 'id,name,amount,day\n1,a,1,2024-01-01\n2,b,2,2024-01-02\n' >"$WORK/good.csv"
printf 'id,name,amount,day\n1,a,1,2024-01-01\n2,b,-5,2024-01-02\n3,c,x,2024-01-03\n4,d,4,2024-01-04\n' >"$WORK/bad.csv"
printf 'id,nosuchcol\n1,a\n' >"$WORK/badcol.csv"

KV="host=127.0.0.1 port=$PORT user=$ROLE password='$SECRET' dbname=$TEST_DB"
URI="postgresql://$ROLE:$SECRET_URI@127.0.0.1:$PORT/$TEST_DB"
NOPW="host=127.0.0.1 port=$PORT user=$ROLE dbname=$TEST_DB"
printf '127.0.0.1:%s:*:%s:%s\n' "$PORT" "$ROLE" "$(printf '%s' "$SECRET" | sed 's/[:\\]/\\&/g')" >"$PRIV/pgpass"
chmod 600 "$PRIV/pgpass"
cp "$PRIV/pgpass" "$PRIV/home/.pgpass"

N=0
# with MODE CMD ARGS... : runs pgetl CMD ARGS with the password given by MODE;
# keeps stdout/stderr in OUTDIR; sets RC.
with() {
    local mode=$1
    shift
    local cmd=$1
    shift
    local -a env=(env -u PGETL_DSN -u PGPASSWORD -u PGPASSFILE -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE)
    local -a dsn=()
    case "$mode" in
    kv) dsn=(--dsn "$KV") ;;
    uri) dsn=(--dsn "$URI") ;;
    envdsn) env+=(PGETL_DSN="$KV") ;;
    pgpassword) env+=(PGPASSWORD="$SECRET" PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER="$ROLE" PGDATABASE="$TEST_DB") ;;
    passfile) env+=(PGPASSFILE="$PRIV/pgpass") dsn=(--dsn "$NOPW") ;;
    homepgpass) env+=(HOME="$PRIV/home" PGETL_DSN="$NOPW") ;;
    esac
    N=$((N + 1))
    set +e
    "${env[@]}" "$PGETL" "$cmd" "${dsn[@]}" "$@" >"$OUTDIR/$N.$mode.$cmd.out" 2>"$OUTDIR/$N.$mode.$cmd.err"
    RC=$?
    set -e
    ERR=$(cat "$OUTDIR/$N.$mode.$cmd.err")
}

for mode in kv uri envdsn pgpassword passfile homepgpass; do
    sql "TRUNCATE $T"
    with "$mode" check
    expect_rc 0
    expect_contains "$(cat "$OUTDIR/$N.$mode.check.out")" "user:     $ROLE" "check ($mode)"

    with "$mode" load --table "$T" --verbose --progress --summary-json "$OUTDIR/$N.load.json" "$WORK/good.csv"
    expect_rc 0
    with "$mode" load --table "$T" --jobs 2 --batch-rows 1 --truncate --progress \
        --summary-json "$OUTDIR/$N.jobs.json" "$WORK/good.csv"
    expect_rc 0
    expect_rows "$T" 2 "load ($mode)"
    with "$mode" load --table "$T" --verbose --max-errors 5 --reject-file "$OUTDIR/$N.rej.csv" \
        --summary-json "$OUTDIR/$N.rej.json" "$WORK/bad.csv"
    expect_rc 3
    with "$mode" load --table "$T" --verbose --max-errors 1 --reject-file "$OUTDIR/$N.rej2.csv" "$WORK/bad.csv"
    expect_rc 1
    with "$mode" load --table "$T" --verbose --summary-json "$OUTDIR/$N.fail.json" "$WORK/bad.csv"
    expect_rc 1
    expect_contains "$ERR" "amount" "failing load ($mode)"
    with "$mode" load --table "$T" --verbose --max-errors 1 "$WORK/bad.csv"
    expect_rc 1
    with "$mode" load --table "no_such_table_$$" --verbose "$WORK/good.csv"
    expect_rc 1
    with "$mode" load --table "$T" --verbose "$WORK/badcol.csv"
    expect_rc 1
    expect_contains "$ERR" "nosuchcol" "bad column ($mode)"
    with "$mode" load --table "$T" --dry-run --verbose --summary-json "$OUTDIR/$N.dry.json" "$WORK/good.csv" "$WORK/bad.csv"
    with "$mode" load --table "$T" "$WORK/no-such-file.csv"
    expect_rc 1
    expect_rows "$T" 4 "after the failing loads ($mode)"

    with "$mode" export --table "$T" --header --progress -o "$OUTDIR/$N.x.csv" --summary-json "$OUTDIR/$N.x.json"
    expect_rc 0
    with "$mode" export --query "SELECT * FROM $T" --format binary -o "$OUTDIR/$N.x.bin"
    expect_rc 0
    with "$mode" export --query "SELECT 1/0" --summary-json "$OUTDIR/$N.xfail.json"
    expect_rc 1
    expect_contains "$ERR" "division by zero" "failing export ($mode)"
    with "$mode" export --query "SELEKT" -o "$OUTDIR/$N.never.csv"
    expect_rc 1

    # Bad command lines with the password already given.
    with "$mode" load --table "$T" --bogus "$WORK/good.csv"
    expect_rc 2
    with "$mode" load --table "$T" --jobs 0 "$WORK/good.csv"
    expect_rc 2
    with "$mode" export --format nope
    expect_rc 2
    with "$mode" check --bogus
    expect_rc 2
    with "$mode" check extra-argument
    expect_rc 2
done
ok "every command, with the password in a DSN, a URI, PGETL_DSN, PGPASSWORD, PGPASSFILE, ~/.pgpass"

# The password given but wrong, or nobody to give it to.
WRONG_KV="host=127.0.0.1 port=$PORT user=$ROLE password='${SECRET}-wrong' dbname=$TEST_DB"
for dsn in "$WRONG_KV" "postgresql://$ROLE:${SECRET_URI}-wrong@127.0.0.1:$PORT/$TEST_DB" \
    "host=127.0.0.1 port=1 connect_timeout=2 user=$ROLE password='$SECRET'" \
    "postgresql://$ROLE:$SECRET_URI@127.0.0.1:1/x?connect_timeout=2" \
    "host='127.0.0.1 password=$SECRET port=$PORT" "host=127.0.0.1 password='$SECRET" \
    "postgresql://$ROLE:$SECRET_URI@[::1" "password=$SECRET nosuchkey=1"; do
    for cmd in check load export; do
        args=()
        [ "$cmd" = load ] && args=(--table "$T" --verbose --progress --summary-json "$OUTDIR/w$N.json" "$WORK/good.csv")
        [ "$cmd" = export ] && args=(--table "$T" -o "$OUTDIR/w$N.csv" --summary-json "$OUTDIR/w$N.x.json")
        N=$((N + 1))
        set +e
        env -u PGETL_DSN "$PGETL" "$cmd" --dsn "$dsn" "${args[@]}" >"$OUTDIR/$N.wrong.out" 2>"$OUTDIR/$N.wrong.err"
        RC=$?
        set -e
        expect_rc 1
        [ -s "$OUTDIR/$N.wrong.err" ] || fail "no error message for a failed connection ($cmd)"
    done
    for cmd in check load export; do
        args=()
        [ "$cmd" = load ] && args=(--table "$T" --verbose "$WORK/good.csv")
        [ "$cmd" = export ] && args=(--table "$T")
        N=$((N + 1))
        set +e
        env PGETL_DSN="$dsn" "$PGETL" "$cmd" "${args[@]}" >"$OUTDIR/$N.wrongenv.out" 2>"$OUTDIR/$N.wrongenv.err"
        RC=$?
        set -e
        expect_rc 1
    done
done
grep -q "password authentication failed" "$OUTDIR"/*.wrong.err || fail "no wrong-password message seen"
expect_rows "$T" 4 "after the refused connections"
grep -q "invalid DSN" "$OUTDIR"/*.wrong.err || fail "no unparseable-DSN message seen"
ok "wrong password, no server, unparseable DSNs (--dsn and PGETL_DSN): exit 1 with a message"

# The search: nothing written anywhere holds the password, in either spelling.
nfiles=$(find "$OUTDIR" -type f | wc -l)
[ "$nfiles" -gt 200 ] || fail "expected every command's output in $OUTDIR, found $nfiles files"
grep -q "pgetl: " "$OUTDIR"/*.err || fail "no log or error line captured at all"
grep -q "event=load_commit" "$OUTDIR"/*.err || fail "--verbose library log lines were not captured"
grep -q '"rows_rejected": *2' "$OUTDIR"/*.rej.json || fail "the reject summary was not captured"
for s in "$SECRET" "$SECRET_URI" "s3cr3t"; do
    if hits=$(grep -rlF -- "$s" "$OUTDIR"); then
        fail "the password ($s) appears in: $hits"
    fi
done
ok "no password in $nfiles captured outputs (stdout, stderr, summaries, reject files, exports)"

sql "DROP TABLE $T"
done_testing
