//! Tokio peer for the benchmarks of bench/DEFINITIONS.md (weft's comparison programs).
//!
//!     tokio_bench --workers N [--quick] [--reps R] [--warmup W] [--only a,b]
//!     tokio_bench --workers N --serve          (tcp_echo server: prints `PORT n`)
//!
//! stdout: one line per benchmark, `name tokio N median unit`; stderr: every measured
//! repetition, `# name tokio N reps: v1 v2 ...`. N is the multi-thread runtime's
//! `worker_threads` (also for N = 1). Every body runs in a task spawned onto the runtime
//! (`block_on(spawn(body))`), so it runs on a worker thread. rss_per_task and idle_cpu run
//! first, once, in a fresh copy of this process (re-executed with --fresh). Every sum is
//! checked; a failed check exits with status 1.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, Notify};

const PEER: &str = "tokio";

struct Opts {
    workers: usize,
    quick: bool,
    reps: usize,
    warmup: usize,
    only: Option<Vec<String>>,
    fresh: bool,
    serve: bool,
}

fn check(ok: bool, what: &str) {
    if !ok {
        eprintln!("check failed: {what}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: tokio_bench --workers N [--quick] [--reps R] [--warmup W] [--only a,b] [--serve]");
    std::process::exit(2);
}

fn parse_args() -> Opts {
    let mut o = Opts { workers: 1, quick: false, reps: 5, warmup: 1, only: None, fresh: false, serve: false };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].trim_start_matches('-');
        let next = |i: &mut usize| -> String {
            *i += 1;
            args.get(*i).cloned().unwrap_or_else(|| usage())
        };
        match a {
            "workers" => o.workers = next(&mut i).parse().unwrap_or_else(|_| usage()),
            "reps" => o.reps = next(&mut i).parse().unwrap_or_else(|_| usage()),
            "warmup" => o.warmup = next(&mut i).parse().unwrap_or_else(|_| usage()),
            "only" => o.only = Some(next(&mut i).split(',').map(|s| s.to_string()).collect()),
            "quick" => o.quick = true,
            "fresh" => o.fresh = true,
            "serve" => o.serve = true,
            _ => usage(),
        }
        i += 1;
    }
    if o.workers < 1 || o.reps < 1 {
        usage();
    }
    if o.quick {
        o.warmup = 0;
        o.reps = 1;
    }
    o
}

/// whole numbers from 100 up, else 3 significant digits (the format of every peer)
fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v == 0.0 {
        "0".to_string()
    } else {
        let digits = 2 - v.abs().log10().floor() as i32;
        let s = format!("{:.*}", digits.max(0) as usize, v);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn report(workers: usize, name: &str, unit: &str, v: &[f64]) {
    let reps: Vec<String> = v.iter().map(|x| fmt(*x)).collect();
    eprintln!("# {name} {PEER} {workers} reps: {}", reps.join(" "));
    println!("{name} {PEER} {workers} {} {unit}", fmt(median(v)));
    std::io::stdout().flush().ok();
}

fn per_op(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// Runs `body` in a task spawned onto the runtime and returns its result.
fn inside<F, T>(rt: &Runtime, body: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    rt.block_on(async move { tokio::spawn(body).await.expect("benchmark task panicked") })
}

// 1. spawn_many: n tasks returning 1, awaited in spawn order.
async fn spawn_many(n: usize) -> Vec<f64> {
    let t0 = Instant::now();
    let mut hs = Vec::with_capacity(n);
    for _ in 0..n {
        hs.push(tokio::spawn(async { 1usize }));
    }
    let mut sum = 0;
    for h in hs {
        sum += h.await.unwrap();
    }
    let d = t0.elapsed();
    check(sum == n, "spawn_many sum");
    vec![per_op(d, n)]
}

// 2. yield_many: t tasks, each yielding y times.
async fn yield_many(t: usize, y: usize) -> Vec<f64> {
    let t0 = Instant::now();
    let mut hs = Vec::with_capacity(t);
    for _ in 0..t {
        hs.push(tokio::spawn(async move {
            let mut k = 0;
            while k < y {
                tokio::task::yield_now().await;
                k += 1;
            }
            k
        }));
    }
    let mut sum = 0;
    for h in hs {
        sum += h.await.unwrap();
    }
    let d = t0.elapsed();
    check(sum == t * y, "yield_many sum");
    vec![per_op(d, t * y)]
}

// 3. ping_pong over two bounded channels of capacity 1.
async fn ping_pong(r: usize) -> Vec<f64> {
    let (tx1, mut rx1) = mpsc::channel::<usize>(1);
    let (tx2, mut rx2) = mpsc::channel::<usize>(1);
    let t0 = Instant::now();
    let ping = tokio::spawn(async move {
        let mut ok = true;
        for i in 0..r {
            tx1.send(i).await.unwrap();
            ok &= rx2.recv().await == Some(i);
        }
        ok
    });
    let pong = tokio::spawn(async move {
        for _ in 0..r {
            let v = rx1.recv().await.unwrap();
            tx2.send(v).await.unwrap();
        }
    });
    let ok = ping.await.unwrap();
    pong.await.unwrap();
    let d = t0.elapsed();
    check(ok, "ping_pong values");
    vec![per_op(d, r)]
}

// 4. chained_spawn: each task spawns the next and returns; the last one fires the oneshot.
fn chain(k: usize, done: oneshot::Sender<()>) {
    if k == 0 {
        let _ = done.send(());
    } else {
        tokio::spawn(async move { chain(k - 1, done) });
    }
}

async fn chained_spawn(d: usize) -> Vec<f64> {
    let (tx, rx) = oneshot::channel();
    let t0 = Instant::now();
    tokio::spawn(async move { chain(d - 1, tx) });
    rx.await.unwrap();
    vec![per_op(t0.elapsed(), d)]
}

// 5. timers: the LCG delay table, task i sleeps delay_i ms.
fn delays(n: usize) -> Vec<u64> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            ((x >> 16) % 51) as u64
        })
        .collect()
}

async fn timers(ds: Arc<Vec<u64>>) -> Vec<f64> {
    let want: u64 = ds.iter().sum();
    let t0 = Instant::now();
    let mut hs = Vec::with_capacity(ds.len());
    for &d in ds.iter() {
        hs.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(d)).await;
            d
        }));
    }
    let mut sum = 0;
    for h in hs {
        sum += h.await.unwrap();
    }
    let el = ms(t0.elapsed());
    check(sum == want, "timers sum");
    vec![el, el - 50.0]
}

// 6. cross_thread_*: a std::thread submits tasks through the runtime's handle and blocks on
// a oneshot per result; the main thread joins it outside block_on (the workers are idle).
fn cross_thread(rt: &Runtime, throughput: bool, n: usize) -> f64 {
    let handle = rt.handle().clone();
    let th = std::thread::spawn(move || {
        let submit = |i: usize| {
            let (tx, rx) = oneshot::channel();
            handle.spawn(async move {
                let _ = tx.send(i + 1);
            });
            rx
        };
        let mut sum = 0;
        let t0 = Instant::now();
        if throughput {
            let rxs: Vec<_> = (0..n).map(submit).collect();
            for rx in rxs {
                sum += rx.blocking_recv().unwrap();
            }
        } else {
            for i in 0..n {
                sum += submit(i).blocking_recv().unwrap();
            }
        }
        (sum, t0.elapsed())
    });
    let (sum, d) = th.join().unwrap();
    check(sum == n * (n + 1) / 2, "cross_thread sum");
    per_op(d, n)
}

// 7. to_thread: k tasks, each awaiting spawn_blocking(f, i) for its share of 0..n.
fn plus1(i: usize) -> usize {
    i + 1
}

async fn to_thread(n: usize, k: usize) -> Vec<f64> {
    let t0 = Instant::now();
    let mut hs = Vec::with_capacity(k);
    for w in 0..k {
        hs.push(tokio::spawn(async move {
            let mut s = 0;
            let mut i = w;
            while i < n {
                s += tokio::task::spawn_blocking(move || plus1(i)).await.unwrap();
                i += k;
            }
            s
        }));
    }
    let mut sum = 0;
    for h in hs {
        sum += h.await.unwrap();
    }
    let d = t0.elapsed();
    check(sum == n * (n + 1) / 2, "to_thread sum");
    vec![per_op(d, n)]
}

// 8. fib_tasks: fib(n-1) spawned, fib(n-2) awaited inline (boxed: the future is recursive).
fn fib(n: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let t = tokio::spawn(fib(n - 1));
        let b = fib(n - 2).await;
        t.await.unwrap() + b
    })
}

async fn fib_tasks(n: u64) -> Vec<f64> {
    let t0 = Instant::now();
    let r = fib(n).await;
    let el = ms(t0.elapsed());
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let c = a + b;
        a = b;
        b = c;
    }
    check(r == a, "fib result");
    vec![el]
}

// 10./11. rss_per_task, then idle_cpu, once, in a fresh process.
fn rss_bytes() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: f64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64
}

fn cpu_ms() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    check(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0, "getrusage");
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    (us(ru.ru_utime) + us(ru.ru_stime)) / 1e3
}

async fn rss_then_idle(n: usize, park: Duration, idle: Duration) -> (f64, f64) {
    let counter = Arc::new(AtomicUsize::new(0));
    let before = rss_bytes();
    let mut hs = Vec::with_capacity(n);
    for _ in 0..n {
        let c = counter.clone();
        hs.push(tokio::spawn(async move {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(park).await;
        }));
    }
    while counter.load(Ordering::SeqCst) < n {
        tokio::task::yield_now().await;
    }
    let after = rss_bytes();
    for h in hs {
        h.await.unwrap();
    }
    let c0 = cpu_ms();
    tokio::time::sleep(idle).await;
    let used = (cpu_ms() - c0) / idle.as_secs_f64();
    ((after - before) / n as f64, used)
}

// 9. tcp_echo server: a task per connection, 4096-byte buffer; stops once the number of open
// connections is back to 0 (hard stop after 25 s).
async fn echo_server() {
    let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("PORT {}", ln.local_addr().unwrap().port());
    std::io::stdout().flush().ok();
    let open = Arc::new(AtomicUsize::new(0));
    let all_closed = Arc::new(Notify::new());
    let (o, ac) = (open.clone(), all_closed.clone());
    let acceptor = tokio::spawn(async move {
        loop {
            let (mut sock, _) = match ln.accept().await {
                Ok(c) => c,
                Err(_) => continue,
            };
            // Go, asyncio and weft turn Nagle off on their TCP sockets by default; Tokio does not.
            let _ = sock.set_nodelay(true);
            o.fetch_add(1, Ordering::SeqCst);
            let (o, ac) = (o.clone(), ac.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            if sock.write_all(&buf[..k]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                drop(sock);
                if o.fetch_sub(1, Ordering::SeqCst) == 1 {
                    ac.notify_one();
                }
            });
        }
    });
    if tokio::time::timeout(Duration::from_secs(25), all_closed.notified()).await.is_err() {
        eprintln!("echo server: hard stop after 25 s");
    }
    acceptor.abort();
}

fn main() {
    let o = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.workers)
        .enable_all()
        .build()
        .expect("runtime");
    let q = o.quick;
    let sz = |full: usize, small: usize| if q { small } else { full };
    if o.serve {
        inside(&rt, echo_server());
        rt.shutdown_background();
        return;
    }
    if o.fresh {
        let park = Duration::from_millis(sz(3000, 100) as u64);
        let idle = Duration::from_millis(sz(1000, 200) as u64);
        let (rss, cpu) = inside(&rt, rss_then_idle(sz(100_000, 1000), park, idle));
        report(o.workers, "rss_per_task", "bytes/task", &[rss]);
        report(o.workers, "idle_cpu", "cpu_ms", &[cpu]);
        return;
    }
    let canon = |n: &str| -> String {
        match n {
            "timers_total" | "timers_overhead" => "timers".into(),
            "idle_cpu" => "rss_per_task".into(),
            _ => n.into(),
        }
    };
    let want = |name: &str| o.only.as_ref().map_or(true, |v| v.iter().any(|n| canon(n) == name));
    if want("rss_per_task") {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["--workers", &o.workers.to_string(), "--fresh"]);
        if q {
            cmd.arg("--quick");
        }
        let out = cmd.stderr(std::process::Stdio::inherit()).output().expect("fresh process");
        check(out.status.success(), "fresh process failed");
        std::io::stdout().write_all(&out.stdout).ok();
    }
    let ds = Arc::new(delays(sz(100_000, 1000)));
    if !q {
        check(ds[..8] == [23, 18, 9, 30, 21, 31, 30, 10], "timers first eight delays");
        check(ds.iter().sum::<u64>() == 2_497_483, "timers delay sum");
    }
    type Body<'a> = Box<dyn Fn(&Runtime) -> Vec<f64> + 'a>;
    let benches: Vec<(&str, Vec<(&str, &str)>, Body)> = vec![
        ("spawn_many", vec![("spawn_many", "ns/task")], Box::new(|rt| inside(rt, spawn_many(sz(100_000, 1000))))),
        ("yield_many", vec![("yield_many", "ns/yield")], Box::new(|rt| inside(rt, yield_many(sz(1000, 100), sz(1000, 100))))),
        ("ping_pong", vec![("ping_pong", "ns/roundtrip")], Box::new(|rt| inside(rt, ping_pong(sz(100_000, 1000))))),
        ("chained_spawn", vec![("chained_spawn", "ns/spawn")], Box::new(|rt| inside(rt, chained_spawn(sz(100_000, 1000))))),
        ("timers", vec![("timers_total", "ms"), ("timers_overhead", "ms")], Box::new(|rt| inside(rt, timers(ds.clone())))),
        ("cross_thread_latency", vec![("cross_thread_latency", "ns/roundtrip")], Box::new(|rt| vec![cross_thread(rt, false, sz(20_000, 200))])),
        ("cross_thread_throughput", vec![("cross_thread_throughput", "ns/item")], Box::new(|rt| vec![cross_thread(rt, true, sz(100_000, 1000))])),
        ("to_thread", vec![("to_thread", "ns/call")], Box::new(|rt| inside(rt, to_thread(sz(20_000, 200), 64)))),
        ("fib_tasks", vec![("fib_tasks", "ms")], Box::new(|rt| inside(rt, fib_tasks(sz(25, 15) as u64)))),
    ];
    for (name, outs, body) in &benches {
        if !want(name) {
            continue;
        }
        let mut vals: Vec<Vec<f64>> = vec![Vec::new(); outs.len()];
        for i in 0..o.warmup + o.reps {
            let r = body(&rt);
            if i >= o.warmup {
                for (k, v) in r.into_iter().enumerate() {
                    vals[k].push(v);
                }
            }
        }
        for (k, (out, unit)) in outs.iter().enumerate() {
            report(o.workers, out, unit, &vals[k]);
        }
    }
}
