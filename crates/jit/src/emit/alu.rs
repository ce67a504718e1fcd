//! ALU and ALU64: arithmetic, logic, shifts, division, `neg`, `movsx`, byte order, `lddw`.
//!
//! 32-bit forms use 32-bit x86 operations, whose results the hardware zero-extends, which is
//! exactly eBPF's rule; a 32-bit `mov` to itself is therefore never skipped.

use super::{Emitter, asm, wide};
use crate::abi::{host, x};
use bpfx_bytecode::{AluOp, ByteOrder, Imm64, Operand, Pc, Reg, Size, Width};
use bpfx_exec::TrapKind;

/// Two-operand arithmetic and logic with an `op r/m, imm` form (and `cmp`, for branches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Cmp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shift {
    Shl,
    Shr,
    Sar,
}

impl Emitter<'_> {
    pub(super) fn lower_alu(&mut self, width: Width, op: AluOp, dst: Reg, src: Operand) {
        let d = host(dst);
        let arith = match op {
            AluOp::Add => Some(Arith::Add),
            AluOp::Sub => Some(Arith::Sub),
            AluOp::And => Some(Arith::And),
            AluOp::Or => Some(Arith::Or),
            AluOp::Xor => Some(Arith::Xor),
            _ => None,
        };
        if let Some(a) = arith {
            match src {
                Operand::Reg(s) => self.emit_arith_rr(width, a, d, host(s)),
                Operand::Imm(i) => self.emit_arith_ri(width, a, d, i),
            }
            return;
        }
        let shift = match op {
            AluOp::Lsh => Some(Shift::Shl),
            AluOp::Rsh => Some(Shift::Shr),
            AluOp::Arsh => Some(Shift::Sar),
            _ => None,
        };
        if let Some(sh) = shift {
            match src {
                Operand::Reg(s) => self.emit_shift_reg(width, sh, d, host(s)),
                Operand::Imm(i) => self.emit_shift_imm(width, sh, d, i),
            }
            return;
        }
        match (op, src) {
            (AluOp::Mov, Operand::Reg(s)) => self.emit_mov(width, d, host(s)),
            (AluOp::Mov, Operand::Imm(i)) => self.emit_mov_imm(width, d, i),
            // Two-operand `imul` leaves rax and rdx alone, and its low half is the same for
            // signed and unsigned operands, so multiplication needs no register juggling.
            (AluOp::Mul, Operand::Reg(s)) => wide!(self, width; imul R(d), R(host(s))),
            (AluOp::Mul, Operand::Imm(i)) if self.blinds(i64::from(i)) => {
                self.emit_blinded_sext(x::R11, i);
                wide!(self, width; imul R(d), R(x::R11));
            }
            (AluOp::Mul, Operand::Imm(i)) => match i8::try_from(i) {
                Ok(i8v) => wide!(self, width; imul R(d), R(d), BYTE i8v),
                Err(_) => wide!(self, width; imul R(d), R(d), DWORD i),
            },
            _ => self.lower_divmod(width, op, d, src),
        }
    }

    /// `d op= s`.
    pub(super) fn emit_arith_rr(&mut self, width: Width, a: Arith, d: u8, s: u8) {
        match a {
            Arith::Add => wide!(self, width; add R(d), R(s)),
            Arith::Sub => wide!(self, width; sub R(d), R(s)),
            Arith::And => wide!(self, width; and R(d), R(s)),
            Arith::Or => wide!(self, width; or R(d), R(s)),
            Arith::Xor => wide!(self, width; xor R(d), R(s)),
            Arith::Cmp => wide!(self, width; cmp R(d), R(s)),
        }
    }

    /// `d op= imm` (sign-extended at 64 bits, as eBPF defines), with the imm8 form when the
    /// value fits.
    pub(super) fn emit_arith_ri(&mut self, width: Width, a: Arith, d: u8, imm: i32) {
        if self.blinds(i64::from(imm)) {
            // The operand goes through a scratch register other than `d`.
            let tmp = if d == x::R11 { x::R10 } else { x::R11 };
            self.emit_blinded_sext(tmp, imm);
            self.emit_arith_rr(width, a, d, tmp);
            return;
        }
        match (a, i8::try_from(imm)) {
            (Arith::Add, Ok(b)) => wide!(self, width; add R(d), BYTE b),
            (Arith::Sub, Ok(b)) => wide!(self, width; sub R(d), BYTE b),
            (Arith::And, Ok(b)) => wide!(self, width; and R(d), BYTE b),
            (Arith::Or, Ok(b)) => wide!(self, width; or R(d), BYTE b),
            (Arith::Xor, Ok(b)) => wide!(self, width; xor R(d), BYTE b),
            (Arith::Add, Err(_)) => wide!(self, width; add R(d), DWORD imm),
            (Arith::Sub, Err(_)) => wide!(self, width; sub R(d), DWORD imm),
            (Arith::And, Err(_)) => wide!(self, width; and R(d), DWORD imm),
            (Arith::Or, Err(_)) => wide!(self, width; or R(d), DWORD imm),
            (Arith::Xor, Err(_)) => wide!(self, width; xor R(d), DWORD imm),
            (Arith::Cmp, Ok(b)) => self.emit_cmp_imm8(width, d, b),
            (Arith::Cmp, Err(_)) => wide!(self, width; cmp R(d), DWORD imm),
        }
    }

    /// `cmp d, imm8` (sign-extended), encoded here: dynasm's table lists `cmp r/m, imm32`
    /// first and picks it for every immediate, three bytes longer. The REX prefix is emitted
    /// only when the width or the register needs it.
    fn emit_cmp_imm8(&mut self, width: Width, d: u8, imm: i8) {
        use dynasmrt::DynasmApi;
        let rex = 0x40 | if width == Width::W64 { 0x08 } else { 0 } | (d >> 3);
        if rex != 0x40 {
            self.ops.push(rex);
        }
        // 83 /7 ib: cmp r/m, imm8; ModRM mod = 11 (register), reg = 7 (the /7), rm = d.
        self.ops.push(0x83);
        self.ops.push(0xf8 | (d & 7));
        self.ops.push(imm as u8);
    }

    /// Shift by an immediate, masked to the width like every eBPF shift.
    fn emit_shift_imm(&mut self, width: Width, sh: Shift, d: u8, imm: i32) {
        let n = (imm as u32 & (width.bits() - 1)) as i8;
        if n == 0 {
            // A zero shift still zero-extends a 32-bit destination.
            self.emit_mov(width, d, d);
            return;
        }
        match sh {
            Shift::Shl => wide!(self, width; shl R(d), BYTE n),
            Shift::Shr => wide!(self, width; shr R(d), BYTE n),
            Shift::Sar => wide!(self, width; sar R(d), BYTE n),
        }
    }

    /// Shift `r` by cl; x86 masks the count to 5 or 6 bits, exactly eBPF's rule.
    fn emit_shift_cl(&mut self, width: Width, sh: Shift, r: u8) {
        match sh {
            Shift::Shl => wide!(self, width; shl R(r), cl),
            Shift::Shr => wide!(self, width; shr R(r), cl),
            Shift::Sar => wide!(self, width; sar R(r), cl),
        }
    }

    /// Shift by a register. x86 takes a variable count only in cl, and eBPF r4 lives in rcx:
    /// when the count is r4 it is already there; otherwise rcx is parked in r11 while cl holds
    /// the count, and when the destination is r4 itself the shift operates on the parked copy.
    fn emit_shift_reg(&mut self, width: Width, sh: Shift, d: u8, s: u8) {
        if s == x::RCX {
            self.emit_shift_cl(width, sh, d);
            return;
        }
        asm!(self
            ; mov r11, rcx
            ; mov ecx, Rd(s)
        );
        if d == x::RCX {
            self.emit_shift_cl(width, sh, x::R11);
        } else {
            self.emit_shift_cl(width, sh, d);
        }
        asm!(self; mov rcx, r11);
    }

    /// Division and modulo, unsigned and signed. x86 `div` takes the dividend in rdx:rax and
    /// leaves the quotient in rax and the remainder in rdx, where eBPF r0 and r3 live: the
    /// divisor goes to r11 first (it may be r0 or r3), rax and rdx are parked in r9 and r10
    /// (unless they are the destination) and restored after. A zero divisor and, for the
    /// signed forms, -1 (where `idiv` would fault on MIN / -1) never reach the instruction.
    fn lower_divmod(&mut self, width: Width, op: AluOp, d: u8, src: Operand) {
        let signed = matches!(op, AluOp::Sdiv | AluOp::Smod);
        let rem = matches!(op, AluOp::Mod | AluOp::Smod);
        match src {
            Operand::Imm(0) => self.emit_div_by_zero(width, rem, d),
            Operand::Imm(-1) if signed => self.emit_div_by_minus_one(width, rem, d),
            Operand::Imm(i) => {
                self.emit_mov_imm(width, x::R11, i);
                self.emit_div_core(width, signed, rem, d);
            }
            Operand::Reg(s) => {
                let zero = self.new_label();
                let minus_one = self.new_label();
                let done = self.new_label();
                self.emit_mov(width, x::R11, host(s));
                wide!(self, width; test R(x::R11), R(x::R11));
                asm!(self; jz =>zero);
                if signed {
                    self.emit_arith_ri(width, Arith::Cmp, x::R11, -1);
                    asm!(self; je =>minus_one);
                }
                self.emit_div_core(width, signed, rem, d);
                asm!(self; jmp =>done; =>zero);
                self.emit_div_by_zero(width, rem, d);
                if signed {
                    asm!(self; jmp =>done; =>minus_one);
                    self.emit_div_by_minus_one(width, rem, d);
                }
                asm!(self; =>done);
            }
        }
    }

    /// `d / 0 = 0`; `d % 0 = d` (at 32 bits its low half, zero-extended).
    fn emit_div_by_zero(&mut self, width: Width, rem: bool, d: u8) {
        if rem {
            self.emit_mov(width, d, d);
        } else {
            self.emit_zero(d);
        }
    }

    /// `d / -1 = -d` (MIN stays MIN, as the wrapping negation gives); `d % -1 = 0`.
    fn emit_div_by_minus_one(&mut self, width: Width, rem: bool, d: u8) {
        if rem {
            self.emit_zero(d);
        } else {
            wide!(self, width; neg R(d));
        }
    }

    /// `d = d / r11` or `d % r11`, the divisor known to be neither 0 nor (signed) -1.
    fn emit_div_core(&mut self, width: Width, signed: bool, rem: bool, d: u8) {
        if d != x::RAX {
            asm!(self; mov r9, rax);
        }
        if d != x::RDX {
            asm!(self; mov r10, rdx);
        }
        self.emit_mov(width, x::RAX, d);
        match (signed, width) {
            (false, _) => asm!(self; xor edx, edx),
            (true, Width::W32) => asm!(self; cdq),
            (true, Width::W64) => asm!(self; cqo),
        }
        if signed {
            wide!(self, width; idiv R(x::R11));
        } else {
            wide!(self, width; div R(x::R11));
        }
        let result = if rem { x::RDX } else { x::RAX };
        // The 32-bit forms wrote eax/edx, so the result is already zero-extended.
        self.emit_mov(Width::W64, d, result);
        if d != x::RAX {
            asm!(self; mov rax, r9);
        }
        if d != x::RDX {
            asm!(self; mov rdx, r10);
        }
    }

    pub(super) fn lower_neg(&mut self, width: Width, dst: Reg) {
        wide!(self, width; neg R(host(dst)));
    }

    pub(super) fn lower_movsx(&mut self, width: Width, from: Size, dst: Reg, src: Reg) {
        let (d, s) = (host(dst), host(src));
        match (width, from) {
            (Width::W64, Size::B) => asm!(self; movsx Rq(d), Rb(s)),
            (Width::W64, Size::H) => asm!(self; movsx Rq(d), Rw(s)),
            (Width::W64, Size::W) => asm!(self; movsxd Rq(d), Rd(s)),
            (Width::W32, Size::B) => asm!(self; movsx Rd(d), Rb(s)),
            (Width::W32, Size::H) => asm!(self; movsx Rd(d), Rw(s)),
            // Not produced by the decoder; sign-extending a value to its own width is a move.
            (_, Size::W | Size::Dw) => self.emit_mov(width, d, s),
        }
    }

    pub(super) fn lower_endian(&mut self, order: ByteOrder, bits: u32, dst: Reg) {
        let d = host(dst);
        match (order, bits) {
            // x86-64 is little-endian: `le` only truncates.
            (ByteOrder::Le, 16) => asm!(self; movzx Rd(d), Rw(d)),
            (ByteOrder::Le, 32) => asm!(self; mov Rd(d), Rd(d)),
            (ByteOrder::Le, _) => {}
            (ByteOrder::Be | ByteOrder::Swap, 16) => asm!(self
                ; rol Rw(d), 8
                ; movzx Rd(d), Rw(d)
            ),
            (ByteOrder::Be | ByteOrder::Swap, 32) => asm!(self; bswap Rd(d)),
            (ByteOrder::Be | ByteOrder::Swap, _) => asm!(self; bswap Rq(d)),
        }
    }

    pub(super) fn lower_lddw(&mut self, pc: Pc, dst: Reg, value: Imm64) {
        match value {
            Imm64::Value(v) => self.emit_mov_imm64(host(dst), v),
            // The decoder guarantees the target is an instruction inside the program.
            Imm64::Func { off } => match pc.offset(off) {
                Some(target) => self.emit_mov_imm64(host(dst), u64::from(target.0)),
                None => self.emit_trap_now(pc, TrapKind::FellOffEnd),
            },
            Imm64::MapFd(_)
            | Imm64::MapValue { .. }
            | Imm64::BtfId(_)
            | Imm64::MapIdx(_)
            | Imm64::MapIdxValue { .. } => self.emit_trap_now(pc, TrapKind::Unsupported),
        }
    }
}
