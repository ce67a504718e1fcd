//! The tables of `docs/performance.md`, from the latest criterion results: each bench prints
//! its table when it finishes (so `cargo bench` ends with the comparisons), and
//! `cargo run --release -p bpfx-benches --example report` prints both.
//!
//! It reads `<target dir>/criterion/<group>/<id>/new/sample.json` for every workload and
//! engine the benches define and takes the fastest sample (the least nanoseconds per iteration
//! among criterion's samples): on a shared machine other work only ever adds time, and within
//! one benchmark samples seconds apart were seen to differ by 2x, so the fastest sample is the
//! steadiest estimate of the code's own speed (the median moved by tens of percent between
//! runs). The tables give execution time as a ratio to the baseline native build (clang -O2;
//! gcc -O2 beside it) with the geometric mean per engine against each native build, and
//! compile time per eBPF instruction. A cell whose bench has not run is `n/a`; a
//! run filtered to some benches shows the latest results of the others.

use crate::{Native, generate, workloads};
use bpfx_bytecode::Program;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The execution columns, beside the native builds.
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

/// The cell of a column that has no time: "not built" for a native compiler that did not
/// build the workloads, "n/a" for a bench that did not run.
fn missing(native: Option<Native>) -> &'static str {
    match native {
        Some(n) if !n.built() => "not built",
        _ => "n/a",
    }
}

/// Time per run as a multiple of the baseline native build (clang -O2, or gcc -O2 where clang
/// is not installed), per workload and engine, with gcc -O2 as a column of its own, and the
/// geometric mean per column against each native build (Markdown).
pub fn exec_table() -> String {
    let dir = criterion_dir();
    let base = Native::baseline();
    let others: Vec<Native> = Native::ALL.into_iter().filter(|&n| n != base).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Execution: time per run as a multiple of {} (lower is better)\n",
        base.label()
    );
    for n in Native::ALL {
        let _ = writeln!(
            out,
            "- {}: {}",
            n.label(),
            n.version().unwrap_or("not built (compiler not installed)")
        );
    }
    let _ = writeln!(out);
    // Columns after the baseline's time: the other native builds, then the engines.
    let columns: Vec<(String, Option<Native>)> = others
        .iter()
        .map(|&n| (n.id().to_string(), Some(n)))
        .chain(EXEC_ENGINES.iter().map(|e| (e.to_string(), None)))
        .collect();
    let _ = writeln!(
        out,
        "| workload | {} | {} |",
        std::iter::once(base)
            .chain(others.iter().copied())
            .map(Native::label)
            .collect::<Vec<_>>()
            .join(" | "),
        EXEC_ENGINES.join(" | ")
    );
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(columns.len()));
    // Per native build (`Native::ALL` order), per column: the ratios to that build.
    let mut ratios = vec![vec![Vec::new(); columns.len()]; Native::ALL.len()];
    for w in workloads() {
        let time = |id: &str| fastest(&dir, &[w.name(), id]);
        let natives: Vec<Option<f64>> = Native::ALL.iter().map(|n| time(n.id())).collect();
        let Some(base_ns) = natives[base.index()] else {
            let _ = writeln!(
                out,
                "| {} | not run |{}",
                w.name(),
                " |".repeat(columns.len())
            );
            continue;
        };
        let mut row = format!("| {} | {:.2} µs |", w.name(), base_ns / 1e3);
        for (i, (id, native)) in columns.iter().enumerate() {
            let Some(t) = time(id) else {
                let _ = write!(row, " {} |", missing(*native));
                continue;
            };
            let _ = write!(row, " {:.2}× |", t / base_ns);
            for (k, n) in natives.iter().enumerate() {
                if let Some(n) = n {
                    ratios[k][i].push(t / n);
                }
            }
        }
        let _ = writeln!(out, "{row}");
    }
    for n in Native::ALL {
        let mut row = format!("| **geometric mean vs {}** | |", n.label());
        for (i, (_, native)) in columns.iter().enumerate() {
            match geomean(&ratios[n.index()][i]) {
                Some(g) if *native != Some(n) => {
                    let _ = write!(row, " **{g:.2}×** ({}) |", ratios[n.index()][i].len());
                }
                _ => {
                    let _ = write!(
                        row,
                        " {} |",
                        if *native == Some(n) {
                            "1"
                        } else {
                            missing(Some(n))
                        }
                    );
                }
            }
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(
        out,
        "\nEach cell is the fastest sample's time over {}'s for the same workload; the \
         geometric means count the workloads (in parentheses) where both ran.",
        base.label()
    );
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

/// The verifier's modes the verify bench runs, with the label of their groups.
pub const VERIFY_MODES: [(&str, bpfx_verifier::Mode); 2] = [
    ("checked", bpfx_verifier::Mode::Checked),
    ("strict", bpfx_verifier::Mode::Strict),
];

/// What the profiling loops (`--example verify_loop`, `--example compile_loop`) run: each
/// workload named in `names` (every workload when `names` is empty) and each generated size
/// named there (`10000`), with the input memory size its verification assumes.
pub fn loop_programs(names: &[String]) -> Vec<(String, bpfx_bytecode::Program, u64)> {
    let mut progs = Vec::new();
    for w in crate::workloads() {
        if names.is_empty() || names.iter().any(|n| n == w.name()) {
            let prog = w.program().expect("workload loads");
            progs.push((w.name().to_string(), prog, crate::INPUT_LEN as u64));
        }
    }
    for n in names {
        if let Ok(size) = n.parse::<usize>() {
            let prog = crate::generate::program(size).expect("generated program decodes");
            progs.push((n.clone(), prog, crate::generate::GENERATED_MEM));
        }
    }
    progs
}

/// The profiling loops' repetitions: the `ROUNDS` environment variable, 100 by default.
pub fn loop_rounds() -> u32 {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100)
}

/// The configuration the verify and compile benches verify a program with: `mode`, an input
/// of `mem` bytes, everything else the default.
pub fn verify_config(mode: bpfx_verifier::Mode, mem: u64) -> bpfx_verifier::Config {
    bpfx_verifier::Config {
        mode,
        mem_size: Some(mem),
        ..bpfx_verifier::Config::default()
    }
}

/// A duration in nanoseconds, in the unit that keeps it readable.
fn duration(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// Verification time per program and mode, per processed instruction, and verification
/// (`Checked`) plus compilation (the `compile` bench's `bpfx-jit` column), what a user waits
/// for before the first run (Markdown). The processed counts are computed here, by verifying
/// each program once.
pub fn verify_table() -> String {
    let dir = criterion_dir();
    let mut out = String::new();
    let _ = writeln!(out, "### Verification time (lower is better)\n");
    let _ = writeln!(
        out,
        "| program | instructions | checked: processed | checked: time | checked: ns / processed \
         | strict: processed | strict: time | strict: ns / processed | compile (JIT) \
         | checked verify + compile |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows: Vec<(String, Option<Program>, u64, &str, &str)> = workloads()
        .map(|w| {
            (
                w.name().to_string(),
                w.program().ok(),
                crate::INPUT_LEN as u64,
                "verify",
                "compile",
            )
        })
        .collect();
    rows.extend(GENERATED.iter().map(|&n| {
        (
            n.to_string(),
            generate::program(n).ok(),
            generate::GENERATED_MEM,
            "verify-generated",
            "compile-generated",
        )
    }));
    for (name, prog, mem, group, compile_group) in rows {
        let Some(prog) = prog else {
            let _ = writeln!(out, "| {name} | does not load |||||||||");
            continue;
        };
        let mut row = format!("| {name} | {} |", prog.len());
        let mut checked = None;
        for (label, mode) in VERIFY_MODES {
            let processed = match bpfx_verifier::verify(prog.clone(), &verify_config(mode, mem)) {
                Ok(v) => v.insns_processed(),
                Err(_) => {
                    row.push_str(" rejected | n/a | n/a |");
                    continue;
                }
            };
            match fastest(&dir, &[&format!("{group}-{label}"), &name]) {
                Some(t) => {
                    let per = t / processed.max(1) as f64;
                    let _ = write!(row, " {processed} | {} | {per:.0} |", duration(t));
                    if mode == bpfx_verifier::Mode::Checked {
                        checked = Some(t);
                    }
                }
                None => {
                    let _ = write!(row, " {processed} | n/a | n/a |");
                }
            }
        }
        match fastest(&dir, &[compile_group, "bpfx-jit", &name]) {
            Some(jit) => {
                let _ = write!(row, " {} |", duration(jit));
                match checked {
                    Some(v) => {
                        let _ = write!(row, " {} |", duration(v + jit));
                    }
                    None => row.push_str(" n/a |"),
                }
            }
            None => row.push_str(" n/a | n/a |"),
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(
        out,
        "\n\"processed\" counts every visit of an instruction by the analysis, in each calling \
         context and loop iteration (`VerifiedProgram::insns_processed`); each time is the \
         fastest sample; \"rejected\" marks a program the mode refuses."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_table_names_both_native_builds_and_every_workload() {
        let table = exec_table();
        for n in Native::ALL {
            assert!(table.contains(n.label()), "{table}");
            assert!(
                table.contains(&format!("**geometric mean vs {}**", n.label())),
                "{table}"
            );
        }
        for w in workloads() {
            assert!(table.contains(&format!("| {} |", w.name())), "{table}");
        }
        // A compiler that did not build the workloads is said so, never shown as a time.
        if !Native::Clang.built() {
            assert!(table.contains("not built"), "{table}");
        }
        assert!(Native::baseline().built());
    }

    #[test]
    fn geomean_of_ratios() {
        assert_eq!(geomean(&[]), None);
        let g = geomean(&[2.0, 8.0]).unwrap();
        assert!((g - 4.0).abs() < 1e-12, "{g}");
    }
}
