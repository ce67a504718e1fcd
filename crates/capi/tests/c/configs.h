/*
 * The engine and JIT option sets the object API's C tests run on, by name: the interpreter,
 * the JIT with its defaults, with both hardenings, each alone, and in dual-mapped code memory.
 */
#ifndef BPFX_TEST_CONFIGS_H
#define BPFX_TEST_CONFIGS_H

#include "bpfx.h"

#include <stdint.h>

struct config {
    const char *name;
    uint32_t engine;
    uint32_t hardening;
    uint32_t code_memory;
};

static const struct config CONFIGS[] = {
    {"interp", BPFX_ENGINE_INTERPRETER, 0, 0},
    {"jit", BPFX_ENGINE_JIT, 0, 0},
    {"jit-hardened", BPFX_ENGINE_JIT, BPFX_HARDEN_BLINDING | BPFX_HARDEN_SPECTRE, 0},
    {"jit-blinding", BPFX_ENGINE_JIT, BPFX_HARDEN_BLINDING, 0},
    {"jit-spectre", BPFX_ENGINE_JIT, BPFX_HARDEN_SPECTRE, 0},
    {"jit-dual", BPFX_ENGINE_JIT, 0, BPFX_CODE_MEMORY_DUAL_MAPPED},
};

#define N_CONFIGS (sizeof CONFIGS / sizeof CONFIGS[0])

#endif
