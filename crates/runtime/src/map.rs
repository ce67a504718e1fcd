//! Maps: array, hash, LRU hash, ring buffer and program array here, the other kinds in
//! [`crate::maps`]; shared by the host and by programs running on any number of threads.
//!
//! Every byte a program can reach lives in one [`SharedMem`] block per map, so map values are
//! real guest memory: `map_lookup_elem` returns the address of the value inside the block, and
//! the engines admit exactly the blocks of the maps the program names ([`bpfx_exec::Env::shared`]).
//!
//! - **Array**: one block of `max_entries * stride` bytes, value `i` at `i * stride`, where the
//!   stride is `value_size` rounded up to 8 (the kernel's rounding, which keeps 8-byte atomics on
//!   every value aligned). Global data sections are one-element arrays.
//! - **Hash / LRU hash**: a slab of `max_entries` values reserved in one block (zero pages until
//!   used), slots handed out from it by [`Slots`] (freed ones first, then the next fresh one),
//!   and a host-side index from key bytes to slot in 64 shards, each behind its own [`Mutex`]
//!   (see `HashTable`). A full hash map refuses new
//!   keys (`E2BIG`); a full LRU map evicts its least recently used key (lookups and updates
//!   count as uses). Past the `Vm`'s memory limit a new key is `ENOMEM` (LRU: an eviction).
//! - **Ring buffer**: a data block of `max_entries` bytes (a power of two) and a host-side queue
//!   of record descriptors, so nothing a program writes can corrupt the bookkeeping.
//! - **Program array**: slots holding programs for `bpf_tail_call`, set from the host.
//! - **Per-CPU array and hashes, LPM trie, perf event array, queue, stack, bloom filter, maps
//!   of maps, device/CPU/XSK maps**: in [`crate::maps`], one file per kind, reached through
//!   [`crate::maps::MapImpl`].
//!
//! Each kind also states the most memory a map of it takes, values and host-side structures
//! together ([`MapSpecExt::memory_bytes`], one function beside each kind's code). Most kinds
//! are charged that bound before the map is created; the hash family is charged its fixed
//! part then, and each chunk of slots when its first slot is handed out ([`SlotCost`],
//! [`Slots`]; docs/runtime.md, "Memory limit").
//!
//! A deleted hash slot goes back to the free list while a program may still hold its address:
//! the memory stays valid (the block never moves), as the kernel's RCU keeps it valid, and a
//! later insert reuses it.

use crate::maps::{self, MapConfig, MapImpl};
use crate::memory::{Charge, MAX_RESERVED_BYTES};
use crate::program::Linked;
pub use bpfx_elf::MapKind;
use bpfx_exec::SharedMem;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// How to create a map: what an object declares, or what an embedder asks for. The one
/// definition is [`bpfx_elf::MapSpec`], here with its type narrowed to a [`MapKind`] bpfx
/// implements (an object's maps are narrowed by [`bpfx_elf::MapSpec::implemented`]); its
/// checks and memory bound are [`MapSpecExt`]'s.
pub type MapSpec = bpfx_elf::MapSpec<MapKind>;

/// What the runtime knows of a [`MapSpec`]: whether the kernel accepts its shape, and the
/// most memory a map of it takes.
pub trait MapSpecExt {
    /// [`MapSpecExt::check_with`] the default [`MapConfig`].
    fn check(&self) -> Result<u64, String>;

    /// Checks the shape as the kernel does and returns the most memory a map of this spec
    /// takes with `cfg`'s CPUs and perf buffers ([`MapSpecExt::memory_bytes_with`]), refusing
    /// what the kernel refuses (`E2BIG` where its size arithmetic overflows), a size that
    /// overflows 64 bits, and a map charged by use whose reservation passes
    /// [`crate::MAX_RESERVED_BYTES`]. No other bound of one map: the [`crate::Vm`]'s memory
    /// limit is charged when the map is created. Allocates nothing.
    fn check_with(&self, cfg: &MapConfig) -> Result<u64, String>;

    /// The most memory, in bytes, a map of this spec takes however it is used: the values
    /// programs reach and the host-side structures beside them, full. Computed from the spec
    /// alone with checked arithmetic (`None` on overflow), so it is known before anything is
    /// allocated; the [`crate::Vm`]'s memory limit is charged this much when the map is
    /// created. Each kind's bound lives beside its implementation: a new kind adds its own.
    ///
    /// Per-CPU kinds and perf event arrays depend on the number of CPUs: this is their bound
    /// with the default [`MapConfig`] ([`MapSpecExt::memory_bytes_with`] takes one).
    fn memory_bytes(&self) -> Option<u64>;

    /// [`MapSpecExt::memory_bytes`] with `cfg`'s CPUs and perf buffers (`None` also for a
    /// shape the kinds of `maps/` refuse).
    fn memory_bytes_with(&self, cfg: &MapConfig) -> Option<u64>;

    /// What the [`crate::Vm`]'s memory limit is charged when a map of this spec is created
    /// with `cfg`: [`MapSpecExt::memory_bytes_with`] for most kinds; for the hash family
    /// (hash, LRU hash, per-CPU hashes) and LPM tries, only the part that exists whatever the
    /// map holds,
    /// the rest being charged a chunk of slots at a time as entries are first inserted.
    fn creation_bytes_with(&self, cfg: &MapConfig) -> Option<u64>;
}

impl MapSpecExt for MapSpec {
    fn check(&self) -> Result<u64, String> {
        self.check_with(&MapConfig::default())
    }

    fn check_with(&self, cfg: &MapConfig) -> Result<u64, String> {
        // The kernel's `map_create`: only bloom filters (and arenas, which bpfx has not) have
        // a use for `map_extra`.
        if self.map_extra != 0 && self.kind != MapKind::BloomFilter {
            return Err(format!(
                "map_extra {:#x} is only for bloom filters, not a {} map (EINVAL)",
                self.map_extra, self.kind
            ));
        }
        // The kinds of `crate::maps` check their shape and bound themselves.
        let need = match maps::host_bytes(self, cfg)? {
            Some(body) => body.checked_add(MAP_HEADER_BYTES),
            None => {
                check_shape(self)?;
                self.memory_bytes_with(cfg)
            }
        };
        // No bound of one map but the kernel's own (`kernel_size_rules`): the Vm's memory
        // limit charges `need` at creation (kinds charged in full) or a chunk of slots at a
        // time (kinds charged by use, whose reservation `MAX_RESERVED_BYTES` bounds with the
        // Vm's other reservations), as the kernel's memory cgroup charges its maps.
        kernel_size_rules(self)?;
        let need = need.ok_or_else(|| "its size overflows 64 bits (E2BIG)".to_string())?;
        if let Some(c) = slot_cost(self, cfg) {
            let reserves = c
                .reserved
                .checked_add(c.fixed)
                .and_then(|r| r.checked_add(MAP_HEADER_BYTES))
                .filter(|&r| r <= MAX_RESERVED_BYTES);
            if reserves.is_none() {
                return Err(format!(
                    "reserves more than the {MAX_RESERVED_BYTES} bytes of address space all maps \
                     charged by use of a Vm may reserve together (fewer entries would fit: \
                     `Vm::max_entries`, `bpfx --max-entries NAME=N`)"
                ));
            }
        }
        Ok(need)
    }

    fn memory_bytes(&self) -> Option<u64> {
        self.memory_bytes_with(&MapConfig::default())
    }

    fn memory_bytes_with(&self, cfg: &MapConfig) -> Option<u64> {
        let body = match self.kind {
            MapKind::Array => array_memory_bytes(self),
            MapKind::Hash | MapKind::LruHash => HashTable::memory_bytes(self),
            MapKind::RingBuf => Ring::memory_bytes(self),
            MapKind::ProgArray => prog_array_memory_bytes(self),
            // The kinds of `crate::maps`: their own bound.
            _ => maps::host_bytes(self, cfg).ok().flatten(),
        }?;
        body.checked_add(MAP_HEADER_BYTES)
    }

    fn creation_bytes_with(&self, cfg: &MapConfig) -> Option<u64> {
        match slot_cost(self, cfg) {
            Some(c) => c.fixed.checked_add(MAP_HEADER_BYTES),
            None => self.memory_bytes_with(cfg),
        }
    }
}

/// The [`SlotCost`] of a hash-family or LPM trie spec (`None` for the kinds charged in full, and for a
/// size that overflows).
/// The address space a map charged by use reserves at creation (0 for the other kinds, which
/// are charged in full).
pub(crate) fn reserved_bytes(spec: &MapSpec, cfg: &MapConfig) -> u64 {
    slot_cost(spec, cfg).map_or(0, |c| c.reserved)
}

fn slot_cost(spec: &MapSpec, cfg: &MapConfig) -> Option<SlotCost> {
    match spec.kind {
        MapKind::Hash | MapKind::LruHash => HashTable::cost(spec),
        _ => maps::slot_cost(spec, cfg),
    }
}

/// Slab bytes a hash-family map opens at once: its slots are handed out, and charged, a chunk
/// of this many bytes of values at a time (a power of two of slots, at least one).
pub(crate) const SLOT_CHUNK_BYTES: u64 = 64 << 10;

/// How a map of the hash family (or an LPM trie) takes memory.
///
/// - `reserved`: address space taken at creation and not written there (the value slab, LRU
///   stamps: zeroed allocations, [`bpfx_exec::zeroed_words`]), bounded by
///   [`crate::MAX_RESERVED_BYTES`] with `fixed` and the Vm's other reservations; it becomes
///   resident only as slots are used, and each slot's share is in `per_slot`.
/// - `fixed`: charged at creation, whatever the map holds (the shards, their locks).
/// - `per_slot`: charged per slot, a chunk of [`SlotCost::chunk`] slots at a time, when the
///   allocator first hands out a slot of the chunk: the slot's values and every host-side
///   structure that grows with the entries, at its fullest.
///
/// [`MapSpecExt::memory_bytes`] is `fixed + max_entries * per_slot` (and the map's header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotCost {
    pub(crate) reserved: u64,
    pub(crate) fixed: u64,
    pub(crate) per_slot: u64,
    /// Slab bytes of one slot (the stride; times the CPUs for a per-CPU hash).
    pub(crate) slab_per_slot: u64,
}

impl SlotCost {
    /// The bound of a full map of `max_entries` slots (without the map's header).
    pub(crate) fn full(&self, max_entries: u32) -> Option<u64> {
        self.per_slot
            .checked_mul(u64::from(max_entries))?
            .checked_add(self.fixed)
    }

    /// Slots per chunk: the largest power of two whose values fit [`SLOT_CHUNK_BYTES`]
    /// (at least one).
    pub(crate) fn chunk(&self) -> u32 {
        let n = (SLOT_CHUNK_BYTES / self.slab_per_slot.max(1)).max(1);
        1 << (63 - n.leading_zeros()).min(31)
    }
}

/// The slot allocator of a hash-family map: hands out slots of a slab of `max` values, the
/// slots freed by deletes first, then fresh ones in order from a high-water mark. Fresh slots
/// come a chunk at a time ([`SlotCost::chunk`]): opening a chunk first charges the
/// [`crate::Vm`]'s memory limit its `per_slot` bytes (once [`Slots::attach`]ed to the map's
/// charge; a map made outside a `Vm` has no limit), so the pool holds what the map has used,
/// never what it declares, and a chunk the pool has no room for is an `ENOMEM`
/// ([`MapError::NoMemory`]) with nothing changed. The charge stays with the map until it is
/// dropped: a deleted slot's memory has been touched and is reused by the next insert.
///
/// # Invariants
/// `keys.len()` is the high-water mark, at most `opened`, at most `max`; `opened` slots are
/// charged (`charge` holds `opened * per_slot`, when attached); every slot below the
/// high-water mark is either in `free` (its key `None`) or holds a key, never both.
pub(crate) struct Slots<K> {
    keys: Vec<Option<K>>,
    free: Vec<u32>,
    max: u32,
    opened: u32,
    chunk: u32,
    per_slot: u64,
    charge: Option<Charge>,
}

impl<K> Slots<K> {
    /// An allocator of `max` slots costing `cost`, none handed out or charged.
    pub(crate) fn new(max: u32, cost: &SlotCost) -> Slots<K> {
        Slots {
            keys: Vec::new(),
            free: Vec::new(),
            max,
            opened: 0,
            chunk: cost.chunk(),
            per_slot: cost.per_slot,
            charge: None,
        }
    }

    /// Charges the chunks opened from now on to `charge`'s pool. Called once, when the map
    /// is created and charged ([`Map::charged`]), before any slot is handed out.
    pub(crate) fn attach(&mut self, charge: &Charge) {
        debug_assert_eq!(self.opened, 0, "attached before any slot is handed out");
        self.charge = Some(charge.sibling());
    }

    /// A slot for a new key: a freed one, else the next fresh one (opening and charging its
    /// chunk first); `Ok(None)` when all `max` slots hold keys (the map is full);
    /// `Err(NoMemory)` when the memory limit has no room for the next chunk.
    pub(crate) fn take(&mut self) -> Result<Option<u32>, MapError> {
        if let Some(s) = self.free.pop() {
            return Ok(Some(s));
        }
        let hw = self.keys.len() as u32;
        if hw == self.max {
            return Ok(None);
        }
        if hw == self.opened {
            let n = self.chunk.min(self.max - self.opened);
            if let Some(c) = &mut self.charge {
                c.grow(String::new, u64::from(n) * self.per_slot)
                    .map_err(|_| MapError::NoMemory)?;
            }
            self.opened += n;
        }
        self.keys.push(None);
        Ok(Some(hw))
    }

    /// Gives `key` to `slot` (one [`Slots::take`] handed out).
    pub(crate) fn set(&mut self, slot: u32, key: K) {
        self.keys[slot as usize] = Some(key);
    }

    /// Takes the key of `slot` without freeing the slot (an eviction, whose caller reuses it).
    pub(crate) fn clear(&mut self, slot: u32) -> Option<K> {
        self.keys.get_mut(slot as usize)?.take()
    }

    /// Frees `slot` (a delete): its key goes, the slot is handed out again first.
    pub(crate) fn release(&mut self, slot: u32) -> Option<K> {
        let key = self.clear(slot)?;
        self.free.push(slot);
        Some(key)
    }

    /// The key of `slot`, if it holds one.
    pub(crate) fn key(&self, slot: usize) -> Option<&K> {
        self.keys.get(slot)?.as_ref()
    }

    /// Every slot below the high-water mark, with its key if it holds one.
    pub(crate) fn keys(&self) -> &[Option<K>] {
        &self.keys
    }

    /// Slots handed out so far (the high-water mark).
    pub(crate) fn high_water(&self) -> usize {
        self.keys.len()
    }

    /// Slots holding keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.len() - self.free.len()
    }
}

/// The kernel's `KMALLOC_MAX_SIZE` on x86-64 with 4 KiB pages (`1 << (MAX_PAGE_ORDER +
/// PAGE_SHIFT)`), in bytes.
const KMALLOC_MAX_SIZE: u64 = 4 << 20;

/// The kernel's `sizeof(struct htab_elem)` on x86-64, in bytes: the header a hash element
/// carries before its key and value.
const HTAB_ELEM_HEADER: u64 = 48;

/// The hash family's size rules at creation (hash, LRU hash and their per-CPU kinds), as the
/// kernel applies them with `E2BIG` (checked against Linux 6.18 with `bpftool map create`):
/// the key and value together must stay under `KMALLOC_MAX_SIZE` less the element header
/// (`key_size + value_size >= 4 MiB - 48` is refused), and `max_entries` may not pass 2^27
/// (its buckets, `roundup_pow_of_two(max_entries)` of 16 bytes, must have a size that fits a
/// `u32`). Keys of any size pass (the kernel dropped its 512-byte key bound).
pub(crate) fn hash_size_rules(spec: &MapSpec) -> Result<(), String> {
    let (key_size, value_size, n) = (spec.key_size, spec.value_size, spec.max_entries);
    if u64::from(key_size) + u64::from(value_size) >= KMALLOC_MAX_SIZE - HTAB_ELEM_HEADER {
        return Err(format!(
            "key size {key_size} and value size {value_size} make an element of at least the \
             kernel's {KMALLOC_MAX_SIZE} bytes with its header (E2BIG)"
        ));
    }
    if n > 1 << 27 {
        return Err(format!(
            "max_entries {n} needs more than 2^27 buckets, whose size overflows the kernel's \
             u32 arithmetic (E2BIG)"
        ));
    }
    Ok(())
}

/// The size rules the kernel applies at creation with `E2BIG` where its size arithmetic would
/// overflow, for the kinds this file implements (the kinds of `crate::maps` apply theirs in
/// their `host_bytes`). bpfx bounds no map by its size otherwise: the [`crate::Vm`]'s memory
/// limit does. Arrays have none (the kernel takes values of 1 GiB and `u32` counts: it sizes
/// arrays in 64 bits); the hash family has [`hash_size_rules`].
fn kernel_size_rules(spec: &MapSpec) -> Result<(), String> {
    match spec.kind {
        MapKind::Hash | MapKind::LruHash => hash_size_rules(spec),
        _ => Ok(()),
    }
}

/// The shape checks of the kinds this file implements (array, hashes, ring buffer, program
/// array), as the kernel makes them at creation.
fn check_shape(spec: &MapSpec) -> Result<(), String> {
    let MapSpec {
        kind,
        key_size,
        value_size,
        max_entries,
        ..
    } = *spec;
    if max_entries == 0 {
        return Err("max_entries is 0".into());
    }
    match kind {
        MapKind::Array | MapKind::Hash | MapKind::LruHash => {
            if kind == MapKind::Array && key_size != 4 {
                return Err(format!("array keys must be 4 bytes, not {key_size}"));
            }
            if key_size == 0 || value_size == 0 {
                return Err("key and value sizes must not be 0".into());
            }
        }
        MapKind::RingBuf => {
            if key_size != 0 || value_size != 0 {
                return Err("ring buffers have no keys or values (sizes must be 0)".into());
            }
            if !max_entries.is_power_of_two() || max_entries < 8 {
                return Err(format!(
                    "ring buffer size {max_entries} is not a power of two of at least 8"
                ));
            }
        }
        MapKind::ProgArray if key_size != 4 || value_size != 4 => {
            return Err("program array keys and values must be 4 bytes".into());
        }
        // Program arrays of the right shape, and the kinds of `crate::maps`, which check
        // their own shape.
        _ => {}
    }
    if let (MapKind::Array, Some(data)) = (kind, &spec.initial_data) {
        let bytes = array_memory_bytes(spec).unwrap_or(u64::MAX);
        if data.len() as u64 > bytes {
            return Err(format!(
                "initial data of {} bytes exceeds the map's {bytes}",
                data.len()
            ));
        }
    }
    Ok(())
}

/// The value stride of `spec`: `value_size` rounded up to 8.
fn stride(spec: &MapSpec) -> u64 {
    u64::from(spec.value_size).next_multiple_of(8)
}

/// Deprecated: no longer applied. It was the most memory one map could take (256 MiB); maps
/// now follow the kernel, which has no bound of one map: a map charged in full is bounded by
/// the [`crate::Vm`]'s memory limit ([`crate::DEFAULT_MEM_LIMIT`]), one charged by use by that
/// limit as it fills and by [`crate::MAX_RESERVED_BYTES`] for what it reserves, and every kind
/// by the kernel's `E2BIG` rules ([`MapSpecExt::check_with`]). Kept so that code naming it
/// still builds.
pub const MAX_MAP_BYTES: u64 = 256 << 20;

/// Bytes of a map's fixed parts, charged once per map: the [`Map`] value, its `Arc`, its
/// locks and the allocator's headers (a bound; the `Map` is about 100 bytes).
const MAP_HEADER_BYTES: u64 = 256;

/// What a heap allocation of `len` bytes takes from glibc's malloc: the length plus an 8-byte
/// header, in 16-byte units, at least 32.
fn heap_bytes(len: u64) -> Option<u64> {
    Some(len.checked_add(8)?.checked_next_multiple_of(16)?.max(32))
}

/// `std::mem::size_of::<T>()`, as `u64`.
const fn size_of<T>() -> u64 {
    std::mem::size_of::<T>() as u64
}

/// The id of the next map created.
fn next_map_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// An array (and global data): one block of `max_entries` strides. The initial data of a
/// global-data section is the object's, not the map's.
fn array_memory_bytes(spec: &MapSpec) -> Option<u64> {
    stride(spec).checked_mul(u64::from(spec.max_entries))
}

/// A program array: one slot (an `Option<Arc<_>>`) per entry; the programs are charged for
/// their own code.
fn prog_array_memory_bytes(spec: &MapSpec) -> Option<u64> {
    size_of::<Option<Arc<Linked>>>().checked_mul(u64::from(spec.max_entries))
}

/// Update flags of `map_update_elem`, as the kernel numbers them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UpdateFlag {
    /// `BPF_ANY` (0): create or replace.
    #[default]
    Any,
    /// `BPF_NOEXIST` (1): create only.
    NoExist,
    /// `BPF_EXIST` (2): replace only.
    Exist,
}

impl UpdateFlag {
    /// The flag with this kernel value.
    pub fn from_raw(flags: u64) -> Option<UpdateFlag> {
        Some(match flags {
            0 => UpdateFlag::Any,
            1 => UpdateFlag::NoExist,
            2 => UpdateFlag::Exist,
            _ => return None,
        })
    }
}

/// Why a map operation failed. Programs see it as the kernel's negative errno
/// ([`MapError::errno`]); the host as [`crate::Error::Map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum MapError {
    /// A key of the wrong size (host side).
    #[error("key is {got} bytes, the map's keys are {expected}")]
    KeySize {
        /// The map's key size.
        expected: u32,
        /// The size given.
        got: usize,
    },
    /// A value of the wrong size (host side).
    #[error("value is {got} bytes, the map's values are {expected}")]
    ValueSize {
        /// The map's value size.
        expected: u32,
        /// The size given.
        got: usize,
    },
    /// No entry with this key (`ENOENT`).
    #[error("no entry with this key")]
    NotFound,
    /// `BPF_NOEXIST` and the key exists (`EEXIST`).
    #[error("an entry with this key exists")]
    Exists,
    /// A full hash map, or an array index past the end (`E2BIG`).
    #[error("the map is full or the index is out of range")]
    Full,
    /// The ring buffer has no room for the record (`EAGAIN`).
    #[error("the ring buffer has no room")]
    NoSpace,
    /// Unknown flags (`EINVAL`).
    #[error("invalid flags {0:#x}")]
    Flags(u64),
    /// The operation does not apply to this kind of map (`EINVAL`).
    #[error("operation not supported by a {0} map")]
    Unsupported(MapKind),
    /// A program tried to write a read-only map (`EPERM`).
    #[error("the map is read-only for programs")]
    ReadOnly,
    /// An LPM trie key whose prefix length is past the maximum (`EINVAL`).
    #[error("prefix length {prefixlen} is past the trie's maximum {max}")]
    PrefixLen {
        /// The key's prefix length.
        prefixlen: u32,
        /// The trie's maximum (8 × data bytes).
        max: u32,
    },
    /// No room: a full LPM trie, or a full perf event buffer (`ENOSPC`).
    #[error("no space left for the entry or record")]
    OutOfSpace,
    /// `perf_event_output` to the buffer of another CPU than the running one (`EOPNOTSUPP`).
    #[error("the perf buffer belongs to another CPU")]
    OtherCpu,
    /// An operation the kind refuses with `EOPNOTSUPP` (a bloom filter's pop or delete).
    #[error("operation not supported by a {0} map")]
    NotSupported(MapKind),
    /// No such device: a device map entry with ifindex 0, or a CPU map entry for a CPU past
    /// the last (`ENODEV`).
    #[error("no such device or CPU")]
    NoDevice,
    /// A CPU map entry's queue size past the kernel's limit (`EOVERFLOW`).
    #[error("the value is too large")]
    Overflow,
    /// Deleting an index past the end of a device, CPU or XSK map (`EINVAL`).
    #[error("the index is past the end of the map")]
    BadIndex,
    /// An inner map whose type, sizes or flags differ from the map of maps' template
    /// (`EINVAL`).
    #[error("the inner map does not match the map of maps' template")]
    InnerMismatch,
    /// A new entry of a hash-family map or LPM trie the [`crate::Vm`]'s memory limit has no
    /// room for
    /// (`ENOMEM`, what the kernel's hash update returns when it cannot allocate an element).
    #[error("the memory limit has no room for another entry")]
    NoMemory,
    /// Deleting an empty slot of a socket map (`EINVAL`).
    #[error("no socket at this index")]
    EmptySlot,
}

impl MapError {
    /// The kernel's (positive) errno for this error; helpers return its negation.
    pub const fn errno(self) -> i64 {
        match self {
            MapError::NotFound => 2,
            MapError::Full => 7,
            MapError::NoSpace => 11,
            MapError::Exists => 17,
            MapError::ReadOnly => 1,
            MapError::OutOfSpace => 28,
            MapError::OtherCpu | MapError::NotSupported(_) => 95,
            MapError::NoDevice => 19,
            MapError::Overflow => 75,
            MapError::NoMemory => 12,
            MapError::PrefixLen { .. }
            | MapError::KeySize { .. }
            | MapError::ValueSize { .. }
            | MapError::Flags(_)
            | MapError::InnerMismatch
            | MapError::BadIndex
            | MapError::EmptySlot
            | MapError::Unsupported(_) => 22,
        }
    }

    /// The helper's return value: `-errno` as a 64-bit register value.
    pub(crate) fn ret(self) -> u64 {
        (-self.errno()) as u64
    }
}

/// Why a map could not be created: a shape the kernel refuses (its `EINVAL` or `E2BIG`, as
/// text), or memory the host could not give (the runtime's `ENOMEM`: a load fails with
/// [`crate::Error::MemoryLimit`], never an abort).
#[derive(Debug)]
pub(crate) enum CreateError {
    Spec(String),
    /// The bytes of the allocation that failed.
    NoMemory(u64),
}

impl From<String> for CreateError {
    fn from(reason: String) -> CreateError {
        CreateError::Spec(reason)
    }
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Spec(reason) => f.write_str(reason),
            CreateError::NoMemory(bytes) => {
                write!(f, "the host could not allocate its {bytes} bytes (ENOMEM)")
            }
        }
    }
}

/// A zeroed block of `len` bytes of map storage ([`SharedMem::try_new`]), or
/// [`CreateError::NoMemory`].
pub(crate) fn alloc_block(len: usize, writable: bool) -> Result<Arc<SharedMem>, CreateError> {
    SharedMem::try_new(len, writable).ok_or(CreateError::NoMemory(len as u64))
}

/// `n` empty slots, or [`CreateError::NoMemory`] when the host refuses them (a malformed
/// object may declare billions, and an allocation failure must not abort the process).
pub(crate) fn try_vec<T>(n: usize) -> Result<Vec<Option<T>>, CreateError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| CreateError::NoMemory((n as u64).saturating_mul(size_of::<Option<T>>())))?;
    v.resize_with(n, || None);
    Ok(v)
}

/// A map: its shape and its storage. Shared (`Arc<Map>`) between the object, the programs'
/// helpers and any host thread.
pub struct Map {
    id: u32,
    spec: MapSpec,
    stride: usize,
    storage: Storage,
    /// The timers of its elements' values (array, hash and LRU hash maps whose values hold a
    /// `struct bpf_timer`), freed with the map ([`crate::timer`]).
    timers: crate::timer::Timers,
    /// What the map holds of its `Vm`'s memory limit, given back when it is dropped.
    _charge: Option<Charge>,
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("name", &self.spec.name)
            .field("kind", &self.spec.kind)
            .field("key_size", &self.spec.key_size)
            .field("value_size", &self.spec.value_size)
            .field("max_entries", &self.spec.max_entries)
            .finish()
    }
}

enum Storage {
    Array {
        block: Arc<SharedMem>,
    },
    Hash {
        block: Arc<SharedMem>,
        table: HashTable,
    },
    RingBuf {
        block: Arc<SharedMem>,
        ring: Mutex<Ring>,
    },
    ProgArray {
        slots: RwLock<Vec<Option<Arc<Linked>>>>,
    },
    /// The kinds of [`crate::maps`].
    Ext(Box<dyn MapImpl>),
}

/// Host-side index of a hash map's slab, sharded so that threads looking up (or updating)
/// different keys do not contend.
///
/// - `shards`: [`HASH_SHARDS`] mutexes, each an index from key bytes to slot; a key lives in
///   the shard its hash picks. Lookups, and updates of existing keys, take only that shard.
/// - `alloc`: the slot → key table, the keys in byte order (so `next_key` finds the key after
///   another in O(log n)), the free list and (LRU) the use order. Inserts and
///   deletes take it first, then the key's shard; an eviction then takes the victim's shard
///   too. Only the holder of `alloc` ever holds two shards, and lookups hold one shard and
///   wait for nothing else, so no lock order inverts.
/// - LRU stamps: a use stores the next tick of `tick` into the slot's atomic stamp, without a
///   lock. `order` is kept lazily: each used slot sits in it exactly once, under a stamp it
///   had; an eviction pops the smallest entry, and when the slot has been used since (its
///   stamp is newer) puts it back under its current stamp and pops again. Stamps only grow,
///   so the slot popped with an unchanged stamp is the least recently used one.
///
/// # Invariants
/// The shards and `keys` agree (`shard(k)[k] == s` iff `keys[s] == Some(k)`) whenever `alloc`
/// is not held; a slot is either in `free` or holds a key, never both; with LRU, `order`
/// holds exactly the used slots, `order_key[s]` being the key slot `s` sits under.
struct HashTable {
    /// Random per table: picks the shards ([`HashTable::shard_of`]).
    seed: u64,
    shards: Vec<Mutex<ShardIndex>>,
    alloc: Mutex<Alloc>,
    /// LRU: each slot's last use (a zeroed reservation of `max_entries` words, resident as
    /// slots are used), and the clock.
    stamps: Option<(Box<[AtomicU64]>, AtomicU64)>,
}

struct Alloc {
    /// The slots and each one's key: `next_key` walks the slots in order.
    slots: Slots<Arc<[u8]>>,
    /// LRU: slots by the stamp they sit under, and that stamp per slot (up to the slots'
    /// high-water mark).
    order: BTreeMap<u64, u32>,
    order_key: Vec<u64>,
}

/// Number of shards of a hash map's index.
const HASH_SHARDS: usize = 64;

/// One shard of a hash map's index: key bytes to slot, hashed by foldhash under a key of
/// its own drawn at random when the shard is made. A program's lookups hash keys that packets
/// choose, so the hash must be keyed (an attacker who cannot learn the key cannot aim keys at
/// one bucket chain); foldhash is keyed like SipHash (`RandomState`) but costs a few multiplies
/// for a key of a few words instead of SipHash's rounds (its `quality` flavour adds a final
/// avalanche to the fast one).
type ShardIndex = HashMap<Vec<u8>, u32, foldhash::quality::RandomState>;

/// The most bytes the least-recently-used order takes per entry: a `BTreeMap<u64, u32>` leaf
/// of 11 entries is about 144 bytes plus the allocator's header, never less than 5 entries
/// full outside the root, and the inner nodes add under a fifth of that.
const LRU_ORDER_ENTRY_BYTES: u64 = 48;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave the table inconsistent in a way that matters
    // for memory safety (the slab never moves), so a poisoned lock is taken over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HashTable {
    /// The [`SlotCost`] of a hash or LRU hash map. Per slot, at its fullest: its value (the
    /// stride); its entry in the slot table, its place on the free list and (LRU) its
    /// `order_key`, each three times over (vectors that grow by doubling, while the old one is
    /// copied); two heap copies of its key (in its shard's index, and in the slot table: an
    /// `Arc`, two counters before the bytes); its share of the shards' indexes (hashbrown: a
    /// power of two of buckets at 7/8 load, an entry and a control byte each, so fewer than
    /// 16/7 buckets per key) three times over, since deletions leave tombstones that can make
    /// a full table grow once more, plus the table it grows from while it is copied; and for
    /// LRU its stamp and its node of the order. Fixed: each shard rounds its table up (6
    /// buckets and a 16-byte group more, three times over) and has its mutex. Reserved: the
    /// slab and the stamps.
    fn cost(spec: &MapSpec) -> Option<SlotCost> {
        let n = u64::from(spec.max_entries);
        let stride = stride(spec);
        let key = u64::from(spec.key_size);
        let lru = spec.kind == MapKind::LruHash;
        let bucket = size_of::<(Vec<u8>, u32)>() + 1;
        let index = (16 * bucket).div_ceil(7) * 3;
        let mut per_slot = stride
            .checked_add(3 * (size_of::<Option<Arc<[u8]>>>() + size_of::<u32>()))?
            .checked_add(heap_bytes(key)?)?
            .checked_add(heap_bytes(key.checked_add(16)?)?)?
            .checked_add(index)?;
        if lru {
            per_slot = per_slot.checked_add(size_of::<u64>() * 4 + LRU_ORDER_ENTRY_BYTES)?;
        }
        let shards = HASH_SHARDS as u64;
        let fixed =
            (6 * shards * bucket + 16 * shards) * 3 + shards * size_of::<Mutex<ShardIndex>>();
        let stamps = if lru {
            size_of::<u64>().checked_mul(n)?
        } else {
            0
        };
        Some(SlotCost {
            reserved: stride.checked_mul(n)?.checked_add(stamps)?,
            fixed,
            per_slot,
            slab_per_slot: stride,
        })
    }

    /// The bound of [`MapSpecExt::memory_bytes`] for a hash or LRU hash map, full.
    fn memory_bytes(spec: &MapSpec) -> Option<u64> {
        HashTable::cost(spec)?.full(spec.max_entries)
    }

    fn new(entries: u32, lru: bool, cost: &SlotCost) -> Result<HashTable, CreateError> {
        let stamps = match lru {
            true => Some((
                bpfx_exec::zeroed_words(entries as usize)
                    .ok_or(CreateError::NoMemory(u64::from(entries) * 8))?,
                AtomicU64::new(0),
            )),
            false => None,
        };
        Ok(HashTable {
            seed: {
                use std::hash::BuildHasher;
                std::hash::RandomState::new().hash_one(entries)
            },
            shards: (0..HASH_SHARDS).map(|_| Mutex::default()).collect(),
            alloc: Mutex::new(Alloc {
                slots: Slots::new(entries, cost),
                order: BTreeMap::new(),
                order_key: Vec::new(),
            }),
            stamps,
        })
    }

    /// Charges the slots handed out from now on to `charge`'s pool ([`Slots::attach`]).
    fn attach(&self, charge: &Charge) {
        lock(&self.alloc).slots.attach(charge);
    }

    /// The shard of `key`: a multiply-and-fold of its 8-byte words under the table's random
    /// seed (cheaper than a second keyed hash: the shard's own index hashes the key under a
    /// random key of its own ([`ShardIndex`]), which is what defends lookups against chosen
    /// keys; a chosen spread over shards only costs contention).
    fn shard_of(&self, key: &[u8]) -> usize {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = self.seed;
        for c in key.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
            h ^= h >> 29;
        }
        // The top bits, mixed best by the last multiply.
        (h.wrapping_mul(K) >> (64 - HASH_SHARDS.trailing_zeros())) as usize
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, ShardIndex> {
        lock(&self.shards[self.shard_of(key)])
    }

    /// Marks `slot` used now (LRU).
    fn touch(&self, slot: u32) -> u64 {
        match &self.stamps {
            Some((stamps, tick)) => {
                let now = tick.fetch_add(1, Ordering::Relaxed) + 1;
                stamps[slot as usize].fetch_max(now, Ordering::Relaxed);
                now
            }
            None => 0,
        }
    }

    /// The slot of `key`, marked used.
    fn find(&self, key: &[u8]) -> Option<u32> {
        let slot = *self.shard(key).get(key)?;
        self.touch(slot);
        Some(slot)
    }

    /// Stores `value` under `key` with `write(slot)`, as `flag` allows: an existing key's
    /// value is written under its shard's lock (so two updates of one key never interleave),
    /// a new key's under the allocator's and the shard's.
    fn update(&self, key: &[u8], flag: UpdateFlag, write: impl Fn(u32)) -> Result<(), MapError> {
        {
            let shard = self.shard(key);
            if let Some(&s) = shard.get(key) {
                if flag == UpdateFlag::NoExist {
                    return Err(MapError::Exists);
                }
                self.touch(s);
                write(s);
                return Ok(());
            }
            if flag == UpdateFlag::Exist {
                return Err(MapError::NotFound);
            }
        }
        let mut a = lock(&self.alloc);
        let home = self.shard_of(key);
        let mut shard = lock(&self.shards[home]);
        // Another thread may have inserted it between the two locks.
        if let Some(&s) = shard.get(key) {
            if flag == UpdateFlag::NoExist {
                return Err(MapError::Exists);
            }
            self.touch(s);
            write(s);
            return Ok(());
        }
        // A full map, or one the memory limit has no room to grow: an LRU map evicts its
        // least recently used key (as when full; `ENOMEM` only when it holds none), a hash
        // map refuses (`E2BIG` when full, `ENOMEM` past the limit).
        let slot = match a.slots.take() {
            Ok(Some(s)) => s,
            Ok(None) => self.evict(&mut a, home, &mut shard).ok_or(MapError::Full)?,
            Err(e) => self.evict(&mut a, home, &mut shard).ok_or(e)?,
        };
        a.slots.set(slot, key.into());
        shard.insert(key.to_vec(), slot);
        if self.stamps.is_some() {
            let hw = a.slots.high_water();
            if a.order_key.len() < hw {
                a.order_key.resize(hw, 0);
            }
            let now = self.touch(slot);
            a.order.insert(now, slot);
            a.order_key[slot as usize] = now;
        }
        write(slot);
        Ok(())
    }

    /// LRU: frees the least recently used slot (taking its key out of its shard) and returns
    /// it; `None` for a plain hash map.
    fn evict(&self, a: &mut Alloc, home: usize, home_shard: &mut ShardIndex) -> Option<u32> {
        let (stamps, _) = self.stamps.as_ref()?;
        loop {
            let (at, slot) = a.order.pop_first()?;
            let now = stamps[slot as usize].load(Ordering::Relaxed);
            if now != at {
                // Used since it was filed: file it again under its latest use.
                a.order.insert(now, slot);
                a.order_key[slot as usize] = now;
                continue;
            }
            let key = a.slots.clear(slot)?;
            let s = self.shard_of(&key);
            if s == home {
                home_shard.remove(&key[..]);
            } else {
                lock(&self.shards[s]).remove(&key[..]);
            }
            return Some(slot);
        }
    }

    /// Removes `key`; its slot goes back to the free list.
    fn remove(&self, key: &[u8]) -> Option<u32> {
        let mut a = lock(&self.alloc);
        let slot = self.shard(key).remove(key)?;
        a.slots.release(slot);
        if self.stamps.is_some() {
            let at = a.order_key[slot as usize];
            a.order.remove(&at);
        }
        Some(slot)
    }

    /// Calls `f` with every key and its slot, shard by shard, each under its shard's lock
    /// (so the slot still holds the key; not one atomic snapshot across shards).
    fn for_each(&self, mut f: impl FnMut(&[u8], u32)) {
        for s in &self.shards {
            for (k, &slot) in lock(s).iter() {
                f(k, slot);
            }
        }
    }

    fn len(&self) -> usize {
        lock(&self.alloc).slots.len()
    }

    /// The key after `key` in slot order, or the first key when `key` is `None` or not in
    /// the table; `None` after the last. Under the allocator's lock, then the key's shard (the
    /// order inserts take them).
    fn next_key(&self, key: Option<&[u8]>) -> Option<Vec<u8>> {
        let a = lock(&self.alloc);
        let slot = key.and_then(|k| self.shard(k).get(k).copied());
        next_in_slots(a.slots.keys(), slot)
    }
}

/// `BPF_MAP_GET_NEXT_KEY` over a hash map's slot table, as the kernel walks its buckets: the
/// key of the first used slot after `slot` (the slot of the key asked about), or of the first
/// used slot when the key is not in the map (`slot` is `None`: the kernel restarts from the
/// beginning for a key it does not hold); `None` after the last (`ENOENT`). No index beside
/// the table: a call costs the free slots it skips, a whole walk one pass over the slots.
pub(crate) fn next_in_slots(keys: &[Option<Arc<[u8]>>], slot: Option<u32>) -> Option<Vec<u8>> {
    let from = slot.map_or(0, |s| s as usize + 1);
    keys.get(from..)?
        .iter()
        .flatten()
        .next()
        .map(|k| k.to_vec())
}

/// A ring buffer's bookkeeping. Positions grow without wrapping; `pos % size` is the offset.
///
/// # Invariants
/// `head <= tail <= head + size`; `records` are in position order, each inside
/// `[head, tail)`, and none crosses the end of the block (a record that would is preceded by
/// padding up to the end).
struct Ring {
    size: u64,
    head: u64,
    tail: u64,
    records: VecDeque<Record>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RecState {
    Busy,
    Ready,
    Discarded,
}

struct Record {
    off: usize,
    len: usize,
    end: u64,
    state: RecState,
}

impl Ring {
    /// The bound of [`MapSpecExt::memory_bytes`] for a ring buffer: the data block and the queue
    /// of record descriptors at its fullest (every record takes at least 8 bytes of the block,
    /// and the queue's capacity grows by doubling, half again while it is copied).
    fn memory_bytes(spec: &MapSpec) -> Option<u64> {
        let size = u64::from(spec.max_entries);
        let records = (size / 8).checked_next_power_of_two()?.max(4);
        let queue = records.checked_mul(size_of::<Record>())?;
        size.checked_add(queue.checked_add(queue / 2)?)
    }

    /// Reserves `len` bytes; returns the record's offset in the block. A record of 0 bytes
    /// (what `ringbuf_output` may write, as the kernel does) still takes 8 bytes of the ring,
    /// as the kernel's record header would, so records stay bounded by the ring's size.
    fn reserve(&mut self, len: u64) -> Option<usize> {
        let rounded = len.checked_next_multiple_of(8)?.max(8);
        if rounded > self.size {
            return None;
        }
        let off = self.tail % self.size;
        let pad = if off + rounded > self.size {
            self.size - off
        } else {
            0
        };
        let end = self.tail + pad + rounded;
        if end - self.head > self.size {
            return None;
        }
        let start = ((self.tail + pad) % self.size) as usize;
        self.tail = end;
        self.records.push_back(Record {
            off: start,
            len: len as usize,
            end,
            state: RecState::Busy,
        });
        Some(start)
    }

    /// Marks the busy record at `off` ready (or discarded).
    fn commit(&mut self, off: usize, discard: bool) -> bool {
        match self
            .records
            .iter_mut()
            .find(|r| r.off == off && r.state == RecState::Busy)
        {
            Some(r) => {
                r.state = if discard {
                    RecState::Discarded
                } else {
                    RecState::Ready
                };
                true
            }
            None => false,
        }
    }
}

impl Map {
    /// Creates a map with the default [`MapConfig`] (per-CPU kinds: one CPU per unit of
    /// available parallelism), checking its shape and its size first ([`MapSpecExt::check`]).
    pub fn new(spec: MapSpec) -> Result<Map, String> {
        Map::with_config(spec, &MapConfig::default())
    }

    /// Creates a map for `cfg`'s number of CPUs and perf buffer size, checking its shape and
    /// its size first ([`MapSpecExt::check_with`]).
    pub fn with_config(spec: MapSpec, cfg: &MapConfig) -> Result<Map, String> {
        Map::create(spec, cfg).map_err(|e| e.to_string())
    }

    /// [`Map::with_config`], telling a shape the kernel refuses from memory the host cannot
    /// give ([`CreateError`]).
    pub(crate) fn create(mut spec: MapSpec, cfg: &MapConfig) -> Result<Map, CreateError> {
        if spec.kind == MapKind::PerfEventArray {
            // libbpf's rule: a perf event array of 0 entries gets one per CPU.
            spec.max_entries = maps::perf::entries(&spec, cfg);
        }
        spec.check_with(cfg)?;
        if let Some(ext) = maps::create(&spec, cfg)? {
            let stride = (spec.value_size as usize).next_multiple_of(8);
            return Ok(Map {
                id: next_map_id(),
                spec,
                stride,
                storage: Storage::Ext(ext),
                timers: crate::timer::Timers::default(),
                _charge: None,
            });
        }
        let MapSpec {
            kind, max_entries, ..
        } = spec;
        let stride = (spec.value_size as usize).next_multiple_of(8);
        // At most 2^32 entries of 4 MiB (checked above): no overflow of a 64-bit `usize`.
        let bytes = match kind {
            MapKind::Array | MapKind::Hash | MapKind::LruHash => stride * max_entries as usize,
            MapKind::RingBuf => max_entries as usize,
            MapKind::ProgArray => 0,
            // The kinds of `crate::maps` were created above.
            _ => {
                return Err(format!("{kind} maps are created by their own module").into());
            }
        };
        let storage = match kind {
            MapKind::Array => {
                let block = alloc_block(bytes, !spec.read_only)?;
                if let Some(data) = &spec.initial_data {
                    // No longer than the block (checked above).
                    block.write(0, data);
                }
                Storage::Array { block }
            }
            MapKind::Hash | MapKind::LruHash => Storage::Hash {
                block: alloc_block(bytes, true)?,
                table: HashTable::new(
                    max_entries,
                    kind == MapKind::LruHash,
                    // Computable: the spec was checked above.
                    &HashTable::cost(&spec).ok_or_else(|| "its size overflows".to_string())?,
                )?,
            },
            MapKind::RingBuf => Storage::RingBuf {
                block: alloc_block(bytes, true)?,
                ring: Mutex::new(Ring {
                    size: u64::from(max_entries),
                    head: 0,
                    tail: 0,
                    records: VecDeque::new(),
                }),
            },
            MapKind::ProgArray => Storage::ProgArray {
                slots: RwLock::new(try_vec(max_entries as usize)?),
            },
            _ => return Err(format!("{kind} maps are created by their own module").into()),
        };
        Ok(Map {
            id: next_map_id(),
            spec,
            stride,
            storage,
            timers: crate::timer::Timers::default(),
            _charge: None,
        })
    }

    /// The map, holding `charge` for as long as it lives; a hash-family map charges the
    /// chunks of slots it opens from now on to `charge`'s pool too ([`Slots`]).
    pub(crate) fn charged(self, charge: Charge) -> Map {
        match &self.storage {
            Storage::Hash { table, .. } => table.attach(&charge),
            Storage::Ext(e) => e.attach(&charge),
            _ => {}
        }
        Map {
            _charge: Some(charge),
            ..self
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Its id: unique among the maps of the process (the kernel's map id, what a host lookup
    /// of a map of maps gives for an inner map).
    pub fn id(&self) -> u32 {
        self.id
    }

    fn of_maps(&self) -> Result<&maps::of_maps::MapOfMaps, MapError> {
        self.ext()
            .and_then(|e| e.as_of_maps())
            .ok_or(MapError::Unsupported(self.spec.kind))
    }

    /// The template of a map of maps' inner maps (`None` for other kinds): create inner maps
    /// for [`Map::set_inner`] with `Map::new(template.clone())`.
    pub fn inner_template(&self) -> Option<&MapSpec> {
        self.of_maps().ok().map(|m| m.template())
    }

    /// Sets (or replaces) the inner map at `key` of a map of maps (`BPF_ANY`): `EINVAL`
    /// ([`MapError::InnerMismatch`]) when `inner`'s type, key and value sizes or flags (for
    /// arrays, `max_entries` too, unless the template has `BPF_F_INNER_MAP`) differ from the
    /// template, as the kernel refuses it; `E2BIG` for an array index past the end or a full
    /// hash of maps. Runs already started keep the inner map they saw.
    pub fn set_inner(&self, key: &[u8], inner: &Arc<Map>) -> Result<(), MapError> {
        self.set_inner_with(key, inner, UpdateFlag::Any)
    }

    /// [`Map::set_inner`] with the kernel's update flag (`BPF_NOEXIST`: `EEXIST` when the key
    /// holds a map; `BPF_EXIST`: `ENOENT` when a hash of maps lacks the key).
    pub fn set_inner_with(
        &self,
        key: &[u8],
        inner: &Arc<Map>,
        flag: UpdateFlag,
    ) -> Result<(), MapError> {
        self.check_key(key)?;
        self.of_maps()?.set(key, inner, flag)
    }

    /// A map of maps' entries now.
    pub(crate) fn of_maps_snapshot(&self) -> Option<Arc<maps::of_maps::Slots>> {
        Some(self.of_maps().ok()?.snapshot())
    }

    /// The inner map at `key` of a map of maps (`None` when empty, or for another kind).
    pub fn inner(&self, key: &[u8]) -> Option<Arc<Map>> {
        let m = self.of_maps().ok()?;
        m.snapshot().get(key).map(|(_, m)| m.clone())
    }

    /// The kind.
    pub fn kind(&self) -> MapKind {
        self.spec.kind
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.spec.key_size
    }

    /// Value size in bytes.
    pub fn value_size(&self) -> u32 {
        self.spec.value_size
    }

    /// Capacity (entries, or bytes for a ring buffer).
    pub fn max_entries(&self) -> u32 {
        self.spec.max_entries
    }

    /// Whether programs may only read it.
    pub fn read_only(&self) -> bool {
        self.spec.read_only
    }

    /// The spec it was created from.
    pub fn spec(&self) -> &MapSpec {
        &self.spec
    }

    /// Its elements' timers.
    pub(crate) fn timers(&self) -> &crate::timer::Timers {
        &self.timers
    }

    /// The element (its slot: an array's index, a hash map's slot) and the offset in its
    /// value of the `len` bytes at guest address `addr`, when they lie in one value of an
    /// array, hash or LRU hash map (the maps whose values may hold a `struct bpf_timer`).
    pub(crate) fn element_at(&self, addr: u64, len: usize) -> Option<(u32, usize)> {
        let block = match &self.storage {
            Storage::Array { block } | Storage::Hash { block, .. } => block,
            _ => return None,
        };
        let off = block.offset_of(addr, len)?;
        let (slot, at) = (off / self.stride, off % self.stride);
        (at + len <= self.spec.value_size as usize).then_some((u32::try_from(slot).ok()?, at))
    }

    /// The key of element `slot` (an array's index, a hash map's slot holding a key) and its
    /// value's address: what a timer callback of the element is called with.
    pub(crate) fn element(&self, slot: u32) -> Option<(Vec<u8>, u64)> {
        let addr = |block: &SharedMem| block.addr() + u64::from(slot) * self.stride as u64;
        match &self.storage {
            Storage::Array { block } => {
                (slot < self.spec.max_entries).then(|| (slot.to_le_bytes().to_vec(), addr(block)))
            }
            Storage::Hash { block, table } => {
                let key = lock(&table.alloc).slots.key(slot as usize)?.to_vec();
                Some((key, addr(block)))
            }
            _ => None,
        }
    }

    /// The guest memory block programs reach, if the kind has one.
    pub(crate) fn block(&self) -> Option<&Arc<SharedMem>> {
        match &self.storage {
            Storage::Array { block } | Storage::Hash { block, .. } => Some(block),
            Storage::RingBuf { block, .. } => Some(block),
            Storage::ProgArray { .. } => None,
            Storage::Ext(e) => e.block(),
        }
    }

    /// An array's block, `max_entries` and stride: what a lookup from a program computes (the
    /// value at `index * stride` in the block for an index below `max_entries`, else null),
    /// for the JIT to compute it in the code. `None` for every other kind.
    ///
    /// A per-CPU array gives its number of CPUs too: CPU `c`'s values follow the first `c`
    /// CPUs' ([`crate::maps::MapImpl::percpu_array_layout`]).
    pub(crate) fn array_layout(&self) -> Option<(&Arc<SharedMem>, u32, u32, Option<u32>)> {
        match &self.storage {
            Storage::Array { block } => Some((
                block,
                self.spec.max_entries,
                u32::try_from(self.stride).ok()?,
                None,
            )),
            Storage::Ext(e) => {
                let (stride, cpus) = e.percpu_array_layout()?;
                Some((e.block()?, self.spec.max_entries, stride, Some(cpus)))
            }
            _ => None,
        }
    }

    /// The implementation of a [`crate::maps`] kind.
    pub(crate) fn ext(&self) -> Option<&dyn MapImpl> {
        match &self.storage {
            Storage::Ext(e) => Some(&**e),
            _ => None,
        }
    }

    /// Size in bytes of a value as the host reads and writes it: `value_size`, or for per-CPU
    /// kinds `value_size` rounded up to 8 times the number of CPUs (libbpf's layout: CPU
    /// `c`'s value at `c * round_up(value_size, 8)`).
    pub fn host_value_size(&self) -> usize {
        match &self.storage {
            Storage::Ext(e) => e.host_value_size(),
            _ => self.spec.value_size as usize,
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.spec.key_size as usize {
            return Err(MapError::KeySize {
                expected: self.spec.key_size,
                got: key.len(),
            });
        }
        Ok(())
    }

    fn array_index(&self, key: &[u8]) -> Option<usize> {
        let i = u32::from_le_bytes(key.try_into().ok()?);
        (i < self.spec.max_entries).then_some(i as usize)
    }

    /// Offset of the value for `key` in the block (LRU: counts as a use).
    fn value_offset(&self, key: &[u8]) -> Option<usize> {
        match &self.storage {
            Storage::Array { .. } => self.array_index(key).map(|i| i * self.stride),
            Storage::Hash { table, .. } => table.find(key).map(|s| s as usize * self.stride),
            _ => None,
        }
    }

    /// The address of the value for `key` as a program on `cpu` sees it, or `None`:
    /// `map_lookup_elem` from a program.
    pub(crate) fn prog_lookup(&self, key: &[u8], cpu: u32) -> Option<u64> {
        match &self.storage {
            Storage::Ext(e) => e.prog_lookup(key, cpu),
            _ => self.lookup_addr(key),
        }
    }

    /// The address of the value for `key`, or `None` (the basic kinds).
    pub(crate) fn lookup_addr(&self, key: &[u8]) -> Option<u64> {
        let off = self.value_offset(key)?;
        Some(self.block()?.addr() + off as u64)
    }

    /// `map_update_elem`, host or program: `key` and `value` have the map's sizes.
    fn update_inner(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        let mut padded;
        let value = if value.len() < self.stride {
            // The padding up to the stride is zeroed on every write, as the kernel does.
            padded = value.to_vec();
            padded.resize(self.stride, 0);
            &padded[..]
        } else {
            value
        };
        match &self.storage {
            Storage::Array { block } => {
                let i = self.array_index(key).ok_or(MapError::Full)?;
                if flag == UpdateFlag::NoExist {
                    return Err(MapError::Exists);
                }
                block.write(i * self.stride, value);
                // The kernel cancels and frees the timer of an updated array element (the
                // element stays; its timer must be initialised again).
                self.timers.free(i as u32);
                Ok(())
            }
            Storage::Hash { block, table } => table.update(key, flag, |slot| {
                // Written under the key's shard lock, so a concurrent update of the same key
                // never interleaves with this one. The old element's timer goes with it (a
                // replaced, or evicted, element's), whatever the new value's bytes.
                block.write(slot as usize * self.stride, value);
                self.timers.free(slot);
            }),
            _ => Err(MapError::Unsupported(self.spec.kind)),
        }
    }

    fn delete_inner(&self, key: &[u8]) -> Result<(), MapError> {
        match &self.storage {
            Storage::Hash { table, .. } => {
                let slot = table.remove(key).ok_or(MapError::NotFound)?;
                // A deleted element's timer never fires.
                self.timers.free(slot);
                Ok(())
            }
            _ => Err(MapError::Unsupported(self.spec.kind)),
        }
    }

    /// `map_update_elem` from a program running on `cpu`: refuses read-only maps.
    pub(crate) fn prog_update(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        if self.spec.read_only {
            return Err(MapError::ReadOnly);
        }
        if let Storage::Ext(e) = &self.storage {
            return e.prog_update(key, value, flags, cpu);
        }
        let flag = UpdateFlag::from_raw(flags).ok_or(MapError::Flags(flags))?;
        self.update_inner(key, value, flag)
    }

    /// `map_delete_elem` from a program.
    pub(crate) fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        if self.spec.read_only {
            return Err(MapError::ReadOnly);
        }
        if let Storage::Ext(e) = &self.storage {
            return e.prog_delete(key);
        }
        self.delete_inner(key)
    }

    /// The value stored under `key`, if any ([`Map::host_value_size`] bytes: per-CPU kinds
    /// give every CPU's value; an LPM trie the value of the longest matching prefix).
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.check_key(key)?;
        if let Storage::Ext(e) = &self.storage {
            return e.lookup(key);
        }
        let (Some(off), Some(block)) = (self.value_offset(key), self.block()) else {
            return Ok(None);
        };
        let mut v = vec![0; self.spec.value_size as usize];
        block.read(off, &mut v);
        Ok(Some(v))
    }

    /// Stores `value` ([`Map::host_value_size`] bytes) under `key` (the host may write
    /// read-only maps, as before loading).
    pub fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        self.check_key(key)?;
        if let Storage::Ext(e) = &self.storage {
            return e.update(key, value, flag);
        }
        if value.len() != self.spec.value_size as usize {
            return Err(MapError::ValueSize {
                expected: self.spec.value_size,
                got: value.len(),
            });
        }
        self.update_inner(key, value, flag)
    }

    /// Removes `key` (hash maps and LPM tries: array entries always exist; queues, stacks and
    /// bloom filters have no keys).
    pub fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_key(key)?;
        if let Storage::Ext(e) = &self.storage {
            return e.delete(key);
        }
        self.delete_inner(key)
    }

    /// A snapshot of every entry as `(key, value)`: arrays in index order, hash maps in key byte
    /// order (deterministic, unlike the kernel's bucket order), LPM tries in post-order (see
    /// [`Map::next_key`]), queues and stacks in pop order with empty keys; per-CPU values hold
    /// every CPU's ([`Map::host_value_size`]). Empty for ring buffers, program arrays, perf event
    /// arrays and bloom filters.
    pub fn iter(&self) -> std::vec::IntoIter<(Vec<u8>, Vec<u8>)> {
        let vs = self.spec.value_size as usize;
        let read = |block: &SharedMem, off: usize| {
            let mut v = vec![0; vs];
            block.read(off, &mut v);
            v
        };
        let out: Vec<(Vec<u8>, Vec<u8>)> = match &self.storage {
            Storage::Array { block } => (0..self.spec.max_entries)
                .map(|i| {
                    (
                        i.to_le_bytes().to_vec(),
                        read(block, i as usize * self.stride),
                    )
                })
                .collect(),
            Storage::Hash { block, table } => {
                let mut kv = Vec::new();
                table.for_each(|k, s| kv.push((k.to_vec(), read(block, s as usize * self.stride))));
                kv.sort();
                kv
            }
            Storage::Ext(e) => e.entries(),
            _ => Vec::new(),
        };
        out.into_iter()
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key`, or the first key when `key` is `None` or
    /// not in the map (as the kernel does); `Ok(None)` after the last key (the kernel's
    /// `ENOENT`). Arrays go by index, hash maps by key byte order, LPM tries in post-order
    /// (more specific prefixes first). Ring buffers, program arrays and perf event arrays
    /// have no keys to walk (`EINVAL`).
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        match &self.storage {
            Storage::Ext(e) => e.next_key(key),
            Storage::Array { .. } => {
                let next = match key.and_then(|k| self.array_index(k)) {
                    None => 0,
                    Some(i) if i + 1 == self.spec.max_entries as usize => return Ok(None),
                    Some(i) => i + 1,
                };
                Ok(Some((next as u32).to_le_bytes().to_vec()))
            }
            Storage::Hash { table, .. } => Ok(table.next_key(key)),
            _ => Err(MapError::Unsupported(self.spec.kind)),
        }
    }

    /// Number of entries (arrays: always `max_entries`; ring buffers and perf event arrays:
    /// records ready to read; bloom filters: bits set).
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Array { .. } => self.spec.max_entries as usize,
            Storage::Hash { table, .. } => table.len(),
            Storage::RingBuf { ring, .. } => ring
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .records
                .iter()
                .filter(|r| r.state == RecState::Ready)
                .count(),
            Storage::ProgArray { slots } => slots
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .flatten()
                .count(),
            Storage::Ext(e) => e.len(),
        }
    }

    /// Whether [`Map::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn ring(&self) -> Result<(&SharedMem, MutexGuard<'_, Ring>), MapError> {
        match &self.storage {
            Storage::RingBuf { block, ring } => {
                Ok((block, ring.lock().unwrap_or_else(|e| e.into_inner())))
            }
            _ => Err(MapError::Unsupported(self.spec.kind)),
        }
    }

    /// Takes the oldest submitted record of a ring buffer, if one is ready. Discarded records
    /// are skipped; a record still reserved (not yet submitted) stops the reader, as in the
    /// kernel, since records are consumed in order.
    pub fn pop_record(&self) -> Result<Option<Vec<u8>>, MapError> {
        let (block, mut ring) = self.ring()?;
        while let Some(r) = ring.records.front() {
            match r.state {
                RecState::Busy => return Ok(None),
                RecState::Discarded => {
                    ring.head = r.end;
                    ring.records.pop_front();
                }
                RecState::Ready => {
                    let mut out = vec![0; r.len];
                    block.read(r.off, &mut out);
                    ring.head = r.end;
                    ring.records.pop_front();
                    return Ok(Some(out));
                }
            }
        }
        Ok(None)
    }

    /// Every record ready to read, oldest first (see [`Map::pop_record`]).
    pub fn drain_records(&self) -> Result<Vec<Vec<u8>>, MapError> {
        let mut out = Vec::new();
        while let Some(r) = self.pop_record()? {
            out.push(r);
        }
        Ok(out)
    }

    /// `ringbuf_reserve`: the address of `len` fresh bytes, or `None` when full or `len` is 0.
    pub(crate) fn ring_reserve(&self, len: u64) -> Option<u64> {
        if len == 0 {
            return None;
        }
        let (block, mut ring) = self.ring().ok()?;
        let off = ring.reserve(len)?;
        Some(block.addr() + off as u64)
    }

    /// `ringbuf_submit` / `ringbuf_discard` of the record at `addr`; false when `addr` is not
    /// the start of a reserved record of this ring.
    pub(crate) fn ring_commit(&self, addr: u64, discard: bool) -> bool {
        let Ok((block, mut ring)) = self.ring() else {
            return false;
        };
        match block.offset_of(addr, 1) {
            Some(off) => ring.commit(off, discard),
            None => false,
        }
    }

    /// Whether `addr` lies inside this ring buffer's data.
    pub(crate) fn ring_contains(&self, addr: u64) -> bool {
        matches!(&self.storage, Storage::RingBuf { block, .. } if block.offset_of(addr, 1).is_some())
    }

    /// `ringbuf_output`: reserve, copy and submit at once.
    pub(crate) fn ring_output(&self, data: &[u8]) -> Result<(), MapError> {
        let (block, mut ring) = self.ring()?;
        let off = ring.reserve(data.len() as u64).ok_or(MapError::NoSpace)?;
        block.write(off, data);
        ring.commit(off, false);
        Ok(())
    }

    /// Puts a program in slot `index` of a program array.
    pub(crate) fn set_slot(&self, index: u32, prog: Option<Arc<Linked>>) -> Result<(), MapError> {
        match &self.storage {
            Storage::ProgArray { slots } => {
                let mut s = slots.write().unwrap_or_else(|e| e.into_inner());
                let slot = s.get_mut(index as usize).ok_or(MapError::Full)?;
                *slot = prog;
                Ok(())
            }
            _ => Err(MapError::Unsupported(self.spec.kind)),
        }
    }

    /// The program in slot `index`, for a tail call.
    pub(crate) fn slot(&self, index: u64) -> Result<Arc<Linked>, MapError> {
        match &self.storage {
            Storage::ProgArray { slots } => {
                let s = slots.read().unwrap_or_else(|e| e.into_inner());
                let i = usize::try_from(index).map_err(|_| MapError::Full)?;
                s.get(i)
                    .ok_or(MapError::Full)?
                    .clone()
                    .ok_or(MapError::NotFound)
            }
            _ => Err(MapError::Unsupported(self.spec.kind)),
        }
    }

    /// The names of the programs in a program array, by slot.
    pub fn programs(&self) -> Vec<(u32, String)> {
        match &self.storage {
            Storage::ProgArray { slots } => slots
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.as_ref().map(|p| (i as u32, p.name.clone())))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kind: MapKind, k: u32, v: u32, n: u32) -> Map {
        Map::new(MapSpec::new("m", kind, k, v, n)).unwrap()
    }

    #[test]
    fn array_update_lookup_and_flags() {
        let m = map(MapKind::Array, 4, 12, 3);
        assert_eq!(m.lookup(&1u32.to_le_bytes()), Ok(Some(vec![0; 12])));
        m.update(&1u32.to_le_bytes(), &[7; 12], UpdateFlag::Any)
            .unwrap();
        assert_eq!(m.lookup(&1u32.to_le_bytes()), Ok(Some(vec![7; 12])));
        assert_eq!(m.lookup(&3u32.to_le_bytes()), Ok(None));
        assert_eq!(
            m.update(&3u32.to_le_bytes(), &[0; 12], UpdateFlag::Any),
            Err(MapError::Full)
        );
        assert_eq!(
            m.update(&0u32.to_le_bytes(), &[0; 12], UpdateFlag::NoExist),
            Err(MapError::Exists)
        );
        assert_eq!(
            m.delete(&0u32.to_le_bytes()),
            Err(MapError::Unsupported(MapKind::Array))
        );
        assert_eq!(m.iter().count(), 3);
        // Values are 8-byte strided in the block.
        let a0 = m.lookup_addr(&0u32.to_le_bytes()).unwrap();
        let a1 = m.lookup_addr(&1u32.to_le_bytes()).unwrap();
        assert_eq!(a1 - a0, 16);
    }

    #[test]
    fn hash_full_and_flags_and_slot_reuse() {
        let m = map(MapKind::Hash, 2, 4, 2);
        m.update(b"aa", &[1; 4], UpdateFlag::NoExist).unwrap();
        m.update(b"bb", &[2; 4], UpdateFlag::Any).unwrap();
        assert_eq!(
            m.update(b"cc", &[3; 4], UpdateFlag::Any),
            Err(MapError::Full)
        );
        assert_eq!(
            m.update(b"aa", &[3; 4], UpdateFlag::NoExist),
            Err(MapError::Exists)
        );
        assert_eq!(
            m.update(b"zz", &[3; 4], UpdateFlag::Exist),
            Err(MapError::NotFound)
        );
        let addr_a = m.lookup_addr(b"aa").unwrap();
        m.delete(b"aa").unwrap();
        assert_eq!(m.delete(b"aa"), Err(MapError::NotFound));
        m.update(b"cc", &[3; 4], UpdateFlag::Any).unwrap();
        assert_eq!(
            m.lookup_addr(b"cc"),
            Some(addr_a),
            "the freed slot is reused"
        );
        let all: Vec<_> = m.iter().collect();
        assert_eq!(
            all,
            vec![(b"bb".to_vec(), vec![2; 4]), (b"cc".to_vec(), vec![3; 4])]
        );
        assert_eq!(
            m.lookup(b"a"),
            Err(MapError::KeySize {
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn lru_evicts_the_least_recently_used_key() {
        let m = map(MapKind::LruHash, 1, 1, 2);
        m.update(b"a", &[1], UpdateFlag::Any).unwrap();
        m.update(b"b", &[2], UpdateFlag::Any).unwrap();
        assert!(m.lookup_addr(b"a").is_some(), "a is now the most recent");
        m.update(b"c", &[3], UpdateFlag::Any).unwrap();
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn ring_buffer_orders_records_and_wraps_with_padding() {
        let m = map(MapKind::RingBuf, 0, 0, 32);
        let a = m.ring_reserve(5).unwrap();
        let b = m.ring_reserve(16).unwrap();
        assert_eq!(m.ring_reserve(16), None, "8 bytes left");
        let block = m.block().unwrap().clone();
        block.write((a - block.addr()) as usize, b"hello");
        assert!(m.ring_commit(b, true));
        assert_eq!(m.pop_record(), Ok(None), "the first record is still busy");
        assert!(m.ring_commit(a, false));
        assert!(!m.ring_commit(a, false), "committed twice");
        assert_eq!(m.drain_records(), Ok(vec![b"hello".to_vec()]));
        // Tail at 24: a 16-byte record does not fit before the end, so it starts at 0.
        m.ring_output(&[9; 16]).unwrap();
        assert_eq!(m.drain_records(), Ok(vec![vec![9; 16]]));
        assert_eq!(m.ring_output(&[0; 40]), Err(MapError::NoSpace));
        assert!(Map::new(MapSpec::new("r", MapKind::RingBuf, 0, 0, 24)).is_err());
    }

    /// `ringbuf_output` of 0 bytes succeeds with an empty record, as in the kernel, and each
    /// such record still takes 8 bytes of the ring, so a full ring refuses them.
    #[test]
    fn empty_ring_buffer_records_succeed_and_take_room() {
        let m = map(MapKind::RingBuf, 0, 0, 32);
        for _ in 0..4 {
            assert_eq!(m.ring_output(&[]), Ok(()));
        }
        assert_eq!(
            m.ring_output(&[]),
            Err(MapError::NoSpace),
            "4 x 8 bytes fill 32"
        );
        assert_eq!(m.drain_records(), Ok(vec![Vec::new(); 4]));
        assert_eq!(m.ring_output(&[]), Ok(()), "room again once read");
        assert_eq!(
            m.ring_reserve(0),
            None,
            "ringbuf_reserve of 0 bytes stays refused"
        );
    }

    /// docs/runtime.md: a hash map may declare up to 2^27 entries (the kernel's `E2BIG` past
    /// that), reserving 8 bytes of address space per entry for 8-byte values (16 for LRU) and
    /// no more than `MAX_RESERVED_BYTES`; full, an entry takes some 360 bytes (440 for LRU),
    /// charged as chunks of slots are first used. The size limits are the kernel's (Linux
    /// 6.18, `bpftool map create`): entries past 2^27, key plus value from 4 MiB - 48.
    #[test]
    fn hash_bound_allows_the_documented_capacity() {
        let check = |kind, k, v, n| MapSpec::new("h", kind, k, v, n).check();
        for kind in [MapKind::Hash, MapKind::LruHash] {
            assert!(check(kind, 4, 8, 1 << 27).is_ok(), "{kind}");
            let why = check(kind, 4, 8, (1 << 27) + 1).unwrap_err();
            assert!(
                why.contains("2^27 buckets") && why.contains("E2BIG"),
                "{why}"
            );
            // 2^20 values of 128 KiB: 128 GiB of address space.
            let why = check(kind, 4, 128 << 10, 1 << 20).unwrap_err();
            assert!(why.contains("address space"), "{why}");
            assert!(check(kind, 4, 4_194_251, 1).is_ok(), "{kind}");
            let why = check(kind, 4, 4_194_252, 1).unwrap_err();
            assert!(why.contains("E2BIG"), "{why}");
            assert!(check(kind, 100, 4_194_155, 1).is_ok(), "{kind}");
            assert!(check(kind, 100, 4_194_156, 1).is_err(), "{kind}");
            // Keys past 512 bytes are the kernel's too.
            assert!(check(kind, 1024, 8, 1).is_ok(), "{kind}");
        }
        for (kind, range) in [(MapKind::Hash, 350..=370), (MapKind::LruHash, 430..=450)] {
            let spec = MapSpec::new("h", kind, 4, 8, 800_000);
            let per_entry = spec.memory_bytes().unwrap() / 800_000;
            assert!(range.contains(&per_entry), "{kind}: {per_entry}");
            let cfg = MapConfig::default();
            assert!(spec.creation_bytes_with(&cfg).unwrap() < 64 << 10, "{kind}");
        }
    }

    /// Slots come a chunk at a time, freed ones first; each chunk is charged once, when its
    /// first slot is handed out, and a chunk the pool refuses is `ENOMEM` with nothing taken.
    #[test]
    fn slots_are_charged_a_chunk_at_a_time() {
        use crate::memory::Pool;
        let cost = SlotCost {
            reserved: 0,
            fixed: 0,
            per_slot: 10,
            slab_per_slot: SLOT_CHUNK_BYTES / 3,
        };
        assert_eq!(cost.chunk(), 2, "the power of two of slots within 64 KiB");
        let pool = Pool::new(45);
        let base = pool.charge(|| "m".into(), 5).unwrap();
        let mut slots: Slots<u8> = Slots::new(5, &cost);
        slots.attach(&base);
        assert_eq!(
            pool.used(),
            5,
            "nothing charged before a slot is handed out"
        );
        assert_eq!(slots.take(), Ok(Some(0)));
        assert_eq!(pool.used(), 25, "the first chunk: two slots");
        slots.set(0, b'a');
        assert_eq!(slots.take(), Ok(Some(1)));
        assert_eq!(pool.used(), 25);
        slots.set(1, b'b');
        assert_eq!(slots.take(), Ok(Some(2)));
        slots.set(2, b'c');
        assert_eq!(pool.used(), 45);
        assert_eq!(slots.take(), Ok(Some(3)));
        slots.set(3, b'd');
        assert_eq!(
            slots.take(),
            Err(MapError::NoMemory),
            "the third chunk does not fit"
        );
        assert_eq!((pool.used(), slots.len(), slots.high_water()), (45, 4, 4));
        assert_eq!(slots.release(1), Some(b'b'));
        assert_eq!(slots.take(), Ok(Some(1)), "a freed slot first, for nothing");
        slots.set(1, b'e');
        assert_eq!(slots.clear(0), Some(b'a'));
        assert_eq!(slots.key(0), None);
        slots.set(0, b'f');
        drop(base);
        assert_eq!(pool.used(), 40);
        drop(slots);
        assert_eq!(pool.used(), 0, "the chunks' charge goes with the slots");
        // Without a pool, only `max` bounds the slots; the last chunk is partial.
        let mut free: Slots<u8> = Slots::new(3, &cost);
        for s in 0..3 {
            assert_eq!(free.take(), Ok(Some(s)));
            free.set(s, 0);
        }
        assert_eq!(free.take(), Ok(None), "full");
    }

    #[test]
    fn bad_shapes_are_errors() {
        for (kind, k, v, n) in [
            (MapKind::Array, 8, 4, 1),
            (MapKind::Hash, 0, 4, 1),
            (MapKind::Hash, 4, 4, 0),
            (MapKind::ProgArray, 4, 8, 1),
            (MapKind::Array, 4, 1 << 20, 1 << 20),
        ] {
            assert!(Map::new(MapSpec::new("m", kind, k, v, n)).is_err());
        }
    }
}
