/* The runtime object, shared by the runtime's own files (runtime.c: life
 * cycle and counters; scheduler.c: queues, stealing, parking and waking).
 * Nothing outside src/runtime/ includes it. Not installed. */
#ifndef WEFT_SRC_RT_H
#define WEFT_SRC_RT_H

#include "core/task.h"
#include "runtime/sched.h"

#define WEFT__STEAL_MAX 128
/* A busy loop balances only against a loop holding this many more tasks. */
#define WEFT__BALANCE_SLACK 8u

struct weft_runtime {
    int n;
    weft_loop_t **loops;
    uv_thread_t *threads;
    int nthreads;
    ck_stack_t inj;               /* injection queue: lock-free push, batch pop */
    unsigned int shutting;        /* shutdown requested */
    unsigned int state;           /* 0 new, 1 running, 2 finished */
    bool background;              /* started by weft_runtime_start */
    unsigned int joining;
    int blocking_threads;
    weft_executor_t *exec;
    uv_mutex_t exec_mu;
    uint64_t foreign_born;        /* tasks allocated by threads outside the runtime (atomic) */
    uint64_t foreign_died;
    unsigned int max_search;      /* loops that may search at once: half the loops, at most half the CPUs, >= 1 */
    /* read on every spawn by every loop, written when loops search, park and
     * wake: each on its own cache line */
    _Alignas(64) unsigned int nsearching;   /* loops searching, or woken to search */
    _Alignas(64) unsigned int nparked;      /* loops parked (or about to, or just woken) */
    _Alignas(64) unsigned int nwatching;    /* loops parked with a 1 ms timeout for entries busy loops keep */
    _Alignas(64) unsigned int notify_rr;
    char pad_end[64 - sizeof(unsigned int)];
};

/* Wake every loop of @rt (shutdown, the last task gone). */
void weft__rt_wake_all(weft_runtime_t *rt);

/* Release the never-run tasks still queued on @rt's loops and injector (a
 * runtime freed without having run them). scheduler.c. */
void weft__sched_drop_queued(weft_runtime_t *rt);

#endif
