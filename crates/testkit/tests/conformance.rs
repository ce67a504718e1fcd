//! The BPF conformance suite and the repository's own `.data` files (`tests/data/`) on every
//! engine of the matrix: one data-driven harness, no per-engine code.

use bpfx_exec::Helpers;
use bpfx_testkit::suite::{
    SUITE_SIZE, SuiteTest, load_own, load_suite, own_dir, run_test, suite_dir,
};
use bpfx_testkit::{Case, check, engines};

/// A budget no test of the suite reaches: the runs with it have the budget charge compiled in.
const AMPLE_BUDGET: u64 = 1_000_000;

/// Runs every test on every engine of the matrix, without a budget and with an ample one, and
/// fails with every failure, naming the engine, the budget and the file.
fn passes_on_every_engine(what: &str, tests: &[SuiteTest]) {
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for engine in engines() {
        let mut passed = 0;
        for budget in [None, Some(AMPLE_BUDGET)] {
            for test in tests {
                match run_test(engine.as_ref(), test, budget) {
                    Ok(()) => passed += 1,
                    Err(why) => failures.push(format!(
                        "{}, budget {budget:?}: {}: {why}",
                        engine.name(),
                        test.file.name
                    )),
                }
            }
        }
        let line = format!(
            "{}: {what}: {passed}/{} passed",
            engine.name(),
            2 * tests.len()
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
    passes_on_every_engine("conformance", &tests);
}

/// The repository's own `.data` files: the expected r0, or the exact trap (kind and pc), on
/// every engine; and through `check()`, the same memory left on every engine.
#[test]
fn own_data_files_pass_on_every_engine() {
    let dir = own_dir();
    let tests = load_own(&dir)
        .unwrap_or_else(|e| panic!("cannot load the .data files at {}: {e}", dir.display()));
    assert!(
        tests.len() >= 40,
        "only {} files in {}",
        tests.len(),
        dir.display()
    );
    passes_on_every_engine("tests/data", &tests);
    for test in &tests {
        let case = Case {
            prog: test.prog.clone(),
            input: test.file.mem.clone(),
            budget: None,
            helpers: Helpers::conformance(),
        };
        if let Err(m) = check(&case) {
            panic!("{}: {m}", test.file.name);
        }
    }
}

/// Our assembler (or the raw slots, where a file has them) must produce exactly the bytecode
/// the suite's own runner produces.
#[test]
fn programs_match_the_reference_bytecode() {
    let tests = load_suite(&suite_dir()).expect("suite loads");
    let differ: Vec<&str> = tests
        .iter()
        .filter(|t| t.reference.as_ref() != Some(&t.prog.to_bytes()))
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
