/* A seeded random driver for the stream reader: random contents written in
 * random chunkings (with pauses) by a plain thread through a TCP socket, read
 * by weft's reader with random mixes of read / readexactly / readline /
 * readuntil, random separators, buffer sizes and reader limits. Every result
 * is checked against a model of the byte stream: which code each call must
 * return and which bytes it must hand over, whatever the chunking.
 * WEFT_FUZZ_SEED=<n> replays a run, WEFT_FUZZ_SECONDS=<s> sets its length
 * (default 2).
 *
 * Built with -DWEFT_LIBFUZZER (clang -fsanitize=fuzzer: `make fuzz`), the same
 * driver is a libFuzzer target: the input's first 8 bytes seed the chunking and
 * the calls, the rest is the stream's contents. */
#include "check.h"
#include "watchdog.h"
#include "weft.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXLEN (48 * 1024)

static uint64_t rs;

static uint32_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)(rs >> 16);
}

#if !defined(WEFT_LIBFUZZER)
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
#endif

/* ---- one case: the stream, how it is written, how it is read ---------------------------- */
struct fcase {
    uint8_t data[MAXLEN];
    size_t len;
    size_t chunk[512];   /* write sizes */
    int nchunks;
    uint32_t pause_mask; /* chunk k is followed by a short pause if bit k%32 is set */
    size_t limit;
    int lfd;             /* listening socket */
    int port;
    uint64_t seed;
};

static void make_chunks(struct fcase *c);
static void make_limit(struct fcase *c);

#if !defined(WEFT_LIBFUZZER)
static void make_case(struct fcase *c)
{
    make_limit(c);
    /* a small alphabet, so separators (one to three of its bytes) occur often */
    static const uint8_t alpha[] = { 'a', 'b', '\n', '\r', 0, 0xff, 'x' };
    c->len = rnd() % 4 == 0 ? rnd() % 64 : rnd() % MAXLEN;
    int skew = (int)(rnd() % 4);   /* some cases have long lines, others short */
    for (size_t i = 0; i < c->len; i++) {
        uint32_t r = rnd();
        c->data[i] = (skew == 0 && r % 50) ? 'x' : alpha[r % sizeof alpha];
    }
    make_chunks(c);
}
#endif

static void make_chunks(struct fcase *c)
{
    size_t left = c->len;
    c->nchunks = 0;
    while (left && c->nchunks < 511) {
        size_t max = rnd() % 3 == 0 ? 16 : 8192;
        size_t k = 1 + rnd() % max;
        if (k > left)
            k = left;
        c->chunk[c->nchunks++] = k;
        left -= k;
    }
    if (left)
        c->chunk[c->nchunks++] = left;
    c->pause_mask = rnd();
}

static void make_limit(struct fcase *c)
{
    static const size_t limits[] = { 1, 2, 3, 7, 16, 100, 1024, 4096, 65536 };
    c->limit = limits[rnd() % (sizeof limits / sizeof limits[0])];
}

static void *writer_thread(void *arg)
{
    struct fcase *c = arg;
    int fd = accept(c->lfd, NULL, NULL);
    CHECK(fd >= 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    size_t off = 0;
    for (int k = 0; k < c->nchunks; k++) {
        size_t done = 0;
        while (done < c->chunk[k]) {
            ssize_t w = write(fd, c->data + off + done, c->chunk[k] - done);
            CHECK(w > 0);
            done += (size_t)w;
        }
        off += c->chunk[k];
        if (c->pause_mask & (1u << (k % 32)))
            usleep(100 + (useconds_t)(k * 37 % 400));
    }
    close(fd);   /* end of stream */
    return NULL;
}

static size_t find(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn)
{
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, n, nn) == 0)
            return i;
    return SIZE_MAX;
}

static uint8_t buf[MAXLEN + 16];
static long ops_done[5];

static int reader_main(void *arg, weft_value_t *out)
{
    (void)out;
    struct fcase *c = arg;
    weft_reader_t *r;
    weft_writer_t *w;
    CHECK_EQ(weft_open_connection("127.0.0.1", c->port, &(weft_stream_opts_t){ .limit = c->limit }, &r, &w), 0);
    size_t pos = 0;     /* the model: bytes consumed so far */
    bool must_consume = false;
    for (int guard = 0; guard < 100000; guard++) {
        size_t rest = c->len - pos;
        int op = must_consume ? (int)(rnd() % 2) : (int)(rnd() % 5);
        size_t cap = 1 + rnd() % (rnd() % 4 == 0 ? 8 : 9000);
        size_t n = 0;
        int rc;
        must_consume = false;
        ops_done[op]++;
        if (op == 0) {   /* read(cap): at least one byte unless at the end, never more than there is */
            rc = weft_reader_read(r, buf, cap, &n);
            CHECK_EQ(rc, 0);
            if (rest == 0) {
                CHECK_EQ(n, 0);
                break;
            }
            CHECK(n >= 1 && n <= cap && n <= rest);
            CHECK(memcmp(buf, c->data + pos, n) == 0);
            pos += n;
        } else if (op == 1) {   /* readexactly(cap) */
            size_t want = rnd() % 2 ? cap : 1 + rnd() % 64;
            rc = weft_reader_readexactly(r, buf, want, &n);
            if (rest >= want) {
                CHECK_EQ(rc, 0);
                CHECK_EQ(n, want);
            } else {
                CHECK_EQ(rc, WEFT_EINCOMPLETE);
                CHECK_EQ(n, rest);
            }
            CHECK(memcmp(buf, c->data + pos, n) == 0);
            pos += n;
            if (rest == 0)
                break;
        } else {   /* readline, or readuntil with a 1-3 byte separator */
            static const uint8_t seps[][3] = { { '\n' }, { '\r', '\n' }, { 'a', 'b' }, { 0 }, { 0xff, 'x', 'a' }, { 'x' } };
            static const size_t seplens[] = { 1, 2, 2, 1, 3, 1 };
            bool line = op == 2;
            int si = line ? 0 : (int)(rnd() % 6);
            const uint8_t *sep = seps[si];
            size_t seplen = seplens[si];
            rc = line ? weft_reader_readline(r, buf, cap, &n) : weft_reader_readuntil(r, sep, seplen, buf, cap, &n);
            size_t lim = c->limit < cap ? c->limit : cap;
            size_t at = find(c->data + pos, rest, sep, seplen);
            if (!line && cap < seplen) {
                CHECK_EQ(rc, WEFT_EINVAL);
                continue;
            }
            if (at != SIZE_MAX) {
                size_t ln = at + seplen;
                if (ln <= lim) {
                    CHECK_EQ(rc, 0);
                    CHECK_EQ(n, ln);
                } else {
                    CHECK_EQ(rc, WEFT_ELIMIT);   /* nothing consumed */
                    must_consume = true;
                    continue;
                }
            } else if (rest > lim) {
                CHECK_EQ(rc, WEFT_ELIMIT);
                must_consume = true;
                continue;
            } else {   /* the end of the stream: the rest is the last (partial) line */
                CHECK_EQ(rc, line ? 0 : WEFT_EINCOMPLETE);
                CHECK_EQ(n, rest);
            }
            CHECK(memcmp(buf, c->data + pos, n) == 0);
            pos += n;
            if (rest == 0)
                break;
        }
    }
    CHECK_EQ(pos, c->len);
    CHECK(weft_reader_at_eof(r));
    CHECK_EQ(weft_writer_close(w), 0);
    weft_writer_wait_closed(w);
    weft_reader_release(r);
    weft_writer_release(w);
    return 0;
}

#if !defined(WEFT_LIBFUZZER)
static uint64_t cur_seed;
static bool all_done;

static void say_case(void)
{
    if (!all_done)
        fprintf(stderr, "test_fuzz_stream: failed in the case of seed %llu (WEFT_FUZZ_SEED=%llu replays it)\n",
                (unsigned long long)cur_seed, (unsigned long long)cur_seed);
}
#endif

static void one_case(struct fcase *c, weft_runtime_t **rtp)
{
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c->lfd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK_EQ(bind(c->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    CHECK_EQ(getsockname(c->lfd, (struct sockaddr *)&a, &al), 0);
    c->port = ntohs(a.sin_port);
    CHECK_EQ(listen(c->lfd, 1), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, writer_thread, c), 0);
    weft_runtime_t *rt;
    CHECK_EQ(weft_runtime_new(&(weft_runtime_opts_t){ .workers = 1 }, &rt), 0);
    *rtp = rt;
    int rc = weft_runtime_run(rt, reader_main, c, NULL, NULL);
    if (rc != 0)
        fprintf(stderr, "case seed %llu: reader ended with %d\n", (unsigned long long)c->seed, rc);
    CHECK_EQ(rc, 0);
    CHECK_EQ(weft_runtime_free(rt), 0);
    pthread_join(th, NULL);
    close(c->lfd);
}

#if defined(WEFT_LIBFUZZER)
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static struct fcase c;
    uint64_t s = 0;
    memcpy(&s, d, n < 8 ? n : 8);
    rs = s * 0x9e3779b97f4a7c15ull | 1;
    make_limit(&c);
    c.len = n > 8 ? n - 8 : 0;
    if (c.len > MAXLEN)
        c.len = MAXLEN;
    if (c.len)
        memcpy(c.data, d + 8, c.len);
    make_chunks(&c);
    c.pause_mask &= 0x11111111u;   /* fewer pauses: executions per second matter here */
    weft_runtime_t *rt;
    one_case(&c, &rt);
    return 0;
}
#else
int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("WEFT_FUZZ_SEED");
    uint64_t seed = e && *e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    e = getenv("WEFT_FUZZ_SECONDS");
    double seconds = e && *e ? atof(e) : 2.0;
    printf("test_fuzz_stream: seed %llu (replay with WEFT_FUZZ_SEED=%llu), %.0f s\n", (unsigned long long)seed,
           (unsigned long long)seed, seconds);
    fflush(stdout);
    wd_start(60);
    atexit(say_case);
    static struct fcase c;
    double t0 = now_s();
    int cases = 0;
    do {
        /* each case has its own seed, printed on failure: WEFT_FUZZ_SEED=that replays it first */
        c.seed = cur_seed = seed + (uint64_t)cases;
        rs = c.seed * 0x9e3779b97f4a7c15ull | 1;
        make_case(&c);
        weft_runtime_t *rt;
        wd_progress();
        one_case(&c, &rt);
        cases++;
    } while (now_s() - t0 < seconds);
    all_done = true;
    printf("ok: %d streams; %ld read, %ld readexactly, %ld readline, %ld readuntil calls checked against the model\n",
           cases, ops_done[0], ops_done[1], ops_done[2], ops_done[3] + ops_done[4]);
    return 0;
}
#endif
