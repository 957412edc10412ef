/* The multi-loop runtime: stealable tasks, placement, cross-loop awaits,
 * run_coroutine_threadsafe, to_thread, shutdown, idle CPU. Counts are checked
 * exactly; a progress watchdog (watchdog.h) fails a test that hangs, however
 * slow the build or the machine. */
#include "check.h"
#include "core/task.h"
#include "watchdog.h"
#include "weft.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

/* The counts are what makes a race likely, not what is checked: sanitizer
 * builds run them smaller. ThreadSanitizer is the slowest by far: it creates
 * a fiber for every task, about 3 ms each on a loaded 2-core machine, so
 * fib(20)'s 10,945 tasks took 34 s and the suite 174 s; under it the counts of
 * tasks are divided by 500 (TASKS_SCALE) and fib runs at 15. */
#if defined(WEFT_TSAN)
#define SCALE 50
#define TASKS_SCALE 500
#define FIB_N 15
#define FIB_VALUE 610
#define FIB_SPAWNS 986    /* tasks spawned by fib(n): F(n+1) - 1 */
#elif defined(WEFT_ASAN)
#define SCALE 20
#define TASKS_SCALE 20
#else
#define SCALE 1
#define TASKS_SCALE 1
#endif
#ifndef FIB_N
#define FIB_N 20
#define FIB_VALUE 6765
#define FIB_SPAWNS 10945
#endif
#define RUNW(fn)          \
    do {                  \
        wd_phase(#fn);    \
        RUN(fn);          \
    } while (0)

static weft_runtime_t *new_rt(int workers)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &rt), 0);
    CHECK_EQ(weft_runtime_workers(rt), workers);
    return rt;
}

/* ---- fib_tasks: fork-join with stealable children ------------------------------ */
static int fib(void *arg, weft_value_t *out)
{
    long n = (long)(intptr_t)arg;
    if (n < 2) {
        out->i = n;
        return 0;
    }
    weft_task_t *t;
    int rc = weft_spawn(&t, fib, (void *)(intptr_t)(n - 1), NULL);
    if (rc < 0)
        return rc;
    weft_value_t b;
    rc = fib((void *)(intptr_t)(n - 2), &b);
    weft_value_t a;
    int rc2 = weft_await(t, &a);
    weft_task_release(t);
    if (rc < 0 || rc2 < 0)
        return rc < 0 ? rc : rc2;
    out->i = a.i + b.i;
    return 0;
}

static void test_fib_two_workers(void)
{
    weft_runtime_t *rt = new_rt(2);
    weft_value_t v;
    CHECK_EQ(weft_runtime_run(rt, fib, (void *)(intptr_t)FIB_N, NULL, &v), 0);
    CHECK_EQ(v.i, FIB_VALUE);
    weft_loop_stats_t s0, s1;
    weft_runtime_stats(rt, 0, &s0);
    weft_runtime_stats(rt, 1, &s1);
    /* 10945 tasks are spawned in fib(20), plus main */
    CHECK_EQ(s0.tasks_started + s1.tasks_started, FIB_SPAWNS + 1);
    weft_runtime_print_stats(rt, stdout);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* ---- one million stealable tasks, each run exactly once ---------------------------- */
#define MANY (1000000 / TASKS_SCALE)
static unsigned char ran[MANY];
static unsigned int finished;

static int mark(void *arg, weft_value_t *out)
{
    (void)out;
    intptr_t i = (intptr_t)arg;
    ck_pr_inc_8(&ran[i]);   /* tasks on different loops: atomic */
    if (i % 7 == 0) {
        int rc = weft_yield();
        if (rc < 0)
            return rc;
    }
    ck_pr_inc_uint(&finished);
    return 0;
}

static int spawn_many(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (intptr_t i = 0; i < MANY; i++) {
        int rc = weft_spawn(NULL, mark, (void *)i, NULL);
        if (rc < 0)
            return rc;
        if (i % 1000 == 999 && (rc = weft_yield()) < 0)
            return rc;
        if (i % 1000 == 999)
            wd_progress();
    }
    /* tasks still pending when main returns would be cancelled: wait for all */
    while (ck_pr_load_uint(&finished) < MANY) {
        unsigned int before = ck_pr_load_uint(&finished);
        int rc = weft_sleep(0.001);
        if (ck_pr_load_uint(&finished) != before)
            wd_progress();   /* only while the count moves: a lost task stalls it */
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void test_million_stealable_exactly_once(void)
{
    weft_runtime_t *rt = new_rt(2);
    CHECK_EQ(weft_runtime_run(rt, spawn_many, NULL, NULL, NULL), 0);
    /* runtime_run returns after shutdown: every spawned task has run */
    for (int i = 0; i < MANY; i++)
        if (ran[i] != 1) {
            fprintf(stderr, "task %d ran %d times\n", i, ran[i]);
            CHECK(0);
        }
    weft_runtime_print_stats(rt, stdout);
    weft_runtime_free(rt);
}

/* ---- loop-affine tasks never run concurrently ---------------------------------------- */
static long plain_counter;   /* no atomics: only affine tasks of one loop touch it */

static int bump(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int k = 0; k < 10; k++) {
        long v = plain_counter;   /* read-modify-write between two awaits: never interleaved */
        plain_counter = v + 1;    /* on one loop; a second thread would lose updates and TSan */
        int rc = weft_yield();    /* would report the race */
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int affine_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[1000];
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(weft_create_task(&ts[i], bump, NULL, NULL), 0);
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(weft_await(ts[i], NULL), 0);
        CHECK(weft_future_get_loop(ts[i]) == weft_running_loop());
        weft_task_release(ts[i]);
    }
    return 0;
}

static void test_affine_tasks_share_without_locks(void)
{
    weft_runtime_t *rt = new_rt(2);
    plain_counter = 0;
    CHECK_EQ(weft_runtime_run(rt, affine_main, NULL, NULL, NULL), 0);
    CHECK_EQ(plain_counter, 1000 * 10);   /* exact: the 1,000 affine tasks never overlapped */
    weft_runtime_free(rt);
}

/* ---- cross-loop awaits and explicit placement ---------------------------------------- */
static int on_loop1(void *arg, weft_value_t *out)
{
    weft_future_t *f = arg;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    CHECK(weft_running_loop() == weft_runtime_loop(rt, 1));
    int rc = weft_sleep(0.01);
    if (rc < 0)
        return rc;
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(5)), 0);   /* a future of loop 0 */
    out->i = 7;
    return 0;
}

static int cross_main(void *arg, weft_value_t *out)
{
    (void)arg;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, 1), &t, on_loop1, f, NULL), 0);
    weft_value_t a, b;
    CHECK_EQ(weft_await(f, &a), 0);   /* completed on loop 1, resumed here */
    CHECK(weft_running_loop() == weft_runtime_loop(rt, 0));
    CHECK_EQ(weft_await(t, &b), 0);   /* a task of loop 1 */
    CHECK_EQ(a.i + b.i, 12);
    weft_task_release(t);
    weft_future_release(f);
    out->i = 1;
    return 0;
}

static void test_cross_loop_await(void)
{
    weft_runtime_t *rt = new_rt(2);
    weft_value_t v;
    CHECK_EQ(weft_runtime_run(rt, cross_main, NULL, NULL, &v), 0);
    CHECK_EQ(v.i, 1);
    weft_runtime_free(rt);
}

/* cancelling a task that awaits a task on another loop cancels the inner one */
static int sleeper(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_sleep(30);
}

static int waits_remote(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_await(arg, NULL);
}

static int cross_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    weft_task_t *inner, *outer;
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, 1), &inner, sleeper, NULL, NULL), 0);
    CHECK_EQ(weft_create_task(&outer, waits_remote, inner, NULL), 0);
    CHECK_EQ(weft_sleep(0.02), 0);
    CHECK_EQ(weft_task_cancel(outer, "stop"), 1);
    CHECK_EQ(weft_await(outer, NULL), WEFT_ECANCELED);
    CHECK_EQ(weft_await(inner, NULL), WEFT_ECANCELED);
    CHECK(weft_future_cancelled(inner));
    weft_task_release(inner);
    weft_task_release(outer);
    return 0;
}

static void test_cross_loop_cancel_cascades(void)
{
    weft_runtime_t *rt = new_rt(2);
    CHECK_EQ(weft_runtime_run(rt, cross_cancel_main, NULL, NULL, NULL), 0);
    weft_runtime_free(rt);
}

/* ---- random cancellations across loops --------------------------------------------------- */
#define NRAND (20000 / SCALE)
static unsigned int rand_ended, rand_cancelled, rand_completed;

static int rand_victim(void *arg, weft_value_t *out)
{
    (void)out;
    intptr_t i = (intptr_t)arg;
    int rc = (i % 3 == 0) ? weft_yield() : weft_sleep((double)(i % 7) / 1000.0);
    ck_pr_inc_uint(&rand_ended);
    return rc;
}

static int rand_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    weft_task_t **ts = malloc(NRAND * sizeof *ts);
    CHECK(ts);
    uint32_t x = 12345;
    for (intptr_t i = 0; i < NRAND; i++) {
        if (i % 2)
            CHECK_EQ(weft_spawn(&ts[i], rand_victim, (void *)i, NULL), 0);
        else
            CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, (int)(i / 2 % 2)), &ts[i], rand_victim, (void *)i, NULL), 0);
        /* cancel an earlier task at random: it may be queued, running elsewhere, sleeping or done */
        x = x * 1103515245u + 12345u;
        if (i > 0 && (x >> 16) % 3 == 0) {
            int c = weft_task_cancel(ts[(x >> 8) % (uint32_t)i], "random");
            CHECK(c == 0 || c == 1);
        }
        if (i % 256 == 255)
            CHECK_EQ(weft_yield(), 0);
    }
    for (int i = 0; i < NRAND; i++) {
        int rc = weft_await(ts[i], NULL);
        CHECK(rc == 0 || rc == WEFT_ECANCELED);
        if (rc == 0)
            rand_completed++;
        else
            rand_cancelled++;
        CHECK(weft_future_done(ts[i]));
        weft_task_release(ts[i]);
    }
    free(ts);
    return 0;
}

static void test_random_cancellations_across_loops(void)
{
    weft_runtime_t *rt = new_rt(2);
    CHECK_EQ(weft_runtime_run(rt, rand_main, NULL, NULL, NULL), 0);
    /* every task ended exactly once, either way; the bodies that ran counted themselves */
    CHECK_EQ(rand_completed + rand_cancelled, NRAND);
    CHECK(rand_ended <= NRAND);
    CHECK(rand_cancelled > 0 && rand_completed > 0);
    printf("random cancels: %u completed, %u cancelled, %u bodies reached their end\n", rand_completed,
           rand_cancelled, rand_ended);
    weft_runtime_free(rt);
}

/* ---- run_coroutine_threadsafe from foreign threads -------------------------------------- */
#define NTHREADS 8
#define PER_THREAD (100000 / TASKS_SCALE)   /* 8 threads x 100,000 (x 5,000 under ASan, x 200 under TSan) */

static int plus_one(void *arg, weft_value_t *out)
{
    out->i = (intptr_t)arg + 1;
    return 0;
}

struct submitter {
    weft_runtime_t *rt;
    int idx;
    long long sum;
};

static void *submit_thread(void *p)
{
    struct submitter *s = p;
    weft_cfuture_t **cfs = malloc(PER_THREAD * sizeof *cfs);
    CHECK(cfs);
    for (int i = 0; i < PER_THREAD; i++) {
        weft_loop_t *target = i % 3 == 0 ? weft_runtime_loop(s->rt, i % weft_runtime_workers(s->rt)) : NULL;
        CHECK_EQ(weft_run_coroutine_threadsafe(s->rt, target, plus_one, (void *)(intptr_t)i, NULL, &cfs[i]), 0);
    }
    for (int i = 0; i < PER_THREAD; i++) {
        weft_value_t v;
        CHECK_EQ(weft_cfuture_result(cfs[i], WEFT_NO_TIMEOUT, &v), 0);
        wd_progress();
        CHECK_EQ(v.i, i + 1);
        s->sum += v.i;
        weft_cfuture_release(cfs[i]);
    }
    free(cfs);
    return NULL;
}

static void test_foreign_threads_submit(void)
{
    weft_runtime_t *rt = new_rt(2);
    CHECK_EQ(weft_runtime_start(rt), 0);
    pthread_t th[NTHREADS];
    struct submitter s[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        s[i] = (struct submitter){ rt, i, 0 };
        CHECK_EQ(pthread_create(&th[i], NULL, submit_thread, &s[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(s[i].sum, (long long)PER_THREAD * (PER_THREAD + 1) / 2);
    }
    CHECK_EQ(weft_runtime_shutdown(rt), 0);
    CHECK_EQ(weft_runtime_shutdown(rt), 0);   /* a second shutdown is harmless */
    weft_cfuture_t *cf;
    CHECK_EQ(weft_run_coroutine_threadsafe(rt, NULL, plus_one, NULL, NULL, &cf), WEFT_ECLOSED);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

static void test_cfuture_cancel_and_timeout(void)
{
    weft_runtime_t *rt = new_rt(2);
    CHECK_EQ(weft_runtime_start(rt), 0);
    weft_cfuture_t *cf;
    CHECK_EQ(weft_run_coroutine_threadsafe(rt, NULL, sleeper, NULL, NULL, &cf), 0);
    CHECK_EQ(weft_cfuture_result(cf, 0.02, NULL), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_cfuture_cancel(cf), 1);
    CHECK_EQ(weft_cfuture_result(cf, 5, NULL), WEFT_ECANCELED);
    CHECK(weft_cfuture_cancelled(cf));
    CHECK_EQ(weft_cfuture_cancel(cf), 0);
    weft_cfuture_release(cf);
    weft_runtime_shutdown(rt);
    weft_runtime_free(rt);
}

/* ---- to_thread --------------------------------------------------------------------- */
static int blocking_add(void *arg, weft_value_t *out)
{
    usleep(100);
    out->i = (intptr_t)arg + 1;
    return 0;
}

/* A blocking call that cannot finish until the test lets it. */
static uv_sem_t release_blocking;
static unsigned int blocking_started, blocking_finished;

static int slow_blocking(void *arg, weft_value_t *out)
{
    (void)arg;
    ck_pr_store_uint(&blocking_started, 1);
    uv_sem_wait(&release_blocking);
    out->i = 1;
    ck_pr_store_uint(&blocking_finished, 1);
    return 0;
}

static int to_thread_worker(void *arg, weft_value_t *out)
{
    long long s = 0;
    for (intptr_t i = (intptr_t)arg; i < 2000 / SCALE; i += 16) {
        weft_value_t v;
        int rc = weft_to_thread(blocking_add, (void *)i, &v);
        if (rc < 0)
            return rc;
        s += v.i;
    }
    out->i = s;
    return 0;
}

static int to_thread_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *ts[16];
    for (intptr_t w = 0; w < 16; w++)
        CHECK_EQ(weft_spawn(&ts[w], to_thread_worker, (void *)w, NULL), 0);
    long long total = 0;
    for (int w = 0; w < 16; w++) {
        weft_value_t v;
        CHECK_EQ(weft_await(ts[w], &v), 0);
        total += v.i;
        weft_task_release(ts[w]);
    }
    long long n = 2000 / SCALE;
    CHECK_EQ(total, n * (n + 1) / 2);
    return 0;
}

static int cancel_to_thread_child(void *arg, weft_value_t *out)
{
    (void)arg;
    return weft_to_thread(slow_blocking, NULL, out);
}

static int to_thread_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    uv_sem_init(&release_blocking, 0);
    CHECK_EQ(weft_create_task(&t, cancel_to_thread_child, NULL, NULL), 0);
    while (!ck_pr_load_uint(&blocking_started))
        CHECK_EQ(weft_sleep(0.001), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    /* the awaiter was cancelled at once: the call is still blocked in its thread */
    CHECK(!ck_pr_load_uint(&blocking_finished));
    uv_sem_post(&release_blocking);   /* it finishes there; its result is dropped */
    weft_task_release(t);
    return 0;
}

static void test_to_thread(void)
{
    weft_runtime_t *rt = new_rt(2);
    CHECK_EQ(weft_runtime_run(rt, to_thread_main, NULL, NULL, NULL), 0);
    weft_runtime_free(rt);
    rt = new_rt(2);
    CHECK_EQ(weft_runtime_run(rt, to_thread_cancel_main, NULL, NULL, NULL), 0);
    weft_runtime_free(rt);
    rt = new_rt(2);
    weft_value_t v;
    CHECK_EQ(weft_runtime_run(rt, to_thread_worker, (void *)0, NULL, &v), 0);
    long long s = 0;
    for (long long i = 0; i < 2000 / SCALE; i += 16)
        s += i + 1;
    CHECK_EQ(v.i, s);
    weft_runtime_free(rt);
}

/* to_thread and run_coroutine_threadsafe carry the caller's context variables
 * (asyncio.to_thread: contextvars.copy_context().run(func)) */
static weft_contextvar_t *request_id;

static int blocking_reads_var(void *arg, weft_value_t *out)
{
    (void)arg;
    return weft_contextvar_get(request_id, out);
}

static int ctx_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_contextvar_token_t tok;
    CHECK_EQ(weft_contextvar_set(request_id, WEFT_VALUE_INT(4242), &tok), 0);
    weft_value_t v;
    CHECK_EQ(weft_to_thread(blocking_reads_var, NULL, &v), 0);
    CHECK_EQ(v.i, 4242);
    weft_task_t *t;   /* a stealable task copies its creator's context too */
    CHECK_EQ(weft_spawn(&t, (weft_coro_fn)blocking_reads_var, NULL, NULL), 0);
    CHECK_EQ(weft_await(t, &v), 0);
    CHECK_EQ(v.i, 4242);
    weft_task_release(t);
    return 0;
}

static void test_context_reaches_to_thread(void)
{
    CHECK_EQ(weft_contextvar_new(&request_id, "request_id", NULL), 0);
    weft_runtime_t *rt = new_rt(2);
    CHECK_EQ(weft_runtime_run(rt, ctx_main, NULL, NULL, NULL), 0);
    weft_runtime_free(rt);
    weft_contextvar_free(request_id);
}

/* ---- shutdown with work in flight; idle CPU --------------------------------------------- */
static int forever(void *arg, weft_value_t *out)
{
    (void)out;
    int *counts = arg;   /* [0] started, [1] cleaned up after the cancellation */
    ck_pr_inc_int(&counts[0]);
    int rc = weft_sleep(3600);
    if (rc == WEFT_ECANCELED)
        ck_pr_inc_int(&counts[1]);
    return rc;
}

static int spawner_main(void *arg, weft_value_t *out)
{
    (void)out;
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(weft_spawn(NULL, forever, arg, NULL), 0);
    return weft_sleep(0.05);   /* main ends with 1000 tasks still sleeping */
}

static void test_shutdown_with_work_in_flight(void)
{
    weft_runtime_t *rt = new_rt(2);
    int counts[2] = { 0, 0 };
    CHECK_EQ(weft_runtime_run(rt, spawner_main, counts, NULL, NULL), 0);
    /* every task that started was cancelled in its sleep and ran its cleanup;
     * the others were cancelled before they started (their body never ran) */
    CHECK(counts[0] > 0);
    CHECK_EQ(counts[1], counts[0]);
    /* weft_runtime_run returned: the runtime's count of live tasks reached 0 */
    weft_runtime_free(rt);
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}

static int idle_main(void *arg, weft_value_t *out)
{
    (void)arg;
    double c0 = cpu_ms();
    int rc = weft_sleep(1.0);
    out->d = cpu_ms() - c0;
    return rc;
}

static void test_idle_runtime_uses_no_cpu(void)
{
    weft_runtime_t *rt = new_rt(2);
    weft_value_t v;
    CHECK_EQ(weft_runtime_run(rt, idle_main, NULL, NULL, &v), 0);
    printf("idle CPU over 1 s with 2 workers: %.2f ms\n", v.d);
    CHECK(v.d < 50.0);   /* parked loops sleep in epoll: a busy loop would burn ~1000 ms */
    weft_runtime_free(rt);
}

static void test_bad_input(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = -1 }, &rt), WEFT_EINVAL);
    CHECK_EQ(weft_runtime_new(NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_runtime_run(NULL, fib, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_spawn(NULL, fib, NULL, NULL), WEFT_ENOLOOP);
    CHECK_EQ(weft_spawn_on(NULL, NULL, fib, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_to_thread(blocking_add, NULL, NULL), WEFT_ENOTCORO);
    CHECK_EQ(weft_run_coroutine_threadsafe(NULL, NULL, fib, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_cfuture_result(NULL, 0, NULL), WEFT_EINVAL);
    rt = new_rt(1);
    CHECK_EQ(weft_runtime_run(rt, fib, (void *)(intptr_t)5, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_run(rt, fib, (void *)(intptr_t)5, NULL, NULL), WEFT_ECLOSED);
    weft_runtime_free(rt);
}

int main(int argc, char **argv)
{
    wd_start(120);   /* a hang: 120 s (x10 under sanitizers) without progress */
    RUNW(test_bad_input);
    RUNW(test_fib_two_workers);
    RUNW(test_million_stealable_exactly_once);
    RUNW(test_affine_tasks_share_without_locks);
    RUNW(test_cross_loop_await);
    RUNW(test_cross_loop_cancel_cascades);
    RUNW(test_random_cancellations_across_loops);
    RUNW(test_foreign_threads_submit);
    RUNW(test_cfuture_cancel_and_timeout);
    RUNW(test_to_thread);
    RUNW(test_context_reaches_to_thread);
    RUNW(test_shutdown_with_work_in_flight);
    RUNW(test_idle_runtime_uses_no_cpu);
    return 0;
}
