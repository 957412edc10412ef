/* Debug mode: each warning is triggered on purpose and its text
 * checked; the dump lists tasks of several loops. Derived from CPython's
 * test_asyncio/test_base_events.py (test_slow_callback_duration / debug
 * checks) and test_tasks.py (test_task_repr, never-retrieved). */
#include "check.h"
#include "watchdog.h"
#include "core/task.h"
#include "weft.h"

#include <signal.h>
#include <unistd.h>

static char logbuf[65536];
static int nlogs;
static uv_mutex_t logmu;

static void hook(weft_log_level_t level, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    uv_mutex_lock(&logmu);
    size_t len = strlen(logbuf);
    snprintf(logbuf + len, sizeof logbuf - len, "%s\n", msg);
    nlogs++;
    uv_mutex_unlock(&logmu);
}

static void reset_log(void)
{
    uv_mutex_lock(&logmu);
    logbuf[0] = 0;
    nlogs = 0;
    uv_mutex_unlock(&logmu);
}

static bool log_has(const char *s)
{
    uv_mutex_lock(&logmu);
    bool r = strstr(logbuf, s) != NULL;
    uv_mutex_unlock(&logmu);
    return r;
}

static void spin_ms(int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (uv_hrtime() < end)
        ;
}

static int slowpoke(void *arg, weft_value_t *out)
{
    (void)out;
    spin_ms((int)(intptr_t)arg);
    return 0;
}

static int run_on_loop(bool debug, weft_coro_fn fn, void *arg, const char *name)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l), 0);
    CHECK_EQ(weft_loop_set_debug(l, debug), 0);
    CHECK(weft_loop_get_debug(l) == debug);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(l, &t, fn, arg, &(weft_task_opts_t){ .name = name }), 0);
    int rc = weft_loop_run_until_complete(l, t, NULL);
    weft_task_release(t);
    weft_loop_free(l);
    return rc;
}

/* test_base_events.py: test_slow_callback_duration (a task step) */
static void test_slow_step_warning(void)
{
    reset_log();
    CHECK_EQ(run_on_loop(true, slowpoke, (void *)(intptr_t)150, "slowpoke"), 0);
    CHECK(log_has("Executing task 'slowpoke' (loop 0) took "));
    CHECK(log_has("created at:"));
    /* the same step with debug off says nothing */
    reset_log();
    CHECK_EQ(run_on_loop(false, slowpoke, (void *)(intptr_t)150, "slowpoke"), 0);
    CHECK_EQ(nlogs, 0);
}

/* a configurable threshold */
static void test_slow_threshold_configurable(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l), 0);
    CHECK_EQ(weft_loop_set_slow_callback_duration(l, -1), WEFT_EINVAL);
    CHECK_EQ(weft_loop_set_slow_callback_duration(NULL, 1), WEFT_EINVAL);
    CHECK_EQ(weft_loop_set_slow_callback_duration(l, 0.02), 0);
    weft_loop_set_debug(l, true);
    reset_log();
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(l, &t, slowpoke, (void *)(intptr_t)40, &(weft_task_opts_t){ .name = "forty" }), 0);
    CHECK_EQ(weft_loop_run_until_complete(l, t, NULL), 0);
    CHECK(log_has("Executing task 'forty'"));
    weft_task_release(t);
    weft_loop_free(l);
}

static int slow_cb(void *arg)
{
    (void)arg;
    spin_ms(150);
    return 0;
}

static int schedules_slow_cb(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_call_soon(weft_running_loop(), slow_cb, NULL, NULL), 0);
    return weft_sleep(0.01);
}

/* test_base_events.py: test_slow_callback_duration (a plain callback) */
static void test_slow_callback_warning(void)
{
    reset_log();
    CHECK_EQ(run_on_loop(true, schedules_slow_cb, NULL, "main"), 0);
    CHECK(log_has("Executing callback (loop 0) took "));
    CHECK(log_has("slow_cb") || log_has("at "));
}

static int blocker(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    usleep(400000);   /* a blocking call on the loop thread */
    return 0;
}

/* the watchdog names a step that has not yielded, while it still runs */
static void test_blocking_step_detected(void)
{
    reset_log();
    uint64_t t0 = uv_hrtime();
    CHECK_EQ(run_on_loop(true, blocker, NULL, "blocker"), 0);
    (void)t0;
    CHECK(log_has("task 'blocker' (loop 0) has run for"));
    CHECK(log_has("without yielding"));
}

static int returns_one(void *arg, weft_value_t *out)
{
    (void)arg;
    out->i = 1;
    return 0;
}

static int forgets_task(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, returns_one, NULL, &(weft_task_opts_t){ .name = "forgotten" }), 0);
    int rc = weft_sleep(0.01);   /* it runs, nobody looks at its result */
    weft_task_release(t);
    weft_future_t *f;
    CHECK_EQ(weft_future_new(NULL, &f), 0);
    weft_future_release(f);      /* a future nobody awaited */
    weft_task_t *ok;             /* awaited: no warning */
    CHECK_EQ(weft_create_task(&ok, returns_one, NULL, &(weft_task_opts_t){ .name = "awaited" }), 0);
    CHECK_EQ(weft_await(ok, NULL), 0);
    weft_task_release(ok);
    CHECK_EQ(weft_create_task(NULL, returns_one, NULL, &(weft_task_opts_t){ .name = "detached" }), 0);
    return rc;
}

static void test_never_awaited(void)
{
    reset_log();
    CHECK_EQ(run_on_loop(true, forgets_task, NULL, "main"), 0);
    CHECK(log_has("task 'forgotten' was never awaited"));
    CHECK(log_has("was never awaited (its outcome"));
    CHECK(strstr(logbuf, "future 0x") != NULL || strstr(logbuf, "future (nil)") != NULL);
    CHECK(!log_has("'awaited' was never"));
    CHECK(!log_has("'detached' was never"));   /* fire-and-forget tasks are fine */
}

static char ehbuf[1024];
static void handler(weft_loop_t *l, const weft_error_info_t *info, void *ud)
{
    (void)l;
    (void)ud;
    snprintf(ehbuf, sizeof ehbuf, "%s|%d|%s", info->message, info->code, info->detail ? info->detail : "");
}

static int fails(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_raise(-12345, "boom");
}

static int leaves_error(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_loop_set_exception_handler(weft_running_loop(), handler, NULL);
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, fails, NULL, NULL), 0);
    int rc = weft_sleep(0.01);
    weft_task_release(t);   /* error never retrieved */
    return rc;
}

/* test_tasks.py: test_exception_never_retrieved-style report (every mode) */
static void test_never_retrieved(void)
{
    ehbuf[0] = 0;
    CHECK_EQ(run_on_loop(false, leaves_error, NULL, "main"), 0);
    CHECK(strstr(ehbuf, "Task exception was never retrieved|-12345|boom") != NULL);
}

/* ---- several loops: wrong thread and dumps -------------------------------------------- */

static int on_loop1_misuse(void *arg, weft_value_t *out)
{
    (void)out;
    weft_loop_t *l0 = arg;
    out->i = weft_call_soon(l0, slow_cb, NULL, NULL);   /* loop 0's call from loop 1's thread */
    return 0;
}

static int sleeps(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_sleep(30);
}

static int awaits(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_await(arg, NULL);
}

static int multi_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_runtime_t *rt = weft_loop_runtime(weft_running_loop());
    weft_loop_t *l0 = weft_runtime_loop(rt, 0), *l1 = weft_runtime_loop(rt, 1);
    weft_task_t *m;
    CHECK_EQ(weft_spawn_on(l1, &m, on_loop1_misuse, l0, &(weft_task_opts_t){ .name = "misuser" }), 0);
    weft_value_t v;
    CHECK_EQ(weft_await(m, &v), 0);
    CHECK_EQ(v.i, WEFT_EWRONGLOOP);
    weft_task_release(m);
    CHECK(log_has("weft_call_soon() called from a thread that does not run this loop"));

    weft_task_t *s1, *s0, *w0;
    CHECK_EQ(weft_spawn_on(l1, &s1, sleeps, NULL, &(weft_task_opts_t){ .name = "sleeper-on-1" }), 0);
    CHECK_EQ(weft_create_task(&s0, sleeps, NULL, &(weft_task_opts_t){ .name = "sleeper-on-0" }), 0);
    CHECK_EQ(weft_create_task(&w0, awaits, s1, &(weft_task_opts_t){ .name = "waiter-on-0" }), 0);
    CHECK_EQ(weft_sleep(0.05), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    int n = weft_runtime_dump_tasks(rt, fp);
    fclose(fp);
    fputs(buf, stdout);
    CHECK(n >= 4);   /* main, two sleepers, the waiter */
    CHECK(strstr(buf, "weft: loop 0:") && strstr(buf, "weft: loop 1:"));
    CHECK(strstr(buf, "task 'sleeper-on-1' (loop 1): suspended, sleeping"));
    CHECK(strstr(buf, "task 'sleeper-on-0' (loop 0): suspended, sleeping"));
    CHECK(strstr(buf, "task 'waiter-on-0' (loop 0): suspended, awaiting task 'sleeper-on-1'"));
    CHECK(strstr(buf, "task 'main' (loop 0): running"));
    CHECK(strstr(buf, "created at:"));
#if !defined(WEFT_CTX_UCONTEXT)
    CHECK(strstr(buf, "suspended at:\n    at "));
#endif
    free(buf);
    weft_task_release(s1);
    weft_task_release(s0);
    weft_task_release(w0);
    return 0;   /* the sleepers are cancelled by the shutdown */
}

static void test_wrong_thread_and_dump_several_loops(void)
{
    reset_log();
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2, .debug = true }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, multi_main, NULL, &(weft_task_opts_t){ .name = "main" }, NULL), 0);
    weft_runtime_free(rt);
}

static int sigusr_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, sleeps, NULL, &(weft_task_opts_t){ .name = "dumped-by-signal" }), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    raise(SIGUSR1);
    int rc = weft_sleep(0.05);
    weft_task_release(t);
    return rc;
}

/* in debug mode SIGUSR1 dumps every task to stderr */
static void test_sigusr1_dump(void)
{
    fflush(stderr);
    char path[] = "/tmp/weft-dump-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1, .debug = true }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, sigusr_main, NULL, NULL, NULL), 0);
    weft_runtime_free(rt);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[8192] = { 0 };
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    CHECK(r > 0);
    CHECK(strstr(buf, "task 'dumped-by-signal' (loop 0): suspended, sleeping"));
}

int main(int argc, char **argv)
{
    alarm(120 * WD_SCALE);
    uv_mutex_init(&logmu);
    weft_set_log_handler(hook, NULL);
    RUN(test_slow_step_warning);
    RUN(test_slow_threshold_configurable);
    RUN(test_slow_callback_warning);
    RUN(test_blocking_step_detected);
    RUN(test_never_awaited);
    RUN(test_never_retrieved);
    RUN(test_wrong_thread_and_dump_several_loops);
    RUN(test_sigusr1_dump);
    return 0;
}
