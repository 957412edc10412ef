/* Structured concurrency over every worker: TaskGroup children that other
 * workers may steal (weft_taskgroup_spawn) under the group's error and
 * cancellation rules; worker indexes; the task argument destructor on every
 * path (body ran, cancelled before start, no start because the loop closed or
 * the runtime shut down, creation failed: not called) and the to_thread one. */
#include "sync_util.h"

#include <time.h>
#include <unistd.h>

#define WORKERS 4

static int dtor_calls;   /* atomic */

static void count_dtor(void *p)
{
    int *flag = p;
    __atomic_add_fetch(flag, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&dtor_calls, 1, __ATOMIC_SEQ_CST);
}


/* ---- the argument destructor ------------------------------------------------------------- */

struct targ {
    int freed;    /* dtor calls on this arg (atomic) */
    int ran;
};

static int body_ran(void *arg, weft_value_t *res)
{
    (void)res;
    struct targ *a = arg;
    a->ran = 1;
    return 0;
}

static int body_forever(void *arg, weft_value_t *res)
{
    (void)res;
    struct targ *a = arg;
    a->ran = 1;
    return weft_sleep(3600);
}

static int dtor_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_task_t *t;
    /* ran: the dtor has run when the awaiter resumes */
    struct targ a = { 0 };
    weft_task_opts_t o = { .arg_dtor = count_dtor };
    CHECK_EQ(weft_create_task(&t, body_ran, &a, &o), 0);
    CHECK_EQ(a.freed, 0);
    CHECK_EQ(await_release(t), 0);
    CHECK(a.ran);
    CHECK_EQ(a.freed, 1);

    /* cancelled before its first step: the body never runs, the dtor does */
    struct targ b = { 0 };
    CHECK_EQ(weft_create_task(&t, body_ran, &b, &o), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(await_release(t), WEFT_ECANCELED);
    CHECK(!b.ran);
    CHECK_EQ(b.freed, 1);

    /* cancelled while running: once */
    struct targ c = { 0 };
    CHECK_EQ(weft_create_task(&t, body_forever, &c, &o), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(c.ran);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(await_release(t), WEFT_ECANCELED);
    CHECK_EQ(c.freed, 1);

    /* eager task finishing at once */
    struct targ d = { 0 };
    weft_task_opts_t oe = { .arg_dtor = count_dtor, .eager_start = true };
    CHECK_EQ(weft_create_task(&t, body_ran, &d, &oe), 0);
    CHECK_EQ(d.freed, 1);
    CHECK_EQ(await_release(t), 0);
    CHECK_EQ(d.freed, 1);

    /* creation failed: the caller keeps its argument */
    struct targ e = { 0 };
    weft_task_opts_t bad = { .arg_dtor = count_dtor, .stack_size = 1 };
    CHECK_EQ(weft_create_task(&t, body_ran, &e, &bad), WEFT_EINVAL);
    CHECK_EQ(e.freed, 0);
    return 0;
}

static void test_arg_dtor_paths(void) { run_loop(dtor_body, NULL); }

/* a loop closed with tasks pending (started and never started): destroyed, dtor once each */
static void test_arg_dtor_loop_closed(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    struct targ a = { 0 }, b = { 0 };
    weft_task_opts_t o = { .arg_dtor = count_dtor };
    weft_task_t *ta, *tb;
    CHECK_EQ(weft_loop_create_task(loop, &ta, body_forever, &a, &o), 0);
    /* run one iteration: a starts and sleeps */
    weft_task_t *tick;
    struct targ tick_arg = { 0 };
    CHECK_EQ(weft_loop_create_task(loop, &tick, body_ran, &tick_arg, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, tick, NULL), 0);
    weft_task_release(tick);
    CHECK(a.ran);
    CHECK_EQ(weft_loop_create_task(loop, &tb, body_ran, &b, &o), 0);   /* never runs */
    weft_loop_set_exception_handler(loop, NULL, NULL);
    CHECK_EQ(weft_loop_close(loop), 0);
    weft_task_release(ta);
    weft_task_release(tb);
    CHECK_EQ(a.freed, 1);
    CHECK_EQ(b.freed, 1);
    CHECK(!b.ran);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* a runtime shut down with stealable tasks running, queued and never started */
#define NSHUT 64

static struct targ shut_args[NSHUT];

static int shut_main(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_task_opts_t o = { .arg_dtor = count_dtor };
    for (int i = 0; i < NSHUT; i++)
        CHECK_EQ(weft_spawn(NULL, i % 2 ? body_forever : body_ran, &shut_args[i], &o), 0);
    CHECK_EQ(weft_yield(), 0);
    return 0;   /* the runtime shuts down: what runs is cancelled, what is queued is dropped */
}

static void test_arg_dtor_runtime_shutdown(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, shut_main, NULL, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
    for (int i = 0; i < NSHUT; i++)
        CHECK_EQ(shut_args[i].freed, 1);
    /* after the runtime is gone, spawn_on fails and leaves the argument alone */
}

/* ---- to_thread ------------------------------------------------------------------------------------ */

static int blocking_fn(void *arg, weft_value_t *res)
{
    struct targ *a = arg;
    usleep(20000);
    a->ran = 1;
    res->i = 7;
    return 0;
}

static int thread_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    struct targ a = { 0 };
    weft_value_t v;
    CHECK_EQ(weft_to_thread_dtor(blocking_fn, &a, count_dtor, &v), 0);
    CHECK_EQ(v.i, 7);
    CHECK_EQ(__atomic_load_n(&a.freed, __ATOMIC_SEQ_CST), 1);
    /* the awaiter leaves early: the dtor still runs once, after fn */
    static struct targ b;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.001), 0);
    int rc = weft_to_thread_dtor(blocking_fn, &b, count_dtor, &v);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    while (!__atomic_load_n(&b.freed, __ATOMIC_SEQ_CST))
        CHECK_EQ(weft_sleep(0.002), 0);
    CHECK(b.ran);
    CHECK_EQ(__atomic_load_n(&b.freed, __ATOMIC_SEQ_CST), 1);
    /* refused before queueing: not called */
    struct targ c = { 0 };
    CHECK_EQ(weft_to_thread_dtor(NULL, &c, count_dtor, &v), WEFT_EINVAL);
    CHECK_EQ(c.freed, 0);
    return 0;
}

static void test_to_thread_dtor(void)
{
    run_loop(thread_body, NULL);
    struct targ c = { 0 };
    CHECK_EQ(weft_to_thread_dtor(blocking_fn, &c, count_dtor, NULL), WEFT_ENOTCORO);
    CHECK_EQ(c.freed, 0);
}

/* ---- worker indexes ------------------------------------------------------------------------------ */

static int report_worker(void *arg, weft_value_t *res)
{
    (void)arg;
    res->i = weft_current_worker();
    return 0;
}

static int index_main(void *arg, weft_value_t *res)
{
    (void)res;
    weft_runtime_t *rt = arg;
    CHECK_EQ(weft_current_worker(), 0);
    for (int i = 0; i < WORKERS; i++) {
        CHECK_EQ(weft_loop_index(weft_runtime_loop(rt, i)), i);
        weft_task_t *t;
        CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, i), &t, report_worker, NULL, NULL), 0);
        weft_value_t v;
        CHECK_EQ(weft_await(t, &v), 0);
        CHECK_EQ(v.i, i);
        weft_task_release(t);
    }
    return 0;
}

static int index_standalone(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    CHECK_EQ(weft_current_worker(), -1);
    CHECK_EQ(weft_loop_index(weft_running_loop()), -1);
    return 0;
}

static void test_worker_index(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, index_main, rt, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
    run_loop(index_standalone, NULL);
    CHECK_EQ(weft_current_worker(), -1);
    CHECK_EQ(weft_loop_index(NULL), -1);
}

/* ---- TaskGroup with stealable children --------------------------------------------------------- */

#define NCHILD 24

struct grp {
    int done;                 /* children finished (atomic) */
    int workers_seen;         /* bitmask (atomic) */
    int stuck;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Child 0 spins without yielding until every other child finished. If the
 * children could not leave child 0's loop they would wait behind it forever:
 * it gives up after a long bound and fails the group instead of hanging. */
static int spin_child(void *arg, weft_value_t *res)
{
    (void)res;
    struct grp *g = arg;
    __atomic_or_fetch(&g->workers_seen, 1 << weft_current_worker(), __ATOMIC_SEQ_CST);
    double t0 = now_s();
    while (__atomic_load_n(&g->done, __ATOMIC_SEQ_CST) < NCHILD - 1) {
        if (now_s() - t0 > 60)
            return weft_raise(-7001, "the other children never ran elsewhere");
    }
    return 0;
}

static int plain_child(void *arg, weft_value_t *res)
{
    (void)res;
    struct grp *g = arg;
    __atomic_or_fetch(&g->workers_seen, 1 << weft_current_worker(), __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&g->done, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static int steal_main(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    struct grp g = { 0 };
    weft_taskgroup_t tg;
    CHECK_EQ(weft_taskgroup_enter(&tg), 0);
    CHECK_EQ(weft_taskgroup_spawn(&tg, NULL, spin_child, &g, NULL), 0);
    for (int i = 1; i < NCHILD; i++)
        CHECK_EQ(weft_taskgroup_spawn(&tg, NULL, plain_child, &g, NULL), 0);
    CHECK_EQ(weft_taskgroup_exit(&tg, 0), 0);
    weft_taskgroup_free(&tg);
    CHECK_EQ(g.done, NCHILD - 1);
    int seen = g.workers_seen, n = 0;
    for (; seen; seen &= seen - 1)
        n++;
    CHECK(n >= 2);   /* the plain children ran on another worker than the spinner */
    return 0;
}

/* a child failing on one worker cancels the others wherever they run */
static int fail_child(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_sleep(0.01);
    return weft_raise(-7777, "child failed");
}

static int sleepy_child(void *arg, weft_value_t *res)
{
    (void)res;
    int *cancelled = arg;
    int rc = weft_sleep(3600);
    if (rc == WEFT_ECANCELED)
        __atomic_add_fetch(cancelled, 1, __ATOMIC_SEQ_CST);
    return rc;
}

static int fail_main(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    int cancelled = 0;
    weft_taskgroup_t tg;
    CHECK_EQ(weft_taskgroup_enter(&tg), 0);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(weft_taskgroup_spawn(&tg, NULL, sleepy_child, &cancelled, NULL), 0);
    CHECK_EQ(weft_taskgroup_spawn(&tg, NULL, fail_child, NULL, NULL), 0);
    int rc = weft_sleep(3600);   /* the block: cancelled by the group */
    CHECK_EQ(rc, WEFT_ECANCELED);
    rc = weft_taskgroup_exit(&tg, rc);
    CHECK_EQ(rc, WEFT_EGROUP);
    const weft_errgroup_t *eg = weft_taskgroup_errors(&tg);
    CHECK_EQ(weft_errgroup_count(eg), 1);
    CHECK_EQ(weft_errgroup_code(eg, 0), -7777);
    CHECK_STR(weft_errgroup_message(eg, 0), "child failed");
    CHECK_EQ(cancelled, 8);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);   /* balanced */
    weft_taskgroup_free(&tg);
    return 0;
}

/* the owner cancelled from outside: every child is cancelled, exit says cancelled */
struct ocx {
    int cancelled;
    int exit_rc;
    weft_event_t *in_block;
};

static int owner(void *arg, weft_value_t *res)
{
    (void)res;
    struct ocx *o = arg;
    weft_taskgroup_t tg;
    CHECK_EQ(weft_taskgroup_enter(&tg), 0);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(weft_taskgroup_spawn(&tg, NULL, sleepy_child, &o->cancelled, NULL), 0);
    weft_event_set(o->in_block);
    int rc = weft_sleep(3600);
    o->exit_rc = weft_taskgroup_exit(&tg, rc);
    weft_taskgroup_free(&tg);
    return o->exit_rc;
}

static int cancel_main(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    struct ocx o = { 0 };
    CHECK_EQ(weft_event_new(&o.in_block), 0);
    weft_task_t *t = spawn(owner, &o);
    CHECK_EQ(weft_event_wait(o.in_block), 0);
    CHECK_EQ(weft_sleep(0.01), 0);   /* let some children start on other workers */
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(await_release(t), WEFT_ECANCELED);
    CHECK_EQ(o.exit_rc, WEFT_ECANCELED);
    weft_event_free(o.in_block);
    return 0;
}

static void test_taskgroup_spawn(void)
{
    run_rt(WORKERS, steal_main, NULL);
    run_rt(WORKERS, fail_main, NULL);
    run_rt(WORKERS, cancel_main, NULL);
    run_loop(fail_main, NULL);   /* standalone: the same rules with plain children */
}

int main(int argc, char **argv)
{
    alarm(240);   /* watchdog: hangs only */
    RUN(test_arg_dtor_paths);
    RUN(test_arg_dtor_loop_closed);
    RUN(test_arg_dtor_runtime_shutdown);
    RUN(test_to_thread_dtor);
    RUN(test_worker_index);
    RUN(test_taskgroup_spawn);
    return 0;
}
