/* Streams: echo round trips from 1 byte to 16 MiB, readline/readuntil limits,
 * readexactly short reads, backpressure, peer resets and half-closes,
 * cancellation during reads and drains (no byte lost), Unix sockets, IPv6,
 * name resolution. Loopback only; every test is bounded by a watchdog alarm
 * and by its byte and request counts. */
#include "check.h"
#include "watchdog.h"
#include "core/task.h"
#include "weft.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static uint8_t pat(uint64_t seed, uint64_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + i;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint8_t)x;
}

static void fill(uint8_t *b, size_t n, uint64_t seed, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        b[i] = pat(seed, off + i);
}

static bool same(const uint8_t *b, size_t n, uint64_t seed, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pat(seed, off + i))
            return false;
    return true;
}

/* Run @fn as the main task of a fresh runtime of @workers loops. */
static int run_main(int workers, weft_coro_fn fn, void *arg)
{
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = workers }, &rt), 0);
    int rc = weft_runtime_run(rt, fn, arg, NULL, NULL);
    CHECK_EQ(weft_runtime_free(rt), 0);
    return rc;
}

/* ---- handlers ---------------------------------------------------------------------- */

/* Echo everything back until end of stream. */
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

static int start_echo(const char *host, const weft_server_opts_t *o, weft_server_t **s)
{
    return weft_start_server(echo_handler, NULL, host, 0, o, s);
}

/* ---- echo round trips: 1 byte .. 16 MiB --------------------------------------------- */

struct rx {
    weft_reader_t *r;
    size_t size;
    uint64_t seed;
    bool exact;
    int rc;
    size_t got;
};

static int rx_task(void *arg, weft_value_t *out)
{
    (void)out;
    struct rx *x = arg;
    if (x->exact) {
        uint8_t *b = malloc(x->size ? x->size : 1);
        size_t n = 0;
        x->rc = weft_reader_readexactly(x->r, b, x->size, &n);
        x->got = n;
        if (x->rc == 0 && !same(b, n, x->seed, 0))
            x->rc = -1000;
        free(b);
        return 0;
    }
    uint8_t *b = malloc(65536);
    while (x->got < x->size) {
        size_t n;
        if ((x->rc = weft_reader_read(x->r, b, 65536, &n)) < 0)
            break;
        if (n == 0) {
            x->rc = -1001;
            break;
        }
        if (!same(b, n, x->seed, x->got)) {
            x->rc = -1000;
            break;
        }
        x->got += n;
    }
    free(b);
    return 0;
}

static int echo_once(int port, size_t size, uint64_t seed, bool exact)
{
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", port, NULL, &r, &w), 0);
    struct rx x = { .r = r, .size = size, .seed = seed, .exact = exact };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, rx_task, &x, NULL), 0);
    size_t chunk = 256 * 1024;
    uint8_t *b = malloc(chunk);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        fill(b, n, seed, off);
        CHECK_EQ(weft_writer_write(w, b, n), 0);
        CHECK_EQ(weft_writer_drain(w), 0);
    }
    free(b);
    CHECK_EQ(weft_writer_write_eof(w), 0);
    CHECK_EQ(weft_writer_write(w, "x", 1), UV_EPIPE);
    CHECK_EQ(weft_await(t, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(x.rc, 0);
    CHECK_EQ(x.got, size);
    /* the server saw our end of stream and closed its side */
    size_t n = 99;
    char c;
    CHECK_EQ(weft_reader_read(r, &c, 1, &n), 0);
    CHECK_EQ(n, 0);
    CHECK(weft_reader_at_eof(r));
    CHECK_EQ(weft_writer_close(w), 0);
    CHECK_EQ(weft_writer_wait_closed(w), 0);
    CHECK(weft_writer_is_closing(w));
    weft_reader_release(r);
    weft_writer_release(w);
    return 0;
}

static int echo_sizes_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_server_t *s;
    CHECK_EQ(start_echo("127.0.0.1", NULL, &s), 0);
    int port = weft_server_port(s);
    CHECK(port > 0);
    const size_t sizes[] = { 1, 2, 100, 4095, 4096, 65535, 65536, 65537, 300000, 1 << 20, 16 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        echo_once(port, sizes[i], i + 1, false);
        if (sizes[i] <= (1 << 20))
            echo_once(port, sizes[i], i + 100, true);
    }
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    CHECK_EQ(weft_server_connections(s), 0);
    weft_server_free(s);
    return 0;
}

static void test_echo_sizes(void) { CHECK_EQ(run_main(1, echo_sizes_main, NULL), 0); }

/* ---- scripted servers ------------------------------------------------------------------- */

/* Writes the parts of a script, sleeping between them, then closes. */
struct script {
    const char *parts[8];
    double gap;
    bool reset;   /* abort (RST) instead of close at the end */
};

static int script_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)r;
    const struct script *sc = arg;
    for (int i = 0; i < 8 && sc->parts[i]; i++) {
        int rc = weft_writer_write(w, sc->parts[i], strlen(sc->parts[i]));
        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc == 0 && sc->gap > 0)
            rc = weft_sleep(sc->gap);
        if (rc < 0)
            return rc;
    }
    if (sc->reset)
        weft_writer_abort(w);
    return 0;
}

static int connect_script(struct script *sc, const weft_stream_opts_t *o, weft_server_t **s, weft_reader_t **r,
                          weft_writer_t **w)
{
    CHECK_EQ(weft_start_server(script_handler, sc, "127.0.0.1", 0, NULL, s), 0);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(*s), o, r, w), 0);
    return 0;
}

static void finish(weft_server_t *s, weft_reader_t *r, weft_writer_t *w)
{
    CHECK_EQ(weft_writer_close(w), 0);
    CHECK_EQ(weft_writer_wait_closed(w), 0);
    weft_reader_release(r);
    weft_writer_release(w);
    CHECK(weft_server_shutdown(s, 5.0) >= 0);
    weft_server_free(s);
}

static int readline_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    static char xs[101];
    memset(xs, 'x', 100);
    struct script sc = { .parts = { "hello\nworld\n", xs, "\nab\r", "\ncd" }, .gap = 0.02 };
    weft_server_t *s;
    weft_reader_t *r;
    weft_writer_t *w;
    connect_script(&sc, &(weft_stream_opts_t){ .limit = 16 }, &s, &r, &w);
    char buf[256];
    size_t n;
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 6);
    CHECK(memcmp(buf, "hello\n", 6) == 0);
    /* the caller's buffer bounds the line too: nothing is consumed */
    CHECK_EQ(weft_reader_readline(r, buf, 4, &n), WEFT_ELIMIT);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 6);
    CHECK(memcmp(buf, "world\n", 6) == 0);
    /* 100 bytes without a newline with a limit of 16: over the limit, and nothing lost */
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), WEFT_ELIMIT);
    CHECK(n >= 16);
    CHECK(weft_reader_buffered(r) >= 16);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), WEFT_ELIMIT);   /* still there */
    CHECK_EQ(weft_reader_readexactly(r, buf, 100, &n), 0);
    CHECK_EQ(n, 100);
    CHECK(memcmp(buf, xs, 100) == 0);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(buf[0], '\n');
    /* a two-byte separator split over two writes */
    CHECK_EQ(weft_reader_readuntil(r, "\r\n", 2, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf, "ab\r\n", 4) == 0);
    /* end of stream before the separator: readuntil gives the partial data as an error */
    CHECK_EQ(weft_reader_readuntil(r, "\r\n", 2, buf, sizeof buf, &n), WEFT_EINCOMPLETE);
    CHECK_EQ(n, 2);
    CHECK(memcmp(buf, "cd", 2) == 0);
    CHECK(weft_reader_at_eof(r));
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_reader_readuntil(r, "", 0, buf, sizeof buf, &n), WEFT_EINVAL);
    finish(s, r, w);

    /* readline returns a last line without its newline */
    struct script sc2 = { .parts = { "one\ntwo" } };
    connect_script(&sc2, NULL, &s, &r, &w);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 4);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 3);
    CHECK(memcmp(buf, "two", 3) == 0);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 0);
    finish(s, r, w);

    /* an unterminated last line of exactly min(limit, cap) bytes fits: it is
     * the line, not an overrun (the limit, then the caller's buffer, bound it) */
    struct script sc3 = { .parts = { "a\nabcd" } };
    connect_script(&sc3, &(weft_stream_opts_t){ .limit = 4 }, &s, &r, &w);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 0);
    finish(s, r, w);
    struct script sc4 = { .parts = { "wxyz" } };
    connect_script(&sc4, NULL, &s, &r, &w);
    CHECK_EQ(weft_reader_readuntil(r, "\r\n", 2, buf, 4, &n), WEFT_EINCOMPLETE);
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf, "wxyz", 4) == 0);
    finish(s, r, w);
    /* one byte more than fits is still an overrun, and nothing is lost */
    struct script sc5 = { .parts = { "abcde" } };
    connect_script(&sc5, &(weft_stream_opts_t){ .limit = 4 }, &s, &r, &w);
    CHECK_EQ(weft_reader_readline(r, buf, sizeof buf, &n), WEFT_ELIMIT);
    CHECK_EQ(weft_reader_readexactly(r, buf, 5, &n), 0);
    CHECK(memcmp(buf, "abcde", 5) == 0);
    finish(s, r, w);
    return 0;
}

static void test_readline_limit(void) { CHECK_EQ(run_main(1, readline_main, NULL), 0); }

static int readexactly_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct script sc = { .parts = { "0123456789" } };
    weft_server_t *s;
    weft_reader_t *r;
    weft_writer_t *w;
    connect_script(&sc, NULL, &s, &r, &w);
    char buf[32];
    size_t n = 99;
    CHECK_EQ(weft_reader_readexactly(r, buf, 4, &n), 0);
    CHECK_EQ(n, 4);
    void *all;
    CHECK_EQ(weft_reader_read_all(r, 3, &all, &n), WEFT_ELIMIT);   /* more than 3 bytes: nothing taken */
    CHECK(all == NULL);
    CHECK_EQ(weft_reader_readexactly(r, buf, 20, &n), WEFT_EINCOMPLETE);
    CHECK_EQ(n, 6);
    CHECK(memcmp(buf, "456789", 6) == 0);
    CHECK(weft_reader_at_eof(r));
    CHECK_EQ(weft_reader_readexactly(r, buf, 1, &n), WEFT_EINCOMPLETE);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_reader_readexactly(r, buf, 0, &n), 0);
    CHECK_EQ(weft_reader_read(r, buf, sizeof buf, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_reader_read_all(r, 100, &all, &n), 0);   /* at end of stream: empty */
    CHECK_EQ(n, 0);
    CHECK_EQ(((char *)all)[0], 0);
    free(all);
    CHECK_EQ(weft_reader_exception(r), 0);
    CHECK_STR(weft_err_name(WEFT_EINCOMPLETE), "EOF");
    finish(s, r, w);
    return 0;
}

static void test_readexactly_short(void) { CHECK_EQ(run_main(1, readexactly_main, NULL), 0); }

/* ---- backpressure: a slow reader keeps both sides' buffers bounded --------------------- */

#define BP_CHUNK ((size_t)48 * 1024)
#define BP_TOTAL ((size_t)6 << 20)

struct bp {
    size_t max_wbuf;
    size_t high;
    int rc;
    int paused_drains;
};

static int bp_writer(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)r;
    struct bp *bp = arg;
    uint8_t *b = malloc(BP_CHUNK);
    CHECK_EQ(weft_writer_set_write_buffer_limits(w, 128 * 1024, 0), 0);
    weft_extra_info_t info;
    CHECK_EQ(weft_writer_get_extra_info(w, &info), 0);
    int sz = 32 * 1024;   /* small kernel buffers: the write buffer must do the queueing */
    CHECK_EQ(setsockopt(info.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
    bp->high = 128 * 1024;
    for (size_t off = 0; off < BP_TOTAL && bp->rc == 0; off += BP_CHUNK) {
        fill(b, BP_CHUNK, 7, off);
        if ((bp->rc = weft_writer_write(w, b, BP_CHUNK)) < 0)
            break;
        size_t q = weft_writer_get_write_buffer_size(w);
        if (q > bp->max_wbuf)
            bp->max_wbuf = q;
        if (q > bp->high)
            bp->paused_drains++;
        bp->rc = weft_writer_drain(w);
        CHECK(weft_writer_get_write_buffer_size(w) <= bp->high);
    }
    free(b);
    return bp->rc;
}

static int backpressure_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct bp bp = { 0 };
    weft_server_t *s;
    CHECK_EQ(weft_start_server(bp_writer, &bp, "127.0.0.1", 0, NULL, &s), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    size_t limit = 32 * 1024;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), &(weft_stream_opts_t){ .limit = limit }, &r, &w),
             0);
    weft_extra_info_t info;
    CHECK_EQ(weft_writer_get_extra_info(w, &info), 0);
    int sz = 32 * 1024;
    CHECK_EQ(setsockopt(info.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);
    uint8_t *b = malloc(16384);
    size_t got = 0, max_rbuf = 0;
    int reads = 0;
    while (got < BP_TOTAL) {
        if (++reads % 16 == 0)
            CHECK_EQ(weft_sleep(0.002), 0);   /* slow reader */
        size_t q = weft_reader_buffered(r);
        if (q > max_rbuf)
            max_rbuf = q;
        size_t n;
        CHECK_EQ(weft_reader_read(r, b, 16384, &n), 0);
        CHECK(n > 0);
        CHECK(same(b, n, 7, got));
        got += n;
    }
    free(b);
    CHECK_EQ(got, BP_TOTAL);
    CHECK_EQ(bp.rc, 0);
    printf("  writer: max buffered %zu (high %zu + one write %zu), %d drains waited; reader: max buffered %zu\n",
           bp.max_wbuf, bp.high, BP_CHUNK, bp.paused_drains, max_rbuf);
    CHECK(bp.max_wbuf <= bp.high + BP_CHUNK);
    CHECK(bp.paused_drains > 0);   /* the slow reader did make it wait */
    /* reading pauses above 2 x limit; one read callback may add one more chunk (64 KiB) */
    CHECK(max_rbuf <= 2 * limit + 64 * 1024);
    finish(s, r, w);
    return 0;
}

static void test_backpressure(void) { CHECK_EQ(run_main(1, backpressure_main, NULL), 0); }

/* ---- peer reset, half-close, close during write ---------------------------------------- */

struct reset_srv {
    int read_rc;
    int write_rc;
    size_t got;
    bool done;
};

static int reset_reader(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    struct reset_srv *x = arg;
    char b[4096];
    for (;;) {
        size_t n;
        int rc = weft_reader_read(r, b, sizeof b, &n);
        if (rc < 0 || n == 0) {
            x->read_rc = rc;
            break;
        }
        x->got += n;
    }
    /* writing to a reset peer fails too, never crashes */
    for (int i = 0; i < 100 && x->write_rc == 0; i++) {
        x->write_rc = weft_writer_write(w, b, sizeof b);
        if (x->write_rc == 0)
            x->write_rc = weft_writer_drain(w);
        if (x->write_rc == 0)
            weft_sleep(0.001);
    }
    x->done = true;
    return 0;
}

static int big_writer(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)r;
    struct reset_srv *x = arg;
    static uint8_t b[65536];
    for (int i = 0; i < 4096; i++) {   /* up to 256 MiB: the peer stops reading long before */
        int rc = weft_writer_write(w, b, sizeof b);
        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc < 0) {
            x->write_rc = rc;
            break;
        }
    }
    x->done = true;
    return 0;
}

static int wait_flag(bool *flag)
{
    for (int i = 0; i < 5000 && !*flag; i++)
        CHECK_EQ(weft_sleep(0.001), 0);
    CHECK(*flag);
    return 0;
}

static bool is_conn_error(int rc) { return rc == UV_ECONNRESET || rc == UV_EPIPE; }

static int reset_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    /* 1. the client resets the connection mid-stream */
    struct reset_srv x = { 0 };
    weft_server_t *s;
    CHECK_EQ(weft_start_server(reset_reader, &x, "127.0.0.1", 0, NULL, &s), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), 0);
    CHECK_EQ(weft_writer_write(w, "some data", 9), 0);
    CHECK_EQ(weft_writer_drain(w), 0);
    CHECK_EQ(weft_sleep(0.02), 0);
    CHECK_EQ(weft_writer_abort(w), 0);
    CHECK_EQ(weft_writer_write(w, "x", 1), UV_EPIPE);
    CHECK_EQ(weft_writer_wait_closed(w), 0);
    weft_reader_release(r);
    weft_writer_release(w);
    wait_flag(&x.done);
    CHECK_EQ(x.got, 9);
    CHECK_EQ(x.read_rc, UV_ECONNRESET);
    CHECK(is_conn_error(x.write_rc));
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);

    /* 2. the server resets while the client reads: buffered bytes first, then the error */
    struct script sc = { .parts = { "abc" }, .gap = 0.02, .reset = true };
    connect_script(&sc, NULL, &s, &r, &w);
    char b[16];
    size_t n;
    CHECK_EQ(weft_reader_readexactly(r, b, 3, &n), 0);
    CHECK_EQ(weft_reader_read(r, b, sizeof b, &n), UV_ECONNRESET);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_reader_exception(r), UV_ECONNRESET);
    CHECK(weft_reader_at_eof(r));
    CHECK_EQ(weft_writer_drain(w), UV_ECONNRESET);   /* asyncio: drain raises the reader's exception */
    finish(s, r, w);

    /* 3. the client closes while the server is blocked writing to it */
    struct reset_srv y = { 0 };
    CHECK_EQ(weft_start_server(big_writer, &y, "127.0.0.1", 0, NULL, &s), 0);
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), 0);
    CHECK_EQ(weft_reader_readexactly(r, b, 16, &n), 0);
    CHECK_EQ(weft_sleep(0.05), 0);   /* let the server fill every buffer */
    CHECK_EQ(weft_writer_close(w), 0);   /* unread data: the kernel resets */
    CHECK_EQ(weft_writer_wait_closed(w), 0);
    weft_reader_release(r);
    weft_writer_release(w);
    wait_flag(&y.done);
    CHECK(is_conn_error(y.write_rc));
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    return 0;
}

static void test_peer_reset(void) { CHECK_EQ(run_main(1, reset_main, NULL), 0); }

/* half-close: the client ends its side and still reads the answer */
static int pong_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)arg;
    char b[64];
    size_t n, got = 0;
    int rc;
    while ((rc = weft_reader_read(r, b + got, sizeof b - got, &n)) == 0 && n)
        got += n;
    if (rc < 0)
        return rc;
    if (got != 4 || memcmp(b, "ping", 4) != 0)
        return -1;
    if ((rc = weft_writer_write(w, "pong", 4)) < 0)
        return rc;
    return weft_writer_drain(w);
}

static int half_close_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_server_t *s;
    CHECK_EQ(weft_start_server(pong_handler, NULL, "127.0.0.1", 0, NULL, &s), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), 0);
    CHECK(weft_writer_can_write_eof(w));
    CHECK_EQ(weft_writer_write(w, "ping", 4), 0);
    CHECK_EQ(weft_writer_write_eof(w), 0);
    char b[8];
    size_t n;
    void *all;
    CHECK_EQ(weft_reader_read_all(r, 1 << 20, &all, &n), 0);   /* asyncio's read(): up to end of stream */
    CHECK_EQ(n, 4);
    CHECK_STR((char *)all, "pong");
    free(all);
    CHECK_EQ(weft_reader_read(r, b, sizeof b, &n), 0);
    CHECK_EQ(n, 0);
    finish(s, r, w);
    return 0;
}

static void test_half_close(void) { CHECK_EQ(run_main(1, half_close_main, NULL), 0); }

/* ---- cancellation during read and drain: nothing lost ----------------------------------- */

#define SEQ_TOTAL (SANITIZED ? 20000 : 100000)

/* Sends SEQ_TOTAL pattern bytes in small bursts at irregular intervals. */
static int trickle_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)r;
    (void)arg;
    uint8_t b[512];
    uint32_t x = 12345;
    for (size_t off = 0; off < SEQ_TOTAL;) {
        x = x * 1103515245u + 12345u;
        size_t n = 1 + (x >> 16) % sizeof b;
        if (n > SEQ_TOTAL - off)
            n = SEQ_TOTAL - off;
        fill(b, n, 3, off);
        int rc = weft_writer_write(w, b, n);
        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc == 0 && (x >> 8) % 4 == 0)
            rc = weft_sleep(((x >> 4) % 8) * 0.0002);
        if (rc < 0)
            return rc;
        off += n;
    }
    return 0;
}

static int cancel_read_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_server_t *s;
    CHECK_EQ(weft_start_server(trickle_handler, NULL, "127.0.0.1", 0, NULL, &s), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), 0);
    uint8_t b[700];
    size_t got = 0;
    int timeouts = 0, reads = 0;
    uint32_t x = 99;
    while (got < SEQ_TOTAL) {
        x = x * 1103515245u + 12345u;
        size_t want = 1 + (x >> 16) % sizeof b;
        if (want > SEQ_TOTAL - got)
            want = SEQ_TOTAL - got;
        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, ((x >> 3) % 6) * 0.0002), 0);
        size_t n = 0;
        int rc = (x & 1) ? weft_reader_readexactly(r, b, want, &n) : weft_reader_read(r, b, want, &n);
        rc = weft_timeout_exit(&to, rc);
        if (rc == WEFT_ETIMEDOUT) {
            CHECK_EQ(n, 0);   /* a cancelled read consumes nothing */
            timeouts++;
            continue;
        }
        CHECK_EQ(rc, 0);
        CHECK(n > 0);
        CHECK(same(b, n, 3, got));
        got += n;
        reads++;
    }
    CHECK_EQ(got, SEQ_TOTAL);
    size_t n;
    CHECK_EQ(weft_reader_read(r, b, sizeof b, &n), 0);
    CHECK_EQ(n, 0);
    printf("  %d reads, %d cancelled by timeouts, %zu bytes in order\n", reads, timeouts, got);
    CHECK(timeouts > 0);
    /* a plain cancel (no scope) while waiting, then the bytes are still there */
    finish(s, r, w);
    return 0;
}

static void test_cancel_read(void) { CHECK_EQ(run_main(1, cancel_read_main, NULL), 0); }

/* explicit Task.cancel of a reader, and a reader cancelled while data is arriving */
struct cr {
    weft_reader_t *r;
    int rc;
    size_t n;
    char b[16];
};

static int cr_task(void *arg, weft_value_t *out)
{
    (void)out;
    struct cr *c = arg;
    c->rc = weft_reader_read(c->r, c->b, sizeof c->b, &c->n);
    return c->rc;
}

static int gate_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    (void)arg;
    char b[8];
    size_t n;
    int rc = weft_reader_readexactly(r, b, 1, &n);   /* go */
    if (rc == 0)
        rc = weft_writer_write(w, "hello", 5);
    if (rc == 0)
        rc = weft_writer_drain(w);
    if (rc == 0)
        rc = weft_reader_read(r, b, sizeof b, &n);   /* until the client ends */
    return rc;
}

static int cancel_task_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_server_t *s;
    CHECK_EQ(weft_start_server(gate_handler, NULL, "127.0.0.1", 0, NULL, &s), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), 0);
    struct cr c = { .r = r };
    weft_task_t *t;
    CHECK_EQ(weft_create_task(&t, cr_task, &c, NULL), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    /* a second reader while one waits: asyncio's RuntimeError */
    size_t n;
    char b[16];
    CHECK_EQ(weft_reader_read(r, b, 1, &n), WEFT_EINVALSTATE);
    CHECK_EQ(weft_task_cancel(t, "stop"), 1);
    CHECK_EQ(weft_await(t, NULL), WEFT_ECANCELED);
    weft_task_release(t);
    CHECK_EQ(c.rc, WEFT_ECANCELED);
    /* data arrives, and the reader is cancelled after it was woken but before it ran */
    c = (struct cr){ .r = r };
    CHECK_EQ(weft_create_task(&t, cr_task, &c, NULL), 0);
    CHECK_EQ(weft_writer_write(w, "g", 1), 0);
    for (int i = 0; i < 2000 && weft_reader_buffered(r) == 0; i++) {
        /* poll without yielding to the reader task: it is woken by the read callback */
        CHECK_EQ(weft_sleep(0.0005), 0);
        if (weft_task_state(t) == WEFT_TASK_DONE)
            break;
    }
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_await(t, NULL), c.rc);
    weft_task_release(t);
    size_t total = c.rc == 0 ? c.n : 0;
    char all[8] = { 0 };
    memcpy(all, c.b, total);
    while (total < 5) {
        CHECK_EQ(weft_reader_read(r, all + total, 5 - total, &n), 0);
        CHECK(n > 0);
        total += n;
    }
    CHECK(memcmp(all, "hello", 5) == 0);
    finish(s, r, w);
    return 0;
}

static void test_cancel_task(void) { CHECK_EQ(run_main(1, cancel_task_main, NULL), 0); }

#define DR_CHUNK ((size_t)32 * 1024)
#define DR_TOTAL ((size_t)(SANITIZED ? 2 : 8) << 20)

struct dr {
    size_t got;
    bool ok;
};

/* Reads slowly, checking every byte, then answers with one byte. */
static int slow_check_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    struct dr *d = arg;
    weft_extra_info_t info;
    weft_writer_get_extra_info(w, &info);
    int sz = 32 * 1024;   /* small kernel buffers, so that drain has to wait */
    setsockopt(info.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    uint8_t *b = malloc(8192);
    d->ok = true;
    int rc, k = 0;
    for (;;) {
        size_t n;
        if ((rc = weft_reader_read(r, b, 8192, &n)) < 0 || n == 0)
            break;
        if (!same(b, n, 11, d->got))
            d->ok = false;
        d->got += n;
        if (++k % 32 == 0)
            weft_sleep(0.001);
    }
    free(b);
    if (rc == 0 && (rc = weft_writer_write(w, d->ok ? "K" : "E", 1)) == 0)
        rc = weft_writer_drain(w);
    return rc;
}

static int cancel_drain_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    struct dr d = { 0 };
    weft_server_t *s;
    CHECK_EQ(weft_start_server(slow_check_handler, &d, "127.0.0.1", 0, NULL, &s), 0);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w), 0);
    weft_extra_info_t info;
    CHECK_EQ(weft_writer_get_extra_info(w, &info), 0);
    int sz = 32 * 1024;
    CHECK_EQ(setsockopt(info.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
    uint8_t *b = malloc(DR_CHUNK);
    int timeouts = 0;
    for (size_t off = 0; off < DR_TOTAL; off += DR_CHUNK) {
        fill(b, DR_CHUNK, 11, off);
        CHECK_EQ(weft_writer_write(w, b, DR_CHUNK), 0);
        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, 0.0005), 0);
        int rc = weft_timeout_exit(&to, weft_writer_drain(w));
        if (rc == WEFT_ETIMEDOUT)
            timeouts++;
        else
            CHECK_EQ(rc, 0);
    }
    free(b);
    CHECK_EQ(weft_writer_write_eof(w), 0);
    char c;
    size_t n;
    CHECK_EQ(weft_reader_readexactly(r, &c, 1, &n), 0);
    CHECK_EQ(c, 'K');
    CHECK_EQ(d.got, DR_TOTAL);
    CHECK(d.ok);
    printf("  %d drains cancelled by timeouts, %zu bytes delivered in order\n", timeouts, d.got);
    CHECK(timeouts > 0);
    finish(s, r, w);
    return 0;
}

static void test_cancel_drain(void) { CHECK_EQ(run_main(1, cancel_drain_main, NULL), 0); }

/* ---- Unix sockets, IPv6, names, addresses, errors ------------------------------------------ */

static int unix_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-test-%d.sock", (int)getpid());
    weft_server_t *s;
    CHECK_EQ(weft_start_unix_server(echo_handler, NULL, path, NULL, &s), 0);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(weft_server_port(s), WEFT_EINVAL);
    struct sockaddr_storage ss;
    socklen_t sl;
    CHECK_EQ(weft_server_sockname(s, 0, &ss, &sl), 0);
    char name[128];
    CHECK_EQ(weft_sockaddr_format((struct sockaddr *)&ss, sl, name, sizeof name, NULL), 0);
    CHECK_STR(name, path);
    for (int round = 0; round < 3; round++) {
        weft_reader_t *r;
        weft_writer_t *w;
        CHECK_EQ(weft_open_unix_connection(path, NULL, &r, &w), 0);
        weft_extra_info_t info;
        CHECK_EQ(weft_writer_get_extra_info(w, &info), 0);
        CHECK_EQ(info.family, AF_UNIX);
        CHECK(info.fd >= 0);
        size_t size = (size_t)1 << (8 * round + 4);
        uint8_t *b = malloc(size);
        fill(b, size, 5, 0);
        CHECK_EQ(weft_writer_write(w, b, size), 0);
        memset(b, 0, size);
        size_t n;
        CHECK_EQ(weft_reader_readexactly(r, b, size, &n), 0);
        CHECK(same(b, size, 5, 0));
        free(b);
        CHECK_EQ(weft_writer_close(w), 0);
        CHECK_EQ(weft_writer_wait_closed(w), 0);
        CHECK_EQ(weft_writer_get_extra_info(w, &info), 0);
        CHECK_EQ(info.fd, -1);
        weft_reader_release(r);
        weft_writer_release(w);
    }
    CHECK_EQ(weft_server_shutdown(s, 5.0), 0);
    weft_server_free(s);
    CHECK(stat(path, &st) != 0);   /* removed when the server closed */
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_unix_connection(path, NULL, &r, &w), UV_ENOENT);
    CHECK(r == NULL && w == NULL);
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    CHECK_EQ(weft_open_unix_connection(longpath, NULL, &r, &w), -ENAMETOOLONG);
    return 0;
}

static void test_unix_echo(void) { CHECK_EQ(run_main(1, unix_main, NULL), 0); }

static int ipv6_main(void *arg, weft_value_t *out)
{
    (void)out;
    int *skipped = arg;
    weft_server_t *s;
    int rc = start_echo("::1", NULL, &s);
    if (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT) {
        printf("  skipped: ::1 is not available here (%s)\n", weft_err_name(rc));
        *skipped = 1;
        return 0;
    }
    CHECK_EQ(rc, 0);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("::1", weft_server_port(s), NULL, &r, &w), 0);
    weft_extra_info_t info;
    CHECK_EQ(weft_writer_get_extra_info(w, &info), 0);
    CHECK_EQ(info.family, AF_INET6);
    char host[64];
    int port;
    CHECK_EQ(weft_sockaddr_format((struct sockaddr *)&info.peername, info.peername_len, host, sizeof host, &port),
             0);
    CHECK_STR(host, "::1");
    CHECK_EQ(port, weft_server_port(s));
    uint8_t b[3000], c[3000];
    fill(b, sizeof b, 9, 0);
    CHECK_EQ(weft_writer_write(w, b, sizeof b), 0);
    size_t n;
    CHECK_EQ(weft_reader_readexactly(r, c, sizeof c, &n), 0);
    CHECK(memcmp(b, c, sizeof b) == 0);
    finish(s, r, w);
    return 0;
}

static void test_ipv6_echo(void)
{
    int skipped = 0;
    CHECK_EQ(run_main(1, ipv6_main, &skipped), 0);
}

/* extra info, localhost resolution, refused connections, bad arguments */
static int info_handler(weft_reader_t *r, weft_writer_t *w, void *arg)
{
    weft_extra_info_t *out = arg;
    weft_writer_get_extra_info(w, out);
    char b[1];
    size_t n;
    return weft_reader_read(r, b, 1, &n);
}

static int misc_main(void *arg, weft_value_t *out)
{
    (void)arg;
    (void)out;
    weft_extra_info_t srv_info = { 0 };
    weft_server_t *s;
    CHECK_EQ(weft_start_server(info_handler, &srv_info, "localhost", 0, NULL, &s), 0);
    CHECK(weft_server_nsockets(s) >= 1);
    CHECK(weft_server_is_serving(s));
    int port = weft_server_port(s);
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("localhost", port, &(weft_stream_opts_t){ .keepalive = 30 }, &r, &w), 0);
    weft_extra_info_t ci;
    CHECK_EQ(weft_writer_get_extra_info(w, &ci), 0);
    CHECK(ci.fd >= 0);
    for (int i = 0; i < 100 && srv_info.fd == 0; i++)
        weft_sleep(0.001);
    char a[64], b[64];
    int pa, pb;
    /* the client's peer is the server's socket and the other way round */
    CHECK_EQ(weft_sockaddr_format((struct sockaddr *)&ci.peername, ci.peername_len, a, sizeof a, &pa), 0);
    CHECK_EQ(weft_sockaddr_format((struct sockaddr *)&srv_info.sockname, srv_info.sockname_len, b, sizeof b, &pb),
             0);
    CHECK_STR(a, b);
    CHECK_EQ(pa, port);
    CHECK_EQ(pb, port);
    CHECK_EQ(weft_sockaddr_format((struct sockaddr *)&ci.sockname, ci.sockname_len, a, sizeof a, &pa), 0);
    CHECK_EQ(weft_sockaddr_format((struct sockaddr *)&srv_info.peername, srv_info.peername_len, b, sizeof b, &pb),
             0);
    CHECK_STR(a, b);
    CHECK_EQ(pa, pb);
    int on = 0;
    socklen_t ol = sizeof on;
    CHECK_EQ(getsockopt(ci.fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &on, &ol), 0);
    CHECK(on);
    CHECK_EQ(getsockopt(ci.fd, SOL_SOCKET, SO_KEEPALIVE, &on, &ol), 0);
    CHECK(on);
    finish(s, r, w);

    /* nothing listens on a closed server's port */
    CHECK_EQ(start_echo("127.0.0.1", NULL, &s), 0);
    port = weft_server_port(s);
    CHECK_EQ(weft_server_close(s), 0);
    CHECK(!weft_server_is_serving(s));
    CHECK_EQ(weft_server_wait_closed(s), 0);
    weft_server_free(s);
    CHECK_EQ(weft_open_connection("127.0.0.1", port, NULL, &r, &w), UV_ECONNREFUSED);
    CHECK(r == NULL && w == NULL);

    /* getaddrinfo through the thread pool; errors never leak UV_EAI_* codes */
    struct addrinfo *res;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    CHECK_EQ(weft_getaddrinfo("localhost", "80", &hints, &res), 0);
    CHECK(res != NULL);
    weft_freeaddrinfo(res);
    hints.ai_family = 12345;
    CHECK_EQ(weft_getaddrinfo("localhost", "80", &hints, &res), WEFT_ERESOLVE);
    CHECK(weft_error_message() != NULL);
    CHECK(strstr(weft_error_message(), "getaddrinfo") != NULL);
    hints.ai_family = AF_UNSPEC;
    /* cancelled lookups: the result is dropped in the background */
    for (int i = 0; i < 20; i++) {
        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, 0), 0);
        int rc = weft_timeout_exit(&to, weft_getaddrinfo("localhost", "80", &hints, &res));
        CHECK(rc == 0 || rc == WEFT_ETIMEDOUT);
        if (rc == 0)
            weft_freeaddrinfo(res);
    }
    CHECK_EQ(weft_open_connection("127.0.0.1", 70000, NULL, &r, &w), WEFT_EINVAL);
    CHECK_EQ(weft_open_connection(NULL, 80, NULL, &r, &w), WEFT_EINVAL);
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", -1, NULL, &s), WEFT_EINVAL);
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0,
                               &(weft_server_opts_t){ .mode = (weft_serve_mode_t)7 }, &s),
             WEFT_EINVAL);
    /* a busy port */
    weft_server_t *s2;
    CHECK_EQ(start_echo("127.0.0.1", NULL, &s), 0);
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", weft_server_port(s),
                               &(weft_server_opts_t){ .no_reuse_address = true }, &s2),
             UV_EADDRINUSE);
    weft_server_free(s);
    /* cancelling a connect in progress leaks nothing */
    CHECK_EQ(start_echo("127.0.0.1", NULL, &s), 0);
    for (int i = 0; i < 20; i++) {
        weft_timeout_t to;
        CHECK_EQ(weft_timeout_enter(&to, 0), 0);
        int rc = weft_timeout_exit(&to, weft_open_connection("127.0.0.1", weft_server_port(s), NULL, &r, &w));
        CHECK(rc == 0 || rc == WEFT_ETIMEDOUT);
        if (rc == 0) {
            weft_writer_abort(w);
            CHECK_EQ(weft_writer_wait_closed(w), 0);
            weft_reader_release(r);
            weft_writer_release(w);
        }
    }
    CHECK(weft_server_shutdown(s, 5.0) >= 0);
    weft_server_free(s);
    return 0;
}

static void test_misc(void) { CHECK_EQ(run_main(1, misc_main, NULL), 0); }

/* Off a task: awaiting calls say so; wrong thread: WEFT_EWRONGLOOP */
static void test_not_in_task(void)
{
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", 1, NULL, &r, &w), WEFT_ENOTCORO);
    weft_server_t *s;
    CHECK_EQ(weft_start_server(echo_handler, NULL, "127.0.0.1", 0, NULL, &s), WEFT_ENOTCORO);
    struct addrinfo *res;
    CHECK_EQ(weft_getaddrinfo("localhost", NULL, NULL, &res), WEFT_ENOTCORO);
    CHECK_EQ(weft_server_close(NULL), WEFT_EINVAL);
    CHECK_EQ(weft_writer_write(NULL, "x", 1), WEFT_EINVAL);
    CHECK_EQ(weft_reader_read(NULL, NULL, 0, NULL), WEFT_EINVAL);
    weft_server_free(NULL);
    weft_reader_release(NULL);
    weft_writer_release(NULL);
}

int main(int argc, char **argv)
{
    alarm(120 * WD_SCALE);   /* watchdog (scaled for sanitizer builds): the default action ends the process */
    setvbuf(stdout, NULL, _IONBF, 0);
    RUN(test_not_in_task);
    RUN(test_echo_sizes);
    RUN(test_readline_limit);
    RUN(test_readexactly_short);
    RUN(test_backpressure);
    RUN(test_peer_reset);
    RUN(test_half_close);
    RUN(test_cancel_read);
    RUN(test_cancel_task);
    RUN(test_cancel_drain);
    RUN(test_unix_echo);
    RUN(test_ipv6_echo);
    RUN(test_misc);
    return 0;
}
