/* asyncio tutorial "Coroutines and Tasks", asyncio.TaskGroup: the say_after
 * tasks run concurrently and leaving the group waits for both; then a group
 * whose child fails cancels its sibling and reports every error together
 * (ExceptionGroup). Seconds scaled down to tenths.
 *
 *   async def say_after(delay, what):
 *       await asyncio.sleep(delay)
 *       print(what)
 *
 *   async def main():
 *       async with asyncio.TaskGroup() as tg:
 *           task1 = tg.create_task(say_after(1, 'hello'))
 *           task2 = tg.create_task(say_after(2, 'world'))
 *           print("started")
 *       # The await is implicit when the context manager exits.
 *       print("finished")
 *
 *       async def fail(delay, msg):
 *           await asyncio.sleep(delay)
 *           raise ValueError(msg)
 *       try:
 *           async with asyncio.TaskGroup() as tg:
 *               tg.create_task(fail(1, "bad input"), name="parser")
 *               slow = tg.create_task(say_after(5, "never printed"))
 *       except* ValueError as eg:
 *           for e in eg.exceptions:
 *               print("error:", e)
 *       print("slow cancelled:", slow.cancelled()) */
#include <stdio.h>
#include <weft.h>

#define EVALUE (-1001)   /* our own error code: ValueError */

struct say { double delay; const char *what; };

static int say_after(void *arg, weft_value_t *out)
{
    (void)out;
    const struct say *s = arg;
    int rc = weft_sleep(s->delay);
    if (rc < 0)
        return rc;
    printf("%s\n", s->what);
    return 0;
}

static int fail(void *arg, weft_value_t *out)
{
    (void)out;
    const struct say *s = arg;
    int rc = weft_sleep(s->delay);
    if (rc < 0)
        return rc;
    return weft_raise(EVALUE, "%s", s->what);
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct say a = { 0.1, "hello" }, b = { 0.2, "world" };
    weft_taskgroup_t tg;
    int rc = weft_taskgroup_enter(&tg);
    if (rc < 0)
        return rc;
    rc = weft_taskgroup_create_task(&tg, NULL, say_after, &a, NULL);
    if (rc == 0)
        rc = weft_taskgroup_create_task(&tg, NULL, say_after, &b, NULL);
    if (rc == 0)
        printf("started\n");
    rc = weft_taskgroup_exit(&tg, rc);   /* the await is implicit when the group exits */
    weft_taskgroup_free(&tg);
    if (rc < 0)
        return rc;
    printf("finished\n");

    struct say bad = { 0.1, "bad input" }, never = { 0.5, "never printed" };
    weft_task_t *slow = NULL;
    if ((rc = weft_taskgroup_enter(&tg)) < 0)
        return rc;
    rc = weft_taskgroup_create_task(&tg, NULL, fail, &bad, &(weft_task_opts_t){ .name = "parser" });
    if (rc == 0)
        rc = weft_taskgroup_create_task(&tg, &slow, say_after, &never, NULL);
    rc = weft_taskgroup_exit(&tg, rc);
    if (rc == WEFT_EGROUP) {
        const weft_errgroup_t *eg = weft_taskgroup_errors(&tg);
        size_t n;
        const weft_exception_t *ex = weft_errgroup_exceptions(eg, &n);
        printf("%s\n", weft_errgroup_group_message(eg));
        for (size_t i = 0; i < n; i++)
            printf("error: %s\n", ex[i].message);
        rc = 0;
    }
    weft_taskgroup_free(&tg);
    if (slow) {
        printf("slow cancelled: %s\n", weft_future_cancelled(slow) ? "True" : "False");
        weft_task_release(slow);
    }
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
