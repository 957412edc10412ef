/* gather (asyncio.gather and its _GatheringFuture). Each test names the
 * CPython 3.12 case it derives from (Lib/test/test_asyncio/test_tasks.py)
 * or the checklist item of asyncio_semantics.md §5 (G1-G8). */
#include "comb_util.h"

#include <stdlib.h>

static weft_future_t *newf(void)
{
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    return f;
}

static int dcb_calls;
static void done_cb(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    dcb_calls++;
}

static const weft_gather_list_t *list_of(weft_future_t *outer)
{
    weft_value_t v;
    CHECK_EQ(weft_future_result(outer, &v), 0);
    return v.p;
}

/* ---- GatherTestsBase._check_success / test_success / test_result_exception_success */
static int success_main(void *arg, weft_value_t *out)
{
    (void)out;
    bool rex = arg != NULL;
    weft_future_t *a = newf(), *b = newf(), *c = newf(), *outer;
    weft_awaitable_t aws[] = { WEFT_AW(a), WEFT_AW(b), WEFT_AW(c) };
    CHECK_EQ(weft_gather_future(aws, 3, &(weft_gather_opts_t){ .return_exceptions = rex }, &outer), 0);
    dcb_calls = 0;
    CHECK_EQ(weft_future_add_done_callback(outer, done_cb, NULL), 0);
    weft_future_set_result(b, WEFT_VALUE_INT(1));
    weft_future_set_result(a, WEFT_VALUE_INT(2));
    settle(4);
    CHECK_EQ(dcb_calls, 0);
    CHECK(!weft_future_done(outer));
    weft_future_set_result(c, WEFT_VALUE_INT(3));
    settle(4);
    CHECK_EQ(dcb_calls, 1);
    const weft_gather_list_t *l = list_of(outer);
    CHECK_EQ(l->n, 3);
    CHECK_EQ(l->values[0].i, 2);
    CHECK_EQ(l->values[1].i, 1);
    CHECK_EQ(l->values[2].i, 3);
    CHECK_EQ(l->codes[0] | l->codes[1] | l->codes[2], 0);
    weft_future_release(outer);
    weft_future_release(a);
    weft_future_release(b);
    weft_future_release(c);
    return 0;
}

static void test_success(void)
{
    CHECK_EQ(run(success_main, NULL), 0);
    CHECK_EQ(run(success_main, (void *)1), 0);
}

/* ---- GatherTestsBase.test_one_exception (G3: the first error is set at once,
 * later exceptions are marked retrieved, no "never retrieved" report) */
static int one_exception_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    watch_reports();
    weft_future_t *f[5], *outer;
    weft_awaitable_t aws[5];
    for (int i = 0; i < 5; i++) {
        f[i] = newf();
        aws[i] = WEFT_AW(f[i]);
    }
    CHECK_EQ(weft_gather_future(aws, 5, NULL, &outer), 0);
    dcb_calls = 0;
    weft_future_add_done_callback(outer, done_cb, NULL);
    weft_future_set_result(f[0], WEFT_VALUE_INT(1));
    weft_future_set_exception(f[1], USER_ERR, "zero division");
    settle(3);
    CHECK(weft_future_done(outer));
    CHECK_EQ(dcb_calls, 1);
    int code = 0;
    const char *msg = NULL;
    CHECK_EQ(weft_future_exception(outer, &code, &msg), 0);
    CHECK_EQ(code, USER_ERR);
    CHECK_STR(msg, "zero division");
    /* does nothing */
    weft_future_set_result(f[2], WEFT_VALUE_INT(3));
    weft_future_cancel(f[3], NULL);
    weft_future_set_exception(f[4], -7, "runtime");
    settle(3);
    for (int i = 0; i < 5; i++)
        weft_future_release(f[i]);
    weft_future_release(outer);
    CHECK_EQ(reports, 0);   /* f[4]'s exception was retrieved by gather */
    return 0;
}

static void test_one_exception(void) { CHECK_EQ(run(one_exception_main, NULL), 0); }

/* ---- GatherTestsBase.test_return_exceptions (G4) */
static int return_exceptions_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f[4], *outer;
    weft_awaitable_t aws[4];
    for (int i = 0; i < 4; i++) {
        f[i] = newf();
        aws[i] = WEFT_AW(f[i]);
    }
    CHECK_EQ(weft_gather_future(aws, 4, &(weft_gather_opts_t){ .return_exceptions = true }, &outer), 0);
    weft_future_set_result(f[1], WEFT_VALUE_INT(1));
    weft_future_set_exception(f[2], USER_ERR, "exc");
    weft_future_set_result(f[0], WEFT_VALUE_INT(3));
    settle(3);
    CHECK(!weft_future_done(outer));
    weft_future_set_exception(f[3], -7, "exc2");
    settle(3);
    const weft_gather_list_t *l = list_of(outer);
    CHECK_EQ(l->values[0].i, 3);
    CHECK_EQ(l->values[1].i, 1);
    CHECK_EQ(l->codes[2], USER_ERR);
    CHECK_STR(l->messages[2], "exc");
    CHECK_EQ(l->codes[3], -7);
    CHECK_STR(l->messages[3], "exc2");
    for (int i = 0; i < 4; i++)
        weft_future_release(f[i]);
    weft_future_release(outer);
    return 0;
}

static void test_return_exceptions(void) { CHECK_EQ(run(return_exceptions_main, NULL), 0); }

/* ---- FutureGatherTests.test_one_cancellation (G5: a child cancelled by someone
 * else sets CancelledError as the outer's exception; the outer is not cancelled) */
static int one_cancellation_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f[5], *outer;
    weft_awaitable_t aws[5];
    for (int i = 0; i < 5; i++) {
        f[i] = newf();
        aws[i] = WEFT_AW(f[i]);
    }
    CHECK_EQ(weft_gather_future(aws, 5, NULL, &outer), 0);
    weft_future_set_result(f[0], WEFT_VALUE_INT(1));
    weft_future_cancel(f[1], "bye");
    settle(3);
    CHECK(weft_future_done(outer));
    CHECK(!weft_future_cancelled(outer));
    int code = 0;
    CHECK_EQ(weft_future_exception(outer, &code, NULL), 0);
    CHECK_EQ(code, WEFT_ECANCELED);
    CHECK_EQ(weft_await(outer, NULL), WEFT_ECANCELED);
    weft_future_set_result(f[2], WEFT_VALUE_INT(3));
    weft_future_cancel(f[3], NULL);
    weft_future_set_exception(f[4], -7, NULL);
    settle(3);
    for (int i = 0; i < 5; i++)
        weft_future_release(f[i]);
    weft_future_release(outer);
    return 0;
}

static void test_one_cancellation(void) { CHECK_EQ(run(one_cancellation_main, NULL), 0); }

/* ---- FutureGatherTests.test_result_exception_one_cancellation (G4: a
 * cancelled child contributes CancelledError in place) */
static int rex_one_cancellation_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *f[6];
    for (int i = 0; i < 6; i++)
        f[i] = newf();
    weft_future_set_result(f[0], WEFT_VALUE_INT(1));
    weft_future_set_exception(f[1], USER_ERR, "zde");
    weft_future_cancel(f[2], "c");
    weft_future_set_result(f[3], WEFT_VALUE_INT(3));
    weft_future_cancel(f[4], NULL);
    weft_future_set_exception(f[5], -7, "rte");
    weft_value_t res[6];
    int codes[6];
    CHECK_EQ(weft_gather(f, 6, res, codes, &(weft_gather_opts_t){ .return_exceptions = true }), 0);
    CHECK_EQ(res[0].i, 1);
    CHECK_EQ(codes[0], 0);
    CHECK_EQ(codes[1], USER_ERR);
    CHECK_EQ(codes[2], WEFT_ECANCELED);
    CHECK_EQ(res[3].i, 3);
    CHECK_EQ(codes[4], WEFT_ECANCELED);
    CHECK_EQ(codes[5], -7);
    for (int i = 0; i < 6; i++)
        weft_future_release(f[i]);
    return 0;
}

static void test_result_exception_one_cancellation(void) { CHECK_EQ(run(rex_one_cancellation_main, NULL), 0); }

/* ---- FutureGatherTests.test_constructor_empty_sequence_use_running_loop (G1):
 * an empty gather completes at once, without suspending */
static int ticks;
static int ticker(void *arg)
{
    (void)arg;
    ticks++;
    return 0;
}

static int empty_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *outer;
    CHECK_EQ(weft_gather_future(NULL, 0, NULL, &outer), 0);
    CHECK(weft_future_done(outer));
    CHECK_EQ(list_of(outer)->n, 0);
    weft_future_release(outer);
    ticks = 0;
    weft_call_soon(weft_running_loop(), ticker, NULL, NULL);
    CHECK_EQ(weft_gather(NULL, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(weft_gather_aw(NULL, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(ticks, 0);   /* no suspension happened */
    return 0;
}

static void test_constructor_empty_sequence(void) { CHECK_EQ(run(empty_main, NULL), 0); }

/* ---- CoroutineGatherTests.test_duplicate_coroutines (G2: the same future twice
 * is one child whose result appears twice; each coroutine entry is a call) */
static int duplicate_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *c;
    CHECK_EQ(weft_create_task(&c, value_fn, (void *)(intptr_t)7, NULL), 0);
    weft_awaitable_t aws[] = { WEFT_AW(c), WEFT_AW(c), WEFT_AW_CORO(value_fn, (void *)(intptr_t)9), WEFT_AW(c) };
    weft_value_t res[4];
    CHECK_EQ(weft_gather_aw(aws, 4, res, NULL, NULL), 0);
    CHECK_EQ(res[0].i, 7);
    CHECK_EQ(res[1].i, 7);
    CHECK_EQ(res[2].i, 9);
    CHECK_EQ(res[3].i, 7);
    /* a plain-future duplicate: one done callback, two results */
    weft_future_t *f = newf(), *outer;
    weft_awaitable_t aw2[] = { WEFT_AW(f), WEFT_AW(f) };
    CHECK_EQ(weft_gather_future(aw2, 2, NULL, &outer), 0);
    weft_future_set_result(f, WEFT_VALUE_INT(5));
    CHECK_EQ(weft_await(outer, NULL), 0);
    const weft_gather_list_t *l = list_of(outer);
    CHECK_EQ(l->values[0].i, 5);
    CHECK_EQ(l->values[1].i, 5);
    /* many duplicates take the hashing path */
    weft_future_t *many[40];
    for (int i = 0; i < 40; i++)
        many[i] = i % 2 ? f : c;
    weft_value_t r40[40];
    CHECK_EQ(weft_gather(many, 40, r40, NULL, NULL), 0);
    for (int i = 0; i < 40; i++)
        CHECK_EQ(r40[i].i, i % 2 ? 5 : 7);
    weft_future_release(outer);
    weft_future_release(f);
    weft_task_release(c);
    return 0;
}

static void test_duplicate_coroutines(void) { CHECK_EQ(run(duplicate_main, NULL), 0); }

/* ---- CoroutineGatherTests.test_cancellation_broadcast (G6: cancelling the
 * awaiting task cancels every child; after that the gather is done and
 * cancelling it again does nothing) */
static int proof;
static weft_future_t *bc_waiter;
static int bc_inner(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_await(bc_waiter, NULL);
    if (rc < 0)
        return rc;
    proof += 1;
    return 0;
}

static weft_future_t *bc_children[2];
static weft_future_t *bc_gatherer;
static int bc_outer(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_awaitable_t aws[] = { WEFT_AW(bc_children[0]), WEFT_AW(bc_children[1]) };
    CHECK_EQ(weft_gather_future(aws, 2, NULL, &bc_gatherer), 0);
    int rc = weft_await(bc_gatherer, NULL);
    if (rc < 0)
        return rc;
    proof += 100;
    return 0;
}

static int bc_outer_call(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_gather(bc_children, 2, NULL, NULL, NULL);
    if (rc < 0)
        return rc;
    proof += 100;
    return 0;
}

static int broadcast_main(void *arg, weft_value_t *out)
{
    (void)out;
    bool via_call = arg != NULL;
    proof = 0;
    bc_waiter = newf();
    CHECK_EQ(weft_create_task(&bc_children[0], bc_inner, NULL, NULL), 0);
    CHECK_EQ(weft_create_task(&bc_children[1], bc_inner, NULL, NULL), 0);
    weft_task_t *f;
    CHECK_EQ(weft_create_task(&f, via_call ? bc_outer_call : bc_outer, NULL, NULL), 0);
    settle(1);
    CHECK_EQ(weft_task_cancel(f, NULL), 1);
    CHECK_EQ(weft_await(f, NULL), WEFT_ECANCELED);
    if (!via_call) {
        CHECK_EQ(weft_gather_cancel(bc_gatherer, NULL), 0);
        weft_future_release(bc_gatherer);
    }
    CHECK(weft_future_cancelled(bc_waiter));
    CHECK(weft_future_cancelled(bc_children[0]));
    CHECK(weft_future_cancelled(bc_children[1]));
    settle(1);
    CHECK_EQ(proof, 0);
    weft_task_release(f);
    weft_task_release(bc_children[0]);
    weft_task_release(bc_children[1]);
    weft_future_release(bc_waiter);
    return 0;
}

static void test_cancellation_broadcast(void)
{
    CHECK_EQ(run(broadcast_main, (void *)1), 0);   /* weft_gather: exact asyncio semantics */
    CHECK_EQ(run(broadcast_main, NULL), 0);        /* weft_await on a gathering future */
}

/* ---- G6 / bpo-32684: cancelling the awaiting task cancels the children and
 * reports CANCELLED once the cancellation went through */
static int cw_order;
static int slow_cleanup(void *arg, weft_value_t *out)
{
    (void)out;
    job_t *j = arg;
    int rc = job_fn(j, out);
    cw_order = cw_order * 10 + 1;
    return rc;
}

static bool cw_rex;
static int gather_caller(void *arg, weft_value_t *out)
{
    (void)out;
    weft_awaitable_t *aws = arg;
    int codes[2];
    int rc = weft_gather_aw(aws, 2, NULL, codes, &(weft_gather_opts_t){ .return_exceptions = cw_rex });
    cw_order = cw_order * 10 + 2;
    return rc;
}

/* Checked against CPython 3.12.1: children a (cleanup 0.05 s) and b (0.02 s);
 * without return_exceptions the gather ends with b's cancellation (order b,
 * gather, a); with it, after both (b, a, gather). */
static int cancel_waits_main(void *arg, weft_value_t *out)
{
    (void)out;
    cw_rex = arg != NULL;
    job_t a = { .delay = 10, .cleanup = 0.05 }, b = { .delay = 10, .cleanup = 0.02 };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(slow_cleanup, &a), WEFT_AW_CORO(slow_cleanup, &b) };
    cw_order = 0;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, gather_caller, aws, NULL), 0);
    settle(2);
    CHECK_EQ(a.started, 1);
    /* introspection: the task awaits the gathering future */
    CHECK(weft_task_awaiting(t) != NULL);
    CHECK(!weft_is_task(weft_task_awaiting(t)));
    CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);
    CHECK_EQ(weft_task_cancel(t, "stop"), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    CHECK_EQ(a.cancelled, 1);
    CHECK_EQ(b.cancelled, 1);
    CHECK_EQ(cw_order, cw_rex ? 112 : 12);
    CHECK_STR(weft_future_message(t), "stop");
    CHECK_EQ(weft_sleep(0.06), 0);
    CHECK_EQ(cw_order, cw_rex ? 112 : 121);
    weft_task_release(t);
    return 0;
}

static void test_cancel_waits_for_children(void)
{
    CHECK_EQ(run(cancel_waits_main, NULL), 0);
    CHECK_EQ(run(cancel_waits_main, (void *)1), 0);
}

/* ---- G3: without return_exceptions the first error reaches the awaiter at
 * once while the other children keep running (they are not cancelled) */
static int first_error_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t fail = { .delay = 0.01, .code = USER_ERR, .msg = "boom" }, slow = { .delay = 0.5, .value = 5 };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(job_fn, &slow), WEFT_AW_CORO(job_fn, &fail) };
    double t0 = weft_loop_time(weft_running_loop());
    CHECK_EQ(weft_gather_aw(aws, 2, NULL, NULL, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "boom");
    (void)t0;
    CHECK_EQ(slow.finished, 0);   /* at once, not after the slow child (an event, not a time bound) */
    CHECK_EQ(weft_sleep(0.6), 0);
    CHECK_EQ(slow.finished, 1);   /* it went on */
    CHECK_EQ(slow.cancelled, 0);
    return 0;
}

static void test_first_error_others_keep_running(void) { CHECK_EQ(run(first_error_main, NULL), 0); }

/* ---- CoroutineGatherTests.test_exception_marking: a second failing child's
 * error is marked retrieved by the gather (no "never retrieved" report) */
static int raise_after(void *arg, weft_value_t *out)
{
    (void)out;
    int rc = weft_await(arg, NULL);
    if (rc < 0)
        return rc;
    return weft_raise(-9, "should not be ignored");
}

static int marking_outer(void *arg, weft_value_t *out)
{
    (void)out;
    weft_future_t **ab = arg;
    weft_awaitable_t aws[] = { WEFT_AW_CORO(raise_after, ab[0]), WEFT_AW_CORO(raise_after, ab[1]) };
    return weft_gather_aw(aws, 2, NULL, NULL, NULL);
}

static int marking_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    watch_reports();
    weft_future_t *ab[2] = { newf(), newf() };
    weft_task_t *f;
    CHECK_EQ(weft_create_task(&f, marking_outer, ab, NULL), 0);
    settle(1);
    weft_future_set_result(ab[0], WEFT_VALUE_INT(0));
    settle(1);
    weft_future_set_result(ab[1], WEFT_VALUE_INT(0));
    settle(4);
    int code = 0;
    const char *msg = NULL;
    CHECK_EQ(weft_future_exception(f, &code, &msg), 0);
    CHECK_EQ(code, -9);
    CHECK_STR(msg, "should not be ignored");
    weft_task_release(f);
    weft_future_release(ab[0]);
    weft_future_release(ab[1]);
    settle(2);
    CHECK_EQ(reports, 0);
    return 0;
}

static void test_exception_marking(void) { CHECK_EQ(run(marking_main, NULL), 0); }

/* ---- test_cancel_gather_1 (bpo-26923, G7): a gathering future refuses to be
 * cancelled once all its children are done */
static weft_future_t *cg1_outer;
static int cg1_result = 99;
static void cg1_cancelling_cb(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    cg1_result = weft_gather_cancel(cg1_outer, NULL);
}

static int cancel_gather_1_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fut = newf();
    weft_awaitable_t aws[] = { WEFT_AW_CORO(await_fn, fut) };
    CHECK_EQ(weft_gather_future(aws, 1, NULL, &cg1_outer), 0);
    settle(1);   /* the child awaits fut now */
    weft_future_add_done_callback(fut, cg1_cancelling_cb, NULL);
    weft_future_set_result(fut, WEFT_VALUE_INT(42));
    weft_value_t v;
    CHECK_EQ(weft_await(cg1_outer, &v), 0);
    CHECK_EQ(cg1_result, 0);
    CHECK(!weft_future_cancelled(cg1_outer));
    CHECK_EQ(((const weft_gather_list_t *)v.p)->values[0].i, 42);
    weft_future_release(cg1_outer);
    weft_future_release(fut);
    return 0;
}

static void test_cancel_gather_1(void) { CHECK_EQ(run(cancel_gather_1_main, NULL), 0); }

/* ---- test_cancel_gather_2: the cancel message reaches the gather's awaiter,
 * with return_exceptions too (bpo-32684) */
static int cg2_test(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (double time = 0;;) {
        time += 0.05;
        job_t j = { .delay = 0.05 };
        weft_awaitable_t aws[] = { WEFT_AW_CORO(job_fn, &j) };
        int codes[1];
        int rc = weft_gather_aw(aws, 1, NULL, codes, &(weft_gather_opts_t){ .return_exceptions = true });
        if (rc < 0)
            return rc;
        if (time > 1)
            return 0;
    }
}

static int cancel_gather_2_main(void *arg, weft_value_t *out)
{
    (void)out;
    const char *msg = arg;
    weft_task_t *qwe;
    CHECK_EQ(weft_create_task(&qwe, cg2_test, NULL, NULL), 0);
    /* 0.2 s, as CPython: the cancel tends to land in the loop iteration
     * where the child's sleep timer fired (the core keeps it as must_cancel) */
    CHECK_EQ(weft_sleep(0.2), 0);
    weft_task_cancel(qwe, msg);
    CHECK_EQ(weft_await(qwe, NULL), WEFT_ECANCELED);
    if (msg)
        CHECK_STR(weft_error_message(), msg);
    else
        CHECK(weft_error_message() == NULL);
    weft_task_release(qwe);
    return 0;
}

static void test_cancel_gather_2(void)
{
    CHECK_EQ(run(cancel_gather_2_main, NULL), 0);
    CHECK_EQ(run(cancel_gather_2_main, "my message"), 0);
}

/* ---- G6 with the future API: outer.cancel(msg) cancels the children, the
 * outer is not done until they finished, then it holds CancelledError(msg)
 * regardless of return_exceptions; G7: once done, cancel does nothing */
static int gather_cancel_main(void *arg, weft_value_t *out)
{
    (void)out;
    bool rex = arg != NULL;
    job_t a = { .delay = 10 }, b = { .delay = 10, .cleanup = 0.01 };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(job_fn, &a), WEFT_AW_CORO(job_fn, &b) };
    weft_future_t *outer;
    CHECK_EQ(weft_gather_future(aws, 2, &(weft_gather_opts_t){ .return_exceptions = rex }, &outer), 0);
    settle(1);
    CHECK_EQ(weft_gather_cancel(outer, "outer"), 1);
    CHECK(!weft_future_done(outer));
    CHECK_EQ(weft_await(outer, NULL), WEFT_ECANCELED);
    CHECK_STR(weft_error_message(), "outer");
    CHECK(!weft_future_cancelled(outer));   /* done with CancelledError as exception */
    CHECK_EQ(a.cancelled + b.cancelled, 2);
    CHECK_EQ(weft_gather_cancel(outer, NULL), 0);
    weft_future_release(outer);

    /* G7: after the first error propagated, cancel() is False and does not
     * cancel the remaining children */
    job_t fail = { .delay = 0, .code = USER_ERR }, slow = { .delay = 0.03 };
    weft_awaitable_t aw2[] = { WEFT_AW_CORO(job_fn, &fail), WEFT_AW_CORO(job_fn, &slow) };
    CHECK_EQ(weft_gather_future(aw2, 2, NULL, &outer), 0);
    CHECK_EQ(weft_await(outer, NULL), USER_ERR);
    CHECK_EQ(weft_gather_cancel(outer, NULL), 0);
    CHECK_EQ(weft_sleep(0.06), 0);
    CHECK_EQ(slow.finished, 1);
    CHECK_EQ(slow.cancelled, 0);
    weft_future_release(outer);

    /* not a gathering future */
    weft_future_t *plain = newf();
    CHECK_EQ(weft_gather_cancel(plain, NULL), WEFT_EINVAL);
    weft_future_release(plain);
    return 0;
}

static void test_gather_cancel_future(void)
{
    CHECK_EQ(run(gather_cancel_main, NULL), 0);
    CHECK_EQ(run(gather_cancel_main, (void *)1), 0);
}

/* ---- test_gather_shield: gather(shield(c1), shield(c2)).cancel() cancels the
 * shields' outers but not c1/c2 */
static int gather_shield_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *c1 = newf(), *c2 = newf(), *i1, *i2, *parent;
    CHECK_EQ(weft_shield(c1, &i1), 0);
    CHECK_EQ(weft_shield(c2, &i2), 0);
    weft_awaitable_t aws[] = { WEFT_AW(i1), WEFT_AW(i2) };
    CHECK_EQ(weft_gather_future(aws, 2, NULL, &parent), 0);
    settle(1);
    CHECK_EQ(weft_gather_cancel(parent, NULL), 1);
    settle(2);
    int code = 0;
    CHECK_EQ(weft_future_exception(parent, &code, NULL), 0);
    CHECK_EQ(code, WEFT_ECANCELED);
    CHECK(weft_future_cancelled(i1));
    CHECK(weft_future_cancelled(i2));
    CHECK(!weft_future_done(c1));
    weft_future_set_result(c1, WEFT_VALUE_INT(1));
    weft_future_set_result(c2, WEFT_VALUE_INT(2));
    settle(2);
    weft_future_release(parent);
    weft_future_release(i1);
    weft_future_release(i2);
    weft_future_release(c1);
    weft_future_release(c2);
    return 0;
}

static void test_gather_shield(void) { CHECK_EQ(run(gather_shield_main, NULL), 0); }

/* ---- E6 (test_eager_task_factory.py test_eager_task_factory_set /
 * gather of eager children): eager children may finish during gather's
 * argument loop; gather completes without suspending */
static int eager_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = weft_running_loop();
    CHECK_EQ(weft_loop_set_eager_task_factory(l, true), 0);
    ticks = 0;
    weft_call_soon(l, ticker, NULL, NULL);
    weft_awaitable_t aws[] = { WEFT_AW_CORO(value_fn, (void *)(intptr_t)1),
                               WEFT_AW_CORO(value_fn, (void *)(intptr_t)2) };
    weft_value_t res[2];
    CHECK_EQ(weft_gather_aw(aws, 2, res, NULL, NULL), 0);
    CHECK_EQ(ticks, 0);   /* completed eagerly: never suspended */
    CHECK_EQ(res[0].i + res[1].i, 3);
    CHECK_EQ(weft_loop_set_eager_task_factory(l, false), 0);
    return 0;
}

static void test_eager_children(void) { CHECK_EQ(run(eager_main, NULL), 0); }

/* ---- owned results of tasks the gather created are moved to the caller */
static int owned_fn(void *arg, weft_value_t *out)
{
    (void)arg;
    char *s = malloc(8);
    strcpy(s, "owned");
    *out = WEFT_VALUE_OWNED(s, free);
    return weft_yield();
}

static int owned_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_awaitable_t aws[] = { WEFT_AW_CORO(owned_fn, NULL), WEFT_AW_CORO(owned_fn, NULL) };
    weft_value_t res[2];
    CHECK_EQ(weft_gather_aw(aws, 2, res, NULL, NULL), 0);
    for (int i = 0; i < 2; i++) {
        CHECK(res[i].dtor == free);
        CHECK_STR(res[i].p, "owned");
        res[i].dtor(res[i].p);
    }
    /* results not taken are freed with the list */
    weft_future_t *outer;
    CHECK_EQ(weft_gather_future(aws, 2, NULL, &outer), 0);
    CHECK_EQ(weft_await(outer, NULL), 0);
    weft_future_release(outer);
    return 0;
}

static void test_owned_results(void) { CHECK_EQ(run(owned_main, NULL), 0); }

/* ---- weft_future_cancel on a gathering future. With the core's cancel hook
 * it is _GatheringFuture.cancel (G6: not done at once, CancelledError as the
 * exception once the children finished); without it, a plain Future.cancel
 * that also cancels the children (one loop iteration later). */
static int plain_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t a = { .delay = 10 };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(job_fn, &a) };
    weft_future_t *outer;
    CHECK_EQ(weft_gather_future(aws, 1, NULL, &outer), 0);
    settle(1);
    CHECK_EQ(weft_future_cancel(outer, "plain"), 1);
    CHECK(!weft_future_done(outer));
    settle(3);
    CHECK(weft_future_done(outer) && !weft_future_cancelled(outer));
    CHECK_EQ(weft_future_result(outer, NULL), WEFT_ECANCELED);
    CHECK_STR(weft_future_message(outer), "plain");
    CHECK_EQ(a.cancelled, 1);
    weft_future_release(outer);
    return 0;
}

static void test_plain_cancel_of_outer(void) { CHECK_EQ(run(plain_cancel_main, NULL), 0); }

/* ---- _GatheringFuture with return_exceptions cancelled while children fail:
 * the children's exceptions are retrieved (asyncio builds the result list,
 * calling exception() on each, before reporting the cancellation) */
static int fail_on_cancel(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_sleep(10);
    return weft_raise(USER_ERR, "cleanup failed");
}

static int rex_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    watch_reports();
    weft_awaitable_t aws[] = { WEFT_AW_CORO(fail_on_cancel, NULL), WEFT_AW_CORO(fail_on_cancel, NULL) };
    weft_future_t *outer;
    CHECK_EQ(weft_gather_future(aws, 2, &(weft_gather_opts_t){ .return_exceptions = true }, &outer), 0);
    settle(1);
    CHECK_EQ(weft_gather_cancel(outer, "stop"), 1);
    CHECK_EQ(weft_await(outer, NULL), WEFT_ECANCELED);
    weft_future_release(outer);
    settle(2);
    CHECK_EQ(reports, 0);
    return 0;
}

static void test_cancel_with_return_exceptions_retrieves(void) { CHECK_EQ(run(rex_cancel_main, NULL), 0); }

/* ---- T5 "result lost" (test_tasks.py __wakeup semantics): the awaiting task
 * is cancelled after the gather completed but before it resumed: it gets
 * CANCELLED, and the gather's exception counts as retrieved (no report) */
static int gather_one(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_gather((weft_future_t **)&arg, 1, NULL, NULL, NULL);
}

static int result_lost_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    watch_reports();
    weft_future_t *f = newf();
    weft_task_t *w;
    CHECK_EQ(weft_create_task(&w, gather_one, f, NULL), 0);
    settle(1);   /* w waits in the gather */
    weft_future_set_exception(f, USER_ERR, "lost");
    CHECK_EQ(weft_yield(), 0);   /* the gather's callback ran: w is woken, has not run yet */
    CHECK_EQ(weft_task_cancel(w, NULL), 1);
    CHECK_EQ(weft_await(w, NULL), WEFT_ECANCELED);
    weft_task_release(w);
    weft_future_release(f);
    settle(2);
    CHECK_EQ(reports, 0);
    return 0;
}

static void test_cancel_after_completion_retrieves(void) { CHECK_EQ(run(result_lost_main, NULL), 0); }

/* ---- argument errors */
static int errors_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_future_t *fs[2] = { NULL, NULL };
    CHECK_EQ(weft_gather(fs, 2, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_gather(NULL, 2, NULL, NULL, NULL), WEFT_EINVAL);
    weft_awaitable_t bad[] = { { .future = NULL, .fn = NULL } };
    CHECK_EQ(weft_gather_aw(bad, 1, NULL, NULL, NULL), WEFT_EINVAL);
    weft_future_t *o;
    CHECK_EQ(weft_gather_future(bad, 1, NULL, &o), WEFT_EINVAL);
    CHECK(o == NULL);
    return 0;
}

static void test_errors(void)
{
    CHECK_EQ(weft_gather(NULL, 0, NULL, NULL, NULL), WEFT_ENOTCORO);
    weft_future_t *o;
    CHECK_EQ(weft_gather_future(NULL, 0, NULL, &o), WEFT_ENOLOOP);
    CHECK_EQ(run(errors_main, NULL), 0);
}

int main(int argc, char **argv)
{
    RUN(test_success);
    RUN(test_one_exception);
    RUN(test_return_exceptions);
    RUN(test_one_cancellation);
    RUN(test_result_exception_one_cancellation);
    RUN(test_constructor_empty_sequence);
    RUN(test_duplicate_coroutines);
    RUN(test_cancellation_broadcast);
    RUN(test_cancel_waits_for_children);
    RUN(test_first_error_others_keep_running);
    RUN(test_exception_marking);
    RUN(test_cancel_gather_1);
    RUN(test_cancel_gather_2);
    RUN(test_gather_cancel_future);
    RUN(test_gather_shield);
    RUN(test_eager_children);
    RUN(test_owned_results);
    RUN(test_plain_cancel_of_outer);
    RUN(test_cancel_with_return_exceptions_retrieves);
    RUN(test_cancel_after_completion_retrieves);
    RUN(test_errors);
    return 0;
}
