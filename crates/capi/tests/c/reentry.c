/*
 * Handles used from inside their own calls: a helper that calls back into the VM or the
 * program whose run is calling it (runs it again, loads a new program into it, frees it), and
 * a ring buffer callback that frees the map handle being consumed. Each such call is refused
 * with BPFX_ERR_STATE (a free is left undone, bpfx_last_error says why), the running call
 * finishes on what it started with, and the handle works afterwards; valgrind sees no invalid
 * access and no leak.
 *
 *   reentry OBJECTS_DIR
 *
 * Results go to stdout, one "name values..." line each; failed checks go to stderr and make
 * the exit status non-zero.
 */
#include "bpfx.h"
#include "ubpf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* call 0x1000; exit */
static const unsigned char CALL_HELPER[] = {
    0x85, 0, 0, 0, 0x00, 0x10, 0, 0, /* call 0x1000 */
    0x95, 0, 0, 0, 0,    0,    0, 0, /* exit */
};

/* mov r0, 1; exit */
static const unsigned char RETURN_ONE[] = {
    0xb7, 0, 0, 0, 1, 0, 0, 0, /* mov r0, 1 */
    0x95, 0, 0, 0, 0, 0, 0, 0, /* exit */
};

static int in_use(const char *message) { return strstr(message, "in use") != NULL; }

struct vm_state {
    bpfx_vm *vm;
    uint32_t engine;
};

/* Every call on the VM running this helper is refused: the result counts the refusals. */
static uint64_t reenter_vm(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5,
                           void *ctx) {
    (void)r1, (void)r2, (void)r3, (void)r4, (void)r5;
    struct vm_state *s = ctx;
    unsigned char mem[8] = {0};
    uint64_t r = 0, refused = 0;
    refused += bpfx_run(s->vm, mem, sizeof mem, &r) == BPFX_ERR_STATE && in_use(bpfx_last_error());
    refused += bpfx_load_bytecode(s->vm, RETURN_ONE, sizeof RETURN_ONE) == BPFX_ERR_STATE;
    refused += bpfx_verify(s->vm, BPFX_MODE_CHECKED) == BPFX_ERR_STATE;
    refused += bpfx_compile(s->vm, s->engine) == BPFX_ERR_STATE;
    refused += bpfx_set_budget(s->vm, 1) == BPFX_ERR_STATE;
    bpfx_redirect rd;
    refused += bpfx_last_redirect(s->vm, &rd) == BPFX_ERR_STATE;
    bpfx_vm_free(s->vm); /* left undone */
    refused += in_use(bpfx_last_error());
    refused += in_use(bpfx_vm_error(s->vm));
    bpfx_object *obj = NULL;
    refused += bpfx_object_open_mem_vm(s->vm, RETURN_ONE, sizeof RETURN_ONE, NULL, &obj) ==
               BPFX_ERR_STATE;
    CHECK(obj == NULL);
    return refused;
}

static void vm_reentry(void) {
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        struct vm_state s = {bpfx_vm_new(), e};
        EXPECT(bpfx_register_helper(s.vm, 0x1000, "reenter", reenter_vm, &s, NULL, 0), BPFX_OK);
        EXPECT(bpfx_load_bytecode(s.vm, CALL_HELPER, sizeof CALL_HELPER), BPFX_OK);
        EXPECT(bpfx_verify(s.vm, BPFX_MODE_CHECKED), BPFX_OK);
        EXPECT(bpfx_compile(s.vm, e), BPFX_OK);
        unsigned char mem[8] = {0};
        uint64_t first = 0, second = 0;
        EXPECT(bpfx_run(s.vm, mem, sizeof mem, &first), BPFX_OK);
        CHECK(strcmp(bpfx_vm_error(s.vm), "") == 0);
        /* The VM is whole: the same program runs again, with the same refusals. */
        EXPECT(bpfx_run(s.vm, mem, sizeof mem, &second), BPFX_OK);
        printf("%s vm reentry %llu %llu\n", ENGINE_NAME[e], (unsigned long long)first,
               (unsigned long long)second);
        bpfx_vm_free(s.vm);
    }
}

struct prog_state {
    bpfx_program *prog;
};

/* host_helper.o's host_scale(len, 3): every call on the running program is refused. */
static uint64_t reenter_program(uint64_t len, uint64_t k, uint64_t r3, uint64_t r4,
                                uint64_t r5, void *ctx) {
    (void)r3, (void)r4, (void)r5;
    struct prog_state *s = ctx;
    unsigned char mem[7] = {0};
    uint64_t r = 0, refused = 0;
    refused += bpfx_program_run(s->prog, mem, sizeof mem, &r) == BPFX_ERR_STATE &&
               in_use(bpfx_last_error());
    bpfx_redirect rd;
    refused += bpfx_program_last_redirect(s->prog, &rd) == BPFX_ERR_STATE;
    bpfx_program_free(s->prog); /* left undone */
    refused += in_use(bpfx_last_error());
    refused += strcmp(bpfx_program_name(s->prog), "") == 0;
    return len * k * 100 + refused;
}

static void program_reentry(const char *objects) {
    struct file elf = slurp(objects, "host_helper.o");
    const uint32_t args[] = {BPFX_ARG_SCALAR, BPFX_ARG_SCALAR};
    for (uint32_t e = BPFX_ENGINE_INTERPRETER; e <= BPFX_ENGINE_JIT; e++) {
        struct prog_state s = {NULL};
        bpfx_vm *vm = bpfx_vm_new();
        EXPECT(bpfx_register_helper(vm, 0x10000, "host_scale", reenter_program, &s, args, 2),
               BPFX_OK);
        bpfx_object *obj = NULL;
        EXPECT(bpfx_object_open_mem_vm(vm, elf.bytes, elf.len, NULL, &obj), BPFX_OK);
        bpfx_vm_free(vm);
        BPFX_OPTS(bpfx_program_opts, opts, .engine = e);
        EXPECT(bpfx_object_program(obj, "use_host", &opts, &s.prog), BPFX_OK);
        bpfx_object_free(obj);
        if (!s.prog)
            exit(1);
        unsigned char mem[7] = {0};
        uint64_t first = 0, second = 0;
        EXPECT(bpfx_program_run(s.prog, mem, sizeof mem, &first), BPFX_OK);
        EXPECT(bpfx_program_run(s.prog, mem, sizeof mem, &second), BPFX_OK);
        CHECK(strcmp(bpfx_program_name(s.prog), "use_host") == 0);
        printf("%s program reentry %llu %llu\n", ENGINE_NAME[e], (unsigned long long)first,
               (unsigned long long)second);
        bpfx_program_free(s.prog);
    }
    free(elf.bytes);
}

struct ring_state {
    bpfx_map *events;
    int records, refused, nested;
};

static int count_record(void *ctx, const void *data, size_t size) {
    (void)data, (void)size;
    ((struct ring_state *)ctx)->nested++;
    return 0;
}

/* Frees the map being consumed (left undone) and consumes it again from inside (allowed: the
 * handle is shared, not freed). */
static int free_while_consuming(void *ctx, const void *data, size_t size) {
    (void)data, (void)size;
    struct ring_state *s = ctx;
    s->records++;
    bpfx_map_free(s->events);
    s->refused += in_use(bpfx_last_error());
    s->refused += strcmp(bpfx_map_name(s->events), "events") == 0;
    CHECK(bpfx_ringbuf_consume(s->events, count_record, s) >= 0);
    return 0;
}

static void ring_reentry(const char *objects) {
    struct file elf = slurp(objects, "shared_maps.o");
    bpfx_object *obj = NULL;
    EXPECT(bpfx_object_open_mem(elf.bytes, elf.len, NULL, &obj), BPFX_OK);
    bpfx_program *count = NULL;
    EXPECT(bpfx_object_program(obj, "count", NULL, &count), BPFX_OK);
    struct ring_state s = {NULL, 0, 0, 0};
    EXPECT(bpfx_object_map(obj, "events", &s.events), BPFX_OK);
    bpfx_object_free(obj);
    if (!count || !s.events)
        exit(1);
    for (int i = 0; i < 3; i++) {
        unsigned char buf[4] = {'a', 'b', 'c', (unsigned char)i};
        uint64_t r = 0;
        EXPECT(bpfx_program_run(count, buf, sizeof buf, &r), BPFX_OK);
    }
    int n = bpfx_ringbuf_consume(s.events, free_while_consuming, &s);
    printf("ring reentry consumed %d records %d refused %d nested %d\n", n, s.records, s.refused,
           s.nested);
    /* The handle lives on until freed outside the consumer. */
    CHECK(bpfx_map_value_size(s.events) == 0 && bpfx_map_type(s.events) == 27);
    bpfx_map_free(s.events);
    bpfx_program_free(count);
    free(elf.bytes);
}

/* The uBPF VM whose run calls `unload_and_destroy` (uBPF helpers get no context). */
static struct ubpf_vm *running_ubpf;

/* Unloads the running code and destroys the running VM: both refused, the run goes on. */
static uint64_t unload_and_destroy(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                   uint64_t r5) {
    (void)r1, (void)r2, (void)r3, (void)r4, (void)r5;
    uint64_t refused = 0;
    ubpf_unload_code(running_ubpf);
    refused += in_use(bpfx_last_error());
    ubpf_destroy(running_ubpf);
    refused += in_use(bpfx_last_error());
    char *err = NULL;
    refused += ubpf_load(running_ubpf, RETURN_ONE, sizeof RETURN_ONE, &err) == -1;
    free(err);
    return refused;
}

static void ubpf_reentry(void) {
    /* call 1; exit */
    static const unsigned char CALL_1[] = {
        0x85, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0,
    };
    running_ubpf = ubpf_create();
    CHECK(ubpf_register(running_ubpf, 1, "unload_and_destroy",
                        as_external_function_t((void *)unload_and_destroy)) == 0);
    char *err = NULL;
    CHECK(ubpf_load(running_ubpf, CALL_1, sizeof CALL_1, &err) == 0);
    free(err);
    unsigned char mem[8] = {0};
    uint64_t first = 0, second = 0;
    CHECK(ubpf_exec(running_ubpf, mem, sizeof mem, &first) == 0);
    CHECK(ubpf_exec(running_ubpf, mem, sizeof mem, &second) == 0);
    printf("ubpf reentry %llu %llu\n", (unsigned long long)first, (unsigned long long)second);
    ubpf_destroy(running_ubpf);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OBJECTS_DIR\n", argv[0]);
        return 2;
    }
    vm_reentry();
    program_reentry(argv[1]);
    ring_reentry(argv[1]);
    ubpf_reentry();
    return failures ? 1 : 0;
}
