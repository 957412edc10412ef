/* asyncio.Queue / LifoQueue / PriorityQueue with 3.13's shutdown(), across
 * loops.
 *
 * One spinlock guards the buffer, the counters and three FIFO waiter lists
 * (getters, putters, joiners). Hand-offs instead of CPython's wake-and-retry:
 *  - put() with getters waiting gives the item to the first getter (its
 *    waiter record carries it); the buffer is then necessarily empty, so this
 *    respects every ordering (FIFO, LIFO, priority);
 *  - a get() that frees room while putters wait reserves a slot for the first
 *    putter (`reserved`); the putter inserts its own item when it resumes, so
 *    a putter cancelled meanwhile never puts anything: it passes the slot on;
 *  - a getter cancelled after an item was handed to it gives the item back:
 *    to the next getter, else to the oldest end of the buffer (where it would
 *    be had it never left; priority queues reinsert it with its original
 *    insertion number).
 * Invariants: getters wait only while the buffer is empty; putters wait only
 * while count + reserved >= maxsize.
 *
 * Storage: one array of entries used as a ring (FIFO: push back, pop front;
 * LIFO: push back, pop back; give-back: push front) or as a binary heap
 * ordered by (cmp, insertion number) for priority queues. It grows by
 * doubling under the spinlock (rare: a bounded queue is sized for maxsize). */
#include "weft/queue.h"
#include "sync/waitq.h"

typedef struct qent {
    void *item;
    uint64_t seq;
} qent_t;

struct weft_queue {
    weft__spin_t spin;
    int kind;
    size_t maxsize;
    qent_t *buf;
    size_t cap;            /* power of two, or 0 */
    size_t head;           /* ring start (unused by the heap) */
    size_t count;          /* items in the buffer */
    size_t reserved;       /* slots granted to putters that have not put yet */
    size_t unfinished;     /* items put and not yet task_done() */
    uint64_t seq;          /* insertion counter */
    bool shutdown;
    bool immediate;
    weft_queue_cmp_fn cmp;
    void *cmp_ud;
    weft_queue_drop_fn drop;
    void *drop_ud;
    weft__waitq_t getters, putters, joiners;
};

/* ---- storage ---------------------------------------------------------------- */

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* Make room for one more entry (spinlock held). Returns 0 or WEFT_ENOMEM. */
static int q_room(weft_queue_t *q)
{
    if (WEFT__LIKELY(q->count < q->cap))
        return 0;
    size_t ncap = q->cap ? q->cap * 2 : 16;
    if (ncap < q->cap || ncap > SIZE_MAX / sizeof(qent_t))
        return WEFT_ENOMEM;
    qent_t *nb = malloc(ncap * sizeof *nb);
    if (!nb)
        return WEFT_ENOMEM;
    if (q->kind == WEFT_QUEUE_PRIORITY) {
        if (q->count)
            memcpy(nb, q->buf, q->count * sizeof *nb);
    } else {
        for (size_t i = 0; i < q->count; i++)
            nb[i] = q->buf[(q->head + i) & (q->cap - 1)];
        q->head = 0;
    }
    free(q->buf);
    q->buf = nb;
    q->cap = ncap;
    return 0;
}

static inline bool ent_before(const weft_queue_t *q, const qent_t *a, const qent_t *b)
{
    int c = q->cmp(a->item, b->item, q->cmp_ud);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

static void heap_push(weft_queue_t *q, qent_t e)
{
    size_t i = q->count++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_before(q, &e, &q->buf[p]))
            break;
        q->buf[i] = q->buf[p];
        i = p;
    }
    q->buf[i] = e;
}

static qent_t heap_pop(weft_queue_t *q)
{
    qent_t top = q->buf[0];
    qent_t last = q->buf[--q->count];
    size_t n = q->count, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ent_before(q, &q->buf[c + 1], &q->buf[c]))
            c++;
        if (!ent_before(q, &q->buf[c], &last))
            break;
        q->buf[i] = q->buf[c];
        i = c;
    }
    if (n)
        q->buf[i] = last;
    return top;
}

/* Add an entry to the buffer (room already made). */
static void buf_push(weft_queue_t *q, qent_t e)
{
    if (q->kind == WEFT_QUEUE_PRIORITY) {
        heap_push(q, e);
    } else {
        q->buf[(q->head + q->count) & (q->cap - 1)] = e;
        q->count++;
    }
}

/* Put an entry back where it would be had it never left (room already made). */
static void buf_push_oldest(weft_queue_t *q, qent_t e)
{
    if (q->kind == WEFT_QUEUE_PRIORITY) {
        heap_push(q, e);
    } else {
        q->head = (q->head - 1) & (q->cap - 1);
        q->buf[q->head] = e;
        q->count++;
    }
}

/* Remove the next entry to get (count > 0). */
static qent_t buf_take(weft_queue_t *q)
{
    qent_t e;
    switch (q->kind) {
    case WEFT_QUEUE_PRIORITY:
        return heap_pop(q);
    case WEFT_QUEUE_LIFO:
        e = q->buf[(q->head + q->count - 1) & (q->cap - 1)];
        q->count--;
        return e;
    default:
        e = q->buf[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        return e;
    }
}

/* ---- hand-offs (spinlock held) ------------------------------------------------ */

static inline bool has_room(const weft_queue_t *q)
{
    return q->maxsize == 0 || q->count + q->reserved < q->maxsize;
}

/* Reserve freed slots for waiting putters, first come first served. */
static void admit_putters(weft_queue_t *q, weft__wakes_t *wk)
{
    weft__waiter_t *w;
    while (!q->shutdown && has_room(q) && (w = weft__waitq_pop(&q->putters))) {
        q->reserved++;
        weft__wakes_add(wk, w, 0);
    }
}

/* A new item: to the first waiting getter, else into the buffer. Counts it as
 * unfinished. Returns 0 or WEFT_ENOMEM. */
static int insert_item(weft_queue_t *q, void *item, weft__wakes_t *wk)
{
    qent_t e = { item, q->seq++ };
    weft__waiter_t *g = weft__waitq_pop(&q->getters);
    if (g) {
        g->item = e.item;
        g->iseq = e.seq;
        weft__wakes_add(wk, g, 0);
    } else {
        int rc = q_room(q);
        if (rc < 0)
            return rc;
        buf_push(q, e);
    }
    q->unfinished++;
    return 0;
}

static void wake_joiners_if_done(weft_queue_t *q, weft__wakes_t *wk)
{
    if (q->unfinished == 0)
        weft__wakes_take(wk, &q->joiners, SIZE_MAX, 0);
}

/* An item handed to a getter that was cancelled before resuming comes back.
 * Returns 0, 1 if the item must be dropped (immediate shutdown happened
 * meanwhile: it counts as done), or WEFT_ENOMEM (it could not be stored). */
static int give_back(weft_queue_t *q, qent_t e, weft__wakes_t *wk)
{
    weft__waiter_t *g = weft__waitq_pop(&q->getters);
    if (g) {
        g->item = e.item;
        g->iseq = e.seq;
        weft__wakes_add(wk, g, 0);
        return 0;
    }
    if (q->immediate) {
        if (q->unfinished > 0)
            q->unfinished--;
        wake_joiners_if_done(q, wk);
        return 1;
    }
    int rc = q_room(q);
    if (rc < 0)
        return rc;
    buf_push_oldest(q, e);
    return 0;
}

/* ---- creation ------------------------------------------------------------------ */

int weft_queue_new_opts(const weft_queue_opts_t *o, weft_queue_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (!o || (unsigned)o->kind > WEFT_QUEUE_PRIORITY || (o->kind == WEFT_QUEUE_PRIORITY && !o->cmp))
        return WEFT_EINVAL;
    weft_queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return WEFT_ENOMEM;
    weft__spin_init(&q->spin);
    q->kind = o->kind;
    q->maxsize = o->maxsize;
    q->cmp = o->cmp;
    q->cmp_ud = o->cmp_ud;
    q->drop = o->drop;
    q->drop_ud = o->drop_ud;
    if (q->maxsize && q->maxsize <= 4096) {   /* sized once for a bounded queue */
        q->cap = pow2_at_least(q->maxsize + 1);
        if (!(q->buf = malloc(q->cap * sizeof *q->buf))) {
            free(q);
            return WEFT_ENOMEM;
        }
    }
    *out = q;
    return 0;
}

int weft_queue_new(size_t maxsize, weft_queue_t **out)
{
    return weft_queue_new_opts(&(weft_queue_opts_t){ .kind = WEFT_QUEUE_FIFO, .maxsize = maxsize }, out);
}

int weft_lifo_queue_new(size_t maxsize, weft_queue_t **out)
{
    return weft_queue_new_opts(&(weft_queue_opts_t){ .kind = WEFT_QUEUE_LIFO, .maxsize = maxsize }, out);
}

int weft_priority_queue_new(size_t maxsize, weft_queue_cmp_fn cmp, void *ud, weft_queue_t **out)
{
    return weft_queue_new_opts(
        &(weft_queue_opts_t){ .kind = WEFT_QUEUE_PRIORITY, .maxsize = maxsize, .cmp = cmp, .cmp_ud = ud }, out);
}

/* Hand the entries of a detached buffer to the drop callback, then free it. */
static void drop_all(weft_queue_t *q, qent_t *buf, size_t cap, size_t head, size_t n, bool ring)
{
    if (q->drop)
        for (size_t i = 0; i < n; i++)
            q->drop(ring ? buf[(head + i) & (cap - 1)].item : buf[i].item, q->drop_ud);
    free(buf);
}

int weft_queue_free(weft_queue_t *q)
{
    if (!q)
        return 0;
    weft__spin_lock(&q->spin);
    bool busy = q->getters.n || q->putters.n || q->joiners.n || q->reserved;
    weft__spin_unlock(&q->spin);
    if (busy)
        return WEFT_EBUSY;
    drop_all(q, q->buf, q->cap, q->head, q->count, q->kind != WEFT_QUEUE_PRIORITY);
    free(q);
    return 0;
}

/* ---- put ------------------------------------------------------------------------ */

int weft_queue_put_nowait(weft_queue_t *q, void *item)
{
    if (!q)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    int rc;
    weft__spin_lock(&q->spin);
    if (q->shutdown)
        rc = WEFT_ESHUTDOWN;
    else if (!has_room(q) || q->putters.head)
        rc = WEFT_EQUEUEFULL;
    else
        rc = insert_item(q, item, &wk);
    weft__spin_unlock(&q->spin);
    weft__wakes_run(&wk);
    return rc;
}

int weft_queue_put(weft_queue_t *q, void *item)
{
    if (!q)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    int rc;
    weft__spin_lock(&q->spin);
    if (q->shutdown) {
        weft__spin_unlock(&q->spin);
        return WEFT_ESHUTDOWN;
    }
    if (WEFT__LIKELY(has_room(q) && !q->putters.head)) {
        rc = insert_item(q, item, &wk);
        weft__spin_unlock(&q->spin);
        weft__wakes_run(&wk);
        return rc;
    }
    weft__waiter_t w;
    rc = weft__waiter_block(&q->spin, &q->putters, &w, t);
    if (w.state != WEFT__WS_WOKEN)
        return rc;                       /* cancelled while waiting */
    if (w.status == WEFT_ESHUTDOWN)      /* woken by shutdown(): no slot */
        return rc == WEFT_ECANCELED ? WEFT_ECANCELED : WEFT_ESHUTDOWN;
    /* a slot was reserved for us */
    weft__spin_lock(&q->spin);
    q->reserved--;
    if (rc == WEFT_ECANCELED) {
        admit_putters(q, &wk);           /* the slot goes to the next putter */
    } else if (q->shutdown) {
        rc = WEFT_ESHUTDOWN;             /* 3.13: a woken putter re-checks shutdown */
    } else {
        /* our item may have gone straight to a getter, or failed (ENOMEM):
         * either way room may be left for the next putter */
        rc = insert_item(q, item, &wk);
        admit_putters(q, &wk);
    }
    weft__spin_unlock(&q->spin);
    weft__wakes_run(&wk);
    return rc;
}

/* ---- get ------------------------------------------------------------------------ */

int weft_queue_get_nowait(weft_queue_t *q, void **out)
{
    if (!q || !out)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    int rc = 0;
    weft__spin_lock(&q->spin);
    if (q->count) {
        *out = buf_take(q).item;
        if (q->putters.head)
            admit_putters(q, &wk);
    } else {
        rc = q->shutdown ? WEFT_ESHUTDOWN : WEFT_EQUEUEEMPTY;
    }
    weft__spin_unlock(&q->spin);
    weft__wakes_run(&wk);
    return rc;
}

int weft_queue_get(weft_queue_t *q, void **out)
{
    if (!q || !out)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    weft__spin_lock(&q->spin);
    if (WEFT__LIKELY(q->count)) {
        *out = buf_take(q).item;
        if (q->putters.head)
            admit_putters(q, &wk);
        weft__spin_unlock(&q->spin);
        weft__wakes_run(&wk);
        return 0;
    }
    if (q->shutdown) {
        weft__spin_unlock(&q->spin);
        return WEFT_ESHUTDOWN;
    }
    weft__waiter_t w;
    int rc = weft__waiter_block(&q->spin, &q->getters, &w, t);
    if (w.state != WEFT__WS_WOKEN)
        return rc;                       /* cancelled while waiting: took nothing */
    if (w.status == WEFT_ESHUTDOWN)
        return rc == WEFT_ECANCELED ? WEFT_ECANCELED : WEFT_ESHUTDOWN;
    if (WEFT__LIKELY(rc != WEFT_ECANCELED)) {
        *out = w.item;
        return 0;
    }
    /* an item was handed to us, then we were cancelled: give it back */
    weft__spin_lock(&q->spin);
    int g = give_back(q, (qent_t){ w.item, w.iseq }, &wk);
    weft__spin_unlock(&q->spin);
    weft__wakes_run(&wk);
    if (g == 1) {
        if (q->drop)
            q->drop(w.item, q->drop_ud);
    } else if (WEFT__UNLIKELY(g < 0)) {
        /* out of memory to store it: keep it (success) and let the
         * cancellation land at the task's next suspension instead */
        weft__task_recancel(t);
        *out = w.item;
        return 0;
    }
    return WEFT_ECANCELED;
}

/* ---- join, task_done, shutdown ------------------------------------------------------- */

int weft_queue_task_done(weft_queue_t *q)
{
    if (!q)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    int rc = 0;
    weft__spin_lock(&q->spin);
    if (q->unfinished == 0) {
        rc = WEFT_EINVAL;
    } else {
        q->unfinished--;
        wake_joiners_if_done(q, &wk);
    }
    weft__spin_unlock(&q->spin);
    weft__wakes_run(&wk);
    return rc;
}

int weft_queue_join(weft_queue_t *q)
{
    if (!q)
        return WEFT_EINVAL;
    weft__task_t *t = weft__sync_task();
    if (!t)
        return WEFT_ENOTCORO;
    weft__spin_lock(&q->spin);
    if (q->unfinished == 0) {
        weft__spin_unlock(&q->spin);
        return 0;
    }
    weft__waiter_t w;
    int rc = weft__waiter_block(&q->spin, &q->joiners, &w, t);
    return rc == WEFT_ECANCELED ? WEFT_ECANCELED : 0;
}

int weft_queue_shutdown(weft_queue_t *q, bool immediate)
{
    if (!q)
        return WEFT_EINVAL;
    weft__wakes_t wk = WEFT__WAKES_INIT;
    qent_t *dropped = NULL;
    size_t dcap = 0, dhead = 0, dn = 0;
    weft__spin_lock(&q->spin);
    q->shutdown = true;
    if (immediate) {
        q->immediate = true;
        if (q->count) {   /* detach the buffer: its items are dropped outside the lock */
            dropped = q->buf;
            dcap = q->cap;
            dhead = q->head;
            dn = q->count;
            q->buf = NULL;
            q->cap = q->head = q->count = 0;
            q->unfinished -= dn < q->unfinished ? dn : q->unfinished;
        }
        wake_joiners_if_done(q, &wk);
    }
    /* getters wait only on an empty queue: they all fail now, as do the
     * putters (those already given a slot see the shutdown when they resume) */
    weft__wakes_take(&wk, &q->getters, SIZE_MAX, WEFT_ESHUTDOWN);
    weft__wakes_take(&wk, &q->putters, SIZE_MAX, WEFT_ESHUTDOWN);
    weft__spin_unlock(&q->spin);
    weft__wakes_run(&wk);
    if (dropped)
        drop_all(q, dropped, dcap, dhead, dn, q->kind != WEFT_QUEUE_PRIORITY);
    return 0;
}

/* ---- introspection --------------------------------------------------------------------- */

size_t weft_queue_qsize(const weft_queue_t *q)
{
    if (!q)
        return 0;
    weft__spin_t *s = WEFT__SPIN_MUT(&q->spin);
    weft__spin_lock(s);
    size_t n = q->count;
    weft__spin_unlock(s);
    return n;
}

size_t weft_queue_maxsize(const weft_queue_t *q) { return q ? q->maxsize : 0; }

bool weft_queue_empty(const weft_queue_t *q) { return weft_queue_qsize(q) == 0; }

bool weft_queue_full(const weft_queue_t *q)
{
    if (!q || !q->maxsize)
        return false;
    weft__spin_t *s = WEFT__SPIN_MUT(&q->spin);
    weft__spin_lock(s);
    bool r = !has_room(q);
    weft__spin_unlock(s);
    return r;
}

bool weft_queue_is_shutdown(const weft_queue_t *q)
{
    if (!q)
        return false;
    weft__spin_t *s = WEFT__SPIN_MUT(&q->spin);
    weft__spin_lock(s);
    bool r = q->shutdown;
    weft__spin_unlock(s);
    return r;
}
