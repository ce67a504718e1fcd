//! The one seeded pseudo-random generator of bpfx's tests: the test kit's program generators,
//! the fuzz replays, and the randomised tests of the crates below the test kit (the
//! assembler's, the ELF loader's, the maps').
//!
//! It is a crate of its own, with no dependency, so that every crate can take it as a
//! dev-dependency without depending on the test kit (which depends on every engine crate: a
//! dev-dependency on it from a crate below would build that crate twice). It is not a
//! dependency of any shipped crate.
//!
//! # Invariants
//! - The same seed (or the same bytes) always gives the same sequence, on every platform: a
//!   failing seed reproduces, and the seeds and regression files of `fuzz/` keep describing
//!   the programs they were found with. The algorithm (splitmix64) and the way
//!   [`Rng::from_bytes`] hands out bytes must therefore never change.
//! - No method panics: [`Rng::below`] of 0 is 0, [`Rng::range`] of an empty range is its low
//!   end.
#![forbid(unsafe_code)]

/// Added to the state at each step (splitmix64's increment, 2^64 divided by the golden ratio).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// A small deterministic PRNG (splitmix64): fast, and good enough to spread choices. Made
/// [`from_bytes`](Rng::from_bytes), it hands out a fuzzer's bytes first, so that a generator
/// driven by it becomes a structure-aware fuzz target (the fuzzer's mutations change choices).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    /// Bytes to hand out before the PRNG takes over.
    bytes: Vec<u8>,
    at: usize,
}

impl Rng {
    /// A generator seeded with `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            bytes: Vec::new(),
            at: 0,
        }
    }

    /// A generator whose choices come from `data`, eight bytes at a time, then from the PRNG
    /// seeded with `data`'s length.
    pub fn from_bytes(data: &[u8]) -> Rng {
        Rng {
            state: data.len() as u64,
            bytes: data.to_vec(),
            at: 0,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        if self.at < self.bytes.len() {
            let end = (self.at + 8).min(self.bytes.len());
            let mut word = [0u8; 8];
            word[..end - self.at].copy_from_slice(&self.bytes[self.at..end]);
            self.at = end;
            return u64::from_le_bytes(word);
        }
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random byte (the low byte of [`Self::next_u64`]).
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// An index into a collection of `len` elements: a value in `0..len` (0 when `len` is 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A value in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.wrapping_sub(lo).wrapping_add(1) as u64;
        if hi < lo {
            return lo;
        }
        lo.wrapping_add(self.below(span) as i64)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// One element of a non-empty slice.
    ///
    /// # Panics
    /// If `items` is empty (there is nothing to pick: a bug in the caller's tables).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first outputs for seed 0 are splitmix64's published reference values: the sequence
    /// the committed fuzz seeds were found with.
    #[test]
    fn splitmix64_reference_values() {
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn bytes_come_first_then_the_prng_seeded_with_their_length() {
        let mut r = Rng::from_bytes(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(r.next_u64(), 0x0807_0605_0403_0201);
        assert_eq!(r.next_u64(), 9, "a short last word is zero-padded");
        assert_eq!(r.next_u64(), Rng::new(9).next_u64());
    }

    #[test]
    fn ranges_are_inclusive_and_bounded() {
        let mut r = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = r.range(-2, 2);
            assert!((-2..=2).contains(&v));
            seen[(v + 2) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.below(0), 0);
        assert_eq!(r.index(0), 0);
        assert_eq!(r.range(3, 2), 3);
        let full = r.range(i64::MIN, i64::MAX);
        assert!((i64::MIN..=i64::MAX).contains(&full));
    }

    #[test]
    fn chance_and_pick_stay_in_their_bounds() {
        let mut r = Rng::new(1);
        assert!((0..100).all(|_| !r.chance(0, 3)));
        assert!((0..100).all(|_| r.chance(3, 3)));
        assert!((0..100).all(|_| [4, 5].contains(&r.pick(&[4, 5]))));
    }
}
