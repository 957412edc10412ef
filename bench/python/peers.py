#!/usr/bin/env python3
"""Python peers (CPython asyncio, uvloop) for the benchmarks of bench/DEFINITIONS.md.

usage: /usr/bin/python3 bench/python/peers.py --peer asyncio|uvloop [--quick]
           [--reps R] [--warmup W] [--only name,name] [--echo-client PATH]

Prints one line per benchmark on stdout, `name peer 1 median unit`, and every
measured repetition on stderr, `# name peer 1 reps: v1 v2 ...`.

  --quick        every benchmark once (W=0, R=1) at 1/100 of the sizes, tcp_echo for 1 s
  --only         comma-separated benchmark names (default: all); `timers` prints
                 timers_total and timers_overhead
  --echo-client  the C load client for tcp_echo (default: <repo>/build/bench/client/echo_client;
                 build it with `cc -std=c17 -O2 -o PATH bench/client/echo_client.c`)

rss_per_task and idle_cpu always run together, in a fresh child process of this script,
once (repeating them in one process would no longer measure a fresh one). tcp_echo runs
once per server variant (streams, protocol): each run starts this script as a server
(`--serve streams|protocol`, prints `PORT n`) and drives it with the C client for 5 s.
"""
import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

now = time.perf_counter_ns
REPO = Path(__file__).resolve().parents[2]


def check(ok, what):
    if not ok:
        raise AssertionError(f"check failed: {what}")


# 1. spawn_many: N tasks returning 1, awaited in spawn order.
async def one():
    return 1


async def spawn_many(n):
    t0 = now()
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    total = 0
    for t in tasks:
        total += await t
    dt = now() - t0
    check(total == n, f"spawn_many sum {total} != {n}")
    return {"spawn_many": dt / n}


# 2. yield_many: T tasks yielding Y times each.
async def yielder(y):
    for _ in range(y):
        await asyncio.sleep(0)
    return y


async def yield_many(t, y):
    t0 = now()
    tasks = [asyncio.create_task(yielder(y)) for _ in range(t)]
    total = 0
    for task in tasks:
        total += await task
    dt = now() - t0
    check(total == t * y, "yield_many sum")
    return {"yield_many": dt / (t * y)}


# 3. ping_pong: two Queue(maxsize=1).
async def ping(q1, q2, r):
    for i in range(r):
        await q1.put(i)
        v = await q2.get()
        check(v == i, f"ping_pong got {v}, expected {i}")


async def pong(q1, q2, r):
    for _ in range(r):
        await q2.put(await q1.get())


async def ping_pong(r):
    q1, q2 = asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)
    t0 = now()
    pi = asyncio.create_task(ping(q1, q2, r))
    po = asyncio.create_task(pong(q1, q2, r))
    await pi
    await po
    return {"ping_pong": (now() - t0) / r}


# 4. chained_spawn: each task spawns the next without awaiting it; the last completes a future.
async def chain(fut, k):
    if k == 0:
        fut.set_result(None)
    else:
        asyncio.create_task(chain(fut, k - 1))


async def chained_spawn(d):
    fut = asyncio.get_running_loop().create_future()
    t0 = now()
    asyncio.create_task(chain(fut, d - 1))
    await fut
    return {"chained_spawn": (now() - t0) / d}


# 5. timers: N sleeps with LCG delays of 0..50 ms.
def lcg_delays(n):
    x, out = 12345, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append((x >> 16) % 51)
    return out


FULL_DELAYS = lcg_delays(100_000)
check(FULL_DELAYS[:8] == [23, 18, 9, 30, 21, 31, 30, 10], "timers first eight delays")
check(sum(FULL_DELAYS) == 2_497_483, "timers delay sum")
check(FULL_DELAYS.count(0) == 1_981 and FULL_DELAYS.count(50) == 1_892, "timers 0/50 counts")


async def sleeper(d):
    await asyncio.sleep(d / 1000)
    return d


async def timers(n):
    delays = FULL_DELAYS[:n]
    t0 = now()
    tasks = [asyncio.create_task(sleeper(d)) for d in delays]
    total = 0
    for t in tasks:
        total += await t
    ms = (now() - t0) / 1e6
    check(total == sum(delays), "timers sum")
    return {"timers_total": ms, "timers_overhead": ms - 50}


# 6. cross_thread_*: a plain thread submits small(i) with run_coroutine_threadsafe.
async def small(i):
    return i + 1


async def from_thread(body, n):
    """Runs body(loop, n) -> (sum, elapsed_ns) in a new thread; the root only awaits a future."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def run():
        try:
            loop.call_soon_threadsafe(done.set_result, body(loop, n))
        except BaseException as e:
            loop.call_soon_threadsafe(done.set_exception, e)

    th = threading.Thread(target=run)
    th.start()
    total, dt = await done
    th.join()
    check(total == n * (n + 1) // 2, "cross_thread sum")
    return dt / n


def latency_body(loop, n):
    t0 = now()
    total = 0
    for i in range(n):
        total += asyncio.run_coroutine_threadsafe(small(i), loop).result()
    return total, now() - t0


def throughput_body(loop, n):
    t0 = now()
    futs = [asyncio.run_coroutine_threadsafe(small(i), loop) for i in range(n)]
    total = sum(f.result() for f in futs)
    return total, now() - t0


async def cross_thread_latency(n):
    return {"cross_thread_latency": await from_thread(latency_body, n)}


async def cross_thread_throughput(n):
    return {"cross_thread_throughput": await from_thread(throughput_body, n)}


# 7. to_thread: K workers, each awaiting asyncio.to_thread(f, i) for its share of 0..N-1.
def f(i):
    return i + 1


async def to_thread_worker(w, n, k):
    s = 0
    for i in range(w, n, k):
        s += await asyncio.to_thread(f, i)
    return s


async def to_thread(n, k):
    t0 = now()
    tasks = [asyncio.create_task(to_thread_worker(w, n, k)) for w in range(k)]
    total = 0
    for t in tasks:
        total += await t
    dt = now() - t0
    check(total == n * (n + 1) // 2, "to_thread sum")
    return {"to_thread": dt / n}


# 8. fib_tasks: fib(n-1) spawned, fib(n-2) awaited inline.
async def fib(n):
    if n < 2:
        return n
    t = asyncio.create_task(fib(n - 1))
    b = await fib(n - 2)
    return await t + b


async def fib_tasks(n):
    t0 = now()
    r = await fib(n)
    ms = (now() - t0) / 1e6
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    check(r == a, f"fib({n}) = {r}, expected {a}")
    return {"fib_tasks": ms}


# 10./11. rss_per_task then idle_cpu, in a fresh process.
def rss_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def rss_then_idle(n, sleep_s, idle_s):
    started = 0

    async def parked():
        nonlocal started
        started += 1
        await asyncio.sleep(sleep_s)

    gc.collect()
    before = rss_bytes()
    tasks = [asyncio.create_task(parked()) for _ in range(n)]
    while started < n:
        await asyncio.sleep(0)
    after = rss_bytes()
    for t in tasks:
        await t
    check(started == n, "rss_per_task count")
    del tasks
    gc.collect()
    c0 = time.process_time()
    await asyncio.sleep(idle_s)
    cpu_ms = (time.process_time() - c0) * 1000 / idle_s  # CPU ms per second idled
    return {"rss_per_task": (after - before) / n, "idle_cpu": cpu_ms}


# name: (function, full sizes, quick sizes); run in this order, in one event loop.
BENCHES = {
    "spawn_many": (spawn_many, dict(n=100_000), dict(n=1_000)),
    "yield_many": (yield_many, dict(t=1_000, y=1_000), dict(t=100, y=100)),
    "ping_pong": (ping_pong, dict(r=100_000), dict(r=1_000)),
    "chained_spawn": (chained_spawn, dict(d=100_000), dict(d=1_000)),
    "timers": (timers, dict(n=100_000), dict(n=1_000)),
    "cross_thread_latency": (cross_thread_latency, dict(n=20_000), dict(n=200)),
    "cross_thread_throughput": (cross_thread_throughput, dict(n=100_000), dict(n=1_000)),
    "to_thread": (to_thread, dict(n=20_000, k=64), dict(n=200, k=64)),
    "fib_tasks": (fib_tasks, dict(n=25), dict(n=15)),
}
FRESH = dict(full=dict(n=100_000, sleep_s=3, idle_s=1), quick=dict(n=1_000, sleep_s=0.1, idle_s=0.2))
ECHO = dict(full=dict(c=64, s=64, d=5), quick=dict(c=64, s=64, d=1))
UNITS = {
    "spawn_many": "ns/task", "yield_many": "ns/yield", "ping_pong": "ns/roundtrip",
    "chained_spawn": "ns/spawn", "timers_total": "ms", "timers_overhead": "ms",
    "cross_thread_latency": "ns/roundtrip", "cross_thread_throughput": "ns/item",
    "to_thread": "ns/call", "fib_tasks": "ms", "rss_per_task": "bytes/task",
    "idle_cpu": "cpu_ms", "tcp_echo": "req/s",
}
ALIASES = {"timers_total": "timers", "timers_overhead": "timers", "idle_cpu": "rss_per_task"}
ALL = ["rss_per_task", *BENCHES, "tcp_echo"]


def fmt(v):
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def report(name, peer, values):
    print(f"# {name} {peer} 1 reps: {' '.join(map(fmt, values))}", file=sys.stderr, flush=True)
    print(f"{name} {peer} 1 {fmt(statistics.median(values))} {UNITS[name]}", flush=True)


async def run_benches(names, peer, warmup, reps, quick):
    for name in names:
        fn, full, small_sizes = BENCHES[name]
        results = {}
        for i in range(warmup + reps):
            gc.collect()
            res = await fn(**(small_sizes if quick else full))
            if i >= warmup:
                for k, v in res.items():
                    results.setdefault(k, []).append(v)
        for k, values in results.items():
            report(k, peer, values)


# 9. tcp_echo server (run as `--serve streams|protocol`) and driver.
async def serve(variant, lifetime=25):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    open_conns = 0

    def opened():
        nonlocal open_conns
        open_conns += 1

    def closed():
        nonlocal open_conns
        open_conns -= 1
        if open_conns == 0 and not stop.done():
            stop.set_result(None)

    async def handle(reader, writer):
        opened()
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            closed()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            opened()

        def data_received(self, data):
            self.transport.write(data)

        def connection_lost(self, exc):
            closed()

    if variant == "streams":
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
    else:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await asyncio.wait_for(stop, lifetime)
    except TimeoutError:
        print(f"echo server: hard stop after {lifetime} s", file=sys.stderr)
    server.close()


def tcp_echo(peer, client, quick):
    size = ECHO["quick" if quick else "full"]
    for variant, name in (("streams", peer), ("protocol", f"{peer}-protocol")):
        cmd = [sys.executable, __file__, "--peer", peer, "--serve", variant]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as srv:
            line = srv.stdout.readline().split()
            check(len(line) == 2 and line[0] == "PORT", f"server said {line}")
            out = subprocess.run(
                [client, "127.0.0.1", line[1], "-c", str(size["c"]), "-s", str(size["s"]),
                 "-d", str(size["d"])], capture_output=True, text=True, timeout=size["d"] + 30)
            check(out.returncode == 0, f"echo client failed ({out.returncode}): {out.stderr.strip()}")
            srv.wait(timeout=10)
            check(srv.returncode == 0, f"echo server exited with {srv.returncode}")
        fields = out.stdout.split()  # roundtrips N elapsed_s X req_per_s Y
        check(fields[0::2] == ["roundtrips", "elapsed_s", "req_per_s"], f"client said {out.stdout!r}")
        report("tcp_echo", name, [int(fields[1]) / float(fields[3])])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=["asyncio", "uvloop"], required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--only", default=",".join(ALL))
    ap.add_argument("--echo-client", default=str(REPO / "build/bench/client/echo_client"))
    ap.add_argument("--serve", choices=["streams", "protocol"], help=argparse.SUPPRESS)
    ap.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.warmup, args.reps = 0, 1
    if args.peer == "uvloop":
        import uvloop
        uvloop.install()

    if args.serve:
        return asyncio.run(serve(args.serve))
    if args.fresh:
        res = asyncio.run(rss_then_idle(**FRESH["quick" if args.quick else "full"]))
        for k, v in res.items():
            report(k, args.peer, [v])
        return

    only = {ALIASES.get(n, n) for n in args.only.split(",") if n}
    unknown = only - set(ALL)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    if "tcp_echo" in only and not os.access(args.echo_client, os.X_OK):
        ap.error(f"no echo client at {args.echo_client}; build it with "
                 f"cc -std=c17 -O2 -o {args.echo_client} {REPO / 'bench/client/echo_client.c'}")
    if "rss_per_task" in only:
        cmd = [sys.executable, __file__, "--peer", args.peer, "--fresh"] + ["--quick"] * args.quick
        subprocess.run(cmd, check=True)
    names = [n for n in BENCHES if n in only]
    if names:
        asyncio.run(run_benches(names, args.peer, args.warmup, args.reps, args.quick))
    if "tcp_echo" in only:
        tcp_echo(args.peer, args.echo_client, args.quick)


if __name__ == "__main__":
    sys.exit(main())
