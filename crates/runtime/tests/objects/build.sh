#!/bin/sh
# Rebuilds the test objects of the memory limit and of per-program outcomes from their C
# sources. The objects are committed so the tests need no compiler.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in lru_huge arrays16 mixed lb_mim devmap_tx; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -c "$src.c" -o "$src.o"
done
