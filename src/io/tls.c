/* TLS over weft's streams, on OpenSSL.
 *
 * A connection with TLS has a transport (io/xport.h) between its socket and
 * its reader/writer: stream.c keeps doing the socket I/O on the loop, and this
 * file runs OpenSSL on the bytes, never on the socket itself. Each SSL object
 * has a BIO of this file's own kind (BIO_meth_new) over two buffers of the
 * connection: libuv reads ciphertext straight into the input buffer
 * (rbuf/input), OpenSSL's BIO reads take it from there, and SSL_read decrypts
 * it into the reader's buffer (weft__conn_rspace/rcommit). OpenSSL's BIO
 * writes (records, alerts, tickets) append to the output buffer, which goes
 * to the socket in one weft__conn_send once the OpenSSL call that filled it
 * returns, in order behind the bytes already queued: all the records of one
 * step (a handshake flight, the records of a large write) leave in one
 * socket write. So TLS runs on whichever loop owns the socket, and a context
 * is shared by every loop (OpenSSL's SSL_CTX is safe for that; the client
 * session cache below has its own lock).
 *
 * The handshake is driven by the bytes that arrive (pump) while the task that
 * asked for it waits in handshake(), bounded by a timeout scope. Errors are
 * classified into weft's TLS codes with OpenSSL's reason as the message.
 *
 * Lifetime: a tconn_t is referenced by its connection (until the socket's
 * close callback calls destroy), by a task waiting for the handshake, and by
 * its shutdown timer handle; the last one frees it and the SSL object. */
#include "io/xport.h"
#include "weft/timeout.h"
#include "weft/tls.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define IBUF_SIZE ((size_t)32 * 1024)  /* ciphertext in: two full records (16 KiB + overhead each) */
#define OBUF_KEEP ((size_t)64 * 1024)  /* a larger output buffer is freed once sent */
#define SESS_SLOTS 64
#define HS_TIMEOUT_DEFAULT 60.0
#define SD_TIMEOUT_DEFAULT 30.0

struct weft_tls {
    unsigned int refs;          /* atomic */
    SSL_CTX *ctx;
    bool server;
    bool verify;                /* client: verify the server */
    bool cache;                 /* client session cache on */
    unsigned char *alpn;        /* wire format (length-prefixed names) */
    unsigned int alpn_len;
    pthread_mutex_t mu;         /* the client session cache */
    struct {
        char *key;
        unsigned char *der;     /* the session, serialised: no OpenSSL object is shared between loops */
        size_t len;
    } sess[SESS_SLOTS];
    unsigned int sess_next;
};

typedef struct tconn {
    int refs;
    struct conn *c;             /* NULL once the socket is closed */
    weft_tls_t *tls;
    SSL *ssl;
    char *ibuf;                 /* ciphertext from the socket: [istart, iend) not yet taken by OpenSSL */
    size_t istart, iend;
    char *obuf;                 /* records OpenSSL wrote, not yet sent */
    size_t olen, ocap;
    bool hs_done, failed, got_close_notify, sent_close_notify;
    bool timer_inited;
    bool oom;                   /* the output buffer could not grow */
    int err;
    double hs_timeout, sd_timeout;
    char *host;                 /* client: server_hostname */
    char *sess_key;             /* client: "host:port" for the session cache */
    weft__task_t *hs_task;      /* waiting for the handshake */
    uv_timer_t timer;           /* shutdown timeout */
    char msg[256];
} tconn_t;

static const weft__xport_ops_t tls_ops;

/* ---- contexts ----------------------------------------------------------------------- */

/* OpenSSL's reason for the last error, then clear the queue. */
static void ossl_reason(char *buf, size_t cap, const char *what)
{
    unsigned long e = ERR_peek_error();   /* the first: the root cause */
    const char *r = NULL;
    if (e && ERR_GET_LIB(e) == ERR_LIB_SYS)
        r = strerror(ERR_GET_REASON(e));   /* "No such file or directory" */
    else if ((e = ERR_peek_last_error()) != 0)
        r = ERR_reason_error_string(e);
    if (r)
        snprintf(buf, cap, "%s: %s", what, r);
    else
        snprintf(buf, cap, "%s", what);
    ERR_clear_error();
}

static int ctx_fail(weft_tls_t *t, const char *what)
{
    char m[256];
    ossl_reason(m, sizeof m, what);
    weft_tls_release(t);
    return weft_raise(WEFT_ETLS, "%s", m);
}

/* Client: remember the newest session per host:port (TLS 1.3 tickets arrive
 * after the handshake). It is kept serialised, and each connection that
 * resumes it parses its own copy: sessions are then never shared between
 * loops, whose threads would otherwise meet inside OpenSSL's reference
 * counting of one SSL_SESSION. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    tconn_t *tc = SSL_get_app_data(ssl);
    if (!tc || !tc->sess_key || !SSL_SESSION_is_resumable(sess))
        return 0;
    int n = i2d_SSL_SESSION(sess, NULL);
    unsigned char *der = n > 0 ? malloc((size_t)n) : NULL, *p = der;
    if (!der || i2d_SSL_SESSION(sess, &p) != n) {
        free(der);
        ERR_clear_error();
        return 0;
    }
    weft_tls_t *t = tc->tls;
    pthread_mutex_lock(&t->mu);
    int slot = -1;
    for (int i = 0; i < SESS_SLOTS && slot < 0; i++)
        if (t->sess[i].key && strcmp(t->sess[i].key, tc->sess_key) == 0)
            slot = i;
    char *key = NULL;
    if (slot < 0) {
        if (!(key = weft__strdup(tc->sess_key))) {
            pthread_mutex_unlock(&t->mu);
            free(der);
            return 0;
        }
        slot = (int)(t->sess_next++ % SESS_SLOTS);
        free(t->sess[slot].key);
        t->sess[slot].key = key;
    }
    free(t->sess[slot].der);
    t->sess[slot].der = der;
    t->sess[slot].len = (size_t)n;
    pthread_mutex_unlock(&t->mu);
    return 0;   /* OpenSSL keeps its reference */
}

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)ssl;
    weft_tls_t *t = arg;
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, t->alpn, t->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;   /* no common protocol: go on without ALPN (Python does the same) */
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

static int version_ok(int v) { return v == 0 || v == WEFT_TLS_VERSION_1_2 || v == WEFT_TLS_VERSION_1_3; }

/* Certificate chain and key from PEM text in memory. */
static int use_pem(SSL_CTX *ctx, const char *cert, const char *key)
{
    BIO *b = BIO_new_mem_buf(cert, -1);
    if (!b)
        return 0;
    X509 *x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
    X509_free(x);
    while (ok) {
        X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!ca) {
            ERR_clear_error();   /* end of the chain */
            break;
        }
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            ok = 0;
        }
    }
    BIO_free(b);
    if (!ok)
        return 0;
    b = BIO_new_mem_buf(key ? key : cert, -1);
    if (!b)
        return 0;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1;
    EVP_PKEY_free(k);
    BIO_free(b);
    return ok;
}

static int add_ca_pem(SSL_CTX *ctx, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b)
        return 0;
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x) == 1)
            n++;
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(b);
    return n > 0;
}

/* Compute every certificate's cached extensions now, on this thread. OpenSSL
 * fills that cache lazily on first use, which would make the first
 * handshakes on several loops race to write what the others read. */
static void warm_certs(SSL_CTX *ctx)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x)
        X509_check_purpose(x, -1, 0);
    STACK_OF(X509) *chain = NULL;
    if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && chain)
        for (int i = 0; i < sk_X509_num(chain); i++)
            X509_check_purpose(sk_X509_value(chain, i), -1, 0);
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
    for (int i = 0; objs && i < sk_X509_OBJECT_num(objs); i++) {
        X509 *c = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (c)
            X509_check_purpose(c, -1, 0);
    }
    ERR_clear_error();
}

int weft_tls_new(const weft_tls_opts_t *o, weft_tls_t **out)
{
    if (out)
        *out = NULL;
    if (!o || !out)
        return WEFT_EINVAL;
    bool has_cert = o->cert_file || o->cert_pem;
    if ((o->server && !has_cert) || (!has_cert && (o->key_file || o->key_pem)) || !version_ok(o->min_version) ||
        !version_ok(o->max_version) || (o->max_version && o->min_version > o->max_version) || (o->nalpn && !o->alpn))
        return WEFT_EINVAL;
    size_t alen = 0;
    for (size_t i = 0; i < o->nalpn; i++) {
        size_t l = o->alpn[i] ? strlen(o->alpn[i]) : 0;
        if (l == 0 || l > 255)
            return WEFT_EINVAL;
        alen += 1 + l;
    }
    if (alen > 65535)
        return WEFT_EINVAL;
    weft_tls_t *t = calloc(1, sizeof *t);
    if (!t)
        return WEFT_ENOMEM;
    t->refs = 1;
    t->server = o->server;
    t->verify = !o->server && !o->no_verify;
    t->cache = !o->server && !o->no_session_cache;
    pthread_mutex_init(&t->mu, NULL);
    ERR_clear_error();
    t->ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (!t->ctx)
        return ctx_fail(t, "cannot create an SSL context");
    SSL_CTX *ctx = t->ctx;
    SSL_CTX_set_min_proto_version(ctx, o->min_version ? o->min_version : TLS1_2_VERSION);
    if (o->max_version)
        SSL_CTX_set_max_proto_version(ctx, o->max_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Take each record out of the pair in one read instead of header, then body: the bytes are
     * in memory already, but every BIO read is a trip through OpenSSL's BIO layer. Nothing
     * follows TLS on a connection (no unwrap), so reading past a record takes no one's bytes. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1)
        return ctx_fail(t, "bad cipher list");
    if (o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1)
        return ctx_fail(t, "bad TLS 1.3 cipher suites");
    if (o->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
            return ctx_fail(t, "cannot load the certificate chain file");
        if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file ? o->key_file : o->cert_file, SSL_FILETYPE_PEM) != 1)
            return ctx_fail(t, "cannot load the private key file");
    } else if (o->cert_pem && !use_pem(ctx, o->cert_pem, o->key_pem)) {
        return ctx_fail(t, "cannot load the certificate or key");
    }
    if (has_cert && SSL_CTX_check_private_key(ctx) != 1)
        return ctx_fail(t, "the private key does not match the certificate");
    if (o->ca_file && SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
        return ctx_fail(t, "cannot load the CA file");
    if (o->ca_pem && !add_ca_pem(ctx, o->ca_pem))
        return ctx_fail(t, "no CA certificate in ca_pem");
    if (t->verify && !o->ca_file && !o->ca_pem)
        SSL_CTX_set_default_verify_paths(ctx);   /* the system trust store */
    ERR_clear_error();
    if (t->verify)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    else if (o->server && o->require_client_cert)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (o->nalpn) {
        if (!(t->alpn = malloc(alen))) {
            weft_tls_release(t);
            return WEFT_ENOMEM;
        }
        unsigned char *p = t->alpn;
        for (size_t i = 0; i < o->nalpn; i++) {
            size_t l = strlen(o->alpn[i]);
            *p++ = (unsigned char)l;
            memcpy(p, o->alpn[i], l);
            p += l;
        }
        t->alpn_len = (unsigned int)alen;
        if (o->server)
            SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, t);
        else if (SSL_CTX_set_alpn_protos(ctx, t->alpn, t->alpn_len) != 0)
            return ctx_fail(t, "cannot set the ALPN protocols");
    }
    if (o->server) {
        static const unsigned char sid[] = "weft";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
        if (o->no_session_cache) {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
            SSL_CTX_set_num_tickets(ctx, 0);
        }
    } else if (t->cache) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    }
    warm_certs(ctx);
    *out = t;
    return 0;
}

weft_tls_t *weft_tls_retain(weft_tls_t *t)
{
    if (t)
        __atomic_add_fetch(&t->refs, 1, __ATOMIC_SEQ_CST);
    return t;
}

void weft_tls_release(weft_tls_t *t)
{
    if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_SEQ_CST) != 0)
        return;
    for (int i = 0; i < SESS_SLOTS; i++) {
        free(t->sess[i].key);
        free(t->sess[i].der);
    }
    SSL_CTX_free(t->ctx);
    free(t->alpn);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void *weft_tls_ssl_ctx(weft_tls_t *t) { return t ? t->ctx : NULL; }

bool weft_tls_is_server(const weft_tls_t *t) { return t && t->server; }

/* ---- connections: plumbing ----------------------------------------------------------- */

static void tc_unref(tconn_t *tc)
{
    if (--tc->refs > 0)
        return;
    SSL_free(tc->ssl);   /* and its BIO */
    free(tc->ibuf);
    free(tc->obuf);
    weft_tls_release(tc->tls);
    free(tc->host);
    free(tc->sess_key);
    free(tc);
}

static void set_msg(tconn_t *tc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void set_msg(tconn_t *tc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tc->msg, sizeof tc->msg, fmt, ap);
    va_end(ap);
}

/* OpenSSL wants an empty error queue before each call whose failure it
 * classifies; clearing an empty queue still costs a walk over it, so peek. */
static inline void clear_errors(void)
{
    if (ERR_peek_error())
        ERR_clear_error();
}

static void hs_wake(tconn_t *tc)
{
    weft__task_t *t = tc->hs_task;
    if (t) {
        tc->hs_task = NULL;
        weft__task_wake(t, 0);
    }
}

/* Send what OpenSSL wrote (one socket write for all of it). */
static int flush_out(tconn_t *tc)
{
    int rc = 0;
    if (tc->olen && tc->c)
        rc = weft__conn_send(tc->c, tc->obuf, tc->olen);
    tc->olen = 0;
    if (tc->ocap > OBUF_KEEP) {
        free(tc->obuf);
        tc->obuf = NULL;
        tc->ocap = 0;
    }
    return rc;
}

static bool cert_alert(int reason)
{
    switch (reason) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return true;
    default:
        return false;
    }
}

/* Turn OpenSSL's failure into a weft code and message; clears the error queue. */
static int classify(tconn_t *tc)
{
    if (tc->oom) {
        set_msg(tc, "out of memory");
        ERR_clear_error();
        return WEFT_ENOMEM;
    }
    unsigned long e = ERR_peek_last_error();
    int reason = ERR_GET_REASON(e);
    long vr = SSL_get_verify_result(tc->ssl);
    int code;
    if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK) {
        code = vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH ? WEFT_EHOSTMISMATCH
                                                                                           : WEFT_ECERT;
        if (code == WEFT_EHOSTMISMATCH)
            set_msg(tc, "certificate verify failed: hostname mismatch, certificate is not valid for '%s'",
                    tc->host ? tc->host : "");
        else
            set_msg(tc, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    } else if (e) {
        const char *rs = ERR_reason_error_string(e);
        code = ERR_GET_LIB(e) == ERR_LIB_SSL && cert_alert(reason) ? WEFT_ECERT : WEFT_ETLS;
        set_msg(tc, "%s", rs ? rs : "TLS error");
    } else {
        code = WEFT_ETLS;
        set_msg(tc, "TLS protocol error");
    }
    ERR_clear_error();
    return code;
}

/* Fatal: send the alert OpenSSL queued (best effort), close the connection. */
static void tc_fail(tconn_t *tc, int code)
{
    if (tc->failed)
        return;
    tc->failed = true;
    tc->err = code;
    if (tc->c) {
        flush_out(tc);
        weft__conn_fail(tc->c, code);
    }
    hs_wake(tc);
}

/* Run OpenSSL on what arrived: the handshake, then decryption into the reader. */
static void pump(tconn_t *tc)
{
    struct conn *c = tc->c;
    if (!c || tc->failed)
        return;
    clear_errors();
    if (!tc->hs_done) {
        int r = SSL_do_handshake(tc->ssl);
        if (r != 1) {
            int e = SSL_get_error(tc->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (flush_out(tc) < 0)
                    tc_fail(tc, UV_EPIPE);
                return;
            }
            tc_fail(tc, classify(tc));
            return;
        }
        tc->hs_done = true;
        hs_wake(tc);
    }
    while (!tc->got_close_notify) {
        size_t room = 0, got = 0;
        char *p = weft__conn_rspace(c, 16 * 1024, &room);
        if (!p) {
            set_msg(tc, "out of memory");
            tc_fail(tc, WEFT_ENOMEM);
            return;
        }
        int r = SSL_read_ex(tc->ssl, p, room, &got);
        if (r == 1) {
            weft__conn_rcommit(c, got);
            /* nothing left to decode: skip the SSL_read that would only say WANT_READ */
            if (tc->istart == tc->iend && !SSL_has_pending(tc->ssl))
                break;
            continue;
        }
        int e = SSL_get_error(tc->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {   /* close_notify: a clean end of stream */
            tc->got_close_notify = true;
            weft__conn_rclose(c);
            break;
        }
        tc_fail(tc, classify(tc));   /* (no WANT_WRITE: the BIO takes every byte) */
        return;
    }
    if (flush_out(tc) < 0)
        tc_fail(tc, UV_EPIPE);
}

/* ---- connections: the transport --------------------------------------------------------- */

/* The BIO between OpenSSL and the connection's buffers. A read takes what
 * the socket delivered (or says "retry" when there is nothing); a write
 * appends to the output buffer and always takes every byte, so OpenSSL never
 * waits on the socket: flush_out sends the buffer after each OpenSSL call. */
static int bio_read(BIO *b, char *out, int len)
{
    tconn_t *tc = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t have = tc->iend - tc->istart;
    if (have == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    if (len <= 0)
        return 0;
    size_t k = (size_t)len < have ? (size_t)len : have;
    memcpy(out, tc->ibuf + tc->istart, k);
    tc->istart += k;
    if (tc->istart == tc->iend)
        tc->istart = tc->iend = 0;
    return (int)k;
}

static int bio_write(BIO *b, const char *in, int len)
{
    tconn_t *tc = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    size_t n = (size_t)len;
    if (tc->ocap - tc->olen < n) {
        size_t cap = tc->ocap ? tc->ocap : 4096;
        while (cap - tc->olen < n)
            cap *= 2;   /* bounded: x_write sends the buffer once it holds STAGE_MAX */
        char *nb = realloc(tc->obuf, cap);
        if (!nb) {
            tc->oom = true;
            return -1;   /* no retry flag: OpenSSL fails the call, classify() says WEFT_ENOMEM */
        }
        tc->obuf = nb;
        tc->ocap = cap;
    }
    memcpy(tc->obuf + tc->olen, in, n);
    tc->olen += n;
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tconn_t *tc = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;   /* the output buffer is sent when OpenSSL returns */
    case BIO_CTRL_PENDING:
        return tc ? (long)(tc->iend - tc->istart) : 0;
    case BIO_CTRL_WPENDING:
        return tc ? (long)tc->olen : 0;
    default:
        return 0;
    }
}

static BIO_METHOD *g_bio_meth;
static pthread_once_t g_bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft stream");
    if (m && (BIO_meth_set_read(m, bio_read) != 1 || BIO_meth_set_write(m, bio_write) != 1 ||
              BIO_meth_set_ctrl(m, bio_ctrl) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    g_bio_meth = m;   /* kept for the process's life, like OpenSSL's own methods */
}

/* The method, made once for the process (NULL if OpenSSL could not make it). */
static BIO_METHOD *bio_method(void)
{
    pthread_once(&g_bio_once, bio_method_init);
    return g_bio_meth;
}


static char *x_rbuf(void *x, size_t *len)
{
    tconn_t *tc = x;
    *len = 0;
    if (!tc->ibuf && !(tc->ibuf = malloc(IBUF_SIZE)))
        return NULL;   /* libuv reports UV_ENOBUFS: the stream fails with WEFT_ENOMEM */
    if (tc->got_close_notify || tc->failed) {
        tc->istart = tc->iend = 0;   /* nothing will decode what follows: drop it */
    } else if (tc->istart) {         /* OpenSSL left bytes behind (it takes what fits its buffer) */
        memmove(tc->ibuf, tc->ibuf + tc->istart, tc->iend - tc->istart);
        tc->iend -= tc->istart;
        tc->istart = 0;
    }
    *len = IBUF_SIZE - tc->iend;   /* never 0: pump leaves the buffer empty while it decodes */
    return tc->ibuf + tc->iend;
}

static void x_input(void *x, const char *data, size_t n)
{
    tconn_t *tc = x;
    (void)data;   /* libuv read into the buffer at x_rbuf's pointer */
    tc->iend += n;
    pump(tc);
}

static int x_input_end(void *x, int status)
{
    tconn_t *tc = x;
    if (tc->failed)
        return tc->err;
    if (!tc->hs_done) {
        tc->failed = true;
        if (status == UV_EOF) {
            tc->err = WEFT_ETLSEOF;
            set_msg(tc, "the peer closed the connection during the TLS handshake");
        } else {
            tc->err = status;
        }
        hs_wake(tc);
        return tc->err;
    }
    if (status == UV_EOF && !tc->got_close_notify) {
        set_msg(tc, "the peer closed the connection without a TLS close_notify (possible truncation)");
        return WEFT_ETLSEOF;
    }
    return status;
}

/* A write of more than one record (16 KiB): its records gather in the
 * output buffer and go to the socket in pieces of about STAGE_MAX, instead of
 * one socket write per record. */
#define STAGE_MAX ((size_t)256 * 1024)

static int x_write(void *x, const char *data, size_t n)
{
    tconn_t *tc = x;
    if (tc->failed)
        return tc->err;
    if (!tc->hs_done)
        return WEFT_EINVALSTATE;
    if (tc->sent_close_notify)
        return UV_EPIPE;
    clear_errors();
    int rc = 0;
    while (n) {
        size_t w = 0;
        int r = SSL_write_ex(tc->ssl, data, n, &w);
        if (r == 1) {
            data += w;
            n -= w;
            if (tc->olen >= STAGE_MAX && (rc = flush_out(tc)) < 0)
                break;
            continue;
        }
        /* the BIO takes every byte, so no WANT_WRITE: a failure */
        tc_fail(tc, classify(tc));   /* sends the records before the failure, then the alert */
        return tc->err;
    }
    if (rc == 0)
        rc = flush_out(tc);
    return rc;
}

static void on_sd_timer(uv_timer_t *tm)
{
    tconn_t *tc = tm->data;
    if (tc->c && !weft__conn_closed(tc->c)) {
        set_msg(tc, "TLS shutdown timed out after %g s: connection aborted", tc->sd_timeout);
        weft__conn_abort(tc->c);
    }
}

static void x_shutdown(void *x, bool closing)
{
    tconn_t *tc = x;
    if (tc->hs_done && !tc->failed && !tc->sent_close_notify) {
        clear_errors();
        tc->sent_close_notify = true;
        SSL_shutdown(tc->ssl);   /* queues close_notify; we do not wait for the peer's */
        clear_errors();
        flush_out(tc);
    }
    if (closing && tc->sd_timeout > 0 && !tc->timer_inited && tc->c) {
        uv_loop_t *uv = weft_loop_uv(weft__conn_loop(tc->c));
        if (uv_timer_init(uv, &tc->timer) == 0) {
            tc->timer_inited = true;
            tc->timer.data = tc;
            tc->refs++;
            uv_timer_start(&tc->timer, on_sd_timer, (uint64_t)(tc->sd_timeout * 1000.0 + 0.5), 0);
        }
    }
}

static bool hs_cancel(weft__task_t *t, const char *msg)
{
    tconn_t *tc = t->wait_obj;
    if (tc->hs_task == t)
        tc->hs_task = NULL;
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

static int x_handshake(void *x)
{
    tconn_t *tc = x;
    weft__task_t *t;
    int rc;
    if (!tc->c)
        return UV_ECONNABORTED;
    if ((rc = weft__conn_task(tc->c, &t)) < 0)
        return rc;
    if (tc->hs_done)
        return 0;
    if (tc->hs_task)
        return WEFT_EINVALSTATE;
    tc->refs++;   /* the connection may close while we wait */
    pump(tc);     /* the client speaks first; a server may already hold the ClientHello */
    weft_timeout_t to;
    bool timed = tc->hs_timeout > 0 && !tc->hs_done && !tc->failed, expired = false;
    rc = timed ? weft_timeout_enter(&to, tc->hs_timeout) : 0;
    if (rc == 0) {
        while (!tc->hs_done && !tc->failed && tc->c) {
            tc->hs_task = t;
            rc = weft__task_suspend(t, WEFT__W_OTHER, hs_cancel, tc);
            if (tc->hs_task == t)
                tc->hs_task = NULL;
            if (rc < 0)
                break;
        }
        if (timed) {
            int inner = rc;
            rc = weft_timeout_exit(&to, rc);
            expired = inner == WEFT_ECANCELED && rc == WEFT_ETIMEDOUT;   /* our own deadline, not a socket error */
        }
    }
    if (rc == 0 && !tc->hs_done)
        rc = tc->failed ? tc->err : UV_ECONNABORTED;
    if (rc < 0) {
        if (expired)
            set_msg(tc, "TLS handshake is taking longer than %g seconds: connection aborted", tc->hs_timeout);
        if (!tc->failed) {
            tc->failed = true;
            tc->err = rc == WEFT_ECANCELED ? UV_ECONNABORTED : rc;
        }
        if (tc->c && !weft__conn_closed(tc->c))
            weft__conn_fail(tc->c, tc->err);
        if (rc != WEFT_ECANCELED && tc->msg[0])
            rc = weft_raise(rc, "%s", tc->msg);
    }
    tc_unref(tc);
    return rc;
}

static const char *x_errmsg(void *x)
{
    tconn_t *tc = x;
    return tc->msg[0] ? tc->msg : NULL;
}

static void on_timer_closed(uv_handle_t *h) { tc_unref(h->data); }

static void x_destroy(void *x)
{
    tconn_t *tc = x;
    tc->c = NULL;
    if (!tc->hs_done && !tc->failed) {
        tc->failed = true;
        tc->err = UV_ECONNABORTED;
    }
    hs_wake(tc);
    if (tc->timer_inited)
        uv_close((uv_handle_t *)&tc->timer, on_timer_closed);
    tc_unref(tc);
}

static const weft__xport_ops_t tls_ops = {
    .rbuf = x_rbuf,
    .input = x_input,
    .input_end = x_input_end,
    .write = x_write,
    .shutdown = x_shutdown,
    .handshake = x_handshake,
    .errmsg = x_errmsg,
    .destroy = x_destroy,
};

static bool is_ip_literal(const char *h)
{
    unsigned char b[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static double timeout_of(double v, double dflt) { return v == 0 ? dflt : (v < 0 || v != v ? -1.0 : v); }

int weft__tls_attach(struct conn *c, const weft_stream_opts_t *o, const char *host, int port)
{
    weft_tls_t *tls = o->tls;
    const char *name = o->server_hostname ? o->server_hostname : host;
    if (!tls->server && tls->verify && (!name || !*name) && o->server_hostname == NULL)
        return weft_raise(WEFT_EINVAL, "server_hostname is needed to verify a TLS server reached without a host name");
    tconn_t *tc = calloc(1, sizeof *tc);
    if (!tc)
        return WEFT_ENOMEM;
    tc->refs = 1;
    tc->c = c;
    tc->tls = weft_tls_retain(tls);
    tc->hs_timeout = timeout_of(o->tls_handshake_timeout, HS_TIMEOUT_DEFAULT);
    tc->sd_timeout = timeout_of(o->tls_shutdown_timeout, SD_TIMEOUT_DEFAULT);
    ERR_clear_error();
    BIO *bio = NULL;
    BIO_METHOD *meth = bio_method();
    tc->ssl = SSL_new(tls->ctx);
    if (!tc->ssl || !meth || !(bio = BIO_new(meth)))
        goto nomem;
    BIO_set_data(bio, tc);
    BIO_set_init(bio, 1);
    SSL_set_bio(tc->ssl, bio, bio);   /* the SSL object owns it */
    SSL_set_app_data(tc->ssl, tc);
    if (tls->server) {
        SSL_set_accept_state(tc->ssl);
    } else {
        SSL_set_connect_state(tc->ssl);
        if (name && *name) {
            if (!(tc->host = weft__strdup(name)))
                goto nomem;
            if (is_ip_literal(name)) {
                if (tls->verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tc->ssl), name) != 1)
                    goto nomem;
            } else {
                if (SSL_set_tlsext_host_name(tc->ssl, name) != 1)
                    goto nomem;
                if (tls->verify && SSL_set1_host(tc->ssl, name) != 1)
                    goto nomem;
            }
            if (tls->cache) {
                size_t kl = strlen(name) + 16;
                if (!(tc->sess_key = malloc(kl)))
                    goto nomem;
                snprintf(tc->sess_key, kl, "%s:%d", name, port);
                SSL_SESSION *sess = NULL;
                pthread_mutex_lock(&tls->mu);
                for (int i = 0; i < SESS_SLOTS; i++)
                    if (tls->sess[i].key && strcmp(tls->sess[i].key, tc->sess_key) == 0 && tls->sess[i].der) {
                        const unsigned char *p = tls->sess[i].der;
                        sess = d2i_SSL_SESSION(NULL, &p, (long)tls->sess[i].len);
                        break;
                    }
                pthread_mutex_unlock(&tls->mu);
                if (sess) {   /* this connection's own copy */
                    SSL_set_session(tc->ssl, sess);
                    SSL_SESSION_free(sess);
                }
            }
        }
    }
    ERR_clear_error();
    weft__conn_attach(c, &tls_ops, tc);
    return 0;
nomem:
    ERR_clear_error();
    tc_unref(tc);
    return WEFT_ENOMEM;
}

/* ---- connections: public functions ------------------------------------------------------- */

int weft_start_tls(weft_reader_t *reader, weft_writer_t *writer, weft_tls_t *tls, const weft_stream_opts_t *opts)
{
    if (!reader || !writer || !tls || (opts && opts->tls && opts->tls != tls) || weft_writer_reader(writer) != reader)
        return WEFT_EINVAL;
    struct conn *c = weft__conn_of(writer);
    weft__task_t *t;
    int rc = weft__conn_task(c, &t);
    if (rc < 0)
        return rc;
    if ((rc = weft__conn_can_attach(c)) < 0)
        return rc;
    if (!tls->server && tls->verify && (!opts || !opts->server_hostname))
        return weft_raise(WEFT_EINVAL, "server_hostname is needed to verify the server in start_tls");
    weft_stream_opts_t o = opts ? *opts : (weft_stream_opts_t){ 0 };
    o.tls = tls;
    char *early;
    size_t nearly;
    if ((rc = weft__conn_rtake(c, &early, &nearly)) < 0)
        return rc;
    const weft_extra_info_t *info = weft__conn_info(c);
    int port = 0;
    if (info->family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)(const void *)&info->peername)->sin_port);
    else if (info->family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)(const void *)&info->peername)->sin6_port);
    if ((rc = weft__tls_attach(c, &o, NULL, port)) < 0) {
        free(early);
        weft__conn_fail(c, rc);
        return rc;
    }
    tconn_t *tc = weft__conn_xport(c, &tls_ops);
    if (nearly) {   /* the peer's first TLS bytes came with the plain data */
        size_t off = 0;
        while (off < nearly && !tc->failed) {
            size_t room;
            char *p = x_rbuf(tc, &room);
            if (!p) {
                free(early);
                weft__conn_fail(c, WEFT_ENOMEM);
                return WEFT_ENOMEM;
            }
            size_t k = nearly - off < room ? nearly - off : room;
            memcpy(p, early + off, k);
            off += k;
            x_input(tc, p, k);
        }
        free(early);
    }
    return x_handshake(tc);
}

static tconn_t *tconn_of(const weft_writer_t *w, int *rc)
{
    struct conn *c = weft__conn_of(w);
    if (!c) {
        *rc = WEFT_EINVAL;
        return NULL;
    }
    weft__thread_t *ts = weft__thread();
    if (ts->running != weft__conn_loop(c)) {
        *rc = WEFT_EWRONGLOOP;
        return NULL;
    }
    tconn_t *tc = weft__conn_xport(c, &tls_ops);
    *rc = tc ? 0 : WEFT_EINVAL;
    return tc;
}

bool weft_writer_is_tls(const weft_writer_t *w)
{
    struct conn *c = weft__conn_of(w);
    return c && weft__conn_xport(c, &tls_ops) != NULL;
}

const char *weft_writer_tls_error(const weft_writer_t *w)
{
    struct conn *c = weft__conn_of(w);
    return c ? weft__conn_xmsg(c) : NULL;
}

void *weft_writer_ssl_object(const weft_writer_t *w)
{
    int rc;
    tconn_t *tc = tconn_of(w, &rc);
    return tc ? tc->ssl : NULL;
}

static void name_line(X509_NAME *n, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!n || cap == 0)
        return;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        int k = BIO_read(b, buf, (int)(cap - 1));
        buf[k > 0 ? k : 0] = '\0';
    }
    BIO_free(b);
}

int weft_writer_tls_info(const weft_writer_t *w, weft_tls_info_t *out)
{
    int rc;
    tconn_t *tc = tconn_of(w, &rc);
    if (!tc)
        return rc;
    if (!out)
        return WEFT_EINVAL;
    if (!tc->hs_done)
        return WEFT_EINVALSTATE;
    memset(out, 0, sizeof *out);
    SSL *s = tc->ssl;
    snprintf(out->version, sizeof out->version, "%s", SSL_get_version(s));
    const SSL_CIPHER *ci = SSL_get_current_cipher(s);
    if (ci) {
        snprintf(out->cipher, sizeof out->cipher, "%s", SSL_CIPHER_get_name(ci));
        out->cipher_bits = SSL_CIPHER_get_bits(ci, NULL);
    }
    const unsigned char *a;
    unsigned int al;
    SSL_get0_alpn_selected(s, &a, &al);
    if (a && al < sizeof out->alpn) {
        memcpy(out->alpn, a, al);
        out->alpn[al] = '\0';
    }
    X509 *pc = SSL_get0_peer_certificate(s);
    if (pc) {
        out->has_peer_cert = true;
        out->peer_verified = SSL_get_verify_result(s) == X509_V_OK && SSL_get_verify_mode(s) != SSL_VERIFY_NONE;
        name_line(X509_get_subject_name(pc), out->peer_subject, sizeof out->peer_subject);
        name_line(X509_get_issuer_name(pc), out->peer_issuer, sizeof out->peer_issuer);
    }
    out->session_reused = SSL_session_reused(s) == 1;
    out->server_hostname = tc->tls->server ? SSL_get_servername(s, TLSEXT_NAMETYPE_host_name) : tc->host;
    return 0;
}

int weft_writer_tls_peer_cert_der(const weft_writer_t *w, unsigned char **der, size_t *len)
{
    int rc;
    if (der)
        *der = NULL;
    if (len)
        *len = 0;
    tconn_t *tc = tconn_of(w, &rc);
    if (!tc)
        return rc;
    if (!der || !len)
        return WEFT_EINVAL;
    X509 *pc = SSL_get0_peer_certificate(tc->ssl);
    if (!pc)
        return WEFT_EINVAL;
    int n = i2d_X509(pc, NULL);
    if (n <= 0)
        return WEFT_EINVAL;
    unsigned char *b = malloc((size_t)n), *p = b;
    if (!b)
        return WEFT_ENOMEM;
    i2d_X509(pc, &p);
    *der = b;
    *len = (size_t)n;
    return 0;
}
