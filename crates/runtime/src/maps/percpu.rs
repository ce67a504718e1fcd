//! `BPF_MAP_TYPE_PERCPU_ARRAY` (6), `BPF_MAP_TYPE_PERCPU_HASH` (5) and
//! `BPF_MAP_TYPE_LRU_PERCPU_HASH` (10): a value per CPU for every entry.
//!
//! # Layout
//! One [`SharedMem`] block of `max_entries * cpus * stride` bytes (stride = `value_size`
//! rounded up to 8), CPU-major: the value of entry (or hash slot) `i` for CPU `c` is at
//! `(c * max_entries + i) * stride`, so each CPU's values are contiguous and two CPUs never
//! write the same cache lines for neighbouring entries.
//!
//! # Semantics (the kernel's)
//! - A program sees the value of the CPU it runs on (`map_lookup_elem` returns its address,
//!   `map_update_elem` writes it; a new hash entry created by a program has every other CPU's
//!   value zeroed); `map_lookup_percpu_elem` (helper 195) reaches any CPU's value, `NULL` for
//!   a CPU past the last.
//! - The host reads and writes all CPUs at once, as libbpf does: a buffer of `stride * cpus`
//!   bytes, CPU `c`'s value at `c * stride` (the padding reads as zeros and is ignored on
//!   writes).
//! - Errors: array index past the end `E2BIG`, `BPF_NOEXIST` on an array `EEXIST`, array
//!   delete `EINVAL`; hash: `BPF_NOEXIST` on an existing key `EEXIST`, `BPF_EXIST` or delete
//!   of a missing key `ENOENT`, a full map `E2BIG` (an LRU map evicts instead), a new key the
//!   `Vm`'s memory limit has no room for `ENOMEM` (an LRU map evicts instead; slots are
//!   charged a chunk at a time as they are first used, `map::Slots`); unknown flags
//!   `EINVAL`. At creation: array keys not 4 bytes, a zero size or zero entries, flags outside
//!   the kernel's masks (`BPF_F_MMAPABLE` on a per-CPU array, `BPF_F_NO_COMMON_LRU` on a
//!   non-LRU hash) `EINVAL`; `BPF_F_NO_PREALLOC` on an LRU map `ENOTSUPP`; a value over 32 KiB
//!   (the kernel's per-CPU unit), and the hash family's size rules (`map::hash_size_rules`)
//!   `E2BIG`.
//!
//! # Concurrency
//! The program path of a per-CPU array takes no lock at all: the value's address is
//! arithmetic. A per-CPU hash finds keys in one of [`SHARDS`] independently locked shards
//! (key hash → shard), so threads contend only when their keys share a shard, and only for the
//! index: the value itself is the thread's own CPU slot. Slot allocation (new keys only) takes
//! the allocator's lock after the shard's; eviction may need another shard, which it only
//! tries (`try_lock`), so no two locks are ever waited for in opposite orders.
//!
//! The LRU variant approximates least-recently-used with a second-chance clock (the kernel's
//! LRU is an approximation too): a lookup or update of an existing key sets the slot's
//! reference bit; a full map sweeps its slots from a clock hand, clearing set bits and
//! evicting the first slot found without one.

use super::{MapImpl, checked_size, update_flag};
use crate::map::CreateError;
use crate::map::{MapError, MapKind, MapSpec, SlotCost, Slots, UpdateFlag};
use crate::memory::Charge;
use bpfx_exec::SharedMem;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// The kernel's largest per-CPU value (`PCPU_MIN_UNIT_SIZE`), in bytes.
pub const MAX_PERCPU_VALUE: u32 = 32 << 10;

/// Index shards of a per-CPU hash map.
pub(crate) const SHARDS: usize = 64;

/// `BPF_F_NO_PREALLOC`, `BPF_F_NO_COMMON_LRU`, `BPF_F_NUMA_NODE`, the access flags and
/// `BPF_F_ZERO_SEED`: the flags a hash map accepts (the kernel's `HTAB_CREATE_FLAG_MASK`).
const HASH_FLAGS: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x40 | 0x80 | 0x100;
/// `BPF_F_NUMA_NODE`, the access flags, `BPF_F_INNER_MAP` and `BPF_F_PRESERVE_ELEMS`: the flags
/// a per-CPU array accepts (the kernel's array mask without `BPF_F_MMAPABLE`, which per-CPU
/// arrays refuse).
const PERCPU_ARRAY_FLAGS: u32 = 0x4 | 0x8 | 0x10 | 0x80 | 0x100 | (1 << 11) | (1 << 12);
/// `BPF_F_NO_PREALLOC`.
const NO_PREALLOC: u32 = 1;
/// `BPF_F_NO_COMMON_LRU`.
const NO_COMMON_LRU: u32 = 2;

/// Estimated host bytes per hash entry besides its values: the key's copy in the index and in
/// the allocator, and the hash table's slot.
const INDEX_ENTRY_OVERHEAD: u64 = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under these locks leaves index and allocator consistent enough for memory
    // safety (the block never moves), so a poisoned lock is taken over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn stride(spec: &MapSpec) -> usize {
    (spec.value_size as usize).next_multiple_of(8)
}

/// Checks the shape of a per-CPU map as the kernel does and returns its host memory need.
pub(crate) fn host_bytes(spec: &MapSpec, cpus: u32) -> Result<u64, String> {
    if spec.max_entries == 0 || spec.key_size == 0 || spec.value_size == 0 {
        return Err("key size, value size and max_entries must not be 0 (EINVAL)".into());
    }
    if spec.kind == MapKind::PerCpuArray && spec.key_size != 4 {
        return Err(format!(
            "array keys must be 4 bytes, not {} (EINVAL)",
            spec.key_size
        ));
    }
    let allowed = match spec.kind {
        MapKind::PerCpuArray => PERCPU_ARRAY_FLAGS,
        _ => HASH_FLAGS,
    };
    if spec.flags & !allowed != 0
        || (spec.kind == MapKind::PerCpuHash && spec.flags & NO_COMMON_LRU != 0)
    {
        return Err(format!(
            "map flags {:#x} are not valid for a {} map (EINVAL)",
            spec.flags, spec.kind
        ));
    }
    if spec.kind == MapKind::LruPerCpuHash && spec.flags & NO_PREALLOC != 0 {
        return Err("LRU maps are always preallocated: BPF_F_NO_PREALLOC (ENOTSUPP)".into());
    }
    if spec.value_size > MAX_PERCPU_VALUE {
        return Err(format!(
            "per-CPU values are at most {MAX_PERCPU_VALUE} bytes, not {} (E2BIG)",
            spec.value_size
        ));
    }
    if spec.kind != MapKind::PerCpuArray {
        crate::map::hash_size_rules(spec)?;
    }
    let n = u64::from(spec.max_entries);
    let values = (n * u64::from(cpus), stride(spec) as u64);
    if spec.kind == MapKind::PerCpuArray {
        checked_size(&[values])
    } else {
        let cost = hash_cost(spec, cpus)?;
        cost.full(spec.max_entries)
            .ok_or_else(|| "the map's size overflows 64 bits (E2BIG)".to_string())
    }
}

/// The [`SlotCost`] of a per-CPU hash, after [`host_bytes`]' shape checks.
pub(crate) fn slot_cost(spec: &MapSpec, cpus: u32) -> Result<SlotCost, String> {
    host_bytes(spec, cpus)?;
    hash_cost(spec, cpus)
}

/// A per-CPU hash's [`SlotCost`]: per slot, its value on every CPU, the key's copies in the
/// index and the slot table with the index's slot ([`INDEX_ENTRY_OVERHEAD`]), and its entry
/// in the slot table and the free list, three times over (vectors growing by doubling, while
/// the old one is copied), and with LRU its reference bit (a byte, rounding up). Nothing
/// fixed. Reserved: the values of every entry on every CPU and an LRU map's reference bits
/// (zero pages until used).
fn hash_cost(spec: &MapSpec, cpus: u32) -> Result<SlotCost, String> {
    let too_big = || "the map's size overflows 64 bits (E2BIG)".to_string();
    let n = u64::from(spec.max_entries);
    let slab_per_slot = u64::from(cpus)
        .checked_mul(stride(spec) as u64)
        .ok_or_else(too_big)?;
    let slot_table = 3 * (std::mem::size_of::<Option<Arc<[u8]>>>() + 4) as u64;
    let lru = u64::from(spec.kind == MapKind::LruPerCpuHash);
    let per_slot = checked_size(&[
        (1, slab_per_slot),
        (2, u64::from(spec.key_size)),
        (1, INDEX_ENTRY_OVERHEAD + slot_table + lru),
    ])?;
    let values = slab_per_slot.checked_mul(n).ok_or_else(too_big)?;
    Ok(SlotCost {
        reserved: values.saturating_add(lru * n.div_ceil(64) * 8),
        fixed: 0,
        per_slot,
        slab_per_slot,
    })
}

/// The values of a per-CPU map: shared by the array and the hash.
struct Values {
    block: Arc<SharedMem>,
    entries: usize,
    stride: usize,
    value_size: usize,
    cpus: u32,
}

impl Values {
    fn new(spec: &MapSpec, cpus: u32) -> Result<Values, CreateError> {
        let (entries, stride) = (spec.max_entries as usize, stride(spec));
        Ok(Values {
            block: crate::map::alloc_block(entries * cpus as usize * stride, true)?,
            entries,
            stride,
            value_size: spec.value_size as usize,
            cpus,
        })
    }

    fn off(&self, slot: usize, cpu: u32) -> usize {
        (cpu as usize * self.entries + slot) * self.stride
    }

    fn addr(&self, slot: usize, cpu: u32) -> u64 {
        self.block.addr() + self.off(slot, cpu) as u64
    }

    /// Writes one CPU's value, zeroing the padding.
    fn write_cpu(&self, slot: usize, cpu: u32, value: &[u8]) {
        let mut v = value[..self.value_size].to_vec();
        v.resize(self.stride, 0);
        self.block.write(self.off(slot, cpu), &v);
    }

    fn zero_cpu(&self, slot: usize, cpu: u32) {
        self.block.write(self.off(slot, cpu), &vec![0; self.stride]);
    }

    fn host_size(&self) -> usize {
        self.stride * self.cpus as usize
    }

    /// All CPUs' values of `slot`, as libbpf lays them out.
    fn read_all(&self, slot: usize) -> Vec<u8> {
        let mut out = vec![0; self.host_size()];
        for (c, chunk) in out.chunks_mut(self.stride).enumerate() {
            self.block.read(self.off(slot, c as u32), chunk);
        }
        out
    }

    fn write_all(&self, slot: usize, value: &[u8]) {
        for (c, chunk) in value.chunks(self.stride).enumerate() {
            self.write_cpu(slot, c as u32, chunk);
        }
    }

    fn cpu(&self, cpu: u64) -> Option<u32> {
        u32::try_from(cpu).ok().filter(|&c| c < self.cpus)
    }

    fn check_host_value(&self, value: &[u8]) -> Result<(), MapError> {
        if value.len() != self.host_size() {
            return Err(MapError::ValueSize {
                expected: u32::try_from(self.host_size()).unwrap_or(u32::MAX),
                got: value.len(),
            });
        }
        Ok(())
    }
}

/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub(crate) struct PerCpuArray {
    values: Values,
}

impl PerCpuArray {
    pub(crate) fn new(spec: &MapSpec, cpus: u32) -> Result<PerCpuArray, CreateError> {
        Ok(PerCpuArray {
            values: Values::new(spec, cpus)?,
        })
    }

    fn index(&self, key: &[u8]) -> Option<usize> {
        let i = u32::from_le_bytes(key.try_into().ok()?) as usize;
        (i < self.values.entries).then_some(i)
    }
}

impl MapImpl for PerCpuArray {
    fn kind(&self) -> MapKind {
        MapKind::PerCpuArray
    }

    fn block(&self) -> Option<&Arc<SharedMem>> {
        Some(&self.values.block)
    }

    fn percpu_array_layout(&self) -> Option<(u32, u32)> {
        Some((u32::try_from(self.values.stride).ok()?, self.values.cpus))
    }

    fn prog_lookup(&self, key: &[u8], cpu: u32) -> Option<u64> {
        Some(self.values.addr(self.index(key)?, cpu))
    }

    fn prog_lookup_on(&self, key: &[u8], cpu: u64) -> Option<u64> {
        Some(self.values.addr(self.index(key)?, self.values.cpu(cpu)?))
    }

    fn prog_update(&self, key: &[u8], value: &[u8], flags: u64, cpu: u32) -> Result<(), MapError> {
        let flag = update_flag(flags)?;
        let i = self.index(key).ok_or(MapError::Full)?;
        if flag == UpdateFlag::NoExist {
            return Err(MapError::Exists);
        }
        self.values.write_cpu(i, cpu, value);
        Ok(())
    }

    fn prog_delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::PerCpuArray))
    }

    fn host_value_size(&self) -> usize {
        self.values.host_size()
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self.index(key).map(|i| self.values.read_all(i)))
    }

    fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        self.values.check_host_value(value)?;
        let i = self.index(key).ok_or(MapError::Full)?;
        if flag == UpdateFlag::NoExist {
            return Err(MapError::Exists);
        }
        self.values.write_all(i, value);
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.prog_delete(key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        // As the kernel's arrays: an index past the end starts over at 0.
        let next = match key.and_then(|k| self.index(k)) {
            None => 0,
            Some(i) if i + 1 == self.values.entries => return Ok(None),
            Some(i) => i + 1,
        };
        Ok(Some((next as u32).to_le_bytes().to_vec()))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..self.values.entries)
            .map(|i| ((i as u32).to_le_bytes().to_vec(), self.values.read_all(i)))
            .collect()
    }

    fn len(&self) -> usize {
        self.values.entries
    }
}

/// `BPF_MAP_TYPE_PERCPU_HASH` and `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
///
/// # Invariants
/// A slot below the allocator's high-water mark is either free or named by exactly one key,
/// which maps to it in the shard of that key and is stored as the slot's key in `alloc.slots`;
/// a slot leaves a shard only under that shard's lock, and changes owner only under the
/// allocator's lock. Slots are handed out, and charged, a chunk at a time ([`Slots`]).
pub(crate) struct PerCpuHash {
    kind: MapKind,
    values: Values,
    shards: Box<[Mutex<Shard>]>,
    /// Picks the shard: keyed at random per map, as each shard's index is ([`Shard`]).
    hasher: foldhash::quality::RandomState,
    alloc: Mutex<Alloc>,
    /// LRU only: a reference bit per slot ([`RefBits`]).
    referenced: Option<RefBits>,
}

/// One shard of a per-CPU hash's index: key → slot, hashed by foldhash under a random key of
/// its own (keyed, as packets choose the keys; see `map::ShardIndex`).
type Shard = HashMap<Box<[u8]>, u32, foldhash::quality::RandomState>;

struct Alloc {
    /// The slots and each one's key: `next_key` walks the slots in order.
    slots: Slots<Arc<[u8]>>,
    /// LRU: the clock hand, below the slots' high-water mark.
    hand: usize,
}

impl PerCpuHash {
    pub(crate) fn new(spec: &MapSpec, cpus: u32) -> Result<PerCpuHash, CreateError> {
        let n = spec.max_entries;
        let cost = slot_cost(spec, cpus)?;
        let referenced = match spec.kind {
            MapKind::LruPerCpuHash => Some(RefBits::new(n)?),
            _ => None,
        };
        Ok(PerCpuHash {
            kind: spec.kind,
            values: Values::new(spec, cpus)?,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: foldhash::quality::RandomState::default(),
            alloc: Mutex::new(Alloc {
                slots: Slots::new(n, &cost),
                hand: 0,
            }),
            referenced,
        })
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        self.hasher.hash_one(key) as usize % SHARDS
    }

    fn touch(&self, slot: u32) {
        if let Some(r) = &self.referenced {
            r.set(slot as usize);
        }
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let slot = *lock(&self.shards[self.shard_of(key)]).get(key)?;
        self.touch(slot);
        Some(slot as usize)
    }

    /// Inserts or replaces `key`; `write(slot, new)` stores the value under the shard's lock,
    /// so two updates of one key never interleave.
    fn upsert(
        &self,
        key: &[u8],
        flag: UpdateFlag,
        write: impl FnOnce(usize, bool),
    ) -> Result<(), MapError> {
        let si = self.shard_of(key);
        let mut shard = lock(&self.shards[si]);
        match (shard.get(key).copied(), flag) {
            (Some(_), UpdateFlag::NoExist) => Err(MapError::Exists),
            (None, UpdateFlag::Exist) => Err(MapError::NotFound),
            (Some(s), _) => {
                self.touch(s);
                write(s as usize, false);
                Ok(())
            }
            (None, _) => {
                let s = self.alloc_slot(si, &mut shard, key)?;
                shard.insert(key.into(), s);
                write(s as usize, true);
                Ok(())
            }
        }
    }

    /// A slot for `key` (whose shard `si` the caller holds): a free or fresh one, or with
    /// LRU an evicted one when the map is full or the memory limit has no room for more
    /// (`ENOMEM` only when there is nothing to evict); without LRU, `E2BIG` when full and
    /// `ENOMEM` past the limit.
    fn alloc_slot(&self, si: usize, shard: &mut Shard, key: &[u8]) -> Result<u32, MapError> {
        let mut a = lock(&self.alloc);
        let slot = match a.slots.take() {
            Ok(Some(s)) => s,
            taken => {
                let e = taken.err().unwrap_or(MapError::Full);
                let refs = self.referenced.as_ref().ok_or(e)?;
                self.evict(&mut a, refs, si, shard).ok_or(e)?
            }
        };
        a.slots.set(slot, key.into());
        Ok(slot)
    }

    /// The second-chance sweep: at most two turns of the clock.
    fn evict(&self, a: &mut Alloc, refs: &RefBits, si: usize, held: &mut Shard) -> Option<u32> {
        // Only the slots handed out hold keys.
        let n = a.slots.high_water();
        for _ in 0..2 * n {
            let c = a.hand % n;
            a.hand = (c + 1) % n;
            if refs.take(c) {
                continue;
            }
            let Some(victim) = a.slots.key(c).map(|k| &k[..]) else {
                continue;
            };
            let vs = self.shard_of(victim);
            // The victim must still map to this slot in its shard: a key being deleted has
            // left its shard already and its slot goes back to the free list.
            let removed = if vs == si {
                take_if(held, victim, c)
            } else {
                match self.shards[vs].try_lock() {
                    Ok(mut g) => take_if(&mut g, victim, c),
                    Err(TryLockError::Poisoned(p)) => take_if(&mut p.into_inner(), victim, c),
                    Err(TryLockError::WouldBlock) => false,
                }
            };
            if removed {
                a.slots.clear(c as u32);
                return Some(c as u32);
            }
        }
        None
    }

    fn remove(&self, key: &[u8]) -> Result<(), MapError> {
        let mut shard = lock(&self.shards[self.shard_of(key)]);
        let slot = shard.remove(key).ok_or(MapError::NotFound)?;
        lock(&self.alloc).slots.release(slot);
        if let Some(r) = &self.referenced {
            r.take(slot as usize);
        }
        Ok(())
    }

    /// Keys and slots in key byte order.
    fn sorted(&self) -> Vec<(Box<[u8]>, u32)> {
        let mut all: Vec<_> = self
            .shards
            .iter()
            .flat_map(|s| {
                lock(s)
                    .iter()
                    .map(|(k, &v)| (k.clone(), v))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all
    }
}

/// An LRU per-CPU hash's reference bits, 64 to a word, in a zeroed reservation
/// ([`bpfx_exec::zeroed_words`]): resident only as far as slots are used.
struct RefBits(Box<[AtomicU64]>);

impl RefBits {
    fn new(slots: u32) -> Result<RefBits, CreateError> {
        let words = (slots as usize).div_ceil(64);
        bpfx_exec::zeroed_words(words)
            .map(RefBits)
            .ok_or(CreateError::NoMemory(words as u64 * 8))
    }

    fn set(&self, slot: usize) {
        self.0[slot / 64].fetch_or(1 << (slot % 64), Relaxed);
    }

    /// Clears the bit of `slot`, returning whether it was set.
    fn take(&self, slot: usize) -> bool {
        let bit = 1 << (slot % 64);
        self.0[slot / 64].fetch_and(!bit, Relaxed) & bit != 0
    }
}

fn take_if(shard: &mut Shard, key: &[u8], slot: usize) -> bool {
    if shard.get(key).is_some_and(|&s| s as usize == slot) {
        shard.remove(key);
        true
    } else {
        false
    }
}

impl MapImpl for PerCpuHash {
    fn kind(&self) -> MapKind {
        self.kind
    }

    fn block(&self) -> Option<&Arc<SharedMem>> {
        Some(&self.values.block)
    }

    fn prog_lookup(&self, key: &[u8], cpu: u32) -> Option<u64> {
        Some(self.values.addr(self.find(key)?, cpu))
    }

    fn prog_lookup_on(&self, key: &[u8], cpu: u64) -> Option<u64> {
        let cpu = self.values.cpu(cpu)?;
        Some(self.values.addr(self.find(key)?, cpu))
    }

    fn prog_update(&self, key: &[u8], value: &[u8], flags: u64, cpu: u32) -> Result<(), MapError> {
        let flag = update_flag(flags)?;
        let v = &self.values;
        self.upsert(key, flag, |slot, new| {
            if new {
                for c in (0..v.cpus).filter(|&c| c != cpu) {
                    v.zero_cpu(slot, c);
                }
            }
            v.write_cpu(slot, cpu, value);
        })
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.remove(key)
    }

    fn host_value_size(&self) -> usize {
        self.values.host_size()
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let si = self.shard_of(key);
        // Read under the shard's lock, so the slot is not reused for another key meanwhile.
        let shard = lock(&self.shards[si]);
        Ok(shard.get(key).map(|&s| self.values.read_all(s as usize)))
    }

    fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        self.values.check_host_value(value)?;
        self.upsert(key, flag, |slot, _| self.values.write_all(slot, value))
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.remove(key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        // The key's shard, then (released) the allocator: the order `remove` takes them.
        let slot = key.and_then(|k| lock(&self.shards[self.shard_of(k)]).get(k).copied());
        Ok(crate::map::next_in_slots(
            lock(&self.alloc).slots.keys(),
            slot,
        ))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.sorted()
            .into_iter()
            .filter_map(|(k, _)| {
                let v = self.lookup(&k).ok().flatten()?;
                Some((k.into_vec(), v))
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    fn attach(&self, charge: &Charge) {
        lock(&self.alloc).slots.attach(charge);
    }
}

impl std::fmt::Debug for PerCpuHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerCpuHash")
            .field("kind", &self.kind)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: MapKind, k: u32, v: u32, n: u32) -> MapSpec {
        MapSpec::new("p", kind, k, v, n)
    }

    #[test]
    fn array_keeps_a_value_per_cpu() {
        let s = spec(MapKind::PerCpuArray, 4, 4, 2);
        assert_eq!(host_bytes(&s, 3), Ok(2 * 3 * 8));
        let a = PerCpuArray::new(&s, 3).unwrap();
        let k1 = 1u32.to_le_bytes();
        a.prog_update(&k1, &[1, 2, 3, 4], 0, 2).unwrap();
        let addr0 = a.prog_lookup(&k1, 0).unwrap();
        let addr2 = a.prog_lookup(&k1, 2).unwrap();
        assert_eq!(addr2 - addr0, 2 * 2 * 8, "CPU-major layout");
        assert_eq!(a.prog_lookup_on(&k1, 2), Some(addr2));
        assert_eq!(a.prog_lookup_on(&k1, 3), None, "no CPU 3");
        let mut want = vec![0; 24];
        want[16..20].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(a.lookup(&k1), Ok(Some(want)));
        assert_eq!(a.prog_update(&k1, &[0; 4], 1, 0), Err(MapError::Exists));
        assert_eq!(a.prog_update(&k1, &[0; 4], 3, 0), Err(MapError::Flags(3)));
        let k2 = 2u32.to_le_bytes();
        assert_eq!(a.prog_update(&k2, &[0; 4], 0, 0), Err(MapError::Full));
        assert_eq!(
            a.update(&k1, &[0; 8], UpdateFlag::Any)
                .map_err(|e| e.errno()),
            Err(22)
        );
        let all: Vec<u8> = (0..24).collect();
        a.update(&k1, &all, UpdateFlag::Any).unwrap();
        // The padding is not stored.
        let mut want = all.clone();
        for c in 0..3 {
            want[c * 8 + 4..c * 8 + 8].fill(0);
        }
        assert_eq!(a.lookup(&k1), Ok(Some(want)));
        assert_eq!(
            a.delete(&k1),
            Err(MapError::Unsupported(MapKind::PerCpuArray))
        );
        assert_eq!(a.next_key(None), Ok(Some(0u32.to_le_bytes().to_vec())));
        assert_eq!(a.next_key(Some(&k1)), Ok(None));
        assert_eq!(a.next_key(Some(&k2)), Ok(Some(0u32.to_le_bytes().to_vec())));
        for bad in [
            spec(MapKind::PerCpuArray, 8, 4, 1),
            spec(MapKind::PerCpuArray, 4, 0, 1),
            spec(MapKind::PerCpuHash, 4, 4, 0),
            spec(MapKind::PerCpuHash, 4, MAX_PERCPU_VALUE + 1, 1),
            spec(MapKind::LruPerCpuHash, 4_194_300, 4, 1),
            spec(MapKind::PerCpuHash, 4, 4, (1 << 27) + 1),
            MapSpec {
                flags: NO_PREALLOC,
                ..spec(MapKind::LruPerCpuHash, 4, 4, 1)
            },
            MapSpec {
                flags: NO_COMMON_LRU,
                ..spec(MapKind::PerCpuHash, 4, 4, 1)
            },
            MapSpec {
                flags: 1 << 10,
                ..spec(MapKind::PerCpuArray, 4, 4, 1)
            },
        ] {
            assert!(host_bytes(&bad, 2).is_err(), "{bad:?}");
        }
        assert!(host_bytes(&spec(MapKind::PerCpuArray, 4, 8, u32::MAX), u32::MAX).is_err());
        for ok in [
            MapSpec {
                flags: NO_PREALLOC,
                ..spec(MapKind::PerCpuHash, 4, 4, 1)
            },
            MapSpec {
                flags: NO_COMMON_LRU,
                ..spec(MapKind::LruPerCpuHash, 4, 4, 1)
            },
        ] {
            assert!(host_bytes(&ok, 2).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn hash_flags_full_and_new_entries_zero_other_cpus() {
        let h = PerCpuHash::new(&spec(MapKind::PerCpuHash, 2, 8, 2), 2).unwrap();
        h.update(b"aa", &[7; 16], UpdateFlag::Any).unwrap();
        h.delete(b"aa").unwrap();
        // The slot is reused; a program's insert zeroes the other CPU's stale value.
        h.prog_update(b"bb", &[1; 8], 1, 1).unwrap();
        let mut want = vec![0; 8];
        want.extend([1; 8]);
        assert_eq!(h.lookup(b"bb"), Ok(Some(want)));
        assert_eq!(h.prog_update(b"bb", &[1; 8], 1, 1), Err(MapError::Exists));
        assert_eq!(h.prog_update(b"cc", &[1; 8], 2, 1), Err(MapError::NotFound));
        h.prog_update(b"cc", &[2; 8], 0, 0).unwrap();
        assert_eq!(h.prog_update(b"dd", &[3; 8], 0, 0), Err(MapError::Full));
        assert_eq!(h.delete(b"dd"), Err(MapError::NotFound));
        // Updating an existing key from a program changes only its CPU's value.
        h.prog_update(b"bb", &[9; 8], 2, 0).unwrap();
        assert_eq!(h.lookup(b"bb"), Ok(Some([[9; 8], [1; 8]].concat())));
        assert_eq!(h.next_key(None), Ok(Some(b"bb".to_vec())));
        assert_eq!(h.next_key(Some(b"bb")), Ok(Some(b"cc".to_vec())));
        assert_eq!(h.next_key(Some(b"cc")), Ok(None));
        assert_eq!(h.next_key(Some(b"zz")), Ok(Some(b"bb".to_vec())));
        assert_eq!(h.len(), 2);
        assert_eq!(h.entries().len(), 2);
    }

    #[test]
    fn lru_evicts_a_key_not_used_since_the_last_sweep() {
        let h = PerCpuHash::new(&spec(MapKind::LruPerCpuHash, 1, 4, 2), 1).unwrap();
        h.update(b"a", &[1; 8], UpdateFlag::Any).unwrap();
        h.update(b"b", &[2; 8], UpdateFlag::Any).unwrap();
        assert!(h.prog_lookup(b"a", 0).is_some(), "a is used");
        h.update(b"c", &[3; 8], UpdateFlag::Any).unwrap();
        let keys: Vec<_> = h.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec()]);
        // Many inserts into a full LRU map always succeed.
        for i in 0..50u8 {
            h.prog_update(&[i], &[i; 4], 0, 0).unwrap();
            assert_eq!(h.len(), 2);
        }
    }

    #[test]
    fn concurrent_inserts_lookups_and_deletes_keep_the_index_consistent() {
        let h = Arc::new(PerCpuHash::new(&spec(MapKind::LruPerCpuHash, 4, 8, 16), 4).unwrap());
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..2000u32 {
                        let k = ((i * 7 + t) % 40).to_le_bytes();
                        match i % 3 {
                            0 => h.prog_update(&k, &[t as u8; 8], 0, t).unwrap(),
                            1 => {
                                h.prog_lookup(&k, t);
                            }
                            _ => {
                                let _ = h.prog_delete(&k);
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let a = lock(&h.alloc);
        let mut owned = 0;
        for shard in h.shards.iter() {
            for (k, &s) in lock(shard).iter() {
                assert_eq!(a.slots.key(s as usize).map(|k| &k[..]), Some(&**k));
                owned += 1;
            }
        }
        assert_eq!(
            owned,
            a.slots.len(),
            "every slot holding a key is in the index"
        );
        assert!(a.slots.high_water() <= 16);
    }
}
