/* Internal declarations shared by weft's source files. Not installed. */
#ifndef WEFT_SRC_INTERNAL_H
#define WEFT_SRC_INTERNAL_H

#include "weft.h"
#include "weft/runtime.h"
#include "ctx.h"

#include <ck_pr.h>
#include <ck_ring.h>
#include <ck_spinlock.h>
#include <ck_stack.h>
#include <uv.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sanitizer detection (the only place that looks at compiler features) -- */
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#define WEFT__NOINLINE __attribute__((noinline))
#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Hide a pointer's origin from the optimiser (keeps TLS addresses from being
 * cached across a coroutine switch). */
#define WEFT__OPAQUE(p) __asm__ volatile("" : "+r"(p)::"memory")
#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
/* ck's atomics are inline assembly that TSan cannot see: state the hand-off. */
#define WEFT__TSAN_RELEASE(p) __tsan_release((void *)(p))
#define WEFT__TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define WEFT__TSAN_RELEASE(p) ((void)(p))
#define WEFT__TSAN_ACQUIRE(p) ((void)(p))
#endif
#define WEFT__CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- coroutines (coro.c) ---------------------------------------------------- */
typedef struct weft__coro {
    weft__ctx_t ctx;
#if defined(WEFT_ASAN)
    void *asan_fake;
    const void *stack_lo;
    size_t stack_size;
#endif
#if defined(WEFT_TSAN)
    void *tsan_fiber;
#endif
} weft__coro_t;

/* Prepare @c to run entry(arg) on [lo, lo+size). */
void weft__coro_make(weft__coro_t *c, void *lo, size_t size, weft__ctx_entry_fn entry, void *arg);
/* Switch from the running coroutine @from to @to. @exiting: @from never runs again. */
void weft__coro_switch(weft__coro_t *from, weft__coro_t *to, bool exiting);
/* First thing a new coroutine's entry calls (sanitizer bookkeeping). */
void weft__coro_started(void);
/* Release sanitizer state of a finished coroutine (after switching away from it). */
void weft__coro_destroy(weft__coro_t *c);
/* Initialise a coroutine record for the calling thread's own stack. */
void weft__coro_init_thread(weft__coro_t *c);

/* ---- stacks (stack.c) ------------------------------------------------------- */
typedef struct weft__stack {
    struct weft__stack *next;
    char *lo;          /* lowest usable byte; the red zone starts here */
    size_t size;       /* usable bytes */
    char *guard;       /* guard page below lo, or NULL for a slab stack */
    size_t map_len;    /* length of the own mapping (guarded stacks) */
} weft__stack_t;

#define WEFT__REDZONE 64 /* bytes at the bottom of every stack that must stay zero */

typedef struct weft__stack_class {
    size_t size;
    weft__stack_t *free;   /* recently used: pages still mapped, reused without a system call */
    size_t nfree;
    size_t min_free;       /* lowest nfree since the last trim: stacks nobody needed meanwhile */
    weft__stack_t *clean;  /* given back to the kernel (madvise): reused after a fault per page */
    char *slab_next;   /* carving position in the current slab (moves down) */
    char *slab_end;    /* lowest address of the current slab */
} weft__stack_class_t;

typedef struct weft__slab {
    struct weft__slab *next;
    void *base;
    size_t len;
} weft__slab_t;

#define WEFT__STACK_CLASSES 8
typedef struct weft__stack_pool {
    weft__stack_class_t cls[WEFT__STACK_CLASSES];
    int ncls;
    weft__slab_t *slabs;
    size_t live;       /* stacks handed out */
} weft__stack_pool_t;

void weft__stack_pool_init(weft__stack_pool_t *p);
void weft__stack_pool_destroy(weft__stack_pool_t *p);
weft__stack_t *weft__stack_acquire(weft__stack_pool_t *p, size_t size);
void weft__stack_release(weft__stack_pool_t *p, weft__stack_t *s);
/* Give back the memory of stacks that stayed unused since the previous trim,
 * beyond @keep per size (the loop calls it at most once a second, when it is
 * about to block). */
void weft__stack_pool_trim(weft__stack_pool_t *p, size_t keep);
static inline bool weft__stack_redzone_ok(const weft__stack_t *s)
{
    const uint64_t *w = (const uint64_t *)(const void *)s->lo;
    return (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0;
}
size_t weft__page_size(void);
/* Overflow reporting: prints and aborts, unless a test installed a hook. */
extern void (*weft__overflow_hook)(const char *task_name, size_t stack_size);
void weft__stack_overflow(const char *name, size_t size);
/* Install the SIGSEGV guard-page reporter and this thread's alternate stack. */
void weft__stack_thread_init(void);

/* ---- handles, ready queue, timers (handle.c, timer.c) ------------------------- */
struct weft__task;
typedef struct weft__handle weft__handle_t;
typedef void (*weft__dispatch_fn)(weft__handle_t *h);

enum {
    WEFT__H_READY = 1,      /* linked in the ready queue */
    WEFT__H_TIMER = 2,      /* in the timer heap */
    WEFT__H_CANCELLED = 4,  /* skip when its turn comes */
    WEFT__H_POOLED = 8,     /* a user handle from the loop's pool */
};

struct weft__handle {
    weft__handle_t *next;
    weft__dispatch_fn fn;
    uint64_t when;          /* timer deadline, loop ns */
    uint64_t seq;           /* FIFO among equal deadlines */
    uint32_t heap_idx;
    uint32_t flags;
    uint64_t gen;           /* pooled handles: bumped on reuse */
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

typedef struct weft__heap {
    weft__handle_t **a;
    uint32_t n, cap;
} weft__heap_t;

int weft__heap_push(weft__heap_t *h, weft__handle_t *x);
void weft__heap_remove(weft__heap_t *h, weft__handle_t *x);
weft__handle_t *weft__heap_pop(weft__heap_t *h);
static inline weft__handle_t *weft__heap_top(const weft__heap_t *h) { return h->n ? h->a[0] : NULL; }
void weft__heap_free(weft__heap_t *h);

/* ---- futures (future.c) ---------------------------------------------------- */
enum { WEFT__F_PENDING = 0, WEFT__F_RESULT, WEFT__F_EXCEPTION, WEFT__F_CANCELLED };

typedef struct weft__cbent {
    weft_done_cb fn;        /* NULL: wake the task `waiter` */
    void *arg;
    struct weft__task *waiter;
    weft_loop_t *loop;      /* where a done callback runs */
    uint32_t seq;           /* the waiter's wait number (stale wake-ups are dropped) */
} weft__cbent_t;

/* A future's state changes under its spinlock, so any thread may complete a
 * plain future or register a waiter (tasks of other loops await it); readers
 * check `state` with an atomic load. Callbacks then run on the loop that
 * registered them (a local push, or a message to that loop). */
/* A plain future's replacement for Future.cancel (gather.c's _GatheringFuture). */
typedef int (*weft__cancel_hook_fn)(weft_future_t *f, const char *msg);
#define WEFT__FUTURE_HAS_CANCEL_HOOK 1

struct weft_future {
    weft_loop_t *loop;
    unsigned int refs;      /* atomic (ck_pr) */
    ck_spinlock_fas_t lock;
    uint8_t state;
    uint8_t is_task;
    uint8_t retrieved;
    uint8_t cb_inline;
    uint8_t observed;       /* outcome looked at (await, result, callback, cancel) */
    uint8_t user_ref;       /* the user asked for a reference (debug: never-awaited warning) */
    int code;               /* exception code */
    char *msg;              /* exception / cancellation message, owned */
    weft_value_t value;
    uint32_t ncb, capcb;
    weft__cbent_t *cbs;     /* == inl while cb_inline */
    weft__cancel_hook_fn cancel_hook;   /* plain futures: weft_future_cancel calls it instead */
    weft__cbent_t inl[1];
};

void weft__done_dispatch(weft__handle_t *h);
void weft__future_init(weft_future_t *f, weft_loop_t *loop, bool is_task);
/* Complete and schedule callbacks. msg is taken over (may be NULL). */
bool weft__future_complete(weft_future_t *f, int state, int code, char *msg, weft_value_t v);
/* Wake @t from any thread; @seq is the wait number taken when the waiter
 * registered (weft__task_begin_wait), so a late message cannot end a later wait. */
void weft__task_wake_any(struct weft__task *t, int status, uint32_t seq);
int weft__future_add_waiter(weft_future_t *f, struct weft__task *t, uint32_t seq);
void weft__future_remove_waiter(weft_future_t *f, struct weft__task *t);
int weft__future_check(const weft_future_t *f);
char *weft__strdup(const char *s);
char *weft__vformat(const char *fmt, va_list ap);

/* ---- tasks (task.c) --------------------------------------------------------- */
enum { WEFT__W_NONE = 0, WEFT__W_FUTURE, WEFT__W_SLEEP, WEFT__W_YIELD, WEFT__W_OTHER, WEFT__W_SYNC };

/* Try to cancel what a suspended task waits on; return true if it will be
 * woken with WEFT_ECANCELED as a result (the cancel "took"). */
typedef bool (*weft__cancel_wait_fn)(struct weft__task *t, const char *msg);

typedef struct weft__task {
    weft_future_t fut;              /* must be first: a task is a future */
    weft_coro_fn fn;
    void *arg;
    weft__handle_t step;            /* its slot in the ready queue */
    weft__handle_t timer;           /* sleep timer */
    weft__coro_t coro;
    weft__coro_t *back;             /* where to switch on suspend */
    weft__stack_t *stack;
    size_t stack_size;
    uint8_t state;                  /* weft_task_state_t */
    uint8_t must_cancel;
    uint8_t wait_kind;
    uint8_t shutdown_cancel;        /* cancelled by the runtime's shutdown */
    uint8_t nswitch;                /* switches since the last full red-zone check */
    ck_stack_entry_t inj_entry;     /* link in the runtime's injection queue */
    unsigned int claim;             /* atomic: 0 queued, 1 started, 2 cancelled before start */
    struct weft_cfuture *cf;        /* run_coroutine_threadsafe's future, or NULL */
    uint32_t wait_seq;              /* bumped for every wait a remote wake-up may target */
    int num_cancels;
    char *cancel_msg;
    weft__cancel_wait_fn cancel_wait;
    void *wait_obj;
    int wake_status;                /* set by whoever wakes a W_OTHER wait */
    int err_code;                   /* last error with a message */
    char *err_msg;
    char *name;
    uint64_t id;
    struct weft__task *prev, *nextt; /* loop's list of live tasks */
    struct weft_context *ctx;       /* the context the task runs in (contextvar.c); owned */
    struct weft__dbg_site *site;    /* creation backtrace (debug mode) */
} weft__task_t;

/* contextvar.c: the context of a task being created -- a copy of the current
 * one, or the one given to weft_create_task_in_context (a new reference, NULL
 * for an empty context). Released with weft_context_release. */
#define WEFT__TASK_HAS_CTX 1
#define WEFT__LOOP_HAS_EAGER_FACTORY 1
struct weft_context *weft__context_for_new_task(void);

static inline weft__task_t *weft__task_of(const weft_future_t *f) { return (weft__task_t *)(void *)(uintptr_t)f; }
/* A never-run task's loop changes when another loop starts it: read it atomically. */
static inline weft_loop_t *weft__future_loop(const weft_future_t *f) { return ck_pr_load_ptr(&f->loop); }

/* Suspend the current task until weft__task_wake. cancel may be NULL (wait not
 * cancellable early). Returns the wake status, or WEFT_ECANCELED when a cancel
 * request (must_cancel) is pending at resumption. */
int weft__task_suspend(weft__task_t *t, int kind, weft__cancel_wait_fn cancel, void *obj);
/* Start a new wait: returns its number, to give to whoever may wake it from another thread. */
static inline uint32_t weft__task_begin_wait(weft__task_t *t) { return ++t->wait_seq; }
/* Make a suspended task runnable (its loop's thread). */
void weft__task_wake(weft__task_t *t, int status);
/* Set the current task's error message (takes msg). */
void weft__task_set_error(weft__task_t *t, int code, char *msg);
int weft__task_alloc(weft_loop_t *loop, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts, weft__task_t **out);
int weft__task_cancel_remote(weft__task_t *t, const char *msg);
void weft__task_cache_free(weft_loop_t *l);
/* Destroy a task that never finished (loop close). */
void weft__task_abandon(weft__task_t *t);

/* ---- threads and loops (loop.c) -------------------------------------------- */
typedef struct weft__thread {
    weft_loop_t *running;
    weft_loop_t *current;
    weft__task_t *task;            /* task executing now, NULL in the scheduler */
    weft__coro_t *coro;            /* coroutine executing now */
    weft__coro_t sched;            /* the thread's own stack */
    weft__coro_t *switch_from;     /* ASan: who switched to us */
    bool inited;
} weft__thread_t;

/* Thread state through an out-of-line accessor: never cache its result across
 * a suspension point (see docs/ARCHITECTURE.md, "thread-locals"). */
weft__thread_t *weft__thread(void);

/* The inbox is ck_stack's upmc push + batch pop. ThreadSanitizer cannot see
 * ck's inline-assembly atomics, so TSan builds use the same two operations on
 * the compiler's atomic builtins, which it understands. */
static inline void weft__inbox_push(ck_stack_t *s, ck_stack_entry_t *e)
{
#if defined(WEFT_TSAN)
    ck_stack_entry_t *h = __atomic_load_n(&s->head, __ATOMIC_RELAXED);
    do {
        e->next = h;
    } while (!__atomic_compare_exchange_n(&s->head, &h, e, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
#else
    ck_stack_push_upmc(s, e);
#endif
}

static inline ck_stack_entry_t *weft__inbox_pop_all(ck_stack_t *s)
{
#if defined(WEFT_TSAN)
    return __atomic_exchange_n(&s->head, NULL, __ATOMIC_ACQUIRE);
#else
    return ck_stack_batch_pop_upmc(s);
#endif
}

static inline bool weft__inbox_empty(ck_stack_t *s)
{
#if defined(WEFT_TSAN)
    return __atomic_load_n(&s->head, __ATOMIC_RELAXED) == NULL;
#else
    return ck_pr_load_ptr(&s->head) == NULL;
#endif
}

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

struct weft_loop {
    uv_loop_t uv;
    uv_timer_t uvtimer;
    uv_async_t wake;
    unsigned int flags;            /* WEFT__L_*, read by other threads with ck_pr */
    unsigned int refs;             /* user + futures (atomic) */
    unsigned int senders;          /* threads inside call_soon_threadsafe */
    weft__ready_t ready;
    weft__heap_t timers;
    uint64_t timer_seq;
    uint64_t armed_ms;             /* deadline the uv timer is armed for, UINT64_MAX = none */
    uint64_t since_poll;           /* handles run since the last I/O poll */
    weft__handle_t *hfree;         /* pooled user handles */
    void **hchunks;
    size_t nhchunks;
    weft__task_t *tasks;           /* live (not done) tasks */
    size_t ntasks;
    weft__task_t *current;
    weft__stack_pool_t stacks;
    uint64_t last_trim;
    weft_exception_handler_t eh;
    void *eh_ud;
    ck_stack_t inbox;
    uv_thread_t owner;
    /* runtime worker state (NULL rt for a standalone loop) */
    struct weft_runtime *rt;
    int widx;
    unsigned int parked;            /* atomic: 1 while blocked in the poll */
    unsigned int tick;
    uint32_t rng;
    ck_ring_t newq;                 /* never-run stealable tasks: owner pushes, anyone pops */
    ck_ring_buffer_t *newq_buf;
    struct weft__task *backlog, *backlog_tail;   /* never-run tasks beyond newq (owner only) */
    weft_loop_stats_t stats;
    uint64_t park_t0;
    uint64_t born, died;            /* runtime live-task accounting (owner writes, anyone reads) */
    struct weft__task *task_cache;  /* freed task structs kept for reuse (owner only) */
    size_t ntask_cache;
    uint8_t eager_factory;          /* atomic: weft_loop_set_eager_task_factory (comb.c) */
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

/* ---- debug mode (debug.c) ------------------------------------------------------ */
typedef struct weft__dbg_site {
    int n;
    void *frames[12];
} weft__dbg_site_t;
void weft__log(weft_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void weft__debug_loop_init(weft_loop_t *l);
void weft__debug_run_handle(weft_loop_t *l, weft__handle_t *h);
void weft__debug_step_begin(weft_loop_t *l, struct weft__task *t);
void weft__debug_step_end(weft_loop_t *l, struct weft__task *t, uint64_t t0);
void weft__debug_loop_running(weft_loop_t *l, bool running);
void weft__debug_check_dump(weft_loop_t *l);
weft__dbg_site_t *weft__debug_site(void);
void weft__debug_never_awaited(weft_future_t *f);
int weft__loop_check_at(const weft_loop_t *l, const char *fn);
#define weft__loop_check(l) weft__loop_check_at((l), __func__)

struct weft_runtime;
#define WEFT__NEWQ_SIZE 256
/* runtime.c hooks */
bool weft__rt_find_work(weft_loop_t *l);
void weft__rt_before_park(weft_loop_t *l);
void weft__rt_after_park(weft_loop_t *l);
void weft__rt_notify(struct weft_runtime *rt);
void weft__rt_task_born(struct weft_runtime *rt);
void weft__rt_task_gone(struct weft_runtime *rt);
bool weft__rt_shutting(const struct weft_runtime *rt);
unsigned int weft__rt_live(struct weft_runtime *rt);
int weft__rt_submit(struct weft_runtime *rt, weft_loop_t *loop, struct weft__task *t);
weft_executor_t *weft__rt_executor(struct weft_runtime *rt);
void weft__task_start_claimed(weft_loop_t *l, struct weft__task *t);
void weft__cfuture_task_done(struct weft__task *t);

void weft__ready_push(weft_loop_t *l, weft__handle_t *h);
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
void weft__report(weft_loop_t *l, const char *message, int code, const char *detail, weft_future_t *f);

#endif
