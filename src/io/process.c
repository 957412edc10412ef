/* Subprocesses: uv_spawn with the child's pipes made as Unix socket pairs
 * (uv_socketpair, as libuv's own UV_CREATE_PIPE does) whose parent ends become
 * ordinary weft connections (weft__stream_adopt), so the readers and writers
 * are the stream API's.
 *
 * The uv_process_t lives in the process object. libuv reaps the child on the
 * process's loop and calls proc_exited, which records the return code, sets the
 * exit event (tasks of any loop may wait on it) and closes the handle. The
 * object is freed when both the user released it and the handle is closed;
 * freeing it while the child runs sends SIGKILL first (asyncio's
 * transport.close), so the child is always reaped.
 *
 * A backstop for a lost SIGCHLD: libuv learns of a child's exit from SIGCHLD,
 * and a signal can reach a thread that does not pass it on in time (seen under
 * ThreadSanitizer, which defers signals to the receiving thread's next
 * intercepted call). While the child runs, a timer on its loop looks once a
 * second, without reaping (waitid with WNOWAIT), whether it has exited
 * unnoticed; if so it raises SIGCHLD on the loop's own thread, where the
 * handler runs at once and libuv reaps the child on its next iteration. */
#include "core/task.h"
#include "io/io.h"
#include "weft/process.h"
#include "weft/sync.h"

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WEFT__REAP_CHECK_MS 1000

struct weft_process {
    uv_process_t h;
    uv_timer_t reap;       /* the lost-SIGCHLD backstop (see above) */
    int open_handles;      /* h and reap, until their close callbacks ran */
    weft_loop_t *loop;
    int pid;
    int exited;            /* atomic: 1 once code is set */
    int code;
    bool handle_closed, released, communicating;
    weft_event_t *ev;      /* set when the child ended */
    weft_reader_t *r[3];   /* both halves of every pipe (the user sees one) */
    weft_writer_t *w[3];
};

static void proc_free(weft_process_t *p)
{
    weft_event_free(p->ev);
    free(p);
}

static void on_closed(uv_handle_t *h)
{
    weft_process_t *p = h->data;
    if (--p->open_handles > 0)
        return;
    p->handle_closed = true;
    if (p->released)
        proc_free(p);
}

static void reap_check(uv_timer_t *t)
{
    weft_process_t *p = t->data;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (!__atomic_load_n(&p->exited, __ATOMIC_ACQUIRE) && p->pid > 0 &&
        waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == p->pid)
        raise(SIGCHLD);   /* exited, not reaped: libuv missed the signal */
}

static void proc_exited(uv_process_t *h, int64_t status, int term_signal)
{
    weft_process_t *p = h->data;
    p->code = term_signal ? -term_signal : (int)status;
    __atomic_store_n(&p->exited, 1, __ATOMIC_RELEASE);
    weft_event_set(p->ev);
    uv_close((uv_handle_t *)h, on_closed);
    uv_close((uv_handle_t *)&p->reap, on_closed);
}

static int check_mode(weft_stdio_t m, int fd, bool is_stderr)
{
    if (m == WEFT_STDIO_STDOUT && !is_stderr)
        return WEFT_EINVAL;
    if (m == WEFT_STDIO_FD && fd < 0)
        return WEFT_EINVAL;
    if ((unsigned)m > WEFT_STDIO_FD)
        return WEFT_EINVAL;
    return 0;
}

int weft_create_subprocess_exec(const char *file, char *const argv[], const weft_process_opts_t *opts,
                                weft_process_t **out)
{
    if (out)
        *out = NULL;
    weft_process_opts_t o = opts ? *opts : (weft_process_opts_t){ 0 };
    if (!file || !out)
        return WEFT_EINVAL;
    weft_stdio_t mode[3] = { o.stdin_mode, o.stdout_mode, o.stderr_mode };
    int ufd[3] = { o.stdin_fd, o.stdout_fd, o.stderr_fd };
    for (int i = 0; i < 3; i++)
        if (check_mode(mode[i], ufd[i], i == 2) < 0)
            return WEFT_EINVAL;
    weft_loop_t *loop = weft_running_loop();
    if (!loop)
        return WEFT_ENOLOOP;
    weft__stream_global_init();   /* SIGPIPE ignored: a dead child's pipe gives EPIPE */

    weft_process_t *p = calloc(1, sizeof *p);
    if (!p)
        return WEFT_ENOMEM;
    p->loop = loop;
    p->pid = -1;
    int rc = weft_event_new(&p->ev);
    if (rc < 0) {
        free(p);
        return rc;
    }
    int pfd[3] = { -1, -1, -1 }, cfd[3] = { -1, -1, -1 };
    uv_stdio_container_t st[3];
    for (int i = 0; i < 3; i++) {
        switch (mode[i]) {
        case WEFT_STDIO_INHERIT:
            st[i].flags = UV_INHERIT_FD;
            st[i].data.fd = i;
            break;
        case WEFT_STDIO_DEVNULL:
            st[i].flags = UV_IGNORE;   /* libuv opens /dev/null for 0..2 */
            break;
        case WEFT_STDIO_FD:
            st[i].flags = UV_INHERIT_FD;
            st[i].data.fd = ufd[i];
            break;
        case WEFT_STDIO_STDOUT:   /* stderr = whatever stdout is */
            st[i] = st[1];
            break;
        case WEFT_STDIO_PIPE: {
            uv_os_sock_t sv[2];
            if ((rc = uv_socketpair(SOCK_STREAM, 0, sv, 0, 0)) < 0)
                goto fail_fds;
            pfd[i] = sv[0];
            cfd[i] = sv[1];
            st[i].flags = UV_INHERIT_FD;
            st[i].data.fd = cfd[i];
            break;
        }
        }
    }
    char *defargv[2] = { (char *)(uintptr_t)file, NULL };
    uv_process_options_t po = {
        .exit_cb = proc_exited,
        .file = file,
        .args = argv ? (char **)(uintptr_t)argv : defargv,
        .env = (char **)(uintptr_t)o.env,
        .cwd = o.cwd,
        .flags = o.new_session ? UV_PROCESS_DETACHED : 0,
        .stdio_count = 3,
        .stdio = st,
    };
    p->h.data = p;
    p->open_handles = 1;
    rc = uv_spawn(weft_loop_uv(loop), &p->h, &po);
    for (int i = 0; i < 3; i++)
        if (cfd[i] >= 0)
            close(cfd[i]);
    if (rc < 0) {
        for (int i = 0; i < 3; i++)
            if (pfd[i] >= 0)
                close(pfd[i]);
        p->released = true;
        uv_close((uv_handle_t *)&p->h, on_closed);   /* libuv wants it closed even after a failed spawn */
        return rc;
    }
    p->pid = p->h.pid;
    p->open_handles = 2;
    uv_timer_init(weft_loop_uv(loop), &p->reap);
    p->reap.data = p;
    uv_timer_start(&p->reap, reap_check, WEFT__REAP_CHECK_MS, WEFT__REAP_CHECK_MS);
    uv_unref((uv_handle_t *)&p->reap);
    int arc = 0;
    for (int i = 0; i < 3; i++) {
        if (pfd[i] < 0)
            continue;
        int r = weft__stream_adopt(loop, pfd[i], true, &o.stream, &p->r[i], &p->w[i]);
        if (r < 0 && !arc)
            arc = r;
    }
    if (arc < 0) {
        weft_process_free(p);
        return arc;
    }
    *out = p;
    return 0;

fail_fds:
    for (int i = 0; i < 3; i++) {
        if (pfd[i] >= 0)
            close(pfd[i]);
        if (cfd[i] >= 0)
            close(cfd[i]);
    }
    proc_free(p);
    return rc;
}

int weft_create_subprocess_shell(const char *cmd, const weft_process_opts_t *opts, weft_process_t **out)
{
    if (!cmd) {
        if (out)
            *out = NULL;
        return WEFT_EINVAL;
    }
    char *argv[] = { "/bin/sh", "-c", (char *)(uintptr_t)cmd, NULL };
    return weft_create_subprocess_exec("/bin/sh", argv, opts, out);
}

int weft_process_pid(const weft_process_t *p) { return p ? p->pid : -1; }

weft_writer_t *weft_process_stdin(weft_process_t *p) { return p ? p->w[0] : NULL; }
weft_reader_t *weft_process_stdout(weft_process_t *p) { return p ? p->r[1] : NULL; }
weft_reader_t *weft_process_stderr(weft_process_t *p) { return p ? p->r[2] : NULL; }

bool weft_process_returncode(const weft_process_t *p, int *code)
{
    if (!p || !__atomic_load_n(&p->exited, __ATOMIC_ACQUIRE))
        return false;
    if (code)
        *code = p->code;
    return true;
}

int weft_process_wait(weft_process_t *p, int *code)
{
    if (!p)
        return WEFT_EINVAL;
    if (!weft__thread()->task)
        return WEFT_ENOTCORO;
    if (!weft_process_returncode(p, code)) {
        int rc = weft_event_wait(p->ev);
        if (rc < 0)
            return rc;
        weft_process_returncode(p, code);
    }
    return 0;
}

/* communicate's reader of stderr (a task of its own, so both pipes drain at once). */
typedef struct drain_job {
    weft_reader_t *r;
    void *data;
    size_t len;
    int rc;
} drain_job_t;

static int drain_body(void *arg, weft_value_t *res)
{
    (void)res;
    drain_job_t *j = arg;
    j->rc = weft_reader_read_all(j->r, SIZE_MAX, &j->data, &j->len);
    return 0;
}

int weft_process_communicate(weft_process_t *p, const void *input, size_t len, void **out, size_t *out_len,
                             void **err, size_t *err_len)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (err)
        *err = NULL;
    if (err_len)
        *err_len = 0;
    if (!p || (!input && len))
        return WEFT_EINVAL;
    weft__task_t *self;
    int crc = weft__task_current_on(p->loop, &self);
    if (crc < 0)
        return crc;
    if (p->communicating)
        return WEFT_EINVALSTATE;
    p->communicating = true;
    int rc = 0;
    if (p->w[0] && !weft_writer_is_closing(p->w[0])) {
        /* the whole input is accepted at once (copied); EPIPE: the child stopped reading, fine */
        if (len)
            (void)weft_writer_write(p->w[0], input, len);
        weft_writer_close(p->w[0]);
    }
    drain_job_t ej = { .r = p->r[2] };
    weft_task_t *et = NULL;
    if (ej.r && (rc = weft_create_task(&et, drain_body, &ej, NULL)) < 0) {
        p->communicating = false;
        return rc;
    }
    void *od = NULL;
    size_t ol = 0;
    if (p->r[1])
        rc = weft_reader_read_all(p->r[1], SIZE_MAX, &od, &ol);
    if (et) {
        if (rc < 0)
            weft_task_cancel(et, NULL);
        int arc = weft_await(et, NULL);
        if (arc == WEFT_ECANCELED && rc == 0) {
            /* we were cancelled while waiting for stderr: the helper is cancelled too */
            rc = WEFT_ECANCELED;
            weft_await(et, NULL);
        }
        weft_task_release(et);
        if (rc == 0 && ej.rc < 0)
            rc = ej.rc;
    }
    if (rc == 0)
        rc = weft_process_wait(p, NULL);
    p->communicating = false;
    if (rc < 0) {
        free(od);
        free(ej.data);
        return rc;
    }
    if (out) {
        *out = od;
        if (out_len)
            *out_len = ol;
    } else {
        free(od);
    }
    if (err) {
        *err = ej.data;
        if (err_len)
            *err_len = ej.len;
    } else {
        free(ej.data);
    }
    return 0;
}

int weft_process_send_signal(weft_process_t *p, int sig)
{
    if (!p || sig < 0 || sig >= NSIG)
        return WEFT_EINVAL;
    if (!weft__loop_is_local(p->loop))
        return WEFT_EWRONGLOOP;
    if (__atomic_load_n(&p->exited, __ATOMIC_ACQUIRE))
        return UV_ESRCH;
    return uv_process_kill(&p->h, sig);
}

int weft_process_terminate(weft_process_t *p) { return weft_process_send_signal(p, SIGTERM); }
int weft_process_kill(weft_process_t *p) { return weft_process_send_signal(p, SIGKILL); }

void weft_process_free(weft_process_t *p)
{
    if (!p)
        return;
    if (!weft__loop_is_local(p->loop)) {
        weft__report(NULL, "weft_process_free called off the process's loop (ignored)", WEFT_EWRONGLOOP, NULL, NULL);
        return;
    }
    if (!__atomic_load_n(&p->exited, __ATOMIC_ACQUIRE))
        uv_process_kill(&p->h, SIGKILL);
    for (int i = 0; i < 3; i++) {
        if (p->w[i])
            weft_writer_release(p->w[i]);
        if (p->r[i])
            weft_reader_release(p->r[i]);
        p->w[i] = NULL;
        p->r[i] = NULL;
    }
    p->released = true;
    if (p->handle_closed)
        proc_free(p);
}
