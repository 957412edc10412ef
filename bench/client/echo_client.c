/* echo_client: the tcp_echo load client (bench/DEFINITIONS.md, benchmark 9).
 *
 *   echo_client HOST PORT [-c CONNS] [-s BYTES] [-d SECONDS] [--tls [--openssl-records]] [--cpu]
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
 * connects and handshakes took, done one after the other). After the
 * handshake the client seals and opens the application records itself, with
 * the traffic keys of the handshake and one EVP AEAD context per direction
 * (see "own records" below): the same bytes on the wire as SSL_write/SSL_read,
 * with half the client's user-space instructions per 64-byte round trip (about
 * 6,900 against 13,400), which leaves more of a shared machine to the server
 * measured.
 * --openssl-records (with --tls): SSL_write/SSL_read for the echo instead
 * (OpenSSL reads ahead: one read() per record, as without TLS).
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
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

/* --tls with own records: one direction of a TLS 1.3 connection's application traffic */
typedef struct {
    EVP_CIPHER_CTX *ctx;   /* keyed once; each record sets its nonce */
    unsigned char iv[12];
    uint64_t seq;
    int have;              /* the keylog callback delivered the secret */
    unsigned char secret[64];
    size_t secret_len;
} dir_t;

typedef struct {
    int fd;
    SSL *ssl;           /* --tls */
    dir_t wr, rd;       /* --tls, own records (after the handshake the SSL object is no longer used) */
    unsigned char *rec; /* records received, not yet decoded: rlen bytes */
    size_t rlen;
    unsigned char *orec;/* the record being sent: olen bytes, osent of them out, */
    size_t olen, osent, opart;   /* holding opart bytes of the message */
    size_t sent, got;   /* bytes of the current message written / read back */
    uint32_t round;     /* message number, varies the payload */
    unsigned char *out; /* current message */
    unsigned char *in;  /* echo being received */
} conn_t;

static size_t msg_size = 64;
static SSL_CTX *tls_ctx;   /* --tls */
static int own_records = 1;   /* --tls: encrypt/decrypt the echo's records here (EVP) rather than with SSL_write/SSL_read */
static EVP_CIPHER *rec_cipher;
static const char *rec_md;
static size_t rec_keylen;

#define REC_MAX (16384 + 256 + 5)   /* largest TLS 1.3 record on the wire */

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

/* ---- --tls, own records --------------------------------------------------------------
 * OpenSSL does the handshake (SSL_connect, blocking, read-ahead off so that it reads
 * nothing past the server's Finished); its keylog callback hands over the two
 * application traffic secrets, and from then on the client protects and opens the
 * TLS 1.3 application records itself (RFC 8446 section 5.2: AEAD over the record,
 * nonce = iv XOR sequence number, the record header as additional data), with one
 * EVP cipher context per direction keyed once. The bytes on the wire are the same
 * as with SSL_write/SSL_read; what it saves is OpenSSL's record-layer bookkeeping
 * around the AEAD, which costs the client about as much again as the AEAD itself per
 * 64-byte round trip. Post-handshake handshake messages from the server (session
 * tickets) are opened and skipped; an alert, a KeyUpdate or a bad record ends the run. */

static int hexval(int ch) {
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static void on_keylog(const SSL *ssl, const char *line) {
    conn_t *c = SSL_get_app_data(ssl);
    dir_t *d = !strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) ? &c->wr
             : !strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) ? &c->rd : NULL;
    const char *p = d ? strchr(line + 24, ' ') : NULL;   /* after the client random */
    if (!p)
        return;
    size_t n = 0;
    for (p++; p[0] && p[1] && n < sizeof d->secret; p += 2) {
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0)
            break;
        d->secret[n++] = (unsigned char)(hi << 4 | lo);
    }
    d->secret_len = n;
    d->have = n > 0;
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446 section 7.1 */
static void expand_label(const dir_t *d, const char *label, unsigned char *out, size_t len) {
    unsigned char info[2 + 1 + 6 + 32 + 1];
    size_t ll = strlen(label), k = 0;
    info[k++] = (unsigned char)(len >> 8);
    info[k++] = (unsigned char)len;
    info[k++] = (unsigned char)(6 + ll);
    memcpy(info + k, "tls13 ", 6);
    memcpy(info + k + 6, label, ll);
    k += 6 + ll;
    info[k++] = 0;   /* empty context */
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t outlen = len;
    if (!pc || EVP_PKEY_derive_init(pc) != 1 || EVP_PKEY_CTX_set_hkdf_mode(pc, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) != 1 ||
        EVP_PKEY_CTX_set_hkdf_md(pc, EVP_get_digestbyname(rec_md)) != 1 ||
        EVP_PKEY_CTX_set1_hkdf_key(pc, d->secret, (int)d->secret_len) != 1 ||
        EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)k) != 1 || EVP_PKEY_derive(pc, out, &outlen) != 1 || outlen != len)
        die(1, "HKDF-Expand-Label failed");
    EVP_PKEY_CTX_free(pc);
}

static void dir_init(dir_t *d, int enc) {
    unsigned char key[32];
    if (!d->have)
        die(1, "the TLS handshake gave no application traffic secret");
    expand_label(d, "key", key, rec_keylen);
    expand_label(d, "iv", d->iv, sizeof d->iv);
    if (!(d->ctx = EVP_CIPHER_CTX_new()) || EVP_CipherInit_ex(d->ctx, rec_cipher, NULL, key, NULL, enc) != 1)
        die(1, "cannot key the record cipher");
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(d->secret, sizeof d->secret);
}

/* The cipher suite the handshake chose, for own records. */
static void own_setup(conn_t *c) {
    if (!rec_cipher) {
        const char *name;
        switch (SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(c->ssl))) {
        case 0x1301: name = "AES-128-GCM", rec_md = "SHA256", rec_keylen = 16; break;
        case 0x1302: name = "AES-256-GCM", rec_md = "SHA384", rec_keylen = 32; break;
        case 0x1303: name = "ChaCha20-Poly1305", rec_md = "SHA256", rec_keylen = 32; break;
        default: die(1, "unexpected TLS 1.3 cipher suite %s", SSL_get_cipher_name(c->ssl));
        }
        if (!(rec_cipher = EVP_CIPHER_fetch(NULL, name, NULL)))
            die(1, "no %s in this OpenSSL", name);
    }
    if (SSL_has_pending(c->ssl))
        die(1, "OpenSSL read past the handshake");   /* read-ahead is off for the handshake */
    dir_init(&c->wr, 1);
    dir_init(&c->rd, 0);
    if (!(c->rec = malloc(REC_MAX)) || !(c->orec = malloc(REC_MAX)))
        die(1, "out of memory");
}

static void nonce(const dir_t *d, unsigned char n[12]) {
    memcpy(n, d->iv, 12);
    for (int i = 0; i < 8; i++)
        n[11 - i] ^= (unsigned char)(d->seq >> (8 * i));
}

/* Protect @len bytes of inner type @type into c->orec (it must be empty). */
static void seal(conn_t *c, const unsigned char *data, size_t len, unsigned char type) {
    unsigned char n[12], *r = c->orec;
    size_t clen = len + 1 + 16;
    int l, l2;
    r[0] = 23, r[1] = 3, r[2] = 3, r[3] = (unsigned char)(clen >> 8), r[4] = (unsigned char)clen;
    memcpy(r + 5, data, len);
    r[5 + len] = type;
    nonce(&c->wr, n);
    if (EVP_EncryptInit_ex(c->wr.ctx, NULL, NULL, NULL, n) != 1 || EVP_EncryptUpdate(c->wr.ctx, NULL, &l, r, 5) != 1 ||
        EVP_EncryptUpdate(c->wr.ctx, r + 5, &l, r + 5, (int)len + 1) != 1 ||
        EVP_EncryptFinal_ex(c->wr.ctx, r + 5 + l, &l2) != 1 ||
        EVP_CIPHER_CTX_ctrl(c->wr.ctx, EVP_CTRL_AEAD_GET_TAG, 16, r + 5 + len + 1) != 1)
        die(1, "record encryption failed");
    c->wr.seq++;
    c->olen = 5 + clen;
    c->osent = 0;
}

/* Sends @buf[*sent..len) on non-blocking @fd; returns 1 when it is all out,
 * 0 when the socket is full (exits on an error). */
static int send_rest(int fd, const unsigned char *buf, size_t len, size_t *sent) {
    while (*sent < len) {
        ssize_t n = send(fd, buf + *sent, len - *sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            die(1, "send: %s", strerror(errno));
        }
        *sent += (size_t)n;
    }
    return 1;
}

/* Sends what is left of c->orec; returns 1 when it is all out. */
static int send_rec(conn_t *c) { return send_rest(c->fd, c->orec, c->olen, &c->osent); }

/* Opens the complete records in c->rec, appending application data to @out (room
 * for @room bytes: the server may not send more than was sent); returns the bytes appended. */
static size_t open_recs(conn_t *c, size_t idx, unsigned char *out, size_t room) {
    size_t off = 0, got = 0;
    while (c->rlen - off >= 5) {
        unsigned char *r = c->rec + off, n[12];
        size_t clen = (size_t)r[3] << 8 | r[4];
        if (r[0] != 23 || clen < 17 || clen > REC_MAX - 5)
            die(1, "bad TLS record (type %d, length %zu) on connection %zu", r[0], clen, idx);
        if (c->rlen - off < 5 + clen)
            break;
        size_t plen = clen - 16;
        int l, l2;
        nonce(&c->rd, n);
        if (EVP_DecryptInit_ex(c->rd.ctx, NULL, NULL, NULL, n) != 1 || EVP_DecryptUpdate(c->rd.ctx, NULL, &l, r, 5) != 1 ||
            EVP_DecryptUpdate(c->rd.ctx, r + 5, &l, r + 5, (int)plen) != 1 ||
            EVP_CIPHER_CTX_ctrl(c->rd.ctx, EVP_CTRL_AEAD_SET_TAG, 16, r + 5 + plen) != 1 ||
            EVP_DecryptFinal_ex(c->rd.ctx, r + 5 + l, &l2) != 1)
            die(1, "TLS record authentication failed on connection %zu", idx);
        c->rd.seq++;
        while (plen && r[5 + plen - 1] == 0)   /* padding */
            plen--;
        if (!plen)
            die(1, "TLS record without a content type on connection %zu", idx);
        unsigned char type = r[5 + --plen];
        if (type == 23) {
            if (plen > room - got)
                die(2, "echo of bytes not yet sent on connection %zu", idx);
            memcpy(out + got, r + 5, plen);
            got += plen;
        } else if (type == 21) {
            die(1, "server sent a TLS alert (%d) on connection %zu", plen > 1 ? r[6] : -1, idx);
        } else if (type != 22 || (plen && r[5] != 4)) {   /* 4: NewSessionTicket, skipped */
            die(1, "unexpected TLS message (type %d) on connection %zu", type, idx);
        }
        off += 5 + clen;
    }
    memmove(c->rec, c->rec + off, c->rlen - off);
    c->rlen -= off;
    return got;
}

/* Writes what is left of the message; returns 1 when it is all out. */
static int flush_out(conn_t *c) {
    while (c->rd.ctx && c->sent < msg_size) {   /* own records: up to 16 KiB of the message per record */
        if (c->olen == 0) {
            c->opart = msg_size - c->sent < 16384 ? msg_size - c->sent : 16384;
            seal(c, c->out + c->sent, c->opart, 23);
        }
        if (!send_rec(c))
            return 0;
        c->olen = 0;
        c->sent += c->opart;
    }
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
    return send_rest(c->fd, c->out, msg_size, &c->sent);
}

/* Reads up to @len bytes from connection @idx's non-blocking @fd: the count,
 * 0 if none now (exits on the server's close or an error). */
static size_t recv_some(int fd, size_t idx, unsigned char *buf, size_t len) {
    ssize_t r = recv(fd, buf, len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (r < 0)
        die(1, "recv: %s", strerror(errno));
    if (r == 0)
        die(1, "server closed connection %zu", idx);
    return (size_t)r;
}

/* Reads what is there of the echo: bytes read, 0 if none now (exits on end or error). */
static size_t read_some(conn_t *c, size_t idx) {
    if (c->rd.ctx) {
        size_t r = recv_some(c->fd, idx, c->rec + c->rlen, REC_MAX - c->rlen);
        if (!r)
            return 0;
        c->rlen += r;
        return open_recs(c, idx, c->in + c->got, msg_size - c->got);
    }
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
    return recv_some(c->fd, idx, c->in + c->got, msg_size - c->got);
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
        } else if (!strcmp(a, "--openssl-records")) {
            own_records = 0;
        } else if (a[0] != '-' && !host) {
            host = a;
        } else if (a[0] != '-' && !port) {
            port = a;
        } else {
            die(1, "usage: echo_client HOST PORT [-c 64] [-s 64] [-d 5] [--tls [--openssl-records]] [--cpu]");
        }
    }
    if (tls_ctx && own_records) {
        /* OpenSSL must not read past the handshake: what follows is ours to open */
        SSL_CTX_set_read_ahead(tls_ctx, 0);
        SSL_CTX_set_keylog_callback(tls_ctx, on_keylog);
    }
    if (!host || !port)
        die(1, "usage: echo_client HOST PORT [-c 64] [-s 64] [-d 5] [--tls [--openssl-records]] [--cpu]");
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
            SSL_set_app_data(c->ssl, c);
            if (SSL_connect(c->ssl) != 1)
                die(1, "TLS handshake failed on connection %ld: %s", i, ERR_reason_error_string(ERR_get_error()));
            if (own_records)
                own_setup(c);
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
        conn_t *c = &conns[i];
        if (c->rd.ctx) {
            if (c->olen == 0) {   /* close_notify (best effort) */
                static const unsigned char close_notify[2] = {1, 0};
                seal(c, close_notify, sizeof close_notify, 21);
                send_rec(c);
            }
            EVP_CIPHER_CTX_free(c->wr.ctx);
            EVP_CIPHER_CTX_free(c->rd.ctx);
            free(c->rec);
            free(c->orec);
        } else if (c->ssl) {
            SSL_shutdown(c->ssl);   /* close_notify (non-blocking: best effort) */
        }
        SSL_free(c->ssl);
        close(conns[i].fd);
    }
    close(ep);
    free(bufs);
    free(conns);
    printf("roundtrips %llu elapsed_s %.3f req_per_s %.0f", roundtrips, elapsed, (double)roundtrips / elapsed);
    if (tls_ctx) {
        SSL_CTX_free(tls_ctx);
        EVP_CIPHER_free(rec_cipher);
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
