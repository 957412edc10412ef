/* weft's side of the benchmarks of bench/DEFINITIONS.md (rows 1-8, 10, 11; tcp_echo is
 * bench/tcp_echo_server.c). Same sizes, same work, same clock boundaries and the same output as the
 * Python peers (bench/python/peers.py):
 *
 *   weft_bench --workers N [--affine] [--quick] [--reps R] [--warmup W] [--only a,b] [--fresh]
 *              [--xt-inject]
 *
 * stdout: one line per benchmark, `name runtime workers median unit`, runtime = `weft` (stealable
 * tasks, weft_spawn) or `weft-affine` (--affine: loop-affine tasks, weft_create_task);
 * stderr: every measured repetition, `# name runtime workers reps: v1 v2 ...`, and per benchmark the
 * runtime counters summed over its measured repetitions (`# name runtime workers stats: ...`); after
 * fib_tasks the steal counts per repetition and weft_runtime_print_stats' table.
 *
 * One process per worker count runs every benchmark in turn, inside one runtime
 * (weft_runtime_run): each benchmark's body runs in the main coroutine, W warm-up repetitions
 * (default 1, discarded), then R measured ones (default 5). The clock is CLOCK_MONOTONIC around the
 * workload only. rss_per_task and idle_cpu run first, in a fresh process: this program re-executes
 * itself with --fresh (which runs only those two, once) before starting its own runtime.
 *
 *   --quick   each benchmark once (W=0, R=1) at 1/100 of the sizes, as peers.py --quick
 *   --only    comma-separated names (default all); timers_total/timers_overhead = timers,
 *             idle_cpu = rss_per_task
 *   --xt-inject  cross_thread_*: submit to the runtime (injection queue) instead of worker 0's loop
 *
 * Every sum is checked; a failed check prints `check failed: ...` and exits with status 1. */
#define _GNU_SOURCE
#include <weft.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<weft/queue.h>)
#include <weft/queue.h>
#define HAVE_WEFT_QUEUE 1
#endif

/* ---- options, output ------------------------------------------------------------- */

static int g_workers = 1, g_reps = 5, g_warmup = 1;
static bool g_affine, g_quick, g_fresh;
static const char *g_only;
static const char *g_peer = "weft";
static weft_runtime_t *g_rt;

static void die(const char *what)
{
    fprintf(stderr, "check failed: %s\n", what);
    fflush(NULL);
    _exit(1);
}

#define CHECK(cond, what) ((cond) ? (void)0 : die(what))

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* the number format of peers.py: whole numbers from 100 up, else 3 significant digits */
static void fmt(FILE *fp, double v)
{
    if (fabs(v) >= 100)
        fprintf(fp, "%.0f", v);
    else
        fprintf(fp, "%.3g", v);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double *s = malloc(sizeof *s * (size_t)n);
    memcpy(s, v, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

static void report(const char *name, const char *unit, const double *v, int n)
{
    fprintf(stderr, "# %s %s %d reps:", name, g_peer, g_workers);
    for (int i = 0; i < n; i++) {
        fputc(' ', stderr);
        fmt(stderr, v[i]);
    }
    fputc('\n', stderr);
    fflush(stderr);
    printf("%s %s %d ", name, g_peer, g_workers);
    fmt(stdout, median(v, n));
    printf(" %s\n", unit);
    fflush(stdout);
}

/* ---- spawning: the placement under test ------------------------------------------------ */

static weft_task_t *go(weft_coro_fn fn, void *arg, bool keep)
{
    weft_task_t *t = NULL;
    int rc = g_affine ? weft_create_task(keep ? &t : NULL, fn, arg, NULL)
                      : weft_spawn(keep ? &t : NULL, fn, arg, NULL);
    if (rc < 0) {
        fprintf(stderr, "spawn: %s\n", weft_strerror(rc));
        die("spawn");
    }
    return t;
}

/* await every handle in spawn order, summing the results; releases them after the clock */
static int64_t await_all(weft_task_t **ts, size_t n)
{
    int64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        weft_value_t v;
        int rc = weft_await(ts[i], &v);
        if (rc < 0) {
            fprintf(stderr, "await: %s\n", weft_strerror(rc));
            die("await");
        }
        s += v.i;
    }
    return s;
}

static void release_all(weft_task_t **ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        weft_task_release(ts[i]);
}

static weft_task_t **handles(size_t n)
{
    weft_task_t **ts = malloc(sizeof *ts * n);
    CHECK(ts != NULL, "out of memory");
    return ts;
}

/* Sizes: full, and /100 for --quick (as peers.py). */
#define SZ(full, quick) (g_quick ? (quick) : (full))

/* Each benchmark fills out[] (one or two values) from one repetition. */
typedef void (*bench_fn)(double *out);

/* ---- 1. spawn_many ------------------------------------------------------------------- */

static int ret1(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 1;
    return 0;
}

static void b_spawn_many(double *out)
{
    size_t n = SZ(100000, 1000);
    weft_task_t **ts = handles(n);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        ts[i] = go(ret1, NULL, true);
    int64_t s = await_all(ts, n);
    uint64_t dt = now_ns() - t0;
    release_all(ts, n);
    free(ts);
    CHECK(s == (int64_t)n, "spawn_many sum");
    out[0] = (double)dt / (double)n;
}

/* ---- 2. yield_many ------------------------------------------------------------------- */

static int yielder(void *arg, weft_value_t *out)
{
    int64_t y = (intptr_t)arg;
    for (int64_t i = 0; i < y; i++) {
        int rc = weft_yield();
        if (rc < 0)
            return rc;
    }
    out->i = y;
    return 0;
}

static void b_yield_many(double *out)
{
    size_t t = SZ(1000, 100);
    int64_t y = SZ(1000, 100);
    weft_task_t **ts = handles(t);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < t; i++)
        ts[i] = go(yielder, (void *)(intptr_t)y, true);
    int64_t s = await_all(ts, t);
    uint64_t dt = now_ns() - t0;
    release_all(ts, t);
    free(ts);
    CHECK(s == (int64_t)t * y, "yield_many sum");
    out[0] = (double)dt / ((double)t * (double)y);
}

/* ---- 3. ping_pong: two 1-slot channels ------------------------------------------------ */

#ifdef HAVE_WEFT_QUEUE
/* weft's asyncio.Queue(maxsize=1) (safe across loops); items are void *, here the integer itself */
typedef weft_queue_t chan_t;
static chan_t *chan_new(void)
{
    weft_queue_t *q;
    CHECK(weft_queue_new(1, &q) == 0, "queue_new");
    return q;
}
static void chan_free(chan_t *c) { CHECK(weft_queue_free(c) == 0, "queue_free"); }
static int chan_put(chan_t *c, int64_t v) { return weft_queue_put(c, (void *)(intptr_t)v); }
static int chan_get(chan_t *c, int64_t *v)
{
    void *x = NULL;
    int rc = weft_queue_get(c, &x);
    *v = (intptr_t)x;
    return rc;
}
#else
/* No weft Queue yet: a one-slot channel with asyncio Queue's logic, whose waits are weft futures
 * (a full put waits on a future the next get completes, an empty get on one the next put
 * completes: two futures per round trip and direction). Not thread-safe: ping and pong run on one
 * loop (the benchmark creates them loop-affine). */
typedef struct chan {
    bool full;
    int64_t v;
    weft_future_t *getter, *putter;
} chan_t;
static chan_t *chan_new(void)
{
    chan_t *c = calloc(1, sizeof *c);
    CHECK(c != NULL, "out of memory");
    return c;
}
static void chan_free(chan_t *c) { free(c); }
static int chan_wait(weft_future_t **slot)
{
    weft_future_t *f;
    int rc = weft_future_new(NULL, &f);
    if (rc < 0)
        return rc;
    *slot = f;
    rc = weft_await(f, NULL);
    weft_future_release(f);
    return rc;
}
static void chan_wake(weft_future_t **slot)
{
    if (*slot) {
        weft_future_set_result(*slot, WEFT_VALUE_INT(0));
        *slot = NULL;
    }
}
static int chan_put(chan_t *c, int64_t v)
{
    while (c->full) {
        int rc = chan_wait(&c->putter);
        if (rc < 0)
            return rc;
    }
    c->v = v;
    c->full = true;
    chan_wake(&c->getter);
    return 0;
}
static int chan_get(chan_t *c, int64_t *v)
{
    while (!c->full) {
        int rc = chan_wait(&c->getter);
        if (rc < 0)
            return rc;
    }
    *v = c->v;
    c->full = false;
    chan_wake(&c->putter);
    return 0;
}
#endif

typedef struct pp {
    chan_t *q1, *q2;
    int64_t r;
} pp_t;

static int ping(void *arg, weft_value_t *out)
{
    pp_t *p = arg;
    for (int64_t i = 0; i < p->r; i++) {
        int64_t v;
        int rc = chan_put(p->q1, i);
        if (rc < 0 || (rc = chan_get(p->q2, &v)) < 0)
            return rc;
        CHECK(v == i, "ping_pong value");
    }
    out->i = p->r;
    return 0;
}

static int pong(void *arg, weft_value_t *out)
{
    pp_t *p = arg;
    for (int64_t i = 0; i < p->r; i++) {
        int64_t v;
        int rc = chan_get(p->q1, &v);
        if (rc < 0 || (rc = chan_put(p->q2, v)) < 0)
            return rc;
    }
    out->i = p->r;
    return 0;
}

static void b_ping_pong(double *out)
{
    pp_t p = { chan_new(), chan_new(), SZ(100000, 1000) };
    uint64_t t0 = now_ns();
#ifdef HAVE_WEFT_QUEUE
    weft_task_t *ts[2] = { go(ping, &p, true), go(pong, &p, true) };
#else
    weft_task_t *ts[2];   /* the futures channel is one loop's */
    CHECK(weft_create_task(&ts[0], ping, &p, NULL) == 0, "create ping");
    CHECK(weft_create_task(&ts[1], pong, &p, NULL) == 0, "create pong");
#endif
    int64_t s = await_all(ts, 2);
    uint64_t dt = now_ns() - t0;
    release_all(ts, 2);
    chan_free(p.q1);
    chan_free(p.q2);
    CHECK(s == 2 * p.r, "ping_pong rounds");
    out[0] = (double)dt / (double)p.r;
}

/* ---- 4. chained_spawn -------------------------------------------------------------------- */

static weft_future_t *g_chain_done;

static int chain(void *arg, weft_value_t *out)
{
    (void)out;
    intptr_t k = (intptr_t)arg;
    if (k == 0)
        CHECK(weft_future_set_result(g_chain_done, WEFT_VALUE_INT(1)) == 0, "chain set_result");
    else
        go(chain, (void *)(k - 1), false);
    return 0;
}

static void b_chained_spawn(double *out)
{
    intptr_t d = SZ(100000, 1000);
    CHECK(weft_future_new(NULL, &g_chain_done) == 0, "future_new");
    uint64_t t0 = now_ns();
    go(chain, (void *)(d - 1), false);
    weft_value_t v;
    CHECK(weft_await(g_chain_done, &v) == 0 && v.i == 1, "chained_spawn future");
    uint64_t dt = now_ns() - t0;
    weft_future_release(g_chain_done);
    out[0] = (double)dt / (double)d;
}

/* ---- 5. timers ------------------------------------------------------------------------------ */

#define NDELAYS 100000
static int64_t g_delays[NDELAYS];

static void make_delays(void)
{
    static const int first[8] = { 23, 18, 9, 30, 21, 31, 30, 10 };
    uint32_t x = 12345;
    int64_t sum = 0, zeros = 0, fifties = 0;
    for (int i = 0; i < NDELAYS; i++) {
        x = x * 1103515245u + 12345u;
        g_delays[i] = (x >> 16) % 51;
        sum += g_delays[i];
        zeros += g_delays[i] == 0;
        fifties += g_delays[i] == 50;
    }
    for (int i = 0; i < 8; i++)
        CHECK(g_delays[i] == first[i], "timers first eight delays");
    CHECK(sum == 2497483 && zeros == 1981 && fifties == 1892, "timers delay table");
}

static int sleeper(void *arg, weft_value_t *out)
{
    int64_t d = (intptr_t)arg;
    int rc = weft_sleep((double)d / 1000.0);
    if (rc < 0)
        return rc;
    out->i = d;
    return 0;
}

static void b_timers(double *out)
{
    size_t n = SZ(100000, 1000);
    int64_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += g_delays[i];
    weft_task_t **ts = handles(n);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        ts[i] = go(sleeper, (void *)(intptr_t)g_delays[i], true);
    int64_t s = await_all(ts, n);
    uint64_t dt = now_ns() - t0;
    release_all(ts, n);
    free(ts);
    CHECK(s == want, "timers sum");
    out[0] = (double)dt / 1e6;
    out[1] = (double)dt / 1e6 - 50;
}

/* ---- 6. cross_thread_latency / _throughput ------------------------------------------------------- */

static int small(void *arg, weft_value_t *out)
{
    out->i = (intptr_t)arg + 1;
    return 0;
}

typedef struct xt {
    bool throughput;
    int64_t n, sum;
    uint64_t dt;
    weft_loop_t *root_loop;
    weft_future_t *done;
} xt_t;

/* Where the thread submits: by default to worker 0's loop, the one whose root is waiting
 * (asyncio.run_coroutine_threadsafe(coro, loop)); with --xt-inject to the runtime as a whole (loop
 * NULL: the shared injection queue, any worker may run it). The injection path is not the default
 * because it can lose its wake-up (all loops parked with the item queued: see docs/benchmarks.md,
 * "Known problems"); --xt-inject reproduces it. */
static bool g_xt_inject;

static weft_cfuture_t *submit(int64_t i)
{
    weft_cfuture_t *cf;
    int rc = weft_run_coroutine_threadsafe(g_rt, g_xt_inject ? NULL : weft_runtime_loop(g_rt, 0), small,
                                           (void *)(intptr_t)i, NULL, &cf);
    if (rc < 0) {
        fprintf(stderr, "run_coroutine_threadsafe: %s\n", weft_strerror(rc));
        die("cross_thread submit");
    }
    return cf;
}

static int64_t collect(weft_cfuture_t *cf)
{
    weft_value_t v;
    int rc = weft_cfuture_result(cf, WEFT_NO_TIMEOUT, &v);
    if (rc < 0) {
        fprintf(stderr, "cfuture_result: %s\n", weft_strerror(rc));
        die("cross_thread result");
    }
    weft_cfuture_release(cf);
    return v.i;
}

static int xt_complete(void *arg)
{
    xt_t *x = arg;
    return weft_future_set_result(x->done, WEFT_VALUE_INT(1));
}

static void *xt_thread(void *arg)
{
    xt_t *x = arg;
    int64_t s = 0;
    uint64_t t0 = now_ns();
    if (!x->throughput) {
        for (int64_t i = 0; i < x->n; i++)
            s += collect(submit(i));
    } else {
        weft_cfuture_t **cfs = malloc(sizeof *cfs * (size_t)x->n);
        CHECK(cfs != NULL, "out of memory");
        for (int64_t i = 0; i < x->n; i++)
            cfs[i] = submit(i);
        for (int64_t i = 0; i < x->n; i++)
            s += collect(cfs[i]);
        x->dt = now_ns() - t0;
        free(cfs);
    }
    if (!x->throughput)
        x->dt = now_ns() - t0;
    x->sum = s;
    CHECK(weft_call_soon_threadsafe(x->root_loop, xt_complete, x) == 0, "call_soon_threadsafe");
    return NULL;
}

static double cross_thread(bool throughput, int64_t n)
{
    xt_t x = { .throughput = throughput, .n = n, .root_loop = weft_running_loop() };
    CHECK(weft_future_new(NULL, &x.done) == 0, "future_new");
    pthread_t th;
    CHECK(pthread_create(&th, NULL, xt_thread, &x) == 0, "pthread_create");
    CHECK(weft_await(x.done, NULL) == 0, "cross_thread await");   /* the root only waits */
    pthread_join(th, NULL);
    weft_future_release(x.done);
    CHECK(x.sum == n * (n + 1) / 2, "cross_thread sum");
    return (double)x.dt / (double)n;
}

static void b_xt_latency(double *out) { out[0] = cross_thread(false, SZ(20000, 200)); }
static void b_xt_throughput(double *out) { out[0] = cross_thread(true, SZ(100000, 1000)); }

/* ---- 7. to_thread ------------------------------------------------------------------------------ */

static int plus1(void *arg, weft_value_t *out)
{
    out->i = (intptr_t)arg + 1;
    return 0;
}

static int64_t g_tt_n, g_tt_k;

static int tt_worker(void *arg, weft_value_t *out)
{
    int64_t s = 0;
    for (int64_t i = (intptr_t)arg; i < g_tt_n; i += g_tt_k) {
        weft_value_t v;
        int rc = weft_to_thread(plus1, (void *)(intptr_t)i, &v);
        if (rc < 0)
            return rc;
        s += v.i;
    }
    out->i = s;
    return 0;
}

static void b_to_thread(double *out)
{
    g_tt_n = SZ(20000, 200);
    g_tt_k = 64;
    weft_task_t *ts[64];
    uint64_t t0 = now_ns();
    for (int w = 0; w < 64; w++)
        ts[w] = go(tt_worker, (void *)(intptr_t)w, true);
    int64_t s = await_all(ts, 64);
    uint64_t dt = now_ns() - t0;
    release_all(ts, 64);
    CHECK(s == g_tt_n * (g_tt_n + 1) / 2, "to_thread sum");
    out[0] = (double)dt / (double)g_tt_n;
}

/* ---- 8. fib_tasks ------------------------------------------------------------------------------- */

static int fib(void *arg, weft_value_t *out)
{
    intptr_t n = (intptr_t)arg;
    if (n < 2) {
        out->i = n;
        return 0;
    }
    weft_task_t *t = go(fib, (void *)(n - 1), true);   /* spawned */
    weft_value_t b, a;
    int rc = fib((void *)(n - 2), &b);                  /* called inline */
    if (rc < 0)
        return rc;
    rc = weft_await(t, &a);
    weft_task_release(t);
    if (rc < 0)
        return rc;
    out->i = a.i + b.i;
    return 0;
}

static void b_fib_tasks(double *out)
{
    intptr_t n = SZ(25, 15);
    uint64_t t0 = now_ns();
    weft_value_t r;
    CHECK(fib((void *)n, &r) == 0, "fib failed");
    uint64_t dt = now_ns() - t0;
    int64_t a = 0, b = 1;
    for (intptr_t i = 0; i < n; i++) {
        int64_t c = a + b;
        a = b;
        b = c;
    }
    CHECK(r.i == a, "fib result");
    out[0] = (double)dt / 1e6;
}

/* ---- 10./11. rss_per_task, idle_cpu (fresh process) --------------------------------------------- */

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    CHECK(f && fscanf(f, "%lu %lu", &size, &res) == 2, "read /proc/self/statm");
    fclose(f);
    return res * (size_t)sysconf(_SC_PAGESIZE);
}

static unsigned int g_started;
static double g_park_s;

static int parked(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    __atomic_fetch_add(&g_started, 1, __ATOMIC_RELAXED);
    return weft_sleep(g_park_s);
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void fresh(void)
{
    size_t n = SZ(100000, 1000);
    double idle_s = g_quick ? 0.2 : 1.0;
    g_park_s = g_quick ? 0.1 : 3.0;
    size_t before = rss_bytes();
    weft_task_t **ts = handles(n);
    for (size_t i = 0; i < n; i++)
        ts[i] = go(parked, NULL, true);
    while (__atomic_load_n(&g_started, __ATOMIC_RELAXED) < n)
        weft_yield();
    size_t after = rss_bytes();
    await_all(ts, n);
    release_all(ts, n);
    free(ts);
    CHECK(g_started == n, "rss_per_task count");
    double rss = ((double)after - (double)before) / (double)n;
    double c0 = cpu_ms();
    CHECK(weft_sleep(idle_s) == 0, "idle sleep");
    double idle = (cpu_ms() - c0) / idle_s;   /* CPU ms per second idled */
    report("rss_per_task", "bytes/task", &rss, 1);
    report("idle_cpu", "cpu_ms", &idle, 1);
}

/* ---- the table and the driver ------------------------------------------------------------------ */

typedef struct bench {
    const char *name;
    bench_fn fn;
    const char *out_names[2];
    const char *units[2];
} bench_t;

static const bench_t BENCHES[] = {
    { "spawn_many", b_spawn_many, { "spawn_many" }, { "ns/task" } },
    { "yield_many", b_yield_many, { "yield_many" }, { "ns/yield" } },
    { "ping_pong", b_ping_pong, { "ping_pong" }, { "ns/roundtrip" } },
    { "chained_spawn", b_chained_spawn, { "chained_spawn" }, { "ns/spawn" } },
    { "timers", b_timers, { "timers_total", "timers_overhead" }, { "ms", "ms" } },
    { "cross_thread_latency", b_xt_latency, { "cross_thread_latency" }, { "ns/roundtrip" } },
    { "cross_thread_throughput", b_xt_throughput, { "cross_thread_throughput" }, { "ns/item" } },
    { "to_thread", b_to_thread, { "to_thread" }, { "ns/call" } },
    { "fib_tasks", b_fib_tasks, { "fib_tasks" }, { "ms" } },
};
#define NBENCH (sizeof BENCHES / sizeof BENCHES[0])

static const char *canonical(const char *n)
{
    if (!strcmp(n, "timers_total") || !strcmp(n, "timers_overhead"))
        return "timers";
    if (!strcmp(n, "idle_cpu"))
        return "rss_per_task";
    return n;
}

static bool selected(const char *name)
{
    if (!g_only)
        return true;
    char *dup = strdup(g_only), *save = NULL;
    bool hit = false;
    for (char *tok = strtok_r(dup, ",", &save); tok && !hit; tok = strtok_r(NULL, ",", &save))
        hit = !strcmp(canonical(tok), name);
    free(dup);
    return hit;
}

static void stats_sum(weft_loop_stats_t *sum)
{
    memset(sum, 0, sizeof *sum);
    int n = weft_runtime_workers(g_rt);
    for (int i = 0; i < n; i++) {
        weft_loop_stats_t s;
        weft_runtime_stats(g_rt, i, &s);
        const uint64_t *src = (const uint64_t *)(const void *)&s;
        uint64_t *dst = (uint64_t *)(void *)sum;
        for (size_t k = 0; k < sizeof s / sizeof(uint64_t); k++)
            dst[k] += src[k];
    }
}

#define STAT_DIFF(a, b, f) ((unsigned long long)((a).f - (b).f))

static void print_stats_delta(const char *name, const weft_loop_stats_t *a, const weft_loop_stats_t *b)
{
    fprintf(stderr,
            "# %s %s %d stats: steps=%llu started=%llu spawned=%llu steal_attempts=%llu steals=%llu stolen=%llu "
            "injected=%llu overflows=%llu parks=%llu wakeups=%llu inbox=%llu inline_joins=%llu searches=%llu "
            "search_hits=%llu wakeups_sent=%llu\n",
            name, g_peer, g_workers, STAT_DIFF(*a, *b, tasks_run), STAT_DIFF(*a, *b, tasks_started),
            STAT_DIFF(*a, *b, spawned), STAT_DIFF(*a, *b, steal_attempts), STAT_DIFF(*a, *b, steals),
            STAT_DIFF(*a, *b, stolen), STAT_DIFF(*a, *b, injected), STAT_DIFF(*a, *b, overflows),
            STAT_DIFF(*a, *b, parks), STAT_DIFF(*a, *b, wakeups), STAT_DIFF(*a, *b, inbox_msgs),
            STAT_DIFF(*a, *b, inline_joins), STAT_DIFF(*a, *b, searches), STAT_DIFF(*a, *b, search_hits),
            STAT_DIFF(*a, *b, wakeups_sent));
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    if (g_fresh) {
        fresh();
        return 0;
    }
    for (size_t b = 0; b < NBENCH; b++) {
        const bench_t *bm = &BENCHES[b];
        if (!selected(bm->name))
            continue;
        double vals[2][64];
        uint64_t steals[64], stolen[64], started_rep[64];
        weft_loop_stats_t s0, s1, r0, r1;
        for (int i = 0; i < g_warmup; i++) {
            double tmp[2];
            bm->fn(tmp);
        }
        stats_sum(&s0);
        for (int i = 0; i < g_reps; i++) {
            double tmp[2];
            stats_sum(&r0);
            bm->fn(tmp);
            stats_sum(&r1);
            steals[i] = r1.steals - r0.steals;
            stolen[i] = r1.stolen - r0.stolen;
            started_rep[i] = r1.tasks_started - r0.tasks_started;
            vals[0][i] = tmp[0];
            vals[1][i] = tmp[1];
        }
        stats_sum(&s1);
        for (int k = 0; k < 2 && bm->out_names[k]; k++)
            report(bm->out_names[k], bm->units[k], vals[k], g_reps);
        print_stats_delta(bm->name, &s1, &s0);
        if (!strcmp(bm->name, "fib_tasks")) {
            fprintf(stderr, "# fib_tasks %s %d steals:", g_peer, g_workers);
            for (int i = 0; i < g_reps; i++)
                fprintf(stderr, " %llu", (unsigned long long)steals[i]);
            fprintf(stderr, "\n# fib_tasks %s %d stolen:", g_peer, g_workers);
            for (int i = 0; i < g_reps; i++)
                fprintf(stderr, " %llu", (unsigned long long)stolen[i]);
            fprintf(stderr, "\n# fib_tasks %s %d started:", g_peer, g_workers);
            for (int i = 0; i < g_reps; i++)
                fprintf(stderr, " %llu", (unsigned long long)started_rep[i]);
            fprintf(stderr, "\n# fib_tasks %s %d runtime counters since start (weft_runtime_print_stats):\n",
                    g_peer, g_workers);
            weft_runtime_print_stats(g_rt, stderr);
            fflush(stderr);
        }
    }
    return 0;
}

/* rss_per_task and idle_cpu: this program again, with --fresh */
static void run_fresh_child(char **argv)
{
    char w[16], r[16];
    snprintf(w, sizeof w, "%d", g_workers);
    snprintf(r, sizeof r, "%d", g_reps);
    char *args[12];
    int k = 0;
    args[k++] = argv[0];
    args[k++] = "--fresh";
    args[k++] = "--workers";
    args[k++] = w;
    if (g_affine)
        args[k++] = "--affine";
    if (g_quick)
        args[k++] = "--quick";
    args[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        execv("/proc/self/exe", args);
        perror("execv /proc/self/exe");
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fresh child (rss_per_task, idle_cpu) failed");
}

static void usage(void)
{
    fprintf(stderr, "usage: weft_bench --workers N [--affine] [--quick] [--reps R] [--warmup W] [--only a,b]"
                    " [--xt-inject]\n"
                    "benchmarks: rss_per_task (+idle_cpu)");
    for (size_t b = 0; b < NBENCH; b++)
        fprintf(stderr, " %s", BENCHES[b].name);
    fprintf(stderr, "\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--workers") && v)
            g_workers = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && v)
            g_reps = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && v)
            g_warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--only") && v)
            g_only = argv[++i];
        else if (!strcmp(a, "--affine"))
            g_affine = true;
        else if (!strcmp(a, "--quick"))
            g_quick = true;
        else if (!strcmp(a, "--fresh"))
            g_fresh = true;
        else if (!strcmp(a, "--xt-inject"))
            g_xt_inject = true;
        else
            usage();
    }
    if (g_workers < 1 || g_reps < 1 || g_reps > 64 || g_warmup < 0)
        usage();
    if (g_quick) {
        g_warmup = 0;
        g_reps = 1;
    }
    if (g_only) {
        char *dup = strdup(g_only), *save = NULL;
        for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            bool known = !strcmp(canonical(tok), "rss_per_task");
            for (size_t b = 0; b < NBENCH; b++)
                known |= !strcmp(canonical(tok), BENCHES[b].name);
            if (!known) {
                fprintf(stderr, "unknown benchmark: %s\n", tok);
                usage();
            }
        }
        free(dup);
    }
    g_peer = g_affine ? "weft-affine" : "weft";
    make_delays();
    if (!g_fresh && selected("rss_per_task"))
        run_fresh_child(argv);

    weft_runtime_opts_t o = { .workers = g_workers };
    int rc = weft_runtime_new(&o, &g_rt);
    if (rc < 0) {
        fprintf(stderr, "weft_runtime_new: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_value_t out;
    rc = weft_runtime_run(g_rt, main_coro, NULL, NULL, &out);
    if (rc < 0) {
        fprintf(stderr, "weft_runtime_run: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_runtime_free(g_rt);
    return 0;
}
