/*
 * The object API of bpfx.h from C: one object whose three programs share their maps (a hash
 * map, a ring buffer, a program array), map handles, key iteration, the ring buffer consumer,
 * tail calls set up from C, options through sized structs, and handles freed in any order.
 *
 *   object OBJECTS_DIR EXAMPLES_DIR RUNTIME_OBJECTS_DIR
 *
 * OBJECTS_DIR holds shared_maps.o, struct_ctx.o and host_helper.o (crates/capi/tests/objects), EXAMPLES_DIR the repository's
 * examples (perf_sample.o, percpu_count.o, globals.o, tcp-syn.bin), RUNTIME_OBJECTS_DIR the runtime's
 * test objects (devmap_tx.o, xdp_trunc.o). For every engine and JIT option
 * set, results go to stdout, one "config what values..." line each, for the Rust test to
 * compare with the facade; failed checks go to stderr and make the exit status non-zero.
 */
#include "bpfx.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "configs.h"

struct event {
    uint32_t len;
    uint32_t first;
};

/* What the ring buffer callback saw. */
struct seen {
    const char *config;
    int calls;
    int fail_at; /* the call (from 1) that returns -5; 0: none */
};

static int on_event(void *ctx, const void *data, size_t size) {
    struct seen *s = ctx;
    struct event ev;
    s->calls++;
    CHECK(size == sizeof ev);
    memcpy(&ev, data, sizeof ev);
    printf("%s event len %u first %u\n", s->config, ev.len, ev.first);
    return s->calls == s->fail_at ? -5 : 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t run(bpfx_program *p, const char *input, size_t len) {
    unsigned char buf[16];
    uint64_t r = 0;
    memcpy(buf, input, len);
    EXPECT(bpfx_program_run(p, buf, len, &r), BPFX_OK);
    return r;
}

/* Walks `counts` with bpfx_map_next_key, checking the kernel's semantics on the way, and
 * prints every key with its value in key order. */
static void walk(const char *config, const bpfx_map *counts) {
    uint32_t keys[32], key, next;
    size_t n = 0;
    bpfx_status st = bpfx_map_next_key(counts, NULL, 0, &key, sizeof key);
    while (st == BPFX_OK && n < 32) {
        keys[n++] = key;
        st = bpfx_map_next_key(counts, &key, sizeof key, &next, sizeof next);
        key = next;
    }
    /* The walk ends with BPFX_ERR_NOT_FOUND (-ENOENT), after every key once. */
    CHECK(st == BPFX_ERR_NOT_FOUND);
    qsort(keys, n, sizeof keys[0], cmp_u32);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        CHECK(i == 0 || keys[i] != keys[i - 1]);
        EXPECT(bpfx_map_lookup_elem(counts, &keys[i], sizeof keys[i], &v, sizeof v), BPFX_OK);
        printf("%s key %u value %llu\n", config, keys[i], (unsigned long long)v);
    }
    /* A key not in the map starts the walk over, as in the kernel. */
    uint32_t absent = 12345, first_again = 0;
    EXPECT(bpfx_map_next_key(counts, &absent, sizeof absent, &first_again, sizeof first_again),
           BPFX_OK);
    uint32_t first = 0;
    EXPECT(bpfx_map_next_key(counts, NULL, 0, &first, sizeof first), BPFX_OK);
    CHECK(first == first_again);
    /* Buffers of the wrong size are refused. */
    uint64_t wide;
    EXPECT(bpfx_map_next_key(counts, NULL, 0, &wide, sizeof wide), BPFX_ERR_ARGUMENT);
}

static void one_config(const struct config *c, const struct file *elf) {
    bpfx_object *obj = NULL;
    BPFX_OPTS(bpfx_object_opts, oopts, .mem_limit = 0);
    EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, &oopts, &obj), BPFX_OK);
    if (!obj)
        return;
    BPFX_OPTS(bpfx_program_opts, popts, .engine = c->engine, .hardening = c->hardening,
              .code_memory = c->code_memory);
    bpfx_program *count = NULL, *stage2 = NULL, *total = NULL;
    EXPECT(bpfx_object_program(obj, "count", &popts, &count), BPFX_OK);
    EXPECT(bpfx_object_program(obj, "stage2", &popts, &stage2), BPFX_OK);
    EXPECT(bpfx_object_program(obj, "total", &popts, &total), BPFX_OK);
    bpfx_map *counts = NULL, *events = NULL, *jumps = NULL;
    EXPECT(bpfx_object_map(obj, "counts", &counts), BPFX_OK);
    EXPECT(bpfx_object_map(obj, "events", &events), BPFX_OK);
    EXPECT(bpfx_object_map(obj, "jumps", &jumps), BPFX_OK);
    /* The object first: every handle taken from it lives on (valgrind sees any misuse). */
    bpfx_object_free(obj);
    if (!count || !stage2 || !total || !counts || !events || !jumps)
        exit(1);
    CHECK(strcmp(bpfx_program_name(stage2), "stage2") == 0);

    /* No program in slot 0: the tail call falls through. */
    printf("%s count %llu\n", c->name, (unsigned long long)run(count, "abc", 3));
    EXPECT(bpfx_prog_array_set(jumps, 0, stage2), BPFX_OK);
    printf("%s count %llu\n", c->name, (unsigned long long)run(count, "\x10zzzz", 5));
    printf("%s count %llu\n", c->name, (unsigned long long)run(count, "abc", 3));
    /* The host writes into the map the programs share; `total` reads it. */
    uint32_t k9 = 9;
    uint64_t hundred = 100, got = 0;
    EXPECT(bpfx_map_update_elem(counts, &k9, sizeof k9, &hundred, sizeof hundred, 1), BPFX_OK);
    EXPECT(bpfx_map_update_elem(counts, &k9, sizeof k9, &hundred, sizeof hundred, 1),
           BPFX_ERR_MAP); /* BPF_NOEXIST on an existing key: -EEXIST */
    printf("%s total %llu\n", c->name, (unsigned long long)run(total, "", 0));
    walk(c->name, counts);
    EXPECT(bpfx_map_delete_elem(counts, &k9, sizeof k9), BPFX_OK);
    EXPECT(bpfx_map_lookup_elem(counts, &k9, sizeof k9, &got, sizeof got), BPFX_ERR_NOT_FOUND);
    EXPECT(bpfx_map_delete_elem(counts, &k9, sizeof k9), BPFX_ERR_NOT_FOUND);

    /* Every record, oldest first; then none. */
    struct seen s = {c->name, 0, 0};
    int n = bpfx_ringbuf_consume(events, on_event, &s);
    printf("%s consumed %d\n", c->name, n);
    CHECK(bpfx_ringbuf_consume(events, on_event, &s) == 0);

    /* Slot emptied: the tail call falls through again. A negative callback stops the
     * consumer after its record; the next call goes on from there. */
    EXPECT(bpfx_prog_array_clear(jumps, 0), BPFX_OK);
    printf("%s count %llu\n", c->name, (unsigned long long)run(count, "q", 1));
    printf("%s count %llu\n", c->name, (unsigned long long)run(count, "rs", 2));
    struct seen stop = {c->name, 0, 1};
    CHECK(bpfx_ringbuf_consume(events, on_event, &stop) == -5);
    printf("%s consumed %d\n", c->name, bpfx_ringbuf_consume(events, on_event, &s));

    /* A budget of a few instructions ends `total` with a trap. */
    BPFX_OPTS(bpfx_program_opts, tight, .engine = c->engine, .hardening = c->hardening,
              .code_memory = c->code_memory, .budget = 4);
    bpfx_object *again = NULL;
    bpfx_program *short_total = NULL;
    EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, NULL, &again), BPFX_OK);
    EXPECT(bpfx_object_program(again, "total", &tight, &short_total), BPFX_OK);
    uint64_t r = 0;
    bpfx_trap_info trap;
    EXPECT(bpfx_program_trap(short_total, &trap), BPFX_ERR_STATE);
    EXPECT(bpfx_program_run(short_total, NULL, 0, &r), BPFX_ERR_TRAP);
    EXPECT(bpfx_program_trap(short_total, &trap), BPFX_OK);
    printf("%s budget trap %s\n", c->name, bpfx_trap_kind_name(trap.kind));
    CHECK(strstr(trap.message, "total") != NULL);
    /* A program of another object cannot go into this object's program array. */
    EXPECT(bpfx_prog_array_set(jumps, 1, short_total), BPFX_ERR_MAP);

    /* Strict mode: what the kernel's contract says of each program. */
    BPFX_OPTS(bpfx_program_opts, strict, .engine = c->engine, .mode = BPFX_MODE_STRICT,
              .hardening = c->hardening, .code_memory = c->code_memory);
    for (size_t i = 0; bpfx_object_program_name(again, i); i++) {
        const char *name = bpfx_object_program_name(again, i);
        bpfx_program *p = NULL;
        bpfx_status st = bpfx_object_program(again, name, &strict, &p);
        CHECK((st == BPFX_OK) == (p != NULL));
        CHECK(st == BPFX_OK || st == BPFX_ERR_VERIFY);
        printf("%s strict %s %s\n", c->name, name, st == BPFX_OK ? "ok" : "rejected");
        bpfx_program_free(p);
    }

    bpfx_program_free(short_total);
    bpfx_object_free(again);
    /* Programs before maps, and the other way round: either order is fine. */
    bpfx_program_free(count);
    bpfx_map_free(counts);
    bpfx_map_free(events);
    bpfx_program_free(stage2);
    bpfx_map_free(jumps);
    bpfx_program_free(total);
}

/* Options: NULL, older and newer structs, what is refused. */
static void options(const struct file *elf) {
    bpfx_object *obj = NULL;
    EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, NULL, &obj), BPFX_OK);
    bpfx_program *p = (bpfx_program *)&p; /* overwritten with NULL on failure */

    /* sz 0 (forgotten): refused. */
    bpfx_program_opts zero = {0};
    EXPECT(bpfx_object_program(obj, "stage2", &zero, &p), BPFX_ERR_ARGUMENT);
    CHECK(p == NULL);

    /* An older struct that ends before `budget`: accepted, the rest default. */
    struct old_opts {
        size_t sz;
        uint32_t engine;
        uint32_t mode;
    } old = {sizeof old, BPFX_ENGINE_JIT, BPFX_MODE_CHECKED};
    EXPECT(bpfx_object_program(obj, "stage2", (const bpfx_program_opts *)(const void *)&old, &p),
           BPFX_OK);
    uint64_t r = 0;
    EXPECT(bpfx_program_run(p, NULL, 0, &r), BPFX_OK);
    CHECK(r == 7);
    bpfx_program_free(p);

    /* A newer struct: zero trailing bytes accepted, any other refused. */
    struct new_opts {
        bpfx_program_opts known;
        uint64_t future;
    } newer = {{.sz = sizeof newer, .engine = BPFX_ENGINE_JIT}, 0};
    EXPECT(bpfx_object_program(obj, "stage2", &newer.known, &p), BPFX_OK);
    bpfx_program_free(p);
    newer.future = 1;
    EXPECT(bpfx_object_program(obj, "stage2", &newer.known, &p), BPFX_ERR_ARGUMENT);
    CHECK(p == NULL);
    char where[32];
    snprintf(where, sizeof where, "byte %zu", sizeof(bpfx_program_opts));
    CHECK(strstr(bpfx_last_error(), where) != NULL);

    /* Impossible combinations and unknown codes. */
    BPFX_OPTS(bpfx_program_opts, interp_hardened, .engine = BPFX_ENGINE_INTERPRETER,
              .hardening = BPFX_HARDEN_BLINDING);
    EXPECT(bpfx_object_program(obj, "stage2", &interp_hardened, &p), BPFX_ERR_ARGUMENT);
    BPFX_OPTS(bpfx_program_opts, interp_dual, .code_memory = BPFX_CODE_MEMORY_DUAL_MAPPED);
    EXPECT(bpfx_object_program(obj, "stage2", &interp_dual, &p), BPFX_ERR_ARGUMENT);
    BPFX_OPTS(bpfx_program_opts, bad_engine, .engine = 7);
    EXPECT(bpfx_object_program(obj, "stage2", &bad_engine, &p), BPFX_ERR_ARGUMENT);
    BPFX_OPTS(bpfx_program_opts, bad_mode, .mode = 9);
    EXPECT(bpfx_object_program(obj, "stage2", &bad_mode, &p), BPFX_ERR_ARGUMENT);
    BPFX_OPTS(bpfx_program_opts, bad_flags, .engine = BPFX_ENGINE_JIT, .hardening = 0x10);
    EXPECT(bpfx_object_program(obj, "stage2", &bad_flags, &p), BPFX_ERR_ARGUMENT);
    BPFX_OPTS(bpfx_program_opts, bad_memory, .engine = BPFX_ENGINE_JIT, .code_memory = 5);
    EXPECT(bpfx_object_program(obj, "stage2", &bad_memory, &p), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_object_program(obj, "nothing", NULL, &p), BPFX_ERR_NO_PROGRAM);
    EXPECT(bpfx_object_program(obj, "stage2", NULL, NULL), BPFX_ERR_NULL);
    EXPECT(bpfx_object_program(NULL, "stage2", NULL, &p), BPFX_ERR_NULL);
    EXPECT(bpfx_object_program(obj, NULL, NULL, &p), BPFX_ERR_NULL);
    CHECK(p == NULL);

    /* Object options: a newer struct with a non-zero unknown field, then a memory limit too
     * small for the ring buffer `count` names. */
    struct {
        bpfx_object_opts known;
        uint32_t future;
    } onew;
    memset(&onew, 0, sizeof onew); /* padding included: every byte past `known` is read */
    onew.known.sz = sizeof onew;
    onew.future = 3;
    bpfx_object *o2 = (bpfx_object *)&o2;
    EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, &onew.known, &o2), BPFX_ERR_ARGUMENT);
    CHECK(o2 == NULL);
    BPFX_OPTS(bpfx_object_opts, tiny, .mem_limit = 1024);
    EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, &tiny, &o2), BPFX_OK);
    EXPECT(bpfx_object_program(o2, "count", NULL, &p), BPFX_ERR_MEMORY);
    bpfx_map *m = (bpfx_map *)&m;
    EXPECT(bpfx_object_map(o2, "events", &m), BPFX_ERR_MEMORY);
    CHECK(m == NULL);
    bpfx_object_free(o2);

    /* Opening: bad input, NULLs, a file. */
    EXPECT(bpfx_object_open_mem("not elf", 7, NULL, &o2), BPFX_ERR_ELF);
    EXPECT(bpfx_object_open_mem(NULL, 0, NULL, &o2), BPFX_ERR_NULL);
    EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, NULL, NULL), BPFX_ERR_NULL);
    EXPECT(bpfx_object_open_file("/nonexistent/x.o", NULL, &o2), BPFX_ERR_ELF);
    EXPECT(bpfx_object_open_file(NULL, NULL, &o2), BPFX_ERR_NULL);
    CHECK(o2 == NULL);

    /* Names and accessors. */
    CHECK(strcmp(bpfx_object_program_name(obj, 0), "count") == 0);
    CHECK(strcmp(bpfx_object_program_name(obj, 2), "total") == 0);
    CHECK(bpfx_object_program_name(obj, 3) == NULL);
    CHECK(bpfx_object_program_name(NULL, 0) == NULL);
    for (size_t i = 0; bpfx_object_map_name(obj, i); i++) {
        const char *name = bpfx_object_map_name(obj, i);
        EXPECT(bpfx_object_map(obj, name, &m), BPFX_OK);
        CHECK(strcmp(bpfx_map_name(m), name) == 0);
        printf("map %s type %u key %u value %u max %u buf %zu\n", name, bpfx_map_type(m),
               bpfx_map_key_size(m), bpfx_map_value_size(m), bpfx_map_max_entries(m),
               bpfx_map_value_buf_size(m));
        bpfx_map_free(m);
    }
    EXPECT(bpfx_object_map(obj, "nothing", &m), BPFX_ERR_NO_MAP);
    CHECK(bpfx_map_type(NULL) == 0 && bpfx_map_key_size(NULL) == 0);
    CHECK(bpfx_map_value_buf_size(NULL) == 0 && strcmp(bpfx_map_name(NULL), "") == 0);
    CHECK(strcmp(bpfx_program_name(NULL), "") == 0);

    /* Maps used the wrong way. */
    bpfx_map *counts = NULL, *events = NULL;
    EXPECT(bpfx_object_map(obj, "counts", &counts), BPFX_OK);
    EXPECT(bpfx_object_map(obj, "events", &events), BPFX_OK);
    CHECK(bpfx_ringbuf_consume(counts, on_event, NULL) == -22);
    CHECK(bpfx_ringbuf_consume(NULL, on_event, NULL) == -22);
    CHECK(bpfx_ringbuf_consume(events, NULL, NULL) == -22);
    uint32_t key = 0;
    EXPECT(bpfx_map_next_key(events, NULL, 0, &key, sizeof key), BPFX_ERR_MAP);
    /* `stage2` ran once above, so `counts` holds key 1000 alone. */
    EXPECT(bpfx_map_next_key(counts, NULL, 0, &key, sizeof key), BPFX_OK);
    CHECK(key == 1000);
    EXPECT(bpfx_map_next_key(counts, &key, sizeof key, &key, sizeof key), BPFX_ERR_ARGUMENT);
    uint32_t after = 0;
    EXPECT(bpfx_map_next_key(counts, &key, sizeof key, &after, sizeof after), BPFX_ERR_NOT_FOUND);
    EXPECT(bpfx_map_next_key(counts, &key, 2, &after, sizeof after), BPFX_ERR_MAP);
    EXPECT(bpfx_map_next_key(NULL, NULL, 0, &key, sizeof key), BPFX_ERR_NULL);
    EXPECT(bpfx_map_next_key(counts, NULL, 0, NULL, 4), BPFX_ERR_NULL);
    uint64_t v = 0;
    EXPECT(bpfx_map_lookup_elem(counts, &key, sizeof key, &v, 4), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_map_lookup_elem(counts, &key, 2, &v, sizeof v), BPFX_ERR_MAP);
    EXPECT(bpfx_map_update_elem(counts, &key, sizeof key, &v, sizeof v, 9), BPFX_ERR_ARGUMENT);
    EXPECT(bpfx_map_lookup_elem(counts, &v, sizeof key, &v, sizeof v), BPFX_ERR_ARGUMENT);
    bpfx_perf_record rec;
    EXPECT(bpfx_map_perf_read(counts, &rec, NULL, 0), BPFX_ERR_MAP);
    EXPECT(bpfx_map_perf_read(counts, NULL, NULL, 0), BPFX_ERR_NULL);
    EXPECT(bpfx_object_program(obj, "stage2", NULL, &p), BPFX_OK);
    EXPECT(bpfx_prog_array_set(counts, 0, p), BPFX_ERR_MAP);
    EXPECT(bpfx_prog_array_clear(counts, 0), BPFX_ERR_MAP);
    bpfx_map *jumps = NULL;
    EXPECT(bpfx_object_map(obj, "jumps", &jumps), BPFX_OK);
    EXPECT(bpfx_prog_array_set(jumps, 4, p), BPFX_ERR_MAP);
    EXPECT(bpfx_prog_array_set(jumps, 0, NULL), BPFX_ERR_NULL);
    /* A program freed while in a program array stays there for tail calls. */
    EXPECT(bpfx_prog_array_set(jumps, 0, p), BPFX_OK);
    bpfx_program_free(p);
    bpfx_program *count = NULL;
    EXPECT(bpfx_object_program(obj, "count", NULL, &count), BPFX_OK);
    uint64_t r2 = 0;
    char in[1] = {'x'};
    EXPECT(bpfx_program_run(count, in, 1, &r2), BPFX_OK);
    CHECK(r2 == 7);
    EXPECT(bpfx_program_run(count, in, 1, NULL), BPFX_ERR_NULL);
    EXPECT(bpfx_program_run(NULL, in, 1, &r2), BPFX_ERR_NULL);
    bpfx_program_free(count);
    bpfx_map_free(jumps);
    bpfx_map_free(counts);
    bpfx_map_free(events);
    bpfx_object_free(obj);
    bpfx_object_free(NULL);
    bpfx_program_free(NULL);
    bpfx_map_free(NULL);
}

/* The examples' perf event array and per-CPU array through map handles. */
static void examples_by_handle(const char *examples) {
    struct file perf = slurp(examples, "perf_sample.o");
    struct file percpu = slurp(examples, "percpu_count.o");
    struct file packet = slurp(examples, "tcp-syn.bin");
    unsigned char frame[256];
    CHECK(packet.len <= sizeof frame);
    for (uint32_t engine = 0; engine < 2; engine++) {
        const char *e = ENGINE_NAME[engine];
        BPFX_OPTS(bpfx_program_opts, opts, .engine = engine);
        bpfx_object *obj = NULL;
        bpfx_program *prog = NULL;
        bpfx_map *events = NULL;
        uint64_t action = 0;
        EXPECT(bpfx_object_open_mem(perf.bytes, perf.len, NULL, &obj), BPFX_OK);
        EXPECT(bpfx_object_program(obj, "xdp_perf_sample", &opts, &prog), BPFX_OK);
        EXPECT(bpfx_object_map(obj, "events", &events), BPFX_OK);
        bpfx_object_free(obj);
        for (int i = 0; i < 2; i++) {
            memcpy(frame, packet.bytes, packet.len);
            EXPECT(bpfx_program_run(prog, frame, packet.len, &action), BPFX_OK);
            printf("%s perf action %llu\n", e, (unsigned long long)action);
        }
        bpfx_perf_record rec;
        unsigned char data[64];
        while (bpfx_map_perf_read(events, &rec, data, sizeof data) == BPFX_OK) {
            uint32_t sample_cpu;
            CHECK(rec.data_len <= sizeof data);
            /* The CPU the program ran on (which the scheduler chose): the buffer it went to. */
            memcpy(&sample_cpu, data + 16, 4);
            CHECK(rec.lost != 0 || rec.cpu == sample_cpu);
            printf("%s perf sample len %zu lost %llu frame-len %u\n", e, rec.data_len,
                   (unsigned long long)rec.lost, (unsigned)(data[14] | data[15] << 8));
        }
        EXPECT(bpfx_map_perf_read(events, &rec, data, sizeof data), BPFX_ERR_NOT_FOUND);
        uint32_t key;
        EXPECT(bpfx_map_next_key(events, NULL, 0, &key, sizeof key), BPFX_ERR_MAP);
        bpfx_program_free(prog);
        bpfx_map_free(events);

        bpfx_map *counts = NULL;
        prog = NULL;
        EXPECT(bpfx_object_open_mem(percpu.bytes, percpu.len, NULL, &obj), BPFX_OK);
        EXPECT(bpfx_object_program(obj, "xdp_percpu_count", &opts, &prog), BPFX_OK);
        EXPECT(bpfx_object_map(obj, "counts", &counts), BPFX_OK);
        for (int i = 0; i < 3; i++) {
            memcpy(frame, packet.bytes, packet.len);
            EXPECT(bpfx_program_run(prog, frame, packet.len, &action), BPFX_OK);
        }
        size_t buf_size = bpfx_map_value_buf_size(counts);
        unsigned char *buf = calloc(1, buf_size);
        /* An array's keys: 0 .. max_entries - 1, then BPFX_ERR_NOT_FOUND. */
        bpfx_status st = bpfx_map_next_key(counts, NULL, 0, &key, sizeof key);
        while (st == BPFX_OK) {
            uint64_t packets = 0, bytes = 0, v;
            EXPECT(bpfx_map_lookup_elem(counts, &key, sizeof key, buf, buf_size), BPFX_OK);
            /* libbpf's layout: each CPU's 16-byte value, rounded up to 8 bytes. */
            for (size_t off = 0; off + 16 <= buf_size; off += 16) {
                memcpy(&v, buf + off, 8);
                packets += v;
                memcpy(&v, buf + off + 8, 8);
                bytes += v;
            }
            printf("%s percpu key %u packets %llu bytes %llu\n", e, key,
                   (unsigned long long)packets, (unsigned long long)bytes);
            uint32_t next;
            st = bpfx_map_next_key(counts, &key, sizeof key, &next, sizeof next);
            key = next;
        }
        CHECK(st == BPFX_ERR_NOT_FOUND);
        printf("%s percpu value %u buf %zu\n", e, bpfx_map_value_size(counts), buf_size);
        free(buf);
        bpfx_map_free(counts);
        bpfx_program_free(prog);
        bpfx_object_free(obj);
    }
    free(perf.bytes);
    free(percpu.bytes);
    free(packet.bytes);
}

/* Contexts and input sizes through bpfx_program_opts. */
static void contexts(const char *objects, const struct file *shared) {
    struct file elf = slurp(objects, "struct_ctx.o");
    for (uint32_t engine = 0; engine < 2; engine++) {
        const char *e = ENGINE_NAME[engine];
        bpfx_object *obj = NULL;
        bpfx_program *p = NULL;
        EXPECT(bpfx_object_open_mem(elf.bytes, elf.len, NULL, &obj), BPFX_OK);
        BPFX_OPTS(bpfx_program_opts, opts, .engine = engine,
                  .context = BPFX_CONTEXT_STRUCT_PACKET, .ctx_size = 24, .data_off = 8,
                  .data_end_off = 16);
        EXPECT(bpfx_object_program(obj, "read_ctx", &opts, &p), BPFX_OK);
        struct {
            uint32_t x, y;
            uint64_t data, data_end;
        } ctx = {3, 0, 0, 0};
        unsigned char packet[3] = {10, 20, 30};
        uint64_t r = 0;
        EXPECT(bpfx_program_run_ctx(p, &ctx, sizeof ctx, packet, sizeof packet, &r), BPFX_OK);
        printf("%s ctx %llu\n", e, (unsigned long long)r);
        EXPECT(bpfx_program_run_ctx(p, &ctx, sizeof ctx, packet, 1, &r), BPFX_OK);
        printf("%s ctx %llu\n", e, (unsigned long long)r);
        EXPECT(bpfx_program_run(p, packet, sizeof packet, &r), BPFX_ERR_CONTEXT);
        EXPECT(bpfx_program_run_ctx(p, &ctx, sizeof ctx, packet, sizeof packet, NULL),
               BPFX_ERR_NULL);
        EXPECT(bpfx_program_run_ctx(p, packet, sizeof packet, packet, 1, &r), BPFX_ERR_ARGUMENT);
        bpfx_program_free(p);
        /* Layouts the runtime refuses, and sizes past 16 bits. */
        p = (bpfx_program *)&p;
        opts.data_off = 4;
        EXPECT(bpfx_object_program(obj, "read_ctx", &opts, &p), BPFX_ERR_ARGUMENT);
        opts.data_off = 8;
        opts.ctx_size = 70000;
        EXPECT(bpfx_object_program(obj, "read_ctx", &opts, &p), BPFX_ERR_ARGUMENT);
        opts.ctx_size = 24;
        opts.context = 99;
        EXPECT(bpfx_object_program(obj, "read_ctx", &opts, &p), BPFX_ERR_ARGUMENT);
        CHECK(p == NULL);
        bpfx_object_free(obj);

        /* An input size proven at verification: shorter inputs are refused. */
        EXPECT(bpfx_object_open_mem(shared->bytes, shared->len, NULL, &obj), BPFX_OK);
        BPFX_OPTS(bpfx_program_opts, sized, .engine = engine, .input_size = 4);
        EXPECT(bpfx_object_program(obj, "count", &sized, &p), BPFX_OK);
        unsigned char four[4] = {1, 2, 3, 4};
        EXPECT(bpfx_program_run(p, four, 1, &r), BPFX_ERR_CONTEXT);
        EXPECT(bpfx_program_run(p, four, 4, &r), BPFX_OK);
        printf("%s sized %llu\n", e, (unsigned long long)r);
        bpfx_program_free(p);
        bpfx_object_free(obj);
    }
    free(elf.bytes);
}

/* XDP programs of objects: redirects through a device map the host fills, and a frame the
 * program truncates in a packet buffer. */
static void xdp_programs(const char *dir) {
    struct file devmap = slurp(dir, "devmap_tx.o");
    struct file trunc = slurp(dir, "xdp_trunc.o");
    for (uint32_t engine = 0; engine < 2; engine++) {
        const char *e = ENGINE_NAME[engine];
        BPFX_OPTS(bpfx_program_opts, opts, .engine = engine);
        bpfx_object *obj = NULL;
        bpfx_program *p = NULL;
        bpfx_map *ports = NULL;
        EXPECT(bpfx_object_open_mem(devmap.bytes, devmap.len, NULL, &obj), BPFX_OK);
        EXPECT(bpfx_object_program(obj, "forward", &opts, &p), BPFX_OK);
        EXPECT(bpfx_object_map(obj, "tx_ports", &ports), BPFX_OK);
        bpfx_object_free(obj);
        uint32_t port = 3, ifindex = 9;
        EXPECT(bpfx_map_update_elem(ports, &port, 4, &ifindex, 4, 0), BPFX_OK);
        for (unsigned char last = 2; last <= 3; last++) {
            unsigned char frame[64] = {0};
            frame[5] = last;
            uint64_t action = 0;
            bpfx_redirect r;
            EXPECT(bpfx_program_run(p, frame, sizeof frame, &action), BPFX_OK);
            EXPECT(bpfx_program_last_redirect(p, &r), BPFX_OK);
            printf("%s forward %u action %llu redirect %u target %u map %s\n", e, last,
                   (unsigned long long)action, r.kind, r.target, r.map ? r.map : "-");
        }
        EXPECT(bpfx_program_last_redirect(p, NULL), BPFX_ERR_NULL);
        bpfx_map_free(ports);
        bpfx_program_free(p);

        EXPECT(bpfx_object_open_mem(trunc.bytes, trunc.len, NULL, &obj), BPFX_OK);
        EXPECT(bpfx_object_program(obj, "xdp_trunc", &opts, &p), BPFX_OK);
        unsigned char buf[256 + 200 + 100];
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (unsigned char)(i * 5 + 1);
        for (size_t len = 60; len <= 200; len += 140) {
            bpfx_xdp_result out;
            EXPECT(bpfx_program_run_xdp(p, buf, 256 + len + 100, 256, len, &out), BPFX_OK);
            printf("%s trunc %zu action %llu start %zu len %zu meta %zu\n", e, len,
                   (unsigned long long)out.action, out.start, out.len, out.meta_len);
        }
        bpfx_xdp_result out;
        EXPECT(bpfx_program_run_xdp(p, buf, 100, 90, 20, &out), BPFX_ERR_ARGUMENT);
        EXPECT(bpfx_program_run_xdp(p, buf, sizeof buf, 0, 60, NULL), BPFX_ERR_NULL);
        bpfx_program_free(p);
        EXPECT(bpfx_object_program(obj, "xdp_trunc", &opts, &p), BPFX_OK);
        bpfx_object_free(obj);
        bpfx_program_free(p);
    }
    /* A program of another type is refused. */
    struct file shared = slurp(dir, "../../../capi/tests/objects/shared_maps.o");
    bpfx_object *obj = NULL;
    bpfx_program *p = NULL;
    bpfx_xdp_result out;
    EXPECT(bpfx_object_open_mem(shared.bytes, shared.len, NULL, &obj), BPFX_OK);
    EXPECT(bpfx_object_program(obj, "stage2", NULL, &p), BPFX_OK);
    unsigned char small[64] = {0};
    EXPECT(bpfx_program_run_xdp(p, small, sizeof small, 0, 64, &out), BPFX_ERR_CONTEXT);
    bpfx_program_free(p);
    bpfx_object_free(obj);
    free(shared.bytes);
    free(devmap.bytes);
    free(trunc.bytes);
}

/* Programs of one object on several threads at once, each thread with its own program
 * handle, while the main thread consumes the ring buffer they fill. */
#define THREAD_RUNS 100

struct worker {
    bpfx_program *prog;
    int ok;
};

static void *work(void *arg) {
    struct worker *w = arg;
    unsigned char buf[4] = {'t', 'h', 'r', 'd'};
    for (int i = 0; i < THREAD_RUNS; i++) {
        uint64_t r = 0;
        if (bpfx_program_run(w->prog, buf, 1 + (size_t)(i % 4), &r) == BPFX_OK && r == 7)
            w->ok++;
    }
    return NULL;
}

static int count_event(void *ctx, const void *data, size_t size) {
    (void)data;
    (void)size;
    (*(int *)ctx)++;
    return 0;
}

static void threads(const struct file *elf) {
    for (uint32_t engine = 0; engine < 2; engine++) {
        const char *e = ENGINE_NAME[engine];
        BPFX_OPTS(bpfx_program_opts, opts, .engine = engine);
        bpfx_object *obj = NULL;
        bpfx_map *counts = NULL, *events = NULL, *jumps = NULL;
        bpfx_program *stage2 = NULL;
        struct worker w[2] = {{NULL, 0}, {NULL, 0}};
        EXPECT(bpfx_object_open_mem(elf->bytes, elf->len, NULL, &obj), BPFX_OK);
        EXPECT(bpfx_object_program(obj, "count", &opts, &w[0].prog), BPFX_OK);
        EXPECT(bpfx_object_program(obj, "count", &opts, &w[1].prog), BPFX_OK);
        EXPECT(bpfx_object_program(obj, "stage2", &opts, &stage2), BPFX_OK);
        EXPECT(bpfx_object_map(obj, "counts", &counts), BPFX_OK);
        EXPECT(bpfx_object_map(obj, "events", &events), BPFX_OK);
        EXPECT(bpfx_object_map(obj, "jumps", &jumps), BPFX_OK);
        EXPECT(bpfx_prog_array_set(jumps, 0, stage2), BPFX_OK);
        /* Every key the programs count under exists first: their updates are then atomic
         * adds, none an insertion that could race. */
        uint32_t keys[] = {1, 2, 3, 4, 1000};
        uint64_t zero = 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            EXPECT(bpfx_map_update_elem(counts, &keys[i], 4, &zero, 8, 0), BPFX_OK);
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
        int consumed = 0;
        for (int i = 0; i < 50; i++) {
            int n = bpfx_ringbuf_consume(events, count_event, &consumed);
            CHECK(n >= 0);
        }
        for (int i = 0; i < 2; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
        CHECK(bpfx_ringbuf_consume(events, count_event, &consumed) >= 0);
        printf("%s threads ok %d %d consumed %d\n", e, w[0].ok, w[1].ok, consumed);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            uint64_t v = 0;
            EXPECT(bpfx_map_lookup_elem(counts, &keys[i], 4, &v, 8), BPFX_OK);
            printf("%s threads key %u value %llu\n", e, keys[i], (unsigned long long)v);
        }
        bpfx_program_free(w[0].prog);
        bpfx_program_free(w[1].prog);
        bpfx_program_free(stage2);
        bpfx_map_free(counts);
        bpfx_map_free(events);
        bpfx_map_free(jumps);
        bpfx_object_free(obj);
    }
}

/* Global variables by name on examples/globals.o: the .rodata multiplier read, then set
 * before the program reading it is prepared (refused after), .data's base set, .bss's run
 * counter and last result read after two runs; a wrong size, an unknown name and NULL
 * refused. */
static void globals_by_name(const char *examples) {
    struct file elf = slurp(examples, "globals.o");
    for (uint32_t engine = 0; engine < 2; engine++) {
        const char *e = ENGINE_NAME[engine];
        BPFX_OPTS(bpfx_program_opts, opts, .engine = engine);
        bpfx_object *obj = NULL;
        bpfx_program *prog = NULL;
        uint64_t v = 0;
        uint32_t small = 1;
        EXPECT(bpfx_object_open_mem(elf.bytes, elf.len, NULL, &obj), BPFX_OK);
        EXPECT(bpfx_object_get_global(obj, "multiplier", &v, sizeof v), BPFX_OK);
        printf("%s globals multiplier %llu\n", e, (unsigned long long)v);
        v = 5;
        EXPECT(bpfx_object_set_global(obj, "multiplier", &v, sizeof v), BPFX_OK);
        v = 10;
        EXPECT(bpfx_object_set_global(obj, "base", &v, sizeof v), BPFX_OK);
        EXPECT(bpfx_object_set_global(obj, "base", &small, sizeof small), BPFX_ERR_ARGUMENT);
        CHECK(strstr(bpfx_last_error(), "base") != NULL);
        EXPECT(bpfx_object_get_global(obj, "nope", &v, sizeof v), BPFX_ERR_ARGUMENT);
        CHECK(strstr(bpfx_last_error(), "last_result") != NULL);
        EXPECT(bpfx_object_set_global(obj, NULL, &v, sizeof v), BPFX_ERR_NULL);
        EXPECT(bpfx_object_get_global(NULL, "runs", &v, sizeof v), BPFX_ERR_NULL);
        EXPECT(bpfx_object_program(obj, "sum_bytes", &opts, &prog), BPFX_OK);
        EXPECT(bpfx_object_set_global(obj, "multiplier", &v, sizeof v), BPFX_ERR_STATE);
        for (int i = 0; i < 2; i++) {
            unsigned char buf[5] = {1, 2, 3, 4, 5};
            uint64_t r = 0;
            EXPECT(bpfx_program_run(prog, buf, sizeof buf, &r), BPFX_OK);
            printf("%s globals run %llu\n", e, (unsigned long long)r);
        }
        uint64_t runs = 0, last = 0;
        EXPECT(bpfx_object_get_global(obj, "runs", &runs, sizeof runs), BPFX_OK);
        EXPECT(bpfx_object_get_global(obj, "last_result", &last, sizeof last), BPFX_OK);
        printf("%s globals runs %llu last %llu\n", e, (unsigned long long)runs,
               (unsigned long long)last);
        /* The object may go first: the program keeps the globals' maps. */
        bpfx_object_free(obj);
        bpfx_program_free(prog);
    }
    free(elf.bytes);
}

/* host_helper.o's helper 0x10000: r1 * r2 plus the number its context points to. */
static uint64_t host_scale(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5,
                           void *ctx) {
    (void)r3;
    (void)r4;
    (void)r5;
    return r1 * r2 + *(const uint64_t *)ctx;
}

/* Helpers written in C on the object API: registered on a VM, the object opened with it
 * (bpfx_object_open_mem_vm), the VM freed at once; without them the verifier refuses the
 * call. */
static void host_helpers(const char *objects) {
    struct file elf = slurp(objects, "host_helper.o");
    static const uint64_t extra = 100;
    const uint32_t args[] = {BPFX_ARG_SCALAR, BPFX_ARG_SCALAR};
    for (uint32_t engine = 0; engine < 2; engine++) {
        const char *e = ENGINE_NAME[engine];
        BPFX_OPTS(bpfx_program_opts, opts, .engine = engine);
        bpfx_object *plain = NULL, *obj = NULL;
        bpfx_program *prog = NULL;
        EXPECT(bpfx_object_open_mem(elf.bytes, elf.len, NULL, &plain), BPFX_OK);
        EXPECT(bpfx_object_program(plain, "use_host", &opts, &prog), BPFX_ERR_VERIFY);
        CHECK(prog == NULL);
        bpfx_object_free(plain);
        bpfx_vm *vm = bpfx_vm_new();
        EXPECT(bpfx_register_helper(vm, 0x10000, "host_scale", host_scale, (void *)&extra, args,
                                    2),
               BPFX_OK);
        EXPECT(bpfx_object_open_mem_vm(NULL, elf.bytes, elf.len, NULL, &obj), BPFX_ERR_NULL);
        CHECK(obj == NULL);
        EXPECT(bpfx_object_open_mem_vm(vm, elf.bytes, elf.len, NULL, &obj), BPFX_OK);
        bpfx_vm_free(vm); /* the object keeps its helpers */
        EXPECT(bpfx_object_program(obj, "use_host", &opts, &prog), BPFX_OK);
        unsigned char buf[7] = {0};
        uint64_t r = 0;
        EXPECT(bpfx_program_run(prog, buf, sizeof buf, &r), BPFX_OK);
        printf("%s host helper %llu\n", e, (unsigned long long)r);
        bpfx_program_free(prog);
        bpfx_object_free(obj);
    }
    free(elf.bytes);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s OBJECTS_DIR EXAMPLES_DIR RUNTIME_OBJECTS_DIR\n", argv[0]);
        return 2;
    }
    struct file elf = slurp(argv[1], "shared_maps.o");
    CHECK(strcmp(ENGINE_NAME[CONFIGS[1].engine], CONFIGS[1].name) == 0);
    options(&elf);
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++)
        one_config(&CONFIGS[i], &elf);
    examples_by_handle(argv[2]);
    threads(&elf);
    contexts(argv[1], &elf);
    xdp_programs(argv[3]);
    globals_by_name(argv[2]);
    host_helpers(argv[1]);
    free(elf.bytes);
    return failures ? 1 : 0;
}
