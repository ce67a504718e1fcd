#!/bin/sh
# Rebuilds the CLI's test objects from their C sources (committed, so the tests need no
# compiler).
set -eu
cd "$(dirname "$0")"
clang-19 -O2 -target bpf -mcpu=v3 -c two.c -o two.o
# xdp_redirect.c includes the kernel's UAPI linux/bpf.h, which needs the host's asm/ directory.
ASM_INC=${ASM_INC:-/usr/include/$(uname -m)-linux-gnu}
clang-19 -O2 -target bpf -mcpu=v3 -I"$ASM_INC" -c xdp_redirect.c -o xdp_redirect.o
# maps_init.c includes examples/bpf_helpers.h.
clang-19 -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c maps_init.c -o maps_init.o
# xdp_random_drop.c includes examples/bpf_helpers.h.
clang-19 -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c xdp_random_drop.c -o xdp_random_drop.o
