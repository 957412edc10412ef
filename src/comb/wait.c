/* wait, wait_for, as_completed (CPython 3.12 tasks.py).
 *
 * Done callbacks may already be scheduled (not removable) when the awaiting
 * call returns, so their state lives on the heap with a reference per
 * registration: a registration's reference is dropped either by the callback
 * when it runs or by whoever removes it (remove_done_callback tells which). */
#include "comb/comb.h"

/* ---- wait ------------------------------------------------------------------ */

typedef struct waitst {
    unsigned int refs;
    size_t counter;             /* futures not yet reported done */
    int return_when;
    bool released;              /* the waiter was woken (or gave up) */
    weft__task_t *task;
    weft_handle_t timer;
} waitst_t;

static void waitst_unref_n(waitst_t *w, int k)
{
    w->refs -= (unsigned int)k;
    if (w->refs == 0)
        free(w);
}

static void waitst_unref(waitst_t *w) { waitst_unref_n(w, 1); }

static int removed(int k) { return k > 0 ? k : 0; }

static void wait_release(waitst_t *w)
{
    if (!w->released) {
        w->released = true;
        weft__task_wake(w->task, 0);
    }
}

/* _wait()._on_completion */
static void wait_on_completion(weft_future_t *f, void *arg)
{
    waitst_t *w = arg;
    w->counter--;
    int code = 0;
    if (w->counter == 0 || w->return_when == WEFT_FIRST_COMPLETED ||
        (w->return_when == WEFT_FIRST_EXCEPTION && !weft_future_cancelled(f) &&
         weft_future_exception(f, &code, NULL) == 0 && code < 0)) {
        if (weft_handle_cancel(w->timer) == 1)
            w->refs--;   /* the timer's; ours is still held */
        wait_release(w);
    }
    waitst_unref(w);
}

/* _release_waiter on timeout */
static int wait_on_timeout(void *arg)
{
    waitst_t *w = arg;
    wait_release(w);
    waitst_unref(w);
    return 0;
}

int weft_wait(weft_future_t *const *fs, size_t n, double timeout, int return_when, weft_future_t **done,
              size_t *ndone, weft_future_t **pending, size_t *npending)
{
    if (ndone)
        *ndone = 0;
    if (npending)
        *npending = 0;
    weft__task_t *t = weft__comb_current();
    if (isnan(timeout))
        return t ? WEFT_EINVAL : WEFT_ENOTCORO;
    if (!t)
        return WEFT_ENOTCORO;
    if (!fs || n == 0)   /* "Set of Tasks/Futures is empty." */
        return WEFT_EINVAL;
    if (return_when != WEFT_ALL_COMPLETED && return_when != WEFT_FIRST_COMPLETED &&
        return_when != WEFT_FIRST_EXCEPTION)
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return WEFT_EINVAL;
    /* fs = set(fs): distinct futures, kept in argument order */
    weft_future_t **uniq = malloc(n * sizeof *uniq);
    if (!uniq)
        return WEFT_ENOMEM;
    size_t nu = 0;
    weft__ptrset_t set = { NULL, 0 };
    int rc = weft__ptrset_init(&set, n);
    if (rc < 0) {
        free(uniq);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (weft__ptrset_add(&set, fs[i]))
            uniq[nu++] = weft_future_retain(fs[i]);
    weft__ptrset_free(&set);

    waitst_t *w = calloc(1, sizeof *w);
    if (!w) {
        rc = WEFT_ENOMEM;
        goto out;
    }
    w->refs = 1;
    w->counter = nu;
    w->return_when = return_when;
    w->task = t;
    if (!weft__no_timeout(timeout)) {
        if ((rc = weft_call_later(t->fut.loop, timeout, wait_on_timeout, w, &w->timer)) < 0)
            goto out_w;
        w->refs++;
    }
    size_t reg = 0;
    for (; reg < nu; reg++) {
        if ((rc = weft_future_add_done_callback(uniq[reg], wait_on_completion, w)) < 0)
            break;
        w->refs++;
    }
    if (rc == 0) {
        /* await waiter: even if every future is done, the callbacks run first */
        rc = weft__comb_wait(t, WEFT__W_OTHER, w);
        w->released = true;
    }
    /* finally: drop the timer and the callbacks not run yet */
    int drop = weft_handle_cancel(w->timer) == 1;
    for (size_t i = 0; i < reg; i++)
        drop += removed(weft_future_remove_done_callback(uniq[i], wait_on_completion, w));
    w->refs -= (unsigned int)drop;   /* the owner's reference is still held */
    if (rc == 0) {
        size_t nd = 0, np = 0;
        for (size_t i = 0; i < nu; i++) {
            if (weft_future_done(uniq[i])) {
                if (done)
                    done[nd] = uniq[i];
                nd++;
            } else {
                if (pending)
                    pending[np] = uniq[i];
                np++;
            }
        }
        if (ndone)
            *ndone = nd;
        if (npending)
            *npending = np;
    }
out_w:
    waitst_unref(w);
out:
    for (size_t i = 0; i < nu; i++)
        weft_future_release(uniq[i]);
    free(uniq);
    return rc;
}

/* ---- _cancel_and_wait ---------------------------------------------------------- */

typedef struct cwait {
    unsigned int refs;
    bool released;
    weft__task_t *task;
} cwait_t;

static void cwait_unref_n(cwait_t *c, int k)
{
    c->refs -= (unsigned int)k;
    if (c->refs == 0)
        free(c);
}

static void cwait_unref(cwait_t *c) { cwait_unref_n(c, 1); }

static void cwait_done(weft_future_t *f, void *arg)
{
    (void)f;
    cwait_t *c = arg;
    if (!c->released) {
        c->released = true;
        weft__task_wake(c->task, 0);
    }
    cwait_unref(c);
}

/* Cancel @f and wait until it is done. We do not wait on @f itself so that
 * this wait stays cancellable: a cancel of the caller returns WEFT_ECANCELED
 * at once (f goes on finishing its cancellation). */
static int cancel_and_wait(weft__task_t *t, weft_future_t *f)
{
    cwait_t *c = malloc(sizeof *c);
    if (!c)
        return WEFT_ENOMEM;
    c->refs = 2;
    c->released = false;
    c->task = t;
    int rc = weft_future_add_done_callback(f, cwait_done, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    weft_future_cancel(f, NULL);
    rc = weft__comb_wait(t, WEFT__W_OTHER, c);
    c->released = true;
    cwait_unref_n(c, 1 + removed(weft_future_remove_done_callback(f, cwait_done, c)));
    return rc;
}

/* ---- wait_for -------------------------------------------------------------------- */

int weft_wait_for(weft_future_t *f, double timeout, weft_value_t *out)
{
    weft__task_t *t = weft__comb_current();
    if (!t)
        return WEFT_ENOTCORO;
    if (!f || isnan(timeout))
        return WEFT_EINVAL;
    if (weft__no_timeout(timeout))   /* async with timeout(None): return await fut */
        return weft__comb_await(f, out);
    if (timeout <= 0) {
        if (weft_future_done(f))
            return weft__comb_outcome(t, f, out);
        weft_future_retain(f);
        int rc = cancel_and_wait(t, f);
        if (rc == 0) {
            rc = weft__comb_outcome(t, f, out);
            if (rc == WEFT_ECANCELED)
                rc = weft__comb_error(t, WEFT_ETIMEDOUT, NULL);   /* TimeoutError from the CancelledError */
        }
        weft_future_release(f);
        return rc;
    }
    weft_timeout_t to;
    int rc = weft_timeout_enter(&to, timeout);
    if (rc < 0)
        return rc;
    rc = weft__comb_await(f, out);
    return weft_timeout_exit(&to, rc);
}

int weft_wait_for_coro(weft_coro_fn fn, void *arg, double timeout, weft_value_t *out)
{
    weft__task_t *t = weft__comb_current();
    if (!t)
        return WEFT_ENOTCORO;
    if (!fn || isnan(timeout))
        return WEFT_EINVAL;
    weft_value_t v = { .p = NULL };
    int rc;
    if (timeout <= 0) {
        /* fut = ensure_future(coro): a task, which normally has not started yet */
        weft_task_t *task;
        if ((rc = weft__comb_create_task(t->fut.loop, &task, fn, arg, NULL)) < 0)
            return rc;
        if (!weft_future_done(task))
            rc = cancel_and_wait(t, task);
        if (rc == 0) {
            rc = weft_future_take_result(task, &v);
            if (rc == WEFT_ECANCELED)
                rc = weft__comb_error(t, WEFT_ETIMEDOUT, NULL);   /* TimeoutError from the CancelledError */
            else if (rc < 0)
                weft__comb_error(t, rc, weft_future_message(task));
        }
        weft_task_release(task);
    } else if (weft__no_timeout(timeout)) {
        rc = fn(arg, &v);   /* awaited directly in this task (WF1) */
    } else {
        weft_timeout_t to;
        if ((rc = weft_timeout_enter(&to, timeout)) < 0)
            return rc;
        rc = fn(arg, &v);
        rc = weft_timeout_exit(&to, rc);
    }
    if (rc < 0) {
        weft__value_dispose(&v);
        return rc;
    }
    if (out)
        *out = v;
    else
        weft__value_dispose(&v);
    return rc;
}

/* ---- as_completed ------------------------------------------------------------- */

/* The argument of future i's done callback: finds its slot in O(1). */
typedef struct acslot {
    struct weft_as_completed *it;
    size_t i;
} acslot_t;

struct weft_as_completed {
    unsigned int refs;
    bool closed;
    weft_loop_t *loop;
    size_t n;                   /* distinct futures */
    size_t ntodo;               /* still watched */
    size_t remaining;           /* next() calls left */
    weft_future_t **fs;         /* [n] one reference each */
    uint8_t *todo;              /* [n] still watched (callback registered) */
    uint8_t *created;           /* [n] task made by us */
    acslot_t *slots;            /* [n] callback arguments */
    weft_future_t **q;          /* [n] FIFO of completions; NULL = a timeout dummy */
    size_t qhead, qlen;
    weft__task_t *waiter;
    weft_handle_t timer;
    bool timer_armed;
};

static void ac_unref_n(weft_as_completed_t *it, int k)
{
    it->refs -= (unsigned int)k;
    if (it->refs == 0)
        free(it);
}

static void ac_unref(weft_as_completed_t *it) { ac_unref_n(it, 1); }

static void ac_push(weft_as_completed_t *it, weft_future_t *f)
{
    it->q[(it->qhead + it->qlen) % it->n] = f;
    it->qlen++;
    if (it->waiter) {
        weft__task_t *w = it->waiter;
        it->waiter = NULL;
        weft__task_wake(w, 0);
    }
}

static void ac_on_completion(weft_future_t *f, void *arg)
{
    acslot_t *slot = arg;
    weft_as_completed_t *it = slot->it;
    int drop = 1;   /* this registration's */
    if (!it->closed && it->ntodo) {   /* else _on_timeout() was here first */
        if (it->todo[slot->i]) {
            it->todo[slot->i] = 0;
            it->ntodo--;
            ac_push(it, f);
        }
        if (!it->ntodo && it->timer_armed) {
            it->timer_armed = false;
            drop += weft_handle_cancel(it->timer) == 1;
        }
    }
    ac_unref_n(it, drop);
}

static int ac_on_timeout(void *arg)
{
    weft_as_completed_t *it = arg;
    it->timer_armed = false;
    if (!it->closed) {
        for (size_t i = 0; i < it->n; i++) {
            if (!it->todo[i])
                continue;
            it->todo[i] = 0;
            /* our own reference (the timer's) is still held: no free here */
            it->refs -= (unsigned int)removed(weft_future_remove_done_callback(it->fs[i], ac_on_completion, &it->slots[i]));
            ac_push(it, NULL);   /* a dummy: that next() returns TIMEDOUT */
        }
        it->ntodo = 0;
    }
    ac_unref(it);
    return 0;
}

static int ac_init(weft_as_completed_t **out, weft_future_t *const *fs, const weft_awaitable_t *aws, size_t n,
                   double timeout)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (isnan(timeout))
        return WEFT_EINVAL;
    weft_loop_t *loop = weft__thread()->running;
    if (!loop)
        return WEFT_ENOLOOP;
    if (n && !fs && !aws)
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (fs ? !fs[i] : (!aws[i].future == !aws[i].fn))
            return WEFT_EINVAL;
    size_t cap = n ? n : 1;
    weft_as_completed_t *it = calloc(1, sizeof *it + cap * (sizeof(acslot_t) + 2 * sizeof(weft_future_t *) + 2));
    if (!it)
        return WEFT_ENOMEM;
    it->refs = 1;
    it->loop = loop;
    it->slots = (acslot_t *)(void *)(it + 1);
    it->fs = (weft_future_t **)(void *)(it->slots + cap);
    it->q = it->fs + cap;
    it->todo = (uint8_t *)(it->q + cap);
    it->created = it->todo + cap;
    weft__ptrset_t set = { NULL, 0 };
    int rc = weft__ptrset_init(&set, n);
    if (rc < 0) {
        free(it);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        weft_future_t *f = fs ? fs[i] : aws[i].future;
        if (f) {
            if (weft__ptrset_add(&set, f))
                it->fs[it->n++] = weft_future_retain(f);
            continue;
        }
        weft_task_t *t;
        weft_task_opts_t to = { .name = aws[i].name };
        if ((rc = weft__comb_create_task(loop, &t, aws[i].fn, aws[i].arg, &to)) == 0) {
            it->created[it->n] = 1;
            it->fs[it->n++] = t;
        }
    }
    weft__ptrset_free(&set);
    for (size_t i = 0; i < it->n && rc == 0; i++) {
        it->slots[i] = (acslot_t){ it, i };
        if ((rc = weft_future_add_done_callback(it->fs[i], ac_on_completion, &it->slots[i])) == 0) {
            it->refs++;
            it->todo[i] = 1;
            it->ntodo++;
        }
    }
    if (rc == 0 && it->n && !weft__no_timeout(timeout)) {
        if ((rc = weft_call_later(loop, timeout, ac_on_timeout, it, &it->timer)) == 0) {
            it->refs++;
            it->timer_armed = true;
        }
    }
    it->remaining = it->n;
    if (rc < 0) {
        for (size_t i = 0; i < it->n; i++)
            if (it->created[i])
                weft_future_cancel(it->fs[i], NULL);
        weft_as_completed_free(it);
        return rc;
    }
    *out = it;
    return 0;
}

int weft_as_completed_init(weft_as_completed_t **it, weft_future_t *const *fs, size_t n, double timeout)
{
    if (n && !fs)
        return WEFT_EINVAL;
    return ac_init(it, fs, NULL, n, timeout);
}

int weft_as_completed_init_aw(weft_as_completed_t **it, const weft_awaitable_t *aws, size_t n, double timeout)
{
    if (n && !aws)
        return WEFT_EINVAL;
    return ac_init(it, NULL, aws, n, timeout);
}

size_t weft_as_completed_remaining(const weft_as_completed_t *it) { return it ? it->remaining : 0; }

int weft_as_completed_next(weft_as_completed_t *it, weft_value_t *out, weft_future_t **which)
{
    if (which)
        *which = NULL;
    if (!it || it->closed)
        return WEFT_EINVAL;
    weft__task_t *t = weft__comb_current();
    if (!t)
        return WEFT_ENOTCORO;
    if (!it->remaining)
        return WEFT_ESTOPASYNCITER;   /* exhausted: the end of an async for */
    while (!it->qlen) {   /* f = await done.get() */
        it->waiter = t;
        int rc = weft__comb_wait(t, WEFT__W_OTHER, it);
        it->waiter = NULL;
        if (rc < 0)
            return rc;
    }
    weft_future_t *f = it->q[it->qhead];
    it->qhead = (it->qhead + 1) % it->n;
    it->qlen--;
    it->remaining--;
    if (!f)   /* dummy value from _on_timeout() */
        return weft__comb_error(t, WEFT_ETIMEDOUT, NULL);
    if (which)
        *which = f;
    return weft__comb_outcome(t, f, out);
}

void weft_as_completed_free(weft_as_completed_t *it)
{
    if (!it || it->closed)
        return;
    it->closed = true;
    int drop = 1;   /* the owner's */
    if (it->timer_armed) {
        it->timer_armed = false;
        drop += weft_handle_cancel(it->timer) == 1;
    }
    for (size_t i = 0; i < it->n; i++) {
        if (it->todo[i]) {
            it->todo[i] = 0;
            drop += removed(weft_future_remove_done_callback(it->fs[i], ac_on_completion, &it->slots[i]));
        }
        weft_future_release(it->fs[i]);
    }
    ac_unref_n(it, drop);
}
