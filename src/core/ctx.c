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
    /* the frame weft__ctx_switch pops (ctx_x86_64.S): its ret lands in the
     * trampoline with rsp == top, 16-byte aligned */
    uint64_t *f = (uint64_t *)(top - WEFT__CTX_F_N * sizeof(uint64_t));
    memset(f, 0, WEFT__CTX_F_N * sizeof(uint64_t));   /* r15, r14, rbx; rbp 0 ends the frame chain */
    f[WEFT__CTX_F_FPU] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    f[WEFT__CTX_F_R13] = (uint64_t)(uintptr_t)entry;
    f[WEFT__CTX_F_R12] = (uint64_t)(uintptr_t)arg;
    f[WEFT__CTX_F_PC] = (uint64_t)(uintptr_t)&weft__ctx_trampoline;
    c->sp = (uint64_t)(uintptr_t)f;
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
