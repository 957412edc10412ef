/* Reading a runtime's scheduler counters in tests. */
#ifndef WEFT_TEST_STATS_UTIL_H
#define WEFT_TEST_STATS_UTIL_H

#include "check.h"

#include <weft.h>

#include <stddef.h>
#include <stdint.h>

/* The counter at offset @off of weft_loop_stats_t (offsetof), summed over
 * the loops of @rt. */
static inline uint64_t rt_stats_sum(const weft_runtime_t *rt, size_t off)
{
    uint64_t n = 0;
    for (int i = 0; i < weft_runtime_workers(rt); i++) {
        weft_loop_stats_t s;
        CHECK_EQ(weft_runtime_stats(rt, i, &s), 0);
        uint64_t v;
        memcpy(&v, (const char *)&s + off, sizeof v);
        n += v;
    }
    return n;
}

#endif
