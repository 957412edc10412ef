/* weft_sem_t: CPython's test_locks.py SemaphoreTests (3.12's strict FIFO
 * semaphore), BoundedSemaphore, and cross-loop cases. Every test is bounded
 * by an alarm() watchdog. */
#include "check.h"
#include "watchdog.h"
#include "sync_util.h"
#include "weft.h"

#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */
static weft_sem_t *S;
static int res[64];
static int nres;

#define RES(...)                                                       \
    do {                                                               \
        int _e[] = { __VA_ARGS__ };                                    \
        CHECK_EQ(nres, (int)(sizeof _e / sizeof _e[0]));               \
        for (int _i = 0; _i < nres; _i++)                              \
            CHECK_EQ(res[_i], _e[_i]);                                 \
    } while (0)

static int c_acq(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_sem_acquire(S);
    if (rc < 0)
        return rc;
    res[nres++] = (int)(intptr_t)arg;
    return 0;
}

static void sem_case(int value, weft_coro_fn fn)
{
    CHECK_EQ(weft_sem_new(value, &S), 0);
    nres = 0;
    run_loop(fn, NULL);
    CHECK_EQ(weft_sem_free(S), 0);
}

/* ---- SemaphoreTests.test_initial_value_zero, test_semaphore, test_semaphore_value ---- */
static void test_initial_values(void)
{
    CHECK_EQ(weft_sem_new(0, &S), 0);
    CHECK(weft_sem_locked(S));
    CHECK_EQ(weft_sem_value(S), 0);
    CHECK_EQ(weft_sem_free(S), 0);
    CHECK_EQ(weft_sem_new(1, &S), 0);
    CHECK(!weft_sem_locked(S));
    CHECK_EQ(weft_sem_value(S), 1);
    CHECK_EQ(weft_sem_free(S), 0);
    CHECK_EQ(weft_sem_new(-1, &S), WEFT_EINVAL);   /* "Semaphore initial value must be >= 0" */
    CHECK_EQ(weft_bounded_sem_new(-1, &S), WEFT_EINVAL);
    CHECK_EQ(weft_sem_new(1, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_sem_acquire(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_sem_release(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_sem_new(1, &S), 0);
    CHECK_EQ(weft_sem_acquire(S), WEFT_ENOTCORO);
    CHECK_EQ(weft_sem_release(S), 0);   /* any thread may release */
    CHECK_EQ(weft_sem_value(S), 2);
    CHECK_EQ(weft_sem_free(S), 0);
}

/* ---- SemaphoreTests.test_acquire ----------------------------------------------------- */
static int acquire_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sem_acquire(S), 0);
    CHECK_EQ(weft_sem_acquire(S), 0);
    CHECK(!weft_sem_locked(S));
    weft_task_t *t1 = spawn(c_acq, (void *)1), *t2 = spawn(c_acq, (void *)2), *t3 = spawn(c_acq, (void *)3);
    CHECK_EQ(weft_yield(), 0);
    RES(1);
    CHECK(weft_sem_locked(S));
    CHECK_EQ(weft_sem_value(S), 0);
    weft_task_t *t4 = spawn(c_acq, (void *)4);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_value(S), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_sem_value(S), 0);
    CHECK_EQ(nres, 3);
    CHECK(weft_sem_locked(S));
    CHECK(weft_future_done(t1));
    int done = weft_future_done(t2) + weft_future_done(t3) + weft_future_done(t4);
    CHECK_EQ(done, 2);
    CHECK(!weft_future_done(t4));   /* FIFO: t2 and t3 were first */
    CHECK_EQ(weft_sem_release(S), 0);   /* clean up the locked semaphore */
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    CHECK_EQ(await_release(t4), 0);
    RES(1, 2, 3, 4);
    return 0;
}

static void test_acquire(void) { sem_case(3, acquire_main); }

/* ---- SemaphoreTests.test_acquire_cancel ----------------------------------------------- */
static int acquire_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sem_acquire(S), 0);
    weft_task_t *t = spawn(c_acq, (void *)1);
    CHECK_EQ(weft_call_soon(weft_running_loop(), cancel_cb, t, NULL), 0);
    CHECK_EQ(await_release(t), WEFT_ECANCELED);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK(!weft_sem_locked(S));   /* no waiter left behind */
    CHECK_EQ(weft_sem_value(S), 1);
    return 0;
}

static void test_acquire_cancel(void) { sem_case(1, acquire_cancel_main); }

/* ---- SemaphoreTests.test_acquire_cancel_before_awoken ------------------------------------ */
static int cancel_before_awoken_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn(c_acq, (void *)(intptr_t)(i + 1));
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t[0], NULL), 1);
    CHECK_EQ(weft_task_cancel(t[1], NULL), 1);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_done(t[2]) + weft_future_done(t[3]), 1);
    CHECK(weft_future_done(t[2]));
    CHECK(!weft_future_done(t[3]));
    CHECK_EQ(weft_task_cancel(t[2], NULL), 0);   /* already done */
    CHECK_EQ(weft_task_cancel(t[3], NULL), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(await_release(t[0]), WEFT_ECANCELED);
    CHECK_EQ(await_release(t[1]), WEFT_ECANCELED);
    CHECK_EQ(await_release(t[2]), 0);
    CHECK_EQ(await_release(t[3]), WEFT_ECANCELED);
    RES(3);
    return 0;
}

static void test_acquire_cancel_before_awoken(void) { sem_case(0, cancel_before_awoken_main); }

/* ---- SemaphoreTests.test_acquire_hang --------------------------------------------------- */
static int acquire_hang_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(c_acq, (void *)1), *t2 = spawn(c_acq, (void *)2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t1, NULL), 1);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_sem_locked(S));
    CHECK(weft_future_done(t2));
    CHECK_EQ(await_release(t1), WEFT_ECANCELED);
    CHECK_EQ(await_release(t2), 0);
    return 0;
}

static void test_acquire_hang(void) { sem_case(0, acquire_hang_main); }

/* ---- granted, then cancelled before resuming: the permit passes to the next waiter
 * (3.12's acquire: "if fut.done() and not fut.cancelled(): self._value += 1") ------------ */
static int granted_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(c_acq, (void *)1), *t2 = spawn(c_acq, (void *)2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_sem_release(S), 0);   /* the permit is handed to t1 */
    CHECK_EQ(weft_sem_value(S), 0);
    CHECK(weft_sem_locked(S));
    CHECK_EQ(weft_task_cancel(t1, NULL), 1);
    CHECK_EQ(await_release(t1), WEFT_ECANCELED);
    CHECK_EQ(await_release(t2), 0);     /* t2 got the permit t1 gave back */
    RES(2);
    CHECK_EQ(weft_sem_value(S), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_value(S), 1);
    return 0;
}

static void test_granted_then_cancelled(void) { sem_case(0, granted_cancel_main); }

/* ---- SemaphoreTests.test_acquire_no_hang (with wait_for, as the CPython case) ------------ */
static int holder(void *arg, weft_value_t *out)
{
    (void)out;
    weft_task_t **other = arg;
    CHECK_EQ(weft_sem_acquire(S), 0);
    int rc = weft_yield();
    weft_task_cancel(*other, NULL);
    CHECK_EQ(weft_sem_release(S), 0);
    return rc;
}

static int never_gets_it(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_sem_acquire(S);
    CHECK(rc < 0);   /* async with sem: self.assertFalse(True) */
    return rc;
}

static int sem_acq_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_sem_acquire(S);
}

static int no_hang_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t2 = NULL;
    weft_task_t *t1 = spawn(holder, &t2);
    t2 = spawn(never_gets_it, NULL);
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), WEFT_ECANCELED);
    CHECK_EQ(weft_wait_for_coro(sem_acq_coro, NULL, 1.0, NULL), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    /* and a timed-out acquire leaves nothing behind */
    CHECK_EQ(weft_sem_acquire(S), 0);
    CHECK_EQ(weft_wait_for_coro(sem_acq_coro, NULL, 0.01, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK(!weft_sem_locked(S));
    return 0;
}

static void test_acquire_no_hang(void) { sem_case(1, no_hang_main); }

/* ---- SemaphoreTests.test_release_not_acquired (BoundedSemaphore),
 * test_release_no_waiters -------------------------------------------------------------- */
static int bounded_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sem_release(S), WEFT_EINVAL);   /* "BoundedSemaphore released too many times" */
    CHECK_EQ(weft_sem_value(S), 2);
    CHECK_EQ(weft_sem_acquire(S), 0);
    CHECK_EQ(weft_sem_acquire(S), 0);
    CHECK(weft_sem_locked(S));
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK(!weft_sem_locked(S));
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_release(S), WEFT_EINVAL);
    CHECK_EQ(weft_sem_value(S), 2);
    return 0;
}

static void test_bounded_release_too_many(void)
{
    CHECK_EQ(weft_bounded_sem_new(2, &S), 0);
    run_loop(bounded_main, NULL);
    CHECK_EQ(weft_sem_free(S), 0);
}

/* ---- SemaphoreTests.test_acquire_fifo_order ----------------------------------------------- */
static char order[6][8];
static int norder;

static int fifo_coro(void *arg, weft_value_t *out)
{
    (void)out;
    int tag = (int)(intptr_t)arg;
    for (int k = 1; k <= 2; k++) {
        CHECK_EQ(weft_sem_acquire(S), 0);
        snprintf(order[norder++], sizeof order[0], "c%d_%d", tag, k);
        CHECK_EQ(weft_sleep(0.01), 0);
        CHECK_EQ(weft_sem_release(S), 0);
    }
    return 0;
}

static int fifo_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(fifo_coro, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(await_release(t[i]), 0);
    const char *want[] = { "c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2" };
    CHECK_EQ(norder, 6);
    for (int i = 0; i < 6; i++)
        CHECK_STR(order[i], want[i]);
    return 0;
}

static void test_acquire_fifo_order(void) { sem_case(1, fifo_main); }

/* ---- SemaphoreTests.test_acquire_fifo_order_2 --------------------------------------------- */
static int fifo2_c2(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sem_acquire(S), 0);
    res[nres++] = 2;
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_acquire(S), 0);
    res[nres++] = 4;
    return 0;
}

static int fifo2_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(c_acq, (void *)1), *t2 = spawn(fifo2_c2, NULL), *t3 = spawn(c_acq, (void *)3);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    RES(1, 2, 3, 4);
    return 0;
}

static void test_acquire_fifo_order_2(void) { sem_case(1, fifo2_main); }

/* ---- SemaphoreTests.test_acquire_fifo_order_3 --------------------------------------------- */
static int fifo3_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(c_acq, (void *)1), *t2 = spawn(c_acq, (void *)2), *t3 = spawn(c_acq, (void *)3);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t1, NULL), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(await_release(t1), WEFT_ECANCELED);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    RES(2, 3);
    return 0;
}

static void test_acquire_fifo_order_3(void) { sem_case(0, fifo3_main); }

/* ---- SemaphoreTests.test_acquire_fifo_order_4: a task that acquires after a permit
 * was handed to a waiter that has not resumed yet queues behind it ------------------------ */
static weft_task_t *t4;

static int fifo4_c4(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    res[nres++] = 4;
    return 0;
}

static int fifo4_c1(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sem_value(S), 0);
    CHECK_EQ(weft_sem_acquire(S), 0);
    CHECK_EQ(weft_sem_value(S), 0);   /* every waiting task was woken */
    t4 = spawn(fifo4_c4, NULL);        /* runs after c3, not after c2 */
    res[nres++] = 1;
    return 0;
}

static int fifo4_c2(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_release(S), 0);
    CHECK_EQ(weft_sem_value(S), 2);
    CHECK(weft_sem_locked(S));   /* locked: c1 has not woken up yet */
    CHECK_EQ(weft_sem_acquire(S), 0);
    res[nres++] = 2;
    return 0;
}

static int fifo4_c3(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sem_acquire(S), 0);
    CHECK(weft_sem_locked(S));
    res[nres++] = 3;
    return 0;
}

static int fifo4_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    t4 = NULL;
    weft_task_t *t1 = spawn(fifo4_c1, NULL), *t2 = spawn(fifo4_c2, NULL), *t3 = spawn(fifo4_c3, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_sem_value(S), 2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(await_release(t1), 0);
    CHECK_EQ(await_release(t2), 0);
    CHECK_EQ(await_release(t3), 0);
    CHECK(t4);
    CHECK_EQ(await_release(t4), 0);
    RES(1, 2, 3, 4);
    return 0;
}

static void test_acquire_fifo_order_4(void) { sem_case(0, fifo4_main); }

/* ---- cross-loop: at most N holders at once among stealable tasks on two loops,
 * with some waiters cancelled; every permit comes back ------------------------------------ */
#define XS_TASKS 2000
#define XS_PERMITS 3
static int inside, max_inside;
static unsigned int xs_ok;

static int xs_worker(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_sem_acquire(S);
    if (rc < 0)
        return rc;
    int n = __atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED);
    CHECK(n <= XS_PERMITS);
    int m = __atomic_load_n(&max_inside, __ATOMIC_RELAXED);
    while (n > m && !__atomic_compare_exchange_n(&max_inside, &m, n, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    weft_yield();
    __atomic_sub_fetch(&inside, 1, __ATOMIC_RELAXED);
    CHECK_EQ(weft_sem_release(S), 0);
    __atomic_fetch_add(&xs_ok, 1, __ATOMIC_RELAXED);
    return 0;
}

static int xs_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    static weft_task_t *ts[XS_TASKS];
    for (int i = 0; i < XS_TASKS; i++)
        CHECK_EQ(weft_spawn(&ts[i], xs_worker, NULL, NULL), 0);
    for (int i = 0; i < XS_TASKS; i += 3) {
        if (i % 2)
            weft_yield();
        weft_task_cancel(ts[i], NULL);
    }
    for (int i = 0; i < XS_TASKS; i++) {
        weft_await(ts[i], NULL);
        weft_task_release(ts[i]);
    }
    CHECK_EQ(weft_sem_value(S), XS_PERMITS);   /* no permit lost or duplicated */
    CHECK(!weft_sem_locked(S));
    return 0;
}

static void test_cross_loop_permits(void)
{
    CHECK_EQ(weft_bounded_sem_new(XS_PERMITS, &S), 0);
    run_rt(2, xs_main, NULL);
    printf("  %u acquired, max %d holders at once\n", xs_ok, max_inside);
    CHECK(xs_ok >= XS_TASKS - XS_TASKS / 3 - 1);
    CHECK(max_inside <= XS_PERMITS);
    CHECK_EQ(weft_sem_free(S), 0);
}

int main(int argc, char **argv)
{
    alarm(120 * WD_SCALE);   /* watchdog: a hang fails the test */
    RUN(test_initial_values);
    RUN(test_acquire);
    RUN(test_acquire_cancel);
    RUN(test_acquire_cancel_before_awoken);
    RUN(test_acquire_hang);
    RUN(test_granted_then_cancelled);
    RUN(test_acquire_no_hang);
    RUN(test_bounded_release_too_many);
    RUN(test_acquire_fifo_order);
    RUN(test_acquire_fifo_order_2);
    RUN(test_acquire_fifo_order_3);
    RUN(test_acquire_fifo_order_4);
    RUN(test_cross_loop_permits);
    return 0;
}
