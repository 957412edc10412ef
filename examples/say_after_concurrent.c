/* asyncio tutorial: two say_after tasks run concurrently (0.2 s, not 0.3 s).
 *
 *   task1 = asyncio.create_task(say_after(1, 'hello'))
 *   task2 = asyncio.create_task(say_after(2, 'world'))
 *   await task1; await task2 */
#include <stdio.h>
#include <weft.h>

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

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct say a = { 0.1, "hello" }, b = { 0.2, "world" };
    double t0 = weft_loop_time(weft_running_loop());
    weft_task_t *t1, *t2;
    int rc = weft_create_task(&t1, say_after, &a, NULL);
    if (rc < 0)
        return rc;
    if ((rc = weft_create_task(&t2, say_after, &b, NULL)) < 0) {
        weft_task_release(t1);
        return rc;
    }
    printf("started\n");
    rc = weft_await(t1, NULL);
    if (rc == 0)
        rc = weft_await(t2, NULL);
    printf("finished after %.1f s\n", weft_loop_time(weft_running_loop()) - t0);
    weft_task_release(t1);
    weft_task_release(t2);
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
