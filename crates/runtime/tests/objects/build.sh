#!/bin/sh
# Rebuilds the test objects of the memory limit and of per-program outcomes from their C
# sources, and of the program-type tests (TC, socket filter, section names, XDP packet
# buffers). The objects are committed so the tests need no compiler.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in lru_huge lru_2g arrays16 mixed lb_mim devmap_tx globals_named; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -c "$src.c" -o "$src.o"
done
# These include the kernel's UAPI headers (linux/bpf.h for struct __sk_buff and xdp_md), which
# need the host's asm/ directory.
ASM_INC=${ASM_INC:-/usr/include/$(uname -m)-linux-gnu}
for src in tc_classify sock_port80 sections tc_nat tc_pnat xdp_decap xdp_trunc xdp_lb xdp_adjust tc_helpers xdp_fib xdp_fib_probe \
	tc_probe tc_task tc_dscp sock_port80_load tc_vlan tc_ipip tc_resize_probe \
	resize_socket resize_xdp tc_netoff xdp_loop xdp_may_goto xdp_tlv_walk xdp_tlv_walk_bad xdp_list_walk xdp_list_walk_bad xdp_flowsel tc_neigh tc_pkttype tc_tunnel tc_ecn strncmp tc_vprintk tc_peer tc_peer_xdp \
	sock_cgroup xdp_bytes xdp_spin sock_cookie xdp_syncookie; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "$src.c" -o "$src.o"
done
# sock_access_N.c: one socket or perf event context access per object, sharing sock_access.h
# (tests/sock_cgroup.rs).
for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "sock_access_$n.c" -o "sock_access_$n.o"
done
# bpf_sock_addr.sk in socket-address programs, and its refused twins sharing sock_addr_sk_bad.h
# (tests/sock_addr_sk.rs, with the kernel as oracle).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c sock_addr_sk.c -o sock_addr_sk.o
for n in 0 1 2; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "sock_addr_sk_bad_$n.c" -o "sock_addr_sk_bad_$n.o"
done
# sock_cookie_N.c: one program per type calling bpf_get_socket_cookie, sharing sock_cookie_one.h
# (tests/sock_cookie.rs, with the kernel as oracle).
for n in 0 1 2; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "sock_cookie_$n.c" -o "sock_cookie_$n.o"
done
# sk_msg programs in a service mesh's style (tests/sk_msg.rs), and their unsafe twins
# (skmsg_bad_N.c defines CASE and includes skmsg_bad.h).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c skmsg.c -o skmsg.o
for n in 0 1 2; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "skmsg_bad_$n.c" -o "skmsg_bad_$n.o"
done
# An sk_lookup dispatcher steering by port to a SOCKMAP's socket, and its refused twins
# (sk_lookup_bad_N.c defines CASE and includes sk_lookup_bad.h; tests/sk_lookup.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c sk_lookup.c -o sk_lookup.o
for n in 0 1 2; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "sk_lookup_bad_$n.c" -o "sk_lookup_bad_$n.o"
done
# Lightweight tunnel programs (an lwt_in filter, an lwt_out counter, an lwt_xmit DSCP rewriter)
# and their refused twins (lwt_bad_N.c defines CASE and includes lwt_bad.h; tests/lwt.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c lwt.c -o lwt.o
for n in 0 1 2; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "lwt_bad_$n.c" -o "lwt_bad_$n.o"
done
# bpf_setsockopt/bpf_getsockopt from sock_ops and cgroup connect programs, and the programs the
# kernel refuses for their use (sockopt_bad_N.c defines CASE and includes sockopt_bad.h;
# tests/sockopt.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c sockopt.c -o sockopt.o
for n in 1 2; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "sockopt_bad_$n.c" -o "sockopt_bad_$n.o"
done
# core_unreachable_N.c define CASE and include core_unreachable.h: CASE 0 calls the
# bad-relocation id in dead code, CASE 1 where a run reaches it (tests/core_unreachable.rs, with
# the kernel as oracle).
for n in 0 1; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "core_unreachable_$n.c" -o "core_unreachable_$n.o"
done
# helper_types_N.c: one program per case, sharing the body in helper_types.h.
for n in 0 1 2 3 4 5 6 7 8 9 10; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "helper_types_$n.c" -o "helper_types_$n.o"
done
# bpf_loop and for_each_map_elem fixtures (tests/callbacks.rs): safe programs and their rejected
# unsafe twins; bloom filters with map_extra (tests/maps.rs).
for src in loops loops_bad for_each bloom_extra; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -c "$src.c" -o "$src.o"
done
for src in tracing stackmap; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -c "$src.c" -o "$src.o"
done
# Ring buffer records as references (tests/ringbuf_refs.rs): the safe programs, and one unsafe
# twin per ringbuf_refs_bad_N.c (each defines CASE and includes ringbuf_refs_bad.h).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c ringbuf_refs.c -o ringbuf_refs.o
for n in 1 2 3; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "ringbuf_refs_bad_$n.c" -o "ringbuf_refs_bad_$n.o"
done
# The unsafe twins of xdp_spin.c (tests/spin_lock.rs): xdp_spin_bad_N.c defines CASE and
# includes xdp_spin_bad.h; both include xdp_spin.h (the helpers and the map).
for n in 1 2 3; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "xdp_spin_bad_$n.c" -o "xdp_spin_bad_$n.o"
done
# A conntrack table whose values embed a struct bpf_timer, and its unsafe twin (a timer pointer
# at the wrong offset of the value) (tests/timer.rs); both include xdp_ct_timer.h. And a
# conntrack table cleaned up by its entries' timers (tests/timer_fire.rs).
for src in xdp_ct_timer xdp_ct_timer_bad xdp_ct_expire; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "$src.c" -o "$src.o"
done
# A trace_printk format chosen by a branch between two .rodata strings (tests/strict_helper_offsets.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c xdp_fmt.c -o xdp_fmt.o
# Paths the verifier keeps apart at a join point (tests/path_join.rs): safe programs and their
# unsafe twins (each twin defines its case and includes the safe program's source).
for src in sock_join sock_join_bad xdp_mapsel xdp_mapsel_bad; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "$src.c" -o "$src.o"
done
# Programs in free-named sections (iproute2's `sec ingress`, `sec mapper`) whose context only
# their BTF names (tests/btf_context.rs): with -g, and the same without -g (no BTF).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c btf_sections.c -o btf_sections.o
"$CLANG" -O2 -target bpf -mcpu=v3 -I"$ASM_INC" -c btf_sections-nobtf.c -o btf_sections-nobtf.o
# cgroup_skb programs (tests/cgroup_skb.rs, with the kernel as oracle) and their unsafe twins:
# cgskb_bad_N.c defines CASE and includes cgskb_bad.h.
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c cgskb.c -o cgskb.o
for n in 1 2 3 4; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "cgskb_bad_$n.c" -o "cgskb_bad_$n.o"
done
# sk_skb programs and their unsafe twin (tests/sk_skb.rs).
for src in skskb skskb_bad; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "$src.c" -o "$src.o"
done
# Socket pointers (tests/sock_ptr.rs, tests/sock_ptr_oracle.rs): socket lookups from TC and
# XDP, the packet's socket of a cgroup_skb program, and the unsafe twins: sk_bad_N.c defines
# CASE and includes sk_bad.h.
for src in sk_steer cgskb_sk sk_connect sk_filter_sock sk_bad_1 sk_bad_2 sk_bad_3 sk_bad_4; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "$src.c" -o "$src.o"
done
# A fragment table whose value nests the struct holding its struct bpf_timer, and its unsafe
# twin (the nested struct's address passed as the timer) (tests/nested_timer.rs).
for src in xdp_frag_timer xdp_frag_timer_bad; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "$src.c" -o "$src.o"
done
# A map of maps declared the legacy way, with no inner map template in the object: the loader
# gives it one (Vm::inner_map) (tests/legacy_inner_map.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c xdp_legacy_mim.c -o xdp_legacy_mim.o
# A map of maps whose inner handle clang spills before its null check and fills after it
# (tests/map_in_map.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -c xdp_mim_spill.c -o xdp_mim_spill.o
# Socket-local storage (tests/sk_storage.rs, tests/sk_storage_oracle.rs): the accounting
# programs and their unsafe twins (sk_storage_bad_N.c defines CASE and includes
# sk_storage_bad.h).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c sk_storage.c -o sk_storage.o
for n in 1 2 3 4 5 6; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "sk_storage_bad_$n.c" -o "sk_storage_bad_$n.o"
done
# A container runtime's cgroup device allowlist and a device access logger, and their refused
# twins (cgroup_dev_bad_N.c defines CASE and includes cgroup_dev_bad.h; tests/cgroup_dev.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c cgroup_dev.c -o cgroup_dev.o
for n in 0 1 2 3; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "cgroup_dev_bad_$n.c" -o "cgroup_dev_bad_$n.o"
done
# A cgroup's setsockopt/getsockopt policy (capping, bypassing, rewriting, answering options),
# and its refused twins (cgroup_sockopt_bad_N.c defines CASE and includes cgroup_sockopt_bad.h;
# tests/cgroup_sockopt.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c cgroup_sockopt.c -o cgroup_sockopt.o
for n in 0 1 2 3; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "cgroup_sockopt_bad_$n.c" -o "cgroup_sockopt_bad_$n.o"
done
# A cgroup's /proc/sys policy (the sysctl helpers, bpf_strtol/bpf_strtoul) and a value logger,
# and their refused twins (cgroup_sysctl_bad_N.c defines CASE and includes cgroup_sysctl_bad.h;
# tests/cgroup_sysctl.rs).
"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c cgroup_sysctl.c -o cgroup_sysctl.o
for n in 0 1 2 3; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I"$ASM_INC" -c "cgroup_sysctl_bad_$n.c" -o "cgroup_sysctl_bad_$n.o"
done
