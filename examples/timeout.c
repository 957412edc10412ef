/* asyncio docs "Timeouts", asyncio.timeout(): a scope whose deadline turns
 * the cancellation into TimeoutError; and a scope created without a deadline
 * that is given one later with reschedule() (10 s scaled down to 0.1 s).
 *
 *   async def long_running_task():
 *       await asyncio.sleep(3600)
 *
 *   async def main():
 *       try:
 *           async with asyncio.timeout(10):
 *               await long_running_task()
 *       except TimeoutError:
 *           print("The long operation timed out, but we've handled it.")
 *       print("This statement will run regardless.")
 *
 *       try:
 *           # We do not know the timeout when starting, so we pass ``None``.
 *           async with asyncio.timeout(None) as cm:
 *               # We know the timeout now, so we reschedule it.
 *               new_deadline = asyncio.get_running_loop().time() + 10
 *               cm.reschedule(new_deadline)
 *               await long_running_task()
 *       except TimeoutError:
 *           pass
 *       if cm.expired():
 *           print("Looks like we haven't finished on time.") */
#include <stdio.h>
#include <weft.h>

static int long_running_task(void) { return weft_sleep(3600); }

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_timeout_t to;
    int rc = weft_timeout_enter(&to, 0.1);
    if (rc < 0)
        return rc;
    rc = weft_timeout_exit(&to, long_running_task());
    if (rc == WEFT_ETIMEDOUT)
        printf("The long operation timed out, but we've handled it.\n");
    else if (rc < 0)
        return rc;
    printf("This statement will run regardless.\n");

    weft_timeout_t cm;
    /* we do not know the timeout when starting, so we pass none */
    if ((rc = weft_timeout_enter(&cm, WEFT_TIMEOUT_NEVER)) < 0)
        return rc;
    /* we know the timeout now, so we reschedule it */
    double new_deadline = weft_loop_time(weft_running_loop()) + 0.1;
    rc = weft_timeout_reschedule(&cm, new_deadline);
    if (rc == 0)
        rc = long_running_task();
    rc = weft_timeout_exit(&cm, rc);
    if (rc < 0 && rc != WEFT_ETIMEDOUT)
        return rc;
    if (weft_timeout_expired(&cm))
        printf("Looks like we haven't finished on time.\n");
    return 0;
}

int main(void)
{
    int rc = weft_run(main_coro, NULL, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
