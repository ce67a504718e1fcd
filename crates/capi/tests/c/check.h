/*
 * What the C tests share: CHECK/EXPECT (a failed check goes to stderr and counts in
 * `failures`, which the test's exit status reports), reading a file of a directory whole, and
 * the engines' names by BPFX_ENGINE_* number.
 */
#ifndef BPFX_TEST_CHECK_H
#define BPFX_TEST_CHECK_H

#include "bpfx.h"

#include <stdio.h>
#include <stdlib.h>

static int failures;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__,        \
                    __LINE__, #cond, bpfx_last_error());                                   \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

#define EXPECT(call, status) CHECK((call) == (status))

struct file {
    unsigned char *bytes;
    size_t len;
};

static struct file slurp(const char *dir, const char *name) {
    char path[4096];
    struct file f = {NULL, 0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f.bytes = malloc(n > 0 ? (size_t)n : 1);
    f.len = fread(f.bytes, 1, (size_t)n, fp);
    fclose(fp);
    return f;
}

static const char *ENGINE_NAME[] = {"interp", "jit"};

#endif
