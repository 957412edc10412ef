#!/bin/sh
# Install the Debian packages weft needs, if any is missing. Works as root or
# through sudo. Usage: scripts/deps.sh [bench]
# bench: also the peers of bench/DEFINITIONS.md: Python + uvloop, Go (golang-go), Rust with
# Debian's tokio crate and its dependencies (cargo, librust-tokio-dev; bench/tokio builds offline
# against /usr/share/cargo/registry), the openssl and tokio-openssl crates for the TLS echo peer
# (librust-openssl-dev, librust-tokio-openssl-dev; bench/tokio_tls), and gnuplot for the plots.
set -e
pkgs="cmake make gcc libc6-dev pkg-config libuv1-dev libck-dev libssl-dev openssl"
if [ "$1" = "bench" ]; then
  pkgs="$pkgs python3 python3-uvloop gnuplot-nox golang-go cargo librust-tokio-dev librust-libc-dev"
  pkgs="$pkgs librust-openssl-dev librust-tokio-openssl-dev"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install:$missing" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing
