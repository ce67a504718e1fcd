//! The engine abstraction: every test in this kit runs on every engine through this trait, so a
//! new engine is one line in [`engines`] and no new test code.

use bpfx_bytecode::Program;
use bpfx_exec::{Env, Trap};
use bpfx_jit::CodeMemory;

/// Why an engine did not produce an `r0`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The program ran and faulted.
    #[error("trap at {0}")]
    Trap(Trap),
    /// The engine could not prepare the program (for example, a JIT that cannot compile it).
    #[error("compile error: {0}")]
    Compile(String),
}

/// A way to run a program.
pub trait Engine: Send + Sync {
    /// A short name for reports (`interp`, `jit`).
    fn name(&self) -> &'static str;

    /// Prepares and runs `prog` on `input` under `env`, as `bpfx_exec` specifies.
    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError>;
}

/// The reference interpreter, with every run-time guard.
#[derive(Clone, Copy, Debug, Default)]
pub struct InterpEngine;

impl Engine for InterpEngine {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError> {
        bpfx_interp::run_unverified(prog, input, env).map_err(RunError::Trap)
    }
}

/// The x86-64 JIT, compiled without verifier facts (every access guarded), with the budget
/// charge compiled in when the run has a budget (or gets the default one: see
/// [`bpfx_exec::Env::unbounded`]), into the code memory it names.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitEngine {
    /// Sealed mappings, or the dual-mapped arena.
    pub code_memory: CodeMemory,
}

impl Engine for JitEngine {
    fn name(&self) -> &'static str {
        match self.code_memory {
            CodeMemory::Sealed => "jit",
            CodeMemory::DualMapped => "jit-dual",
        }
    }

    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError> {
        let opts = bpfx_jit::JitOptions {
            budget: env.budget.is_some(),
            unbounded: env.unbounded,
            code_memory: self.code_memory,
            ..bpfx_jit::JitOptions::default()
        };
        let jit = bpfx_jit::compile_unverified(prog, &opts)
            .map_err(|e| RunError::Compile(e.to_string()))?;
        jit.run(input, env).map_err(RunError::Trap)
    }
}

/// The JIT on one verified program, through its verified entry (`bpfx_jit::compile`), which
/// drops the guard of every access the verifier proved, into the code memory it names.
#[derive(Debug)]
pub struct VerifiedJit(pub bpfx_verifier::VerifiedProgram, pub CodeMemory);

impl Engine for VerifiedJit {
    fn name(&self) -> &'static str {
        match self.1 {
            CodeMemory::Sealed => "verified-jit",
            CodeMemory::DualMapped => "verified-jit-dual",
        }
    }

    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError> {
        if prog != self.0.program() {
            return Err(RunError::Compile(
                "the engine runs only the program it verified".into(),
            ));
        }
        let opts = bpfx_jit::JitOptions {
            budget: env.budget.is_some(),
            unbounded: env.unbounded,
            code_memory: self.1,
            ..bpfx_jit::JitOptions::default()
        };
        let jit =
            bpfx_jit::compile(&self.0, &opts).map_err(|e| RunError::Compile(e.to_string()))?;
        jit.run(input, env).map_err(RunError::Trap)
    }
}

/// The reference interpreter, then the verified JIT of `v` on both kinds of code memory.
pub fn verified_engines(v: bpfx_verifier::VerifiedProgram) -> Vec<Box<dyn Engine>> {
    vec![
        Box::new(InterpEngine),
        Box::new(VerifiedJit(v.clone(), CodeMemory::Sealed)),
        Box::new(VerifiedJit(v, CodeMemory::DualMapped)),
    ]
}

/// The JIT option sets every JIT-specific safety property is checked under: the default,
/// the hardened preset, blinding alone, Spectre masking alone, and dual-mapped code memory.
pub fn jit_option_sets() -> Vec<(&'static str, bpfx_jit::JitOptions)> {
    use bpfx_jit::JitOptions;
    vec![
        ("default", JitOptions::default()),
        ("hardened", JitOptions::hardened()),
        (
            "blinding",
            JitOptions {
                blinding: true,
                ..JitOptions::default()
            },
        ),
        (
            "spectre",
            JitOptions {
                spectre: true,
                ..JitOptions::default()
            },
        ),
        (
            "dual-mapped",
            JitOptions {
                code_memory: CodeMemory::DualMapped,
                ..JitOptions::default()
            },
        ),
    ]
}

/// Every engine bpfx has, the reference interpreter first. Each new engine is added here, and
/// every harness in this kit then runs on it.
pub fn engines() -> Vec<Box<dyn Engine>> {
    vec![
        Box::new(InterpEngine),
        Box::new(JitEngine {
            code_memory: CodeMemory::Sealed,
        }),
        Box::new(JitEngine {
            code_memory: CodeMemory::DualMapped,
        }),
    ]
}
