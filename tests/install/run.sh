#!/bin/sh
# Install a built weft into a temporary prefix and build a tiny program
# (hello.c) against the installed copy, every supported way:
#   1. pkg-config, shared:   cc $(pkg-config --cflags --libs weft)       (run with LD_LIBRARY_PATH)
#   2. pkg-config, static:   cc $(pkg-config --static --cflags --libs weft), -lweft taken as libweft.a
#   3. CMake find_package(weft) with CMAKE_PREFIX_PATH: weft::weft and weft::weft_static
# and check that the installed files name no build-tree or source-tree path.
#
# Usage: sh tests/install/run.sh <build-dir> <source-dir>   (ctest runs it as the test "install")
set -eu

build=${1:?usage: run.sh <build-dir> <source-dir>}
src=${2:?usage: run.sh <build-dir> <source-dir>}
build=$(cd "$build" && pwd -P)
src=$(cd "$src" && pwd -P)
here=$src/tests/install

fail() { echo "install test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

[ -f "$build/CMakeCache.txt" ] || fail "$build is not a configured build directory"
command -v pkg-config >/dev/null 2>&1 || fail "pkg-config not found (Debian package: pkg-config)"

# the compiler the library was built with, for the consumers too
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$cc" ] || cc=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-install.XXXXXX")
case "$tmp/" in
  "$build"/*|"$src"/*) fail "temporary directory $tmp lies inside the build or source tree" ;;
esac
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install failed"; }

# ---- what got installed --------------------------------------------------------
[ -f "$prefix/include/weft.h" ] || fail "include/weft.h not installed"
for h in "$src"/include/weft/*.h; do
  [ -f "$prefix/include/weft/$(basename "$h")" ] || fail "include/weft/$(basename "$h") not installed"
done
pc=$(find "$prefix" -name weft.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "weft.pc not installed"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
for f in libweft.a libweft.so; do
  [ -e "$libdir/$f" ] || fail "$libdir/$f not installed"
done
soname=""
for f in "$libdir"/libweft.so.*; do
  case "$(basename "$f")" in libweft.so.*.*) ;; libweft.so.*) soname=$(basename "$f") ;; esac
done
[ -n "$soname" ] || fail "no soname link libweft.so.N in $libdir"
cmdir=$libdir/cmake/weft
for f in weftConfig.cmake weftConfigVersion.cmake weftTargets.cmake; do
  [ -f "$cmdir/$f" ] || fail "$cmdir/$f not installed"
done
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

# ---- no build-machine paths in the installed package ----------------------------
for f in "$pc" "$cmdir"/*.cmake; do
  if grep -nF -e "$build/" -e "$src/" "$f"; then fail "$f names the build or source tree"; fi
done
if grep -nE '/lib(uv|ck|ssl|crypto)[.]so' "$cmdir"/*.cmake; then
  fail "the exported targets name libuv/ck/openssl by absolute path (must go through pkg-config on the user's machine)"
fi
if command -v readelf >/dev/null 2>&1; then
  if readelf -d "$libdir/libweft.so" | grep -E 'R(UN)?PATH'; then fail "installed libweft.so carries an RPATH/RUNPATH"; fi
  readelf -d "$libdir/libweft.so" | grep -q "SONAME.*\\[$soname\\]" || fail "libweft.so's SONAME is not $soname"
fi

needs_libweft() { readelf -d "$1" | grep -q 'NEEDED.*libweft\.so'; }

PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
[ "$(pkg-config --modversion weft)" = "$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$build/CMakeCache.txt")" ] ||
  fail "pkg-config finds weft $(pkg-config --modversion weft), not the version just built"

strict="-std=c17 -Wall -Wextra -Wpedantic -Werror"

# ---- 1. pkg-config, shared ----------------------------------------------------------
flags=$(pkg-config --cflags --libs weft)
# weft's headers need no other package's flags: nothing of ck's .pc (-D__x86_64__) may leak in
case " $(pkg-config --cflags weft) $(pkg-config --static --cflags weft) " in
  *-D__x86_64__*) fail "pkg-config --cflags weft leaks ck's -D__x86_64__" ;;
esac
step "$cc hello.c $flags"
# shellcheck disable=SC2086
"$cc" $strict -o "$tmp/hello_pc_shared" "$here/hello.c" $flags || fail "pkg-config shared build failed"
if command -v readelf >/dev/null 2>&1; then needs_libweft "$tmp/hello_pc_shared" || fail "hello_pc_shared does not use libweft.so"; fi
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$tmp/hello_pc_shared" || fail "hello_pc_shared failed"

# ---- 2. pkg-config --static, against libweft.a ----------------------------------------
cflags=$(pkg-config --static --cflags weft)
case " $cflags " in *" -DWEFT_STATIC_DEFINE "*) ;; *) fail "pkg-config --static --cflags lacks -DWEFT_STATIC_DEFINE: $cflags" ;; esac
libs=""
for w in $(pkg-config --static --libs weft); do   # with libweft.so next to it, -lweft would pick the .so
  [ "$w" = "-lweft" ] && w="-l:libweft.a"
  libs="$libs $w"
done
step "$cc hello.c $cflags$libs"
# shellcheck disable=SC2086
"$cc" $strict -o "$tmp/hello_pc_static" "$here/hello.c" $cflags $libs || fail "pkg-config static build failed"
if command -v readelf >/dev/null 2>&1; then
  if needs_libweft "$tmp/hello_pc_static"; then fail "hello_pc_static uses libweft.so"; fi
fi
"$tmp/hello_pc_static" || fail "hello_pc_static failed"

# ---- 3. CMake find_package(weft) -------------------------------------------------------
step "cmake find_package(weft) with CMAKE_PREFIX_PATH=$prefix"
cmake -S "$here" -B "$tmp/cmake" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DWEFT_EXPECT_PREFIX="$prefix" \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Wpedantic -Werror" >"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log"; fail "configuring the find_package consumer failed"; }
grep 'weft .* from' "$tmp/cmake.log" || true
cmake --build "$tmp/cmake" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building the find_package consumer failed"; }
if command -v readelf >/dev/null 2>&1; then
  needs_libweft "$tmp/cmake/hello_shared" || fail "hello_shared (weft::weft) does not use libweft.so"
  if needs_libweft "$tmp/cmake/hello_static"; then fail "hello_static (weft::weft_static) uses libweft.so"; fi
fi
"$tmp/cmake/hello_shared" || fail "hello_shared (weft::weft) failed"
"$tmp/cmake/hello_static" || fail "hello_static (weft::weft_static) failed"

echo "install test: OK"
