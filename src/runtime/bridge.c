/* Bridges from plain threads into the runtime: run_coroutine_threadsafe and
 * its thread-safe concurrent future (concurrent.futures.Future).
 *
 * The concurrent future is guarded by a libuv mutex and condition variable:
 * plain threads block on it (result with a timeout), tasks on any loop await
 * it (their wake-up is posted to their own loop). Cancelling it cancels the
 * task; the task ending cancelled cancels it. */
#include <sched.h>
#include "core/task.h"
#include "runtime/sched.h"

typedef struct cf_waiter {
    struct cf_waiter *next;
    weft__task_t *task;       /* a task awaiting, or NULL */
    uint32_t seq;
    void (*fn)(weft_cfuture_t *, void *);
    void *arg;
} cf_waiter_t;

struct weft_cfuture {
    unsigned int refs;
    uv_mutex_t mu;
    uv_cond_t cv;
    bool done;
    bool cancelled;
    unsigned int done_hint;   /* atomic copy of done, polled by a waiter before it sleeps */
    int rc;
    weft_value_t value;       /* borrowed from the task, which we keep */
    weft__task_t *task;
    cf_waiter_t *waiters;
};

#define WEFT__CF_SPIN_NS 20000u
static unsigned int cf_spinner;   /* atomic: a thread polls in weft_cfuture_result */

static void cf_release(weft_cfuture_t *cf)
{
    bool zero;
    WEFT__TSAN_RELEASE(cf);
    ck_pr_dec_uint_zero(&cf->refs, &zero);
    if (!zero)
        return;
    WEFT__TSAN_ACQUIRE(cf);
    weft_future_release(&cf->task->fut);
    uv_mutex_destroy(&cf->mu);
    uv_cond_destroy(&cf->cv);
    free(cf);
}

void weft_cfuture_release(weft_cfuture_t *cf)
{
    if (cf)
        cf_release(cf);
}

/* On the task's loop, right after it completed. */
static void cfuture_task_done(weft__task_t *t, void *arg)
{
    weft_cfuture_t *cf = arg;
    weft_value_t v = { .p = NULL };
    int rc = weft_future_result(&t->fut, &v);
    uv_mutex_lock(&cf->mu);
    cf->rc = rc;
    cf->value = v;
    cf->cancelled = rc == WEFT_ECANCELED && weft_future_cancelled(&t->fut);
    cf->done = true;
    ck_pr_store_uint(&cf->done_hint, 1);
    cf_waiter_t *w = cf->waiters;
    cf->waiters = NULL;
    uv_cond_broadcast(&cf->cv);
    uv_mutex_unlock(&cf->mu);
    while (w) {
        cf_waiter_t *n = w->next;
        if (w->task) {
            weft__task_wake_any(w->task, 0, w->seq);
            weft_future_release(&w->task->fut);
        } else {
            w->fn(cf, w->arg);
        }
        free(w);
        w = n;
    }
    t->on_done = NULL;
    cf_release(cf);   /* the task's reference */
}

int weft_run_coroutine_threadsafe(weft_runtime_t *rt, weft_loop_t *loop, weft_coro_fn fn, void *arg,
                                  const weft_task_opts_t *opts, weft_cfuture_t **out)
{
    if (out)
        *out = NULL;
    if ((!rt && !loop) || !fn || !out)
        return WEFT_EINVAL;
    if (loop && !rt)
        rt = loop->rt;
    if (loop && weft_loop_is_closed(loop))
        return WEFT_ECLOSED;
    if (rt && weft__rt_shutting(rt))
        return WEFT_ECLOSED;
    weft_cfuture_t *cf = calloc(1, sizeof *cf);
    if (!cf)
        return WEFT_ENOMEM;
    uv_mutex_init(&cf->mu);
    uv_cond_init(&cf->cv);
    cf->refs = 2;   /* the caller's and the task's */
    weft_loop_t *home = loop ? loop : weft_runtime_loop(rt, 0);
    weft__task_t *t;
    weft_task_opts_t to = opts ? *opts : (weft_task_opts_t){ 0 };
    to.eager_start = false;
    int rc = weft__task_alloc(home, fn, arg, &to, &t);
    if (rc < 0) {
        uv_mutex_destroy(&cf->mu);
        uv_cond_destroy(&cf->cv);
        free(cf);
        return rc;
    }
    t->on_done = cfuture_task_done;
    t->on_done_arg = cf;
    cf->task = t;
    weft_future_retain(&t->fut);   /* cf's reference; the other one is the loop's */
    if ((rc = weft__rt_submit(rt, loop, t)) < 0) {
        if (home->rt)
            weft__rt_task_gone(home->rt);
        t->on_done = NULL;
        weft_future_release(&t->fut);
        cf->refs = 1;
        cf_release(cf);
        return rc;
    }
    *out = cf;
    return 0;
}

int weft_cfuture_result(weft_cfuture_t *cf, double timeout, weft_value_t *out)
{
    if (!cf)
        return WEFT_EINVAL;
    if (weft__thread()->running)
        return WEFT_EWRONGLOOP;
    /* A result usually comes within microseconds: poll a little (yielding the
     * CPU) before sleeping on the condition variable, so that a quick round
     * trip costs no futex wake-up. One thread of the process polls at a time:
     * many would take the CPUs from the loops that complete their futures. */
    if (timeout != 0 && !ck_pr_load_uint(&cf->done_hint) && ck_pr_fas_uint(&cf_spinner, 1) == 0) {
        uint64_t t0 = uv_hrtime();
        for (unsigned int i = 1; !ck_pr_load_uint(&cf->done_hint); i++) {
            if ((i & 15) == 0 && uv_hrtime() - t0 >= WEFT__CF_SPIN_NS)
                break;
            sched_yield();   /* a loaded machine: the loop that will complete it may need this CPU */
        }
        ck_pr_store_uint(&cf_spinner, 0);
    }
    uv_mutex_lock(&cf->mu);
    if (!cf->done) {
        if (timeout < 0) {
            while (!cf->done)
                uv_cond_wait(&cf->cv, &cf->mu);
        } else {
            uint64_t deadline = uv_hrtime() + (uint64_t)(timeout * 1e9);
            while (!cf->done) {
                uint64_t now = uv_hrtime();
                if (now >= deadline || uv_cond_timedwait(&cf->cv, &cf->mu, deadline - now) == UV_ETIMEDOUT) {
                    if (cf->done)
                        break;
                    uv_mutex_unlock(&cf->mu);
                    return WEFT_ETIMEDOUT;
                }
            }
        }
    }
    int rc = cf->rc;
    if (rc == 0 && out)
        *out = cf->value;
    uv_mutex_unlock(&cf->mu);
    return rc;
}

bool weft_cfuture_done(weft_cfuture_t *cf)
{
    if (!cf)
        return false;
    uv_mutex_lock(&cf->mu);
    bool d = cf->done;
    uv_mutex_unlock(&cf->mu);
    return d;
}

bool weft_cfuture_cancelled(weft_cfuture_t *cf)
{
    if (!cf)
        return false;
    uv_mutex_lock(&cf->mu);
    bool c = cf->cancelled;
    uv_mutex_unlock(&cf->mu);
    return c;
}

int weft_cfuture_cancel(weft_cfuture_t *cf)
{
    if (!cf)
        return WEFT_EINVAL;
    if (weft_cfuture_done(cf))
        return 0;
    weft_task_cancel(&cf->task->fut, NULL);
    return 1;
}

int weft_cfuture_add_done_callback(weft_cfuture_t *cf, void (*fn)(weft_cfuture_t *, void *), void *arg)
{
    if (!cf || !fn)
        return WEFT_EINVAL;
    cf_waiter_t *w = calloc(1, sizeof *w);
    if (!w)
        return WEFT_ENOMEM;
    w->fn = fn;
    w->arg = arg;
    uv_mutex_lock(&cf->mu);
    if (!cf->done) {
        w->next = cf->waiters;
        cf->waiters = w;
        uv_mutex_unlock(&cf->mu);
        return 0;
    }
    uv_mutex_unlock(&cf->mu);
    free(w);
    fn(cf, arg);
    return 0;
}

static bool cf_wait_cancel(weft__task_t *t, const char *msg)
{
    weft_cfuture_t *cf = t->wait_obj;
    /* stop waiting now (asyncio: the awaiter is cancelled at once) and pass the
     * cancellation on to the task behind the concurrent future */
    uv_mutex_lock(&cf->mu);
    for (cf_waiter_t **pp = &cf->waiters; *pp; pp = &(*pp)->next) {
        if ((*pp)->task == t) {
            cf_waiter_t *w = *pp;
            *pp = w->next;
            weft_future_release(&t->fut);
            free(w);
            break;
        }
    }
    uv_mutex_unlock(&cf->mu);
    weft_cfuture_cancel(cf);
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

int weft_cfuture_await(weft_cfuture_t *cf, weft_value_t *out)
{
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (!cf)
        return WEFT_EINVAL;
    cf_waiter_t *w = calloc(1, sizeof *w);
    if (!w)
        return WEFT_ENOMEM;
    uv_mutex_lock(&cf->mu);
    if (!cf->done) {
        w->task = t;
        w->seq = weft__task_begin_wait(t);
        weft_future_retain(&t->fut);
        w->next = cf->waiters;
        cf->waiters = w;
        t->state = WEFT_TASK_SUSPENDED;   /* a completion may post our wake-up right away */
        uv_mutex_unlock(&cf->mu);
        int rc = weft__task_suspend(t, WEFT__W_OTHER, cf_wait_cancel, cf);
        if (rc < 0)
            return rc;
    } else {
        uv_mutex_unlock(&cf->mu);
        free(w);
    }
    uv_mutex_lock(&cf->mu);
    int rc = cf->rc;
    if (rc == 0 && out)
        *out = cf->value;
    uv_mutex_unlock(&cf->mu);
    if (rc < 0)
        weft__task_set_error(t, rc, weft__strdup(weft_future_message(&cf->task->fut)));
    return rc;
}
