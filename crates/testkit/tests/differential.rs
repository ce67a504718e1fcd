//! Differential parity: generated programs on the interpreter and the JIT through
//! `check_with()`, which compares r0 or the trap (kind and pc), every byte of the input memory,
//! and the budget left. Case `seed` runs on the sampled subset of the engine matrix
//! (`sampled_engines(seed)`: the interpreter, the default JIT and one other option set in
//! turn), so every option set sees a share of the corpus.

use bpfx_jit::{JitOptions, compile_unverified};
use bpfx_testkit::{Case, check_with, generate, sampled_engines};

const CASES: u64 = 20_000;

/// The JIT's listing of the case, for the failure report.
fn jit_listing(case: &Case) -> String {
    let opts = JitOptions {
        budget: case.budget.is_some(),
        ..bpfx_jit::JitOptions::default()
    };
    match compile_unverified(&case.prog, &opts) {
        Ok(jit) => jit.listing(),
        Err(e) => format!("(does not compile: {e})"),
    }
}

#[test]
fn generated_programs_agree_on_every_engine() {
    let mut failures = Vec::new();
    for seed in 0..CASES {
        let case = generate(seed);
        if let Err(m) = check_with(&case, &sampled_engines(seed)) {
            failures.push(format!(
                "seed {seed}: {m}\nJIT listing:\n{}",
                jit_listing(&case)
            ));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es), first ones:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
