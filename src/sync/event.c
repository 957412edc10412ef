/* asyncio.Event across loops: a flag and a FIFO list of waiters, all woken
 * (in the order they started waiting) by set(). */
#include "sync/waitq.h"

struct weft_event {
    weft__spin_t spin;
    bool flag;
    weft__waitq_t waiters;
};

int weft_event_new(weft_event_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    weft_event_t *e = calloc(1, sizeof *e);
    if (!(*out = e))
        return WEFT_ENOMEM;
    weft__spin_init(&e->spin);
    return 0;
}

int weft_event_free(weft_event_t *e)
{
    if (!e)
        return 0;
    weft__spin_lock(&e->spin);
    bool busy = e->waiters.n != 0;
    weft__spin_unlock(&e->spin);
    if (busy)
        return WEFT_EBUSY;
    free(e);
    return 0;
}

int weft_event_set(weft_event_t *e)
{
    if (!e)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&e->spin);
    if (!e->flag) {
        e->flag = true;
        weft__wakes_take(&wk, &e->waiters, SIZE_MAX, 0);
    }
    weft__spin_unlock(&e->spin);
    weft__wakes_run(&wk);
    return 0;
}

void weft_event_clear(weft_event_t *e)
{
    if (!e)
        return;
    weft__spin_lock(&e->spin);
    e->flag = false;
    weft__spin_unlock(&e->spin);
}

bool weft_event_is_set(const weft_event_t *e)
{
    if (!e)
        return false;
    weft__spin_t *s = WEFT__SPIN_MUT(&e->spin);
    weft__spin_lock(s);
    bool r = e->flag;
    weft__spin_unlock(s);
    return r;
}

int weft_event_wait(weft_event_t *e)
{
    if (!e)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    weft__spin_lock(&e->spin);
    if (e->flag) {
        weft__spin_unlock(&e->spin);
        return 0;
    }
    weft__waiter_t w;
    int rc = weft__waiter_block(&e->spin, &e->waiters, &w, t);
    /* woken by set() then cancelled before resuming: asyncio raises
     * CancelledError too; nothing was taken from anyone */
    return rc == WEFT_ECANCELED ? WEFT_ECANCELED : 0;
}
