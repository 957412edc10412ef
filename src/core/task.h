/* Tasks' internals: a task is a future plus a coroutine, a stack and its
 * cancellation state (task.c). Not installed. */
#ifndef WEFT_SRC_TASK_H
#define WEFT_SRC_TASK_H

#include "core/future.h"
#include "core/loop.h"
#include "weft/task.h"

/* ---- tasks (task.c) --------------------------------------------------------- */
enum { WEFT__W_NONE = 0, WEFT__W_FUTURE, WEFT__W_SLEEP, WEFT__W_YIELD, WEFT__W_OTHER, WEFT__W_SYNC };

/* Try to cancel what a suspended task waits on; return true if it will be
 * woken with WEFT_ECANCELED as a result (the cancel "took"). */
typedef bool (*weft__cancel_wait_fn)(struct weft__task *t, const char *msg);

/* Field order follows cost: a task's life touches the future's first cache
 * line and the blocks from stack to its coroutine context, which sit in as
 * few cache lines as they can (the struct is allocated 64-byte aligned), and
 * nothing else unless it is awaited by a waiter, sleeps, is cancelled or is
 * handed between threads. weft__task_alloc defines
 * every field that is read before it is written (recycled structs are not
 * zeroed whole). A new field goes in the block that says how it gets its
 * first value. */
typedef struct weft__task {
    weft_future_t fut;              /* must be first: a task is a future */
    /* (here, in the future's second cache line, which a task's life leaves
     * alone: a field written before it is read, and used rarely) */
    struct weft__task *bl_prev;     /* scheduler.c: backlog link */
    /* ---- the switch lines: what every suspend and resume touches, packed
     * into as few cache lines as the fields allow (a loop taking turns among
     * a thousand tasks misses the cache on each of them). @step starts a
     * line (the future and bl_prev fill two); its head (links, fn, flags)
     * fills that line, its tail (loop, union) and the fields after it the
     * next one; cancel_wait and wait_obj open a third, written at every
     * suspension and read only by a cancel. step's fn, loop, heap_idx and
     * flags are set at creation, coro at the first step, the rest zeroed at
     * creation (task_zero_fields). ---- */
    weft__handle_t step;            /* its slot in the ready queue (its tail, the handle's union, is unused) */
    weft__coro_t coro;              /* made at the first step (a task run inline by its awaiter has none) */
    weft__coro_t *back;             /* where to switch on suspend */
    uint32_t wait_seq;              /* number of the current (or last) suspension: bumped by every one */
    int wake_status;                /* set by whoever wakes a W_OTHER wait */
    uint8_t state;                  /* weft_task_state_t */
    uint8_t must_cancel;
    uint8_t wait_kind;
    uint8_t wait_open;              /* weft__task_begin_wait numbered the coming suspension */
    uint8_t left;                   /* inline child: it switched away from its host's step at least once */
    uint8_t nswitch;                /* switches since the last full red-zone check */
    uint8_t slab_stack;             /* @stack has no guard region: check_slab_stack at each switch */
    uint8_t shutdown_cancel;        /* cancelled by the runtime's shutdown */
    weft__cancel_wait_fn cancel_wait;
    void *wait_obj;
    /* ---- hot, zeroed at creation (task_zero_fields) ---- */
    weft__stack_t *stack;
    /* Work-first join: a child run inline by the task awaiting it borrows
     * that task's stack. @host is the awaiting task while the child runs,
     * @on_stack the borrowed stack (the host's own or the one it borrows). */
    struct weft__task *host;
    weft__stack_t *on_stack;
    struct weft__task *prev, *nextt; /* loop's list of live tasks */
    /* Queue state of a never-run task (scheduler.c). @held_by (atomic) is the
     * loop whose backlog or pinned token holds it, NULL in a ring, the
     * injector or a message; the other fields (and bl_prev, above) belong to
     * that loop's thread. @ring_of (atomic) is the loop whose ring (newq) it
     * was last pushed to, NULL if it went elsewhere since. */
    weft_loop_t *held_by;
    weft_loop_t *ring_of;
    weft__handle_t *token;
    unsigned int claim;             /* atomic: 0 queued, 1 started, 2 cancelled before start
                                     * (3 while the cancel stores its message) */
    int num_cancels;
    uint8_t live;                   /* atomic: linked into its loop, not yet retired (the loop holds a reference) */
    uint8_t joinable;               /* weft_spawn: its awaiter may run it inline (work-first join) */
    uint8_t foreign_mem;            /* allocated by a plain thread: freed into the plain threads' cache */
    uint8_t in_backlog;             /* scheduler.c: linked in a loop's backlog */
    uint8_t timer_set;              /* @timer was initialised (by the first weft_sleep) */
    int err_code;                   /* last error with a message (err_msg) */
    /* ---- hot, set from the arguments at creation ---- */
    weft_coro_fn fn;
    void *arg;
    size_t stack_size;
    weft_dtor_t arg_dtor;           /* weft_task_opts_t.arg_dtor, cleared once called */
    struct weft_context *ctx;       /* the context the task runs in (contextvar.c); owned */
    uint64_t id;
    uint64_t name_no;               /* "Task-N" number, taken at creation for unnamed tasks */
    /* ---- rarely used, zeroed at creation ---- */
    /* Called on the task's loop right after it completed, before anything
     * else sees it gone (run_coroutine_threadsafe completes its concurrent
     * future there); NULL for most tasks. @on_done_arg is set with it. */
    void (*on_done)(struct weft__task *t, void *arg);
    char *cancel_msg;
    char *err_msg;
    char *name;
    struct weft__dbg_site *site;    /* creation backtrace (debug mode) */
    /* cancel propagation (weft_task_cancel): which propagation last reached
     * this task, through which task, and the work list link (prop_parent and
     * prop_next are set whenever prop_id is) */
    uintptr_t prop_id;
    char *prop_msg;
    /* ---- cold, written before they are read ---- */
    void *on_done_arg;
    struct weft__task *prop_parent;
    struct weft__task *prop_next;
    ck_stack_entry_t inj_entry;     /* link in the runtime's injection queue */
    weft__handle_t timer;           /* sleep timer: initialised by the first weft_sleep (timer_set) */
} weft__task_t;


static inline weft__task_t *weft__task_of(const weft_future_t *f) { return (weft__task_t *)(void *)(uintptr_t)f; }
/* A never-run task's loop changes when another loop starts it: read it atomically. */
static inline weft_loop_t *weft__future_loop(const weft_future_t *f) { return ck_pr_load_ptr(&f->loop); }

/* The calling task, if it runs on @loop: 0, WEFT_ENOTCORO outside a task,
 * WEFT_EWRONGLOOP on another loop (the entry check of every awaitable
 * operation on a loop-bound object). */
static inline int weft__task_current_on(const weft_loop_t *loop, weft__task_t **out)
{
    weft__thread_t *ts = weft__thread();
    if (!ts->task)
        return WEFT_ENOTCORO;
    if (ts->running != loop)
        return WEFT_EWRONGLOOP;
    *out = ts->task;
    return 0;
}

/* Suspend the current task until it is woken. cancel may be NULL (wait not
 * cancellable early). Every suspension gets its own number (t->wait_seq):
 * the one weft__task_begin_wait handed out just before, else a fresh one.
 * Returns the wake status, or WEFT_ECANCELED when a cancel request
 * (must_cancel) is pending at resumption. */
int weft__task_suspend(weft__task_t *t, int kind, weft__cancel_wait_fn cancel, void *obj);
/* Number the coming suspension now, before registering as a waiter somewhere
 * (the registration records the number; the next weft__task_suspend uses it).
 * See docs/ARCHITECTURE.md, "Wake-ups and suspension identity". */
static inline uint32_t weft__task_begin_wait(weft__task_t *t)
{
    t->wait_open = 1;
    return ++t->wait_seq;
}
/* A numbered wait that will not happen after all (the registration failed or
 * was not needed): the next suspension takes a fresh number. */
static inline void weft__task_drop_wait(weft__task_t *t) { t->wait_open = 0; }
/* Make @t runnable if it is still suspended in wait number @seq (its loop's
 * thread); a wake-up for any other wait, or for a task already woken, is
 * dropped. */
void weft__task_wake_seq(weft__task_t *t, uint32_t seq, int status);
/* Wake the wait @t is suspended in *now*. Only for wakers that cannot be
 * late: a cancel_wait hook, or a waker that found @t through a record the
 * wait withdraws (on this thread) when it ends. Anything that may run after
 * the wait ended (a message, a queued callback, another thread) records the
 * number and uses weft__task_wake_seq / weft__task_wake_any. */
static inline void weft__task_wake(weft__task_t *t, int status) { weft__task_wake_seq(t, t->wait_seq, status); }
/* Set the current task's error message (takes msg). */
void weft__task_set_error(weft__task_t *t, int code, char *msg);
int weft__task_alloc(weft_loop_t *loop, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts, weft__task_t **out);
/* The creator's reference to a task weft__task_alloc just made, before any
 * other thread can see it (not queued, not linked): a plain increment. */
static inline weft_task_t *weft__task_new_ref(weft__task_t *t)
{
    t->fut.refs++;
    t->fut.user_ref = 1;
    return &t->fut;
}
int weft__task_cancel_remote(weft__task_t *t, const char *msg);
void weft__task_cache_free(weft_loop_t *l);
/* Free cached task structs beyond @keep (a loop going idle). */
void weft__task_cache_trim(weft_loop_t *l, size_t keep);
/* Start never-run task @t, taken out of a queue, on @l (the scheduler calls
 * it). Returns false if the entry was a leftover of a task its awaiter already
 * ran inline (then only the queue's reference is dropped). */
bool weft__task_start_claimed(weft_loop_t *l, weft__task_t *t);
/* One worker: queue never-run @t by its own step handle (a pinned token that
 * costs no handle), claim 0; and take it out again for an inline join. */
void weft__task_queue_step(weft_loop_t *l, weft__task_t *t);
void weft__task_unqueue_step(weft_loop_t *l, weft__task_t *t);
/* The stack @t runs on: its own, or the one it borrows while run inline. */
static inline weft__stack_t *weft__task_stack(const weft__task_t *t) { return t->stack ? t->stack : t->on_stack; }
/* Destroy a task that never finished (loop close). */
void weft__task_abandon(weft__task_t *t);

#endif
