//! Map types: [`MapKind`], the kinds bpfx implements (one definition, which the runtime
//! re-exports), and [`MapType`], a map's type as an object declares it (a kind, or the number
//! of a type bpfx does not implement).

/// The kinds of map bpfx implements, with the kernel's `BPF_MAP_TYPE_*` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapKind {
    /// `BPF_MAP_TYPE_HASH` (1).
    Hash,
    /// `BPF_MAP_TYPE_ARRAY` (2); global data sections too.
    Array,
    /// `BPF_MAP_TYPE_PROG_ARRAY` (3): programs for tail calls.
    ProgArray,
    /// `BPF_MAP_TYPE_LRU_HASH` (9).
    LruHash,
    /// `BPF_MAP_TYPE_RINGBUF` (27).
    RingBuf,
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (4): per-CPU buffers for `perf_event_output`.
    PerfEventArray,
    /// `BPF_MAP_TYPE_PERCPU_HASH` (5).
    PerCpuHash,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` (6).
    PerCpuArray,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH` (10).
    LruPerCpuHash,
    /// `BPF_MAP_TYPE_LPM_TRIE` (11).
    LpmTrie,
    /// `BPF_MAP_TYPE_QUEUE` (22).
    Queue,
    /// `BPF_MAP_TYPE_STACK` (23).
    Stack,
    /// `BPF_MAP_TYPE_BLOOM_FILTER` (30).
    BloomFilter,
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS` (12).
    ArrayOfMaps,
    /// `BPF_MAP_TYPE_HASH_OF_MAPS` (13).
    HashOfMaps,
    /// `BPF_MAP_TYPE_DEVMAP` (14): network devices for `bpf_redirect_map`.
    DevMap,
    /// `BPF_MAP_TYPE_CPUMAP` (16): CPUs for `bpf_redirect_map`.
    CpuMap,
    /// `BPF_MAP_TYPE_XSKMAP` (17): `AF_XDP` sockets for `bpf_redirect_map`.
    XskMap,
    /// `BPF_MAP_TYPE_DEVMAP_HASH` (25): network devices by any 32-bit key.
    DevMapHash,
    /// `BPF_MAP_TYPE_STACK_TRACE` (7): stacks of instruction addresses by the id
    /// `bpf_get_stackid` returns.
    StackTrace,
    /// `BPF_MAP_TYPE_SOCKMAP` (15): sockets by index, for `bpf_sk_redirect_map`.
    SockMap,
    /// `BPF_MAP_TYPE_SOCKHASH` (18): sockets by any key, for `bpf_sk_redirect_hash`.
    SockHash,
    /// `BPF_MAP_TYPE_SK_STORAGE` (24): a value per socket, for `bpf_sk_storage_get`.
    SkStorage,
}

impl MapKind {
    /// The kind with this kernel `BPF_MAP_TYPE_*` number, if bpfx implements it.
    pub fn from_kernel(ty: u32) -> Option<MapKind> {
        Some(match ty {
            1 => MapKind::Hash,
            2 => MapKind::Array,
            3 => MapKind::ProgArray,
            9 => MapKind::LruHash,
            27 => MapKind::RingBuf,
            4 => MapKind::PerfEventArray,
            5 => MapKind::PerCpuHash,
            6 => MapKind::PerCpuArray,
            10 => MapKind::LruPerCpuHash,
            11 => MapKind::LpmTrie,
            22 => MapKind::Queue,
            23 => MapKind::Stack,
            30 => MapKind::BloomFilter,
            12 => MapKind::ArrayOfMaps,
            13 => MapKind::HashOfMaps,
            14 => MapKind::DevMap,
            16 => MapKind::CpuMap,
            17 => MapKind::XskMap,
            25 => MapKind::DevMapHash,
            7 => MapKind::StackTrace,
            15 => MapKind::SockMap,
            18 => MapKind::SockHash,
            24 => MapKind::SkStorage,
            _ => return None,
        })
    }

    /// The kernel's `BPF_MAP_TYPE_*` number.
    pub const fn kernel_type(self) -> u32 {
        match self {
            MapKind::Hash => 1,
            MapKind::Array => 2,
            MapKind::ProgArray => 3,
            MapKind::LruHash => 9,
            MapKind::RingBuf => 27,
            MapKind::PerfEventArray => 4,
            MapKind::PerCpuHash => 5,
            MapKind::PerCpuArray => 6,
            MapKind::LruPerCpuHash => 10,
            MapKind::LpmTrie => 11,
            MapKind::Queue => 22,
            MapKind::Stack => 23,
            MapKind::BloomFilter => 30,
            MapKind::ArrayOfMaps => 12,
            MapKind::HashOfMaps => 13,
            MapKind::DevMap => 14,
            MapKind::CpuMap => 16,
            MapKind::XskMap => 17,
            MapKind::DevMapHash => 25,
            MapKind::StackTrace => 7,
            MapKind::SockMap => 15,
            MapKind::SockHash => 18,
            MapKind::SkStorage => 24,
        }
    }

    /// Lower-case name, as `bpfx info` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            MapKind::Hash => "hash",
            MapKind::Array => "array",
            MapKind::ProgArray => "prog_array",
            MapKind::LruHash => "lru_hash",
            MapKind::RingBuf => "ringbuf",
            MapKind::PerfEventArray => "perf_event_array",
            MapKind::PerCpuHash => "percpu_hash",
            MapKind::PerCpuArray => "percpu_array",
            MapKind::LruPerCpuHash => "lru_percpu_hash",
            MapKind::LpmTrie => "lpm_trie",
            MapKind::Queue => "queue",
            MapKind::Stack => "stack",
            MapKind::BloomFilter => "bloom_filter",
            MapKind::ArrayOfMaps => "array_of_maps",
            MapKind::HashOfMaps => "hash_of_maps",
            MapKind::DevMap => "devmap",
            MapKind::CpuMap => "cpumap",
            MapKind::XskMap => "xskmap",
            MapKind::DevMapHash => "devmap_hash",
            MapKind::StackTrace => "stack_trace",
            MapKind::SockMap => "sockmap",
            MapKind::SockHash => "sockhash",
            MapKind::SkStorage => "sk_storage",
        }
    }

    /// Whether it holds a value per CPU (the host reads and writes all CPUs' values at once).
    pub const fn per_cpu(self) -> bool {
        matches!(
            self,
            MapKind::PerCpuHash | MapKind::PerCpuArray | MapKind::LruPerCpuHash
        )
    }
}

impl std::fmt::Display for MapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A map's `BPF_MAP_TYPE_*` as an object declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapType {
    /// A kind bpfx implements.
    Kind(MapKind),
    /// Any other number (never one of a [`MapKind`]).
    Other(u32),
}

impl MapType {
    /// The type with kernel number `n`.
    pub fn from_raw(n: u32) -> MapType {
        MapKind::from_kernel(n).map_or(MapType::Other(n), MapType::Kind)
    }

    /// The kernel's `BPF_MAP_TYPE_*` number.
    pub const fn raw(self) -> u32 {
        match self {
            MapType::Kind(k) => k.kernel_type(),
            MapType::Other(n) => n,
        }
    }

    /// The kind, when bpfx implements the type.
    pub const fn kind(self) -> Option<MapKind> {
        match self {
            MapType::Kind(k) => Some(k),
            MapType::Other(_) => None,
        }
    }

    /// `ARRAY_OF_MAPS` or `HASH_OF_MAPS`.
    pub const fn is_map_in_map(self) -> bool {
        matches!(
            self,
            MapType::Kind(MapKind::ArrayOfMaps | MapKind::HashOfMaps)
        )
    }
}

impl From<MapKind> for MapType {
    fn from(k: MapKind) -> MapType {
        MapType::Kind(k)
    }
}

#[cfg(test)]
mod tests {
    use super::{MapKind, MapType};

    #[test]
    fn map_type_numbers_roundtrip() {
        for n in 0..64 {
            let t = MapType::from_raw(n);
            assert_eq!(t.raw(), n, "{t:?}");
            match t {
                MapType::Kind(k) => assert_eq!(MapKind::from_kernel(n), Some(k)),
                MapType::Other(m) => {
                    assert_eq!(m, n);
                    assert_eq!(MapKind::from_kernel(n), None);
                }
            }
        }
        assert_eq!(MapType::from_raw(27), MapType::Kind(MapKind::RingBuf));
        assert_eq!(MapType::from_raw(9), MapType::Kind(MapKind::LruHash));
        assert_eq!(MapType::from_raw(31), MapType::Other(31));
    }
}
