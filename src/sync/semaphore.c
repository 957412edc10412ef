/* asyncio.Semaphore and BoundedSemaphore across loops (CPython 3.12's FIFO
 * semaphore, gh-90155).
 *
 * `value` counts free permits. A release with waiters hands a permit to the
 * first one right away (value unchanged) and counts it in `pending` until
 * that waiter resumes. acquire() takes the fast path only if a permit is free,
 * nobody waits and no woken waiter is still to resume; otherwise it queues.
 * A resumed waiter then wakes as many queued tasks as there are free permits
 * (3.12's `finally` in acquire). A waiter cancelled after its grant puts the
 * permit back and passes it on the same way. */
#include "sync/waitq.h"

#include <limits.h>

struct weft_sem {
    weft__spin_t spin;
    int value;
    int bound;        /* initial value of a BoundedSemaphore, -1 otherwise */
    int pending;      /* permits handed to waiters that have not resumed */
    weft__waitq_t waiters;
};

static int sem_new(int value, int bound, weft_sem_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (value < 0)
        return WEFT_EINVAL;
    weft_sem_t *s = calloc(1, sizeof *s);
    if (!s)
        return WEFT_ENOMEM;
    weft__spin_init(&s->spin);
    s->value = value;
    s->bound = bound;
    *out = s;
    return 0;
}

int weft_sem_new(int value, weft_sem_t **out) { return sem_new(value, -1, out); }
int weft_bounded_sem_new(int value, weft_sem_t **out) { return sem_new(value, value, out); }

int weft_sem_free(weft_sem_t *s)
{
    if (!s)
        return 0;
    weft__spin_lock(&s->spin);
    bool busy = s->waiters.n != 0 || s->pending != 0;
    weft__spin_unlock(&s->spin);
    if (busy)
        return WEFT_EBUSY;
    free(s);
    return 0;
}

/* Under the spinlock: hand free permits to waiters, first come first served. */
static void sem_wake(weft_sem_t *s, weft__wakes_t *wk)
{
    weft__waiter_t *w;
    while (s->value > 0 && (w = weft__waitq_pop(&s->waiters))) {
        s->value--;
        s->pending++;
        weft__wakes_add(wk, w, 0);
    }
}

int weft_sem_acquire(weft_sem_t *s)
{
    if (!s)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    weft__spin_lock(&s->spin);
    if (WEFT__LIKELY(s->value > 0 && !s->waiters.head && !s->pending)) {
        s->value--;
        weft__spin_unlock(&s->spin);
        return 0;
    }
    weft__waiter_t w;
    int rc = weft__waiter_block(&s->spin, &s->waiters, &w, t);
    if (w.state != WEFT__WS_WOKEN)
        return rc;   /* cancelled while waiting: given nothing */
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&s->spin);
    s->pending--;
    if (rc == WEFT_ECANCELED)
        s->value++;   /* granted, then cancelled: the permit goes back */
    sem_wake(s, &wk);
    weft__spin_unlock(&s->spin);
    weft__wakes_run(&wk);
    return rc == WEFT_ECANCELED ? WEFT_ECANCELED : 0;
}

int weft_sem_release(weft_sem_t *s)
{
    if (!s)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&s->spin);
    if (s->bound >= 0 && s->value >= s->bound) {
        weft__spin_unlock(&s->spin);
        return WEFT_EINVAL;
    }
    if (s->value == INT_MAX) {   /* Python's int would grow; ours would overflow */
        weft__spin_unlock(&s->spin);
        return WEFT_EOVERFLOW;
    }
    s->value++;
    if (s->waiters.head)
        sem_wake(s, &wk);
    weft__spin_unlock(&s->spin);
    weft__wakes_run(&wk);
    return 0;
}

bool weft_sem_locked(const weft_sem_t *s)
{
    if (!s)
        return false;
    weft__spin_t *sp = WEFT__SPIN_MUT(&s->spin);
    weft__spin_lock(sp);
    bool r = s->value == 0 || s->waiters.head || s->pending;
    weft__spin_unlock(sp);
    return r;
}

int weft_sem_value(const weft_sem_t *s)
{
    if (!s)
        return WEFT_EINVAL;
    weft__spin_t *sp = WEFT__SPIN_MUT(&s->spin);
    weft__spin_lock(sp);
    int v = s->value;
    weft__spin_unlock(sp);
    return v;
}
