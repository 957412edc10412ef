/* Context variables (Python's contextvars).
 *
 * A context is a small object pointing at an immutable, reference-counted
 * snapshot: a sorted array of (variable id, value). Copying a context shares
 * the snapshot (O(1)); set() builds a new snapshot (O(n), contexts are small)
 * and swaps it into the context being changed.
 *
 * The current context is found through the current task: each task has a
 * context slot (NULL = empty, materialised at the first set()). Code outside
 * any task uses a per-thread slot. Nothing needs switching when tasks switch.
 *
 * A task's slot is weft__task_t.ctx: the core calls
 * weft__context_for_new_task() when it creates a task and releases the
 * context when the task is freed. */
#include "core/context.h"
#include "core/task.h"

#include <pthread.h>

struct weft_contextvar {
    uint64_t id;
    char *name;
    bool has_default;
    weft_value_t dflt;
};

typedef struct ent {
    uint64_t id;
    weft_value_t v;
} ent_t;

typedef struct snap {
    unsigned int refs;          /* atomic */
    uint32_t n;
    ent_t e[];                  /* sorted by id */
} snap_t;

struct weft_context {
    unsigned int refs;          /* atomic */
    uint64_t id;
    snap_t *snap;               /* NULL = empty */
};

static uint64_t var_counter;    /* atomic */
static uint64_t ctx_counter;    /* atomic */

/* ---- snapshots ----------------------------------------------------------------- */

static void snap_release(snap_t *s)
{
    if (!s)
        return;
    bool zero;
    WEFT__TSAN_RELEASE(s);
    ck_pr_dec_uint_zero(&s->refs, &zero);
    if (zero) {
        WEFT__TSAN_ACQUIRE(s);
        free(s);
    }
}

static const ent_t *snap_find(const snap_t *s, uint64_t id)
{
    if (!s)
        return NULL;
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->e[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->e[lo].id == id ? &s->e[lo] : NULL;
}

/* A new snapshot: @s with @id set to @v (or removed when @v is NULL).
 * *out = NULL for an empty result. */
static int snap_with(const snap_t *s, uint64_t id, const weft_value_t *v, snap_t **out)
{
    uint32_t n = s ? s->n : 0;
    const ent_t *old = snap_find(s, id);
    uint32_t m = n + (v && !old) - (!v && old);
    *out = NULL;
    if (m == 0)
        return 0;
    snap_t *d = malloc(sizeof *d + (size_t)m * sizeof(ent_t));
    if (!d)
        return WEFT_ENOMEM;
    d->refs = 1;
    d->n = m;
    uint32_t j = 0;
    bool placed = false;
    for (uint32_t i = 0; i < n; i++) {
        if (!placed && v && s->e[i].id >= id) {
            d->e[j++] = (ent_t){ id, *v };
            placed = true;
            if (s->e[i].id == id)
                continue;
        } else if (s->e[i].id == id) {
            continue;   /* removed */
        }
        d->e[j++] = s->e[i];
    }
    if (v && !placed)
        d->e[j++] = (ent_t){ id, *v };
    *out = d;
    return 0;
}

/* ---- contexts -------------------------------------------------------------------- */

static weft_context_t *ctx_alloc(snap_t *s)
{
    weft_context_t *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->refs = 1;
    c->id = ck_pr_faa_64(&ctx_counter, 1) + 1;
    c->snap = s;
    if (s)
        ck_pr_inc_uint(&s->refs);
    return c;
}

weft_context_t *weft_context_new(void) { return ctx_alloc(NULL); }

weft_context_t *weft_context_retain(weft_context_t *ctx)
{
    if (ctx)
        ck_pr_inc_uint(&ctx->refs);
    return ctx;
}

void weft_context_release(weft_context_t *ctx)
{
    if (!ctx)
        return;
    bool zero;
    WEFT__TSAN_RELEASE(ctx);
    ck_pr_dec_uint_zero(&ctx->refs, &zero);
    if (!zero)
        return;
    WEFT__TSAN_ACQUIRE(ctx);
    snap_release(ctx->snap);
    free(ctx);
}

/* ---- where the current context lives ------------------------------------------- */

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_ctx_dtor(void *p) { weft_context_release(p); }
static void thread_key_init(void) { pthread_key_create(&thread_key, thread_ctx_dtor); }

/* This thread's own context (outside tasks). */
static weft_context_t *thread_ctx(void)
{
    pthread_once(&thread_key_once, thread_key_init);
    return pthread_getspecific(thread_key);
}

static void thread_ctx_set(weft_context_t *c)
{
    pthread_once(&thread_key_once, thread_key_init);
    pthread_setspecific(thread_key, c);
}


/* The slot of the running task, or NULL when it has none. */
static weft_context_t **task_slot(weft__task_t *t)
{
    return &t->ctx;
}

/* The current context (NULL: empty). */
static weft_context_t *current(weft_context_t ***slotp)
{
    weft__task_t *t = weft__thread()->task;
    weft_context_t **slot = t ? task_slot(t) : NULL;
    if (slotp)
        *slotp = slot;
    return slot ? *slot : thread_ctx();
}

static void current_set(weft_context_t **slot, weft_context_t *c)
{
    if (slot)
        *slot = c;
    else
        thread_ctx_set(c);
}

const weft_context_t *weft_context_current(void) { return current(NULL); }

weft_context_t *weft_context_copy(void)
{
    weft_context_t *cur = current(NULL);
    return ctx_alloc(cur ? cur->snap : NULL);
}

/* Set by weft_create_task_in_context (hook mode) for the one task it creates. */
static _Thread_local weft_context_t *tls_override;
static _Thread_local bool tls_override_set;

WEFT__NOINLINE static weft_context_t **override_slot(bool **set)
{
    weft_context_t **p = &tls_override;
    bool *s = &tls_override_set;
    WEFT__OPAQUE(p);
    WEFT__OPAQUE(s);
    *set = s;
    return p;
}

struct weft_context *weft__context_for_new_task(void)
{
    bool *isset;
    weft_context_t **ov = override_slot(&isset);
    if (*isset) {
        weft_context_t *c = *ov;
        *ov = NULL;
        *isset = false;
        return c;   /* the reference weft_create_task_in_context took */
    }
    weft_context_t *cur = current(NULL);
    if (!cur || !cur->snap)
        return NULL;   /* empty: nothing to copy */
    return ctx_alloc(cur->snap);
}

/* ---- variables ------------------------------------------------------------------ */

int weft_contextvar_new(weft_contextvar_t **out, const char *name, const weft_value_t *dflt)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (!name)
        return WEFT_EINVAL;
    weft_contextvar_t *v = calloc(1, sizeof *v);
    if (!v || !(v->name = weft__strdup(name))) {
        free(v);
        return WEFT_ENOMEM;
    }
    v->id = ck_pr_faa_64(&var_counter, 1) + 1;
    if (dflt) {
        v->has_default = true;
        v->dflt = *dflt;
        v->dflt.dtor = NULL;
    }
    *out = v;
    return 0;
}

void weft_contextvar_free(weft_contextvar_t *var)
{
    if (!var)
        return;
    free(var->name);
    free(var);
}

const char *weft_contextvar_name(const weft_contextvar_t *var) { return var ? var->name : NULL; }

int weft_context_get(const weft_context_t *ctx, const weft_contextvar_t *var, weft_value_t *out)
{
    if (!var)
        return WEFT_EINVAL;
    const ent_t *e = ctx ? snap_find(ctx->snap, var->id) : NULL;
    if (!e)
        return WEFT_ELOOKUP;
    if (out)
        *out = e->v;
    return 0;
}

size_t weft_context_size(const weft_context_t *ctx) { return ctx && ctx->snap ? ctx->snap->n : 0; }

int weft_contextvar_get(const weft_contextvar_t *var, weft_value_t *out)
{
    if (!var)
        return WEFT_EINVAL;
    if (weft_context_get(current(NULL), var, out) == 0)
        return 0;
    if (!var->has_default)
        return WEFT_ELOOKUP;
    if (out)
        *out = var->dflt;
    return 0;
}

int weft_contextvar_get_or(const weft_contextvar_t *var, weft_value_t dflt, weft_value_t *out)
{
    if (!var)
        return WEFT_EINVAL;
    if (weft_context_get(current(NULL), var, out) != 0 && out) {
        *out = dflt;
        out->dtor = NULL;
    }
    return 0;
}

/* The current context, materialised so that it can be changed. */
static int current_mutable(weft_context_t **out)
{
    weft_context_t **slot;
    weft_context_t *c = current(&slot);
    if (!c) {
        if (!(c = ctx_alloc(NULL)))
            return WEFT_ENOMEM;
        current_set(slot, c);
    }
    *out = c;
    return 0;
}

static int ctx_put(weft_context_t *c, uint64_t id, const weft_value_t *v)
{
    snap_t *ns;
    int rc = snap_with(c->snap, id, v, &ns);
    if (rc < 0)
        return rc;
    snap_release(c->snap);
    c->snap = ns;
    return 0;
}

int weft_contextvar_set(weft_contextvar_t *var, weft_value_t value, weft_contextvar_token_t *tok)
{
    if (!var)
        return WEFT_EINVAL;
    weft_context_t *c;
    int rc = current_mutable(&c);
    if (rc < 0)
        return rc;
    const ent_t *old = snap_find(c->snap, var->id);
    weft_contextvar_token_t t = { .ctx_id = c->id, .var = var, .had_old = old != NULL };
    if (old)
        t.old = old->v;
    value.dtor = NULL;
    if ((rc = ctx_put(c, var->id, &value)) < 0)
        return rc;
    if (tok)
        *tok = t;
    return 0;
}

int weft_contextvar_reset(weft_contextvar_t *var, weft_contextvar_token_t *tok)
{
    if (!var || !tok)
        return WEFT_EINVAL;
    if (tok->used)
        return WEFT_EINVALSTATE;   /* "Token has already been used once" */
    if (tok->var != var)
        return WEFT_EINVAL;        /* "Token was created by a different ContextVar" */
    weft_context_t *c = current(NULL);
    if (!c || c->id != tok->ctx_id)
        return WEFT_EINVAL;        /* "Token was created in a different Context" */
    int rc = ctx_put(c, var->id, tok->had_old ? &tok->old : NULL);
    if (rc == 0)
        tok->used = true;
    return rc;
}

/* ---- running in a context ------------------------------------------------------- */

int weft_context_run(weft_context_t *ctx, int (*fn)(void *arg), void *arg)
{
    if (!ctx || !fn)
        return WEFT_EINVAL;
    weft_context_t **slot;
    weft_context_t *saved = current(&slot);
    weft__task_t *t = weft__thread()->task;   /* fn may await: come back to the same slot */
    current_set(slot, weft_context_retain(ctx));
    int rc = fn(arg);
    weft_context_t **slot2 = NULL;
    if (t) {
        slot2 = task_slot(t);
    }
    weft_context_t *now = slot2 ? *slot2 : thread_ctx();
    current_set(slot2, saved);
    weft_context_release(now);
    return rc;
}

/* ---- tasks in a context ----------------------------------------------------------- */


int weft__loop_create_task_in_context(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                                      const weft_task_opts_t *opts, weft_context_t *ctx)
{
    if (!ctx)
        return weft_loop_create_task(loop, out, fn, arg, opts);
    bool *isset;
    weft_context_t **ov = override_slot(&isset);
    *ov = weft_context_retain(ctx);
    *isset = true;
    int rc = weft_loop_create_task(loop, out, fn, arg, opts);
    ov = override_slot(&isset);
    if (*isset) {   /* not consumed: creation failed before the task existed */
        weft_context_release(*ov);
        *ov = NULL;
        *isset = false;
    }
    return rc;
}

int weft_create_task_in_context(weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts,
                                weft_context_t *ctx)
{
    if (!ctx)
        return weft_create_task(out, fn, arg, opts);
    bool *isset;
    weft_context_t **ov = override_slot(&isset);
    *ov = weft_context_retain(ctx);
    *isset = true;
    int rc = weft_create_task(out, fn, arg, opts);
    ov = override_slot(&isset);
    if (*isset) {   /* not consumed: creation failed before the task existed */
        weft_context_release(*ov);
        *ov = NULL;
        *isset = false;
    }
    return rc;
}

