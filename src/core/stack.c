/* Task stacks: pooled per loop, guard pages while the process's map budget
 * allows, slabs with a checked red zone beyond it.
 *
 * Linux's default vm.max_map_count (65530) allows only ~32k separately guarded
 * stacks (each is two mappings). weft hands out guarded stacks (mmap + a
 * PROT_NONE region of WEFT__GUARD_BYTES below: a frame larger than one page
 * moves the stack pointer past a one-page guard without touching it, and its
 * first write lands in whatever lies below, often the top of a neighbour's
 * stack; address space is cheap, and the region is still one mapping, so the
 * guard is 64 KiB) until WEFT_GUARD_BUDGET of them exist in the process
 * (default 8192, environment variable WEFT_GUARD_BUDGET overrides), then carves
 * stacks from slabs (one mapping for many stacks). Every stack keeps its lowest
 * WEFT__REDZONE bytes zero; the scheduler checks them each time a task switches
 * out, so an overflow on a slab stack is reported with the task's name at its
 * next switch. A hit on a guard region is reported by a SIGSEGV handler running
 * on an alternate signal stack, naming the task whose stack the guard belongs
 * to (found among the loop's tasks by the fault address). weft itself is built
 * with -fstack-clash-protection where the compiler has it, which probes every
 * page of a large frame, so no frame of weft's jumps a guard of any size. */
#include "core/stack.h"
#include "core/task.h"

#include <pthread.h>
#if defined(WEFT_ASAN)
#include <sanitizer/asan_interface.h>
#endif
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define WEFT__POOL_CAP 262144     /* free stacks kept mapped per size while the loop is busy (trimmed when idle) */
#define WEFT__SLAB_BYTES ((size_t)16 << 20)
#define WEFT__GUARD_BYTES ((size_t)64 << 10)   /* PROT_NONE below every guarded stack */

/* The guard region's length: WEFT__GUARD_BYTES rounded up to whole pages. */
static size_t guard_len(void)
{
    size_t pg = weft__page_size();
    return (WEFT__GUARD_BYTES + pg - 1) & ~(pg - 1);
}

static size_t page_size_v;
static int guard_budget = -1;
static int guarded_live;          /* atomic */

size_t weft__page_size(void)
{
    size_t p = ck_pr_load_64((uint64_t *)&page_size_v);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        ck_pr_store_64((uint64_t *)&page_size_v, p);
    }
    return p;
}

static int budget(void)
{
    int b = ck_pr_load_int(&guard_budget);
    if (b < 0) {
        const char *e = getenv("WEFT_GUARD_BUDGET");
        b = 8192;
        if (e && *e) {
            long v = strtol(e, NULL, 10);
            if (v >= 0 && v < 1000000)
                b = (int)v;
        }
        ck_pr_store_int(&guard_budget, b);
    }
    return b;
}

void weft__stack_pool_init(weft__stack_pool_t *p)
{
    memset(p, 0, sizeof *p);
}

static weft__stack_class_t *class_for(weft__stack_pool_t *p, size_t size)
{
    for (int i = 0; i < p->ncls; i++)
        if (p->cls[i].size == size)
            return &p->cls[i];
    if (p->ncls == WEFT__STACK_CLASSES)
        return NULL;
    weft__stack_class_t *c = &p->cls[p->ncls++];
    memset(c, 0, sizeof *c);
    c->size = size;
    return c;
}

/* Write the descriptor of the stack at @lo into the stack's top. */
static weft__stack_t *stack_init(char *lo, size_t size, char *guard, size_t map_len)
{
    weft__stack_t *s = (weft__stack_t *)(void *)(lo + size - WEFT__STACK_HDR);
    s->next = NULL;
    s->lo = lo;
    s->size = size;
    s->guard = guard;
    s->map_len = map_len;
    return s;
}

static weft__stack_t *alloc_guarded(size_t size)
{
    size_t pg = guard_len();
    if (ck_pr_faa_int(&guarded_live, 1) >= budget()) {
        ck_pr_dec_int(&guarded_live);
        return NULL;
    }
    size_t len = size + pg;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        goto fail;
    if (mprotect(m, pg, PROT_NONE) != 0) {
        munmap(m, len);
        goto fail;
    }
    return stack_init((char *)m + pg, size, m, len);
fail:
    ck_pr_dec_int(&guarded_live);
    return NULL;
}

static weft__stack_t *alloc_slab(weft__stack_pool_t *p, weft__stack_class_t *c)
{
    if (c->slab_next == NULL || c->slab_next - c->size < c->slab_end) {
        size_t n = WEFT__SLAB_BYTES / c->size;
        if (n < 1)
            n = 1;
        if (n > 64)
            n = 64;
        weft__slab_t *sl = malloc(sizeof *sl);
        if (!sl)
            return NULL;
        sl->len = n * c->size;
        sl->base = mmap(NULL, sl->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                        -1, 0);
        if (sl->base == MAP_FAILED) {
            free(sl);
            return NULL;
        }
        sl->next = p->slabs;
        p->slabs = sl;
        c->slab_end = sl->base;
        c->slab_next = (char *)sl->base + sl->len;   /* carve from the top down */
    }
    c->slab_next -= c->size;
    return stack_init(c->slab_next, c->size, NULL, 0);
}

/* No pooled stack of this size: a cleaned one, a new guarded one, or one
 * carved from a slab. Out of line, so the pooled path needs no frame. */
static WEFT__NOINLINE weft__stack_t *acquire_slow(weft__stack_pool_t *p, weft__stack_class_t *c, size_t size)
{
    weft__stack_t *s;
    if (c && c->nclean) {
        s = stack_init(c->clean[--c->nclean], c->size, NULL, 0);
        p->live++;
        return s;
    }
    s = alloc_guarded(size);
    if (!s && c)
        s = alloc_slab(p, c);
    if (s)
        p->live++;
    return s;
}

weft__stack_t *weft__stack_acquire(weft__stack_pool_t *p, size_t size)
{
    size_t pg = weft__page_size();
    size = (size + pg - 1) & ~(pg - 1);
    weft__stack_class_t *c = class_for(p, size);
    if (WEFT__UNLIKELY(!c || !c->free))
        return acquire_slow(p, c, size);
    weft__stack_t *s = c->free;
    c->free = s->next;
    /* the next stack handed out is the new head: start loading its top
     * (descriptor and first frame) now, so a burst of new tasks overlaps
     * those misses instead of taking them one after the other */
    if (c->free)
        WEFT__PREFETCH_W(c->free);
    c->nfree--;
    if (c->nfree < c->min_free)
        c->min_free = c->nfree;
    p->live++;
    return s;
}

/* Unmap a guarded stack (its descriptor goes with it); a slab stack's memory
 * is the slab's. */
static void stack_free_mapping(weft__stack_t *s)
{
    if (s->guard) {
        char *guard = s->guard;
        size_t len = s->map_len;
        munmap(guard, len);
        ck_pr_dec_int(&guarded_live);
    }
}

/* Give one idle stack's memory back: unmap a guarded one, or drop the pages
 * of a slab one (its descriptor too: the clean list keeps its address).
 * Returns false if the clean list cannot grow: the stack stays as it is. */
static bool stack_give_back(weft__stack_class_t *c, weft__stack_t *s)
{
    if (s->guard) {
        stack_free_mapping(s);
        return true;
    }
    if (c->nclean == c->clean_cap) {
        size_t cap = c->clean_cap ? c->clean_cap * 2 : 256;
        char **a = realloc(c->clean, cap * sizeof *a);
        if (!a)
            return false;
        c->clean = a;
        c->clean_cap = cap;
    }
    char *lo = s->lo;
    madvise(lo, c->size, MADV_DONTNEED);
    c->clean[c->nclean++] = lo;
    return true;
}

/* A stack the pool does not keep as it is: of an unusual size (unmapped),
 * or beyond the pool's cap (given back to the kernel where possible). */
static WEFT__NOINLINE void release_slow(weft__stack_class_t *c, weft__stack_t *s)
{
    if (!c) {
        stack_free_mapping(s);   /* an unusual size: guarded or nothing */
        return;
    }
    if (stack_give_back(c, s))
        return;
    s->next = c->free;
    c->free = s;
    c->nfree++;
}

void weft__stack_release(weft__stack_pool_t *p, weft__stack_t *s)
{
#if defined(WEFT_ASAN)
    /* frames that never returned leave poisoned shadow behind */
    __asan_unpoison_memory_region(s->lo, s->size);
#endif
    weft__stack_class_t *c = class_for(p, s->size);
    p->live--;
    if (WEFT__UNLIKELY(!c || c->nfree >= WEFT__POOL_CAP)) {
        release_slow(c, s);
        return;
    }
    s->next = c->free;
    c->free = s;
    c->nfree++;
}

void weft__stack_pool_trim(weft__stack_pool_t *p, size_t keep)
{
    for (int i = 0; i < p->ncls; i++) {
        weft__stack_class_t *c = &p->cls[i];
        size_t idle = c->min_free > keep ? c->min_free - keep : 0;
        while (idle-- && c->free) {
            weft__stack_t *s = c->free;
            weft__stack_t *next = s->next;
            if (!stack_give_back(c, s))
                break;
            c->free = next;
            c->nfree--;
        }
        c->min_free = c->nfree;
    }
}

void weft__stack_pool_destroy(weft__stack_pool_t *p)
{
    for (int i = 0; i < p->ncls; i++) {
        weft__stack_t *s = p->cls[i].free;
        while (s) {
            weft__stack_t *n = s->next;
            stack_free_mapping(s);
            s = n;
        }
        p->cls[i].free = NULL;
        free(p->cls[i].clean);   /* slab stacks only: their memory goes with the slabs */
        p->cls[i].clean = NULL;
        p->cls[i].nclean = p->cls[i].clean_cap = 0;
    }
    weft__slab_t *sl = p->slabs;
    while (sl) {
        weft__slab_t *n = sl->next;
        munmap(sl->base, sl->len);
        free(sl);
        sl = n;
    }
    p->slabs = NULL;
    p->ncls = 0;
}

/* ---- overflow reporting --------------------------------------------------------- */

void (*weft__overflow_hook)(const char *task_name, size_t stack_size);

static void write_str(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void write_size(size_t v)
{
    char buf[32];
    int i = 31;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    write_str(buf + i);
}

/* async-signal-safe */
void weft__stack_overflow(const char *name, size_t size)
{
    if (weft__overflow_hook) {
        weft__overflow_hook(name, size);
        return;
    }
    write_str("weft: stack overflow in task '");
    write_str(name ? name : "?");
    write_str("' (stack size ");
    write_size(size);
    write_str(" bytes); raise it with weft_task_opts_t.stack_size\n");
    abort();
}

#if !defined(WEFT_ASAN)
static struct sigaction old_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;
static pthread_key_t alt_key;

/* The task's name without allocating (async-signal-safe): its own, or
 * "Task-<id>" written into @buf. */
static const char *sig_task_name(const weft__task_t *t, char *buf, size_t n)
{
    if (t->name)
        return t->name;
    char digits[24];
    int i = (int)sizeof digits;
    uint64_t v = t->id;
    digits[--i] = 0;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    size_t len = sizeof digits - (size_t)i;   /* digits and their terminator */
    if (n < 5 + len)
        return "?";
    memcpy(buf, "Task-", 5);
    memcpy(buf + 5, digits + i, len);
    return buf;
}

/* Is @addr in the guard of the stack @t runs on (its own, or the one it
 * borrows as an inline child)? */
static bool in_guard(const weft__task_t *t, const char *addr)
{
    const weft__stack_t *st = t ? weft__task_stack(t) : NULL;
    return st && st->guard && addr >= st->guard && addr < st->lo + WEFT__REDZONE;
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    weft__thread_t *ts = weft__thread();
    weft__task_t *cur = ts->task, *owner = NULL;
    char *addr = si->si_addr;
    /* Whose guard is it? Usually the running task's, but a frame that jumped
     * its own guard may hit a neighbour's, so the fault address decides, not
     * the running task. */
    if (in_guard(cur, addr))
        owner = cur;
    for (weft__task_t *t = ts->running ? ts->running->tasks : NULL; !owner && t; t = t->nextt)
        if (in_guard(t, addr))
            owner = t;
    if (owner) {
        static char nbuf[2][48];   /* one fault at a time: the handler then aborts */
        weft__overflow_hook = NULL;   /* a guard hit cannot be survived */
        if (cur && cur != owner) {
            write_str("weft: the guard of task '");
            write_str(sig_task_name(owner, nbuf[0], sizeof nbuf[0]));
            write_str("' was hit while task '");
            write_str(sig_task_name(cur, nbuf[1], sizeof nbuf[1]));
            write_str("' ran: one of them overflowed with a frame larger than the guard "
                      "(build coroutines with -fstack-clash-protection)\n");
        }
        weft__stack_overflow(sig_task_name(owner, nbuf[0], sizeof nbuf[0]), weft__task_stack(owner)->size);
    }
    /* not ours: hand it to whoever was there before, or die the default way */
    if ((old_segv.sa_flags & SA_SIGINFO) && old_segv.sa_sigaction) {
        old_segv.sa_sigaction(sig, si, uctx);
        return;
    }
    if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN && old_segv.sa_handler) {
        old_segv.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);   /* returning re-executes the access and dies normally */
}

static void free_alt(void *p)
{
    stack_t ss = { .ss_flags = SS_DISABLE };
    sigaltstack(&ss, NULL);
    munmap(p, SIGSTKSZ < 65536 ? 65536 : SIGSTKSZ);
}

static void install_segv(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    pthread_key_create(&alt_key, free_alt);
}
#endif

void weft__stack_thread_init(void)
{
#if !defined(WEFT_ASAN)
    pthread_once(&segv_once, install_segv);
    if (pthread_getspecific(alt_key))
        return;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return;   /* the application has its own alternate stack */
    size_t len = SIGSTKSZ < 65536 ? 65536 : SIGSTKSZ;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    stack_t ss = { .ss_sp = m, .ss_size = len, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(m, len);
        return;
    }
    pthread_setspecific(alt_key, m);
#endif
}
