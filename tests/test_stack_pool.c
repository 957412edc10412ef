/* The stack pool (core/stack.c) on its own: each stack's descriptor lives in
 * the top WEFT__STACK_HDR bytes of the stack, so frames must stop below it; a
 * stack given back to the kernel (guarded: unmapped; slab: madvise, which
 * wipes the descriptor) comes back whole; the free list is LIFO. Run with a
 * guard budget of 4 so that both kinds of stacks are exercised. */
#include "check.h"

#include "core/stack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NS 16
#define SZ ((size_t)64 * 1024)

static void check_desc(const weft__stack_t *s)
{
    size_t pg = weft__page_size();
    CHECK(s);
    CHECK_EQ(s->size, SZ);
    CHECK_EQ((uintptr_t)s->lo % pg, 0);
    CHECK((const char *)s == s->lo + SZ - WEFT__STACK_HDR);   /* at the top, out of the frames' way */
    CHECK_EQ(weft__stack_usable(s), SZ - WEFT__STACK_HDR);
    CHECK(weft__stack_redzone_ok(s));
}

static void test_pool(void)
{
    weft__stack_pool_t p;
    weft__stack_pool_init(&p);
    weft__stack_t *s[NS];
    int guarded = 0;
    for (int i = 0; i < NS; i++) {
        s[i] = weft__stack_acquire(&p, SZ);
        check_desc(s[i]);
        guarded += s[i]->guard != NULL;
    }
    CHECK_EQ(guarded, 4);   /* WEFT_GUARD_BUDGET=4, then slabs */
    CHECK_EQ((long)p.live, NS);
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++)   /* no two stacks overlap */
            CHECK(i == j || s[i]->lo + SZ <= s[j]->lo || s[j]->lo + SZ <= s[i]->lo);

    /* a task may use every byte below the descriptor (the red zone aside) */
    for (int i = 0; i < NS; i++)
        memset(s[i]->lo + WEFT__REDZONE, 0xA5, weft__stack_usable(s[i]) - WEFT__REDZONE);
    for (int i = 0; i < NS; i++)
        check_desc(s[i]);

    /* LIFO: the stack released last comes back first */
    weft__stack_release(&p, s[3]);
    weft__stack_release(&p, s[9]);
    CHECK(weft__stack_acquire(&p, SZ) == s[9]);
    CHECK(weft__stack_acquire(&p, SZ) == s[3]);

    /* give everything back: two trims (the first only notes what lay idle) */
    char *lo[NS];
    for (int i = 0; i < NS; i++) {
        lo[i] = s[i]->lo;
        weft__stack_release(&p, s[i]);
    }
    CHECK_EQ((long)p.live, 0);
    weft__stack_pool_trim(&p, 0);
    weft__stack_pool_trim(&p, 0);
    size_t nfree = 0, nclean = 0;
    for (int c = 0; c < p.ncls; c++) {
        nfree += p.cls[c].nfree;
        nclean += p.cls[c].nclean;
    }
    CHECK_EQ(nfree, 0);
    CHECK_EQ(nclean, NS - 4);   /* the slab stacks; the guarded ones were unmapped */

    /* they come back whole: the descriptor rebuilt, the old contents gone */
    int reused = 0;
    guarded = 0;
    for (int i = 0; i < NS; i++) {
        s[i] = weft__stack_acquire(&p, SZ);
        check_desc(s[i]);
        guarded += s[i]->guard != NULL;
        for (int j = 0; j < NS; j++)
            if (s[i]->lo == lo[j] && !s[i]->guard) {
                reused++;
                const unsigned char *b = (const unsigned char *)s[i]->lo;
                for (size_t k = 0; k < weft__stack_usable(s[i]); k += 512)
                    CHECK_EQ(b[k], 0);
            }
    }
    CHECK_EQ(reused, NS - 4);
    CHECK_EQ(guarded, 4);   /* unmapping them gave the budget back */
    for (int i = 0; i < NS; i++)
        weft__stack_release(&p, s[i]);
    weft__stack_pool_destroy(&p);
}

int main(int argc, char **argv)
{
    setenv("WEFT_GUARD_BUDGET", "4", 1);   /* read once, at the first stack */
    RUN(test_pool);
    return 0;
}
