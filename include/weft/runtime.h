/**
 * @file weft/runtime.h
 * @brief Several worker loops with work stealing, and the bridges between
 *        loops and plain threads.
 *
 * A runtime owns N worker threads, each running its own weft loop on its own
 * libuv loop (worker 0 runs on the thread that calls weft_runtime_run /
 * weft_run). Two placements:
 *  - loop-affine (weft_create_task): the task runs on the loop that created it,
 *    like asyncio; tasks of one loop never run at the same time, so they share
 *    data without locks;
 *  - stealable (weft_spawn): another loop (an idle one, or a busy one holding
 *    clearly fewer tasks) may take the task before it first runs; once
 *    started it stays on that loop for life, so its code never changes thread
 *    across an await (errno and thread-locals stay valid).
 * With one worker, or when nothing is stolen, the order of every step on a
 * loop is asyncio's.
 */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include <stdio.h>

#include "common.h"
#include "future.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_runtime weft_runtime_t;

/** Runtime options (NULL or zero fields: defaults). */
typedef struct weft_runtime_opts {
    int workers;          /**< number of worker loops; 0 = WEFT_WORKERS env, else the CPUs available */
    int blocking_threads; /**< max threads of the blocking pool (to_thread); 0 = 64 */
    bool debug;           /**< debug mode on every loop (see weft/debug.h); WEFT_DEBUG=1 also turns it on */
} weft_runtime_opts_t;

/** Per-loop counters (weft_runtime_stats). Values only grow. */
typedef struct weft_loop_stats {
    uint64_t tasks_run;        /**< task steps run */
    uint64_t tasks_started;    /**< tasks that ran their first step here */
    uint64_t spawned;          /**< stealable tasks pushed to this loop's queue */
    uint64_t steal_attempts;   /**< victims tried */
    uint64_t steals;           /**< successful steal operations */
    uint64_t stolen;           /**< tasks moved here by stealing */
    uint64_t injected;         /**< tasks taken from the shared injection queue */
    uint64_t overflows;        /**< spawns that found the local stealable ring full (kept in the loop's backlog) */
    uint64_t parks;            /**< times the loop parked (blocked with nothing to do) */
    uint64_t wakeups;          /**< times another thread woke it while it was parked (uv_async_send to it) */
    uint64_t inbox_msgs;       /**< cross-thread messages received */
    uint64_t busy_ns;          /**< time not parked */
    uint64_t parked_ns;        /**< time parked */
    uint64_t inline_joins;     /**< never-run stealable tasks its tasks awaited and ran inline (work-first join) */
    uint64_t searches;         /**< times it ran out of work and searched (spun over the injector and victims) */
    uint64_t search_hits;      /**< searches that found work before parking */
    uint64_t wakeups_sent;     /**< parked loops this loop's thread woke for new stealable work */
} weft_loop_stats_t;

/**
 * Create a runtime (its loops are created now, the threads start in
 * weft_runtime_run). @return 0, WEFT_EINVAL, WEFT_ENOMEM or a libuv error. Any thread.
 */
WEFT_API int weft_runtime_new(const weft_runtime_opts_t *opts, weft_runtime_t **out);

/** Number of worker loops. Any thread. */
WEFT_API int weft_runtime_workers(const weft_runtime_t *rt);

/** Worker @p i's loop (borrowed), or NULL if out of range. Any thread; call only
 *  thread-safe functions on a loop that runs on another thread. */
WEFT_API weft_loop_t *weft_runtime_loop(const weft_runtime_t *rt, int i);

/** The runtime of a loop, or NULL for a standalone loop. Any thread. */
WEFT_API weft_runtime_t *weft_loop_runtime(const weft_loop_t *loop);

/**
 * Run main(arg) as a task on worker 0 (on the calling thread) with workers
 * 1..N-1 on their own threads, until main is done; then shut the runtime down
 * (cancel what is left, let it finish, join the threads). Returns main's
 * outcome like weft_run (owned result moved to *out; main's failure message
 * through weft_error_message() afterwards on this thread). Main is named by
 * @p opts->name, else "Task-N". A runtime runs once.
 * @return also WEFT_EINVAL, WEFT_ENESTED (a loop runs on this thread),
 * WEFT_ECLOSED (already ran or shut down).
 */
WEFT_API int weft_runtime_run(weft_runtime_t *rt, weft_coro_fn main, void *arg, const weft_task_opts_t *opts,
                              weft_value_t *out);

/**
 * Start the workers in the background (all N on new threads) so that plain
 * threads can submit work with weft_run_coroutine_threadsafe. Stop with
 * weft_runtime_shutdown. @return 0, WEFT_EINVAL, WEFT_ECLOSED, WEFT_EBUSY (started).
 */
WEFT_API int weft_runtime_start(weft_runtime_t *rt);

/**
 * Shut down: stop accepting work, cancel every task left, let them finish,
 * join every worker thread. Blocks until done unless called from a worker
 * thread (then it only requests the shutdown). A second call is harmless.
 * Any thread. @return 0 or WEFT_EINVAL.
 *
 * From the moment the shutdown begins (this call, the end of
 * weft_runtime_run's main task, or weft_runtime_shutdown_from_signal), new
 * work from outside is refused with WEFT_ECLOSED: weft_run_coroutine_threadsafe,
 * weft_spawn_on and weft_call_soon_threadsafe on the runtime's loops. A
 * submission is either refused or accepted, and an accepted one is run (a task
 * that had not started yet starts already cancelled, so its outcome is
 * WEFT_ECANCELED; a callback runs) before the workers exit: the check and the
 * accounting are one step with respect to the shutdown, so a submission racing
 * it never lands on a loop that has already stopped. Threads that keep
 * submitting cannot hold the shutdown up: it takes as long as the tasks
 * already alive need to finish once cancelled. See docs/guarantees.md.
 */
WEFT_API int weft_runtime_shutdown(weft_runtime_t *rt);

/** Request a shutdown from a signal handler: async-signal-safe (one
 *  uv_async_send); the runtime's run/shutdown then completes it. */
WEFT_API void weft_runtime_shutdown_from_signal(weft_runtime_t *rt);

/** Free a runtime that was shut down (or never started). @return 0,
 *  WEFT_EINVAL, WEFT_EBUSY (still running). */
WEFT_API int weft_runtime_free(weft_runtime_t *rt);

/**
 * Spawn a stealable task (Tokio's spawn) from a task or callback running on a
 * loop of a runtime: it is queued on the current loop, and another loop may
 * take it before it first runs. Idle loops take about half of a loop's queued
 * tasks; every few dozen steps a busy loop also takes up to half the
 * difference when another loop holds clearly more tasks (started ones
 * included), so that a burst of long-lived tasks ends up started on every
 * loop. Both leave a loop the last two tasks it queued (the next link of a chain, the
 * two sides of a producer/consumer pair, which it reaches within microseconds)
 * unless that loop starts no new round of its ready queue for about a
 * millisecond (a step that computes without awaiting): then they take those
 * too, so such a step never holds its children back. On a standalone loop, or with
 * opts->eager_start, it behaves as weft_create_task. @return as
 * weft_create_task. Loop thread.
 *
 * Work-first join: when a task awaits (weft_await) a stealable task that has
 * not started yet, the awaiting task runs it at once, inline on its own stack
 * (no new stack, no switch, no trip through the queue), instead of waiting for
 * its turn. The child is still its own task: weft_current_task() is the child,
 * with its own name, its own copy of the context, its own result, exception or
 * cancellation, and its done callbacks (scheduled, as always); the awaiter is
 * meanwhile suspended on it (weft_task_awaiting), so cancelling the awaiter
 * cancels the child, exactly as for any awaited task. A child that suspends
 * keeps the awaiter's stack until it finishes, then the awaiter resumes. So a
 * stealable task may start earlier than its place in the loop's FIFO (it has
 * no order guarantee anyway: another loop may have taken it); loop-affine
 * tasks (weft_create_task) are never run inline and keep asyncio's order.
 * A child run inline has at least half of its stack_size left on the borrowed
 * stack (otherwise it is not run inline); a task that needs its whole stack
 * should be created with weft_create_task or awaited after it started.
 */
WEFT_API int weft_spawn(weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts);

/**
 * Create a loop-affine task on a chosen loop, from any thread (explicit
 * placement). The task starts on @p loop. @p out receives a reference.
 * @return 0, WEFT_EINVAL, WEFT_ENOMEM, WEFT_ECLOSED (the loop is closed, or
 * its runtime's shutdown has begun: see weft_runtime_shutdown). Any thread.
 */
WEFT_API int weft_spawn_on(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                           const weft_task_opts_t *opts);

/** Snapshot of worker @p i's counters. Any thread (values read relaxed).
 *  @return 0 or WEFT_EINVAL. */
WEFT_API int weft_runtime_stats(const weft_runtime_t *rt, int i, weft_loop_stats_t *out);

/** Print every worker's counters as a table to @p fp. Any thread. */
WEFT_API void weft_runtime_print_stats(const weft_runtime_t *rt, FILE *fp);

/* ---- concurrent futures: run_coroutine_threadsafe, executors ---------------- */

/**
 * A thread-safe future (concurrent.futures.Future): made by
 * weft_run_coroutine_threadsafe (tied to a task), weft_executor_submit (tied
 * to a blocking call) or weft_cfuture_new (completed by you). Reference
 * counted; every function on it may be called from any thread unless its doc
 * says otherwise.
 */
typedef struct weft_cfuture weft_cfuture_t;

/** concurrent.futures.Future(): a new pending concurrent future that you
 *  complete with weft_cfuture_set_result / set_exception (one reference).
 *  @return 0, WEFT_EINVAL, WEFT_ENOMEM. Any thread. */
WEFT_API int weft_cfuture_new(weft_cfuture_t **out);

/** Future.set_result(v) on a future from weft_cfuture_new: it owns @p v from
 *  now on (dtor run when the last reference goes, unless a wrapping loop
 *  future borrowed it). @return 0, WEFT_EINVAL, WEFT_EINVALSTATE (done
 *  already; @p v stays yours), WEFT_ENOTTASK (a task's future: its outcome is
 *  the task's). Any thread. */
WEFT_API int weft_cfuture_set_result(weft_cfuture_t *cf, weft_value_t v);

/** Future.set_exception: complete with error @p code (negative) and an
 *  optional printf-style message. @return as weft_cfuture_set_result, and
 *  WEFT_EINVAL for code >= 0. Any thread. */
WEFT_API int weft_cfuture_set_exception(weft_cfuture_t *cf, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** Take another reference. Returns @p cf. Any thread. */
WEFT_API weft_cfuture_t *weft_cfuture_retain(weft_cfuture_t *cf);

/**
 * Submit fn(arg) from any thread, including threads weft did not create
 * (asyncio.run_coroutine_threadsafe). The task runs on @p loop if given, else
 * anywhere in @p rt (through the injection queue). *out receives a concurrent
 * future (release with weft_cfuture_release). @return 0, WEFT_EINVAL,
 * WEFT_ENOMEM, WEFT_ECLOSED (the runtime's shutdown has begun, or the loop is
 * closed: see weft_runtime_shutdown). The task runs
 * in a copy of the submitter's context variables (empty from a plain thread).
 */
WEFT_API int weft_run_coroutine_threadsafe(weft_runtime_t *rt, weft_loop_t *loop, weft_coro_fn fn, void *arg,
                                           const weft_task_opts_t *opts, weft_cfuture_t **out);

/**
 * Future.result(timeout): block the calling plain thread until @p cf is done,
 * at most @p timeout seconds (WEFT_NO_TIMEOUT, or any value too large for 64-bit
 * nanoseconds such as 1e300: forever; <= 0: only look):
 * 0 with the result (borrowed, valid while you hold @p cf) in *out, the error
 * code, WEFT_ECANCELED, or WEFT_ETIMEDOUT; WEFT_EINVAL (cf NULL, timeout NaN).
 * Must not be called on a loop thread (it would block the loop):
 * WEFT_EWRONGLOOP there; use weft_cfuture_await instead. Any other thread.
 */
WEFT_API int weft_cfuture_result(weft_cfuture_t *cf, double timeout, weft_value_t *out);

/**
 * Future.exception(timeout): wait as weft_cfuture_result, then return 0 with
 * *code = 0 (a result) or the error code, and *msg = the error's message
 * (the task's weft_raise text, the blocking function's, or set_exception's;
 * owned by @p cf, valid while you hold it; NULL if none); WEFT_ECANCELED if it
 * was cancelled; WEFT_ETIMEDOUT; WEFT_EINVAL; WEFT_EWRONGLOOP (loop thread).
 * code and msg may be NULL.
 */
WEFT_API int weft_cfuture_exception(weft_cfuture_t *cf, double timeout, int *code, const char **msg);

/** The message of a done future's exception or cancellation (owned by @p cf),
 *  or NULL (none, or not done). Never blocks. Any thread. */
WEFT_API const char *weft_cfuture_message(weft_cfuture_t *cf);

/** Await the concurrent future from a task on any loop. @return as weft_await
 *  (result borrowed from @p cf; the error's message through
 *  weft_error_message()). If the task is cancelled while waiting, @p cf is
 *  cancelled too. */
WEFT_API int weft_cfuture_await(weft_cfuture_t *cf, weft_value_t *out);

/** Future.cancel(). For a task's future: requests cancellation of the task,
 *  @return 1 if it was not done yet (it ends cancelled, or not, as the task
 *  decides). For a submitted call: 1 if it was still queued (it will never
 *  run; the future is cancelled), 0 if it is running or done (as
 *  concurrent.futures). For weft_cfuture_new's: 1 and cancelled if pending.
 *  0 if already done, WEFT_EINVAL. Any thread. */
WEFT_API int weft_cfuture_cancel(weft_cfuture_t *cf);

/** True once done (result, error or cancelled). Any thread. */
WEFT_API bool weft_cfuture_done(weft_cfuture_t *cf);
/** True if it ended cancelled. Any thread. */
WEFT_API bool weft_cfuture_cancelled(weft_cfuture_t *cf);

/** Register fn(cf, arg) to run once the future is done: on the thread that
 *  completes it, or at once on the calling thread if already done. Any thread.
 *  @return 0, WEFT_EINVAL, WEFT_ENOMEM. */
WEFT_API int weft_cfuture_add_done_callback(weft_cfuture_t *cf, void (*fn)(weft_cfuture_t *cf, void *arg),
                                            void *arg);

/** Release the caller's reference. Any thread. */
WEFT_API void weft_cfuture_release(weft_cfuture_t *cf);

/* ---- blocking work: to_thread, executors ----------------------------------- */

/** A blocking function run on a pool thread: same shape as a coroutine, but
 *  it must not await. */
typedef int (*weft_blocking_fn)(void *arg, weft_value_t *result);

typedef struct weft_executor weft_executor_t;

/**
 * A bounded pool of threads for blocking calls (ThreadPoolExecutor), separate
 * from libuv's threadpool (which stays free for file and DNS work). Threads
 * start on demand up to @p max_threads (0 = 64) and exit after 10 s idle.
 * @return 0, WEFT_EINVAL, WEFT_ENOMEM. Any thread.
 */
WEFT_API int weft_executor_new(int max_threads, weft_executor_t **out);

/** Shut the executor down (Executor.shutdown(wait=True)): new calls are
 *  refused (WEFT_ESHUTDOWN), calls already queued still run and running ones
 *  finish; joins the threads and frees it. Any thread except the executor's
 *  own. */
WEFT_API void weft_executor_free(weft_executor_t *ex);

/**
 * Run fn(arg) on @p ex (NULL = the runtime's or the process's default pool)
 * and await its outcome from the current task (loop.run_in_executor). fn runs
 * in a copy of the caller's context variables (asyncio.to_thread). If the
 * awaiting task is cancelled, it gets WEFT_ECANCELED at once while the call
 * finishes in its thread and its result is dropped (dtor called). A message fn
 * attaches to its error with weft_raise() reaches the awaiter through
 * weft_error_message(). To start the call now and await it later, use
 * weft_run_in_executor_future.
 * @return fn's status, WEFT_ECANCELED, WEFT_ENOTCORO, WEFT_EINVAL, WEFT_ENOMEM,
 * WEFT_ESHUTDOWN.
 */
WEFT_API int weft_run_in_executor(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_value_t *out);

/** loop.set_default_executor(ex): the pool weft_to_thread, run_in_executor
 *  and submit use on @p loop when given no executor (NULL restores weft's
 *  default: the runtime's pool, or the process's for a standalone loop).
 *  Borrowed: @p ex must outlive its use by the loop. @return 0, WEFT_EINVAL,
 *  WEFT_ECLOSED, WEFT_EWRONGLOOP. Loop thread. */
WEFT_API int weft_loop_set_default_executor(weft_loop_t *loop, weft_executor_t *ex);

/** asyncio.to_thread: weft_run_in_executor on the default pool. */
WEFT_API int weft_to_thread(weft_blocking_fn fn, void *arg, weft_value_t *out);

/**
 * weft_run_in_executor with an argument destructor: once the call was queued
 * (it did not return WEFT_ENOTCORO, WEFT_EINVAL, WEFT_ENOMEM or
 * WEFT_ESHUTDOWN before queueing; then the caller still owns @p arg),
 * arg_dtor(arg) is called exactly once, on the pool thread right after fn
 * returned, also when the awaiting task was cancelled meanwhile (which is
 * when handing @p arg to the call matters: the caller may be gone by then).
 * @p arg_dtor may be NULL. @return as weft_run_in_executor.
 */
WEFT_API int weft_run_in_executor_dtor(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_dtor_t arg_dtor,
                                       weft_value_t *out);

/** weft_to_thread with an argument destructor (see weft_run_in_executor_dtor). */
WEFT_API int weft_to_thread_dtor(weft_blocking_fn fn, void *arg, weft_dtor_t arg_dtor, weft_value_t *out);

/**
 * The worker index (0 .. workers-1) of @p loop in its runtime, or -1 for a
 * standalone loop or NULL. Any thread.
 */
WEFT_API int weft_loop_index(const weft_loop_t *loop);

/** The worker index of the loop running on this thread (the current task's
 *  worker: a task never changes loop once started), or -1 when no runtime
 *  loop runs here. Any thread. */
WEFT_API int weft_current_worker(void);

/**
 * Executor.submit(fn, arg): queue fn(arg) on @p ex (NULL: the default pool of
 * the runtime whose loop runs on this thread, else the process's) and return
 * at once with a concurrent future for its outcome in *out (one reference).
 * fn runs in a copy of the caller's context variables. It may attach a message
 * to its error with weft_raise(); weft_cfuture_exception() reads it. Any
 * thread, including plain threads and loop threads (never blocks).
 * @return 0, WEFT_EINVAL (fn or out NULL), WEFT_ENOMEM, WEFT_ESHUTDOWN (the
 * executor is shutting down).
 */
WEFT_API int weft_executor_submit(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_cfuture_t **out);

/**
 * asyncio.wrap_future(cf): a new future of the running loop (*out, one
 * reference) that completes like @p cf, whichever way cf was made (task,
 * submit, weft_cfuture_new): same result (borrowed from @p cf: keep your
 * reference to cf while you use it), error code and message, or cancellation.
 * Cancelling the loop future (for instance because the task awaiting it is
 * cancelled) cancels @p cf. Loop thread. @return 0, WEFT_EINVAL, WEFT_ENOLOOP,
 * WEFT_ENOMEM.
 */
WEFT_API int weft_wrap_future(weft_cfuture_t *cf, weft_future_t **out);

/**
 * loop.run_in_executor(ex, fn, arg) as asyncio has it: start fn(arg) now and
 * return a future of the running loop (*out, one reference) to await later
 * (or never). Its result is owned by the future (moved from the call; the
 * dtor runs with the future). Errors carry fn's weft_raise message.
 * Cancelling the future cancels the call if it has not started (see
 * weft_cfuture_cancel). Loop thread (need not be in a task). @return 0,
 * WEFT_EINVAL, WEFT_ENOLOOP, WEFT_ENOMEM, WEFT_ESHUTDOWN.
 */
WEFT_API int weft_run_in_executor_future(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_future_t **out);

#ifdef __cplusplus
}
#endif
#endif
