/* Values at the edges of their types: durations that do not fit a uint64_t of
 * nanoseconds (INFINITY, 1e300, DBL_MAX), NaN, -0.0 and tiny positive ones,
 * in every call that takes seconds; a semaphore counter at INT_MAX. No test
 * asserts a wall-clock gap: "has not fired" is checked against an event that
 * the same loop orders after it. */
#include "check.h"
#include "watchdog.h"
#include "weft.h"

#include <float.h>
#include <limits.h>
#include <math.h>

static const double huge[] = { INFINITY, 1e300, DBL_MAX, 1e10, 2e10 };
#define NHUGE (sizeof huge / sizeof huge[0])

static int fired(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/* ---- sleep ------------------------------------------------------------------------------ */
static int sleeper(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_sleep(*(const double *)arg);
}

static int sleep_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* a huge sleep is a long sleep, not an instant one: it is still sleeping
     * after a sleep of 10 ms that started later, and ends only by cancellation */
    for (size_t i = 0; i < NHUGE; i++) {
        weft_task_t *t;
        CHECK_EQ(weft_create_task(&t, sleeper, (void *)&huge[i], NULL), 0);
        CHECK_EQ(weft_sleep(0.01), 0);
        CHECK(!weft_future_done(t));
        CHECK_EQ(weft_task_cancel(t, NULL), 1);
        CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
        weft_task_release(t);
    }
    CHECK_EQ(weft_sleep(NAN), WEFT_EINVAL);
    CHECK_EQ(weft_sleep(-0.0), 0);
    CHECK_EQ(weft_sleep(1e-300), 0);
    CHECK_EQ(weft_sleep(DBL_MIN), 0);
    CHECK_EQ(weft_sleep(-INFINITY), 0);
    return 0;
}

static void test_sleep(void) { CHECK_EQ(weft_run(sleep_main, NULL, NULL, NULL), 0); }

/* ---- call_later / call_at ---------------------------------------------------------------- */
static int call_later_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = weft_running_loop();
    int n_huge = 0, n_small = 0;
    weft_handle_t hl[NHUGE], ha[NHUGE];
    for (size_t i = 0; i < NHUGE; i++) {
        CHECK_EQ(weft_call_later(l, huge[i], fired, &n_huge, &hl[i]), 0);
        CHECK_EQ(weft_call_at(l, huge[i], fired, &n_huge, &ha[i]), 0);
    }
    CHECK_EQ(weft_call_later(l, NAN, fired, &n_huge, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_call_at(l, NAN, fired, &n_huge, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_call_later(l, -0.0, fired, &n_small, NULL), 0);
    CHECK_EQ(weft_call_later(l, 1e-300, fired, &n_small, NULL), 0);
    CHECK_EQ(weft_call_later(l, -INFINITY, fired, &n_small, NULL), 0);
    CHECK_EQ(weft_call_at(l, -0.0, fired, &n_small, NULL), 0);
    CHECK_EQ(weft_call_at(l, -INFINITY, fired, &n_small, NULL), 0);
    CHECK_EQ(weft_sleep(0.01), 0);   /* the small ones are due before this wakes us */
    CHECK_EQ(n_small, 5);
    CHECK_EQ(n_huge, 0);
    for (size_t i = 0; i < NHUGE; i++) {
        CHECK_EQ(weft_handle_cancel(hl[i]), 1);   /* still pending */
        CHECK_EQ(weft_handle_cancel(ha[i]), 1);
    }
    return 0;
}

static void test_call_later(void) { CHECK_EQ(weft_run(call_later_main, NULL, NULL, NULL), 0); }

/* ---- wait_for, wait, timeout scopes --------------------------------------------------------- */
static int set_later(void *arg)
{
    weft_future_set_result(arg, WEFT_VALUE_INT(42));
    return 0;
}

static int wait_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = weft_running_loop();
    for (size_t i = 0; i < NHUGE; i++) {
        /* a huge timeout never expires first */
        weft_future_t *f;
        CHECK_EQ(weft_future_new(l, &f), 0);
        CHECK_EQ(weft_call_later(l, 0.01, set_later, f, NULL), 0);
        weft_value_t v;
        CHECK_EQ(weft_wait_for(f, huge[i], &v), 0);
        CHECK_EQ(v.i, 42);
        weft_future_release(f);

        CHECK_EQ(weft_future_new(l, &f), 0);
        CHECK_EQ(weft_call_later(l, 0.01, set_later, f, NULL), 0);
        size_t nd = 0, np = 0;
        weft_future_t *done[1], *pend[1];
        CHECK_EQ(weft_wait(&f, 1, huge[i], WEFT_ALL_COMPLETED, done, &nd, pend, &np), 0);
        CHECK_EQ(nd, 1);
        CHECK_EQ(np, 0);
        weft_future_release(f);

        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, huge[i]), 0);
        CHECK_EQ(weft_sleep(0.005), 0);
        CHECK_EQ(weft_timeout_exit(&to, 0), 0);
        CHECK(!weft_timeout_expired(&to));
        CHECK_EQ(weft_timeout_enter_at(&to, huge[i]), 0);
        CHECK_EQ(weft_sleep(0.005), 0);
        CHECK_EQ(weft_timeout_exit(&to, 0), 0);
    }
    /* NaN is no duration at all: refused (asyncio: ValueError from the float
     * comparison), the future left alone */
    weft_future_t *f;
    CHECK_EQ(weft_future_new(l, &f), 0);
    CHECK_EQ(weft_wait_for(f, NAN, NULL), WEFT_EINVAL);
    CHECK(!weft_future_done(f));
    weft_future_release(f);
    /* tiny positive timeouts and -0.0 expire (the future never completes) */
    const double tiny[] = { 1e-300, DBL_MIN, 1e-9 };
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(weft_future_new(l, &f), 0);
        CHECK_EQ(weft_wait_for(f, tiny[i], NULL), WEFT_ETIMEDOUT);
        CHECK(weft_future_cancelled(f));
        weft_future_release(f);
        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, tiny[i]), 0);
        CHECK_EQ(weft_timeout_exit(&to, weft_sleep(3600)), WEFT_ETIMEDOUT);
    }
    CHECK_EQ(weft_future_new(l, &f), 0);
    CHECK_EQ(weft_wait_for(f, -0.0, NULL), WEFT_ETIMEDOUT);   /* -0.0 == 0: cancel at once */
    weft_future_release(f);
    return 0;
}

static void test_wait_and_timeouts(void) { CHECK_EQ(weft_run(wait_main, NULL, NULL, NULL), 0); }

/* ---- cfuture_result ----------------------------------------------------------------------- */
static int slow_seven(void *arg, weft_value_t *out)
{
    int rc = weft_sleep(*(const double *)arg);
    out->i = 7;
    return rc;
}

static void test_cfuture_result(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1 }, &rt), 0);
    CHECK_EQ(weft_runtime_start(rt), 0);
    static const double short_sleep = 0.02, long_sleep = 3600;
    const double forever[] = { WEFT_NO_TIMEOUT, INFINITY, 1e300, DBL_MAX, 1e10 };
    for (size_t i = 0; i < sizeof forever / sizeof forever[0]; i++) {
        wd_progress();
        weft_cfuture_t *cf;
        CHECK_EQ(weft_run_coroutine_threadsafe(rt, NULL, slow_seven, (void *)&short_sleep, NULL, &cf), 0);
        weft_value_t v = { .i = 0 };
        /* before the fix INFINITY and 1e300 gave WEFT_ETIMEDOUT at once */
        CHECK_EQ(weft_cfuture_result(cf, forever[i], &v), 0);
        CHECK_EQ(v.i, 7);
        weft_cfuture_release(cf);
    }
    const double at_once[] = { 0.0, -0.0, 1e-300, DBL_MIN, 1e-6, -1.0, -INFINITY };   /* <= 0 only looks */
    weft_cfuture_t *cf;
    CHECK_EQ(weft_run_coroutine_threadsafe(rt, NULL, slow_seven, (void *)&long_sleep, NULL, &cf), 0);
    for (size_t i = 0; i < sizeof at_once / sizeof at_once[0]; i++)
        CHECK_EQ(weft_cfuture_result(cf, at_once[i], NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_cfuture_result(cf, NAN, NULL), WEFT_EINVAL);   /* no duration at all */
    CHECK_EQ(weft_cfuture_cancel(cf), 1);
    CHECK_EQ(weft_cfuture_result(cf, INFINITY, NULL), WEFT_ECANCELED);
    weft_cfuture_release(cf);
    CHECK_EQ(weft_runtime_shutdown(rt), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* ---- semaphore counter at INT_MAX ----------------------------------------------------------- */
static void test_sem_release_at_int_max(void)
{
    weft_sem_t *s;
    CHECK_EQ(weft_sem_new(INT_MAX - 1, &s), 0);
    CHECK_EQ(weft_sem_release(s), 0);
    CHECK_EQ(weft_sem_value(s), INT_MAX);
    /* one more would overflow a signed int (undefined behaviour): refused, nothing changes */
    CHECK_EQ(weft_sem_release(s), WEFT_EOVERFLOW);
    CHECK_EQ(weft_sem_release(s), WEFT_EOVERFLOW);
    CHECK_EQ(weft_sem_value(s), INT_MAX);
    CHECK_STR(weft_err_name(WEFT_EOVERFLOW), "WEFT_EOVERFLOW");
    weft_sem_free(s);
    CHECK_EQ(weft_bounded_sem_new(INT_MAX, &s), 0);
    CHECK_EQ(weft_sem_release(s), WEFT_EINVAL);   /* BoundedSemaphore: released too many times */
    weft_sem_free(s);
}

int main(int argc, char **argv)
{
    wd_start(60);
    RUN(test_sleep);
    RUN(test_call_later);
    RUN(test_wait_and_timeouts);
    RUN(test_cfuture_result);
    RUN(test_sem_release_at_int_max);
    return 0;
}
