/* asyncio docs "Waiting Primitives": asyncio.wait returns (done, pending)
 * without cancelling anything, here with a timeout and then with
 * FIRST_COMPLETED (seconds scaled down to tenths).
 *
 *   async def work(name, delay):
 *       await asyncio.sleep(delay)
 *       return name
 *
 *   async def main():
 *       fast = asyncio.create_task(work("fast", 1))
 *       slow = asyncio.create_task(work("slow", 3))
 *       done, pending = await asyncio.wait({fast, slow}, timeout=2)
 *       print(f"after 2 s: {len(done)} done, {len(pending)} pending")
 *       print("done:", [t.result() for t in done])
 *       print("slow cancelled?", slow.cancelled())
 *       done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
 *       print("then:", [t.result() for t in done], f"{len(pending)} pending") */
#include <stdio.h>
#include <weft.h>

struct work { const char *name; double delay; };

static int work(void *arg, weft_value_t *out)
{
    const struct work *w = arg;
    int rc = weft_sleep(w->delay);
    if (rc < 0)
        return rc;
    out->p = (void *)w->name;
    return 0;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct work wf = { "fast", 0.1 }, ws = { "slow", 0.3 };
    weft_task_t *fast, *slow;
    int rc = weft_create_task(&fast, work, &wf, NULL);
    if (rc < 0)
        return rc;
    if ((rc = weft_create_task(&slow, work, &ws, NULL)) < 0) {
        weft_task_release(fast);
        return rc;
    }
    weft_future_t *fs[] = { fast, slow }, *done[2], *pending[2];
    size_t nd, np;
    rc = weft_wait(fs, 2, 0.2, WEFT_ALL_COMPLETED, done, &nd, pending, &np);
    if (rc == 0) {
        printf("after 2 s: %zu done, %zu pending\n", nd, np);
        weft_value_t v;
        printf("done: [");
        for (size_t i = 0; i < nd; i++)
            if (weft_future_result(done[i], &v) == 0)
                printf("%s'%s'", i ? ", " : "", (const char *)v.p);
        printf("]\n");
        printf("slow cancelled? %s\n", weft_future_cancelled(slow) ? "True" : "False");
        rc = weft_wait(pending, np, WEFT_NO_TIMEOUT, WEFT_FIRST_COMPLETED, done, &nd, pending, &np);
    }
    if (rc == 0) {
        weft_value_t v;
        printf("then: [");
        for (size_t i = 0; i < nd; i++)
            if (weft_future_result(done[i], &v) == 0)
                printf("%s'%s'", i ? ", " : "", (const char *)v.p);
        printf("] %zu pending\n", np);
    }
    weft_task_release(fast);
    weft_task_release(slow);
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
