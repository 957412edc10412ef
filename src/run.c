/* weft_run: asyncio.run for C. */
#include "internal.h"

int weft__loop_run_until_no_tasks(weft_loop_t *loop);

/* Cancel every task left on the loop and run until all are done; report those
 * that ended with an error other than a cancellation (asyncio's
 * _cancel_all_tasks). */
static void cancel_all_tasks(weft_loop_t *l)
{
    size_t n = l->ntasks;
    if (!n)
        return;
    weft_task_t **ts = malloc(n * sizeof *ts);
    size_t k = 0;
    for (weft__task_t *t = l->tasks; t; t = t->nextt) {
        if (ts)
            ts[k++] = weft_future_retain(&t->fut);
        weft_task_cancel(&t->fut, NULL);
    }
    weft__loop_run_until_no_tasks(l);
    for (size_t i = 0; i < k; i++) {
        int code = 0;
        const char *msg = NULL;
        if (weft_future_exception(ts[i], &code, &msg) == 0 && code < 0)
            weft__report(l, "unhandled exception during weft_run() shutdown", code, msg, ts[i]);
        weft_future_release(ts[i]);
    }
    free(ts);
}

int weft_run(weft_coro_fn main, void *arg, const weft_run_opts_t *opts, weft_value_t *out)
{
    if (!main)
        return WEFT_EINVAL;
    if (weft__thread()->running)
        return WEFT_ENESTED;
    weft_loop_t *l;
    int rc = weft_loop_new(&l);
    if (rc < 0)
        return rc;
    weft_task_opts_t to = {
        .name = opts && opts->name ? opts->name : "main",
        .stack_size = opts ? opts->stack_size : 0,
    };
    weft_task_t *t;
    rc = weft_loop_create_task(l, &t, main, arg, &to);
    if (rc == 0) {
        rc = weft_loop_run_until_complete(l, t, NULL);
        cancel_all_tasks(l);
        if (weft_future_done(t)) {
            weft_value_t v = { .p = NULL };
            rc = weft_future_take_result(t, &v);
            if (out)
                *out = v;
            else if (v.dtor)
                v.dtor(v.p);
        }
        weft_future_release(t);
    }
    weft_loop_free(l);
    return rc;
}
