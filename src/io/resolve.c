/* Name resolution without blocking a loop: uv_getaddrinfo runs getaddrinfo(3)
 * on libuv's thread pool and its callback wakes the waiting task.
 *
 * The request lives on the heap, not on the task's stack: if the task is
 * cancelled while the lookup runs, it leaves at once and the request is
 * abandoned to its callback (uv_cancel is tried, but a lookup already running
 * cannot be stopped), which then frees the result and the request. */
#include "core/task.h"
#include "io/io.h"
#include "weft/stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>


typedef struct gai {
    uv_getaddrinfo_t req;
    weft__task_t *task;     /* NULL once abandoned */
    int status;
    struct addrinfo *res;
} gai_t;

typedef struct gai_wait {
    gai_t *g;
    bool abandoned;
} gai_wait_t;

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gai_t *g = req->data;
    if (!g->task) {
        if (res)
            uv_freeaddrinfo(res);
        free(g);
        return;
    }
    g->status = status;
    g->res = res;
    weft__task_wake(g->task, 0);
}

static bool gai_wait_cancel(weft__task_t *t, const char *msg)
{
    gai_wait_t *gw = t->wait_obj;
    gw->abandoned = true;
    gw->g->task = NULL;
    uv_cancel((uv_req_t *)&gw->g->req);   /* best effort: the callback runs either way */
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

static int map_gai(int status, const char *host)
{
    switch (status) {
    case 0:
        return 0;
    case UV_EAI_MEMORY:
        return WEFT_ENOMEM;
    case UV_EAI_CANCELED:
        return WEFT_ECANCELED;
    default:
        return weft_raise(WEFT_ERESOLVE, "getaddrinfo(%s): %s", host ? host : "NULL", uv_strerror(status));
    }
}

int weft_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    if (!res || (!host && !service))
        return WEFT_EINVAL;
    *res = NULL;
    gai_t *g = calloc(1, sizeof *g);
    if (!g)
        return WEFT_ENOMEM;
    int rc = uv_getaddrinfo(weft_loop_uv(t->fut.loop), &g->req, on_gai, host, service, hints);
    if (rc < 0) {
        free(g);
        return map_gai(rc, host);
    }
    g->req.data = g;
    g->task = t;
    gai_wait_t gw = { .g = g };
    rc = weft__task_suspend(t, WEFT__W_OTHER, gai_wait_cancel, &gw);
    if (gw.abandoned)
        return WEFT_ECANCELED;   /* @g belongs to the callback now */
    if (rc < 0) {                  /* cancelled after the result came */
        if (g->res)
            uv_freeaddrinfo(g->res);
        free(g);
        return rc;
    }
    rc = map_gai(g->status, host);
    if (rc == 0)
        *res = g->res;
    else if (g->res)
        uv_freeaddrinfo(g->res);
    free(g);
    return rc;
}

void weft_freeaddrinfo(struct addrinfo *res)
{
    if (res)
        uv_freeaddrinfo(res);
}

static int push_addr(struct sockaddr_storage **a, size_t *n, size_t *cap, const struct sockaddr *sa, size_t len)
{
    for (size_t i = 0; i < *n; i++)   /* drop duplicates */
        if ((*a)[i].ss_family == sa->sa_family && memcmp(&(*a)[i], sa, len) == 0)
            return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct sockaddr_storage *na = realloc(*a, nc * sizeof *na);
        if (!na)
            return WEFT_ENOMEM;
        *a = na;
        *cap = nc;
    }
    memset(&(*a)[*n], 0, sizeof **a);
    memcpy(&(*a)[*n], sa, len);
    (*n)++;
    return 0;
}

/* Addresses of @host at @port (TCP), in getaddrinfo's order. @host NULL or ""
 * with @passive: the wildcard addresses (IPv4, then IPv6). Literals skip the
 * lookup. *out is malloc'ed. Awaiting unless @host is NULL or a literal. */
int weft__resolve(const char *host, int port, int family, bool passive, struct sockaddr_storage **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (port < 0 || port > 65535 || (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
        return WEFT_EINVAL;
    size_t cap = 0;
    int rc = 0;
    if (!host || !*host) {
        if (!passive)
            return WEFT_EINVAL;
        struct sockaddr_in a4;
        struct sockaddr_in6 a6;
        if (family != AF_INET6 && (rc = uv_ip4_addr("0.0.0.0", port, &a4)) == 0)
            rc = push_addr(out, n, &cap, (struct sockaddr *)&a4, sizeof a4);
        if (rc == 0 && family != AF_INET && (rc = uv_ip6_addr("::", port, &a6)) == 0)
            rc = push_addr(out, n, &cap, (struct sockaddr *)&a6, sizeof a6);
        if (rc < 0) {
            free(*out);
            *out = NULL;
            *n = 0;
        }
        return rc;
    }
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (family != AF_INET6 && uv_ip4_addr(host, port, &a4) == 0)
        return push_addr(out, n, &cap, (struct sockaddr *)&a4, sizeof a4);
    if (family != AF_INET && strchr(host, ':') && uv_ip6_addr(host, port, &a6) == 0)
        return push_addr(out, n, &cap, (struct sockaddr *)&a6, sizeof a6);
    char svc[16];
    snprintf(svc, sizeof svc, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    struct addrinfo *res;
    if ((rc = weft_getaddrinfo(host, svc, &hints, &res)) < 0)
        return rc;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
            rc = push_addr(out, n, &cap, ai->ai_addr, sizeof(struct sockaddr_in));
        else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6))
            rc = push_addr(out, n, &cap, ai->ai_addr, sizeof(struct sockaddr_in6));
    }
    uv_freeaddrinfo(res);
    if (rc == 0 && *n == 0)
        rc = weft_raise(WEFT_ERESOLVE, "getaddrinfo(%s): no IPv4 or IPv6 address", host);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int weft_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap, int *port)
{
    if (port)
        *port = 0;
    if (!sa || !buf || !cap)
        return WEFT_EINVAL;
    switch (sa->sa_family) {
    case AF_INET: {
        if (len < (socklen_t)sizeof(struct sockaddr_in))
            return WEFT_EINVAL;
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        if (!inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)cap))
            return WEFT_EINVAL;
        if (port)
            *port = ntohs(in->sin_port);
        return 0;
    }
    case AF_INET6: {
        if (len < (socklen_t)sizeof(struct sockaddr_in6))
            return WEFT_EINVAL;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)cap))
            return WEFT_EINVAL;
        if (port)
            *port = ntohs(in6->sin6_port);
        return 0;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)(const void *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > (socklen_t)off ? (size_t)len - off : 0;
        if (n > sizeof un->sun_path)
            n = sizeof un->sun_path;
        size_t k = n ? strnlen(un->sun_path, n) : 0;
        if (k >= cap)
            return WEFT_EINVAL;
        memcpy(buf, un->sun_path, k);
        buf[k] = '\0';
        return 0;
    }
    default:
        return WEFT_EINVAL;
    }
}
