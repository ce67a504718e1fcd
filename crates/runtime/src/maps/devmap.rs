//! Redirect targets for `bpf_redirect_map`: `BPF_MAP_TYPE_DEVMAP` (14),
//! `BPF_MAP_TYPE_DEVMAP_HASH` (25), `BPF_MAP_TYPE_CPUMAP` (16) and `BPF_MAP_TYPE_XSKMAP` (17).
//!
//! Keys are 4 bytes. Values, as the kernel lays them out:
//! - device maps: `struct bpf_devmap_val { u32 ifindex; union { int fd; u32 id; } bpf_prog; }`,
//!   4 bytes (the ifindex alone) or 8;
//! - CPU maps: `struct bpf_cpumap_val { u32 qsize; union { int fd; u32 id; } bpf_prog; }`, 4
//!   or 8 bytes;
//! - XSK maps: an `AF_XDP` socket's fd, 4 bytes.
//!
//! bpfx has no network devices, CPUs' queues or sockets: an entry records what the host put
//! there, and `bpf_redirect_map` reports the target it picked
//! ([`crate::Program::last_redirect`]). It runs no program attached to an entry, so a
//! `bpf_prog.fd` above 0 is refused (`EINVAL`); a read gives program id 0.
//!
//! Programs may look up device maps (read-only values, as the kernel forces
//! `BPF_F_RDONLY_PROG` on them), not CPU or XSK maps (`NULL`; the kernel's verifier refuses
//! those lookups), and may not update or delete (`EINVAL`).
//!
//! # Layout
//! A slab of `max_entries` values in one read-only block (a device map's values are what
//! programs read), value `s` at `s * stride`; host-side, behind one `RwLock`, the key → slot
//! index and the free slots (the array kinds use slot = key).

use super::{MapImpl, NextKey, checked_size};
use crate::map::{MapError, MapKind, MapSpec, UpdateFlag};
use bpfx_exec::SharedMem;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The most entries a CPU map may have: the kernel's `NR_CPUS` of common x86-64 configs.
pub const MAX_CPUMAP_ENTRIES: u32 = 8192;

/// The largest queue a CPU map entry may ask for (the kernel's limit; `EOVERFLOW` past it).
pub const MAX_CPUMAP_QSIZE: u32 = 16384;

struct Table {
    index: BTreeMap<u32, u32>,
    free: Vec<u32>,
}

/// A device, CPU or XSK map.
pub(crate) struct Redirect {
    kind: MapKind,
    value_size: usize,
    stride: usize,
    max_entries: u32,
    cpus: u32,
    block: Arc<SharedMem>,
    table: RwLock<Table>,
}

/// Checks the shape as the kernel does and returns the host memory the map takes: the
/// values, and per entry its index node share and free-list slot.
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.max_entries == 0 {
        return Err("max_entries is 0".into());
    }
    if spec.key_size != 4 {
        return Err(format!(
            "{} keys must be 4 bytes, not {}",
            spec.kind, spec.key_size
        ));
    }
    let sizes: &[u32] = match spec.kind {
        MapKind::XskMap => &[4],
        _ => &[4, 8],
    };
    if !sizes.contains(&spec.value_size) {
        return Err(format!(
            "{} values must be {} bytes, not {}",
            spec.kind,
            if sizes.len() == 1 { "4" } else { "4 or 8" },
            spec.value_size
        ));
    }
    if spec.kind == MapKind::CpuMap && spec.max_entries > MAX_CPUMAP_ENTRIES {
        return Err(format!(
            "a cpumap has at most {MAX_CPUMAP_ENTRIES} entries (NR_CPUS), not {} (E2BIG)",
            spec.max_entries
        ));
    }
    checked_size(&[(u64::from(spec.max_entries), 8 + 48 + 4)])
}

impl Redirect {
    pub(crate) fn new(spec: &MapSpec, cpus: u32) -> Result<Redirect, crate::map::CreateError> {
        let n = spec.max_entries;
        let stride = (spec.value_size as usize).next_multiple_of(8);
        Ok(Redirect {
            kind: spec.kind,
            value_size: spec.value_size as usize,
            stride,
            max_entries: n,
            cpus,
            block: crate::map::alloc_block(stride * n as usize, false)?,
            table: RwLock::new(Table {
                index: BTreeMap::new(),
                free: (0..n).rev().collect(),
            }),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether keys are indexes (all but the device hash).
    fn array(&self) -> bool {
        self.kind != MapKind::DevMapHash
    }

    fn key(key: &[u8]) -> Result<u32, MapError> {
        Ok(u32::from_le_bytes(key.try_into().map_err(|_| {
            MapError::KeySize {
                expected: 4,
                got: key.len(),
            }
        })?))
    }

    /// Whether `key` holds an entry: what `bpf_redirect_map` asks.
    pub(crate) fn present(&self, key: u32) -> bool {
        self.read().index.contains_key(&key)
    }

    fn value_at(&self, slot: u32) -> Vec<u8> {
        let mut v = vec![0; self.value_size];
        self.block.read(slot as usize * self.stride, &mut v);
        v
    }
}

impl MapImpl for Redirect {
    fn block(&self) -> Option<&Arc<SharedMem>> {
        Some(&self.block)
    }

    fn prog_lookup(&self, key: &[u8], _cpu: u32) -> Option<u64> {
        if !matches!(self.kind, MapKind::DevMap | MapKind::DevMapHash) {
            return None;
        }
        let slot = *self.read().index.get(&Self::key(key).ok()?)?;
        Some(self.block.addr() + (slot as usize * self.stride) as u64)
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn prog_delete(&self, _: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn host_value_size(&self) -> usize {
        self.value_size
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        if self.kind == MapKind::XskMap {
            // The kernel's XSK maps cannot be read through the syscall.
            return Err(MapError::NotSupported(self.kind));
        }
        let k = Self::key(key)?;
        Ok(self.read().index.get(&k).map(|&s| self.value_at(s)))
    }

    fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        let k = Self::key(key)?;
        if value.len() != self.value_size {
            return Err(MapError::ValueSize {
                expected: self.value_size as u32,
                got: value.len(),
            });
        }
        if self.array() && k >= self.max_entries {
            return Err(MapError::Full);
        }
        let word = |i: usize| u32::from_le_bytes(value[i..i + 4].try_into().unwrap_or([0; 4]));
        let mut stored = value.to_vec();
        match self.kind {
            MapKind::DevMap | MapKind::DevMapHash | MapKind::CpuMap => {
                if value.len() == 8 {
                    if (word(4) as i32) > 0 {
                        // A program fd: bpfx runs no programs on redirected frames.
                        return Err(MapError::Unsupported(self.kind));
                    }
                    // Reads show the program id: none.
                    stored[4..8].copy_from_slice(&0u32.to_le_bytes());
                }
                if self.kind == MapKind::CpuMap {
                    if word(0) > MAX_CPUMAP_QSIZE {
                        return Err(MapError::Overflow);
                    }
                    if k >= self.cpus {
                        return Err(MapError::NoDevice);
                    }
                } else if word(0) == 0 {
                    // No device has index 0.
                    return Err(MapError::NoDevice);
                }
            }
            _ => {}
        }
        let mut t = self.write();
        let slot = match (t.index.get(&k).copied(), flag) {
            (Some(_), UpdateFlag::NoExist) => return Err(MapError::Exists),
            // The kernel's arrays refuse BPF_NOEXIST outright: their slots always exist.
            (None, UpdateFlag::NoExist) if self.array() && self.kind != MapKind::XskMap => {
                return Err(MapError::Exists);
            }
            (None, UpdateFlag::Exist) if self.kind == MapKind::XskMap => {
                return Err(MapError::NotFound);
            }
            (Some(s), _) => s,
            (None, _) => {
                let s = if self.array() {
                    t.free.retain(|&f| f != k);
                    k
                } else {
                    t.free.pop().ok_or(MapError::Full)?
                };
                t.index.insert(k, s);
                s
            }
        };
        // CPU maps: a queue size of 0 removes the entry (the kernel's rule).
        if self.kind == MapKind::CpuMap && word(0) == 0 {
            t.index.remove(&k);
            t.free.push(slot);
            return Ok(());
        }
        self.block.write(slot as usize * self.stride, &stored);
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let k = Self::key(key)?;
        if self.array() && k >= self.max_entries {
            return Err(MapError::BadIndex);
        }
        let mut t = self.write();
        match t.index.remove(&k) {
            Some(s) => {
                t.free.push(s);
                Ok(())
            }
            // The kernel's arrays clear the slot whether or not it held an entry.
            None if self.array() => Ok(()),
            None => Err(MapError::NotFound),
        }
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let cur = key.map(Self::key).transpose()?;
        if self.array() {
            // By index, entries or not, as the kernel walks its arrays.
            let next = match cur {
                Some(i) if i < self.max_entries => i + 1,
                _ => 0,
            };
            return Ok((next < self.max_entries).then(|| next.to_le_bytes().to_vec()));
        }
        let t = self.read();
        let mut next = NextKey::default();
        let cur = cur.map(u32::to_le_bytes);
        for k in t.index.keys() {
            next.see(&k.to_le_bytes(), cur.as_ref().map(|c| &c[..]));
        }
        Ok(next.finish())
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let t = self.read();
        let mut out: Vec<_> = t
            .index
            .iter()
            .map(|(k, &s)| (k.to_le_bytes().to_vec(), self.value_at(s)))
            .collect();
        out.sort();
        out
    }

    fn len(&self) -> usize {
        self.read().index.len()
    }

    fn kind(&self) -> MapKind {
        self.kind
    }

    fn as_redirect(&self) -> Option<&Redirect> {
        Some(self)
    }
}
