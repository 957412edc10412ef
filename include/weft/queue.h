/**
 * @file weft/queue.h
 * @brief asyncio.Queue, LifoQueue and PriorityQueue, with Python 3.13's
 *        shutdown(), safe across loops.
 *
 * A queue holds `void *` items. It never frees, copies or looks into an item
 * (except through the priority comparison): whoever puts an item hands it to
 * the queue, whoever gets it owns it again. Items still inside when the queue
 * is freed or shut down with immediate=true are passed to the optional drop
 * callback (weft_queue_opts_t.drop) - the only way the queue gives an item
 * back other than get - or simply forgotten if there is none.
 *
 * Tasks on different loops (stealable tasks, affine tasks on several workers,
 * standalone loops on other threads) may share a queue. A spinlock guards its
 * state; waiting getters and putters queue in FIFO order:
 *  - an item put while getters wait goes straight to the first getter;
 *  - a slot freed while putters wait is reserved for the first putter (a
 *    put_nowait from elsewhere cannot take it: no barging; full() counts
 *    reserved slots);
 *  - a getter cancelled after an item was handed to it gives the item back:
 *    to the next waiting getter, else to the front of the queue (where it
 *    would be had it never left; for a LifoQueue the bottom, for a
 *    PriorityQueue its place by priority). The cancelled get returns
 *    WEFT_ECANCELED: an item is never lost and never delivered twice. As a
 *    consequence qsize() may exceed maxsize by the number of such items given
 *    back while putters filled the queue;
 *  - a putter cancelled after a slot was reserved for it does not put its
 *    item (it stays the caller's) and passes the slot to the next putter.
 * Every waiting call returns WEFT_ECANCELED when the task is cancelled, so it
 * also works under timeouts (weft_timeout_enter, weft_wait_for).
 *
 * Threads: put/get/join must be called from a task (WEFT_ENOTCORO otherwise),
 * on any loop. Every other call (put_nowait, get_nowait, qsize, empty, full,
 * task_done, shutdown, ...) may be made from any thread, including plain
 * threads.
 *
 * Errors: asyncio.QueueFull = WEFT_EQUEUEFULL, QueueEmpty = WEFT_EQUEUEEMPTY,
 * QueueShutDown = WEFT_ESHUTDOWN, ValueError ("task_done() called too many
 * times") = WEFT_EINVAL.
 */
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_queue weft_queue_t;

/** Which end items come out of. */
typedef enum weft_queue_kind {
    WEFT_QUEUE_FIFO = 0,   /**< asyncio.Queue: first in, first out */
    WEFT_QUEUE_LIFO,       /**< asyncio.LifoQueue: last in, first out */
    WEFT_QUEUE_PRIORITY    /**< asyncio.PriorityQueue: smallest first by `cmp` */
} weft_queue_kind_t;

/** Priority comparison: negative if @p a comes out before @p b, 0 if equal,
 *  positive otherwise. Items that compare equal come out in the order they
 *  were put (stable; heapq promises no order for them). Called with the
 *  queue's spinlock held, on whatever thread puts or gets: it must be quick
 *  and must not call weft. */
typedef int (*weft_queue_cmp_fn)(const void *a, const void *b, void *ud);

/** Drop callback: receives each item the queue discards (shutdown with
 *  immediate=true, weft_queue_free). Called without the queue's lock, on the
 *  thread calling shutdown/free; it may free the item. */
typedef void (*weft_queue_drop_fn)(void *item, void *ud);

/** Queue options (zero-initialise, then set what you need). */
typedef struct weft_queue_opts {
    weft_queue_kind_t kind;
    size_t maxsize;            /**< 0 = unbounded (asyncio's maxsize <= 0) */
    weft_queue_cmp_fn cmp;     /**< required for WEFT_QUEUE_PRIORITY, else ignored */
    void *cmp_ud;
    weft_queue_drop_fn drop;   /**< optional */
    void *drop_ud;
} weft_queue_opts_t;

/** Create a queue. @return 0, WEFT_EINVAL (out or opts NULL, bad kind,
 *  priority queue without cmp), WEFT_ENOMEM. Any thread. */
WEFT_API int weft_queue_new_opts(const weft_queue_opts_t *opts, weft_queue_t **out);
/** asyncio.Queue(maxsize) (0 = unbounded). */
WEFT_API int weft_queue_new(size_t maxsize, weft_queue_t **out);
/** asyncio.LifoQueue(maxsize). */
WEFT_API int weft_lifo_queue_new(size_t maxsize, weft_queue_t **out);
/** asyncio.PriorityQueue(maxsize) ordered by @p cmp (required). */
WEFT_API int weft_priority_queue_new(size_t maxsize, weft_queue_cmp_fn cmp, void *ud, weft_queue_t **out);

/** Free a queue; items still inside go to the drop callback if there is one.
 *  NULL is ignored. @return 0, WEFT_EBUSY (nothing freed) while tasks wait on
 *  it in put/get/join. Any thread. */
WEFT_API int weft_queue_free(weft_queue_t *q);

/**
 * Queue.put(item): add an item, waiting (FIFO among putters) while the queue
 * is full. On success the queue holds the item (or a getter already has it).
 * @return 0, WEFT_ESHUTDOWN (the queue is shut down, also if that happened
 * while waiting; the item stays the caller's), WEFT_ECANCELED (not put; the
 * item stays the caller's), WEFT_ENOMEM (growing an unbounded queue failed),
 * WEFT_EINVAL, WEFT_ENOTCORO. Task on any loop.
 */
WEFT_API int weft_queue_put(weft_queue_t *q, void *item);

/**
 * Queue.get(): remove and return an item in *out, waiting (FIFO among
 * getters) while the queue is empty. After shutdown() the remaining items can
 * still be got; then it fails. @return 0, WEFT_ESHUTDOWN (shut down and
 * empty), WEFT_ECANCELED (nothing taken), WEFT_EINVAL (q or out NULL),
 * WEFT_ENOTCORO. Task on any loop.
 */
WEFT_API int weft_queue_get(weft_queue_t *q, void **out);

/** Queue.put_nowait(item). @return 0, WEFT_EQUEUEFULL, WEFT_ESHUTDOWN,
 *  WEFT_ENOMEM, WEFT_EINVAL. Any thread. */
WEFT_API int weft_queue_put_nowait(weft_queue_t *q, void *item);
/** Queue.get_nowait(). @return 0 with the item in *out, WEFT_EQUEUEEMPTY,
 *  WEFT_ESHUTDOWN (shut down and empty), WEFT_EINVAL. Any thread. */
WEFT_API int weft_queue_get_nowait(weft_queue_t *q, void **out);

/** Queue.qsize(): items in the queue (not counting items already handed to a
 *  getter). Any thread (a snapshot). */
WEFT_API size_t weft_queue_qsize(const weft_queue_t *q);
/** Queue.maxsize (0: unbounded). */
WEFT_API size_t weft_queue_maxsize(const weft_queue_t *q);
/** Queue.empty(). Any thread (a snapshot). */
WEFT_API bool weft_queue_empty(const weft_queue_t *q);
/** Queue.full(): true if put_nowait would fail for lack of room (slots
 *  reserved for woken putters count as taken). Never true when unbounded.
 *  Any thread (a snapshot). */
WEFT_API bool weft_queue_full(const weft_queue_t *q);

/**
 * Queue.task_done(): one item previously got is fully processed. When every
 * item ever put has been marked done, join() returns. @return 0, WEFT_EINVAL
 * (called more times than items were put: "task_done() called too many
 * times"). Any thread.
 */
WEFT_API int weft_queue_task_done(weft_queue_t *q);

/** Queue.join(): wait until every item put has been marked done
 *  (task_done). @return 0, WEFT_ECANCELED, WEFT_EINVAL, WEFT_ENOTCORO. Task on
 *  any loop. */
WEFT_API int weft_queue_join(weft_queue_t *q);

/**
 * Queue.shutdown(immediate) (Python 3.13): from now on put/put_nowait fail
 * with WEFT_ESHUTDOWN, and so do get/get_nowait once the queue is empty;
 * every task waiting in put(), and in get() on an empty queue, wakes up with
 * WEFT_ESHUTDOWN. With @p immediate the items still inside are removed at
 * once (passed to the drop callback, if any, after the lock is released;
 * otherwise forgotten - the caller must own them some other way), each
 * counting as one task_done() so join() can return. Idempotent (a later
 * immediate=true still drops what is left). @return 0 or WEFT_EINVAL.
 * Any thread.
 */
WEFT_API int weft_queue_shutdown(weft_queue_t *q, bool immediate);

/** True once shutdown() was called. Any thread. */
WEFT_API bool weft_queue_is_shutdown(const weft_queue_t *q);

#ifdef __cplusplus
}
#endif
#endif
