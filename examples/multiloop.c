/* What weft is for: one server on every core, and plain threads handing work
 * to it.
 *
 *  - a runtime with one event loop per core (weft_runtime_new);
 *  - a TCP server whose connections are spread over all loops; each handler
 *    runs on one loop with asyncio's single-threaded rules;
 *  - CPU work split into stealable tasks (weft_spawn), which idle loops take;
 *  - a plain pthread (think: an admin thread, a legacy callback) submitting a
 *    coroutine with weft_run_coroutine_threadsafe and blocking on its result.
 *
 * The program starts its own clients, prints what happened and exits.
 * Build against an installed weft: cc multiloop.c $(pkg-config --cflags --libs weft) */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

/* ---- CPU work: sum of squares, split over stealable tasks ------------------ */

struct range { long lo, hi; };

static int sum_squares(void *arg, weft_value_t *out)
{
    const struct range *r = arg;
    long s = 0;
    for (long i = r->lo; i < r->hi; i++)
        s += i * i % 7;
    out->i = s;
    return 0;
}

static int parallel_sum(long n, long *total)
{
    enum { PARTS = 16 };
    struct range parts[PARTS];
    weft_task_t *t[PARTS];
    int rc = 0, made = 0;
    for (; made < PARTS; made++) {
        parts[made] = (struct range){ n * made / PARTS, n * (made + 1) / PARTS };
        if ((rc = weft_spawn(&t[made], sum_squares, &parts[made], NULL)) < 0)
            break;
    }
    *total = 0;
    for (int i = 0; i < made; i++) {
        weft_value_t v;
        int r = weft_await(t[i], &v);
        if (r < 0 && rc == 0)
            rc = r;
        if (r == 0)
            *total += v.i;
        weft_task_release(t[i]);
    }
    return rc;
}

/* ---- the server: one line in, "<sum>\n" out ---------------------------------- */

static int handle(weft_reader_t *reader, weft_writer_t *writer, void *arg)
{
    (void)arg;
    char line[64];
    size_t n;
    int rc = weft_reader_readline(reader, line, sizeof line - 1, &n);
    if (rc < 0)
        return rc;
    line[n] = '\0';
    long total;
    if ((rc = parallel_sum(strtol(line, NULL, 10), &total)) < 0)
        return rc;
    char reply[32];
    int len = snprintf(reply, sizeof reply, "%ld\n", total);
    if ((rc = weft_writer_write(writer, reply, (size_t)len)) == 0)
        rc = weft_writer_drain(writer);
    weft_writer_close(writer);
    return rc;
}

static int client(void *arg, weft_value_t *out)
{
    int port = *(int *)arg;
    weft_reader_t *r;
    weft_writer_t *w;
    int rc = weft_open_connection("127.0.0.1", port, NULL, &r, &w);
    if (rc < 0)
        return rc;
    char buf[32];
    size_t n = 0;
    if ((rc = weft_writer_write(w, "2000000\n", 8)) == 0 && (rc = weft_writer_drain(w)) == 0)
        rc = weft_reader_readline(r, buf, sizeof buf - 1, &n);
    buf[n] = '\0';
    out->i = strtol(buf, NULL, 10);
    weft_writer_close(w);
    weft_reader_release(r);
    weft_writer_release(w);
    return rc;
}

/* ---- a plain thread submits a coroutine and waits for it ----------------------- */

struct admin { weft_runtime_t *rt; long answer; int rc; };

static int admin_job(void *arg, weft_value_t *out)
{
    (void)arg;
    long total;
    int rc = parallel_sum(1000000, &total);   /* runs on the worker loops */
    out->i = total;
    return rc;
}

static void *admin_thread(void *arg)
{
    struct admin *a = arg;
    weft_cfuture_t *cf;
    a->rc = weft_run_coroutine_threadsafe(a->rt, NULL, admin_job, NULL, NULL, &cf);
    if (a->rc == 0) {
        weft_value_t v;
        a->rc = weft_cfuture_result(cf, 30.0, &v);   /* blocks this thread only */
        a->answer = v.i;
        weft_cfuture_release(cf);
    }
    return NULL;
}

/* pthread_join blocks: run it on the blocking pool so the loop stays free */
static int join_admin(void *arg, weft_value_t *out)
{
    (void)out;
    return pthread_join(*(pthread_t *)arg, NULL) == 0 ? 0 : WEFT_EINVAL;
}

static int main_coro(void *arg, weft_value_t *out)
{
    (void)out;
    struct admin *admin = arg;
    weft_server_opts_t opts = { .mode = WEFT_SERVE_HANDOFF };   /* accept here, hand off to the least-loaded loop */
    weft_server_t *server;
    int rc = weft_start_server(handle, NULL, "127.0.0.1", 0, &opts, &server);
    if (rc < 0)
        return rc;
    int port = weft_server_port(server);
    printf("serving on 127.0.0.1:%d with %d loops\n", port, weft_server_nloops(server));

    pthread_t th;
    bool admin_started = pthread_create(&th, NULL, admin_thread, admin) == 0;

    enum { CLIENTS = 8 };
    weft_task_t *c[CLIENTS];
    int made = 0;
    for (; made < CLIENTS && rc == 0; made++)
        if ((rc = weft_create_task(&c[made], client, &port, NULL)) < 0)
            break;
    for (int i = 0; i < made; i++) {
        weft_value_t v;
        int r = weft_await(c[i], &v);
        if (r == 0)
            printf("client %d: sum = %ld\n", i, (long)v.i);
        else if (rc == 0)
            rc = r;
        weft_task_release(c[i]);
    }
    if (admin_started) {
        int r = weft_to_thread(join_admin, &th, NULL);   /* asyncio.to_thread */
        if (r < 0 && rc == 0)
            rc = r;
    }
    weft_server_shutdown(server, 5.0);
    weft_server_free(server);
    return rc;
}

int main(void)
{
    weft_runtime_t *rt;
    int rc = weft_runtime_new(NULL, &rt);   /* one loop per core (WEFT_WORKERS overrides) */
    if (rc < 0) {
        fprintf(stderr, "weft_runtime_new: %s\n", weft_strerror(rc));
        return 1;
    }
    struct admin admin = { .rt = rt };
    rc = weft_runtime_run(rt, main_coro, &admin, NULL, NULL);   /* returns when main_coro ends */
    printf("admin thread: sum = %ld (%s)\n", admin.answer, weft_strerror(admin.rc));
    for (int i = 0; i < weft_runtime_workers(rt); i++) {
        weft_loop_stats_t st;
        weft_runtime_stats(rt, i, &st);
        printf("loop %d ran %llu tasks, stole %llu\n", i, (unsigned long long)st.tasks_run,
               (unsigned long long)st.stolen);
    }
    weft_runtime_free(rt);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", weft_strerror(rc));
    return rc < 0 || admin.rc < 0;
}
