/* Multi-loop servers: 1,000 concurrent clients with every byte checked, in
 * both multi-loop modes (SO_REUSEPORT listeners, hand-off of accepted
 * sockets) and both balancing rules; handlers stay on the loop that owns
 * their socket; graceful and forced shutdown with clients connected; a
 * runtime shut down under an open server. Loopback only; bounded by a
 * watchdog alarm and by request counts. */
#include "check.h"
#include "watchdog.h"
#include "core/task.h"
#include "weft.h"

#include <sys/resource.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
/* Sanitizers make every connection 5-20x slower and multiply memory: 100
 * clients still cover every path (several per loop, every mode). */
#define NCLIENTS 100
#define SANITIZED 1
#else
#define NCLIENTS 1000
#define SANITIZED 0
#endif
#define WORKERS 4
#define ROUNDS 3

static uint8_t pat(uint64_t seed, uint64_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + i;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint8_t)x;
}

static int loop_index(weft_runtime_t *rt, weft_loop_t *l)
{
    for (int i = 0; i < weft_runtime_workers(rt); i++)
        if (weft_runtime_loop(rt, i) == l)
            return i;
    return -1;
}

/* ---- the echo server, counting where its handlers run --------------------------------- */

struct srv_ctx {
    weft_runtime_t *rt;
    unsigned int per_loop[WORKERS];   /* handlers started on each loop (atomic) */
    unsigned int wrong_loop;          /* handlers whose socket is on another loop (atomic) */
    unsigned int handlers_done;       /* atomic */
    unsigned int handlers_cancelled;  /* atomic */
};

static int echo_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    struct srv_ctx *ctx = arg;
    weft_loop_t *here = weft_running_loop();
    int li = loop_index(ctx->rt, here);
    CHECK(li >= 0);
    __atomic_add_fetch(&ctx->per_loop[li], 1, __ATOMIC_RELAXED);
    /* the handler's socket is registered with this loop's libuv loop */
    weft_extra_info_t info;
    CHECK_EQ(weft_writer_get_extra_info(w, &info), 0);
    CHECK(info.fd >= 0);
    char buf[8192];
    int rc;
    for (;;) {
        size_t n;
        if ((rc = weft_reader_read(r, buf, sizeof buf, &n)) < 0 || n == 0)
            break;
        if (weft_running_loop() != here)
            __atomic_add_fetch(&ctx->wrong_loop, 1, __ATOMIC_RELAXED);
        if ((rc = weft_writer_write(w, buf, n)) < 0 || (rc = weft_writer_drain(w)) < 0)
            break;
    }
    if (rc == WEFT_ECANCELED)
        __atomic_add_fetch(&ctx->handlers_cancelled, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&ctx->handlers_done, 1, __ATOMIC_RELAXED);
    return rc == WEFT_ECANCELED ? rc : 0;
}

/* ---- clients ------------------------------------------------------------------------------ */

/* every client holds its connection open until all are connected */
struct rendezvous {
    unsigned int arrived;   /* atomic */
    size_t peak;            /* server connections seen by the last to arrive */
    weft_server_t *srv;
    weft_event_t *all_in;
};

struct cli {
    int port;
    int id;
    int rc;
    uint64_t bytes;
    struct rendezvous *rv;
};

static int client_task(void *arg, weft_value_t *out)
{
    (void)out;
    struct cli *c = arg;
    weft_reader_t *r;
    weft_writer_t *w;
    int rc = weft_open_connection("127.0.0.1", c->port, NULL, &r, &w);
    if (rc < 0) {
        c->rc = rc;
        return 0;
    }
    uint8_t out_b[6000], in_b[6000];
    for (int k = 0; k < ROUNDS && rc == 0; k++) {
        size_t size = 1 + ((size_t)c->id * 7919 + (size_t)k * 104729) % sizeof out_b;
        uint64_t seed = (uint64_t)c->id * 1000 + (uint64_t)k;
        for (size_t i = 0; i < size; i++)
            out_b[i] = pat(seed, i);
        if ((rc = weft_writer_write(w, out_b, size)) < 0 || (rc = weft_writer_drain(w)) < 0)
            break;
        size_t n;
        if ((rc = weft_reader_readexactly(r, in_b, size, &n)) < 0)
            break;
        if (memcmp(in_b, out_b, size) != 0)
            rc = -1000;
        c->bytes += size;
        if (k == 0) {   /* connected and echoed once: wait for everybody */
            if (__atomic_add_fetch(&c->rv->arrived, 1, __ATOMIC_SEQ_CST) == NCLIENTS) {
                c->rv->peak = weft_server_connections(c->rv->srv);
                weft_event_set(c->rv->all_in);
            }
            if ((rc = weft_event_wait(c->rv->all_in)) < 0)
                break;
        }
    }
    weft_writer_close(w);
    int rc2 = weft_writer_wait_closed(w);
    weft_reader_release(r);
    weft_writer_release(w);
    c->rc = rc < 0 ? rc : rc2;
    return 0;
}

struct many {
    weft_serve_mode_t mode;
    weft_balance_t balance;
    struct srv_ctx ctx;
};

static int many_main(void *arg, weft_value_t *out)
{
    (void)out;
    struct many *m = arg;
    weft_runtime_t *rt = m->ctx.rt;
    weft_server_t *s;
    weft_server_opts_t o = { .mode = m->mode, .balance = m->balance, .backlog = 4096 };
    CHECK_EQ(weft_start_server(echo_handler, &m->ctx, "127.0.0.1", 0, &o, &s), 0);
    CHECK_EQ(weft_server_nloops(s), WORKERS);
    int port = weft_server_port(s);
    struct cli *cl = calloc(NCLIENTS, sizeof *cl);
    weft_task_t **ts = calloc(NCLIENTS, sizeof *ts);
    struct rendezvous rv = { .srv = s };
    CHECK_EQ(weft_event_new(&rv.all_in), 0);
    double t0 = weft_loop_time(weft_running_loop());
    for (int i = 0; i < NCLIENTS; i++) {
        cl[i] = (struct cli){ .port = port, .id = i, .rv = &rv };
        /* clients on every loop too */
        CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, i % WORKERS), &ts[i], client_task, &cl[i],
                               &(weft_task_opts_t){ .stack_size = 64 * 1024 }),
                 0);
    }
    uint64_t bytes = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        CHECK_EQ(weft_await(ts[i], NULL), 0);
        weft_task_release(ts[i]);
        if (cl[i].rc != 0)
            fprintf(stderr, "client %d: %s\n", i, weft_err_name(cl[i].rc));
        CHECK_EQ(cl[i].rc, 0);
        bytes += cl[i].bytes;
    }
    double t1 = weft_loop_time(weft_running_loop());
    CHECK_EQ(rv.peak, NCLIENTS);   /* all NCLIENTS connections were open at the same time */
    weft_event_free(rv.all_in);
    CHECK_EQ(weft_server_shutdown(s, 10.0), 0);
    CHECK_EQ(weft_server_connections(s), 0);
    uint64_t accepted = 0;
    printf("  %d clients, all connected at once, %llu bytes echoed and checked in %.2f s; per loop:", NCLIENTS,
           (unsigned long long)bytes, t1 - t0);
    for (int i = 0; i < WORKERS; i++) {
        weft_server_loop_stats_t st;
        CHECK_EQ(weft_server_loop_stats(s, i, &st), 0);
        int li = loop_index(rt, st.loop);
        CHECK(li >= 0);
        CHECK_EQ(st.open, 0);
        /* every connection placed on a loop ran its handler on that loop */
        CHECK_EQ(st.accepted, __atomic_load_n(&m->ctx.per_loop[li], __ATOMIC_RELAXED));
        accepted += st.accepted;
        printf(" %llu", (unsigned long long)st.accepted);
        if (m->mode == WEFT_SERVE_HANDOFF && m->balance == WEFT_BALANCE_ROUND_ROBIN)
            CHECK_EQ(st.accepted, NCLIENTS / WORKERS);
        if (m->mode == WEFT_SERVE_REUSEPORT || m->mode == WEFT_SERVE_HANDOFF)
            CHECK(st.accepted > 0);   /* every loop took part */
    }
    printf("\n");
    CHECK_EQ(accepted, NCLIENTS);
    CHECK_EQ(m->ctx.handlers_done, NCLIENTS);
    CHECK_EQ(m->ctx.wrong_loop, 0);
    weft_server_free(s);
    free(cl);
    free(ts);
    return 0;
}

static void run_many(weft_serve_mode_t mode, weft_balance_t balance)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    struct many m = { .mode = mode, .balance = balance, .ctx = { .rt = rt } };
    CHECK_EQ(weft_runtime_run(rt, many_main, &m, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

static void test_many_reuseport(void) { run_many(WEFT_SERVE_REUSEPORT, WEFT_BALANCE_ROUND_ROBIN); }
static void test_many_handoff(void) { run_many(WEFT_SERVE_HANDOFF, WEFT_BALANCE_ROUND_ROBIN); }
static void test_many_handoff_least(void) { run_many(WEFT_SERVE_HANDOFF, WEFT_BALANCE_LEAST_LOADED); }

/* ---- shutdown with clients connected ------------------------------------------------------ */

struct idle_cli {
    int port;
    int rc;          /* what the blocked read saw when the server went away */
    bool connected;
    bool ask_reply;  /* send one message and wait for its echo first */
};

static int idle_client(void *arg, weft_value_t *out)
{
    (void)out;
    struct idle_cli *c = arg;
    weft_reader_t *r;
    weft_writer_t *w;
    int rc = weft_open_connection("127.0.0.1", c->port, NULL, &r, &w);
    if (rc < 0) {
        c->rc = rc;
        return 0;
    }
    if (c->ask_reply) {
        char b[5];
        size_t n;
        weft_writer_write(w, "hello", 5);
        rc = weft_reader_readexactly(r, b, 5, &n);
        if (rc < 0)
            c->rc = rc;
    }
    __atomic_store_n(&c->connected, true, __ATOMIC_RELEASE);
    char b[16];
    size_t n = 1;
    rc = weft_reader_read(r, b, sizeof b, &n);   /* blocks until the server goes */
    c->rc = rc < 0 ? rc : (int)n;                   /* 0: end of stream */
    weft_writer_abort(w);
    weft_writer_wait_closed(w);
    weft_reader_release(r);
    weft_writer_release(w);
    return 0;
}

/* Answers one message, then ends the connection by itself after @arg seconds. */
static int polite_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    double *linger = arg;
    char b[5];
    size_t n;
    int rc = weft_reader_readexactly(r, b, 5, &n);
    if (rc == 0 && (rc = weft_writer_write(w, b, 5)) == 0)
        rc = weft_writer_drain(w);
    if (rc == 0)
        rc = weft_sleep(*linger);
    return rc;
}

static int shutdown_main(void *arg, weft_value_t *out)
{
    (void)out;
    weft_runtime_t *rt = arg;
    enum { N = 20 };
    for (int variant = 0; variant < 3; variant++) {
        weft_serve_mode_t mode = variant == 1 ? WEFT_SERVE_HANDOFF : WEFT_SERVE_REUSEPORT;
        struct srv_ctx ctx = { .rt = rt };
        double linger = 0.5;   /* polite handlers end by themselves after this */
        weft_server_t *s;
        if (variant < 2)
            CHECK_EQ(weft_start_server(echo_handler, &ctx, "127.0.0.1", 0, &(weft_server_opts_t){ .mode = mode }, &s),
                     0);
        else
            CHECK_EQ(weft_start_server(polite_handler, &linger, "127.0.0.1", 0,
                                       &(weft_server_opts_t){ .mode = mode }, &s),
                     0);
        struct idle_cli cl[N];
        weft_task_t *ts[N];
        for (int i = 0; i < N; i++) {
            cl[i] = (struct idle_cli){ .port = weft_server_port(s), .ask_reply = true };
            CHECK_EQ(weft_spawn_on(weft_runtime_loop(rt, i % WORKERS), &ts[i], idle_client, &cl[i], NULL), 0);
        }
        for (int k = 0; k < 5000 && weft_server_connections(s) < N; k++)
            CHECK_EQ(weft_sleep(0.001), 0);
        CHECK_EQ(weft_server_connections(s), N);
        for (int k = 0; k < 5000; k++) {   /* every client has its answer */
            int ready = 0;
            for (int i = 0; i < N; i++)
                ready += __atomic_load_n(&cl[i].connected, __ATOMIC_ACQUIRE);
            if (ready == N)
                break;
            CHECK_EQ(weft_sleep(0.001), 0);
        }
        double t0 = weft_loop_time(weft_running_loop());
        int rc = weft_server_shutdown(s, variant < 2 ? 0.2 : 3.0);
        double dt = weft_loop_time(weft_running_loop()) - t0;
        if (variant < 2) {
            /* echo handlers wait for a next message on idle connections: the
             * shutdown releases them (WEFT_ESHUTDOWN) instead of cancelling
             * them at the deadline (test_server_drain covers the deadline) */
            CHECK_EQ(rc, 0);
            CHECK_EQ(ctx.handlers_cancelled, 0);
            CHECK_EQ(ctx.handlers_done, N);
        } else {
            CHECK_EQ(rc, 0);   /* they all finished within the deadline (rc would be N otherwise) */
        }
        CHECK_EQ(weft_server_connections(s), 0);
        CHECK(!weft_server_is_serving(s));
        /* stopped accepting: nobody listens any more */
        weft_reader_t *r;
        weft_writer_t *w;
        CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), UV_ECONNREFUSED);
        for (int i = 0; i < N; i++) {
            CHECK_EQ(weft_await(ts[i], NULL), 0);
            weft_task_release(ts[i]);
            /* the clients saw the server end their connections */
            CHECK(cl[i].rc == 0 || cl[i].rc == UV_ECONNRESET);
        }
        printf("  variant %d: shutdown returned %d after %.3f s\n", variant, rc, dt);
        weft_server_free(s);
    }
    return 0;
}

static void test_shutdown_with_clients(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, shutdown_main, rt, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* close(): stop accepting, connections go on; wait_closed waits for them */
static int close_main(void *arg, weft_value_t *out)
{
    (void)out;
    weft_runtime_t *rt = arg;
    struct srv_ctx ctx = { .rt = rt };
    weft_server_t *s;
    CHECK_EQ(weft_start_server(echo_handler, &ctx, "127.0.0.1", 0,
                               &(weft_server_opts_t){ .mode = WEFT_SERVE_HANDOFF, .loops = 2 }, &s),
             0);
    CHECK_EQ(weft_server_nloops(s), 2);
    int port = weft_server_port(s);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", port, NULL, &r, &w), 0);
    CHECK_EQ(weft_writer_write(w, "abc", 3), 0);
    char b[3];
    size_t n;
    CHECK_EQ(weft_reader_readexactly(r, b, 3, &n), 0);
    CHECK_EQ(weft_server_close(s), 0);
    CHECK_EQ(weft_server_close(s), 0);
    /* the open connection still works */
    CHECK_EQ(weft_writer_write(w, "def", 3), 0);
    CHECK_EQ(weft_reader_readexactly(r, b, 3, &n), 0);
    CHECK(memcmp(b, "def", 3) == 0);
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.05), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_server_wait_closed(s)), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_writer_write_eof(w), 0);   /* the handler ends, then wait_closed returns */
    CHECK_EQ(weft_server_wait_closed(s), 0);
    CHECK_EQ(weft_reader_read(r, b, 3, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_writer_close(w), 0);
    CHECK_EQ(weft_writer_wait_closed(w), 0);
    weft_reader_release(r);
    weft_writer_release(w);
    CHECK_EQ(ctx.handlers_done, 1);
    weft_server_free(s);
    return 0;
}

/* A runtime shut down while a server and connections are open: everything is
 * cancelled and closed, nothing leaks (ASan checks it). */
struct rs {
    weft_runtime_t *rt;
    struct srv_ctx ctx;
};

static int hold_client(void *arg, weft_value_t *out)
{
    (void)out;
    int port = (int)(intptr_t)arg;
    weft_reader_t *r;
    weft_writer_t *w;
    int rc = weft_open_connection("127.0.0.1", port, NULL, &r, &w);
    if (rc < 0)
        return rc;
    char b[4];
    size_t n;
    rc = weft_reader_read(r, b, sizeof b, &n);   /* until cancelled by the shutdown */
    weft_writer_abort(w);
    while (weft_writer_wait_closed(w) < 0)
        ;
    weft_reader_release(r);
    weft_writer_release(w);
    return rc;
}

static unsigned int started_handlers(struct srv_ctx *ctx)
{
    unsigned int n = 0;
    for (int i = 0; i < WORKERS; i++)
        n += __atomic_load_n(&ctx->per_loop[i], __ATOMIC_RELAXED);
    return n;
}

static int rt_shutdown_main(void *arg, weft_value_t *out)
{
    (void)out;
    struct rs *x = arg;
    weft_server_t *s;
    CHECK_EQ(weft_start_server(echo_handler, &x->ctx, "127.0.0.1", 0,
                               &(weft_server_opts_t){ .mode = WEFT_SERVE_REUSEPORT }, &s),
             0);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(weft_spawn_on(weft_runtime_loop(x->rt, i % WORKERS), NULL, hold_client,
                               (void *)(intptr_t)weft_server_port(s), NULL),
                 0);
    /* wait until all 8 handlers run (a connection is counted when it is
     * accepted, before its handler task starts; a task the shutdown reaches
     * before its first step never runs its body) */
    for (int k = 0; k < 50000 && started_handlers(&x->ctx) < 8; k++)
        CHECK_EQ(weft_sleep(0.001), 0);
    CHECK_EQ(started_handlers(&x->ctx), 8);
    CHECK_EQ(weft_server_connections(s), 8);
    weft_server_free(s);   /* still serving its connections; the runtime ends them */
    return 0;
}

static void test_runtime_shutdown_open_server(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    struct rs x = { .rt = rt, .ctx = { .rt = rt } };
    CHECK_EQ(weft_runtime_run(rt, rt_shutdown_main, &x, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
    CHECK_EQ(x.ctx.handlers_done, 8);
}

static void test_close_keeps_connections(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, close_main, rt, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* Unix sockets on every loop: one path, polled by every serving loop */
static int unix_many_main(void *arg, weft_value_t *out)
{
    (void)out;
    weft_runtime_t *rt = arg;
    struct srv_ctx ctx = { .rt = rt };
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-test-srv-%d.sock", (int)getpid());
    for (int mode = WEFT_SERVE_REUSEPORT; mode <= WEFT_SERVE_HANDOFF; mode++) {
        weft_server_t *s;
        CHECK_EQ(weft_start_unix_server(echo_handler, &ctx, path, &(weft_server_opts_t){ .mode = mode }, &s), 0);
        enum { N = 40 };
        for (int i = 0; i < N; i++) {
            weft_reader_t *r;
            weft_writer_t *w;
            CHECK_EQ(weft_open_unix_connection(path, NULL, &r, &w), 0);
            char msg[32], got[32];
            int len = snprintf(msg, sizeof msg, "message %d", i);
            CHECK_EQ(weft_writer_write(w, msg, (size_t)len), 0);
            size_t n;
            CHECK_EQ(weft_reader_readexactly(r, got, (size_t)len, &n), 0);
            CHECK(memcmp(msg, got, (size_t)len) == 0);
            weft_writer_close(w);
            CHECK_EQ(weft_writer_wait_closed(w), 0);
            weft_reader_release(r);
            weft_writer_release(w);
        }
        CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
        uint64_t total = 0;
        for (int i = 0; i < weft_server_nloops(s); i++) {
            weft_server_loop_stats_t st;
            CHECK_EQ(weft_server_loop_stats(s, i, &st), 0);
            total += st.accepted;
        }
        CHECK_EQ(total, N);
        weft_server_free(s);
    }
    CHECK_EQ(ctx.wrong_loop, 0);
    return 0;
}

static void test_unix_multi_loop(void)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, unix_many_main, rt, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

int main(int argc, char **argv)
{
    alarm(150 * WD_SCALE);   /* watchdog (scaled for sanitizer builds): the default action ends the process */
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit rl;   /* 1,000 clients + 1,000 server sockets */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * NCLIENTS + 200) {
        rl.rlim_cur = rl.rlim_max < 2 * NCLIENTS + 200 ? rl.rlim_max : 2 * NCLIENTS + 200;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * NCLIENTS + 200) {
            printf("skipped: need %d descriptors, the limit is %llu\n", 2 * NCLIENTS + 200,
                   (unsigned long long)rl.rlim_cur);
            return 77;
        }
    }
    RUN(test_many_reuseport);
    RUN(test_many_handoff);
    RUN(test_many_handoff_least);
    RUN(test_shutdown_with_clients);
    RUN(test_close_keeps_connections);
    RUN(test_unix_multi_loop);
    RUN(test_runtime_shutdown_open_server);
    return 0;
}
