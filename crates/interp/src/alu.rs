//! ALU semantics as pure functions: the definition every engine's result is checked against.
//!
//! They belong to the instruction set, so they live in [`bpfx_bytecode::semantics`], where the
//! verifier's constant folding uses the same definitions; this module keeps the
//! `bpfx_interp::alu::*` paths the interpreter and its users call.

pub use bpfx_bytecode::semantics::*;
