/* The loop's timer structure: a binary min-heap of handles ordered by
 * (deadline, sequence number), so equal deadlines fire in FIFO order. One libuv
 * timer per loop is armed for the earliest deadline (loop.c); cancelled timers
 * are removed at once through their stored heap index. */
#include "core/loop.h"

static inline bool before(const weft__handle_t *a, const weft__handle_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void sift_up(weft__heap_t *h, uint32_t i)
{
    weft__handle_t *x = h->a[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(x, h->a[p]))
            break;
        h->a[i] = h->a[p];
        h->a[i]->heap_idx = i;
        i = p;
    }
    h->a[i] = x;
    x->heap_idx = i;
}

static void sift_down(weft__heap_t *h, uint32_t i)
{
    weft__handle_t *x = h->a[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        weft__handle_t *best = x;
        if (l < h->n && before(h->a[l], best)) {
            m = l;
            best = h->a[l];
        }
        if (l + 1 < h->n && before(h->a[l + 1], best)) {
            m = l + 1;
            best = h->a[l + 1];
        }
        if (m == i)
            break;
        h->a[i] = best;
        best->heap_idx = i;
        i = m;
    }
    h->a[i] = x;
    x->heap_idx = i;
}

int weft__heap_push(weft__heap_t *h, weft__handle_t *x)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        weft__handle_t **a = realloc(h->a, (size_t)cap * sizeof *a);
        if (!a)
            return WEFT_ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    h->a[h->n] = x;
    sift_up(h, h->n++);
    return 0;
}

void weft__heap_remove(weft__heap_t *h, weft__handle_t *x)
{
    uint32_t i = x->heap_idx;
    h->n--;
    if (i != h->n) {
        h->a[i] = h->a[h->n];
        h->a[i]->heap_idx = i;
        if (i > 0 && before(h->a[i], h->a[(i - 1) / 2]))
            sift_up(h, i);
        else
            sift_down(h, i);
    }
    x->heap_idx = UINT32_MAX;
}

weft__handle_t *weft__heap_pop(weft__heap_t *h)
{
    if (!h->n)
        return NULL;
    weft__handle_t *x = h->a[0];
    weft__heap_remove(h, x);
    return x;
}

void weft__heap_free(weft__heap_t *h)
{
    free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

int weft__timer_start(weft_loop_t *l, weft__handle_t *h, uint64_t when_ns)
{
    h->when = when_ns;
    h->seq = l->timer_seq++;
    int rc = weft__heap_push(&l->timers, h);
    if (rc == 0)
        h->flags |= WEFT__H_TIMER;
    return rc;
}

void weft__timer_cancel(weft_loop_t *l, weft__handle_t *h)
{
    if (h->flags & WEFT__H_TIMER) {
        weft__heap_remove(&l->timers, h);
        h->flags &= ~(uint32_t)WEFT__H_TIMER;
    }
}
