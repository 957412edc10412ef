/* A multi-producer inbox: any thread pushes one entry, the owner takes the
 * whole batch at once. Used by every loop (messages from other threads) and by
 * the runtime's injection queue. Not installed. */
#ifndef WEFT_SRC_INBOX_H
#define WEFT_SRC_INBOX_H

#include "base/base.h"

#include <ck_pr.h>
#include <ck_stack.h>

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

#endif
