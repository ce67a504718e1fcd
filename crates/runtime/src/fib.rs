//! `bpf_fib_lookup` (69) through the embedder's forwarding table.
//!
//! `fib_lookup(ctx, params, plen, flags)` takes a `struct bpf_fib_lookup` with the kernel's
//! UAPI layout (`/usr/include/linux/bpf.h`, 64 bytes: [`FIB_LOOKUP_SIZE`]) and answers as the
//! kernel's does, with the routing decision asked of the embedder ([`crate::Vm::fib`], or a
//! ready-made [`FibTable`] through [`crate::Vm::fib_table`]); without one every lookup is
//! `BPF_FIB_LKUP_RET_NOT_FWDED`. The helper itself applies the kernel's rules around the
//! decision:
//!
//! - `-EINVAL` when `plen` is below the struct's size or `flags` holds a bit other than
//!   [`BPF_FIB_LOOKUP_DIRECT`], [`BPF_FIB_LOOKUP_OUTPUT`], [`BPF_FIB_LOOKUP_SKIP_NEIGH`],
//!   [`BPF_FIB_LOOKUP_TBID`], [`BPF_FIB_LOOKUP_SRC`] and [`BPF_FIB_LOOKUP_MARK`] (the kernel
//!   6.18's set, checked against it by `tests/xdp_oracle.rs`); `-EAFNOSUPPORT` for a family other
//!   than `AF_INET` and `AF_INET6`; `-ENODEV` when the embedder knows no device `ifindex`
//!   ([`FibFailure::NoDevice`]).
//! - The MTU check: from XDP always, from TC when `tot_len` is nonzero, `tot_len` above the
//!   route's MTU is `BPF_FIB_LKUP_RET_FRAG_NEEDED` with the MTU in `mtu_result`; from TC with
//!   `tot_len` 0 the socket buffer's length is checked against the egress device
//!   (`mtu` + the Ethernet header + one VLAN tag, the kernel's `is_skb_forwardable`) once the
//!   route is written, and `mtu_result` is the MTU either way. ([`FibRoute::mtu`] stands for
//!   both the route's and the device's MTU.)
//! - On a route, in the kernel's order for each family. IPv4: the MTU check, then `rt_metric`
//!   and `ifindex` (the egress device), the preferred source with [`BPF_FIB_LOOKUP_SRC`]
//!   (IPv4 always has one: 0.0.0.0 when the route names none), the gateway (if any) into
//!   `ipv4_dst`. IPv6: the gateway into `ipv6_dst`, `rt_metric`, `ifindex`, the preferred
//!   source (`BPF_FIB_LKUP_RET_NO_SRC_ADDR` when the route has none), then the MTU check (so
//!   a failing IPv6 lookup has written those fields). Then, with
//!   [`BPF_FIB_LOOKUP_SKIP_NEIGH`], the lookup stops; else a route whose neighbour is
//!   unknown is `BPF_FIB_LKUP_RET_NO_NEIGH` (the fields above stay written, as the kernel's
//!   do, for `redirect_neigh`-style fallbacks) and a known one writes `dmac` and `smac`. On
//!   success the VLAN fields are cleared and `mtu_result` holds the MTU.
//!
//! Offered to XDP and TC programs (the kernel's `xdp_func_proto` and `tc_cls_act_func_proto`
//! of Linux 6.18); `params` must be `plen` writable bytes (the verifier's `mem:r2` with size
//! r3), `ctx` the program's context.

use crate::context::Context;
use crate::helpers::{Cx, run_state};
use bpfx_exec::{GuestMemory, HelperError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// `bpf_fib_lookup`.
pub const FIB_LOOKUP: u32 = 69;
/// `sizeof(struct bpf_fib_lookup)`: the least `plen` the helper accepts.
pub const FIB_LOOKUP_SIZE: usize = 64;

/// `BPF_FIB_LOOKUP_DIRECT`: the table of the device (or [`BPF_FIB_LOOKUP_TBID`]'s) instead of
/// the policy rules.
pub const BPF_FIB_LOOKUP_DIRECT: u32 = 1 << 0;
/// `BPF_FIB_LOOKUP_OUTPUT`: look up from the egress side (`ifindex` is the output device).
pub const BPF_FIB_LOOKUP_OUTPUT: u32 = 1 << 1;
/// `BPF_FIB_LOOKUP_SKIP_NEIGH`: no neighbour lookup; `smac` and `dmac` are left alone.
pub const BPF_FIB_LOOKUP_SKIP_NEIGH: u32 = 1 << 2;
/// `BPF_FIB_LOOKUP_TBID`: with [`BPF_FIB_LOOKUP_DIRECT`], the table `params->tbid`.
pub const BPF_FIB_LOOKUP_TBID: u32 = 1 << 3;
/// `BPF_FIB_LOOKUP_SRC`: write the route's preferred source address.
pub const BPF_FIB_LOOKUP_SRC: u32 = 1 << 4;
/// `BPF_FIB_LOOKUP_MARK` (Linux 6.10, newer than some installed UAPI headers): policy routing
/// by `params->mark`, the `u32` that shares its bytes with the start of `smac`.
pub const BPF_FIB_LOOKUP_MARK: u32 = 1 << 5;
const FLAGS: u32 = BPF_FIB_LOOKUP_DIRECT
    | BPF_FIB_LOOKUP_OUTPUT
    | BPF_FIB_LOOKUP_SKIP_NEIGH
    | BPF_FIB_LOOKUP_TBID
    | BPF_FIB_LOOKUP_SRC
    | BPF_FIB_LOOKUP_MARK;

/// `BPF_FIB_LKUP_RET_SUCCESS`.
pub const BPF_FIB_LKUP_RET_SUCCESS: u64 = 0;
/// `BPF_FIB_LKUP_RET_BLACKHOLE`.
pub const BPF_FIB_LKUP_RET_BLACKHOLE: u64 = 1;
/// `BPF_FIB_LKUP_RET_UNREACHABLE`.
pub const BPF_FIB_LKUP_RET_UNREACHABLE: u64 = 2;
/// `BPF_FIB_LKUP_RET_PROHIBIT`.
pub const BPF_FIB_LKUP_RET_PROHIBIT: u64 = 3;
/// `BPF_FIB_LKUP_RET_NOT_FWDED`.
pub const BPF_FIB_LKUP_RET_NOT_FWDED: u64 = 4;
/// `BPF_FIB_LKUP_RET_FWD_DISABLED`.
pub const BPF_FIB_LKUP_RET_FWD_DISABLED: u64 = 5;
/// `BPF_FIB_LKUP_RET_UNSUPP_LWT`.
pub const BPF_FIB_LKUP_RET_UNSUPP_LWT: u64 = 6;
/// `BPF_FIB_LKUP_RET_NO_NEIGH`.
pub const BPF_FIB_LKUP_RET_NO_NEIGH: u64 = 7;
/// `BPF_FIB_LKUP_RET_FRAG_NEEDED`.
pub const BPF_FIB_LKUP_RET_FRAG_NEEDED: u64 = 8;
/// `BPF_FIB_LKUP_RET_NO_SRC_ADDR`.
pub const BPF_FIB_LKUP_RET_NO_SRC_ADDR: u64 = 9;

/// `RT_TABLE_MAIN`: the table a [`FibTable`] is unless told.
pub const RT_TABLE_MAIN: u32 = 254;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const EINVAL: u64 = (-22i64) as u64;
const ENODEV: u64 = (-19i64) as u64;
const EAFNOSUPPORT: u64 = (-97i64) as u64;
/// `ETH_HLEN + VLAN_HLEN`: what a device sends beyond its MTU.
const L2_ALLOWANCE: u64 = 14 + 4;

/// Offsets in `struct bpf_fib_lookup`.
const OFF_FAMILY: usize = 0;
const OFF_L4_PROTOCOL: usize = 1;
const OFF_SPORT: usize = 2;
const OFF_DPORT: usize = 4;
const OFF_TOT_LEN: usize = 6;
const OFF_IFINDEX: usize = 8;
const OFF_TOS: usize = 12;
const OFF_SRC: usize = 16;
const OFF_DST: usize = 32;
const OFF_VLAN: usize = 48;
const OFF_SMAC: usize = 52;
const OFF_DMAC: usize = 58;

/// What the program asks `fib_lookup` (the inputs of its `struct bpf_fib_lookup` and flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRequest {
    /// The source address (`ipv4_src` / `ipv6_src`); its family is the request's.
    pub src: IpAddr,
    /// The destination address (`ipv4_dst` / `ipv6_dst`).
    pub dst: IpAddr,
    /// The device: ingress, or egress with [`FibRequest::output`].
    pub ifindex: u32,
    /// `l4_protocol`, `sport`, `dport` (ports in host order): for policy rules.
    pub l4_protocol: u8,
    /// The source port.
    pub sport: u16,
    /// The destination port.
    pub dport: u16,
    /// `tos` (IPv4) or `flowinfo` (IPv6, host order).
    pub tos_or_flowinfo: u32,
    /// `tot_len` (the L3 length, for the MTU check the helper makes).
    pub tot_len: u16,
    /// The raw flags (`BPF_FIB_LOOKUP_*`).
    pub flags: u32,
    /// With [`BPF_FIB_LOOKUP_DIRECT`] and [`BPF_FIB_LOOKUP_TBID`]: the table `tbid` names.
    pub table: Option<u32>,
    /// With [`BPF_FIB_LOOKUP_MARK`]: the mark policy routing sees (`params->mark`).
    pub mark: Option<u32>,
    /// The calling program's context (XDP or TC).
    pub context: Context,
}

impl FibRequest {
    /// [`BPF_FIB_LOOKUP_DIRECT`]: the device's table (or [`FibRequest::table`]) without the
    /// policy rules.
    pub fn direct(&self) -> bool {
        self.flags & BPF_FIB_LOOKUP_DIRECT != 0
    }

    /// [`BPF_FIB_LOOKUP_OUTPUT`]: `ifindex` is the egress device.
    pub fn output(&self) -> bool {
        self.flags & BPF_FIB_LOOKUP_OUTPUT != 0
    }
}

/// A forwarding decision: where the packet goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRoute {
    /// The egress device.
    pub ifindex: u32,
    /// Its MAC address (`smac`).
    pub smac: [u8; 6],
    /// The next hop's MAC address (`dmac`); `None`: no neighbour entry
    /// (`BPF_FIB_LKUP_RET_NO_NEIGH` unless [`BPF_FIB_LOOKUP_SKIP_NEIGH`]).
    pub dmac: Option<[u8; 6]>,
    /// The route's MTU.
    pub mtu: u16,
    /// The gateway, written over the destination; `None` for a directly connected network.
    /// Of the request's family.
    pub gateway: Option<IpAddr>,
    /// The route's metric (`rt_metric`).
    pub metric: u32,
    /// The preferred source ([`BPF_FIB_LOOKUP_SRC`]); `None`: for IPv6
    /// `BPF_FIB_LKUP_RET_NO_SRC_ADDR` when asked, for IPv4 0.0.0.0 (the kernel always
    /// derives one). Of the request's family.
    pub src: Option<IpAddr>,
}

impl FibRoute {
    /// A route out of `ifindex` (MAC `smac`) to the neighbour `dmac`, MTU 1500, no gateway,
    /// metric 0, no preferred source.
    pub fn new(ifindex: u32, smac: [u8; 6], dmac: [u8; 6]) -> FibRoute {
        FibRoute {
            ifindex,
            smac,
            dmac: Some(dmac),
            mtu: 1500,
            gateway: None,
            metric: 0,
            src: None,
        }
    }
}

/// Why a packet is not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FibFailure {
    /// A blackhole route (`BPF_FIB_LKUP_RET_BLACKHOLE`).
    Blackhole,
    /// An unreachable route (`BPF_FIB_LKUP_RET_UNREACHABLE`).
    Unreachable,
    /// A prohibit route (`BPF_FIB_LKUP_RET_PROHIBIT`).
    Prohibit,
    /// No route, or one not to forward (local, broadcast…: `BPF_FIB_LKUP_RET_NOT_FWDED`).
    NotForwarded,
    /// Forwarding is off on device `ifindex` (`BPF_FIB_LKUP_RET_FWD_DISABLED`; the kernel
    /// checks it before the lookup, with [`BPF_FIB_LOOKUP_OUTPUT`] too).
    ForwardingDisabled,
    /// The route needs an encapsulation (`BPF_FIB_LKUP_RET_UNSUPP_LWT`).
    UnsupportedLwt,
    /// No device `ifindex` (`-ENODEV`).
    NoDevice,
}

impl FibFailure {
    /// What the helper returns for it.
    pub fn code(self) -> u64 {
        match self {
            FibFailure::Blackhole => BPF_FIB_LKUP_RET_BLACKHOLE,
            FibFailure::Unreachable => BPF_FIB_LKUP_RET_UNREACHABLE,
            FibFailure::Prohibit => BPF_FIB_LKUP_RET_PROHIBIT,
            FibFailure::NotForwarded => BPF_FIB_LKUP_RET_NOT_FWDED,
            FibFailure::ForwardingDisabled => BPF_FIB_LKUP_RET_FWD_DISABLED,
            FibFailure::UnsupportedLwt => BPF_FIB_LKUP_RET_UNSUPP_LWT,
            FibFailure::NoDevice => ENODEV,
        }
    }
}

/// The embedder's answer to a [`FibRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibAnswer {
    /// Forward along this route.
    Route(FibRoute),
    /// Do not forward.
    Fail(FibFailure),
}

/// The embedder's forwarding table: a function of the request.
pub(crate) type FibFn = Arc<dyn Fn(&FibRequest) -> FibAnswer + Send + Sync>;

/// A routing table answering [`FibRequest`]s by longest-prefix match, a ready-made
/// [`crate::Vm::fib`] ([`crate::Vm::fib_table`]): routes and rejecting entries (blackhole,
/// unreachable, prohibit) per prefix, whatever the request's mark (no policy rules); no match is `BPF_FIB_LKUP_RET_NOT_FWDED`, as the
/// kernel's lookup without a route. Its id ([`RT_TABLE_MAIN`] unless [`FibTable::with_id`])
/// is what `BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID` must name; another id is
/// `NOT_FWDED`, as a table the kernel does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibTable {
    id: u32,
    entries: Vec<(IpAddr, u8, FibAnswer)>,
}

impl Default for FibTable {
    fn default() -> FibTable {
        FibTable::new()
    }
}

impl FibTable {
    /// An empty table, id [`RT_TABLE_MAIN`].
    pub fn new() -> FibTable {
        FibTable::with_id(RT_TABLE_MAIN)
    }

    /// An empty table with id `id`.
    pub fn with_id(id: u32) -> FibTable {
        FibTable {
            id,
            entries: Vec::new(),
        }
    }

    /// Adds a route for `prefix/len` (`len` clamped to the family's width).
    pub fn route(self, prefix: IpAddr, len: u8, route: FibRoute) -> FibTable {
        self.entry(prefix, len, FibAnswer::Route(route))
    }

    /// Adds a rejecting entry for `prefix/len`.
    pub fn reject(self, prefix: IpAddr, len: u8, why: FibFailure) -> FibTable {
        self.entry(prefix, len, FibAnswer::Fail(why))
    }

    fn entry(mut self, prefix: IpAddr, len: u8, answer: FibAnswer) -> FibTable {
        let len = len.min(width(prefix));
        self.entries.push((prefix, len, answer));
        self
    }

    /// The answer for `req`: the entry of the longest prefix holding its destination (the
    /// first added among equals).
    pub fn lookup(&self, req: &FibRequest) -> FibAnswer {
        if req.table.is_some_and(|t| t != self.id) {
            return FibAnswer::Fail(FibFailure::NotForwarded);
        }
        let mut best: Option<(u8, &FibAnswer)> = None;
        for (prefix, len, answer) in &self.entries {
            if covers(*prefix, *len, req.dst) && best.is_none_or(|(l, _)| *len > l) {
                best = Some((*len, answer));
            }
        }
        best.map_or(FibAnswer::Fail(FibFailure::NotForwarded), |(_, a)| {
            a.clone()
        })
    }
}

fn width(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

fn covers(prefix: IpAddr, len: u8, addr: IpAddr) -> bool {
    let (p, a, w) = match (prefix, addr) {
        (IpAddr::V4(p), IpAddr::V4(a)) => (
            u128::from(u32::from(p)) << 96,
            u128::from(u32::from(a)) << 96,
            32,
        ),
        (IpAddr::V6(p), IpAddr::V6(a)) => (u128::from(p), u128::from(a), 128),
        _ => return false,
    };
    let len = len.min(w);
    let mask = if len == 0 { 0 } else { !0u128 << (128 - len) };
    p & mask == a & mask
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

fn addr(family: u8, bytes: &[u8]) -> IpAddr {
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        let b: [u8; 16] = bytes[..16].try_into().unwrap_or([0; 16]);
        IpAddr::V6(Ipv6Addr::from(b))
    }
}

/// Writes an address of the request's family at `off` (`None` when `a` is of the other
/// family: the embedder's answer is then refused).
fn put_addr(p: &mut [u8], off: usize, family: u8, a: IpAddr) -> Option<()> {
    match (family, a) {
        (AF_INET, IpAddr::V4(a)) => p[off..off + 4].copy_from_slice(&a.octets()),
        (AF_INET6, IpAddr::V6(a)) => p[off..off + 16].copy_from_slice(&a.octets()),
        _ => return None,
    }
    Some(())
}

/// `fib_lookup(ctx, params, plen, flags)`.
pub(crate) fn fib_lookup(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "fib_lookup";
    let (ctx, params, plen, flags) = (a[0], a[1], a[2] as u32 as i32, a[3] as u32);
    // The packet length a TC lookup without `tot_len` checks against the egress device.
    let skb_len = match cx.context {
        Context::Xdp => {
            let f = run_state(mem)?.frame;
            if f.active && ctx != f.ctx {
                return Err(err(format!(
                    "{NAME}: r1 ({ctx:#x}) is not the XDP context ({:#x})",
                    f.ctx
                )));
            }
            None
        }
        Context::Tc => {
            let f = run_state(mem)?.tc;
            if f.active && ctx != f.ctx {
                return Err(err(format!(
                    "{NAME}: r1 ({ctx:#x}) is not the TC context ({:#x})",
                    f.ctx
                )));
            }
            Some(f.data_end.saturating_sub(f.data))
        }
        other => {
            return Err(err(format!(
                "{NAME} needs an XDP or TC program, not {}",
                other.name()
            )));
        }
    };
    if plen < FIB_LOOKUP_SIZE as i32 || flags & !FLAGS != 0 {
        return Ok(EINVAL);
    }
    let mut p: [u8; FIB_LOOKUP_SIZE] = mem
        .read(params, FIB_LOOKUP_SIZE)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| err(format!("{NAME}: cannot read the parameters at {params:#x}")))?;
    let family = p[OFF_FAMILY];
    if family != AF_INET && family != AF_INET6 {
        return Ok(EAFNOSUPPORT);
    }
    let u16_be = |off: usize| u16::from_be_bytes([p[off], p[off + 1]]);
    let u32_ne = |off: usize| u32::from_le_bytes(p[off..off + 4].try_into().unwrap_or([0; 4]));
    let tot_len = u16::from_le_bytes([p[OFF_TOT_LEN], p[OFF_TOT_LEN + 1]]);
    let wants = |f: u32| flags & f != 0;
    let req = FibRequest {
        src: addr(family, &p[OFF_SRC..OFF_SRC + 16]),
        dst: addr(family, &p[OFF_DST..OFF_DST + 16]),
        ifindex: u32_ne(OFF_IFINDEX),
        l4_protocol: p[OFF_L4_PROTOCOL],
        sport: u16_be(OFF_SPORT),
        dport: u16_be(OFF_DPORT),
        tos_or_flowinfo: if family == AF_INET {
            u32::from(p[OFF_TOS])
        } else {
            u32::from_be_bytes(p[OFF_TOS..OFF_TOS + 4].try_into().unwrap_or([0; 4]))
        },
        tot_len,
        flags,
        table: (wants(BPF_FIB_LOOKUP_DIRECT) && wants(BPF_FIB_LOOKUP_TBID))
            .then(|| u32_ne(OFF_VLAN)),
        mark: wants(BPF_FIB_LOOKUP_MARK).then(|| u32_ne(OFF_SMAC)),
        context: cx.context,
    };
    let answer = match &cx.hooks.fib {
        Some(f) => f(&req),
        None => FibAnswer::Fail(FibFailure::NotForwarded),
    };
    let route = match answer {
        FibAnswer::Route(r) => r,
        FibAnswer::Fail(why) => return Ok(why.code()),
    };
    let wrong_family = || {
        err(format!(
            "{NAME}: the embedder's route to {} has an address of another family",
            req.dst
        ))
    };
    let mut done = |p: &[u8; FIB_LOOKUP_SIZE], code: u64| -> Result<u64, HelperError> {
        mem.write(params, p).ok_or_else(|| {
            err(format!(
                "{NAME}: cannot write the parameters at {params:#x}"
            ))
        })?;
        Ok(code)
    };
    // From XDP the check is always made, from TC when the program gave a length.
    let check_mtu = skb_len.is_none() || tot_len != 0;
    let too_long = check_mtu && tot_len > route.mtu;
    let frag_needed = |p: &mut [u8; FIB_LOOKUP_SIZE]| {
        p[OFF_TOT_LEN..OFF_TOT_LEN + 2].copy_from_slice(&route.mtu.to_le_bytes());
    };
    // The kernel's two families write the fields in different orders before they fail.
    if family == AF_INET {
        if too_long {
            frag_needed(&mut p);
            return done(&p, BPF_FIB_LKUP_RET_FRAG_NEEDED);
        }
        p[OFF_TOS..OFF_TOS + 4].copy_from_slice(&route.metric.to_le_bytes());
        p[OFF_IFINDEX..OFF_IFINDEX + 4].copy_from_slice(&route.ifindex.to_le_bytes());
        if wants(BPF_FIB_LOOKUP_SRC) {
            // IPv4 always derives a source: 0.0.0.0 when the device has no address.
            let src = route.src.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            put_addr(&mut p, OFF_SRC, family, src).ok_or_else(wrong_family)?;
        }
        if let Some(gw) = route.gateway {
            put_addr(&mut p, OFF_DST, family, gw).ok_or_else(wrong_family)?;
        }
    } else {
        if let Some(gw) = route.gateway {
            put_addr(&mut p, OFF_DST, family, gw).ok_or_else(wrong_family)?;
        }
        p[OFF_TOS..OFF_TOS + 4].copy_from_slice(&route.metric.to_le_bytes());
        p[OFF_IFINDEX..OFF_IFINDEX + 4].copy_from_slice(&route.ifindex.to_le_bytes());
        if wants(BPF_FIB_LOOKUP_SRC) {
            let Some(src) = route.src else {
                return done(&p, BPF_FIB_LKUP_RET_NO_SRC_ADDR);
            };
            put_addr(&mut p, OFF_SRC, family, src).ok_or_else(wrong_family)?;
        }
        if too_long {
            frag_needed(&mut p);
            return done(&p, BPF_FIB_LKUP_RET_FRAG_NEEDED);
        }
    }
    if !wants(BPF_FIB_LOOKUP_SKIP_NEIGH) {
        let Some(dmac) = route.dmac else {
            return done(&p, BPF_FIB_LKUP_RET_NO_NEIGH);
        };
        p[OFF_DMAC..OFF_DMAC + 6].copy_from_slice(&dmac);
        p[OFF_SMAC..OFF_SMAC + 6].copy_from_slice(&route.smac);
    }
    p[OFF_VLAN..OFF_VLAN + 4].fill(0);
    if route.mtu != 0 {
        p[OFF_TOT_LEN..OFF_TOT_LEN + 2].copy_from_slice(&route.mtu.to_le_bytes());
    }
    let code = match skb_len {
        Some(len) if !check_mtu && len > u64::from(route.mtu) + L2_ALLOWANCE => {
            BPF_FIB_LKUP_RET_FRAG_NEEDED
        }
        _ => BPF_FIB_LKUP_RET_SUCCESS,
    };
    done(&p, code)
}
