/* The event loop: call_soon / call_later / call_at ordering, handles, failing
 * callbacks, run_until_complete, stop, close, time, the running/current loop,
 * call_soon_threadsafe from plain threads, and destroying pending tasks.
 * Cases ported from CPython name their source (Lib/test/test_asyncio/
 * test_base_events.py and test_events.py, 3.12). */
#include "check.h"
#include "watchdog.h"

#include <weft.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------ */

/* A blocked loop cannot fire its own timers: a SIGALRM watchdog ends a hung
 * case with a message instead of waiting for ctest's timeout. */
static void watchdog_fire(int sig)
{
    (void)sig;
    static const char m[] = "watchdog: the event loop hung (blocked in its poll)\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    _exit(1);
}
static void watchdog(unsigned seconds)
{
    signal(SIGALRM, watchdog_fire);
    alarm(seconds * WD_SCALE);   /* sanitizer builds run 5-20x slower */
}

static weft_loop_t *new_loop(void)
{
    weft_loop_t *l = NULL;
    CHECK_EQ(weft_loop_new(&l), 0);
    return l;
}

static int stop_cb(void *arg)
{
    weft_loop_stop(arg);
    return 0;
}

static void run_briefly(weft_loop_t *loop)
{
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
}

static int order[256];
static int norder;
static void order_reset(void) { norder = 0; }

static int record_cb(void *arg)
{
    CHECK(norder < 256);
    order[norder++] = (int)(intptr_t)arg;
    return 0;
}

#define MAXREP 8
static struct {
    int n;
    weft_loop_t *loop[MAXREP];
    int code[MAXREP];
    char message[MAXREP][128];
    const weft_future_t *fut[MAXREP];
} rep;

static void rec_handler(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)ud;
    CHECK(rep.n < MAXREP);
    int i = rep.n++;
    rep.loop[i] = loop;
    rep.code[i] = info->code;
    snprintf(rep.message[i], sizeof rep.message[i], "%s", info->message ? info->message : "(null)");
    rep.fut[i] = info->future;
}

/* ---- call_soon -------------------------------------------------------------------- */

static int schedule_more_cb(void *arg)
{
    weft_loop_t *loop = arg;
    record_cb((void *)(intptr_t)100);
    /* scheduled while running: runs in the next iteration, after a poll */
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)101, NULL), 0);
    return 0;
}

/* test_base_events.py: test_call_soon, test__run_once; asyncio_semantics.md L1, L3 */
static void test_call_soon_fifo(void)
{
    weft_loop_t *loop = new_loop();
    order_reset();
    for (int i = 0; i < 100; i++)
        CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)i, NULL), 0);
    run_briefly(loop);
    CHECK_EQ(norder, 100);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(order[i], i);

    /* only the callbacks ready when the iteration starts run in it */
    order_reset();
    CHECK_EQ(weft_call_soon(loop, schedule_more_cb, loop, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)1, NULL), 0);
    run_briefly(loop);
    CHECK_EQ(norder, 2);
    CHECK_EQ(order[0], 100);
    CHECK_EQ(order[1], 1);
    run_briefly(loop);
    CHECK_EQ(norder, 3);
    CHECK_EQ(order[2], 101);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- timers ---------------------------------------------------------------------- */

static int stop_after_n_target;
static int record_and_maybe_stop(void *arg)
{
    record_cb(arg);
    if (norder == stop_after_n_target)
        weft_loop_stop(weft_running_loop());
    return 0;
}

/* test_base_events.py: test_call_later, test_call_at; asyncio_semantics.md L2 (weft: FIFO among equal deadlines) */
static void test_timer_order(void)
{
    weft_loop_t *loop = new_loop();
    order_reset();
    /* by deadline, whatever the order of scheduling (call_at from one base
     * time, so that a preempted test cannot reorder the deadlines) */
    static const int slots[] = { 5, 1, 4, 2, 3 };
    double base = weft_loop_time(loop);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_call_at(loop, base + slots[i] * 0.01, record_and_maybe_stop, (void *)(intptr_t)slots[i], NULL), 0);
    stop_after_n_target = 5;
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(norder, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(order[i], i + 1);

    /* 20 callbacks at exactly the same call_at time run in scheduling order,
     * interleaved with earlier and later deadlines */
    order_reset();
    double when = weft_loop_time(loop) + 0.02;
    CHECK_EQ(weft_call_at(loop, when + 0.01, record_and_maybe_stop, (void *)(intptr_t)999, NULL), 0);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(weft_call_at(loop, when, record_and_maybe_stop, (void *)(intptr_t)i, NULL), 0);
    CHECK_EQ(weft_call_at(loop, when - 0.01, record_and_maybe_stop, (void *)(intptr_t)-1, NULL), 0);
    stop_after_n_target = 22;
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(norder, 22);
    CHECK_EQ(order[0], -1);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(order[i + 1], i);
    CHECK_EQ(order[21], 999);

    /* expired timers (a deadline in the past, a zero delay) join the ready
     * queue after the callbacks already in it (asyncio _run_once) */
    order_reset();
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)1, NULL), 0);
    CHECK_EQ(weft_call_at(loop, weft_loop_time(loop) - 10, record_cb, (void *)(intptr_t)2, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 0, record_cb, (void *)(intptr_t)3, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)4, NULL), 0);
    run_briefly(loop);
    run_briefly(loop);
    CHECK_EQ(norder, 4);
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 4);
    CHECK_EQ(order[2], 2);
    CHECK_EQ(order[3], 3);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static double cb_time;
static int time_cb(void *arg)
{
    cb_time = weft_loop_time(arg);
    weft_loop_stop(arg);
    return 0;
}

/* Many timers with colliding deadlines, a third of them cancelled (heap
 * removal from the middle): the rest fire by deadline, FIFO among equal
 * deadlines, each exactly once. */
#define HEAP_N 2000
static int heap_fired[HEAP_N];
static int heap_seq[HEAP_N];
static int heap_count;
static int heap_target;
static int heap_cb(void *arg)
{
    int i = (int)(intptr_t)arg;
    heap_fired[i]++;
    heap_seq[heap_count++] = i;
    if (heap_count == heap_target)
        weft_loop_stop(weft_running_loop());
    return 0;
}

static void test_timer_heap_random(void)
{
    weft_loop_t *loop = new_loop();
    static double when[HEAP_N];
    static weft_handle_t h[HEAP_N];
    static bool cancelled[HEAP_N];
    memset(heap_fired, 0, sizeof heap_fired);
    heap_count = 0;
    unsigned int rng = 12345;
    double base = weft_loop_time(loop) + 0.01;
    for (int i = 0; i < HEAP_N; i++) {
        rng = rng * 1103515245u + 12345u;
        when[i] = base + (double)((rng >> 16) % 40) * 0.001;   /* 40 distinct deadlines */
        CHECK_EQ(weft_call_at(loop, when[i], heap_cb, (void *)(intptr_t)i, &h[i]), 0);
    }
    int live = HEAP_N;
    for (int i = 0; i < HEAP_N; i++) {
        rng = rng * 1103515245u + 12345u;
        cancelled[i] = ((rng >> 16) % 3) == 0;
        if (cancelled[i]) {
            CHECK_EQ(weft_handle_cancel(h[i]), 1);
            live--;
        }
    }
    heap_target = live;
    watchdog(30);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    alarm(0);
    CHECK_EQ(heap_count, live);
    for (int i = 0; i < HEAP_N; i++)
        CHECK_EQ(heap_fired[i], cancelled[i] ? 0 : 1);
    for (int k = 1; k < heap_count; k++) {
        int a = heap_seq[k - 1], b = heap_seq[k];
        CHECK(when[a] <= when[b]);
        if (when[a] == when[b])
            CHECK(a < b);   /* scheduled earlier, runs earlier */
    }
    for (int i = 0; i < HEAP_N; i++)
        CHECK_EQ(weft_handle_cancel(h[i]), 0);   /* all spent */
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* A timer whose deadline has already passed when the loop has nothing else to
 * do must still fire (the loop must not block in its poll).
 * test_base_events.py: test_call_later_negative_delays (a negative delay is a
 * deadline in the past: the earlier deadline runs first, ['b', 'a']). */
static void test_timer_already_due(void)
{
    weft_loop_t *loop = new_loop();
    watchdog(10);
    order_reset();
    CHECK_EQ(weft_call_later(loop, 0, record_cb, (void *)(intptr_t)1, NULL), 0);
    CHECK_EQ(weft_call_later(loop, -1, record_cb, (void *)(intptr_t)2, NULL), 0);
    CHECK_EQ(weft_call_at(loop, weft_loop_time(loop) - 5, stop_cb, loop, NULL), 0);
    struct timespec ts = { 0, 2 * 1000 * 1000 };
    nanosleep(&ts, NULL);   /* all three are due before the loop starts */
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(norder, 2);
    CHECK_EQ(order[0], 2);
    CHECK_EQ(order[1], 1);

    /* a deadline that passes while callbacks run, then an idle loop */
    order_reset();
    CHECK_EQ(weft_call_later(loop, 0.001, stop_cb, loop, NULL), 0);
    nanosleep(&ts, NULL);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    alarm(0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* test_base_events.py: test_time_and_call_at */
static void test_time_and_call_at(void)
{
    weft_loop_t *loop = new_loop();
    double delay = 0.1;
    double when = weft_loop_time(loop) + delay;
    CHECK_EQ(weft_call_at(loop, when, time_cb, loop, NULL), 0);
    double t0 = weft_loop_time(loop);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    double dt = weft_loop_time(loop) - t0;
    CHECK(dt >= delay - 0.05);       /* CPython's tolerance: test_utils.CLOCK_RES */
    CHECK(cb_time >= when - 1e-6);   /* the precise check: never before its deadline */

    /* the clock: monotonic, seconds and nanoseconds agree */
    double prev = weft_loop_time(loop);
    for (int i = 0; i < 1000; i++) {
        double t = weft_loop_time(loop);
        CHECK(t >= prev);
        prev = t;
    }
    uint64_t ns = weft_loop_time_ns(loop);
    double s = weft_loop_time(loop);
    CHECK(fabs(s - (double)ns / 1e9) < 0.05);
    uint64_t ns2 = weft_loop_time_ns(loop);
    CHECK(ns2 >= ns);
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    CHECK(weft_loop_time(loop) - s >= 0.019);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- handles ------------------------------------------------------------------- */

/* test_events.py: test_handle, test_timer (cancel); test_base_events.py: test__add_callback_cancelled_handle */
static void test_handle_cancel(void)
{
    weft_loop_t *loop = new_loop();
    order_reset();
    weft_handle_t h1, h2, h3, ht;
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)1, &h1), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)2, &h2), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)3, &h3), 0);
    CHECK_EQ(weft_call_later(loop, 0.001, record_cb, (void *)(intptr_t)4, &ht), 0);
    CHECK_EQ(weft_handle_cancel(h2), 1);   /* before it runs */
    CHECK_EQ(weft_handle_cancel(h2), 0);   /* second time */
    CHECK_EQ(weft_handle_cancel(ht), 1);   /* a timer */
    CHECK_EQ(weft_handle_cancel(ht), 0);
    run_briefly(loop);
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    run_briefly(loop);
    CHECK_EQ(norder, 2);
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 3);
    CHECK_EQ(weft_handle_cancel(h1), 0);   /* after it ran */
    CHECK_EQ(weft_handle_cancel(h3), 0);

    /* stale handles: the slot was reused by a new callback, which must still run */
    order_reset();
    weft_handle_t fresh[8];
    for (int i = 0; i < 8; i++)
        CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)(10 + i), &fresh[i]), 0);
    CHECK_EQ(weft_handle_cancel(h1), 0);
    CHECK_EQ(weft_handle_cancel(h2), 0);
    CHECK_EQ(weft_handle_cancel(h3), 0);
    CHECK_EQ(weft_handle_cancel(ht), 0);
    weft_handle_t zero = { 0 };
    CHECK_EQ(weft_handle_cancel(zero), 0);
    run_briefly(loop);
    CHECK_EQ(norder, 8);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(order[i], 10 + i);

    /* a handle cancelled by an earlier callback of the same iteration */
    order_reset();
    weft_handle_t victim;
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)1, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)2, &victim), 0);
    CHECK_EQ(weft_handle_cancel(victim), 1);
    /* a timer with an infinite delay never fires and can be cancelled */
    weft_handle_t forever;
    CHECK_EQ(weft_call_later(loop, INFINITY, record_cb, (void *)(intptr_t)3, &forever), 0);
    run_briefly(loop);
    CHECK_EQ(norder, 1);
    CHECK_EQ(weft_handle_cancel(forever), 1);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static weft_handle_t later_victim;
static int cancel_other_cb(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_handle_cancel(later_victim), 1);
    return 0;
}

/* A callback cancels one queued after it in the same iteration. */
static void test_handle_cancel_same_iteration(void)
{
    weft_loop_t *loop = new_loop();
    order_reset();
    CHECK_EQ(weft_call_soon(loop, cancel_other_cb, NULL, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)7, &later_victim), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)8, NULL), 0);
    run_briefly(loop);
    CHECK_EQ(norder, 1);
    CHECK_EQ(order[0], 8);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- failing callbacks --------------------------------------------------------------- */

static int failing_cb(void *arg)
{
    (void)arg;
    return -4321;
}

/* test_events.py: test_callback_with_exception; test_base_events.py: test_set_exc_handler_custom,
 * test_default_exc_handler_callback */
static void test_failing_callback(void)
{
    weft_loop_t *loop = new_loop();
    weft_loop_set_exception_handler(loop, rec_handler, NULL);
    memset(&rep, 0, sizeof rep);
    order_reset();
    CHECK_EQ(weft_call_soon(loop, failing_cb, NULL, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)1, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 0.001, failing_cb, NULL, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 0.002, record_cb, (void *)(intptr_t)2, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 0.01, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);   /* the loop goes on */
    CHECK_EQ(norder, 2);
    CHECK_EQ(rep.n, 2);
    for (int i = 0; i < 2; i++) {
        CHECK(rep.loop[i] == loop);
        CHECK_EQ(rep.code[i], -4321);
        CHECK(strstr(rep.message[i], "callback") != NULL);   /* "Exception in callback" */
    }
    /* weft_loop_call_exception_handler goes to the same handler */
    weft_error_info_t info = { .message = "custom", .code = -1 };
    weft_loop_call_exception_handler(loop, &info);
    CHECK_EQ(rep.n, 3);
    CHECK_STR(rep.message[2], "custom");
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- run_until_complete, stop, run_forever ------------------------------------------- */

static int set_result_cb(void *arg)
{
    return weft_future_set_result(arg, WEFT_VALUE_INT(31));
}
static int set_exc_cb(void *arg)
{
    return weft_future_set_exception(arg, -777, "boom");
}
static int cancel_fut_cb(void *arg)
{
    return weft_future_cancel(arg, "c") == 1 ? 0 : -1;
}

/* test_events.py: test_run_until_complete, test_run_until_complete_stopped;
 * test_base_events.py: test_run_until_complete_loop */
static void test_run_until_complete(void)
{
    weft_loop_t *loop = new_loop();
    weft_future_t *f;
    weft_value_t v = WEFT_VALUE_INT(0);

    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_call_later(loop, 0.01, set_result_cb, f, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, f, &v), 0);
    CHECK_EQ(v.i, 31);
    CHECK(!weft_loop_is_running(loop));
    /* already done: returns at once */
    v.i = 0;
    CHECK_EQ(weft_loop_run_until_complete(loop, f, &v), 0);
    CHECK_EQ(v.i, 31);
    weft_future_release(f);

    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_call_soon(loop, set_exc_cb, f, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, f, &v), -777);
    CHECK_STR(weft_future_message(f), "boom");
    weft_future_release(f);

    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_call_soon(loop, cancel_fut_cb, f, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, f, &v), WEFT_ECANCELED);
    weft_future_release(f);

    /* stopped before the future completed */
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_call_soon(loop, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, f, &v), WEFT_ESTOPPED);
    CHECK(!weft_future_done(f));
    /* and it can be run again to completion */
    CHECK_EQ(weft_call_soon(loop, set_result_cb, f, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, f, &v), 0);
    weft_future_release(f);

    /* a future of another loop */
    weft_loop_t *other = new_loop();
    CHECK_EQ(weft_future_new(other, &f), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, f, &v), WEFT_EWRONGLOOP);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(other), 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static int stop_and_schedule_cb(void *arg)
{
    weft_loop_t *loop = arg;
    record_cb((void *)(intptr_t)1);
    CHECK_EQ(weft_loop_stop(loop), 0);
    CHECK(weft_loop_is_running(loop));   /* stop is a request */
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)3, NULL), 0);
    return 0;
}

/* asyncio_semantics.md L6: stop() lets the current iteration finish */
static void test_stop_in_run_forever(void)
{
    weft_loop_t *loop = new_loop();
    order_reset();
    CHECK_EQ(weft_call_soon(loop, stop_and_schedule_cb, loop, NULL), 0);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)2, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK(!weft_loop_is_running(loop));
    CHECK_EQ(norder, 2);   /* 1 and 2 ran in the stopping iteration; 3 waits */
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 2);
    run_briefly(loop);
    CHECK_EQ(norder, 3);
    CHECK_EQ(order[2], 3);
    CHECK_EQ(weft_loop_free(loop), 0);
}

static int chain_cb(void *arg)
{
    weft_loop_t *loop = arg;
    record_cb((void *)(intptr_t)1);
    CHECK_EQ(weft_call_soon(loop, record_cb, (void *)(intptr_t)2, NULL), 0);
    return 0;
}

/* test_base_events.py: test_run_forever_pre_stopped */
static void test_run_forever_pre_stopped(void)
{
    weft_loop_t *loop = new_loop();
    order_reset();
    CHECK_EQ(weft_call_soon(loop, chain_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_stop(loop), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);   /* exactly one iteration */
    CHECK_EQ(norder, 1);
    CHECK_EQ(order[0], 1);

    /* with nothing to do it returns at once (polls with timeout 0) */
    CHECK_EQ(weft_call_later(loop, 3600, record_cb, (void *)(intptr_t)9, NULL), 0);
    CHECK_EQ(weft_loop_stop(loop), 0);
    double t0 = weft_loop_time(loop);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK(weft_loop_time(loop) - t0 < 600);   /* a hang check: blocking would wait for the 3600 s timer */
    CHECK_EQ(norder, 2);   /* the callback 2 of the previous run */
    CHECK_EQ(order[1], 2);
    /* the stop request was consumed: a later run does not stop at once */
    t0 = weft_loop_time(loop);
    CHECK_EQ(weft_call_later(loop, 0.02, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK(weft_loop_time(loop) - t0 >= 0.019);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- running / closing -------------------------------------------------------------- */

struct inside { weft_loop_t *loop; int close_rc, free_rc, run_rc, rte_rc, getrl_rc; weft_loop_t *got, *evl; bool running; };

static int inside_cb(void *arg)
{
    struct inside *in = arg;
    in->close_rc = weft_loop_close(in->loop);
    in->free_rc = weft_loop_free(in->loop);
    in->run_rc = weft_loop_run_forever(in->loop);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(in->loop, &f), 0);
    in->rte_rc = weft_loop_run_until_complete(in->loop, f, NULL);
    weft_future_release(f);
    in->getrl_rc = weft_get_running_loop(&in->got);
    in->evl = weft_get_event_loop();
    in->running = weft_loop_is_running(in->loop);
    weft_loop_stop(in->loop);
    return 0;
}

/* test_events.py: test_close_running_event_loop, test_close; test_base_events.py: test_close;
 * test_events.py: test_get_event_loop_returns_running_loop, test_set_event_loop */
static void test_running_and_close(void)
{
    weft_loop_t *loop = new_loop();
    weft_loop_t *got = (weft_loop_t *)(uintptr_t)1;
    CHECK_EQ(weft_get_running_loop(&got), WEFT_ENOLOOP);
    CHECK(got == NULL);
    CHECK(weft_running_loop() == NULL);
    CHECK(!weft_loop_is_running(loop));
    CHECK(!weft_loop_is_closed(loop));

    /* set_event_loop / get_event_loop */
    CHECK(weft_get_event_loop() == NULL);
    weft_loop_t *other = new_loop();
    weft_set_event_loop(other);
    CHECK(weft_get_event_loop() == other);

    struct inside in = { .loop = loop };
    CHECK_EQ(weft_call_soon(loop, inside_cb, &in, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(in.close_rc, WEFT_EBUSY);   /* Cannot close a running event loop */
    CHECK_EQ(in.free_rc, WEFT_EBUSY);
    CHECK_EQ(in.run_rc, WEFT_EBUSY);     /* This event loop is already running */
    CHECK_EQ(in.rte_rc, WEFT_EBUSY);
    CHECK_EQ(in.getrl_rc, 0);
    CHECK(in.got == loop);
    CHECK(in.evl == loop);                /* the running loop wins over the set one */
    CHECK(in.running);
    CHECK(!weft_loop_is_closed(loop));

    CHECK(weft_get_event_loop() == other);
    weft_set_event_loop(NULL);
    CHECK(weft_get_event_loop() == NULL);

    CHECK_EQ(weft_loop_close(loop), 0);
    CHECK(weft_loop_is_closed(loop));
    CHECK_EQ(weft_loop_close(loop), 0);   /* more than once */
    CHECK_EQ(weft_loop_close(loop), 0);
    CHECK_EQ(weft_loop_run_forever(loop), WEFT_ECLOSED);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), WEFT_ECLOSED);
    CHECK_EQ(weft_loop_run_until_complete(loop, NULL, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_loop_free(loop), 0);
    CHECK_EQ(weft_loop_free(other), 0);
}

struct two_loops { weft_loop_t *a, *b; int rc; };
static int run_other_cb(void *arg)
{
    struct two_loops *p = arg;
    p->rc = weft_loop_run_forever(p->b);
    weft_loop_stop(p->a);
    return 0;
}

/* test_base_events.py: test_running_loop_within_a_loop (another loop on this thread) */
static void test_run_inside_other_loop(void)
{
    weft_loop_t *a = new_loop(), *b = new_loop();
    struct two_loops p = { a, b, 0 };
    CHECK_EQ(weft_call_soon(a, run_other_cb, &p, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(a), 0);
    CHECK_EQ(p.rc, WEFT_ENESTED);
    CHECK_EQ(weft_loop_free(a), 0);
    CHECK_EQ(weft_loop_free(b), 0);
}

/* ---- call_soon_threadsafe ------------------------------------------------------------ */

#define TS_THREADS 4
/* 10,000 per thread as asked; the count is the same under sanitizers (fast enough). */
#define TS_PER_THREAD 10000

static struct {
    weft_loop_t *loop;
    pthread_t loop_thread;
    unsigned char hits[TS_THREADS][TS_PER_THREAD];   /* loop thread only */
    int last_seq[TS_THREADS];                          /* loop thread only */
    int total;                                         /* loop thread only */
    int wrong_thread, out_of_order, dup;
    pthread_t threads[TS_THREADS];
    int start_rc[TS_THREADS];
} ts;

static int ts_cb(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int th = (int)(v / TS_PER_THREAD), seq = (int)(v % TS_PER_THREAD);
    if (!pthread_equal(pthread_self(), ts.loop_thread))
        ts.wrong_thread++;
    if (ts.hits[th][seq]++)
        ts.dup++;
    if (seq <= ts.last_seq[th])
        ts.out_of_order++;   /* one producer's callbacks keep their order */
    ts.last_seq[th] = seq;
    if (++ts.total == TS_THREADS * TS_PER_THREAD)
        weft_loop_stop(ts.loop);
    return 0;
}

static void *ts_producer(void *arg)
{
    int th = (int)(intptr_t)arg;
    /* give the loop time to go idle (blocked in its poll) first */
    struct timespec d = { 0, 30 * 1000 * 1000 };
    nanosleep(&d, NULL);
    int rc = 0;
    for (int i = 0; i < TS_PER_THREAD && rc == 0; i++)
        rc = weft_call_soon_threadsafe(ts.loop, ts_cb, (void *)(uintptr_t)(th * TS_PER_THREAD + i));
    return (void *)(intptr_t)rc;
}

static int start_producers_cb(void *arg)
{
    (void)arg;
    for (int i = 0; i < TS_THREADS; i++)
        ts.start_rc[i] = pthread_create(&ts.threads[i], NULL, ts_producer, (void *)(intptr_t)i);
    return 0;
}

static int watchdog_fired;
static int watchdog_cb(void *arg)
{
    watchdog_fired = 1;
    weft_loop_stop(arg);
    return 0;
}

/* test_events.py: test_call_soon_threadsafe; asyncio_semantics.md L6 (wakes the loop) */
static void test_call_soon_threadsafe(void)
{
    memset(&ts, 0, sizeof ts);
    for (int i = 0; i < TS_THREADS; i++)
        ts.last_seq[i] = -1;
    ts.loop = new_loop();
    ts.loop_thread = pthread_self();
    /* threads start from inside the loop, which then has nothing to do: only
     * the cross-thread wakeup can make progress (the watchdog is far away) */
    CHECK_EQ(weft_call_soon(ts.loop, start_producers_cb, NULL, NULL), 0);
    weft_handle_t wd;
    CHECK_EQ(weft_call_later(ts.loop, 20, watchdog_cb, ts.loop, &wd), 0);
    watchdog(60);
    double t0 = weft_loop_time(ts.loop);
    CHECK_EQ(weft_loop_run_forever(ts.loop), 0);
    double dt = weft_loop_time(ts.loop) - t0;
    for (int i = 0; i < TS_THREADS; i++) {
        CHECK_EQ(ts.start_rc[i], 0);
        void *ret;
        CHECK_EQ(pthread_join(ts.threads[i], &ret), 0);
        CHECK_EQ((int)(intptr_t)ret, 0);
    }
    CHECK_EQ(watchdog_fired, 0);   /* done before the 20 s timer: no tighter bound on dt */
    (void)dt;
    CHECK_EQ(ts.total, TS_THREADS * TS_PER_THREAD);
    CHECK_EQ(ts.wrong_thread, 0);
    CHECK_EQ(ts.dup, 0);
    CHECK_EQ(ts.out_of_order, 0);
    for (int th = 0; th < TS_THREADS; th++)
        for (int i = 0; i < TS_PER_THREAD; i++)
            CHECK_EQ(ts.hits[th][i], 1);
    CHECK_EQ(weft_handle_cancel(wd), 1);

    /* from the loop thread itself, while not running: runs at the next run */
    order_reset();
    CHECK_EQ(weft_call_soon_threadsafe(ts.loop, record_cb, (void *)(intptr_t)5), 0);
    run_briefly(ts.loop);
    CHECK_EQ(norder, 1);
    CHECK_EQ(order[0], 5);

    CHECK_EQ(weft_loop_close(ts.loop), 0);
    CHECK_EQ(weft_call_soon_threadsafe(ts.loop, record_cb, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_loop_free(ts.loop), 0);
    alarm(0);
}

static int idle_wake_hits;
static int idle_cb(void *arg)
{
    idle_wake_hits++;
    weft_loop_stop(arg);
    return 0;
}

static void *late_sender(void *arg)
{
    struct timespec d = { 0, 50 * 1000 * 1000 };
    nanosleep(&d, NULL);
    return (void *)(intptr_t)weft_call_soon_threadsafe(arg, idle_cb, arg);
}

/* A loop with nothing scheduled but a far watchdog sleeps in its poll and is
 * woken by call_soon_threadsafe. */
static void test_threadsafe_wakes_idle_loop(void)
{
    weft_loop_t *loop = new_loop();
    pthread_t th;
    idle_wake_hits = 0;
    watchdog_fired = 0;
    weft_handle_t wd;
    CHECK_EQ(weft_call_later(loop, 10, watchdog_cb, loop, &wd), 0);
    CHECK_EQ(pthread_create(&th, NULL, late_sender, loop), 0);
    double t0 = weft_loop_time(loop);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    void *ret;
    CHECK_EQ(pthread_join(th, &ret), 0);
    CHECK_EQ((int)(intptr_t)ret, 0);
    CHECK_EQ(watchdog_fired, 0);
    CHECK_EQ(idle_wake_hits, 1);   /* woken by the sender, not by the 10 s watchdog timer */
    (void)t0;
    CHECK_EQ(weft_handle_cancel(wd), 1);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* Threads keep calling call_soon_threadsafe while the owner closes the loop:
 * every call returns 0 or WEFT_ECLOSED, nothing crashes, nothing leaks
 * (accepted callbacks that never ran are freed by close). */
#define RACE_THREADS 4
static struct {
    weft_loop_t *loop;
    int go;            /* atomic */
    long accepted[RACE_THREADS], refused[RACE_THREADS], other[RACE_THREADS];
    long ran;          /* loop thread */
} race;

static int race_cb(void *arg)
{
    (void)arg;
    race.ran++;
    return 0;
}

static void *race_sender(void *arg)
{
    int th = (int)(intptr_t)arg;
    while (!__atomic_load_n(&race.go, __ATOMIC_ACQUIRE))
        ;
    struct timespec pause = { 0, 100 * 1000 };
    for (;;) {
        int rc = weft_call_soon_threadsafe(race.loop, race_cb, NULL);
        if (rc == 0) {
            /* bounded: the producers must not outrun the loop without limit
             * (sanitizer builds drain slowly); past the cap, keep a trickle
             * going so that sends still race with the close */
            if (++race.accepted[th] > 5000 || (race.accepted[th] & 63) == 0)
                nanosleep(&pause, NULL);
        } else if (rc == WEFT_ECLOSED) {
            if (++race.refused[th] > 100)
                break;
        } else {
            race.other[th]++;
            break;
        }
    }
    return NULL;
}

static void test_threadsafe_during_close(void)
{
    memset(&race, 0, sizeof race);
    race.loop = new_loop();
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, race_sender, (void *)(intptr_t)i), 0);
    __atomic_store_n(&race.go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 20; i++)
        run_briefly(race.loop);   /* take some while running */
    struct timespec d = { 0, 2 * 1000 * 1000 };
    nanosleep(&d, NULL);          /* let the inbox fill up again */
    CHECK_EQ(weft_loop_close(race.loop), 0);
    long accepted = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_EQ(race.other[i], 0);
        CHECK(race.refused[i] > 100);
        accepted += race.accepted[i];
    }
    CHECK(race.ran <= accepted);
    CHECK_EQ(weft_call_soon_threadsafe(race.loop, race_cb, NULL), WEFT_ECLOSED);
    CHECK_EQ(weft_loop_free(race.loop), 0);
}

/* Two standalone loops on two threads at once: the running loop, the current
 * task and the event loop are per thread, and tasks of each loop only ever see
 * their own (weft keeps thread state out of registers across switches). */
#define PT_TASKS 100
#define PT_ROUNDS 50
struct per_thread {
    weft_loop_t *loop;
    weft_task_t *tasks[PT_TASKS];
    long steps;
    int errors;
    int start_evl_null;
};

static int pt_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct per_thread *p = arg;
    weft_task_t *me = weft_current_task();
    for (int i = 0; i < PT_ROUNDS; i++) {
        weft_loop_t *l = NULL;
        if (weft_get_running_loop(&l) != 0 || l != p->loop || weft_get_event_loop() != p->loop)
            p->errors++;
        if (weft_current_task() != me || weft_loop_current_task(p->loop) != me)
            p->errors++;
        p->steps++;
        if (weft_yield() != 0)
            p->errors++;
    }
    return 0;
}

static void *pt_thread(void *arg)
{
    struct per_thread *p = arg;
    p->start_evl_null = weft_get_event_loop() == NULL && weft_running_loop() == NULL;
    if (weft_loop_new(&p->loop) != 0)
        return NULL;
    weft_set_event_loop(p->loop);
    for (int i = 0; i < PT_TASKS; i++)
        if (weft_loop_create_task(p->loop, &p->tasks[i], pt_coro, p, NULL) != 0)
            p->errors++;
    for (int i = 0; i < PT_TASKS; i++) {
        if (weft_loop_run_until_complete(p->loop, p->tasks[i], NULL) != 0)
            p->errors++;
        weft_task_release(p->tasks[i]);
    }
    weft_set_event_loop(NULL);
    weft_loop_free(p->loop);
    return NULL;
}

static void test_loops_on_two_threads(void)
{
    static struct per_thread pt[2];
    memset(pt, 0, sizeof pt);
    pthread_t th[2];
    weft_loop_t *mine = new_loop();
    weft_set_event_loop(mine);   /* not visible to the other threads */
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, pt_thread, &pt[i]), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        CHECK(pt[i].start_evl_null);
        CHECK_EQ(pt[i].errors, 0);
        CHECK_EQ(pt[i].steps, (long)PT_TASKS * PT_ROUNDS);
    }
    CHECK(weft_get_event_loop() == mine);
    weft_set_event_loop(NULL);
    CHECK_EQ(weft_loop_free(mine), 0);
}

struct wrong_thread { weft_loop_t *loop; int rc_soon, rc_later; };
static void *wrong_thread_fn(void *arg)
{
    struct wrong_thread *w = arg;
    w->rc_soon = weft_call_soon(w->loop, record_cb, NULL, NULL);
    w->rc_later = weft_call_later(w->loop, 0.001, record_cb, NULL, NULL);
    return NULL;
}

static int spawn_wrong_thread_cb(void *arg)
{
    struct wrong_thread *w = arg;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, wrong_thread_fn, w), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);   /* the loop is running meanwhile */
    weft_loop_stop(w->loop);
    return 0;
}

/* loop.h thread rules: non-threadsafe calls from another thread while the loop
 * runs are refused (asyncio debug mode's check, D2) */
static void test_wrong_thread(void)
{
    struct wrong_thread w = { .loop = new_loop() };
    CHECK_EQ(weft_call_soon(w.loop, spawn_wrong_thread_cb, &w, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(w.loop), 0);
    CHECK_EQ(w.rc_soon, WEFT_EWRONGLOOP);
    CHECK_EQ(w.rc_later, WEFT_EWRONGLOOP);
    CHECK_EQ(weft_loop_free(w.loop), 0);
}

/* ---- closing with work still scheduled ---------------------------------------------- */

static int must_not_run(void *arg)
{
    (void)arg;
    CHECK(0);
    return 0;
}

static void must_not_run_done(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    CHECK(0);
}

static int dtor_calls;
static void counting_dtor(void *p)
{
    (void)p;
    dtor_calls++;
}

/* close() drops ready callbacks, timers and scheduled done callbacks without
 * running them, and frees everything (ASan checks the leaks) */
static void test_close_drops_scheduled_work(void)
{
    weft_loop_t *loop = new_loop();
    int payload;
    dtor_calls = 0;
    CHECK_EQ(weft_call_soon(loop, must_not_run, NULL, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 0.001, must_not_run, NULL, NULL), 0);
    CHECK_EQ(weft_call_later(loop, 3600, must_not_run, NULL, NULL), 0);
    CHECK_EQ(weft_call_soon_threadsafe(loop, must_not_run, NULL), 0);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_add_done_callback(f, must_not_run_done, NULL), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_OWNED(&payload, counting_dtor)), 0);
    weft_future_release(f);   /* the scheduled done callback holds the last reference */
    CHECK_EQ(dtor_calls, 0);
    CHECK_EQ(weft_loop_close(loop), 0);
    CHECK_EQ(dtor_calls, 1);   /* released by close */
    CHECK_EQ(weft_loop_free(loop), 0);

    /* a future that outlives weft_loop_free stays a valid object */
    loop = new_loop();
    CHECK_EQ(weft_future_new(loop, &f), 0);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_OWNED(&payload, counting_dtor)), 0);
    CHECK_EQ(weft_loop_free(loop), 0);
    CHECK(weft_future_done(f));
    CHECK(weft_future_get_loop(f) == loop);
    CHECK_EQ(weft_future_set_result(f, WEFT_VALUE_INT(1)), WEFT_ECLOSED);
    weft_future_release(f);   /* frees the loop's memory too */
    CHECK_EQ(dtor_calls, 2);
}

/* ---- destroying pending tasks ------------------------------------------------------- */

static int pending_forever(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_await(arg, NULL);
}

static int never_started_ran;
static int never_started(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    never_started_ran = 1;
    return 0;
}

/* test_tasks.py: test_log_destroyed_pending_task; asyncio_semantics.md T9 */
static void test_close_with_pending_task(void)
{
    weft_loop_t *loop = new_loop();
    weft_loop_set_exception_handler(loop, rec_handler, NULL);
    memset(&rep, 0, sizeof rep);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(loop, &f), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, pending_forever, f, NULL), 0);
    run_briefly(loop);   /* the task now waits for f */
    CHECK_EQ(weft_task_state(t), WEFT_TASK_SUSPENDED);
    CHECK_EQ(weft_all_tasks(loop, NULL, 0), 1);
    CHECK_EQ(weft_loop_close(loop), 0);
    CHECK_EQ(rep.n, 1);
    CHECK_STR(rep.message[0], "Task was destroyed but it is pending!");
    CHECK(rep.fut[0] == t);
    CHECK(rep.loop[0] == loop);
    CHECK(weft_future_done(t));   /* a valid object, ended */
    weft_task_release(t);
    weft_future_release(f);
    CHECK_EQ(weft_loop_free(loop), 0);

    /* a task that never ran is destroyed too, without running */
    loop = new_loop();
    weft_loop_set_exception_handler(loop, rec_handler, NULL);
    memset(&rep, 0, sizeof rep);
    never_started_ran = 0;
    CHECK_EQ(weft_loop_create_task(loop, NULL, never_started, NULL, NULL), 0);
    CHECK_EQ(weft_loop_free(loop), 0);
    CHECK_EQ(never_started_ran, 0);
    CHECK_EQ(rep.n, 1);
    CHECK_STR(rep.message[0], "Task was destroyed but it is pending!");
}

/* A task of loop A waits on a future of loop B (cross-loop await: weft_await
 * no longer refuses it); A is closed, which destroys the pending task; then B
 * completes the future. The destroyed task must not be touched (nor its
 * reference to the future leaked). */
static void test_close_task_waiting_on_other_loop(void)
{
    weft_loop_t *a = new_loop(), *b = new_loop();
    weft_loop_set_exception_handler(a, rec_handler, NULL);
    memset(&rep, 0, sizeof rep);
    weft_future_t *g;
    CHECK_EQ(weft_future_new(b, &g), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(a, &t, pending_forever, g, NULL), 0);
    run_briefly(a);
    if (weft_task_awaiting(t) != g) {   /* refused (WEFT_EWRONGLOOP): nothing to check */
        weft_task_release(t);
        weft_future_release(g);
        CHECK_EQ(weft_loop_free(a), 0);
        CHECK_EQ(weft_loop_free(b), 0);
        return;
    }
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(a), 0);   /* "Task was destroyed but it is pending!" */
    CHECK_EQ(rep.n, 1);
    CHECK_EQ(weft_future_set_result(g, WEFT_VALUE_INT(1)), 0);
    run_briefly(b);
    weft_future_release(g);
    CHECK_EQ(weft_loop_free(b), 0);
}

int main(int argc, char **argv)
{
    RUN(test_call_soon_fifo);
    RUN(test_timer_order);
    RUN(test_timer_heap_random);
    RUN(test_timer_already_due);
    RUN(test_time_and_call_at);
    RUN(test_handle_cancel);
    RUN(test_handle_cancel_same_iteration);
    RUN(test_failing_callback);
    RUN(test_run_until_complete);
    RUN(test_stop_in_run_forever);
    RUN(test_run_forever_pre_stopped);
    RUN(test_running_and_close);
    RUN(test_run_inside_other_loop);
    RUN(test_call_soon_threadsafe);
    RUN(test_threadsafe_wakes_idle_loop);
    RUN(test_threadsafe_during_close);
    RUN(test_wrong_thread);
    RUN(test_loops_on_two_threads);
    RUN(test_close_drops_scheduled_work);
    RUN(test_close_with_pending_task);
    RUN(test_close_task_waiting_on_other_loop);
    return 0;
}
