/* AArch64 (AAPCS64, ELF) context switch for weft (see ctx.h for the layout).
 *
 * weft__ctx_t.r[] (8 bytes each):
 *   [0..9]  = x19..x28     byte offsets   0.. 79
 *   [10]    = x29 (fp)                   80
 *   [11]    = x30 (lr)                   88   also the resume pc
 *   [12]    = sp                         96
 *   [13..20]= d8..d15                   104..167
 *   [21]    = fpcr                      168
 *
 * Saves exactly the AAPCS64 callee-saved state: x19-x29, sp, the low 64 bits
 * of v8-v15 (d8-d15), the return address (x30, used as the resume pc) and
 * FPCR (rounding / flush-to-zero modes, so every context keeps its own FP
 * environment, like MXCSR/x87 CW on x86-64). x18 (platform register) and
 * FPSR (cumulative status flags, caller-saved) are not touched. */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
#define WEFT_BTI_C hint #34 /* bti c */
#else
#define WEFT_BTI_C
#endif

    .text

/* void weft__ctx_switch(weft__ctx_t *from = x0, const weft__ctx_t *to = x1) */
    .globl  weft__ctx_switch
    .type   weft__ctx_switch, %function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    WEFT_BTI_C
    /* save the caller's callee-saved state into *from */
    stp     x19, x20, [x0, #0]
    stp     x21, x22, [x0, #16]
    stp     x23, x24, [x0, #32]
    stp     x25, x26, [x0, #48]
    stp     x27, x28, [x0, #64]
    stp     x29, x30, [x0, #80]
    mov     x9, sp
    str     x9, [x0, #96]
    stp     d8, d9, [x0, #104]
    stp     d10, d11, [x0, #120]
    stp     d12, d13, [x0, #136]
    stp     d14, d15, [x0, #152]
    mrs     x10, fpcr
    str     x10, [x0, #168]

    /* restore *to */
    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldp     x29, x30, [x1, #80]
    ldr     x9, [x1, #96]
    mov     sp, x9
    ldp     d8, d9, [x1, #104]
    ldp     d10, d11, [x1, #120]
    ldp     d12, d13, [x1, #136]
    ldp     d14, d15, [x1, #152]
    ldr     x11, [x1, #168]
    cmp     x10, x11                /* writing FPCR can be slow: skip if unchanged */
    b.eq    1f
    msr     fpcr, x11
1:
    ret                             /* to x30 of *to: the caller of its last switch, or the trampoline */
    .cfi_endproc
    .size   weft__ctx_switch, .-weft__ctx_switch

/* First code run on a new stack (reached by the `ret` of weft__ctx_switch):
 * x19 = arg, x20 = entry, x29 = 0, sp 16-byte aligned. x30 is marked
 * undefined so unwinders and debuggers stop at this frame. */
    .globl  weft__ctx_trampoline
    .type   weft__ctx_trampoline, %function
    .p2align 4
weft__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    WEFT_BTI_C
    mov     x0, x19
    blr     x20
    brk     #0                      /* entry must never return */
    .cfi_endproc
    .size   weft__ctx_trampoline, .-weft__ctx_trampoline

    .section .note.GNU-stack,"",%progbits

/* When the build enables branch protection, mark this object as compatible
 * (GNU property note); otherwise the linker drops the BTI/PAC marking of the
 * whole program because one input object lacks it. Nothing here signs return
 * addresses, and the entries carry BTI landing pads. */
#if (defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1) || defined(__ARM_FEATURE_PAC_DEFAULT)
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
#define WEFT_GNU_PROPERTY_BTI 1
#else
#define WEFT_GNU_PROPERTY_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT)
#define WEFT_GNU_PROPERTY_PAC 2
#else
#define WEFT_GNU_PROPERTY_PAC 0
#endif
    .pushsection .note.gnu.property, "a"
    .balign 8
    .long   4                       /* n_namesz: "GNU\0" */
    .long   16                      /* n_descsz */
    .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000000              /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long   4                       /* pr_datasz */
    .long   (WEFT_GNU_PROPERTY_BTI | WEFT_GNU_PROPERTY_PAC)
    .long   0                       /* pad to 8 */
    .popsection
#endif
