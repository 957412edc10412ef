/* The FIFO waiter list shared by the synchronization primitives and queues
 * (lock.c, event.c, condition.c, semaphore.c, barrier.c, queue.c).
 *
 * Each primitive has one spinlock (weft__spin_t) guarding its state and its
 * waiter lists. A waiting task links a weft__waiter_t that lives on its own
 * stack, then suspends (kind WEFT__W_SYNC, cancel function
 * weft__waiter_cancel). Whoever wakes it - on any thread - does so under the
 * spinlock: it unlinks the record, marks it WOKEN with a status (and, for a
 * queue getter, the item) and adds it to a local batch (weft__wakes_t); after
 * releasing the spinlock it sends the wake-ups (weft__wakes_run), which reach
 * the task on its own loop. A WOKEN record is a grant: the waiter owns what it
 * was given even if a cancellation arrives before it resumes (its cancel
 * function then declines, and the task resumes with WEFT_ECANCELED from
 * must_cancel; the primitive's code then passes the grant on). A record still
 * WAITING when the cancellation comes is unlinked and the task woken with
 * WEFT_ECANCELED at once: it was given nothing.
 *
 * Lock order: a primitive's spinlock is never held while taking another one,
 * nor while calling user code or waking tasks. */
#ifndef WEFT_SRC_WAITQ_H
#define WEFT_SRC_WAITQ_H

#include "core/task.h"
#include "weft/sync.h"

/* ---- spinlock: ck's fas lock, with the hand-off stated for TSan --------------- */
typedef struct weft__spin {
    ck_spinlock_fas_t l;
} weft__spin_t;

static inline void weft__spin_init(weft__spin_t *s) { ck_spinlock_fas_init(&s->l); }

/* Contended path: spin briefly, then give the CPU away (the holder may have
 * been preempted: on an oversubscribed machine pure spinning would burn a
 * whole time slice). */
void weft__spin_lock_slow(weft__spin_t *s);

static inline void weft__spin_lock(weft__spin_t *s)
{
    if (WEFT__UNLIKELY(!ck_spinlock_fas_trylock(&s->l)))
        weft__spin_lock_slow(s);
    WEFT__TSAN_ACQUIRE(s);
}

static inline void weft__spin_unlock(weft__spin_t *s)
{
    WEFT__TSAN_RELEASE(s);
    ck_spinlock_fas_unlock(&s->l);
}

/* Lock a primitive through a const pointer (the read-only accessors). */
#define WEFT__SPIN_MUT(p) ((weft__spin_t *)(uintptr_t)(p))

/* ---- waiters ---------------------------------------------------------------- */
enum {
    WEFT__WS_WAITING = 1,   /* linked in its list */
    WEFT__WS_WOKEN,         /* unlinked by a waker: a wake-up (and a grant) is on its way */
    WEFT__WS_CANCELLED      /* unlinked by its cancellation before any grant */
};

typedef struct weft__waitq weft__waitq_t;

typedef struct weft__waiter {
    struct weft__waiter *prev, *next;   /* links while WAITING */
    struct weft__waiter *wnext;         /* wake batch link once WOKEN */
    weft__task_t *task;
    weft__spin_t *lock;                 /* the primitive's spinlock */
    weft__waitq_t *q;                   /* the list it is linked in */
    uint32_t seq;                       /* the task's wait number */
    uint8_t state;                      /* WEFT__WS_* (under the spinlock) */
    int status;                         /* set with WOKEN: what the waiter is told */
    void *item;                         /* queue hand-off: the item given to a getter */
    uint64_t iseq;                      /* its insertion number (priority queues) */
} weft__waiter_t;

struct weft__waitq {
    weft__waiter_t *head, *tail;
    size_t n;
};

static inline void weft__waitq_push(weft__waitq_t *q, weft__waiter_t *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
}

static inline void weft__waitq_unlink(weft__waitq_t *q, weft__waiter_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->prev = w->next = NULL;
    q->n--;
}

static inline weft__waiter_t *weft__waitq_pop(weft__waitq_t *q)
{
    weft__waiter_t *w = q->head;
    if (w)
        weft__waitq_unlink(q, w);
    return w;
}

/* A batch of wake-ups collected under a spinlock, sent after it is released,
 * in the order they were granted. */
typedef struct weft__wakes {
    weft__waiter_t *head, *tail;
} weft__wakes_t;

#define WEFT__WAKES_INIT { NULL, NULL }

/* Under the spinlock: @w (already unlinked) is granted @status. */
static inline void weft__wakes_add(weft__wakes_t *b, weft__waiter_t *w, int status)
{
    w->state = WEFT__WS_WOKEN;
    w->status = status;
    w->wnext = NULL;
    if (b->tail)
        b->tail->wnext = w;
    else
        b->head = w;
    b->tail = w;
}

/* Under the spinlock: pop and grant up to @n waiters of @q. Returns how many. */
static inline size_t weft__wakes_take(weft__wakes_t *b, weft__waitq_t *q, size_t n, int status)
{
    size_t k = 0;
    weft__waiter_t *w;
    while (k < n && (w = weft__waitq_pop(q))) {
        weft__wakes_add(b, w, status);
        k++;
    }
    return k;
}

/* After releasing the spinlock: send the wake-ups. A record may vanish as soon
 * as its task resumes (on another thread), so everything is read first. */
void weft__wakes_run(weft__wakes_t *b);

/* The current task, or NULL outside a task. */
static inline weft__task_t *weft__sync_task(void) { return weft__thread()->task; }

/* With @w->lock held: link @w (for task @t) at the tail of @q. */
static inline void weft__waiter_link(weft__spin_t *lk, weft__waitq_t *q, weft__waiter_t *w, weft__task_t *t)
{
    w->task = t;
    w->lock = lk;
    w->q = q;
    w->seq = weft__task_begin_wait(t);
    w->state = WEFT__WS_WAITING;
    w->status = 0;
    w->item = NULL;
    w->iseq = 0;
    w->wnext = NULL;
    weft__waitq_push(q, w);
}

/* Suspend the current task @t on its linked record @w (spinlock not held).
 * Returns the wake status, or WEFT_ECANCELED (cancelled before a grant:
 * state CANCELLED; or after one: state WOKEN). */
int weft__waiter_sleep(weft__waiter_t *w, weft__task_t *t);

/* With the spinlock held: link @w at the tail of @q, release the lock and
 * suspend. Returns as weft__waiter_sleep. */
static inline int weft__waiter_block(weft__spin_t *lk, weft__waitq_t *q, weft__waiter_t *w, weft__task_t *t)
{
    weft__waiter_link(lk, q, w, t);
    t->state = WEFT_TASK_SUSPENDED;   /* as weft_await: switchable before anyone can wake it */
    weft__spin_unlock(lk);
    return weft__waiter_sleep(w, t);
}

/* Unlink a record that may still be WAITING (error paths); returns its state. */
int weft__waiter_forget(weft__waiter_t *w);

/* Last resort when a grant cannot be given back for lack of memory: the
 * caller keeps what it was given (returns success) and the cancellation is
 * delivered at the task's next suspension instead. */
static inline void weft__task_recancel(weft__task_t *t) { t->must_cancel = 1; }

#endif
