//! The per-block instruction budget, exact to the instruction, for every budget from 0 to 50,
//! on every engine of the matrix (the JIT under every option set: blinding and Spectre masking
//! change the code between two charges, never where a run stops). That hardened code agrees
//! with the interpreter on generated programs is `tests/differential.rs`, whose sampled subset
//! runs every option set.

use bpfx_bytecode::Program;
use bpfx_exec::Env;
use bpfx_jit::{JitOptions, compile_unverified};
use bpfx_testkit::{Case, check_with, engines, generate, run_corpus};

/// Runs every case on every engine of the matrix.
fn run_all(cases: impl Iterator<Item = (String, Case)>) -> usize {
    let engines = engines();
    run_corpus(cases, |(name, case)| match check_with(&case, &engines) {
        Ok(_) => Ok(()),
        Err(m) => Err(format!("{name}: {m}")),
    })
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
