/**
 * @file weft/sync.h
 * @brief asyncio's synchronization primitives (Lock, Event, Condition,
 *        Semaphore, BoundedSemaphore, Barrier), safe across loops.
 *
 * Every primitive here may be shared by tasks running on different loops:
 * stealable tasks of a runtime (weft_spawn), loop-affine tasks on different
 * workers (weft_spawn_on), or tasks of standalone loops on different threads.
 * A small spinlock guards each primitive's state and a FIFO list of waiting
 * tasks; a waiter woken from another loop is resumed on its own loop (its
 * wake-up is posted there), so a task never changes thread.
 *
 * Behaviour follows CPython 3.12's asyncio.locks, with these rules:
 *
 *  - FIFO, no barging: a task that finds waiters queued (or a permit on its
 *    way to a woken waiter that has not run yet) queues behind them, as in
 *    3.12 (gh-90155).
 *  - Hand-off: releasing a Lock or a permit to a waiter gives it to that
 *    waiter at once. If the waiter is cancelled before it resumes, the Lock
 *    or permit passes to the next waiter (or is given back): a cancelled
 *    waiter never takes anything and nothing is lost.
 *  - Cancellation: every waiting call returns WEFT_ECANCELED when its task is
 *    cancelled while it waits (or has a cancel request pending when it
 *    resumes). Timeouts (weft_timeout_enter, weft_wait_for) work by cancelling
 *    the task, so every wait here also works under them.
 *  - Errors are codes: asyncio's RuntimeError ("Lock is not acquired.",
 *    "cannot wait on un-acquired lock") is WEFT_EINVALSTATE; ValueError
 *    (bad initial value, "BoundedSemaphore released too many times") is
 *    WEFT_EINVAL; BrokenBarrierError is WEFT_EBROKEN.
 *
 * Threads: calls that wait (acquire, wait, ...) must be made from a task
 * (WEFT_ENOTCORO otherwise), on any loop. Calls that never wait (release,
 * set, clear, notify, locked, reset, abort, ...) may be made from any thread,
 * including plain threads that run no loop: they take the spinlock briefly
 * and post the wake-ups to the waiters' loops.
 *
 * Objects are created with *_new and freed with *_free. Free a primitive only
 * when no task uses it any more: *_free returns WEFT_EBUSY (and frees nothing)
 * while tasks still wait on it.
 *
 * Cost: acquiring a free Lock or Semaphore and releasing one nobody waits for
 * is one uncontended spinlock round trip each, with no allocation. A task
 * that waits allocates nothing either (its waiter record lives on its stack);
 * a wake-up sent to another loop allocates one message.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock -------------------------------------------------------------------- */

/** asyncio.Lock: a mutual-exclusion lock not owned by a particular task. */
typedef struct weft_lock weft_lock_t;

/** Create an unlocked Lock. @return 0, WEFT_EINVAL (out NULL), WEFT_ENOMEM. Any thread. */
WEFT_API int weft_lock_new(weft_lock_t **out);

/** Free a Lock (NULL is ignored, returns 0). @return 0, or WEFT_EBUSY if tasks
 *  still wait on it (nothing is freed). Any thread. */
WEFT_API int weft_lock_free(weft_lock_t *lock);

/**
 * Lock.acquire(): take the lock, waiting in FIFO order if it is held or other
 * tasks already wait for it. @return 0 (the caller holds the lock),
 * WEFT_ECANCELED (the task was cancelled; the lock is not held by the caller
 * and, if it had just been handed to it, it went to the next waiter),
 * WEFT_EINVAL, WEFT_ENOTCORO. Task on any loop.
 */
WEFT_API int weft_lock_acquire(weft_lock_t *lock);

/** Take the lock only if that needs no wait (unlocked and nobody waiting).
 *  @return true if the caller now holds it. Any thread. (An extension:
 *  threading.Lock.acquire(blocking=False).) */
WEFT_API bool weft_lock_try_acquire(weft_lock_t *lock);

/**
 * Lock.release(): if tasks wait, hand the lock to the first; else unlock.
 * Any task or thread may release (asyncio locks have no owner).
 * @return 0, WEFT_EINVALSTATE if the lock is not acquired ("Lock is not
 * acquired."), WEFT_EINVAL. Any thread.
 */
WEFT_API int weft_lock_release(weft_lock_t *lock);

/** Lock.locked(). As in asyncio, a lock just released to a waiter that has not
 *  resumed yet reads as unlocked (though nobody else can take it before that
 *  waiter). Any thread (a snapshot). */
WEFT_API bool weft_lock_locked(const weft_lock_t *lock);

/* ---- Event ------------------------------------------------------------------- */

/** asyncio.Event: a flag that tasks can wait for. */
typedef struct weft_event weft_event_t;

/** Create an Event (flag clear). @return 0, WEFT_EINVAL, WEFT_ENOMEM. Any thread. */
WEFT_API int weft_event_new(weft_event_t **out);
/** Free an Event. @return 0, WEFT_EBUSY while tasks wait on it. Any thread. */
WEFT_API int weft_event_free(weft_event_t *ev);

/** Event.set(): set the flag and wake every waiting task. @return 0 or
 *  WEFT_EINVAL. Any thread (a plain thread may signal tasks this way). */
WEFT_API int weft_event_set(weft_event_t *ev);
/** Event.clear(): clear the flag. Tasks already woken by set() still return
 *  0. Any thread. */
WEFT_API void weft_event_clear(weft_event_t *ev);
/** Event.is_set(). Any thread (a snapshot). */
WEFT_API bool weft_event_is_set(const weft_event_t *ev);

/**
 * Event.wait(): return at once if the flag is set, else wait until set() is
 * called. @return 0, WEFT_ECANCELED, WEFT_EINVAL, WEFT_ENOTCORO. Task on any loop.
 */
WEFT_API int weft_event_wait(weft_event_t *ev);

/* ---- Condition --------------------------------------------------------------- */

/** asyncio.Condition: a condition variable bound to a weft_lock_t. */
typedef struct weft_cond weft_cond_t;

/**
 * Create a Condition using @p lock (asyncio.Condition(lock)), or its own new
 * Lock if @p lock is NULL. A given lock is borrowed: it must outlive the
 * Condition, and several Conditions may share it. @return 0, WEFT_EINVAL,
 * WEFT_ENOMEM. Any thread.
 */
WEFT_API int weft_cond_new(weft_lock_t *lock, weft_cond_t **out);
/** Free a Condition (and its own Lock, not a borrowed one). @return 0,
 *  WEFT_EBUSY while tasks wait on it. Any thread. */
WEFT_API int weft_cond_free(weft_cond_t *cond);

/** The Condition's Lock (borrowed). */
WEFT_API weft_lock_t *weft_cond_lock(weft_cond_t *cond);
/** Condition.acquire(): weft_lock_acquire on its Lock. */
WEFT_API int weft_cond_acquire(weft_cond_t *cond);
/** Condition.release(): weft_lock_release on its Lock. */
WEFT_API int weft_cond_release(weft_cond_t *cond);
/** Condition.locked(): weft_lock_locked on its Lock. */
WEFT_API bool weft_cond_locked(const weft_cond_t *cond);

/**
 * Condition.wait(): release the Lock, wait until notified, then take the Lock
 * again before returning - whatever the outcome, also after a cancellation
 * (the re-acquisition itself is not abandoned when cancelled again).
 * The Lock must be held on entry. @return 0 (notified; the Lock is held),
 * WEFT_ECANCELED (the Lock is held again; if a notification had reached this
 * task, it is passed on to the next waiter, so no wake-up is lost - as in
 * CPython 3.13, gh-112202), WEFT_EINVALSTATE (the Lock is not held: "cannot
 * wait on un-acquired lock"), WEFT_EINVAL, WEFT_ENOTCORO. Task on any loop.
 */
WEFT_API int weft_cond_wait(weft_cond_t *cond);

/** A predicate for weft_cond_wait_for: returns 0 while the awaited state
 *  does not hold (false), a positive value once it holds (true: the value is
 *  what wait_for returns, as asyncio returns the predicate's result), or a
 *  negative error code (the predicate "raised": wait_for returns it at once).
 *  Called with the Condition's Lock held (except a first call that returns
 *  non-zero, which needs no lock, as in asyncio). */
typedef int (*weft_cond_pred_fn)(void *arg);

/**
 * Condition.wait_for(predicate): while pred(arg) returns 0, weft_cond_wait().
 * @return the predicate's first non-zero value: positive (true; the Lock is
 * held, unless it was true at the first call) or the predicate's own error
 * code; or an error of weft_cond_wait (WEFT_ECANCELED with the Lock held;
 * WEFT_EINVALSTATE if the Lock is not held when a wait is needed).
 * WEFT_EINVAL for a NULL cond or pred. Task on any loop.
 */
WEFT_API int weft_cond_wait_for(weft_cond_t *cond, weft_cond_pred_fn pred, void *arg);

/**
 * Condition.notify(n): wake up to @p n waiting tasks (FIFO). Each returns from
 * wait() once it has the Lock again (so after the caller releases it). The
 * Lock must be held. @return the number of tasks woken (>= 0),
 * WEFT_EINVALSTATE ("cannot notify on un-acquired lock"), WEFT_EINVAL (n < 0).
 * Any thread.
 */
WEFT_API int weft_cond_notify(weft_cond_t *cond, int n);
/** Condition.notify_all(): wake every waiting task. @return as weft_cond_notify. */
WEFT_API int weft_cond_notify_all(weft_cond_t *cond);

/* ---- Semaphore, BoundedSemaphore ---------------------------------------------- */

/** asyncio.Semaphore / BoundedSemaphore: a counter of permits. */
typedef struct weft_sem weft_sem_t;

/** Semaphore(value). @return 0, WEFT_EINVAL (value < 0: "Semaphore initial
 *  value must be >= 0", or out NULL), WEFT_ENOMEM. Any thread. */
WEFT_API int weft_sem_new(int value, weft_sem_t **out);
/** BoundedSemaphore(value): as weft_sem_new, but weft_sem_release fails when
 *  it would raise the counter above @p value. */
WEFT_API int weft_bounded_sem_new(int value, weft_sem_t **out);
/** Free a semaphore. @return 0, WEFT_EBUSY while tasks wait on it. Any thread. */
WEFT_API int weft_sem_free(weft_sem_t *sem);

/**
 * Semaphore.acquire(): take a permit, waiting in FIFO order when none is
 * free, or when other tasks wait or were just given a permit and have not
 * resumed yet (CPython 3.12's strict FIFO). @return 0 (a permit taken),
 * WEFT_ECANCELED (no permit taken; one handed to this task just before the
 * cancellation goes to the next waiter), WEFT_EINVAL, WEFT_ENOTCORO. Task on
 * any loop.
 */
WEFT_API int weft_sem_acquire(weft_sem_t *sem);

/**
 * Semaphore.release(): return a permit; the first waiting task gets it.
 * @return 0, WEFT_EINVAL for a BoundedSemaphore already at its initial value
 * ("BoundedSemaphore released too many times"; nothing changes),
 * WEFT_EOVERFLOW when the counter is already INT_MAX (Python's integers do not
 * overflow, C's int does; nothing changes). Any thread.
 */
WEFT_API int weft_sem_release(weft_sem_t *sem);

/** Semaphore.locked(): true if acquire() would wait (no permit free, or tasks
 *  queued or about to resume ahead). Any thread (a snapshot). */
WEFT_API bool weft_sem_locked(const weft_sem_t *sem);
/** The counter (asyncio's _value): free permits. Any thread (a snapshot). */
WEFT_API int weft_sem_value(const weft_sem_t *sem);

/* ---- Barrier ----------------------------------------------------------------- */

/** asyncio.Barrier (3.11+). */
typedef struct weft_barrier weft_barrier_t;

/** Barrier(parties). @return 0, WEFT_EINVAL (parties < 1: "parties must be >
 *  0"), WEFT_ENOMEM. Any thread. */
WEFT_API int weft_barrier_new(int parties, weft_barrier_t **out);
/** Free a barrier. @return 0, WEFT_EBUSY while tasks are inside wait(). Any thread. */
WEFT_API int weft_barrier_free(weft_barrier_t *b);

/**
 * Barrier.wait(): wait until @c parties tasks are waiting, then release them
 * all. While the barrier drains (released tasks still leaving) or resets, new
 * callers first wait for that to finish. @return the arrival index, 0 ..
 * parties-1 (the last arrival releases the others), WEFT_EBROKEN (the barrier
 * was aborted, or reset while this task waited: BrokenBarrierError),
 * WEFT_ECANCELED (this task leaves the barrier; the others are not affected),
 * WEFT_EINVAL, WEFT_ENOTCORO. Task on any loop.
 */
WEFT_API int weft_barrier_wait(weft_barrier_t *b);

/** Barrier.reset(): back to the empty state; tasks waiting get WEFT_EBROKEN.
 *  Never waits (asyncio's is a coroutine only to take its internal
 *  condition's lock). @return 0 or WEFT_EINVAL. Any thread. */
WEFT_API int weft_barrier_reset(weft_barrier_t *b);
/** Barrier.abort(): put the barrier in the broken state: current and future
 *  wait() calls get WEFT_EBROKEN until reset(). Never waits. @return 0 or
 *  WEFT_EINVAL. Any thread. */
WEFT_API int weft_barrier_abort(weft_barrier_t *b);

/** Barrier.parties. */
WEFT_API int weft_barrier_parties(const weft_barrier_t *b);
/** Barrier.n_waiting: tasks waiting while the barrier fills (0 while it
 *  drains or resets). Any thread (a snapshot). */
WEFT_API int weft_barrier_n_waiting(const weft_barrier_t *b);
/** Barrier.broken. Any thread (a snapshot). */
WEFT_API bool weft_barrier_broken(const weft_barrier_t *b);

#ifdef __cplusplus
}
#endif
#endif
