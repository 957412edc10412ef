/* Files: whole-file round trips from 0 B to 64 MiB verified byte for byte,
 * the descriptor calls (open, pread/pwrite, read/write at the position,
 * fsync, fstat, close), missing files and other errors, and cancellation:
 * reads, writes, opens and whole-file reads cancelled while libuv's pool runs
 * them, with the caller freeing its buffer at once (ASan checks nobody writes
 * into it later) and no descriptor leaked. */
#include "sync_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define BIGGEST ((size_t)16 << 20)
#else
#define BIGGEST ((size_t)64 << 20)
#endif

static char dir[64];

static uint8_t pat(size_t seed, size_t i)
{
    uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull + i;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return (uint8_t)(x >> 40);
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- whole files ------------------------------------------------------------------- */

static int sizes_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    static const size_t sizes[] = { 0, 1, 4095, 4096, 65537, ((size_t)1 << 20) + 3, BIGGEST };
    char p[128];
    path_of(p, sizeof p, "whole");
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint8_t *data = malloc(n ? n : 1);
        CHECK(data);
        for (size_t i = 0; i < n; i++)
            data[i] = pat(k, i);
        CHECK_EQ(weft_fs_write_file(p, data, n, 0644, k == 3), 0);
        weft_stat_t st;
        CHECK_EQ(weft_fs_stat(p, &st), 0);
        CHECK_EQ(st.size, n);
        CHECK(S_ISREG(st.mode));
        void *back;
        size_t len;
        CHECK_EQ(weft_fs_read_file(p, SIZE_MAX, &back, &len), 0);
        CHECK_EQ(len, n);
        CHECK(memcmp(back, data, n) == 0);
        CHECK_EQ(((char *)back)[n], 0);
        free(back);
        if (n > 10)   /* too big for the limit: nothing returned */
            CHECK_EQ(weft_fs_read_file(p, n - 1, &back, &len), -EFBIG);
        free(data);
    }
    CHECK_EQ(weft_fs_unlink(p), 0);
    return 0;
}

static void test_whole_file_sizes(void) { run_loop(sizes_body, NULL); }

/* ---- descriptor calls ---------------------------------------------------------------- */

static int fd_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    char p[128];
    path_of(p, sizeof p, "fdcalls");
    int fd;
    CHECK_EQ(weft_fs_open(p, O_RDWR | O_CREAT | O_TRUNC, 0600, &fd), 0);
    CHECK(fd >= 0);
    size_t n;
    CHECK_EQ(weft_fs_write(fd, "hello ", 6, &n), 0);
    CHECK_EQ(n, 6);
    CHECK_EQ(weft_fs_write(fd, "world", 5, &n), 0);
    CHECK_EQ(weft_fs_pwrite(fd, "J", 1, 0, &n), 0);   /* the position stays at 11 */
    CHECK_EQ(weft_fs_write(fd, "!", 1, NULL), 0);
    CHECK_EQ(weft_fs_fsync(fd), 0);
    weft_stat_t st;
    CHECK_EQ(weft_fs_fstat(fd, &st), 0);
    CHECK_EQ(st.size, 12);
    char buf[32] = { 0 };
    CHECK_EQ(weft_fs_pread(fd, buf, sizeof buf, 0, &n), 0);
    CHECK_EQ(n, 12);
    CHECK(memcmp(buf, "Jello world!", 12) == 0);
    CHECK_EQ(weft_fs_pread(fd, buf, sizeof buf, 12, &n), 0);
    CHECK_EQ(n, 0);   /* end of file */
    CHECK_EQ(lseek(fd, 6, SEEK_SET), 6);
    CHECK_EQ(weft_fs_read(fd, buf, 5, &n), 0);
    CHECK_EQ(n, 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    CHECK_EQ(weft_fs_read(fd, buf, 0, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_fs_close(fd), 0);
    CHECK_EQ(weft_fs_close(fd), -EBADF);
    CHECK_EQ(weft_fs_read(fd, buf, 4, &n), -EBADF);
    CHECK_EQ(weft_fs_unlink(p), 0);
    return 0;
}

static void test_descriptor_calls(void) { run_loop(fd_body, NULL); }

/* ---- errors ----------------------------------------------------------------------------- */

static int err_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    char p[128];
    path_of(p, sizeof p, "missing");
    int fd = 0;
    void *data = (void *)1;
    size_t len = 1;
    weft_stat_t st;
    CHECK_EQ(weft_fs_open(p, O_RDONLY, 0, &fd), -ENOENT);
    CHECK_EQ(fd, -1);
    CHECK_EQ(weft_fs_read_file(p, SIZE_MAX, &data, &len), -ENOENT);
    CHECK(data == NULL);
    CHECK_EQ(len, 0);
    CHECK_EQ(weft_fs_stat(p, &st), -ENOENT);
    CHECK_EQ(weft_fs_unlink(p), -ENOENT);
    CHECK_EQ(weft_fs_write_file("/nonexistent-dir-weft/x", "a", 1, 0644, false), -ENOENT);
    CHECK_EQ(weft_fs_read_file(dir, SIZE_MAX, &data, &len), -EISDIR);
    CHECK_EQ(weft_fs_open(NULL, O_RDONLY, 0, &fd), WEFT_EINVAL);
    CHECK_EQ(weft_fs_pread(0, &st, 1, -1, &len), WEFT_EINVAL);
    CHECK_EQ(weft_fs_read(0, NULL, 1, &len), WEFT_EINVAL);
    CHECK_EQ(weft_fs_stat(p, NULL), WEFT_EINVAL);
    return 0;
}

static void test_errors(void)
{
    run_loop(err_body, NULL);
    int fd;
    CHECK_EQ(weft_fs_open("/", O_RDONLY, 0, &fd), WEFT_ENOTCORO);   /* outside a task */
}

/* ---- cancellation -------------------------------------------------------------------------- */

#define NCANCEL 40
#define CHUNK ((size_t)4 << 20)

struct cjob {
    int kind;
    int fd;
    int rc;
    bool started;
};

static int cancel_victim(void *arg, weft_value_t *res)
{
    (void)res;
    struct cjob *j = arg;
    char p[128];
    path_of(p, sizeof p, "big");
    uint8_t *buf = malloc(CHUNK);
    CHECK(buf);
    memset(buf, 0xAB, CHUNK);
    j->started = true;
    size_t n;
    switch (j->kind % 4) {
    case 0:
        j->rc = weft_fs_pread(j->fd, buf, CHUNK, 0, &n);
        break;
    case 1: {
        char w[128];
        snprintf(w, sizeof w, "%s/w%d", dir, j->kind);
        j->rc = weft_fs_write_file(w, buf, CHUNK, 0644, true);
        break;
    }
    case 2: {
        int fd = -1;
        j->rc = weft_fs_open(p, O_RDONLY, 0, &fd);
        if (j->rc == 0)
            close(fd);
        break;
    }
    default: {
        void *d;
        size_t len;
        j->rc = weft_fs_read_file(p, SIZE_MAX, &d, &len);
        if (j->rc == 0)
            free(d);
        break;
    }
    }
    /* the caller's buffer goes at once: the pool must not write into it later (ASan) */
    free(buf);
    return 0;
}

static int cancel_body(void *arg, weft_value_t *res)
{
    (void)arg;
    (void)res;
    char p[128];
    path_of(p, sizeof p, "big");
    uint8_t *data = malloc(CHUNK);
    CHECK(data);
    for (size_t i = 0; i < CHUNK; i++)
        data[i] = pat(7, i);
    CHECK_EQ(weft_fs_write_file(p, data, CHUNK, 0644, false), 0);
    int fd;
    CHECK_EQ(weft_fs_open(p, O_RDONLY, 0, &fd), 0);
    int fds0 = count_fds();
    struct cjob jobs[NCANCEL];
    weft_task_t *t[NCANCEL];
    for (int i = 0; i < NCANCEL; i++) {
        jobs[i] = (struct cjob){ .kind = i, .fd = fd };
        t[i] = spawn(cancel_victim, &jobs[i]);
    }
    CHECK_EQ(weft_yield(), 0);   /* every victim has submitted its first request and waits */
    for (int i = 0; i < NCANCEL; i++) {
        CHECK(jobs[i].started);
        CHECK_EQ(weft_task_cancel(t[i], NULL), 1);
    }
    for (int i = 0; i < NCANCEL; i++) {
        CHECK_EQ(await_release(t[i]), 0);
        CHECK_EQ(jobs[i].rc, WEFT_ECANCELED);
    }
    /* the abandoned requests finish on the pool and close what they opened */
    while (count_fds() != fds0)
        CHECK_EQ(weft_sleep(0.005), 0);
    /* the loop and the pool still work, and the file is intact */
    uint8_t *back = malloc(CHUNK);
    size_t n;
    CHECK_EQ(weft_fs_pread(fd, back, CHUNK, 0, &n), 0);
    CHECK_EQ(n, CHUNK);
    CHECK(memcmp(back, data, CHUNK) == 0);
    free(back);
    CHECK_EQ(weft_fs_close(fd), 0);
    free(data);

    /* under a timeout scope: WEFT_ETIMEDOUT from a 0 s deadline */
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0), 0);
    void *d = NULL;
    size_t len;
    int rc = weft_fs_read_file(p, SIZE_MAX, &d, &len);
    CHECK_EQ(weft_timeout_exit(&to, rc), WEFT_ETIMEDOUT);
    CHECK(d == NULL);
    return 0;
}

static void test_cancellation(void)
{
    run_loop(cancel_body, NULL);
}

int main(int argc, char **argv)
{
    alarm(240);   /* watchdog: hangs only */
    snprintf(dir, sizeof dir, "/tmp/weft-fs-XXXXXX");
    CHECK(mkdtemp(dir));
    RUN(test_whole_file_sizes);
    RUN(test_descriptor_calls);
    RUN(test_errors);
    RUN(test_cancellation);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
    return 0;
}
