//! Maps of maps: `BPF_MAP_TYPE_ARRAY_OF_MAPS` (12) and `BPF_MAP_TYPE_HASH_OF_MAPS` (13).
//!
//! The outer map holds references to inner maps, all of the shape of its template
//! ([`MapSpec::inner`]: the kernel's `inner_map_meta`). Programs only look it up: the result is
//! the inner map's handle (or null), which they pass to the map helpers; the host sets,
//! replaces and removes inner maps ([`crate::Map::set_inner`], [`crate::Map::inner`],
//! [`crate::Map::delete`]). A host lookup gives the inner map's id
//! ([`crate::Map::id`]), as the kernel's `BPF_MAP_LOOKUP_ELEM` does.
//!
//! # Layout and concurrency
//! The entries are a copy-on-write snapshot ([`Slots`]) behind a lock: a change builds a new
//! snapshot (keys in byte order, each with its inner map) and swaps it in. A run takes the
//! snapshot of every map of maps its program names when it starts and sees that state for its
//! whole length, as an RCU reader sees the kernel's; an inner map stays alive while a run
//! holds a snapshot naming it, so its values never vanish under a program.

use super::{MapImpl, checked_size};
use crate::map::{Map, MapError, MapKind, MapSpec, MapSpecExt, UpdateFlag};
use bpfx_exec::SharedMem;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The kernel's `BPF_F_INNER_MAP`: an inner array may differ from the template in
/// `max_entries`.
pub const BPF_F_INNER_MAP: u32 = 0x1000;

/// One state of a map of maps' entries.
#[derive(Default)]
pub(crate) struct Slots {
    /// Key → position in `maps`.
    pub(crate) index: BTreeMap<Vec<u8>, usize>,
    /// The inner maps, in key byte order.
    pub(crate) maps: Vec<Arc<Map>>,
}

impl Slots {
    fn from_entries(entries: BTreeMap<Vec<u8>, Arc<Map>>) -> Slots {
        let mut s = Slots::default();
        for (k, m) in entries {
            s.index.insert(k, s.maps.len());
            s.maps.push(m);
        }
        s
    }

    fn entries(&self) -> BTreeMap<Vec<u8>, Arc<Map>> {
        self.index
            .iter()
            .map(|(k, &i)| (k.clone(), self.maps[i].clone()))
            .collect()
    }

    /// The inner map at `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<(usize, &Arc<Map>)> {
        let &i = self.index.get(key)?;
        Some((i, &self.maps[i]))
    }
}

/// An array or hash of maps.
pub(crate) struct MapOfMaps {
    kind: MapKind,
    max_entries: u32,
    template: MapSpec,
    slots: RwLock<Arc<Slots>>,
}

/// Checks the shape as the kernel does (4-byte values; an array's keys are 4 bytes; a
/// template bpfx can make inner maps of) and returns the host memory the outer map takes: per
/// entry, its key's heap copy, its index and B-tree share and its inner map's `Arc`, twice
/// (a change builds the next snapshot beside the current one). Inner maps are charged on
/// their own.
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.max_entries == 0 {
        return Err("max_entries is 0".into());
    }
    if spec.value_size != 4 {
        return Err(format!(
            "map of maps values must be 4 bytes (an inner map's fd), not {}",
            spec.value_size
        ));
    }
    if spec.key_size == 0 || (spec.kind == MapKind::ArrayOfMaps && spec.key_size != 4) {
        return Err(format!(
            "bad key size {} for a {}",
            spec.key_size, spec.kind
        ));
    }
    let Some(t) = &spec.inner else {
        return Err("a map of maps needs an inner map template".into());
    };
    check_template(t)?;
    let key = u64::from(spec.key_size).next_multiple_of(16) + 16;
    checked_size(&[(u64::from(spec.max_entries), 2 * (key + 8 + 8 + 48))])
}

/// Whether `t` can be the template of inner maps: a kind bpfx lets programs reach through a
/// handle from a lookup, of a shape it can create.
fn check_template(t: &MapSpec) -> Result<(), String> {
    match t.kind {
        MapKind::ArrayOfMaps | MapKind::HashOfMaps => {
            return Err("an inner map cannot be a map of maps (the kernel's rule)".into());
        }
        // Their helpers keep per-object state (tail-call ownership, reserved records).
        MapKind::ProgArray | MapKind::RingBuf => {
            return Err(format!("bpfx does not support {} inner maps", t.kind));
        }
        _ => {}
    }
    t.check().map(|_| ()).map_err(|e| format!("inner map: {e}"))
}

impl MapOfMaps {
    pub(crate) fn new(spec: &MapSpec) -> MapOfMaps {
        MapOfMaps {
            kind: spec.kind,
            max_entries: spec.max_entries,
            template: spec
                .inner
                .as_deref()
                .cloned()
                .unwrap_or_else(|| MapSpec::new("", MapKind::Array, 4, 4, 1)),
            slots: RwLock::new(Arc::new(Slots::default())),
        }
    }

    /// The template every inner map must match.
    pub(crate) fn template(&self) -> &MapSpec {
        &self.template
    }

    /// The current entries (what a starting run sees).
    pub(crate) fn snapshot(&self) -> Arc<Slots> {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `m` may be an inner map: the kernel's `map_meta_equal` (type, key and value
    /// sizes, flags; for arrays also `max_entries` unless the template has
    /// [`BPF_F_INNER_MAP`]).
    fn matches(&self, m: &Map) -> bool {
        let (t, s) = (&self.template, m.spec());
        let array = matches!(t.kind, MapKind::Array | MapKind::PerCpuArray);
        t.kind == s.kind
            && t.key_size == s.key_size
            && t.value_size == s.value_size
            && t.flags == s.flags
            && t.read_only == s.read_only
            && (!array || t.flags & BPF_F_INNER_MAP != 0 || t.max_entries == s.max_entries)
    }

    fn check_index(&self, key: &[u8]) -> Result<(), MapError> {
        if self.kind == MapKind::ArrayOfMaps {
            let i = u32::from_le_bytes(key.try_into().map_err(|_| MapError::KeySize {
                expected: 4,
                got: key.len(),
            })?);
            if i >= self.max_entries {
                return Err(MapError::Full);
            }
        }
        Ok(())
    }

    /// Sets the inner map at `key` (`EINVAL` when `inner` does not match the template).
    pub(crate) fn set(
        &self,
        key: &[u8],
        inner: &Arc<Map>,
        flag: UpdateFlag,
    ) -> Result<(), MapError> {
        if !self.matches(inner) {
            return Err(MapError::InnerMismatch);
        }
        self.check_index(key)?;
        let mut cur = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let exists = cur.index.contains_key(key);
        match (flag, exists) {
            (UpdateFlag::NoExist, true) => return Err(MapError::Exists),
            // An array's slots always exist for the kernel: an empty one takes BPF_EXIST.
            (UpdateFlag::Exist, false) if self.kind == MapKind::HashOfMaps => {
                return Err(MapError::NotFound);
            }
            (_, false) if cur.index.len() >= self.max_entries as usize => {
                return Err(MapError::Full);
            }
            _ => {}
        }
        let mut e = cur.entries();
        e.insert(key.to_vec(), inner.clone());
        *cur = Arc::new(Slots::from_entries(e));
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_index(key)?;
        let mut cur = self.slots.write().unwrap_or_else(|e| e.into_inner());
        if !cur.index.contains_key(key) {
            return Err(MapError::NotFound);
        }
        let mut e = cur.entries();
        e.remove(key);
        *cur = Arc::new(Slots::from_entries(e));
        Ok(())
    }
}

impl MapImpl for MapOfMaps {
    fn block(&self) -> Option<&Arc<SharedMem>> {
        None
    }

    /// Programs' lookups go through the run's snapshot (the helper gives a handle, not an
    /// address).
    fn prog_lookup(&self, _key: &[u8], _cpu: u32) -> Option<u64> {
        None
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn prog_delete(&self, _: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn host_value_size(&self) -> usize {
        4
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self
            .snapshot()
            .get(key)
            .map(|(_, m)| m.id().to_le_bytes().to_vec()))
    }

    /// bpfx has no map file descriptors: the host sets inner maps with
    /// [`crate::Map::set_inner`].
    fn update(&self, _: &[u8], _: &[u8], _: UpdateFlag) -> Result<(), MapError> {
        Err(MapError::Unsupported(self.kind))
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.remove(key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let s = self.snapshot();
        // The index is in key byte order: the key after a held one, else the first.
        let next = match key {
            Some(k) if s.index.contains_key(k) => {
                s.index.range::<[u8], _>((Excluded(k), Unbounded)).next()
            }
            _ => s.index.iter().next(),
        };
        Ok(next.map(|(k, _)| k.clone()))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let s = self.snapshot();
        s.index
            .iter()
            .map(|(k, &i)| (k.clone(), s.maps[i].id().to_le_bytes().to_vec()))
            .collect()
    }

    fn len(&self) -> usize {
        self.snapshot().index.len()
    }

    fn kind(&self) -> MapKind {
        self.kind
    }

    fn as_of_maps(&self) -> Option<&MapOfMaps> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outer(kind: MapKind, inner: MapSpec) -> Map {
        Map::new(MapSpec {
            inner: Some(Box::new(inner)),
            ..MapSpec::new("outer", kind, 4, 4, 2)
        })
        .unwrap()
    }

    #[test]
    fn inner_maps_must_match_the_template() {
        let t = MapSpec::new("t", MapKind::Array, 4, 8, 4);
        let o = outer(MapKind::ArrayOfMaps, t.clone());
        let good = Arc::new(Map::new(t.clone()).unwrap());
        let k0 = 0u32.to_le_bytes();
        assert_eq!(o.set_inner(&k0, &good), Ok(()));
        assert_eq!(o.inner(&k0).map(|m| m.id()), Some(good.id()));
        assert_eq!(o.lookup(&k0), Ok(Some(good.id().to_le_bytes().to_vec())));
        for bad in [
            MapSpec::new("b", MapKind::Array, 4, 16, 4),
            MapSpec::new("b", MapKind::Array, 4, 8, 5),
            MapSpec::new("b", MapKind::Hash, 4, 8, 4),
        ] {
            let m = Arc::new(Map::new(bad).unwrap());
            assert_eq!(o.set_inner(&k0, &m), Err(MapError::InnerMismatch));
            assert_eq!(MapError::InnerMismatch.errno(), 22);
        }
        assert_eq!(
            o.set_inner(&2u32.to_le_bytes(), &good),
            Err(MapError::Full),
            "index past the end"
        );
        // BPF_F_INNER_MAP lets arrays differ in max_entries.
        let flexible = outer(
            MapKind::HashOfMaps,
            MapSpec {
                flags: BPF_F_INNER_MAP,
                ..t.clone()
            },
        );
        let big = Arc::new(
            Map::new(MapSpec {
                flags: BPF_F_INNER_MAP,
                ..MapSpec::new("big", MapKind::Array, 4, 8, 100)
            })
            .unwrap(),
        );
        assert_eq!(flexible.set_inner(b"abcd", &big), Ok(()));
        assert_eq!(flexible.set_inner(b"efgh", &big), Ok(()));
        assert_eq!(flexible.set_inner(b"ijkl", &big), Err(MapError::Full));
        assert_eq!(
            flexible.set_inner_with(b"abcd", &big, UpdateFlag::NoExist),
            Err(MapError::Exists)
        );
        assert_eq!(flexible.len(), 2);
        assert_eq!(flexible.delete(b"abcd"), Ok(()));
        assert_eq!(flexible.delete(b"abcd"), Err(MapError::NotFound));
        assert_eq!(
            flexible.next_key(None),
            Ok(Some(b"efgh".to_vec())),
            "the one left"
        );
    }

    #[test]
    fn bad_outer_shapes_are_refused() {
        let t = MapSpec::new("t", MapKind::Hash, 4, 8, 4);
        for bad in [
            MapSpec::new("o", MapKind::ArrayOfMaps, 4, 4, 1),
            MapSpec {
                inner: Some(Box::new(t.clone())),
                ..MapSpec::new("o", MapKind::ArrayOfMaps, 8, 4, 1)
            },
            MapSpec {
                inner: Some(Box::new(t.clone())),
                ..MapSpec::new("o", MapKind::HashOfMaps, 4, 8, 1)
            },
            MapSpec {
                inner: Some(Box::new(MapSpec::new("r", MapKind::RingBuf, 0, 0, 4096))),
                ..MapSpec::new("o", MapKind::HashOfMaps, 4, 4, 1)
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
