/* asyncio docs "Coroutines and Tasks": create_task, await the task's result,
 * name it, and look at it from inside.
 *
 *   async def nested(): return 42
 *   async def main():
 *       task = asyncio.create_task(nested(), name="nested")
 *       print(await task) */
#include <stdio.h>
#include <weft.h>

static int nested(void *arg, weft_value_t *out)
{
    (void)arg;
    printf("running in %s\n", weft_task_get_name(weft_current_task()));
    out->i = 42;
    return 0;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    int rc = weft_create_task(&t, nested, NULL, &(weft_task_opts_t){ .name = "nested" });
    if (rc < 0)
        return rc;
    weft_value_t v;
    rc = weft_await(t, &v);
    if (rc == 0)
        printf("%lld\n", (long long)v.i);
    weft_task_release(t);
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    return rc < 0;
}
