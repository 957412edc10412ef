/* TaskGroup (CPython taskgroups.py; the cancel-count handling of 3.13, see
 * include/weft/taskgroup.h for why).
 *
 * Each live child has a small node (linked in the group, the child's done
 * callback argument, holding a reference on the task). The group lives in the
 * owner's frame: exit waits until the last node is gone, so no callback can
 * refer to the group after exit returned. */
#include "comb/comb.h"

#define TG_MAGIC 0x54475250u

struct weft__tg_child {
    struct weft__tg_child *prev, *next;
    weft_taskgroup_t *tg;
    weft_task_t *task;
};

struct weft_errgroup {
    size_t n, cap;
    weft_exception_t *e;      /* strings owned (allocated here) */
    char *message;            /* the group's own message (ExceptionGroup.message) */
};

static int eg_add(weft_errgroup_t **pg, int code, const char *msg, const char *name)
{
    weft_errgroup_t *eg = *pg;
    if (!eg) {
        if (!(eg = calloc(1, sizeof *eg)))
            return WEFT_ENOMEM;
        *pg = eg;
    }
    if (eg->n == eg->cap) {
        size_t cap = eg->cap ? eg->cap * 2 : 4;
        weft_exception_t *e = realloc(eg->e, cap * sizeof *e);
        if (!e)
            return WEFT_ENOMEM;
        eg->e = e;
        eg->cap = cap;
    }
    eg->e[eg->n++] = (weft_exception_t){ code, weft__strdup(msg), weft__strdup(name) };
    return 0;
}

void weft_errgroup_free(weft_errgroup_t *eg)
{
    if (!eg)
        return;
    for (size_t i = 0; i < eg->n; i++) {
        free((char *)(uintptr_t)eg->e[i].message);
        free((char *)(uintptr_t)eg->e[i].task_name);
    }
    free(eg->e);
    free(eg->message);
    free(eg);
}

size_t weft_errgroup_count(const weft_errgroup_t *eg) { return eg ? eg->n : 0; }

int weft_errgroup_code(const weft_errgroup_t *eg, size_t i) { return eg && i < eg->n ? eg->e[i].code : WEFT_EINVAL; }

const char *weft_errgroup_message(const weft_errgroup_t *eg, size_t i)
{
    return eg && i < eg->n ? eg->e[i].message : NULL;
}

const char *weft_errgroup_task_name(const weft_errgroup_t *eg, size_t i)
{
    return eg && i < eg->n ? eg->e[i].task_name : NULL;
}

const char *weft_errgroup_group_message(const weft_errgroup_t *eg) { return eg ? eg->message : NULL; }

const weft_exception_t *weft_errgroup_exceptions(const weft_errgroup_t *eg, size_t *n)
{
    if (n)
        *n = eg ? eg->n : 0;
    return eg && eg->n ? eg->e : NULL;
}

/* ---- the group ------------------------------------------------------------------ */

static bool tg_valid(const weft_taskgroup_t *tg) { return tg && tg->magic == TG_MAGIC && tg->entered; }

/* The struct is usually fresh stack memory, which may hold a stale group
 * (same frame layout, earlier call, maybe another task, whose later frames
 * overwrote parts of it): only a group this very task entered at this address
 * and never began to leave counts as "already entered". A group whose exit
 * began cannot be entered again by its owner anyway: the owner is either
 * still inside weft_taskgroup_exit (suspended, so not calling this) or has
 * left it, so `exiting` alone decides, and the fields after it (children,
 * waiter), which a reused frame overwrites first, are not read. */
int weft_taskgroup_enter(weft_taskgroup_t *tg)
{
    if (!tg)
        return WEFT_EINVAL;
    weft__task_t *t = weft__comb_current();
    if (!t)
        return WEFT_ENOTCORO;      /* "cannot determine the parent task" */
    if (tg->magic == TG_MAGIC && tg->self == tg && tg->owner == t->id && tg->entered && !tg->exiting)
        return WEFT_EINVALSTATE;   /* "TaskGroup has already been entered" */
    memset(tg, 0, sizeof *tg);
    tg->magic = TG_MAGIC;
    tg->self = tg;
    tg->owner = t->id;
    tg->entered = 1;
    tg->loop = t->fut.loop;
    tg->parent = &t->fut;
    return 0;
}

/* Task.uncancel() as 3.13 has it: reaching 0 also drops a cancel request not
 * yet delivered (must_cancel), so that the group's own cancel of a running
 * owner (an eager child failing, the re-cancel below) cannot outlive it.
 * weft_task_uncancel() keeps 3.12's behaviour, which leaves it armed. */
static int tg_uncancel(weft_task_t *parent)
{
    int n = weft_task_uncancel(parent);
    if (n == 0)
        weft__task_of(parent)->must_cancel = 0;
    return n;
}

static void tg_abort(weft_taskgroup_t *tg)
{
    tg->aborting = 1;
    for (struct weft__tg_child *c = tg->children; c; c = c->next)
        if (!weft_future_done(c->task))
            weft_task_cancel(c->task, NULL);
}

/* _on_task_done, after the task left the set */
static void tg_task_done(weft_taskgroup_t *tg, weft_task_t *task)
{
    if (tg->waiter && !tg->ntasks)   /* _on_completed_fut.set_result(True) */
        weft__task_wake(tg->waiter, 0);
    if (weft_future_cancelled(task))
        return;   /* a cancelled child is not an error */
    int code = 0;
    const char *msg = NULL;
    if (weft_future_exception(task, &code, &msg) < 0 || code >= 0)
        return;
    if (eg_add(&tg->errors, code, msg, weft_task_get_name(task)) < 0)
        weft__report(tg->loop, "TaskGroup: cannot record a child's error (out of memory)", code, msg, task);
    if (weft_future_done(tg->parent)) {
        char buf[160];
        snprintf(buf, sizeof buf, "Task '%s' has errored out but its parent task '%s' is already completed",
                 weft_task_get_name(task), weft_task_get_name(tg->parent));
        weft__report(tg->loop, buf, code, msg, task);
        return;
    }
    if (!tg->aborting && !tg->parent_cancel_requested) {
        /* cancel whatever the owner runs in the block; uncancelled at exit */
        tg_abort(tg);
        tg->parent_cancel_requested = 1;
        weft_task_cancel(tg->parent, NULL);
    }
}

static void tg_child_done(weft_future_t *f, void *arg)
{
    struct weft__tg_child *c = arg;
    weft_taskgroup_t *tg = c->tg;
    if (c->prev)
        c->prev->next = c->next;
    else
        tg->children = c->next;
    if (c->next)
        c->next->prev = c->prev;
    tg->ntasks--;
    tg_task_done(tg, f);
    weft_future_release(c->task);
    free(c);
}

static int tg_add(weft_taskgroup_t *tg, weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts,
                  bool stealable)
{
    if (out)
        *out = NULL;
    if (!tg || !fn)
        return WEFT_EINVAL;
    if (!tg_valid(tg))
        return WEFT_ENOTENTERED;   /* "has not been entered" */
    if (tg->exiting && !tg->ntasks)
        return WEFT_ECLOSED;       /* "is finished" */
    if (tg->aborting)
        return WEFT_ESHUTDOWN;     /* "is shutting down" */
    struct weft__tg_child *c = malloc(sizeof *c);
    if (!c)
        return WEFT_ENOMEM;
    weft_task_t *task;
    int rc;
    if (stealable) {
        /* queued on this loop, where an idle worker may take it before it starts; its
         * done callback still runs here (registered here), so the group's state stays
         * on the group's loop */
        rc = weft__thread()->running == tg->loop ? weft_spawn(&task, fn, arg, opts) : WEFT_EWRONGLOOP;
    } else {
        rc = weft__comb_create_task(tg->loop, &task, fn, arg, opts);
    }
    if (rc < 0) {
        free(c);
        return rc;
    }
    if (!weft_future_done(task)) {
        c->tg = tg;
        c->task = weft_future_retain(task);
        if ((rc = weft_future_add_done_callback(task, tg_child_done, c)) < 0) {
            weft_future_release(c->task);
            free(c);
            weft_task_cancel(task, NULL);
            weft_task_release(task);
            return rc;
        }
        c->prev = NULL;
        c->next = tg->children;
        if (tg->children)
            tg->children->prev = c;
        tg->children = c;
        tg->ntasks++;
    } else {   /* finished eagerly: account for it now, no callback */
        free(c);
        tg_task_done(tg, task);
    }
    if (out)
        *out = task;
    else
        weft_task_release(task);
    return 0;
}

int weft_taskgroup_create_task(weft_taskgroup_t *tg, weft_task_t **out, weft_coro_fn fn, void *arg,
                               const weft_task_opts_t *opts)
{
    return tg_add(tg, out, fn, arg, opts, false);
}

int weft_taskgroup_spawn(weft_taskgroup_t *tg, weft_task_t **out, weft_coro_fn fn, void *arg,
                         const weft_task_opts_t *opts)
{
    return tg_add(tg, out, fn, arg, opts, true);
}

int weft_taskgroup_exit(weft_taskgroup_t *tg, int rc)
{
    if (!tg_valid(tg) || tg->exiting)
        return WEFT_ENOTENTERED;
    weft__task_t *t = weft__comb_current();
    if (!t || &t->fut != tg->parent)
        return WEFT_ENOTCORO;
    tg->exiting = 1;
    bool propagate_cancel = rc == WEFT_ECANCELED;
    /* the block's error message, before the waits below replace the task's last error */
    char *body_msg = rc < 0 && rc != WEFT_ECANCELED && t->err_code == rc ? weft__strdup(t->err_msg) : NULL;
    if (rc < 0 && !tg->aborting)   /* the owner is cancelled, or the block failed */
        tg_abort(tg);
    while (tg->ntasks) {
        tg->waiter = t;
        int st = weft__comb_wait(t, WEFT__W_OTHER, tg);
        tg->waiter = NULL;
        if (st == WEFT_ECANCELED && !tg->aborting) {
            /* the owner is being cancelled while the children still run */
            propagate_cancel = true;
            tg_abort(tg);
        }
    }
    if (tg->parent_cancel_requested) {   /* 3.13: after the wait, so the count stays balanced */
        if (tg_uncancel(tg->parent) == 0)
            propagate_cancel = false;
    }
    if (propagate_cancel && !tg->errors) {
        free(body_msg);
        return WEFT_ECANCELED;
    }
    if (rc < 0 && rc != WEFT_ECANCELED) {
        int erc = eg_add(&tg->errors, rc, body_msg, weft_task_get_name(tg->parent));
        free(body_msg);
        if (erc < 0)
            return rc;
    }
    if (tg->errors) {
        if (weft_task_cancelling(tg->parent) > 0) {
            /* 3.13: a cancel from outside must survive the group's error */
            tg_uncancel(tg->parent);
            weft_task_cancel(tg->parent, NULL);
        }
        size_t n = tg->errors->n;
        char buf[96];
        snprintf(buf, sizeof buf, "unhandled errors in a TaskGroup (%zu sub-exception%s)", n, n == 1 ? "" : "s");
        free(tg->errors->message);
        tg->errors->message = weft__strdup(buf);
        return weft_raise(WEFT_EGROUP, "%s", buf);
    }
    return rc;
}

const weft_errgroup_t *weft_taskgroup_errors(const weft_taskgroup_t *tg)
{
    return tg && tg->magic == TG_MAGIC ? tg->errors : NULL;
}

weft_errgroup_t *weft_taskgroup_take_errors(weft_taskgroup_t *tg)
{
    if (!tg || tg->magic != TG_MAGIC)
        return NULL;
    weft_errgroup_t *eg = tg->errors;
    tg->errors = NULL;
    return eg;
}

void weft_taskgroup_free(weft_taskgroup_t *tg)
{
    if (!tg || tg->magic != TG_MAGIC || (tg->entered && (!tg->exiting || tg->ntasks)))
        return;
    weft_errgroup_free(tg->errors);
    tg->errors = NULL;
    tg->magic = 0;
}

size_t weft_taskgroup_size(const weft_taskgroup_t *tg) { return tg && tg->magic == TG_MAGIC ? tg->ntasks : 0; }
