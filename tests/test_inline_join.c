/* Work-first join: a task awaiting a never-run stealable task (weft_spawn)
 * runs it inline on its own stack. The child must stay its own task (current
 * task, name, context, result, done callbacks, cancellation) and loop-affine
 * tasks (weft_create_task) must keep asyncio's order. Every test is bounded by
 * a watchdog alarm. */
#include "check.h"
#include "stats_util.h"
#include "weft.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define SCALE 10
#else
#define SCALE 1
#endif

static weft_runtime_t *g_rt;

static uint64_t inline_joins(void) { return rt_stats_sum(g_rt, offsetof(weft_loop_stats_t, inline_joins)); }

static int run(int workers, weft_coro_fn fn, void *arg, weft_value_t *out)
{
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &g_rt), 0);
    int rc = weft_runtime_run(g_rt, fn, arg, NULL, out);
    return rc;
}

static void done_rt(void)
{
    weft_runtime_free(g_rt);
    g_rt = NULL;
}

/* ---- the child is its own task ------------------------------------------------------ */

static weft_contextvar_t *g_var;
static char g_log[64];
static size_t g_nlog;
static weft_task_t *g_parent;
static int g_done_cb;

static void log_c(char c)
{
    if (g_nlog < sizeof g_log - 1)
        g_log[g_nlog++] = c;
}

static int other(void *arg, weft_value_t *out)
{
    (void)out;
    log_c(*(const char *)arg);
    return 0;
}

static int child_identity(void *arg, weft_value_t *out)
{
    (void)arg;
    log_c('B');
    weft_task_t *me = weft_current_task();
    CHECK(me != NULL);
    CHECK(me != g_parent);
    CHECK_STR(weft_task_get_name(me), "kid");
    CHECK_EQ(weft_task_state(me), WEFT_TASK_RUNNING);
    /* the awaiter looks suspended on us */
    CHECK_EQ(weft_task_state(g_parent), WEFT_TASK_SUSPENDED);
    CHECK(weft_task_awaiting(g_parent) == me);
    weft_value_t v;
    CHECK_EQ(weft_contextvar_get(g_var, &v), 0);
    CHECK_EQ(v.i, 1);   /* a copy of the parent's context */
    CHECK_EQ(weft_contextvar_set(g_var, WEFT_VALUE_INT(2), NULL), 0);
    out->i = 42;
    return 0;
}

static void on_done(weft_future_t *f, void *arg)
{
    (void)arg;
    weft_value_t v;
    CHECK_EQ(weft_future_result(f, &v), 0);
    CHECK_EQ(v.i, 42);
    g_done_cb++;
}

static int identity_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    g_parent = weft_current_task();
    g_nlog = 0;
    g_done_cb = 0;
    CHECK_EQ(weft_contextvar_new(&g_var, "v", NULL), 0);
    CHECK_EQ(weft_contextvar_set(g_var, WEFT_VALUE_INT(1), NULL), 0);
    uint64_t j0 = inline_joins();
    /* A is queued first; awaiting B runs B at once, ahead of A */
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, other, "A", NULL), 0);
    CHECK_EQ(weft_spawn(&b, child_identity, NULL, &(weft_task_opts_t){ .name = "kid" }), 0);
    CHECK_EQ(weft_future_add_done_callback(b, on_done, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_await(b, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK(weft_current_task() == g_parent);
    CHECK_EQ(weft_task_state(g_parent), WEFT_TASK_RUNNING);
    CHECK(weft_task_awaiting(g_parent) == NULL);
    CHECK_EQ(inline_joins(), j0 + 1);
    CHECK(weft_future_done(b));
    CHECK_EQ(g_nlog, 1);   /* B ran inline; A has not run yet (unless another loop took it) */
    CHECK_EQ(g_log[0], 'B');
    CHECK_EQ(weft_contextvar_get(g_var, &v), 0);
    CHECK_EQ(v.i, 1);   /* the child's set stayed in its own context */
    CHECK_EQ(g_done_cb, 0);   /* done callbacks are scheduled, never run inside the completion */
    CHECK_EQ(weft_await(a, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(g_done_cb, 1);
    weft_task_release(a);
    weft_task_release(b);
    weft_contextvar_free(g_var);
    return 0;
}

static void test_child_is_its_own_task(void)
{
    CHECK_EQ(run(1, identity_main, NULL, NULL), 0);
    done_rt();
}

/* ---- loop-affine tasks keep asyncio's order --------------------------------------------- */

static int affine_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    g_nlog = 0;
    uint64_t j0 = inline_joins();
    weft_task_t *a, *b;
    CHECK_EQ(weft_create_task(&a, other, "A", NULL), 0);
    CHECK_EQ(weft_create_task(&b, other, "B", NULL), 0);
    CHECK_EQ(weft_await(b, NULL), 0);
    CHECK_EQ(g_nlog, 2);
    CHECK_EQ(g_log[0], 'A');   /* call_soon order */
    CHECK_EQ(g_log[1], 'B');
    CHECK_EQ(inline_joins(), j0);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_affine_tasks_not_inlined(void)
{
    CHECK_EQ(run(1, affine_main, NULL, NULL), 0);
    done_rt();
    CHECK_EQ(run(2, affine_main, NULL, NULL), 0);
    done_rt();
}

/* ---- a child that suspends keeps the borrowed stack ---------------------------------- */

static int g_ticks;

static int ticker(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int i = 0; i < 5; i++) {
        g_ticks++;
        int rc = weft_yield();
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int grandchild(void *arg, weft_value_t *out)
{
    int rc = weft_sleep(0.001);
    if (rc < 0)
        return rc;
    out->i = (intptr_t)arg * 2;
    return 0;
}

static int suspending_child(void *arg, weft_value_t *out)
{
    (void)arg;
    weft_task_t *me = weft_current_task();
    char local;
    int rc = weft_yield();   /* other tasks run meanwhile */
    if (rc < 0)
        return rc;
    CHECK(weft_current_task() == me);
    rc = weft_sleep(0.002);
    if (rc < 0)
        return rc;
    /* a nested inline join of a child that suspends too */
    weft_task_t *g;
    CHECK_EQ(weft_spawn(&g, grandchild, (void *)(intptr_t)21, NULL), 0);
    weft_value_t v;
    rc = weft_await(g, &v);
    weft_task_release(g);
    if (rc < 0)
        return rc;
    CHECK(weft_current_task() == me);
    CHECK(&local != NULL);
    out->i = v.i;
    return 0;
}

static int suspend_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    g_ticks = 0;
    weft_task_t *me = weft_current_task();
    uint64_t j0 = inline_joins();
    weft_task_t *tk, *c;
    CHECK_EQ(weft_create_task(&tk, ticker, NULL, NULL), 0);
    for (int round = 0; round < 20; round++) {
        CHECK_EQ(weft_spawn(&c, suspending_child, NULL, NULL), 0);
        weft_value_t v;
        CHECK_EQ(weft_await(c, &v), 0);
        CHECK_EQ(v.i, 42);
        CHECK(weft_current_task() == me);
        weft_task_release(c);
    }
    CHECK_EQ(weft_await(tk, NULL), 0);
    CHECK_EQ(g_ticks, 5);
    weft_task_release(tk);
    if (weft_runtime_workers(g_rt) == 1)
        CHECK_EQ(inline_joins(), j0 + 40);   /* every child and grandchild ran inline */
    return 0;
}

static void test_child_that_suspends(void)
{
    CHECK_EQ(run(1, suspend_main, NULL, NULL), 0);
    done_rt();
    CHECK_EQ(run(2, suspend_main, NULL, NULL), 0);
    done_rt();
}

/* ---- a child cancelled while it runs inline ------------------------------------------------ */

static weft_task_t *g_victim;

static int sleepy_child(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    g_victim = weft_current_task();
    return weft_sleep(30);
}

static int canceller(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    while (!g_victim)
        CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(g_victim, "stop"), 1);
    return 0;
}

static int child_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    g_victim = NULL;
    weft_task_t *me = weft_current_task();
    uint64_t j0 = inline_joins();
    weft_task_t *k, *c;
    CHECK_EQ(weft_create_task(&k, canceller, NULL, NULL), 0);
    CHECK_EQ(weft_spawn(&c, sleepy_child, NULL, NULL), 0);
    CHECK_EQ(weft_await(c, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(c));
    CHECK_EQ(weft_task_cancelling(me), 0);   /* only the child was cancelled */
    CHECK_EQ(weft_await(k, NULL), 0);
    CHECK_EQ(inline_joins(), j0 + 1);
    weft_task_release(c);
    /* a child cancelled before it starts never runs, inline or not */
    CHECK_EQ(weft_spawn(&c, sleepy_child, NULL, NULL), 0);
    g_victim = NULL;
    CHECK_EQ(weft_task_cancel(c, NULL), 1);
    CHECK_EQ(weft_await(c, NULL), WEFT_ECANCELED);
    CHECK(g_victim == NULL);
    weft_task_release(c);
    weft_task_release(k);
    return 0;
}

static void test_child_cancelled(void)
{
    CHECK_EQ(run(1, child_cancel_main, NULL, NULL), 0);
    done_rt();
}

/* ---- the awaiter cancelled from another thread while the child runs inline --------- */

static atomic_int g_child_started;
static _Atomic(weft_task_t *) g_remote_parent;
static atomic_int g_child_saw_cancel;

static int stubborn_child(void *arg, weft_value_t *out)
{
    (void)out;
    bool busy = (intptr_t)arg & 1;
    atomic_store(&g_child_started, 1);
    for (;;) {   /* until cancelled: yields (must_cancel) or sleeps (cancel hook) */
        int rc = busy ? weft_yield() : weft_sleep(0.0002);
        if (rc == WEFT_ECANCELED) {
            atomic_store(&g_child_saw_cancel, 1);
            return rc;
        }
        if (rc < 0)
            return rc;
    }
}

static int remote_parent(void *arg, weft_value_t *out)
{
    (void)out;
    weft_task_t *c;
    int rc = weft_spawn(&c, stubborn_child, arg, NULL);
    if (rc < 0)
        return rc;
    atomic_store(&g_remote_parent, weft_future_retain(weft_current_task()));
    rc = weft_await(c, NULL);   /* runs the child inline (unless another loop took it first) */
    CHECK(weft_future_done(c));
    CHECK(weft_future_cancelled(c));
    weft_task_release(c);
    return rc;
}

static void *cancel_thread(void *arg)
{
    (void)arg;
    weft_task_t *p;
    while (!(p = atomic_load(&g_remote_parent)) || !atomic_load(&g_child_started))
        usleep(50);
    int rc = weft_task_cancel(p, "from another thread");
    CHECK(rc == 1 || rc == 0);
    weft_task_release(p);
    return NULL;
}

static int remote_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rounds = 300 / SCALE;
    uint64_t j0 = inline_joins();
    for (int i = 0; i < rounds; i++) {
        atomic_store(&g_child_started, 0);
        atomic_store(&g_remote_parent, NULL);
        atomic_store(&g_child_saw_cancel, 0);
        weft_task_t *p;
        CHECK_EQ(weft_spawn(&p, remote_parent, (void *)(intptr_t)i, NULL), 0);
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, cancel_thread, NULL), 0);
        CHECK_EQ(weft_await(p, NULL), WEFT_ECANCELED);
        CHECK(weft_future_cancelled(p));
        CHECK_EQ(atomic_load(&g_child_saw_cancel), 1);
        pthread_join(th, NULL);
        weft_task_release(p);
    }
    CHECK(inline_joins() > j0);
    return 0;
}

static void test_parent_cancelled_from_another_thread(void)
{
    CHECK_EQ(run(2, remote_cancel_main, NULL, NULL), 0);
    done_rt();
    CHECK_EQ(run(1, remote_cancel_main, NULL, NULL), 0);
    done_rt();
}

/* ---- nested inline joins: fib ---------------------------------------------------------- */

static atomic_long g_spawns;

static int fib(void *arg, weft_value_t *out)
{
    intptr_t n = (intptr_t)arg;
    if (n < 2) {
        out->i = n;
        return 0;
    }
    weft_task_t *t;
    int rc = weft_spawn(&t, fib, (void *)(n - 1), NULL);
    if (rc < 0)
        return rc;
    atomic_fetch_add(&g_spawns, 1);
    weft_value_t a, b;
    rc = fib((void *)(n - 2), &b);
    int rc2 = weft_await(t, &a);
    weft_task_release(t);
    if (rc < 0 || rc2 < 0)
        return rc < 0 ? rc : rc2;
    out->i = a.i + b.i;
    return 0;
}

static void test_nested_fib(void)
{
    for (int w = 1; w <= 4; w *= 2) {
        atomic_store(&g_spawns, 0);
        weft_value_t v;
        CHECK_EQ(run(w, fib, (void *)(intptr_t)18, &v), 0);
        CHECK_EQ(v.i, 2584);
        uint64_t j = inline_joins();
        if (w == 1)   /* nothing else can take a child: every one is joined inline */
            CHECK_EQ(j, (uint64_t)atomic_load(&g_spawns));
        else
            CHECK(j > 0 && j <= (uint64_t)atomic_load(&g_spawns));
        done_rt();
    }
}

/* ---- the awaiter's handle dropped while the child runs inline ---------------------------- */

/* weft_await must keep the awaited task alive until it returns, even when the
 * only handle is released meanwhile (here by the child itself, inline or after
 * a suspension): the inline join hands the loop's reference over instead of
 * counting one more (ASan sees a mistake). One worker: with two, a thief could
 * run the child before the spawner reads its handle. */
static int drop_my_handle(void *arg, weft_value_t *out)
{
    weft_task_t **h = arg;
    weft_task_t *me = *h;
    CHECK(me == weft_current_task());
    *h = NULL;
    weft_task_release(me);   /* the spawner's handle: only weft_await's hold is left */
    out->i = 7;
    return 0;
}

static int drop_then_yield(void *arg, weft_value_t *out)
{
    int rc = weft_yield();
    if (rc < 0)
        return rc;
    return drop_my_handle(arg, out);
}

static int drop_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    uint64_t j0 = inline_joins();
    for (int round = 0; round < 200; round++) {
        weft_task_t *h;
        CHECK_EQ(weft_spawn(&h, round % 2 ? drop_then_yield : drop_my_handle, &h, NULL), 0);
        weft_task_t *f = h;
        weft_value_t v = { .i = 0 };
        CHECK_EQ(weft_await(f, &v), 0);   /* f: borrowed from h, which the child released */
        CHECK(h == NULL);
        CHECK_EQ(v.i, 7);
    }
    if (weft_runtime_workers(g_rt) == 1)
        CHECK_EQ(inline_joins(), j0 + 200);
    /* cancelled before it starts: not joined inline, and the body never runs */
    for (int round = 0; round < 20; round++) {
        weft_task_t *h;
        CHECK_EQ(weft_spawn(&h, drop_my_handle, &h, NULL), 0);
        CHECK_EQ(weft_task_cancel(h, NULL), 1);
        CHECK_EQ(weft_await(h, NULL), WEFT_ECANCELED);
        CHECK(h != NULL);   /* the body never ran */
        weft_task_release(h);
    }
    return 0;
}

static void test_handle_dropped_during_join(void)
{
    CHECK_EQ(run(1, drop_main, NULL, NULL), 0);
    done_rt();
}

int main(int argc, char **argv)
{
    alarm(280);   /* watchdog: a hang fails the test */
    RUN(test_child_is_its_own_task);
    RUN(test_affine_tasks_not_inlined);
    RUN(test_child_that_suspends);
    RUN(test_child_cancelled);
    RUN(test_parent_cancelled_from_another_thread);
    RUN(test_nested_fib);
    RUN(test_handle_dropped_during_join);
    return 0;
}
