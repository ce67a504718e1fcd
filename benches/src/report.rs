//! The tables of `docs/performance.md`, from the latest criterion results: each bench prints
//! its table when it finishes (so `cargo bench` ends with the comparisons), and
//! `cargo run --release -p bpfx-benches --example report` prints both.
//!
//! It reads `<target dir>/criterion/<group>/<id>/new/sample.json` for every workload and
//! engine the benches define and takes the fastest sample (the least nanoseconds per iteration
//! among criterion's samples): on a shared machine other work only ever adds time, and within
//! one benchmark samples seconds apart were seen to differ by 2x, so the fastest sample is the
//! steadiest estimate of the code's own speed (the median moved by tens of percent between
//! runs). The tables give execution time as a ratio to native with the geometric mean per
//! engine, and compile time per eBPF instruction. A cell whose bench has not run is `n/a`; a
//! run filtered to some benches shows the latest results of the others.

use crate::{generate, workloads};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The execution columns, beside `native`.
pub const EXEC_ENGINES: [&str; 6] = [
    "bpfx-jit",
    "bpfx-jit-strict",
    "bpfx-jit-guarded",
    "bpfx-interp",
    "rbpf-jit",
    "rbpf-interp",
];

/// The compile-time columns.
pub const COMPILE_ENGINES: [&str; 4] = ["bpfx-jit", "bpfx-jit-dual", "bpfx-verify+jit", "rbpf-jit"];

/// Sizes of the generated programs the compile bench compiles.
pub const GENERATED: [usize; 3] = [10_000, 100_000, 1_000_000];

fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// The fastest sample of one benchmark, in nanoseconds per iteration, if it ran.
fn fastest(dir: &Path, parts: &[&str]) -> Option<f64> {
    let mut p = dir.to_path_buf();
    for part in parts {
        p.push(part);
    }
    let text = std::fs::read_to_string(p.join("new/sample.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let (iters, times) = (v["iters"].as_array()?, v["times"].as_array()?);
    iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
        .filter(|ns| ns.is_finite())
        .min_by(f64::total_cmp)
}

fn geomean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp())
}

/// Time per run as a multiple of native, per workload and engine, and the geometric mean per
/// engine (Markdown).
pub fn exec_table() -> String {
    let dir = criterion_dir();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Execution: time per run as a multiple of native (lower is better)\n"
    );
    let _ = writeln!(out, "| workload | native | {} |", EXEC_ENGINES.join(" | "));
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(EXEC_ENGINES.len()));
    let mut ratios = vec![Vec::new(); EXEC_ENGINES.len()];
    for w in workloads() {
        let Some(native) = fastest(&dir, &[w.name(), "native"]) else {
            let _ = writeln!(out, "| {} | not run | |", w.name());
            continue;
        };
        let mut row = format!("| {} | {:.2} µs |", w.name(), native / 1e3);
        for (i, engine) in EXEC_ENGINES.iter().enumerate() {
            match fastest(&dir, &[w.name(), engine]) {
                Some(t) => {
                    ratios[i].push(t / native);
                    let _ = write!(row, " {:.2}× |", t / native);
                }
                None => row.push_str(" n/a |"),
            }
        }
        let _ = writeln!(out, "{row}");
    }
    let mut row = "| **geometric mean** | |".to_string();
    for r in &ratios {
        match geomean(r) {
            Some(g) => {
                let _ = write!(row, " **{g:.2}×** ({} workloads) |", r.len());
            }
            None => row.push_str(" n/a |"),
        }
    }
    let _ = writeln!(out, "{row}");
    out
}

/// Compile time per eBPF instruction, per program and engine (Markdown).
pub fn compile_table() -> String {
    let dir = criterion_dir();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Compile time per eBPF instruction (ns; lower is better)\n"
    );
    let _ = writeln!(
        out,
        "| program | instructions | {} |",
        COMPILE_ENGINES.join(" | ")
    );
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(COMPILE_ENGINES.len()));
    let mut rows: Vec<(String, usize, &str)> = workloads()
        .map(|w| {
            let insns = w.program().map(|p| p.len()).unwrap_or(0);
            (w.name().to_string(), insns, "compile")
        })
        .collect();
    rows.extend(GENERATED.iter().map(|&n| {
        debug_assert_eq!(generate::bytecode(n).len(), n * 8);
        (n.to_string(), n, "compile-generated")
    }));
    for (name, insns, group) in rows {
        let mut row = format!("| {name} | {insns} |");
        for engine in COMPILE_ENGINES {
            match fastest(&dir, &[group, engine, &name]) {
                Some(t) => {
                    let per = t / insns as f64;
                    if insns >= 100_000 {
                        let _ = write!(row, " {per:.0} ({:.3} s total) |", t / 1e9);
                    } else {
                        let _ = write!(row, " {per:.0} |");
                    }
                }
                None => row.push_str(" n/a |"),
            }
        }
        let _ = writeln!(out, "{row}");
    }
    out
}
