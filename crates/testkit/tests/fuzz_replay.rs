//! The fuzz targets on stable: every committed seed (`fuzz/seeds/<target>/`), every regression
//! file (`fuzz/regressions/<target>/`) and a few thousand generated inputs per target run
//! through the same `bpfx_testkit::fuzz` functions the cargo-fuzz targets call, so CI checks
//! every fuzz property without nightly.
//!
//! Generated inputs are mutations of what the seeded program generator makes: its programs as
//! bytes, as text, and as raw cases, each with a few bytes overwritten, so that most inputs are
//! near-valid instead of noise the decoder rejects at the first slot.

use bpfx_bytecode::disassemble;
use bpfx_testkit::fuzz::{self, RAW_NO_BUDGET, TARGETS, raw_case_bytes};
use bpfx_testkit::generate;
use bpfx_testkit::generator::Rng;
use bpfx_testkit::suite::{load_suite, suite_dir};
use std::fs;
use std::path::{Path, PathBuf};

/// Generated inputs per target.
const GENERATED: u64 = 2_000;

/// Seed files the regeneration writes per target from the conformance suite.
const SEEDS_PER_TARGET: usize = 32;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz"))
}

/// Every file under `<dir>/<target>/`, sorted, as (target, path); a directory that names no
/// target is a failure, so a misspelt directory cannot silently go unreplayed.
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        // Files beside the target directories (a README) are not inputs.
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_string();
        assert!(
            fuzz::target(&name).is_some(),
            "{}: no fuzz target is called `{name}`",
            path.display()
        );
        for file in fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            let file = file.expect("directory entry").path();
            if file.is_file() {
                out.push((name.clone(), file));
            }
        }
    }
    out.sort();
    out
}

/// Runs every file through its target, naming the file if the property fails.
fn replay(files: &[(String, PathBuf)]) {
    for (name, path) in files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let target = fuzz::target(name).expect("checked by files()");
        let run = std::panic::catch_unwind(|| target(&data));
        assert!(
            run.is_ok(),
            "{}: the `{name}` property fails",
            path.display()
        );
    }
}

#[test]
fn every_seed_passes_and_every_target_has_seeds() {
    let seeds = files(&fuzz_dir().join("seeds"));
    for (name, _) in TARGETS {
        let n = seeds.iter().filter(|(t, _)| t == name).count();
        assert!(n >= 8, "target `{name}` has only {n} seeds");
    }
    replay(&seeds);
}

#[test]
fn every_regression_passes() {
    replay(&files(&fuzz_dir().join("regressions")));
}

/// `bytes` with up to three bytes overwritten at random places.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    for _ in 0..rng.below(4) {
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] = rng.next_u64() as u8;
    }
    bytes
}

/// The generated input for `target` number `seed`.
fn generated(target: &str, seed: u64) -> Vec<u8> {
    let case = generate(seed);
    let mut rng = Rng::new(seed ^ 0x5eed);
    let prog = case.prog.to_bytes();
    match target {
        "decode" => mutate(&mut rng, prog),
        "asm" => {
            let text = disassemble(&case.prog).into_bytes();
            mutate(&mut rng, text)
        }
        "diff_raw" | "verify" => {
            let flags = if rng.chance(1, 4) {
                RAW_NO_BUDGET
            } else {
                rng.below(128) as u8
            };
            mutate(&mut rng, raw_case_bytes(&case.input, flags, &prog))
        }
        // Mutated copies of the seed objects: a flipped byte anywhere in a real object reaches
        // far deeper into the loader than random bytes, which fail at the ELF magic.
        "elf" => {
            let objects = elf_objects();
            let (_, bytes) = &objects[seed as usize % objects.len()];
            mutate(&mut rng, bytes.clone())
        }
        "diff_structured" | "diff_loops" => {
            let len = rng.below(1024) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        }
        other => panic!("no generated inputs for `{other}`"),
    }
}

/// The ELF objects the loader's tests and the examples hold, by file name.
fn elf_objects() -> Vec<(String, Vec<u8>)> {
    let root = fuzz_dir().join("..");
    let mut out = Vec::new();
    for dir in ["crates/elf/tests/objects", "examples"] {
        let dir = root.join(dir);
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "o") {
                let name = path.file_name().expect("a file name").to_string_lossy();
                let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.push((name.into_owned(), bytes));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "only {} ELF objects found", out.len());
    out
}

#[test]
fn generated_inputs_pass_every_target() {
    for (name, target) in TARGETS {
        for seed in 0..GENERATED {
            let data = generated(name, seed);
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(
                run.is_ok(),
                "target `{name}`, generated input {seed} fails: {}",
                hex(&data)
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rewrites `fuzz/seeds/` from the conformance suite: for each of a spread of its tests, the
/// program's bytes (`decode`), its text (`asm`) and the program with its memory as a raw case
/// (`diff_raw`, `verify`); `elf` gets the loader's test objects and the examples;
/// `diff_structured` and `diff_loops` get byte strings from the PRNG. Run it by hand
/// after a change to the input formats:
/// `cargo test -p bpfx-testkit --test fuzz_replay -- --ignored write_seeds`.
#[test]
#[ignore = "rewrites the committed seed corpora"]
fn write_seeds() {
    let suite = load_suite(&suite_dir()).expect("the conformance suite loads");
    let seeds = fuzz_dir().join("seeds");
    let step = suite.len() / SEEDS_PER_TARGET;
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = seeds.join(target);
        fs::create_dir_all(&dir).expect("create the seed directory");
        fs::write(dir.join(name), data).expect("write a seed");
    };
    for t in suite.iter().step_by(step.max(1)).take(SEEDS_PER_TARGET) {
        let name = t.file.name.trim_end_matches(".data");
        let prog = t.prog.to_bytes();
        write("decode", name, &prog);
        let text = t.file.asm.clone().unwrap_or_else(|| disassemble(&t.prog));
        write("asm", name, text.as_bytes());
        if t.file.mem.len() <= usize::from(u8::MAX) {
            // The largest budget, or none where the program cannot loop.
            let case = raw_case_bytes(&t.file.mem, RAW_NO_BUDGET | 0x7f, &prog);
            write("diff_raw", name, &case);
            write("verify", name, &case);
        }
    }
    for (name, bytes) in elf_objects() {
        write("elf", &name, &bytes);
    }
    let mut rng = Rng::new(0x5eed);
    for k in 0..SEEDS_PER_TARGET {
        let len = 64 + rng.below(512) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        write("diff_structured", &format!("random-{k:02}"), &data);
    }
    // Loop choices: random, so most loops take the generator's common paths.
    for k in 0..SEEDS_PER_TARGET {
        let len = 32 + rng.below(256) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        write("diff_loops", &format!("random-{k:02}"), &data);
    }
}
