/* Standalone test of the internal machine-context API (src/core/ctx.h).
 *
 * Build with src/core/ctx.c plus one switch implementation:
 *   cc -std=c17 -O2 -Isrc tests/test_ctx.c src/core/ctx.c src/core/ctx_x86_64.S -lm
 *   cc -std=c17 -O2 -Isrc tests/test_ctx.c src/core/ctx.c src/core/ctx_aarch64.S -lm
 *   cc -std=c17 -O2 -Isrc -DWEFT_CTX_UCONTEXT tests/test_ctx.c src/core/ctx_ucontext.c -lm
 * (ctx.c compiles to nothing with WEFT_CTX_UCONTEXT, so it may be linked too.)
 *
 * Under AddressSanitizer run with ASAN_OPTIONS=detect_stack_use_after_return=0:
 * this test does not announce its stack switches to the sanitizer
 * (__sanitizer_start_switch_fiber), so ASan's fake stacks cannot follow them.
 *
 * Exit status 0 on success; on the first failed check a message is printed
 * and the process exits with status 1 (also from inside a coroutine). */
#include "core/ctx.h"

#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STACK_SIZE ((size_t)64 * 1024)

static void fail_at(const char *file, int line, const char *what)
{
    fprintf(stderr, "test_ctx: FAIL %s:%d: %s\n", file, line, what);
    fflush(stderr);
    exit(1);
}
#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            fail_at(__FILE__, __LINE__, #cond);                                                                        \
    } while (0)

static void *stack_alloc(void)
{
    void *p = aligned_alloc(16, STACK_SIZE);
    CHECK(p != NULL);
    return p;
}

/* ------------------------------------------------------------------------- */
/* (a) ping-pong 1,000,000 round trips through shared variables               */

#define PINGPONG_N 1000000L

static weft__ctx_t pp_main, pp_co;
static long pp_request; /* written by main before each switch */
static long pp_reply;   /* written by the coroutine before each switch back */
static long pp_co_iterations;

static void pp_entry(void *arg)
{
    CHECK(arg == &pp_co);
    for (long expect = 0; expect < PINGPONG_N; expect++) {
        CHECK(pp_request == expect);
        pp_reply = 3 * pp_request + 1;
        pp_co_iterations++;
        weft__ctx_switch(&pp_co, &pp_main);
    }
    CHECK(pp_request == -1);
    pp_reply = -2;
    weft__ctx_switch(&pp_co, &pp_main);
    fail_at(__FILE__, __LINE__, "finished coroutine resumed");
}

static void test_pingpong(void)
{
    void *stack = stack_alloc();
    weft__ctx_make(&pp_co, stack, STACK_SIZE, pp_entry, &pp_co);
    for (long i = 0; i < PINGPONG_N; i++) {
        pp_request = i;
        pp_reply = -100;
        weft__ctx_switch(&pp_main, &pp_co);
        CHECK(pp_reply == 3 * i + 1);
        CHECK(pp_co_iterations == i + 1);
    }
    pp_request = -1;
    weft__ctx_switch(&pp_main, &pp_co);
    CHECK(pp_reply == -2);
    CHECK(pp_co_iterations == PINGPONG_N);
    free(stack);
}

/* ------------------------------------------------------------------------- */
/* (b) callee-saved registers survive switches                                */
/* Both sides run the same computation with different seeds, each keeping    */
/* 12 integer and 10 double accumulators live across every switch, so the     */
/* compiler holds them in callee-saved registers (x86-64: rbx, rbp, r12-r15;  */
/* aarch64: x19-x29, d8-d15) and spills the rest. If the switch lost any of   */
/* them, one side would continue with the other side's values.               */

#define REG_N 20000
#define REG_NI 12
#define REG_ND 10

struct reg_result {
    uint64_t i[REG_NI];
    double d[REG_ND];
};

typedef void (*yield_fn)(void);

static void reg_work(uint64_t seed, int n, yield_fn yield, struct reg_result *out)
{
    uint64_t a0 = seed, a1 = seed ^ 0x9e3779b97f4a7c15u, a2 = seed * 3 + 1, a3 = seed + 0x1234567u;
    uint64_t a4 = ~seed, a5 = seed << 7, a6 = seed >> 3, a7 = seed * seed;
    uint64_t a8 = seed + 17, a9 = seed * 0x2545f4914f6cdd1du, a10 = seed ^ 0xffu, a11 = seed + 99;
    double f0 = (double)(seed & 0xffff), f1 = 1.5, f2 = 2.25, f3 = -3.0, f4 = 0.125;
    double f5 = 7.0, f6 = (double)(seed >> 48), f7 = 0.5, f8 = 11.0, f9 = -0.75;
    for (int k = 0; k < n; k++) {
        a0 = a0 * 6364136223846793005u + 1442695040888963407u;
        a1 ^= a0 >> 17;
        a2 += a1 * 31u;
        a3 = (a3 << 5 | a3 >> 59) ^ a2;
        a4 -= a3 ^ (uint64_t)k;
        a5 += a4 >> 11;
        a6 ^= a5 * 0x100000001b3u;
        a7 += a6 + (uint64_t)k;
        a8 = (a8 ^ a7) * 0xff51afd7ed558ccdu;
        a9 += a8 >> 29;
        a10 ^= a9 + a0;
        a11 += a10 * 5u + a1;
        f0 = f0 * 0.5 + (double)(a0 & 0xff);
        f1 = f1 * 0.75 + (double)(a1 & 0x7f);
        f2 = f2 * 0.25 + f0;
        f3 = f3 * 0.5 - (double)(a3 & 0x3f);
        f4 = f4 * 0.125 + f1 * 0.5;
        f5 = f5 * 0.5 + (double)(a5 & 0xf);
        f6 = f6 * 0.25 + f3;
        f7 = f7 * 0.5 + f5 * 0.25;
        f8 = f8 * 0.75 + (double)(a8 & 0x1ff);
        f9 = f9 * 0.5 - f7;
        yield();
    }
    out->i[0] = a0, out->i[1] = a1, out->i[2] = a2, out->i[3] = a3, out->i[4] = a4, out->i[5] = a5;
    out->i[6] = a6, out->i[7] = a7, out->i[8] = a8, out->i[9] = a9, out->i[10] = a10, out->i[11] = a11;
    out->d[0] = f0, out->d[1] = f1, out->d[2] = f2, out->d[3] = f3, out->d[4] = f4;
    out->d[5] = f5, out->d[6] = f6, out->d[7] = f7, out->d[8] = f8, out->d[9] = f9;
}

#define REG_SEED_MAIN 0x0123456789abcdefu
#define REG_SEED_CO 0xfedcba9876543210u

static weft__ctx_t reg_main, reg_co;
static struct reg_result reg_out_co;
static int reg_co_done;
static long reg_yields_main, reg_yields_co;

static void no_yield(void) {}
static void reg_yield_main(void)
{
    reg_yields_main++;
    weft__ctx_switch(&reg_main, &reg_co);
}
static void reg_yield_co(void)
{
    reg_yields_co++;
    weft__ctx_switch(&reg_co, &reg_main);
}

static void reg_entry(void *arg)
{
    (void)arg;
    reg_work(REG_SEED_CO, REG_N, reg_yield_co, &reg_out_co);
    reg_co_done = 1;
    weft__ctx_switch(&reg_co, &reg_main);
    fail_at(__FILE__, __LINE__, "finished coroutine resumed");
}

static int reg_equal(const struct reg_result *x, const struct reg_result *y)
{
    for (int k = 0; k < REG_NI; k++)
        if (x->i[k] != y->i[k])
            return 0;
    for (int k = 0; k < REG_ND; k++)
        if (x->d[k] != y->d[k]) /* same code, same inputs: bit-identical */
            return 0;
    return 1;
}

static void test_registers(void)
{
    struct reg_result ref_main, ref_co, out_main;
    reg_work(REG_SEED_MAIN, REG_N, no_yield, &ref_main);
    reg_work(REG_SEED_CO, REG_N, no_yield, &ref_co);
    CHECK(!reg_equal(&ref_main, &ref_co));

    void *stack = stack_alloc();
    weft__ctx_make(&reg_co, stack, STACK_SIZE, reg_entry, NULL);
    /* every yield of main resumes the coroutine, which runs to its next yield */
    reg_work(REG_SEED_MAIN, REG_N, reg_yield_main, &out_main);
    CHECK(reg_yields_main == REG_N);
    CHECK(reg_yields_co == REG_N);
    CHECK(!reg_co_done);
    weft__ctx_switch(&reg_main, &reg_co); /* let it finish */
    CHECK(reg_co_done);
    CHECK(reg_equal(&out_main, &ref_main));
    CHECK(reg_equal(&reg_out_co, &ref_co));
    free(stack);
}

/* ------------------------------------------------------------------------- */
/* (c) floating-point environment is per context                              */
/* glibc's fesetround sets both the x87 control word and MXCSR on x86-64 and  */
/* fegetround reads the x87 control word; double arithmetic uses SSE (MXCSR)  */
/* and long double arithmetic uses the x87 unit, so both registers are        */
/* checked through their effect. On aarch64 both go through FPCR (long double */
/* is soft-float binary128, whose rounding follows FPCR).                     */
/* The probe is +-1/5: in binary its nearest rounding is away from zero in   */
/* double, x87 extended and binary128, so the pair (1/5, -1/5) comes out     */
/* different under each of the four rounding modes (checked below).          */

static volatile double fp_one = 1.0, fp_five = 5.0;
static volatile long double fp_lone = 1.0L, fp_lfive = 5.0L;

struct fp_ref {
    int mode;
    double d[2];
    long double ld[2];
};

static void fp_probe(struct fp_ref *r)
{
    volatile double d0 = fp_one / fp_five, d1 = -fp_one / fp_five;
    volatile long double l0 = fp_lone / fp_lfive, l1 = -fp_lone / fp_lfive;
    r->d[0] = d0, r->d[1] = d1, r->ld[0] = l0, r->ld[1] = l1;
}

static int fp_same_d(const struct fp_ref *x, const struct fp_ref *y)
{
    return x->d[0] == y->d[0] && x->d[1] == y->d[1];
}
static int fp_same_ld(const struct fp_ref *x, const struct fp_ref *y)
{
    return x->ld[0] == y->ld[0] && x->ld[1] == y->ld[1];
}

static struct fp_ref fp_near, fp_up, fp_down, fp_zero;

static void fp_measure(struct fp_ref *r, int mode)
{
    CHECK(fesetround(mode) == 0);
    r->mode = mode;
    fp_probe(r);
    CHECK(fesetround(FE_TONEAREST) == 0);
}

/* the current environment behaves as r says */
static void fp_expect(const struct fp_ref *r, const char *where)
{
    struct fp_ref now;
    now.mode = fegetround();
    fp_probe(&now);
    int mode = now.mode, d_ok = fp_same_d(&now, r), ld_ok = fp_same_ld(&now, r);
    if (mode != r->mode || !d_ok || !ld_ok) {
        fprintf(stderr, "test_ctx: FAIL floating-point environment leaked between contexts (%s): "
                        "fegetround()=%d expected %d, double rounding %s, long double rounding %s\n",
                where, mode, r->mode, d_ok ? "ok" : "WRONG", ld_ok ? "ok" : "WRONG");
        exit(1);
    }
}

static weft__ctx_t fp_main, fp_co;
static int fp_step;

static void fp_entry(void *arg)
{
    (void)arg;
    /* a new context inherits the environment current at weft__ctx_make */
    fp_expect(&fp_near, "coroutine start");
    CHECK(fesetround(FE_UPWARD) == 0);
    fp_expect(&fp_up, "coroutine after fesetround");
    fp_step = 1;
    weft__ctx_switch(&fp_co, &fp_main);
    /* main switched to FE_DOWNWARD meanwhile */
    fp_expect(&fp_up, "coroutine resumed");
    CHECK(fesetround(FE_TOWARDZERO) == 0);
    fp_step = 2;
    weft__ctx_switch(&fp_co, &fp_main);
    fp_expect(&fp_zero, "coroutine resumed again");
    fp_step = 3;
    weft__ctx_switch(&fp_co, &fp_main);
    fail_at(__FILE__, __LINE__, "finished coroutine resumed");
}

static void test_fpenv(void)
{
    fp_measure(&fp_near, FE_TONEAREST);
    fp_measure(&fp_up, FE_UPWARD);
    fp_measure(&fp_down, FE_DOWNWARD);
    fp_measure(&fp_zero, FE_TOWARDZERO);
    const struct fp_ref *all[4] = {&fp_near, &fp_up, &fp_down, &fp_zero};
    for (int x = 0; x < 4; x++)
        for (int y = x + 1; y < 4; y++)
            CHECK(!fp_same_d(all[x], all[y]) && !fp_same_ld(all[x], all[y]));
    CHECK(fp_up.d[0] > fp_down.d[0] && fp_up.ld[0] > fp_down.ld[0]);

    void *stack = stack_alloc();
    weft__ctx_make(&fp_co, stack, STACK_SIZE, fp_entry, NULL);
    fp_expect(&fp_near, "main start");
    weft__ctx_switch(&fp_main, &fp_co);
    CHECK(fp_step == 1);
    fp_expect(&fp_near, "main after coroutine set FE_UPWARD");
    CHECK(fesetround(FE_DOWNWARD) == 0);
    weft__ctx_switch(&fp_main, &fp_co);
    CHECK(fp_step == 2);
    fp_expect(&fp_down, "main after coroutine set FE_TOWARDZERO");
    weft__ctx_switch(&fp_main, &fp_co);
    CHECK(fp_step == 3);
    fp_expect(&fp_down, "main at end");
    CHECK(fesetround(FE_TONEAREST) == 0);
    fp_expect(&fp_near, "main restored");
    free(stack);
}

/* ------------------------------------------------------------------------- */
/* (d) nested: a coroutine creates a second one; switches are symmetric       */

static weft__ctx_t nest_main, nest_a, nest_b;
static char nest_log[64];
static size_t nest_len;

static void nest_note(char c)
{
    CHECK(nest_len + 1 < sizeof nest_log);
    nest_log[nest_len++] = c;
    nest_log[nest_len] = '\0';
}

static void nest_b_entry(void *arg)
{
    CHECK(arg == &nest_b);
    nest_note('b');
    weft__ctx_switch(&nest_b, &nest_a); /* back to its creator */
    nest_note('c');
    weft__ctx_switch(&nest_b, &nest_main); /* straight to main, skipping a */
    nest_note('d');
    weft__ctx_switch(&nest_b, &nest_a);
    fail_at(__FILE__, __LINE__, "finished coroutine resumed");
}

static void nest_a_entry(void *arg)
{
    CHECK(arg == &nest_a);
    void *stack_b = stack_alloc();
    nest_note('A');
    weft__ctx_make(&nest_b, stack_b, STACK_SIZE, nest_b_entry, &nest_b);
    weft__ctx_switch(&nest_a, &nest_b);
    nest_note('B');
    weft__ctx_switch(&nest_a, &nest_b);
    nest_note('C'); /* resumed by b after main resumed b */
    free(stack_b);  /* b is finished */
    weft__ctx_switch(&nest_a, &nest_main);
    fail_at(__FILE__, __LINE__, "finished coroutine resumed");
}

static void test_nested(void)
{
    void *stack_a = stack_alloc();
    weft__ctx_make(&nest_a, stack_a, STACK_SIZE, nest_a_entry, &nest_a);
    nest_note('0');
    weft__ctx_switch(&nest_main, &nest_a);
    nest_note('1');
    CHECK(strcmp(nest_log, "0AbBc1") == 0);
    weft__ctx_switch(&nest_main, &nest_b);
    nest_note('2');
    CHECK(strcmp(nest_log, "0AbBc1dC2") == 0);
    free(stack_a);
}

/* ------------------------------------------------------------------------- */
/* (e) stack alignment at the entry of a new context                          */

static volatile uintptr_t align_addr; /* defeats folding of the alignment test */
static weft__ctx_t align_main, align_co;
static int align_ok;

/* on x86-64 at -O2 this vectorizes with aligned SSE loads/stores of stack
 * data (movapd), which fault if the stack is misaligned */
static double __attribute__((noinline)) align_sse_sum(double *v, int n)
{
    _Alignas(16) double tmp[8];
    for (int k = 0; k < 8; k++)
        tmp[k] = v[k] * 2.0 + (double)n;
    align_addr = (uintptr_t)&tmp[0];
    CHECK(align_addr % 16 == 0);
    double s = 0;
    for (int k = 0; k < 8; k++)
        s += tmp[k];
    return s;
}

static void align_entry(void *arg)
{
    (void)arg;
    _Alignas(16) double v[8];
    _Alignas(16) unsigned char bytes[16];
    align_addr = (uintptr_t)&v[0];
    CHECK(align_addr % 16 == 0);
    align_addr = (uintptr_t)&bytes[0];
    CHECK(align_addr % 16 == 0);
    for (int k = 0; k < 8; k++)
        v[k] = (double)k;
    memset(bytes, 0x5a, sizeof bytes);
    /* sum(2k + 3) for k < 8 = 56 + 24 */
    CHECK(align_sse_sum(v, 3) == 80.0);
    CHECK(bytes[15] == 0x5a);
    long double ld = (long double)v[7] / 7.0L; /* 16-byte aligned spill slots on x86-64 */
    CHECK(ld == 1.0L);
    align_ok = 1;
    weft__ctx_switch(&align_co, &align_main);
    fail_at(__FILE__, __LINE__, "finished coroutine resumed");
}

static void test_alignment(void)
{
    /* try every 16-byte-aligned top offset in a 64-byte window. Each context
     * gets a fresh allocation: the finished one leaves its entry frame on its
     * stack (entry never returns), and under ASan that frame's redzone poison
     * would stay behind in the memory without the sanitizer fiber API. */
    for (size_t trim = 0; trim < 64; trim += 16) {
        void *stack = stack_alloc();
        align_ok = 0;
        weft__ctx_make(&align_co, stack, STACK_SIZE - trim, align_entry, NULL);
        weft__ctx_switch(&align_main, &align_co);
        CHECK(align_ok);
        free(stack);
    }
}

/* ------------------------------------------------------------------------- */
/* (f) 1000 coroutines, each suspended at recursion depth 20, round-robin     */

#define DEEP_N 1000
#define DEEP_DEPTH 20
#define DEEP_ROUNDS 5

struct deep {
    weft__ctx_t ctx;
    int id;
    int rounds_seen;
    int done;
    void *stack;
};

static weft__ctx_t deep_main;
static struct deep *deep_cos;
static int deep_round, deep_current;

static uint64_t deep_key(int id, int depth)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15u + (uint64_t)depth * 0xbf58476d1ce4e5b9u;
    return x ^ (x >> 31);
}

static int deep_recurse(struct deep *d, int depth)
{
    uint64_t local[4];
    int r;
    local[0] = deep_key(d->id, depth);
    local[1] = ~local[0];
    local[2] = (uint64_t)depth;
    local[3] = (uint64_t)(uintptr_t)d;
    if (depth == DEEP_DEPTH) {
        for (int k = 0; k < DEEP_ROUNDS; k++) {
            CHECK(deep_round == k);
            CHECK(deep_current == d->id);
            CHECK(d->rounds_seen == k);
            d->rounds_seen++;
            weft__ctx_switch(&d->ctx, &deep_main);
        }
        CHECK(deep_round == DEEP_ROUNDS);
        CHECK(deep_current == d->id);
        r = depth;
    } else {
        r = deep_recurse(d, depth + 1);
    }
    CHECK(local[0] == deep_key(d->id, depth));
    CHECK(local[1] == ~deep_key(d->id, depth));
    CHECK(local[2] == (uint64_t)depth);
    CHECK(local[3] == (uint64_t)(uintptr_t)d);
    CHECK(r == DEEP_DEPTH);
    return r;
}

static void deep_entry(void *arg)
{
    struct deep *d = arg;
    CHECK(deep_recurse(d, 1) == DEEP_DEPTH);
    d->done = 1;
    weft__ctx_switch(&d->ctx, &deep_main);
    fail_at(__FILE__, __LINE__, "finished coroutine resumed");
}

static void test_many(void)
{
    deep_cos = calloc(DEEP_N, sizeof *deep_cos);
    CHECK(deep_cos != NULL);
    for (int i = 0; i < DEEP_N; i++) {
        deep_cos[i].id = i;
        deep_cos[i].stack = stack_alloc();
        weft__ctx_make(&deep_cos[i].ctx, deep_cos[i].stack, STACK_SIZE, deep_entry, &deep_cos[i]);
    }
    /* round 0 starts every coroutine; rounds 1.. resume them; the last pass
     * lets them unwind their recursion and finish */
    for (deep_round = 0; deep_round <= DEEP_ROUNDS; deep_round++) {
        for (int i = 0; i < DEEP_N; i++) {
            deep_current = i;
            weft__ctx_switch(&deep_main, &deep_cos[i].ctx);
            CHECK(deep_cos[i].rounds_seen == (deep_round < DEEP_ROUNDS ? deep_round + 1 : DEEP_ROUNDS));
            CHECK(deep_cos[i].done == (deep_round == DEEP_ROUNDS));
        }
    }
    for (int i = 0; i < DEEP_N; i++) {
        CHECK(deep_cos[i].done);
        free(deep_cos[i].stack);
    }
    free(deep_cos);
}

/* ------------------------------------------------------------------------- */

int main(void)
{
    test_pingpong();
    test_registers();
    test_fpenv();
    test_nested();
    test_alignment();
    test_many();
    printf("test_ctx: ok (%s)\n",
#if defined(WEFT_CTX_UCONTEXT)
           "ucontext"
#elif defined(__x86_64__)
           "x86_64 asm"
#elif defined(__aarch64__)
           "aarch64 asm"
#else
           "?"
#endif
    );
    return 0;
}
