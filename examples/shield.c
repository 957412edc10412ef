/* asyncio docs "Shielding From Cancellation": cancelling the task that awaits
 * shield(task) does not cancel the task itself, whose result stays
 * retrievable (seconds scaled down to tenths).
 *
 *   async def something():
 *       await asyncio.sleep(2)
 *       print("something() finished")
 *       return 42
 *
 *   async def waiter(task):
 *       try:
 *           res = await asyncio.shield(task)
 *           print("waiter got", res)
 *       except asyncio.CancelledError:
 *           print("waiter was cancelled; the shielded task goes on")
 *           raise
 *
 *   async def main():
 *       task = asyncio.create_task(something())
 *       w = asyncio.create_task(waiter(task))
 *       await asyncio.sleep(1)
 *       w.cancel()
 *       try:
 *           await w
 *       except asyncio.CancelledError:
 *           print("main: waiter cancelled:", w.cancelled(), "task cancelled:", task.cancelled())
 *       print("result:", await task) */
#include <stdio.h>
#include <weft.h>

static const char *py_bool(bool b) { return b ? "True" : "False"; }

static int something(void *arg, weft_value_t *out)
{
    (void)arg;
    int rc = weft_sleep(0.2);
    if (rc < 0)
        return rc;
    printf("something() finished\n");
    out->i = 42;
    return 0;
}

static int waiter(void *arg, weft_value_t *out)
{
    (void)out;
    weft_value_t res;
    int rc = weft_await_shielded(arg, &res);
    if (rc == WEFT_ECANCELED)
        printf("waiter was cancelled; the shielded task goes on\n");
    else if (rc == 0)
        printf("waiter got %lld\n", (long long)res.i);
    return rc;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *task, *w;
    int rc = weft_create_task(&task, something, NULL, NULL);
    if (rc < 0)
        return rc;
    if ((rc = weft_create_task(&w, waiter, task, NULL)) < 0) {
        weft_task_release(task);
        return rc;
    }
    if ((rc = weft_sleep(0.1)) == 0) {
        weft_task_cancel(w, NULL);
        if (weft_await(w, NULL) == WEFT_ECANCELED)
            printf("main: waiter cancelled: %s task cancelled: %s\n", py_bool(weft_future_cancelled(w)),
                   py_bool(weft_future_cancelled(task)));
        weft_value_t v;
        if ((rc = weft_await(task, &v)) == 0)
            printf("result: %lld\n", (long long)v.i);
    }
    weft_task_release(w);
    weft_task_release(task);
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
