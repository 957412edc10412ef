/* Helpers shared by the synchronization primitive tests. */
#ifndef WEFT_TEST_SYNC_UTIL_H
#define WEFT_TEST_SYNC_UTIL_H

#include "check.h"

#include <weft.h>

/* Run fn(arg) as a task on a fresh standalone loop until it is done. */
static inline void run_loop(weft_coro_fn fn, void *arg)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, fn, arg, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static inline void run_rt(int workers, weft_coro_fn fn, void *arg)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, fn, arg, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

static inline weft_task_t *spawn(weft_coro_fn fn, void *arg)
{
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, fn, arg, NULL), 0);
    return t;
}

static inline int await_release(weft_task_t *t)
{
    int rc = weft_await(t, NULL);
    weft_task_release(t);
    return rc;
}

static inline int cancel_cb(void *arg)
{
    weft_task_cancel(arg, NULL);
    return 0;
}

#endif
