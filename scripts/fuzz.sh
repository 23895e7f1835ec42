#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, coverage on the
# library) in build-fuzz/ and runs each for N seconds (default 30, as CI):
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Each target starts from its committed seeds (fuzz/corpus/<name>/, which
# also hold the reproducers of past crashes) plus what earlier runs found
# (build-fuzz/corpus/<name>/, not committed). Exits nonzero when any target
# crashes or breaks an invariant, printing the reproducer's path; replay one
# with build-fuzz/fuzz/fuzz_<name> <file>. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
shift || true
case "$secs" in
'' | *[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2; exit 2 ;;
esac

scripts/deps.sh

build=build-fuzz
jobs=${PGETL_FUZZ_JOBS:-2}
CC=clang cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DPGETL_BUILD_FUZZ=ON \
    -DPGETL_BUILD_TESTS=OFF -DPGETL_BUILD_BENCH=OFF -DPGETL_BUILD_CLI=OFF \
    "-DPGETL_SANITIZE=address;undefined" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" >"$build/fuzz-build.log" 2>&1 || {
    tail -n 40 "$build/fuzz-build.log" >&2
    echo "fuzz: build failed (full log: $build/fuzz-build.log)" >&2
    exit 1
}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_*.c; do
        n=$(basename "$f" .c)
        targets+=("${n#fuzz_}")
    done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
    bin="$build/fuzz/fuzz_$t"
    work="$build/corpus/$t"
    art="$build/artifacts/$t"
    log="$build/logs/fuzz_$t.log"
    mkdir -p "$work" "$art" "$(dirname "$log")"
    [ -x "$bin" ] || { echo "fuzz: no target $bin" >&2; failed+=("$t"); continue; }
    seeds=()
    [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
    echo "== fuzz_$t: ${secs}s =="
    if "$bin" -max_total_time="$secs" -max_len=4096 -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$art/" "$work" "${seeds[@]}" >"$log" 2>&1; then
        grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$log" | tail -n 2 || true
    else
        tail -n 40 "$log" >&2
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "fuzz: fuzz_$t FAILED; reproducer: ${repro:-(none written; see $log)}" >&2
        echo "      replay: $bin ${repro:-<file>}" >&2
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${secs}s each without a failure"
