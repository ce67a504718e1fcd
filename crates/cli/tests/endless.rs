//! Every run ends: `bpfx run`, `bpfx bench` and `bpfx conformance-plugin`, through the built
//! binary, on a program that never ends (`tests/endless/loop.asm`), on both engines and the
//! JIT's option sets the command line offers: each stops with the budget trap at pc 2 and a
//! non-zero exit status, by default, and `--budget N` / `--no-budget` do what they say.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{repo, stderr};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a run may take before the test calls it endless: far above what the default
/// budget takes on the slowest engine in a test build.
const DEADLINE: Duration = Duration::from_secs(120);

fn endless() -> PathBuf {
    repo().join("tests/endless/loop.asm")
}

/// Waits for `child` at most [`DEADLINE`]; kills it and fails the test if it runs longer.
fn finish(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("waits").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collects the output")
}

fn bpfx(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bpfx starts");
    finish(child, &format!("bpfx {}", args.join(" ")))
}

/// The run ended with the budget trap at `pc` (the message names the instruction) and exit
/// status 1.
fn assert_budget_trap(o: &Output, pc: u32, insn: &str, what: &str) {
    assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(o));
    let expected = format!("trap at insn #{pc}: {insn}: instruction budget exhausted");
    assert!(stderr(o).contains(&expected), "{what}: {}", stderr(o));
}

/// Every engine and JIT option set the command line has.
const SETS: [&[&str]; 4] = [
    &["--engine", "interp"],
    &["--engine", "jit"],
    &["--engine", "jit", "--hardened"],
    &["--engine", "jit", "--code-memory", "dual"],
];

#[test]
fn run_ends_an_endless_loop_with_the_default_budget() {
    let file = endless();
    for set in SETS {
        let mut args = vec!["run", file.to_str().unwrap()];
        args.extend_from_slice(set);
        assert_budget_trap(&bpfx(&args), 2, "ja -2", &args.join(" "));
        // The JSON form names the trap too.
        args.push("--json");
        let o = bpfx(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).expect("one JSON object on stdout");
        assert_eq!(v["trap"]["kind"], "budget-exhausted", "{v}");
        assert_eq!(v["trap"]["pc"], 2, "{v}");
    }
}

#[test]
fn run_and_bench_take_an_explicit_budget() {
    let file = endless();
    for set in SETS {
        for cmd in ["run", "bench"] {
            // pcs 0 and 1 run once, then 1 and 2 alternate: the 1001st instruction is the jeq.
            let mut args = vec![cmd, file.to_str().unwrap(), "--budget", "1000"];
            args.extend_from_slice(set);
            assert_budget_trap(&bpfx(&args), 2, "ja -2", &args.join(" "));
            args[3] = "1001";
            assert_budget_trap(&bpfx(&args), 1, "jeq r0, 1, +1", &args.join(" "));
        }
    }
}

#[test]
fn bench_ends_an_endless_loop_with_the_default_budget() {
    let file = endless();
    for set in SETS {
        let mut args = vec!["bench", file.to_str().unwrap(), "--min-time", "1"];
        args.extend_from_slice(set);
        assert_budget_trap(&bpfx(&args), 2, "ja -2", &args.join(" "));
    }
}

#[test]
fn no_budget_lets_a_long_loop_finish() {
    // 2 * 150_000_000 + 2 instructions: more than the default budget, a fraction of a second
    // on the JIT. The count starts from r2, the input's length (0: no memory), which the
    // termination proof does not know, so the default budget applies.
    let dir = std::env::temp_dir().join(format!("bpfx-cli-endless-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("long.asm");
    std::fs::write(
        &file,
        "mov r0, r2\ntop:\nadd r0, 1\njne r0, 150000000, top\nexit\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for set in &SETS[1..] {
        let mut args = vec!["run", file];
        args.extend_from_slice(set);
        assert_budget_trap(&bpfx(&args), 2, "jne r0, 150000000, -2", &args.join(" "));
        args.push("--no-budget");
        let o = bpfx(&args);
        assert!(o.status.success(), "{}: {}", args.join(" "), stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "150000000 (0x8f0d180)\n"
        );
    }
    let o = bpfx(&["run", file, "--budget", "5", "--no-budget"]);
    assert_eq!(o.status.code(), Some(2), "the two flags conflict");
}

#[test]
fn the_conformance_plugin_ends_an_endless_loop() {
    // The runner's form: the program as hex on stdin.
    let text = std::fs::read_to_string(endless()).unwrap();
    let prog = bpfx_bytecode::assemble(&text).expect("assembles");
    let hex: String = prog
        .iter()
        .flat_map(|i| i.to_bytes())
        .map(|b| format!("{b:02x}"))
        .collect();
    for engine in ["--interpret", "--jit"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bpfx"))
            .args(["conformance-plugin", engine])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bpfx starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(hex.as_bytes())
            .unwrap();
        let o = finish(child, engine);
        assert_budget_trap(&o, 2, "ja -2", engine);
    }
}
