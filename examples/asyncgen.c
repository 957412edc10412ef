/* Async generators, asyncio's way:
 *
 *     async def ticker(delay, to):
 *         try:
 *             for i in range(to):
 *                 yield i
 *                 await asyncio.sleep(delay)
 *         finally:
 *             print("ticker: cleaning up")
 *             await asyncio.sleep(0)
 *
 *     async def main():
 *         async for i in ticker(0.1, 10):
 *             print(i)
 *             if i == 3:
 *                 break
 *         # the generator is closed by asyncio.run's shutdown_asyncgens ... or here:
 *
 *     asyncio.run(main())
 *
 * In C the `break` leaves the generator suspended at its yield; aclose()
 * throws GeneratorExit in there (the yield returns WEFT_EGENEXIT), so its
 * cleanup runs, awaits included. */
#include <stdio.h>
#include <weft.h>

struct ticker { double delay; int to; };

static int ticker(weft_asyncgen_t *gen, void *arg)
{
    const struct ticker *t = arg;
    int rc = 0;
    for (int i = 0; i < t->to && rc == 0; i++) {
        rc = weft_asyncgen_yield(gen, WEFT_VALUE_INT(i), NULL);   /* yield i */
        if (rc == 0)
            rc = weft_sleep(t->delay);
    }
    /* finally: */
    puts("ticker: cleaning up");
    weft_yield();
    return rc == WEFT_EGENEXIT ? 0 : rc;   /* closed on purpose: a normal end */
}

static int main_coro(void *arg, weft_value_t *result)
{
    (void)arg;
    (void)result;
    struct ticker t = { 0.1, 10 };
    weft_asyncgen_t *gen;
    int rc = weft_asyncgen_new(&gen, ticker, &t, NULL);
    if (rc < 0)
        return rc;
    weft_value_t v;
    WEFT_ASYNC_FOR(rc, weft_asyncgen_anext(gen, &v)) {   /* async for i in ticker(0.1, 10): */
        printf("%lld\n", (long long)v.i);
        if (v.i == 3)
            break;
    }
    if (rc < 0 && rc != WEFT_ESTOPASYNCITER) {
        weft_asyncgen_release(gen);
        return rc;
    }
    rc = weft_asyncgen_aclose(gen);                      /* await gen.aclose() */
    weft_asyncgen_release(gen);
    return rc;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_error_message() ? weft_error_message() : weft_strerror(rc));
    return rc < 0;
}
