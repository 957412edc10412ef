/* weft_queue_t: CPython's test_queues.py (QueueBasicTests, QueueGetTests,
 * QueuePutTests, LifoQueueTests, PriorityQueueTests, _QueueJoinTestMixin and
 * 3.13's _QueueShutdownTestMixin for all three kinds), the hand-off rules
 * (a cancelled getter gives its item back where it was), and cross-loop
 * cases. Every test is bounded by an alarm() watchdog. */
#include "check.h"
#include "watchdog.h"
#include "sync_util.h"
#include "weft.h"

#include <pthread.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */
/* await a task that returns an item in out->i (or an error) */
static int await_item(weft_task_t *t, intptr_t *item)
{
    weft_value_t v = { .i = -1 };
    int rc = weft_await(t, &v);
    if (item)
        *item = (intptr_t)v.i;
    weft_task_release(t);
    return rc;
}

#define P(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

static weft_queue_t *Q;
static int kind;   /* weft_queue_kind_t of the current case */
static int drops;

static int cmp_int(const void *a, const void *b, void *ud)
{
    (void)ud;
    return I(a) < I(b) ? -1 : I(a) > I(b);
}

static void count_drop(void *item, void *ud)
{
    (void)item;
    (void)ud;
    drops++;
}

static weft_queue_t *new_q(int k, size_t maxsize)
{
    weft_queue_t *q;
    weft_queue_opts_t o = { .kind = k, .maxsize = maxsize, .cmp = cmp_int, .drop = count_drop };
    CHECK_EQ(weft_queue_new_opts(&o, &q), 0);
    return q;
}

static int get_coro(void *arg, weft_value_t *out)
{
    void *item;
    int rc = weft_queue_get(arg ? arg : Q, &item);
    if (rc < 0)
        return rc;
    out->i = I(item);
    return 0;
}

static int put_coro(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_queue_put(Q, arg);
}

static intptr_t get_now(void)
{
    void *item = NULL;
    CHECK_EQ(weft_queue_get_nowait(Q, &item), 0);
    return I(item);
}

static intptr_t get_wait(void)
{
    void *item = NULL;
    CHECK_EQ(weft_queue_get(Q, &item), 0);
    return I(item);
}

static void q_case(int k, size_t maxsize, weft_coro_fn fn)
{
    kind = k;
    drops = 0;
    Q = new_q(k, maxsize);
    run_loop(fn, NULL);
    CHECK_EQ(weft_queue_free(Q), 0);
}

/* ==== QueueBasicTests ================================================================ */
static int empty_full_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* test_empty */
    CHECK(weft_queue_empty(Q));
    CHECK_EQ(weft_queue_put(Q, P(1)), 0);
    CHECK(!weft_queue_empty(Q));
    CHECK_EQ(get_wait(), 1);
    CHECK(weft_queue_empty(Q));
    /* test_full */
    CHECK(!weft_queue_full(Q));   /* unbounded: never full */
    weft_queue_t *q1 = new_q(WEFT_QUEUE_FIFO, 1);
    CHECK_EQ(weft_queue_maxsize(q1), 1);
    CHECK_EQ(weft_queue_put(q1, P(1)), 0);
    CHECK(weft_queue_full(q1));
    CHECK_EQ(weft_queue_qsize(q1), 1);
    CHECK_EQ(weft_queue_free(q1), 0);
    CHECK_EQ(drops, 1);   /* freed with an item inside: dropped */
    return 0;
}

static void test_empty_full(void) { q_case(WEFT_QUEUE_FIFO, 0, empty_full_main); }

/* test_order for Queue, LifoQueue (test_order), PriorityQueue (test_order) */
static int order_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int in[] = { 1, 3, 2 };
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_queue_put(Q, P(in[i])), 0);
    intptr_t got[3];
    for (int i = 0; i < 3; i++)
        got[i] = get_wait();
    static const int want[3][3] = { { 1, 3, 2 }, { 2, 3, 1 }, { 1, 2, 3 } };
    for (int i = 0; i < 3; i++)
        CHECK_EQ(got[i], want[kind][i]);
    return 0;
}

static void test_order(void)
{
    q_case(WEFT_QUEUE_FIFO, 0, order_main);
    q_case(WEFT_QUEUE_LIFO, 0, order_main);
    q_case(WEFT_QUEUE_PRIORITY, 0, order_main);
}

/* QueueBasicTests.test_maxsize */
static int have_been_put[8];
static int nput;

static int putter3(void *arg, weft_value_t *out)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        int rc = weft_queue_put(Q, P(i));
        if (rc < 0)
            return rc;
        have_been_put[nput++] = i;
    }
    out->i = 1;
    return 0;
}

static int maxsize_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    nput = 0;
    CHECK_EQ(weft_queue_maxsize(Q), 2);
    weft_task_t *t = spawn(putter3, NULL);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nput, 2);   /* the putter is blocked after putting two items */
    CHECK_EQ(get_wait(), 0);
    CHECK_EQ(weft_yield(), 0);   /* let the putter resume and put the last item */
    CHECK_EQ(nput, 3);
    CHECK_EQ(have_been_put[2], 2);
    CHECK_EQ(get_wait(), 1);
    CHECK_EQ(get_wait(), 2);
    CHECK(weft_future_done(t));
    intptr_t r;
    CHECK_EQ(await_item(t, &r), 0);
    CHECK_EQ(r, 1);
    return 0;
}

static void test_maxsize(void) { q_case(WEFT_QUEUE_FIFO, 2, maxsize_main); }

/* ==== QueueGetTests ==================================================================== */
static weft_event_t *started;

static int getter_signals(void *arg, weft_value_t *out)
{
    (void)arg;
    CHECK_EQ(weft_event_set(started), 0);
    return get_coro(NULL, out);
}

static int put_nowait_cb(void *arg)
{
    return weft_queue_put_nowait(Q, arg);
}

static int get_tests_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* test_blocking_get */
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    CHECK_EQ(get_wait(), 1);
    /* test_blocking_get_wait */
    CHECK_EQ(weft_event_new(&started), 0);
    weft_task_t *t = spawn(getter_signals, NULL);
    CHECK_EQ(weft_event_wait(started), 0);
    CHECK(!weft_future_done(t));
    CHECK_EQ(weft_call_later(weft_running_loop(), 0.01, put_nowait_cb, P(1), NULL), 0);
    intptr_t r;
    CHECK_EQ(await_item(t, &r), 0);
    CHECK_EQ(r, 1);
    CHECK_EQ(weft_event_free(started), 0);
    /* test_nonblocking_get, test_nonblocking_get_exception */
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    CHECK_EQ(get_now(), 1);
    void *item;
    CHECK_EQ(weft_queue_get_nowait(Q, &item), WEFT_EQUEUEEMPTY);
    return 0;
}

static void test_get(void) { q_case(WEFT_QUEUE_FIFO, 0, get_tests_main); }

/* QueueGetTests.test_get_cancelled_race */
static int get_cancelled_race_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t1 = spawn(get_coro, NULL), *t2 = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t1, NULL), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(t1));
    CHECK_EQ(weft_queue_put(Q, P('a')), 0);
    CHECK_EQ(weft_yield(), 0);
    intptr_t r;
    CHECK_EQ(await_item(t2, &r), 0);
    CHECK_EQ(r, 'a');
    CHECK_EQ(await_item(t1, NULL), WEFT_ECANCELED);
    return 0;
}

static void test_get_cancelled_race(void) { q_case(WEFT_QUEUE_FIFO, 0, get_cancelled_race_main); }

/* QueueGetTests.test_get_with_waiting_putters */
static int get_with_waiting_putters_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *pa = spawn(put_coro, P('a')), *pb = spawn(put_coro, P('b'));
    CHECK_EQ(get_wait(), 'a');
    CHECK_EQ(get_wait(), 'b');
    CHECK_EQ(await_item(pa, NULL), 0);
    CHECK_EQ(await_item(pb, NULL), 0);
    return 0;
}

static void test_get_with_waiting_putters(void) { q_case(WEFT_QUEUE_FIFO, 1, get_with_waiting_putters_main); }

/* QueueGetTests.test_why_are_getters_waiting */
static int consumer5(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(get_wait(), i);
    return 0;
}

static int producer5(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_queue_put(Q, P(i)), 0);
    return 0;
}

static int getters_waiting_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *p = spawn(producer5, NULL), *c = spawn(consumer5, NULL);
    CHECK_EQ(await_item(p, NULL), 0);
    CHECK_EQ(await_item(c, NULL), 0);
    return 0;
}

static void test_why_are_getters_waiting(void) { q_case(WEFT_QUEUE_FIFO, 1, getters_waiting_main); }

/* QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters */
static int getters_not_held_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_wait_for_coro(get_coro, NULL, 0.01, NULL), WEFT_ETIMEDOUT);
    /* no getter left: an item put now stays in the queue */
    CHECK_EQ(weft_queue_put_nowait(Q, P(7)), 0);
    CHECK_EQ(weft_queue_qsize(Q), 1);
    CHECK_EQ(get_now(), 7);
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.01), 0);
    void *item;
    int rc = weft_queue_get(Q, &item);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_queue_put_nowait(Q, P(8)), 0);
    CHECK_EQ(get_now(), 8);
    return 0;
}

static void test_cancelled_getters_not_being_held(void) { q_case(WEFT_QUEUE_FIFO, 5, getters_not_held_main); }

/* ==== QueuePutTests ===================================================================== */
static int put_signals(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_event_set(started), 0);
    CHECK_EQ(weft_queue_put(Q, P(1)), 0);
    CHECK_EQ(weft_queue_put(Q, P(2)), 0);
    return 0;
}

static int get_nowait_cb(void *arg)
{
    (void)arg;
    void *item;
    return weft_queue_get_nowait(Q, &item);
}

/* test_blocking_put, test_blocking_put_wait, test_nonblocking_put,
 * test_nonblocking_put_exception */
static int put_tests_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_queue_t *unb = new_q(WEFT_QUEUE_FIFO, 0);
    CHECK_EQ(weft_queue_put(unb, P(1)), 0);   /* no maxsize, won't block */
    CHECK_EQ(weft_queue_put_nowait(unb, P(2)), 0);
    void *item;
    CHECK_EQ(weft_queue_get(unb, &item), 0);
    CHECK_EQ(I(item), 1);
    CHECK_EQ(weft_queue_get_nowait(unb, &item), 0);
    CHECK_EQ(I(item), 2);
    CHECK_EQ(weft_queue_free(unb), 0);
    /* maxsize 1 */
    CHECK_EQ(weft_event_new(&started), 0);
    CHECK_EQ(weft_call_later(weft_running_loop(), 0.01, get_nowait_cb, NULL, NULL), 0);
    weft_task_t *t = spawn(put_signals, NULL);
    CHECK_EQ(weft_event_wait(started), 0);
    CHECK(!weft_future_done(t));
    CHECK_EQ(await_item(t, NULL), 0);
    CHECK_EQ(weft_event_free(started), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(3)), WEFT_EQUEUEFULL);
    CHECK_EQ(get_now(), 2);
    return 0;
}

static void test_put(void) { q_case(WEFT_QUEUE_FIFO, 1, put_tests_main); }

/* QueuePutTests.test_get_cancel_drop_one_pending_reader: the item handed to a
 * reader cancelled before it resumed is not dropped */
static int drop_one_reader_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *reader = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);   /* handed to the reader */
    CHECK_EQ(weft_queue_put_nowait(Q, P(2)), 0);
    CHECK_EQ(weft_task_cancel(reader, NULL), 1);
    intptr_t r;
    int rc = await_item(reader, &r);
    CHECK_EQ(rc, WEFT_ECANCELED);
    reader = spawn(get_coro, NULL);   /* try again */
    CHECK_EQ(await_item(reader, &r), 0);
    CHECK_EQ(r, 1);   /* if we get 2, 1 got dropped */
    CHECK_EQ(get_now(), 2);
    return 0;
}

static void test_get_cancel_drop_one_pending_reader(void) { q_case(WEFT_QUEUE_FIFO, 0, drop_one_reader_main); }

/* QueuePutTests.test_get_cancel_drop_many_pending_readers */
static int drop_many_readers_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *r1 = spawn(get_coro, NULL), *r2 = spawn(get_coro, NULL), *r3 = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(2)), 0);
    CHECK_EQ(weft_task_cancel(r1, NULL), 1);
    CHECK_EQ(await_item(r1, NULL), WEFT_ECANCELED);
    intptr_t a, b;
    CHECK_EQ(await_item(r3, &b), 0);
    CHECK_EQ(await_item(r2, &a), 0);
    CHECK((a == 1 && b == 2) || (a == 2 && b == 1));
    CHECK(weft_queue_empty(Q));
    return 0;
}

static void test_get_cancel_drop_many_pending_readers(void) { q_case(WEFT_QUEUE_FIFO, 0, drop_many_readers_main); }

/* the give-back goes where the item would be had it never left: LIFO bottom,
 * priority order (derived from test_get_cancel_drop_one_pending_reader) */
static int give_back_order_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *reader = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(5)), 0);   /* handed to the reader */
    CHECK_EQ(weft_queue_put_nowait(Q, P(3)), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(7)), 0);
    CHECK_EQ(weft_task_cancel(reader, NULL), 1);
    CHECK_EQ(await_item(reader, NULL), WEFT_ECANCELED);
    CHECK_EQ(weft_queue_qsize(Q), 3);
    static const int want[3][3] = { { 5, 3, 7 }, { 7, 3, 5 }, { 3, 5, 7 } };
    for (int i = 0; i < 3; i++)
        CHECK_EQ(get_now(), want[kind][i]);
    return 0;
}

static void test_give_back_order(void)
{
    q_case(WEFT_QUEUE_FIFO, 0, give_back_order_main);
    q_case(WEFT_QUEUE_LIFO, 0, give_back_order_main);
    q_case(WEFT_QUEUE_PRIORITY, 0, give_back_order_main);
}

/* QueuePutTests.test_put_cancel_drop: a putter cancelled after its slot was
 * freed does not put; trying again works */
static int put_cancel_drop_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    weft_task_t *writer = spawn(put_coro, P(2));   /* has to block (qsize=1) */
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(get_now(), 1);
    CHECK(weft_queue_full(Q));                      /* the freed slot is reserved for the writer */
    CHECK_EQ(weft_queue_put_nowait(Q, P(9)), WEFT_EQUEUEFULL);   /* no barging */
    CHECK_EQ(weft_task_cancel(writer, NULL), 1);
    CHECK_EQ(await_item(writer, NULL), WEFT_ECANCELED);
    CHECK(!weft_queue_full(Q));                     /* the slot came back */
    writer = spawn(put_coro, P(2));                 /* try again */
    CHECK_EQ(await_item(writer, NULL), 0);
    CHECK_EQ(get_now(), 2);
    CHECK_EQ(weft_queue_qsize(Q), 0);
    return 0;
}

static void test_put_cancel_drop(void) { q_case(WEFT_QUEUE_FIFO, 1, put_cancel_drop_main); }

/* QueuePutTests.test_put_cancelled, test_put_with_waiting_getters */
static int put_waiting_getters_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t = spawn(put_coro, P(1));
    CHECK_EQ(get_wait(), 1);
    CHECK(weft_future_done(t));
    CHECK_EQ(await_item(t, NULL), 0);
    t = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_queue_put(Q, P('a')), 0);
    CHECK_EQ(weft_queue_qsize(Q), 0);   /* handed straight to the getter */
    intptr_t r;
    CHECK_EQ(await_item(t, &r), 0);
    CHECK_EQ(r, 'a');
    return 0;
}

static void test_put_with_waiting_getters(void) { q_case(WEFT_QUEUE_FIFO, 0, put_waiting_getters_main); }

/* QueuePutTests.test_put_cancelled_race */
static int put_cancelled_race_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *pa = spawn(put_coro, P('a')), *pb = spawn(put_coro, P('b')), *pc = spawn(put_coro, P('X'));
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(pa));
    CHECK(!weft_future_done(pb));
    CHECK_EQ(weft_task_cancel(pc, NULL), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(pc));
    CHECK_EQ(get_now(), 'a');
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(get_now(), 'b');
    CHECK_EQ(await_item(pb, NULL), 0);
    CHECK_EQ(await_item(pa, NULL), 0);
    CHECK_EQ(await_item(pc, NULL), WEFT_ECANCELED);
    CHECK(weft_queue_empty(Q));
    return 0;
}

static void test_put_cancelled_race(void) { q_case(WEFT_QUEUE_FIFO, 1, put_cancelled_race_main); }

/* QueuePutTests.test_why_are_putters_waiting */
static int drain_getter(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_yield(), 0);
    size_t n = weft_queue_qsize(Q);
    for (size_t i = 0; i < n; i++)
        get_now();
    return 0;
}

static int putters_waiting_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *g = spawn(drain_getter, NULL);
    weft_task_t *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = spawn(put_coro, P(i));
    CHECK_EQ(await_item(g, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(await_item(p[i], NULL), 0);
    CHECK_EQ(get_now(), 2);
    CHECK_EQ(get_now(), 3);
    return 0;
}

static void test_why_are_putters_waiting(void) { q_case(WEFT_QUEUE_FIFO, 2, putters_waiting_main); }

/* QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters,
 * test_cancelled_put_silence_value_error_exception */
static int puts_not_held_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    weft_task_t *t = spawn(put_coro, P(1));
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(await_item(t, NULL), WEFT_ECANCELED);
    CHECK_EQ(get_now(), 1);
    CHECK_EQ(weft_queue_put_nowait(Q, P(2)), 0);   /* no stale putter ahead */
    /* get_nowait() frees the slot for a waiting putter, which is then cancelled */
    t = spawn(put_coro, P(3));
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(get_now(), 2);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(await_item(t, NULL), WEFT_ECANCELED);
    CHECK_EQ(weft_queue_qsize(Q), 0);   /* 3 was not put */
    CHECK_EQ(weft_queue_put_nowait(Q, P(4)), 0);
    CHECK_EQ(get_now(), 4);
    return 0;
}

/* a putter woken for a freed slot finds a getter waiting and hands its item
 * over: the slot is free again and goes to the next putter (derived from
 * QueuePutTests.test_why_are_putters_waiting) */
static int reserved_to_getter_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    weft_task_t *p = spawn(put_coro, P(2));
    CHECK_EQ(weft_yield(), 0);                 /* p waits: full */
    weft_task_t *g1 = spawn(get_coro, NULL), *g2 = spawn(get_coro, NULL), *n = spawn(put_coro, P(3));
    /* g1 takes 1 and reserves the slot for p; g2 waits (empty); n waits (the
     * slot is reserved); p resumes and hands 2 straight to g2 */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(p));
    CHECK(weft_future_done(n));                /* n got the slot p no longer needed */
    intptr_t r;
    CHECK_EQ(await_item(g1, &r), 0);
    CHECK_EQ(r, 1);
    CHECK_EQ(await_item(g2, &r), 0);
    CHECK_EQ(r, 2);
    CHECK_EQ(await_item(p, NULL), 0);
    CHECK_EQ(await_item(n, NULL), 0);
    CHECK_EQ(get_now(), 3);
    return 0;
}

static void test_reserved_slot_handed_to_getter(void) { q_case(WEFT_QUEUE_FIFO, 1, reserved_to_getter_main); }

static void test_cancelled_puts_not_being_held(void) { q_case(WEFT_QUEUE_FIFO, 1, puts_not_held_main); }

/* priority queue: equal items come out in insertion order */
static int cmp_key(const void *a, const void *b, void *ud)
{
    (void)ud;
    intptr_t x = I(a) / 100, y = I(b) / 100;
    return x < y ? -1 : x > y;
}

static void test_priority_stable(void)
{
    weft_queue_t *q;
    CHECK_EQ(weft_priority_queue_new(0, cmp_key, NULL, &q), 0);
    int in[] = { 301, 101, 302, 102, 201, 103, 303, 202 };
    for (int i = 0; i < 8; i++)
        CHECK_EQ(weft_queue_put_nowait(q, P(in[i])), 0);
    int want[] = { 101, 102, 103, 201, 202, 301, 302, 303 };
    for (int i = 0; i < 8; i++) {
        void *item;
        CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
        CHECK_EQ(I(item), want[i]);
    }
    CHECK_EQ(weft_queue_free(q), 0);
    CHECK_EQ(weft_priority_queue_new(0, NULL, NULL, &q), WEFT_EINVAL);
}

/* ==== _QueueJoinTestMixin (Queue, LifoQueue, PriorityQueue) ============================ */
static int accumulator;
static int running;

static int jworker(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    while (running) {
        void *item;
        int rc = weft_queue_get(Q, &item);
        if (rc < 0)
            return rc;
        accumulator += (int)I(item);
        CHECK_EQ(weft_queue_task_done(Q), 0);
    }
    return 0;
}

static int join_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* test_task_done_underflow */
    CHECK_EQ(weft_queue_task_done(Q), WEFT_EINVAL);
    /* test_join_empty_queue */
    CHECK_EQ(weft_queue_join(Q), 0);
    CHECK_EQ(weft_queue_join(Q), 0);
    /* test_task_done */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(weft_queue_put_nowait(Q, P(i)), 0);
    accumulator = 0;
    running = 1;
    weft_task_t *w1 = spawn(jworker, NULL), *w2 = spawn(jworker, NULL);
    CHECK_EQ(weft_queue_join(Q), 0);
    CHECK_EQ(accumulator, 4950);
    running = 0;   /* close the workers */
    CHECK_EQ(weft_queue_put_nowait(Q, P(0)), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(0)), 0);
    CHECK_EQ(await_item(w1, NULL), 0);
    CHECK_EQ(await_item(w2, NULL), 0);
    CHECK_EQ(weft_queue_task_done(Q), WEFT_EINVAL);
    return 0;
}

static void test_join(void)
{
    q_case(WEFT_QUEUE_FIFO, 0, join_main);
    q_case(WEFT_QUEUE_LIFO, 0, join_main);
    q_case(WEFT_QUEUE_PRIORITY, 0, join_main);
}

static int join_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_queue_join(Q);
}

/* join() cancelled while waiting, then joined again */
static int join_cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    CHECK_EQ(weft_wait_for_coro(join_coro, NULL, 0.01, NULL), WEFT_ETIMEDOUT);
    weft_task_t *j = spawn(join_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(get_now(), 1);
    CHECK(!weft_future_done(j));
    CHECK_EQ(weft_queue_task_done(Q), 0);
    CHECK_EQ(await_item(j, NULL), 0);
    return 0;
}

static void test_join_cancel(void) { q_case(WEFT_QUEUE_FIFO, 0, join_cancel_main); }

/* ==== _QueueShutdownTestMixin (3.13), for Queue, LifoQueue, PriorityQueue =============== */
static void check_all_shut(void)
{
    void *item;
    CHECK_EQ(weft_queue_put(Q, P(1)), WEFT_ESHUTDOWN);
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), WEFT_ESHUTDOWN);
    CHECK_EQ(weft_queue_get(Q, &item), WEFT_ESHUTDOWN);
    CHECK_EQ(weft_queue_get_nowait(Q, &item), WEFT_ESHUTDOWN);
}

/* test_shutdown_empty */
static int shutdown_empty_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *g = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);   /* the get task pends before the shutdown */
    CHECK(!weft_queue_is_shutdown(Q));
    CHECK_EQ(weft_queue_shutdown(Q, false), 0);
    CHECK(weft_queue_is_shutdown(Q));
    CHECK_EQ(weft_queue_qsize(Q), 0);
    CHECK_EQ(weft_queue_join(Q), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(g));
    CHECK_EQ(await_item(g, NULL), WEFT_ESHUTDOWN);
    check_all_shut();
    return 0;
}

/* test_shutdown_nonempty */
static int shutdown_nonempty_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_put_nowait(Q, P(10)), 0);
    weft_task_t *j = spawn(join_coro, NULL), *p = spawn(put_coro, P(20));
    CHECK_EQ(weft_yield(), 0);
    CHECK(!weft_future_done(p));
    CHECK_EQ(weft_queue_shutdown(Q, false), 0);   /* unfinished tasks: 1 -> 1 */
    CHECK_EQ(weft_queue_qsize(Q), 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(p));
    CHECK_EQ(await_item(p, NULL), WEFT_ESHUTDOWN);
    CHECK_EQ(get_wait(), 10);   /* get succeeds on the enqueued item */
    CHECK_EQ(weft_yield(), 0);
    CHECK(!weft_future_done(j));
    check_all_shut();
    CHECK_EQ(weft_queue_task_done(Q), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(j));
    CHECK_EQ(await_item(j, NULL), 0);
    CHECK_EQ(weft_queue_task_done(Q), WEFT_EINVAL);
    CHECK_EQ(drops, 0);
    return 0;
}

/* test_shutdown_immediate */
static int shutdown_immediate_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_put_nowait(Q, P(10)), 0);
    weft_task_t *j = spawn(join_coro, NULL);
    CHECK_EQ(weft_queue_shutdown(Q, true), 0);   /* unfinished tasks: 1 -> 0 */
    CHECK_EQ(drops, 1);
    CHECK_EQ(weft_queue_qsize(Q), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(j));
    CHECK_EQ(await_item(j, NULL), 0);
    check_all_shut();
    CHECK_EQ(weft_queue_task_done(Q), WEFT_EINVAL);
    return 0;
}

/* test_shutdown_immediate_with_unfinished */
static int shutdown_immediate_unfinished_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_put_nowait(Q, P(10)), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(11)), 0);
    weft_task_t *j = spawn(join_coro, NULL);
    intptr_t first = get_wait();
    CHECK(first == 10 || first == 11);
    CHECK_EQ(weft_queue_shutdown(Q, true), 0);   /* unfinished tasks: 2 -> 1 */
    CHECK_EQ(drops, 1);
    CHECK_EQ(weft_queue_qsize(Q), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(!weft_future_done(j));
    check_all_shut();
    CHECK_EQ(weft_queue_task_done(Q), 0);
    CHECK_EQ(weft_queue_task_done(Q), WEFT_EINVAL);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_done(j));
    CHECK_EQ(await_item(j, NULL), 0);
    return 0;
}

/* an item handed to a getter that is cancelled after an immediate shutdown is
 * dropped (and counted done), not put back */
static int shutdown_give_back_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *g = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(5)), 0);   /* handed to g */
    CHECK_EQ(weft_task_cancel(g, NULL), 1);
    CHECK_EQ(weft_queue_shutdown(Q, true), 0);
    CHECK_EQ(drops, 0);
    CHECK_EQ(await_item(g, NULL), WEFT_ECANCELED);
    CHECK_EQ(drops, 1);
    CHECK_EQ(weft_queue_join(Q), 0);
    CHECK_EQ(weft_queue_task_done(Q), WEFT_EINVAL);
    return 0;
}

static void test_shutdown(void)
{
    for (int k = WEFT_QUEUE_FIFO; k <= WEFT_QUEUE_PRIORITY; k++) {
        q_case(k, 0, shutdown_empty_main);
        q_case(k, 1, shutdown_nonempty_main);
        q_case(k, 0, shutdown_immediate_main);
        q_case(k, 0, shutdown_immediate_unfinished_main);
        q_case(k, 0, shutdown_give_back_main);
    }
}

/* ==== misc ================================================================================ */
static int busy_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *g = spawn(get_coro, NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_queue_free(Q), WEFT_EBUSY);
    CHECK_EQ(weft_task_cancel(g, NULL), 1);
    CHECK_EQ(await_item(g, NULL), WEFT_ECANCELED);
    CHECK_EQ(weft_queue_put_nowait(Q, P(1)), 0);
    CHECK_EQ(weft_queue_put_nowait(Q, P(2)), 0);
    return 0;
}

static void test_bad_input(void)
{
    weft_queue_t *q;
    CHECK_EQ(weft_queue_new(0, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_queue_new_opts(NULL, &q), WEFT_EINVAL);
    CHECK_EQ(weft_queue_new_opts(&(weft_queue_opts_t){ .kind = 7 }, &q), WEFT_EINVAL);
    CHECK_EQ(weft_queue_put(NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_queue_get(NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_queue_free(NULL), 0);
    CHECK_EQ(weft_queue_new(0, &q), 0);
    void *item;
    CHECK_EQ(weft_queue_get(q, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_queue_get(q, &item), WEFT_ENOTCORO);
    CHECK_EQ(weft_queue_put(q, P(1)), WEFT_ENOTCORO);
    CHECK_EQ(weft_queue_join(q), WEFT_ENOTCORO);
    CHECK_EQ(weft_queue_put_nowait(q, P(1)), 0);   /* non-waiting calls: any thread */
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(weft_queue_task_done(q), 0);
    CHECK_EQ(weft_queue_free(q), 0);
    /* freed with items and waiters */
    q_case(WEFT_QUEUE_FIFO, 0, busy_main);
    CHECK_EQ(drops, 2);
    /* an unbounded queue grows; a big bounded one too */
    CHECK_EQ(weft_queue_new(100000, &q), 0);
    for (int i = 0; i < 100000; i++)
        CHECK_EQ(weft_queue_put_nowait(q, P(i)), 0);
    CHECK_EQ(weft_queue_put_nowait(q, P(0)), WEFT_EQUEUEFULL);
    for (int i = 0; i < 100000; i++) {
        CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
        CHECK_EQ(I(item), i);
    }
    CHECK_EQ(weft_queue_free(q), 0);
}

/* ---- cross-loop: ping-pong between loop 0 and loop 1; a plain thread feeding a
 * bounded queue read by tasks on both loops --------------------------------------------- */
#define PP_ROUNDS 20000
static weft_queue_t *ping, *pong;

static int ponger(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (;;) {
        void *v;
        int rc = weft_queue_get(ping, &v);
        if (rc == WEFT_ESHUTDOWN)
            return 0;
        CHECK_EQ(rc, 0);
        CHECK_EQ(weft_queue_put(pong, P(I(v) + 1)), 0);
    }
}

#define FEED 20000
static unsigned char fed[FEED];
static unsigned int nfed;

static void *feeder_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < FEED;) {
        int rc = weft_queue_put_nowait(Q, P(i));
        if (rc == WEFT_EQUEUEFULL) {
            usleep(50);
            continue;
        }
        CHECK_EQ(rc, 0);
        i++;
    }
    CHECK_EQ(weft_queue_shutdown(Q, false), 0);
    return NULL;
}

static int fed_reader(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    for (;;) {
        void *v;
        int rc = weft_queue_get(Q, &v);
        if (rc == WEFT_ESHUTDOWN)
            return 0;
        CHECK_EQ(rc, 0);
        __atomic_fetch_add(&fed[I(v)], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&nfed, 1, __ATOMIC_RELAXED);
    }
}

static int cross_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    CHECK_EQ(weft_queue_new(1, &ping), 0);
    CHECK_EQ(weft_queue_new(1, &pong), 0);
    weft_task_t *p;
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, 1), &p, ponger, NULL, NULL), 0);
    intptr_t v = 0;
    for (int i = 0; i < PP_ROUNDS; i++) {
        CHECK_EQ(weft_queue_put(ping, P(v)), 0);
        void *r;
        CHECK_EQ(weft_queue_get(pong, &r), 0);
        CHECK_EQ(I(r), v + 1);
        v = I(r);
    }
    CHECK_EQ(weft_queue_shutdown(ping, false), 0);
    CHECK_EQ(await_item(p, NULL), 0);
    CHECK_EQ(weft_queue_free(ping), 0);
    CHECK_EQ(weft_queue_free(pong), 0);
    /* a plain thread feeds tasks on both loops */
    weft_task_t *rd[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, i % 2), &rd[i], fed_reader, NULL, NULL), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, feeder_thread, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(await_item(rd[i], NULL), 0);
    pthread_join(th, NULL);
    CHECK_EQ(nfed, FEED);
    for (int i = 0; i < FEED; i++)
        CHECK_EQ(fed[i], 1);
    return 0;
}

static void test_cross_loop(void)
{
    Q = new_q(WEFT_QUEUE_FIFO, 16);
    run_rt(2, cross_main, NULL);
    CHECK_EQ(weft_queue_free(Q), 0);
}

int main(int argc, char **argv)
{
    alarm(120 * WD_SCALE);   /* watchdog: a hang fails the test */
    RUN(test_empty_full);
    RUN(test_order);
    RUN(test_maxsize);
    RUN(test_get);
    RUN(test_get_cancelled_race);
    RUN(test_get_with_waiting_putters);
    RUN(test_why_are_getters_waiting);
    RUN(test_cancelled_getters_not_being_held);
    RUN(test_put);
    RUN(test_get_cancel_drop_one_pending_reader);
    RUN(test_get_cancel_drop_many_pending_readers);
    RUN(test_give_back_order);
    RUN(test_put_cancel_drop);
    RUN(test_put_with_waiting_getters);
    RUN(test_put_cancelled_race);
    RUN(test_why_are_putters_waiting);
    RUN(test_cancelled_puts_not_being_held);
    RUN(test_reserved_slot_handed_to_getter);
    RUN(test_priority_stable);
    RUN(test_join);
    RUN(test_join_cancel);
    RUN(test_shutdown);
    RUN(test_bad_input);
    RUN(test_cross_loop);
    return 0;
}
