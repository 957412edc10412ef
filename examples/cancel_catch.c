/* asyncio docs "Task Cancellation": cancel a task, which catches the
 * cancellation, cleans up, and re-raises it.
 *
 *   async def cancel_me():
 *       print('cancel_me(): before sleep')
 *       try:
 *           await asyncio.sleep(3600)
 *       except asyncio.CancelledError:
 *           print('cancel_me(): cancel sleep')
 *           raise
 *       finally:
 *           print('cancel_me(): after sleep')
 *   async def main():
 *       task = asyncio.create_task(cancel_me())
 *       await asyncio.sleep(1)
 *       task.cancel()
 *       try: await task
 *       except asyncio.CancelledError: print("main(): cancel_me is cancelled now") */
#include <stdio.h>
#include <weft.h>

static int cancel_me(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    printf("cancel_me(): before sleep\n");
    int rc = weft_sleep(3600);
    if (rc == WEFT_ECANCELED)
        printf("cancel_me(): cancel sleep\n");
    printf("cancel_me(): after sleep\n");
    return rc;   /* propagate the cancellation: the task ends cancelled */
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    int rc = weft_create_task(&t, cancel_me, NULL, NULL);
    if (rc < 0)
        return rc;
    if ((rc = weft_sleep(0.1)) == 0) {
        weft_task_cancel(t, NULL);
        rc = weft_await(t, NULL);
        if (rc == WEFT_ECANCELED) {
            printf("main(): cancel_me is cancelled now\n");
            rc = 0;
        }
    }
    weft_task_release(t);
    return rc;
}

int main(void) { return weft_run(main_coro, NULL, NULL, NULL) < 0; }
