/**
 * @file weft/stream.h
 * @brief asyncio's high-level streams in C: TCP and Unix-socket connections
 *        (a reader and a writer each), servers that serve on one loop or on
 *        every worker loop of a runtime, and non-blocking name resolution.
 *
 * The shape is asyncio's (open_connection, start_server, StreamReader,
 * StreamWriter, Server); the differences C forces are listed here.
 *
 * **Threads.** A connection belongs to the loop that opened or accepted it and
 * never moves: every reader and writer function must be called on that loop's
 * thread (WEFT_EWRONGLOOP otherwise). The awaiting ones (read*, drain,
 * wait_closed, open_connection, getaddrinfo, start_server, server waits) must
 * be called from inside a task (WEFT_ENOTCORO otherwise). A server handler
 * task runs on the loop that owns its connection's socket and stays there.
 * Server functions that say "Any thread" may be called from anywhere,
 * including plain threads.
 *
 * **Cancellation.** Every awaiting call here returns WEFT_ECANCELED when its
 * task is cancelled while it waits, so weft_timeout_enter() scopes and
 * weft_wait_for() work around them. A cancelled read consumes nothing: every
 * byte that arrived stays in the reader's buffer for the next read. A
 * cancelled drain drops nothing: the buffered bytes keep flowing out.
 *
 * **Errors.** Negative codes, as everywhere in weft. Socket errors from libuv
 * pass through unchanged: they are negative errno values (UV_ECONNRESET ==
 * -ECONNRESET, UV_EPIPE == -EPIPE, UV_ECONNREFUSED, UV_ETIMEDOUT, ...), so
 * weft_strerror() names them. Three codes are specific to streams: WEFT_ELIMIT,
 * WEFT_EINCOMPLETE and WEFT_ERESOLVE (below).
 *
 * **Buffers and flow control.** Every connection keeps a read buffer filled by
 * libuv as data arrives, whether or not a task is reading (asyncio's
 * StreamReader buffer). When it holds more than 2 x limit bytes and no task
 * waits for data, reading pauses until it drops to the limit (asyncio's
 * rule). Writes that the socket cannot take at once are copied into a write
 * buffer; drain() blocks while that buffer is above the high-water mark,
 * until it falls to the low-water mark (asyncio's transport limits).
 *
 * **SIGPIPE.** The first stream or server created sets SIGPIPE to SIG_IGN if
 * it still has its default action (as Python, Go and Rust do), so writing to
 * a closed peer returns UV_EPIPE instead of killing the process. A handler you
 * installed is left alone.
 */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <netdb.h>
#include <sys/socket.h>

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes ----------------------------------------------------------- */

/** asyncio.LimitOverrunError: readuntil/readline found no separator within the
 *  limit, or the line would not fit. Nothing was consumed: the data stays in
 *  the reader's buffer (read it with weft_reader_read). Same value as
 *  -EMSGSIZE, so weft_strerror() gives "message too long". */
#define WEFT_ELIMIT (-EMSGSIZE)

/** asyncio.IncompleteReadError: end of stream before readexactly's @c n bytes
 *  or readuntil's separator. The partial data *was* consumed and copied to the
 *  caller's buffer (its length in the call's length argument). Same value as
 *  libuv's UV_EOF (-4095, "end of file"). */
#define WEFT_EINCOMPLETE (-4095)

/** Host name resolution failed (socket.gaierror). The task's error message
 *  (weft_error_message()) carries getaddrinfo's reason. libuv's own UV_EAI_*
 *  codes are never returned: they overlap weft's codes (-3000 .. -3014). */
#define WEFT_ERESOLVE (-5070)

/* TLS adds WEFT_ETLS, WEFT_ECERT, WEFT_EHOSTMISMATCH, WEFT_ETLSEOF (weft/tls.h). */

/** asyncio's default reader limit (64 KiB) and write high-water mark. */
#define WEFT_STREAM_DEFAULT_LIMIT ((size_t)64 * 1024)
#define WEFT_STREAM_DEFAULT_HIGH ((size_t)64 * 1024)

/* ---- types ------------------------------------------------------------------- */

/** asyncio.StreamReader: the reading half of a connection. */
typedef struct weft_reader weft_reader_t;
/** asyncio.StreamWriter: the writing half (and the transport) of a connection. */
typedef struct weft_writer weft_writer_t;
/** asyncio.Server: listening sockets plus the connections they accepted. */
typedef struct weft_server weft_server_t;

/** Per-connection options (open_connection, and every connection a server
 *  accepts). NULL or zero fields: defaults. */
typedef struct weft_stream_opts {
    size_t limit;          /**< reader limit (asyncio `limit=`): longest line of readline/readuntil,
                                reading pauses above 2 x limit; 0 = 64 KiB */
    size_t write_high;     /**< write buffer high-water mark; 0 = 64 KiB, or 4 x write_low if that is set */
    size_t write_low;      /**< low-water mark; 0 = write_high / 4 */
    int nodelay;           /**< TCP_NODELAY: 0 = default (on, as asyncio), > 0 on, < 0 off */
    int keepalive;         /**< SO_KEEPALIVE with this many idle seconds before probes; 0 = off */
    int family;            /**< AF_UNSPEC (default), AF_INET or AF_INET6: which addresses to use */
    const char *local_host;/**< open_connection: bind the socket to this local address first (NULL: any) */
    int local_port;        /**< with local_host: local port (0 = any) */
    /* TLS (weft/tls.h; asyncio's ssl=, server_hostname=, ssl_handshake_timeout=, ssl_shutdown_timeout=) */
    struct weft_tls *tls;  /**< TLS context: the connection runs TLS over the socket (NULL: plain) */
    const char *server_hostname; /**< client: name the server's certificate must match and the SNI sent;
                                      NULL = the host given to open_connection; "" = no check, no SNI */
    double tls_handshake_timeout; /**< seconds; 0 = 60 (asyncio), negative = none */
    double tls_shutdown_timeout;  /**< seconds a graceful close may take; 0 = 30 (asyncio), negative = none */
} weft_stream_opts_t;

/** What StreamWriter.get_extra_info() offers: the socket's own and its peer's
 *  address (recorded when the connection was made, so still valid after the
 *  peer is gone) and the descriptor. */
typedef struct weft_extra_info {
    int family;                        /**< AF_INET, AF_INET6 or AF_UNIX */
    struct sockaddr_storage sockname;  /**< 'sockname' */
    socklen_t sockname_len;
    struct sockaddr_storage peername;  /**< 'peername' (for AF_UNIX often an unnamed address) */
    socklen_t peername_len;
    int fd;                            /**< 'socket': the descriptor (borrowed; -1 once closed).
                                            setsockopt on it is fine; never close or read it yourself */
} weft_extra_info_t;

/* ---- connections ------------------------------------------------------------- */

/**
 * asyncio.open_connection(host, port): resolve @p host (an IPv4/IPv6 literal,
 * or a name resolved with uv_getaddrinfo on libuv's thread pool: the loop does
 * not block), connect to each address in turn until one accepts, and give the
 * caller a reader and a writer on the running loop. Awaiting; cancellable (a
 * connection in progress is closed).
 *
 * Ownership: the caller owns *reader and *writer and must release both
 * (weft_reader_release, weft_writer_release) on this loop; call
 * weft_writer_close + weft_writer_wait_closed first for an orderly end.
 * With opts->tls (weft/tls.h), the TLS handshake runs before this returns;
 * if it fails, the connection is closed and nothing is handed out.
 * @return 0; WEFT_EINVAL (NULL host/out, port outside 0..65535, a server TLS
 * context); WEFT_ENOTCORO; WEFT_ERESOLVE; WEFT_ECANCELED; WEFT_ENOMEM; a
 * socket error such as UV_ECONNREFUSED (the first address's error if every
 * address failed); with TLS: WEFT_ETLS, WEFT_ECERT, WEFT_EHOSTMISMATCH,
 * WEFT_ETLSEOF, WEFT_ETIMEDOUT (handshake timeout), each with OpenSSL's
 * reason in weft_error_message().
 */
WEFT_API int weft_open_connection(const char *host, int port, const weft_stream_opts_t *opts,
                                  weft_reader_t **reader, weft_writer_t **writer);

/**
 * asyncio.open_unix_connection(path): the same over a Unix domain socket.
 * TCP-only options (nodelay, keepalive, family, local_*) are ignored.
 * @return as weft_open_connection, plus -ENAMETOOLONG (path longer than
 * sun_path) and UV_ENOENT / UV_ECONNREFUSED.
 */
WEFT_API int weft_open_unix_connection(const char *path, const weft_stream_opts_t *opts, weft_reader_t **reader,
                                       weft_writer_t **writer);

/* ---- StreamReader -------------------------------------------------------------- */

/**
 * StreamReader.read(n): wait until at least one byte is buffered or the stream
 * ended, then copy up to @p n bytes into @p buf. *nread = 0 means end of
 * stream (asyncio's b''); so does n == 0 (returns at once).
 * @return 0 (bytes in *nread); WEFT_ECANCELED (nothing consumed); after the
 * buffered bytes are all read, the connection's error if it failed (e.g.
 * UV_ECONNRESET) instead of end of stream; WEFT_EINVALSTATE (another task is
 * already waiting on this reader); WEFT_ESHUTDOWN (a server connection that is
 * idle while its server shuts down: see weft_server_shutdown; every read call
 * may return it); WEFT_EINVAL; WEFT_ENOTCORO; WEFT_EWRONGLOOP.
 */
WEFT_API int weft_reader_read(weft_reader_t *r, void *buf, size_t n, size_t *nread);

/**
 * StreamReader.readexactly(n): wait until @p n bytes are buffered, then copy
 * them. The bytes are buffered until all n are there (a cancelled call loses
 * nothing), so the read buffer grows to n.
 * @return 0 (*nread == n); WEFT_EINCOMPLETE: the stream ended first, and the
 * partial data was consumed and copied to @p buf (*nread < n, possibly 0);
 * the connection's error in the same way (partial data in buf) if it failed;
 * the other errors of weft_reader_read. @p nread may be NULL.
 */
WEFT_API int weft_reader_readexactly(weft_reader_t *r, void *buf, size_t n, size_t *nread);

/**
 * StreamReader.read() / read(-1): wait for end of stream, then hand over
 * everything that arrived, in one malloc'ed block (*data, *len bytes, plus a
 * terminating NUL byte not counted in *len; free it with free()). Nothing is
 * consumed before the end of stream, so a cancelled call loses nothing.
 * @return 0; WEFT_ELIMIT if more than @p max bytes arrive first (nothing
 * consumed, *data NULL); the connection's error if it failed (nothing
 * consumed); WEFT_ENOMEM; the other errors of weft_reader_read.
 */
WEFT_API int weft_reader_read_all(weft_reader_t *r, size_t max, void **data, size_t *len);

/**
 * StreamReader.readuntil(separator): wait until the buffer holds @p sep
 * (@p seplen bytes), then copy everything up to and including it into @p buf.
 * The line, separator included, must fit in min(limit, cap) bytes.
 * @return 0 (*len bytes, ending with sep);
 *  WEFT_ELIMIT: no separator within min(limit, cap) bytes, or the line found
 *  is longer: nothing consumed, *len = bytes examined (asyncio's `consumed`);
 *  WEFT_EINCOMPLETE: end of stream before a separator: the partial data (up
 *  to min(limit, cap) bytes: a last line of exactly that length included) was
 *  consumed and copied to buf, *len bytes;
 *  the connection's error in the same way if it failed;
 *  WEFT_EINVAL (seplen 0, cap < seplen, NULL pointers); the other errors of
 *  weft_reader_read.
 */
WEFT_API int weft_reader_readuntil(weft_reader_t *r, const void *sep, size_t seplen, void *buf, size_t cap,
                                   size_t *len);

/**
 * StreamReader.readline(): weft_reader_readuntil with "\n", except that end
 * of stream is not an error: a last line without "\n" is returned with 0, and
 * *len == 0 means end of stream (as asyncio). Unlike asyncio, a line over the
 * limit is not discarded: WEFT_ELIMIT leaves every byte in the buffer.
 */
WEFT_API int weft_reader_readline(weft_reader_t *r, void *buf, size_t cap, size_t *len);

/** StreamReader.at_eof(): true once the peer ended its side (or the
 *  connection failed or was closed) and every buffered byte has been read.
 *  Loop thread; false for NULL. */
WEFT_API bool weft_reader_at_eof(const weft_reader_t *r);

/** Bytes buffered and not yet read. Loop thread. */
WEFT_API size_t weft_reader_buffered(const weft_reader_t *r);

/** StreamReader.exception(): the error that ended reading (e.g.
 *  UV_ECONNRESET), or 0 (none, or a clean end of stream). Loop thread. */
WEFT_API int weft_reader_exception(const weft_reader_t *r);

/** Release the reader (its half of the connection); the connection is freed
 *  once both halves are released and its socket is closed. Releasing the
 *  reader does not close anything. Do not release the reader and writer a
 *  server handler was given. NULL is ignored. Loop thread. */
WEFT_API void weft_reader_release(weft_reader_t *r);

/* ---- StreamWriter -------------------------------------------------------------- */

/**
 * StreamWriter.write(data): send @p len bytes without waiting. What the
 * socket takes at once is written now; the rest is copied into the write
 * buffer and sent as the socket allows (the caller may reuse @p data at once).
 * Follow with weft_writer_drain() to respect the buffer limits.
 * @return 0; the connection's write error if one occurred (e.g. UV_EPIPE,
 * UV_ECONNRESET; a later drain returns it too); UV_EPIPE after close() or
 * write_eof(); WEFT_ENOMEM; WEFT_EINVAL; WEFT_EWRONGLOOP. Loop thread (need
 * not be a task).
 */
WEFT_API int weft_writer_write(weft_writer_t *w, const void *data, size_t len);

/**
 * StreamWriter.drain(): if the write buffer went above the high-water mark,
 * wait until it falls to the low-water mark. Returns at once otherwise.
 * @return 0; the connection's write error (UV_EPIPE, UV_ECONNRESET, ... or
 * UV_EPIPE when the connection was closed with data still buffered); the
 * reader's error if reading failed (asyncio raises the reader's exception);
 * WEFT_ECANCELED (nothing dropped); WEFT_ENOTCORO; WEFT_EWRONGLOOP.
 */
WEFT_API int weft_writer_drain(weft_writer_t *w);

/**
 * StreamWriter.write_eof(): half-close: once the buffered data is sent, shut
 * down the sending direction (the peer reads end of stream); reading goes on.
 * Later writes return UV_EPIPE. @return 0, or an error as weft_writer_write.
 */
WEFT_API int weft_writer_write_eof(weft_writer_t *w);

/** StreamWriter.can_write_eof(): true for TCP and Unix sockets. */
WEFT_API bool weft_writer_can_write_eof(const weft_writer_t *w);

/**
 * StreamWriter.close(): stop reading (the reader sees end of stream after
 * what is already buffered), send what is still buffered, then close the
 * socket. Does not wait: use weft_writer_wait_closed(). Idempotent.
 * @return 0, WEFT_EINVAL, WEFT_EWRONGLOOP. Loop thread.
 */
WEFT_API int weft_writer_close(weft_writer_t *w);

/**
 * Transport.abort(): close at once, dropping buffered data. For TCP the
 * connection is reset (RST), so the peer reads UV_ECONNRESET. Idempotent.
 * @return 0, WEFT_EINVAL, WEFT_EWRONGLOOP. Loop thread.
 */
WEFT_API int weft_writer_abort(weft_writer_t *w);

/**
 * StreamWriter.wait_closed(): wait until the socket is closed (after close()
 * or abort(); it does not start closing). A graceful close waits for the
 * buffered data to be sent, which needs a reading peer: bound it with a
 * timeout scope and abort() on expiry if the peer may stall.
 * @return 0, WEFT_ECANCELED, WEFT_ENOTCORO, WEFT_EWRONGLOOP.
 */
WEFT_API int weft_writer_wait_closed(weft_writer_t *w);

/** StreamWriter.is_closing(): true once close() or abort() was called, or the
 *  connection was released. Loop thread. */
WEFT_API bool weft_writer_is_closing(const weft_writer_t *w);

/** StreamWriter.get_extra_info(): copy the connection's addresses and
 *  descriptor to *out. @return 0, WEFT_EINVAL. Loop thread. */
WEFT_API int weft_writer_get_extra_info(const weft_writer_t *w, weft_extra_info_t *out);

/** Transport.get_write_buffer_size(): bytes accepted by write() and not yet
 *  handed to the kernel. Loop thread. */
WEFT_API size_t weft_writer_get_write_buffer_size(const weft_writer_t *w);

/** Transport.set_write_buffer_limits(high, low), with asyncio's defaults for
 *  zero values (see weft_stream_opts_t). @return 0, WEFT_EINVAL (low > high). */
WEFT_API int weft_writer_set_write_buffer_limits(weft_writer_t *w, size_t high, size_t low);

/** The reader of the same connection (borrowed). Loop thread. */
WEFT_API weft_reader_t *weft_writer_reader(weft_writer_t *w);

/** Release the writer: closes the connection gracefully if close()/abort()
 *  was not called. Memory goes once the reader is released too and the
 *  socket is closed. Do not release what a server handler was given. NULL is
 *  ignored. Loop thread. A connection still open when its loop closes has its
 *  socket closed by the loop, but its memory is then lost: close and wait
 *  before the loop ends. */
WEFT_API void weft_writer_release(weft_writer_t *w);

/* ---- servers ----------------------------------------------------------------- */

/**
 * A connection handler (asyncio's client_connected_cb): a coroutine run as a
 * new task for every accepted connection, on the loop that owns the socket.
 * The server owns @p reader and @p writer: the handler must not release them
 * nor use them after it returns. When it returns (or is cancelled) the server
 * closes the connection (gracefully if it returned, at once if it was
 * cancelled), waits until the socket is closed, and frees both. A negative
 * return other than WEFT_ECANCELED and WEFT_ESHUTDOWN (what a read returns on
 * an idle connection during a graceful shutdown, so a handler may simply
 * return it) is reported to the loop's exception handler ("Unhandled error in
 * client_connected_cb", as asyncio).
 */
typedef int (*weft_client_connected_fn)(weft_reader_t *reader, weft_writer_t *writer, void *arg);

/** Where a server accepts and runs its connections. For a server on several
 *  loops, WEFT_SERVE_HANDOFF (with its default, least-loaded balance) is the
 *  recommended mode: every connection goes to the loop with the fewest open
 *  ones. WEFT_SERVE_REUSEPORT avoids the hand-off but leaves placement to the
 *  kernel's hash of the addresses, which may put all connections (few
 *  clients, or one proxy in front) on one loop while the others idle. */
typedef enum weft_serve_mode {
    /** asyncio's model: accept on the loop that started the server and run
     *  every handler there. */
    WEFT_SERVE_ONE_LOOP = 0,
    /** Accept on every serving loop: each has its own listening socket with
     *  SO_REUSEPORT, and the kernel spreads connections over them (by the
     *  hash of the addresses). A loop keeps its share even when busy. Unix
     *  sockets cannot share a path this way: there every serving loop polls
     *  the one listening socket and whichever accepts first owns the client. */
    WEFT_SERVE_REUSEPORT = 1,
    /** Accept on the loop that started the server and hand each connection
     *  (its descriptor) to a serving loop chosen by weft_server_opts_t.balance;
     *  the connection's socket and handler then live on that loop. */
    WEFT_SERVE_HANDOFF = 2,
} weft_serve_mode_t;

/** How WEFT_SERVE_HANDOFF picks a loop. */
typedef enum weft_balance {
    WEFT_BALANCE_LEAST_LOADED = 0,  /**< the default: the loop with the fewest open connections of
                                         this server (ties: in turn) */
    WEFT_BALANCE_ROUND_ROBIN = 1,   /**< each serving loop in turn (the accepting one included) */
} weft_balance_t;

/** Server options; NULL or zero fields: defaults. */
typedef struct weft_server_opts {
    weft_stream_opts_t stream;    /**< options of every accepted connection (local_* ignored) */
    int backlog;                  /**< listen() backlog; 0 = 100 (asyncio) */
    weft_serve_mode_t mode;       /**< default WEFT_SERVE_ONE_LOOP */
    weft_balance_t balance;       /**< WEFT_SERVE_HANDOFF only; default least-loaded */
    int loops;                    /**< serving loops: 0 = every worker of the runtime; the first is
                                       the calling task's loop, then the next workers in order.
                                       A loop outside a runtime always serves alone */
    bool reuse_port;              /**< WEFT_SERVE_ONE_LOOP/HANDOFF: set SO_REUSEPORT too (asyncio
                                       reuse_port=True: other processes may bind the same port) */
    bool no_reuse_address;        /**< do not set SO_REUSEADDR (asyncio sets it by default on Unix) */
    size_t stack_size;            /**< stack of every handler task; 0 = WEFT_DEFAULT_STACK_SIZE */
    unsigned int unix_mode;       /**< Unix servers: chmod the socket file to this mode if non-zero */
} weft_server_opts_t;

/**
 * asyncio.start_server(handler, host, port): listen on every address of
 * @p host (NULL or "" = all interfaces: 0.0.0.0 and ::, as asyncio; a name is
 * resolved without blocking) at @p port (0 = a free port chosen by the
 * kernel: read it with weft_server_port()), and run handler(reader, writer,
 * arg) as a task for every connection. IPv6 sockets are IPV6_V6ONLY (as
 * asyncio). Returns once every serving loop accepts connections. Awaiting;
 * called from a task on any loop (the server's "home" loop).
 *
 * @p arg is shared by every handler (on every serving loop: make what it
 * points to safe for that). The server is owned by the caller: stop it with
 * weft_server_close / weft_server_shutdown and free it with weft_server_free.
 * With opts->stream.tls (a server context, weft/tls.h; the server keeps a
 * reference), every connection does its TLS handshake on its own loop before
 * the handler runs; a connection whose handshake fails is closed without it.
 * @return 0; WEFT_EINVAL (also: a client TLS context); WEFT_ENOTCORO;
 * WEFT_ERESOLVE; WEFT_ECANCELED; WEFT_ENOMEM; WEFT_ECLOSED (the runtime is
 * shutting down); a socket error such as UV_EADDRINUSE or UV_EACCES.
 */
WEFT_API int weft_start_server(weft_client_connected_fn handler, void *arg, const char *host, int port,
                               const weft_server_opts_t *opts, weft_server_t **server);

/**
 * asyncio.start_unix_server(handler, path): the same on a Unix domain socket
 * at @p path. A stale socket file at @p path is removed first (asyncio); the
 * file is removed again when the server closes if it is still ours (asyncio
 * 3.13's cleanup_socket). @return as weft_start_server, plus -ENAMETOOLONG.
 */
WEFT_API int weft_start_unix_server(weft_client_connected_fn handler, void *arg, const char *path,
                                    const weft_server_opts_t *opts, weft_server_t **server);

/**
 * Server.close(): stop accepting. The listening sockets are closed (on their
 * own loops, shortly after this returns; connections waiting in the kernel's
 * backlog are reset). Connections already accepted are **not** touched: their
 * handlers run to their end (asyncio 3.12). Use weft_server_shutdown() to
 * bound them. Idempotent. @return 0, WEFT_EINVAL. Any thread.
 */
WEFT_API int weft_server_close(weft_server_t *s);

/**
 * Server.wait_closed(): wait until the server is closed (close() or shutdown()
 * called, its listening sockets closed) and every connection's handler has
 * ended. Does not close anything by itself. Awaiting, from a task on any loop.
 * @return 0, WEFT_ECANCELED, WEFT_EINVAL, WEFT_ENOTCORO.
 */
WEFT_API int weft_server_wait_closed(weft_server_t *s);

/**
 * Graceful shutdown: close() (stop accepting), let the handlers finish for up
 * to @p timeout seconds (WEFT_NO_TIMEOUT: no limit; <= 0: none), then cancel the handlers still
 * running (their connections are closed at once) and wait until they ended.
 * Awaiting, from a task on any loop.
 *
 * Idle connections are released at once: a handler that waits in a read for
 * the start of a new request (nothing buffered, nothing read since its last
 * write: between two requests of a keep-alive connection, or before the
 * first) gets WEFT_ESHUTDOWN from that read, and so does every later read
 * that would wait on an idle connection, so the drain ends when the requests
 * in flight end. A handler in the middle of a request (it read part of it and
 * has not written since) keeps reading normally until the deadline.
 * @return the number of connections that were still open at the deadline and
 * were cancelled (0: everything ended in time); WEFT_ECANCELED if the calling
 * task was cancelled (the server is closed but handlers may still run);
 * WEFT_EINVAL (s NULL, timeout NaN); WEFT_ENOTCORO.
 */
WEFT_API int weft_server_shutdown(weft_server_t *s, double timeout);

/**
 * Server.serve_forever(): wait until the server is closed (from elsewhere) and
 * its handlers ended. If the calling task is cancelled, the server is closed
 * (as asyncio) and WEFT_ECANCELED returned without waiting for the handlers.
 * Awaiting. @return 0, WEFT_ECANCELED, WEFT_EINVAL, WEFT_ENOTCORO.
 */
WEFT_API int weft_server_serve_forever(weft_server_t *s);

/** Server.is_serving(): true until close() is called. Any thread. */
WEFT_API bool weft_server_is_serving(const weft_server_t *s);

/** The port of the first listening socket (TCP), or WEFT_EINVAL (NULL, or a
 *  Unix server). Any thread. */
WEFT_API int weft_server_port(const weft_server_t *s);

/** Number of distinct bound addresses (Server.sockets; with
 *  WEFT_SERVE_REUSEPORT each address has one socket per loop). Any thread. */
WEFT_API int weft_server_nsockets(const weft_server_t *s);

/** Address @p i (0 .. nsockets-1) the server listens on. @return 0,
 *  WEFT_EINVAL. Any thread. */
WEFT_API int weft_server_sockname(const weft_server_t *s, int i, struct sockaddr_storage *out, socklen_t *len);

/**
 * Limit the connections open at once to @p max (SIZE_MAX: no limit, the
 * default). At the limit the server stops accepting: new connections wait in
 * the kernel's listen backlog (and are refused or time out when it is full)
 * until a connection ends. Lowering the limit below the open count closes
 * nothing. Any thread. @return 0; WEFT_EINVAL (NULL server, @p max == 0).
 */
WEFT_API int weft_server_set_connection_limit(weft_server_t *s, size_t max);

/** Connections accepted and not yet ended (handler still running). Any thread. */
WEFT_API size_t weft_server_connections(const weft_server_t *s);

/** Counters of one serving loop. */
typedef struct weft_server_loop_stats {
    weft_loop_t *loop;       /**< the serving loop (borrowed) */
    size_t open;             /**< connections of this server open on it now */
    uint64_t accepted;       /**< connections placed on it since the start */
} weft_server_loop_stats_t;

/** Number of serving loops. Any thread. */
WEFT_API int weft_server_nloops(const weft_server_t *s);

/** Counters of serving loop @p i (0 .. nloops-1). @return 0, WEFT_EINVAL. Any thread. */
WEFT_API int weft_server_loop_stats(const weft_server_t *s, int i, weft_server_loop_stats_t *out);

/**
 * Drop the caller's server: close() it if still serving and release it. The
 * memory goes when the last handler has ended, so it is safe while
 * connections are still open (they run on). Do not use @p s afterwards. NULL
 * is ignored. Any thread.
 */
WEFT_API void weft_server_free(weft_server_t *s);

/* ---- name resolution ----------------------------------------------------------- */

struct addrinfo;   /* <netdb.h> hides it in strict ISO C modes; pointers need only the tag */

/**
 * loop.getaddrinfo(): getaddrinfo(3) run on libuv's thread pool while the
 * calling task waits (the loop keeps running). Awaiting; cancellable (the
 * lookup then finishes in the background and its result is discarded).
 * Free *res with weft_freeaddrinfo.
 * @return 0; WEFT_ERESOLVE (message: the reason); WEFT_ENOMEM; WEFT_ECANCELED;
 * WEFT_EINVAL; WEFT_ENOTCORO.
 */
WEFT_API int weft_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res);

/** Free a weft_getaddrinfo result. NULL is ignored. Any thread. */
WEFT_API void weft_freeaddrinfo(struct addrinfo *res);

/**
 * Format an address for people: "127.0.0.1", "::1", or the Unix path
 * ("" when unnamed). *port receives the port (0 for Unix); @p port may be
 * NULL. @return 0, WEFT_EINVAL (unknown family, or @p cap too small). Any thread.
 */
WEFT_API int weft_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap, int *port);

#ifdef __cplusplus
}
#endif
#endif
