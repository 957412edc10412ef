/* Portable context switch on <ucontext.h>, used where no assembly switch
 * exists or when configured with -DWEFT_CONTEXT=ucontext. swapcontext saves
 * and restores the signal mask with a system call, so this path is ~20x slower
 * than the assembly one; it exists for portability and is tested in CI. */
#include "core/ctx.h"

#if defined(WEFT_CTX_UCONTEXT)
#include <stdint.h>
#include <string.h>

/* makecontext passes int arguments only: split the two pointers. */
static void ctx_start(unsigned int e_hi, unsigned int e_lo, unsigned int a_hi, unsigned int a_lo)
{
    uintptr_t e = ((uintptr_t)e_hi << 16 << 16) | (uintptr_t)e_lo;
    uintptr_t a = ((uintptr_t)a_hi << 16 << 16) | (uintptr_t)a_lo;
    weft__ctx_entry_fn entry;
    memcpy(&entry, &e, sizeof entry);
    entry((void *)a);
}

void weft__ctx_make(weft__ctx_t *c, void *stack_lo, size_t size, weft__ctx_entry_fn entry, void *arg)
{
    uintptr_t e, a = (uintptr_t)arg;
    memcpy(&e, &entry, sizeof e);
    memset(c, 0, sizeof *c);
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack_lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))ctx_start, 4, (unsigned int)(e >> 16 >> 16), (unsigned int)e,
                (unsigned int)(a >> 16 >> 16), (unsigned int)a);
}

void weft__ctx_switch(weft__ctx_t *from, const weft__ctx_t *to)
{
    swapcontext(&from->uc, &to->uc);
}
#endif
