//! Constant folding of scalar operations, exactly as engines compute them (DESIGN.md
//! "Semantics"). Exactness matters: a folded constant can become a pointer offset, and an access
//! through a pointer with a known offset may run without a guard. A test compares every
//! function here with the reference interpreter's.

use bpfx_bytecode::{AluOp, ByteOrder, Size, Width};

/// `dst op src` at `width`, zero-extended for 32-bit forms.
pub(crate) fn alu(width: Width, op: AluOp, dst: u64, src: u64) -> u64 {
    match width {
        Width::W64 => alu64(op, dst, src),
        Width::W32 => u64::from(alu32(op, dst as u32, src as u32)),
    }
}

fn alu64(op: AluOp, d: u64, s: u64) -> u64 {
    match op {
        AluOp::Add => d.wrapping_add(s),
        AluOp::Sub => d.wrapping_sub(s),
        AluOp::Mul => d.wrapping_mul(s),
        AluOp::Div => d.checked_div(s).unwrap_or(0),
        AluOp::Sdiv if s == 0 => 0,
        AluOp::Sdiv => (d as i64).wrapping_div(s as i64) as u64,
        AluOp::Or => d | s,
        AluOp::And => d & s,
        AluOp::Lsh => d << (s & 63),
        AluOp::Rsh => d >> (s & 63),
        AluOp::Mod => d.checked_rem(s).unwrap_or(d),
        AluOp::Smod if s == 0 => d,
        AluOp::Smod => (d as i64).wrapping_rem(s as i64) as u64,
        AluOp::Xor => d ^ s,
        AluOp::Mov => s,
        AluOp::Arsh => ((d as i64) >> (s & 63)) as u64,
    }
}

fn alu32(op: AluOp, d: u32, s: u32) -> u32 {
    match op {
        AluOp::Add => d.wrapping_add(s),
        AluOp::Sub => d.wrapping_sub(s),
        AluOp::Mul => d.wrapping_mul(s),
        AluOp::Div => d.checked_div(s).unwrap_or(0),
        AluOp::Sdiv if s == 0 => 0,
        AluOp::Sdiv => (d as i32).wrapping_div(s as i32) as u32,
        AluOp::Or => d | s,
        AluOp::And => d & s,
        AluOp::Lsh => d << (s & 31),
        AluOp::Rsh => d >> (s & 31),
        AluOp::Mod => d.checked_rem(s).unwrap_or(d),
        AluOp::Smod if s == 0 => d,
        AluOp::Smod => (d as i32).wrapping_rem(s as i32) as u32,
        AluOp::Xor => d ^ s,
        AluOp::Mov => s,
        AluOp::Arsh => ((d as i32) >> (s & 31)) as u32,
    }
}

/// `-dst` at `width` (the scalar domain negates through subtraction; tests compare with this).
#[cfg(test)]
pub(crate) fn neg(width: Width, d: u64) -> u64 {
    match width {
        Width::W64 => d.wrapping_neg(),
        Width::W32 => u64::from((d as u32).wrapping_neg()),
    }
}

/// Sign-extends the low `from` bits.
pub(crate) fn sign_extend(from: Size, v: u64) -> u64 {
    match from {
        Size::B => v as u8 as i8 as i64 as u64,
        Size::H => v as u16 as i16 as i64 as u64,
        Size::W => v as u32 as i32 as i64 as u64,
        Size::Dw => v,
    }
}

/// `movsx`: sign-extend from `from`, then zero-extend from `width`.
pub(crate) fn movsx(width: Width, from: Size, v: u64) -> u64 {
    let x = sign_extend(from, v);
    match width {
        Width::W64 => x,
        Width::W32 => u64::from(x as u32),
    }
}

/// Byte-order operations on the low `bits` bits, zero-extended (little-endian guest).
pub(crate) fn endian(order: ByteOrder, bits: u32, d: u64) -> u64 {
    match (order, bits) {
        (ByteOrder::Le, 16) => u64::from(d as u16),
        (ByteOrder::Le, 32) => u64::from(d as u32),
        (ByteOrder::Le, _) => d,
        (_, 16) => u64::from((d as u16).swap_bytes()),
        (_, 32) => u64::from((d as u32).swap_bytes()),
        (_, _) => d.swap_bytes(),
    }
}

/// The value of an immediate operand (sign-extended to 64 bits).
pub(crate) const fn imm(i: i32) -> u64 {
    i as i64 as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_interp::alu as reference;

    const EDGES: [u64; 14] = [
        0,
        1,
        2,
        7,
        31,
        32,
        63,
        64,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        i64::MIN as u64,
        i64::MAX as u64,
        u64::MAX,
    ];

    #[test]
    fn folding_matches_the_reference_interpreter() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut vals: Vec<u64> = EDGES.to_vec();
        for _ in 0..40 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            vals.push(seed);
            vals.push(seed.wrapping_neg() & 0xffff_ffff);
        }
        for w in [Width::W32, Width::W64] {
            for op in AluOp::ALL {
                for &a in &vals {
                    for &b in &vals {
                        assert_eq!(
                            alu(w, op, a, b),
                            reference::alu(w, op, a, b),
                            "{op:?} {w:?} {a:#x} {b:#x}"
                        );
                    }
                }
            }
            for &a in &vals {
                assert_eq!(neg(w, a), reference::neg(w, a));
                for from in [Size::B, Size::H, Size::W] {
                    if w == Width::W32 && from == Size::W {
                        continue;
                    }
                    assert_eq!(movsx(w, from, a), reference::movsx(w, from, a));
                }
            }
        }
        for &a in &vals {
            for order in [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap] {
                for bits in [16, 32, 64] {
                    assert_eq!(endian(order, bits, a), reference::endian(order, bits, a));
                }
            }
            for size in [Size::B, Size::H, Size::W, Size::Dw] {
                assert_eq!(sign_extend(size, a), reference::sign_extend(size, a));
            }
        }
    }
}
