/* Debug mode's hooks, called by the loop and the core (debug.c), and weft's
 * logger. Not installed. */
#ifndef WEFT_SRC_DEBUG_H
#define WEFT_SRC_DEBUG_H

#include "core/loop.h"
#include "weft/debug.h"

struct weft__task;
/* ---- debug mode (debug.c) ------------------------------------------------------ */
typedef struct weft__dbg_site {
    int n;
    void *frames[12];
} weft__dbg_site_t;
void weft__log(weft_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void weft__debug_loop_init(weft_loop_t *l);
void weft__debug_run_handle(weft_loop_t *l, weft__handle_t *h);
void weft__debug_step_begin(weft_loop_t *l, struct weft__task *t);
void weft__debug_step_end(weft_loop_t *l, struct weft__task *t, uint64_t t0);
void weft__debug_loop_running(weft_loop_t *l, bool running);
void weft__debug_check_dump(weft_loop_t *l);
weft__dbg_site_t *weft__debug_site(void);
void weft__debug_never_awaited(weft_future_t *f);

#endif
