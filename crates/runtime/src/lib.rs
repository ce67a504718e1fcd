//! bpfx: run clang-built eBPF objects in user space, unmodified — the public facade over the
//! whole pipeline, with the maps, helpers and contexts programs expect from the kernel.
//!
//! ```text
//! prog.o ──► bpfx-elf ──► Object (maps declared) ──► ProgramRef ──► verify ──► Verified
//!                                                      (context)      │  (its maps created,
//!                                                                     │   bound to them)
//!                                                      interpret() ◄─┴─► compile() (x86-64 JIT)
//!                                              └──► Program::run / run_xdp / run_tc / run_socket
//! ```
//!
//! The engine, verifier mode, budget and JIT options are set once on the [`Vm`]
//! ([`Vm::engine`], [`Vm::mode`], [`Vm::budget`], [`Vm::jit_options`]: a [`VmConfig`],
//! impossible combinations refused with a [`ConfigError`]); [`ProgramRef::load`] then verifies
//! and prepares a program in one step. Runs return a [`RunError`], apart from the load-time
//! [`Error`] (which takes it with `?`).
//!
//! ```no_run
//! use bpfx::{Mode, Object, XdpAction};
//! let obj = Object::open("examples/xdp_parse.o")?;
//! let mut prog = obj.program("xdp_parse")?.verify(Mode::Checked)?.compile()?;
//! let mut packet = std::fs::read("examples/tcp-syn.bin").unwrap();
//! let action: XdpAction = prog.run_xdp(&mut packet)?;
//! let stats: bpfx::Array<u64> = obj.map_as("stats")?;
//! for (i, n) in stats.iter().enumerate() {
//!     println!("stats[{i}] = {n}");
//! }
//! # Ok::<(), bpfx::Error>(())
//! ```
//!
//! - **Maps** ([`Map`]): array, hash, LRU hash, ring buffer, program array, per-CPU array,
//!   per-CPU hash, LRU per-CPU hash, LPM trie, perf event array, queue, stack, bloom filter,
//!   array and hash of maps, device map, device hash map, CPU map, XSK map; their values are
//!   guest memory ([`bpfx_exec::SharedMem`]) that programs on any number of threads and the host
//!   share. Global data sections are one-element array maps. An [`Object`] lists them as
//!   [`ObjectMap`]s, created only when a program naming them is verified or the host asks.
//! - **Typed maps** ([`Array`], [`HashMap`], [`PerCpuArray`], [`PerCpuHashMap`], [`LpmTrie`],
//!   [`Queue`], [`Stack`], [`BloomFilter`], [`RingBuf`], [`PerfEventArray`], [`ProgramArray`],
//!   [`MapOfMaps`]) over [`Pod`] keys and values, their kind and sizes checked once
//!   ([`Object::map_as`]); global variables by name through the object's BTF
//!   ([`Object::set_global`], [`Object::get_global`], [`Object::globals`]).
//! - **Memory limit** ([`Vm::mem_limit`]): map storage, host-side bookkeeping included
//!   ([`MapSpecExt::memory_bytes`]), and JIT code are charged before they are allocated; hash
//!   maps a chunk of slots at a time as they are first used (`ENOMEM` past the limit).
//! - **Helpers**: the kernel's ids and semantics (map operations, time, random numbers, CPU id,
//!   `trace_printk`, tail calls, ring buffers, perf event output, per-CPU lookups,
//!   `redirect_map`, `redirect`, the XDP packet helpers `xdp_adjust_head`/`_tail`/`_meta`, the
//!   socket-buffer and checksum helpers, the TC helpers that move and resize the packet), plus embedder helpers registered on a [`Vm`]
//!   with a signature the verifier enforces.
//! - **Timers** (`bpf_timer_*`): kept per map element, freed with the element; bpfx has no
//!   soft-irq context, so the embedder fires the expired ones with [`Object::run_timers`]
//!   ([`TimersRun`]), each callback on the engine of the program that set it.
//! - **Contexts** ([`Context`]), from the section name as libbpf maps it or set explicitly:
//!   plain memory, XDP (`struct xdp_md` rewritten to real pointers as the kernel does, over a
//!   [`Packet`] with the kernel's headroom and tailroom: [`Program::run_xdp_packet`],
//!   [`XdpOutcome`]), TC and
//!   socket filters (`struct __sk_buff` with each type's access rules: [`Program::run_tc`],
//!   [`Program::run_tc_packet`] over a [`Packet`] the program may grow and shrink,
//!   [`TcOutcome`], [`Program::run_socket`], [`SkbMeta`]), cgroup skb programs (the same
//!   struct over a read-only IP packet with its socket: [`Program::run_cgroup_skb`],
//!   [`CgroupSkbVerdict`]), sk_skb programs (the same struct over writable stream data, with
//!   socket map redirects: [`Program::run_sk_skb`], [`SkSkbOutcome`]), sk_msg programs
//!   (`struct sk_msg_md` over a message they may pull, push and pop, with socket map
//!   redirects: [`Program::run_sk_msg`], [`SkMsg`], [`SkMsgOutcome`]), sk_lookup programs
//!   (`struct bpf_sk_lookup`, selecting a socket of [`Vm::sockets`] with `bpf_sk_assign`:
//!   [`Program::run_sk_lookup`], [`SkLookup`], [`SkLookupOutcome`]), lightweight tunnel
//!   programs (the `__sk_buff` over the IP packet a route carries: [`Program::run_lwt`],
//!   [`LwtOutcome`]), cgroup device, sysctl and socket-option programs
//!   ([`Program::run_cgroup_dev`], [`DevAccess`]; [`Program::run_sysctl`], [`Sysctl`];
//!   [`Program::run_sockopt`], [`SockoptCall`], [`SockoptOutcome`]), socket, tracing and
//!   perf event programs, or an embedder-defined
//!   struct; program types bpfx
//!   does not model are refused ([`Error::UnsupportedProgramType`]).
//!
//! `docs/runtime.md` describes the design: per-program outcomes, when maps are created, the
//! memory limit, map storage, handle binding, tail calls, the XDP rewrite.
#![forbid(unsafe_code)]

mod cgroup_dev;
mod cgroup_skb;
mod cgroup_sockopt;
mod cgroup_sysctl;
mod context;
pub mod csum;
mod ecn;
mod error;
mod externs;
mod fib;
mod helpers;
mod lwt;
mod map;
mod maps;
mod memory;
mod object_map;
mod packet;
mod perf_event;
mod program;
mod sk_lookup;
mod sk_msg;
pub(crate) mod sk_msg_helpers;
mod sk_skb;
mod sk_storage;
mod skb;
mod skb_helpers;
mod skb_packet;
mod sock;
mod sock_table;
pub(crate) mod sockmap_helpers;
mod sockopt;
mod spin_lock;
mod strncmp;
mod syncookie;
mod task;
mod tc;
mod timer;
mod trace;
mod tunnel;
mod typed;
mod xdp;
mod xdp_helpers;

/// The README's library section, compiled and run as a doc test on the shipped example.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct Readme;

/// The instruction model, for embedders that build programs by hand ([`ProgramDef`]).
pub use bpfx_bytecode as bytecode;
/// Decoded eBPF bytecode ([`bytecode::Program`]), named apart from the runnable [`Program`]:
/// what a [`ProgramDef`] holds and [`ProgramInfo`] shows. `bpfx`'s signatures spell it
/// `Bytecode`, so no signature shows two types named `Program`; the lower-level crates
/// (verifier, JIT, interpreter) keep their own name for it.
///
/// ```
/// let code = bpfx::bytecode::assemble("mov r0, 7\nexit").unwrap();
/// let def = bpfx::ProgramDef::new("seven", "test", bpfx::Bytecode::decode(code).unwrap());
/// assert_eq!(def.program.len(), 2);
/// ```
pub type Bytecode = bpfx_bytecode::Program;
/// The ELF loader, whose errors [`Error::Elf`] carries and whose map declarations
/// [`MapSpec`] shares.
pub use bpfx_elf as elf;
pub use bpfx_elf::{ElfError, MapInit, MapType};
/// The execution contract both engines share: traps, guest memory, helpers, budget.
pub use bpfx_exec as exec;
pub use bpfx_exec::{
    AccessFault, Budget, DEFAULT_BUDGET, FaultRegion, GuestMemory, HelperError, HelperRet,
    RegionKind, Trap, TrapKind,
};
/// The x86-64 JIT, for [`Verified::compile_with`]'s options.
pub use bpfx_jit as jit;
pub use bpfx_jit::{CodeMemory, JitError, JitOptions};
/// The verifier, for its configuration, log and errors.
pub use bpfx_verifier as verifier;
pub use bpfx_verifier::{
    ArgKind, Assumptions, ContextAccess, ContextField, ContextLayout, FieldKind, HelperSig, Mode,
    RetKind, SockKind, SockRet, VerifiedProgram,
};
pub use bpfx_verifier::{VerifierLog, VerifyError, VerifyErrorKind};
pub use cgroup_dev::{
    BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE, BPF_DEVCG_DEV_BLOCK,
    BPF_DEVCG_DEV_CHAR, CGROUP_DEV_CTX_SIZE, DevAccess, cgroup_dev_layout, dev_allowed,
};
pub use cgroup_skb::{CgroupSkbHook, CgroupSkbVerdict, ip_ethertype};
pub use cgroup_sockopt::{
    SOCKOPT_CTX_SIZE, SOCKOPT_MAX_BUF, SockoptCall, SockoptHook, SockoptOutcome, SockoptResult,
    sockopt_layout,
};
pub use cgroup_sysctl::{
    BPF_F_SYSCTL_BASE_NAME, SYSCTL_CTX_SIZE, Sysctl, SysctlOutcome, sysctl_layout,
};
pub use context::{
    Context, LayoutError, PACKET_FIELD_SIZE, StructLayout, XDP_CTX_SIZE, XdpAction, XdpMeta,
    xdp_layout,
};
pub use ecn::SKB_ECN_SET_CE;
pub use error::{Error, RunError};
pub use fib::{
    BPF_FIB_LKUP_RET_BLACKHOLE, BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_FWD_DISABLED,
    BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_NO_SRC_ADDR, BPF_FIB_LKUP_RET_NOT_FWDED,
    BPF_FIB_LKUP_RET_PROHIBIT, BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LKUP_RET_UNREACHABLE,
    BPF_FIB_LKUP_RET_UNSUPP_LWT, BPF_FIB_LOOKUP_DIRECT, BPF_FIB_LOOKUP_MARK, BPF_FIB_LOOKUP_OUTPUT,
    BPF_FIB_LOOKUP_SKIP_NEIGH, BPF_FIB_LOOKUP_SRC, BPF_FIB_LOOKUP_TBID, FIB_LOOKUP,
    FIB_LOOKUP_SIZE, FibAnswer, FibFailure, FibRequest, FibRoute, FibTable, RT_TABLE_MAIN,
};
pub use helpers::TRACE_VPRINTK;
pub use helpers::{BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS, REDIRECT_MAP, RedirectTarget};
pub use helpers::{
    BPF_F_CTXLEN_MASK, MAP_LOOKUP_PERCPU_ELEM, MAP_PEEK_ELEM, MAP_POP_ELEM, MAP_PUSH_ELEM,
    PERF_EVENT_OUTPUT,
};
pub use helpers::{
    GET_PRANDOM_U32, GET_SMP_PROCESSOR_ID, KTIME_GET_NS, MAP_DELETE_ELEM, MAP_LOOKUP_ELEM,
    MAP_UPDATE_ELEM, MAX_TAIL_CALLS, RINGBUF_DISCARD, RINGBUF_OUTPUT, RINGBUF_RESERVE,
    RINGBUF_SUBMIT, TAIL_CALL, TRACE_PRINTK,
};
pub use lwt::{LwtAction, LwtHook, LwtOutcome, lwt_layout};
pub use map::{MAX_MAP_BYTES, Map, MapError, MapKind, MapSpec, MapSpecExt, UpdateFlag};
pub use maps::bloom::BLOOM_HASHES;
pub use maps::devmap::{MAX_CPUMAP_ENTRIES, MAX_CPUMAP_QSIZE};
pub use maps::lpm::{MAX_DATA_SIZE as LPM_MAX_DATA_SIZE, PREFIXLEN_SIZE as LPM_PREFIXLEN_SIZE};
pub use maps::of_maps::BPF_F_INNER_MAP;
pub use maps::percpu::MAX_PERCPU_VALUE;
pub use maps::perf::{BPF_F_CURRENT_CPU, BPF_F_INDEX_MASK, MIN_PERF_BUFFER_SIZE, PerfEvent};
pub use maps::sk_storage::{
    BPF_F_CLONE, MAX_VALUE_SIZE as SK_STORAGE_MAX_VALUE_SIZE, SK_STORAGE_SOCKETS,
};
pub use maps::stacktrace::{
    BPF_F_FAST_STACK_CMP, BPF_F_REUSE_STACKID, BPF_F_SKIP_FIELD_MASK, BPF_F_STACK_BUILD_ID,
    BPF_F_USER_STACK, PERF_MAX_STACK_DEPTH,
};
pub use maps::{BPF_F_NO_PREALLOC, DEFAULT_PERF_BUFFER_SIZE, MapConfig, default_cpus, host_bytes};
pub use memory::{DEFAULT_MEM_LIMIT, MAX_RESERVED_BYTES};
pub use object_map::ObjectMap;
pub use packet::{
    ETH_HLEN, Packet, SKB_SHARED_INFO_SIZE, XDP_FRAME_RESERVED, XDP_FRAME_SIZE, XDP_META_MAX,
    XDP_PACKET_HEADROOM,
};
pub use perf_event::{
    PERF_EVENT_DATA_SIZE, PERF_EVENT_VALUE_SIZE, PERF_PROG_READ_VALUE, PerfEventData,
    PerfEventValue, perf_event_layout,
};
pub use program::{
    ConfigError, ContextSource, Engine, Global, Object, Program, ProgramDef, ProgramInfo,
    ProgramRef, TimersRun, Verified, Vm, VmConfig, jit_code_estimate,
};
pub use sk_lookup::{
    BPF_SK_LOOKUP_F_NO_REUSEPORT, BPF_SK_LOOKUP_F_REPLACE, SK_LOOKUP_CTX_SIZE, SkLookup,
    SkLookupOutcome, sk_lookup_layout,
};
pub use sk_msg::{
    SK_MSG_CTX_SIZE, SK_MSG_MAX_ROOM, SK_MSG_ROOM, SkMsg, SkMsgOutcome, sk_msg_layout,
};
pub use sk_skb::{SK_PASS, SkAction, SkSkbOutcome};
pub use sk_storage::BPF_SK_STORAGE_GET_F_CREATE;
pub use skb::{
    SK_BUFF_SIZE, SKB_CTX_SIZE, SkbMeta, SocketVerdict, TcAction, cgroup_skb_layout, sk_skb_layout,
    socket_layout, tc_layout,
};
pub use skb_helpers::{
    BPF_F_HDR_FIELD_MASK, BPF_F_INVALIDATE_HASH, BPF_F_MARK_ENFORCE, BPF_F_MARK_MANGLED_0,
    BPF_F_PSEUDO_HDR, BPF_F_RECOMPUTE_CSUM, CSUM_DIFF, L3_CSUM_REPLACE, L4_CSUM_REPLACE,
    SKB_LOAD_BYTES, SKB_STORE_BYTES,
};
pub use skb_helpers::{
    BPF_HDR_START_MAC, BPF_HDR_START_NET, CSUM_UPDATE, GET_HASH_RECALC, SET_HASH, SKB_CHANGE_TYPE,
    SKB_LOAD_BYTES_RELATIVE, flow_hash,
};
pub use skb_packet::{
    BPF_ADJ_ROOM_MAC, BPF_ADJ_ROOM_NET, BPF_F_ADJ_ROOM_DECAP_L3_IPV4, BPF_F_ADJ_ROOM_DECAP_L3_IPV6,
    BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L2_MASK, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4,
    BPF_F_ADJ_ROOM_ENCAP_L3_IPV6, BPF_F_ADJ_ROOM_ENCAP_L4_GRE, BPF_F_ADJ_ROOM_ENCAP_L4_UDP,
    BPF_F_ADJ_ROOM_FIXED_GSO, BPF_F_ADJ_ROOM_NO_CSUM_RESET, CLONE_REDIRECT, ClonedPacket,
    SKB_ADJUST_ROOM, SKB_CHANGE_HEAD, SKB_CHANGE_PROTO, SKB_CHANGE_TAIL, SKB_MAX_ALLOC,
    SKB_PULL_DATA, SKB_VLAN_POP, SKB_VLAN_PUSH,
};
pub use sock::{
    BPF_SOCK_SIZE, BpfSock, GET_NETNS_COOKIE, GET_SOCKET_COOKIE, INIT_NETNS_COOKIE, SOCK_ADDR_SIZE,
    SOCK_OPS_ALL_CB_FLAGS, SOCK_OPS_CB_FLAGS, SOCK_OPS_CB_FLAGS_SET, SOCK_OPS_SIZE,
    SOCK_OPS_SND_CWND, SOCK_OPS_SND_SSTHRESH, SOCK_OPS_TXHASH, SockAddr, SockAddrHook, SockHook,
    SockIds, SockOps, sock_addr_layout, sock_layout, sock_ops_layout,
};
pub use sock_table::{
    BPF_F_CURRENT_NETNS, BPF_TCP_SOCK_SIZE, BpfTcpSock, GET_LISTENER_SOCK, IPPROTO_TCP,
    IPPROTO_UDP, SK_ASSIGN, SK_FULLSOCK, SK_LOOKUP_TCP, SK_LOOKUP_UDP, SK_RELEASE, SKC_LOOKUP_TCP,
    Socket, SocketId, SocketTable, TCP_ESTABLISHED, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SOCK,
    TCP_TIME_WAIT, TUPLE_IPV4_SIZE, TUPLE_IPV6_SIZE,
};
pub use sockopt::{
    GETSOCKOPT, SETSOCKOPT, SOCK_BUF_MAX, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, SOL_IP, SOL_IPV6,
    SOL_SOCKET, SOL_TCP, SockOptions, TCP_MSS_DEFAULT, TCP_RMEM_MAX, optname,
};
pub use spin_lock::{SPIN_LOCK, SPIN_UNLOCK};
pub use strncmp::STRNCMP;
pub use syncookie::{
    TCP_RAW_CHECK_SYNCOOKIE_IPV4, TCP_RAW_CHECK_SYNCOOKIE_IPV6, TCP_RAW_GEN_SYNCOOKIE_IPV4,
    TCP_RAW_GEN_SYNCOOKIE_IPV6,
};
pub use task::{
    GET_CURRENT_CGROUP_ID, GET_CURRENT_COMM, GET_CURRENT_PID_TGID, GET_CURRENT_TASK,
    GET_CURRENT_UID_GID, HZ, JIFFIES64, KTIME_GET_BOOT_NS, KTIME_GET_COARSE_NS, KTIME_GET_TAI_NS,
    PROBE_READ_KERNEL, PROBE_READ_KERNEL_STR, PROBE_READ_USER, PROBE_READ_USER_STR, ROOT_CGROUP_ID,
    TASK_COMM_LEN, Task,
};
pub use tc::TcOutcome;
pub use timer::{TIMER_CANCEL, TIMER_INIT, TIMER_SET_CALLBACK, TIMER_START};
pub use trace::{
    Attach, GET_ATTACH_COOKIE, GET_FUNC_ARG, GET_FUNC_ARG_CNT, GET_FUNC_IP, GET_FUNC_RET,
    GET_STACKID, MAX_TRACE_ARGS, MAX_TRACING_SLOTS, OVERRIDE_RETURN, PERF_MAX_TRACE_SIZE,
    PROBE_READ, PROBE_READ_STR, PT_REGS_SIZE, PtRegs, TRACE_HEADER_SIZE, args_layout,
    kprobe_layout, tracepoint_layout,
};
pub use tunnel::{
    SKB_GET_TUNNEL_KEY, SKB_SET_TUNNEL_KEY, TUNNEL_CSUM, TUNNEL_DONT_FRAGMENT, TUNNEL_KEY,
    TUNNEL_NOCACHE, TUNNEL_SEQ, TunnelKey,
};
pub use typed::{
    Array, BloomFilter, HashMap, LpmKey, LpmTrie, MapOfMaps, MapView, PerCpuArray, PerCpuHashMap,
    PerfEventArray, Pod, ProgramArray, Queue, RingBuf, Stack,
};
pub use xdp::XdpOutcome;
pub use xdp_helpers::{
    BPF_F_INGRESS, REDIRECT, REDIRECT_NEIGH, REDIRECT_PEER, XDP_ADJUST_HEAD, XDP_ADJUST_META,
    XDP_ADJUST_TAIL, XDP_GET_BUFF_LEN, XDP_LOAD_BYTES, XDP_STORE_BYTES,
};
