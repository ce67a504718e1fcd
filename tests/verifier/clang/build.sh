#!/bin/sh
# Rebuilds the objects the verifier's clang tests load (crates/verifier/tests/clang.rs).
# The objects are committed, so the tests need no clang.
set -eu
cd "$(dirname "$0")"
for c in *.c; do
	clang-19 -O2 -g -target bpf -mcpu=v3 -c "$c" -o "${c%.c}.o"
done
