/**
 * @file weft/contextvar.h
 * @brief Context variables (Python's contextvars): per-task values such as
 *        request ids and trace ids.
 *
 * A context maps variables to values. Each task runs in a context: a copy of
 * its creator's current context taken when the task is created, or a context
 * given at creation (weft_create_task_in_context). A task's changes
 * (weft_contextvar_set) go to its own context and never leak to its creator
 * or its siblings. Code outside any task (main(), plain loop callbacks) uses
 * its thread's own context. Copies are O(1): contexts share an immutable
 * snapshot and copy it on the first write.
 *
 * Values are stored by value: a weft_value_t whose dtor is ignored (a pointer
 * value is borrowed; keep what it points to alive while a context holds it).
 *
 * Variables are created once (typically at startup, like module-level
 * ContextVars) and may be freed at shutdown. Contexts and variables may be
 * shared between threads (reference counts are atomic; snapshots are
 * immutable); a given context is changed only by the code running in it.
 *
 * Every task has its own context: weft_create_task, weft_loop_create_task,
 * weft_spawn and the combinators' tasks copy their creator's current context;
 * weft_run_coroutine_threadsafe copies the submitting thread's;
 * weft_to_thread / weft_run_in_executor / weft_executor_submit run the call in
 * a copy of the caller's; weft_runner_run runs every main task in the
 * runner's own context (shared between its runs).
 */
#ifndef WEFT_CONTEXTVAR_H
#define WEFT_CONTEXTVAR_H

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/** LookupError: a variable with no value in the context and no default. */
#define WEFT_ELOOKUP (-ENOENT)

typedef struct weft_contextvar weft_contextvar_t;
typedef struct weft_context weft_context_t;

/**
 * What weft_contextvar_set returns, to undo the change with
 * weft_contextvar_reset (contextvars.Token). A plain value: keep it in the
 * caller's frame. Fields are private.
 */
typedef struct weft_contextvar_token {
    uint64_t ctx_id;                  /* the context it was made in */
    const weft_contextvar_t *var;
    weft_value_t old;                 /* previous value, if had_old */
    bool had_old;
    bool used;
} weft_contextvar_token_t;

/**
 * ContextVar(name, default=...): create a variable. @p dflt (may be NULL: no
 * default) is copied. @return 0, WEFT_EINVAL (out or name NULL), WEFT_ENOMEM.
 * Any thread.
 */
WEFT_API int weft_contextvar_new(weft_contextvar_t **out, const char *name, const weft_value_t *dflt);

/** Free a variable. Values contexts still hold for it become unreachable.
 *  NULL is ignored. Any thread, once no code uses the variable. */
WEFT_API void weft_contextvar_free(weft_contextvar_t *var);

/** The variable's name (owned by it). */
WEFT_API const char *weft_contextvar_name(const weft_contextvar_t *var);

/**
 * ContextVar.get(): the variable's value in the current context, else its
 * default. @return 0 with *out set, WEFT_ELOOKUP (no value, no default),
 * WEFT_EINVAL. Any thread (reads that thread's current context).
 */
WEFT_API int weft_contextvar_get(const weft_contextvar_t *var, weft_value_t *out);

/** ContextVar.get(default): as weft_contextvar_get, but @p dflt instead of
 *  the variable's own default. @return 0 or WEFT_EINVAL. */
WEFT_API int weft_contextvar_get_or(const weft_contextvar_t *var, weft_value_t dflt, weft_value_t *out);

/**
 * ContextVar.set(value): set the variable in the current context. @p tok (may
 * be NULL) receives a token for weft_contextvar_reset. @return 0, WEFT_EINVAL,
 * WEFT_ENOMEM.
 */
WEFT_API int weft_contextvar_set(weft_contextvar_t *var, weft_value_t value, weft_contextvar_token_t *tok);

/**
 * ContextVar.reset(token): restore the value the variable had before the
 * set() that made @p tok (or remove it). @return 0; WEFT_EINVALSTATE if the
 * token was used already (RuntimeError); WEFT_EINVAL if it was made by another
 * variable or in another context (ValueError); WEFT_ENOMEM.
 */
WEFT_API int weft_contextvar_reset(weft_contextvar_t *var, weft_contextvar_token_t *tok);

/** contextvars.copy_context(): a new reference to a copy of the current
 *  context, or NULL (out of memory). Release with weft_context_release. */
WEFT_API weft_context_t *weft_context_copy(void);

/** contextvars.Context(): a new, empty context (one reference), or NULL. */
WEFT_API weft_context_t *weft_context_new(void);

/** Take another reference. Any thread. Returns @p ctx. */
WEFT_API weft_context_t *weft_context_retain(weft_context_t *ctx);

/** Drop a reference. NULL is ignored. Any thread. */
WEFT_API void weft_context_release(weft_context_t *ctx);

/** Context[var]: the variable's value in @p ctx (defaults not applied).
 *  @return 0, WEFT_ELOOKUP, WEFT_EINVAL. */
WEFT_API int weft_context_get(const weft_context_t *ctx, const weft_contextvar_t *var, weft_value_t *out);

/** len(Context): how many variables @p ctx sets. */
WEFT_API size_t weft_context_size(const weft_context_t *ctx);

/**
 * Context.run(fn, arg): run fn(arg) with @p ctx as the current context (set()
 * inside changes @p ctx), then restore the previous one. Returns fn's return
 * value, or WEFT_EINVAL. May be called inside a task (fn may await) or
 * outside. Unlike Python, entering a context that is entered elsewhere is not
 * detected.
 */
WEFT_API int weft_context_run(weft_context_t *ctx, int (*fn)(void *arg), void *arg);

/** The current context (borrowed, NULL when it is still empty and was never
 *  materialised). For introspection and tests. */
WEFT_API const weft_context_t *weft_context_current(void);

/**
 * create_task(coro, context=ctx): as weft_create_task, but the task runs in
 * @p ctx itself (shared, not copied: its set() calls change @p ctx, as in
 * asyncio), or with @p ctx NULL in a copy of the current context.
 * @return as weft_create_task. Loop thread.
 */
WEFT_API int weft_create_task_in_context(weft_task_t **out, weft_coro_fn fn, void *arg, const weft_task_opts_t *opts,
                                         weft_context_t *ctx);

#ifdef __cplusplus
}
#endif
#endif
