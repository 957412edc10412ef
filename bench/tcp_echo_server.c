/* tcp_echo server for weft (bench/DEFINITIONS.md, benchmark 9).
 *
 *   tcp_echo_server [--workers N] [--mode reuseport|handoff|one] [--lifetime S]
 *                   [--tls CERT KEY]
 *
 * Listens on 127.0.0.1, port 0, and prints `PORT n`. Per connection: read up
 * to 4096 bytes, write them back, drain, until end of stream (the asyncio
 * *streams* server of bench/python/peers.py, line for line). It stops by
 * itself once its count of open connections is back to 0 after the first
 * one, with a hard stop after --lifetime seconds (default 25).
 *
 * --workers N   worker loops (default 1)
 * --mode        reuseport (default): an SO_REUSEPORT listener on every loop;
 *               handoff: accept on one loop, hand connections round-robin to
 *               every loop; one: everything on one loop (asyncio's model).
 * --tls C K     serve TLS (weft/tls.h) with the PEM certificate chain C and
 *               key K: every connection does its handshake on the loop that
 *               owns it, then the same echo loop (bench/run_tls_echo.sh).
 * Public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

static struct {
    int workers;
    weft_serve_mode_t mode;
    double lifetime;
    const char *cert, *key;
    weft_tls_t *tls;
    unsigned int open;      /* connections open now (atomic: handlers run on every loop) */
    weft_event_t *idle;     /* set when `open` goes back to 0 */
} g = { .workers = 1, .mode = WEFT_SERVE_REUSEPORT, .lifetime = 25.0 };

static int handle(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)arg;
    __atomic_add_fetch(&g.open, 1, __ATOMIC_SEQ_CST);
    char buf[4096];
    size_t n;
    int rc;
    while ((rc = weft_reader_read(r, buf, sizeof buf, &n)) == 0 && n > 0) {
        if ((rc = weft_writer_write(w, buf, n)) < 0 || (rc = weft_writer_drain(w)) < 0)
            break;
    }
    /* the server closes the connection when we return; connection errors end it quietly */
    if (__atomic_sub_fetch(&g.open, 1, __ATOMIC_SEQ_CST) == 0)
        weft_event_set(g.idle);
    return 0;
}

static int serve(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_server_t *s;
    weft_server_opts_t o = { .mode = g.mode, .backlog = 1024, .stream = { .tls = g.tls } };
    int rc = weft_start_server(handle, NULL, "127.0.0.1", 0, &o, &s);
    if (rc < 0) {
        fprintf(stderr, "tcp_echo_server: start_server: %s\n", weft_strerror(rc));
        return rc;
    }
    printf("PORT %d\n", weft_server_port(s));
    fflush(stdout);
    weft_timeout_t to;
    if ((rc = weft_timeout_enter(&to, g.lifetime)) == 0)
        rc = weft_timeout_exit(&to, weft_event_wait(g.idle));
    if (rc == WEFT_ETIMEDOUT)
        fprintf(stderr, "echo server: hard stop after %g s\n", g.lifetime);
    if (getenv("WEFT_ECHO_STATS")) {
        for (int i = 0; i < weft_server_nloops(s); i++) {
            weft_server_loop_stats_t st;
            weft_server_loop_stats(s, i, &st);
            fprintf(stderr, "# loop %d: %llu connections\n", i, (unsigned long long)st.accepted);
        }
    }
    weft_server_shutdown(s, 1.0);
    weft_server_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            g.workers = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--tls") && i + 2 < argc) {
            g.cert = argv[++i];
            g.key = argv[++i];
        } else if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) {
            g.lifetime = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            const char *m = argv[++i];
            if (!strcmp(m, "reuseport"))
                g.mode = WEFT_SERVE_REUSEPORT;
            else if (!strcmp(m, "handoff"))
                g.mode = WEFT_SERVE_HANDOFF;
            else if (!strcmp(m, "one"))
                g.mode = WEFT_SERVE_ONE_LOOP;
            else
                goto usage;
        } else {
            goto usage;
        }
    }
    if (g.workers < 1 || g.workers > 1024 || !(g.lifetime > 0))
        goto usage;
    if (weft_event_new(&g.idle) < 0)
        return 1;
    if (g.cert) {
        int trc = weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_file = g.cert, .key_file = g.key }, &g.tls);
        if (trc < 0) {
            fprintf(stderr, "tcp_echo_server: cannot load %s / %s: %s\n", g.cert, g.key, weft_strerror(trc));
            return 1;
        }
    }
    weft_runtime_t *rt;
    int rc = weft_runtime_new(&(weft_runtime_opts_t){ .workers = g.workers }, &rt);
    if (rc == 0) {
        rc = weft_runtime_run(rt, serve, NULL, NULL, NULL);
        if (getenv("WEFT_ECHO_STATS"))
            weft_runtime_print_stats(rt, stderr);   /* the scheduler's counters, per loop */
        weft_runtime_free(rt);
    }
    weft_event_free(g.idle);
    weft_tls_release(g.tls);
    if (rc < 0)
        fprintf(stderr, "tcp_echo_server: %s\n", weft_strerror(rc));
    return rc < 0;
usage:
    fprintf(stderr, "usage: tcp_echo_server [--workers N] [--mode reuseport|handoff|one] [--lifetime S] "
                    "[--tls CERT KEY]\n");
    return 2;
}
