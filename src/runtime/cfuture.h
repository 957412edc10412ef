/* Concurrent futures (concurrent.futures.Future) inside the runtime: made by
 * run_coroutine_threadsafe (tied to a task), by an executor's submit (tied to
 * a job), or by the user (weft_cfuture_new). bridge.c; blocking.c completes
 * the job-backed ones. Not installed. */
#ifndef WEFT_SRC_CFUTURE_H
#define WEFT_SRC_CFUTURE_H

#include "weft/runtime.h"

/* A new pending concurrent future with one reference (the caller's). */
weft_cfuture_t *weft__cfuture_new(void);
/* Complete @cf from any thread: @rc 0 with @v (owned by cf from now on if its
 * dtor is set), a negative code with @msg (taken, may be NULL), or
 * WEFT_ECANCELED with @cancelled. Returns false if it was done already (then
 * @v and @msg stay the caller's). */
bool weft__cfuture_complete(weft_cfuture_t *cf, int rc, weft_value_t v, char *msg, bool cancelled);
/* What cancelling a not-done @cf does beyond completing it: return true if
 * the work will not run (cf then completes cancelled), false if it is running
 * and cannot be stopped. Set before cf is shared. */
void weft__cfuture_set_cancel(weft_cfuture_t *cf, bool (*fn)(weft_cfuture_t *cf, void *arg), void *arg);
/* Move the result out of done @cf (it forgets the dtor). */
int weft__cfuture_take(weft_cfuture_t *cf, weft_value_t *out, char **msg);

#endif
