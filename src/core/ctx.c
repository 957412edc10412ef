/* Context creation for the assembly switches (ctx_x86_64.S, ctx_aarch64.S). */
#include "core/ctx.h"

#if !defined(WEFT_CTX_UCONTEXT)
#include <string.h>

void weft__ctx_trampoline(void);

void weft__ctx_make(weft__ctx_t *c, void *stack_lo, size_t size, weft__ctx_entry_fn entry, void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    memset(c, 0, sizeof *c);
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    top -= 16;                               /* a zero "return address" slot pair for unwinders */
    *(uint64_t *)top = 0;
    *(uint64_t *)(top + 8) = 0;
    c->r[0] = (uint64_t)(uintptr_t)&weft__ctx_trampoline;
    c->r[1] = (uint64_t)top;                 /* 16-byte aligned at the trampoline */
    c->r[4] = (uint64_t)(uintptr_t)arg;      /* r12 */
    c->r[5] = (uint64_t)(uintptr_t)entry;    /* r13 */
    c->r[8] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    top -= 16;
    *(uint64_t *)top = 0;
    *(uint64_t *)(top + 8) = 0;
    c->r[0] = (uint64_t)(uintptr_t)arg;      /* x19 */
    c->r[1] = (uint64_t)(uintptr_t)entry;    /* x20 */
    c->r[10] = 0;                            /* x29: end of the frame chain */
    c->r[11] = (uint64_t)(uintptr_t)&weft__ctx_trampoline; /* x30: resume pc */
    c->r[12] = (uint64_t)top;                /* sp */
    c->r[21] = fpcr;
#endif
}
#endif
