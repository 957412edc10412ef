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
 * already searching (Go's and Tokio's rule).
 * Kept entries: a thief leaves alone a victim's last WEFT__KEEP entries (the
 * next link of a chain, the two sides of a producer/consumer pair: the owner
 * reaches them in its next ready-queue snapshot, within microseconds, and
 * moving one would make every later wake-up cross threads), and takes half of
 * a longer ring minus its newest entry. They are kept only while the owner
 * moves on: a victim whose snapshot counter (seq) has not changed for
 * WEFT__STUCK_NS since a thief first saw such entries is stuck in one long
 * step or batch, and then they go too. So that somebody looks again while the
 * other loops are parked, one parked loop is the watcher: it parks with a
 * 1 ms poll timeout while some loop holds entries (a spawn that leaves kept
 * entries and finds no searcher and no watcher wakes a parked loop to watch),
 * and goes back to parking without a timeout once no loop holds any. */
#include "runtime/rt.h"

#include <sched.h>

/* A victim's ring entries a thief leaves to a loop that moves on. */
#define WEFT__KEEP 2u
/* A loop that began no ready-queue snapshot for this long is stuck. */
#define WEFT__STUCK_NS 1000000u

/* ---- injection queue --------------------------------------------------------- */

/* Any thread: one CAS, never waits for another producer (a bounded MPMC ring
 * would make every producer wait for a preempted one; on 2 cores with 8
 * submitting threads that collapsed). */
static void inject(weft_runtime_t *rt, weft__task_t *t)
{
    ck_pr_store_ptr(&t->ring_of, NULL);
    WEFT__TSAN_RELEASE(t);
    weft__inbox_push(&rt->inj, &t->inj_entry);
}

static bool inj_empty(weft_runtime_t *rt) { return weft__inbox_empty(&rt->inj); }

/* ---- queueing stealable work on a loop ------------------------------------------- */

/* The backlog: never-run tasks beyond a full newq, a FIFO linked through
 * their step handles, backwards through bl_prev (owner only). */
static void backlog_unlink(weft_loop_t *l, weft__task_t *b)
{
    weft__task_t *n = b->step.next ? WEFT__CONTAINER(b->step.next, weft__task_t, step) : NULL;
    if (b->bl_prev)
        b->bl_prev->step.next = b->step.next;
    else
        l->backlog = n;
    if (n)
        n->bl_prev = b->bl_prev;
    else
        l->backlog_tail = b->bl_prev;
    b->step.next = NULL;
    b->bl_prev = NULL;
    b->in_backlog = 0;
    ck_pr_store_uint(&l->nbacklog, l->nbacklog - 1);
    ck_pr_store_ptr(&b->held_by, NULL);
}

static weft__task_t *backlog_pop(weft_loop_t *l)
{
    weft__task_t *b = l->backlog;
    if (b)
        backlog_unlink(l, b);
    return b;
}

static void backlog_push(weft_loop_t *l, weft__task_t *t)
{
    t->step.next = NULL;
    t->bl_prev = l->backlog_tail;
    if (l->backlog_tail)
        l->backlog_tail->step.next = &t->step;
    else
        l->backlog = t;
    l->backlog_tail = t;
    t->in_backlog = 1;
    ck_pr_store_uint(&l->nbacklog, l->nbacklog + 1);
    ck_pr_store_ptr(&t->held_by, l);
}

static void token_dispatch(weft__handle_t *h);

/* Take one unpinned token out of @l's ready queue, if one is among its
 * newest handles (it is the ready queue's tail while a step spawns and joins
 * children). Unpinned tokens are interchangeable: each starts the oldest task
 * @l's queues still hold, so which one goes changes no task's turn but the
 * one the surplus token would have started before its own. */
static void drop_token(weft_loop_t *l)
{
    weft__handle_t *h = l->ready.tail;
    for (int i = 0; h && i < 4; i++, h = h->prev) {
        if (h->fn == token_dispatch && !h->u.ptr && !(h->flags & WEFT__H_CANCELLED)) {
            weft__ready_remove(l, h);
            h->gen++;
            h->flags = WEFT__H_POOLED;
            h->next = l->hfree;
            l->hfree = h;
            return;
        }
    }
}

/* Called by an inline join that claimed never-run @t on @l. Every push to a
 * loop's queues queues one token there, and a token that meets only entries
 * of joined tasks does nothing: the joined task leaves its loop a surplus
 * token, which drop_token removes, so a step that spawns and joins many
 * children leaves no pile of no-op tokens (nor runs them later, before
 * handles queued after them). A thief that took @t's entry before the claim
 * left the surplus at the ring's loop too, without consuming a token there. */
bool weft__sched_unqueue(weft_loop_t *l, weft__task_t *t)
{
    if (ck_pr_load_ptr(&t->held_by) != l) {
        if (ck_pr_load_ptr(&t->ring_of) == l)
            drop_token(l);
        return false;
    }
    if (t->token == &t->step) {   /* queued by its own step: out of the ready queue */
        weft__task_unqueue_step(l, t);
        return true;
    }
    if (t->token) {   /* a pinned token: it will be skipped */
        t->token->flags |= WEFT__H_CANCELLED;
        t->token = NULL;
        ck_pr_store_ptr(&t->held_by, NULL);
        if (++l->dead_tokens >= 4096 && 2 * l->dead_tokens >= l->ready.count)
            weft__ready_compact(l);   /* a step that joins many children inline: keep the queue small */
        return true;
    }
    if (t->in_backlog) {
        backlog_unlink(l, t);
        drop_token(l);
        return true;
    }
    return false;
}

/* Move backlog tasks into newq while it has room, so thieves can see them. */
static void backlog_refill(weft_loop_t *l)
{
    while (l->backlog && ck_ring_size(&l->newq) < WEFT__NEWQ_SIZE - 1) {
        weft__task_t *b = backlog_pop(l);
        ck_pr_store_ptr(&b->ring_of, l);
        WEFT__TSAN_RELEASE(b);
        if (!ck_ring_enqueue_spmc(&l->newq, l->newq_buf, b)) {   /* cannot happen: only we push */
            ck_pr_store_ptr(&b->ring_of, NULL);
            b->step.next = l->backlog ? &l->backlog->step : NULL;
            b->bl_prev = NULL;
            b->in_backlog = 1;
            ck_pr_store_uint(&l->nbacklog, l->nbacklog + 1);
            ck_pr_store_ptr(&b->held_by, l);
            if (l->backlog)
                l->backlog->bl_prev = b;
            l->backlog = b;
            if (!l->backlog_tail)
                l->backlog_tail = b;
            break;
        }
    }
}

/* Drop the entries of tasks their awaiters ran inline from a full newq (they
 * hold slots until a token or a thief meets them, and a loop whose tasks join
 * their children inline may run no token for a long time), keeping the order
 * of the others. Thieves may take entries meanwhile: they are only fewer. */
static void newq_compact(weft_loop_t *l)
{
    void *keep[WEFT__NEWQ_SIZE];
    unsigned int k = 0;
    void *p;
    while (k < WEFT__NEWQ_SIZE && ck_ring_dequeue_spmc(&l->newq, l->newq_buf, &p)) {
        WEFT__TSAN_ACQUIRE(p);
        if (ck_pr_load_uint(&((weft__task_t *)p)->claim) == 1)
            weft_future_release(p);
        else
            keep[k++] = p;
    }
    for (unsigned int i = 0; i < k; i++) {
        WEFT__TSAN_RELEASE(keep[i]);
        ck_ring_enqueue_spmc(&l->newq, l->newq_buf, keep[i]);   /* fewer than were there: room */
    }
    l->newq_dead = 0;
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
    if (t) {
        t->token = NULL;
        ck_pr_store_ptr(&t->held_by, NULL);
        weft__task_start_claimed(l, t);
        return;
    }
    for (;;) {   /* skip entries of tasks their awaiters already ran inline */
        void *p;
        if (ck_ring_dequeue_spmc(&l->newq, l->newq_buf, &p)) {
            WEFT__TSAN_ACQUIRE(p);
            t = p;
        } else if (!(t = backlog_pop(l))) {
            return;   /* thieves took it: it runs elsewhere */
        }
        if (l->backlog)
            backlog_refill(l);
        if (weft__task_start_claimed(l, t))
            return;
    }
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
    if (stealable && (l->backlog || ck_ring_size(&l->newq) >= WEFT__NEWQ_SIZE - 1)) {
        if (l->newq_dead >= WEFT__NEWQ_SIZE / 4 && ck_ring_size(&l->newq) >= WEFT__NEWQ_SIZE - 1)
            newq_compact(l);
        if (l->backlog)
            backlog_refill(l);   /* keep the oldest waiting tasks where thieves see them */
    }
    if (!stealable) {
        h->u.ptr = t;
        t->token = h;
        ck_pr_store_ptr(&t->ring_of, NULL);
        ck_pr_store_ptr(&t->held_by, l);
    } else if (!l->backlog && ck_ring_size(&l->newq) < WEFT__NEWQ_SIZE - 1) {
        ck_pr_store_ptr(&t->ring_of, l);
        WEFT__TSAN_RELEASE(t);
        ck_ring_enqueue_spmc(&l->newq, l->newq_buf, t);   /* room checked: only we push */
    } else {
        ck_pr_store_ptr(&t->ring_of, NULL);
        backlog_push(l, t);
        l->stats.overflows++;
    }
    weft__ready_push(l, h);
    return 0;
}

/* Move one parked loop (round robin) from PARKED to @how and send it its
 * wake-up; false if none was parked. The caller counted it first (as a
 * searcher or the watcher), so spawns meanwhile wake nobody else. */
static bool wake_parked(weft_runtime_t *rt, unsigned int how)
{
    unsigned int start = ck_pr_faa_uint(&rt->notify_rr, 1);
    for (int k = 0; k < rt->n; k++) {
        weft_loop_t *l = rt->loops[(start + (unsigned)k) % (unsigned)rt->n];
        if (ck_pr_load_uint(&l->parked) == WEFT__PARKED && ck_pr_cas_uint(&l->parked, WEFT__PARKED, how)) {
            weft_loop_t *me = weft__thread()->running;
            if (me && me->rt == rt)
                me->stats.wakeups_sent++;
            ck_pr_inc_64(&l->stats.wakeups);
            uv_async_send(&l->wake);
            return true;
        }
    }
    return false;
}

/* Wake one parked loop as a searcher, unless a loop already searches or
 * none is parked. The caller published its work before; the full fence
 * orders that against our reads of nsearching and parked (a loop that parks
 * announces it, fences, then looks for work: one of the two sees the other). */
void weft__rt_notify(weft_runtime_t *rt)
{
    ck_pr_fence_memory();
    if (ck_pr_load_uint(&rt->nsearching) || !ck_pr_load_uint(&rt->nparked))
        return;   /* a searcher will find it (and wake another if it finds more) */
    /* count the loop we wake as searching before it can run, so that further
     * spawns meanwhile wake nobody else: at most one searcher per wake */
    ck_pr_inc_uint(&rt->nsearching);
    if (!wake_parked(rt, WEFT__WOKEN_SEARCH))   /* when woken, that loop owns the count */
        ck_pr_dec_uint(&rt->nsearching);   /* nobody parked after all: every loop is awake */
}

/* Wake one parked loop as the watcher (see the header comment), unless a loop
 * searches or watches already, or none is parked. */
static void notify_watch(weft_runtime_t *rt)
{
    ck_pr_fence_memory();
    if (ck_pr_load_uint(&rt->nsearching) || ck_pr_load_uint(&rt->nwatching) || !ck_pr_load_uint(&rt->nparked))
        return;
    if (!ck_pr_cas_uint(&rt->nwatching, 0, 1))
        return;   /* another spawner made one */
    if (!wake_parked(rt, WEFT__WOKEN_WATCH))   /* when woken, that loop owns the count */
        ck_pr_dec_uint(&rt->nwatching);   /* nobody parked after all */
}

/* After a spawn on @l: wake a parked loop to search only when @l holds more
 * never-run tasks than the WEFT__KEEP entries thieves leave to it, and to
 * watch when it holds only those and nobody watches. Nothing happens unless
 * some loop is parked and none searches; those reads are plain loads: the
 * fence is paid only when a wake-up may be sent. A spawn that misses a loop
 * parking at that very moment loses nothing: the task is in @l's queue,
 * behind a token @l runs; the parking loop's own last look (weft__rt_park)
 * sees the entries and makes it watch; and the next spawn looks again. */
static inline void notify_spawn(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    if (WEFT__LIKELY(!ck_pr_load_uint(&rt->nparked)) || ck_pr_load_uint(&rt->nsearching))
        return;
    if (ck_ring_size(&l->newq) <= WEFT__KEEP && !l->backlog) {
        if (!ck_pr_load_uint(&rt->nwatching))
            notify_watch(rt);   /* a watcher takes them if this loop gets stuck */
        return;
    }
    weft__rt_notify(rt);
}

int weft_spawn(weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts)
{
    weft_loop_t *l = weft__thread()->running;
    if (out)
        *out = NULL;
    if (!l)
        return WEFT_ENOLOOP;
    if (!l->rt || (opts && opts->eager_start))
        return weft_loop_create_task(l, out, fn, arg, opts);
    weft__task_t *t;
    int rc = weft__task_alloc(l, fn, arg, opts, &t);
    if (rc < 0)
        return rc;
    t->joinable = 1;
    if (out)
        *out = weft__task_new_ref(t);
    if (l->rt->n == 1) {   /* nobody to steal it: its own step starts exactly this task */
        weft__task_queue_step(l, t);
        l->stats.spawned++;
        return 0;
    }
    if (queue_local(l, t, true) < 0) {
        inject(l->rt, t);   /* no memory for a token: another loop may take it */
        weft__rt_notify(l->rt);
        return 0;
    }
    l->stats.spawned++;
    notify_spawn(l);
    return 0;
}

void weft__sched_start_posted(weft_loop_t *l, weft__task_t *t)
{
    if (ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED) {   /* never ran: drop the loop's reference */
        if (l->rt)
            weft__rt_task_gone(l->rt, weft__thread()->running);
        weft_future_release(&t->fut);
        return;
    }
    weft__task_start_claimed(l, t);
}

static void msg_start(weft_loop_t *l, weft__msg_t *m)
{
    weft__task_t *t = m->a;
    free(m);
    weft__sched_start_posted(l, t);
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
            weft__rt_task_gone(loop->rt, weft__thread()->running);
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

/* A thief looks at victim @v, which holds only entries it keeps: true if @v
 * began no ready-queue snapshot for WEFT__STUCK_NS since a thief first saw
 * it so (the clock restarts whenever its counter moved). The record lives on
 * the victim, shared by all thieves; racing thieves write about the same. */
static bool victim_stuck(weft_loop_t *v)
{
    unsigned int seq = ck_pr_load_uint(&v->seq);
    uint64_t now = uv_hrtime();
    if (ck_pr_load_uint(&v->w_seq) != seq) {
        ck_pr_store_64(&v->w_t0, now);
        ck_pr_store_uint(&v->w_seq, seq);
        return false;
    }
    return now - ck_pr_load_64(&v->w_t0) >= WEFT__STUCK_NS;
}

/* How many of @v's @sz ring entries a thief may take: half of a long ring,
 * never its newest entry; none of the last WEFT__KEEP unless @v is stuck. */
static unsigned int steal_quota(weft_loop_t *v, unsigned int sz)
{
    unsigned int want;
    if (sz > WEFT__KEEP)
        want = sz / 2;
    else if (victim_stuck(v))
        want = sz;
    else
        return 0;
    return want > WEFT__STEAL_MAX ? WEFT__STEAL_MAX : want;
}

/* Move up to @want never-run tasks from victim @v's ring to @l's queues. */
static unsigned int steal_from(weft_loop_t *l, weft_loop_t *v, unsigned int want)
{
    unsigned int got = 0;
    void *p;
    while (got < want && ck_ring_trydequeue_spmc(&v->newq, v->newq_buf, &p)) {
        WEFT__TSAN_ACQUIRE(p);
        if (ck_pr_load_uint(&((weft__task_t *)p)->claim) == 1) {   /* its awaiter ran it inline */
            weft_future_release(p);
            continue;
        }
        l->stats.stolen++;   /* counted at once: a test tells the rounds with a theft by it */
        if (queue_local(l, p, true) < 0) {
            inject(l->rt, p);
            break;
        }
        got++;
    }
    if (got)
        l->stats.steals++;
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
        unsigned int got = steal_from(l, v, steal_quota(v, sz));
        if (got)
            return (int)got;
    }
    return 0;
}

/* Tasks a loop holds: started and not done (pinned to it), plus never run. */
static unsigned int loop_load(weft_loop_t *v, unsigned int ring)
{
    return ck_pr_load_uint(&v->ntasks) + ck_pr_load_uint(&v->nbacklog) + ring;
}

/* A busy loop evens out the never-run work of one random other loop. A task
 * stays on the loop that starts it, so work spread by idle loops alone stays
 * as lopsided as it was when the tasks started: a burst of spawns that one
 * loop mostly started before the other woke (a thousand tasks that then
 * yield for long) would keep one core busy and the other nearly idle. So
 * every poll interval a busy loop compares its load with a victim's and
 * takes never-run tasks while the victim holds clearly more, up to half the
 * difference (never the entries thieves leave to a loop that moves on). */
void weft__rt_balance(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    if (rt->n < 2)
        return;
    unsigned int k = xorshift(&l->rng) % (unsigned)(rt->n - 1);
    weft_loop_t *v = rt->loops[k >= (unsigned)l->widx ? k + 1 : k];
    unsigned int sz = ck_ring_size(&v->newq);
    if (sz <= WEFT__KEEP)
        return;
    unsigned int theirs = loop_load(v, sz), mine = loop_load(l, ck_ring_size(&l->newq));
    if (theirs <= mine + WEFT__BALANCE_SLACK)
        return;
    unsigned int want = (theirs - mine) / 2;
    if (want > sz / 2)
        want = sz / 2;
    if (want > WEFT__STEAL_MAX)
        want = WEFT__STEAL_MAX;
    l->stats.steal_attempts++;
    steal_from(l, v, want);
}

/* Entries a thief may take now, in the injector or some other loop's ring
 * (kept ones count if their loop is stuck). */
static bool work_visible(weft_runtime_t *rt, weft_loop_t *self)
{
    if (!inj_empty(rt))
        return true;
    for (int i = 0; i < rt->n; i++) {
        weft_loop_t *v = rt->loops[i];
        unsigned int sz;
        if (v != self && (sz = ck_ring_size(&v->newq)) && (sz > WEFT__KEEP || victim_stuck(v)))
            return true;
    }
    return false;
}

/* Any never-run entry in another loop's ring, kept ones included. */
static bool entries_visible(weft_runtime_t *rt, weft_loop_t *self)
{
    for (int i = 0; i < rt->n; i++)
        if (rt->loops[i] != self && ck_ring_size(&rt->loops[i]->newq))
            return true;
    return false;
}

/* Stop searching. The last searcher to stop looks once more for stealable
 * work and wakes a parked loop for it: producers that saw it searching woke
 * nobody (Go's and Tokio's rule). Returns true if it was the last. */
static bool stop_searching(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    l->searching = false;
    bool last;
    ck_pr_dec_uint_zero(&rt->nsearching, &last);
    if (last) {
        ck_pr_fence_memory();
        if (work_visible(rt, l))
            weft__rt_notify(rt);
    }
    return last;
}

/* Stop watching; if entries are still visible and nobody else watches, go
 * on watching after all (a spawner that saw us watching woke nobody). */
static void stop_watching(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    l->watching = false;
    ck_pr_dec_uint(&rt->nwatching);
    ck_pr_fence_memory();
    if (entries_visible(rt, l) && ck_pr_cas_uint(&rt->nwatching, 0, 1))
        l->watching = true;
}

void weft__rt_stop_searching(weft_loop_t *l)
{
    if (l->searching)
        stop_searching(l);
}

void weft__rt_stop_watching(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    l->watching = false;
    ck_pr_dec_uint(&rt->nwatching);
    ck_pr_fence_memory();
    if (entries_visible(rt, l))
        notify_watch(rt);
}

/* Spin budget of one search, adapted per loop: doubled when a search finds
 * work, halved when it ends empty-handed. */
#define WEFT__SPIN_MIN_NS 2000u
#define WEFT__SPIN_MAX_NS 64000u
#define WEFT__SPIN_START_NS 16000u

static int search_once(weft_loop_t *l)
{
    int got = take_injected(l);
    if (!got && l->rt->n > 1)
        got = steal(l);
    return got;
}

/* A loop with nothing ready: look for work elsewhere, spinning over the
 * injector, the other loops' queues and this loop's own inbox for a bounded,
 * adaptive time before the caller parks, so that work arriving a few
 * microseconds later finds a searcher instead of a sleeper. At most
 * max_search loops search at once (on few cores, spinners would take the CPU
 * from the loops that have work). */
bool weft__rt_find_work(weft_loop_t *l)
{
    weft_runtime_t *rt = l->rt;
    if (!l->searching) {
        if (take_injected(l))
            return true;
        if (ck_pr_load_uint(&rt->nsearching) >= rt->max_search)
            return rt->n > 1 && steal(l) > 0;   /* one look, as a non-searcher */
        ck_pr_inc_uint(&rt->nsearching);
        l->searching = true;
    }
    l->stats.searches++;
    if (!l->spin_ns)
        l->spin_ns = WEFT__SPIN_START_NS;
    uint64_t t0 = uv_hrtime();
    for (unsigned int i = 1;; i++) {
        int got = search_once(l);
        if (got || !weft__inbox_empty(&l->inbox)) {
            l->stats.search_hits++;
            if (l->spin_ns < WEFT__SPIN_MAX_NS)
                l->spin_ns *= 2;
            stop_searching(l);
            return true;
        }
        if ((i & 7) == 0) {
            if (uv_hrtime() - t0 >= l->spin_ns || weft__rt_shutting(rt))
                break;
            if ((i & 127) == 0)
                sched_yield();   /* a loaded machine: let a thread with work run */
        }
        ck_pr_stall();
    }
    if (l->spin_ns > WEFT__SPIN_MIN_NS)
        l->spin_ns /= 2;
    if (stop_searching(l) && search_once(l))   /* the last searcher looks once more */
        return true;
    return false;
}

void weft__rt_poll_injector(weft_loop_t *l) { take_injected(l); }

/* Park @l: announce it, fence, look for work one last time, then block in
 * uv_run(UV_RUN_ONCE) until I/O, a timer or a wake-up. @has_work re-checks the
 * loop's own queues. Producers publish, fence, then read `parked`: either
 * they see the loop parked and wake it, or its last look sees their work. */
void weft__rt_park(weft_loop_t *l, bool (*has_work)(weft_loop_t *))
{
    weft_runtime_t *rt = l->rt;
    ck_pr_store_uint(&l->parked, WEFT__PARKED);
    ck_pr_inc_uint(&rt->nparked);
    ck_pr_fence_memory();
    bool park = !has_work(l) && !take_injected(l) && !(rt->n > 1 && work_visible(rt, l) && steal(l));
    if (park && rt->n > 1) {
        /* entries that thieves leave to a busy loop: somebody must look again
         * in case that loop gets stuck; once none are left, park for good */
        if (entries_visible(rt, l)) {
            if (!l->watching && ck_pr_cas_uint(&rt->nwatching, 0, 1))
                l->watching = true;
        } else if (l->watching) {
            stop_watching(l);
        }
        if (l->watching)
            weft__loop_arm_watch(l);
    }
    if (park) {
        uint64_t now = uv_hrtime();
        if (l->park_t0)
            l->stats.busy_ns += now - l->park_t0;
        l->park_t0 = now;
        l->stats.parks++;
        uv_run(&l->uv, UV_RUN_ONCE);
        now = uv_hrtime();
        l->stats.parked_ns += now - l->park_t0;
        l->park_t0 = now;
    }
    unsigned int how = ck_pr_fas_uint(&l->parked, WEFT__AWAKE);
    ck_pr_dec_uint(&rt->nparked);
    if (how == WEFT__WOKEN_SEARCH)
        l->searching = true;   /* the waker counted us as a searcher */
    else if (how == WEFT__WOKEN_WATCH) {
        if (l->watching)
            ck_pr_dec_uint(&rt->nwatching);   /* counted twice: we already watched */
        l->watching = true;   /* the waker counted us as the watcher */
    }
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
