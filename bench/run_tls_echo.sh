#!/bin/sh
# TLS echo comparison: the tcp_echo load (bench/client/echo_client, 64
# connections, 64-byte messages by default) over TLS 1.3 against
#   weft       bench/tcp_echo_server --tls, at 1 and 2 worker loops (SO_REUSEPORT)
#   weft-plain the same server without TLS, same workers (the reference for the ratio)
#   uvloop+ssl bench/python/tls_echo.py --uvloop   (if python3 has uvloop)
#   asyncio+ssl bench/python/tls_echo.py
#   go         bench/go_tls (crypto/tls), GOMAXPROCS 1 and 2 (if `go` is installed)
#   tokio      bench/tokio_tls (Tokio + tokio-openssl, the same OpenSSL), 1 and 2 worker threads, if
#              built: BUILD_DIR/bench/tokio_tls/release/tokio_tls (bench/report.py builds it) or $TOKIO_TLS
# and prints a table: req/s (median of REPS rounds; every round runs each
# configuration once, so the load of a shared machine falls on all alike), the client's connect +
# handshake time for all connections (one after the other, before the clock
# starts), each TLS row's ratio to weft-plain at the same core count, and the
# CPU time of the server process and of the client process per round trip (on
# a small machine they share the cores, so req/s follows the sum); above it,
# OpenSSL's own cost per round trip and side (bench/tls_record_cost, if built).
#
# usage: bench/run_tls_echo.sh [BUILD_DIR]      (default build/release)
# environment: ECHO_CONNS (64), ECHO_SIZE (64), ECHO_SECS (5), REPS (3), WORKERS ("1 2"),
#              PEERS ("go tokio uvloop asyncio": which peers run besides weft and weft-plain; "" for none),
#              TOKIO_TLS (the tokio_tls program; default BUILD_DIR/bench/tokio_tls/release/tokio_tls),
#              PYTHON (python3 with uvloop: /usr/bin/python3 if it has it, else python3),
#              ECHO_TLS_RECORDS (own: the client seals and opens the echo's records itself after
#              OpenSSL's handshake, the default; openssl: SSL_write/SSL_read, echo_client --openssl-records),
#              FORMAT=lines: bench/report.py's format instead: `tls_echo RUNTIME CORES REQ_PER_S req/s`
#              on stdout (RUNTIME weft, weft-plain, go, tokio, uvloop, asyncio), `# tls_echo RUNTIME CORES
#              reps: ...`, `# tls_echo RUNTIME CORES stats: server_cpu_ns_per_req=N
#              client_cpu_ns_per_req=N` and the table on stderr.
# The certificate is a throwaway EC P-256 one made here with the openssl CLI.
set -eu

build=${1:-build/release}
conns=${ECHO_CONNS:-64}
size=${ECHO_SIZE:-64}
secs=${ECHO_SECS:-5}
reps=${REPS:-3}
workers=${WORKERS:-"1 2"}
peers=${PEERS-"go tokio uvloop asyncio"}
format=${FORMAT:-table}
has_peer() { case " $peers " in *" $1 "*) return 0 ;; esac; return 1; }
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/server_steps.sh"

server=$build/bench/tcp_echo_server
client=$build/bench/client/echo_client
for f in "$server" "$client"; do
  if [ ! -x "$f" ]; then
    echo "run_tls_echo: no $f (cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build)" >&2
    exit 1
  fi
done
command -v openssl >/dev/null 2>&1 || { echo "run_tls_echo: needs the openssl command (Debian: openssl)" >&2; exit 1; }

if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if ! "$PYTHON" -c 'import uvloop' 2>/dev/null && /usr/bin/python3 -c 'import uvloop' 2>/dev/null; then
    PYTHON=/usr/bin/python3
  fi
fi

tmp=$(mktemp -d /tmp/weft-tls-echo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cert=$tmp/cert.pem
key=$tmp/key.pem

gobin=
if has_peer go && command -v go >/dev/null 2>&1; then
  if (cd "$here/go_tls" && HOME=${HOME:-$tmp} GOFLAGS=-mod=mod go build -o "$tmp/go_tls" .) >"$tmp/go.log" 2>&1; then
    gobin=$tmp/go_tls
  else
    echo "run_tls_echo: go build failed, no Go row:" >&2
    cat "$tmp/go.log" >&2
  fi
fi
tokbin=
if has_peer tokio; then
  tokbin=${TOKIO_TLS:-$build/bench/tokio_tls/release/tokio_tls}
  if [ ! -x "$tokbin" ]; then
    echo "run_tls_echo: no $tokbin, no Tokio row (bench/report.py builds it: cargo build --release --offline" \
      "in bench/tokio_tls with CARGO_TARGET_DIR=$build/bench/tokio_tls)" >&2
    tokbin=
  fi
fi
have_uvloop=0
has_peer uvloop && "$PYTHON" -c 'import uvloop' 2>/dev/null && have_uvloop=1

# child_cpu VAR: VAR = CPU seconds (user + system) of this shell's waited-for children so far (`times`,
# second line; it must run in this shell, not in a $(...) or pipe subshell, whose children are its own).
child_cpu() {
  times > "$tmp/times"
  awk 'NR == 2 { n = split($0, f, /[ms ]+/); t = 0; for (i = 1; i + 1 <= n; i += 2) t += f[i] * 60 + f[i + 1]; print t }' \
    "$tmp/times" > "$tmp/cpu"
  read -r "$1" < "$tmp/cpu"
}

# one run: the server command in "$@"; TLS=1 makes the client speak TLS.
# prints "req_per_s handshake_s server_cpu_us client_cpu_us": the last two are the CPU time (user +
# system, all threads) of the server's and of the client's whole process per round trip, their
# start, connects and handshakes included (a few per cent of a run of seconds). The client reports
# its own (--cpu); the server's is what this shell's children used from the client's start to the
# server's end (`times`), less the client's (dash may reap the server while it waits for the client).
run_once() {
  out=$tmp/server.out
  : > "$out"
  "$@" > "$out" &
  srv_pid=$!
  wait_port "$out"
  if [ -z "$port" ]; then
    echo "run_tls_echo: $* printed no port" >&2
    kill "$srv_pid" 2>/dev/null || true
    exit 1
  fi
  flag=
  [ "$TLS" = 1 ] && flag=--tls
  [ "$TLS" = 1 ] && [ "${ECHO_TLS_RECORDS:-own}" = openssl ] && flag="--tls --openssl-records"
  child_cpu c0
  if ! res=$("$client" 127.0.0.1 "$port" -c "$conns" -s "$size" -d "$secs" $flag --cpu); then
    echo "run_tls_echo: the echo client failed against $*" >&2
    kill "$srv_pid" 2>/dev/null || true
    exit 1
  fi
  wait_exit "$srv_pid" || kill "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
  child_cpu c2
  # roundtrips N elapsed_s X req_per_s Y [handshake_s H] cpu_s C
  echo "$res" | awk -v c0="$c0" -v c2="$c2" '{
    h = "-"; cli = 0
    for (i = 7; i < NF; i += 2) { if ($i == "handshake_s") h = $(i + 1); if ($i == "cpu_s") cli = $(i + 1) }
    printf "%.0f %s %.2f %.2f\n", $2 / $4, h, (c2 - c0 - cli) * 1e6 / $2, cli * 1e6 / $2 }'
}

# The configurations, one per line: label, cores, TLS (0/1), environment ("-": none), command.
configs=$tmp/configs
: > "$configs"
add() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$configs"; }
for w in $workers; do
  add weft-plain "$w" 0 - "$server --workers $w"
  add weft "$w" 1 - "$server --workers $w --tls $cert $key"
  [ -n "$gobin" ] && add go-crypto/tls "$w" 1 "GOMAXPROCS=$w" "$gobin -cert $cert -key $key"
  [ -n "$tokbin" ] && add tokio-openssl "$w" 1 - "$tokbin -cert $cert -key $key -workers $w"
done
if [ "$have_uvloop" = 1 ]; then
  add uvloop+ssl 1 1 - "$PYTHON $here/python/tls_echo.py $cert $key --uvloop"
elif has_peer uvloop; then
  echo "run_tls_echo: $PYTHON has no uvloop: no uvloop row (Debian: python3-uvloop)" >&2
fi
has_peer asyncio && add asyncio+ssl 1 1 - "$PYTHON $here/python/tls_echo.py $cert $key"
nconf=$(wc -l < "$configs")
field() { sed -n "${1}p" "$configs" | cut -f "$2"; }

# OpenSSL's own cost per round trip (bench/tls_record_cost), measured before the echo rounds
floor=
if [ -x "$build/bench/tls_record_cost" ]; then
  floor=$("$build/bench/tls_record_cost" -s "$size" -n 50000 |
    awk '{ sub(/^TLS_/, "", $2); printf "%s%s %s us", (NR > 1 ? ", " : ""), $2, $6 }') || floor=
fi

# REPS rounds; each round runs every configuration once, so that a change in
# the machine's load (it is shared) falls on all of them alike.
r=0
while [ $r -lt "$reps" ]; do
  k=1
  while [ $k -le "$nconf" ]; do
    envs=$(field $k 4)
    [ "$envs" = - ] && envs=
    # shellcheck disable=SC2046
    TLS=$(field $k 3) run_once env $envs $(field $k 5) >> "$tmp/res.$k"
    k=$((k + 1))
  done
  r=$((r + 1))
done

rows=$tmp/rows
: > "$rows"
k=1
while [ $k -le "$nconf" ]; do
  echo "# $(field $k 1) $(field $k 2):$(awk '{ printf " %s", $1 }' "$tmp/res.$k")" >&2
  echo "$(field $k 1) $(field $k 2) $(sort -n "$tmp/res.$k" | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }')" >> "$rows"
  k=$((k + 1))
done

if [ "$format" = lines ]; then
  # report.py's names: the peer's runtime without the "+ssl" / "-crypto/tls" / "-openssl"
  short() { case $1 in go-crypto/tls) echo go ;; tokio-openssl) echo tokio ;; uvloop+ssl) echo uvloop ;; asyncio+ssl) echo asyncio ;; *) echo "$1" ;; esac; }
  k=1
  while [ $k -le "$nconf" ]; do
    echo "# tls_echo $(short "$(field $k 1)") $(field $k 2) reps:$(awk '{ printf " %s", $1 }' "$tmp/res.$k")" >&2
    k=$((k + 1))
  done
  while read -r peer w rps hs cpu ccpu; do
    echo "tls_echo $(short "$peer") $w $rps req/s"
    echo "# tls_echo $(short "$peer") $w stats: server_cpu_ns_per_req=$(echo "$cpu" | awk '{ printf "%.0f", $1 * 1000 }')" \
      "client_cpu_ns_per_req=$(echo "$ccpu" | awk '{ printf "%.0f", $1 * 1000 }')" >&2
  done < "$rows"
  exec 1>&2   # the table goes to stderr
fi
echo "TLS echo: $conns connections, $size-byte messages, ${secs} s per run, median of $reps; TLS 1.3 ($(openssl version | cut -d' ' -f1-2))"
if [ -n "$floor" ]; then
  echo "OpenSSL alone per round trip and side (one SSL_write + one SSL_read of $size bytes, memory BIOs, hot caches;"
  echo "bench/tls_record_cost): $floor"
fi
echo "srv/cli us: CPU time (user + system) of the server / the client process per round trip, in the run"
echo "whose req/s is the median; they share the machine's cores, so req/s follows their sum"
awk '
  { peer[NR] = $1; w[NR] = $2; rps[NR] = $3; hs[NR] = $4; cpu[NR] = $5; ccpu[NR] = $6
    if ($1 == "weft-plain") plain[$2] = $3 }
  END {
    printf "%-14s %5s %9s %12s %13s %10s %10s\n", "server", "cores", "req/s", "handshakes s", "vs weft-plain",
           "srv us", "cli us"
    for (i = 1; i <= NR; i++) {
      ratio = (peer[i] != "weft-plain" && plain[w[i]] > 0) ? sprintf("%.2fx", rps[i] / plain[w[i]]) : "-"
      printf "%-14s %5s %9s %12s %13s %10s %10s\n", peer[i], w[i], rps[i], hs[i], ratio, cpu[i], ccpu[i]
    }
  }' "$rows"
