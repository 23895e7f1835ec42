#!/usr/bin/env bash
# The CI-sized soak: bench_soak (bench/bench_soak.c; bench/soak runs it for
# ten minutes) for 50 s against this test's database: concurrent loads
# (with rejects and failing loads), exports, Arrow reads and cancels, and
# pool churn; counts must reconcile, RSS and open descriptors stay flat, and
# no backend of the run may remain.
. "$(dirname "$0")/lib.sh"

SOAK=$PGETL_BINARY_DIR/bench/bench_soak
[ -x "$SOAK" ] || fail "$SOAK is not built (PGETL_BUILD_BENCH=ON builds it)"
# In an AddressSanitizer build freed memory sits in a quarantine (256 MB by
# default) that fills for minutes and reads as RSS growth: keep it small so
# the RSS check measures leaks, not the quarantine filling.
if nm "$SOAK" 2>/dev/null | grep -q '__asan_init' || ldd "$SOAK" 2>/dev/null | grep -q libasan; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
fi
run "$SOAK" --seconds "${PGETL_SOAK_SECONDS:-50}" --dsn "$DSN" --quiet
echo "$OUT"
[ -z "$ERR" ] || echo "$ERR" >&2
expect_rc 0
expect_contains "$OUT" "soak: ok" "soak summary"
expect_contains "$OUT" "backends max" "soak summary"
expect_not_contains "$OUT$ERR" "FAIL" "soak output"
echo "ok"
