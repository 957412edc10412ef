/* The blocking pool: run_in_executor and to_thread.
 *
 * A bounded set of plain threads (started on demand, up to max_threads)
 * takes jobs from a FIFO under a libuv mutex and condition variable. It is
 * separate from libuv's own threadpool, which stays free for file and DNS work.
 * A finished job is posted back to the awaiting task's loop. If the awaiting
 * task is cancelled it stops waiting at once (asyncio's behaviour); the call
 * still finishes in its thread and its result is dropped. */
#include "core/task.h"

#include <sched.h>
#include "weft/contextvar.h"
#include "runtime/cfuture.h"
#include "runtime/sched.h"

typedef struct job {
    struct job *next;
    weft_blocking_fn fn;
    void *arg;
    weft_dtor_t arg_dtor;     /* called on the pool thread right after fn */
    int rc;
    weft_value_t value;
    char *msg;                /* what fn attached to its error with weft_raise */
    weft__task_t *task;       /* reference held until the completion message ran; NULL for submit */
    weft_cfuture_t *cf;       /* submit: the concurrent future it completes (one reference) */
    weft_executor_t *ex;      /* submit: where it is queued (cancelling unqueues it) */
    unsigned int refs;        /* awaiter + pool */
    uint32_t seq;             /* the awaiter's wait number */
    bool abandoned;           /* the awaiter stopped waiting (loop thread only) */
    bool delivered;           /* the outcome reached the awaiter's loop (loop thread only) */
    weft_context_t *ctx;      /* the caller's context variables (asyncio.to_thread copies them) */
    weft__msg_t done_msg;     /* the completion, posted to the awaiter's loop (no allocation) */
} job_t;

struct weft_executor {
    uv_mutex_t mu;
    uv_cond_t cv;
    job_t *head, *tail;
    int max, nthreads, idle;
    int queued;               /* jobs in the FIFO */
    int spinning;             /* threads between jobs that poll `nqueued` before sleeping (at most 1) */
    int waking;               /* threads signalled or started that have not yet looked at the FIFO */
    unsigned int nqueued;     /* atomic copy of queued, for the spinning thread */
    bool shutdown;
    uv_thread_t *threads;
};

/* The FIFO's mutex is held for a few instructions at a time by the loops
 * that submit and the pool threads that take: try it for a moment before
 * sleeping on it, since a thread put to sleep on a lock held that briefly
 * costs two context switches. */
#ifndef WEFT__EX_TRY
#define WEFT__EX_TRY 64
#endif
static void ex_lock(weft_executor_t *ex)
{
    for (int i = 0; i < WEFT__EX_TRY; i++) {
        if (uv_mutex_trylock(&ex->mu) == 0)
            return;
        ck_pr_stall();
    }
    uv_mutex_lock(&ex->mu);
}

static void job_release(job_t *j)
{
    bool zero;
    WEFT__TSAN_RELEASE(j);
    ck_pr_dec_uint_zero(&j->refs, &zero);
    if (zero) {
        WEFT__TSAN_ACQUIRE(j);
        weft_context_release(j->ctx);
        free(j->msg);
        free(j);
    }
}

static void msg_job_done(weft_loop_t *l, weft__msg_t *m)
{
    (void)l;
    job_t *j = WEFT__CONTAINER(m, job_t, done_msg);   /* alive: the pool's reference */
    weft__task_t *t = j->task;
    if (j->abandoned) {
        if (j->rc == 0 && j->value.dtor)
            j->value.dtor(j->value.p);
    } else {
        /* the awaiter owns the outcome from here on, even if a cancel lands
         * before it resumes (then it disposes of the result itself) */
        j->delivered = true;
        weft__task_wake_seq(t, j->seq, 0);
    }
    weft_future_release(&t->fut);
    job_release(j);
}

static int run_job(void *arg)
{
    job_t *j = arg;
    weft_value_t v = { .p = NULL };
    weft__raise_capture_begin();
    j->rc = j->fn(j->arg, &v);
    j->msg = weft__raise_capture_end(j->rc);
    if (j->arg_dtor)
        j->arg_dtor(j->arg);
    j->value = v;
    return 0;
}

/* How long one idle pool thread polls for the next job before it sleeps on
 * the condition variable: a burst of to_thread calls then costs no futex
 * wake-up per call. One thread at most spins. */
#define WEFT__POOL_SPIN_NS 50000u

static bool pool_spin(weft_executor_t *ex)
{
    uint64_t t0 = uv_hrtime();
    for (unsigned int i = 1;; i++) {
        if (ck_pr_load_uint(&ex->nqueued))
            return true;
        if ((i & 15) == 0) {
            if (uv_hrtime() - t0 >= WEFT__POOL_SPIN_NS)
                return false;
            if ((i & 127) == 0)
                sched_yield();   /* a loaded machine: the thread that submits may need this CPU */
        }
        ck_pr_stall();
    }
}

static void pool_thread(void *arg);

/* Jobs wait and no thread is on its way to them (none spinning, none woken
 * or started that has not yet looked): wake an idle thread, or start one if
 * none is idle. That thread, on taking a job, calls this again if more wait,
 * so a burst of jobs wakes threads one after another only as long as jobs
 * keep waiting: threads that finish a quick job come back for the next one
 * before anyone else is woken, and each blocking job still gets a thread of
 * its own. Under ex->mu; returns true if the caller must signal ex->cv after
 * unlocking (the thread woken must not find the mutex held). */
static bool pool_need_thread(weft_executor_t *ex)
{
    if (!ex->head || ex->spinning + ex->waking > 0)
        return false;
    if (ex->idle > 0) {
        ex->waking++;
        return true;
    }
    if (ex->nthreads < ex->max && !ex->shutdown) {   /* (shut down: the threads there drain the FIFO) */
        uv_thread_options_t o = { .flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = 1 << 20 };
        if (uv_thread_create_ex(&ex->threads[ex->nthreads], &o, pool_thread, ex) == 0) {
            ex->nthreads++;
            ex->waking++;   /* it looks at the FIFO as soon as it starts */
        }
    }
    return false;
}

static void pool_thread(void *arg)
{
    weft_executor_t *ex = arg;
    ex_lock(ex);
    if (ex->waking > 0)
        ex->waking--;   /* started by pool_need_thread: looking now */
    for (;;) {
        if (!ex->head && !ex->shutdown && !ex->spinning) {
            ex->spinning = 1;
            uv_mutex_unlock(&ex->mu);
            pool_spin(ex);
            ex_lock(ex);
            ex->spinning = 0;
        }
        while (!ex->head && !ex->shutdown) {
            ex->idle++;
            uv_cond_wait(&ex->cv, &ex->mu);
            ex->idle--;
            if (ex->waking > 0)
                ex->waking--;   /* (a spurious wake-up may take a signal's count: a later submit signals again) */
        }
        if (!ex->head)
            break;   /* shut down and drained */
        job_t *j = ex->head;
        ex->head = j->next;
        if (!ex->head)
            ex->tail = NULL;
        ex->queued--;
        ck_pr_store_uint(&ex->nqueued, (unsigned int)ex->queued);
        bool signal = pool_need_thread(ex);   /* more jobs wait: the next thread */
        uv_mutex_unlock(&ex->mu);
        if (signal)
            uv_cond_signal(&ex->cv);
        if (j->ctx)
            weft_context_run(j->ctx, run_job, j);   /* contextvars read in fn see the caller's values */
        else
            run_job(j);
        if (j->cf) {   /* submit: complete the concurrent future here */
            char *msg = j->msg;
            j->msg = NULL;
            if (!weft__cfuture_complete(j->cf, j->rc, j->value, msg, false)) {
                free(msg);
                if (j->rc == 0 && j->value.dtor)
                    j->value.dtor(j->value.p);
            }
            weft_cfuture_release(j->cf);
            job_release(j);
            ex_lock(ex);
            continue;
        }
        weft_value_t v = j->value;
        j->done_msg.run = msg_job_done;
        if (weft__loop_post(j->task->fut.loop, &j->done_msg) < 0) {
            /* the loop is gone: nobody can take the result */
            if (j->rc == 0 && v.dtor)
                v.dtor(v.p);
            weft_future_release(&j->task->fut);
            job_release(j);
        }
        ex_lock(ex);
    }
    uv_mutex_unlock(&ex->mu);
}

int weft_executor_new(int max_threads, weft_executor_t **out)
{
    if (!out || max_threads < 0 || max_threads > 4096)
        return WEFT_EINVAL;
    weft_executor_t *ex = calloc(1, sizeof *ex);
    if (!ex)
        return WEFT_ENOMEM;
    ex->max = max_threads ? max_threads : 64;
    ex->threads = calloc((size_t)ex->max, sizeof *ex->threads);
    if (!ex->threads) {
        free(ex);
        return WEFT_ENOMEM;
    }
    uv_mutex_init(&ex->mu);
    uv_cond_init(&ex->cv);
    *out = ex;
    return 0;
}

void weft_executor_free(weft_executor_t *ex)
{
    if (!ex)
        return;
    uv_mutex_lock(&ex->mu);
    ex->shutdown = true;
    int n = ex->nthreads;   /* final: pool threads start no others once shut down */
    uv_cond_broadcast(&ex->cv);
    uv_mutex_unlock(&ex->mu);
    for (int i = 0; i < n; i++)
        uv_thread_join(&ex->threads[i]);
    uv_mutex_destroy(&ex->mu);
    uv_cond_destroy(&ex->cv);
    free(ex->threads);
    free(ex);
}

static bool job_cancel(weft__task_t *t, const char *msg)
{
    job_t *j = t->wait_obj;
    j->abandoned = true;
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

static weft_executor_t *process_pool;
static uv_once_t process_pool_once = UV_ONCE_INIT;
static void make_process_pool(void) { weft_executor_new(64, &process_pool); }

int weft_run_in_executor(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_value_t *out)
{
    return weft_run_in_executor_dtor(ex, fn, arg, NULL, out);
}

/* The executor a NULL one stands for, seen from loop @l (NULL outside any
 * loop): the loop's default executor, else its runtime's blocking pool, else
 * the process-wide pool (made on first use). NULL when that cannot be made. */
static weft_executor_t *default_executor(weft_loop_t *l)
{
    if (l && l->default_exec)
        return l->default_exec;
    if (l && l->rt)
        return weft__rt_executor(l->rt);
    uv_once(&process_pool_once, make_process_pool);
    return process_pool;
}

int weft_run_in_executor_dtor(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_dtor_t arg_dtor,
                              weft_value_t *out)
{
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (!fn)
        return WEFT_EINVAL;
    if (!ex && !(ex = default_executor(t->fut.loop)))
        return WEFT_ENOMEM;
    job_t *j = calloc(1, sizeof *j);
    if (!j)
        return WEFT_ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->arg_dtor = arg_dtor;
    j->task = t;
    j->refs = 2;
    j->ctx = weft_context_current() ? weft_context_copy() : NULL;
    weft_future_retain(&t->fut);
    ex_lock(ex);
    if (ex->shutdown) {
        uv_mutex_unlock(&ex->mu);
        weft_future_release(&t->fut);
        weft_context_release(j->ctx);
        free(j);
        return WEFT_ESHUTDOWN;
    }
    j->seq = weft__task_begin_wait(t);   /* the number of the suspension below */
    if (ex->tail)
        ex->tail->next = j;
    else
        ex->head = j;
    ex->tail = j;
    ex->queued++;
    ck_pr_store_uint(&ex->nqueued, (unsigned int)ex->queued);
    bool signal = pool_need_thread(ex);
    uv_mutex_unlock(&ex->mu);
    if (signal)   /* after unlocking: the thread woken must not find the mutex held */
        uv_cond_signal(&ex->cv);
    int rc = weft__task_suspend(t, WEFT__W_OTHER, job_cancel, j);
    if (rc < 0) {
        if (j->delivered) {
            /* cancelled after the outcome arrived, before we resumed: the
             * result is ours and nobody else will destroy it */
            if (j->rc == 0 && j->value.dtor)
                j->value.dtor(j->value.p);
        } else {
            j->abandoned = true;   /* the result will be dropped when it arrives */
        }
        job_release(j);
        return rc;
    }
    rc = j->rc;
    if (out)
        *out = rc == 0 ? j->value : (weft_value_t){ .p = NULL };
    else if (rc == 0 && j->value.dtor)
        j->value.dtor(j->value.p);
    if (rc < 0) {   /* the awaiter sees fn's message (weft_error_message) */
        t = weft__thread()->task;
        weft__task_set_error(t, rc, j->msg);
        j->msg = NULL;
    }
    job_release(j);
    return rc;
}

int weft_loop_set_default_executor(weft_loop_t *loop, weft_executor_t *ex)
{
    int rc = weft__loop_check(loop);
    if (rc < 0)
        return rc;
    loop->default_exec = ex;
    return 0;
}

int weft_to_thread(weft_blocking_fn fn, void *arg, weft_value_t *out)
{
    return weft_run_in_executor(NULL, fn, arg, out);
}

int weft_to_thread_dtor(weft_blocking_fn fn, void *arg, weft_dtor_t arg_dtor, weft_value_t *out)
{
    return weft_run_in_executor_dtor(NULL, fn, arg, arg_dtor, out);
}

/* ---- submit: a concurrent future, from any thread ----------------------------- */

/* Cancelling a submitted job's future: it never runs if it is still queued.
 * Called with cf's lock held while cf is pending, so the job (freed only after
 * it completed cf) and its executor (freed only after its threads ended, every
 * job completed) are alive. */
static bool job_unqueue(weft_cfuture_t *cf, void *arg)
{
    (void)cf;
    job_t *j = arg;
    weft_executor_t *ex = j->ex;
    bool found = false;
    uv_mutex_lock(&ex->mu);
    for (job_t **pp = &ex->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            if (ex->tail == j)
                ex->tail = prev;
            ex->queued--;
            ck_pr_store_uint(&ex->nqueued, (unsigned int)ex->queued);
            found = true;
            break;
        }
    }
    uv_mutex_unlock(&ex->mu);
    if (found) {   /* the pool's references: to the future and to the job */
        weft_cfuture_release(j->cf);
        job_release(j);
    }
    return found;
}

int weft_executor_submit(weft_executor_t *ex, weft_blocking_fn fn, void *arg, weft_cfuture_t **out)
{
    if (out)
        *out = NULL;
    if (!fn || !out)
        return WEFT_EINVAL;
    if (!ex && !(ex = default_executor(weft__thread()->running)))
        return WEFT_ENOMEM;
    job_t *j = calloc(1, sizeof *j);
    weft_cfuture_t *cf = weft__cfuture_new();
    if (!j || !cf) {
        free(j);
        weft_cfuture_release(cf);
        return WEFT_ENOMEM;
    }
    j->fn = fn;
    j->arg = arg;
    j->ex = ex;
    j->cf = cf;
    j->refs = 1;   /* the pool's; the cancel hook only uses it while cf is pending, under cf's lock */
    weft_cfuture_retain(cf);   /* the pool's reference; the other is the caller's */
    j->ctx = weft_context_current() ? weft_context_copy() : NULL;
    weft__cfuture_set_cancel(cf, job_unqueue, j);
    ex_lock(ex);
    if (ex->shutdown) {
        uv_mutex_unlock(&ex->mu);
        weft_context_release(j->ctx);
        free(j);
        weft_cfuture_release(cf);
        weft_cfuture_release(cf);
        return WEFT_ESHUTDOWN;
    }
    if (ex->tail)
        ex->tail->next = j;
    else
        ex->head = j;
    ex->tail = j;
    ex->queued++;
    ck_pr_store_uint(&ex->nqueued, (unsigned int)ex->queued);
    bool signal = pool_need_thread(ex);
    uv_mutex_unlock(&ex->mu);
    if (signal)
        uv_cond_signal(&ex->cv);
    *out = cf;
    return 0;
}
