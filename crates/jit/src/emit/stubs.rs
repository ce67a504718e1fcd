//! Cold code and the shared stubs every fault leaves through.
//!
//! A faulting site jumps (rarely taken, forward) to its own cold block, which stores the pc in
//! [`RunCtx::trap_pc`](crate::abi::RunCtx) and jumps to the stub of its trap kind; the stub
//! stores the [`TrapKind`] code and jumps to `unwind`, which restores the rsp saved by the
//! prologue and leaves through the epilogue, from any call depth. Nothing is written to guest
//! memory on the way out.
//!
//! | stub | entered from | effect |
//! |---|---|---|
//! | `trap[kind]` | cold blocks, always-trapping instructions | `trap_kind = kind`, unwind |
//! | `halt` | an out-of-bounds legacy packet load | r0 = 0, unwind with no trap |
//! | `unwind` | the stubs above; a helper call whose dispatcher recorded a trap | leave |

use super::{Emitter, asm, at};
use crate::abi::{FRAME, ctx};
use bpfx_bytecode::Pc;
use bpfx_exec::TrapKind;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynamicLabel, VecAssembler};

/// The shared exits.
#[derive(Debug)]
pub(crate) struct Stubs {
    trap: [DynamicLabel; TrapKind::ALL.len()],
    pub(crate) halt: DynamicLabel,
    pub(crate) unwind: DynamicLabel,
}

impl Stubs {
    pub(crate) fn new(ops: &mut VecAssembler<X64Relocation>) -> Stubs {
        Stubs {
            trap: TrapKind::ALL.map(|_| ops.new_dynamic_label()),
            halt: ops.new_dynamic_label(),
            unwind: ops.new_dynamic_label(),
        }
    }

    /// The stub that records `kind`.
    pub(crate) fn trap(&self, kind: TrapKind) -> DynamicLabel {
        // Codes start at 1 and `ALL` is in code order.
        self.trap[usize::from(kind as u8 - 1)]
    }
}

/// An out-of-line block, emitted after the body.
#[derive(Debug)]
pub(crate) enum Cold {
    /// Record `pc` as the trap pc, then jump to `to`.
    Leave {
        from: DynamicLabel,
        pc: Pc,
        to: DynamicLabel,
    },
    /// The second region check of a guarded access that missed the input: the active stack
    /// `[r10 - 512, stack_top)`. Back to `resume` when inside, else an out-of-bounds trap.
    StackCheck {
        from: DynamicLabel,
        resume: DynamicLabel,
        pc: Pc,
        /// Host register holding the base address.
        base: u8,
        /// Displacement of the access.
        off: i32,
        /// Access size in bytes.
        size: u32,
    },
}

impl Cold {
    pub(crate) fn pc(&self) -> Pc {
        match *self {
            Cold::Leave { pc, .. } | Cold::StackCheck { pc, .. } => pc,
        }
    }
}

impl Emitter<'_> {
    pub(super) fn emit_cold(&mut self, block: &Cold) {
        match *block {
            Cold::Leave { from, pc, to } => {
                asm!(self
                    ; =>from
                    ; mov DWORD [BYTE r12 + ctx::TRAP_PC], pc.0 as i32
                    ; jmp =>to
                );
            }
            Cold::StackCheck {
                from,
                resume,
                pc,
                base,
                off,
                size,
            } => {
                let oob = self.stubs.trap(TrapKind::OutOfBounds);
                // Valid starts in the active stack: its size (stack_top - r10 + 512) minus
                // size, plus one; at least 505, so nothing wraps. The offset is computed as
                // addr - (r10 - 512) with wrapping arithmetic, like `Region::offset_of`.
                let extra = FRAME + 1 - size as i32;
                asm!(self; =>from);
                at!(self; (lea r10,) [base, off + FRAME] ());
                asm!(self
                    ; sub r10, rbp
                    ; mov r11, [BYTE r12 + ctx::STACK_TOP]
                    ; sub r11, rbp
                    ; add r11, extra
                    ; cmp r10, r11
                    ; jb =>resume
                    ; mov DWORD [BYTE r12 + ctx::TRAP_PC], pc.0 as i32
                    ; jmp =>oob
                );
            }
        }
    }

    pub(super) fn emit_stubs(&mut self) {
        let unwind = self.stubs.unwind;
        for kind in TrapKind::ALL {
            let stub = self.stubs.trap(kind);
            asm!(self
                ; =>stub
                ; mov QWORD [BYTE r12 + ctx::TRAP_KIND], kind as i32
                ; jmp =>unwind
            );
        }
        let halt = self.stubs.halt;
        asm!(self
            ; =>halt
            ; xor eax, eax
            ; =>unwind
            ; mov rsp, [BYTE r12 + ctx::SAVED_RSP]
            ; jmp ->epilogue
        );
    }
}
