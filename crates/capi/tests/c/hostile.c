/*
 * Hostile inputs from C: struct context layouts whose data/data_end fields overlap or do not
 * fit, and helper memory arguments the verifier could not prove. Each must be stopped (an
 * error or a trap), never crash, on both engines.
 *
 *   hostile PROGRAMS_DIR
 *
 * PROGRAMS_DIR holds the raw bytecode the Rust test assembled (ctx_overlap.bin, ctx_reader.bin,
 * fill_*.bin). Results go to stdout, one "name values..." line each, for the Rust test to
 * compare with the same programs run on the engines in Rust; failed checks go to stderr and
 * make the exit status non-zero.
 */
#include "bpfx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- context layouts -------------------------------------------------------------------- */

struct layout {
    uint16_t size, data, data_end;
};

/* The audit's reproducer first: each field inside the struct, but overlapping. */
static const struct layout LAYOUTS[] = {
    {16, 4, 0}, {16, 8, 8}, {16, 0, 0}, {24, 8, 4}, {16, 0, 16},
    {8, 8, 0},  {65535, 0, 65528},      {16, 0, 8}, {16, 8, 0},
};

static void layouts(const char *programs) {
    struct file overlap = slurp(programs, "ctx_overlap.bin");
    bpfx_vm *vm = bpfx_vm_new();
    EXPECT(bpfx_load_bytecode(vm, overlap.bytes, overlap.len), BPFX_OK);
    for (size_t i = 0; i < sizeof LAYOUTS / sizeof LAYOUTS[0]; i++) {
        const struct layout *l = &LAYOUTS[i];
        bpfx_status s =
            bpfx_set_context(vm, BPFX_CONTEXT_STRUCT_PACKET, l->size, l->data, l->data_end);
        if (s != BPFX_OK) {
            CHECK(s == BPFX_ERR_ARGUMENT);
            CHECK(strstr(bpfx_vm_error(vm), "context layout") != NULL);
        }
        printf("layout %u %u %u %d\n", l->size, l->data, l->data_end, (int)s);
    }
    EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_STRUCT, 0, 0, 0), BPFX_ERR_ARGUMENT);
    free(overlap.bytes);
    bpfx_vm_free(vm);

    /* The reproducer's program with a sound layout: the proven load reads only the packet. */
    struct file reader = slurp(programs, "ctx_reader.bin");
    vm = bpfx_vm_new();
    EXPECT(bpfx_load_bytecode(vm, reader.bytes, reader.len), BPFX_OK);
    EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_STRUCT_PACKET, 16, 8, 0), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        uint64_t ctx[2] = {0, 0}, full = 0, shortr = 1;
        unsigned char packet[8] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        EXPECT(bpfx_run_ctx(vm, ctx, sizeof ctx, packet, sizeof packet, &full), BPFX_OK);
        EXPECT(bpfx_run_ctx(vm, ctx, sizeof ctx, packet, 4, &shortr), BPFX_OK);
        printf("reader.%s %llu %llu\n", ENGINE_NAME[e], (unsigned long long)full,
               (unsigned long long)shortr);
    }
    free(reader.bytes);
    bpfx_vm_free(vm);
}

/* ---- helper memory arguments ------------------------------------------------------------ */

/* {BPFX_ARG_MEM_SIZED, BPFX_ARG_SCALAR}: trusts its arguments, as docs/c-api.md allows. */
static uint64_t fill(uint64_t ptr, uint64_t size, uint64_t r3, uint64_t r4, uint64_t r5,
                     void *ctx) {
    (void)r3, (void)r4, (void)r5;
    unsigned *calls = ctx;
    (*calls)++;
    memset((void *)(uintptr_t)ptr, 0x41, (size_t)size);
    return size;
}

static const char *FILL[] = {"fill_wild",  "fill_oversize", "fill_before", "fill_wrap",
                             "fill_huge",  "fill_stack",    "fill_ok",     "fill_tail",
                             "fill_frame"};

static void helper_arguments(const char *programs) {
    static const uint32_t args[] = {BPFX_ARG_MEM_SIZED, BPFX_ARG_SCALAR};
    for (size_t i = 0; i < sizeof FILL / sizeof FILL[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.bin", FILL[i]);
        struct file code = slurp(programs, name);
        unsigned calls = 0;
        bpfx_vm *vm = bpfx_vm_new();
        EXPECT(bpfx_register_helper(vm, 0x1000, "fill", fill, &calls, args, 2), BPFX_OK);
        EXPECT(bpfx_load_bytecode(vm, code.bytes, code.len), BPFX_OK);
        EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
        for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
            unsigned char mem[16];
            uint64_t r = 0;
            bpfx_trap_info t = {0, 0, NULL};
            memset(mem, 7, sizeof mem);
            calls = 0;
            EXPECT(bpfx_compile(vm, e), BPFX_OK);
            bpfx_status s = bpfx_run(vm, mem, sizeof mem, &r);
            if (s == BPFX_ERR_TRAP) {
                EXPECT(bpfx_trap(vm, &t), BPFX_OK);
                CHECK(t.kind == BPFX_TRAP_OUT_OF_BOUNDS);
                CHECK(calls == 0);
            }
            printf("%s.%s %d %u %u %llu %u %u %u\n", FILL[i], ENGINE_NAME[e], (int)s, t.kind,
                   t.pc, (unsigned long long)r, calls, mem[0], mem[15]);
        }
        free(code.bytes);
        bpfx_vm_free(vm);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PROGRAMS_DIR\n", argv[0]);
        return 2;
    }
    layouts(argv[1]);
    helper_arguments(argv[1]);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
