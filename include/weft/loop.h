/**
 * @file weft/loop.h
 * @brief The event loop: asyncio's loop on one libuv loop, one thread.
 *
 * Thread rules: a loop belongs to the thread that runs it. Every function here
 * must be called on that thread (or, for a loop that is not running, on the
 * thread that owns it) unless its name ends in _threadsafe or its doc says
 * "Any thread".
 */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_loop weft_loop_t;
typedef struct weft_future weft_future_t;

/**
 * A cancellable reference to a scheduled callback (asyncio.Handle /
 * TimerHandle). Plain value, copy freely; fields are private. Cancelling a
 * handle whose callback already ran (or was cancelled) is a harmless no-op. A
 * handle must not be used after its loop was freed. A zeroed handle is valid
 * and refers to nothing.
 */
typedef struct weft_handle {
    void *h;
    uint64_t gen;
    uint64_t when_ns;        /* TimerHandle.when() in loop ns; UINT64_MAX for a call_soon handle */
} weft_handle_t;

/** What the loop's exception handler receives (asyncio's context dict). */
typedef struct weft_error_info {
    const char *message;     /**< what happened, e.g. "Exception in callback" */
    int code;                /**< the error code involved (0 if none) */
    const char *detail;      /**< the error's own message (asyncio's exception text), or NULL. For a failed
                                  callback: the message it attached with weft_raise() */
    weft_future_t *future;   /**< the future/task involved, or NULL (borrowed) */
    weft_handle_t handle;    /**< context['handle']: the handle whose callback failed (zeroed if none). Its
                                  use is over: weft_handle_cancelled() and weft_handle_when() still answer */
    weft_callback_t callback; /**< that handle's callback, or NULL */
    void *callback_arg;      /**< that callback's argument */
} weft_error_info_t;

typedef void (*weft_exception_handler_t)(weft_loop_t *loop, const weft_error_info_t *info, void *ud);

/**
 * Create a new loop (asyncio.new_event_loop) on its own libuv loop, owned by
 * the calling thread. @return 0, WEFT_EINVAL (out NULL), WEFT_ENOMEM, or a libuv
 * error code. Free it with weft_loop_free().
 */
WEFT_API int weft_loop_new(weft_loop_t **out);

/**
 * Close the loop (asyncio loop.close): drop pending callbacks and timers, free
 * its libuv loop, stacks and queues. Tasks still pending are destroyed without
 * running (reported as "Task was destroyed but it is pending!"); futures you
 * still hold stay valid objects but any later operation on them returns
 * WEFT_ECLOSED. Idempotent. @return 0, WEFT_EINVAL, WEFT_EBUSY if the loop is
 * running.
 */
WEFT_API int weft_loop_close(weft_loop_t *loop);

/**
 * Release the caller's reference to the loop, closing it first if needed. The
 * memory goes when the last future or task of the loop is released too.
 * @return 0, WEFT_EINVAL, WEFT_EBUSY (running: nothing is done).
 */
WEFT_API int weft_loop_free(weft_loop_t *loop);

/**
 * Run until weft_loop_stop() (asyncio run_forever). @return 0, WEFT_EINVAL,
 * WEFT_ECLOSED, WEFT_EBUSY (already running), WEFT_ENESTED (another loop runs
 * on this thread).
 */
WEFT_API int weft_loop_run_forever(weft_loop_t *loop);

/**
 * Run until @p fut is done, then return its outcome (asyncio
 * run_until_complete): 0 with the result copied (borrowed) to *out if non-NULL,
 * the future's error code, or WEFT_ECANCELED. Also WEFT_EINVAL, WEFT_ECLOSED,
 * WEFT_EBUSY, WEFT_ENESTED, WEFT_EWRONGLOOP (future of another loop) and
 * WEFT_ESTOPPED if weft_loop_stop() ended the run first.
 */
WEFT_API int weft_loop_run_until_complete(weft_loop_t *loop, weft_future_t *fut, weft_value_t *out);

/** Ask the loop to stop after the current iteration (callbacks already
 *  scheduled still run). Loop thread. @return 0 or WEFT_EINVAL. */
WEFT_API int weft_loop_stop(weft_loop_t *loop);

/** True while the loop is running. Any thread (a snapshot). */
WEFT_API bool weft_loop_is_running(const weft_loop_t *loop);
/** True once weft_loop_close() ran. Any thread. */
WEFT_API bool weft_loop_is_closed(const weft_loop_t *loop);

/** The loop's monotonic clock in seconds (asyncio loop.time()). Any thread. */
WEFT_API double weft_loop_time(const weft_loop_t *loop);
/** The same clock in nanoseconds. Any thread. */
WEFT_API uint64_t weft_loop_time_ns(const weft_loop_t *loop);

/** The loop running on this thread (asyncio.get_running_loop): 0 and *out set,
 *  or WEFT_ENOLOOP when none runs, WEFT_EINVAL if out is NULL. */
WEFT_API int weft_get_running_loop(weft_loop_t **out);
/** The running loop of this thread, or NULL. */
WEFT_API weft_loop_t *weft_running_loop(void);
/** This thread's current loop (asyncio get_event_loop without the deprecated
 *  auto-creation): the running loop, else the one set with
 *  weft_set_event_loop(), else NULL. */
WEFT_API weft_loop_t *weft_get_event_loop(void);
/** Set this thread's current loop (NULL to clear). Takes no reference. */
WEFT_API void weft_set_event_loop(weft_loop_t *loop);

/**
 * Schedule cb(arg) for the next iteration (asyncio call_soon). Callbacks run in
 * the order they were scheduled (FIFO). If @p out is non-NULL it receives a
 * handle for weft_handle_cancel(). @return 0, WEFT_EINVAL, WEFT_ECLOSED,
 * WEFT_ENOMEM, WEFT_EWRONGLOOP (called from another thread).
 */
WEFT_API int weft_call_soon(weft_loop_t *loop, weft_callback_t cb, void *arg, weft_handle_t *out);

/** Schedule cb(arg) @p delay seconds from now (asyncio call_later). Timers
 *  fire by deadline, FIFO among equal deadlines. @return as weft_call_soon,
 *  plus WEFT_EINVAL for a NaN delay. A negative delay is a deadline in the
 *  past: due now, and before timers with a later deadline (as asyncio). */
WEFT_API int weft_call_later(weft_loop_t *loop, double delay, weft_callback_t cb, void *arg, weft_handle_t *out);

/** Schedule cb(arg) at loop time @p when seconds (asyncio call_at). */
WEFT_API int weft_call_at(weft_loop_t *loop, double when, weft_callback_t cb, void *arg, weft_handle_t *out);

/** Cancel a scheduled callback (Handle.cancel). Loop thread. @return 1 if it
 *  was pending and is now cancelled, 0 otherwise (it ran already: it is only
 *  marked for weft_handle_cancelled(); a zeroed handle, a closed loop: nothing). */
WEFT_API int weft_handle_cancel(weft_handle_t handle);

/**
 * Handle.cancelled(): true once weft_handle_cancel() was called on this use
 * of the handle (through any copy), before or, as in asyncio, after its
 * callback ran. False for a handle never cancelled and for a zeroed one. The
 * record lives in the loop's pooled slot, which keeps the flag of its last 64
 * uses (a slot whose use was cancelled is reused only after every other free
 * slot): a handle whose slot served 64 newer callbacks since reads false, and
 * cancelling it then records nothing. Loop thread.
 */
WEFT_API bool weft_handle_cancelled(weft_handle_t handle);

/** TimerHandle.when(): the loop time (seconds, weft_loop_time's clock) the
 *  callback was scheduled for, kept in the handle value itself (valid after
 *  it ran or was cancelled). NaN for a call_soon handle (asyncio's Handle has
 *  no when()) or a zeroed one. Any thread. */
WEFT_API double weft_handle_when(weft_handle_t handle);

/**
 * Schedule cb(arg) on @p loop from any thread, including threads weft did not
 * create (asyncio call_soon_threadsafe). Wakes the loop. Any thread; also safe
 * while the loop is not running (the callback runs when it next runs).
 *
 * A callback accepted (0 returned) runs, with two exceptions: a standalone
 * loop closed before it ran it, and a runtime freed without ever having run,
 * drop it (as asyncio's close does). On a loop of a runtime, once the
 * runtime's shutdown has begun (weft_runtime_shutdown, the end of
 * weft_runtime_run's main task, or weft_runtime_shutdown_from_signal), every
 * call is refused with WEFT_ECLOSED, from any thread and for good; the loop
 * still runs every callback accepted before that, then exits. So a thread
 * that keeps calling it cannot hold a shutdown up, and its callbacks are
 * either run or refused, never silently lost. There is no bound on the
 * callbacks queued before the shutdown: a producer faster than the loop
 * should wait for its work (weft_run_coroutine_threadsafe's future) to pace
 * itself. See docs/guarantees.md.
 * @return 0, WEFT_EINVAL (loop or cb NULL), WEFT_ENOMEM, WEFT_ECLOSED (the loop
 * is closed, or its runtime is shutting down or shut down).
 */
WEFT_API int weft_call_soon_threadsafe(weft_loop_t *loop, weft_callback_t cb, void *arg);

/** Replace the loop's exception handler (NULL restores the default, which
 *  prints to stderr). Loop thread. */
WEFT_API void weft_loop_set_exception_handler(weft_loop_t *loop, weft_exception_handler_t fn, void *ud);

/** Report @p info through the loop's handler (asyncio
 *  call_exception_handler). Loop thread. */
WEFT_API void weft_loop_call_exception_handler(weft_loop_t *loop, const weft_error_info_t *info);

/** The libuv loop under a weft loop, for registering your own handles. Loop
 *  thread only; do not run or close it yourself. */
struct uv_loop_s;
WEFT_API struct uv_loop_s *weft_loop_uv(weft_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif
