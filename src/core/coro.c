/* Coroutine switching with sanitizer bookkeeping.
 *
 * ctx.h switches registers; this file tells AddressSanitizer and
 * ThreadSanitizer about each switch (their fiber APIs), so sanitizer builds
 * see every task stack as a stack and report real bugs only. In normal builds
 * weft__coro_switch is the bare register switch. */
#include "core/coro.h"
#include "core/loop.h"

#if defined(WEFT_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

void weft__coro_init_thread(weft__coro_t *c)
{
    memset(c, 0, sizeof *c);
#if defined(WEFT_TSAN)
    c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void weft__coro_make(weft__coro_t *c, void *lo, size_t size, weft__ctx_entry_fn entry, void *arg)
{
    weft__ctx_make(&c->ctx, lo, size, entry, arg);
#if defined(WEFT_ASAN)
    c->asan_fake = NULL;
    c->stack_lo = lo;
    c->stack_size = size;
#endif
#if defined(WEFT_TSAN)
    c->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void weft__coro_switch(weft__coro_t *from, weft__coro_t *to, bool exiting)
{
#if defined(WEFT_ASAN)
    weft__thread()->switch_from = from;
    __sanitizer_start_switch_fiber(exiting ? NULL : &from->asan_fake, to->stack_lo, to->stack_size);
#else
    (void)exiting;
#endif
#if defined(WEFT_TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    weft__ctx_switch(&from->ctx, &to->ctx);
#if defined(WEFT_ASAN)
    /* back in `from`: learn the bounds of whoever switched to us the first
     * time (the thread's own stack is not known in advance). */
    {
        const void *lo = NULL;
        size_t size = 0;
        __sanitizer_finish_switch_fiber(from->asan_fake, &lo, &size);
        weft__coro_t *prev = weft__thread()->switch_from;
        if (prev && prev != from && !prev->stack_lo) {
            prev->stack_lo = lo;
            prev->stack_size = size;
        }
    }
#endif
}

void weft__coro_started(void)
{
#if defined(WEFT_ASAN)
    const void *lo = NULL;
    size_t size = 0;
    __sanitizer_finish_switch_fiber(NULL, &lo, &size);
    weft__coro_t *prev = weft__thread()->switch_from;
    if (prev && !prev->stack_lo) {
        prev->stack_lo = lo;
        prev->stack_size = size;
    }
#endif
}

void weft__coro_destroy(weft__coro_t *c)
{
#if defined(WEFT_TSAN)
    if (c->tsan_fiber) {
        __tsan_destroy_fiber(c->tsan_fiber);
        c->tsan_fiber = NULL;
    }
#else
    (void)c;
#endif
}
