/* Timeout scopes (asyncio.timeout / timeout_at). Each test names the CPython
 * 3.12 case it derives from (Lib/test/test_asyncio/test_timeouts.py, or
 * test_tasks.py) and the checklist item of asyncio_semantics.md §10 (TO1-TO8). */
#include "comb_util.h"

#include <math.h>
#include <time.h>

static double now(void) { return weft_loop_time(weft_running_loop()); }
static int cancelling(void) { return weft_task_cancelling(weft_current_task()); }

static void busy_sleep(double s)   /* block the loop thread (time.sleep) */
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

#define TEST(name)                                          \
    static int name##_main(void *arg, weft_value_t *out);   \
    static void name(void) { CHECK_EQ(run(name##_main, NULL), 0); } \
    static int name##_main(void *arg, weft_value_t *out)

#define UNUSED_ARGS \
    (void)arg;      \
    (void)out

/* test_timeout_basic (TO4, TO5, TO7) */
TEST(test_timeout_basic)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    int rc = weft_sleep(10);
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_EQ(weft_timeout_exit(&cm, rc), WEFT_ETIMEDOUT);
    CHECK(weft_timeout_expired(&cm));
    CHECK_EQ(weft_timeout_state(&cm), WEFT_TIMEOUT_EXPIRED);
    CHECK_EQ(cancelling(), 0);
    return 0;
}

/* test_timeout_at_basic (TO1) */
TEST(test_timeout_at_basic)
{
    UNUSED_ARGS;
    double deadline = now() + 0.01;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter_at(&cm, deadline), 0);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(10)), WEFT_ETIMEDOUT);
    CHECK(weft_timeout_expired(&cm));
    CHECK(weft_timeout_when(&cm) == deadline);
    return 0;
}

/* test_nested_timeouts (TO6: only the top-most affected scope converts) */
TEST(test_nested_timeouts)
{
    UNUSED_ARGS;
    double deadline = now() + 0.01;
    weft_timeout_t cm1, cm2;
    bool cancelled = false;
    CHECK_EQ(weft_timeout_enter_at(&cm1, deadline), 0);
    CHECK_EQ(weft_timeout_enter_at(&cm2, deadline), 0);
    int rc = weft_timeout_exit(&cm2, weft_sleep(10));
    if (rc == WEFT_ECANCELED)
        cancelled = true;
    rc = weft_timeout_exit(&cm1, rc);
    CHECK_EQ(rc, WEFT_ETIMEDOUT);
    CHECK(cancelled);
    CHECK(weft_timeout_expired(&cm1));
    CHECK(weft_timeout_expired(&cm2));
    CHECK_EQ(cancelling(), 0);
    return 0;
}

/* test_waiter_cancelled: the block itself sees CANCELLED */
TEST(test_waiter_cancelled)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    int rc = weft_sleep(10);
    bool cancelled = rc == WEFT_ECANCELED;
    CHECK_EQ(weft_timeout_exit(&cm, rc), WEFT_ETIMEDOUT);
    CHECK(cancelled);
    return 0;
}

/* test_timeout_not_called */
TEST(test_timeout_not_called)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 10), 0);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(0.01)), 0);
    double t1 = now();
    CHECK(!weft_timeout_expired(&cm));
    CHECK(weft_timeout_when(&cm) > t1);
    CHECK_EQ(weft_timeout_state(&cm), WEFT_TIMEOUT_FINISHED);
    return 0;
}

/* test_timeout_disabled / test_timeout_at_disabled (None is WEFT_TIMEOUT_NEVER;
 * NaN is a bad number, not None) */
TEST(test_timeout_disabled)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, WEFT_TIMEOUT_NEVER), 0);
    CHECK(weft_timeout_when(&cm) == WEFT_TIMEOUT_NEVER);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(0.01)), 0);
    CHECK(!weft_timeout_expired(&cm));
    CHECK_EQ(weft_timeout_enter_at(&cm, WEFT_TIMEOUT_NEVER), 0);
    CHECK(weft_timeout_when(&cm) == WEFT_TIMEOUT_NEVER);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(0.01)), 0);
    CHECK_EQ(weft_timeout_enter_at(&cm, NAN), WEFT_EINVAL);
    CHECK_EQ(weft_timeout_enter(&cm, NAN), WEFT_EINVAL);
    CHECK(!weft_timeout_expired(&cm));
    return 0;
}

/* test_timeout_zero / test_timeout_zero_sleep_zero */
TEST(test_timeout_zero)
{
    UNUSED_ARGS;
    for (int sleep_zero = 0; sleep_zero < 2; sleep_zero++) {
        double t0 = now();
        weft_timeout_t cm;
        CHECK_EQ(weft_timeout_enter(&cm, 0), 0);
        CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(sleep_zero ? 0 : 10)), WEFT_ETIMEDOUT);
        double t1 = now();
        CHECK(weft_timeout_expired(&cm));
        CHECK(t0 <= weft_timeout_when(&cm) && weft_timeout_when(&cm) <= t1);
    }
    return 0;
}

/* test_timeout_in_the_past_sleep_zero (TO8: a deadline already past fires at
 * the first suspension), with timeout_at; a negative relative delay is the
 * same (asyncio.timeout(-11)). */
TEST(test_timeout_in_the_past_sleep_zero)
{
    UNUSED_ARGS;
    double t0 = now();
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter_at(&cm, t0 - 11), 0);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(0)), WEFT_ETIMEDOUT);
    CHECK(weft_timeout_expired(&cm));
    CHECK(weft_timeout_when(&cm) <= t0);
    CHECK_EQ(weft_timeout_enter(&cm, -11), 0);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(0)), WEFT_ETIMEDOUT);
    CHECK(weft_timeout_when(&cm) <= t0);
    return 0;
}

/* test_foreign_exception_passed */
TEST(test_foreign_exception_passed)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&cm, USER_ERR), USER_ERR);
    CHECK(!weft_timeout_expired(&cm));
    return 0;
}

/* test_foreign_exception_on_timeout: another error raised because of the
 * cancellation passes through, and the count is still restored (TO5) */
static int crash(void)
{
    weft_sleep(1);
    return weft_raise(USER_ERR, "division by zero");
}

TEST(test_foreign_exception_on_timeout)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&cm, crash()), USER_ERR);
    CHECK(weft_timeout_expired(&cm));
    CHECK_EQ(cancelling(), 0);
    return 0;
}

/* test_foreign_cancel_doesnt_timeout_if_not_expired */
TEST(test_foreign_cancel_doesnt_timeout_if_not_expired)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 10), 0);
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(10)), WEFT_ECANCELED);
    CHECK(!weft_timeout_expired(&cm));
    weft_task_uncancel(weft_current_task());
    return 0;
}

/* test_outer_task_is_not_cancelled */
static int outer_fn(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.001), 0);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(10)), WEFT_ETIMEDOUT);
    return 0;
}

TEST(test_outer_task_is_not_cancelled)
{
    UNUSED_ARGS;
    weft_task_t *task;
    CHECK_EQ(weft_create_task(&task, outer_fn, NULL, NULL), 0);
    CHECK_EQ(weft_await(task, NULL), 0);
    CHECK(!weft_future_cancelled(task));
    CHECK(weft_future_done(task));
    CHECK_EQ(weft_task_cancelling(task), 0);
    weft_task_release(task);
    return 0;
}

/* test_nested_timeouts_concurrent / test_nested_timeouts_loop_busy: the outer
 * scope fires while the inner one is active (or both fire in the same
 * iteration): the inner passes CANCELLED on, the outer converts it */
TEST(test_nested_timeouts_concurrent)
{
    UNUSED_ARGS;
    weft_timeout_t outer, inner;
    CHECK_EQ(weft_timeout_enter(&outer, 0.002), 0);
    CHECK_EQ(weft_timeout_enter(&inner, 0.1), 0);
    busy_sleep(0.01);
    int rc = weft_timeout_exit(&inner, weft_sleep(1));
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_EQ(weft_timeout_exit(&outer, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(cancelling(), 0);
    return 0;
}

TEST(test_nested_timeouts_loop_busy)
{
    UNUSED_ARGS;
    double t0 = now();
    weft_timeout_t outer, inner;
    CHECK_EQ(weft_timeout_enter(&outer, 0.1), 0);
    CHECK_EQ(weft_timeout_enter(&inner, 0.01), 0);
    busy_sleep(0.1);
    int rc = weft_timeout_exit(&inner, weft_sleep(1));
    CHECK_EQ(rc, WEFT_ECANCELED);   /* both fired: the outer request is pending */
    rc = weft_timeout_exit(&outer, rc);
    CHECK_EQ(rc, WEFT_ETIMEDOUT);   /* the sleep(1) was cut short: no bound on the time needed */
    (void)t0;
    CHECK_EQ(cancelling(), 0);
    return 0;
}

/* test_reschedule (TO3) */
static weft_future_t *rs_fut;
static double deadline1;
static int rs_f(void *arg, weft_value_t *out)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter_at(&cm, deadline1), 0);
    weft_future_set_result(rs_fut, WEFT_VALUE_PTR(&cm));
    int rc = weft_timeout_exit(&cm, weft_sleep(50));
    CHECK(!weft_timeout_expired(&cm));
    return rc;
}

TEST(test_reschedule)
{
    UNUSED_ARGS;
    CHECK_EQ(weft_future_new(NULL, &rs_fut), 0);
    deadline1 = now() + 10;
    double deadline2 = deadline1 + 20;
    weft_task_t *task;
    CHECK_EQ(weft_create_task(&task, rs_f, NULL, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_await(rs_fut, &v), 0);
    weft_timeout_t *cm = v.p;
    CHECK(weft_timeout_when(cm) == deadline1);
    CHECK_EQ(weft_timeout_reschedule(cm, deadline2), 0);
    CHECK(weft_timeout_when(cm) == deadline2);
    CHECK_EQ(weft_timeout_reschedule(cm, WEFT_TIMEOUT_NEVER), 0);
    CHECK(weft_timeout_when(cm) == WEFT_TIMEOUT_NEVER);
    weft_task_cancel(task, NULL);
    CHECK_EQ(weft_await(task, NULL), WEFT_ECANCELED);
    weft_task_release(task);
    weft_future_release(rs_fut);
    return 0;
}

/* A scope without a deadline can be given one later, and an earlier
 * deadline replaces a later one */
TEST(test_reschedule_from_none)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, WEFT_TIMEOUT_NEVER), 0);
    CHECK_EQ(weft_timeout_reschedule(&cm, now() + 0.01), 0);
    double t0 = now();
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(10)), WEFT_ETIMEDOUT);   /* cut short: sleep(10) would give 0 */
    (void)t0;
    CHECK_EQ(weft_timeout_enter(&cm, 10), 0);
    CHECK_EQ(weft_timeout_reschedule(&cm, now()), 0);   /* at or before now: next iteration */
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(10)), WEFT_ETIMEDOUT);
    return 0;
}

/* test_repr_active / test_repr_expired / test_repr_finished (TO7 states) */
TEST(test_states)
{
    UNUSED_ARGS;
    weft_timeout_t cm = { 0 };
    CHECK_EQ(weft_timeout_state(&cm), WEFT_TIMEOUT_CREATED);
    CHECK_EQ(weft_timeout_enter(&cm, 10), 0);
    CHECK_EQ(weft_timeout_state(&cm), WEFT_TIMEOUT_ACTIVE);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(0)), 0);
    CHECK_EQ(weft_timeout_state(&cm), WEFT_TIMEOUT_FINISHED);
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    int rc = weft_sleep(10);
    CHECK_EQ(weft_timeout_state(&cm), WEFT_TIMEOUT_EXPIRING);
    CHECK(weft_timeout_expired(&cm));
    CHECK_EQ(weft_timeout_exit(&cm, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_timeout_state(&cm), WEFT_TIMEOUT_EXPIRED);
    return 0;
}

/* test_nested_timeout_in_finally: a scope in the cleanup after an expiry
 * (the task has a pending cancel count) still converts its own expiry */
TEST(test_nested_timeout_in_finally)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    int rc = weft_sleep(1);
    CHECK_EQ(rc, WEFT_ECANCELED);
    {   /* finally: */
        weft_timeout_t in;
        CHECK_EQ(weft_timeout_enter(&in, 0.01), 0);
        CHECK_EQ(weft_timeout_exit(&in, weft_sleep(10)), WEFT_ETIMEDOUT);
    }
    CHECK_EQ(weft_timeout_exit(&cm, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(cancelling(), 0);
    return 0;
}

/* test_timeout_after_cancellation */
TEST(test_timeout_after_cancellation)
{
    UNUSED_ARGS;
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_sleep(1), WEFT_ECANCELED);   /* swallowed: the count stays 1 */
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.0), 0);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(1)), WEFT_ETIMEDOUT);
    CHECK_EQ(cancelling(), 1);
    weft_task_uncancel(weft_current_task());
    return 0;
}

/* test_cancel_in_timeout_after_cancellation */
TEST(test_cancel_in_timeout_after_cancellation)
{
    UNUSED_ARGS;
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_sleep(1), WEFT_ECANCELED);
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 1.0), 0);
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(2)), WEFT_ECANCELED);
    weft_task_uncancel(weft_current_task());
    weft_task_uncancel(weft_current_task());
    return 0;
}

/* TO6 [V]: the timeout fires together with a cancel from outside: the
 * outside request wins and CANCELLED propagates */
TEST(test_timeout_and_external_cancel_together)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0), 0);    /* fires at the next iteration */
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_timeout_exit(&cm, weft_sleep(1)), WEFT_ECANCELED);
    CHECK(weft_timeout_expired(&cm));
    CHECK_EQ(cancelling(), 1);   /* the outside request is still pending */
    weft_task_uncancel(weft_current_task());
    return 0;
}

/* test_timeout_finished / test_timeout_expired / test_timeout_expiring /
 * test_timeout_not_entered (TO3 state errors) */
TEST(test_reschedule_state_errors)
{
    UNUSED_ARGS;
    weft_timeout_t cm = { 0 };
    CHECK_EQ(weft_timeout_reschedule(&cm, 0.02), WEFT_ENOTENTERED);   /* "has not been entered" */
    CHECK_EQ(weft_timeout_exit(&cm, 0), WEFT_ENOTENTERED);
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&cm, 0), 0);
    CHECK_EQ(weft_timeout_reschedule(&cm, now() + 0.02), WEFT_EINVALSTATE);   /* "finished" */
    CHECK_EQ(weft_timeout_exit(&cm, 0), WEFT_ENOTENTERED);
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    int rc = weft_sleep(1);
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_EQ(weft_timeout_reschedule(&cm, now() + 0.02), WEFT_EINVALSTATE);   /* "expiring" */
    CHECK_EQ(weft_timeout_exit(&cm, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_timeout_reschedule(&cm, now() + 0.02), WEFT_EINVALSTATE);   /* "expired" */
    CHECK_EQ(weft_timeout_reschedule(NULL, 0), WEFT_EINVAL);
    return 0;
}

/* test_timeout_without_task (TO2) */
static void test_timeout_without_task(void)
{
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), WEFT_ENOTCORO);
    CHECK_EQ(weft_timeout_reschedule(&cm, 0.02), WEFT_ENOTENTERED);
    CHECK_EQ(weft_timeout_enter(NULL, 0.01), WEFT_EINVAL);
}

/* test_tasks.py test_uncancel_structured_blocks: the structured block is
 * cancelled, the code after the scope runs, and cancelling() is 0 */
static int make_request_with_timeout(void *arg, weft_value_t *out)
{
    double *p = arg;   /* sleep, timeout */
    bool timed_out = false, block_finished = false;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, p[1]), 0);
    int rc = weft_sleep(p[0]);
    if (rc == 0)
        block_finished = true;
    rc = weft_timeout_exit(&cm, rc);
    if (rc == WEFT_ETIMEDOUT)
        timed_out = true;
    else
        CHECK_EQ(rc, 0);
    CHECK_EQ(weft_yield(), 0);   /* outer code not affected by the timeout */
    out->i = timed_out * 10 + block_finished;
    return 0;
}

TEST(test_uncancel_structured_blocks)
{
    UNUSED_ARGS;
    double p1[2] = { 10.0, 0.05 }, p2[2] = { 0, 10.0 };
    weft_task_t *t1, *t2;
    weft_value_t v;
    CHECK_EQ(weft_create_task(&t1, make_request_with_timeout, p1, NULL), 0);
    CHECK_EQ(weft_await(t1, &v), 0);
    CHECK_EQ(v.i, 10);
    CHECK_EQ(weft_task_cancelling(t1), 0);
    CHECK_EQ(weft_create_task(&t2, make_request_with_timeout, p2, NULL), 0);
    CHECK_EQ(weft_await(t2, &v), 0);
    CHECK_EQ(v.i, 1);
    CHECK_EQ(weft_task_cancelling(t2), 0);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

/* A scope exited before its deadline cancels its timer: nothing fires later */
TEST(test_exit_cancels_timer)
{
    UNUSED_ARGS;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter(&cm, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&cm, 0), 0);
    CHECK_EQ(weft_sleep(0.03), 0);   /* would be cancelled if the timer were still armed */
    CHECK_EQ(cancelling(), 0);
    return 0;
}

int main(int argc, char **argv)
{
    RUN(test_timeout_basic);
    RUN(test_timeout_at_basic);
    RUN(test_nested_timeouts);
    RUN(test_waiter_cancelled);
    RUN(test_timeout_not_called);
    RUN(test_timeout_disabled);
    RUN(test_timeout_zero);
    RUN(test_timeout_in_the_past_sleep_zero);
    RUN(test_foreign_exception_passed);
    RUN(test_foreign_exception_on_timeout);
    RUN(test_foreign_cancel_doesnt_timeout_if_not_expired);
    RUN(test_outer_task_is_not_cancelled);
    RUN(test_nested_timeouts_concurrent);
    RUN(test_nested_timeouts_loop_busy);
    RUN(test_reschedule);
    RUN(test_reschedule_from_none);
    RUN(test_states);
    RUN(test_nested_timeout_in_finally);
    RUN(test_timeout_after_cancellation);
    RUN(test_cancel_in_timeout_after_cancellation);
    RUN(test_timeout_and_external_cancel_together);
    RUN(test_reschedule_state_errors);
    RUN(test_timeout_without_task);
    RUN(test_uncancel_structured_blocks);
    RUN(test_exit_cancels_timer);
    return 0;
}
