/* Bridges from plain threads into the runtime: run_coroutine_threadsafe and
 * its thread-safe concurrent future (concurrent.futures.Future).
 *
 * A concurrent future has no mutex or condition variable of its own: a small
 * spinlock guards its state while it is pending, and `done` (set once, with
 * release order) lets readers look at the outcome without the lock. Plain
 * threads that block on it park on their own thread's parker (a mutex and a
 * condition variable made once per thread) after a short spin; tasks on any
 * loop await it (their wake-up is posted to their own loop). A future made by
 * run_coroutine_threadsafe carries the message that starts its task, so a
 * submission allocates the task and the future and nothing else; both are
 * recycled through small process-wide free lists. Cancelling it cancels the
 * task; the task ending cancelled cancels it. */
#include <sched.h>
#include "base/freelist.h"
#include "core/task.h"
#include "runtime/cfuture.h"
#include "runtime/sched.h"

#include <math.h>

/* A plain thread's parker: made on its first blocking wait, kept for the
 * thread's life (it owns no memory; the thread's storage goes with it). */
typedef struct parker {
    uv_mutex_t mu;
    uv_cond_t cv;
    bool inited;
} parker_t;

static _Thread_local parker_t tl_parker;

static parker_t *parker_get(void)
{
    parker_t *p = &tl_parker;
    if (!p->inited) {
        uv_mutex_init(&p->mu);
        uv_cond_init(&p->cv);
        p->inited = true;
    }
    return p;
}

typedef struct cf_waiter {
    struct cf_waiter *next;
    weft__task_t *task;       /* a task awaiting (heap record), or NULL */
    uint32_t seq;
    parker_t *parker;         /* a plain thread blocked in result/exception (record on its stack) */
    bool woken;               /* plain thread: set under parker->mu once the completer is done with the record */
    void (*fn)(weft_cfuture_t *, void *);   /* a done callback (heap record) */
    void *arg;
} cf_waiter_t;

struct weft_cfuture {
    unsigned int refs;
    ck_spinlock_fas_t lock;   /* guards everything below while pending */
    unsigned int done;        /* atomic: set once, after the outcome (release order) */
    bool cancelled;
    int rc;
    weft_value_t value;       /* borrowed from the task, which we keep; else owned (dtor) */
    char *msg;                /* the exception's or cancellation's message, owned */
    weft__task_t *task;       /* run_coroutine_threadsafe's task (a reference) while pending, and
                               * after if the result is borrowed from it; else NULL */
    bool from_task;           /* made by run_coroutine_threadsafe */
    bool (*cancel_fn)(weft_cfuture_t *, void *);   /* job-backed: unqueue the job */
    void *cancel_arg;
    cf_waiter_t *waiters;
    weft__msg_t start;        /* run_coroutine_threadsafe: the message that starts the task */
    weft_cfuture_t *next_free;
};

static inline void cf_lock(weft_cfuture_t *cf)
{
    ck_spinlock_fas_lock(&cf->lock);
    WEFT__TSAN_ACQUIRE(&cf->lock);
}

static inline void cf_unlock(weft_cfuture_t *cf)
{
    WEFT__TSAN_RELEASE(&cf->lock);
    ck_spinlock_fas_unlock(&cf->lock);
}

/* Done yet? After true, the outcome fields may be read without the lock. */
static inline bool cf_is_done(weft_cfuture_t *cf)
{
    if (!ck_pr_load_uint(&cf->done))
        return false;
    ck_pr_fence_acquire();
    WEFT__TSAN_ACQUIRE(&cf->done);
    return true;
}

/* ---- recycling: concurrent futures kept for reuse ------------------------------ */

/* A burst of submissions from a plain thread keeps many futures alive at
 * once; freeing them all and allocating them again makes the allocator
 * return the memory to the system and fault it back in, page by page. Freed
 * futures wait here instead (at most WEFT__CF_KEEP). */
#define WEFT__CF_KEEP 131072u
static weft__freelist_t cf_pool = WEFT__FREELIST_INIT(WEFT__CF_KEEP, weft_cfuture_t, next_free);

static weft_cfuture_t *cf_mem_alloc(void)
{
    weft_cfuture_t *cf = weft__freelist_pop(&cf_pool, NULL);
    if (!cf)
        cf = malloc(sizeof *cf);
    if (cf)
        memset(cf, 0, sizeof *cf);
    return cf;
}

static void cf_mem_free(weft_cfuture_t *cf)
{
#if !defined(WEFT_ASAN)   /* ASan: free at once, so a use after release is reported */
    if (weft__freelist_push(&cf_pool, cf))
        return;
#endif
    free(cf);
}

void weft__cfuture_pool_trim(size_t keep) { weft__freelist_trim(&cf_pool, keep); }

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
    if (cf->task)
        weft_future_release(&cf->task->fut);
    else if (cf->rc == 0 && cf->value.dtor)
        cf->value.dtor(cf->value.p);
    free(cf->msg);
    cf_mem_free(cf);
}

void weft_cfuture_release(weft_cfuture_t *cf)
{
    if (cf)
        cf_release(cf);
}

weft_cfuture_t *weft__cfuture_new(void)
{
    weft_cfuture_t *cf = cf_mem_alloc();
    if (!cf)
        return NULL;
    ck_spinlock_fas_init(&cf->lock);
    cf->refs = 1;
    return cf;
}

void weft__cfuture_set_cancel(weft_cfuture_t *cf, bool (*fn)(weft_cfuture_t *, void *), void *arg)
{
    cf->cancel_fn = fn;
    cf->cancel_arg = arg;
}

bool weft__cfuture_complete(weft_cfuture_t *cf, int rc, weft_value_t v, char *msg, bool cancelled)
{
    cf_lock(cf);
    if (cf->done) {
        cf_unlock(cf);
        return false;
    }
    cf->rc = rc;
    cf->value = rc == 0 ? v : (weft_value_t){ .p = NULL };
    cf->msg = msg;
    cf->cancelled = cancelled;
    WEFT__TSAN_RELEASE(&cf->done);
    ck_pr_fence_release();
    ck_pr_store_uint(&cf->done, 1);
    cf_waiter_t *w = cf->waiters;
    cf->waiters = NULL;
    cf_unlock(cf);
    /* registration order (the list is kept newest first) */
    cf_waiter_t *rev = NULL;
    while (w) {
        cf_waiter_t *n = w->next;
        w->next = rev;
        rev = w;
        w = n;
    }
    for (w = rev; w;) {
        cf_waiter_t *n = w->next;   /* read before a plain thread's record may vanish */
        if (w->parker) {
            /* the thread returns once `woken` is set (it then may leave and
             * drop its record): set it last, under its parker's mutex */
            parker_t *p = w->parker;
            uv_mutex_lock(&p->mu);
            w->woken = true;
            uv_cond_signal(&p->cv);
            uv_mutex_unlock(&p->mu);
        } else if (w->task) {
            weft__task_wake_any(w->task, 0, w->seq);
            weft_future_release(&w->task->fut);
            free(w);
        } else {
            w->fn(cf, w->arg);
            free(w);
        }
        w = n;
    }
    return true;
}

int weft__cfuture_take(weft_cfuture_t *cf, weft_value_t *out, char **msg)
{
    cf_lock(cf);
    int rc = cf->rc;
    *out = rc == 0 ? cf->value : (weft_value_t){ .p = NULL };
    cf->value.dtor = NULL;
    *msg = cf->msg;
    cf->msg = NULL;
    cf_unlock(cf);
    return rc;
}

/* On the task's loop, right after it completed. */
static void cfuture_task_done(weft__task_t *t, void *arg)
{
    weft_cfuture_t *cf = arg;
    weft_value_t v = { .p = NULL };
    int rc = weft_future_result(&t->fut, &v);
    weft__cfuture_complete(cf, rc, v, rc < 0 ? weft__strdup(weft_future_message(&t->fut)) : NULL,
                           rc == WEFT_ECANCELED && weft_future_cancelled(&t->fut));
    t->on_done = NULL;
    if (rc < 0 || !v.dtor) {
        /* nothing borrowed from the task: let it go now, while its memory
         * is still warm for the next submission, rather than when the last
         * holder of the future lets go */
        cf_lock(cf);
        cf->task = NULL;
        cf_unlock(cf);
        weft_future_release(&t->fut);
    }
    cf_release(cf);   /* the task's reference */
}

/* On the target loop: start the submitted task (the scheduler's start message,
 * carried inside the concurrent future; the task holds the future). */
static void cf_msg_start(weft_loop_t *l, weft__msg_t *m)
{
    weft__sched_start_posted(l, m->a);
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
    weft_cfuture_t *cf = weft__cfuture_new();
    if (!cf)
        return WEFT_ENOMEM;
    cf->refs = 2;   /* the caller's and the task's */
    weft_loop_t *home = loop ? loop : weft_runtime_loop(rt, 0);
    weft__task_t *t;
    weft_task_opts_t to = opts ? *opts : (weft_task_opts_t){ 0 };
    to.eager_start = false;
    int rc = weft__task_alloc(home, fn, arg, &to, &t);
    if (rc < 0) {
        cf_mem_free(cf);
        return rc;
    }
    t->on_done = cfuture_task_done;
    t->on_done_arg = cf;
    cf->task = t;
    cf->from_task = true;
    weft_future_retain(&t->fut);   /* cf's reference; the other one is the loop's */
    if (loop && weft__thread()->running != loop) {
        /* the common case, a plain thread: post the start message cf carries
         * (no allocation); otherwise the scheduler queues it */
        if (rt && !weft__rt_admit(rt)) {
            rc = WEFT_ECLOSED;
        } else {
            cf->start.run = cf_msg_start;
            cf->start.a = t;
            rc = weft__loop_post(loop, &cf->start);
        }
    } else {
        rc = weft__rt_submit(rt, loop, t);
    }
    if (rc < 0) {
        t->arg_dtor = NULL;   /* not submitted: the caller still owns arg */
        if (home->rt)
            weft__rt_task_gone(home->rt, weft__thread()->running);
        t->on_done = NULL;
        weft_future_release(&t->fut);
        cf->refs = 1;
        cf_release(cf);
        return rc;
    }
    *out = cf;
    return 0;
}

/* Wait (plain thread) until @cf is done, at most @timeout seconds: 0 once it
 * is done (its outcome is then readable without the lock), WEFT_ETIMEDOUT or
 * an argument error. */
static int cf_wait(weft_cfuture_t *cf, double timeout)
{
    if (!cf || isnan(timeout))
        return WEFT_EINVAL;
    if (weft__thread()->running)
        return WEFT_EWRONGLOOP;
    if (cf_is_done(cf))
        return 0;
    /* A result usually comes within microseconds: poll a little (yielding the
     * CPU) before sleeping on the parker, so that a quick round trip costs no
     * futex wake-up. One thread of the process polls at a time: many would
     * take the CPUs from the loops that complete their futures. */
    if (timeout > 0 && ck_pr_fas_uint(&cf_spinner, 1) == 0) {
        uint64_t t0 = uv_hrtime();
        for (unsigned int i = 1; !ck_pr_load_uint(&cf->done); i++) {
            if ((i & 15) == 0 && uv_hrtime() - t0 >= WEFT__CF_SPIN_NS)
                break;
            sched_yield();   /* a loaded machine: the loop that will complete it may need this CPU */
        }
        ck_pr_store_uint(&cf_spinner, 0);
        if (cf_is_done(cf))
            return 0;
    }
    /* WEFT_NO_TIMEOUT, INFINITY, 1e300...: a duration too large for 64-bit
     * nanoseconds saturates to "forever"; a timeout <= 0 only looks */
    bool forever = weft__secs_to_ns(timeout) == WEFT__NS_FOREVER;
    uint64_t deadline = forever ? 0 : weft__deadline_ns(uv_hrtime(), timeout);
    if (!forever && uv_hrtime() >= deadline)
        return cf_is_done(cf) ? 0 : WEFT_ETIMEDOUT;
    parker_t *p = parker_get();
    cf_waiter_t w = { .parker = p };
    cf_lock(cf);
    if (cf->done) {
        cf_unlock(cf);
        return 0;   /* done: its outcome is published by the lock */
    }
    w.next = cf->waiters;
    cf->waiters = &w;
    cf_unlock(cf);
    uv_mutex_lock(&p->mu);
    while (!w.woken) {
        if (forever) {
            uv_cond_wait(&p->cv, &p->mu);
            continue;
        }
        uint64_t now = uv_hrtime();
        if (now >= deadline)
            break;
        uv_cond_timedwait(&p->cv, &p->mu, deadline - now);   /* re-checked above */
    }
    bool woken = w.woken;
    uv_mutex_unlock(&p->mu);
    if (woken)
        return 0;   /* the completer set `done` before it woke us */
    /* timed out: leave the list, unless the completer took it already (then
     * it is about to set `woken`, and our record must live until it has) */
    bool found = false;
    cf_lock(cf);
    for (cf_waiter_t **pp = &cf->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == &w) {
            *pp = w.next;
            found = true;
            break;
        }
    }
    cf_unlock(cf);
    if (found)
        return WEFT_ETIMEDOUT;
    uv_mutex_lock(&p->mu);
    while (!w.woken)
        uv_cond_wait(&p->cv, &p->mu);
    uv_mutex_unlock(&p->mu);
    return 0;
}

int weft_cfuture_result(weft_cfuture_t *cf, double timeout, weft_value_t *out)
{
    int rc = cf_wait(cf, timeout);
    if (rc < 0)
        return rc;
    rc = cf->rc;
    if (rc == 0 && out) {
        *out = cf->value;
        out->dtor = NULL;   /* borrowed */
    }
    return rc;
}

int weft_cfuture_exception(weft_cfuture_t *cf, double timeout, int *code, const char **msg)
{
    if (code)
        *code = 0;
    if (msg)
        *msg = NULL;
    int rc = cf_wait(cf, timeout);
    if (rc < 0)
        return rc;
    if (cf->cancelled) {
        rc = WEFT_ECANCELED;
    } else {
        if (code)
            *code = cf->rc < 0 ? cf->rc : 0;
        if (msg)
            *msg = cf->rc < 0 ? cf->msg : NULL;
    }
    return rc;
}

const char *weft_cfuture_message(weft_cfuture_t *cf)
{
    if (!cf || !cf_is_done(cf))
        return NULL;
    return cf->msg;
}

int weft_cfuture_new(weft_cfuture_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = weft__cfuture_new();
    return *out ? 0 : WEFT_ENOMEM;
}

int weft_cfuture_set_result(weft_cfuture_t *cf, weft_value_t v)
{
    if (!cf)
        return WEFT_EINVAL;
    if (cf->from_task)
        return WEFT_ENOTTASK;   /* a task's outcome is the task's */
    return weft__cfuture_complete(cf, 0, v, NULL, false) ? 0 : WEFT_EINVALSTATE;
}

int weft_cfuture_set_exception(weft_cfuture_t *cf, int code, const char *fmt, ...)
{
    if (!cf || code >= 0)
        return WEFT_EINVAL;
    if (cf->from_task)
        return WEFT_ENOTTASK;
    char *msg = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        msg = weft__vformat(fmt, ap);
        va_end(ap);
    }
    if (!weft__cfuture_complete(cf, code, (weft_value_t){ .p = NULL }, msg, false)) {
        free(msg);
        return WEFT_EINVALSTATE;
    }
    return 0;
}

bool weft_cfuture_done(weft_cfuture_t *cf)
{
    return cf && cf_is_done(cf);
}

bool weft_cfuture_cancelled(weft_cfuture_t *cf)
{
    return cf && cf_is_done(cf) && cf->cancelled;
}

int weft_cfuture_cancel(weft_cfuture_t *cf)
{
    if (!cf)
        return WEFT_EINVAL;
    if (cf_is_done(cf))
        return 0;
    if (cf->from_task) {
        /* the task may finish (and cf let it go) meanwhile: hold it */
        cf_lock(cf);
        weft__task_t *t = cf->done ? NULL : cf->task;
        if (t)
            weft_future_retain(&t->fut);
        cf_unlock(cf);
        if (!t)
            return 0;
        weft_task_cancel(&t->fut, NULL);
        weft_future_release(&t->fut);
        return 1;
    }
    if (cf->cancel_fn) {
        cf_lock(cf);
        bool unqueued = !cf->done && cf->cancel_fn(cf, cf->cancel_arg);
        cf_unlock(cf);
        if (!unqueued)
            return 0;   /* done, or the job is running: concurrent.futures cannot stop it either */
    }
    return weft__cfuture_complete(cf, WEFT_ECANCELED, (weft_value_t){ .p = NULL }, NULL, true) ? 1 : 0;
}

weft_cfuture_t *weft_cfuture_retain(weft_cfuture_t *cf)
{
    if (cf)
        ck_pr_inc_uint(&cf->refs);
    return cf;
}

int weft_cfuture_add_done_callback(weft_cfuture_t *cf, void (*fn)(weft_cfuture_t *, void *), void *arg)
{
    if (!cf || !fn)
        return WEFT_EINVAL;
    if (!cf_is_done(cf)) {
        cf_waiter_t *w = calloc(1, sizeof *w);
        if (!w)
            return WEFT_ENOMEM;
        w->fn = fn;
        w->arg = arg;
        cf_lock(cf);
        if (!cf->done) {
            w->next = cf->waiters;
            cf->waiters = w;
            cf_unlock(cf);
            return 0;
        }
        cf_unlock(cf);
        free(w);
    }
    fn(cf, arg);
    return 0;
}

static bool cf_wait_cancel(weft__task_t *t, const char *msg)
{
    weft_cfuture_t *cf = t->wait_obj;
    /* stop waiting now (asyncio: the awaiter is cancelled at once) and pass the
     * cancellation on to the task behind the concurrent future */
    cf_waiter_t *gone = NULL;
    cf_lock(cf);
    for (cf_waiter_t **pp = &cf->waiters; *pp; pp = &(*pp)->next) {
        if ((*pp)->task == t) {
            gone = *pp;
            *pp = gone->next;
            break;
        }
    }
    cf_unlock(cf);
    if (gone) {
        weft_future_release(&t->fut);
        free(gone);
    }
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
    if (!cf_is_done(cf)) {
        cf_waiter_t *w = calloc(1, sizeof *w);
        if (!w)
            return WEFT_ENOMEM;
        cf_lock(cf);
        if (!cf->done) {
            w->task = t;
            w->seq = weft__task_begin_wait(t);
            weft_future_retain(&t->fut);
            w->next = cf->waiters;
            cf->waiters = w;
            t->state = WEFT_TASK_SUSPENDED;   /* a completion may post our wake-up right away */
            cf_unlock(cf);
            int rc = weft__task_suspend(t, WEFT__W_OTHER, cf_wait_cancel, cf);
            if (rc < 0)
                return rc;
        } else {
            cf_unlock(cf);
            free(w);
        }
    }
    if (!cf_is_done(cf))
        return WEFT_EINVALSTATE;   /* not reached: woken only by the completion */
    t = weft__thread()->task;
    int rc = cf->rc;
    if (rc == 0 && out) {
        *out = cf->value;
        out->dtor = NULL;   /* borrowed */
    }
    if (rc < 0)
        weft__task_set_error(t, rc, weft__strdup(cf->msg));
    return rc;
}

/* ---- wrap_future: a loop future chained to a concurrent future ----------------- */

typedef struct wrap {
    unsigned int refs;        /* the concurrent future's callback and the loop future's callback */
    weft_future_t *fut;
    weft_cfuture_t *cf;
    bool move;                /* the result moves into fut (cf is ours alone) */
} wrap_t;

static void wrap_release(wrap_t *w)
{
    bool zero;
    WEFT__TSAN_RELEASE(w);
    ck_pr_dec_uint_zero(&w->refs, &zero);
    if (!zero)
        return;
    WEFT__TSAN_ACQUIRE(w);
    weft_future_release(w->fut);
    cf_release(w->cf);
    free(w);
}

/* On the loop: copy the concurrent future's outcome into the loop future
 * (asyncio's _copy_future_state). */
static void wrap_msg(weft_loop_t *l, weft__msg_t *m)
{
    wrap_t *w = m->a;
    free(m);
    if (!(ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED) && !weft_future_done(w->fut)) {
        weft_cfuture_t *cf = w->cf;
        if (weft_cfuture_cancelled(cf)) {
            weft_future_cancel(w->fut, weft_cfuture_message(cf));
        } else if (w->move) {
            weft_value_t v;
            char *msg;
            int rc = weft__cfuture_take(cf, &v, &msg);
            if (rc < 0)
                weft_future_set_exception(w->fut, rc, msg ? "%s" : NULL, msg);
            else if (weft_future_set_result(w->fut, v) < 0 && v.dtor)
                v.dtor(v.p);
            free(msg);
        } else {
            int rc = cf->rc;   /* done: read without the lock */
            weft_value_t v = cf->value;
            const char *msg = cf->msg;
            v.dtor = NULL;   /* borrowed from cf */
            if (rc < 0)
                weft_future_set_exception(w->fut, rc, msg ? "%s" : NULL, msg);
            else
                weft_future_set_result(w->fut, v);
        }
    }
    wrap_release(w);
}

/* On whichever thread completed cf. */
static void wrap_cf_done(weft_cfuture_t *cf, void *arg)
{
    (void)cf;
    wrap_t *w = arg;
    weft__msg_t *m = weft__msg_new(wrap_msg);
    if (m) {
        m->a = w;
        if (weft__loop_post(weft__future_loop(w->fut), m) == 0)
            return;
        free(m);
    }
    wrap_release(w);   /* the loop is closed: nobody can see the outcome */
}

/* On the loop: the loop future is done; if it was cancelled, so is cf. */
static void wrap_fut_done(weft_future_t *f, void *arg)
{
    wrap_t *w = arg;
    if (weft_future_cancelled(f))
        weft_cfuture_cancel(w->cf);
    wrap_release(w);
}

static int wrap(weft_cfuture_t *cf, bool move, weft_future_t **out)
{
    weft_future_t *fut;
    int rc = weft_future_new(NULL, &fut);
    if (rc < 0)
        return rc;
    wrap_t *w = calloc(1, sizeof *w);
    if (!w) {
        weft_future_release(fut);
        return WEFT_ENOMEM;
    }
    w->refs = 2;
    w->fut = weft_future_retain(fut);
    w->cf = weft_cfuture_retain(cf);
    w->move = move;
    if ((rc = weft_future_add_done_callback(fut, wrap_fut_done, w)) < 0) {
        weft_future_release(w->fut);
        cf_release(w->cf);
        free(w);
        weft_future_release(fut);
        return rc;
    }
    if ((rc = weft_cfuture_add_done_callback(cf, wrap_cf_done, w)) < 0) {
        weft_future_cancel(fut, NULL);   /* its callback drops one reference */
        wrap_release(w);
        weft_future_release(fut);
        return rc;
    }
    *out = fut;
    return 0;
}

int weft_wrap_future(weft_cfuture_t *cf, weft_future_t **out)
{
    if (out)
        *out = NULL;
    if (!cf || !out)
        return WEFT_EINVAL;
    return wrap(cf, false, out);
}

int weft_run_in_executor_future(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_future_t **out)
{
    if (out)
        *out = NULL;
    if (!fn || !out)
        return WEFT_EINVAL;
    if (!weft__thread()->running)
        return WEFT_ENOLOOP;
    weft_cfuture_t *cf;
    int rc = weft_executor_submit(ex, fn, arg, &cf);
    if (rc < 0)
        return rc;
    rc = wrap(cf, true, out);
    if (rc < 0)
        weft_cfuture_cancel(cf);
    cf_release(cf);
    return rc;
}
