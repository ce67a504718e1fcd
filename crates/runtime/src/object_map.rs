//! The maps an object declares, created on demand.
//!
//! Loading an object allocates no map storage: each map is an [`ObjectMap`] holding what the
//! object declares, whether bpfx can create it (a supported type and a shape the kernel
//! accepts, or the reason not), and what it will cost ([`MapSpecExt::memory_bytes`]). Its storage
//! is created, once, at the first of:
//!
//! - [`crate::ProgramRef::verify`] of a program that names it, once the verifier has accepted
//!   the program (the program is then bound to the storage: it is being prepared to run);
//! - host access through [`crate::Object::map`].
//!
//! Creation charges the [`crate::Vm`]'s memory limit first ([`ObjectMap::creation_bytes`]: the
//! whole bound for most kinds, the fixed part for the hash family, whose slots are charged a
//! chunk at a time as they are first used), and allocates only if the charge fits. A map bpfx cannot create does not sink the object: only the programs that name it
//! fail, when they are verified ([`crate::Error::MapUnsupported`]).
//!
//! # Invariants
//! `map` is set at most once, under the `creating` lock, and only with a [`Map`] that holds
//! the charge of its [`ObjectMap::creation_bytes`] and of the slots it has opened since (given
//! back when the last `Arc` of the map, the object's or the host's, is dropped).

use crate::error::Error;
use crate::map::{Map, MapKind, MapSpec, MapSpecExt};
use crate::maps::MapConfig;
use crate::memory::Pool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A map an object declares, as [`crate::Object::maps`] lists it: the declaration, whether
/// bpfx can create it, and its storage once created.
pub struct ObjectMap {
    name: String,
    kernel_type: u32,
    type_name: String,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    read_only: bool,
    /// The spec and its memory bound, or why bpfx cannot create the map.
    plan: Result<(MapSpec, u64), String>,
    /// The CPUs and perf buffers its storage is made for.
    cfg: MapConfig,
    map: OnceLock<Arc<Map>>,
    creating: Mutex<()>,
    /// Set once a program that names the map is prepared to run: its read-only data can no
    /// longer be set by name ([`crate::Object::set_global`]).
    frozen: AtomicBool,
    /// A map of maps' static slots (`.values` initialisers, iproute2's `inner_idx`): (key,
    /// index of the inner map among the object's maps), set when the map is created.
    pub(crate) map_inits: Vec<(u32, usize)>,
}

impl std::fmt::Debug for ObjectMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectMap")
            .field("name", &self.name)
            .field("type", &self.type_name)
            .field("key_size", &self.key_size)
            .field("value_size", &self.value_size)
            .field("max_entries", &self.max_entries)
            .field("status", &self.status())
            .field("created", &self.map.get().is_some())
            .finish()
    }
}

/// The kernel's map types by number, as `enum bpf_map_type` of the UAPI `linux/bpf.h` names
/// them, without the `BPF_MAP_TYPE_` prefix and in lower case.
const KERNEL_MAP_TYPES: [&str; 32] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
];

impl ObjectMap {
    /// A map bpfx implements (its shape is checked now; storage comes later).
    pub(crate) fn new(spec: MapSpec, cfg: &MapConfig) -> ObjectMap {
        let plan = spec.check_with(cfg).map(|need| (spec.clone(), need));
        ObjectMap {
            name: spec.name,
            kernel_type: spec.kind.kernel_type(),
            type_name: spec.kind.name().to_string(),
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
            flags: spec.flags,
            read_only: spec.read_only,
            plan,
            cfg: *cfg,
            map: OnceLock::new(),
            creating: Mutex::new(()),
            frozen: AtomicBool::new(false),
            map_inits: Vec::new(),
        }
    }

    /// A map as the ELF loader found it: created later if bpfx implements its type.
    ///
    /// A perf event array declared without a key or value size (0) gets the 4 bytes the kernel
    /// requires of both, as cilium/ebpf's loader gives them (`bpf2go` objects commonly declare
    /// only the type); any other size is still refused, as the kernel refuses it.
    pub(crate) fn from_elf(mut m: bpfx_elf::MapSpec, cfg: &MapConfig) -> ObjectMap {
        let raw = m.kind.raw();
        if m.kind == bpfx_elf::MapType::Kind(bpfx_elf::MapKind::PerfEventArray) {
            if m.key_size == 0 {
                m.key_size = 4;
            }
            if m.value_size == 0 {
                m.value_size = 4;
            }
        }
        let map_inits: Vec<(u32, usize)> = m
            .init
            .iter()
            .filter_map(|(k, i)| match i {
                bpfx_elf::MapInit::Map(j) => Some((*k, *j)),
                bpfx_elf::MapInit::Program(_) => None,
            })
            .collect();
        match MapKind::from_kernel(raw) {
            Some(_) => {
                let mut om = match m.clone().implemented() {
                    Ok(spec) => ObjectMap::new(spec, cfg),
                    Err(e) => {
                        // The outer kind is supported: an inner template's is not.
                        let reason = format!(
                            "{}map type {} is not supported by bpfx",
                            "inner map: ".repeat(e.depth),
                            e.map_type
                        );
                        let mut om =
                            ObjectMap::new(MapSpec::new(m.name, MapKind::Array, 4, 4, 1), cfg);
                        om.kernel_type = raw;
                        om.type_name = KERNEL_MAP_TYPES[raw as usize].to_string();
                        om.key_size = m.key_size;
                        om.value_size = m.value_size;
                        om.max_entries = m.max_entries;
                        om.flags = m.flags;
                        om.plan = Err(reason);
                        om
                    }
                };
                om.map_inits = map_inits;
                om
            }
            None => {
                let (type_name, reason) = match KERNEL_MAP_TYPES.get(raw as usize) {
                    Some(name) => (
                        name.to_string(),
                        format!("map type {raw} ({name}) is not supported by bpfx"),
                    ),
                    None => (
                        format!("type {raw}"),
                        format!("map type {raw} is not a kernel map type bpfx knows"),
                    ),
                };
                ObjectMap {
                    name: m.name,
                    kernel_type: raw,
                    type_name,
                    key_size: m.key_size,
                    value_size: m.value_size,
                    max_entries: m.max_entries,
                    flags: m.flags,
                    read_only: m.read_only,
                    plan: Err(reason),
                    cfg: *cfg,
                    map: OnceLock::new(),
                    creating: Mutex::new(()),
                    frozen: AtomicBool::new(false),
                    map_inits,
                }
            }
        }
    }

    /// The name (the symbol, or the section for global data).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel's `BPF_MAP_TYPE_*` number, as declared.
    pub fn kernel_type(&self) -> u32 {
        self.kernel_type
    }

    /// The kind, when bpfx implements the type.
    pub fn kind(&self) -> Option<MapKind> {
        MapKind::from_kernel(self.kernel_type)
    }

    /// The type's lower-case name, as the kernel's UAPI spells it (`hash`, `sockmap`), or
    /// `type N` for a number it does not define.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes.
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// Capacity (entries, or bytes for a ring buffer).
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// The kernel's `map_flags`, as declared.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether programs may only read it.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The most bytes its storage takes, full ([`MapSpecExt::memory_bytes`]), or why bpfx
    /// cannot create it (an unsupported type, a shape or size the kernel refuses; a size past
    /// the [`crate::Vm`]'s memory limit is refused when the map is created).
    pub fn status(&self) -> Result<u64, &str> {
        match &self.plan {
            Ok((_, need)) => Ok(*need),
            Err(reason) => Err(reason),
        }
    }

    /// The bytes the memory limit is charged when its storage is created
    /// ([`MapSpecExt::creation_bytes_with`]): [`ObjectMap::status`]' bound for most kinds,
    /// only the fixed part for the hash family. `None` when bpfx cannot create it.
    pub fn creation_bytes(&self) -> Option<u64> {
        let (spec, need) = self.plan.as_ref().ok()?;
        // Computable for every spec that passed its checks; the full bound otherwise.
        Some(spec.creation_bytes_with(&self.cfg).unwrap_or(*need))
    }

    /// The spec it will be created from, when bpfx can create it.
    pub fn spec(&self) -> Option<&MapSpec> {
        self.plan.as_ref().ok().map(|(spec, _)| spec)
    }

    /// Whether a program that names the map was prepared to run (verified and bound to it):
    /// from then on [`crate::Object::set_global`] refuses to set its variables when it is
    /// read-only, as libbpf freezes `.rodata` when it loads the programs.
    pub fn frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// Marks the map as used by a prepared program ([`ObjectMap::frozen`]).
    pub(crate) fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
    }

    /// Its storage, if created.
    pub fn created(&self) -> Option<&Arc<Map>> {
        self.map.get()
    }

    /// Its storage, created now if need be, charged to `pool` first.
    pub(crate) fn create(&self, pool: &Arc<Pool>) -> Result<&Arc<Map>, Error> {
        self.create_init(pool, |_| Ok(()))
    }

    /// [`ObjectMap::create`], running `init` on the new map (under the creation lock, before
    /// anyone else can see it): a failing `init` leaves the map uncreated.
    pub(crate) fn create_init(
        &self,
        pool: &Arc<Pool>,
        init: impl FnOnce(&Arc<Map>) -> Result<(), Error>,
    ) -> Result<&Arc<Map>, Error> {
        let _creating = self.creating.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = self.map.get() {
            return Ok(map);
        }
        let (spec, need) = self.plan.as_ref().map_err(|reason| Error::MapSpec {
            map: self.name.clone(),
            reason: reason.clone(),
        })?;
        let initial = self.creation_bytes().unwrap_or(*need);
        let charge = pool
            .charge(|| format!("map `{}`", self.name), initial)?
            .reserve(
                || format!("map `{}`", self.name),
                crate::map::reserved_bytes(spec, &self.cfg),
            )?;
        let map = Map::create(spec.clone(), &self.cfg).map_err(|e| match e {
            crate::map::CreateError::Spec(reason) => Error::MapSpec {
                map: self.name.clone(),
                reason,
            },
            // The host refused memory the limit allowed: out of memory all the same.
            crate::map::CreateError::NoMemory(need) => Error::MemoryLimit {
                what: format!("map `{}` (the host could not allocate it)", self.name),
                need,
                used: pool.used(),
                limit: pool.limit(),
            },
        })?;
        let map = Arc::new(map.charged(charge));
        init(&map)?;
        Ok(self.map.get_or_init(|| map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_type_names_agree_with_the_kinds_bpfx_implements() {
        for n in 0..KERNEL_MAP_TYPES.len() as u32 {
            if let Some(kind) = MapKind::from_kernel(n) {
                assert_eq!(KERNEL_MAP_TYPES[n as usize], kind.name(), "type {n}");
            }
        }
        assert_eq!(KERNEL_MAP_TYPES[15], "sockmap");
        assert_eq!(KERNEL_MAP_TYPES[31], "user_ringbuf");
    }

    /// A hash-family map reserves its slab at creation and is charged only as it uses it, so
    /// the address space such maps reserve together is bounded too (`MAX_RESERVED_BYTES`, a
    /// smaller bound here): past it creation fails with `MemoryLimit`, nothing held; dropping
    /// a map gives its reservation back.
    #[test]
    fn reservations_of_maps_charged_by_use_are_bounded() {
        let spec = |name: &str| MapSpec::new(name, MapKind::LruHash, 4, 4096, 1 << 15);
        let reserved = crate::map::reserved_bytes(&spec("a"), &MapConfig::default());
        assert!(reserved >= 4096 << 15, "the slab is reserved");
        let one = ObjectMap::new(spec("a"), &MapConfig::default());
        // An address-space bound that holds two such maps but not three.
        let pool = Pool::with_reserve_cap(1 << 30, reserved * 5 / 2);
        let a = one.create(&pool).unwrap().clone();
        assert_eq!(pool.reserved(), reserved);
        assert!(pool.used() < reserved, "charged by use, not by reservation");
        let two = ObjectMap::new(spec("b"), &MapConfig::default());
        two.create(&pool).unwrap();
        let three = ObjectMap::new(spec("c"), &MapConfig::default());
        let used = pool.used();
        let e = three.create(&pool).unwrap_err();
        assert!(
            matches!(&e, Error::MemoryLimit { what, .. } if what.starts_with("map `c`'s address space")),
            "{e}"
        );
        assert_eq!(pool.used(), used, "the refused map holds nothing");
        assert_eq!(pool.reserved(), 2 * reserved);
        drop(one);
        drop(a);
        assert_eq!(
            pool.reserved(),
            reserved,
            "a dropped map gives its reservation back"
        );
        let four = ObjectMap::new(spec("d"), &MapConfig::default());
        four.create(&pool).unwrap();
    }

    #[test]
    fn creation_is_charged_once_and_refused_past_the_limit() {
        // A hash map is charged only its fixed part at creation.
        let hash = ObjectMap::new(
            MapSpec::new("h", MapKind::Hash, 4, 8, 1000),
            &MapConfig::default(),
        );
        let fixed = hash.creation_bytes().unwrap();
        assert!(fixed < hash.status().unwrap() / 4);
        let pool = Pool::new(fixed);
        hash.create(&pool).unwrap();
        assert_eq!(pool.used(), fixed);
        // An array, in full.
        let spec = MapSpec::new("m", MapKind::Array, 4, 8, 1000);
        let need = spec.memory_bytes().unwrap();
        let pool = Pool::new(need);
        let m = ObjectMap::new(spec.clone(), &MapConfig::default());
        assert_eq!(m.status(), Ok(need));
        assert_eq!(m.creation_bytes(), Some(need));
        assert!(m.created().is_none());
        let a = m.create(&pool).unwrap().clone();
        let b = m.create(&pool).unwrap();
        assert!(Arc::ptr_eq(&a, b), "created once");
        assert_eq!(pool.used(), need);
        let other = ObjectMap::new(
            MapSpec {
                name: "n".into(),
                ..spec
            },
            &MapConfig::default(),
        );
        let e = other.create(&pool).unwrap_err();
        assert!(
            matches!(&e, Error::MemoryLimit { what, .. } if what == "map `n`"),
            "{e}"
        );
        assert!(other.created().is_none());
        drop(m);
        assert_eq!(pool.used(), need, "a clone of the map still holds it");
        drop(a);
        assert_eq!(pool.used(), 0, "the charge goes with the map");
    }
}
