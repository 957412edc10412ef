/* Randomized stress of the runtime, checked against invariants rather than
 * against an expected trace.
 *
 * Each round starts a runtime in the background; foreign threads submit work
 * (run_coroutine_threadsafe to a named loop or to any, spawn_on,
 * call_soon_threadsafe); the tasks await each other across loops, sleep, time
 * out, cancel their children, run blocking calls on threads and return owned
 * values; the runtime is shut down at a random moment. Then:
 *   - every task whose creation was accepted ended exactly once (a done
 *     callback per task, or its concurrent future, counts the end);
 *   - every owned value (weft_value_t with a dtor) a task produced was
 *     destroyed exactly once, once every reference is gone;
 *   - every call_soon_threadsafe that returned 0 ran its callback;
 *   - nothing hangs (a progress watchdog fails a round that stops moving).
 * Seeded: the seed is printed; WEFT_STRESS_SEED=<n> replays a run (the thread
 * interleavings differ, the decisions do not), WEFT_STRESS_SECONDS=<s> sets its
 * length (default 3; `make soak` runs it for minutes under ASan and TSan). */
#include "check.h"
#include "watchdog.h"
#include "weft.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAXREC (1 << 16)   /* task records per round; creation stops beyond */
#define FOREIGN 2          /* submitting threads per round */
#define MAXFOREIGN 256     /* submissions each keeps to check after the round */
#define MAXDEPTH 4

struct rec {
    atomic_int accepted;   /* creation returned 0 */
    atomic_int ends;       /* done callbacks seen */
    atomic_int made;       /* owned values produced */
    atomic_int freed;      /* owned values destroyed */
};

static struct rec recs[MAXREC];
static atomic_int next_id;
static uint64_t round_seed;
static weft_runtime_t *cur_rt;
static atomic_long cb_accepted, cb_ran;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint32_t next_rand(uint64_t *s)
{
    *s = mix(*s + 0x9e3779b97f4a7c15ull);
    return (uint32_t)(*s >> 32);
}

static int new_id(void)
{
    int id = atomic_fetch_add(&next_id, 1);
    return id < MAXREC ? id : -1;
}

/* A task's argument: its record id and depth, packed (no memory to free if
 * the task is cancelled before it runs). */
static void *pack(int id, int depth) { return (void *)(uintptr_t)(((uintptr_t)id << 8) | (uintptr_t)depth); }
static int arg_id(void *a) { return (int)((uintptr_t)a >> 8); }
static int arg_depth(void *a) { return (int)((uintptr_t)a & 0xff); }

static void on_task_end(weft_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add(&recs[(intptr_t)arg].ends, 1);
}

static void on_cf_end(weft_cfuture_t *cf, void *arg)
{
    (void)cf;
    atomic_fetch_add(&recs[(intptr_t)arg].ends, 1);
}

struct owned {
    int id;
};

static void owned_dtor(void *p)
{
    struct owned *o = p;
    atomic_fetch_add(&recs[o->id].freed, 1);
    free(o);
}

static atomic_long reports;

/* the user errors tasks return now and then reach the exception handler as
 * "never retrieved": counted, not printed */
static void quiet_handler(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)info;
    (void)ud;
    atomic_fetch_add(&reports, 1);
}

static int count_cb(void *arg)
{
    (void)arg;
    atomic_fetch_add(&cb_ran, 1);
    return 0;
}

static int blocking_fn(void *arg, weft_value_t *out)
{
    usleep((useconds_t)((uintptr_t)arg % 2000));
    out->i = 1;
    return 0;
}

static int node(void *arg, weft_value_t *out);

static weft_loop_t *random_loop(uint64_t *rs)
{
    return weft_runtime_loop(cur_rt, (int)(next_rand(rs) % (uint32_t)weft_runtime_workers(cur_rt)));
}

/* await (or time out on, or cancel) a child task created here */
static int finish_child(weft_task_t *c, uint64_t *rs)
{
    int rc;
    switch (next_rand(rs) % 3) {
    case 0:
        rc = weft_await(c, NULL);
        break;
    case 1:
        rc = weft_wait_for(c, (double)(next_rand(rs) % 3000) / 1e6, NULL);
        break;
    default:
        weft_task_cancel(c, "stress");
        rc = weft_await(c, NULL);
        break;
    }
    weft_task_release(c);
    return rc;
}

static int one_op(int depth, uint64_t *rs)
{
    weft_loop_t *here = weft_running_loop();
    int rc = 0;
    switch (next_rand(rs) % 9) {
    case 0:
        rc = weft_sleep((double)(next_rand(rs) % 2000) / 1e6);
        break;
    case 1:
    case 2: {   /* a child: loop-affine, or stealable */
        int id = depth < MAXDEPTH ? new_id() : -1;
        if (id < 0)
            break;
        weft_task_t *c;
        rc = (next_rand(rs) & 1) ? weft_create_task(&c, node, pack(id, depth + 1), NULL)
                                 : weft_spawn(&c, node, pack(id, depth + 1), NULL);
        if (rc < 0)
            break;
        atomic_store(&recs[id].accepted, 1);
        CHECK_EQ(weft_future_add_done_callback(c, on_task_end, (void *)(intptr_t)id), 0);
        rc = finish_child(c, rs);
        break;
    }
    case 3: {   /* a child on a chosen loop (often another one) */
        int id = depth < MAXDEPTH ? new_id() : -1;
        if (id < 0)
            break;
        weft_task_t *c;
        rc = weft_spawn_on(random_loop(rs), &c, node, pack(id, depth + 1), NULL);
        if (rc < 0) {
            CHECK_EQ(rc, WEFT_ECLOSED);   /* the shutdown began */
            break;
        }
        atomic_store(&recs[id].accepted, 1);
        CHECK_EQ(weft_future_add_done_callback(c, on_task_end, (void *)(intptr_t)id), 0);
        rc = finish_child(c, rs);
        break;
    }
    case 4: {   /* run_coroutine_threadsafe from a task, awaited across loops under a timeout */
        int id = depth < MAXDEPTH ? new_id() : -1;
        if (id < 0)
            break;
        weft_cfuture_t *cf;
        weft_loop_t *target = (next_rand(rs) & 1) ? random_loop(rs) : NULL;
        rc = weft_run_coroutine_threadsafe(cur_rt, target, node, pack(id, depth + 1), NULL, &cf);
        if (rc < 0) {
            CHECK_EQ(rc, WEFT_ECLOSED);
            break;
        }
        atomic_store(&recs[id].accepted, 1);
        CHECK_EQ(weft_cfuture_add_done_callback(cf, on_cf_end, (void *)(intptr_t)id), 0);
        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, (double)(next_rand(rs) % 4000) / 1e6), 0);
        rc = weft_timeout_exit(&to, weft_cfuture_await(cf, NULL));
        if (rc == WEFT_ETIMEDOUT && (next_rand(rs) & 1))
            weft_cfuture_cancel(cf);
        weft_cfuture_release(cf);
        break;
    }
    case 5:
        rc = weft_to_thread(blocking_fn, (void *)(uintptr_t)next_rand(rs), NULL);
        break;
    case 6: {   /* a timeout scope around a sleep that may or may not outlast it */
        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, (double)(next_rand(rs) % 2000) / 1e6), 0);
        rc = weft_timeout_exit(&to, weft_sleep((double)(next_rand(rs) % 2000) / 1e6));
        break;
    }
    case 7: {
        weft_loop_t *l = random_loop(rs);
        rc = weft_call_soon_threadsafe(l, count_cb, NULL);
        if (rc == 0)
            atomic_fetch_add(&cb_accepted, 1);
        else
            CHECK_EQ(rc, WEFT_ECLOSED);
        rc = 0;
        break;
    }
    default:
        rc = weft_yield();
        break;
    }
    (void)here;
    return rc;
}

static int node(void *arg, weft_value_t *out)
{
    int id = arg_id(arg), depth = arg_depth(arg);
    uint64_t rs = mix(round_seed ^ ((uint64_t)id << 20));
    int nops = (int)(next_rand(&rs) % 5);
    for (int i = 0; i < nops; i++) {
        one_op(depth, &rs);
        if (weft_task_cancelling(weft_current_task()) > 0)
            return WEFT_ECANCELED;   /* cancelled (the shutdown, or a parent): stop here */
    }
    if (next_rand(&rs) % 4 == 0)
        return -7000 - (int)(next_rand(&rs) % 10);   /* a user error now and then */
    struct owned *o = malloc(sizeof *o);
    CHECK(o);
    o->id = id;
    atomic_fetch_add(&recs[id].made, 1);
    *out = WEFT_VALUE_OWNED(o, owned_dtor);
    return 0;
}

/* ---- foreign submitters ------------------------------------------------------------ */
struct foreign {
    int idx;
    atomic_int *stop;
    weft_cfuture_t *cf[MAXFOREIGN];
    int cf_id[MAXFOREIGN];
    weft_task_t *task[MAXFOREIGN];
    int task_id[MAXFOREIGN];
    int ncf, ntask;
};

static void *foreign_thread(void *p)
{
    struct foreign *f = p;
    uint64_t rs = mix(round_seed ^ (0xf00dull + (uint64_t)f->idx));
    while (!atomic_load(f->stop) && f->ncf < MAXFOREIGN && f->ntask < MAXFOREIGN) {
        int rc = 0;
        switch (next_rand(&rs) % 3) {
        case 0: {
            int id = new_id();
            if (id < 0)
                break;
            weft_cfuture_t *cf;
            weft_loop_t *target = (next_rand(&rs) & 1) ? random_loop(&rs) : NULL;
            rc = weft_run_coroutine_threadsafe(cur_rt, target, node, pack(id, 0), NULL, &cf);
            if (rc == 0) {
                atomic_store(&recs[id].accepted, 1);
                CHECK_EQ(weft_cfuture_add_done_callback(cf, on_cf_end, (void *)(intptr_t)id), 0);
                f->cf_id[f->ncf] = id;
                f->cf[f->ncf++] = cf;
            }
            break;
        }
        case 1: {
            int id = new_id();
            if (id < 0)
                break;
            weft_task_t *t;
            rc = weft_spawn_on(random_loop(&rs), &t, node, pack(id, 0), NULL);
            if (rc == 0) {
                atomic_store(&recs[id].accepted, 1);
                f->task_id[f->ntask] = id;
                f->task[f->ntask++] = t;
            }
            break;
        }
        default:
            rc = weft_call_soon_threadsafe(random_loop(&rs), count_cb, NULL);
            if (rc == 0)
                atomic_fetch_add(&cb_accepted, 1);
            break;
        }
        if (rc == WEFT_ECLOSED)
            break;   /* the shutdown began: refused from now on */
        CHECK_EQ(rc, 0);
        if (next_rand(&rs) % 8 == 0)
            usleep(next_rand(&rs) % 500);
    }
    return NULL;
}

/* ---- one round ----------------------------------------------------------------------- */
static void one_round(int round, uint64_t seed, long *totals)
{
    round_seed = mix(seed + (uint64_t)round);
    uint64_t rs = round_seed;
    memset(recs, 0, sizeof recs);
    atomic_store(&next_id, 0);
    atomic_store(&cb_accepted, 0);
    atomic_store(&cb_ran, 0);
    int workers = 1 + (int)(next_rand(&rs) % 3);
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers, .blocking_threads = 4 }, &cur_rt), 0);
    for (int i = 0; i < workers; i++)   /* before the loops run: setup code */
        weft_loop_set_exception_handler(weft_runtime_loop(cur_rt, i), quiet_handler, NULL);
    CHECK_EQ(weft_runtime_start(cur_rt), 0);
    atomic_int stop = 0;
    static struct foreign f[FOREIGN];
    pthread_t th[FOREIGN];
    for (int i = 0; i < FOREIGN; i++) {
        memset(&f[i], 0, sizeof f[i]);
        f[i].idx = i;
        f[i].stop = &stop;
        CHECK_EQ(pthread_create(&th[i], NULL, foreign_thread, &f[i]), 0);
    }
    usleep((useconds_t)(next_rand(&rs) % (150000 / WD_SCALE + 1)));   /* shut down at a random moment */
    wd_progress();
    CHECK_EQ(weft_runtime_shutdown(cur_rt), 0);
    wd_progress();
    atomic_store(&stop, 1);
    for (int i = 0; i < FOREIGN; i++)
        pthread_join(th[i], NULL);
    /* after the shutdown returned: everything accepted has ended */
    for (int i = 0; i < FOREIGN; i++) {
        for (int k = 0; k < f[i].ncf; k++) {
            CHECK(weft_cfuture_done(f[i].cf[k]));
            weft_cfuture_release(f[i].cf[k]);
        }
        for (int k = 0; k < f[i].ntask; k++) {
            CHECK(weft_future_done(f[i].task[k]));
            atomic_fetch_add(&recs[f[i].task_id[k]].ends, 1);   /* no loop to run a done callback on */
            weft_task_release(f[i].task[k]);
        }
    }
    CHECK_EQ(weft_runtime_free(cur_rt), 0);
    cur_rt = NULL;
    int n = atomic_load(&next_id);
    if (n > MAXREC)
        n = MAXREC;
    long accepted = 0, made = 0;
    for (int id = 0; id < n; id++) {
        struct rec *r = &recs[id];
        int acc = atomic_load(&r->accepted), ends = atomic_load(&r->ends);
        if (ends != acc || atomic_load(&r->freed) != atomic_load(&r->made) || atomic_load(&r->made) > 1) {
            fprintf(stderr, "round %d (seed %llu): task %d accepted %d ended %d times, %d values made, %d freed\n",
                    round, (unsigned long long)seed, id, acc, ends, atomic_load(&r->made), atomic_load(&r->freed));
            CHECK(0);
        }
        accepted += acc;
        made += atomic_load(&r->made);
    }
    CHECK_EQ(atomic_load(&cb_ran), atomic_load(&cb_accepted));   /* every accepted callback ran */
    totals[0] += accepted;
    totals[1] += made;
    totals[2] += atomic_load(&cb_accepted);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("WEFT_STRESS_SEED");
    uint64_t seed = e && *e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    e = getenv("WEFT_STRESS_SECONDS");
    double seconds = e && *e ? atof(e) : 3.0;
    printf("test_stress_random: seed %llu (replay with WEFT_STRESS_SEED=%llu), %.0f s\n", (unsigned long long)seed,
           (unsigned long long)seed, seconds);
    fflush(stdout);
    wd_start(60);
    long totals[3] = { 0, 0, 0 };
    double t0 = now_s();
    int round = 0;
    do {
        wd_phase("a round");
        one_round(round++, seed, totals);
    } while (now_s() - t0 < seconds);
    printf("ok: %d rounds, %ld tasks accepted (each ended once), %ld owned values (each destroyed once), "
           "%ld thread-safe callbacks (all ran); %ld errors reported to the handlers\n", round, totals[0], totals[1],
           totals[2], atomic_load(&reports));
    return 0;
}
