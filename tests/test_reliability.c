/* Reliability regressions: a wake-up for an earlier wait never ends a later
 * one, to_thread never leaks an owned result, cancel propagation through
 * await chains and cycles is bounded, weft_await refuses to close an await
 * cycle (WEFT_EDEADLK), gather drops its children at the first error, and
 * misuse (a release too many, weft_timeout_exit from the wrong task) is
 * detected. Orderings are forced with flags and white-box checks, never with
 * timing; a watchdog alarm only catches hangs. */
#include "base/inbox.h"
#include "check.h"
#include "core/task.h"
#include "weft.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define SCALE 10
#else
#define SCALE 1
#endif

static void watchdog(int sig)
{
    (void)sig;
    static const char m[] = "test_reliability: watchdog fired (hang)\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(3);
}

static void arm_watchdog(unsigned s)
{
    signal(SIGALRM, watchdog);
    alarm(s * SCALE);
}

/* Spin on a flag set by another thread; a hang is caught by the watchdog. */
static void spin_until(atomic_int *flag)
{
    while (!atomic_load(flag))
        sched_yield();
}

/* ---- captured log lines -------------------------------------------------------- */
static atomic_int nlogged;
static char last_log[512];

static void capture_log(weft_log_level_t level, const char *message, void *ud)
{
    (void)ud;
    if (level == WEFT_LOG_ERROR) {
        snprintf(last_log, sizeof last_log, "%s", message);
        atomic_fetch_add(&nlogged, 1);
    }
}

static void capture_begin(void)
{
    atomic_store(&nlogged, 0);
    last_log[0] = 0;
    weft_set_log_handler(capture_log, NULL);
}

static void capture_end(void) { weft_set_log_handler(NULL, NULL); }

/* ---- 1. a late wake-up of a concurrent future's await ---------------------------
 * T (loop 0) awaits a concurrent future whose task X runs on loop 1. X
 * completes: loop 1 takes T off the waiter list, then (held up by a done
 * callback registered after T's await) posts T's wake-up. Meanwhile T is
 * cancelled on loop 0, resumes with WEFT_ECANCELED and starts a long sleep.
 * Only then is the wake-up posted: it must not end the sleep. */
static struct {
    int mode;   /* the later wait: 0 weft_sleep, 1 weft_to_thread */
    atomic_int x_go, in_cb, t_sleeping, release_cb, marker, job_go;
    weft_cfuture_t *cf;
    weft_task_t *t;
    int await_rc, sleep_rc;
    int64_t job_value;
} sw;

static int gated_job(void *arg, weft_value_t *out)
{
    (void)arg;
    spin_until(&sw.job_go);
    out->i = 42;
    return 0;
}

static int x_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    while (!atomic_load(&sw.x_go))
        weft_yield();
    out->i = 7;
    return 0;
}

/* Runs first on loop 1's thread inside the completion: hold the wake-up back. */
static void blocker_cb(weft_cfuture_t *cf, void *arg)
{
    (void)cf;
    (void)arg;
    atomic_store(&sw.in_cb, 1);
    spin_until(&sw.release_cb);
}

static int marker_on_loop0(void *arg)
{
    (void)arg;
    atomic_store(&sw.marker, 1);
    return 0;
}

/* Runs last on loop 1's thread, after T's wake-up was posted to loop 0: a
 * message behind it in loop 0's inbox. */
static void marker_cb(weft_cfuture_t *cf, void *arg)
{
    (void)cf;
    weft_call_soon_threadsafe(arg, marker_on_loop0, NULL);
}

static int t_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    sw.await_rc = weft_cfuture_await(sw.cf, NULL);
    if (sw.await_rc != WEFT_ECANCELED)
        return sw.await_rc;
    weft_task_uncancel(weft_current_task());
    atomic_store(&sw.t_sleeping, 1);
    if (sw.mode == 0) {
        sw.sleep_rc = weft_sleep(3600.0);   /* only a cancel may end it */
    } else {
        weft_value_t v = { .p = NULL };
        sw.sleep_rc = weft_to_thread(gated_job, NULL, &v);   /* only the job's end may end it */
        sw.job_value = v.i;
    }
    return sw.sleep_rc;
}

static int stale_main(void *arg, weft_value_t *out)
{
    weft_runtime_t *rt = arg;
    (void)out;
    weft_loop_t *l0 = weft_runtime_loop(rt, 0), *l1 = weft_runtime_loop(rt, 1);
    CHECK(weft_running_loop() == l0);
    CHECK_EQ(weft_run_coroutine_threadsafe(rt, l1, x_coro, NULL, NULL, &sw.cf), 0);
    CHECK_EQ(weft_cfuture_add_done_callback(sw.cf, marker_cb, l0), 0);   /* last to run */
    CHECK_EQ(weft_create_task(&sw.t, t_coro, NULL, NULL), 0);
    while (weft_task_state(sw.t) != WEFT_TASK_SUSPENDED)
        weft_yield();
    CHECK_EQ(weft_cfuture_add_done_callback(sw.cf, blocker_cb, NULL), 0);   /* first to run */
    atomic_store(&sw.x_go, 1);
    spin_until(&sw.in_cb);   /* loop 1 took T off the list; its wake-up is not posted yet */
    CHECK_EQ(weft_task_cancel(sw.t, NULL), 1);
    while (!(atomic_load(&sw.t_sleeping) && weft_task_state(sw.t) == WEFT_TASK_SUSPENDED))
        weft_yield();
    atomic_store(&sw.release_cb, 1);   /* now the late wake-up goes out, then the marker */
    while (!atomic_load(&sw.marker))
        weft_yield();
    weft_yield();
    weft_yield();
    /* the late wake-up has been delivered: the later wait must still be going on */
    CHECK(!weft_future_done(sw.t));
    CHECK_EQ(weft_task_state(sw.t), WEFT_TASK_SUSPENDED);
    CHECK_EQ(sw.await_rc, WEFT_ECANCELED);
    if (sw.mode == 0) {
        CHECK_EQ(weft_task_cancel(sw.t, NULL), 1);
        CHECK_EQ(weft_await(sw.t, NULL), WEFT_ECANCELED);
        CHECK_EQ(sw.sleep_rc, WEFT_ECANCELED);
    } else {
        atomic_store(&sw.job_go, 1);
        CHECK_EQ(weft_await(sw.t, NULL), 0);
        CHECK_EQ(sw.sleep_rc, 0);
        CHECK_EQ(sw.job_value, 42);
    }
    weft_task_release(sw.t);
    weft_value_t v;
    CHECK_EQ(weft_cfuture_await(sw.cf, &v), 0);
    CHECK_EQ(v.i, 7);
    weft_cfuture_release(sw.cf);
    return 0;
}

static void stale_run(int mode)
{
    memset(&sw, 0, sizeof sw);
    sw.mode = mode;
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, stale_main, rt, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

static void test_stale_cfuture_wake(void)
{
    arm_watchdog(60);
    stale_run(0);   /* the late wake-up must not end a weft_sleep */
    stale_run(1);   /* nor a weft_to_thread (it would return 0 with no value) */
    alarm(0);
}

/* ---- 2. to_thread: cancel after the result arrived, before the task resumed ----- */
static atomic_int job_returning, dtor_calls;

static void counted_dtor(void *p)
{
    free(p);
    atomic_fetch_add(&dtor_calls, 1);
}

static int owned_job(void *arg, weft_value_t *out)
{
    (void)arg;
    *out = WEFT_VALUE_OWNED(malloc(64), counted_dtor);
    atomic_store(&job_returning, 1);
    return 0;
}

static int to_thread_task(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_value_t v = { .p = NULL };
    int rc = weft_to_thread(owned_job, NULL, &v);
    if (rc == 0 && v.dtor)
        v.dtor(v.p);   /* not expected: the cancel came first */
    return rc;
}

static int leak_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = weft_running_loop();
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, to_thread_task, NULL, NULL), 0);
    while (weft_task_state(t) != WEFT_TASK_SUSPENDED)
        weft_yield();
    /* hold the loop until the completion message is in its inbox ... */
    spin_until(&job_returning);
    while (weft__inbox_empty(&l->inbox))
        sched_yield();
    /* ... then yield: the next iteration runs the message (waking t, queued
     * behind us) and then us, before t resumes */
    weft_yield();
    CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    weft_task_release(t);
    CHECK_EQ(atomic_load(&dtor_calls), 1);   /* the result was destroyed, once */
    return 0;
}

static void test_to_thread_cancel_after_completion(void)
{
    arm_watchdog(60);
    atomic_store(&dtor_calls, 0);
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1 }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, leak_main, NULL, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
    CHECK_EQ(atomic_load(&dtor_calls), 1);
    alarm(0);
}

/* ---- 3a. weft_await refuses to close an await cycle ------------------------------- */
typedef struct cyc {
    weft_task_t *next;   /* the task this one awaits */
    int rc;
    const char *msg;
} cyc_t;

static int cyc_coro(void *arg, weft_value_t *out)
{
    (void)out;
    cyc_t *c = arg;
    while (!c->next)
        weft_yield();
    c->rc = weft_await(c->next, NULL);
    if (c->rc == WEFT_EDEADLK)
        c->msg = weft_error_message();
    return c->rc == WEFT_EDEADLK ? 0 : c->rc;
}

static int edeadlk_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* A -> B -> C -> A: the await that would close the ring fails */
    cyc_t c[3] = { { 0 } };
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_create_task(&t[i], cyc_coro, &c[i], NULL), 0);
    weft_yield();
    c[0].next = t[1];
    c[1].next = t[2];
    weft_yield();
    weft_yield();
    CHECK(weft_task_awaiting(t[0]) == t[1]);
    CHECK(weft_task_awaiting(t[1]) == t[2]);
    c[2].next = t[0];
    for (int i = 2; i >= 0; i--)
        CHECK_EQ(weft_await(t[i], NULL), 0);   /* C failed its await and returned, so B and A finished */
    CHECK_EQ(c[2].rc, WEFT_EDEADLK);
    CHECK_EQ(c[1].rc, 0);
    CHECK_EQ(c[0].rc, 0);
    CHECK(c[2].msg && strstr(c[2].msg, "cycle"));
    for (int i = 0; i < 3; i++)
        weft_task_release(t[i]);
    /* the code is documented */
    CHECK_STR(weft_err_name(WEFT_EDEADLK), "WEFT_EDEADLK");
    CHECK(strstr(weft_strerror(WEFT_EDEADLK), "cycle") != NULL);
    return 0;
}

static void test_await_cycle_edeadlk(void)
{
    arm_watchdog(30);
    CHECK_EQ(weft_run(edeadlk_main, NULL, NULL, NULL), 0);
    alarm(0);
}

/* ---- 3b. a cycle weft_await cannot see (through a gather), then a cancel --------- */
typedef struct gcyc {
    weft_task_t *a, *b;
    int rc_a, rc_b;
} gcyc_t;

static int gcyc_a(void *arg, weft_value_t *out)
{
    (void)out;
    gcyc_t *g = arg;
    while (!g->b)
        weft_yield();
    weft_future_t *fs[1] = { g->b };
    g->rc_a = weft_gather(fs, 1, NULL, NULL, NULL);   /* A awaits gather(B) */
    return g->rc_a;
}

static int gcyc_b(void *arg, weft_value_t *out)
{
    (void)out;
    gcyc_t *g = arg;
    while (!g->a)
        weft_yield();
    g->rc_b = weft_await(g->a, NULL);   /* B awaits A: not seen, a plain future is in between */
    return g->rc_b;
}

static int gather_cycle_main(void *arg, weft_value_t *out)
{
    (void)out;
    int which = (int)(intptr_t)arg;
    gcyc_t g = { 0 };
    weft_task_t *a, *b;
    CHECK_EQ(weft_create_task(&a, gcyc_a, &g, NULL), 0);
    CHECK_EQ(weft_create_task(&b, gcyc_b, &g, NULL), 0);
    g.a = a;
    g.b = b;
    while (weft_task_state(a) != WEFT_TASK_SUSPENDED || !weft_task_awaiting(b))
        weft_yield();
    weft_yield();
    /* deadlocked now; any cancel must end it without recursing forever */
    CHECK_EQ(weft_task_cancel(which ? b : a, NULL), 1);
    CHECK_EQ(weft_await(a, NULL), WEFT_ECANCELED);
    CHECK_EQ(weft_await(b, NULL), WEFT_ECANCELED);
    CHECK(weft_future_done(a) && weft_future_done(b));
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_cancel_gather_cycle(void)
{
    arm_watchdog(30);
    CHECK_EQ(weft_run(gather_cycle_main, (void *)(intptr_t)0, NULL, NULL), 0);
    CHECK_EQ(weft_run(gather_cycle_main, (void *)(intptr_t)1, NULL, NULL), 0);
    alarm(0);
}

/* ---- 3c. cancelling a chain of 3000 awaiting tasks from a task --------------------- */
#define CHAIN 3000

static int chain_coro(void *arg, weft_value_t *out)
{
    (void)out;
    weft_task_t *next = arg;
    if (!next)
        return weft_sleep(3600.0);
    return weft_await(next, NULL);
}

static int chain_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t **t = calloc(CHAIN, sizeof *t);
    CHECK(t);
    for (int i = CHAIN - 1; i >= 0; i--)
        CHECK_EQ(weft_create_task(&t[i], chain_coro, i + 1 < CHAIN ? t[i + 1] : NULL, NULL), 0);
    for (int i = 0; i < CHAIN - 1; i++)
        while (weft_task_awaiting(t[i]) != t[i + 1])
            weft_yield();
    /* the whole chain is cancelled from this task's own (default-size) stack */
    CHECK_EQ(weft_task_cancel(t[0], NULL), 1);
    CHECK_EQ(weft_await(t[0], NULL), WEFT_ECANCELED);
    for (int i = 0; i < CHAIN; i++) {
        CHECK(weft_future_cancelled(t[i]));
        weft_task_release(t[i]);
    }
    free(t);
    return 0;
}

static void test_cancel_long_chain(void)
{
    arm_watchdog(60);
    CHECK_EQ(weft_run(chain_main, NULL, NULL, NULL), 0);
    alarm(0);
}

/* ---- 4. gather's first error lets go of children that never complete ------------- */
static int fail_now(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_raise(-9001, "first error");
}

static int gather_leak_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int round = 0; round < 100; round++) {
        weft_future_t *never;
        CHECK_EQ(weft_future_new(NULL, &never), 0);
        weft_task_t *bad;
        CHECK_EQ(weft_create_task(&bad, fail_now, NULL, NULL), 0);
        weft_future_t *fs[2] = { never, bad };
        CHECK_EQ(weft_gather(fs, 2, NULL, NULL, NULL), -9001);
        /* the gather is over: it keeps no reference on the pending child */
        CHECK_EQ(ck_pr_load_uint(&never->refs), 1);
        weft_task_release(bad);
        weft_future_release(never);   /* frees it (LeakSanitizer checks the rest) */
    }
    return 0;
}

static void test_gather_first_error_no_cycle(void)
{
    arm_watchdog(30);
    CHECK_EQ(weft_run(gather_leak_main, NULL, NULL, NULL), 0);
    alarm(0);
}

/* ---- 5. misuse: a release too many, timeout_exit from another task ----------------- */
static int sleeper(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_sleep(0.01);
}

static int quick(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 5;
    return 0;
}

static int double_release_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* a pending task: the second release would drop its loop's own reference */
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, sleeper, NULL, NULL), 0);
    weft_yield();
    weft_task_release(t);
    CHECK_EQ(atomic_load(&nlogged), 0);
    weft_task_release(t);   /* misuse */
    CHECK_EQ(atomic_load(&nlogged), 1);
    CHECK(strstr(last_log, "released more times than it was retained") != NULL);
    weft_sleep(0.05);   /* the task still runs to its end and is freed by its loop */

    /* a finished task released twice: the memory it had is recognised */
    weft_task_t *q;
    CHECK_EQ(weft_create_task(&q, quick, NULL, NULL), 0);
    CHECK_EQ(weft_await(q, NULL), 0);
    weft_yield();   /* let its loop drop its reference */
    weft_task_release(q);
    weft_task_release(q);   /* misuse */
    CHECK_EQ(atomic_load(&nlogged), 2);
    CHECK(strstr(last_log, "already freed") != NULL);

#if defined(WEFT_ASAN)
    /* a plain future: its memory was freed; ASan tells us without a bad read */
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    weft_future_release(f);
    weft_future_release(f);   /* misuse */
    CHECK_EQ(atomic_load(&nlogged), 3);
    CHECK(strstr(last_log, "already freed") != NULL);
#endif
    return 0;
}

static void test_double_release_detected(void)
{
    arm_watchdog(30);
    capture_begin();
    CHECK_EQ(weft_run(double_release_main, NULL, NULL, NULL), 0);
    capture_end();
    alarm(0);
}

static weft_timeout_t shared_to;

static int other_exits(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_timeout_exit(&shared_to, 0);   /* not the task that entered */
}

static int outside_rc;
static int exit_from_callback(void *arg)
{
    (void)arg;
    outside_rc = weft_timeout_exit(&shared_to, 0);
    return 0;
}

static int timeout_misuse_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_timeout_enter(&shared_to, 3600.0), 0);
    weft_task_t *o;
    CHECK_EQ(weft_create_task(&o, other_exits, NULL, NULL), 0);
    CHECK_EQ(weft_await(o, NULL), WEFT_EINVALSTATE);
    weft_task_release(o);
    CHECK_EQ(atomic_load(&nlogged), 1);
    CHECK_EQ(weft_call_soon(weft_running_loop(), exit_from_callback, NULL, NULL), 0);
    weft_yield();
    weft_yield();
    CHECK_EQ(outside_rc, WEFT_ENOTCORO);
    CHECK_EQ(atomic_load(&nlogged), 2);
    /* the scope is still ours and active */
    CHECK_EQ(weft_timeout_state(&shared_to), WEFT_TIMEOUT_ACTIVE);
    CHECK_EQ(weft_timeout_exit(&shared_to, 0), 0);
    CHECK_EQ(weft_timeout_state(&shared_to), WEFT_TIMEOUT_FINISHED);
    return 0;
}

static void test_timeout_exit_other_task(void)
{
    arm_watchdog(30);
    capture_begin();
    CHECK_EQ(weft_run(timeout_misuse_main, NULL, NULL, NULL), 0);
    capture_end();
    alarm(0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    RUN(test_stale_cfuture_wake);
    RUN(test_to_thread_cancel_after_completion);
    RUN(test_await_cycle_edeadlk);
    RUN(test_cancel_gather_cycle);
    RUN(test_cancel_long_chain);
    RUN(test_gather_first_error_no_cycle);
    RUN(test_double_release_detected);
    RUN(test_timeout_exit_other_task);
    return 0;
}
