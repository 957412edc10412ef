/* Futures' internals: state, done callbacks and waiters (future.c). Not
 * installed. */
#ifndef WEFT_SRC_FUTURE_H
#define WEFT_SRC_FUTURE_H

#include "core/loop.h"
#include "weft/future.h"

struct weft__task;

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

/* weft_future.magic: a live future or task, and one whose memory was given
 * back (a later retain/release is a double release, reported and ignored). */
#define WEFT__FUT_LIVE 0x74666577u   /* "weft" */
#define WEFT__FUT_DEAD 0x0bad0bf1u

struct weft_future {
    weft_loop_t *loop;
    unsigned int refs;      /* atomic (ck_pr) */
    uint32_t magic;         /* WEFT__FUT_LIVE until freed (atomic) */
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
    /* (a task's creation writes only the fields above: one cache line) */
    weft__cbent_t *cbs;     /* the entries once they outgrew inl (!cb_inline), else undefined */
    weft__cancel_hook_fn cancel_hook;   /* plain futures: weft_future_cancel calls it instead; undefined in a task */
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
char *weft__vformat(const char *fmt, va_list ap);

#endif
