/* x86-64 System V context switch for weft (see ctx.h for the layout).
 * Saves exactly the callee-saved state: rbx, rbp, r12-r15, rsp, the resume
 * rip, MXCSR control bits and the x87 control word. The resume address is
 * taken from the caller's return address and reached with an indirect jmp
 * (no ret), which keeps the return-stack predictor in step. */
    .text
    .globl  weft__ctx_switch
    .type   weft__ctx_switch, @function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    movq    (%rsp), %rax            /* resume rip = our return address */
    leaq    8(%rsp), %rdx           /* rsp as it will be after return */
    movq    %rax, 0(%rdi)
    movq    %rdx, 8(%rdi)
    movq    %rbx, 16(%rdi)
    movq    %rbp, 24(%rdi)
    movq    %r12, 32(%rdi)
    movq    %r13, 40(%rdi)
    movq    %r14, 48(%rdi)
    movq    %r15, 56(%rdi)
    stmxcsr 64(%rdi)
    fnstcw  68(%rdi)

    movq    8(%rsi), %rsp
    movq    16(%rsi), %rbx
    movq    24(%rsi), %rbp
    movq    32(%rsi), %r12
    movq    40(%rsi), %r13
    movq    48(%rsi), %r14
    movq    56(%rsi), %r15
    ldmxcsr 64(%rsi)
    fldcw   68(%rsi)
    jmpq    *0(%rsi)
    .cfi_endproc
    .size   weft__ctx_switch, .-weft__ctx_switch

/* First code run on a new stack: r12 = arg, r13 = entry. rsp is 16-byte
 * aligned here, so the call gives entry the ABI's entry alignment. The CFI
 * marks rip undefined so debuggers stop unwinding at this frame. */
    .globl  weft__ctx_trampoline
    .type   weft__ctx_trampoline, @function
    .p2align 4
weft__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%r13
    ud2                             /* entry must never return */
    .cfi_endproc
    .size   weft__ctx_trampoline, .-weft__ctx_trampoline

    .section .note.GNU-stack,"",%progbits
