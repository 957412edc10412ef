/* TLS: echo from 1 byte to 16 MiB with every byte checked; 1,000 concurrent
 * TLS clients on a 2-loop server in both multi-loop modes; certificate and
 * host name refusals with their codes; handshake timeouts against silent and
 * stalling peers on both sides; garbage instead of TLS records; cancellation
 * during the handshake, a read and a drain (no byte lost; ASan checks leaks);
 * a peer reset mid-record; a peer closing without close_notify; a graceful
 * close bounded by the shutdown timeout; start_tls
 * after a plain exchange, and with the ClientHello arriving in the same
 * segment as the plain command before it; ALPN, session resumption, the info accessors;
 * contexts from files and bad material; hundreds of records in one segment
 * and records cut into 1-byte segments, from a raw OpenSSL client; writes
 * of many records each, then a close, arriving whole and in order.
 *
 * The certificates are made here with OpenSSL's API: a throwaway CA, a
 * server certificate it signs for "localhost" and 127.0.0.1, and a rogue
 * self-signed one. Loopback only; bounded by a watchdog alarm and by byte and
 * client counts; no test asserts how long anything took. */
#include "check.h"
#include "core/task.h"
#include "weft.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
/* Sanitizers make every handshake 5-20x slower: 100 clients still cover
 * every path (dozens per loop, both modes). */
#define NCLIENTS 100
#define SANITIZED 1
#else
#define NCLIENTS 1000
#define SANITIZED 0
#endif

/* ---- certificates ------------------------------------------------------------------ */

static struct {
    char *ca, *cert, *key, *rogue_cert, *rogue_key;
} pki;

static char *pem_of(int (*wr)(BIO *, void *), void *obj)
{
    BIO *b = BIO_new(BIO_s_mem());
    CHECK(b && wr(b, obj) == 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static int wr_x509(BIO *b, void *x) { return PEM_write_bio_X509(b, x); }
static int wr_key(BIO *b, void *k) { return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL); }

static void add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
    CHECK(e);
    CHECK(X509_add_ext(x, e, -1) == 1);
    X509_EXTENSION_free(e);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, bool ca, const char *san,
                       long serial)
{
    X509 *x = X509_new();
    CHECK(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"weft test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509 *is = issuer ? issuer : x;
    add_ext(x, is, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(x, is, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, is, NID_subject_key_identifier, "hash");
    add_ext(x, is, NID_authority_key_identifier, "keyid:always");
    if (san)
        add_ext(x, is, NID_subject_alt_name, san);
    CHECK(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void make_pki(void)
{
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256"), *rk = EVP_EC_gen("P-256");
    CHECK(cak && k && rk);
    X509 *ca = make_cert(cak, "weft test CA", NULL, NULL, true, NULL, 1);
    X509 *srv = make_cert(k, "localhost", ca, cak, false, "DNS:localhost,IP:127.0.0.1", 2);
    X509 *rogue = make_cert(rk, "localhost", NULL, NULL, false, "DNS:localhost,IP:127.0.0.1", 3);
    pki.ca = pem_of(wr_x509, ca);
    pki.cert = pem_of(wr_x509, srv);
    pki.key = pem_of(wr_key, k);
    pki.rogue_cert = pem_of(wr_x509, rogue);
    pki.rogue_key = pem_of(wr_key, rk);
    X509_free(ca);
    X509_free(srv);
    X509_free(rogue);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(k);
    EVP_PKEY_free(rk);
}

static void free_pki(void)
{
    free(pki.ca);
    free(pki.cert);
    free(pki.key);
    free(pki.rogue_cert);
    free(pki.rogue_key);
}

static weft_tls_t *server_ctx(void)
{
    weft_tls_t *t;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_pem = pki.cert, .key_pem = pki.key }, &t), 0);
    return t;
}

static weft_tls_t *client_ctx(void)
{
    weft_tls_t *t;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .ca_pem = pki.ca, .min_version = WEFT_TLS_VERSION_1_3 }, &t), 0);
    return t;
}

/* ---- helpers ------------------------------------------------------------------------ */

static uint8_t pat(uint64_t seed, uint64_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + i;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint8_t)x;
}

static int run_main(int workers, weft_coro_fn fn, void *arg)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &rt), 0);
    int rc = weft_runtime_run(rt, fn, arg, NULL, NULL);
    CHECK_EQ(weft_runtime_free(rt), 0);
    return rc;
}

static int echo_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)arg;
    uint8_t *buf = malloc(65536);
    if (!buf)
        return WEFT_ENOMEM;
    int rc;
    for (;;) {
        size_t n;
        if ((rc = weft_reader_read(r, buf, 65536, &n)) < 0 || n == 0)
            break;
        if ((rc = weft_writer_write(w, buf, n)) < 0 || (rc = weft_writer_drain(w)) < 0)
            break;
    }
    free(buf);
    return rc;
}

static weft_stream_opts_t cli_opts(weft_tls_t *t)
{
    return (weft_stream_opts_t){ .tls = t, .server_hostname = "localhost" };
}

static void finish(weft_reader_t *r, weft_writer_t *w)
{
    weft_writer_close(w);
    weft_writer_wait_closed(w);
    weft_reader_release(r);
    weft_writer_release(w);
}

/* A listening socket nobody accepts from: connects complete, nothing answers. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Server-side reports (debug mode): the last TLS handshake failure. */
struct seen {
    int code;
    int count;
    char detail[256];
};

static void on_exception(weft_loop_t *loop, const weft_error_info_t *info, void *ud)
{
    (void)loop;
    struct seen *s = ud;
    if (info->message && strstr(info->message, "TLS handshake failed")) {
        s->code = info->code;
        s->count++;
        snprintf(s->detail, sizeof s->detail, "%s", info->detail ? info->detail : "");
    }
}

/* ---- 1. echo, 1 B .. 16 MiB ------------------------------------------------------------ */

struct sender {
    weft_writer_t *w;
    size_t size;
    uint64_t seed;
    int rc;
};

static int send_all(void *arg, weft_value_t *out)
{
    (void)out;
    struct sender *s = arg;
    uint8_t *chunk = malloc(1 << 20);
    size_t off = 0;
    int rc = 0;
    while (off < s->size && rc == 0) {
        size_t k = s->size - off < (1u << 20) ? s->size - off : (1u << 20);
        for (size_t i = 0; i < k; i++)
            chunk[i] = pat(s->seed, off + i);
        if ((rc = weft_writer_write(s->w, chunk, k)) == 0)
            rc = weft_writer_drain(s->w);
        off += k;
    }
    if (rc == 0)
        rc = weft_writer_write_eof(s->w);   /* close_notify: the server's read sees a clean end */
    free(chunk);
    s->rc = rc;
    return 0;
}

static int echo_sizes_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *st = server_ctx(), *ct = client_ctx();
    weft_server_t *s;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0,
                               &(weft_server_opts_t){ .stream = { .tls = st } }, &s),
             0);
    weft_tls_release(st);   /* the server keeps its own reference */
    int port = weft_server_port(s);
    static const size_t sizes[] = { 1, 2, 100, 16383, 16384, 16385, 65536 + 7, 1 << 20, 16u << 20 };
    uint8_t *buf = malloc((16u << 20) + 1);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        weft_reader_t *r;
        weft_writer_t *w;
        weft_stream_opts_t o = cli_opts(ct);
        CHECK_EQ(weft_open_connection("127.0.0.1", port, &o, &r, &w), 0);
        CHECK(weft_writer_is_tls(w));
        struct sender sd = { .w = w, .size = sizes[k], .seed = k + 1 };
        weft_task_t *t;
        CHECK_EQ(weft_create_task(&t, send_all, &sd, NULL), 0);
        size_t got = 0;
        for (;;) {
            size_t n;
            int rc = weft_reader_read(r, buf + got, (16u << 20) + 1 - got, &n);
            if (rc != 0)
                fprintf(stderr, "read: %s (%s)\n", weft_err_name(rc), weft_error_message());
            CHECK_EQ(rc, 0);
            if (n == 0)
                break;
            got += n;
        }
        CHECK_EQ(weft_await(t, NULL), 0);
        weft_task_release(t);
        CHECK_EQ(sd.rc, 0);
        CHECK_EQ(got, sizes[k]);
        for (size_t i = 0; i < got; i++)
            if (buf[i] != pat(k + 1, i)) {
                fprintf(stderr, "size %zu: byte %zu differs\n", sizes[k], i);
                CHECK(0);
            }
        CHECK(weft_reader_at_eof(r));
        CHECK_EQ(weft_reader_exception(r), 0);   /* the server ended with close_notify */
        finish(r, w);
    }
    free(buf);
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    weft_tls_release(ct);
    return 0;
}

static void test_echo_sizes(void) { CHECK_EQ(run_main(2, echo_sizes_main, NULL), 0); }

/* ---- 2. many clients on a 2-loop server --------------------------------------------------- */

struct many_cli {
    int port, id, rc;
    weft_tls_t *tls;
    unsigned *arrived;
    weft_event_t *all_in;
    weft_server_t *srv;
    size_t *peak;
};

static int many_client(void *arg, weft_value_t *out)
{
    (void)out;
    struct many_cli *c = arg;
    weft_reader_t *r;
    weft_writer_t *w;
    weft_stream_opts_t o = cli_opts(c->tls);
    int rc = weft_open_connection("127.0.0.1", c->port, &o, &r, &w);
    if (rc < 0) {
        c->rc = rc;
        if (__atomic_add_fetch(c->arrived, 1, __ATOMIC_SEQ_CST) == NCLIENTS)
            weft_event_set(c->all_in);
        return 0;
    }
    uint8_t ob[3000], ib[3000];
    size_t size = 1 + ((size_t)c->id * 7919) % sizeof ob;
    for (size_t i = 0; i < size; i++)
        ob[i] = pat((uint64_t)c->id, i);
    size_t n;
    if ((rc = weft_writer_write(w, ob, size)) == 0 && (rc = weft_writer_drain(w)) == 0 &&
        (rc = weft_reader_readexactly(r, ib, size, &n)) == 0 && memcmp(ib, ob, size) != 0)
        rc = -1000;
    if (__atomic_add_fetch(c->arrived, 1, __ATOMIC_SEQ_CST) == NCLIENTS) {
        *c->peak = weft_server_connections(c->srv);
        weft_event_set(c->all_in);
    }
    if (rc == 0)
        rc = weft_event_wait(c->all_in);
    finish(r, w);
    c->rc = rc;
    return 0;
}

struct many {
    weft_runtime_t *rt;
    weft_serve_mode_t mode;
};

static int many_main(void *arg, weft_value_t *out)
{
    (void)out;
    struct many *m = arg;
    weft_tls_t *st = server_ctx(), *ct = client_ctx();
    weft_server_t *s;
    weft_server_opts_t so = { .mode = m->mode, .backlog = 4096, .stream = { .tls = st } };
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &so, &s), 0);
    CHECK_EQ(weft_server_nloops(s), 2);
    struct many_cli *cl = calloc(NCLIENTS, sizeof *cl);
    weft_task_t **ts = calloc(NCLIENTS, sizeof *ts);
    unsigned arrived = 0;
    size_t peak = 0;
    weft_event_t *all_in;
    CHECK_EQ(weft_event_new(&all_in), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        cl[i] = (struct many_cli){ .port = weft_server_port(s), .id = i, .tls = ct, .arrived = &arrived,
                                   .all_in = all_in, .srv = s, .peak = &peak };
        CHECK_EQ(weft_spawn_on(weft_runtime_loop(m->rt, i % 2), &ts[i], many_client, &cl[i],
                               &(weft_task_opts_t){ .stack_size = 64 * 1024 }),
                 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        CHECK_EQ(weft_await(ts[i], NULL), 0);
        weft_task_release(ts[i]);
        if (cl[i].rc != 0)
            fprintf(stderr, "client %d: %s\n", i, weft_err_name(cl[i].rc));
        CHECK_EQ(cl[i].rc, 0);
    }
    CHECK_EQ(peak, NCLIENTS);   /* every TLS connection was open at the same time */
    weft_event_free(all_in);
    CHECK_EQ(weft_server_shutdown(s, 10.0), 0);
    printf("  %d TLS clients, per loop:", NCLIENTS);
    for (int i = 0; i < 2; i++) {
        weft_server_loop_stats_t ls;
        CHECK_EQ(weft_server_loop_stats(s, i, &ls), 0);
        CHECK(ls.accepted > 0);   /* both loops served TLS connections */
        printf(" %llu", (unsigned long long)ls.accepted);
    }
    printf("\n");
    weft_server_free(s);
    weft_tls_release(st);
    weft_tls_release(ct);
    free(cl);
    free(ts);
    return 0;
}

static void run_many(weft_serve_mode_t mode)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 2 }, &rt), 0);
    struct many m = { .rt = rt, .mode = mode };
    CHECK_EQ(weft_runtime_run(rt, many_main, &m, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

static void test_many_reuseport(void) { run_many(WEFT_SERVE_REUSEPORT); }
static void test_many_handoff(void) { run_many(WEFT_SERVE_HANDOFF); }

/* ---- 3. refusals ------------------------------------------------------------------------ */

static int refuse_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *good = server_ctx(), *ct = client_ctx(), *rogue;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_pem = pki.rogue_cert, .key_pem = pki.rogue_key },
                          &rogue),
             0);
    weft_server_t *sg, *sr;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &(weft_server_opts_t){ .stream = { .tls = good } },
                               &sg),
             0);
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &(weft_server_opts_t){ .stream = { .tls = rogue } },
                               &sr),
             0);
    weft_reader_t *r = (weft_reader_t *)1;
    weft_writer_t *w = (weft_writer_t *)1;
    weft_stream_opts_t o = cli_opts(ct);

    /* an untrusted (self-signed) certificate */
    int rc = weft_open_connection("127.0.0.1", weft_server_port(sr), &o, &r, &w);
    CHECK_EQ(rc, WEFT_ECERT);
    CHECK(r == NULL && w == NULL);
    CHECK(weft_error_message() && strstr(weft_error_message(), "certificate verify failed"));
    printf("  untrusted: %s\n", weft_error_message());

    /* a trusted certificate for another name */
    o.server_hostname = "example.com";
    rc = weft_open_connection("127.0.0.1", weft_server_port(sg), &o, &r, &w);
    CHECK_EQ(rc, WEFT_EHOSTMISMATCH);
    CHECK(weft_error_message() && strstr(weft_error_message(), "hostname mismatch"));
    printf("  wrong name: %s\n", weft_error_message());

    /* the IP literal is checked against the certificate's IP address */
    o.server_hostname = NULL;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(sg), &o, &r, &w), 0);
    finish(r, w);
    /* "" turns the name check off (the chain is still verified) */
    o.server_hostname = "";
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(sg), &o, &r, &w), 0);
    finish(r, w);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(sr), &o, &r, &w), WEFT_ECERT);

    /* a client without the CA refuses the good server too (no system CA signs it) */
    weft_tls_t *sys;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ 0 }, &sys), 0);
    o = cli_opts(sys);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(sg), &o, &r, &w), WEFT_ECERT);
    /* no_verify accepts anything */
    weft_tls_t *nv;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .no_verify = true }, &nv), 0);
    o = cli_opts(nv);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(sr), &o, &r, &w), 0);
    weft_tls_info_t info;
    CHECK_EQ(weft_writer_tls_info(w, &info), 0);
    CHECK(info.has_peer_cert && !info.peer_verified);
    finish(r, w);

    /* a server that requires client certificates refuses a client without one */
    weft_tls_t *mtls;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_pem = pki.cert, .key_pem = pki.key,
                                              .ca_pem = pki.ca, .require_client_cert = true },
                          &mtls),
             0);
    weft_server_t *sm;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &(weft_server_opts_t){ .stream = { .tls = mtls } },
                               &sm),
             0);
    o = cli_opts(ct);
    rc = weft_open_connection("127.0.0.1", weft_server_port(sm), &o, &r, &w);
    if (rc == 0) {   /* TLS 1.3: the client's handshake ends before the server judges it */
        uint8_t b[4];
        size_t n;
        weft_writer_write(w, "ping", 4);
        rc = weft_reader_read(r, b, sizeof b, &n);
        printf("  no client cert: %s (%s)\n", weft_err_name(rc), weft_error_message());
        finish(r, w);
    }
    CHECK_EQ(rc, WEFT_ECERT);
    /* ... and accepts one with a certificate the CA signed */
    weft_tls_t *withcert;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .ca_pem = pki.ca, .cert_pem = pki.cert, .key_pem = pki.key }, &withcert),
             0);
    o = cli_opts(withcert);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(sm), &o, &r, &w), 0);
    uint8_t b[4];
    CHECK_EQ(weft_writer_write(w, "ping", 4), 0);
    CHECK_EQ(weft_reader_readexactly(r, b, 4, NULL), 0);
    CHECK(memcmp(b, "ping", 4) == 0);
    finish(r, w);

    weft_server_free(sg);
    weft_server_free(sr);
    weft_server_free(sm);
    weft_tls_release(good);
    weft_tls_release(rogue);
    weft_tls_release(ct);
    weft_tls_release(sys);
    weft_tls_release(nv);
    weft_tls_release(mtls);
    weft_tls_release(withcert);
    return 0;
}

static void test_refusals(void) { CHECK_EQ(run_main(1, refuse_main, NULL), 0); }

/* ---- 4. timeouts and cancellation in the handshake ------------------------------------------ */

static int hs_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *ct = client_ctx();
    int port, lfd = silent_listener(&port);
    weft_reader_t *r;
    weft_writer_t *w;
    weft_stream_opts_t o = cli_opts(ct);
    o.tls_handshake_timeout = 0.3;
    CHECK_EQ(weft_open_connection("127.0.0.1", port, &o, &r, &w), WEFT_ETIMEDOUT);
    CHECK(weft_error_message() && strstr(weft_error_message(), "handshake"));
    printf("  silent peer: %s\n", weft_error_message());

    /* cancelled from outside while handshaking: a timeout scope around it */
    o.tls_handshake_timeout = 0;   /* 60 s default */
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.2), 0);
    int rc = weft_open_connection("127.0.0.1", port, &o, &r, &w);
    CHECK_EQ(rc, WEFT_ECANCELED);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    close(lfd);
    weft_tls_release(ct);
    return 0;
}

static void test_handshake_timeout(void) { CHECK_EQ(run_main(1, hs_timeout_main, NULL), 0); }

/* A plain server that answers a ClientHello with garbage, or with the start of
 * a record that never completes. */
static int bad_peer(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    const char *what = arg;
    uint8_t b[512];
    size_t n;
    int rc = weft_reader_read(r, b, sizeof b, &n);
    if (rc < 0 || n == 0)
        return 0;
    if (strcmp(what, "garbage") == 0)
        weft_writer_write(w, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    else
        weft_writer_write(w, "\x16\x03\x03\x00\x50\x02\x00\x00", 8);   /* 80-byte record, 3 bytes sent */
    while (weft_reader_read(r, b, sizeof b, &n) == 0 && n > 0) {
    }
    return 0;
}

static int bad_peer_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *ct = client_ctx(), *st = server_ctx();
    weft_server_t *sg, *ss;
    CHECK_EQ(weft_start_server(bad_peer, "garbage", "127.0.0.1", 0, NULL, &sg), 0);
    CHECK_EQ(weft_start_server(bad_peer, "stall", "127.0.0.1", 0, NULL, &ss), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    weft_stream_opts_t o = cli_opts(ct);
    o.tls_handshake_timeout = 30;   /* garbage must fail on its own, long before this */
    int rc = weft_open_connection("127.0.0.1", weft_server_port(sg), &o, &r, &w);
    CHECK_EQ(rc, WEFT_ETLS);
    CHECK(weft_error_message() && *weft_error_message());
    printf("  garbage from the server: %s\n", weft_error_message());
    o.tls_handshake_timeout = 0.3;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(ss), &o, &r, &w), WEFT_ETIMEDOUT);
    printf("  server stalls mid-record: %s\n", weft_error_message());

    /* the server side: garbage and a stalled ClientHello, reported in debug mode */
    weft_loop_t *loop = weft_running_loop();
    struct seen seen = { 0 };
    weft_loop_set_exception_handler(loop, on_exception, &seen);
    weft_server_t *ts;
    weft_server_opts_t so = { .stream = { .tls = st, .tls_handshake_timeout = 0.3 } };
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &so, &ts), 0);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(ts), NULL, &r, &w), 0);
    CHECK_EQ(weft_writer_write(w, "GET / HTTP/1.0\r\n\r\n", 18), 0);
    void *all;
    size_t len;
    rc = weft_reader_read_all(r, 1 << 20, &all, &len);   /* the server's alert, then the end */
    CHECK(rc == 0 || rc == UV_ECONNRESET);
    free(all);
    finish(r, w);
    while (seen.count < 1)
        weft_sleep(0.01);
    CHECK_EQ(seen.code, WEFT_ETLS);
    printf("  garbage from the client (server side): %s\n", seen.detail);

    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(ts), NULL, &r, &w), 0);
    CHECK_EQ(weft_writer_write(w, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03", 10), 0);   /* a ClientHello's start */
    rc = weft_reader_read_all(r, 1 << 20, &all, &len);   /* ends when the server gives up */
    CHECK(rc == 0 || rc == UV_ECONNRESET);
    free(all);
    finish(r, w);
    while (seen.count < 2)
        weft_sleep(0.01);
    CHECK_EQ(seen.code, WEFT_ETIMEDOUT);
    printf("  client stalls mid-handshake (server side): %s\n", seen.detail);
    CHECK_EQ(weft_server_shutdown(ts, 5.0), 0);

    /* a server shut down while a connection is still handshaking cancels it */
    int port, lfd;
    (void)lfd;
    so.stream.tls_handshake_timeout = 0;
    weft_server_t *s2;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &so, &s2), 0);
    port = weft_server_port(s2);
    CHECK_EQ(weft_open_connection("127.0.0.1", port, NULL, &r, &w), 0);
    while (weft_server_connections(s2) < 1)
        weft_sleep(0.01);
    CHECK_EQ(weft_server_shutdown(s2, 0.05), 1);
    CHECK_EQ(weft_server_connections(s2), 0);
    finish(r, w);
    weft_server_free(s2);

    weft_server_free(ts);
    weft_server_free(sg);
    weft_server_free(ss);
    weft_tls_release(ct);
    weft_tls_release(st);
    return 0;
}

static void test_bad_peers(void)
{
    /* debug mode from the start: server-side handshake failures are reported only then */
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1, .debug = true }, &rt), 0);
    CHECK_EQ(weft_runtime_run(rt, bad_peer_main, NULL, NULL, NULL), 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
}

/* ---- 5. cancellation during read and drain ----------------------------------------------------- */

#define BIG ((size_t)24 << 20)

struct gate {
    weft_event_t *go;
    int rc;
    bool checked;
};

/* Reads nothing until told, then checks BIG bytes of the pattern and answers "K". */
static int slow_reader(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    struct gate *g = arg;
    uint8_t b[4];
    int rc = weft_reader_readexactly(r, b, 4, NULL);   /* "ping" round trip first */
    if (rc == 0)
        rc = weft_writer_write(w, b, 4);
    if (rc == 0)
        rc = weft_event_wait(g->go);
    uint8_t *buf = malloc(1 << 16);
    size_t off = 0;
    while (rc == 0 && off < BIG) {
        size_t n;
        if ((rc = weft_reader_read(r, buf, 1 << 16, &n)) < 0 || n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            if (buf[i] != pat(77, off + i))
                rc = -1000;
        off += n;
    }
    free(buf);
    g->checked = rc == 0 && off == BIG;
    if (rc == 0)
        rc = weft_writer_write(w, "K", 1);
    g->rc = rc;
    return rc;
}

static int cancel_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *st = server_ctx(), *ct = client_ctx();
    struct gate g = { 0 };
    CHECK_EQ(weft_event_new(&g.go), 0);
    weft_server_t *s;
    CHECK_EQ(weft_start_server(slow_reader, &g, "127.0.0.1", 0, &(weft_server_opts_t){ .stream = { .tls = st } }, &s),
             0);
    weft_reader_t *r;
    weft_writer_t *w;
    weft_stream_opts_t o = cli_opts(ct);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), &o, &r, &w), 0);

    /* a read cancelled before anything came, then the data comes and none is lost */
    weft_timeout_t to;
    uint8_t b[8];
    size_t n;
    CHECK_EQ(weft_timeout_enter(&to, 0.05), 0);
    int rc = weft_reader_read(r, b, sizeof b, &n);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK_EQ(weft_writer_write(w, "ping", 4), 0);
    CHECK_EQ(weft_reader_readexactly(r, b, 4, &n), 0);
    CHECK(memcmp(b, "ping", 4) == 0);

    /* a drain cancelled while the server does not read: nothing is dropped */
    uint8_t *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = pat(77, i);
    CHECK_EQ(weft_writer_write(w, big, BIG), 0);
    free(big);
    CHECK(weft_writer_get_write_buffer_size(w) > 0);
    CHECK_EQ(weft_timeout_enter(&to, 0.1), 0);
    rc = weft_writer_drain(w);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    weft_event_set(g.go);
    CHECK_EQ(weft_writer_drain(w), 0);
    CHECK_EQ(weft_reader_readexactly(r, b, 1, &n), 0);
    CHECK_EQ(b[0], 'K');
    CHECK(g.checked);
    CHECK_EQ(g.rc, 0);
    finish(r, w);
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    weft_event_free(g.go);
    weft_tls_release(st);
    weft_tls_release(ct);
    return 0;
}

static void test_cancel_read_drain(void) { CHECK_EQ(run_main(1, cancel_main, NULL), 0); }

/* ---- 6. resets, truncation ------------------------------------------------------------------- */

static int rude_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    const char *how = arg;
    uint8_t b[2];
    int rc = weft_writer_write(w, "hello", 5);
    if (rc == 0)
        rc = weft_reader_readexactly(r, b, 2, NULL);   /* the client read "hello" */
    if (rc < 0)
        return rc;
    weft_extra_info_t info;
    weft_writer_get_extra_info(w, &info);
    if (strcmp(how, "garbage") == 0) {
        /* plain text where the next record should start */
        send(info.fd, "this is not a TLS record\r\n", 26, MSG_NOSIGNAL);
        uint8_t x;
        weft_reader_read(r, &x, 1, &(size_t){ 0 });   /* until the client gives up */
    } else if (strcmp(how, "reset") == 0) {
        /* half a record straight on the socket, then a reset */
        send(info.fd, "\x17\x03\x03\x00\x40\x01\x02\x03\x04\x05", 10, MSG_NOSIGNAL);
        weft_sleep(0.05);   /* usually lets the client take the bytes before the reset (see below) */
        weft_writer_abort(w);
    } else {
        /* end of TCP stream without close_notify */
        shutdown(info.fd, SHUT_WR);
        while (weft_reader_read(r, b, sizeof b, &(size_t){ 0 }) == 0 && weft_reader_buffered(r)) {
        }
        weft_sleep(0.2);   /* let the client read the end first */
        weft_writer_abort(w);
    }
    return 0;
}

static int rude_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *st = server_ctx(), *ct = client_ctx();
    const char *hows[] = { "reset", "truncate", "garbage" };
    for (int k = 0; k < 3; k++) {
        weft_server_t *s;
        CHECK_EQ(weft_start_server(rude_handler, (void *)hows[k], "127.0.0.1", 0,
                                   &(weft_server_opts_t){ .stream = { .tls = st } }, &s),
                 0);
        weft_reader_t *r;
        weft_writer_t *w;
        weft_stream_opts_t o = cli_opts(ct);
        CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), &o, &r, &w), 0);
        uint8_t b[16];
        size_t n;
        CHECK_EQ(weft_reader_readexactly(r, b, 5, &n), 0);
        CHECK(memcmp(b, "hello", 5) == 0);
        CHECK_EQ(weft_writer_write(w, "go", 2), 0);
        int rc = weft_reader_read(r, b, sizeof b, &n);
        printf("  %s: %s (%s)\n", hows[k], weft_err_name(rc), weft_error_message() ? weft_error_message() : "");
        if (k == 0)   /* when the reset arrives with the bytes, libuv reports a plain end of stream
                         (POLLHUP after a short read): the cut record is then WEFT_ETLSEOF */
            CHECK(rc == UV_ECONNRESET || rc == WEFT_ETLSEOF);
        else if (k == 2) {   /* garbage after the handshake: the stream fails with OpenSSL's reason */
            CHECK_EQ(rc, WEFT_ETLS);
            CHECK(weft_error_message() && *weft_error_message());
            CHECK(weft_writer_tls_error(w) && *weft_writer_tls_error(w));
            CHECK_EQ(weft_writer_write(w, "x", 1), WEFT_ETLS);
        } else {
            CHECK_EQ(rc, WEFT_ETLSEOF);
            CHECK(strstr(weft_error_message(), "close_notify"));
            CHECK_EQ(weft_reader_exception(r), WEFT_ETLSEOF);
        }
        finish(r, w);
        CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
        weft_server_free(s);
    }
    weft_tls_release(st);
    weft_tls_release(ct);
    return 0;
}

static void test_reset_and_truncation(void) { CHECK_EQ(run_main(1, rude_main, NULL), 0); }

/* The handler leaves 32 MiB for a client that never reads: the graceful close
 * (close_notify after the data) cannot finish, and tls_shutdown_timeout
 * aborts it. Without that bound the server would wait forever. */
static int flood_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)r;
    (void)arg;
    size_t n = (size_t)32 << 20;
    uint8_t *b = calloc(1, n);
    int rc = b ? weft_writer_write(w, b, n) : WEFT_ENOMEM;
    free(b);
    return rc;
}

static int shutdown_timeout_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *st = server_ctx(), *ct = client_ctx();
    weft_server_t *s;
    weft_server_opts_t so = { .stream = { .tls = st, .tls_shutdown_timeout = 0.3 } };
    CHECK_EQ(weft_start_server(flood_handler, NULL, "127.0.0.1", 0, &so, &s), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    weft_stream_opts_t o = cli_opts(ct);
    o.limit = 4096;   /* the client buffers little before it stops reading the socket */
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), &o, &r, &w), 0);
    while (weft_server_connections(s) < 1)
        CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(weft_server_shutdown(s, WEFT_NO_TIMEOUT), 0);   /* returns once the aborted connection is gone */
    CHECK(weft_reader_buffered(r) < ((size_t)32 << 20));
    uint8_t *b = malloc(1 << 16);
    size_t n, total = 0;
    int rc;
    while ((rc = weft_reader_read(r, b, 1 << 16, &n)) == 0 && n > 0)
        total += n;
    free(b);
    printf("  client read %zu of %d bytes, then %s\n", total, 32 << 20, weft_err_name(rc));
    CHECK(total < ((size_t)32 << 20));
    CHECK(rc == UV_ECONNRESET || rc == WEFT_ETLSEOF);
    finish(r, w);
    weft_server_free(s);
    weft_tls_release(st);
    weft_tls_release(ct);
    return 0;
}

static void test_shutdown_timeout(void) { CHECK_EQ(run_main(1, shutdown_timeout_main, NULL), 0); }

/* ---- 7. start_tls, info, ALPN, resumption ------------------------------------------------------- */

static int starttls_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    weft_tls_t *st = arg;
    char line[64];
    size_t n;
    int rc = weft_reader_readline(r, line, sizeof line, &n);
    if (rc < 0)
        return rc;
    if (n != 9 || memcmp(line, "STARTTLS\n", 9) != 0)
        return -1000;
    if ((rc = weft_writer_write(w, "OK\n", 3)) < 0)
        return rc;
    if ((rc = weft_start_tls(r, w, st, NULL)) < 0)
        return rc;
    return echo_handler(r, w, NULL);
}

static int starttls_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    const char *salpn[] = { "http/1.1", "h2" }, *calpn[] = { "h2", "http/1.1" };
    weft_tls_t *st, *ct;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_pem = pki.cert, .key_pem = pki.key,
                                              .alpn = salpn, .nalpn = 2 },
                          &st),
             0);
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .ca_pem = pki.ca, .alpn = calpn, .nalpn = 2 }, &ct), 0);
    weft_server_t *s;
    CHECK_EQ(weft_start_server(starttls_handler, st, "127.0.0.1", 0, NULL, &s), 0);
    for (int round = 0; round < 2; round++) {
        weft_reader_t *r;
        weft_writer_t *w;
        CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), 0);
        CHECK(!weft_writer_is_tls(w));
        weft_tls_info_t info;
        CHECK_EQ(weft_writer_tls_info(w, &info), WEFT_EINVAL);
        CHECK_EQ(weft_writer_write(w, "STARTTLS\n", 9), 0);
        char line[16];
        size_t n;
        CHECK_EQ(weft_reader_readline(r, line, sizeof line, &n), 0);
        CHECK(n == 3 && memcmp(line, "OK\n", 3) == 0);
        CHECK_EQ(weft_start_tls(r, w, ct, NULL), WEFT_EINVAL);   /* no name to verify: nothing changed */
        CHECK(!weft_writer_is_tls(w));
        CHECK_EQ(weft_start_tls(r, w, ct, &(weft_stream_opts_t){ .server_hostname = "localhost" }), 0);
        CHECK(weft_writer_is_tls(w));
        CHECK_EQ(weft_start_tls(r, w, ct, NULL), WEFT_EINVALSTATE);
        uint8_t ob[5000], ib[5000];
        for (size_t i = 0; i < sizeof ob; i++)
            ob[i] = pat(9, i);
        CHECK_EQ(weft_writer_write(w, ob, sizeof ob), 0);
        CHECK_EQ(weft_writer_drain(w), 0);
        CHECK_EQ(weft_reader_readexactly(r, ib, sizeof ib, &n), 0);
        CHECK(memcmp(ib, ob, sizeof ob) == 0);
        CHECK_EQ(weft_writer_tls_info(w, &info), 0);
        printf("  %s %s (%d bits), ALPN %s, peer %s, issuer %s, resumed %d\n", info.version, info.cipher,
               info.cipher_bits, info.alpn, info.peer_subject, info.peer_issuer, info.session_reused);
        CHECK_STR(info.version, "TLSv1.3");
        CHECK(info.cipher[0] && info.cipher_bits >= 128);
        CHECK_STR(info.alpn, "http/1.1");   /* the server's preference */
        CHECK(info.has_peer_cert && info.peer_verified);
        CHECK(strstr(info.peer_subject, "CN=localhost"));
        CHECK(strstr(info.peer_issuer, "CN=weft test CA"));
        CHECK_STR(info.server_hostname, "localhost");
        CHECK_EQ(info.session_reused, round == 1);   /* the second connection resumes the first's session */
        unsigned char *der;
        size_t dlen;
        CHECK_EQ(weft_writer_tls_peer_cert_der(w, &der, &dlen), 0);
        CHECK(dlen > 100 && der[0] == 0x30);
        free(der);
        CHECK(weft_writer_ssl_object(w) != NULL);
        CHECK_EQ(weft_writer_write_eof(w), 0);   /* close_notify; the server's echo loop ends */
        CHECK_EQ(weft_reader_read(r, ib, sizeof ib, &n), 0);
        CHECK_EQ(n, 0);
        CHECK_EQ(weft_reader_exception(r), 0);
        finish(r, w);
    }
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    weft_tls_release(st);
    weft_tls_release(ct);
    return 0;
}

static void test_start_tls_info(void) { CHECK_EQ(run_main(1, starttls_main, NULL), 0); }

/* ---- 8. contexts from files, bad material ------------------------------------------------------- */

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/weft-tls-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
    return path;
}

static int files_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    char *cert = write_tmp(pki.cert), *key = write_tmp(pki.key), *ca = write_tmp(pki.ca);
    weft_tls_t *st, *ct, *bad;
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_file = cert, .key_file = key }, &st), 0);
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .ca_file = ca }, &ct), 0);
    weft_server_t *s;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &(weft_server_opts_t){ .stream = { .tls = st } },
                               &s),
             0);
    weft_reader_t *r;
    weft_writer_t *w;
    weft_stream_opts_t o = cli_opts(ct);
    CHECK_EQ(weft_open_connection("localhost", weft_server_port(s), &(weft_stream_opts_t){ .tls = ct, .family = AF_INET },
                                  &r, &w),
             0);
    uint8_t b[3];
    CHECK_EQ(weft_writer_write(w, "abc", 3), 0);
    CHECK_EQ(weft_reader_readexactly(r, b, 3, NULL), 0);
    CHECK(memcmp(b, "abc", 3) == 0);
    finish(r, w);
    (void)o;

    /* contexts on the wrong side */
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), &(weft_stream_opts_t){ .tls = st }, &r, &w),
             WEFT_EINVAL);
    weft_server_t *bad_srv;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, &(weft_server_opts_t){ .stream = { .tls = ct } },
                               &bad_srv),
             WEFT_EINVAL);
    CHECK(weft_tls_is_server(st) && !weft_tls_is_server(ct));

    /* bad material */
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true }, &bad), WEFT_EINVAL);
    CHECK(bad == NULL);
    CHECK_EQ(weft_tls_new(NULL, &bad), WEFT_EINVAL);
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_file = "/nonexistent/cert.pem" }, &bad), WEFT_ETLS);
    printf("  missing file: %s\n", weft_error_message());
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_pem = "not a PEM", .key_pem = pki.key }, &bad),
             WEFT_ETLS);
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .server = true, .cert_pem = pki.cert, .key_pem = pki.rogue_key }, &bad),
             WEFT_ETLS);
    printf("  wrong key: %s\n", weft_error_message());
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .min_version = 0x0301 }, &bad), WEFT_EINVAL);
    const char *empty[] = { "" };
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .alpn = empty, .nalpn = 1 }, &bad), WEFT_EINVAL);
    CHECK_EQ(weft_tls_new(&(weft_tls_opts_t){ .ca_pem = "nothing" }, &bad), WEFT_ETLS);
    CHECK_STR(weft_err_name(WEFT_EHOSTMISMATCH), "WEFT_EHOSTMISMATCH");
    CHECK(strstr(weft_strerror(WEFT_ETLSEOF), "close_notify"));

    /* TLS over a Unix socket: server_hostname names the certificate to expect */
    char upath[64];
    snprintf(upath, sizeof upath, "/tmp/weft-tls-%d.sock", (int)getpid());
    weft_server_t *us;
    CHECK_EQ(weft_start_unix_server(echo_handler, NULL, upath, &(weft_server_opts_t){ .stream = { .tls = st } }, &us),
             0);
    CHECK_EQ(weft_open_unix_connection(upath, &(weft_stream_opts_t){ .tls = ct }, &r, &w), WEFT_EINVAL);
    CHECK(r == NULL && w == NULL);
    CHECK_EQ(weft_open_unix_connection(upath, &(weft_stream_opts_t){ .tls = ct, .server_hostname = "localhost" }, &r,
                                       &w),
             0);
    CHECK_EQ(weft_writer_write(w, "xyz", 3), 0);
    CHECK_EQ(weft_reader_readexactly(r, b, 3, NULL), 0);
    CHECK(memcmp(b, "xyz", 3) == 0);
    finish(r, w);
    CHECK_EQ(weft_server_shutdown(us, 5.0), 0);
    weft_server_free(us);

    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    weft_tls_release(st);
    weft_tls_release(ct);
    unlink(cert);
    unlink(key);
    unlink(ca);
    free(cert);
    free(key);
    free(ca);
    return 0;
}

static void test_files_and_bad_material(void) { CHECK_EQ(run_main(1, files_main, NULL), 0); }

/* ---- 10. records in a burst and in pieces ------------------------------------------------ */

/* A raw OpenSSL client over memory BIOs on a blocking socket, so that the test
 * decides how the server receives the ciphertext: hundreds of records in one
 * send (the server's read-ahead takes them in one read and must decode every
 * one, not only the first), then records split into 1-byte sends, then
 * close_notify. The echo must come back complete and in order, and end with
 * the server's close_notify. It runs on a thread of its own (weft_to_thread)
 * while the loop serves. */
struct raw {
    int port;
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rb, *wb;
    int fd;
    size_t sent;   /* plaintext bytes sent, pattern pat(77, i) */
};

static void raw_flush(struct raw *c, size_t piece)
{
    char buf[4096];
    int n;
    while ((n = BIO_read(c->wb, buf, sizeof buf)) > 0)
        for (int off = 0; off < n;) {
            size_t k = piece && piece < (size_t)(n - off) ? piece : (size_t)(n - off);
            ssize_t m = send(c->fd, buf + off, k, MSG_NOSIGNAL);
            CHECK(m > 0);
            off += (int)m;
        }
}

/* one read() of ciphertext into the SSL object; 0 at the socket's end */
static ssize_t raw_fill(struct raw *c)
{
    char buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    CHECK(n >= 0);
    if (n > 0)
        CHECK_EQ(BIO_write(c->rb, buf, (int)n), (int)n);
    return n;
}

/* Connect to c->port and make a client SSL object over memory BIOs, its
 * handshake not begun (the caller moves the bytes: raw_flush, raw_fill). */
static void raw_open(struct raw *c, bool nodelay)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    if (nodelay) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK_EQ(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK((c->ctx = SSL_CTX_new(TLS_client_method())) != NULL);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    CHECK((c->ssl = SSL_new(c->ctx)) != NULL);
    c->rb = BIO_new(BIO_s_mem());
    c->wb = BIO_new(BIO_s_mem());
    SSL_set_bio(c->ssl, c->rb, c->wb);
    SSL_set_connect_state(c->ssl);
}

static void raw_close(struct raw *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}

static void raw_records(struct raw *c, int count, size_t piece)
{
    uint8_t m[64];
    for (int i = 0; i < count; i++) {
        size_t len = 1 + (size_t)(i * 7 % 60);
        for (size_t j = 0; j < len; j++)
            m[j] = pat(77, c->sent + j);
        size_t w = 0;
        CHECK_EQ(SSL_write_ex(c->ssl, m, len, &w), 1);   /* one record each */
        CHECK_EQ(w, len);
        c->sent += len;
    }
    raw_flush(c, piece);
}

static int raw_client(void *arg, weft_value_t *out)
{
    (void)out;
    struct raw *c = arg;
    raw_open(c, true);
    int r;
    while ((r = SSL_do_handshake(c->ssl)) != 1) {
        CHECK_EQ(SSL_get_error(c->ssl, r), SSL_ERROR_WANT_READ);
        raw_flush(c, 0);
        CHECK(raw_fill(c) > 0);
    }
    raw_flush(c, 0);
    raw_records(c, 400, 0);   /* a burst: 400 records, one send */
    raw_records(c, 5, 1);     /* pieces: every byte its own send */
    raw_records(c, 300, 0);
    CHECK(SSL_shutdown(c->ssl) >= 0);   /* close_notify: the server's read ends cleanly */
    raw_flush(c, 0);
    size_t got = 0;
    bool notify = false;
    for (;;) {
        uint8_t buf[4096];
        size_t n = 0;
        r = SSL_read_ex(c->ssl, buf, sizeof buf, &n);
        if (r == 1) {
            for (size_t i = 0; i < n; i++)
                if (buf[i] != pat(77, got + i)) {
                    fprintf(stderr, "echo byte %zu differs\n", got + i);
                    CHECK(0);
                }
            got += n;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) {
            notify = true;
            break;
        }
        CHECK_EQ(e, SSL_ERROR_WANT_READ);
        if (raw_fill(c) == 0)
            break;   /* socket ended without close_notify: checked below */
    }
    CHECK_EQ(got, c->sent);
    CHECK(notify);
    raw_close(c);
    return 0;
}

static int burst_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *st = server_ctx();
    weft_server_t *s;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0,
                               &(weft_server_opts_t){ .stream = { .tls = st } }, &s),
             0);
    weft_tls_release(st);
    struct raw c = { .port = weft_server_port(s) };
    CHECK_EQ(weft_to_thread(raw_client, &c, NULL), 0);
    CHECK(c.sent > 10000);
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    return 0;
}

static void test_records_burst_and_pieces(void) { CHECK_EQ(run_main(1, burst_main, NULL), 0); }

/* ---- 11. large writes, then close ------------------------------------------------------- */

/* A write of more than one record goes out as one buffer of many records (up
 * to 256 KiB at a time): the server writes pieces that cross that size and
 * the record size, small ones in between, and closes without draining. The
 * client must get every byte in order, then the close_notify behind them. */
static const size_t big_pieces[] = { 300000, 3, 16384, 16385, 1, 262144, 262145, 70000, 5 };

static int big_writer(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)r;
    (void)arg;
    size_t total = 0;
    for (size_t k = 0; k < sizeof big_pieces / sizeof big_pieces[0]; k++) {
        uint8_t *b = malloc(big_pieces[k]);
        for (size_t i = 0; i < big_pieces[k]; i++)
            b[i] = pat(91, total + i);
        int rc = weft_writer_write(w, b, big_pieces[k]);
        free(b);
        if (rc < 0)
            return rc;
        total += big_pieces[k];
    }
    return 0;   /* the server closes the writer: close_notify after the data */
}

static int big_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *st = server_ctx(), *ct = client_ctx();
    weft_server_t *s;
    CHECK_EQ(weft_start_server(big_writer, NULL, "127.0.0.1", 0, &(weft_server_opts_t){ .stream = { .tls = st } },
                               &s),
             0);
    weft_tls_release(st);
    size_t total = 0;
    for (size_t k = 0; k < sizeof big_pieces / sizeof big_pieces[0]; k++)
        total += big_pieces[k];
    weft_reader_t *r;
    weft_writer_t *w;
    weft_stream_opts_t o = cli_opts(ct);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), &o, &r, &w), 0);
    uint8_t *buf = malloc(total + 1);
    size_t got = 0;
    for (;;) {
        size_t n;
        CHECK_EQ(weft_reader_read(r, buf + got, total + 1 - got, &n), 0);
        if (n == 0)
            break;
        got += n;
    }
    CHECK_EQ(got, total);
    for (size_t i = 0; i < got; i++)
        if (buf[i] != pat(91, i)) {
            fprintf(stderr, "byte %zu differs\n", i);
            CHECK(0);
        }
    CHECK_EQ(weft_reader_exception(r), 0);   /* ended by close_notify, not a bare EOF */
    free(buf);
    finish(r, w);
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    weft_tls_release(ct);
    return 0;
}

static void test_large_writes_then_close(void) { CHECK_EQ(run_main(1, big_main, NULL), 0); }

/* start_tls when the peer's first TLS bytes came with the plain data: the
 * client sends "STARTTLS\n" and its ClientHello in one send(), so the server's
 * readline leaves the ClientHello in the reader's buffer and start_tls must
 * hand it to OpenSSL before anything more arrives. The client (OpenSSL on
 * memory BIOs, a thread of its own) then reads the plain "OK\n" and the
 * server's TLS records behind it, and echoes records of several sizes. */
static int early_client(void *arg, weft_value_t *out)
{
    (void)out;
    struct raw *c = arg;
    raw_open(c, false);
    CHECK_EQ(SSL_get_error(c->ssl, SSL_do_handshake(c->ssl)), SSL_ERROR_WANT_READ);
    char first[4096];
    memcpy(first, "STARTTLS\n", 9);
    int hello = BIO_read(c->wb, first + 9, (int)sizeof first - 9);
    CHECK(hello > 0 && BIO_pending(c->wb) == 0);
    CHECK_EQ(send(c->fd, first, 9 + (size_t)hello, MSG_NOSIGNAL), 9 + (ssize_t)hello);
    size_t plain = 0;   /* bytes of "OK\n" seen */
    int r;
    while ((r = SSL_do_handshake(c->ssl)) != 1) {
        CHECK_EQ(SSL_get_error(c->ssl, r), SSL_ERROR_WANT_READ);
        raw_flush(c, 0);
        char buf[4096];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        CHECK(n > 0);
        size_t k = 0;
        while (plain < 3 && k < (size_t)n)
            CHECK_EQ(buf[k++], "OK\n"[plain++]);
        if ((size_t)n > k)
            CHECK_EQ(BIO_write(c->rb, buf + k, (int)((size_t)n - k)), (int)((size_t)n - k));
    }
    raw_flush(c, 0);
    for (size_t len = 1; len <= 120000; len *= 7) {   /* 1 B to 115 KiB: up to 8 records a message */
        uint8_t *m = malloc(len), *e = malloc(len);
        CHECK(m && e);
        for (size_t j = 0; j < len; j++)
            m[j] = pat(len, j);
        size_t w = 0;
        while (w < len) {
            size_t k = 0;
            CHECK_EQ(SSL_write_ex(c->ssl, m + w, len - w, &k), 1);
            w += k;
        }
        raw_flush(c, 0);
        size_t got = 0;
        while (got < len) {
            size_t n = 0;
            r = SSL_read_ex(c->ssl, e + got, len - got, &n);
            if (r == 1) {
                got += n;
                continue;
            }
            CHECK_EQ(SSL_get_error(c->ssl, r), SSL_ERROR_WANT_READ);
            CHECK(raw_fill(c) > 0);
        }
        CHECK(memcmp(m, e, len) == 0);
        c->sent += len;
        free(m);
        free(e);
    }
    CHECK(SSL_shutdown(c->ssl) >= 0);
    raw_flush(c, 0);
    raw_close(c);
    return 0;
}

static int early_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_tls_t *st = server_ctx();
    weft_server_t *s;
    CHECK_EQ(weft_start_server(starttls_handler, st, "127.0.0.1", 0, NULL, &s), 0);
    struct raw c = { .port = weft_server_port(s) };
    CHECK_EQ(weft_to_thread(early_client, &c, NULL), 0);
    CHECK_EQ(c.sent, 1 + 7 + 49 + 343 + 2401 + 16807 + 117649);
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    weft_tls_release(st);
    return 0;
}

static void test_start_tls_early_bytes(void) { CHECK_EQ(run_main(1, early_main, NULL), 0); }

int main(int argc, char **argv)
{
    alarm(SANITIZED ? 280 : 200);   /* watchdog: the default action ends the process */
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * NCLIENTS + 200) {
        rl.rlim_cur = rl.rlim_max < 2 * NCLIENTS + 200 ? rl.rlim_max : 2 * NCLIENTS + 200;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * NCLIENTS + 200) {
            printf("skipped: need %d descriptors\n", 2 * NCLIENTS + 200);
            return 77;
        }
    }
    make_pki();
    RUN(test_echo_sizes);
    RUN(test_records_burst_and_pieces);
    RUN(test_large_writes_then_close);
    RUN(test_refusals);
    RUN(test_handshake_timeout);
    RUN(test_bad_peers);
    RUN(test_cancel_read_drain);
    RUN(test_reset_and_truncation);
    RUN(test_shutdown_timeout);
    RUN(test_start_tls_info);
    RUN(test_start_tls_early_bytes);
    RUN(test_files_and_bad_material);
    RUN(test_many_reuseport);
    RUN(test_many_handoff);
    free_pki();
    return 0;
}
