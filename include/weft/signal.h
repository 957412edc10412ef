/**
 * @file weft/signal.h
 * @brief Unix signals: asyncio's loop.add_signal_handler, an awaitable "wait
 *        for one of these signals" usable from any task of a runtime, and a
 *        graceful-stop helper for servers (first signal: drain, second: cancel).
 *
 * Signals are caught with libuv's signal watchers: the process-wide handler
 * only writes to a pipe, and the weft callback or waiter runs later on its
 * loop's thread, in an ordinary loop iteration. So a signal may hit any thread
 * (a busy worker, the blocking pool, a plain thread) and still reaches the
 * loop that registered for it. Several loops may watch the same signal: each
 * of them is told. While no watcher exists for a signal, it has the action it
 * had before (SIG_DFL usually: SIGINT and SIGTERM end the process); keep a
 * watcher (weft_sigwatch_t) for the whole time a signal must not be lost.
 *
 * **Errors.** A bad signal number (below 1, at or above NSIG, or SIGKILL /
 * SIGSTOP, which cannot be caught) gives WEFT_EINVAL (asyncio's ValueError /
 * RuntimeError). Failures of libuv's signal setup pass through as negative
 * errno codes.
 *
 * **Loops closing.** weft_loop_close() removes the loop's signal handlers
 * (asyncio's loop.close does the same). A weft_sigwatch_t must be freed before
 * its loop closes.
 */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loop.add_signal_handler ---------------------------------------------------- */

/**
 * loop.add_signal_handler(signum, callback, *args): run cb(arg) on @p loop
 * (scheduled like weft_call_soon, so a negative return goes to the loop's
 * exception handler) every time @p signum arrives. A handler already set for
 * @p signum on this loop is replaced. Loop thread (or the owning thread of a
 * loop that is not running).
 * @return 0; WEFT_EINVAL (NULL loop or cb, bad signal number); WEFT_ECLOSED;
 * WEFT_EWRONGLOOP (another thread); WEFT_ENOMEM; a libuv error.
 */
WEFT_API int weft_loop_add_signal_handler(weft_loop_t *loop, int signum, weft_callback_t cb, void *arg);

/**
 * loop.remove_signal_handler(signum): @return 1 if a handler was removed, 0
 * if none was set (asyncio's True/False), WEFT_EINVAL (NULL loop, bad signal
 * number), WEFT_EWRONGLOOP. Once the last watcher of a signal is gone, the
 * signal gets back its earlier action. Loop thread.
 */
WEFT_API int weft_loop_remove_signal_handler(weft_loop_t *loop, int signum);

/* ---- awaiting signals -------------------------------------------------------------- */

/** A set of signals being watched, with the signals received and not yet
 *  awaited queued inside (none is lost between two waits). */
typedef struct weft_sigwatch weft_sigwatch_t;

/**
 * Start watching @p n signals (@p signums) on the running loop. From then on
 * each arrival is queued in the watcher until weft_sigwatch_wait() takes it.
 * Loop thread (from a task or a callback).
 * @return 0; WEFT_EINVAL (NULL pointers, n == 0, a bad signal number);
 * WEFT_ENOLOOP; WEFT_ENOMEM; a libuv error. Free with weft_sigwatch_free().
 */
WEFT_API int weft_sigwatch_new(const int *signums, size_t n, weft_sigwatch_t **out);

/**
 * Wait for the next signal the watcher caught (the oldest one queued, at once
 * if one is) and store its number in *signum (may be NULL). Awaiting, from a
 * task on any loop of the runtime (or any standalone loop): the watcher's
 * loop need not be the caller's. Cancellable: a cancelled wait takes nothing.
 * @return 0; WEFT_ECANCELED; WEFT_EINVAL; WEFT_ENOTCORO; WEFT_ESHUTDOWN (the
 * watcher is being freed).
 */
WEFT_API int weft_sigwatch_wait(weft_sigwatch_t *w, int *signum);

/** Take a queued signal without waiting: 0 and *signum set, or
 *  WEFT_EQUEUEEMPTY when none is queued, WEFT_EINVAL. Any thread. */
WEFT_API int weft_sigwatch_poll(weft_sigwatch_t *w, int *signum);

/**
 * Stop watching and free the watcher. No task may be inside
 * weft_sigwatch_wait() any more (cancel and await it first). On the thread of
 * the loop that created it. NULL is ignored. @return 0, WEFT_EWRONGLOOP
 * (nothing done).
 */
WEFT_API int weft_sigwatch_free(weft_sigwatch_t *w);

/**
 * Wait for one of @p n signals once: a watcher made, awaited and freed (a
 * signal that arrives before this call or after it returns is not seen: use
 * a weft_sigwatch_t to bridge the gaps). *signum (may be NULL) receives the
 * signal's number. Awaiting, from a task on any loop.
 * @return 0; WEFT_ECANCELED; WEFT_EINVAL (bad signal number, n == 0);
 * WEFT_ENOTCORO; WEFT_ENOMEM; a libuv error.
 */
WEFT_API int weft_signal_wait(const int *signums, size_t n, int *signum);

/* ---- graceful stop -------------------------------------------------------------------- */

typedef struct weft_server weft_server_t;

/** Options of weft_serve_until_signal (zero fields: defaults). */
typedef struct weft_graceful_opts {
    const int *signals;          /**< signals that ask for a stop; NULL = SIGINT and SIGTERM */
    size_t nsignals;
    weft_server_t *const *servers; /**< servers to stop (may be 0) */
    size_t nservers;
    double grace;                /**< seconds the handlers get to finish after the first signal;
                                      0 = 30 s, negative = no limit */
    /** Called on the caller's loop when the first signal arrives, after the
     *  servers stopped accepting (stop your other producers there); may be NULL. */
    weft_callback_t on_stop;
    /** Called when the stop is forced (second signal or grace expired), before
     *  the handlers still running are cancelled (cancel your own tasks there); may be NULL. */
    weft_callback_t on_force;
    void *arg;                   /**< argument of on_stop and on_force */
} weft_graceful_opts_t;

/** What weft_serve_until_signal saw. */
typedef struct weft_graceful_report {
    int signum;                  /**< the first signal */
    bool second_signal;          /**< a second signal forced the stop */
    bool deadline;               /**< the grace period expired */
    int cancelled;               /**< handlers cancelled when the stop was forced */
} weft_graceful_report_t;

/**
 * Serve until a signal, then stop gracefully: wait for one of the signals;
 * close every server (stop accepting; idle keep-alive connections are told,
 * see weft_server_shutdown) and call on_stop; let the handlers finish for up
 * to @c grace seconds. A second signal during that time, or the end of the
 * grace period, forces the stop: on_force is called and every handler still
 * running is cancelled; the call returns once all have ended. The signals
 * stay caught until it returns (a third signal is absorbed). Awaiting, from a
 * task on any loop of the runtime (the watchers live on the caller's loop).
 * @return 0 (report in *out, may be NULL); WEFT_ECANCELED (the calling task
 * was cancelled: servers already closed stay closed); WEFT_EINVAL (bad signal
 * number, NULL servers with nservers > 0); WEFT_ENOTCORO; WEFT_ENOMEM.
 */
WEFT_API int weft_serve_until_signal(const weft_graceful_opts_t *opts, weft_graceful_report_t *out);

#ifdef __cplusplus
}
#endif
#endif
