/* Helpers shared by the combinators: task creation with the eager task
 * factory, a cancellable "wait until woken", outcome reporting, a pointer
 * set; and the per-loop eager task factory flag. */
#include "comb/comb.h"

/* ---- eager task factory ------------------------------------------------------
 * One flag in struct weft_loop, read by weft_loop_create_task. */

int weft_loop_set_eager_task_factory(weft_loop_t *loop, bool on)
{
    if (!loop)
        return WEFT_EINVAL;
    ck_pr_store_8((uint8_t *)&loop->eager_factory, on ? 1 : 0);
    return 0;
}

bool weft_loop_get_eager_task_factory(const weft_loop_t *loop)
{
    return loop && ck_pr_load_8((const uint8_t *)&loop->eager_factory);
}


int weft__comb_create_task(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                           const weft_task_opts_t *opts)
{
    if (weft_loop_get_eager_task_factory(loop) && !(opts && opts->eager_start)) {
        weft_task_opts_t o = opts ? *opts : (weft_task_opts_t){ 0 };
        o.eager_start = true;
        return weft_loop_create_task(loop, out, fn, arg, &o);
    }
    return weft_loop_create_task(loop, out, fn, arg, opts);
}

int weft_ensure_future(const weft_awaitable_t *aw, weft_future_t **out)
{
    if (out)
        *out = NULL;
    if (!aw || !out || !aw->future == !aw->fn)
        return WEFT_EINVAL;
    if (aw->future) {
        *out = weft_future_retain(aw->future);
        return 0;
    }
    weft_loop_t *l = weft__thread()->running;
    if (!l)
        return WEFT_ENOLOOP;
    weft_task_opts_t o = { .name = aw->name };
    return weft__comb_create_task(l, out, aw->fn, aw->arg, &o);
}

bool weft_isfuture(const weft_awaitable_t *aw) { return aw && aw->future && !aw->fn; }

/* ---- waiting ------------------------------------------------------------------ */

static bool wait_cancel(weft__task_t *t, const char *msg)
{
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

int weft__comb_wait(weft__task_t *t, int kind, void *obj)
{
    return weft__task_suspend(t, kind, wait_cancel, obj);
}

int weft__comb_error(weft__task_t *t, int code, const char *msg)
{
    if (t && code < 0)
        weft__task_set_error(t, code, weft__strdup(msg));
    return code;
}

int weft__comb_outcome(weft__task_t *t, weft_future_t *f, weft_value_t *out)
{
    int rc = weft_future_result(f, out);
    if (rc < 0)
        weft__comb_error(t, rc, weft_future_message(f));
    return rc;
}

int weft__comb_await(weft_future_t *f, weft_value_t *out)
{
    int rc = weft_await(f, out);
    if (rc == WEFT_ECANCELED && f && weft_future_done(f))
        weft_future_exception(f, NULL, NULL);
    return rc;
}

/* ---- pointer set -------------------------------------------------------------- */

int weft__ptrset_init(weft__ptrset_t *s, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    s->slots = calloc(cap, sizeof *s->slots);
    s->cap = cap;
    return s->slots ? 0 : WEFT_ENOMEM;
}

int weft__ptrset_add(weft__ptrset_t *s, const void *p)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 7) & (s->cap - 1);
    while (s->slots[i]) {
        if (s->slots[i] == p)
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->slots[i] = p;
    return 1;
}

void weft__ptrset_free(weft__ptrset_t *s)
{
    free(s->slots);
    s->slots = NULL;
}
