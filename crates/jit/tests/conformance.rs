//! Every program of the BPF conformance suite, compiled and run: the expected r0, every time.

use bpfx_bytecode::Program;
use bpfx_exec::{Env, Helpers};
use bpfx_jit::{JitOptions, compile_unverified};

const SUITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/bpf_conformance/assembled_tests.jsonl"
);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex byte"))
        .collect()
}

fn expected(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("hex result"),
        None => s.parse().expect("decimal result"),
    }
}

fn run_suite(opts: &JitOptions, budget: Option<u64>) {
    let text = std::fs::read_to_string(SUITE)
        .unwrap_or_else(|e| panic!("the conformance suite must exist at {SUITE}: {e}"));
    let mut failures = Vec::new();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).expect("jsonl line");
        let name = case["test"].as_str().expect("test name");
        let prog = Program::from_bytes(&hex(case["program_hex"].as_str().expect("program")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut mem = hex(case["memory_hex"].as_str().unwrap_or(""));
        let want = expected(case["expected_r0"].as_str().expect("expected_r0"));
        let jit = compile_unverified(&prog, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut env = Env::with_helpers(Helpers::conformance());
        env.budget = budget;
        let got = jit.run(&mut mem, &mut env);
        count += 1;
        if got != Ok(want) {
            failures.push(format!(
                "{name}: got {got:?}, want {want:#x}\n{}",
                jit.listing()
            ));
        }
    }
    assert_eq!(count, 313, "the suite has 313 programs");
    assert!(
        failures.is_empty(),
        "{} of {count} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn conformance_suite_passes() {
    run_suite(&JitOptions::default(), None);
}

#[test]
fn conformance_suite_passes_with_budget_code() {
    run_suite(
        &JitOptions {
            budget: true,
            ..JitOptions::default()
        },
        None,
    );
    run_suite(
        &JitOptions {
            budget: true,
            ..JitOptions::default()
        },
        Some(1_000_000),
    );
}
