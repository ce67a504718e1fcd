/*
 * bpfx_set_budget from C: every run ends.
 *
 *   budget PROGRAMS_DIR
 *
 * PROGRAMS_DIR holds the raw bytecode the Rust test assembled: loop.bin (tests/endless/loop.asm,
 * a loop that never ends) and count.bin (counts r0 up to 10 and returns it, 22 instructions).
 * Results go to stdout, one line each, for the Rust test to compare; failed checks go to stderr
 * and make the exit status non-zero.
 */
#include "bpfx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

/* Runs once and prints "LABEL ENGINE result R" or "LABEL ENGINE trap KIND PC". */
static void run(bpfx_vm *vm, uint32_t engine, const char *label) {
    uint64_t r = 0;
    bpfx_status s = bpfx_run(vm, NULL, 0, &r);
    if (s == BPFX_OK) {
        printf("%s %s result %llu\n", label, ENGINE_NAME[engine], (unsigned long long)r);
        return;
    }
    CHECK(s == BPFX_ERR_TRAP);
    bpfx_trap_info t;
    EXPECT(bpfx_trap(vm, &t), BPFX_OK);
    printf("%s %s trap %s %u\n", label, ENGINE_NAME[engine], bpfx_trap_kind_name(t.kind), t.pc);
}

static bpfx_vm *ready(const struct file *prog, uint32_t engine) {
    bpfx_vm *vm = bpfx_vm_new();
    EXPECT(bpfx_load_bytecode(vm, prog->bytes, prog->len), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    EXPECT(bpfx_compile(vm, engine), BPFX_OK);
    return vm;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: budget PROGRAMS_DIR\n");
        return 2;
    }
    struct file loop = slurp(argv[1], "loop.bin");
    struct file count = slurp(argv[1], "count.bin");
    for (uint32_t engine = BPFX_ENGINE_INTERPRETER; engine <= BPFX_ENGINE_JIT; engine++) {
        bpfx_vm *vm = ready(&loop, engine);
        /* Nothing set: the default budget ends it. */
        run(vm, engine, "default");
        /* A limit, set before compiling (the JIT compiles the charge in); every run gets it
         * whole. */
        EXPECT(bpfx_set_budget(vm, 1001), BPFX_OK);
        EXPECT(bpfx_compile(vm, engine), BPFX_OK);
        run(vm, engine, "limit-1001");
        run(vm, engine, "limit-1001-again");
        EXPECT(bpfx_set_budget(vm, BPFX_BUDGET_DEFAULT), BPFX_OK);
        run(vm, engine, "default-again");
        bpfx_vm_free(vm);

        vm = ready(&count, engine);
        run(vm, engine, "count-default");
        EXPECT(bpfx_set_budget(vm, BPFX_BUDGET_UNLIMITED), BPFX_OK);
        run(vm, engine, "count-unlimited");
        EXPECT(bpfx_set_budget(vm, 21), BPFX_OK);
        EXPECT(bpfx_compile(vm, engine), BPFX_OK);
        run(vm, engine, "count-limit-21");
        EXPECT(bpfx_set_budget(vm, 22), BPFX_OK);
        run(vm, engine, "count-limit-22");
        bpfx_vm_free(vm);
    }
    EXPECT(bpfx_set_budget(NULL, 5), BPFX_ERR_NULL);
    CHECK(BPFX_DEFAULT_BUDGET == 0x10000000ULL);
    free(loop.bytes);
    free(count.bytes);
    return failures ? 1 : 0;
}
