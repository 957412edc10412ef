/* A producer/consumer pipeline across loops: three stages of stealable tasks
 * on a 2-worker runtime, connected by bounded queues (asyncio.Queue with
 * maxsize, plus 3.13's shutdown() to end each stage).
 *
 *   generate 1..N --q1(32)--> 3 x square --q2(32)--> sum
 *
 * Each stage is a stealable task (weft_spawn): the generator and the sum are
 * spawned from loop 0, the squarers from loop 1, and an idle loop may still
 * steal any of them before it starts; the queues hand items and wake-ups
 * between loops.
 * When the generator is done it shuts q1 down: the squarers drain it, then
 * get WEFT_ESHUTDOWN and stop; main then shuts q2 down the same way. */
#include <stdint.h>
#include <stdio.h>
#include <weft.h>

#define N 100000
#define SQUARERS 3

static weft_queue_t *q1, *q2;
static unsigned int per_loop[2];   /* items squared on each loop (atomic) */

static int loop_index(void)
{
    weft_loop_t *l = weft_running_loop();
    return l == weft_runtime_loop(weft_loop_runtime(l), 0) ? 0 : 1;
}

static int generate(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (intptr_t i = 1; i <= N; i++) {
        int rc = weft_queue_put(q1, (void *)i);   /* waits while q1 is full */
        if (rc < 0)
            return rc;
    }
    return weft_queue_shutdown(q1, false);   /* no more items: consumers drain, then stop */
}

static int square(void *arg, weft_value_t *out)
{
    (void)arg;
    long n = 0;
    for (;;) {
        void *item;
        int rc = weft_queue_get(q1, &item);
        if (rc == WEFT_ESHUTDOWN)
            break;
        if (rc < 0)
            return rc;
        intptr_t v = (intptr_t)item;
        if ((rc = weft_queue_put(q2, (void *)(v * v))) < 0)
            return rc;
        __atomic_fetch_add(&per_loop[loop_index()], 1, __ATOMIC_RELAXED);
        n++;
    }
    out->i = n;
    return 0;
}

static int sum(void *arg, weft_value_t *out)
{
    (void)arg;
    int64_t s = 0, n = 0;
    for (;;) {
        void *item;
        int rc = weft_queue_get(q2, &item);
        if (rc == WEFT_ESHUTDOWN)
            break;
        if (rc < 0)
            return rc;
        s += (intptr_t)item;
        n++;
    }
    out->i = s;
    printf("sum stage: %lld items, ran on loop %d\n", (long long)n, loop_index());
    return 0;
}

static int spawn_squarers(void *arg, weft_value_t *out)
{
    (void)out;
    weft_task_t **sq = arg;
    for (int i = 0; i < SQUARERS; i++) {
        int rc = weft_spawn(&sq[i], square, NULL, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc;
    if ((rc = weft_queue_new(32, &q1)) < 0 || (rc = weft_queue_new(32, &q2)) < 0)
        return rc;
    double t0 = weft_loop_time(weft_running_loop());
    weft_task_t *gen, *sq[SQUARERS], *total;
    if ((rc = weft_spawn(&gen, generate, NULL, NULL)) < 0)
        return rc;
    /* the squarers are spawned from loop 1 (still stealable): the stages start
     * on different loops, and the queues carry items between them */
    weft_task_t *sp;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    if ((rc = weft_spawn_on(weft_runtime_loop(rt, 1), &sp, spawn_squarers, sq, NULL)) < 0)
        return rc;
    rc = weft_await(sp, NULL);
    weft_task_release(sp);
    if (rc < 0)
        return rc;
    if ((rc = weft_spawn(&total, sum, NULL, NULL)) < 0)
        return rc;

    rc = weft_await(gen, NULL);
    for (int i = 0; i < SQUARERS; i++) {
        weft_value_t v;
        int r = weft_await(sq[i], &v);
        if (r == 0)
            printf("squarer %d: %lld items\n", i, (long long)v.i);
        else if (rc == 0)
            rc = r;
        weft_task_release(sq[i]);
    }
    weft_queue_shutdown(q2, false);   /* every squarer is done: end the last stage */
    weft_value_t s;
    int r = weft_await(total, &s);
    if (rc == 0)
        rc = r;
    weft_task_release(gen);
    weft_task_release(total);
    if (rc == 0) {
        int64_t want = (int64_t)N * (N + 1) * (2 * N + 1) / 6;
        printf("sum of squares 1..%d = %lld (%s), %.3f s\n", N, (long long)s.i, s.i == want ? "ok" : "WRONG",
               weft_loop_time(weft_running_loop()) - t0);
        printf("items squared on loop 0: %u, on loop 1: %u\n", per_loop[0], per_loop[1]);
        if (s.i != want)
            rc = -1;
    }
    weft_queue_free(q1);
    weft_queue_free(q2);
    return rc;
}

int main(void)
{
    weft_runtime_t *rt;
    if (weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt) < 0)
        return 1;
    int rc = weft_runtime_run(rt, main_coro, NULL, NULL, NULL);
    weft_runtime_free(rt);
    if (rc < 0)
        fprintf(stderr, "pipeline: %s\n", weft_strerror(rc));
    return rc < 0;
}
