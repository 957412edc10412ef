/* asyncio.Runner: one standalone loop that runs coroutines one after another,
 * then close(): cancel what is left and let it finish, shutdown_asyncgens,
 * shut down the default executor, close the loop (CPython runners.py). */
#include "core/context.h"
#include "core/task.h"
#include "weft/asyncgen.h"
#include "weft/combinators.h"
#include "weft/debug.h"
#include "weft/runner.h"

struct weft_runner {
    weft_loop_t *loop;
    weft_context_t *ctx;       /* every run's main task runs in it */
    weft_executor_t *exec;     /* the loop's default executor */
    bool closed;
};

int weft_runner_new(const weft_runner_opts_t *opts, weft_runner_t **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (weft__thread()->running)
        return WEFT_ENESTED;
    weft_runner_t *r = calloc(1, sizeof *r);
    if (!r)
        return WEFT_ENOMEM;
    int rc = weft_loop_new(&r->loop);
    if (rc < 0) {
        free(r);
        return rc;
    }
    if ((rc = weft_executor_new(0, &r->exec)) < 0 || !(r->ctx = weft_context_copy())) {
        weft_executor_free(r->exec);
        weft_loop_free(r->loop);
        free(r);
        return rc < 0 ? rc : WEFT_ENOMEM;
    }
    weft_loop_set_default_executor(r->loop, r->exec);
    if (opts && opts->debug)
        weft_loop_set_debug(r->loop, true);
    *out = r;
    return 0;
}

weft_loop_t *weft_runner_get_loop(const weft_runner_t *r) { return r && !r->closed ? r->loop : NULL; }

int weft_runner_run(weft_runner_t *r, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts, weft_value_t *out)
{
    if (out)
        *out = (weft_value_t){ .p = NULL };
    if (!r || !fn)
        return WEFT_EINVAL;
    if (weft__thread()->running)
        return WEFT_ENESTED;
    if (r->closed)
        return WEFT_ECLOSED;
    weft__set_run_error(NULL);
    weft_task_opts_t o = opts ? *opts : (weft_task_opts_t){ 0 };
    o.eager_start = false;
    weft_task_t *t;
    int rc = weft__loop_create_task_in_context(r->loop, &t, fn, arg, &o, r->ctx);
    if (rc < 0)
        return rc;
    rc = weft_loop_run_until_complete(r->loop, t, NULL);
    if (rc != WEFT_ESTOPPED) {
        weft_value_t v = { .p = NULL };
        rc = weft_future_take_result(t, &v);
        if (rc < 0)
            weft__set_run_error(weft_future_message(t));
        if (out)
            *out = v;
        else if (v.dtor)
            v.dtor(v.p);
    }
    weft_task_release(t);
    return rc;
}

/* _cancel_all_tasks + shutdown_asyncgens, as one task on the loop. */
static int closer(void *arg, weft_value_t *result)
{
    (void)result;
    weft_loop_t *l = arg;
    weft_task_t *self = weft_current_task();
    int n = weft_all_tasks(l, NULL, 0);
    weft_task_t **ts = n > 1 ? calloc((size_t)n, sizeof *ts) : NULL;
    if (ts) {
        int m = weft_all_tasks(l, ts, (size_t)n), k = 0;
        for (int i = 0; i < m && i < n; i++)
            if (ts[i] != self)
                ts[k++] = weft_future_retain(ts[i]);
        for (int i = 0; i < k; i++)
            weft_task_cancel(ts[i], NULL);
        int *codes = calloc((size_t)k, sizeof *codes);
        weft_gather_opts_t go = { .return_exceptions = true };
        if (codes && weft_gather(ts, (size_t)k, NULL, codes, &go) == 0) {
            for (int i = 0; i < k; i++)
                if (codes[i] < 0 && !weft_future_cancelled(ts[i]))
                    weft__report(l, "unhandled exception during weft_runner_close() shutdown", codes[i],
                                 weft_future_message(ts[i]), ts[i]);
        }
        free(codes);
        for (int i = 0; i < k; i++)
            weft_task_release(ts[i]);
        free(ts);
    }
    weft_loop_shutdown_asyncgens();
    return 0;
}

int weft_runner_close(weft_runner_t *r)
{
    if (!r)
        return WEFT_EINVAL;
    if (r->closed)
        return 0;
    if (weft__thread()->running)
        return WEFT_ENESTED;
    weft_task_t *t;
    if (weft_loop_create_task(r->loop, &t, closer, r->loop, &(weft_task_opts_t){ .name = "runner-close" }) == 0) {
        weft_loop_run_until_complete(r->loop, t, NULL);
        weft_task_release(t);
    }
    weft_loop_set_default_executor(r->loop, NULL);
    weft_executor_free(r->exec);   /* shutdown_default_executor: waits for its calls */
    r->exec = NULL;
    weft_loop_free(r->loop);
    weft_context_release(r->ctx);
    r->ctx = NULL;
    r->closed = true;
    return 0;
}

void weft_runner_free(weft_runner_t *r)
{
    if (!r)
        return;
    weft_runner_close(r);
    free(r);
}
