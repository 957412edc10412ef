/**
 * @file weft/timeout.h
 * @brief asyncio.timeout() / timeout_at(): a timeout scope around a block of awaits.
 *
 * `async with asyncio.timeout(1.0): await work()` becomes an enter/exit pair;
 * exit receives the block's status and returns the status to propagate:
 *
 *     weft_timeout_t to;
 *     int rc = weft_timeout_enter(&to, 1.0);
 *     if (rc < 0) return rc;
 *     rc = work(arg, NULL);              // any awaits, at any depth
 *     rc = weft_timeout_exit(&to, rc);   // WEFT_ETIMEDOUT if *this* scope expired
 *
 * When the deadline passes, the task is cancelled (Task.cancel(), which
 * increments its cancelling() count): the block sees WEFT_ECANCELED at its
 * current or next await and should return it. weft_timeout_exit() then turns
 * that WEFT_ECANCELED into WEFT_ETIMEDOUT only if this scope's own deadline
 * fired and no other cancel request is pending (uncancel() back to the count
 * at entry): an outer scope's expiry or a cancel from outside passes through
 * as WEFT_ECANCELED, so nested scopes each convert exactly their own expiry
 * (CPython 3.12 timeouts.py). Any other status passes through unchanged.
 *
 * Deadlines are loop times in seconds (weft_loop_time()). "No deadline"
 * (asyncio's None) is WEFT_TIMEOUT_NEVER (== WEFT_NO_TIMEOUT, +infinity). A
 * negative delay, like 0, expires at once (the next iteration), as in asyncio;
 * NaN is WEFT_EINVAL. A scope without a deadline can be given one later with
 * reschedule().
 *
 * The weft_timeout_t lives in the caller's frame; its fields are private.
 * enter and exit must be called by the same task, and exit must be called
 * before the frame holding the struct ends (a timer refers to it until then).
 * Entering a scope that this task entered and has not left yet returns
 * WEFT_EINVALSTATE ("Timeout has already been entered") and changes nothing:
 * its timer stays the one armed. A scope that was left may be entered again
 * (asyncio forbids it, but C reuses stack memory: a fresh struct in a new
 * call often holds an old scope). A zero-initialised struct is "created":
 * exit/reschedule report WEFT_ENOTENTERED for it. All functions: the task's
 * loop thread.
 */
#ifndef WEFT_TIMEOUT_H
#define WEFT_TIMEOUT_H

#include "common.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/** "No deadline" (asyncio's None): the same value as WEFT_NO_TIMEOUT (+infinity). */
#define WEFT_TIMEOUT_NEVER WEFT_NO_TIMEOUT

/** Scope states (asyncio's _State). */
typedef enum weft_timeout_state {
    WEFT_TIMEOUT_CREATED = 0,  /**< "created": not entered */
    WEFT_TIMEOUT_ACTIVE,       /**< "active": entered, deadline not reached */
    WEFT_TIMEOUT_EXPIRING,     /**< "expiring": the deadline fired, the task was cancelled */
    WEFT_TIMEOUT_EXPIRED,      /**< "expired": exited after it fired */
    WEFT_TIMEOUT_FINISHED      /**< "finished": exited without firing */
} weft_timeout_state_t;

/** A timeout scope. Fields are private. */
typedef struct weft_timeout {
    uint32_t magic;            /* set while entered: with self and owner, detects a second enter */
    int state;                 /* weft_timeout_state_t */
    const struct weft_timeout *self;
    uint64_t owner;            /* id of the task that entered */
    int cancelling;            /* the task's cancelling() at entry */
    double when;               /* deadline (loop seconds), < 0 = none */
    weft_task_t *task;         /* borrowed: the task that entered */
    weft_loop_t *loop;
    weft_handle_t handle;      /* the pending timer or call_soon, if armed */
    bool armed;
} weft_timeout_t;

/**
 * Enter a timeout scope that expires @p delay seconds from now (asyncio
 * `async with timeout(delay)`); WEFT_NO_TIMEOUT: no deadline. A delay <= 0
 * expires at the next loop iteration (the block sees WEFT_ECANCELED at its
 * first await). @return 0, WEFT_EINVAL (to NULL, delay NaN), WEFT_ENOTCORO (not
 * inside a task: "Timeout should be used inside a task"), WEFT_EINVALSTATE
 * (this task entered @p to already and has not left it: "Timeout has already
 * been entered"; nothing changes), WEFT_ENOMEM.
 */
WEFT_API int weft_timeout_enter(weft_timeout_t *to, double delay);

/** Enter with an absolute deadline @p when in loop time (asyncio timeout_at;
 *  WEFT_TIMEOUT_NEVER: none); a deadline already past (negative included)
 *  expires at the next iteration. Returns as weft_timeout_enter. */
WEFT_API int weft_timeout_enter_at(weft_timeout_t *to, double when);

/**
 * Leave the scope with the block's status @p rc and return the status to
 * propagate: WEFT_ETIMEDOUT if this scope's deadline fired, rc is
 * WEFT_ECANCELED and uncancel() brought the task's cancelling() count back to
 * its entry value or below; otherwise @p rc unchanged. If the deadline fired,
 * uncancel() is called whatever @p rc is (3.12). Cancels the pending timer.
 * Returns WEFT_ENOTENTERED (and @p rc is lost) if the scope is not active.
 * Must be called by the task that entered the scope: from another task it
 * returns WEFT_EINVALSTATE, from outside any task WEFT_ENOTCORO, logs an
 * error (weft_set_log_handler) and leaves the scope active and armed (that
 * task still has to exit it).
 */
WEFT_API int weft_timeout_exit(weft_timeout_t *to, int rc);

/**
 * Timeout.reschedule(when): move the deadline to @p when (loop time;
 * WEFT_TIMEOUT_NEVER: none). A deadline at or before now fires at the next
 * iteration. @return 0, WEFT_EINVAL (to NULL, when NaN), WEFT_ENOTENTERED (not entered yet: "Timeout
 * has not been entered"), WEFT_EINVALSTATE (expiring or left: "Cannot change
 * state of ... Timeout"), WEFT_ENOMEM.
 */
WEFT_API int weft_timeout_reschedule(weft_timeout_t *to, double when);

/** Timeout.when(): the deadline in loop time, or WEFT_TIMEOUT_NEVER. */
WEFT_API double weft_timeout_when(const weft_timeout_t *to);

/** Timeout.expired(): true once the deadline fired (expiring or expired). */
WEFT_API bool weft_timeout_expired(const weft_timeout_t *to);

/** The scope's state (weft_timeout_state_t), for introspection. */
WEFT_API int weft_timeout_state(const weft_timeout_t *to);

#ifdef __cplusplus
}
#endif
#endif
