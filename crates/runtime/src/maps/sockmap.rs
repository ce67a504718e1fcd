//! Socket maps for `bpf_sk_redirect_map` and `bpf_sk_redirect_hash`: `BPF_MAP_TYPE_SOCKMAP`
//! (15), sockets by a 4-byte index below `max_entries`, and `BPF_MAP_TYPE_SOCKHASH` (18),
//! sockets by a key of any size.
//!
//! Values are 4 or 8 bytes, as the kernel allows: what the host puts there names a socket (the
//! kernel takes a socket's fd and reads back, with 8-byte values, the socket's cookie). bpfx
//! has no sockets: an entry records the host's socket description as given, a lookup from the
//! host gives it back (with 8-byte values only; the kernel answers `ENOSPC` for 4-byte ones),
//! and `bpf_sk_redirect_map`/`bpf_sk_redirect_hash` report the entry they picked
//! ([`crate::Program::last_redirect`]).
//!
//! Programs get no pointer into these maps: as the kernel's, a program's `map_lookup_elem`
//! gives the entry's socket, the one of [`crate::Vm::sockets`] whose cookie the entry holds
//! (`helpers.rs`, `sock_table::socket_of_entry`), or NULL. The verifier refuses a program's
//! `map_update_elem` on them (the kernel's takes a socket the program holds, which it never
//! does here), and its `map_delete_elem` where the kernel does: in every program type but TC,
//! XDP, socket filters and sock_ops ([`crate::helpers::context_sigs`]). A program's delete
//! is the host's, with its errnos.
//!
//! Host errors are the kernel's: an index past the end on update `E2BIG`, on delete `EINVAL`;
//! deleting an empty socket map slot `EINVAL`, a missing socket hash key `ENOENT`; a full
//! socket hash `E2BIG`; `BPF_NOEXIST` on an entry `EEXIST`, `BPF_EXIST` on none `ENOENT`. The
//! socket map's keys walk by index (`BPF_MAP_GET_NEXT_KEY` gives every index, empty or not),
//! the socket hash's in key byte order.
//!
//! # Layout
//! No guest memory: the entries live host-side in one ordered map behind a `RwLock`.

use super::{MapImpl, NextKey, checked_size};
use crate::map::{MapError, MapKind, MapSpec, UpdateFlag};
use bpfx_exec::SharedMem;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A socket map or socket hash.
pub(crate) struct SockMap {
    kind: MapKind,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
    entries: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

/// Bytes per entry besides its key and value: the ordered map's node share.
const ENTRY_OVERHEAD: u64 = 48;

/// Checks the shape as the kernel does and returns the host memory the map takes.
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.max_entries == 0 {
        return Err("max_entries is 0".into());
    }
    if spec.kind == MapKind::SockMap && spec.key_size != 4 {
        return Err(format!(
            "sockmap keys must be 4 bytes, not {}",
            spec.key_size
        ));
    }
    if spec.key_size == 0 {
        return Err("sockhash keys cannot be 0 bytes".into());
    }
    if spec.value_size != 4 && spec.value_size != 8 {
        return Err(format!(
            "{} values must be 4 or 8 bytes (a socket's fd or cookie), not {}",
            spec.kind, spec.value_size
        ));
    }
    checked_size(&[(
        u64::from(spec.max_entries),
        u64::from(spec.key_size) + u64::from(spec.value_size) + ENTRY_OVERHEAD,
    )])
}

impl SockMap {
    pub(crate) fn new(spec: &MapSpec) -> SockMap {
        SockMap {
            kind: spec.kind,
            key_size: spec.key_size as usize,
            value_size: spec.value_size as usize,
            max_entries: spec.max_entries,
            entries: RwLock::new(BTreeMap::new()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether keys are indexes (the socket map).
    fn array(&self) -> bool {
        self.kind == MapKind::SockMap
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() == self.key_size {
            Ok(())
        } else {
            Err(MapError::KeySize {
                expected: self.key_size as u32,
                got: key.len(),
            })
        }
    }

    /// The index a socket map key names.
    fn index(key: &[u8]) -> u32 {
        u32::from_le_bytes(key.try_into().unwrap_or([0xff; 4]))
    }

    /// The value of `key`'s entry, if any: what a program's lookup turns into a socket.
    pub(crate) fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.read().get(key).cloned()
    }

    /// Whether `key` holds a socket: what `sk_redirect_map`/`sk_redirect_hash` ask.
    pub(crate) fn present(&self, key: &[u8]) -> bool {
        key.len() == self.key_size && self.read().contains_key(key)
    }
}

impl MapImpl for SockMap {
    fn block(&self) -> Option<&Arc<SharedMem>> {
        None
    }

    fn prog_lookup(&self, _key: &[u8], _cpu: u32) -> Option<u64> {
        // No memory to point into: `map_lookup_elem` turns the entry into its socket.
        None
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        // The kernel wants a socket the program holds; programs here never hold one.
        Err(MapError::Unsupported(self.kind))
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        // The kernel's `sock_map_delete_elem`/`sock_hash_delete_elem`: as from the host.
        self.delete(key)
    }

    fn host_value_size(&self) -> usize {
        self.value_size
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.check_key(key)?;
        if self.value_size != 8 {
            // The kernel reads back a socket's 8-byte cookie only.
            return Err(MapError::OutOfSpace);
        }
        Ok(self.read().get(key).cloned())
    }

    fn update(&self, key: &[u8], value: &[u8], flag: UpdateFlag) -> Result<(), MapError> {
        self.check_key(key)?;
        if value.len() != self.value_size {
            return Err(MapError::ValueSize {
                expected: self.value_size as u32,
                got: value.len(),
            });
        }
        if self.array() && Self::index(key) >= self.max_entries {
            return Err(MapError::Full);
        }
        let mut t = self.write();
        match (t.contains_key(key), flag) {
            (true, UpdateFlag::NoExist) => return Err(MapError::Exists),
            (false, UpdateFlag::Exist) => return Err(MapError::NotFound),
            (false, _) if t.len() >= self.max_entries as usize => return Err(MapError::Full),
            _ => {}
        }
        t.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_key(key)?;
        if self.array() && Self::index(key) >= self.max_entries {
            return Err(MapError::BadIndex);
        }
        match self.write().remove(key) {
            Some(_) => Ok(()),
            // The kernel's socket map answers EINVAL for an empty slot.
            None if self.array() => Err(MapError::EmptySlot),
            None => Err(MapError::NotFound),
        }
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        if self.array() {
            // By index, sockets or not, as the kernel walks its socket maps.
            let next = match key.map(Self::index) {
                Some(i) if i < self.max_entries => i + 1,
                _ => 0,
            };
            return Ok((next < self.max_entries).then(|| next.to_le_bytes().to_vec()));
        }
        let t = self.read();
        let mut next = NextKey::default();
        for k in t.keys() {
            next.see(k, key);
        }
        Ok(next.finish())
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<_> = self
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if self.array() {
            // Index order, as next_key walks (the keys are little-endian).
            out.sort_by_key(|(k, _)| Self::index(k));
        }
        out
    }

    fn len(&self) -> usize {
        self.read().len()
    }

    fn kind(&self) -> MapKind {
        self.kind
    }

    fn as_sockmap(&self) -> Option<&SockMap> {
        Some(self)
    }
}
