/**
 * @file weft/future.h
 * @brief Futures (asyncio.Future) and the one await call shared by futures and tasks.
 *
 * A future belongs to one loop (weft_future_new on that loop's thread). Its state
 * changes under a small lock, so in a multi-loop runtime a task on any loop may
 * await it, and any thread may complete a plain future (set_result,
 * set_exception, cancel); each done callback runs on the loop that registered
 * it (the future's loop when registered from a plain thread), and an awaiting
 * task resumes on its own loop. Futures are reference counted: weft_future_new() and
 * weft_create_task() give the caller one reference, released with
 * weft_future_release(). A task is a future (weft_task_t is the same type), so
 * every function here works on tasks, except set_result/set_exception.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A done callback: runs via call_soon on the future's loop, in registration
 *  order, after the future is done. */
typedef void (*weft_done_cb)(weft_future_t *fut, void *arg);

/** Create a pending future on @p loop (NULL: the running loop).
 *  @return 0, WEFT_EINVAL, WEFT_ENOLOOP, WEFT_ECLOSED, WEFT_ENOMEM. */
WEFT_API int weft_future_new(weft_loop_t *loop, weft_future_t **out);

/** Take another reference. Any thread. Returns @p f. */
WEFT_API weft_future_t *weft_future_retain(weft_future_t *f);
/** Drop a reference; the last one frees the future (running the result's dtor;
 *  an exception never retrieved is reported to the loop's exception handler).
 *  NULL is ignored. Any thread.
 *  Misuse (docs/guarantees.md): releasing a future or task that was already
 *  freed is logged as an error (weft_set_log_handler) and ignored, as long as
 *  its memory has not been reused (always in ASan builds; task memory is given
 *  back at once in debug mode); releasing the last reference of a task its
 *  loop still runs (one release too many) is logged and ignored, the task
 *  lives on. The same checks guard weft_future_retain. */
WEFT_API void weft_future_release(weft_future_t *f);

/** Mark done with a result; schedules the done callbacks. On success the
 *  future owns @p v (its dtor); on failure the caller still does.
 *  @return 0, WEFT_EINVAL, WEFT_EINVALSTATE (already done), WEFT_ENOTTASK
 *  (tasks refuse it), WEFT_ECLOSED. Any thread. */
WEFT_API int weft_future_set_result(weft_future_t *f, weft_value_t v);

/** Mark done with an error @p code (negative) and an optional printf-style
 *  message (NULL for none). @return as weft_future_set_result, WEFT_EINVAL if
 *  code >= 0. */
WEFT_API int weft_future_set_exception(weft_future_t *f, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/**
 * Cancel (asyncio Future.cancel / Task.cancel): @return 1 if the request was
 * accepted, 0 if already done, WEFT_EINVAL. @p msg (may be NULL) is copied and
 * reaches whoever awaits the future, through weft_error_message(). For a task
 * this is a request: the task sees WEFT_ECANCELED at its current or next await.
 */
WEFT_API int weft_future_cancel(weft_future_t *f, const char *msg);

WEFT_API bool weft_future_done(const weft_future_t *f);
WEFT_API bool weft_future_cancelled(const weft_future_t *f);

/**
 * The outcome of a done future (Future.result): 0 with the result copied to
 * *out (borrowed: the copy's dtor is NULL; out may be NULL), the error code set
 * with set_exception, WEFT_ECANCELED if cancelled, WEFT_EINVALSTATE if not done,
 * WEFT_EINVAL. Marks the exception retrieved.
 */
WEFT_API int weft_future_result(weft_future_t *f, weft_value_t *out);

/** Move an owned result out (the future forgets its dtor, the caller now owns
 *  it). @return as weft_future_result. */
WEFT_API int weft_future_take_result(weft_future_t *f, weft_value_t *out);

/**
 * Future.exception: @return 0 if done (then *code = 0 for a result or the error
 * code; *msg = its message or NULL), WEFT_ECANCELED if cancelled,
 * WEFT_EINVALSTATE if pending, WEFT_EINVAL. code/msg may be NULL. The message is
 * owned by the future.
 */
WEFT_API int weft_future_exception(weft_future_t *f, int *code, const char **msg);

/** The message of the future's exception or cancellation, or NULL. Owned by the future. */
WEFT_API const char *weft_future_message(const weft_future_t *f);

/** add_done_callback: if already done, the callback is scheduled with
 *  call_soon (never called synchronously). @return 0, WEFT_EINVAL, WEFT_ENOMEM,
 *  WEFT_ECLOSED. */
WEFT_API int weft_future_add_done_callback(weft_future_t *f, weft_done_cb fn, void *arg);

/** remove_done_callback: removes every registration of (fn, arg) not yet
 *  scheduled. @return the number removed, or WEFT_EINVAL. */
WEFT_API int weft_future_remove_done_callback(weft_future_t *f, weft_done_cb fn, void *arg);

/** The future's loop (borrowed). */
WEFT_API weft_loop_t *weft_future_get_loop(const weft_future_t *f);

/**
 * Await a future or task (asyncio `await fut`) from inside a coroutine, at any
 * depth of nested calls. Suspends the current task until @p f is done, then
 * returns as weft_future_result() (result borrowed into *out if non-NULL). An
 * already-done future returns at once without yielding. If the current task is
 * cancelled while waiting, @p f is cancelled too (asyncio semantics: use
 * weft_shield to protect a shared future) and WEFT_ECANCELED is returned.
 * The future may belong to another loop of the runtime (a weft extension:
 * asyncio forbids it); the task still resumes on its own loop.
 * Errors: WEFT_EINVAL (f NULL), WEFT_ENOTCORO (not inside a task),
 * WEFT_ESELFAWAIT, WEFT_ENOMEM, WEFT_EDEADLK: @p f is a task of this loop
 * that is (through a chain of weft_await calls on tasks of this loop) awaiting
 * the current task, so neither could ever finish (asyncio would hang); the
 * current task does not wait and f is left alone. A cycle through a plain
 * future (a gather) or through a task of another loop is not seen; a cancel
 * still ends it (docs/guarantees.md).
 */
WEFT_API int weft_await(weft_future_t *f, weft_value_t *out);

#ifdef __cplusplus
}
#endif
#endif
