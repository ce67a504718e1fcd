//! Differential parity: generated programs on the interpreter and the JIT through
//! `check_with()`, which compares r0 or the trap (kind and pc), every byte of the input memory,
//! and the budget left. Case `seed` runs on the sampled subset of the engine matrix
//! (`sampled_engines(seed)`: the interpreter, the default JIT and one other option set in
//! turn), so every option set sees a share of the corpus.

use bpfx_jit::{JitOptions, compile_unverified};
use bpfx_testkit::{Case, check_with, generate, jit_option_sets, run_corpus, sampled_engines};

const CASES: u64 = 20_000;

/// The listing of the case by the JIT under the option set of `engine` (the one that
/// disagreed; the default options if it is not a JIT), for the failure report.
fn jit_listing(case: &Case, engine: &str) -> String {
    let opts = jit_option_sets()
        .into_iter()
        .find(|(name, _)| *name == engine)
        .map_or_else(JitOptions::default, |(_, opts)| opts);
    let opts = JitOptions {
        budget: case.budget.is_some(),
        unbounded: case.budget.is_none(),
        ..opts
    };
    match compile_unverified(&case.prog, &opts) {
        Ok(jit) => jit.listing(),
        Err(e) => format!("(does not compile: {e})"),
    }
}

#[test]
fn generated_programs_agree_on_every_engine() {
    let n = run_corpus(0..CASES, |seed| {
        let case = generate(seed);
        match check_with(&case, &sampled_engines(seed)) {
            Ok(_) => Ok(()),
            Err(m) => Err(format!(
                "seed {seed}: {m}\nJIT listing ({}):\n{}",
                m.engine,
                jit_listing(&case, m.engine)
            )),
        }
    });
    assert_eq!(n, CASES as usize);
}
