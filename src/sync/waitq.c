/* The waiter list shared by the synchronization primitives: see waitq.h. */
#include "sync/waitq.h"

#include <sched.h>

void weft__spin_lock_slow(weft__spin_t *s)
{
    for (unsigned int i = 0;; i++) {
        if (!ck_spinlock_fas_locked(&s->l) && ck_spinlock_fas_trylock(&s->l))
            return;
        if (i < 100)
            ck_pr_stall();
        else
            sched_yield();
    }
}

void weft__wakes_run(weft__wakes_t *b)
{
    weft__waiter_t *w = b->head;
    b->head = b->tail = NULL;
    while (w) {
        weft__waiter_t *next = w->wnext;
        weft__task_t *t = w->task;
        uint32_t seq = w->seq;
        int status = w->status;
        /* from here on @w may be gone (its task may resume on another thread) */
        weft__task_wake_any(t, status, seq);
        w = next;
    }
}

/* The cancel function of every wait: runs on the waiter's own loop thread
 * (weft_task_cancel, or weft__task_suspend when a cancel request was already
 * pending). A waiter not yet granted anything is unlinked and woken with
 * WEFT_ECANCELED now; a granted one keeps its grant (false: the task's
 * must_cancel makes it resume with WEFT_ECANCELED, and its own code passes the
 * grant on). */
static bool waiter_cancel(weft__task_t *t, const char *msg)
{
    weft__waiter_t *w = t->wait_obj;
    weft__spin_lock(w->lock);
    if (w->state != WEFT__WS_WAITING) {
        weft__spin_unlock(w->lock);
        return false;
    }
    weft__waitq_unlink(w->q, w);
    w->state = WEFT__WS_CANCELLED;
    weft__spin_unlock(w->lock);
    if (ck_pr_load_uint(&weft__future_loop(&t->fut)->flags) & WEFT__L_CLOSED)
        return true;   /* the loop is being closed and the task destroyed: only unlink */
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

int weft__waiter_sleep(weft__waiter_t *w, weft__task_t *t)
{
    int rc = weft__task_suspend(t, WEFT__W_SYNC, waiter_cancel, w);
    /* The record is WOKEN or CANCELLED: nobody else touches it any more. The
     * state was written under the spinlock by whoever woke us, before the
     * wake-up was posted (the post/receive pair orders it for us). */
    if (WEFT__UNLIKELY(w->state == WEFT__WS_WAITING)) {
        /* resumed by something else than a grant or our cancel function
         * (should not happen): leave the list before the record goes */
        if (weft__waiter_forget(w) == WEFT__WS_WAITING && rc >= 0)
            rc = WEFT_ECANCELED;
    }
    return rc;
}

int weft__waiter_forget(weft__waiter_t *w)
{
    weft__spin_lock(w->lock);
    int st = w->state;
    if (st == WEFT__WS_WAITING) {
        weft__waitq_unlink(w->q, w);
        w->state = WEFT__WS_CANCELLED;
    }
    weft__spin_unlock(w->lock);
    if (st == WEFT__WS_WAITING)
        weft__task_drop_wait(w->task);   /* nothing was issued for that number: the next wait takes a new one */
    return st;
}
