//! LDX, ST, STX and the legacy packet loads, with the inline memory guard.
//!
//! # The guard
//! Every access that [`GuardPlan::of`](crate::analysis::guards::GuardPlan::of) finds needs a
//! guard ([`Guard::Inline`]) is checked before it happens, so a faulting access writes nothing:
//! ```text
//!     lea  r10, [base + off]          ; the address, wrapping like the interpreter's
//!     sub  r10, [r12 + input_base]    ; offset into the input (huge if below it)
//!     cmp  r10, [r12 + input_ok[k]]   ; valid start offsets for this size
//!     jae  cold                       ; not the input: try the stack, out of line
//! resume:
//!     <the access>
//! ```
//! The cold block ([`super::stubs::Cold::Guard`]) does the same against the active stack
//! `[r10 - 512, stack_top)` and jumps back, or traps with `OutOfBounds` at the pc. Neither
//! compare can wrap: both are `addr - start < len - size + 1` (see
//! [`bpfx_exec::Region::offset_of`]).

use super::direct::{self, OpSize};
use super::stubs::Cold;
use super::{CopyKind, Emitter, Exit, Mem, asm};
use crate::JitError;
use crate::abi::{ctx, host, x};
use crate::analysis::group::Group;
use crate::analysis::guards::Guard;
use crate::analysis::plan::Addr;
use bpfx_bytecode::{Operand, Pc, Reg, Size};
use dynasmrt::DynamicLabel;

impl Emitter<'_> {
    /// Emits the guard for an access of `size` bytes at `addr`, if it needs one, and returns
    /// the memory operand the access must use: `addr` itself, or, with Spectre hardening, r10
    /// holding the checked (and masked) address.
    pub(super) fn emit_guard(&mut self, pc: Pc, addr: Addr, size: u32, write: bool) -> Mem {
        let m = Mem::from(addr);
        if self.guards.of(pc, self.kind) != Guard::Inline {
            return m;
        }
        let from = self.new_label();
        let resume = self.new_label();
        self.emit_input_check(pc, addr, size, from);
        if self.opts.spectre {
            // Not taken means CF = 1, so r11 = -1 and the offset survives; under a
            // misprediction CF = 0 zeroes it, and the access goes to the input's start.
            asm!(self
                ; sbb r11, r11
                ; and r10, r11
                ; add r10, [BYTE r12 + ctx::INPUT_BASE]
            );
        }
        asm!(self; =>resume);
        let refund = self.refund(pc);
        self.cold.push(Cold::Guard {
            from,
            resume,
            pc,
            addr: m,
            size,
            write,
            refund,
        });
        if self.opts.spectre {
            Mem {
                base: x::R10,
                index: None,
                disp: 0,
            }
        } else {
            m
        }
    }

    /// The guard of a whole group of accesses ([`crate::analysis::group`]), before its first one: on
    /// failure, the group's fallback runs its instructions with a guard each.
    pub(super) fn emit_merged_guard(&mut self, group: Group) {
        let from = self.new_label();
        let resume = self.new_label();
        self.emit_input_check(group.first, group.start, group.size, from);
        self.fallbacks.push((group, from, resume));
    }

    /// The input check of a guard at `pc`: jumps to `fail` unless `size` bytes at `addr` lie
    /// in the input, leaving r10 = the offset into the input (the wrapped `addr - input_base`)
    /// when Spectre masking needs it. When one of the address's registers holds the input's
    /// address ([`crate::analysis::input_base`]), the offset is the rest of the address; when that is one
    /// register or a constant, it is compared as it is.
    fn emit_input_check(&mut self, pc: Pc, addr: Addr, size: u32, fail: DynamicLabel) {
        // Computed at the first guard: code without guards never needs it.
        let cfg = self.cfg;
        let regs = self
            .input_regs
            .get_or_insert_with(|| crate::analysis::input_base::InputRegs::new(cfg));
        let holds = |r: Reg| regs.holds(pc, r);
        let rest = match addr.index {
            _ if holds(addr.base) => Some((addr.index, addr.disp)),
            Some(i) if holds(i) => Some((Some(addr.base), addr.disp)),
            _ => None,
        };
        match rest {
            Some((Some(r), 0)) if !self.opts.spectre => {
                asm!(self
                    ; cmp Rq(host(r)), [BYTE r12 + ctx::input_ok(size)]
                    ; jae =>fail
                );
                return;
            }
            Some((None, disp)) if !self.opts.spectre => {
                // The offset is `disp` itself: inside exactly when the valid starts exceed it
                // (a negative `disp`, sign-extended, is above every valid start).
                asm!(self
                    ; cmp QWORD [BYTE r12 + ctx::input_ok(size)], disp
                    ; jbe =>fail
                );
                return;
            }
            Some((Some(r), disp)) => self.emit_lea(x::R10, host(r), disp),
            Some((None, disp)) => self.emit_mov_imm(bpfx_bytecode::Width::W64, x::R10, disp),
            None => {
                self.emit_lea_mem(x::R10, Mem::from(addr));
                asm!(self; sub r10, [BYTE r12 + ctx::INPUT_BASE]);
            }
        }
        asm!(self
            ; cmp r10, [BYTE r12 + ctx::input_ok(size)]
            ; jae =>fail
        );
    }

    /// A merged guard's fallback: the group's instructions, each access with its own guard,
    /// then back to the code after the group.
    pub(super) fn emit_fallback(
        &mut self,
        group: Group,
        from: DynamicLabel,
        resume: DynamicLabel,
    ) -> Result<(), JitError> {
        asm!(self; =>from);
        self.emit_copy(
            CopyKind::Fallback,
            group.first,
            group.last,
            Exit::To(resume),
        )
    }

    pub(super) fn lower_load(&mut self, pc: Pc, size: Size, signed: bool, dst: Reg, addr: Addr) {
        let m = self.emit_guard(pc, addr, size.bytes(), false);
        let d = host(dst);
        let (size, opcode) = match (size, signed) {
            (Size::B, false) => (OpSize::Plain, 0x0fb6),
            (Size::H, false) => (OpSize::Plain, 0x0fb7),
            (Size::W, false) => (OpSize::Plain, 0x8b),
            (Size::Dw, _) => (OpSize::Quad, 0x8b),
            (Size::B, true) => (OpSize::Quad, 0x0fbe),
            (Size::H, true) => (OpSize::Quad, 0x0fbf),
            (Size::W, true) => (OpSize::Quad, 0x63),
        };
        direct::rm(&mut self.ops, size, opcode, d, m);
    }

    pub(super) fn lower_store(&mut self, pc: Pc, size: Size, addr: Addr, src: Operand) {
        let m = self.emit_guard(pc, addr, size.bytes(), true);
        // A blinded immediate goes through r11 (the address is in eBPF registers or r10).
        let value = match src {
            Operand::Reg(r) => Ok(host(r)),
            Operand::Imm(i) if self.blinds(i64::from(i)) => {
                self.emit_blinded_sext(x::R11, i);
                Ok(x::R11)
            }
            Operand::Imm(i) => Err(i),
        };
        let (opsize, opcode) = match size {
            Size::B => (OpSize::Plain, 0x88),
            Size::H => (OpSize::Word, 0x89),
            Size::W => (OpSize::Plain, 0x89),
            Size::Dw => (OpSize::Quad, 0x89),
        };
        match value {
            Ok(s) => direct::rm(&mut self.ops, opsize, opcode, s, m),
            // Immediates are truncated to the size; at 8 bytes the imm32 is sign-extended.
            Err(i) => direct::mov_m_imm(&mut self.ops, opsize, size.bytes(), m, i),
        }
    }

    /// `ldabs`/`ldind`: r0 = the big-endian value at packet offset `index + imm` (wrapping),
    /// the packet being the input from the verified program's `packet_base` on; out of
    /// bounds, the whole program returns 0 at once (the `halt` stub).
    pub(super) fn lower_packet(&mut self, pc: Pc, size: Size, index: Option<Reg>, imm: i32) {
        // A halt ends the run normally: it gives back the rest of the block's budget.
        let halt = if self.refund(pc) > 0 {
            let to = self.stubs.halt;
            self.cold_leave(pc, to)
        } else {
            self.stubs.halt
        };
        match index {
            Some(r) if self.blinds(i64::from(imm)) => {
                self.emit_blinded_sext(x::R11, imm);
                asm!(self; add r11, Rq(host(r)));
            }
            Some(r) => self.emit_lea(x::R11, host(r), imm),
            None => self.emit_mov_imm(bpfx_bytecode::Width::W64, x::R11, imm),
        }
        // The packet starts `base` bytes into the input (after a context struct): its valid
        // start offsets are the input's minus `base`, none when that borrows or gives 0.
        let base = self.facts.map_or(0, |f| f.packet_base());
        match i32::try_from(base) {
            Ok(0) => asm!(self
                ; cmp r11, [BYTE r12 + ctx::input_ok(size.bytes())]
                ; jae =>halt
            ),
            Ok(b) => asm!(self
                ; mov r10, [BYTE r12 + ctx::input_ok(size.bytes())]
                ; sub r10, b
                ; jbe =>halt
                ; cmp r11, r10
                ; jae =>halt
            ),
            // No input is that large: every packet load ends the run.
            Err(_) => asm!(self; jmp =>halt),
        }
        if self.opts.spectre {
            // As in a guard: a mispredicted compare reads the packet's first bytes.
            asm!(self
                ; sbb r10, r10
                ; and r11, r10
            );
        }
        asm!(self; add r11, [BYTE r12 + ctx::INPUT_BASE]);
        if let Ok(d @ 1..) = i32::try_from(base) {
            asm!(self; add r11, d);
        }
        match size {
            Size::B => asm!(self; movzx eax, BYTE [r11]),
            Size::H => asm!(self
                ; movzx eax, WORD [r11]
                ; rol ax, 8
            ),
            // The decoder admits only B, H and W here; a double word would be a plain swap.
            Size::W => asm!(self
                ; mov eax, DWORD [r11]
                ; bswap eax
            ),
            Size::Dw => asm!(self
                ; mov rax, QWORD [r11]
                ; bswap rax
            ),
        }
    }
}
