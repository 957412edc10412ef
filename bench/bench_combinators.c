/* Combinator costs, one loop (workers 1), following bench/DEFINITIONS.md's
 * conventions: 1 warm-up repetition, 5 measured, the median printed as
 * `name weft 1 value unit`, every repetition on stderr.
 *
 *   gather_100        ns per `await gather(*[child() for _ in range(100)])`, child returns 1
 *                     (results summed and checked)
 *   taskgroup_100     ns per `async with TaskGroup() as tg:` creating 100 such children
 *   wait_for_ok       ns per `await wait_for(child(), 10)` that completes in time (3.12: the
 *                     coroutine runs in the caller, inside a timeout scope)
 *   timeout_scope     ns per `async with timeout(10): pass` (scope entered and left)
 *
 * Usage: bench_combinators [scale]   (scale multiplies the iteration counts; default 1) */
#define _POSIX_C_SOURCE 200809L
#include <weft.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WARMUP 1
#define REPS 5

static double scale = 1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int child(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 1;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef int (*workload_fn)(long n);

static int report(const char *name, workload_fn fn, long n)
{
    double v[REPS];
    for (int r = -WARMUP; r < REPS; r++) {
        uint64_t t0 = now_ns();
        int rc = fn(n);
        uint64_t t1 = now_ns();
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", name, weft_strerror(rc));
            return rc;
        }
        if (r >= 0)
            v[r] = (double)(t1 - t0) / (double)n;
    }
    fprintf(stderr, "# %s weft 1 reps:", name);
    for (int r = 0; r < REPS; r++)
        fprintf(stderr, " %.1f", v[r]);
    fputc('\n', stderr);
    qsort(v, REPS, sizeof v[0], cmp_double);
    printf("%s weft 1 %.1f ns\n", name, v[REPS / 2]);
    fflush(stdout);
    return 0;
}

static weft_awaitable_t aws[100];

static int gather_100(long n)
{
    weft_value_t res[100];
    for (long i = 0; i < n; i++) {
        int rc = weft_gather_aw(aws, 100, res, NULL, NULL);
        if (rc < 0)
            return rc;
        long sum = 0;
        for (int k = 0; k < 100; k++)
            sum += res[k].i;
        if (sum != 100)
            return WEFT_EINVAL;
    }
    return 0;
}

static int taskgroup_100(long n)
{
    for (long i = 0; i < n; i++) {
        weft_taskgroup_t tg;
        int rc = weft_taskgroup_enter(&tg);
        for (int k = 0; k < 100 && rc == 0; k++)
            rc = weft_taskgroup_create_task(&tg, NULL, child, NULL, NULL);
        rc = weft_taskgroup_exit(&tg, rc);
        weft_taskgroup_free(&tg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int wait_for_ok(long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++) {
        weft_value_t v;
        int rc = weft_wait_for_coro(child, NULL, 10.0, &v);
        if (rc < 0)
            return rc;
        sum += v.i;
    }
    return sum == n ? 0 : WEFT_EINVAL;
}

static int timeout_scope(long n)
{
    for (long i = 0; i < n; i++) {
        weft_timeout_t to;
        int rc = weft_timeout_enter(&to, 10.0);
        if (rc < 0)
            return rc;
        if ((rc = weft_timeout_exit(&to, 0)) < 0)
            return rc;
    }
    return 0;
}

static int bench_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int k = 0; k < 100; k++)
        aws[k] = WEFT_AW_CORO(child, NULL);
    int rc;
    if ((rc = report("gather_100", gather_100, (long)(2000 * scale))) < 0)
        return rc;
    if ((rc = report("taskgroup_100", taskgroup_100, (long)(2000 * scale))) < 0)
        return rc;
    if ((rc = report("wait_for_ok", wait_for_ok, (long)(200000 * scale))) < 0)
        return rc;
    return report("timeout_scope", timeout_scope, (long)(200000 * scale));
}

int main(int argc, char **argv)
{
    if (argc > 1)
        scale = atof(argv[1]);
    if (scale <= 0)
        scale = 1;
    int rc = weft_run(bench_main, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
