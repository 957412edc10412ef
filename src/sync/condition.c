/* asyncio.Condition across loops.
 *
 * wait() links its waiter record *before* releasing the Lock, so a notify()
 * made by a task of another loop that takes the Lock right after cannot miss
 * it. A notification is a grant (the record is WOKEN): a waiter cancelled
 * after being notified passes one notification to the next waiter, so a
 * cancel racing with notify() loses no wake-up (CPython 3.13, gh-112202; we
 * know exactly whether we were notified, so no spurious wake-up is added). */
#include "sync/waitq.h"

struct weft_cond {
    weft__spin_t spin;
    weft_lock_t *lock;
    bool own_lock;
    weft__waitq_t waiters;
};

int weft_cond_new(weft_lock_t *lock, weft_cond_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    weft_cond_t *c = calloc(1, sizeof *c);
    if (!c)
        return WEFT_ENOMEM;
    weft__spin_init(&c->spin);
    if (!lock) {
        int rc = weft_lock_new(&lock);
        if (rc < 0) {
            free(c);
            return rc;
        }
        c->own_lock = true;
    }
    c->lock = lock;
    *out = c;
    return 0;
}

int weft_cond_free(weft_cond_t *c)
{
    if (!c)
        return 0;
    weft__spin_lock(&c->spin);
    bool busy = c->waiters.n != 0;
    weft__spin_unlock(&c->spin);
    if (busy)
        return WEFT_EBUSY;
    if (c->own_lock) {
        int rc = weft_lock_free(c->lock);
        if (rc < 0)
            return rc;
    }
    free(c);
    return 0;
}

weft_lock_t *weft_cond_lock(weft_cond_t *c) { return c ? c->lock : NULL; }
int weft_cond_acquire(weft_cond_t *c) { return c ? weft_lock_acquire(c->lock) : WEFT_EINVAL; }
int weft_cond_release(weft_cond_t *c) { return c ? weft_lock_release(c->lock) : WEFT_EINVAL; }
bool weft_cond_locked(const weft_cond_t *c) { return c && weft_lock_locked(c->lock); }

/* Wake up to @n waiters; returns how many. */
static int cond_wake(weft_cond_t *c, size_t n)
{
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&c->spin);
    size_t k = weft__wakes_take(&wk, &c->waiters, n, 0);
    weft__spin_unlock(&c->spin);
    weft__wakes_run(&wk);
    return k > INT_MAX ? INT_MAX : (int)k;
}

int weft_cond_wait(weft_cond_t *c)
{
    if (!c)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    if (!weft_lock_locked(c->lock))
        return WEFT_EINVALSTATE;
    weft__waiter_t w;
    weft__spin_lock(&c->spin);
    weft__waiter_link(&c->spin, &c->waiters, &w, t);
    weft__spin_unlock(&c->spin);
    int rc = weft_lock_release(c->lock);
    if (WEFT__UNLIKELY(rc < 0)) {
        /* someone else released it between the check and here */
        if (weft__waiter_forget(&w) == WEFT__WS_WAITING)
            return rc;
        /* already notified: take the wake-up in flight, then pass it on */
        t->state = WEFT_TASK_SUSPENDED;
        weft__waiter_sleep(&w, t);
        cond_wake(c, 1);
        return rc;
    }
    t->state = WEFT_TASK_SUSPENDED;
    rc = weft__waiter_sleep(&w, t);
    bool notified = w.state == WEFT__WS_WOKEN;
    int err = rc == WEFT_ECANCELED ? WEFT_ECANCELED : 0;
    /* take the lock again whatever happens, even when cancelled meanwhile */
    for (;;) {
        int r = weft_lock_acquire(c->lock);
        if (r == 0)
            break;
        if (r != WEFT_ECANCELED)
            return r;   /* cannot happen: we are a task and the lock exists */
        err = WEFT_ECANCELED;
    }
    if (err == WEFT_ECANCELED && notified)
        cond_wake(c, 1);   /* a notification we will not act on goes to the next waiter */
    return err;
}

int weft_cond_wait_for(weft_cond_t *c, weft_cond_pred_fn pred, void *arg)
{
    if (!c || !pred)
        return WEFT_EINVAL;
    int v;
    while ((v = pred(arg)) == 0) {
        int rc = weft_cond_wait(c);
        if (rc < 0)
            return rc;
    }
    return v;   /* the predicate's value (asyncio returns it), or its error */
}

int weft_cond_notify(weft_cond_t *c, int n)
{
    if (!c || n < 0)
        return WEFT_EINVAL;
    if (!weft_lock_locked(c->lock))
        return WEFT_EINVALSTATE;
    return n ? cond_wake(c, (size_t)n) : 0;
}

int weft_cond_notify_all(weft_cond_t *c)
{
    if (!c)
        return WEFT_EINVAL;
    if (!weft_lock_locked(c->lock))
        return WEFT_EINVALSTATE;
    return cond_wake(c, SIZE_MAX);
}
