/* Concurrent futures across threads: recycled futures reused many times with
 * waiters on plain threads and in tasks at once, cancellation racing the
 * completion, timeouts racing the completion, and the wake-ups a loop gets
 * for a stream of cross-thread completions. Outcomes are checked exactly; a
 * progress watchdog (watchdog.h) fails a test that hangs. */
#include "check.h"
#include "watchdog.h"
#include "weft.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#if defined(WEFT_TSAN)
#define SCALE 20
#elif defined(WEFT_ASAN)
#define SCALE 5
#else
#define SCALE 1
#endif
#define RUNW(fn)          \
    do {                  \
        wd_phase(#fn);    \
        RUN(fn);          \
    } while (0)

static weft_runtime_t *start_rt(int workers)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &rt), 0);
    CHECK_EQ(weft_runtime_start(rt), 0);
    return rt;
}

static void stop_rt(weft_runtime_t *rt)
{
    CHECK_EQ(weft_runtime_shutdown(rt), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* ---- one future per round, waited for by plain threads and by tasks ------------------- */
#define ROUNDS (4000 / SCALE)
#define PLAIN_WAITERS 3
#define TASK_WAITERS 3

static weft_cfuture_t *_Atomic g_cur;   /* this round's future (the main thread's reference) */
static atomic_int g_round;              /* its number, published after g_cur */
static atomic_int g_seen;               /* plain waiters done with this round */

static void *plain_waiter(void *arg)
{
    (void)arg;
    for (int r = 1; r <= ROUNDS; r++) {
        while (atomic_load(&g_round) < r)
            sched_yield();
        weft_cfuture_t *cf = weft_cfuture_retain(atomic_load(&g_cur));
        weft_value_t v;
        /* every other round with a finite timeout: the timed path parks too */
        CHECK_EQ(weft_cfuture_result(cf, r % 2 ? WEFT_NO_TIMEOUT : 1e6, &v), 0);
        CHECK_EQ(v.i, r);
        CHECK(weft_cfuture_done(cf));
        weft_cfuture_release(cf);
        atomic_fetch_add(&g_seen, 1);
    }
    return NULL;
}

static int task_waiter(void *arg, weft_value_t *out)
{
    weft_cfuture_t *cf = arg;   /* a reference of its own, dropped here */
    weft_value_t v;
    int rc = weft_cfuture_await(cf, &v);
    if (rc == 0)
        out->i = v.i;
    weft_cfuture_release(cf);
    return rc;
}

static void test_recycled_future_many_waiters(void)
{
    weft_runtime_t *rt = start_rt(2);
    pthread_t th[PLAIN_WAITERS];
    for (int i = 0; i < PLAIN_WAITERS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, plain_waiter, NULL), 0);
    for (int r = 1; r <= ROUNDS; r++) {
        weft_cfuture_t *cf;
        CHECK_EQ(weft_cfuture_new(&cf), 0);
        atomic_store(&g_seen, 0);
        atomic_store(&g_cur, cf);
        atomic_store(&g_round, r);
        weft_cfuture_t *tw[TASK_WAITERS];
        for (int i = 0; i < TASK_WAITERS; i++)
            CHECK_EQ(weft_run_coroutine_threadsafe(rt, weft_runtime_loop(rt, i % 2), task_waiter,
                                                   weft_cfuture_retain(cf), NULL, &tw[i]),
                     0);
        /* complete at once on some rounds, after yielding (waiters likely
         * parked by then) on others */
        for (int y = 0; y < (r % 4) * 50; y++)
            sched_yield();
        CHECK_EQ(weft_cfuture_set_result(cf, WEFT_VALUE_INT(r)), 0);
        CHECK_EQ(weft_cfuture_set_result(cf, WEFT_VALUE_INT(r)), WEFT_EINVALSTATE);
        for (int i = 0; i < TASK_WAITERS; i++) {
            weft_value_t v;
            CHECK_EQ(weft_cfuture_result(tw[i], WEFT_NO_TIMEOUT, &v), 0);
            CHECK_EQ(v.i, r);
            weft_cfuture_release(tw[i]);
        }
        while (atomic_load(&g_seen) < PLAIN_WAITERS)
            sched_yield();
        weft_cfuture_release(cf);   /* the last reference: its memory is reused next round */
        wd_progress();
    }
    for (int i = 0; i < PLAIN_WAITERS; i++)
        pthread_join(th[i], NULL);
    stop_rt(rt);
}

/* ---- cancel racing the completion ------------------------------------------------------- */
#define RACES (20000 / SCALE)

struct race {
    weft_cfuture_t *cf;
    atomic_int go;
    int set_rc;
};

static void *race_setter(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->go))
        ;
    r->set_rc = weft_cfuture_set_result(r->cf, WEFT_VALUE_INT(7));
    return NULL;
}

/* A user future: exactly one of cancel and set_result wins. */
static void test_cancel_races_set_result(void)
{
    int cancelled = 0, completed = 0;
    for (int i = 0; i < RACES / 10; i++) {
        struct race r = { 0 };
        CHECK_EQ(weft_cfuture_new(&r.cf), 0);
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, race_setter, &r), 0);
        atomic_store(&r.go, 1);
        int c = weft_cfuture_cancel(r.cf);
        pthread_join(th, NULL);
        weft_value_t v = { .i = -1 };
        int rc = weft_cfuture_result(r.cf, 0, &v);
        if (c == 1) {
            CHECK_EQ(r.set_rc, WEFT_EINVALSTATE);
            CHECK_EQ(rc, WEFT_ECANCELED);
            CHECK(weft_cfuture_cancelled(r.cf));
            cancelled++;
        } else {
            CHECK_EQ(c, 0);
            CHECK_EQ(r.set_rc, 0);
            CHECK_EQ(rc, 0);
            CHECK_EQ(v.i, 7);
            CHECK(!weft_cfuture_cancelled(r.cf));
            completed++;
        }
        weft_cfuture_release(r.cf);
        wd_progress();
    }
    CHECK_EQ(cancelled + completed, RACES / 10);
}

static int quick(void *arg, weft_value_t *out)
{
    out->i = (intptr_t)arg + 1;
    return 0;
}

/* run_coroutine_threadsafe: cancel while the task may be starting, running
 * or done. The outcome is the value or a cancellation, never anything else,
 * and cancel says 0 only when the future was done already. */
static void test_cancel_races_task(void)
{
    weft_runtime_t *rt = start_rt(2);
    int ncancelled = 0;
    for (int i = 0; i < RACES; i++) {
        weft_cfuture_t *cf;
        CHECK_EQ(weft_run_coroutine_threadsafe(rt, i % 2 ? NULL : weft_runtime_loop(rt, 0), quick,
                                               (void *)(intptr_t)i, NULL, &cf),
                 0);
        for (int y = 0; y < i % 8; y++)
            sched_yield();
        bool was_done = weft_cfuture_done(cf);
        int c = weft_cfuture_cancel(cf);
        if (was_done)
            CHECK_EQ(c, 0);
        weft_value_t v = { .i = -1 };
        int rc = weft_cfuture_result(cf, WEFT_NO_TIMEOUT, &v);
        if (rc == 0) {
            CHECK_EQ(v.i, i + 1);
            CHECK(!weft_cfuture_cancelled(cf));
        } else {
            CHECK_EQ(rc, WEFT_ECANCELED);
            CHECK_EQ(c, 1);
            CHECK(weft_cfuture_cancelled(cf));
            ncancelled++;
        }
        CHECK_EQ(weft_cfuture_cancel(cf), 0);   /* done now */
        weft_cfuture_release(cf);
        wd_progress();
    }
    stop_rt(rt);
    (void)ncancelled;
}

/* A job submitted to an executor: cancelled while queued it never runs;
 * otherwise its result arrives. */
static atomic_int g_job_runs;

static int counted(void *arg, weft_value_t *out)
{
    atomic_fetch_add(&g_job_runs, 1);
    out->i = (intptr_t)arg;
    return 0;
}

static void test_cancel_races_job(void)
{
    weft_executor_t *ex;
    CHECK_EQ(weft_executor_new(2, &ex), 0);
    int n = RACES / 4, ncancelled = 0;
    atomic_store(&g_job_runs, 0);
    for (int i = 0; i < n; i++) {
        weft_cfuture_t *cf;
        CHECK_EQ(weft_executor_submit(ex, counted, (void *)(intptr_t)i, &cf), 0);
        int c = weft_cfuture_cancel(cf);
        weft_value_t v = { .i = -1 };
        int rc = weft_cfuture_result(cf, WEFT_NO_TIMEOUT, &v);
        if (c == 1) {
            CHECK_EQ(rc, WEFT_ECANCELED);
            ncancelled++;
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ(v.i, i);
        }
        weft_cfuture_release(cf);
        wd_progress();
    }
    weft_executor_free(ex);   /* waits for the pool: every job that was not unqueued ran */
    CHECK_EQ(atomic_load(&g_job_runs), n - ncancelled);
}

/* ---- a timeout racing the completion ---------------------------------------------------- */
static void *late_setter(void *arg)
{
    weft_cfuture_t *cf = arg;
    for (int y = 0; y < 20; y++)
        sched_yield();
    CHECK_EQ(weft_cfuture_set_result(cf, WEFT_VALUE_INT(5)), 0);
    weft_cfuture_release(cf);
    return NULL;
}

/* The waiter's record lives on its stack: whether the timeout or the
 * completion comes first, it returns a consistent answer and leaves nothing
 * behind for the completer to touch. */
static void test_timeout_races_completion(void)
{
    int timeouts = 0;
    for (int i = 0; i < RACES / 20; i++) {
        weft_cfuture_t *cf;
        CHECK_EQ(weft_cfuture_new(&cf), 0);
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, late_setter, weft_cfuture_retain(cf)), 0);
        weft_value_t v = { .i = -1 };
        int rc = weft_cfuture_result(cf, 1e-5 * (i % 10), &v);
        if (rc == WEFT_ETIMEDOUT) {
            timeouts++;
            CHECK_EQ(weft_cfuture_result(cf, WEFT_NO_TIMEOUT, &v), 0);
        } else {
            CHECK_EQ(rc, 0);
        }
        CHECK_EQ(v.i, 5);
        pthread_join(th, NULL);
        weft_cfuture_release(cf);
        wd_progress();
    }
    (void)timeouts;
}

/* ---- wake-ups: one per park, whatever the number of completions -------------------------- */
#define CALLS (20000 / SCALE)

static int many_to_thread(void *arg, weft_value_t *out)
{
    (void)arg;
    int64_t s = 0;
    for (int i = 0; i < CALLS; i++) {
        weft_value_t v;
        int rc = weft_to_thread(quick, (void *)(intptr_t)i, &v);
        if (rc < 0)
            return rc;
        s += v.i;
        if (i % 256 == 0)
            wd_progress();
    }
    out->i = s;
    return 0;
}

/* Spawns @n tasks fn(i), i = 0 .. n-1, awaits them all (each must succeed)
 * and returns the sum of their results. */
static int64_t spawn_await_sum(weft_coro_fn fn, int n)
{
    weft_task_t *t[16];
    CHECK(n <= 16);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_spawn(&t[i], fn, (void *)(intptr_t)i, NULL), 0);
    int64_t s = 0;
    for (int i = 0; i < n; i++) {
        weft_value_t v;
        CHECK_EQ(weft_await(t[i], &v), 0);
        s += v.i;
        weft_task_release(t[i]);
    }
    return s;
}

static int spawn_many_to_thread(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = spawn_await_sum(many_to_thread, 8);
    return 0;
}

/* Every completion of a to_thread call is a message from a pool thread; a
 * loop is woken (uv_async_send) only when it was parked, once per park, and
 * never while it runs or searches, however many messages arrive. */
static void test_one_wake_per_park(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1 }, &rt), 0);
    weft_value_t v;
    CHECK_EQ(weft_runtime_run(rt, spawn_many_to_thread, NULL, NULL, &v), 0);
    CHECK_EQ(v.i, 8 * ((int64_t)CALLS * (CALLS + 1) / 2));
    weft_loop_stats_t s;
    CHECK_EQ(weft_runtime_stats(rt, 0, &s), 0);
    CHECK(s.inbox_msgs >= (uint64_t)8 * CALLS);
    /* a wake-up is counted only when a poster takes the loop out of PARKED,
     * which the loop stores once per park announcement, and on a runtime of
     * one worker every announcement follows a search that found nothing. (An
     * announcement whose last look finds work is not counted as a park, so
     * `parks` alone may fall short by one now and then.) */
    CHECK(s.wakeups <= s.searches);
    CHECK(s.wakeups <= s.inbox_msgs);
    weft_runtime_free(rt);
}

/* ---- blocking calls that need each other: every one gets a thread -------------------------- */
#define MEET 8
static atomic_int g_met;

/* Returns only once MEET calls are inside it at the same time: the pool must
 * give each blocking call a thread of its own, however it wakes them. */
static int meet(void *arg, weft_value_t *out)
{
    atomic_fetch_add(&g_met, 1);
    while (atomic_load(&g_met) < MEET)
        sched_yield();
    out->i = (intptr_t)arg;
    return 0;
}

static int meet_task(void *arg, weft_value_t *out)
{
    weft_value_t v;
    int rc = weft_to_thread(meet, arg, &v);
    if (rc == 0)
        out->i = v.i;
    return rc;
}

static int meet_all(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = spawn_await_sum(meet_task, MEET);
    return 0;
}

static void test_blocking_calls_run_together(void)
{
    for (int round = 0; round < 20; round++) {
        /* to_thread from tasks, through the runtime's pool */
        atomic_store(&g_met, 0);
        weft_runtime_t *rt;
        CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1 + round % 2, .blocking_threads = MEET }, &rt), 0);
        weft_value_t v;
        CHECK_EQ(weft_runtime_run(rt, meet_all, NULL, NULL, &v), 0);
        CHECK_EQ(v.i, MEET * (MEET - 1) / 2);
        weft_runtime_free(rt);
        /* executor_submit from a plain thread */
        atomic_store(&g_met, 0);
        weft_executor_t *ex;
        CHECK_EQ(weft_executor_new(MEET, &ex), 0);
        weft_cfuture_t *cf[MEET];
        for (int i = 0; i < MEET; i++)
            CHECK_EQ(weft_executor_submit(ex, meet, (void *)(intptr_t)i, &cf[i]), 0);
        for (int i = 0; i < MEET; i++) {
            CHECK_EQ(weft_cfuture_result(cf[i], WEFT_NO_TIMEOUT, &v), 0);
            CHECK_EQ(v.i, i);
            weft_cfuture_release(cf[i]);
        }
        weft_executor_free(ex);
        wd_progress();
    }
}

int main(int argc, char **argv)
{
    wd_start(120);   /* a hang: 120 s (x10 under sanitizers) without progress */
    RUNW(test_recycled_future_many_waiters);
    RUNW(test_cancel_races_set_result);
    RUNW(test_cancel_races_task);
    RUNW(test_cancel_races_job);
    RUNW(test_timeout_races_completion);
    RUNW(test_one_wake_per_park);
    RUNW(test_blocking_calls_run_together);
    return 0;
}
