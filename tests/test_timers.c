/* The loop's timers (core/timer.c: timing wheel + near heap).
 *
 * The wheel against a model, on a simulated clock: random adds (deadlines in
 * the past, within the tick, and at every level of the wheel up to "never"),
 * cancellations and clock jumps of every size. Every due timer must come out
 * exactly once, in (deadline, scheduling order); a cancelled one never; after
 * the due ones are out, the next deadline reported must lie in the future (or
 * the loop would spin) and never after the true earliest one (or the loop
 * would oversleep).
 *
 * Then the same through the public API on a real loop: call_at across several
 * ticks and level boundaries, and sleeping tasks cancelled while their timer
 * sits in the wheel or in the near heap: they end cancelled at once, and no
 * timer is left behind to keep the loop alive. */
#include "check.h"
#include "watchdog.h"

#include "core/loop.h"

#include <weft.h>

#include <stdint.h>
#include <string.h>

/* ---- the timer set on a simulated clock ----------------------------------- */

#define MN 2000
static weft__handle_t mh[MN];
static bool mlive[MN];
static uint64_t mseq;

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The model's earliest live timer (by when, then seq), or -1. */
static int model_min(void)
{
    int best = -1;
    for (int i = 0; i < MN; i++) {
        if (!mlive[i])
            continue;
        if (best < 0 || mh[i].when < mh[best].when || (mh[i].when == mh[best].when && mh[i].seq < mh[best].seq))
            best = i;
    }
    return best;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return b > UINT64_MAX - a ? UINT64_MAX : a + b; }

static uint64_t pick_when(uint64_t now)
{
    const uint64_t tick = (uint64_t)1 << WEFT__TICK_SHIFT;
    switch (rnd() % 9) {
    case 0: {   /* already past */
        uint64_t back = rnd() % (tick * 100);
        return back < now ? now - back : 0;
    }
    case 1: return now + rnd() % tick;                         /* within about a tick */
    case 2: return now + rnd() % (64 * tick);                  /* level 0 or 1 */
    case 3: return now + rnd() % (4096 * tick);                /* up to level 2 */
    case 4: return sat_add(now, rnd() % ((uint64_t)1 << 40));  /* hours */
    case 5: return sat_add(now, rnd() % ((uint64_t)1 << 60));  /* decades */
    case 6: return UINT64_MAX;                                 /* "never" */
    case 7:                                                    /* equal to a live one: FIFO among equals */
        for (int k = 0; k < 8; k++) {
            int j = (int)(rnd() % MN);
            if (mlive[j])
                return mh[j].when;
        }
        return now + rnd() % (8 * tick);
    default: return now + (rnd() % 64) * tick;                 /* on a tick boundary */
    }
}

/* Schedule model timer @i at @when; the handle may come from an earlier test,
 * so it starts unscheduled. */
static void model_add(weft__timers_t *w, int i, uint64_t when)
{
    mh[i].flags = 0;
    mh[i].heap_idx = UINT32_MAX;
    mh[i].when = when;
    mh[i].seq = mseq++;
    CHECK_EQ(weft__timers_add(w, &mh[i]), 0);
    mlive[i] = true;
}

static void drain_and_check(weft__timers_t *w, uint64_t now)
{
    weft__handle_t *h;
    while ((h = weft__timers_pop_due(w, now))) {
        int i = (int)(h - mh);
        CHECK(i >= 0 && i < MN);
        CHECK(mlive[i]);              /* cancelled or already fired: must not come out */
        int m = model_min();
        CHECK_EQ(i, m);               /* exactly the earliest, ties in scheduling order */
        CHECK(h->when <= now);        /* never early */
        CHECK(!(h->flags & WEFT__H_TIMER));
        CHECK_EQ(h->heap_idx, UINT32_MAX);
        mlive[i] = false;
    }
    int m = model_min();
    CHECK(m < 0 || mh[m].when > now);   /* nothing due was left behind */
    uint64_t next = weft__timers_next(w);
    CHECK(next > now || (now == UINT64_MAX && m < 0));   /* the loop would not spin */
    if (m >= 0)
        CHECK(next <= mh[m].when);      /* nor oversleep */
    else
        CHECK_EQ(next, UINT64_MAX);
}

static void test_wheel_model(void)
{
    static weft__timers_t w;
    memset(&w, 0, sizeof w);
    for (int i = 0; i < MN; i++)
        mh[i].heap_idx = UINT32_MAX;
    uint64_t now = 123456789012345ull;   /* no alignment to any level */
    weft__timers_reset(&w, now);
    unsigned nlive = 0;
    for (int op = 0; op < 150000; op++) {
        unsigned r = (unsigned)(rnd() % 100);
        if (r < 45) {
            int i = (int)(rnd() % MN);
            if (mlive[i])
                continue;
            if (!w.n)
                weft__timers_reset(&w, now);
            mh[i].when = pick_when(now);
            mh[i].seq = mseq++;
            CHECK_EQ(weft__timers_add(&w, &mh[i]), 0);
            CHECK(mh[i].flags & WEFT__H_TIMER);
            mlive[i] = true;
        } else if (r < 62) {
            int i = (int)(rnd() % MN);   /* live or not: removing a spent timer is a no-op */
            weft__timers_remove(&w, &mh[i]);
            CHECK(!(mh[i].flags & WEFT__H_TIMER));
            CHECK_EQ(mh[i].heap_idx, UINT32_MAX);
            mlive[i] = false;
        } else if (r < 97) {
            uint64_t step;
            switch (rnd() % 8) {
            case 0: step = 0; break;
            case 1: step = rnd() % ((uint64_t)1 << 32); break;   /* seconds */
            case 2: step = rnd() % ((uint64_t)1 << 44); break;   /* hours */
            default: step = rnd() % ((uint64_t)1 << 22); break;  /* a few ticks */
            }
            now = sat_add(now, step);
            drain_and_check(&w, now);
        } else {
            int m = model_min();
            uint64_t next = weft__timers_next(&w);
            if (m < 0)
                CHECK_EQ(next, UINT64_MAX);
            else
                CHECK(next <= mh[m].when);
        }
        nlive = 0;
        for (int i = 0; i < MN; i++)
            nlive += mlive[i];
        CHECK_EQ(w.n, nlive);
        if ((op & 1023) == 0)
            wd_progress();
    }
    /* the end of time: everything left fires, "never" included, in order */
    drain_and_check(&w, UINT64_MAX);
    CHECK_EQ(w.n, 0);
    CHECK_EQ(model_min(), -1);

    /* clear: every timer forgotten and unflagged, wherever it was */
    now = 987654321098765ull;
    weft__timers_reset(&w, now);
    for (int i = 0; i < 200; i++) {
        mh[i].when = pick_when(now);
        mh[i].seq = mseq++;
        CHECK_EQ(weft__timers_add(&w, &mh[i]), 0);
    }
    weft__timers_free(&w);
    CHECK_EQ(w.n, 0);
    CHECK_EQ(weft__timers_next(&w), UINT64_MAX);
    for (int i = 0; i < 200; i++) {
        CHECK(!(mh[i].flags & WEFT__H_TIMER));
        CHECK_EQ(mh[i].heap_idx, UINT32_MAX);
    }
    memset(mlive, 0, sizeof mlive);
}

/* A clock that jumps far ahead at once: the timers of many ticks are due
 * together and must still come out in order (one tick at a time). */
static void test_wheel_backlog(void)
{
    static weft__timers_t w;
    memset(&w, 0, sizeof w);
    const uint64_t tick = (uint64_t)1 << WEFT__TICK_SHIFT;
    uint64_t now = 5 * tick + 12345;
    weft__timers_reset(&w, now);
    for (int i = 0; i < MN; i++)
        model_add(&w, i, now + (uint64_t)((i * 7919) % 300) * (tick / 3) + (uint64_t)(i % 5));
    for (int i = 0; i < MN; i += 3) {   /* a third cancelled before anything fires */
        weft__timers_remove(&w, &mh[i]);
        mlive[i] = false;
    }
    drain_and_check(&w, now + 200 * tick);
    CHECK(w.near_n <= (uint32_t)MN);
    drain_and_check(&w, UINT64_MAX);
    CHECK_EQ(w.n, 0);
    weft__timers_free(&w);
}

/* Deadlines of the tick reached (or past) all go to the near heap: removals
 * from its middle must keep it ordered. */
static void test_near_heap(void)
{
    static weft__timers_t w;
    memset(&w, 0, sizeof w);
    uint64_t now = 777777777777ull;
    weft__timers_reset(&w, now);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < MN; i++) {
            model_add(&w, i, now - rnd() % 100000);
            CHECK(!(mh[i].heap_idx & WEFT__IN_WHEEL));
        }
        for (int k = 0; k < MN / 2; k++) {
            int i = (int)(rnd() % MN);
            weft__timers_remove(&w, &mh[i]);
            mlive[i] = false;
        }
        drain_and_check(&w, now);
        CHECK_EQ(w.n, 0);
        wd_progress();
    }
    weft__timers_free(&w);
}

/* Without cancellations the next deadline reported is exact at every level:
 * a loop sleeping for one long timer wakes once, at its deadline, not at the
 * wheel's slot boundaries on the way (each extra wake-up costs idle CPU). */
static void test_next_exact(void)
{
    static weft__timers_t w;
    memset(&w, 0, sizeof w);
    uint64_t now = 31415926535897ull;
    weft__timers_reset(&w, now);
    for (int round = 0; round < 200; round++) {
        int n = 1 + (int)(rnd() % 20);
        for (int i = 0; i < n; i++) {
            if (!w.n)
                weft__timers_reset(&w, now);
            model_add(&w, i, pick_when(now));
            CHECK_EQ(weft__timers_next(&w), mh[model_min()].when);
        }
        while (w.n) {
            int m = model_min();
            now = mh[m].when;   /* wake exactly when told to */
            drain_and_check(&w, now);
            if (w.n)
                CHECK_EQ(weft__timers_next(&w), mh[model_min()].when);
            wd_progress();
        }
    }
    weft__timers_free(&w);
}

/* ---- through the loop -------------------------------------------------------- */

#define CN 600
static int fired[CN], fire_seq[CN], nfired;
static uint64_t cwhen[CN];

static int order_cb(void *arg)
{
    int i = (int)(intptr_t)arg;
    fired[i]++;
    fire_seq[nfired++] = i;
    return 0;
}

static int stop_cb(void *arg)
{
    weft_loop_stop(arg);
    return 0;
}

/* call_at with deadlines from one base time over ~0.3 s (several ticks, a
 * level boundary or more), many equal, a quarter cancelled. */
static void test_loop_call_at_order(void)
{
    weft_loop_t *loop = NULL;
    CHECK_EQ(weft_loop_new(&loop), 0);
    static weft_handle_t h[CN];
    static bool cancelled[CN];
    nfired = 0;
    memset(fired, 0, sizeof fired);
    double base = weft_loop_time(loop) + 0.005;
    double last = base;
    for (int i = 0; i < CN; i++) {
        double when = base + (double)(rnd() % 60) * 0.005 + (rnd() % 2 ? 0 : 0.0004);
        cwhen[i] = (uint64_t)(when * 1e9);
        if (when > last)
            last = when;
        CHECK_EQ(weft_call_at(loop, when, order_cb, (void *)(intptr_t)i, &h[i]), 0);
    }
    int live = CN;
    for (int i = 0; i < CN; i++) {
        cancelled[i] = rnd() % 4 == 0;
        if (cancelled[i]) {
            CHECK_EQ(weft_handle_cancel(h[i]), 1);
            live--;
        }
    }
    CHECK_EQ(weft_call_at(loop, last + 0.001, stop_cb, loop, NULL), 0);
    CHECK_EQ(weft_loop_run_forever(loop), 0);
    CHECK_EQ(nfired, live);
    for (int i = 0; i < CN; i++)
        CHECK_EQ(fired[i], cancelled[i] ? 0 : 1);
    for (int k = 1; k < nfired; k++) {
        int a = fire_seq[k - 1], b = fire_seq[k];
        CHECK(cwhen[a] <= cwhen[b]);
        if (cwhen[a] == cwhen[b])
            CHECK(a < b);
    }
    CHECK_EQ(loop->timers.n, 0);
    CHECK_EQ(weft_loop_free(loop), 0);
}

#define SN 400
static weft_task_t *sleepers[SN];
static int sleep_rc[SN];

static int sleeper(void *arg, weft_value_t *out)
{
    int i = (int)(intptr_t)arg;
    (void)out;
    /* a quarter near-immediate (near heap), a quarter a few ticks (level 0),
     * a quarter ~0.1 s (level 1 or 2), a quarter an hour (high levels) */
    double d = i % 4 == 0 ? 0.0002 : i % 4 == 1 ? 0.003 : i % 4 == 2 ? 0.1 : 3600;
    sleep_rc[i] = weft_sleep(d);
    return sleep_rc[i];
}

static int sleepers_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_t *loop = weft_running_loop();
    for (int i = 0; i < SN; i++)
        CHECK_EQ(weft_create_task(&sleepers[i], sleeper, (void *)(intptr_t)i, NULL), 0);
    CHECK_EQ(weft_yield(), 0);   /* every sleeper runs up to its sleep */
    CHECK_EQ(loop->timers.n, SN);
    /* cancel every hour-long sleeper and every other one of the rest */
    for (int i = 0; i < SN; i++)
        if (i % 4 == 3 || i % 2 == 0)
            CHECK_EQ(weft_task_cancel(sleepers[i], NULL), 1);
    for (int i = 0; i < SN; i++) {
        weft_value_t v;
        int rc = weft_await(sleepers[i], &v);
        if (i % 4 == 3 || i % 2 == 0) {
            CHECK_EQ(rc, WEFT_ECANCELED);
            CHECK(weft_future_cancelled(sleepers[i]));
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ(sleep_rc[i], 0);
        }
        weft_task_release(sleepers[i]);
    }
    /* cancelled sleeps took their timers with them */
    CHECK_EQ(loop->timers.n, 0);
    CHECK_EQ(weft__timers_next(&loop->timers), UINT64_MAX);
    return 0;
}

static void test_sleep_cancel_frees_timer(void)
{
    weft_value_t v;
    CHECK_EQ(weft_run(sleepers_main, NULL, NULL, &v), 0);
}

int main(int argc, char **argv)
{
    wd_start(60);
    RUN(test_wheel_model);
    RUN(test_wheel_backlog);
    RUN(test_near_heap);
    RUN(test_next_exact);
    RUN(test_loop_call_at_order);
    RUN(test_sleep_cancel_frees_timer);
    return 0;
}
