/* weft_event_t and weft_cond_t: CPython's test_locks.py EventTests and
 * ConditionTests, plus cross-loop cases (tasks of two loops and a plain
 * thread sharing one Event / Condition). Every test is bounded by alarm(). */
#include "check.h"
#include "watchdog.h"
#include "sync_util.h"
#include "weft.h"

#include <pthread.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */
static int release_cb(void *arg)
{
    weft_lock_release(arg);
    return 0;
}

static int res[64];
static int nres;

#define RES(...)                                                       \
    do {                                                               \
        int _e[] = { __VA_ARGS__ };                                    \
        CHECK_EQ(nres, (int)(sizeof _e / sizeof _e[0]));               \
        for (int _i = 0; _i < nres; _i++)                              \
            CHECK_EQ(res[_i], _e[_i]);                                 \
    } while (0)

/* ==== Event ========================================================================= */
static weft_event_t *E;

static int ev_waiter(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_event_wait(E);
    if (rc < 0)
        return rc;
    res[nres++] = (int)(intptr_t)arg;
    return 0;
}

/* EventTests.test_wait: tasks woken by set() run after one created before it */
static int ev_wait_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK(!weft_event_is_set(E));
    weft_task_t *t1 = spawn(ev_waiter, (void *)1), *t2 = spawn(ev_waiter, (void *)2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    weft_task_t *t3 = spawn(ev_waiter, (void *)3);
    CHECK_EQ(weft_event_set(E), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(3, 1, 2);
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    return 0;
}

/* EventTests.test_wait_on_set */
static int ev_wait_on_set_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_event_set(E), 0);
    CHECK_EQ(weft_event_wait(E), 0);
    return 0;
}

/* EventTests.test_wait_cancel */
static int ev_wait_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t = spawn(ev_waiter, (void *)1);
    CHECK_EQ(weft_call_soon(weft_running_loop(), cancel_cb, t, NULL), 0);
    CHECK_EQ(await_release(t), WEFT_ECANCELED);
    CHECK_EQ(weft_event_free(E), 0);   /* no waiter left behind */
    CHECK_EQ(weft_event_new(&E), 0);
    return 0;
}

/* EventTests.test_clear */
static int ev_clear_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK(!weft_event_is_set(E));
    CHECK_EQ(weft_event_set(E), 0);
    CHECK(weft_event_is_set(E));
    weft_event_clear(E);
    CHECK(!weft_event_is_set(E));
    return 0;
}

/* EventTests.test_clear_with_waiters: set+clear still wakes the waiter */
static int ev_clear_waiters_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t = spawn(ev_waiter, (void *)1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    CHECK_EQ(weft_event_set(E), 0);
    weft_event_clear(E);
    CHECK(!weft_event_is_set(E));
    CHECK_EQ(weft_event_set(E), 0);
    CHECK_EQ(weft_event_set(E), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    CHECK(weft_future_done(t));
    CHECK_EQ(await_release(t), 0);
    return 0;
}

/* woken by set(), then cancelled before it ran: it ends cancelled (asyncio
 * raises CancelledError there too), and the other waiters are unaffected */
static int ev_set_then_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(ev_waiter, (void *)1), *t2 = spawn(ev_waiter, (void *)2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_event_set(E), 0);
    CHECK_EQ(weft_task_cancel(t1, NULL), 1);
    CHECK_EQ(await_release(t1), WEFT_ECANCELED);
    CHECK_EQ(await_release(t2), 0);
    RES(2);
    return 0;
}

static void ev_case(weft_coro_fn fn)
{
    CHECK_EQ(weft_event_new(&E), 0);
    nres = 0;
    run_loop(fn, NULL);
    CHECK_EQ(weft_event_free(E), 0);
}

static void test_event_wait(void) { ev_case(ev_wait_main); }
static void test_event_wait_on_set(void) { ev_case(ev_wait_on_set_main); }
static void test_event_wait_cancel(void) { ev_case(ev_wait_cancel_main); }
static void test_event_clear(void) { ev_case(ev_clear_main); }
static void test_event_clear_with_waiters(void) { ev_case(ev_clear_waiters_main); }
static void test_event_set_then_cancel(void) { ev_case(ev_set_then_cancel_main); }

/* wait_for on Event.wait (QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters
 * applied to Event): the timed-out waiter leaves nothing behind */
static int ev_wait_coro(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_event_wait(arg);
}

static int ev_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_wait_for_coro(ev_wait_coro, E, 0.01, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_event_free(E), 0);
    CHECK_EQ(weft_event_new(&E), 0);
    return 0;
}

static void test_event_wait_for_timeout(void) { ev_case(ev_timeout_main); }

/* cross-loop: waiters on two loops, set() from a plain thread wakes them all */
#define XEV 64
static unsigned int xev_woken;

static int xev_waiter(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_event_wait(E);
    if (rc == 0)
        __atomic_fetch_add(&xev_woken, 1, __ATOMIC_RELAXED);
    return rc;
}

static void *setter_thread(void *arg)
{
    (void)arg;
    usleep(20000);
    CHECK_EQ(weft_event_set(E), 0);
    return NULL;
}

static int xev_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    weft_task_t *ts[XEV];
    for (int i = 0; i < XEV; i++)
        CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, i % 2), &ts[i], xev_waiter, NULL, NULL), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, setter_thread, NULL), 0);
    for (int i = 0; i < XEV; i++)
        CHECK_EQ(await_release(ts[i]), 0);
    pthread_join(th, NULL);
    CHECK_EQ(xev_woken, XEV);
    return 0;
}

static void test_event_cross_loop_set_from_thread(void)
{
    CHECK_EQ(weft_event_new(&E), 0);
    run_rt(2, xev_main, NULL);
    CHECK_EQ(weft_event_free(E), 0);
}

/* ==== Condition ====================================================================== */
static weft_cond_t *C;

static int cond_waiter(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_cond_acquire(C);
    if (rc < 0)
        return rc;
    rc = weft_cond_wait(C);
    if (rc < 0)
        return rc;
    res[nres++] = (int)(intptr_t)arg;
    return 0;   /* keeps the lock, as in the CPython test */
}

/* ConditionTests.test_wait */
static int cond_wait_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(cond_waiter, (void *)1), *t2 = spawn(cond_waiter, (void *)2),
                *t3 = spawn(cond_waiter, (void *)3);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    CHECK(!weft_cond_locked(C));
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(weft_cond_notify(C, 2), 2);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1, 2);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1, 2, 3);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    return weft_cond_release(C);
}

static int cond_wait_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_cond_wait(C);
}

/* ConditionTests.test_wait_cancel: cancelled, it still holds the lock again */
static int cond_wait_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_cond_acquire(C), 0);
    weft_task_t *w = spawn(cond_wait_coro, NULL);
    CHECK_EQ(weft_call_soon(weft_running_loop(), cancel_cb, w, NULL), 0);
    CHECK_EQ(await_release(w), WEFT_ECANCELED);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(weft_cond_notify_all(C), 0);   /* no waiter left behind */
    return weft_cond_release(C);
}

/* ConditionTests.test_wait_cancel_contested */
static int cond_wait_cancel_contested_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK(weft_cond_locked(C));
    weft_task_t *w = spawn(cond_wait_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK(!weft_cond_locked(C));
    /* notify, but contest the lock before cancelling */
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_call_soon(weft_running_loop(), cancel_cb, w, NULL), 0);
    CHECK_EQ(weft_call_soon(weft_running_loop(), release_cb, weft_cond_lock(C), NULL), 0);
    int rc = await_release(w);
    CHECK(rc == 0 || rc == WEFT_ECANCELED);
    CHECK(weft_cond_locked(C));   /* the waiter holds it either way */
    return weft_cond_release(C);
}

/* ConditionTests.test_wait_cancel_after_notify (bpo-32841) */
static int waited;

static int wait_on_cond(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_cond_acquire(C);
    if (rc < 0)
        return rc;
    waited = 1;
    rc = weft_cond_wait(C);
    CHECK_EQ(weft_cond_release(C), 0);
    return rc;
}

static int cond_cancel_after_notify_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    waited = 0;
    weft_task_t *w = spawn(wait_on_cond, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_yield(), 0);   /* the waiter gets to acquire() */
    CHECK_EQ(weft_task_cancel(w, NULL), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_cancelled(w));
    CHECK(waited);
    CHECK_EQ(await_release(w), WEFT_ECANCELED);
    CHECK(!weft_cond_locked(C));
    return 0;
}

/* ConditionTests.test_wait_unacquired, test_wait_for_unacquired,
 * test_notify_unacquired, test_notify_all_unacquired */
static int pred_true(void *arg)
{
    (void)arg;
    return true;
}

static int pred_flag(void *arg) { return *(volatile int *)arg != 0; }

static int cond_unacquired_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_cond_wait(C), WEFT_EINVALSTATE);
    CHECK_EQ(weft_cond_wait_for(C, pred_true, NULL), 1);   /* true at once: no lock needed; the predicate's value */
    int zero = 0;
    CHECK_EQ(weft_cond_wait_for(C, pred_flag, &zero), WEFT_EINVALSTATE);
    CHECK_EQ(weft_cond_notify(C, 1), WEFT_EINVALSTATE);
    CHECK_EQ(weft_cond_notify_all(C), WEFT_EINVALSTATE);
    return 0;
}

/* ConditionTests.test_wait_for */
static volatile int presult;

static int wait_for_waiter(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_cond_acquire(C);
    if (rc < 0)
        return rc;
    rc = weft_cond_wait_for(C, pred_flag, (void *)&presult);
    if (rc < 0)
        return rc;
    res[nres++] = (int)(intptr_t)arg;
    return weft_cond_release(C);
}

static int cond_wait_for_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    presult = 0;
    weft_task_t *t = spawn(wait_for_waiter, (void *)1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    presult = 1;
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    CHECK(weft_future_done(t));
    CHECK_EQ(await_release(t), 0);
    return 0;
}

/* ConditionTests.test_notify */
static int notify_waiter(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_cond_acquire(C);
    if (rc < 0)
        return rc;
    rc = weft_cond_wait(C);
    if (rc < 0)
        return rc;
    res[nres++] = (int)(intptr_t)arg;
    return weft_cond_release(C);
}

static int cond_notify_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(notify_waiter, (void *)1), *t2 = spawn(notify_waiter, (void *)2),
                *t3 = spawn(notify_waiter, (void *)3);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_cond_notify(C, 2048), 1);
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1, 2, 3);
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    return 0;
}

/* ConditionTests.test_notify_all */
static int cond_notify_all_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(notify_waiter, (void *)1), *t2 = spawn(notify_waiter, (void *)2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_cond_notify_all(C), 2);
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1, 2);
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    return 0;
}

/* ConditionTests.test_timeout_in_block: wait_for(cond.wait(), 0.01) times out
 * with the lock held again */
static int cond_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_cond_acquire(C), 0);
    CHECK_EQ(weft_wait_for_coro(cond_wait_coro, NULL, 0.01, NULL), WEFT_ETIMEDOUT);
    CHECK(weft_cond_locked(C));
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.01), 0);
    int rc = weft_cond_wait(C);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(weft_cond_notify_all(C), 0);
    return weft_cond_release(C);
}

/* ConditionTests.test_cancelled_error_wakeup / test_cancelled_error_re_aquire:
 * the cancel message survives a cancel while waiting and while re-acquiring */
static volatile int wake;

static int cancelled_error_func(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_cond_acquire(C);
    if (rc < 0)
        return rc;
    rc = weft_cond_wait_for(C, pred_flag, (void *)&wake);
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK(weft_cond_locked(C));
    CHECK_STR(weft_error_message(), "foo");
    CHECK_EQ(weft_cond_release(C), 0);
    return rc;
}

static int cond_cancelled_error_wakeup_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    wake = 0;
    weft_task_t *t = spawn(cancelled_error_func, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t, "foo"), 1);   /* waiting on the condition */
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_STR(weft_future_message(t), "foo");
    weft_task_release(t);
    return 0;
}

static int cond_cancelled_error_reacquire_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    wake = 0;
    weft_task_t *t = spawn(cancelled_error_func, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_cond_acquire(C), 0);
    wake = 1;
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t, "foo"), 1);   /* trying to re-acquire the lock */
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_STR(weft_future_message(t), "foo");
    weft_task_release(t);
    return 0;
}

/* ConditionTests.test_cancelled_wakeup / test_cancelled_wakeup_relock: a cancel
 * racing with notify() loses no wake-up */
static int state;

static int state_nonzero(void *arg)
{
    (void)arg;
    return state != 0;
}

static int state_zero(void *arg)
{
    (void)arg;
    return state == 0;
}

static int consumer(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_cond_acquire(C);
    if (rc < 0)
        return rc;
    for (;;) {
        rc = weft_cond_wait_for(C, state_nonzero, NULL);
        if (rc < 0)
            break;
        if (state < 0)
            break;
        state -= 1;
    }
    CHECK_EQ(weft_cond_release(C), 0);
    return rc;
}

static int cancelled_wakeup_main(void *arg, weft_value_t *out)
{
    bool relock = arg != NULL;
    (void)out;
    state = 0;
    weft_task_t *c0 = spawn(consumer, NULL), *c1 = spawn(consumer, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_cond_acquire(C), 0);
    state += 1;
    CHECK_EQ(weft_cond_notify(C, 1), 1);
    if (relock)
        CHECK_EQ(weft_yield(), 0);   /* c0 settles on re-acquiring the lock */
    CHECK_EQ(weft_task_cancel(c0, NULL), 1);
    /* wait for the item to be consumed: if the notify was lost it never is */
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.05), 0);
    int rc = weft_cond_wait_for(C, state_zero, NULL);
    rc = weft_timeout_exit(&to, rc);
    CHECK(rc == 0 || rc == WEFT_ETIMEDOUT);
    CHECK(weft_cond_locked(C));
    CHECK_EQ(state, 0);
    state = -1;
    weft_cond_notify_all(C);
    CHECK_EQ(weft_cond_release(C), 0);
    CHECK_EQ(await_release(c1), 0);
    CHECK_EQ(await_release(c0), WEFT_ECANCELED);
    return 0;
}

/* ConditionTests.test_explicit_lock: a Condition on a given Lock */
static int explicit_lock_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_lock_t *lock;
    CHECK_EQ(weft_lock_new(&lock), 0);
    weft_cond_t *c;
    CHECK_EQ(weft_cond_new(lock, &c), 0);
    CHECK(weft_cond_lock(c) == lock);
    CHECK(!weft_lock_locked(lock) && !weft_cond_locked(c));
    CHECK_EQ(weft_cond_acquire(c), 0);
    CHECK(weft_lock_locked(lock) && weft_cond_locked(c));
    CHECK_EQ(weft_cond_release(c), 0);
    CHECK(!weft_lock_locked(lock) && !weft_cond_locked(c));
    CHECK_EQ(weft_lock_acquire(lock), 0);
    CHECK(weft_lock_locked(lock) && weft_cond_locked(c));
    CHECK_EQ(weft_lock_release(lock), 0);
    /* two conditions sharing one lock */
    weft_cond_t *c2;
    CHECK_EQ(weft_cond_new(lock, &c2), 0);
    CHECK_EQ(weft_cond_acquire(c2), 0);
    CHECK(weft_cond_locked(c));
    CHECK_EQ(weft_cond_notify(c, 1), 0);
    CHECK_EQ(weft_cond_release(c), 0);
    CHECK_EQ(weft_cond_free(c), 0);
    CHECK_EQ(weft_cond_free(c2), 0);
    CHECK(!weft_lock_locked(lock));   /* a given lock outlives its conditions */
    CHECK_EQ(weft_lock_free(lock), 0);
    return 0;
}

static void cond_case(weft_coro_fn fn, void *arg)
{
    CHECK_EQ(weft_cond_new(NULL, &C), 0);
    nres = 0;
    run_loop(fn, arg);
    CHECK_EQ(weft_cond_free(C), 0);
}

static void test_cond_wait(void) { cond_case(cond_wait_main, NULL); }
static void test_cond_wait_cancel(void) { cond_case(cond_wait_cancel_main, NULL); }
static void test_cond_wait_cancel_contested(void) { cond_case(cond_wait_cancel_contested_main, NULL); }
static void test_cond_wait_cancel_after_notify(void) { cond_case(cond_cancel_after_notify_main, NULL); }
static void test_cond_unacquired(void) { cond_case(cond_unacquired_main, NULL); }
static void test_cond_wait_for(void) { cond_case(cond_wait_for_main, NULL); }
static void test_cond_notify(void) { cond_case(cond_notify_main, NULL); }
static void test_cond_notify_all(void) { cond_case(cond_notify_all_main, NULL); }
static void test_cond_timeout_in_block(void) { cond_case(cond_timeout_main, NULL); }
static void test_cond_cancelled_error_wakeup(void) { cond_case(cond_cancelled_error_wakeup_main, NULL); }
static void test_cond_cancelled_error_re_aquire(void) { cond_case(cond_cancelled_error_reacquire_main, NULL); }
static void test_cond_cancelled_wakeup(void) { cond_case(cancelled_wakeup_main, NULL); }
static void test_cond_cancelled_wakeup_relock(void) { cond_case(cancelled_wakeup_main, (void *)1); }
static void test_cond_explicit_lock(void) { run_loop(explicit_lock_main, NULL); }

/* ---- cross-loop: a bounded buffer built on one Condition, producers and consumers
 * as stealable tasks on two loops; every item consumed exactly once ------------------ */
#define XC_ITEMS 20000
#define XC_CAP 8
static int buf[XC_CAP], bhead, bcount;   /* guarded by the condition's lock */
static unsigned char seen[XC_ITEMS];
static int consumed;

static int not_full(void *arg)
{
    (void)arg;
    return bcount < XC_CAP;
}

static int not_empty_or_done(void *arg)
{
    (void)arg;
    return bcount > 0 || consumed >= XC_ITEMS;
}

static int xc_producer(void *arg, weft_value_t *out)
{
    (void)out;
    for (int i = (int)(intptr_t)arg; i < XC_ITEMS; i += 2) {
        CHECK_EQ(weft_cond_acquire(C), 0);
        CHECK_EQ(weft_cond_wait_for(C, not_full, NULL), 1);
        buf[(bhead + bcount++) % XC_CAP] = i;
        CHECK(weft_cond_notify_all(C) >= 0);
        CHECK_EQ(weft_cond_release(C), 0);
    }
    return 0;
}

static int xc_consumer(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_cond_acquire(C), 0);
    for (;;) {
        CHECK_EQ(weft_cond_wait_for(C, not_empty_or_done, NULL), 1);
        if (bcount == 0)
            break;
        int v = buf[bhead];
        bhead = (bhead + 1) % XC_CAP;
        bcount--;
        seen[v]++;
        consumed++;
        CHECK(weft_cond_notify_all(C) >= 0);
        if (consumed % 64 == 0) {   /* let others in now and then */
            CHECK_EQ(weft_cond_release(C), 0);
            CHECK_EQ(weft_yield(), 0);
            CHECK_EQ(weft_cond_acquire(C), 0);
        }
    }
    CHECK_EQ(weft_cond_release(C), 0);
    return 0;
}

static int xc_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[6];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(weft_spawn(&ts[i], xc_producer, (void *)(intptr_t)i, NULL), 0);
    for (int i = 2; i < 6; i++)
        CHECK_EQ(weft_spawn(&ts[i], xc_consumer, NULL, NULL), 0);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(await_release(ts[i]), 0);
    return 0;
}

static void test_cond_cross_loop_bounded_buffer(void)
{
    CHECK_EQ(weft_cond_new(NULL, &C), 0);
    run_rt(2, xc_main, NULL);
    CHECK_EQ(consumed, XC_ITEMS);
    for (int i = 0; i < XC_ITEMS; i++)
        CHECK_EQ(seen[i], 1);
    CHECK_EQ(weft_cond_free(C), 0);
}

static void test_bad_input(void)
{
    CHECK_EQ(weft_event_new(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_event_wait(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_event_set(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cond_new(NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cond_wait(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cond_notify(NULL, 1), WEFT_EINVAL);
    CHECK_EQ(weft_event_new(&E), 0);
    CHECK_EQ(weft_event_wait(E), WEFT_ENOTCORO);
    CHECK_EQ(weft_event_free(E), 0);
    CHECK_EQ(weft_cond_new(NULL, &C), 0);
    CHECK_EQ(weft_cond_wait(C), WEFT_ENOTCORO);
    CHECK_EQ(weft_cond_notify(C, -1), WEFT_EINVAL);
    CHECK_EQ(weft_cond_free(C), 0);
}

int main(int argc, char **argv)
{
    alarm(120 * WD_SCALE);   /* watchdog: a hang fails the test */
    RUN(test_event_wait);
    RUN(test_event_wait_on_set);
    RUN(test_event_wait_cancel);
    RUN(test_event_clear);
    RUN(test_event_clear_with_waiters);
    RUN(test_event_set_then_cancel);
    RUN(test_event_wait_for_timeout);
    RUN(test_event_cross_loop_set_from_thread);
    RUN(test_cond_wait);
    RUN(test_cond_wait_cancel);
    RUN(test_cond_wait_cancel_contested);
    RUN(test_cond_wait_cancel_after_notify);
    RUN(test_cond_unacquired);
    RUN(test_cond_wait_for);
    RUN(test_cond_notify);
    RUN(test_cond_notify_all);
    RUN(test_cond_timeout_in_block);
    RUN(test_cond_cancelled_error_wakeup);
    RUN(test_cond_cancelled_error_re_aquire);
    RUN(test_cond_cancelled_wakeup);
    RUN(test_cond_cancelled_wakeup_relock);
    RUN(test_cond_explicit_lock);
    RUN(test_cond_cross_loop_bounded_buffer);
    RUN(test_bad_input);
    return 0;
}
