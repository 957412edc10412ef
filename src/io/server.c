/* Servers: asyncio's start_server over one loop or every worker loop.
 *
 * Listening sockets are made with plain socket/bind/listen on the caller's
 * thread (errors come back at once), then each is watched by a uv_poll_t on
 * the loop that accepts from it and accept4()ed there. One "acceptor" task per
 * accepting loop owns its uv_poll_t handles: it starts them, waits until it is
 * cancelled (Server.close, or the runtime shutting down), closes them, waits
 * for their close callbacks and closes the descriptors, so no handle outlives
 * its loop.
 *
 * Modes (weft_serve_mode_t):
 *  - ONE_LOOP: one acceptor on the home loop (the caller's); handlers there.
 *  - REUSEPORT: an SO_REUSEPORT socket per serving loop for every address; the
 *    kernel picks the socket, hence the loop. (Unix sockets: each serving loop
 *    polls a dup of the one socket.)
 *  - HANDOFF: one acceptor on the home loop; each accepted descriptor goes to
 *    the loop chosen round-robin or least-loaded, in a task placed there with
 *    weft_spawn_on, which wraps it with uv_tcp_open/uv_pipe_open.
 * Every connection runs as one loop-affine task on the loop that owns its
 * socket: conn_main wraps the descriptor, runs the handler, closes the
 * connection and waits for its handle to be closed.
 *
 * Lifetime: the server is reference counted (the user, every acceptor task,
 * every connection task, every message in flight); the last release frees it,
 * on any thread. `pending` counts acceptors and connections alive; once the
 * server is closing and it reaches 0, the `done` event is set (wait_closed).
 * A task that never runs its body (cancelled before it started, during a
 * shutdown) is caught by a done callback that closes what it would have owned.
 *
 * Per-loop state (slot_t.conns, .kill) is touched only on that loop's thread;
 * shared counters use the compiler's __atomic builtins, which ThreadSanitizer
 * understands. */
#include "core/task.h"
#include "io/io.h"
#include "weft/stream.h"
#include "weft/sync.h"
#include "weft/timeout.h"
#include "weft/tls.h"
#include "weft/debug.h"

#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>


#define A_LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define A_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define A_SUB(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_SEQ_CST)

#define ACCEPT_BATCH 128
#define EMFILE_PAUSE_MS 100

struct slot;

typedef struct listener {
    struct slot *slot;
    int fd;
    bool inited;            /* poll and pause handles initialised */
    uv_poll_t poll;
    uv_timer_t pause;       /* accepting paused after EMFILE & co. */
} listener_t;

/* A running handler, linked on its slot (on its stack). */
typedef struct cnode {
    struct cnode *prev, *next;
    weft_task_t *task;
    weft_reader_t *reader;
} cnode_t;

typedef struct slot {
    struct weft_server *srv;
    int index;
    weft_loop_t *loop;
    weft_task_t *acceptor;  /* reference, or NULL: nothing listens here */
    listener_t *ls;
    int nls;
    bool ran;               /* the acceptor's body started (its loop only) */
    int closing_handles;    /* acceptor: handle closes still pending */
    weft__task_t *acc_task;
    cnode_t *conns;         /* handlers running here (this loop's thread only) */
    bool kill;              /* shutdown deadline passed: cancel handlers as they start */
    bool draining;          /* graceful shutdown: idle connections are released (this loop only) */
    unsigned int limit_paused; /* atomic: accepting stopped at the connection limit */
    size_t open;            /* atomic */
    uint64_t accepted;      /* atomic */
} slot_t;

struct weft_server {
    unsigned int refs;      /* atomic */
    weft_loop_t *home;
    weft_client_connected_fn handler;
    void *arg;
    weft_server_opts_t opts;
    int mode;
    bool is_unix;
    char *path;
    dev_t dev;
    ino_t ino;
    int nslots;
    slot_t *slots;
    int naddrs;
    struct sockaddr_storage *addrs;
    socklen_t *addrlens;
    unsigned int rr;        /* atomic: round-robin cursor */
    unsigned int closing;   /* atomic */
    size_t nconns;          /* atomic: connections admitted (reserved before accept4) */
    size_t max_conns;       /* atomic: connection limit, SIZE_MAX = none */
    unsigned int pending;   /* atomic: acceptors + connections alive */
    unsigned int start_left;/* atomic: acceptors that have not reported */
    int start_err;          /* atomic: first acceptor error */
    weft_event_t *ready;    /* every acceptor reported */
    weft_event_t *done;     /* closing and pending == 0 */
};

typedef struct conn_rec {
    weft_server_t *srv;
    slot_t *slot;
    int fd;
    bool ran;               /* written by the task's loop; read by its done callback */
} conn_rec_t;

/* ---- references and counters ------------------------------------------------- */

static void server_destroy(weft_server_t *s)
{
    for (int i = 0; i < s->nslots; i++) {
        slot_t *sl = &s->slots[i];
        if (sl->acceptor)
            weft_task_release(sl->acceptor);
        free(sl->ls);
    }
    free(s->slots);
    weft_tls_release(s->opts.stream.tls);
    free(s->addrs);
    free(s->addrlens);
    free(s->path);
    if (s->ready)
        weft_event_free(s->ready);
    if (s->done)
        weft_event_free(s->done);
    free(s);
}

static void server_retain(weft_server_t *s) { A_ADD(&s->refs, 1); }

static void server_release(weft_server_t *s)
{
    if (A_SUB(&s->refs, 1) == 0)
        server_destroy(s);
}

static void pending_dec(weft_server_t *s)
{
    if (A_SUB(&s->pending, 1) == 0 && A_LOAD(&s->closing))
        weft_event_set(s->done);
}

static void report_started(weft_server_t *s, int err)
{
    if (err) {
        int zero = 0;
        __atomic_compare_exchange_n(&s->start_err, &zero, err, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
    if (A_SUB(&s->start_left, 1) == 0)
        weft_event_set(s->ready);
}

static void resume_paused(weft_server_t *s);

static void conn_end(conn_rec_t *rec)
{
    A_SUB(&rec->slot->open, 1);
    size_t n = A_SUB(&rec->srv->nconns, 1);
    if (n < A_LOAD(&rec->srv->max_conns))
        resume_paused(rec->srv);
    pending_dec(rec->srv);
}

static void close_listener_fds(slot_t *sl)
{
    for (int i = 0; i < sl->nls; i++) {
        if (sl->ls[i].fd >= 0)
            close(sl->ls[i].fd);
        sl->ls[i].fd = -1;
    }
}

/* ---- connections ---------------------------------------------------------------- */

static int conn_main(void *arg, weft_value_t *result)
{
    (void)result;
    conn_rec_t *rec = arg;
    rec->ran = true;
    weft_server_t *s = rec->srv;
    slot_t *sl = rec->slot;
    weft_task_t *me = weft_current_task();
    weft_reader_t *r;
    weft_writer_t *w;
    int rc = weft__stream_adopt(sl->loop, rec->fd, s->is_unix, &s->opts.stream, &r, &w);
    rec->fd = -1;
    if (rc < 0) {
        weft__report(sl->loop, "weft server: cannot set up an accepted connection", rc, NULL, me);
        conn_end(rec);
        return 0;
    }
    cnode_t node = { .task = me, .reader = r };
    node.next = sl->conns;
    if (sl->conns)
        sl->conns->prev = &node;
    sl->conns = &node;
    if (sl->kill)
        weft_task_cancel(me, NULL);
    else if (sl->draining)
        weft__stream_drain(r);
    rc = weft__stream_handshake(r, w);   /* TLS: the handler starts on a finished handshake */
    bool hs_failed = rc < 0;
    if (hs_failed) {
        if (rc != WEFT_ECANCELED && weft_loop_get_debug(sl->loop))   /* asyncio logs these in debug mode only */
            weft__report(sl->loop, "TLS handshake failed on an accepted connection", rc,
                         weft_writer_tls_error(w), me);
    } else {
        rc = s->handler(r, w, s->arg);
    }
    if (node.prev)
        node.prev->next = node.next;
    else
        sl->conns = node.next;
    if (node.next)
        node.next->prev = node.prev;
    bool cancelled = rc == WEFT_ECANCELED || weft_task_cancelling(me) > 0 || hs_failed;
    if (rc < 0 && rc != WEFT_ECANCELED && rc != WEFT_ESHUTDOWN && !hs_failed)   /* ESHUTDOWN: released while idle */
        weft__report(sl->loop, "Unhandled error in client_connected_cb", rc, weft_error_message(), me);
    weft__stream_finish(r, w, cancelled);
    conn_end(rec);
    return 0;
}

/* Runs once the connection task is done; cleans up for a task whose body
 * never ran (cancelled before it started). */
static void conn_done(weft_future_t *f, void *arg)
{
    (void)f;
    conn_rec_t *rec = arg;
    weft_server_t *s = rec->srv;
    if (!rec->ran) {
        close(rec->fd);
        conn_end(rec);
    }
    free(rec);
    server_release(s);
}

static slot_t *pick(weft_server_t *s, slot_t *from)
{
    if (s->mode != WEFT_SERVE_HANDOFF)
        return from;
    unsigned int start = __atomic_fetch_add(&s->rr, 1, __ATOMIC_RELAXED);
    if (s->opts.balance != WEFT_BALANCE_LEAST_LOADED)
        return &s->slots[start % (unsigned int)s->nslots];
    slot_t *best = NULL;
    size_t least = SIZE_MAX;
    for (int k = 0; k < s->nslots; k++) {
        slot_t *sl = &s->slots[(start + (unsigned int)k) % (unsigned int)s->nslots];
        size_t o = A_LOAD(&sl->open);
        if (o < least) {
            least = o;
            best = sl;
        }
    }
    return best;
}

static void dispatch(weft_server_t *s, slot_t *from, int fd)
{
    slot_t *to = pick(s, from);
    conn_rec_t *rec = malloc(sizeof *rec);
    if (!rec) {
        close(fd);
        A_SUB(&s->nconns, 1);
        weft__report(from->loop, "weft server: connection dropped", WEFT_ENOMEM, NULL, NULL);
        return;
    }
    *rec = (conn_rec_t){ .srv = s, .slot = to, .fd = fd };
    server_retain(s);
    A_ADD(&s->pending, 1);
    A_ADD(&to->open, 1);   /* nconns was reserved by the acceptor */
    A_ADD(&to->accepted, 1);
    weft_task_opts_t o = { .stack_size = s->opts.stack_size };
    weft_task_t *task;
    int rc = to->loop == from->loop ? weft_loop_create_task(to->loop, &task, conn_main, rec, &o)
                                    : weft_spawn_on(to->loop, &task, conn_main, rec, &o);
    if (rc < 0) {
        if (rc != WEFT_ECLOSED)
            weft__report(from->loop, "weft server: connection dropped", rc, NULL, NULL);
        conn_done(NULL, rec);
        return;
    }
    weft_future_add_done_callback(task, conn_done, rec);   /* the first callback never allocates */
    weft_task_release(task);
}

/* ---- accepting ------------------------------------------------------------------- */

static void on_acceptable(uv_poll_t *p, int status, int events);

/* Reserve room for one more connection under the limit. */
static bool admit(weft_server_t *s)
{
    size_t n = A_LOAD(&s->nconns);
    for (;;) {
        if (n >= A_LOAD(&s->max_conns))
            return false;
        if (__atomic_compare_exchange_n(&s->nconns, &n, n + 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return true;
    }
}

static void listeners_poll(slot_t *sl, bool on)
{
    for (int i = 0; i < sl->nls; i++) {
        listener_t *l = &sl->ls[i];
        if (!l->inited || uv_is_closing((uv_handle_t *)&l->poll))
            continue;
        if (on)
            uv_poll_start(&l->poll, UV_READABLE, on_acceptable);
        else
            uv_poll_stop(&l->poll);
    }
}

/* On a slot's loop: accept again (room was made under the limit). */
static int resume_slot(void *arg)
{
    slot_t *sl = arg;
    if (!A_LOAD(&sl->srv->closing) && sl->acc_task == NULL && sl->ran)
        listeners_poll(sl, true);
    server_release(sl->srv);
    return 0;
}

static void resume_paused(weft_server_t *s)
{
    for (int k = 0; k < s->nslots; k++) {
        slot_t *sl = &s->slots[k];
        if (__atomic_exchange_n(&sl->limit_paused, 0, __ATOMIC_SEQ_CST)) {
            server_retain(s);
            if (weft_call_soon_threadsafe(sl->loop, resume_slot, sl) < 0)
                server_release(s);
        }
    }
}

/* The limit is reached: stop polling this slot's listeners (new connections
 * wait in the kernel's backlog) until a connection ends. */
static void pause_slot(slot_t *sl)
{
    weft_server_t *s = sl->srv;
    listeners_poll(sl, false);
    __atomic_store_n(&sl->limit_paused, 1, __ATOMIC_SEQ_CST);
    /* a connection may have ended between the check and the flag: look again */
    if (A_LOAD(&s->nconns) < A_LOAD(&s->max_conns) &&
        __atomic_exchange_n(&sl->limit_paused, 0, __ATOMIC_SEQ_CST))
        listeners_poll(sl, true);
}

static void on_pause_end(uv_timer_t *tm)
{
    listener_t *l = tm->data;
    if (!A_LOAD(&l->slot->srv->closing))
        uv_poll_start(&l->poll, UV_READABLE, on_acceptable);
}

static void on_acceptable(uv_poll_t *p, int status, int events)
{
    (void)events;
    listener_t *l = p->data;
    slot_t *sl = l->slot;
    weft_server_t *s = sl->srv;
    if (A_LOAD(&s->closing)) {
        uv_poll_stop(p);
        return;
    }
    if (status < 0) {
        weft__report(sl->loop, "weft server: listening socket failed", status, NULL, NULL);
        uv_poll_stop(p);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (!admit(s)) {
            pause_slot(sl);
            return;
        }
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            A_SUB(&s->nconns, 1);   /* nothing admitted */
            switch (e) {
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case ENETDOWN:
            case ENOPROTOOPT:
            case EHOSTDOWN:
            case ENONET:
            case EHOSTUNREACH:
            case ENETUNREACH:
                continue;   /* that connection is gone; try the next */
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                weft__report(sl->loop, "weft server: accept failed, pausing 100 ms", -e, NULL, NULL);
                uv_poll_stop(p);
                uv_timer_start(&l->pause, on_pause_end, EMFILE_PAUSE_MS, 0);
                return;
            default:
                weft__report(sl->loop, "weft server: accept failed", -e, NULL, NULL);
                return;
            }
        }
        dispatch(s, sl, fd);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    listener_t *l = h->data;
    slot_t *sl = l->slot;
    if (--sl->closing_handles == 0 && sl->acc_task)
        weft__task_wake(sl->acc_task, 0);
}

static bool stop_cancel(weft__task_t *t, const char *msg)
{
    (void)msg;
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

static void unlink_socket_file(weft_server_t *s)
{
    struct stat st;
    if (s->path && stat(s->path, &st) == 0 && st.st_ino == s->ino && st.st_dev == s->dev)
        unlink(s->path);
}

static int acceptor_main(void *arg, weft_value_t *result)
{
    (void)result;
    slot_t *sl = arg;
    weft_server_t *s = sl->srv;
    sl->ran = true;
    weft__task_t *t = weft__thread()->task;
    uv_loop_t *uv = weft_loop_uv(sl->loop);
    int err = 0;
    for (int i = 0; i < sl->nls && !err; i++) {
        listener_t *l = &sl->ls[i];
        l->slot = sl;
        if ((err = uv_poll_init_socket(uv, &l->poll, l->fd)) < 0)
            break;
        uv_timer_init(uv, &l->pause);
        l->poll.data = l;
        l->pause.data = l;
        l->inited = true;
        err = uv_poll_start(&l->poll, UV_READABLE, on_acceptable);
    }
    report_started(s, err);
    if (!err && !A_LOAD(&s->closing))
        weft__task_suspend(t, WEFT__W_OTHER, stop_cancel, NULL);   /* until cancelled */
    sl->acc_task = t;
    for (int i = 0; i < sl->nls; i++) {
        listener_t *l = &sl->ls[i];
        if (!l->inited)
            continue;
        uv_poll_stop(&l->poll);
        uv_close((uv_handle_t *)&l->poll, on_listener_closed);
        uv_close((uv_handle_t *)&l->pause, on_listener_closed);
        sl->closing_handles += 2;
    }
    while (sl->closing_handles)
        weft__task_suspend(t, WEFT__W_OTHER, NULL, NULL);
    sl->acc_task = NULL;
    close_listener_fds(sl);
    if (sl->index == 0 && s->is_unix)
        unlink_socket_file(s);
    pending_dec(s);
    return 0;
}

static void acceptor_done(weft_future_t *f, void *arg)
{
    (void)f;
    slot_t *sl = arg;
    weft_server_t *s = sl->srv;
    if (!sl->ran) {   /* cancelled before it started */
        close_listener_fds(sl);
        if (sl->index == 0 && s->is_unix)
            unlink_socket_file(s);
        report_started(s, WEFT_ECANCELED);
        pending_dec(s);
    }
    server_release(s);
}

/* ---- listening sockets ------------------------------------------------------------ */

static int make_listener(const struct sockaddr *sa, socklen_t len, const weft_server_opts_t *o, bool reuseport,
                         int backlog)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (sa->sa_family != AF_UNIX) {
        if (!o->no_reuse_address && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
            goto fail;
        if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
            goto fail;
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            goto fail;
    }
    if (bind(fd, sa, len) != 0)
        goto fail;
    if (sa->sa_family == AF_UNIX && o->unix_mode &&
        chmod(((const struct sockaddr_un *)(const void *)sa)->sun_path, (mode_t)o->unix_mode) != 0)
        goto fail;
    if (listen(fd, backlog) != 0)
        goto fail;
    return fd;
fail:;
    int e = -errno;
    close(fd);
    return e;
}

static int slot_add_fd(slot_t *sl, int fd)
{
    listener_t *n = realloc(sl->ls, (size_t)(sl->nls + 1) * sizeof *n);
    if (!n)
        return WEFT_ENOMEM;
    sl->ls = n;
    n[sl->nls] = (listener_t){ .slot = sl, .fd = fd };
    sl->nls++;
    return 0;
}

static void close_all_fds(weft_server_t *s)
{
    for (int i = 0; i < s->nslots; i++)
        close_listener_fds(&s->slots[i]);
}

/* Bind every address on every accepting slot. */
static int bind_all(weft_server_t *s, struct sockaddr_storage *addrs, size_t n, bool wildcard)
{
    int backlog = s->opts.backlog > 0 ? s->opts.backlog : 100;
    int nacc = s->mode == WEFT_SERVE_REUSEPORT ? s->nslots : 1;
    bool reuseport = s->mode == WEFT_SERVE_REUSEPORT || s->opts.reuse_port;
    s->addrs = calloc(n ? n : 1, sizeof *s->addrs);
    s->addrlens = calloc(n ? n : 1, sizeof *s->addrlens);
    if (!s->addrs || !s->addrlens)
        return WEFT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr *sa = (struct sockaddr *)&addrs[i];
        socklen_t len = sa->sa_family == AF_INET6   ? (socklen_t)sizeof(struct sockaddr_in6)
                        : sa->sa_family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                                                   : (socklen_t)sizeof(struct sockaddr_un);
        int first = -1;
        for (int k = 0; k < nacc; k++) {
            int fd;
            if (k > 0 && s->is_unix) {   /* one path: every loop polls the same socket */
                fd = fcntl(first, F_DUPFD_CLOEXEC, 0);
                if (fd < 0)
                    return -errno;
            } else {
                fd = make_listener(sa, len, &s->opts, reuseport, backlog);
            }
            if (fd < 0) {
                if (k == 0 && wildcard && sa->sa_family == AF_INET6 && n > 1 &&
                    (fd == UV_EAFNOSUPPORT || fd == UV_EADDRNOTAVAIL))
                    break;   /* no IPv6 here: serve IPv4 only */
                return fd;
            }
            int rc = slot_add_fd(&s->slots[k], fd);
            if (rc < 0) {
                close(fd);
                return rc;
            }
            if (k == 0) {
                first = fd;
                struct sockaddr_storage got;
                socklen_t glen = sizeof got;
                if (getsockname(fd, (struct sockaddr *)&got, &glen) != 0)
                    return -errno;
                if (s->is_unix) {
                    memcpy(&got, sa, len);
                    glen = len;
                }
                s->addrs[s->naddrs] = got;
                s->addrlens[s->naddrs] = glen;
                s->naddrs++;
                /* port 0: the other loops' sockets join the port the kernel chose */
                if (sa->sa_family == AF_INET)
                    ((struct sockaddr_in *)(void *)sa)->sin_port = ((struct sockaddr_in *)(void *)&got)->sin_port;
                else if (sa->sa_family == AF_INET6)
                    ((struct sockaddr_in6 *)(void *)sa)->sin6_port =
                        ((struct sockaddr_in6 *)(void *)&got)->sin6_port;
            }
        }
    }
    if (!s->naddrs)
        return WEFT_EINVAL;
    return 0;
}

static int server_start(weft_client_connected_fn handler, void *arg, const char *host, int port, const char *path,
                        const weft_server_opts_t *opts, weft_server_t **out)
{
    if (out)
        *out = NULL;
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (!handler || !out || (!path && (port < 0 || port > 65535)))
        return WEFT_EINVAL;
    if (path && (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)))
        return *path ? -ENAMETOOLONG : WEFT_EINVAL;
    weft_server_opts_t o = opts ? *opts : (weft_server_opts_t){ 0 };
    if (o.mode != WEFT_SERVE_ONE_LOOP && o.mode != WEFT_SERVE_REUSEPORT && o.mode != WEFT_SERVE_HANDOFF)
        return WEFT_EINVAL;
    if (o.stream.tls && !weft_tls_is_server(o.stream.tls))
        return WEFT_EINVAL;   /* a client context cannot serve */
    weft__stream_global_init();

    weft_loop_t *home = t->fut.loop;
    weft_runtime_t *rt = weft_loop_runtime(home);
    int nw = rt ? weft_runtime_workers(rt) : 1;
    int hidx = 0;
    for (int i = 0; i < nw; i++)
        if (rt && weft_runtime_loop(rt, i) == home)
            hidx = i;
    int nl = o.loops > 0 && o.loops < nw ? o.loops : nw;
    int mode = nl > 1 ? (int)o.mode : WEFT_SERVE_ONE_LOOP;

    weft_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return WEFT_ENOMEM;
    s->refs = 1;
    s->max_conns = SIZE_MAX;
    s->home = home;
    s->handler = handler;
    s->arg = arg;
    s->opts = o;
    weft_tls_retain(o.stream.tls);   /* the caller may release its context once the server runs */
    s->mode = mode;
    s->is_unix = path != NULL;
    s->nslots = mode == WEFT_SERVE_ONE_LOOP ? 1 : nl;
    s->slots = calloc((size_t)s->nslots, sizeof *s->slots);
    int rc = WEFT_ENOMEM;
    if (!s->slots || (path && !(s->path = weft__strdup(path))))
        goto fail;
    if ((rc = weft_event_new(&s->ready)) < 0 || (rc = weft_event_new(&s->done)) < 0)
        goto fail;
    for (int k = 0; k < s->nslots; k++) {
        slot_t *sl = &s->slots[k];
        sl->srv = s;
        sl->index = k;
        sl->loop = k == 0 || !rt ? home : weft_runtime_loop(rt, (hidx + k) % nw);
    }

    if (path) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path);   /* a stale socket (asyncio does the same) */
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        struct sockaddr_un *un = (struct sockaddr_un *)(void *)&ss;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        if ((rc = bind_all(s, &ss, 1, false)) < 0)
            goto fail;
        if (stat(path, &st) == 0) {
            s->dev = st.st_dev;
            s->ino = st.st_ino;
        }
    } else {
        struct sockaddr_storage *addrs;
        size_t n;
        if ((rc = weft__resolve(host, port, o.stream.family, true, &addrs, &n)) < 0)
            goto fail;
        rc = bind_all(s, addrs, n, !host || !*host);
        free(addrs);
        if (rc < 0)
            goto fail;
    }

    int nacc = 0;
    for (int k = 0; k < s->nslots; k++)
        nacc += s->slots[k].nls > 0;
    s->start_left = (unsigned int)nacc;
    s->pending = (unsigned int)nacc;
    weft_task_opts_t to = { .name = "weft-acceptor", .stack_size = 32 * 1024 };
    for (int k = 0; k < s->nslots; k++) {
        slot_t *sl = &s->slots[k];
        if (!sl->nls)
            continue;
        server_retain(s);
        weft_task_t *task;
        rc = sl->loop == home ? weft_loop_create_task(home, &task, acceptor_main, sl, &to)
                              : weft_spawn_on(sl->loop, &task, acceptor_main, sl, &to);
        if (rc < 0) {
            acceptor_done(NULL, sl);   /* as if it was cancelled before starting */
            continue;
        }
        sl->acceptor = task;
        weft_future_add_done_callback(task, acceptor_done, sl);
    }
    rc = weft_event_wait(s->ready);
    if (rc == 0)
        rc = A_LOAD(&s->start_err);
    if (rc < 0) {
        weft_server_free(s);   /* acceptors close their sockets and drop their references */
        return rc;
    }
    *out = s;
    return 0;

fail:
    close_all_fds(s);
    if (s->is_unix && s->naddrs)
        unlink(path);   /* bound, then failed */
    server_destroy(s);
    return rc;
}

int weft_start_server(weft_client_connected_fn handler, void *arg, const char *host, int port,
                      const weft_server_opts_t *opts, weft_server_t **server)
{
    return server_start(handler, arg, host, port, NULL, opts, server);
}

int weft_start_unix_server(weft_client_connected_fn handler, void *arg, const char *path,
                           const weft_server_opts_t *opts, weft_server_t **server)
{
    if (!path) {
        if (server)
            *server = NULL;
        return WEFT_EINVAL;
    }
    return server_start(handler, arg, NULL, 0, path, opts, server);
}

/* ---- closing and waiting ---------------------------------------------------------- */

int weft_server_close(weft_server_t *s)
{
    if (!s)
        return WEFT_EINVAL;
    unsigned int zero = 0;
    if (!__atomic_compare_exchange_n(&s->closing, &zero, 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return 0;
    for (int k = 0; k < s->nslots; k++)
        if (s->slots[k].acceptor)
            weft_task_cancel(s->slots[k].acceptor, NULL);
    if (A_LOAD(&s->pending) == 0)
        weft_event_set(s->done);
    return 0;
}

static int wait_done(weft_server_t *s)
{
    if (!s)
        return WEFT_EINVAL;
    if (!weft__thread()->task)
        return WEFT_ENOTCORO;
    server_retain(s);   /* the event lives while we wait on it */
    int rc = weft_event_wait(s->done);
    server_release(s);
    return rc;
}

int weft_server_wait_closed(weft_server_t *s) { return wait_done(s); }

int weft_server_serve_forever(weft_server_t *s)
{
    int rc = wait_done(s);
    if (rc == WEFT_ECANCELED)
        weft_server_close(s);
    return rc;
}

/* On the slot's loop: tell its idle connections (and those that start later). */
static int drain_slot(void *arg)
{
    slot_t *sl = arg;
    sl->draining = true;
    for (cnode_t *n = sl->conns; n; n = n->next)
        weft__stream_drain(n->reader);
    server_release(sl->srv);
    return 0;
}

static void drain_all(weft_server_t *s)
{
    for (int k = 0; k < s->nslots; k++) {
        server_retain(s);
        if (weft_call_soon_threadsafe(s->slots[k].loop, drain_slot, &s->slots[k]) < 0)
            server_release(s);
    }
}

int weft_server_set_connection_limit(weft_server_t *s, size_t max)
{
    if (!s || max == 0)
        return WEFT_EINVAL;
    __atomic_store_n(&s->max_conns, max, __ATOMIC_SEQ_CST);
    if (A_LOAD(&s->nconns) < max)
        resume_paused(s);
    return 0;
}

/* On the slot's loop: cancel its handlers, and those that start later. */
static int cancel_slot(void *arg)
{
    slot_t *sl = arg;
    sl->kill = true;
    for (cnode_t *n = sl->conns; n; n = n->next)
        weft_task_cancel(n->task, NULL);
    server_release(sl->srv);
    return 0;
}

int weft_server_shutdown(weft_server_t *s, double timeout)
{
    if (!s)
        return WEFT_EINVAL;
    if (!weft__thread()->task)
        return WEFT_ENOTCORO;
    if (isnan(timeout))
        return WEFT_EINVAL;
    server_retain(s);
    weft_server_close(s);
    drain_all(s);
    int rc;
    if (isinf(timeout) && timeout > 0) {   /* WEFT_NO_TIMEOUT */
        rc = weft_event_wait(s->done);
    } else {
        weft_timeout_t to;
        rc = weft_timeout_enter(&to, timeout);
        if (rc == 0) {
            rc = weft_event_wait(s->done);
            rc = weft_timeout_exit(&to, rc);
        }
    }
    if (rc == WEFT_ETIMEDOUT) {
        int n = (int)A_LOAD(&s->nconns);
        for (int k = 0; k < s->nslots; k++) {
            server_retain(s);
            if (weft_call_soon_threadsafe(s->slots[k].loop, cancel_slot, &s->slots[k]) < 0)
                server_release(s);
        }
        rc = weft_event_wait(s->done);
        if (rc == 0)
            rc = n;
    }
    server_release(s);
    return rc;
}

void weft_server_free(weft_server_t *s)
{
    if (!s)
        return;
    weft_server_close(s);
    server_release(s);
}

/* ---- introspection ------------------------------------------------------------------ */

bool weft_server_is_serving(const weft_server_t *s) { return s && !A_LOAD(&s->closing); }

int weft_server_port(const weft_server_t *s)
{
    if (!s || s->is_unix || !s->naddrs)
        return WEFT_EINVAL;
    const struct sockaddr *sa = (const struct sockaddr *)&s->addrs[0];
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

int weft_server_nsockets(const weft_server_t *s) { return s ? s->naddrs : WEFT_EINVAL; }

int weft_server_sockname(const weft_server_t *s, int i, struct sockaddr_storage *out, socklen_t *len)
{
    if (!s || !out || i < 0 || i >= s->naddrs)
        return WEFT_EINVAL;
    *out = s->addrs[i];
    if (len)
        *len = s->addrlens[i];
    return 0;
}

size_t weft_server_connections(const weft_server_t *s) { return s ? A_LOAD(&s->nconns) : 0; }

int weft_server_nloops(const weft_server_t *s) { return s ? s->nslots : WEFT_EINVAL; }

int weft_server_loop_stats(const weft_server_t *s, int i, weft_server_loop_stats_t *out)
{
    if (!s || !out || i < 0 || i >= s->nslots)
        return WEFT_EINVAL;
    const slot_t *sl = &s->slots[i];
    out->loop = sl->loop;
    out->open = A_LOAD(&sl->open);
    out->accepted = A_LOAD(&sl->accepted);
    return 0;
}
