//! Differential checking: run one case on every engine and demand identical outcomes.
//!
//! The reference interpreter runs first; then every engine of [`engines`], the engine matrix
//! (the interpreter included, which makes every check also a determinism check, and the JIT
//! under every option set) runs the same case and must
//! reproduce its [`Outcome`] exactly: `r0` or the trap's kind and pc, for an out-of-bounds
//! access its address, size and the regions it was checked against ([`Env::fault`]), every
//! byte of the input memory, and the budget left.
//!
//! Programs see real host addresses, so a result may be a pointer. To make such results
//! comparable, all runs of one check share one input buffer (its contents restored from the
//! case before each run) and one [`Env`], whose stack buffer is never reallocated: every engine
//! sees the same `r1` and `r10`.
//!
//! A case may also lend its program shared memory blocks ([`check_shared`]): they are passed
//! next to the [`Case`] rather than in it because the program usually embeds their addresses
//! (`lddw`), so the blocks exist before the program is built; their contents are restored
//! before each run and compared after it like the input.

use crate::engine::{Engine, InterpEngine, RunError, engines};
use bpfx_bytecode::Program;
use bpfx_exec::{AccessFault, Env, Helpers, SharedMem, Trap};
use std::fmt;
use std::sync::Arc;

/// One program with everything needed to run it.
#[derive(Clone, Debug)]
pub struct Case {
    /// The program.
    pub prog: Program,
    /// Initial contents of the input memory.
    pub input: Vec<u8>,
    /// Instruction budget, or `None` for unlimited.
    pub budget: Option<u64>,
    /// Registered helpers.
    pub helpers: Helpers,
}

/// Everything observable about one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `r0`, or the trap.
    pub result: Result<u64, Trap>,
    /// For an out-of-bounds load, store or atomic: what it tried to touch ([`Env::fault`]).
    pub fault: Option<AccessFault>,
    /// The input memory after the run.
    pub memory: Vec<u8>,
    /// The budget left after the run.
    pub budget_left: Option<u64>,
    /// The contents of each shared block after the run (empty without shared blocks).
    pub shared: Vec<Vec<u8>>,
}

/// An engine that disagreed with the reference interpreter.
#[derive(Clone, Debug)]
pub struct Mismatch {
    /// The disagreeing engine.
    pub engine: &'static str,
    /// The reference interpreter's outcome (boxed, like `actual`, to keep `Result`s small).
    pub expected: Box<Outcome>,
    /// The engine's outcome, or why it produced none.
    pub actual: Box<Result<Outcome, String>>,
    /// The program, one instruction per line with its pc.
    pub listing: String,
    /// The input the case started from.
    pub input: Vec<u8>,
}

impl std::error::Error for Mismatch {}

/// Runs `case` on the reference interpreter, then on every engine of [`engines`], and returns
/// the common outcome or the first disagreement.
pub fn check(case: &Case) -> Result<Outcome, Mismatch> {
    check_with(case, &engines())
}

/// [`check`] against the given engines instead of every engine.
pub fn check_with(case: &Case, engines: &[Box<dyn Engine>]) -> Result<Outcome, Mismatch> {
    check_shared_with(case, &[], engines)
}

/// [`check`] with `shared` lent to the program as [`Env::shared`]: every run starts from the
/// blocks' contents as they are now, and the blocks' contents after each run are part of the
/// outcome. The blocks are left as the last engine's run left them.
pub fn check_shared(case: &Case, shared: &[Arc<SharedMem>]) -> Result<Outcome, Mismatch> {
    check_shared_with(case, shared, &engines())
}

/// [`check_shared`] against the given engines instead of every engine.
pub fn check_shared_with(
    case: &Case,
    shared: &[Arc<SharedMem>],
    engines: &[Box<dyn Engine>],
) -> Result<Outcome, Mismatch> {
    let mut buf = case.input.clone();
    let mut env = Env::with_helpers(case.helpers.clone());
    env.shared = shared.to_vec();
    let initial: Vec<Vec<u8>> = shared.iter().map(|m| contents(m)).collect();
    let reference = InterpEngine;
    let mismatch = |engine: &dyn Engine, expected: Outcome, actual| Mismatch {
        engine: engine.name(),
        expected: Box::new(expected),
        actual: Box::new(actual),
        listing: listing(&case.prog),
        input: case.input.clone(),
    };
    let expected = match run_on(&reference, case, &initial, &mut buf, &mut env) {
        Ok(outcome) => outcome,
        // The interpreter prepares nothing, so this cannot happen; report it, don't hide it.
        Err(e) => {
            let empty = Outcome {
                result: Ok(0),
                fault: None,
                memory: Vec::new(),
                budget_left: None,
                shared: Vec::new(),
            };
            return Err(mismatch(&reference, empty, Err(e)));
        }
    };
    for engine in engines {
        let actual = run_on(engine.as_ref(), case, &initial, &mut buf, &mut env);
        if actual.as_ref() != Ok(&expected) {
            return Err(mismatch(engine.as_ref(), expected, actual));
        }
    }
    Ok(expected)
}

/// Mismatches a corpus run reports before it stops: enough to see a pattern, few enough to read.
pub const REPORTED_MISMATCHES: usize = 3;

/// Runs `each` on every item of a corpus and panics with the first [`REPORTED_MISMATCHES`]
/// failures it returns (the corpus stops there); returns how many items ran. `each` names the
/// item in its failure (`seed 17: engine `jit-spectre` disagrees …`).
pub fn run_corpus<T>(
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(T) -> Result<(), String>,
) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for item in items {
        count += 1;
        if let Err(failure) = each(item) {
            failures.push(failure);
            if failures.len() >= REPORTED_MISMATCHES {
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es), the first ones:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

/// One run of `case` on `engine`, in the shared buffer and environment.
fn run_on(
    engine: &dyn Engine,
    case: &Case,
    initial: &[Vec<u8>],
    buf: &mut [u8],
    env: &mut Env,
) -> Result<Outcome, String> {
    buf.copy_from_slice(&case.input);
    for (m, bytes) in env.shared.iter().zip(initial) {
        m.write(0, bytes);
    }
    env.budget = case.budget;
    // A case without a budget runs without the default one too (the kit's programs end by
    // construction, or carry a budget), so the JIT's code without any budget charge stays
    // compared with the interpreter.
    env.unbounded = case.budget.is_none();
    let result = match engine.execute(&case.prog, buf, env) {
        Ok(r0) => Ok(r0),
        Err(RunError::Trap(t)) => Err(t),
        Err(RunError::Compile(e)) => return Err(e),
    };
    Ok(Outcome {
        result,
        fault: env.fault.clone(),
        memory: buf.to_vec(),
        budget_left: env.budget,
        shared: env.shared.iter().map(|m| contents(m)).collect(),
    })
}

/// Every byte of a shared block.
fn contents(m: &SharedMem) -> Vec<u8> {
    let mut v = vec![0; m.len()];
    m.read(0, &mut v);
    v
}

/// The program as assembly, one instruction per line, prefixed with its pc.
pub fn listing(prog: &Program) -> String {
    bpfx_bytecode::disassemble_with_pcs(prog)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.result {
            Ok(r0) => write!(f, "r0 = {r0:#x}")?,
            Err(t) => write!(f, "trap: {t}")?,
        }
        if let Some(fault) = &self.fault {
            write!(f, " ({fault})")?;
        }
        match self.budget_left {
            Some(b) => write!(f, ", budget left {b}")?,
            None => write!(f, ", no budget")?,
        }
        write!(f, ", memory [{}]", hex(&self.memory))?;
        for (i, block) in self.shared.iter().enumerate() {
            write!(f, ", shared {i} [{}]", hex(block))?;
        }
        Ok(())
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "engine `{}` disagrees with the interpreter", self.engine)?;
        writeln!(f, "  interp: {}", self.expected)?;
        match self.actual.as_ref() {
            Ok(o) => writeln!(f, "  {:>6}: {o}", self.engine)?,
            Err(e) => writeln!(f, "  {:>6}: no outcome: {e}", self.engine)?,
        }
        if let Ok(o) = self.actual.as_ref() {
            let diff: Vec<String> = o
                .memory
                .iter()
                .zip(&self.expected.memory)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, (a, b))| format!("[{i}] {b:02x} vs {a:02x}"))
                .collect();
            if !diff.is_empty() {
                writeln!(f, "  memory differs at {}", diff.join(", "))?;
            }
        }
        writeln!(f, "  input: [{}]", hex(&self.input))?;
        writeln!(f, "program:")?;
        write!(f, "{}", self.listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_bytecode::{AluOp, Op, Operand, Reg, Size, Width};

    /// The interpreter, except that it also writes 0xee to the first input byte.
    struct Scribbler;

    impl Engine for Scribbler {
        fn name(&self) -> &'static str {
            "scribbler"
        }
        fn execute(
            &self,
            prog: &Program,
            input: &mut [u8],
            env: &mut Env,
        ) -> Result<u64, RunError> {
            let r = InterpEngine.execute(prog, input, env);
            if let Some(b) = input.first_mut() {
                *b = 0xee;
            }
            r
        }
    }

    /// The interpreter, except that it reports one instruction fewer of budget used.
    struct Miser;

    impl Engine for Miser {
        fn name(&self) -> &'static str {
            "miser"
        }
        fn execute(
            &self,
            prog: &Program,
            input: &mut [u8],
            env: &mut Env,
        ) -> Result<u64, RunError> {
            let r = InterpEngine.execute(prog, input, env);
            env.budget = env.budget.map(|b| b + 1);
            r
        }
    }

    fn case(budget: Option<u64>) -> Case {
        let ops = [
            Op::Store {
                size: Size::B,
                base: Reg::R1,
                off: 1,
                src: Operand::Imm(9),
            },
            Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst: Reg::R0,
                src: Operand::Reg(Reg::R1),
            },
            Op::Exit,
        ];
        Case {
            prog: Program::from_ops(&ops).expect("decodes"),
            input: vec![1, 2, 3],
            budget,
            helpers: Helpers::new(),
        }
    }

    #[test]
    fn agreeing_engines_share_the_buffer_address() {
        // r0 is the buffer's address: equal only because every run uses the same buffer.
        let c = case(Some(10));
        let outcome = check_with(&c, &[Box::new(InterpEngine), Box::new(InterpEngine)])
            .expect("the interpreter agrees with itself");
        assert_eq!(outcome.memory, vec![1, 9, 3]);
        assert_eq!(outcome.budget_left, Some(7));
        assert!(matches!(outcome.result, Ok(addr) if addr != 0));
    }

    #[test]
    fn a_memory_difference_is_a_mismatch_with_a_listing() {
        let m = check_with(&case(None), &[Box::new(Scribbler)]).expect_err("memory differs");
        assert_eq!(m.engine, "scribbler");
        let text = m.to_string();
        assert!(text.contains("memory differs at [0] 01 vs ee"), "{text}");
        assert!(text.contains("stb [r1+1], 9"), "{text}");
    }

    #[test]
    #[should_panic(expected = "2 mismatch(es), the first ones:\ncase 4: no\ncase 5: no")]
    fn a_corpus_fails_with_its_failures() {
        run_corpus(0..6, |i| {
            if i >= 4 {
                Err(format!("case {i}: no"))
            } else {
                Ok(())
            }
        });
    }

    #[test]
    fn a_corpus_stops_at_the_reported_mismatches() {
        let mut ran = 0;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_corpus(0..100, |i| {
                ran += 1;
                Err(format!("case {i}"))
            })
        }));
        assert!(run.is_err());
        assert_eq!(ran, REPORTED_MISMATCHES);
        assert_eq!(run_corpus(0..7, |_| Ok(())), 7);
    }

    #[test]
    fn a_budget_difference_is_a_mismatch() {
        let m = check_with(&case(Some(5)), &[Box::new(Miser)]).expect_err("budget differs");
        assert_eq!(m.expected.budget_left, Some(2));
        assert_eq!(m.actual.map(|o| o.budget_left), Ok(Some(3)));
    }
}
