/* Tasks: a coroutine on its own stack plus the future it completes.
 *
 * Life of a task: NEW (queued, no stack) -> RUNNING (its stack is switched in)
 * <-> SUSPENDED (waiting; its step handle is queued again by whoever wakes it)
 * -> DONE. The stack is taken from the loop's pool at the first step and
 * returned right after the last one. Cancellation follows asyncio 3.12: a cancel
 * request either cancels what the task waits on (which wakes it with
 * WEFT_ECANCELED) or sets must_cancel, delivered at the next resumption. */
#include "base/freelist.h"
#include "core/context.h"
#include "core/task.h"
#include "debug/debug.h"
#include "runtime/sched.h"

#include <math.h>

static uint64_t task_counter;   /* atomic: task ids */
static uint64_t name_counter;   /* atomic: "Task-N" numbers, process-wide as in asyncio */

/* Task ids come in blocks of 1024 per thread: unique process-wide, without one
 * shared atomic per task. (Not a suspension point: the TLS access is safe.) */
static uint64_t next_task_id(void)
{
    static _Thread_local uint64_t next, end;
    if (next == end) {
        next = ck_pr_faa_64(&task_counter, 1024);
        end = next + 1024;
    }
    return ++next;
}

/* asyncio's _task_name_counter: taken at creation, only by tasks created
 * without a name, so "Task-N" numbers follow creation order with no gaps
 * (one atomic increment per unnamed task). */
static uint64_t next_name_no(void) { return ck_pr_faa_64(&name_counter, 1) + 1; }

static void task_step_dispatch(weft__handle_t *h);
static void task_timer_dispatch(weft__handle_t *h);
static void task_resume(weft__task_t *t);

#define WEFT__TASK_CACHE 131072   /* task structs a busy loop keeps for reuse (trimmed when it goes idle) */

/* Plain threads (run_coroutine_threadsafe's callers, which also drop the
 * last reference to the tasks they waited for) share one cache under a
 * spinlock: a burst of submissions then reuses the structs of the last one
 * instead of growing the heap again page by page. */
static weft__freelist_t foreign_cache = WEFT__FREELIST_INIT(WEFT__TASK_CACHE, weft__task_t, nextt);

static weft__task_t *foreign_pop(void)
{
    void *next;
    weft__task_t *t = weft__freelist_pop(&foreign_cache, &next);
    /* the next one was likely freed on a loop's CPU: fetch its lines for
     * writing now, while this submission goes on */
    if (next)
        for (size_t off = 0; off < sizeof *t; off += 64)
            WEFT__PREFETCH_W((char *)next + off);
    return t;
}

/* Task structs are recycled through the running loop's cache: no malloc/free
 * (and no heap trimming with its TLB shoot-downs) per task on the hot path.
 * @foreign: allocated by a plain thread (no loop runs here). */
static weft__task_t *task_mem_alloc(weft_loop_t *cur, bool *foreign)
{
    *foreign = !cur;
    if (cur && cur->task_cache) {
        weft__task_t *t = cur->task_cache;
        cur->task_cache = t->nextt;
        cur->ntask_cache--;
        return t;
    }
    if (!cur) {
        weft__task_t *t = foreign_pop();
        if (t)
            return t;
    }
    /* cache-line aligned: the fields a task's life touches span the fewest
     * lines (see weft__task_t) */
    return aligned_alloc(64, (sizeof(weft__task_t) + 63) & ~(size_t)63);
}

static void task_mem_free(weft__task_t *t)
{
    weft_loop_t *cur = weft__thread()->running;
    /* a plain thread's struct goes back to the plain threads, even from a
     * loop (the thread that submitted it will want another) */
    if (t->foreign_mem && !t->fut.loop->debug && weft__freelist_push(&foreign_cache, t))
        return;
    /* debug mode gives the memory back at once, so a release too many finds
     * it freed (ASan reports it; otherwise the magic stays dead longer) */
    if (cur && !cur->debug && cur->ntask_cache < WEFT__TASK_CACHE && !(ck_pr_load_uint(&cur->flags) & WEFT__L_CLOSED)) {
        t->nextt = cur->task_cache;
        cur->task_cache = t;
        cur->ntask_cache++;
        return;
    }
    free(t);
}

void weft__task_cache_trim(weft_loop_t *l, size_t keep)
{
    while (l->ntask_cache > keep) {
        weft__task_t *t = l->task_cache;
        l->task_cache = t->nextt;
        l->ntask_cache--;
        free(t);
    }
    /* the plain threads' cache and the bridges' (cfuture) one go back too */
    weft__freelist_trim(&foreign_cache, keep);
    weft__cfuture_pool_trim(keep);
}

void weft__task_cache_free(weft_loop_t *l)
{
    while (l->task_cache) {
        weft__task_t *t = l->task_cache;
        l->task_cache = t->nextt;
        free(t);
    }
    l->ntask_cache = 0;
}

/* weft_task_opts_t.arg_dtor: exactly once, whichever way the task ends. */
static void task_drop_arg(weft__task_t *t)
{
    weft_dtor_t d = t->arg_dtor;
    if (d) {
        t->arg_dtor = NULL;
        d(t->arg);
    }
}

void weft__task_free(weft__task_t *t)
{
    task_drop_arg(t);
    /* most tasks own none of these: skip the calls */
    if (WEFT__UNLIKELY(t->site || t->cancel_msg || t->prop_msg || t->err_msg || t->name)) {
        free(t->site);
        free(t->cancel_msg);
        free(t->prop_msg);
        free(t->err_msg);
        free(t->name);
    }
    if (t->ctx)
        weft_context_release(t->ctx);
    task_mem_free(t);
}

static void link_task(weft_loop_t *l, weft__task_t *t)
{
    ck_pr_store_8(&t->live, 1);   /* the loop holds its reference until task_retire */
    t->prev = NULL;
    t->nextt = l->tasks;
    if (l->tasks)
        l->tasks->prev = t;
    l->tasks = t;
    ck_pr_store_uint(&l->ntasks, l->ntasks + 1);   /* thieves weigh loops by it */
}

static void unlink_task(weft_loop_t *l, weft__task_t *t)
{
    if (t->prev)
        t->prev->nextt = t->nextt;
    else
        l->tasks = t->nextt;
    if (t->nextt)
        t->nextt->prev = t->prev;
    t->prev = t->nextt = NULL;
    ck_pr_store_uint(&l->ntasks, l->ntasks - 1);
}

void weft__task_set_error(weft__task_t *t, int code, char *msg)
{
    free(t->err_msg);
    t->err_code = code;
    t->err_msg = msg;
}

/* The fields of weft__task_t's two zeroed blocks, one store each (a memset
 * of the block compiles to rep stos, slower than these stores). */
static inline void task_zero_fields(weft__task_t *t)
{
    t->stack = NULL;
    t->back = NULL;
    t->host = NULL;
    t->on_stack = NULL;
    t->cancel_wait = NULL;
    t->wait_obj = NULL;
    t->prev = t->nextt = NULL;
    t->held_by = NULL;
    t->ring_of = NULL;
    t->token = NULL;
    t->claim = 0;
    t->wait_seq = 0;
    t->num_cancels = 0;
    t->state = WEFT_TASK_NEW;
    t->must_cancel = 0;
    t->wait_kind = WEFT__W_NONE;
    t->shutdown_cancel = 0;
    t->nswitch = 0;
    t->slab_stack = 0;
    t->wait_open = 0;
    t->live = 0;
    t->joinable = 0;
    t->left = 0;
    t->foreign_mem = 0;
    t->in_backlog = 0;
    t->timer_set = 0;
    t->wake_status = 0;
    t->on_done = NULL;
    t->cancel_msg = NULL;
    t->err_msg = NULL;
    t->name = NULL;
    t->site = NULL;
    t->prop_id = 0;
    t->prop_msg = NULL;
    t->err_code = 0;
}

/* Allocate a task of @loop, neither linked nor scheduled (claim 0). Any thread. */
int weft__task_alloc(weft_loop_t *loop, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts, weft__task_t **out)
{
    if (!fn)
        return WEFT_EINVAL;
    size_t ss = opts && opts->stack_size ? opts->stack_size : WEFT_DEFAULT_STACK_SIZE;
    if (ss < WEFT_MIN_STACK_SIZE || ss > ((size_t)1 << 30))
        return WEFT_EINVAL;
    weft_loop_t *cur = weft__thread()->running;   /* the loop running here, if any */
    bool foreign;
    weft__task_t *t = task_mem_alloc(cur, &foreign);
    if (!t)
        return WEFT_ENOMEM;
    /* the atomic increments (the name number here, the loop's reference
     * first thing in weft__future_init) come before the stores to the struct:
     * a locked instruction waits for the stores ahead of it, and those miss
     * the cache when the struct was not used recently */
    uint64_t name_no = opts && opts->name ? 0 : next_name_no();
    weft__future_init(&t->fut, loop, true);
    /* a recycled struct holds its last task's values: define every field
     * read before it is written (see the blocks of weft__task_t), and no more
     * (zeroing the whole struct was most of the cost of a spawn) */
    task_zero_fields(t);
    t->foreign_mem = foreign;
    t->fn = fn;
    t->arg = arg;
    t->arg_dtor = opts ? opts->arg_dtor : NULL;
    t->stack_size = ss;
    t->id = next_task_id();
    t->name_no = name_no;
    t->ctx = NULL;
    t->step.fn = task_step_dispatch;
    t->step.loop = loop;
    t->step.heap_idx = UINT32_MAX;
    t->step.flags = 0;
    if (opts && opts->name && !(t->name = weft__strdup(opts->name))) {
        t->arg_dtor = NULL;   /* creation failed: the caller still owns arg */
        weft_future_release(&t->fut);
        return WEFT_ENOMEM;
    }
    t->ctx = weft__context_for_new_task();
    if (WEFT__UNLIKELY(loop->debug))
        t->site = weft__debug_site();
    if (loop->rt)
        weft__rt_task_born(loop->rt, cur);
    *out = t;
    return 0;
}

/* Move a never-run task of another loop to @l, the loop running here (a thief,
 * the injector's taker or an inline join starts it). */
static void adopt(weft_loop_t *l, weft__task_t *t)
{
    if (t->fut.loop != l) {   /* stolen or injected: move ownership here */
        weft_loop_t *old = t->fut.loop;
        weft__loop_retain(l);
        ck_pr_store_ptr(&t->fut.loop, l);
        t->step.loop = l;   /* (its timer is set up by its first sleep, on @l) */
        weft__loop_release(old);
    }
}

/* Claim states: 0 queued, 4 being started (its loop is moving), 1 started
 * (also: run inline by its awaiter), 3 a cancel is being recorded, 2
 * cancelled before it started. A starter takes 0 -> 4, moves the task's loop,
 * then publishes 1, so whoever sees 1 also sees the task's final loop
 * (weft_await's cycle check decides by it whether it may read the task). */
static bool claim_start(weft_loop_t *l, weft__task_t *t)
{
    if (!ck_pr_cas_uint(&t->claim, 0, 4))
        return false;
    adopt(l, t);
    ck_pr_fence_store();
    WEFT__TSAN_RELEASE(&t->fut.loop);
    ck_pr_store_uint(&t->claim, 1);
    return true;
}

/* Start a queued task (claim 0) on @l, the loop running on this thread: the
 * caller took it out of a queue, so no other queue holds it. A cancel that won
 * the claim first makes it end cancelled without running its body; an awaiter
 * that won it (work-first join) already ran it, and left this entry holding a
 * reference. */
bool weft__task_start_claimed(weft_loop_t *l, weft__task_t *t)
{
    bool cancelled = false;
    if (!claim_start(l, t)) {
        unsigned int c;
        while ((c = ck_pr_load_uint(&t->claim)) == 3 || c == 4)
            ck_pr_stall();
        WEFT__TSAN_ACQUIRE(&t->claim);
        if (c == 1) {   /* run inline by its awaiter: drop the queue's reference */
            weft_future_release(&t->fut);
            return false;
        }
        cancelled = true;
        adopt(l, t);
    }
    link_task(l, t);
    if (l->rt && weft__rt_shutting(l->rt) && !cancelled) {
        cancelled = true;   /* started after the shutdown request */
        t->num_cancels++;
    }
    if (cancelled) {
        t->must_cancel = 1;
        if (!t->num_cancels)
            t->num_cancels = 1;
    }
    task_resume(t);
    return true;
}

/* The first step of a task weft_spawn queued by its own step handle (one
 * worker): start it like a token would, unless its awaiter took it out of the
 * ready queue to run it inline. */
static void spawn_step_dispatch(weft__handle_t *h)
{
    weft__task_t *t = WEFT__CONTAINER(h, weft__task_t, step);
    t->step.fn = task_step_dispatch;
    t->token = NULL;
    ck_pr_store_ptr(&t->held_by, NULL);
    weft__task_start_claimed(h->loop, t);
}

void weft__task_queue_step(weft_loop_t *l, weft__task_t *t)
{
    t->step.fn = spawn_step_dispatch;
    t->token = &t->step;
    ck_pr_store_ptr(&t->held_by, l);
    weft__ready_push(l, &t->step);
}

void weft__task_unqueue_step(weft_loop_t *l, weft__task_t *t)
{
    weft__ready_remove(l, &t->step);
    t->step.fn = task_step_dispatch;
    t->token = NULL;
    ck_pr_store_ptr(&t->held_by, NULL);
}

int weft_loop_create_task(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                          const weft_task_opts_t *opts)
{
    if (out)
        *out = NULL;
    int rc = weft__loop_check(loop);
    if (rc < 0)
        return rc;
    weft__task_t *t;
    if ((rc = weft__task_alloc(loop, fn, arg, opts, &t)) < 0)
        return rc;
    t->claim = 1;
    link_task(loop, t);
    if (loop->rt && weft__rt_shutting(loop->rt)) {
        t->must_cancel = 1;   /* created during the shutdown: ends cancelled */
        t->num_cancels = 1;
    }
    /* the loop's reference lives until the task is done */
    if (out)
        *out = weft__task_new_ref(t);
    if (((opts && opts->eager_start) || ck_pr_load_8(&loop->eager_factory)) && weft__thread()->running == loop) {
        task_resume(t);
    } else {
        weft__ready_push(loop, &t->step);
    }
    return 0;
}

int weft_create_task(weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts)
{
    weft_loop_t *l = weft__thread()->running;
    if (out)
        *out = NULL;
    if (!l)
        return WEFT_ENOLOOP;
    return weft_loop_create_task(l, out, fn, arg, opts);
}

/* ---- finishing ------------------------------------------------------------------ */

static void task_done(weft__task_t *t, int state, int code, char *msg, weft_value_t v)
{
    weft_loop_t *l = t->fut.loop;
    task_drop_arg(t);
    t->state = WEFT_TASK_DONE;
    t->wait_kind = WEFT__W_NONE;
    t->cancel_wait = NULL;
    unlink_task(l, t);
    if (WEFT__UNLIKELY(t->shutdown_cancel) && state == WEFT__F_EXCEPTION) {
        /* asyncio.run's _cancel_all_tasks: an error other than the cancellation */
        weft__report(l, "unhandled exception during weft_run() shutdown", code, msg, &t->fut);
        t->fut.retrieved = 1;
    }
    weft__future_complete(&t->fut, state, code, msg, v);
    if (t->on_done)
        t->on_done(t, t->on_done_arg);
    if (l->rt)
        weft__rt_task_gone(l->rt, l);   /* (a task ends on its own loop's thread) */
}

static void task_finish(weft__task_t *t, int rc, weft_value_t res)
{
    if (rc >= 0) {
        if (t->must_cancel) {   /* cancelled during its last step: asyncio ends it cancelled */
            if (res.dtor)
                res.dtor(res.p);
            task_done(t, WEFT__F_CANCELLED, WEFT_ECANCELED, weft__strdup(t->cancel_msg), (weft_value_t){ .p = NULL });
        } else {
            task_done(t, WEFT__F_RESULT, 0, NULL, res);
        }
        return;
    }
    if (res.dtor)   /* an error return owns no result */
        res.dtor(res.p);
    char *msg = NULL;
    if (t->err_code == rc) {
        msg = t->err_msg;
        t->err_msg = NULL;
    } else if (rc == WEFT_ECANCELED) {
        msg = weft__strdup(t->cancel_msg);
    }
    task_done(t, rc == WEFT_ECANCELED ? WEFT__F_CANCELLED : WEFT__F_EXCEPTION, rc, msg, (weft_value_t){ .p = NULL });
}

static void task_entry(void *arg)
{
    weft__coro_started();
    weft__task_t *t = arg;
    weft_value_t res = { .p = NULL };
    int rc = t->fn(t->arg, &res);
    task_finish(t, rc, res);
    weft__coro_switch(&t->coro, t->back, true);
    abort(); /* never resumed */
}

/* Release what a finished task held for running: its stack, and mark it no
 * longer held by its loop; the loop's reference is the caller's now. */
static void task_unlive(weft__task_t *t)
{
    weft_loop_t *l = t->fut.loop;
    if (t->stack) {
        weft__coro_destroy(&t->coro);
        weft__stack_release(&l->stacks, t->stack);
        t->stack = NULL;
        t->slab_stack = 0;
    }
    ck_pr_store_8(&t->live, 0);
}

/* ... and drop that reference. */
static void task_retire(weft__task_t *t)
{
    task_unlive(t);
    weft_future_release(&t->fut);   /* the loop's reference */
}

/* Overflow check for a stack without a guard page (slab stacks, beyond the
 * guard budget): the saved stack pointer at every switch, and the zeroed red
 * zone at the bottom every 16th switch and at the end (reading it costs a cold
 * cache line). Guarded stacks need neither: the guard page faults at once. */
static void check_slab_stack(weft__task_t *t)
{
    uintptr_t sp = weft__ctx_sp(&t->coro.ctx);
    bool bad = t->state != WEFT_TASK_DONE && sp && sp < (uintptr_t)t->stack->lo + WEFT__REDZONE;
    if (!bad && (++t->nswitch >= 16 || t->state == WEFT_TASK_DONE)) {
        t->nswitch = 0;
        bad = !weft__stack_redzone_ok(t->stack);
    }
    if (WEFT__UNLIKELY(bad))
        weft__stack_overflow(weft_task_get_name(&t->fut), t->stack->size);
}

/* A loop taking turns among many tasks switches to a stack it has not
 * touched since that task's last turn: its top is a cache (and often TLB)
 * miss that stalls the switch. When the next ready handle is a task's step
 * (or the timer that ends its sleep), start loading that task's saved frame
 * now, while this step runs. */
static inline void prefetch_next(weft_loop_t *l)
{
    weft__handle_t *n = l->ready.head;
    if (!n)
        return;
    size_t off;   /* where the handle sits in its task */
    if (n->fn == task_step_dispatch)
        off = offsetof(weft__task_t, step);
    else if (n->fn == task_timer_dispatch)   /* a sleep that ends */
        off = offsetof(weft__task_t, timer);
    else
        return;
    const weft__task_t *nt = (const weft__task_t *)((uintptr_t)n - off);
    WEFT__PREFETCH(weft__ctx_sp(&nt->coro.ctx));
    weft__handle_t *n2 = n->next;
    if (n2)   /* the context word of the one after, if it is a task's step too */
        WEFT__PREFETCH((uintptr_t)n2 + (offsetof(weft__task_t, coro) - offsetof(weft__task_t, step)));
}

/* Run one step of @t from whatever is running now (the scheduler, or the
 * creator of an eager task), and come back here when it suspends or ends. */
static void task_resume(weft__task_t *t)
{
    weft_loop_t *l = t->step.loop;   /* = fut.loop, on the line a switch touches anyway */
    if (t->state == WEFT_TASK_NEW) {
        if (t->must_cancel) {   /* cancelled before it ever ran: the body never starts */
            t->must_cancel = 0;
            task_done(t, WEFT__F_CANCELLED, WEFT_ECANCELED, weft__strdup(t->cancel_msg), (weft_value_t){ .p = NULL });
            task_retire(t);
            return;
        }
        l->stats.tasks_started++;
        t->stack = weft__stack_acquire(&l->stacks, t->stack_size);
        if (!t->stack) {
            task_done(t, WEFT__F_EXCEPTION, WEFT_ENOMEM, weft__strdup("cannot allocate a task stack"),
                      (weft_value_t){ .p = NULL });
            task_retire(t);
            return;
        }
        t->slab_stack = t->stack->guard == NULL;
        weft__coro_make(&t->coro, t->stack->lo, weft__stack_usable(t->stack), task_entry, t);
    }
    weft__thread_t *ts = weft__thread();
    weft__coro_t *from = ts->coro;
    weft__task_t *prev = ts->task;
    prefetch_next(l);
    t->back = from;
    t->state = WEFT_TASK_RUNNING;
    l->stats.tasks_run++;
    ts->coro = &t->coro;
    ts->task = t;
    l->current = t;
    uint64_t t0 = 0;
    if (WEFT__UNLIKELY(l->debug)) {
        t0 = uv_hrtime();
        weft__debug_step_begin(l, t);
    }
    weft__coro_switch(from, &t->coro, false);
    /* back on the same thread: whoever resumed @t (the scheduler, or the
     * task creating an eager task) is pinned to it, so @ts is still ours */
    ts->coro = from;
    ts->task = prev;
    l->current = prev;
    if (WEFT__UNLIKELY(l->debug))
        weft__debug_step_end(l, t, t0);
    if (t->slab_stack)
        check_slab_stack(t);
    if (t->state == WEFT_TASK_DONE)
        task_retire(t);
}

static void task_step_dispatch(weft__handle_t *h)
{
    weft__task_t *t = WEFT__CONTAINER(h, weft__task_t, step);
    if (t->state != WEFT_TASK_DONE)
        task_resume(t);
}

static void task_timer_dispatch(weft__handle_t *h)
{
    weft__task_t *t = WEFT__CONTAINER(h, weft__task_t, timer);
    if (t->state != WEFT_TASK_SUSPENDED || t->wait_kind != WEFT__W_SLEEP || (t->step.flags & WEFT__H_READY))
        return;   /* not the sleep it was armed for (cannot happen: weft_sleep disarms it) */
    t->wait_kind = WEFT__W_NONE;
    t->cancel_wait = NULL;
    t->wake_status = 0;
    task_resume(t);
}

/* ---- suspending and waking ----------------------------------------------------- */

int weft__task_suspend(weft__task_t *t, int kind, weft__cancel_wait_fn cancel, void *obj)
{
    /* every suspension has its own number: a wake-up issued for an earlier
     * one can never end this one (weft__task_wake_seq drops it) */
    if (!t->wait_open)
        t->wait_seq++;
    t->wait_open = 0;
    t->wait_kind = (uint8_t)kind;
    t->cancel_wait = cancel;
    t->wait_obj = obj;
    t->wake_status = 0;
    t->state = WEFT_TASK_SUSPENDED;
    t->left = 1;   /* an inline child: it no longer runs inside its host's step */
    if (t->must_cancel && cancel && cancel(t, t->cancel_msg))
        t->must_cancel = 0;   /* the wait itself now ends with the cancellation */
    weft__coro_switch(&t->coro, t->back, false);
    int st = t->wake_status;
    if (t->must_cancel) {
        t->must_cancel = 0;
        if (st != WEFT_ECANCELED) {
            st = WEFT_ECANCELED;
            weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(t->cancel_msg));
        }
    }
    return st;
}

void weft__task_wake_seq(weft__task_t *t, uint32_t seq, int status)
{
    if (t->state != WEFT_TASK_SUSPENDED || seq != t->wait_seq || (t->step.flags & WEFT__H_READY))
        return;
    t->wait_kind = WEFT__W_NONE;
    t->cancel_wait = NULL;
    t->wake_status = status;
    weft__ready_push(t->step.loop, &t->step);
}

void weft__task_abandon(weft__task_t *t)
{
    weft_loop_t *l = t->fut.loop;
    weft__report(l, "Task was destroyed but it is pending!", 0, NULL, &t->fut);
    /* a task waiting in a lock, queue, ... leaves the waiter list (its record
     * lives on the stack about to go); the loop is closed, so it is not woken */
    if (t->state == WEFT_TASK_SUSPENDED && t->wait_kind == WEFT__W_SYNC && t->cancel_wait)
        t->cancel_wait(t, NULL);
    if (t->state == WEFT_TASK_SUSPENDED && t->wait_kind == WEFT__W_FUTURE && t->wait_obj) {
        /* the weft_await frame never resumes: drop its waiter entry and reference */
        weft__future_remove_waiter(t->wait_obj, t);
        weft_future_release(t->wait_obj);
        t->wait_obj = NULL;
    }
    t->state = WEFT_TASK_DONE;
    unlink_task(l, t);
    task_drop_arg(t);
    t->fut.state = WEFT__F_CANCELLED;
    t->fut.code = WEFT_ECANCELED;
    if (!t->fut.msg)
        t->fut.msg = weft__strdup("the loop was closed while the task was pending");
    t->fut.ncb = 0;
    if (l->rt)
        weft__rt_task_gone(l->rt, weft__thread()->running);
    task_retire(t);
}

static bool future_wait_cancel(weft__task_t *t, const char *msg)
{
    return weft_future_cancel(t->wait_obj, msg) == 1;
}

/* Is @f a task started on loop @l (the running loop), whose fields this
 * thread may read? A task never started awaits nothing, and may be being
 * started by another loop right now: its state is not read. A starter moves
 * the task's loop before it sets the claim to 1 (weft__task_start_claimed). */
static bool started_here(const weft_future_t *f, const weft_loop_t *l)
{
    if (!f->is_task)
        return false;
    const weft__task_t *x = weft__task_of(f);
    if (ck_pr_load_uint((unsigned int *)(uintptr_t)&x->claim) != 1)
        return false;
    ck_pr_fence_load();
    WEFT__TSAN_ACQUIRE(&x->fut.loop);
    return weft__future_loop(f) == l;
}

/* The task @x (started here) awaits through weft_await, if any. */
static weft__task_t *awaited_task(const weft__task_t *x, const weft_loop_t *l)
{
    if (x->state != WEFT_TASK_SUSPENDED || x->wait_kind != WEFT__W_FUTURE || x->cancel_wait != future_wait_cancel)
        return NULL;
    const weft_future_t *g = x->wait_obj;
    if (!g || !started_here(g, l))
        return NULL;
    return weft__task_of(g);
}

/* Would @t awaiting @f close a cycle of tasks awaiting each other? Follows
 * the chain f -> what f awaits -> ... among the tasks of @t's loop (tasks of
 * other loops cannot be inspected safely; a plain future in between ends the
 * chain). asyncio would deadlock silently; weft_await returns WEFT_EDEADLK. */
static bool closes_cycle(const weft__task_t *t, const weft_future_t *f)
{
    if (!started_here(f, t->fut.loop))
        return false;
    size_t limit = t->fut.loop->ntasks + 1;   /* a chain cannot be longer: stop even on a foreign cycle */
    for (const weft__task_t *x = weft__task_of(f); x && limit; x = awaited_task(x, t->fut.loop), limit--)
        if (x == t)
            return true;
    return false;
}

/* ---- work-first join -------------------------------------------------------------
 *
 * A task awaiting a stealable task (weft_spawn) that has not started yet runs
 * it at once as a plain call on its own stack, instead of queueing, switching
 * and coming back. The child stays its own task: it is the current task while
 * it runs, with its own name, context, cancellation state, result and done
 * callbacks; the awaiter looks suspended on it (weft_task_awaiting), so
 * cancelling the awaiter cancels the child through the usual hook. A child
 * that suspends keeps the borrowed stack until it finishes: its later steps
 * are resumed on the borrowed stack by the scheduler like any task's, and when
 * it ends it wakes the awaiter and switches away; the awaiter's next step goes
 * on from there. The child's queue entry stays behind holding a reference; the
 * loop or thief that takes it finds the claim taken and only drops it. */

/* Room needed on the borrowed stack: half of the child's own stack size (what
 * most tasks reserve is far more than they touch) and a margin for weft's own
 * frames. */
#define WEFT__INLINE_MARGIN 8192

static bool inline_room(const weft__task_t *t, const weft__task_t *c)
{
    const weft__stack_t *st = weft__task_stack(t);
    if (!st)
        return false;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t lo = (uintptr_t)st->lo;
    return sp > lo && sp - lo >= c->stack_size / 2 + WEFT__INLINE_MARGIN;
}

/* Claim never-run child @c for @t, run it inline, and return with @t running
 * again and @c done, and a reference to @c for @t (the loop's own when @c
 * ended within the call: no count goes up and down); false (nothing done, no
 * reference) if another loop or a cancel claimed it first. *st receives the
 * status of @t's wait (0, or WEFT_ECANCELED). */
static bool inline_join(weft__task_t *t, weft__task_t *c, int *st)
{
    weft_loop_t *l = t->fut.loop;
    weft_loop_t *home = weft__future_loop(&c->fut);
    WEFT__TSAN_ACQUIRE(c);   /* the spawner's writes (its queue push released them) */
    if (!claim_start(l, c))
        return false;
    if (!l->rt || !weft__sched_unqueue(l, c)) {
        weft_future_retain(&c->fut);   /* for the queue entry left behind */
        if (home == l)
            l->newq_dead++;   /* most likely in this loop's newq: it compacts it when full */
    }
    link_task(l, c);
    if (l->rt && weft__rt_shutting(l->rt)) {   /* started after the shutdown request */
        c->must_cancel = 1;
        c->num_cancels++;
    }
    if (WEFT__UNLIKELY(c->must_cancel)) {   /* ends cancelled without running its body */
        weft_future_retain(&c->fut);   /* @t's (task_resume retires @c: the loop's goes) */
        task_resume(c);
        *st = 0;
        return true;
    }
    l->stats.tasks_started++;
    l->stats.tasks_run++;
    l->stats.inline_joins++;
    /* the awaiter waits on the child, cancellable through it */
    weft__task_begin_wait(t);   /* a stale wake-up of an earlier wait cannot resume it now */
    weft__task_drop_wait(t);    /* ...and no weft__task_suspend follows: the number is used up here */
    t->wait_kind = WEFT__W_FUTURE;
    t->cancel_wait = future_wait_cancel;
    t->wait_obj = &c->fut;
    t->wake_status = 0;
    t->state = WEFT_TASK_SUSPENDED;
    /* the child: on the awaiter's stack, coming back to where the awaiter would */
    c->host = t;
    c->on_stack = weft__task_stack(t);
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    c->coro = t->coro;   /* same stack: same sanitizer fiber and bounds */
#endif
    /* (the machine context needs no copy: a switch away saves it) */
    c->back = t->back;
    c->state = WEFT_TASK_RUNNING;
    weft__thread_t *ts = weft__thread();
    ts->task = c;
    ts->coro = &c->coro;
    l->current = c;
    weft_value_t res = { .p = NULL };
    int rc = c->fn(c->arg, &res);
    task_finish(c, rc, res);
    c->host = NULL;
    if (!c->left) {   /* it never suspended: still inside @t's step */
        ts = weft__thread();
        ts->task = t;
        ts->coro = &t->coro;
        l = t->fut.loop;
        l->current = t;
        t->state = WEFT_TASK_RUNNING;
        t->wait_kind = WEFT__W_NONE;
        t->cancel_wait = NULL;
        t->wait_obj = NULL;
        task_unlive(c);   /* the loop's reference is @t's now */
    } else {
        /* a later step of the child, resumed by the scheduler (task_resume(c),
         * which retires it once we switch away): give the stack back to the
         * awaiter, whose next step continues below */
        t->left = 1;   /* a nested child: @t, too, has left its host's step */
        weft_future_retain(&c->fut);   /* @t's: the loop drops its own when @c's step ends */
        weft__task_wake(t, 0);
        weft__coro_switch(&t->coro, c->back, false);
    }
    *st = t->wake_status;
    if (t->must_cancel) {   /* cancelled after the child ended, before @t resumed */
        t->must_cancel = 0;
        *st = WEFT_ECANCELED;
        weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(t->cancel_msg));
    }
    return true;
}

int weft_await(weft_future_t *f, weft_value_t *out)
{
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (!f)
        return WEFT_EINVAL;
    if (f == &t->fut)
        return WEFT_ESELFAWAIT;
    if (!weft_future_done(f)) {
        if (closes_cycle(t, f))
            return weft_raise(WEFT_EDEADLK, "awaiting task '%s' would close a cycle of tasks awaiting each other",
                              weft_task_get_name(f));
        int rc;
        weft__task_t *c = f->is_task ? weft__task_of(f) : NULL;
        if (c && c->joinable && !t->must_cancel && ck_pr_load_uint(&c->claim) == 0 && inline_room(t, c) &&
            inline_join(t, c, &rc))
            goto waited;   /* holding a reference to f (inline_join's) */
        weft_future_retain(f);   /* f lives until we are done with it, whoever else drops it */
        /* suspended before the waiter is visible: a completion on another
         * thread can only wake us once we are switchable */
        t->state = WEFT_TASK_SUSPENDED;
        rc = weft__future_add_waiter(f, t, weft__task_begin_wait(t));
        if (rc < 0) {
            weft__task_drop_wait(t);
            t->state = WEFT_TASK_RUNNING;
            weft_future_release(f);
            return rc;
        }
        if (rc == 1) {   /* completed meanwhile */
            weft__task_drop_wait(t);
            t->state = WEFT_TASK_RUNNING;
            rc = 0;
        } else {
            rc = weft__task_suspend(t, WEFT__W_FUTURE, future_wait_cancel, f);
        }
        if (!weft_future_done(f))
            weft__future_remove_waiter(f, t);
    waited:
        if (rc == WEFT_ECANCELED && weft_future_cancelled(f))
            weft__task_set_error(t, rc, weft__strdup(f->msg));   /* asyncio: the future's CancelledError wins */
        if (rc < 0) {
            /* cancelled after f completed, before we resumed: asyncio's
             * __wakeup called f.result() first, so f's exception counts as
             * retrieved even though the task sees the cancellation */
            if (weft_future_done(f) && !weft_future_cancelled(f))
                weft_future_exception(f, NULL, NULL);
            weft_future_release(f);
            return rc;
        }
        rc = weft_future_result(f, out);
        if (rc < 0)
            weft__task_set_error(t, rc, weft__strdup(f->msg));
        weft_future_release(f);
        return rc;
    }
    int rc = weft_future_result(f, out);
    if (rc < 0)
        weft__task_set_error(t, rc, weft__strdup(f->msg));
    return rc;
}

/* ---- sleeping ------------------------------------------------------------------ */

static bool sleep_cancel(weft__task_t *t, const char *msg)
{
    if (t->timer.flags & WEFT__H_READY)
        return false;   /* the timer already fired: the cancel stays pending (must_cancel) */
    weft__timer_cancel(t->fut.loop, &t->timer);
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

int weft_sleep(double delay)
{
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (isnan(delay))
        return WEFT_EINVAL;
    if (delay <= 0) {   /* a bare yield: one trip through the ready queue */
        weft__ready_push(t->step.loop, &t->step);
        return weft__task_suspend(t, WEFT__W_YIELD, NULL, NULL);
    }
    if (!t->timer_set) {   /* most tasks never sleep: their timer handle stays untouched */
        t->timer_set = 1;
        t->timer.fn = task_timer_dispatch;
        t->timer.loop = t->fut.loop;
        t->timer.heap_idx = UINT32_MAX;
        t->timer.flags = 0;
    }
    int rc = weft__timer_start(t->fut.loop, &t->timer, weft__deadline_ns(weft__now_ns(), delay));
    if (rc < 0)
        return rc;
    rc = weft__task_suspend(t, WEFT__W_SLEEP, sleep_cancel, NULL);
    /* however the sleep ended, its timer must not outlive it */
    weft__timer_cancel(t->fut.loop, &t->timer);
    return rc;
}

int weft_yield(void) { return weft_sleep(0); }

int weft_sleep_value(double delay, weft_value_t result, weft_value_t *out)
{
    int rc = weft_sleep(delay);
    if (rc == 0 && out)
        *out = result;
    return rc;
}

/* ---- cancellation and introspection ------------------------------------------- */

/* ---- cancel propagation ------------------------------------------------------
 * Cancelling a task runs its cancel_wait hook, which may cancel what the task
 * awaits: a task whose hook cancels the next one, and so on. Done by
 * recursion, a chain of thousands of tasks overflows the canceller's stack
 * and an await cycle (A awaits B awaits A, through a gather or another plain
 * future that weft_await's cycle check cannot see) recurses forever. So the
 * first cancel on a thread starts a *propagation*: a numbered walk with a work
 * list. A cancel reached from inside a hook only counts the request
 * (cancelling()) and queues the task; the walk then runs each queued task's
 * hook in turn. A task reached twice in one walk is not walked again; if it
 * is an ancestor of the task whose hook reached it, the walk went round a
 * cycle, and that task's wait is ended at once with WEFT_ECANCELED (otherwise
 * nobody in the cycle could ever resume). Cancels of tasks of other loops are
 * messages that carry the walk's number, so a cycle across loops ends too
 * (without the forced wake-up: the path is not known there). */

static uint64_t prop_counter;   /* atomic: propagation numbers, process-wide */

static void cancel_request(weft__task_t *t, const char *msg)
{
    t->must_cancel = 1;
    free(t->cancel_msg);
    t->cancel_msg = weft__strdup(msg);
}

/* Run @t's hook, or record the request for its next resumption. */
static void cancel_step(weft__thread_t *ts, weft__task_t *t, const char *msg)
{
    ts->prop_cur = t;
    if (t->state == WEFT_TASK_SUSPENDED && t->cancel_wait && t->cancel_wait(t, msg))
        return;
    cancel_request(t, msg);
}

static bool prop_is_ancestor(const weft__task_t *t, const weft__task_t *x)
{
    for (; x; x = x->prop_parent)
        if (x == t)
            return true;
    return false;
}

/* The task @t, on this loop and not done, got a cancel (num_cancels counted)
 * within propagation @id (0: start a new one). */
static void cancel_local(weft__task_t *t, const char *msg, uintptr_t id)
{
    weft__thread_t *ts = weft__thread();
    if (ts->prop_id) {   /* reached from a hook: queue it, or stop on a second visit */
        if (t->prop_id == ts->prop_id) {
            if (prop_is_ancestor(t, ts->prop_cur) && t->state == WEFT_TASK_SUSPENDED && t->cancel_wait) {
                /* round a cycle back to a task still waiting in it: end that wait */
                weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
                weft__task_wake(t, WEFT_ECANCELED);
            }
            return;
        }
        t->prop_id = ts->prop_id;
        t->prop_parent = ts->prop_cur;
        free(t->prop_msg);
        t->prop_msg = weft__strdup(msg);
        t->prop_next = NULL;
        weft_future_retain(&t->fut);
        if (ts->prop_tail)
            ts->prop_tail->prop_next = t;
        else
            ts->prop_head = t;
        ts->prop_tail = t;
        return;
    }
    if (id && t->prop_id == id)
        return;   /* a message of a walk that already went through @t */
    if (!id) {
        do
            id = (uintptr_t)(ck_pr_faa_64(&prop_counter, 1) + 1);   /* never 0, even truncated */
        while (!id);
    }
    ts->prop_id = id;
    t->prop_id = id;
    t->prop_parent = NULL;
    cancel_step(ts, t, msg);
    for (weft__task_t *x = ts->prop_head; x; x = x->prop_next) {
        if (x->state != WEFT_TASK_DONE)
            cancel_step(ts, x, x->prop_msg);
        free(x->prop_msg);
        x->prop_msg = NULL;
    }
    /* release only now: parent links stay valid during the whole walk */
    weft__task_t *x = ts->prop_head;
    ts->prop_head = ts->prop_tail = ts->prop_cur = NULL;
    ts->prop_id = 0;
    while (x) {
        weft__task_t *n = x->prop_next;
        x->prop_next = NULL;
        weft_future_release(&x->fut);
        x = n;
    }
}

static void msg_cancel(weft_loop_t *l, weft__msg_t *m)
{
    (void)l;
    weft__task_t *t = m->a;
    if (weft__future_loop(&t->fut) == weft__thread()->running && weft__future_check(&t->fut) == 0 &&
        t->state != WEFT_TASK_DONE) {
        t->num_cancels++;
        cancel_local(t, m->s, (uintptr_t)m->b);
    } else {
        weft_task_cancel(&t->fut, m->s);
    }
    weft_future_release(&t->fut);
    free(m->s);
    free(m);
}

/* A started task of another loop: the cancel runs there. */
int weft__task_cancel_remote(weft__task_t *t, const char *msg)
{
    if (weft_future_done(&t->fut))
        return 0;
    weft__msg_t *m = weft__msg_new(msg_cancel);
    if (!m)
        return WEFT_ENOMEM;
    m->a = weft_future_retain(&t->fut);
    m->b = (void *)weft__thread()->prop_id;   /* the walk this cancel belongs to, if any */
    m->s = weft__strdup(msg);
    int rc = weft__loop_post(weft__future_loop(&t->fut), m);
    if (rc < 0) {
        weft_future_release(&t->fut);
        free(m->s);
        free(m);
        return rc;
    }
    return 1;
}

static int task_check(const weft_future_t *f)
{
    if (!f)
        return WEFT_EINVAL;
    if (!f->is_task)
        return WEFT_ENOTTASK;
    return 0;
}

int weft_task_cancel(weft_task_t *f, const char *msg)
{
    int rc = task_check(f);
    if (rc < 0)
        return rc;
    if ((rc = weft__future_check(f)) < 0)
        return rc;
    weft__task_t *t = weft__task_of(f);
    unsigned int claim = ck_pr_load_uint(&t->claim);
    if (claim == 0 && ck_pr_cas_uint(&t->claim, 0, 3)) {
        /* queued and never started: whoever takes it ends it cancelled */
        t->cancel_msg = weft__strdup(msg);
        t->num_cancels = 1;
        WEFT__TSAN_RELEASE(&t->claim);
        ck_pr_store_uint(&t->claim, 2);
        return 1;
    }
    while ((claim = ck_pr_load_uint(&t->claim)) == 4)   /* being started: its loop is moving */
        ck_pr_stall();
    if (claim != 1)
        return weft_future_done(f) ? 0 : 1;
    if (weft__future_loop(f) != weft__thread()->running)
        return weft__task_cancel_remote(t, msg);
    if (t->state == WEFT_TASK_DONE)
        return 0;
    t->num_cancels++;
    cancel_local(t, msg, 0);
    return 1;
}

int weft_task_cancelling(const weft_task_t *f)
{
    int rc = task_check(f);
    return rc < 0 ? rc : weft__task_of(f)->num_cancels;
}

int weft_task_uncancel(weft_task_t *f)
{
    int rc = task_check(f);
    if (rc < 0)
        return rc;
    weft__task_t *t = weft__task_of(f);
    if (t->num_cancels > 0)
        t->num_cancels--;
    return t->num_cancels;
}

const char *weft_task_get_name(const weft_task_t *f)
{
    if (task_check(f) < 0)
        return NULL;
    weft__task_t *t = weft__task_of(f);
    if (!t->name) {
        char buf[32];
        snprintf(buf, sizeof buf, "Task-%llu", (unsigned long long)t->name_no);
        t->name = weft__strdup(buf);
    }
    return t->name;
}

int weft_task_set_name(weft_task_t *f, const char *name)
{
    int rc = task_check(f);
    if (rc < 0)
        return rc;
    if (!name)
        return WEFT_EINVAL;
    char *n = weft__strdup(name);
    if (!n)
        return WEFT_ENOMEM;
    weft__task_t *t = weft__task_of(f);
    free(t->name);
    t->name = n;
    return 0;
}

int weft_task_state(const weft_task_t *f)
{
    return task_check(f) < 0 ? -1 : weft__task_of(f)->state;
}

weft_future_t *weft_task_awaiting(const weft_task_t *f)
{
    if (task_check(f) < 0)
        return NULL;
    weft__task_t *t = weft__task_of(f);
    return t->state == WEFT_TASK_SUSPENDED && t->wait_kind == WEFT__W_FUTURE ? t->wait_obj : NULL;
}

bool weft_is_task(const weft_future_t *f) { return f && f->is_task; }

weft_task_t *weft_current_task(void)
{
    weft__task_t *t = weft__thread()->task;
    return t ? &t->fut : NULL;
}

int weft_get_current_task(weft_task_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    weft__thread_t *ts = weft__thread();
    *out = ts->task ? &ts->task->fut : NULL;
    return ts->running ? 0 : WEFT_ENOLOOP;
}

weft_task_t *weft_loop_current_task(const weft_loop_t *loop)
{
    return loop && loop->current ? &loop->current->fut : NULL;
}

int weft_all_tasks(weft_loop_t *loop, weft_task_t **arr, size_t cap)
{
    if (!loop && !(loop = weft__thread()->running))
        return WEFT_ENOLOOP;
    if (!arr && cap)
        return WEFT_EINVAL;
    size_t i = 0;
    for (weft__task_t *t = loop->tasks; t; t = t->nextt, i++)
        if (i < cap)
            arr[i] = &t->fut;
    return (int)i;
}

int weft_raise(int code, const char *fmt, ...)
{
    weft__thread_t *ts = weft__thread();
    weft__task_t *t = ts->task;
    if (code < 0 && (t || ts->raise_capture)) {
        char *msg = NULL;
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            msg = weft__vformat(fmt, ap);
            va_end(ap);
        }
        if (t) {
            weft__task_set_error(t, code, msg);
        } else {   /* a plain callback or a blocking job: its runner takes it */
            free(ts->raised_msg);
            ts->raised_code = code;
            ts->raised_msg = msg;
        }
    }
    return code;
}

void weft__raise_capture_begin(void)
{
    weft__thread_t *ts = weft__thread();
    ts->raise_capture++;
    free(ts->raised_msg);
    ts->raised_msg = NULL;
    ts->raised_code = 0;
}

char *weft__raise_capture_end(int code)
{
    weft__thread_t *ts = weft__thread();
    ts->raise_capture--;
    char *m = ts->raised_msg;
    ts->raised_msg = NULL;
    if (code >= 0 || ts->raised_code != code) {
        free(m);
        m = NULL;
    }
    ts->raised_code = 0;
    return m;
}

const char *weft_error_message(void)
{
    weft__task_t *t = weft__thread()->task;
    return t ? t->err_msg : weft__run_error();
}
