//! `BPF_MAP_TYPE_LPM_TRIE` (11): longest-prefix match over `{u32 prefixlen; u8 data[]}` keys.
//!
//! # Layout
//! Values live in one [`SharedMem`] slab of `max_entries * stride` bytes (stride =
//! `value_size` rounded up to 8) with a free list, as the hash maps' do, so a lookup returns
//! the address of a value that stays valid memory whatever happens to its entry later. The
//! index is host-side: one hash table per prefix length that holds entries, from the prefix
//! (the data with the bits past the prefix cleared) to the slot, and an ordered map for
//! iteration.
//!
//! # Semantics (the kernel's `Documentation/bpf/map_lpm_trie.rst` and UAPI)
//! - Keys: a little-endian (host order) `u32 prefixlen`, then `key_size - 4` data bytes in
//!   network order (`data[0]` holds the most significant bits). The data is 1 to 256 bytes:
//!   `max_prefixlen = 8 * (key_size - 4)`.
//! - Creation: `map_flags` must include `BPF_F_NO_PREALLOC` and hold nothing but it,
//!   `BPF_F_NUMA_NODE` and the access flags; `key_size` 5 to 260, `value_size` and
//!   `max_entries` not 0: anything else is `EINVAL`.
//! - Lookup (programs and host): the value of the longest stored prefix that matches the
//!   first `min(key.prefixlen, max_prefixlen)` bits of the key's data; `NULL`/`ENOENT` if none.
//! - Update: a `prefixlen` over `max_prefixlen` is `EINVAL`, flags other than `BPF_ANY`,
//!   `BPF_NOEXIST`, `BPF_EXIST` are `EINVAL`; `BPF_NOEXIST` on an existing prefix `EEXIST`,
//!   `BPF_EXIST` on a missing one `ENOENT`, a new prefix in a full trie `ENOSPC`, one the
//!   `Vm`'s memory limit has no room for `ENOMEM` (slots are charged a chunk at a time as
//!   they are first used, `map::Slots`, as the kernel allocates nodes on update). Entries
//!   are equal when their prefix lengths and their first `prefixlen` bits are; the key
//!   stored is the last one written (its bits past the prefix included, as the kernel keeps
//!   them).
//! - Delete: the exact prefix; `ENOENT` if absent, `EINVAL` for a `prefixlen` over the maximum.
//! - `next_key` (host): the kernel's post-order walk of the trie, so a more specific prefix
//!   comes before the prefixes that contain it, and between two disjoint prefixes the one
//!   whose first differing bit is 0 comes first; no key, an invalid key or a key not in the
//!   trie gives the first entry; `None` (`ENOENT`) after the last.
//!
//! # Concurrency
//! Lookups take the index's read lock (any number at once); updates and deletes its write
//! lock. The kernel's trie serializes writers under one spinlock too.

use super::{BPF_F_NO_PREALLOC, MapImpl, update_flag};
use crate::map::{MapError, MapKind, MapSpec, SlotCost, Slots, UpdateFlag};
use crate::memory::Charge;
use bpfx_exec::SharedMem;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Bytes of the `prefixlen` field at the start of every key.
pub const PREFIXLEN_SIZE: u32 = 4;
/// The largest data part of a key, in bytes (`max_prefixlen` 2048).
pub const MAX_DATA_SIZE: u32 = 256;

/// `BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG`:
/// the flags besides `BPF_F_NO_PREALLOC` an LPM trie accepts.
const OTHER_FLAGS: u32 = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 7) | (1 << 8);

/// Estimated host bytes per entry besides its value and its key copies: hash table slots and
/// the ordered map's node.
const ENTRY_OVERHEAD: u64 = 96;

/// Checks an LPM trie's shape as the kernel does and returns its host memory need.
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.flags & BPF_F_NO_PREALLOC == 0 {
        return Err("LPM tries must be created with BPF_F_NO_PREALLOC (EINVAL)".into());
    }
    if spec.flags & !(BPF_F_NO_PREALLOC | OTHER_FLAGS) != 0 {
        return Err(format!(
            "map flags {:#x} are not valid for an LPM trie (EINVAL)",
            spec.flags
        ));
    }
    let data = spec.key_size.saturating_sub(PREFIXLEN_SIZE);
    if data == 0 || data > MAX_DATA_SIZE {
        return Err(format!(
            "LPM trie keys are 5 to {} bytes, not {} (EINVAL)",
            PREFIXLEN_SIZE + MAX_DATA_SIZE,
            spec.key_size
        ));
    }
    if spec.value_size == 0 || spec.max_entries == 0 {
        return Err("value size and max_entries must not be 0 (EINVAL)".into());
    }
    let cost = cost(spec);
    cost.full(spec.max_entries)
        .ok_or_else(|| "the map's size overflows 64 bits (E2BIG)".to_string())
}

/// An LPM trie's [`SlotCost`], after [`host_bytes`]' shape checks: it is charged by use as the
/// hash maps are (the kernel allocates a trie's nodes on update too). Per slot: its value, two
/// copies of its key, its order key (a byte per prefix bit), the index's entries
/// ([`ENTRY_OVERHEAD`]), and its place in the slot table and free list three times over
/// (vectors growing by doubling). Nothing fixed; reserved: the values.
pub(crate) fn slot_cost(spec: &MapSpec) -> Result<SlotCost, String> {
    host_bytes(spec)?;
    Ok(cost(spec))
}

/// [`slot_cost`] without the checks (key sizes are at most 260 bytes once checked, so the
/// per-slot figure cannot overflow; the reservation saturates).
fn cost(spec: &MapSpec) -> SlotCost {
    let stride = u64::from(spec.value_size).next_multiple_of(8);
    let data = u64::from(spec.key_size.saturating_sub(PREFIXLEN_SIZE));
    let slot_table = 3 * (std::mem::size_of::<Option<Box<[u8]>>>() as u64 + 4);
    let index =
        (2 * u64::from(spec.key_size) + 8 * data + 1 + ENTRY_OVERHEAD).saturating_add(slot_table);
    SlotCost {
        reserved: stride.saturating_mul(u64::from(spec.max_entries)),
        fixed: 0,
        per_slot: stride.saturating_add(index),
        slab_per_slot: stride,
    }
}

/// An LPM trie.
pub(crate) struct LpmTrie {
    block: Arc<SharedMem>,
    stride: usize,
    value_size: usize,
    key_size: usize,
    max_prefixlen: u32,
    index: RwLock<Index>,
}

/// # Invariants
/// `by_len[l][p] == s` iff `order[order_key(p, l)] == s` iff `keys[s]` is a key of length
/// `l` whose masked data is `p`; no table in `by_len` is empty; a slot below the allocator's
/// high-water mark is either free or holds a key ([`Slots`]).
struct Index {
    by_len: BTreeMap<u32, HashMap<Box<[u8]>, u32>>,
    order: BTreeMap<Box<[u8]>, u32>,
    slots: Slots<Box<[u8]>>,
}

/// `data` with every bit from `len` on cleared.
fn masked(data: &[u8], len: u32) -> Box<[u8]> {
    let mut out: Box<[u8]> = data.into();
    let (full, rest) = ((len / 8) as usize, len % 8);
    if full < out.len() {
        if rest > 0 {
            out[full] &= 0xffu8 << (8 - rest);
            out[full + 1..].fill(0);
        } else {
            out[full..].fill(0);
        }
    }
    out
}

fn bit(data: &[u8], i: u32) -> u8 {
    (data[(i / 8) as usize] >> (7 - i % 8)) & 1
}

/// A byte string whose order is the trie's post-order: per prefix bit 1 (a 0 bit) or 2 (a 1
/// bit), then 3, so a prefix sorts after every longer prefix it contains, and subtrees of a 0
/// bit before those of a 1 bit.
fn order_key(data: &[u8], len: u32) -> Box<[u8]> {
    (0..len)
        .map(|i| 1 + bit(data, i))
        .chain(std::iter::once(3))
        .collect()
}

impl LpmTrie {
    pub(crate) fn new(spec: &MapSpec) -> Result<LpmTrie, crate::map::CreateError> {
        let stride = (spec.value_size as usize).next_multiple_of(8);
        let n = spec.max_entries;
        let cost = slot_cost(spec)?;
        Ok(LpmTrie {
            block: crate::map::alloc_block(n as usize * stride, true)?,
            stride,
            value_size: spec.value_size as usize,
            key_size: spec.key_size as usize,
            max_prefixlen: 8 * (spec.key_size - PREFIXLEN_SIZE),
            index: RwLock::new(Index {
                by_len: BTreeMap::new(),
                order: BTreeMap::new(),
                slots: Slots::new(n, &cost),
            }),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The prefix length and data of a key.
    fn split<'k>(&self, key: &'k [u8]) -> (u32, &'k [u8]) {
        let (len, data) = key.split_at(PREFIXLEN_SIZE as usize);
        (u32::from_le_bytes(len.try_into().expect("4 bytes")), data)
    }

    /// The prefix length of a key for update and delete: `EINVAL` past the maximum.
    fn exact<'k>(&self, key: &'k [u8]) -> Result<(u32, &'k [u8]), MapError> {
        let (len, data) = self.split(key);
        if len > self.max_prefixlen {
            return Err(MapError::PrefixLen {
                prefixlen: len,
                max: self.max_prefixlen,
            });
        }
        Ok((len, data))
    }

    /// The slot of the longest prefix matching `key`.
    fn longest(&self, ix: &Index, key: &[u8]) -> Option<u32> {
        if key.len() != self.key_size {
            return None;
        }
        let (len, data) = self.split(key);
        let len = len.min(self.max_prefixlen);
        ix.by_len
            .range(..=len)
            .rev()
            .find_map(|(&l, t)| t.get(&masked(data, l)).copied())
    }

    fn write_value(&self, slot: u32, value: &[u8]) {
        let mut v = value[..self.value_size].to_vec();
        v.resize(self.stride, 0);
        self.block.write(slot as usize * self.stride, &v);
    }

    fn read_value(&self, slot: u32) -> Vec<u8> {
        let mut v = vec![0; self.value_size];
        self.block.read(slot as usize * self.stride, &mut v);
        v
    }

    fn upsert(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        let (len, data) = self.exact(key)?;
        let prefix = masked(data, len);
        let mut ix = self.write();
        let found = ix.by_len.get(&len).and_then(|t| t.get(&prefix)).copied();
        let slot = match (found, flag) {
            (Some(_), UpdateFlag::NoExist) => return Err(MapError::Exists),
            (None, UpdateFlag::Exist) => return Err(MapError::NotFound),
            (Some(s), _) => s,
            (None, _) => {
                // A full trie is `ENOSPC`; one the memory limit has no room for, `ENOMEM`
                // (the kernel's node allocation failing), with nothing changed.
                let s = ix.slots.take()?.ok_or(MapError::OutOfSpace)?;
                ix.by_len.entry(len).or_default().insert(prefix, s);
                ix.order.insert(order_key(data, len), s);
                s
            }
        };
        ix.slots.set(slot, key.into());
        self.write_value(slot, value);
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> Result<(), MapError> {
        let (len, data) = self.exact(key)?;
        let mut ix = self.write();
        let table = ix.by_len.get_mut(&len).ok_or(MapError::NotFound)?;
        let slot = table.remove(&masked(data, len)).ok_or(MapError::NotFound)?;
        if table.is_empty() {
            ix.by_len.remove(&len);
        }
        ix.order.remove(&order_key(data, len));
        ix.slots.release(slot);
        Ok(())
    }
}

impl MapImpl for LpmTrie {
    fn kind(&self) -> MapKind {
        MapKind::LpmTrie
    }

    fn block(&self) -> Option<&Arc<SharedMem>> {
        Some(&self.block)
    }

    fn prog_lookup(&self, key: &[u8], _cpu: u32) -> Option<u64> {
        let slot = self.longest(&self.read(), key)?;
        Some(self.block.addr() + (slot as usize * self.stride) as u64)
    }

    fn prog_update(&self, key: &[u8], value: &[u8], flags: u64, _cpu: u32) -> Result<(), MapError> {
        self.upsert(key, value, update_flag(flags)?)
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.remove(key)
    }

    fn host_value_size(&self) -> usize {
        self.value_size
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let ix = self.read();
        Ok(self.longest(&ix, key).map(|s| self.read_value(s)))
    }

    fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        self.upsert(key, value, flag)
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.remove(key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let ix = self.read();
        let from = key
            .filter(|k| k.len() == self.key_size)
            .map(|k| self.split(k))
            .filter(|&(len, _)| len <= self.max_prefixlen)
            .map(|(len, data)| order_key(data, len))
            .filter(|ok| ix.order.contains_key(ok));
        let next = match from {
            Some(ok) => ix
                .order
                .range::<[u8], _>((Bound::Excluded(&*ok), Bound::Unbounded))
                .next(),
            None => ix.order.iter().next(),
        };
        Ok(next.and_then(|(_, &s)| ix.slots.key(s as usize).map(|k| k.to_vec())))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let ix = self.read();
        ix.order
            .values()
            .filter_map(|&s| Some((ix.slots.key(s as usize)?.to_vec(), self.read_value(s))))
            .collect()
    }

    fn len(&self) -> usize {
        self.read().order.len()
    }

    fn attach(&self, charge: &Charge) {
        self.write().slots.attach(charge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_rng::Rng;

    fn trie(data: u32, entries: u32) -> LpmTrie {
        let mut spec = MapSpec::new("t", MapKind::LpmTrie, 4 + data, 4, entries);
        spec.flags = BPF_F_NO_PREALLOC;
        host_bytes(&spec).unwrap();
        LpmTrie::new(&spec).unwrap()
    }

    fn key(len: u32, data: &[u8]) -> Vec<u8> {
        let mut k = len.to_le_bytes().to_vec();
        k.extend_from_slice(data);
        k
    }

    /// Whether the first `len` bits of `a` and `b` agree, bit by bit.
    fn matches(a: &[u8], b: &[u8], len: u32) -> bool {
        (0..len).all(|i| bit(a, i) == bit(b, i))
    }

    #[test]
    fn matches_a_brute_force_oracle() {
        for (seed, data) in [(1u64, 1u32), (2, 2), (3, 4), (4, 16)] {
            let mut rng = Rng::new(seed);
            let max = 8 * data;
            let t = trie(data, 64);
            // The oracle: (prefixlen, data as last written, value), one per distinct prefix.
            let mut oracle: Vec<(u32, Vec<u8>, u32)> = Vec::new();
            // Few distinct leading bytes, so prefixes nest and collide often.
            let rand_data = |rng: &mut Rng| -> Vec<u8> {
                (0..data)
                    .map(|i| {
                        if i == 0 {
                            (rng.below(4) as u8) << 6 | rng.below(4) as u8
                        } else {
                            rng.below(3) as u8
                        }
                    })
                    .collect()
            };
            for step in 0..3000u32 {
                let d = rand_data(&mut rng);
                let len = rng.below(u64::from(max) + 1) as u32;
                let k = key(len, &d);
                let pos = oracle
                    .iter()
                    .position(|(l, od, _)| *l == len && matches(od, &d, len));
                match rng.below(10) {
                    0..=4 => {
                        let flag = [UpdateFlag::Any, UpdateFlag::NoExist, UpdateFlag::Exist]
                            [rng.below(3) as usize];
                        let want = match (pos, flag) {
                            (Some(_), UpdateFlag::NoExist) => Err(MapError::Exists),
                            (None, UpdateFlag::Exist) => Err(MapError::NotFound),
                            (None, _) if oracle.len() == 64 => Err(MapError::OutOfSpace),
                            _ => Ok(()),
                        };
                        assert_eq!(t.update(&k, &step.to_le_bytes(), flag), want, "step {step}");
                        if want.is_ok() {
                            match pos {
                                Some(i) => oracle[i] = (len, d, step),
                                None => oracle.push((len, d, step)),
                            }
                        }
                    }
                    5 | 6 => {
                        let want = pos.map(|_| ()).ok_or(MapError::NotFound);
                        assert_eq!(t.delete(&k), want, "step {step}");
                        if let Some(i) = pos {
                            oracle.remove(i);
                        }
                    }
                    _ => {
                        let best = oracle
                            .iter()
                            .filter(|(l, od, _)| *l <= len && matches(od, &d, *l))
                            .max_by_key(|(l, _, _)| *l)
                            .map(|(_, _, v)| v.to_le_bytes().to_vec());
                        assert_eq!(t.lookup(&k), Ok(best.clone()), "step {step}");
                        let addr = t.prog_lookup(&k, 0);
                        assert_eq!(addr.is_some(), best.is_some());
                    }
                }
                assert_eq!(t.len(), oracle.len());
            }
            // Iteration: every key once, a more specific prefix before one containing it.
            let mut seen = Vec::new();
            let mut cur = None;
            while let Some(k) = t.next_key(cur.as_deref()).unwrap() {
                seen.push(k.clone());
                cur = Some(k);
            }
            assert_eq!(seen.len(), oracle.len());
            for (i, a) in seen.iter().enumerate() {
                let (la, da) = t.split(a);
                assert!(oracle.iter().any(|(l, od, _)| *l == la && od[..] == *da));
                for b in &seen[i + 1..] {
                    let (lb, db) = t.split(b);
                    assert!(
                        !(la < lb && matches(da, db, la)),
                        "{a:?} contains {b:?} but comes first"
                    );
                }
            }
            assert_eq!(t.entries().len(), oracle.len());
        }
    }

    #[test]
    fn iteration_is_post_order() {
        let t = trie(1, 8);
        for (len, d) in [(0, 0x00), (1, 0x80), (1, 0x00), (2, 0x40), (8, 0x41)] {
            t.update(&key(len, &[d]), &[0; 4], UpdateFlag::Any).unwrap();
        }
        let mut order = Vec::new();
        let mut cur = None;
        while let Some(k) = t.next_key(cur.as_deref()).unwrap() {
            order.push((k[0], k[4]));
            cur = Some(k);
        }
        assert_eq!(
            order,
            vec![(8, 0x41), (2, 0x40), (1, 0x00), (1, 0x80), (0, 0x00)]
        );
        // A key not in the trie, or an invalid one, starts over.
        assert_eq!(
            t.next_key(Some(&key(3, &[0]))).unwrap(),
            Some(key(8, &[0x41]))
        );
        assert_eq!(
            t.next_key(Some(&key(9, &[0]))).unwrap(),
            Some(key(8, &[0x41]))
        );
    }

    #[test]
    fn kernel_errors() {
        let t = trie(4, 1);
        assert_eq!(
            t.update(&key(33, &[0; 4]), &[0; 4], UpdateFlag::Any),
            Err(MapError::PrefixLen {
                prefixlen: 33,
                max: 32
            })
        );
        assert_eq!(
            t.delete(&key(33, &[0; 4])),
            Err(MapError::PrefixLen {
                prefixlen: 33,
                max: 32
            })
        );
        assert_eq!(
            t.prog_update(&key(8, &[10, 0, 0, 0]), &[1; 4], 4, 0),
            Err(MapError::Flags(4))
        );
        t.update(&key(8, &[10, 9, 9, 9]), &[1; 4], UpdateFlag::Any)
            .unwrap();
        // The same prefix with other trailing bits is the same entry.
        assert_eq!(
            t.update(&key(8, &[10, 0, 0, 0]), &[2; 4], UpdateFlag::NoExist),
            Err(MapError::Exists)
        );
        assert_eq!(
            t.update(&key(16, &[10, 0, 0, 0]), &[2; 4], UpdateFlag::Any),
            Err(MapError::OutOfSpace)
        );
        assert_eq!(t.delete(&key(16, &[10, 0, 0, 0])), Err(MapError::NotFound));
        assert_eq!(t.lookup(&key(32, &[10, 1, 2, 3])), Ok(Some(vec![1; 4])));
        assert_eq!(
            t.lookup(&key(7, &[10, 1, 2, 3])),
            Ok(None),
            "shorter than every prefix"
        );
        assert_eq!(t.lookup(&key(32, &[11, 1, 2, 3])), Ok(None));
        t.delete(&key(8, &[10, 0, 0, 0])).unwrap();
        assert_eq!(t.len(), 0);
        for (flags, k) in [
            (0, 8),
            (BPF_F_NO_PREALLOC | 2, 8),
            (BPF_F_NO_PREALLOC, 4),
            (BPF_F_NO_PREALLOC, 261),
        ] {
            let mut spec = MapSpec::new("t", MapKind::LpmTrie, k, 4, 1);
            spec.flags = flags;
            assert!(host_bytes(&spec).is_err(), "flags {flags:#x}, key size {k}");
        }
    }
}
