/* Error codes and their text. */
#include "base/base.h"

#include <uv.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} weft_errors[] = {
    { WEFT_EINVALSTATE, "WEFT_EINVALSTATE", "invalid state (result not ready, or already set)" },
    { WEFT_ENOLOOP, "WEFT_ENOLOOP", "no running event loop" },
    { WEFT_ENOTCORO, "WEFT_ENOTCORO", "not called from inside a coroutine (no current task)" },
    { WEFT_ESELFAWAIT, "WEFT_ESELFAWAIT", "a task cannot await itself" },
    { WEFT_ECLOSED, "WEFT_ECLOSED", "the event loop is closed" },
    { WEFT_ENESTED, "WEFT_ENESTED", "cannot run an event loop while another loop is running in this thread" },
    { WEFT_ENOTTASK, "WEFT_ENOTTASK", "the operation needs a task, not a plain future" },
    { WEFT_EWRONGLOOP, "WEFT_EWRONGLOOP", "the object belongs to another event loop or thread" },
    { WEFT_ESTOPPED, "WEFT_ESTOPPED", "the event loop stopped before the future completed" },
    { WEFT_EGROUP, "WEFT_EGROUP", "several errors (exception group)" },
    { WEFT_EQUEUEFULL, "WEFT_EQUEUEFULL", "queue is full" },
    { WEFT_EQUEUEEMPTY, "WEFT_EQUEUEEMPTY", "queue is empty" },
    { WEFT_EBROKEN, "WEFT_EBROKEN", "broken barrier" },
    { WEFT_ESHUTDOWN, "WEFT_ESHUTDOWN", "shut down" },
    { WEFT_ENOTENTERED, "WEFT_ENOTENTERED", "scope not entered, or already exited" },
    { WEFT_ECALLBACK, "WEFT_ECALLBACK", "a callback failed" },
    { WEFT_ESTOPASYNCITER, "WEFT_ESTOPASYNCITER", "end of asynchronous iteration (StopAsyncIteration)" },
    { WEFT_EGENEXIT, "WEFT_EGENEXIT", "asynchronous generator closed (GeneratorExit)" },
    { -5070 /* WEFT_ERESOLVE, weft/stream.h */, "WEFT_ERESOLVE", "host name resolution failed" },
    { WEFT_ETLS, "WEFT_ETLS", "TLS protocol error" },
    { WEFT_ECERT, "WEFT_ECERT", "TLS certificate verification failed" },
    { WEFT_EHOSTMISMATCH, "WEFT_EHOSTMISMATCH", "TLS certificate does not match the host name" },
    { WEFT_ETLSEOF, "WEFT_ETLSEOF", "TLS peer closed the connection without close_notify" },
    { WEFT_ECANCELED, "WEFT_ECANCELED", "operation canceled" },
    { WEFT_ETIMEDOUT, "WEFT_ETIMEDOUT", "timed out" },
    { WEFT_EINVAL, "WEFT_EINVAL", "invalid argument" },
    { WEFT_ENOMEM, "WEFT_ENOMEM", "out of memory" },
    { WEFT_EBUSY, "WEFT_EBUSY", "resource busy (the loop is running)" },
    { WEFT_EOVERFLOW, "WEFT_EOVERFLOW", "value too large (a counter would overflow)" },
    { WEFT_EDEADLK, "WEFT_EDEADLK", "await cycle: the tasks would wait for each other forever" },
};

const char *weft_strerror(int code)
{
    for (size_t i = 0; i < sizeof weft_errors / sizeof weft_errors[0]; i++)
        if (weft_errors[i].code == code)
            return weft_errors[i].text;
    if (code == 0)
        return "success";
    if (code < 0 && code > -4096) {
        static _Thread_local char buf[128];
        uv_strerror_r(code, buf, sizeof buf);
        if (strncmp(buf, "Unknown system error", 20) != 0)
            return buf;
    }
    return "unknown error (user-defined code)";
}

const char *weft_err_name(int code)
{
    for (size_t i = 0; i < sizeof weft_errors / sizeof weft_errors[0]; i++)
        if (weft_errors[i].code == code)
            return weft_errors[i].name;
    if (code == 0)
        return "OK";
    if (code < 0 && code > -4096) {
        static _Thread_local char buf[64];
        uv_err_name_r(code, buf, sizeof buf);
        if (strncmp(buf, "Unknown system error", 20) != 0)
            return buf;
    }
    return "EUSER";
}
