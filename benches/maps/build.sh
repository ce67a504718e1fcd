#!/bin/sh
# Rebuilds the map bench's committed object from its C source; commit both after editing.
set -eu
cd "$(dirname "$0")"
clang-19 -O2 -g -target bpf -mcpu=v3 -c maps.c -o maps.o
