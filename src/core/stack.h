/* Task stacks: per-loop pools, guard pages, slabs with red zones (stack.c).
 * Not installed. */
#ifndef WEFT_SRC_STACK_H
#define WEFT_SRC_STACK_H

#include "base/base.h"

/* ---- stacks (stack.c) ------------------------------------------------------- */
/* A stack's descriptor lives in the top WEFT__STACK_HDR bytes of the stack
 * itself, so taking a stack from the pool touches the line its first frame is
 * written next to, and no separate allocation exists per stack. */
typedef struct weft__stack {
    struct weft__stack *next;
    char *lo;          /* lowest byte; the red zone starts here */
    size_t size;       /* bytes of the stack, descriptor included (the size asked for, page-rounded) */
    char *guard;       /* guard region below lo, or NULL for a slab stack */
    size_t map_len;    /* length of the own mapping (guarded stacks) */
} weft__stack_t;

#define WEFT__STACK_HDR 64 /* top bytes holding the descriptor */
#define WEFT__REDZONE 64 /* bytes at the bottom of every stack that must stay zero */

/* Bytes from lo up to the descriptor: where frames may go. */
static inline size_t weft__stack_usable(const weft__stack_t *s) { return s->size - WEFT__STACK_HDR; }

typedef struct weft__stack_class {
    size_t size;
    weft__stack_t *free;   /* recently used: pages still mapped, reused without a system call */
    size_t nfree;
    size_t min_free;       /* lowest nfree since the last trim: stacks nobody needed meanwhile */
    char **clean;          /* lo of slab stacks given back to the kernel (madvise): reused after a fault per page */
    size_t nclean, clean_cap;
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

#endif
