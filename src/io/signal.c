/* Signals: loop.add_signal_handler on libuv signal watchers, watchers whose
 * arrivals queue up for tasks on any loop, and the graceful-stop helper.
 *
 * libuv's process-wide handler only writes the signal number to a pipe of
 * each loop that watches it; the uv_signal_t callback then runs on that
 * loop's thread. weft's callback either schedules the user's callback
 * (add_signal_handler) or puts the number into a weft_queue_t, which tasks of
 * any loop may await (sigwatch).
 *
 * The handlers set with add_signal_handler are kept in one process-wide list
 * under a mutex (few entries; changed rarely), so weft_loop_close can remove
 * a closing loop's handlers (weft__signal_loop_closing). */
#include "core/task.h"
#include "weft/queue.h"
#include "weft/signal.h"
#include "weft/stream.h"
#include "weft/timeout.h"

#include <signal.h>

/* ---- checks ---------------------------------------------------------------------- */

static int check_signum(int signum)
{
    if (signum < 1 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP)
        return WEFT_EINVAL;
    return 0;
}

/* ---- loop.add_signal_handler --------------------------------------------------- */

typedef struct sh_entry {
    struct sh_entry *next;
    weft_loop_t *loop;
    int signum;
    weft_callback_t cb;   /* read and written on the loop's thread only */
    void *arg;
    uv_signal_t h;
} sh_entry_t;

static uv_once_t sh_once = UV_ONCE_INIT;
static uv_mutex_t sh_mu;
static sh_entry_t *sh_list;

static void sh_init(void) { uv_mutex_init(&sh_mu); }

static void sh_free_cb(uv_handle_t *h) { free(h->data); }

static void sh_fire(uv_signal_t *h, int signum)
{
    (void)signum;
    sh_entry_t *e = h->data;
    if (weft_call_soon(e->loop, e->cb, e->arg, NULL) < 0)
        weft__report(e->loop, "signal handler could not be scheduled", WEFT_ENOMEM, NULL, NULL);
}

/* Unlink (loop, signum)'s entry; caller holds sh_mu. */
static sh_entry_t *sh_unlink(weft_loop_t *loop, int signum)
{
    for (sh_entry_t **p = &sh_list; *p; p = &(*p)->next) {
        if ((*p)->loop == loop && (*p)->signum == signum) {
            sh_entry_t *e = *p;
            *p = e->next;
            return e;
        }
    }
    return NULL;
}

int weft_loop_add_signal_handler(weft_loop_t *loop, int signum, weft_callback_t cb, void *arg)
{
    if (!loop || !cb || check_signum(signum) < 0)
        return WEFT_EINVAL;
    if (weft_loop_is_closed(loop))
        return WEFT_ECLOSED;
    if (!weft__loop_is_local(loop))
        return WEFT_EWRONGLOOP;
    uv_once(&sh_once, sh_init);
    uv_mutex_lock(&sh_mu);
    for (sh_entry_t *e = sh_list; e; e = e->next) {
        if (e->loop == loop && e->signum == signum) {
            e->cb = cb;
            e->arg = arg;
            uv_mutex_unlock(&sh_mu);
            return 0;
        }
    }
    uv_mutex_unlock(&sh_mu);
    sh_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return WEFT_ENOMEM;
    e->loop = loop;
    e->signum = signum;
    e->cb = cb;
    e->arg = arg;
    int rc = uv_signal_init(weft_loop_uv(loop), &e->h);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->h.data = e;
    if ((rc = uv_signal_start(&e->h, sh_fire, signum)) < 0) {
        uv_close((uv_handle_t *)&e->h, sh_free_cb);
        return rc;
    }
    uv_mutex_lock(&sh_mu);
    e->next = sh_list;
    sh_list = e;
    uv_mutex_unlock(&sh_mu);
    return 0;
}

int weft_loop_remove_signal_handler(weft_loop_t *loop, int signum)
{
    if (!loop || check_signum(signum) < 0)
        return WEFT_EINVAL;
    if (!weft__loop_is_local(loop))
        return WEFT_EWRONGLOOP;
    uv_once(&sh_once, sh_init);
    uv_mutex_lock(&sh_mu);
    sh_entry_t *e = sh_unlink(loop, signum);
    uv_mutex_unlock(&sh_mu);
    if (!e)
        return 0;
    uv_close((uv_handle_t *)&e->h, sh_free_cb);
    return 1;
}

/* weft_loop_close, before it closes the loop's remaining libuv handles. */
void weft__signal_loop_closing(weft_loop_t *loop)
{
    uv_once(&sh_once, sh_init);
    for (;;) {
        uv_mutex_lock(&sh_mu);
        sh_entry_t *e = NULL;
        for (sh_entry_t **p = &sh_list; *p; p = &(*p)->next) {
            if ((*p)->loop == loop) {
                e = *p;
                *p = e->next;
                break;
            }
        }
        uv_mutex_unlock(&sh_mu);
        if (!e)
            return;
        uv_close((uv_handle_t *)&e->h, sh_free_cb);
    }
}

/* ---- watchers ---------------------------------------------------------------------- */

typedef struct sw_sig {
    uv_signal_t h;
    struct weft_sigwatch *w;
} sw_sig_t;

struct weft_sigwatch {
    weft_loop_t *loop;
    weft_queue_t *q;
    size_t n;
    size_t open;          /* handles not yet closed */
    sw_sig_t *sigs;
};

static void sw_fire(uv_signal_t *h, int signum)
{
    sw_sig_t *s = h->data;
    /* unbounded queue: only fails when out of memory (the signal is then lost) */
    if (weft_queue_put_nowait(s->w->q, (void *)(intptr_t)signum) < 0)
        weft__report(s->w->loop, "signal lost (out of memory)", WEFT_ENOMEM, NULL, NULL);
}

static void sw_closed(uv_handle_t *h)
{
    sw_sig_t *s = h->data;
    weft_sigwatch_t *w = s->w;
    if (--w->open == 0) {
        weft_queue_free(w->q);
        free(w->sigs);
        free(w);
    }
}

/* Close every handle; the last close callback frees @w (the handles were all initialised). */
static void sw_close(weft_sigwatch_t *w)
{
    if (!w->open) {
        weft_queue_free(w->q);
        free(w->sigs);
        free(w);
        return;
    }
    size_t n = w->open;
    for (size_t i = 0; i < n; i++)
        uv_close((uv_handle_t *)&w->sigs[i].h, sw_closed);
}

int weft_sigwatch_new(const int *signums, size_t n, weft_sigwatch_t **out)
{
    if (out)
        *out = NULL;
    if (!signums || !n || !out)
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (check_signum(signums[i]) < 0)
            return WEFT_EINVAL;
    weft_loop_t *loop = weft_running_loop();
    if (!loop)
        return WEFT_ENOLOOP;
    weft_sigwatch_t *w = calloc(1, sizeof *w);
    if (!w)
        return WEFT_ENOMEM;
    w->loop = loop;
    w->n = n;
    int rc = weft_queue_new(0, &w->q);
    if (rc < 0) {
        free(w);
        return rc;
    }
    if (!(w->sigs = calloc(n, sizeof *w->sigs))) {
        weft_queue_free(w->q);
        free(w);
        return WEFT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        sw_sig_t *s = &w->sigs[i];
        s->w = w;
        if ((rc = uv_signal_init(weft_loop_uv(loop), &s->h)) < 0)
            break;
        s->h.data = s;
        w->open++;
        if ((rc = uv_signal_start(&s->h, sw_fire, signums[i])) < 0)
            break;
    }
    if (rc < 0) {
        sw_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

int weft_sigwatch_wait(weft_sigwatch_t *w, int *signum)
{
    if (signum)
        *signum = 0;
    if (!w)
        return WEFT_EINVAL;
    void *item;
    int rc = weft_queue_get(w->q, &item);
    if (rc == 0 && signum)
        *signum = (int)(intptr_t)item;
    return rc;
}

int weft_sigwatch_poll(weft_sigwatch_t *w, int *signum)
{
    if (signum)
        *signum = 0;
    if (!w)
        return WEFT_EINVAL;
    void *item;
    int rc = weft_queue_get_nowait(w->q, &item);
    if (rc == 0 && signum)
        *signum = (int)(intptr_t)item;
    return rc;
}

int weft_sigwatch_free(weft_sigwatch_t *w)
{
    if (!w)
        return 0;
    if (!weft__loop_is_local(w->loop))
        return WEFT_EWRONGLOOP;
    for (size_t i = 0; i < w->open; i++)
        uv_signal_stop(&w->sigs[i].h);
    weft_queue_shutdown(w->q, true);
    sw_close(w);
    return 0;
}

int weft_signal_wait(const int *signums, size_t n, int *signum)
{
    if (signum)
        *signum = 0;
    if (!signums || !n)
        return WEFT_EINVAL;
    if (!weft__thread()->task)
        return WEFT_ENOTCORO;
    weft_sigwatch_t *w;
    int rc = weft_sigwatch_new(signums, n, &w);
    if (rc < 0)
        return rc;
    rc = weft_sigwatch_wait(w, signum);
    weft_sigwatch_free(w);
    return rc;
}

/* ---- graceful stop --------------------------------------------------------------- */

typedef struct graceful {
    const weft_graceful_opts_t *o;
    weft_sigwatch_t *watch;
    weft_task_t *drain;       /* lets the handlers finish */
    bool second;              /* a second signal forced the stop */
    bool deadline;            /* the grace period ran out */
} graceful_t;

/* Stop every server gracefully (idle connections released at once) and wait
 * for its handlers, up to the grace period. */
static int drain_body(void *arg, weft_value_t *res)
{
    (void)res;
    graceful_t *g = arg;
    double grace = g->o->grace == 0 ? 30.0 : g->o->grace;
    weft_timeout_t to;
    int rc = 0;
    if (grace >= 0 && (rc = weft_timeout_enter(&to, grace)) < 0)
        return rc;
    for (size_t i = 0; i < g->o->nservers && rc >= 0; i++)
        rc = weft_server_shutdown(g->o->servers[i], WEFT_NO_TIMEOUT);
    if (grace >= 0)
        rc = weft_timeout_exit(&to, rc);
    if (rc > 0)
        rc = 0;
    if (rc == WEFT_ETIMEDOUT)
        g->deadline = true;
    return rc;
}

/* Wait for the second signal, then cut the drain short. */
static int second_body(void *arg, weft_value_t *res)
{
    (void)res;
    graceful_t *g = arg;
    int rc = weft_sigwatch_wait(g->watch, NULL);
    if (rc == 0) {
        g->second = true;
        weft_task_cancel(g->drain, "second signal");
    }
    return rc;
}

int weft_serve_until_signal(const weft_graceful_opts_t *opts, weft_graceful_report_t *out)
{
    static const int dflt[] = { SIGINT, SIGTERM };
    weft_graceful_opts_t o = opts ? *opts : (weft_graceful_opts_t){ 0 };
    if (out)
        memset(out, 0, sizeof *out);
    if (!o.signals) {
        o.signals = dflt;
        o.nsignals = 2;
    }
    if (o.nservers && !o.servers)
        return WEFT_EINVAL;
    for (size_t i = 0; i < o.nservers; i++)
        if (!o.servers[i])
            return WEFT_EINVAL;
    if (!weft__thread()->task)
        return WEFT_ENOTCORO;
    graceful_t g = { .o = &o };
    int rc = weft_sigwatch_new(o.signals, o.nsignals, &g.watch);
    if (rc < 0)
        return rc;
    int signum = 0;
    if ((rc = weft_sigwatch_wait(g.watch, &signum)) < 0)
        goto done;
    if (out)
        out->signum = signum;
    for (size_t i = 0; i < o.nservers; i++)
        weft_server_close(o.servers[i]);
    if (o.on_stop)
        o.on_stop(o.arg);

    weft_task_t *second = NULL;
    if ((rc = weft_create_task(&g.drain, drain_body, &g, NULL)) < 0)
        goto done;
    if ((rc = weft_create_task(&second, second_body, &g, NULL)) < 0) {
        weft_task_cancel(g.drain, NULL);
        weft_await(g.drain, NULL);
        weft_task_release(g.drain);
        goto done;
    }
    /* A cancel of this task while it waits also cancels the drain (weft_await's rule);
     * this task's cancel count tells that apart from the second signal's cancel. */
    int c0 = weft_task_cancelling(weft_current_task());
    weft_await(g.drain, NULL);
    bool cancelled_self = weft_task_cancelling(weft_current_task()) > c0;
    weft_task_cancel(second, NULL);
    if (cancelled_self)
        weft_await(g.drain, NULL);   /* the cancel was delivered: these awaits wait normally */
    weft_await(second, NULL);
    weft_task_release(second);
    weft_task_release(g.drain);
    if (cancelled_self) {
        rc = WEFT_ECANCELED;
        goto done;
    }
    rc = 0;
    if (g.second || g.deadline) {
        if (o.on_force)
            o.on_force(o.arg);
        int total = 0;
        for (size_t i = 0; i < o.nservers; i++) {
            int n = weft_server_shutdown(o.servers[i], 0);
            if (n < 0) {
                rc = n;
                break;
            }
            total += n;
        }
        if (out) {
            out->second_signal = g.second;
            out->deadline = g.deadline;
            out->cancelled = total;
        }
    }
done:
    weft_sigwatch_free(g.watch);
    return rc;
}
