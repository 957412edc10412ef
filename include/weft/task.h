/**
 * @file weft/task.h
 * @brief Tasks (asyncio.Task): coroutines scheduled on a loop, plus sleep and weft_run.
 *
 * A task runs a weft_coro_fn on its own stack. The stack is taken from the
 * loop's pool when the task first runs (a task created but not yet started
 * holds none) and goes back when it finishes. Default stack size:
 * WEFT_DEFAULT_STACK_SIZE (128 KiB of address space; only touched pages use
 * memory). A stack overflow is detected (64 KiB guard region; for stacks carved from
 * slabs once the process's guard-page budget is used, the saved stack pointer
 * at every switch and a zeroed red zone every 16th switch) and reported with
 * the task's name and stack size before the process aborts.
 *
 * A weft_task_t is a weft_future_t: await it, add done callbacks, read its
 * result with the future API. weft_create_task gives the caller one reference
 * (release it with weft_task_release); the loop keeps its own reference until
 * the task is done, so releasing early does not stop or free a running task.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include "common.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef weft_future_t weft_task_t;

#define WEFT_DEFAULT_STACK_SIZE ((size_t)128 * 1024)
#define WEFT_MIN_STACK_SIZE ((size_t)16 * 1024)

/** Options for task creation; NULL or zeroed fields mean defaults. */
typedef struct weft_task_opts {
    const char *name;    /**< copied; default "Task-N", N from a process-wide counter that only unnamed
                              tasks advance, taken at creation (asyncio's _task_name_counter) */
    bool eager_start;    /**< run the first step synchronously inside create_task (3.12 eager_start) */
    size_t stack_size;   /**< bytes, rounded up to pages; 0 = WEFT_DEFAULT_STACK_SIZE; min WEFT_MIN_STACK_SIZE */
    /** Destructor of the task's @c arg, or NULL. Once the task was created
     *  (the creating call returned 0) it is called exactly once with @c arg:
     *  when the body returned, when the task ended cancelled before its
     *  first step (the body never ran), when it could not start (no stack),
     *  or when the task is destroyed pending (its loop closed, its runtime
     *  shut down). It runs on the task's loop before anyone awaiting the task
     *  resumes, except for a destroyed task (then wherever the task is freed).
     *  If creation fails the caller still owns @c arg. */
    weft_dtor_t arg_dtor;
} weft_task_opts_t;

/** Task states for introspection. */
typedef enum weft_task_state {
    WEFT_TASK_NEW = 0,    /**< created, first step not run yet */
    WEFT_TASK_RUNNING,    /**< executing now (it is the current task) */
    WEFT_TASK_SUSPENDED,  /**< waiting (on a future, a sleep, a yield, a primitive) */
    WEFT_TASK_DONE        /**< finished: result, exception or cancelled */
} weft_task_state_t;

/**
 * Create a task on the running loop (asyncio.create_task) running fn(arg).
 * It is scheduled with call_soon (or started at once with eager_start).
 * @p out receives a reference (release with weft_task_release), or may be NULL
 * for a task nobody will await. @return 0, WEFT_EINVAL (fn NULL, bad stack
 * size), WEFT_ENOLOOP, WEFT_ECLOSED, WEFT_ENOMEM. Loop thread.
 */
WEFT_API int weft_create_task(weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts);

/** The same on a given loop, which need not be running (loop.create_task).
 *  Eager start applies only if the loop is running on this thread. */
WEFT_API int weft_loop_create_task(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                                   const weft_task_opts_t *opts);

/** weft_future_release for tasks. */
static inline void weft_task_release(weft_task_t *t) { weft_future_release(t); }

/** Task.cancel(msg): 1 accepted, 0 already done, negative error. See weft_future_cancel. */
WEFT_API int weft_task_cancel(weft_task_t *t, const char *msg);
/** Task.cancelling(): pending cancel requests (>= 0), or WEFT_EINVAL / WEFT_ENOTTASK. */
WEFT_API int weft_task_cancelling(const weft_task_t *t);
/** Task.uncancel(): decrement the request count (not below 0); returns the new
 *  count, or WEFT_EINVAL / WEFT_ENOTTASK. */
WEFT_API int weft_task_uncancel(weft_task_t *t);
/** Task name (owned by the task, valid until it changes or the task is freed);
 *  NULL for a plain future. */
WEFT_API const char *weft_task_get_name(const weft_task_t *t);
/** Set the name (copied). @return 0, WEFT_EINVAL, WEFT_ENOTTASK, WEFT_ENOMEM. */
WEFT_API int weft_task_set_name(weft_task_t *t, const char *name);
/** The task's state, or -1 for NULL / a plain future. */
WEFT_API int weft_task_state(const weft_task_t *t);
/** The future the task is suspended on (borrowed), or NULL (not waiting on a
 *  future: new, running, sleeping, yielding, done). */
WEFT_API weft_future_t *weft_task_awaiting(const weft_task_t *t);
/** True if @p f is a task. */
WEFT_API bool weft_is_task(const weft_future_t *f);

/** The task running on this thread, or NULL: both inside a plain callback
 *  and outside any running loop. Use weft_get_current_task() to tell the two
 *  apart. Any thread. */
WEFT_API weft_task_t *weft_current_task(void);

/**
 * asyncio.current_task(): 0 with *out = the task running on this thread, or
 * *out = NULL when a loop runs here but no task does (a plain callback:
 * asyncio returns None); WEFT_ENOLOOP (asyncio's RuntimeError "no running
 * event loop", *out = NULL) when no loop runs on this thread; WEFT_EINVAL
 * (out NULL). Any thread.
 */
WEFT_API int weft_get_current_task(weft_task_t **out);
/** The task currently running on @p loop, or NULL (current_task(loop)). */
WEFT_API weft_task_t *weft_loop_current_task(const weft_loop_t *loop);

/**
 * asyncio.all_tasks(loop): stores up to @p cap not-done tasks of @p loop (NULL:
 * running loop) in @p arr (borrowed pointers, valid until the loop runs again)
 * and returns how many exist in all (which may exceed cap), or WEFT_EINVAL /
 * WEFT_ENOLOOP. Loop thread.
 */
WEFT_API int weft_all_tasks(weft_loop_t *loop, weft_task_t **arr, size_t cap);

/**
 * asyncio.sleep(delay): suspend the current task for @p delay seconds. A delay
 * <= 0 yields exactly once: every task already ready runs before this one
 * resumes. @return 0, WEFT_ECANCELED, WEFT_ENOTCORO, WEFT_EINVAL (NaN).
 */
WEFT_API int weft_sleep(double delay);
/** sleep(delay, result): as weft_sleep, then copies @p result to *out. */
WEFT_API int weft_sleep_value(double delay, weft_value_t result, weft_value_t *out);
/** sleep(0) under its own name. */
WEFT_API int weft_yield(void);

/**
 * Attach a message to the error code a coroutine is about to return and return
 * the code: `return weft_raise(MY_ERR, "bad id %d", id);`. The message becomes
 * the task's exception message. Also works in:
 *  - a plain loop callback (call_soon, call_later, ...): when the callback
 *    returns that code, the exception handler receives the message as
 *    weft_error_info_t.detail;
 *  - a blocking function run by weft_to_thread / weft_run_in_executor /
 *    weft_executor_submit: the awaiter (weft_error_message()) or the
 *    concurrent future (weft_cfuture_exception()) sees the message.
 * The message counts only if the code returned equals @p code. Elsewhere it
 * just returns @p code. A non-negative @p code is returned unchanged.
 */
WEFT_API int weft_raise(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/**
 * The message of the last error, or NULL:
 *  - inside a task: the message attached to the last error an await returned
 *    (a cancel message, an awaited task's exception message); valid until
 *    the task's next await;
 *  - outside a task: the message of main's failure in the last weft_run /
 *    weft_runtime_run / weft_runner_run on this thread (asyncio.run
 *    re-raising main's exception with its text): NULL if it succeeded or the
 *    error had no message; valid until the next of those calls on this thread
 *    (the code is what that call returned). Per thread.
 */
WEFT_API const char *weft_error_message(void);

/** Options of weft_run (NULL for defaults). */
typedef struct weft_run_opts {
    bool debug;        /**< debug mode on every loop (see weft/debug.h) */
    const char *name;  /**< the main task's name; NULL: "Task-N" like every unnamed task (asyncio.run's
                            main is Task-1 in a fresh process); set "main" to keep the old name */
    size_t stack_size; /**< the main task's stack size */
} weft_run_opts_t;

/**
 * asyncio.run(main): create a loop, run main(arg) as a task until it is done,
 * cancel the tasks still pending and let them finish, close the loop. Returns
 * main's outcome (0 with its result in *out, the owned value moved to the caller;
 * its error code; WEFT_ECANCELED) or WEFT_ENESTED when called from a thread
 * whose loop is running, WEFT_EINVAL for a NULL main. When main failed,
 * weft_error_message() called afterwards on this thread (outside any task)
 * returns its message:
 *
 *     int rc = weft_run(main_coro, NULL, NULL, NULL);
 *     if (rc < 0)
 *         fprintf(stderr, "%s: %s\n", weft_err_name(rc),
 *                 weft_error_message() ? weft_error_message() : weft_strerror(rc));
 */
WEFT_API int weft_run(weft_coro_fn main, void *arg, const weft_run_opts_t *opts, weft_value_t *out);

#ifdef __cplusplus
}
#endif
#endif
