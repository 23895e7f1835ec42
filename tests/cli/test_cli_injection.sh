#!/usr/bin/env bash
# SQL injection through the CLI's names: --table (load and export),
# --columns, CSV header cells and --truncate. Every attempt either fails
# with a clear error or, for the table and column that really have the weird
# names, loads/exports them literally; the canary tables keep all their rows.
. "$(dirname "$0")/lib_load.sh"

sql "DROP TABLE IF EXISTS canary, victim, \"x\"\"; DROP TABLE canary; --\"" >/dev/null
sql "CREATE TABLE canary (id int); INSERT INTO canary VALUES (1), (2), (3)" >/dev/null
sql "CREATE TABLE victim (id int); INSERT INTO victim VALUES (1), (2)" >/dev/null
sql "CREATE TABLE \"x\"\"; DROP TABLE canary; --\" (id int, \"v\"\"); DROP TABLE canary; --\" text)" >/dev/null

canaries_ok() { # what
    local got
    got=$(sql "SELECT (SELECT count(*) FROM canary) || ',' || (SELECT count(*) FROM victim)" 2>&1) \
        || fail "after $1: a canary table is gone: $got"
    [ "$got" = "3,2" ] || fail "after $1: canary rows changed ($got, expected 3,2)"
}

# A name that does not parse is a usage error (exit 2, "invalid table
# name"); one that parses but names nothing fails (exit 1, "does not exist").
refused() { # what
    case "$RC:$ERR" in
    2:*"invalid table name"* | 1:*"does not exist"*) ;;
    *) fail "$1: expected a clear refusal, got exit $RC: $ERR" ;;
    esac
}

printf 'id\n1\n' >"$WORK/id.csv"
tables=(
    "canary; DROP TABLE canary"
    "canary; DROP TABLE canary; --"
    'canary"; DROP TABLE canary; --'
    '"canary"; DROP TABLE canary; --'
    "canary, victim"
    "victim, canary"
    "canary CASCADE"
    "'; DROP TABLE canary; --"
    '"canary; DROP TABLE canary"'
    'public."canary"" CASCADE; DROP TABLE canary; --"'
    '$$; DROP TABLE canary; $$'
    "canary --"
    "(SELECT 1); DROP TABLE canary"
    'x"; DROP TABLE canary; --'
)
for t in "${tables[@]}"; do
    run "$PGETL" load --dsn "$DSN" --table "$t" --truncate "$WORK/id.csv"
    refused "load --table '$t'"
    canaries_ok "load --table '$t'"
    run "$PGETL" load --dsn "$DSN" --table "$t" --dry-run "$WORK/id.csv"
    refused "load --dry-run --table '$t'"
    canaries_ok "load --dry-run --table '$t'"
    run "$PGETL" export --dsn "$DSN" --table "$t" -o "$WORK/x.csv"
    refused "export --table '$t'"
    [ ! -e "$WORK/x.csv" ] || fail "export --table '$t' left a file"
    canaries_ok "export --table '$t'"
done
# A quoted name that parses is looked up as a name.
run "$PGETL" load --dsn "$DSN" --table '"canary; DROP TABLE canary"' "$WORK/id.csv"
expect_contains "$ERR" "does not exist" "quoted hostile --table"
ok "hostile --table (load, --truncate, --dry-run, export): refused, canaries intact"

columns=(
    "id) FROM STDIN; DROP TABLE canary; --"
    'id"); DROP TABLE canary; --'
    "id;DROP TABLE canary"
    "'; DROP TABLE canary; --"
    'id" , "id'
)
for c in "${columns[@]}"; do
    # --columns follows identifier rules: unquoted junk is a usage error (2),
    # and the same text quoted is a name the table does not have (1).
    run "$PGETL" load --dsn "$DSN" --table canary --columns "$c" "$WORK/id.csv"
    [ "$RC" = 1 ] || [ "$RC" = 2 ] || fail "--columns '$c': exit $RC; $ERR"
    [ -n "$ERR" ] || fail "no message for --columns '$c'"
    canaries_ok "--columns '$c'"
    run "$PGETL" load --dsn "$DSN" --table canary --columns "\"${c//\"/\"\"}\"" "$WORK/id.csv"
    expect_rc 1
    expect_contains "$ERR" "$c" "the error names the quoted column"
    canaries_ok "--columns quoted '$c'"
    # The same text as a CSV header cell (quoted, quotes doubled).
    printf '"%s"\n1\n' "${c//\"/\"\"}" >"$WORK/h.csv"
    run "$PGETL" load --dsn "$DSN" --table canary "$WORK/h.csv"
    expect_rc 1
    expect_contains "$ERR" "unknown columns [$c]" "the error names the header cell"
    canaries_ok "header cell '$c'"
done
# A header that CSV-splits into several cells, one of them hostile.
printf 'id,"1); DROP TABLE canary; --"\n1,2\n' >"$WORK/h2.csv"
run "$PGETL" load --dsn "$DSN" --table canary "$WORK/h2.csv"
expect_rc 1
canaries_ok "two-cell header"
ok "hostile --columns and header cells: refused naming the column, canaries intact"

# The table and column whose names are the attempt: used literally.
W='"x""; DROP TABLE canary; --"'
printf 'id,"v""); DROP TABLE canary; --"\n1,"a); DROP TABLE canary; --"\n' >"$WORK/w.csv"
run "$PGETL" load --dsn "$DSN" --table "$W" "$WORK/w.csv"
expect_rc 0
printf '2,b\n' >"$WORK/w2.csv"
run "$PGETL" load --dsn "$DSN" --table "public.$W" --no-header --columns 'id,"v""); DROP TABLE canary; --"' "$WORK/w2.csv"
expect_rc 0
run "$PGETL" load --dsn "$DSN" --table "$W" --truncate --jobs 2 "$WORK/w.csv"
expect_rc 0
run "$PGETL" load --dsn "$DSN" --table "$W" "$WORK/w2.csv" --no-header
expect_rc 0
canaries_ok "weird table loads"
run "$PGETL" export --dsn "$DSN" --table "$W" --header -o "$WORK/w.out"
expect_rc 0
expect_eq "$(sort "$WORK/w.out")" "$(printf '1,a); DROP TABLE canary; --\n2,b\nid,"v""); DROP TABLE canary; --"')" \
    "export of the weird table"
canaries_ok "weird table export"
ok "a table and column really named like an attack: loaded and exported literally"

sql "DROP TABLE canary, victim, \"x\"\"; DROP TABLE canary; --\""
done_testing
