/* Cancellation exactly as asyncio 3.12 (asyncio_semantics.md §2, T5-T7):
 * requests, messages, cancelling()/uncancel(), cascades down await chains,
 * the "result lost" race, swallowed cancellations, and delivery at every
 * await point of the core. Cases ported from CPython name their source
 * (Lib/test/test_asyncio/test_tasks.py, 3.12); [V] items were checked on
 * CPython 3.12.1 (research/experiments/e1.py, e2.py). */
#include "check.h"

#include <weft.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

static double now(void) { return weft_loop_time(weft_running_loop()); }

static void run_main(weft_coro_fn fn, void *arg)
{
    weft_value_t v = WEFT_VALUE_INT(0);
    CHECK_EQ(weft_run(fn, arg, NULL, &v), 0);
}

/* What a coroutine saw at its await. */
struct seen {
    int rc;
    char msg[64];
    int cancelling;
    int steps;
};

static void record(struct seen *s, int rc)
{
    s->rc = rc;
    const char *m = weft_error_message();
    snprintf(s->msg, sizeof s->msg, "%s", m ? m : "(null)");
    s->cancelling = weft_task_cancelling(weft_current_task());
}

static int body_ran;
static int mark_body(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    body_ran = 1;
    return 0;
}

/* ---- before the first step --------------------------------------------------------- */

static int before_start_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    body_ran = 0;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, mark_body, NULL, NULL), 0);
    CHECK_EQ(weft_task_cancel(t, "early"), 1);
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK(!weft_future_done(t));   /* a request, not done yet */
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_EQ(body_ran, 0);         /* the body never started */
    CHECK(weft_future_cancelled(t));
    CHECK_EQ(weft_task_state(t), WEFT_TASK_DONE);
    CHECK_STR(weft_future_message(t), "early");
    CHECK_STR(weft_error_message(), "early");
    const char *msg = NULL;
    CHECK_EQ(weft_future_exception(t, NULL, &msg), WEFT_ECANCELED);
    CHECK_STR(msg, "early");
    CHECK_EQ(weft_task_cancel(t, "again"), 0);   /* done */
    weft_task_release(t);

    /* two requests before it starts: the last message wins (no _fut_waiter,
     * _cancel_message is overwritten) [V on 3.12.1: ('m2',)] */
    CHECK_EQ(weft_create_task(&t, mark_body, NULL, NULL), 0);
    CHECK_EQ(weft_task_cancel(t, "m1"), 1);
    CHECK_EQ(weft_task_cancel(t, "m2"), 1);
    CHECK_EQ(weft_task_cancelling(t), 2);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_EQ(body_ran, 0);
    CHECK_STR(weft_future_message(t), "m2");
    weft_task_release(t);
    return 0;
}

/* test_tasks.py: test_cancel_with_message_before_starting_task; e1.py cancel_before_start */
static void test_cancel_before_start(void) { run_main(before_start_main, NULL); }

/* ---- while sleeping -------------------------------------------------------------- */

static int sleeper(void *arg, weft_value_t *out)
{
    (void)out;
    struct seen *s = arg;
    int rc = weft_sleep(10);
    record(s, rc);
    return rc;
}

static int sleeping_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct seen s = { 0 };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, sleeper, &s, NULL), 0);
    CHECK_EQ(weft_yield(), 0);   /* let it start sleeping */
    double t0 = now();
    CHECK_EQ(weft_task_cancel(t, "stop"), 1);
    CHECK(!weft_future_done(t));
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(now() - t0 < 5);   /* the sleep ended early */
    CHECK_EQ(s.rc, WEFT_ECANCELED);
    CHECK_STR(s.msg, "stop");
    CHECK_EQ(s.cancelling, 1);
    CHECK(weft_future_cancelled(t));
    CHECK_STR(weft_future_message(t), "stop");
    CHECK_STR(weft_error_message(), "stop");
    CHECK_EQ(weft_task_cancel(t, NULL), 0);
    weft_task_release(t);
    return 0;
}

/* test_tasks.py: test_task_cancel_sleeping_task, test_sleep_cancel */
static void test_cancel_while_sleeping(void) { run_main(sleeping_main, NULL); }

/* ---- catching, uncancel, counts ------------------------------------------------------ */

static int uncancel_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct seen *s = arg;
    int rc = weft_sleep(10);
    CHECK_EQ(rc, WEFT_ECANCELED);
    s->cancelling = weft_task_cancelling(weft_current_task());
    CHECK_EQ(weft_task_uncancel(weft_current_task()), 0);
    s->steps = 1;
    rc = weft_sleep(10);   /* carries on after catching */
    s->rc = rc;
    return rc;
}

static int uncancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct seen s = { 0 };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, uncancel_coro, &s, NULL), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);   /* cancel the first sleep */
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK(!weft_future_cancelled(t));
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(s.cancelling, 1);
    CHECK_EQ(s.steps, 1);
    CHECK_EQ(weft_task_cancelling(t), 0);     /* after uncancel() */
    CHECK(!weft_future_done(t));              /* still running */
    CHECK_EQ(weft_task_cancel(t, NULL), 1);   /* cancel the second sleep */
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    CHECK_EQ(s.rc, WEFT_ECANCELED);
    CHECK_EQ(weft_task_uncancel(t), 0);
    CHECK_EQ(weft_task_uncancel(t), 0);       /* never below 0 */
    weft_task_release(t);
    return 0;
}

/* test_tasks.py: test_uncancel_basic */
static void test_uncancel(void) { run_main(uncancel_main, NULL); }

static int counts_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct seen s = { 0 };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, sleeper, &s, NULL), 0);
    CHECK_EQ(weft_task_cancelling(t), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t, "m1"), 1);
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK_EQ(weft_task_cancel(t, "m2"), 1);   /* every call counts */
    CHECK_EQ(weft_task_cancelling(t), 2);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_EQ(s.cancelling, 2);
    CHECK_STR(s.msg, "m1");   /* [V] one CancelledError, the first message */
    CHECK(weft_future_cancelled(t));
    CHECK_EQ(weft_task_cancel(t, "m3"), 0);   /* done: refused, not counted */
    CHECK_EQ(weft_task_cancelling(t), 2);
    weft_task_release(t);

    /* a task done with a result cannot be cancelled */
    CHECK_EQ(weft_create_task(&t, mark_body, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 0);
    CHECK_EQ(weft_task_cancelling(t), 0);
    CHECK(!weft_future_cancelled(t));
    CHECK_EQ(weft_future_result(t, NULL), 0);
    weft_task_release(t);
    return 0;
}

/* test_tasks.py: test_cancelling, test_cancel_yield (cancel() on a done task is False);
 * e1.py multi_cancel [V: cancelling() == 2, message 'm1'] */
static void test_cancelling_counts(void) { run_main(counts_main, NULL); }

/* ---- messages when waiting on a plain future ----------------------------------------- */

static int future_waiter(void *arg, weft_value_t *out)
{
    (void)out;
    struct seen *s = *(struct seen **)arg;
    weft_future_t *f = ((weft_future_t **)arg)[1];
    int rc = weft_await(f, NULL);
    record(s, rc);
    return rc;
}

static int two_msgs_future_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct seen s = { 0 };
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    void *pair[2] = { &s, f };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, future_waiter, pair, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_awaiting(t) == f);
    CHECK_EQ(weft_task_cancel(t, "m1"), 1);
    CHECK(weft_future_cancelled(f));   /* the awaited future is cancelled too */
    CHECK_STR(weft_future_message(f), "m1");
    CHECK_EQ(weft_task_cancel(t, "m2"), 1);
    CHECK_EQ(weft_task_cancelling(t), 2);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_EQ(s.rc, WEFT_ECANCELED);
    /* Python 3.12: the task sees ONE CancelledError('m1'): the second request
     * only sets _must_cancel, and __step keeps the CancelledError that the
     * cancelled _fut_waiter delivers (tasks.py __step: "if not
     * isinstance(exc, CancelledError): exc = self._make_cancelled_error()"). */
    CHECK_STR(s.msg, "m1");
    CHECK_STR(weft_future_message(t), "m1");
    weft_task_release(t);
    weft_future_release(f);
    return 0;
}

/* e1.py multi_cancel variant on a plain future [V on 3.12.1: sees ('m1',), cancelling 2] */
static void test_two_messages_on_future(void) { run_main(two_msgs_future_main, NULL); }

static int plain_future_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* cancelling the task cancels the plain future it awaits */
    struct seen s = { 0 };
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    void *pair[2] = { &s, f };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, future_waiter, pair, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t, "bye"), 1);
    CHECK(weft_future_cancelled(f));
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    CHECK_STR(s.msg, "bye");
    CHECK(weft_task_awaiting(t) == NULL);
    weft_task_release(t);
    weft_future_release(f);

    /* cancelling the future itself: the task gets WEFT_ECANCELED and, not
     * catching it, ends cancelled (test_cancel_inner_future) */
    memset(&s, 0, sizeof s);
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    pair[1] = f;
    CHECK_EQ(weft_create_task(&t, future_waiter, pair, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_cancel(f, "inner"), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    CHECK_EQ(s.rc, WEFT_ECANCELED);
    CHECK_STR(s.msg, "inner");
    CHECK_EQ(s.cancelling, 0);   /* nobody cancelled the task itself */
    weft_task_release(t);
    weft_future_release(f);

    /* both (test_cancel_both_task_and_inner_future) */
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    pair[1] = f;
    CHECK_EQ(weft_create_task(&t, future_waiter, pair, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_cancel(f, NULL), 1);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_done(t));
    CHECK(weft_future_cancelled(f));
    CHECK(weft_future_cancelled(t));
    weft_task_release(t);
    weft_future_release(f);
    return 0;
}

/* test_tasks.py: test_task_cancel_waiter_future, test_cancel_inner_future,
 * test_cancel_both_task_and_inner_future; asyncio_semantics.md T5 [V] */
static void test_cancel_awaiting_plain_future(void) { run_main(plain_future_main, NULL); }

/* ---- the "result lost" race (T5) -------------------------------------------------- */

static int result_lost_coro(void *arg, weft_value_t *out)
{
    weft_value_t v = WEFT_VALUE_INT(0);
    int rc = weft_await(arg, &v);
    if (rc == WEFT_ECANCELED) {
        out->i = -1;   /* "CancelledError instead of result" */
        return 0;
    }
    out->i = v.i;
    return rc;
}

static int result_lost_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, result_lost_coro, f, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), 0);   /* the task's wakeup is now pending */
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    weft_value_t v;
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, -1);                 /* it got the cancellation, not the result */
    CHECK(!weft_future_cancelled(f));  /* the future keeps its result */
    CHECK_EQ(weft_future_result(f, &v), 0);
    CHECK_EQ(v.i, 1);
    CHECK(!weft_future_cancelled(t)); /* it swallowed the cancellation */
    CHECK_EQ(weft_task_cancelling(t), 1);
    weft_task_release(t);
    weft_future_release(f);
    return 0;
}

/* e2.py cancel_after_done_before_wakeup [V: "CancelledError instead of result"]; T5 */
static void test_cancel_result_lost(void) { run_main(result_lost_main, NULL); }

/* ---- swallowing (T7) -------------------------------------------------------------- */

static weft_future_t *fut1, *fut2, *fut3;

static int catching_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    CHECK_EQ(weft_await(fut1, NULL), 0);
    int rc = weft_await(fut2, NULL);
    if (rc == WEFT_ECANCELED) {
        out->i = 42;
        return 0;
    }
    return rc;
}

static int ignoring_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    CHECK_EQ(weft_await(fut1, NULL), 0);
    CHECK_EQ(weft_await(fut2, NULL), WEFT_ECANCELED);   /* ignored */
    return weft_await(fut3, out);
}

static int swallow_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    weft_value_t v;

    /* test_cancel_task_catching */
    CHECK_EQ(weft_future_new(NULL, &fut1), 0);
    CHECK_EQ(weft_future_new(NULL, &fut2), 0);
    CHECK_EQ(weft_create_task(&t, catching_coro, NULL, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_awaiting(t) == fut1);
    CHECK_EQ(weft_future_set_result(fut1, WEFT_VALUE_INT(0)), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_awaiting(t) == fut2);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK(weft_future_cancelled(fut2));
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK(!weft_future_cancelled(t));
    CHECK_EQ(weft_task_cancelling(t), 1);   /* catching does not reset the count (T6) */
    weft_task_release(t);
    weft_future_release(fut1);
    weft_future_release(fut2);

    /* test_cancel_task_ignoring */
    CHECK_EQ(weft_future_new(NULL, &fut1), 0);
    CHECK_EQ(weft_future_new(NULL, &fut2), 0);
    CHECK_EQ(weft_future_new(NULL, &fut3), 0);
    CHECK_EQ(weft_create_task(&t, ignoring_coro, NULL, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_set_result(fut1, WEFT_VALUE_INT(0)), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_awaiting(t) == fut2);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK(weft_future_cancelled(fut2));
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_awaiting(t) == fut3);
    CHECK_EQ(weft_future_set_result(fut3, WEFT_VALUE_INT(42)), 0);
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK(!weft_future_cancelled(fut3));
    CHECK(!weft_future_cancelled(t));
    weft_task_release(t);
    weft_future_release(fut1);
    weft_future_release(fut2);
    weft_future_release(fut3);
    return 0;
}

/* test_tasks.py: test_cancel_task_catching, test_cancel_task_ignoring; T7 */
static void test_cancel_swallowed(void) { run_main(swallow_main, NULL); }

static int swallow_sleep_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    if (weft_sleep(10) == WEFT_ECANCELED) {
        out->i = 99;
        return 0;
    }
    return -1;
}

static int returns_cancelled_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_yield(), 0);
    return WEFT_ECANCELED;   /* raise CancelledError on its own */
}

static int raise_cancel_msg_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_yield(), 0);
    return weft_raise(WEFT_ECANCELED, "custom %d", 3);   /* raise CancelledError("custom 3") */
}

static int t7_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    weft_value_t v;
    CHECK_EQ(weft_create_task(&t, swallow_sleep_coro, NULL, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t, "x"), 1);
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 99);
    CHECK(!weft_future_cancelled(t));
    CHECK(weft_future_message(t) == NULL);
    weft_task_release(t);

    CHECK_EQ(weft_create_task(&t, returns_cancelled_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));   /* ends cancelled without any cancel() */
    CHECK_EQ(weft_task_cancelling(t), 0);
    weft_task_release(t);

    /* with its own message, which reaches the awaiter */
    CHECK_EQ(weft_create_task(&t, raise_cancel_msg_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    CHECK_STR(weft_future_message(t), "custom 3");
    CHECK_STR(weft_error_message(), "custom 3");
    weft_task_release(t);
    return 0;
}

/* asyncio_semantics.md T7 */
static void test_swallow_and_self_raise(void) { run_main(t7_main, NULL); }

/* ---- cascade through awaited tasks -------------------------------------------------- */

struct cascade {
    weft_task_t *inner;
    struct seen inner_saw;
    int inner_cleanup_done;
    int swallow;   /* inner returns a value instead of re-raising */
};

static int cascade_inner(void *arg, weft_value_t *out)
{
    struct cascade *c = arg;
    int rc = weft_sleep(10);
    record(&c->inner_saw, rc);
    if (rc == WEFT_ECANCELED) {
        CHECK_EQ(weft_sleep(0.02), 0);   /* slow cleanup */
        c->inner_cleanup_done = 1;
        if (c->swallow) {
            out->i = 7;
            return 0;
        }
    }
    return rc;
}

static int cascade_outer(void *arg, weft_value_t *out)
{
    struct cascade *c = arg;
    CHECK_EQ(weft_create_task(&c->inner, cascade_inner, c, NULL), 0);
    return weft_await(c->inner, out);
}

static int cascade_main(void *arg, weft_value_t *out)
{
    (void)out;
    struct cascade c = { .swallow = (int)(intptr_t)arg };
    weft_task_t *outer;
    CHECK_EQ(weft_create_task(&outer, cascade_outer, &c, NULL), 0);
    CHECK_EQ(weft_yield(), 0);   /* outer created inner and awaits it */
    CHECK_EQ(weft_yield(), 0);   /* inner sleeps */
    CHECK(weft_task_awaiting(outer) == c.inner);
    CHECK_EQ(weft_task_cancel(outer, "cas"), 1);
    CHECK_EQ(weft_task_cancelling(outer), 1);
    CHECK_EQ(weft_task_cancelling(c.inner), 1);   /* cancelled down the chain */
    CHECK_EQ(weft_sleep(0.005), 0);
    CHECK_EQ(c.inner_saw.rc, WEFT_ECANCELED);
    CHECK_STR(c.inner_saw.msg, "cas");
    CHECK(!c.inner_cleanup_done);
    CHECK(!weft_future_done(c.inner));
    CHECK(!weft_future_done(outer));   /* the outer waits until the inner is done */
    CHECK_EQ(weft_task_state(outer), WEFT_TASK_SUSPENDED);
    CHECK(weft_task_awaiting(outer) == c.inner);
    weft_value_t v = WEFT_VALUE_INT(0);
    int rc = weft_await(outer, &v);
    CHECK(c.inner_cleanup_done);
    if (c.swallow) {
        /* the outer's cancel "took" through the inner, which returned a value:
         * the outer gets that value and is not cancelled [V on 3.12.1] */
        CHECK_EQ(rc, 0);
        CHECK_EQ(v.i, 7);
        CHECK(!weft_future_cancelled(outer));
        CHECK(!weft_future_cancelled(c.inner));
    } else {
        CHECK_EQ(rc, WEFT_ECANCELED);
        CHECK_STR(weft_error_message(), "cas");
        CHECK(weft_future_cancelled(outer));
        CHECK(weft_future_cancelled(c.inner));
    }
    weft_task_release(c.inner);
    weft_task_release(outer);
    return 0;
}

/* test_tasks.py: test_yield_future_passes_cancel; asyncio_semantics.md T5 (cascade) */
static void test_cancel_cascade(void)
{
    run_main(cascade_main, (void *)(intptr_t)0);
    run_main(cascade_main, (void *)(intptr_t)1);
}

static int outer_of_unstarted(void *arg, weft_value_t *out)
{
    weft_task_t **inner = arg;
    CHECK_EQ(weft_create_task(inner, mark_body, NULL, NULL), 0);
    return weft_await(*inner, out);   /* suspends before the inner ever ran */
}

static int cascade_unstarted_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    body_ran = 0;
    weft_task_t *inner = NULL, *outer;
    /* eager: the outer creates the inner and is suspended on it before the
     * inner's first step */
    CHECK_EQ(weft_create_task(&outer, outer_of_unstarted, &inner, &(weft_task_opts_t){ .eager_start = true }), 0);
    CHECK(inner != NULL);
    CHECK_EQ(weft_task_state(inner), WEFT_TASK_NEW);
    CHECK(weft_task_awaiting(outer) == inner);
    CHECK_EQ(weft_task_cancel(outer, "down"), 1);
    CHECK_EQ(weft_task_cancelling(inner), 1);
    CHECK_EQ(weft_await(outer, NULL), WEFT_ECANCELED);
    CHECK_EQ(body_ran, 0);   /* the inner was cancelled before its first step */
    CHECK(weft_future_cancelled(inner));
    CHECK(weft_future_cancelled(outer));
    CHECK_STR(weft_future_message(inner), "down");
    CHECK_STR(weft_error_message(), "down");
    weft_task_release(inner);
    weft_task_release(outer);
    return 0;
}

/* asyncio_semantics.md T5 (cascade) + [V] cancel before the first step */
static void test_cancel_cascade_unstarted(void) { run_main(cascade_unstarted_main, NULL); }

static int sleep_inf_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_sleep(INFINITY);
}

static int sleep_inf_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, sleep_inf_coro, NULL, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    weft_task_release(t);
    return 0;
}

/* an infinite sleep is cancellable */
static void test_cancel_infinite_sleep(void) { run_main(sleep_inf_main, NULL); }

/* ---- self-cancellation ----------------------------------------------------------- */

static int self_sleep_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 12;
    CHECK_EQ(weft_task_cancel(weft_current_task(), "self"), 1);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 1);
    CHECK(!weft_future_done(weft_current_task()));
    double t0 = now();
    int rc = weft_sleep(100);   /* cancelled at once */
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK(now() - t0 < 5);
    CHECK_STR(weft_error_message(), "self");
    return rc;
}

static int cancel_at_end_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    CHECK_EQ(weft_task_cancel(weft_current_task(), NULL), 1);
    out->i = 12;
    return 0;   /* returns right after the request: ends cancelled (T3) */
}

static weft_future_t *nested_fut;
static int nested_wait(void *arg, weft_value_t *out)
{
    (void)arg;
    return weft_await(nested_fut, out);
}

static int cancel_awaited_coro(void *arg, weft_value_t *out)
{
    weft_task_t **nested = arg;
    CHECK_EQ(weft_create_task(nested, nested_wait, NULL, NULL), 0);
    CHECK_EQ(weft_sleep(0), 0);
    CHECK_EQ(weft_task_cancel(weft_current_task(), NULL), 1);
    /* blocks on the nested task, which is cancelled at once */
    return weft_await(*nested, out);
}

static int self_done_fut_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    weft_future_t *d;
    CHECK_EQ(weft_future_new(NULL, &d), 0);
    CHECK_EQ(weft_future_set_result(d, WEFT_VALUE_INT(5)), 0);
    CHECK_EQ(weft_task_cancel(weft_current_task(), "self"), 1);
    weft_value_t v;
    /* awaiting a done future does not suspend: no cancellation there */
    CHECK_EQ(weft_await(d, &v), 0);
    CHECK_EQ(v.i, 5);
    weft_future_release(d);
    CHECK_EQ(weft_sleep(0), WEFT_ECANCELED);   /* delivered at the next suspension */
    CHECK_STR(weft_error_message(), "self");
    CHECK_EQ(weft_sleep(0), 0);                /* exactly once */
    out->i = 1;
    return 0;
}

static int self_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, self_sleep_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    CHECK_EQ(weft_task_cancel(t, NULL), 0);
    weft_task_release(t);

    CHECK_EQ(weft_create_task(&t, cancel_at_end_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    CHECK_EQ(weft_task_cancel(t, NULL), 0);
    weft_task_release(t);

    weft_task_t *nested = NULL;
    CHECK_EQ(weft_future_new(NULL, &nested_fut), 0);
    CHECK_EQ(weft_create_task(&t, cancel_awaited_coro, &nested, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    CHECK(nested != NULL);
    CHECK(weft_future_cancelled(nested));
    CHECK(weft_future_cancelled(nested_fut));
    weft_task_release(nested);
    weft_task_release(t);
    weft_future_release(nested_fut);

    weft_value_t v;
    CHECK_EQ(weft_create_task(&t, self_done_fut_coro, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 1);
    weft_task_release(t);
    return 0;
}

/* test_tasks.py: test_cancel_current_task, test_cancel_at_end, test_cancel_awaited_task */
static void test_self_cancel(void) { run_main(self_cancel_main, NULL); }

/* ---- every await point of the core ------------------------------------------------ */

enum { AP_FUTURE, AP_TASK, AP_SLEEP, AP_SLEEP0, AP_YIELD, AP_SLEEP_VALUE, AP_COUNT };
static const char *const ap_names[AP_COUNT] = { "await-future", "await-task", "sleep", "sleep0", "yield", "sleep_value" };

struct ap {
    int kind;
    bool self_cancel;       /* request the cancel before reaching the await point */
    weft_future_t *f;       /* AP_FUTURE */
    weft_task_t *t;         /* AP_TASK */
    struct seen saw;
    int after;              /* result of one more sleep(0) after the cancellation */
    int reached;
};

static int ap_target(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_sleep(10);
}

static int ap_await(struct ap *a)
{
    weft_value_t v = WEFT_VALUE_INT(0);
    switch (a->kind) {
    case AP_FUTURE: return weft_await(a->f, NULL);
    case AP_TASK: return weft_await(a->t, NULL);
    case AP_SLEEP: return weft_sleep(10);
    case AP_SLEEP0: return weft_sleep(0);
    case AP_YIELD: return weft_yield();
    default: {
        int rc = weft_sleep_value(10, WEFT_VALUE_INT(1), &v);
        CHECK_EQ(v.i, 0);   /* untouched when cancelled */
        return rc;
    }
    }
}

static int ap_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct ap *a = arg;
    if (a->self_cancel)
        CHECK_EQ(weft_task_cancel(weft_current_task(), ap_names[a->kind]), 1);
    a->reached = 1;
    int rc = ap_await(a);
    record(&a->saw, rc);
    a->after = weft_sleep(0);   /* the cancellation is delivered exactly once */
    return rc;
}

static int ap_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int self = 0; self <= 1; self++) {
        for (int k = 0; k < AP_COUNT; k++) {
            struct ap a = { .kind = k, .self_cancel = self };
            if (k == AP_FUTURE)
                CHECK_EQ(weft_future_new(NULL, &a.f), 0);
            if (k == AP_TASK)
                CHECK_EQ(weft_create_task(&a.t, ap_target, NULL, NULL), 0);
            weft_task_t *t;
            CHECK_EQ(weft_create_task(&t, ap_coro, &a, NULL), 0);
            if (!self) {
                CHECK_EQ(weft_yield(), 0);   /* t is now suspended at the await point */
                CHECK(a.reached);
                CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);
                CHECK_EQ(weft_task_cancel(t, ap_names[k]), 1);
            }
            int rc = weft_await(t, NULL);
            if (a.saw.rc != WEFT_ECANCELED)
                fprintf(stderr, "await point %s (self=%d): got %d\n", ap_names[k], self, a.saw.rc);
            CHECK_EQ(a.saw.rc, WEFT_ECANCELED);
            CHECK_STR(a.saw.msg, ap_names[k]);
            CHECK_EQ(a.saw.cancelling, 1);
            CHECK_EQ(a.after, 0);
            CHECK_EQ(rc, WEFT_ECANCELED);
            CHECK(weft_future_cancelled(t));
            if (k == AP_FUTURE) {
                CHECK(weft_future_cancelled(a.f));
                weft_future_release(a.f);
            }
            if (k == AP_TASK) {
                CHECK_EQ(weft_await(a.t, NULL), WEFT_ECANCELED);
                CHECK(weft_future_cancelled(a.t));
                weft_task_release(a.t);
            }
            weft_task_release(t);
        }
    }
    return 0;
}

/* test_tasks.py: test_cancel_yield, test_cancel_inner_future, test_sleep_cancel,
 * test_cancel_current_task: cancellation at every await point */
static void test_cancel_every_await_point(void) { run_main(ap_main, NULL); }

/* ---- eager tasks and cancellation ------------------------------------------------ */

static int finished_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 5;
    return 0;
}

static int blocking_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_sleep(10);
}

static int eager_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    const weft_task_opts_t eager = { .eager_start = true };
    weft_task_t *t;
    weft_value_t v;
    CHECK_EQ(weft_create_task(&t, finished_coro, NULL, &eager), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 0);   /* finished task can't be cancelled */
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 5);
    CHECK(!weft_future_cancelled(t));
    weft_task_release(t);

    CHECK_EQ(weft_create_task(&t, blocking_coro, NULL, &eager), 0);
    CHECK(!weft_future_done(t));
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    weft_task_release(t);
    return 0;
}

/* test_eager_task_factory.py: test_cancellation_after_eager_completion,
 * test_cancellation_after_eager_step_blocks */
static void test_cancel_eager(void) { run_main(eager_cancel_main, NULL); }

/* ---- cancelling from a plain callback --------------------------------------------- */

static int cancel_cb(void *arg)
{
    return weft_task_cancel(arg, "from-callback") == 1 ? 0 : -1;
}

static int from_cb_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct seen s = { 0 };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, sleeper, &s, NULL), 0);
    CHECK_EQ(weft_call_later(weft_running_loop(), 0.01, cancel_cb, t, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_STR(s.msg, "from-callback");
    weft_task_release(t);
    return 0;
}

static void test_cancel_from_callback(void) { run_main(from_cb_main, NULL); }

int main(int argc, char **argv)
{
    RUN(test_cancel_before_start);
    RUN(test_cancel_while_sleeping);
    RUN(test_uncancel);
    RUN(test_cancelling_counts);
    RUN(test_cancel_awaiting_plain_future);
    RUN(test_cancel_result_lost);
    RUN(test_cancel_swallowed);
    RUN(test_swallow_and_self_raise);
    RUN(test_cancel_cascade);
    RUN(test_cancel_cascade_unstarted);
    RUN(test_cancel_infinite_sleep);
    RUN(test_self_cancel);
    RUN(test_cancel_every_await_point);
    RUN(test_cancel_eager);
    RUN(test_cancel_from_callback);
    RUN(test_two_messages_on_future);
    return 0;
}
