/**
 * @file weft/tls.h
 * @brief TLS for weft's streams and servers (asyncio's ssl= arguments), on
 *        OpenSSL.
 *
 * A weft_tls_t is asyncio's ssl.SSLContext: made once with weft_tls_new(),
 * then given to any number of connections through weft_stream_opts_t.tls
 * (weft_open_connection, weft_open_unix_connection, and every connection of a
 * server through weft_server_opts_t.stream.tls), or to weft_start_tls() to
 * upgrade a connection that is already open. The reader and writer API is the
 * same over TLS: reads return decrypted bytes, writes are encrypted.
 *
 * OpenSSL runs on weft's own non-blocking socket I/O through memory BIOs: the
 * bytes libuv reads are fed to the connection's SSL object on its loop, and
 * what OpenSSL produces goes out through the connection's write buffer. So a
 * TLS connection works on every loop of a multi-loop server (REUSEPORT and
 * HANDOFF modes alike), and a context is shared by every loop.
 *
 * **Handshake.** weft_open_connection returns once the handshake is done (or
 * failed: the connection is then closed and no reader or writer is given). A
 * server's handler starts once its connection's handshake is done; a
 * connection whose handshake fails is closed without running the handler
 * (reported to the loop's exception handler in debug mode only, as asyncio).
 * The handshake is bounded by weft_stream_opts_t.tls_handshake_timeout
 * (asyncio's ssl_handshake_timeout, 60 s by default): past it the connection
 * is aborted and WEFT_ETIMEDOUT returned.
 *
 * **Closing.** weft_writer_close() sends the TLS close_notify alert after the
 * buffered data, then closes the socket; tls_shutdown_timeout (asyncio's
 * ssl_shutdown_timeout, 30 s by default) bounds that: past it the connection
 * is aborted. weft_writer_write_eof() sends close_notify and half-closes the
 * socket; reading goes on (asyncio refuses write_eof on TLS). A peer that
 * closes the socket without close_notify makes reads fail with WEFT_ETLSEOF
 * once the data before it is consumed (a truncation attack cannot pass for
 * the end of the data). weft_writer_abort() sends nothing.
 *
 * **Errors.** The codes below, each with OpenSSL's reason as the message
 * (weft_error_message() in the task that got the code, or
 * weft_writer_tls_error() for a connection): e.g. "certificate verify failed:
 * unable to get local issuer certificate", "hostname mismatch", "wrong
 * version number", "tlsv1 alert unknown ca".
 *
 * **Threads.** weft_tls_new / weft_tls_release: any thread; a context is
 * immutable once made and safe to share between loops and threads.
 * Connection functions follow weft/stream.h (the connection's loop only).
 */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes ----------------------------------------------------------------
 * WEFT_ETLS, WEFT_ECERT, WEFT_EHOSTMISMATCH and WEFT_ETLSEOF are defined in
 * weft/common.h (with the other codes weft_strerror knows). */

/* ---- contexts --------------------------------------------------------------------- */

/** asyncio's ssl.SSLContext: certificates, trust, protocol limits, ALPN. */
typedef struct weft_tls weft_tls_t;

/** Protocol versions (weft_tls_opts_t.min_version / max_version). */
enum {
    WEFT_TLS_VERSION_DEFAULT = 0,   /**< minimum: TLS 1.2 (Python's default); maximum: the newest */
    WEFT_TLS_VERSION_1_2 = 0x0303,
    WEFT_TLS_VERSION_1_3 = 0x0304,
};

/** How to make a context; zero fields: defaults. Strings are copied (or
 *  loaded) by weft_tls_new; nothing is kept. */
typedef struct weft_tls_opts {
    bool server;                 /**< true: server side (ssl.PROTOCOL_TLS_SERVER); false: client */
    /* own certificate: server (required), client (optional client certificate) */
    const char *cert_file;       /**< PEM file: the certificate, then its chain */
    const char *key_file;        /**< PEM file: its private key (NULL: in cert_file) */
    const char *cert_pem;        /**< the same in memory (NUL-terminated PEM text), instead of files */
    const char *key_pem;
    /* trust */
    const char *ca_file;         /**< PEM file of trusted CAs; replaces the system store (as Python's cafile=) */
    const char *ca_pem;          /**< the same in memory */
    bool no_verify;              /**< client: do not verify the server at all (CERT_NONE, no hostname check) */
    bool require_client_cert;    /**< server: ask for a client certificate, verified against ca_* (CERT_REQUIRED) */
    /* protocol */
    int min_version;             /**< WEFT_TLS_VERSION_*: 0 = TLS 1.2 */
    int max_version;             /**< 0 = the newest OpenSSL knows */
    const char *const *alpn;     /**< ALPN protocols in preference order (set_alpn_protocols); NULL: none */
    size_t nalpn;
    const char *ciphers;         /**< TLS 1.2 cipher list (OpenSSL syntax); NULL: OpenSSL's default */
    const char *ciphersuites;    /**< TLS 1.3 suites; NULL: OpenSSL's default */
    bool no_session_cache;       /**< turn session resumption off (on by default on both sides) */
} weft_tls_opts_t;

/**
 * Make a context (ssl.create_default_context(purpose)). A client context
 * verifies the server's certificate against the system trust store (OpenSSL's
 * default paths; Debian: the ca-certificates package) or ca_file/ca_pem, and
 * checks the server's name against server_hostname; a server context needs a
 * certificate and its key. Session resumption is on: a server keeps a
 * session cache and sends TLS 1.3 tickets; a client remembers the last
 * session per host and port and offers it on the next connection there.
 *
 * @p out receives a reference owned by the caller (weft_tls_release).
 * Connections and servers using the context take their own references, so
 * the caller may release it right after weft_open_connection or
 * weft_start_server returned.
 * @return 0; WEFT_EINVAL (NULL out, a server without a certificate, bad
 * version, a key without a certificate, an ALPN name empty or over 255
 * bytes); WEFT_ETLS (unreadable file or PEM, key not matching the
 * certificate, bad cipher list: the message, through weft_raise, carries
 * OpenSSL's reason when called from a task); WEFT_ENOMEM. Any thread.
 */
WEFT_API int weft_tls_new(const weft_tls_opts_t *opts, weft_tls_t **out);

/** Drop a reference; the context goes with its last connection. NULL is
 *  ignored. Any thread. */
WEFT_API void weft_tls_release(weft_tls_t *tls);

/** True for a server context (weft_tls_opts_t.server). Any thread. */
WEFT_API bool weft_tls_is_server(const weft_tls_t *tls);

/** Take another reference. Any thread. @return @p tls. */
WEFT_API weft_tls_t *weft_tls_retain(weft_tls_t *tls);

/** The OpenSSL SSL_CTX under the context (borrowed, for settings weft does not
 *  cover; change it only before the first connection uses it). */
WEFT_API void *weft_tls_ssl_ctx(weft_tls_t *tls);

/* ---- connections ------------------------------------------------------------------ */

/**
 * StreamWriter.start_tls(sslcontext, server_hostname=, ssl_handshake_timeout=):
 * upgrade an open plain connection to TLS (STARTTLS-style protocols) and do
 * the handshake, on the side @p tls was made for. The same reader and writer
 * carry the TLS stream afterwards. Bytes already written go out first, in
 * plain; bytes the reader had buffered and not yet consumed are taken as the
 * start of the peer's TLS stream (its ClientHello may arrive right behind its
 * last plain command), so read the plain exchange exactly before upgrading.
 * While the handshake runs, writes from other tasks return WEFT_EINVALSTATE.
 * Only tls, server_hostname, tls_handshake_timeout and tls_shutdown_timeout of
 * @p opts are used (@p opts may be NULL; its tls field, if set, must be @p tls
 * or NULL). Awaiting; cancellable.
 *
 * A client context that verifies the server needs opts->server_hostname
 * (the connection does not know the name it was opened with; "" skips the
 * name check). On a failure after the checks below the connection is
 * aborted; either way the caller still owns and releases the reader and
 * writer.
 * @return 0; WEFT_EINVAL (NULL arguments, a reader of another connection,
 * opts->tls not @p tls, no server_hostname for a verifying client: the
 * connection is left as it was); WEFT_ENOTCORO; WEFT_EWRONGLOOP;
 * WEFT_EINVALSTATE (already TLS, closing, or the stream ended: left as it
 * was); WEFT_ETLS, WEFT_ECERT,
 * WEFT_EHOSTMISMATCH, WEFT_ETLSEOF; WEFT_ETIMEDOUT (handshake timeout);
 * WEFT_ECANCELED; WEFT_ENOMEM; a socket error.
 */
WEFT_API int weft_start_tls(weft_reader_t *reader, weft_writer_t *writer, weft_tls_t *tls,
                            const weft_stream_opts_t *opts);

/** get_extra_info('ssl_object' / 'peercert' / 'cipher' / 'version' /
 *  selected_alpn_protocol()) of a TLS connection. Strings are copies. */
typedef struct weft_tls_info {
    char version[16];          /**< "TLSv1.3", "TLSv1.2" */
    char cipher[64];           /**< "TLS_AES_256_GCM_SHA384" */
    int cipher_bits;           /**< secret bits of the cipher */
    char alpn[256];            /**< the protocol ALPN chose, "" if none */
    bool has_peer_cert;        /**< the peer presented a certificate */
    bool peer_verified;        /**< it was verified (always when verification is on) */
    char peer_subject[256];    /**< its subject, one line (RFC 2253: "CN=localhost,O=weft"), "" if none */
    char peer_issuer[256];     /**< its issuer, same form */
    bool session_reused;       /**< the handshake resumed an earlier session */
    const char *server_hostname; /**< the name checked and sent as SNI (client), or the SNI the client sent
                                     (server); NULL if none. Valid while the connection is */
} weft_tls_info_t;

/**
 * Fill *out for a connection whose handshake is done.
 * @return 0; WEFT_EINVAL (NULL, or a plain connection); WEFT_EINVALSTATE
 * (handshake not done, or the connection failed before it); WEFT_EWRONGLOOP.
 * Loop thread.
 */
WEFT_API int weft_writer_tls_info(const weft_writer_t *writer, weft_tls_info_t *out);

/** The peer's certificate in DER form: a malloc'ed copy in *der (free()), its
 *  length in *len. @return 0; WEFT_EINVAL (plain connection or no peer
 *  certificate); WEFT_ENOMEM; WEFT_EWRONGLOOP. Loop thread. */
WEFT_API int weft_writer_tls_peer_cert_der(const weft_writer_t *writer, unsigned char **der, size_t *len);

/** True if the connection runs TLS (its handshake may still be going on). */
WEFT_API bool weft_writer_is_tls(const weft_writer_t *writer);

/** OpenSSL's reason for the TLS error that ended the connection (or its
 *  handshake), or NULL if none. Valid while the connection is. Loop thread. */
WEFT_API const char *weft_writer_tls_error(const weft_writer_t *writer);

/** get_extra_info('ssl_object'): the connection's OpenSSL SSL object
 *  (borrowed; NULL for a plain connection). Read-only use advised: weft
 *  drives it. Loop thread. */
WEFT_API void *weft_writer_ssl_object(const weft_writer_t *writer);

#ifdef __cplusplus
}
#endif
#endif
