#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests, benchmarks and the demo.
#
#   scripts/testdb.sh start STATE_DIR [--tls CERTDIR]
#                                       create + start; prints the DSN. With
#                                       --tls, CERTDIR/server.crt and server.key
#                                       are served (ssl = on) and TCP accepts
#                                       only TLS (hostssl) connections, on
#                                       127.0.0.1 and 127.0.0.2 (a second
#                                       address for host-name mismatch tests)
#   scripts/testdb.sh dsn STATE_DIR     print the DSN of a running cluster
#   scripts/testdb.sh stop STATE_DIR    stop and delete the cluster
#   scripts/testdb.sh restart STATE_DIR [fast|immediate]
#   scripts/testdb.sh halt STATE_DIR [fast|immediate]   stop, keep the data
#   scripts/testdb.sh resume STATE_DIR  start a halted cluster again
#
# STATE_DIR (root-owned is fine) holds only pointers: the data directory lives
# in a fresh mktemp directory owned by `postgres`, because the server refuses
# to run as root. The cluster listens on 127.0.0.1 and on a private socket
# directory, on a free port. Every command checks the marker file that
# `start` writes, so this script never touches a cluster it did not create.
#
# Roles: the superuser `postgres` (trust over the socket), and `pgetl_pw`
# (password "pgetl-secret", scram-sha-256 over TCP) for password tests.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
state=${2:-}
[ -n "$cmd" ] && [ -n "$state" ] || { sed -n '2,22p' "$0" >&2; exit 2; }
# The marker records the absolute path, so any spelling of it names the cluster.
if [ -d "$state" ]; then state=$(cd "$state" && pwd); fi
tls_dir=
if [ "$cmd" = start ] && [ "${3:-}" = --tls ]; then
    [ -n "${4:-}" ] && [ -f "$4/server.crt" ] && [ -f "$4/server.key" ] \
        || { echo "testdb: --tls CERTDIR needs CERTDIR/server.crt and server.key" >&2; exit 2; }
    tls_dir=$(cd "$4" && pwd)
fi

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

marker_ok() {
    [ -f "$state/datadir" ] || return 1
    local d
    d=$(cat "$state/datadir")
    [ -f "$d/.pgetl-testdb" ] && [ "$(cat "$d/.pgetl-testdb")" = "$state" ]
}

free_port() {
    python3 - <<'PY' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

pgctl() {
    local d
    d=$(cat "$state/datadir")
    as_postgres "$PGBIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 "$@" >/dev/null
}

case "$cmd" in
start)
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    if marker_ok && pgctl status 2>/dev/null; then
        cat "$state/dsn"
        exit 0
    fi
    [ -x "$PGBIN/initdb" ] || { echo "testdb: $PGBIN/initdb not found (apt-get install postgresql-15)" >&2; exit 1; }
    d=$(mktemp -d /tmp/pgetl-testdb.XXXXXX)
    chmod 755 "$d"
    echo "$state" > "$d/.pgetl-testdb"
    mkdir -p "$d/sock"
    if [ "$(id -u)" = 0 ]; then chown -R postgres: "$d"; fi
    echo "$d" > "$state/datadir"
    pwfile=$(mktemp)
    echo "pgetl-secret" > "$pwfile"
    chmod 644 "$pwfile"
    as_postgres "$PGBIN/initdb" -D "$d/data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$d/initdb.log" 2>&1 \
        || { cat "$d/initdb.log" >&2; rm -f "$pwfile"; exit 1; }
    rm -f "$pwfile"
    port=$(free_port)
    cat >> "$d/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$d/sock'
max_connections = 300
max_prepared_transactions = 16
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 4GB
logging_collector = off
log_min_messages = warning
CONF
    if [ -n "$tls_dir" ]; then
        # The server reads its key as its own user and wants it private.
        install -m 600 "$tls_dir/server.key" "$d/data/server.key"
        install -m 644 "$tls_dir/server.crt" "$d/data/server.crt"
        if [ "$(id -u)" = 0 ]; then chown postgres: "$d/data/server.key" "$d/data/server.crt"; fi
        cat >> "$d/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
listen_addresses = '127.0.0.1,127.0.0.2'
CONF
        # TCP only over TLS: hostssl rules, and a hostnossl reject for clarity.
        hba=$d/data/pg_hba.conf
        { grep -v '^host' "$hba"
          echo 'hostssl   all all 127.0.0.1/32 scram-sha-256'
          echo 'hostssl   all all 127.0.0.2/32 scram-sha-256'
          echo 'hostnossl all all 127.0.0.0/8 reject'; } > "$d/pg_hba.new"
        cat "$d/pg_hba.new" > "$hba"
        rm -f "$d/pg_hba.new"
    fi
    echo "$port" > "$state/port"
    echo "host=$d/sock port=$port user=postgres dbname=postgres" > "$state/dsn"
    pgctl start || { tail -20 "$d/server.log" >&2; exit 1; }
    as_postgres "$PGBIN/psql" -X -q -h "$d/sock" -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE pgetl_pw LOGIN SUPERUSER PASSWORD 'pgetl-secret'" >/dev/null
    cat "$state/dsn"
    ;;
dsn)
    marker_ok || { echo "testdb: no cluster of ours in $state" >&2; exit 1; }
    cat "$state/dsn"
    ;;
stop)
    if ! marker_ok; then
        echo "testdb: no cluster of ours in $state; nothing stopped" >&2
        exit 0
    fi
    d=$(cat "$state/datadir")
    pgctl stop -m immediate 2>/dev/null || true
    rm -rf "$d"
    rm -f "$state/datadir" "$state/dsn" "$state/port"
    ;;
halt)
    marker_ok || { echo "testdb: no cluster of ours in $state" >&2; exit 1; }
    pgctl stop -m "${3:-fast}"
    ;;
resume)
    marker_ok || { echo "testdb: no cluster of ours in $state" >&2; exit 1; }
    pgctl start
    ;;
restart)
    marker_ok || { echo "testdb: no cluster of ours in $state" >&2; exit 1; }
    pgctl stop -m "${3:-fast}"
    pgctl start
    ;;
*)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac
