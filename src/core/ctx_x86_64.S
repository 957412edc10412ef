/* x86-64 System V context switch for weft (see ctx.h for the layout).
 * Saves exactly the callee-saved state: rbx, rbp, r12-r15, the MXCSR control
 * bits and the x87 control word, pushed onto the suspending stack below the
 * caller's return address; the context itself is only the stack pointer.
 * A switch therefore touches the top of the two stacks (lines their frames
 * use anyway) and one word of each context, not a register file kept beside
 * them: for a loop taking turns among many tasks, fewer cache lines per
 * switch. The saved frame, from the saved stack pointer up:
 *   [0] MXCSR (low 32 bits), x87 control word (next 16)
 *   [1] r15 [2] r14 [3] r13 [4] r12 [5] rbx [6] rbp [7] resume address
 * (ctx.h names these slots WEFT__CTX_F_* for weft__ctx_make and the debugger). */
    .text
    .globl  weft__ctx_switch
    .type   weft__ctx_switch, @function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)

    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    popq    %r14
    .cfi_adjust_cfa_offset -8
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    popq    %rcx
    .cfi_adjust_cfa_offset -8
    jmpq    *%rcx
    .cfi_endproc
    .size   weft__ctx_switch, .-weft__ctx_switch

/* First code run on a new stack, reached by the switch's ret from the frame
 * weft__ctx_make builds: r12 = arg, r13 = entry. rsp is 16-byte aligned here, so the call gives entry the ABI's entry alignment. The CFI
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
