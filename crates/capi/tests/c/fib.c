/*
 * bpf_fib_lookup from C: bpfx_set_fib with a forwarding table written here, and the runtime's
 * XDP router fixture (xdp_fib.o) on both engines.
 *
 *   fib OBJECTS_DIR FRAMES_DIR
 *
 * FRAMES_DIR holds the frames the Rust test built (routed.bin, unreachable.bin,
 * unrouted.bin). The table prints each request it gets; each run prints its verdict, redirect
 * and output frame in hex, one line each, for the Rust test to compare with the facade's;
 * failed checks go to stderr and make the exit status non-zero.
 */
#include "bpfx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define HEADROOM 256

/* 10.1.0.0/16 out of device 7; 10.9.0.0/16 unreachable; the rest not forwarded. */
static int table(const bpfx_fib_request *req, bpfx_fib_route *route, void *ctx) {
    int *calls = ctx;
    (*calls)++;
    printf("request family %u proto %u dst %u.%u.%u.%u tot_len %u ifindex %u context %u "
           "flags %u table %u/%u\n",
           req->family, req->l4_protocol, req->dst[0], req->dst[1], req->dst[2], req->dst[3],
           req->tot_len, req->ifindex, req->context, req->flags, req->has_table, req->table);
    CHECK(route->ifindex == 0 && route->has_dmac == 0);
    if (req->family == 2 && req->dst[0] == 10 && req->dst[1] == 1) {
        static const uint8_t smac[6] = {2, 0, 0, 0, 7, 1}, dmac[6] = {2, 0, 0, 0, 7, 2};
        route->ifindex = 7;
        route->mtu = 1500;
        memcpy(route->smac, smac, 6);
        memcpy(route->dmac, dmac, 6);
        route->has_dmac = 1;
        return 0;
    }
    if (req->family == 2 && req->dst[0] == 10 && req->dst[1] == 9)
        return 2;
    return 4;
}

static void run(bpfx_vm *vm, uint32_t engine, const char *label, const struct file *f) {
    unsigned char buf[HEADROOM + 2048];
    CHECK(f->len <= 2048);
    memcpy(buf + HEADROOM, f->bytes, f->len);
    bpfx_xdp_result r;
    EXPECT(bpfx_run_xdp(vm, buf, HEADROOM + f->len, HEADROOM, f->len, &r), BPFX_OK);
    bpfx_redirect rd;
    EXPECT(bpfx_last_redirect(vm, &rd), BPFX_OK);
    printf("%s %s action %llu redirect %u %u frame ", label, ENGINE_NAME[engine],
           (unsigned long long)r.action, rd.kind, rd.target);
    for (size_t i = 0; i < r.len; i++)
        printf("%02x", buf[r.start + i]);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fib OBJECTS_DIR FRAMES_DIR\n");
        return 2;
    }
    struct file obj = slurp(argv[1], "xdp_fib.o");
    struct file routed = slurp(argv[2], "routed.bin");
    struct file unreachable = slurp(argv[2], "unreachable.bin");
    struct file unrouted = slurp(argv[2], "unrouted.bin");
    int calls = 0;

    for (uint32_t engine = BPFX_ENGINE_INTERPRETER; engine <= BPFX_ENGINE_JIT; engine++) {
        bpfx_vm *vm = bpfx_vm_new();
        CHECK(vm != NULL);
        EXPECT(bpfx_set_fib(vm, table, &calls), BPFX_OK);
        EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, "xdp_router"), BPFX_OK);
        /* The table belongs to the object's environment: not after the load. */
        EXPECT(bpfx_set_fib(vm, table, &calls), BPFX_ERR_STATE);
        EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
        EXPECT(bpfx_compile(vm, engine), BPFX_OK);
        run(vm, engine, "routed", &routed);
        run(vm, engine, "unreachable", &unreachable);
        run(vm, engine, "unrouted", &unrouted);
        bpfx_vm_free(vm);

        /* Without a table (NULL: the default) nothing is forwarded. */
        vm = bpfx_vm_new();
        EXPECT(bpfx_set_fib(vm, NULL, NULL), BPFX_OK);
        EXPECT(bpfx_load_elf(vm, obj.bytes, obj.len, "xdp_router"), BPFX_OK);
        EXPECT(bpfx_verify(vm, BPFX_MODE_STRICT), BPFX_OK);
        EXPECT(bpfx_compile(vm, engine), BPFX_OK);
        run(vm, engine, "no-table", &routed);
        bpfx_vm_free(vm);
    }
    CHECK(calls == 6);
    EXPECT(bpfx_set_fib(NULL, table, NULL), BPFX_ERR_NULL);
    free(obj.bytes);
    free(routed.bytes);
    free(unreachable.bytes);
    free(unrouted.bytes);
    return failures ? 1 : 0;
}
