/* Server shutdown and admission: idle keep-alive connections released at once
 * by a graceful shutdown (with a one-hour grace period, so only the release
 * can end the drain: no timing is measured), a handler in the middle of a
 * request left to finish it, the deadline cancelling a request that never
 * completes, and the connection limit pausing accept. Runs on several loops
 * (hand-off, least-loaded by default) and on one. */
#include "sync_util.h"

#include <unistd.h>

#define WORKERS 2
#define NIDLE 12

struct srv {
    int released;        /* handlers told WEFT_ESHUTDOWN (atomic) */
    int served;          /* requests answered (atomic) */
    int started;         /* handlers started (atomic) */
    int open, max_open;  /* concurrent handlers (atomic) */
    int cancelled;       /* atomic */
    weft_event_t *all_released;
    weft_event_t *mid_request;   /* the partial request is being read */
    weft_event_t *started_ev;
    int expect_released;
};

/* A line protocol: answers "ok <line>" per line until end of stream. */
static int line_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    struct srv *s = arg;
    __atomic_add_fetch(&s->started, 1, __ATOMIC_SEQ_CST);
    int o = __atomic_add_fetch(&s->open, 1, __ATOMIC_SEQ_CST);
    int m = __atomic_load_n(&s->max_open, __ATOMIC_SEQ_CST);
    while (o > m && !__atomic_compare_exchange_n(&s->max_open, &m, o, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    if (s->started_ev)
        weft_event_set(s->started_ev);
    char line[256];
    size_t have = 0;
    int rc;
    for (;;) {
        char *nl = memchr(line, '\n', have);
        if (!nl) {
            size_t n;
            rc = weft_reader_read(r, line + have, sizeof line - have, &n);
            if (rc == WEFT_ESHUTDOWN) {
                if (__atomic_add_fetch(&s->released, 1, __ATOMIC_SEQ_CST) == s->expect_released && s->all_released)
                    weft_event_set(s->all_released);
                break;   /* returning WEFT_ESHUTDOWN is no error (not reported) */
            }
            if (rc < 0 || n == 0)
                break;
            have += n;
            if (!memchr(line, '\n', have) && s->mid_request)
                weft_event_set(s->mid_request);   /* part of a request arrived */
            continue;
        }
        size_t len = (size_t)(nl - line) + 1;
        char out[300];
        int k = snprintf(out, sizeof out, "ok %.*s", (int)len, line);
        memmove(line, line + len, have - len);
        have -= len;
        if ((rc = weft_writer_write(w, out, (size_t)k)) < 0 || (rc = weft_writer_drain(w)) < 0)
            break;
        __atomic_add_fetch(&s->served, 1, __ATOMIC_SEQ_CST);
    }
    if (rc == WEFT_ECANCELED)
        __atomic_add_fetch(&s->cancelled, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&s->open, 1, __ATOMIC_SEQ_CST);
    return rc;
}

struct cli {
    int port;
    const char *first;   /* sent and answered first */
    weft_event_t *ready; /* set once the first answer arrived */
    int end_rc;          /* the read after: 0 = end of stream */
    size_t end_n;
    weft_reader_t *r;
    weft_writer_t *w;
};

static int client_open(struct cli *c)
{
    int rc = weft_open_connection("127.0.0.1", c->port, NULL, &c->r, &c->w);
    if (rc < 0)
        return rc;
    if (c->first) {
        char b[300];
        size_t n;
        CHECK_EQ(weft_writer_write(c->w, c->first, strlen(c->first)), 0);
        CHECK_EQ(weft_reader_readline(c->r, b, sizeof b, &n), 0);
        CHECK(n > 3 && memcmp(b, "ok ", 3) == 0);
    }
    return 0;
}

static void client_close(struct cli *c)
{
    weft_writer_close(c->w);
    weft_writer_wait_closed(c->w);
    weft_reader_release(c->r);
    weft_writer_release(c->w);
}

/* one request, then idle until the server lets go */
static int idle_client(void *arg, weft_value_t *res)
{
    (void)res;
    struct cli *c = arg;
    CHECK_EQ(client_open(c), 0);
    weft_event_set(c->ready);
    char b[16];
    c->end_rc = weft_reader_read(c->r, b, sizeof b, &c->end_n);
    client_close(c);
    return 0;
}

static int shutdown_task(void *arg, weft_value_t *res)
{
    res->i = weft_server_shutdown(arg, 3600);   /* only the idle release can end it soon */
    return 0;
}

static void drain_case(weft_runtime_t *rt, weft_serve_mode_t mode)
{
    struct srv s = { .expect_released = NIDLE };
    CHECK_EQ(weft_event_new(&s.all_released), 0);
    CHECK_EQ(weft_event_new(&s.mid_request), 0);
    weft_server_t *srv;
    CHECK_EQ(weft_start_server(line_handler, &s, "127.0.0.1", 0, &(weft_server_opts_t){ .mode = mode }, &srv), 0);
    int port = weft_server_port(srv);
    struct cli idle[NIDLE];
    weft_task_t *it[NIDLE];
    for (int i = 0; i < NIDLE; i++) {
        idle[i] = (struct cli){ .port = port, .first = "hello\n" };
        CHECK_EQ(weft_event_new(&idle[i].ready), 0);
        if (rt)
            CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, i % WORKERS), &it[i], idle_client, &idle[i], NULL), 0);
        else
            it[i] = spawn(idle_client, &idle[i]);
    }
    for (int i = 0; i < NIDLE; i++)
        CHECK_EQ(weft_event_wait(idle[i].ready), 0);
    /* one client in the middle of a request: half a line sent */
    struct cli busy = { .port = port };
    CHECK_EQ(client_open(&busy), 0);
    CHECK_EQ(weft_writer_write(busy.w, "half a ", 7), 0);
    CHECK_EQ(weft_event_wait(s.mid_request), 0);
    CHECK_EQ(weft_server_connections(srv), NIDLE + 1);

    weft_task_t *st = spawn(shutdown_task, srv);
    /* the idle handlers are released while the busy one goes on */
    CHECK_EQ(weft_event_wait(s.all_released), 0);
    CHECK_EQ(s.released, NIDLE);
    CHECK(!weft_future_done(st));
    for (int i = 0; i < NIDLE; i++) {
        CHECK_EQ(await_release(it[i]), 0);
        CHECK_EQ(idle[i].end_rc, 0);   /* the server closed their connection: end of stream */
        CHECK_EQ(idle[i].end_n, 0);
        weft_event_free(idle[i].ready);
    }
    CHECK_EQ(weft_server_connections(srv), 1);
    /* the request in flight completes and is answered; then that connection is idle too */
    CHECK_EQ(weft_writer_write(busy.w, "line\n", 5), 0);
    char b[64];
    size_t n;
    CHECK_EQ(weft_reader_readline(busy.r, b, sizeof b, &n), 0);
    CHECK_EQ(n, strlen("ok half a line\n"));
    CHECK(memcmp(b, "ok half a line\n", n) == 0);
    weft_value_t v;
    CHECK_EQ(weft_await(st, &v), 0);
    weft_task_release(st);
    CHECK_EQ(v.i, 0);            /* nobody had to be cancelled */
    CHECK_EQ(s.released, NIDLE + 1);
    CHECK_EQ(s.cancelled, 0);
    CHECK_EQ(weft_reader_readline(busy.r, b, sizeof b, &n), 0);
    CHECK_EQ(n, 0);
    client_close(&busy);
    weft_server_free(srv);
    weft_event_free(s.all_released);
    weft_event_free(s.mid_request);
}

/* a request that never completes is cancelled at the deadline */
static void deadline_case(void)
{
    struct srv s = { .expect_released = -1 };
    CHECK_EQ(weft_event_new(&s.mid_request), 0);
    weft_server_t *srv;
    CHECK_EQ(weft_start_server(line_handler, &s, "127.0.0.1", 0, NULL, &srv), 0);
    struct cli busy = { .port = weft_server_port(srv) };
    CHECK_EQ(client_open(&busy), 0);
    CHECK_EQ(weft_writer_write(busy.w, "never ends", 10), 0);
    CHECK_EQ(weft_event_wait(s.mid_request), 0);
    CHECK_EQ(weft_server_shutdown(srv, 0.05), 1);
    CHECK_EQ(s.cancelled, 1);
    CHECK_EQ(s.released, 0);
    client_close(&busy);
    weft_server_free(srv);
    weft_event_free(s.mid_request);
}

static int drain_rt_main(void *arg, weft_value_t *res)
{
    (void)res;
    drain_case(arg, WEFT_SERVE_HANDOFF);
    drain_case(arg, WEFT_SERVE_REUSEPORT);
    return 0;
}

static int reports;

static void count_reports(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    (void)ud;
    fprintf(stderr, "reported: %s (%s)\n", info->message, weft_strerror(info->code));
    reports++;
}

static int drain_loop_main(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_loop_set_exception_handler(weft_running_loop(), count_reports, NULL);
    drain_case(NULL, WEFT_SERVE_ONE_LOOP);
    CHECK_EQ(reports, 0);   /* handlers that returned WEFT_ESHUTDOWN are not errors */
    deadline_case();
    weft_loop_set_exception_handler(weft_running_loop(), NULL, NULL);
    return 0;
}

static void test_idle_released_at_shutdown(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, drain_rt_main, rt, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
    run_loop(drain_loop_main, NULL);
}

/* ---- connection limit -------------------------------------------------------------------------- */

static int ask(struct cli *c, const char *msg)
{
    char b[64];
    size_t n;
    int rc = weft_writer_write(c->w, msg, strlen(msg));
    if (rc == 0)
        rc = weft_reader_readline(c->r, b, sizeof b, &n);
    return rc;
}

static int third_client(void *arg, weft_value_t *res)
{
    (void)res;
    return ask(arg, "third\n");
}

static int limit_main(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    struct srv s = { .expect_released = -1 };
    CHECK_EQ(weft_event_new(&s.started_ev), 0);
    weft_server_t *srv;
    CHECK_EQ(weft_start_server(line_handler, &s, "127.0.0.1", 0, NULL, &srv), 0);
    CHECK_EQ(weft_server_set_connection_limit(srv, 0), WEFT_EINVAL);
    CHECK_EQ(weft_server_set_connection_limit(NULL, 2), WEFT_EINVAL);
    CHECK_EQ(weft_server_set_connection_limit(srv, 2), 0);
    int port = weft_server_port(srv);
    struct cli c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (struct cli){ .port = port };
        CHECK_EQ(client_open(&c[i]), 0);   /* the kernel completes the handshake: backlog */
    }
    CHECK_EQ(ask(&c[0], "a\n"), 0);
    CHECK_EQ(ask(&c[1], "b\n"), 0);
    weft_task_t *t3 = spawn(third_client, &c[2]);
    /* several round trips on the open connections: the server loop ran its
     * accept path many times, and still the third is not accepted */
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(ask(&c[0], "x\n"), 0);
        CHECK_EQ(weft_yield(), 0);
    }
    CHECK_EQ(s.started, 2);
    CHECK_EQ(weft_server_connections(srv), 2);
    CHECK(!weft_future_done(t3));
    /* one ends: the third is accepted and answered */
    client_close(&c[0]);
    CHECK_EQ(await_release(t3), 0);
    CHECK_EQ(s.started, 3);
    CHECK_EQ(s.max_open, 2);
    /* raising the limit takes effect at once */
    CHECK_EQ(weft_server_set_connection_limit(srv, SIZE_MAX), 0);
    struct cli d = { .port = port, .first = "d\n" };
    CHECK_EQ(client_open(&d), 0);
    client_close(&d);
    client_close(&c[1]);
    client_close(&c[2]);
    CHECK_EQ(weft_server_shutdown(srv, 5), 0);
    weft_server_free(srv);
    weft_event_free(s.started_ev);
    return 0;
}

static void test_connection_limit(void) { run_loop(limit_main, NULL); }

int main(int argc, char **argv)
{
    alarm(240);   /* watchdog: hangs only (the drain cases would hang without the idle release) */
    RUN(test_idle_released_at_shutdown);
    RUN(test_connection_limit);
    return 0;
}
