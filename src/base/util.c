/* The general string and time helpers (base.h). */
#include "base/base.h"

char *weft__strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *weft__vformat(const char *fmt, va_list ap)
{
    if (!fmt)
        return NULL;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *d = malloc((size_t)n + 1);
    if (d)
        vsnprintf(d, (size_t)n + 1, fmt, ap);
    return d;
}

uint64_t weft__secs_to_ns(double s)
{
    if (!(s > 0))   /* NaN, negative, zero */
        return 0;
    if (s >= (double)WEFT__NS_FOREVER / 1e9)
        return WEFT__NS_FOREVER;
    uint64_t ns = (uint64_t)(s * 1e9);
    return ns ? ns : 1;   /* a tiny positive duration still lies in the future */
}

uint64_t weft__secs_to_ms(double s)
{
    uint64_t ns = weft__secs_to_ns(s);
    return ns / 1000000u + (ns % 1000000u != 0);
}

uint64_t weft__deadline_ns(uint64_t now, double s)
{
    uint64_t d = weft__secs_to_ns(s);
    return d > UINT64_MAX - now ? UINT64_MAX : now + d;
}
