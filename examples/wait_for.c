/* asyncio docs "Timeouts", asyncio.wait_for: the coroutine is cancelled when
 * the timeout expires, and wait_for reports TimeoutError once it has really
 * finished (1 s scaled down to 0.1 s).
 *
 *   async def eternity():
 *       # Sleep for one hour
 *       await asyncio.sleep(3600)
 *       print('yay!')
 *
 *   async def main():
 *       # Wait for at most 1 second
 *       try:
 *           await asyncio.wait_for(eternity(), timeout=1.0)
 *       except TimeoutError:
 *           print('timeout!') */
#include <stdio.h>
#include <weft.h>

static int eternity(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_sleep(3600);   /* sleep for one hour */
    if (rc < 0)
        return rc;
    printf("yay!\n");
    return 0;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* wait for at most 0.1 second; the coroutine runs in this task, as in 3.12 */
    int rc = weft_wait_for_coro(eternity, NULL, 0.1, NULL);
    if (rc == WEFT_ETIMEDOUT) {
        printf("timeout!\n");
        rc = 0;
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
