/*
 * A uBPF embedder, written against uBPF's API the way its users write one: read a program
 * (raw bytecode or a clang-built ELF object) and an optional memory file, register external
 * functions, load, then run it on the interpreter (ubpf_exec) and on the JIT (ubpf_compile).
 * Nothing in it knows about bpfx: it builds against ubpf.h and links with -lbpfx.
 *
 *   ubpf_style PROGRAM [MEMORY]
 *
 * prints "interp <r0> <memory after the run, hex>" and "jit <r0> <memory hex>".
 */
#include <ubpf.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* External functions, by index: the program calls them with `call N`. */
static uint64_t gather_bytes(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
    return ((uint64_t)a << 32) | ((uint32_t)b << 24) | ((uint32_t)c << 16) |
           ((uint32_t)d << 8) | (uint32_t)e;
}

static uint64_t memfrob_ext(uint64_t s, uint64_t n, uint64_t unused1, uint64_t unused2,
                            uint64_t unused3) {
    (void)unused1, (void)unused2, (void)unused3;
    unsigned char *p = (unsigned char *)(uintptr_t)s;
    for (uint64_t i = 0; i < n; i++) {
        p[i] ^= 42;
    }
    return 0;
}

static uint64_t sqrti(uint64_t x) {
    uint64_t r = 0;
    while ((r + 1) * (r + 1) <= x) {
        r++;
    }
    return r;
}

static uint64_t unwind(uint64_t x, uint64_t unused1, uint64_t unused2, uint64_t unused3,
                       uint64_t unused4) {
    (void)unused1, (void)unused2, (void)unused3, (void)unused4;
    return x;
}

static void *readfile(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "failed to open %s\n", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
            }
            buf = bigger;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void print_run(const char *engine, uint64_t ret, const unsigned char *mem, size_t len) {
    printf("%s 0x%" PRIx64 " ", engine, ret);
    for (size_t i = 0; i < len; i++) {
        printf("%02x", mem[i]);
    }
    printf("\n");
}

static struct ubpf_vm *setup(const void *code, size_t code_len) {
    struct ubpf_vm *vm = ubpf_create();
    if (!vm) {
        fprintf(stderr, "failed to create the VM\n");
        return NULL;
    }
    ubpf_register(vm, 0, "gather_bytes", gather_bytes);
    ubpf_register(vm, 9, "memfrob", memfrob_ext);
    ubpf_register(vm, 10, "sqrti", as_external_function_t((void *)sqrti));
    ubpf_register(vm, 11, "unwind", unwind);
    ubpf_set_unwind_function_index(vm, 11);
    ubpf_toggle_bounds_check(vm, true);

    char *errmsg = NULL;
    int rv;
    if (code_len >= 4 && memcmp(code, "\x7f" "ELF", 4) == 0) {
        rv = ubpf_load_elf(vm, code, code_len, &errmsg);
    } else {
        rv = ubpf_load(vm, code, (uint32_t)code_len, &errmsg);
    }
    if (rv < 0) {
        fprintf(stderr, "failed to load code: %s\n", errmsg);
        free(errmsg);
        ubpf_destroy(vm);
        return NULL;
    }
    return vm;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PROGRAM [MEMORY]\n", argv[0]);
        return 2;
    }
    size_t code_len = 0, mem_len = 0;
    void *code = readfile(argv[1], &code_len);
    void *mem = argc == 3 ? readfile(argv[2], &mem_len) : NULL;
    if (!code || (argc == 3 && !mem)) {
        return 1;
    }

    int status = 0;
    struct ubpf_vm *vm = setup(code, code_len);
    if (!vm) {
        return 1;
    }

    /* The interpreter, on a copy of the memory. */
    unsigned char *copy = malloc(mem_len ? mem_len : 1);
    if (mem_len) {
        memcpy(copy, mem, mem_len);
    }
    uint64_t ret;
    if (ubpf_exec(vm, mem_len ? copy : NULL, mem_len, &ret) < 0) {
        fprintf(stderr, "interpreter failed\n");
        status = 1;
    } else {
        print_run("interp", ret, copy, mem_len);
    }

    /* The JIT, on a fresh copy. */
    char *errmsg = NULL;
    ubpf_jit_fn fn = ubpf_compile(vm, &errmsg);
    if (fn == NULL) {
        fprintf(stderr, "failed to compile: %s\n", errmsg);
        free(errmsg);
        status = 1;
    } else {
        if (mem_len) {
            memcpy(copy, mem, mem_len);
        }
        ret = fn(mem_len ? copy : NULL, mem_len);
        print_run("jit", ret, copy, mem_len);
    }

    ubpf_destroy(vm);
    free(copy);
    free(mem);
    free(code);
    return status;
}
