//! The typed instruction model: what a slot means, at the granularity the kernel groups its cases.
//!
//! Jump and call targets are kept as the signed slot offsets of the wire format (`target = pc +
//! off + 1`), so an `Op` means the same thing wherever it is printed or re-encoded; use
//! [`Op::jump_target`] to get the absolute [`Pc`] of any instruction, or [`Pc::jump`] for one
//! whose offset is in hand (infallible: decoding proved the target), and [`crate::Cfg`] for
//! the successors.

use crate::regset::RegSet;
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

    /// The target of a jump, branch, local call or `lddw func` at this pc with offset `off`
    /// (`pc + off + 1`), inside a decoded [`Program`](crate::Program): decoding proved every
    /// such target is an instruction start of the program, so there is nothing to check and
    /// no failure to handle. (Outside a program, where the sum may not be a slot at all, use
    /// [`Pc::offset`].)
    ///
    /// ```
    /// use bpfx_bytecode::Pc;
    /// assert_eq!(Pc(4).jump(-5), Pc(0));
    /// assert_eq!(Pc(4).jump(2), Pc(7));
    /// ```
    pub const fn jump(self, off: i32) -> Pc {
        Pc(self.0.wrapping_add_signed(off).wrapping_add(1))
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

impl Operand {
    /// The register read, as a set: empty for an immediate.
    pub const fn regs(self) -> RegSet {
        match self {
            Operand::Reg(r) => RegSet::of(r),
            Operand::Imm(_) => RegSet::EMPTY,
        }
    }
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

    /// The condition that holds exactly when `self` does not, if the instruction set has one
    /// (every condition but `jset`, whose negation `lhs & rhs == 0` is no eBPF condition).
    ///
    /// ```
    /// use bpfx_bytecode::{Cond, Width};
    /// assert_eq!(Cond::Lt.negate(), Some(Cond::Ge));
    /// assert_eq!(Cond::Set.negate(), None);
    /// let (a, b) = (3u64, u64::MAX);
    /// for c in Cond::ALL {
    ///     if let Some(n) = c.negate() {
    ///         assert_ne!(c.eval(a, b, Width::W64), n.eval(a, b, Width::W64));
    ///     }
    /// }
    /// ```
    pub const fn negate(self) -> Option<Cond> {
        Some(match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Gt => Cond::Le,
            Cond::Le => Cond::Gt,
            Cond::Ge => Cond::Lt,
            Cond::Lt => Cond::Ge,
            Cond::Sgt => Cond::Sle,
            Cond::Sle => Cond::Sgt,
            Cond::Sge => Cond::Slt,
            Cond::Slt => Cond::Sge,
            Cond::Set => return None,
        })
    }

    /// The condition with its operands exchanged: `a self b` holds exactly when `b swap a`
    /// does. The symmetric conditions (`jeq`, `jne`, `jset`) are their own swap.
    ///
    /// ```
    /// use bpfx_bytecode::{Cond, Width};
    /// assert_eq!(Cond::Lt.swap(), Cond::Gt);
    /// assert_eq!(Cond::Set.swap(), Cond::Set);
    /// let (a, b) = (3u64, u64::MAX);
    /// for c in Cond::ALL {
    ///     assert_eq!(c.eval(a, b, Width::W64), c.swap().eval(b, a, Width::W64));
    /// }
    /// ```
    pub const fn swap(self) -> Cond {
        match self {
            Cond::Gt => Cond::Lt,
            Cond::Lt => Cond::Gt,
            Cond::Ge => Cond::Le,
            Cond::Le => Cond::Ge,
            Cond::Sgt => Cond::Slt,
            Cond::Slt => Cond::Sgt,
            Cond::Sge => Cond::Sle,
            Cond::Sle => Cond::Sge,
            Cond::Eq | Cond::Ne | Cond::Set => self,
        }
    }

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
    /// `may_goto +off` (`JMP | JCOND`, 0xe5, kernel 6.9): a jump whose condition is an implicit
    /// counter of the program run, which starts at [`MAY_GOTO_BUDGET`]. While the counter is not
    /// 0, the instruction decrements it and falls through; once it is 0, the jump is taken (every
    /// time). libbpf's `can_loop`/`cond_break` put one in a loop's body to bound the loop.
    MayGoto {
        /// Relative slot offset taken when the counter is exhausted.
        off: i16,
    },
    /// A call.
    Call(CallTarget),
    /// Return r0 from the current function (or the program).
    Exit,
}

/// The counter `may_goto` ([`Op::MayGoto`]) starts each program run with: the kernel's
/// `BPF_MAX_LOOPS` (8 Mi), so a loop bounded only by `may_goto` runs its body at most that many
/// times plus one per run.
pub const MAY_GOTO_BUDGET: u64 = 8 * 1024 * 1024;

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
            Op::Branch { off, .. } | Op::MayGoto { off } => pc.offset(i32::from(off)),
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

/// What a memory instruction does at its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// `ldx*`: reads.
    Load,
    /// `st*` and `stx*`: writes.
    Store,
    /// `lock *`: reads and writes, atomically.
    Atomic,
}

/// The memory an instruction accesses: `size` bytes at `base + off` ([`Op::mem_access`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemAccess {
    /// The register holding the base address.
    pub base: Reg,
    /// Signed byte offset from the base.
    pub off: i16,
    /// Access size.
    pub size: Size,
    /// Load, store or atomic read-modify-write.
    pub kind: AccessKind,
}

impl Op {
    /// The registers whose values the instruction reads.
    ///
    /// A call reads its arguments r1–r5 ([`RegSet::ARGS`]; `callx` also the register holding
    /// the helper id), whatever the callee declares; `exit` reads r0, the return value. A
    /// legacy packet load reads its index register only (the packet is the program's input).
    ///
    /// ```
    /// use bpfx_bytecode::{Op, Reg, RegSet};
    /// let op = bpfx_bytecode::assemble("stxw [r1+4], r2").unwrap();
    /// let op = bpfx_bytecode::decode_one(&op).unwrap();
    /// assert_eq!(op.reads(), RegSet::of(Reg::R1).with(Reg::R2));
    /// assert_eq!(Op::Exit.reads(), RegSet::of(Reg::R0));
    /// ```
    pub const fn reads(&self) -> RegSet {
        match *self {
            Op::Alu {
                op: AluOp::Mov,
                src,
                ..
            } => src.regs(),
            Op::Alu { dst, src, .. } => RegSet::of(dst).union(src.regs()),
            Op::Neg { dst, .. } | Op::Endian { dst, .. } => RegSet::of(dst),
            Op::Movsx { src, .. } => RegSet::of(src),
            Op::Load { base, .. } => RegSet::of(base),
            Op::Store { base, src, .. } => RegSet::of(base).union(src.regs()),
            Op::Atomic { op, base, src, .. } => {
                let set = RegSet::of(base).with(src);
                if matches!(op, AtomicOp::Cmpxchg) {
                    set.with(Reg::R0)
                } else {
                    set
                }
            }
            Op::LoadImm64 { .. } | Op::Ja { .. } | Op::MayGoto { .. } => RegSet::EMPTY,
            Op::LoadPacket { index, .. } => match index {
                Some(r) => RegSet::of(r),
                None => RegSet::EMPTY,
            },
            Op::Branch { lhs, rhs, .. } => RegSet::of(lhs).union(rhs.regs()),
            Op::Call(CallTarget::Register(r)) => RegSet::ARGS.with(r),
            Op::Call(_) => RegSet::ARGS,
            Op::Exit => RegSet::of(Reg::R0),
        }
    }

    /// The registers the instruction certainly gives a new value: its destination, the
    /// fetched register of an atomic (r0 for `cmpxchg`), r0 for a packet load and for every
    /// call (its result). [`Op::written_reg`] is this set without calls.
    ///
    /// ```
    /// use bpfx_bytecode::{CallTarget, Op, Reg, RegSet};
    /// assert_eq!(Op::Call(CallTarget::Helper(1)).writes(), RegSet::of(Reg::R0));
    /// ```
    pub const fn writes(&self) -> RegSet {
        match self {
            Op::Call(_) => RegSet::of(Reg::R0),
            _ => match self.written_reg() {
                Some(r) => RegSet::of(r),
                None => RegSet::EMPTY,
            },
        }
    }

    /// The registers whose values may differ after the instruction: [`Op::writes`], and for a
    /// call every caller-saved register ([`RegSet::CALLER_SAVED`], r0–r5), which the callee
    /// need not preserve. A legacy packet load counts as a call here, as in the kernel, whose
    /// `ld_abs`/`ld_ind` may clobber r1–r5 (bpfx's engines leave them, but nothing may rely
    /// on that).
    ///
    /// ```
    /// use bpfx_bytecode::{CallTarget, Op, RegSet};
    /// assert_eq!(Op::Call(CallTarget::Local { off: 3 }).clobbers(), RegSet::CALLER_SAVED);
    /// assert_eq!(Op::Exit.clobbers(), RegSet::EMPTY);
    /// ```
    pub const fn clobbers(&self) -> RegSet {
        match self {
            Op::Call(_) | Op::LoadPacket { .. } => RegSet::CALLER_SAVED,
            _ => self.writes(),
        }
    }

    /// The memory the instruction accesses through a register, for loads, stores and atomics;
    /// `None` for every other instruction, legacy packet loads included (they address the
    /// packet by index, not through a pointer).
    ///
    /// ```
    /// use bpfx_bytecode::{AccessKind, MemAccess, Reg, Size};
    /// let slots = bpfx_bytecode::assemble("lock add32 [r10-8], r1").unwrap();
    /// let op = bpfx_bytecode::decode_one(&slots).unwrap();
    /// assert_eq!(
    ///     op.mem_access(),
    ///     Some(MemAccess { base: Reg::R10, off: -8, size: Size::W, kind: AccessKind::Atomic })
    /// );
    /// ```
    pub const fn mem_access(&self) -> Option<MemAccess> {
        let (base, off, size, kind) = match *self {
            Op::Load {
                size, base, off, ..
            } => (base, off, size, AccessKind::Load),
            Op::Store {
                size, base, off, ..
            } => (base, off, size, AccessKind::Store),
            Op::Atomic {
                width, base, off, ..
            } => {
                let size = match width {
                    Width::W32 => Size::W,
                    Width::W64 => Size::Dw,
                };
                (base, off, size, AccessKind::Atomic)
            }
            _ => return None,
        };
        Some(MemAccess {
            base,
            off,
            size,
            kind,
        })
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
            Op::MayGoto { off } => {
                write!(f, "may_goto ")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Values around the signed and unsigned boundaries at both widths.
    const EDGES: [u64; 10] = [
        0,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        i64::MAX as u64,
        i64::MIN as u64,
        u64::MAX,
    ];

    #[test]
    fn negate_is_the_complement_and_swap_the_mirror() {
        for c in Cond::ALL {
            assert_eq!(c.swap().swap(), c);
            if let Some(n) = c.negate() {
                assert_eq!(n.negate(), Some(c));
            }
            for w in [Width::W32, Width::W64] {
                for a in EDGES {
                    for b in EDGES {
                        let holds = c.eval(a, b, w);
                        assert_eq!(c.swap().eval(b, a, w), holds, "{c:?} swapped, {w:?}");
                        if let Some(n) = c.negate() {
                            assert_eq!(n.eval(a, b, w), !holds, "{c:?} negated, {w:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(Cond::Set.negate(), None);
    }

    fn op(text: &str) -> Op {
        crate::decode_one(&crate::assemble(text).expect("assembles")).expect("decodes")
    }

    fn set(regs: &[u8]) -> RegSet {
        regs.iter()
            .map(|&n| Reg::new(n).expect("a register"))
            .collect()
    }

    #[test]
    fn register_effects_of_every_class() {
        /// Instruction, reads, writes, clobbers.
        type Case = (&'static str, &'static [u8], &'static [u8], &'static [u8]);
        let cases: &[Case] = &[
            ("mov r1, r2", &[2], &[1], &[1]),
            ("mov32 r1, 5", &[], &[1], &[1]),
            ("add r1, r2", &[1, 2], &[1], &[1]),
            ("sub32 r3, 1", &[3], &[3], &[3]),
            ("neg r4", &[4], &[4], &[4]),
            ("movsx864 r1, r9", &[9], &[1], &[1]),
            ("be16 r5", &[5], &[5], &[5]),
            ("ldxw r0, [r1+8]", &[1], &[0], &[0]),
            ("stw [r10-8], 1", &[10], &[], &[]),
            ("stxdw [r10-8], r6", &[10, 6], &[], &[]),
            ("lock add [r2+0], r3", &[2, 3], &[], &[]),
            ("lock fetch add [r2+0], r3", &[2, 3], &[3], &[3]),
            ("lock xchg [r2+0], r3", &[2, 3], &[3], &[3]),
            ("lock cmpxchg [r2+0], r3", &[0, 2, 3], &[0], &[0]),
            ("lddw r7, 0x1234567890", &[], &[7], &[7]),
            ("ldabsw 4", &[], &[0], &[0, 1, 2, 3, 4, 5]),
            ("ldindb r6, 2", &[6], &[0], &[0, 1, 2, 3, 4, 5]),
            ("ja +0", &[], &[], &[]),
            ("jsgt32 r1, r8, +0", &[1, 8], &[], &[]),
            ("jset r1, 1, +0", &[1], &[], &[]),
            ("call 1", &[1, 2, 3, 4, 5], &[0], &[0, 1, 2, 3, 4, 5]),
            ("call r8", &[1, 2, 3, 4, 5, 8], &[0], &[0, 1, 2, 3, 4, 5]),
            ("exit", &[0], &[], &[]),
        ];
        for &(text, reads, writes, clobbers) in cases {
            let op = op(text);
            assert_eq!(op.reads(), set(reads), "reads of {text}");
            assert_eq!(op.writes(), set(writes), "writes of {text}");
            assert_eq!(op.clobbers(), set(clobbers), "clobbers of {text}");
            assert!((op.writes() - op.clobbers()).is_empty(), "{text}");
            if !matches!(op, Op::Call(_)) {
                assert_eq!(
                    op.writes(),
                    op.written_reg().into_iter().collect(),
                    "{text}"
                );
            }
        }
        let local = Op::Call(CallTarget::Local { off: 0 });
        assert_eq!(local.reads(), RegSet::ARGS);
        assert_eq!(local.writes(), RegSet::of(Reg::R0));
        assert_eq!(local.clobbers(), RegSet::CALLER_SAVED);
    }

    #[test]
    fn memory_accesses() {
        let access = |text, base: u8, off, size, kind| {
            assert_eq!(
                op(text).mem_access(),
                Some(MemAccess {
                    base: Reg::new(base).expect("a register"),
                    off,
                    size,
                    kind
                }),
                "{text}"
            );
        };
        access("ldxb r0, [r1+3]", 1, 3, Size::B, AccessKind::Load);
        access("ldxsh r0, [r1-2]", 1, -2, Size::H, AccessKind::Load);
        access("stw [r10-8], 7", 10, -8, Size::W, AccessKind::Store);
        access("stxdw [r2+0], r3", 2, 0, Size::Dw, AccessKind::Store);
        access("lock or32 [r4+4], r1", 4, 4, Size::W, AccessKind::Atomic);
        access(
            "lock cmpxchg [r4+8], r1",
            4,
            8,
            Size::Dw,
            AccessKind::Atomic,
        );
        for text in ["ldabsw 4", "ldindb r6, 2", "mov r0, 1", "call 1", "exit"] {
            assert_eq!(op(text).mem_access(), None, "{text}");
        }
    }
}
