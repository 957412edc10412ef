/* The multi-loop runtime's life cycle: creating N worker loops and their
 * threads, weft_runtime_run / start / shutdown / free, live-task accounting
 * for shutdown, the default blocking pool, and the counters. The queues,
 * stealing, parking and waking are in scheduler.c. */
#include "runtime/rt.h"

#include <time.h>

/* Live-task accounting without a shared hot counter: each loop counts the
 * tasks it allocated (born) and finished (died) in its own counters; threads
 * outside the runtime use the runtime's. */
void weft__rt_task_born(weft_runtime_t *rt, weft_loop_t *cur)
{
    if (cur && cur->rt == rt)
        ck_pr_store_64(&cur->born, cur->born + 1);
    else
        ck_pr_inc_64(&rt->foreign_born);
}

/* Tasks allocated and not yet finished, in all loops. Deaths are summed before
 * births, so a task born and finished between the two sums only makes the
 * answer larger: 0 means none was alive when the deaths were read. */
unsigned int weft__rt_live(weft_runtime_t *rt)
{
    ck_pr_fence_memory();   /* the caller saw `shutting` first: see weft__rt_admit */
    uint64_t died = ck_pr_load_64(&rt->foreign_died), born;
    for (int i = 0; i < rt->n; i++)
        died += ck_pr_load_64(&rt->loops[i]->died);
    ck_pr_fence_memory();
    born = ck_pr_load_64(&rt->foreign_born);
    for (int i = 0; i < rt->n; i++)
        born += ck_pr_load_64(&rt->loops[i]->born);
    return born > died ? (unsigned int)(born - died) : 0;
}

void weft__rt_wake_all(weft_runtime_t *rt)
{
    for (int i = 0; i < rt->n; i++)
        uv_async_send(&rt->loops[i]->wake);
}

void weft__rt_task_gone(weft_runtime_t *rt, weft_loop_t *cur)
{
    if (cur && cur->rt == rt)
        ck_pr_store_64(&cur->died, cur->died + 1);
    else
        ck_pr_inc_64(&rt->foreign_died);
    if (ck_pr_load_uint(&rt->shutting) && weft__rt_live(rt) == 0)
        weft__rt_wake_all(rt);   /* the last task: every loop may now exit */
}

bool weft__rt_shutting(const weft_runtime_t *rt) { return ck_pr_load_uint(&rt->shutting) != 0; }

/* A task submitted from any thread is counted (weft__task_alloc) before this
 * check, never after: a worker exits once it has seen `shutting` and then no
 * live task, so a submitter that finds `shutting` still clear is already
 * counted for every worker that will look, and the workers stay until its
 * task has run. Checking first and counting second let a task land in the
 * inbox of a loop whose thread had already exited, and shutdown waited for it
 * forever. */
bool weft__rt_admit(weft_runtime_t *rt)
{
    /* counted, then look (pairs with request_shutdown's atomic swap). A
     * plain thread counted with an atomic increment (weft__rt_task_born),
     * which orders itself before later loads; a worker's plain store needs
     * the full fence. */
    weft_loop_t *cur = weft__thread()->running;
    if (cur && cur->rt == rt)
        ck_pr_fence_memory();
    else
        ck_pr_fence_atomic_load();
    return !weft__rt_shutting(rt);
}

static int default_workers(void)
{
    const char *e = getenv("WEFT_WORKERS");
    if (e && *e) {
        long v = strtol(e, NULL, 10);
        if (v >= 1 && v <= 1024)
            return (int)v;
    }
    unsigned int n = uv_available_parallelism();
    return n < 1 ? 1 : (int)n;
}

int weft_runtime_new(const weft_runtime_opts_t *opts, weft_runtime_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    int n = opts && opts->workers ? opts->workers : default_workers();
    if (n < 1 || n > 1024)
        return WEFT_EINVAL;
    weft_runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        return WEFT_ENOMEM;
    rt->n = n;
    rt->blocking_threads = opts && opts->blocking_threads > 0 ? opts->blocking_threads : 64;
    rt->loops = calloc((size_t)n, sizeof *rt->loops);
    rt->threads = calloc((size_t)n, sizeof *rt->threads);
    if (!rt->loops || !rt->threads)
        goto nomem;
    ck_stack_init(&rt->inj);
    uv_mutex_init(&rt->exec_mu);
    {
        unsigned int cpus = uv_available_parallelism();
        unsigned int m = (unsigned int)n / 2;
        if (m > cpus / 2)
            m = cpus / 2;
        rt->max_search = m ? m : 1;
    }
    for (int i = 0; i < n; i++) {
        int rc = weft_loop_new(&rt->loops[i]);
        if (rc < 0) {
            rt->n = i;
            weft_runtime_free(rt);
            return rc;
        }
        weft_loop_t *l = rt->loops[i];
        l->rt = rt;
        l->widx = i;
        if (opts && opts->debug)
            l->debug = true;
        l->rng = 0x9e3779b9u * (uint32_t)(i + 1);
        l->newq_buf = calloc(WEFT__NEWQ_SIZE, sizeof *l->newq_buf);
        if (!l->newq_buf) {
            rt->n = i + 1;
            weft_runtime_free(rt);
            return WEFT_ENOMEM;
        }
        ck_ring_init(&l->newq, WEFT__NEWQ_SIZE);
    }
    *out = rt;
    return 0;
nomem:
    free(rt->loops);
    free(rt->threads);
    free(rt);
    return WEFT_ENOMEM;
}

int weft_runtime_workers(const weft_runtime_t *rt) { return rt ? rt->n : WEFT_EINVAL; }

weft_loop_t *weft_runtime_loop(const weft_runtime_t *rt, int i)
{
    return rt && i >= 0 && i < rt->n ? rt->loops[i] : NULL;
}

weft_runtime_t *weft_loop_runtime(const weft_loop_t *loop) { return loop ? loop->rt : NULL; }

/* ---- running and shutting down ------------------------------------------------------- */


static void worker_thread(void *arg)
{
    weft_loop_t *l = arg;
    weft__loop_run_worker(l);
}

static void request_shutdown(weft_runtime_t *rt)
{
    if (ck_pr_fas_uint(&rt->shutting, 1) == 0)
        weft__rt_wake_all(rt);
}

static void on_main_done(weft_future_t *f, void *arg)
{
    (void)f;
    request_shutdown(arg);
}

static int start_threads(weft_runtime_t *rt, int first)
{
    for (int i = first; i < rt->n; i++) {
        uv_thread_options_t o = { .flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = 1 << 20 };
        int rc = uv_thread_create_ex(&rt->threads[i], &o, worker_thread, rt->loops[i]);
        if (rc < 0) {
            request_shutdown(rt);
            for (int j = first; j < i; j++)
                uv_thread_join(&rt->threads[j]);
            rt->nthreads = 0;
            return rc;
        }
        rt->nthreads = i + 1;
    }
    return 0;
}

static void join_threads(weft_runtime_t *rt, int first)
{
    for (int i = first; i < rt->nthreads; i++)
        uv_thread_join(&rt->threads[i]);
    rt->nthreads = 0;
}

int weft_runtime_run(weft_runtime_t *rt, weft_coro_fn main, void *arg, const weft_task_opts_t *opts,
                     weft_value_t *out)
{
    if (!rt || !main)
        return WEFT_EINVAL;
    if (weft__thread()->running)
        return WEFT_ENESTED;
    if (!ck_pr_cas_uint(&rt->state, 0, 1))
        return WEFT_ECLOSED;
    weft_loop_t *l0 = rt->loops[0];
    weft_task_opts_t to = opts ? *opts : (weft_task_opts_t){ 0 };
    to.eager_start = false;
    weft__set_run_error(NULL);
    weft_task_t *t;
    int rc = weft_loop_create_task(l0, &t, main, arg, &to);
    if (rc < 0) {
        ck_pr_store_uint(&rt->state, 2);
        return rc;
    }
    weft_future_add_done_callback(t, on_main_done, rt);
    if ((rc = start_threads(rt, 1)) < 0) {
        weft_task_cancel(t, NULL);
        weft__loop_run_worker(l0);
        weft_future_release(t);
        ck_pr_store_uint(&rt->state, 2);
        return rc;
    }
    weft__loop_run_worker(l0);
    join_threads(rt, 1);
    ck_pr_store_uint(&rt->state, 2);
    weft_value_t v = { .p = NULL };
    rc = weft_future_done(t) ? weft_future_take_result(t, &v) : WEFT_ECANCELED;
    if (rc < 0)   /* asyncio.run re-raises main's exception, text included */
        weft__set_run_error(weft_future_message(t));
    if (out)
        *out = v;
    else if (v.dtor)
        v.dtor(v.p);
    weft_future_release(t);
    return rc;
}

int weft_runtime_start(weft_runtime_t *rt)
{
    if (!rt)
        return WEFT_EINVAL;
    if (!ck_pr_cas_uint(&rt->state, 0, 1))
        return ck_pr_load_uint(&rt->state) == 1 ? WEFT_EBUSY : WEFT_ECLOSED;
    rt->background = true;
    int rc = start_threads(rt, 0);
    if (rc < 0)
        ck_pr_store_uint(&rt->state, 2);
    return rc;
}

int weft_runtime_shutdown(weft_runtime_t *rt)
{
    if (!rt)
        return WEFT_EINVAL;
    request_shutdown(rt);
    weft_loop_t *mine = weft__thread()->running;
    if (mine && mine->rt == rt)
        return 0;   /* a worker asks: the run loop completes it */
    if (ck_pr_load_uint(&rt->state) == 1 && rt->background && ck_pr_fas_uint(&rt->joining, 1) == 0)
        join_threads(rt, 0);   /* started with weft_runtime_start: we join */
    else if (ck_pr_load_uint(&rt->state) == 1 && !rt->background)
        return 0;              /* weft_runtime_run joins on its own thread */
    ck_pr_cas_uint(&rt->state, 1, 2);
    ck_pr_cas_uint(&rt->state, 0, 2);
    return 0;
}

void weft_runtime_shutdown_from_signal(weft_runtime_t *rt)
{
    if (!rt)
        return;
    ck_pr_store_uint(&rt->shutting, 1);
    for (int i = 0; i < rt->n; i++)
        uv_async_send(&rt->loops[i]->wake);   /* async-signal-safe */
}


int weft_runtime_free(weft_runtime_t *rt)
{
    if (!rt)
        return WEFT_EINVAL;
    if (ck_pr_load_uint(&rt->state) == 1)
        return WEFT_EBUSY;
    if (rt->exec)
        weft_executor_free(rt->exec);
    weft__sched_drop_queued(rt);
    for (int i = 0; i < rt->n; i++) {
        weft_loop_t *l = rt->loops[i];
        if (!l)
            continue;
        free(l->newq_buf);
        l->newq_buf = NULL;
        l->rt = NULL;
        weft_loop_free(l);
    }
    uv_mutex_destroy(&rt->exec_mu);
    free(rt->loops);
    free(rt->threads);
    free(rt);
    return 0;
}

/* The default blocking pool of the runtime, made on first use. */
weft_executor_t *weft__rt_executor(weft_runtime_t *rt)
{
    uv_mutex_lock(&rt->exec_mu);
    if (!rt->exec)
        weft_executor_new(rt->blocking_threads, &rt->exec);
    weft_executor_t *ex = rt->exec;
    uv_mutex_unlock(&rt->exec_mu);
    return ex;
}

/* ---- counters ----------------------------------------------------------------------- */

int weft_runtime_stats(const weft_runtime_t *rt, int i, weft_loop_stats_t *out)
{
    if (!rt || !out || i < 0 || i >= rt->n)
        return WEFT_EINVAL;
    const weft_loop_stats_t *s = &rt->loops[i]->stats;
    const uint64_t *src = (const uint64_t *)(const void *)s;
    uint64_t *dst = (uint64_t *)(void *)out;
    for (size_t k = 0; k < sizeof *s / sizeof(uint64_t); k++)
        dst[k] = ck_pr_load_64(&src[k]);
    return 0;
}

void weft_runtime_print_stats(const weft_runtime_t *rt, FILE *fp)
{
    if (!rt || !fp)
        return;
    fprintf(fp, "%-6s %12s %10s %10s %10s %8s %10s %9s %9s %8s %8s %10s %10s %10s %8s %8s %8s %8s\n", "loop", "steps",
            "started", "spawned", "steal_try", "steals", "stolen", "injected", "overflow", "parks", "wakeups", "inbox",
            "busy_ms", "parked_ms", "inline", "searches", "s_hits", "w_sent");
    for (int i = 0; i < rt->n; i++) {
        weft_loop_stats_t s;
        weft_runtime_stats(rt, i, &s);
        fprintf(fp,
                "%-6d %12llu %10llu %10llu %10llu %8llu %10llu %9llu %9llu %8llu %8llu %10llu %10.1f %10.1f %8llu "
                "%8llu %8llu %8llu\n",
                i, (unsigned long long)s.tasks_run, (unsigned long long)s.tasks_started,
                (unsigned long long)s.spawned, (unsigned long long)s.steal_attempts, (unsigned long long)s.steals,
                (unsigned long long)s.stolen, (unsigned long long)s.injected, (unsigned long long)s.overflows,
                (unsigned long long)s.parks, (unsigned long long)s.wakeups, (unsigned long long)s.inbox_msgs,
                (double)s.busy_ns / 1e6, (double)s.parked_ns / 1e6, (unsigned long long)s.inline_joins,
                (unsigned long long)s.searches, (unsigned long long)s.search_hits,
                (unsigned long long)s.wakeups_sent);
    }
}

int weft_loop_index(const weft_loop_t *loop) { return loop && loop->rt ? loop->widx : -1; }

int weft_current_worker(void) { return weft_loop_index(weft__thread()->running); }
