/* A watchdog for tests that catches hangs, not slowness: it fails the test
 * when nothing calls wd_progress() for a whole stall period, however long the
 * test takes in all. Sanitizer builds run 5-20x slower and a loaded machine
 * stalls threads for seconds, so the stall period is generous and scaled by
 * WD_SCALE; tests scale their work counts by it too. */
#ifndef WEFT_TEST_WATCHDOG_H
#define WEFT_TEST_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "base/base.h"   /* WEFT_ASAN, WEFT_TSAN */

#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define WD_SCALE 10
#else
#define WD_SCALE 1
#endif

static atomic_ulong wd_ticks;
static const char *_Atomic wd_where = "start";

/* The test moved on (call it from every loop that may run long). */
static inline void wd_progress(void) { atomic_fetch_add_explicit(&wd_ticks, 1, memory_order_relaxed); }
/* The same, naming the phase for the report a stall prints. */
static inline void wd_phase(const char *what)
{
    atomic_store(&wd_where, what);
    wd_progress();
}

static void *wd_thread(void *arg)
{
    unsigned stall = (unsigned)(uintptr_t)arg, idle = 0;
    unsigned long last = atomic_load(&wd_ticks);
    for (;;) {
        sleep(1);
        unsigned long now = atomic_load(&wd_ticks);
        if (now != last) {
            last = now;
            idle = 0;
        } else if (++idle >= stall) {
            fflush(stdout);
            fprintf(stderr, "watchdog: no progress for %u s in '%s': a hang\n", idle, atomic_load(&wd_where));
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

/* Start the watchdog: fail after @stall_seconds (times WD_SCALE) without progress. */
static inline void wd_start(unsigned stall_seconds)
{
    pthread_t th;
    if (pthread_create(&th, NULL, wd_thread, (void *)(uintptr_t)(stall_seconds * WD_SCALE)) == 0)
        pthread_detach(th);
}

#endif
