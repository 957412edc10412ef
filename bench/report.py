#!/usr/bin/env python3
"""Run every benchmark of ../shared/bench/DEFINITIONS.md for weft, asyncio and uvloop, side by side.

usage: python3 bench/report.py [--quick] [--workers 1,2] [--reps R] [--peer-reps R]
                               [--only a,b] [--no-build] [--no-plots] [--build-dir DIR] [--out DIR]

`make bench` runs it (after scripts/deps.sh bench); `make bench-quick` runs it with --quick.

 1. builds weft in Release mode (cmake -DCMAKE_BUILD_TYPE=Release into build/release) and the
    tcp_echo load client (bench/client/echo_client.c);
 2. runs bench/weft_bench at every worker count 1..nproc with stealable tasks (runtime `weft`),
    and spawn_many + yield_many with loop-affine tasks (`weft-affine`), as DEFINITIONS asks;
 3. runs the Python peers (bench/python/peers.py) for asyncio and uvloop with /usr/bin/python3;
 4. runs tcp_echo for weft through bench/run_tcp_echo.sh when that script exists;
 5. prints the table (benchmark, runtime, workers, median, spread = min-max over the measured
    repetitions, and how many times better weft is than asyncio and than uvloop), writes
    bench/results/results.csv and results.json with the machine beside them, and draws the
    scalability and comparison plots (gnuplot) into docs/img/.

Repetitions: to keep the whole run under 5 minutes on a 2-core machine, report.py asks for W=1
warm-up + R=3 measured repetitions of weft (weft_bench's own default is 5) and W=1 + R=2 of the
Python peers (peers.py's default is 3); the sizes are DEFINITIONS' own. --reps / --peer-reps
restore the full counts. rss_per_task and idle_cpu run once, in a fresh process, for every runtime.

--quick runs each benchmark once at 1/100 of the sizes (weft_bench --quick, peers.py --quick):
a smoke run, no meaningful timing.

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
PLOT_DIR = REPO / "bench/plot"

# Output order of the table: DEFINITIONS rows.
BENCH_ORDER = ["spawn_many", "yield_many", "ping_pong", "chained_spawn", "timers_total", "timers_overhead",
               "cross_thread_latency", "cross_thread_throughput", "to_thread", "fib_tasks", "tcp_echo",
               "rss_per_task", "idle_cpu"]
HIGHER_IS_BETTER = {"tcp_echo"}
AFFINE_BENCHES = "spawn_many,yield_many"   # DEFINITIONS: "also report spawn_many and yield_many with loop-affine tasks"
RUNTIME_ORDER = ["weft", "weft-affine", "weft-handoff", "asyncio", "uvloop", "asyncio-protocol", "uvloop-protocol"]

# The anchor figures of ../shared/bench/DEFINITIONS.md ("What the peers measure on this kind of machine",
# 2 vCPU shared VM, medians of quiet runs, 2026-11-22): Go and Tokio at 1 and 2 workers, for reference only
# (not measured here; compare only figures taken in the same run).
ANCHORS = {
    "spawn_many": (1106, 478, 400, 287), "yield_many": (100, 104, 75, 46), "ping_pong": (349, 364, 302, 350),
    "chained_spawn": (166, 213, 150, 146), "timers_overhead": (224, 182, 156, 126),
    "cross_thread_latency": (26206, 39388, 51138, 19624), "cross_thread_throughput": (5305, 719, 954, 1060),
    "to_thread": (None, None, 5850, 5737), "fib_tasks": (75, 53, 37.5, 57), "rss_per_task": (2701, 2704, 1416, 1417),
    "idle_cpu": (0.2, 0.2, 0.2, 0.3), "tcp_echo": (108930, 87360, 141220, 111187),
}

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
        "weft_commit": sh_out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "weft_tree_dirty": bool(sh_out(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "loadavg_start": os.getloadavg(),
    }


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
        r = run(["cc", "-std=c17", "-O2", "-Wall", "-Wextra", "-o", client, src], timeout=300)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            sys.exit("building the echo client failed")
    return client


# ---- running and parsing -------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.rows = {}    # (bench, runtime, workers) -> dict
        self.stats = {}   # (bench, runtime, workers) -> {counter: value}
        self.fib = {}     # (runtime, workers) -> {steals: [...], stolen: [...], started: [...]}
        self.notes = []
        self.logs = {}

    def parse(self, tag, out, err):
        self.logs[tag] = {"stdout": out, "stderr": err}
        reps = {}
        for ln in err.splitlines():
            m = REPS.match(ln)
            if m:
                reps[(m.group(1), m.group(2), int(m.group(3)))] = [float(x) for x in m.group(4).split()]
                continue
            m = STATS.match(ln)
            if m:
                self.stats[(m.group(1), m.group(2), int(m.group(3)))] = {
                    k: int(v) for k, v in (kv.split("=") for kv in m.group(4).split())}
                continue
            m = STEALS.match(ln)
            if m:
                self.fib.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = [
                    int(x) for x in m.group(4).split()]
        n = 0
        for ln in out.splitlines():
            m = LINE.match(ln.strip())
            if not m:
                continue
            name, rt, w, val, unit = m.group(1), m.group(2), int(m.group(3)), float(m.group(4)), m.group(5)
            key = (name, rt, w)
            self.rows[key] = {"benchmark": name, "runtime": rt, "workers": w, "median": val, "unit": unit,
                              "reps": reps.get(key, [val])}
            n += 1
        return n


def run_step(res, tag, cmd, timeout, env=None):
    log(f"{tag}: {' '.join(map(str, cmd))}")
    t0 = time.monotonic()
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
    if r.returncode != 0:
        res.notes.append(f"{tag}: exit status {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
        log(f"{tag}: FAILED (exit {r.returncode}) after {dt:.1f} s\n{r.stderr[-3000:]}")
        return False
    log(f"{tag}: {n} lines in {dt:.1f} s")
    return True


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
    for (name, rt, w), row in res.rows.items():
        for peer in ("asyncio", "uvloop"):
            p = res.rows.get((name, peer, 1))
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
    head = ["benchmark", "runtime", "workers", "median", "unit", "spread (min-max)", "vs asyncio", "vs uvloop"]
    lines = []
    for r in sorted_rows(res):
        reps = r["reps"]
        spread = f"{num(min(reps))}-{num(max(reps))}" if len(reps) > 1 else "(1 rep)"
        lines.append([r["benchmark"], r["runtime"], str(r["workers"]), num(r["median"]), r["unit"], spread,
                      ratio(r.get("x_asyncio")), ratio(r.get("x_uvloop"))])
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]
    right = {2, 3, 5, 6, 7}

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
    """weft's speed-up: throughput at w workers / throughput at 1 worker (fib_tasks: ms(w1)/ms(w))."""
    out = {}
    for (name, rt, w), row in res.rows.items():
        if rt not in ("weft", "weft-affine") or name in ("rss_per_task", "idle_cpu", "timers_overhead"):
            continue
        base = res.rows.get((name, rt, 1))
        if not base:
            continue
        s = better(name, row["median"], base["median"])
        out.setdefault(f"{name} {rt}", {})[w] = s
    return out


def footer(res, workers):
    lines = ["", "weft speed-up over 1 worker (throughput(w) / throughput(1); fib_tasks: ms(w1)/ms(w)):"]
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
    """The summary table of docs/benchmarks.md: one row per benchmark, medians side by side."""
    wmax = max(workers)
    cols = [("asyncio", 1), ("uvloop", 1)] + [("weft", w) for w in workers] + \
           [("weft-affine", w) for w in workers if any((n, "weft-affine", w) in res.rows for n in BENCH_ORDER)]
    head = ["benchmark", "unit"] + [f"{rt} w{w}" if rt.startswith("weft") else rt for rt, w in cols] + \
           ["weft w1 vs asyncio", "weft w1 vs uvloop", f"weft w1→w{wmax} speed-up", "Go w1 / w2 (anchor)",
            "Tokio w1 / w2 (anchor)"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in BENCH_ORDER:
        rows = {(rt, w): res.rows.get((n, rt, w)) for rt, w in cols}
        if not any(rows.values()):
            continue
        unit = next(r["unit"] for r in rows.values() if r)
        cells = [f"`{n}`", unit]
        for k in cols:
            r = rows[k]
            cells.append(num(r["median"]) if r else "")
        one, top = res.rows.get((n, "weft", 1)), res.rows.get((n, "weft", wmax))
        cells += [ratio(one.get("x_asyncio")) if one else "", ratio(one.get("x_uvloop")) if one else ""]
        sp = better(n, top["median"], one["median"]) if one and top and n not in ("rss_per_task", "idle_cpu") else None
        cells.append(ratio(sp) if sp else "")
        a = ANCHORS.get(n)

        def pair(x, y):
            return "n/a" if x is None else f"{num(x)} / {num(y)}"
        cells += [pair(a[0], a[1]), pair(a[2], a[3])] if a else ["", ""]
        out.append("| " + " | ".join(cells) + " |")
    extra = []
    for rt, label in (("asyncio-protocol", "asyncio protocol server"), ("uvloop-protocol", "uvloop protocol server"),
                      ("weft-handoff", "weft server in hand-off mode (one acceptor)")):
        vals = [f"w{w} {num(res.rows[('tcp_echo', rt, w)]['median'])}" for w in sorted(
            {k[2] for k in res.rows if k[:2] == ("tcp_echo", rt)})]
        if vals:
            extra.append(f"`tcp_echo` with the {label}: {', '.join(vals)} req/s.")
    if extra:
        out.append("\n" + "\n".join(f"- {e}" for e in extra))
    return "\n".join(out) + "\n"


def write_files(res, machine, config, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = sorted_rows(res)
    with open(out_dir / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["benchmark", "runtime", "workers", "median", "unit", "min", "max", "reps", "x_asyncio",
                    "x_uvloop"])
        for r in rows:
            w.writerow([r["benchmark"], r["runtime"], r["workers"], r["median"], r["unit"], min(r["reps"]),
                        max(r["reps"]), " ".join(f"{x:g}" for x in r["reps"]),
                        "" if r.get("x_asyncio") is None else f"{r['x_asyncio']:.4g}",
                        "" if r.get("x_uvloop") is None else f"{r['x_uvloop']:.4g}"])
        fh.write("# machine: " + json.dumps(machine) + "\n")
    doc = {
        "machine": machine,
        "config": config,
        "results": rows,
        "scalability": {k: {str(w): v for w, v in d.items()} for k, d in scalability(res, config["workers"]).items()},
        "runtime_counters": [{"benchmark": k[0], "runtime": k[1], "workers": k[2], **v}
                             for k, v in sorted(res.stats.items())],
        "fib_tasks_steals": [{"runtime": k[0], "workers": k[1], **v} for k, v in sorted(res.fib.items())],
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

    # 1. scalability: one block per weft benchmark, `workers weft weft-affine` (ops/s)
    names = [n for n in BENCH_ORDER if n not in ("rss_per_task", "idle_cpu", "timers_overhead")
             and any((n, "weft", w) in res.rows for w in workers)]
    with open(data / "scalability.dat", "w") as fh:
        for n in names:
            for w in workers:
                vals = []
                for rt in ("weft", "weft-affine"):
                    row = res.rows.get((n, rt, w))
                    t = throughput(n, row) if row else None
                    vals.append(f"{t:.6g}" if t else "NaN")
                fh.write(f"{w} {' '.join(vals)}\n")
            fh.write("\n\n")

    # 2. comparison bars: how many times faster than asyncio (log scale), per benchmark
    wmax = max(workers)
    cols = [("asyncio", 1), ("uvloop", 1), ("weft", 1)] + ([("weft", wmax)] if wmax > 1 else [])
    bar_names = [n for n in BENCH_ORDER if n not in ("timers_total", "idle_cpu", "rss_per_task")
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

    made = []
    jobs = [("scalability.gp", data / "scalability.dat", "scalability", len(names))]
    if bar_names:
        jobs.append(("bars.gp", data / "bars.dat", "weft_vs_asyncio_uvloop", len(cols)))
    for script, dat, stem, count in jobs:
        for term, ext in ((png, "png"), ("svg", "svg")):
            outf = img_dir / f"{stem}.{ext}"
            cmd = [gp, "-e", f"datafile='{dat}'; outfile='{outf}'; term='{term}'; n={count}; "
                             f"wmax={wmax}; names='{' '.join(names)}'; title_machine='{machine_title(res)}'",
                   PLOT_DIR / script]
            r = run(cmd, timeout=60)
            if r.returncode != 0 or not outf.exists():
                res.notes.append(f"gnuplot {script} ({term}) failed: {r.stderr.strip()[-300:]}")
                log(res.notes[-1])
            else:
                made.append(outf)
    return made


_MACHINE = {}


def machine_title(res):
    m = _MACHINE
    return f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores".replace("'", "")


# ---- main -------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="each benchmark once at small size")
    ap.add_argument("--workers", help="comma-separated weft worker counts (default 1..nproc)")
    ap.add_argument("--reps", type=int, default=3,
                    help="weft measured repetitions (default 3 here, weft_bench's own default is 5)")
    ap.add_argument("--warmup", type=int, help="weft warm-up repetitions (default 1)")
    ap.add_argument("--peer-reps", type=int, default=2,
                    help="asyncio/uvloop measured repetitions (default 2 here, peers.py's own default is 3)")
    ap.add_argument("--only", help="comma-separated benchmark names for weft and the peers")
    ap.add_argument("--no-peers", action="store_true", help="weft only")
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
        _MACHINE.update(doc["machine"])
        workers = doc["config"]["workers"]
        for f in plots(res, workers, Path(args.out), Path(args.img)):
            log(f"wrote {f}")
        (Path(args.out) / "results.md").write_text(markdown(res, workers))
        print(table(res))
        print(footer(res, workers))
        return 0

    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = [int(x) for x in args.workers.split(",")] if args.workers else list(range(1, ncpu + 1))
    peer_python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    build_dir = Path(args.build_dir)
    if not args.no_build:
        build(build_dir, ncpu)
    client = build_client(build_dir)
    weft_bench = build_dir / "bench/weft_bench"
    if not weft_bench.exists():
        sys.exit(f"no {weft_bench}: build first (drop --no-build)")

    machine = machine_info(build_dir, peer_python)
    _MACHINE.update(machine)
    config = {"quick": args.quick, "workers": workers, "weft_reps": 1 if args.quick else args.reps,
              "weft_warmup": 0 if args.quick else (1 if args.warmup is None else args.warmup),
              "peer_reps": 1 if args.quick else args.peer_reps, "peer_warmup": 0 if args.quick else 1,
              "only": args.only}
    res = Results()
    ok = True

    common = ["--quick"] if args.quick else ["--reps", str(args.reps)]
    if args.warmup is not None and not args.quick:
        common += ["--warmup", str(args.warmup)]
    only = ["--only", args.only] if args.only else []
    tmo = 120 if args.quick else 300

    # weft, every worker count: stealable (all), then loop-affine (spawn_many, yield_many)
    for w in workers:
        ok &= run_step(res, f"weft-w{w}", [weft_bench, "--workers", w, *common, *only], tmo)
    aff = AFFINE_BENCHES
    if args.only:
        aff = ",".join(n for n in args.only.split(",") if n in AFFINE_BENCHES.split(","))
    if aff:
        for w in workers:
            ok &= run_step(res, f"weft-affine-w{w}",
                           [weft_bench, "--workers", w, "--affine", "--only", aff, *common], tmo)

    # the peers
    if not args.no_peers:
        for peer in ("asyncio", "uvloop"):
            if peer == "uvloop" and not machine.get("uvloop"):
                res.notes.append("uvloop not importable by /usr/bin/python3: skipped "
                                 "(scripts/deps.sh bench installs python3-uvloop)")
                log(res.notes[-1])
                continue
            cmd = [peer_python, PEERS, "--peer", peer, "--echo-client", client, *(["--quick"] if args.quick else [])]
            if not args.quick:
                cmd += ["--reps", str(args.peer_reps)]
            if args.only:
                cmd += ["--only", args.only]
            ok &= run_step(res, peer, cmd, 600)

    # tcp_echo for weft
    if not args.only or "tcp_echo" in args.only.split(","):
        if TCP_ECHO_SCRIPT.exists():
            # bench/run_tcp_echo.sh BUILD_DIR WORKERS...: `tcp_echo weft W v req/s` (SO_REUSEPORT
            # listener per loop) and `tcp_echo weft-handoff W v req/s` (one acceptor, hand-off)
            env = dict(os.environ, ECHO_SECS="1" if args.quick else "5", REPS="1")
            secs = 1 if args.quick else 5
            cmd = ["sh", TCP_ECHO_SCRIPT, build_dir, *workers]
            ok &= run_step(res, "tcp_echo-weft", cmd, 2 * len(workers) * (secs + 15) + 30, env=env)
        else:
            res.notes.append("tcp_echo for weft skipped: bench/run_tcp_echo.sh does not exist yet")
            log(res.notes[-1])

    add_ratios(res)
    machine["loadavg_end"] = os.getloadavg()
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
          f"uvloop {machine['uvloop']}")
    print("vs asyncio / vs uvloop: how many times better weft (or the row's runtime) is than the peer "
          "(>1 = better; peer/value for times, value/peer for req/s)")
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
