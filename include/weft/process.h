/**
 * @file weft/process.h
 * @brief asyncio.subprocess in C: child processes whose stdin, stdout and
 *        stderr are weft streams, with wait, communicate and signals.
 *
 * A process belongs to the loop that started it (the running loop of the
 * caller): its pipes are connections of that loop, so the readers and
 * writers obey weft/stream.h's rules (that loop's thread only; every awaiting
 * call cancellable). weft_process_wait() and weft_process_returncode() may be
 * used from a task on any loop. Children are reaped by libuv (SIGCHLD) on the
 * process's loop: no zombie is left once the child ended and the loop ran.
 *
 * **Pipes.** Each piped descriptor is one end of a Unix socket pair (libuv's
 * own choice for child pipes), so weft_writer_write_eof() works on stdin.
 * SIGPIPE is ignored as for every weft stream: writing to a pipe whose child
 * end is closed returns UV_EPIPE (== -EPIPE) or UV_ECONNRESET.
 *
 * **Errors.** A program that cannot be run is reported by the create call:
 * UV_ENOENT (no such file), UV_EACCES (not executable), other negative errno
 * codes from fork/exec. WEFT_EINVAL for bad arguments.
 *
 * **End of life.** weft_process_free() is asyncio's transport close: a
 * child still running is killed (SIGKILL) and reaped in the background. Free
 * the process before its loop closes (a loop closed under a live child
 * leaves the child unreaped).
 */
#ifndef WEFT_PROCESS_H
#define WEFT_PROCESS_H

#include "common.h"
#include "loop.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What to connect a child's standard descriptor to. */
typedef enum weft_stdio {
    WEFT_STDIO_INHERIT = 0,  /**< the parent's own descriptor (asyncio's None) */
    WEFT_STDIO_PIPE,         /**< a pipe: a weft stream in the parent (asyncio.subprocess.PIPE) */
    WEFT_STDIO_DEVNULL,      /**< /dev/null (asyncio.subprocess.DEVNULL) */
    WEFT_STDIO_STDOUT,       /**< stderr only: the same as stdout (asyncio.subprocess.STDOUT) */
    WEFT_STDIO_FD,           /**< a descriptor of yours (the matching *_fd field; not closed by weft) */
} weft_stdio_t;

/** Options (NULL or zero fields: every descriptor inherited, the parent's
 *  environment and directory). */
typedef struct weft_process_opts {
    weft_stdio_t stdin_mode, stdout_mode, stderr_mode;
    int stdin_fd, stdout_fd, stderr_fd;   /**< with WEFT_STDIO_FD */
    const char *cwd;                       /**< working directory (NULL: the parent's) */
    char *const *env;                      /**< "NAME=value" list ending in NULL (NULL: the parent's) */
    bool new_session;                      /**< start_new_session=True (setsid) */
    weft_stream_opts_t stream;             /**< limit and write marks of the pipes */
} weft_process_opts_t;

/** asyncio.subprocess.Process. */
typedef struct weft_process weft_process_t;

/**
 * asyncio.create_subprocess_exec(program, *args): start @p file (looked up
 * in PATH if it has no slash) with argument vector @p argv (argv[0] is the
 * program's name; NULL-terminated; NULL means { file, NULL }). Returns once
 * the child runs (or failed to start). Loop thread of the running loop (a
 * task or a callback). The caller owns *out: weft_process_free().
 * @return 0; WEFT_EINVAL (NULL file/out, WEFT_STDIO_STDOUT for stdin or
 * stdout, a negative *_fd with WEFT_STDIO_FD); WEFT_ENOLOOP; WEFT_ENOMEM;
 * UV_ENOENT (no such program), UV_EACCES, another negative errno code.
 */
WEFT_API int weft_create_subprocess_exec(const char *file, char *const argv[], const weft_process_opts_t *opts,
                                         weft_process_t **out);

/** asyncio.create_subprocess_shell(cmd): "/bin/sh -c cmd". A command the
 *  shell cannot find is not an error here: the shell exits with 127.
 *  @return as weft_create_subprocess_exec. */
WEFT_API int weft_create_subprocess_shell(const char *cmd, const weft_process_opts_t *opts, weft_process_t **out);

/** Process.pid. Any thread. -1 for NULL. */
WEFT_API int weft_process_pid(const weft_process_t *p);

/** Process.stdin: the writer of the stdin pipe (borrowed, owned by the
 *  process), or NULL if stdin is not WEFT_STDIO_PIPE. Close it
 *  (weft_writer_close) to send end of file. Do not release it. */
WEFT_API weft_writer_t *weft_process_stdin(weft_process_t *p);
/** Process.stdout: the reader of the stdout pipe (borrowed), or NULL. Do not release it. */
WEFT_API weft_reader_t *weft_process_stdout(weft_process_t *p);
/** Process.stderr: the reader of the stderr pipe (borrowed), or NULL. Do not release it. */
WEFT_API weft_reader_t *weft_process_stderr(weft_process_t *p);

/**
 * Process.returncode: true once the child ended, with *code (may be NULL)
 * set to its exit status, or -N if signal N ended it (asyncio). False while
 * it runs (asyncio's None). Any thread.
 */
WEFT_API bool weft_process_returncode(const weft_process_t *p, int *code);

/**
 * Process.wait(): wait for the child to end; *code (may be NULL) receives
 * the return code as above. Awaiting, from a task on any loop; cancellable
 * (the child keeps running, as asyncio). Like asyncio, waiting while the
 * child writes to a pipe nobody reads can deadlock: use communicate.
 * @return 0; WEFT_ECANCELED; WEFT_EINVAL; WEFT_ENOTCORO.
 */
WEFT_API int weft_process_wait(weft_process_t *p, int *code);

/**
 * Process.communicate(input): write @p len bytes of @p input to stdin (if it
 * is a pipe; then stdin is closed, even when input is NULL), read stdout and
 * stderr (those that are pipes) to their end concurrently, then wait for the
 * child. A child that stops reading its stdin (broken pipe) is not an error.
 * *out / *err (each may be NULL: that output is then read and dropped)
 * receive malloc'ed buffers (NUL-terminated, length without it in *out_len /
 * *err_len; free() them), or NULL for a descriptor that is not a pipe.
 * Awaiting; on the process's loop. Cancellable: the child keeps running and
 * the output not returned stays in the pipes' buffers.
 * @return 0; WEFT_ECANCELED; WEFT_EINVAL; WEFT_ENOTCORO; WEFT_EWRONGLOOP;
 * WEFT_ENOMEM; WEFT_EINVALSTATE (communicate or a read already under way);
 * a pipe's read error.
 */
WEFT_API int weft_process_communicate(weft_process_t *p, const void *input, size_t len, void **out,
                                      size_t *out_len, void **err, size_t *err_len);

/**
 * Process.send_signal(sig). @return 0; UV_ESRCH once the child ended
 * (asyncio's ProcessLookupError); WEFT_EINVAL (NULL, bad signal number);
 * WEFT_EWRONGLOOP. Process's loop thread.
 */
WEFT_API int weft_process_send_signal(weft_process_t *p, int sig);
/** Process.terminate(): send_signal(SIGTERM). */
WEFT_API int weft_process_terminate(weft_process_t *p);
/** Process.kill(): send_signal(SIGKILL). */
WEFT_API int weft_process_kill(weft_process_t *p);

/**
 * Close the process (asyncio's transport.close()): kill the child with
 * SIGKILL if it still runs (it is reaped when it dies), close the pipes and
 * free the object once the child is reaped. No task may be using the
 * process or its streams any more. NULL is ignored. Process's loop thread.
 */
WEFT_API void weft_process_free(weft_process_t *p);

#ifdef __cplusplus
}
#endif
#endif
