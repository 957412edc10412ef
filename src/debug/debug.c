/* Debug mode: slow callback and blocking-step warnings, never-awaited futures,
 * wrong-thread calls (loop.c), task dumps with C backtraces, the log hook.
 * Nothing here runs unless a loop is in debug mode (each hook is behind one
 * `if (l->debug)` branch in loop.c / task.c / future.c). */
#include "core/task.h"
#include "debug/debug.h"

#include <execinfo.h>
#include <signal.h>

/* ---- the log hook ------------------------------------------------------------------ */

static weft_log_fn log_fn;
static void *log_ud;

void weft_set_log_handler(weft_log_fn fn, void *ud)
{
    log_ud = ud;   /* set before loops run (documented): plain stores */
    log_fn = fn;
}

void weft__log(weft_log_level_t level, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    weft_log_fn fn = log_fn;
    if (fn)
        fn(level, buf, log_ud);
    else
        fprintf(stderr, "%s\n", buf);
}

/* ---- backtraces ----------------------------------------------------------------------- */

weft__dbg_site_t *weft__debug_site(void)
{
    weft__dbg_site_t *s = malloc(sizeof *s);
    if (s)
        s->n = backtrace(s->frames, (int)(sizeof s->frames / sizeof s->frames[0]));
    return s;
}

/* Append "    at sym" lines for frames[skip..n) to buf. */
static void frames_str(char *buf, size_t cap, void *const *frames, int n, int skip)
{
    size_t len = strlen(buf);
    if (n <= skip) {
        snprintf(buf + len, cap - len, "\n    (no frames)");
        return;
    }
    char **sym = backtrace_symbols(frames + skip, n - skip);
    for (int i = 0; i < n - skip && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "\n    at %s", sym ? sym[i] : "?");
        if (w < 0)
            break;
        len += (size_t)w;
    }
    free(sym);
}

static void site_str(char *buf, size_t cap, const weft__task_t *t)
{
    if (!t->site) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "\n    (creation site not recorded: the loop was not in debug mode)");
        return;
    }
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "\n  created at:");
    /* skip backtrace's own frames inside weft (debug_site, task_alloc, create_task) */
    frames_str(buf, cap, t->site->frames, t->site->n, 2);
}

/* Frame-pointer walk of a suspended task's stack from its saved context. */
static int suspended_frames(const weft__task_t *t, void **out, int max)
{
#if defined(WEFT_CTX_UCONTEXT) || !(defined(__x86_64__) || defined(__aarch64__))
    (void)t;
    (void)out;
    (void)max;
    return 0;
#else
    if (!t->stack)
        return 0;
    uintptr_t lo = (uintptr_t)t->stack->lo, hi = lo + t->stack->size;
    uintptr_t pc, fp;
    if (!weft__ctx_sp(&t->coro.ctx) || !weft__ctx_pc_fp(&t->coro.ctx, &pc, &fp))
        return 0;
    int n = 0;
    out[n++] = (void *)pc;
    while (n < max && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
        uintptr_t next = ((const uintptr_t *)fp)[0], ret = ((const uintptr_t *)fp)[1];
        if (!ret)
            break;
        out[n++] = (void *)ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
#endif
}

/* ---- slow callbacks and steps ---------------------------------------------------------------- */

static double env_double(const char *name, double dflt)
{
    const char *e = getenv(name);
    if (!e || !*e)
        return dflt;
    char *end;
    double v = strtod(e, &end);
    return end != e && v >= 0 ? v : dflt;
}

void weft__debug_loop_init(weft_loop_t *l)
{
    const char *e = getenv("WEFT_DEBUG");
    l->debug = e && *e && strcmp(e, "0") != 0;
    l->slow_ns = weft__secs_to_ns(env_double("WEFT_SLOW_CALLBACK", 0.1));
    ck_spinlock_fas_init(&l->dbg_lock);
}

int weft_loop_set_debug(weft_loop_t *loop, bool on)
{
    if (!loop)
        return WEFT_EINVAL;
    loop->debug = on;
    if (on && weft_loop_is_running(loop))
        weft__debug_loop_running(loop, true);
    return 0;
}

bool weft_loop_get_debug(const weft_loop_t *loop) { return loop && loop->debug; }

int weft_loop_set_slow_callback_duration(weft_loop_t *loop, double seconds)
{
    if (!loop || !(seconds >= 0) || seconds > 1e6)
        return WEFT_EINVAL;
    loop->slow_ns = weft__secs_to_ns(seconds);
    return 0;
}

void weft__debug_step_begin(weft_loop_t *l, weft__task_t *t)
{
    ck_spinlock_fas_lock(&l->dbg_lock);
    WEFT__TSAN_ACQUIRE(&l->dbg_lock);
    snprintf(l->dbg_name, sizeof l->dbg_name, "%s", weft_task_get_name(&t->fut));
    l->dbg_step_start = uv_hrtime();
    WEFT__TSAN_RELEASE(&l->dbg_lock);
    ck_spinlock_fas_unlock(&l->dbg_lock);
}

void weft__debug_step_end(weft_loop_t *l, weft__task_t *t, uint64_t t0)
{
    ck_spinlock_fas_lock(&l->dbg_lock);
    WEFT__TSAN_ACQUIRE(&l->dbg_lock);
    l->dbg_step_start = 0;
    WEFT__TSAN_RELEASE(&l->dbg_lock);
    ck_spinlock_fas_unlock(&l->dbg_lock);
    l->dbg_stepped = true;
    uint64_t dt = uv_hrtime() - t0;
    if (dt < l->slow_ns)
        return;
    char buf[3072];
    snprintf(buf, sizeof buf, "weft: Executing task '%s' (loop %d) took %.3f seconds", weft_task_get_name(&t->fut),
             l->widx, (double)dt / 1e9);
    site_str(buf, sizeof buf, t);
    weft__log(WEFT_LOG_WARNING, "%s", buf);
}

void weft__debug_run_handle(weft_loop_t *l, weft__handle_t *h)
{
    void *what = h->fn == weft__done_dispatch ? (void *)(uintptr_t)h->u.done.fn : (void *)(uintptr_t)h->u.user.cb;
    l->dbg_stepped = false;
    uint64_t t0 = uv_hrtime();
    h->fn(h);
    uint64_t dt = uv_hrtime() - t0;
    if (l->dbg_stepped || dt < l->slow_ns)
        return;   /* task steps report themselves */
    char buf[1024];
    snprintf(buf, sizeof buf, "weft: Executing callback (loop %d) took %.3f seconds:", l->widx, (double)dt / 1e9);
    frames_str(buf, sizeof buf, &what, 1, 0);
    weft__log(WEFT_LOG_WARNING, "%s", buf);
}

/* ---- the watchdog: steps that do not yield ----------------------------------------------------- */

#define MAX_DEBUG_LOOPS 64
static weft_loop_t *dbg_loops[MAX_DEBUG_LOOPS];
static uv_mutex_t dbg_mu;
static uv_once_t dbg_once = UV_ONCE_INIT;
static unsigned int dump_gen;   /* bumped by SIGUSR1 */

static void on_sigusr1(int sig)
{
    (void)sig;
    ck_pr_inc_uint(&dump_gen);
    for (int i = 0; i < MAX_DEBUG_LOOPS; i++) {
        weft_loop_t *l = ck_pr_load_ptr(&dbg_loops[i]);
        if (l)
            uv_async_send(&l->wake);   /* async-signal-safe */
    }
}

static void watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        uv_sleep(20);
        uv_mutex_lock(&dbg_mu);
        for (int i = 0; i < MAX_DEBUG_LOOPS; i++) {
            weft_loop_t *l = dbg_loops[i];
            if (!l)
                continue;
            char name[64];
            uint64_t start, now = uv_hrtime();
            ck_spinlock_fas_lock(&l->dbg_lock);
            WEFT__TSAN_ACQUIRE(&l->dbg_lock);
            start = l->dbg_step_start;
            bool report = start && now - start >= l->slow_ns && l->dbg_reported != start;
            if (report) {
                l->dbg_reported = start;
                memcpy(name, l->dbg_name, sizeof name);
            }
            WEFT__TSAN_RELEASE(&l->dbg_lock);
            ck_spinlock_fas_unlock(&l->dbg_lock);
            if (report)
                weft__log(WEFT_LOG_WARNING,
                          "weft: task '%s' (loop %d) has run for %.3f seconds without yielding: a blocking call on "
                          "the loop thread? (use weft_to_thread for blocking work)",
                          name, l->widx, (double)(now - start) / 1e9);
        }
        uv_mutex_unlock(&dbg_mu);
    }
}

static void dbg_init(void)
{
    uv_mutex_init(&dbg_mu);
    uv_thread_t th;
    uv_thread_create(&th, watchdog, NULL);   /* lives as long as the process */
    struct sigaction old;
    if (sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigusr1;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
    }
}

void weft__debug_loop_running(weft_loop_t *l, bool running)
{
    uv_once(&dbg_once, dbg_init);
    uv_mutex_lock(&dbg_mu);
    int free_slot = -1;
    for (int i = 0; i < MAX_DEBUG_LOOPS; i++) {
        if (dbg_loops[i] == l) {
            if (!running)
                ck_pr_store_ptr(&dbg_loops[i], NULL);
            uv_mutex_unlock(&dbg_mu);
            return;
        }
        if (!dbg_loops[i] && free_slot < 0)
            free_slot = i;
    }
    if (running && free_slot >= 0) {
        ck_pr_store_ptr(&dbg_loops[free_slot], l);
        l->dump_seen = ck_pr_load_uint(&dump_gen);
    }
    uv_mutex_unlock(&dbg_mu);
}

void weft__debug_check_dump(weft_loop_t *l)
{
    unsigned int g = ck_pr_load_uint(&dump_gen);
    if (g != l->dump_seen) {
        l->dump_seen = g;
        weft_loop_dump_tasks(l, stderr);
    }
}

/* ---- never awaited ------------------------------------------------------------------------ */

void weft__debug_never_awaited(weft_future_t *f)
{
    char buf[3072];
    if (f->is_task) {
        weft__task_t *t = weft__task_of(f);
        snprintf(buf, sizeof buf, "weft: task '%s' was never awaited (its outcome was never looked at)",
                 weft_task_get_name(f));
        site_str(buf, sizeof buf, t);
    } else {
        snprintf(buf, sizeof buf, "weft: future %p was never awaited (its outcome was never looked at)", (void *)f);
    }
    weft__log(WEFT_LOG_WARNING, "%s", buf);
}

/* ---- dumps ------------------------------------------------------------------------------------ */

static const char *state_name(int s)
{
    switch (s) {
    case WEFT_TASK_NEW:
        return "new";
    case WEFT_TASK_RUNNING:
        return "running";
    case WEFT_TASK_SUSPENDED:
        return "suspended";
    default:
        return "done";
    }
}

static void describe_wait(char *buf, size_t cap, const weft__task_t *t)
{
    size_t len = strlen(buf);
    if (t->state != WEFT_TASK_SUSPENDED) {
        return;
    }
    switch (t->wait_kind) {
    case WEFT__W_FUTURE: {
        const weft_future_t *f = t->wait_obj;
        if (f->is_task)
            snprintf(buf + len, cap - len, ", awaiting task '%s'", weft_task_get_name(f));
        else
            snprintf(buf + len, cap - len, ", awaiting future %p", (const void *)f);
        break;
    }
    case WEFT__W_SLEEP: {
        uint64_t now = uv_hrtime();
        double left = t->timer.when > now ? (double)(t->timer.when - now) / 1e9 : 0;
        snprintf(buf + len, cap - len, ", sleeping (%.3f s left)", left);
        break;
    }
    case WEFT__W_YIELD:
        snprintf(buf + len, cap - len, ", yielding (ready to run)");
        break;
    case WEFT__W_SYNC:
        snprintf(buf + len, cap - len, ", waiting on a lock, event, condition, semaphore, barrier or queue");
        break;
    case WEFT__W_OTHER:
        snprintf(buf + len, cap - len, ", waiting (I/O, to_thread or a concurrent future)");
        break;
    default:
        snprintf(buf + len, cap - len, ", ready to run");
        break;
    }
}

int weft_loop_dump_tasks(weft_loop_t *loop, FILE *fp)
{
    if (!loop || !fp)
        return WEFT_EINVAL;
    if (!weft__loop_on_thread(loop))
        return WEFT_EWRONGLOOP;
    int n = 0;
    fprintf(fp, "weft: loop %d: %u task(s)\n", loop->widx, loop->ntasks);
    for (weft__task_t *t = loop->tasks; t; t = t->nextt, n++) {
        char buf[4096];
        snprintf(buf, sizeof buf, "  task '%s' (loop %d): %s", weft_task_get_name(&t->fut), loop->widx,
                 state_name(t->state));
        describe_wait(buf, sizeof buf, t);
        site_str(buf, sizeof buf, t);
        if (t->state == WEFT_TASK_SUSPENDED) {
            void *frames[24];
            int k = suspended_frames(t, frames, 24);
            size_t len = strlen(buf);
            snprintf(buf + len, sizeof buf - len, "\n  suspended at:");
            if (k)
                frames_str(buf, sizeof buf, frames, k, 0);
            else
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "\n    (not available in this build)");
        }
        fprintf(fp, "%s\n", buf);
    }
    fflush(fp);
    return n;
}

struct dump_req {
    FILE *fp;
    uv_sem_t done;
    int count;
};

static void msg_dump(weft_loop_t *l, weft__msg_t *m)
{
    struct dump_req *r = m->a;
    free(m);
    if (ck_pr_load_uint(&l->flags) & WEFT__L_CLOSED) {
        uv_sem_post(&r->done);
        return;
    }
    int n = weft_loop_dump_tasks(l, r->fp);
    if (n > 0)
        ck_pr_faa_int(&r->count, n);
    uv_sem_post(&r->done);
}

int weft_runtime_dump_tasks(struct weft_runtime *rt, FILE *fp)
{
    if (!rt || !fp)
        return WEFT_EINVAL;
    int total = 0;
    weft_loop_t *mine = weft__thread()->running;
    for (int i = 0; i < weft_runtime_workers(rt); i++) {
        weft_loop_t *l = weft_runtime_loop(rt, i);
        if (l == mine || !weft_loop_is_running(l)) {
            int n = weft_loop_dump_tasks(l, fp);
            total += n > 0 ? n : 0;
            continue;
        }
        struct dump_req *r = calloc(1, sizeof *r);
        weft__msg_t *m = weft__msg_new(msg_dump);
        if (!r || !m) {
            free(r);
            free(m);
            return WEFT_ENOMEM;
        }
        r->fp = fp;
        uv_sem_init(&r->done, 0);
        m->a = r;
        if (weft__loop_post(l, m) < 0) {
            free(m);
            uv_sem_destroy(&r->done);
            free(r);
            continue;
        }
        /* wait up to 1 s: a loop stuck in a blocking call cannot answer */
        bool answered = false;
        for (int k = 0; k < 100 && !answered; k++) {
            if (uv_sem_trywait(&r->done) == 0)
                answered = true;
            else
                uv_sleep(10);
        }
        if (!answered) {
            fprintf(fp, "weft: loop %d did not answer within 1 s (blocked in a task step?)\n", i);
            continue;   /* r is freed by nobody: the late answer still needs it (leaked once) */
        }
        total += ck_pr_load_int(&r->count);
        uv_sem_destroy(&r->done);
        free(r);
    }
    return total;
}
