#!/bin/sh
# Rebuilds the objects of the C API tests from their C sources (committed with them).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c shared_maps.c -o shared_maps.o
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c struct_ctx.c -o struct_ctx.o
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c host_helper.c -o host_helper.o
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c sized_config.c -o sized_config.o
