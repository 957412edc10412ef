/* Datagram endpoints on uv_udp_t.
 *
 * Receiving: libuv receives into the endpoint's 64 KiB buffer; each datagram
 * is copied into a queue entry (with the sender's address) and the waiting
 * reader, if any, is woken; it copies out when it runs, so a cancelled
 * recvfrom takes nothing. When recv_queue datagrams are queued the endpoint
 * stops receiving until a reader takes one: the kernel's socket buffer holds
 * the rest (flow control instead of silent drops in user space).
 *
 * Sending: uv_udp_try_send first; a datagram the socket cannot take now is
 * copied into a uv_udp_send request (libuv keeps them in order). drain()
 * waits while more than write_high bytes are queued, until a quarter of it.
 *
 * Closing: uv_close; waiters are woken with WEFT_ECLOSED at once (they do not
 * touch the endpoint afterwards); the close callback frees everything. */
#include "core/task.h"
#include "io/io.h"
#include "weft/stream.h"
#include "weft/udp.h"

#include <netinet/in.h>


#define RBUF 65536

typedef struct dgram {
    struct dgram *next;
    int err;                 /* a receive error instead of a datagram */
    size_t len;
    struct sockaddr_storage from;
    socklen_t fromlen;
    char data[];
} dgram_t;

typedef struct uwait {
    struct uwait *next;
    weft__task_t *task;
    struct weft_udp *u;
    bool closed;             /* woken by close: the endpoint may be gone */
} uwait_t;

typedef struct sreq {
    uv_udp_send_t req;
    struct weft_udp *u;
    size_t len;
    char data[];
} sreq_t;

struct weft_udp {
    uv_udp_t h;
    weft_loop_t *loop;
    dgram_t *qh, *qt;
    size_t qn, qmax;
    bool reading, closing;
    uwait_t *rwait;          /* the one reader */
    uwait_t *dwait;          /* drain waiters */
    size_t sq_bytes, high, low;
    int serr;
    char rbuf[RBUF];
};

static int check_loop(const weft_udp_t *u)
{
    return weft__thread()->running == u->loop ? 0 : WEFT_EWRONGLOOP;
}

/* ---- receiving ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    weft_udp_t *u = h->data;
    buf->base = u->rbuf;
    buf->len = RBUF;
}

static void wake_reader(weft_udp_t *u, int status)
{
    uwait_t *w = u->rwait;
    if (w) {
        u->rwait = NULL;
        w->closed = status == WEFT_ECLOSED;
        weft__task_wake(w->task, status);
    }
}

static void recv_off(weft_udp_t *u)
{
    if (u->reading) {
        uv_udp_recv_stop(&u->h);
        u->reading = false;
    }
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags)
{
    (void)buf;
    (void)flags;   /* UV_UDP_PARTIAL cannot happen: the buffer holds the largest datagram */
    weft_udp_t *u = h->data;
    if (nread == 0 && !addr)
        return;   /* nothing more to read now */
    dgram_t *d = malloc(sizeof *d + (nread > 0 ? (size_t)nread : 0));
    if (!d)
        return;   /* dropped, as the kernel would */
    d->next = NULL;
    d->err = nread < 0 ? (int)nread : 0;
    d->len = nread > 0 ? (size_t)nread : 0;
    d->fromlen = 0;
    if (addr) {
        d->fromlen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        memcpy(&d->from, addr, d->fromlen);
    }
    if (d->len)
        memcpy(d->data, u->rbuf, d->len);
    if (u->qt)
        u->qt->next = d;
    else
        u->qh = d;
    u->qt = d;
    if (++u->qn >= u->qmax)
        recv_off(u);
    wake_reader(u, 0);
}

static int recv_on(weft_udp_t *u)
{
    if (u->reading || u->closing)
        return 0;
    int rc = uv_udp_recv_start(&u->h, on_alloc, on_recv);
    if (rc == 0)
        u->reading = true;
    return rc;
}

static bool recv_cancel(weft__task_t *t, const char *msg)
{
    uwait_t *w = t->wait_obj;
    if (w->u->rwait == w)
        w->u->rwait = NULL;
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

int weft_udp_recvfrom(weft_udp_t *u, void *buf, size_t cap, size_t *len, struct sockaddr_storage *from,
                      socklen_t *fromlen)
{
    if (len)
        *len = 0;
    if (!u || !len || (!buf && cap))
        return WEFT_EINVAL;
    weft__task_t *self;
    int crc = weft__task_current_on(u->loop, &self);
    if (crc < 0)
        return crc;
    if (u->closing)
        return WEFT_ECLOSED;
    while (!u->qh) {
        if (u->rwait)
            return WEFT_EINVALSTATE;
        int rc = recv_on(u);
        if (rc < 0)
            return rc;
        uwait_t w = { .task = self, .u = u };
        u->rwait = &w;
        rc = weft__task_suspend(w.task, WEFT__W_OTHER, recv_cancel, &w);
        if (w.closed)
            return WEFT_ECLOSED;   /* u may be gone */
        if (u->rwait == &w)
            u->rwait = NULL;
        if (rc < 0)
            return rc;
        if (u->closing)
            return WEFT_ECLOSED;
    }
    dgram_t *d = u->qh;
    u->qh = d->next;
    if (!u->qh)
        u->qt = NULL;
    u->qn--;
    if (u->qn < u->qmax)
        recv_on(u);
    int rc = d->err;
    if (!rc) {
        size_t k = d->len < cap ? d->len : cap;
        if (k)
            memcpy(buf, d->data, k);
        *len = d->len;
        if (d->len > cap)
            rc = -EMSGSIZE;
        if (from)
            memcpy(from, &d->from, d->fromlen);
        if (fromlen)
            *fromlen = d->fromlen;
    }
    free(d);
    return rc;
}

size_t weft_udp_queued(const weft_udp_t *u) { return u ? u->qn : 0; }

/* ---- sending ------------------------------------------------------------------------------ */

static void wake_drainers(weft_udp_t *u, int status)
{
    uwait_t *w;
    while ((w = u->dwait)) {
        u->dwait = w->next;
        w->closed = status == WEFT_ECLOSED;
        weft__task_wake(w->task, status);
    }
}

static void on_send(uv_udp_send_t *req, int status)
{
    sreq_t *s = req->data;
    weft_udp_t *u = s->u;
    u->sq_bytes -= s->len;
    if (status < 0 && status != UV_ECANCELED && !u->serr)
        u->serr = status;
    free(s);
    if (!u->closing && (u->serr || u->sq_bytes <= u->low))
        wake_drainers(u, u->serr);
}

int weft_udp_sendto(weft_udp_t *u, const void *data, size_t len, const struct sockaddr *addr)
{
    if (!u || (!data && len))
        return WEFT_EINVAL;
    int rc = check_loop(u);
    if (rc < 0)
        return rc;
    if (u->closing)
        return WEFT_ECLOSED;
    if (u->serr) {
        rc = u->serr;
        u->serr = 0;   /* reported once, as error_received */
        return rc;
    }
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned int)len);
    if (len > UINT32_MAX)
        return -EMSGSIZE;
    rc = uv_udp_try_send(&u->h, &b, 1, addr);
    if (rc >= 0)
        return 0;
    if (rc != UV_EAGAIN && rc != UV_ENOSYS)
        return rc;
    sreq_t *s = malloc(sizeof *s + len);
    if (!s)
        return WEFT_ENOMEM;
    s->u = u;
    s->len = len;
    s->req.data = s;
    memcpy(s->data, data, len);
    b = uv_buf_init(s->data, (unsigned int)len);
    if ((rc = uv_udp_send(&s->req, &u->h, &b, 1, addr, on_send)) < 0) {
        free(s);
        return rc;
    }
    u->sq_bytes += len;
    return 0;
}

static bool drain_cancel(weft__task_t *t, const char *msg)
{
    uwait_t *w = t->wait_obj;
    for (uwait_t **p = &w->u->dwait; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

int weft_udp_drain(weft_udp_t *u)
{
    if (!u)
        return WEFT_EINVAL;
    weft__task_t *self;
    int crc = weft__task_current_on(u->loop, &self);
    if (crc < 0)
        return crc;
    if (u->closing)
        return WEFT_ECLOSED;
    if (u->serr) {
        int rc = u->serr;
        u->serr = 0;
        return rc;
    }
    if (u->sq_bytes <= u->high)
        return 0;
    uwait_t w = { .task = self, .u = u, .next = u->dwait };
    u->dwait = &w;
    int rc = weft__task_suspend(w.task, WEFT__W_OTHER, drain_cancel, &w);
    return w.closed ? WEFT_ECLOSED : rc;
}

/* ---- life ------------------------------------------------------------------------------------ */

static void on_close(uv_handle_t *h)
{
    weft_udp_t *u = h->data;
    dgram_t *d;
    while ((d = u->qh)) {
        u->qh = d->next;
        free(d);
    }
    free(u);
}

void weft_udp_close(weft_udp_t *u)
{
    if (!u || u->closing)
        return;
    if (check_loop(u) < 0) {
        weft__report(NULL, "weft_udp_close called off the endpoint's loop (ignored)", WEFT_EWRONGLOOP, NULL, NULL);
        return;
    }
    u->closing = true;
    wake_reader(u, WEFT_ECLOSED);
    wake_drainers(u, WEFT_ECLOSED);
    uv_close((uv_handle_t *)&u->h, on_close);
}

static socklen_t sa_len(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int weft_create_datagram_endpoint(const char *local_host, int local_port, const char *remote_host,
                                  int remote_port, const weft_udp_opts_t *opts, weft_udp_t **out)
{
    if (out)
        *out = NULL;
    weft_udp_opts_t o = opts ? *opts : (weft_udp_opts_t){ 0 };
    if (!out || local_port < 0 || local_port > 65535 || (remote_host && (remote_port < 0 || remote_port > 65535)))
        return WEFT_EINVAL;
    weft_loop_t *loop = weft_running_loop();
    if (!loop)
        return WEFT_ENOLOOP;
    struct sockaddr_storage *loc = NULL, *rem = NULL;
    size_t nloc = 0, nrem = 0;
    int rc;
    if (remote_host) {
        if ((rc = weft__resolve(remote_host, remote_port, o.family, false, &rem, &nrem)) < 0)
            return rc;
        if (!nrem) {
            free(rem);
            return WEFT_ERESOLVE;
        }
        if (o.family == AF_UNSPEC)
            o.family = rem[0].ss_family;
    }
    if (local_host || local_port || !remote_host) {
        if ((rc = weft__resolve(local_host, local_port, o.family, true, &loc, &nloc)) < 0) {
            free(rem);
            return rc;
        }
        if (!nloc) {
            free(rem);
            free(loc);
            return WEFT_ERESOLVE;
        }
    }
    int family = loc ? loc[0].ss_family : rem[0].ss_family;
    weft_udp_t *u = calloc(1, sizeof *u);
    if (!u) {
        rc = WEFT_ENOMEM;
        goto out_free;
    }
    u->loop = loop;
    u->qmax = o.recv_queue ? o.recv_queue : 256;
    u->high = o.write_high ? o.write_high : (size_t)64 * 1024;
    u->low = u->high / 4;
    if ((rc = uv_udp_init_ex(weft_loop_uv(loop), &u->h, (unsigned)family)) < 0) {
        free(u);
        goto out_free;
    }
    u->h.data = u;
    uv_os_fd_t fd;
    if (o.reuse_port && uv_fileno((uv_handle_t *)&u->h, &fd) == 0) {
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
            rc = -errno;
    }
    if (rc == 0 && loc) {
        unsigned flags = (o.reuse_address ? UV_UDP_REUSEADDR : 0) | (o.ipv6_only && family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
        rc = uv_udp_bind(&u->h, (const struct sockaddr *)&loc[0], flags);
    }
    if (rc == 0 && o.allow_broadcast)
        rc = uv_udp_set_broadcast(&u->h, 1);
    if (rc == 0 && rem) {
        rc = UV_EAFNOSUPPORT;
        for (size_t i = 0; i < nrem && rc < 0; i++)
            if (rem[i].ss_family == family)
                rc = uv_udp_connect(&u->h, (const struct sockaddr *)&rem[i]);
    }
    if (rc < 0) {
        u->closing = true;
        uv_close((uv_handle_t *)&u->h, on_close);
        goto out_free;
    }
    *out = u;
out_free:
    free(loc);
    free(rem);
    return rc;
}

int weft_udp_sockname(const weft_udp_t *u, struct sockaddr_storage *out, socklen_t *len)
{
    if (!u || !out)
        return WEFT_EINVAL;
    int n = (int)sizeof *out;
    int rc = uv_udp_getsockname(&u->h, (struct sockaddr *)out, &n);
    if (rc == 0 && len)
        *len = sa_len(out);
    return rc;
}

int weft_udp_port(const weft_udp_t *u)
{
    struct sockaddr_storage a;
    int rc = weft_udp_sockname(u, &a, NULL);
    if (rc < 0)
        return rc;
    return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
}
