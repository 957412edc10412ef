/* UDP: ping-pong round trips over IPv4 and IPv6 loopback counting every
 * datagram (flow-controlled: one in flight per client, so nothing may be
 * lost), a window of datagrams queued before the reader runs, oversized
 * datagrams on both sides, connected endpoints' errors, cancellation and
 * close of a waiting recvfrom, and one SO_REUSEPORT socket per loop of a
 * runtime sharing a port. */
#include "sync_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define ROUNDS 300
#else
#define ROUNDS 3000
#endif

struct echo {
    weft_udp_t *u;
    int served;
};

/* echoes every datagram to its sender until closed */
static int echo_body(void *arg, weft_value_t *res)
{
    (void)res;
    struct echo *e = arg;
    char buf[2048];
    for (;;) {
        size_t n;
        struct sockaddr_storage from;
        socklen_t fl;
        int rc = weft_udp_recvfrom(e->u, buf, sizeof buf, &n, &from, &fl);
        if (rc == WEFT_ECLOSED || rc == WEFT_ECANCELED)
            return 0;
        CHECK_EQ(rc, 0);
        CHECK_EQ(weft_udp_sendto(e->u, buf, n, (struct sockaddr *)&from), 0);
        e->served++;
    }
}

static int pingpong(const char *host, int family)
{
    weft_udp_t *srv;
    int rc = weft_create_datagram_endpoint(host, 0, NULL, 0, &(weft_udp_opts_t){ .family = family }, &srv);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)
        return 77;   /* no IPv6 loopback here */
    CHECK_EQ(rc, 0);
    int port = weft_udp_port(srv);
    CHECK(port > 0);
    struct echo e = { .u = srv };
    weft_task_t *et = spawn(echo_body, &e);
    weft_udp_t *cli;
    CHECK_EQ(weft_create_datagram_endpoint(NULL, 0, host, port, NULL, &cli), 0);
    struct sockaddr_storage srv_addr;
    socklen_t sl;
    CHECK_EQ(weft_udp_sockname(srv, &srv_addr, &sl), 0);
    char out[1200], in[2048];
    for (int i = 0; i < ROUNDS; i++) {
        size_t len = 1 + (size_t)(i * 37) % sizeof out;
        for (size_t k = 0; k < len; k++)
            out[k] = (char)(i + (int)k);
        memcpy(out, &i, len < sizeof i ? len : sizeof i);
        CHECK_EQ(weft_udp_sendto(cli, out, len, NULL), 0);
        size_t n;
        struct sockaddr_storage from;
        socklen_t fl;
        CHECK_EQ(weft_udp_recvfrom(cli, in, sizeof in, &n, &from, &fl), 0);
        CHECK_EQ(n, len);
        CHECK(memcmp(in, out, len) == 0);
        CHECK_EQ(from.ss_family, family);
        CHECK_EQ(fl, sl);
        /* the sender is the server: same port (address: the loopback) */
        CHECK_EQ(family == AF_INET ? ((struct sockaddr_in *)&from)->sin_port
                                   : ((struct sockaddr_in6 *)&from)->sin6_port,
                 htons((uint16_t)port));
    }
    CHECK_EQ(e.served, ROUNDS);

    /* a window: 64 datagrams sent before any is read; all come back, in order */
    for (int i = 0; i < 64; i++)
        CHECK_EQ(weft_udp_sendto(cli, &i, sizeof i, NULL), 0);
    CHECK_EQ(weft_udp_drain(cli), 0);
    for (int i = 0; i < 64; i++) {
        int v;
        size_t n;
        CHECK_EQ(weft_udp_recvfrom(cli, &v, sizeof v, &n, NULL, NULL), 0);
        CHECK_EQ(n, sizeof v);
        CHECK_EQ(v, i);
    }
    CHECK_EQ(e.served, ROUNDS + 64);

    weft_udp_close(cli);
    weft_udp_close(srv);   /* the echo task's recvfrom returns WEFT_ECLOSED */
    CHECK_EQ(await_release(et), 0);
    return 0;
}

static int v4_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    CHECK_EQ(pingpong("127.0.0.1", AF_INET), 0);
    return 0;
}

static int v6_body(void *arg, weft_value_t *res)
{
    (void)arg;
    res->i = pingpong("::1", AF_INET6);
    return 0;
}

static void test_pingpong_ipv4(void) { run_loop(v4_body, NULL); }

static void test_pingpong_ipv6(void)
{
    weft_loop_t *loop;
    CHECK_EQ(weft_loop_new(&loop), 0);
    weft_task_t *t;
    CHECK_EQ(weft_loop_create_task(loop, &t, v6_body, NULL, NULL), 0);
    weft_value_t v;
    CHECK_EQ(weft_loop_run_until_complete(loop, t, &v), 0);
    if (v.i == 77)
        printf("# IPv6 loopback unavailable: skipped\n");
    weft_task_release(t);
    CHECK_EQ(weft_loop_free(loop), 0);
}

/* ---- sizes and errors ------------------------------------------------------------------- */

static int recv_one(void *arg, weft_value_t *res)
{
    (void)res;
    char b[16];
    size_t n;
    return weft_udp_recvfrom(arg, b, sizeof b, &n, NULL, NULL);
}

static int errors_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    weft_udp_t *a, *b;
    CHECK_EQ(weft_create_datagram_endpoint("127.0.0.1", 0, NULL, 0, NULL, &a), 0);
    CHECK_EQ(weft_create_datagram_endpoint("127.0.0.1", 0, "127.0.0.1", weft_udp_port(a), NULL, &b), 0);
    struct sockaddr_storage aa;
    CHECK_EQ(weft_udp_sockname(a, &aa, NULL), 0);

    /* oversized: nothing sent */
    size_t big = WEFT_UDP_MAX_IPV4 + 1;
    char *p = calloc(1, big);
    CHECK_EQ(weft_udp_sendto(b, p, big, NULL), -EMSGSIZE);
    CHECK_EQ(weft_udp_sendto(b, p, WEFT_UDP_MAX_IPV4, NULL), 0);   /* the largest fits */
    char *in = malloc(65536);
    size_t n;
    CHECK_EQ(weft_udp_recvfrom(a, in, 65536, &n, NULL, NULL), 0);
    CHECK_EQ(n, WEFT_UDP_MAX_IPV4);
    /* a buffer too small: truncated, -EMSGSIZE, the full size reported */
    CHECK_EQ(weft_udp_sendto(b, "0123456789abcdef", 16, NULL), 0);
    char small[4];
    CHECK_EQ(weft_udp_recvfrom(a, small, sizeof small, &n, NULL, NULL), -EMSGSIZE);
    CHECK_EQ(n, 16);
    CHECK(memcmp(small, "0123", 4) == 0);
    free(p);
    free(in);

    /* addresses: connected needs none, unconnected needs one */
    CHECK_EQ(weft_udp_sendto(a, "x", 1, NULL), -EDESTADDRREQ);
    CHECK_EQ(weft_udp_sendto(b, "x", 1, (struct sockaddr *)&aa), -EISCONN);

    /* a second reader: WEFT_EINVALSTATE; a cancelled one takes nothing */
    weft_task_t *r1 = spawn(recv_one, a);
    CHECK_EQ(weft_yield(), 0);
    char c[4];
    CHECK_EQ(weft_udp_recvfrom(a, c, sizeof c, &n, NULL, NULL), WEFT_EINVALSTATE);
    CHECK_EQ(weft_task_cancel(r1, NULL), 1);
    CHECK_EQ(await_release(r1), WEFT_ECANCELED);
    CHECK_EQ(weft_udp_sendto(b, "kept", 4, NULL), 0);
    CHECK_EQ(weft_udp_recvfrom(a, c, sizeof c, &n, NULL, NULL), 0);
    CHECK(memcmp(c, "kept", 4) == 0);

    /* close under a waiting reader: WEFT_ECLOSED */
    weft_task_t *r2 = spawn(recv_one, a);
    CHECK_EQ(weft_yield(), 0);
    weft_udp_close(a);
    CHECK_EQ(await_release(r2), WEFT_ECLOSED);

    /* the peer is gone: a connected endpoint learns it (ICMP port unreachable) */
    int rc = 0;
    for (int i = 0; i < 50 && rc == 0; i++) {
        rc = weft_udp_sendto(b, "?", 1, NULL);
        if (rc == 0) {
            weft_timeout_t to;
            CHECK_EQ(weft_timeout_enter(&to, 0.05), 0);
            rc = weft_timeout_exit(&to, weft_udp_recvfrom(b, c, sizeof c, &n, NULL, NULL));
            if (rc == WEFT_ETIMEDOUT)
                rc = 0;
        }
    }
    CHECK_EQ(rc, -ECONNREFUSED);
    weft_udp_close(b);

    /* bad arguments */
    weft_udp_t *u;
    CHECK_EQ(weft_create_datagram_endpoint(NULL, 70000, NULL, 0, NULL, &u), WEFT_EINVAL);
    CHECK_EQ(weft_create_datagram_endpoint(NULL, 0, NULL, 0, NULL, NULL), WEFT_EINVAL);
    CHECK_EQ(weft_udp_sendto(NULL, "x", 1, NULL), WEFT_EINVAL);
    return 0;
}

static void test_sizes_and_errors(void) { run_loop(errors_body, NULL); }

/* ---- one socket per loop with SO_REUSEPORT --------------------------------------------------- */

#define WORKERS 2
#define CLIENTS 16

struct rp {
    weft_runtime_t *rt;
    int port;
    struct echo e[WORKERS];
    weft_task_t *et[WORKERS];
};

static int rp_open(void *arg, weft_value_t *res)
{
    (void)res;
    struct rp *r = arg;
    int i = weft_running_loop() == weft_runtime_loop(r->rt, 0) ? 0 : 1;
    int rc = weft_create_datagram_endpoint("127.0.0.1", r->port, NULL, 0,
                                           &(weft_udp_opts_t){ .reuse_port = true }, &r->e[i].u);
    if (rc < 0)
        return rc;
    if (!r->port)
        r->port = weft_udp_port(r->e[i].u);
    return weft_create_task(&r->et[i], echo_body, &r->e[i], NULL);
}

static int rp_close(void *arg, weft_value_t *res)
{
    (void)res;
    struct echo *e = arg;
    weft_udp_close(e->u);
    return 0;
}

static int rp_client(void *arg, weft_value_t *res)
{
    struct rp *r = arg;
    weft_udp_t *c;
    int rc = weft_create_datagram_endpoint(NULL, 0, "127.0.0.1", r->port, NULL, &c);
    if (rc < 0)
        return rc;
    int got = 0;
    for (int i = 0; i < 20; i++) {
        size_t n;
        int v = -1;
        CHECK_EQ(weft_udp_sendto(c, &i, sizeof i, NULL), 0);
        CHECK_EQ(weft_udp_recvfrom(c, &v, sizeof v, &n, NULL, NULL), 0);
        CHECK_EQ(v, i);
        got++;
    }
    weft_udp_close(c);
    res->i = got;
    return 0;
}

static int rp_body(void *arg, weft_value_t *res)
{
    (void)res;
    struct rp *r = arg;
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, rp_open, r, NULL), 0);
    CHECK_EQ(await_release(t), 0);
    CHECK_EQ(weft_spawn_on(weft_runtime_loop(r->rt, 1), &t, rp_open, r, NULL), 0);
    CHECK_EQ(await_release(t), 0);
    /* without SO_REUSEPORT the port is taken */
    weft_udp_t *x;
    CHECK_EQ(weft_create_datagram_endpoint("127.0.0.1", r->port, NULL, 0, NULL, &x), -EADDRINUSE);
    int total = 0;
    for (int i = 0; i < CLIENTS; i++) {
        CHECK_EQ(weft_create_task(&t, rp_client, r, NULL), 0);
        weft_value_t v;
        CHECK_EQ(weft_await(t, &v), 0);
        weft_task_release(t);
        total += (int)v.i;
    }
    CHECK_EQ(total, CLIENTS * 20);
    for (int i = 0; i < WORKERS; i++) {
        CHECK_EQ(weft_spawn_on(weft_runtime_loop(r->rt, i), &t, rp_close, &r->e[i], NULL), 0);
        CHECK_EQ(await_release(t), 0);
        CHECK_EQ(await_release(r->et[i]), 0);
    }
    /* every datagram was served by one of the two loops */
    CHECK_EQ(r->e[0].served + r->e[1].served, CLIENTS * 20);
    printf("# reuseport: loop 0 served %d, loop 1 served %d\n", r->e[0].served, r->e[1].served);
    return 0;
}

static void test_reuseport_per_loop(void)
{
    struct rp r = { 0 };
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = WORKERS }, &r.rt), 0);
    CHECK_EQ(weft_runtime_run(r.rt, rp_body, &r, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(r.rt), 0);
}

int main(int argc, char **argv)
{
    alarm(240);   /* watchdog: hangs only */
    RUN(test_pingpong_ipv4);
    RUN(test_pingpong_ipv6);
    RUN(test_sizes_and_errors);
    RUN(test_reuseport_per_loop);
    return 0;
}
