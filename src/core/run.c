/* weft_run: asyncio.run for C. */
#include "core/task.h"

/* weft_run = a runtime (WEFT_WORKERS or the CPU count workers; worker 0 is the
 * calling thread) running main until it is done, then shut down: every task
 * left is cancelled and allowed to finish, every thread joined. */
int weft_run(weft_coro_fn main, void *arg, const weft_run_opts_t *opts, weft_value_t *out)
{
    if (!main)
        return WEFT_EINVAL;
    if (weft__thread()->running)
        return WEFT_ENESTED;
    weft_runtime_t *rt;
    int rc = weft_runtime_new(&(weft_runtime_opts_t){ .debug = opts && opts->debug }, &rt);
    if (rc < 0)
        return rc;
    weft_task_opts_t to = {
        .name = opts && opts->name ? opts->name : "main",
        .stack_size = opts ? opts->stack_size : 0,
    };
    rc = weft_runtime_run(rt, main, arg, &to, out);
    weft_runtime_free(rt);
    return rc;
}
