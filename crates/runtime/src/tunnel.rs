//! The tunnel-key helpers of TC programs, `bpf_skb_get_tunnel_key` (20) and
//! `bpf_skb_set_tunnel_key` (21), on the run's tunnel record ([`TunnelKey`]): the key the
//! embedder says the packet arrived with ([`crate::SkbMeta::tunnel`]), replaced by the one the
//! program sets, and given back in the metadata after the run.
//!
//! The kernel keeps the key as the outer header's addresses, `src` and `dst`: a received
//! packet's `src` is the remote end. `get` reads `src` as `remote_ipv4`/`remote_ipv6` and `dst`
//! as `local_*`; `set` stores the key it is given as a packet to send, its remote address as
//! `dst` and its local one as `src`. So a `get` after a `set` in the same run answers with the
//! addresses swapped, as the kernel's does.

use crate::helpers::{Cx, run_state};
use crate::skb_helpers::tc_only;
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_skb_get_tunnel_key`.
pub const SKB_GET_TUNNEL_KEY: u32 = 20;
/// `bpf_skb_set_tunnel_key`.
pub const SKB_SET_TUNNEL_KEY: u32 = 21;

const EINVAL: u64 = (-22i64) as u64;
const EPROTO: u64 = (-71i64) as u64;

/// `BPF_F_TUNINFO_IPV6`: the key is an IPv6 one (both helpers).
const TUNINFO_IPV6: u64 = 1 << 0;
/// `BPF_F_ZERO_CSUM_TX` (set): no outer UDP checksum.
const ZERO_CSUM_TX: u64 = 1 << 1;
/// `BPF_F_DONT_FRAGMENT` (set).
const DONT_FRAGMENT: u64 = 1 << 2;
/// `BPF_F_SEQ_NUMBER` (set).
const SEQ_NUMBER: u64 = 1 << 3;
/// `BPF_F_NO_TUNNEL_KEY` (set): the key is not to be sent.
const NO_TUNNEL_KEY: u64 = 1 << 4;
/// `BPF_F_TUNINFO_FLAGS` (get): fill `tunnel_flags` (else it reads 0).
const TUNINFO_FLAGS: u64 = 1 << 4;

/// The tunnel flags a key carries ([`TunnelKey::flags`], the kernel's `TUNNEL_*` values as the
/// big-endian `tunnel_flags` field shows them): a checksum in the outer header.
pub const TUNNEL_CSUM: u16 = 0x0001;
/// The tunnel header carries the key (the id).
pub const TUNNEL_KEY: u16 = 0x0004;
/// The tunnel header carries a sequence number.
pub const TUNNEL_SEQ: u16 = 0x0008;
/// The outer header must not be fragmented.
pub const TUNNEL_DONT_FRAGMENT: u16 = 0x0100;
/// The route of the key is not cached (every key `set_tunnel_key` makes has it).
pub const TUNNEL_NOCACHE: u16 = 0x2000;

/// `struct bpf_tunnel_key`'s size, and the older, shorter layouts the helpers also take: up to
/// `tunnel_ext` (22), up to `tunnel_label` (24), up to `local_ipv4` (28). Also 8 (up to the
/// first word of `remote_ipv6`), for IPv4 keys only when reading.
const FULL: u64 = 44;
const COMPAT: [u64; 4] = [8, 22, 24, 28];

/// A packet's tunnel metadata, as the tunnel-key helpers see it (the kernel's
/// `ip_tunnel_info`): the outer header's addresses, the tunnel id (a VNI, GRE key, ...), TOS,
/// TTL, IPv6 flow label and `TUNNEL_*` flags. For a packet received through a tunnel, `src` is
/// the remote end and `dst` the local one; a key `set_tunnel_key` made is one to send with:
/// `dst` is the key's remote address, `src` its local one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TunnelKey {
    /// An IPv6 tunnel (the addresses are 16 bytes), else IPv4 (the first 4 bytes).
    pub ipv6: bool,
    /// The tunnel id (`tunnel_id`).
    pub id: u32,
    /// The outer source address, network byte order (IPv4 in the first 4 bytes, the rest 0).
    pub src: [u8; 16],
    /// The outer destination address, as `src`.
    pub dst: [u8; 16],
    /// The outer TOS.
    pub tos: u8,
    /// The outer TTL.
    pub ttl: u8,
    /// The IPv6 flow label (20 bits).
    pub label: u32,
    /// `TUNNEL_*` flags ([`TUNNEL_CSUM`], [`TUNNEL_KEY`], ...).
    pub flags: u16,
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// `struct bpf_tunnel_key` as `get` fills it from `key` (all 44 bytes; the caller keeps the
/// size it was given), `tunnel_flags` only with `BPF_F_TUNINFO_FLAGS`.
fn to_struct(key: &TunnelKey, flags: u64) -> [u8; 44] {
    let mut out = [0u8; 44];
    out[0..4].copy_from_slice(&key.id.to_le_bytes());
    let addr = |a: &[u8; 16]| -> [u8; 16] {
        let mut w = [0u8; 16];
        if key.ipv6 {
            w = *a;
        } else {
            // `remote_ipv4`/`local_ipv4` are host-order integers.
            let v = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
            w[0..4].copy_from_slice(&v.to_le_bytes());
        }
        w
    };
    out[4..20].copy_from_slice(&addr(&key.src));
    out[20] = key.tos;
    out[21] = key.ttl;
    if flags & TUNINFO_FLAGS != 0 {
        out[22..24].copy_from_slice(&key.flags.to_be_bytes());
    }
    if key.ipv6 {
        out[24..28].copy_from_slice(&key.label.to_le_bytes());
    }
    out[28..44].copy_from_slice(&addr(&key.dst));
    out
}

/// `bpf_skb_get_tunnel_key(skb, key, size, flags)` (TC only): fills `key` (`size` bytes) from
/// the packet's tunnel key. `-EINVAL` when the packet has none or for flags other than
/// `BPF_F_TUNINFO_IPV6` and `BPF_F_TUNINFO_FLAGS`; `-EPROTO` when `BPF_F_TUNINFO_IPV6` does
/// not match the key's family; `-EINVAL` for a size other than 44, 28, 24, 22 or (IPv4) 8.
/// On an error the buffer is zeroed.
pub(crate) fn get_tunnel_key(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    tc_only(cx, "skb_get_tunnel_key")?;
    let (to, size, flags) = (a[1], a[2] & 0xffff_ffff, a[3]);
    let key = run_state(mem)?.tunnel;
    let answer = match key {
        None => Err(EINVAL),
        Some(_) if flags & !(TUNINFO_IPV6 | TUNINFO_FLAGS) != 0 => Err(EINVAL),
        Some(k) if k.ipv6 != (flags & TUNINFO_IPV6 != 0) => Err(EPROTO),
        Some(k) if size == FULL || (COMPAT.contains(&size) && (size != 8 || !k.ipv6)) => Ok(k),
        Some(_) => Err(EINVAL),
    };
    let n = size as usize;
    // The whole buffer must be writable (the verifier's size check, which Checked mode may
    // leave to here), before a buffer of that size is made.
    if !mem.accessible(to, n, true) {
        return Err(err(format!(
            "skb_get_tunnel_key: cannot write {n} bytes at {to:#x}"
        )));
    }
    let (bytes, ret) = match answer {
        Ok(k) => (to_struct(&k, flags)[..n.min(44)].to_vec(), 0),
        Err(e) => (vec![0u8; n], e),
    };
    mem.write(to, &bytes).ok_or_else(|| {
        err(format!(
            "skb_get_tunnel_key: cannot write {n} bytes at {to:#x}"
        ))
    })?;
    Ok(ret)
}

/// `bpf_skb_set_tunnel_key(skb, key, size, flags)` (TC only): the packet's tunnel key becomes
/// `key` (`size` bytes: 44, 28, 24, 22 or 8, the rest read as zeros), as one to send.
/// `-EINVAL` for any other size, flags other than `BPF_F_TUNINFO_IPV6`, `BPF_F_ZERO_CSUM_TX`,
/// `BPF_F_DONT_FRAGMENT`, `BPF_F_SEQ_NUMBER` and `BPF_F_NO_TUNNEL_KEY`, a nonzero `tunnel_ext`,
/// or a `tunnel_label` on an IPv4 key; the packet keeps its key then.
pub(crate) fn set_tunnel_key(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    tc_only(cx, "skb_set_tunnel_key")?;
    let (from, size, flags) = (a[1], a[2] & 0xffff_ffff, a[3]);
    let known = TUNINFO_IPV6 | ZERO_CSUM_TX | DONT_FRAGMENT | SEQ_NUMBER | NO_TUNNEL_KEY;
    if flags & !known != 0 || (size != FULL && !COMPAT.contains(&size)) {
        return Ok(EINVAL);
    }
    let mut s = [0u8; 44];
    let got = mem.read(from, size as usize).ok_or_else(|| {
        err(format!(
            "skb_set_tunnel_key: cannot read {size} bytes at {from:#x}"
        ))
    })?;
    s[..got.len()].copy_from_slice(&got);
    let word = |at: usize| u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    let ipv6 = flags & TUNINFO_IPV6 != 0;
    let (ext, label) = (u16::from_le_bytes([s[22], s[23]]), word(24));
    if ext != 0 || (!ipv6 && label != 0) {
        return Ok(EINVAL);
    }
    let addr = |at: usize| -> [u8; 16] {
        let mut w = [0u8; 16];
        if ipv6 {
            w.copy_from_slice(&s[at..at + 16]);
        } else {
            w[0..4].copy_from_slice(&word(at).to_be_bytes());
        }
        w
    };
    let mut tf = TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE;
    if flags & DONT_FRAGMENT != 0 {
        tf |= TUNNEL_DONT_FRAGMENT;
    }
    if flags & ZERO_CSUM_TX != 0 {
        tf &= !TUNNEL_CSUM;
    }
    if flags & SEQ_NUMBER != 0 {
        tf |= TUNNEL_SEQ;
    }
    if flags & NO_TUNNEL_KEY != 0 {
        tf &= !TUNNEL_KEY;
    }
    let key = TunnelKey {
        ipv6,
        id: word(0),
        // The key's remote end is where the packet goes.
        dst: addr(4),
        src: addr(28),
        tos: s[20],
        ttl: s[21],
        label: if ipv6 { label & 0x000f_ffff } else { 0 },
        flags: tf,
    };
    run_state(mem)?.tunnel = Some(key);
    Ok(0)
}
