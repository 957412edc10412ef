/* gather: asyncio.gather and its _GatheringFuture (CPython 3.12 tasks.py).
 *
 * A gather is one allocation: the outer future first (so the core's
 * weft_future_release frees the whole block), then the bookkeeping and the
 * per-argument arrays. Every pending child has a done callback pointing at
 * the gather; the gather holds a reference on itself until its last child is
 * done, so callbacks that fire after the outer completed (first error) still
 * find it. The outer's result is a weft_gather_list_t it owns (value dtor).
 *
 * While the outer is pending its value carries a tag (a private no-op dtor)
 * by which weft_gather_cancel recognises a gathering future without reading
 * past a plain future's end. */
#include "comb/comb.h"

typedef struct gather {
    weft_future_t fut;          /* the outer future: must be first */
    bool return_exceptions;
    bool cancel_requested;      /* a cancel reached a child: end with ECANCELED (bpo-32684) */
    bool finished;              /* every child done, references dropped */
    bool watch_plain_cancel;    /* user-visible outer: a plain Future.cancel cancels the children */
    size_t n;                   /* arguments */
    size_t nfuts, nfinished;    /* distinct children */
    weft__task_t *waiter;       /* task suspended in weft_gather, or NULL */
    weft_future_t **args;       /* [n] the child of each argument (duplicates share) */
    weft_future_t **uniq;       /* [nfuts] distinct children, one reference each */
    uint8_t *created;           /* [n] this gather created the task for argument i */
} gather_t;

typedef struct glist {
    weft_gather_list_t pub;     /* first: the outer's result points here */
    size_t n;
} glist_t;

static void gather_tag(void *p) { (void)p; }

static gather_t *gather_of(weft_future_t *f) { return (gather_t *)(void *)f; }

static void glist_free(void *p)
{
    glist_t *l = p;
    for (size_t i = 0; i < l->n; i++) {
        weft__value_dispose(&l->pub.values[i]);
        free((void *)l->pub.messages[i]);
    }
    free(l);
}

/* The result list, built when every child is done. Results of tasks the
 * gather created are moved into the list; others are borrowed. */
static glist_t *glist_build(gather_t *g)
{
    size_t n = g->n;
    size_t sz = sizeof(glist_t) + n * (sizeof(weft_value_t) + sizeof(char *) + sizeof(int));
    glist_t *l = malloc(sz);
    if (!l)
        return NULL;
    l->n = n;
    weft_value_t *values = (weft_value_t *)(void *)(l + 1);
    const char **msgs = (const char **)(void *)(values + n);
    int *codes = (int *)(void *)(msgs + n);
    l->pub.n = n;
    l->pub.values = values;
    l->pub.messages = msgs;
    l->pub.codes = codes;
    for (size_t i = 0; i < n; i++) {
        weft_future_t *c = g->args[i];
        values[i] = (weft_value_t){ .p = NULL };
        msgs[i] = NULL;
        int rc = g->created[i] ? weft_future_take_result(c, &values[i]) : weft_future_result(c, &values[i]);
        codes[i] = rc;
        if (rc < 0) {
            values[i] = (weft_value_t){ .p = NULL };
            msgs[i] = weft__strdup(weft_future_message(c));
        }
    }
    return l;
}

static void set_outer_exception(gather_t *g, int code, const char *msg)
{
    if (msg)
        weft_future_set_exception(&g->fut, code, "%s", msg);
    else
        weft_future_set_exception(&g->fut, code, NULL);
}

static void wake_waiter(gather_t *g)
{
    if (g->waiter)
        weft__task_wake(g->waiter, 0);
}

/* Every child is done: drop the references and the gather's hold on itself. */
static void gather_finish(gather_t *g)
{
    g->finished = true;
    for (size_t i = 0; i < g->nfuts; i++)
        weft_future_release(g->uniq[i]);
    weft_future_release(&g->fut);   /* may free g */
}

static void child_done(weft_future_t *child, void *arg);

/* After the outer completed: what child_done would still do for a child that
 * completes later (mark its exception retrieved), without the gather. */
static void child_retrieve(weft_future_t *child, void *arg)
{
    (void)arg;
    if (!weft_future_cancelled(child))
        weft_future_exception(child, NULL, NULL);
}

/* The outer completed before every child did (the first error, with
 * return_exceptions false). The gather would otherwise stay alive until its
 * last child is done, holding a reference on each: a child that never
 * completes (a plain future nobody sets) kept both alive forever, a reference
 * cycle. Stop watching the children now: each pending registration is
 * swapped for a gather-free one and counted as finished; callbacks already
 * scheduled (not removable) still run and count themselves. */
static void gather_detach(gather_t *g)
{
    for (size_t i = 0; i < g->nfuts; i++) {
        weft_future_t *c = g->uniq[i];
        if (weft_future_remove_done_callback(c, child_done, g) > 0) {
            g->nfinished++;
            /* out of memory here loses only the "never retrieved" bookkeeping */
            (void)weft_future_add_done_callback(c, child_retrieve, NULL);
        }
    }
}

/* tasks.py gather()._done_callback */
static void child_done(weft_future_t *child, void *arg)
{
    gather_t *g = arg;
    weft_future_t *outer = &g->fut;
    g->nfinished++;
    if (weft_future_done(outer)) {
        if (!weft_future_cancelled(child))
            weft_future_exception(child, NULL, NULL);   /* mark it retrieved */
    } else if (!g->return_exceptions && weft_future_cancelled(child)) {
        /* a child cancelled by someone else: an exception, not a cancel (G5) */
        set_outer_exception(g, WEFT_ECANCELED, weft_future_message(child));
        wake_waiter(g);
        gather_detach(g);
    } else {
        int code = 0;
        const char *msg = NULL;
        if (!g->return_exceptions && weft_future_exception(child, &code, &msg) == 0 && code < 0) {
            set_outer_exception(g, code, msg);
            wake_waiter(g);
            gather_detach(g);
        } else if (g->nfinished == g->nfuts) {
            if (g->cancel_requested) {
                /* asyncio builds the result list first, which retrieves every
                 * child's exception, then reports the cancellation with the
                 * last argument's _make_cancelled_error() */
                for (size_t i = 0; i < g->nfuts; i++)
                    if (!weft_future_cancelled(g->uniq[i]))
                        weft_future_exception(g->uniq[i], NULL, NULL);
                weft_future_t *last = g->args[g->n - 1];
                set_outer_exception(g, WEFT_ECANCELED, weft_future_cancelled(last) ? weft_future_message(last) : NULL);
            } else {
                glist_t *l = glist_build(g);
                if (l)
                    weft_future_set_result(outer, WEFT_VALUE_OWNED(l, glist_free));
                else
                    set_outer_exception(g, WEFT_ENOMEM, "cannot allocate gather() results");
            }
            wake_waiter(g);
        }
    }
    if (g->nfinished == g->nfuts)
        gather_finish(g);
}

/* A plain weft_future_cancel() of a user-visible outer (including the one
 * weft_await does for a cancelled awaiter): cancel the children too. */
static void outer_done(weft_future_t *outer, void *arg)
{
    gather_t *g = arg;
    if (!weft_future_cancelled(outer) || g->finished)
        return;
    const char *msg = weft_future_message(outer);
    for (size_t i = 0; i < g->nfuts; i++)
        weft_future_cancel(g->uniq[i], msg);
}

/* _GatheringFuture.cancel */
static int gather_cancel_impl(gather_t *g, const char *msg)
{
    if (weft_future_done(&g->fut))
        return 0;
    bool ret = false;
    for (size_t i = 0; i < g->n; i++)   /* per argument, duplicates included, as asyncio */
        if (weft_future_cancel(g->args[i], msg) == 1)
            ret = true;
    if (ret)
        g->cancel_requested = true;
    return ret ? 1 : 0;
}

/* With the core's per-future cancel hook, weft_future_cancel() -- and so the
 * cancel weft_await() passes on from a cancelled awaiter -- is the gathering
 * future's own cancel, exactly as asyncio's _GatheringFuture.cancel. */
static int gather_cancel_hook(weft_future_t *f, const char *msg) { return gather_cancel_impl(gather_of(f), msg); }

int weft_gather_cancel(weft_future_t *outer, const char *msg)
{
    if (!outer || outer->is_task)
        return WEFT_EINVAL;
    int rc = weft__future_check(outer);
    if (rc < 0)
        return rc;
    if (weft_future_done(outer))
        return 0;
    if (outer->value.dtor != gather_tag)
        return WEFT_EINVAL;
    return gather_cancel_impl(gather_of(outer), msg);
}

/* Build a gather over fs (futures) or aws (awaitables). */
static int gather_new(weft_future_t *const *fs, const weft_awaitable_t *aws, size_t n,
                      const weft_gather_opts_t *opts, bool watch, gather_t **out)
{
    *out = NULL;
    weft_loop_t *loop = weft__thread()->running;
    if (!loop)
        return WEFT_ENOLOOP;
    if (n && !fs && !aws)
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (fs ? !fs[i] : (!aws[i].future == !aws[i].fn))
            return WEFT_EINVAL;
    }
    size_t sz = sizeof(gather_t) + 2 * n * sizeof(weft_future_t *) + 2 * n;
    gather_t *g = malloc(sz);
    if (!g)
        return WEFT_ENOMEM;
    weft__future_init(&g->fut, loop, false);
    g->return_exceptions = opts && opts->return_exceptions;
    g->cancel_requested = false;
    g->finished = false;
    g->watch_plain_cancel = watch;
    g->n = n;
    g->nfuts = 0;
    g->nfinished = 0;
    g->waiter = NULL;
    g->args = (weft_future_t **)(void *)(g + 1);
    g->uniq = g->args + n;
    g->created = (uint8_t *)(g->uniq + n);
    uint8_t *registered = g->created + n;   /* [nfuts] a done callback is registered */
    g->fut.value = (weft_value_t){ .p = g, .dtor = gather_tag };
    g->fut.cancel_hook = gather_cancel_hook;
    watch = false;   /* no plain cancel to make up for */
    g->watch_plain_cancel = false;

    weft__ptrset_t set = { NULL, 0 };
    size_t nargs = 0;   /* arguments processed */
    int rc = 0;
    if (n > 8 && (rc = weft__ptrset_init(&set, n)) < 0)
        goto fail;
    for (; nargs < n; nargs++) {
        size_t i = nargs;
        weft_future_t *f = fs ? fs[i] : aws[i].future;
        g->created[i] = 0;
        if (f) {
            bool fresh = true;
            if (set.slots) {
                fresh = weft__ptrset_add(&set, f) == 1;
            } else {
                for (size_t j = 0; j < i && fresh; j++)
                    fresh = g->args[j] != f;
            }
            g->args[i] = f;
            if (fresh)
                g->uniq[g->nfuts++] = weft_future_retain(f);
            continue;
        }
        weft_task_t *t;
        weft_task_opts_t to = { .name = aws[i].name };
        if ((rc = weft__comb_create_task(loop, &t, aws[i].fn, aws[i].arg, &to)) < 0)
            goto fail;
        g->args[i] = t;
        g->created[i] = 1;
        g->uniq[g->nfuts++] = t;
    }
    weft__ptrset_free(&set);

    if (g->nfuts == 0) {   /* gather() with no arguments: done at once (G1) */
        glist_t *l = glist_build(g);
        if (!l) {
            rc = WEFT_ENOMEM;
            goto fail;
        }
        g->finished = true;
        weft_future_set_result(&g->fut, WEFT_VALUE_OWNED(l, glist_free));
        *out = g;
        return 0;
    }
    /* Register on the pending children. The done ones are handled below,
     * once the outer exists (asyncio's done_futs: eager children may be done). */
    for (size_t i = 0; i < g->nfuts; i++) {
        registered[i] = 0;
        if (rc == 0 && !weft_future_done(g->uniq[i])) {
            if ((rc = weft_future_add_done_callback(g->uniq[i], child_done, g)) == 0)
                registered[i] = 1;
        }
    }
    if (rc == 0 && watch)
        rc = weft_future_add_done_callback(&g->fut, outer_done, g);
    if (rc < 0) {
        for (size_t i = 0; i < g->nfuts; i++)
            if (registered[i])
                weft_future_remove_done_callback(g->uniq[i], child_done, g);
        goto fail;
    }
    weft_future_retain(&g->fut);   /* held until the last child is done */
    *out = g;
    weft_future_retain(&g->fut);   /* keep g alive through the synchronous callbacks */
    for (size_t i = 0, nf = g->nfuts; i < nf && !g->finished; i++)
        if (!registered[i])
            child_done(g->uniq[i], g);
    weft_future_release(&g->fut);
    return 0;

fail:
    weft__ptrset_free(&set);
    for (size_t a = 0; a < nargs; a++)
        if (g->created[a])   /* tasks made here would run unawaited: cancel them */
            weft_future_cancel(g->args[a], NULL);
    for (size_t i = 0; i < g->nfuts; i++)
        weft_future_release(g->uniq[i]);
    g->fut.value = (weft_value_t){ .p = NULL };
    weft_future_release(&g->fut);
    return rc;
}

int weft_gather_future(const weft_awaitable_t *aws, size_t n, const weft_gather_opts_t *opts,
                       weft_future_t **outer)
{
    if (!outer)
        return WEFT_EINVAL;
    *outer = NULL;
    gather_t *g;
    int rc = gather_new(NULL, aws, n, opts, true, &g);
    if (rc < 0)
        return rc;
    *outer = &g->fut;
    return 0;
}

/* The awaiting task's cancel: the gathering future's cancel (G6). */
static bool gather_wait_cancel(weft__task_t *t, const char *msg)
{
    return gather_cancel_impl(gather_of(t->wait_obj), msg) == 1;
}

static int gather_await(gather_t *g, weft__task_t *t, weft_value_t *results, int *codes)
{
    weft_future_t *outer = &g->fut;
    int rc = 0;
    while (!weft_future_done(outer)) {
        g->waiter = t;
        rc = weft__task_suspend(t, WEFT__W_FUTURE, gather_wait_cancel, outer);
        g->waiter = NULL;
        if (rc < 0) {
            /* a cancel no child accepted, delivered when the outer completed:
             * the outcome is dropped but counts as retrieved (asyncio's
             * __wakeup calls result() before the CancelledError is thrown in) */
            if (weft_future_done(outer) && !weft_future_cancelled(outer))
                weft_future_exception(outer, NULL, NULL);
            else if (!weft_future_done(outer))
                /* the wait was ended early to break an await cycle
                 * (docs/guarantees.md): nobody is left to read the outcome */
                ck_pr_store_8(&outer->retrieved, 1);
            break;
        }
    }
    if (rc == 0) {
        weft_value_t v;
        if ((rc = weft__comb_outcome(t, outer, &v)) == 0) {
            glist_t *l = v.p;
            for (size_t i = 0; i < g->n; i++) {
                if (results) {
                    results[i] = l->pub.values[i];
                    l->pub.values[i].dtor = NULL;   /* moved to the caller */
                }
                if (codes)
                    codes[i] = l->pub.codes[i];
            }
        }
    }
    weft_future_release(outer);
    return rc;
}

static int gather_call(weft_future_t *const *fs, const weft_awaitable_t *aws, size_t n, weft_value_t *results,
                       int *codes, const weft_gather_opts_t *opts)
{
    weft__task_t *t = weft__comb_current();
    if (!t)
        return WEFT_ENOTCORO;
    gather_t *g;
    int rc = gather_new(fs, aws, n, opts, false, &g);
    if (rc < 0)
        return rc;
    return gather_await(g, t, results, codes);
}

int weft_gather(weft_future_t *const *fs, size_t n, weft_value_t *results, int *codes,
                const weft_gather_opts_t *opts)
{
    if (n && !fs)
        return WEFT_EINVAL;
    return gather_call(fs, NULL, n, results, codes, opts);
}

int weft_gather_aw(const weft_awaitable_t *aws, size_t n, weft_value_t *results, int *codes,
                   const weft_gather_opts_t *opts)
{
    if (n && !aws)
        return WEFT_EINVAL;
    return gather_call(NULL, aws, n, results, codes, opts);
}
