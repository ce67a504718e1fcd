//! The typed instruction model: what a slot means, at the granularity the kernel groups its cases.
//!
//! Jump and call targets are kept as the signed slot offsets of the wire format (`target = pc +
//! off + 1`), so an `Op` means the same thing wherever it is printed or re-encoded; use
//! [`Op::jump_target`] to get the absolute [`Pc`].

use std::fmt;

/// A register number, `r0` to `r10`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reg(u8);

impl Reg {
    /// Return value and, after a helper call, its result.
    pub const R0: Reg = Reg(0);
    /// First argument; on entry, the pointer to the input memory or context.
    pub const R1: Reg = Reg(1);
    /// Second argument; on entry, the length of the input memory.
    pub const R2: Reg = Reg(2);
    /// Third argument.
    pub const R3: Reg = Reg(3);
    /// Fourth argument.
    pub const R4: Reg = Reg(4);
    /// Fifth argument.
    pub const R5: Reg = Reg(5);
    /// Callee-saved.
    pub const R6: Reg = Reg(6);
    /// Callee-saved.
    pub const R7: Reg = Reg(7);
    /// Callee-saved.
    pub const R8: Reg = Reg(8);
    /// Callee-saved.
    pub const R9: Reg = Reg(9);
    /// The read-only frame pointer.
    pub const R10: Reg = Reg(10);
    /// The frame pointer under its usual name.
    pub const FP: Reg = Reg::R10;
    /// Number of registers.
    pub const COUNT: usize = 11;
    /// Every register, in order.
    pub const ALL: [Reg; Reg::COUNT] = [
        Reg(0),
        Reg(1),
        Reg(2),
        Reg(3),
        Reg(4),
        Reg(5),
        Reg(6),
        Reg(7),
        Reg(8),
        Reg(9),
        Reg(10),
    ];

    /// The register numbered `n`, if `n <= 10`.
    pub const fn new(n: u8) -> Option<Reg> {
        if n <= 10 { Some(Reg(n)) } else { None }
    }

    /// The register number, 0..=10.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The register number as stored in a slot.
    pub const fn num(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A program counter: the index of an 8-byte slot. `Display` prints `insn #N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pc(pub u32);

impl Pc {
    /// The slot index as `usize`.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The pc reached by a relative jump of `off` slots from this one (`pc + off + 1`), if it is
    /// representable (it may still lie outside the program).
    pub fn offset(self, off: i32) -> Option<Pc> {
        let t = i64::from(self.0) + i64::from(off) + 1;
        u32::try_from(t).ok().map(Pc)
    }
}

impl fmt::Display for Pc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "insn #{}", self.0)
    }
}

/// Operation width of ALU, jump and atomic instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit: operands are the low halves, results are zero-extended.
    W32,
    /// 64-bit.
    W64,
}

impl Width {
    /// The width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Width::W32 => 32,
            Width::W64 => 64,
        }
    }

    /// Mnemonic suffix: `32` for 32-bit forms, nothing for 64-bit ones.
    pub const fn suffix(self) -> &'static str {
        match self {
            Width::W32 => "32",
            Width::W64 => "",
        }
    }
}

/// Memory access size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    /// 1 byte.
    B,
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    Dw,
}

impl Size {
    /// The size in bytes.
    pub const fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::Dw => 8,
        }
    }

    /// The size in bits.
    pub const fn bits(self) -> u32 {
        self.bytes() * 8
    }

    /// Mnemonic suffix (`b`, `h`, `w`, `dw`).
    pub const fn suffix(self) -> &'static str {
        match self {
            Size::B => "b",
            Size::H => "h",
            Size::W => "w",
            Size::Dw => "dw",
        }
    }
}

/// The second operand of ALU, store and conditional-jump instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A register (`BPF_X`).
    Reg(Reg),
    /// A 32-bit immediate (`BPF_K`), sign-extended to 64 bits where used at 64 bits.
    Imm(i32),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Reg(r) => write!(f, "{r}"),
            Operand::Imm(i) => write!(f, "{i}"),
        }
    }
}

/// Binary ALU operations (and `mov`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `dst += src`
    Add,
    /// `dst -= src`
    Sub,
    /// `dst *= src`
    Mul,
    /// Unsigned division; division by zero gives 0.
    Div,
    /// Signed division (v4, `off = 1`); by zero gives 0, `MIN / -1` gives `MIN`.
    Sdiv,
    /// `dst |= src`
    Or,
    /// `dst &= src`
    And,
    /// Left shift, count masked to the width.
    Lsh,
    /// Logical right shift, count masked to the width.
    Rsh,
    /// Unsigned modulo; by zero leaves dst unchanged (32-bit: its low half, zero-extended).
    Mod,
    /// Signed modulo (v4, `off = 1`); by zero leaves dst unchanged, `MIN % -1` gives 0.
    Smod,
    /// `dst ^= src`
    Xor,
    /// `dst = src`
    Mov,
    /// Arithmetic right shift, count masked to the width.
    Arsh,
}

impl AluOp {
    /// The mnemonic without width suffix.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            AluOp::Add => "add",
            AluOp::Sub => "sub",
            AluOp::Mul => "mul",
            AluOp::Div => "div",
            AluOp::Sdiv => "sdiv",
            AluOp::Or => "or",
            AluOp::And => "and",
            AluOp::Lsh => "lsh",
            AluOp::Rsh => "rsh",
            AluOp::Mod => "mod",
            AluOp::Smod => "smod",
            AluOp::Xor => "xor",
            AluOp::Mov => "mov",
            AluOp::Arsh => "arsh",
        }
    }

    /// Every binary ALU operation.
    pub const ALL: [AluOp; 14] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Sdiv,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Mod,
        AluOp::Smod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ];
}

/// Byte-order operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `le16/32/64`: convert to little-endian (a truncation to the width on x86-64 hosts).
    Le,
    /// `be16/32/64`: convert to big-endian (a byte swap of the low bits).
    Be,
    /// `bswap16/32/64` (v4, ALU64 class): unconditional byte swap.
    Swap,
}

/// Conditional-jump conditions, kernel vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// `==`
    Eq,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// `lhs & rhs != 0`
    Set,
    /// `!=`
    Ne,
    /// signed `>`
    Sgt,
    /// signed `>=`
    Sge,
    /// unsigned `<`
    Lt,
    /// unsigned `<=`
    Le,
    /// signed `<`
    Slt,
    /// signed `<=`
    Sle,
}

impl Cond {
    /// The mnemonic without width suffix.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            Cond::Eq => "jeq",
            Cond::Gt => "jgt",
            Cond::Ge => "jge",
            Cond::Set => "jset",
            Cond::Ne => "jne",
            Cond::Sgt => "jsgt",
            Cond::Sge => "jsge",
            Cond::Lt => "jlt",
            Cond::Le => "jle",
            Cond::Slt => "jslt",
            Cond::Sle => "jsle",
        }
    }

    /// Every condition.
    pub const ALL: [Cond; 11] = [
        Cond::Eq,
        Cond::Gt,
        Cond::Ge,
        Cond::Set,
        Cond::Ne,
        Cond::Sgt,
        Cond::Sge,
        Cond::Lt,
        Cond::Le,
        Cond::Slt,
        Cond::Sle,
    ];

    /// Evaluates the condition on two values already truncated to the operation width
    /// (`bits` is 32 or 64); the single definition every engine and the verifier share.
    pub fn eval(self, lhs: u64, rhs: u64, width: Width) -> bool {
        let (l, r, sl, sr) = match width {
            Width::W32 => (
                lhs as u32 as u64,
                rhs as u32 as u64,
                lhs as u32 as i32 as i64,
                rhs as u32 as i32 as i64,
            ),
            Width::W64 => (lhs, rhs, lhs as i64, rhs as i64),
        };
        match self {
            Cond::Eq => l == r,
            Cond::Gt => l > r,
            Cond::Ge => l >= r,
            Cond::Set => l & r != 0,
            Cond::Ne => l != r,
            Cond::Sgt => sl > sr,
            Cond::Sge => sl >= sr,
            Cond::Lt => l < r,
            Cond::Le => l <= r,
            Cond::Slt => sl < sr,
            Cond::Sle => sl <= sr,
        }
    }
}

/// Atomic read-modify-write operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// `*addr += src`
    Add,
    /// `*addr |= src`
    Or,
    /// `*addr &= src`
    And,
    /// `*addr ^= src`
    Xor,
    /// Exchange: `src = xchg(*addr, src)` (always fetches).
    Xchg,
    /// Compare-exchange with r0 (always fetches into r0).
    Cmpxchg,
}

impl AtomicOp {
    /// The mnemonic after `lock` (and `fetch`).
    pub const fn mnemonic(self) -> &'static str {
        match self {
            AtomicOp::Add => "add",
            AtomicOp::Or => "or",
            AtomicOp::And => "and",
            AtomicOp::Xor => "xor",
            AtomicOp::Xchg => "xchg",
            AtomicOp::Cmpxchg => "cmpxchg",
        }
    }
}

/// The meaning of a 64-bit immediate load (`lddw`), selected by its `src` field (RFC 9669
/// section 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Imm64 {
    /// `src = 0`: the 64-bit value itself.
    Value(u64),
    /// `src = 1`: the map with this file descriptor.
    MapFd(i32),
    /// `src = 2`: the address of the value of the map with this fd, plus `off`.
    MapValue {
        /// Map file descriptor.
        fd: i32,
        /// Offset into the value.
        off: u32,
    },
    /// `src = 3`: the address of the variable with this BTF id.
    BtfId(i32),
    /// `src = 4`: the address of the function starting `off + 1` slots after this one.
    Func {
        /// Relative slot offset of the function.
        off: i32,
    },
    /// `src = 5`: the map at this index of the program's map table.
    MapIdx(i32),
    /// `src = 6`: the address of the value of the map at this index, plus `off`.
    MapIdxValue {
        /// Map index.
        idx: i32,
        /// Offset into the value.
        off: u32,
    },
}

/// What a `call` calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// `call N`: the helper with id `N` (`src = 0`).
    Helper(u32),
    /// `call local`: the local function starting `off + 1` slots after the call (`src = 1`).
    Local {
        /// Relative slot offset.
        off: i32,
    },
    /// `call runtime N`: a kernel-function (kfunc) call by BTF id (`src = 2`).
    Kfunc(i32),
    /// `callx`: the helper whose id is held in a register (opcode 0x8d, register in `dst`).
    Register(Reg),
}

/// One decoded instruction. An `lddw` occupies two slots; every other instruction one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Binary ALU operation, `mov`, signed division and modulo.
    Alu {
        /// 32- or 64-bit.
        width: Width,
        /// The operation.
        op: AluOp,
        /// Destination (and left operand).
        dst: Reg,
        /// Right operand.
        src: Operand,
    },
    /// `dst = -dst`.
    Neg {
        /// 32- or 64-bit.
        width: Width,
        /// Operand and result.
        dst: Reg,
    },
    /// Sign-extending move (v4): `dst = (sext from) src`, then zero-extended from `width`.
    Movsx {
        /// 32- or 64-bit result.
        width: Width,
        /// Width of the source value: `B`, `H`, or (64-bit only) `W`.
        from: Size,
        /// Destination.
        dst: Reg,
        /// Source.
        src: Reg,
    },
    /// Byte-order conversion or swap of the low `bits` (16, 32 or 64), zero-extended.
    Endian {
        /// `le`, `be` or `bswap`.
        order: ByteOrder,
        /// 16, 32 or 64.
        bits: u32,
        /// Operand and result.
        dst: Reg,
    },
    /// `dst = *(size *)(base + off)`, zero- or (v4 `ldxs*`) sign-extended.
    Load {
        /// Access size.
        size: Size,
        /// Sign-extending (`MEMSX`) rather than zero-extending.
        signed: bool,
        /// Destination.
        dst: Reg,
        /// Base address register.
        base: Reg,
        /// Signed byte offset.
        off: i16,
    },
    /// `*(size *)(base + off) = src` (immediate for `st*`, register for `stx*`).
    Store {
        /// Access size.
        size: Size,
        /// Base address register.
        base: Reg,
        /// Signed byte offset.
        off: i16,
        /// Value to store (an immediate is truncated to the size).
        src: Operand,
    },
    /// Atomic read-modify-write on `*(width *)(base + off)`.
    Atomic {
        /// 32- or 64-bit access.
        width: Width,
        /// The operation.
        op: AtomicOp,
        /// The old value is written back to `src` (always true for xchg and cmpxchg; cmpxchg
        /// writes it to r0).
        fetch: bool,
        /// Base address register.
        base: Reg,
        /// Signed byte offset.
        off: i16,
        /// Operand register.
        src: Reg,
    },
    /// `lddw dst, imm64` (two slots).
    LoadImm64 {
        /// Destination.
        dst: Reg,
        /// What is loaded.
        value: Imm64,
    },
    /// Legacy packet load (`LD_ABS`, `LD_IND`): `r0 = ntoh(*(size *)(packet + index + imm))`.
    LoadPacket {
        /// Access size (`B`, `H` or `W`).
        size: Size,
        /// `None` for `LD_ABS`, the index register for `LD_IND`.
        index: Option<Reg>,
        /// Offset.
        imm: i32,
    },
    /// Unconditional jump: `ja` (`off` field) or `ja32`/`gotol` (JMP32 class, `imm` field).
    Ja {
        /// Relative slot offset.
        off: i32,
        /// Encoded as `ja32` (offset in `imm`).
        long: bool,
    },
    /// Conditional jump.
    Branch {
        /// 32-bit (JMP32) or 64-bit (JMP) comparison.
        width: Width,
        /// The condition.
        cond: Cond,
        /// Left operand.
        lhs: Reg,
        /// Right operand.
        rhs: Operand,
        /// Relative slot offset taken when the condition holds.
        off: i16,
    },
    /// A call.
    Call(CallTarget),
    /// Return r0 from the current function (or the program).
    Exit,
}

impl Op {
    /// Number of slots the instruction occupies: 2 for `lddw`, 1 otherwise.
    pub const fn slots(&self) -> u32 {
        match self {
            Op::LoadImm64 { .. } => 2,
            _ => 1,
        }
    }

    /// The absolute target of a jump, conditional branch, local call or `lddw` of a function
    /// address at `pc`, if the instruction has one.
    pub fn jump_target(&self, pc: Pc) -> Option<Pc> {
        match *self {
            Op::Ja { off, .. } => pc.offset(off),
            Op::Branch { off, .. } => pc.offset(i32::from(off)),
            Op::Call(CallTarget::Local { off }) => pc.offset(off),
            Op::LoadImm64 {
                value: Imm64::Func { off },
                ..
            } => pc.offset(off),
            _ => None,
        }
    }

    /// Whether control can continue to the next instruction (false for `ja` and `exit`).
    pub const fn falls_through(&self) -> bool {
        !matches!(self, Op::Ja { .. } | Op::Exit)
    }

    /// The register this instruction writes, if any (helper and local calls write r0 and clobber
    /// r1–r5; this reports only the explicit destination).
    pub const fn written_reg(&self) -> Option<Reg> {
        match *self {
            Op::Alu { dst, .. }
            | Op::Neg { dst, .. }
            | Op::Movsx { dst, .. }
            | Op::Endian { dst, .. }
            | Op::Load { dst, .. }
            | Op::LoadImm64 { dst, .. } => Some(dst),
            Op::Atomic {
                op: AtomicOp::Cmpxchg,
                ..
            }
            | Op::LoadPacket { .. } => Some(Reg::R0),
            Op::Atomic {
                fetch: true, src, ..
            } => Some(src),
            _ => None,
        }
    }
}

fn fmt_off(f: &mut fmt::Formatter<'_>, off: i64) -> fmt::Result {
    if off < 0 {
        write!(f, "{off}")
    } else {
        write!(f, "+{off}")
    }
}

fn fmt_mem(f: &mut fmt::Formatter<'_>, base: Reg, off: i16) -> fmt::Result {
    write!(f, "[{base}")?;
    fmt_off(f, i64::from(off))?;
    write!(f, "]")
}

impl fmt::Display for Op {
    /// Prints the instruction in the assembler's syntax (registers without `%`, which the
    /// assembler accepts with or without); jump targets as relative `+N`/`-N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Alu {
                width,
                op,
                dst,
                src,
            } => {
                write!(f, "{}{} {dst}, {src}", op.mnemonic(), width.suffix())
            }
            Op::Neg { width, dst } => write!(f, "neg{} {dst}", width.suffix()),
            Op::Movsx {
                width,
                from,
                dst,
                src,
            } => {
                write!(f, "movsx{}{} {dst}, {src}", from.bits(), width.bits())
            }
            Op::Endian { order, bits, dst } => {
                let m = match order {
                    ByteOrder::Le => "le",
                    ByteOrder::Be => "be",
                    ByteOrder::Swap => "bswap",
                };
                write!(f, "{m}{bits} {dst}")
            }
            Op::Load {
                size,
                signed,
                dst,
                base,
                off,
            } => {
                let s = if signed { "s" } else { "" };
                write!(f, "ldx{s}{} {dst}, ", size.suffix())?;
                fmt_mem(f, base, off)
            }
            Op::Store {
                size,
                base,
                off,
                src,
            } => {
                let x = if matches!(src, Operand::Reg(_)) {
                    "x"
                } else {
                    ""
                };
                write!(f, "st{x}{} ", size.suffix())?;
                fmt_mem(f, base, off)?;
                write!(f, ", {src}")
            }
            Op::Atomic {
                width,
                op,
                fetch,
                base,
                off,
                src,
            } => {
                let fetch = if fetch && !matches!(op, AtomicOp::Xchg | AtomicOp::Cmpxchg) {
                    "fetch "
                } else {
                    ""
                };
                write!(f, "lock {fetch}{}{} ", op.mnemonic(), width.suffix())?;
                fmt_mem(f, base, off)?;
                write!(f, ", {src}")
            }
            Op::LoadImm64 { dst, value } => {
                write!(f, "lddw {dst}, ")?;
                match value {
                    Imm64::Value(v) => write!(f, "{v:#x}"),
                    Imm64::MapFd(fd) => write!(f, "map_fd({fd})"),
                    Imm64::MapValue { fd, off } => write!(f, "map_value({fd}, {off})"),
                    Imm64::BtfId(id) => write!(f, "btf_id({id})"),
                    Imm64::Func { off } => {
                        write!(f, "func(")?;
                        fmt_off(f, i64::from(off))?;
                        write!(f, ")")
                    }
                    Imm64::MapIdx(idx) => write!(f, "map_idx({idx})"),
                    Imm64::MapIdxValue { idx, off } => write!(f, "map_idx_value({idx}, {off})"),
                }
            }
            Op::LoadPacket { size, index, imm } => match index {
                None => write!(f, "ldabs{} {imm}", size.suffix()),
                Some(r) => write!(f, "ldind{} {r}, {imm}", size.suffix()),
            },
            Op::Ja { off, long } => {
                write!(f, "{} ", if long { "ja32" } else { "ja" })?;
                fmt_off(f, i64::from(off))
            }
            Op::Branch {
                width,
                cond,
                lhs,
                rhs,
                off,
            } => {
                write!(f, "{}{} {lhs}, {rhs}, ", cond.mnemonic(), width.suffix())?;
                fmt_off(f, i64::from(off))
            }
            Op::Call(CallTarget::Helper(id)) => write!(f, "call {id}"),
            Op::Call(CallTarget::Local { off }) => {
                write!(f, "call local ")?;
                fmt_off(f, i64::from(off))
            }
            Op::Call(CallTarget::Kfunc(id)) => write!(f, "call runtime {id}"),
            Op::Call(CallTarget::Register(r)) => write!(f, "call {r}"),
            Op::Exit => write!(f, "exit"),
        }
    }
}
