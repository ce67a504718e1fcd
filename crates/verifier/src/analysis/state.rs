//! The states the analysis starts from, register reads and writes, and the addressing of
//! stack bytes within the frame's slots.

use super::{Analysis, R};
use crate::config::ContextKind;
use crate::domain::{Frame, Off, PtrKind, State, Value};
use crate::error::VerifyErrorKind as K;
use bpfx_bytecode::{Pc, Reg};

/// The slot of a frame's stack holding byte `b` (an offset from the frame's r10, in
/// `-512..0`), and the byte's bit in that slot's initialisation mask.
pub(super) fn stack_byte(b: i64) -> (usize, u32) {
    let i = ((-b - 1) / 8) as usize;
    (i, (b + 8 * (i as i64 + 1)) as u32)
}

impl Analysis<'_> {
    pub(super) fn uninit(&self) -> Value {
        // The execution contract zeroes every register at entry and r1–r5 after a helper call;
        // Checked mode relies on that, Strict mode (the kernel's contract) does not.
        if self.strict {
            Value::NotInit
        } else {
            Value::konst(0)
        }
    }

    pub(super) fn entry_state(&self) -> State {
        let mut regs = [self.uninit(); 11];
        let (r1, r2) = match self.cfg.mem_size {
            Some(0) if self.cfg.context == ContextKind::Memory => {
                (Value::konst(0), Value::konst(0))
            }
            Some(n) => (Value::Ptr(PtrKind::Input, Off::known(0)), Value::konst(n)),
            None => (
                Value::Ptr(PtrKind::Input, Off::known(0)),
                Value::UNKNOWN_SCALAR,
            ),
        };
        regs[1] = r1;
        regs[2] = r2;
        regs[10] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(0));
        State::new(Frame::new(regs))
    }

    /// Reads a register as an operand: uninitialised is an error in Strict mode and an unknown
    /// scalar in Checked mode.
    pub(super) fn read(&self, pc: Pc, st: &State, r: Reg) -> R<Value> {
        match st.cur().regs[r.index()] {
            Value::NotInit if self.strict => Err(self.err(pc, K::UninitRegister(r))),
            Value::NotInit => Ok(Value::UNKNOWN_SCALAR),
            v => Ok(v),
        }
    }

    pub(super) fn set(st: &mut State, r: Reg, v: Value) {
        st.cur_mut().regs[r.index()] = v;
    }

    /// A rule violation: an error in Strict mode; in Checked mode the result degrades to an
    /// unknown scalar.
    pub(super) fn degrade(&self, pc: Pc, kind: K) -> R<Value> {
        if self.strict {
            Err(self.err(pc, kind))
        } else {
            Ok(Value::UNKNOWN_SCALAR)
        }
    }
}
