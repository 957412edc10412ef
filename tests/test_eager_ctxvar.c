/* Eager tasks (per-task eager_start and the loop's eager task factory) and
 * context variables. Each test names the CPython 3.12 case it derives from
 * (Lib/test/test_asyncio/test_eager_task_factory.py, test_tasks.py
 * test_context_*, Lib/test/test_context.py) and the checklist items E1-E6 of
 * asyncio_semantics.md §3. */
#include "comb_util.h"

#include <pthread.h>
#include <stdlib.h>

#define TEST(name)                                                   \
    static int name##_main(void *arg, weft_value_t *out);            \
    static void name(void) { CHECK_EQ(run(name##_main, NULL), 0); }  \
    static int name##_main(void *arg, weft_value_t *out)
#define UNUSED_ARGS \
    (void)arg;      \
    (void)out

static const weft_task_opts_t eager = { .eager_start = true };

/* ================================ eager tasks ================================ */

/* test_eager_task_factory_set */
TEST(test_eager_task_factory_set)
{
    UNUSED_ARGS;
    weft_loop_t *l = weft_running_loop();
    CHECK(!weft_loop_get_eager_task_factory(l));
    CHECK_EQ(weft_loop_set_eager_task_factory(l, true), 0);
    CHECK(weft_loop_get_eager_task_factory(l));
    CHECK_EQ(weft_loop_set_eager_task_factory(l, false), 0);
    CHECK(!weft_loop_get_eager_task_factory(l));
    CHECK_EQ(weft_loop_set_eager_task_factory(NULL, true), WEFT_EINVAL);
    return 0;
}

/* test_await_future_during_eager_step / test_eager_completion (E1, E2): the
 * coroutine runs inside create_task; one that never suspends returns done */
static int set_result_fn(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_future_set_result(arg, WEFT_VALUE_PTR("my message"));
}

TEST(test_eager_completion)
{
    UNUSED_ARGS;
    weft_future_t *fut;
    CHECK_EQ(weft_future_new(NULL, &fut), 0);
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, set_result_fn, fut, &eager), 0);
    CHECK(weft_future_done(t));   /* the eager step completed the task */
    weft_value_t v;
    CHECK_EQ(weft_await(fut, &v), 0);
    CHECK_STR(v.p, "my message");
    weft_task_release(t);
    CHECK_EQ(weft_create_task(&t, value_fn, (void *)(intptr_t)7, &eager), 0);
    CHECK(weft_future_done(t));
    CHECK_EQ(weft_task_state(t), WEFT_TASK_DONE);
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 7);
    weft_task_release(t);
    weft_future_release(fut);
    return 0;
}

/* test_block_after_eager_step (E2 order: the child's code up to its first
 * suspension runs before create_task returns) */
static char order[16];
static size_t norder;
static void mark(char c) { order[norder++] = c; }

static int blocker(void *arg, weft_value_t *out)
{
    (void)arg;
    mark('s');
    int rc = weft_sleep(0.01);
    mark('e');
    out->p = "finished after blocking";
    return rc;
}

TEST(test_block_after_eager_step)
{
    UNUSED_ARGS;
    norder = 0;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, blocker, NULL, &eager), 0);
    mark('c');
    CHECK(!weft_future_done(t));
    CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);
    weft_value_t v;
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_STR(v.p, "finished after blocking");
    CHECK(memcmp(order, "sce", 3) == 0);
    weft_task_release(t);
    return 0;
}

/* test_cancellation_after_eager_completion / test_cancellation_after_eager_step_blocks */
TEST(test_cancellation_after_eager)
{
    UNUSED_ARGS;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, value_fn, (void *)(intptr_t)3, &eager), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 0);   /* finished task can't be cancelled */
    weft_value_t v;
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK(!weft_future_cancelled(t));
    weft_task_release(t);
    CHECK_EQ(weft_create_task(&t, blocker, NULL, &eager), 0);
    CHECK_EQ(weft_task_cancel(t, "cancellation message"), 1);
    CHECK(weft_task_cancelling(t) > 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_STR(weft_error_message(), "cancellation message");
    weft_task_release(t);
    return 0;
}

/* test_current_task (E3): current_task() inside the eager step is the new
 * task. weft applies the name at creation, so the eager step already sees it
 * (3.12 shows the default "Task-N" there; 3.13 the name). */
static weft_task_t *captured;
static const char *captured_name;
static int capture(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    captured = weft_current_task();
    captured_name = weft_task_get_name(captured);
    int rc = weft_sleep(0.01);
    CHECK(weft_current_task() == captured);
    return rc;
}

TEST(test_current_task)
{
    UNUSED_ARGS;
    weft_task_t *me = weft_current_task(), *t;
    CHECK_EQ(weft_create_task(&t, capture, NULL, &(weft_task_opts_t){ .eager_start = true, .name = "eg" }), 0);
    CHECK(captured == t);
    CHECK_STR(captured_name, "eg");
    CHECK(weft_current_task() == me);   /* the creator is current again */
    CHECK(weft_loop_current_task(weft_running_loop()) == me);
    CHECK_EQ(weft_await(t, NULL), 0);
    weft_task_release(t);
    return 0;
}

/* test_all_tasks_with_eager_completion / test_all_tasks_with_blocking (C2) */
static bool in_all_tasks(weft_task_t *t)
{
    weft_task_t *arr[64];
    int n = weft_all_tasks(NULL, arr, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (arr[i] == t)
            return true;
    return false;
}

static bool seen_self;
static int look_at_all_tasks(void *arg, weft_value_t *out)
{
    (void)out;
    seen_self = in_all_tasks(weft_current_task());
    if (arg) {
        int rc = weft_await(((weft_future_t **)arg)[0], NULL);
        if (rc < 0)
            return rc;
        weft_future_set_result(((weft_future_t **)arg)[1], WEFT_VALUE_INT(0));
    }
    return 0;
}

TEST(test_all_tasks_with_eager)
{
    UNUSED_ARGS;
    weft_task_t *t;
    seen_self = false;
    CHECK_EQ(weft_create_task(&t, look_at_all_tasks, NULL, &eager), 0);
    CHECK(seen_self);
    CHECK(!in_all_tasks(t));
    weft_task_release(t);
    weft_future_t *futs[2];
    CHECK_EQ(weft_future_new(NULL, &futs[0]), 0);
    CHECK_EQ(weft_future_new(NULL, &futs[1]), 0);
    seen_self = false;
    CHECK_EQ(weft_create_task(&t, look_at_all_tasks, futs, &eager), 0);
    CHECK(seen_self);
    CHECK(in_all_tasks(t));
    weft_future_set_result(futs[0], WEFT_VALUE_INT(0));
    CHECK_EQ(weft_await(futs[1], NULL), 0);
    settle(1);
    CHECK(!in_all_tasks(t));
    weft_task_release(t);
    weft_future_release(futs[0]);
    weft_future_release(futs[1]);
    return 0;
}

/* E4: an error in the eager step is stored in the task, not returned to the
 * creator; done callbacks added later still run via call_soon */
static int dcb;
static void on_done(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    dcb++;
}

static int fail_now(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    return weft_raise(USER_ERR, "eager failure");
}

TEST(test_eager_exception_stored)
{
    UNUSED_ARGS;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, fail_now, NULL, &eager), 0);
    CHECK(weft_future_done(t));
    dcb = 0;
    CHECK_EQ(weft_future_add_done_callback(t, on_done, NULL), 0);
    CHECK_EQ(dcb, 0);   /* never called synchronously */
    settle(1);
    CHECK_EQ(dcb, 1);
    int code;
    const char *msg;
    CHECK_EQ(weft_future_exception(t, &code, &msg), 0);
    CHECK_EQ(code, USER_ERR);
    CHECK_STR(msg, "eager failure");
    weft_task_release(t);
    return 0;
}

/* E5: with the loop not running, eager_start falls back to scheduling */
static void test_eager_loop_not_running(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(l, &t, value_fn, (void *)(intptr_t)5, &eager), 0);
    CHECK_EQ(weft_task_state(t), WEFT_TASK_NEW);
    CHECK(!weft_future_done(t));
    weft_value_t v;
    CHECK_EQ(weft_loop_run_until_complete(l, t, &v), 0);
    CHECK_EQ(v.i, 5);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(l), 0);
}

/* test_recursive_taskgroups / test_recursive_gather (EagerTests vs
 * NonEagerTests): with the eager factory, every task of a width-5 depth-4
 * tree finishes inside create_task (no task is ever scheduled); without it
 * all 780 children are scheduled. */
static int nscheduled, ncreated;
static int recursive_tg(void *arg, weft_value_t *out)
{
    (void)out;
    int depth = (int)(intptr_t)arg;
    if (depth == 0)
        return 0;
    weft_taskgroup_t tg;
    CHECK_EQ(weft_taskgroup_enter(&tg), 0);
    for (int i = 0; i < 5; i++) {
        weft_task_t *t;
        CHECK_EQ(weft_taskgroup_create_task(&tg, &t, recursive_tg, (void *)(intptr_t)(depth - 1), NULL), 0);
        ncreated++;
        if (!weft_future_done(t))
            nscheduled++;
        weft_task_release(t);
    }
    return weft_taskgroup_exit(&tg, 0);
}

static int recursive_gather(void *arg, weft_value_t *out)
{
    (void)out;
    int depth = (int)(intptr_t)arg;
    if (depth == 0)
        return 0;
    weft_awaitable_t aws[5];
    for (int i = 0; i < 5; i++)
        aws[i] = WEFT_AW_CORO(recursive_gather, (void *)(intptr_t)(depth - 1));
    ncreated += 5;
    return weft_gather_aw(aws, 5, NULL, NULL, NULL);
}

TEST(test_recursive_taskgroups)
{
    UNUSED_ARGS;
    weft_loop_t *l = weft_running_loop();
    for (int eager_on = 0; eager_on < 2; eager_on++) {
        CHECK_EQ(weft_loop_set_eager_task_factory(l, eager_on), 0);
        nscheduled = ncreated = 0;
        CHECK_EQ(recursive_tg((void *)(intptr_t)4, NULL), 0);
        CHECK_EQ(ncreated, 780);
        CHECK_EQ(nscheduled, eager_on ? 0 : 780);
    }
    CHECK_EQ(weft_loop_set_eager_task_factory(l, false), 0);
    return 0;
}

static int ticks;
static int ticker(void *arg)
{
    (void)arg;
    ticks++;
    return 0;
}

TEST(test_recursive_gather)
{
    UNUSED_ARGS;
    weft_loop_t *l = weft_running_loop();
    for (int eager_on = 0; eager_on < 2; eager_on++) {
        CHECK_EQ(weft_loop_set_eager_task_factory(l, eager_on), 0);
        ncreated = 0;
        ticks = 0;
        CHECK_EQ(weft_call_soon(l, ticker, NULL, NULL), 0);
        CHECK_EQ(recursive_gather((void *)(intptr_t)4, NULL), 0);
        CHECK_EQ(ncreated, 780);
        /* eager: the whole tree ran inside the first create_task, the loop
         * never turned (the ticker did not run) */
        CHECK_EQ(ticks, eager_on ? 0 : 1);
    }
    CHECK_EQ(weft_loop_set_eager_task_factory(l, false), 0);
    return 0;
}

/* E2 via the factory and plain create_task (needs the core hook) */
TEST(test_factory_plain_create_task)
{
    UNUSED_ARGS;
    weft_loop_t *l = weft_running_loop();
    CHECK_EQ(weft_loop_set_eager_task_factory(l, true), 0);
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, value_fn, (void *)(intptr_t)1, NULL), 0);
    CHECK(weft_future_done(t));
    weft_task_release(t);
    CHECK_EQ(weft_loop_set_eager_task_factory(l, false), 0);
    return 0;
}

/* ================================ context variables ================================ */

static weft_contextvar_t *cvar;

static void new_cvar(const char *dflt)
{
    weft_value_t d = WEFT_VALUE_PTR(dflt);
    CHECK_EQ(weft_contextvar_new(&cvar, "cvar", dflt ? &d : NULL), 0);
}

static const char *cget(void)
{
    weft_value_t v;
    int rc = weft_contextvar_get(cvar, &v);
    return rc == 0 ? v.p : NULL;
}

static void cset(const char *s) { CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_PTR(s), NULL), 0); }

/* Run main in its own context, as asyncio.run does (copy_context() for the
 * main task). */
static weft_coro_fn ctx_main_fn;
static int ctx_main_shim(void *arg, weft_value_t *out)
{
    weft_task_t *t;
    int rc = weft_create_task_in_context(&t, ctx_main_fn, arg, NULL, NULL);
    if (rc < 0)
        return rc;
    rc = weft_await(t, out);
    weft_task_release(t);
    return rc;
}

static int run_ctx(weft_coro_fn fn, void *arg)
{
    ctx_main_fn = fn;
    return run(ctx_main_shim, arg);
}

static weft_task_t *spawn_ctx(weft_coro_fn fn, void *arg, weft_context_t *ctx)
{
    weft_task_t *t;
    CHECK_EQ(weft_create_task_in_context(&t, fn, arg, NULL, ctx), 0);
    return t;
}

/* test_context.py test_context_var_new_1 / test_context_getset_1..3 */
static void test_contextvar_basics(void)
{
    new_cvar(NULL);
    CHECK_STR(weft_contextvar_name(cvar), "cvar");
    weft_value_t v;
    CHECK_EQ(weft_contextvar_get(cvar, &v), WEFT_ELOOKUP);
    CHECK_EQ(weft_contextvar_get_or(cvar, WEFT_VALUE_INT(5), &v), 0);
    CHECK_EQ(v.i, 5);
    weft_context_t *ctx = weft_context_copy();
    CHECK(ctx != NULL);
    weft_contextvar_token_t t1, t2;
    CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_INT(42), &t1), 0);
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK_EQ(weft_context_get(ctx, cvar, &v), WEFT_ELOOKUP);   /* the copy did not change */
    CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_INT(43), &t2), 0);
    CHECK_EQ(weft_contextvar_reset(cvar, &t2), 0);
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK_EQ(weft_contextvar_reset(cvar, &t2), WEFT_EINVALSTATE);   /* used once already */
    CHECK_EQ(weft_contextvar_reset(cvar, &t1), 0);
    CHECK_EQ(weft_contextvar_get(cvar, &v), WEFT_ELOOKUP);
    /* a token of another variable */
    weft_contextvar_t *other;
    CHECK_EQ(weft_contextvar_new(&other, "other", NULL), 0);
    weft_contextvar_token_t t3;
    CHECK_EQ(weft_contextvar_set(other, WEFT_VALUE_INT(1), &t3), 0);
    CHECK_EQ(weft_contextvar_reset(cvar, &t3), WEFT_EINVAL);
    CHECK_EQ(weft_context_size(weft_context_current()), 1);
    CHECK_EQ(weft_contextvar_reset(other, &t3), 0);
    weft_contextvar_free(other);
    weft_context_release(ctx);
    weft_contextvar_free(cvar);
}

/* test_context.py test_context_run_1..4: Context.run; a token from another
 * context cannot reset here (test_context_getset_4) */
static weft_contextvar_token_t run_tok;
static int in_run(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_PTR("inside"), &run_tok), 0);
    return 7;
}

static void test_context_run(void)
{
    new_cvar("dflt");
    cset("outside");
    weft_context_t *ctx = weft_context_new();
    CHECK_EQ(weft_context_run(ctx, in_run, NULL), 7);
    CHECK_STR(cget(), "outside");
    weft_value_t v;
    CHECK_EQ(weft_context_get(ctx, cvar, &v), 0);
    CHECK_STR(v.p, "inside");
    CHECK_EQ(weft_contextvar_reset(cvar, &run_tok), WEFT_EINVAL);   /* made in another context */
    weft_context_release(ctx);
    weft_contextvar_token_t t;
    CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_PTR("x"), &t), 0);
    CHECK_EQ(weft_contextvar_reset(cvar, &t), 0);
    weft_contextvar_free(cvar);
}

/* many variables: the snapshot stays sorted and copies are independent */
static void test_context_many_vars(void)
{
    weft_contextvar_t *vars[50];
    size_t base = weft_context_size(weft_context_current());   /* values earlier tests left */
    for (int i = 0; i < 50; i++)
        CHECK_EQ(weft_contextvar_new(&vars[i], "v", NULL), 0);
    for (int i = 49; i >= 0; i -= 2)
        CHECK_EQ(weft_contextvar_set(vars[i], WEFT_VALUE_INT(i), NULL), 0);
    weft_context_t *snap = weft_context_copy();
    for (int i = 0; i < 50; i += 2)
        CHECK_EQ(weft_contextvar_set(vars[i], WEFT_VALUE_INT(i), NULL), 0);
    for (int i = 0; i < 50; i++) {
        weft_value_t v;
        CHECK_EQ(weft_contextvar_get(vars[i], &v), 0);
        CHECK_EQ(v.i, i);
        CHECK_EQ(weft_context_get(snap, vars[i], &v), i % 2 ? 0 : WEFT_ELOOKUP);
    }
    CHECK_EQ(weft_context_size(snap), base + 25);
    weft_context_release(snap);
    for (int i = 0; i < 50; i++)
        weft_contextvar_free(vars[i]);
}

/* test_tasks.py test_context_1: a task runs in a copy of its creator's
 * context taken at creation; its changes do not leak to the creator */
static int sub1(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_STR(cget(), "nope");
    cset("something else");
    return 0;
}

static int context_1_main(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    CHECK_STR(cget(), "nope");
    weft_task_t *subtask = spawn_ctx(sub1, NULL, NULL);
    cset("yes");
    CHECK_STR(cget(), "yes");
    CHECK_EQ(weft_await(subtask, NULL), 0);
    CHECK_STR(cget(), "yes");
    weft_task_release(subtask);
    return 0;
}

static void test_context_1(void)
{
    new_cvar("nope");
    CHECK_EQ(run_ctx(context_1_main, NULL), 0);
    CHECK_STR(cget(), "nope");   /* nothing leaked to this thread's context */
    weft_contextvar_free(cvar);
}

/* test_tasks.py test_context_2: a done callback's change must not pollute
 * the task's context (callbacks run in the thread's context) */
static void fut_on_done(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    cset("something else");
}

static int set_result_cb(void *arg)
{
    weft_future_set_result(arg, WEFT_VALUE_INT(0));
    return 0;
}

static int context_2_main(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    CHECK_STR(cget(), "nope");
    static char bufs[2][8], ibufs[3][2][16];
    for (int j = 0; j < 2; j++) {
        weft_future_t *fut;
        CHECK_EQ(weft_future_new(NULL, &fut), 0);
        weft_future_add_done_callback(fut, fut_on_done, NULL);
        snprintf(bufs[j], sizeof bufs[j], "yes%d", j);
        cset(bufs[j]);
        weft_call_soon(weft_running_loop(), set_result_cb, fut, NULL);
        CHECK_EQ(weft_await(fut, NULL), 0);
        CHECK_STR(cget(), bufs[j]);
        for (int i = 0; i < 3; i++) {
            snprintf(ibufs[i][j], sizeof ibufs[i][j], "yes%d-%d", i, j);
            cset(ibufs[i][j]);
            CHECK_EQ(weft_sleep(0.001), 0);
            CHECK_STR(cget(), ibufs[i][j]);
        }
        weft_future_release(fut);
    }
    return 0;
}

static void test_context_2(void)
{
    new_cvar("nope");
    CHECK_EQ(run_ctx(context_2_main, NULL), 0);
    weft_contextvar_free(cvar);
}

/* test_tasks.py test_context_3: 100 tasks in parallel, each changing cvar */
static int sub3(void *arg, weft_value_t *out)
{
    (void)out;
    intptr_t num = (intptr_t)arg;
    for (intptr_t i = 0; i < 10; i++) {
        CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_INT(num + i), NULL), 0);
        CHECK_EQ(weft_sleep((double)(rand() % 20) / 1000.0), 0);
        weft_value_t v;
        CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
        CHECK_EQ(v.i, num + i);
    }
    return 0;
}

static int context_3_main(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    weft_task_t *tasks[100];
    for (int i = 0; i < 100; i++)
        tasks[i] = spawn_ctx(sub3, (void *)(intptr_t)(rand() % 11), NULL);
    CHECK_EQ(weft_gather(tasks, 100, NULL, NULL, NULL), 0);
    for (int i = 0; i < 100; i++)
        weft_task_release(tasks[i]);
    return 0;
}

static void test_context_3(void)
{
    weft_value_t d = WEFT_VALUE_INT(-1);
    CHECK_EQ(weft_contextvar_new(&cvar, "cvar", &d), 0);
    CHECK_EQ(run_ctx(context_3_main, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_EQ(v.i, -1);
    weft_contextvar_free(cvar);
}

/* test_tasks.py test_context_4/5/6 (and test_taskgroups.py
 * test_taskgroup_task_context): a task created with context=ctx runs in ctx
 * itself; its changes show in ctx */
static int coro_set(void *arg, weft_value_t *out)
{
    (void)out;
    CHECK_EQ(weft_sleep(0), 0);
    CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_INT((intptr_t)arg), NULL), 0);
    return 0;
}

static int context_4_main(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    weft_context_t *ctx = weft_context_copy();
    weft_value_t v;
    CHECK_EQ(weft_context_get(ctx, cvar, &v), WEFT_ELOOKUP);
    weft_task_t *t1 = spawn_ctx(coro_set, (void *)1, ctx);
    CHECK_EQ(weft_await(t1, NULL), 0);
    CHECK_EQ(weft_context_get(ctx, cvar, &v), 0);
    CHECK_EQ(v.i, 1);
    weft_task_t *t2 = spawn_ctx(coro_set, (void *)2, ctx);
    CHECK_EQ(weft_await(t2, NULL), 0);
    CHECK_EQ(weft_context_get(ctx, cvar, &v), 0);
    CHECK_EQ(v.i, 2);
    CHECK_EQ(weft_contextvar_get(cvar, &v), WEFT_ELOOKUP);   /* ours is unchanged */
    weft_task_release(t1);
    weft_task_release(t2);
    weft_context_release(ctx);
    return 0;
}

static void test_context_4(void)
{
    new_cvar(NULL);
    CHECK_EQ(run_ctx(context_4_main, NULL), 0);
    weft_contextvar_free(cvar);
}

/* test_eager_task_factory.py test_context_vars: an eager task's first step
 * sees the creator's value, its changes stay in its own context */
static bool first_step_ran, second_step_ran;
static int eager_cv_coro(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    weft_value_t v;
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_EQ(v.i, 1);
    weft_contextvar_set(cvar, WEFT_VALUE_INT(2), NULL);
    first_step_ran = true;
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_EQ(v.i, 2);
    weft_contextvar_set(cvar, WEFT_VALUE_INT(3), NULL);
    second_step_ran = true;
    return 0;
}

static int eager_cv_main(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    weft_contextvar_set(cvar, WEFT_VALUE_INT(1), NULL);
    weft_task_t *t;
    CHECK_EQ(weft_create_task_in_context(&t, eager_cv_coro, NULL, &eager, NULL), 0);
    CHECK(first_step_ran);
    CHECK(!second_step_ran);
    weft_value_t v;
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_EQ(v.i, 1);
    CHECK_EQ(weft_await(t, NULL), 0);
    CHECK(second_step_ran);
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_EQ(v.i, 1);
    weft_task_release(t);
    return 0;
}

static void test_eager_context_vars(void)
{
    weft_value_t d = WEFT_VALUE_INT(0);
    CHECK_EQ(weft_contextvar_new(&cvar, "cv", &d), 0);
    CHECK_EQ(run_ctx(eager_cv_main, NULL), 0);
    weft_contextvar_free(cvar);
}

/* Each thread has its own context (threads do not see each other's values) */
static void *thread_fn(void *arg)
{
    (void)arg;
    weft_value_t v;
    CHECK_EQ(weft_contextvar_get(cvar, &v), 0);
    CHECK_STR(v.p, "dflt");
    cset("thread");
    CHECK_STR(cget(), "thread");
    return NULL;
}

static void test_context_per_thread(void)
{
    new_cvar("dflt");
    cset("main");
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, thread_fn, NULL), 0);
    pthread_join(th, NULL);
    CHECK_STR(cget(), "main");
    weft_contextvar_free(cvar);
}

/* With the core hook: plain weft_create_task copies the creator's context too */
static int plain_child(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    CHECK_STR(cget(), "parent");
    cset("child");
    return 0;
}

static int plain_inherit_main(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    cset("parent");
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, plain_child, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), 0);
    CHECK_STR(cget(), "parent");
    weft_task_release(t);
    return 0;
}

static void test_plain_create_task_inherits(void)
{
    new_cvar("dflt");
    CHECK_EQ(run(plain_inherit_main, NULL), 0);
    CHECK_STR(cget(), "dflt");
    weft_contextvar_free(cvar);
}

int main(int argc, char **argv)
{
    srand(12345);
    RUN(test_eager_task_factory_set);
    RUN(test_eager_completion);
    RUN(test_block_after_eager_step);
    RUN(test_cancellation_after_eager);
    RUN(test_current_task);
    RUN(test_all_tasks_with_eager);
    RUN(test_eager_exception_stored);
    RUN(test_eager_loop_not_running);
    RUN(test_recursive_taskgroups);
    RUN(test_recursive_gather);
    RUN(test_factory_plain_create_task);
    RUN(test_contextvar_basics);
    RUN(test_context_run);
    RUN(test_context_many_vars);
    RUN(test_context_1);
    RUN(test_context_2);
    RUN(test_context_3);
    RUN(test_context_4);
    RUN(test_eager_context_vars);
    RUN(test_context_per_thread);
    RUN(test_plain_create_task_inherits);
    return 0;
}
