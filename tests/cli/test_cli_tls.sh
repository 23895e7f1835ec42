#!/usr/bin/env bash
# TLS: a private cluster (scripts/testdb.sh start --tls) serving a server
# certificate signed by a CA made here with openssl (SAN localhost and
# 127.0.0.1, listening on 127.0.0.1 and 127.0.0.2, TCP only through hostssl).
# - sslmode=verify-full with the right CA: check reports TLS, a load and an
#   export work over it;
# - a wrong CA fails with a clear verification error;
# - a host name the certificate does not cover (127.0.0.2, or hostaddr with
#   another host name) fails naming the mismatch;
# - a client that refuses TLS (sslmode=disable) is refused by the server;
# - the password never appears in any of the output.
. "$(dirname "$0")/lib_load.sh"

command -v openssl >/dev/null || fail "openssl not installed (scripts/deps.sh installs it)"

CERTS=$WORK/certs
mkdir -p "$CERTS"
mkca() { # dir cn
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" \
        -keyout "$1/$3.key" -out "$1/$3.crt" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 || fail "openssl: CA $2"
}
mkca "$CERTS" "pgetl test CA" ca
mkca "$CERTS" "pgetl other CA" otherca
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$CERTS/server.key" \
    -out "$CERTS/server.csr" >/dev/null 2>&1 || fail "openssl: server key"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$CERTS/ext.cnf"
openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" \
    -CAcreateserial -days 2 -extfile "$CERTS/ext.cnf" -out "$CERTS/server.crt" >/dev/null 2>&1 \
    || fail "openssl: sign server certificate"
chmod 644 "$CERTS"/*.crt
chmod 755 "$WORK" "$CERTS"

TLS_STATE=$WORK/tlsdb
cleanup_tls() {
    "$PGETL_SCRIPTS/testdb.sh" stop "$TLS_STATE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup_tls EXIT
# The free port testdb.sh picks can be taken by another cluster before the
# server binds it (engineers and CI runs share the machine): try again.
for attempt in 1 2 3; do
    if "$PGETL_SCRIPTS/testdb.sh" start "$TLS_STATE" --tls "$CERTS" >/dev/null 2>"$WORK/start.err"; then
        break
    fi
    "$PGETL_SCRIPTS/testdb.sh" stop "$TLS_STATE" >/dev/null 2>&1 || true
    [ "$attempt" = 3 ] && fail "TLS cluster did not start: $(cat "$WORK/start.err")"
done
TPORT=$(cat "$TLS_STATE/port")
SOCK_DSN=$(cat "$TLS_STATE/dsn")
psql -X -q "$SOCK_DSN" -c "CREATE DATABASE tlsdb" >/dev/null
psql -X -q "$SOCK_DSN dbname=tlsdb" \
    -c "CREATE TABLE t (id integer NOT NULL, name text, amount numeric, day date)" >/dev/null
tsql() { psql -X -q -At "$SOCK_DSN dbname=tlsdb" -c "$1"; }

SECRET=pgetl-secret
BASE="port=$TPORT user=pgetl_pw password=$SECRET dbname=tlsdb connect_timeout=10"
GOOD="host=localhost $BASE sslmode=verify-full sslrootcert=$CERTS/ca.crt"

# No password in any output, ever.
no_secret() {
    expect_not_contains "$OUT$ERR" "$SECRET" "$1"
    if [ -e "$WORK/s.json" ]; then expect_not_contains "$(cat "$WORK/s.json")" "$SECRET" "$1 summary"; fi
}

# verify-full with the right CA, by name and by address (both in the SAN).
for host in localhost 127.0.0.1; do
    run "$PGETL" check --dsn "host=$host $BASE sslmode=verify-full sslrootcert=$CERTS/ca.crt"
    expect_rc 0
    expect_contains "$OUT" "tls:      on (TLSv1.3, " "check over verify-full ($host)"
    expect_contains "$OUT" "user:     pgetl_pw"
    expect_contains "$OUT" "sslmode=verify-full"
    no_secret "check ($host)"
done
ok "verify-full with the right CA: check shows tls on (TLSv1.3, cipher)"

printf 'id,name,amount,day\n1,a,1.5,2024-01-01\n2,b,2,2024-01-02\n3,"c, d",3,2024-01-03\n' >"$WORK/a.csv"
run "$PGETL" load --dsn "$GOOD" --table t --summary-json "$WORK/s.json" "$WORK/a.csv"
expect_rc 0
expect_eq "$(tsql 'SELECT count(*) FROM t')" 3 "rows loaded over TLS"
no_secret "load over TLS"
run env PGETL_DSN="$GOOD" "$PGETL" load --table t --jobs 2 --batch-rows 1 "$WORK/a.csv"
expect_rc 0
expect_eq "$(tsql 'SELECT count(*) FROM t')" 6 "rows loaded over TLS (jobs 2)"
no_secret "parallel load over TLS"
run "$PGETL" export --dsn "$GOOD" --header --query "SELECT id, name FROM t ORDER BY id, name LIMIT 3" -o "$WORK/x.csv" \
    --summary-json "$WORK/s.json"
expect_rc 0
expect_eq "$(cat "$WORK/x.csv")" "$(printf 'id,name\n1,a\n1,a\n2,b')" "export over TLS"
no_secret "export over TLS"
# The server agrees that every one of those sessions used TLS: ask it about this one.
run "$PGETL" export --dsn "$GOOD" --query "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
    -o "$WORK/ssl.csv"
expect_rc 0
expect_eq "$(cat "$WORK/ssl.csv")" "t,TLSv1.3" "pg_stat_ssl for a pgetl session"
ok "load (1 and 2 jobs) and export over verify-full TLS"

# A CA that did not sign the server certificate.
for cmd in check load; do
    args=()
    [ "$cmd" = load ] && args=(--table t "$WORK/a.csv")
    run "$PGETL" "$cmd" --dsn "host=localhost $BASE sslmode=verify-full sslrootcert=$CERTS/otherca.crt" "${args[@]}"
    expect_rc 1
    expect_contains "$ERR" "certificate verify failed" "$cmd with a wrong CA"
    no_secret "$cmd with a wrong CA"
done
expect_eq "$(tsql 'SELECT count(*) FROM t')" 6 "rows after a refused load"
# verify-ca with no root certificate at all: libpq says where it looked.
run env HOME="$WORK/nohome" "$PGETL" check --dsn "host=localhost $BASE sslmode=verify-ca"
expect_rc 1
expect_contains "$ERR" "root certificate file" "verify-ca without a CA"
no_secret "verify-ca without a CA"
ok "wrong CA / no CA: exit 1, certificate verification error"

# A host name the certificate does not cover: 127.0.0.2 (the server listens
# there too), and hostaddr with a name that is not in the SAN.
run "$PGETL" check --dsn "host=127.0.0.2 $BASE sslmode=verify-full sslrootcert=$CERTS/ca.crt"
expect_rc 1
expect_contains "$ERR" 'does not match host name "127.0.0.2"' "wrong address"
no_secret "wrong address"
run "$PGETL" check --dsn "host=127.0.0.2 $BASE sslmode=verify-ca sslrootcert=$CERTS/ca.crt"
expect_rc 0
expect_contains "$OUT" "tls:      on (TLSv1.3" "verify-ca ignores the name (so the server really listens there)"
run "$PGETL" load --dsn "host=db.pgetl.invalid hostaddr=127.0.0.1 $BASE sslmode=verify-full sslrootcert=$CERTS/ca.crt" \
    --table t "$WORK/a.csv"
expect_rc 1
expect_contains "$ERR" 'does not match host name "db.pgetl.invalid"' "wrong host name"
no_secret "wrong host name"
run env PGETL_DSN="postgresql://pgetl_pw:$SECRET@127.0.0.2:$TPORT/tlsdb?sslmode=verify-full&sslrootcert=$CERTS/ca.crt" \
    "$PGETL" export --table t -o "$WORK/y.csv"
expect_rc 1
expect_contains "$ERR" 'does not match host name "127.0.0.2"' "wrong address (URI)"
no_secret "wrong address (URI)"
[ ! -e "$WORK/y.csv" ] || fail "a refused export left its output"
expect_eq "$(tsql 'SELECT count(*) FROM t')" 6 "rows after refused loads"
ok "host not in the certificate: exit 1, the mismatch named"

# The server takes TCP only over TLS.
run "$PGETL" check --dsn "host=127.0.0.1 $BASE sslmode=disable"
expect_rc 1
expect_contains "$ERR" "no encryption" "plain TCP refused"
no_secret "plain TCP"
ok "sslmode=disable refused by the server (hostnossl reject)"

done_testing
