/**
 * @file weft/debug.h
 * @brief Debug mode (asyncio's debug=True), task dumps and the log hook.
 *
 * Debug mode is per loop: weft_loop_set_debug(), weft_runtime_opts_t.debug,
 * weft_run_opts_t.debug, or the environment variable WEFT_DEBUG=1 (read when a
 * loop is created). In debug mode weft:
 *  - warns when a callback or a task step holds its loop longer than the slow
 *    callback duration (default 0.1 s), naming the task and where it was created;
 *  - warns, while it is still happening, when a task step has not yielded for
 *    that long (a blocking call on the loop thread), from a watchdog thread;
 *  - warns when a future or a task you kept a reference to is freed without its
 *    outcome ever being looked at (never awaited);
 *  - names the offending function when a loop-bound call is made from a thread
 *    that does not run the loop;
 *  - dumps every task of the runtime to stderr on SIGUSR1.
 * "Task exception was never retrieved" is reported in every mode.
 * With debug mode off none of this runs: each costs one predictable branch.
 *
 * Creation sites and suspension points are printed as C backtraces
 * (glibc backtrace_symbols): link your program with -rdynamic to see function
 * names instead of bare addresses.
 */
#ifndef WEFT_DEBUG_H
#define WEFT_DEBUG_H

#include <stdio.h>

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum weft_log_level { WEFT_LOG_INFO = 0, WEFT_LOG_WARNING = 1, WEFT_LOG_ERROR = 2 } weft_log_level_t;

/** A log hook: receives every warning weft prints (one complete message,
 *  possibly several lines, no trailing newline). May run on any weft thread,
 *  including the debug watchdog thread. */
typedef void (*weft_log_fn)(weft_log_level_t level, const char *message, void *ud);

/** Route weft's warnings to @p fn (NULL restores the default: stderr).
 *  Process-wide. Any thread; set it before starting loops. */
WEFT_API void weft_set_log_handler(weft_log_fn fn, void *ud);

/** Turn debug mode on or off for @p loop. Loop thread (or before it runs).
 *  @return 0, WEFT_EINVAL. */
WEFT_API int weft_loop_set_debug(weft_loop_t *loop, bool on);
/** True if @p loop is in debug mode. Any thread. */
WEFT_API bool weft_loop_get_debug(const weft_loop_t *loop);
/** The slow callback threshold in seconds (asyncio slow_callback_duration,
 *  default 0.1). @return 0, WEFT_EINVAL (NULL, negative or NaN). */
WEFT_API int weft_loop_set_slow_callback_duration(weft_loop_t *loop, double seconds);

/**
 * Print every task of @p loop (state, name, loop, what it awaits, creation site
 * in debug mode, and the C backtrace where it is suspended) to @p fp. Loop
 * thread, or a loop that is not running. @return the number of tasks printed,
 * or WEFT_EINVAL / WEFT_EWRONGLOOP.
 */
WEFT_API int weft_loop_dump_tasks(weft_loop_t *loop, FILE *fp);

struct weft_runtime;
/**
 * Print every task of every loop of @p rt to @p fp: each loop prints its own
 * tasks on its own thread; the caller waits up to 1 s per loop (a loop that
 * does not answer is named as blocked). Any thread. @return the number of
 * tasks printed, or WEFT_EINVAL.
 */
WEFT_API int weft_runtime_dump_tasks(struct weft_runtime *rt, FILE *fp);

#ifdef __cplusplus
}
#endif
#endif
