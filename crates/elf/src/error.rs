//! Load errors: each names the section, symbol, map or relocation at fault.

use bpfx_bytecode::DecodeError;
use thiserror::Error;

/// Why an object does not load.
#[derive(Debug, Error)]
pub enum ElfError {
    /// The bytes are not an ELF file of the kind clang emits for eBPF.
    #[error("not an eBPF ELF object: {0}")]
    NotElf(&'static str),
    /// An ELF file for another machine.
    #[error("not an eBPF object: e_machine is {0}, expected 247 (EM_BPF) or 0 (EM_NONE)")]
    NotBpf(u16),
    /// An ELF file that is not relocatable (`ET_REL`), for example a linked executable.
    #[error("not a relocatable object: e_type is {0}, expected 1 (ET_REL)")]
    NotRelocatable(u16),
    /// The ELF structure itself (headers, section table, symbol table) is inconsistent.
    #[error("malformed ELF: {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: String,
        /// The reader's diagnosis.
        reason: String,
    },
    /// A section whose contents cannot be used.
    #[error("section {section:?}: {kind}")]
    Section {
        /// The section's name.
        section: String,
        /// What is wrong.
        kind: SectionErrorKind,
    },
    /// A function symbol that does not describe code.
    #[error("section {section:?}: function {symbol:?}: {kind}")]
    Function {
        /// The section the symbol is defined in.
        section: String,
        /// The symbol's name.
        symbol: String,
        /// What is wrong.
        kind: FunctionErrorKind,
    },
    /// A relocation of a code section that cannot be applied.
    #[error("section {section:?}: relocation at offset {offset:#x} {kind}")]
    Relocation {
        /// The code section being relocated.
        section: String,
        /// The relocation's byte offset in that section.
        offset: u64,
        /// What is wrong.
        kind: RelocErrorKind,
    },
    /// A `call` or function-address `lddw` whose target is not code.
    #[error("section {section:?}: instruction at offset {offset:#x}: {kind}")]
    Code {
        /// The code section holding the instruction.
        section: String,
        /// The instruction's byte offset in that section.
        offset: u64,
        /// What is wrong.
        kind: CodeErrorKind,
    },
    /// A map definition that cannot be read.
    #[error("section {section:?}: map {map:?}: {kind}")]
    Map {
        /// `.maps` or `maps`.
        section: String,
        /// The map's name.
        map: String,
        /// What is wrong.
        kind: MapErrorKind,
    },
    /// An extern symbol that cannot be described.
    #[error("extern {name:?}: {kind}")]
    Extern {
        /// The symbol's name.
        name: String,
        /// What is wrong.
        kind: ExternErrorKind,
    },
    /// The `.BTF` section does not parse.
    #[error("section \".BTF\": {0}")]
    Btf(#[from] BtfError),
    /// A linked program that does not decode.
    #[error("section {section:?}: program {program:?}: {source}")]
    Decode {
        /// The program's section.
        section: String,
        /// The program's function symbol.
        program: String,
        /// The decoder's diagnosis, with the pc in the linked program.
        #[source]
        source: DecodeError,
    },
    /// An object whose programs, each linked with the subprograms it calls, take more than
    /// [`crate::MAX_LINKED_SLOTS`] instruction slots together.
    #[error(
        "program {program:?}: the object's programs, each with its subprograms, take more than \
         {limit} instruction slots together"
    )]
    TooMuchCode {
        /// The program whose linking passed the bound.
        program: String,
        /// [`crate::MAX_LINKED_SLOTS`].
        limit: usize,
    },
}

/// What is wrong with a section.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SectionErrorKind {
    /// Code whose size is not a multiple of the 8-byte slot.
    #[error("code size {0} is not a multiple of 8")]
    CodeSize(u64),
    /// A `version` section that is not a single `u32`.
    #[error("version section of {0} bytes, expected 4")]
    VersionSize(u64),
    /// `.maps` is present but `.BTF`, which describes its maps, is not.
    #[error("BTF-defined maps need the .BTF section (compile with -g)")]
    MissingBtf,
    /// `.BTF` has no `DATASEC` describing `.maps`.
    #[error(".BTF has no DATASEC describing this section")]
    MissingDatasec,
    /// Legacy `maps`: the section size is not a whole number of definitions.
    #[error("{size} bytes do not divide into {maps} map definitions")]
    MapDefSize {
        /// Section size in bytes.
        size: u64,
        /// Number of map symbols.
        maps: usize,
    },
    /// A global data section larger than a map value may be.
    #[error("{size} bytes of global data exceed the limit of {limit} bytes")]
    DataTooLarge {
        /// Section size in bytes.
        size: u64,
        /// [`crate::MAX_DATA_SIZE`].
        limit: u64,
    },
    /// A relocation section of type `SHT_RELA` against code (clang emits `SHT_REL`).
    #[error("RELA relocations are not supported for code")]
    Rela,
}

/// What is wrong with a function symbol.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FunctionErrorKind {
    /// The symbol's byte range is not whole slots inside its section.
    #[error(
        "range {start:#x}..{end:#x} is not whole 8-byte slots inside the section of {size} bytes"
    )]
    Range {
        /// Start offset in bytes.
        start: u64,
        /// End offset in bytes.
        end: u64,
        /// Section size in bytes.
        size: u64,
    },
}

/// What is wrong with a relocation.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RelocErrorKind {
    /// The symbol index is past the symbol table.
    #[error("against symbol #{0}, which does not exist")]
    UnknownSymbol(u32),
    /// The symbol is not defined in this object and is no extern the loader can name (an
    /// unnamed undefined symbol, or one of an unusual type); named externs are recorded
    /// instead (see [`crate::ExternKind`]).
    #[error("against undefined symbol {0:?}, which is not an extern variable or function")]
    Extern(String),
    /// A relocation type clang does not emit for code.
    #[error("against {symbol:?} has type {r_type}, expected R_BPF_64_64 (1) or R_BPF_64_32 (10)")]
    Type {
        /// The symbol's name.
        symbol: String,
        /// The ELF `r_type`.
        r_type: u32,
    },
    /// The offset is past the section's end or not on a slot boundary.
    #[error("against {0:?} is not at the start of an instruction")]
    Misplaced(String),
    /// The relocated instruction is neither `lddw` nor `call`.
    #[error(
        "against {symbol:?} is on an instruction with opcode {code:#04x}, neither lddw nor call"
    )]
    NotLddwOrCall {
        /// The symbol's name.
        symbol: String,
        /// The instruction's opcode byte.
        code: u8,
    },
    /// A local `call` relocated against a symbol outside code.
    #[error("against {symbol:?} in section {target:?}: a call must target code")]
    CallToData {
        /// The symbol's name.
        symbol: String,
        /// The symbol's section.
        target: String,
    },
    /// `lddw` against a maps section where no map starts at that offset.
    #[error("against {symbol:?}: no map starts at offset {offset} of section {target:?}")]
    NoMap {
        /// The symbol's name.
        symbol: String,
        /// The maps section.
        target: String,
        /// Byte offset in that section.
        offset: i64,
    },
    /// `lddw` of an address outside a global data section.
    #[error(
        "against {symbol:?}: offset {offset} is outside the {size} bytes of section {target:?}"
    )]
    DataOffset {
        /// The symbol's name.
        symbol: String,
        /// The data section.
        target: String,
        /// Byte offset in that section.
        offset: i64,
        /// The section size in bytes.
        size: u64,
    },
    /// A symbol in a section that is neither code, maps nor global data.
    #[error(
        "against {symbol:?} in section {target:?}, which holds neither code, maps nor global data"
    )]
    BadTarget {
        /// The symbol's name.
        symbol: String,
        /// The symbol's section.
        target: String,
    },
    /// The symbol has no section (absolute or common).
    #[error("against {0:?}, which has no section")]
    NoSection(String),
    /// A relocated `lddw` whose second slot carries a non-zero `imm`: the relocation gives the
    /// whole value (a map, a data address or a function), so those upper 32 bits would be
    /// silently dropped; the raw decoder rejects the same field.
    #[error("against {symbol:?} is on an lddw whose second slot has imm {imm:#x}, not 0")]
    LddwHighImm {
        /// The symbol's name.
        symbol: String,
        /// The second slot's `imm`.
        imm: i32,
    },
}

/// What is wrong with a code reference.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CodeErrorKind {
    /// The target of a call or function address is outside every function of its section.
    #[error("target offset {offset} of section {target:?} is not inside any function")]
    NoFunction {
        /// The target's section.
        target: String,
        /// Byte offset of the target in that section (may be negative when malformed).
        offset: i64,
    },
    /// `lddw` is the last slot of its function.
    #[error("lddw is cut off by the end of its function")]
    TruncatedLddw,
}

/// What is wrong with a map definition.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MapErrorKind {
    /// The `.maps` variable's type is not a struct.
    #[error("BTF type #{0} is not a struct")]
    NotStruct(u32),
    /// A member whose value is encoded as an array length is not a pointer to an array.
    #[error("member {0:?} is not a pointer to an array")]
    NotArrayPointer(String),
    /// `key`/`value` is not a pointer.
    #[error("member {0:?} is not a pointer")]
    NotPointer(String),
    /// A member libbpf does not define.
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    /// `key` and `key_size` (or `value` and `value_size`) disagree.
    #[error("{what} given twice with different sizes: {a} and {b}")]
    Conflict {
        /// `key` or `value`.
        what: &'static str,
        /// One size.
        a: u32,
        /// The other size.
        b: u32,
    },
    /// A value does not fit the field's 32 bits.
    #[error("member {member:?}: {value} does not fit in 32 bits")]
    TooLarge {
        /// The member.
        member: String,
        /// Its value.
        value: u64,
    },
    /// No `type` member.
    #[error("no map type given")]
    NoType,
    /// The definition lies outside the section.
    #[error("definition at offset {offset} of {size} bytes lies outside the section")]
    Range {
        /// Offset in bytes.
        offset: u64,
        /// Definition size in bytes.
        size: u64,
    },
    /// A legacy definition larger than iproute2's `struct bpf_elf_map` whose extra bytes
    /// are not zero.
    #[error("definition has non-zero bytes past the 36 of struct bpf_elf_map")]
    UnknownFields,
    /// A `values` member libbpf would refuse.
    #[error("member \"values\": {0}")]
    Values(&'static str),
    /// An iproute2 map of maps whose `inner_id` names no map.
    #[error("inner_id {0} is the id of no map of the section")]
    NoInnerMap(u32),
    /// An iproute2 map of maps whose `inner_id` names a map of maps (the kernel takes no
    /// map of maps as an inner map).
    #[error("inner_id {0} is the id of a map of maps, which cannot be an inner map")]
    NestedInnerMap(u32),
    /// An iproute2 section whose `inner_id`/`inner_idx` links put more than
    /// `MAX_INNER_LINKS` maps into maps of maps.
    #[error("its maps put more than {0} maps into maps of maps")]
    TooManyInnerLinks(usize),
    /// A `values` initialiser whose entry cannot be used.
    #[error("values[{slot}] = {target:?}: {reason}")]
    Init {
        /// The slot (key).
        slot: u32,
        /// The symbol the relocation names.
        target: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A BTF lookup failed while reading the definition.
    #[error("{0}")]
    Btf(BtfError),
}

/// What is wrong with an extern symbol.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ExternErrorKind {
    /// A `__kconfig` extern whose type libbpf does not accept.
    #[error("type of __kconfig extern is not bool, tristate, char, an integer or a char array")]
    KconfigType,
    /// A function declared in `.kconfig`.
    #[error("a function cannot be a __kconfig extern")]
    KconfigFunc,
    /// An extern declared in a section other than `.kconfig` and `.ksyms`.
    #[error("declared in section {0:?}, neither .kconfig nor .ksyms")]
    Section(String),
    /// A BTF lookup failed while reading the extern's type.
    #[error("{0}")]
    Btf(BtfError),
}

/// Why `.BTF` does not parse, or a type cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BtfError {
    /// Fewer bytes than the header or a region it names.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Not the little-endian BTF magic 0xeb9f.
    #[error("bad magic {0:#06x}")]
    Magic(u16),
    /// An unknown BTF version.
    #[error("unsupported version {0}")]
    Version(u8),
    /// A type of unknown kind.
    #[error("type #{id}: unknown kind {kind}")]
    Kind {
        /// The type id.
        id: u32,
        /// The kind number.
        kind: u32,
    },
    /// A string offset outside the string section.
    #[error("string offset {0} is outside the string section")]
    String(u32),
    /// A type id past the last type.
    #[error("type id {0} does not exist")]
    TypeId(u32),
    /// A type that has no size (function, forward declaration, void).
    #[error("type #{0} has no size")]
    NoSize(u32),
    /// A chain of modifiers or arrays deeper than 32 links (libbpf's `MAX_RESOLVE_DEPTH`).
    #[error("type #{0}: chain of types too deep")]
    TooDeep(u32),
    /// A size that overflows 32 bits.
    #[error("type #{0}: size overflows")]
    Overflow(u32),
    /// A type whose members, nested, take more than 65,536 steps to walk (`MAX_WALK`: a few
    /// records of structs with several members of the next one nest exponentially many).
    #[error("type #{0}: nests too many members (more than 65536 to walk)")]
    TooLarge(u32),
}
