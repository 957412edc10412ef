/* asyncio docs "Running Tasks Concurrently": asyncio.gather runs three
 * factorial coroutines concurrently and returns their results in argument
 * order (1 s steps scaled down to 0.1 s).
 *
 *   async def factorial(name, number):
 *       f = 1
 *       for i in range(2, number + 1):
 *           print(f"Task {name}: Compute factorial({number}), currently i={i}...")
 *           await asyncio.sleep(1)
 *           f *= i
 *       print(f"Task {name}: factorial({number}) = {f}")
 *       return f
 *
 *   async def main():
 *       L = await asyncio.gather(factorial("A", 2), factorial("B", 3), factorial("C", 4))
 *       print(L) */
#include <stdio.h>
#include <weft.h>

struct fact { const char *name; int number; };

static int factorial(void *arg, weft_value_t *out)
{
    const struct fact *a = arg;
    long f = 1;
    for (int i = 2; i <= a->number; i++) {
        printf("Task %s: Compute factorial(%d), currently i=%d...\n", a->name, a->number, i);
        int rc = weft_sleep(0.1);
        if (rc < 0)
            return rc;
        f *= i;
    }
    printf("Task %s: factorial(%d) = %ld\n", a->name, a->number, f);
    out->i = f;
    return 0;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct fact a = { "A", 2 }, b = { "B", 3 }, c = { "C", 4 };
    /* coroutines passed to gather are wrapped in tasks, scheduled in order */
    weft_awaitable_t aws[] = { WEFT_AW_CORO(factorial, &a), WEFT_AW_CORO(factorial, &b),
                               WEFT_AW_CORO(factorial, &c) };
    weft_value_t L[3];
    int rc = weft_gather_aw(aws, 3, L, NULL, NULL);
    if (rc < 0)
        return rc;
    printf("[%lld, %lld, %lld]\n", (long long)L[0].i, (long long)L[1].i, (long long)L[2].i);
    return 0;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
