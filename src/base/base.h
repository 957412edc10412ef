/* The general helpers every subsystem of weft may use: sanitizer detection,
 * the few compiler hints weft allows itself, container_of, string helpers.
 * Depends on nothing inside weft but the public common header. Not installed. */
#ifndef WEFT_SRC_BASE_H
#define WEFT_SRC_BASE_H

#include "weft/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sanitizer detection (the only place that looks at compiler features) ---- */
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#define WEFT__NOINLINE __attribute__((noinline))
#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Start loading the cache line at @p, to read or to write; no effect on
 * behaviour (an address that maps nothing is ignored). */
#define WEFT__PREFETCH(p) __builtin_prefetch((const void *)(p))
#define WEFT__PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1)
/* Hide a pointer's origin from the optimiser (keeps TLS addresses from being
 * cached across a coroutine switch). */
#define WEFT__OPAQUE(p) __asm__ volatile("" : "+r"(p)::"memory")
#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
/* ck's atomics are inline assembly that TSan cannot see: state the hand-off. */
#define WEFT__TSAN_RELEASE(p) __tsan_release((void *)(p))
#define WEFT__TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define WEFT__TSAN_RELEASE(p) ((void)(p))
#define WEFT__TSAN_ACQUIRE(p) ((void)(p))
#endif
#define WEFT__CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- strings (util.c) -------------------------------------------------------- */
/* malloc'd copy of @s; NULL for NULL or when out of memory. */
char *weft__strdup(const char *s);
/* malloc'd printf-style text; NULL when out of memory. */
char *weft__vformat(const char *fmt, va_list ap);

/* ---- time (util.c) ------------------------------------------------------------
 * Every conversion of a user's seconds (a double) to an integer duration goes
 * through these: a double outside uint64_t's range (INFINITY, 1e300, DBL_MAX)
 * or NaN converted with a plain cast is undefined behaviour and in practice
 * wraps to a tiny or zero duration. */
/* The longest duration weft keeps (about 146 years): a deadline now + this
 * never overflows a uint64_t of uv_hrtime() nanoseconds. */
#define WEFT__NS_FOREVER (UINT64_MAX / 4)
/* @s seconds as nanoseconds, saturating: NaN, negative, -0.0 and 0 give 0;
 * anything at or past WEFT__NS_FOREVER (INFINITY included) gives it. */
uint64_t weft__secs_to_ns(double s);
/* The same in milliseconds, rounded up (a tiny positive duration gives 1). */
uint64_t weft__secs_to_ms(double s);
/* now + @s seconds in nanoseconds, saturating at WEFT__NS_FOREVER past now. */
uint64_t weft__deadline_ns(uint64_t now, double s);

#endif
