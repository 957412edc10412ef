/* Cross-loop stress of the synchronization primitives, meant for TSan too:
 *  - 4 producer and 4 consumer stealable tasks move 1,000,000 items through a
 *    bounded Queue(maxsize 64) on a 2-worker runtime while a canceller task
 *    cancels random getters waiting in get() (each cancelled consumer spawns
 *    its replacement); every item is delivered exactly once;
 *  - 10,000 stealable tasks on 2 loops increment a plain (non-atomic) counter
 *    under one Lock, some holding it across a suspension; the count is exact
 *    (and TSan sees every access ordered by the Lock).
 * Bounded by an alarm() watchdog. */
#include "check.h"
#include "watchdog.h"
#include "weft.h"

#include <pthread.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEFT_TEST_SANITIZED 1
#endif
#endif

/* Sanitizers make every step 5-20x slower: 50,000 items keep the run under a
 * minute while still doing thousands of cross-loop hand-offs and cancels. */
#ifdef WEFT_TEST_SANITIZED
#define ITEMS 50000
#else
#define ITEMS 1000000
#endif

#define PRODUCERS 4
#define CONSUMERS 4

static weft_runtime_t *new_rt(int workers)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &rt), 0);
    return rt;
}

/* ==== bounded queue with cancelled getters ============================================ */
static weft_queue_t *Q;
static unsigned char delivered[ITEMS];
static unsigned int received;        /* atomic */
static unsigned int cancelled_gets;  /* atomic: get() calls that ended WEFT_ECANCELED */
static unsigned int cancels_sent;    /* atomic */
static unsigned int replacements;    /* atomic */
static int stop;                     /* atomic */

/* The current consumer task of each slot; a consumer cancelled in get()
 * replaces itself. Guarded by slot_mu (tasks of both loops touch it). */
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static weft_task_t *slot_task[CONSUMERS];
static int in_get[CONSUMERS];        /* atomic: the slot's consumer is (about to be) in get() */

static int consumer(void *arg, weft_value_t *out)
{
    (void)out;
    int i = (int)(intptr_t)arg;
    for (;;) {
        void *item;
        __atomic_store_n(&in_get[i], 1, __ATOMIC_RELAXED);
        int rc = weft_queue_get(Q, &item);
        __atomic_store_n(&in_get[i], 0, __ATOMIC_RELAXED);
        if (rc == WEFT_ESHUTDOWN)
            return 0;
        if (rc == WEFT_ECANCELED) {
            __atomic_fetch_add(&cancelled_gets, 1, __ATOMIC_RELAXED);
            weft_task_t *nt;
            CHECK_EQ(weft_spawn(&nt, consumer, arg, NULL), 0);
            pthread_mutex_lock(&slot_mu);
            weft_task_t *old = slot_task[i];
            slot_task[i] = nt;
            pthread_mutex_unlock(&slot_mu);
            weft_task_release(old);   /* our own handle: the loop keeps us alive */
            __atomic_fetch_add(&replacements, 1, __ATOMIC_RELAXED);
            return rc;
        }
        CHECK_EQ(rc, 0);
        intptr_t v = (intptr_t)item;
        CHECK(v >= 0 && v < ITEMS);
        CHECK_EQ(__atomic_add_fetch(&delivered[v], 1, __ATOMIC_RELAXED), 1);
        __atomic_fetch_add(&received, 1, __ATOMIC_RELAXED);
    }
}

static int producer(void *arg, weft_value_t *out)
{
    (void)out;
    for (intptr_t v = (intptr_t)arg; v < ITEMS; v += PRODUCERS) {
        int rc = weft_queue_put(Q, (void *)v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int canceller(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    uint32_t x = 2463534242u;
    weft_task_t *last[CONSUMERS] = { NULL };   /* cancel each consumer once: no flood of requests */
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        /* mostly short random pauses (a few loop iterations), now and then a
         * 1 ms sleep so the canceller does not keep its loop busy */
        int rc = 0;
        if (x % 8 == 0)
            rc = weft_sleep(0.001);
        for (uint32_t k = (x >> 3) % 16; k > 0 && rc == 0; k--)
            rc = weft_yield();
        if (rc < 0)
            return rc;
        int i = (int)((x >> 8) % CONSUMERS);
        if (!__atomic_load_n(&in_get[i], __ATOMIC_RELAXED))
            continue;
        pthread_mutex_lock(&slot_mu);
        weft_task_t *t = slot_task[i] == last[i] ? NULL : weft_future_retain(slot_task[i]);
        pthread_mutex_unlock(&slot_mu);
        if (!t)
            continue;
        if (weft_task_cancel(t, NULL) == 1)
            __atomic_fetch_add(&cancels_sent, 1, __ATOMIC_RELAXED);
        weft_task_release(last[i]);
        last[i] = t;   /* keep the reference: the address cannot be reused meanwhile */
    }
    for (int i = 0; i < CONSUMERS; i++)
        weft_task_release(last[i]);
    return 0;
}

static int spawn_consumers(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    pthread_mutex_lock(&slot_mu);
    for (int i = 0; i < CONSUMERS; i++)
        CHECK_EQ(weft_spawn(&slot_task[i], consumer, (void *)(intptr_t)i, NULL), 0);
    pthread_mutex_unlock(&slot_mu);
    return 0;
}

static int queue_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_queue_new(64, &Q), 0);
    weft_task_t *prod[PRODUCERS], *canc, *sp;
    /* consumers are spawned from loop 1, producers from loop 0: all stealable,
     * but they start apart, so items and wake-ups cross loops */
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, 1), &sp, spawn_consumers, NULL, NULL), 0);
    CHECK_EQ(weft_await(sp, NULL), 0);
    weft_task_release(sp);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_EQ(weft_spawn(&prod[i], producer, (void *)(intptr_t)i, NULL), 0);
    CHECK_EQ(weft_spawn(&canc, canceller, NULL, NULL), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(weft_await(prod[i], NULL), 0);
        weft_task_release(prod[i]);
    }
    while (__atomic_load_n(&received, __ATOMIC_RELAXED) < ITEMS)
        CHECK_EQ(weft_sleep(0.001), 0);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    CHECK_EQ(weft_await(canc, NULL), 0);
    weft_task_release(canc);
    CHECK_EQ(weft_queue_qsize(Q), 0);
    CHECK_EQ(weft_queue_shutdown(Q, false), 0);   /* consumers leave with WEFT_ESHUTDOWN */
    for (int i = 0; i < CONSUMERS; i++) {
        for (;;) {   /* a cancel still in flight may replace the slot's task once more */
            pthread_mutex_lock(&slot_mu);
            weft_task_t *t = weft_future_retain(slot_task[i]);
            pthread_mutex_unlock(&slot_mu);
            int rc = weft_await(t, NULL);
            CHECK(rc == 0 || rc == WEFT_ECANCELED);
            pthread_mutex_lock(&slot_mu);
            bool same = slot_task[i] == t;
            pthread_mutex_unlock(&slot_mu);
            weft_task_release(t);
            if (same)
                break;
        }
        weft_task_release(slot_task[i]);
    }
    return 0;
}

static void test_queue_exactly_once_with_cancelled_getters(void)
{
    weft_runtime_t *rt = new_rt(2);
    uint64_t t0 = (uint64_t)weft_loop_time_ns(weft_runtime_loop(rt, 0));
    CHECK_EQ(weft_runtime_run(rt, queue_main, NULL, NULL, NULL), 0);
    double secs = (double)((uint64_t)weft_loop_time_ns(weft_runtime_loop(rt, 0)) - t0) / 1e9;
    CHECK_EQ(received, ITEMS);
    for (int i = 0; i < ITEMS; i++)
        if (delivered[i] != 1) {
            fprintf(stderr, "item %d delivered %d times\n", i, delivered[i]);
            CHECK(0);
        }
    printf("  %d items in %.2f s; %u cancels sent, %u gets cancelled, %u consumers replaced\n", ITEMS, secs,
           cancels_sent, cancelled_gets, replacements);
    weft_loop_stats_t s0, s1;
    weft_runtime_stats(rt, 0, &s0);
    weft_runtime_stats(rt, 1, &s1);
    printf("  tasks started: loop0 %llu, loop1 %llu; cross-loop messages %llu\n",
           (unsigned long long)s0.tasks_started, (unsigned long long)s1.tasks_started,
           (unsigned long long)(s0.inbox_msgs + s1.inbox_msgs));
    CHECK(cancelled_gets > 0);   /* the cancellation path was exercised */
    CHECK_EQ(weft_queue_free(Q), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* ==== a Lock guarding a plain counter ================================================== */
#define LOCK_TASKS 10000
/* Tasks alive at once. TSan gives every coroutine (fiber) its own ~1.2 MB
 * trace: 10,000 suspended at once exhaust its mappings, so sanitizer builds
 * keep at most 1,000 in flight (still all 10,000 run, on both loops). */
#ifdef WEFT_TEST_SANITIZED
#define LOCK_WINDOW 1000
#else
#define LOCK_WINDOW LOCK_TASKS
#endif
static weft_lock_t *L;
static long counter;   /* deliberately not atomic: the Lock orders every access */
static weft_task_t *lock_tasks[LOCK_TASKS];

static int incrementer(void *arg, weft_value_t *out)
{
    (void)out;
    intptr_t i = (intptr_t)arg;
    int rc = weft_lock_acquire(L);
    if (rc < 0)
        return rc;
    long v = counter;
    if (i % 7 == 0)
        rc = weft_yield();   /* hold the lock across a suspension */
    counter = v + 1;
    CHECK_EQ(weft_lock_release(L), 0);
    return rc;
}

static int lock_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    intptr_t awaited = 0;
    for (intptr_t i = 0; i < LOCK_TASKS; i++) {
        CHECK_EQ(weft_spawn(&lock_tasks[i], incrementer, (void *)i, NULL), 0);
        if (i % 500 == 499)
            CHECK_EQ(weft_yield(), 0);
        for (; i - awaited >= LOCK_WINDOW; awaited++) {
            CHECK_EQ(weft_await(lock_tasks[awaited], NULL), 0);
            weft_task_release(lock_tasks[awaited]);
        }
    }
    for (; awaited < LOCK_TASKS; awaited++) {
        CHECK_EQ(weft_await(lock_tasks[awaited], NULL), 0);
        weft_task_release(lock_tasks[awaited]);
    }
    CHECK_EQ(weft_lock_acquire(L), 0);
    long c = counter;
    CHECK_EQ(weft_lock_release(L), 0);
    out->i = c;
    return 0;
}

static void test_lock_counter_exact(void)
{
    CHECK_EQ(weft_lock_new(&L), 0);
    weft_runtime_t *rt = new_rt(2);
    weft_value_t v;
    CHECK_EQ(weft_runtime_run(rt, lock_main, NULL, NULL, &v), 0);
    CHECK_EQ(v.i, LOCK_TASKS);
    weft_loop_stats_t s0, s1;
    weft_runtime_stats(rt, 0, &s0);
    weft_runtime_stats(rt, 1, &s1);
    printf("  counter %lld; tasks started: loop0 %llu, loop1 %llu\n", (long long)v.i,
           (unsigned long long)s0.tasks_started, (unsigned long long)s1.tasks_started);
    CHECK(s0.tasks_started > 0 && s1.tasks_started > 0);   /* both loops took part */
    CHECK_EQ(weft_runtime_free(rt), 0);
    CHECK_EQ(weft_lock_free(L), 0);
}

int main(int argc, char **argv)
{
    alarm(280 * WD_SCALE);   /* watchdog: a hang fails the test */
    RUN(test_queue_exactly_once_with_cancelled_getters);
    RUN(test_lock_counter_exact);
    return 0;
}
