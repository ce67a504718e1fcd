#!/bin/sh
# Rebuilds the CLI's test objects from their C sources (committed, so the tests need no
# compiler).
set -eu
cd "$(dirname "$0")"
clang-19 -O2 -target bpf -mcpu=v3 -c two.c -o two.o
