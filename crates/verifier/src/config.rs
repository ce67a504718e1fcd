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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContextKind {
    /// Plain memory (the uBPF and conformance convention): r1 = pointer to the input memory
    /// (a scalar 0 when [`Config::mem_size`] is `Some(0)`), r2 = its length.
    #[default]
    Memory,
    /// r1 points to a context struct in the input memory whose 8-byte fields at `data` and
    /// `data_end` hold the bounds of a packet; loading them yields packet pointers.
    Packet {
        /// Byte offset of the `data` field.
        data: u16,
        /// Byte offset of the `data_end` field.
        data_end: u16,
    },
}

/// How a map is named by the `lddw` pseudo forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapRef {
    /// `map_fd(fd)` / `map_value(fd, off)`.
    Fd(i32),
    /// `map_idx(idx)` / `map_idx_value(idx, off)`.
    Idx(i32),
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
}

impl MapDef {
    /// A writable map with these key and value sizes.
    pub const fn new(key_size: u32, value_size: u32) -> MapDef {
        MapDef {
            key_size,
            value_size,
            read_only: false,
        }
    }

    /// The same shape, read-only for programs when `read_only`.
    pub const fn with_read_only(self, read_only: bool) -> MapDef {
        MapDef { read_only, ..self }
    }
}

/// The maps a program may name, by fd or index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapTable {
    maps: BTreeMap<MapRef, MapDef>,
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
    /// A pointer to the stack or the input memory; the helper bounds its own accesses.
    PtrToStackOrMem,
    /// A map handle (from `lddw map_fd` / `map_idx`).
    MapHandle,
    /// A pointer to `key_size` initialised bytes, for the map passed as a [`ArgKind::MapHandle`].
    MapKey,
    /// A pointer to `value_size` initialised bytes, for the map passed as a
    /// [`ArgKind::MapHandle`].
    MapValue,
    /// A pointer to `value_size` bytes the helper writes, which need not be initialised before
    /// (the kernel's `ARG_PTR_TO_MAP_VALUE | MEM_UNINIT`, as `map_pop_elem` takes): on the
    /// stack they are initialised after the call.
    MapValueOut,
}

/// What a helper returns in r0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetKind {
    /// A scalar.
    Scalar,
    /// A pointer to a value of the map passed as the [`ArgKind::MapHandle`] argument, or null.
    MapValueOrNull,
    /// Nothing: r0 is not initialised afterwards (in `Strict` mode).
    Void,
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
}

impl HelperSig {
    /// A signature.
    pub fn new(name: impl Into<String>, args: Vec<ArgKind>, ret: RetKind) -> HelperSig {
        HelperSig {
            name: name.into(),
            args,
            ret,
        }
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
    /// Instructions the analysis may process.
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
