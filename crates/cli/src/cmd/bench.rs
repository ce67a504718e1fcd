//! `bpfx bench FILE`: run a program many times and report what each stage costs.

use crate::engine::{CodeMemoryArg, EngineKind, Prepared, insn_at};
use crate::error::CliError;
use crate::load;
use bpfx_exec::{Env, Helpers};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Run a program repeatedly and print its result, the verify and compile times, and the
/// median time per run.
///
/// The program is verified (checked mode unless --strict) and prepared once, each timed once;
/// then it runs in batches, every run on the same memory as the previous run left it, until
/// the batches add up to --min-time. The time per run is the median over batches.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program: raw bytecode, assembler text (.asm, .s) or an ELF object.
    file: PathBuf,
    /// ELF section holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// File whose bytes are the program's input memory.
    #[arg(long, value_name = "PATH")]
    mem: Option<PathBuf>,
    /// Engine to run on.
    #[arg(long, value_enum, default_value_t = EngineKind::Jit)]
    engine: EngineKind,
    /// Verify in strict mode: reject any program whose memory accesses cannot be proven safe.
    #[arg(long)]
    strict: bool,
    /// Compile with the JIT's hardening: constant blinding and Spectre v1 masking (see
    /// docs/safety.md). The interpreter needs none.
    #[arg(long)]
    hardened: bool,
    /// Where the JIT's code lives: sealed mappings, or the dual-mapped arena (see
    /// docs/safety.md).
    #[arg(long, value_enum, default_value_t = CodeMemoryArg::Sealed)]
    code_memory: CodeMemoryArg,
    /// Stop each run after N executed instructions with a budget-exhausted trap [default: no
    /// limit for a program proven to terminate, 2^28 instructions for any other].
    #[arg(long, value_name = "N")]
    budget: Option<u64>,
    /// Run a program whose termination is not proven without the default budget: it may
    /// never end.
    #[arg(long, conflicts_with = "budget")]
    no_budget: bool,
    /// Least total time spent in timed batches, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    min_time: u64,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Batches the median is taken over, at least.
const MIN_BATCHES: usize = 11;

/// How long the measurement may run before progress goes to stderr.
const QUIET_FOR: Duration = Duration::from_secs(2);

/// What one measurement found.
struct Measured {
    /// Median nanoseconds per run over the batches.
    ns_per_run: f64,
    /// Runs per batch.
    batch: u64,
    /// Batches timed.
    batches: usize,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let prog = load::load_program(&args.file, args.section.as_deref())?;
    let mut input = match &args.mem {
        Some(path) => std::fs::read(path).map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        })?,
        None => Vec::new(),
    };
    let start = Instant::now();
    let verified = crate::cmd::verify::verify_for_run(prog, args.strict, input.len() as u64)?;
    let verify_ns = start.elapsed().as_nanos();
    let start = Instant::now();
    let base = if args.hardened {
        bpfx_jit::JitOptions::hardened()
    } else {
        bpfx_jit::JitOptions::default()
    };
    let opts = bpfx_jit::JitOptions {
        budget: args.budget.is_some(),
        unbounded: args.no_budget,
        code_memory: args.code_memory.jit(),
        ..base
    };
    let prepared = Prepared::with_options(&verified, args.engine, &opts)
        .map_err(|e| CliError::Jit(e.to_string()))?;
    // The interpreter prepares nothing: its compile time is 0.
    let compile_ns = match args.engine {
        EngineKind::Jit => start.elapsed().as_nanos(),
        EngineKind::Interp => 0,
    };
    let mut env = Env::with_helpers(Helpers::new());
    let budget = crate::cmd::run::budget(args.budget, args.no_budget);
    let once = |input: &mut Vec<u8>, env: &mut Env| {
        // Each run gets the whole budget.
        env.set_budget(budget);
        prepared.run(input, env).map_err(|trap| CliError::Trap {
            trap,
            insn: insn_at(verified.program(), trap.pc),
            reason: env.helper_error.take().map(|e| e.0),
        })
    };
    let result = once(&mut input, &mut env)?;
    let m = measure(Duration::from_millis(args.min_time), || {
        once(&mut input, &mut env).map(|_| ())
    })?;

    if args.json {
        let obj = serde_json::json!({
            "result": result,
            "engine": args.engine.name(),
            "code_memory": args.code_memory.to_string(),
            "hardened": args.hardened,
            "mode": if args.strict { "strict" } else { "checked" },
            "verify_ns": verify_ns as u64,
            "compile_ns": compile_ns as u64,
            "ns_per_run": m.ns_per_run,
            "runs_per_batch": m.batch,
            "batches": m.batches,
        });
        println!("{obj}");
    } else {
        let compile = match args.engine {
            EngineKind::Jit => format_ns(compile_ns as f64),
            EngineKind::Interp => "none (interpreter)".to_string(),
        };
        println!("result:  {result} ({result:#x})");
        println!("engine:  {}", args.engine.name());
        println!("verify:  {}", format_ns(verify_ns as f64));
        println!("compile: {compile}");
        println!(
            "per run: {} (median of {} batches of {} runs)",
            format_ns(m.ns_per_run),
            m.batches,
            m.batch
        );
    }
    Ok(())
}

/// Times `run` in batches: the batch size doubles until one batch takes a twentieth of
/// `min_total` (so timer resolution and the loop are negligible), then batches of that size
/// run until `min_total` is spent and at least [`MIN_BATCHES`] are done.
fn measure(
    min_total: Duration,
    mut run: impl FnMut() -> Result<(), CliError>,
) -> Result<Measured, CliError> {
    let started = Instant::now();
    let mut progress = false;
    let mut report = |runs: u64| {
        if started.elapsed() > QUIET_FOR {
            eprint!(
                "\rmeasuring: {runs} runs, {:.1} s",
                started.elapsed().as_secs_f64()
            );
            progress = true;
        }
    };
    let target = (min_total / 20).max(Duration::from_micros(100));
    let mut batch: u64 = 1;
    let mut runs = 0;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            run()?;
        }
        runs += batch;
        report(runs);
        if t.elapsed() >= target || batch >= 1 << 40 {
            break;
        }
        batch *= 2;
    }
    let mut per_run = Vec::new();
    let mut total = Duration::ZERO;
    while total < min_total || per_run.len() < MIN_BATCHES {
        let t = Instant::now();
        for _ in 0..batch {
            run()?;
        }
        let took = t.elapsed();
        total += took;
        runs += batch;
        per_run.push(took.as_nanos() as f64 / batch as f64);
        report(runs);
    }
    if progress {
        eprintln!();
    }
    per_run.sort_by(f64::total_cmp);
    Ok(Measured {
        ns_per_run: per_run[per_run.len() / 2],
        batch,
        batches: per_run.len(),
    })
}

/// Nanoseconds in the unit that keeps three or four significant digits.
fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_reaches_the_minimum_time_and_batch_count() {
        let min = Duration::from_millis(20);
        let start = Instant::now();
        let mut calls = 0u64;
        let m = measure(min, || {
            calls += 1;
            std::hint::black_box(calls);
            Ok(())
        })
        .unwrap();
        assert!(start.elapsed() >= min);
        assert!(m.batches >= MIN_BATCHES);
        assert!(calls >= m.batch * m.batches as u64);
        assert!(m.ns_per_run > 0.0);
    }

    #[test]
    fn measure_stops_at_the_first_error() {
        let mut calls = 0;
        let r = measure(Duration::from_millis(10), || {
            calls += 1;
            if calls == 5 {
                Err(CliError::Hex { what: "x".into() })
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert_eq!(calls, 5);
    }

    #[test]
    fn format_ns_picks_the_unit() {
        assert_eq!(format_ns(12.34), "12.3 ns");
        assert_eq!(format_ns(12_345.0), "12.35 µs");
        assert_eq!(format_ns(12_345_678.0), "12.35 ms");
        assert_eq!(format_ns(1_234_567_890.0), "1.235 s");
    }
}
