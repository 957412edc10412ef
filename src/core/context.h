/* Context variables' hook for task creation (contextvar.c). Not installed. */
#ifndef WEFT_SRC_CONTEXT_H
#define WEFT_SRC_CONTEXT_H

#include "weft/contextvar.h"

/* The context a task being created runs in: the one given to
 * weft_create_task_in_context, else a copy of the current context (a new
 * reference; NULL for an empty context). Released with
 * weft_context_release. Called by the core when it creates a task. */
struct weft_context *weft__context_for_new_task(void);

/* weft_loop_create_task with the task running in @ctx itself (shared, as
 * asyncio's create_task(context=ctx)); @ctx NULL: a copy of the current one. */
int weft__loop_create_task_in_context(weft_loop_t *loop, weft_task_t **out, weft_coro_fn fn, void *arg,
                                      const weft_task_opts_t *opts, struct weft_context *ctx);

#endif
