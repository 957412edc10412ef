/* The event loop: weft's ready queue and timers on one libuv loop.
 *
 * One iteration (run_once), like asyncio's _run_once:
 *   1. poll I/O: block in uv_run(UV_RUN_ONCE) when nothing is ready (the one
 *      libuv timer is armed for the earliest weft deadline, the async handle
 *      wakes it for cross-thread work); with work ready, poll without blocking
 *      at least every WEFT__POLL_INTERVAL callbacks (fairness for I/O)
 *   2. move cross-thread messages (call_soon_threadsafe) into the ready queue
 *   3. move expired timers into the ready queue in (deadline, FIFO) order
 *   4. run exactly the callbacks ready now; anything they schedule runs in
 *      the next iteration.
 * A task step is one ready-queue entry, so tasks and callbacks interleave in
 * asyncio's order. */
#include "core/loop.h"
#include "core/task.h"
#include "debug/debug.h"
#include "runtime/sched.h"

#include <limits.h>
#include <math.h>
#include <sched.h>

#define WEFT__POLL_INTERVAL 61
#define WEFT__HCHUNK 64
#define WEFT__STACK_KEEP_IDLE 256
#define WEFT__TASK_KEEP_IDLE 4096   /* cached task structs kept by a loop going idle */

static _Thread_local weft__thread_t tls_thread;

/* A thread's first call: its scheduler context. Out of line, so that the
 * accessor below stays a handful of instructions without a frame. */
static WEFT__NOINLINE weft__thread_t *thread_init(weft__thread_t *p)
{
    weft__coro_init_thread(&p->sched);
    p->coro = &p->sched;
    p->inited = true;
    return p;
}

WEFT__NOINLINE weft__thread_t *weft__thread(void)
{
    weft__thread_t *p = &tls_thread;
    WEFT__OPAQUE(p);
    if (WEFT__UNLIKELY(!p->inited))
        return thread_init(p);
    return p;
}

uint64_t weft__now_ns(void) { return uv_hrtime(); }

int weft__loop_check_at(const weft_loop_t *l, const char *fn)
{
    if (!l)
        return WEFT_EINVAL;
    if (ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED)
        return WEFT_ECLOSED;
    if (!weft__loop_on_thread(l)) {
        if (l->debug)
            weft__log(WEFT_LOG_ERROR,
                      "weft: %s() called from a thread that does not run this loop (loop %d); loop-bound calls "
                      "must run on the loop's thread: use weft_call_soon_threadsafe() or weft_spawn_on()",
                      fn, l->widx);
        return WEFT_EWRONGLOOP;
    }
    return 0;
}

bool weft__loop_on_thread(const weft_loop_t *l)
{
    /* the loop runs here, or it is not running at all (setup code) */
    if (weft__thread()->running == l)
        return true;
    return !(ck_pr_load_uint(&l->flags) & WEFT__L_RUNNING);
}

bool weft__loop_is_local(const weft_loop_t *l)
{
    if (weft__thread()->running == l)
        return true;
    if (ck_pr_load_uint(&l->flags) & WEFT__L_RUNNING)
        return false;
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &l->owner);
}

void weft__loop_retain(weft_loop_t *l) { ck_pr_inc_uint(&l->refs); }

void weft__loop_release(weft_loop_t *l)
{
    bool zero;
    ck_pr_dec_uint_zero(&l->refs, &zero);
    if (zero) {
        for (size_t i = 0; i < l->nhchunks; i++)
            free(l->hchunks[i]);
        free(l->hchunks);
        free(l);
    }
}

static void on_uv_timer(uv_timer_t *t) { (void)t; }
static void on_wake(uv_async_t *a) { (void)a; }

int weft_loop_new(weft_loop_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    weft_loop_t *l = calloc(1, sizeof *l);
    if (!l)
        return WEFT_ENOMEM;
    int rc = uv_loop_init(&l->uv);
    if (rc < 0) {
        free(l);
        return rc;
    }
    uv_timer_init(&l->uv, &l->uvtimer);
    uv_async_init(&l->uv, &l->wake, on_wake);
    l->uv.data = l;
    l->refs = 1;
    l->armed_ms = UINT64_MAX;
    l->w_seq = UINT_MAX;   /* no snapshot seen yet: thieves start their clock at their first look */
    ck_stack_init(&l->inbox);
    weft__stack_pool_init(&l->stacks);
    l->owner = uv_thread_self();
    weft__debug_loop_init(l);
    *out = l;
    return 0;
}

/* ---- handles and the ready queue ------------------------------------------------ */

void weft__ready_push(weft_loop_t *l, weft__handle_t *h)
{
    h->flags |= WEFT__H_READY;
    h->next = NULL;
    h->prev = l->ready.tail;
    h->seq = l->iter;
    if (l->ready.tail)
        l->ready.tail->next = h;
    else
        l->ready.head = h;
    l->ready.tail = h;
    l->ready.count++;
}

static weft__handle_t *ready_pop(weft_loop_t *l)
{
    weft__handle_t *h = l->ready.head;
    l->ready.head = h->next;
    if (l->ready.head)
        l->ready.head->prev = NULL;
    else
        l->ready.tail = NULL;
    l->ready.count--;
    h->flags &= ~(uint32_t)WEFT__H_READY;
    return h;
}

void weft__ready_remove(weft_loop_t *l, weft__handle_t *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        l->ready.head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        l->ready.tail = h->prev;
    l->ready.count--;
    if (l->ntodo && h->seq < l->iter)
        l->ntodo--;   /* it was part of this iteration's snapshot */
    h->next = h->prev = NULL;
    h->flags &= ~(uint32_t)WEFT__H_READY;
}

weft__handle_t *weft__handle_new(weft_loop_t *l)
{
    weft__handle_t *h = l->hfree;
    if (WEFT__UNLIKELY(!h) && l->hcold) {
        l->hfree = l->hcold;
        l->hcold = NULL;
        h = l->hfree;
    }
    if (WEFT__UNLIKELY(!h)) {
        void **chunks = realloc(l->hchunks, (l->nhchunks + 1) * sizeof *chunks);
        if (!chunks)
            return NULL;
        l->hchunks = chunks;
        weft__handle_t *c = calloc(WEFT__HCHUNK, sizeof *c);
        if (!c)
            return NULL;
        chunks[l->nhchunks++] = c;
        for (int i = WEFT__HCHUNK - 1; i >= 0; i--) {
            c[i].next = l->hfree;
            c[i].flags = WEFT__H_POOLED;
            c[i].heap_idx = UINT32_MAX;
            c[i].loop = l;
            l->hfree = &c[i];
        }
        h = l->hfree;
    }
    l->hfree = h->next;
    h->next = NULL;
    h->flags = WEFT__H_POOLED;
    h->cancel_bits &= ~((uint64_t)1 << (h->gen & 63));   /* a new use, not cancelled */
    return h;
}

static void handle_recycle(weft_loop_t *l, weft__handle_t *h)
{
    bool cancelled = h->flags & WEFT__H_CANCELLED;
    h->gen++;
    h->flags = WEFT__H_POOLED;
    if (WEFT__UNLIKELY(cancelled)) {
        h->next = l->hcold;
        l->hcold = h;
    } else {
        h->next = l->hfree;
        l->hfree = h;
    }
}

/* asyncio's context for a failed callback: the handle (its use that just ran)
 * and the message the callback attached with weft_raise. */
static void report_callback(weft_loop_t *l, int rc, char *msg, weft_handle_t hd, weft_callback_t cb, void *arg)
{
    weft_error_info_t info = {
        .message = "Exception in callback", .code = rc, .detail = msg, .handle = hd, .callback = cb,
        .callback_arg = arg,
    };
    weft_loop_call_exception_handler(l, &info);
    free(msg);
}

/* Unlink and recycle the cancelled pooled handles of the ready queue (tokens
 * of tasks their awaiters ran inline pile up there while a long step runs),
 * keeping the order of the rest and the count of this iteration's snapshot
 * still to run. Owner thread; may run inside a step. */
void weft__ready_compact(weft_loop_t *l)
{
    weft__handle_t **pp = &l->ready.head, *last = NULL;
    size_t i = 0, todo = l->ntodo;
    while (*pp) {
        weft__handle_t *h = *pp;
        if ((h->flags & (WEFT__H_CANCELLED | WEFT__H_POOLED)) == (WEFT__H_CANCELLED | WEFT__H_POOLED)) {
            *pp = h->next;
            l->ready.count--;
            if (i < todo)
                l->ntodo--;
            handle_recycle(l, h);
        } else {
            h->prev = last;
            last = h;
            pp = &h->next;
        }
        i++;
    }
    l->ready.tail = last;
    l->dead_tokens = 0;
}

static void user_dispatch(weft__handle_t *h)
{
    weft_loop_t *l = h->loop;
    weft_callback_t cb = h->u.user.cb;
    void *arg = h->u.user.arg;
    weft_handle_t hd = { .h = h, .gen = h->gen, .when_ns = (h->flags & WEFT__H_TIMER_USE) ? h->when : UINT64_MAX };
    handle_recycle(l, h);
    weft__raise_capture_begin();
    int rc = cb(arg);
    char *msg = weft__raise_capture_end(rc);
    if (rc < 0)
        report_callback(l, rc, msg, hd, cb, arg);
}

static int schedule(weft_loop_t *l, bool timer, uint64_t when, weft_callback_t cb, void *arg, weft_handle_t *out,
                    const char *api)
{
    int rc = weft__loop_check_at(l, api);
    if (rc < 0)
        return rc;
    if (!cb)
        return WEFT_EINVAL;
    weft__handle_t *h = weft__handle_new(l);
    if (!h)
        return WEFT_ENOMEM;
    h->fn = user_dispatch;
    h->u.user.cb = cb;
    h->u.user.arg = arg;
    if (timer) {
        h->flags |= WEFT__H_TIMER_USE;
        if ((rc = weft__timer_start(l, h, when)) < 0) {
            handle_recycle(l, h);
            return rc;
        }
    } else {
        weft__ready_push(l, h);
    }
    if (out) {
        out->h = h;
        out->gen = h->gen;
        out->when_ns = timer ? when : UINT64_MAX;
    }
    return 0;
}

int weft_call_soon(weft_loop_t *loop, weft_callback_t cb, void *arg, weft_handle_t *out)
{
    return schedule(loop, false, 0, cb, arg, out, __func__);
}

int weft_call_at(weft_loop_t *loop, double when, weft_callback_t cb, void *arg, weft_handle_t *out)
{
    if (isnan(when))
        return WEFT_EINVAL;
    return schedule(loop, true, weft__secs_to_ns(when), cb, arg, out, __func__);
}

int weft_call_later(weft_loop_t *loop, double delay, weft_callback_t cb, void *arg, weft_handle_t *out)
{
    if (isnan(delay))
        return WEFT_EINVAL;
    uint64_t now = weft__now_ns(), when;
    if (!(delay < 0)) {
        when = weft__deadline_ns(now, delay);   /* saturates: a huge delay is "never" */
    } else {   /* a deadline in the past (asyncio keeps it: earlier ones run first) */
        uint64_t back = weft__secs_to_ns(-delay);
        when = back < now ? now - back : 0;
    }
    return schedule(loop, true, when, cb, arg, out, __func__);
}

bool weft_handle_cancelled(weft_handle_t handle)
{
    const weft__handle_t *h = handle.h;
    if (!h || !(h->flags & WEFT__H_POOLED))
        return false;
    if (h->gen == handle.gen)
        return (h->flags & WEFT__H_CANCELLED) != 0;
    if (h->gen - handle.gen >= 64)
        return false;   /* the slot was reused 64 times since: no record left */
    return (h->cancel_bits >> (handle.gen & 63)) & 1;
}

double weft_handle_when(weft_handle_t handle)
{
    return handle.h && handle.when_ns != UINT64_MAX ? (double)handle.when_ns / 1e9 : NAN;
}

int weft_handle_cancel(weft_handle_t handle)
{
    weft__handle_t *h = handle.h;
    if (!h || !(h->flags & WEFT__H_POOLED))
        return 0;
    weft_loop_t *l = h->loop;
    if (ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED)
        return 0;
    if (h->gen != handle.gen) {
        /* already ran (or ran and was reused): nothing to stop, but asyncio's
         * Handle.cancelled() is True from now on */
        if (h->gen - handle.gen < 64)
            h->cancel_bits |= (uint64_t)1 << (handle.gen & 63);
        return 0;
    }
    if (h->flags & WEFT__H_CANCELLED)
        return 0;
    h->cancel_bits |= (uint64_t)1 << (h->gen & 63);
    if (h->flags & WEFT__H_TIMER) {
        weft__timer_cancel(l, h);
        h->flags |= WEFT__H_CANCELLED;
        handle_recycle(l, h);
        return 1;
    }
    if (h->flags & WEFT__H_READY) {
        h->flags |= WEFT__H_CANCELLED;   /* skipped and recycled when its turn comes */
        return 1;
    }
    return 0;
}

/* ---- cross-thread inbox ------------------------------------------------------- */

weft__msg_t *weft__msg_new(void (*run)(weft_loop_t *, weft__msg_t *))
{
    weft__msg_t *m = calloc(1, sizeof *m);
    if (m)
        m->run = run;
    return m;
}

/* Any thread. The senders count lets weft_loop_close wait until no thread is
 * between its closed-check and its uv_async_send, and a runtime worker wait,
 * before it exits, for the user's posts that passed the shutdown check
 * (@user: weft_call_soon_threadsafe, refused once the runtime shuts down). */
/* The posters' fields must not share a cache line with `flags` or with the
 * owner's ready queue (see struct weft_loop). */
_Static_assert(offsetof(weft_loop_t, refs) >= offsetof(weft_loop_t, flags) + 64 &&
                   offsetof(weft_loop_t, ready) >= offsetof(weft_loop_t, inbox) + sizeof(ck_stack_t) + 64 &&
                   offsetof(weft_loop_t, senders) > offsetof(weft_loop_t, refs) &&
                   offsetof(weft_loop_t, inbox) > offsetof(weft_loop_t, senders),
               "struct weft_loop: posters' fields off the owner's cache lines");

static int loop_post(weft_loop_t *l, weft__msg_t *m, bool user)
{
    if (user && l->rt && weft__rt_shutting(l->rt))
        return WEFT_ECLOSED;   /* refused without touching `senders`, which the exiting worker waits out */
    ck_pr_inc_uint(&l->senders);
    /* counted, then look (pairs with weft__loop_run_worker's exit). The count
     * is an atomic read-modify-write, so ordering it before the loads needs
     * no full fence where such operations are fences already (x86). */
    ck_pr_fence_atomic_load();
    if ((ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED) || (user && l->rt && weft__rt_shutting(l->rt))) {
        ck_pr_dec_uint(&l->senders);
        return WEFT_ECLOSED;
    }
    WEFT__TSAN_RELEASE(m);
    weft__inbox_push(&l->inbox, &m->entry);
    /* publish, then look at `parked` (pairs with the parking loop); the push
     * is an atomic read-modify-write too */
    ck_pr_fence_atomic_load();
    /* A runtime loop announces parking: only the poster that moves it from
     * PARKED to WOKEN sends (one uv_async_send per batch); a loop that is
     * running or searching drains its inbox without one. A standalone loop is
     * always woken (uv_async_send coalesces). */
    if (!l->rt || !(ck_pr_load_uint(&l->flags) & WEFT__L_RUNNING)) {
        uv_async_send(&l->wake);
    } else if (ck_pr_load_uint(&l->parked) == WEFT__PARKED &&
               ck_pr_cas_uint(&l->parked, WEFT__PARKED, WEFT__WOKEN_MSG)) {
        ck_pr_inc_64(&l->stats.wakeups);
        uv_async_send(&l->wake);
    }
    WEFT__TSAN_RELEASE(&l->senders);
    ck_pr_dec_uint(&l->senders);
    return 0;
}

int weft__loop_post(weft_loop_t *l, weft__msg_t *m) { return loop_post(l, m, false); }

static void msg_callback(weft_loop_t *l, weft__msg_t *m)
{
    if (ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED) {
        free(m);
        return;
    }
    weft__handle_t *h = weft__handle_new(l);
    if (!h) {   /* out of memory: run it now rather than lose it */
        weft__raise_capture_begin();
        int rc = m->cb(m->a);
        char *msg = weft__raise_capture_end(rc);
        if (rc < 0)
            report_callback(l, rc, msg, (weft_handle_t){ .h = NULL, .gen = 0, .when_ns = UINT64_MAX }, m->cb, m->a);
        else
            free(msg);
    } else {
        h->fn = user_dispatch;
        h->u.user.cb = m->cb;
        h->u.user.arg = m->a;
        weft__ready_push(l, h);
    }
    free(m);
}

int weft_call_soon_threadsafe(weft_loop_t *loop, weft_callback_t cb, void *arg)
{
    if (!loop || !cb)
        return WEFT_EINVAL;
    weft__msg_t *m = weft__msg_new(msg_callback);
    if (!m)
        return WEFT_ENOMEM;
    m->cb = cb;
    m->a = arg;
    int rc = loop_post(loop, m, true);
    if (rc < 0)
        free(m);
    return rc;
}

static void drain_inbox(weft_loop_t *l)
{
    ck_stack_entry_t *e = weft__inbox_pop_all(&l->inbox);
    ck_stack_entry_t *rev = NULL;
    while (e) {   /* the stack is LIFO: reverse to keep submission order */
        WEFT__TSAN_ACQUIRE(e);
        ck_stack_entry_t *n = e->next;
        e->next = rev;
        rev = e;
        e = n;
    }
    while (rev) {
        weft__msg_t *m = (weft__msg_t *)(void *)rev;
        rev = rev->next;
        l->stats.inbox_msgs++;
        m->run(l, m);
    }
}

/* ---- running ------------------------------------------------------------------ */

/* A watching runtime loop parks at most 1 ms (scheduler.c). */
void weft__loop_arm_watch(weft_loop_t *l)
{
    if (l->armed_ms > 1) {
        uv_timer_start(&l->uvtimer, on_uv_timer, 1, 1);
        l->armed_ms = 1;
    }
}

static void arm_uv_timer(weft_loop_t *l)
{
    uint64_t when = weft__timers_next(&l->timers);
    if (when == UINT64_MAX) {
        if (l->armed_ms != UINT64_MAX) {
            uv_timer_stop(&l->uvtimer);
            l->armed_ms = UINT64_MAX;
        }
        return;
    }
    uv_update_time(&l->uv);
    uint64_t now = weft__now_ns();
    uint64_t ms = when <= now ? 0 : (when - now + 999999) / 1000000;
    /* repeat every 1 ms: if libuv finds the timer due in its timers phase, just
     * before polling, a one-shot timer would be spent and the poll would block
     * with no timeout at all */
    uv_timer_start(&l->uvtimer, on_uv_timer, ms, 1);
    l->armed_ms = ms;
}

static bool has_work(weft_loop_t *l)
{
    if (l->ready.count || !weft__inbox_empty(&l->inbox) || (ck_pr_load_uint(&l->flags) & WEFT__L_STOPPING))
        return true;
    return l->timers.n && weft__timers_next(&l->timers) <= weft__now_ns();   /* a deadline already passed: no blocking poll */
}

static void run_once(weft_loop_t *l)
{
    bool busy = has_work(l);
    if (l->rt) {
        if (!busy)
            busy = weft__rt_find_work(l);   /* injection queue, other loops, spinning a little */
        else if (WEFT__UNLIKELY(l->searching))
            weft__rt_stop_searching(l);     /* woken to search, but work of its own came first */
    }
    if (!busy) {
        uint64_t now = weft__now_ns();
        if (now - l->last_trim >= 1000000000u) {   /* going idle: stacks unused for a second go back */
            weft__stack_pool_trim(&l->stacks, WEFT__STACK_KEEP_IDLE);
            weft__task_cache_trim(l, WEFT__TASK_KEEP_IDLE);
            l->last_trim = now;
        }
        arm_uv_timer(l);
        if (l->rt)
            weft__rt_park(l, has_work);   /* a last look for work, then the blocking poll */
        else
            uv_run(&l->uv, UV_RUN_ONCE);
        l->since_poll = 0;
    } else if (l->since_poll >= WEFT__POLL_INTERVAL) {
        uv_run(&l->uv, UV_RUN_NOWAIT);
        l->since_poll = 0;
        if (l->rt)
            weft__rt_balance(l);
    }
    if (!weft__inbox_empty(&l->inbox))
        drain_inbox(l);
    if (l->timers.n) {
        uint64_t now = weft__now_ns();
        weft__handle_t *h;
        while ((h = weft__timers_pop_due(&l->timers, now)))
            weft__ready_push(l, h);
    }
    if (WEFT__UNLIKELY(l->watching) && l->ready.count)
        weft__rt_stop_watching(l);   /* a step may run for long: another loop watches meanwhile */
    l->ntodo = l->ready.count;   /* a field: weft__ready_compact / _remove may take some out */
    l->iter++;                   /* handles queued from now on belong to the next snapshot */
    ck_pr_store_uint(&l->seq, l->seq + 1);   /* thieves tell a loop that moves on from one stuck in a step */
    l->since_poll += l->ntodo;
    while (l->ntodo) {
        l->ntodo--;
        weft__handle_t *h = ready_pop(l);
        if (WEFT__UNLIKELY(h->flags & WEFT__H_CANCELLED)) {
            handle_recycle(l, h);
            continue;
        }
        if (WEFT__UNLIKELY(l->debug))
            weft__debug_run_handle(l, h);
        else
            h->fn(h);
    }
    if (WEFT__UNLIKELY(l->debug))
        weft__debug_check_dump(l);
}

static int run_check(weft_loop_t *l)
{
    if (!l)
        return WEFT_EINVAL;
    unsigned int f = ck_pr_load_uint(&l->flags);
    if (f & WEFT__L_CLOSED)
        return WEFT_ECLOSED;
    if (f & WEFT__L_RUNNING)
        return WEFT_EBUSY;
    if (weft__thread()->running)
        return WEFT_ENESTED;
    return 0;
}

static void run_begin(weft_loop_t *l)
{
    weft__thread_t *ts = weft__thread();
    weft__stack_thread_init();
    ts->running = l;
    l->owner = uv_thread_self();
    ck_pr_or_uint(&l->flags, WEFT__L_RUNNING);
    if (l->debug)
        weft__debug_loop_running(l, true);
}

static void run_end(weft_loop_t *l)
{
    if (l->debug)
        weft__debug_loop_running(l, false);
    ck_pr_and_uint(&l->flags, ~(unsigned int)(WEFT__L_RUNNING | WEFT__L_STOPPING));
    weft__thread()->running = NULL;
}

int weft_loop_run_forever(weft_loop_t *loop)
{
    int rc = run_check(loop);
    if (rc < 0)
        return rc;
    run_begin(loop);
    for (;;) {
        run_once(loop);
        if (ck_pr_load_uint(&loop->flags) & WEFT__L_STOPPING)
            break;
    }
    run_end(loop);
    return 0;
}

/* A runtime worker: run until the runtime shuts down and no task is left in
 * it. At the shutdown request every task of this loop is cancelled once; tasks
 * started later are cancelled as they start (weft__task_start_claimed). */
int weft__loop_run_worker(weft_loop_t *l)
{
    run_begin(l);
    bool cancelled = false;
    l->park_t0 = uv_hrtime();
    for (;;) {
        if ((++l->tick & 63) == 0)
            weft__rt_poll_injector(l);   /* fairness: the shared queue is never starved */
        run_once(l);
        if (weft__rt_shutting(l->rt)) {
            if (!cancelled) {
                cancelled = true;
                for (weft__task_t *t = l->tasks; t; t = t->nextt) {
                    t->shutdown_cancel = 1;
                    weft_task_cancel(&t->fut, NULL);
                }
            }
            /* no task left anywhere, nothing ready here, and no message on
             * its way: weft_call_soon_threadsafe refuses new ones from now
             * on, so a post in flight (senders) is one that passed its check
             * before the shutdown and must still run */
            if (weft__rt_live(l->rt) == 0 && !l->ready.count) {
                /* a post in flight is a few instructions from done (the same
                 * wait as weft_loop_close's); a parked loop would not notice it
                 * ending in a refusal */
                for (int spins = 0; ck_pr_load_uint(&l->senders); spins++) {
                    if (spins < 100)
                        ck_pr_stall();
                    else
                        sched_yield();   /* the sender may wait for this very core */
                }
                ck_pr_fence_memory();   /* no sender, then the inbox: a finished post is visible */
                WEFT__TSAN_ACQUIRE(&l->senders);
                if (weft__inbox_empty(&l->inbox))
                    break;
            }
        }
    }
    uint64_t now = uv_hrtime();
    l->stats.busy_ns += now - l->park_t0;
    run_end(l);
    return 0;
}

static void stop_on_done(weft_future_t *f, void *arg)
{
    (void)f;
    weft_loop_stop(arg);
}

int weft_loop_run_until_complete(weft_loop_t *loop, weft_future_t *fut, weft_value_t *out)
{
    int rc = run_check(loop);
    if (rc < 0)
        return rc;
    if (!fut)
        return WEFT_EINVAL;
    if (fut->loop != loop)
        return WEFT_EWRONGLOOP;
    if (!weft_future_done(fut)) {
        if ((rc = weft_future_add_done_callback(fut, stop_on_done, loop)) < 0)
            return rc;
        rc = weft_loop_run_forever(loop);
        weft_future_remove_done_callback(fut, stop_on_done, loop);
        if (rc < 0)
            return rc;
        if (!weft_future_done(fut))
            return WEFT_ESTOPPED;
    }
    return weft_future_result(fut, out);
}

int weft_loop_stop(weft_loop_t *loop)
{
    if (!loop)
        return WEFT_EINVAL;
    ck_pr_or_uint(&loop->flags, WEFT__L_STOPPING);
    return 0;
}

bool weft_loop_is_running(const weft_loop_t *loop)
{
    return loop && (ck_pr_load_uint(&loop->flags) & WEFT__L_RUNNING);
}

bool weft_loop_is_closed(const weft_loop_t *loop)
{
    return loop && (ck_pr_load_uint(&loop->flags) & WEFT__L_CLOSED);
}

uint64_t weft_loop_time_ns(const weft_loop_t *loop)
{
    (void)loop;
    return weft__now_ns();
}

double weft_loop_time(const weft_loop_t *loop)
{
    return (double)weft_loop_time_ns(loop) / 1e9;
}

int weft_get_running_loop(weft_loop_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = weft__thread()->running;
    return *out ? 0 : WEFT_ENOLOOP;
}

weft_loop_t *weft_running_loop(void) { return weft__thread()->running; }

weft_loop_t *weft_get_event_loop(void)
{
    weft__thread_t *ts = weft__thread();
    return ts->running ? ts->running : ts->current;
}

void weft_set_event_loop(weft_loop_t *loop) { weft__thread()->current = loop; }

struct uv_loop_s *weft_loop_uv(weft_loop_t *loop) { return loop ? &loop->uv : NULL; }

/* ---- errors ----------------------------------------------------------------- */

static void default_handler(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)ud;
    const char *tn = info->future ? weft_task_get_name(info->future) : NULL;
    fprintf(stderr, "weft: %s", info->message ? info->message : "Unhandled error in event loop");
    if (info->code)
        fprintf(stderr, ": %s (%s)", weft_err_name(info->code), weft_strerror(info->code));
    if (info->detail)
        fprintf(stderr, ": %s", info->detail);
    if (tn)
        fprintf(stderr, " [task '%s']", tn);
    if (info->callback) {
        uintptr_t fp;
        memcpy(&fp, &info->callback, sizeof fp < sizeof info->callback ? sizeof fp : sizeof info->callback);
        fprintf(stderr, " [handle: callback %#jx(%p)%s]", (uintmax_t)fp, info->callback_arg,
                weft_handle_cancelled(info->handle) ? " cancelled" : "");
    }
    fputc('\n', stderr);
}

void weft_loop_set_exception_handler(weft_loop_t *loop, weft_exception_handler_t fn, void *ud)
{
    if (!loop)
        return;
    loop->eh = fn;
    loop->eh_ud = ud;
}

void weft_loop_call_exception_handler(weft_loop_t *loop, const weft_error_info_t *info)
{
    if (!info)
        return;
    if (loop && loop->eh)
        loop->eh(loop, info, loop->eh_ud);
    else
        default_handler(loop, info, NULL);
}

void weft__report(weft_loop_t *l, const char *message, int code, const char *detail, weft_future_t *f)
{
    weft_error_info_t info = { .message = message, .code = code, .detail = detail, .future = f };
    weft_loop_call_exception_handler(l, &info);
}

/* ---- closing ------------------------------------------------------------------ */

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int weft_loop_close(weft_loop_t *loop)
{
    if (!loop)
        return WEFT_EINVAL;
    unsigned int f = ck_pr_load_uint(&loop->flags);
    if (f & WEFT__L_RUNNING)
        return WEFT_EBUSY;
    if (f & WEFT__L_CLOSED)
        return 0;
    ck_pr_or_uint(&loop->flags, WEFT__L_CLOSED);
    ck_pr_fence_memory();
    while (ck_pr_load_uint(&loop->senders))
        ck_pr_stall();
    WEFT__TSAN_ACQUIRE(&loop->senders);
    /* messages still in the inbox release what they hold (they see CLOSED) */
    drain_inbox(loop);
    /* callbacks that will never run (task steps among them) */
    while (loop->ready.count) {
        weft__handle_t *h = ready_pop(loop);
        if (h->fn == weft__done_dispatch && !(h->flags & WEFT__H_CANCELLED))
            weft_future_release(h->u.done.fut);
        if (h->flags & WEFT__H_POOLED)
            handle_recycle(loop, h);
    }
    weft__timers_clear(&loop->timers);
    /* tasks that never finished: destroyed pending, as asyncio does */
    while (loop->tasks)
        weft__task_abandon(loop->tasks);
    weft__timers_free(&loop->timers);
    weft__signal_loop_closing(loop);   /* asyncio's close removes the signal handlers */
    uv_walk(&loop->uv, close_walk, NULL);
    while (uv_run(&loop->uv, UV_RUN_DEFAULT))
        ;
    uv_loop_close(&loop->uv);
    /* the handle chunks stay until the loop's memory goes (weft__loop_release),
     * so cancelling a handle after close is a harmless no-op */
    weft__stack_pool_destroy(&loop->stacks);
    weft__task_cache_free(loop);
    weft__thread_t *ts = weft__thread();
    if (ts->current == loop)
        ts->current = NULL;
    return 0;
}

int weft_loop_free(weft_loop_t *loop)
{
    if (!loop)
        return WEFT_EINVAL;
    int rc = weft_loop_close(loop);
    if (rc < 0)
        return rc;
    weft__loop_release(loop);
    return 0;
}
