//! Strict decoding: every slot either becomes an [`Op`] or a [`DecodeError`] naming its pc.
//!
//! The rules are table-like and follow RFC 9669 with the kernel as the authority where it leaves
//! room: a field an instruction does not use must be zero; registers are r0..=r10; jump and
//! call targets must be the start of an instruction inside the program. A write to r10 decodes:
//! as in the kernel, it is an error only where it may run (the verifier rejects it on the paths
//! it explores, and an engine that meets one traps with `Unsupported` instead of executing it),
//! so dead code may hold one.

use crate::insn::{Insn, code::*};
use crate::op::*;
use thiserror::Error;

/// The largest program accepted, in slots.
pub const MAX_SLOTS: usize = 1_000_000;

/// Why a slot does not decode.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeErrorKind {
    /// The program has no instructions.
    #[error("the program is empty")]
    Empty,
    /// The byte length is not a multiple of 8.
    #[error("{0} trailing bytes after the last 8-byte instruction")]
    TrailingBytes(usize),
    /// More than [`MAX_SLOTS`] slots.
    #[error("program of {0} instructions exceeds the limit of {MAX_SLOTS}")]
    TooLong(usize),
    /// No instruction has this opcode.
    #[error("unknown opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    /// A register field above 10.
    #[error("invalid {field} register r{reg}")]
    BadRegister {
        /// `dst` or `src`.
        field: &'static str,
        /// The register number found.
        reg: u8,
    },
    /// A field the instruction does not use is not zero.
    #[error("unused field {field} must be 0, found {value}")]
    NonZeroField {
        /// `dst`, `src`, `off` or `imm`.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// A field holds a value the instruction does not define.
    #[error("invalid {field} {value} for this opcode")]
    BadField {
        /// The field.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// `lddw` is the last slot.
    #[error("lddw needs a second slot, but the program ends")]
    TruncatedLddw,
    /// The second slot of `lddw` has a non-zero opcode, register or offset.
    #[error("second slot of lddw must have code, registers and offset 0")]
    BadLddwSecondSlot,
    /// A jump or call target outside the program.
    #[error("target {target} is outside the program of {len} instructions")]
    TargetOutOfRange {
        /// The computed target slot (may be negative).
        target: i64,
        /// Program length in slots.
        len: usize,
    },
    /// A jump or call target in the second slot of an `lddw`.
    #[error("target insn #{0} is the second slot of an lddw")]
    TargetInsideLddw(u32),
}

/// A slot that does not decode, with its position and raw fields.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("insn #{pc}{}: {kind}", fmt_raw(*.insn))]
pub struct DecodeError {
    /// The slot at fault.
    pub pc: u32,
    /// The raw slot, when the error is about one.
    pub insn: Option<Insn>,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

fn fmt_raw(insn: Option<Insn>) -> String {
    insn.map(|i| format!(" ({i})")).unwrap_or_default()
}

type Result<T> = std::result::Result<T, DecodeErrorKind>;

fn reg(field: &'static str, n: u8) -> Result<Reg> {
    Reg::new(n).ok_or(DecodeErrorKind::BadRegister { field, reg: n })
}

fn zero(field: &'static str, value: i64) -> Result<()> {
    if value == 0 {
        Ok(())
    } else {
        Err(DecodeErrorKind::NonZeroField { field, value })
    }
}

fn size_of(code: u8) -> Size {
    match code & SIZE_MASK {
        SIZE_W => Size::W,
        SIZE_H => Size::H,
        SIZE_B => Size::B,
        _ => Size::Dw,
    }
}

/// Decodes the instruction at `slots[0]` (with `slots[1]` for `lddw`), without checking jump
/// targets (that needs the whole program; see [`crate::Program::decode`]).
pub fn decode_one(slots: &[Insn]) -> std::result::Result<Op, DecodeErrorKind> {
    let i = *slots.first().ok_or(DecodeErrorKind::Empty)?;
    let class = i.code & CLASS_MASK;
    match class {
        ALU | ALU64 => decode_alu(i),
        JMP | JMP32 => decode_jmp(i),
        LDX => decode_ldx(i),
        ST | STX => decode_store(i),
        _ => decode_ld(i, slots.get(1).copied()),
    }
}

fn decode_alu(i: Insn) -> Result<Op> {
    let width = if i.code & CLASS_MASK == ALU64 {
        Width::W64
    } else {
        Width::W32
    };
    let x = i.code & SRC_X != 0;
    let opbits = i.code & OP_MASK;
    let dst = reg("dst", i.dst)?;
    let op = match opbits {
        0x00 => AluOp::Add,
        0x10 => AluOp::Sub,
        0x20 => AluOp::Mul,
        0x30 => AluOp::Div,
        0x40 => AluOp::Or,
        0x50 => AluOp::And,
        0x60 => AluOp::Lsh,
        0x70 => AluOp::Rsh,
        0x90 => AluOp::Mod,
        0xa0 => AluOp::Xor,
        0xb0 => AluOp::Mov,
        0xc0 => AluOp::Arsh,
        ALU_NEG => {
            if x {
                return Err(DecodeErrorKind::UnknownOpcode(i.code));
            }
            zero("src", i64::from(i.src))?;
            zero("off", i64::from(i.off))?;
            zero("imm", i64::from(i.imm))?;
            return Ok(Op::Neg { width, dst });
        }
        ALU_END => {
            let order = match (width, x) {
                (Width::W32, false) => ByteOrder::Le,
                (Width::W32, true) => ByteOrder::Be,
                (Width::W64, false) => ByteOrder::Swap,
                (Width::W64, true) => return Err(DecodeErrorKind::UnknownOpcode(i.code)),
            };
            zero("src", i64::from(i.src))?;
            zero("off", i64::from(i.off))?;
            if !matches!(i.imm, 16 | 32 | 64) {
                return Err(DecodeErrorKind::BadField {
                    field: "imm",
                    value: i64::from(i.imm),
                });
            }
            return Ok(Op::Endian {
                order,
                bits: i.imm as u32,
                dst,
            });
        }
        _ => return Err(DecodeErrorKind::UnknownOpcode(i.code)),
    };
    // `off` selects the signed forms of div/mod and the sign-extending forms of mov.
    let op = match (op, i.off) {
        (_, 0) => op,
        (AluOp::Div, 1) => AluOp::Sdiv,
        (AluOp::Mod, 1) => AluOp::Smod,
        (AluOp::Mov, 8 | 16 | 32) if x => {
            let from = match i.off {
                8 => Size::B,
                16 => Size::H,
                _ if width == Width::W64 => Size::W,
                _ => {
                    return Err(DecodeErrorKind::BadField {
                        field: "off",
                        value: 32,
                    });
                }
            };
            zero("imm", i64::from(i.imm))?;
            return Ok(Op::Movsx {
                width,
                from,
                dst,
                src: reg("src", i.src)?,
            });
        }
        (AluOp::Div | AluOp::Mod | AluOp::Mov, off) => {
            return Err(DecodeErrorKind::BadField {
                field: "off",
                value: i64::from(off),
            });
        }
        (_, off) => {
            return Err(DecodeErrorKind::NonZeroField {
                field: "off",
                value: i64::from(off),
            });
        }
    };
    let src = if x {
        zero("imm", i64::from(i.imm))?;
        Operand::Reg(reg("src", i.src)?)
    } else {
        zero("src", i64::from(i.src))?;
        Operand::Imm(i.imm)
    };
    Ok(Op::Alu {
        width,
        op,
        dst,
        src,
    })
}

fn decode_jmp(i: Insn) -> Result<Op> {
    let width = if i.code & CLASS_MASK == JMP {
        Width::W64
    } else {
        Width::W32
    };
    let x = i.code & SRC_X != 0;
    let cond = match i.code & OP_MASK {
        JMP_JA => {
            if x {
                return Err(DecodeErrorKind::UnknownOpcode(i.code));
            }
            zero("dst", i64::from(i.dst))?;
            zero("src", i64::from(i.src))?;
            return Ok(match width {
                Width::W64 => {
                    zero("imm", i64::from(i.imm))?;
                    Op::Ja {
                        off: i32::from(i.off),
                        long: false,
                    }
                }
                Width::W32 => {
                    zero("off", i64::from(i.off))?;
                    Op::Ja {
                        off: i.imm,
                        long: true,
                    }
                }
            });
        }
        JMP_CALL if width == Width::W64 => {
            zero("off", i64::from(i.off))?;
            if x {
                zero("src", i64::from(i.src))?;
                zero("imm", i64::from(i.imm))?;
                return Ok(Op::Call(CallTarget::Register(reg("dst", i.dst)?)));
            }
            zero("dst", i64::from(i.dst))?;
            return Ok(Op::Call(match i.src {
                CALL_HELPER => CallTarget::Helper(i.imm as u32),
                CALL_LOCAL => CallTarget::Local { off: i.imm },
                CALL_KFUNC => CallTarget::Kfunc(i.imm),
                s => {
                    return Err(DecodeErrorKind::BadField {
                        field: "src",
                        value: i64::from(s),
                    });
                }
            }));
        }
        // `may_goto` (`JMP | JCOND`, src 0 the only condition the kernel defines).
        0xe0 if width == Width::W64 && !x => {
            zero("dst", i64::from(i.dst))?;
            zero("src", i64::from(i.src))?;
            zero("imm", i64::from(i.imm))?;
            return Ok(Op::MayGoto { off: i.off });
        }
        JMP_EXIT if width == Width::W64 && !x => {
            zero("dst", i64::from(i.dst))?;
            zero("src", i64::from(i.src))?;
            zero("off", i64::from(i.off))?;
            zero("imm", i64::from(i.imm))?;
            return Ok(Op::Exit);
        }
        0x10 => Cond::Eq,
        0x20 => Cond::Gt,
        0x30 => Cond::Ge,
        0x40 => Cond::Set,
        0x50 => Cond::Ne,
        0x60 => Cond::Sgt,
        0x70 => Cond::Sge,
        0xa0 => Cond::Lt,
        0xb0 => Cond::Le,
        0xc0 => Cond::Slt,
        0xd0 => Cond::Sle,
        _ => return Err(DecodeErrorKind::UnknownOpcode(i.code)),
    };
    let lhs = reg("dst", i.dst)?;
    let rhs = if x {
        zero("imm", i64::from(i.imm))?;
        Operand::Reg(reg("src", i.src)?)
    } else {
        zero("src", i64::from(i.src))?;
        Operand::Imm(i.imm)
    };
    Ok(Op::Branch {
        width,
        cond,
        lhs,
        rhs,
        off: i.off,
    })
}

fn decode_ldx(i: Insn) -> Result<Op> {
    let size = size_of(i.code);
    let signed = match i.code & MODE_MASK {
        MODE_MEM => false,
        MODE_MEMSX if size != Size::Dw => true,
        _ => return Err(DecodeErrorKind::UnknownOpcode(i.code)),
    };
    zero("imm", i64::from(i.imm))?;
    Ok(Op::Load {
        size,
        signed,
        dst: reg("dst", i.dst)?,
        base: reg("src", i.src)?,
        off: i.off,
    })
}

fn decode_store(i: Insn) -> Result<Op> {
    let size = size_of(i.code);
    let base = reg("dst", i.dst)?;
    match (i.code & CLASS_MASK, i.code & MODE_MASK) {
        (ST, MODE_MEM) => {
            zero("src", i64::from(i.src))?;
            Ok(Op::Store {
                size,
                base,
                off: i.off,
                src: Operand::Imm(i.imm),
            })
        }
        (STX, MODE_MEM) => {
            zero("imm", i64::from(i.imm))?;
            Ok(Op::Store {
                size,
                base,
                off: i.off,
                src: Operand::Reg(reg("src", i.src)?),
            })
        }
        (STX, MODE_ATOMIC) if matches!(size, Size::W | Size::Dw) => {
            let width = if size == Size::Dw {
                Width::W64
            } else {
                Width::W32
            };
            let src = reg("src", i.src)?;
            let (op, fetch) = match i.imm {
                ATOMIC_XCHG => (AtomicOp::Xchg, true),
                ATOMIC_CMPXCHG => (AtomicOp::Cmpxchg, true),
                imm => {
                    let op = match imm & !ATOMIC_FETCH {
                        0x00 => AtomicOp::Add,
                        0x40 => AtomicOp::Or,
                        0x50 => AtomicOp::And,
                        0xa0 => AtomicOp::Xor,
                        _ => {
                            return Err(DecodeErrorKind::BadField {
                                field: "imm",
                                value: i64::from(imm),
                            });
                        }
                    };
                    (op, imm & ATOMIC_FETCH != 0)
                }
            };
            Ok(Op::Atomic {
                width,
                op,
                fetch,
                base,
                off: i.off,
                src,
            })
        }
        _ => Err(DecodeErrorKind::UnknownOpcode(i.code)),
    }
}

fn decode_ld(i: Insn, next: Option<Insn>) -> Result<Op> {
    let size = size_of(i.code);
    match i.code & MODE_MASK {
        MODE_IMM if size == Size::Dw => {
            let next = next.ok_or(DecodeErrorKind::TruncatedLddw)?;
            if next.code != 0 || next.dst != 0 || next.src != 0 || next.off != 0 {
                return Err(DecodeErrorKind::BadLddwSecondSlot);
            }
            zero("off", i64::from(i.off))?;
            let dst = reg("dst", i.dst)?;
            let hi_zero = || zero("imm of the second slot", i64::from(next.imm));
            let value = match i.src {
                0 => Imm64::Value(u64::from(i.imm as u32) | (u64::from(next.imm as u32) << 32)),
                1 => {
                    hi_zero()?;
                    Imm64::MapFd(i.imm)
                }
                2 => Imm64::MapValue {
                    fd: i.imm,
                    off: next.imm as u32,
                },
                3 => {
                    hi_zero()?;
                    Imm64::BtfId(i.imm)
                }
                4 => {
                    hi_zero()?;
                    Imm64::Func { off: i.imm }
                }
                5 => {
                    hi_zero()?;
                    Imm64::MapIdx(i.imm)
                }
                6 => Imm64::MapIdxValue {
                    idx: i.imm,
                    off: next.imm as u32,
                },
                s => {
                    return Err(DecodeErrorKind::BadField {
                        field: "src",
                        value: i64::from(s),
                    });
                }
            };
            Ok(Op::LoadImm64 { dst, value })
        }
        mode @ (MODE_ABS | MODE_IND) if size != Size::Dw => {
            zero("dst", i64::from(i.dst))?;
            zero("off", i64::from(i.off))?;
            let index = if mode == MODE_IND {
                Some(reg("src", i.src)?)
            } else {
                zero("src", i64::from(i.src))?;
                None
            };
            Ok(Op::LoadPacket {
                size,
                index,
                imm: i.imm,
            })
        }
        _ => Err(DecodeErrorKind::UnknownOpcode(i.code)),
    }
}
