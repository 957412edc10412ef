/* asyncio docs, "TCP echo server using streams", with its client in the same
 * program so that it ends by itself.
 *
 *   async def handle_echo(reader, writer):
 *       data = await reader.read(100)
 *       addr = writer.get_extra_info('peername')
 *       print(f"Received {data.decode()!r} from {addr!r}")
 *       writer.write(data); await writer.drain()
 *       writer.close(); await writer.wait_closed()
 *
 *   server = await asyncio.start_server(handle_echo, '127.0.0.1', 8888)
 *
 * Usage:
 *   echo_server          start a server on a free port of 127.0.0.1 (every
 *                        worker loop accepts), run three clients against it
 *                        at the same time, then shut the server down.
 *   echo_server PORT     only serve on 127.0.0.1:PORT until Ctrl-C; try it
 *                        with examples/echo_client. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

static weft_runtime_t *rt;

static int handle_echo(weft_reader_t *reader, weft_writer_t *writer, void *arg)
{
    (void)arg;
    char data[101];
    size_t n;
    int rc = weft_reader_read(reader, data, 100, &n);
    if (rc < 0)
        return rc;
    data[n] = '\0';
    weft_extra_info_t info;
    weft_writer_get_extra_info(writer, &info);
    char host[64];
    int port;
    weft_sockaddr_format((struct sockaddr *)&info.peername, info.peername_len, host, sizeof host, &port);
    printf("server: received '%s' from ('%s', %d)\n", data, host, port);
    printf("server: send '%s'\n", data);
    if ((rc = weft_writer_write(writer, data, n)) < 0 || (rc = weft_writer_drain(writer)) < 0)
        return rc;
    printf("server: close the connection\n");
    weft_writer_close(writer);
    return weft_writer_wait_closed(writer);
}

struct client {
    int port;
    const char *message;
};

/* asyncio docs, "TCP echo client using streams" */
static int tcp_echo_client(void *arg, weft_value_t *out)
{
    (void)out;
    const struct client *c = arg;
    weft_reader_t *reader;
    weft_writer_t *writer;
    int rc = weft_open_connection("127.0.0.1", c->port, NULL, &reader, &writer);
    if (rc < 0)
        return rc;
    printf("client: send '%s'\n", c->message);
    rc = weft_writer_write(writer, c->message, strlen(c->message));
    if (rc == 0)
        rc = weft_writer_drain(writer);
    char data[101];
    size_t n = 0;
    if (rc == 0)
        rc = weft_reader_read(reader, data, 100, &n);
    if (rc == 0) {
        data[n] = '\0';
        printf("client: received '%s'\n", data);
    }
    weft_writer_close(writer);
    weft_writer_wait_closed(writer);
    weft_reader_release(reader);
    weft_writer_release(writer);
    return rc;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)out;
    int port = *(int *)arg;
    weft_server_t *server;
    /* every worker loop accepts (its own SO_REUSEPORT socket); a handler runs
     * on the loop that accepted its connection */
    weft_server_opts_t opts = { .mode = WEFT_SERVE_REUSEPORT };
    int rc = weft_start_server(handle_echo, NULL, "127.0.0.1", port, &opts, &server);
    if (rc < 0)
        return rc;
    printf("serving on 127.0.0.1:%d with %d loops\n", weft_server_port(server), weft_server_nloops(server));
    if (port) {   /* serve until Ctrl-C (the runtime's shutdown cancels us) */
        rc = weft_server_serve_forever(server);
        weft_server_free(server);
        return rc == WEFT_ECANCELED ? 0 : rc;
    }
    struct client clients[3] = {
        { weft_server_port(server), "Hello World!" },
        { weft_server_port(server), "Bonjour le monde !" },
        { weft_server_port(server), "Hallo Welt!" },
    };
    weft_task_t *tasks[3];
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = weft_create_task(&tasks[i], tcp_echo_client, &clients[i], NULL);
    if (rc == 0) {
        for (int i = 0; i < 3; i++) {
            int r = weft_await(tasks[i], NULL);
            if (r < 0 && rc == 0)
                rc = r;
            weft_task_release(tasks[i]);
        }
    }
    int cancelled = weft_server_shutdown(server, 1.0);   /* stop accepting, let handlers end */
    printf("server closed (%d handlers cancelled)\n", cancelled);
    weft_server_free(server);
    return rc;
}

static void on_sigint(int sig)
{
    (void)sig;
    weft_runtime_shutdown_from_signal(rt);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: echo_server [PORT]\n");
        return 2;
    }
    int rc = weft_runtime_new(NULL, &rt);
    if (rc == 0) {
        signal(SIGINT, on_sigint);
        rc = weft_runtime_run(rt, main_coro, &port, NULL, NULL);
        weft_runtime_free(rt);
    }
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
