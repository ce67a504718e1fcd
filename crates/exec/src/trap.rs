//! Run-time faults, one type for every engine.

use bpfx_bytecode::Pc;
use std::fmt;

/// What went wrong at run time. The discriminants are stable: the JIT writes them across the
/// machine-code boundary, and tests compare them as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TrapKind {
    /// A load, store or atomic outside every accessible region.
    OutOfBounds = 1,
    /// A local call beyond the frame limit.
    CallDepthExceeded = 2,
    /// The instruction budget ran out.
    BudgetExhausted = 3,
    /// A helper returned an error.
    HelperError = 4,
    /// A call (or `callx`) to a helper id that is not registered.
    UnknownHelper = 5,
    /// An instruction this runtime does not execute in this context (for example a kfunc call,
    /// an `lddw` of a map that was never bound, or a helper's tail call where the run cannot
    /// follow it: [`crate::End::value`]).
    Unsupported = 6,
    /// Control ran past the last instruction (the decoder accepts a program whose last
    /// instruction falls through; the verifier rejects it). The pc is the instruction that fell
    /// through.
    FellOffEnd = 7,
    /// The input memory is shorter than the size the program was verified against
    /// (`VerifiedProgram::mem_size`): engines refuse to run it, at pc 0, before executing
    /// anything, since the verifier's proofs of input accesses would not hold.
    InputTooSmall = 8,
    /// The run's environment breaks an assumption the verifier's proofs rest on (for example
    /// an [`Env::max_frames`](crate::Env) above the frame limit the program was verified
    /// with): engines refuse to run it, at pc 0, before executing anything.
    EnvMismatch = 9,
}

impl TrapKind {
    /// Every kind, in code order.
    pub const ALL: [TrapKind; 9] = [
        TrapKind::OutOfBounds,
        TrapKind::CallDepthExceeded,
        TrapKind::BudgetExhausted,
        TrapKind::HelperError,
        TrapKind::UnknownHelper,
        TrapKind::Unsupported,
        TrapKind::FellOffEnd,
        TrapKind::InputTooSmall,
        TrapKind::EnvMismatch,
    ];

    /// The kind with this stable code.
    #[inline]
    pub fn from_code(code: u8) -> Option<TrapKind> {
        TrapKind::ALL.into_iter().find(|k| *k as u8 == code)
    }

    /// A short lower-case name (`out-of-bounds`, …), stable for JSON output.
    pub const fn name(self) -> &'static str {
        match self {
            TrapKind::OutOfBounds => "out-of-bounds",
            TrapKind::CallDepthExceeded => "call-depth-exceeded",
            TrapKind::BudgetExhausted => "budget-exhausted",
            TrapKind::HelperError => "helper-error",
            TrapKind::UnknownHelper => "unknown-helper",
            TrapKind::Unsupported => "unsupported",
            TrapKind::FellOffEnd => "fell-off-end",
            TrapKind::InputTooSmall => "input-too-small",
            TrapKind::EnvMismatch => "env-mismatch",
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TrapKind::OutOfBounds => "memory access out of bounds",
            TrapKind::CallDepthExceeded => "call depth exceeded",
            TrapKind::BudgetExhausted => "instruction budget exhausted",
            TrapKind::HelperError => "helper failed",
            TrapKind::UnknownHelper => "call to an unknown helper",
            TrapKind::Unsupported => "unsupported instruction",
            TrapKind::FellOffEnd => "execution ran past the last instruction",
            TrapKind::InputTooSmall => "input memory smaller than the verified size",
            TrapKind::EnvMismatch => {
                "run environment differs from the one the program was verified for"
            }
        };
        f.write_str(s)
    }
}

/// A run-time fault at a program counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{pc}: {kind}")]
pub struct Trap {
    /// What went wrong.
    pub kind: TrapKind,
    /// The instruction that faulted.
    pub pc: Pc,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_roundtrip() {
        for k in TrapKind::ALL {
            assert_eq!(TrapKind::from_code(k as u8), Some(k));
        }
        assert_eq!(TrapKind::OutOfBounds as u8, 1);
        assert_eq!(TrapKind::from_code(0), None);
    }
}
