//! Socket-local storage: `BPF_MAP_TYPE_SK_STORAGE` (24), a value per socket that programs
//! reach with `bpf_sk_storage_get` and drop with `bpf_sk_storage_delete`
//! ([`crate::sk_storage`]).
//!
//! The kernel keeps each socket's value on the socket itself and has userspace name the socket
//! by a file descriptor (the map's 4-byte `int` key). bpfx's sockets are those of the
//! [`crate::SocketTable`] the embedder gives its [`crate::Vm`]: a socket's storage is keyed by
//! its [`crate::SocketId`], and the host's 4-byte key is that id (`u32`, little-endian) where
//! the kernel takes a descriptor. The map does not see the table, so the host may store under
//! an id no socket has yet (it is found once a socket with that id is added).
//!
//! Shape, as the kernel checks it at creation (Linux 6.18, measured by loading objects with
//! `bpftool`): flags must hold `BPF_F_NO_PREALLOC` and nothing but it and `BPF_F_CLONE`,
//! `max_entries` 0, keys 4 bytes, values 1 to [`MAX_VALUE_SIZE`] bytes (more: `E2BIG`); any
//! other shape `EINVAL`.
//!
//! Host errors: an update's `BPF_NOEXIST` on a socket with storage `EEXIST`, `BPF_EXIST` on
//! one without `ENOENT`; a delete or lookup of a socket without storage `ENOENT`;
//! `BPF_MAP_GET_NEXT_KEY` `EOPNOTSUPP` (the kernel cannot walk sockets by descriptor; it
//! answers `ENOTSUPP`). [`crate::Map::iter`] lists the entries by socket id.
//!
//! # Layout
//! One block of guest memory, [`SK_STORAGE_SOCKETS`] values of the value size rounded up to 8
//! bytes (a zeroed allocation: pages become resident as values are first written), lent to
//! every program of the object like a hash map's values. A socket's value takes the first free
//! slot when it is created and gives it back when deleted; a program still holding the
//! address reads whatever the slot holds next (the memory stays valid: the block never moves).
//! More sockets than [`SK_STORAGE_SOCKETS`] with storage at once: a program's create gets
//! `NULL`, the host's update `ENOMEM` (what the kernel's allocation failure gives).

use super::{MapImpl, checked_size};
use crate::map::{MapError, MapKind, MapSpec, UpdateFlag};
use crate::maps::BPF_F_NO_PREALLOC;
use bpfx_exec::SharedMem;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// `BPF_F_CLONE`: a forked socket's storage is cloned (bpfx forks no sockets; accepted).
pub const BPF_F_CLONE: u32 = 1 << 9;

/// The largest value the kernel takes (`BPF_LOCAL_STORAGE_MAX_VALUE_SIZE` on Linux 6.18
/// x86-64, measured: 65407 bytes load, 65408 fail with `E2BIG`).
pub const MAX_VALUE_SIZE: u32 = 65407;

/// The most sockets one socket-storage map holds values for at once (bpfx's bound: the
/// kernel's is the number of sockets).
pub const SK_STORAGE_SOCKETS: u32 = 1024;

/// Host bytes per socket besides its value: the index's node share.
const ENTRY_OVERHEAD: u64 = 48;

/// Checks the shape as the kernel does and returns the host memory the map takes.
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.flags & !(BPF_F_NO_PREALLOC | BPF_F_CLONE) != 0 {
        return Err(format!(
            "sk_storage flags {:#x} hold more than BPF_F_NO_PREALLOC and BPF_F_CLONE (EINVAL)",
            spec.flags
        ));
    }
    if spec.flags & BPF_F_NO_PREALLOC == 0 {
        return Err("sk_storage maps need BPF_F_NO_PREALLOC in their flags (EINVAL)".into());
    }
    if spec.max_entries != 0 {
        return Err(format!(
            "sk_storage maps take max_entries 0, not {} (EINVAL)",
            spec.max_entries
        ));
    }
    if spec.key_size != 4 {
        return Err(format!(
            "sk_storage keys must be 4 bytes (an int), not {} (EINVAL)",
            spec.key_size
        ));
    }
    if spec.value_size == 0 {
        return Err("sk_storage values cannot be 0 bytes (EINVAL)".into());
    }
    if spec.value_size > MAX_VALUE_SIZE {
        return Err(format!(
            "sk_storage values of {} bytes are past the kernel's {MAX_VALUE_SIZE} (E2BIG)",
            spec.value_size
        ));
    }
    let stride = u64::from(spec.value_size).next_multiple_of(8);
    checked_size(&[(u64::from(SK_STORAGE_SOCKETS), stride + ENTRY_OVERHEAD)])
}

/// Which slot holds each socket's value.
#[derive(Default)]
struct Index {
    /// Socket id to slot.
    by_socket: BTreeMap<u32, u32>,
    /// Slots given back.
    free: Vec<u32>,
    /// Slots never handed out start here.
    fresh: u32,
}

/// A socket-storage map.
pub(crate) struct SkStorage {
    value_size: usize,
    stride: usize,
    block: Arc<SharedMem>,
    index: Mutex<Index>,
}

impl SkStorage {
    pub(crate) fn new(spec: &MapSpec) -> Result<SkStorage, crate::map::CreateError> {
        let stride = (spec.value_size as usize).next_multiple_of(8);
        let bytes = stride * SK_STORAGE_SOCKETS as usize;
        let block = SharedMem::try_new(bytes, true)
            .ok_or(crate::map::CreateError::NoMemory(bytes as u64))?;
        Ok(SkStorage {
            value_size: spec.value_size as usize,
            stride,
            block,
            index: Mutex::new(Index::default()),
        })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn addr(&self, slot: u32) -> u64 {
        self.block.addr() + slot as u64 * self.stride as u64
    }

    /// The address of `socket`'s value; with `create`, one made from `init` (its first
    /// value-size bytes; zeros when `None`) when the socket has none. `None` when it has none
    /// and `create` is `None`, or every slot is taken.
    pub(crate) fn get(&self, socket: u32, create: Option<Option<&[u8]>>) -> Option<u64> {
        let mut ix = self.index();
        if let Some(&slot) = ix.by_socket.get(&socket) {
            return Some(self.addr(slot));
        }
        let init = create?;
        let slot = self.take(&mut ix)?;
        self.fill(slot, init);
        ix.by_socket.insert(socket, slot);
        Some(self.addr(slot))
    }

    /// Drops `socket`'s value: `false` when it had none.
    pub(crate) fn remove(&self, socket: u32) -> bool {
        let mut ix = self.index();
        match ix.by_socket.remove(&socket) {
            Some(slot) => {
                ix.free.push(slot);
                true
            }
            None => false,
        }
    }

    fn take(&self, ix: &mut Index) -> Option<u32> {
        if let Some(s) = ix.free.pop() {
            return Some(s);
        }
        (ix.fresh < SK_STORAGE_SOCKETS).then(|| {
            ix.fresh += 1;
            ix.fresh - 1
        })
    }

    /// Writes slot `slot`'s value: `init`, or zeros.
    fn fill(&self, slot: u32, init: Option<&[u8]>) {
        let off = slot as usize * self.stride;
        match init {
            Some(v) => self.block.write(off, &v[..self.value_size.min(v.len())]),
            None => self.block.write(off, &vec![0; self.value_size]),
        }
    }

    fn read(&self, slot: u32) -> Vec<u8> {
        let mut v = vec![0; self.value_size];
        self.block.read(slot as usize * self.stride, &mut v);
        v
    }

    fn socket_of(key: &[u8]) -> Result<u32, MapError> {
        <[u8; 4]>::try_from(key)
            .map(u32::from_le_bytes)
            .map_err(|_| MapError::KeySize {
                expected: 4,
                got: key.len(),
            })
    }
}

impl MapImpl for SkStorage {
    fn block(&self) -> Option<&Arc<SharedMem>> {
        Some(&self.block)
    }

    fn prog_lookup(&self, _key: &[u8], _cpu: u32) -> Option<u64> {
        // The verifier lets no program pass this map to map_lookup_elem (the kernel's rule).
        None
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::SkStorage))
    }

    fn prog_delete(&self, _: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::SkStorage))
    }

    fn host_value_size(&self) -> usize {
        self.value_size
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let socket = Self::socket_of(key)?;
        let ix = self.index();
        Ok(ix.by_socket.get(&socket).map(|&slot| self.read(slot)))
    }

    fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        let socket = Self::socket_of(key)?;
        if value.len() != self.value_size {
            return Err(MapError::ValueSize {
                expected: self.value_size as u32,
                got: value.len(),
            });
        }
        let mut ix = self.index();
        let slot = match (ix.by_socket.get(&socket).copied(), flag) {
            (Some(_), UpdateFlag::NoExist) => return Err(MapError::Exists),
            (None, UpdateFlag::Exist) => return Err(MapError::NotFound),
            (Some(slot), _) => slot,
            (None, _) => {
                let slot = self.take(&mut ix).ok_or(MapError::NoMemory)?;
                ix.by_socket.insert(socket, slot);
                slot
            }
        };
        self.fill(slot, Some(value));
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let socket = Self::socket_of(key)?;
        if self.remove(socket) {
            Ok(())
        } else {
            Err(MapError::NotFound)
        }
    }

    fn next_key(&self, _key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::NotSupported(MapKind::SkStorage))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let ix = self.index();
        ix.by_socket
            .iter()
            .map(|(&s, &slot)| (s.to_le_bytes().to_vec(), self.read(slot)))
            .collect()
    }

    fn len(&self) -> usize {
        self.index().by_socket.len()
    }

    fn kind(&self) -> MapKind {
        MapKind::SkStorage
    }

    fn as_sk_storage(&self) -> Option<&SkStorage> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(flags: u32, max_entries: u32, key: u32, value: u32) -> MapSpec {
        MapSpec {
            flags,
            max_entries,
            key_size: key,
            value_size: value,
            ..MapSpec::new("st", MapKind::SkStorage, 0, 0, 0)
        }
    }

    #[test]
    fn shapes_as_the_kernel_checks_them() {
        assert!(host_bytes(&spec(1, 0, 4, 16)).is_ok());
        assert!(host_bytes(&spec(1 | BPF_F_CLONE, 0, 4, MAX_VALUE_SIZE)).is_ok());
        for (s, why) in [
            (spec(0, 0, 4, 16), "NO_PREALLOC"),
            (spec(3, 0, 4, 16), "flags"),
            (spec(1, 1, 4, 16), "max_entries"),
            (spec(1, 0, 8, 16), "keys"),
            (spec(1, 0, 4, 0), "0 bytes"),
            (spec(1, 0, 4, MAX_VALUE_SIZE + 1), "E2BIG"),
        ] {
            let e = host_bytes(&s).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn values_by_socket_and_slot_reuse() {
        let m = SkStorage::new(&spec(1, 0, 4, 12)).unwrap();
        assert_eq!(m.get(3, None), None);
        let a = m.get(3, Some(Some(&[7; 12]))).unwrap();
        assert_eq!(m.get(3, Some(None)), Some(a), "an existing value is kept");
        assert_eq!(m.lookup(&3u32.to_le_bytes()).unwrap(), Some(vec![7; 12]));
        let b = m.get(9, Some(None)).unwrap();
        assert_eq!(b - a, 16, "stride is the value size rounded up to 8");
        assert_eq!(
            m.update(&9u32.to_le_bytes(), &[1; 12], UpdateFlag::NoExist),
            Err(MapError::Exists)
        );
        assert_eq!(
            m.update(&5u32.to_le_bytes(), &[1; 12], UpdateFlag::Exist),
            Err(MapError::NotFound)
        );
        assert!(m.remove(3));
        assert!(!m.remove(3));
        assert_eq!(m.delete(&3u32.to_le_bytes()), Err(MapError::NotFound));
        // The freed slot is reused, zeroed for a create without an initial value.
        assert_eq!(m.get(4, Some(None)), Some(a));
        assert_eq!(m.lookup(&4u32.to_le_bytes()).unwrap(), Some(vec![0; 12]));
        assert_eq!(m.entries().len(), 2);
        assert_eq!(
            m.next_key(None),
            Err(MapError::NotSupported(MapKind::SkStorage))
        );
    }

    #[test]
    fn full_map() {
        let m = SkStorage::new(&spec(1, 0, 4, 8)).unwrap();
        for s in 0..SK_STORAGE_SOCKETS {
            assert!(m.get(s, Some(None)).is_some());
        }
        assert_eq!(m.get(SK_STORAGE_SOCKETS, Some(None)), None);
        assert_eq!(
            m.update(&SK_STORAGE_SOCKETS.to_le_bytes(), &[0; 8], UpdateFlag::Any),
            Err(MapError::NoMemory)
        );
    }
}
