//! What the ALU instructions compute, as pure functions: the ISA's arithmetic, stated once for
//! every stage that needs it. The interpreter executes with these functions, the verifier folds
//! constants with them (a folded constant can become a pointer offset, so it must be exactly what
//! the engines compute), and the JIT's tests use them as the specification of an instruction.
//!
//! Each function takes register values as `u64` and returns the new destination value, already
//! zero-extended for 32-bit forms. The rules (DESIGN.md "Semantics", RFC 9669, the kernel where
//! the RFC leaves room): division by zero gives 0; modulo by zero leaves `dst` (its low half for
//! 32-bit forms); signed `MIN / -1` gives `MIN` and `MIN % -1` gives 0; shift counts are masked
//! to the width; 32-bit results are zero-extended.

use crate::{AluOp, ByteOrder, Size, Width};

/// The 64-bit value of an immediate operand: RFC 9669 sign-extends the 32-bit `imm` field.
/// A 32-bit operation then uses the low half, which is the immediate unchanged.
pub const fn imm_value(imm: i32) -> u64 {
    imm as i64 as u64
}

/// `dst op src` at `width`. `src` is the operand's value (a register, or [`imm_value`]).
///
/// Division by zero gives 0; modulo by zero leaves `dst` (its low half for 32-bit forms);
/// signed `MIN / -1` gives `MIN` and `MIN % -1` gives 0; shift counts are masked to the width;
/// signed division and modulo truncate toward zero (as C does).
pub fn alu(width: Width, op: AluOp, dst: u64, src: u64) -> u64 {
    match width {
        Width::W64 => alu64(op, dst, src),
        Width::W32 => u64::from(alu32(op, dst as u32, src as u32)),
    }
}

fn alu64(op: AluOp, dst: u64, src: u64) -> u64 {
    match op {
        AluOp::Add => dst.wrapping_add(src),
        AluOp::Sub => dst.wrapping_sub(src),
        AluOp::Mul => dst.wrapping_mul(src),
        AluOp::Div => dst.checked_div(src).unwrap_or(0),
        // `wrapping_div` is exactly the `MIN / -1 = MIN` rule; zero is handled first.
        AluOp::Sdiv if src == 0 => 0,
        AluOp::Sdiv => (dst as i64).wrapping_div(src as i64) as u64,
        AluOp::Or => dst | src,
        AluOp::And => dst & src,
        AluOp::Lsh => dst << (src & 63),
        AluOp::Rsh => dst >> (src & 63),
        AluOp::Mod => dst.checked_rem(src).unwrap_or(dst),
        // `wrapping_rem` gives `MIN % -1 = 0`.
        AluOp::Smod if src == 0 => dst,
        AluOp::Smod => (dst as i64).wrapping_rem(src as i64) as u64,
        AluOp::Xor => dst ^ src,
        AluOp::Mov => src,
        AluOp::Arsh => ((dst as i64) >> (src & 63)) as u64,
    }
}

fn alu32(op: AluOp, dst: u32, src: u32) -> u32 {
    match op {
        AluOp::Add => dst.wrapping_add(src),
        AluOp::Sub => dst.wrapping_sub(src),
        AluOp::Mul => dst.wrapping_mul(src),
        AluOp::Div => dst.checked_div(src).unwrap_or(0),
        AluOp::Sdiv if src == 0 => 0,
        AluOp::Sdiv => (dst as i32).wrapping_div(src as i32) as u32,
        AluOp::Or => dst | src,
        AluOp::And => dst & src,
        AluOp::Lsh => dst << (src & 31),
        AluOp::Rsh => dst >> (src & 31),
        AluOp::Mod => dst.checked_rem(src).unwrap_or(dst),
        AluOp::Smod if src == 0 => dst,
        AluOp::Smod => (dst as i32).wrapping_rem(src as i32) as u32,
        AluOp::Xor => dst ^ src,
        AluOp::Mov => src,
        AluOp::Arsh => ((dst as i32) >> (src & 31)) as u32,
    }
}

/// `-dst` at `width` (two's complement, so `-MIN = MIN`).
pub fn neg(width: Width, dst: u64) -> u64 {
    match width {
        Width::W64 => dst.wrapping_neg(),
        Width::W32 => u64::from((dst as u32).wrapping_neg()),
    }
}

/// Sign-extends the low `from` bits of `value` to 64 bits, without any width truncation.
pub fn sign_extend(from: Size, value: u64) -> u64 {
    match from {
        Size::B => value as u8 as i8 as i64 as u64,
        Size::H => value as u16 as i16 as i64 as u64,
        Size::W => value as u32 as i32 as i64 as u64,
        Size::Dw => value,
    }
}

/// `movsx`: sign-extend the low `from` bits of `src`, then zero-extend the result from `width`.
pub fn movsx(width: Width, from: Size, src: u64) -> u64 {
    let v = sign_extend(from, src);
    match width {
        Width::W64 => v,
        Width::W32 => u64::from(v as u32),
    }
}

/// Byte-order operations on the low `bits` (16, 32 or 64) of `dst`, zero-extended.
///
/// bpfx's guest byte order is little-endian, so `le` only truncates, and `be` and `bswap` both
/// reverse the bytes of the low `bits`. A `bits` value the decoder never produces is treated as
/// 64.
pub fn endian(order: ByteOrder, bits: u32, dst: u64) -> u64 {
    match (order, bits) {
        (ByteOrder::Le, 16) => u64::from(dst as u16),
        (ByteOrder::Le, 32) => u64::from(dst as u32),
        (ByteOrder::Le, _) => dst,
        (ByteOrder::Be | ByteOrder::Swap, 16) => u64::from((dst as u16).swap_bytes()),
        (ByteOrder::Be | ByteOrder::Swap, 32) => u64::from((dst as u32).swap_bytes()),
        (ByteOrder::Be | ByteOrder::Swap, _) => dst.swap_bytes(),
    }
}

/// The register value of a load of `size` bytes whose little-endian value is `raw`:
/// zero-extended, or sign-extended for `ldxs*`.
pub fn load_extend(size: Size, signed: bool, raw: u64) -> u64 {
    if signed { sign_extend(size, raw) } else { raw }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AluOp::*;
    use Width::{W32, W64};

    const M64: u64 = i64::MIN as u64;
    const M32: u64 = i32::MIN as u32 as u64;
    const NEG1: u64 = u64::MAX;

    #[test]
    fn division_by_zero() {
        assert_eq!(alu(W64, Div, 7, 0), 0);
        assert_eq!(alu(W32, Div, 7, 0), 0);
        assert_eq!(alu(W64, Sdiv, 7, 0), 0);
        assert_eq!(alu(W32, Sdiv, 7, 0), 0);
        assert_eq!(
            alu(W64, Mod, 0xdead_beef_0000_0007, 0),
            0xdead_beef_0000_0007
        );
        assert_eq!(
            alu(W32, Mod, 0xdead_beef_0000_0007, 0),
            7,
            "low half, zero-extended"
        );
        assert_eq!(alu(W64, Smod, NEG1, 0), NEG1);
        assert_eq!(alu(W32, Smod, NEG1, 0), 0xffff_ffff);
        // A 32-bit divisor is only the low half: 1 << 32 is zero there.
        assert_eq!(alu(W32, Div, 7, 1 << 32), 0);
        assert_eq!(alu(W32, Mod, 7, 1 << 32), 7);
    }

    #[test]
    fn signed_overflow() {
        assert_eq!(alu(W64, Sdiv, M64, NEG1), M64);
        assert_eq!(alu(W64, Smod, M64, NEG1), 0);
        assert_eq!(alu(W32, Sdiv, M32, NEG1), M32);
        assert_eq!(alu(W32, Smod, M32, NEG1), 0);
        // The 32-bit forms look only at the low halves.
        assert_eq!(alu(W32, Sdiv, 0xffff_ffff_8000_0000, 0xffff_ffff), M32);
    }

    #[test]
    fn signed_division_truncates() {
        assert_eq!(alu(W64, Sdiv, (-7i64) as u64, 2), (-3i64) as u64);
        assert_eq!(alu(W64, Smod, (-7i64) as u64, 2), NEG1);
        assert_eq!(alu(W64, Smod, 7, (-2i64) as u64), 1);
        assert_eq!(
            alu(W32, Sdiv, (-7i32) as u32 as u64, 2),
            (-3i32) as u32 as u64
        );
        assert_eq!(alu(W32, Smod, (-7i32) as u32 as u64, 2), 0xffff_ffff);
        // Unsigned division sees the same bits as huge numbers.
        assert_eq!(alu(W64, Div, (-7i64) as u64, 2), ((-7i64) as u64) / 2);
    }

    #[test]
    fn shifts_mask_the_count() {
        assert_eq!(alu(W64, Lsh, 1, 64), 1);
        assert_eq!(alu(W64, Lsh, 1, 65), 2);
        assert_eq!(alu(W32, Lsh, 1, 32), 1);
        assert_eq!(alu(W32, Lsh, 1, 33), 2);
        assert_eq!(alu(W64, Rsh, M64, 127), 1);
        assert_eq!(alu(W32, Rsh, 0x8000_0000, 63), 1);
        assert_eq!(alu(W64, Arsh, M64, 63), NEG1);
        assert_eq!(alu(W32, Arsh, 0x8000_0000, 31), 0xffff_ffff);
        assert_eq!(alu(W32, Arsh, 0x8000_0000, 32), 0x8000_0000);
        assert_eq!(alu(W64, Lsh, 1, imm_value(-1)), M64, "count -1 masks to 63");
    }

    #[test]
    fn results_of_32_bit_forms_are_zero_extended() {
        assert_eq!(alu(W32, Add, 0xffff_ffff, 1), 0);
        assert_eq!(alu(W32, Sub, 0, 1), 0xffff_ffff);
        assert_eq!(alu(W32, Mov, 0, imm_value(-1)), 0xffff_ffff);
        assert_eq!(alu(W64, Mov, 0, imm_value(-1)), NEG1);
        assert_eq!(alu(W32, Mul, 0x1_0000_0002, 3), 6);
        assert_eq!(alu(W32, Xor, NEG1, 0), 0xffff_ffff);
        assert_eq!(neg(W32, 1), 0xffff_ffff);
        assert_eq!(neg(W64, 1), NEG1);
        assert_eq!(neg(W64, M64), M64);
        assert_eq!(neg(W32, M32), M32);
    }

    #[test]
    fn immediates_sign_extend() {
        assert_eq!(imm_value(-1), NEG1);
        assert_eq!(imm_value(i32::MIN), 0xffff_ffff_8000_0000);
        assert_eq!(imm_value(i32::MAX), 0x7fff_ffff);
        // div64 by a negative immediate is unsigned division by a huge number.
        assert_eq!(alu(W64, Div, 12, imm_value(-1)), 0);
        assert_eq!(alu(W32, Div, 0xffff_fffe, imm_value(-1)), 0);
    }

    #[test]
    fn movsx_sign_extends_then_truncates_to_width() {
        assert_eq!(movsx(W64, Size::B, 0x80), 0xffff_ffff_ffff_ff80);
        assert_eq!(movsx(W32, Size::B, 0x80), 0xffff_ff80);
        assert_eq!(movsx(W64, Size::H, 0x1234_8000), 0xffff_ffff_ffff_8000);
        assert_eq!(movsx(W32, Size::H, 0x7fff), 0x7fff);
        assert_eq!(movsx(W64, Size::W, 0x8000_0000), 0xffff_ffff_8000_0000);
        assert_eq!(movsx(W64, Size::W, 0xffff_ffff_7fff_ffff), 0x7fff_ffff);
    }

    #[test]
    fn endian_forms() {
        let v = 0x1122_3344_5566_7788;
        assert_eq!(endian(ByteOrder::Le, 16, v), 0x7788);
        assert_eq!(endian(ByteOrder::Le, 32, v), 0x5566_7788);
        assert_eq!(endian(ByteOrder::Le, 64, v), v);
        assert_eq!(endian(ByteOrder::Be, 16, v), 0x8877);
        assert_eq!(endian(ByteOrder::Be, 32, v), 0x8877_6655);
        assert_eq!(endian(ByteOrder::Be, 64, v), 0x8877_6655_4433_2211);
        for bits in [16, 32, 64] {
            assert_eq!(
                endian(ByteOrder::Swap, bits, v),
                endian(ByteOrder::Be, bits, v)
            );
        }
    }

    #[test]
    fn loads_extend_by_size() {
        assert_eq!(load_extend(Size::B, false, 0xff), 0xff);
        assert_eq!(load_extend(Size::B, true, 0xff), NEG1);
        assert_eq!(load_extend(Size::H, true, 0x7fff), 0x7fff);
        assert_eq!(
            load_extend(Size::W, true, 0x8000_0000),
            0xffff_ffff_8000_0000
        );
        assert_eq!(load_extend(Size::Dw, true, M64), M64);
    }
}
