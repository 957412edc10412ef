/* Minimal test harness: every CHECK failure prints where and exits non-zero. */
#ifndef WEFT_TEST_CHECK_H
#define WEFT_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                                                   \
    do {                                                                                                 \
        long long _a = (long long)(a), _b = (long long)(b);                                              \
        if (_a != _b) {                                                                                  \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, \
                    #b, _a, _b);                                                                         \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

#define CHECK_STR(a, b)                                                                                  \
    do {                                                                                                 \
        const char *_a = (a), *_b = (b);                                                                 \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                                         \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__, \
                    #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");                                     \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

/* Run one test function; a test filter may be given as argv[1]. */
#define RUN(fn)                                                    \
    do {                                                           \
        if (argc < 2 || strcmp(argv[1], #fn) == 0) {               \
            fn();                                                  \
            printf("ok %s\n", #fn);                                \
            fflush(stdout);                                        \
        }                                                          \
    } while (0)

#endif
