//! LDX, ST, STX and the legacy packet loads, with the inline memory guard.
//!
//! # The guard
//! Every access whose safety is not known at compile time ([`Emitter::access_guard`]) is
//! checked before it happens, so a faulting access writes nothing:
//! ```text
//!     lea  r10, [base + off]          ; the address, wrapping like the interpreter's
//!     sub  r10, [r12 + input_base]    ; offset into the input (huge if below it)
//!     cmp  r10, [r12 + input_ok[k]]   ; valid start offsets for this size
//!     jae  cold                       ; not the input: try the stack, out of line
//! resume:
//!     <the access>
//! ```
//! The cold block ([`super::stubs::Cold::StackCheck`]) does the same against the active stack
//! `[r10 - 512, stack_top)` and jumps back, or traps with `OutOfBounds` at the pc. Neither
//! compare can wrap: both are `addr - start < len - size + 1` (see
//! [`bpfx_exec::Region::offset_of`]).

use super::stubs::Cold;
use super::{Emitter, asm, at};
use crate::abi::{FRAME, ctx, host, x};
use bpfx_bytecode::{Operand, Pc, Reg, Size};

/// Whether an access needs a run-time check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Proven in bounds at compile time.
    Elided,
    /// Checked inline before the access.
    Checked,
}

impl Emitter<'_> {
    /// The one place that decides whether the access of `size` bytes at `base + off` (at
    /// `pc`) needs a guard. Without facts one thing is known: r10 cannot be written (the
    /// decoder rejects it), so r10 plus a constant inside the current frame is always in
    /// bounds. With facts, an access the verifier proved in bounds on every path needs none.
    pub(crate) fn access_guard(&self, pc: Pc, base: Reg, off: i16, size: u32) -> Guard {
        let off = i32::from(off);
        let frame_constant = base == Reg::R10 && (-FRAME..=-(size as i32)).contains(&off);
        let proven = self.proven.get(pc.index()).copied().unwrap_or(false);
        if frame_constant || proven {
            Guard::Elided
        } else {
            Guard::Checked
        }
    }

    /// Emits the guard for an access of `size` bytes at `base + off`, if it needs one.
    pub(super) fn emit_guard(&mut self, pc: Pc, base: Reg, off: i16, size: u32, write: bool) {
        if self.access_guard(pc, base, off, size) == Guard::Elided {
            return;
        }
        let b = host(base);
        let from = self.new_label();
        let resume = self.new_label();
        self.emit_lea(x::R10, b, i32::from(off));
        asm!(self
            ; sub r10, [BYTE r12 + ctx::INPUT_BASE]
            ; cmp r10, [BYTE r12 + ctx::input_ok(size)]
            ; jae =>from
            ; =>resume
        );
        self.cold.push(Cold::Guard {
            from,
            resume,
            pc,
            base: b,
            off: i32::from(off),
            size,
            write,
        });
    }

    pub(super) fn lower_load(
        &mut self,
        pc: Pc,
        size: Size,
        signed: bool,
        dst: Reg,
        base: Reg,
        off: i16,
    ) {
        self.emit_guard(pc, base, off, size.bytes(), false);
        let (d, b, off) = (host(dst), host(base), i32::from(off));
        match (size, signed) {
            (Size::B, false) => at!(self; (movzx Rd(d), BYTE) [b, off] ()),
            (Size::H, false) => at!(self; (movzx Rd(d), WORD) [b, off] ()),
            (Size::W, false) => at!(self; (mov Rd(d), DWORD) [b, off] ()),
            (Size::Dw, _) => at!(self; (mov Rq(d), QWORD) [b, off] ()),
            (Size::B, true) => at!(self; (movsx Rq(d), BYTE) [b, off] ()),
            (Size::H, true) => at!(self; (movsx Rq(d), WORD) [b, off] ()),
            (Size::W, true) => at!(self; (movsxd Rq(d), DWORD) [b, off] ()),
        }
    }

    pub(super) fn lower_store(&mut self, pc: Pc, size: Size, base: Reg, off: i16, src: Operand) {
        self.emit_guard(pc, base, off, size.bytes(), true);
        let (b, off) = (host(base), i32::from(off));
        match (size, src) {
            (Size::B, Operand::Reg(s)) => at!(self; (mov BYTE) [b, off] (, Rb(host(s)))),
            (Size::H, Operand::Reg(s)) => at!(self; (mov WORD) [b, off] (, Rw(host(s)))),
            (Size::W, Operand::Reg(s)) => at!(self; (mov DWORD) [b, off] (, Rd(host(s)))),
            (Size::Dw, Operand::Reg(s)) => at!(self; (mov QWORD) [b, off] (, Rq(host(s)))),
            // Immediates are truncated to the size; at 8 bytes the imm32 is sign-extended.
            (Size::B, Operand::Imm(i)) => at!(self; (mov BYTE) [b, off] (, i as i8)),
            (Size::H, Operand::Imm(i)) => at!(self; (mov WORD) [b, off] (, i as i16)),
            (Size::W, Operand::Imm(i)) => at!(self; (mov DWORD) [b, off] (, i)),
            (Size::Dw, Operand::Imm(i)) => at!(self; (mov QWORD) [b, off] (, i)),
        }
    }

    /// `ldabs`/`ldind`: r0 = the big-endian value at input offset `index + imm` (wrapping);
    /// out of bounds, the whole program returns 0 at once (the `halt` stub).
    pub(super) fn lower_packet(&mut self, size: Size, index: Option<Reg>, imm: i32) {
        let halt = self.stubs.halt;
        match index {
            Some(r) => self.emit_lea(x::R11, host(r), imm),
            None => self.emit_mov_imm(bpfx_bytecode::Width::W64, x::R11, imm),
        }
        asm!(self
            ; cmp r11, [BYTE r12 + ctx::input_ok(size.bytes())]
            ; jae =>halt
            ; add r11, [BYTE r12 + ctx::INPUT_BASE]
        );
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
