#!/usr/bin/env bash
# Installs pgetl into a scratch prefix and builds a consumer two ways:
# pkg-config (`pkg-config --cflags --libs pgetl`) and CMake find_package(pgetl).
. "$(dirname "$0")/lib.sh"

prefix="$WORK/prefix"
cmake --install "$PGETL_BINARY_DIR" --prefix "$prefix" >/dev/null
[ -f "$prefix/include/pgetl/pgetl.h" ] || fail "header not installed"
[ -x "$prefix/bin/pgetl" ] || fail "CLI not installed"
libdir=$(dirname "$(find "$prefix" -name pgetl.pc | head -1)")/..
[ -f "$libdir/pkgconfig/pgetl.pc" ] || fail "pgetl.pc not installed"

# A sanitizer build installs an instrumented library; its consumers need the
# same runtime linked first, as any real consumer of such a build would.
san=$(sed -n 's/^PGETL_SANITIZE:STRING=//p' "$PGETL_BINARY_DIR/CMakeCache.txt")
san_flags=()
[ -n "$san" ] && san_flags=("-fsanitize=${san//;/,}")

# pkg-config consumer, linked against the shared library.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -Wall -Werror "${san_flags[@]}" "$PGETL_SOURCE_DIR/tests/consumer/main.c" \
    -o "$WORK/consumer_pc" $(pkg-config --cflags --libs pgetl) || fail "pkg-config consumer did not build"
LD_LIBRARY_PATH="$libdir" "$WORK/consumer_pc" "$DSN" >"$WORK/pc.out" || fail "pkg-config consumer failed"
grep -q "answer=42" "$WORK/pc.out" || fail "pkg-config consumer: $(cat "$WORK/pc.out")"

# CMake consumer.
cmake -S "$PGETL_SOURCE_DIR/tests/consumer" -B "$WORK/cbuild" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="${san_flags[*]}" >/dev/null || fail "find_package(pgetl) failed"
cmake --build "$WORK/cbuild" >/dev/null || fail "CMake consumer did not build"
LD_LIBRARY_PATH="$libdir" "$WORK/cbuild/consumer_cmake" "$DSN" >"$WORK/cm.out" || fail "CMake consumer failed"
grep -q "answer=42" "$WORK/cm.out" || fail "CMake consumer: $(cat "$WORK/cm.out")"

# The public header compiles on its own as C++ too (extern "C" guards).
if command -v g++ >/dev/null; then
    echo '#include <pgetl/pgetl.h>
int main() { return pgetl_version() > 0 ? 0 : 1; }' > "$WORK/cxx.cpp"
    g++ -Wall -Werror -I"$prefix/include" -c "$WORK/cxx.cpp" -o "$WORK/cxx.o" || fail "header not C++-clean"
fi
echo "ok"
