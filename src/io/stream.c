/* Streams: asyncio's StreamReader / StreamWriter on one libuv stream handle
 * (uv_tcp_t or uv_pipe_t), owned by one loop.
 *
 * A connection (conn_t) holds the handle, the reader and the writer. Its
 * memory has three owners: the handle (until its close callback), the reader
 * and the writer (until released); the last one frees it.
 *
 * Reading: libuv reads into the connection's own buffer as data arrives
 * (uv_read_start's alloc callback hands out the buffer's free tail, which
 * grows from 8 KiB to 64 KiB chunks for bulk transfers). A reader that needs
 * more data suspends (WEFT__W_OTHER) and the read callback wakes it; it then
 * copies out of the buffer. Nothing is consumed before the task resumes, so a
 * cancelled read loses no byte. Flow control as asyncio: reading stops when
 * more than 2 x limit bytes are buffered and no task waits for data, and
 * resumes once a read brings the buffer down to the limit.
 *
 * Writing: write() first tries uv_try_write (no copy, no callback: the common
 * case for small messages); what the socket does not take goes to the pending
 * buffer, which is handed to libuv as one uv_write (the two buffers swap, so
 * writes made while one is in flight batch up into the next). drain() waits
 * while the writer is "paused": set when the unsent bytes exceed the high
 * mark, cleared when a completed write brings them to the low mark.
 *
 * Closing: close() stops reading, lets the pending bytes go out, then
 * uv_close()s the handle. abort() closes at once (TCP: with RST). The close
 * callback wakes every waiter, so no task is left waiting on a dead socket. */
#include "core/task.h"
#include "io/io.h"
#include "io/xport.h"
#include "weft/stream.h"
#include "weft/tls.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/un.h>
#include <unistd.h>

struct weft_reader {
    char tag;
};
struct weft_writer {
    char tag;
};

enum { K_TCP = 1, K_PIPE = 2 };

#define RCHUNK_MIN ((size_t)8 * 1024)
#define RCHUNK_MAX ((size_t)64 * 1024)
#define RBUF_KEEP ((size_t)256 * 1024)   /* an empty read buffer above this is freed */
#define WBUF_KEEP ((size_t)1024 * 1024)  /* a sent write buffer above this is freed */

struct conn;

/* A task waiting on a connection; lives on the task's stack. */
typedef struct wait_rec {
    struct wait_rec *next, *prev;
    struct wlist *list;     /* the list it is linked in, or NULL */
    weft__task_t *task;
    struct conn *c;
    int status;
    bool fired;             /* woken by the event it waited for */
    bool cancelled;         /* ended by its cancel function */
} wait_rec_t;

typedef struct wlist {
    wait_rec_t *head, *tail;
} wlist_t;

typedef struct conn {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    weft_loop_t *loop;
    struct weft_reader reader;
    struct weft_writer writer;
    uint8_t kind;
    uint8_t reader_rel, writer_rel;
    uint8_t reading;        /* uv_read_start active */
    uint8_t rpaused;        /* reading stopped by flow control */
    uint8_t eof;            /* nothing more will arrive */
    uint8_t closing;        /* close, abort or release asked for */
    uint8_t close_started;  /* uv_close called */
    uint8_t closed;         /* the close callback ran */
    uint8_t inflight;       /* wreq is pending */
    uint8_t eof_req, eof_sent;
    uint8_t wpaused;
    uint8_t draining;       /* its server shuts down: an idle read returns WEFT_ESHUTDOWN */
    uint8_t req_open;       /* bytes consumed since the last write: a request is being read */
    int refs;               /* handle + reader + writer */
    int rerr, werr;
    size_t limit;
    char *rbuf;
    size_t rstart, rend, rcap, rchunk, rgiven;
    char *pbuf;             /* pending: accepted by write(), not yet given to libuv */
    size_t plen, pcap;
    char *ibuf;             /* in flight with wreq */
    size_t icap;
    size_t high, low;
    wait_rec_t *read_wait;
    wait_rec_t *conn_wait;
    wlist_t drainq, closeq;
    weft_extra_info_t info;
    const weft__xport_ops_t *xops;  /* transport (TLS) between the socket and the halves, or NULL */
    void *xctx;
    char *xmsg;             /* the transport's last error text, kept when it is gone */
} conn_t;

static conn_t *rconn(const weft_reader_t *r) { return WEFT__CONTAINER(r, conn_t, reader); }
static conn_t *wconn(const weft_writer_t *w) { return WEFT__CONTAINER(w, conn_t, writer); }

/* ---- process-wide setup ------------------------------------------------------ */

static uv_once_t global_once = UV_ONCE_INIT;

static void global_init(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

void weft__stream_global_init(void) { uv_once(&global_once, global_init); }

/* ---- wait lists -------------------------------------------------------------- */

static void wl_push(wlist_t *q, wait_rec_t *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->list = q;
}

static void wl_unlink(wait_rec_t *w)
{
    wlist_t *q = w->list;
    if (!q)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->list = NULL;
}

/* Wake every waiter of @q with @status. */
static void wl_wake_all(wlist_t *q, int status)
{
    wait_rec_t *w;
    while ((w = q->head)) {
        wl_unlink(w);
        w->fired = true;
        w->status = status;
        weft__task_wake(w->task, status);
    }
}

static bool wl_cancel(weft__task_t *t, const char *msg)
{
    wait_rec_t *w = t->wait_obj;
    wl_unlink(w);
    w->cancelled = true;
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

/* Suspend @t on @q until woken (its status) or, if @cancellable, cancelled. */
static int wl_wait(conn_t *c, wlist_t *q, weft__task_t *t, bool cancellable)
{
    wait_rec_t w = { .task = t, .c = c };
    wl_push(q, &w);
    int rc = weft__task_suspend(t, WEFT__W_OTHER, cancellable ? wl_cancel : NULL, &w);
    wl_unlink(&w);
    if (rc < 0)
        return rc;
    return w.fired ? w.status : rc;
}

/* ---- checks ------------------------------------------------------------------ */

static int check_loop(const conn_t *c)
{
    return weft__thread()->running == c->loop ? 0 : WEFT_EWRONGLOOP;
}

/* The current task, which must run on @c's loop. */
static int check_task(const conn_t *c, weft__task_t **out) { return weft__task_current_on(c->loop, out); }

static const char *xmsg(const conn_t *c)
{
    return c->xops ? c->xops->errmsg(c->xctx) : c->xmsg;
}

/* An error about to be returned to the user: attach the transport's reason
 * (e.g. OpenSSL's) as the task's error message. */
static int conn_err(const conn_t *c, int code)
{
    const char *m;
    if (code < 0 && code != WEFT_ECANCELED && (m = xmsg(c)) != NULL)
        return weft_raise(code, "%s", m);
    return code;
}

/* ---- life ---------------------------------------------------------------------- */

static void set_limits(conn_t *c, size_t high, size_t low)
{
    if (!high)
        high = low ? 4 * low : WEFT_STREAM_DEFAULT_HIGH;
    if (!low)
        low = high / 4;
    c->high = high;
    c->low = low;
}

static conn_t *conn_new(weft_loop_t *loop, int kind, const weft_stream_opts_t *o)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->kind = (uint8_t)kind;
    c->refs = 3;
    c->limit = o && o->limit ? o->limit : WEFT_STREAM_DEFAULT_LIMIT;
    set_limits(c, o ? o->write_high : 0, o ? o->write_low : 0);
    c->rchunk = RCHUNK_MIN;
    c->creq.data = c;
    c->wreq.data = c;
    c->sreq.data = c;
    c->info.fd = -1;
    return c;
}

static void conn_free(conn_t *c)
{
    free(c->xmsg);
    free(c->rbuf);
    free(c->pbuf);
    free(c->ibuf);
    free(c);
}

static void conn_unref(conn_t *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

static void wake_read(conn_t *c, int status)
{
    wait_rec_t *w = c->read_wait;
    if (w) {
        c->read_wait = NULL;
        w->fired = true;
        w->status = status;
        weft__task_wake(w->task, status);
    }
}

static void on_close(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (c->xops) {
        const char *m = c->xops->errmsg(c->xctx);
        if (m && !c->xmsg)
            c->xmsg = weft__strdup(m);
        c->xops->destroy(c->xctx);
        c->xops = NULL;
        c->xctx = NULL;
    }
    c->closed = 1;
    c->closing = 1;
    c->eof = 1;
    c->reading = 0;
    c->info.fd = -1;
    c->plen = 0;
    wake_read(c, 0);
    if (c->drainq.head)
        wl_wake_all(&c->drainq, c->werr ? c->werr : UV_EPIPE);
    wl_wake_all(&c->closeq, 0);
    conn_unref(c);
}

static void start_close(conn_t *c)
{
    if (c->close_started)
        return;
    c->close_started = 1;
    uv_close(&c->u.h, on_close);
}

/* Stop reading for good: the reader sees end of stream after what is buffered. */
static void end_reading(conn_t *c)
{
    if (c->reading && !c->close_started)
        uv_read_stop(&c->u.s);
    c->reading = 0;
    c->rpaused = 0;
    c->eof = 1;
    wake_read(c, 0);
}

/* Close now, dropping unsent data. @reset: TCP RST when possible. */
static void close_now(conn_t *c, bool reset)
{
    if (c->close_started)
        return;
    c->closing = 1;
    end_reading(c);
    c->plen = 0;
    if (reset && c->kind == K_TCP && !c->eof_sent) {
        c->close_started = 1;
        if (uv_tcp_close_reset(&c->u.tcp, on_close) == 0)
            return;
        c->close_started = 0;
    }
    start_close(c);
}

/* Throw away a connection nobody was given (failed open, cancelled connect):
 * only the handle's reference is left; the close callback frees it. */
static void conn_discard(conn_t *c)
{
    c->reader_rel = c->writer_rel = 1;
    c->refs = 1;
    close_now(c, false);
}

static void fill_info(conn_t *c)
{
    uv_os_fd_t fd;
    if (uv_fileno(&c->u.h, &fd) < 0)
        return;
    c->info.fd = fd;
    socklen_t len = sizeof c->info.sockname;
    if (getsockname(fd, (struct sockaddr *)&c->info.sockname, &len) == 0)
        c->info.sockname_len = len;
    len = sizeof c->info.peername;
    if (getpeername(fd, (struct sockaddr *)&c->info.peername, &len) == 0)
        c->info.peername_len = len;
    c->info.family = c->kind == K_PIPE ? AF_UNIX : c->info.sockname.ss_family;
}

static void tcp_options(conn_t *c, const weft_stream_opts_t *o)
{
    if (!o || o->nodelay >= 0)
        uv_tcp_nodelay(&c->u.tcp, 1);
    if (o && o->keepalive > 0)
        uv_tcp_keepalive(&c->u.tcp, 1, (unsigned int)o->keepalive);
}

/* ---- reading ------------------------------------------------------------------ */

static size_t rlen(const conn_t *c) { return c->rend - c->rstart; }

/* Make room for @want more bytes at the buffer's tail. */
static int rb_reserve(conn_t *c, size_t want)
{
    size_t used = c->rend - c->rstart;
    if (c->rcap - c->rend >= want)
        return 0;
    if (c->rstart) {
        memmove(c->rbuf, c->rbuf + c->rstart, used);
        c->rstart = 0;
        c->rend = used;
        if (c->rcap - used >= want)
            return 0;
    }
    size_t cap = c->rcap ? c->rcap : RCHUNK_MIN;
    while (cap - used < want) {
        if (cap > SIZE_MAX / 2)
            return WEFT_ENOMEM;
        cap *= 2;
    }
    char *nb = realloc(c->rbuf, cap);
    if (!nb)
        return WEFT_ENOMEM;
    c->rbuf = nb;
    c->rcap = cap;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    if (c->xops) {   /* the transport decodes socket bytes into the read buffer */
        buf->base = c->xops->rbuf(c->xctx, &buf->len);
        return;
    }
    if (c->rstart == c->rend)
        c->rstart = c->rend = 0;
    if (rb_reserve(c, c->rchunk) < 0) {
        buf->base = NULL;
        buf->len = 0;   /* libuv reports UV_ENOBUFS */
        return;
    }
    /* at most one chunk per read, so flow control stops reading within a chunk of its mark */
    size_t room = c->rcap - c->rend;
    buf->base = c->rbuf + c->rend;
    buf->len = room < c->rchunk ? room : c->rchunk;
    c->rgiven = buf->len;
}

static void stop_reading(conn_t *c)
{
    if (c->reading) {
        uv_read_stop(&c->u.s);
        c->reading = 0;
    }
}

/* @n new bytes at the buffer's tail: wake the reader, or pause reading. */
static void arrived(conn_t *c, size_t n)
{
    c->rend += n;
    if (c->read_wait) {
        wake_read(c, 0);
    } else if (rlen(c) > 2 * c->limit && c->reading) {
        stop_reading(c);
        c->rpaused = 1;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread > 0) {
        if (c->xops) {
            c->xops->input(c->xctx, buf->base, (size_t)nread);
            return;
        }
        if ((size_t)nread == c->rgiven && c->rchunk < RCHUNK_MAX)
            c->rchunk *= 2;
        arrived(c, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    /* end of stream or error: libuv stopped reading itself, except for ENOBUFS */
    if (c->reading)
        uv_read_stop(s);
    c->reading = 0;
    if (c->xops && !c->eof)
        nread = c->xops->input_end(c->xctx, (int)nread);
    c->eof = 1;
    if (nread != UV_EOF && !c->rerr)
        c->rerr = nread == UV_ENOBUFS ? WEFT_ENOMEM : (int)nread;
    wake_read(c, 0);
}

/* (re)start reading; a failure ends the stream with that error. */
static void read_on(conn_t *c)
{
    c->rpaused = 0;
    if (c->reading || c->eof || c->closing)
        return;
    int rc = uv_read_start(&c->u.s, on_alloc, on_read);
    if (rc < 0) {
        c->eof = 1;
        if (!c->rerr)
            c->rerr = rc;
        return;
    }
    c->reading = 1;
}

static void consume(conn_t *c, size_t n)
{
    if (n)
        c->req_open = 1;
    c->rstart += n;
    if (c->rstart == c->rend) {
        c->rstart = c->rend = 0;
        if (c->rcap > RBUF_KEEP && c->rcap > 2 * c->limit) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
    }
    if (c->rpaused && rlen(c) <= c->limit)
        read_on(c);
}

static bool read_cancel(weft__task_t *t, const char *msg)
{
    wait_rec_t *w = t->wait_obj;
    if (w->c->read_wait == w)
        w->c->read_wait = NULL;
    w->cancelled = true;
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

/* Idle: nothing buffered and nothing read since the handler last wrote, so
 * the handler waits for the start of a new request. */
static bool idle(const conn_t *c) { return !c->req_open && rlen(c) == 0; }

/* Wait until more data, end of stream or an error arrives. */
static int wait_data(conn_t *c, weft__task_t *t)
{
    if (c->read_wait)
        return WEFT_EINVALSTATE;   /* asyncio: "already waiting for incoming data" */
    if (c->draining && idle(c))
        return WEFT_ESHUTDOWN;
    read_on(c);                    /* resumes a reader paused by flow control */
    if (c->eof)
        return 0;
    wait_rec_t w = { .task = t, .c = c };
    c->read_wait = &w;
    int rc = weft__task_suspend(t, WEFT__W_OTHER, read_cancel, &w);
    if (c->read_wait == &w)
        c->read_wait = NULL;
    return rc;
}

static int reader_begin(weft_reader_t *r, weft__task_t **t)
{
    if (!r)
        return WEFT_EINVAL;
    return check_task(rconn(r), t);
}

int weft_reader_read(weft_reader_t *r, void *buf, size_t n, size_t *nread)
{
    if (nread)
        *nread = 0;
    weft__task_t *t;
    int rc = reader_begin(r, &t);
    if (rc < 0)
        return rc;
    if (!nread || (!buf && n))
        return WEFT_EINVAL;
    conn_t *c = rconn(r);
    if (!n)
        return 0;
    for (;;) {
        size_t have = rlen(c);
        if (have) {
            size_t k = have < n ? have : n;
            memcpy(buf, c->rbuf + c->rstart, k);
            consume(c, k);
            *nread = k;
            return 0;
        }
        if (c->eof)
            return conn_err(c, c->rerr);
        if ((rc = wait_data(c, t)) < 0)
            return rc;
    }
}

int weft_reader_read_all(weft_reader_t *r, size_t max, void **data, size_t *len)
{
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    weft__task_t *t;
    int rc = reader_begin(r, &t);
    if (rc < 0)
        return rc;
    if (!data || !len)
        return WEFT_EINVAL;
    conn_t *c = rconn(r);
    for (;;) {
        size_t have = rlen(c);
        if (have > max)
            return WEFT_ELIMIT;
        if (c->eof) {
            if (c->rerr)
                return conn_err(c, c->rerr);
            char *d = malloc(have + 1);
            if (!d)
                return WEFT_ENOMEM;
            if (have)
                memcpy(d, c->rbuf + c->rstart, have);
            d[have] = '\0';
            consume(c, have);
            *data = d;
            *len = have;
            return 0;
        }
        if ((rc = wait_data(c, t)) < 0)
            return rc;
    }
}

/* End of stream with @have bytes short of what was asked: hand them over. */
static int take_partial(conn_t *c, void *buf, size_t *len)
{
    size_t k = rlen(c);
    if (k)
        memcpy(buf, c->rbuf + c->rstart, k);
    consume(c, k);
    if (len)
        *len = k;
    return c->rerr ? conn_err(c, c->rerr) : WEFT_EINCOMPLETE;
}

int weft_reader_readexactly(weft_reader_t *r, void *buf, size_t n, size_t *nread)
{
    if (nread)
        *nread = 0;
    weft__task_t *t;
    int rc = reader_begin(r, &t);
    if (rc < 0)
        return rc;
    if (!buf && n)
        return WEFT_EINVAL;
    conn_t *c = rconn(r);
    for (;;) {
        if (rlen(c) >= n) {
            if (n)
                memcpy(buf, c->rbuf + c->rstart, n);
            consume(c, n);
            if (nread)
                *nread = n;
            return 0;
        }
        if (c->eof)
            return take_partial(c, buf, nread);
        if ((rc = wait_data(c, t)) < 0)
            return rc;
    }
}

int weft_reader_readuntil(weft_reader_t *r, const void *sep, size_t seplen, void *buf, size_t cap, size_t *len)
{
    if (len)
        *len = 0;
    weft__task_t *t;
    int rc = reader_begin(r, &t);
    if (rc < 0)
        return rc;
    if (!sep || !seplen || !buf || !len || cap < seplen)
        return WEFT_EINVAL;
    conn_t *c = rconn(r);
    size_t lim = c->limit < cap ? c->limit : cap;
    size_t from = 0;   /* where the separator may start: earlier bytes were searched */
    for (;;) {
        size_t have = rlen(c);
        if (have >= seplen) {
            const char *base = c->rbuf + c->rstart;
            const char *hit = memmem(base + from, have - from, sep, seplen);
            if (hit) {
                size_t line = (size_t)(hit - base) + seplen;
                if (line > lim) {   /* asyncio: "Separator is found, but chunk is longer than limit" */
                    *len = line;
                    return WEFT_ELIMIT;
                }
                memcpy(buf, base, line);
                consume(c, line);
                *len = line;
                return 0;
            }
            from = have - seplen + 1;
        }
        if (have > lim) {   /* asyncio: "Separator is not found, and chunk exceed the limit" */
            *len = have;
            return WEFT_ELIMIT;
        }
        /* have <= lim bytes and no separator: at the end of the stream they
         * fit and are the last line; exactly lim bytes otherwise mean a line
         * longer than lim, but only the next byte (or the end) tells which,
         * so it is awaited like any other data */
        if (c->eof)
            return take_partial(c, buf, len);
        if ((rc = wait_data(c, t)) < 0)
            return rc;
    }
}

int weft_reader_readline(weft_reader_t *r, void *buf, size_t cap, size_t *len)
{
    int rc = weft_reader_readuntil(r, "\n", 1, buf, cap, len);
    return rc == WEFT_EINCOMPLETE ? 0 : rc;
}

bool weft_reader_at_eof(const weft_reader_t *r)
{
    if (!r)
        return false;
    const conn_t *c = rconn(r);
    return c->eof && !rlen(c);
}

size_t weft_reader_buffered(const weft_reader_t *r) { return r ? rlen(rconn(r)) : 0; }

int weft_reader_exception(const weft_reader_t *r) { return r ? rconn(r)->rerr : WEFT_EINVAL; }

void weft_reader_release(weft_reader_t *r)
{
    if (!r)
        return;
    conn_t *c = rconn(r);
    if (c->reader_rel)
        return;
    if (check_loop(c) < 0) {
        weft__report(NULL, "weft_reader_release called off the connection's loop (ignored)", WEFT_EWRONGLOOP,
                     NULL, NULL);
        return;
    }
    c->reader_rel = 1;
    conn_unref(c);
}

/* ---- writing ------------------------------------------------------------------ */

static size_t wbuffered(const conn_t *c)
{
    return c->plen + (c->closed ? 0 : uv_stream_get_write_queue_size(&c->u.s));
}

static void set_werr(conn_t *c, int err)
{
    if (!c->werr)
        c->werr = err;
    c->plen = 0;
    c->wpaused = 0;
    wl_wake_all(&c->drainq, c->werr);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0 && status != UV_ECANCELED && !c->werr)
        set_werr(c, status);
}

static void submit(conn_t *c);

/* Everything written is out: carry out a pending close or write_eof. */
static void flushed(conn_t *c)
{
    if (c->inflight || c->plen || c->close_started)
        return;
    if (c->closing) {
        start_close(c);
    } else if (c->eof_req && !c->eof_sent && !c->werr) {
        c->eof_sent = 1;
        int rc = uv_shutdown(&c->sreq, &c->u.s, on_shutdown);
        if (rc < 0)
            set_werr(c, rc);
    }
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->inflight = 0;
    if (c->icap > WBUF_KEEP) {
        free(c->ibuf);
        c->ibuf = NULL;
        c->icap = 0;
    }
    if (status < 0)
        set_werr(c, status == UV_ECANCELED ? UV_EPIPE : status);
    else if (c->plen && !c->close_started && !c->werr)
        submit(c);
    if (c->wpaused && wbuffered(c) <= c->low) {
        c->wpaused = 0;
        wl_wake_all(&c->drainq, 0);
    }
    flushed(c);
}

/* Hand the pending bytes to libuv (nothing in flight). */
static void submit(conn_t *c)
{
    char *b = c->ibuf;
    size_t bc = c->icap;
    c->ibuf = c->pbuf;
    c->icap = c->pcap;
    c->pbuf = b;
    c->pcap = bc;
    uv_buf_t ub = { .base = c->ibuf, .len = c->plen };
    c->plen = 0;
    c->inflight = 1;
    int rc = uv_write(&c->wreq, &c->u.s, &ub, 1, on_write);
    if (rc < 0) {
        c->inflight = 0;
        set_werr(c, rc);
    }
}

static int pbuf_append(conn_t *c, const char *d, size_t n)
{
    if (c->pcap - c->plen < n) {
        size_t cap = c->pcap ? c->pcap : 4096;
        while (cap - c->plen < n) {
            if (cap > SIZE_MAX / 2)
                return WEFT_ENOMEM;
            cap *= 2;
        }
        char *nb = realloc(c->pbuf, cap);
        if (!nb)
            return WEFT_ENOMEM;
        c->pbuf = nb;
        c->pcap = cap;
    }
    memcpy(c->pbuf + c->plen, d, n);
    c->plen += n;
    return 0;
}

static int writer_check(weft_writer_t *w)
{
    if (!w)
        return WEFT_EINVAL;
    return check_loop(wconn(w));
}

/* Send @len bytes on the socket, after whatever is still buffered. */
static int raw_write(conn_t *c, const char *p, size_t len)
{
    int rc;
    if (c->werr)
        return c->werr;
    if (!len || c->close_started)
        return 0;
    if (!c->inflight && !c->plen) {
        uv_buf_t b = { .base = (char *)(uintptr_t)p, .len = len };
        int n = uv_try_write(&c->u.s, &b, 1);
        if (n >= 0) {
            if ((size_t)n == len)
                return 0;
            p += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            set_werr(c, n);
            return n;
        }
    }
    if ((rc = pbuf_append(c, p, len)) < 0)
        return rc;
    if (!c->inflight)
        submit(c);
    return c->werr;
}

int weft_writer_write(weft_writer_t *w, const void *data, size_t len)
{
    int rc = writer_check(w);
    if (rc < 0)
        return rc;
    if (!data && len)
        return WEFT_EINVAL;
    conn_t *c = wconn(w);
    if (c->werr)
        return conn_err(c, c->werr);
    if (c->closing || c->eof_req)
        return UV_EPIPE;
    if (!len)
        return 0;
    c->req_open = 0;   /* a response: the next read starts a new request */
    rc = c->xops ? c->xops->write(c->xctx, data, len) : raw_write(c, data, len);
    if (rc < 0 || c->werr)
        return conn_err(c, rc < 0 ? rc : c->werr);
    if (wbuffered(c) > c->high)
        c->wpaused = 1;
    return 0;
}

int weft_writer_drain(weft_writer_t *w)
{
    if (!w)
        return WEFT_EINVAL;
    conn_t *c = wconn(w);
    weft__task_t *t;
    int rc = check_task(c, &t);
    if (rc < 0)
        return rc;
    if (c->werr)
        return conn_err(c, c->werr);
    if (c->rerr)
        return conn_err(c, c->rerr);
    if (!c->wpaused)
        return 0;
    return conn_err(c, wl_wait(c, &c->drainq, t, true));
}

int weft_writer_write_eof(weft_writer_t *w)
{
    int rc = writer_check(w);
    if (rc < 0)
        return rc;
    conn_t *c = wconn(w);
    if (c->werr)
        return c->werr;
    if (c->closing)
        return UV_EPIPE;
    if (c->eof_req)
        return 0;
    if (c->xops)
        c->xops->shutdown(c->xctx, false);
    c->eof_req = 1;
    flushed(c);
    return c->werr;
}

bool weft_writer_can_write_eof(const weft_writer_t *w) { return w != NULL; }

int weft_writer_close(weft_writer_t *w)
{
    int rc = writer_check(w);
    if (rc < 0)
        return rc;
    conn_t *c = wconn(w);
    if (c->closing)
        return 0;
    if (c->xops && !c->eof_req)
        c->xops->shutdown(c->xctx, true);
    c->closing = 1;
    end_reading(c);
    flushed(c);
    return 0;
}

int weft_writer_abort(weft_writer_t *w)
{
    int rc = writer_check(w);
    if (rc < 0)
        return rc;
    close_now(wconn(w), true);
    return 0;
}

int weft_writer_wait_closed(weft_writer_t *w)
{
    if (!w)
        return WEFT_EINVAL;
    conn_t *c = wconn(w);
    weft__task_t *t;
    int rc = check_task(c, &t);
    if (rc < 0)
        return rc;
    if (c->closed)
        return 0;
    return wl_wait(c, &c->closeq, t, true);
}

bool weft_writer_is_closing(const weft_writer_t *w) { return w && wconn(w)->closing; }

int weft_writer_get_extra_info(const weft_writer_t *w, weft_extra_info_t *out)
{
    if (!w || !out)
        return WEFT_EINVAL;
    *out = wconn(w)->info;
    return 0;
}

size_t weft_writer_get_write_buffer_size(const weft_writer_t *w) { return w ? wbuffered(wconn(w)) : 0; }

int weft_writer_set_write_buffer_limits(weft_writer_t *w, size_t high, size_t low)
{
    int rc = writer_check(w);
    if (rc < 0)
        return rc;
    conn_t *c = wconn(w);
    size_t h = high ? high : (low ? 4 * low : WEFT_STREAM_DEFAULT_HIGH);
    size_t l = low ? low : h / 4;
    if (l > h)
        return WEFT_EINVAL;
    set_limits(c, h, l);
    size_t b = wbuffered(c);
    if (b > c->high && !c->werr && !c->closed) {
        c->wpaused = 1;
    } else if (c->wpaused && b <= c->low) {
        c->wpaused = 0;
        wl_wake_all(&c->drainq, 0);
    }
    return 0;
}

weft_reader_t *weft_writer_reader(weft_writer_t *w) { return w ? &wconn(w)->reader : NULL; }

void weft_writer_release(weft_writer_t *w)
{
    if (!w)
        return;
    conn_t *c = wconn(w);
    if (c->writer_rel)
        return;
    if (check_loop(c) < 0) {
        weft__report(NULL, "weft_writer_release called off the connection's loop (ignored)", WEFT_EWRONGLOOP,
                     NULL, NULL);
        return;
    }
    c->writer_rel = 1;
    if (!c->closing)
        weft_writer_close(w);
    conn_unref(c);
}

/* ---- connecting ----------------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    wait_rec_t *w = c->conn_wait;
    if (!w)
        return;   /* the waiter was cancelled: the connection is being discarded */
    c->conn_wait = NULL;
    w->fired = true;
    w->status = status;
    weft__task_wake(w->task, 0);
}

static bool connect_cancel(weft__task_t *t, const char *msg)
{
    wait_rec_t *w = t->wait_obj;
    conn_t *c = w->c;
    c->conn_wait = NULL;
    w->cancelled = true;
    conn_discard(c);   /* on_connect then sees UV_ECANCELED and nobody waiting */
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

/* Wait for the connect request; on any failure the connection is discarded. */
static int await_connect(conn_t *c, weft__task_t *t)
{
    wait_rec_t w = { .task = t, .c = c };
    c->conn_wait = &w;
    int rc = weft__task_suspend(t, WEFT__W_OTHER, connect_cancel, &w);
    if (w.cancelled)
        return WEFT_ECANCELED;   /* @c belongs to its close callback now */
    if (c->conn_wait == &w)
        c->conn_wait = NULL;
    if (rc == 0)
        rc = w.status;
    if (rc < 0) {
        conn_discard(c);
        return rc;
    }
    return 0;
}

static void hand_out(conn_t *c, weft_reader_t **r, weft_writer_t **w)
{
    if (!c->info.family)
        fill_info(c);
    read_on(c);
    *r = &c->reader;
    *w = &c->writer;
}

/* Let go of a connection whose halves were never given out (or are taken
 * back): close it at once; the memory goes with the handle. */
static void conn_drop(conn_t *c)
{
    c->reader_rel = c->writer_rel = 1;
    close_now(c, false);
    c->refs -= 2;
    if (c->refs == 0)
        conn_free(c);
}

/* A connection just made: put TLS on it if asked, hand it out, and do the
 * handshake. On failure nothing is handed out. */
static int open_done(conn_t *c, const weft_stream_opts_t *o, const char *host, int port, weft_reader_t **r,
                     weft_writer_t **w)
{
    fill_info(c);
    if (o && o->tls) {
        int rc = weft__tls_attach(c, o, host, port);
        if (rc < 0) {
            conn_discard(c);
            return rc;
        }
    }
    weft_reader_t *rr;
    weft_writer_t *ww;
    hand_out(c, &rr, &ww);
    if (c->xops) {
        int rc = c->xops->handshake(c->xctx);
        if (rc < 0) {
            conn_drop(c);
            return rc;
        }
    }
    *r = rr;
    *w = ww;
    return 0;
}

static int tcp_connect_one(weft__task_t *t, const struct sockaddr *sa, const struct sockaddr *local,
                           const weft_stream_opts_t *o, conn_t **out)
{
    weft_loop_t *loop = t->fut.loop;
    conn_t *c = conn_new(loop, K_TCP, o);
    if (!c)
        return WEFT_ENOMEM;
    int rc = uv_tcp_init_ex(weft_loop_uv(loop), &c->u.tcp, sa->sa_family);
    if (rc < 0) {
        conn_free(c);
        return rc;
    }
    c->u.h.data = c;
    tcp_options(c, o);
    if (local && (rc = uv_tcp_bind(&c->u.tcp, local, 0)) < 0) {
        conn_discard(c);
        return rc;
    }
    if ((rc = uv_tcp_connect(&c->creq, &c->u.tcp, sa, on_connect)) < 0) {
        conn_discard(c);
        return rc;
    }
    if ((rc = await_connect(c, t)) < 0)
        return rc;
    *out = c;
    return 0;
}

int weft_open_connection(const char *host, int port, const weft_stream_opts_t *opts, weft_reader_t **reader,
                         weft_writer_t **writer)
{
    if (reader)
        *reader = NULL;
    if (writer)
        *writer = NULL;
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (!host || !*host || !reader || !writer || port < 0 || port > 65535)
        return WEFT_EINVAL;
    if (opts && opts->tls && weft_tls_is_server(opts->tls))
        return WEFT_EINVAL;   /* a server context cannot connect */
    weft__stream_global_init();
    int family = opts ? opts->family : AF_UNSPEC;
    struct sockaddr_storage *addrs = NULL, *locals = NULL;
    size_t n = 0, nlocal = 0;
    int rc = weft__resolve(host, port, family, false, &addrs, &n);
    if (rc < 0)
        return rc;
    if (opts && opts->local_host) {
        if ((rc = weft__resolve(opts->local_host, opts->local_port, family, true, &locals, &nlocal)) < 0) {
            free(addrs);
            return rc;
        }
    }
    int first = 0;
    conn_t *c = NULL;
    for (size_t i = 0; i < n && !c; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&addrs[i];
        const struct sockaddr *local = NULL;
        if (locals) {
            for (size_t j = 0; j < nlocal && !local; j++)
                if (locals[j].ss_family == sa->sa_family)
                    local = (const struct sockaddr *)&locals[j];
            if (!local) {
                if (!first)
                    first = UV_EAFNOSUPPORT;
                continue;
            }
        }
        rc = tcp_connect_one(t, sa, local, opts, &c);
        if (rc == WEFT_ECANCELED) {
            first = rc;
            break;
        }
        if (rc < 0 && !first)
            first = rc;
    }
    free(addrs);
    free(locals);
    if (!c)
        return first ? first : UV_ECONNREFUSED;
    return open_done(c, opts, host, port, reader, writer);
}

int weft_open_unix_connection(const char *path, const weft_stream_opts_t *opts, weft_reader_t **reader,
                              weft_writer_t **writer)
{
    if (reader)
        *reader = NULL;
    if (writer)
        *writer = NULL;
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (!path || !*path || !reader || !writer || (opts && opts->tls && weft_tls_is_server(opts->tls)))
        return WEFT_EINVAL;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    weft__stream_global_init();
    conn_t *c = conn_new(t->fut.loop, K_PIPE, opts);
    if (!c)
        return WEFT_ENOMEM;
    int rc = uv_pipe_init(weft_loop_uv(t->fut.loop), &c->u.pipe, 0);
    if (rc < 0) {
        conn_free(c);
        return rc;
    }
    c->u.h.data = c;
    uv_pipe_connect(&c->creq, &c->u.pipe, path, on_connect);
    if ((rc = await_connect(c, t)) < 0)
        return rc;
    return open_done(c, opts, NULL, 0, reader, writer);
}

/* ---- for server.c ------------------------------------------------------------------ */

/* Wrap an accepted descriptor in a connection on @loop (this thread's). The
 * descriptor is closed on failure. */
int weft__stream_adopt(weft_loop_t *loop, int fd, bool is_unix, const weft_stream_opts_t *o, weft_reader_t **r,
                       weft_writer_t **w)
{
    conn_t *c = conn_new(loop, is_unix ? K_PIPE : K_TCP, o);
    if (!c) {
        close(fd);
        return WEFT_ENOMEM;
    }
    uv_loop_t *uv = weft_loop_uv(loop);
    int rc = is_unix ? uv_pipe_init(uv, &c->u.pipe, 0) : uv_tcp_init(uv, &c->u.tcp);
    if (rc < 0) {
        close(fd);
        conn_free(c);
        return rc;
    }
    c->u.h.data = c;
    rc = is_unix ? uv_pipe_open(&c->u.pipe, fd) : uv_tcp_open(&c->u.tcp, fd);
    if (rc < 0) {
        close(fd);
        conn_discard(c);
        return rc;
    }
    if (!is_unix)
        tcp_options(c, o);
    fill_info(c);
    if (o && o->tls && (rc = weft__tls_attach(c, o, NULL, 0)) < 0) {
        conn_discard(c);
        return rc;
    }
    hand_out(c, r, w);
    return 0;
}

/* The connection's server is shutting down gracefully: from now on a read
 * that would wait on an idle connection returns WEFT_ESHUTDOWN, and one
 * waiting there now is woken with it. Loop thread. */
void weft__stream_drain(weft_reader_t *r)
{
    conn_t *c = rconn(r);
    c->draining = 1;
    if (c->read_wait && idle(c))
        wake_read(c, WEFT_ESHUTDOWN);
}

/* Wait until the connection's transport is ready (a server's TLS handshake).
 * On failure the connection is already closed or closing. */
int weft__stream_handshake(weft_reader_t *r, weft_writer_t *w)
{
    (void)r;
    conn_t *c = wconn(w);
    return c->xops ? c->xops->handshake(c->xctx) : 0;
}

/* End a server connection from its handler's task: close (gracefully, or at
 * once if @abort_now), wait until the socket is closed, release both halves.
 * A cancellation during a graceful close turns it into an immediate one; the
 * task does not leave before the handle is gone. */
void weft__stream_finish(weft_reader_t *r, weft_writer_t *w, bool abort_now)
{
    conn_t *c = wconn(w);
    weft__task_t *t = weft__thread()->task;
    if (abort_now)
        close_now(c, false);
    else
        weft_writer_close(w);
    if (!c->closed && wl_wait(c, &c->closeq, t, true) < 0 && !c->closed) {
        close_now(c, false);
        while (!c->closed)
            wl_wait(c, &c->closeq, t, false);
    }
    weft_reader_release(r);
    weft_writer_release(w);
}

/* ---- services for a transport (io/xport.h) ------------------------------------------ */

struct conn *weft__conn_of(const weft_writer_t *w) { return w ? wconn(w) : NULL; }

weft_loop_t *weft__conn_loop(const conn_t *c) { return c->loop; }

int weft__conn_task(const conn_t *c, weft__task_t **t) { return check_task(c, t); }

int weft__conn_can_attach(const conn_t *c)
{
    return c->xops || c->closing || c->eof || c->eof_req || c->werr || c->rerr ? WEFT_EINVALSTATE : 0;
}

void weft__conn_attach(conn_t *c, const weft__xport_ops_t *ops, void *x)
{
    c->xops = ops;
    c->xctx = x;
}

void *weft__conn_xport(const conn_t *c, const weft__xport_ops_t *ops)
{
    return c && c->xops == ops ? c->xctx : NULL;
}

const char *weft__conn_xmsg(const conn_t *c) { return xmsg(c); }

const weft_extra_info_t *weft__conn_info(const conn_t *c) { return &c->info; }

char *weft__conn_rspace(conn_t *c, size_t want, size_t *room)
{
    if (c->rstart == c->rend)
        c->rstart = c->rend = 0;
    if (rb_reserve(c, want) < 0)
        return NULL;
    *room = c->rcap - c->rend;
    return c->rbuf + c->rend;
}

void weft__conn_rcommit(conn_t *c, size_t n)
{
    if (n)
        arrived(c, n);
}

void weft__conn_rclose(conn_t *c)
{
    if (!c->close_started)
        end_reading(c);
}

int weft__conn_rtake(conn_t *c, char **data, size_t *len)
{
    size_t n = rlen(c);
    *data = NULL;
    *len = n;
    if (!n)
        return 0;
    if (!(*data = malloc(n)))
        return WEFT_ENOMEM;
    memcpy(*data, c->rbuf + c->rstart, n);
    c->rstart = c->rend = 0;
    if (c->rpaused)
        read_on(c);
    return 0;
}

int weft__conn_send(conn_t *c, const char *data, size_t n) { return raw_write(c, data, n); }

void weft__conn_fail(conn_t *c, int err)
{
    if (!c->rerr)
        c->rerr = err;
    if (!c->werr)
        c->werr = err;
    c->wpaused = 0;
    wl_wake_all(&c->drainq, c->werr);
    close_now(c, false);
}

void weft__conn_abort(conn_t *c) { close_now(c, true); }

bool weft__conn_closed(const conn_t *c) { return c->closed; }

bool weft__conn_closing(const conn_t *c) { return c->closing; }
