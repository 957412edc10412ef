/* The runtime's shutdown against threads that keep submitting work: a
 * submission is either refused (WEFT_ECLOSED) or accepted and run; shutdown
 * returns in bounded time however hard the submitters push; nothing accepted
 * is lost. Hangs are caught by a progress watchdog (watchdog.h). */
#include "check.h"
#include "watchdog.h"
#include "weft.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int plus_one(void *arg, weft_value_t *out)
{
    out->i = (intptr_t)arg + 1;
    return 0;
}

/* ---- run_coroutine_threadsafe / spawn_on naming a loop, racing shutdown ------------------- */
#define SUBMITTERS 3
#define MAXSUB 1024

struct sub {
    weft_runtime_t *rt;
    int idx;
    atomic_int *go;
    weft_cfuture_t *cf[MAXSUB];
    weft_task_t *task[MAXSUB];
    int ncf, ntask, refused;
};

static void *submitter(void *p)
{
    struct sub *s = p;
    while (!atomic_load(s->go))
        sched_yield();
    /* sanitizer builds make every task costly (TSan: a fiber each): fewer */
    for (int i = 0; s->ncf < MAXSUB / WD_SCALE && s->ntask < MAXSUB / WD_SCALE; i++) {
        weft_loop_t *loop = weft_runtime_loop(s->rt, (i + s->idx) % weft_runtime_workers(s->rt));
        int rc;
        if ((i + s->idx) % 2 == 0) {
            weft_cfuture_t *cf;
            rc = weft_run_coroutine_threadsafe(s->rt, loop, plus_one, (void *)(intptr_t)i, NULL, &cf);
            if (rc == 0)
                s->cf[s->ncf++] = cf;
        } else {
            weft_task_t *t;
            rc = weft_spawn_on(loop, &t, plus_one, (void *)(intptr_t)i, NULL);
            if (rc == 0)
                s->task[s->ntask++] = t;
        }
        if (rc == WEFT_ECLOSED) {
            s->refused = 1;
            break;
        }
        CHECK_EQ(rc, 0);
    }
    return NULL;
}

static void test_submit_naming_a_loop_races_shutdown(void)
{
    int rounds = 600 / WD_SCALE;
    long accepted = 0;
    srand(12345);
    for (int r = 0; r < rounds; r++) {
        wd_phase("submissions naming a loop vs shutdown");
        weft_runtime_t *rt;
        CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
        CHECK_EQ(weft_runtime_start(rt), 0);
        atomic_int go = 0;
        static struct sub s[SUBMITTERS];
        pthread_t th[SUBMITTERS];
        for (int i = 0; i < SUBMITTERS; i++) {
            s[i] = (struct sub){ .rt = rt, .idx = i, .go = &go };
            CHECK_EQ(pthread_create(&th[i], NULL, submitter, &s[i]), 0);
        }
        atomic_store(&go, 1);
        for (int k = rand() % 200; k > 0; k--)   /* shut down at a varying moment */
            sched_yield();
        CHECK_EQ(weft_runtime_shutdown(rt), 0);   /* hung here before the fix */
        for (int i = 0; i < SUBMITTERS; i++) {
            pthread_join(th[i], NULL);
            /* everything accepted ran (or started cancelled) before shutdown returned */
            for (int k = 0; k < s[i].ncf; k++) {
                CHECK(weft_cfuture_done(s[i].cf[k]));
                int rc = weft_cfuture_result(s[i].cf[k], 0, NULL);
                CHECK(rc == 0 || rc == WEFT_ECANCELED);
                weft_cfuture_release(s[i].cf[k]);
            }
            for (int k = 0; k < s[i].ntask; k++) {
                CHECK(weft_future_done(s[i].task[k]));
                weft_task_release(s[i].task[k]);
            }
            accepted += s[i].ncf + s[i].ntask;
        }
        CHECK_EQ(weft_runtime_free(rt), 0);
    }
    printf("  %d rounds, %ld submissions accepted\n", rounds, accepted);
}

/* ---- call_soon_threadsafe producers against shutdown -------------------------------------- */
#define PRODUCERS 4

static atomic_long cb_ran;

static int count_cb(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&cb_ran, 1, memory_order_relaxed);
    return 0;
}

struct producer {
    weft_runtime_t *rt;
    int idx;
    atomic_int *stop;
    long accepted;
    int refused;   /* saw WEFT_ECLOSED */
};

static void *producer(void *p)
{
    struct producer *pr = p;
    for (long i = 0; !atomic_load_explicit(pr->stop, memory_order_relaxed); i++) {
        weft_loop_t *loop = weft_runtime_loop(pr->rt, (int)((i + pr->idx) % weft_runtime_workers(pr->rt)));
        int rc = weft_call_soon_threadsafe(loop, count_cb, NULL);
        if (rc == WEFT_ECLOSED) {
            pr->refused = 1;
            break;
        }
        CHECK_EQ(rc, 0);
        pr->accepted++;
    }
    return NULL;
}

static void test_call_soon_threadsafe_producers_vs_shutdown(void)
{
    for (int round = 0; round < 3; round++) {
        wd_phase("call_soon_threadsafe producers vs shutdown");
        atomic_store(&cb_ran, 0);
        weft_runtime_t *rt;
        CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
        CHECK_EQ(weft_runtime_start(rt), 0);
        atomic_int stop = 0;
        struct producer pr[PRODUCERS];
        pthread_t th[PRODUCERS];
        for (int i = 0; i < PRODUCERS; i++) {
            pr[i] = (struct producer){ .rt = rt, .idx = i, .stop = &stop };
            CHECK_EQ(pthread_create(&th[i], NULL, producer, &pr[i]), 0);
        }
        while (atomic_load(&cb_ran) < 20000 / WD_SCALE)   /* the producers are flooding the loops */
            sched_yield();
        double t0 = now_s();
        CHECK_EQ(weft_runtime_shutdown(rt), 0);
        double took = now_s() - t0;
        /* After the shutdown every call is refused, from any thread, for good. Before the
         * fix the calls still returned 0 and their callbacks were dropped. */
        CHECK_EQ(weft_call_soon_threadsafe(weft_runtime_loop(rt, 0), count_cb, NULL), WEFT_ECLOSED);
        /* the producers stop on their own: each one's next call is refused */
        for (int i = 0; i < PRODUCERS; i++)
            pthread_join(th[i], NULL);
        atomic_store(&stop, 1);
        long accepted = 0;
        for (int i = 0; i < PRODUCERS; i++) {
            CHECK(pr[i].refused);
            accepted += pr[i].accepted;
        }
        /* every accepted callback ran before the loops exited: none dropped */
        CHECK_EQ(atomic_load(&cb_ran), accepted);
        wd_progress();
        printf("  round %d: shutdown took %.3f s under %d producers; %ld callbacks accepted, all ran\n", round,
               took, PRODUCERS, accepted);
        CHECK_EQ(weft_runtime_free(rt), 0);
    }
}

/* ---- after shutdown: every way in is refused ------------------------------------------------ */
static void test_refused_after_shutdown(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
    CHECK_EQ(weft_runtime_start(rt), 0);
    CHECK_EQ(weft_runtime_shutdown(rt), 0);
    weft_cfuture_t *cf = (weft_cfuture_t *)1;
    weft_task_t *t = (weft_task_t *)1;
    for (int i = 0; i < 2; i++) {
        weft_loop_t *l = weft_runtime_loop(rt, i);
        CHECK_EQ(weft_call_soon_threadsafe(l, count_cb, NULL), WEFT_ECLOSED);
        CHECK_EQ(weft_run_coroutine_threadsafe(rt, l, plus_one, NULL, NULL, &cf), WEFT_ECLOSED);
        CHECK(cf == NULL);
        CHECK_EQ(weft_spawn_on(l, &t, plus_one, NULL, NULL), WEFT_ECLOSED);
        CHECK(t == NULL);
    }
    CHECK_EQ(weft_run_coroutine_threadsafe(rt, NULL, plus_one, NULL, NULL, &cf), WEFT_ECLOSED);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

int main(int argc, char **argv)
{
    wd_start(60);
    RUN(test_refused_after_shutdown);
    RUN(test_submit_naming_a_loop_races_shutdown);
    RUN(test_call_soon_threadsafe_producers_vs_shutdown);
    return 0;
}
