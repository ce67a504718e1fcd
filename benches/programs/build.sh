#!/bin/sh
# Rebuilds the committed eBPF objects from the C sources. The benches read the objects, so
# they need no clang; run this after editing a program and commit both files.
#   -O2 -target bpf -mcpu=v3: the objects every bpfx engine and rbpf 0.4.1 run
#   (v3: 32-bit jumps and ALU, no v4 sdiv/movsx/bswap, which rbpf 0.4.1 lacks).
set -eu
cd "$(dirname "$0")"
for c in *.c; do
	clang-19 -O2 -target bpf -mcpu=v3 -c "$c" -o "${c%.c}.o"
done
