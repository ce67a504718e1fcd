//! `BPF_MAP_TYPE_QUEUE` (22) and `BPF_MAP_TYPE_STACK` (23): values without keys, pushed and
//! popped in FIFO or LIFO order (`map_push_elem` 87, `map_pop_elem` 88, `map_peek_elem` 89).
//!
//! # Layout
//! Host-side: a bounded double-ended queue of value copies behind one lock. Values are copied
//! in and out by the helpers, so programs never hold a pointer into the map, and the map has
//! no guest memory.
//!
//! # Semantics (the kernel's)
//! - Creation: `key_size` 0, `value_size` and `max_entries` not 0, flags only
//!   `BPF_F_NUMA_NODE` and the access flags (`EINVAL`).
//! - Push: flags other than `BPF_EXIST` are `EINVAL`; a full map refuses (`E2BIG`) unless
//!   `BPF_EXIST` is given, which drops the oldest value (for both kinds) to make room.
//! - Pop takes, peek copies, the next value (a queue's oldest, a stack's newest); an empty map
//!   is `ENOENT`.
//! - `map_lookup_elem` gives `NULL`; update, delete and key iteration are `EINVAL` from
//!   programs. The host's `update(&[], value, flag)` is a push (`BPF_ANY` or `BPF_EXIST`,
//!   `BPF_NOEXIST` is `EINVAL`, as the kernel's syscall passes the flags through), its
//!   `lookup(&[])` a peek, and `Map::pop` the kernel's `BPF_MAP_LOOKUP_AND_DELETE_ELEM`.
//!
//! # Concurrency
//! One lock per map, held for a copy of one value (the kernel's maps take one spinlock too).

use super::{MapImpl, checked_size};
use crate::map::{MapError, MapKind, MapSpec, UpdateFlag};
use bpfx_exec::SharedMem;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// `BPF_EXIST` as a push flag: replace the oldest value when full.
const BPF_EXIST: u64 = 2;

/// `BPF_F_NUMA_NODE` and the access flags (`BPF_F_RDONLY`, `BPF_F_WRONLY`,
/// `BPF_F_RDONLY_PROG`, `BPF_F_WRONLY_PROG`): what queues, stacks and bloom filters accept.
pub(crate) const NUMA_AND_ACCESS: u32 = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 7) | (1 << 8);

/// Estimated host bytes per value besides its bytes (its box and the queue's slot).
const ENTRY_OVERHEAD: u64 = 32;

/// Checks the shape of a queue or stack as the kernel does and returns its host memory need.
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.key_size != 0 || spec.value_size == 0 || spec.max_entries == 0 {
        return Err(format!(
            "{} maps have no keys (key size 0) and values and max_entries not 0 (EINVAL)",
            spec.kind
        ));
    }
    if spec.flags & !NUMA_AND_ACCESS != 0 {
        return Err(format!(
            "map flags {:#x} are not valid for a {} map (EINVAL)",
            spec.flags, spec.kind
        ));
    }
    checked_size(&[(
        u64::from(spec.max_entries),
        u64::from(spec.value_size) + ENTRY_OVERHEAD,
    )])
}

/// A queue or a stack.
pub(crate) struct QueueStack {
    kind: MapKind,
    value_size: usize,
    capacity: usize,
    /// Oldest value first.
    values: Mutex<VecDeque<Box<[u8]>>>,
}

impl QueueStack {
    pub(crate) fn new(spec: &MapSpec) -> QueueStack {
        QueueStack {
            kind: spec.kind,
            value_size: spec.value_size as usize,
            capacity: spec.max_entries as usize,
            values: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Box<[u8]>>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next<'a>(&self, q: &'a VecDeque<Box<[u8]>>) -> Option<&'a [u8]> {
        match self.kind {
            MapKind::Stack => q.back(),
            _ => q.front(),
        }
        .map(|v| &**v)
    }
}

impl MapImpl for QueueStack {
    fn kind(&self) -> MapKind {
        self.kind
    }

    fn block(&self) -> Option<&Arc<SharedMem>> {
        None
    }

    fn prog_lookup(&self, _key: &[u8], _cpu: u32) -> Option<u64> {
        None
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn prog_delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & !BPF_EXIST != 0 {
            return Err(MapError::Flags(flags));
        }
        let mut q = self.lock();
        if q.len() == self.capacity {
            if flags & BPF_EXIST == 0 {
                return Err(MapError::Full);
            }
            q.pop_front();
        }
        q.push_back(value[..self.value_size].into());
        Ok(())
    }

    fn pop(&self, remove: bool) -> Result<Vec<u8>, MapError> {
        let mut q = self.lock();
        let v = self.next(&q).ok_or(MapError::NotFound)?.to_vec();
        if remove {
            match self.kind {
                MapKind::Stack => q.pop_back(),
                _ => q.pop_front(),
            };
        }
        Ok(v)
    }

    fn host_value_size(&self) -> usize {
        self.value_size
    }

    fn lookup(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        match self.pop(false) {
            Ok(v) => Ok(Some(v)),
            Err(MapError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn update(&self, _key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        let flags = match flag {
            UpdateFlag::Any => 0,
            UpdateFlag::NoExist => 1,
            UpdateFlag::Exist => BPF_EXIST,
        };
        self.push(value, flags)
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn next_key(&self, _key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    /// The values in pop order, each with an empty key.
    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let q = self.lock();
        let pair = |v: &[u8]| (Vec::new(), v.to_vec());
        match self.kind {
            MapKind::Stack => q.iter().rev().map(|v| pair(v)).collect(),
            _ => q.iter().map(|v| pair(v)).collect(),
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl crate::map::Map {
    fn pushable(&self) -> Result<&dyn MapImpl, MapError> {
        match self.kind() {
            MapKind::Queue | MapKind::Stack | MapKind::BloomFilter => {
                self.ext().ok_or(MapError::Unsupported(self.kind()))
            }
            kind => Err(MapError::Unsupported(kind)),
        }
    }

    fn check_value(&self, value: &[u8]) -> Result<(), MapError> {
        if value.len() != self.value_size() as usize {
            return Err(MapError::ValueSize {
                expected: self.value_size(),
                got: value.len(),
            });
        }
        Ok(())
    }

    /// `map_push_elem` from the host: adds `value` to a queue, stack or bloom filter (`flags`
    /// as the kernel takes them: `BPF_EXIST` replaces a full queue's or stack's oldest value).
    pub fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check_value(value)?;
        self.pushable()?.push(value, flags)
    }

    /// Takes the next value of a queue (the oldest) or stack (the newest); `None` when empty
    /// (the kernel's `BPF_MAP_LOOKUP_AND_DELETE_ELEM`).
    pub fn pop(&self) -> Result<Option<Vec<u8>>, MapError> {
        self.prog_pop(true)
    }

    /// The next value of a queue or stack without taking it; `None` when empty.
    pub fn peek(&self) -> Result<Option<Vec<u8>>, MapError> {
        self.prog_pop(false)
    }

    /// Whether a bloom filter may hold `value` (`false`: surely not).
    pub fn bloom_contains(&self, value: &[u8]) -> Result<bool, MapError> {
        self.check_value(value)?;
        if self.kind() != MapKind::BloomFilter {
            return Err(MapError::Unsupported(self.kind()));
        }
        match self.pushable()?.peek_value(value) {
            Ok(()) => Ok(true),
            Err(MapError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `map_pop_elem` (`remove`) or `map_peek_elem` of a queue or stack.
    pub(crate) fn prog_pop(&self, remove: bool) -> Result<Option<Vec<u8>>, MapError> {
        match self.pushable()?.pop(remove) {
            Ok(v) => Ok(Some(v)),
            Err(MapError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `map_push_elem` from a program.
    pub(crate) fn prog_push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.pushable()?.push(value, flags)
    }

    /// `map_peek_elem` of a bloom filter from a program.
    pub(crate) fn prog_bloom_peek(&self, value: &[u8]) -> Result<(), MapError> {
        self.pushable()?.peek_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kind: MapKind, n: u32) -> QueueStack {
        let spec = MapSpec::new("q", kind, 0, 2, n);
        host_bytes(&spec).unwrap();
        QueueStack::new(&spec)
    }

    #[test]
    fn queue_is_fifo_stack_lifo_and_exist_replaces_the_oldest() {
        for (kind, order) in [
            (MapKind::Queue, [b"22", b"33"]),
            (MapKind::Stack, [b"33", b"22"]),
        ] {
            let m = map(kind, 2);
            assert_eq!(m.pop(true), Err(MapError::NotFound));
            m.push(b"11", 0).unwrap();
            m.push(b"22", 0).unwrap();
            assert_eq!(m.push(b"33", 0), Err(MapError::Full));
            assert_eq!(m.push(b"33", 1), Err(MapError::Flags(1)));
            assert_eq!(m.push(b"33", 4), Err(MapError::Flags(4)));
            m.push(b"33", BPF_EXIST).unwrap();
            assert_eq!(m.pop(false), Ok(order[0].to_vec()), "{kind}: peek");
            assert_eq!(m.len(), 2);
            let popped = [m.pop(true).unwrap(), m.pop(true).unwrap()];
            assert_eq!(popped, order.map(|v| v.to_vec()), "{kind}");
            assert_eq!(m.lookup(&[]), Ok(None));
            assert_eq!(
                m.update(&[], b"44", UpdateFlag::NoExist),
                Err(MapError::Flags(1))
            );
        }
        for bad in [
            MapSpec::new("q", MapKind::Queue, 4, 2, 1),
            MapSpec::new("q", MapKind::Stack, 0, 0, 1),
            MapSpec::new("q", MapKind::Stack, 0, 2, 0),
        ] {
            assert!(host_bytes(&bad).is_err(), "{bad:?}");
        }
    }
}
