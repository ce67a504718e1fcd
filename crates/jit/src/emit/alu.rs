//! ALU and ALU64: arithmetic, logic, shifts, division, `neg`, `movsx`, byte order, `lddw`.
//!
//! 32-bit forms use 32-bit x86 operations, whose results the hardware zero-extends, which is
//! exactly eBPF's rule; a 32-bit `mov` to itself is therefore never skipped.

use super::{Emitter, asm, direct, wide};
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

/// Which of rax (eBPF r0) and rdx (r3) a division must give back: those that are not its
/// destination and are live after it.
#[derive(Clone, Copy, Debug)]
struct Keep {
    rax: bool,
    rdx: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shift {
    Shl,
    Shr,
    Sar,
}

impl Arith {
    /// The opcode extension (`/n`) of the `83` and `81` immediate forms.
    fn ext(self) -> u8 {
        match self {
            Arith::Add => 0,
            Arith::Or => 1,
            Arith::And => 4,
            Arith::Sub => 5,
            Arith::Xor => 6,
            Arith::Cmp => 7,
        }
    }
}

impl Shift {
    /// The opcode extension (`/n`) of the shift forms (`C1`, `D3`).
    fn ext(self) -> u8 {
        match self {
            Shift::Shl => 4,
            Shift::Shr => 5,
            Shift::Sar => 7,
        }
    }
}

impl Emitter<'_> {
    pub(super) fn lower_alu(&mut self, pc: Pc, width: Width, op: AluOp, dst: Reg, src: Operand) {
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
                Operand::Reg(s) => {
                    let keep = d == x::RCX || self.plan.live_after(pc, Reg::R4);
                    self.emit_shift_reg(width, sh, d, host(s), keep);
                }
                Operand::Imm(i) => self.emit_shift_imm(width, sh, d, i),
            }
            return;
        }
        match (op, src) {
            (AluOp::Mov, Operand::Reg(s)) => self.emit_mov(width, d, host(s)),
            (AluOp::Mov, Operand::Imm(i)) => self.emit_mov_imm(width, d, i),
            // Two-operand `imul` leaves rax and rdx alone, and its low half is the same for
            // signed and unsigned operands, so multiplication needs no register juggling.
            (AluOp::Mul, Operand::Reg(s)) => {
                direct::rr2(&mut self.ops, width, [0x0f, 0xaf], d, host(s))
            }
            (AluOp::Mul, Operand::Imm(i)) if self.blinds(i64::from(i)) => {
                self.emit_blinded_sext(x::R11, i);
                wide!(self, width; imul R(d), R(x::R11));
            }
            (AluOp::Mul, Operand::Imm(i)) => match i8::try_from(i) {
                Ok(i8v) => wide!(self, width; imul R(d), R(d), BYTE i8v),
                Err(_) => wide!(self, width; imul R(d), R(d), DWORD i),
            },
            _ => {
                let keep = Keep {
                    rax: d != x::RAX && self.plan.live_after(pc, Reg::R0),
                    rdx: d != x::RDX && self.plan.live_after(pc, Reg::R3),
                };
                self.lower_divmod(width, op, d, src, keep);
            }
        }
    }

    /// `d op= s`.
    pub(super) fn emit_arith_rr(&mut self, width: Width, a: Arith, d: u8, s: u8) {
        // `op r/m, r` (rm = d), but `cmp` as dynasm picks it: `cmp r, r/m` (reg = d).
        let (opcode, reg, rm) = match a {
            Arith::Add => (0x01, s, d),
            Arith::Sub => (0x29, s, d),
            Arith::And => (0x21, s, d),
            Arith::Or => (0x09, s, d),
            Arith::Xor => (0x31, s, d),
            Arith::Cmp => (0x3b, d, s),
        };
        direct::rr(&mut self.ops, width, opcode, reg, rm);
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
            (Arith::Cmp, Ok(b)) => self.emit_cmp_imm8(width, d, b),
            (_, Ok(b)) => direct::ri8(&mut self.ops, width, 0x83, a.ext(), d, b),
            (_, Err(_)) => direct::ri32(&mut self.ops, width, 0x81, a.ext(), d, imm),
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
        direct::ri8(&mut self.ops, width, 0xc1, sh.ext(), d, n);
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
    /// when the count is r4 it is already there; otherwise, if `keep` (r4 is the destination
    /// or live after), rcx is parked in r11 while cl holds the count, and when the destination
    /// is r4 itself the shift operates on the parked copy; if not, the count just takes rcx.
    fn emit_shift_reg(&mut self, width: Width, sh: Shift, d: u8, s: u8, keep: bool) {
        if s == x::RCX {
            self.emit_shift_cl(width, sh, d);
            return;
        }
        if !keep {
            asm!(self; mov ecx, Rd(s));
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
    /// divisor goes to r11 first (it may be r0 or r3), and rax and rdx, where `keep` says so,
    /// are parked in r9 and r10 and restored after. A zero divisor and, for the signed forms,
    /// -1 (where `idiv` would fault on MIN / -1) never reach the instruction.
    fn lower_divmod(&mut self, width: Width, op: AluOp, d: u8, src: Operand, keep: Keep) {
        let signed = matches!(op, AluOp::Sdiv | AluOp::Smod);
        let rem = matches!(op, AluOp::Mod | AluOp::Smod);
        match src {
            Operand::Imm(0) => self.emit_div_by_zero(width, rem, d),
            Operand::Imm(-1) if signed => self.emit_div_by_minus_one(width, rem, d),
            Operand::Imm(i) if !signed => {
                // The divisor as eBPF sees it: sign-extended at 64 bits, then unsigned.
                let v = match width {
                    Width::W32 => u64::from(i as u32),
                    Width::W64 => i as i64 as u64,
                };
                self.emit_udiv_const(width, rem, d, i, v, keep);
            }
            Operand::Imm(i) => {
                self.emit_mov_imm(width, x::R11, i);
                self.emit_div_core(width, signed, rem, d, keep);
            }
            Operand::Reg(s) => {
                let zero = self.new_label();
                let minus_one = self.new_label();
                let done = self.new_label();
                // `mod` by zero leaves a 64-bit destination as it is: nothing to jump to.
                let zero_is_noop = rem && width == Width::W64;
                self.emit_mov(width, x::R11, host(s));
                wide!(self, width; test R(x::R11), R(x::R11));
                // Every jump here crosses at most the `div` sequence and the two special
                // cases (under 64 bytes together): rel8 reaches.
                if zero_is_noop {
                    asm!(self; jz BYTE =>done);
                } else {
                    asm!(self; jz BYTE =>zero);
                }
                if signed {
                    self.emit_arith_ri(width, Arith::Cmp, x::R11, -1);
                    asm!(self; je BYTE =>minus_one);
                }
                self.emit_div_core(width, signed, rem, d, keep);
                if !zero_is_noop {
                    asm!(self; jmp BYTE =>done; =>zero);
                    self.emit_div_by_zero(width, rem, d);
                }
                if signed {
                    asm!(self; jmp BYTE =>done; =>minus_one);
                    self.emit_div_by_minus_one(width, rem, d);
                }
                asm!(self; =>done);
            }
        }
    }

    /// Unsigned `d / v` or `d % v` for a constant `v` (> 0; `i` is the instruction's immediate,
    /// which `v` extends): a shift or a mask for powers of two, otherwise a multiplication by
    /// the reciprocal ([`udiv_magic`]) and, for `mod`, `d - q * v`. The 32-bit forms need a
    /// 64-bit product only and leave rax and rdx alone; the 64-bit ones take the high half
    /// from `mul`, so rax and rdx are parked in r9 and r10 as for `div`, and also when they
    /// hold a dividend read after `mul` clobbered them.
    fn emit_udiv_const(&mut self, width: Width, rem: bool, d: u8, i: i32, v: u64, keep: Keep) {
        if v.is_power_of_two() {
            let k = v.trailing_zeros() as i8;
            match (rem, k) {
                // x / 1 = x and x % 1 = 0 (a 32-bit `x / 1` still zero-extends).
                (false, 0) => self.emit_mov(width, d, d),
                (true, 0) => self.emit_zero(d),
                (false, _) => wide!(self, width; shr R(d), BYTE k),
                // The mask is v - 1 at the width; at 64 bits it fits a sign-extended imm32 up
                // to 2^31 - 1 and needs a register beyond.
                (true, _) => match i32::try_from(v - 1) {
                    Ok(mask) if width == Width::W64 || k < 32 => {
                        self.emit_arith_ri(width, Arith::And, d, mask)
                    }
                    _ => {
                        self.emit_mov_imm64(x::R11, v - 1);
                        wide!(self, width; and R(d), R(x::R11));
                    }
                },
            }
            return;
        }
        let (magic, shift, add) = udiv_magic(v, width.bits());
        match width {
            Width::W32 => {
                // t = (n * magic) >> 32, exact in 64 bits: both factors are below 2^32.
                asm!(self; mov r10d, Rd(d));
                self.emit_mov_imm(Width::W32, x::R11, magic as u32 as i32);
                asm!(self
                    ; imul r11, r10
                    ; shr r11, 32
                );
                let q = if add {
                    // q = (((n - t) >> 1) + t) >> shift
                    asm!(self
                        ; sub r10d, r11d
                        ; shr r10d, 1
                        ; add r10d, r11d
                    );
                    if shift > 0 {
                        asm!(self; shr r10d, shift as i8);
                    }
                    x::R10
                } else {
                    if shift > 0 {
                        asm!(self; shr r11d, shift as i8);
                    }
                    x::R11
                };
                if rem {
                    // n - q * v, all below 2^32: the low 32 bits of the product suffice.
                    if self.blinds(i64::from(i)) {
                        self.emit_blinded_u32(x::R9, i as u32);
                        asm!(self; imul Rd(q), r9d);
                    } else {
                        asm!(self; imul Rd(q), Rd(q), DWORD i);
                    }
                    asm!(self; sub Rd(d), Rd(q));
                } else {
                    asm!(self; mov Rd(d), Rd(q));
                }
            }
            Width::W64 => {
                if keep.rax || d == x::RAX {
                    asm!(self; mov r9, rax);
                }
                if keep.rdx || (rem && d == x::RDX) {
                    asm!(self; mov r10, rdx);
                }
                // The magic number first: blinding a 64-bit value uses r11.
                self.emit_mov_imm64(x::RAX, magic);
                let n = if d == x::RAX { x::R9 } else { d };
                asm!(self; mov r11, Rq(n));
                // rdx = t, the high half of n * magic.
                asm!(self; mul r11);
                let q = if add {
                    asm!(self
                        ; sub r11, rdx
                        ; shr r11, 1
                        ; add r11, rdx
                    );
                    if shift > 0 {
                        asm!(self; shr r11, shift as i8);
                    }
                    x::R11
                } else {
                    if shift > 0 {
                        asm!(self; shr rdx, shift as i8);
                    }
                    x::RDX
                };
                if rem {
                    // q = n - q * v, with n from where it was parked (rax is free now).
                    self.emit_mov_imm(Width::W64, x::RAX, i);
                    asm!(self
                        ; imul Rq(q), rax
                        ; neg Rq(q)
                    );
                    let n = match d {
                        x::RAX => x::R9,
                        x::RDX => x::R10,
                        _ => d,
                    };
                    asm!(self; add Rq(q), Rq(n));
                }
                self.emit_mov(Width::W64, d, q);
                self.emit_unpark(keep);
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
    fn emit_div_core(&mut self, width: Width, signed: bool, rem: bool, d: u8, keep: Keep) {
        if keep.rax {
            asm!(self; mov r9, rax);
        }
        if keep.rdx {
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
        self.emit_unpark(keep);
    }

    /// Restores what a division parked.
    fn emit_unpark(&mut self, keep: Keep) {
        if keep.rax {
            asm!(self; mov rax, r9);
        }
        if keep.rdx {
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
            // The decoder proved the target is an instruction inside the program.
            Imm64::Func { off } => self.emit_mov_imm64(host(dst), u64::from(pc.jump(off).0)),
            Imm64::MapFd(_)
            | Imm64::MapValue { .. }
            | Imm64::BtfId(_)
            | Imm64::MapIdx(_)
            | Imm64::MapIdxValue { .. } => self.emit_trap_now(pc, TrapKind::Unsupported),
        }
    }
}

/// The reciprocal of an unsigned divisor `v` (not 0, not a power of two) at `bits` (32 or 64),
/// by the round-up method of Granlund and Montgomery as libdivide states it: with
/// `t = (n * magic) >> bits`, the quotient `n / v` is `t >> shift`, or, when the magic number
/// needs `bits + 1` bits (`add`), `(((n - t) >> 1) + t) >> shift`.
fn udiv_magic(v: u64, bits: u32) -> (u64, u32, bool) {
    let log2 = 63 - v.leading_zeros();
    // floor(2^(bits + log2) / v) < 2^bits, since v > 2^log2.
    let num = 1u128 << (bits + log2);
    let (m, r) = ((num / u128::from(v)) as u64, (num % u128::from(v)) as u64);
    if v - r < 1 << log2 {
        // This power of two is precise enough: magic = m + 1 fits `bits` bits.
        (m + 1, log2, false)
    } else {
        // One more bit: 2 * m + (1 if 2r >= v), plus 1; the top bit is implied by the add.
        let twice = u128::from(r) * 2;
        let m2 = (u128::from(m) * 2 + u128::from(twice >= u128::from(v)) + 1) as u64;
        let m2 = if bits == 32 { m2 & 0xffff_ffff } else { m2 };
        (m2, log2, true)
    }
}

#[cfg(test)]
mod tests {
    use super::udiv_magic;

    /// The magic numbers against real division, on the divisors where the two methods part
    /// and on edge dividends.
    #[test]
    fn magic_numbers_divide_exactly() {
        let apply = |n: u64, v: u64, bits: u32| {
            let (magic, shift, add) = udiv_magic(v, bits);
            let t = ((u128::from(n) * u128::from(magic)) >> bits) as u64;
            if add {
                let mask = if bits == 32 { 0xffff_ffff } else { u64::MAX };
                ((((n.wrapping_sub(t)) & mask) >> 1) + t) >> shift
            } else {
                t >> shift
            }
        };
        let divisors = [
            3u64, 5, 6, 7, 10, 11, 13, 25, 60, 100, 125, 641, 1000, 6700417,
        ];
        let mut seed = 0x1234_5678_9abc_def0u64;
        for bits in [32u32, 64] {
            let max = if bits == 32 {
                u64::from(u32::MAX)
            } else {
                u64::MAX
            };
            let mut vs: Vec<u64> = divisors.to_vec();
            vs.extend([max, max - 1, max / 2 + 1 + 2, (max >> 1) - 1]);
            for _ in 0..200 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                vs.push((seed & max).max(3));
            }
            for &v in vs.iter().filter(|v| !v.is_power_of_two()) {
                for n in [
                    0,
                    1,
                    v - 1,
                    v,
                    v.saturating_add(1) & max,
                    max,
                    max - 1,
                    max / v * v,
                    seed & max,
                ] {
                    assert_eq!(apply(n, v, bits), n / v, "{n} / {v} at {bits} bits");
                }
            }
        }
    }
}
