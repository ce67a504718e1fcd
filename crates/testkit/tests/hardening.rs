//! The JIT's hardening options change the code, never the outcome: generated programs with
//! blinding, Spectre masking and both, compared with the interpreter through `check()`; and the
//! per-block instruction budget, exact to the instruction, for every budget from 0 to 50.

use bpfx_bytecode::Program;
use bpfx_exec::Env;
use bpfx_jit::{JitOptions, compile_unverified};
use bpfx_testkit::{Case, Engine, InterpEngine, RunError, check_with, generate};

/// The JIT compiled with `opts`, plus the budget charge when the run has a budget.
struct OptionsJit(&'static str, JitOptions);

impl Engine for OptionsJit {
    fn name(&self) -> &'static str {
        self.0
    }

    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError> {
        let opts = JitOptions {
            budget: env.budget.is_some(),
            ..self.1.clone()
        };
        let jit = compile_unverified(prog, &opts).map_err(|e| RunError::Compile(e.to_string()))?;
        jit.run(input, env).map_err(RunError::Trap)
    }
}

fn engines() -> Vec<Box<dyn Engine>> {
    let blinding = JitOptions {
        blinding: true,
        ..JitOptions::default()
    };
    let spectre = JitOptions {
        spectre: true,
        ..JitOptions::default()
    };
    vec![
        Box::new(InterpEngine),
        Box::new(OptionsJit("jit-blinding", blinding)),
        Box::new(OptionsJit("jit-spectre", spectre)),
        Box::new(OptionsJit("jit-hardened", JitOptions::hardened())),
    ]
}

fn run_all(cases: impl Iterator<Item = (String, Case)>) -> usize {
    let engines = engines();
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, case) in cases {
        count += 1;
        if let Err(m) = check_with(&case, &engines) {
            failures.push(format!("{name}: {m}"));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

#[test]
fn hardened_code_agrees_with_the_interpreter() {
    let n = run_all((0..3_000).map(|seed| (format!("seed {seed}"), generate(seed))));
    assert_eq!(n, 3_000);
}

#[test]
fn budgets_from_0_to_50_stop_at_the_same_instruction() {
    let cases = (0..150u64).flat_map(|seed| {
        let case = generate(seed);
        (0..=50).map(move |budget| {
            let mut c = case.clone();
            c.budget = Some(budget);
            (format!("seed {seed}, budget {budget}"), c)
        })
    });
    assert_eq!(run_all(cases), 150 * 51);
}

/// Long straight-line code spans several blocks (a block holds at most 64 instructions), and
/// a loop re-enters its block: every budget around the block boundaries must stop exactly.
#[test]
fn budgets_in_long_blocks_and_loops_are_exact() {
    let mut text = String::from("mov r0, 0\n");
    for i in 0..150 {
        text.push_str(&format!("add r0, {}\n", i + 1));
        if i % 37 == 0 {
            text.push_str("stxdw [r10-8], r0\n");
        }
    }
    text.push_str("mov r2, 5\nloop:\nadd r0, r2\nsub r2, 1\njne r2, 0, loop\nexit\n");
    let prog =
        Program::decode(bpfx_bytecode::assemble(&text).expect("assembles")).expect("decodes");
    let total = prog.iter().count() as u64 + 3 * 4;
    let cases = (0..=total + 2).map(|budget| {
        let case = Case {
            prog: prog.clone(),
            input: Vec::new(),
            budget: Some(budget),
            helpers: bpfx_exec::Helpers::conformance(),
        };
        (format!("budget {budget}"), case)
    });
    run_all(cases);
    // The premise: the largest budgets finish and the smaller ones trap.
    let mut env = Env::new();
    env.budget = Some(total);
    let jit = compile_unverified(
        &prog,
        &JitOptions {
            budget: true,
            ..JitOptions::default()
        },
    )
    .expect("compiles");
    assert!(jit.run(&mut [], &mut env).is_ok(), "{total} is enough");
    assert_eq!(env.budget, Some(0));
    env.budget = Some(total - 1);
    assert!(jit.run(&mut [], &mut env).is_err(), "{} is not", total - 1);
}
