/* asyncio docs "Waiting Primitives", asyncio.as_completed: each step awaits
 * the next result in completion order, not argument order (seconds scaled
 * down to tenths).
 *
 *   async def fetch(name, delay):
 *       await asyncio.sleep(delay)
 *       return f"{name} after {delay} s"
 *
 *   async def main():
 *       aws = [fetch("first", 3), fetch("second", 1), fetch("third", 2)]
 *       for coro in asyncio.as_completed(aws):
 *           earliest_result = await coro
 *           print(earliest_result) */
#include <stdio.h>
#include <weft.h>

struct fetch { const char *name; double delay; char text[64]; };

static int fetch(void *arg, weft_value_t *out)
{
    struct fetch *f = arg;
    int rc = weft_sleep(f->delay);
    if (rc < 0)
        return rc;
    snprintf(f->text, sizeof f->text, "%s after %g s", f->name, f->delay * 10);
    out->p = f->text;
    return 0;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct fetch a = { "first", 0.3, "" }, b = { "second", 0.1, "" }, c = { "third", 0.2, "" };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(fetch, &a), WEFT_AW_CORO(fetch, &b), WEFT_AW_CORO(fetch, &c) };
    weft_as_completed_t *it;
    int rc = weft_as_completed_init_aw(&it, aws, 3, WEFT_NO_TIMEOUT);
    if (rc < 0)
        return rc;
    while (rc == 0 && weft_as_completed_remaining(it)) {
        weft_value_t earliest_result;
        if ((rc = weft_as_completed_next(it, &earliest_result, NULL)) == 0)
            printf("%s\n", (const char *)earliest_result.p);
    }
    weft_as_completed_free(it);
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
