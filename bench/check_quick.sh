#!/bin/sh
# Smoke test of the benchmarks (ctest `bench_quick`): every benchmark of bench/DEFINITIONS.md weft implements
# runs once at small size (weft_bench --quick) and prints its line, and tls_echo runs a fraction of a second
# (bench/run_tls_echo.sh, weft with and without TLS); no timing is asserted.
# usage: bench/check_quick.sh path/to/weft_bench [workers]
set -u
bin=${1:?usage: check_quick.sh WEFT_BENCH [WORKERS]}
w=${2:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

run() {   # run NAME ARGS...: weft_bench ARGS, output in $tmp/NAME.{out,err}
  name=$1
  shift
  if ! "$bin" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
    echo "FAIL: weft_bench $* exited with status $?"
    cat "$tmp/$name.err"
    fail=1
  fi
}

expect() {   # expect FILE RUNTIME NAME UNIT
  if grep -Eq "^$3 $2 $w [-0-9.e+]+ $4\$" "$1"; then
    echo "ok: $(grep -E "^$3 $2 $w " "$1")"
  else
    echo "FAIL: no line '$3 $2 $w <value> $4' in the output of weft_bench"
    fail=1
  fi
}

run stealable --quick --workers "$w"
for nu in rss_per_task:bytes/task idle_cpu:cpu_ms spawn_many:ns/task yield_many:ns/yield \
          ping_pong:ns/roundtrip chained_spawn:ns/spawn timers_total:ms timers_overhead:ms \
          cross_thread_latency:ns/roundtrip cross_thread_throughput:ns/item to_thread:ns/call fib_tasks:ms; do
  expect "$tmp/stealable.out" weft "${nu%%:*}" "${nu#*:}"
done
grep -q "^# fib_tasks weft $w steals:" "$tmp/stealable.err" || { echo "FAIL: no fib_tasks steal counts"; fail=1; }
grep -q "^# spawn_many weft $w reps: " "$tmp/stealable.err" || { echo "FAIL: no per-repetition line"; fail=1; }

run affine --quick --workers "$w" --affine --only spawn_many,yield_many
expect "$tmp/affine.out" weft-affine spawn_many ns/task
expect "$tmp/affine.out" weft-affine yield_many ns/yield

# tls_echo (bench/run_tls_echo.sh, as bench/report.py runs it): weft with and without TLS, 1 worker,
# 4 connections for 0.3 s, no peers; skipped without the openssl command or the echo programs
bdir=$(dirname "$bin")
here=$(cd "$(dirname "$0")" && pwd -P)
if command -v openssl >/dev/null 2>&1 && [ -x "$bdir/tcp_echo_server" ] && [ -x "$bdir/client/echo_client" ]; then
  if FORMAT=lines PEERS= WORKERS=1 ECHO_SECS=0.3 ECHO_CONNS=4 REPS=1 \
      sh "$here/run_tls_echo.sh" "$bdir/.." >"$tmp/tls.out" 2>"$tmp/tls.err"; then
    for rt in weft weft-plain; do
      if grep -Eq "^tls_echo $rt 1 [0-9]+ req/s\$" "$tmp/tls.out"; then
        echo "ok: $(grep -E "^tls_echo $rt 1 " "$tmp/tls.out")"
      else
        echo "FAIL: no line 'tls_echo $rt 1 <value> req/s' from run_tls_echo.sh"
        fail=1
      fi
    done
  else
    echo "FAIL: run_tls_echo.sh exited with status $?"
    fail=1
  fi
else
  echo "skipped tls_echo: no openssl command or no $bdir/tcp_echo_server, $bdir/client/echo_client"
fi

if [ $fail -ne 0 ]; then
  echo "--- stderr:"
  cat "$tmp"/*.err
  exit 1
fi
echo "all benchmark lines present"
