/*
 * TC packet buffers from C: bpfx_run_tc and bpfx_program_run_tc with socket-buffer metadata.
 *
 *   tc OBJECTS_DIR
 *
 * OBJECTS_DIR holds the runtime's clang-built fixtures: tc_classify.o (reads len, protocol,
 * ifindex and mark; writes priority, mark and cb[1]), tc_ipip.o (cuts the Ethernet padding
 * and encapsulates in IPIP: the packet shrinks, then grows at its head) and xdp_trunc.o (not a
 * TC program). Results go to stdout, one line each, for the Rust test to compare with the
 * facade's; failed checks go to stderr and make the exit status non-zero.
 */
#include "bpfx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define HEADROOM 256
#define TAILROOM 100

/* FNV-1a over the final packet, so that a line names its bytes. */
static uint32_t fnv(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* The metadata every run starts with: an IPv4 packet received on ifindex 3, mark 0x1234. */
static bpfx_skb_meta start_meta(uint16_t protocol) {
    bpfx_skb_meta m;
    memset(&m, 0, sizeof m);
    m.protocol = protocol;
    m.ifindex = 3;
    m.ingress_ifindex = 3;
    m.mark = 0x1234;
    m.hash = 0xabcd;
    m.tstamp = 1000;
    return m;
}

/* Runs on `pkt` (with the metadata of start_meta(protocol)) in a buffer with HEADROOM and
 * TAILROOM, through a VM (`vm`) or a program of an object (`prog`), and prints
 * "LABEL API ENGINE action A start S len L fnv F mark M priority P cb C0 C1 C2 protocol T". */
static void run(bpfx_vm *vm, bpfx_program *prog, uint32_t engine, const char *label,
                const unsigned char *pkt, size_t len, uint16_t protocol) {
    static unsigned char buf[HEADROOM + 2048 + TAILROOM];
    size_t buf_len = HEADROOM + len + TAILROOM;
    memset(buf, 0, sizeof buf);
    memcpy(buf + HEADROOM, pkt, len);
    bpfx_skb_meta m = start_meta(protocol);
    bpfx_tc_result r;
    if (vm)
        EXPECT(bpfx_run_tc(vm, buf, buf_len, HEADROOM, len, &m, &r), BPFX_OK);
    else
        EXPECT(bpfx_program_run_tc(prog, buf, buf_len, HEADROOM, len, &m, &r), BPFX_OK);
    CHECK(r.start + r.len <= buf_len);
    /* What the program does not write is as the embedder set it. */
    CHECK(m.ifindex == 3 && m.ingress_ifindex == 3 && m.tstamp == 1000);
    printf("%s %s %s action %d start %zu len %zu fnv %u mark %u priority %u cb %u %u %u "
           "protocol %u\n",
           label, vm ? "vm" : "program", ENGINE_NAME[engine], r.action, r.start, r.len,
           fnv(buf + r.start, r.len), m.mark, m.priority, m.cb[0], m.cb[1], m.cb[2],
           m.protocol);
}

static bpfx_vm *ready(const struct file *obj, uint32_t engine) {
    bpfx_vm *vm = bpfx_vm_new();
    CHECK(vm != NULL);
    EXPECT(bpfx_load_elf(vm, obj->bytes, obj->len, NULL), BPFX_OK);
    EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
    EXPECT(bpfx_compile(vm, engine), BPFX_OK);
    return vm;
}

static bpfx_program *program(const struct file *obj, const char *name, uint32_t engine) {
    bpfx_object *o = NULL;
    bpfx_program *p = NULL;
    EXPECT(bpfx_object_open_mem(obj->bytes, obj->len, NULL, &o), BPFX_OK);
    BPFX_OPTS(bpfx_program_opts, opts, .engine = engine, .mode = BPFX_MODE_STRICT);
    EXPECT(bpfx_object_program(o, name, &opts, &p), BPFX_OK);
    bpfx_object_free(o);
    return p;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: tc OBJECTS_DIR\n");
        return 2;
    }
    struct file classify = slurp(argv[1], "tc_classify.o");
    struct file ipip = slurp(argv[1], "tc_ipip.o");
    struct file xdp = slurp(argv[1], "xdp_trunc.o");

    /* Ethernet (IPv4) + IPv4 (TCP, 40 bytes) + TCP to port 80, then 6 bytes of padding. */
    static const unsigned char tcp[60] = {
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00,
        0x45, 0x10, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0};

    for (uint32_t engine = BPFX_ENGINE_INTERPRETER; engine <= BPFX_ENGINE_JIT; engine++) {
        bpfx_vm *vm = ready(&classify, engine);
        bpfx_program *p = program(&classify, "tc_classify", engine);
        run(vm, NULL, engine, "classify", tcp, sizeof tcp, 0x0800);
        run(NULL, p, engine, "classify", tcp, sizeof tcp, 0x0800);
        unsigned char telnet[sizeof tcp];
        memcpy(telnet, tcp, sizeof tcp);
        telnet[37] = 23; /* TCP to port 23: TC_ACT_SHOT */
        run(vm, NULL, engine, "telnet", telnet, sizeof telnet, 0x0800);
        run(NULL, p, engine, "telnet", telnet, sizeof telnet, 0x0800);
        run(vm, NULL, engine, "other", tcp, sizeof tcp, 0x86dd);
        run(NULL, p, engine, "other", tcp, sizeof tcp, 0x86dd);

        /* Argument checks: NULLs, overlap, a packet outside the buffer; meta untouched. */
        unsigned char small[128] = {0};
        bpfx_skb_meta m = start_meta(0x0800);
        bpfx_tc_result r;
        EXPECT(bpfx_run_tc(vm, small, sizeof small, 0, 60, NULL, &r), BPFX_ERR_NULL);
        EXPECT(bpfx_run_tc(vm, small, sizeof small, 0, 60, &m, NULL), BPFX_ERR_NULL);
        EXPECT(bpfx_run_tc(vm, small, sizeof small, 0, 60, (bpfx_skb_meta *)(small + 16), &r),
               BPFX_ERR_ARGUMENT);
        EXPECT(bpfx_run_tc(vm, small, sizeof small, 100, 60, &m, &r), BPFX_ERR_ARGUMENT);
        EXPECT(bpfx_program_run_tc(p, small, sizeof small, 100, 60, &m, &r), BPFX_ERR_ARGUMENT);
        EXPECT(bpfx_program_run_tc(NULL, small, sizeof small, 0, 60, &m, &r), BPFX_ERR_NULL);
        CHECK(m.mark == 0x1234 && m.priority == 0);
        bpfx_vm_free(vm);
        bpfx_program_free(p);

        vm = ready(&ipip, engine);
        p = program(&ipip, "tc_ipip", engine);
        run(vm, NULL, engine, "ipip", tcp, sizeof tcp, 0x0800);
        run(NULL, p, engine, "ipip", tcp, sizeof tcp, 0x0800);
        bpfx_vm_free(vm);
        bpfx_program_free(p);

        /* Not a TC program: refused. */
        vm = ready(&xdp, engine);
        p = program(&xdp, "xdp_trunc", engine);
        EXPECT(bpfx_run_tc(vm, small, sizeof small, 0, 60, &m, &r), BPFX_ERR_CONTEXT);
        EXPECT(bpfx_program_run_tc(p, small, sizeof small, 0, 60, &m, &r), BPFX_ERR_CONTEXT);
        bpfx_vm_free(vm);
        bpfx_program_free(p);
    }
    free(classify.bytes);
    free(ipip.bytes);
    free(xdp.bytes);
    return failures ? 1 : 0;
}
