//! Engine choice and one run of a program, shared by `run`, `bench` and `conformance-plugin`.

use bpfx_bytecode::{Pc, Program};
use bpfx_exec::{Env, Trap};
use bpfx_verifier::VerifiedProgram;
use std::fmt;

/// Which engine runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EngineKind {
    /// The reference interpreter.
    Interp,
    /// The x86-64 JIT compiler.
    Jit,
}

impl EngineKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            EngineKind::Interp => "interp",
            EngineKind::Jit => "jit",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the JIT puts its code (`bpfx_jit::CodeMemory`; docs/safety.md weighs the two).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CodeMemoryArg {
    /// A mapping per program, sealed read+execute after the copy.
    #[default]
    Sealed,
    /// A shared arena mapped twice, read+write and read+execute: no system call per compile.
    Dual,
}

impl CodeMemoryArg {
    pub(crate) fn jit(self) -> bpfx_jit::CodeMemory {
        match self {
            CodeMemoryArg::Sealed => bpfx_jit::CodeMemory::Sealed,
            CodeMemoryArg::Dual => bpfx_jit::CodeMemory::DualMapped,
        }
    }
}

impl fmt::Display for CodeMemoryArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodeMemoryArg::Sealed => "sealed",
            CodeMemoryArg::Dual => "dual",
        })
    }
}

/// A program prepared for one engine: for the JIT, compiled once and runnable many times.
pub(crate) enum Prepared<'p> {
    /// A verified program on the interpreter.
    Interp(&'p VerifiedProgram),
    /// An unverified program on the interpreter (the conformance plugin's raw path).
    InterpUnverified(&'p Program),
    /// Compiled code.
    Jit(Box<bpfx_jit::JitProgram>),
}

impl<'p> Prepared<'p> {
    /// Prepares a verified program for `kind`, compiling with `opts` for the JIT.
    pub(crate) fn with_options(
        prog: &'p VerifiedProgram,
        kind: EngineKind,
        opts: &bpfx_jit::JitOptions,
    ) -> Result<Prepared<'p>, bpfx_jit::JitError> {
        Ok(match kind {
            EngineKind::Interp => Prepared::Interp(prog),
            // Accesses the verifier proved in bounds lose their guards.
            EngineKind::Jit => Prepared::Jit(Box::new(bpfx_jit::compile(prog, opts)?)),
        })
    }

    /// Prepares a program that was not verified, keeping every run-time guard: only for raw
    /// paths such as the conformance plugin.
    pub(crate) fn new_unverified(
        prog: &'p Program,
        kind: EngineKind,
        budget: bool,
    ) -> Result<Prepared<'p>, bpfx_jit::JitError> {
        Ok(match kind {
            EngineKind::Interp => Prepared::InterpUnverified(prog),
            EngineKind::Jit => {
                let opts = bpfx_jit::JitOptions {
                    budget,
                    ..Default::default()
                };
                Prepared::Jit(Box::new(bpfx_jit::compile_unverified(prog, &opts)?))
            }
        })
    }

    /// Runs once on `input`.
    pub(crate) fn run(&self, input: &mut [u8], env: &mut Env) -> Result<u64, Trap> {
        match self {
            Prepared::Interp(prog) => bpfx_interp::run(prog, input, env),
            Prepared::InterpUnverified(prog) => bpfx_interp::run_unverified(prog, input, env),
            Prepared::Jit(jit) => jit.run(input, env),
        }
    }
}

/// The instruction at a trap's pc in assembly syntax, for messages.
pub(crate) fn insn_at(prog: &Program, pc: Pc) -> String {
    prog.get(pc)
        .map(|op| op.to_string())
        .unwrap_or_else(|| "?".to_string())
}
