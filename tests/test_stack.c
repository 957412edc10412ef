/* Task stacks: overflow detection (guard pages and the red zone of slab
 * stacks), one million concurrently suspended tasks, and stack pooling.
 * White-box: uses the core's internal headers (weft__task_t, weft__stack_pool_t and the
 * weft__overflow_hook test hook). */
#include "check.h"

#include "core/task.h"
#include "weft.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

/* (c) runs one million tasks in plain builds, with the default guard budget
 * (8192 guarded stacks, slabs beyond). Under ASan 20,000 (shadow memory and
 * per-switch bookkeeping make 1M too slow and too large). Under TSan 1,000:
 * TSan gives every fiber (task) its own trace, about 0.8 MB of RSS and 8
 * memory mappings each, so ~7,000 live tasks exhaust vm.max_map_count (65530)
 * and take several GB; so that the tasks past the budget still come from
 * slabs there, the TSan run uses a budget of 256 (in a re-executed child). */
#if defined(TEST_TSAN)
#define MANY_TASKS 1000
#define MANY_CHILD_BUDGET "256"
#elif defined(TEST_ASAN)
#define MANY_TASKS 20000
#else
#define MANY_TASKS 1000000
#endif

static int cases_run, cases_skipped;

static const char *self_exe = "/proc/self/exe";

/* ---- helpers ------------------------------------------------------------------ */

static weft__task_t *current_internal(void)
{
    weft_task_t *t = weft_current_task();
    CHECK(t != NULL);
    return (weft__task_t *)(void *)t;
}

static int hook_calls;
static char hook_name[64];
static size_t hook_size;

static void overflow_hook(const char *name, size_t size)
{
    hook_calls++;
    snprintf(hook_name, sizeof hook_name, "%s", name ? name : "(null)");
    hook_size = size;
}

/* Dirty the lowest WEFT__REDZONE bytes of the current task's stack, switch out
 * (the scheduler checks the zone of a slab stack at least every 16th switch
 * and checks the saved stack pointer at every switch), then repair it. */
static int trip_redzone(void *arg, weft_value_t *out)
{
    (void)out;
    weft__task_t *t = current_internal();
    CHECK(t->stack != NULL);
    if (arg)
        *(weft__stack_t **)arg = t->stack;
    volatile char *lo = t->stack->lo;
    int before = hook_calls;
    for (int i = 0; i < WEFT__REDZONE; i++)
        lo[i] = (char)(0xA0 + i);
    for (int k = 0; k < 16 && hook_calls == before; k++)
        CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(hook_calls, before + 1);   /* reported within 16 switches, once */
    for (int i = 0; i < WEFT__REDZONE; i++)
        lo[i] = 0;
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(hook_calls, before + 1);   /* a clean zone is not reported */
    return 0;
}

/* ---- (a) guard page ------------------------------------------------------------ */

#if !defined(TEST_ASAN)
static volatile int never_depth = -1;   /* keeps the compiler from calling it infinite */

static int recurse_forever(int n)
{
    if (n == never_depth)
        return 0;
    volatile char frame[192];
    frame[0] = (char)n;
    frame[191] = (char)n;
    return recurse_forever(n + 1) + frame[n % 192];   /* not a tail call */
}

static int deep_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return recurse_forever(0);
}

static void guard_child(void)
{
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    weft_loop_t *loop;
    if (weft_loop_new(&loop) != 0)
        _exit(3);
    weft_task_t *t;
    weft_task_opts_t o = { .name = "deep", .stack_size = 64 * 1024 };
    if (weft_loop_create_task(loop, &t, deep_coro, NULL, &o) != 0)
        _exit(4);
    weft_loop_run_until_complete(loop, t, NULL);
    _exit(5);   /* must not get here */
}
#endif

/* A task recursing without bound hits its guard page: weft reports the task's
 * name and stack size on stderr, then the process dies by a signal. */
static void test_guard_page_overflow(void)
{
#if defined(TEST_ASAN)
    /* AddressSanitizer owns SIGSEGV (weft does not install its reporter there) */
    printf("skip test_guard_page_overflow: AddressSanitizer build\n");
    cases_skipped++;
    return;
#else
    cases_run++;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        guard_child();
    }
    close(p[1]);
    char buf[8192];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(p[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf - 1)
            break;
    }
    buf[n] = 0;
    close(p[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || !strstr(buf, "stack overflow in task 'deep'") || !strstr(buf, "65536"))
        fprintf(stderr, "child status 0x%x, stderr:\n%s\n", status, buf);
    CHECK(WIFSIGNALED(status));
    CHECK(strstr(buf, "stack overflow in task 'deep'") != NULL);
    CHECK(strstr(buf, "65536") != NULL);
#endif
}

/* ---- (a2) frames larger than a page; whose guard was hit ------------------------------ */

#if !defined(TEST_ASAN)
/* Run @child in a forked process with stderr captured into @buf; returns the
 * wait status. */
static int run_child(void (*child)(void), char *buf, size_t cap)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        child();
        _exit(5);   /* must not get here */
    }
    close(p[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(p[0], buf + n, cap - 1 - n);
        if (r <= 0 || (n += (size_t)r) == cap - 1)
            break;
    }
    buf[n] = 0;
    close(p[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    return status;
}

/* This file is built without -fstack-clash-protection (tests/CMakeLists.txt),
 * like user code that forgot it: a 24 KiB frame moves the stack pointer down
 * in one step and its first write is 24 KiB lower. Three of them overrun a
 * 64 KiB stack by about 9 KiB: past a one-page guard, into the stack mapped
 * just below (the victim's); inside weft's 64 KiB guard region. */
static volatile int big_levels = 3;

static int big_frames(int n)
{
    volatile char frame[24 * 1024];
    frame[0] = (char)n;   /* the lowest byte first: a jump, not a walk down */
    frame[1] = 0;
    if (n + 1 < big_levels)
        frame[1] = (char)big_frames(n + 1);
    return frame[0] + frame[1];
}

static weft_future_t *park_gate;

static int victim_coro(void *arg, weft_value_t *out)
{
    (void)out;
    *(weft__stack_t **)arg = current_internal()->stack;
    return weft_await(park_gate, NULL);   /* suspended, its frames at the top of its stack */
}

static int jumper_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_yield(), 0);   /* the victim takes its stack (mapped below ours) meanwhile */
    return big_frames(0);
}

static void big_frame_child(void)
{
    weft_loop_t *loop;
    if (weft_loop_new(&loop) != 0)
        _exit(3);
    CHECK_EQ(weft_future_new(loop, &park_gate), 0);
    weft__stack_t *vs = NULL;
    weft_task_t *j, *v;
    weft_task_opts_t jo = { .name = "jumper", .stack_size = 64 * 1024 };
    weft_task_opts_t vo = { .name = "victim", .stack_size = 64 * 1024 };
    CHECK_EQ(weft_loop_create_task(loop, &j, jumper_coro, NULL, &jo), 0);
    CHECK_EQ(weft_loop_create_task(loop, &v, victim_coro, &vs, &vo), 0);
    weft_loop_run_until_complete(loop, j, NULL);
    fprintf(stderr, "jumper returned: its frames landed outside its guard\n");
    _exit(6);
}

/* A frame larger than a page, in code built without stack-clash probes,
 * still lands in the guard region: reported as the task's overflow, never a
 * bare SIGSEGV or silent writes into a neighbour's stack. */
static void test_big_frame_hits_guard(void)
{
    cases_run++;
    char buf[8192];
    int status = run_child(big_frame_child, buf, sizeof buf);
    if (!WIFSIGNALED(status) || !strstr(buf, "stack overflow in task 'jumper'"))
        fprintf(stderr, "child status 0x%x, stderr:\n%s\n", status, buf);
    CHECK(WIFSIGNALED(status));
    CHECK(strstr(buf, "stack overflow in task 'jumper'") != NULL);
    CHECK(strstr(buf, "65536") != NULL);
}

static weft__stack_t *owner_stack;

static int owner_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    owner_stack = current_internal()->stack;
    return weft_await(park_gate, NULL);
}

static int hitter_coro(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK(owner_stack != NULL && owner_stack->guard != NULL);
    owner_stack->guard[100] = 1;   /* into the other task's guard region */
    return 0;
}

static void owner_child(void)
{
    weft_loop_t *loop;
    if (weft_loop_new(&loop) != 0)
        _exit(3);
    CHECK_EQ(weft_future_new(loop, &park_gate), 0);
    weft_task_t *o, *h;
    CHECK_EQ(weft_loop_create_task(loop, &o, owner_coro, NULL, &(weft_task_opts_t){ .name = "owner" }), 0);
    CHECK_EQ(weft_loop_create_task(loop, &h, hitter_coro, NULL, &(weft_task_opts_t){ .name = "hitter" }), 0);
    weft_loop_run_until_complete(loop, h, NULL);
    _exit(6);
}

/* The report names the task whose guard the fault address is in (looked up
 * among the loop's tasks), not whichever task happened to run. */
static void test_guard_report_names_owner(void)
{
    cases_run++;
    char buf[8192];
    int status = run_child(owner_child, buf, sizeof buf);
    if (!WIFSIGNALED(status) || !strstr(buf, "stack overflow in task 'owner'"))
        fprintf(stderr, "child status 0x%x, stderr:\n%s\n", status, buf);
    CHECK(WIFSIGNALED(status));
    CHECK(strstr(buf, "stack overflow in task 'owner'") != NULL);
    CHECK(strstr(buf, "while task 'hitter' ran") != NULL);
}
#else
static void test_big_frame_hits_guard(void)
{
    printf("skip test_big_frame_hits_guard: AddressSanitizer build\n");
    cases_skipped++;
}
static void test_guard_report_names_owner(void)
{
    printf("skip test_guard_report_names_owner: AddressSanitizer build\n");
    cases_skipped++;
}
#endif

/* ---- (b) red zone of a slab stack --------------------------------------------------- */

static int redzone_child_main(void)
{
    /* started by exec with WEFT_GUARD_BUDGET=0: every stack comes from a slab */
    weft__overflow_hook = overflow_hook;
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft__stack_t *st = NULL;
    weft_task_t *t;
    weft_task_opts_t o = { .name = "redzone", .stack_size = 64 * 1024 };
    CHECK_EQ(weft_loop_create_task(loop, &t, trip_redzone, &st, &o), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    CHECK(st != NULL);
    CHECK(st->guard == NULL);   /* a slab stack, no guard page */
    CHECK_EQ(hook_calls, 1);
    CHECK_STR(hook_name, "redzone");
    CHECK_EQ(hook_size, 64 * 1024);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
    printf("redzone child: hook called once for '%s' (%zu bytes)\n", hook_name, hook_size);
    return 0;
}

static void test_redzone_slab_stack(void)
{
    cases_run++;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setenv("WEFT_GUARD_BUDGET", "0", 1);
        char *args[] = { (char *)"test_stack", (char *)"--redzone-child", NULL };
        execv(self_exe, args);
        _exit(127);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

/* Guarded stacks need no red-zone check: an overflow hits the guard page at
 * once and is reported by the SIGSEGV handler (test_guard_page_overflow), so
 * the scheduler reads no extra cache line for them. */

/* ---- (c) one million suspended tasks ------------------------------------------------ */

struct many {
    weft_future_t *gate;
    long counter;
    long resumed;
};

static int many_coro(void *arg, weft_value_t *out)
{
    struct many *m = arg;
    m->counter++;
    int rc = weft_await(m->gate, out);
    if (rc == 0)
        m->resumed++;
    return rc;
}

static int many_main(void *arg, weft_value_t *out)
{
    (void)out;
    struct many *m = arg;
    weft_loop_t *loop = weft_running_loop();
    long n = MANY_TASKS;
    weft_task_t **tasks = malloc((size_t)n * sizeof *tasks);
    CHECK(tasks != NULL);
    CHECK_EQ(weft_future_new(NULL, &m->gate), 0);
    for (long i = 0; i < n; i++)
        CHECK_EQ(weft_create_task(&tasks[i], many_coro, m, NULL), 0);
    CHECK_EQ(weft_yield(), 0);   /* every task runs its first step, then we resume */

    /* all of them suspended at once */
    CHECK_EQ(m->counter, n);
    CHECK_EQ(weft_all_tasks(NULL, NULL, 0), n + 1);
    for (long i = 0; i < n; i += n / 100)
        CHECK_EQ(weft_task_state(tasks[i]), WEFT_TASK_SUSPENDED);
    CHECK(weft_task_awaiting(tasks[n - 1]) == m->gate);
    CHECK_EQ((long)loop->stacks.live, n + 1);

    /* overflow detection still works at this scale: past the guard budget the
     * new task's stack comes from a slab and its red zone is checked */
    weft__overflow_hook = overflow_hook;
    hook_calls = 0;
    weft__stack_t *st = NULL;
    weft_task_t *rz;
    CHECK_EQ(weft_create_task(&rz, trip_redzone, &st, &(weft_task_opts_t){ .name = "redzone-at-scale" }), 0);
    CHECK_EQ(weft_await(rz, NULL), 0);
    CHECK_EQ(hook_calls, 1);
    CHECK_STR(hook_name, "redzone-at-scale");
    CHECK_EQ(hook_size, WEFT_DEFAULT_STACK_SIZE);
    CHECK(st != NULL);
    CHECK(st->guard == NULL);   /* past the guard budget: a slab stack */
    weft_task_release(rz);
    weft__overflow_hook = NULL;

    CHECK_EQ(weft_future_set_result(m->gate, WEFT_VALUE_INT(5)), 0);
    for (long i = 0; i < n; i++) {
        weft_value_t v = WEFT_VALUE_INT(0);
        CHECK_EQ(weft_await(tasks[i], &v), 0);
        CHECK_EQ(v.i, 5);
        weft_task_release(tasks[i]);
    }
    CHECK_EQ(m->resumed, n);
    CHECK_EQ(weft_all_tasks(NULL, NULL, 0), 1);
    weft_future_release(m->gate);
    free(tasks);
    return 0;
}

static void run_many(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct many m = { 0 };
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, many_main, &m, &(weft_task_opts_t){ .name = "many-main" }), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%d concurrently suspended tasks: %.2f s, peak RSS %.1f MiB\n", MANY_TASKS, secs,
           (double)ru.ru_maxrss / 1024.0);
    fflush(stdout);
}

static void test_million_suspended_tasks(void)
{
    cases_run++;
#if defined(MANY_CHILD_BUDGET)
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setenv("WEFT_GUARD_BUDGET", MANY_CHILD_BUDGET, 1);
        char *args[] = { (char *)"test_stack", (char *)"--many-child", NULL };
        execv(self_exe, args);
        _exit(127);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
#else
    run_many();
#endif
}

/* ---- (d) pooling ------------------------------------------------------------------- */

#define POOL_RUNS 10000

struct pool_probe {
    void *seen[16];
    int nseen;
    int overflowed;
};

static int short_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct pool_probe *p = arg;
    void *lo = current_internal()->stack->lo;
    int i;
    for (i = 0; i < p->nseen; i++)
        if (p->seen[i] == lo)
            break;
    if (i == p->nseen) {
        if (p->nseen < 16)
            p->seen[p->nseen++] = lo;
        else
            p->overflowed = 1;
    }
    return weft_yield();
}

static int pool_main(void *arg, weft_value_t *out)
{
    (void)out;
    struct pool_probe *p = arg;
    weft_loop_t *loop = weft_running_loop();
    for (int i = 0; i < POOL_RUNS; i++) {
        weft_task_t *t;
        CHECK_EQ(weft_create_task(&t, short_coro, p, NULL), 0);
        CHECK_EQ(weft_await(t, NULL), 0);
        weft_task_release(t);
    }
    /* only this task's stack is in use; the pool holds what was ever made */
    CHECK_EQ((long)loop->stacks.live, 1);
    size_t nfree = 0;
    for (int c = 0; c < loop->stacks.ncls; c++)
        nfree += loop->stacks.cls[c].nfree;
    CHECK(nfree >= 1);
    CHECK(nfree <= 2);   /* 10,000 tasks, 1 or 2 stacks ever created for them */
    return 0;
}

static void test_stack_pool_reuse(void)
{
    cases_run++;
    struct pool_probe p = { 0 };
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, pool_main, &p, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(loop, t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
    CHECK(!p.overflowed);
    CHECK(p.nseen >= 1);
    CHECK(p.nseen <= 2);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--redzone-child") == 0)
        return redzone_child_main();
    if (argc > 1 && strcmp(argv[1], "--many-child") == 0) {
        run_many();
        return 0;
    }
    RUN(test_guard_page_overflow);
    RUN(test_big_frame_hits_guard);
    RUN(test_guard_report_names_owner);
    RUN(test_redzone_slab_stack);
    RUN(test_million_suspended_tasks);
    RUN(test_stack_pool_reuse);
    if (cases_run == 0 && cases_skipped > 0)
        return 77;
    return 0;
}
