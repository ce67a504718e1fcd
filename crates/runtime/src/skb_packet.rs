//! The TC helpers that move or resize the socket buffer's packet, with the kernel's semantics
//! and errnos (`/usr/include/linux/bpf.h`; limits and header bookkeeping as
//! `net/core/filter.c` applies them, checked against the kernel's test run in
//! `tests/tc_resize.rs`):
//!
//! - `skb_vlan_push(skb, proto, tci)` (18): with no VLAN tag in the metadata, puts the tag
//!   there (`vlan_present` 1, `vlan_proto`, `vlan_tci`: the device offloads it) and leaves the
//!   packet alone; with one, first writes that tag into the packet after the MAC addresses
//!   (4 bytes, `protocol` becomes its protocol). A `proto` other than 802.1Q (`0x8100`) or
//!   802.1ad (`0x88a8`), in network order, is taken as 802.1Q, as the kernel does.
//! - `skb_vlan_pop(skb)` (19): drops the tag of the metadata, or when there is none and
//!   `protocol` is a VLAN type, the packet's first tag (`protocol` becomes what it carried);
//!   then, if `protocol` is still a VLAN type, the packet's next tag moves into the metadata.
//!   A packet too short for a tag: `-ENOMEM`.
//! - `skb_change_proto(skb, proto, flags)` (31): IPv4 to IPv6 inserts 20 zero bytes after the
//!   link-layer header, IPv6 to IPv4 removes 20 there (the program rewrites the header);
//!   `protocol` changes and the hash is cleared. Flags: `-EINVAL`; another pair:
//!   `-ENOTSUPP`.
//! - `skb_adjust_room(skb, len_diff, mode, flags)` (50): inserts `len_diff` zero bytes (or
//!   removes `-len_diff`) after the link-layer header (`BPF_ADJ_ROOM_MAC`) or after the
//!   IPv4/IPv6 base header (`BPF_ADJ_ROOM_NET`); the packet must be IPv4 or IPv6
//!   (`-ENOTSUPP`). Flags: the encapsulation flags, `NO_CSUM_RESET`, `FIXED_GSO` and the
//!   decapsulation flags; anything else `-EINVAL`.
//! - `skb_change_tail(skb, len, flags)` (38): the packet becomes `len` bytes long (new bytes
//!   zeroed), at least its link-layer header and at most [`SKB_MAX_ALLOC`]: `-EINVAL`
//!   otherwise, or with flags.
//! - `skb_change_head(skb, len, flags)` (43): `len` zero bytes in front of the packet, a new
//!   link-layer header (the network header stays where it was).
//! - `skb_pull_data(skb, len)` (39): bpfx's packets are linear, so this only checks that `len`
//!   bytes are there (`-ENOMEM` otherwise).
//! - `clone_redirect(skb, ifindex, flags)` (13): a copy of the packet as it is now goes to
//!   `ifindex` (recorded as a [`ClonedPacket`] in the run's outcome); the packet itself
//!   continues. Flags other than `BPF_F_INGRESS`, or ifindex 0 (no device): `-EINVAL`.
//!
//! bpfx's packet buffers are not reallocated during a run (the engines hold them), so growing
//! past the [`crate::Packet`]'s headroom or tailroom fails with `-ENOMEM`, the kernel's answer
//! when it cannot reallocate. Each helper works on the run's record of the packet
//! ([`TcFrame`], kept by the host), and writes the host-owned context fields it changes
//! (`len`, `protocol`, `vlan_*`, `data`, `data_end`, `data_meta`) through [`GuestMemory`]; the
//! run loop writes them again from the record whenever it restores the context.

use crate::helpers::{Cx, RedirectTarget, run_state};
use crate::packet::ETH_HLEN;
use crate::skb::{SKB_DATA, SKB_DATA_END};
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_clone_redirect`.
pub const CLONE_REDIRECT: u32 = 13;
/// `bpf_skb_vlan_push`.
pub const SKB_VLAN_PUSH: u32 = 18;
/// `bpf_skb_vlan_pop`.
pub const SKB_VLAN_POP: u32 = 19;
/// `bpf_skb_change_proto`.
pub const SKB_CHANGE_PROTO: u32 = 31;
/// `bpf_skb_change_tail`.
pub const SKB_CHANGE_TAIL: u32 = 38;
/// `bpf_skb_pull_data`.
pub const SKB_PULL_DATA: u32 = 39;
/// `bpf_skb_change_head`.
pub const SKB_CHANGE_HEAD: u32 = 43;
/// `bpf_skb_adjust_room`.
pub const SKB_ADJUST_ROOM: u32 = 50;

/// `BPF_ADJ_ROOM_NET`: room after the network header.
pub const BPF_ADJ_ROOM_NET: u64 = 0;
/// `BPF_ADJ_ROOM_MAC`: room after the link-layer header.
pub const BPF_ADJ_ROOM_MAC: u64 = 1;
/// `BPF_F_ADJ_ROOM_FIXED_GSO`.
pub const BPF_F_ADJ_ROOM_FIXED_GSO: u64 = 1 << 0;
/// `BPF_F_ADJ_ROOM_ENCAP_L3_IPV4`.
pub const BPF_F_ADJ_ROOM_ENCAP_L3_IPV4: u64 = 1 << 1;
/// `BPF_F_ADJ_ROOM_ENCAP_L3_IPV6`.
pub const BPF_F_ADJ_ROOM_ENCAP_L3_IPV6: u64 = 1 << 2;
/// `BPF_F_ADJ_ROOM_ENCAP_L4_GRE`.
pub const BPF_F_ADJ_ROOM_ENCAP_L4_GRE: u64 = 1 << 3;
/// `BPF_F_ADJ_ROOM_ENCAP_L4_UDP`.
pub const BPF_F_ADJ_ROOM_ENCAP_L4_UDP: u64 = 1 << 4;
/// `BPF_F_ADJ_ROOM_NO_CSUM_RESET`.
pub const BPF_F_ADJ_ROOM_NO_CSUM_RESET: u64 = 1 << 5;
/// `BPF_F_ADJ_ROOM_ENCAP_L2_ETH`.
pub const BPF_F_ADJ_ROOM_ENCAP_L2_ETH: u64 = 1 << 6;
/// `BPF_F_ADJ_ROOM_DECAP_L3_IPV4` (Linux 6.3; not in older UAPI headers).
pub const BPF_F_ADJ_ROOM_DECAP_L3_IPV4: u64 = 1 << 7;
/// `BPF_F_ADJ_ROOM_DECAP_L3_IPV6` (Linux 6.3).
pub const BPF_F_ADJ_ROOM_DECAP_L3_IPV6: u64 = 1 << 8;
/// `BPF_F_ADJ_ROOM_ENCAP_L2(len)`: the inner MAC header's length, in bits 56..64.
pub const BPF_F_ADJ_ROOM_ENCAP_L2_MASK: u64 = 0xff << 56;

/// The kernel's `SKB_MAX_ALLOC` on x86-64 (four pages less the shared info): the longest
/// packet `skb_change_tail`, `skb_change_head` and `skb_adjust_room` make (bpfx models no
/// device, whose MTU would set it instead).
pub const SKB_MAX_ALLOC: u64 = 4 * 4096 - crate::packet::SKB_SHARED_INFO_SIZE as u64;

const ENCAP_L3: u64 = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
const DECAP_L3: u64 = BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
/// The kernel's `BPF_F_ADJ_ROOM_MASK`, and `NO_CSUM_RESET`.
const ADJ_ROOM_FLAGS: u64 = BPF_F_ADJ_ROOM_FIXED_GSO
    | ENCAP_L3
    | BPF_F_ADJ_ROOM_ENCAP_L4_GRE
    | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
    | BPF_F_ADJ_ROOM_ENCAP_L2_ETH
    | BPF_F_ADJ_ROOM_ENCAP_L2_MASK
    | DECAP_L3
    | BPF_F_ADJ_ROOM_NO_CSUM_RESET;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HLEN: u64 = 4;
const IPV4_HLEN: u64 = 20;
const IPV6_HLEN: u64 = 40;

const EINVAL: u64 = (-22i64) as u64;
const EFAULT: u64 = (-14i64) as u64;
const ENOMEM: u64 = (-12i64) as u64;
const EALREADY: u64 = (-114i64) as u64;
const ENOTSUPP: u64 = (-524i64) as u64;

/// Offsets in bpfx's socket-buffer struct of the host-owned fields the helpers change.
const CTX_LEN: u64 = 0;
const CTX_PROTOCOL: u64 = 16;
const CTX_VLAN_PRESENT: u64 = 20;
const CTX_VLAN_TCI: u64 = 24;
const CTX_VLAN_PROTO: u64 = 28;
const CTX_DATA_META: u64 = 208;

/// A copy of the packet `clone_redirect` sent to another device while the program went on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClonedPacket {
    /// Where it went ([`RedirectTarget::Ifindex`]).
    pub target: RedirectTarget,
    /// Its bytes, as the packet was at the call.
    pub packet: Vec<u8>,
    /// The VLAN tag in its metadata at the call, as (`vlan_proto`, `vlan_tci`).
    pub vlan: Option<(u16, u16)>,
}

/// The socket buffer of the running TC program as the host keeps it: where the packet is (as
/// guest addresses) and the host-owned fields the resizing helpers change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcFrame {
    /// Whether a TC run on a packet buffer is under way.
    pub(crate) active: bool,
    /// The context struct's address (what r1 holds at entry).
    pub(crate) ctx: u64,
    /// The buffer's first byte (the headroom's start) and one past its last.
    pub(crate) hard_start: u64,
    pub(crate) hard_end: u64,
    /// `data` and `data_end`.
    pub(crate) data: u64,
    pub(crate) data_end: u64,
    /// The network header's offset from `data` (the kernel's `skb_network_offset`):
    /// [`ETH_HLEN`] at the start, more after `skb_change_head`, at least [`ETH_HLEN`] again
    /// after a VLAN tag is popped from the packet.
    pub(crate) net_off: u64,
    /// `protocol`, `vlan_proto`, `vlan_tci` (host order), and whether a tag is present.
    pub(crate) protocol: u16,
    pub(crate) vlan_proto: u16,
    pub(crate) vlan_tci: u16,
    pub(crate) vlan_present: bool,
    /// Whether `skb_adjust_room` made room for a tunnel header (the kernel's
    /// `skb->encapsulation`).
    pub(crate) encapsulation: bool,
    /// The last helper that moved `data` or `data_end`.
    pub(crate) moved_by: Option<&'static str>,
    /// Whether the packet must stay where it is: the program has legacy packet loads, which
    /// the engines bound by the run's input (the packet as it started), so the run has no
    /// headroom or tailroom and a helper that would move `data` or `data_end` fails the run.
    pub(crate) fixed: bool,
}

impl TcFrame {
    /// Fails the run when the packet may not move ([`TcFrame::fixed`]).
    fn movable(&self, name: &str) -> Result<(), HelperError> {
        if self.fixed {
            return Err(err(format!(
                "{name} would move the packet of a program with legacy packet loads \
                 (ldabs/ldind), which bpfx bounds by the packet as the run started"
            )));
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data_end - self.data
    }

    /// The host-owned context fields this record sets, as (offset, size, value).
    pub(crate) fn fields(&self) -> [(u64, usize, u64); 8] {
        let be16 = |v: u16| u64::from(u16::from_ne_bytes(v.to_be_bytes()));
        [
            (CTX_LEN, 4, self.len() & 0xffff_ffff),
            (CTX_PROTOCOL, 4, be16(self.protocol)),
            (CTX_VLAN_PRESENT, 4, u64::from(self.vlan_present)),
            (CTX_VLAN_TCI, 4, u64::from(self.vlan_tci)),
            (CTX_VLAN_PROTO, 4, be16(self.vlan_proto)),
            (u64::from(SKB_DATA), 8, self.data),
            (u64::from(SKB_DATA_END), 8, self.data_end),
            (CTX_DATA_META, 8, self.data),
        ]
    }

    /// Writes the record's fields into the context struct at the start of `buf` (a run's
    /// input; a shorter one is left alone).
    pub(crate) fn write_into(&self, buf: &mut [u8]) {
        for (off, size, value) in self.fields() {
            let at = off as usize;
            if let Some(dst) = buf.get_mut(at..at + size) {
                dst.copy_from_slice(&value.to_le_bytes()[..size]);
            }
        }
    }
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// The running TC packet, checked to belong to a TC run whose context `ctx` is.
fn frame(mem: &mut GuestMemory<'_>, ctx: u64, name: &str) -> Result<TcFrame, HelperError> {
    let f = run_state(mem)?.tc;
    if !f.active {
        return Err(err(format!(
            "{name} needs a TC program run on a packet buffer"
        )));
    }
    if ctx != f.ctx {
        return Err(err(format!(
            "{name}: r1 ({ctx:#x}) is not the socket buffer ({:#x})",
            f.ctx
        )));
    }
    Ok(f)
}

/// Writes `f`'s fields into the context and records it as the run's packet.
fn commit(mem: &mut GuestMemory<'_>, f: TcFrame, name: &str) -> Result<(), HelperError> {
    for (off, size, value) in f.fields() {
        mem.store(f.ctx + off, size, value)
            .ok_or_else(|| err(format!("{name}: cannot write the context")))?;
    }
    run_state(mem)?.tc = f;
    Ok(())
}

fn read(mem: &mut GuestMemory<'_>, at: u64, n: u64, name: &str) -> Result<Vec<u8>, HelperError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    mem.read(at, n as usize)
        .ok_or_else(|| err(format!("{name}: cannot read the packet")))
}

fn write(mem: &mut GuestMemory<'_>, at: u64, bytes: &[u8], name: &str) -> Result<(), HelperError> {
    if bytes.is_empty() {
        return Ok(());
    }
    mem.write(at, bytes)
        .ok_or_else(|| err(format!("{name}: cannot write the packet")))
}

/// Inserts `n` zero bytes at offset `off` of the packet, moving the first `off` bytes down
/// into the headroom; `false` (nothing changed) when the headroom is too small.
fn push_at(
    mem: &mut GuestMemory<'_>,
    f: &mut TcFrame,
    off: u64,
    n: u64,
    name: &'static str,
) -> Result<bool, HelperError> {
    f.movable(name)?;
    if f.data - f.hard_start < n {
        return Ok(false);
    }
    let head = read(mem, f.data, off, name)?;
    let data = f.data - n;
    write(mem, data, &head, name)?;
    write(mem, data + off, &vec![0; n as usize], name)?;
    (f.data, f.moved_by) = (data, Some(name));
    Ok(true)
}

/// Removes `n` bytes at offset `off` of the packet (`off + n` within it), moving the first
/// `off` bytes up.
fn pop_at(
    mem: &mut GuestMemory<'_>,
    f: &mut TcFrame,
    off: u64,
    n: u64,
    name: &'static str,
) -> Result<(), HelperError> {
    f.movable(name)?;
    let head = read(mem, f.data, off, name)?;
    write(mem, f.data + n, &head, name)?;
    (f.data, f.moved_by) = (f.data + n, Some(name));
    Ok(())
}

fn be16_at(mem: &mut GuestMemory<'_>, at: u64, name: &str) -> Result<u16, HelperError> {
    let b = read(mem, at, 2, name)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn is_vlan(proto: u16) -> bool {
    matches!(proto, ETH_P_8021Q | ETH_P_8021AD)
}

/// `skb_vlan_push(skb, vlan_proto, vlan_tci)`.
pub(crate) fn skb_vlan_push(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_vlan_push";
    let mut f = frame(mem, a[0], NAME)?;
    // The argument is a `__be16`: its value in network order.
    let mut proto = u16::from_be(a[1] as u16);
    if !is_vlan(proto) {
        proto = ETH_P_8021Q;
    }
    if f.vlan_present {
        // The offloaded tag goes into the packet, after the MAC addresses.
        if f.len() < ETH_HLEN as u64 {
            return Ok(EINVAL);
        }
        if !push_at(mem, &mut f, 12, VLAN_HLEN, NAME)? {
            return Ok(ENOMEM);
        }
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&f.vlan_proto.to_be_bytes());
        tag[2..].copy_from_slice(&f.vlan_tci.to_be_bytes());
        write(mem, f.data + 12, &tag, NAME)?;
        f.protocol = f.vlan_proto;
        // The kernel moves the network header down with the tag: it stays `net_off` bytes
        // from the start (the kernel's test run shows it).
    }
    (f.vlan_present, f.vlan_proto, f.vlan_tci) = (true, proto, a[2] as u16);
    commit(mem, f, NAME)?;
    Ok(0)
}

/// Removes the packet's first VLAN tag (after the MAC addresses): its TCI, or `None` when the
/// packet is too short for one.
fn pop_packet_tag(
    mem: &mut GuestMemory<'_>,
    f: &mut TcFrame,
    name: &'static str,
) -> Result<Option<u16>, HelperError> {
    if f.len() < ETH_HLEN as u64 + VLAN_HLEN {
        return Ok(None);
    }
    let tci = be16_at(mem, f.data + 14, name)?;
    let inner = be16_at(mem, f.data + 16, name)?;
    // What the tag carried (the kernel's `vlan_set_encap_proto`): an EtherType, or an
    // 802.3 frame (raw IPX when its payload starts 0xffff) or an 802.2 one.
    f.protocol = if inner >= 0x600 {
        inner
    } else if f.len() >= 20 && be16_at(mem, f.data + 18, name)? == 0xffff {
        0x0001
    } else {
        0x0004
    };
    pop_at(mem, f, 12, VLAN_HLEN, name)?;
    f.net_off = f.net_off.saturating_sub(VLAN_HLEN).max(ETH_HLEN as u64);
    Ok(Some(tci))
}

/// `skb_vlan_pop(skb)`.
pub(crate) fn skb_vlan_pop(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_vlan_pop";
    let mut f = frame(mem, a[0], NAME)?;
    if f.vlan_present {
        (f.vlan_present, f.vlan_proto, f.vlan_tci) = (false, 0, 0);
    } else if !is_vlan(f.protocol) {
        return Ok(0);
    } else if pop_packet_tag(mem, &mut f, NAME)?.is_none() {
        return Ok(ENOMEM);
    }
    let mut ret = 0;
    if is_vlan(f.protocol) {
        // The next tag moves into the metadata.
        let proto = f.protocol;
        match pop_packet_tag(mem, &mut f, NAME)? {
            Some(tci) => (f.vlan_present, f.vlan_proto, f.vlan_tci) = (true, proto, tci),
            None => ret = ENOMEM,
        }
    }
    commit(mem, f, NAME)?;
    Ok(ret)
}

/// `skb_change_proto(skb, proto, flags)`.
pub(crate) fn skb_change_proto(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_change_proto";
    let mut f = frame(mem, a[0], NAME)?;
    if a[2] != 0 {
        return Ok(EINVAL);
    }
    let to = u16::from_be(a[1] as u16);
    let (grow, off) = (IPV6_HLEN - IPV4_HLEN, f.net_off);
    match (f.protocol, to) {
        (ETH_P_IP, ETH_P_IPV6) => {
            if !push_at(mem, &mut f, off, grow, NAME)? {
                return Ok(ENOMEM);
            }
        }
        (ETH_P_IPV6, ETH_P_IP) => {
            if off + grow > f.len() {
                return Ok(ENOMEM);
            }
            pop_at(mem, &mut f, off, grow, NAME)?;
        }
        _ => return Ok(ENOTSUPP),
    }
    f.protocol = to;
    mem.store(f.ctx + crate::skb_helpers::HASH, 4, 0)
        .ok_or_else(|| err(format!("{NAME}: cannot clear the context's hash")))?;
    run_state(mem)?.skb_hash = Some(0);
    commit(mem, f, NAME)?;
    Ok(0)
}

/// `skb_adjust_room(skb, len_diff, mode, flags)`.
pub(crate) fn skb_adjust_room(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_adjust_room";
    let mut f = frame(mem, a[0], NAME)?;
    let diff = i64::from(a[1] as u32 as i32);
    let (mode, flags) = (a[2] & 0xffff_ffff, a[3]);
    let (shrink, n) = (diff < 0, diff.unsigned_abs());
    if flags & !ADJ_ROOM_FLAGS != 0 {
        return Ok(EINVAL);
    }
    if n > 0xfff {
        return Ok(EFAULT);
    }
    let base = match f.protocol {
        ETH_P_IP => IPV4_HLEN,
        ETH_P_IPV6 => IPV6_HLEN,
        _ => return Ok(ENOTSUPP),
    };
    let off = match mode {
        BPF_ADJ_ROOM_MAC => f.net_off,
        BPF_ADJ_ROOM_NET => f.net_off + base,
        _ => return Ok(ENOTSUPP),
    };
    let mut min = base;
    if flags & DECAP_L3 != 0 {
        if !shrink {
            return Ok(EINVAL);
        }
        min = match flags & DECAP_L3 {
            BPF_F_ADJ_ROOM_DECAP_L3_IPV4 => IPV4_HLEN,
            BPF_F_ADJ_ROOM_DECAP_L3_IPV6 => IPV6_HLEN,
            _ => return Ok(EINVAL),
        };
    }
    let cur = f.len().saturating_sub(f.net_off);
    if (shrink && (n >= cur || cur - n < min)) || (!shrink && f.len() + n > SKB_MAX_ALLOC) {
        return Ok(ENOTSUPP);
    }
    if shrink {
        if flags & !(BPF_F_ADJ_ROOM_FIXED_GSO | DECAP_L3 | BPF_F_ADJ_ROOM_NO_CSUM_RESET) != 0 {
            return Ok(EINVAL);
        }
        if off + n > f.len() {
            return Ok(ENOMEM);
        }
        pop_at(mem, &mut f, off, n, NAME)?;
        f.protocol = match (f.protocol, flags & DECAP_L3) {
            (ETH_P_IP, BPF_F_ADJ_ROOM_DECAP_L3_IPV6) => ETH_P_IPV6,
            (ETH_P_IPV6, BPF_F_ADJ_ROOM_DECAP_L3_IPV4) => ETH_P_IP,
            (p, _) => p,
        };
    } else {
        let encap = flags & ENCAP_L3 != 0;
        if encap {
            let inner_mac = (flags & BPF_F_ADJ_ROOM_ENCAP_L2_MASK) >> 56;
            if flags & ENCAP_L3 == ENCAP_L3
                || flags & BPF_F_ADJ_ROOM_ENCAP_L4_GRE != 0
                    && flags & BPF_F_ADJ_ROOM_ENCAP_L4_UDP != 0
                || flags & BPF_F_ADJ_ROOM_ENCAP_L2_ETH != 0 && inner_mac < ETH_HLEN as u64
            {
                return Ok(EINVAL);
            }
            if f.encapsulation {
                return Ok(EALREADY);
            }
            if inner_mac > n {
                return Ok(EINVAL);
            }
        }
        if !push_at(mem, &mut f, off, n, NAME)? {
            return Ok(ENOMEM);
        }
        if encap {
            f.encapsulation = true;
            f.protocol = match (f.protocol, flags & ENCAP_L3) {
                (ETH_P_IP, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) => ETH_P_IPV6,
                (ETH_P_IPV6, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) => ETH_P_IP,
                (p, _) => p,
            };
        }
    }
    commit(mem, f, NAME)?;
    Ok(0)
}

/// `skb_change_tail(skb, len, flags)`.
pub(crate) fn skb_change_tail(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_change_tail";
    let mut f = frame(mem, a[0], NAME)?;
    let new_len = a[1] & 0xffff_ffff;
    if a[2] != 0 || new_len > SKB_MAX_ALLOC || new_len < f.net_off {
        return Ok(EINVAL);
    }
    if f.encapsulation {
        return Ok(ENOTSUPP);
    }
    let end = f.data + new_len;
    if end != f.data_end {
        f.movable(NAME)?;
    }
    if end > f.hard_end {
        return Ok(ENOMEM);
    }
    if end > f.data_end {
        write(mem, f.data_end, &vec![0; (end - f.data_end) as usize], NAME)?;
    }
    (f.data_end, f.moved_by) = (end, Some(NAME));
    commit(mem, f, NAME)?;
    Ok(0)
}

/// `skb_change_head(skb, len, flags)`.
pub(crate) fn skb_change_head(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_change_head";
    let mut f = frame(mem, a[0], NAME)?;
    let room = a[1] & 0xffff_ffff;
    if a[2] != 0 || f.len() + room > SKB_MAX_ALLOC {
        return Ok(EINVAL);
    }
    if !push_at(mem, &mut f, 0, room, NAME)? {
        return Ok(ENOMEM);
    }
    // A new link-layer header in front: the network header stays where it was.
    f.net_off += room;
    commit(mem, f, NAME)?;
    Ok(0)
}

/// `skb_pull_data(skb, len)`.
pub(crate) fn skb_pull_data(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_pull_data";
    if cx.context == crate::Context::SkSkb {
        // The kernel's `sk_skb_pull_data`: the stream data is linear here too, and is the
        // run's input after the context struct, which the data never leaves.
        if mem.input.offset_of(a[0], crate::SKB_CTX_SIZE) != Some(0) {
            return Err(err(format!(
                "{NAME}: the first argument is not the context"
            )));
        }
        let len = (mem.input.bytes.len() - crate::SKB_CTX_SIZE) as u64;
        return Ok(if a[1] & 0xffff_ffff > len { ENOMEM } else { 0 });
    }
    let f = frame(mem, a[0], NAME)?;
    if a[1] & 0xffff_ffff > f.len() {
        return Ok(ENOMEM);
    }
    commit(mem, f, NAME)?;
    Ok(0)
}

/// `clone_redirect(skb, ifindex, flags)`.
pub(crate) fn clone_redirect(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "clone_redirect";
    let f = frame(mem, a[0], NAME)?;
    let (ifindex, flags) = (a[1] as u32, a[2]);
    if flags & !crate::xdp_helpers::BPF_F_INGRESS != 0 || ifindex == 0 {
        return Ok(EINVAL);
    }
    let packet = read(mem, f.data, f.len(), NAME)?;
    run_state(mem)?.clones.push(ClonedPacket {
        target: RedirectTarget::Ifindex {
            ifindex,
            ingress: flags & crate::xdp_helpers::BPF_F_INGRESS != 0,
        },
        packet,
        vlan: f.vlan_present.then_some((f.vlan_proto, f.vlan_tci)),
    });
    Ok(0)
}
