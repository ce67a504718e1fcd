//! ELF object loading: turns a relocatable eBPF object, as `clang -target bpf` emits it, into
//! linked [`Program`]s and the [`MapSpec`]s they reference — what libbpf does before it hands
//! programs and maps to the kernel.
//!
//! ```text
//! clang -target bpf ──► .o ──► bpfx-elf::parse ──► Object { programs, maps, license, version }
//!                                                     │
//!                        runtime (`bpfx`): creates the maps, binds the pseudo forms,
//!                        verifies each Program, then interprets or compiles it
//! ```
//!
//! # What is loaded
//! - **Programs.** Every global `FUNC` symbol of an executable section is a program, named by
//!   the symbol, its code the symbol's byte range: any number per section (`SEC("xdp")`,
//!   `SEC("socket")`, `SEC("classifier/foo")`, …) and per object. Functions of `.text` are
//!   only subprograms of the programs calling them, as libbpf loads them, unless every
//!   function of the object is in `.text` (an object of plain functions): then its global ones
//!   are programs. Static functions are only subprograms. A code section without any
//!   function symbol (hand-written assembly) is one program named after the section.
//! - **Linking.** A program is its entry function followed by every function it reaches
//!   through `call` (src 1) or a function-address `lddw`, transitively, each appended once, in
//!   order of first reference (libbpf's layout). Call and address immediates are rewritten to
//!   the pc-relative offsets of the linked program; function-address `lddw`s get `src = 4`.
//! - **Maps.** Legacy `maps` sections first (one symbol per map, read as iproute2's
//!   `struct bpf_elf_map`, whose first five fields are libbpf's `struct bpf_map_def`, with
//!   iproute2's pinning and map-in-map links), then BTF-defined maps of `.maps` (read from
//!   `.BTF`, which needs `-g`; `values` initialisers from the relocations of `.maps`, inner
//!   map definitions from `__array(values, …)`), then one single-entry array map per
//!   non-empty global data section (`.data*`, `.rodata*`, `.bss*`) named after the section,
//!   whose value is the section's bytes (zeroes for `.bss`), read-only for `.rodata*`, then
//!   the `.kconfig` map when there are `__kconfig` externs. `docs/runtime.md` states the rules.
//! - **Externs** ([`externs`](Object::externs)): `__kconfig` values, `__ksym` kernel symbols
//!   and symbols left undefined by static linking, each instruction referring to one recorded
//!   on its program ([`ProgramSpec::externs`]) so the runtime can refuse exactly the programs
//!   that need what it cannot define.
//! - `license` and `version`. `.BTF.ext`, DWARF and every other section are ignored, and so
//!   are relocations of sections other than code and `.maps`.
//!
//! Ignored: CO-RE relocations of `.BTF.ext` (kernel-struct layout fix-ups, meaningless outside
//! a kernel).
//!
//! # The pseudo-form contract with the runtime
//! Every `lddw` relocated against a map or global data is rewritten into one of two pseudo
//! forms whose index is a position in [`Object::maps`]:
//! - [`Imm64::MapIdx(i)`](bpfx_bytecode::Imm64::MapIdx) (src 5): the handle of map `i`, as
//!   helpers such as `bpf_map_lookup_elem` take it;
//! - [`Imm64::MapIdxValue { idx: i, off }`](bpfx_bytecode::Imm64::MapIdxValue) (src 6): the
//!   address of byte `off` of the (single) value of map `i` — how programs reach global data,
//!   `off` being the variable's offset in its section plus any constant addend, always inside
//!   the value.
//!
//! The runtime creates the maps of `Object::maps` in order and binds each pseudo form to the
//! map at that index. Besides those, only `lddw`s and `call`s of externs are changed (see
//! [`ExternKind`]).
//!
//! # Errors
//! [`parse`] never panics, whatever the bytes: every problem is an [`ElfError`] naming the
//! section, symbol, map or relocation at fault, e.g. `section ".maps": map "handlers":
//! values[2] = "helper": not a program's entry function`.
#![forbid(unsafe_code)]

mod btf;
mod error;
mod externs;
mod file;
mod kind;
mod link;
pub use link::MAX_LINKED_SLOTS;
mod maps;

pub use btf::{Field, Layout};
pub use error::{
    BtfError, CodeErrorKind, ElfError, ExternErrorKind, FunctionErrorKind, MapErrorKind,
    RelocErrorKind, SectionErrorKind,
};
pub use externs::{
    DEFAULT_KERNEL_VERSION, KCONFIG_MAP, KconfigError, KconfigValue, POISON_CALL_BASE,
    kernel_version,
};
pub use kind::{MapKind, MapType};
pub use maps::{
    BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MAX_DATA_SIZE, MAX_INNER_LINKS, RINGBUF_PAGE_SIZE,
};

use bpfx_bytecode::{Pc, Program};

/// Everything an object holds that running its programs needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Programs in section order, then by offset within their section.
    pub programs: Vec<ProgramSpec>,
    /// Maps: legacy `maps` definitions, then `.maps` (each by offset), then global data
    /// sections in section order. `Imm64::MapIdx`/`MapIdxValue` indices point into this.
    pub maps: Vec<MapSpec>,
    /// The `license` section's string, up to its first NUL.
    pub license: Option<String>,
    /// The `version` section's `u32` (the kernel version some old program types required).
    pub version: Option<u32>,
    /// The extern symbols programs reference, in symbol-table order: `__kconfig` values,
    /// `__ksym` kernel symbols, and symbols defined nowhere (left by static linking).
    /// [`ProgramSpec::externs`] indexes this.
    pub externs: Vec<Extern>,
    /// The named variables of the global data sections, by section then offset.
    pub globals: Vec<GlobalVar>,
    /// The BTF layouts of each map's key and value, by index in [`Object::maps`].
    pub map_layouts: Vec<MapLayout>,
}

/// How a map's keys and values read, from the types its BTF definition points `key` and
/// `value` at (`None` where it has none: a legacy definition, global data, `key_size` or
/// `value_size` given as a number, an object without BTF).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MapLayout {
    /// The key's layout.
    pub key: Option<Layout>,
    /// The value's layout (one CPU's, for a per-CPU map).
    pub value: Option<Layout>,
}

impl Object {
    /// The program whose function symbol is `name_or_section`, or else the first program of
    /// the section of that name.
    pub fn program(&self, name_or_section: &str) -> Option<&ProgramSpec> {
        self.programs
            .iter()
            .find(|p| p.name == name_or_section)
            .or_else(|| self.programs.iter().find(|p| p.section == name_or_section))
    }

    /// The map named `name` (a map variable's name, or a global data section's name).
    pub fn map(&self, name: &str) -> Option<&MapSpec> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// The global variable named `name`.
    pub fn global(&self, name: &str) -> Option<&GlobalVar> {
        self.globals.iter().find(|g| g.name == name)
    }

    /// The extern named `name`.
    pub fn extern_named(&self, name: &str) -> Option<&Extern> {
        self.externs.iter().find(|e| e.name == name)
    }

    /// The index in [`Object::maps`] of the `.kconfig` map, if the object has `__kconfig`
    /// externs.
    pub fn kconfig_map(&self) -> Option<usize> {
        self.maps.iter().position(|m| m.name == KCONFIG_MAP)
    }
}

/// A named variable of a global data section (`.data`, `.rodata`, `.bss` and their
/// `.name` suffixed forms): where its bytes are in the section's map value.
///
/// Found through the section's BTF `DATASEC` (each `VAR`'s name and size; its offset from the
/// ELF symbol of the same name, as libbpf takes it, since clang leaves `DATASEC` offsets for
/// the linker to fill in), or, in an object without BTF, through the section's `OBJECT`
/// symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalVar {
    /// The variable's name.
    pub name: String,
    /// The index in [`Object::maps`] of its section's map.
    pub map: usize,
    /// Byte offset in the map's value.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// How its value reads, from the object's BTF (`None` without BTF).
    pub layout: Option<Layout>,
}

/// One program: an entry function with the subprograms it calls, linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The entry function's symbol.
    pub name: String,
    /// The section it was found in (`xdp`, `socket`, `.text`, …).
    pub section: String,
    /// The linked program: the entry function at pc 0, then the functions it reaches.
    pub program: Program,
    /// Slots of the entry function alone: pcs from `insn_count` on belong to appended
    /// subprograms (`program.len()` counts all of them).
    pub insn_count: usize,
    /// Every instruction of the linked program that refers to an extern, by pc.
    pub externs: Vec<ExternUse>,
    /// The struct the entry function's first parameter points to, as the object's BTF
    /// declares the function (`xdp_md` for `int f(struct xdp_md *ctx)`, through typedefs and
    /// qualifiers): the program's context type, whatever its section is called. `None`
    /// without BTF (an object built without `-g`), or when the function's BTF has no such
    /// parameter.
    pub ctx_type_name: Option<String>,
}

/// An instruction that refers to an extern symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternUse {
    /// Its pc in the linked program.
    pub pc: Pc,
    /// The extern, an index into [`Object::externs`].
    pub index: usize,
    /// `call` (true) or `lddw` (false).
    pub call: bool,
}

/// A map: as an object defines it (`MapSpec<MapType>`, the default, whose type may be one bpfx
/// does not implement), or as the runtime creates it (`MapSpec<MapKind>`, which `bpfx`
/// names `bpfx::MapSpec`; [`MapSpec::implemented`] is the one conversion from the first to
/// the second).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec<K = MapType> {
    /// The map variable's symbol, or the section name for global data (`.data`, `.rodata`,
    /// `.rodata.str1.1`, `.bss`, …).
    pub name: String,
    /// The map type: a [`MapType`] as declared, or a [`MapKind`] bpfx implements.
    pub kind: K,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries (for a ring buffer: its size in bytes; a BTF-defined one's
    /// rounded up as libbpf rounds it, to a power-of-two number of [`RINGBUF_PAGE_SIZE`]
    /// pages).
    pub max_entries: u32,
    /// `BPF_F_*` map flags as written in the definition; global data maps carry
    /// [`BPF_F_MMAPABLE`], plus [`BPF_F_RDONLY_PROG`] for `.rodata*`, as libbpf sets them.
    /// Kept for display: the runtime honours `read_only` instead (and `BPF_F_INNER_MAP` of a
    /// map of maps' template).
    pub flags: u32,
    /// For global data: the initial value of the single entry (the section's bytes); for an
    /// array the runtime creates, its memory's initial contents.
    pub initial_data: Option<Vec<u8>>,
    /// The program may only read the map (`.rodata*`, or [`BPF_F_RDONLY_PROG`] in the flags).
    pub read_only: bool,
    /// The pinning the definition asks for: libbpf's `LIBBPF_PIN_BY_NAME` (1), iproute2's
    /// `PIN_OBJECT_NS` (1) or `PIN_GLOBAL_NS` (2), 0 for none, or another loader's value
    /// (cilium's `CILIUM_PIN_REPLACE`, 16, in a BTF map). Reported only: bpfx has no BPF file
    /// system to pin in.
    pub pinning: u32,
    /// `numa_node` of a BTF definition (0 when absent); reported only.
    pub numa_node: u32,
    /// `map_extra` of a BTF definition (0 when absent): the kernel's per-type extra field
    /// (`bpf_attr.map_extra`). A bloom filter takes its number of hash functions from the low 4
    /// bits (0: the default, 5); the kernel refuses any other bit there, and any nonzero value
    /// on the types that have no use for it.
    pub map_extra: u64,
    /// For a map of maps: the definition every inner map must match (the kernel's inner map
    /// template; the verifier types the inner maps' lookups by it; libbpf names it
    /// `<outer>.inner`).
    pub inner: Option<Box<MapSpec<K>>>,
    /// Initial slots of a program array or map of maps, by key: from the `values`
    /// initialiser of a BTF definition, or iproute2's `inner_idx` and `<id>/<key>` program
    /// sections. Object loading fills them; the runtime's `Map` constructors ignore them.
    pub init: Vec<(u32, MapInit)>,
    /// iproute2's `id` of a legacy `struct bpf_elf_map` (0 when absent): `inner_id` refers
    /// to it.
    pub legacy_id: u32,
    /// The byte offset of the `struct bpf_timer` member of the value type, when a BTF
    /// definition's `value` is a struct with one (a member of the struct itself or, at any
    /// depth, of a struct or union member of it, as Linux 6.10 and later find it; arrays are
    /// not searched): the only place `bpf_timer_*` helpers accept a timer in this map's
    /// values, as the kernel's verifier finds it in the value's BTF.
    pub timer_off: Option<u32>,
}

impl<K> MapSpec<K> {
    /// A spec with no flags, no initial data, writable, no inner template, no initial slots.
    pub fn new(
        name: impl Into<String>,
        kind: K,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapSpec<K> {
        MapSpec {
            name: name.into(),
            kind,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            initial_data: None,
            read_only: false,
            pinning: 0,
            numa_node: 0,
            map_extra: 0,
            inner: None,
            init: Vec::new(),
            legacy_id: 0,
            timer_off: None,
        }
    }
}

impl MapSpec<MapType> {
    /// The spec with its type, and its inner template's (recursively), narrowed to the
    /// [`MapKind`] bpfx implements; every other field as it is. The error is the first type
    /// bpfx does not implement, and how deep in inner templates it is.
    pub fn implemented(self) -> Result<MapSpec<MapKind>, Unimplemented> {
        // Taken apart whole, so that a field added to `MapSpec` cannot be left behind here.
        let MapSpec {
            name,
            kind,
            key_size,
            value_size,
            max_entries,
            flags,
            initial_data,
            read_only,
            pinning,
            numa_node,
            map_extra,
            inner,
            init,
            legacy_id,
            timer_off,
        } = self;
        let kind = kind.kind().ok_or(Unimplemented {
            map_type: kind.raw(),
            depth: 0,
        })?;
        let inner = match inner {
            Some(i) => Some(Box::new(i.implemented().map_err(|e| Unimplemented {
                depth: e.depth + 1,
                ..e
            })?)),
            None => None,
        };
        Ok(MapSpec {
            name,
            kind,
            key_size,
            value_size,
            max_entries,
            flags,
            initial_data,
            read_only,
            pinning,
            numa_node,
            map_extra,
            inner,
            init,
            legacy_id,
            timer_off,
        })
    }
}

/// A map type bpfx does not implement, as [`MapSpec::implemented`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unimplemented {
    /// The kernel's `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// 0 for the map itself, 1 for its inner template, 2 for the template's, and so on.
    pub depth: usize,
}

/// What a slot of a program array or map of maps holds initially.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapInit {
    /// The program whose entry function has this name.
    Program(String),
    /// The map at this index of [`Object::maps`].
    Map(usize),
}

/// An extern symbol: declared in the object, defined by whoever loads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extern {
    /// The symbol's name.
    pub name: String,
    /// `__weak` (`STB_WEAK`): may stay unresolved.
    pub weak: bool,
    /// What it is.
    pub kind: ExternKind,
}

/// The kinds of extern symbols, told apart by the BTF `DATASEC` that declares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternKind {
    /// A `__kconfig` value (`.kconfig`): `size` bytes at `offset` of the `.kconfig` map's
    /// value, laid out as libbpf lays them out (by alignment, then size, then name).
    Kconfig {
        /// Byte offset in the `.kconfig` value.
        offset: u32,
        /// Size in bytes.
        size: u32,
        /// The C type, which decides how a value is written.
        ty: KconfigType,
    },
    /// A `__ksym` variable (`.ksyms`): the address of a kernel variable.
    KsymVar,
    /// A `__ksym` function (`.ksyms`): a kernel function (kfunc).
    KsymFunc,
    /// A symbol defined nowhere and declared in no extern section (or an object without
    /// BTF): what static linking leaves unresolved.
    Unresolved,
}

/// The C types libbpf accepts for a `__kconfig` extern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KconfigType {
    /// `bool` (1 byte): `y` or `n`, 0 or 1.
    Bool,
    /// `enum libbpf_tristate`: `y` (1), `n` (0), `m` (2).
    Tristate,
    /// A 1-byte integer (`char`): a character `y`/`n`/`m`, or a number.
    Char,
    /// An integer of 2, 4 or 8 bytes.
    Int {
        /// Signed type.
        signed: bool,
    },
    /// A `char` array: a quoted string, NUL-terminated, truncated to fit.
    CharArray,
}

/// Loads an object: reads the ELF structure, collects the maps, then finds and links every
/// program. Never panics, whatever `bytes` hold.
pub fn parse(bytes: &[u8]) -> Result<Object, ElfError> {
    parse_within(bytes, MAX_LINKED_SLOTS)
}

/// [`parse`] with the programs' slots together bounded by `max_slots`.
fn parse_within(bytes: &[u8], max_slots: usize) -> Result<Object, ElfError> {
    let file = file::read(bytes)?;
    let btf = match file.section_named(".BTF") {
        Some((_, s)) if s.kind == file::SectionKind::Bytes => Some(btf::Btf::parse(s.data)),
        _ => None,
    };
    let (mut maps, mut index) = maps::collect(&file, btf.as_ref())?;
    let globals = maps::globals(&file, btf.as_ref(), &index);
    let (externs, ext_index) = externs::collect(&file, btf.as_ref())?;
    externs::add_kconfig_map(&externs, &mut maps, &mut index);
    let mut programs = link::programs(&file, &index, &ext_index, &externs, max_slots)?;
    if let Some(Ok(btf)) = &btf {
        for p in &mut programs {
            p.ctx_type_name = btf.ctx_struct_name(&p.name);
        }
    }
    maps::iproute2_tail_calls(&mut maps, &programs)?;
    maps::check_prog_inits(&maps, &programs)?;
    let license = file
        .section_named("license")
        .filter(|(_, s)| s.kind == file::SectionKind::Bytes)
        .map(|(_, s)| {
            let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
            String::from_utf8_lossy(&s.data[..end]).into_owned()
        });
    let version = match file.section_named("version") {
        Some((_, s)) if s.kind == file::SectionKind::Bytes => match <[u8; 4]>::try_from(s.data) {
            Ok(b) => Some(u32::from_le_bytes(b)),
            Err(_) => {
                return Err(ElfError::Section {
                    section: s.name.clone(),
                    kind: SectionErrorKind::VersionSize(s.size),
                });
            }
        },
        _ => None,
    };
    let map_layouts = maps::layouts(btf.as_ref(), &maps);
    Ok(Object {
        programs,
        maps,
        license,
        version,
        externs,
        globals,
        map_layouts,
    })
}

#[cfg(test)]
mod tests {
    use super::{MapInit, MapKind, MapSpec, MapType, Unimplemented, parse, parse_within};

    #[test]
    fn the_programs_slots_together_are_bounded() {
        // multi-v3.o's programs each take a copy of the `.text` subprograms they call, so
        // together they take more slots than their own; one slot fewer than they take
        // refuses the object, naming the program whose linking passed the bound.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects/multi-v3.o");
        let bytes = std::fs::read(path).unwrap();
        let obj = parse(&bytes).unwrap();
        let total: usize = obj.programs.iter().map(|p| p.program.len()).sum();
        let own: usize = obj.programs.iter().map(|p| p.insn_count).sum();
        assert!(total > own, "{total} slots, {own} of the programs' own");
        assert_eq!(
            parse_within(&bytes, total).unwrap().programs.len(),
            obj.programs.len()
        );
        let e = parse_within(&bytes, total - 1).unwrap_err();
        let last = &obj.programs.last().unwrap().name;
        assert_eq!(
            e.to_string(),
            format!(
                "program {last:?}: the object's programs, each with its subprograms, take more \
                 than {} instruction slots together",
                total - 1
            )
        );
    }

    #[test]
    fn implemented_narrows_the_type_and_keeps_every_other_field() {
        let inner = MapSpec {
            flags: 1 << 12,
            ..MapSpec::new("o.inner", MapType::from_raw(1), 4, 16, 8)
        };
        let declared = MapSpec {
            flags: 3,
            initial_data: Some(vec![1, 2, 3]),
            read_only: true,
            pinning: 2,
            numa_node: 5,
            map_extra: 3,
            inner: Some(Box::new(inner)),
            init: vec![(1, MapInit::Map(7)), (2, MapInit::Program("p".into()))],
            legacy_id: 9,
            ..MapSpec::new("o", MapType::from_raw(12), 4, 4, 2)
        };
        let spec = declared.clone().implemented().unwrap();
        assert_eq!(spec.kind, MapKind::ArrayOfMaps);
        let back = |s: MapSpec<MapKind>| MapSpec {
            name: s.name,
            kind: MapType::Kind(s.kind),
            key_size: s.key_size,
            value_size: s.value_size,
            max_entries: s.max_entries,
            flags: s.flags,
            initial_data: s.initial_data,
            read_only: s.read_only,
            pinning: s.pinning,
            numa_node: s.numa_node,
            map_extra: s.map_extra,
            inner: None,
            init: s.init,
            legacy_id: s.legacy_id,
            timer_off: s.timer_off,
        };
        let inner = spec.inner.clone().unwrap();
        assert_eq!(inner.kind, MapKind::Hash);
        assert_eq!(Some(Box::new(back(*inner))), declared.inner);
        assert_eq!(
            back(spec),
            MapSpec {
                inner: None,
                ..declared
            }
        );
    }

    #[test]
    fn implemented_names_the_first_type_bpfx_lacks_and_its_depth() {
        let sockarray = MapSpec::new("s", MapType::from_raw(20), 4, 4, 1);
        assert_eq!(
            sockarray.clone().implemented(),
            Err(Unimplemented {
                map_type: 20,
                depth: 0
            })
        );
        let outer = |inner: MapSpec| MapSpec {
            inner: Some(Box::new(inner)),
            ..MapSpec::new("o", MapKind::HashOfMaps.into(), 4, 4, 1)
        };
        assert_eq!(
            outer(sockarray.clone()).implemented(),
            Err(Unimplemented {
                map_type: 20,
                depth: 1
            })
        );
        assert_eq!(
            outer(outer(sockarray)).implemented(),
            Err(Unimplemented {
                map_type: 20,
                depth: 2
            })
        );
    }
}
