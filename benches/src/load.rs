//! Bytecode out of the committed objects: the `bench` section holding the entry function, then
//! `.text` with the functions it calls, with the call relocations resolved.
//!
//! This is the minimum the workloads need (local calls, nothing else), done here because the
//! workspace's ELF loader does not exist yet; any other relocation (maps, global data) is
//! refused.

use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};

/// The section every workload's entry lives in (`programs/bench.h`).
pub const ENTRY_SECTION: &str = "bench";

/// `R_BPF_64_32`: the relocation clang emits on a `call` to a local function.
const R_BPF_64_32: u32 = 10;

const INSN: usize = 8;

/// Why a workload's object could not be turned into bytecode.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The object did not parse.
    #[error("not a readable ELF object: {0}")]
    Object(#[from] object::Error),
    /// A section the workload needs is missing.
    #[error("no section {0:?}")]
    MissingSection(&'static str),
    /// A relocation other than a call to a function in `.text`.
    #[error("unsupported relocation (type {r_type}) at byte {offset} of {section}")]
    Relocation {
        /// Section holding the relocated instruction.
        section: &'static str,
        /// Byte offset of the instruction.
        offset: u64,
        /// ELF relocation type.
        r_type: u32,
    },
    /// A resolved call lands outside the program.
    #[error("call at insn #{pc} lands outside the program")]
    CallTarget {
        /// The call's slot in the combined program.
        pc: usize,
    },
    /// The bytecode did not decode.
    #[error("{0}")]
    Decode(bpfx_bytecode::DecodeError),
    /// rbpf refused the program.
    #[error("rbpf: {0}")]
    Rbpf(String),
}

/// The workload's bytecode from its object.
pub fn bytecode(object: &[u8]) -> Result<Vec<u8>, LoadError> {
    let file = object::File::parse(object)?;
    let entry = file
        .section_by_name(ENTRY_SECTION)
        .ok_or(LoadError::MissingSection(ENTRY_SECTION))?;
    let mut code = entry.data()?.to_vec();
    let mut relocs = Vec::new();
    for (offset, reloc) in entry.relocations() {
        relocs.push((ENTRY_SECTION, 0, offset, reloc));
    }
    // `.text` is appended only when something calls into it: the verifier rejects
    // unreachable code.
    let text_base = code.len() / INSN;
    let mut text_index = None;
    if !relocs.is_empty() {
        let text = file
            .section_by_name(".text")
            .ok_or(LoadError::MissingSection(".text"))?;
        text_index = Some(text.index());
        code.extend_from_slice(text.data()?);
        for (offset, reloc) in text.relocations() {
            relocs.push((".text", text_base, offset, reloc));
        }
    }
    let slots = code.len() / INSN;
    for (section, base, offset, reloc) in relocs {
        let bad = LoadError::Relocation {
            section,
            offset,
            r_type: match reloc.flags() {
                RelocationFlags::Elf { r_type } => r_type.0,
                _ => 0,
            },
        };
        let (RelocationFlags::Elf { r_type }, RelocationTarget::Symbol(sym)) =
            (reloc.flags(), reloc.target())
        else {
            return Err(bad);
        };
        if r_type.0 != R_BPF_64_32 {
            return Err(bad);
        }
        let sym = file.symbol_by_index(sym)?;
        if sym.section_index().is_none() || sym.section_index() != text_index {
            return Err(bad);
        }
        let pc = base + (offset as usize) / INSN;
        let at = pc * INSN;
        let Some(&[0x85, _, _, _, a, b, c, d]) = code.get(at..at + INSN) else {
            return Err(bad);
        };
        // libbpf's rule: the callee is slot `sym_value / 8 + imm + 1` of `.text`.
        let imm = i32::from_le_bytes([a, b, c, d]);
        let target = text_base as i64 + (sym.address() / INSN as u64) as i64 + i64::from(imm) + 1;
        if target < 0 || target as usize >= slots {
            return Err(LoadError::CallTarget { pc });
        }
        let rel =
            i32::try_from(target - (pc as i64 + 1)).map_err(|_| LoadError::CallTarget { pc })?;
        code[at + 4..at + 8].copy_from_slice(&rel.to_le_bytes());
    }
    Ok(code)
}
