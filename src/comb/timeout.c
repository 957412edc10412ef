/* Timeout scopes: asyncio.timeout / timeout_at (CPython 3.12 timeouts.py).
 *
 * The scope records the task's cancelling() count at entry. When its timer
 * fires it cancels the task (no message) and becomes EXPIRING; at exit it
 * calls uncancel() and converts WEFT_ECANCELED into WEFT_ETIMEDOUT only if the
 * count is back to its entry value: a cancel from outside, or an outer scope
 * that expired too, keeps the count above it and the CANCELLED passes on. */
#include "comb/comb.h"
#include "debug/debug.h"

#define TO_MAGIC 0x544d4f55u

static int on_timeout(void *arg)
{
    weft_timeout_t *to = arg;
    to->armed = false;
    if (to->state != WEFT_TIMEOUT_ACTIVE)
        return 0;
    weft_task_cancel(to->task, NULL);
    to->state = WEFT_TIMEOUT_EXPIRING;
    return 0;
}

static void disarm(weft_timeout_t *to)
{
    if (to->armed) {
        to->armed = false;
        weft_handle_cancel(to->handle);
    }
}

static int arm(weft_timeout_t *to)
{
    if (weft__no_timeout(to->when))
        return 0;
    int rc;
    if (to->when <= weft_loop_time(to->loop))
        rc = weft_call_soon(to->loop, on_timeout, to, &to->handle);
    else
        rc = weft_call_at(to->loop, to->when, on_timeout, to, &to->handle);
    if (rc == 0)
        to->armed = true;
    return rc;
}

static int enter(weft_timeout_t *to, double when, bool relative)
{
    if (!to || isnan(when))
        return WEFT_EINVAL;
    weft__task_t *t = weft__comb_current();
    if (!t) {   /* "Timeout should be used inside a task" */
        memset(to, 0, sizeof *to);
        return WEFT_ENOTCORO;
    }
    /* "Timeout has already been entered": this task's scope, still open.
     * Re-arming it would orphan its timer, which would later fire into this
     * memory. (Stale stack memory of another task or of a left scope fails
     * one of the checks and is simply overwritten.) */
    if (to->magic == TO_MAGIC && to->self == to && to->owner == t->id &&
        (to->state == WEFT_TIMEOUT_ACTIVE || to->state == WEFT_TIMEOUT_EXPIRING))
        return WEFT_EINVALSTATE;
    weft_loop_t *loop = t->fut.loop;
    if (weft__no_timeout(when))
        when = WEFT_TIMEOUT_NEVER;
    else if (relative)
        when += weft_loop_time(loop);
    *to = (weft_timeout_t){
        .magic = TO_MAGIC,
        .self = to,
        .owner = t->id,
        .state = WEFT_TIMEOUT_ACTIVE,
        .cancelling = weft_task_cancelling(&t->fut),
        .when = when,
        .task = &t->fut,
        .loop = loop,
    };
    int rc = arm(to);
    if (rc < 0)
        to->state = WEFT_TIMEOUT_CREATED;
    return rc;
}

int weft_timeout_enter(weft_timeout_t *to, double delay) { return enter(to, delay, true); }

int weft_timeout_enter_at(weft_timeout_t *to, double when) { return enter(to, when, false); }

int weft_timeout_exit(weft_timeout_t *to, int rc)
{
    if (!to || (to->state != WEFT_TIMEOUT_ACTIVE && to->state != WEFT_TIMEOUT_EXPIRING))
        return WEFT_ENOTENTERED;
    weft__task_t *t = weft__comb_current();
    if (!t || &t->fut != to->task) {
        /* the scope belongs to another task: leave it untouched (still active,
         * its timer still aimed at the task that entered it) */
        weft__log(WEFT_LOG_ERROR, "weft: weft_timeout_exit called by %s, not by the task that entered the scope; "
                  "the scope is left as it is", t ? "another task" : "code outside any task");
        return t ? WEFT_EINVALSTATE : WEFT_ENOTCORO;
    }
    disarm(to);
    if (to->state == WEFT_TIMEOUT_EXPIRING) {
        to->state = WEFT_TIMEOUT_EXPIRED;
        /* uncancel() always; convert only if no other cancel request is pending */
        if (weft_task_uncancel(to->task) <= to->cancelling && rc == WEFT_ECANCELED)
            rc = weft__comb_error(weft__task_of(to->task), WEFT_ETIMEDOUT, NULL);
    } else {
        to->state = WEFT_TIMEOUT_FINISHED;
    }
    return rc;
}

int weft_timeout_reschedule(weft_timeout_t *to, double when)
{
    if (!to || isnan(when))
        return WEFT_EINVAL;
    if (to->state == WEFT_TIMEOUT_CREATED)   /* "Timeout has not been entered" */
        return WEFT_ENOTENTERED;
    if (to->state != WEFT_TIMEOUT_ACTIVE)    /* "Cannot change state of <state> Timeout" */
        return WEFT_EINVALSTATE;
    to->when = weft__no_timeout(when) ? WEFT_TIMEOUT_NEVER : when;
    disarm(to);
    return arm(to);
}

double weft_timeout_when(const weft_timeout_t *to)
{
    return to && !weft__no_timeout(to->when) ? to->when : WEFT_TIMEOUT_NEVER;
}

bool weft_timeout_expired(const weft_timeout_t *to)
{
    return to && (to->state == WEFT_TIMEOUT_EXPIRING || to->state == WEFT_TIMEOUT_EXPIRED);
}

int weft_timeout_state(const weft_timeout_t *to) { return to ? to->state : WEFT_EINVAL; }
