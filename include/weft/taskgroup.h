/**
 * @file weft/taskgroup.h
 * @brief asyncio.TaskGroup: structured concurrency with an enter/exit pair.
 *
 *     weft_taskgroup_t tg;
 *     int rc = weft_taskgroup_enter(&tg);
 *     if (rc < 0) return rc;
 *     weft_taskgroup_create_task(&tg, NULL, fetch, &a, NULL);
 *     weft_taskgroup_create_task(&tg, NULL, fetch, &b, NULL);
 *     rc = weft_taskgroup_exit(&tg, rc);   // waits for every child
 *     if (rc == WEFT_EGROUP) {                 // except* / except ExceptionGroup as eg:
 *         const weft_errgroup_t *eg = weft_taskgroup_errors(&tg);
 *         size_t n;
 *         const weft_exception_t *ex = weft_errgroup_exceptions(eg, &n);   // eg.exceptions
 *         printf("%s\n", weft_errgroup_group_message(eg));                // eg.message
 *         for (size_t i = 0; i < n; i++)
 *             printf("%s: %s\n", ex[i].task_name, ex[i].message);
 *     }
 *     weft_taskgroup_free(&tg);             // frees the collected errors
 *
 * Semantics (CPython taskgroups.py):
 * - Children may be added from the owner or from any task of the loop
 *   (children included) while the group is open, also while exit is waiting.
 * - A child that ends with an error other than a cancellation cancels every
 *   other child and the owner task (so the block's current await returns
 *   WEFT_ECANCELED); exit then waits for all children and returns
 *   WEFT_EGROUP with every error collected (code, message, task name). A
 *   child that ends cancelled is not an error.
 * - If the block itself fails (exit's @p rc < 0), the children are cancelled;
 *   an error other than WEFT_ECANCELED is added to the group's errors (with
 *   the owner's name).
 * - If the owner is cancelled from outside (while in the block or while exit
 *   waits), the children are cancelled and, once they finished, exit returns
 *   WEFT_ECANCELED, unless children failed (errors take priority: WEFT_EGROUP).
 *
 * Cancel count: weft follows CPython 3.13 (not 3.12) here, deliberately.
 * The cancel a group issues on its owner is always matched by an uncancel()
 * after the children finished, so the owner's cancelling() count is balanced
 * even when a child fails after the block ended (3.12 left it one too high,
 * which makes every later timeout scope of that task report WEFT_ECANCELED
 * instead of WEFT_ETIMEDOUT: cpython gh-116720 family). And when the group
 * returns WEFT_EGROUP while the owner also has a cancel request from outside,
 * that request is re-armed (uncancel + cancel) so the owner's next await still
 * sees WEFT_ECANCELED instead of the group swallowing it (3.13).
 *
 * The weft_taskgroup_t lives in the owner's frame; its fields are private.
 * Exit must be called before that frame ends. All functions: the loop thread.
 */
#ifndef WEFT_TASKGROUP_H
#define WEFT_TASKGROUP_H

#include "common.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The errors collected by a TaskGroup (ExceptionGroup's equivalent). */
typedef struct weft_errgroup weft_errgroup_t;

/** One sub-error of a group (one entry of ExceptionGroup.exceptions). The
 *  strings are owned by the group. */
typedef struct weft_exception {
    int code;                /**< the error code */
    const char *message;     /**< its message (str(exc)), or NULL */
    const char *task_name;   /**< the task that raised it (the owner's name for the block's own error) */
} weft_exception_t;

struct weft__tg_child;

/** A task group. Fields are private; zero-initialise it (`= {0}`) to have
 *  create_task report WEFT_ENOTENTERED before enter reliably. */
typedef struct weft_taskgroup {
    uint32_t magic;
    uint8_t entered, exiting, aborting, parent_cancel_requested;
    const struct weft_taskgroup *self;   /* with magic and owner: detects a second enter */
    uint64_t owner;                      /* id of the owner task */
    weft_loop_t *loop;
    weft_task_t *parent;                 /* borrowed: the owner task */
    struct weft__tg_child *children;     /* live children (each with a reference) */
    size_t ntasks;
    weft_errgroup_t *errors;
    void *waiter;                        /* the owner while suspended in exit */
} weft_taskgroup_t;

/**
 * `async with TaskGroup()`: enter the group; the current task becomes its
 * owner. Entering a group that this task entered and whose exit has not
 * returned yet is asyncio's "TaskGroup has already been entered":
 * WEFT_EINVALSTATE, and the open group is left untouched. Otherwise *tg is
 * initialised (it is usually fresh stack memory, which may hold an old group
 * of another call: that is not an error). A struct may be entered again
 * after exit returned and weft_taskgroup_free() was called.
 * @return 0, WEFT_EINVAL (tg NULL), WEFT_EINVALSTATE (already entered),
 * WEFT_ENOTCORO (no current task: "cannot determine the parent task").
 */
WEFT_API int weft_taskgroup_enter(weft_taskgroup_t *tg);

/**
 * TaskGroup.create_task: create a task running fn(arg) in the group on the
 * group's loop (with the loop's eager task factory if set: an eager child
 * that finishes at once is accounted for at once). @p out (may be NULL)
 * receives a new reference. Loop thread, from any task or callback.
 * @return 0, WEFT_EINVAL, WEFT_ENOTENTERED (not entered), WEFT_ECLOSED (the
 * group is finished: exit ran and no child is left), WEFT_ESHUTDOWN (the
 * group is aborting: a child failed or the owner is cancelled), or
 * weft_loop_create_task's errors.
 */
WEFT_API int weft_taskgroup_create_task(weft_taskgroup_t *tg, weft_task_t **out, weft_coro_fn fn, void *arg,
                                        const weft_task_opts_t *opts);

/**
 * weft_taskgroup_create_task with a stealable child (weft_spawn): in a
 * multi-worker runtime the child is queued on the group's loop and an idle
 * worker may take it before it starts; it then runs its whole life there. The
 * group's rules are the same for such children: a failing child cancels the
 * others (wherever they run) and the owner, exit waits for all of them and
 * collects their errors, a cancelled owner cancels them. Only what the child
 * touches must be safe across threads. On a standalone loop (or with one
 * worker, or eager_start set) this is weft_taskgroup_create_task. Loop
 * thread of the group (WEFT_EWRONGLOOP from another one).
 * @return as weft_taskgroup_create_task, plus WEFT_EWRONGLOOP.
 */
WEFT_API int weft_taskgroup_spawn(weft_taskgroup_t *tg, weft_task_t **out, weft_coro_fn fn, void *arg,
                                  const weft_task_opts_t *opts);

/**
 * Leave the group (`__aexit__`): @p rc is the block's status. Waits until
 * every child is done (a cancel of the owner meanwhile cancels the children
 * and is re-raised after them), then returns: WEFT_EGROUP if any child (or
 * the block) failed, with the errors in weft_taskgroup_errors() and the task's
 * message "unhandled errors in a TaskGroup (N sub-exceptions)"; else
 * WEFT_ECANCELED if the owner was cancelled (by someone else than the group);
 * else @p rc. WEFT_ENOTENTERED if not entered, WEFT_ENOTCORO if called outside
 * the owner task.
 */
WEFT_API int weft_taskgroup_exit(weft_taskgroup_t *tg, int rc);

/** The errors exit collected (borrowed, valid until weft_taskgroup_free or
 *  weft_taskgroup_take_errors), or NULL if none. */
WEFT_API const weft_errgroup_t *weft_taskgroup_errors(const weft_taskgroup_t *tg);

/** Move the collected errors out (the caller owns them: weft_errgroup_free),
 *  e.g. to hand them to the caller's caller. NULL if none. */
WEFT_API weft_errgroup_t *weft_taskgroup_take_errors(weft_taskgroup_t *tg);

/** Free what exit left in the group (its errors). Safe on a group that
 *  collected none, or twice. Must not be called while the group is open. */
WEFT_API void weft_taskgroup_free(weft_taskgroup_t *tg);

/** Number of tasks in the group not yet finished. */
WEFT_API size_t weft_taskgroup_size(const weft_taskgroup_t *tg);

/** Number of errors (0 for NULL). Any thread. */
WEFT_API size_t weft_errgroup_count(const weft_errgroup_t *eg);
/** Error @p i's code, or WEFT_EINVAL when out of range. */
WEFT_API int weft_errgroup_code(const weft_errgroup_t *eg, size_t i);
/** Error @p i's message (owned by the group), or NULL (none / out of range). */
WEFT_API const char *weft_errgroup_message(const weft_errgroup_t *eg, size_t i);
/** Name of the task that raised error @p i (owned by the group), or NULL when out of range. */
WEFT_API const char *weft_errgroup_task_name(const weft_errgroup_t *eg, size_t i);
/** ExceptionGroup.message: the group's own message, "unhandled errors in a
 *  TaskGroup (N sub-exceptions)" (owned by the group), or NULL for NULL. */
WEFT_API const char *weft_errgroup_group_message(const weft_errgroup_t *eg);
/** ExceptionGroup.exceptions: the sub-errors in the order they were collected
 *  (borrowed array owned by the group, valid until it is freed), and their
 *  number in *n (may be NULL); NULL when there are none. Any thread. */
WEFT_API const weft_exception_t *weft_errgroup_exceptions(const weft_errgroup_t *eg, size_t *n);
/** Free an error group taken with weft_taskgroup_take_errors. NULL is ignored. Any thread. */
WEFT_API void weft_errgroup_free(weft_errgroup_t *eg);

#ifdef __cplusplus
}
#endif
#endif
