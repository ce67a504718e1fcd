//! The engine abstraction and the engine matrix: every test in this kit runs on every engine
//! through the [`Engine`] trait, and every harness of the workspace takes its engines from
//! here, so a new engine or JIT option set is one line in [`jit_option_sets`] and no new test
//! code.
//!
//! # The matrix
//! [`matrix`] is the one list: the reference interpreter, then the JIT under every option set
//! of [`jit_option_sets`] (default, hardened, blinding alone, Spectre masking alone,
//! dual-mapped code memory), each with the name reports print (`interp`, `jit`,
//! `jit-hardened`, `jit-blinding`, `jit-spectre`, `jit-dual`). It comes in three forms:
//! - [`engines`]: the matrix as [`Engine`]s over unverified programs (every access guarded),
//!   which [`check`](crate::check()) and the conformance, edge and fuzz-replay harnesses run;
//! - [`verified_engines`]: the same over one verified program, through the JIT's verified
//!   entry (proven accesses unguarded);
//! - [`matrix`] itself, name and options, for harnesses that compile through another API (the
//!   runtime's tests take it as their engine list).
//!
//! # The sampled subset, for large random corpora
//! The largest corpora of generated programs (`tests/differential.rs`, `tests/generated.rs`,
//! the generated part of `tests/verified_jit.rs`) run case `i` on [`sampled_engines`]`(i)` /
//! [`sampled_verified_engines`]: the interpreter, the default JIT, and one other option set in
//! turn. Every option set thus sees an equal share of each corpus, at the cost the corpora had
//! when the JIT ran twice per case. Everything else runs the whole matrix: the conformance
//! suite and `tests/data/`, the edge cases, the fuzz properties (so the regression files, the
//! committed seeds and the generated inputs of `tests/fuzz_replay.rs`), `tests/loops.rs`,
//! `tests/hardening.rs` and the runtime's tests.

use bpfx_bytecode::Program;
use bpfx_exec::{Env, Trap};
use bpfx_jit::{CodeMemory, JitOptions};
use bpfx_verifier::VerifiedProgram;

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
    /// A short name for reports: the engine and its option set (`interp`, `jit-hardened`).
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

/// `opts` as a run under `env` needs them: the budget charge compiled in when the run has a
/// budget, and left out (with the default budget) as the run's [`Env::unbounded`] says.
fn for_run(opts: &JitOptions, env: &Env) -> JitOptions {
    JitOptions {
        budget: opts.budget || env.budget.is_some(),
        unbounded: env.unbounded,
        ..opts.clone()
    }
}

/// The x86-64 JIT under one option set, compiled without verifier facts (every access
/// guarded), with the budget charge compiled in when the run has a budget (or gets the default
/// one: see [`bpfx_exec::Env::unbounded`]).
#[derive(Clone, Debug)]
pub struct JitEngine {
    /// The name reports print, from [`jit_option_sets`].
    pub name: &'static str,
    /// The options; `budget` and `unbounded` follow each run's [`Env`].
    pub opts: JitOptions,
}

impl Engine for JitEngine {
    fn name(&self) -> &'static str {
        self.name
    }

    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError> {
        let jit = bpfx_jit::compile_unverified(prog, &for_run(&self.opts, env))
            .map_err(|e| RunError::Compile(e.to_string()))?;
        jit.run(input, env).map_err(RunError::Trap)
    }
}

/// The JIT under one option set on one verified program, through its verified entry
/// (`bpfx_jit::compile`), which drops the guard of every access the verifier proved (unless
/// the options keep them: Spectre masking does).
#[derive(Debug)]
pub struct VerifiedJit {
    /// The name reports print: `verified-` and the option set's name.
    pub name: &'static str,
    /// The only program this engine runs.
    pub program: VerifiedProgram,
    /// The options; `budget` and `unbounded` follow each run's [`Env`].
    pub opts: JitOptions,
}

impl Engine for VerifiedJit {
    fn name(&self) -> &'static str {
        self.name
    }

    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError> {
        if prog != self.program.program() {
            return Err(RunError::Compile(
                "the engine runs only the program it verified".into(),
            ));
        }
        let jit = bpfx_jit::compile(&self.program, &for_run(&self.opts, env))
            .map_err(|e| RunError::Compile(e.to_string()))?;
        jit.run(input, env).map_err(RunError::Trap)
    }
}

/// One JIT option set of the matrix, with the names of its engines.
struct OptionSet {
    /// The name of its [`JitEngine`] (`jit-blinding`).
    name: &'static str,
    /// The name of its [`VerifiedJit`] (`verified-jit-blinding`).
    verified: &'static str,
    opts: JitOptions,
}

/// The option sets, in the matrix's order.
fn option_sets() -> [OptionSet; 5] {
    let set = |name, verified, opts| OptionSet {
        name,
        verified,
        opts,
    };
    [
        set("jit", "verified-jit", JitOptions::default()),
        set(
            "jit-hardened",
            "verified-jit-hardened",
            JitOptions::hardened(),
        ),
        set(
            "jit-blinding",
            "verified-jit-blinding",
            JitOptions {
                blinding: true,
                ..JitOptions::default()
            },
        ),
        set(
            "jit-spectre",
            "verified-jit-spectre",
            JitOptions {
                spectre: true,
                ..JitOptions::default()
            },
        ),
        set(
            "jit-dual",
            "verified-jit-dual",
            JitOptions {
                code_memory: CodeMemory::DualMapped,
                ..JitOptions::default()
            },
        ),
    ]
}

/// Every JIT option set, each with the name of its engine: the default options (`jit`), the
/// hardened preset, blinding alone, Spectre masking alone, and dual-mapped code memory. Every
/// JIT-specific safety property is checked under each of them.
pub fn jit_option_sets() -> Vec<(&'static str, JitOptions)> {
    option_sets()
        .into_iter()
        .map(|s| (s.name, s.opts))
        .collect()
}

/// The engine matrix: the reference interpreter (`None`), then the JIT under every option set
/// of [`jit_option_sets`], each with its name.
pub fn matrix() -> Vec<(&'static str, Option<JitOptions>)> {
    std::iter::once(("interp", None))
        .chain(jit_option_sets().into_iter().map(|(n, o)| (n, Some(o))))
        .collect()
}

/// Every engine of the [`matrix`], the reference interpreter first.
pub fn engines() -> Vec<Box<dyn Engine>> {
    matrix()
        .into_iter()
        .map(|(name, opts)| -> Box<dyn Engine> {
            match opts {
                None => Box::new(InterpEngine),
                Some(opts) => Box::new(JitEngine { name, opts }),
            }
        })
        .collect()
}

/// The [`matrix`] on the verified program `v`: the reference interpreter, then the verified JIT
/// of `v` under every option set.
pub fn verified_engines(v: VerifiedProgram) -> Vec<Box<dyn Engine>> {
    verified_subset(v, |_| true)
}

/// The option sets of the sampled subset for case `i`, by index: the default JIT and the `i`-th
/// of the other option sets in turn (see the [module docs](self)).
fn sampled(i: u64) -> impl Fn(usize) -> bool {
    let others = option_sets().len() as u64 - 1;
    let extra = 1 + (i % others) as usize;
    move |set| set == 0 || set == extra
}

/// The sampled subset of [`engines`] for case `i` of a large random corpus: the interpreter,
/// the default JIT, and the `i`-th of the other option sets in turn.
pub fn sampled_engines(i: u64) -> Vec<Box<dyn Engine>> {
    let keep = sampled(i);
    let mut out: Vec<Box<dyn Engine>> = vec![Box::new(InterpEngine)];
    for (set, (name, opts)) in jit_option_sets().into_iter().enumerate() {
        if keep(set) {
            out.push(Box::new(JitEngine { name, opts }));
        }
    }
    out
}

/// The sampled subset of [`verified_engines`] for case `i`, as [`sampled_engines`] chooses it.
pub fn sampled_verified_engines(v: VerifiedProgram, i: u64) -> Vec<Box<dyn Engine>> {
    verified_subset(v, sampled(i))
}

/// The interpreter, then the verified JIT of `v` under the option sets `keep` accepts (by
/// index in [`jit_option_sets`]).
fn verified_subset(v: VerifiedProgram, keep: impl Fn(usize) -> bool) -> Vec<Box<dyn Engine>> {
    let mut out: Vec<Box<dyn Engine>> = vec![Box::new(InterpEngine)];
    for (i, set) in option_sets().into_iter().enumerate() {
        if keep(i) {
            out.push(Box::new(VerifiedJit {
                name: set.verified,
                program: v.clone(),
                opts: set.opts,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_the_interpreter_then_every_option_set_once() {
        let names: Vec<_> = engines().iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            [
                "interp",
                "jit",
                "jit-hardened",
                "jit-blinding",
                "jit-spectre",
                "jit-dual"
            ]
        );
        let sets = jit_option_sets();
        for (i, (_, a)) in sets.iter().enumerate() {
            for (_, b) in &sets[i + 1..] {
                assert_ne!(a, b, "two option sets are the same");
            }
        }
        assert!(sets.iter().any(|(_, o)| o.blinding && o.spectre));
        assert!(
            sets.iter()
                .any(|(_, o)| o.code_memory == CodeMemory::DualMapped)
        );
    }

    #[test]
    fn the_verified_matrix_names_every_option_set_apart() {
        let v = bpfx_verifier::verify(
            Program::from_ops(&[bpfx_bytecode::Op::Exit]).expect("decodes"),
            &bpfx_verifier::Config::conformance(bpfx_verifier::Mode::Checked, 0),
        )
        .expect("verifies");
        let names: Vec<_> = verified_engines(v).iter().map(|e| e.name()).collect();
        assert_eq!(names[0], "interp");
        for (set, name) in jit_option_sets().iter().zip(&names[1..]) {
            assert_eq!(*name, format!("verified-{}", set.0));
        }
    }

    #[test]
    fn the_sample_rotates_through_every_option_set() {
        let sets = jit_option_sets().len();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..sets as u64 {
            let names: Vec<_> = sampled_engines(i).iter().map(|e| e.name()).collect();
            assert_eq!(names[..2], ["interp", "jit"], "case {i}");
            assert_eq!(names.len(), 3, "case {i}");
            seen.insert(names[2]);
        }
        assert_eq!(seen.len(), sets - 1, "{seen:?}");
    }
}
