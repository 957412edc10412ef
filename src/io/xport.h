/* A transport layer between a connection's socket and its reader/writer
 * (today: TLS, in tls.c). stream.c stays a plain byte stream; when a
 * connection has a transport, stream.c hands it every byte read from the
 * socket and every byte the user writes, and the transport calls back the
 * weft__conn_* services below to deliver decoded bytes to the reader and to
 * send encoded bytes on the socket. Everything runs on the connection's loop. */
#ifndef WEFT_IO_XPORT_H
#define WEFT_IO_XPORT_H

#include "core/task.h"
#include "weft/stream.h"

struct conn;

typedef struct weft__xport_ops {
    /* a buffer for libuv to read socket bytes into (valid until input runs) */
    char *(*rbuf)(void *x, size_t *len);
    /* @n bytes read from the socket at @data */
    void (*input)(void *x, const char *data, size_t n);
    /* the socket ended: @status is UV_EOF or an error; returns the status the
     * reader is to see (UV_EOF: a clean end of stream) */
    int (*input_end)(void *x, int status);
    /* the user writes @n bytes (the connection is open and not half-closed) */
    int (*write)(void *x, const char *data, size_t n);
    /* close() or write_eof(): queue the transport's own ending after the data */
    void (*shutdown)(void *x, bool closing);
    /* wait until the transport is ready (TLS handshake); current task */
    int (*handshake)(void *x);
    /* the text behind the transport's last error, or NULL */
    const char *(*errmsg)(void *x);
    /* the socket is closed; the connection's memory goes right after */
    void (*destroy)(void *x);
} weft__xport_ops_t;

/* ---- services of stream.c -------------------------------------------------------- */

struct conn *weft__conn_of(const weft_writer_t *w);
weft_loop_t *weft__conn_loop(const struct conn *c);
/* the calling task, if it runs on @c's loop (WEFT_ENOTCORO, WEFT_EWRONGLOOP) */
int weft__conn_task(const struct conn *c, weft__task_t **t);
/* 0, or WEFT_EINVALSTATE if @c is closing, ended, failed or has a transport */
int weft__conn_can_attach(const struct conn *c);
void weft__conn_attach(struct conn *c, const weft__xport_ops_t *ops, void *x);
/* @c's transport if it is of kind @ops, else NULL */
void *weft__conn_xport(const struct conn *c, const weft__xport_ops_t *ops);
/* the connection's peer address as recorded when it was made */
const weft_extra_info_t *weft__conn_info(const struct conn *c);
/* the transport's last error text (kept after the socket closed), or NULL */
const char *weft__conn_xmsg(const struct conn *c);

/* Reader side: room for at least @want decoded bytes (NULL: out of memory),
 * then commit what was written there (wakes the reader, flow control). */
char *weft__conn_rspace(struct conn *c, size_t want, size_t *room);
void weft__conn_rcommit(struct conn *c, size_t n);
/* the peer ended its stream cleanly (reader: end of stream after the data) */
void weft__conn_rclose(struct conn *c);
/* move out the bytes the reader holds and has not consumed (start_tls) */
int weft__conn_rtake(struct conn *c, char **data, size_t *len);

/* Send encoded bytes on the socket, in order after everything sent before. */
int weft__conn_send(struct conn *c, const char *data, size_t n);
/* Fail the connection with @err on both halves and close it at once (the
 * bytes already handed to the socket may still leave). */
void weft__conn_fail(struct conn *c, int err);
/* abort(): close at once with a reset */
void weft__conn_abort(struct conn *c);
bool weft__conn_closed(const struct conn *c);
bool weft__conn_closing(const struct conn *c);

/* ---- services of tls.c ------------------------------------------------------------- */

/* Put a TLS transport on @c for @opts->tls, client or server as the context
 * says; @host:@port names the peer for the client's hostname check and
 * session cache (@host may be NULL). */
int weft__tls_attach(struct conn *c, const weft_stream_opts_t *opts, const char *host, int port);

#endif
