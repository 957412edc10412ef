/**
 * @file weft/common.h
 * @brief Error codes, values and the coroutine signature shared by every part of weft.
 *
 * Errors are negative int codes, libuv-style. Codes that have an errno
 * equivalent use it (WEFT_EINVAL == -EINVAL, the same value libuv uses for
 * UV_EINVAL), so codes coming out of libuv I/O pass through unchanged; weft's
 * own conditions use the range -5001 .. -5099 (outside errno's range and
 * outside libuv's getaddrinfo codes). Any other negative value a
 * coroutine returns is the user's own error code and is passed through
 * untouched. 0 is success.
 */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(WEFT_STATIC_DEFINE)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* ---- error codes ------------------------------------------------------------ */
#define WEFT_EINVAL        (-EINVAL)     /**< bad argument (NULL where an object is needed, bad number) */
#define WEFT_ENOMEM        (-ENOMEM)     /**< out of memory (or of stack mappings) */
#define WEFT_ECANCELED     (-ECANCELED)  /**< asyncio.CancelledError: the awaited thing or the task was cancelled */
#define WEFT_ETIMEDOUT     (-ETIMEDOUT)  /**< asyncio.TimeoutError: a timeout scope or wait_for expired */
#define WEFT_EBUSY         (-EBUSY)      /**< the loop is running (close, second run) */
#define WEFT_EOVERFLOW     (-EOVERFLOW)  /**< a counter would pass its largest value (asyncio: ValueError) */
#define WEFT_EDEADLK       (-EDEADLK)    /**< await cycle: awaiting would close a cycle of tasks awaiting each other */
#define WEFT_EINVALSTATE   (-5001)       /**< asyncio.InvalidStateError: result not ready, or set twice */
#define WEFT_ENOLOOP       (-5002)       /**< no running event loop in this thread */
#define WEFT_ENOTCORO      (-5003)       /**< an awaiting call made outside a coroutine (no current task) */
#define WEFT_ESELFAWAIT    (-5004)       /**< a task tried to await itself */
#define WEFT_ECLOSED       (-5005)       /**< the loop (or runtime) is closed */
#define WEFT_ENESTED       (-5006)       /**< weft_run / run_until_complete from inside a running loop */
#define WEFT_ENOTTASK      (-5007)       /**< a task-only call was given a plain future */
#define WEFT_EWRONGLOOP    (-5008)       /**< the object belongs to another loop / thread */
#define WEFT_ESTOPPED      (-5009)       /**< the loop stopped before the future completed */
#define WEFT_EGROUP        (-5010)       /**< ExceptionGroup: several errors, see the group's list */
#define WEFT_EQUEUEFULL    (-5011)       /**< asyncio.QueueFull */
#define WEFT_EQUEUEEMPTY   (-5012)       /**< asyncio.QueueEmpty */
#define WEFT_EBROKEN       (-5013)       /**< asyncio.BrokenBarrierError */
#define WEFT_ESHUTDOWN     (-5014)       /**< asyncio.QueueShutDown / executor or runtime shut down */
#define WEFT_ENOTENTERED   (-5015)       /**< a scope (timeout, TaskGroup) used before enter or after exit */
#define WEFT_ECALLBACK     (-5016)       /**< a callback failed (reported to the exception handler) */
#define WEFT_ESTOPASYNCITER (-5017)      /**< StopAsyncIteration: an async generator or iteration is exhausted */
#define WEFT_EGENEXIT      (-5018)       /**< GeneratorExit: thrown into an async generator by aclose() */

/* TLS (weft/tls.h); each comes with OpenSSL's reason as the error message. */

/** A TLS protocol failure (ssl.SSLError): the peer sent something that is not
 *  TLS ("wrong version number", "record layer failure"), no common protocol
 *  version or cipher, a fatal alert from the peer, bad certificate or key
 *  material given to weft_tls_new, and so on. */
#define WEFT_ETLS (-5080)
/** Certificate verification failed (ssl.SSLCertVerificationError): the peer's
 *  chain is untrusted (unknown CA, self-signed), expired, not yet valid or
 *  malformed; or the peer rejected ours (a "bad certificate", "unknown ca" or
 *  "certificate unknown" alert). */
#define WEFT_ECERT (-5081)
/** The peer's certificate is valid but does not name server_hostname
 *  (ssl.CertificateError / "Hostname mismatch"). */
#define WEFT_EHOSTMISMATCH (-5082)
/** The peer closed the TCP connection without the TLS close_notify alert:
 *  during the handshake, or after data (a possible truncation). */
#define WEFT_ETLSEOF (-5083)

/**
 * Human-readable text for an error code (weft's own codes, errno/libuv codes,
 * or "unknown error N" for user codes). Never NULL; the string is static.
 * Any thread.
 */
WEFT_API const char *weft_strerror(int code);

/** Symbolic name of a code ("WEFT_ECANCELED", "EPIPE", ...). Never NULL. Any thread. */
WEFT_API const char *weft_err_name(int code);

/**
 * "No timeout" (asyncio's None) for every timeout and deadline argument in
 * weft: +infinity. It is never spelled as a negative number: a negative
 * timeout or delay means "expire now", as in asyncio (wait_for, wait,
 * as_completed, timeout, sleep, call_later). NaN is WEFT_EINVAL where a
 * timeout is taken.
 */
#define WEFT_NO_TIMEOUT ((double)INFINITY)

/**
 * `async for` in C. WEFT_ASYNC_FOR(rc, call) repeats its body while @p call
 * returns 0 (an item); afterwards rc is WEFT_ESTOPASYNCITER (the normal end)
 * or the error that ended the iteration:
 *
 *     WEFT_ASYNC_FOR(rc, weft_asyncgen_anext(gen, &v)) { use(v); }   // weft/asyncgen.h
 *     if (rc != WEFT_ESTOPASYNCITER) return rc;
 *
 * WEFT_ASYNC_FOR_EACH(rc, call) runs its body for every outcome, errors
 * included, until @p call returns WEFT_ESTOPASYNCITER (as_completed, where each
 * item is a future's outcome). `break` leaves either loop.
 */
#define WEFT_ASYNC_FOR(rc, call) for (; ((rc) = (call)) == 0;)
#define WEFT_ASYNC_FOR_EACH(rc, call) for (; ((rc) = (call)) != WEFT_ESTOPASYNCITER;)

/* ---- values --------------------------------------------------------------------- */

/** Destructor for an owned pointer result. */
typedef void (*weft_dtor_t)(void *p);

/**
 * A task or future result: one pointer-sized value, interpreted by the user.
 * If @c dtor is set, the value owns @c p and weft calls dtor(p) when the
 * future holding it is freed (unless the value was taken with
 * weft_future_take_result()). Results copied out by weft_await() or
 * weft_future_result() are borrowed: their dtor field is cleared in the copy.
 */
typedef struct weft_value {
    union {
        int64_t i;
        uint64_t u;
        double d;
        void *p;
    };
    weft_dtor_t dtor;
} weft_value_t;

#define WEFT_VALUE_INT(x) ((weft_value_t){ .i = (int64_t)(x), .dtor = NULL })
#define WEFT_VALUE_PTR(x) ((weft_value_t){ .p = (void *)(x), .dtor = NULL })
#define WEFT_VALUE_OWNED(x, fn) ((weft_value_t){ .p = (void *)(x), .dtor = (fn) })

/**
 * A coroutine: a plain C function run on its own stack by a task. It returns 0
 * on success (optionally storing a value in *result, which is never NULL) or a
 * negative error code, which becomes the task's exception (WEFT_ECANCELED makes
 * the task end cancelled). Calling another coroutine function directly is
 * asyncio's `await coro()`: it runs inside the current task.
 */
typedef int (*weft_coro_fn)(void *arg, weft_value_t *result);

/** A plain callback run by the loop (call_soon, call_later, ...). A negative
 *  return is reported to the loop's exception handler and the loop goes on. */
typedef int (*weft_callback_t)(void *arg);

#ifdef __cplusplus
}
#endif
#endif
