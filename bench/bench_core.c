/* Core costs, printed as `name weft workers value unit` lines:
 * raw context switch, create+await of a task, sleep(0) yield, future
 * set+wake, RSS per suspended task at 100k tasks. One loop (weft_loop_new),
 * median of 5 runs. */
#include "core/task.h"
#include "weft.h"

#include <stdio.h>
#include <unistd.h>

static double now_ns(void) { return (double)uv_hrtime(); }

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define REPS 5
static void report(const char *name, double *v, const char *unit)
{
    qsort(v, REPS, sizeof *v, cmp);
    fprintf(stderr, "# %s weft 1 reps:", name);
    for (int i = 0; i < REPS; i++)
        fprintf(stderr, " %.1f", v[i]);
    fprintf(stderr, "\n");
    printf("%s weft 1 %.1f %s\n", name, v[REPS / 2], unit);
}

/* raw switch: ping-pong between two contexts */
static weft__ctx_t main_ctx, co_ctx;
static void co_entry(void *arg)
{
    (void)arg;
    for (;;)
        weft__ctx_switch(&co_ctx, &main_ctx);
}

static double bench_switch(void)
{
    static char stack[65536] __attribute__((aligned(16)));
    weft__ctx_make(&co_ctx, stack, sizeof stack, co_entry, NULL);
    const int n = 5000000;
    double t0 = now_ns();
    for (int i = 0; i < n; i++)
        weft__ctx_switch(&main_ctx, &co_ctx);
    return (now_ns() - t0) / (2.0 * n);   /* one-way */
}

static int ret1(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 1;
    return 0;
}

static int create_await(void *arg, weft_value_t *out)
{
    int n = (int)(intptr_t)arg;
    double t0 = now_ns();
    long s = 0;
    for (int i = 0; i < n; i++) {
        weft_task_t *t;
        weft_create_task(&t, ret1, NULL, NULL);
        weft_value_t v;
        weft_await(t, &v);
        s += v.i;
        weft_task_release(t);
    }
    if (s != n)
        abort();
    out->d = (now_ns() - t0) / n;
    return 0;
}

static int yielder(void *arg, weft_value_t *out)
{
    (void)out;
    for (int i = 0; i < (int)(intptr_t)arg; i++)
        weft_yield();
    return 0;
}

static int yields(void *arg, weft_value_t *out)
{
    (void)arg;
    const int T = 1000, Y = 1000;
    weft_task_t *ts[1000];
    double t0 = now_ns();
    for (int i = 0; i < T; i++)
        weft_create_task(&ts[i], yielder, (void *)(intptr_t)Y, NULL);
    for (int i = 0; i < T; i++) {
        weft_await(ts[i], NULL);
        weft_task_release(ts[i]);
    }
    out->d = (now_ns() - t0) / ((double)T * Y);
    return 0;
}

static int setter(void *arg, weft_value_t *out)
{
    (void)out;
    weft_future_t **fs = arg;
    for (int i = 0; fs[i]; i++) {
        weft_future_set_result(fs[i], WEFT_VALUE_INT(i));
        weft_yield();
    }
    return 0;
}

static int set_wake(void *arg, weft_value_t *out)
{
    (void)arg;
    const int n = 200000;
    weft_future_t **fs = calloc(n + 1, sizeof *fs);
    for (int i = 0; i < n; i++)
        weft_future_new(NULL, &fs[i]);
    double t0 = now_ns();
    weft_task_t *t;
    weft_create_task(&t, setter, fs, NULL);
    for (int i = 0; i < n; i++) {
        weft_value_t v;
        weft_await(fs[i], &v);
    }
    out->d = (now_ns() - t0) / n;
    weft_await(t, NULL);
    weft_task_release(t);
    for (int i = 0; i < n; i++)
        weft_future_release(fs[i]);
    free(fs);
    return 0;
}

static long rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    if (f)
        fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static int waiter(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_await(arg, NULL);
}

static int rss_tasks(void *arg, weft_value_t *out)
{
    (void)arg;
    const int n = 100000;
    weft_future_t *gate;
    weft_future_new(NULL, &gate);
    weft_task_t **ts = malloc(n * sizeof *ts);
    long r0 = rss_bytes();
    for (int i = 0; i < n; i++)
        weft_create_task(&ts[i], waiter, gate, NULL);
    weft_yield();   /* every task runs and suspends on the gate */
    long r1 = rss_bytes();
    out->d = (double)(r1 - r0) / n;
    weft_future_set_result(gate, WEFT_VALUE_INT(0));
    for (int i = 0; i < n; i++) {
        weft_await(ts[i], NULL);
        weft_task_release(ts[i]);
    }
    free(ts);
    weft_future_release(gate);
    return 0;
}

static double run1(weft_coro_fn fn, void *arg)
{
    weft_loop_t *l;
    weft_loop_new(&l);
    weft_task_t *t;
    weft_loop_create_task(l, &t, fn, arg, NULL);
    weft_value_t v = { .d = 0 };
    weft_loop_run_until_complete(l, t, &v);
    weft_task_release(t);
    weft_loop_free(l);
    return v.d;
}

int main(int argc, char **argv)
{
    (void)argv;
    double v[REPS];
    printf("rss_per_suspended_task weft 1 %.0f bytes/task\n", run1(rss_tasks, NULL));
    if (argc > 1) /* --quick: one pass of each */
        return 0;
    for (int i = 0; i < REPS; i++)
        v[i] = bench_switch();
    report("context_switch", v, "ns/switch");
    for (int i = 0; i < REPS; i++)
        v[i] = run1(create_await, (void *)(intptr_t)200000);
    report("create_await", v, "ns/task");
    for (int i = 0; i < REPS; i++)
        v[i] = run1(yields, NULL);
    report("sleep0_yield", v, "ns/yield");
    for (int i = 0; i < REPS; i++)
        v[i] = run1(set_wake, NULL);
    report("future_set_wake", v, "ns/op");
    return 0;
}
