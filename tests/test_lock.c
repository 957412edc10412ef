/* weft_lock_t: CPython's test_locks.py LockTests, plus hand-off and
 * cross-loop cases. Single-loop cases run on weft_loop_new +
 * run_until_complete and check asyncio's exact order; cross-loop ones run on
 * a 2-worker runtime. Every test is bounded by an alarm() watchdog. */
#include "check.h"
#include "watchdog.h"
#include "sync_util.h"
#include "weft.h"

#include <pthread.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */
static weft_lock_t *L;
static int res[64];
static int nres;

/* acquire, record the tag, keep the lock */
static int c_acq(void *arg, weft_value_t *out)
{
    int rc = weft_lock_acquire(L);
    if (rc < 0)
        return rc;
    res[nres++] = (int)(intptr_t)arg;
    out->i = 1;
    return 0;
}

static void reset(void)
{
    CHECK_EQ(weft_lock_new(&L), 0);
    nres = 0;
}

#define RES(...)                                                       \
    do {                                                               \
        int _e[] = { __VA_ARGS__ };                                    \
        CHECK_EQ(nres, (int)(sizeof _e / sizeof _e[0]));               \
        for (int _i = 0; _i < nres; _i++)                              \
            CHECK_EQ(res[_i], _e[_i]);                                 \
    } while (0)

/* ---- test_locks.py: LockTests.test_acquire ------------------------------------------ */
static int acquire_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_acquire(L), 0);
    weft_task_t *t1 = spawn(c_acq, (void *)1), *t2 = spawn(c_acq, (void *)2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nres, 0);
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    weft_task_t *t3 = spawn(c_acq, (void *)3);
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1, 2);
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK_EQ(weft_yield(), 0);
    RES(1, 2, 3);
    CHECK(weft_future_done(t1) && weft_future_done(t2) && weft_future_done(t3));
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    return weft_lock_release(L);
}

static void test_acquire(void)
{
    reset();
    run_loop(acquire_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- LockTests.test_acquire_cancel ------------------------------------------------- */
static int acquire_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_acquire(L), 0);
    weft_task_t *t = spawn(c_acq, (void *)1);
    CHECK_EQ(weft_call_soon(weft_running_loop(), cancel_cb, t, NULL), 0);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t));
    weft_task_release(t);
    /* no waiter left behind: the lock is free for the taking once released */
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK(weft_lock_try_acquire(L));
    return weft_lock_release(L);
}

static void test_acquire_cancel(void)
{
    reset();
    run_loop(acquire_cancel_main, NULL);
    CHECK_EQ(nres, 0);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- LockTests.test_cancel_race ------------------------------------------------------ */
static int lockit(void *arg, weft_value_t *out)
{
    (void)out;
    weft_future_t *blocker = arg;
    int rc = weft_lock_acquire(L);
    if (rc < 0)
        return rc;
    if (blocker)
        rc = weft_await(blocker, NULL);
    CHECK_EQ(weft_lock_release(L), 0);
    return rc;
}

static int cancel_race_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fa;
    CHECK_EQ(weft_future_new(NULL, &fa), 0);
    weft_task_t *ta = spawn(lockit, fa);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_lock_locked(L));
    weft_task_t *tb = spawn(lockit, NULL);
    CHECK_EQ(weft_yield(), 0);
    weft_task_t *tc = spawn(lockit, NULL);
    CHECK_EQ(weft_yield(), 0);
    /* create the race: A releases while B is being cancelled -> C gets it */
    CHECK_EQ(weft_future_set_result(fa, WEFT_VALUE_INT(0)), 0);
    CHECK_EQ(weft_task_cancel(tb, NULL), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK(!weft_lock_locked(L));   /* released to C, which has not run yet */
    CHECK(weft_future_done(ta));
    CHECK(weft_future_cancelled(tb));
    CHECK_EQ(await_release(tc), 0);
    CHECK_EQ(await_release(ta), 0);
    CHECK_EQ(await_release(tb), WEFT_ECANCELED);
    weft_future_release(fa);
    CHECK(!weft_lock_locked(L));
    return 0;
}

static void test_cancel_race(void)
{
    reset();
    run_loop(cancel_race_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- LockTests.test_cancel_release_race ---------------------------------------------- */
static int lock_count, call_count;
static weft_task_t *race_t1;

static int count_lockit(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    call_count++;
    int rc = weft_lock_acquire(L);
    if (rc < 0)
        return rc;
    lock_count++;
    return 0;
}

static int trigger(void *arg)
{
    (void)arg;
    weft_task_cancel(race_t1, NULL);
    CHECK_EQ(weft_lock_release(L), 0);
    return 0;
}

static int cancel_release_race_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_acquire(L), 0);
    race_t1 = spawn(count_lockit, NULL);
    weft_task_t *t2 = spawn(count_lockit, NULL), *t3 = spawn(count_lockit, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_call_soon(weft_running_loop(), trigger, NULL, NULL), 0);
    CHECK_EQ(weft_await(race_t1, NULL), WEFT_ECANCELED);
    CHECK_EQ(lock_count, 1);   /* only one lock was taken */
    CHECK_EQ(call_count, 3);
    CHECK(weft_future_cancelled(race_t1) && weft_future_done(t2));
    CHECK_EQ(weft_task_cancel(t3, NULL), 1);   /* clean up the one stuck in acquire */
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_cancelled(t3));
    weft_task_release(race_t1);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), WEFT_ECANCELED);
    return weft_lock_release(L);
}

static void test_cancel_release_race(void)
{
    reset();
    lock_count = call_count = 0;
    run_loop(cancel_release_race_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- LockTests.test_finished_waiter_cancelled ---------------------------------------- */
static int finished_waiter_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_acquire(L), 0);
    CHECK(weft_lock_locked(L));
    weft_task_t *tb = spawn(c_acq, (void *)2);
    CHECK_EQ(weft_yield(), 0);
    weft_task_t *tc = spawn(c_acq, (void *)3);
    CHECK_EQ(weft_task_cancel(tb, NULL), 1);
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_lock_locked(L));
    CHECK(weft_future_cancelled(tb));
    CHECK_EQ(await_release(tc), 0);
    CHECK_EQ(await_release(tb), WEFT_ECANCELED);
    RES(3);
    return weft_lock_release(L);
}

static void test_finished_waiter_cancelled(void)
{
    reset();
    run_loop(finished_waiter_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- hand-off then cancel (derived from test_finished_waiter_cancelled, with the
 * release before the cancel: B was given the lock, is cancelled before it resumes,
 * and must pass the lock to C instead of losing it or keeping it) ------------------ */
static int handoff_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_acquire(L), 0);
    weft_task_t *tb = spawn(c_acq, (void *)2), *tc = spawn(c_acq, (void *)3);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_lock_release(L), 0);        /* handed to B */
    CHECK(!weft_lock_locked(L));              /* as asyncio: B has not run yet */
    CHECK_EQ(weft_lock_release(L), WEFT_EINVALSTATE);
    CHECK(!weft_lock_try_acquire(L));         /* but nobody can barge in */
    CHECK_EQ(weft_task_cancel(tb, "late"), 1);
    CHECK_EQ(weft_await(tb, NULL), WEFT_ECANCELED);
    CHECK_STR(weft_future_message(tb), "late");
    weft_task_release(tb);
    CHECK_EQ(await_release(tc), 0);           /* C got the lock B passed on */
    RES(3);
    CHECK(weft_lock_locked(L));
    return weft_lock_release(L);
}

static void test_handoff_then_cancel(void)
{
    reset();
    run_loop(handoff_cancel_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- LockTests.test_release_not_acquired / test_release_no_waiters -------------------- */
static int release_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_release(L), WEFT_EINVALSTATE);
    CHECK_EQ(weft_lock_acquire(L), 0);
    CHECK(weft_lock_locked(L));
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK(!weft_lock_locked(L));
    CHECK_EQ(weft_lock_release(L), WEFT_EINVALSTATE);
    return 0;
}

static void test_release_not_acquired(void)
{
    reset();
    run_loop(release_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- FIFO order of many waiters (LockTests.test_acquire, scaled up) ------------------- */
static int c_acq_release(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_lock_acquire(L);
    if (rc < 0)
        return rc;
    res[nres++] = (int)(intptr_t)arg;
    rc = weft_yield();   /* hold it across a suspension */
    CHECK_EQ(weft_lock_release(L), 0);
    return rc;
}

static int fifo_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[40];
    CHECK_EQ(weft_lock_acquire(L), 0);
    for (int i = 0; i < 40; i++)
        ts[i] = spawn(c_acq_release, (void *)(intptr_t)i);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_lock_release(L), 0);
    for (int i = 0; i < 40; i++)
        CHECK_EQ(await_release(ts[i]), 0);
    CHECK_EQ(nres, 40);
    for (int i = 0; i < 40; i++)
        CHECK_EQ(res[i], i);
    return 0;
}

static void test_fifo_order(void)
{
    reset();
    run_loop(fifo_main, NULL);
    CHECK(!weft_lock_locked(L));
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- wait_for / timeout scope on acquire (ConditionTests.test_timeout_in_block,
 * SemaphoreTests.test_acquire_no_hang, applied to Lock) ---------------------------------- */
static int acq_coro(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_lock_acquire(arg);
}

static int timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_acquire(L), 0);
    CHECK_EQ(weft_wait_for_coro(acq_coro, L, 0.02, NULL), WEFT_ETIMEDOUT);
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.02), 0);
    int rc = weft_lock_acquire(L);
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    /* the timed-out waiters left no trace: release and take it at once */
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK_EQ(weft_wait_for_coro(acq_coro, L, 1.0, NULL), 0);
    return weft_lock_release(L);
}

static void test_wait_for_timeout(void)
{
    reset();
    run_loop(timeout_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- bad input, threads ---------------------------------------------------------------- */
static int busy_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_lock_acquire(L), 0);
    weft_task_t *t = spawn(c_acq, (void *)1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_lock_free(L), WEFT_EBUSY);   /* a task waits on it */
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(await_release(t), WEFT_ECANCELED);
    return weft_lock_release(L);
}

static void test_bad_input(void)
{
    CHECK_EQ(weft_lock_new(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_lock_acquire(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_lock_release(NULL), WEFT_EINVAL);
    CHECK(!weft_lock_locked(NULL));
    CHECK(!weft_lock_try_acquire(NULL));
    CHECK_EQ(weft_lock_free(NULL), 0);
    reset();
    CHECK_EQ(weft_lock_acquire(L), WEFT_ENOTCORO);   /* not inside a task */
    CHECK(weft_lock_try_acquire(L));                 /* plain threads may use the non-waiting calls */
    CHECK_EQ(weft_lock_release(L), 0);
    run_loop(busy_main, NULL);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- cross-loop: FIFO across loops; release from a plain thread ------------------------ */
static weft_event_t *ready;
static int xres[16];
static unsigned int xn;

static int x_acq_release(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_lock_acquire(L);
    if (rc < 0)
        return rc;
    xres[__atomic_fetch_add(&xn, 1, __ATOMIC_RELAXED)] = (int)(intptr_t)arg;
    rc = weft_sleep(0.001);
    CHECK_EQ(weft_lock_release(L), 0);
    return rc;
}

/* on loop 1: five waiters queue in creation order, then tell loop 0 */
static int x_setup(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[5];
    for (int i = 0; i < 5; i++)
        ts[i] = spawn(x_acq_release, (void *)(intptr_t)i);
    CHECK_EQ(weft_yield(), 0);   /* each ran up to its wait, in order */
    CHECK_EQ(weft_event_set(ready), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(await_release(ts[i]), 0);
    return 0;
}

static void *releaser_thread(void *arg)
{
    (void)arg;
    usleep(10000);
    CHECK_EQ(weft_lock_release(L), 0);   /* a plain thread hands the lock to loop 1 */
    return NULL;
}

static int cross_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    CHECK_EQ(weft_lock_acquire(L), 0);
    weft_task_t *s;
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, 1), &s, x_setup, NULL, NULL), 0);
    CHECK_EQ(weft_event_wait(ready), 0);
    /* a waiter of loop 0 queues behind the five of loop 1 */
    weft_task_t *mine = spawn(x_acq_release, (void *)5);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_lock_release(L), 0);
    CHECK_EQ(await_release(s), 0);
    CHECK_EQ(await_release(mine), 0);
    CHECK_EQ(xn, 6);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(xres[i], i);
    /* the lock held by loop 0, released by a plain thread, to a waiter on loop 1 */
    CHECK_EQ(weft_lock_acquire(L), 0);
    xn = 0;
    weft_task_t *w;
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, 1), &w, x_acq_release, (void *)9, NULL), 0);
    CHECK_EQ(weft_sleep(0.005), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, releaser_thread, NULL), 0);
    CHECK_EQ(await_release(w), 0);
    pthread_join(th, NULL);
    CHECK_EQ(xn, 1);
    CHECK_EQ(xres[0], 9);
    CHECK(!weft_lock_locked(L));
    return 0;
}

static void test_cross_loop_fifo(void)
{
    reset();
    CHECK_EQ(weft_event_new(&ready), 0);
    run_rt(2, cross_main, NULL);
    CHECK_EQ(weft_event_free(ready), 0);
    CHECK_EQ(weft_lock_free(L), 0);
}

/* ---- cross-loop hand-off under cancellation: waiters on both loops, every other one
 * cancelled at a random moment; the lock is never lost nor held twice ------------------- */
#define HC_N 400
static int holders;          /* tasks inside the critical section (must stay <= 1) */
static unsigned int hc_done, hc_cancelled;

static int hc_worker(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_lock_acquire(L);
    if (rc < 0) {
        __atomic_fetch_add(&hc_cancelled, 1, __ATOMIC_RELAXED);
        return rc;
    }
    CHECK_EQ(__atomic_add_fetch(&holders, 1, __ATOMIC_RELAXED), 1);
    weft_yield();   /* a cancel landing here is delivered later; we still release */
    CHECK_EQ(__atomic_sub_fetch(&holders, 1, __ATOMIC_RELAXED), 0);
    CHECK_EQ(weft_lock_release(L), 0);
    __atomic_fetch_add(&hc_done, 1, __ATOMIC_RELAXED);
    return 0;
}

static int hc_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[HC_N];
    unsigned int seed = 12345;
    for (int i = 0; i < HC_N; i++)
        CHECK_EQ(weft_spawn(&ts[i], hc_worker, NULL, NULL), 0);
    for (int i = 0; i < HC_N; i += 2) {
        seed = seed * 1103515245u + 12345u;
        if (seed >> 30)
            weft_yield();
        weft_task_cancel(ts[i], NULL);
    }
    for (int i = 0; i < HC_N; i++) {
        weft_await(ts[i], NULL);
        weft_task_release(ts[i]);
    }
    CHECK(!weft_lock_locked(L));
    CHECK(weft_lock_try_acquire(L));   /* free, and nobody left waiting */
    CHECK_EQ(weft_lock_release(L), 0);
    return 0;
}

static void test_cross_loop_cancel_handoff(void)
{
    reset();
    run_rt(2, hc_main, NULL);
    printf("  %u acquired, %u cancelled while waiting\n", hc_done, hc_cancelled);
    CHECK(hc_done + hc_cancelled <= HC_N);
    CHECK(hc_done >= HC_N / 2);
    CHECK_EQ(weft_lock_free(L), 0);
}

int main(int argc, char **argv)
{
    alarm(120 * WD_SCALE);   /* watchdog: a hang fails the test */
    RUN(test_acquire);
    RUN(test_acquire_cancel);
    RUN(test_cancel_race);
    RUN(test_cancel_release_race);
    RUN(test_finished_waiter_cancelled);
    RUN(test_handoff_then_cancel);
    RUN(test_release_not_acquired);
    RUN(test_fifo_order);
    RUN(test_wait_for_timeout);
    RUN(test_bad_input);
    RUN(test_cross_loop_fifo);
    RUN(test_cross_loop_cancel_handoff);
    return 0;
}
