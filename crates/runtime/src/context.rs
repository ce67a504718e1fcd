//! Program contexts: what r1 points to, and the field tables that let objects built for the
//! kernel's `struct xdp_md` run on bpfx's real layout.
//!
//! The kernel's `xdp_md` has 32-bit `data`/`data_end` fields that its verifier converts into
//! loads of real pointers. bpfx does the same: the context is one input buffer
//! `[ctx struct | packet buffer]` whose struct holds 64-bit pointers into the buffer
//! ([`XDP_CTX_SIZE`] bytes, layout below; the buffer is a [`crate::Packet`]'s headroom, frame
//! and tailroom). Each context is described to the verifier as fields ([`xdp_layout`],
//! [`StructLayout::fields`]); the verifier checks every access through the context pointer
//! against them and rewrites it into an access of bpfx's layout.
//!
//! ```text
//! xdp_md (what the program was compiled for)   bpfx's XDP context (what r1 points to)
//!   0  u32 data                                  0  u64 data        (address of the packet)
//!   4  u32 data_end                              8  u64 data_end    (data + packet length)
//!   8  u32 data_meta                            16  u64 data_meta   (the metadata's start)
//!  12  u32 ingress_ifindex                      24  u32 ingress_ifindex
//!  16  u32 rx_queue_index                       28  u32 rx_queue_index
//!  20  u32 egress_ifindex                       32  u32 egress_ifindex
//!                                               40  packet buffer (headroom, frame, tailroom)
//! ```

use bpfx_verifier::{ContextField, ContextKind, ContextLayout, FieldKind};
use std::fmt;

/// Size of bpfx's XDP context struct; the packet buffer starts right after it.
pub const XDP_CTX_SIZE: usize = 40;

/// What a program's r1 points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    /// Plain memory: r1 = pointer to a buffer, r2 = its length.
    Memory,
    /// XDP: r1 = the context (`struct xdp_md` as the program sees it), over a packet.
    Xdp,
    /// TC (`BPF_PROG_TYPE_SCHED_CLS` and `SCHED_ACT`): r1 = the context (`struct __sk_buff`
    /// as the program sees it, with TC's rules: [`crate::tc_layout`]), over a packet.
    Tc,
    /// A socket filter (`BPF_PROG_TYPE_SOCKET_FILTER`): r1 = the context (`struct __sk_buff`
    /// with the socket filter's rules: [`crate::socket_layout`]), over a packet.
    Socket,
    /// An embedder-defined struct of `size` bytes; with `packet`, its 64-bit fields at those
    /// offsets hold the packet's `data` and `data_end` pointers (filled in by bpfx).
    Struct(StructLayout),
    /// A kprobe, kretprobe, uprobe or uretprobe (`BPF_PROG_TYPE_KPROBE`): r1 = x86-64's
    /// `struct pt_regs` ([`crate::PtRegs`]), read-only ([`crate::kprobe_layout`]).
    Kprobe,
    /// A tracepoint (`BPF_PROG_TYPE_TRACEPOINT`): r1 = the event's record, read-only past its
    /// 8-byte common header ([`crate::tracepoint_layout`]); `size` bounds the record (the
    /// section's default: [`crate::PERF_MAX_TRACE_SIZE`]).
    Tracepoint {
        /// The most bytes a record has (the verifier proves reads against it).
        size: u16,
    },
    /// A raw tracepoint (`BPF_PROG_TYPE_RAW_TRACEPOINT`): r1 = the tracepoint's arguments, an
    /// array of `args` read-only `u64` ([`crate::args_layout`]; the section's default:
    /// [`crate::MAX_TRACE_ARGS`]).
    RawTracepoint {
        /// The most arguments (slots of the array).
        args: u8,
    },
    /// fentry, fexit, fmod_ret and tp_btf (`BPF_PROG_TYPE_TRACING`): r1 = the traced
    /// function's arguments as `u64` slots, read-only, the return value after them for fexit
    /// and fmod_ret ([`crate::args_layout`]; the section's default:
    /// [`crate::MAX_TRACING_SLOTS`]).
    Tracing {
        /// The most slots (arguments, and the return value).
        args: u8,
    },
    /// A cgroup socket-address program (`BPF_PROG_TYPE_CGROUP_SOCK_ADDR`) at a hook: r1 =
    /// `struct bpf_sock_addr` ([`crate::SockAddr`]) with the hook's rules
    /// ([`crate::sock_addr_layout`]).
    SockAddr(crate::SockAddrHook),
    /// A cgroup socket program (`BPF_PROG_TYPE_CGROUP_SOCK`) at a hook: r1 = `struct
    /// bpf_sock` ([`crate::BpfSock`]) with the hook's rules ([`crate::sock_layout`]).
    Sock(crate::SockHook),
    /// A sock_ops program (`BPF_PROG_TYPE_SOCK_OPS`): r1 = `struct bpf_sock_ops`
    /// ([`crate::SockOps`], [`crate::sock_ops_layout`]).
    SockOps,
    /// A cgroup skb program (`BPF_PROG_TYPE_CGROUP_SKB`) at a hook: r1 = `struct __sk_buff`
    /// with the cgroup skb rules ([`crate::cgroup_skb_layout`]: a read-only packet from the
    /// network header, the socket's fields), over the IP packet.
    CgroupSkb(crate::CgroupSkbHook),
    /// An sk_skb program (`BPF_PROG_TYPE_SK_SKB`: a stream parser or verdict of a socket
    /// map): r1 = `struct __sk_buff` with the sk_skb rules ([`crate::sk_skb_layout`]: the
    /// stream data as a writable packet, the socket's fields), over the data.
    SkSkb,
    /// An sk_msg program (`BPF_PROG_TYPE_SK_MSG`: the verdict on each message a socket of a
    /// socket map sends): r1 = `struct sk_msg_md` ([`crate::sk_msg_layout`]: the message as a
    /// writable packet, the socket's fields), over the message ([`crate::SkMsg`]).
    SkMsg,
    /// An sk_lookup program (`BPF_PROG_TYPE_SK_LOOKUP`: selects the socket a connection
    /// request or datagram goes to): r1 = `struct bpf_sk_lookup` ([`crate::sk_lookup_layout`]:
    /// the lookup's addresses and ports, the socket selected so far), read-only.
    SkLookup,
    /// A lightweight tunnel program (`BPF_PROG_TYPE_LWT_IN`, `LWT_OUT`, `LWT_XMIT`,
    /// `LWT_SEG6LOCAL`) at its hook: r1 = `struct __sk_buff` with the lightweight tunnel rules
    /// ([`crate::lwt_layout`]), over the IP packet (writable at `lwt_xmit` only).
    Lwt(crate::LwtHook),
    /// A perf event program (`BPF_PROG_TYPE_PERF_EVENT`): r1 = `struct
    /// bpf_perf_event_data` ([`crate::PerfEventData`]), read-only
    /// ([`crate::perf_event_layout`]).
    PerfEvent,
    /// A cgroup device program (`BPF_PROG_TYPE_CGROUP_DEVICE`: allows or refuses a device
    /// access): r1 = `struct bpf_cgroup_dev_ctx` ([`crate::DevAccess`],
    /// [`crate::cgroup_dev_layout`]), read-only.
    CgroupDevice,
    /// A cgroup socket-option program (`BPF_PROG_TYPE_CGROUP_SOCKOPT`) at its hook
    /// (getsockopt or setsockopt): r1 = `struct bpf_sockopt` ([`crate::SockoptCall`],
    /// [`crate::sockopt_layout`]), the option's bytes a writable packet.
    CgroupSockopt(crate::SockoptHook),
    /// A cgroup sysctl program (`BPF_PROG_TYPE_CGROUP_SYSCTL`: allows or refuses an access to
    /// a `/proc/sys` file): r1 = `struct bpf_sysctl` ([`crate::Sysctl`],
    /// [`crate::sysctl_layout`]).
    CgroupSysctl,
    /// A program type bpfx does not model (LSM,
    /// iterators, …), named as the kernel's `enum bpf_prog_type` (without `BPF_PROG_TYPE_`,
    /// lower case): verifying it is refused with [`crate::Error::UnsupportedProgramType`], so
    /// it never runs as plain memory.
    Unsupported(&'static str),
}

/// The layout of an embedder-defined context struct.
///
/// # Invariants
/// A layout bpfx runs with has passed [`StructLayout::check`] (the fields are public, so every
/// entry point checks: [`StructLayout::new`], verification, and each run): `size > 0`, and the
/// `data` and `data_end` fields are 8 bytes each, 8-aligned, inside the struct and disjoint.
/// Overlapping fields would let the run's second write clobber half of the first, handing the
/// program a `data` pointer nothing proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StructLayout {
    /// Size of the struct in bytes (the packet, if any, follows it).
    pub size: u16,
    /// Offsets of the 64-bit `data` and `data_end` fields, if the context carries a packet.
    pub packet: Option<(u16, u16)>,
}

/// Size in bytes of the `data` and `data_end` fields of a struct context (64-bit pointers),
/// which is also the alignment they need.
pub const PACKET_FIELD_SIZE: u16 = 8;

/// Why a struct context layout is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A struct of 0 bytes.
    #[error("a struct context needs a size above 0")]
    Empty,
    /// A packet field at an offset that is not a multiple of 8.
    #[error("the {field} field at offset {off} is not 8-byte aligned")]
    Misaligned {
        /// `data` or `data_end`.
        field: &'static str,
        /// Its offset.
        off: u16,
    },
    /// A packet field that does not fit in the struct.
    #[error("the 8-byte {field} field at offset {off} does not lie inside the {size}-byte struct")]
    OutsideStruct {
        /// `data` or `data_end`.
        field: &'static str,
        /// Its offset.
        off: u16,
        /// The struct's size.
        size: u16,
    },
    /// The two packet fields share bytes.
    #[error("the 8-byte data (offset {data}) and data_end (offset {data_end}) fields overlap")]
    Overlap {
        /// Offset of `data`.
        data: u16,
        /// Offset of `data_end`.
        data_end: u16,
    },
    /// What the run wrote into the struct does not read back as the packet's bounds (the
    /// last line of defence behind [`StructLayout::check`]: the run is refused, never started).
    #[error(
        "the context's data ({data:#x}) and data_end ({data_end:#x}) do not bound the packet \
         [{start:#x}, {end:#x})"
    )]
    PacketBounds {
        /// `data` as read back.
        data: u64,
        /// `data_end` as read back.
        data_end: u64,
        /// The packet's first byte.
        start: u64,
        /// One past its last byte.
        end: u64,
    },
}

impl StructLayout {
    /// A checked layout ([`StructLayout::check`]).
    pub fn new(size: u16, packet: Option<(u16, u16)>) -> Result<StructLayout, LayoutError> {
        let layout = StructLayout { size, packet };
        layout.check()?;
        Ok(layout)
    }

    /// The one layout rule, applied wherever a layout enters bpfx (the C API, the Rust
    /// builder, verification, each run): a non-empty struct whose `data` and `data_end`
    /// fields, if any, are [`PACKET_FIELD_SIZE`] bytes, 8-aligned, inside the struct and
    /// pairwise disjoint.
    pub fn check(&self) -> Result<(), LayoutError> {
        if self.size == 0 {
            return Err(LayoutError::Empty);
        }
        let Some((data, data_end)) = self.packet else {
            return Ok(());
        };
        let n = PACKET_FIELD_SIZE;
        for (field, off) in [("data", data), ("data_end", data_end)] {
            if off % n != 0 {
                return Err(LayoutError::Misaligned { field, off });
            }
            if u32::from(off) + u32::from(n) > u32::from(self.size) {
                return Err(LayoutError::OutsideStruct {
                    field,
                    off,
                    size: self.size,
                });
            }
        }
        if data < data_end + n && data_end < data + n {
            return Err(LayoutError::Overlap { data, data_end });
        }
        Ok(())
    }
}

/// Writes the packet's bounds into the `data` / `data_end` fields of the context at the start
/// of `buf` (`[struct of size bytes | packet]`), then reads them back and refuses the run
/// unless `data <= data_end` bound exactly the packet inside `buf`: whatever got past
/// [`StructLayout::check`], no engine starts with a `data` pointer nothing proved.
pub(crate) fn fill_packet_fields(
    buf: &mut [u8],
    size: usize,
    data: u16,
    data_end: u16,
) -> Result<(), LayoutError> {
    let base = buf.as_ptr() as u64;
    // `size <= buf.len()` is checked below before either bound is used.
    let start = base.wrapping_add(size as u64);
    let end = base + buf.len() as u64;
    let (d, e) = (usize::from(data), usize::from(data_end));
    let field = |buf: &[u8], off: usize| {
        buf.get(off..off + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let bad = |data, data_end| LayoutError::PacketBounds {
        data,
        data_end,
        start,
        end,
    };
    if size > buf.len() || d + 8 > size || e + 8 > size {
        return Err(bad(0, 0));
    }
    buf[d..d + 8].copy_from_slice(&start.to_le_bytes());
    buf[e..e + 8].copy_from_slice(&end.to_le_bytes());
    let (got_d, got_e) = (field(buf, d).unwrap_or(0), field(buf, e).unwrap_or(0));
    if got_d != start || got_e != end || got_d > got_e {
        return Err(bad(got_d, got_e));
    }
    Ok(())
}

/// The bytes of `context`'s struct that belong to the host, as ranges of bpfx's real layout:
/// every byte no writable field covers (the packet pointers, the read-only scalars, and the
/// bytes no field names). The verifier refuses every store to them through the context
/// pointer, but in Checked mode a guarded store through any other pointer may reach them (a
/// guard admits the whole input, struct included), so the runtime writes them back before
/// every program of a run starts ([`crate::Program`]'s run loop): no program's proofs ever
/// rest on bytes another program wrote. Empty for plain memory.
pub(crate) fn host_owned(context: Context) -> Vec<std::ops::Range<usize>> {
    let (ContextKind::Fields(layout), Some(size)) = context.verifier_view(None) else {
        return Vec::new();
    };
    let Ok(size) = usize::try_from(size) else {
        return Vec::new();
    };
    let mut owned = vec![true; size];
    for f in layout.fields.iter().filter(|f| f.writable) {
        let len = if f.kind.is_pointer() { 8 } else { f.size };
        let start = usize::from(f.real_off);
        let end = (start + usize::from(len)).min(size);
        if let Some(bytes) = owned.get_mut(start..end) {
            bytes.fill(false);
        }
    }
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, _) in owned.iter().enumerate().filter(|(_, o)| **o) {
        match ranges.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => ranges.push(i..i + 1),
        }
    }
    ranges
}

impl Context {
    /// A tracepoint context of the largest record ([`crate::PERF_MAX_TRACE_SIZE`]).
    pub const TRACEPOINT: Context = Context::Tracepoint {
        size: crate::trace::PERF_MAX_TRACE_SIZE,
    };
    /// A raw tracepoint context of the most arguments ([`crate::MAX_TRACE_ARGS`]).
    pub const RAW_TRACEPOINT: Context = Context::RawTracepoint {
        args: crate::trace::MAX_TRACE_ARGS,
    };
    /// A tracing context of the most slots ([`crate::MAX_TRACING_SLOTS`]).
    pub const TRACING: Context = Context::Tracing {
        args: crate::trace::MAX_TRACING_SLOTS,
    };

    /// Whether the context is one of the read-only tracing contexts (kprobe, tracepoint, raw
    /// tracepoint, tracing).
    pub const fn is_tracing(self) -> bool {
        matches!(
            self,
            Context::Kprobe
                | Context::Tracepoint { .. }
                | Context::RawTracepoint { .. }
                | Context::Tracing { .. }
        )
    }

    /// Lower-case name (for an unsupported program type, the type's name).
    pub const fn name(self) -> &'static str {
        match self {
            Context::Memory => "memory",
            Context::Xdp => "xdp",
            Context::Tc => "tc",
            Context::Socket => "socket",
            Context::Struct(_) => "struct",
            Context::Kprobe => "kprobe",
            Context::Tracepoint { .. } => "tracepoint",
            Context::RawTracepoint { .. } => "raw_tracepoint",
            Context::Tracing { .. } => "tracing",
            Context::SockAddr(_) => "cgroup_sock_addr",
            Context::Sock(_) => "cgroup_sock",
            Context::SockOps => "sock_ops",
            Context::CgroupSkb(_) => "cgroup_skb",
            Context::SkSkb => "sk_skb",
            Context::SkMsg => "sk_msg",
            Context::SkLookup => "sk_lookup",
            Context::Lwt(h) => h.name(),
            Context::PerfEvent => "perf_event",
            Context::CgroupDevice => "cgroup_device",
            Context::CgroupSockopt(_) => "cgroup_sockopt",
            Context::CgroupSysctl => "cgroup_sysctl",
            Context::Unsupported(t) => t,
        }
    }

    /// The context named as the CLI's `--ctx` spells it: `memory`, `xdp`, `tc` (also
    /// `sched_cls`, `sched_act`, `classifier`, `action`), `socket` (also `socket_filter`),
    /// `kprobe` (also `uprobe`), `tracepoint` (also `tp`), `raw_tracepoint` (also `raw_tp`),
    /// `tracing` (also `fentry`, `fexit`, `tp_btf`); the tracing kinds with their default
    /// bounds; `sock_ops` (also `sockops`), `perf_event`, the cgroup socket hooks by
    /// libbpf's section name with or without `cgroup/` (`connect4`, `cgroup/sendmsg6`,
    /// `sock_create`, `post_bind4`, …), and cgroup skb programs by their sections
    /// (`cgroup_skb/ingress`, `cgroup_skb/egress`, `cgroup/skb`; `cgroup_skb` alone is ingress),
    /// sk_skb programs (`sk_skb`, also `sk_skb/stream_parser`, `sk_skb/stream_verdict`,
    /// `sk_skb/verdict`), sk_msg programs (`sk_msg`), sk_lookup programs (`sk_lookup`),
    /// lightweight tunnel programs (`lwt_in`, `lwt_out`, `lwt_xmit`, `lwt_seg6local`),
    /// cgroup device programs (`cgroup_device`, also `cgroup/dev`), cgroup sysctl programs
    /// (`cgroup_sysctl`, also `cgroup/sysctl`) and cgroup socket-option programs
    /// (`cgroup/getsockopt`, `cgroup/setsockopt`, with or without `cgroup/`).
    pub fn parse(name: &str) -> Option<Context> {
        match name {
            "sk_msg" => return Some(Context::SkMsg),
            "sk_lookup" => return Some(Context::SkLookup),
            "cgroup_device" | "cgroup/dev" => return Some(Context::CgroupDevice),
            "cgroup_sysctl" | "cgroup/sysctl" => return Some(Context::CgroupSysctl),
            "getsockopt" | "cgroup/getsockopt" => {
                return Some(Context::CgroupSockopt(crate::SockoptHook::Get));
            }
            "setsockopt" | "cgroup/setsockopt" => {
                return Some(Context::CgroupSockopt(crate::SockoptHook::Set));
            }
            n if let Some(h) = crate::LwtHook::from_name(n) => return Some(Context::Lwt(h)),
            "sk_skb" | "sk_skb/stream_parser" | "sk_skb/stream_verdict" | "sk_skb/verdict" => {
                return Some(Context::SkSkb);
            }
            "cgroup_skb" | "cgroup_skb/ingress" | "cgroup/skb" => {
                return Some(Context::CgroupSkb(crate::CgroupSkbHook::Ingress));
            }
            "cgroup_skb/egress" => return Some(Context::CgroupSkb(crate::CgroupSkbHook::Egress)),
            _ => {}
        }
        let hook = name.strip_prefix("cgroup/").unwrap_or(name);
        if let Some(h) = crate::SockAddrHook::from_name(hook) {
            return Some(Context::SockAddr(h));
        }
        if let Some(h) = crate::SockHook::from_name(hook) {
            return Some(Context::Sock(h));
        }
        Some(match name {
            "sock_ops" | "sockops" => Context::SockOps,
            "perf_event" => Context::PerfEvent,
            "memory" => Context::Memory,
            "kprobe" | "uprobe" => Context::Kprobe,
            "tracepoint" | "tp" => Context::TRACEPOINT,
            "raw_tracepoint" | "raw_tp" => Context::RAW_TRACEPOINT,
            "tracing" | "fentry" | "fexit" | "tp_btf" => Context::TRACING,
            "xdp" => Context::Xdp,
            "tc" | "sched_cls" | "sched_act" | "classifier" | "action" => Context::Tc,
            "socket" | "socket_filter" => Context::Socket,
            _ => return None,
        })
    }

    /// The context a section name implies: the program type libbpf gives the section (its
    /// rules: `name` matches exactly, `name+` matches `name` or `name/…`), then the names the
    /// kernel's samples and iproute2 used before libbpf fixed them, then plain memory.
    ///
    /// | section | context |
    /// |---|---|
    /// | `xdp`, `xdp/…`, `xdp.frags`, `xdp.frags/…`; legacy: any name starting with `xdp` (`xdp1`, `xdp_prog`), and `prog` (iproute2's default for `ip link … xdp`) | [`Context::Xdp`] |
    /// | `tc`, `tc/ingress`, `tc/egress`, `tcx/ingress`, `tcx/egress`, `netkit/primary`, `netkit/peer`, `classifier`, `action`; legacy: `classifier/…`, `action/…` (iproute2), and `tc` or `classifier` followed by `/`, `_` or `-` (`tc/entry`, `tc_cls`, `tc-ingress`, `classifier_ingress`: the prefix rule of cilium/ebpf before 0.13 and of libbpf before 1.0) | [`Context::Tc`] |
    /// | `socket`; legacy: any name starting with `socket` (`socket1`, the samples' form) | [`Context::Socket`] |
    /// | `kprobe`, `kretprobe`, `uprobe`, `uretprobe` (and `.s`, `.multi`, `.session`), `ksyscall`, `kretsyscall`, `usdt` (libbpf's `+` forms) | [`Context::Kprobe`] |
    /// | `tracepoint+`, `tp+` | [`Context::TRACEPOINT`] |
    /// | `raw_tracepoint+`, `raw_tp+` | [`Context::RAW_TRACEPOINT`] |
    /// | `tp_btf+`, `fentry+`, `fexit+`, `fmod_ret+` (and `.s`) | [`Context::TRACING`] |
    /// | `cgroup/<hook>` for each socket-address hook (`bind4`, `connect6`, `sendmsg_unix`, `recvmsg4`, `getpeername6`, `getsockname4`, …) | [`Context::SockAddr`] |
    /// | `cgroup/sock_create`, `cgroup/sock_release`, `cgroup/sock`, `cgroup/post_bind4`, `cgroup/post_bind6`; legacy: any other name starting with `cgroup/sock` (`cgroup/sock1`, the kernel samples' form, which libbpf before 1.0 matched by prefix) | [`Context::Sock`] |
    /// | `sockops` | [`Context::SockOps`] |
    /// | `cgroup_skb/ingress`, `cgroup/skb` (no attach type: the kernel's 0, ingress) | [`Context::CgroupSkb`] at [`crate::CgroupSkbHook::Ingress`] |
    /// | `cgroup_skb/egress` | [`Context::CgroupSkb`] at [`crate::CgroupSkbHook::Egress`] |
    /// | `sk_skb`, `sk_skb/stream_parser`, `sk_skb/stream_verdict`, `sk_skb/verdict` | [`Context::SkSkb`] |
    /// | `sk_msg` | [`Context::SkMsg`] |
    /// | `sk_lookup`; legacy: `sk_lookup/…` (libbpf before 1.0 and cilium/ebpf match the prefix) | [`Context::SkLookup`] |
    /// | `lwt_in`, `lwt_out`, `lwt_xmit`, `lwt_seg6local`; legacy: each followed by `/…` (libbpf before 1.0 matched the prefix) | [`Context::Lwt`] at that hook |
    /// | `perf_event` | [`Context::PerfEvent`] |
    /// | `cgroup/dev`; legacy: `cgroup/dev/…` (libbpf before 1.0 matched the prefix) | [`Context::CgroupDevice`] |
    /// | `cgroup/getsockopt`, `cgroup/setsockopt`; legacy: each followed by `/…` | [`Context::CgroupSockopt`] at that hook |
    /// | `cgroup/sysctl`; legacy: `cgroup/sysctl/…` | [`Context::CgroupSysctl`] |
    /// | writable raw tracepoints, LSM, iterators, other cgroup hooks, other `sk_skb/…` and `sk_msg/…` names, flow dissector, netfilter, struct_ops, syscall … (libbpf's sections) | [`Context::Unsupported`] |
    /// | anything else (`.text`, names bpfx's own tools use) | [`Context::Memory`] |
    pub fn for_section(section: &str) -> Context {
        // libbpf's `name+`: exactly `name`, or `name/` and more.
        let plus = |name: &str| {
            section
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        let exact = |names: &[&str]| names.contains(&section);
        if plus("xdp") || plus("xdp.frags") || section.starts_with("xdp") || section == "prog" {
            return Context::Xdp;
        }
        if exact(&[
            "tc",
            "tc/ingress",
            "tc/egress",
            "tcx/ingress",
            "tcx/egress",
            "netkit/primary",
            "netkit/peer",
        ]) || plus("classifier")
            || plus("action")
            || ["tc/", "tc_", "tc-", "classifier_", "classifier-"]
                .iter()
                .any(|p| section.starts_with(p))
        {
            return Context::Tc;
        }
        if section.starts_with("socket") {
            return Context::Socket;
        }
        let any_plus = |names: &[&str]| names.iter().any(|n| plus(n));
        if any_plus(&[
            "kprobe",
            "kretprobe",
            "uprobe",
            "uretprobe",
            "uprobe.s",
            "uretprobe.s",
            "ksyscall",
            "kretsyscall",
            "usdt",
            "usdt.s",
            "kprobe.multi",
            "kretprobe.multi",
            "uprobe.multi",
            "uretprobe.multi",
            "kprobe.session",
        ]) {
            return Context::Kprobe;
        }
        if any_plus(&["tracepoint", "tp"]) {
            return Context::TRACEPOINT;
        }
        if any_plus(&["raw_tracepoint", "raw_tp"]) {
            return Context::RAW_TRACEPOINT;
        }
        if any_plus(&[
            "tp_btf",
            "fentry",
            "fmod_ret",
            "fexit",
            "fentry.s",
            "fmod_ret.s",
            "fexit.s",
        ]) {
            return Context::TRACING;
        }
        match section {
            "sk_skb" | "sk_skb/stream_parser" | "sk_skb/stream_verdict" | "sk_skb/verdict" => {
                return Context::SkSkb;
            }
            "sk_msg" => return Context::SkMsg,
            _ if plus("sk_lookup") => return Context::SkLookup,
            _ if let Some(h) = crate::LwtHook::ALL.into_iter().find(|h| plus(h.name())) => {
                return Context::Lwt(h);
            }
            "cgroup_skb/ingress" | "cgroup/skb" => {
                return Context::CgroupSkb(crate::CgroupSkbHook::Ingress);
            }
            "cgroup_skb/egress" => return Context::CgroupSkb(crate::CgroupSkbHook::Egress),
            _ if plus("cgroup/dev") => return Context::CgroupDevice,
            _ if plus("cgroup/sysctl") => return Context::CgroupSysctl,
            _ if plus("cgroup/getsockopt") => {
                return Context::CgroupSockopt(crate::SockoptHook::Get);
            }
            _ if plus("cgroup/setsockopt") => {
                return Context::CgroupSockopt(crate::SockoptHook::Set);
            }
            _ => {}
        }
        if let Some(hook) = section.strip_prefix("cgroup/") {
            if let Some(h) = crate::SockAddrHook::from_name(hook) {
                return Context::SockAddr(h);
            }
            if let Some(h) = crate::SockHook::from_name(hook) {
                return Context::Sock(h);
            }
            if hook.starts_with("sock") {
                return Context::Sock(crate::SockHook::Create);
            }
        }
        if section == "sockops" {
            return Context::SockOps;
        }
        if section == "perf_event" {
            return Context::PerfEvent;
        }
        for (names, kind) in UNSUPPORTED_SECTIONS {
            if names.iter().any(|n| match n.strip_suffix('+') {
                Some(n) => plus(n),
                None => section == *n || section.starts_with(&format!("{n}/")),
            }) {
                return Context::Unsupported(kind);
            }
        }
        Context::Memory
    }

    /// The context a program's BTF declares: the struct its entry function's first parameter
    /// points to (`bpfx_elf::ProgramSpec::ctx_type_name`), where that struct belongs to one
    /// program type alone (the kernel's `bpf_types.h` pairs each type with its context
    /// struct). Used only where the section names no type ([`Context::for_section`] gives
    /// plain memory): the section wins when it names one, an explicit choice wins over both.
    ///
    /// | struct | context |
    /// |---|---|
    /// | `xdp_md` | [`Context::Xdp`] |
    /// | `__sk_buff` | [`Context::Tc`]: socket filters, cgroup skb, sk_skb, lwt and the flow dissector take it too, but a program in a free-named section is iproute2's (`tc filter … bpf obj … sec <name>`), which loads it as `sched_cls` |
    /// | `bpf_sock_ops` | [`Context::SockOps`] |
    /// | `bpf_perf_event_data` | [`Context::PerfEvent`] |
    /// | `sk_msg_md` | [`Context::SkMsg`] |
    /// | `bpf_sk_lookup` | [`Context::SkLookup`] |
    /// | `pt_regs` | [`Context::Kprobe`] (kprobes, uprobes and their syscall forms share the type) |
    /// | `bpf_sock` | [`Context::Sock`] at `sock_create`, the hook the kernel gives a `cgroup_sock` program loaded without an attach type |
    /// | `bpf_cgroup_dev_ctx` | [`Context::CgroupDevice`] |
    /// | `bpf_sysctl` | [`Context::CgroupSysctl`] |
    /// | `bpf_sockopt`, `sk_reuseport_md`, `bpf_nf_ctx` | [`Context::Unsupported`] (their one type) |
    ///
    /// Any other struct gives `None`, and so does `bpf_sock_addr`: its program type needs a
    /// hook (`connect4`, `bind6`, …) that the struct does not say, and which the kernel
    /// refuses to guess.
    pub fn for_btf_type(name: &str) -> Option<Context> {
        Some(match name {
            "xdp_md" => Context::Xdp,
            "__sk_buff" => Context::Tc,
            "bpf_sock_ops" => Context::SockOps,
            "bpf_perf_event_data" => Context::PerfEvent,
            "pt_regs" => Context::Kprobe,
            "bpf_sock" => Context::Sock(crate::SockHook::Create),
            "sk_msg_md" => Context::SkMsg,
            "bpf_sysctl" => Context::CgroupSysctl,
            "bpf_sockopt" => Context::Unsupported("cgroup_sockopt"),
            "bpf_cgroup_dev_ctx" => Context::CgroupDevice,
            "sk_reuseport_md" => Context::Unsupported("sk_reuseport"),
            "bpf_sk_lookup" => Context::SkLookup,
            "bpf_nf_ctx" => Context::Unsupported("netfilter"),
            _ => return None,
        })
    }
}

/// libbpf's sections of the program types bpfx does not model, and each type's name (a
/// trailing `+` is libbpf's "exactly, or followed by `/…`"; the others match exactly or
/// followed by `/…` too, which libbpf refuses and so never means anything else).
const UNSUPPORTED_SECTIONS: &[(&[&str], &str)] = &[
    (
        &["raw_tracepoint.w+", "raw_tp.w+"],
        "raw_tracepoint_writable",
    ),
    (&["iter+", "iter.s+"], "tracing"),
    (&["lsm+", "lsm.s+", "lsm_cgroup+"], "lsm"),
    (&["freplace+"], "ext"),
    // Other `cgroup_skb/…` names, which libbpf refuses.
    (&["cgroup_skb"], "cgroup_skb"),
    (&["cgroup"], "cgroup_sock_addr"),
    // Other `sk_skb/…` names, which libbpf refuses.
    (&["sk_skb"], "sk_skb"),
    // `sk_msg/…` names, which libbpf refuses.
    (&["sk_msg"], "sk_msg"),
    (&["lirc_mode2"], "lirc_mode2"),
    (&["flow_dissector"], "flow_dissector"),
    (&["sk_reuseport"], "sk_reuseport"),
    (&["netfilter"], "netfilter"),
    (&["struct_ops+", "struct_ops.s+"], "struct_ops"),
    (&["syscall"], "syscall"),
];

/// An XDP verdict: the program's return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0).
    Aborted,
    /// `XDP_DROP` (1).
    Drop,
    /// `XDP_PASS` (2).
    Pass,
    /// `XDP_TX` (3).
    Tx,
    /// `XDP_REDIRECT` (4).
    Redirect,
    /// Any other value (the kernel treats it as `XDP_ABORTED`).
    Unknown(u64),
}

impl XdpAction {
    /// The action a return value means.
    pub fn from_code(r0: u64) -> XdpAction {
        match r0 {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            v => XdpAction::Unknown(v),
        }
    }

    /// The return value.
    pub fn code(self) -> u64 {
        match self {
            XdpAction::Aborted => 0,
            XdpAction::Drop => 1,
            XdpAction::Pass => 2,
            XdpAction::Tx => 3,
            XdpAction::Redirect => 4,
            XdpAction::Unknown(v) => v,
        }
    }

    /// The kernel's name (`XDP_PASS`, …; `XDP_UNKNOWN` for other values).
    pub fn name(self) -> &'static str {
        match self {
            XdpAction::Aborted => "XDP_ABORTED",
            XdpAction::Drop => "XDP_DROP",
            XdpAction::Pass => "XDP_PASS",
            XdpAction::Tx => "XDP_TX",
            XdpAction::Redirect => "XDP_REDIRECT",
            XdpAction::Unknown(_) => "XDP_UNKNOWN",
        }
    }
}

impl fmt::Display for XdpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XdpAction::Unknown(v) => write!(f, "XDP_UNKNOWN({v})"),
            a => f.write_str(a.name()),
        }
    }
}

/// The receive-side metadata of an XDP run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct XdpMeta {
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `rx_queue_index`.
    pub rx_queue_index: u32,
    /// `egress_ifindex`.
    pub egress_ifindex: u32,
}

/// The program's view of `struct xdp_md` (the kernel's UAPI) and where each field lives in
/// bpfx's XDP context: the verifier checks every context access against it and converts it
/// (see `docs/runtime.md`, "Contexts"). As in the kernel, every field is read-only and must be
/// read whole (4 bytes, no narrow loads).
pub fn xdp_layout() -> ContextLayout {
    ContextLayout::new(vec![
        ContextField::new(0, 4, FieldKind::PacketStart, 0),
        ContextField::new(4, 4, FieldKind::PacketEnd, 8),
        ContextField::new(8, 4, FieldKind::PacketMeta, 16),
        ContextField::new(12, 4, FieldKind::Scalar, 24),
        ContextField::new(16, 4, FieldKind::Scalar, 28),
        ContextField::new(20, 4, FieldKind::Scalar, 32),
    ])
}

impl StructLayout {
    /// The fields the verifier checks accesses against: the packet's `data` and `data_end`
    /// (8 bytes, read-only) when the struct carries a packet, every other byte plain writable
    /// bytes, in the same layout for the program and for bpfx.
    pub fn fields(&self) -> ContextLayout {
        match self.packet {
            Some((data, data_end)) => ContextLayout::packet_struct(self.size, data, data_end),
            None => ContextLayout::bytes(self.size),
        }
    }
}

impl Context {
    /// What the verifier is told r1 points to, and the size of the input it proves accesses
    /// against (`input_size` for plain memory, the real struct's size otherwise).
    pub(crate) fn verifier_view(self, input_size: Option<u64>) -> (ContextKind, Option<u64>) {
        match self {
            Context::Memory => (ContextKind::Memory, input_size),
            Context::Xdp => (ContextKind::Fields(xdp_layout()), Some(XDP_CTX_SIZE as u64)),
            Context::Tc => (
                ContextKind::Fields(crate::skb::tc_layout()),
                Some(crate::skb::SKB_CTX_SIZE as u64),
            ),
            Context::Socket => (
                ContextKind::Fields(crate::skb::socket_layout()),
                Some(crate::skb::SKB_CTX_SIZE as u64),
            ),
            Context::Struct(layout) => (
                ContextKind::Fields(layout.fields()),
                Some(u64::from(layout.size)),
            ),
            Context::Kprobe => (
                ContextKind::Fields(crate::trace::kprobe_layout()),
                Some(crate::trace::PT_REGS_SIZE as u64),
            ),
            Context::Tracepoint { size } => (
                ContextKind::Fields(crate::trace::tracepoint_layout(size)),
                Some(u64::from(size)),
            ),
            Context::RawTracepoint { args } | Context::Tracing { args } => (
                ContextKind::Fields(crate::trace::args_layout(args)),
                Some(u64::from(args) * 8),
            ),
            Context::SockAddr(hook) => (
                ContextKind::Fields(crate::sock_addr_layout(hook)),
                Some(crate::SOCK_ADDR_SIZE as u64),
            ),
            Context::Sock(hook) => (
                ContextKind::Fields(crate::sock_layout(hook)),
                Some(crate::BPF_SOCK_SIZE as u64),
            ),
            Context::SockOps => (
                ContextKind::Fields(crate::sock_ops_layout()),
                Some(crate::SOCK_OPS_SIZE as u64),
            ),
            Context::CgroupSkb(hook) => (
                ContextKind::Fields(crate::skb::cgroup_skb_layout(hook)),
                Some(crate::skb::SKB_CTX_SIZE as u64),
            ),
            Context::SkSkb => (
                ContextKind::Fields(crate::skb::sk_skb_layout()),
                Some(crate::skb::SKB_CTX_SIZE as u64),
            ),
            Context::SkMsg => (
                ContextKind::Fields(crate::sk_msg_layout()),
                Some(crate::SK_MSG_CTX_SIZE as u64),
            ),
            Context::SkLookup => (
                ContextKind::Fields(crate::sk_lookup_layout()),
                Some(crate::SK_LOOKUP_CTX_SIZE as u64),
            ),
            Context::Lwt(hook) => (
                ContextKind::Fields(crate::lwt_layout(hook)),
                Some(crate::skb::SKB_CTX_SIZE as u64),
            ),
            Context::PerfEvent => (
                ContextKind::Fields(crate::perf_event_layout()),
                Some(crate::PERF_EVENT_DATA_SIZE as u64),
            ),
            Context::CgroupDevice => (
                ContextKind::Fields(crate::cgroup_dev_layout()),
                Some(crate::CGROUP_DEV_CTX_SIZE as u64),
            ),
            Context::CgroupSysctl => (
                ContextKind::Fields(crate::sysctl_layout()),
                Some(crate::SYSCTL_CTX_SIZE as u64),
            ),
            Context::CgroupSockopt(hook) => (
                ContextKind::Fields(crate::sockopt_layout(hook)),
                Some(crate::SOCKOPT_CTX_SIZE as u64),
            ),
            // Refused before the verifier runs (`ProgramRef::prepare`); the verifier would see
            // a context nothing may access.
            Context::Unsupported(_) => (ContextKind::Fields(ContextLayout::default()), Some(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_bytecode::{Op, Pc, Program, assemble};
    use bpfx_verifier::{Config, Mode, verify};

    /// The run's last line of defence: whatever layout reaches it, the fields must read back
    /// as the packet's exact bounds.
    #[test]
    fn packet_fields_that_do_not_read_back_refuse_the_run() {
        let mut buf = vec![0u8; 16 + 4];
        let base = buf.as_ptr() as u64;
        fill_packet_fields(&mut buf, 16, 8, 0).unwrap();
        assert_eq!(buf[8..16], (base + 16).to_le_bytes());
        assert_eq!(buf[0..8], (base + 20).to_le_bytes());
        // Overlapping fields: data_end's write clobbers half of data.
        let e = fill_packet_fields(&mut buf, 16, 4, 0).unwrap_err();
        assert!(
            matches!(e, LayoutError::PacketBounds { data, start, .. } if data != start),
            "{e}"
        );
        assert!(matches!(
            fill_packet_fields(&mut buf, 16, 0, 0),
            Err(LayoutError::PacketBounds { .. })
        ));
        // Fields or struct that do not fit: refused, not a panic.
        for (size, d, e) in [(16, 12, 0), (16, 0, 9), (21, 0, 8), (usize::MAX, 0, 8)] {
            assert!(
                fill_packet_fields(&mut buf, size, d, e).is_err(),
                "{size} {d} {e}"
            );
        }
    }

    #[test]
    // The expected values are lists of ranges; some lists have one.
    #[allow(clippy::single_range_in_vec_init)]
    fn the_host_owns_every_context_byte_no_writable_field_covers() {
        assert_eq!(host_owned(Context::Memory), []);
        assert_eq!(host_owned(Context::Unsupported("kprobe")), []);
        // XDP: nothing is writable.
        assert_eq!(host_owned(Context::Xdp), [0..XDP_CTX_SIZE]);
        // A socket filter writes cb[] (48..68) only.
        assert_eq!(host_owned(Context::Socket), [0..48, 68..216]);
        // TC also writes mark, queue_mapping, priority, tc_index, tc_classid and tstamp.
        assert_eq!(
            host_owned(Context::Tc),
            [0..8, 16..32, 36..44, 68..72, 76..152, 160..216]
        );
        // A cgroup skb program writes mark, priority, cb[] and tstamp.
        assert_eq!(
            host_owned(Context::CgroupSkb(crate::CgroupSkbHook::Egress)),
            [0..8, 12..32, 36..48, 68..152, 160..216]
        );
        // An sk_skb program writes priority and tc_index only.
        assert_eq!(host_owned(Context::SkSkb), [0..32, 36..44, 48..216]);
        // An sk_msg program writes nothing.
        assert_eq!(host_owned(Context::SkMsg), [0..crate::SK_MSG_CTX_SIZE]);
        assert_eq!(
            host_owned(Context::SkLookup),
            [0..crate::SK_LOOKUP_CTX_SIZE]
        );
        assert_eq!(
            host_owned(Context::CgroupDevice),
            [0..crate::CGROUP_DEV_CTX_SIZE]
        );
        // setsockopt writes level, optname and optlen; getsockopt optlen and retval.
        let so = |h| host_owned(Context::CgroupSockopt(h));
        assert_eq!(so(crate::SockoptHook::Set), [0..24, 36..40]);
        assert_eq!(so(crate::SockoptHook::Get), [0..32]);
        // A struct: its packet fields, or nothing.
        let s = |packet| Context::Struct(StructLayout::new(32, packet).unwrap());
        assert_eq!(host_owned(s(Some((8, 16)))), [8..24]);
        assert_eq!(host_owned(s(Some((24, 0)))), [0..8, 24..32]);
        assert_eq!(host_owned(s(None)), []);
        // The tracing contexts are read-only throughout.
        assert_eq!(host_owned(Context::Kprobe), [0..crate::PT_REGS_SIZE]);
        assert_eq!(host_owned(Context::Tracepoint { size: 11 }), [0..11]);
        assert_eq!(host_owned(Context::RawTracepoint { args: 3 }), [0..24]);
        assert_eq!(host_owned(Context::TRACING), [0..104]);
    }

    fn verified(text: &str, mode: Mode) -> Result<Program, bpfx_verifier::VerifyError> {
        let prog = Program::decode(assemble(text).unwrap()).unwrap();
        let (context, mem_size) = Context::Xdp.verifier_view(None);
        let cfg = Config {
            mode,
            mem_size,
            context,
            ..Config::default()
        };
        verify(prog, &cfg).map(|v| v.into_program())
    }

    fn loads(p: &Program) -> Vec<String> {
        p.iter()
            .filter(|(_, op)| matches!(op, Op::Load { .. }))
            .map(|(_, op)| op.to_string())
            .collect()
    }

    fn op(text: &str) -> String {
        let p = Program::decode(assemble(text).unwrap()).unwrap();
        p.get(Pc(0)).unwrap().to_string()
    }

    #[test]
    fn xdp_loads_are_converted_through_moves_spills_and_offsets() {
        let text = "mov r6, r1\n\
                    stxdw [r10-8], r6\n\
                    ldxw r2, [r1+0]\n\
                    ldxdw r7, [r10-8]\n\
                    ldxw r3, [r7+4]\n\
                    ldxw r4, [r6+12]\n\
                    add r6, 16\n\
                    ldxw r5, [r6+4]\n\
                    ldxw r5, [r6-12]\n\
                    mov r0, 2\n\
                    exit";
        for mode in [Mode::Checked, Mode::Strict] {
            let out = verified(text, mode).unwrap();
            let want = [
                "ldxdw r2, [r1+0]",
                "ldxdw r7, [r10-8]",
                "ldxdw r3, [r7+8]",
                "ldxw r4, [r6+24]",
                "ldxw r5, [r6+16]",
                "ldxdw r5, [r6-8]",
            ];
            assert_eq!(loads(&out), want.map(op), "{mode:?}");
        }
    }

    #[test]
    fn xdp_context_passed_to_a_subprogram_is_converted() {
        let out = verified(
            "call local +2\nmov r0, 2\nexit\nldxw r0, [r1+4]\nexit",
            Mode::Strict,
        )
        .unwrap();
        assert_eq!(out.get(Pc(3)).unwrap().to_string(), op("ldxdw r0, [r1+8]"));
    }

    #[test]
    fn xdp_accesses_that_match_no_field_are_errors_naming_the_pc() {
        for mode in [Mode::Checked, Mode::Strict] {
            for (text, pc, why) in [
                (
                    "stw [r1+0], 1\nmov r0, 0\nexit",
                    0,
                    "read-only context field at offset 0",
                ),
                (
                    "ldxw r0, [r1+2]\nexit",
                    0,
                    "invalid access to context at offset 2 size 4",
                ),
                (
                    "ldxh r0, [r1+12]\nexit",
                    0,
                    "invalid access to context at offset 12 size 2",
                ),
                (
                    "ldxdw r0, [r1+0]\nexit",
                    0,
                    "invalid access to context at offset 0 size 8",
                ),
                (
                    "ldxw r0, [r1+24]\nexit",
                    0,
                    "invalid access to context at offset 24 size 4",
                ),
                (
                    "add r1, 2\nldxw r0, [r1+4]\nexit",
                    1,
                    "invalid access to context at offset 6 size 4",
                ),
            ] {
                let e = verified(text, mode).unwrap_err();
                assert_eq!(e.pc, Pc(pc), "{mode:?} {text}: {e}");
                assert!(e.to_string().contains(why), "{mode:?} {text}: {e}");
            }
        }
        // The context on one path, the stack on the other: the join point keeps the two
        // paths apart (as the kernel explores them), and on the context's path the access
        // matches no field.
        let text = "ldxw r3, [r1+12]\njeq r3, 0, +1\nmov r1, r10\nldxw r0, [r1-4]\nexit";
        let e = verified(text, Mode::Checked).unwrap_err();
        assert_eq!(e.pc, Pc(3));
        assert!(
            e.to_string()
                .contains("invalid access to context at offset -4 size 4"),
            "{e}"
        );
        // A 32-bit copy of the context pointer is no longer followed: Checked mode keeps it
        // apart from scalars rather than let it read bpfx's struct unconverted.
        let e = verified("mov32 r2, r1\nldxw r0, [r2+4]\nexit", Mode::Checked).unwrap_err();
        assert_eq!(e.pc, Pc(1));
        // A spill overwritten by a scalar no longer holds the context: a scalar address.
        let p = "stxdw [r10-8], r1\nstw [r10-8], 0\nldxdw r2, [r10-8]\nldxw r0, [r2+0]\nexit";
        let out = verified(p, Mode::Checked).unwrap();
        assert_eq!(out.get(Pc(3)).unwrap().to_string(), op("ldxw r0, [r2+0]"));
    }

    #[test]
    fn one_instruction_reaching_two_fields_is_rejected() {
        // The same load reached with r1 at context+0 and at context+4.
        let text = "ldxw r3, [r1+12]\njeq r3, 0, +1\nadd r1, 4\nldxw r0, [r1+0]\nexit";
        for mode in [Mode::Checked, Mode::Strict] {
            let e = verified(text, mode).unwrap_err();
            assert_eq!(e.pc, Pc(3), "{mode:?}: {e}");
        }
        // The same subprogram called with the context and with the stack.
        let text =
            "call local +4\nmov r1, r10\nadd r1, -8\ncall local +1\nexit\nldxw r0, [r1+0]\nexit";
        let e = verified(text, Mode::Checked).unwrap_err();
        assert_eq!(e.pc, Pc(5), "{e}");
        assert!(e.to_string().contains("on one path"), "{e}");
    }
}
