#!/bin/sh
# Cross-build tests/test_ctx.c for aarch64 and run it under qemu user mode.
# Installs the Debian packages if missing (needs root or sudo).
# Usage: tests/cross_aarch64.sh [build-dir]   (default /tmp/weft-cross-aarch64)
# Exits non-zero if anything fails to build or any run fails.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/weft-cross-aarch64}
CC=${CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}

if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1 ||
    ! dpkg-query -W -f='${Status}' libc6-dev-arm64-cross 2>/dev/null | grep -q 'ok installed'; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi

mkdir -p "$out"
flags="-std=c17 -Wall -Wextra -Wpedantic -Werror -static -I$root/src"
fails=0

# name, extra flags, implementation sources
run() {
    name=$1
    extra=$2
    shift 2
    # shellcheck disable=SC2086
    if ! "$CC" $flags $extra "$root/tests/test_ctx.c" "$root/src/core/ctx.c" "$@" -lm -o "$out/$name"; then
        echo "FAIL build $name" >&2
        fails=$((fails + 1))
        return 0
    fi
    if "$QEMU" "$out/$name"; then
        echo "PASS $name"
    else
        echo "FAIL run $name (exit $?)" >&2
        fails=$((fails + 1))
    fi
}

run test_ctx_asm_O2 "-O2" "$root/src/core/ctx_aarch64.S"
run test_ctx_asm_O0 "-O0" "$root/src/core/ctx_aarch64.S"
run test_ctx_ucontext_O2 "-O2 -DWEFT_CTX_UCONTEXT" "$root/src/core/ctx_ucontext.c"

if [ "$fails" -ne 0 ]; then
    echo "cross_aarch64: $fails failure(s)" >&2
    exit 1
fi
echo "cross_aarch64: all passed"
