//! Encoding: the exact inverse of decoding.

use crate::insn::{Insn, code::*};
use crate::op::*;

fn size_bits(size: Size) -> u8 {
    match size {
        Size::W => SIZE_W,
        Size::H => SIZE_H,
        Size::B => SIZE_B,
        Size::Dw => SIZE_DW,
    }
}

fn alu_bits(op: AluOp) -> (u8, i16) {
    match op {
        AluOp::Add => (0x00, 0),
        AluOp::Sub => (0x10, 0),
        AluOp::Mul => (0x20, 0),
        AluOp::Div => (0x30, 0),
        AluOp::Sdiv => (0x30, 1),
        AluOp::Or => (0x40, 0),
        AluOp::And => (0x50, 0),
        AluOp::Lsh => (0x60, 0),
        AluOp::Rsh => (0x70, 0),
        AluOp::Mod => (0x90, 0),
        AluOp::Smod => (0x90, 1),
        AluOp::Xor => (0xa0, 0),
        AluOp::Mov => (0xb0, 0),
        AluOp::Arsh => (0xc0, 0),
    }
}

fn cond_bits(cond: Cond) -> u8 {
    match cond {
        Cond::Eq => 0x10,
        Cond::Gt => 0x20,
        Cond::Ge => 0x30,
        Cond::Set => 0x40,
        Cond::Ne => 0x50,
        Cond::Sgt => 0x60,
        Cond::Sge => 0x70,
        Cond::Lt => 0xa0,
        Cond::Le => 0xb0,
        Cond::Slt => 0xc0,
        Cond::Sle => 0xd0,
    }
}

fn alu_class(width: Width) -> u8 {
    match width {
        Width::W32 => ALU,
        Width::W64 => ALU64,
    }
}

fn operand(src: Operand) -> (u8, u8, i32) {
    match src {
        Operand::Reg(r) => (SRC_X, r.num(), 0),
        Operand::Imm(i) => (0, 0, i),
    }
}

/// Encodes one instruction into its slots (two for `lddw`, one otherwise), appending to `out`.
pub fn encode_into(op: &Op, out: &mut Vec<Insn>) {
    let one = |code: u8, dst: u8, src: u8, off: i16, imm: i32| Insn::new(code, dst, src, off, imm);
    let insn = match *op {
        Op::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let (bits, off) = alu_bits(op);
            let (x, s, imm) = operand(src);
            one(alu_class(width) | x | bits, dst.num(), s, off, imm)
        }
        Op::Neg { width, dst } => one(alu_class(width) | ALU_NEG, dst.num(), 0, 0, 0),
        Op::Movsx {
            width,
            from,
            dst,
            src,
        } => one(
            alu_class(width) | SRC_X | 0xb0,
            dst.num(),
            src.num(),
            from.bits() as i16,
            0,
        ),
        Op::Endian { order, bits, dst } => {
            let code = match order {
                ByteOrder::Le => ALU | ALU_END,
                ByteOrder::Be => ALU | SRC_X | ALU_END,
                ByteOrder::Swap => ALU64 | ALU_END,
            };
            one(code, dst.num(), 0, 0, bits as i32)
        }
        Op::Load {
            size,
            signed,
            dst,
            base,
            off,
        } => {
            let mode = if signed { MODE_MEMSX } else { MODE_MEM };
            one(LDX | mode | size_bits(size), dst.num(), base.num(), off, 0)
        }
        Op::Store {
            size,
            base,
            off,
            src,
        } => match src {
            Operand::Imm(imm) => one(ST | MODE_MEM | size_bits(size), base.num(), 0, off, imm),
            Operand::Reg(r) => one(
                STX | MODE_MEM | size_bits(size),
                base.num(),
                r.num(),
                off,
                0,
            ),
        },
        Op::Atomic {
            width,
            op,
            fetch,
            base,
            off,
            src,
        } => {
            let size = if width == Width::W64 { SIZE_DW } else { SIZE_W };
            let imm = match op {
                AtomicOp::Add => 0x00,
                AtomicOp::Or => 0x40,
                AtomicOp::And => 0x50,
                AtomicOp::Xor => 0xa0,
                AtomicOp::Xchg => ATOMIC_XCHG,
                AtomicOp::Cmpxchg => ATOMIC_CMPXCHG,
            } | if fetch { ATOMIC_FETCH } else { 0 };
            one(STX | MODE_ATOMIC | size, base.num(), src.num(), off, imm)
        }
        Op::LoadImm64 { dst, value } => {
            let (src, lo, hi) = match value {
                Imm64::Value(v) => (0, v as u32 as i32, (v >> 32) as u32 as i32),
                Imm64::MapFd(fd) => (1, fd, 0),
                Imm64::MapValue { fd, off } => (2, fd, off as i32),
                Imm64::BtfId(id) => (3, id, 0),
                Imm64::Func { off } => (4, off, 0),
                Imm64::MapIdx(idx) => (5, idx, 0),
                Imm64::MapIdxValue { idx, off } => (6, idx, off as i32),
            };
            out.push(one(LD | MODE_IMM | SIZE_DW, dst.num(), src, 0, lo));
            one(0, 0, 0, 0, hi)
        }
        Op::LoadPacket { size, index, imm } => match index {
            None => one(LD | MODE_ABS | size_bits(size), 0, 0, 0, imm),
            Some(r) => one(LD | MODE_IND | size_bits(size), 0, r.num(), 0, imm),
        },
        Op::Ja { off, long: false } => one(JMP | JMP_JA, 0, 0, off as i16, 0),
        Op::Ja { off, long: true } => one(JMP32 | JMP_JA, 0, 0, 0, off),
        Op::MayGoto { off } => one(JMP | 0xe0, 0, 0, off, 0),
        Op::Branch {
            width,
            cond,
            lhs,
            rhs,
            off,
        } => {
            let class = if width == Width::W64 { JMP } else { JMP32 };
            let (x, s, imm) = operand(rhs);
            one(class | x | cond_bits(cond), lhs.num(), s, off, imm)
        }
        Op::Call(target) => match target {
            CallTarget::Helper(id) => one(JMP | JMP_CALL, 0, CALL_HELPER, 0, id as i32),
            CallTarget::Local { off } => one(JMP | JMP_CALL, 0, CALL_LOCAL, 0, off),
            CallTarget::Kfunc(id) => one(JMP | JMP_CALL, 0, CALL_KFUNC, 0, id),
            CallTarget::Register(r) => one(JMP | SRC_X | JMP_CALL, r.num(), 0, 0, 0),
        },
        Op::Exit => one(JMP | JMP_EXIT, 0, 0, 0, 0),
    };
    out.push(insn);
}

/// Encodes one instruction into a fresh vector of slots.
pub fn encode(op: &Op) -> Vec<Insn> {
    let mut v = Vec::with_capacity(2);
    encode_into(op, &mut v);
    v
}
