/**
 * @file weft/runner.h
 * @brief asyncio.Runner: several coroutines run one after another on one loop.
 *
 *     weft_runner_t *r;
 *     weft_runner_new(NULL, &r);             // with asyncio.Runner() as runner:
 *     weft_runner_run(r, setup, &cfg, NULL, NULL);   //   runner.run(setup(cfg))
 *     weft_runner_run(r, serve, &cfg, NULL, NULL);   //   runner.run(serve(cfg))
 *     weft_runner_close(r);                  // (the with block's end)
 *     weft_runner_free(r);
 *
 * Tasks a run leaves behind keep their place on the loop and go on running
 * during the next run. Every run's main task runs in the runner's own context
 * (a copy of the creating thread's context variables taken by
 * weft_runner_new), so context variables set in one run are seen by the next,
 * as with asyncio.Runner. The loop is a standalone loop owned by the thread
 * that created the runner, with its own default executor (to_thread,
 * run_in_executor) that close() shuts down. Unlike asyncio, run() does not
 * install a SIGINT handler: use weft_runtime_shutdown_from_signal or your own.
 *
 * Threads: every function on the thread that created the runner, outside any
 * running loop.
 */
#ifndef WEFT_RUNNER_H
#define WEFT_RUNNER_H

#include "common.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_runner weft_runner_t;

/** Runner options (NULL: defaults). */
typedef struct weft_runner_opts {
    bool debug;   /**< debug mode on the loop (see weft/debug.h) */
} weft_runner_opts_t;

/** asyncio.Runner(debug): create a runner and its loop. @return 0,
 *  WEFT_EINVAL (out NULL), WEFT_ENESTED (a loop runs on this thread),
 *  WEFT_ENOMEM, or a libuv error. */
WEFT_API int weft_runner_new(const weft_runner_opts_t *opts, weft_runner_t **out);

/**
 * Runner.run(coro): run fn(arg) as a task (named by @p opts, else "Task-N";
 * never eager) on the runner's loop until it is done, and return its outcome
 * as weft_run does: 0 with the result moved to *out (owned by the caller; out
 * may be NULL: then it is disposed of), its error code (message through
 * weft_error_message() afterwards), WEFT_ECANCELED. Also WEFT_EINVAL (r or fn
 * NULL), WEFT_ECLOSED ("Runner is closed"), WEFT_ENESTED ("Runner.run()
 * cannot be called from a running event loop"), WEFT_ESTOPPED (weft_loop_stop
 * ended the run before the task finished: it stays on the loop).
 */
WEFT_API int weft_runner_run(weft_runner_t *r, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts,
                             weft_value_t *out);

/** Runner.get_loop(): the runner's loop (borrowed), NULL once closed or for NULL. */
WEFT_API weft_loop_t *weft_runner_get_loop(const weft_runner_t *r);

/**
 * Runner.close(): cancel every task still on the loop and run the loop until
 * they finished their cleanup (errors other than the cancellation are
 * reported: "unhandled exception during weft_runner_close() shutdown"), close
 * every async generator still suspended (shutdown_asyncgens), shut down the
 * default executor (waiting for its calls), then close the loop. A second
 * call does nothing. @return 0, WEFT_EINVAL, WEFT_ENESTED (called from a
 * running loop).
 */
WEFT_API int weft_runner_close(weft_runner_t *r);

/** Close the runner if needed and free it. NULL is ignored. */
WEFT_API void weft_runner_free(weft_runner_t *r);

#ifdef __cplusplus
}
#endif
#endif
