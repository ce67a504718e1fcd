//! Every conformance program is accepted in Checked mode (they are all memory-safe), and the
//! Strict-mode verdict of each one is snapshotted, so a change in what Strict proves shows up
//! in review.

use bpfx_bytecode::Program;
use bpfx_verifier::{Config, Mode, verify};
use std::fmt::Write as _;

const SUITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/bpf_conformance"
);

struct Case {
    name: String,
    prog: Program,
    mem_len: u64,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex byte"))
        .collect()
}

fn cases() -> Vec<Case> {
    let path = format!("{SUITE}/assembled_tests.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the conformance suite must exist at {path}: {e}"));
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let name = v["test"].as_str().expect("test name").to_string();
            let prog = Program::from_bytes(&hex(v["program_hex"].as_str().expect("program")))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let mem_len = hex(v["memory_hex"].as_str().unwrap_or("")).len() as u64;
            Case {
                name,
                prog,
                mem_len,
            }
        })
        .collect();
    assert_eq!(cases.len(), 313, "the suite has 313 programs");
    cases
}

#[test]
fn checked_mode_accepts_every_conformance_program() {
    let mut failures = Vec::new();
    for c in cases() {
        if let Err(e) = verify(c.prog, &Config::conformance(Mode::Checked, c.mem_len)) {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
}

#[test]
fn strict_mode_verdicts() {
    let mut out = String::new();
    let mut accepted = 0;
    for c in cases() {
        match verify(c.prog, &Config::conformance(Mode::Strict, c.mem_len)) {
            Ok(_) => accepted += 1,
            Err(e) => writeln!(out, "{}: {e}", c.name).expect("write to a String"),
        }
    }
    let out = format!("accepted: {accepted} of 313\nrejected:\n{out}");
    insta::assert_snapshot!("strict_conformance", out);
}
