/* asyncio docs, "TCP echo client using streams":
 *
 *   reader, writer = await asyncio.open_connection('127.0.0.1', 8888)
 *   writer.write(message.encode()); await writer.drain()
 *   data = await reader.read(100)
 *   writer.close(); await writer.wait_closed()
 *
 * Usage: echo_client [HOST [PORT [MESSAGE]]]   (defaults: 127.0.0.1 8888 "Hello World!")
 * Start `echo_server 8888` first. HOST may be a name: it is resolved without
 * blocking the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

struct args {
    const char *host;
    int port;
    const char *message;
};

static int tcp_echo_client(void *arg, weft_value_t *out)
{
    (void)out;
    const struct args *a = arg;
    weft_reader_t *reader;
    weft_writer_t *writer;
    int rc = weft_open_connection(a->host, a->port, NULL, &reader, &writer);
    if (rc < 0) {
        fprintf(stderr, "cannot connect to %s:%d: %s%s%s\n", a->host, a->port, weft_strerror(rc),
                weft_error_message() ? ": " : "", weft_error_message() ? weft_error_message() : "");
        return rc;
    }
    printf("Send: '%s'\n", a->message);
    rc = weft_writer_write(writer, a->message, strlen(a->message));
    if (rc == 0)
        rc = weft_writer_drain(writer);
    char data[101];
    size_t n = 0;
    if (rc == 0) {
        /* at most 100 bytes, bounded in time */
        weft_timeout_t to;
        if ((rc = weft_timeout_enter(&to, 5.0)) == 0)
            rc = weft_timeout_exit(&to, weft_reader_read(reader, data, 100, &n));
    }
    if (rc == 0) {
        data[n] = '\0';
        printf("Received: '%s'\n", data);
    }
    printf("Close the connection\n");
    weft_writer_close(writer);
    weft_writer_wait_closed(writer);
    weft_reader_release(reader);
    weft_writer_release(writer);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a = {
        .host = argc > 1 ? argv[1] : "127.0.0.1",
        .port = argc > 2 ? atoi(argv[2]) : 8888,
        .message = argc > 3 ? argv[3] : "Hello World!",
    };
    int rc = weft_run(tcp_echo_client, &a, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0;
}
