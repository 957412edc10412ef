/* Bad input: NULLs, calls outside a coroutine, self-await, use after close,
 * task-only calls on plain futures, bad stack sizes, NaN delays, error text.
 * Nothing here may crash; every refusal has its documented code. */
#include "check.h"
#include "watchdog.h"

#include <weft.h>

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* A blocked loop cannot fire its own timers: a SIGALRM watchdog ends a hung
 * case with a message instead of waiting for ctest's timeout. */
static void watchdog_fire(int sig)
{
    (void)sig;
    static const char m[] = "watchdog: the event loop hung (blocked in its poll)\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    _exit(1);
}
static void watchdog(unsigned seconds)
{
    signal(SIGALRM, watchdog_fire);
    alarm(seconds * WD_SCALE);   /* sanitizer builds run 5-20x slower */
}

static int stop_cb(void *arg)
{
    weft_loop_stop(arg);
    return 0;
}

static int noop_cb(void *arg)
{
    (void)arg;
    return 0;
}

static void noop_done(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
}

static int noop_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return 0;
}

static void noop_handler(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)info;
    (void)ud;
}

/* ---- NULLs ---------------------------------------------------------------------- */

static void test_null_loop_calls(void)
{
    weft_handle_t h;
    CHECK_EQ(weft_loop_new(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_loop_close(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_loop_free(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_loop_run_forever(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_loop_run_until_complete(NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_loop_stop(NULL), WEFT_EINVAL);
    CHECK(!weft_loop_is_running(NULL));
    CHECK(!weft_loop_is_closed(NULL));
    CHECK_EQ(weft_get_running_loop(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_call_soon(NULL, noop_cb, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_later(NULL, 1.0, noop_cb, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_at(NULL, 1.0, noop_cb, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_soon_threadsafe(NULL, noop_cb, NULL), WEFT_EINVAL);
    weft_loop_set_exception_handler(NULL, noop_handler, NULL);   /* ignored */
    weft_error_info_t info = { .message = "to the default handler (expected in this test's output)" };
    weft_loop_call_exception_handler(NULL, &info);
    weft_loop_call_exception_handler(NULL, NULL);
    CHECK(weft_loop_uv(NULL) == NULL);
    CHECK(weft_loop_current_task(NULL) == NULL);
    CHECK(weft_all_tasks(NULL, NULL, 0) == WEFT_ENOLOOP);   /* no running loop */
    weft_handle_t zero = { 0 };
    CHECK_EQ(weft_handle_cancel(zero), 0);

    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    CHECK_EQ(weft_call_soon(loop, NULL, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_later(loop, 1.0, NULL, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_at(loop, 1.0, NULL, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_soon_threadsafe(loop, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_loop_run_until_complete(loop, NULL, NULL), WEFT_EINVAL);
    weft_loop_call_exception_handler(loop, NULL);
    CHECK_EQ(weft_call_soon(loop, noop_cb, NULL, NULL), 0);   /* out may be NULL */
    weft_task_t *arr[1];
    CHECK_EQ(weft_all_tasks(loop, NULL, 1), WEFT_EINVAL);      /* cap without an array */
    CHECK_EQ(weft_all_tasks(loop, arr, 1), 0);
    CHECK(weft_loop_uv(loop) != NULL);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static void test_null_future_calls(void)
{
    weft_value_t v;
    int code;
    const char *msg;
    CHECK_EQ(weft_future_new(NULL, NULL), WEFT_EINVAL);
    CHECK(weft_future_retain(NULL) == NULL);
    weft_future_release(NULL);
    CHECK_EQ(weft_future_set_result(NULL, WEFT_VALUE_INT(1)), WEFT_EINVAL);
    CHECK_EQ(weft_future_set_exception(NULL, -1, "x"), WEFT_EINVAL);
    CHECK_EQ(weft_future_cancel(NULL, "x"), WEFT_EINVAL);
    CHECK(!weft_future_done(NULL));
    CHECK(!weft_future_cancelled(NULL));
    CHECK_EQ(weft_future_result(NULL, &v), WEFT_EINVAL);
    CHECK_EQ(weft_future_take_result(NULL, &v), WEFT_EINVAL);
    CHECK_EQ(weft_future_exception(NULL, &code, &msg), WEFT_EINVAL);
    CHECK(weft_future_message(NULL) == NULL);
    CHECK_EQ(weft_future_add_done_callback(NULL, noop_done, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_future_remove_done_callback(NULL, noop_done, NULL), WEFT_EINVAL);
    CHECK(weft_future_get_loop(NULL) == NULL);

    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_add_done_callback(f, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_future_remove_done_callback(f, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), 0);
    CHECK_EQ(weft_future_result(f, NULL), 0);
    CHECK_EQ(weft_future_take_result(f, NULL), 0);
    CHECK_EQ(weft_future_exception(f, NULL, NULL), 0);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static void test_null_task_calls(void)
{
    weft_task_t *t = (weft_task_t *)(uintptr_t)1;
    CHECK_EQ(weft_create_task(&t, noop_coro, NULL, NULL), WEFT_ENOLOOP);   /* no running loop */
    CHECK(t == NULL);
    CHECK_EQ(weft_loop_create_task(NULL, &t, noop_coro, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_task_cancel(NULL, "x"), WEFT_EINVAL);
    CHECK_EQ(weft_task_cancelling(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_task_uncancel(NULL), WEFT_EINVAL);
    CHECK(weft_task_get_name(NULL) == NULL);
    CHECK_EQ(weft_task_set_name(NULL, "x"), WEFT_EINVAL);
    CHECK_EQ(weft_task_state(NULL), -1);
    CHECK(weft_task_awaiting(NULL) == NULL);
    CHECK(!weft_is_task(NULL));
    weft_task_release(NULL);
    CHECK_EQ(weft_run(NULL, NULL, NULL, NULL), WEFT_EINVAL);

    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    t = (weft_task_t *)(uintptr_t)1;
    CHECK_EQ(weft_loop_create_task(loop, &t, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(weft_loop_create_task(loop, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_loop_create_task(loop, &t, noop_coro, NULL, NULL), 0);
    CHECK_EQ(weft_task_set_name(t, NULL), WEFT_EINVAL);
    CHECK(weft_task_get_name(t) != NULL);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(weft_loop_create_task(loop, NULL, noop_coro, NULL, NULL), 0);   /* out may be NULL */
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(weft_all_tasks(loop, NULL, 0), 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

struct inside_rcs { int await_null, create_null, sleep_nan, sleep_value_nan, later_nan, at_nan, run_nested; int done; };

static int inside_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct inside_rcs *r = arg;
    weft_value_t v = WEFT_VALUE_INT(0);
    r->await_null = weft_await(NULL, &v);
    weft_task_t *t = (weft_task_t *)(uintptr_t)1;
    r->create_null = weft_create_task(&t, NULL, NULL, NULL);
    CHECK(t == NULL);
    r->sleep_nan = weft_sleep(NAN);
    r->sleep_value_nan = weft_sleep_value(NAN, WEFT_VALUE_INT(1), &v);
    CHECK_EQ(v.i, 0);
    r->later_nan = weft_call_later(weft_running_loop(), NAN, noop_cb, NULL, NULL);
    r->at_nan = weft_call_at(weft_running_loop(), NAN, noop_cb, NULL, NULL);
    r->run_nested = weft_run(noop_coro, NULL, NULL, NULL);
    CHECK_EQ(weft_sleep(0), 0);   /* still usable after all that */
    r->done = 1;
    return 0;
}

/* NULLs and bad numbers from inside a coroutine */
static void test_bad_input_inside_task(void)
{
    struct inside_rcs r = { 0 };
    CHECK_EQ(weft_run(inside_coro, &r, NULL, NULL), 0);
    CHECK(r.done);
    CHECK_EQ(r.await_null, WEFT_EINVAL);
    CHECK_EQ(r.create_null, WEFT_EINVAL);
    CHECK_EQ(r.sleep_nan, WEFT_EINVAL);
    CHECK_EQ(r.sleep_value_nan, WEFT_EINVAL);
    CHECK_EQ(r.later_nan, WEFT_EINVAL);
    CHECK_EQ(r.at_nan, WEFT_EINVAL);
    CHECK_EQ(r.run_nested, WEFT_ENESTED);
}

/* ---- awaiting outside a coroutine ------------------------------------------------ */

struct outside_rcs { int await_rc, sleep_rc, sleep0_rc, yield_rc, sleep_value_rc, ran; };

static weft_future_t *outside_fut;

static void fill_outside(struct outside_rcs *r)
{
    weft_value_t v = WEFT_VALUE_INT(0);
    r->await_rc = weft_await(outside_fut, &v);
    r->sleep_rc = weft_sleep(0.01);
    r->sleep0_rc = weft_sleep(0);
    r->yield_rc = weft_yield();
    r->sleep_value_rc = weft_sleep_value(0, WEFT_VALUE_INT(1), &v);
    CHECK_EQ(v.i, 0);
    r->ran = 1;
}

static void check_outside(const struct outside_rcs *r)
{
    CHECK(r->ran);
    CHECK_EQ(r->await_rc, WEFT_ENOTCORO);
    CHECK_EQ(r->sleep_rc, WEFT_ENOTCORO);
    CHECK_EQ(r->sleep0_rc, WEFT_ENOTCORO);
    CHECK_EQ(r->yield_rc, WEFT_ENOTCORO);
    CHECK_EQ(r->sleep_value_rc, WEFT_ENOTCORO);
}

static int outside_cb(void *arg)
{
    fill_outside(arg);
    return 0;
}

static void outside_done_cb(weft_future_t *f, void *arg)
{
    (void)f;
    fill_outside(arg);
}

static void test_await_outside_coroutine(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    CHECK_EQ(weft_future_new(loop, &outside_fut), 0);

    /* from main() */
    struct outside_rcs r = { 0 };
    fill_outside(&r);
    check_outside(&r);
    CHECK_EQ(weft_await(NULL, NULL), WEFT_ENOTCORO);

    /* from a plain callback of a running loop */
    struct outside_rcs rc = { 0 };
    CHECK_EQ(weft_call_soon(loop, outside_cb, &rc, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    check_outside(&rc);

    /* from a done callback */
    struct outside_rcs rd = { 0 };
    weft_future_t *g;
    CHECK_EQ(weft_future_new(loop, &g), 0);
    CHECK_EQ(weft_future_add_done_callback(g, outside_done_cb, &rd), 0);
    CHECK_EQ(weft_future_set_result(g, WEFT_VALUE_INT(0)), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, g, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    check_outside(&rd);
    weft_future_release(g);

    CHECK(!weft_future_done(outside_fut));
    weft_future_release(outside_fut);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- self-await ---------------------------------------------------------------- */

static int self_await_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_await(weft_current_task(), NULL);
    CHECK_EQ(rc, WEFT_ESELFAWAIT);
    CHECK(!weft_future_done(weft_current_task()));
    return rc;
}

/* test_tasks.py: test_task_awaits_on_itself */
static void test_self_await(void)
{
    CHECK_EQ(weft_run(self_await_coro, NULL, NULL, NULL), WEFT_ESELFAWAIT);
}

/* ---- use after close ----------------------------------------------------------------- */

/* test_base_events.py: test_close (operations blocked once the loop is closed) */
static void test_use_after_close(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_future_t *f, *g, *h;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_new(loop, &g), 0);
    CHECK_EQ(weft_future_new(loop, &h), 0);
    CHECK_EQ(weft_future_set_result(h, WEFT_VALUE_INT(8)), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, noop_coro, NULL, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    CHECK_EQ(weft_loop_close(loop), 0);

    weft_future_t *nf = (weft_future_t *)(uintptr_t)1;
    CHECK_EQ(weft_future_new(loop, &nf), WEFT_ECLOSED);
    CHECK(nf == NULL);
    CHECK_EQ(weft_call_soon(loop, noop_cb, NULL, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_call_later(loop, 0.1, noop_cb, NULL, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_call_at(loop, 0.1, noop_cb, NULL, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_call_soon_threadsafe(loop, noop_cb, NULL), WEFT_ECLOSED);
    weft_task_t *nt = (weft_task_t *)(uintptr_t)1;
    CHECK_EQ(weft_loop_create_task(loop, &nt, noop_coro, NULL, NULL), WEFT_ECLOSED);
    CHECK(nt == NULL);
    CHECK_EQ(weft_loop_run_forever(loop), WEFT_ECLOSED);
    CHECK_EQ(weft_loop_run_until_complete(loop, f, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), WEFT_ECLOSED);
    CHECK_EQ(weft_future_set_exception(g, -1, "late"), WEFT_ECLOSED);
    CHECK_EQ(weft_future_cancel(f, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_future_add_done_callback(f, noop_done, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_task_cancel(t, NULL), WEFT_ECLOSED);
    CHECK(!weft_future_done(f));   /* nothing changed */
    CHECK(!weft_future_done(g));
    /* reading what was already there still works */
    weft_value_t v;
    CHECK(weft_future_done(h));
    CHECK_EQ(weft_future_result(h, &v), 0);
    CHECK_EQ(v.i, 8);
    CHECK(weft_future_get_loop(f) == loop);

    weft_future_release(f);
    weft_future_release(g);
    weft_future_release(h);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* A handle of a loop that is closed but not freed: loop.h only forbids using
 * handles after the loop was *freed*, and asyncio's Handle.cancel() after
 * loop.close() is a harmless no-op. */
static void test_handle_cancel_after_close(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_handle_t timer, soon;
    CHECK_EQ(weft_call_later(loop, 3600, noop_cb, NULL, &timer), 0);
    CHECK_EQ(weft_call_soon(loop, noop_cb, NULL, &soon), 0);
    CHECK_EQ(weft_loop_close(loop), 0);
    CHECK_EQ(weft_handle_cancel(timer), 0);
    CHECK_EQ(weft_handle_cancel(soon), 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- task-only calls on a plain future ------------------------------------------ */

static void test_task_calls_on_plain_future(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_task_cancel(f, "x"), WEFT_ENOTTASK);
    CHECK_EQ(weft_task_cancelling(f), WEFT_ENOTTASK);
    CHECK_EQ(weft_task_uncancel(f), WEFT_ENOTTASK);
    CHECK_EQ(weft_task_set_name(f, "x"), WEFT_ENOTTASK);
    CHECK(weft_task_get_name(f) == NULL);
    CHECK_EQ(weft_task_state(f), -1);
    CHECK(weft_task_awaiting(f) == NULL);
    CHECK(!weft_is_task(f));
    CHECK(!weft_future_done(f));   /* none of those touched it */
    CHECK_EQ(weft_future_cancel(f, "x"), 1);   /* the future API still works */
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- stack sizes ----------------------------------------------------------------- */

static void test_bad_stack_size(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_task_t *t = (weft_task_t *)(uintptr_t)1;
    static const size_t bad[] = { 1, 4096, WEFT_MIN_STACK_SIZE - 1, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(weft_loop_create_task(loop, &t, noop_coro, NULL, &(weft_task_opts_t){ .stack_size = bad[i] }),
                 WEFT_EINVAL);
        CHECK(t == NULL);
    }
    CHECK_EQ(weft_all_tasks(loop, NULL, 0), 0);
    /* the minimum itself, and 0 (= default), are fine and run */
    CHECK_EQ(weft_loop_create_task(loop, &t, noop_coro, NULL, &(weft_task_opts_t){ .stack_size = WEFT_MIN_STACK_SIZE }), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(weft_loop_create_task(loop, &t, noop_coro, NULL, &(weft_task_opts_t){ .stack_size = 0 }), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    weft_task_release(t);
    /* an odd size is rounded up to pages */
    CHECK_EQ(weft_loop_create_task(loop, &t, noop_coro, NULL, &(weft_task_opts_t){ .stack_size = WEFT_MIN_STACK_SIZE + 1 }), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);

    /* weft_run's main task */
    CHECK_EQ(weft_run(noop_coro, NULL, &(weft_run_opts_t){ .stack_size = 100 }, NULL), WEFT_EINVAL);
}

/* ---- NaN and extreme delays ------------------------------------------------------ */

static void test_nan_delays(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_handle_t h = { 0 };
    CHECK_EQ(weft_call_later(loop, NAN, noop_cb, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_at(loop, NAN, noop_cb, NULL, &h), WEFT_EINVAL);
    CHECK_EQ(weft_call_later(loop, -NAN, noop_cb, NULL, &h), WEFT_EINVAL);
    /* infinities are valid: never / now */
    CHECK_EQ(weft_call_later(loop, INFINITY, noop_cb, NULL, &h), 0);
    CHECK_EQ(weft_handle_cancel(h), 1);
    CHECK_EQ(weft_call_at(loop, INFINITY, noop_cb, NULL, &h), 0);
    CHECK_EQ(weft_handle_cancel(h), 1);
    CHECK_EQ(weft_call_later(loop, -INFINITY, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_call_at(loop, -INFINITY, noop_cb, NULL, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 1e300, noop_cb, NULL, &h), 0);
    CHECK_EQ(weft_handle_cancel(h), 1);
    watchdog(10);
    CHECK_EQ(weft_loop_run_forever(loop), 0);   /* the -inf stop fires at once */
    alarm(0);
    /* sleep(NaN) outside a task: not a coroutine comes first */
    CHECK_EQ(weft_sleep(NAN), WEFT_ENOTCORO);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- error text ------------------------------------------------------------------ */

static void test_error_text(void)
{
    static const int weft_codes[] = {
        WEFT_EINVALSTATE, WEFT_ENOLOOP, WEFT_ENOTCORO, WEFT_ESELFAWAIT, WEFT_ECLOSED, WEFT_ENESTED,
        WEFT_ENOTTASK, WEFT_EWRONGLOOP, WEFT_ESTOPPED, WEFT_EGROUP, WEFT_EQUEUEFULL, WEFT_EQUEUEEMPTY,
        WEFT_EBROKEN, WEFT_ESHUTDOWN, WEFT_ENOTENTERED, WEFT_ECALLBACK, WEFT_ECANCELED, WEFT_ETIMEDOUT,
        WEFT_EINVAL, WEFT_ENOMEM, WEFT_EBUSY, WEFT_ESTOPASYNCITER, WEFT_EGENEXIT,
    };
    const char *unknown_text = weft_strerror(-12345);
    CHECK(unknown_text != NULL && *unknown_text);
    for (size_t i = 0; i < sizeof weft_codes / sizeof weft_codes[0]; i++) {
        int c = weft_codes[i];
        const char *s = weft_strerror(c), *n = weft_err_name(c);
        CHECK(s != NULL && *s);
        CHECK(n != NULL && *n);
        CHECK(strcmp(s, unknown_text) != 0);   /* every weft code has its own text */
        for (size_t j = 0; j < i; j++)         /* and its own name */
            CHECK(strcmp(n, weft_err_name(weft_codes[j])) != 0);
    }
    CHECK_STR(weft_err_name(WEFT_ECANCELED), "WEFT_ECANCELED");
    CHECK_STR(weft_err_name(WEFT_EINVALSTATE), "WEFT_EINVALSTATE");
    CHECK_STR(weft_err_name(WEFT_ETIMEDOUT), "WEFT_ETIMEDOUT");
    /* errno / libuv codes pass through with their own text */
    CHECK(weft_strerror(-EPIPE) != NULL && strcmp(weft_strerror(-EPIPE), unknown_text) != 0);
    CHECK_STR(weft_err_name(-EPIPE), "EPIPE");
    /* user codes, zero, positive, extremes: never NULL */
    static const int others[] = { 0, 1, 42, -1, -3000, -3099, -4095, -4096, -5000, -12345, -99999, INT_MIN, INT_MAX };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        const char *s = weft_strerror(others[i]), *n = weft_err_name(others[i]);
        CHECK(s != NULL && *s);
        CHECK(n != NULL && *n);
    }
}

/* ---- the parity API: NULLs and calls in the wrong place ---------------------------- */

static void test_null_parity_calls(void)
{
    weft_future_t *f = (weft_future_t *)1;
    weft_cfuture_t *cf = (weft_cfuture_t *)1;
    weft_value_t v = { .p = NULL };
    int code;
    const char *msg;
    CHECK_EQ(weft_get_current_task(NULL), WEFT_EINVAL);
    CHECK(!weft_handle_cancelled((weft_handle_t){ 0 }));
    CHECK(isnan(weft_handle_when((weft_handle_t){ 0 })));
    CHECK_EQ(weft_ensure_future(NULL, &f), WEFT_EINVAL);
    CHECK(f == NULL);
    CHECK(!weft_isfuture(NULL));
    CHECK_EQ(weft_wrap_future(NULL, &f), WEFT_EINVAL);
    CHECK_EQ(weft_cfuture_new(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cfuture_set_result(NULL, v), WEFT_EINVAL);
    CHECK_EQ(weft_cfuture_set_exception(NULL, -1, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cfuture_exception(NULL, 0, &code, &msg), WEFT_EINVAL);
    CHECK(weft_cfuture_message(NULL) == NULL);
    CHECK(weft_cfuture_retain(NULL) == NULL);
    CHECK_EQ(weft_cfuture_new(&cf), 0);
    CHECK_EQ(weft_cfuture_set_exception(cf, 0, NULL), WEFT_EINVAL);   /* not an error code */
    CHECK_EQ(weft_cfuture_result(cf, 0, NULL), WEFT_ETIMEDOUT);       /* <= 0: only looks */
    CHECK_EQ(weft_cfuture_result(cf, -1, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_cfuture_result(cf, NAN, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cfuture_set_result(cf, WEFT_VALUE_INT(4)), 0);
    CHECK_EQ(weft_cfuture_set_result(cf, WEFT_VALUE_INT(5)), WEFT_EINVALSTATE);
    CHECK_EQ(weft_cfuture_result(cf, 0, &v), 0);
    CHECK_EQ(v.i, 4);
    CHECK_EQ(weft_cfuture_cancel(cf), 0);
    weft_cfuture_release(cf);
    CHECK_EQ(weft_executor_submit(NULL, NULL, NULL, &cf), WEFT_EINVAL);
    CHECK_EQ(weft_run_in_executor_future(NULL, NULL, NULL, &f), WEFT_EINVAL);
    CHECK_EQ(weft_loop_set_default_executor(NULL, NULL), WEFT_EINVAL);
    weft_asyncgen_t *g = (weft_asyncgen_t *)1;
    CHECK_EQ(weft_asyncgen_new(&g, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_anext(NULL, &v), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_aclose(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_athrow(NULL, -1, NULL, &v), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_yield(NULL, v, NULL), WEFT_EINVAL);
    CHECK(!weft_asyncgen_running(NULL) && !weft_asyncgen_finished(NULL));
    weft_asyncgen_release(NULL);
    CHECK_EQ(weft_loop_shutdown_asyncgens(), WEFT_ENOTCORO);
    CHECK_EQ(weft_runner_run(NULL, NULL, NULL, NULL, &v), WEFT_EINVAL);
    CHECK(weft_runner_get_loop(NULL) == NULL);
    weft_timeout_t to = { 0 };
    CHECK_EQ(weft_timeout_enter(&to, 1), WEFT_ENOTCORO);
    CHECK_EQ(weft_timeout_exit(&to, 0), WEFT_ENOTENTERED);
    CHECK_EQ(weft_timeout_enter(NULL, 1), WEFT_EINVAL);
    weft_taskgroup_t tg = { 0 };
    CHECK_EQ(weft_taskgroup_enter(&tg), WEFT_ENOTCORO);
    CHECK_EQ(weft_taskgroup_exit(&tg, 0), WEFT_ENOTENTERED);
    CHECK(weft_errgroup_group_message(NULL) == NULL);
    size_t n = 7;
    CHECK(weft_errgroup_exceptions(NULL, &n) == NULL && n == 0);
}

int main(int argc, char **argv)
{
    RUN(test_null_parity_calls);
    RUN(test_null_loop_calls);
    RUN(test_null_future_calls);
    RUN(test_null_task_calls);
    RUN(test_bad_input_inside_task);
    RUN(test_await_outside_coroutine);
    RUN(test_self_await);
    RUN(test_use_after_close);
    RUN(test_task_calls_on_plain_future);
    RUN(test_bad_stack_size);
    RUN(test_nan_delays);
    RUN(test_error_text);
    RUN(test_handle_cancel_after_close);
    return 0;
}
