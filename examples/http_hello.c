/* A tiny HTTP/1.1 "hello" server on every worker loop.
 *
 *   http_hello [SECONDS [PORT]]
 *
 * Serves http://127.0.0.1:PORT/ (default 8080) until Ctrl-C, or for SECONDS
 * if given (> 0). Every worker loop has its own SO_REUSEPORT listening socket
 * and runs the connections it accepts; keep-alive connections stay on their
 * loop. Try:  curl -v http://127.0.0.1:8080/
 * At the end it prints how many connections each loop served. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <weft.h>

static weft_runtime_t *rt;
static uint64_t requests;   /* atomic: handlers run on every loop */

static const char hello[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain\r\n"
                            "Content-Length: 14\r\n"
                            "\r\n"
                            "Hello, world!\n";
static const char bad[] = "HTTP/1.1 400 Bad Request\r\n"
                          "Content-Length: 0\r\n"
                          "Connection: close\r\n"
                          "\r\n";

/* One connection: requests one after the other (HTTP/1.1 keep-alive). */
static int handle(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)arg;
    char line[8192];
    for (;;) {
        size_t n;
        int rc = weft_reader_readline(r, line, sizeof line - 1, &n);   /* request line */
        if (rc < 0 || n == 0)
            return rc == WEFT_ELIMIT ? weft_writer_write(w, bad, sizeof bad - 1) : rc;
        line[n] = '\0';
        bool keep_alive = strstr(line, "HTTP/1.1") != NULL;
        for (;;) {   /* headers, up to the empty line */
            if ((rc = weft_reader_readline(r, line, sizeof line - 1, &n)) < 0 || n == 0)
                return rc == WEFT_ELIMIT ? weft_writer_write(w, bad, sizeof bad - 1) : rc;
            line[n] = '\0';
            if (!strcmp(line, "\r\n") || !strcmp(line, "\n"))
                break;
            if (!strncasecmp(line, "Connection:", 11)) {
                const char *v = line + 11;
                v += strspn(v, " \t");
                if (!strncasecmp(v, "close", 5))
                    keep_alive = false;
                else if (!strncasecmp(v, "keep-alive", 10))
                    keep_alive = true;
            }
        }
        __atomic_add_fetch(&requests, 1, __ATOMIC_RELAXED);
        if ((rc = weft_writer_write(w, hello, sizeof hello - 1)) < 0 || (rc = weft_writer_drain(w)) < 0)
            return rc;
        if (!keep_alive)
            return 0;   /* the server closes the connection */
    }
}

struct args {
    double seconds;
    int port;
};

static int main_coro(void *arg, weft_value_t *out)
{
    (void)out;
    const struct args *a = arg;
    weft_server_t *server;
    weft_server_opts_t opts = { .mode = WEFT_SERVE_REUSEPORT, .backlog = 1024 };
    int rc = weft_start_server(handle, NULL, "127.0.0.1", a->port, &opts, &server);
    if (rc < 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%d: %s\n", a->port, weft_strerror(rc));
        return rc;
    }
    printf("serving http://127.0.0.1:%d/ on %d loops%s\n", weft_server_port(server), weft_server_nloops(server),
           a->seconds > 0 ? "" : " (Ctrl-C to stop)");
    fflush(stdout);
    if (a->seconds > 0)
        rc = weft_sleep(a->seconds);
    else
        rc = weft_server_serve_forever(server);   /* until Ctrl-C */
    /* stop accepting, give open connections a second, then cancel them */
    int cancelled = weft_server_shutdown(server, 1.0);
    printf("%llu requests; connections per loop:", (unsigned long long)__atomic_load_n(&requests, __ATOMIC_RELAXED));
    for (int i = 0; i < weft_server_nloops(server); i++) {
        weft_server_loop_stats_t st;
        weft_server_loop_stats(server, i, &st);
        printf(" %llu", (unsigned long long)st.accepted);
    }
    printf("; %d cancelled at shutdown\n", cancelled < 0 ? 0 : cancelled);
    weft_server_free(server);
    return rc == WEFT_ECANCELED ? 0 : rc;
}

static void on_sigint(int sig)
{
    (void)sig;
    weft_runtime_shutdown_from_signal(rt);   /* cancels every task; main_coro then shuts the server down */
}

int main(int argc, char **argv)
{
    struct args a = { .seconds = argc > 1 ? atof(argv[1]) : 0, .port = argc > 2 ? atoi(argv[2]) : 8080 };
    if (a.port < 0 || a.port > 65535) {
        fprintf(stderr, "usage: http_hello [SECONDS [PORT]]\n");
        return 2;
    }
    int rc = weft_runtime_new(NULL, &rt);
    if (rc == 0) {
        signal(SIGINT, on_sigint);
        signal(SIGTERM, on_sigint);
        rc = weft_runtime_run(rt, main_coro, &a, NULL, NULL);
        weft_runtime_free(rt);
    }
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
