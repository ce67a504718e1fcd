//! The states the analysis starts from, register reads and writes, and the addressing of
//! stack bytes within the frame's slots.

use super::{Analysis, R};
use crate::config::{ContextKind, MapRef, MapTable};
use crate::domain::{Frame, Off, PtrKind, Slot, State, Value};
use crate::error::VerifyErrorKind as K;
use bpfx_bytecode::{Pc, Reg, RegSet};

/// The slot of a frame's stack holding byte `b` (an offset from the frame's r10, in
/// `-512..0`), and the byte's bit in that slot's initialisation mask.
pub(super) fn stack_byte(b: i64) -> (usize, u32) {
    let i = ((-b - 1) / 8) as usize;
    (i, (b + 8 * (i as i64 + 1)) as u32)
}

/// Before `new` joins `old` (one context, one pc): where `old` holds a map handle, or a
/// pointer into a map's value, and `new` holds the same for another map of the same shape
/// (equal [`crate::MapDef`]s: key and value sizes, read-only, program array, inner map), `new`
/// is made to name `old`'s map, so that the join keeps a handle (or a value pointer) instead of
/// `Mixed`. Every rule the analysis applies to a map depends on its definition only, and the
/// engines take the map from the register at run time, so naming either map is exact: this is
/// how a map chosen by a branch (`r1 = cond ? &a : &b` before `map_lookup_elem`) verifies, as
/// the kernel, which explores each path with its own map, accepts it.
pub(super) fn unify_maps(maps: &MapTable, old: &State, new: &mut State) {
    let same = |a: MapRef, b: MapRef| a != b && maps.get(a).is_some_and(|d| maps.get(b) == Some(d));
    let renamed = |o: Value, n: Value| match (o, n) {
        (Value::MapHandle(a) | Value::MapHandleOrNull(a), Value::MapHandle(b)) if same(a, b) => {
            Some(Value::MapHandle(a))
        }
        (Value::MapHandle(a) | Value::MapHandleOrNull(a), Value::MapHandleOrNull(b))
            if same(a, b) =>
        {
            Some(Value::MapHandleOrNull(a))
        }
        (
            Value::Ptr(PtrKind::MapValue { map: a, .. }, _),
            Value::Ptr(
                PtrKind::MapValue {
                    map: b,
                    nullable,
                    id,
                },
                off,
            ),
        ) if same(a, b) => Some(Value::Ptr(
            PtrKind::MapValue {
                map: a,
                nullable,
                id,
            },
            off,
        )),
        _ => None,
    };
    for (fo, fnew) in old.frames().zip(new.frames_mut()) {
        for (o, n) in fo.regs.iter().zip(fnew.regs.iter_mut()) {
            if let Some(v) = renamed(*o, *n) {
                *n = v;
            }
        }
        for (o, n) in fo.stack.iter().zip(fnew.stack.iter_mut()) {
            if let (Slot::Spill(o), Slot::Spill(v)) = (o, *n)
                && let Some(v) = renamed(*o, v)
            {
                *n = Slot::Spill(v);
            }
        }
    }
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

    pub(super) fn callback_state(&self) -> State {
        let other = if self.strict {
            Value::NotInit
        } else {
            Value::UNKNOWN_SCALAR
        };
        let mut regs = [other; 11];
        for r in RegSet::ARGS {
            regs[r.index()] = Value::UNKNOWN_SCALAR;
        }
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
