//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624), as the kernel's
//! checksum helpers compute them.
//!
//! Sums are one's-complement sums with end-around carry. A 32-bit partial sum (the kernel's
//! `__wsum`) folds to the 16-bit checksum; the checksum stored in a header is the complement of
//! the folded sum. Everything works on words as they are loaded from memory (little-endian
//! loads of network-order bytes): one's-complement addition commutes with byte swapping, so the
//! folded results are the same bytes a big-endian computation would store.
//!
//! A partial sum's exact 32-bit value is not fixed by the RFCs (only its fold is); bpfx's is the
//! 32-bit end-around-carry sum of the 32-bit words, the value x86-64 kernels return (up to
//! which of the two one's-complement zeros comes out).

/// `a + b` in 32-bit one's complement (end-around carry): the kernel's `csum_add`.
pub fn add32(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s.wrapping_add(u32::from(carry))
}

/// `a - b` in 32-bit one's complement: the kernel's `csum_sub`.
pub fn sub32(a: u32, b: u32) -> u32 {
    add32(a, !b)
}

/// Folds a 32-bit partial sum to 16 bits and complements it: the checksum to store (the
/// kernel's `csum_fold`).
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// The 32-bit partial sum of `bytes` (a multiple of 4 long, as `csum_diff` requires; a shorter
/// tail is padded with zeros, as RFC 1071 pads an odd byte) added to `seed`.
pub fn partial(bytes: &[u8], seed: u32) -> u32 {
    bytes.chunks(4).fold(seed, |s, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        add32(s, u32::from_le_bytes(w))
    })
}

/// The checksum of `bytes` (RFC 1071): the complement of their folded sum, as the bytes to
/// store (in memory order).
pub fn checksum(bytes: &[u8]) -> [u8; 2] {
    fold(partial(bytes, 0)).to_le_bytes()
}

/// RFC 1624, eqn. 3: the checksum `hc` (as loaded) after a 16-bit field changes from `old` to
/// `new`: `~(~hc + ~old + new)` (the kernel's `csum_replace2`).
pub fn replace2(hc: u16, old: u16, new: u16) -> u16 {
    replace4(hc, u32::from(old), u32::from(new))
}

/// [`replace2`] for a 32-bit field (the kernel's `csum_replace4`).
pub fn replace4(hc: u16, old: u32, new: u32) -> u16 {
    fold(add32(sub32(u32::from(!hc), old), new))
}

/// The checksum `hc` after adding the partial sum `diff` of a change (the kernel's
/// `csum_replace_by_diff`, fed by `csum_diff`).
pub fn replace_by_diff(hc: u16, diff: u32) -> u16 {
    fold(add32(diff, u32::from(!hc)))
}

/// `csum_diff`'s sum: `seed` plus the partial sum of `to` minus that of `from` (both a
/// multiple of 4 bytes long).
pub fn diff(from: &[u8], to: &[u8], seed: u32) -> u32 {
    let negated: Vec<u8> = from.iter().map(|b| !b).collect();
    partial(to, partial(&negated, seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 section 3's example: the words 0001 f203 f4f5 f6f7 sum to ddf2 (in either
    /// byte order), so the checksum is 220d.
    #[test]
    fn rfc_1071_example() {
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(!fold(partial(&bytes, 0)), u16::from_le_bytes([0xdd, 0xf2]));
        assert_eq!(checksum(&bytes), [0x22, 0x0d]);
    }

    /// A real IPv4 header (the well-known example of the Wikipedia article's derivation):
    /// 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7, checksum b861.
    fn ipv4_header() -> [u8; 20] {
        [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ]
    }

    #[test]
    fn ipv4_header_checksums_to_zero_with_its_checksum_in_place() {
        let mut h = ipv4_header();
        assert_eq!(fold(partial(&h, 0)), 0);
        h[10..12].fill(0);
        assert_eq!(checksum(&h), [0xb8, 0x61]);
    }

    /// RFC 1624: updating after a change gives the checksum computed from scratch, for a
    /// 16-bit field (the TTL/protocol word), a 32-bit one (the source address) and a diff.
    #[test]
    fn incremental_updates_match_recomputation() {
        let h = ipv4_header();
        let hc = |h: &[u8]| u16::from_le_bytes([h[10], h[11]]);
        let word = |h: &[u8], i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let dword = |h: &[u8], i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let fresh = |mut h: [u8; 20]| {
            h[10..12].fill(0);
            u16::from_le_bytes(checksum(&h))
        };
        // TTL 0x40 -> 0x3f.
        let mut n = h;
        n[8] = 0x3f;
        assert_eq!(replace2(hc(&h), word(&h, 8), word(&n, 8)), fresh(n));
        // Source 192.168.0.1 -> 10.1.2.3.
        let mut n = h;
        n[12..16].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(replace4(hc(&h), dword(&h, 12), dword(&n, 12)), fresh(n));
        let d = diff(&h[12..16], &n[12..16], 0);
        assert_eq!(replace_by_diff(hc(&h), d), fresh(n));
        // RFC 1624 section 4's case: a header summing to 0xffff... with old checksum 0xdd2f,
        // field 0x5555 -> 0x3285, new checksum 0x0000 (eqn. 3 gives it, eqn. 2 would not).
        assert_eq!(replace2(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
