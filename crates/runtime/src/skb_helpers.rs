//! The socket-buffer helpers of TC programs and socket filters, with the kernel's semantics
//! and errnos (`net/core/filter.c`, documented in `/usr/include/linux/bpf.h`): reading and
//! writing packet bytes by offset, and the checksum helpers ([`crate::csum`]).
//!
//! bpfx's socket buffers carry no checksum offload state (the kernel's `ip_summed` is
//! `CHECKSUM_NONE`): `BPF_F_PSEUDO_HDR` and `BPF_F_RECOMPUTE_CSUM` are accepted and change
//! nothing but the checksum field itself, exactly what the kernel does for such a packet.
//!
//! Their ids, names and signatures are entries of the one helper table
//! ([`crate::helpers::TABLE`]).
//!
//! Each helper finds the packet through the context pointer it is given (r1), whose `data` and
//! `data_end` fields it reads, and touches memory only through its [`GuestMemory`]. Called from
//! a program whose context is not a socket buffer, it fails the run (the kernel refuses such
//! programs at load).

use crate::context::Context;
use crate::csum;
use crate::helpers::{Cx, run_state};
use crate::packet::ETH_HLEN;
use crate::skb::{SKB_DATA, SKB_DATA_END};
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_skb_store_bytes`.
pub const SKB_STORE_BYTES: u32 = 9;
/// `bpf_l3_csum_replace`.
pub const L3_CSUM_REPLACE: u32 = 10;
/// `bpf_l4_csum_replace`.
pub const L4_CSUM_REPLACE: u32 = 11;
/// `bpf_skb_load_bytes`.
pub const SKB_LOAD_BYTES: u32 = 26;
/// `bpf_csum_diff`.
pub const CSUM_DIFF: u32 = 28;
/// `bpf_get_hash_recalc`.
pub const GET_HASH_RECALC: u32 = 34;
/// `bpf_csum_update`.
pub const CSUM_UPDATE: u32 = 40;
/// `bpf_set_hash`.
pub const SET_HASH: u32 = 48;
/// `bpf_skb_change_type`.
pub const SKB_CHANGE_TYPE: u32 = 32;
/// `__sk_buff.pkt_type`'s offset.
pub(crate) const PKT_TYPE: u64 = 4;
/// `PACKET_OTHERHOST` (`linux/if_packet.h`): the last of the types `skb_change_type` moves
/// between (`PACKET_HOST` 0, `PACKET_BROADCAST` 1, `PACKET_MULTICAST` 2, `PACKET_OTHERHOST` 3).
const PACKET_OTHERHOST: u64 = 3;
/// `bpf_skb_load_bytes_relative`.
pub const SKB_LOAD_BYTES_RELATIVE: u32 = 68;

/// `BPF_HDR_START_MAC` (`skb_load_bytes_relative`): offsets from the link-layer header.
pub const BPF_HDR_START_MAC: u64 = 0;
/// `BPF_HDR_START_NET` (`skb_load_bytes_relative`): offsets from the network header.
pub const BPF_HDR_START_NET: u64 = 1;

/// `BPF_F_RECOMPUTE_CSUM` (`skb_store_bytes`).
pub const BPF_F_RECOMPUTE_CSUM: u64 = 1;
/// `BPF_F_INVALIDATE_HASH` (`skb_store_bytes`): clears the skb's `hash`.
pub const BPF_F_INVALIDATE_HASH: u64 = 2;
/// `BPF_F_HDR_FIELD_MASK`: the size of the changed field (0, 2 or 4) in the checksum helpers.
pub const BPF_F_HDR_FIELD_MASK: u64 = 0xf;
/// `BPF_F_PSEUDO_HDR` (`l4_csum_replace`): the field is part of the pseudo-header.
pub const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
/// `BPF_F_MARK_MANGLED_0` (`l4_csum_replace`): a zero checksum (UDP's "none") stays zero, and
/// an update that gives zero stores `CSUM_MANGLED_0` (0xffff).
pub const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
/// `BPF_F_MARK_ENFORCE` (`l4_csum_replace`): with `BPF_F_MARK_MANGLED_0`, update a zero
/// checksum too.
pub const BPF_F_MARK_ENFORCE: u64 = 1 << 6;

/// Offset of `__sk_buff.hash` (also in bpfx's struct).
pub(crate) const HASH: u64 = 68;
/// The kernel's `CSUM_MANGLED_0`.
const CSUM_MANGLED_0: u16 = 0xffff;
/// `csum_diff`'s scratch area: at most this many bytes of `from` and `to` together.
const CSUM_DIFF_MAX: u64 = 512;
/// The largest packet offset the helpers take (`INT_MAX`).
const MAX_OFFSET: u64 = i32::MAX as u64;

const EINVAL: u64 = (-22i64) as u64;
const EFAULT: u64 = (-14i64) as u64;
/// The kernel's `ENOTSUPP` (524), what `csum_update` answers without checksum offload.
const ENOTSUPP: u64 = (-524i64) as u64;

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// The packet of the socket buffer `ctx`: its address and length.
fn packet(
    mem: &mut GuestMemory<'_>,
    ctx: u64,
    skb: bool,
    name: &str,
) -> Result<(u64, u64), HelperError> {
    if !skb {
        return Err(err(format!(
            "{name} needs a TC or socket-filter context (struct __sk_buff)"
        )));
    }
    let field = |mem: &mut GuestMemory<'_>, off: u16, what: &str| {
        mem.load(ctx.wrapping_add(u64::from(off)), 8)
            .ok_or_else(|| {
                err(format!(
                    "{name}: cannot read the context's {what} at {ctx:#x}"
                ))
            })
    };
    let start = field(mem, SKB_DATA, "data")?;
    let end = field(mem, SKB_DATA_END, "data_end")?;
    if end < start {
        return Err(err(format!(
            "{name}: the context's packet bounds are reversed"
        )));
    }
    Ok((start, end - start))
}

/// The checksum field at `offset` of the packet, if the helpers may change it: 2 bytes,
/// even offset, inside the packet (else `-EFAULT`).
fn csum_field(start: u64, len: u64, offset: u64) -> Result<u64, u64> {
    if offset > 0xffff || offset & 1 != 0 || offset + 2 > len {
        return Err(EFAULT);
    }
    Ok(start + offset)
}

/// The new checksum for a change of `size` bytes (`flags & BPF_F_HDR_FIELD_MASK`) from
/// `from` to `to` (for size 0, `to` is a `csum_diff` sum and `from` must be 0).
fn replaced(hc: u16, size: u64, from: u64, to: u64) -> Result<u16, u64> {
    match size {
        0 if from != 0 => Err(EINVAL),
        0 => Ok(csum::replace_by_diff(hc, to as u32)),
        2 => Ok(csum::replace2(hc, from as u16, to as u16)),
        4 => Ok(csum::replace4(hc, from as u32, to as u32)),
        _ => Err(EINVAL),
    }
}

/// `bpf_skb_store_bytes`.
pub(crate) fn skb_store_bytes(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (start, len) = packet(mem, a[0], is_skb(cx), "skb_store_bytes")?;
    if a[4] & !(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH) != 0 {
        return Ok(EINVAL);
    }
    let (offset, n) = (a[1] & 0xffff_ffff, a[3] & 0xffff_ffff);
    if offset > MAX_OFFSET || offset + n > len {
        return Ok(EFAULT);
    }
    let bytes = mem
        .read(a[2], n as usize)
        .ok_or_else(|| err("skb_store_bytes: cannot read the bytes to store"))?;
    mem.write(start + offset, &bytes)
        .ok_or_else(|| err("skb_store_bytes: the packet is not writable"))?;
    if a[4] & BPF_F_INVALIDATE_HASH != 0 {
        mem.store(a[0] + HASH, 4, 0)
            .ok_or_else(|| err("skb_store_bytes: cannot clear the context's hash"))?;
        run_state(mem)?.skb_hash = Some(0);
    }
    Ok(0)
}

/// `bpf_skb_load_bytes`.
pub(crate) fn skb_load_bytes(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (start, len) = packet(mem, a[0], is_skb(cx), "skb_load_bytes")?;
    let (offset, n) = (a[1] & 0xffff_ffff, a[3] & 0xffff_ffff);
    let bytes = if offset <= MAX_OFFSET && offset + n <= len {
        mem.read(start + offset, n as usize)
    } else {
        None
    };
    // The kernel zeroes the buffer when the bytes are not there.
    let (out, ret) = match bytes {
        Some(b) => (b, 0),
        None => (vec![0; n as usize], EFAULT),
    };
    mem.write(a[2], &out)
        .ok_or_else(|| err("skb_load_bytes: cannot write the buffer"))?;
    Ok(ret)
}

/// `bpf_l3_csum_replace`.
pub(crate) fn l3_csum_replace(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    csum_replace(cx, mem, a, false)
}

/// `bpf_l4_csum_replace`.
pub(crate) fn l4_csum_replace(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    csum_replace(cx, mem, a, true)
}

/// `l4_csum_replace` (`l4`) or `l3_csum_replace`.
fn csum_replace(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    l4: bool,
) -> Result<u64, HelperError> {
    let name = if l4 {
        "l4_csum_replace"
    } else {
        "l3_csum_replace"
    };
    let (start, len) = packet(mem, a[0], is_skb(cx), name)?;
    let allowed = if l4 {
        BPF_F_HDR_FIELD_MASK | BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE
    } else {
        BPF_F_HDR_FIELD_MASK
    };
    let flags = a[4];
    if flags & !allowed != 0 {
        return Ok(EINVAL);
    }
    let at = match csum_field(start, len, a[1] & 0xffff_ffff) {
        Ok(at) => at,
        Err(e) => return Ok(e),
    };
    let hc = mem
        .load(at, 2)
        .ok_or_else(|| err(format!("{name}: cannot read the checksum")))? as u16;
    let mangled = l4 && flags & BPF_F_MARK_MANGLED_0 != 0;
    if mangled && flags & BPF_F_MARK_ENFORCE == 0 && hc == 0 {
        return Ok(0);
    }
    let mut new = match replaced(hc, flags & BPF_F_HDR_FIELD_MASK, a[2], a[3]) {
        Ok(v) => v,
        Err(e) => return Ok(e),
    };
    if mangled && new == 0 {
        new = CSUM_MANGLED_0;
    }
    mem.store(at, 2, u64::from(new))
        .ok_or_else(|| err(format!("{name}: the packet is not writable")))?;
    Ok(0)
}

/// `bpf_csum_diff`.
pub(crate) fn csum_diff(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (from_size, to_size) = (a[1] & 0xffff_ffff, a[3] & 0xffff_ffff);
    if (from_size | to_size) & 3 != 0 || from_size + to_size > CSUM_DIFF_MAX {
        return Ok(EINVAL);
    }
    let mut bytes = |addr, n: u64| {
        if n == 0 {
            return Ok(Vec::new());
        }
        mem.read(addr, n as usize)
            .ok_or_else(|| err("csum_diff: cannot read its memory"))
    };
    let from = bytes(a[0], from_size)?;
    let to = bytes(a[2], to_size)?;
    Ok(u64::from(csum::diff(&from, &to, a[4] as u32)))
}

/// Whether the program's context is a socket buffer.
fn is_skb(cx: &Cx) -> bool {
    matches!(
        cx.context,
        Context::Tc | Context::Socket | Context::CgroupSkb(_) | Context::SkSkb | Context::Lwt(_)
    )
}

/// Whether the program is a TC program (the helpers only TC offers).
pub(crate) fn tc_only(cx: &Cx, name: &str) -> Result<(), HelperError> {
    if cx.context == Context::Tc {
        Ok(())
    } else {
        Err(err(format!("{name} needs a TC context")))
    }
}

/// `bpf_skb_load_bytes_relative(skb, offset, to, len, start_header)`: like `skb_load_bytes`,
/// from the link-layer header (`BPF_HDR_START_MAC`, the packet's first byte) or the network
/// header (`BPF_HDR_START_NET`, [`ETH_HLEN`] bytes after it: bpfx's packets start with an
/// Ethernet header; in a TC run, as far further as `skb_change_head` moved it). An offset above 0xffff, another `start_header`, or bytes past the packet:
/// `-EFAULT`, the buffer zeroed.
pub(crate) fn skb_load_bytes_relative(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (start, len) = packet(mem, a[0], is_skb(cx), "skb_load_bytes_relative")?;
    let (offset, n) = (a[1] & 0xffff_ffff, a[3] & 0xffff_ffff);
    // The network header: after the Ethernet header, or where the TC run's record says
    // (`skb_change_head` moves it).
    let net = {
        let f = run_state(mem)?.tc;
        if f.active && f.ctx == a[0] {
            f.net_off
        } else {
            ETH_HLEN as u64
        }
    };
    // A cgroup skb packet starts at the network header, with no link-layer header before it.
    let l3 = matches!(cx.context, Context::CgroupSkb(_));
    let header = match a[4] & 0xffff_ffff {
        BPF_HDR_START_MAC if !l3 => Some(0),
        BPF_HDR_START_NET if l3 => Some(0),
        BPF_HDR_START_NET => Some(net),
        _ => None,
    };
    let bytes = match header {
        Some(h) if offset <= 0xffff && h + offset + n <= len => {
            mem.read(start + h + offset, n as usize)
        }
        _ => None,
    };
    let (out, ret) = match bytes {
        Some(b) => (b, 0),
        None => (vec![0; n as usize], EFAULT),
    };
    mem.write(a[2], &out)
        .ok_or_else(|| err("skb_load_bytes_relative: cannot write the buffer"))?;
    Ok(ret)
}

/// `bpf_get_hash_recalc(skb)`: the packet's hash, `__sk_buff.hash`; when it is 0 (none
/// given, or cleared by `BPF_F_INVALIDATE_HASH`), one computed from the flow ([`flow_hash`])
/// is stored there first, as the kernel's recalculation does.
pub(crate) fn get_hash_recalc(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "get_hash_recalc";
    tc_only(cx, NAME)?;
    let (start, len) = packet(mem, a[0], true, NAME)?;
    let hash = mem
        .load(a[0] + HASH, 4)
        .ok_or_else(|| err(format!("{NAME}: cannot read the context's hash")))?;
    if hash != 0 {
        return Ok(hash);
    }
    let bytes = mem
        .read(start, len as usize)
        .ok_or_else(|| err(format!("{NAME}: cannot read the packet")))?;
    let hash = u64::from(flow_hash(&bytes));
    mem.store(a[0] + HASH, 4, hash)
        .ok_or_else(|| err(format!("{NAME}: cannot write the context's hash")))?;
    run_state(mem)?.skb_hash = Some(hash as u32);
    Ok(hash)
}

/// `bpf_set_hash(skb, hash)`: sets `__sk_buff.hash` (a `u32`); 0.
pub(crate) fn set_hash(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    tc_only(cx, "set_hash")?;
    packet(mem, a[0], true, "set_hash")?;
    mem.store(a[0] + HASH, 4, a[1] & 0xffff_ffff)
        .ok_or_else(|| err("set_hash: cannot write the context's hash"))?;
    run_state(mem)?.skb_hash = Some(a[1] as u32);
    Ok(0)
}

/// `bpf_skb_change_type(skb, type)` (TC only): the packet's `pkt_type` becomes `type` when both
/// it and `type` are one of `PACKET_HOST`, `PACKET_BROADCAST`, `PACKET_MULTICAST` and
/// `PACKET_OTHERHOST` (0 to 3); `-EINVAL` otherwise (an egress packet's `PACKET_OUTGOING`, 4,
/// stays). The field is host-owned (programs may not store it): the run's record keeps the new
/// type, which the context shows from then on and the caller's [`crate::SkbMeta`] gets back.
pub(crate) fn skb_change_type(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_change_type";
    tc_only(cx, NAME)?;
    packet(mem, a[0], true, NAME)?;
    let now = match run_state(mem)?.skb_pkt_type {
        Some(t) => u64::from(t),
        None => mem
            .load(a[0] + PKT_TYPE, 4)
            .ok_or_else(|| err("skb_change_type: cannot read the context's pkt_type"))?,
    };
    // The helper's `u32 type`.
    let to = a[1] & 0xffff_ffff;
    if now > PACKET_OTHERHOST || to > PACKET_OTHERHOST {
        return Ok(EINVAL);
    }
    mem.store(a[0] + PKT_TYPE, 4, to)
        .ok_or_else(|| err("skb_change_type: cannot write the context's pkt_type"))?;
    run_state(mem)?.skb_pkt_type = Some(to as u32);
    Ok(0)
}

/// `bpf_csum_update(skb, csum)`: adds `csum` to the packet's checksum-complete sum, which only
/// a `CHECKSUM_COMPLETE` packet has; bpfx's packets carry no checksum offload state (the
/// kernel's `CHECKSUM_NONE`), so it answers `-ENOTSUPP` as the kernel does for them.
pub(crate) fn csum_update(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    tc_only(cx, "csum_update")?;
    packet(mem, a[0], true, "csum_update")?;
    Ok(ENOTSUPP)
}

/// bpfx's flow hash of an Ethernet frame, never 0 (0 means "no hash"): the same for both
/// directions of a flow, from the EtherType (after up to two VLAN tags), the IPv4 or IPv6
/// addresses, the IP protocol and, for TCP, UDP, UDP-Lite and SCTP (not in an IPv4 fragment
/// after the first), the ports. The kernel's own value depends on a random boot-time seed,
/// so no program can rely on its exact bits; bpfx's is FNV-1a over these keys, deterministic.
pub fn flow_hash(frame: &[u8]) -> u32 {
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut at = 12;
    let mut proto = be16(at).unwrap_or(0);
    for _ in 0..2 {
        if matches!(proto, 0x8100 | 0x88a8) {
            at += 4;
            proto = be16(at).unwrap_or(0);
        }
    }
    let l3 = at + 2;
    // (addresses of each side, IP protocol, offset of the transport header)
    type Keys<'a> = (&'a [u8], &'a [u8], u8, Option<usize>);
    let keys: Option<Keys<'_>> = match proto {
        0x0800 => frame.get(l3..l3 + 20).and_then(|ip| {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let first = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0;
            (ihl >= 20).then(|| (&ip[12..16], &ip[16..20], ip[9], first.then_some(l3 + ihl)))
        }),
        0x86dd => frame
            .get(l3..l3 + 40)
            .map(|ip| (&ip[8..24], &ip[24..40], ip[6], Some(l3 + 40))),
        _ => None,
    };
    let mut key = proto.to_be_bytes().to_vec();
    if let Some((src, dst, ipproto, l4)) = keys {
        let ports = l4
            .filter(|_| matches!(ipproto, 6 | 17 | 136 | 132))
            .and_then(|l4| Some((be16(l4)?, be16(l4 + 2)?)));
        let (sport, dport) = ports.unwrap_or((0, 0));
        let (a, b) = if (src, sport) <= (dst, dport) {
            ((src, sport), (dst, dport))
        } else {
            ((dst, dport), (src, sport))
        };
        key.push(ipproto);
        key.extend_from_slice(a.0);
        key.extend_from_slice(b.0);
        key.extend_from_slice(&a.1.to_be_bytes());
        key.extend_from_slice(&b.1.to_be_bytes());
    }
    let h = key.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h.max(1)
}
