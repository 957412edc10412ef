/* shield (CPython 3.12 tasks.py shield()).
 *
 * The outer future and the inner are tied by two done callbacks sharing one
 * record, which holds a reference on each future and lives until both
 * registrations are resolved (the callback ran, or it was removed). */
#include "comb/comb.h"

typedef struct shield {
    unsigned int refs;          /* one per registration not yet resolved */
    weft_future_t *inner, *outer;
} shield_t;

static void shield_unref_n(shield_t *s, unsigned int k)
{
    s->refs -= k;
    if (s->refs)
        return;
    weft_future_release(s->inner);
    weft_future_release(s->outer);
    free(s);
}

static void shield_unref(shield_t *s) { shield_unref_n(s, 1); }

/* _inner_done_callback */
static void inner_done(weft_future_t *inner, void *arg)
{
    shield_t *s = arg;
    weft_future_t *outer = s->outer;
    if (weft_future_done(outer)) {   /* outer cancelled: nobody will look at inner's outcome here */
        if (!weft_future_cancelled(inner))
            weft_future_exception(inner, NULL, NULL);   /* mark it retrieved */
    } else if (weft_future_cancelled(inner)) {
        weft_future_cancel(outer, NULL);   /* outer.cancel(), no message (3.12) */
    } else {
        int code = 0;
        const char *msg = NULL;
        weft_future_exception(inner, &code, &msg);
        if (code < 0) {
            if (msg)
                weft_future_set_exception(outer, code, "%s", msg);
            else
                weft_future_set_exception(outer, code, NULL);
        } else {
            weft_value_t v;
            weft_future_result(inner, &v);   /* borrowed from inner */
            weft_future_set_result(outer, v);
        }
    }
    shield_unref(s);
}

/* _outer_done_callback: detach from inner */
static void outer_done(weft_future_t *outer, void *arg)
{
    (void)outer;
    shield_t *s = arg;
    int k = weft_future_remove_done_callback(s->inner, inner_done, s);
    shield_unref_n(s, 1 + (k > 0 ? (unsigned int)k : 0));
}

int weft_shield(weft_future_t *inner, weft_future_t **outer)
{
    if (!outer)
        return WEFT_EINVAL;
    *outer = NULL;
    if (!inner)
        return WEFT_EINVAL;
    int rc = weft__future_check(inner);
    if (rc < 0)
        return rc;
    if (weft_future_done(inner)) {   /* shortcut: inner itself */
        *outer = weft_future_retain(inner);
        return 0;
    }
    weft_future_t *o;
    if ((rc = weft_future_new(weft_future_get_loop(inner), &o)) < 0)
        return rc;
    shield_t *s = malloc(sizeof *s);
    if (!s) {
        weft_future_release(o);
        return WEFT_ENOMEM;
    }
    s->refs = 2;
    s->inner = weft_future_retain(inner);
    s->outer = weft_future_retain(o);
    if ((rc = weft_future_add_done_callback(inner, inner_done, s)) < 0) {
        s->refs = 1;
        shield_unref(s);
        weft_future_release(o);
        return rc;
    }
    if ((rc = weft_future_add_done_callback(o, outer_done, s)) < 0) {
        weft_future_remove_done_callback(inner, inner_done, s);
        s->refs = 1;
        shield_unref(s);
        weft_future_release(o);
        return rc;
    }
    *outer = o;
    return 0;
}

int weft_await_shielded(weft_future_t *inner, weft_value_t *out)
{
    if (!weft__comb_current())
        return WEFT_ENOTCORO;
    weft_future_t *o;
    int rc = weft_shield(inner, &o);
    if (rc < 0)
        return rc;
    rc = weft__comb_await(o, out);
    weft_future_release(o);
    return rc;
}
