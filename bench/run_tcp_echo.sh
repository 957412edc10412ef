#!/bin/sh
# tcp_echo for weft (bench/DEFINITIONS.md, benchmark 9): runs
# bench/tcp_echo_server against the shared load client bench/client/echo_client
# at each worker count and serving mode, and prints one line per run:
#
#   tcp_echo weft <workers> <req/s> req/s            (SO_REUSEPORT listener per loop)
#   tcp_echo weft-handoff <workers> <req/s> req/s    (accept on one loop, hand off round-robin)
#
# The value is the median of REPS repetitions (each repetition's value goes to
# stderr as `# tcp_echo <peer> <workers> reps: v1 v2 ...`).
#
# usage: bench/run_tcp_echo.sh [BUILD_DIR] [WORKERS ...]
#   BUILD_DIR  a CMake build of weft (default build/release); it must hold
#              bench/tcp_echo_server and bench/client/echo_client
#   WORKERS    worker counts (default: 1 and the number of CPUs)
# environment: ECHO_CONNS (64), ECHO_SIZE (64), ECHO_SECS (5), REPS (1),
#              MODES ("reuseport handoff")
set -eu

build=${1:-build/release}
[ $# -gt 0 ] && shift
workers=${*:-"1 $(nproc 2>/dev/null || echo 2)"}
conns=${ECHO_CONNS:-64}
size=${ECHO_SIZE:-64}
secs=${ECHO_SECS:-5}
reps=${REPS:-1}
modes=${MODES:-"reuseport handoff"}

server=$build/bench/tcp_echo_server
client=$build/bench/client/echo_client
for f in "$server" "$client"; do
  if [ ! -x "$f" ]; then
    echo "run_tcp_echo: no $f (cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build)" >&2
    exit 1
  fi
done

. "$(cd "$(dirname "$0")" && pwd -P)/server_steps.sh"

tmp=$(mktemp -d /tmp/weft-tcp-echo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# one repetition (run in a subshell): prints req/s
run_once() {
  mode=$1 w=$2
  out=$tmp/server.out
  : > "$out"
  "$server" --workers "$w" --mode "$mode" > "$out" &
  srv_pid=$!
  trap 'kill "$srv_pid" 2>/dev/null || true' EXIT   # this subshell's own server, on any failure
  wait_port "$out"
  if [ -z "$port" ]; then
    echo "run_tcp_echo: the server printed no port" >&2
    exit 1
  fi
  if ! res=$("$client" 127.0.0.1 "$port" -c "$conns" -s "$size" -d "$secs"); then
    echo "run_tcp_echo: the echo client failed" >&2
    exit 1
  fi
  # the server exits by itself once its connections are closed
  if ! wait_exit "$srv_pid"; then
    echo "run_tcp_echo: the server did not stop after its clients left" >&2
    kill "$srv_pid"
  fi
  wait "$srv_pid" || { echo "run_tcp_echo: the server failed" >&2; exit 1; }
  trap - EXIT
  # roundtrips N elapsed_s X req_per_s Y
  echo "$res" | awk '{ printf "%.0f\n", $2 / $4 }'
}

for mode in $modes; do
  case $mode in
    reuseport) peer=weft ;;
    *) peer=weft-$mode ;;
  esac
  for w in $workers; do
    vals=
    r=0
    while [ $r -lt "$reps" ]; do
      vals="$vals $(run_once "$mode" "$w")"
      r=$((r + 1))
    done
    echo "# tcp_echo $peer $w reps:$vals" >&2
    med=$(echo $vals | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    echo "tcp_echo $peer $w $med req/s"
  done
done
