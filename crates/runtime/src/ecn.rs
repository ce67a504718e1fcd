//! `bpf_skb_ecn_set_ce` (97), for TC programs: marks congestion in the packet's IP header.

use crate::helpers::{Cx, run_state};
use crate::skb_helpers::tc_only;
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_skb_ecn_set_ce`.
pub const SKB_ECN_SET_CE: u32 = 97;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPV4_HLEN: u64 = 20;
const IPV6_HLEN: u64 = 40;
/// `ETH_HLEN`, where the first VLAN tag of a tagged frame is.
const ETH_HLEN: u64 = 14;
/// `MAX_VLAN_DEPTH` tags of `VLAN_HLEN` bytes: how far the walk to the tagged protocol goes.
const VLAN_WALK_END: u64 = 8 * 4;

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// The protocol the packet carries: the socket buffer's `protocol`, or, for a VLAN protocol,
/// the EtherType under the packet's VLAN tags (from the Ethernet header on, as far as
/// `MAX_VLAN_DEPTH` tags); `None` when a tag runs past the packet.
fn protocol(mem: &mut GuestMemory<'_>, data: u64, len: u64, proto: u16) -> Option<u16> {
    let vlan = |t: u16| t == ETH_P_8021Q || t == ETH_P_8021AD;
    if !vlan(proto) {
        return Some(proto);
    }
    let mut depth = ETH_HLEN;
    loop {
        if depth + 4 > len {
            return None;
        }
        // The tag's encapsulated protocol, its second half.
        let t = mem.read(data + depth + 2, 2)?;
        let t = u16::from_be_bytes([t[0], t[1]]);
        depth += 4;
        if !vlan(t) || depth >= VLAN_WALK_END {
            return Some(t);
        }
    }
}

/// `bpf_skb_ecn_set_ce(skb)` (TC only): when the packet is IPv4 or IPv6 (its protocol, under
/// any VLAN tags in the packet) and the IP header fits from the network header on, an ECN
/// field of ECT(0) or ECT(1) becomes CE (for IPv4 the header checksum takes the change as a
/// one's-complement addition, as the kernel makes it) and the answer is 1; a packet already
/// CE answers 1 unchanged, a Not-ECT one 0, and so does any other packet. The IP version
/// field is not checked (the protocol says what the header is).
pub(crate) fn skb_ecn_set_ce(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "skb_ecn_set_ce";
    tc_only(cx, NAME)?;
    let f = run_state(mem)?.tc;
    if !f.active || f.ctx != a[0] {
        return Err(err(format!(
            "{NAME}: r1 is not the running program's context"
        )));
    }
    let (data, len) = (f.data, f.data_end.saturating_sub(f.data));
    let net = data + f.net_off;
    let fits = |n: u64| f.net_off + n <= len;
    let failed = || err(format!("{NAME}: cannot access the packet's IP header"));
    match protocol(mem, data, len, f.protocol) {
        Some(ETH_P_IP) if fits(IPV4_HLEN) => {
            let tos = mem.load(net + 1, 1).ok_or_else(failed)?;
            // Not-ECT 0 → 1, ECT(1) 1 → 2, ECT(0) 2 → 3, CE 3 → 0.
            let ecn = (tos + 1) & 3;
            if ecn & 2 == 0 {
                return Ok(u64::from(ecn == 0));
            }
            // ECT(1) → CE adds 2 to the header's first 16-bit word, ECT(0) → CE adds 1: the
            // checksum takes -2 or -1 (0xfffd, 0xfffe), added with the end-around carry.
            let c = mem.read(net + 10, 2).ok_or_else(failed)?;
            let sum = u32::from(u16::from_be_bytes([c[0], c[1]])) + 0xfffb + ecn as u32;
            let check = ((sum & 0xffff) + (sum >> 16)) as u16;
            mem.write(net + 10, &check.to_be_bytes())
                .ok_or_else(failed)?;
            mem.store(net + 1, 1, tos | 3).ok_or_else(failed)?;
            Ok(1)
        }
        Some(ETH_P_IPV6) if fits(IPV6_HLEN) => {
            // The traffic class spans the first two bytes: its ECN bits are the second
            // byte's 0x30.
            let b = mem.load(net + 1, 1).ok_or_else(failed)?;
            if b & 0x30 == 0 {
                return Ok(0);
            }
            mem.store(net + 1, 1, b | 0x30).ok_or_else(failed)?;
            Ok(1)
        }
        _ => Ok(0),
    }
}
