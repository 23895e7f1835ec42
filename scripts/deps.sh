#!/usr/bin/env bash
# Installs every Debian package pgetl needs to build, test, benchmark and run
# its demo. Idempotent: does nothing (and needs no network) when all are
# present. Run as root, or with sudo available.
set -euo pipefail

packages=(
    build-essential cmake pkg-config           # toolchain
    clang libclang-rt-14-dev                   # fuzzing (libFuzzer runtime)
    libpq-dev postgresql-15 postgresql-client-15
    libcmocka-dev                              # test framework
    zlib1g-dev libzstd-dev gzip zstd           # compressed input/output
    libgdal-dev                                # Arrow interop test (OGR_L_GetArrowStream)
    python3 python3-psycopg-pool               # pool benchmark's peer
    time                                       # peak RSS in benchmarks
    util-linux                                 # runuser: the server refuses root
    openssl                                    # TLS test: CA and server certificates
    valgrind                                   # memcheck of the CLI (test_cli_valgrind)
    nftables                                   # nft: black-hole fault test (test_fault_blackhole)
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
