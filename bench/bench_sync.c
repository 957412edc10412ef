/* Synchronization primitives and queues, printed as `name weft workers value
 * unit` lines (median of 5 runs; the runs go to stderr):
 *   lock_uncontended      acquire + release of a free Lock, one task
 *   lock_handoff          two tasks of one loop alternate on a Lock: release
 *                         hands it to the waiter, which resumes holding it
 *   lock_handoff_xloop    the same with the two tasks on different loops
 *   queue_pingpong        round trip through two Queue(maxsize=1), one loop
 *   queue_pingpong_xloop  the same, ping on loop 0, pong on loop 1 (spawn_on)
 *   queue_4x4             4 producer + 4 consumer stealable tasks moving items
 *                         through a Queue(maxsize=64) on 2 workers
 * Public API only. Build with -DCMAKE_BUILD_TYPE=Release to measure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <weft.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_sync: check failed: %s\n", what);
    exit(1);
}

#define CHECK(c) ((c) ? (void)0 : die(#c))

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define REPS 5
static void report(const char *name, int workers, double *v, const char *unit)
{
    qsort(v, REPS, sizeof *v, cmpd);
    fprintf(stderr, "# %s weft %d reps:", name, workers);
    for (int i = 0; i < REPS; i++)
        fprintf(stderr, " %.1f", v[i]);
    fprintf(stderr, "\n");
    printf("%s weft %d %.1f %s\n", name, workers, v[REPS / 2], unit);
    fflush(stdout);
}

/* Run main(arg) on a standalone loop (workers = 1) or a runtime; main leaves
 * its figure in out->d. */
static double run(int workers, weft_coro_fn fn, void *arg)
{
    weft_value_t v = { .d = 0 };
    if (workers == 1) {
        weft_loop_t *l;
        CHECK(weft_loop_new(&l) == 0);
        weft_task_t *t;
        CHECK(weft_loop_create_task(l, &t, fn, arg, NULL) == 0);
        CHECK(weft_loop_run_until_complete(l, t, &v) == 0);
        weft_task_release(t);
        weft_loop_free(l);
    } else {
        weft_runtime_t *rt;
        CHECK(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &rt) == 0);
        CHECK(weft_runtime_run(rt, fn, arg, NULL, &v) == 0);
        weft_runtime_free(rt);
    }
    return v.d;
}

/* ---- Lock ------------------------------------------------------------------------- */
#define LOCK_N 1000000
static weft_lock_t *L;

static int lock_uncontended(void *arg, weft_value_t *out)
{
    (void)arg;
    double t0 = now_ns();
    for (int i = 0; i < LOCK_N; i++) {
        CHECK(weft_lock_acquire(L) == 0);
        CHECK(weft_lock_release(L) == 0);
    }
    out->d = (now_ns() - t0) / LOCK_N;
    return 0;
}

/* acquire; yield (so the other task queues on the lock); release: every
 * release hands the lock to the other task */
static int alternator(void *arg, weft_value_t *out)
{
    (void)out;
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        CHECK(weft_lock_acquire(L) == 0);
        CHECK(weft_yield() == 0);
        CHECK(weft_lock_release(L) == 0);
    }
    return 0;
}

#define HANDOFF_N 200000
static int lock_handoff(void *arg, weft_value_t *out)
{
    bool xloop = arg != NULL;
    weft_task_t *a, *b;
    double t0 = now_ns();
    if (xloop) {
        weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
        CHECK(weft_spawn_on(weft_runtime_loop(rt, 0), &a, alternator, (void *)(intptr_t)HANDOFF_N, NULL) == 0);
        CHECK(weft_spawn_on(weft_runtime_loop(rt, 1), &b, alternator, (void *)(intptr_t)HANDOFF_N, NULL) == 0);
    } else {
        CHECK(weft_create_task(&a, alternator, (void *)(intptr_t)HANDOFF_N, NULL) == 0);
        CHECK(weft_create_task(&b, alternator, (void *)(intptr_t)HANDOFF_N, NULL) == 0);
    }
    CHECK(weft_await(a, NULL) == 0);
    CHECK(weft_await(b, NULL) == 0);
    out->d = (now_ns() - t0) / (2.0 * HANDOFF_N);   /* per acquire/release cycle */
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

/* ---- Queue ping-pong ------------------------------------------------------------------ */
#define PP_N 100000
static weft_queue_t *q1, *q2;

static int pong(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int i = 0; i < PP_N; i++) {
        void *v;
        CHECK(weft_queue_get(q1, &v) == 0);
        CHECK(weft_queue_put(q2, v) == 0);
    }
    return 0;
}

static int pingpong(void *arg, weft_value_t *out)
{
    bool xloop = arg != NULL;
    CHECK(weft_queue_new(1, &q1) == 0);
    CHECK(weft_queue_new(1, &q2) == 0);
    weft_task_t *p;
    double t0 = now_ns();
    if (xloop) {
        weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
        CHECK(weft_spawn_on(weft_runtime_loop(rt, 1), &p, pong, NULL, NULL) == 0);
    } else {
        CHECK(weft_create_task(&p, pong, NULL, NULL) == 0);
    }
    for (intptr_t i = 0; i < PP_N; i++) {
        void *v;
        CHECK(weft_queue_put(q1, (void *)i) == 0);
        CHECK(weft_queue_get(q2, &v) == 0);
        CHECK((intptr_t)v == i);
    }
    CHECK(weft_await(p, NULL) == 0);
    out->d = (now_ns() - t0) / PP_N;   /* per round trip */
    weft_task_release(p);
    CHECK(weft_queue_free(q1) == 0);
    CHECK(weft_queue_free(q2) == 0);
    return 0;
}

/* ---- bounded queue, 4 producers x 4 consumers ------------------------------------------ */
#define TP_N 1000000
static weft_queue_t *tq;

static int tp_producer(void *arg, weft_value_t *out)
{
    (void)out;
    for (intptr_t v = (intptr_t)arg; v < TP_N; v += 4)
        CHECK(weft_queue_put(tq, (void *)v) == 0);
    return 0;
}

static int tp_consumer(void *arg, weft_value_t *out)
{
    (void)arg;
    int64_t s = 0;
    for (;;) {
        void *v;
        int rc = weft_queue_get(tq, &v);
        if (rc == WEFT_ESHUTDOWN)
            break;
        CHECK(rc == 0);
        s += (intptr_t)v;
    }
    out->i = s;
    return 0;
}

static int throughput(void *arg, weft_value_t *out)
{
    (void)arg;
    CHECK(weft_queue_new(64, &tq) == 0);
    weft_task_t *p[4], *c[4];
    double t0 = now_ns();
    for (int i = 0; i < 4; i++)
        CHECK(weft_spawn(&c[i], tp_consumer, NULL, NULL) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(weft_spawn(&p[i], tp_producer, (void *)(intptr_t)i, NULL) == 0);
    for (int i = 0; i < 4; i++) {
        CHECK(weft_await(p[i], NULL) == 0);
        weft_task_release(p[i]);
    }
    CHECK(weft_queue_shutdown(tq, false) == 0);   /* consumers drain, then stop */
    int64_t s = 0;
    for (int i = 0; i < 4; i++) {
        weft_value_t v;
        CHECK(weft_await(c[i], &v) == 0);
        s += v.i;
        weft_task_release(c[i]);
    }
    double dt = now_ns() - t0;
    CHECK(s == (int64_t)TP_N * (TP_N - 1) / 2);
    out->d = TP_N / (dt / 1e9) / 1e6;   /* million items per second */
    CHECK(weft_queue_free(tq) == 0);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argv;
    bool quick = argc > 1;   /* --quick: one pass of each */
    double v[REPS];
    CHECK(weft_lock_new(&L) == 0);
#define BENCH(name, workers, fn, arg, unit)                  \
    do {                                                     \
        for (int i = 0; i < REPS; i++)                       \
            v[i] = quick && i ? v[0] : run(workers, fn, arg); \
        report(name, workers, v, unit);                      \
    } while (0)
    BENCH("lock_uncontended", 1, lock_uncontended, NULL, "ns/acquire+release");
    BENCH("lock_handoff", 1, lock_handoff, NULL, "ns/handoff");
    BENCH("lock_handoff_xloop", 2, lock_handoff, (void *)1, "ns/handoff");
    BENCH("queue_pingpong", 1, pingpong, NULL, "ns/roundtrip");
    BENCH("queue_pingpong_xloop", 2, pingpong, (void *)1, "ns/roundtrip");
    BENCH("queue_4x4", 2, throughput, NULL, "Mitems/s");
    weft_lock_free(L);
    return 0;
}
