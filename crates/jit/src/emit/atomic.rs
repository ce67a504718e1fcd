//! Atomic read-modify-write (STX | ATOMIC), always with a `lock`ed instruction.
//!
//! After the guard the address goes to r11, so the base register may be any eBPF register,
//! r0 included, even in the forms that need rax.

use super::{Emitter, asm, wide};
use crate::abi::{host, x};
use crate::analysis::plan::Addr;
use bpfx_bytecode::{AtomicOp, Pc, Reg, Width};

impl Emitter<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lower_atomic(
        &mut self,
        pc: Pc,
        width: Width,
        op: AtomicOp,
        fetch: bool,
        base: Reg,
        off: i16,
        src: Reg,
    ) {
        let m = self.emit_guard(pc, Addr::plain(base, off), width.bits() / 8, true);
        self.emit_lea_mem(x::R11, m);
        let s = host(src);
        match (op, fetch) {
            (AtomicOp::Add, false) => wide!(self, width; lock add [r11], R(s)),
            (AtomicOp::Or, false) => wide!(self, width; lock or [r11], R(s)),
            (AtomicOp::And, false) => wide!(self, width; lock and [r11], R(s)),
            (AtomicOp::Xor, false) => wide!(self, width; lock xor [r11], R(s)),
            // `xadd` writes the old value to its register (zero-extended at 32 bits).
            (AtomicOp::Add, true) => wide!(self, width; lock xadd [r11], R(s)),
            // `xchg` with memory is always locked.
            (AtomicOp::Xchg, _) => wide!(self, width; xchg [r11], R(s)),
            (AtomicOp::Cmpxchg, _) => {
                // The compare value is rax, which is eBPF r0, and the old value comes back in
                // rax, which is where eBPF wants it.
                wide!(self, width; lock cmpxchg [r11], R(s));
                if width == Width::W32 {
                    // When the compare succeeds, `cmpxchg r/m32` leaves rax's high half
                    // alone; eBPF's r0 is the old value zero-extended either way.
                    asm!(self; mov eax, eax);
                }
            }
            (AtomicOp::Or | AtomicOp::And | AtomicOp::Xor, true) => {
                self.emit_fetch_loop(width, op, s);
            }
        }
    }

    /// Fetching and/or/xor have no single x86 instruction: a `lock cmpxchg` loop, which needs
    /// rax (eBPF r0). r0 is parked in r9; when `src` is r0 its value is used from there, and
    /// it receives the old value, so r0 is not restored.
    fn emit_fetch_loop(&mut self, width: Width, op: AtomicOp, s: u8) {
        let operand = if s == x::RAX { x::R9 } else { s };
        let again = self.new_label();
        asm!(self; mov r9, rax);
        wide!(self, width; mov R(x::RAX), [r11]);
        asm!(self; =>again);
        self.emit_mov(width, x::R10, x::RAX);
        match op {
            AtomicOp::Or => wide!(self, width; or R(x::R10), R(operand)),
            AtomicOp::And => wide!(self, width; and R(x::R10), R(operand)),
            _ => wide!(self, width; xor R(x::R10), R(operand)),
        }
        wide!(self, width; lock cmpxchg [r11], R(x::R10));
        asm!(self; jne =>again);
        // The old value, zero-extended at 32 bits.
        self.emit_mov(width, s, x::RAX);
        if s != x::RAX {
            asm!(self; mov rax, r9);
        }
    }
}
