//! The shared program loader: one function that turns a file into a validated [`Program`],
//! whatever its format, for every subcommand that takes a program.
//!
//! - ELF objects, recognized by their `\x7fELF` magic whatever their name: the code of one
//!   section, chosen with `--section NAME` when the object has several executable sections.
//!   Only plain sections load: one with relocations is refused, since loading does not apply
//!   them yet (maps, calls across sections and global data need them).
//! - `.asm` and `.s` files: assembler text.
//! - anything else: raw little-endian bytecode, 8 bytes per slot.

use crate::error::CliError;
use bpfx_bytecode::{INSN_SIZE, Insn, Op, Program, assemble, decode_one};
use object::{Architecture, Object, ObjectSection, SectionIndex, SectionKind};
use std::path::Path;

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Loads and validates the program in `path`; `section` picks the section of an ELF object.
pub(crate) fn load_program(path: &Path, section: Option<&str>) -> Result<Program, CliError> {
    let bytes = read(path)?;
    if bytes.starts_with(ELF_MAGIC) {
        return load_elf(path, &bytes, section);
    }
    if section.is_some() {
        return Err(CliError::SectionNotElf {
            path: path.to_path_buf(),
        });
    }
    if is_asm(path) {
        assemble_text(path, bytes)
    } else {
        decode(path, &bytes)
    }
}

/// Assembles the text in `path`, whatever its extension, into a validated program.
pub(crate) fn assemble_file(path: &Path) -> Result<Program, CliError> {
    assemble_text(path, read(path)?)
}

fn is_asm(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("asm") || e.eq_ignore_ascii_case("s"))
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn assemble_text(path: &Path, bytes: Vec<u8>) -> Result<Program, CliError> {
    let text = String::from_utf8(bytes).map_err(|_| CliError::NotText {
        path: path.to_path_buf(),
    })?;
    let slots = assemble(&text).map_err(|source| CliError::Asm {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes: Vec<u8> = slots.iter().flat_map(|i| i.to_bytes()).collect();
    decode(path, &bytes)
}

/// Decodes bytecode; on error, recovers the instruction at the faulty pc when it decodes by
/// itself, so the message can show it in assembly rather than as raw fields.
fn decode(path: &Path, bytes: &[u8]) -> Result<Program, CliError> {
    Program::from_bytes(bytes).map_err(|source| {
        let op = op_at(bytes, source.pc as usize);
        CliError::Decode {
            path: path.to_path_buf(),
            source,
            op,
        }
    })
}

fn op_at(bytes: &[u8], pc: usize) -> Option<Op> {
    let start = pc.checked_mul(INSN_SIZE)?;
    let slots: Vec<Insn> = bytes
        .get(start..)?
        .chunks_exact(INSN_SIZE)
        .take(2)
        .filter_map(|c| c.try_into().ok().map(Insn::from_bytes))
        .collect();
    decode_one(&slots).ok()
}

fn load_elf(path: &Path, bytes: &[u8], section: Option<&str>) -> Result<Program, CliError> {
    let p = || path.to_path_buf();
    let file = object::File::parse(bytes).map_err(|source| CliError::Elf { path: p(), source })?;
    if file.architecture() != Architecture::Bpf {
        return Err(CliError::NotBpf {
            path: p(),
            arch: format!("{:?}", file.architecture()),
        });
    }
    if !file.is_little_endian() {
        return Err(CliError::BigEndian { path: p() });
    }
    // Programs live in executable sections; clang leaves an empty `.text` when every function
    // has its own section, so empty ones do not count.
    let programs: Vec<(SectionIndex, String)> = file
        .sections()
        .filter(|s| s.kind() == SectionKind::Text && s.size() > 0)
        .map(|s| (s.index(), s.name().unwrap_or("<unnamed>").to_string()))
        .collect();
    let names = || programs.iter().map(|(_, n)| n.clone()).collect();
    let index = match section {
        Some(name) => file
            .sections()
            .find(|s| s.name().is_ok_and(|n| n == name))
            .map(|s| s.index())
            .ok_or_else(|| CliError::NoSuchSection {
                path: p(),
                name: name.to_string(),
                sections: names(),
            })?,
        None => match programs.as_slice() {
            [(only, _)] => *only,
            [] => return Err(CliError::NoProgram { path: p() }),
            _ => {
                return Err(CliError::AmbiguousSection {
                    path: p(),
                    sections: names(),
                });
            }
        },
    };
    let chosen = file
        .section_by_index(index)
        .map_err(|source| CliError::Elf { path: p(), source })?;
    let name = chosen.name().unwrap_or("<unnamed>").to_string();
    if chosen.relocations().next().is_some() {
        return Err(CliError::Relocations { path: p(), name });
    }
    let code = chosen
        .data()
        .map_err(|source| CliError::Elf { path: p(), source })?;
    decode(path, code)
}
