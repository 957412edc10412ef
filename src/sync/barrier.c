/* asyncio.Barrier across loops (3.11+ semantics: filling, draining,
 * resetting, broken).
 *
 * CPython builds Barrier on a Condition; here one spinlock guards the state
 * and two waiter lists replace its notify_all(): `fill` holds tasks waiting
 * for the barrier to fill, `block` tasks that arrived while it drained or
 * reset. A woken task re-checks the state when it runs, as CPython's
 * wait_for() predicates do. */
#include "sync/waitq.h"

enum { B_FILLING = 0, B_DRAINING, B_RESETTING, B_BROKEN };

struct weft_barrier {
    weft__spin_t spin;
    int parties;
    int state;
    int count;          /* tasks inside wait() past the blocking phase */
    weft__waitq_t fill;
    weft__waitq_t block;
};

int weft_barrier_new(int parties, weft_barrier_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (parties < 1)
        return WEFT_EINVAL;
    weft_barrier_t *b = calloc(1, sizeof *b);
    if (!b)
        return WEFT_ENOMEM;
    weft__spin_init(&b->spin);
    b->parties = parties;
    b->state = B_FILLING;
    *out = b;
    return 0;
}

int weft_barrier_free(weft_barrier_t *b)
{
    if (!b)
        return 0;
    weft__spin_lock(&b->spin);
    bool busy = b->count != 0 || b->fill.n != 0 || b->block.n != 0;
    weft__spin_unlock(&b->spin);
    if (busy)
        return WEFT_EBUSY;
    free(b);
    return 0;
}

/* Under the spinlock: CPython's notify_all(). */
static void wake_all(weft_barrier_t *b, weft__wakes_t *wk)
{
    weft__wakes_take(wk, &b->fill, SIZE_MAX, 0);
    weft__wakes_take(wk, &b->block, SIZE_MAX, 0);
}

/* Under the spinlock: a task leaves wait() (CPython's _exit). */
static void barrier_exit(weft_barrier_t *b, weft__wakes_t *wk)
{
    b->count--;
    if (b->count == 0) {
        if (b->state == B_RESETTING || b->state == B_DRAINING)
            b->state = B_FILLING;
        weft__wakes_take(wk, &b->block, SIZE_MAX, 0);   /* the ones held back by draining */
    }
}

int weft_barrier_wait(weft_barrier_t *b)
{
    if (!b)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&b->spin);
    /* _block(): wait while the barrier drains or resets */
    while (b->state == B_DRAINING || b->state == B_RESETTING) {
        weft__waiter_t w;
        int rc = weft__waiter_block(&b->spin, &b->block, &w, t);
        if (rc == WEFT_ECANCELED)
            return rc;   /* not counted in yet: nothing to undo */
        weft__spin_lock(&b->spin);
    }
    if (b->state == B_BROKEN) {
        weft__spin_unlock(&b->spin);
        return WEFT_EBROKEN;
    }
    int index = b->count++;
    int rc;
    if (index + 1 == b->parties) {
        /* _release(): the last arrival lets everyone through */
        b->state = B_DRAINING;
        weft__wakes_take(&wk, &b->fill, SIZE_MAX, 0);
        rc = index;
    } else {
        /* _wait(): until the state leaves filling (release, reset, abort) */
        weft__waiter_t w;
        int r = weft__waiter_block(&b->spin, &b->fill, &w, t);
        weft__spin_lock(&b->spin);
        if (r == WEFT_ECANCELED)
            rc = WEFT_ECANCELED;
        else if (b->state == B_BROKEN || b->state == B_RESETTING)
            rc = WEFT_EBROKEN;
        else
            rc = index;
    }
    barrier_exit(b, &wk);
    weft__spin_unlock(&b->spin);
    weft__wakes_run(&wk);
    return rc;
}

int weft_barrier_reset(weft_barrier_t *b)
{
    if (!b)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&b->spin);
    if (b->count > 0)
        b->state = B_RESETTING;   /* the tasks inside leave with WEFT_EBROKEN */
    else
        b->state = B_FILLING;
    wake_all(b, &wk);
    weft__spin_unlock(&b->spin);
    weft__wakes_run(&wk);
    return 0;
}

int weft_barrier_abort(weft_barrier_t *b)
{
    if (!b)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&b->spin);
    b->state = B_BROKEN;
    wake_all(b, &wk);
    weft__spin_unlock(&b->spin);
    weft__wakes_run(&wk);
    return 0;
}

int weft_barrier_parties(const weft_barrier_t *b) { return b ? b->parties : WEFT_EINVAL; }

int weft_barrier_n_waiting(const weft_barrier_t *b)
{
    if (!b)
        return WEFT_EINVAL;
    weft__spin_t *s = WEFT__SPIN_MUT(&b->spin);
    weft__spin_lock(s);
    int n = b->state == B_FILLING ? b->count : 0;
    weft__spin_unlock(s);
    return n;
}

bool weft_barrier_broken(const weft_barrier_t *b)
{
    if (!b)
        return false;
    weft__spin_t *s = WEFT__SPIN_MUT(&b->spin);
    weft__spin_lock(s);
    bool r = b->state == B_BROKEN;
    weft__spin_unlock(s);
    return r;
}
