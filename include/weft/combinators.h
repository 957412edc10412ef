/**
 * @file weft/combinators.h
 * @brief asyncio's combinators: gather, wait, wait_for, as_completed, shield,
 *        and the eager task factory.
 *
 * Semantics follow CPython 3.12's Lib/asyncio/tasks.py, cancellation corner
 * cases included; the few deliberate differences are listed with each
 * function. Every function here must be called on the thread of the running
 * loop. The "awaiting calls" (weft_gather*, weft_wait*, weft_as_completed_next,
 * weft_await_shielded) must be called from inside a task (at any depth of
 * nested calls) and return WEFT_ENOTCORO otherwise.
 *
 * Timeouts are in seconds (doubles, like asyncio). "No timeout" (asyncio's
 * None) is its own value, WEFT_NO_TIMEOUT (+infinity). A timeout <= 0,
 * negative included, expires at once, as in asyncio. NaN is WEFT_EINVAL.
 *
 * Results handed out by these calls are @em borrowed (their dtor is cleared)
 * when they come from a future or task you passed in: they stay valid while
 * that future lives. A result that comes from a task weft created for you
 * (a coroutine passed as a weft_awaitable_t, or weft_wait_for_coro) is
 * @em moved to you: if its dtor is set, you own it.
 */
#ifndef WEFT_COMBINATORS_H
#define WEFT_COMBINATORS_H

#include "common.h"
#include "future.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * One argument of gather / as_completed: asyncio's "awaitable", which is
 * either a future or task, or a coroutine that weft wraps in a new task
 * (ensure_future). Exactly one of @c future and @c fn is set.
 *
 *   weft_awaitable_t aws[] = { WEFT_AW(task1), WEFT_AW_CORO(fetch, &req) };
 *
 * A task made for a coroutine runs on the running loop, is created with the
 * loop's eager task factory if one is set, is named @c name (NULL: default
 * "Task-N") and is owned by the combinator that made it: you never see it,
 * only its outcome.
 */
typedef struct weft_awaitable {
    weft_future_t *future;   /**< a future or task (borrowed; the combinator takes its own reference) */
    weft_coro_fn fn;         /**< else: a coroutine function, run as a new task with @c arg */
    void *arg;               /**< argument of @c fn */
    const char *name;        /**< name of that task (copied), or NULL */
} weft_awaitable_t;

/** A future or task as an awaitable. */
#define WEFT_AW(f) ((weft_awaitable_t){ .future = (f), .fn = NULL, .arg = NULL, .name = NULL })
/** A coroutine call fn(arg) as an awaitable (wrapped in a task). */
#define WEFT_AW_CORO(f, a) ((weft_awaitable_t){ .future = NULL, .fn = (f), .arg = (void *)(a), .name = NULL })

/**
 * asyncio.ensure_future(aw): *out receives a future for @p aw with one new
 * reference (release it): the future or task itself when @p aw holds one
 * (asyncio returns it unchanged), else a new task running aw->fn(aw->arg) on
 * the running loop, named aw->name, through the loop's eager task factory if
 * set. @return 0, WEFT_EINVAL (aw or out NULL, neither or both of future and
 * fn set: asyncio's TypeError "An asyncio.Future, a coroutine or an awaitable
 * is required"), WEFT_ENOLOOP (a coroutine and no running loop), or
 * weft_loop_create_task's errors. Loop thread.
 */
WEFT_API int weft_ensure_future(const weft_awaitable_t *aw, weft_future_t **out);

/** asyncio.isfuture(obj): true if @p aw is a future or a task (false for a
 *  coroutine awaitable, and for NULL). Any thread. */
WEFT_API bool weft_isfuture(const weft_awaitable_t *aw);

/* ---- gather -------------------------------------------------------------------- */

/** Options of gather (NULL for the defaults). */
typedef struct weft_gather_opts {
    /** asyncio's return_exceptions: collect errors in place like results instead
     *  of returning the first one at once. */
    bool return_exceptions;
} weft_gather_opts_t;

/**
 * asyncio.gather(*fs) awaited: run/await every future of @p fs (n of them)
 * and wait for all.
 *
 * - On success returns 0, with the result of fs[i] in results[i] (borrowed;
 *   @p results may be NULL) and codes[i] = 0 (@p codes may be NULL).
 * - Without return_exceptions, the first child that fails (or is cancelled by
 *   someone else) makes this call return its error code at once (its message
 *   through weft_error_message()); the other children are NOT cancelled and
 *   keep running. results/codes are left untouched then.
 * - With return_exceptions, returns 0 once every child is done, with
 *   codes[i] = 0 or the child's error code (WEFT_ECANCELED for a cancelled
 *   child) and results[i] zeroed for failed children.
 * - If the calling task is cancelled while waiting, every child not yet done
 *   is cancelled (same message) and the call returns WEFT_ECANCELED with that
 *   message once the cancellation has gone through: without
 *   return_exceptions, as soon as the first child ends cancelled (the others
 *   may still be finishing, as in asyncio); with it, once every child is
 *   done (bpo-32684: a cancelled gather reports CANCELLED either way). If
 *   no child accepted the cancellation (all were done already, their done
 *   callbacks not yet run), the cancel is delivered when the task resumes:
 *   WEFT_ECANCELED and the results are dropped, as in asyncio.
 * - n == 0 completes at once (returns 0) without suspending; so does a call
 *   whose children are all done already.
 * - The same future passed twice is one child whose result appears twice.
 *
 * Errors of the call itself: WEFT_ENOTCORO (not in a task), WEFT_EINVAL
 * (fs NULL with n > 0, a NULL entry), WEFT_ENOMEM, WEFT_ECLOSED.
 */
WEFT_API int weft_gather(weft_future_t *const *fs, size_t n, weft_value_t *results, int *codes,
                         const weft_gather_opts_t *opts);

/**
 * weft_gather() over awaitables: coroutine entries are wrapped as tasks (in
 * argument order; an eager task may even finish during this call). Results of
 * those tasks are moved to the caller (owned when their dtor is set). If the
 * call fails before waiting (WEFT_ENOMEM creating a task), the tasks already
 * created are cancelled. Returns as weft_gather().
 */
WEFT_API int weft_gather_aw(const weft_awaitable_t *aws, size_t n, weft_value_t *results, int *codes,
                            const weft_gather_opts_t *opts);

/**
 * The result of a gathering future (see weft_gather_future), owned by that
 * future: valid until it is released. values[i] / codes[i] / messages[i] are
 * child i's result (borrowed from your futures; owned by the list for tasks
 * the gather created), code (0, an error, or WEFT_ECANCELED) and error
 * message (NULL if none).
 */
typedef struct weft_gather_list {
    size_t n;
    weft_value_t *values;
    const int *codes;
    const char *const *messages;
} weft_gather_list_t;

/**
 * asyncio.gather(...) as a future, not awaited (the _GatheringFuture): *outer
 * receives a new future (one reference, release it with weft_future_release)
 * on the running loop. When every child succeeded (or with return_exceptions,
 * when every child is done), its result's @c p is a `const weft_gather_list_t *`
 * owned by the future. Without return_exceptions, the first error is set on
 * it as its exception at once (children keep running). A child cancelled by
 * someone else sets WEFT_ECANCELED as its @em exception: awaiting it returns
 * WEFT_ECANCELED but weft_future_cancelled() is false (asyncio G5). An empty
 * gather returns a future already done with an empty list.
 *
 * Cancel it with weft_gather_cancel() for asyncio's semantics (G6, G7). See
 * weft_gather_cancel for what weft_future_cancel() does on it. Do not
 * set_result / set_exception it yourself.
 * @return 0, WEFT_EINVAL, WEFT_ENOLOOP (no running loop), WEFT_ENOMEM,
 *  WEFT_ECLOSED. Loop thread (need not be inside a task).
 */
WEFT_API int weft_gather_future(const weft_awaitable_t *aws, size_t n, const weft_gather_opts_t *opts,
                                weft_future_t **outer);

/**
 * _GatheringFuture.cancel(msg): if @p outer is done, returns 0 and cancels
 * nothing (G7). Otherwise cancels every child (each gets @p msg) and returns
 * 1 if any child accepted; the outer is NOT done yet: once all children
 * finished it completes with the exception WEFT_ECANCELED (the message of the
 * last child), whatever return_exceptions says (G6). Returns 0 if no child
 * accepted. WEFT_EINVAL if @p outer is pending and not a gathering future.
 *
 * weft_future_cancel() on a gathering future (which is also what
 * weft_await() does when the awaiting task is cancelled) is this same
 * _GatheringFuture.cancel: the children are cancelled and the outer completes
 * once they finished.
 */
WEFT_API int weft_gather_cancel(weft_future_t *outer, const char *msg);

/* ---- wait ---------------------------------------------------------------------- */

/** asyncio's return_when values. */
typedef enum weft_return_when {
    WEFT_ALL_COMPLETED = 0,   /**< when every future is done */
    WEFT_FIRST_COMPLETED = 1, /**< when any future is done (a cancellation counts) */
    WEFT_FIRST_EXCEPTION = 2  /**< when any future ends with an exception (a
                                   cancellation does not count), else when all are done */
} weft_return_when_t;

/**
 * asyncio.wait(fs, timeout, return_when): wait until the condition holds or
 * the timeout passes (WEFT_NO_TIMEOUT: none; <= 0: the callbacks of futures
 * already done run, then it returns), then report which futures are done.
 * Nothing is cancelled, on timeout or otherwise, and no TIMEDOUT error is
 * returned: futures still pending are reported as pending. Duplicates count
 * once. As in asyncio the call suspends at least once, even if all futures
 * are done already.
 *
 * @p done / @p pending (each may be NULL) receive the futures (borrowed, in
 * argument order, duplicates removed) and need room for @p n entries;
 * @p ndone / @p npending (may be NULL) receive the counts.
 * @return 0, WEFT_EINVAL (n == 0: "Set of Tasks/Futures is empty", a NULL
 * entry, a bad return_when, a NaN timeout), WEFT_ECANCELED (the calling task was cancelled:
 * the futures are not), WEFT_ENOTCORO, WEFT_ENOMEM.
 */
WEFT_API int weft_wait(weft_future_t *const *fs, size_t n, double timeout, int return_when, weft_future_t **done,
                       size_t *ndone, weft_future_t **pending, size_t *npending);

/* ---- wait_for ---------------------------------------------------------------- */

/**
 * asyncio.wait_for(fut, timeout), 3.12 semantics:
 * - timeout WEFT_NO_TIMEOUT (None): plain weft_await(f, out).
 * - timeout > 0: await @p f inside a timeout scope. When it expires the
 *   calling task is cancelled, which cancels @p f; the call then waits until
 *   @p f has really finished and returns WEFT_ETIMEDOUT. If @p f swallows the
 *   cancellation and returns a value, that value is returned (0). If the
 *   calling task is cancelled from outside, @p f is cancelled too and
 *   WEFT_ECANCELED is returned. The task's cancelling() count is back to its
 *   entry value afterwards.
 * - timeout <= 0 (negative included): if @p f is done, its outcome is
 *   returned at once; else it is cancelled and waited for, then its result
 *   is returned if it produced one, else WEFT_ETIMEDOUT.
 * Otherwise returns as weft_await: 0 with the result (borrowed) in *out, or
 * @p f's error. Also WEFT_EINVAL (f NULL, timeout NaN), WEFT_ENOTCORO,
 * WEFT_ENOMEM.
 */
WEFT_API int weft_wait_for(weft_future_t *f, double timeout, weft_value_t *out);

/**
 * wait_for(coro(), timeout): like weft_wait_for for the coroutine fn(arg).
 * As in 3.12, with no timeout or a timeout > 0 the coroutine is called
 * directly in the calling task (no new task; weft_current_task() inside is
 * the caller); on expiry it receives WEFT_ECANCELED at its current await and
 * the call returns WEFT_ETIMEDOUT unless the coroutine returned a value.
 * With timeout <= 0 it is wrapped in a task first (via the eager factory if
 * set) which, unless it finished eagerly, is cancelled before it starts: the
 * body never runs and WEFT_ETIMEDOUT is returned. *out (may be NULL) receives
 * the coroutine's result, owned by the caller; on an error nothing is stored
 * and a result the coroutine stored with a dtor is freed.
 */
WEFT_API int weft_wait_for_coro(weft_coro_fn fn, void *arg, double timeout, weft_value_t *out);

/* ---- as_completed ------------------------------------------------------------- */

/** An as_completed iteration (opaque). */
typedef struct weft_as_completed weft_as_completed_t;

/**
 * asyncio.as_completed(fs, timeout): start watching the futures of @p fs
 * (duplicates count once). Then call weft_as_completed_next() exactly
 * weft_as_completed_remaining() times; each call returns the outcome of the
 * next future to complete, in completion order. After the timeout
 * (WEFT_NO_TIMEOUT: none; <= 0: at the next iteration) every remaining call
 * returns WEFT_ETIMEDOUT. Nothing is ever cancelled. Free with
 * weft_as_completed_free(). Loop thread (need not be inside a task).
 * @return 0, WEFT_EINVAL (it NULL, fs NULL with n > 0, a NULL entry, a NaN
 *  timeout), WEFT_ENOLOOP, WEFT_ENOMEM.
 */
WEFT_API int weft_as_completed_init(weft_as_completed_t **it, weft_future_t *const *fs, size_t n, double timeout);

/** As weft_as_completed_init over awaitables: coroutines are wrapped in tasks
 *  now (they keep running after the iteration is freed; they are not cancelled). */
WEFT_API int weft_as_completed_init_aw(weft_as_completed_t **it, const weft_awaitable_t *aws, size_t n,
                                       double timeout);

/** How many more times weft_as_completed_next() yields. */
WEFT_API size_t weft_as_completed_remaining(const weft_as_completed_t *it);

/**
 * Await the next completion. Returns its outcome like weft_await: 0 with the
 * result in *out (borrowed, valid until weft_as_completed_free; out may be
 * NULL), its error code or WEFT_ECANCELED; @p which (may be NULL) receives the
 * future that completed (borrowed; NULL after a timeout). WEFT_ETIMEDOUT when
 * the timeout passed first. WEFT_ESTOPASYNCITER when nothing remains (the end
 * of the iteration), so it drives an `async for` loop:
 *
 *     int rc;
 *     weft_value_t v;
 *     WEFT_ASYNC_FOR_EACH(rc, weft_as_completed_next(it, &v, NULL)) {
 *         if (rc == WEFT_ETIMEDOUT) break;   // TimeoutError ends the loop
 *         ...                                // rc: this future's outcome
 *     } If the
 * calling task is cancelled while waiting: WEFT_ECANCELED with @p which NULL,
 * and the step is not consumed. Also WEFT_ENOTCORO, WEFT_EINVAL.
 */
WEFT_API int weft_as_completed_next(weft_as_completed_t *it, weft_value_t *out, weft_future_t **which);

/** Stop watching (pending futures are not cancelled) and free. NULL is ignored. Loop thread. */
WEFT_API void weft_as_completed_free(weft_as_completed_t *it);

/* ---- shield ---------------------------------------------------------------- */

/**
 * asyncio.shield(inner): *outer receives a new reference to a future that
 * completes like @p inner (result borrowed from inner: keep a reference to
 * inner while you use it, as asyncio's docs advise), but cancelling the outer
 * (for instance because the task awaiting it is cancelled) does not cancel
 * @p inner. If inner is cancelled, outer is cancelled. If @p inner is done
 * already, *outer is @p inner itself (with a new reference).
 * @return 0, WEFT_EINVAL, WEFT_ECLOSED, WEFT_ENOMEM, WEFT_EWRONGLOOP. Thread of
 * inner's loop. To shield a coroutine, create its task first and keep it.
 */
WEFT_API int weft_shield(weft_future_t *inner, weft_future_t **outer);

/** `await shield(inner)`: weft_shield + weft_await + release. If the calling
 *  task is cancelled, returns WEFT_ECANCELED at once while @p inner goes on. */
WEFT_API int weft_await_shielded(weft_future_t *inner, weft_value_t *out);

/* ---- eager task factory ------------------------------------------------------ */

/**
 * loop.set_task_factory(asyncio.eager_task_factory) (3.12): when @p on, every
 * task created on @p loop starts eagerly (as with weft_task_opts_t.eager_start):
 * its coroutine runs synchronously inside create_task until its first
 * suspension, and a task that finishes without suspending is returned done
 * and is never scheduled. Eager start applies only while the loop runs on the
 * calling thread; otherwise tasks are scheduled normally (E5).
 * @return 0 or WEFT_EINVAL. Thread of the loop.
 *
 * Every task created on the loop honours it: weft_create_task,
 * weft_loop_create_task and the tasks weft's combinators create (gather,
 * as_completed, TaskGroup, wait_for_coro, ensure_future). Tasks started from
 * a queue (weft_spawn, weft_spawn_on, run_coroutine_threadsafe) and the main
 * task of weft_run / weft_runtime_run / weft_runner_run are never eager.
 */
WEFT_API int weft_loop_set_eager_task_factory(weft_loop_t *loop, bool on);

/** Whether @p loop has the eager task factory. Any thread (a snapshot). */
WEFT_API bool weft_loop_get_eager_task_factory(const weft_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif
