/* asyncio tutorial: say_after awaited in sequence (about 3 s... here 0.3 s).
 *
 *   async def say_after(delay, what):
 *       await asyncio.sleep(delay); print(what)
 *   async def main():
 *       print(f"started at {time.strftime('%X')}")
 *       await say_after(1, 'hello')
 *       await say_after(2, 'world')
 *       print(f"finished at {time.strftime('%X')}")
 *
 * Awaiting a coroutine is calling it: it runs inside the current task. */
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
    double t0 = weft_loop_time(weft_running_loop());
    printf("started\n");
    int rc = say_after(&(struct say){ 0.1, "hello" }, out);
    if (rc == 0)
        rc = say_after(&(struct say){ 0.2, "world" }, out);
    printf("finished after %.1f s\n", weft_loop_time(weft_running_loop()) - t0);
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
