/* asyncio parity details: each test names the asyncio behaviour (and the
 * CPython 3.12 test in Lib/test/test_asyncio/ it mirrors, where one exists). */
#include "comb_util.h"

#include <math.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>



static void nap(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

/* ---- 1. asyncio.run re-raises main's exception with its text ------------------ */

static int main_fails(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_raise(USER_ERR, "boom %d", 42);
}

static int main_cancels_itself(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_cancel(weft_current_task(), "bye");
    return weft_sleep(10);
}

static int main_ok(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 5;
    return 0;
}

/* test_runners.py: test_asyncio_run_raises (the exception and its message
 * reach asyncio.run's caller); test_asyncio_run_cancelled (CancelledError with
 * its message) */
static void test_run_error_message(void)
{
    CHECK_EQ(weft_run(main_fails, NULL, NULL, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "boom 42");
    CHECK_EQ(weft_run(main_cancels_itself, NULL, NULL, NULL), WEFT_ECANCELED);
    CHECK_STR(weft_error_message(), "bye");
    weft_value_t v;
    CHECK_EQ(weft_run(main_ok, NULL, NULL, &v), 0);
    CHECK_EQ(v.i, 5);
    CHECK(weft_error_message() == NULL);   /* success clears it */

    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1 }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, main_fails, NULL, NULL, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "boom 42");
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* ---- 2. Condition.wait_for returns the predicate's value ------------------------ */

static weft_cond_t *C;
static int cond_state;

static int pred_value(void *arg)
{
    (void)arg;
    return cond_state;   /* 0 false, > 0 the value, < 0 the predicate's error */
}

static int cond_setter(void *arg, weft_value_t *out)
{
    (void)out;
    CHECK_EQ(weft_cond_acquire(C), 0);
    cond_state = (int)(intptr_t)arg;
    CHECK_EQ(weft_cond_notify_all(C), 1);
    return weft_cond_release(C);
}

/* test_locks.py ConditionTests.test_wait_for (the result of wait_for is the
 * predicate's result) */
static int cond_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_cond_new(NULL, &C), 0);
    for (int round = 0; round < 2; round++) {
        cond_state = 0;
        int v = round ? USER_ERR : 7;
        CHECK_EQ(weft_create_task(NULL, cond_setter, (void *)(intptr_t)v, NULL), 0);
        CHECK_EQ(weft_cond_acquire(C), 0);
        CHECK_EQ(weft_cond_wait_for(C, pred_value, NULL), v);   /* 7, then the predicate's error */
        CHECK(weft_cond_locked(C));
        CHECK_EQ(weft_cond_release(C), 0);
    }
    CHECK_EQ(weft_cond_wait_for(NULL, pred_value, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cond_wait_for(C, NULL, NULL), WEFT_EINVAL);
    return weft_cond_free(C);
}

static void test_cond_wait_for_value(void) { CHECK_EQ(run(cond_main, NULL), 0); }

/* ---- 3. current_task() outside a running loop is RuntimeError ---------------- */

static int cur_cb_rc = 1;
static weft_task_t *cur_cb_task = (weft_task_t *)1;

static int current_in_callback(void *arg)
{
    (void)arg;
    cur_cb_rc = weft_get_current_task(&cur_cb_task);
    return 0;
}

static int current_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t = NULL;
    CHECK_EQ(weft_get_current_task(&t), 0);
    CHECK(t == weft_current_task() && t != NULL);
    CHECK_EQ(weft_call_soon(weft_running_loop(), current_in_callback, NULL, NULL), 0);
    settle(2);
    CHECK_EQ(cur_cb_rc, 0);           /* a plain callback: None, not an error */
    CHECK(cur_cb_task == NULL);
    return 0;
}

/* test_tasks.py: test_current_task_no_running_loop (RuntimeError), and
 * current_task() in a plain callback is None */
static void test_current_task(void)
{
    weft_task_t *t = (weft_task_t *)1;
    CHECK_EQ(weft_get_current_task(&t), WEFT_ENOLOOP);
    CHECK(t == NULL);
    CHECK_EQ(weft_get_current_task(NULL), WEFT_EINVAL);
    CHECK(weft_current_task() == NULL);
    CHECK_EQ(run(current_main, NULL), 0);
}

/* ---- 4. the exception handler's context names the failed handle --------------- */

static weft_error_info_t seen_info;
static char seen_detail[128];
static int seen_reports;

static void grab_info(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)ud;
    seen_info = *info;
    snprintf(seen_detail, sizeof seen_detail, "%s", info->detail ? info->detail : "(none)");
    seen_reports++;
}

static int failing_cb(void *arg)
{
    (void)arg;
    return weft_raise(USER_ERR, "callback failed on %s", "purpose");
}

static int failing_cb_other_code(void *arg)
{
    (void)arg;
    weft_raise(USER_ERR, "not this one");
    return USER_ERR - 1;   /* the message belongs to another code: dropped */
}

static int handler_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = weft_running_loop();
    weft_loop_set_exception_handler(l, grab_info, NULL);
    weft_handle_t h;
    CHECK_EQ(weft_call_soon(l, failing_cb, &seen_info, &h), 0);
    settle(2);
    CHECK_EQ(seen_reports, 1);
    CHECK_STR(seen_info.message, "Exception in callback");
    CHECK_EQ(seen_info.code, USER_ERR);
    CHECK_STR(seen_detail, "callback failed on purpose");
    CHECK(seen_info.handle.h == h.h && seen_info.handle.gen == h.gen);   /* context['handle'] */
    CHECK(seen_info.callback == failing_cb);
    CHECK(seen_info.callback_arg == &seen_info);
    CHECK(seen_info.future == NULL);

    CHECK_EQ(weft_call_later(l, 0.001, failing_cb_other_code, NULL, &h), 0);
    CHECK_EQ(weft_sleep(0.05), 0);
    CHECK_EQ(seen_reports, 2);
    CHECK_EQ(seen_info.code, USER_ERR - 1);
    CHECK_STR(seen_detail, "(none)");
    CHECK(seen_info.handle.h == h.h && seen_info.handle.gen == h.gen);
    CHECK(weft_handle_when(seen_info.handle) == weft_handle_when(h));   /* a TimerHandle */
    weft_loop_set_exception_handler(l, NULL, NULL);
    /* weft_raise in a task keeps working as before, and outside any task or
     * callback it only returns the code */
    return 0;
}

/* test_base_events.py: test_default_exc_handler_callback (context carries
 * 'handle' and the exception with its text) */
static void test_exception_handler_handle(void)
{
    CHECK_EQ(weft_raise(USER_ERR, "nowhere"), USER_ERR);
    CHECK_EQ(run(handler_main, NULL), 0);
}

/* ---- 5. entering a timeout or TaskGroup twice ----------------------------------- */

static int double_enter_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_timeout_t to = { 0 };
    CHECK_EQ(weft_timeout_exit(&to, 0), WEFT_ENOTENTERED);   /* exit without enter */
    CHECK_EQ(weft_timeout_enter(&to, 0.05), 0);
    double when = weft_timeout_when(&to);
    CHECK_EQ(weft_timeout_enter(&to, 30), WEFT_EINVALSTATE);   /* "has already been entered" */
    CHECK_EQ(weft_timeout_enter_at(&to, weft_loop_time(weft_running_loop()) + 30), WEFT_EINVALSTATE);
    CHECK(weft_timeout_when(&to) == when);                     /* not re-armed */
    int rc = weft_sleep(30);                                   /* the first timer still fires */
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_timeout_exit(&to, 0), WEFT_ENOTENTERED);     /* exit twice */
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    /* left: the struct may be entered again (C reuses stack memory) */
    CHECK_EQ(weft_timeout_enter(&to, WEFT_NO_TIMEOUT), 0);
    CHECK_EQ(weft_timeout_exit(&to, 0), 0);
    CHECK_EQ(weft_timeout_enter(NULL, 1), WEFT_EINVAL);

    weft_taskgroup_t tg = { 0 };
    CHECK_EQ(weft_taskgroup_exit(&tg, 0), WEFT_ENOTENTERED);
    CHECK_EQ(weft_taskgroup_enter(&tg), 0);
    job_t j = { .delay = 0.01, .value = 1 };
    CHECK_EQ(weft_taskgroup_create_task(&tg, NULL, job_fn, &j, NULL), 0);
    CHECK_EQ(weft_taskgroup_enter(&tg), WEFT_EINVALSTATE);   /* "TaskGroup has already been entered" */
    CHECK_EQ(weft_taskgroup_size(&tg), 1);                    /* untouched */
    CHECK_EQ(weft_taskgroup_exit(&tg, 0), 0);
    CHECK_EQ(j.finished, 1);
    CHECK_EQ(weft_taskgroup_exit(&tg, 0), WEFT_ENOTENTERED);
    weft_taskgroup_free(&tg);
    CHECK_EQ(weft_taskgroup_enter(&tg), 0);                   /* entered again after exit + free */
    CHECK_EQ(weft_taskgroup_exit(&tg, 0), 0);
    weft_taskgroup_free(&tg);
    return 0;
}

/* test_timeouts.py: test_timeout_double_enter ("Timeout has already been
 * entered"); test_taskgroups.py: test_taskgroup_double_enter (3.12's
 * "TaskGroup ... has already been entered") */
static void test_double_enter(void) { CHECK_EQ(run(double_enter_main, NULL), 0); }

/* ---- 6. a concurrent future carries the failure's message --------------------- */

static int coro_fail(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sleep(0.001), 0);
    return weft_raise(USER_ERR, "Fail!");
}

/* test_tasks.py RunCoroutineThreadsafeTests:
 * test_run_coroutine_threadsafe_with_exception (future.result() raises with
 * the text "Fail!"; future.exception() is that exception) */
static void test_cfuture_message(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
    CHECK_EQ(weft_runtime_start(rt), 0);
    weft_cfuture_t *cf;
    CHECK_EQ(weft_run_coroutine_threadsafe(rt, NULL, coro_fail, NULL, NULL, &cf), 0);
    CHECK_EQ(weft_cfuture_result(cf, WEFT_NO_TIMEOUT, NULL), USER_ERR);
    int code = 0;
    const char *msg = NULL;
    CHECK_EQ(weft_cfuture_exception(cf, WEFT_NO_TIMEOUT, &code, &msg), 0);
    CHECK_EQ(code, USER_ERR);
    CHECK_STR(msg, "Fail!");
    CHECK_STR(weft_cfuture_message(cf), "Fail!");
    CHECK_EQ(weft_cfuture_exception(cf, NAN, &code, &msg), WEFT_EINVAL);
    weft_cfuture_release(cf);
    CHECK_EQ(weft_runtime_shutdown(rt), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* ---- 7. a blocking function's error message reaches the awaiter ---------------- */

static int blocking_fail(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_raise(USER_ERR, "disk %s", "full");
}

static int to_thread_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_to_thread(blocking_fail, NULL, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "disk full");
    return 0;
}

/* test_threads.py: test_to_thread_exception (the function's exception, text
 * included, is raised in the awaiter) */
static void test_to_thread_message(void) { CHECK_EQ(run(to_thread_main, NULL), 0); }

/* ---- 8. run_in_executor as a future, submit from any thread, wrap_future -------- */

static atomic_int gate;        /* the blocking job waits for it */
static atomic_int a_started;
static atomic_int ran_b;

static int blocking_wait_gate(void *arg, weft_value_t *out)
{
    (void)arg;
    atomic_store(&a_started, 1);
    while (!atomic_load(&gate))
        nap(0.001);
    out->i = 11;
    return 0;
}

static int blocking_b(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    atomic_store(&ran_b, 1);
    return 0;
}

static int blocking_owned(void *arg, weft_value_t *out)
{
    (void)arg;
    char *p = malloc(8);
    strcpy(p, "owned");
    *out = WEFT_VALUE_OWNED(p, free);
    return 0;
}

static weft_cfuture_t *plain_cf;
static void plain_thread_completes(void *arg)
{
    (void)arg;
    nap(0.01);
    CHECK_EQ(weft_cfuture_set_exception(plain_cf, USER_ERR, "from %s", "a thread"), 0);
}

static int executor_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* started now, awaited later: run_in_executor returns a future */
    weft_future_t *f;
    CHECK_EQ(weft_run_in_executor_future(NULL, blocking_owned, NULL, &f), 0);
    CHECK_EQ(weft_sleep(0.001), 0);
    weft_value_t v;
    CHECK_EQ(weft_await(f, &v), 0);
    CHECK_STR(v.p, "owned");   /* owned by the future, freed with it */
    weft_future_release(f);
    CHECK_EQ(weft_run_in_executor_future(NULL, blocking_fail, NULL, &f), 0);
    CHECK_EQ(weft_await(f, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "disk full");
    weft_future_release(f);

    /* cancelling the loop future cancels a queued call: it never runs */
    weft_executor_t *ex;
    CHECK_EQ(weft_executor_new(1, &ex), 0);
    weft_cfuture_t *a;
    CHECK_EQ(weft_executor_submit(ex, blocking_wait_gate, NULL, &a), 0);
    weft_future_t *fb;
    CHECK_EQ(weft_run_in_executor_future(ex, blocking_b, NULL, &fb), 0);
    CHECK_EQ(weft_future_cancel(fb, NULL), 1);
    settle(2);
    while (!atomic_load(&a_started))
        CHECK_EQ(weft_sleep(0.001), 0);
    CHECK_EQ(weft_cfuture_cancel(a), 0);   /* running: cannot be cancelled */
    atomic_store(&gate, 1);
    weft_future_t *fa;
    CHECK_EQ(weft_wrap_future(a, &fa), 0);
    CHECK_EQ(weft_await(fa, &v), 0);
    CHECK_EQ(v.i, 11);
    weft_future_release(fa);
    weft_future_release(fb);
    weft_cfuture_release(a);
    weft_executor_free(ex);
    CHECK_EQ(atomic_load(&ran_b), 0);

    /* wrap_future over a concurrent future a plain thread completes */
    CHECK_EQ(weft_cfuture_new(&plain_cf), 0);
    uv_thread_t th;
    CHECK_EQ(uv_thread_create(&th, plain_thread_completes, NULL), 0);
    weft_future_t *w;
    CHECK_EQ(weft_wrap_future(plain_cf, &w), 0);
    CHECK_EQ(weft_await(w, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "from a thread");
    uv_thread_join(&th);
    weft_future_release(w);
    CHECK_EQ(weft_cfuture_set_result(plain_cf, WEFT_VALUE_INT(1)), WEFT_EINVALSTATE);
    weft_cfuture_release(plain_cf);

    /* cancelling the wrapping future cancels the concurrent one */
    weft_cfuture_t *c;
    CHECK_EQ(weft_cfuture_new(&c), 0);
    CHECK_EQ(weft_wrap_future(c, &w), 0);
    CHECK_EQ(weft_future_cancel(w, NULL), 1);
    settle(2);
    CHECK(weft_cfuture_cancelled(c));
    weft_future_release(w);
    weft_cfuture_release(c);
    CHECK_EQ(weft_wrap_future(NULL, &w), WEFT_EINVAL);
    return 0;
}

static weft_cfuture_t *submitted;
static void plain_thread_submits(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_executor_submit(NULL, blocking_owned, NULL, &submitted), 0);
    weft_value_t v;
    CHECK_EQ(weft_cfuture_result(submitted, 30, &v), 0);
    CHECK_STR(v.p, "owned");
    CHECK(v.dtor == NULL);   /* borrowed: the concurrent future frees it */
}

/* test_futures.py: test_wrap_future, test_wrap_future_cancel (cancelling the
 * asyncio future cancels the concurrent one); test_base_events.py:
 * test_run_in_executor (a future, awaited later); concurrent.futures:
 * Executor.submit from any thread, Future.cancel() false once running */
static void test_executor_futures(void)
{
    CHECK_EQ(run(executor_main, NULL), 0);
    uv_thread_t th;
    CHECK_EQ(uv_thread_create(&th, plain_thread_submits, NULL), 0);
    uv_thread_join(&th);
    weft_cfuture_release(submitted);
    weft_cfuture_t *cf;
    CHECK_EQ(weft_executor_submit(NULL, NULL, NULL, &cf), WEFT_EINVAL);
    weft_future_t *f;
    CHECK_EQ(weft_run_in_executor_future(NULL, blocking_b, NULL, &f), WEFT_ENOLOOP);
}

/* ---- 9. Task-N names for every unnamed task, main included ----------------------- */

static int names_main(void *arg, weft_value_t *out)
{
    (void)out;
    const char *mine = weft_task_get_name(weft_current_task());
    if (arg) {
        CHECK_STR(mine, "main");
        return 0;
    }
    unsigned long n;
    CHECK_EQ(sscanf(mine, "Task-%lu", &n), 1);
    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_create_task(&a, value_fn, NULL, NULL), 0);
    CHECK_EQ(weft_create_task(&b, value_fn, NULL, &(weft_task_opts_t){ .name = "named" }), 0);
    CHECK_EQ(weft_create_task(&c, value_fn, NULL, NULL), 0);
    char want[32];
    snprintf(want, sizeof want, "Task-%lu", n + 1);
    CHECK_STR(weft_task_get_name(a), want);
    CHECK_STR(weft_task_get_name(b), "named");
    snprintf(want, sizeof want, "Task-%lu", n + 2);   /* a named task takes no number */
    CHECK_STR(weft_task_get_name(c), want);
    CHECK_EQ(weft_await(a, NULL), 0);
    CHECK_EQ(weft_await(b, NULL), 0);
    CHECK_EQ(weft_await(c, NULL), 0);
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    return 0;
}

/* test_tasks.py: test_task_default_name (consecutive Task-N numbers);
 * asyncio.run's main task is an ordinary Task-N; the name option keeps "main" */
static void test_task_names(void)
{
    CHECK_EQ(run(names_main, NULL), 0);
    CHECK_EQ(weft_run(names_main, (void *)1, &(weft_run_opts_t){ .name = "main" }, NULL), 0);
}

/* ---- 10. a negative timeout expires now; WEFT_NO_TIMEOUT is none ---------------- */

static int negative_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK(WEFT_NO_TIMEOUT > 0 && isinf(WEFT_NO_TIMEOUT));
    CHECK(WEFT_TIMEOUT_NEVER == WEFT_NO_TIMEOUT);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    weft_future_t *done[1], *pending[1];
    size_t nd, np;
    /* wait(fs, timeout=-1): returns at once with everything pending */
    CHECK_EQ(weft_wait(&f, 1, -1, WEFT_ALL_COMPLETED, done, &nd, pending, &np), 0);
    CHECK_EQ(nd, 0);
    CHECK_EQ(np, 1);
    CHECK_EQ(weft_wait(&f, 1, NAN, WEFT_ALL_COMPLETED, done, &nd, pending, &np), WEFT_EINVAL);
    /* as_completed(fs, timeout=-1): the first step times out */
    weft_as_completed_t *it;
    CHECK_EQ(weft_as_completed_init(&it, &f, 1, -1), 0);
    CHECK_EQ(weft_as_completed_next(it, NULL, NULL), WEFT_ETIMEDOUT);
    weft_as_completed_free(it);
    CHECK_EQ(weft_as_completed_init(&it, &f, 1, NAN), WEFT_EINVAL);
    /* wait_for(f, -1): cancelled, TimeoutError */
    CHECK_EQ(weft_wait_for(f, -1, NULL), WEFT_ETIMEDOUT);
    CHECK(weft_future_cancelled(f));
    weft_future_release(f);
    /* timeout(-1) */
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, -1), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(10)), WEFT_ETIMEDOUT);
    /* sleep(-1) is a yield */
    CHECK_EQ(weft_sleep(-1), 0);
    /* no timeout: really none */
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(3)), 0);
    weft_value_t v;
    CHECK_EQ(weft_wait_for(f, WEFT_NO_TIMEOUT, &v), 0);
    CHECK_EQ(v.i, 3);
    weft_future_release(f);
    return 0;
}

/* test_waitfor.py: test_wait_for_timeout_less_then_0_or_0; test_tasks.py:
 * test_wait_with_timeout / test_as_completed with timeouts (negative expires
 * at once); test_timeouts.py: test_timeout_in_the_past_sleep_zero */
static void test_negative_timeouts(void) { CHECK_EQ(run(negative_main, NULL), 0); }

/* ---- 11. Handle.cancelled() and TimerHandle.when() ------------------------------ */

static int nop_cb(void *arg)
{
    (void)arg;
    return 0;
}

static int handles_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = weft_running_loop();
    weft_handle_t h, s;
    double t0 = weft_loop_time(l);
    CHECK_EQ(weft_call_later(l, 1.5, nop_cb, NULL, &h), 0);
    double t1 = weft_loop_time(l);
    CHECK(weft_handle_when(h) >= t0 + 1.5 - 1e-6 && weft_handle_when(h) <= t1 + 1.5 + 1e-6);
    CHECK(!weft_handle_cancelled(h));
    CHECK_EQ(weft_handle_cancel(h), 1);
    CHECK(weft_handle_cancelled(h));
    CHECK(weft_handle_when(h) >= t0 + 1.5 - 1e-6);   /* when() survives the cancel */
    CHECK_EQ(weft_handle_cancel(h), 0);
    CHECK(weft_handle_cancelled(h));
    double at = weft_loop_time(l) + 100;
    weft_handle_t ha;
    CHECK_EQ(weft_call_at(l, at, nop_cb, NULL, &ha), 0);
    CHECK(fabs(weft_handle_when(ha) - at) < 1e-6);
    CHECK_EQ(weft_handle_cancel(ha), 1);

    CHECK_EQ(weft_call_soon(l, nop_cb, NULL, &s), 0);
    CHECK(isnan(weft_handle_when(s)));     /* a plain Handle has no when() */
    CHECK(!weft_handle_cancelled(s));
    settle(2);                              /* it ran */
    CHECK(!weft_handle_cancelled(s));
    CHECK_EQ(weft_handle_cancel(s), 0);     /* too late to stop it... */
    CHECK(weft_handle_cancelled(s));        /* ...but cancelled() is True, as asyncio's */

    /* a cancelled call_soon handle, then many more callbacks: still cancelled */
    CHECK_EQ(weft_call_soon(l, nop_cb, NULL, &s), 0);
    CHECK_EQ(weft_handle_cancel(s), 1);
    CHECK(weft_handle_cancelled(s));
    for (int i = 0; i < 40; i++)
        CHECK_EQ(weft_call_soon(l, nop_cb, NULL, NULL), 0);
    settle(3);
    CHECK(weft_handle_cancelled(s));
    CHECK(weft_handle_cancelled(h));
    weft_handle_t z = { 0 };
    CHECK(!weft_handle_cancelled(z));
    CHECK(isnan(weft_handle_when(z)));
    return 0;
}

/* test_events.py HandleTests.test_handle (cancelled() after cancel()),
 * TimerTests.test_timer / test_when (TimerHandle.when()) */
static void test_handles(void) { CHECK_EQ(run(handles_main, NULL), 0); }

/* ---- 13. ensure_future, isfuture ------------------------------------------------- */

static int value_coro(void *arg, weft_value_t *out)
{
    out->i = (intptr_t)arg;
    return 0;
}

static int ensure_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f, *g;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    weft_awaitable_t af = WEFT_AW(f);
    CHECK(weft_isfuture(&af));
    CHECK_EQ(weft_ensure_future(&af, &g), 0);
    CHECK(g == f);                        /* a future comes back unchanged */
    weft_future_release(g);
    weft_awaitable_t ac = WEFT_AW_CORO(value_coro, 9);
    CHECK(!weft_isfuture(&ac));
    CHECK_EQ(weft_ensure_future(&ac, &g), 0);
    CHECK(weft_is_task(g));
    weft_awaitable_t at = WEFT_AW(g);
    CHECK(weft_isfuture(&at));            /* a task is a future */
    weft_value_t v;
    CHECK_EQ(weft_await(g, &v), 0);
    CHECK_EQ(v.i, 9);
    weft_future_release(g);
    weft_future_release(f);
    weft_awaitable_t bad = { 0 };
    CHECK_EQ(weft_ensure_future(&bad, &g), WEFT_EINVAL);
    CHECK_EQ(weft_ensure_future(NULL, &g), WEFT_EINVAL);
    CHECK(!weft_isfuture(NULL));
    return 0;
}

/* test_tasks.py: test_ensure_future_future, test_ensure_future_coroutine,
 * test_ensure_future_neither (TypeError); test_futures.py: test_isfuture */
static void test_ensure_future(void)
{
    weft_awaitable_t ac = WEFT_AW_CORO(value_coro, 1);
    weft_future_t *g;
    CHECK_EQ(weft_ensure_future(&ac, &g), WEFT_ENOLOOP);
    CHECK_EQ(run(ensure_main, NULL), 0);
}

/* ---- 14. ExceptionGroup: eg.message and eg.exceptions ---------------------------- */

static int eg_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_taskgroup_t tg;
    job_t a = { .delay = 0, .code = USER_ERR, .msg = "first" };   /* both fail in the same iteration */
    job_t b = { .delay = 0, .code = USER_ERR - 1, .msg = "second" };
    CHECK_EQ(weft_taskgroup_enter(&tg), 0);
    CHECK_EQ(weft_taskgroup_create_task(&tg, NULL, job_fn, &a, &(weft_task_opts_t){ .name = "a" }), 0);
    CHECK_EQ(weft_taskgroup_create_task(&tg, NULL, job_fn, &b, &(weft_task_opts_t){ .name = "b" }), 0);
    CHECK_EQ(weft_taskgroup_exit(&tg, 0), WEFT_EGROUP);
    const weft_errgroup_t *eg = weft_taskgroup_errors(&tg);
    CHECK_STR(weft_errgroup_group_message(eg), "unhandled errors in a TaskGroup (2 sub-exceptions)");
    CHECK_STR(weft_error_message(), weft_errgroup_group_message(eg));   /* str(eg) */
    size_t n = 0;
    const weft_exception_t *ex = weft_errgroup_exceptions(eg, &n);
    CHECK_EQ(n, 2);
    CHECK_EQ(ex[0].code, USER_ERR);
    CHECK_STR(ex[0].message, "first");
    CHECK_STR(ex[0].task_name, "a");
    CHECK_EQ(ex[1].code, USER_ERR - 1);
    CHECK_STR(ex[1].message, "second");
    weft_errgroup_t *own = weft_taskgroup_take_errors(&tg);
    weft_taskgroup_free(&tg);
    CHECK_STR(weft_errgroup_group_message(own), "unhandled errors in a TaskGroup (2 sub-exceptions)");
    weft_errgroup_free(own);
    CHECK(weft_errgroup_group_message(NULL) == NULL);
    CHECK(weft_errgroup_exceptions(NULL, &n) == NULL && n == 0);
    return 0;
}

/* test_taskgroups.py: test_taskgroup_03 / test_taskgroup_08 family (the
 * ExceptionGroup's message and the sub-exceptions' types and texts) */
static void test_exception_group(void) { CHECK_EQ(run(eg_main, NULL), 0); }

int main(int argc, char **argv)
{
    RUN(test_run_error_message);
    RUN(test_cond_wait_for_value);
    RUN(test_current_task);
    RUN(test_exception_handler_handle);
    RUN(test_double_enter);
    RUN(test_cfuture_message);
    RUN(test_to_thread_message);
    RUN(test_executor_futures);
    RUN(test_task_names);
    RUN(test_negative_timeouts);
    RUN(test_handles);
    RUN(test_ensure_future);
    RUN(test_exception_group);
    return 0;
}
