//! Typed views of maps: [`Array<V>`], [`HashMap<K, V>`], [`PerCpuArray<V>`],
//! [`PerCpuHashMap<K, V>`], [`LpmTrie<K, V>`], [`Queue<V>`], [`Stack<V>`],
//! [`BloomFilter<V>`], [`RingBuf`], [`PerfEventArray`], [`ProgramArray`] and [`MapOfMaps<K>`],
//! as Aya's `aya::maps` offers them.
//!
//! A view is made once from a [`Map`] ([`Object::map_as`], or `View::new`): its kind and the
//! sizes of its key and value types are checked then ([`Error::MapType`], [`Error::MapSize`],
//! each naming the map, the Rust type and both sizes), so the operations after that take and
//! give typed keys and values and fail only as the kernel's do ([`Error::Map`] with the
//! [`MapError`] the kernel's errno maps to: `ENOENT` is [`MapError::NotFound`], `EEXIST`
//! [`MapError::Exists`], `E2BIG` [`MapError::Full`], …). A lookup that finds nothing is
//! `Ok(None)`, not an error, as in Rust's own maps.
//!
//! # Plain old data
//! Keys and values are [`Pod`] types: fixed-size values read from and written to their
//! little-endian bytes (the guest's byte order) with no `unsafe`. The integers, `f32`, `f64`
//! and arrays of `Pod` are `Pod`; a user struct implements the trait by naming its size and
//! reading and writing its fields at their C offsets (padding written as zeros, as the kernel
//! zeroes a value's padding on update). A view checks `Pod::SIZE` against the map once; the
//! trait's methods are then always handed exactly `SIZE` bytes.
//!
//! ```
//! use bpfx::Pod;
//! /// `struct stats { __u32 packets; /* 4 bytes of padding */ __u64 bytes; }`
//! #[derive(Debug, PartialEq)]
//! struct Stats { packets: u32, bytes: u64 }
//! impl Pod for Stats {
//!     const SIZE: usize = 16;
//!     fn from_bytes(b: &[u8]) -> Self {
//!         Stats { packets: u32::from_bytes(&b[..4]), bytes: u64::from_bytes(&b[8..]) }
//!     }
//!     fn write_bytes(&self, out: &mut [u8]) {
//!         self.packets.write_bytes(&mut out[..4]);
//!         self.bytes.write_bytes(&mut out[8..]);
//!     }
//! }
//! let s = Stats { packets: 3, bytes: 180 };
//! assert_eq!(Stats::from_bytes(&s.to_bytes()), s);
//! ```

use crate::error::Error;
use crate::map::{Map, MapError, MapKind, UpdateFlag};
use crate::maps::perf::PerfEvent;
use crate::program::{Object, Program};
use std::marker::PhantomData;
use std::sync::Arc;

/// A fixed-size value that maps hold as its little-endian bytes (see the module docs).
pub trait Pod: Sized {
    /// Size in bytes, as the C type's `sizeof`.
    const SIZE: usize;

    /// The value `bytes` hold; `bytes` is exactly [`Pod::SIZE`] long.
    fn from_bytes(bytes: &[u8]) -> Self;

    /// Writes the value into `out`, exactly [`Pod::SIZE`] bytes long (zeroed beforehand).
    fn write_bytes(&self, out: &mut [u8]);

    /// The value's bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; Self::SIZE];
        self.write_bytes(&mut out);
        out
    }
}

macro_rules! pod_number {
    ($($t:ty)*) => {$(
        impl Pod for $t {
            const SIZE: usize = size_of::<$t>();
            fn from_bytes(bytes: &[u8]) -> Self {
                let mut b = [0; size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
            fn write_bytes(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

pod_number!(u8 u16 u32 u64 u128 i8 i16 i32 i64 i128 f32 f64);

impl<T: Pod, const N: usize> Pod for [T; N] {
    const SIZE: usize = T::SIZE * N;
    fn from_bytes(bytes: &[u8]) -> Self {
        std::array::from_fn(|i| T::from_bytes(&bytes[i * T::SIZE..(i + 1) * T::SIZE]))
    }
    fn write_bytes(&self, out: &mut [u8]) {
        for (v, chunk) in self.iter().zip(out.chunks_exact_mut(T::SIZE.max(1))) {
            v.write_bytes(chunk);
        }
    }
}

/// The key of an LPM trie: `struct bpf_lpm_trie_key { __u32 prefixlen; data }`, the prefix
/// length in host (little-endian) order, then the data in network order (`data` is typically
/// a `[u8; 4]` for IPv4, `[u8; 16]` for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LpmKey<K> {
    /// Number of leading bits of `data` that count.
    pub prefix_len: u32,
    /// The address bytes.
    pub data: K,
}

impl<K> LpmKey<K> {
    /// The key for the first `prefix_len` bits of `data`.
    pub fn new(prefix_len: u32, data: K) -> LpmKey<K> {
        LpmKey { prefix_len, data }
    }
}

impl<K: Pod> Pod for LpmKey<K> {
    const SIZE: usize = 4 + K::SIZE;
    fn from_bytes(bytes: &[u8]) -> Self {
        LpmKey {
            prefix_len: u32::from_bytes(&bytes[..4]),
            data: K::from_bytes(&bytes[4..]),
        }
    }
    fn write_bytes(&self, out: &mut [u8]) {
        self.prefix_len.write_bytes(&mut out[..4]);
        self.data.write_bytes(&mut out[4..]);
    }
}

/// A view of a map, made by checking the map's kind and sizes once.
pub trait MapView: Sized {
    /// Makes the view: [`Error::MapType`] when the map is not of a kind the view covers,
    /// [`Error::MapSize`] when its key or value size is not the Rust type's.
    fn from_map(map: Arc<Map>) -> Result<Self, Error>;
}

impl Object {
    /// The map called `name` as the typed view `T` (creating its storage if need be, as
    /// [`Object::map`] does): `obj.map_as::<HashMap<u32, u64>>("counts")`.
    pub fn map_as<T: MapView>(&self, name: &str) -> Result<T, Error> {
        T::from_map(self.map(name)?)
    }
}

fn check_kind(map: &Map, kinds: &[MapKind], view: &'static str) -> Result<(), Error> {
    if kinds.contains(&map.kind()) {
        Ok(())
    } else {
        Err(Error::MapType {
            map: map.name().to_string(),
            view,
            actual: map.kind(),
        })
    }
}

fn check_size<T: Pod>(map: &Map, what: &'static str, map_size: u32) -> Result<(), Error> {
    if T::SIZE == map_size as usize {
        Ok(())
    } else {
        Err(Error::MapSize {
            map: map.name().to_string(),
            what,
            ty: std::any::type_name::<T>(),
            ty_size: T::SIZE,
            map_size,
        })
    }
}

fn op_err(map: &Map) -> impl Fn(MapError) -> Error + '_ {
    |source| Error::Map {
        map: map.name().to_string(),
        source,
    }
}

/// `BPF_ANY` / `BPF_NOEXIST` / `BPF_EXIST` as the kernel numbers them.
fn raw_flag(flag: UpdateFlag) -> u64 {
    match flag {
        UpdateFlag::Any => 0,
        UpdateFlag::NoExist => 1,
        UpdateFlag::Exist => 2,
    }
}

/// Bytes of one CPU's value in a per-CPU map's host layout: `value_size` rounded up to 8.
fn percpu_stride(map: &Map) -> usize {
    (map.value_size() as usize).div_ceil(8) * 8
}

/// Number of CPUs a per-CPU map holds a value for.
fn percpu_cpus(map: &Map) -> usize {
    map.host_value_size() / percpu_stride(map).max(1)
}

fn split_percpu<V: Pod>(map: &Map, all: &[u8]) -> Vec<V> {
    all.chunks_exact(percpu_stride(map))
        .map(|c| V::from_bytes(&c[..V::SIZE]))
        .collect()
}

fn join_percpu<V: Pod>(map: &Map, values: &[V]) -> Result<Vec<u8>, Error> {
    let cpus = percpu_cpus(map);
    if values.len() != cpus {
        return Err(Error::PerCpuValues {
            map: map.name().to_string(),
            cpus,
            got: values.len(),
        });
    }
    let stride = percpu_stride(map);
    let mut out = vec![0; stride * cpus];
    for (v, c) in values.iter().zip(out.chunks_exact_mut(stride)) {
        v.write_bytes(&mut c[..V::SIZE]);
    }
    Ok(out)
}

macro_rules! view_common {
    ($t:ident $(<$($p:ident),*>)?) => {
        impl$(<$($p),*>)? $t$(<$($p),*>)? {
            /// The map this view reads and writes.
            pub fn map(&self) -> &Arc<Map> {
                &self.map
            }
        }
        /// The view of a map ([`MapView::from_map`]), as Aya's `try_from`.
        impl$(<$($p: Pod),*>)? TryFrom<Arc<Map>> for $t$(<$($p),*>)? {
            type Error = Error;
            fn try_from(map: Arc<Map>) -> Result<Self, Error> {
                Self::from_map(map)
            }
        }
        impl$(<$($p),*>)? std::fmt::Debug for $t$(<$($p),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).field("map", &self.map.name()).finish()
            }
        }
    };
}

/// `BPF_MAP_TYPE_ARRAY` (and a global data section, a one-element array): values by `u32`
/// index.
pub struct Array<V> {
    map: Arc<Map>,
    _v: PhantomData<fn() -> V>,
}
view_common!(Array<V>);

impl<V: Pod> MapView for Array<V> {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::Array], "an array")?;
        check_size::<V>(&map, "value", map.value_size())?;
        Ok(Array {
            map,
            _v: PhantomData,
        })
    }
}

impl<V: Pod> Array<V> {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// Number of elements (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map.max_entries()
    }

    /// Whether the array has no elements (never, for a map the kernel accepts).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `index`: [`MapError::NotFound`] past the end (the kernel's `ENOENT`).
    pub fn get(&self, index: u32) -> Result<V, Error> {
        self.map
            .lookup(&index.to_le_bytes())
            .map_err(op_err(&self.map))?
            .map(|v| V::from_bytes(&v))
            .ok_or_else(|| op_err(&self.map)(MapError::NotFound))
    }

    /// Stores `value` at `index`: [`MapError::Full`] past the end (`E2BIG`),
    /// [`MapError::Exists`] with [`UpdateFlag::NoExist`] (array elements always exist).
    pub fn set(&self, index: u32, value: &V, flag: UpdateFlag) -> Result<(), Error> {
        self.map
            .update(&index.to_le_bytes(), &value.to_bytes(), flag)
            .map_err(op_err(&self.map))
    }

    /// Every value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = V> + use<V> {
        self.map.iter().map(|(_, v)| V::from_bytes(&v))
    }
}

/// `BPF_MAP_TYPE_HASH` and `BPF_MAP_TYPE_LRU_HASH`.
pub struct HashMap<K, V> {
    map: Arc<Map>,
    _kv: PhantomData<fn() -> (K, V)>,
}
view_common!(HashMap<K, V>);

impl<K: Pod, V: Pod> MapView for HashMap<K, V> {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::Hash, MapKind::LruHash], "a hash")?;
        check_size::<K>(&map, "key", map.key_size())?;
        check_size::<V>(&map, "value", map.value_size())?;
        Ok(HashMap {
            map,
            _kv: PhantomData,
        })
    }
}

impl<K: Pod, V: Pod> HashMap<K, V> {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        Ok(self
            .map
            .lookup(&key.to_bytes())
            .map_err(op_err(&self.map))?
            .map(|v| V::from_bytes(&v)))
    }

    /// Stores `value` under `key`: [`MapError::Exists`] with [`UpdateFlag::NoExist`] on an
    /// existing key (`EEXIST`), [`MapError::NotFound`] with [`UpdateFlag::Exist`] on a missing
    /// one (`ENOENT`), [`MapError::Full`] for a new key in a full map (`E2BIG`; an LRU hash
    /// evicts instead).
    pub fn insert(&self, key: &K, value: &V, flag: UpdateFlag) -> Result<(), Error> {
        self.map
            .update(&key.to_bytes(), &value.to_bytes(), flag)
            .map_err(op_err(&self.map))
    }

    /// Removes `key`: [`MapError::NotFound`] when absent (`ENOENT`).
    pub fn remove(&self, key: &K) -> Result<(), Error> {
        self.map.delete(&key.to_bytes()).map_err(op_err(&self.map))
    }

    /// A snapshot of every entry, in key byte order.
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + use<K, V> {
        self.map
            .iter()
            .map(|(k, v)| (K::from_bytes(&k), V::from_bytes(&v)))
    }

    /// A snapshot of every key, in key byte order.
    pub fn keys(&self) -> impl Iterator<Item = K> + use<K, V> {
        self.iter().map(|(k, _)| k)
    }
}

/// `BPF_MAP_TYPE_PERCPU_ARRAY`: one value per CPU at each `u32` index.
pub struct PerCpuArray<V> {
    map: Arc<Map>,
    _v: PhantomData<fn() -> V>,
}
view_common!(PerCpuArray<V>);

impl<V: Pod> MapView for PerCpuArray<V> {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::PerCpuArray], "a per-CPU array")?;
        check_size::<V>(&map, "value", map.value_size())?;
        Ok(PerCpuArray {
            map,
            _v: PhantomData,
        })
    }
}

impl<V: Pod> PerCpuArray<V> {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// Number of CPUs, the length of every value list.
    pub fn cpus(&self) -> usize {
        percpu_cpus(&self.map)
    }

    /// Every CPU's value at `index`, CPU 0 first: [`MapError::NotFound`] past the end.
    pub fn get(&self, index: u32) -> Result<Vec<V>, Error> {
        self.map
            .lookup(&index.to_le_bytes())
            .map_err(op_err(&self.map))?
            .map(|all| split_percpu(&self.map, &all))
            .ok_or_else(|| op_err(&self.map)(MapError::NotFound))
    }

    /// Stores one value per CPU at `index` ([`Error::PerCpuValues`] unless `values` has one
    /// per CPU; [`MapError::Full`] past the end).
    pub fn set(&self, index: u32, values: &[V], flag: UpdateFlag) -> Result<(), Error> {
        let bytes = join_percpu(&self.map, values)?;
        self.map
            .update(&index.to_le_bytes(), &bytes, flag)
            .map_err(op_err(&self.map))
    }

    /// Every index's values, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Vec<V>> + use<V> {
        let map = self.map.clone();
        self.map
            .iter()
            .map(move |(_, all)| split_percpu(&map, &all))
    }
}

/// `BPF_MAP_TYPE_PERCPU_HASH` and `BPF_MAP_TYPE_LRU_PERCPU_HASH`: one value per CPU under
/// each key.
pub struct PerCpuHashMap<K, V> {
    map: Arc<Map>,
    _kv: PhantomData<fn() -> (K, V)>,
}
view_common!(PerCpuHashMap<K, V>);

impl<K: Pod, V: Pod> MapView for PerCpuHashMap<K, V> {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(
            &map,
            &[MapKind::PerCpuHash, MapKind::LruPerCpuHash],
            "a per-CPU hash",
        )?;
        check_size::<K>(&map, "key", map.key_size())?;
        check_size::<V>(&map, "value", map.value_size())?;
        Ok(PerCpuHashMap {
            map,
            _kv: PhantomData,
        })
    }
}

impl<K: Pod, V: Pod> PerCpuHashMap<K, V> {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// Number of CPUs, the length of every value list.
    pub fn cpus(&self) -> usize {
        percpu_cpus(&self.map)
    }

    /// Every CPU's value under `key`, CPU 0 first, if the key is there.
    pub fn get(&self, key: &K) -> Result<Option<Vec<V>>, Error> {
        Ok(self
            .map
            .lookup(&key.to_bytes())
            .map_err(op_err(&self.map))?
            .map(|all| split_percpu(&self.map, &all)))
    }

    /// Stores one value per CPU under `key` (flags and errors as [`HashMap::insert`];
    /// [`Error::PerCpuValues`] unless `values` has one per CPU).
    pub fn insert(&self, key: &K, values: &[V], flag: UpdateFlag) -> Result<(), Error> {
        let bytes = join_percpu(&self.map, values)?;
        self.map
            .update(&key.to_bytes(), &bytes, flag)
            .map_err(op_err(&self.map))
    }

    /// Removes `key`: [`MapError::NotFound`] when absent.
    pub fn remove(&self, key: &K) -> Result<(), Error> {
        self.map.delete(&key.to_bytes()).map_err(op_err(&self.map))
    }

    /// A snapshot of every entry, in key byte order.
    pub fn iter(&self) -> impl Iterator<Item = (K, Vec<V>)> + use<K, V> {
        let map = self.map.clone();
        self.map
            .iter()
            .map(move |(k, all)| (K::from_bytes(&k), split_percpu(&map, &all)))
    }

    /// A snapshot of every key, in key byte order.
    pub fn keys(&self) -> impl Iterator<Item = K> + use<K, V> {
        self.map.iter().map(|(k, _)| K::from_bytes(&k))
    }
}

/// `BPF_MAP_TYPE_LPM_TRIE` with keys [`LpmKey<K>`].
pub struct LpmTrie<K, V> {
    map: Arc<Map>,
    _kv: PhantomData<fn() -> (K, V)>,
}
view_common!(LpmTrie<K, V>);

impl<K: Pod, V: Pod> MapView for LpmTrie<K, V> {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::LpmTrie], "an LPM trie")?;
        check_size::<LpmKey<K>>(&map, "key", map.key_size())?;
        check_size::<V>(&map, "value", map.value_size())?;
        Ok(LpmTrie {
            map,
            _kv: PhantomData,
        })
    }
}

impl<K: Pod, V: Pod> LpmTrie<K, V> {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// The value of the longest stored prefix matching `key`, if any.
    pub fn get(&self, key: &LpmKey<K>) -> Result<Option<V>, Error> {
        Ok(self
            .map
            .lookup(&key.to_bytes())
            .map_err(op_err(&self.map))?
            .map(|v| V::from_bytes(&v)))
    }

    /// Stores `value` for the prefix `key`: [`MapError::PrefixLen`] past the data's bits
    /// (`EINVAL`), [`MapError::OutOfSpace`] for a new prefix in a full trie (`ENOSPC`), and
    /// the flags' errors of [`HashMap::insert`].
    pub fn insert(&self, key: &LpmKey<K>, value: &V, flag: UpdateFlag) -> Result<(), Error> {
        self.map
            .update(&key.to_bytes(), &value.to_bytes(), flag)
            .map_err(op_err(&self.map))
    }

    /// Removes the exact prefix `key`: [`MapError::NotFound`] when absent.
    pub fn remove(&self, key: &LpmKey<K>) -> Result<(), Error> {
        self.map.delete(&key.to_bytes()).map_err(op_err(&self.map))
    }

    /// A snapshot of every entry, more specific prefixes first (the kernel's post-order).
    pub fn iter(&self) -> impl Iterator<Item = (LpmKey<K>, V)> + use<K, V> {
        self.map
            .iter()
            .map(|(k, v)| (LpmKey::from_bytes(&k), V::from_bytes(&v)))
    }

    /// A snapshot of every key, in the order of [`LpmTrie::iter`].
    pub fn keys(&self) -> impl Iterator<Item = LpmKey<K>> + use<K, V> {
        self.map.iter().map(|(k, _)| LpmKey::from_bytes(&k))
    }
}

macro_rules! push_pop {
    ($t:ident, $kind:expr, $view:literal, $order:literal) => {
        #[doc = concat!("`BPF_MAP_TYPE_", $view, "`: values taken ", $order, ".")]
        pub struct $t<V> {
            map: Arc<Map>,
            _v: PhantomData<fn() -> V>,
        }
        view_common!($t<V>);

        impl<V: Pod> MapView for $t<V> {
            fn from_map(map: Arc<Map>) -> Result<Self, Error> {
                check_kind(&map, &[$kind], concat!("a ", $view))?;
                check_size::<V>(&map, "value", map.value_size())?;
                Ok($t {
                    map,
                    _v: PhantomData,
                })
            }
        }

        impl<V: Pod> $t<V> {
            /// The view of `map` (see [`MapView::from_map`]).
            pub fn new(map: Arc<Map>) -> Result<Self, Error> {
                Self::from_map(map)
            }

            /// Adds `value`: [`MapError::Full`] when full (`E2BIG`), unless `flag` is
            /// [`UpdateFlag::Exist`], which drops the oldest value to make room; `NoExist` is
            /// [`MapError::Flags`] (`EINVAL`).
            pub fn push(&self, value: &V, flag: UpdateFlag) -> Result<(), Error> {
                self.map
                    .push(&value.to_bytes(), raw_flag(flag))
                    .map_err(op_err(&self.map))
            }

            /// Takes the next value, if any.
            pub fn pop(&self) -> Result<Option<V>, Error> {
                Ok(self
                    .map
                    .pop()
                    .map_err(op_err(&self.map))?
                    .map(|v| V::from_bytes(&v)))
            }

            /// The next value without taking it, if any.
            pub fn peek(&self) -> Result<Option<V>, Error> {
                Ok(self
                    .map
                    .peek()
                    .map_err(op_err(&self.map))?
                    .map(|v| V::from_bytes(&v)))
            }
        }
    };
}

push_pop!(Queue, MapKind::Queue, "QUEUE", "oldest first");
push_pop!(Stack, MapKind::Stack, "STACK", "newest first");

/// `BPF_MAP_TYPE_BLOOM_FILTER`: values pushed, then tested for membership.
pub struct BloomFilter<V> {
    map: Arc<Map>,
    _v: PhantomData<fn() -> V>,
}
view_common!(BloomFilter<V>);

impl<V: Pod> MapView for BloomFilter<V> {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::BloomFilter], "a bloom filter")?;
        check_size::<V>(&map, "value", map.value_size())?;
        Ok(BloomFilter {
            map,
            _v: PhantomData,
        })
    }
}

impl<V: Pod> BloomFilter<V> {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// Adds `value`.
    pub fn insert(&self, value: &V) -> Result<(), Error> {
        self.map
            .push(&value.to_bytes(), 0)
            .map_err(op_err(&self.map))
    }

    /// Whether the filter may hold `value` (`false`: surely not).
    pub fn contains(&self, value: &V) -> Result<bool, Error> {
        self.map
            .bloom_contains(&value.to_bytes())
            .map_err(op_err(&self.map))
    }
}

/// `BPF_MAP_TYPE_RINGBUF`, from the consumer's side: records in the order programs
/// submitted them.
pub struct RingBuf {
    map: Arc<Map>,
}
view_common!(RingBuf);

impl MapView for RingBuf {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::RingBuf], "a ring buffer")?;
        Ok(RingBuf { map })
    }
}

impl RingBuf {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// Takes the next submitted record, if one is ready (see [`Map::pop_record`]).
    pub fn next(&self) -> Option<Vec<u8>> {
        // The kind was checked when the view was made: a ring buffer's pop cannot fail.
        self.map.pop_record().ok().flatten()
    }

    /// Takes the next record as a `T`: [`Error::MapSize`] (the record is consumed) when its
    /// length is not `T`'s size.
    pub fn next_as<T: Pod>(&self) -> Result<Option<T>, Error> {
        let Some(r) = self.next() else {
            return Ok(None);
        };
        if r.len() != T::SIZE {
            return Err(Error::MapSize {
                map: self.map.name().to_string(),
                what: "record",
                ty: std::any::type_name::<T>(),
                ty_size: T::SIZE,
                map_size: u32::try_from(r.len()).unwrap_or(u32::MAX),
            });
        }
        Ok(Some(T::from_bytes(&r)))
    }

    /// Every record ready, oldest first.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.next()).collect()
    }
}

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`, from the consumer's side: each CPU's records and lost
/// counts.
pub struct PerfEventArray {
    map: Arc<Map>,
}
view_common!(PerfEventArray);

impl MapView for PerfEventArray {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::PerfEventArray], "a perf event array")?;
        Ok(PerfEventArray { map })
    }
}

impl PerfEventArray {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// Hands every waiting record to `f`, CPU by CPU (see [`Map::perf_poll`]); returns how
    /// many.
    pub fn poll(&self, f: impl FnMut(PerfEvent)) -> usize {
        // The kind was checked when the view was made.
        self.map.perf_poll(f).unwrap_or(0)
    }

    /// Takes the next waiting record, if any.
    pub fn next(&self) -> Option<PerfEvent> {
        self.map.perf_next().ok().flatten()
    }

    /// Every waiting record, CPU by CPU.
    pub fn drain(&self) -> Vec<PerfEvent> {
        self.map.perf_drain().unwrap_or_default()
    }
}

/// `BPF_MAP_TYPE_PROG_ARRAY`: the targets of `bpf_tail_call`, by `u32` slot.
pub struct ProgramArray {
    map: Arc<Map>,
}
view_common!(ProgramArray);

impl MapView for ProgramArray {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(&map, &[MapKind::ProgArray], "a program array")?;
        Ok(ProgramArray { map })
    }
}

impl ProgramArray {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// Puts `prog` in slot `index` (see [`Map::set_program`]): [`Error::ProgArray`] for a
    /// program of another object, [`MapError::Full`] past the end.
    pub fn set(&self, index: u32, prog: &Program) -> Result<(), Error> {
        self.map.set_program(index, prog)
    }

    /// Puts the program called `name` among `programs` in slot `index`
    /// ([`Error::NoProgram`] when none is called so).
    pub fn set_by_name(&self, index: u32, name: &str, programs: &[&Program]) -> Result<(), Error> {
        let prog = programs
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error::NoProgram {
                name: name.to_string(),
                available: programs.iter().map(|p| p.name().to_string()).collect(),
            })?;
        self.set(index, prog)
    }

    /// Empties slot `index`: [`MapError::Full`] past the end.
    pub fn clear(&self, index: u32) -> Result<(), Error> {
        self.map.clear_program(index)
    }

    /// The names of the programs in their slots, by slot.
    pub fn programs(&self) -> Vec<(u32, String)> {
        self.map.programs()
    }
}

/// `BPF_MAP_TYPE_ARRAY_OF_MAPS` (keys `u32`) and `BPF_MAP_TYPE_HASH_OF_MAPS`: inner maps by
/// key.
pub struct MapOfMaps<K> {
    map: Arc<Map>,
    _k: PhantomData<fn() -> K>,
}
view_common!(MapOfMaps<K>);

impl<K: Pod> MapView for MapOfMaps<K> {
    fn from_map(map: Arc<Map>) -> Result<Self, Error> {
        check_kind(
            &map,
            &[MapKind::ArrayOfMaps, MapKind::HashOfMaps],
            "a map of maps",
        )?;
        check_size::<K>(&map, "key", map.key_size())?;
        Ok(MapOfMaps {
            map,
            _k: PhantomData,
        })
    }
}

impl<K: Pod> MapOfMaps<K> {
    /// The view of `map` (see [`MapView::from_map`]).
    pub fn new(map: Arc<Map>) -> Result<Self, Error> {
        Self::from_map(map)
    }

    /// The inner map under `key`, if any.
    pub fn get(&self, key: &K) -> Option<Arc<Map>> {
        self.map.inner(&key.to_bytes())
    }

    /// Puts `inner` under `key`: [`MapError::InnerMismatch`] when it does not match the
    /// template (`EINVAL`), and the flags' errors of [`HashMap::insert`].
    pub fn insert(&self, key: &K, inner: &Arc<Map>, flag: UpdateFlag) -> Result<(), Error> {
        self.map
            .set_inner_with(&key.to_bytes(), inner, flag)
            .map_err(op_err(&self.map))
    }

    /// Empties `key`: [`MapError::NotFound`] when it holds no map.
    pub fn remove(&self, key: &K) -> Result<(), Error> {
        self.map.delete(&key.to_bytes()).map_err(op_err(&self.map))
    }

    /// A snapshot of the keys that hold a map.
    pub fn keys(&self) -> impl Iterator<Item = K> + use<K> {
        self.map.iter().map(|(k, _)| K::from_bytes(&k))
    }
}
