/* Subprocesses: 16 MiB through /bin/cat both ways with communicate (and a
 * child filling stdout and stderr at once), exit codes, redirections, a child
 * killed when its waiter is cancelled and reaped, a missing program, writing
 * to a pipe whose child is gone, waiting from another loop. */
#include "sync_util.h"

#include <signal.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define BIG ((size_t)4 << 20)
#else
#define BIG ((size_t)16 << 20)
#endif

static uint8_t pat(size_t i)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    return (uint8_t)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

/* ---- 16 MiB through cat ------------------------------------------------------------- */

static int cat_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    uint8_t *in = malloc(BIG);
    CHECK(in);
    for (size_t i = 0; i < BIG; i++)
        in[i] = pat(i);
    weft_process_t *p;
    weft_process_opts_t o = { .stdin_mode = WEFT_STDIO_PIPE, .stdout_mode = WEFT_STDIO_PIPE };
    char *argv[] = { "cat", NULL };
    CHECK_EQ(weft_create_subprocess_exec("cat", argv, &o, &p), 0);
    CHECK(weft_process_pid(p) > 0);
    CHECK(weft_process_stdin(p) && weft_process_stdout(p) && !weft_process_stderr(p));
    void *out, *err;
    size_t olen, elen;
    CHECK_EQ(weft_process_communicate(p, in, BIG, &out, &olen, &err, &elen), 0);
    CHECK_EQ(olen, BIG);
    CHECK(err == NULL);
    CHECK(memcmp(out, in, BIG) == 0);
    int code = -1;
    CHECK(weft_process_returncode(p, &code));
    CHECK_EQ(code, 0);
    free(out);
    free(in);
    weft_process_free(p);
    return 0;
}

static void test_cat_16mib(void) { run_loop(cat_body, NULL); }

/* stdout and stderr both far larger than a pipe's buffer: read concurrently or deadlock */
static int both_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    size_t n = BIG / 2;
    uint8_t *in = malloc(n);
    CHECK(in);
    for (size_t i = 0; i < n; i++)
        in[i] = pat(i);
    weft_process_opts_t o = { WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, .stdin_fd = 0 };
    weft_process_t *p;
    /* stderr is written in full before stdin is even read */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "head -c %zu /dev/zero >&2; cat", n);
    CHECK_EQ(weft_create_subprocess_shell(cmd, &o, &p), 0);
    void *out, *err;
    size_t olen, elen;
    CHECK_EQ(weft_process_communicate(p, in, n, &out, &olen, &err, &elen), 0);
    CHECK_EQ(olen, n);
    CHECK_EQ(elen, n);
    CHECK(memcmp(out, in, n) == 0);
    for (size_t i = 0; i < elen; i++)
        if (((char *)err)[i])
            CHECK(0);
    free(out);
    free(err);
    free(in);
    weft_process_free(p);
    return 0;
}

static void test_stdout_and_stderr(void) { run_loop(both_body, NULL); }

/* ---- exit codes, redirections --------------------------------------------------------- */

static int codes_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_process_t *p;
    int code = -1;
    CHECK_EQ(weft_create_subprocess_shell("exit 3", NULL, &p), 0);
    CHECK(!weft_process_stdin(p) && !weft_process_stdout(p));
    CHECK_EQ(weft_process_wait(p, &code), 0);
    CHECK_EQ(code, 3);
    CHECK_EQ(weft_process_send_signal(p, SIGTERM), -ESRCH);   /* ProcessLookupError */
    CHECK_EQ(weft_process_wait(p, &code), 0);                    /* again: at once */
    weft_process_free(p);

    /* killed by a signal: -N */
    CHECK_EQ(weft_create_subprocess_exec("sleep", (char *[]){ "sleep", "1000", NULL }, NULL, &p), 0);
    CHECK(!weft_process_returncode(p, NULL));
    CHECK_EQ(weft_process_terminate(p), 0);
    CHECK_EQ(weft_process_wait(p, &code), 0);
    CHECK_EQ(code, -SIGTERM);
    weft_process_free(p);

    /* stderr into stdout */
    weft_process_opts_t o = { .stdout_mode = WEFT_STDIO_PIPE, .stderr_mode = WEFT_STDIO_STDOUT };
    CHECK_EQ(weft_create_subprocess_shell("echo out; echo err >&2", &o, &p), 0);
    CHECK(weft_process_stderr(p) == NULL);
    void *out;
    size_t olen;
    CHECK_EQ(weft_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL), 0);
    CHECK_STR((char *)out, "out\nerr\n");
    free(out);
    weft_process_free(p);

    /* DEVNULL stdin: cat ends at once */
    o = (weft_process_opts_t){ .stdin_mode = WEFT_STDIO_DEVNULL, .stdout_mode = WEFT_STDIO_PIPE };
    CHECK_EQ(weft_create_subprocess_exec("cat", NULL, &o, &p), 0);
    CHECK_EQ(weft_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL), 0);
    CHECK_EQ(olen, 0);
    free(out);
    weft_process_free(p);

    /* a descriptor of ours as stdout */
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    o = (weft_process_opts_t){ .stdout_mode = WEFT_STDIO_FD, .stdout_fd = fds[1] };
    CHECK_EQ(weft_create_subprocess_shell("printf abc", &o, &p), 0);
    CHECK_EQ(weft_process_wait(p, &code), 0);
    CHECK_EQ(code, 0);
    char buf[8] = { 0 };
    CHECK_EQ(read(fds[0], buf, sizeof buf), 3);
    CHECK_STR(buf, "abc");
    close(fds[0]);
    close(fds[1]);
    weft_process_free(p);

    /* environment and directory */
    o = (weft_process_opts_t){ .stdout_mode = WEFT_STDIO_PIPE, .cwd = "/", .env = (char *[]){ "WEFTX=42", NULL } };
    CHECK_EQ(weft_create_subprocess_shell("echo $WEFTX; pwd", &o, &p), 0);
    CHECK_EQ(weft_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL), 0);
    CHECK_STR((char *)out, "42\n/\n");
    free(out);
    weft_process_free(p);
    return 0;
}

static void test_codes_and_redirections(void) { run_loop(codes_body, NULL); }

/* ---- streams used directly ----------------------------------------------------------------- */

static int interactive_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_process_t *p;
    weft_process_opts_t o = { .stdin_mode = WEFT_STDIO_PIPE, .stdout_mode = WEFT_STDIO_PIPE };
    CHECK_EQ(weft_create_subprocess_exec("cat", NULL, &o, &p), 0);
    char line[64];
    size_t n;
    for (int i = 0; i < 3; i++) {
        char msg[32];
        int k = snprintf(msg, sizeof msg, "line %d\n", i);
        CHECK_EQ(weft_writer_write(weft_process_stdin(p), msg, (size_t)k), 0);
        CHECK_EQ(weft_writer_drain(weft_process_stdin(p)), 0);
        CHECK_EQ(weft_reader_readline(weft_process_stdout(p), line, sizeof line, &n), 0);
        CHECK_EQ(n, (size_t)k);
        CHECK(memcmp(line, msg, n) == 0);
    }
    CHECK_EQ(weft_writer_write_eof(weft_process_stdin(p)), 0);   /* socket pairs can half-close */
    CHECK_EQ(weft_reader_readline(weft_process_stdout(p), line, sizeof line, &n), 0);
    CHECK_EQ(n, 0);   /* end of stream */
    int code = -1;
    CHECK_EQ(weft_process_wait(p, &code), 0);
    CHECK_EQ(code, 0);
    weft_process_free(p);
    return 0;
}

static void test_interactive(void) { run_loop(interactive_body, NULL); }

/* ---- errors ---------------------------------------------------------------------------------- */

static int errors_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_process_t *p = (void *)1;
    CHECK_EQ(weft_create_subprocess_exec("/nonexistent/weft-no-such-program", NULL, NULL, &p), -ENOENT);
    CHECK(p == NULL);
    CHECK_EQ(weft_create_subprocess_exec("weft-no-such-program-in-path", NULL, NULL, &p), -ENOENT);
    CHECK_EQ(weft_create_subprocess_exec(NULL, NULL, NULL, &p), WEFT_EINVAL);
    weft_process_opts_t bad = { .stdout_mode = WEFT_STDIO_STDOUT };
    CHECK_EQ(weft_create_subprocess_exec("true", NULL, &bad, &p), WEFT_EINVAL);
    bad = (weft_process_opts_t){ .stdin_mode = WEFT_STDIO_FD, .stdin_fd = -1 };
    CHECK_EQ(weft_create_subprocess_exec("true", NULL, &bad, &p), WEFT_EINVAL);
    CHECK_EQ(weft_process_wait(NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_process_send_signal(NULL, SIGTERM), WEFT_EINVAL);

    /* writing to a pipe whose child is gone */
    weft_process_opts_t o = { .stdin_mode = WEFT_STDIO_PIPE };
    CHECK_EQ(weft_create_subprocess_exec("true", NULL, &o, &p), 0);
    CHECK_EQ(weft_process_wait(p, NULL), 0);
    weft_writer_t *w = weft_process_stdin(p);
    static char chunk[65536];
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++) {
        rc = weft_writer_write(w, chunk, sizeof chunk);
        if (rc == 0)
            rc = weft_writer_drain(w);
    }
    CHECK(rc == -EPIPE || rc == -ECONNRESET);
    CHECK_EQ(weft_writer_write(w, "x", 1), rc);   /* sticky */
    weft_process_free(p);
    /* after close: -EPIPE */
    CHECK_EQ(weft_create_subprocess_exec("cat", NULL, &(weft_process_opts_t){ .stdin_mode = WEFT_STDIO_PIPE }, &p), 0);
    CHECK_EQ(weft_writer_close(weft_process_stdin(p)), 0);
    CHECK_EQ(weft_writer_write(weft_process_stdin(p), "x", 1), -EPIPE);
    CHECK_EQ(weft_process_wait(p, NULL), 0);
    weft_process_free(p);
    return 0;
}

static void test_errors(void) { run_loop(errors_body, NULL); }

/* ---- cancellation: the waiter is cancelled, the child killed and reaped ------------------- */

struct cx {
    weft_process_t *p;
    weft_event_t *waiting;
    int wait_rc;
};

static int waiter(void *arg, weft_value_t *res)
{
    (void)res;
    struct cx *c = arg;
    weft_event_set(c->waiting);
    c->wait_rc = weft_process_wait(c->p, NULL);
    if (c->wait_rc == WEFT_ECANCELED) {
        weft_process_free(c->p);   /* close the transport: the child is killed */
        c->p = NULL;
    }
    return c->wait_rc;
}

static int cancel_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    struct cx c = { 0 };
    CHECK_EQ(weft_event_new(&c.waiting), 0);
    weft_process_opts_t o = { .stdout_mode = WEFT_STDIO_PIPE };
    CHECK_EQ(weft_create_subprocess_exec("sleep", (char *[]){ "sleep", "1000", NULL }, &o, &c.p), 0);
    pid_t pid = weft_process_pid(c.p);
    weft_task_t *t = spawn(waiter, &c);
    CHECK_EQ(weft_event_wait(c.waiting), 0);
    CHECK_EQ(weft_task_cancel(t, NULL), 1);
    CHECK_EQ(await_release(t), WEFT_ECANCELED);
    CHECK(c.p == NULL);
    /* reaped: a zombie would still answer kill(pid, 0) */
    while (kill(pid, 0) == 0)
        CHECK_EQ(weft_sleep(0.005), 0);
    CHECK_EQ(errno, ESRCH);
    weft_event_free(c.waiting);

    /* a cancelled communicate: the child keeps running and can still be waited for */
    weft_process_t *p;
    CHECK_EQ(weft_create_subprocess_shell("read x; echo got $x", &(weft_process_opts_t){ .stdin_mode = WEFT_STDIO_PIPE, .stdout_mode = WEFT_STDIO_PIPE }, &p), 0);
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.02), 0);
    int rc = weft_process_wait(p, NULL);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK(!weft_process_returncode(p, NULL));
    void *out;
    size_t olen;
    CHECK_EQ(weft_process_communicate(p, "7\n", 2, &out, &olen, NULL, NULL), 0);
    CHECK_STR((char *)out, "got 7\n");
    free(out);
    weft_process_free(p);

    /* communicate itself cancelled (both pipes being drained): nothing leaks, the
     * child is still there, then freeing the process kills and reaps it */
    weft_process_opts_t o3 = { .stdout_mode = WEFT_STDIO_PIPE, .stderr_mode = WEFT_STDIO_PIPE };
    CHECK_EQ(weft_create_subprocess_shell("echo partial; exec sleep 1000", &o3, &p), 0);
    pid = weft_process_pid(p);
    CHECK_EQ(weft_timeout_enter(&to, 0.05), 0);
    void *err;
    size_t elen;
    rc = weft_process_communicate(p, NULL, 0, &out, &olen, &err, &elen);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK(out == NULL && err == NULL);
    CHECK(!weft_process_returncode(p, NULL));
    CHECK_EQ(weft_process_kill(p), 0);
    int code = 0;
    CHECK_EQ(weft_process_wait(p, &code), 0);
    CHECK_EQ(code, -SIGKILL);
    weft_process_free(p);
    while (kill(pid, 0) == 0)
        CHECK_EQ(weft_sleep(0.005), 0);
    return 0;
}

static void test_cancel_kills_and_reaps(void) { run_loop(cancel_body, NULL); }

/* ---- waiting from another loop ---------------------------------------------------------------- */

static int remote_wait(void *arg, weft_value_t *res)
{
    int code = -1;
    int rc = weft_process_wait(arg, &code);
    res->i = code;
    return rc;
}

static int rt_body(void *arg, weft_value_t *res)
{
    (void)res;
    weft_runtime_t *rt = arg;
    weft_process_t *p;
    CHECK_EQ(weft_create_subprocess_shell("exit 5", NULL, &p), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, 1), &t, remote_wait, p, NULL), 0);
    weft_value_t v;
#if defined(WEFT_TSAN)
    /* Seen once under TSan on a loaded machine: this wait never ended. Bound it
     * and tell the cases apart: a child that exited (or a zombie nobody reaped)
     * is a weft bug and fails; a child still running its forked copy of this
     * program (stuck before exec: TSan and fork in a multi-threaded process) is
     * reported and not counted. */
    int rc = weft_wait_for(t, 60.0, &v);
    if (rc == WEFT_ETIMEDOUT) {
        char path[64], st[512] = { 0 };
        snprintf(path, sizeof path, "/proc/%d/stat", weft_process_pid(p));
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(st, sizeof st, f))
                st[0] = 0;
            fclose(f);
        }
        const char *paren = strrchr(st, ')');
        char state = paren && paren[1] ? paren[2] : '?';
        fprintf(stderr, "wait timed out: returncode %s, child state '%c' (%s)\n",
                weft_process_returncode(p, NULL) ? "set" : "unset", state, st);
        CHECK(!weft_process_returncode(p, NULL));   /* exited but the waiter was not woken */
        CHECK(state != 'Z');                         /* exited but not reaped */
        CHECK(strstr(st, "(test_process)") != NULL); /* never reached exec */
        weft_process_kill(p);
        weft_task_release(t);
        weft_process_free(p);
        return 0;
    }
    CHECK_EQ(rc, 0);
#else
    CHECK_EQ(weft_await(t, &v), 0);
#endif
    CHECK_EQ(v.i, 5);
    weft_task_release(t);
    weft_process_free(p);
    return 0;
}

static void test_wait_from_other_loop(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, rt_body, rt, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

int main(int argc, char **argv)
{
    alarm(240);   /* watchdog: hangs only */
    RUN(test_cat_16mib);
    RUN(test_stdout_and_stderr);
    RUN(test_codes_and_redirections);
    RUN(test_interactive);
    RUN(test_errors);
    RUN(test_cancel_kills_and_reaps);
    RUN(test_wait_from_other_loop);
    return 0;
}
