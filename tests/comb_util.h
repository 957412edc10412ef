/* Helpers shared by the combinator / timeout / TaskGroup tests. */
#ifndef WEFT_TEST_COMB_UTIL_H
#define WEFT_TEST_COMB_UTIL_H

#include "check.h"

#include <weft.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Run main(arg) under weft_run and return its status. */
static inline int run(weft_coro_fn main, void *arg)
{
    return weft_run(main, arg, NULL, NULL);
}

/* Let every callback and task already scheduled, and what they schedule in
 * turn, run: n trips through the ready queue (asyncio's _run_loop in tests). */
static inline void settle(int n)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_yield(), 0);
}

/* Reports that reach the loop's exception handler ("exception was never
 * retrieved", "Task was destroyed but it is pending!", ...). */
static int reports;
static char last_report[256];
__attribute__((unused)) static void count_reports(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)ud;
    reports++;
    snprintf(last_report, sizeof last_report, "%s", info->message ? info->message : "");
}
static inline void watch_reports(void)
{
    reports = 0;
    last_report[0] = 0;
    weft_loop_set_exception_handler(weft_running_loop(), count_reports, NULL);
}

/* ---- coroutines used as children --------------------------------------------- */

/* Sleep `delay`, then return `value` or fail with `code`. */
typedef struct job {
    double delay;
    int64_t value;
    int code;             /* < 0: fail with it after the sleep */
    const char *msg;      /* message of the failure */
    int started, finished, cancelled;
    bool swallow;         /* catch a cancellation and return value anyway */
    double cleanup;       /* after a cancellation, sleep this long before returning */
} job_t;

__attribute__((unused)) static int job_fn(void *arg, weft_value_t *out)
{
    job_t *j = arg;
    j->started++;
    int rc = weft_sleep(j->delay);
    if (rc == WEFT_ECANCELED) {
        j->cancelled++;
        if (j->cleanup > 0)
            weft_sleep(j->cleanup);
        if (j->swallow) {
            out->i = j->value;
            j->finished++;
            return 0;
        }
        return rc;
    }
    if (rc < 0)
        return rc;
    j->finished++;
    if (j->code < 0)
        return weft_raise(j->code, "%s", j->msg ? j->msg : "job failed");
    out->i = j->value;
    return 0;
}

/* Await the future given as argument and return its result. */
__attribute__((unused)) static int await_fn(void *arg, weft_value_t *out) { return weft_await(arg, out); }

/* Return at once with the value given as argument (no suspension). */
__attribute__((unused)) static int value_fn(void *arg, weft_value_t *out)
{
    out->i = (int64_t)(intptr_t)arg;
    return 0;
}

#define USER_ERR (-100001)   /* a user-defined error code */

#endif
