/* Placement of stealable tasks (weft_spawn) in a runtime of several loops:
 * thieves leave a busy loop's last entries to it (the next link of a chain,
 * the two sides of a pair), but never strand them: when the loop that holds
 * them is stuck in one long step, another loop takes them, even if every
 * other loop was parked and nothing else is spawned. Loop-affine tasks keep
 * asyncio's FIFO order whatever the stealable ones do. Every test is bounded
 * by a watchdog alarm; the spinning tasks below give up (and fail) only after
 * a generous deadline that catches a hang, never a slow machine. */
#include "base/base.h"   /* WEFT_ASAN, WEFT_TSAN */
#include "check.h"
#include "stats_util.h"
#include "sync_util.h"   /* await_release */
#include "weft.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define SCALE 10
#else
#define SCALE 1
#endif

static weft_runtime_t *g_rt;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(int workers, weft_coro_fn fn, void *arg)
{
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &g_rt), 0);
    weft_value_t out;
    int rc = weft_runtime_run(g_rt, fn, arg, NULL, &out);
    weft_runtime_free(g_rt);
    g_rt = NULL;
    return rc;
}

/* Spin (never giving the loop back) until *n reaches @want; false after the
 * hang deadline. */
static bool spin_until(atomic_int *n, int want)
{
    double give_up = mono_s() + 30.0 * SCALE;
    while (atomic_load(n) < want) {
        if (mono_s() > give_up)
            return false;
    }
    return true;
}

/* ---- a kept entry runs elsewhere while its loop is stuck ---------------------------- */

static atomic_int g_ran;
static weft_loop_t *_Atomic g_child_loop[8];

static int child(void *arg, weft_value_t *out)
{
    (void)out;
    weft_loop_t *l = NULL;
    CHECK_EQ(weft_get_running_loop(&l), 0);
    atomic_store(&g_child_loop[(intptr_t)arg], l);
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

/* Spawns @k children, then spins without yielding until all ran: its own loop
 * cannot run them, so each must be taken by another loop. With k <= 2 no spawn
 * wakes a searcher (the entries are kept for this loop); the watcher must find
 * this loop stuck. */
static int stuck_spawner(void *arg, weft_value_t *out)
{
    (void)out;
    int k = (int)(intptr_t)arg;
    weft_loop_t *me = NULL;
    CHECK_EQ(weft_get_running_loop(&me), 0);
    atomic_store(&g_ran, 0);
    for (int i = 0; i < k; i++)
        CHECK_EQ(weft_spawn(NULL, child, (void *)(intptr_t)i, NULL), 0);
    CHECK(spin_until(&g_ran, k));   /* a hang here: the entries were stranded */
    for (int i = 0; i < k; i++)
        CHECK(atomic_load(&g_child_loop[i]) != me);
    return 0;
}

static void test_kept_entry_taken_from_stuck_loop(void)
{
    int ks[] = { 1, 2, 3, 5 };
    for (int w = 2; w <= 4; w += 2)
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
            CHECK_EQ(run(w, stuck_spawner, (void *)(intptr_t)ks[i]), 0);
}

/* After a burst of parks and wakes: the other loops parked for good (nothing
 * was queued for a while), then one lone spawn and a stuck spawner. */
static int lone_after_idle(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_sleep(0.05), 0);   /* every other loop goes idle meanwhile */
    atomic_store(&g_ran, 0);
    CHECK_EQ(weft_spawn(NULL, child, (void *)(intptr_t)0, NULL), 0);
    CHECK(spin_until(&g_ran, 1));
    return 0;
}

static void test_lone_spawn_after_idle(void)
{
    CHECK_EQ(run(2, lone_after_idle, NULL), 0);
    CHECK_EQ(run(3, lone_after_idle, NULL), 0);
}

/* ---- no lost wake-up under bursts of spawns ----------------------------------------- */

static atomic_int g_burst_ran;

static int burst_leaf(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    atomic_fetch_add(&g_burst_ran, 1);
    return 0;
}

/* A task that spawns a few leaves and returns at once (no join). */
static int burst_node(void *arg, weft_value_t *out)
{
    (void)out;
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < k; i++)
        CHECK_EQ(weft_spawn(NULL, burst_leaf, NULL, NULL), 0);
    atomic_fetch_add(&g_burst_ran, 1);
    return 0;
}

/* Rounds of bursts of 1..7 spawns (nodes that spawn leaves), some awaited,
 * some left to run while the root spins or sleeps: every task must run. */
static int bursts(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    uint32_t x = 12345;
    int rounds = 300 / SCALE + 20;
    for (int r = 0; r < rounds; r++) {
        x = x * 1103515245u + 12345u;
        int k = (int)((x >> 16) % 7) + 1, leaves = (int)((x >> 8) % 4);
        atomic_store(&g_burst_ran, 0);
        weft_task_t *ts[8];
        for (int i = 0; i < k; i++)
            CHECK_EQ(weft_spawn(&ts[i], burst_node, (void *)(intptr_t)leaves, NULL), 0);
        int want = k * (1 + leaves);
        switch (r % 3) {
        case 0:   /* await them: joined inline or stolen */
            for (int i = 0; i < k; i++)
                CHECK_EQ(weft_await(ts[i], NULL), 0);
            while (atomic_load(&g_burst_ran) < want)
                CHECK_EQ(weft_sleep(0.0005), 0);
            break;
        case 1:   /* stuck: only other loops can run them */
            if (!spin_until(&g_burst_ran, want)) {
                fprintf(stderr, "round %d k %d leaves %d want %d ran %d\n", r, k, leaves, want, atomic_load(&g_burst_ran));
                weft_runtime_print_stats(g_rt, stderr);
                CHECK(0);
            }
            break;
        default:   /* parked in a sleep: any loop */
            while (atomic_load(&g_burst_ran) < want)
                CHECK_EQ(weft_sleep(0.0002), 0);
        }
        for (int i = 0; i < k; i++)
            weft_task_release(ts[i]);
    }
    return 0;
}

static void test_bursts_no_lost_wakeup(void)
{
    for (int w = 2; w <= 8; w *= 2)
        CHECK_EQ(run(w, bursts, NULL), 0);
}

/* ---- loop-affine order --------------------------------------------------------------- */

static char g_log[128];
static atomic_int g_nlog;
static atomic_int g_stolen_ran;

static void log_c(char c)
{
    int i = atomic_fetch_add(&g_nlog, 1);
    CHECK(i < (int)sizeof g_log - 1);
    g_log[i] = c;
}

static int affine(void *arg, weft_value_t *out)
{
    (void)out;
    log_c((char)(intptr_t)arg);
    return 0;
}

static int affine_cb(void *arg)
{
    log_c((char)(intptr_t)arg);
    return 0;
}

static int stealable(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    atomic_fetch_add(&g_stolen_ran, 1);
    return 0;
}

/* Loop-affine tasks and callbacks interleaved with bursts of stealable
 * spawns (some kept, some stolen): the affine ones start in creation order. */
static int affine_order(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = NULL;
    CHECK_EQ(weft_get_running_loop(&l), 0);
    weft_task_t *ts[16];
    int nt = 0;
    for (int i = 0; i < 16; i++) {
        char c = (char)('a' + i);
        if (i % 3 == 2)
            CHECK_EQ(weft_call_soon(l, affine_cb, (void *)(intptr_t)c, NULL), 0);
        else
            CHECK_EQ(weft_create_task(&ts[nt++], affine, (void *)(intptr_t)c, NULL), 0);
        for (int j = 0; j < i % 4; j++)
            CHECK_EQ(weft_spawn(NULL, stealable, NULL, NULL), 0);
    }
    for (int i = 0; i < nt; i++)
        CHECK_EQ(await_release(ts[i]), 0);
    while (atomic_load(&g_nlog) < 16)
        CHECK_EQ(weft_sleep(0.001), 0);
    g_log[16] = 0;
    CHECK_STR(g_log, "abcdefghijklmnop");
    return 0;
}

static void test_affine_order_unchanged(void)
{
    for (int w = 1; w <= 4; w++) {
        atomic_store(&g_nlog, 0);
        memset(g_log, 0, sizeof g_log);
        CHECK_EQ(run(w, affine_order, NULL), 0);
    }
}

/* ---- a child joined inline leaves no token behind ---------------------------------- */

/* Every weft_spawn queues one token on its loop; a token starts the oldest
 * task the loop still holds. A child its awaiter ran inline needs its token no
 * more: if that token stayed, it would start the NEXT spawned task at the
 * joined child's turn, before callbacks queued in between. */
static char g_ord[8];
static atomic_int g_nord;
static weft_loop_t *_Atomic g_b_loop, *_Atomic g_c_loop;

static void ord(char c)
{
    int i = atomic_fetch_add(&g_nord, 1);
    if (i < 7)
        g_ord[i] = c;
}

static int ord_task(void *arg, weft_value_t *out)
{
    (void)out;
    weft_loop_t *l = NULL;
    CHECK_EQ(weft_get_running_loop(&l), 0);
    char c = (char)(intptr_t)arg;
    atomic_store(c == 'B' ? &g_b_loop : &g_c_loop, l);
    if (c == 'C')
        ord(c);
    return 0;
}

static int ord_cb(void *arg)
{
    ord((char)(intptr_t)arg);
    return 0;
}

/* Tasks moved by stealing so far, over all loops of g_rt. */
static uint64_t total_stolen(void) { return rt_stats_sum(g_rt, offsetof(weft_loop_stats_t, stolen)); }

static int joined_leaves_no_token(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = NULL;
    CHECK_EQ(weft_get_running_loop(&l), 0);
    int valid = 0;
    for (int round = 0; round < 50; round++) {
        atomic_store(&g_nord, 0);
        memset(g_ord, 0, sizeof g_ord);
        atomic_store(&g_b_loop, NULL);
        atomic_store(&g_c_loop, NULL);
        uint64_t stolen0 = total_stolen();
        weft_task_t *b;
        CHECK_EQ(weft_spawn(&b, ord_task, (void *)(intptr_t)'B', NULL), 0);
        CHECK_EQ(weft_await(b, NULL), 0);   /* never run: joined inline, on this loop */
        weft_task_release(b);
        CHECK_EQ(weft_call_soon(l, ord_cb, (void *)(intptr_t)'X', NULL), 0);
        CHECK_EQ(weft_spawn(NULL, ord_task, (void *)(intptr_t)'C', NULL), 0);
        while (atomic_load(&g_nord) < 2)
            CHECK_EQ(weft_yield(), 0);
        /* a round counts only if no other loop took B or C (a thief may take
         * them if this thread is preempted for long), nor took B's queue entry
         * just before this task claimed B: the order is asyncio's only while
         * nothing is stolen (a theft leaves its loop a token the entry does not
         * use; see runtime.h) */
        if (atomic_load(&g_b_loop) != l || atomic_load(&g_c_loop) != l || total_stolen() != stolen0)
            continue;
        valid++;
        CHECK_STR(g_ord, "XC");   /* asyncio's order: X was queued before C */
    }
    CHECK(valid > 0);
    return 0;
}

static void test_joined_child_leaves_no_token(void)
{
    for (int w = 2; w <= 4; w += 2)
        CHECK_EQ(run(w, joined_leaves_no_token, NULL), 0);
}

/* ---- a busy loop takes its share of a burst ----------------------------------------- */

/* A task stays on the loop that starts it. A loop that runs only its own
 * long-lived tasks is never idle, so it steals nothing as an idle loop would:
 * without the busy loops' balancing, a burst spawned by one loop stays
 * where the first theft left it (at most half of one ring). */
#define BURST 600
#define BURST_SHARE 200   /* more than one theft can take, fewer than the ring holds */
static atomic_int g_started_on[2];
static atomic_int g_burst_stop;

static int burst_member(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *l = NULL;
    CHECK_EQ(weft_get_running_loop(&l), 0);
    int idx = weft_loop_index(l);
    CHECK(idx == 0 || idx == 1);
    atomic_fetch_add(&g_started_on[idx], 1);
    while (!atomic_load(&g_burst_stop))
        CHECK_EQ(weft_yield(), 0);
    return 0;
}

/* Spawns the burst, then keeps its own loop busy (never yielding) until the
 * other loop has started BURST_SHARE of it: the other loop is busy running
 * the members it took first, so only balancing moves the rest. */
static int burst_spawner(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *me = NULL;
    CHECK_EQ(weft_get_running_loop(&me), 0);
    int other = 1 - weft_loop_index(me);
    atomic_store(&g_started_on[0], 0);
    atomic_store(&g_started_on[1], 0);
    atomic_store(&g_burst_stop, 0);
    weft_task_t **ts = calloc(BURST, sizeof *ts);
    CHECK(ts != NULL);
    for (int i = 0; i < BURST; i++)
        CHECK_EQ(weft_spawn(&ts[i], burst_member, NULL, NULL), 0);
    CHECK(spin_until(&g_started_on[other], BURST_SHARE));   /* a hang here: no balancing */
    atomic_store(&g_burst_stop, 1);
    for (int i = 0; i < BURST; i++)
        CHECK_EQ(await_release(ts[i]), 0);
    free(ts);
    CHECK_EQ(atomic_load(&g_started_on[0]) + atomic_load(&g_started_on[1]), BURST);
    return 0;
}

static void test_busy_loop_takes_share(void)
{
    CHECK_EQ(run(2, burst_spawner, NULL), 0);
}

int main(int argc, char **argv)
{
    alarm(280 * SCALE);   /* watchdog: a hang fails the test */
    RUN(test_kept_entry_taken_from_stuck_loop);
    RUN(test_lone_spawn_after_idle);
    RUN(test_bursts_no_lost_wakeup);
    RUN(test_affine_order_unchanged);
    RUN(test_joined_child_leaves_no_token);
    RUN(test_busy_loop_takes_share);
    return 0;
}
