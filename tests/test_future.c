/* Futures (asyncio.Future): states, results, exceptions, cancellation, done
 * callbacks, owned results and the "exception was never retrieved" report.
 * Cases ported from CPython name their source in a comment
 * (Lib/test/test_asyncio/test_futures.py, 3.12). */
#include "check.h"

#include <weft.h>

#include <stdint.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

static int stop_cb(void *arg)
{
    weft_loop_stop(arg);
    return 0;
}

/* One loop iteration: everything ready now runs, nothing it schedules does
 * (asyncio test_utils.run_briefly). */
static void run_briefly(weft_loop_t *loop)
{
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
}

static weft_loop_t *new_loop(void)
{
    weft_loop_t *l = NULL;
    CHECK_EQ(weft_loop_new(&l), 0);
    CHECK(l != NULL);
    return l;
}

/* A log of single-character events. */
static char logbuf[256];
static size_t loglen;
static void log_reset(void)
{
    loglen = 0;
    logbuf[0] = 0;
}
static void log_add(char c)
{
    CHECK(loglen + 1 < sizeof logbuf);
    logbuf[loglen++] = c;
    logbuf[loglen] = 0;
}

static weft_future_t *cb_expected_future;
static void log_done_cb(weft_future_t *f, void *arg)
{
    if (cb_expected_future)
        CHECK(f == cb_expected_future);
    CHECK(weft_future_done(f));
    log_add((char)(intptr_t)arg);
}
static void other_done_cb(weft_future_t *f, void *arg)
{
    (void)f;
    log_add((char)((intptr_t)arg + 1));
}
static int log_soon_cb(void *arg)
{
    log_add((char)(intptr_t)arg);
    return 0;
}

/* Exception-handler recorder. */
#define MAXREP 8
static struct {
    int n;
    weft_loop_t *loop[MAXREP];
    int code[MAXREP];
    char message[MAXREP][128];
    char detail[MAXREP][128];
    const weft_future_t *fut[MAXREP];
} rep;

static void rep_reset(void) { memset(&rep, 0, sizeof rep); }

static void rec_handler(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    CHECK(ud == &rep);
    CHECK(rep.n < MAXREP);
    int i = rep.n++;
    rep.loop[i] = loop;
    rep.code[i] = info->code;
    snprintf(rep.message[i], sizeof rep.message[i], "%s", info->message ? info->message : "(null)");
    snprintf(rep.detail[i], sizeof rep.detail[i], "%s", info->detail ? info->detail : "(null)");
    rep.fut[i] = info->future;
}

static int dtor_calls;
static void *dtor_last;
static void counting_dtor(void *p)
{
    dtor_calls++;
    dtor_last = p;
}

/* ---- creation ------------------------------------------------------------------ */

static weft_future_t *made_in_cb;
static weft_loop_t *loop_in_cb;
static int make_future_cb(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_future_new(NULL, &made_in_cb), 0);
    loop_in_cb = weft_running_loop();
    return 0;
}

/* test_futures.py: test_initial_state, test_constructor_without_loop,
 * test_constructor_use_running_loop, test_constructor_positional */
static void test_create(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f = (weft_future_t *)(uintptr_t)1;

    /* no running loop and no explicit loop */
    CHECK_EQ(weft_future_new(NULL, &f), WEFT_ENOLOOP);
    CHECK(f == NULL);

    /* explicit loop, not running */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK(f != NULL);
    CHECK(weft_future_get_loop(f) == loop);
    CHECK(!weft_future_done(f));
    CHECK(!weft_future_cancelled(f));
    CHECK(!weft_is_task(f));
    CHECK(weft_future_message(f) == NULL);

    /* the running loop */
    CHECK_EQ(weft_call_soon(loop, make_future_cb, NULL, NULL), 0);
    run_briefly(loop);
    CHECK(made_in_cb != NULL);
    CHECK(loop_in_cb == loop);
    CHECK(weft_future_get_loop(made_in_cb) == loop);
    CHECK(!weft_future_done(made_in_cb));

    weft_future_release(made_in_cb);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- results ------------------------------------------------------------------ */

/* test_futures.py: test_result */
static void test_result(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    weft_value_t v = WEFT_VALUE_INT(-1);
    CHECK_EQ(weft_future_result(f, &v), WEFT_EINVALSTATE);   /* Result is not ready. */

    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(42)), 0);
    CHECK(weft_future_done(f));
    CHECK(!weft_future_cancelled(f));
    CHECK_EQ(weft_future_result(f, &v), 0);
    CHECK_EQ(v.i, 42);
    CHECK(v.dtor == NULL);
    CHECK_EQ(weft_future_result(f, NULL), 0);   /* out may be NULL */
    int code = 99;
    const char *msg = "x";
    CHECK_EQ(weft_future_exception(f, &code, &msg), 0);
    CHECK_EQ(code, 0);
    CHECK(msg == NULL);
    CHECK(weft_future_message(f) == NULL);

    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* test_futures.py: test_exception */
static void test_exception(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    int code = 0;
    const char *msg = NULL;
    CHECK_EQ(weft_future_exception(f, &code, &msg), WEFT_EINVALSTATE);   /* Exception is not set. */

    CHECK_EQ(weft_future_set_exception(f, -12345, "bad %s %d", "id", 7), 0);
    CHECK(weft_future_done(f));
    CHECK(!weft_future_cancelled(f));
    weft_value_t v = WEFT_VALUE_INT(5);
    CHECK_EQ(weft_future_result(f, &v), -12345);
    CHECK_EQ(v.i, 5);   /* untouched on error */
    CHECK_EQ(weft_future_exception(f, &code, &msg), 0);
    CHECK_EQ(code, -12345);
    CHECK_STR(msg, "bad id 7");
    CHECK_STR(weft_future_message(f), "bad id 7");
    CHECK_EQ(weft_future_exception(f, NULL, NULL), 0);   /* code/msg may be NULL */
    weft_future_release(f);

    /* no message */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, WEFT_ETIMEDOUT, NULL), 0);
    CHECK_EQ(weft_future_result(f, NULL), WEFT_ETIMEDOUT);
    CHECK(weft_future_message(f) == NULL);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* test_futures.py: test_cancel, test_future_cancel_message_getter */
static void test_cancel(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_cancel(f, "my message"), 1);
    CHECK(weft_future_cancelled(f));
    CHECK(weft_future_done(f));
    weft_value_t v = WEFT_VALUE_INT(3);
    CHECK_EQ(weft_future_result(f, &v), WEFT_ECANCELED);
    CHECK_EQ(v.i, 3);
    CHECK_EQ(weft_future_take_result(f, &v), WEFT_ECANCELED);
    const char *msg = NULL;
    CHECK_EQ(weft_future_exception(f, NULL, &msg), WEFT_ECANCELED);
    CHECK_STR(msg, "my message");
    CHECK_STR(weft_future_message(f), "my message");
    /* a done future cannot be cancelled again, nor completed */
    CHECK_EQ(weft_future_cancel(f, "again"), 0);
    CHECK_STR(weft_future_message(f), "my message");
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), WEFT_EINVALSTATE);
    CHECK_EQ(weft_future_set_exception(f, -5, "x"), WEFT_EINVALSTATE);
    CHECK(weft_future_cancelled(f));
    weft_future_release(f);

    /* cancel without a message */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_cancel(f, NULL), 1);
    CHECK(weft_future_cancelled(f));
    CHECK(weft_future_message(f) == NULL);
    weft_future_release(f);

    /* the message is copied */
    char buf[16];
    strcpy(buf, "copied");
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_cancel(f, buf), 1);
    strcpy(buf, "XXXXXX");
    CHECK_STR(weft_future_message(f), "copied");
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* test_futures.py: test_result, test_exception (InvalidStateError when set twice) */
static void test_invalid_state(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_take_result(f, NULL), WEFT_EINVALSTATE);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(2)), WEFT_EINVALSTATE);
    CHECK_EQ(weft_future_set_exception(f, -7, "late"), WEFT_EINVALSTATE);
    CHECK_EQ(weft_future_cancel(f, NULL), 0);
    CHECK(!weft_future_cancelled(f));
    weft_value_t v;
    CHECK_EQ(weft_future_result(f, &v), 0);
    CHECK_EQ(v.i, 1);   /* the first result stays */
    CHECK(weft_future_message(f) == NULL);
    weft_future_release(f);

    /* exception first, then everything else is refused */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, -7, "first"), 0);
    CHECK_EQ(weft_future_set_exception(f, -8, "second"), WEFT_EINVALSTATE);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), WEFT_EINVALSTATE);
    CHECK_EQ(weft_future_result(f, NULL), -7);
    CHECK_STR(weft_future_message(f), "first");
    weft_future_release(f);

    /* a refused owned value stays the caller's: the future never frees it */
    dtor_calls = 0;
    int payload;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(9)), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_OWNED(&payload, counting_dtor)), WEFT_EINVALSTATE);
    weft_future_release(f);
    CHECK_EQ(dtor_calls, 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static void test_set_exception_bad_code(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, 0, "zero"), WEFT_EINVAL);
    CHECK_EQ(weft_future_set_exception(f, 5, "positive"), WEFT_EINVAL);
    CHECK(!weft_future_done(f));   /* still pending */
    CHECK_EQ(weft_future_set_exception(f, -1, NULL), 0);
    CHECK_EQ(weft_future_result(f, NULL), -1);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static int quick_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 11;
    return 0;
}

/* test_tasks.py: test_task_set_methods */
static void test_set_result_on_task(void)
{
    weft_loop_t *loop = new_loop();
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, quick_coro, NULL, NULL), 0);
    CHECK(weft_is_task(t));
    CHECK_EQ(weft_future_set_result(t, WEFT_VALUE_INT(1)), WEFT_ENOTTASK);
    CHECK_EQ(weft_future_set_exception(t, -3, "no"), WEFT_ENOTTASK);
    weft_value_t v;
    CHECK_EQ(weft_loop_run_until_complete(loop, t, &v), 0);
    CHECK_EQ(v.i, 11);
    CHECK_EQ(weft_future_set_result(t, WEFT_VALUE_INT(1)), WEFT_ENOTTASK);   /* done or not */
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- done callbacks --------------------------------------------------------------- */

/* test_futures.py: test_callbacks_invoked_on_set_result */
static void test_callbacks_on_set_result(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    log_reset();
    cb_expected_future = f;
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'a'), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'b'), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'c'), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(10)), 0);
    CHECK_STR(logbuf, "");   /* never called synchronously */
    run_briefly(loop);
    CHECK_STR(logbuf, "abc");   /* registration order */
    run_briefly(loop);
    CHECK_STR(logbuf, "abc");   /* each ran exactly once */

    /* added after done: scheduled with call_soon, still not synchronous */
    log_reset();
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'d'), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'e'), 0);
    CHECK_STR(logbuf, "");
    run_briefly(loop);
    CHECK_STR(logbuf, "de");
    cb_expected_future = NULL;
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* Done callbacks are scheduled with call_soon at the moment the future
 * completes (or, when added to a done future, at the moment they are added),
 * so they keep their place in the loop's FIFO among other call_soon callbacks
 * (asyncio_semantics.md F5: "Callbacks are scheduled (not called) on
 * completion ... each via call_soon"; L1 FIFO). */
struct fifo_case { weft_loop_t *loop; weft_future_t *f; };

static void fifo_scenario(weft_loop_t *loop, weft_future_t *f)
{
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'a'), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'b'), 0);
    CHECK_EQ(weft_call_soon(loop, log_soon_cb, (void *)(intptr_t)'P', NULL), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(10)), 0);
    CHECK_EQ(weft_call_soon(loop, log_soon_cb, (void *)(intptr_t)'Q', NULL), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'c'), 0);
    CHECK_EQ(weft_call_soon(loop, log_soon_cb, (void *)(intptr_t)'R', NULL), 0);
}

static int fifo_in_loop_cb(void *arg)
{
    struct fifo_case *c = arg;
    fifo_scenario(c->loop, c->f);
    return 0;
}

static void test_callbacks_fifo_with_call_soon(void)
{
    /* inside a running loop (a callback of the loop) */
    weft_loop_t *loop = new_loop();
    struct fifo_case c = { loop, NULL };
    CHECK_EQ(weft_future_new(loop, &c.f), 0);
    log_reset();
    CHECK_EQ(weft_call_soon(loop, fifo_in_loop_cb, &c, NULL), 0);
    run_briefly(loop);   /* runs fifo_in_loop_cb */
    run_briefly(loop);   /* runs what it scheduled */
    CHECK_STR(logbuf, "PabQcR");
    weft_future_release(c.f);

    /* from setup code on the loop's own thread, loop not running: the same
     * order (asyncio: call_soon works the same before run_forever) */
    CHECK_EQ(weft_future_new(loop, &c.f), 0);
    log_reset();
    fifo_scenario(loop, c.f);
    CHECK_STR(logbuf, "");
    run_briefly(loop);
    CHECK_STR(logbuf, "PabQcR");
    weft_future_release(c.f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* test_futures.py: test_callbacks_invoked_on_set_exception */
static void test_callbacks_on_set_exception_and_cancel(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f, *g;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_new(loop, &g), 0);
    log_reset();
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'1'), 0);
    CHECK_EQ(weft_future_add_done_callback(g, log_done_cb, (void *)(intptr_t)'2'), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'3'), 0);
    CHECK_EQ(weft_future_cancel(g, "c"), 1);
    CHECK_EQ(weft_future_set_exception(f, -100, "e"), 0);
    CHECK_STR(logbuf, "");
    run_briefly(loop);
    CHECK_STR(logbuf, "213");   /* in completion order, then registration order */
    CHECK_EQ(weft_future_result(f, NULL), -100);
    weft_future_release(f);
    weft_future_release(g);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* test_futures.py: test_remove_done_callback, test_callbacks_remove_first_callback,
 * test_callbacks_remove_third_callback, test_callbacks_remove_first_and_second_callback */
static void test_remove_done_callback(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    log_reset();
    void *a = (void *)(intptr_t)'a', *b = (void *)(intptr_t)'b';
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, a), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, b), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, a), 0);
    CHECK_EQ(weft_future_add_done_callback(f, other_done_cb, a), 0);   /* logs 'b' (a + 1) */
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, a), 0);
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'c'), 0);
    CHECK_EQ(weft_future_remove_done_callback(f, log_done_cb, a), 3);   /* every instance */
    CHECK_EQ(weft_future_remove_done_callback(f, log_done_cb, a), 0);
    CHECK_EQ(weft_future_remove_done_callback(f, other_done_cb, b), 0); /* (fn, arg) must both match */
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(0)), 0);
    /* once done the callbacks are scheduled: nothing left to remove */
    CHECK_EQ(weft_future_remove_done_callback(f, log_done_cb, b), 0);
    run_briefly(loop);
    CHECK_STR(logbuf, "bbc");
    weft_future_release(f);

    /* remove everything: nothing runs */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    log_reset();
    for (int i = 0; i < 10; i++)   /* past the inline slot: a grown array */
        CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, a), 0);
    CHECK_EQ(weft_future_remove_done_callback(f, log_done_cb, a), 10);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(0)), 0);
    run_briefly(loop);
    CHECK_STR(logbuf, "");
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* The future is kept alive by a scheduled done callback even if the caller's
 * reference is gone. */
static void test_callback_keeps_future_alive(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    log_reset();
    dtor_calls = 0;
    int payload = 0;
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'k'), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_OWNED(&payload, counting_dtor)), 0);
    cb_expected_future = f;
    weft_future_release(f);   /* the scheduled callback still holds it */
    CHECK_EQ(dtor_calls, 0);
    run_briefly(loop);
    cb_expected_future = NULL;
    CHECK_STR(logbuf, "k");
    CHECK_EQ(dtor_calls, 1);   /* freed after the callback ran */
    CHECK(dtor_last == &payload);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- owned results --------------------------------------------------------------- */

static void test_owned_result(void)
{
    weft_loop_t *loop = new_loop();
    int payload = 0;

    /* released: the dtor runs exactly once, at the last release */
    weft_future_t *f;
    dtor_calls = 0;
    dtor_last = NULL;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_OWNED(&payload, counting_dtor)), 0);
    weft_value_t v;
    CHECK_EQ(weft_future_result(f, &v), 0);
    CHECK(v.p == &payload);
    CHECK(v.dtor == NULL);   /* borrowed copy */
    CHECK(weft_future_retain(f) == f);
    weft_future_release(f);
    CHECK_EQ(dtor_calls, 0);   /* one reference left */
    weft_future_release(f);
    CHECK_EQ(dtor_calls, 1);
    CHECK(dtor_last == &payload);

    /* taken: the caller owns it, release does not run the dtor */
    dtor_calls = 0;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_OWNED(&payload, counting_dtor)), 0);
    CHECK_EQ(weft_future_take_result(f, &v), 0);
    CHECK(v.p == &payload);
    CHECK(v.dtor == counting_dtor);
    CHECK_EQ(weft_future_result(f, &v), 0);   /* still readable, borrowed */
    CHECK(v.p == &payload);
    weft_future_release(f);
    CHECK_EQ(dtor_calls, 0);
    counting_dtor(&payload);   /* the caller's duty */
    CHECK_EQ(dtor_calls, 1);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- never-retrieved exceptions ------------------------------------------------- */

/* test_futures.py: test_tb_logger_exception_unretrieved, test_future_exception_never_retrieved */
static void test_exception_never_retrieved(void)
{
    weft_loop_t *loop = new_loop();
    weft_loop_set_exception_handler(loop, rec_handler, &rep);
    rep_reset();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, -5000, "lost %d", 1), 0);
    const weft_future_t *fp = f;
    weft_future_release(f);
    CHECK_EQ(rep.n, 1);
    CHECK(rep.loop[0] == loop);
    CHECK_STR(rep.message[0], "Future exception was never retrieved");
    CHECK_EQ(rep.code[0], -5000);
    CHECK_STR(rep.detail[0], "lost 1");
    CHECK(rep.fut[0] == fp);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* test_futures.py: test_tb_logger_exception_retrieved, test_tb_logger_exception_result_retrieved,
 * test_tb_logger_result_unretrieved, test_tb_logger_result_retrieved,
 * test_tb_logger_not_called_after_cancel, test_tb_logger_abandoned */
static void test_exception_retrieved_not_reported(void)
{
    weft_loop_t *loop = new_loop();
    weft_loop_set_exception_handler(loop, rec_handler, &rep);
    rep_reset();
    weft_future_t *f;

    /* retrieved with result() */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, -5001, "r"), 0);
    CHECK_EQ(weft_future_result(f, NULL), -5001);
    weft_future_release(f);
    /* retrieved with exception() */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, -5002, "e"), 0);
    CHECK_EQ(weft_future_exception(f, NULL, NULL), 0);
    weft_future_release(f);
    /* retrieved with take_result() */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, -5003, "t"), 0);
    CHECK_EQ(weft_future_take_result(f, NULL), -5003);
    weft_future_release(f);
    /* cancel() after the exception also disarms the report */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_exception(f, -5004, "c"), 0);
    CHECK_EQ(weft_future_cancel(f, NULL), 0);
    weft_future_release(f);
    /* a result never read, a cancelled future, a pending future: no report */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), 0);
    weft_future_release(f);
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_cancel(f, "x"), 1);
    weft_future_release(f);
    CHECK_EQ(weft_future_new(loop, &f), 0);
    weft_future_release(f);

    CHECK_EQ(rep.n, 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- futures awaited by tasks ------------------------------------------------------ */

static int await_arg_coro(void *arg, weft_value_t *out)
{
    return weft_await(arg, out);
}

static int set_cb(void *arg)
{
    return weft_future_set_result(arg, WEFT_VALUE_INT(77));
}

static int waiter_log_coro(void *arg, weft_value_t *out)
{
    (void)out;
    log_add('w');   /* started */
    int rc = weft_await(arg, NULL);
    log_add('T');   /* resumed */
    return rc;
}

static int complete_cb(void *arg)
{
    return weft_future_set_result(arg, WEFT_VALUE_INT(0));
}

/* A task awaiting a future is one more entry in its callback list
 * (Task.__wakeup): callbacks registered before it run before the task
 * resumes, those registered after run after it. */
static void test_waiter_and_callbacks_order(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    log_reset();
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'a'), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, waiter_log_coro, f, NULL), 0);
    run_briefly(loop);   /* the task starts and waits */
    CHECK_EQ(weft_future_add_done_callback(f, log_done_cb, (void *)(intptr_t)'b'), 0);
    CHECK_EQ(weft_call_soon(loop, complete_cb, f, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    run_briefly(loop);
    CHECK_STR(logbuf, "waTb");
    weft_task_release(t);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* asyncio docs "Futures" example (set_after): a task awaits a future another callback sets */
static void test_await_future_from_task(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_loop_create_task(loop, &t1, await_arg_coro, f, NULL), 0);
    CHECK_EQ(weft_loop_create_task(loop, &t2, await_arg_coro, f, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 0.01, set_cb, f, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_loop_run_until_complete(loop, t1, &v), 0);
    CHECK_EQ(v.i, 77);
    CHECK_EQ(weft_loop_run_until_complete(loop, t2, &v), 0);
    CHECK_EQ(v.i, 77);
    weft_task_release(t1);
    weft_task_release(t2);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);
}

int main(int argc, char **argv)
{
    RUN(test_create);
    RUN(test_result);
    RUN(test_exception);
    RUN(test_cancel);
    RUN(test_invalid_state);
    RUN(test_set_exception_bad_code);
    RUN(test_set_result_on_task);
    RUN(test_callbacks_on_set_result);
    RUN(test_callbacks_on_set_exception_and_cancel);
    RUN(test_remove_done_callback);
    RUN(test_callback_keeps_future_alive);
    RUN(test_owned_result);
    RUN(test_exception_never_retrieved);
    RUN(test_exception_retrieved_not_reported);
    RUN(test_await_future_from_task);
    RUN(test_waiter_and_callbacks_order);
    RUN(test_callbacks_fifo_with_call_soon);
    return 0;
}
