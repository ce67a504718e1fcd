#!/bin/sh
# Rebuilds the variable-length header programs (crates/runtime/tests/strict_headers.rs) and the
# packet-copy programs (crates/runtime/tests/strict_copies.rs).
# The objects are committed, so the tests need no clang.
set -eu
cd "$(dirname "$0")"
for c in *.c; do
	clang-19 -O2 -g -target bpf -mcpu=v3 -c "$c" -o "${c%.c}.o"
done
