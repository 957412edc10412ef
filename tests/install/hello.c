/* Built by tests/install/run.sh against an installed weft (pkg-config shared
 * and static, CMake find_package shared and static). Only <weft.h>: nothing
 * from the source tree. Exits 0 if a coroutine that sleeps 10 ms returns 42 and
 * a TLS client context can be made (so a static link must bring OpenSSL). */
#include <stdio.h>
#include <weft.h>

static int hello(void *arg, weft_value_t *result)
{
    (void)arg;
    int rc = weft_sleep(0.010);
    if (rc < 0)
        return rc;
    *result = WEFT_VALUE_INT(42);
    return 0;
}

int main(void)
{
    weft_value_t v = WEFT_VALUE_INT(0);
    int rc = weft_run(hello, NULL, NULL, &v);
    if (rc < 0) {
        fprintf(stderr, "hello: weft_run failed: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return 1;
    }
    if (v.i != 42) {
        fprintf(stderr, "hello: expected 42, got %lld\n", (long long)v.i);
        return 1;
    }
    weft_tls_t *tls;
    if ((rc = weft_tls_new(&(weft_tls_opts_t){ .no_verify = true }, &tls)) < 0) {
        fprintf(stderr, "hello: weft_tls_new failed: %s\n", weft_err_name(rc));
        return 1;
    }
    weft_tls_release(tls);
    printf("hello from weft %s: %lld\n", WEFT_VERSION_STRING, (long long)v.i);
    return 0;
}
