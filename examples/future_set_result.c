/* asyncio docs "Futures": a task awaits a Future that another task sets.
 *
 *   async def set_after(fut, delay, value):
 *       await asyncio.sleep(delay); fut.set_result(value)
 *   async def main():
 *       fut = loop.create_future()
 *       loop.create_task(set_after(fut, 1, '... world'))
 *       print('hello ...')
 *       print(await fut) */
#include <stdio.h>
#include <weft.h>

static int set_after(void *arg, weft_value_t *out)
{
    (void)out;
    weft_future_t *fut = arg;
    int rc = weft_sleep(0.1);
    if (rc < 0)
        return rc;
    return weft_future_set_result(fut, WEFT_VALUE_PTR("... world"));
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fut;
    int rc = weft_future_new(NULL, &fut);
    if (rc < 0)
        return rc;
    if ((rc = weft_create_task(NULL, set_after, fut, NULL)) == 0) {
        printf("hello ...\n");
        weft_value_t v;
        if ((rc = weft_await(fut, &v)) == 0)
            printf("%s\n", (const char *)v.p);
    }
    weft_future_release(fut);
    return rc;
}

int main(void) { return weft_run(main_coro, NULL, NULL, NULL) < 0; }
