//! SYN cookies without a listening socket, for XDP and TC programs: helpers 204 to 207
//! (`bpf_tcp_raw_gen_syncookie_ipv4`/`_ipv6` and `bpf_tcp_raw_check_syncookie_ipv4`/`_ipv6`),
//! which SYN-flood filters call on the headers they parsed.
//!
//! A cookie is the client's initial sequence number plus a keyed hash of the connection's
//! addresses and ports and of the minute it was made, whose low two bits carry the index of
//! the MSS it stands for. The key is the VM's own (derived from its `get_prandom_u32` seed),
//! so a cookie one program of a VM made is accepted by any program of that VM during the
//! minute it was made and the two after, and by no other VM; like the kernel's, the
//! cookies are not meant to be predicted.

use crate::helpers::{Cx, mix64};
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_tcp_raw_gen_syncookie_ipv4`.
pub const TCP_RAW_GEN_SYNCOOKIE_IPV4: u32 = 204;
/// `bpf_tcp_raw_gen_syncookie_ipv6`.
pub const TCP_RAW_GEN_SYNCOOKIE_IPV6: u32 = 205;
/// `bpf_tcp_raw_check_syncookie_ipv4`.
pub const TCP_RAW_CHECK_SYNCOOKIE_IPV4: u32 = 206;
/// `bpf_tcp_raw_check_syncookie_ipv6`.
pub const TCP_RAW_CHECK_SYNCOOKIE_IPV6: u32 = 207;

const EINVAL: u64 = (-22i64) as u64;
const EACCES: u64 = (-13i64) as u64;
/// `sizeof(struct tcphdr)`.
const TCP_HLEN: u64 = 20;
/// The MSS a SYN without an MSS option is taken to ask for (`TCP_MSS_DEFAULT`).
const MSS_DEFAULT: u16 = 536;
/// The MSS values a cookie can stand for, by IP version, as the kernel's cookies give them.
const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
const MSS_V6: [u16; 4] = [1220, 1420, 1440, 8940];
/// Nanoseconds in a cookie's time step.
const STEP_NS: u64 = 60_000_000_000;
/// How many steps after the one it was made in a cookie is still accepted.
const MAX_AGE: u64 = 2;

/// The IP version a helper reads the header of.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// The length of the IP header the helper reads, and where its two addresses lie.
    fn header(self) -> (usize, std::ops::Range<usize>) {
        match self {
            Family::V4 => (20, 12..20),
            Family::V6 => (40, 8..40),
        }
    }

    fn mss_table(self) -> &'static [u16; 4] {
        match self {
            Family::V4 => &MSS_V4,
            Family::V6 => &MSS_V6,
        }
    }
}

fn read(
    mem: &mut GuestMemory<'_>,
    addr: u64,
    len: u64,
    name: &str,
    what: &str,
) -> Result<Vec<u8>, HelperError> {
    mem.read(addr, len as usize).ok_or_else(|| {
        HelperError(format!(
            "{name}: cannot read the {len}-byte {what} at {addr:#x}"
        ))
    })
}

/// The hash of a cookie: the connection's addresses and ports (`tuple`), the time step and the
/// VM's key, its low two bits clear for the MSS index.
fn hash(cx: &Cx, tuple: &[u8], step: u64) -> u32 {
    let mut h = mix64(cx.hooks.prng.seed() ^ 0x5359_4e43_4f4f_4b49) ^ step;
    for chunk in tuple.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(w));
    }
    (h as u32) & !3
}

/// The addresses of `ip` and the ports of `th`: what a cookie is bound to.
fn tuple(family: Family, ip: &[u8], th: &[u8]) -> Vec<u8> {
    let mut t = ip[family.header().1].to_vec();
    t.extend_from_slice(&th[..4]);
    t
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The MSS option of the TCP header `th` (its options), or `None`: the walk stops at an end
/// option or at an option whose length is short or runs past the header, and an MSS of 0
/// counts as none.
fn mss_option(th: &[u8]) -> Option<u16> {
    let mut at = TCP_HLEN as usize;
    let mut mss = None;
    while at < th.len() {
        match th[at] {
            0 => break,
            1 => at += 1,
            kind => {
                let Some(&len) = th.get(at + 1) else { break };
                let len = usize::from(len);
                if len < 2 || at + len > th.len() {
                    break;
                }
                if kind == 2 && len == 4 {
                    let v = u16::from_be_bytes([th[at + 2], th[at + 3]]);
                    if v != 0 {
                        mss = Some(v);
                    }
                }
                at += len;
            }
        }
    }
    mss
}

/// `generate(iph, th, th_len)`: `-EINVAL` unless `th_len` is at least a TCP header and is the
/// header's own length (its data offset); else the cookie in the low 32 bits and the MSS it
/// stands for in the 16 above: the largest of the family's four values not above the SYN's
/// MSS option (536 without one), or the smallest.
fn generate(
    family: Family,
    name: &str,
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (ip_len, _) = family.header();
    let ip = read(mem, a[0], ip_len as u64, name, "IP header")?;
    let th_len = a[2] & 0xffff_ffff;
    let fixed = read(mem, a[1], TCP_HLEN, name, "TCP header")?;
    if th_len < TCP_HLEN || th_len != u64::from(fixed[12] >> 4) * 4 {
        return Ok(EINVAL);
    }
    let th = read(mem, a[1], th_len, name, "TCP header")?;
    let want = mss_option(&th).unwrap_or(MSS_DEFAULT);
    let table = family.mss_table();
    let idx = (1..table.len())
        .rev()
        .find(|&i| want >= table[i])
        .unwrap_or(0);
    let step = (cx.hooks.clock)() / STEP_NS;
    let cookie =
        be32(&th[4..8]).wrapping_add(hash(cx, &tuple(family, &ip, &th), step) | idx as u32);
    Ok(u64::from(cookie) | (u64::from(table[idx]) << 32))
}

/// `check(iph, th)`: 0 when the ACK's acknowledgement number less one is a cookie this VM
/// made for its sequence number less one and its addresses and ports, at most [`MAX_AGE`]
/// steps ago; `-EACCES` otherwise.
fn check(
    family: Family,
    name: &str,
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (ip_len, _) = family.header();
    let ip = read(mem, a[0], ip_len as u64, name, "IP header")?;
    let th = read(mem, a[1], TCP_HLEN, name, "TCP header")?;
    let isn = be32(&th[4..8]).wrapping_sub(1);
    let cookie = be32(&th[8..12]).wrapping_sub(1);
    let d = cookie.wrapping_sub(isn);
    let t = tuple(family, &ip, &th);
    let now = (cx.hooks.clock)() / STEP_NS;
    let valid = (0..=MAX_AGE.min(now)).any(|age| hash(cx, &t, now - age) == d & !3);
    Ok(if valid { 0 } else { EACCES })
}

pub(crate) fn gen_ipv4(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    generate(Family::V4, "tcp_raw_gen_syncookie_ipv4", cx, mem, a)
}

pub(crate) fn gen_ipv6(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    generate(Family::V6, "tcp_raw_gen_syncookie_ipv6", cx, mem, a)
}

pub(crate) fn check_ipv4(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    check(Family::V4, "tcp_raw_check_syncookie_ipv4", cx, mem, a)
}

pub(crate) fn check_ipv6(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    check(Family::V6, "tcp_raw_check_syncookie_ipv6", cx, mem, a)
}
