/* A bounded free list of same-sized objects shared by any threads: freed
 * objects wait here for the next allocation instead of going back to the
 * allocator (a burst that allocates many at once would otherwise make the
 * heap return its pages and fault them back in, page by page). A Concurrency
 * Kit spinlock guards it; the count is also readable without the lock, so
 * the common "nothing kept" and "full" cases take no lock at all.
 *
 * Each object lends one pointer field, at @link bytes from its start, to link
 * the list while it is free. Used for the task structs plain threads allocate
 * (core/task.c) and for concurrent futures (runtime/bridge.c). Not installed. */
#ifndef WEFT_SRC_FREELIST_H
#define WEFT_SRC_FREELIST_H

#include "base/base.h"

#include <ck_spinlock.h>
#include <stdlib.h>

typedef struct weft__freelist {
    ck_spinlock_fas_t lock;
    void *head;
    unsigned int n;       /* written under lock, read atomically */
    unsigned int max;     /* most objects kept */
    size_t link;          /* offset of the object's link pointer */
} weft__freelist_t;

#define WEFT__FREELIST_INIT(max_, type_, field_) \
    { CK_SPINLOCK_FAS_INITIALIZER, NULL, 0, (max_), offsetof(type_, field_) }

static inline void **weft__freelist_linkp(const weft__freelist_t *fl, void *p)
{
    return (void **)(void *)((char *)p + fl->link);
}

/* Take a kept object, or NULL. @next_out (may be NULL) gets the object now at
 * the head, a hint for prefetching the next allocation. */
static inline void *weft__freelist_pop(weft__freelist_t *fl, void **next_out)
{
    void *p = NULL, *next = NULL;
    if (ck_pr_load_ptr(&fl->head)) {
        ck_spinlock_fas_lock(&fl->lock);
        WEFT__TSAN_ACQUIRE(&fl->lock);
        if ((p = fl->head)) {
            fl->head = *weft__freelist_linkp(fl, p);
            ck_pr_store_uint(&fl->n, fl->n - 1);
        }
        next = fl->head;
        WEFT__TSAN_RELEASE(&fl->lock);
        ck_spinlock_fas_unlock(&fl->lock);
    }
    if (next_out)
        *next_out = next;
    return p;
}

/* Keep @p for reuse; false (the caller frees it) when the list is full. */
static inline bool weft__freelist_push(weft__freelist_t *fl, void *p)
{
    if (ck_pr_load_uint(&fl->n) >= fl->max)
        return false;
    ck_spinlock_fas_lock(&fl->lock);
    WEFT__TSAN_ACQUIRE(&fl->lock);
    bool kept = fl->n < fl->max;
    if (kept) {
        *weft__freelist_linkp(fl, p) = fl->head;
        fl->head = p;
        ck_pr_store_uint(&fl->n, fl->n + 1);
    }
    WEFT__TSAN_RELEASE(&fl->lock);
    ck_spinlock_fas_unlock(&fl->lock);
    return kept;
}

/* Give kept objects back to the allocator (free()) until at most @keep remain. */
static inline void weft__freelist_trim(weft__freelist_t *fl, size_t keep)
{
    while (ck_pr_load_uint(&fl->n) > keep) {
        void *p = NULL;
        ck_spinlock_fas_lock(&fl->lock);
        WEFT__TSAN_ACQUIRE(&fl->lock);
        if (fl->n > keep && (p = fl->head)) {
            fl->head = *weft__freelist_linkp(fl, p);
            ck_pr_store_uint(&fl->n, fl->n - 1);
        }
        WEFT__TSAN_RELEASE(&fl->lock);
        ck_spinlock_fas_unlock(&fl->lock);
        if (!p)
            break;
        free(p);
    }
}

#endif
