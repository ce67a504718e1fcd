/*
 * Maps of maps from C: bpfx_object_opts.inner_maps gives a map of maps declared the legacy way
 * (no inner map in the object) its template, as libbpf's bpf_map__set_inner_map_fd does;
 * bpfx_map_create makes the tenants' tables (libbpf's bpf_map_create) and bpfx_map_set_inner
 * stores them, as an update with an inner map's fd does in the kernel.
 *
 *   inner_map OBJECTS_DIR
 *
 * OBJECTS_DIR holds xdp_legacy_mim.o (crates/runtime/tests/objects): the IPv4 TOS byte's low
 * two bits pick a tenant of the array of maps `tenants`, whose table maps the destination to
 * the verdict (XDP_PASS without a table or an entry). For every engine and JIT option set,
 * results go to stdout, one "config what values..." line each, for the Rust test to compare
 * with the facade; failed checks go to stderr and make the exit status non-zero.
 */
#include "bpfx.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "configs.h"

/* linux/bpf.h's numbers, as a loader includes them. */
#define MAP_TYPE_HASH 1
#define MAP_TYPE_LPM_TRIE 11
#define XDP_DROP 1u
#define XDP_TX 3u

/* An Ethernet + IPv4 frame to 10.0.0.`daddr` with TOS `tos`, 34 bytes. */
static void frame(unsigned char f[34], unsigned char tos, unsigned char daddr) {
    static const unsigned char head[34] = {
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0,
        64,   17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 0};
    memcpy(f, head, sizeof head);
    f[15] = tos;
    f[33] = daddr;
}

/* The verdicts of the five frames the Rust test of the facade runs too. */
static void verdicts(const struct config *c, const char *what, bpfx_program *prog) {
    static const unsigned char frames[5][2] = {{0, 5}, {1, 5}, {1, 6}, {2, 5}, {3, 9}};
    printf("%s %s", c->name, what);
    for (size_t i = 0; i < 5; i++) {
        unsigned char f[34];
        frame(f, frames[i][0], frames[i][1]);
        bpfx_xdp_result r;
        bpfx_status st = bpfx_program_run_xdp(prog, f, sizeof f, 0, sizeof f, &r);
        if (st == BPFX_OK)
            printf(" %llu", (unsigned long long)r.action);
        else
            printf(" %s", bpfx_status_name(st));
    }
    printf("\n");
}

/* A tenant table holding one destination's verdict. */
static bpfx_map *table(const char *name, unsigned char daddr, uint32_t verdict) {
    bpfx_map *t = NULL;
    EXPECT(bpfx_map_create(MAP_TYPE_HASH, name, 4, 4, 16, 0, &t), BPFX_OK);
    const unsigned char key[4] = {10, 0, 0, daddr};
    EXPECT(bpfx_map_update_elem(t, key, sizeof key, &verdict, sizeof verdict, 0), BPFX_OK);
    return t;
}

/* Opens the object with `opts` and prints the status of preparing its program. */
static void open_only(const struct config *c, const struct file *elf, const char *what,
                      const bpfx_object_opts *opts) {
    bpfx_object *obj = NULL;
    bpfx_status st = bpfx_object_open_mem(elf->bytes, elf->len, opts, &obj);
    if (st == BPFX_OK) {
        BPFX_OPTS(bpfx_program_opts, popts, .engine = c->engine, .hardening = c->hardening,
                  .code_memory = c->code_memory);
        bpfx_program *prog = NULL;
        st = bpfx_object_program(obj, "xdp_legacy_mim", &popts, &prog);
        CHECK((st == BPFX_OK) == (prog != NULL));
        bpfx_program_free(prog);
    } else {
        CHECK(obj == NULL);
    }
    printf("%s %s %s\n", c->name, what, bpfx_status_name(st));
    bpfx_object_free(obj);
}

static void one_config(const struct config *c, const struct file *elf, int first) {
    /* As declared: no template, the program cannot be prepared. */
    open_only(c, elf, "declared", NULL);
    const bpfx_inner_map hash = {.outer = "tenants", .map_type = MAP_TYPE_HASH, .key_size = 4,
                                 .value_size = 4, .max_entries = 16};
    BPFX_OPTS(bpfx_object_opts, opts, .inner_maps = &hash, .inner_maps_cnt = 1);
    bpfx_object *obj = NULL;
    EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, &opts, &obj), BPFX_OK);
    BPFX_OPTS(bpfx_program_opts, popts, .engine = c->engine, .hardening = c->hardening,
              .code_memory = c->code_memory);
    bpfx_program *prog = NULL;
    EXPECT(bpfx_object_program(obj, "xdp_legacy_mim", &popts, &prog), BPFX_OK);
    bpfx_map *tenants = NULL;
    EXPECT(bpfx_object_map(obj, "tenants", &tenants), BPFX_OK);
    if (prog == NULL || tenants == NULL) {
        bpfx_program_free(prog);
        bpfx_map_free(tenants);
        bpfx_object_free(obj);
        return;
    }
    verdicts(c, "empty", prog);
    /* Tenant 1 drops 10.0.0.5, tenant 3 bounces 10.0.0.9. The handles are freed at once: the
     * map of maps keeps the tables. */
    bpfx_map *t1 = table("t1", 5, XDP_DROP);
    bpfx_map *t3 = table("t3", 9, XDP_TX);
    uint32_t k = 1;
    EXPECT(bpfx_map_set_inner(tenants, &k, sizeof k, t1, 0), BPFX_OK);
    k = 3;
    EXPECT(bpfx_map_set_inner(tenants, &k, sizeof k, t3, 0), BPFX_OK);
    /* Create only, where a table is: the kernel's EEXIST. */
    bpfx_status st = bpfx_map_set_inner(tenants, &k, sizeof k, t1, 1);
    printf("%s create-only-taken %s\n", c->name, bpfx_status_name(st));
    /* Tables of another shape, an index past the end, a map that is no map of maps, a NULL
     * table: refused, nothing changed. */
    bpfx_map *wide = NULL;
    EXPECT(bpfx_map_create(MAP_TYPE_HASH, "wide", 4, 8, 16, 0, &wide), BPFX_OK);
    k = 2;
    st = bpfx_map_set_inner(tenants, &k, sizeof k, wide, 0);
    printf("%s other-shape %s\n", c->name, bpfx_status_name(st));
    if (first)
        CHECK(strstr(bpfx_last_error(), "tenants") != NULL);
    k = 4;
    printf("%s past-end %s\n", c->name,
           bpfx_status_name(bpfx_map_set_inner(tenants, &k, sizeof k, t1, 0)));
    const unsigned char key[4] = {10, 0, 0, 5};
    printf("%s not-of-maps %s\n", c->name,
           bpfx_status_name(bpfx_map_set_inner(t3, key, sizeof key, t1, 0)));
    k = 2;
    printf("%s null-inner %s\n", c->name,
           bpfx_status_name(bpfx_map_set_inner(tenants, &k, sizeof k, NULL, 0)));
    bpfx_map_free(wide);
    bpfx_map_free(t1);
    bpfx_map_free(t3);
    verdicts(c, "tables", prog);
    /* Tenant 1's table removed: its frames pass again. */
    k = 1;
    EXPECT(bpfx_map_delete_elem(tenants, &k, sizeof k), BPFX_OK);
    verdicts(c, "deleted", prog);
    bpfx_map_free(tenants);
    bpfx_program_free(prog);
    bpfx_object_free(obj);

    /* An LPM trie template needs BPF_F_NO_PREALLOC, as the kernel's does. */
    const bpfx_inner_map lpm = {.outer = "tenants", .map_type = MAP_TYPE_LPM_TRIE,
                                .key_size = 8, .value_size = 4, .max_entries = 16};
    BPFX_OPTS(bpfx_object_opts, lpm_opts, .inner_maps = &lpm, .inner_maps_cnt = 1);
    open_only(c, elf, "lpm-prealloc", &lpm_opts);
    /* A name that is no map of maps, a type bpfx lacks, a NULL name, a NULL array. */
    const bpfx_inner_map other = {.outer = "nope", .map_type = MAP_TYPE_HASH, .key_size = 4,
                                  .value_size = 4, .max_entries = 16};
    BPFX_OPTS(bpfx_object_opts, missing, .inner_maps = &other, .inner_maps_cnt = 1);
    open_only(c, elf, "missing", &missing);
    if (first)
        CHECK(strstr(bpfx_last_error(), "no map of maps named `nope` (its maps of maps: "
                                        "tenants)") != NULL);
    const bpfx_inner_map unknown = {.outer = "tenants", .map_type = 9999, .key_size = 4,
                                    .value_size = 4, .max_entries = 16};
    BPFX_OPTS(bpfx_object_opts, bad_type, .inner_maps = &unknown, .inner_maps_cnt = 1);
    open_only(c, elf, "bad-type", &bad_type);
    const bpfx_inner_map unnamed = {.outer = NULL, .map_type = MAP_TYPE_HASH, .key_size = 4,
                                    .value_size = 4, .max_entries = 16};
    BPFX_OPTS(bpfx_object_opts, null_name, .inner_maps = &unnamed, .inner_maps_cnt = 1);
    open_only(c, elf, "null-name", &null_name);
    BPFX_OPTS(bpfx_object_opts, null_array, .inner_maps_cnt = 1);
    open_only(c, elf, "null-array", &null_array);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: inner_map OBJECTS_DIR\n");
        return 2;
    }
    (void)ENGINE_NAME; /* check.h's; the configurations here are named by CONFIGS */
    struct file elf = slurp(argv[1], "xdp_legacy_mim.o");
    /* Maps of no object, refused as the kernel refuses them. */
    bpfx_map *m = NULL;
    printf("create key-size-0 %s\n",
           bpfx_status_name(bpfx_map_create(MAP_TYPE_HASH, "k0", 0, 4, 16, 0, &m)));
    CHECK(m == NULL);
    printf("create bad-type %s\n",
           bpfx_status_name(bpfx_map_create(9999, NULL, 4, 4, 16, 0, &m)));
    CHECK(m == NULL);
    EXPECT(bpfx_map_create(MAP_TYPE_HASH, NULL, 4, 4, 16, 0, NULL), BPFX_ERR_NULL);
    EXPECT(bpfx_map_create(MAP_TYPE_HASH, NULL, 4, 4, 16, 0, &m), BPFX_OK);
    CHECK(strcmp(bpfx_map_name(m), "") == 0);
    CHECK(bpfx_map_type(m) == MAP_TYPE_HASH && bpfx_map_max_entries(m) == 16);
    bpfx_map_free(m);
    for (size_t i = 0; i < N_CONFIGS; i++)
        one_config(&CONFIGS[i], &elf, i == 0);
    free(elf.bytes);
    return failures ? 1 : 0;
}
