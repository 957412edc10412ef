/* weft_run: asyncio.run for C. */
#include "core/task.h"

#include <pthread.h>

/* The last run's failure message, per thread, freed at thread exit. */
static pthread_key_t run_err_key;
static pthread_once_t run_err_once = PTHREAD_ONCE_INIT;
static void run_err_init(void) { (void)pthread_key_create(&run_err_key, free); }

void weft__set_run_error(const char *msg)
{
    pthread_once(&run_err_once, run_err_init);
    char *old = pthread_getspecific(run_err_key);
    char *m = msg ? weft__strdup(msg) : NULL;
    (void)pthread_setspecific(run_err_key, m);
    free(old);
}

const char *weft__run_error(void)
{
    pthread_once(&run_err_once, run_err_init);
    return pthread_getspecific(run_err_key);
}

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
        .name = opts ? opts->name : NULL,   /* NULL: "Task-N", as asyncio.run names main */
        .stack_size = opts ? opts->stack_size : 0,
    };
    rc = weft_runtime_run(rt, main, arg, &to, out);
    weft_runtime_free(rt);
    return rc;
}
