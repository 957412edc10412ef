/**
 * @file weft/fs.h
 * @brief Awaitable file operations on libuv's thread pool: open, read,
 *        write, pread, pwrite, fsync, stat, close, unlink, and whole-file
 *        helpers.
 *
 * asyncio has no file API of its own (people use loop.run_in_executor or
 * aiofiles); these are the same idea on libuv's fs requests: the call runs on
 * libuv's thread pool while the calling task waits, so the loop keeps
 * running. Descriptors are plain POSIX ones (int): they may be used with any
 * other call, on any thread.
 *
 * **Threads.** Every function here awaits: call it from a task, on any loop
 * (WEFT_ENOTCORO otherwise). The request runs on the calling task's loop.
 *
 * **Cancellation.** Every call returns WEFT_ECANCELED at once when its task
 * is cancelled, so timeouts work around them. The operation itself may
 * already be running on a pool thread and then runs to its end: weft keeps
 * the request and its own copy of the data alive until libuv reports it done
 * and then drops the result, so the caller may free or reuse its buffer as
 * soon as the call returned. Consequences: a cancelled write may still have
 * been written (in full or partly); a cancelled read may have moved the file
 * position (read/write without an offset); a cancelled open may have opened
 * the file (weft then closes that descriptor itself).
 *
 * **Errors.** Negative errno codes from the system calls pass through
 * (-ENOENT: no such file, -EACCES, -EISDIR, -EBADF, -ENOSPC, ...; the same
 * values as libuv's UV_E* codes), plus WEFT_EINVAL, WEFT_ENOTCORO,
 * WEFT_ECANCELED, WEFT_ENOMEM.
 *
 * **Copies.** read, pread, write and pwrite go through a buffer owned by the
 * request (that is what makes cancellation safe): one memcpy per call.
 */
#ifndef WEFT_FS_H
#define WEFT_FS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What weft_fs_stat() reports (struct stat's useful fields, times in ns since the epoch). */
typedef struct weft_stat {
    uint64_t dev, ino, nlink, size, blocks, blksize;
    uint32_t mode, uid, gid;
    int64_t atime_ns, mtime_ns, ctime_ns;
} weft_stat_t;

/**
 * open(2): open @p path with POSIX @p flags (O_RDONLY, O_WRONLY | O_CREAT |
 * O_TRUNC, ...; O_CLOEXEC is always added) and @p mode for a created file.
 * *fd receives the descriptor (close it with weft_fs_close or close(2)).
 * @return 0; -ENOENT (missing file, without O_CREAT); -EACCES; another
 * negative errno; WEFT_EINVAL (NULL path/fd); WEFT_ECANCELED (any descriptor
 * opened meanwhile is closed by weft); WEFT_ENOTCORO; WEFT_ENOMEM.
 */
WEFT_API int weft_fs_open(const char *path, int flags, int mode, int *fd);

/** close(2). @return 0, -EBADF, another negative errno, WEFT_ECANCELED (the
 *  close still happens), WEFT_ENOTCORO, WEFT_ENOMEM. */
WEFT_API int weft_fs_close(int fd);

/**
 * read(2) at the file position: up to @p len bytes into @p buf; *nread
 * receives the count (0: end of file). @return 0, a negative errno,
 * WEFT_EINVAL (NULL buf with len > 0, NULL nread), WEFT_ECANCELED (buf is
 * untouched), WEFT_ENOTCORO, WEFT_ENOMEM.
 */
WEFT_API int weft_fs_read(int fd, void *buf, size_t len, size_t *nread);

/** pread(2): as weft_fs_read at @p offset (>= 0: WEFT_EINVAL otherwise); the
 *  file position does not move. */
WEFT_API int weft_fs_pread(int fd, void *buf, size_t len, int64_t offset, size_t *nread);

/**
 * write(2) at the file position: writes @p len bytes from @p data, looping
 * over short writes; *nwritten (may be NULL) receives the count written
 * (== len on success). @return 0, a negative errno (with the bytes written
 * before the error in *nwritten), WEFT_EINVAL, WEFT_ECANCELED, WEFT_ENOTCORO,
 * WEFT_ENOMEM.
 */
WEFT_API int weft_fs_write(int fd, const void *data, size_t len, size_t *nwritten);

/** pwrite(2): as weft_fs_write at @p offset (>= 0). */
WEFT_API int weft_fs_pwrite(int fd, const void *data, size_t len, int64_t offset, size_t *nwritten);

/** fsync(2). @return 0, a negative errno, WEFT_ECANCELED, WEFT_ENOTCORO, WEFT_ENOMEM. */
WEFT_API int weft_fs_fsync(int fd);

/** stat(2) of @p path into *st. @return 0, -ENOENT, another negative errno,
 *  WEFT_EINVAL, WEFT_ECANCELED, WEFT_ENOTCORO, WEFT_ENOMEM. */
WEFT_API int weft_fs_stat(const char *path, weft_stat_t *st);

/** fstat(2) of @p fd. @return as weft_fs_stat (-EBADF for a bad descriptor). */
WEFT_API int weft_fs_fstat(int fd, weft_stat_t *st);

/** unlink(2). @return 0, -ENOENT, another negative errno, WEFT_EINVAL,
 *  WEFT_ECANCELED, WEFT_ENOTCORO, WEFT_ENOMEM. */
WEFT_API int weft_fs_unlink(const char *path);

/**
 * Read a whole file: *data receives a malloc'ed buffer (free() it) with the
 * contents plus a terminating NUL byte not counted in *len.
 * @return 0; -EFBIG if the file is larger than @p max bytes (nothing
 * returned); -ENOENT; another negative errno; WEFT_EINVAL;
 * WEFT_ECANCELED (nothing returned; the request finishes in the background);
 * WEFT_ENOTCORO; WEFT_ENOMEM.
 */
WEFT_API int weft_fs_read_file(const char *path, size_t max, void **data, size_t *len);

/**
 * Write a whole file: create or truncate @p path (with @p mode for a new
 * file, e.g. 0644) and write @p len bytes of @p data. With @p sync, fsync
 * before closing. @return 0; a negative errno (-ENOENT for a missing
 * directory, -ENOSPC, ...); WEFT_EINVAL; WEFT_ECANCELED (the file may be
 * partly written); WEFT_ENOTCORO; WEFT_ENOMEM.
 */
WEFT_API int weft_fs_write_file(const char *path, const void *data, size_t len, int mode, bool sync);

#ifdef __cplusplus
}
#endif
#endif
