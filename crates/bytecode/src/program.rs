//! A decoded, validated program.

use crate::decode::{DecodeError, DecodeErrorKind, MAX_SLOTS, decode_one};
use crate::encode::encode_into;
use crate::insn::{INSN_SIZE, Insn};
use crate::op::{Op, Pc};
use std::sync::Arc;

/// A program whose every slot decoded and whose every jump and call lands on an instruction.
///
/// # Invariants
/// - `ops.len() == insns.len()`, `1 <= len <= MAX_SLOTS`.
/// - `ops[pc]` is `Some` exactly at instruction starts; the second slot of an `lddw` is `None`.
/// - every [`Op::jump_target`] is `Some` instruction start inside the program.
/// - encoding `ops` in order gives back `insns`.
///
/// A program is immutable once decoded, so clones share it: cloning is a reference count
/// increment (an engine keeps the program it compiled for its listings without copying it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    slots: Arc<Slots>,
}

/// The slots of a [`Program`], raw and decoded.
#[derive(Debug, PartialEq, Eq)]
struct Slots {
    insns: Vec<Insn>,
    ops: Vec<Option<Op>>,
}

impl Program {
    /// Decodes and validates little-endian bytecode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, DecodeError> {
        let rem = bytes.len() % INSN_SIZE;
        if rem != 0 {
            let pc = (bytes.len() / INSN_SIZE) as u32;
            return Err(DecodeError {
                pc,
                insn: None,
                kind: DecodeErrorKind::TrailingBytes(rem),
            });
        }
        let insns: Vec<Insn> = bytes
            .chunks_exact(INSN_SIZE)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunks_exact gives 8 bytes")))
            .collect();
        Program::decode(insns)
    }

    /// Decodes and validates a sequence of slots.
    pub fn decode(insns: Vec<Insn>) -> Result<Program, DecodeError> {
        let err = |pc: usize, kind| DecodeError {
            pc: pc as u32,
            insn: insns.get(pc).copied(),
            kind,
        };
        if insns.is_empty() {
            return Err(DecodeError {
                pc: 0,
                insn: None,
                kind: DecodeErrorKind::Empty,
            });
        }
        if insns.len() > MAX_SLOTS {
            return Err(DecodeError {
                pc: MAX_SLOTS as u32,
                insn: None,
                kind: DecodeErrorKind::TooLong(insns.len()),
            });
        }
        let mut ops = vec![None; insns.len()];
        let mut pc = 0;
        while pc < insns.len() {
            let op = decode_one(&insns[pc..]).map_err(|k| err(pc, k))?;
            ops[pc] = Some(op);
            pc += op.slots() as usize;
        }
        for (pc, op) in ops.iter().enumerate() {
            let Some(op) = op else { continue };
            if let Some(kind) = check_target(op, pc, &ops) {
                return Err(err(pc, kind));
            }
        }
        Ok(Program {
            slots: Arc::new(Slots { insns, ops }),
        })
    }

    /// Builds a program from typed instructions, validating it as if decoded.
    pub fn from_ops(ops: &[Op]) -> Result<Program, DecodeError> {
        let mut insns = Vec::with_capacity(ops.len());
        for op in ops {
            encode_into(op, &mut insns);
        }
        Program::decode(insns)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.insns.len()
    }

    /// Always false: a program has at least one instruction.
    pub fn is_empty(&self) -> bool {
        self.slots.insns.is_empty()
    }

    /// The raw slots.
    pub fn insns(&self) -> &[Insn] {
        &self.slots.insns
    }

    /// The instruction starting at `pc`, or `None` for the second slot of an `lddw` or a pc past
    /// the end.
    pub fn get(&self, pc: Pc) -> Option<&Op> {
        self.slots.ops.get(pc.index()).and_then(Option::as_ref)
    }

    /// Whether `pc` is the start of an instruction.
    pub fn is_insn_start(&self, pc: Pc) -> bool {
        self.get(pc).is_some()
    }

    /// Every instruction with its pc, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Pc, &Op)> + '_ {
        self.slots
            .ops
            .iter()
            .enumerate()
            .filter_map(|(pc, op)| op.as_ref().map(|op| (Pc(pc as u32), op)))
    }

    /// Whether some jump, branch or local call targets its own pc or an earlier one: the only
    /// way a run can repeat an instruction in the same frame (a loop) or re-enter a function
    /// (recursion; a call cycle always holds a call to a function that starts no later than the
    /// call). Without one, every function runs straight through and calls only functions after
    /// it, so every run ends: engines then need no instruction budget (see
    /// `bpfx_exec::DEFAULT_BUDGET`).
    pub fn has_back_edges(&self) -> bool {
        self.iter().any(|(pc, op)| {
            matches!(
                op,
                Op::Ja { .. } | Op::Branch { .. } | Op::MayGoto { .. } | Op::Call(_)
            ) && op.jump_target(pc).is_some_and(|t| t <= pc)
        })
    }

    /// The bytecode as little-endian bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.slots.insns.iter().flat_map(|i| i.to_bytes()).collect()
    }
}

fn check_target(op: &Op, pc: usize, ops: &[Option<Op>]) -> Option<DecodeErrorKind> {
    let off = match *op {
        Op::Ja { off, .. } => off,
        Op::Branch { off, .. } | Op::MayGoto { off } => i32::from(off),
        Op::Call(crate::CallTarget::Local { off }) => off,
        Op::LoadImm64 {
            value: crate::Imm64::Func { off },
            ..
        } => off,
        _ => return None,
    };
    let target = pc as i64 + i64::from(off) + 1;
    if target < 0 || target >= ops.len() as i64 {
        return Some(DecodeErrorKind::TargetOutOfRange {
            target,
            len: ops.len(),
        });
    }
    if ops[target as usize].is_none() {
        return Some(DecodeErrorKind::TargetInsideLddw(target as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(text: &str) -> Program {
        Program::decode(crate::assemble(text).expect("assembles")).expect("decodes")
    }

    #[test]
    fn back_edges_are_backward_or_self_jumps_and_calls() {
        assert!(!prog("mov r0, 0\njeq r0, 1, +1\nmov r0, 2\nexit").has_back_edges());
        assert!(prog("mov r0, 0\njeq r0, 1, +1\nja -2\nexit").has_back_edges());
        assert!(
            prog("ja +0\nja -1\nexit").has_back_edges(),
            "ja -1 is a self-loop"
        );
        // A forward call is no loop; a call back (recursion is only possible so) is.
        assert!(!prog("call local +1\nexit\nmov r0, 1\nexit").has_back_edges());
        assert!(prog("call local +1\nexit\ncall local -3\nexit").has_back_edges());
        // A helper call has no target.
        assert!(!prog("call 1\nexit").has_back_edges());
        // A function address loaded is not a jump.
        assert!(!prog("f:\nlddw r1, func(f)\nmov r0, 0\nexit").has_back_edges());
    }
}
