//! What the verifier is told about the world a program will run in: the mode, the input memory,
//! the helpers with their signatures, the maps and the frame limit.

use std::collections::BTreeMap;

/// How the verifier treats what it cannot prove (see `docs/verifier.md`, "Modes").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Rejects every program whose safety it cannot prove statically: the kernel's contract.
    Strict,
    /// Accepts every structurally sound program; what it cannot prove keeps a run-time guard,
    /// and values it cannot type degrade to unknown scalars.
    #[default]
    Checked,
}

impl Mode {
    /// Lower-case name, as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Checked => "checked",
        }
    }
}

/// What r1 points to at entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContextKind {
    /// Plain memory (the uBPF and conformance convention): r1 = pointer to the input memory
    /// (a scalar 0 when [`Config::mem_size`] is `Some(0)`), r2 = its length.
    #[default]
    Memory,
    /// r1 points to a context struct, described field by field (see [`ContextLayout`]). The
    /// struct is the first [`Config::mem_size`] bytes of the input memory, in bpfx's real
    /// layout; the program is written against the layout the fields describe, and every
    /// access through the context pointer is checked against a field and converted to bpfx's
    /// layout (see `docs/verifier.md`, "Contexts").
    Fields(ContextLayout),
}

/// What a context field holds, as the program sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// The address of the packet's first byte: a load gives a packet pointer. In bpfx's
    /// layout the field is a 64-bit pointer.
    PacketStart,
    /// The address just past the packet's last byte: a load gives the end pointer, which
    /// can only be compared. In bpfx's layout the field is a 64-bit pointer.
    PacketEnd,
    /// The start of the metadata just before the packet (XDP's `data_meta`; `data` itself
    /// where there is no metadata area): a load gives a metadata pointer, whose accesses are
    /// proven (Strict) below what a comparison with `data` (`meta + n <= data`) proved, as the
    /// kernel does. The embedder's contract: `data_meta <= data` at run time. In bpfx's
    /// layout the field is a 64-bit pointer.
    PacketMeta,
    /// A number, of the same width in both layouts.
    Scalar,
    /// Plain bytes (an embedder's own struct): any access wholly inside the field, of any
    /// size, reads or writes the same bytes in bpfx's layout; atomics are allowed.
    Bytes,
    /// Scratch bytes the program owns (the kernel's `__sk_buff.cb[]`): loads and, when the
    /// field is writable, stores of 1, 2, 4 or 8 bytes aligned to their size, wholly inside
    /// the field, at the same bytes in bpfx's layout; no atomics.
    Scratch,
    /// The packet's socket (`__sk_buff.sk`): a load gives a `sock_common` pointer that may be
    /// null and is no reference. In bpfx's layout the field is a 64-bit pointer to the
    /// socket's read-only struct, or 0.
    SockCommonOrNull,
    /// The message's socket (`sk_msg_md.sk`): a load gives a full `sock` pointer that is
    /// never null and is no reference (the kernel's `PTR_TO_SOCKET`, which a program may use
    /// without a null check). In bpfx's layout the field is a 64-bit pointer to the socket's
    /// read-only struct.
    Sock,
    /// The socket a lookup selected so far (`bpf_sk_lookup.sk`): a load gives a full `sock`
    /// pointer that may be null and is no reference (the kernel's `PTR_TO_SOCKET_OR_NULL`).
    /// In bpfx's layout the field is a 64-bit pointer to the socket's read-only struct, or 0.
    SockOrNull,
}

impl FieldKind {
    /// Whether the field holds a pointer (its bpfx field is then 8 bytes).
    pub const fn is_pointer(self) -> bool {
        matches!(
            self,
            FieldKind::PacketStart
                | FieldKind::PacketEnd
                | FieldKind::PacketMeta
                | FieldKind::SockCommonOrNull
                | FieldKind::Sock
                | FieldKind::SockOrNull
        )
    }
}

/// One field of a context struct: where the program sees it, what it holds, and where it
/// lives in bpfx's real layout.
///
/// An access converts to bpfx's layout as follows: a pointer field (whatever its size in the
/// program's view, e.g. the kernel's 32-bit `xdp_md.data`) becomes an 8-byte load at
/// `real_off`; any other field keeps the access's size, at `real_off` plus the access's
/// distance from `off` (bpfx lays out its own structs, so scalar fields keep their width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextField {
    /// Byte offset in the program's view of the struct.
    pub off: u16,
    /// Size in bytes in the program's view.
    pub size: u16,
    /// What it holds.
    pub kind: FieldKind,
    /// Whether programs may store to it (never for pointer fields).
    pub writable: bool,
    /// Whether a load narrower than the field is allowed (the kernel's narrow context loads):
    /// a load of 1, 2 or 4 bytes aligned to its size, inside a [`FieldKind::Scalar`] field.
    pub narrow: bool,
    /// Byte offset of the field in bpfx's real struct.
    pub real_off: u16,
}

impl ContextField {
    /// A read-only field of `kind`, at `off` (`size` bytes) in the program's view and at
    /// `real_off` in bpfx's layout; no narrow loads.
    pub const fn new(off: u16, size: u16, kind: FieldKind, real_off: u16) -> ContextField {
        ContextField {
            off,
            size,
            kind,
            writable: false,
            narrow: false,
            real_off,
        }
    }

    /// The same field, writable by programs when `writable`.
    pub const fn with_writable(self, writable: bool) -> ContextField {
        ContextField { writable, ..self }
    }

    /// The same field, with narrow loads allowed when `narrow`.
    pub const fn with_narrow(self, narrow: bool) -> ContextField {
        ContextField { narrow, ..self }
    }

    /// Whether `[off, off + size)` of the program's view lies inside the field.
    pub(crate) fn covers(&self, off: i64, size: u32) -> bool {
        let start = i64::from(self.off);
        off >= start && off + i64::from(size) <= start + i64::from(self.size)
    }
}

/// A context struct, field by field: the program's view of it and bpfx's real layout.
/// Bytes no field covers cannot be accessed. Where fields overlap, the first one listed that
/// covers an access decides it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContextLayout {
    /// The fields.
    pub fields: Vec<ContextField>,
    /// Whether legacy packet loads (`ldabs*`/`ldind*`) are allowed: they then read the packet
    /// that follows the struct in the input (from offset [`Config::mem_size`]), as the
    /// kernel's read `skb->data`. Without it they are refused, as the kernel refuses them
    /// outside socket filters and TC programs.
    pub packet_loads: bool,
    /// The signed range `[lo, hi]` the program's r0 must lie in at its outermost `exit` (the
    /// kernel's return-value rule for the program type: cgroup programs 0 or 1, …), checked
    /// in `Strict` mode; `None`, any scalar.
    pub return_range: Option<(i64, i64)>,
    /// Whether the packet is read-only for the program (the kernel's cgroup skb programs: their
    /// direct packet access reads only): a store or atomic through a packet pointer, or a
    /// helper writing memory given as one, is refused in both modes ("cannot write into
    /// packet"). Helpers that change the packet themselves are the program type's to offer.
    pub packet_read_only: bool,
}

impl ContextLayout {
    /// A layout of these fields.
    pub fn new(fields: Vec<ContextField>) -> ContextLayout {
        ContextLayout {
            fields,
            packet_loads: false,
            return_range: None,
            packet_read_only: false,
        }
    }

    /// The same layout, whose packet the program may only read when `read_only` (see
    /// [`ContextLayout::packet_read_only`]).
    pub fn with_packet_read_only(self, read_only: bool) -> ContextLayout {
        ContextLayout {
            packet_read_only: read_only,
            ..self
        }
    }

    /// The same layout, whose programs must return a value in `[lo, hi]` (see
    /// [`ContextLayout::return_range`]).
    pub fn with_return_range(self, lo: i64, hi: i64) -> ContextLayout {
        ContextLayout {
            return_range: Some((lo, hi)),
            ..self
        }
    }

    /// The same layout, with legacy packet loads allowed when `allowed` (see
    /// [`ContextLayout::packet_loads`]).
    pub fn with_packet_loads(self, allowed: bool) -> ContextLayout {
        ContextLayout {
            packet_loads: allowed,
            ..self
        }
    }

    /// An embedder's struct of `size` bytes whose 8-byte fields at `data` and `data_end` hold
    /// the packet's bounds (read-only), every other byte plain writable bytes, in the same
    /// layout for the program and for bpfx; legacy packet loads read that packet.
    pub fn packet_struct(size: u16, data: u16, data_end: u16) -> ContextLayout {
        let mut fields = vec![
            ContextField::new(data, 8, FieldKind::PacketStart, data),
            ContextField::new(data_end, 8, FieldKind::PacketEnd, data_end),
        ];
        ContextLayout::fill_bytes(&mut fields, size);
        ContextLayout::new(fields).with_packet_loads(true)
    }

    /// An embedder's struct of `size` bytes of plain writable bytes.
    pub fn bytes(size: u16) -> ContextLayout {
        let mut fields = Vec::new();
        ContextLayout::fill_bytes(&mut fields, size);
        ContextLayout::new(fields)
    }

    /// Appends writable [`FieldKind::Bytes`] fields for every gap of `[0, size)` the fields
    /// leave, each in the same place in both layouts.
    fn fill_bytes(fields: &mut Vec<ContextField>, size: u16) {
        let mut taken: Vec<(u32, u32)> = fields
            .iter()
            .map(|f| (u32::from(f.off), u32::from(f.off) + u32::from(f.size)))
            .collect();
        taken.sort_unstable();
        let mut at = 0u32;
        let mut gaps = Vec::new();
        for (start, end) in taken
            .into_iter()
            .chain([(u32::from(size), u32::from(size))])
        {
            let start = start.min(u32::from(size));
            if start > at {
                gaps.push((at, start));
            }
            at = at.max(end);
        }
        for (start, end) in gaps {
            // Both ends are at most `size`, a u16.
            let (off, len) = (start as u16, (end - start) as u16);
            fields.push(ContextField::new(off, len, FieldKind::Bytes, off).with_writable(true));
        }
    }

    /// The index of the first field covering `[off, off + size)`.
    pub(crate) fn find(&self, off: i64, size: u32) -> Option<usize> {
        self.fields.iter().position(|f| f.covers(off, size))
    }
}

/// How a map is named by the `lddw` pseudo forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapRef {
    /// `map_fd(fd)` / `map_value(fd, off)`.
    Fd(i32),
    /// `map_idx(idx)` / `map_idx_value(idx, off)`.
    Idx(i32),
    /// The inner maps of a map of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS`/`HASH_OF_MAPS`): the
    /// shape its template gives every inner map ([`MapDef::inner`] names it). No `lddw` form
    /// names one: a program gets such a handle only from `map_lookup_elem` on the outer map,
    /// after a null check. The embedder numbers them (bpfx: the outer map's index).
    Inner(i32),
}

impl std::fmt::Display for MapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapRef::Fd(n) => write!(f, "fd {n}"),
            MapRef::Idx(n) => write!(f, "idx {n}"),
            MapRef::Inner(n) => write!(f, "inner of idx {n}"),
        }
    }
}

/// The shape of a map, as far as the verifier needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapDef {
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Programs may read its values but never write them (`.rodata`, or a map frozen for
    /// programs): the engines refuse such stores at run time, so the verifier must never prove
    /// one in bounds.
    pub read_only: bool,
    /// A program array (`BPF_MAP_TYPE_PROG_ARRAY`): the only map an [`ArgKind::ProgArray`]
    /// argument accepts.
    pub prog_array: bool,
    /// A map of maps: its values are inner maps of the shape the table declares under this
    /// reference (the kernel's `inner_map_meta`). `map_lookup_elem` on it returns an inner
    /// map's handle or null (the kernel's `PTR_TO_MAP_VALUE_OR_NULL` that becomes
    /// `CONST_PTR_TO_MAP` once checked against 0), which every mode requires to be
    /// null-checked before it is passed to a helper; no other helper accepts the outer map.
    pub inner: Option<MapRef>,
    /// The most elements the map holds (0: not known): bounds how many times
    /// `for_each_map_elem` runs its callback, for the termination proof.
    pub max_entries: u32,
    /// The kernel's `BPF_MAP_TYPE_*` number (0, `BPF_MAP_TYPE_UNSPEC`: not known). When it is
    /// known, `for_each_map_elem` accepts only the types the kernel iterates
    /// ([`iterable_map_type`]), in both modes.
    pub map_type: u32,
    /// The byte offset of the `struct bpf_timer` (16 bytes) in the map's values, as the
    /// value's BTF places it (`None`: the values hold no timer): the only pointer the
    /// `bpf_timer_*` helpers accept into this map's values ([`ArgKind::Timer`]).
    pub timer_off: Option<u32>,
}

impl MapDef {
    /// A writable map with these key and value sizes.
    pub const fn new(key_size: u32, value_size: u32) -> MapDef {
        MapDef {
            key_size,
            value_size,
            read_only: false,
            prog_array: false,
            inner: None,
            max_entries: 0,
            map_type: 0,
            timer_off: None,
        }
    }

    /// The same map, whose values hold a `struct bpf_timer` at byte `timer_off` (or none).
    pub const fn with_timer_off(self, timer_off: Option<u32>) -> MapDef {
        MapDef { timer_off, ..self }
    }

    /// The same map, of the kernel's `BPF_MAP_TYPE_*` number `map_type`.
    pub const fn with_map_type(self, map_type: u32) -> MapDef {
        MapDef { map_type, ..self }
    }

    /// The same map, holding at most `max_entries` elements.
    pub const fn with_max_entries(self, max_entries: u32) -> MapDef {
        MapDef {
            max_entries,
            ..self
        }
    }

    /// The same shape, a map of maps whose inner maps are declared under `inner`.
    pub const fn with_inner(self, inner: Option<MapRef>) -> MapDef {
        MapDef { inner, ..self }
    }

    /// The same shape, read-only for programs when `read_only`.
    pub const fn with_read_only(self, read_only: bool) -> MapDef {
        MapDef { read_only, ..self }
    }

    /// The same shape, a program array when `prog_array`.
    pub const fn with_prog_array(self, prog_array: bool) -> MapDef {
        MapDef { prog_array, ..self }
    }
}

/// The kernel's name of map type `map_type` (`BPF_MAP_TYPE_*` of `linux/bpf.h`), if it has
/// one.
pub const fn map_type_name(map_type: u32) -> Option<&'static str> {
    const NAMES: [&str; 34] = [
        "BPF_MAP_TYPE_UNSPEC",
        "BPF_MAP_TYPE_HASH",
        "BPF_MAP_TYPE_ARRAY",
        "BPF_MAP_TYPE_PROG_ARRAY",
        "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
        "BPF_MAP_TYPE_PERCPU_HASH",
        "BPF_MAP_TYPE_PERCPU_ARRAY",
        "BPF_MAP_TYPE_STACK_TRACE",
        "BPF_MAP_TYPE_CGROUP_ARRAY",
        "BPF_MAP_TYPE_LRU_HASH",
        "BPF_MAP_TYPE_LRU_PERCPU_HASH",
        "BPF_MAP_TYPE_LPM_TRIE",
        "BPF_MAP_TYPE_ARRAY_OF_MAPS",
        "BPF_MAP_TYPE_HASH_OF_MAPS",
        "BPF_MAP_TYPE_DEVMAP",
        "BPF_MAP_TYPE_SOCKMAP",
        "BPF_MAP_TYPE_CPUMAP",
        "BPF_MAP_TYPE_XSKMAP",
        "BPF_MAP_TYPE_SOCKHASH",
        "BPF_MAP_TYPE_CGROUP_STORAGE",
        "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY",
        "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE",
        "BPF_MAP_TYPE_QUEUE",
        "BPF_MAP_TYPE_STACK",
        "BPF_MAP_TYPE_SK_STORAGE",
        "BPF_MAP_TYPE_DEVMAP_HASH",
        "BPF_MAP_TYPE_STRUCT_OPS",
        "BPF_MAP_TYPE_RINGBUF",
        "BPF_MAP_TYPE_INODE_STORAGE",
        "BPF_MAP_TYPE_TASK_STORAGE",
        "BPF_MAP_TYPE_BLOOM_FILTER",
        "BPF_MAP_TYPE_USER_RINGBUF",
        "BPF_MAP_TYPE_CGRP_STORAGE",
        "BPF_MAP_TYPE_ARENA",
    ];
    if (map_type as usize) < NAMES.len() {
        Some(NAMES[map_type as usize])
    } else {
        None
    }
}

/// Whether `for_each_map_elem` may iterate a map of type `map_type`: the kernel's list
/// (`linux/bpf.h`, `bpf_for_each_map_elem`): hash (1), array (2), per-CPU hash (5), per-CPU
/// array (6), LRU hash (9) and LRU per-CPU hash (10). Its verifier refuses every other type
/// ("callback function not allowed for map").
pub const fn iterable_map_type(map_type: u32) -> bool {
    matches!(map_type, 1 | 2 | 5 | 6 | 9 | 10)
}

/// Whether maps of kernel type `map_type` are reached only by the helpers whose signature
/// names that type ([`HelperSig::map_type`]): stack trace maps (7), by `get_stackid`, and
/// socket-storage maps (24), by `sk_storage_get` and `sk_storage_delete`.
pub(crate) const fn exclusive_map_type(map_type: u32) -> bool {
    map_type == 7 || map_type == 24
}

/// The maps a program may name, by fd or index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapTable {
    maps: BTreeMap<MapRef, MapDef>,
    /// The embedder's names of maps, for messages.
    names: BTreeMap<MapRef, String>,
}

impl MapTable {
    /// No maps.
    pub fn new() -> MapTable {
        MapTable::default()
    }

    /// Declares (or redeclares) a map.
    pub fn insert(&mut self, map: MapRef, def: MapDef) {
        self.maps.insert(map, def);
    }

    /// The map's shape, if declared.
    pub fn get(&self, map: MapRef) -> Option<MapDef> {
        self.maps.get(&map).copied()
    }

    /// Names a map, for the verifier's messages.
    pub fn set_name(&mut self, map: MapRef, name: impl Into<String>) {
        self.names.insert(map, name.into());
    }

    /// The name [`MapTable::set_name`] gave the map, if any.
    pub fn name(&self, map: MapRef) -> Option<&str> {
        self.names.get(&map).map(String::as_str)
    }

    /// Whether the analysis may take `a` and `b` for one another: distinct, declared, and of
    /// one definition but for `max_entries`, both known or both not (0). No rule but the
    /// `for_each_map_elem` bound reads `max_entries`, and [`MapTable::most_entries_like`] gives
    /// that one for every map of the definition.
    pub(crate) fn interchangeable(&self, a: MapRef, b: MapRef) -> bool {
        a != b
            && match (self.get(a), self.get(b)) {
                (Some(da), Some(db)) => {
                    (da.max_entries == 0) == (db.max_entries == 0)
                        && da == db.with_max_entries(da.max_entries)
                }
                _ => false,
            }
    }

    /// The most elements `map` or a map interchangeable with it holds: `None` when `map` is
    /// not declared or does not say (`max_entries` 0).
    pub(crate) fn most_entries_like(&self, map: MapRef) -> Option<u64> {
        let own = self.get(map)?.max_entries;
        let most = self
            .maps
            .iter()
            .filter(|&(&m, _)| self.interchangeable(map, m))
            .fold(own, |most, (_, d)| most.max(d.max_entries));
        (most > 0).then_some(u64::from(most))
    }
}

/// What a helper expects in one argument register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// An initialised scalar (a pointer would leak its address).
    Scalar,
    /// Any initialised value; the helper never dereferences it.
    Anything,
    /// A pointer to readable and writable memory (stack, input, map value or packet). With
    /// `size_arg = Some(i)`, argument `i` (0-based: 0 is r1) holds the size in bytes, and the
    /// whole range must be in bounds (and, on the stack, initialised). With `None` the helper
    /// bounds its own accesses through the guest-memory API and only the type is checked.
    PtrToMem {
        /// Index of the argument holding the size.
        size_arg: Option<usize>,
    },
    /// Like [`ArgKind::PtrToMem`], but the helper only reads the memory (the kernel's
    /// `ARG_PTR_TO_MEM | MEM_RDONLY`): it may point into a read-only map value, and a range of
    /// known size on the stack must be initialised.
    PtrToReadOnlyMem {
        /// Index of the argument holding the size.
        size_arg: Option<usize>,
    },
    /// [`ArgKind::PtrToReadOnlyMem`], or NULL (a known 0) when the size argument is known to be
    /// 0 (the kernel's `ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY` with
    /// `ARG_CONST_SIZE_OR_ZERO`, as `csum_diff` takes).
    PtrToReadOnlyMemOrNull {
        /// Index of the argument holding the size.
        size_arg: Option<usize>,
    },
    /// A pointer to `size` bytes the helper only reads, a size its signature fixes (the
    /// kernel's `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_RDONLY`: the IP and TCP headers the raw SYN
    /// cookie helpers read): checked as a [`ArgKind::PtrToReadOnlyMem`] whose size is `size`.
    PtrToReadOnlyFixedMem {
        /// The number of bytes read.
        size: u32,
    },
    /// A pointer to the stack or the input memory; the helper bounds its own accesses.
    PtrToStackOrMem,
    /// A map handle (from `lddw map_fd` / `map_idx`).
    MapHandle,
    /// The handle of a program array (`bpf_tail_call`'s map): every mode rejects any other
    /// value, including the handle of another kind of map (the kernel's map/helper
    /// compatibility rule).
    ProgArray,
    /// A pointer to `key_size` initialised bytes, for the map passed as a [`ArgKind::MapHandle`].
    MapKey,
    /// A pointer to `value_size` initialised bytes, for the map passed as a
    /// [`ArgKind::MapHandle`].
    MapValue,
    /// [`ArgKind::MapValue`] or NULL (a known 0): the kernel's `ARG_PTR_TO_MAP_VALUE_OR_NULL`,
    /// `bpf_sk_storage_get`'s initial value. The helper reads the value through its guest
    /// memory (the dispatch does not check a range that may be NULL).
    MapValueOrNull,
    /// A pointer to `value_size` bytes the helper writes, which need not be initialised before
    /// (the kernel's `ARG_PTR_TO_MAP_VALUE | MEM_UNINIT`, as `map_pop_elem` takes): on the
    /// stack they are initialised after the call.
    MapValueOut,
    /// A function of the program the helper calls back (`lddw rX, func`, the kernel's
    /// `ARG_PTR_TO_FUNC`): the verifier checks it as a function with the signature `kind`
    /// gives, run any number of times from the `call`, returning 0 or 1.
    Callback(CallbackKind),
    /// The context the helper hands to its callback unchanged (the kernel's
    /// `ARG_PTR_TO_STACK_OR_NULL`): in `Strict` mode a pointer to the stack or a known 0; in
    /// `Checked` mode any value (the callback's accesses through it are checked
    /// like any other).
    CallbackCtx,
    /// A NUL-terminated constant string (the kernel's `ARG_PTR_TO_CONST_STR`, `bpf_strncmp`'s
    /// `s2`): in `Strict` mode a pointer into the value of a read-only map (`.rodata`, or a
    /// map frozen for programs) at an offset bounded inside the value; in `Checked` mode any
    /// value. The verifier does not see the map's contents, so unlike the kernel's it does not
    /// look for the NUL: the helper reads the string up to it and fails the run when readable
    /// memory ends first.
    ConstStr,
    /// A pointer to 8 bytes the helper writes, which need not be initialised before (the
    /// kernel's `ARG_PTR_TO_LONG`, now `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT` of 8 bytes:
    /// `get_func_arg`'s and `get_func_ret`'s `u64 *value`): checked as a written
    /// [`ArgKind::PtrToMem`] of 8 bytes, so on the stack they are initialised after the call.
    PtrToLongOut,
    /// The ring buffer record to release (the kernel's `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`:
    /// `ringbuf_submit`'s and `ringbuf_discard`'s r1). In `Strict` mode the non-null result of
    /// a [`RetKind::MemOrNull`] helper, at offset 0, still held: the call releases it, and
    /// every copy of it is unreadable after (`docs/verifier.md`, "Ring buffer records"); in
    /// `Checked` mode any value (the helper finds the record itself, and a record never
    /// released is discarded when the run ends).
    ReleaseRecord,
    /// A socket (the kernel's `ARG_PTR_TO_SOCK_COMMON` and `ARG_PTR_TO_BTF_ID_SOCK_COMMON`):
    /// any non-null socket pointer (`sock_common`, `sock` or `tcp_sock`), still held when it
    /// is a reference, in both modes.
    Sock,
    /// The socket reference to release (`sk_release`'s r1, the kernel's `OBJ_RELEASE`): a
    /// non-null socket pointer standing for a reference held on every path, in both modes;
    /// the call releases it, and every pointer standing for it is unusable after.
    ReleaseSock,
    /// A full socket or NULL (the kernel's `ARG_PTR_TO_SOCKET_OR_NULL`: the sk_lookup
    /// `bpf_sk_assign`'s r2): a known 0, or a `sock` pointer (not a `sock_common` or
    /// `tcp_sock` one), null-checked or not, still held when it is a reference, in both modes.
    SockOrNull,
    /// A `struct bpf_spin_lock` inside a map value (the kernel's `ARG_PTR_TO_SPIN_LOCK`:
    /// `bpf_spin_lock`'s and `bpf_spin_unlock`'s r1): in `Strict` mode a non-null pointer to
    /// a map value at a known offset, 4-byte aligned, the lock's 4 bytes inside the value; in
    /// `Checked` mode any value (the helper checks that the 4 bytes lie in a map's memory
    /// when the program runs).
    /// The kernel also requires the value's BTF to place a `bpf_spin_lock` there; bpfx keeps
    /// the lock on the host side (`docs/runtime.md`, helper 93), so the word's contents do not
    /// matter to it.
    SpinLock,
    /// A `struct bpf_timer` inside a map value (the kernel's `ARG_PTR_TO_TIMER`: the
    /// `bpf_timer_*` helpers' r1): in `Strict` mode a non-null pointer to a value of a map
    /// whose values hold a timer ([`MapDef::timer_off`], from the value's BTF), at exactly
    /// the timer's offset; in `Checked` mode any value (the helper checks that the timer's 16
    /// bytes lie in a map's memory when the program runs).
    Timer,
    /// The map a timer belongs to (`bpf_timer_init`'s r2): in `Strict` mode a map handle of
    /// the map whose value the [`ArgKind::Timer`] argument points into, as the kernel
    /// requires; in `Checked` mode any map handle.
    TimerMap,
    /// The program's context (the kernel's `ARG_PTR_TO_CTX`: `bpf_setsockopt`'s socket,
    /// `bpf_override_return`'s registers): in `Strict` mode the pointer r1 held at entry (or a
    /// copy), at offset 0; in `Checked` mode any value but one the verifier knows is something
    /// else (a pointer to the stack, a map value or the packet, a map handle, the context at
    /// an offset that cannot be 0), the helper checking the rest when the program runs.
    Ctx,
    /// [`ArgKind::Ctx`] or NULL (a known 0), as `bpf_get_netns_cookie` takes it (the kernel's
    /// `ARG_PTR_TO_CTX_OR_NULL`).
    CtxOrNull,
}

/// What a callback-taking helper passes to its callback ([`ArgKind::Callback`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallbackKind {
    /// `bpf_loop(nr_loops, cb, ctx, flags)`: `long cb(u64 index, void *ctx)`, with `ctx`
    /// the helper's r3.
    Loop,
    /// `for_each_map_elem(map, cb, ctx, flags)`: `long cb(struct bpf_map *map, const void
    /// *key, void *value, void *ctx)`, with the map of r1 (an array or a hash), a pointer
    /// to a copy of the element's key (`key_size` bytes at the bottom of the callback's frame),
    /// one to its value (writable unless the map is read-only), and `ctx` the helper's r3.
    MapElem,
    /// `bpf_timer_set_callback(timer, cb)`: `int cb(struct bpf_map *map, void *key, void
    /// *value)`, with the map whose value holds the timer (r1 of the call), a pointer to the
    /// element's key and one to its value, called when the timer fires, returning 0.
    Timer,
}

/// What a helper returns in r0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetKind {
    /// A scalar.
    Scalar,
    /// A pointer to a value of the map passed as the [`ArgKind::MapHandle`] argument, or null.
    MapValueOrNull,
    /// A pointer to memory of the size in argument `size_arg` (0-based: r1 is 0), lying in
    /// the memory of the map passed as the [`ArgKind::MapHandle`] argument, or null: what
    /// `bpf_ringbuf_reserve` returns (the kernel's `RET_PTR_TO_MEM_OR_NULL` of a constant
    /// size). Strict mode requires that argument be a known constant; in Checked mode,
    /// when it is not, accesses through the result keep their run-time guards.
    MemOrNull {
        /// The argument holding the size.
        size_arg: usize,
    },
    /// A pointer to a socket of `kind`, or null (the kernel's `RET_PTR_TO_SOCKET_OR_NULL`,
    /// `RET_PTR_TO_SOCK_COMMON_OR_NULL`, `RET_PTR_TO_TCP_SOCK_OR_NULL`). With
    /// [`SockRet::Acquire`] the result is a reference every path must release with a
    /// [`ArgKind::ReleaseSock`] helper (`sk_lookup_tcp`, `skc_lookup_tcp`); with
    /// [`SockRet::Cast`] it stands for the reference of the socket in the [`ArgKind::Sock`]
    /// argument, if that one has one (`sk_fullsock`, `tcp_sock`); with [`SockRet::Plain`] it
    /// has none (`get_listener_sock`). Both modes track socket references.
    SockOrNull {
        /// The struct it points to.
        kind: SockKind,
        /// Whether it is a reference, and which.
        how: SockRet,
    },
    /// Nothing: r0 is not initialised afterwards (in `Strict` mode).
    Void,
}

/// How a [`RetKind::SockOrNull`] result relates to the references a program holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockRet {
    /// A new reference (the kernel's `acquire` helpers).
    Acquire,
    /// The argument's socket seen as another struct: its reference, if any (the kernel's
    /// pointer casts).
    Cast,
    /// No reference.
    Plain,
}

/// The struct a socket pointer points to (the kernel's `PTR_TO_SOCK_COMMON`, `PTR_TO_SOCKET`,
/// `PTR_TO_TCP_SOCK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockKind {
    /// `struct bpf_sock`, of which only the fields every socket has (`struct sock_common`).
    Common,
    /// `struct bpf_sock`, a full socket.
    Full,
    /// `struct bpf_tcp_sock`.
    Tcp,
}

impl SockKind {
    /// The kernel's name of the pointer type, for messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            SockKind::Common => "sock_common",
            SockKind::Full => "sock",
            SockKind::Tcp => "tcp_sock",
        }
    }
}

/// A helper's declared signature. Helpers are trusted to keep to it: a helper that declares an
/// argument [`ArgKind::Anything`] must not dereference it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HelperSig {
    /// Name, for messages.
    pub name: String,
    /// Arguments r1, r2, … (at most five).
    pub args: Vec<ArgKind>,
    /// The result.
    pub ret: RetKind,
    /// Whether the helper may move or resize the packet (the kernel's `changes_pkt_data`:
    /// `xdp_adjust_head`, `skb_store_bytes`, …): after a call every packet pointer the
    /// program holds, in registers and spilled on any frame's stack, is forgotten (Strict mode
    /// rejects any later use of one), and so is every proven packet range. Not part of the
    /// text form ([`crate::parse_helper`]): embedder helpers cannot move the packet.
    pub changes_packet: bool,
    /// The one map type the helper's [`ArgKind::MapHandle`] argument takes, where the kernel's
    /// map/helper compatibility rule pins it (`get_stackid`: stack trace maps); `None` for any
    /// map but the types reserved for such helpers (stack trace maps). Not part of the text
    /// form: embedder helpers take ordinary maps.
    pub map_type: Option<u32>,
    /// Map types the helper's [`ArgKind::MapHandle`] argument refuses, in every mode: the
    /// kernel's map/helper compatibility rule for a program of this type (`map_delete_elem`
    /// on a socket map from an sk_skb or sk_msg program). Not part of the text form.
    pub refused_map_types: Vec<u32>,
}

impl HelperSig {
    /// A signature (of a helper that leaves the packet where it is).
    pub fn new(name: impl Into<String>, args: Vec<ArgKind>, ret: RetKind) -> HelperSig {
        HelperSig {
            name: name.into(),
            args,
            ret,
            changes_packet: false,
            map_type: None,
            refused_map_types: Vec::new(),
        }
    }

    /// The same signature, refusing maps of type `map_type` as its map argument
    /// ([`HelperSig::refused_map_types`]).
    pub fn refusing_map_type(mut self, map_type: u32) -> HelperSig {
        if !self.refused_map_types.contains(&map_type) {
            self.refused_map_types.push(map_type);
        }
        self
    }

    /// The same signature, of a helper whose map argument must be of type `map_type`
    /// ([`HelperSig::map_type`]).
    pub fn taking_map_type(mut self, map_type: u32) -> HelperSig {
        self.map_type = Some(map_type);
        self
    }

    /// The same signature, of a helper that may move or resize the packet
    /// ([`HelperSig::changes_packet`]).
    pub fn changing_packet(mut self) -> HelperSig {
        self.changes_packet = true;
        self
    }
}

/// The helpers a program may call, by id, with their signatures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelperTable {
    sigs: BTreeMap<u32, HelperSig>,
}

impl HelperTable {
    /// No helpers.
    pub fn new() -> HelperTable {
        HelperTable::default()
    }

    /// The helpers the conformance suite expects: id 5 takes one value and returns a scalar
    /// (it echoes its argument).
    pub fn conformance() -> HelperTable {
        let mut t = HelperTable::new();
        t.insert(
            bpfx_exec::CONFORMANCE_ECHO_HELPER,
            HelperSig::new("echo", vec![ArgKind::Anything], RetKind::Scalar),
        );
        t
    }

    /// Registers (or replaces) the signature of helper `id`.
    pub fn insert(&mut self, id: u32, sig: HelperSig) {
        self.sigs.insert(id, sig);
    }

    /// The signature of helper `id`.
    pub fn get(&self, id: u32) -> Option<&HelperSig> {
        self.sigs.get(&id)
    }

    /// Every signature, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &HelperSig)> + '_ {
        self.sigs.iter().map(|(&id, sig)| (id, sig))
    }
}

/// Instructions the analysis may process before it gives up (each visit of an instruction,
/// in any context or loop iteration, counts one): the kernel's complexity limit, which a
/// 1,000,000-instruction straight-line program just fits.
pub const DEFAULT_INSN_BUDGET: u64 = 1_000_000;

/// Everything the verifier is told about the program's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Strict or checked.
    pub mode: Mode,
    /// Size in bytes of the input memory, when known at verification time. `Some(0)` means no
    /// memory (r1 is the scalar 0); `None` means unknown (r1 is an input pointer of unknown
    /// size, so `Strict` mode rejects every input access).
    pub mem_size: Option<u64>,
    /// Helper signatures by id.
    pub helpers: HelperTable,
    /// Maps the program may name.
    pub maps: MapTable,
    /// Frames allowed at once, counting the outermost.
    pub max_frames: u32,
    /// What r1 points to at entry.
    pub context: ContextKind,
    /// Instructions the analysis may process: in `Strict` mode a rejection past it; in
    /// `Checked` mode the point from which every loop head is widened to a stable state.
    pub insn_budget: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Checked,
            mem_size: None,
            helpers: HelperTable::new(),
            maps: MapTable::new(),
            max_frames: bpfx_exec::DEFAULT_MAX_FRAMES,
            context: ContextKind::Memory,
            insn_budget: DEFAULT_INSN_BUDGET,
        }
    }
}

impl Config {
    /// The configuration the conformance suite runs under: `mode`, the conformance helpers and
    /// input memory of `mem_size` bytes.
    pub fn conformance(mode: Mode, mem_size: u64) -> Config {
        Config {
            mode,
            mem_size: Some(mem_size),
            helpers: HelperTable::conformance(),
            ..Config::default()
        }
    }
}
