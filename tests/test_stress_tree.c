/* Stress: 10,000 random trees of gather / wait_for / TaskGroup / shield /
 * timeout scopes with random cancellations (seeded PRNG, reproducible: pass
 * a seed as argv[1] to replay one).
 *
 * After each tree the test checks that
 *   - every task of the tree ended (the running-bodies counter is 0 and the
 *     loop has no task left but main),
 *   - every node argument was freed (a live-allocation counter in the
 *     coroutine arguments),
 *   - every error was delivered at most once, and only errors that were
 *     raised (each leaf error has its own code; the places that consume
 *     errors -- the root, TaskGroup error groups, gather with
 *     return_exceptions -- count them), and none was reported to the loop's
 *     exception handler as "never retrieved" (or a task "destroyed pending"),
 * and at the end that the library's heap did not grow with the number of
 * trees; ASan's leak check covers the rest at exit. */
#include "comb_util.h"

#include <malloc.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(UNDER_ASAN)
size_t __sanitizer_get_current_allocated_bytes(void);   /* ASan's allocator statistics */
#endif

/* TSan runs these trees ~30x slower (about 6 ms a tree, mostly creating
 * and destroying its fibers): 1,500 trees keep its run near 10 s alone and
 * under 20 s beside the rest of ctest -j. The normal and ASan builds do the
 * full 10,000. */
#if defined(__SANITIZE_THREAD__)
#define NTREES 1500
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NTREES 1500
#endif
#endif
#ifndef NTREES
#define NTREES 10000
#endif

#define MAXLEAVES 256
#define LEAF_BASE (-200000)
#define LEAF_CODE(id) (LEAF_BASE - (int)(id))
#define IS_LEAF_CODE(c) ((c) <= LEAF_BASE && (c) > LEAF_BASE - MAXLEAVES)
#define LEAF_ID(c) (LEAF_BASE - (c))

static uint64_t rng;
static uint32_t rnd(void)   /* xorshift64* */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}
static uint32_t rnd_n(uint32_t n) { return rnd() % n; }

enum { N_LEAF, N_GATHER, N_TG, N_WAITFOR, N_SHIELD, N_TIMEOUT, N_CANCELLER, N_KINDS };
enum { L_VALUE, L_ERROR, L_SWALLOW, L_ERROR_ON_CANCEL, L_KINDS };

typedef struct node node_t;
struct node {
    int kind;
    int leaf_kind, leaf_id, steps;   /* leaves */
    bool tiny_sleep;
    bool rex;                        /* gather: return_exceptions */
    bool direct;                     /* wait_for / timeout: call the child in this task */
    double timeout;
    int nchildren;
    node_t *children[4];
};

/* Per-tree bookkeeping. */
static uint64_t cur_seed;
static struct {
    int live_nodes;                  /* node structs allocated, not yet freed */
    int running;                     /* node bodies running (started, not returned) */
    int nleaves;
    uint8_t raised[MAXLEAVES];
    uint8_t delivered[MAXLEAVES];
    weft_task_t *tasks[512];         /* node tasks of the tree, for the cancellers */
    int ntasks;
} T;

static long total_trees, total_tasks, total_cancels, total_errors, total_timeouts;

static node_t *gen(int depth)
{
    node_t *n = calloc(1, sizeof *n);
    CHECK(n != NULL);
    T.live_nodes++;
    int kind = depth <= 0 || T.nleaves >= MAXLEAVES - 8 ? N_LEAF : (int)rnd_n(N_KINDS);
    if (kind == N_CANCELLER && depth > 2)
        kind = N_LEAF;
    n->kind = kind;
    switch (kind) {
    case N_LEAF:
    case N_CANCELLER:
        n->kind = kind;
        n->leaf_kind = (int)rnd_n(L_KINDS);
        n->leaf_id = T.nleaves++;
        n->steps = (int)rnd_n(4);
        n->tiny_sleep = rnd_n(8) == 0;
        break;
    case N_GATHER:
    case N_TG:
        n->rex = rnd_n(2);
        n->nchildren = 2 + (int)rnd_n(3);
        for (int i = 0; i < n->nchildren; i++)
            n->children[i] = gen(depth - 1);
        break;
    default:   /* wait_for, shield, timeout: one child */
        n->direct = rnd_n(2);
        switch (rnd_n(4)) {
        case 0: n->timeout = 0; break;
        case 1: n->timeout = 0.0002; break;
        case 2: n->timeout = WEFT_NO_TIMEOUT; break;
        default: n->timeout = 5; break;
        }
        n->nchildren = 1;
        n->children[0] = gen(depth - 1);
        break;
    }
    return n;
}

static const char *const kind_names[] = { "leaf", "gather", "taskgroup", "wait_for", "shield", "timeout", "canceller" };
static const char *const leaf_names[] = { "value", "error", "swallow", "error_on_cancel" };

static void dump(const node_t *n, int indent)   /* to replay a failing seed */
{
    fprintf(stderr, "%*s%s", indent * 2, "", kind_names[n->kind]);
    if (n->kind == N_LEAF || n->kind == N_CANCELLER)
        fprintf(stderr, " #%d %s steps=%d%s", n->leaf_id, leaf_names[n->leaf_kind], n->steps,
                n->tiny_sleep ? " sleep" : "");
    else if (n->kind == N_GATHER || n->kind == N_TG)
        fprintf(stderr, "%s", n->rex ? " rex" : "");
    else
        fprintf(stderr, " %s timeout=%g", n->direct ? "direct" : "task", n->timeout);
    fputc('\n', stderr);
    for (int i = 0; i < n->nchildren; i++)
        if (n->children[i])
            dump(n->children[i], indent + 1);
}

static void node_free(node_t *n)
{
    T.live_nodes--;
    free(n);
}

/* A subtree whose node was never run: free it all. */
static void free_tree(node_t *n)
{
    for (int i = 0; i < n->nchildren; i++)
        if (n->children[i])
            free_tree(n->children[i]);
    node_free(n);
}

static void deliver(int code)
{
    if (IS_LEAF_CODE(code)) {
        int id = LEAF_ID(code);
        CHECK(T.raised[id]);   /* only errors that were raised */
        T.delivered[id]++;
    }
}

static int run_node(node_t *n);

static void retrieve_later(weft_future_t *f, void *arg)
{
    (void)arg;
    deliver(weft_future_result(f, NULL));
}

/* A task running a node; the node (and its subtree) is freed when the task
 * is done, whether its body ran or not. */
static int node_task_fn(void *arg, weft_value_t *out)
{
    (void)out;
    return run_node(arg);
}

static void node_task_done(weft_future_t *f, void *arg)
{
    node_t *n = arg;
    for (int i = 0; i < T.ntasks; i++) {
        if (T.tasks[i] == f) {
            T.tasks[i] = T.tasks[--T.ntasks];
            weft_task_release(f);
            break;
        }
    }
    free_tree(n);
}

/* Start node @n as a task; children[i] ownership moves to the task. */
static weft_task_t *spawn(node_t *n, weft_taskgroup_t *tg)
{
    weft_task_t *t = NULL;
    char name[32];
    snprintf(name, sizeof name, "%s#%d", kind_names[n->kind], n->leaf_id);
    weft_task_opts_t o = { .eager_start = rnd_n(6) == 0, .stack_size = 32 * 1024, .name = name };
    int rc = tg ? weft_taskgroup_create_task(tg, &t, node_task_fn, n, &o)
                : weft_create_task(&t, node_task_fn, n, &o);
    if (rc < 0) {   /* a group shutting down refuses new tasks */
        CHECK(tg && (rc == WEFT_ESHUTDOWN || rc == WEFT_ECLOSED));
        free_tree(n);
        return NULL;
    }
    total_tasks++;
    CHECK_EQ(weft_future_add_done_callback(t, node_task_done, n), 0);
    if (T.ntasks < (int)(sizeof T.tasks / sizeof T.tasks[0]))
        T.tasks[T.ntasks++] = weft_future_retain(t);
    return t;
}

static int run_leaf(node_t *n)
{
    int rc = 0;
    for (int i = 0; i < n->steps && rc == 0; i++)
        rc = weft_yield();
    if (rc == 0 && n->tiny_sleep)
        rc = weft_sleep(0.0003);
    if (n->kind == N_CANCELLER && rc == 0 && T.ntasks) {
        weft_task_t *victim = T.tasks[rnd_n((uint32_t)T.ntasks)];
        if (weft_task_cancel(victim, "random") == 1)
            total_cancels++;
        rc = weft_yield();
    }
    switch (n->leaf_kind) {
    case L_VALUE:
        return rc;
    case L_SWALLOW:
        return 0;   /* catches a cancellation and returns a value */
    case L_ERROR_ON_CANCEL:
        if (rc != WEFT_ECANCELED)
            return rc;
        break;   /* an error raised while handling the cancellation */
    default:
        break;
    }
    {
        T.raised[n->leaf_id] = 1;
        total_errors++;
        return weft_raise(LEAF_CODE(n->leaf_id), "leaf %d", n->leaf_id);
    }
}

static int run_node(node_t *n)
{
    T.running++;
    int rc = 0;
    switch (n->kind) {
    case N_LEAF:
    case N_CANCELLER:
        rc = run_leaf(n);
        break;
    case N_GATHER: {
        weft_awaitable_t aws[4] = { { 0 } };
        weft_task_t *ts[4];
        int k = n->nchildren;
        for (int i = 0; i < k; i++) {
            ts[i] = spawn(n->children[i], NULL);
            n->children[i] = NULL;
            aws[i] = WEFT_AW(ts[i]);
        }
        int codes[4];
        rc = weft_gather_aw(aws, (size_t)k, NULL, codes, &(weft_gather_opts_t){ .return_exceptions = n->rex });
        if (n->rex && rc == 0)
            for (int i = 0; i < k; i++)
                deliver(codes[i]);
        for (int i = 0; i < k; i++)
            weft_task_release(ts[i]);
        break;
    }
    case N_TG: {
        weft_taskgroup_t tg;
        CHECK_EQ(weft_taskgroup_enter(&tg), 0);
        for (int i = 0; i < n->nchildren; i++) {
            weft_task_t *t = spawn(n->children[i], &tg);
            n->children[i] = NULL;
            if (t)
                weft_task_release(t);
            if (n->rex && rc == 0)
                rc = weft_yield();   /* some children start before others are added */
        }
        rc = weft_taskgroup_exit(&tg, rc);
        const weft_errgroup_t *eg = weft_taskgroup_errors(&tg);
        CHECK((rc == WEFT_EGROUP) == (eg != NULL));
        for (size_t i = 0; i < weft_errgroup_count(eg); i++)
            deliver(weft_errgroup_code(eg, i));
        weft_taskgroup_free(&tg);
        break;
    }
    case N_WAITFOR: {
        node_t *c = n->children[0];
        if (n->direct) {
            rc = weft_wait_for_coro(node_task_fn, c, n->timeout, NULL);
            free_tree(c);
        } else {
            weft_task_t *t = spawn(c, NULL);
            rc = weft_wait_for(t, n->timeout, NULL);
            if (rc == WEFT_ETIMEDOUT)
                CHECK(weft_future_done(t));   /* wait_for waited until it really finished */
            /* with timeout 0, a cancel of this task while wait_for waits for
             * the child's cancellation leaves the child running (asyncio's
             * _cancel_and_wait): its owner must look at its outcome */
            if (!weft_future_done(t)) {
                CHECK(rc == WEFT_ECANCELED && n->timeout == 0);
                CHECK_EQ(weft_future_add_done_callback(t, retrieve_later, NULL), 0);
            } else if (rc == WEFT_ECANCELED && n->timeout == 0) {
                deliver(weft_future_result(t, NULL));   /* it finished, we were cancelled meanwhile */
            }
            weft_task_release(t);
        }
        n->children[0] = NULL;
        if (rc == WEFT_ETIMEDOUT)
            total_timeouts++;
        break;
    }
    case N_SHIELD: {
        weft_task_t *t = spawn(n->children[0], NULL);
        n->children[0] = NULL;
        rc = weft_await_shielded(t, NULL);
        /* cancelled while the shielded task goes on: as asyncio's docs say,
         * whoever keeps the task must look at its outcome */
        if (rc == WEFT_ECANCELED && !weft_future_done(t))
            CHECK_EQ(weft_future_add_done_callback(t, retrieve_later, NULL), 0);
        weft_task_release(t);
        break;
    }
    case N_TIMEOUT: {
        weft_timeout_t to;
        int before = weft_task_cancelling(weft_current_task());
        CHECK_EQ(weft_timeout_enter(&to, n->timeout), 0);
        rc = run_node(n->children[0]);
        free_tree(n->children[0]);
        n->children[0] = NULL;
        int body = rc;
        rc = weft_timeout_exit(&to, rc);
        if (rc == WEFT_ETIMEDOUT && body == WEFT_ECANCELED) {   /* this scope's own expiry */
            CHECK(weft_timeout_expired(&to));
            CHECK(weft_task_cancelling(weft_current_task()) <= before);
            total_timeouts++;
        }
        break;
    }
    }
    T.running--;
    return rc;
}

/* ---- driver ----------------------------------------------------------------- */

static int all_tasks_count(void) { return weft_all_tasks(NULL, NULL, 0); }

static int one_tree(void)
{
    memset(&T, 0, sizeof T);
    node_t *root = gen(3 + (int)rnd_n(3));
    if (getenv("STRESS_DUMP"))
        dump(root, 0);
    weft_task_t *rt = spawn(root, NULL);
    int waits = (int)rnd_n(6);
    bool cancel_root = rnd_n(3) == 0;
    for (int i = 0; i < waits && !weft_future_done(rt); i++)
        CHECK_EQ(weft_yield(), 0);
    if (cancel_root && weft_task_cancel(rt, "root") == 1)
        total_cancels++;
    CHECK_EQ(weft_wait(&rt, 1, WEFT_NO_TIMEOUT, WEFT_ALL_COMPLETED, NULL, NULL, NULL, NULL), 0);
    int rc = weft_future_result(rt, NULL);
    CHECK(rc == 0 || rc == WEFT_ECANCELED || rc == WEFT_ETIMEDOUT || rc == WEFT_EGROUP || IS_LEAF_CODE(rc));
    deliver(rc);
    weft_task_release(rt);
    /* every task of the tree ends (shielded / gathered children may outlive
     * the root for a while) */
    for (int i = 0; (T.running || T.live_nodes || all_tasks_count() != 1) && i < 100000; i++)
        CHECK_EQ(i % 64 == 63 ? weft_sleep(0.0005) : weft_yield(), 0);
    CHECK_EQ(T.running, 0);
    CHECK_EQ(T.live_nodes, 0);
    CHECK_EQ(T.ntasks, 0);
    CHECK_EQ(all_tasks_count(), 1);
    for (int i = 0; i < T.nleaves; i++)
        CHECK(T.delivered[i] <= 1);
    if (reports)
        fprintf(stderr, "report: %s\n", last_report);
    CHECK_EQ(reports, 0);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    total_trees++;
    return 0;
}

static size_t heap_in_use(void)
{
#if defined(UNDER_ASAN)
    return __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}

static long ntrees = NTREES;
static bool single_seed;

static void stress_reports(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    count_reports(loop, info, ud);
    fprintf(stderr, "seed %llu: report: %s: %s (%d) [%s]\n", (unsigned long long)cur_seed, info->message, info->detail ? info->detail : "", info->code,
            info->future ? weft_task_get_name(info->future) : "-");
}

static int stress_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    watch_reports();
    weft_loop_set_exception_handler(weft_running_loop(), stress_reports, NULL);
    size_t warm = 0;
    for (long i = 0; i < ntrees; i++) {
        if (!single_seed)
            rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        uint64_t seed = cur_seed = rng;
        if (one_tree() != 0) {
            fprintf(stderr, "tree %ld (seed %llu) failed\n", i, (unsigned long long)seed);
            return -1;
        }
        if (i == ntrees / 10)
            warm = heap_in_use();
    }
    size_t end = heap_in_use();
    /* caches (handle pools, stack pools) are warm after the first tenth:
     * the heap must not keep growing with the number of trees */
    if (warm && end > warm + 4 * 1024 * 1024) {
        fprintf(stderr, "heap grew from %zu to %zu bytes\n", warm, end);
        return -1;
    }
    return 0;
}

static void test_stress_tree(void)
{
    CHECK_EQ(run(stress_main, NULL), 0);
    printf("trees %ld tasks %ld cancels %ld errors %ld timeouts %ld\n", total_trees, total_tasks, total_cancels,
           total_errors, total_timeouts);
    CHECK_EQ(total_trees, ntrees);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "test_stress_tree") != 0) {   /* replay one seed */
        rng = strtoull(argv[1], NULL, 0);
        ntrees = 1;
        single_seed = true;
        argc = 1;
    }
    RUN(test_stress_tree);
    return 0;
}
