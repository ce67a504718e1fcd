#!/bin/sh
# Rebuilds the test objects from their C sources. The objects are committed so the tests need
# no compiler; rerun this after changing a source and review the objdump of what changed.
set -eu
cd "$(dirname "$0")"
CC=clang-19
CFLAGS="-O2 -target bpf"

# Several programs per object and per section, .text subprograms, function addresses:
# every ISA version, with and without debug info.
for cpu in v1 v2 v3 v4; do
	$CC $CFLAGS -mcpu=$cpu -c multi.c -o multi-$cpu.o
done
$CC $CFLAGS -mcpu=v3 -g -c multi.c -o multi-v3-g.o
# An object whose code is all in .text: its global functions are programs.
$CC $CFLAGS -mcpu=v3 -c textonly.c -o textonly.o

# BTF-defined maps need the .BTF section, which clang emits only with -g.
$CC $CFLAGS -mcpu=v3 -g -c maps.c -o maps.o
$CC $CFLAGS -mcpu=v4 -g -c maps.c -o maps-v4.o
# Without -g: no .BTF, so the maps cannot be described (a load error).
$CC $CFLAGS -mcpu=v3 -c maps-nobtf.c -o maps-nobtf.o

# Legacy `maps` section, with and without debug info.
$CC $CFLAGS -mcpu=v3 -c legacy.c -o legacy.o
$CC $CFLAGS -mcpu=v3 -g -c legacy.c -o legacy-g.o

# Global data, with and without debug info.
$CC $CFLAGS -mcpu=v3 -c globals.c -o globals.o
$CC $CFLAGS -mcpu=v3 -g -c globals.c -o globals-g.o
$CC $CFLAGS -mcpu=v1 -c globals.c -o globals-v1.o

# An extern variable without BTF: unresolved, recorded on the program that uses it.
$CC $CFLAGS -mcpu=v3 -c extern.c -o extern.o

# iproute2's struct bpf_elf_map: an XDP counter with pinned maps, and map-in-map links.
$CC $CFLAGS -mcpu=v3 -c elf_map.c -o elf_map.o
$CC $CFLAGS -mcpu=v3 -c elf_map_in_map.c -o elf_map_in_map.o
# The same counter with per-CPU maps (PERCPU_ARRAY, PERCPU_HASH) in iproute2's style.
$CC $CFLAGS -mcpu=v3 -c elf_percpu.c -o elf_percpu.o
# iproute2's tail calls: programs in sections "<id>/<key>" fill the program array of that id.
$CC $CFLAGS -mcpu=v3 -c elf_tailcall.c -o elf_tailcall.o
# (The tests zero elf_map.o's e_machine in memory for the EM_NONE case.)

# BTF-defined program array filled by `.values`, maps of maps, ring buffer, placement members.
$CC $CFLAGS -mcpu=v3 -g -c tailcall.c -o tailcall.o
$CC $CFLAGS -mcpu=v3 -g -c mapinmap.c -o mapinmap.o

# Externs (their kinds come from BTF, hence -g): __kconfig values, __ksym symbols, and a
# function left unresolved by static linking.
$CC $CFLAGS -mcpu=v3 -g -c kconfig.c -o kconfig.o
$CC $CFLAGS -mcpu=v3 -g -c ksym.c -o ksym.o

# Assembly without any function symbol.
llvm-mc-19 -triple bpfel -mcpu=v3 -filetype=obj raw.s -o raw.o

# BTF maps with a pinning value of another loader (cilium's 16), in cilium/ebpf's `tc/…` sections.
$CC $CFLAGS -mcpu=v3 -g -c pin_custom.c -o pin_custom.o

# Programs in sections that name no type, whose first parameter declares the context (BTF's
# FUNC -> FUNC_PROTO -> pointer -> struct); without -g there is no BTF to read it from.
$CC $CFLAGS -mcpu=v3 -g -c ctxtypes.c -o ctxtypes.o
$CC $CFLAGS -mcpu=v3 -c ctxtypes-nobtf.c -o ctxtypes-nobtf.o
