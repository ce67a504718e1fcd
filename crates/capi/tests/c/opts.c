/*
 * bpfx_object_opts.kconfig and .max_entries from C: the values of __kconfig externs and the
 * sizes of maps given when an object is opened, as libbpf's bpf_object_open_opts.kconfig and
 * bpf_map__set_max_entries give them.
 *
 *   opts OBJECTS_DIR
 *
 * OBJECTS_DIR holds sized_config.o (crates/capi/tests/objects). For every engine and JIT
 * option set, results go to stdout, one "config what values..." line each, for the Rust test
 * to compare with the facade; failed checks go to stderr and make the exit status non-zero.
 */
#include "bpfx.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "configs.h"

/* Every program prepared, freed at the end: under valgrind, a dual-mapped code block reused
 * by the next program (written through the arena's other mapping) would still run the
 * translation valgrind made of the freed program's code. */
static bpfx_program *kept[64];
static size_t n_kept;

/* Opens sized_config.o with `opts`, prepares `sized` on `c`, runs it on a 64-byte frame and
 * prints the map's size, the verdict and slot 3 (or the status where a step fails). */
static void run(const struct config *c, const struct file *elf, const char *what,
                const bpfx_object_opts *opts) {
    bpfx_object *obj = NULL;
    bpfx_status st = bpfx_object_open_mem(elf->bytes, elf->len, opts, &obj);
    if (st != BPFX_OK) {
        printf("%s %s open %s\n", c->name, what, bpfx_status_name(st));
        CHECK(obj == NULL);
        return;
    }
    bpfx_map *slots = NULL;
    EXPECT(bpfx_object_map(obj, "slots", &slots), BPFX_OK);
    BPFX_OPTS(bpfx_program_opts, popts, .engine = c->engine, .hardening = c->hardening,
              .code_memory = c->code_memory);
    bpfx_program *prog = NULL;
    st = bpfx_object_program(obj, "sized", &popts, &prog);
    if (st != BPFX_OK) {
        printf("%s %s program %s\n", c->name, what, bpfx_status_name(st));
    } else {
        unsigned char frame[64] = {0};
        bpfx_xdp_result r;
        EXPECT(bpfx_program_run_xdp(prog, frame, sizeof frame, 0, sizeof frame, &r), BPFX_OK);
        uint32_t key = 3;
        uint64_t value = 0;
        st = bpfx_map_lookup_elem(slots, &key, sizeof key, &value, sizeof value);
        printf("%s %s max %u action %llu slot3 %s %llu\n", c->name, what,
               bpfx_map_max_entries(slots), (unsigned long long)r.action, bpfx_status_name(st),
               (unsigned long long)value);
    }
    if (prog != NULL && n_kept < sizeof kept / sizeof kept[0])
        kept[n_kept++] = prog;
    else
        bpfx_program_free(prog);
    bpfx_map_free(slots);
    bpfx_object_free(obj);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: opts OBJECTS_DIR\n");
        return 2;
    }
    (void)ENGINE_NAME; /* check.h's; the configurations here are named by CONFIGS */
    struct file elf = slurp(argv[1], "sized_config.o");
    const bpfx_map_size big = {.name = "slots", .max_entries = 8};
    const bpfx_map_size small = {.name = "slots", .max_entries = 2};
    const bpfx_map_size other = {.name = "nope", .max_entries = 2};
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++) {
        const struct config *c = &CONFIGS[i];
        /* A strong __kconfig extern without a value: the program cannot be prepared. */
        run(c, &elf, "none", NULL);
        BPFX_OPTS(bpfx_object_opts, hz, .kconfig = "# the host's\n\nCONFIG_HZ=250\n");
        run(c, &elf, "hz", &hz);
        BPFX_OPTS(bpfx_object_opts, sized, .kconfig = "CONFIG_HZ=0x3e8", .max_entries = &big,
                  .max_entries_cnt = 1);
        run(c, &elf, "big", &sized);
        BPFX_OPTS(bpfx_object_opts, shrunk, .kconfig = "CONFIG_HZ=100", .max_entries = &small,
                  .max_entries_cnt = 1);
        run(c, &elf, "small", &shrunk);
        /* A map the object lacks, a line that is not NAME=VALUE, a NULL array, a NULL name. */
        BPFX_OPTS(bpfx_object_opts, missing, .max_entries = &other, .max_entries_cnt = 1);
        run(c, &elf, "missing", &missing);
        if (i == 0) {
            CHECK(strstr(bpfx_last_error(), "no map named `nope`") != NULL);
            CHECK(strstr(bpfx_last_error(), "slots") != NULL);
        }
        BPFX_OPTS(bpfx_object_opts, bad, .kconfig = "CONFIG_HZ");
        run(c, &elf, "bad-line", &bad);
        BPFX_OPTS(bpfx_object_opts, null_array, .max_entries_cnt = 1);
        run(c, &elf, "null-array", &null_array);
        const bpfx_map_size unnamed = {.name = NULL, .max_entries = 2};
        BPFX_OPTS(bpfx_object_opts, null_name, .max_entries = &unnamed, .max_entries_cnt = 1);
        run(c, &elf, "null-name", &null_name);
        /* An older, smaller struct (mem_limit only) still opens with the defaults. */
        bpfx_object_opts old = {.sz = offsetof(bpfx_object_opts, kconfig)};
        run(c, &elf, "old-struct", &old);
        /* A size ending inside a field leaves the whole field out (libbpf's OPTS_HAS): the
         * half of `kconfig` inside `sz` is never taken for a pointer. */
        bpfx_object_opts torn = {.sz = offsetof(bpfx_object_opts, kconfig) + 4,
                                 .kconfig = (const char *)(uintptr_t)0x4141414141414141ull};
        run(c, &elf, "torn-struct", &torn);
    }
    for (size_t i = 0; i < n_kept; i++)
        bpfx_program_free(kept[i]);
    free(elf.bytes);
    return failures ? 1 : 0;
}
