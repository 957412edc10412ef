/* weft_barrier_t: CPython's test_locks.py BarrierTests (index, abort, reset,
 * broken), plus a cross-loop case. Every test is bounded by alarm(). */
#include "check.h"
#include "watchdog.h"
#include "sync_util.h"
#include "weft.h"

#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */
/* CPython's gather_tasks(n, coro): n tasks, all awaited; results in res[] */
static int64_t res[16];
static int rcs[16];

static void gather_tasks(int n, weft_coro_fn fn)
{
    weft_task_t *ts[16];
    for (int i = 0; i < n; i++)
        ts[i] = spawn(fn, NULL);
    for (int i = 0; i < n; i++) {
        weft_value_t v = { .i = -1 };
        rcs[i] = weft_await(ts[i], &v);
        res[i] = v.i;
        weft_task_release(ts[i]);
    }
}

static int sorted_is_range(int n)
{
    int seen[16] = { 0 };
    for (int i = 0; i < n; i++) {
        if (res[i] < 0 || res[i] >= n || seen[res[i]]++)
            return 0;
    }
    return 1;
}

static weft_barrier_t *B, *B2;
static int N;
static int results1, results2, results3, count, rewait_n;

static void barrier_case(int n, weft_coro_fn fn)
{
    N = n;
    results1 = results2 = results3 = count = 0;
    CHECK_EQ(weft_barrier_new(n, &B), 0);
    run_loop(fn, NULL);
    CHECK_EQ(weft_barrier_free(B), 0);
}

static int wait_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    int rc = weft_barrier_wait(B);
    if (rc < 0)
        return rc;
    out->i = rc;
    return 0;
}

/* ---- BarrierTests.test_barrier_parties ---------------------------------------------- */
static void test_barrier_parties(void)
{
    CHECK_EQ(weft_barrier_new(0, &B), WEFT_EINVAL);   /* "parties must be > 0" */
    CHECK_EQ(weft_barrier_new(-4, &B), WEFT_EINVAL);
    CHECK_EQ(weft_barrier_new(5, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_barrier_new(5, &B), 0);
    CHECK_EQ(weft_barrier_parties(B), 5);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    CHECK_EQ(weft_barrier_wait(B), WEFT_ENOTCORO);
    CHECK_EQ(weft_barrier_wait(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_barrier_free(B), 0);
}

/* ---- BarrierTests.test_context_manager / test_filling_tasks_check_return_value -------- */
static int cm_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gather_tasks(N, wait_coro);
    for (int i = 0; i < N; i++)
        CHECK_EQ(rcs[i], 0);
    CHECK(sorted_is_range(N));
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    return 0;
}

static void test_context_manager(void) { barrier_case(3, cm_main); }

static int twice_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    int rc = weft_barrier_wait(B);
    if (rc < 0)
        return rc;
    results1++;
    if ((rc = weft_barrier_wait(B)) < 0)
        return rc;
    results2++;
    out->i = rc;
    return 0;
}

/* BarrierTests.test_filling_tasks_wait_twice + test_filling_tasks_check_return_value */
static int twice_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gather_tasks(N, twice_coro);
    CHECK_EQ(results1, N);
    CHECK_EQ(results2, N);
    CHECK(sorted_is_range(N));
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    return 0;
}

static void test_filling_tasks_wait_twice(void) { barrier_case(5, twice_main); }

/* ---- BarrierTests.test_filling_one_task, test_filling_one_task_twice ------------------ */
static int one_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_barrier_wait(B), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    weft_task_t *t1 = spawn(wait_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    weft_task_t *t2 = spawn(wait_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(t1) && weft_future_done(t2));
    weft_value_t a, b;
    CHECK_EQ(weft_await(t1, &a), 0);
    CHECK_EQ(weft_await(t2, &b), 0);
    CHECK_EQ(a.i, b.i);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_filling_one_task(void) { barrier_case(1, one_main); }

/* ---- BarrierTests.test_filling_task_by_task ------------------------------------------- */
static int by_task_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = spawn(wait_coro, NULL);
        CHECK_EQ(weft_yield(), 0);
        if (i < 2)
            CHECK_EQ(weft_barrier_n_waiting(B), i + 1);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_await(t[i], NULL), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    return 0;
}

static void test_filling_task_by_task(void) { barrier_case(3, by_task_main); }

/* ---- BarrierTests.test_blocking_tasks_while_draining ------------------------------------ */
static int blocking_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
    if (rewait_n > 0) {
        rewait_n--;
        CHECK_EQ(weft_barrier_wait(B) >= 0, 1);   /* wait again only for rewait tasks */
    } else {
        CHECK_EQ(weft_barrier_wait(B2) >= 0, 1);   /* wait for the end of draining */
        CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
    }
    return 0;
}

static int blocking_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    rewait_n = 2;
    CHECK_EQ(weft_barrier_new(N - 2, &B2), 0);
    gather_tasks(N, blocking_coro);
    for (int i = 0; i < N; i++)
        CHECK_EQ(rcs[i], 0);
    CHECK_EQ(weft_barrier_free(B2), 0);
    return 0;
}

static void test_blocking_tasks_while_draining(void) { barrier_case(5, blocking_main); }

/* ---- BarrierTests.test_filling_tasks_cancel_one ---------------------------------------- */
static int cancel_one_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_barrier_wait(B);
    if (rc < 0)
        return rc;
    results1++;
    return 0;
}

static int cancel_one_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(cancel_one_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 1);
    weft_task_t *t2 = spawn(cancel_one_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 2);
    CHECK_EQ(weft_task_cancel(t1, NULL), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 1);   /* the cancelled task left the barrier */
    CHECK_EQ(weft_await(t1, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(t1));
    weft_task_t *t3 = spawn(cancel_one_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 2);
    weft_task_t *t4 = spawn(cancel_one_coro, NULL);
    CHECK_EQ(weft_await(t2, NULL), 0);
    CHECK_EQ(weft_await(t3, NULL), 0);
    CHECK_EQ(weft_await(t4, NULL), 0);
    CHECK_EQ(results1, 3);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    weft_task_release(t1);
    weft_task_release(t2);
    weft_task_release(t3);
    weft_task_release(t4);
    return 0;
}

static void test_filling_tasks_cancel_one(void) { barrier_case(3, cancel_one_main); }

/* a waiter timed out with wait_for leaves the barrier the same way */
static int barrier_wait_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_barrier_wait(B);
    return rc < 0 ? rc : 0;
}

static int wait_for_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_wait_for_coro(barrier_wait_coro, NULL, 0.01, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    weft_task_t *t = spawn(wait_coro, NULL);
    CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
    CHECK_EQ(weft_await(t, NULL), 0);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_timeout(void) { barrier_case(2, wait_for_main); }

/* ---- BarrierTests.test_reset_barrier / test_abort_barrier -------------------------------- */
static int reset_abort_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_barrier_reset(B), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    CHECK_EQ(weft_barrier_abort(B), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(weft_barrier_broken(B));
    CHECK_EQ(weft_barrier_wait(B), WEFT_EBROKEN);
    CHECK_EQ(weft_barrier_reset(B), 0);
    CHECK(!weft_barrier_broken(B));
    CHECK_EQ(weft_barrier_wait(B), 0);
    return 0;
}

static void test_reset_and_abort_barrier(void) { barrier_case(1, reset_abort_main); }

/* ---- BarrierTests.test_reset_barrier_while_tasks_waiting --------------------------------- */
static int broken_counter(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_barrier_wait(B);
    if (rc == WEFT_EBROKEN)
        results1++;
    return 0;
}

static int reset_while_waiting_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[16];
    for (int i = 0; i < N - 1; i++)
        ts[i] = spawn(broken_counter, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_barrier_n_waiting(B), N - 1);
    CHECK_EQ(weft_barrier_reset(B), 0);
    for (int i = 0; i < N - 1; i++) {
        CHECK_EQ(weft_await(ts[i], NULL), 0);
        weft_task_release(ts[i]);
    }
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    return 0;
}

static void test_reset_barrier_while_tasks_waiting(void) { barrier_case(5, reset_while_waiting_main); }

/* ---- BarrierTests.test_reset_barrier_while_tasks_waiting_and_waiting_again --------------- */
static int coro1_again(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    if (weft_barrier_wait(B) == WEFT_EBROKEN)
        results1++;
    CHECK_EQ(weft_barrier_wait(B) >= 0, 1);   /* finally: wait again */
    results2++;
    return 0;
}

static int coro2_plain(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
    results2++;
    return 0;
}

static int reset_cb(void *arg)
{
    return weft_barrier_reset(arg);
}

static int waiting_again_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[16];
    for (int i = 0; i < N - 1; i++)
        ts[i] = spawn(coro1_again, NULL);
    /* the reset runs after the N-1 tasks started waiting (create_task(reset())) */
    CHECK_EQ(weft_call_soon(weft_running_loop(), reset_cb, B, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    ts[N - 1] = spawn(coro2_plain, NULL);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(weft_await(ts[i], NULL), 0);
        weft_task_release(ts[i]);
    }
    CHECK(!weft_barrier_broken(B));
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(results2, N);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    return 0;
}

static void test_reset_barrier_while_tasks_waiting_and_waiting_again(void) { barrier_case(5, waiting_again_main); }

/* ---- BarrierTests.test_reset_barrier_while_tasks_draining -------------------------------- */
static int draining_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
    count++;
    if (count == N) {
        CHECK_EQ(weft_barrier_reset(B), 0);   /* the last task out of the barrier */
        CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
    } else {
        if (weft_barrier_wait(B) >= 0)
            results1++;
        else
            results2++;
    }
    CHECK_EQ(weft_barrier_wait(B) >= 0, 1);   /* pass the barrier again */
    results3++;
    return 0;
}

static int reset_draining_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gather_tasks(N, draining_coro);
    for (int i = 0; i < N; i++)
        CHECK_EQ(rcs[i], 0);
    CHECK(!weft_barrier_broken(B));
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(results2, 0);
    CHECK_EQ(results3, N);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    return 0;
}

static void test_reset_barrier_while_tasks_draining(void) { barrier_case(5, reset_draining_main); }

/* ---- BarrierTests.test_reset_barrier_when_tasks_half_draining_half_blocking -------------- */
static int half_reset_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int blocking_tasks = N / 2;
    if (weft_barrier_wait(B) == WEFT_EBROKEN) {
        results1++;   /* still waiting when the reset came */
        CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
    } else {
        count++;
        if (count > blocking_tasks) {
            CHECK_EQ(weft_barrier_reset(B), 0);
            CHECK_EQ(weft_barrier_wait(B) >= 0, 1);
        } else if (weft_barrier_wait(B) == WEFT_EBROKEN) {
            results2++;   /* blocked tasks must not see the reset */
        }
    }
    return 0;
}

static int half_reset_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gather_tasks(N, half_reset_coro);
    CHECK_EQ(results1, N / 2);
    CHECK_EQ(results2, 0);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK(!weft_barrier_broken(B));
    return 0;
}

static void test_reset_barrier_when_tasks_half_draining_half_blocking(void) { barrier_case(5, half_reset_main); }

/* ---- BarrierTests.test_abort_barrier_when_tasks_half_draining_half_blocking -------------- */
static int half_abort_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int blocking_tasks = N / 2;
    if (weft_barrier_wait(B) == WEFT_EBROKEN) {
        results1++;   /* released but not yet resumed when the abort came */
    } else {
        count++;
        if (count > blocking_tasks)
            CHECK_EQ(weft_barrier_abort(B), 0);
        else if (weft_barrier_wait(B) == WEFT_EBROKEN)
            results2++;   /* blocked (already drained) tasks */
    }
    return 0;
}

static int half_abort_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gather_tasks(N, half_abort_coro);
    CHECK(weft_barrier_broken(B));
    CHECK_EQ(results1, N / 2);
    CHECK_EQ(results2, N - N / 2 - 1);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    return 0;
}

static void test_abort_barrier_when_tasks_half_draining_half_blocking(void) { barrier_case(5, half_abort_main); }

/* ---- BarrierTests.test_abort_barrier_when_exception ------------------------------------- */
static int exc_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int i = weft_barrier_wait(B);
    if (i == WEFT_EBROKEN) {
        results2++;
        return 0;
    }
    CHECK(i >= 0);
    if (i == N / 2)   /* "raise RuntimeError" inside the block: abort */
        return weft_barrier_abort(B);
    int rc = weft_barrier_wait(B);
    if (rc == WEFT_EBROKEN)
        results2++;
    else
        results1++;
    return 0;
}

static int exc_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gather_tasks(N, exc_coro);
    CHECK(weft_barrier_broken(B));
    CHECK_EQ(results1, 0);
    CHECK_EQ(results2, N - 1);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    return 0;
}

static void test_abort_barrier_when_exception(void) { barrier_case(5, exc_main); }

/* ---- BarrierTests.test_abort_barrier_when_exception_then_resetting ----------------------- */
static int exc_reset_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int i = weft_barrier_wait(B);
    if (i == WEFT_EBROKEN) {
        results2++;
    } else if (i == N / 2) {
        CHECK_EQ(weft_barrier_abort(B), 0);
    } else {
        int rc = weft_barrier_wait(B);
        if (rc == WEFT_EBROKEN)
            results2++;
        else
            results1++;
    }
    /* synchronize and reset the first barrier */
    i = weft_barrier_wait(B2);
    CHECK(i >= 0);
    if (i == N / 2)
        CHECK_EQ(weft_barrier_reset(B), 0);
    CHECK(weft_barrier_wait(B2) >= 0);
    CHECK(weft_barrier_wait(B) >= 0);
    results3++;
    return 0;
}

static int exc_reset_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_barrier_new(N, &B2), 0);
    gather_tasks(N, exc_reset_coro);
    CHECK(!weft_barrier_broken(B));
    CHECK_EQ(results1, 0);
    CHECK_EQ(results2, N - 1);
    CHECK_EQ(results3, N);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    CHECK_EQ(weft_barrier_free(B2), 0);
    return 0;
}

static void test_abort_barrier_when_exception_then_resetting(void) { barrier_case(5, exc_reset_main); }

/* ---- cross-loop: stealable tasks on two loops pass the barrier round after round;
 * nobody leaves a round before everyone arrived; indexes are a permutation ------------- */
#define XB_TASKS 8
#define XB_ROUNDS 300
static unsigned int arrived[XB_ROUNDS];
static unsigned int index_mask[XB_ROUNDS];

static int xb_worker(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int r = 0; r < XB_ROUNDS; r++) {
        __atomic_fetch_add(&arrived[r], 1, __ATOMIC_RELAXED);
        int i = weft_barrier_wait(B);
        CHECK(i >= 0 && i < XB_TASKS);
        CHECK_EQ(__atomic_load_n(&arrived[r], __ATOMIC_RELAXED), XB_TASKS);
        unsigned int bit = 1u << i;
        CHECK_EQ(__atomic_fetch_or(&index_mask[r], bit, __ATOMIC_RELAXED) & bit, 0);
    }
    return 0;
}

static int xb_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[XB_TASKS];
    for (int i = 0; i < XB_TASKS; i++)
        CHECK_EQ(weft_spawn(&ts[i], xb_worker, NULL, NULL), 0);
    for (int i = 0; i < XB_TASKS; i++) {
        CHECK_EQ(weft_await(ts[i], NULL), 0);
        weft_task_release(ts[i]);
    }
    for (int r = 0; r < XB_ROUNDS; r++)
        CHECK_EQ(index_mask[r], (1u << XB_TASKS) - 1);
    CHECK_EQ(weft_barrier_n_waiting(B), 0);
    return 0;
}

static void test_cross_loop_rounds(void)
{
    CHECK_EQ(weft_barrier_new(XB_TASKS, &B), 0);
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, xb_main, NULL, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
    CHECK_EQ(weft_barrier_free(B), 0);
}

int main(int argc, char **argv)
{
    alarm(120 * WD_SCALE);   /* watchdog: a hang fails the test */
    RUN(test_barrier_parties);
    RUN(test_context_manager);
    RUN(test_filling_tasks_wait_twice);
    RUN(test_filling_one_task);
    RUN(test_filling_task_by_task);
    RUN(test_blocking_tasks_while_draining);
    RUN(test_filling_tasks_cancel_one);
    RUN(test_wait_for_timeout);
    RUN(test_reset_and_abort_barrier);
    RUN(test_reset_barrier_while_tasks_waiting);
    RUN(test_reset_barrier_while_tasks_waiting_and_waiting_again);
    RUN(test_reset_barrier_while_tasks_draining);
    RUN(test_reset_barrier_when_tasks_half_draining_half_blocking);
    RUN(test_abort_barrier_when_tasks_half_draining_half_blocking);
    RUN(test_abort_barrier_when_exception);
    RUN(test_abort_barrier_when_exception_then_resetting);
    RUN(test_cross_loop_rounds);
    return 0;
}
