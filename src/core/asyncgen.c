/* Async generators (PEP 525) on weft tasks.
 *
 * The body runs in a task of its own, on the loop that created the
 * generator, so every field below is touched by that loop's thread only. A
 * request (anext, asend, athrow, aclose) stores what it asks in the generator,
 * wakes the body suspended in weft_asyncgen_yield (or starts its task), and
 * awaits a fresh future `resp`. The body answers by completing `resp`: a
 * yield sets its result, returning from the body sets an exception
 * (WEFT_ESTOPASYNCITER for a plain return). Cancelling the waiting consumer
 * cancels `resp`, whose cancel hook cancels the body's task instead: the
 * body's current await sees WEFT_ECANCELED, as when asyncio throws the
 * CancelledError into the generator frame, and `resp` completes with
 * whatever the body does next. A cancel that reaches the body while it waits
 * at a yield (the runtime's or a Runner's shutdown cancelling every task) is
 * finalisation: the yield returns WEFT_EGENEXIT. */
#include "core/task.h"
#include "weft/asyncgen.h"

enum { AG_CREATED, AG_SUSPENDED, AG_RUNNING, AG_FINISHED };
enum { REQ_NEXT, REQ_SEND, REQ_THROW, REQ_CLOSE };

struct weft_asyncgen {
    unsigned int refs;            /* the user's + one while the body's task runs */
    weft_loop_t *loop;
    weft_asyncgen_fn fn;
    void *arg;
    char *name;
    size_t stack_size;
    weft_task_t *task;            /* the body's task, once started */
    int state;
    int req;                      /* the request being served */
    weft_value_t req_value;
    int req_code;
    char *req_msg;
    bool yielded;                 /* resp was answered by a yield */
    bool detached;                /* no user reference left: close at the next yield */
    bool at_yield;                /* the body waits in weft_asyncgen_yield */
    weft_future_t *resp;          /* the pending request's answer */
    struct weft_asyncgen *prev, *next;   /* the loop's started generators */
};

/* Started, unfinished generators of every loop (shutdown_asyncgens walks the
 * running loop's). Guarded by a mutex: generators of different loops live in
 * different threads. */
static uv_mutex_t reg_mu;
static uv_once_t reg_once = UV_ONCE_INIT;
static weft_asyncgen_t *reg_head;
static void reg_init(void) { uv_mutex_init(&reg_mu); }

static void reg_add(weft_asyncgen_t *g)
{
    uv_once(&reg_once, reg_init);
    uv_mutex_lock(&reg_mu);
    g->prev = NULL;
    g->next = reg_head;
    if (reg_head)
        reg_head->prev = g;
    reg_head = g;
    uv_mutex_unlock(&reg_mu);
}

static void reg_remove(weft_asyncgen_t *g)
{
    uv_once(&reg_once, reg_init);
    uv_mutex_lock(&reg_mu);
    if (g->prev)
        g->prev->next = g->next;
    else if (reg_head == g)
        reg_head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    g->prev = g->next = NULL;
    uv_mutex_unlock(&reg_mu);
}

static void ag_free(weft_asyncgen_t *g)
{
    weft_task_release(g->task);
    free(g->req_msg);
    free(g->name);
    free(g);
}

static void ag_unref(weft_asyncgen_t *g)
{
    if (--g->refs == 0)
        ag_free(g);
}

/* A body whose task ended without it returning: its loop was closed while it
 * was suspended ("Task was destroyed but it is pending!"). It will never run
 * again: the generator is finished and the body's reference goes. */
static void ag_check_abandoned(weft_asyncgen_t *g)
{
    if (g->task && g->state != AG_FINISHED && weft_future_done(g->task)) {
        g->state = AG_FINISHED;
        g->at_yield = false;
        reg_remove(g);
        g->refs--;   /* never 0 here: the caller holds a reference */
    }
}

int weft_asyncgen_new(weft_asyncgen_t **out, weft_asyncgen_fn fn, void *arg, const weft_task_opts_t *opts)
{
    if (out)
        *out = NULL;
    if (!out || !fn)
        return WEFT_EINVAL;
    weft_loop_t *l = weft__thread()->running;
    if (!l)
        return WEFT_ENOLOOP;
    weft_asyncgen_t *g = calloc(1, sizeof *g);
    if (!g)
        return WEFT_ENOMEM;
    if (opts && opts->name && !(g->name = weft__strdup(opts->name))) {
        free(g);
        return WEFT_ENOMEM;
    }
    g->refs = 1;
    g->loop = l;
    g->fn = fn;
    g->arg = arg;
    g->stack_size = opts ? opts->stack_size : 0;
    g->state = AG_CREATED;
    *out = g;
    return 0;
}

/* Answer the pending request (if any) with an exception. */
static void answer_error(weft_asyncgen_t *g, int code, const char *msg)
{
    if (!g->resp)
        return;
    weft_future_t *r = g->resp;
    g->resp = NULL;
    r->cancel_hook = NULL;
    weft_future_set_exception(r, code, msg ? "%s" : NULL, msg);
    weft_future_release(r);
}

static int body_entry(void *arg, weft_value_t *result)
{
    (void)result;
    weft_asyncgen_t *g = arg;
    weft__task_t *t = weft__thread()->task;
    int rc = g->fn(g, g->arg);
    g->state = AG_FINISHED;
    reg_remove(g);
    const char *msg = rc < 0 && t->err_code == rc ? t->err_msg : NULL;
    bool closing = g->req == REQ_CLOSE;
    if (rc == 0 || (closing && (rc == WEFT_EGENEXIT || rc == WEFT_ESTOPASYNCITER))) {
        if (g->resp && closing) {   /* aclose() succeeded */
            weft_future_t *r = g->resp;
            g->resp = NULL;
            r->cancel_hook = NULL;
            g->yielded = false;
            weft_future_set_result(r, WEFT_VALUE_INT(0));
            weft_future_release(r);
        } else {
            answer_error(g, WEFT_ESTOPASYNCITER, NULL);
        }
    } else if (g->resp) {
        answer_error(g, rc, msg);
    } else if (rc != WEFT_ECANCELED) {   /* closed in the background (finaliser, shutdown) */
        weft__report(g->loop, "an error occurred during closing of asynchronous generator", rc, msg, NULL);
    }
    ag_unref(g);   /* the body's reference */
    return 0;      /* errors went to the consumer: the task itself ends quietly */
}

/* A cancel of the body's task while it waits at a yield: finalisation. */
static bool yield_cancel(weft__task_t *t, const char *msg)
{
    (void)msg;
    weft_asyncgen_t *g = t->wait_obj;
    g->req = REQ_CLOSE;
    weft__task_wake(t, WEFT_EGENEXIT);
    return true;
}

int weft_asyncgen_yield(weft_asyncgen_t *g, weft_value_t value, weft_value_t *sent)
{
    weft__task_t *t = weft__thread()->task;
    if (sent)
        *sent = (weft_value_t){ .p = NULL };
    if (!g || !t || !g->task || &t->fut != g->task)
        return WEFT_EINVAL;
    if (g->req == REQ_CLOSE) {   /* "async generator ignored GeneratorExit" */
        if (g->resp) {
            g->yielded = true;
            answer_error(g, WEFT_EINVALSTATE, "async generator ignored GeneratorExit");
        } else {
            weft__report(g->loop, "async generator ignored GeneratorExit", WEFT_EINVALSTATE, NULL, NULL);
        }
        return WEFT_EGENEXIT;
    }
    if (g->resp) {
        weft_future_t *r = g->resp;
        g->resp = NULL;
        r->cancel_hook = NULL;
        g->yielded = true;
        if (weft_future_set_result(r, value) < 0)
            weft__report(g->loop, "async generator: the consumer is gone", 0, NULL, NULL);
        weft_future_release(r);
    }
    g->state = AG_SUSPENDED;
    if (g->detached) {   /* nobody can ask for more: the finaliser closes it */
        g->req = REQ_CLOSE;
        return WEFT_EGENEXIT;
    }
    g->at_yield = true;
    int rc = weft__task_suspend(t, WEFT__W_OTHER, yield_cancel, g);
    g->at_yield = false;
    if (rc < 0)   /* finalisation (see yield_cancel), or a cancel that raced with a request */
        return g->req == REQ_CLOSE ? WEFT_EGENEXIT : rc;
    switch (g->req) {
    case REQ_SEND:
        if (sent)
            *sent = g->req_value;
        return 0;
    case REQ_THROW: {
        char *m = g->req_msg;
        g->req_msg = NULL;
        weft__task_set_error(t, g->req_code, m);
        return g->req_code;
    }
    case REQ_CLOSE:
        return WEFT_EGENEXIT;
    default:
        return 0;
    }
}

/* Cancelling the consumer's wait: throw the cancellation into the body. */
static int resp_cancel(weft_future_t *f, const char *msg)
{
    weft_asyncgen_t *g = f->value.p;   /* set by request() while the future is pending */
    if (!g || !g->task || weft_future_done(g->task))
        return 0;
    return weft_task_cancel(g->task, msg) == 1 ? 1 : 0;
}

static int request(weft_asyncgen_t *g, int kind, weft_value_t v, int code, const char *msg, weft_value_t *out)
{
    if (out)
        *out = (weft_value_t){ .p = NULL };
    if (!g)
        return WEFT_EINVAL;
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    ag_check_abandoned(g);
    if (t->fut.loop != g->loop)
        return WEFT_EWRONGLOOP;   /* the generator's state belongs to its loop's thread */
    if (g->state == AG_RUNNING)
        return WEFT_EBUSY;
    if (g->state == AG_FINISHED || (g->state == AG_CREATED && (kind == REQ_CLOSE || kind == REQ_THROW))) {
        g->state = AG_FINISHED;
        if (kind == REQ_CLOSE)
            return 0;
        return kind == REQ_THROW ? weft_raise(code, msg ? "%s" : NULL, msg) : WEFT_ESTOPASYNCITER;
    }
    weft_future_t *r;
    int rc = weft_future_new(g->loop, &r);
    if (rc < 0)
        return rc;
    /* the hook finds the generator through the still-empty value slot */
    r->value.p = g;
    r->cancel_hook = resp_cancel;
    g->resp = weft_future_retain(r);
    g->req = kind;
    g->req_value = v;
    g->req_code = code;
    free(g->req_msg);
    g->req_msg = msg ? weft__strdup(msg) : NULL;
    g->yielded = false;
    bool start = g->state == AG_CREATED;
    g->state = AG_RUNNING;   /* before the body runs: an eager start may answer at once */
    if (start) {
        weft_task_opts_t o = { .name = g->name, .stack_size = g->stack_size };
        g->refs++;   /* the body's */
        reg_add(g);
        if ((rc = weft_loop_create_task(g->loop, &g->task, body_entry, g, &o)) < 0) {
            reg_remove(g);
            g->refs--;
            g->state = AG_CREATED;
            weft_future_release(g->resp);
            g->resp = NULL;
            weft_future_release(r);
            return rc;
        }
    } else {
        weft__task_wake(weft__task_of(g->task), 0);
    }
    weft_value_t res;
    rc = weft_await(r, &res);
    if (rc == 0) {
        weft_future_take_result(r, &res);
        if (kind == REQ_CLOSE) {
            if (res.dtor)
                res.dtor(res.p);
        } else if (out) {
            *out = res;
        } else if (res.dtor) {
            res.dtor(res.p);
        }
    } else if (rc != WEFT_ECANCELED || weft_future_done(r)) {
        weft_future_exception(r, NULL, NULL);   /* retrieved: delivered as rc */
    }
    if (!weft_future_done(r)) {
        /* the consumer was cancelled and the cancel did not reach the body
         * (it had finished its step already): the answer is dropped */
        r->cancel_hook = NULL;
        if (g->resp == r) {
            g->resp = NULL;
            weft_future_release(r);
        }
    }
    weft_future_release(r);
    if (g->state == AG_RUNNING && g->at_yield)
        g->state = AG_SUSPENDED;
    return rc;
}

int weft_asyncgen_anext(weft_asyncgen_t *g, weft_value_t *out)
{
    return request(g, REQ_NEXT, (weft_value_t){ .p = NULL }, 0, NULL, out);
}

int weft_asyncgen_asend(weft_asyncgen_t *g, weft_value_t value, weft_value_t *out)
{
    return request(g, REQ_SEND, value, 0, NULL, out);
}

int weft_asyncgen_athrow(weft_asyncgen_t *g, int code, const char *msg, weft_value_t *out)
{
    if (code >= 0)
        return WEFT_EINVAL;
    return request(g, REQ_THROW, (weft_value_t){ .p = NULL }, code, msg, out);
}

int weft_asyncgen_aclose(weft_asyncgen_t *g)
{
    return request(g, REQ_CLOSE, (weft_value_t){ .p = NULL }, 0, NULL, NULL);
}

bool weft_asyncgen_running(const weft_asyncgen_t *g) { return g && g->state == AG_RUNNING; }

bool weft_asyncgen_finished(const weft_asyncgen_t *g) { return g && g->state == AG_FINISHED; }

void weft_asyncgen_release(weft_asyncgen_t *g)
{
    if (!g)
        return;
    ag_check_abandoned(g);
    if (g->refs == 1 || (g->task && g->state != AG_FINISHED && g->refs == 2)) {
        /* the user's last reference: a body suspended at a yield is closed in
         * the background, one running now is closed at its next yield */
        g->detached = true;
        if (g->at_yield) {
            g->req = REQ_CLOSE;
            weft__task_wake(weft__task_of(g->task), 0);
        }
    }
    ag_unref(g);
}

int weft_loop_shutdown_asyncgens(void)
{
    weft__thread_t *ts = weft__thread();
    if (!ts->task)
        return WEFT_ENOTCORO;
    weft_loop_t *l = ts->running;
    uv_once(&reg_once, reg_init);
    for (;;) {
        /* one at a time: closing may finish (and unregister) others */
        weft_asyncgen_t *g = NULL;
        uv_mutex_lock(&reg_mu);
        for (weft_asyncgen_t *x = reg_head; x; x = x->next) {
            if (x->loop == l && x->state == AG_SUSPENDED && x->at_yield && x->req != REQ_CLOSE &&
                !weft_future_done(x->task)) {
                g = x;
                break;
            }
        }
        if (g)
            g->refs++;
        uv_mutex_unlock(&reg_mu);
        if (!g)
            return 0;
        int rc = weft_asyncgen_aclose(g);
        if (rc < 0 && rc != WEFT_ECANCELED)
            weft__report(l, "an error occurred during closing of asynchronous generator", rc, weft_error_message(), NULL);
        if (rc < 0)
            g->req = REQ_CLOSE;   /* do not pick it again */
        ag_unref(g);
        if (rc == WEFT_ECANCELED)
            return rc;
    }
}
