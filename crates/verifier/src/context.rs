//! Context conversion: accesses through the context pointer, checked against the context's
//! fields during the analysis and rewritten into accesses of bpfx's real layout after it (the
//! kernel's `convert_ctx_accesses`, from the pointer types the main pass recorded).
//!
//! ```text
//! analysis (every visit of an access)          after the analysis
//!   base is the context pointer + c  ──►  check_access: one field, kind of access allowed
//!   (Ptr(Input, c), c one number)          │    record(pc, Seen::Field{..})   ──►  convert:
//!   base is other memory             ──►  record(pc, Seen::Other)                 ldxw r0, [r6+0]
//!   base may or may not be context   ──►  error                                   becomes
//!                                                                                 ldxdw r0, [r6+4]
//! ```
//!
//! # Invariants
//! - Every visit of a pc resolves it the same way: the same field, the same pointer offset,
//!   the same converted instruction; otherwise the program is rejected at that pc. So one
//!   rewrite of the instruction is right on every path.
//! - A converted access reads or writes exactly the bytes of its field in bpfx's layout
//!   (`real_off` of the field plus the access's distance into it), whatever constant offset
//!   the base register carries: the instruction's offset absorbs the difference.
//! - In a field context, a value the analysis does not follow (a context pointer after an
//!   operation the `Checked` mode degrades, or a join of the context pointer with another
//!   type) is kept as `Value::Mixed { input: true }`, through arithmetic and through stack
//!   spills a guarded store may have hit, and no access through it is allowed: no unconverted
//!   access reads bpfx's struct where the program meant its own view of it. Other `Mixed`
//!   values (a packet pointer joined with a scalar) keep their guarded accesses.

use crate::config::{ContextField, ContextLayout, FieldKind};
use crate::domain::{Off, PtrKind, Scalar, Value};
use crate::error::{VerifyError, VerifyErrorKind as K};
use bpfx_bytecode::{Op, Pc, Program, Reg, Size};
use std::collections::HashMap;
use std::fmt;

/// What kind of access the analysis is checking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CtxOp {
    Load { signed: bool },
    Store,
    Atomic,
}

/// The conversion of one context access: which field, and the instruction's new offset and
/// size in bpfx's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextAccess {
    /// Index of the field in [`ContextLayout::fields`].
    pub field: usize,
    /// Offset of the access in the program's view of the context.
    pub off: i64,
    /// Offset of the base register from the context's start, in the program's view.
    pub base_off: i64,
    /// The converted instruction's offset field.
    pub new_off: i16,
    /// The converted instruction's access size in bytes.
    pub new_size: u32,
}

/// What one visit of a memory access was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// An access to other memory (or through an untyped value).
    Other,
    /// A context access.
    Field(ContextAccess),
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Other => write!(f, "an access to memory other than the context"),
            Seen::Field(a) => write!(
                f,
                "an access to the context at offset {} (through a pointer at context{:+})",
                a.off, a.base_off
            ),
        }
    }
}

/// The per-pc record of context accesses, filled by the analysis.
#[derive(Debug, Default)]
pub(crate) struct CtxFacts {
    seen: HashMap<Pc, Seen>,
}

impl CtxFacts {
    /// Records one visit of the access at `pc`; a visit that resolves differently from an
    /// earlier one is an error.
    pub(crate) fn record(&mut self, pc: Pc, now: Seen) -> Result<(), K> {
        match self.seen.get(&pc) {
            None => {
                self.seen.insert(pc, now);
                Ok(())
            }
            Some(&first) if first == now => Ok(()),
            Some(&first) => Err(K::ContextAccessDiffers {
                first: first.to_string(),
                second: now.to_string(),
            }),
        }
    }

    /// The context accesses, by pc, increasing.
    pub(crate) fn into_accesses(self) -> Vec<(Pc, ContextAccess)> {
        let mut v: Vec<(Pc, ContextAccess)> = self
            .seen
            .into_iter()
            .filter_map(|(pc, s)| match s {
                Seen::Field(a) => Some((pc, a)),
                Seen::Other => None,
            })
            .collect();
        v.sort_unstable_by_key(|&(pc, _)| pc);
        v
    }
}

/// A context access the analysis accepted: its conversion and what it loads.
pub(crate) struct Resolved {
    pub(crate) access: ContextAccess,
    /// The loaded value (for stores, unused; for atomics, the old value).
    pub(crate) value: Value,
    /// Whether the converted access lies inside the first `mem_size` bytes of the input.
    pub(crate) in_bounds: bool,
}

/// Checks an access of `size` bytes at `insn_off` from a context pointer at offset `base`
/// against the layout, and works out its conversion.
pub(crate) fn check_access(
    layout: &ContextLayout,
    mem_size: Option<u64>,
    reg: Reg,
    base: Off,
    insn_off: i16,
    size: u32,
    op: CtxOp,
) -> Result<Resolved, K> {
    let Some(base_off) = base.exact() else {
        let what = match base {
            Off::Range(lo, hi) => format!("context+{lo}..=context+{hi}"),
            Off::Unknown => "unknown".to_string(),
        };
        return Err(K::ContextVariableOffset { reg, what });
    };
    let off = base_off + i64::from(insn_off);
    let invalid = K::ContextAccess { off, size };
    let idx = layout.find(off, size).ok_or(invalid.clone())?;
    let field: ContextField = layout.fields[idx];
    let whole = off == i64::from(field.off) && size == u32::from(field.size);
    let allowed = match (field.kind, op) {
        (FieldKind::Bytes, _) => true,
        (_, CtxOp::Atomic) => false,
        (FieldKind::Scratch, _) => matches!(size, 1 | 2 | 4 | 8) && off % i64::from(size) == 0,
        (k, CtxOp::Load { signed }) if k.is_pointer() => whole && !signed,
        (k, CtxOp::Store) if k.is_pointer() => return Err(K::ContextReadOnly { off, size }),
        (FieldKind::Scalar, CtxOp::Load { .. }) => {
            whole || (field.narrow && matches!(size, 1 | 2 | 4) && off % i64::from(size) == 0)
        }
        (_, CtxOp::Store) => whole,
        _ => false,
    };
    if !allowed {
        return Err(invalid);
    }
    if matches!(op, CtxOp::Store | CtxOp::Atomic) && !field.writable {
        return Err(K::ContextReadOnly { off, size });
    }
    let (real, new_size) = if field.kind.is_pointer() {
        (i64::from(field.real_off), 8)
    } else {
        (
            i64::from(field.real_off) + (off - i64::from(field.off)),
            size,
        )
    };
    let new_off = real - base_off;
    let new_off = i16::try_from(new_off).map_err(|_| K::ContextOffsetRange { off: new_off })?;
    let in_bounds = mem_size.is_some_and(|m| real >= 0 && (real as u64) + u64::from(new_size) <= m);
    let value = match (field.kind, op) {
        (FieldKind::PacketStart, _) => Value::Ptr(PtrKind::Packet { id: 0 }, Off::known(0)),
        (FieldKind::PacketEnd, _) => Value::Ptr(PtrKind::PacketEnd, Off::known(0)),
        (FieldKind::PacketMeta, _) => Value::Ptr(PtrKind::PacketMeta, Off::known(0)),
        (FieldKind::SockCommonOrNull, _) => Value::Ptr(
            PtrKind::Sock {
                kind: crate::config::SockKind::Common,
                nullable: true,
                id: 0,
                ref_obj: 0,
            },
            Off::known(0),
        ),
        (FieldKind::Sock | FieldKind::SockOrNull, _) => Value::Ptr(
            PtrKind::Sock {
                kind: crate::config::SockKind::Full,
                nullable: field.kind == FieldKind::SockOrNull,
                id: 0,
                ref_obj: 0,
            },
            Off::known(0),
        ),
        (_, CtxOp::Load { signed }) => Value::Scalar(Scalar::load(size, signed)),
        _ => Value::Scalar(Scalar::load(size, false)),
    };
    Ok(Resolved {
        access: ContextAccess {
            field: idx,
            off,
            base_off,
            new_off,
            new_size,
        },
        value,
        in_bounds,
    })
}

/// Whether `v` may be the context pointer (or something the verifier no longer follows that
/// may be derived from it), in a field context.
pub(crate) fn maybe_context(v: Value) -> bool {
    v.may_be_input()
}

/// The result of an ALU operation on `operands` in a field context's `Checked` mode: a
/// non-pointer result computed from a value that may be the context pointer stays
/// [`Value::Mixed`], so no access goes through it unconverted.
pub(crate) fn taint(operands: [Value; 2], v: Value) -> Value {
    if operands.iter().any(|&o| maybe_context(o)) && !matches!(v, Value::Ptr(..)) {
        Value::Mixed { input: true }
    } else {
        v
    }
}

/// The program with every recorded context access rewritten into an access of bpfx's layout;
/// every instruction keeps its pc.
pub(crate) fn convert(
    prog: Program,
    accesses: &[(Pc, ContextAccess)],
) -> Result<Program, VerifyError> {
    if accesses.is_empty() {
        return Ok(prog);
    }
    let by_pc: HashMap<Pc, ContextAccess> = accesses.iter().copied().collect();
    let ops: Vec<Op> = prog
        .iter()
        .map(|(pc, op)| match by_pc.get(&pc) {
            Some(a) => rewrite(*op, a),
            None => *op,
        })
        .collect();
    // Only the size and offset of loads, stores and atomics change, to sizes and offsets
    // checked above, so the decoder accepts every converted instruction; should it not, the
    // program is rejected at that pc rather than run unconverted.
    Program::from_ops(&ops).map_err(|e| {
        let pc = Pc(e.pc);
        VerifyError {
            pc,
            op: prog.get(pc).copied(),
            kind: K::ContextConversion(e.to_string()),
        }
    })
}

fn size_of(bytes: u32) -> Size {
    match bytes {
        1 => Size::B,
        2 => Size::H,
        4 => Size::W,
        _ => Size::Dw,
    }
}

fn rewrite(op: Op, a: &ContextAccess) -> Op {
    let off = a.new_off;
    match op {
        Op::Load {
            signed, dst, base, ..
        } => Op::Load {
            size: size_of(a.new_size),
            signed,
            dst,
            base,
            off,
        },
        Op::Store { base, src, .. } => Op::Store {
            size: size_of(a.new_size),
            base,
            off,
            src,
        },
        Op::Atomic {
            width,
            op,
            fetch,
            base,
            src,
            ..
        } => Op::Atomic {
            width,
            op,
            fetch,
            base,
            off,
            src,
        },
        op => op,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ContextField, ContextKind, ContextLayout, FieldKind, Mode};
    use bpfx_bytecode::{Pc, Program, Reg, assemble};

    /// A TC-like table: u32 `len` (read-only, narrow loads) at 0 → 32, u32 `mark` (writable,
    /// narrow loads) at 4 → 36, 4-byte pointer fields `data` at 8 → 0 and `data_end` at 12 → 8,
    /// 8 plain bytes at 16 → 16; bpfx's struct is 40 bytes.
    fn cfg(mode: Mode) -> Config {
        let layout = ContextLayout::new(vec![
            ContextField::new(0, 4, FieldKind::Scalar, 32).with_narrow(true),
            ContextField::new(4, 4, FieldKind::Scalar, 36)
                .with_narrow(true)
                .with_writable(true),
            ContextField::new(8, 4, FieldKind::PacketStart, 0),
            ContextField::new(12, 4, FieldKind::PacketEnd, 8),
            ContextField::new(16, 8, FieldKind::Bytes, 16).with_writable(true),
        ]);
        Config {
            mode,
            mem_size: Some(40),
            context: ContextKind::Fields(layout),
            ..Config::default()
        }
    }

    fn prog(text: &str) -> Program {
        Program::decode(assemble(text).unwrap()).unwrap()
    }

    fn op(text: &str) -> String {
        prog(text).get(Pc(0)).unwrap().to_string()
    }

    /// Verifies `text` in both modes; on success, the converted instruction at `pc`.
    fn at(text: &str, pc: u32) -> Result<String, String> {
        let mut out = Vec::new();
        for mode in [Mode::Strict, Mode::Checked] {
            out.push(
                crate::verify(prog(text), &cfg(mode))
                    .map(|v| v.program().get(Pc(pc)).unwrap().to_string())
                    .map_err(|e| e.to_string()),
            );
        }
        assert_eq!(out[0], out[1], "the modes disagree on {text}");
        out.pop().unwrap()
    }

    #[test]
    fn narrow_loads_of_narrow_fields_convert_to_the_same_bytes() {
        let t = |insn: &str| at(&format!("{insn}\nmov r0, 0\nexit"), 0);
        assert_eq!(t("ldxw r0, [r1+4]"), Ok(op("ldxw r0, [r1+36]")));
        assert_eq!(t("ldxb r0, [r1+5]"), Ok(op("ldxb r0, [r1+37]")));
        assert_eq!(t("ldxh r0, [r1+2]"), Ok(op("ldxh r0, [r1+34]")));
        let e = t("ldxh r0, [r1+1]").unwrap_err();
        assert!(
            e.ends_with("invalid access to context at offset 1 size 2"),
            "{e}"
        );
        let e = t("ldxdw r0, [r1+0]").unwrap_err();
        assert!(
            e.ends_with("invalid access to context at offset 0 size 8"),
            "{e}"
        );
        // Pointer fields: whole and unsigned only.
        let e = t("ldxh r0, [r1+8]").unwrap_err();
        assert!(
            e.ends_with("invalid access to context at offset 8 size 2"),
            "{e}"
        );
        let e = t("ldxsw r0, [r1+8]").unwrap_err();
        assert!(
            e.ends_with("invalid access to context at offset 8 size 4"),
            "{e}"
        );
    }

    #[test]
    fn stores_need_a_writable_field_and_its_whole_width() {
        let t = |insn: &str| at(&format!("{insn}\nmov r0, 0\nexit"), 0);
        assert_eq!(t("stw [r1+4], 7"), Ok(op("stw [r1+36], 7")));
        let e = t("sth [r1+4], 7").unwrap_err();
        assert!(
            e.ends_with("invalid access to context at offset 4 size 2"),
            "{e}"
        );
        let e = t("stw [r1+0], 7").unwrap_err();
        assert!(
            e.ends_with("read-only context field at offset 0 size 4"),
            "{e}"
        );
        let e = t("stw [r1+12], 7").unwrap_err();
        assert!(
            e.ends_with("read-only context field at offset 12 size 4"),
            "{e}"
        );
        // Plain bytes take any access inside them, atomics too; other fields no atomics.
        assert_eq!(t("sth [r1+18], 7"), Ok(op("sth [r1+18], 7")));
        assert_eq!(
            t("mov r2, 1\nlock add [r1+16], r2").ok(),
            Some(op("mov r2, 1"))
        );
        let e = t("mov r2, 1\nlock add32 [r1+4], r2").unwrap_err();
        assert!(
            e.contains("invalid access to context at offset 4 size 4"),
            "{e}"
        );
        let e = t("ldxw r0, [r1+22]").unwrap_err();
        assert!(
            e.ends_with("invalid access to context at offset 22 size 4"),
            "{e}"
        );
    }

    #[test]
    fn packet_fields_give_packet_pointers_and_convert_to_8_byte_loads() {
        let text = "mov r6, r1\nadd r6, 8\nldxw r2, [r6+0]\nldxw r3, [r6+4]\nmov r4, r2\n\
                    add r4, 2\njgt r4, r3, +2\nldxh r0, [r2+0]\nexit\nmov r0, 0\nexit";
        assert_eq!(at(text, 2), Ok(op("ldxdw r2, [r6-8]")));
        assert_eq!(at(text, 3), Ok(op("ldxdw r3, [r6+0]")));
        let v = crate::verify(prog(text), &cfg(Mode::Strict)).unwrap();
        assert_eq!(v.access(Pc(7)).map(|f| f.proven), Some(true));
        let a = v.context_access(Pc(2)).unwrap();
        assert_eq!(
            (a.field, a.off, a.base_off, a.new_off, a.new_size),
            (2, 8, 8, -8, 8)
        );
        assert_eq!(v.context_access(Pc(7)), None);
        // The structure handed on is that of the converted program.
        assert_eq!(v.cfg().program(), v.program());
        let converted = v.cfg().program().get(Pc(2)).map(ToString::to_string);
        assert_eq!(converted, Some(op("ldxdw r2, [r6-8]")));
    }

    #[test]
    fn checked_mode_keeps_what_it_cannot_follow_away_from_the_context() {
        let checked = |text: &str| {
            crate::verify(prog(text), &cfg(Mode::Checked))
                .map(|v| v.into_program())
                .map_err(|e| e.to_string())
        };
        // A multiplied context pointer: no access through it.
        for text in [
            "mov r2, r1\nmul r2, 1\nldxw r0, [r2+4]\nexit",
            "mov r2, r1\nmov32 r2, r2\nadd r2, 0\nldxw r0, [r2+4]\nexit",
        ] {
            let e = checked(text).unwrap_err();
            assert!(
                e.contains("may or may not point into the context"),
                "{text}: {e}"
            );
        }
        // One meeting the stack pointer at a join: the paths stay apart (a pointer into each
        // region), so the access is checked on each, and one instruction cannot be both a
        // context access and a stack access.
        let e = checked(
            "ldxw r3, [r1+0]\njeq r3, 0, +2\nmov r1, r10\nadd r1, -16\nldxw r0, [r1+4]\nexit",
        )
        .unwrap_err();
        assert!(e.contains("on one path and"), "{e}");
        // A packet pointer joined with a scalar may not be the context: it keeps its guard.
        let text =
            "ldxw r2, [r1+8]\nldxw r3, [r1+0]\njeq r3, 0, +1\nmov r2, 0\nldxb r0, [r2+0]\nexit";
        let v = crate::verify(prog(text), &cfg(Mode::Checked)).unwrap();
        assert_eq!(
            v.program().get(Pc(4)).unwrap().to_string(),
            op("ldxb r0, [r2+0]")
        );
        assert_eq!(v.access(Pc(4)).map(|f| f.proven), Some(false));
        // A spilled context pointer survives a guarded packet store (which forgets other
        // spills) and still converts, keeping its guard.
        let text = "stxdw [r10-8], r1\nldxw r2, [r1+8]\nstb [r2+0], 1\nldxdw r1, [r10-8]\n\
                    ldxw r0, [r1+4]\nexit";
        let v = crate::verify(prog(text), &cfg(Mode::Checked)).unwrap();
        assert_eq!(
            v.program().get(Pc(4)).unwrap().to_string(),
            op("ldxw r0, [r1+36]")
        );
        assert_eq!(v.access(Pc(4)).map(|f| f.proven), Some(false));
    }

    #[test]
    fn a_return_range_is_checked_at_the_outermost_exit_in_strict_mode_only() {
        let with_range = |mode| {
            let mut c = cfg(mode);
            if let ContextKind::Fields(l) = &mut c.context {
                l.return_range = Some((0, 1));
            }
            c
        };
        let run = |text: &str, mode| {
            crate::verify(prog(text), &with_range(mode))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        // A subprogram may return anything; the program 0 or 1.
        let ok = "call local +2\nmov r0, 1\nexit\nmov r0, 7\nexit";
        assert_eq!(run(ok, Mode::Strict), Ok(()));
        let text = "ldxw r0, [r1+0]\nand r0, 3\nexit";
        let e = run(text, Mode::Strict).unwrap_err();
        assert!(
            e.contains("insn #2")
                && e.contains("r0 at exit may be any of 0..=3")
                && e.contains("must return a value in [0, 1]"),
            "{e}"
        );
        assert_eq!(run(text, Mode::Checked), Ok(()));
        assert_eq!(
            run("ldxw r0, [r1+0]\nand r0, 1\nexit", Mode::Strict),
            Ok(())
        );
        let e = run("mov r0, -1\nexit", Mode::Strict).unwrap_err();
        assert!(e.contains("-1..=-1"), "{e}");
    }

    #[test]
    fn a_read_only_packet_takes_loads_and_refuses_stores_in_both_modes() {
        let read_only = |mode, ro| {
            let mut c = cfg(mode);
            if let ContextKind::Fields(l) = &mut c.context {
                *l = l.clone().with_packet_read_only(ro);
            }
            c
        };
        // r5 = 7, data in r2, data_end in r3, four bytes proven; then the access at pc 6.
        let text = |insn: &str| {
            format!(
                "mov r5, 7\nldxw r2, [r1+8]\nldxw r3, [r1+12]\nmov r4, r2\nadd r4, 4\n\
                 jgt r4, r3, +1\n{insn}\nmov r0, 0\nexit"
            )
        };
        for mode in [Mode::Strict, Mode::Checked] {
            let run =
                |insn: &str, ro| crate::verify(prog(&text(insn)), &read_only(mode, ro)).map(|_| ());
            assert_eq!(run("ldxb r5, [r2+0]", true), Ok(()), "{mode:?}");
            for insn in ["stb [r2+0], 1", "stxb [r2+0], r5", "lock add32 [r2+0], r5"] {
                assert_eq!(run(insn, false), Ok(()), "{mode:?} {insn}");
                let e = run(insn, true).unwrap_err();
                assert_eq!(e.kind, crate::VerifyErrorKind::PacketReadOnly(Reg::R2));
                assert!(
                    e.to_string()
                        .contains("cannot write into packet through r2"),
                    "{mode:?} {insn}: {e}"
                );
            }
        }
    }

    /// A `cb[]`-like table: 12 scratch bytes at 0 → 24 (writable), a u32 at 12 → 40; bpfx's
    /// struct is 48 bytes; legacy packet loads as `packet_loads` says.
    fn scratch_cfg(mode: Mode, packet_loads: bool) -> Config {
        let layout = ContextLayout::new(vec![
            ContextField::new(0, 12, FieldKind::Scratch, 24).with_writable(true),
            ContextField::new(12, 4, FieldKind::Scalar, 40),
        ])
        .with_packet_loads(packet_loads);
        Config {
            mode,
            mem_size: Some(48),
            context: ContextKind::Fields(layout),
            ..Config::default()
        }
    }

    #[test]
    fn scratch_fields_take_aligned_accesses_of_every_size_and_no_atomics() {
        for mode in [Mode::Strict, Mode::Checked] {
            let run = |insn: &str| {
                crate::verify(
                    prog(&format!("{insn}\nmov r0, 0\nexit")),
                    &scratch_cfg(mode, false),
                )
                .map(|v| v.program().get(Pc(0)).unwrap().to_string())
                .map_err(|e| e.to_string())
            };
            assert_eq!(run("ldxdw r2, [r1+0]"), Ok(op("ldxdw r2, [r1+24]")));
            assert_eq!(run("stdw [r1+0], 1"), Ok(op("stdw [r1+24], 1")));
            assert_eq!(run("sth [r1+10], 1"), Ok(op("sth [r1+34], 1")));
            assert_eq!(run("ldxb r2, [r1+11]"), Ok(op("ldxb r2, [r1+35]")));
            for (insn, off, size) in [
                ("ldxdw r2, [r1+4]", 4, 8),
                ("ldxw r2, [r1+2]", 2, 4),
                ("ldxdw r2, [r1+8]", 8, 8),
                ("mov r2, 1\nlock add32 [r1+0], r2", 0, 4),
            ] {
                let e = run(insn).unwrap_err();
                assert!(
                    e.ends_with(&format!(
                        "invalid access to context at offset {off} size {size}"
                    )),
                    "{insn}: {e}"
                );
            }
        }
    }

    #[test]
    fn legacy_packet_loads_need_a_layout_that_allows_them_and_read_past_the_struct() {
        for mode in [Mode::Strict, Mode::Checked] {
            let text = "ldabsb 3\nexit";
            let e = crate::verify(prog(text), &scratch_cfg(mode, false)).unwrap_err();
            assert_eq!(e.pc, Pc(0));
            assert!(e.to_string().contains("legacy packet loads"), "{e}");
            let v = crate::verify(prog(text), &scratch_cfg(mode, true)).unwrap();
            assert_eq!(v.packet_base(), 48);
            let v = crate::verify(prog(text), &Config::conformance(mode, 8)).unwrap();
            assert_eq!(v.packet_base(), 0);
        }
    }
}
