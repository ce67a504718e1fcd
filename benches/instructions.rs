//! Instructions executed per run, per workload and engine: a count that, unlike time, does not
//! move with whatever else the machine is doing. Each cell runs the workload under valgrind's
//! callgrind (which must be installed: `apt-get install valgrind`), counting only inside the
//! timed loop, and divides by the runs:
//!
//! ```text
//! cargo run --release -p bpfx-benches --example instructions            # every workload
//! cargo run --release -p bpfx-benches --example instructions -- packet  # one
//! ```
//!
//! Instructions are not time (a mispredicted branch or a division costs many cycles and counts
//! one), but a change that adds or removes instructions from a hot loop shows up here exactly.
//! Each run includes copying the 4 KiB input back (the same for every engine).

use bpfx_benches::{INPUT_LEN, Native, workloads};
use bpfx_exec::Env;
use bpfx_verifier::{Config, Mode};
use std::hint::black_box;
use std::process::Command;

/// Runs per cell.
const RUNS: usize = 20;
/// The engines besides the native builds, as the child process takes them.
/// `bpfx-jit-unbounded` is `bpfx-jit` without the instruction budget (`JitOptions::unbounded`,
/// `Env::unbounded`): the difference is what the budget charge costs.
const ENGINES: [&str; 4] = [
    "bpfx-jit",
    "bpfx-jit-unbounded",
    "bpfx-jit-guarded",
    "rbpf-jit",
];

/// The counted loop (callgrind collects inside this function only).
#[inline(never)]
fn counted(run: &mut dyn FnMut() -> u64) -> u64 {
    (0..RUNS).fold(0, |acc, _| acc ^ run())
}

/// In the child: prepares `engine` for `name` outside the counted loop, then runs it.
fn child(name: &str, engine: &str) -> Result<u64, String> {
    let w = workloads()
        .find(|w| w.name() == name)
        .ok_or_else(|| format!("no workload {name}"))?;
    let input = w.input(INPUT_LEN);
    let mut mem = input.clone();
    let cfg = Config {
        mode: Mode::Checked,
        mem_size: Some(INPUT_LEN as u64),
        ..Config::default()
    };
    let prog = w.program().map_err(|e| e.to_string())?;
    let verified = bpfx_verifier::verify(prog.clone(), &cfg).map_err(|e| e.to_string())?;
    let mut env = Env::new();
    let opts = Default::default();
    if let Some(native) = Native::ALL.into_iter().find(|n| n.id() == engine) {
        if !native.built() {
            return Err(format!("{engine} is not built"));
        }
        return Ok(counted(&mut || {
            mem.copy_from_slice(&input);
            w.run_native_with(native, black_box(&mut mem)).unwrap_or(0)
        }));
    }
    let result = match engine {
        "bpfx-jit" | "bpfx-jit-unbounded" | "bpfx-jit-guarded" => {
            let jit = match engine {
                "bpfx-jit" => bpfx_jit::compile(&verified, &opts),
                "bpfx-jit-unbounded" => {
                    env.unbounded = true;
                    let opts = bpfx_jit::JitOptions {
                        unbounded: true,
                        ..Default::default()
                    };
                    bpfx_jit::compile(&verified, &opts)
                }
                _ => bpfx_jit::compile_unverified(&prog, &opts),
            }
            .map_err(|e| e.to_string())?;
            counted(&mut || {
                mem.copy_from_slice(&input);
                jit.run(black_box(&mut mem), &mut env).unwrap_or(0)
            })
        }
        "rbpf-jit" => {
            let rbpf = w.rbpf(INPUT_LEN).map_err(|e| e.to_string())?;
            counted(&mut || {
                mem.copy_from_slice(&input);
                rbpf.run_jit(black_box(&mut mem)).unwrap_or(0)
            })
        }
        _ => return Err(format!("no engine {engine}")),
    };
    Ok(result)
}

/// Instructions per run of one cell, counted by callgrind in a child process.
fn count(exe: &std::path::Path, name: &str, engine: &str) -> Result<u64, String> {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--smc-check=all",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=*counted*",
        ])
        .arg(exe)
        .args(["--child", name, engine])
        .output()
        .map_err(|e| format!("cannot run valgrind ({e}): apt-get install valgrind"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{name}/{engine} failed:\n{log}"));
    }
    // "==pid== Collected : N"
    let collected = log
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().replace(',', "").parse::<u64>().ok())
        .ok_or_else(|| format!("no count in valgrind's output:\n{log}"))?;
    Ok(collected / RUNS as u64)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name, engine] = &args[..]
        && flag == "--child"
    {
        black_box(child(name, engine)?);
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let base = Native::baseline();
    // After the baseline's count: the other native builds, then the engines.
    let columns: Vec<&str> = Native::ALL
        .into_iter()
        .filter(|&n| n != base)
        .map(|n| if n.built() { n.id() } else { "" })
        .chain(ENGINES)
        .collect();
    println!(
        "### Instructions executed per run, as a multiple of {}\n",
        base.label()
    );
    let labels: Vec<&str> = Native::ALL
        .into_iter()
        .filter(|&n| n != base)
        .map(Native::label)
        .chain(ENGINES)
        .collect();
    println!("| workload | {} | {} |", base.label(), labels.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(columns.len()));
    let mut logs = vec![Vec::new(); columns.len()];
    for w in workloads().filter(|w| args.is_empty() || args.iter().any(|a| a == w.name())) {
        let native = count(&exe, w.name(), base.id())?;
        let mut row = format!("| {} | {native} |", w.name());
        for (k, engine) in columns.iter().enumerate() {
            if engine.is_empty() {
                row += " not built |";
                continue;
            }
            let ratio = count(&exe, w.name(), engine)? as f64 / native as f64;
            logs[k].push(ratio.ln());
            row += &format!(" {ratio:.2}× |");
        }
        println!("{row}");
    }
    let mut row = "| **geometric mean** | |".to_string();
    for l in &logs {
        if l.is_empty() {
            row += " |";
            continue;
        }
        let mean = (l.iter().sum::<f64>() / l.len() as f64).exp();
        row += &format!(" **{mean:.2}×** |");
    }
    println!("{row}");
    Ok(())
}
