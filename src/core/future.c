/* Futures: asyncio.Future on one loop.
 *
 * A future is mutated only on its loop's thread, so its state needs no
 * atomics; only the reference count is atomic (references may be dropped from
 * any thread). Done callbacks are kept in registration order and each is
 * scheduled through the loop's ready queue when the future completes. A task
 * awaiting the future is just another entry (waiter): completing the future
 * puts the task's step in the ready queue at that position, with no allocation. */
#include "core/future.h"
#include "core/task.h"
#include "debug/debug.h"

#if defined(WEFT_ASAN)
#include <sanitizer/asan_interface.h>
#endif

void weft__future_init(weft_future_t *f, weft_loop_t *loop, bool is_task)
{
    /* every field but the inline callback slot, which cb_append writes
     * before anything reads it (a task's future is initialised in a recycled
     * struct: no memset of the whole). The loop's reference first: its
     * locked increment then has no stores ahead of it to wait for. */
    weft__loop_retain(loop);
    f->loop = loop;
    f->refs = 1;
    f->magic = WEFT__FUT_LIVE;
    ck_spinlock_fas_init(&f->lock);
    f->state = WEFT__F_PENDING;
    f->is_task = is_task;
    f->retrieved = 0;
    f->cb_inline = 1;
    f->observed = 0;
    f->user_ref = 0;
    f->code = 0;
    f->msg = NULL;
    f->value = (weft_value_t){ .p = NULL };
    f->ncb = 0;
    f->capcb = 1;
    /* the fields above fill one cache line; a task's future leaves the next
     * one alone (no callbacks, no hook: weft_task_cancel replaces it) */
    if (!is_task)
        f->cancel_hook = NULL;
}

int weft__future_check(const weft_future_t *f)
{
    if (!f)
        return WEFT_EINVAL;
    if (ck_pr_load_uint(&weft__future_loop(f)->flags) & WEFT__L_CLOSED)
        return WEFT_ECLOSED;
    return 0;
}

static inline void flock(weft_future_t *f)
{
    ck_spinlock_fas_lock(&f->lock);
    WEFT__TSAN_ACQUIRE(&f->lock);
}

static inline void funlock(weft_future_t *f)
{
    WEFT__TSAN_RELEASE(&f->lock);
    ck_spinlock_fas_unlock(&f->lock);
}

/* The callback entries: the inline slot until a second one is added. */
static inline weft__cbent_t *fcbs(weft_future_t *f) { return f->cb_inline ? f->inl : f->cbs; }

static inline int fstate(const weft_future_t *f)
{
    int st = ck_pr_load_8((const uint8_t *)&f->state);
    ck_pr_fence_acquire();
    WEFT__TSAN_ACQUIRE(f);
    return st;
}

int weft_future_new(weft_loop_t *loop, weft_future_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (!loop && !(loop = weft__thread()->running))
        return WEFT_ENOLOOP;
    int rc = weft__loop_check(loop);
    if (rc < 0)
        return rc;
    weft_future_t *f = malloc(sizeof *f);
    if (!f)
        return WEFT_ENOMEM;
    weft__future_init(f, loop, false);
    f->user_ref = 1;
    *out = f;
    return 0;
}

/* Misuse check on every retain and release (one load and compare): a future
 * or task whose memory was given back is reported and left alone, instead of
 * corrupting whatever uses that memory now. ASan builds ask ASan first, so the
 * check itself never reads freed memory. */
static bool future_alive(const weft_future_t *f, const char *fn)
{
#if defined(WEFT_ASAN)
    if (__asan_address_is_poisoned(&f->magic)) {
        weft__log(WEFT_LOG_ERROR, "weft: %s(%p): the future or task was already freed (released once too often); "
                  "call ignored", fn, (const void *)f);
        return false;
    }
#endif
    uint32_t m = ck_pr_load_32((uint32_t *)(uintptr_t)&f->magic);
    if (WEFT__LIKELY(m == WEFT__FUT_LIVE))
        return true;
    weft__log(WEFT_LOG_ERROR, "weft: %s(%p): %s; call ignored", fn, (const void *)f,
              m == WEFT__FUT_DEAD ? "the future or task was already freed (released once too often)"
                                  : "not a weft future or task");
    return false;
}

weft_future_t *weft_future_retain(weft_future_t *f)
{
    if (f && future_alive(f, "weft_future_retain"))
        ck_pr_inc_uint(&f->refs);
    return f;
}

void weft__task_free(weft__task_t *t);

void weft_future_release(weft_future_t *f)
{
    if (!f || !future_alive(f, "weft_future_release"))
        return;
    bool zero;
    WEFT__TSAN_RELEASE(f);
    ck_pr_dec_uint_zero(&f->refs, &zero);
    if (!zero)
        return;
    WEFT__TSAN_ACQUIRE(f);
    if (WEFT__UNLIKELY(f->is_task && ck_pr_load_8(&weft__task_of(f)->live))) {
        /* the reference its loop holds while the task lives was released by
         * someone else: one release too many. Keep the task for its loop. */
        ck_pr_inc_uint(&f->refs);
        weft__log(WEFT_LOG_ERROR,
                  "weft: weft_task_release/weft_future_release: task %p (id %llu) released more times than it was "
                  "retained while it is still pending; the extra release is ignored",
                  (const void *)f, (unsigned long long)weft__task_of(f)->id);
        return;
    }
    ck_pr_store_32(&f->magic, WEFT__FUT_DEAD);
    weft_loop_t *loop = f->loop;
    if (WEFT__UNLIKELY(loop->debug) && f->user_ref && !ck_pr_load_8(&f->observed))
        weft__debug_never_awaited(f);
    if (f->state == WEFT__F_EXCEPTION && !f->retrieved)
        weft__report(weft_loop_is_closed(loop) ? NULL : loop,
                     f->is_task ? "Task exception was never retrieved" : "Future exception was never retrieved",
                     f->code, f->msg, f);
    if (f->value.dtor)
        f->value.dtor(f->value.p);
    if (f->msg)   /* most futures end without a message: no call */
        free(f->msg);
    if (!f->cb_inline)
        free(f->cbs);
    if (f->is_task)
        weft__task_free(weft__task_of(f));
    else
        free(f);
    weft__loop_release(loop);
}

void weft__done_dispatch(weft__handle_t *h)
{
    weft_done_cb fn = h->u.done.fn;
    void *arg = h->u.done.arg;
    weft_future_t *f = h->u.done.fut;
    h->gen++;
    h->flags = WEFT__H_POOLED;
    h->next = h->loop->hfree;
    h->loop->hfree = h;
    fn(f, arg);
    weft_future_release(f);
}

static void msg_done_cb(weft_loop_t *l, weft__msg_t *m);

/* Schedule fn(f, arg) on loop @l: a ready-queue entry if @l runs on this
 * thread, else a message to @l. */
static int schedule_done_cb(weft_loop_t *l, weft_future_t *f, weft_done_cb fn, void *arg)
{
    if (!weft__loop_is_local(l)) {
        weft__msg_t *m = weft__msg_new(msg_done_cb);
        if (!m)
            return WEFT_ENOMEM;
        m->a = weft_future_retain(f);
        m->b = arg;
        m->cb = (weft_callback_t)(void (*)(void))fn;
        int rc = weft__loop_post(l, m);
        if (rc < 0) {
            weft_future_release(f);
            free(m);
        }
        return rc;
    }
    weft__handle_t *h = weft__handle_new(l);
    if (!h)
        return WEFT_ENOMEM;
    h->fn = weft__done_dispatch;
    h->u.done.fn = fn;
    h->u.done.arg = arg;
    h->u.done.fut = weft_future_retain(f);
    weft__ready_push(l, h);
    return 0;
}

static void msg_done_cb(weft_loop_t *l, weft__msg_t *m)
{
    weft_future_t *f = m->a;
    weft_done_cb fn = (weft_done_cb)(void (*)(void))m->cb;
    if (ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED)
        ;   /* the loop closed: the callback can no longer run */
    else if (schedule_done_cb(l, f, fn, m->b) < 0)
        weft__report(l, "Cannot schedule a done callback (out of memory)", WEFT_ENOMEM, NULL, f);
    weft_future_release(f);
    free(m);
}

static void msg_wake(weft_loop_t *l, weft__msg_t *m)
{
    (void)l;
    weft__task_t *t = m->a;
    weft__task_wake_seq(t, (uint32_t)(uintptr_t)m->b, m->i);   /* dropped if that wait is over */
    weft_future_release(&t->fut);
    free(m);
}

/* Wake @t from any thread: directly on its own loop's thread, else by message. */
void weft__task_wake_any(weft__task_t *t, int status, uint32_t seq)
{
    weft_loop_t *tl = weft__future_loop(&t->fut);
    if (weft__loop_is_local(tl)) {
        weft__task_wake_seq(t, seq, status);
        return;
    }
    weft__msg_t *m = weft__msg_new(msg_wake);
    if (!m) {
        weft__report(NULL, "Cannot wake a task on another loop (out of memory)", WEFT_ENOMEM, NULL, &t->fut);
        return;
    }
    m->a = weft_future_retain(&t->fut);
    m->b = (void *)(uintptr_t)seq;
    m->i = status;
    if (weft__loop_post(tl, m) < 0) {
        weft_future_release(&t->fut);
        free(m);
    }
}

/* Returns false if the future was already done (nothing changed). */
bool weft__future_complete(weft_future_t *f, int state, int code, char *msg, weft_value_t v)
{
    flock(f);
    if (f->state != WEFT__F_PENDING) {
        funlock(f);
        return false;
    }
    f->code = code;
    f->msg = msg;
    f->value = v;
    uint32_t n = f->ncb;
    f->ncb = 0;
    WEFT__TSAN_RELEASE(f);
    ck_pr_fence_release();
    ck_pr_store_8(&f->state, (uint8_t)state);
    funlock(f);
    /* nobody appends once the state is set: the list is ours to walk */
    for (uint32_t i = 0; i < n; i++) {
        weft__cbent_t *e = &fcbs(f)[i];
        if (e->waiter)
            weft__task_wake_any(e->waiter, 0, e->seq);
        else if (schedule_done_cb(e->loop, f, e->fn, e->arg) < 0)
            weft__report(e->loop, "Cannot schedule a done callback (out of memory)", WEFT_ENOMEM, NULL, f);
    }
    return true;
}

/* Under the lock. */
static int cb_append(weft_future_t *f, weft_done_cb fn, void *arg, struct weft__task *waiter, uint32_t seq)
{
    if (f->ncb == f->capcb) {
        uint32_t cap = f->capcb * 2 < 4 ? 4 : f->capcb * 2;
        weft__cbent_t *a;
        if (f->cb_inline) {
            a = malloc(cap * sizeof *a);
            if (a)
                memcpy(a, f->inl, f->ncb * sizeof *a);
        } else {
            a = realloc(f->cbs, cap * sizeof *a);
        }
        if (!a)
            return WEFT_ENOMEM;
        f->cbs = a;
        f->capcb = cap;
        f->cb_inline = 0;
    }
    weft_loop_t *l = weft__thread()->running;
    fcbs(f)[f->ncb++] = (weft__cbent_t){ fn, arg, waiter, l ? l : f->loop, seq };
    return 0;
}

/* 0: registered; 1: already done (not registered); <0 error. Any thread. */
int weft__future_add_waiter(weft_future_t *f, struct weft__task *t, uint32_t seq)
{
    flock(f);
    int rc = f->state != WEFT__F_PENDING ? 1 : cb_append(f, NULL, NULL, t, seq);
    funlock(f);
    return rc;
}

void weft__future_remove_waiter(weft_future_t *f, struct weft__task *t)
{
    flock(f);
    if (f->state == WEFT__F_PENDING) {
        weft__cbent_t *cbs = fcbs(f);
        uint32_t j = 0;
        for (uint32_t i = 0; i < f->ncb; i++)
            if (cbs[i].waiter != t)
                cbs[j++] = cbs[i];
        f->ncb = j;
    }
    funlock(f);
}

static int settable(weft_future_t *f)
{
    int rc = weft__future_check(f);
    if (rc < 0)
        return rc;
    if (f->is_task)
        return WEFT_ENOTTASK;
    if (fstate(f) != WEFT__F_PENDING)
        return WEFT_EINVALSTATE;
    return 0;
}

int weft_future_set_result(weft_future_t *f, weft_value_t v)
{
    int rc = settable(f);
    if (rc < 0)
        return rc;
    return weft__future_complete(f, WEFT__F_RESULT, 0, NULL, v) ? 0 : WEFT_EINVALSTATE;
}

int weft_future_set_exception(weft_future_t *f, int code, const char *fmt, ...)
{
    int rc = settable(f);
    if (rc < 0)
        return rc;
    if (code >= 0)
        return WEFT_EINVAL;
    char *msg = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        msg = weft__vformat(fmt, ap);
        va_end(ap);
    }
    if (!weft__future_complete(f, WEFT__F_EXCEPTION, code, msg, (weft_value_t){ .p = NULL })) {
        free(msg);
        return WEFT_EINVALSTATE;
    }
    return 0;
}

int weft_future_cancel(weft_future_t *f, const char *msg)
{
    if (!f)
        return WEFT_EINVAL;
    ck_pr_store_8(&f->observed, 1);
    if (f->is_task)
        return weft_task_cancel(f, msg);
    int rc = weft__future_check(f);
    if (rc < 0)
        return rc;
    ck_pr_store_8(&f->retrieved, 1);
    if (fstate(f) != WEFT__F_PENDING)
        return 0;
    if (f->cancel_hook)
        return f->cancel_hook(f, msg);
    char *m = weft__strdup(msg);
    if (!weft__future_complete(f, WEFT__F_CANCELLED, WEFT_ECANCELED, m, (weft_value_t){ .p = NULL })) {
        free(m);
        return 0;
    }
    return 1;
}

bool weft_future_done(const weft_future_t *f) { return f && fstate(f) != WEFT__F_PENDING; }
bool weft_future_cancelled(const weft_future_t *f) { return f && fstate(f) == WEFT__F_CANCELLED; }

static int outcome(weft_future_t *f, weft_value_t *out, bool take)
{
    if (!f)
        return WEFT_EINVAL;
    ck_pr_store_8(&f->observed, 1);
    switch (fstate(f)) {
    case WEFT__F_PENDING:
        return WEFT_EINVALSTATE;
    case WEFT__F_RESULT:
        if (out) {
            *out = f->value;
            if (take)
                f->value.dtor = NULL;
            else
                out->dtor = NULL;
        }
        return 0;
    case WEFT__F_EXCEPTION:
        ck_pr_store_8(&f->retrieved, 1);
        return f->code;
    default:
        return WEFT_ECANCELED;
    }
}

int weft_future_result(weft_future_t *f, weft_value_t *out) { return outcome(f, out, false); }
int weft_future_take_result(weft_future_t *f, weft_value_t *out) { return outcome(f, out, true); }

int weft_future_exception(weft_future_t *f, int *code, const char **msg)
{
    if (!f)
        return WEFT_EINVAL;
    ck_pr_store_8(&f->observed, 1);
    int st = fstate(f);
    if (st == WEFT__F_PENDING)
        return WEFT_EINVALSTATE;
    if (st == WEFT__F_CANCELLED) {
        if (msg)
            *msg = f->msg;
        return WEFT_ECANCELED;
    }
    ck_pr_store_8(&f->retrieved, 1);
    if (code)
        *code = f->state == WEFT__F_EXCEPTION ? f->code : 0;
    if (msg)
        *msg = f->state == WEFT__F_EXCEPTION ? f->msg : NULL;
    return 0;
}

const char *weft_future_message(const weft_future_t *f) { return f ? f->msg : NULL; }

int weft_future_add_done_callback(weft_future_t *f, weft_done_cb fn, void *arg)
{
    int rc = weft__future_check(f);
    if (rc < 0)
        return rc;
    if (!fn)
        return WEFT_EINVAL;
    ck_pr_store_8(&f->observed, 1);
    flock(f);
    if (f->state == WEFT__F_PENDING) {
        rc = cb_append(f, fn, arg, NULL, 0);
        funlock(f);
        return rc;
    }
    funlock(f);
    weft_loop_t *l = weft__thread()->running;
    return schedule_done_cb(l ? l : f->loop, f, fn, arg);
}

int weft_future_remove_done_callback(weft_future_t *f, weft_done_cb fn, void *arg)
{
    if (!f || !fn)
        return WEFT_EINVAL;
    uint32_t j = 0, removed = 0;
    flock(f);
    if (f->state == WEFT__F_PENDING) {
        weft__cbent_t *cbs = fcbs(f);
        for (uint32_t i = 0; i < f->ncb; i++) {
            if (!cbs[i].waiter && cbs[i].fn == fn && cbs[i].arg == arg)
                removed++;
            else
                cbs[j++] = cbs[i];
        }
        f->ncb = j;
    }
    funlock(f);
    return (int)removed;
}

weft_loop_t *weft_future_get_loop(const weft_future_t *f) { return f ? f->loop : NULL; }
