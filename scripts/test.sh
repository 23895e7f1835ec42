#!/usr/bin/env bash
# Builds pgetl and runs the whole test suite against a throwaway PostgreSQL
# cluster that CTest starts and stops (see scripts/testdb.sh).
#
#   scripts/test.sh                          plain build in build/
#   scripts/test.sh --sanitize address,undefined   ASan+UBSan build in build-asan/
#   scripts/test.sh --sanitize thread --label threads   ThreadSanitizer, threaded tests only
#
# Extra arguments after -- go to ctest (e.g. -- -R test_pool).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
label=""
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) sanitize=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: scripts/test.sh [--sanitize address,undefined|thread] [--label L] [-- ctest args]" >&2; exit 2 ;;
    esac
done

scripts/deps.sh

build=build
cmake_args=(-DPGETL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
case "$sanitize" in
"") ;;
thread) build=build-tsan; cmake_args+=(-DPGETL_SANITIZE=thread) ;;
*) build=build-asan; cmake_args+=("-DPGETL_SANITIZE=${sanitize//,/;}") ;;
esac

cmake -S . -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"

ctest_args=(--test-dir "$build" --output-on-failure -j2)
if [ -n "$label" ]; then
    # The db fixture's setup/cleanup tests are pulled in automatically.
    ctest_args+=(-L "$label")
fi
# Sanitizer reports fail the test rather than being printed and ignored.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
ctest "${ctest_args[@]}" "$@"
