/* Internal helpers shared by the combinators, timeouts, TaskGroup and
 * context variables (gather.c, wait.c, shield.c, timeout.c, taskgroup.c,
 * contextvar.c, comb.c). Not installed. */
#ifndef WEFT_SRC_COMB_H
#define WEFT_SRC_COMB_H

#include "core/task.h"
#include "weft/combinators.h"
#include "weft/contextvar.h"
#include "weft/taskgroup.h"
#include "weft/timeout.h"

#include <math.h>

/* The current task, or NULL outside a task. */
static inline weft__task_t *weft__comb_current(void) { return weft__thread()->task; }

/* asyncio's None for timeouts / deadlines: WEFT_NO_TIMEOUT (+infinity). A
 * negative timeout is not None: it expires at once, as 0 does. */
static inline bool weft__no_timeout(double t) { return isinf(t) && t > 0; }

/* Create a task for a combinator (ensure_future / TaskGroup.create_task) on
 * @loop: with the loop's eager task factory applied. Loop thread. */
int weft__comb_create_task(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                           const weft_task_opts_t *opts);

/* Suspend the current task @t until someone calls weft__task_wake(t, st);
 * returns st. A cancel request wakes it at once with WEFT_ECANCELED (the
 * cancel "takes"). @kind/@obj: what weft_task_awaiting() reports
 * (WEFT__W_FUTURE with a future, else WEFT__W_OTHER). */
int weft__comb_wait(weft__task_t *t, int kind, void *obj);

/* The outcome of done future @f as weft_await reports it: the result
 * (borrowed) in *out, or the error code with its message recorded as the
 * task's last error (weft_error_message). */
int weft__comb_outcome(weft__task_t *t, weft_future_t *f, weft_value_t *out);

/* weft_await(f, out), plus: when the wait ends with WEFT_ECANCELED after @f
 * completed (the cancel reached this task between @f's completion and its
 * resumption), @f's exception counts as retrieved, as asyncio's __wakeup
 * calls result() before throwing the CancelledError in. */
int weft__comb_await(weft_future_t *f, weft_value_t *out);

/* Record @code with a copy of @msg as @t's last error and return code. */
int weft__comb_error(weft__task_t *t, int code, const char *msg);

/* Dispose of a value that owns memory. */
static inline void weft__value_dispose(weft_value_t *v)
{
    if (v->dtor) {
        weft_dtor_t d = v->dtor;
        v->dtor = NULL;
        d(v->p);
    }
}

/* A small open-addressing set of pointers (dedup of future arguments). */
typedef struct weft__ptrset {
    const void **slots;
    size_t cap;
} weft__ptrset_t;
int weft__ptrset_init(weft__ptrset_t *s, size_t n);
/* Insert @p: returns 1 if added, 0 if it was there already. */
int weft__ptrset_add(weft__ptrset_t *s, const void *p);
void weft__ptrset_free(weft__ptrset_t *s);


#endif
