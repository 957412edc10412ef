/* The general string helpers (base.h). */
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
