/*
 * ubpf.h: the uBPF-compatible subset of libbpfx. A program written against uBPF's public API
 * (the functions below, with uBPF's signatures and return conventions) builds against this
 * header and links with -lbpfx unchanged. docs/c-api.md lists what is covered, what is not,
 * and where bpfx behaves differently:
 *
 *  - bounds checks cannot be turned off: ubpf_toggle_bounds_check records the setting and
 *    returns the previous one, and every access stays checked (or proven by the verifier);
 *  - programs are verified when loaded; a call to an index that is neither registered nor a
 *    bpfx standard helper is refused then, as uBPF refuses a nonexistent function;
 *  - ubpf_compile returns one of BPFX_UBPF_JIT_SLOTS (64) trampolines, so at most 64 VMs hold a
 *    live compiled function at once; a trap inside it returns UINT64_MAX;
 *  - errors are printed to stderr (uBPF's default printer) and *errmsg strings come from
 *    malloc, for the caller to free().
 *
 * This header is checked against the library by the bpfx-capi tests.
 */
#ifndef UBPF_H
#define UBPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The opaque VM. */
struct ubpf_vm;

/* What ubpf_compile returns: call it with the memory the program gets in r1/r2. */
typedef uint64_t (*ubpf_jit_fn)(void *mem, size_t mem_len);

/* An external function (helper): r1..r5 in, r0 out. */
typedef uint64_t (*external_function_t)(uint64_t p0, uint64_t p1, uint64_t p2, uint64_t p3,
                                        uint64_t p4);

/* A new VM, or NULL on failure. */
struct ubpf_vm *ubpf_create(void);
/* Frees a VM (and its compiled function's slot). */
void ubpf_destroy(struct ubpf_vm *vm);
/* Records whether bounds checks are wanted and returns the previous setting (true at first);
 * bpfx checks every access regardless. */
bool ubpf_toggle_bounds_check(struct ubpf_vm *vm, bool enable);
/* Casts a function address to external_function_t. */
external_function_t as_external_function_t(void *f);
/* Registers `fn` for `call index` (NULL unregisters). 0 on success, -1 on failure. */
int ubpf_register(struct ubpf_vm *vm, unsigned int index, const char *name,
                  external_function_t fn);
/* Loads raw bytecode (a multiple of 8 bytes); verifies it. 0, or -1 with *errmsg (free it). */
int ubpf_load(struct ubpf_vm *vm, const void *code, uint32_t code_len, char **errmsg);
/* Unloads the code so that other code can be loaded; registered functions stay. */
void ubpf_unload_code(struct ubpf_vm *vm);
/* Loads the first program of a clang-built ELF object (its maps are created). */
int ubpf_load_elf(struct ubpf_vm *vm, const void *elf, size_t elf_len, char **errmsg);
/* Loads the program of an ELF object named (or in the section named) main_section_name. */
int ubpf_load_elf_ex(struct ubpf_vm *vm, const void *elf, size_t elf_len,
                     const char *main_section_name, char **errmsg);
/* Runs on the interpreter with r1 = mem, r2 = mem_len; 0 and *bpf_return_value = r0, or -1. */
int ubpf_exec(const struct ubpf_vm *vm, void *mem, size_t mem_len, uint64_t *bpf_return_value);
/* Compiles to x86-64; the same function on every call for one VM. NULL with *errmsg. */
ubpf_jit_fn ubpf_compile(struct ubpf_vm *vm, char **errmsg);
/* When external function `idx` returns 0 the program stops and the run returns 0.
 * 0, or -1 if an index is already set. */
int ubpf_set_unwind_function_index(struct ubpf_vm *vm, unsigned int idx);

#ifdef __cplusplus
}
#endif

#endif /* UBPF_H */
