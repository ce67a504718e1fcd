/*
 * Every function of bpfx.h (and the error paths of ubpf.h), from C.
 *
 *   test_capi EXAMPLES_DIR PROGRAMS_DIR
 *
 * EXAMPLES_DIR holds the repository's examples (counter.o, xdp_parse.o, perf_sample.o, packets);
 * PROGRAMS_DIR the raw bytecode the Rust test assembled (checksum.bin, helpers.bin, oob.bin,
 * ctx.bin, unknown_helper.bin). Results go to stdout, one "name values..." line each, for the
 * Rust test to compare with the engines in Rust; failed checks go to stderr and make the exit
 * status non-zero.
 */
#include "bpfx.h"
#include "ubpf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- helpers ---------------------------------------------------------------------------- */

struct scale_ctx {
    uint64_t mul;
    unsigned calls;
};

static uint64_t scale(uint64_t x, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5,
                      void *ctx) {
    (void)r2, (void)r3, (void)r4, (void)r5;
    struct scale_ctx *c = ctx;
    c->calls++;
    return x * c->mul;
}

static uint64_t check_flag(uint64_t flag, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5,
                           void *ctx) {
    (void)r2, (void)r3, (void)r4, (void)r5, (void)ctx;
    if (flag == 0) {
        bpfx_helper_fail("flag is zero");
        return 0;
    }
    return flag + 1;
}

static uint64_t ext_identity(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
    (void)b, (void)c, (void)d, (void)e;
    return a;
}

/* ---- sections ---------------------------------------------------------------------------- */

static void statics(void) {
    CHECK(strlen(bpfx_version()) > 0);
    CHECK(strcmp(bpfx_status_name(BPFX_OK), "ok") == 0);
    CHECK(strcmp(bpfx_status_name(BPFX_ERR_TRAP), "program trapped") == 0);
    CHECK(strcmp(bpfx_status_name((bpfx_status)999), "unknown status") == 0);
    CHECK(strcmp(bpfx_trap_kind_name(BPFX_TRAP_NONE), "none") == 0);
    CHECK(strcmp(bpfx_trap_kind_name(BPFX_TRAP_OUT_OF_BOUNDS), "out-of-bounds") == 0);
    CHECK(strcmp(bpfx_trap_kind_name(BPFX_TRAP_INPUT_TOO_SMALL), "input-too-small") == 0);
    CHECK(strcmp(bpfx_trap_kind_name(99), "unknown") == 0);
}

/* Every function that takes a VM refuses NULL without touching anything. */
static void null_vm(void) {
    unsigned char code[8] = {0x95, 0, 0, 0, 0, 0, 0, 0};
    uint64_t r = 0;
    bpfx_trap_info t;
    bpfx_perf_record rec;
    uint32_t key = 0;
    uint64_t val = 0;
    bpfx_vm_free(NULL);
    CHECK(strcmp(bpfx_vm_error(NULL), "") == 0);
    EXPECT(bpfx_register_helper(NULL, 1, "x", scale, NULL, NULL, 0), BPFX_ERR_NULL);
    CHECK(strstr(bpfx_last_error(), "vm") != NULL);
    EXPECT(bpfx_load_bytecode(NULL, code, sizeof code), BPFX_ERR_NULL);
    EXPECT(bpfx_load_elf(NULL, code, sizeof code, NULL), BPFX_ERR_NULL);
    EXPECT(bpfx_set_context(NULL, BPFX_CONTEXT_MEMORY, 0, 0, 0), BPFX_ERR_NULL);
    EXPECT(bpfx_set_input_size(NULL, 8), BPFX_ERR_NULL);
    EXPECT(bpfx_verify(NULL, BPFX_MODE_CHECKED), BPFX_ERR_NULL);
    EXPECT(bpfx_compile(NULL, BPFX_ENGINE_JIT), BPFX_ERR_NULL);
    EXPECT(bpfx_run(NULL, code, sizeof code, &r), BPFX_ERR_NULL);
    EXPECT(bpfx_run_ctx(NULL, code, sizeof code, NULL, 0, &r), BPFX_ERR_NULL);
    EXPECT(bpfx_trap(NULL, &t), BPFX_ERR_NULL);
    EXPECT(bpfx_map_lookup(NULL, "m", &key, sizeof key, &val, sizeof val), BPFX_ERR_NULL);
    EXPECT(bpfx_map_update(NULL, "m", &key, sizeof key, &val, sizeof val, 0), BPFX_ERR_NULL);
    EXPECT(bpfx_map_delete(NULL, "m", &key, sizeof key), BPFX_ERR_NULL);
    EXPECT(bpfx_perf_read(NULL, "m", &rec, NULL, 0), BPFX_ERR_NULL);
    CHECK(bpfx_listing(NULL) == NULL);
    bpfx_helper_fail(NULL); /* outside a helper: no effect */
    bpfx_helper_fail("outside a helper");
}

/* Calls out of order on a fresh VM, and bad enum values. */
static void wrong_state(void) {
    bpfx_vm *vm = bpfx_vm_new();
    uint64_t r = 0;
    bpfx_trap_info t;
    bpfx_perf_record rec;
    uint32_t key = 0;
    uint64_t val = 0;
    CHECK(vm != NULL);
    CHECK(strcmp(bpfx_vm_error(vm), "") == 0);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_ERR_STATE);
    CHECK(strstr(bpfx_vm_error(vm), "no program is loaded") != NULL);
    CHECK(strcmp(bpfx_vm_error(vm), bpfx_last_error()) == 0);
    EXPECT(bpfx_compile(vm, BPFX_ENGINE_INTERPRETER), BPFX_ERR_STATE);
    EXPECT(bpfx_run(vm, NULL, 0, &r), BPFX_ERR_STATE);
    CHECK(strstr(bpfx_vm_error(vm), "not compiled") != NULL);
    EXPECT(bpfx_run_ctx(vm, &val, sizeof val, NULL, 0, &r), BPFX_ERR_STATE);
    EXPECT(bpfx_trap(vm, &t), BPFX_ERR_STATE);
    EXPECT(bpfx_map_lookup(vm, "m", &key, sizeof key, &val, sizeof val), BPFX_ERR_STATE);
    EXPECT(bpfx_map_update(vm, "m", &key, sizeof key, &val, sizeof val, 0), BPFX_ERR_STATE);
    EXPECT(bpfx_map_delete(vm, "m", &key, sizeof key), BPFX_ERR_STATE);
    EXPECT(bpfx_perf_read(vm, "m", &rec, NULL, 0), BPFX_ERR_STATE);
    CHECK(bpfx_listing(vm) == NULL);
    EXPECT(bpfx_verify(vm, 7), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_compile(vm, 5), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_set_context(vm, 9, 0, 0, 0), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_STRUCT, 0, 0, 0), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_STRUCT_PACKET, 8, 4, 0), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_SECTION, 0, 0, 0), BPFX_OK);
    CHECK(strcmp(bpfx_vm_error(vm), "") == 0);
    CHECK(strcmp(bpfx_last_error(), "") == 0);
    EXPECT(bpfx_set_input_size(vm, 16), BPFX_OK);
    EXPECT(bpfx_set_input_size(vm, BPFX_INPUT_SIZE_UNKNOWN), BPFX_OK);
    bpfx_vm_free(vm);
}

static void load_errors(const char *examples) {
    bpfx_vm *vm = bpfx_vm_new();
    unsigned char bad_op[8] = {0xff, 0, 0, 0, 0, 0, 0, 0};
    unsigned char exit_insn[8] = {0x95, 0, 0, 0, 0, 0, 0, 0};
    unsigned char junk[64];
    memset(junk, 0xab, sizeof junk);
    EXPECT(bpfx_load_bytecode(vm, NULL, 8), BPFX_ERR_NULL);
    EXPECT(bpfx_load_bytecode(vm, exit_insn, 0), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_load_bytecode(vm, bad_op, sizeof bad_op), BPFX_ERR_DECODE);
    CHECK(strlen(bpfx_vm_error(vm)) > 0);
    EXPECT(bpfx_load_bytecode(vm, exit_insn, 7), BPFX_ERR_DECODE);
    EXPECT(bpfx_load_elf(vm, NULL, 64, NULL), BPFX_ERR_NULL);
    EXPECT(bpfx_load_elf(vm, junk, 0, NULL), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_load_elf(vm, junk, sizeof junk, NULL), BPFX_ERR_ELF);
    struct file obj = slurp(examples, "counter.o");
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, "no_such_program"), BPFX_ERR_NO_PROGRAM);
    CHECK(strstr(bpfx_vm_error(vm), "packet_filter") != NULL); /* lists what there is */
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len / 2, NULL), BPFX_ERR_ELF);
    /* A failed load leaves the VM as it was: still nothing to verify. */
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_ERR_STATE);
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, NULL), BPFX_OK);
    EXPECT(bpfx_register_helper(vm, 0x1000, "late", scale, NULL, NULL, 0), BPFX_ERR_STATE);
    free(obj.bytes);
    bpfx_vm_free(vm);
}

/* The memory limit: set before loading, charged when verification creates the maps. */
static void mem_limit(const char *examples) {
    struct file obj = slurp(examples, "counter.o");
    bpfx_vm *vm = bpfx_vm_new();
    EXPECT(bpfx_set_mem_limit(NULL, 16), BPFX_ERR_NULL);
    EXPECT(bpfx_set_mem_limit(vm, 16), BPFX_OK);
    /* Loading creates no map, so it fits any limit. */
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, NULL), BPFX_OK);
    EXPECT(bpfx_set_mem_limit(vm, BPFX_DEFAULT_MEM_LIMIT), BPFX_ERR_STATE);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_ERR_MEMORY);
    CHECK(strstr(bpfx_vm_error(vm), "map `counters`: needs ") != NULL);
    CHECK(strstr(bpfx_vm_error(vm), "16-byte memory limit") != NULL);
    CHECK(strcmp(bpfx_status_name(BPFX_ERR_MEMORY), "memory limit reached") == 0);
    EXPECT(bpfx_compile(vm, BPFX_ENGINE_INTERPRETER), BPFX_ERR_STATE);
    bpfx_vm_free(vm);
    vm = bpfx_vm_new();
    EXPECT(bpfx_set_mem_limit(vm, BPFX_DEFAULT_MEM_LIMIT), BPFX_OK);
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, NULL), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    EXPECT(bpfx_compile(vm, BPFX_ENGINE_JIT), BPFX_OK);
    bpfx_vm_free(vm);
    free(obj.bytes);
}

/* checksum.bin: a plain memory program, on both engines, and the JIT listing. */
static void checksum(const char *examples, const char *programs) {
    struct file code = slurp(programs, "checksum.bin");
    struct file hdr = slurp(examples, "ipv4-header.bin");
    bpfx_vm *vm = bpfx_vm_new();
    uint64_t r = 0;
    EXPECT(bpfx_load_bytecode(vm, code.bytes, code.len), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        EXPECT(bpfx_run(vm, hdr.bytes, hdr.len, &r), BPFX_OK);
        printf("checksum.%s %llu\n", ENGINE_NAME[e], (unsigned long long)r);
        if (e == BPFX_ENGINE_INTERPRETER) {
            CHECK(bpfx_listing(vm) == NULL);
            CHECK(strstr(bpfx_vm_error(vm), "interpreter") != NULL);
        }
    }
    char *listing = bpfx_listing(vm);
    CHECK(listing != NULL);
    if (listing) {
        CHECK(strstr(listing, "be16") != NULL); /* the eBPF source is interleaved */
        CHECK(strstr(listing, "ret") != NULL);  /* and the x86-64 code */
        free(listing);
    }
    /* NULL result, NULL memory with a length, result inside the memory. */
    EXPECT(bpfx_run(vm, hdr.bytes, hdr.len, NULL), BPFX_ERR_NULL);
    EXPECT(bpfx_run(vm, NULL, 20, &r), BPFX_ERR_NULL);
    EXPECT(bpfx_run(vm, hdr.bytes, hdr.len, (uint64_t *)hdr.bytes), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_run(vm, NULL, 0, &r), BPFX_OK); /* empty memory is fine */
    /* A memory program has no struct context. */
    EXPECT(bpfx_run_ctx(vm, hdr.bytes, hdr.len, NULL, 0, &r), BPFX_ERR_CONTEXT);
    free(code.bytes);
    free(hdr.bytes);
    bpfx_vm_free(vm);
}

/* helpers.bin: two C helpers, one with a context, one that fails on 0. */
static void helpers(const char *programs) {
    struct file code = slurp(programs, "helpers.bin");
    const uint32_t scalar1[1] = {BPFX_ARG_SCALAR};
    const uint32_t too_many[6] = {1, 1, 1, 1, 1, 1};
    const uint32_t bad_code[1] = {9};
    const uint32_t sized_last[2] = {BPFX_ARG_SCALAR, BPFX_ARG_MEM_SIZED};
    struct scale_ctx ctx = {3, 0};
    uint64_t r = 0;
    bpfx_trap_info t;

    bpfx_vm *vm = bpfx_vm_new();
    EXPECT(bpfx_register_helper(vm, 0x1000, "scale", NULL, &ctx, scalar1, 1), BPFX_ERR_NULL);
    EXPECT(bpfx_register_helper(vm, 0x1000, NULL, scale, &ctx, scalar1, 1), BPFX_ERR_NULL);
    EXPECT(bpfx_register_helper(vm, 0x1000, "scale", scale, &ctx, NULL, 2), BPFX_ERR_NULL);
    EXPECT(bpfx_register_helper(vm, 0x1000, "scale", scale, &ctx, too_many, 6),
           BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_register_helper(vm, 0x1000, "scale", scale, &ctx, bad_code, 1),
           BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_register_helper(vm, 0x1000, "scale", scale, &ctx, sized_last, 2),
           BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_register_helper(vm, 0x1000, "scale", scale, &ctx, scalar1, 1), BPFX_OK);
    EXPECT(bpfx_register_helper(vm, 0x1001, "check_flag", check_flag, NULL, scalar1, 1),
           BPFX_OK);
    EXPECT(bpfx_load_bytecode(vm, code.bytes, code.len), BPFX_OK);
    /* Strict needs the input size to prove the loads from r1. */
    EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_ERR_VERIFY);
    EXPECT(bpfx_set_input_size(vm, 24), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        uint64_t mem[3] = {7, 0, 3};
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        EXPECT(bpfx_run(vm, mem, sizeof mem, &r), BPFX_OK);
        printf("helpers.%s %llu %llu\n", ENGINE_NAME[e], (unsigned long long)r,
               (unsigned long long)mem[1]);
        EXPECT(bpfx_trap(vm, &t), BPFX_ERR_STATE); /* it did not trap */
        mem[2] = 0;
        EXPECT(bpfx_run(vm, mem, sizeof mem, &r), BPFX_ERR_TRAP);
        EXPECT(bpfx_trap(vm, NULL), BPFX_ERR_NULL);
        EXPECT(bpfx_trap(vm, &t), BPFX_OK);
        printf("helpers_trap.%s %u %u\n", ENGINE_NAME[e], t.kind, t.pc);
        CHECK(t.kind == BPFX_TRAP_HELPER_ERROR);
        CHECK(strstr(t.message, "flag is zero") != NULL);
        /* A run shorter than the verified input size is refused. */
        EXPECT(bpfx_run(vm, mem, 16, &r), BPFX_ERR_CONTEXT);
    }
    CHECK(ctx.calls == 4);
    bpfx_vm_free(vm);

    /* Unknown signature (args NULL): Checked accepts, Strict cannot prove the arguments. */
    vm = bpfx_vm_new();
    EXPECT(bpfx_register_helper(vm, 0x1000, "scale", scale, &ctx, NULL, 0), BPFX_OK);
    EXPECT(bpfx_register_helper(vm, 0x1001, "check_flag", check_flag, NULL, NULL, 0), BPFX_OK);
    EXPECT(bpfx_load_bytecode(vm, code.bytes, code.len), BPFX_OK);
    EXPECT(bpfx_set_input_size(vm, 24), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_ERR_VERIFY);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    EXPECT(bpfx_compile(vm, BPFX_ENGINE_JIT), BPFX_OK);
    {
        uint64_t mem[3] = {7, 0, 3};
        EXPECT(bpfx_run(vm, mem, sizeof mem, &r), BPFX_OK);
        printf("helpers_unknown_sig.jit %llu %llu\n", (unsigned long long)r,
               (unsigned long long)mem[1]);
    }
    bpfx_vm_free(vm);
    free(code.bytes);
}

/* oob.bin reads past its 8-byte input: a trap with kind, pc and message. */
static void out_of_bounds(const char *programs) {
    struct file code = slurp(programs, "oob.bin");
    bpfx_vm *vm = bpfx_vm_new();
    uint64_t mem = 0, r = 0;
    bpfx_trap_info t;
    EXPECT(bpfx_load_bytecode(vm, code.bytes, code.len), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        EXPECT(bpfx_run(vm, &mem, sizeof mem, &r), BPFX_ERR_TRAP);
        CHECK(strstr(bpfx_last_error(), "out of bounds") != NULL);
        EXPECT(bpfx_trap(vm, &t), BPFX_OK);
        CHECK(strstr(t.message, "insn #0") != NULL);
        /* The address, the size and the regions it was checked against. */
        CHECK(strstr(t.message, " bytes at 0x") != NULL);
        CHECK(strstr(t.message, "outside input [0x") != NULL);
        CHECK(strstr(t.message, ",+8), stack [0x") != NULL);
        printf("oob.%s %u %u %s\n", ENGINE_NAME[e], t.kind, t.pc, bpfx_trap_kind_name(t.kind));
    }
    free(code.bytes);
    bpfx_vm_free(vm);
}

/* counter.o: an ELF object with a hash map, read and written by name. */
static void counter(const char *examples) {
    struct file obj = slurp(examples, "counter.o");
    struct file syn = slurp(examples, "tcp-syn.bin");
    struct file arp = slurp(examples, "arp.bin");
    bpfx_vm *vm = bpfx_vm_new();
    uint64_t r[3];
    uint32_t key = 0x0800, missing = 0x1234, v6 = 0x86dd;
    uint64_t val = 0, seven = 7;
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, "packet_filter"), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    EXPECT(bpfx_compile(vm, BPFX_ENGINE_JIT), BPFX_OK);
    EXPECT(bpfx_run(vm, syn.bytes, syn.len, &r[0]), BPFX_OK);
    EXPECT(bpfx_run(vm, syn.bytes, syn.len, &r[1]), BPFX_OK);
    EXPECT(bpfx_run(vm, arp.bytes, arp.len, &r[2]), BPFX_OK);
    printf("counter.jit %llu %llu %llu\n", (unsigned long long)r[0], (unsigned long long)r[1],
           (unsigned long long)r[2]);
    EXPECT(bpfx_map_lookup(vm, "counters", &key, sizeof key, &val, sizeof val), BPFX_OK);
    printf("counter.ipv4 %llu\n", (unsigned long long)val);
    EXPECT(bpfx_map_lookup(vm, "counters", &missing, sizeof missing, &val, sizeof val),
           BPFX_ERR_NOT_FOUND);
    EXPECT(bpfx_map_lookup(vm, "nope", &key, sizeof key, &val, sizeof val), BPFX_ERR_NO_MAP);
    CHECK(strstr(bpfx_vm_error(vm), "counters") != NULL);
    EXPECT(bpfx_map_lookup(vm, "counters", &key, sizeof key, &val, 4), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_map_lookup(vm, "counters", &key, 2, &val, sizeof val), BPFX_ERR_MAP);
    EXPECT(bpfx_map_lookup(vm, "counters", NULL, 4, &val, sizeof val), BPFX_ERR_NULL);
    EXPECT(bpfx_map_lookup(vm, "counters", &key, 4, NULL, 8), BPFX_ERR_NULL);
    EXPECT(bpfx_map_lookup(vm, NULL, &key, 4, &val, 8), BPFX_ERR_NULL);
    EXPECT(bpfx_map_update(vm, "counters", &v6, sizeof v6, &seven, sizeof seven, 1), BPFX_OK);
    EXPECT(bpfx_map_update(vm, "counters", &v6, sizeof v6, &seven, sizeof seven, 1),
           BPFX_ERR_MAP); /* BPF_NOEXIST and it exists */
    EXPECT(bpfx_map_update(vm, "counters", &v6, sizeof v6, &seven, sizeof seven, 9),
           BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_map_update(vm, "counters", &v6, sizeof v6, NULL, 8, 0), BPFX_ERR_NULL);
    EXPECT(bpfx_map_update(vm, "counters", &v6, sizeof v6, &seven, 3, 0), BPFX_ERR_MAP);
    EXPECT(bpfx_map_lookup(vm, "counters", &v6, sizeof v6, &val, sizeof val), BPFX_OK);
    CHECK(val == 7);
    EXPECT(bpfx_map_delete(vm, "counters", &v6, sizeof v6), BPFX_OK);
    EXPECT(bpfx_map_delete(vm, "counters", &v6, sizeof v6), BPFX_ERR_NOT_FOUND);
    EXPECT(bpfx_map_delete(vm, "counters", NULL, 4), BPFX_ERR_NULL);
    EXPECT(bpfx_map_delete(vm, "nope", &v6, sizeof v6), BPFX_ERR_NO_MAP);
    EXPECT(bpfx_map_lookup(vm, "counters", &v6, sizeof v6, &val, sizeof val),
           BPFX_ERR_NOT_FOUND);
    /* Maps survive re-verification and recompilation. */
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    EXPECT(bpfx_compile(vm, BPFX_ENGINE_INTERPRETER), BPFX_OK);
    EXPECT(bpfx_run(vm, syn.bytes, syn.len, &r[0]), BPFX_OK);
    EXPECT(bpfx_map_lookup(vm, "counters", &key, sizeof key, &val, sizeof val), BPFX_OK);
    printf("counter.ipv4_after %llu\n", (unsigned long long)val);
    free(obj.bytes);
    free(syn.bytes);
    free(arp.bytes);
    bpfx_vm_free(vm);
}

/* xdp_parse.o: the section implies XDP; bpfx_run takes the packet, returns the action. */
static void xdp(const char *examples) {
    struct file obj = slurp(examples, "xdp_parse.o");
    const char *packets[3] = {"tcp-syn.bin", "telnet-syn.bin", "arp.bin"};
    bpfx_vm *vm = bpfx_vm_new();
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, NULL), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        uint64_t a[3];
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        for (int i = 0; i < 3; i++) {
            struct file p = slurp(examples, packets[i]);
            EXPECT(bpfx_run(vm, p.bytes, p.len, &a[i]), BPFX_OK);
            free(p.bytes);
        }
        printf("xdp.%s %llu %llu %llu\n", ENGINE_NAME[e], (unsigned long long)a[0],
               (unsigned long long)a[1], (unsigned long long)a[2]);
    }
    free(obj.bytes);
    bpfx_vm_free(vm);
}

/* perf_sample.o: each run sends the Ethernet header, the frame length and the CPU to the
 * running CPU's perf buffer; bpfx_perf_read takes the records back, one at a time. */
static void perf(const char *examples) {
    struct file obj = slurp(examples, "perf_sample.o");
    const char *packets[2] = {"tcp-syn.bin", "arp.bin"};
    bpfx_vm *vm = bpfx_vm_new();
    bpfx_perf_record rec;
    unsigned char data[64];
    uint64_t r = 0;
    EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, NULL), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_CHECKED), BPFX_OK);
    EXPECT(bpfx_perf_read(vm, "events", &rec, data, sizeof data), BPFX_ERR_NOT_FOUND);
    EXPECT(bpfx_perf_read(vm, "nope", &rec, data, sizeof data), BPFX_ERR_NO_MAP);
    EXPECT(bpfx_perf_read(vm, "events", NULL, data, sizeof data), BPFX_ERR_NULL);
    EXPECT(bpfx_perf_read(vm, "events", &rec, NULL, 8), BPFX_ERR_NULL);
    EXPECT(bpfx_perf_read(vm, "events", (bpfx_perf_record *)data, data, sizeof data),
           BPFX_ERR_ARGUMENT);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        for (int i = 0; i < 2; i++) {
            struct file p = slurp(examples, packets[i]);
            EXPECT(bpfx_run(vm, p.bytes, p.len, &r), BPFX_OK);
            CHECK(r == 2);
            free(p.bytes);
        }
        printf("perf.%s", ENGINE_NAME[e]);
        while (bpfx_perf_read(vm, "events", &rec, data, sizeof data) == BPFX_OK) {
            uint16_t len;
            uint32_t cpu;
            memcpy(&len, data + 14, sizeof len);
            memcpy(&cpu, data + 16, sizeof cpu);
            printf(" %zu:%u:%02x%02x:%d", rec.data_len, (unsigned)len, data[12], data[13],
                   rec.lost == 0 && cpu == rec.cpu);
        }
        printf("\n");
    }
    /* A buffer too small: the full size is reported, what fits is copied. */
    struct file p = slurp(examples, packets[0]);
    memset(data, 0, sizeof data);
    EXPECT(bpfx_run(vm, p.bytes, p.len, &r), BPFX_OK);
    EXPECT(bpfx_perf_read(vm, "events", &rec, data, 4), BPFX_OK);
    CHECK(memcmp(data, p.bytes, 4) == 0 && data[4] == 0);
    printf("perf.truncated %zu\n", rec.data_len);
    free(p.bytes);
    free(obj.bytes);
    bpfx_vm_free(vm);
}

/* BPFX_CONTEXT_TC and BPFX_CONTEXT_SOCKET: r1 = a struct __sk_buff over the packet bpfx_run
 * takes; `ldxw r0, [r1+0]; exit` returns skb->len (for the socket filter: the bytes kept). */
static void skb(const char *examples) {
    static const unsigned char len_prog[] = {0x61, 0x10, 0, 0, 0, 0, 0, 0,
                                             0x95, 0,    0, 0, 0, 0, 0, 0};
    struct file p = slurp(examples, "tcp-syn.bin");
    bpfx_vm *vm = bpfx_vm_new();
    uint64_t tc = 0, sock = 0;
    EXPECT(bpfx_load_bytecode(vm, len_prog, sizeof len_prog), BPFX_OK);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_TC, 0, 0, 0), BPFX_OK);
        EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        EXPECT(bpfx_run(vm, p.bytes, p.len, &tc), BPFX_OK);
        EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_SOCKET, 0, 0, 0), BPFX_OK);
        EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        EXPECT(bpfx_run(vm, p.bytes, 20, &sock), BPFX_OK);
        printf("skb.%s %llu %llu\n", ENGINE_NAME[e], (unsigned long long)tc,
               (unsigned long long)sock);
    }
    free(p.bytes);
    bpfx_vm_free(vm);
}

/* ctx.bin: an embedder struct {data, data_end, extra} over a packet. */
static void struct_context(const char *programs) {
    struct file code = slurp(programs, "ctx.bin");
    bpfx_vm *vm = bpfx_vm_new();
    uint64_t r = 0;
    unsigned char packet[10] = {0};
    EXPECT(bpfx_load_bytecode(vm, code.bytes, code.len), BPFX_OK);
    EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_STRUCT_PACKET, 24, 0, 8), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        uint64_t ctx[3] = {0, 0, 100};
        EXPECT(bpfx_compile(vm, e), BPFX_OK);
        EXPECT(bpfx_run_ctx(vm, ctx, sizeof ctx, packet, sizeof packet, &r), BPFX_OK);
        printf("ctx.%s %llu\n", ENGINE_NAME[e], (unsigned long long)r);
        EXPECT(bpfx_run(vm, ctx, sizeof ctx, &r), BPFX_ERR_CONTEXT);
        EXPECT(bpfx_run_ctx(vm, ctx, 16, packet, sizeof packet, &r), BPFX_ERR_CONTEXT);
        EXPECT(bpfx_run_ctx(vm, NULL, 24, packet, sizeof packet, &r), BPFX_ERR_NULL);
        EXPECT(bpfx_run_ctx(vm, ctx, sizeof ctx, packet, sizeof packet, NULL), BPFX_ERR_NULL);
        EXPECT(bpfx_run_ctx(vm, ctx, sizeof ctx, (unsigned char *)ctx + 8, 8, &r),
               BPFX_ERR_ARGUMENT); /* overlapping buffers */
    }
    free(code.bytes);
    bpfx_vm_free(vm);
}

/* The uBPF subset's error paths (ubpf_style.c runs the programs). */
static void ubpf_errors(const char *programs) {
    struct file code = slurp(programs, "oob.bin");
    struct file unknown = slurp(programs, "unknown_helper.bin");
    char *err = NULL;
    uint64_t r = 0, mem = 0;

    CHECK(ubpf_load(NULL, code.bytes, (uint32_t)code.len, &err) == -1);
    CHECK(err != NULL);
    free(err);
    CHECK(ubpf_load_elf(NULL, code.bytes, code.len, NULL) == -1);
    CHECK(ubpf_exec(NULL, &mem, sizeof mem, &r) == -1);
    CHECK(ubpf_compile(NULL, &err) == NULL);
    free(err);
    CHECK(ubpf_register(NULL, 0, "x", ext_identity) == -1);
    CHECK(ubpf_set_unwind_function_index(NULL, 0) == -1);
    CHECK(ubpf_toggle_bounds_check(NULL, true) == false);
    ubpf_unload_code(NULL);
    ubpf_destroy(NULL);
    CHECK(as_external_function_t(NULL) == NULL);

    struct ubpf_vm *vm = ubpf_create();
    CHECK(vm != NULL);
    CHECK(ubpf_toggle_bounds_check(vm, false) == true);
    CHECK(ubpf_toggle_bounds_check(vm, true) == false);
    CHECK(ubpf_set_unwind_function_index(vm, 3) == 0);
    CHECK(ubpf_set_unwind_function_index(vm, 4) == -1);
    CHECK(ubpf_exec(vm, &mem, sizeof mem, &r) == -1); /* nothing loaded */
    CHECK(ubpf_compile(vm, &err) == NULL);
    CHECK(err != NULL && strstr(err, "no code") != NULL);
    free(err);
    err = NULL;
    CHECK(ubpf_load(vm, NULL, 8, &err) == -1);
    free(err);
    err = NULL;
    CHECK(ubpf_load(vm, code.bytes, 12, &err) == -1);
    CHECK(err != NULL && strstr(err, "multiple of 8") != NULL);
    free(err);
    err = NULL;
    CHECK(ubpf_load(vm, unknown.bytes, (uint32_t)unknown.len, &err) == -1);
    CHECK(err != NULL && strstr(err, "nonexistent function 77") != NULL);
    free(err);
    err = NULL;
    CHECK(ubpf_register(vm, 77, "identity", ext_identity) == 0);
    CHECK(ubpf_load(vm, unknown.bytes, (uint32_t)unknown.len, &err) == 0);
    CHECK(err == NULL);
    CHECK(ubpf_load(vm, code.bytes, (uint32_t)code.len, &err) == -1);
    CHECK(err != NULL && strstr(err, "already been loaded") != NULL);
    free(err);
    err = NULL;
    ubpf_unload_code(vm);
    CHECK(ubpf_load(vm, code.bytes, (uint32_t)code.len, &err) == 0);
    /* oob.bin traps: -1 from the interpreter, UINT64_MAX from the compiled function. */
    CHECK(ubpf_exec(vm, &mem, sizeof mem, &r) == -1);
    CHECK(ubpf_exec(vm, &mem, sizeof mem, NULL) == -1);
    CHECK(ubpf_exec(vm, NULL, 8, &r) == -1);
    CHECK(ubpf_exec(vm, &mem, sizeof mem, (uint64_t *)&mem) == -1);
    ubpf_jit_fn fn = ubpf_compile(vm, &err);
    CHECK(fn != NULL && err == NULL);
    CHECK(ubpf_compile(vm, NULL) == fn);
    if (fn) {
        CHECK(fn(&mem, sizeof mem) == UINT64_MAX);
    }
    CHECK(ubpf_load_elf(vm, code.bytes, code.len, &err) == -1); /* already loaded */
    free(err);
    err = NULL;
    ubpf_unload_code(vm);
    CHECK(ubpf_load_elf(vm, code.bytes, code.len, &err) == -1); /* not an ELF object */
    CHECK(err != NULL);
    free(err);
    err = NULL;
    CHECK(ubpf_load_elf_ex(vm, code.bytes, code.len, "main", &err) == -1);
    free(err);
    ubpf_destroy(vm);
    /* The VM is gone: its trampoline no longer runs anything. */
    if (fn) {
        CHECK(fn(&mem, sizeof mem) == UINT64_MAX);
    }

    /* Every slot taken: the next compile fails with a message, and destroying frees one. */
    struct ubpf_vm *vms[BPFX_UBPF_JIT_SLOTS + 1];
    int compiled = 0;
    for (int i = 0; i <= BPFX_UBPF_JIT_SLOTS; i++) {
        vms[i] = ubpf_create();
        CHECK(ubpf_load(vms[i], code.bytes, (uint32_t)code.len, NULL) == 0);
        err = NULL;
        if (ubpf_compile(vms[i], &err) != NULL) {
            compiled++;
        } else {
            CHECK(i == BPFX_UBPF_JIT_SLOTS && err != NULL && strstr(err, "slots") != NULL);
            free(err);
        }
    }
    CHECK(compiled == BPFX_UBPF_JIT_SLOTS);
    ubpf_destroy(vms[0]);
    CHECK(ubpf_compile(vms[BPFX_UBPF_JIT_SLOTS], NULL) != NULL);
    for (int i = 1; i <= BPFX_UBPF_JIT_SLOTS; i++) {
        ubpf_destroy(vms[i]);
    }
    free(code.bytes);
    free(unknown.bytes);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s EXAMPLES_DIR PROGRAMS_DIR\n", argv[0]);
        return 2;
    }
    statics();
    null_vm();
    wrong_state();
    load_errors(argv[1]);
    mem_limit(argv[1]);
    checksum(argv[1], argv[2]);
    helpers(argv[2]);
    out_of_bounds(argv[2]);
    counter(argv[1]);
    xdp(argv[1]);
    perf(argv[1]);
    struct_context(argv[2]);
    skb(argv[1]);
    ubpf_errors(argv[2]);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
