/* tls_record_cost: what OpenSSL alone costs per echo of a small message over TLS 1.3, the floor
 * under any TLS echo server built on it (bench/run_tls_echo.sh prints it beside the echo table).
 *
 *   tls_record_cost [-s BYTES] [-n ROUNDS]
 *
 * One thread, no sockets: a client and a server SSL object joined by a BIO pair do one TLS 1.3
 * handshake, then ROUNDS times: the client SSL_writes a BYTES-byte message (one record), the server
 * SSL_reads it and SSL_writes it back, the client SSL_reads the echo (checked). Each side therefore
 * does one SSL_write and one SSL_read per round trip, as an echo server and its client do. Printed,
 * for each TLS 1.3 cipher suite:
 *
 *   suite TLS_AES_256_GCM_SHA384 bytes 64 us_per_side_per_roundtrip 1.52
 *
 * i.e. the CPU one side spends in OpenSSL per round trip (half the loop's time per round trip).
 * The caches are hot and nothing else runs: a real server pays more (64 connections' state, its
 * socket I/O and scheduling in between).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static void fail(const char *what)
{
    fprintf(stderr, "tls_record_cost: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* a throwaway self-signed P-256 certificate for the server */
static void server_identity(SSL_CTX *ctx)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x)
        fail("cannot make a key");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (X509_sign(x, key, EVP_sha256()) <= 0 || SSL_CTX_use_certificate(ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1)
        fail("cannot make a certificate");
    X509_free(x);
    EVP_PKEY_free(key);
}

/* n bytes from s (the BIO pair has carried the peer's records over already) */
static void read_all(SSL *s, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t k = 0;
        if (SSL_read_ex(s, buf + got, n - got, &k) != 1)
            fail("SSL_read failed");
        got += k;
    }
}

static double run_suite(SSL_CTX *sctx, SSL_CTX *cctx, size_t size, long rounds)
{
    SSL *srv = SSL_new(sctx), *cli = SSL_new(cctx);
    BIO *a, *b;
    if (!srv || !cli || BIO_new_bio_pair(&a, 1 << 16, &b, 1 << 16) != 1)
        fail("SSL_new failed");
    SSL_set_bio(srv, a, a);
    SSL_set_bio(cli, b, b);
    SSL_set_accept_state(srv);
    SSL_set_connect_state(cli);
    for (int i = 0; i < 100 && !(SSL_is_init_finished(srv) && SSL_is_init_finished(cli)); i++) {
        SSL_do_handshake(cli);
        SSL_do_handshake(srv);
    }
    if (!SSL_is_init_finished(srv) || !SSL_is_init_finished(cli))
        fail("handshake failed");
    unsigned char *msg = malloc(size), *in = malloc(size), *echo = malloc(size);
    if (!msg || !in || !echo)
        fail("out of memory");
    size_t w;
    /* the server's session tickets reach the client on its first read: warm up past them */
    long warm = rounds / 10 + 10;
    double t0 = 0;
    for (long r = 0; r < rounds + warm; r++) {
        if (r == warm)
            t0 = now_s();
        for (size_t i = 0; i < size; i++)
            msg[i] = (unsigned char)(r + i);
        if (SSL_write_ex(cli, msg, size, &w) != 1 || w != size)
            fail("client SSL_write failed");
        read_all(srv, in, size);
        if (SSL_write_ex(srv, in, size, &w) != 1 || w != size)
            fail("server SSL_write failed");
        read_all(cli, echo, size);
        if (memcmp(msg, echo, size) != 0)
            fail("echo mismatch");
    }
    double dt = now_s() - t0;
    free(msg);
    free(in);
    free(echo);
    SSL_free(srv);
    SSL_free(cli);
    return dt / (double)rounds / 2 * 1e6;
}

int main(int argc, char **argv)
{
    size_t size = 64;
    long rounds = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc)
            size = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            rounds = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: tls_record_cost [-s 64] [-n 200000]\n");
            return 1;
        }
    }
    if (size < 1 || size > 16384 || rounds < 1)
        fail("size must be 1..16384, rounds at least 1");
    static const char *suites[] = { "TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256" };
    for (size_t k = 0; k < sizeof suites / sizeof suites[0]; k++) {
        SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
        if (!sctx || !cctx)
            fail("SSL_CTX_new failed");
        SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
        SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
        if (SSL_CTX_set_ciphersuites(cctx, suites[k]) != 1)
            fail("unknown cipher suite");
        server_identity(sctx);
        SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
        double us = run_suite(sctx, cctx, size, rounds);
        printf("suite %s bytes %zu us_per_side_per_roundtrip %.2f\n", suites[k], size, us);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    return 0;
}
