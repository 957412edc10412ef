/* wait, wait_for, as_completed and shield. Each test names the CPython 3.12
 * case it derives from (Lib/test/test_asyncio/test_tasks.py, test_waitfor.py)
 * or the checklist item of asyncio_semantics.md (W*, WF*, AC*, S*). */
#include "comb_util.h"
#include "core/task.h"
#include "weft.h"   /* to look at a future's callback list */

#include <math.h>

static weft_future_t *newf(void)
{
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    return f;
}

static weft_task_t *spawn(weft_coro_fn fn, void *arg)
{
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, fn, arg, NULL), 0);
    return t;
}

static double now(void) { return weft_loop_time(weft_running_loop()); }

static bool contains(weft_future_t **arr, size_t n, weft_future_t *f)
{
    for (size_t i = 0; i < n; i++)
        if (arr[i] == f)
            return true;
    return false;
}

/* ================================ wait ================================ */

/* test_tasks.py test_wait (W3 ALL_COMPLETED), and "doing it again takes no time" */
static int wait_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t ja = { .delay = 0.01 }, jb = { .delay = 0.03 };
    weft_task_t *a = spawn(job_fn, &ja), *b = spawn(job_fn, &jb);
    weft_future_t *fs[] = { b, a }, *done[2], *pending[2];
    size_t nd, np;
    double t0 = now();
    CHECK_EQ(weft_wait(fs, 2, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, done, &nd, pending, &np), 0);
    CHECK(now() - t0 >= 0.025);
    CHECK_EQ(nd, 2);
    CHECK_EQ(np, 0);
    CHECK(contains(done, nd, a) && contains(done, nd, b));
    t0 = now();
    CHECK_EQ(weft_wait(fs, 2, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, done, &nd, pending, &np), 0);
    CHECK_EQ(nd, 2);   /* all done already (no bound on the time: a loaded machine may stall anywhere) */
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_wait(void) { CHECK_EQ(run(wait_main, NULL), 0); }

/* test_wait_duplicate_coroutines (W2: duplicates collapse) */
static int wait_dup_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *c = spawn(value_fn, (void *)(intptr_t)1), *s = spawn(value_fn, (void *)(intptr_t)2);
    weft_future_t *fs[] = { c, c, s }, *done[3];
    size_t nd = 9, np = 9;
    CHECK_EQ(weft_wait(fs, 3, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, done, &nd, NULL, &np), 0);
    CHECK_EQ(nd, 2);
    CHECK_EQ(np, 0);
    CHECK(done[0] == c && done[1] == s);   /* argument order */
    weft_task_release(c);
    weft_task_release(s);
    return 0;
}

static void test_wait_duplicate_coroutines(void) { CHECK_EQ(run(wait_dup_main, NULL), 0); }

/* test_wait_errors (W1: empty set and bad return_when are errors) */
static int wait_errors_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f = newf();
    CHECK_EQ(weft_wait(NULL, 0, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_wait(&f, 0, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_wait(&f, 1, WEFT_NO_TIMEOUT, -1, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    weft_future_t *nul = NULL;
    CHECK_EQ(weft_wait(&nul, 1, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    weft_future_release(f);
    return 0;
}

static void test_wait_errors(void)
{
    CHECK_EQ(run(wait_errors_main, NULL), 0);
    weft_future_t *dummy = NULL;
    CHECK_EQ(weft_wait(&dummy, 1, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, NULL, NULL, NULL, NULL), WEFT_ENOTCORO);
}

/* test_wait_first_completed (W3 FIRST_COMPLETED) */
static int wait_first_completed_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t ja = { .delay = 10 }, jb = { .delay = 0.01 };
    weft_task_t *a = spawn(job_fn, &ja), *b = spawn(job_fn, &jb);
    weft_future_t *fs[] = { b, a }, *done[2], *pending[2];
    size_t nd, np;
    CHECK_EQ(weft_wait(fs, 2, WEFT_NO_TIMEOUT, WEFT_FIRST_COMPLETED, done, &nd, pending, &np), 0);
    CHECK_EQ(nd, 1);
    CHECK(done[0] == b);
    CHECK_EQ(np, 1);
    CHECK(pending[0] == a);
    CHECK(!weft_future_done(a));
    weft_task_cancel(a, NULL);
    CHECK_EQ(weft_await(a, NULL), WEFT_ECANCELED);   /* its job lives in this frame */
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_wait_first_completed(void) { CHECK_EQ(run(wait_first_completed_main, NULL), 0); }

/* test_wait_really_done: futures that became done whose callbacks have not
 * run yet are reported done */
static int yield1(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_yield();
}
static int yield2(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_yield();
    return weft_yield();
}

static int wait_really_done_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *a = spawn(yield1, NULL), *b = spawn(yield2, NULL);
    weft_future_t *fs[] = { b, a }, *done[2];
    size_t nd, np;
    CHECK_EQ(weft_wait(fs, 2, WEFT_NO_TIMEOUT, WEFT_FIRST_COMPLETED, done, &nd, NULL, &np), 0);
    CHECK_EQ(nd, 2);
    CHECK_EQ(np, 0);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_wait_really_done(void) { CHECK_EQ(run(wait_really_done_main, NULL), 0); }

/* test_wait_first_exception, test_wait_first_exception_in_wait, and W3 (a
 * cancelled future does not count as an exception) */
static int wait_first_exception_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t ja = { .delay = 10 }, jb = { .delay = 0, .code = USER_ERR }, jc = { .delay = 0.01, .code = USER_ERR };
    weft_task_t *a = spawn(job_fn, &ja), *b = spawn(job_fn, &jb);
    weft_future_t *fs[] = { b, a }, *done[2], *pending[2];
    size_t nd, np;
    double t0 = now();
    CHECK_EQ(weft_wait(fs, 2, WEFT_NO_TIMEOUT, WEFT_FIRST_EXCEPTION, done, &nd, pending, &np), 0);
    (void)t0;
    CHECK(!weft_future_done(a));   /* returned at b's error, not after a's 10 s */
    CHECK_EQ(nd, 1);
    CHECK(done[0] == b);
    CHECK(pending[0] == a);
    CHECK_EQ(weft_future_result(b, NULL), USER_ERR);
    /* exception during the wait */
    weft_task_t *c = spawn(job_fn, &jc);
    fs[0] = c;
    CHECK_EQ(weft_wait(fs, 2, WEFT_NO_TIMEOUT, WEFT_FIRST_EXCEPTION, done, &nd, pending, &np), 0);
    CHECK_EQ(nd, 1);
    CHECK(done[0] == c);
    CHECK_EQ(weft_future_result(c, NULL), USER_ERR);
    /* [V] one cancelled + one raising + one pending -> done=2, pending=1 */
    weft_future_t *x = newf(), *y = newf(), *z = newf();
    weft_future_t *f3[] = { x, y, z }, *d3[3], *p3[3];
    weft_future_cancel(x, NULL);
    CHECK_EQ(weft_wait(f3, 3, 0.02, WEFT_FIRST_EXCEPTION, d3, &nd, p3, &np), 0);
    CHECK_EQ(nd, 1);   /* the cancellation alone did not end the wait: the timeout did */
    weft_future_set_exception(y, -5, NULL);
    CHECK_EQ(weft_wait(f3, 3, WEFT_NO_TIMEOUT, WEFT_FIRST_EXCEPTION, d3, &nd, p3, &np), 0);
    CHECK_EQ(nd, 2);
    CHECK_EQ(np, 1);
    CHECK(p3[0] == z);
    weft_future_result(y, NULL);
    weft_future_release(x);
    weft_future_release(y);
    weft_future_release(z);
    weft_task_cancel(a, NULL);
    CHECK_EQ(weft_await(a, NULL), WEFT_ECANCELED);   /* its job lives in this frame */
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    return 0;
}

static void test_wait_first_exception(void) { CHECK_EQ(run(wait_first_exception_main, NULL), 0); }

/* test_wait_with_timeout (W4: on timeout nothing is cancelled, no error) */
static int wait_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t ja = { .delay = 0.01 }, jb = { .delay = 0.6 };
    weft_task_t *a = spawn(job_fn, &ja), *b = spawn(job_fn, &jb);
    weft_future_t *fs[] = { b, a }, *done[2], *pending[2];
    size_t nd, np;
    double t0 = now();
    CHECK_EQ(weft_wait(fs, 2, 0.03, WEFT_ALL_COMPLETED, done, &nd, pending, &np), 0);
    double dt = now() - t0;
    CHECK(dt >= 0.025);
    CHECK(!weft_future_done(b));   /* the timeout, not b's end */
    CHECK_EQ(nd, 1);
    CHECK(done[0] == a);
    CHECK_EQ(np, 1);
    CHECK(pending[0] == b);
    CHECK(!weft_future_cancelled(b));
    CHECK_EQ(weft_await(b, NULL), 0);   /* b was left running */
    CHECK_EQ(jb.cancelled, 0);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_wait_with_timeout(void) { CHECK_EQ(run(wait_timeout_main, NULL), 0); }

/* W5: cancelling the waiting task propagates CANCELLED, the futures are not
 * cancelled (test_yield_wait_does_not_shield_cancel) */
static int waiter_fn(void *arg, weft_value_t *out)
{
    (void)out;
    weft_future_t **fs = arg;
    return weft_wait(fs, 2, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, NULL, NULL, NULL, NULL);
}

static int wait_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fs[] = { newf(), newf() };
    weft_task_t *w = spawn(waiter_fn, fs);
    settle(1);
    weft_task_cancel(w, "stop");
    CHECK_EQ(weft_await(w, NULL), WEFT_ECANCELED);
    CHECK(!weft_future_done(fs[0]) && !weft_future_done(fs[1]));
    /* the callbacks were removed: completing the futures touches nothing */
    weft_future_set_result(fs[0], WEFT_VALUE_INT(1));
    weft_future_set_result(fs[1], WEFT_VALUE_INT(2));
    settle(2);
    weft_future_release(fs[0]);
    weft_future_release(fs[1]);
    weft_task_release(w);
    return 0;
}

static void test_wait_cancelled(void) { CHECK_EQ(run(wait_cancel_main, NULL), 0); }

/* ================================ wait_for ================================ */

/* test_waitfor.py test_wait_for: on timeout the inner task is cancelled and
 * has really finished when TIMEDOUT is returned (WF2) */
static int foo_running;
static int foo(void *arg, weft_value_t *out)
{
    (void)arg;
    foo_running = 1;
    int rc = weft_sleep(60);
    foo_running = 0;
    if (rc < 0)
        return rc;
    out->p = "done";
    return 0;
}

static int wait_for_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *fut = spawn(foo, NULL);
    CHECK_EQ(weft_wait_for(fut, 0.05, NULL), WEFT_ETIMEDOUT);
    CHECK(weft_future_done(fut));
    CHECK(weft_future_cancelled(fut));
    CHECK_EQ(foo_running, 0);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);   /* WF5 */
    weft_task_release(fut);
    return 0;
}

static void test_wait_for(void) { CHECK_EQ(run(wait_for_main, NULL), 0); }

/* test_wait_for_timeout_less_then_0_or_0_future_done (WF3) */
static int ticks;
static int ticker(void *arg)
{
    (void)arg;
    ticks++;
    return 0;
}

static int wf_zero_done_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fut = newf();
    weft_future_set_result(fut, WEFT_VALUE_PTR("done"));
    weft_value_t v;
    ticks = 0;
    weft_call_soon(weft_running_loop(), ticker, NULL, NULL);
    CHECK_EQ(weft_wait_for(fut, 0, &v), 0);
    CHECK_STR(v.p, "done");
    CHECK_EQ(ticks, 0);   /* returned at once, without suspending */
    weft_future_release(fut);
    return 0;
}

static void test_wait_for_zero_future_done(void) { CHECK_EQ(run(wf_zero_done_main, NULL), 0); }

/* test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started (WF3) */
static int foo_started;
static int foo2(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    foo_started = 1;
    return 0;
}

static int wf_zero_coro_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    foo_started = 0;
    CHECK_EQ(weft_wait_for_coro(foo2, NULL, 0, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(foo_started, 0);
    return 0;
}

static void test_wait_for_zero_coroutine_not_started(void) { CHECK_EQ(run(wf_zero_coro_main, NULL), 0); }

/* test_wait_for_timeout_less_then_0_or_0 */
static weft_future_t *started;
static int foo3(void *arg, weft_value_t *out)
{
    (void)arg;
    foo_running = 1;
    weft_future_set_result(started, WEFT_VALUE_INT(0));
    int rc = weft_sleep(10);
    foo_running = 0;
    if (rc < 0)
        return rc;
    out->p = "done";
    return 0;
}

static int wf_zero_running_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    static const double timeouts[] = { 0, -1 };   /* CPython runs it for both */
    for (int i = 0; i < 2; i++) {
        started = newf();
        weft_task_t *fut = spawn(foo3, NULL);
        CHECK_EQ(weft_await(started, NULL), 0);
        CHECK_EQ(weft_wait_for(fut, timeouts[i], NULL), WEFT_ETIMEDOUT);
        CHECK(weft_future_cancelled(fut));
        CHECK_EQ(foo_running, 0);
        weft_task_release(fut);
        weft_future_release(started);
    }
    CHECK_EQ(weft_wait_for_coro(foo3, NULL, NAN, NULL), WEFT_EINVAL);
    return 0;
}

static void test_wait_for_zero(void) { CHECK_EQ(run(wf_zero_running_main, NULL), 0); }

/* test_wait_for_blocking (WF1: no timeout awaits the coroutine directly in
 * the calling task) */
static weft_task_t *seen_task;
static int coro_done(void *arg, weft_value_t *out)
{
    (void)arg;
    seen_task = weft_current_task();
    out->p = "done";
    return 0;
}

static int wf_blocking_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_value_t v;
    CHECK_EQ(weft_wait_for_coro(coro_done, NULL, WEFT_NO_TIMEOUT, &v), 0);
    CHECK_STR(v.p, "done");
    CHECK(seen_task == weft_current_task());
    CHECK_EQ(weft_wait_for_coro(coro_done, NULL, 10, &v), 0);
    CHECK(seen_task == weft_current_task());
    CHECK_EQ(weft_wait_for_coro(coro_done, NULL, NAN, &v), WEFT_EINVAL);   /* NaN is not None */
    return 0;
}

static void test_wait_for_blocking(void) { CHECK_EQ(run(wf_blocking_main, NULL), 0); }

/* test_wait_for_race_condition: the future completes before the timeout */
static int set_ok(void *arg)
{
    weft_future_set_result(arg, WEFT_VALUE_PTR("ok"));
    return 0;
}

static int wf_race_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fut = newf();
    weft_call_soon(weft_running_loop(), set_ok, fut, NULL);
    weft_value_t v;
    CHECK_EQ(weft_wait_for(fut, 0.2, &v), 0);
    CHECK_STR(v.p, "ok");
    weft_future_release(fut);
    return 0;
}

static void test_wait_for_race_condition(void) { CHECK_EQ(run(wf_race_main, NULL), 0); }

/* test_wait_for_cancellation_race_condition / test_wait_for_cancel_suppressed
 * (GH-86296, WF2: an inner that swallows the cancellation and returns a value:
 * that value is returned) */
static int return_42(void *arg, weft_value_t *out)
{
    (void)arg;
    int rc = weft_sleep(10);
    CHECK_EQ(rc, WEFT_ECANCELED);
    out->i = 42;
    return 0;
}

static int wf_suppressed_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_value_t v;
    CHECK_EQ(weft_wait_for_coro(return_42, NULL, 0.02, &v), 0);
    CHECK_EQ(v.i, 42);
    weft_task_t *t = spawn(return_42, NULL);
    CHECK_EQ(weft_wait_for(t, 0.02, &v), 0);
    CHECK_EQ(v.i, 42);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_cancel_suppressed(void) { CHECK_EQ(run(wf_suppressed_main, NULL), 0); }

/* test_wait_for_waits_for_task_cancellation (and _w_timeout_0): TIMEDOUT only
 * once the inner task really finished its cleanup */
static int task_done_flag;
static int slow_inner(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_sleep(10);
    if (rc == WEFT_ECANCELED)
        weft_sleep(0.02);
    task_done_flag = 1;
    return rc;
}

static int wf_waits_main(void *arg, weft_value_t *out)
{
    (void)out;
    double timeout = arg ? 0 : 0.01;
    task_done_flag = 0;
    weft_task_t *inner = spawn(slow_inner, NULL);
    CHECK_EQ(weft_sleep(0.005), 0);
    CHECK_EQ(weft_wait_for(inner, timeout, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(task_done_flag, 1);
    weft_task_release(inner);
    return 0;
}

static void test_wait_for_waits_for_task_cancellation(void)
{
    CHECK_EQ(run(wf_waits_main, NULL), 0);
    CHECK_EQ(run(wf_waits_main, (void *)1), 0);
}

/* test_wait_for_reraises_exception_during_cancellation */
static int raise_in_finally(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_sleep(0.2);
    return weft_raise(USER_ERR, "FooException");
}

static int wf_reraise_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *inner = spawn(raise_in_finally, NULL);
    CHECK_EQ(weft_wait_for(inner, 0.01, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "FooException");
    weft_task_release(inner);
    return 0;
}

static void test_wait_for_reraises_exception_during_cancellation(void) { CHECK_EQ(run(wf_reraise_main, NULL), 0); }

/* test_cancel_blocking_wait_for / test_cancel_wait_for (bpo-23219, WF4):
 * cancelling the wait also cancels the task */
static int blocking_coroutine(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f = newf();
    int rc = weft_await(f, NULL);
    weft_future_release(f);
    return rc;
}

static double cw_timeout;
static int wait_for_task(void *arg, weft_value_t *out) { return weft_wait_for(arg, cw_timeout, out); }

static int cancel_task_cb(void *arg)
{
    weft_task_cancel(arg, NULL);
    return 0;
}

static int cancel_wait_for_main(void *arg, weft_value_t *out)
{
    (void)out;
    cw_timeout = arg ? 60.0 : WEFT_NO_TIMEOUT;
    weft_task_t *task = spawn(blocking_coroutine, NULL);
    weft_task_t *wait = spawn(wait_for_task, task);
    weft_call_soon(weft_running_loop(), cancel_task_cb, wait, NULL);
    CHECK_EQ(weft_await(wait, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(task));
    weft_task_release(task);
    weft_task_release(wait);
    return 0;
}

static void test_cancel_wait_for(void)
{
    CHECK_EQ(run(cancel_wait_for_main, NULL), 0);
    CHECK_EQ(run(cancel_wait_for_main, (void *)1), 0);
}

/* test_wait_for_issue86296: the outer task gets cancelled and does not run
 * to completion even though the inner completed in the same cycle */
static int reached_end;
static int wf86296(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_wait_for(arg, 100, NULL);
    if (rc < 0)
        return rc;
    if ((rc = weft_sleep(1)) < 0)
        return rc;
    reached_end = 1;
    return 0;
}

static int issue86296_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    reached_end = 0;
    weft_task_t *inner = spawn(coro_done, NULL);
    weft_task_t *task = spawn(wf86296, inner);
    CHECK(!weft_future_done(task));
    CHECK_EQ(weft_yield(), 0);
    weft_task_cancel(task, NULL);
    CHECK_EQ(weft_await(task, NULL), WEFT_ECANCELED);
    CHECK(weft_future_done(inner));
    weft_value_t v;
    CHECK_EQ(weft_await(inner, &v), 0);
    CHECK_STR(v.p, "done");
    CHECK_EQ(reached_end, 0);
    weft_task_release(inner);
    weft_task_release(task);
    return 0;
}

static void test_wait_for_issue86296(void) { CHECK_EQ(run(issue86296_main, NULL), 0); }

/* T5 "result lost" (tasks.py __wakeup): the waiting task is cancelled after
 * the future completed but before it resumed: CANCELLED, and the future's
 * exception counts as retrieved (no "never retrieved" report) */
static int wf_forever(void *arg, weft_value_t *out) { return weft_wait_for(arg, 5.0, out); }

static int wf_lost_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    watch_reports();
    weft_future_t *f = newf();
    weft_task_t *w = spawn(wf_forever, f);
    settle(1);
    weft_future_set_exception(f, USER_ERR, "lost");   /* wakes w */
    CHECK_EQ(weft_task_cancel(w, NULL), 1);            /* before w runs */
    CHECK_EQ(weft_await(w, NULL), WEFT_ECANCELED);
    CHECK_EQ(weft_task_cancelling(w), 1);
    weft_task_release(w);
    weft_future_release(f);
    settle(2);
    CHECK_EQ(reports, 0);
    return 0;
}

static void test_wait_for_cancel_after_completion(void) { CHECK_EQ(run(wf_lost_main, NULL), 0); }

/* test_asyncio_wait_for_timeout with a coroutine (WF2): the coroutine is
 * interrupted and has exited when TIMEDOUT returns; the count is restored */
static int wf_coro_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    foo_running = 0;
    CHECK_EQ(weft_wait_for_coro(foo, NULL, 0.02, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(foo_running, 0);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_asyncio_wait_for_timeout(void) { CHECK_EQ(run(wf_coro_timeout_main, NULL), 0); }

/* WaitForShieldTests.test_zero_timeout / test_none_timeout / test_shielded_timeout */
static int sleep_done(void *arg, weft_value_t *out)
{
    double d = *(double *)arg;
    int rc = weft_sleep(d);
    if (rc < 0)
        return rc;
    out->p = "done";
    return 0;
}

static int wf_shield_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    double d1 = 0.01, d2 = 0.05;
    /* zero timeout: the shield's outer is cancelled, the task runs on */
    weft_task_t *task = spawn(sleep_done, &d1);
    weft_future_t *sh;
    CHECK_EQ(weft_shield(task, &sh), 0);
    CHECK_EQ(weft_wait_for(sh, 0, NULL), WEFT_ETIMEDOUT);
    CHECK(!weft_future_done(task));
    CHECK(weft_future_cancelled(sh));
    CHECK_EQ(weft_sleep(0.05), 0);
    CHECK(weft_future_done(task));
    weft_future_release(sh);
    weft_task_release(task);
    /* no timeout */
    task = spawn(sleep_done, &d1);
    CHECK_EQ(weft_shield(task, &sh), 0);
    CHECK_EQ(weft_wait_for(sh, WEFT_NO_TIMEOUT, NULL), 0);
    CHECK(weft_future_done(task));
    weft_future_release(sh);
    weft_task_release(task);
    /* shielded timeout */
    task = spawn(sleep_done, &d2);
    CHECK_EQ(weft_shield(task, &sh), 0);
    CHECK_EQ(weft_wait_for(sh, 0.01, NULL), WEFT_ETIMEDOUT);
    CHECK(!weft_future_done(task));
    weft_value_t v;
    CHECK_EQ(weft_await(task, &v), 0);
    CHECK_STR(v.p, "done");
    weft_future_release(sh);
    weft_task_release(task);
    return 0;
}

static void test_wait_for_shield(void) { CHECK_EQ(run(wf_shield_main, NULL), 0); }

/* ================================ as_completed ================================ */

/* test_as_completed: results in completion order */
static int ac_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t a = { .delay = 0.01, .value = 'a' }, b = { .delay = 0.01, .value = 'b' }, c = { .delay = 0.05, .value = 'c' };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(job_fn, &b), WEFT_AW_CORO(job_fn, &c), WEFT_AW_CORO(job_fn, &a) };
    weft_as_completed_t *it;
    CHECK_EQ(weft_as_completed_init_aw(&it, aws, 3, WEFT_NO_TIMEOUT), 0);
    CHECK_EQ(weft_as_completed_remaining(it), 3);
    int64_t res[3];
    for (int i = 0; weft_as_completed_remaining(it); i++) {
        weft_value_t v;
        weft_future_t *which;
        CHECK_EQ(weft_as_completed_next(it, &v, &which), 0);
        CHECK(which != NULL);
        res[i] = v.i;
    }
    CHECK((res[0] == 'a' && res[1] == 'b') || (res[0] == 'b' && res[1] == 'a'));
    CHECK_EQ(res[2], 'c');
    CHECK_EQ(weft_as_completed_next(it, NULL, NULL), WEFT_ESTOPASYNCITER);
    weft_as_completed_free(it);
    return 0;
}

static void test_as_completed(void) { CHECK_EQ(run(ac_main, NULL), 0); }

/* test_as_completed_with_timeout (AC2: after the deadline every remaining
 * step is TIMEDOUT; nothing is cancelled) */
static int ac_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t ja = { .delay = 0.01, .value = 'a' }, jb = { .delay = 0.6, .value = 'b' };
    weft_task_t *a = spawn(job_fn, &ja), *b = spawn(job_fn, &jb);
    weft_future_t *fs[] = { a, b };
    weft_as_completed_t *it;
    CHECK_EQ(weft_as_completed_init(&it, fs, 2, 0.03), 0);
    weft_value_t v;
    CHECK_EQ(weft_as_completed_next(it, &v, NULL), 0);
    CHECK_EQ(v.i, 'a');
    double t0 = now();
    weft_future_t *which = (weft_future_t *)1;
    CHECK_EQ(weft_as_completed_next(it, &v, &which), WEFT_ETIMEDOUT);
    CHECK(which == NULL);
    (void)t0;
    CHECK(!weft_future_done(b));   /* the deadline, not b's end */
    CHECK_EQ(weft_as_completed_remaining(it), 0);
    weft_as_completed_free(it);
    CHECK(!weft_future_cancelled(b));
    CHECK_EQ(weft_await(b, NULL), 0);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_as_completed_with_timeout(void) { CHECK_EQ(run(ac_timeout_main, NULL), 0); }

/* test_as_completed_with_unused_timeout */
static int ac_unused_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t ja = { .delay = 0.01, .value = 'a' };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(job_fn, &ja) };
    weft_as_completed_t *it;
    CHECK_EQ(weft_as_completed_init_aw(&it, aws, 1, 1.0), 0);
    weft_value_t v;
    CHECK_EQ(weft_as_completed_next(it, &v, NULL), 0);
    CHECK_EQ(v.i, 'a');
    weft_as_completed_free(it);
    return 0;
}

static void test_as_completed_with_unused_timeout(void) { CHECK_EQ(run(ac_unused_timeout_main, NULL), 0); }

/* test_as_completed_duplicate_coroutines (duplicates count once), errors come
 * back as the step's outcome */
static int ac_dup_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *c = spawn(value_fn, (void *)(intptr_t)1);
    job_t jf = { .delay = 0, .code = USER_ERR, .msg = "bad" };
    weft_awaitable_t aws[] = { WEFT_AW(c), WEFT_AW(c), WEFT_AW_CORO(job_fn, &jf) };
    weft_as_completed_t *it;
    CHECK_EQ(weft_as_completed_init_aw(&it, aws, 3, WEFT_NO_TIMEOUT), 0);
    CHECK_EQ(weft_as_completed_remaining(it), 2);
    int ok = 0, err = 0;
    while (weft_as_completed_remaining(it)) {
        int rc = weft_as_completed_next(it, NULL, NULL);
        if (rc == 0)
            ok++;
        else if (rc == USER_ERR && strcmp(weft_error_message(), "bad") == 0)
            err++;
    }
    CHECK_EQ(ok, 1);
    CHECK_EQ(err, 1);
    weft_as_completed_free(it);
    weft_task_release(c);
    /* an empty set yields nothing */
    CHECK_EQ(weft_as_completed_init(&it, NULL, 0, 1.0), 0);
    CHECK_EQ(weft_as_completed_remaining(it), 0);
    weft_as_completed_free(it);
    return 0;
}

static void test_as_completed_duplicate_coroutines(void) { CHECK_EQ(run(ac_dup_main, NULL), 0); }

/* cancelling the iterating task: CANCELLED, the step is not consumed, the
 * futures are not cancelled; freeing early leaves the futures running */
static int ac_iter(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_as_completed_next(arg, NULL, NULL);
}

static int ac_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f = newf();
    weft_as_completed_t *it;
    CHECK_EQ(weft_as_completed_init(&it, &f, 1, 10), 0);
    weft_task_t *t = spawn(ac_iter, it);
    settle(1);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(!weft_future_done(f));
    CHECK_EQ(weft_as_completed_remaining(it), 1);
    weft_as_completed_free(it);
    weft_future_set_result(f, WEFT_VALUE_INT(1));
    settle(2);
    weft_future_release(f);
    weft_task_release(t);
    return 0;
}

static void test_as_completed_cancel(void) { CHECK_EQ(run(ac_cancel_main, NULL), 0); }

/* ================================ shield ================================ */

/* test_shield_result */
static int shield_result_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *inner = newf(), *outer;
    CHECK_EQ(weft_shield(inner, &outer), 0);
    CHECK(outer != inner);
    weft_future_set_result(inner, WEFT_VALUE_INT(42));
    weft_value_t v;
    CHECK_EQ(weft_await(outer, &v), 0);
    CHECK_EQ(v.i, 42);
    weft_future_release(outer);
    weft_future_release(inner);
    return 0;
}

static void test_shield_result(void) { CHECK_EQ(run(shield_result_main, NULL), 0); }

/* test_shield_exception */
static int shield_exception_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *inner = newf(), *outer;
    CHECK_EQ(weft_shield(inner, &outer), 0);
    settle(1);
    weft_future_set_exception(inner, USER_ERR, "expected");
    settle(1);
    int code = 0;
    const char *msg = NULL;
    CHECK_EQ(weft_future_exception(outer, &code, &msg), 0);
    CHECK_EQ(code, USER_ERR);
    CHECK_STR(msg, "expected");
    weft_future_release(outer);
    weft_future_result(inner, NULL);
    weft_future_release(inner);
    return 0;
}

static void test_shield_exception(void) { CHECK_EQ(run(shield_exception_main, NULL), 0); }

/* test_shield_cancel_inner (S3) / test_shield_cancel_outer (S2) */
static int shield_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *inner = newf(), *outer;
    CHECK_EQ(weft_shield(inner, &outer), 0);
    settle(1);
    weft_future_cancel(inner, NULL);
    settle(1);
    CHECK(weft_future_cancelled(outer));
    weft_future_release(outer);
    weft_future_release(inner);

    inner = newf();
    CHECK_EQ(weft_shield(inner, &outer), 0);
    settle(1);
    weft_future_cancel(outer, NULL);
    settle(1);
    CHECK(weft_future_cancelled(outer));
    CHECK(!weft_future_done(inner));
    CHECK_EQ(inner->ncb, 0);   /* the shield detached its callback from inner */
    weft_future_set_result(inner, WEFT_VALUE_INT(1));   /* nobody listens any more */
    settle(1);
    weft_future_release(outer);
    weft_future_release(inner);
    return 0;
}

static void test_shield_cancel(void) { CHECK_EQ(run(shield_cancel_main, NULL), 0); }

/* test_shield_shortcut (S1) */
static int shield_shortcut_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fut = newf(), *outer;
    weft_future_set_result(fut, WEFT_VALUE_INT(42));
    CHECK_EQ(weft_shield(fut, &outer), 0);
    CHECK(outer == fut);
    weft_value_t v;
    CHECK_EQ(weft_await(outer, &v), 0);
    CHECK_EQ(v.i, 42);
    weft_future_release(outer);
    weft_future_release(fut);
    return 0;
}

static void test_shield_shortcut(void) { CHECK_EQ(run(shield_shortcut_main, NULL), 0); }

/* test_shield_effect: cancelling the awaiting task does not affect inner */
static int proof;
static weft_future_t *se_waiter;
static int se_inner(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_await(se_waiter, NULL);
    if (rc < 0)
        return rc;
    proof += 1;
    return 0;
}

static int se_outer(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_await_shielded(arg, NULL);
    if (rc < 0)
        return rc;
    proof += 100;
    return 0;
}

static int shield_effect_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    proof = 0;
    se_waiter = newf();
    weft_task_t *inner = spawn(se_inner, NULL);
    weft_task_t *f = spawn(se_outer, inner);
    settle(1);
    weft_task_cancel(f, NULL);
    CHECK_EQ(weft_await(f, NULL), WEFT_ECANCELED);
    weft_future_set_result(se_waiter, WEFT_VALUE_INT(0));
    settle(2);
    CHECK_EQ(proof, 1);
    weft_task_release(f);
    weft_task_release(inner);
    weft_future_release(se_waiter);
    return 0;
}

static void test_shield_effect(void) { CHECK_EQ(run(shield_effect_main, NULL), 0); }

/* test_shield_gather: shield(gather(c1, c2)).cancel() leaves the gather alone */
static int shield_gather_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *c1 = newf(), *c2 = newf(), *parent, *outer;
    weft_awaitable_t aws[] = { WEFT_AW(c1), WEFT_AW(c2) };
    CHECK_EQ(weft_gather_future(aws, 2, NULL, &parent), 0);
    CHECK_EQ(weft_shield(parent, &outer), 0);
    settle(1);
    weft_future_cancel(outer, NULL);
    settle(1);
    CHECK(weft_future_cancelled(outer));
    weft_future_set_result(c1, WEFT_VALUE_INT(1));
    weft_future_set_result(c2, WEFT_VALUE_INT(2));
    settle(2);
    weft_value_t v;
    CHECK_EQ(weft_future_result(parent, &v), 0);
    const weft_gather_list_t *l = v.p;
    CHECK_EQ(l->values[0].i, 1);
    CHECK_EQ(l->values[1].i, 2);
    weft_future_release(outer);
    weft_future_release(parent);
    weft_future_release(c1);
    weft_future_release(c2);
    return 0;
}

static void test_shield_gather(void) { CHECK_EQ(run(shield_gather_main, NULL), 0); }

int main(int argc, char **argv)
{
    RUN(test_wait);
    RUN(test_wait_duplicate_coroutines);
    RUN(test_wait_errors);
    RUN(test_wait_first_completed);
    RUN(test_wait_really_done);
    RUN(test_wait_first_exception);
    RUN(test_wait_with_timeout);
    RUN(test_wait_cancelled);
    RUN(test_wait_for);
    RUN(test_wait_for_zero_future_done);
    RUN(test_wait_for_zero_coroutine_not_started);
    RUN(test_wait_for_zero);
    RUN(test_wait_for_blocking);
    RUN(test_wait_for_race_condition);
    RUN(test_wait_for_cancel_suppressed);
    RUN(test_wait_for_waits_for_task_cancellation);
    RUN(test_wait_for_reraises_exception_during_cancellation);
    RUN(test_cancel_wait_for);
    RUN(test_wait_for_issue86296);
    RUN(test_asyncio_wait_for_timeout);
    RUN(test_wait_for_cancel_after_completion);
    RUN(test_wait_for_shield);
    RUN(test_as_completed);
    RUN(test_as_completed_with_timeout);
    RUN(test_as_completed_with_unused_timeout);
    RUN(test_as_completed_duplicate_coroutines);
    RUN(test_as_completed_cancel);
    RUN(test_shield_result);
    RUN(test_shield_exception);
    RUN(test_shield_cancel);
    RUN(test_shield_shortcut);
    RUN(test_shield_effect);
    RUN(test_shield_gather);
    return 0;
}
