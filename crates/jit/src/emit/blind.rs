//! Constant blinding ([`crate::JitOptions::blinding`]): no immediate the program chose appears
//! in executable memory.
//!
//! Each such immediate `v` is materialised in a register as `mov r, v ^ k` then `xor r, k`,
//! with a fresh key `k` per immediate from a stream seeded by the OS ([`seed`]), so the bytes in
//! the code are `v ^ k` and `k`, neither chosen by the program. Skipped, by design:
//! - values in `-128..=127`: an 8-bit immediate gives at most one chosen byte, which the
//!   program could get from any opcode or register choice anyway; they are also the commonest
//!   constants (counters, small offsets), so blinding them would cost the most;
//! - shift counts (masked to 0..=63) and 16-bit memory offsets, as in the kernel's blinding;
//! - budget charges and refunds, which are block lengths of at most 65 ([`crate::analysis::blocks`]).
//!
//! Pcs written by trap exits are blinded like program constants: a program's length decides
//! them, so an author can pick them by padding.
//!
//! After assembly, [`Exposure::exposed`] scans every 4-byte window that overlaps a key-derived
//! immediate for the program's blinded constants: a chance alignment of key bytes with their
//! neighbours makes the compiler retry with a fresh seed.

use super::{Emitter, asm, wide};
use crate::abi::x;
use bpfx_bytecode::Width;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};

/// A fresh random seed: `RandomState`'s keys come from the OS's random source once per
/// thread and change on every call, and SipHash keyed with them is unpredictable.
pub(crate) fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6270_6678_626c_6e64);
    h.finish()
}

/// Whether a constant is blinded (see the module doc for the small ones that are not).
pub(crate) fn needs_blinding(v: i64) -> bool {
    !(-128..=127).contains(&v)
}

/// Blinding state of one compilation.
#[derive(Debug)]
pub(crate) struct Blinder {
    /// splitmix64 state.
    state: u64,
    /// What a scan for exposed constants needs.
    pub(crate) exposure: Exposure,
}

/// Where the key-derived bytes are and which constants must not show.
#[derive(Debug, Default)]
pub(crate) struct Exposure {
    /// Byte ranges of key-derived immediates in the code.
    ranges: Vec<(usize, usize)>,
    /// The blinded constants, as 4-byte little-endian patterns.
    patterns: HashSet<u32>,
}

impl Exposure {
    /// Whether a 4-byte window touching a key-derived immediate spells a blinded constant.
    pub(crate) fn exposed(&self, code: &[u8]) -> bool {
        self.ranges.iter().any(|&(start, end)| {
            (start.saturating_sub(3)..end).any(|at| {
                code.get(at..at + 4).is_some_and(|w| {
                    let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                    self.patterns.contains(&w)
                })
            })
        })
    }
}

impl Blinder {
    pub(crate) fn new(seed: u64) -> Blinder {
        Blinder {
            state: seed,
            exposure: Exposure::default(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Emitter<'_> {
    /// Whether `v` must be blinded in this compilation.
    pub(crate) fn blinds(&self, v: i64) -> bool {
        self.blind.is_some() && needs_blinding(v)
    }

    /// A fresh key for a constant `v` about to be blinded, recording `v` as a pattern that
    /// must not show.
    fn key(&mut self, v: u64) -> u64 {
        // Only called when blinding is on; a 0 key would still compute `v` correctly.
        let Some(b) = self.blind.as_mut() else {
            return 0;
        };
        b.exposure.patterns.insert(v as u32);
        if v >> 32 != 0 && v >> 32 != u64::from(u32::MAX) {
            b.exposure.patterns.insert((v >> 32) as u32);
        }
        b.next()
    }

    /// The last `n` bytes emitted are key-derived.
    fn mark(&mut self, n: usize) {
        let end = self.offset();
        if let Some(b) = self.blind.as_mut() {
            b.exposure.ranges.push((end - n, end));
        }
    }

    /// `r = sext(v)` (64-bit, so its low half is `v` too), blinded.
    pub(crate) fn emit_blinded_sext(&mut self, r: u8, v: i32) {
        let k = self.key(v as i64 as u64) as i32;
        // sext(v ^ k) ^ sext(k) = sext(v): sign extension commutes with xor.
        asm!(self; mov Rq(r), DWORD v ^ k);
        self.mark(4);
        asm!(self; xor Rq(r), DWORD k);
        self.mark(4);
    }

    /// `r = v` zero-extended from 32 bits, blinded.
    pub(crate) fn emit_blinded_u32(&mut self, r: u8, v: u32) {
        let k = self.key(u64::from(v)) as u32;
        wide!(self, Width::W32; mov R(r), DWORD (v ^ k) as i32);
        self.mark(4);
        wide!(self, Width::W32; xor R(r), DWORD k as i32);
        self.mark(4);
    }

    /// `r = v` for a full 64-bit value, blinded; `r` must not be r11, which holds the key.
    pub(crate) fn emit_blinded_u64(&mut self, r: u8, v: u64) {
        let k = self.key(v);
        asm!(self; mov Rq(r), QWORD (v ^ k) as i64);
        self.mark(8);
        asm!(self; mov r11, QWORD k as i64);
        self.mark(8);
        asm!(self; xor Rq(r), r11);
    }
}

const _: () = assert!(x::R11 == 11);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_scans_windows_touching_key_bytes_only() {
        let mut e = Exposure::default();
        e.patterns.insert(0x9090_9090);
        let code = [0x90, 0x90, 0x90, 0x90, 0x00, 0x00, 0x00, 0x90, 0x90, 0x90];
        e.ranges.push((5, 6));
        assert!(
            !e.exposed(&code),
            "the constant lies outside every key range"
        );
        e.ranges.push((3, 4));
        assert!(e.exposed(&code), "a window ending in a key byte spells it");
    }

    #[test]
    fn seeds_differ() {
        assert_ne!(seed(), seed());
    }
}
