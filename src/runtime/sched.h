/* What the core asks of the multi-loop runtime: the scheduler's hooks that a
 * worker loop calls before it parks, task accounting, submission, and the
 * bridges' completion hook (runtime.c, scheduler.c, bridge.c). A standalone
 * loop (no runtime) never calls them. Not installed. */
#ifndef WEFT_SRC_SCHED_H
#define WEFT_SRC_SCHED_H

#include "core/loop.h"

struct weft__task;
struct weft_runtime;

/* Size of each loop's ring of never-run stealable tasks (a power of two). */
#define WEFT__NEWQ_SIZE 256

/* ---- the scheduler (scheduler.c), called by a worker loop ---- */
/* Look for work elsewhere (injector, victims' queues, spinning a bounded
 * time while this loop's inbox stays empty); true if some was found. */
bool weft__rt_find_work(weft_loop_t *l);
/* @l found work of its own while counted as searching: stop searching. */
void weft__rt_stop_searching(weft_loop_t *l);
/* The watcher @l is about to run steps (one may be long): hand the watch to a
 * parked loop if never-run entries are still visible. */
void weft__rt_stop_watching(weft_loop_t *l);
/* A busy @l (every poll interval): take never-run tasks from a loop that
 * holds clearly more tasks than @l, so started tasks end up spread out. */
void weft__rt_balance(weft_loop_t *l);
/* Take work from the injection queue now (fairness: every few dozen steps). */
void weft__rt_poll_injector(weft_loop_t *l);
/* Park @l in its blocking poll unless a last look (@has_work, the injector,
 * the other loops) finds work; keeps the parking counters. */
void weft__rt_park(weft_loop_t *l, bool (*has_work)(weft_loop_t *));
/* New stealable work exists: wake a parked loop if nobody is searching. */
void weft__rt_notify(struct weft_runtime *rt);
/* On @l's thread, for a message that carried never-run task @t to @l: start
 * it, or drop the loop's reference if @l closed meanwhile. */
void weft__sched_start_posted(weft_loop_t *l, struct weft__task *t);
/* Queue never-run task @t on @loop (a message), or on the injector when @loop is NULL. */
int weft__rt_submit(struct weft_runtime *rt, weft_loop_t *loop, struct weft__task *t);

/* Work-first join: take never-run task @t out of @l's own queues if it is
 * held there without a queue slot (a pinned token, the backlog); false if
 * it sits in a ring or elsewhere (the entry then stays, holding a reference). */
bool weft__sched_unqueue(weft_loop_t *l, struct weft__task *t);

/* ---- the runtime's life cycle (runtime.c), called by the core ---- */
/* Live-task accounting, so shutdown knows when the last task is gone. */
/* A task was allocated / ended on @cur, the loop running on the calling
 * thread (weft__thread()->running; NULL on a plain thread). */
void weft__rt_task_born(struct weft_runtime *rt, weft_loop_t *cur);
void weft__rt_task_gone(struct weft_runtime *rt, weft_loop_t *cur);
bool weft__rt_shutting(const struct weft_runtime *rt);
/* After counting a submitted task: false once shutdown began (the caller
 * undoes the task and refuses with WEFT_ECLOSED). */
bool weft__rt_admit(struct weft_runtime *rt);
unsigned int weft__rt_live(struct weft_runtime *rt);
/* The runtime's default blocking pool (made on first use). */
weft_executor_t *weft__rt_executor(struct weft_runtime *rt);

/* ---- the bridges (bridge.c), called by the core ---- */
/* Free recycled concurrent futures beyond @keep (a loop going idle). */
void weft__cfuture_pool_trim(size_t keep);

#endif
