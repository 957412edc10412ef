/* asyncio.Lock across loops.
 *
 * State under the spinlock: `locked` (held, or on its way to a woken waiter)
 * and `handoff` (released to a waiter that has not resumed yet). A release
 * with waiters hands the lock to the first one; that waiter clears `handoff`
 * when it resumes, or - if it was cancelled meanwhile - passes the lock on.
 * asyncio's observable state is kept: during a hand-off locked() is false
 * and release() fails, yet nobody can take the lock ahead of the woken
 * waiter (3.12's fast path requires no waiter that is not cancelled). */
#include "sync/waitq.h"

struct weft_lock {
    weft__spin_t spin;
    bool locked;
    bool handoff;
    weft__waitq_t waiters;
};

int weft_lock_new(weft_lock_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    weft_lock_t *l = calloc(1, sizeof *l);
    if (!(*out = l))
        return WEFT_ENOMEM;
    weft__spin_init(&l->spin);
    return 0;
}

int weft_lock_free(weft_lock_t *l)
{
    if (!l)
        return 0;
    weft__spin_lock(&l->spin);
    bool busy = l->waiters.n != 0;
    weft__spin_unlock(&l->spin);
    if (busy)
        return WEFT_EBUSY;
    free(l);
    return 0;
}

/* Under the spinlock, by whoever holds the lock: give it to the first waiter,
 * or unlock. */
static void lock_pass(weft_lock_t *l, weft__wakes_t *wk)
{
    weft__waiter_t *w = weft__waitq_pop(&l->waiters);
    if (w) {
        l->handoff = true;   /* `locked` stays set: it is the waiter's now */
        weft__wakes_add(wk, w, 0);
    } else {
        l->locked = false;
    }
}

int weft_lock_acquire(weft_lock_t *l)
{
    if (!l)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    weft__spin_lock(&l->spin);
    if (WEFT__LIKELY(!l->locked && !l->waiters.head)) {
        l->locked = true;
        weft__spin_unlock(&l->spin);
        return 0;
    }
    weft__waiter_t w;
    int rc = weft__waiter_block(&l->spin, &l->waiters, &w, t);
    if (w.state != WEFT__WS_WOKEN)
        return rc;   /* cancelled while waiting: given nothing */
    /* the lock was handed to us */
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&l->spin);
    l->handoff = false;
    if (rc == WEFT_ECANCELED)   /* cancelled after the hand-off: pass it on */
        lock_pass(l, &wk);
    weft__spin_unlock(&l->spin);
    weft__wakes_run(&wk);
    return rc == WEFT_ECANCELED ? WEFT_ECANCELED : 0;
}

bool weft_lock_try_acquire(weft_lock_t *l)
{
    if (!l)
        return false;
    bool ok = false;
    weft__spin_lock(&l->spin);
    if (!l->locked && !l->waiters.head)
        ok = l->locked = true;
    weft__spin_unlock(&l->spin);
    return ok;
}

int weft_lock_release(weft_lock_t *l)
{
    if (!l)
        return WEFT_EINVAL;
    weft__spin_lock(&l->spin);
    if (!l->locked || l->handoff) {
        weft__spin_unlock(&l->spin);
        return WEFT_EINVALSTATE;
    }
    if (WEFT__LIKELY(!l->waiters.head)) {
        l->locked = false;
        weft__spin_unlock(&l->spin);
        return 0;
    }
    weft__wakes_t wk = WEFT__WAKES_INIT;
    lock_pass(l, &wk);
    weft__spin_unlock(&l->spin);
    weft__wakes_run(&wk);
    return 0;
}

bool weft_lock_locked(const weft_lock_t *l)
{
    if (!l)
        return false;
    weft__spin_t *s = WEFT__SPIN_MUT(&l->spin);
    weft__spin_lock(s);
    bool r = l->locked && !l->handoff;
    weft__spin_unlock(s);
    return r;
}
