//! The ELF layer: reads headers, sections, symbols and relocations through the `object` crate
//! into a small owned model, so the rest of the crate never touches raw ELF structures and
//! every malformation becomes an [`ElfError`] here.

use crate::error::{ElfError, SectionErrorKind};
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, Rel as _, SectionHeader as _, Sym as _};
use object::{LittleEndian, SymbolIndex};

type Le = LittleEndian;

/// What a section holds, as far as loading is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SectionKind {
    /// `SHT_PROGBITS` with `SHF_EXECINSTR`: eBPF instructions.
    Code,
    /// `SHT_PROGBITS` without `SHF_EXECINSTR`.
    Bytes,
    /// `SHT_NOBITS`: zero-filled, no bytes in the file.
    Zeroes,
    /// Anything else (symbol and string tables, relocations, notes).
    Other,
}

#[derive(Debug)]
pub(crate) struct Section<'a> {
    pub(crate) name: String,
    pub(crate) kind: SectionKind,
    /// The file bytes (empty for `Zeroes`).
    pub(crate) data: &'a [u8],
    /// `sh_size`: equals `data.len()` except for `Zeroes`.
    pub(crate) size: u64,
    /// Relocations applying to this section, from its `SHT_REL` section.
    pub(crate) relocs: Vec<Reloc>,
}

/// One `Elf64_Rel` entry: clang emits implicit addends (the relocated field holds them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reloc {
    pub(crate) offset: u64,
    pub(crate) symbol: u32,
    pub(crate) r_type: u32,
}

/// The ELF symbol types this crate distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SymKind {
    Func,
    Object,
    Section,
    NoType,
    Other,
}

#[derive(Debug)]
pub(crate) struct Symbol {
    pub(crate) name: String,
    pub(crate) kind: SymKind,
    /// `STB_LOCAL`.
    pub(crate) local: bool,
    /// `STB_WEAK`.
    pub(crate) weak: bool,
    /// `SHN_UNDEF`.
    pub(crate) undefined: bool,
    /// The defining section, for symbols defined in a regular section.
    pub(crate) section: Option<usize>,
    /// `st_value`: the byte offset in its section.
    pub(crate) value: u64,
    /// `st_size` in bytes.
    pub(crate) size: u64,
}

/// An object file read into the model.
#[derive(Debug)]
pub(crate) struct File<'a> {
    pub(crate) sections: Vec<Section<'a>>,
    pub(crate) symbols: Vec<Symbol>,
}

impl File<'_> {
    /// The name a relocation or error shows for a symbol: its own, or its section's for the
    /// unnamed section symbols clang uses for static objects.
    pub(crate) fn symbol_label(&self, sym: &Symbol) -> String {
        if sym.name.is_empty()
            && let Some(s) = sym.section.and_then(|i| self.sections.get(i))
        {
            return s.name.clone();
        }
        sym.name.clone()
    }

    /// The section named `name`, with its index.
    pub(crate) fn section_named(&self, name: &str) -> Option<(usize, &Section<'_>)> {
        self.sections
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
    }
}

fn malformed(what: impl Into<String>) -> impl FnOnce(object::read::Error) -> ElfError {
    let what = what.into();
    move |e| ElfError::Malformed {
        what,
        reason: e.to_string(),
    }
}

/// Checks the identification and header, then reads every section and symbol.
pub(crate) fn read(bytes: &[u8]) -> Result<File<'_>, ElfError> {
    check_ident(bytes)?;
    let header = FileHeader64::<Le>::parse(bytes).map_err(malformed("file header"))?;
    let endian = header.endian().map_err(malformed("file header"))?;
    let machine = header.e_machine(endian).0;
    // Older LLVM left e_machine at EM_NONE; libbpf accepts that too (the class and byte
    // order, checked above, are what matter).
    if machine != elf::EM_BPF.0 && machine != elf::EM_NONE.0 {
        return Err(ElfError::NotBpf(machine));
    }
    let e_type = header.e_type(endian).0;
    if e_type != elf::ET_REL.0 {
        return Err(ElfError::NotRelocatable(e_type));
    }
    let table = header
        .sections(endian, bytes)
        .map_err(malformed("section headers"))?;

    let mut sections = Vec::with_capacity(table.len());
    for (index, sh) in table.iter().enumerate() {
        let name = table
            .section_name(endian, sh)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .map_err(malformed(format!("name of section #{index}")))?;
        let sh_type = sh.sh_type(endian);
        let exec = sh.sh_flags(endian).0 & elf::SHF_EXECINSTR.0 != 0;
        let kind = match sh_type {
            elf::SHT_PROGBITS if exec => SectionKind::Code,
            elf::SHT_PROGBITS => SectionKind::Bytes,
            elf::SHT_NOBITS => SectionKind::Zeroes,
            _ => SectionKind::Other,
        };
        let data = match kind {
            SectionKind::Code | SectionKind::Bytes => sh
                .data(endian, bytes)
                .map_err(malformed(format!("section {name:?}")))?,
            SectionKind::Zeroes | SectionKind::Other => &[],
        };
        sections.push(Section {
            name,
            kind,
            data,
            size: sh.sh_size(endian),
            relocs: Vec::new(),
        });
    }

    // Relocation sections name their target in sh_info. Only those of code sections and of
    // `.maps` (its `values` initialisers) matter (the others serve DWARF and BTF consumers),
    // and those are read strictly.
    for sh in table.iter() {
        let sh_type = sh.sh_type(endian);
        if sh_type != elf::SHT_REL && sh_type != elf::SHT_RELA {
            continue;
        }
        let target = sh.sh_info(endian) as usize;
        let Some(target_section) = sections.get(target) else {
            continue;
        };
        let maps = target_section.kind == SectionKind::Bytes && target_section.name == ".maps";
        if target_section.kind != SectionKind::Code && !maps {
            continue;
        }
        if sh_type == elf::SHT_RELA {
            return Err(ElfError::Section {
                section: target_section.name.clone(),
                kind: SectionErrorKind::Rela,
            });
        }
        let what = || format!("relocations of section {:?}", sections[target].name);
        let (rels, _) = sh
            .rel(endian, bytes)
            .map_err(|e| malformed(what())(e))?
            .ok_or_else(|| ElfError::Malformed {
                what: what(),
                reason: "not a REL section".into(),
            })?;
        sections[target].relocs = rels
            .iter()
            .map(|r| Reloc {
                offset: r.r_offset(endian),
                symbol: r.r_sym(endian),
                r_type: r.r_type(endian).0,
            })
            .collect();
    }

    let symtab = table
        .symbols(endian, bytes, elf::SHT_SYMTAB)
        .map_err(malformed("symbol table"))?;
    let mut symbols = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.iter().enumerate() {
        let name = symtab
            .symbol_name(endian, sym)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .map_err(malformed(format!("name of symbol #{index}")))?;
        let section = symtab
            .symbol_section(endian, sym, SymbolIndex(index))
            .map_err(malformed(format!("section of symbol {name:?}")))?
            .map(|s| s.0)
            .filter(|&s| s < sections.len());
        let kind = match sym.st_type() {
            elf::STT_FUNC => SymKind::Func,
            elf::STT_OBJECT => SymKind::Object,
            elf::STT_SECTION => SymKind::Section,
            elf::STT_NOTYPE => SymKind::NoType,
            _ => SymKind::Other,
        };
        symbols.push(Symbol {
            name,
            kind,
            local: sym.st_bind() == elf::STB_LOCAL,
            weak: sym.st_bind() == elf::STB_WEAK,
            undefined: sym.st_shndx(endian) == elf::SHN_UNDEF,
            section,
            value: sym.st_value(endian),
            size: sym.st_size(endian),
        });
    }
    Ok(File { sections, symbols })
}

/// Checks `e_ident` before handing the bytes to the reader, so the common mistakes (not ELF,
/// 32-bit, big-endian) get a message of their own.
fn check_ident(bytes: &[u8]) -> Result<(), ElfError> {
    let ident = bytes
        .get(..16)
        .ok_or(ElfError::NotElf("shorter than an ELF header"))?;
    if ident[..4] != elf::ELFMAG {
        return Err(ElfError::NotElf("no ELF magic"));
    }
    // e_ident[EI_CLASS] and e_ident[EI_DATA].
    if ident[4] != elf::ELFCLASS64.0 {
        return Err(ElfError::NotElf("not a 64-bit ELF file"));
    }
    if ident[5] != elf::ELFDATA2LSB.0 {
        return Err(ElfError::NotElf(
            "not little-endian (big-endian eBPF objects are not supported)",
        ));
    }
    Ok(())
}
