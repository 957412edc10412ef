/* What the I/O files share: name resolution (resolve.c) and the stream
 * services that servers, subprocesses and TLS build on (stream.c). The TLS
 * transport's hooks are in io/xport.h. Not installed. */
#ifndef WEFT_SRC_IO_H
#define WEFT_SRC_IO_H

#include "core/task.h"
#include "weft/stream.h"

#include <sys/socket.h>

/* Resolve @host:@port without blocking the loop (libuv's getaddrinfo): a
 * malloc'd array of *n addresses in *out. @passive: for binding. Task only. */
int weft__resolve(const char *host, int port, int family, bool passive, struct sockaddr_storage **out, size_t *n);

/* Process-wide stream set-up (SIGPIPE ignored), once. Any thread. */
void weft__stream_global_init(void);

/* Make a reader/writer pair of connected socket @fd on @loop (a server's
 * accepted connection, a subprocess's pipe). Loop thread. */
int weft__stream_adopt(weft_loop_t *loop, int fd, bool is_unix, const weft_stream_opts_t *o, weft_reader_t **r,
                       weft_writer_t **w);

/* End a server connection from its handler's task: close (gracefully, or at
 * once if @abort_now), wait until the socket is closed, release both halves. */
void weft__stream_finish(weft_reader_t *r, weft_writer_t *w, bool abort_now);

/* The connection's server is shutting down gracefully: a read that would wait
 * on an idle connection returns WEFT_ESHUTDOWN from now on. Loop thread. */
void weft__stream_drain(weft_reader_t *r);

/* Wait until the connection's transport is ready (a server's TLS handshake). */
int weft__stream_handshake(weft_reader_t *r, weft_writer_t *w);

#endif
