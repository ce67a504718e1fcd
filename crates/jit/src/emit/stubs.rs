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
//! | `fault[size][write]` | a guard's cold block, the access outside every region | records the address (r10), the frame (rbp) and the access, then `trap[OutOfBounds]` |
//! | `halt` | an out-of-bounds legacy packet load | r0 = 0, unwind with no trap |
//! | `unwind` | the stubs above; a helper call whose dispatcher recorded a trap | leave |

use super::{Emitter, Mem, asm};
use crate::abi::{FAULT_WRITE, FRAME, SPAN_SIZE, ctx, span_ok, x};
use bpfx_bytecode::Pc;
use bpfx_exec::TrapKind;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynamicLabel, VecAssembler};

/// The shared exits. The trap stubs, the guards' slow paths and their out-of-bounds exits are
/// made on first use (their labels too) and only those are emitted; `halt`, `unwind` and the
/// epilogue always exist.
#[derive(Debug)]
pub(crate) struct Stubs {
    /// Per trap kind (in code order), its stub's label once some code jumps to it.
    trap: [Option<DynamicLabel>; TrapKind::ALL.len()],
    pub(crate) halt: DynamicLabel,
    pub(crate) unwind: DynamicLabel,
    /// The prologue's epilogue, which `unwind` leaves through.
    pub(crate) epilogue: DynamicLabel,
    /// The guards' slow path per access size (1, 2, 4, 8 bytes) and kind (read, write), once
    /// some guard calls it.
    regions: [[Option<DynamicLabel>; 2]; 4],
    /// The out-of-bounds exits of the guards, per access size and kind, once some guard uses
    /// it: each records the address (r10), the frame (rbp) and the access for the host's
    /// [`bpfx_exec::AccessFault`], then traps.
    faults: [[Option<DynamicLabel>; 2]; 4],
}

impl Stubs {
    pub(crate) fn new(ops: &mut VecAssembler<X64Relocation>) -> Stubs {
        Stubs {
            trap: [None; TrapKind::ALL.len()],
            halt: ops.new_dynamic_label(),
            unwind: ops.new_dynamic_label(),
            epilogue: ops.new_dynamic_label(),
            regions: [[None; 2]; 4],
            faults: [[None; 2]; 4],
        }
    }

    /// The stub that records `kind`, made on first use.
    pub(crate) fn trap(
        &mut self,
        ops: &mut VecAssembler<X64Relocation>,
        kind: TrapKind,
    ) -> DynamicLabel {
        // Codes start at 1 and `ALL` is in code order.
        *self.trap[usize::from(kind as u8 - 1)].get_or_insert_with(|| ops.new_dynamic_label())
    }

    /// The out-of-bounds exit of a guarded `size`-byte access (a store or atomic when
    /// `write`), entered with the address in r10 and the trap pc recorded; made on first use.
    pub(crate) fn fault(
        &mut self,
        ops: &mut VecAssembler<X64Relocation>,
        size: u32,
        write: bool,
    ) -> DynamicLabel {
        *self.faults[size.trailing_zeros() as usize][usize::from(write)]
            .get_or_insert_with(|| ops.new_dynamic_label())
    }

    /// The slow-path stub for a `size`-byte access (a store or atomic when `write`); made on
    /// first use.
    pub(crate) fn regions(
        &mut self,
        ops: &mut VecAssembler<X64Relocation>,
        size: u32,
        write: bool,
    ) -> DynamicLabel {
        *self.regions[size.trailing_zeros() as usize][usize::from(write)]
            .get_or_insert_with(|| ops.new_dynamic_label())
    }
}

/// An out-of-line block, emitted after the body.
#[derive(Debug)]
pub(crate) enum Cold {
    /// Give back `refund` units of budget, record `pc` as the trap pc, then jump to `to`.
    Leave {
        from: DynamicLabel,
        pc: Pc,
        to: DynamicLabel,
        refund: u32,
    },
    /// The slow path of a guarded access that missed the input: the active stack
    /// `[r10 - 512, stack_top)`, then the shared blocks (writable ones only for a `write`),
    /// checked by the stub [`Stubs::regions`]. Back to `resume` when inside one, else an
    /// out-of-bounds trap that records the address, size and frame
    /// ([`RunCtx::fault_access`](crate::abi::RunCtx)).
    Guard {
        from: DynamicLabel,
        resume: DynamicLabel,
        pc: Pc,
        /// The address of the access.
        addr: Mem,
        /// Access size in bytes.
        size: u32,
        /// A store or atomic (shared blocks must be writable).
        write: bool,
        /// Budget to give back on the way out.
        refund: u32,
    },
}

impl Cold {
    pub(crate) fn pc(&self) -> Pc {
        match *self {
            Cold::Leave { pc, .. } | Cold::Guard { pc, .. } => pc,
        }
    }
}

impl Emitter<'_> {
    pub(super) fn emit_cold(&mut self, block: &Cold) {
        match *block {
            Cold::Leave {
                from,
                pc,
                to,
                refund,
            } => {
                asm!(self; =>from);
                self.emit_leave(pc, to, refund);
            }
            Cold::Guard {
                from,
                resume,
                pc,
                addr,
                size,
                write,
                refund,
            } => {
                let fault = self.stubs.fault(&mut self.ops, size, write);
                let check = self.stubs.regions(&mut self.ops, size, write);
                asm!(self; =>from);
                self.emit_lea_mem(x::R10, addr);
                asm!(self; call =>check);
                if self.opts.spectre {
                    // The access after `resume` uses r10, which the stub clobbered; `lfence`
                    // keeps a mispredicted check from reaching it before the check resolves.
                    let fail = self.new_label();
                    asm!(self
                        ; jae =>fail
                        ; lfence
                    );
                    self.emit_lea_mem(x::R10, addr);
                    asm!(self
                        ; jmp =>resume
                        ; =>fail
                    );
                } else {
                    asm!(self; jb =>resume);
                }
                // Outside every region: r10 still holds the address (the stub restores it
                // after each block it tries, and `emit_leave` keeps it); the fault stub
                // records it, the size and the frame, then traps.
                self.emit_leave(pc, fault, refund);
            }
        }
    }

    pub(super) fn emit_stubs(&mut self) {
        let unwind = self.stubs.unwind;
        // The out-of-bounds exits end in the out-of-bounds trap stub: made before the trap
        // stubs are emitted.
        let oob = self
            .stubs
            .faults
            .iter()
            .flatten()
            .any(Option::is_some)
            .then(|| self.stubs.trap(&mut self.ops, TrapKind::OutOfBounds));
        // Only the kinds some code jumps to (`EnvMismatch` is raised by `JitProgram::run`
        // before any code runs, never by the code).
        for (kind, stub) in TrapKind::ALL.into_iter().zip(self.stubs.trap) {
            if let Some(stub) = stub {
                asm!(self
                    ; =>stub
                    ; mov QWORD [r12 + ctx::TRAP_KIND], kind as i32
                    ; jmp =>unwind
                );
            }
        }
        for (k, kinds) in self.stubs.regions.into_iter().enumerate() {
            for (w, label) in kinds.into_iter().enumerate() {
                if let Some(label) = label {
                    self.emit_region_stub(label, 1 << k, w == 1);
                }
            }
        }
        for (k, kinds) in self.stubs.faults.into_iter().enumerate() {
            for (w, label) in kinds.into_iter().enumerate() {
                if let (Some(label), Some(oob)) = (label, oob) {
                    let access = (1 << k) | if w == 1 { FAULT_WRITE as i32 } else { 0 };
                    asm!(self
                        ; =>label
                        ; mov [r12 + ctx::FAULT_ADDR], r10
                        ; mov [r12 + ctx::FAULT_FP], rbp
                        ; mov QWORD [r12 + ctx::FAULT_ACCESS], access
                        ; jmp =>oob
                    );
                }
            }
        }
        let (halt, epilogue) = (self.stubs.halt, self.stubs.epilogue);
        asm!(self
            ; =>halt
            ; xor eax, eax
            ; =>unwind
            ; mov rsp, [r12 + ctx::SAVED_RSP]
            ; jmp =>epilogue
        );
    }
}

impl Emitter<'_> {
    /// The guards' slow path for a `size`-byte access at the address in r10: returns (`ret`)
    /// with CF set when the access lies in the active stack or in a shared block (a writable
    /// one, for a `write`), CF clear otherwise. Clobbers r9, r10, r11 and flags, nothing else.
    ///
    /// Like [`bpfx_exec::GuestMemory`], it checks the stack, then each block in turn, each as
    /// `addr - start < len - size + 1` on wrapped values, which cannot wrap. r10 is turned into
    /// each block's offset by a `sub` and restored by the matching `add` (exact inverses mod
    /// 2^64), so the loop needs no fourth register.
    fn emit_region_stub(&mut self, label: DynamicLabel, size: u32, write: bool) {
        let extra = FRAME + 1 - size as i32;
        let end = if write {
            ctx::SHARED_WEND
        } else {
            ctx::SHARED_END
        };
        let ok = span_ok(size);
        let (next, done) = (self.new_label(), self.new_label());
        asm!(self
            ; =>label
            // Offset from the active stack's bottom (r10 - 512), and its valid starts (>= 505).
            ; mov r11, r10
            ; sub r11, rbp
            ; add r11, FRAME
            ; mov r9, [BYTE r12 + ctx::STACK_TOP]
            ; sub r9, rbp
            ; add r9, extra
            ; cmp r11, r9
            ; jb =>done
            ; mov r11, [r12 + ctx::SHARED_BEGIN]
            ; =>next
            ; cmp r11, [r12 + end]
            ; jae =>done
            ; sub r10, [r11]
            ; cmp r10, [r11 + ok]
            ; jb =>done
            ; add r10, [r11]
            ; add r11, SPAN_SIZE
            ; jmp =>next
            ; =>done
            ; ret
        );
    }
}

/// Trap exits: how a faulting site leaves.
impl Emitter<'_> {
    /// Stores `pc` as the trap pc and jumps to the stub that records `kind` and leaves: for an
    /// instruction that always traps.
    pub(crate) fn emit_trap_now(&mut self, pc: Pc, kind: TrapKind) {
        let stub = self.stubs.trap(&mut self.ops, kind);
        let refund = self.refund(pc);
        self.emit_leave(pc, stub, refund);
    }

    /// Gives back `refund` units of budget, records `pc` as the trap pc and jumps to `to`: the
    /// one way out of a faulting site. Clobbers r11.
    pub(crate) fn emit_leave(&mut self, pc: Pc, to: DynamicLabel, refund: u32) {
        if refund > 0 {
            asm!(self; add QWORD [BYTE r12 + ctx::BUDGET], refund as i32);
        }
        if self.blinds(i64::from(pc.0)) {
            self.emit_blinded_u32(x::R11, pc.0);
            asm!(self; mov [r12 + ctx::TRAP_PC], r11);
        } else {
            asm!(self; mov DWORD [r12 + ctx::TRAP_PC], pc.0 as i32);
        }
        asm!(self; jmp =>to);
    }

    /// A cold block that records `pc` and traps with `kind`; returns the label to jump to.
    pub(crate) fn cold_trap(&mut self, pc: Pc, kind: TrapKind) -> DynamicLabel {
        let to = self.stubs.trap(&mut self.ops, kind);
        self.cold_leave(pc, to)
    }

    /// A cold block that gives back the budget of the rest of `pc`'s block, records `pc` and
    /// jumps to `to` (a trap stub, the unwind stub when the trap kind is already recorded, or
    /// `halt`); returns the label to jump to.
    pub(crate) fn cold_leave(&mut self, pc: Pc, to: DynamicLabel) -> DynamicLabel {
        let from = self.new_label();
        let refund = self.refund(pc);
        self.cold.push(Cold::Leave {
            from,
            pc,
            to,
            refund,
        });
        from
    }
}
