/* Async generators and asyncio.Runner. Each test names the CPython 3.12 test
 * it mirrors (Lib/test/test_asyncgen.py AsyncGenAsyncioTest,
 * Lib/test/test_asyncio/test_runners.py RunnerTests). */
#include "comb_util.h"

#define GEN_ERR (-100002)

/* ---- a generator: yields 0..n-1 with an await before each, and a cleanup
 *      (its "finally") that awaits too ------------------------------------------- */

typedef struct gstate {
    int n;
    int yielded;
    int cleanups;          /* the finally ran */
    int last_rc;           /* what the body returned */
    int throws_caught;     /* athrow(GEN_ERR) caught and answered with -1 */
    bool ignore_exit;      /* yield again after GeneratorExit */
    double delay;
} gstate_t;

static int counter_gen(weft_asyncgen_t *g, void *arg)
{
    gstate_t *s = arg;
    int rc = 0;
    for (int i = 0; i < s->n && rc == 0; i++) {
        if ((rc = weft_sleep(s->delay)) < 0)
            break;
        weft_value_t sent;
        rc = weft_asyncgen_yield(g, WEFT_VALUE_INT(i), &sent);
        if (rc == 0 && sent.i)
            i = (int)sent.i - 1;   /* asend(k): continue from k */
        if (rc == GEN_ERR) {       /* except GEN_ERR: yield -1 */
            s->throws_caught++;
            rc = weft_asyncgen_yield(g, WEFT_VALUE_INT(-1), NULL);
        }
        if (rc == WEFT_EGENEXIT && s->ignore_exit) {
            s->ignore_exit = false;
            rc = weft_asyncgen_yield(g, WEFT_VALUE_INT(99), NULL);
        }
        if (rc == 0)
            s->yielded++;
    }
    /* finally: await something, even while closing or cancelled */
    CHECK_EQ(weft_yield(), 0);
    s->cleanups++;
    s->last_rc = rc;
    return rc == WEFT_EGENEXIT ? 0 : rc;
}

/* test_async_gen_asyncio_01 (async for over awaits and yields), then
 * StopAsyncIteration for ever */
static int basic_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gstate_t s = { .n = 3, .delay = 0.001 };
    weft_asyncgen_t *g;
    CHECK_EQ(weft_asyncgen_new(&g, counter_gen, &s, NULL), 0);
    CHECK(!weft_asyncgen_running(g) && !weft_asyncgen_finished(g));
    int rc, seen = 0;
    weft_value_t v;
    WEFT_ASYNC_FOR(rc, weft_asyncgen_anext(g, &v)) {
        CHECK_EQ(v.i, seen);
        seen++;
    }
    CHECK_EQ(rc, WEFT_ESTOPASYNCITER);
    CHECK_EQ(seen, 3);
    CHECK_EQ(s.cleanups, 1);
    CHECK(weft_asyncgen_finished(g));
    CHECK_EQ(weft_asyncgen_anext(g, &v), WEFT_ESTOPASYNCITER);
    CHECK_EQ(weft_asyncgen_aclose(g), 0);   /* after exhaustion */
    CHECK_EQ(weft_asyncgen_aclose(g), 0);   /* twice: Python's aclose is idempotent */
    weft_asyncgen_release(g);
    return 0;
}

static int immediate_gen(weft_asyncgen_t *g, void *arg)
{
    (void)arg;
    int rc = weft_asyncgen_yield(g, WEFT_VALUE_INT(1), NULL);   /* before any await */
    if (rc == 0)
        rc = weft_asyncgen_yield(g, WEFT_VALUE_INT(2), NULL);
    return rc;
}

/* with the eager task factory the body's first step runs inside the first
 * anext, and may answer it before anext even waits */
static int eager_main(void *arg, weft_value_t *out)
{
    CHECK_EQ(weft_loop_set_eager_task_factory(weft_running_loop(), true), 0);
    weft_asyncgen_t *g;
    CHECK_EQ(weft_asyncgen_new(&g, immediate_gen, NULL, NULL), 0);
    int rc;
    int64_t sum = 0;
    weft_value_t v;
    WEFT_ASYNC_FOR(rc, weft_asyncgen_anext(g, &v)) sum += v.i;
    CHECK_EQ(rc, WEFT_ESTOPASYNCITER);
    CHECK_EQ(sum, 3);
    weft_asyncgen_release(g);
    return basic_main(arg, out);
}

static void test_async_for(void)
{
    CHECK_EQ(run(basic_main, NULL), 0);
    CHECK_EQ(run(eager_main, NULL), 0);
}

/* test_async_gen_asyncio_asend_01, test_async_gen_asyncio_athrow_01 (caught)
 * and _athrow_02 (not caught: the code comes back, the generator is done) */
static int send_throw_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gstate_t s = { .n = 10 };
    weft_asyncgen_t *g;
    CHECK_EQ(weft_asyncgen_new(&g, counter_gen, &s, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_asyncgen_asend(g, WEFT_VALUE_INT(0), &v), 0);   /* starts it */
    CHECK_EQ(v.i, 0);
    CHECK_EQ(weft_asyncgen_asend(g, WEFT_VALUE_INT(7), &v), 0);   /* x = yield: 7 */
    CHECK_EQ(v.i, 7);
    CHECK_EQ(weft_asyncgen_athrow(g, GEN_ERR, "thrown", &v), 0); /* caught, yields -1 */
    CHECK_EQ(v.i, -1);
    CHECK_EQ(s.throws_caught, 1);
    CHECK_EQ(weft_asyncgen_athrow(g, GEN_ERR - 1, "not caught", &v), GEN_ERR - 1);
    CHECK_STR(weft_error_message(), "not caught");
    CHECK(weft_asyncgen_finished(g));
    CHECK_EQ(s.cleanups, 1);
    CHECK_EQ(s.last_rc, GEN_ERR - 1);
    CHECK_EQ(weft_asyncgen_anext(g, &v), WEFT_ESTOPASYNCITER);
    CHECK_EQ(weft_asyncgen_athrow(g, 5, NULL, &v), WEFT_EINVAL);
    weft_asyncgen_release(g);
    return 0;
}

static void test_asend_athrow(void) { CHECK_EQ(run(send_throw_main, NULL), 0); }

/* test_async_gen_asyncio_aclose_06 / _aclose_10 (the finally awaits),
 * test_async_gen_aclose_before_start (never started: nothing runs),
 * test_async_gen_asyncio_aclose_07 ("async generator ignored GeneratorExit") */
static int aclose_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gstate_t s = { .n = 10 };
    weft_asyncgen_t *g;
    CHECK_EQ(weft_asyncgen_new(&g, counter_gen, &s, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_asyncgen_anext(g, &v), 0);
    CHECK_EQ(weft_asyncgen_aclose(g), 0);
    CHECK_EQ(s.cleanups, 1);
    CHECK_EQ(s.last_rc, WEFT_EGENEXIT);
    CHECK(weft_asyncgen_finished(g));
    CHECK_EQ(weft_asyncgen_aclose(g), 0);
    weft_asyncgen_release(g);

    gstate_t s2 = { .n = 10 };
    CHECK_EQ(weft_asyncgen_new(&g, counter_gen, &s2, NULL), 0);
    CHECK_EQ(weft_asyncgen_aclose(g), 0);   /* before start */
    CHECK_EQ(s2.cleanups, 0);
    CHECK_EQ(weft_asyncgen_anext(g, &v), WEFT_ESTOPASYNCITER);
    weft_asyncgen_release(g);

    gstate_t s3 = { .n = 10, .ignore_exit = true };
    CHECK_EQ(weft_asyncgen_new(&g, counter_gen, &s3, NULL), 0);
    CHECK_EQ(weft_asyncgen_anext(g, &v), 0);
    CHECK_EQ(weft_asyncgen_aclose(g), WEFT_EINVALSTATE);   /* ignored GeneratorExit */
    settle(3);
    CHECK_EQ(s3.cleanups, 1);   /* the second yield got GeneratorExit again */
    weft_asyncgen_release(g);

    CHECK_EQ(weft_asyncgen_aclose(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_anext(NULL, &v), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_new(NULL, counter_gen, &s, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_new(&g, NULL, &s, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_asyncgen_yield(NULL, WEFT_VALUE_INT(0), NULL), WEFT_EINVAL);
    return 0;
}

static void test_aclose(void) { CHECK_EQ(run(aclose_main, NULL), 0); }

/* ---- cancellation inside the generator ------------------------------------------- */

static weft_asyncgen_t *shared_gen;
static int consumer(void *arg, weft_value_t *out)
{
    (void)arg;
    return weft_asyncgen_anext(shared_gen, out);
}

/* test_async_gen_asyncio_anext_... cancellation: the consumer's cancel is
 * thrown into the generator's await (test_async_gen_asyncio_gc_aclose_09
 * family); "anext(): asynchronous generator is already running" */
static int cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gstate_t s = { .n = 10, .delay = 30 };
    CHECK_EQ(weft_asyncgen_new(&shared_gen, counter_gen, &s, NULL), 0);
    weft_task_t *c;
    CHECK_EQ(weft_create_task(&c, consumer, NULL, NULL), 0);
    settle(3);   /* the generator sleeps inside the consumer's anext */
    CHECK(weft_asyncgen_running(shared_gen));
    weft_value_t v;
    CHECK_EQ(weft_asyncgen_anext(shared_gen, &v), WEFT_EBUSY);
    CHECK_EQ(weft_task_cancel(c, "stop"), 1);
    CHECK_EQ(weft_await(c, NULL), WEFT_ECANCELED);
    CHECK_EQ(s.last_rc, WEFT_ECANCELED);   /* the body's sleep saw the cancellation */
    CHECK_EQ(s.cleanups, 1);               /* and its cleanup ran (and awaited) */
    CHECK(weft_asyncgen_finished(shared_gen));
    weft_task_release(c);
    weft_asyncgen_release(shared_gen);
    return 0;
}

static void test_cancel_inside(void) { CHECK_EQ(run(cancel_main, NULL), 0); }

/* ---- finalisation: shutdown_asyncgens, release while suspended ----------------- */

static gstate_t left_state;
static weft_asyncgen_t *left_gen;
static int leaves_generator(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    left_state = (gstate_t){ .n = 10 };
    CHECK_EQ(weft_asyncgen_new(&left_gen, counter_gen, &left_state, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_asyncgen_anext(left_gen, &v), 0);
    return 0;   /* leaves it suspended at its yield */
}

static int release_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    gstate_t s = { .n = 10 };
    weft_asyncgen_t *g;
    CHECK_EQ(weft_asyncgen_new(&g, counter_gen, &s, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_asyncgen_anext(g, &v), 0);
    weft_asyncgen_release(g);   /* the finaliser hook closes it in the background */
    settle(4);
    CHECK_EQ(s.cleanups, 1);
    CHECK_EQ(s.last_rc, WEFT_EGENEXIT);

    gstate_t s2 = { .n = 10 };
    CHECK_EQ(weft_asyncgen_new(&g, counter_gen, &s2, NULL), 0);
    CHECK_EQ(weft_asyncgen_anext(g, &v), 0);
    CHECK_EQ(weft_loop_shutdown_asyncgens(), 0);
    CHECK_EQ(s2.cleanups, 1);
    CHECK(weft_asyncgen_finished(g));
    weft_asyncgen_release(g);
    return 0;
}

/* test_base_events.py test_shutdown_asyncgens / test_asyncgen.py
 * test_async_gen_asyncio_shutdown_01 (asyncio.run closes a generator left
 * suspended); test_async_gen_asyncio_gc_aclose_09 (the finaliser) */
static void test_finalisation(void)
{
    CHECK_EQ(run(release_main, NULL), 0);
    CHECK_EQ(run(leaves_generator, NULL), 0);
    CHECK_EQ(left_state.cleanups, 1);
    CHECK_EQ(left_state.last_rc, WEFT_EGENEXIT);
    weft_asyncgen_release(left_gen);
    CHECK_EQ(weft_loop_shutdown_asyncgens(), WEFT_ENOTCORO);
}

/* A generator whose loop is closed while it is suspended: its task is
 * destroyed pending; the generator then reads as finished and releasing it
 * frees everything (LeakSanitizer checks). */
static weft_asyncgen_t *orphan;
static gstate_t orphan_state;
static int start_orphan(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    orphan_state = (gstate_t){ .n = 10 };
    CHECK_EQ(weft_asyncgen_new(&orphan, counter_gen, &orphan_state, NULL), 0);
    weft_value_t v;
    return weft_asyncgen_anext(orphan, &v);
}

static void quiet(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)info;
    (void)ud;
}

static void test_loop_closed_under_generator(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l), 0);
    weft_loop_set_exception_handler(l, quiet, NULL);   /* "Task was destroyed but it is pending!" */
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(l, &t, start_orphan, NULL, NULL), 0);
    CHECK_EQ(weft_loop_run_until_complete(l, t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(l), 0);
    CHECK(!weft_asyncgen_finished(orphan));   /* not looked at yet */
    weft_asyncgen_release(orphan);
    CHECK_EQ(orphan_state.cleanups, 0);       /* its body never ran again */
}

/* ---- as_completed in the same async-for idiom ------------------------------------ */

static int ac_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    job_t a = { .delay = 0.02, .value = 1 }, b = { .delay = 0.001, .code = USER_ERR, .msg = "bad" };
    weft_awaitable_t aws[] = { WEFT_AW_CORO(job_fn, &a), WEFT_AW_CORO(job_fn, &b) };
    weft_as_completed_t *it;
    CHECK_EQ(weft_as_completed_init_aw(&it, aws, 2, WEFT_NO_TIMEOUT), 0);
    int rc, n = 0, errs = 0;
    weft_value_t v;
    WEFT_ASYNC_FOR_EACH(rc, weft_as_completed_next(it, &v, NULL)) {
        n++;
        if (rc == USER_ERR)
            errs++;
        else
            CHECK_EQ(v.i, 1);
    }
    CHECK_EQ(rc, WEFT_ESTOPASYNCITER);
    CHECK_EQ(n, 2);
    CHECK_EQ(errs, 1);
    weft_as_completed_free(it);
    return 0;
}

/* test_tasks.py test_as_completed (iterated to the end; StopAsyncIteration
 * ends the loop as in 3.13's async iterator form) */
static void test_as_completed_for(void) { CHECK_EQ(run(ac_main, NULL), 0); }

/* ---- asyncio.Runner ------------------------------------------------------------- */

static weft_contextvar_t *cvar;
static int runner_step(void *arg, weft_value_t *out)
{
    weft_value_t old;
    if (weft_contextvar_get(cvar, &old) < 0)
        old.i = 0;
    CHECK_EQ(weft_contextvar_set(cvar, WEFT_VALUE_INT(old.i + 1), NULL), 0);
    out->i = (intptr_t)arg + old.i;
    return 0;
}

static int runner_fails(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    return weft_raise(USER_ERR, "runner failure");
}

static int cleanup_done;
static int lingering(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    int rc = weft_sleep(30);
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_EQ(weft_sleep(0.001), 0);   /* cleanup that awaits */
    cleanup_done = 1;
    return rc;
}

static int blocking_double(void *arg, weft_value_t *out)
{
    out->i = 2 * (intptr_t)arg;
    return 0;
}

static gstate_t runner_gen_state;
static weft_asyncgen_t *runner_gen;
static int leaves_work(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    CHECK_EQ(weft_create_task(NULL, lingering, NULL, NULL), 0);
    runner_gen_state = (gstate_t){ .n = 10 };
    CHECK_EQ(weft_asyncgen_new(&runner_gen, counter_gen, &runner_gen_state, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_asyncgen_anext(runner_gen, &v), 0);
    CHECK_EQ(weft_to_thread(blocking_double, (void *)21, &v), 0);   /* the runner's default executor */
    CHECK_EQ(v.i, 42);
    return 0;
}

static int nested(void *arg, weft_value_t *out)
{
    (void)out;
    return weft_runner_run(arg, runner_step, NULL, NULL, NULL);
}

/* test_runners.py: test_run (two runs, one loop), test_run_keeps_context,
 * test_recursive_run, test_explicit_close, test_double_close, test_close
 * (cancels what is left, shutdown_asyncgens, shutdown_default_executor),
 * test_run_raises (the text reaches the caller) */
static void test_runner(void)
{
    CHECK_EQ(weft_contextvar_new(&cvar, "counter", NULL), 0);
    weft_runner_t *r;
    CHECK_EQ(weft_runner_new(NULL, &r), 0);
    weft_loop_t *l = weft_runner_get_loop(r);
    CHECK(l != NULL);
    weft_value_t v;
    CHECK_EQ(weft_runner_run(r, runner_step, (void *)10, NULL, &v), 0);
    CHECK_EQ(v.i, 10);
    CHECK_EQ(weft_runner_run(r, runner_step, (void *)10, NULL, &v), 0);
    CHECK_EQ(v.i, 11);   /* the runner's context carried the variable over */
    CHECK(weft_runner_get_loop(r) == l);
    CHECK_EQ(weft_runner_run(r, runner_fails, NULL, NULL, NULL), USER_ERR);
    CHECK_STR(weft_error_message(), "runner failure");
    CHECK_EQ(weft_runner_run(r, nested, r, NULL, NULL), WEFT_ENESTED);
    CHECK_EQ(weft_runner_run(r, leaves_work, NULL, NULL, NULL), 0);
    CHECK_EQ(cleanup_done, 0);
    CHECK_EQ(weft_runner_close(r), 0);
    CHECK_EQ(cleanup_done, 1);
    CHECK_EQ(runner_gen_state.cleanups, 1);
    CHECK_EQ(runner_gen_state.last_rc, WEFT_EGENEXIT);
    weft_asyncgen_release(runner_gen);
    CHECK_EQ(weft_runner_close(r), 0);   /* twice */
    CHECK(weft_runner_get_loop(r) == NULL);
    CHECK_EQ(weft_runner_run(r, runner_step, NULL, NULL, NULL), WEFT_ECLOSED);
    weft_runner_free(r);
    weft_runner_free(NULL);
    CHECK_EQ(weft_runner_run(NULL, runner_step, NULL, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_runner_close(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_runner_new(NULL, NULL), WEFT_EINVAL);
    weft_contextvar_free(cvar);
}

int main(int argc, char **argv)
{
    RUN(test_async_for);
    RUN(test_asend_athrow);
    RUN(test_aclose);
    RUN(test_cancel_inside);
    RUN(test_finalisation);
    RUN(test_loop_closed_under_generator);
    RUN(test_as_completed_for);
    RUN(test_runner);
    return 0;
}
