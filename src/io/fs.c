/* Files: libuv fs requests awaited by tasks.
 *
 * Every call allocates a request record (fsreq_t) holding the uv_fs_t and,
 * for reads and writes, a buffer of its own. The task suspends; the fs
 * callback (on the task's loop) stores the result and wakes it. If the task is
 * cancelled first, the cancel function marks the record abandoned (through a
 * flag in the task's frame, which it reads after resuming) and asks libuv to
 * cancel the request if it has not started; either way the callback still
 * comes, and it then frees the record, its buffer and, for an open that
 * succeeded, closes the descriptor. So the thread pool never touches memory
 * that was freed, and the caller's buffers are never used after the call
 * returned. */
#include "core/task.h"
#include "weft/fs.h"
#include "weft/stream.h"

#include <fcntl.h>
#include <unistd.h>

typedef struct fsreq {
    uv_fs_t req;
    weft__task_t *task;
    bool *abandoned;        /* in the awaiting frame while it waits; NULL once abandoned */
    bool gone;              /* the awaiter left: the callback cleans up */
    bool is_open;
    int close_fd;           /* >= 0: a descriptor of weft's own to close if the awaiter leaves */
    char *buf;              /* owned */
} fsreq_t;

static void req_free(fsreq_t *r)
{
    uv_fs_req_cleanup(&r->req);
    free(r->buf);
    free(r);
}

static void fs_cb(uv_fs_t *req)
{
    fsreq_t *r = req->data;
    if (r->gone) {
        if (r->is_open && req->result >= 0) {
            uv_fs_t c;
            uv_fs_close(NULL, &c, (uv_file)req->result, NULL);   /* synchronous */
            uv_fs_req_cleanup(&c);
        }
        if (r->close_fd >= 0)
            close(r->close_fd);
        req_free(r);
        return;
    }
    weft__task_wake(r->task, 0);
}

static bool fs_cancel(weft__task_t *t, const char *msg)
{
    fsreq_t *r = t->wait_obj;
    *r->abandoned = true;
    r->abandoned = NULL;
    r->gone = true;
    uv_cancel((uv_req_t *)&r->req);   /* fails harmlessly if already running */
    weft__task_set_error(t, WEFT_ECANCELED, weft__strdup(msg));
    weft__task_wake(t, WEFT_ECANCELED);
    return true;
}

static int begin(fsreq_t **out, size_t buflen)
{
    *out = NULL;
    weft__task_t *t = weft__thread()->task;
    if (!t)
        return WEFT_ENOTCORO;
    fsreq_t *r = calloc(1, sizeof *r);
    if (!r)
        return WEFT_ENOMEM;
    if (buflen && !(r->buf = malloc(buflen))) {
        free(r);
        return WEFT_ENOMEM;
    }
    r->task = t;
    r->close_fd = -1;
    r->req.data = r;
    *out = r;
    return 0;
}

static uv_loop_t *uvl(void) { return weft_loop_uv(weft__thread()->running); }

/* After uv_fs_*(..., fs_cb) returned @started: wait for the callback. On
 * success *res gets req.result and the caller owns @r (free with req_free);
 * on cancellation @r belongs to the callback. On any failure here, r's
 * close_fd is closed (now or by the callback). */
static int finish(fsreq_t *r, int started, ssize_t *res)
{
    if (started < 0) {
        if (r->close_fd >= 0)
            close(r->close_fd);
        req_free(r);
        return started;
    }
    bool abandoned = false;
    r->abandoned = &abandoned;
    int rc = weft__task_suspend(r->task, WEFT__W_OTHER, fs_cancel, r);
    if (abandoned)
        return WEFT_ECANCELED;   /* r is the callback's now */
    r->abandoned = NULL;
    *res = r->req.result;
    if (rc < 0) {
        /* done, but a cancel arrived before the task resumed: asyncio raises it */
        if (r->is_open && r->req.result >= 0)
            close((int)r->req.result);
        if (r->close_fd >= 0)
            close(r->close_fd);
        req_free(r);
        return rc;
    }
    return 0;
}

int weft_fs_open(const char *path, int flags, int mode, int *fd)
{
    if (fd)
        *fd = -1;
    if (!path || !fd)
        return WEFT_EINVAL;
    fsreq_t *r;
    int rc = begin(&r, 0);
    if (rc < 0)
        return rc;
    r->is_open = true;
    ssize_t res;
    if ((rc = finish(r, uv_fs_open(uvl(), &r->req, path, flags | O_CLOEXEC, mode, fs_cb), &res)) < 0)
        return rc;
    req_free(r);
    if (res < 0)
        return (int)res;
    *fd = (int)res;
    return 0;
}

/* One request without a buffer; returns its result. */
#define SIMPLE(call)                                          \
    do {                                                      \
        fsreq_t *r;                                           \
        int rc = begin(&r, 0);                                \
        if (rc < 0)                                           \
            return rc;                                        \
        ssize_t res;                                          \
        if ((rc = finish(r, (call), &res)) < 0)               \
            return rc;                                        \
        req_free(r);                                          \
        return res < 0 ? (int)res : 0;                        \
    } while (0)

int weft_fs_close(int fd) { SIMPLE(uv_fs_close(uvl(), &r->req, fd, fs_cb)); }

int weft_fs_fsync(int fd) { SIMPLE(uv_fs_fsync(uvl(), &r->req, fd, fs_cb)); }

int weft_fs_unlink(const char *path)
{
    if (!path)
        return WEFT_EINVAL;
    SIMPLE(uv_fs_unlink(uvl(), &r->req, path, fs_cb));
}

static void conv_stat(const uv_stat_t *s, weft_stat_t *st)
{
    st->dev = s->st_dev;
    st->ino = s->st_ino;
    st->nlink = s->st_nlink;
    st->size = s->st_size;
    st->blocks = s->st_blocks;
    st->blksize = s->st_blksize;
    st->mode = (uint32_t)s->st_mode;
    st->uid = (uint32_t)s->st_uid;
    st->gid = (uint32_t)s->st_gid;
    st->atime_ns = (int64_t)s->st_atim.tv_sec * 1000000000 + s->st_atim.tv_nsec;
    st->mtime_ns = (int64_t)s->st_mtim.tv_sec * 1000000000 + s->st_mtim.tv_nsec;
    st->ctime_ns = (int64_t)s->st_ctim.tv_sec * 1000000000 + s->st_ctim.tv_nsec;
}

static int do_stat(const char *path, int fd, weft_stat_t *st)
{
    if (!st)
        return WEFT_EINVAL;
    fsreq_t *r;
    int rc = begin(&r, 0);
    if (rc < 0)
        return rc;
    int started = path ? uv_fs_stat(uvl(), &r->req, path, fs_cb) : uv_fs_fstat(uvl(), &r->req, fd, fs_cb);
    ssize_t res;
    if ((rc = finish(r, started, &res)) < 0)
        return rc;
    if (res >= 0)
        conv_stat(&r->req.statbuf, st);
    req_free(r);
    return res < 0 ? (int)res : 0;
}

int weft_fs_stat(const char *path, weft_stat_t *st)
{
    if (!path)
        return WEFT_EINVAL;
    return do_stat(path, -1, st);
}

int weft_fs_fstat(int fd, weft_stat_t *st) { return do_stat(NULL, fd, st); }

/* One read of up to @len bytes at @off (-1: file position) into @buf. */
static int read_once(int fd, void *buf, size_t len, int64_t off, size_t *nread)
{
    *nread = 0;
    if (len > (size_t)INT32_MAX)
        len = (size_t)INT32_MAX;   /* read(2) returns at most about 2 GiB anyway */
    fsreq_t *r;
    int rc = begin(&r, len ? len : 1);
    if (rc < 0)
        return rc;
    uv_buf_t b = uv_buf_init(r->buf, (unsigned int)len);
    ssize_t res;
    if ((rc = finish(r, uv_fs_read(uvl(), &r->req, fd, &b, 1, off, fs_cb), &res)) < 0)
        return rc;
    if (res > 0) {
        memcpy(buf, r->buf, (size_t)res);
        *nread = (size_t)res;
    }
    req_free(r);
    return res < 0 ? (int)res : 0;
}

int weft_fs_read(int fd, void *buf, size_t len, size_t *nread)
{
    if (nread)
        *nread = 0;
    if ((!buf && len) || !nread)
        return WEFT_EINVAL;
    return read_once(fd, buf, len, -1, nread);
}

int weft_fs_pread(int fd, void *buf, size_t len, int64_t offset, size_t *nread)
{
    if (nread)
        *nread = 0;
    if ((!buf && len) || !nread || offset < 0)
        return WEFT_EINVAL;
    return read_once(fd, buf, len, offset, nread);
}

#define WCHUNK ((size_t)1 << 30)

/* Write all of @data at @off (-1: file position), looping over short writes.
 * @own_fd: weft's own descriptor, closed by weft if the call is cancelled. */
static int write_all(int fd, const void *data, size_t len, int64_t off, size_t *nwritten, bool *own_fd)
{
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        size_t n = len - done < WCHUNK ? len - done : WCHUNK;
        fsreq_t *r;
        if ((rc = begin(&r, n)) < 0)
            break;
        memcpy(r->buf, (const char *)data + done, n);
        if (own_fd)
            r->close_fd = fd;
        uv_buf_t b = uv_buf_init(r->buf, (unsigned int)n);
        ssize_t res;
        int64_t o = off < 0 ? -1 : off + (int64_t)done;
        if ((rc = finish(r, uv_fs_write(uvl(), &r->req, fd, &b, 1, o, fs_cb), &res)) < 0) {
            if (own_fd)
                *own_fd = false;   /* finish closed it */
            break;
        }
        req_free(r);
        if (res < 0) {
            rc = (int)res;
            break;
        }
        if (res == 0) {   /* no progress: treat as a full device */
            rc = -ENOSPC;
            break;
        }
        done += (size_t)res;
    }
    if (nwritten)
        *nwritten = done;
    return rc;
}

int weft_fs_write(int fd, const void *data, size_t len, size_t *nwritten)
{
    if (nwritten)
        *nwritten = 0;
    if (!data && len)
        return WEFT_EINVAL;
    return write_all(fd, data, len, -1, nwritten, NULL);
}

int weft_fs_pwrite(int fd, const void *data, size_t len, int64_t offset, size_t *nwritten)
{
    if (nwritten)
        *nwritten = 0;
    if ((!data && len) || offset < 0)
        return WEFT_EINVAL;
    return write_all(fd, data, len, offset, nwritten, NULL);
}

/* ---- whole files ------------------------------------------------------------------ */

/* Close @fd without letting a cancellation leak it (close(2) is quick). */
static void close_quietly(int fd) { close(fd); }

int weft_fs_read_file(const char *path, size_t max, void **data, size_t *len)
{
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (!path || !data || !len)
        return WEFT_EINVAL;
    int fd;
    int rc = weft_fs_open(path, O_RDONLY, 0, &fd);
    if (rc < 0)
        return rc;
    weft_stat_t st;
    if ((rc = weft_fs_fstat(fd, &st)) < 0) {
        close_quietly(fd);
        return rc;
    }
    if (st.size > max) {
        close_quietly(fd);
        return -EFBIG;
    }
    /* read straight into the result (no bounce buffer): the request owns it while it runs */
    size_t cap = (size_t)st.size + 1, have = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close_quietly(fd);
        return WEFT_ENOMEM;
    }
    for (;;) {
        if (have == cap) {   /* the file grew */
            if (cap > max) {
                free(buf);
                close_quietly(fd);
                return -EFBIG;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close_quietly(fd);
                return WEFT_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        fsreq_t *r;
        if ((rc = begin(&r, 0)) < 0)
            break;
        size_t want = cap - have > (size_t)INT32_MAX ? (size_t)INT32_MAX : cap - have;
        r->buf = buf;   /* the request owns the result buffer while it runs */
        r->close_fd = fd;   /* and the descriptor, should this task be cancelled */
        uv_buf_t b = uv_buf_init(buf + have, (unsigned int)want);
        ssize_t res;
        if ((rc = finish(r, uv_fs_read(uvl(), &r->req, fd, &b, 1, (int64_t)have, fs_cb), &res)) < 0) {
            return rc;   /* the buffer and the descriptor went with the request */
        }
        r->buf = NULL;
        r->close_fd = -1;
        req_free(r);
        if (res < 0) {
            rc = (int)res;
            break;
        }
        if (res == 0)
            break;
        have += (size_t)res;
    }
    close_quietly(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    if (have > max) {
        free(buf);
        return -EFBIG;
    }
    buf[have] = '\0';
    *data = buf;
    *len = have;
    return 0;
}

int weft_fs_write_file(const char *path, const void *data, size_t len, int mode, bool sync)
{
    if (!path || (!data && len))
        return WEFT_EINVAL;
    int fd;
    int rc = weft_fs_open(path, O_WRONLY | O_CREAT | O_TRUNC, mode, &fd);
    if (rc < 0)
        return rc;
    bool own = true;
    rc = write_all(fd, data, len, 0, NULL, &own);
    if (!own)
        return rc;   /* the descriptor went with the request */
    if (rc == 0 && sync)
        rc = weft_fs_fsync(fd);
    close_quietly(fd);
    return rc;
}
