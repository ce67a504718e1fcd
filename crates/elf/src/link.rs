//! Programs and linking: finds the functions of every code section, then builds each program
//! as libbpf does — the entry function, then every function it reaches through calls and
//! function addresses, appended transitively — and rewrites the relocated instructions.
//!
//! Targets are resolved as libbpf resolves them:
//! - `call` (src 1) relocated against symbol `S`: slot `S.value / 8 + imm + 1` of S's section;
//!   without a relocation, `pc + imm + 1` in the caller's own section (clang resolves calls
//!   between functions of one section itself).
//! - `lddw` relocated against code: the byte `S.value + imm` (a function address, `src = 4`).
//! - `lddw` against a map definition: `Imm64::MapIdx` of the map at `S.value + imm`.
//! - `lddw` against global data: `Imm64::MapIdxValue` at offset `S.value + imm` of the value.
//! - against an extern (see [`crate::externs`]): a `__kconfig` `lddw` becomes
//!   `Imm64::MapIdxValue` of its bytes in the `.kconfig` map; any other `lddw` loads 0; a
//!   `call` becomes `call POISON_CALL_BASE + index`. Each is recorded as an [`ExternUse`].

use crate::error::{CodeErrorKind, ElfError, FunctionErrorKind, RelocErrorKind, SectionErrorKind};
use crate::externs::{ExternIndex, POISON_CALL_BASE};
use crate::file::{File, Reloc, SectionKind, SymKind};
use crate::maps::MapIndex;
use crate::{ExternKind, ExternUse, ProgramSpec};
use bpfx_bytecode::{INSN_SIZE, Insn, Pc, Program};
use std::collections::HashMap;

/// `BPF_JMP | BPF_CALL`.
const CALL: u8 = 0x85;
/// `BPF_LD | BPF_IMM | BPF_DW`.
const LDDW: u8 = 0x18;
/// `src` of a local call and of a function-address `lddw`.
const PSEUDO_CALL: u8 = 1;
const PSEUDO_FUNC: u8 = 4;
const PSEUDO_MAP_IDX: u8 = 5;
const PSEUDO_MAP_IDX_VALUE: u8 = 6;
/// ELF relocation types of clang's eBPF backend.
const R_BPF_NONE: u32 = 0;
const R_BPF_64_64: u32 = 1;
const R_BPF_64_32: u32 = 10;

/// A function: a byte range of a code section, in slots.
#[derive(Debug)]
struct Func {
    section: usize,
    name: String,
    start: usize,
    len: usize,
    /// Global functions of code sections are programs; static ones are only subprograms.
    program: bool,
}

/// A code section's slots and relocations by slot.
#[derive(Debug)]
struct Code<'r> {
    insns: Vec<Insn>,
    relocs: HashMap<usize, &'r Reloc>,
    /// Indices into `Linker::funcs`, by start.
    funcs: Vec<usize>,
}

struct Linker<'f, 'a> {
    file: &'f File<'a>,
    maps: &'f MapIndex,
    externs: &'f ExternIndex,
    kinds: &'f [crate::Extern],
    code: HashMap<usize, Code<'f>>,
    funcs: Vec<Func>,
}

/// Finds and links every program of the object, refusing it when they take more than
/// `max_slots` together ([`MAX_LINKED_SLOTS`]).
pub(crate) fn programs(
    file: &File<'_>,
    maps: &MapIndex,
    externs: &ExternIndex,
    kinds: &[crate::Extern],
    max_slots: usize,
) -> Result<Vec<ProgramSpec>, ElfError> {
    let linker = Linker::new(file, maps, externs, kinds)?;
    // libbpf's rule: the functions of `.text` are subprograms of the programs that call them,
    // never programs of their own, in an object with programs in other sections. An object
    // whose code is all in `.text` (plain functions, as bpfx and uBPF run them) keeps them.
    let in_text = |f: &Func| file.sections[f.section].name == ".text";
    let sectioned = linker.funcs.iter().any(|f| f.program && !in_text(f));
    let mut programs = Vec::new();
    let mut slots = 0usize;
    for (id, f) in linker.funcs.iter().enumerate() {
        if f.program && !(sectioned && in_text(f)) {
            let p = linker.link(id)?;
            slots += p.program.len();
            if slots > max_slots {
                return Err(ElfError::TooMuchCode {
                    program: p.name,
                    limit: max_slots,
                });
            }
            programs.push(p);
        }
    }
    Ok(programs)
}

/// The most instruction slots an object's programs may take together, each linked with the
/// subprograms it calls (16,777,216: 128 MiB of bytecode, sixteen programs of the kernel's
/// largest). Each program gets its own copy of its subprograms, as libbpf links them, so
/// without a bound `n` programs calling one large `.text` function would take `n` times the
/// object's code: a megabyte of object, gigabytes of programs.
pub const MAX_LINKED_SLOTS: usize = 1 << 24;

impl<'f, 'a> Linker<'f, 'a> {
    fn new(
        file: &'f File<'a>,
        maps: &'f MapIndex,
        externs: &'f ExternIndex,
        kinds: &'f [crate::Extern],
    ) -> Result<Self, ElfError> {
        let mut code = HashMap::new();
        let mut funcs = Vec::new();
        for (index, s) in file.sections.iter().enumerate() {
            if s.kind != SectionKind::Code || s.data.is_empty() {
                continue;
            }
            let section_err = |kind| ElfError::Section {
                section: s.name.clone(),
                kind,
            };
            if s.data.len() % INSN_SIZE != 0 {
                return Err(section_err(SectionErrorKind::CodeSize(s.size)));
            }
            let insns: Vec<Insn> = s
                .data
                .chunks_exact(INSN_SIZE)
                .map(|c| Insn::from_bytes(c.try_into().expect("chunks_exact gives 8 bytes")))
                .collect();
            let mut relocs = HashMap::new();
            for r in &s.relocs {
                if r.r_type == R_BPF_NONE {
                    continue;
                }
                if r.offset % INSN_SIZE as u64 != 0 || r.offset >= s.data.len() as u64 {
                    let symbol = file
                        .symbols
                        .get(r.symbol as usize)
                        .map_or_else(|| format!("#{}", r.symbol), |y| file.symbol_label(y));
                    return Err(ElfError::Relocation {
                        section: s.name.clone(),
                        offset: r.offset,
                        kind: RelocErrorKind::Misplaced(symbol),
                    });
                }
                relocs.insert(r.offset as usize / INSN_SIZE, r);
            }
            let first = funcs.len();
            section_funcs(file, index, insns.len(), &mut funcs)?;
            code.insert(
                index,
                Code {
                    insns,
                    relocs,
                    funcs: (first..funcs.len()).collect(),
                },
            );
        }
        Ok(Linker {
            file,
            maps,
            externs,
            kinds,
            code,
            funcs,
        })
    }

    /// Builds the program whose entry is function `entry`.
    fn link(&self, entry: usize) -> Result<ProgramSpec, ElfError> {
        let f0 = &self.funcs[entry];
        let mut out: Vec<Insn> = Vec::new();
        let mut layout: Vec<(usize, usize)> = Vec::new();
        let mut placed: HashMap<usize, usize> = HashMap::new();
        let mut uses = Vec::new();
        self.place(entry, &mut out, &mut layout, &mut placed);
        let mut next = 0;
        while let Some(&(id, base)) = layout.get(next) {
            next += 1;
            let f = &self.funcs[id];
            let code = &self.code[&f.section];
            for s in 0..f.len {
                let slot = f.start + s;
                let pc = base + s;
                let insn = code.insns[slot];
                let reloc = code.relocs.get(&slot).copied();
                let at = |kind| ElfError::Code {
                    section: self.file.sections[f.section].name.clone(),
                    offset: (slot * INSN_SIZE) as u64,
                    kind,
                };
                if let Some(r) = reloc
                    && let Some(&index) = self.externs.get(&r.symbol)
                    && matches!(insn.code, CALL | LDDW)
                {
                    if insn.code == LDDW && s + 1 >= f.len {
                        return Err(at(CodeErrorKind::TruncatedLddw));
                    }
                    self.extern_ref(f.section, r, index, pc, &mut out)?;
                    uses.push(ExternUse {
                        pc: Pc(pc as u32),
                        index,
                        call: insn.code == CALL,
                    });
                    continue;
                }
                match (insn.code, reloc) {
                    (CALL, Some(r)) => {
                        let (section, target) = self.code_target(f.section, slot, r, true)?;
                        let t = self
                            .place_target(section, target, &mut out, &mut layout, &mut placed)
                            .ok_or_else(|| at(self.no_function(section, target)))?;
                        out[pc].src = PSEUDO_CALL;
                        out[pc].imm = rel(t, pc);
                    }
                    (CALL, None) if insn.src == PSEUDO_CALL => {
                        let target = slot as i64 + i64::from(insn.imm) + 1;
                        let t = self
                            .place_target(f.section, target, &mut out, &mut layout, &mut placed)
                            .ok_or_else(|| at(self.no_function(f.section, target)))?;
                        out[pc].imm = rel(t, pc);
                    }
                    (LDDW, _) if s + 1 >= f.len && (reloc.is_some() || insn.src == PSEUDO_FUNC) => {
                        return Err(at(CodeErrorKind::TruncatedLddw));
                    }
                    (LDDW, Some(r)) => {
                        self.lddw(f.section, slot, pc, r, &mut out, &mut layout, &mut placed)?;
                    }
                    (LDDW, None) if insn.src == PSEUDO_FUNC => {
                        let target = slot as i64 + i64::from(insn.imm) + 1;
                        let t = self
                            .place_target(f.section, target, &mut out, &mut layout, &mut placed)
                            .ok_or_else(|| at(self.no_function(f.section, target)))?;
                        out[pc].imm = rel(t, pc);
                    }
                    (code, Some(r)) => {
                        return Err(self.reloc_err(
                            f.section,
                            r,
                            RelocErrorKind::NotLddwOrCall {
                                symbol: self.reloc_symbol_label(r),
                                code,
                            },
                        ));
                    }
                    (_, None) => {}
                }
            }
        }
        let section = self.file.sections[f0.section].name.clone();
        let program = Program::decode(out).map_err(|source| ElfError::Decode {
            section: section.clone(),
            program: f0.name.clone(),
            source,
        })?;
        Ok(ProgramSpec {
            name: f0.name.clone(),
            section,
            program,
            insn_count: f0.len,
            externs: uses,
            ctx_type_name: None,
        })
    }

    /// Rewrites the `call` or `lddw` at `pc` that refers to extern `index`.
    fn extern_ref(
        &self,
        section: usize,
        r: &Reloc,
        index: usize,
        pc: usize,
        out: &mut [Insn],
    ) -> Result<(), ElfError> {
        if r.r_type != R_BPF_64_64 && r.r_type != R_BPF_64_32 {
            return Err(self.reloc_err(
                section,
                r,
                RelocErrorKind::Type {
                    symbol: self.reloc_symbol_label(r),
                    r_type: r.r_type,
                },
            ));
        }
        if out[pc].code == CALL {
            out[pc].src = 0;
            out[pc].imm = POISON_CALL_BASE.saturating_add(index as i32);
            return Ok(());
        }
        match (self.kinds[index].kind, self.maps.kconfig) {
            (ExternKind::Kconfig { offset, size, .. }, Some(map)) => {
                let addend = i64::from(out[pc].imm);
                if addend < 0 || addend >= i64::from(size) {
                    return Err(self.reloc_err(
                        section,
                        r,
                        RelocErrorKind::DataOffset {
                            symbol: self.kinds[index].name.clone(),
                            target: crate::KCONFIG_MAP.into(),
                            offset: addend,
                            size: u64::from(size),
                        },
                    ));
                }
                out[pc].src = PSEUDO_MAP_IDX_VALUE;
                out[pc].imm = map as i32;
                out[pc + 1].imm = offset as i32 + addend as i32;
            }
            _ => {
                out[pc].src = 0;
                out[pc].imm = 0;
                out[pc + 1].imm = 0;
            }
        }
        Ok(())
    }

    /// Appends function `id` to the program; returns its first pc.
    fn place(
        &self,
        id: usize,
        out: &mut Vec<Insn>,
        layout: &mut Vec<(usize, usize)>,
        placed: &mut HashMap<usize, usize>,
    ) -> usize {
        if let Some(&base) = placed.get(&id) {
            return base;
        }
        let f = &self.funcs[id];
        let base = out.len();
        out.extend_from_slice(&self.code[&f.section].insns[f.start..f.start + f.len]);
        placed.insert(id, base);
        layout.push((id, base));
        base
    }

    /// Places the function holding slot `target` of `section` and returns the target's pc in
    /// the program, or `None` when no function holds that slot.
    fn place_target(
        &self,
        section: usize,
        target: i64,
        out: &mut Vec<Insn>,
        layout: &mut Vec<(usize, usize)>,
        placed: &mut HashMap<usize, usize>,
    ) -> Option<usize> {
        let target = usize::try_from(target).ok()?;
        let id = *self.code.get(&section)?.funcs.iter().find(|&&id| {
            let g = &self.funcs[id];
            g.start <= target && target < g.start + g.len
        })?;
        let base = self.place(id, out, layout, placed);
        Some(base + (target - self.funcs[id].start))
    }

    fn no_function(&self, section: usize, target: i64) -> CodeErrorKind {
        CodeErrorKind::NoFunction {
            target: self.file.sections[section].name.clone(),
            offset: target.saturating_mul(INSN_SIZE as i64),
        }
    }

    /// The (code section, slot) a relocated `call` (`is_call`) or function-address `lddw`
    /// points at.
    fn code_target(
        &self,
        section: usize,
        slot: usize,
        r: &Reloc,
        is_call: bool,
    ) -> Result<(usize, i64), ElfError> {
        let sym = self.reloc_symbol(section, r)?;
        let label = self.file.symbol_label(sym);
        let target_section = sym
            .section
            .ok_or_else(|| self.reloc_err(section, r, RelocErrorKind::NoSection(label.clone())))?;
        if self.file.sections[target_section].kind != SectionKind::Code {
            return Err(self.reloc_err(
                section,
                r,
                RelocErrorKind::CallToData {
                    symbol: label,
                    target: self.file.sections[target_section].name.clone(),
                },
            ));
        }
        let imm = i64::from(self.code[&section].insns[slot].imm);
        let value = i64::try_from(sym.value).unwrap_or(i64::MAX);
        // A call's imm counts slots minus one; a function address's imm counts bytes.
        let byte = if is_call {
            value.saturating_add(imm.saturating_add(1).saturating_mul(INSN_SIZE as i64))
        } else {
            value.saturating_add(imm)
        };
        if byte % INSN_SIZE as i64 != 0 {
            return Err(ElfError::Code {
                section: self.file.sections[section].name.clone(),
                offset: (slot * INSN_SIZE) as u64,
                kind: CodeErrorKind::NoFunction {
                    target: self.file.sections[target_section].name.clone(),
                    offset: byte,
                },
            });
        }
        Ok((target_section, byte / INSN_SIZE as i64))
    }

    /// Rewrites a relocated `lddw` at `slot` of `section`, copied to `pc`.
    #[allow(clippy::too_many_arguments)]
    fn lddw(
        &self,
        section: usize,
        slot: usize,
        pc: usize,
        r: &Reloc,
        out: &mut Vec<Insn>,
        layout: &mut Vec<(usize, usize)>,
        placed: &mut HashMap<usize, usize>,
    ) -> Result<(), ElfError> {
        let sym = self.reloc_symbol(section, r)?;
        let label = self.file.symbol_label(sym);
        // `link` checked that the second slot exists.
        let high = self.code[&section].insns.get(slot + 1).map_or(0, |i| i.imm);
        if high != 0 {
            return Err(self.reloc_err(
                section,
                r,
                RelocErrorKind::LddwHighImm {
                    symbol: label,
                    imm: high,
                },
            ));
        }
        let target_section = sym
            .section
            .ok_or_else(|| self.reloc_err(section, r, RelocErrorKind::NoSection(label.clone())))?;
        let target = &self.file.sections[target_section];
        if target.kind == SectionKind::Code {
            let (ts, t) = self.code_target(section, slot, r, false)?;
            let t = self
                .place_target(ts, t, out, layout, placed)
                .ok_or_else(|| ElfError::Code {
                    section: self.file.sections[section].name.clone(),
                    offset: (slot * INSN_SIZE) as u64,
                    kind: self.no_function(ts, t),
                })?;
            out[pc].src = PSEUDO_FUNC;
            out[pc].imm = rel(t, pc);
            out[pc + 1].imm = 0;
            return Ok(());
        }
        let offset = i64::try_from(sym.value)
            .unwrap_or(i64::MAX)
            .saturating_add(i64::from(self.code[&section].insns[slot].imm));
        if self.maps.def_sections.contains(&target_section) {
            let idx = u64::try_from(offset)
                .ok()
                .and_then(|o| self.maps.defs.get(&(target_section, o)))
                .ok_or_else(|| {
                    self.reloc_err(
                        section,
                        r,
                        RelocErrorKind::NoMap {
                            symbol: label.clone(),
                            target: target.name.clone(),
                            offset,
                        },
                    )
                })?;
            out[pc].src = PSEUDO_MAP_IDX;
            out[pc].imm = *idx as i32;
            out[pc + 1].imm = 0;
            return Ok(());
        }
        if let Some(&(idx, size)) = self.maps.data.get(&target_section) {
            // The kernel refuses a map value address at or past the value's end.
            if offset < 0 || offset as u64 >= size {
                return Err(self.reloc_err(
                    section,
                    r,
                    RelocErrorKind::DataOffset {
                        symbol: label,
                        target: target.name.clone(),
                        offset,
                        size,
                    },
                ));
            }
            out[pc].src = PSEUDO_MAP_IDX_VALUE;
            out[pc].imm = idx as i32;
            out[pc + 1].imm = offset as i32;
            return Ok(());
        }
        Err(self.reloc_err(
            section,
            r,
            RelocErrorKind::BadTarget {
                symbol: label,
                target: target.name.clone(),
            },
        ))
    }

    /// The relocation's symbol, checked to be defined here and the relocation type to be one
    /// clang emits for code.
    fn reloc_symbol(&self, section: usize, r: &Reloc) -> Result<&'f crate::file::Symbol, ElfError> {
        let sym =
            self.file.symbols.get(r.symbol as usize).ok_or_else(|| {
                self.reloc_err(section, r, RelocErrorKind::UnknownSymbol(r.symbol))
            })?;
        if r.r_type != R_BPF_64_64 && r.r_type != R_BPF_64_32 {
            return Err(self.reloc_err(
                section,
                r,
                RelocErrorKind::Type {
                    symbol: self.file.symbol_label(sym),
                    r_type: r.r_type,
                },
            ));
        }
        if sym.undefined {
            return Err(self.reloc_err(section, r, RelocErrorKind::Extern(sym.name.clone())));
        }
        Ok(sym)
    }

    fn reloc_symbol_label(&self, r: &Reloc) -> String {
        self.file
            .symbols
            .get(r.symbol as usize)
            .map_or_else(|| format!("#{}", r.symbol), |y| self.file.symbol_label(y))
    }

    fn reloc_err(&self, section: usize, r: &Reloc, kind: RelocErrorKind) -> ElfError {
        ElfError::Relocation {
            section: self.file.sections[section].name.clone(),
            offset: r.offset,
            kind,
        }
    }
}

/// The pc-relative immediate from `pc` to `target` (`target = pc + imm + 1`). Both are below
/// the section sizes summed, far inside `i32`, but saturate rather than wrap regardless: the
/// decoder then reports the target as outside the program.
fn rel(target: usize, pc: usize) -> i32 {
    let d = target as i64 - pc as i64 - 1;
    i32::try_from(d).unwrap_or(if d < 0 { i32::MIN } else { i32::MAX })
}

/// Appends the functions of code section `section` (of `slots` slots) to `funcs`, by start.
fn section_funcs(
    file: &File<'_>,
    section: usize,
    slots: usize,
    funcs: &mut Vec<Func>,
) -> Result<(), ElfError> {
    let s = &file.sections[section];
    let mut syms: Vec<_> = file
        .symbols
        .iter()
        .filter(|y| y.section == Some(section) && y.kind == SymKind::Func)
        .collect();
    syms.sort_by_key(|y| y.value);
    if syms.is_empty() {
        // Hand-written or symbol-less code: the whole section is one program.
        funcs.push(Func {
            section,
            name: s.name.clone(),
            start: 0,
            len: slots,
            program: true,
        });
        return Ok(());
    }
    let size = s.data.len() as u64;
    for (i, y) in syms.iter().enumerate() {
        // A symbol without a size runs to the next function or the section's end.
        let end = if y.size == 0 {
            syms[i + 1..]
                .iter()
                .map(|n| n.value)
                .find(|&v| v > y.value)
                .unwrap_or(size)
        } else {
            y.value.saturating_add(y.size)
        };
        let isz = INSN_SIZE as u64;
        if y.value % isz != 0 || end % isz != 0 || end > size || end <= y.value {
            return Err(ElfError::Function {
                section: s.name.clone(),
                symbol: y.name.clone(),
                kind: FunctionErrorKind::Range {
                    start: y.value,
                    end,
                    size,
                },
            });
        }
        funcs.push(Func {
            section,
            name: y.name.clone(),
            start: (y.value / isz) as usize,
            len: ((end - y.value) / isz) as usize,
            program: !y.local,
        });
    }
    Ok(())
}
