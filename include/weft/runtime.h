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
 *  - stealable (weft_spawn): an idle loop may take the task before it first
 *    runs; once started it stays on that loop for life, so its code never
 *    changes thread across an await (errno and thread-locals stay valid).
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
    uint64_t overflows;        /**< spawns that overflowed the local queue into the injection queue */
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
 * outcome like weft_run (owned result moved to *out). A runtime runs once.
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
 * loop of a runtime: it is queued on the current loop, and an idle loop may
 * take it before it first runs. On a standalone loop, or with
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
 * @return 0, WEFT_EINVAL, WEFT_ENOMEM, WEFT_ECLOSED. Any thread.
 */
WEFT_API int weft_spawn_on(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                           const weft_task_opts_t *opts);

/** Snapshot of worker @p i's counters. Any thread (values read relaxed).
 *  @return 0 or WEFT_EINVAL. */
WEFT_API int weft_runtime_stats(const weft_runtime_t *rt, int i, weft_loop_stats_t *out);

/** Print every worker's counters as a table to @p fp. Any thread. */
WEFT_API void weft_runtime_print_stats(const weft_runtime_t *rt, FILE *fp);

/* ---- concurrent futures: run_coroutine_threadsafe --------------------------- */

/** A thread-safe future (concurrent.futures.Future) tied to a task. */
typedef struct weft_cfuture weft_cfuture_t;

/**
 * Submit fn(arg) from any thread, including threads weft did not create
 * (asyncio.run_coroutine_threadsafe). The task runs on @p loop if given, else
 * anywhere in @p rt (through the injection queue). *out receives a concurrent
 * future (release with weft_cfuture_release). @return 0, WEFT_EINVAL,
 * WEFT_ENOMEM, WEFT_ECLOSED (runtime shut down / loop closed). The task runs
 * in a copy of the submitter's context variables (empty from a plain thread).
 */
WEFT_API int weft_run_coroutine_threadsafe(weft_runtime_t *rt, weft_loop_t *loop, weft_coro_fn fn, void *arg,
                                           const weft_task_opts_t *opts, weft_cfuture_t **out);

/**
 * Block the calling plain thread until the task is done, at most @p timeout
 * seconds (negative = forever): 0 with the result (borrowed) in *out, the
 * task's error code, WEFT_ECANCELED, or WEFT_ETIMEDOUT. Must not be called on a
 * loop thread (it would block the loop): WEFT_EWRONGLOOP there; use
 * weft_cfuture_await instead. Any other thread.
 */
WEFT_API int weft_cfuture_result(weft_cfuture_t *cf, double timeout, weft_value_t *out);

/** Await the concurrent future from a task on any loop. @return as weft_await. */
WEFT_API int weft_cfuture_await(weft_cfuture_t *cf, weft_value_t *out);

/** Cancel: requests cancellation of the task. @return 1 if it was not done yet,
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

/** Shut the executor down: queued calls not started are dropped (their
 *  awaiters get WEFT_ECANCELED), running ones finish; joins the threads and
 *  frees it. Any thread except the executor's own. */
WEFT_API void weft_executor_free(weft_executor_t *ex);

/**
 * Run fn(arg) on @p ex (NULL = the runtime's or the process's default pool)
 * and await its outcome from the current task (loop.run_in_executor). fn runs
 * in a copy of the caller's context variables (asyncio.to_thread). If the
 * awaiting task is cancelled, it gets WEFT_ECANCELED at once while the call
 * finishes in its thread and its result is dropped (dtor called).
 * @return fn's status, WEFT_ECANCELED, WEFT_ENOTCORO, WEFT_EINVAL, WEFT_ENOMEM,
 * WEFT_ESHUTDOWN.
 */
WEFT_API int weft_run_in_executor(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_value_t *out);

/** asyncio.to_thread: weft_run_in_executor on the default pool. */
WEFT_API int weft_to_thread(weft_blocking_fn fn, void *arg, weft_value_t *out);

#ifdef __cplusplus
}
#endif
#endif
