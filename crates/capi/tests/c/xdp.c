/*
 * XDP packet buffers from C: bpfx_run_xdp and bpfx_last_redirect.
 *
 *   xdp OBJECTS_DIR PROGRAMS_DIR
 *
 * OBJECTS_DIR holds the runtime's clang-built fixtures (xdp_trunc.o, xdp_decap.o); PROGRAMS_DIR
 * the raw bytecode the Rust test assembled: redirect.bin (bpf_redirect(7, 0)). Results go to
 * stdout, one line each, for the Rust test to compare with the facade's; failed checks go to
 * stderr and make the exit status non-zero.
 */
#include "bpfx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define HEADROOM 256
#define TAILROOM 100

/* A VM with `obj` loaded, verified in Strict mode and compiled on `engine`. */
static bpfx_vm *ready(const struct file *obj, int elf, uint32_t engine) {
    bpfx_vm *vm = bpfx_vm_new();
    CHECK(vm != NULL);
    if (elf) {
        EXPECT(bpfx_load_elf(vm, obj->bytes, obj->len, NULL), BPFX_OK);
    } else {
        EXPECT(bpfx_load_bytecode(vm, obj->bytes, obj->len), BPFX_OK);
        EXPECT(bpfx_set_context(vm, BPFX_CONTEXT_XDP, 0, 0, 0), BPFX_OK);
    }
    EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
    EXPECT(bpfx_compile(vm, engine), BPFX_OK);
    return vm;
}

/* Runs on `frame` in a buffer with HEADROOM and TAILROOM and prints
 * "LABEL ENGINE action A start S len L meta M", checking that the bytes at the final start
 * are `want` (of want_len bytes). */
static void run(bpfx_vm *vm, uint32_t engine, const char *label, const unsigned char *frame,
                size_t len, const unsigned char *want, size_t want_len) {
    unsigned char buf[HEADROOM + 2048 + TAILROOM];
    size_t buf_len = HEADROOM + len + TAILROOM;
    memset(buf, 0xee, sizeof buf);
    memcpy(buf + HEADROOM, frame, len);
    bpfx_xdp_result r;
    EXPECT(bpfx_run_xdp(vm, buf, buf_len, HEADROOM, len, &r), BPFX_OK);
    CHECK(r.len == want_len && r.start + r.len <= buf_len);
    if (r.len == want_len)
        CHECK(memcmp(buf + r.start, want, want_len) == 0);
    printf("%s %s action %llu start %zu len %zu meta %zu\n", label, ENGINE_NAME[engine],
           (unsigned long long)r.action, r.start, r.len, r.meta_len);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: xdp OBJECTS_DIR PROGRAMS_DIR\n");
        return 2;
    }
    struct file trunc = slurp(argv[1], "xdp_trunc.o");
    struct file decap = slurp(argv[1], "xdp_decap.o");
    struct file redirect = slurp(argv[2], "redirect.bin");

    unsigned char frame[200];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (unsigned char)(i * 5 + 1);
    /* Ethernet (IPv4) + an outer IPv4 header (IPIP) + an inner IPv4 header. */
    static const unsigned char ipip[54] = {
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00,
        0x45, 0, 0, 40, 0, 0, 0, 0, 64, 4, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
    unsigned char decapped[34];
    memcpy(decapped, ipip, 14);
    memcpy(decapped + 14, ipip + 34, 20);

    for (uint32_t engine = BPFX_ENGINE_INTERPRETER; engine <= BPFX_ENGINE_JIT; engine++) {
        bpfx_vm *vm = ready(&trunc, 1, engine);
        run(vm, engine, "trunc", frame, sizeof frame, frame, 64);
        run(vm, engine, "short", frame, 60, frame, 60);
        bpfx_redirect rd;
        EXPECT(bpfx_last_redirect(vm, &rd), BPFX_OK);
        CHECK(rd.kind == BPFX_REDIRECT_NONE && rd.map == NULL);
        /* A slice cannot follow a cut frame: bpfx_run refuses, naming the helper. */
        unsigned char copy[200];
        memcpy(copy, frame, sizeof copy);
        uint64_t r0 = 0;
        EXPECT(bpfx_run(vm, copy, sizeof copy, &r0), BPFX_ERR_CONTEXT);
        CHECK(strstr(bpfx_vm_error(vm), "xdp_adjust_tail") != NULL);
        CHECK(memcmp(copy, frame, sizeof copy) == 0);
        /* The frame must lie inside the buffer; the rooms fit 16 bits. */
        unsigned char small[64];
        bpfx_xdp_result res;
        EXPECT(bpfx_run_xdp(vm, small, sizeof small, 8, 57, &res), BPFX_ERR_ARGUMENT);
        EXPECT(bpfx_run_xdp(vm, small, sizeof small, SIZE_MAX, 2, &res), BPFX_ERR_ARGUMENT);
        EXPECT(bpfx_run_xdp(vm, NULL, 64, 0, 14, &res), BPFX_ERR_NULL);
        EXPECT(bpfx_run_xdp(vm, small, sizeof small, 0, 14, NULL), BPFX_ERR_NULL);
        bpfx_vm_free(vm);

        vm = ready(&decap, 1, engine);
        run(vm, engine, "decap", ipip, sizeof ipip, decapped, sizeof decapped);
        bpfx_vm_free(vm);

        vm = ready(&redirect, 0, engine);
        run(vm, engine, "redirect", frame, 60, frame, 60);
        EXPECT(bpfx_last_redirect(vm, &rd), BPFX_OK);
        printf("redirect %s kind %u target %u flags %u\n", ENGINE_NAME[engine], rd.kind,
               rd.target, rd.flags);
        CHECK(rd.map == NULL);
        EXPECT(bpfx_last_redirect(vm, NULL), BPFX_ERR_NULL);
        /* Not an XDP program: bpfx_run_xdp refuses it. */
        bpfx_vm_free(vm);
    }
    EXPECT(bpfx_last_redirect(NULL, NULL), BPFX_ERR_NULL);
    free(trunc.bytes);
    free(decap.bytes);
    free(redirect.bytes);
    return failures ? 1 : 0;
}
