#!/bin/sh
# Rebuilds the example objects from their C sources. The objects are committed, so running the
# examples needs no clang; this needs clang 19 (any clang with the BPF target should do).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in counter xdp_parse globals ringbuf percpu_count lpm_block perf_sample; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -c "$src.c" -o "$src.o"
done
