//! The BPF conformance suite on every engine: one data-driven harness, no per-engine code.

use bpfx_testkit::engines;
use bpfx_testkit::suite::{SUITE_SIZE, load_suite, run_test, suite_dir};

#[test]
fn conformance_suite_passes_on_every_engine() {
    let dir = suite_dir();
    let tests = load_suite(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot load the conformance suite at {}: {e}",
            dir.display()
        )
    });
    assert_eq!(tests.len(), SUITE_SIZE, "test files in {}", dir.display());
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for engine in engines() {
        let mut passed = 0;
        for test in &tests {
            match run_test(engine.as_ref(), test) {
                Ok(()) => passed += 1,
                Err(why) => failures.push(format!("{}: {}: {why}", engine.name(), test.file.name)),
            }
        }
        let line = format!(
            "{}: conformance: {passed}/{} passed",
            engine.name(),
            tests.len()
        );
        println!("{line}");
        summary.push(line);
    }
    assert!(
        failures.is_empty(),
        "{}\n{} failure(s):\n{}",
        summary.join("\n"),
        failures.len(),
        failures.join("\n")
    );
}

/// Our assembler (or the raw slots, where a file has them) must produce exactly the bytecode
/// the suite's own runner produces.
#[test]
fn programs_match_the_reference_bytecode() {
    let tests = load_suite(&suite_dir()).expect("suite loads");
    let differ: Vec<&str> = tests
        .iter()
        .filter(|t| t.prog.to_bytes() != t.reference)
        .map(|t| t.file.name.as_str())
        .collect();
    assert!(
        differ.is_empty(),
        "bytecode differs from program_hex: {differ:?}"
    );
    assert!(
        tests.iter().any(|t| t.file.raw.is_some()),
        "lddw.data has `-- raw`"
    );
}

/// Where a file has both, its assembly and its raw slots agree.
#[test]
fn asm_and_raw_sections_agree() {
    let tests = load_suite(&suite_dir()).expect("suite loads");
    for t in tests.iter().filter(|t| t.file.raw.is_some()) {
        let asm = t.file.asm.as_deref().expect("the raw file also has asm");
        let insns = bpfx_bytecode::assemble(asm).expect("assembles");
        let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
        assert_eq!(Some(bytes), t.file.raw_bytes(), "{}", t.file.name);
    }
}

#[test]
fn every_test_has_an_asm_section() {
    let tests = load_suite(&suite_dir()).expect("suite loads");
    for t in &tests {
        assert!(
            t.file.asm.as_ref().is_some_and(|a| !a.is_empty()),
            "{}",
            t.file.name
        );
    }
}
