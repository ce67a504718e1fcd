//! `BPF_MAP_TYPE_BLOOM_FILTER` (30): set membership with false positives and no false
//! negatives; `map_push_elem` (87) adds a value, `map_peek_elem` (89) tests one.
//!
//! # Layout
//! A host-side bit array of `AtomicU64` words: `ceil(max_entries * k / ln 2)` bits rounded up
//! to a power of two (at least 64), with `k` hash functions: the low 4 bits of the spec's
//! `map_extra` (BTF `__uint(map_extra, k)`), or 5 (the kernel's default) when they are 0. Bit
//! `i` of a value comes from a keyed SipHash of `(i, value)`, randomly keyed per map unless
//! `BPF_F_ZERO_SEED` asks for a fixed key.
//!
//! # Semantics (the kernel's)
//! - Creation: `key_size` 0, `value_size` and `max_entries` not 0, flags only
//!   `BPF_F_NUMA_NODE`, `BPF_F_ZERO_SEED` and the access flags, `map_extra` at most 15 (only
//!   its low 4 bits have a meaning) (`EINVAL`).
//! - Push: flags other than `BPF_ANY` are `EINVAL`. Peek: 0 when every bit of the value is
//!   set (probably present), `ENOENT` otherwise (surely absent).
//! - Pop and delete are `EOPNOTSUPP`; lookup, update and key iteration `EINVAL`. The host
//!   pushes with `update(&[], value, BPF_ANY)` and tests with `Map::bloom_contains`.
//!
//! # Concurrency
//! No lock: a push sets bits with atomic `or`s, a peek loads them.

use super::queue::NUMA_AND_ACCESS;
use super::{MapImpl, checked_size};
use crate::map::{MapError, MapKind, MapSpec, UpdateFlag};
use bpfx_exec::SharedMem;
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `BPF_F_ZERO_SEED`: hash with a fixed key.
const BPF_F_ZERO_SEED: u32 = 1 << 6;

/// Hash functions per value when `map_extra` asks for none (the kernel's default).
pub const BLOOM_HASHES: u32 = 5;

/// The bits of `map_extra` a bloom filter reads: the number of hash functions.
const MAP_EXTRA_HASHES: u64 = 0xf;

/// The number of hash functions `spec` asks for (its `map_extra` checked by [`host_bytes`]).
fn hashes(spec: &MapSpec) -> u32 {
    match (spec.map_extra & MAP_EXTRA_HASHES) as u32 {
        0 => BLOOM_HASHES,
        k => k,
    }
}

/// The number of bits for `k` hash functions: `ceil(n * k / ln 2)` rounded up to a power of
/// two, at least 64.
fn bits(max_entries: u32, k: u32) -> Option<u64> {
    let want = (f64::from(max_entries) * f64::from(k) / std::f64::consts::LN_2).ceil();
    // The kernel caps a filter at 2^31 bits; bpfx refuses more (E2BIG), which also keeps the
    // cast exact.
    if want > (1u64 << 31) as f64 {
        return None;
    }
    (want as u64).max(64).checked_next_power_of_two()
}

/// Checks the shape of a bloom filter as the kernel does and returns its host memory need.
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.key_size != 0 || spec.value_size == 0 || spec.max_entries == 0 {
        return Err(
            "bloom filters have no keys (key size 0) and values and max_entries not 0 (EINVAL)"
                .into(),
        );
    }
    if spec.flags & !(NUMA_AND_ACCESS | BPF_F_ZERO_SEED) != 0 {
        return Err(format!(
            "map flags {:#x} are not valid for a bloom filter (EINVAL)",
            spec.flags
        ));
    }
    if spec.map_extra & !MAP_EXTRA_HASHES != 0 {
        return Err(format!(
            "map_extra {:#x} asks for more than 15 hash functions (EINVAL)",
            spec.map_extra
        ));
    }
    let bits = bits(spec.max_entries, hashes(spec))
        .ok_or_else(|| "the bloom filter's bit array is too large (E2BIG)".to_string())?;
    checked_size(&[(bits / 64, 8)])
}

/// A bloom filter.
pub(crate) struct Bloom {
    value_size: usize,
    /// Hash functions per value, 1 to 15.
    hashes: u32,
    words: Box<[AtomicU64]>,
    /// `None`: the fixed key of `BPF_F_ZERO_SEED`.
    keys: Option<RandomState>,
}

impl Bloom {
    pub(crate) fn new(spec: &MapSpec) -> Bloom {
        let hashes = hashes(spec);
        let bits = bits(spec.max_entries, hashes).unwrap_or(64);
        Bloom {
            value_size: spec.value_size as usize,
            hashes,
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            keys: (spec.flags & BPF_F_ZERO_SEED == 0).then(RandomState::new),
        }
    }

    /// The bit positions of `value`.
    fn positions<'a>(&'a self, value: &'a [u8]) -> impl Iterator<Item = u64> + 'a {
        let value = &value[..self.value_size];
        let mask = (self.words.len() as u64 * 64) - 1;
        (0..self.hashes).map(move |i| {
            let mut h = match &self.keys {
                Some(k) => k.build_hasher(),
                None => DefaultHasher::new(),
            };
            (i, value).hash(&mut h);
            h.finish() & mask
        })
    }

    /// Whether every bit of `value` is set.
    pub(crate) fn contains(&self, value: &[u8]) -> bool {
        self.positions(value)
            .all(|b| self.words[(b / 64) as usize].load(Relaxed) & (1 << (b % 64)) != 0)
    }
}

impl MapImpl for Bloom {
    fn kind(&self) -> MapKind {
        MapKind::BloomFilter
    }

    fn block(&self) -> Option<&Arc<SharedMem>> {
        None
    }

    fn prog_lookup(&self, _key: &[u8], _cpu: u32) -> Option<u64> {
        None
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::BloomFilter))
    }

    fn prog_delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::NotSupported(MapKind::BloomFilter))
    }

    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags != 0 {
            return Err(MapError::Flags(flags));
        }
        for b in self.positions(value) {
            self.words[(b / 64) as usize].fetch_or(1 << (b % 64), Relaxed);
        }
        Ok(())
    }

    fn pop(&self, _remove: bool) -> Result<Vec<u8>, MapError> {
        Err(MapError::NotSupported(MapKind::BloomFilter))
    }

    fn peek_value(&self, value: &[u8]) -> Result<(), MapError> {
        if self.contains(value) {
            Ok(())
        } else {
            Err(MapError::NotFound)
        }
    }

    fn host_value_size(&self) -> usize {
        self.value_size
    }

    fn lookup(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::Unsupported(MapKind::BloomFilter))
    }

    fn update(&self, _key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        let flags = match flag {
            UpdateFlag::Any => 0,
            UpdateFlag::NoExist => 1,
            UpdateFlag::Exist => 2,
        };
        self.push(value, flags)
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::NotSupported(MapKind::BloomFilter))
    }

    fn next_key(&self, _key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::NotSupported(MapKind::BloomFilter))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        Vec::new()
    }

    /// The number of bits set (a bloom filter does not know its number of values).
    fn len(&self) -> usize {
        self.words
            .iter()
            .map(|w| w.load(Relaxed).count_ones() as usize)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let spec = MapSpec::new("b", MapKind::BloomFilter, 0, 4, 1000);
        // 1000 * 5 / ln 2 = 7214 bits, rounded up to 8192.
        assert_eq!(host_bytes(&spec), Ok(8192 / 8));
        let b = Bloom::new(&spec);
        for i in 0..1000u32 {
            b.push(&(i * 3).to_le_bytes(), 0).unwrap();
        }
        assert!((0..1000u32).all(|i| b.peek_value(&(i * 3).to_le_bytes()).is_ok()));
        let false_pos = (0..1000u32)
            .filter(|i| b.contains(&(i * 3 + 1).to_le_bytes()))
            .count();
        // About 1 % for these sizes; 10 % would mean the hashes are broken.
        assert!(false_pos < 100, "{false_pos} false positives in 1000");
        assert_eq!(b.push(&[0; 4], 2), Err(MapError::Flags(2)));
        assert_eq!(b.pop(true).map_err(MapError::errno), Err(95));
        let mut zero = spec.clone();
        zero.flags = BPF_F_ZERO_SEED;
        let (z1, z2) = (Bloom::new(&zero), Bloom::new(&zero));
        z1.push(b"abcd", 0).unwrap();
        z2.push(b"abcd", 0).unwrap();
        let bits = |b: &Bloom| b.words.iter().map(|w| w.load(Relaxed)).collect::<Vec<_>>();
        assert_eq!(bits(&z1), bits(&z2), "BPF_F_ZERO_SEED hashes alike");
        for bad in [
            MapSpec::new("b", MapKind::BloomFilter, 4, 4, 1),
            MapSpec::new("b", MapKind::BloomFilter, 0, 0, 1),
            MapSpec::new("b", MapKind::BloomFilter, 0, 4, 0),
        ] {
            assert!(host_bytes(&bad).is_err(), "{bad:?}");
        }
    }
}
