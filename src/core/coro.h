/* Coroutines: a machine context plus the sanitizers' fiber state (coro.c).
 * Not installed. */
#ifndef WEFT_SRC_CORO_H
#define WEFT_SRC_CORO_H

#include "base/base.h"
#include "core/ctx.h"

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

#endif
