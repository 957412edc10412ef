/* echo_client: the tcp_echo load client (bench/DEFINITIONS.md, benchmark 9).
 *
 *   echo_client HOST PORT [-c CONNS] [-s BYTES] [-d SECONDS] [--tls] [--cpu]
 *
 * One thread, epoll. Opens CONNS connections (TCP_NODELAY) to HOST:PORT, all
 * connected before the clock starts; each connection sends a BYTES-byte message,
 * waits until all BYTES have come back (compared byte for byte), and sends the
 * next one. Round trips completed within SECONDS (monotonic clock) are counted;
 * then every connection is closed and one line is printed on stdout:
 *
 *   roundtrips N elapsed_s X req_per_s Y
 *
 * --tls: every connection does a TLS 1.3 handshake (OpenSSL, SNI "localhost",
 * the server's certificate is not verified: this measures the transport)
 * right after connecting, before the clock starts; the echo loop then runs
 * over TLS, and the line ends with ` handshake_s H` (the time all the
 * connects and handshakes took, done one after the other).
 *
 * --cpu: the line ends with ` cpu_s C`, the CPU time (user + system) this
 * process used in all, so that a script can tell the client's share of a
 * shared machine from the server's.
 *
 * Only loopback targets are accepted (127.x.x.x, ::1, localhost).
 * Exit codes: 0 ok, 1 usage / system error, 2 refused host or echo mismatch.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct {
    int fd;
    SSL *ssl;           /* --tls */
    size_t sent, got;   /* bytes of the current message written / read back */
    uint32_t round;     /* message number, varies the payload */
    unsigned char *out; /* current message */
    unsigned char *in;  /* echo being received */
} conn_t;

static size_t msg_size = 64;
static SSL_CTX *tls_ctx;   /* --tls */

static _Noreturn void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("echo_client: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

/* Resolves HOST:PORT; refuses (exit 2) anything but a loopback address. */
static struct addrinfo *resolve(const char *host, const char *port) {
    unsigned char buf[sizeof(struct in6_addr)];
    int literal = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
    if (!literal && strcmp(host, "localhost") != 0)
        die(2, "refusing host '%s': only 127.x.x.x, ::1 or localhost", host);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = literal ? AI_NUMERICHOST | AI_NUMERICSERV : AI_NUMERICSERV;
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        die(1, "cannot resolve %s port %s: %s", host, port, gai_strerror(rc));
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (!is_loopback(ai->ai_addr))
            die(2, "refusing host '%s': not a loopback address", host);
    return res;
}

static int connect_one(const struct addrinfo *res) {
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
                die(1, "TCP_NODELAY: %s", strerror(errno));
            return fd;
        }
        close(fd);
    }
    die(1, "connect: %s", strerror(errno));
}

static void fill(conn_t *c, size_t idx) {
    for (size_t i = 0; i < msg_size; i++)
        c->out[i] = (unsigned char)(idx * 131u + c->round * 7u + i);
    c->sent = c->got = 0;
}

/* Writes what is left of the message; returns 1 when it is all out. */
static int flush_out(conn_t *c) {
    while (c->ssl && c->sent < msg_size) {
        size_t n = 0;
        if (SSL_write_ex(c->ssl, c->out + c->sent, msg_size - c->sent, &n) == 1) {
            c->sent += n;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return 0;
        die(1, "SSL_write failed (%d): %s", e, ERR_reason_error_string(ERR_get_error()));
    }
    while (c->sent < msg_size) {
        ssize_t n = send(c->fd, c->out + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            die(1, "send: %s", strerror(errno));
        }
        c->sent += (size_t)n;
    }
    return 1;
}

/* Reads what is there of the echo: bytes read, 0 if none now (exits on end or error). */
static size_t read_some(conn_t *c, size_t idx) {
    if (c->ssl) {   /* everything OpenSSL can give: it may hold decrypted bytes the socket no longer signals */
        size_t total = 0;
        while (c->got + total < msg_size) {
            size_t n = 0;
            if (SSL_read_ex(c->ssl, c->in + c->got + total, msg_size - c->got - total, &n) == 1) {
                total += n;
                continue;
            }
            int e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            if (e == SSL_ERROR_ZERO_RETURN)
                die(1, "server closed connection %zu", idx);
            die(1, "SSL_read failed (%d) on connection %zu: %s", e, idx, ERR_reason_error_string(ERR_get_error()));
        }
        return total;
    }
    ssize_t r = recv(c->fd, c->in + c->got, msg_size - c->got, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (r < 0)
        die(1, "recv: %s", strerror(errno));
    if (r == 0)
        die(1, "server closed connection %zu", idx);
    return (size_t)r;
}

static void want(int ep, conn_t *c, size_t idx, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.u64 = idx};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die(1, "epoll_ctl: %s", strerror(errno));
}

static long parse_num(const char *s, const char *what, double *d) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v > 0))
        die(1, "bad %s '%s'", what, s);
    if (d)
        *d = v;
    return (long)v;
}

int main(int argc, char **argv) {
    const char *host = NULL, *port = NULL;
    long nconns = 64;
    double duration = 5.0;
    int show_cpu = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "-s") || !strcmp(a, "-d")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'c')
                nconns = parse_num(v, "connection count", NULL);
            else if (a[1] == 's')
                msg_size = (size_t)parse_num(v, "message size", NULL);
            else
                parse_num(v, "duration", &duration);
        } else if (!strcmp(a, "--cpu")) {
            show_cpu = 1;
        } else if (!strcmp(a, "--tls")) {
            tls_ctx = SSL_CTX_new(TLS_client_method());
            if (!tls_ctx || SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) != 1)
                die(1, "cannot make a TLS 1.3 context");
            SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
            SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
            /* Read-ahead: one read() takes a whole record (or several) instead of one for
             * its 5-byte header and one for its body, so the client costs about as many
             * syscalls per round trip over TLS as without it (one write, one read) and
             * measures the server rather than itself. read_some() drains what OpenSSL
             * buffered, so nothing waits behind an epoll that will not fire. */
            SSL_CTX_set_read_ahead(tls_ctx, 1);
        } else if (a[0] != '-' && !host) {
            host = a;
        } else if (a[0] != '-' && !port) {
            port = a;
        } else {
            die(1, "usage: echo_client HOST PORT [-c 64] [-s 64] [-d 5] [--tls] [--cpu]");
        }
    }
    if (!host || !port)
        die(1, "usage: echo_client HOST PORT [-c 64] [-s 64] [-d 5] [--tls] [--cpu]");
    if (nconns < 1 || nconns > 100000 || msg_size < 1 || msg_size > (1u << 24))
        die(1, "connection count or message size out of range");

    struct addrinfo *res = resolve(host, port);
    conn_t *conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char *bufs = malloc((size_t)nconns * msg_size * 2);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || !bufs || ep < 0)
        die(1, "out of memory or epoll_create1 failed");

    /* Connect everything (blocking connect, blocking handshake) before the clock starts. */
    double hs_start = now_s();
    for (long i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        c->fd = connect_one(res);
        if (tls_ctx) {
            c->ssl = SSL_new(tls_ctx);
            if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_set_tlsext_host_name(c->ssl, "localhost") != 1)
                die(1, "SSL_new failed");
            if (SSL_connect(c->ssl) != 1)
                die(1, "TLS handshake failed on connection %ld: %s", i, ERR_reason_error_string(ERR_get_error()));
        }
        c->out = bufs + (size_t)i * msg_size * 2;
        c->in = c->out + msg_size;
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
            die(1, "fcntl: %s", strerror(errno));
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            die(1, "epoll_ctl: %s", strerror(errno));
    }
    freeaddrinfo(res);
    double hs_time = now_s() - hs_start;

    unsigned long long roundtrips = 0;
    double start = now_s(), deadline = start + duration, t = start;
    for (long i = 0; i < nconns; i++) {
        fill(&conns[i], (size_t)i);
        if (!flush_out(&conns[i]))
            want(ep, &conns[i], (size_t)i, EPOLLIN | EPOLLOUT);
    }

    enum { MAXEV = 256 };
    struct epoll_event evs[MAXEV];
    while (t < deadline) {
        int timeout_ms = (int)((deadline - t) * 1000.0) + 1;
        int n = epoll_wait(ep, evs, MAXEV, timeout_ms);
        if (n < 0 && errno != EINTR)
            die(1, "epoll_wait: %s", strerror(errno));
        t = now_s();
        for (int k = 0; k < n && t < deadline; k++) {
            size_t idx = (size_t)evs[k].data.u64;
            conn_t *c = &conns[idx];
            if ((evs[k].events & EPOLLOUT) && flush_out(c))
                want(ep, c, idx, EPOLLIN);
            if (!(evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            size_t r = read_some(c, idx);
            if (r == 0)
                continue;
            if (memcmp(c->in + c->got, c->out + c->got, (size_t)r) != 0)
                die(2, "echo mismatch on connection %zu", idx);
            c->got += r;
            if (c->got < msg_size)
                continue;
            if (c->sent < msg_size)
                die(2, "echo of bytes not yet sent on connection %zu", idx);
            roundtrips++;
            c->round++;
            fill(c, idx);
            if (!flush_out(c))
                want(ep, c, idx, EPOLLIN | EPOLLOUT);
        }
    }
    double elapsed = t - start;

    for (long i = 0; i < nconns; i++) {
        if (conns[i].ssl) {
            SSL_shutdown(conns[i].ssl);   /* close_notify (non-blocking: best effort) */
            SSL_free(conns[i].ssl);
        }
        close(conns[i].fd);
    }
    close(ep);
    free(bufs);
    free(conns);
    printf("roundtrips %llu elapsed_s %.3f req_per_s %.0f", roundtrips, elapsed, (double)roundtrips / elapsed);
    if (tls_ctx) {
        SSL_CTX_free(tls_ctx);
        printf(" handshake_s %.3f", hs_time);
    }
    if (show_cpu) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf(" cpu_s %.3f", (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                                  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);
    }
    printf("\n");
    return 0;
}
