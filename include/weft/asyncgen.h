/**
 * @file weft/asyncgen.h
 * @brief Async generators (`async def` with `yield`): a coroutine that hands
 *        values to its consumer one at a time.
 *
 *     // async def ticker(n):
 *     //     try:
 *     //         for i in range(n):
 *     //             await asyncio.sleep(0.1)
 *     //             yield i
 *     //     finally:
 *     //         await cleanup()
 *     static int ticker(weft_asyncgen_t *gen, void *arg)
 *     {
 *         int n = *(int *)arg, rc = 0;
 *         for (int i = 0; i < n && rc == 0; i++) {
 *             if ((rc = weft_sleep(0.1)) == 0)
 *                 rc = weft_asyncgen_yield(gen, WEFT_VALUE_INT(i), NULL);
 *         }
 *         int crc = cleanup();             // "finally": may await, even after aclose()
 *         return rc < 0 ? rc : crc;        // 0: exhausted (StopAsyncIteration)
 *     }
 *
 *     // async for i in ticker(3): print(i)
 *     weft_asyncgen_t *g;
 *     weft_asyncgen_new(&g, ticker, &n, NULL);
 *     int rc;
 *     weft_value_t v;
 *     WEFT_ASYNC_FOR(rc, weft_asyncgen_anext(g, &v)) printf("%lld\n", (long long)v.i);
 *     weft_asyncgen_aclose(g);             // what `async for` leaves to you in C
 *     weft_asyncgen_release(g);
 *
 * Semantics (PEP 525, CPython 3.12):
 *  - Nothing runs until the first anext/asend. Each request runs the body
 *    until its next weft_asyncgen_yield (the request returns the yielded
 *    value) or until it returns (the request returns WEFT_ESTOPASYNCITER, or
 *    the body's error with its message). Later requests return
 *    WEFT_ESTOPASYNCITER.
 *  - asend(v): the pending yield returns 0 with @c v in its @c sent. athrow(code,
 *    msg): the pending yield returns @c code (message through
 *    weft_error_message()). aclose(): the pending yield returns WEFT_EGENEXIT;
 *    the body should clean up (awaiting is allowed) and return; yielding again
 *    is "async generator ignored GeneratorExit".
 *  - Cancellation: if the consumer task is cancelled while a request runs the
 *    body, the body's current await returns WEFT_ECANCELED (the CancelledError
 *    is thrown into the generator), and the request returns what the body
 *    then does (WEFT_ECANCELED if it returns it; a value if it catches it and
 *    yields).
 *  - Finalisation (shutdown_asyncgens): weft_run, weft_runner_close and
 *    weft_loop_shutdown_asyncgens close every generator still suspended at a
 *    yield: its yield returns WEFT_EGENEXIT, as for aclose(). A generator whose
 *    last reference is released while suspended at a yield is closed the same
 *    way in the background (asyncio's finaliser hook).
 *
 * One difference C forces on the design: the body runs in a task of its own
 * (weft_current_task() inside it is that task, not the consumer; it starts
 * with a copy of the first consumer's context variables), since a stackful
 * coroutine's frames live on their own stack. The consumer still waits for
 * every step exactly as asyncio's does, and cancellation crosses over as
 * described above.
 *
 * Threads: a generator belongs to the loop of the thread that created it;
 * every function here must be called on that loop's thread; anext, asend,
 * athrow, aclose from inside a task (WEFT_ENOTCORO otherwise).
 */
#ifndef WEFT_ASYNCGEN_H
#define WEFT_ASYNCGEN_H

#include "common.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_asyncgen weft_asyncgen_t;

/** The body of an async generator: yields with weft_asyncgen_yield(@p gen,
 *  ...), returns 0 when exhausted or a negative code (its error). */
typedef int (*weft_asyncgen_fn)(weft_asyncgen_t *gen, void *arg);

/**
 * Create an async generator running fn(gen, arg) on the running loop (calling
 * an `async def` generator function): nothing runs yet. *out receives one
 * reference (weft_asyncgen_release). @p opts names the generator's task and
 * sets its stack (eager_start is ignored). @return 0, WEFT_EINVAL (out or fn
 * NULL), WEFT_ENOLOOP, WEFT_ENOMEM. Loop thread.
 */
WEFT_API int weft_asyncgen_new(weft_asyncgen_t **out, weft_asyncgen_fn fn, void *arg, const weft_task_opts_t *opts);

/** Drop a reference. The last one on a generator suspended at a yield closes
 *  it in the background (its yield returns WEFT_EGENEXIT); its memory goes
 *  once its body has returned. NULL is ignored. Loop thread. */
WEFT_API void weft_asyncgen_release(weft_asyncgen_t *gen);

/**
 * `await anext(gen)` / `gen.__anext__()`: run the body to its next yield.
 * @return 0 with the yielded value moved to *out (you own it if its dtor is
 * set; out may be NULL: then it is disposed of), WEFT_ESTOPASYNCITER (the
 * body returned 0 now or earlier), the body's error code (its message through
 * weft_error_message(); the generator is then finished), WEFT_ECANCELED,
 * WEFT_EBUSY (another request is running: "anext(): asynchronous generator
 * is already running"), WEFT_EINVAL (gen NULL), WEFT_ENOTCORO, WEFT_EWRONGLOOP
 * (called from a task of another loop), WEFT_ENOMEM.
 */
WEFT_API int weft_asyncgen_anext(weft_asyncgen_t *gen, weft_value_t *out);

/** `await gen.asend(value)`: as anext, and the pending yield receives @p value
 *  in its @c sent (borrowed by the body). The first request only starts the
 *  body: a value sent then is dropped (asyncio requires None there). */
WEFT_API int weft_asyncgen_asend(weft_asyncgen_t *gen, weft_value_t value, weft_value_t *out);

/**
 * `await gen.athrow(exc)`: the pending yield returns @p code (negative) with
 * @p msg (copied, may be NULL) as the body's error message; returns what the
 * body does next, as anext (its code if it does not catch it). On a
 * generator not started or finished, returns @p code at once (the body never
 * sees it). WEFT_EINVAL for code >= 0 or gen NULL.
 */
WEFT_API int weft_asyncgen_athrow(weft_asyncgen_t *gen, int code, const char *msg, weft_value_t *out);

/**
 * `await gen.aclose()`: the pending yield returns WEFT_EGENEXIT; waits until
 * the body returned (its cleanup may await). @return 0 (closed: the body
 * returned 0, WEFT_EGENEXIT or WEFT_ESTOPASYNCITER), the body's other error,
 * WEFT_EINVALSTATE if the body yielded again ("async generator ignored
 * GeneratorExit"; that yield returns WEFT_EGENEXIT again, so the body gets
 * another chance to return), WEFT_ECANCELED, WEFT_EBUSY,
 * WEFT_EINVAL, WEFT_ENOTCORO. A generator never started, or finished, is
 * simply marked closed: 0, also on a second aclose() (Python's aclose is
 * idempotent).
 */
WEFT_API int weft_asyncgen_aclose(weft_asyncgen_t *gen);

/**
 * Inside the body: `x = yield value`. Hands @p value to the consumer's
 * pending request (moved: the consumer owns it) and waits for the next
 * request. @return 0 (anext, or asend with its value in *sent; sent may be
 * NULL), the code of an athrow (its message as the task's error message),
 * WEFT_EGENEXIT (aclose, or finalisation: return after cleaning up),
 * WEFT_EINVAL (gen NULL, or not called from @p gen's own body). On an error
 * return @p value is not handed over (it stays the caller's).
 */
WEFT_API int weft_asyncgen_yield(weft_asyncgen_t *gen, weft_value_t value, weft_value_t *sent);

/** True while the body runs a request (ag_running). */
WEFT_API bool weft_asyncgen_running(const weft_asyncgen_t *gen);
/** True once the body has returned, or the generator was closed before it started. */
WEFT_API bool weft_asyncgen_finished(const weft_asyncgen_t *gen);

/**
 * loop.shutdown_asyncgens(): aclose() every generator of the running loop
 * that is suspended at a yield, one after the other. An error a generator
 * raises while closing is reported to the exception handler ("an error
 * occurred during closing of asynchronous generator"). weft_run and
 * weft_runner_close do this for you. @return 0, WEFT_ENOTCORO, WEFT_ECANCELED.
 */
WEFT_API int weft_loop_shutdown_asyncgens(void);

#ifdef __cplusplus
}
#endif
#endif
