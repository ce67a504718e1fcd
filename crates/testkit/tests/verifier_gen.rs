//! Generated programs through the verifier in both modes: it never panics, and whatever it
//! accepts runs on every engine, with the same outcome, and with no trap other than those the
//! mode leaves to run-time guards.

use bpfx_exec::TrapKind;
use bpfx_testkit::suite::{load_suite, suite_dir};
use bpfx_testkit::{Case, check, generate};
use bpfx_verifier::{Config, Mode, verify};

const CASES: u64 = 3_000;

/// Traps an accepted program may still meet at run time in `mode`.
fn allowed(mode: Mode, kind: TrapKind) -> bool {
    match mode {
        // Strict proves every access and every call depth: only the embedder's budget remains.
        Mode::Strict => kind == TrapKind::BudgetExhausted,
        // Checked leaves guards on what it cannot prove: bounds, call depth, and the helper id of
        // a `callx` whose register it cannot pin down.
        Mode::Checked => matches!(
            kind,
            TrapKind::OutOfBounds
                | TrapKind::BudgetExhausted
                | TrapKind::CallDepthExceeded
                | TrapKind::UnknownHelper
        ),
    }
}

#[test]
fn accepted_generated_programs_run_without_unguarded_traps() {
    let mut accepted = [0u64; 2];
    for seed in 0..CASES {
        let case = generate(seed);
        for (i, mode) in [Mode::Strict, Mode::Checked].into_iter().enumerate() {
            let cfg = Config::conformance(mode, case.input.len() as u64);
            // A rejection is a legitimate answer; only acceptance makes promises.
            let verified = match verify(case.prog.clone(), &cfg) {
                Ok(v) => v,
                Err(e) => {
                    // The generator does not promise structural soundness (it emits dead code
                    // and unregistered helper ids); Checked mode may reject only for that.
                    assert!(
                        mode == Mode::Strict || e.kind.is_structural(),
                        "seed {seed}: Checked mode rejects for a non-structural reason: {e}"
                    );
                    continue;
                }
            };
            accepted[i] += 1;
            assert_eq!(verified.program(), &case.prog);
            let outcome = check(&case).unwrap_or_else(|m| {
                panic!(
                    "seed {seed}: engines disagree ({}):\n{}",
                    m.engine, m.listing
                )
            });
            if let Err(trap) = outcome.result {
                assert!(
                    allowed(mode, trap.kind),
                    "seed {seed}: accepted in {mode:?} mode but trapped with {trap}:\n{}",
                    bpfx_testkit::check::listing(&case.prog)
                );
            }
        }
    }
    // Enough programs get through for the run-time promise to be exercised in both modes.
    assert!(
        accepted[1] >= CASES / 20,
        "Checked mode accepted only {}",
        accepted[1]
    );
    assert!(
        accepted[0] <= accepted[1],
        "Strict accepted more than Checked"
    );
}

/// The generator's programs rarely pass Strict mode (they loop and probe one byte past every
/// bound), so the conformance programs carry Strict mode's run-time promise: every one it
/// accepts runs on every engine without a trap.
#[test]
fn conformance_programs_accepted_in_strict_mode_never_trap() {
    let suite = load_suite(&suite_dir()).expect("the conformance suite loads");
    let mut accepted = 0;
    for t in &suite {
        let cfg = Config::conformance(Mode::Strict, t.file.mem.len() as u64);
        if verify(t.prog.clone(), &cfg).is_err() {
            continue;
        }
        accepted += 1;
        let case = Case {
            prog: t.prog.clone(),
            input: t.file.mem.clone(),
            budget: None,
            helpers: bpfx_exec::Helpers::conformance(),
        };
        let outcome = check(&case)
            .unwrap_or_else(|m| panic!("{}: engines disagree ({})", t.file.name, m.engine));
        if let Err(trap) = outcome.result {
            panic!(
                "{}: accepted in Strict mode but trapped with {trap}",
                t.file.name
            );
        }
    }
    assert!(
        accepted >= 300,
        "Strict mode accepted only {accepted} conformance programs"
    );
}
