/* The scheduler of the multi-loop runtime: stealable task queues, the shared
 * injection queue, spawning, stealing, parking and waking.
 *
 * Queues (Concurrency Kit):
 *  - per loop `newq`: ck_ring SPMC of never-run stealable tasks. The owner
 *    pushes; the owner and thieves pop. For every push the owner also queues a
 *    token in its ready FIFO; running a token starts the oldest task still in
 *    newq, so with nothing stolen the order is exactly asyncio's call_soon order.
 *  - per loop inbox: ck_stack of messages from other threads (loop.c).
 *  - runtime injector: ck_ring MPMC for work from outside the runtime and for
 *    newq overflow, plus a spinlock-protected overflow list when it is full.
 * Parking: a loop with nothing to do tries the injector, then steals about
 * half of a random victim's newq; failing that it parks in uv_run(UV_RUN_ONCE).
 * New stealable work wakes at most one parked loop, and none while a loop is
 * already searching (Go's and Tokio's rule). */
#include "runtime/rt.h"

/* ---- injection queue --------------------------------------------------------- */

/* Any thread: one CAS, never waits for another producer (a bounded MPMC ring
 * would make every producer wait for a preempted one; on 2 cores with 8
 * submitting threads that collapsed). */
static void inject(weft_runtime_t *rt, weft__task_t *t)
{
    WEFT__TSAN_RELEASE(t);
    weft__inbox_push(&rt->inj, &t->inj_entry);
}

static bool inj_empty(weft_runtime_t *rt) { return weft__inbox_empty(&rt->inj); }

/* ---- queueing stealable work on a loop ------------------------------------------- */

/* The backlog: never-run tasks beyond a full newq, a FIFO linked through
 * their step handles (owner only). */
static weft__task_t *backlog_pop(weft_loop_t *l)
{
    weft__task_t *b = l->backlog;
    if (b) {
        l->backlog = b->step.next ? WEFT__CONTAINER(b->step.next, weft__task_t, step) : NULL;
        if (!l->backlog)
            l->backlog_tail = NULL;
        b->step.next = NULL;
    }
    return b;
}

/* Move backlog tasks into newq while it has room, so thieves can see them. */
static void backlog_refill(weft_loop_t *l)
{
    while (l->backlog && ck_ring_size(&l->newq) < WEFT__NEWQ_SIZE - 1) {
        weft__task_t *b = backlog_pop(l);
        WEFT__TSAN_RELEASE(b);
        if (!ck_ring_enqueue_spmc(&l->newq, l->newq_buf, b)) {   /* cannot happen: only we push */
            b->step.next = l->backlog ? &l->backlog->step : NULL;
            l->backlog = b;
            if (!l->backlog_tail)
                l->backlog_tail = b;
            break;
        }
    }
}

/* A token in the ready FIFO starts the oldest never-run task this loop still
 * holds: from newq (stealable), else from the backlog (newq was full). Every
 * queued task has one token, so thefts only make some tokens no-ops. */
static void token_dispatch(weft__handle_t *h)
{
    weft_loop_t *l = h->loop;
    weft__task_t *t = h->u.ptr;
    h->gen++;
    h->flags = WEFT__H_POOLED;
    h->next = l->hfree;
    l->hfree = h;
    if (!t) {
        void *p;
        if (ck_ring_dequeue_spmc(&l->newq, l->newq_buf, &p)) {
            WEFT__TSAN_ACQUIRE(p);
            t = p;
        } else if (!(t = backlog_pop(l))) {
            return;   /* thieves took it: it runs elsewhere */
        }
        if (l->backlog)
            backlog_refill(l);
    }
    weft__task_start_claimed(l, t);
}

/* Queue a never-run task on @l (this thread's loop): stealable through newq,
 * or in the backlog when newq is full; pinned here if !stealable. */
static int queue_local(weft_loop_t *l, weft__task_t *t, bool stealable)
{
    weft__handle_t *h = weft__handle_new(l);
    if (!h)
        return WEFT_ENOMEM;
    h->fn = token_dispatch;
    h->u.ptr = NULL;
    if (!stealable) {
        h->u.ptr = t;
    } else if (!l->backlog && ck_ring_size(&l->newq) < WEFT__NEWQ_SIZE - 1) {
        WEFT__TSAN_RELEASE(t);
        ck_ring_enqueue_spmc(&l->newq, l->newq_buf, t);   /* room checked: only we push */
    } else {
        t->step.next = NULL;
        if (l->backlog_tail)
            l->backlog_tail->step.next = &t->step;
        else
            l->backlog = t;
        l->backlog_tail = t;
        l->stats.overflows++;
    }
    weft__ready_push(l, h);
    return 0;
}

void weft__rt_notify(weft_runtime_t *rt)
{
    ck_pr_fence_memory();   /* work published, then look for sleepers */
    if (ck_pr_load_uint(&rt->nsearching))
        return;   /* a searching loop will find it (and wake another if needed) */
    unsigned int start = ck_pr_faa_uint(&rt->notify_rr, 1);
    for (int k = 0; k < rt->n; k++) {
        weft_loop_t *l = rt->loops[(start + (unsigned)k) % (unsigned)rt->n];
        if (ck_pr_load_uint(&l->parked) == 1 && ck_pr_cas_uint(&l->parked, 1, 2)) {
            ck_pr_inc_64(&l->stats.wakeups);
            uv_async_send(&l->wake);
            return;
        }
    }
}

int weft_spawn(weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts)
{
    weft_loop_t *l = weft__thread()->running;
    if (out)
        *out = NULL;
    if (!l)
        return WEFT_ENOLOOP;
    if (!l->rt || l->rt->n == 1 || (opts && opts->eager_start))
        return weft_loop_create_task(l, out, fn, arg, opts);
    weft__task_t *t;
    int rc = weft__task_alloc(l, fn, arg, opts, &t);
    if (rc < 0)
        return rc;
    if (out) {
        *out = weft_future_retain(&t->fut);
        t->fut.user_ref = 1;
    }
    if (queue_local(l, t, true) < 0)
        inject(l->rt, t);   /* no memory for a token: another loop may take it */
    else
        l->stats.spawned++;
    weft__rt_notify(l->rt);
    return 0;
}

static void msg_start(weft_loop_t *l, weft__msg_t *m)
{
    weft__task_t *t = m->a;
    free(m);
    if (ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED) {   /* never ran: drop the loop's reference */
        if (l->rt)
            weft__rt_task_gone(l->rt);
        weft_future_release(&t->fut);
        return;
    }
    weft__task_start_claimed(l, t);
}

/* Hand a never-run task to @loop from any thread. */
static int post_start(weft_loop_t *loop, weft__task_t *t)
{
    if (weft__thread()->running == loop)
        return queue_local(loop, t, false);
    weft__msg_t *m = weft__msg_new(msg_start);
    if (!m)
        return WEFT_ENOMEM;
    m->a = t;
    int rc = weft__loop_post(loop, m);
    if (rc < 0)
        free(m);
    return rc;
}

int weft_spawn_on(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts)
{
    if (out)
        *out = NULL;
    if (!loop)
        return WEFT_EINVAL;
    if (weft_loop_is_closed(loop) || (loop->rt && weft__rt_shutting(loop->rt)))
        return WEFT_ECLOSED;
    weft__task_t *t;
    int rc = weft__task_alloc(loop, fn, arg, opts, &t);   /* counts the task first */
    if (rc < 0)
        return rc;
    weft_future_retain(&t->fut);   /* kept until we know the hand-off worked */
    if (loop->rt && !weft__rt_admit(loop->rt))
        rc = WEFT_ECLOSED;   /* shutdown began: see weft__rt_admit */
    else
        rc = post_start(loop, t);
    if (rc < 0) {
        t->arg_dtor = NULL;   /* creation failed: the caller still owns arg */
        if (loop->rt)
            weft__rt_task_gone(loop->rt);
        weft_future_release(&t->fut);
        weft_future_release(&t->fut);
        return rc;
    }
    if (out)
        *out = &t->fut;
    else
        weft_future_release(&t->fut);
    return 0;
}

/* ---- finding work ----------------------------------------------------------------- */

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x ? x : 1;
}

/* Take every task waiting in the injection queue (one atomic exchange), in
 * submission order, into this loop's stealable queue. */
static int take_injected(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    if (inj_empty(rt))
        return 0;
    ck_stack_entry_t *e = weft__inbox_pop_all(&rt->inj), *rev = NULL;
    while (e) {
        WEFT__TSAN_ACQUIRE(WEFT__CONTAINER(e, weft__task_t, inj_entry));
        ck_stack_entry_t *n = e->next;
        e->next = rev;
        rev = e;
        e = n;
    }
    int got = 0;
    while (rev) {
        weft__task_t *t = WEFT__CONTAINER(rev, weft__task_t, inj_entry);
        rev = rev->next;
        if (queue_local(l, t, true) < 0) {
            inject(rt, t);
            continue;
        }
        got++;
    }
    l->stats.injected += (uint64_t)got;
    if (got > 1)
        weft__rt_notify(rt);   /* let another loop steal part of the batch */
    return got;
}

static int steal(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    unsigned int start = xorshift(&l->rng) % (unsigned)rt->n;
    for (int k = 0; k < rt->n; k++) {
        weft_loop_t *v = rt->loops[(start + (unsigned)k) % (unsigned)rt->n];
        if (v == l)
            continue;
        l->stats.steal_attempts++;
        unsigned int sz = ck_ring_size(&v->newq);
        if (!sz)
            continue;
        unsigned int want = (sz + 1) / 2;
        if (want > WEFT__STEAL_MAX)
            want = WEFT__STEAL_MAX;
        unsigned int got = 0;
        void *p;
        while (got < want && ck_ring_trydequeue_spmc(&v->newq, v->newq_buf, &p)) {
            WEFT__TSAN_ACQUIRE(p);
            if (queue_local(l, p, true) < 0) {
                inject(rt, p);
                break;
            }
            got++;
        }
        if (got) {
            l->stats.steals++;
            l->stats.stolen += got;
            return (int)got;
        }
    }
    return 0;
}

static bool work_visible(weft_runtime_t *rt, weft_loop_t *self)
{
    if (!inj_empty(rt))
        return true;
    for (int i = 0; i < rt->n; i++)
        if (rt->loops[i] != self && ck_ring_size(&rt->loops[i]->newq))
            return true;
    return false;
}

bool weft__rt_find_work(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    for (int round = 0; round < 4; round++) {
        if (take_injected(l))
            return true;
        if (rt->n < 2)
            return false;
        if (2 * ck_pr_load_uint(&rt->nsearching) >= (unsigned)rt->n)
            return false;   /* enough loops search; the last of them looks again before parking */
        ck_pr_inc_uint(&rt->nsearching);
        int got = steal(l);
        bool last;
        ck_pr_dec_uint_zero(&rt->nsearching, &last);
        if (got) {
            if (got > 1 && last)
                weft__rt_notify(rt);   /* the last searcher found a batch: let another look too */
            return true;
        }
        if (!last)
            return false;
        /* The last searcher to give up looks once more: a producer that saw us
         * searching did not wake anyone (Go's and Tokio's rule). */
        ck_pr_fence_memory();
        if (!work_visible(rt, l))
            return false;
    }
    return false;
}

void weft__rt_poll_injector(weft_loop_t *l) { take_injected(l); }

void weft__rt_before_park(weft_loop_t *l)
{
    uint64_t now = uv_hrtime();
    if (l->park_t0)
        l->stats.busy_ns += now - l->park_t0;
    l->park_t0 = now;
    l->stats.parks++;
}

void weft__rt_after_park(weft_loop_t *l)
{
    uint64_t now = uv_hrtime();
    l->stats.parked_ns += now - l->park_t0;
    l->park_t0 = now;
}

/* ---- run_coroutine_threadsafe's entry -------------------------------------------- */

int weft__rt_submit(weft_runtime_t *rt, weft_loop_t *loop, weft__task_t *t)
{
    if (rt && !weft__rt_admit(rt))   /* @t is counted already: see weft__rt_admit */
        return WEFT_ECLOSED;
    if (loop)
        return post_start(loop, t);
    inject(rt, t);
    weft__rt_notify(rt);
    return 0;
}


/* ---- a runtime that is freed ------------------------------------------------------- */

void weft__sched_drop_queued(weft_runtime_t *rt)
{
    for (int i = 0; i < rt->n; i++) {
        weft_loop_t *l = rt->loops[i];
        if (!l || !l->newq_buf)
            continue;
        void *p;
        while (ck_ring_dequeue_spmc(&l->newq, l->newq_buf, &p))
            weft_future_release(p);
        weft__task_t *b;
        while ((b = backlog_pop(l)))
            weft_future_release(&b->fut);
    }
    ck_stack_entry_t *e = weft__inbox_pop_all(&rt->inj);
    while (e) {
        ck_stack_entry_t *n = e->next;
        weft_future_release(&WEFT__CONTAINER(e, weft__task_t, inj_entry)->fut);
        e = n;
    }
}
