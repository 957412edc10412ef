/* The event loop's internals: handles, the ready queue, the timers, the
 * thread state, messages between threads, and struct weft_loop itself
 * (loop.c, timer.c). By design the loop knows tasks (it runs their steps), the
 * scheduler's hooks (a worker loop asks the runtime for work before it parks)
 * and debug mode's hooks; see docs/ARCHITECTURE.md. Not installed. */
#ifndef WEFT_SRC_LOOP_H
#define WEFT_SRC_LOOP_H

#include "base/base.h"
#include "base/inbox.h"
#include "core/coro.h"
#include "core/stack.h"
#include "weft/loop.h"
#include "weft/runtime.h"

#include <ck_ring.h>
#include <ck_spinlock.h>
#include <uv.h>

/* ---- handles, ready queue, timers (loop.c, timer.c) ------------------------- */
struct weft__task;
typedef struct weft__handle weft__handle_t;
typedef void (*weft__dispatch_fn)(weft__handle_t *h);

enum {
    WEFT__H_READY = 1,      /* linked in the ready queue */
    WEFT__H_TIMER = 2,      /* in the loop's timers (wheel or near heap) */
    WEFT__H_CANCELLED = 4,  /* skip when its turn comes */
    WEFT__H_POOLED = 8,     /* a user handle from the loop's pool */
    WEFT__H_TIMER_USE = 16, /* a pooled handle scheduled as a timer (TimerHandle) */
};

struct weft__handle {
    weft__handle_t *next;
    weft__handle_t *prev;   /* ready queue: previous handle (weft__ready_remove) */
    weft__dispatch_fn fn;
    uint64_t when;          /* timer deadline, loop ns */
    uint64_t seq;           /* in the heap: FIFO among equal deadlines; in the ready queue: the
                             * loop iteration that queued it */
    uint32_t heap_idx;      /* timers: near-heap index or WEFT__IN_WHEEL | slot (timer.c) */
    uint32_t flags;
    uint64_t gen;           /* pooled handles: bumped on reuse */
    uint64_t cancel_bits;   /* pooled handles: bit (gen & 63) set if that use was cancelled */
    weft_loop_t *loop;
    union {
        struct { weft_callback_t cb; void *arg; } user;
        struct { weft_done_cb fn; void *arg; weft_future_t *fut; } done;
        void *ptr;
    } u;
};

typedef struct weft__ready {
    weft__handle_t *head, *tail;
    size_t count;
} weft__ready_t;

/* A loop's timers (timer.c): a timing wheel of 8 levels x 64 slots for later
 * ticks, and a min-heap by (deadline, sequence) for the tick reached. */
#define WEFT__TICK_SHIFT 20          /* one tick = 2^20 ns, about 1 ms */
#define WEFT__WHEEL_LEVELS 8         /* 8 x 6 bits of ticks: every uint64_t deadline */
#define WEFT__WHEEL_SLOTS 64
#define WEFT__WHEEL_CHAINS 4         /* lists per slot, walked side by side when the slot is due */
#define WEFT__IN_WHEEL 0x80000000u   /* heap_idx of a handle linked in the wheel: | (level, slot, chain) */

typedef struct weft__near {
    uint64_t when;
    weft__handle_t *h;
} weft__near_t;

typedef struct weft__timers {
    uint32_t n;                    /* timers held, near and wheel */
    uint32_t near_n, near_cap;
    weft__near_t *near;            /* min-heap: the timers of ticks <= elapsed */
    uint64_t elapsed;              /* the tick reached */
    uint64_t occupied[WEFT__WHEEL_LEVELS];
    uint64_t slot_min[WEFT__WHEEL_LEVELS][WEFT__WHEEL_SLOTS];   /* no later than the slot's earliest deadline */
    uint32_t slot_n[WEFT__WHEEL_LEVELS][WEFT__WHEEL_SLOTS];
    weft__handle_t *slot[WEFT__WHEEL_LEVELS][WEFT__WHEEL_SLOTS][WEFT__WHEEL_CHAINS];
} weft__timers_t;

/* Start the wheel at @now_ns if it holds no timer (its tick must not run ahead of the clock). */
void weft__timers_reset(weft__timers_t *w, uint64_t now_ns);
/* Add @h, whose when and seq are set; sets WEFT__H_TIMER. 0 or WEFT_ENOMEM. */
int weft__timers_add(weft__timers_t *w, weft__handle_t *h);
/* Take @h out if it is in (WEFT__H_TIMER); O(1) in the wheel, O(log n) in the near heap. */
void weft__timers_remove(weft__timers_t *w, weft__handle_t *h);
/* The earliest timer with when <= @now_ns, taken out (flag cleared), or NULL.
 * Repeated calls return the due timers in (when, seq) order. */
weft__handle_t *weft__timers_pop_due(weft__timers_t *w, uint64_t now_ns);
/* A time (ns) no later than the earliest deadline held, UINT64_MAX if none:
 * exact unless the earliest timer of a slot was cancelled (then that one's
 * deadline); after weft__timers_pop_due(now) returned NULL, later than now. */
uint64_t weft__timers_next(const weft__timers_t *w);
/* Forget every timer (flags cleared), keeping the memory; _free also frees it. */
void weft__timers_clear(weft__timers_t *w);
void weft__timers_free(weft__timers_t *w);

/* ---- threads and loops (loop.c) -------------------------------------------- */
typedef struct weft__thread {
    weft_loop_t *running;
    weft_loop_t *current;
    struct weft__task *task;            /* task executing now, NULL in the scheduler */
    weft__coro_t *coro;            /* coroutine executing now */
    weft__coro_t sched;            /* the thread's own stack */
    weft__coro_t *switch_from;     /* ASan: who switched to us */
    /* a cancel propagating through awaits (task.c): never spans a switch */
    uintptr_t prop_id;             /* 0: none running */
    struct weft__task *prop_cur;   /* the task whose cancel_wait hook runs now */
    struct weft__task *prop_head, *prop_tail;   /* tasks reached, in order */
    /* weft_raise outside a task: while raise_capture is set (a plain callback
     * or a blocking job runs), the code and message are kept here for it */
    int raise_capture;
    int raised_code;
    char *raised_msg;
    bool inited;
} weft__thread_t;

/* Thread state through an out-of-line accessor: never cache its result across
 * a suspension point (see docs/ARCHITECTURE.md, "thread-locals"). */
weft__thread_t *weft__thread(void);

/* A message from another thread, run by the loop when it drains its inbox. */
typedef struct weft__msg weft__msg_t;
struct weft__msg {
    ck_stack_entry_t entry;
    void (*run)(weft_loop_t *l, weft__msg_t *m);   /* must free m */
    weft_callback_t cb;
    void *a;
    void *b;
    char *s;
    int i;
};
/* Post @m to @l's inbox from any thread; wakes @l if it is parked. */
int weft__loop_post(weft_loop_t *l, weft__msg_t *m);
weft__msg_t *weft__msg_new(void (*run)(weft_loop_t *, weft__msg_t *));

enum { WEFT__L_RUNNING = 1, WEFT__L_STOPPING = 2, WEFT__L_CLOSED = 4 };
/* A runtime loop's `parked` word: awake (running or searching), parked, or
 * woken by one thread that won the CAS from PARKED (so one uv_async_send per
 * park): for a message, or as a searcher (the waker counted it searching). */
enum { WEFT__AWAKE = 0, WEFT__PARKED = 1, WEFT__WOKEN_MSG = 2, WEFT__WOKEN_SEARCH = 3, WEFT__WOKEN_WATCH = 4 };

struct weft_loop {
    uv_loop_t uv;
    uv_timer_t uvtimer;
    uv_async_t wake;
    unsigned int flags;            /* WEFT__L_*, read by other threads with ck_pr */
    /* written by posting threads (each submission from another thread
     * counts itself in `senders`, pushes to `inbox`, and its task takes a
     * reference): kept off the lines the owner writes all the time and
     * off `flags`, which every post reads */
    char pad_p0[64];
    unsigned int refs;             /* user + futures (atomic) */
    unsigned int senders;          /* threads inside call_soon_threadsafe */
    ck_stack_t inbox;
    char pad_p1[64];
    weft__ready_t ready;
    weft__timers_t timers;
    uint64_t timer_seq;
    uint64_t armed_ms;             /* deadline the uv timer is armed for, UINT64_MAX = none */
    uint64_t since_poll;           /* handles run since the last I/O poll */
    size_t ntodo;                  /* handles of this iteration's snapshot still to run */
    uint64_t iter;                 /* iterations begun (ready-queue snapshots taken) */
    size_t dead_tokens;            /* cancelled tokens in the ready queue (compacted when many) */
    weft__handle_t *hfree;         /* pooled user handles */
    weft__handle_t *hcold;         /* pooled handles whose last use was cancelled: reused last,
                                      so Handle.cancelled() stays answerable longer */
    void **hchunks;
    size_t nhchunks;
    struct weft__task *tasks;           /* live (not done) tasks */
    unsigned int ntasks;                /* their number (owner stores atomically, thieves read) */
    struct weft__task *current;
    weft__stack_pool_t stacks;
    uint64_t last_trim;
    weft_exception_handler_t eh;
    void *eh_ud;
    uv_thread_t owner;
    /* runtime worker state (NULL rt for a standalone loop) */
    struct weft_runtime *rt;
    int widx;
    unsigned int parked;            /* atomic: WEFT__PARKED while parking or blocked in the poll, then
                                     * WEFT__WOKEN_* as set by the one thread that woke it */
    bool searching;                 /* counted in rt->nsearching (owner only) */
    bool watching;                  /* counted in rt->nwatching: parks with a 1 ms poll timeout to
                                     * look for a busy loop's last entries (owner only) */
    uint32_t spin_ns;               /* adaptive spin budget of a search (owner only) */
    unsigned int tick;
    uint32_t rng;
    ck_ring_t newq;                 /* never-run stealable tasks: owner pushes, anyone pops */
    ck_ring_buffer_t *newq_buf;
    unsigned int seq;               /* atomic: ready-queue snapshots taken (owner stores, thieves read) */
    struct weft__task *backlog, *backlog_tail;   /* never-run tasks beyond newq (owner only) */
    unsigned int nbacklog;          /* their number (owner stores atomically, thieves read) */
    unsigned int newq_dead;         /* entries of newq whose tasks were joined inline, about (owner only) */
    weft_loop_stats_t stats;
    /* written by thieves, away from the owner's hot fields: the owner's seq
     * they last saw while this loop held only entries it keeps, and when */
    char pad_w0[64];
    unsigned int w_seq;
    uint64_t w_t0;
    char pad_w1[64];
    uint64_t park_t0;
    uint64_t born, died;            /* runtime live-task accounting (owner writes, anyone reads) */
    struct weft__task *task_cache;  /* freed task structs kept for reuse (owner only) */
    size_t ntask_cache;
    uint8_t eager_factory;          /* atomic: weft_loop_set_eager_task_factory (comb.c) */
    weft_executor_t *default_exec;  /* loop.set_default_executor (borrowed); NULL: the process pool */
    /* debug mode (debug.c) */
    bool debug;
    bool dbg_stepped;               /* the handle just run was a task step */
    uint64_t slow_ns;
    uint64_t dbg_step_start;        /* watchdog: when the running step began (0: none) */
    uint64_t dbg_reported;          /* watchdog: step start already reported */
    char dbg_name[64];              /* watchdog: name of the running task */
    ck_spinlock_fas_t dbg_lock;
    unsigned int dump_seen;
};

int weft__loop_check_at(const weft_loop_t *l, const char *fn);
#define weft__loop_check(l) weft__loop_check_at((l), __func__)

/* A runtime worker thread's whole life: run @l until the runtime shuts down. */
int weft__loop_run_worker(weft_loop_t *l);
void weft__ready_push(weft_loop_t *l, weft__handle_t *h);
/* Drop cancelled pooled handles from the ready queue (see loop.c). */
void weft__ready_compact(weft_loop_t *l);
/* Make a parking runtime loop's poll return within 1 ms (a watcher: scheduler.c). */
void weft__loop_arm_watch(weft_loop_t *l);
/* Take @h out of the ready queue, wherever it is (owner thread). */
void weft__ready_remove(weft_loop_t *l, weft__handle_t *h);
weft__handle_t *weft__handle_new(weft_loop_t *l);
int weft__timer_start(weft_loop_t *l, weft__handle_t *h, uint64_t when_ns);
void weft__timer_cancel(weft_loop_t *l, weft__handle_t *h);
void weft__loop_retain(weft_loop_t *l);
void weft__loop_release(weft_loop_t *l);
bool weft__loop_on_thread(const weft_loop_t *l);
/* True if work for @l may be queued directly from this thread: @l runs here, or
 * it is not running and this thread owns it (setup code before run_forever). */
bool weft__loop_is_local(const weft_loop_t *l);
uint64_t weft__now_ns(void);
/* io/signal.c: remove the signal handlers of a loop being closed. */
void weft__signal_loop_closing(weft_loop_t *l);
void weft__report(weft_loop_t *l, const char *message, int code, const char *detail, weft_future_t *f);

/* Capture weft_raise outside a task (plain callbacks, blocking jobs): begin
 * clears the slot and turns capture on; end turns it off and returns the
 * message raised with @code (owned by the caller), or NULL. */
void weft__raise_capture_begin(void);
char *weft__raise_capture_end(int code);
/* The failure message of the last weft_run / weft_runtime_run / Runner run on
 * this thread (weft_error_message outside a task); msg is copied, NULL clears. */
void weft__set_run_error(const char *msg);
const char *weft__run_error(void);

#endif
