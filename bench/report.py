#!/usr/bin/env python3
"""Run every benchmark of bench/DEFINITIONS.md for weft and its peers (Tokio, Go, asyncio, uvloop), side by side.

usage: python3 bench/report.py [--quick] [--workers 1,2,4,8] [--rounds N] [--reps R] [--peer-reps R]
                               [--only a,b] [--no-build] [--no-plots] [--no-peers] [--no-native-peers]
                               [--build-dir DIR] [--out DIR]

`make bench` runs it (after scripts/deps.sh bench); `make bench-quick` runs it with --quick.

 1. builds weft in Release mode (cmake -DCMAKE_BUILD_TYPE=Release into build/release), the
    tcp_echo load client (bench/client/echo_client.c), the Go peer (bench/go, `go build`, offline)
    and the Tokio peer (bench/tokio, `cargo build --release --offline` against Debian's crates),
    and for tls_echo (not in --quick) the Tokio TLS peer (bench/tokio_tls, the same way);
 2. in each of N rounds (--rounds, default 3): for every worker count (default 1, 2, 4, 8; on a
    2-core machine 4 and 8 oversubscribe the CPUs on purpose), runs weft_bench with stealable tasks
    (runtime `weft`), then the Tokio and the Go programs, one after the other; then spawn_many +
    yield_many with loop-affine tasks (`weft-affine`). A figure is the median over its runs in all
    rounds: the shared machine's capacity drifts within minutes, and rounds spread each program's
    runs over the whole phase, so a drift falls on all of them alike instead of on whichever ran
    at the bad moment;
 3. runs the Python peers (bench/python/peers.py) for asyncio and uvloop with /usr/bin/python3;
 4. runs tcp_echo at every worker count: weft through bench/run_tcp_echo.sh, Tokio and Go as
    `--serve` servers driven by the same C client;
 4b. runs tls_echo (bench/run_tls_echo.sh): the same load over TLS 1.3 against weft at 1 and 2
    workers, weft without TLS at the same counts (runtime `weft-plain`, the reference), Go's
    crypto/tls (bench/go_tls) at GOMAXPROCS 1 and 2, Tokio + tokio-openssl (bench/tokio_tls) at 1 and
    2 worker threads, uvloop+ssl and asyncio+ssl (runtimes `go`, `tokio`, `uvloop`, `asyncio` of the
    tls_echo rows); 3 s per configuration, 3 interleaved rounds (--quick: 1 worker, 0.5 s, 1 round;
    Tokio only if bench/tokio_tls is already built, --quick does not build it);
 5. prints the table (benchmark, runtime, workers, median, spread = min-max over the measured
    repetitions, how many times better the row is than Tokio and Go at the same worker count and
    than asyncio and uvloop), writes bench/results/results.csv and results.json with the machine,
    its load average at the start of every step and at the end, and draws the scalability and
    comparison plots (gnuplot) into docs/img/.

Every ratio compares two figures of this one run; nothing is taken from elsewhere.

Repetitions: to keep the whole run around 12 minutes on a 2-core machine, report.py asks each
run of weft, Tokio and Go for W=1 warm-up + R=2 measured repetitions, in 3 rounds (6 measured
repetitions per figure; their programs' own default is 5 in one run), and W=1 + R=2 of the Python
peers (peers.py's default is 3); the sizes are the definitions' own. --rounds / --reps /
--peer-reps change the counts. rss_per_task and idle_cpu run once, in a fresh
process, for every runtime and worker count.

--quick runs each benchmark once at 1/100 of the sizes: a smoke run, no meaningful timing.

Standard library only.
"""
import argparse
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench/python/peers.py"
TCP_ECHO_SCRIPT = REPO / "bench/run_tcp_echo.sh"
TLS_ECHO_SCRIPT = REPO / "bench/run_tls_echo.sh"
GO_SRC = REPO / "bench/go"
TOKIO_SRC = REPO / "bench/tokio"
TOKIO_TLS_SRC = REPO / "bench/tokio_tls"
PLOT_DIR = REPO / "bench/plot"

# Output order of the table: the order of bench/DEFINITIONS.md.
BENCH_ORDER = ["spawn_many", "yield_many", "ping_pong", "chained_spawn", "timers_total", "timers_overhead",
               "cross_thread_latency", "cross_thread_throughput", "to_thread", "fib_tasks", "tcp_echo",
               "tls_echo", "rss_per_task", "idle_cpu"]
HIGHER_IS_BETTER = {"tcp_echo", "tls_echo"}
AFFINE_BENCHES = "spawn_many,yield_many"   # bench/DEFINITIONS.md: spawn_many and yield_many also with loop-affine tasks
RUNTIME_ORDER = ["weft", "weft-affine", "weft-handoff", "weft-plain", "tokio", "go", "asyncio", "uvloop",
                 "asyncio-protocol", "uvloop-protocol"]
TLS_WORKERS = (1, 2)   # tls_echo: weft (and Go) at 1 and 2 cores, beside weft without TLS at the same count
NATIVE_PEERS = ("tokio", "go")   # compared with weft at the same worker count
DEFAULT_WORKERS = [1, 2, 4, 8]    # on a 2-core machine, 4 and 8 oversubscribe the CPUs on purpose

LINE = re.compile(r"^(\S+) (\S+) (\d+) (\S+) (\S+)$")
REPS = re.compile(r"^# (\S+) (\S+) (\d+) reps:((?: \S+)*)$")
STATS = re.compile(r"^# (\S+) (\S+) (\d+) stats: (.*)$")
STEALS = re.compile(r"^# fib_tasks (\S+) (\d+) (steals|stolen|started):((?: \d+)*)$")


def log(msg):
    print(f"[report] {msg}", file=sys.stderr, flush=True)


def run(cmd, timeout=None, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


def sh_out(cmd):
    try:
        r = run(cmd, timeout=20)
        return (r.stdout or r.stderr).strip() if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


# ---- machine -------------------------------------------------------------------------------------

def machine_info(build_dir, peer_python):
    cpu = None
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cc = "cc"
    cache = Path(build_dir) / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_C_COMPILER:\w+=(.*)$", cache.read_text(), re.M)
        if m:
            cc = m.group(1)
    compiler = sh_out([cc, "--version"])
    mem = None
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal"):
                mem = ln.split(":", 1)[1].strip()
    except OSError:
        pass
    uvloop_v = sh_out([peer_python, "-c", "import uvloop; print(uvloop.__version__)"])
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory": mem,
        "kernel": platform.release(),
        "os": sh_out(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "compiler": compiler.splitlines()[0] if compiler else None,
        "libuv": sh_out(["pkg-config", "--modversion", "libuv"]),
        "ck": sh_out(["pkg-config", "--modversion", "ck"]),
        "python": sh_out([peer_python, "-c", "import platform; print(platform.python_version())"]),
        "uvloop": uvloop_v,
        "gnuplot": sh_out(["gnuplot", "--version"]),
        "go": sh_out([go_tool() or "go", "version"]),
        "rustc": sh_out(["rustc", "--version"]) if not cargo_tool() else sh_out(
            [str(Path(cargo_tool()).with_name("rustc")), "--version"]),
        "cargo": sh_out([cargo_tool() or "cargo", "--version"]),
        "tokio": tokio_version(),
        "weft_commit": sh_out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "weft_tree_dirty": bool(sh_out(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "loadavg_start": os.getloadavg(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def tokio_version():
    """The tokio version Cargo resolved (bench/tokio/Cargo.lock)."""
    try:
        m = re.search(r'name = "tokio"\nversion = "([^"]+)"', (TOKIO_SRC / "Cargo.lock").read_text())
        return m.group(1) if m else None
    except OSError:
        return None


# ---- building ------------------------------------------------------------------------------------

def build(build_dir, jobs):
    log(f"building weft (Release) in {build_dir}")
    cfg = ["cmake", "-S", REPO, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", "-DWEFT_BUILD_TESTS=OFF",
           "-DWEFT_BUILD_EXAMPLES=OFF"]
    for cmd in (cfg, ["cmake", "--build", build_dir, "-j", str(jobs)]):
        r = run(cmd, timeout=900)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
            sys.exit(f"build failed: {' '.join(map(str, cmd))}")


def build_client(build_dir):
    client = Path(build_dir) / "bench/client/echo_client"
    client.parent.mkdir(parents=True, exist_ok=True)
    src = REPO / "bench/client/echo_client.c"
    if not client.exists() or client.stat().st_mtime < src.stat().st_mtime:
        ssl = (sh_out(["pkg-config", "--cflags", "--libs", "openssl"]) or "-lssl -lcrypto").split()   # --tls
        r = run(["cc", "-std=c17", "-O2", "-Wall", "-Wextra", "-o", client, src, *ssl], timeout=300)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            sys.exit("building the echo client failed")
    return client


def go_tool():
    return shutil.which("go") or next((g for g in ("/usr/lib/go/bin/go", "/usr/bin/go") if os.access(g, os.X_OK)), None)


def cargo_tool():
    # Debian's cargo first: it matches the Debian crates of /usr/share/cargo/registry (librust-tokio-dev)
    return next((c for c in ("/usr/bin/cargo",) if os.access(c, os.X_OK)), None) or shutil.which("cargo")


def build_go(build_dir):
    """bench/go -> BUILD/bench/go/go_bench (no module dependencies, no network)."""
    go = go_tool()
    if not go:
        return None, "go not found (scripts/deps.sh bench installs golang-go)"
    exe = Path(build_dir) / "bench/go/go_bench"
    exe.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod",
               GOCACHE=str(Path(build_dir) / "bench/go/cache"))
    r = run([go, "build", "-o", exe, "."], timeout=600, cwd=GO_SRC, env=env)
    if r.returncode != 0:
        return None, f"go build failed: {r.stderr.strip()[-500:]}"
    return exe, None


def build_tokio(build_dir, jobs, src=TOKIO_SRC, name="tokio_bench", pkgs="cargo and librust-tokio-dev"):
    """bench/tokio -> BUILD/bench/tokio/release/tokio_bench (and bench/tokio_tls the same way), offline,
    against Debian's crate directory (the package's .cargo/config.toml)."""
    cargo = cargo_tool()
    if not cargo:
        return None, f"cargo not found (scripts/deps.sh bench installs {pkgs})"
    target = Path(build_dir) / "bench" / src.name
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    if cargo.startswith("/usr/bin/"):
        env["RUSTC"] = "/usr/bin/rustc"
    r = run([cargo, "build", "--release", "--offline", "-j", str(jobs)], timeout=1200, cwd=src, env=env)
    if r.returncode != 0:
        return None, f"cargo build failed: {r.stderr.strip()[-800:]}"
    return target / "release" / name, None


def tokio_tls_exe(build_dir):
    """Where build_tokio puts bench/tokio_tls (bench/run_tls_echo.sh looks there too)."""
    return Path(build_dir) / "bench/tokio_tls/release/tokio_tls"


# ---- running and parsing -------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.rows = {}    # (bench, runtime, workers) -> dict
        self.stats = {}   # (bench, runtime, workers) -> {counter: value}
        self.fib = {}     # (runtime, workers) -> {steals: [...], stolen: [...], started: [...]}
        self.notes = []
        self.logs = {}
        self.steps = []   # {tag, loadavg_before, seconds, ok}
        self.row_load = {}  # (bench, runtime, workers) -> 1-minute load average when its step started

    cur_load = None

    def parse(self, tag, out, err):
        self.logs[tag] = {"stdout": out, "stderr": err}
        reps = {}
        for ln in err.splitlines():
            m = REPS.match(ln)
            if m:
                reps[(m.group(1), m.group(2), int(m.group(3)))] = [float(x) for x in m.group(4).split()]
                continue
            # a later round of the same program adds to what the earlier ones found
            m = STATS.match(ln)
            if m:
                st = self.stats.setdefault((m.group(1), m.group(2), int(m.group(3))), {})
                for k, v in (kv.split("=") for kv in m.group(4).split()):
                    st[k] = st.get(k, 0) + int(v)   # summed over repetitions, like the program's own line
                continue
            m = STEALS.match(ln)
            if m:
                self.fib.setdefault((m.group(1), int(m.group(2))), {}).setdefault(m.group(3), []).extend(
                    int(x) for x in m.group(4).split())
        n = 0
        for ln in out.splitlines():
            m = LINE.match(ln.strip())
            if not m:
                continue
            name, rt, w, val, unit = m.group(1), m.group(2), int(m.group(3)), float(m.group(4)), m.group(5)
            key = (name, rt, w)
            if key in self.rows:   # another round: the median of every repetition of every round
                row = self.rows[key]
                row["reps"] = row["reps"] + reps.get(key, [val])
                row["median"] = statistics.median(row["reps"])
            else:
                self.rows[key] = {"benchmark": name, "runtime": rt, "workers": w, "median": val, "unit": unit,
                                  "reps": reps.get(key, [val]), "loadavg_1m": self.cur_load}
            n += 1
        return n


def run_step(res, tag, cmd, timeout, env=None):
    log(f"{tag}: {' '.join(map(str, cmd))}")
    t0 = time.monotonic()
    load = os.getloadavg()
    res.cur_load = round(load[0], 2)
    step = {"tag": tag, "loadavg_before": [round(x, 2) for x in load], "seconds": None, "ok": False}
    res.steps.append(step)
    try:
        r = run(cmd, timeout=timeout, cwd=REPO, env=env)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        res.parse(tag, out, err)
        res.notes.append(f"{tag}: timed out after {timeout} s (partial results kept)")
        log(f"{tag}: TIMEOUT after {timeout} s")
        return False
    n = res.parse(tag, r.stdout, r.stderr)
    dt = time.monotonic() - t0
    step["seconds"] = round(dt, 1)
    if r.returncode != 0:
        res.notes.append(f"{tag}: exit status {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
        log(f"{tag}: FAILED (exit {r.returncode}) after {dt:.1f} s\n{r.stderr[-3000:]}")
        return False
    log(f"{tag}: {n} lines in {dt:.1f} s")
    step["ok"] = True
    return True


def run_echo_peer(res, tag, exe, rt, w, client, secs, conns=64, size=64):
    """tcp_echo against a `--serve` peer (Tokio, Go): start it, read `PORT n`, drive it with the C client
    for `secs` seconds; the server stops by itself once the client has closed its connections."""
    log(f"{tag}: {exe} --workers {w} --serve + echo_client -c {conns} -s {size} -d {secs}")
    load = os.getloadavg()
    res.cur_load = round(load[0], 2)
    step = {"tag": tag, "loadavg_before": [round(x, 2) for x in load], "seconds": None, "ok": False}
    res.steps.append(step)
    t0 = time.monotonic()
    srv = subprocess.Popen([str(exe), "--workers", str(w), "--serve"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError(f"server said {line}")
        out = run([client, "127.0.0.1", line[1], "-c", conns, "-s", size, "-d", secs], timeout=secs + 30)
        if out.returncode != 0:
            raise RuntimeError(f"echo client failed ({out.returncode}): {out.stderr.strip()}")
        srv.wait(timeout=15)
        f = out.stdout.split()   # roundtrips N elapsed_s X req_per_s Y
        if f[0::2] != ["roundtrips", "elapsed_s", "req_per_s"]:
            raise RuntimeError(f"client said {out.stdout!r}")
        v = round(int(f[1]) / float(f[3]))
        res.parse(tag, f"tcp_echo {rt} {w} {v} req/s\n", f"# tcp_echo {rt} {w} reps: {v}\n" + srv.stderr.read())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        res.notes.append(f"{tag}: {e}")
        log(f"{tag}: FAILED: {e}")
        return False
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    step["seconds"] = round(time.monotonic() - t0, 1)
    step["ok"] = True
    log(f"{tag}: {v} req/s")
    return True


def run_tls_echo(res, args, workers, build_dir, peer_python, tokio_tls):
    """tls_echo through bench/run_tls_echo.sh (FORMAT=lines): `tls_echo RUNTIME W req/s` rows for weft,
    weft-plain (the same server without TLS), go (crypto/tls), tokio (tokio-openssl; the program
    tokio_tls, None: no Tokio row), uvloop and asyncio (+ssl)."""
    if not TLS_ECHO_SCRIPT.exists():
        res.notes.append("tls_echo skipped: bench/run_tls_echo.sh does not exist")
        log(res.notes[-1])
        return True
    if not shutil.which("openssl"):
        res.notes.append("tls_echo skipped: no openssl command (Debian: openssl)")
        log(res.notes[-1])
        return True
    tw = [w for w in workers if w in TLS_WORKERS] or workers[:1]
    if args.quick:
        tw = tw[:1]
    secs, reps = (0.5, 1) if args.quick else (3, 3)
    peers = [] if args.no_peers else ["uvloop", "asyncio"]
    if not args.no_peers and not args.no_native_peers:
        peers.insert(0, "go")
        if tokio_tls:
            peers.insert(1, "tokio")
    env = dict(os.environ, FORMAT="lines", ECHO_SECS=str(secs), REPS=str(reps), WORKERS=" ".join(map(str, tw)),
               PEERS=" ".join(peers), PYTHON=peer_python)
    if tokio_tls:
        env["TOKIO_TLS"] = str(tokio_tls)
    if go_tool():   # offline, like build_go
        env.update(GOTOOLCHAIN="local", GOPROXY="off", GOCACHE=str(Path(build_dir) / "bench/go/cache"))
        env["PATH"] = str(Path(go_tool()).parent) + os.pathsep + env.get("PATH", "")
    native = ("go" in peers) + ("tokio" in peers)   # at every worker count, like weft and weft-plain
    nconf = len(tw) * (2 + native) + len(peers) - native
    tmo = int(reps * nconf * (secs + 12)) + 180   # + the Go build
    return run_step(res, "tls_echo", ["sh", TLS_ECHO_SCRIPT, build_dir], tmo, env=env)


# ---- the table ------------------------------------------------------------------------------------

def better(name, weft, peer):
    """How many times better `weft` is than `peer` (> 1: weft better). None if undefined."""
    if weft is None or peer is None:
        return None
    if name in HIGHER_IS_BETTER:
        return weft / peer if peer > 0 else None
    if weft <= 0 or peer <= 0:
        return None
    return peer / weft


def add_ratios(res):
    """x_asyncio / x_uvloop: against the single-threaded Python peers; x_tokio / x_go: against Tokio and Go at
    the row's own worker count (weft rows only). All from this run."""
    for (name, rt, w), row in res.rows.items():
        for peer in ("asyncio", "uvloop"):
            p = res.rows.get((name, peer, 1))
            row[f"x_{peer}"] = better(name, row["median"], p["median"] if p else None)
        for peer in NATIVE_PEERS:
            p = res.rows.get((name, peer, w)) if rt.startswith("weft") else None
            row[f"x_{peer}"] = better(name, row["median"], p["median"] if p else None)


def sorted_rows(res):
    def key(r):
        b = BENCH_ORDER.index(r["benchmark"]) if r["benchmark"] in BENCH_ORDER else 99
        rt = RUNTIME_ORDER.index(r["runtime"]) if r["runtime"] in RUNTIME_ORDER else 50
        return (b, rt, r["runtime"], r["workers"])
    return sorted(res.rows.values(), key=key)


def num(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def ratio(v):
    return "-" if v is None else (f"{v:.2f}x" if v < 10 else f"{v:.1f}x")


def table(res):
    head = ["benchmark", "runtime", "workers", "median", "unit", "spread (min-max)", "vs tokio", "vs go",
            "vs asyncio", "vs uvloop"]
    lines = []
    for r in sorted_rows(res):
        reps = r["reps"]
        spread = f"{num(min(reps))}-{num(max(reps))}" if len(reps) > 1 else "(1 rep)"
        lines.append([r["benchmark"], r["runtime"], str(r["workers"]), num(r["median"]), r["unit"], spread,
                      ratio(r.get("x_tokio")), ratio(r.get("x_go")), ratio(r.get("x_asyncio")),
                      ratio(r.get("x_uvloop"))])
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]
    right = {2, 3, 5, 6, 7, 8, 9}

    def fmt(cells):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells))
    out = [fmt(head), "  ".join("-" * w for w in widths)]
    prev = None
    for ln in lines:
        if prev and ln[0] != prev:
            out.append("")
        out.append(fmt(ln))
        prev = ln[0]
    return "\n".join(out)


def scalability(res, workers):
    """Speed-up: throughput at w workers / throughput at 1 worker (fib_tasks: ms(w1)/ms(w)), for weft, Tokio, Go."""
    out = {}
    for (name, rt, w), row in res.rows.items():
        if rt not in ("weft", "weft-affine", "weft-handoff") + NATIVE_PEERS or \
                name in ("rss_per_task", "idle_cpu", "timers_overhead"):
            continue
        base = res.rows.get((name, rt, 1))
        if not base:
            continue
        s = better(name, row["median"], base["median"])
        out.setdefault(f"{name} {rt}", {})[w] = s
    return out


def footer(res, workers):
    lines = ["", "speed-up over 1 worker (throughput(w) / throughput(1); fib_tasks: ms(w1)/ms(w)):"]
    sc = scalability(res, workers)
    for k in sorted(sc, key=lambda k: (BENCH_ORDER.index(k.split()[0]) if k.split()[0] in BENCH_ORDER else 99, k)):
        cells = "  ".join(f"w{w}: {sc[k][w]:.2f}" for w in sorted(sc[k]) if sc[k][w] is not None)
        lines.append(f"  {k:<40} {cells}")
    if res.fib:
        lines.append("")
        lines.append("fib_tasks steals per measured repetition (successful steal operations / tasks moved):")
        for (rt, w), d in sorted(res.fib.items()):
            lines.append(f"  {rt} w{w}: steals {d.get('steals', [])}  stolen {d.get('stolen', [])}  "
                         f"tasks started {d.get('started', [])}")
    return "\n".join(lines)


# ---- files --------------------------------------------------------------------------------------

def markdown(res, workers):
    """The summary tables of docs/benchmarks.md: one row per benchmark and worker count, weft beside Tokio
    and Go at the same worker count (and the single-threaded Python peers on the 1-worker row), then the
    speed-ups over 1 worker."""
    head = ["benchmark", "unit", "w", "weft", "weft min-max", "weft-affine", "Tokio", "Go", "weft vs Tokio",
            "weft vs Go", "asyncio", "uvloop", "weft vs asyncio", "weft vs uvloop"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in BENCH_ORDER:
        if not any(k[0] == n for k in res.rows):
            continue
        for w in workers:
            get = lambda rt, ww=w: res.rows.get((n, rt, ww))   # noqa: E731
            if not any(get(rt) for rt in ("weft", "weft-affine", "tokio", "go")):
                continue
            wf = get("weft")
            unit = next(r["unit"] for r in (get(rt) for rt in ("weft", "tokio", "go", "weft-affine")) if r)
            cells = [f"`{n}`", unit, str(w)]
            cells.append(num(wf["median"]) if wf else "")
            cells.append(f"{num(min(wf['reps']))}-{num(max(wf['reps']))}" if wf and len(wf["reps"]) > 1 else "")
            for rt in ("weft-affine", "tokio", "go"):
                r = get(rt)
                cells.append(num(r["median"]) if r else ("n/a" if rt == "go" and n == "to_thread" else ""))
            cells += [ratio(wf.get("x_tokio")) if wf else "", ratio(wf.get("x_go")) if wf else ""]
            if w == 1:
                for rt in ("asyncio", "uvloop"):
                    r = get(rt)
                    cells.append(num(r["median"]) if r else "")
                cells += [ratio(wf.get("x_asyncio")) if wf else "", ratio(wf.get("x_uvloop")) if wf else ""]
            else:
                cells += ["", "", "", ""]
            out.append("| " + " | ".join(cells) + " |")
    extra = []
    for rt, label in (("asyncio-protocol", "the asyncio protocol server"), ("uvloop-protocol", "the uvloop protocol server"),
                      ("weft-handoff", "the weft server in hand-off mode (one acceptor)")):
        vals = [f"w{w} {num(res.rows[('tcp_echo', rt, w)]['median'])}" for w in sorted(
            {k[2] for k in res.rows if k[:2] == ("tcp_echo", rt)})]
        if vals:
            extra.append(f"`tcp_echo` with {label}: {', '.join(vals)} req/s.")
    # tls_echo's rounds run weft and weft-plain back to back: the ratio of each round's pair is steadier
    # than the ratio of the medians when the shared machine's capacity drifts during the run
    paired = []
    for w in sorted({k[2] for k in res.rows if k[:2] == ("tls_echo", "weft")}):
        t, p = res.rows.get(("tls_echo", "weft", w)), res.rows.get(("tls_echo", "weft-plain", w))
        if t and p and len(t["reps"]) == len(p["reps"]) and all(p["reps"]):
            rs = [a / b for a, b in zip(t["reps"], p["reps"])]
            paired.append(f"w{w} {statistics.median(rs):.2f}x (rounds: {' '.join(f'{x:.2f}' for x in rs)})")
    if paired:
        extra.append("`tls_echo` weft with TLS ÷ weft without, paired by round (the two ran one after the other): "
                     + ", ".join(paired) + ".")
    if extra:
        out.append("\n" + "\n".join(f"- {e}" for e in extra))

    # speed-ups over 1 worker
    sc = scalability(res, workers)
    more = [w for w in workers if w != 1]
    if more:
        rts = ["weft", "tokio", "go"]
        head = ["benchmark"] + [f"{rt} w{w}" for rt in rts for w in more]
        out += ["", "Speed-up over 1 worker of the same runtime (throughput(w) / throughput(1)):", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for n in BENCH_ORDER:
            if not any(f"{n} {rt}" in sc for rt in rts):
                continue
            cells = [f"`{n}`"]
            for rt in rts:
                d = sc.get(f"{n} {rt}", {})
                cells += [ratio(d.get(w)) if d.get(w) else "" for w in more]
            out.append("| " + " | ".join(cells) + " |")
    out += counters_table(res, workers)
    return "\n".join(out) + "\n"


# weft's scheduler counters that explain a speed-up curve (weft_loop_stats_t, summed over the loops)
COUNTERS = [("stolen", "tasks stolen"), ("steals", "steal ops"), ("inline_joins", "inline joins"),
            ("searches", "searches"), ("search_hits", "search hits"), ("parks", "parks"),
            ("wakeups", "wake-ups"), ("inbox", "cross-thread msgs")]


def counters_table(res, workers):
    """Per benchmark and worker count, weft's scheduler counters per measured repetition (the stats line of
    weft_bench is summed over the repetitions: divided here by their number)."""
    out = ["", "weft's scheduler counters per measured repetition (all loops together):", "",
           "| benchmark | w | " + " | ".join(label for _, label in COUNTERS) + " |",
           "|" + "---|" * (2 + len(COUNTERS))]
    n_rows = 0
    for n in BENCH_ORDER:
        key = "timers" if n.startswith("timers") else n
        if n == "timers_overhead":
            continue
        for w in workers:
            st = res.stats.get((key, "weft", w))
            row = res.rows.get((n, "weft", w))
            if not st or not row or "stolen" not in st:   # tls_echo's stats are CPU times, not counters
                continue
            reps = max(1, len(row["reps"]))
            cells = [f"`{key}`", str(w)] + [num(st.get(c, 0) / reps) if c in st else "-" for c, _ in COUNTERS]
            out.append("| " + " | ".join(cells) + " |")
            n_rows += 1
    return out if n_rows else []


def write_files(res, machine, config, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = sorted_rows(res)
    with open(out_dir / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        xs = ["x_tokio", "x_go", "x_asyncio", "x_uvloop"]
        w.writerow(["benchmark", "runtime", "workers", "median", "unit", "min", "max", "reps", *xs, "loadavg_1m"])
        for r in rows:
            w.writerow([r["benchmark"], r["runtime"], r["workers"], r["median"], r["unit"], min(r["reps"]),
                        max(r["reps"]), " ".join(f"{x:g}" for x in r["reps"]),
                        *("" if r.get(x) is None else f"{r[x]:.4g}" for x in xs),
                        "" if r.get("loadavg_1m") is None else r["loadavg_1m"]])
        fh.write("# machine: " + json.dumps(machine) + "\n")
        fh.write("# steps (load average 1/5/15 min when each started): " + json.dumps(res.steps) + "\n")
    doc = {
        "machine": machine,
        "config": config,
        "results": rows,
        "scalability": {k: {str(w): v for w, v in d.items()} for k, d in scalability(res, config["workers"]).items()},
        "runtime_counters": [{"benchmark": k[0], "runtime": k[1], "workers": k[2], **v}
                             for k, v in sorted(res.stats.items())],
        "fib_tasks_steals": [{"runtime": k[0], "workers": k[1], **v} for k, v in sorted(res.fib.items())],
        "steps": res.steps,
        "notes": res.notes,
    }
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "results.md").write_text(markdown(res, config["workers"]))
    logs = out_dir / "logs"
    if logs.is_dir():
        for f in logs.glob("*.out"):
            f.unlink()
        for f in logs.glob("*.err"):
            f.unlink()
    logs.mkdir(exist_ok=True)
    for tag, d in res.logs.items():
        (logs / f"{tag}.out").write_text(d["stdout"])
        (logs / f"{tag}.err").write_text(d["stderr"])


# ---- plots ----------------------------------------------------------------------------------------

def throughput(name, row):
    """Operations per second (higher is better) for the scalability picture."""
    v, unit = row["median"], row["unit"]
    if unit.startswith("ns/"):
        return 1e9 / v
    if name == "fib_tasks":
        return 1e3 / v            # fib(25) runs per second
    if name == "timers_total":
        return 100000 / (v / 1e3) if v > 0 else 0   # timers completed per second
    if unit == "req/s":
        return v
    return None


def plots(res, workers, out_dir, img_dir):
    gp = shutil.which("gnuplot")
    if not gp:
        res.notes.append("gnuplot not found: no plots (scripts/deps.sh bench installs gnuplot-nox)")
        log(res.notes[-1])
        return []
    terms = run([gp, "-e", "set terminal"]).stdout + run([gp, "-e", "set terminal"]).stderr
    png = "pngcairo" if re.search(r"^\s*pngcairo\s", terms, re.M) else "png"
    data = out_dir / "plot"
    data.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)

    # 1. scalability: one block per benchmark, `workers weft weft-affine tokio go` (ops/s)
    names = [n for n in BENCH_ORDER if n not in ("rss_per_task", "idle_cpu", "timers_overhead", "tls_echo")
             and any((n, "weft", w) in res.rows for w in workers)]   # (tls_echo: its own plot, 3.)
    with open(data / "scalability.dat", "w") as fh:
        for n in names:
            for w in workers:
                vals = []
                for rt in ("weft", "weft-affine", "tokio", "go"):
                    row = res.rows.get((n, rt, w))
                    t = throughput(n, row) if row else None
                    vals.append(f"{t:.6g}" if t else "NaN")
                fh.write(f"{w} {' '.join(vals)}\n")
            fh.write("\n\n")

    # 2. comparison bars: how many times faster than asyncio (log scale), per benchmark
    wmax = max(workers)
    cores = _MACHINE.get("nproc") or os.cpu_count() or 1
    wc = cores if cores in workers and cores > 1 else (wmax if wmax > 1 else None)
    cols = [("asyncio", 1), ("uvloop", 1), ("weft", 1), ("tokio", 1), ("go", 1)] + \
        ([("weft", wc), ("tokio", wc), ("go", wc)] if wc else [])
    bar_names = [n for n in BENCH_ORDER if n not in ("timers_total", "idle_cpu", "rss_per_task", "tls_echo")
                 and (n, "asyncio", 1) in res.rows]
    with open(data / "bars.dat", "w") as fh:
        fh.write("benchmark " + " ".join(f'"{rt} w{w}"' for rt, w in cols) + "\n")
        for n in bar_names:
            base = res.rows[(n, "asyncio", 1)]["median"]
            vals = []
            for rt, w in cols:
                row = res.rows.get((n, rt, w))
                x = better(n, row["median"], base) if row else None
                vals.append(f"{x:.6g}" if x else "NaN")
            fh.write(f'"{n}" ' + " ".join(vals) + "\n")

    # 3. tls_echo: req/s per server, grouped by worker count, weft without TLS first (the reference)
    tls_cols = [("weft-plain", "weft, no TLS"), ("weft", "weft TLS"), ("go", "Go crypto/tls"),
                ("tokio", "Tokio+OpenSSL"), ("uvloop", "uvloop+ssl"), ("asyncio", "asyncio+ssl")]
    # the colours of bench/plot/bars.gp for the peers, blues for weft
    tls_color = {"weft-plain": "#aec7e8", "weft": "#1f77b4", "go": "#2ca02c", "tokio": "#d62728",
                 "uvloop": "#bcbd22", "asyncio": "#8c8c8c"}
    tls_w = sorted({k[2] for k in res.rows if k[0] == "tls_echo"})
    tls_cols = [c for c in tls_cols if any(("tls_echo", c[0], w) in res.rows for w in tls_w)]
    if any(("tls_echo", "weft", w) in res.rows for w in tls_w):
        with open(data / "tls_echo.dat", "w") as fh:
            fh.write("workers " + " ".join(f'"{t}"' for _, t in tls_cols) + " ratio\n")
            for w in tls_w:
                vals = []
                for rt, _ in tls_cols:
                    row = res.rows.get(("tls_echo", rt, w))
                    vals.append(f"{row['median']:.6g}" if row else "NaN")
                weft, plain = res.rows.get(("tls_echo", "weft", w)), res.rows.get(("tls_echo", "weft-plain", w))
                r = weft["median"] / plain["median"] if weft and plain and plain["median"] > 0 else None
                rs = f"{r:.4g}" if r else "NaN"
                fh.write(f'"{w} worker{"s" if w > 1 else ""}" ' + " ".join(vals) + f" {rs}\n")
    tls_sub = "64 connections x 64-byte messages, TLS 1.3; x = weft TLS / weft without TLS"
    tls_colors = " ".join(tls_color[rt] for rt, _ in tls_cols)

    made = []
    jobs = [("scalability.gp", data / "scalability.dat", "scalability", len(names))] if names else []
    if bar_names:
        jobs.append(("bars.gp", data / "bars.dat", "weft_vs_asyncio_uvloop", len(cols)))
    if (data / "tls_echo.dat").exists() and any(("tls_echo", "weft", w) in res.rows for w in tls_w):
        jobs.append(("tls_echo.gp", data / "tls_echo.dat", "tls_echo", len(tls_cols)))
    for script, dat, stem, count in jobs:
        for term, ext in ((png, "png"), ("svg", "svg")):
            outf = img_dir / f"{stem}.{ext}"
            cmd = [gp, "-e", f"datafile='{dat}'; outfile='{outf}'; term='{term}'; n={count}; "
                             f"wmax={wmax}; cores={cores}; names='{' '.join(names)}'; title_machine='{machine_title(res)}'; "
                             f"subtitle='{tls_sub}'; tls_colors='{tls_colors}'",
                   PLOT_DIR / script]
            r = run(cmd, timeout=60)
            if r.returncode != 0 or not outf.exists():
                res.notes.append(f"gnuplot {script} ({term}) failed: {r.stderr.strip()[-300:]}")
                log(res.notes[-1])
            else:
                made.append(outf)
    return made


_MACHINE = {}


def cpu_capacity(build_dir):
    """bench/cpu_capacity: how many CPUs the machine really gives this process now (two busy threads timed
    against one). None if the probe is missing or fails."""
    exe = build_dir / "bench/cpu_capacity"
    if not exe.exists():
        return None
    r = run([str(exe)], timeout=60)
    m = re.match(r"cpu_capacity (\S+) (\d+) (\S+) (\S+)", r.stdout.strip()) if r.returncode == 0 else None
    return {"effective_cpus": float(m.group(1)), "threads": int(m.group(2)), "ms_one": float(m.group(3)),
            "ms_all": float(m.group(4))} if m else None


def capacity_text(machine):
    caps = [machine.get(k) for k in ("cpu_capacity_start", "cpu_capacity_end")]
    if not any(caps):
        return "effective CPUs not measured"
    f = lambda c: f"{c['effective_cpus']:.2f} of {c['threads']}" if c else "?"   # noqa: E731
    return f"effective CPUs (bench/cpu_capacity) at start {f(caps[0])}, at end {f(caps[1])}"


def machine_title(res):
    m = _MACHINE
    return f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores".replace("'", "")


# ---- main -------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="each benchmark once at small size")
    ap.add_argument("--workers", help="comma-separated worker counts for weft, Tokio and Go (default 1,2,4,8)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of weft, Tokio and Go runs (default 3; --quick: 1): each round runs every program "
                         "at every worker count once, so a drift of the shared machine's capacity falls on all alike")
    ap.add_argument("--reps", type=int, default=2,
                    help="weft, Tokio and Go measured repetitions per run (default 2 here, the programs' own default "
                         "is 5); the median is over all rounds' repetitions")
    ap.add_argument("--warmup", type=int, help="weft warm-up repetitions (default 1)")
    ap.add_argument("--peer-reps", type=int, default=2,
                    help="asyncio/uvloop measured repetitions (default 2 here, peers.py's own default is 3)")
    ap.add_argument("--only", help="comma-separated benchmark names for weft and the peers")
    ap.add_argument("--no-peers", action="store_true", help="weft only")
    ap.add_argument("--no-native-peers", action="store_true", help="no Tokio and Go (asyncio and uvloop only)")
    ap.add_argument("--no-build", action="store_true", help="use the existing build")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--replot", action="store_true",
                    help="redraw the plots and the table from OUT/results.json without running anything")
    ap.add_argument("--build-dir", default=str(REPO / "build/release"))
    ap.add_argument("--out", default=str(REPO / "bench/results"))
    ap.add_argument("--img", default=str(REPO / "docs/img"))
    args = ap.parse_args()
    t_start = time.monotonic()
    if args.replot:
        doc = json.loads((Path(args.out) / "results.json").read_text())
        res = Results()
        for r in doc["results"]:
            res.rows[(r["benchmark"], r["runtime"], r["workers"])] = r
        for d in doc.get("fib_tasks_steals", []):
            res.fib[(d["runtime"], d["workers"])] = {k: d[k] for k in ("steals", "stolen", "started") if k in d}
        for d in doc.get("runtime_counters", []):
            res.stats[(d["benchmark"], d["runtime"], d["workers"])] = {
                k: v for k, v in d.items() if k not in ("benchmark", "runtime", "workers")}
        _MACHINE.update(doc["machine"])
        workers = doc["config"]["workers"]
        for f in plots(res, workers, Path(args.out), Path(args.img)):
            log(f"wrote {f}")
        (Path(args.out) / "results.md").write_text(markdown(res, workers))
        print(table(res))
        print(footer(res, workers))
        return 0

    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = [int(x) for x in args.workers.split(",")] if args.workers else DEFAULT_WORKERS
    peer_python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    build_dir = Path(args.build_dir).resolve()
    notes_early = []
    if not args.no_build:
        build(build_dir, ncpu)
    client = build_client(build_dir)
    weft_bench = build_dir / "bench/weft_bench"
    if not weft_bench.exists():
        sys.exit(f"no {weft_bench}: build first (drop --no-build)")
    natives = {}   # runtime -> executable
    if not args.no_peers and not args.no_native_peers:
        for rt, builder in (("tokio", lambda: build_tokio(build_dir, min(ncpu, 2))), ("go", lambda: build_go(build_dir))):
            log(f"building the {rt} peer")
            exe, err = builder()
            if exe:
                natives[rt] = exe
            else:
                notes_early.append(f"{rt} peer not built, skipped: {err}")
                log(notes_early[-1])
    # tls_echo's Tokio peer: built here, except in --quick (a cold build takes minutes on a small machine:
    # --quick runs it only if an earlier run built it)
    tokio_tls = None
    if not args.no_peers and not args.no_native_peers and (not args.only or "tls_echo" in args.only.split(",")):
        if args.quick:
            if os.access(tokio_tls_exe(build_dir), os.X_OK):
                tokio_tls = tokio_tls_exe(build_dir)
            else:
                notes_early.append("tls_echo: no Tokio row in --quick (bench/tokio_tls is built by a full run)")
                log(notes_early[-1])
        else:
            log("building the tokio TLS peer")
            tokio_tls, err = build_tokio(build_dir, min(ncpu, 2), TOKIO_TLS_SRC, "tokio_tls",
                                         "cargo, librust-tokio-openssl-dev and librust-openssl-dev")
            if err:
                notes_early.append(f"tokio TLS peer not built, no Tokio row in tls_echo: {err}")
                log(notes_early[-1])

    machine = machine_info(build_dir, peer_python)
    machine["cpu_capacity_start"] = cpu_capacity(build_dir)
    _MACHINE.update(machine)
    rounds = 1 if args.quick else max(1, args.rounds)
    config = {"quick": args.quick, "workers": workers, "rounds": rounds, "weft_reps": 1 if args.quick else args.reps,
              "weft_warmup": 0 if args.quick else (1 if args.warmup is None else args.warmup),
              "peer_reps": 1 if args.quick else args.peer_reps, "peer_warmup": 0 if args.quick else 1,
              "native_peer_reps": 1 if args.quick else args.reps, "only": args.only,
              "native_peers": sorted(natives)}
    res = Results()
    res.notes += notes_early
    ok = True

    common = ["--quick"] if args.quick else ["--reps", str(args.reps)]
    if args.warmup is not None and not args.quick:
        common += ["--warmup", str(args.warmup)]
    only = ["--only", args.only] if args.only else []
    tmo = 120 if args.quick else 300

    # every worker count: weft (stealable tasks), then Tokio and Go right after it, so that the figures
    # compared with each other are taken close together in time (tcp_echo is not theirs: it runs below)
    native_only = only
    if args.only:
        native_only = ["--only", ",".join(n for n in args.only.split(",") if n not in ("tcp_echo", "tls_echo"))]
    # and loop-affine weft tasks (spawn_many, yield_many) last; all of it `rounds` times over
    aff = AFFINE_BENCHES
    if args.only:
        aff = ",".join(n for n in args.only.split(",") if n in AFFINE_BENCHES.split(","))
    for r in range(rounds):
        rtag = f"-r{r + 1}" if rounds > 1 else ""
        for w in workers:
            if args.only and native_only[1] == "":
                break   # tcp_echo / tls_echo only: they run below
            ok &= run_step(res, f"weft-w{w}{rtag}", [weft_bench, "--workers", w, *common, *native_only], tmo)
            for rt, exe in natives.items():
                ok &= run_step(res, f"{rt}-w{w}{rtag}", [exe, "--workers", w, *common, *native_only], tmo)
        if aff:
            for w in workers:
                ok &= run_step(res, f"weft-affine-w{w}{rtag}",
                               [weft_bench, "--workers", w, "--affine", "--only", aff, *common], tmo)

    # the peers
    peer_only = ",".join(n for n in args.only.split(",") if n != "tls_echo") if args.only else None
    if not args.no_peers and peer_only != "":   # (tls_echo's Python peers run with it below)
        for peer in ("asyncio", "uvloop"):
            if peer == "uvloop" and not machine.get("uvloop"):
                res.notes.append("uvloop not importable by /usr/bin/python3: skipped "
                                 "(scripts/deps.sh bench installs python3-uvloop)")
                log(res.notes[-1])
                continue
            cmd = [peer_python, PEERS, "--peer", peer, "--echo-client", client, *(["--quick"] if args.quick else [])]
            if not args.quick:
                cmd += ["--reps", str(args.peer_reps)]
            if peer_only:
                cmd += ["--only", peer_only]
            ok &= run_step(res, peer, cmd, 600)

    # tcp_echo, every worker count: weft (both serving modes), then Tokio and Go
    if not args.only or "tcp_echo" in args.only.split(","):
        secs = 1 if args.quick else 5
        for w in workers:
            if TCP_ECHO_SCRIPT.exists():
                # bench/run_tcp_echo.sh BUILD_DIR WORKERS...: `tcp_echo weft W v req/s` (SO_REUSEPORT
                # listener per loop) and `tcp_echo weft-handoff W v req/s` (one acceptor, hand-off)
                env = dict(os.environ, ECHO_SECS=str(secs), REPS="1")
                cmd = ["sh", TCP_ECHO_SCRIPT, build_dir, w]
                ok &= run_step(res, f"tcp_echo-weft-w{w}", cmd, 2 * (secs + 15) + 30, env=env)
            elif w == workers[0]:
                res.notes.append("tcp_echo for weft skipped: bench/run_tcp_echo.sh does not exist")
                log(res.notes[-1])
            for rt, exe in natives.items():
                ok &= run_echo_peer(res, f"tcp_echo-{rt}-w{w}", exe, rt, w, client, secs)

    # tls_echo: bench/run_tls_echo.sh runs every configuration in interleaved rounds itself
    if not args.only or "tls_echo" in args.only.split(","):
        ok &= run_tls_echo(res, args, workers, build_dir, peer_python, tokio_tls)

    add_ratios(res)
    machine["loadavg_end"] = os.getloadavg()
    machine["cpu_capacity_end"] = cpu_capacity(build_dir)
    machine["elapsed_s"] = round(time.monotonic() - t_start, 1)
    out_dir = Path(args.out)
    if not args.no_plots:
        made = plots(res, workers, out_dir, Path(args.img))
        for f in made:
            log(f"wrote {f.relative_to(REPO) if f.is_relative_to(REPO) else f}")
    write_files(res, machine, config, out_dir)

    print()
    print(f"weft benchmarks ({'quick: 1 rep at 1/100 size, timings meaningless' if args.quick else 'median of reps'})"
          f" on {machine['cpu_model']}, {machine['cores']} cores, kernel {machine['kernel']}, "
          f"{machine['compiler']}, libuv {machine['libuv']}, ck {machine['ck']}, Python {machine['python']}, "
          f"uvloop {machine['uvloop']}, {machine['go']}, tokio {machine['tokio']} ({machine['rustc']}); "
          f"load average at start {' '.join(f'{x:.2f}' for x in machine['loadavg_start'])}, "
          f"at end {' '.join(f'{x:.2f}' for x in machine['loadavg_end'])}; {capacity_text(machine)}")
    print("vs tokio / vs go: how many times better the weft row is than Tokio / Go at the same worker count; "
          "vs asyncio / vs uvloop: than the single-threaded Python peer (>1 = better; peer/value for times, "
          "value/peer for req/s). Every figure is from this run.")
    print()
    print(table(res))
    print(footer(res, workers))
    if res.notes:
        print("\nnotes:")
        for n in res.notes:
            print(f"  - {n}")
    print(f"\nwrote {out_dir}/results.csv, results.json ({machine['elapsed_s']} s in all)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
