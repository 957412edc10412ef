/* Tasks (asyncio.Task), sleep and weft_run: results, nesting, scheduling order,
 * introspection, eager start, error messages and asyncio.run's shutdown.
 * Cases ported from CPython name their source in a comment
 * (Lib/test/test_asyncio/, 3.12); "E2" etc. refer to
 * /work/shared/research/asyncio_semantics.md. */
#include "check.h"

#include <weft.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

/* A log of words, compared as one space-separated string. */
static char logbuf[4096];
static void log_reset(void) { logbuf[0] = 0; }
static void log_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_add(const char *fmt, ...)
{
    size_t n = strlen(logbuf);
    CHECK(n + 64 < sizeof logbuf);
    if (n)
        logbuf[n++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logbuf + n, sizeof logbuf - n, fmt, ap);
    va_end(ap);
}

static double now(void) { return weft_loop_time(weft_running_loop()); }

static int stop_cb(void *arg)
{
    weft_loop_stop(arg);
    return 0;
}

/* Run a coroutine with weft_run and check it succeeded. */
static void run_main(weft_coro_fn fn, void *arg)
{
    weft_value_t v = WEFT_VALUE_INT(0);
    int rc = weft_run(fn, arg, NULL, &v);
    CHECK_EQ(rc, 0);
}

#define MAXREP 8
static struct {
    int n;
    int code[MAXREP];
    char message[MAXREP][128];
    char detail[MAXREP][128];
} rep;

static void rec_handler(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)ud;
    CHECK(rep.n < MAXREP);
    int i = rep.n++;
    rep.code[i] = info->code;
    snprintf(rep.message[i], sizeof rep.message[i], "%s", info->message ? info->message : "(null)");
    snprintf(rep.detail[i], sizeof rep.detail[i], "%s", info->detail ? info->detail : "(null)");
}

static int dtor_calls;
static void counting_dtor(void *p)
{
    (void)p;
    dtor_calls++;
}

/* ---- create_task and await -------------------------------------------------------- */

static int nested_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 42;
    return 0;
}

static int create_await_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, nested_coro, NULL, NULL), 0);
    CHECK(weft_is_task(t));
    CHECK(!weft_future_done(t));
    CHECK(weft_future_get_loop(t) == weft_running_loop());
    weft_value_t v = WEFT_VALUE_INT(0);
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK(weft_future_done(t));
    CHECK(!weft_future_cancelled(t));
    CHECK_EQ(weft_task_state(t), WEFT_TASK_DONE);
    v.i = 0;
    CHECK_EQ(weft_future_result(t, &v), 0);
    CHECK_EQ(v.i, 42);
    v.i = 0;
    CHECK_EQ(weft_await(t, &v), 0);   /* awaiting a done task again: same result, no suspension */
    CHECK_EQ(v.i, 42);
    weft_task_release(t);
    return 0;
}

/* test_tasks.py: test_task_class; asyncio docs "create_task" example */
static void test_create_task_await(void) { run_main(create_await_main, NULL); }

/* A coroutine that calls helper functions 50 deep, each of which awaits. */
struct deep { weft_future_t *fut; int64_t acc; int yields; };

static int deep_helper(struct deep *d, int depth)
{
    int rc = weft_yield();   /* every level suspends */
    if (rc < 0)
        return rc;
    d->yields++;
    if (depth == 0) {
        weft_value_t v;
        if ((rc = weft_await(d->fut, &v)) < 0)   /* the innermost level waits on a future */
            return rc;
        d->acc += v.i;
        weft_task_t *t;
        CHECK_EQ(weft_create_task(&t, nested_coro, NULL, NULL), 0);
        rc = weft_await(t, &v);   /* and on a task */
        weft_task_release(t);
        if (rc < 0)
            return rc;
        d->acc += v.i;
        return weft_sleep(0.001);
    }
    char pad[64];   /* some real frame use at each level */
    memset(pad, depth, sizeof pad);
    rc = deep_helper(d, depth - 1);
    if (rc < 0)
        return rc;
    CHECK_EQ(pad[63], (char)depth);   /* the frame survived the switches */
    d->acc += depth;
    return 0;
}

static int deep_coro(void *arg, weft_value_t *out)
{
    struct deep *d = arg;
    int rc = deep_helper(d, 50);
    out->i = d->acc;
    return rc;
}

static int set_result_cb(void *arg)
{
    return weft_future_set_result(arg, WEFT_VALUE_INT(1000));
}

static int deep_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct deep d = { 0 };
    CHECK_EQ(weft_future_new(NULL, &d.fut), 0);
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, deep_coro, &d, NULL), 0);
    CHECK_EQ(weft_call_later(weft_running_loop(), 0.01, set_result_cb, d.fut, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(d.yields, 51);
    CHECK_EQ(v.i, 1000 + 42 + 50 * 51 / 2);
    weft_task_release(t);
    weft_future_release(d.fut);
    return 0;
}

/* asyncio: `await coro()` at any depth runs inside the current task */
static void test_await_at_depth(void) { run_main(deep_main, NULL); }

/* ---- scheduling order ----------------------------------------------------------------- */

struct say { double delay; const char *what; double started, ended; };

static int say_after(void *arg, weft_value_t *out)
{
    (void)out;
    struct say *s = arg;
    s->started = now();
    int rc = weft_sleep(s->delay);
    if (rc < 0)
        return rc;
    s->ended = now();
    log_add("%s", s->what);
    return 0;
}

static int say_concurrent_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct say a = { .delay = 0.2, .what = "hello" }, b = { .delay = 0.4, .what = "world" };
    double t0 = now();
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_create_task(&t1, say_after, &a, NULL), 0);
    CHECK_EQ(weft_create_task(&t2, say_after, &b, NULL), 0);
    log_add("started");
    CHECK_EQ(weft_await(t1, NULL), 0);
    CHECK_EQ(weft_await(t2, NULL), 0);
    log_add("finished");
    double dt = now() - t0;
    CHECK(dt >= 0.4 - 1e-6);
    /* concurrent: the second sleep began before the first one ended (an order
     * of events, which a loaded machine cannot change, not a bound on dt) */
    CHECK(b.started < a.ended);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

/* asyncio tutorial "Coroutines and Tasks": say_after with create_task (concurrent) */
static void test_say_after_concurrent(void)
{
    log_reset();
    run_main(say_concurrent_main, NULL);
    CHECK_STR(logbuf, "started hello world finished");
}

static int say_sequence_main(void *arg, weft_value_t *out)
{
    (void)arg;
    double t0 = now();
    log_add("started");
    CHECK_EQ(say_after(&(struct say){ .delay = 0.05, .what = "hello" }, out), 0);
    CHECK_EQ(say_after(&(struct say){ .delay = 0.1, .what = "world" }, out), 0);
    log_add("finished");
    CHECK(now() - t0 >= 0.15 - 1e-6);   /* sequential: the delays add up */
    return 0;
}

/* asyncio tutorial "Coroutines and Tasks": say_after awaited in sequence */
static void test_say_after_sequence(void)
{
    log_reset();
    run_main(say_sequence_main, NULL);
    CHECK_STR(logbuf, "started hello world finished");
}

static int printer(void *arg, weft_value_t *out)
{
    (void)out;
    const char *name = arg;
    for (int i = 1; i <= 3; i++) {
        log_add("%s%d", name, i);
        int rc = weft_sleep(0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int log_cb(void *arg)
{
    log_add("%s", (const char *)arg);
    return 0;
}

static int interleave_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_create_task(&a, printer, "A", NULL), 0);
    CHECK_EQ(weft_create_task(&b, printer, "B", NULL), 0);
    CHECK_EQ(weft_create_task(&c, printer, "C", NULL), 0);
    CHECK_EQ(weft_call_soon(weft_running_loop(), log_cb, "cb", NULL), 0);
    log_add("main");
    CHECK_EQ(weft_await(a, NULL), 0);
    log_add("a-done");
    CHECK_EQ(weft_await(b, NULL), 0);
    CHECK_EQ(weft_await(c, NULL), 0);
    log_add("end");
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    return 0;
}

/* asyncio order: three tasks each printing then sleep(0), x3; tasks' steps and
 * call_soon callbacks share one FIFO queue (test_tasks.py: test_sleep_zero) */
static void test_interleaving_order(void)
{
    log_reset();
    run_main(interleave_main, NULL);
    /* Python:
     *   async def p(n):
     *       for i in 1,2,3: log(f"{n}{i}"); await asyncio.sleep(0)
     *   a,b,c = create_task(p("A")),...; loop.call_soon(log,"cb"); log("main"); await a; ...
     * -> main A1 B1 C1 cb A2 B2 C2 A3 B3 C3 a-done end   (A finishes in the 4th round,
     *    with B and C finishing in the same round before main resumes) */
    CHECK_STR(logbuf, "main A1 B1 C1 cb A2 B2 C2 A3 B3 C3 a-done end");
}

static double sleep_base;   /* one base time for every sleeper */

static int wake_future(void *arg)
{
    return weft_future_set_result(arg, WEFT_VALUE_INT(0));
}

static int sleeper_log(void *arg, weft_value_t *out)
{
    (void)out;
    const struct say *s = arg;
    /* sleep(delay) is a timer at now + delay (asyncio's too); here the deadline
     * is base + delay with the one base time the main task took, not the time
     * this task's first step happened to run: a stall of the machine between
     * two first steps (60 ms were seen on a loaded machine) must not reorder
     * deadlines 60 ms apart, and equal delays must give equal deadlines, so
     * that the timer heap's FIFO rule for equal deadlines is what is tested */
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    CHECK_EQ(weft_call_at(weft_running_loop(), sleep_base + s->delay, wake_future, f, NULL), 0);
    int rc = weft_await(f, NULL);
    weft_future_release(f);
    if (rc < 0)
        return rc;
    CHECK(now() - sleep_base >= s->delay - 1e-6);   /* never early */
    log_add("%s", s->what);
    return 0;
}

static int sleep_order_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    static struct say s[] = {
        { 0.18, "d180", 0, 0 }, { 0.06, "d60a", 0, 0 }, { 0.12, "d120", 0, 0 },
        { 0.06, "d60b", 0, 0 }, { 0.0, "d0", 0, 0 },    { 0.06, "d60c", 0, 0 },
    };
    sleep_base = now();
    weft_task_t *t[6];
    for (int i = 0; i < 6; i++)
        CHECK_EQ(weft_create_task(&t[i], sleeper_log, &s[i], NULL), 0);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(weft_await(t[i], NULL), 0);
        weft_task_release(t[i]);
    }
    return 0;
}

/* test_tasks.py: test_sleep (shorter sleeps wake first; same delay in call order) */
static void test_sleep_order(void)
{
    log_reset();
    run_main(sleep_order_main, NULL);
    CHECK_STR(logbuf, "d0 d60a d60b d60c d120 d180");
}

static int yield_twice(void *arg, weft_value_t *out)
{
    (void)out;
    log_add("%s-1", (const char *)arg);
    CHECK_EQ(weft_yield(), 0);
    log_add("%s-2", (const char *)arg);
    return 0;
}

static int sleep_zero_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *loop = weft_running_loop();
    weft_task_t *x, *y;
    CHECK_EQ(weft_create_task(&x, yield_twice, "x", NULL), 0);
    CHECK_EQ(weft_call_soon(loop, log_cb, "cb1", NULL), 0);
    CHECK_EQ(weft_create_task(&y, yield_twice, "y", NULL), 0);
    log_add("m0");
    CHECK_EQ(weft_sleep(0), 0);   /* everything ready before us runs once */
    log_add("m1");
    CHECK_EQ(weft_sleep(-1.0), 0);   /* a negative delay is a yield too */
    log_add("m2");
    CHECK_EQ(weft_yield(), 0);
    log_add("m3");
    CHECK_EQ(weft_await(x, NULL), 0);
    CHECK_EQ(weft_await(y, NULL), 0);
    weft_task_release(x);
    weft_task_release(y);
    return 0;
}

/* test_tasks.py: test_sleep_zero; asyncio_semantics.md SL1 (sleep(0) = one bare yield) */
static void test_sleep_zero_round(void)
{
    log_reset();
    run_main(sleep_zero_main, NULL);
    CHECK_STR(logbuf, "m0 x-1 cb1 y-1 m1 x-2 y-2 m2 m3");
}

static int sleep_value_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_value_t v = WEFT_VALUE_INT(0);
    double t0 = now();
    CHECK_EQ(weft_sleep_value(0.02, WEFT_VALUE_INT(5), &v), 0);
    CHECK(now() - t0 >= 0.02 - 1e-6);
    CHECK_EQ(v.i, 5);
    CHECK_EQ(weft_sleep_value(0, WEFT_VALUE_PTR("yeah"), &v), 0);
    CHECK_STR((const char *)v.p, "yeah");
    CHECK_EQ(weft_sleep_value(0, WEFT_VALUE_INT(1), NULL), 0);   /* out may be NULL */
    return 0;
}

/* test_tasks.py: test_sleep (sleep(dt, arg) returns arg) */
static void test_sleep_value(void) { run_main(sleep_value_main, NULL); }

/* ---- introspection ----------------------------------------------------------------- */

static weft_future_t *it_fut1, *it_fut2;
static weft_task_t *it_task1, *it_task2;

static int cur_coro1(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK(weft_current_task() == it_task1);
    CHECK(weft_loop_current_task(weft_running_loop()) == it_task1);
    CHECK_EQ(weft_await(it_fut1, NULL), 0);
    CHECK(weft_current_task() == it_task1);
    CHECK_EQ(weft_future_set_result(it_fut2, WEFT_VALUE_INT(1)), 0);
    return 0;
}

static int cur_coro2(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK(weft_current_task() == it_task2);
    CHECK_EQ(weft_future_set_result(it_fut1, WEFT_VALUE_INT(1)), 0);
    CHECK_EQ(weft_await(it_fut2, NULL), 0);
    CHECK(weft_current_task() == it_task2);
    return 0;
}

static weft_task_t *cb_saw_task = (weft_task_t *)(uintptr_t)1;
static int current_in_cb(void *arg)
{
    (void)arg;
    cb_saw_task = weft_current_task();
    return 0;
}

/* test_tasks.py: test_current_task, test_current_task_with_interleaving_tasks,
 * test_current_task_no_running_loop */
static void test_current_task(void)
{
    CHECK(weft_current_task() == NULL);   /* outside any loop */
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    CHECK(weft_loop_current_task(loop) == NULL);
    CHECK_EQ(weft_future_new(loop, &it_fut1), 0);
    CHECK_EQ(weft_future_new(loop, &it_fut2), 0);
    CHECK_EQ(weft_loop_create_task(loop, &it_task1, cur_coro1, NULL, NULL), 0);
    CHECK_EQ(weft_loop_create_task(loop, &it_task2, cur_coro2, NULL, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, current_in_cb, NULL, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, it_task2, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, it_task1, NULL), 0);
    CHECK(cb_saw_task == NULL);   /* a plain callback runs outside any task */
    CHECK(weft_loop_current_task(loop) == NULL);
    CHECK(weft_current_task() == NULL);
    weft_task_release(it_task1);
    weft_task_release(it_task2);
    weft_future_release(it_fut1);
    weft_future_release(it_fut2);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static int name_coro(void *arg, weft_value_t *out)
{
    (void)out;
    char *buf = arg;
    snprintf(buf, 64, "%s", weft_task_get_name(weft_current_task()));
    return 0;
}

static unsigned long long task_number(const char *name)
{
    unsigned long long n = 0;
    char tail;
    CHECK(name != NULL);
    CHECK_EQ(sscanf(name, "Task-%llu%c", &n, &tail), 1);
    return n;
}

static int names_main(void *arg, weft_value_t *out)
{
    (void)out;
    CHECK_STR(weft_task_get_name(weft_current_task()), (const char *)arg);
    weft_task_t *t1, *t2, *t3;
    char seen[64] = "";
    CHECK_EQ(weft_create_task(&t1, nested_coro, NULL, NULL), 0);
    CHECK_EQ(weft_create_task(&t2, nested_coro, NULL, NULL), 0);
    CHECK_EQ(weft_create_task(&t3, name_coro, seen, &(weft_task_opts_t){ .name = "worker" }), 0);
    unsigned long long n1 = task_number(weft_task_get_name(t1));
    unsigned long long n2 = task_number(weft_task_get_name(t2));
    CHECK(n1 >= 1);
    CHECK_EQ(n2, n1 + 1);   /* one process-wide counter */
    CHECK_STR(weft_task_get_name(t3), "worker");
    CHECK_EQ(weft_task_set_name(t1, "renamed"), 0);
    CHECK_STR(weft_task_get_name(t1), "renamed");
    CHECK_EQ(weft_task_set_name(t3, "worker-2"), 0);   /* before it runs */
    CHECK_EQ(weft_await(t3, NULL), 0);
    CHECK_STR(seen, "worker-2");
    CHECK_EQ(weft_await(t1, NULL), 0);
    CHECK_EQ(weft_await(t2, NULL), 0);
    CHECK_STR(weft_task_get_name(t1), "renamed");   /* names outlive the run */
    weft_task_release(t1);
    weft_task_release(t2);
    weft_task_release(t3);
    return 0;
}

/* test_tasks.py: test_task_repr_autogenerated, test_bare_create_named_task;
 * test_base_events.py: test_create_named_task_with_default_factory */
static void test_task_names(void)
{
    weft_value_t v;
    /* weft_run's main task is an ordinary Task-N unless a name is given */
    CHECK_EQ(weft_run(names_main, "main", &(weft_run_opts_t){ .name = "main" }, &v), 0);
    CHECK_EQ(weft_run(names_main, "boss", &(weft_run_opts_t){ .name = "boss" }, &v), 0);
}

static int wait_future_coro(void *arg, weft_value_t *out)
{
    return weft_await(arg, out);
}

static int sleep_coro(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_sleep(*(const double *)arg);
}

static bool contains(weft_task_t **arr, int n, weft_task_t *t)
{
    for (int i = 0; i < n; i++)
        if (arr[i] == t)
            return true;
    return false;
}

static int all_tasks_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *me = weft_current_task();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    static const double d = 0.02;
    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_create_task(&a, sleep_coro, (void *)&d, NULL), 0);
    CHECK_EQ(weft_create_task(&b, wait_future_coro, f, NULL), 0);
    CHECK_EQ(weft_create_task(&c, nested_coro, NULL, NULL), 0);
    weft_task_t *arr[16];
    int n = weft_all_tasks(NULL, arr, 16);
    CHECK_EQ(n, 4);   /* main + 3 pending (asyncio.all_tasks includes the current task) */
    CHECK(contains(arr, n, me) && contains(arr, n, a) && contains(arr, n, b) && contains(arr, n, c));
    CHECK_EQ(weft_all_tasks(weft_running_loop(), NULL, 0), 4);   /* count only */
    weft_task_t *one[1];
    CHECK_EQ(weft_all_tasks(NULL, one, 1), 4);   /* total even when cap is smaller */

    CHECK_EQ(weft_yield(), 0);   /* c finished, a and b are waiting */
    CHECK(weft_future_done(c));
    n = weft_all_tasks(NULL, arr, 16);
    CHECK_EQ(n, 3);
    CHECK(!contains(arr, n, c));
    CHECK(contains(arr, n, a) && contains(arr, n, b));

    CHECK_EQ(weft_await(a, NULL), 0);
    n = weft_all_tasks(NULL, arr, 16);
    CHECK_EQ(n, 2);
    CHECK(!contains(arr, n, a));
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(0)), 0);
    CHECK_EQ(weft_await(b, NULL), 0);
    n = weft_all_tasks(NULL, arr, 16);
    CHECK_EQ(n, 1);
    CHECK(arr[0] == me);
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    weft_future_release(f);
    return 0;
}

/* asyncio_semantics.md C2; test_eager_task_factory.py: test_all_tasks_with_blocking (non-eager form) */
static void test_all_tasks(void) { run_main(all_tasks_main, NULL); }

/* ---- eager start -------------------------------------------------------------------- */

static weft_task_t *eager_seen_current;
static int eager_child1(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    eager_seen_current = weft_current_task();
    CHECK_EQ(weft_task_state(eager_seen_current), WEFT_TASK_RUNNING);
    log_add("child1-start");
    CHECK_EQ(weft_sleep(0), 0);
    log_add("child1-end");
    return 0;
}

static int eager_sync_child(void *arg, weft_value_t *out)
{
    (void)arg;
    log_add("sync-child-ran");
    out->i = 7;
    return 0;
}

static int eager_failing_child(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_raise(-7777, "eager boom");
}

static int eager_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *me = weft_current_task();
    const weft_task_opts_t eager = { .eager_start = true };
    weft_task_t *t1, *t2, *t3;
    CHECK_EQ(weft_create_task(&t1, eager_child1, NULL, &eager), 0);
    log_add("after-create-C1");
    CHECK(eager_seen_current == t1);   /* current_task() in the eager step is the new task */
    CHECK(weft_current_task() == me);  /* and the creator is current again */
    CHECK(!weft_future_done(t1));
    CHECK_EQ(weft_task_state(t1), WEFT_TASK_SUSPENDED);
    weft_task_t *arr[8];
    int n = weft_all_tasks(NULL, arr, 8);
    CHECK(contains(arr, n, t1));

    CHECK_EQ(weft_create_task(&t2, eager_sync_child, NULL, &eager), 0);
    CHECK(weft_future_done(t2));   /* finished without suspending: done on return */
    CHECK_EQ(weft_task_state(t2), WEFT_TASK_DONE);
    weft_value_t v;
    CHECK_EQ(weft_future_result(t2, &v), 0);
    log_add("after-create-sync:done=%d,result=%lld", (int)weft_future_done(t2), (long long)v.i);

    /* E4: an error in the eager step is stored in the task, not returned by create_task */
    CHECK_EQ(weft_create_task(&t3, eager_failing_child, NULL, &eager), 0);
    CHECK(weft_future_done(t3));
    CHECK_EQ(weft_future_result(t3, NULL), -7777);
    CHECK_STR(weft_future_message(t3), "eager boom");

    CHECK_EQ(weft_await(t1, NULL), 0);
    weft_task_release(t1);
    weft_task_release(t2);
    weft_task_release(t3);
    return 0;
}

/* asyncio_semantics.md E2 (research/experiments/e1.py eager_demo), E4;
 * test_eager_task_factory.py: test_eager_completion, test_block_after_eager_step, test_current_task */
static void test_eager_start(void)
{
    log_reset();
    run_main(eager_main, NULL);
    CHECK_STR(logbuf, "child1-start after-create-C1 sync-child-ran after-create-sync:done=1,result=7 child1-end");
}

static weft_task_t *eager_from_cb_task;
static int eager_from_cb(void *arg)
{
    (void)arg;
    log_reset();
    CHECK_EQ(weft_create_task(&eager_from_cb_task, eager_child1, NULL, &(weft_task_opts_t){ .eager_start = true }), 0);
    log_add("cb-after-create");
    CHECK(weft_current_task() == NULL);   /* back in the plain callback */
    CHECK(eager_seen_current == eager_from_cb_task);
    return 0;
}

/* E1: a running loop is all eager_start needs; the creator may be a plain callback */
static void test_eager_from_callback(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    CHECK_EQ(weft_call_soon(loop, eager_from_cb, NULL, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_STR(logbuf, "child1-start cb-after-create");
    CHECK_EQ(weft_loop_run_until_complete(loop, eager_from_cb_task, NULL), 0);
    CHECK_STR(logbuf, "child1-start cb-after-create child1-end");
    weft_task_release(eager_from_cb_task);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* E5: eager_start on a loop that is not running falls back to normal scheduling */
static void test_eager_loop_not_running(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    log_reset();
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, eager_sync_child, NULL, &(weft_task_opts_t){ .eager_start = true }), 0);
    CHECK_STR(logbuf, "");
    CHECK_EQ(weft_task_state(t), WEFT_TASK_NEW);
    weft_value_t v;
    CHECK_EQ(weft_loop_run_until_complete(loop, t, &v), 0);
    CHECK_EQ(v.i, 7);
    CHECK_STR(logbuf, "sync-child-ran");
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- task state and what it awaits --------------------------------------------------- */

struct state_probe { weft_future_t *f; int running_state; };

static int state_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct state_probe *p = arg;
    p->running_state = weft_task_state(weft_current_task());
    CHECK(weft_task_awaiting(weft_current_task()) == NULL);
    int rc = weft_sleep(0.01);
    if (rc < 0)
        return rc;
    return weft_await(p->f, out);
}

static int state_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct state_probe p = { NULL, -100 };
    CHECK_EQ(weft_future_new(NULL, &p.f), 0);
    CHECK_EQ(weft_task_state(p.f), -1);   /* not a task */
    CHECK(weft_task_awaiting(p.f) == NULL);
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, state_coro, &p, NULL), 0);
    CHECK_EQ(weft_task_state(t), WEFT_TASK_NEW);
    CHECK(weft_task_awaiting(t) == NULL);
    CHECK_EQ(weft_task_state(weft_current_task()), WEFT_TASK_RUNNING);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(p.running_state, WEFT_TASK_RUNNING);
    CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);   /* sleeping */
    CHECK(weft_task_awaiting(t) == NULL);                 /* not waiting on a future */
    CHECK_EQ(weft_sleep(0.03), 0);
    CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);   /* waiting on p.f */
    CHECK(weft_task_awaiting(t) == p.f);
    CHECK_EQ(weft_future_set_result(p.f, WEFT_VALUE_INT(3)), 0);
    CHECK(weft_task_awaiting(t) == NULL);                 /* woken, not waiting any more */
    weft_value_t v;
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 3);
    CHECK_EQ(weft_task_state(t), WEFT_TASK_DONE);
    CHECK(weft_task_awaiting(t) == NULL);
    weft_task_release(t);
    weft_future_release(p.f);
    return 0;
}

/* test_tasks.py: test_task_cancel_waiter_future (_fut_waiter), states NEW/RUNNING/SUSPENDED/DONE */
static void test_task_state(void) { run_main(state_main, NULL); }

/* ---- errors and messages ----------------------------------------------------------- */

static int raising_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_yield(), 0);
    return weft_raise(-4242, "bad id %d", 7);
}

static int relay_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, raising_coro, NULL, NULL), 0);
    int rc = weft_await(t, out);
    weft_task_release(t);
    return rc;   /* the awaited error, returned as is */
}

static int user_code_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sleep(0.001), 0);
    return -12345;
}

static int errors_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, raising_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), -4242);
    CHECK_STR(weft_error_message(), "bad id 7");
    CHECK_STR(weft_future_message(t), "bad id 7");
    int code = 0;
    const char *msg = NULL;
    CHECK_EQ(weft_future_exception(t, &code, &msg), 0);
    CHECK_EQ(code, -4242);
    CHECK_STR(msg, "bad id 7");
    CHECK(!weft_future_cancelled(t));
    weft_task_release(t);

    /* the message travels with the code through a task that returns it */
    CHECK_EQ(weft_create_task(&t, relay_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), -4242);
    CHECK_STR(weft_error_message(), "bad id 7");
    CHECK_STR(weft_future_message(t), "bad id 7");
    weft_task_release(t);

    /* a user error code passes through untouched, without a message */
    CHECK_EQ(weft_create_task(&t, user_code_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), -12345);
    CHECK(weft_error_message() == NULL);
    CHECK(weft_future_message(t) == NULL);
    CHECK_EQ(weft_future_exception(t, &code, NULL), 0);
    CHECK_EQ(code, -12345);
    weft_task_release(t);
    return 0;
}

/* test_runners.py: test_asyncio_run_raises (exception and its message reach the awaiter) */
static void test_errors_and_messages(void) { run_main(errors_main, NULL); }

static int raise_outside_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* weft_raise outside a task just returns the code */
    return 0;
}

static void test_raise_outside_task(void)
{
    CHECK_EQ(weft_raise(-9, "x %d", 1), -9);
    CHECK_EQ(weft_raise(WEFT_EINVAL, NULL), WEFT_EINVAL);
    CHECK(weft_error_message() == NULL);
    run_main(raise_outside_main, NULL);
}

/* ---- results owned by tasks ------------------------------------------------------- */

static int owned_coro(void *arg, weft_value_t *out)
{
    *out = WEFT_VALUE_OWNED(arg, counting_dtor);
    return 0;
}

static int owned_error_coro(void *arg, weft_value_t *out)
{
    *out = WEFT_VALUE_OWNED(arg, counting_dtor);
    return -1;   /* an error return owns no result: weft frees it */
}

static int owned_main(void *arg, weft_value_t *out)
{
    (void)out;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, owned_coro, arg, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK(v.p == arg);
    CHECK(v.dtor == NULL);   /* borrowed */
    CHECK_EQ(dtor_calls, 0);
    weft_task_release(t);
    CHECK_EQ(dtor_calls, 1);   /* freed with the task */

    CHECK_EQ(weft_create_task(&t, owned_error_coro, arg, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), -1);
    CHECK_EQ(dtor_calls, 2);
    weft_task_release(t);
    CHECK_EQ(dtor_calls, 2);
    return 0;
}

static void test_owned_task_result(void)
{
    int payload;
    dtor_calls = 0;
    run_main(owned_main, &payload);
    CHECK_EQ(dtor_calls, 2);
}

static int failing_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_raise(-31, "nobody looks");
}

/* test_futures.py: test_tb_logger_exception_unretrieved (for a Task: "Task exception was never retrieved") */
static void test_task_exception_never_retrieved(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_loop_set_exception_handler(loop, rec_handler, NULL);
    memset(&rep, 0, sizeof rep);
    CHECK_EQ(weft_loop_create_task(loop, NULL, failing_coro, NULL, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(rep.n, 1);
    CHECK_STR(rep.message[0], "Task exception was never retrieved");
    CHECK_EQ(rep.code[0], -31);
    CHECK_STR(rep.detail[0], "nobody looks");

    /* awaited: retrieved, no report; cancelled or successful and never looked at: no report */
    memset(&rep, 0, sizeof rep);
    weft_task_t *c;
    CHECK_EQ(weft_loop_create_task(loop, &c, failing_coro, NULL, NULL), 0);
    CHECK_EQ(weft_task_cancel(c, NULL), 1);
    weft_task_release(c);
    CHECK_EQ(weft_loop_create_task(loop, NULL, nested_coro, NULL, NULL), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, failing_coro, NULL, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), -31);
    weft_task_release(t);
    CHECK_EQ(rep.n, 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- weft_run --------------------------------------------------------------------- */

static int return_42(void *arg, weft_value_t *out)
{
    (void)arg;
    CHECK_EQ(weft_sleep(0), 0);
    out->i = 42;
    return 0;
}

static int raise_spam(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sleep(0), 0);
    return weft_raise(-999, "spam");
}

static int return_cancelled(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return WEFT_ECANCELED;
}

static int cancel_main_child(void *arg, weft_value_t *out)
{
    (void)out;
    CHECK_EQ(weft_task_cancel(arg, "from child"), 1);
    return 0;
}

static int cancelled_by_child(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_create_task(NULL, cancel_main_child, weft_current_task(), NULL), 0);
    int rc = weft_sleep(10);
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_STR(weft_error_message(), "from child");
    return rc;
}

static int return_owned(void *arg, weft_value_t *out)
{
    *out = WEFT_VALUE_OWNED(arg, counting_dtor);
    return 0;
}

/* test_runners.py: test_asyncio_run_return, test_asyncio_run_raises */
static void test_run_returns(void)
{
    weft_value_t v = WEFT_VALUE_INT(0);
    CHECK_EQ(weft_run(return_42, NULL, NULL, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK_EQ(weft_run(return_42, NULL, NULL, NULL), 0);
    CHECK_EQ(weft_run(raise_spam, NULL, NULL, &v), -999);
    CHECK_EQ(weft_run(user_code_coro, NULL, NULL, NULL), -12345);
    CHECK_EQ(weft_run(return_cancelled, NULL, NULL, NULL), WEFT_ECANCELED);
    CHECK_EQ(weft_run(cancelled_by_child, NULL, NULL, NULL), WEFT_ECANCELED);

    /* an owned result is moved to the caller */
    int payload;
    dtor_calls = 0;
    v = WEFT_VALUE_INT(0);
    CHECK_EQ(weft_run(return_owned, &payload, NULL, &v), 0);
    CHECK(v.p == &payload);
    CHECK(v.dtor == counting_dtor);
    CHECK_EQ(dtor_calls, 0);
    v.dtor(v.p);
    /* ...or freed by weft_run when nobody takes it */
    CHECK_EQ(weft_run(return_owned, &payload, NULL, NULL), 0);
    CHECK_EQ(dtor_calls, 2);
}

struct leftover { int started, saw_cancel, cleanup_done; int code_on_cancel; };

static int leftover_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct leftover *lo = arg;
    lo->started = 1;
    int rc = weft_sleep(3600);
    if (rc == WEFT_ECANCELED) {
        lo->saw_cancel = 1;
        CHECK_EQ(weft_sleep(0.01), 0);   /* cleanup may still await */
        lo->cleanup_done = 1;
        return lo->code_on_cancel ? lo->code_on_cancel : rc;
    }
    return rc;
}

static int leftover_main(void *arg, weft_value_t *out)
{
    weft_loop_set_exception_handler(weft_running_loop(), rec_handler, NULL);
    CHECK_EQ(weft_create_task(NULL, leftover_coro, arg, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    out->i = 123;
    return 0;
}

/* test_runners.py: test_asyncio_run_cancels_hanging_tasks */
static void test_run_cancels_leftovers(void)
{
    struct leftover lo = { 0 };
    memset(&rep, 0, sizeof rep);
    weft_value_t v;
    double t0 = weft_loop_time(NULL);
    CHECK_EQ(weft_run(leftover_main, &lo, NULL, &v), 0);
    CHECK_EQ(v.i, 123);
    CHECK(lo.started && lo.saw_cancel && lo.cleanup_done);   /* all before weft_run returned */
    CHECK(weft_loop_time(NULL) - t0 < 60);
    CHECK_EQ(rep.n, 0);   /* a cancelled leftover is not an error */
}

/* test_runners.py: test_asyncio_run_reports_hanging_tasks_errors */
static void test_run_reports_leftover_errors(void)
{
    struct leftover lo = { .code_on_cancel = -5555 };
    memset(&rep, 0, sizeof rep);
    weft_value_t v;
    CHECK_EQ(weft_run(leftover_main, &lo, NULL, &v), 0);
    CHECK_EQ(v.i, 123);
    CHECK(lo.cleanup_done);
    for (int i = 0; i < rep.n; i++)
        fprintf(stderr, "  report %d: %s (%d) %s\n", i, rep.message[i], rep.code[i], rep.detail[i]);
    CHECK_EQ(rep.n, 1);
    CHECK(strstr(rep.message[0], "shutdown") != NULL);   /* 'unhandled exception during asyncio.run() shutdown' */
    CHECK_EQ(rep.code[0], -5555);
}

static int nested_run_target_ran;
static int nested_target(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    nested_run_target_ran = 1;
    return 0;
}

static int nested_run_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_run(nested_target, NULL, NULL, NULL), WEFT_ENESTED);
    return 0;
}

static int nested_run_cb_rc;
static int nested_run_cb(void *arg)
{
    nested_run_cb_rc = weft_run(nested_target, NULL, NULL, NULL);
    weft_loop_stop(arg);
    return 0;
}

/* test_runners.py: test_asyncio_run_from_running_loop */
static void test_run_nested(void)
{
    nested_run_target_ran = 0;
    run_main(nested_run_main, NULL);
    CHECK_EQ(nested_run_target_ran, 0);

    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    CHECK_EQ(weft_call_soon(loop, nested_run_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(nested_run_cb_rc, WEFT_ENESTED);
    CHECK_EQ(nested_run_target_ran, 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- a recycled task struct starts clean ------------------------------------- */

/* Task structs are recycled through the loop's cache without being cleared
 * whole: a task made in the struct of one that was named, raised, cancelled,
 * slept and awaited must see none of it. */
static weft_future_t *g_gate;

static int dirty_task(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sleep(0.001), 0);
    /* a waiter on a plain future, cancelled by the cancel below */
    int rc = weft_await(g_gate, NULL);
    CHECK_EQ(rc, WEFT_ECANCELED);
    return weft_raise(WEFT_EBUSY, "dirty %d", 1);
}

static int clean_task(void *arg, weft_value_t *out)
{
    weft_task_t *me = weft_current_task();
    CHECK(weft_error_message() == NULL);
    CHECK_EQ(weft_task_cancelling(me), 0);
    CHECK(weft_task_awaiting(me) == NULL);
    CHECK_EQ(weft_task_state(me), WEFT_TASK_RUNNING);
    unsigned long long n;
    char tail;
    CHECK_EQ(sscanf(weft_task_get_name(me), "Task-%llu%c", &n, &tail), 1);
    /* its sleep timer is its own (the last one's was armed on the same struct) */
    double t0 = now();
    CHECK_EQ(weft_sleep(0.002), 0);
    CHECK(now() >= t0);
    out->i = (intptr_t)arg;
    return 0;
}

static int recycle_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int round = 0; round < 50; round++) {
        CHECK_EQ(weft_future_new(NULL, &g_gate), 0);
        weft_task_t *d;
        CHECK_EQ(weft_create_task(&d, dirty_task, NULL, &(weft_task_opts_t){ .name = "dirty" }), 0);
        while (weft_task_awaiting(d) != g_gate)   /* until it waits on the gate, after its sleep */
            CHECK_EQ(weft_yield(), 0);
        CHECK_EQ(weft_task_cancel(d, "stop it"), 1);
        CHECK_EQ(weft_await(d, NULL), WEFT_EBUSY);
        CHECK_STR(weft_future_message(d), "dirty 1");
        CHECK_EQ(weft_task_cancelling(d), 1);
        weft_task_release(d);   /* its struct goes back to the loop's cache */
        weft_future_release(g_gate);
        weft_task_t *c;
        CHECK_EQ(weft_create_task(&c, clean_task, (void *)(intptr_t)round, NULL), 0);
        CHECK_EQ(weft_task_cancelling(c), 0);
        CHECK(weft_task_awaiting(c) == NULL);
        CHECK(weft_future_message(c) == NULL);
        weft_value_t v;
        CHECK_EQ(weft_await(c, &v), 0);
        CHECK_EQ(v.i, round);
        CHECK(weft_future_message(c) == NULL);
        weft_task_release(c);
    }
    return 0;
}

static void test_recycled_task_starts_clean(void)
{
    CHECK_EQ(weft_run(recycle_main, NULL, NULL, NULL), 0);
}

int main(int argc, char **argv)
{
    RUN(test_create_task_await);
    RUN(test_await_at_depth);
    RUN(test_say_after_concurrent);
    RUN(test_say_after_sequence);
    RUN(test_interleaving_order);
    RUN(test_sleep_order);
    RUN(test_sleep_zero_round);
    RUN(test_sleep_value);
    RUN(test_current_task);
    RUN(test_task_names);
    RUN(test_all_tasks);
    RUN(test_eager_start);
    RUN(test_eager_from_callback);
    RUN(test_eager_loop_not_running);
    RUN(test_task_state);
    RUN(test_errors_and_messages);
    RUN(test_raise_outside_task);
    RUN(test_owned_task_result);
    RUN(test_task_exception_never_retrieved);
    RUN(test_run_returns);
    RUN(test_run_cancels_leftovers);
    RUN(test_run_nested);
    RUN(test_run_reports_leftover_errors);
    RUN(test_recycled_task_starts_clean);
    return 0;
}
