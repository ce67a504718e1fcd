#!/bin/sh
# Rebuilds the replay bench's committed XDP objects from their C sources (the native build of
# the same filters, native.c, is made by ../build.rs). Commit both after editing.
set -eu
cd "$(dirname "$0")"
for c in fw lb pass; do
	clang-19 -O2 -g -target bpf -mcpu=v3 -c "$c.c" -o "$c.o"
done
