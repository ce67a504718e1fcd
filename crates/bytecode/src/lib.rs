//! The eBPF instruction set of RFC 9669, alone: the first stage of the bpfx pipeline.
//!
//! ```text
//! bytes ──► Insn (8-byte slot) ──► decode ──► Op (typed) ──► Program (validated)
//!                                      ▲                          │
//!                     asm text ────────┘                          └──► verifier, interpreter, JIT
//! ```
//!
//! - [`Insn`] is the raw slot, faithful to the wire format.
//! - [`Op`] is the typed instruction every later stage matches on, at class granularity.
//! - [`Program`] is a decoded program whose every jump and call lands on an instruction start.
//! - [`Cfg`] is its structure, computed once: successors, block leaders, back edges,
//!   functions, the call graph and its deepest chain. Targets there are plain [`Pc`]s: decoding
//!   proved them.
//! - [`Op::reads`], [`Op::writes`], [`Op::clobbers`] and [`Op::mem_access`] say what an
//!   instruction touches; [`RegSet::CALLER_SAVED`] is the calling convention, stated once.
//! - [`semantics`] is what the ALU instructions compute, shared by the interpreter and the
//!   verifier's constant folding.
//!
//! Decoding is strict (RFC 9669, with the kernel as the authority where it leaves room): unknown
//! opcodes, registers above r10, non-zero unused fields, truncated `lddw` and jumps
//! outside the program or into the second slot of an `lddw` are all [`DecodeError`]s naming the
//! pc. Encoding is the exact inverse of decoding.
#![forbid(unsafe_code)]

mod asm;
pub mod cfg;
mod decode;
mod disasm;
mod encode;
mod insn;
mod op;
mod program;
mod regset;
pub mod semantics;

pub use asm::{AsmError, AsmErrorKind, assemble};
pub use cfg::{CallDepth, CallSite, Cfg, Edge, Function, Successors};
pub use decode::{DecodeError, DecodeErrorKind, MAX_SLOTS, decode_one};
pub use disasm::{disassemble, disassemble_with_pcs};
pub use encode::{encode, encode_into};
pub use insn::{INSN_SIZE, Insn};
pub use op::{
    AccessKind, AluOp, AtomicOp, ByteOrder, CallTarget, Cond, Imm64, MAY_GOTO_BUDGET, MemAccess,
    Op, Operand, Pc, Reg, Size, Width,
};
pub use program::Program;
pub use regset::{RegSet, Regs};
