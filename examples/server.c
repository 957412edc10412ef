/* A complete multi-loop line-protocol server, using what a real one needs:
 *
 *  - every worker loop serves connections (hand-off, least-loaded), at most
 *    MAX_CONNS at once;
 *  - a TaskGroup per connection: each request runs as a child, CPU-heavy ones
 *    as stealable children (an idle worker takes them), each under a
 *    per-request timeout;
 *  - files read without blocking the loop (weft_fs_read_file), a checksum
 *    computed on the blocking pool (weft_to_thread);
 *  - SIGINT/SIGTERM stop it gracefully: stop accepting, release idle
 *    connections, let requests in flight finish (GRACE seconds); a second
 *    signal cancels them;
 *  - an admin thread (a plain pthread) reads the server's counters through
 *    weft_run_coroutine_threadsafe.
 *
 * Protocol (one request per line, one answer per line):
 *   PING              -> PONG
 *   HASH <rounds>     -> HASH <hex>      (CPU work, stealable)
 *   FILE <name>       -> FILE <bytes> <checksum>   (a file of the served directory)
 *   SLOW <seconds>    -> SLEPT, or ERR timeout after REQUEST_TIMEOUT
 *   QUIT              -> BYE, then the server closes the connection
 *   anything else     -> ERR unknown command
 *
 * Usage:
 *   server [PORT [DIR]]   serve on 127.0.0.1:PORT (default 8890) files of DIR
 *                         (default .) until Ctrl-C; try: nc 127.0.0.1 8890
 *   server --self-test    serve on a free port, run clients against it (every
 *                         command, an idle connection left open), have the
 *                         admin thread print the counters and send SIGTERM,
 *                         stop gracefully, and exit 0 if every answer was right. */
#define _DEFAULT_SOURCE   /* kill, usleep, mkdtemp */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#define MAX_CONNS 1024
#define REQUEST_TIMEOUT 1.0
#define GRACE 5.0
#define LINE_MAX_LEN 256

typedef struct app {
    weft_runtime_t *rt;
    weft_server_t *srv;
    const char *dir;
    int port;
    bool self_test;
    unsigned long requests;   /* atomic */
    weft_event_t *clients_done;
    int failures;             /* self-test: wrong answers (atomic) */
} app_t;

/* ---- requests ------------------------------------------------------------------- */

typedef struct request {
    app_t *app;
    char line[LINE_MAX_LEN];
    char answer[LINE_MAX_LEN + 64];
    bool quit;
} request_t;

/* HASH: pure CPU work; runs as a stealable child, possibly on another worker. */
static int hash_work(void *arg, weft_value_t *res)
{
    unsigned long rounds = strtoul(arg, NULL, 10);
    if (rounds > 50u * 1000 * 1000)
        return weft_raise(WEFT_EINVAL, "too many rounds");
    uint64_t h = 1469598103934665603ull;
    for (unsigned long i = 0; i < rounds; i++) {
        h ^= i;
        h *= 1099511628211ull;
        if (i % 1000000 == 999999 && weft_yield() < 0)
            return WEFT_ECANCELED;   /* long work gives its loop back now and then, and can be cancelled */
    }
    res->u = h;
    return 0;
}

typedef struct sum_job {
    unsigned char *data;
    size_t len;
} sum_job_t;

static void sum_job_free(void *p)
{
    sum_job_t *j = p;
    free(j->data);
    free(j);
}

/* FILE's checksum: on the blocking pool, as a stand-in for any blocking library call. */
static int checksum(void *arg, weft_value_t *res)
{
    sum_job_t *j = arg;
    uint32_t a = 1, b = 0;   /* Adler-32 */
    for (size_t i = 0; i < j->len; i++) {
        a = (a + j->data[i]) % 65521;
        b = (b + a) % 65521;
    }
    res->u = (uint64_t)b << 16 | a;
    return 0;
}

static int do_file(request_t *rq, const char *name)
{
    if (!*name || strchr(name, '/') || name[0] == '.') {
        snprintf(rq->answer, sizeof rq->answer, "ERR bad name\n");
        return 0;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", rq->app->dir, name);
    void *data;
    size_t len;
    int rc = weft_fs_read_file(path, 64u << 20, &data, &len);
    if (rc < 0) {
        if (rc == WEFT_ECANCELED)
            return rc;
        snprintf(rq->answer, sizeof rq->answer, "ERR %s\n", weft_strerror(rc));
        return 0;
    }
    /* A cancelled to_thread call (the request timed out) still runs to its end in
     * its thread: the job owns the data and its destructor frees it after the
     * checksum ran, whether anyone still waits or not. */
    sum_job_t *job = malloc(sizeof *job);
    if (!job) {
        free(data);
        return WEFT_ENOMEM;
    }
    *job = (sum_job_t){ data, len };
    weft_value_t v;
    rc = weft_to_thread_dtor(checksum, job, sum_job_free, &v);
    if (rc < 0 && rc != WEFT_ECANCELED)
        sum_job_free(job);   /* refused before it was queued: still ours */
    if (rc < 0)
        return rc;
    snprintf(rq->answer, sizeof rq->answer, "FILE %zu %08llx\n", len, (unsigned long long)v.u);
    return 0;
}

/* One request: a child of the connection's TaskGroup. */
static int request_body(void *arg, weft_value_t *res)
{
    (void)res;
    request_t *rq = arg;
    __atomic_add_fetch(&rq->app->requests, 1, __ATOMIC_RELAXED);
    char *cmd = rq->line, *rest = strchr(cmd, ' ');
    if (rest)
        *rest++ = '\0';
    else
        rest = "";
    if (strcmp(cmd, "PING") == 0) {
        snprintf(rq->answer, sizeof rq->answer, "PONG\n");
    } else if (strcmp(cmd, "HASH") == 0) {
        weft_task_t *t;
        int rc = weft_spawn(&t, hash_work, rest, NULL);
        if (rc < 0)
            return rc;
        weft_value_t v;
        rc = weft_await(t, &v);
        weft_task_release(t);
        if (rc == WEFT_EINVAL)
            snprintf(rq->answer, sizeof rq->answer, "ERR too many rounds\n");
        else if (rc < 0)
            return rc;
        else
            snprintf(rq->answer, sizeof rq->answer, "HASH %016llx\n", (unsigned long long)v.u);
    } else if (strcmp(cmd, "FILE") == 0) {
        return do_file(rq, rest);
    } else if (strcmp(cmd, "SLOW") == 0) {
        int rc = weft_sleep(atof(rest));
        if (rc < 0)
            return rc;
        snprintf(rq->answer, sizeof rq->answer, "SLEPT\n");
    } else if (strcmp(cmd, "QUIT") == 0) {
        snprintf(rq->answer, sizeof rq->answer, "BYE\n");
        rq->quit = true;
    } else {
        snprintf(rq->answer, sizeof rq->answer, "ERR unknown command\n");
    }
    return 0;
}

/* ---- connections ----------------------------------------------------------------------- */

static int handle_conn(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    app_t *app = arg;
    weft_taskgroup_t tg;
    int rc = weft_taskgroup_enter(&tg);
    if (rc < 0)
        return rc;
    for (;;) {
        request_t rq = { .app = app };
        size_t n;
        rc = weft_reader_readline(r, rq.line, sizeof rq.line - 1, &n);
        if (rc == WEFT_ESHUTDOWN || (rc == 0 && n == 0)) {
            rc = 0;   /* the server stops (this connection was idle) or the client left */
            break;
        }
        if (rc == WEFT_ELIMIT) {
            weft_writer_write(w, "ERR line too long\n", 18);
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        while (n && (rq.line[n - 1] == '\n' || rq.line[n - 1] == '\r'))
            n--;
        rq.line[n] = '\0';
        /* the request runs as a child (stealable: a HASH inside moves work to idle workers);
         * the timeout scope bounds it; the group cancels it if this handler is cancelled */
        weft_timeout_t to;
        weft_task_t *child = NULL;
        if ((rc = weft_timeout_enter(&to, REQUEST_TIMEOUT)) < 0)
            break;
        rc = weft_taskgroup_create_task(&tg, &child, request_body, &rq, NULL);
        if (rc == 0)
            rc = weft_await(child, NULL);
        rc = weft_timeout_exit(&to, rc);
        if (child) {
            /* rq lives in this frame: the child must be over before it is reused */
            if (!weft_future_done(child)) {
                weft_task_cancel(child, NULL);
                weft_await(child, NULL);
            }
            weft_task_release(child);
        }
        if (rc == WEFT_ETIMEDOUT)
            snprintf(rq.answer, sizeof rq.answer, "ERR timeout\n");
        else if (rc < 0)
            break;
        if ((rc = weft_writer_write(w, rq.answer, strlen(rq.answer))) < 0 || (rc = weft_writer_drain(w)) < 0)
            break;
        if (rq.quit)
            break;
    }
    rc = weft_taskgroup_exit(&tg, rc);
    weft_taskgroup_free(&tg);
    return rc == WEFT_EGROUP ? 0 : rc;
}

/* ---- the admin thread ------------------------------------------------------------------ */

static int read_stats(void *arg, weft_value_t *res)
{
    app_t *app = arg;
    res->u = (uint64_t)weft_server_connections(app->srv) << 32 |
             (uint32_t)__atomic_load_n(&app->requests, __ATOMIC_RELAXED);
    return 0;
}

static int wait_clients(void *arg, weft_value_t *res)
{
    (void)res;
    return weft_event_wait(((app_t *)arg)->clients_done);
}

static void print_stats(app_t *app)
{
    weft_cfuture_t *cf;
    if (weft_run_coroutine_threadsafe(app->rt, NULL, read_stats, app, NULL, &cf) < 0)
        return;
    weft_value_t v;
    if (weft_cfuture_result(cf, 5.0, &v) == 0)
        printf("admin: %llu connections open, %llu requests served\n", (unsigned long long)(v.u >> 32),
               (unsigned long long)(v.u & 0xffffffffu));
    weft_cfuture_release(cf);
    for (int i = 0; i < weft_server_nloops(app->srv); i++) {
        weft_server_loop_stats_t ls;
        if (weft_server_loop_stats(app->srv, i, &ls) == 0)
            printf("admin: loop %d accepted %llu connections\n", weft_loop_index(ls.loop),
                   (unsigned long long)ls.accepted);
    }
    fflush(stdout);
}

static int stopping;   /* atomic: the server stopped (interactive mode's admin loop ends) */

static void *admin_thread(void *arg)
{
    app_t *app = arg;
    if (app->self_test) {
        /* wait, from a plain thread, until the clients are done; then report and stop */
        weft_cfuture_t *cf;
        if (weft_run_coroutine_threadsafe(app->rt, NULL, wait_clients, app, NULL, &cf) == 0) {
            weft_cfuture_result(cf, WEFT_NO_TIMEOUT, NULL);
            weft_cfuture_release(cf);
        }
        print_stats(app);
        printf("admin: sending SIGTERM\n");
        fflush(stdout);
        kill(getpid(), SIGTERM);
        return NULL;
    }
    while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < 50 && !__atomic_load_n(&stopping, __ATOMIC_ACQUIRE); i++)
            usleep(100 * 1000);
        if (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE))
            print_stats(app);
    }
    return NULL;
}

/* ---- self-test clients ----------------------------------------------------------------- */

static int expect(app_t *app, weft_reader_t *r, weft_writer_t *w, const char *req, const char *prefix)
{
    char line[LINE_MAX_LEN + 64];
    size_t n;
    int rc = weft_writer_write(w, req, strlen(req));
    if (rc == 0)
        rc = weft_reader_readline(r, line, sizeof line - 1, &n);
    if (rc < 0)
        return rc;
    line[n] = '\0';
    if (strncmp(line, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "self-test: %s -> %s (expected %s...)\n", req, line, prefix);
        __atomic_add_fetch(&app->failures, 1, __ATOMIC_RELAXED);
    }
    return 0;
}

static int client(void *arg, weft_value_t *res)
{
    (void)res;
    app_t *app = arg;
    weft_reader_t *r;
    weft_writer_t *w;
    int rc = weft_open_connection("127.0.0.1", app->port, NULL, &r, &w);
    if (rc < 0)
        return rc;
    char want[64];
    snprintf(want, sizeof want, "FILE %d ", 12);
    if ((rc = expect(app, r, w, "PING\n", "PONG")) == 0 &&
        (rc = expect(app, r, w, "HASH 3000000\n", "HASH ")) == 0 &&
        (rc = expect(app, r, w, "FILE hello.txt\n", want)) == 0 &&
        (rc = expect(app, r, w, "FILE ../etc/passwd\n", "ERR bad name")) == 0 &&
        (rc = expect(app, r, w, "SLOW 0.01\n", "SLEPT")) == 0 &&
        (rc = expect(app, r, w, "SLOW 30\n", "ERR timeout")) == 0 &&
        (rc = expect(app, r, w, "NOPE\n", "ERR unknown")) == 0)
        rc = expect(app, r, w, "QUIT\n", "BYE");
    weft_writer_close(w);
    weft_writer_wait_closed(w);
    weft_reader_release(r);
    weft_writer_release(w);
    return rc;
}

/* stays connected and idle: the graceful stop must release it at once */
static int idle_client(void *arg, weft_value_t *res)
{
    (void)res;
    app_t *app = arg;
    weft_reader_t *r;
    weft_writer_t *w;
    int rc = weft_open_connection("127.0.0.1", app->port, NULL, &r, &w);
    if (rc < 0)
        return rc;
    rc = expect(app, r, w, "PING\n", "PONG");
    char b[8];
    size_t n;
    if (rc == 0)
        rc = weft_reader_read(r, b, sizeof b, &n);   /* returns at end of stream: the server let go */
    weft_writer_close(w);
    weft_writer_wait_closed(w);
    weft_reader_release(r);
    weft_writer_release(w);
    return rc;
}

static int run_clients(void *arg, weft_value_t *res)
{
    (void)res;
    app_t *app = arg;
    weft_taskgroup_t tg;
    int rc = weft_taskgroup_enter(&tg);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 8 && rc == 0; i++)
        rc = weft_taskgroup_spawn(&tg, NULL, client, app, NULL);
    rc = weft_taskgroup_exit(&tg, rc);
    weft_taskgroup_free(&tg);
    weft_event_set(app->clients_done);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int main_coro(void *arg, weft_value_t *res)
{
    (void)res;
    app_t *app = arg;
    int rc;
    if (app->self_test) {
        static char dir[] = "/tmp/weft-server-XXXXXX";
        if (!mkdtemp(dir))
            return weft_raise(-errno, "mkdtemp");
        app->dir = dir;
        char path[64];
        snprintf(path, sizeof path, "%s/hello.txt", dir);
        if ((rc = weft_fs_write_file(path, "hello world\n", 12, 0644, false)) < 0)
            return rc;
    }
    weft_server_opts_t so = { .mode = WEFT_SERVE_HANDOFF };   /* least-loaded by default */
    if ((rc = weft_start_server(handle_conn, app, "127.0.0.1", app->port, &so, &app->srv)) < 0)
        return rc;
    weft_server_set_connection_limit(app->srv, MAX_CONNS);
    app->port = weft_server_port(app->srv);
    printf("serving on 127.0.0.1:%d with %d loops\n", app->port, weft_server_nloops(app->srv));
    fflush(stdout);

    weft_task_t *idle = NULL, *clients = NULL;
    if (app->self_test) {
        weft_spawn(&idle, idle_client, app, NULL);
        weft_create_task(&clients, run_clients, app, NULL);
    }
    pthread_t admin;
    bool admin_started = pthread_create(&admin, NULL, admin_thread, app) == 0;

    weft_graceful_report_t rep;
    weft_graceful_opts_t go = { .servers = &app->srv, .nservers = 1, .grace = GRACE };
    rc = weft_serve_until_signal(&go, &rep);   /* SIGINT / SIGTERM */
    __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
    if (rc == 0)
        printf("stopped by signal %d: %s%d request(s) cancelled\n", rep.signum,
               rep.second_signal ? "second signal, " : rep.deadline ? "grace period over, " : "", rep.cancelled);
    if (clients) {
        int crc = weft_await(clients, NULL);
        if (crc < 0) {
            fprintf(stderr, "self-test clients: %s\n", weft_strerror(crc));
            __atomic_add_fetch(&app->failures, 1, __ATOMIC_RELAXED);
        }
        weft_task_release(clients);
    }
    if (idle) {
        int irc = weft_await(idle, NULL);
        if (irc < 0) {
            fprintf(stderr, "self-test idle client: %s\n", weft_strerror(irc));
            __atomic_add_fetch(&app->failures, 1, __ATOMIC_RELAXED);
        }
        weft_task_release(idle);
    }
    if (admin_started)
        pthread_join(admin, NULL);   /* it has returned: the stop was signalled */
    weft_server_free(app->srv);
    if (app->self_test) {
        char path[64];
        snprintf(path, sizeof path, "%s/hello.txt", app->dir);
        weft_fs_unlink(path);
        rmdir(app->dir);
    }
    return rc;
}

int main(int argc, char **argv)
{
    app_t app = { .dir = ".", .port = 8890 };
    if (argc > 1 && strcmp(argv[1], "--self-test") == 0) {
        app.self_test = true;
        app.port = 0;
    } else {
        if (argc > 1)
            app.port = atoi(argv[1]);
        if (argc > 2)
            app.dir = argv[2];
    }
    if (weft_event_new(&app.clients_done) < 0 || weft_runtime_new(NULL, &app.rt) < 0)
        return 1;
    int rc = weft_runtime_run(app.rt, main_coro, &app, NULL, NULL);
    weft_runtime_free(app.rt);
    weft_event_free(app.clients_done);
    if (rc < 0)
        fprintf(stderr, "server: %s\n", weft_strerror(rc));
    if (app.self_test)
        printf("self-test: %s\n", rc == 0 && app.failures == 0 ? "ok" : "FAILED");
    return rc < 0 || app.failures;
}
