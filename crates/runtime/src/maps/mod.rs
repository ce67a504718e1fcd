//! The map kinds beyond the basic five of [`crate::map`]: per-CPU arrays and hashes, the
//! longest-prefix-match trie, the perf event array, queues, stacks, bloom filters, maps of
//! maps, the redirect targets (device, CPU and XSK maps), the socket maps and socket-local storage. Each kind lives in a file of its own
//! with its layout, its semantics, its kernel error numbers, its host view and its memory need;
//! [`crate::map::Map`] reaches them through the [`MapImpl`] trait.
//!
//! Per-CPU kinds need the number of CPUs, and the perf event array the size of its per-CPU
//! buffers: both come from [`MapConfig`], which the [`crate::Vm`] fills in
//! ([`crate::Vm::cpus`], [`crate::Vm::perf_buffer_size`]).

pub(crate) mod bloom;
pub(crate) mod devmap;
pub(crate) mod lpm;
pub(crate) mod of_maps;
pub(crate) mod percpu;
pub(crate) mod perf;
pub(crate) mod queue;
pub(crate) mod sk_storage;
pub(crate) mod sockmap;
pub(crate) mod stacktrace;

use crate::map::{MapError, MapKind, MapSpec, SlotCost, UpdateFlag};
use crate::memory::{Charge, MAX_RESERVED_BYTES};
use bpfx_exec::SharedMem;
use std::sync::Arc;

/// What creating a map needs besides its spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapConfig {
    /// Number of CPUs: per-CPU maps hold a value per CPU, perf event arrays a buffer per CPU,
    /// and a program running on a thread sees CPU `thread id % cpus` (see [`crate::Vm::cpus`]).
    pub cpus: u32,
    /// Bytes of each CPU's perf event buffer (records and their 8-byte headers).
    pub perf_buffer_size: u32,
}

/// The default size of a CPU's perf event buffer, in bytes: 64 KiB, what sixteen 4 KiB pages
/// hold (libbpf users commonly map 8 to 64 pages per CPU).
pub const DEFAULT_PERF_BUFFER_SIZE: u32 = 64 << 10;

/// The number of CPUs a [`MapConfig`] takes by default: the host's available parallelism.
pub fn default_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            cpus: default_cpus(),
            perf_buffer_size: DEFAULT_PERF_BUFFER_SIZE,
        }
    }
}

/// `BPF_F_NO_PREALLOC`: the map allocates entries on update (LPM tries require it).
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// A map kind implemented in this module: the operations [`crate::map::Map`] forwards.
///
/// Key and value sizes are checked by the caller for the host operations; `cpu` is always
/// below the configured number of CPUs.
pub(crate) trait MapImpl: Send + Sync {
    /// The guest memory programs reach, if any.
    fn block(&self) -> Option<&Arc<SharedMem>>;
    /// For a per-CPU array: its stride and number of CPUs, CPU `c`'s value `i` lying at
    /// `(c * max_entries + i) * stride` in [`MapImpl::block`], which is what
    /// [`MapImpl::prog_lookup`] returns for an index below `max_entries` (so the JIT may
    /// compute it). `None` for every other kind.
    fn percpu_array_layout(&self) -> Option<(u32, u32)> {
        None
    }
    /// `map_lookup_elem` from a program running on `cpu`: the address of the value.
    fn prog_lookup(&self, key: &[u8], cpu: u32) -> Option<u64>;
    /// `map_lookup_percpu_elem`: the address of CPU `cpu`'s value (per-CPU kinds only).
    fn prog_lookup_on(&self, _key: &[u8], _cpu: u64) -> Option<u64> {
        None
    }
    /// `map_update_elem` from a program running on `cpu`.
    fn prog_update(&self, key: &[u8], value: &[u8], flags: u64, cpu: u32) -> Result<(), MapError>;
    /// `map_delete_elem` from a program.
    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError>;
    /// Size of a value as the host reads and writes it (per-CPU kinds: all CPUs at once).
    fn host_value_size(&self) -> usize;
    /// Host lookup.
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError>;
    /// Host update; `value` has [`MapImpl::host_value_size`] bytes.
    fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError>;
    /// Host delete.
    fn delete(&self, key: &[u8]) -> Result<(), MapError>;
    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first one when `key` is `None` or, as
    /// the kernel does, when it is not in the map); `Ok(None)` after the last (`ENOENT`).
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError>;
    /// Every entry, in [`MapImpl::next_key`] order, values as the host sees them.
    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Number of entries.
    fn len(&self) -> usize;
    /// `map_push_elem` (queues, stacks, bloom filters).
    fn push(&self, _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind()))
    }
    /// `map_pop_elem` (`remove`) or `map_peek_elem` of a queue or stack: the next value.
    fn pop(&self, _remove: bool) -> Result<Vec<u8>, MapError> {
        Err(MapError::Unsupported(self.kind()))
    }
    /// `map_peek_elem` of a bloom filter: `Ok` when `value` may be present.
    fn peek_value(&self, _value: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind()))
    }
    /// The kind, for errors.
    fn kind(&self) -> MapKind;
    /// The perf event array behind this map, if it is one.
    fn as_perf(&self) -> Option<&perf::PerfEventArray> {
        None
    }
    /// The device, CPU or XSK map behind this map, if it is one.
    fn as_redirect(&self) -> Option<&devmap::Redirect> {
        None
    }
    /// The socket map or socket hash behind this map, if it is one.
    fn as_sockmap(&self) -> Option<&sockmap::SockMap> {
        None
    }
    /// The socket-storage map behind this map, if it is one.
    fn as_sk_storage(&self) -> Option<&sk_storage::SkStorage> {
        None
    }
    /// The stack trace map behind this map, if it is one.
    fn as_stack_trace(&self) -> Option<&stacktrace::StackTrace> {
        None
    }
    /// The map of maps behind this map, if it is one.
    fn as_of_maps(&self) -> Option<&of_maps::MapOfMaps> {
        None
    }
    /// Charges what the map allocates from now on to `charge`'s pool: the hash family's
    /// chunks of slots ([`crate::map::Slots`]); kinds charged in full at creation ignore it.
    fn attach(&self, _charge: &Charge) {}
}

/// Creates the storage of `spec` when its kind is one of this module's; `Ok(None)` for the
/// kinds [`crate::map`] implements itself.
pub(crate) fn create(
    spec: &MapSpec,
    cfg: &MapConfig,
) -> Result<Option<Box<dyn MapImpl>>, crate::map::CreateError> {
    if host_bytes(spec, cfg)?.is_none() {
        return Ok(None);
    }
    // Kinds charged by use reserve their slab at creation ([`SlotCost`]): within the address
    // space all of a Vm's such maps may reserve together. Every other kind's `bytes` is
    // charged to the Vm's memory limit before it gets here (or, for a map made outside a Vm,
    // its allocation fails with `CreateError::NoMemory` rather than aborting).
    let reserves = slot_cost(spec, cfg).map_or(0, |c| c.reserved.saturating_add(c.fixed));
    if reserves > MAX_RESERVED_BYTES {
        return Err(format!(
            "reserves {reserves} bytes of address space, more than the {MAX_RESERVED_BYTES} \
             all maps charged by use may reserve together (E2BIG)"
        )
        .into());
    }
    let cpus = cfg.cpus.max(1);
    Ok(Some(match spec.kind {
        MapKind::PerCpuArray => Box::new(percpu::PerCpuArray::new(spec, cpus)?),
        MapKind::PerCpuHash | MapKind::LruPerCpuHash => {
            Box::new(percpu::PerCpuHash::new(spec, cpus)?)
        }
        MapKind::LpmTrie => Box::new(lpm::LpmTrie::new(spec)?),
        MapKind::PerfEventArray => Box::new(perf::PerfEventArray::new(spec, cfg)),
        MapKind::Queue | MapKind::Stack => Box::new(queue::QueueStack::new(spec)),
        MapKind::BloomFilter => Box::new(bloom::Bloom::new(spec)),
        MapKind::StackTrace => Box::new(stacktrace::StackTrace::new(spec)?),
        MapKind::ArrayOfMaps | MapKind::HashOfMaps => Box::new(of_maps::MapOfMaps::new(spec)),
        MapKind::DevMap | MapKind::DevMapHash | MapKind::CpuMap | MapKind::XskMap => {
            Box::new(devmap::Redirect::new(spec, cpus)?)
        }
        MapKind::SockMap | MapKind::SockHash => Box::new(sockmap::SockMap::new(spec)),
        MapKind::SkStorage => Box::new(sk_storage::SkStorage::new(spec)?),
        _ => return Ok(None),
    }))
}

/// The host memory a map of this module's kinds needs, in bytes, after checking its shape as
/// the kernel does (an `Err` is the kernel's `EINVAL` or `E2BIG` at creation); `Ok(None)` for
/// the kinds [`crate::Map`] implements by itself (array, hash, LRU hash, ring buffer, program
/// array). Overflow is an error, never a wrap.
pub fn host_bytes(spec: &MapSpec, cfg: &MapConfig) -> Result<Option<u64>, String> {
    Ok(Some(match spec.kind {
        MapKind::PerCpuArray | MapKind::PerCpuHash | MapKind::LruPerCpuHash => {
            percpu::host_bytes(spec, cfg.cpus.max(1))?
        }
        MapKind::LpmTrie => lpm::host_bytes(spec)?,
        MapKind::PerfEventArray => perf::host_bytes(spec, cfg)?,
        MapKind::Queue | MapKind::Stack => queue::host_bytes(spec)?,
        MapKind::BloomFilter => bloom::host_bytes(spec)?,
        MapKind::StackTrace => stacktrace::host_bytes(spec)?,
        MapKind::ArrayOfMaps | MapKind::HashOfMaps => of_maps::host_bytes(spec)?,
        MapKind::DevMap | MapKind::DevMapHash | MapKind::CpuMap | MapKind::XskMap => {
            devmap::host_bytes(spec)?
        }
        MapKind::SockMap | MapKind::SockHash => sockmap::host_bytes(spec)?,
        MapKind::SkStorage => sk_storage::host_bytes(spec)?,
        _ => return Ok(None),
    }))
}

/// The [`SlotCost`] of this module's kinds charged by use (the per-CPU hashes and the LPM
/// trie), a chunk of slots at a time; `None` for the kinds charged in full at creation, and for a shape
/// [`host_bytes`] refuses.
pub(crate) fn slot_cost(spec: &MapSpec, cfg: &MapConfig) -> Option<SlotCost> {
    match spec.kind {
        MapKind::PerCpuHash | MapKind::LruPerCpuHash => {
            percpu::slot_cost(spec, cfg.cpus.max(1)).ok()
        }
        MapKind::LpmTrie => lpm::slot_cost(spec).ok(),
        _ => None,
    }
}

/// `a * b + c`, or an error naming the map's size as too large.
pub(crate) fn checked_size(parts: &[(u64, u64)]) -> Result<u64, String> {
    parts
        .iter()
        .try_fold(0u64, |acc, &(a, b)| acc.checked_add(a.checked_mul(b)?))
        .ok_or_else(|| "the map's size overflows 64 bits (E2BIG)".to_string())
}

/// The key after `cur` in key byte order among `keys` (the first key when `cur` is `None` or
/// not among them), in one pass: a walk of `n` keys costs `O(n)` per step and sorts nothing.
#[derive(Default)]
pub(crate) struct NextKey {
    first: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
    found: bool,
}

impl NextKey {
    /// Looks at one key of the map, with `cur` the key asked about.
    pub(crate) fn see(&mut self, key: &[u8], cur: Option<&[u8]>) {
        if self.first.as_deref().is_none_or(|f| key < f) {
            self.first = Some(key.to_vec());
        }
        if let Some(c) = cur {
            if key == c {
                self.found = true;
            } else if key > c && self.after.as_deref().is_none_or(|a| key < a) {
                self.after = Some(key.to_vec());
            }
        }
    }

    /// The answer.
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        if self.found { self.after } else { self.first }
    }
}

/// The update flag of a program's `map_update_elem` (`EINVAL` for others).
pub(crate) fn update_flag(flags: u64) -> Result<UpdateFlag, MapError> {
    UpdateFlag::from_raw(flags).ok_or(MapError::Flags(flags))
}
