/* Internal: machine context switch for stackful coroutines.
 *
 * Three implementations, chosen at configure time (CMake option WEFT_CONTEXT):
 *   - ctx_x86_64.S   x86-64 System V: rbx, rbp, r12-r15, MXCSR, x87 CW pushed on
 *                    the suspended stack, rsp in the context
 *   - ctx_aarch64.S  AArch64 AAPCS64: x19-x30, sp, d8-d15, FPCR
 *   - ctx_ucontext.c portable fallback on <ucontext.h> (WEFT_CTX_UCONTEXT)
 *
 * The switch is asymmetric-agnostic: weft__ctx_switch saves the callee-saved
 * state of the caller into *from and resumes *to. A context made by
 * weft__ctx_make starts by calling entry(arg) on the given stack; entry must
 * never return (it switches away for the last time instead).
 */
#ifndef WEFT_SRC_CTX_H
#define WEFT_SRC_CTX_H

#include <stddef.h>
#include <stdint.h>

#if defined(WEFT_CTX_UCONTEXT)
#include <ucontext.h>
typedef struct weft__ctx {
    ucontext_t uc;
} weft__ctx_t;
#elif defined(__x86_64__)
/* ctx_x86_64.S: the saved stack pointer; the registers are on that stack,
 * in the frame whose 8-byte slots, from the saved stack pointer up, are
 * these (the order ctx_x86_64.S pushes and pops them in) */
typedef struct weft__ctx {
    uint64_t sp;
} weft__ctx_t;
enum {
    WEFT__CTX_F_FPU,   /* MXCSR (low 32 bits), x87 control word (next 16) */
    WEFT__CTX_F_R15,
    WEFT__CTX_F_R14,
    WEFT__CTX_F_R13,
    WEFT__CTX_F_R12,
    WEFT__CTX_F_RBX,
    WEFT__CTX_F_RBP,
    WEFT__CTX_F_PC,    /* resume address */
    WEFT__CTX_F_N
};
#elif defined(__aarch64__)
/* layout used by ctx_aarch64.S: [0..9]=x19..x28 [10]=x29 [11]=x30 [12]=sp
 * [13..20]=d8..d15 [21]=fpcr */
typedef struct weft__ctx {
    uint64_t r[22];
} weft__ctx_t;
#else
#error "no assembly context switch for this architecture: configure with -DWEFT_CONTEXT=ucontext"
#endif

typedef void (*weft__ctx_entry_fn)(void *arg);

/* The stack pointer saved in a suspended context (0 where not known). */
static inline uintptr_t weft__ctx_sp(const weft__ctx_t *c)
{
#if defined(WEFT_CTX_UCONTEXT)
    (void)c;
    return 0;
#elif defined(__x86_64__)
    return (uintptr_t)c->sp;
#else
    return (uintptr_t)c->r[12];
#endif
}

/* The resume address and frame pointer of a suspended context (a debugger's
 * start for a frame-pointer walk); false where not known. */
static inline int weft__ctx_pc_fp(const weft__ctx_t *c, uintptr_t *pc, uintptr_t *fp)
{
#if defined(WEFT_CTX_UCONTEXT)
    (void)c;
    *pc = *fp = 0;
    return 0;
#elif defined(__x86_64__)
    const uint64_t *f = (const uint64_t *)(uintptr_t)c->sp;
    *pc = (uintptr_t)f[WEFT__CTX_F_PC];
    *fp = (uintptr_t)f[WEFT__CTX_F_RBP];
    return 1;
#else
    *pc = (uintptr_t)c->r[11];
    *fp = (uintptr_t)c->r[10];
    return 1;
#endif
}

/* Prepare *c so that switching to it runs entry(arg) on the stack
 * [stack_lo, stack_lo + size). stack_lo + size must be 16-byte aligned. */
void weft__ctx_make(weft__ctx_t *c, void *stack_lo, size_t size, weft__ctx_entry_fn entry, void *arg);

/* Save the current callee-saved state into *from and resume *to. Returns when
 * something switches back to *from. */
void weft__ctx_switch(weft__ctx_t *from, const weft__ctx_t *to);

#endif
