//! `bpfx bench FILE`: run a program many times and report what each stage costs.

use crate::engine::EngineKind;
use crate::error::CliError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Run a program repeatedly and print its result, the verify and compile times, and the
/// median time per run.
///
/// The program is loaded, verified and prepared exactly as `run` does (an ELF object with its
/// maps, global data and the standard helpers; the context its section implies or --ctx; the
/// --mem or --packet input): verified (checked mode unless --strict) and prepared once, each
/// timed once; then it runs in batches, every run on the memory and maps as the previous run
/// left them and on the packet as given, until the batches add up to --min-time. The time per
/// run is the median over batches.
#[derive(Debug, clap::Args)]
#[group(id = "bench_args")]
pub(crate) struct Args {
    /// What `run` takes.
    #[command(flatten)]
    run: crate::cmd::run::Args,
    /// Least total time spent in timed batches, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    min_time: u64,
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

impl Args {
    /// Whether --json was given.
    pub(crate) fn json(&self) -> bool {
        self.run.json()
    }
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    use crate::cmd::run as r;
    let ra = &args.run;
    // `trace_printk` output goes to stderr for the first run only, not for every timed one.
    let quiet = Arc::new(AtomicBool::new(false));
    let (obj, name) = {
        let quiet = quiet.clone();
        r::open_with(ra, move |vm| {
            vm.trace_sink(move |s| {
                if !quiet.load(Ordering::Relaxed) {
                    eprint!("{s}");
                }
            })
        })?
    };
    let (pref, mut input) = r::setup(ra, &obj, &name)?;
    r::init_maps(ra, &obj, &name, input.mem.len() as u64)?;
    let start = Instant::now();
    let verified = r::verify(ra, pref)?;
    let verify_ns = start.elapsed().as_nanos();
    let start = Instant::now();
    let mut prog = r::prepare(ra, verified)?;
    // The interpreter prepares nothing: its compile time is 0.
    let compile_ns = match ra.engine() {
        EngineKind::Jit => start.elapsed().as_nanos(),
        EngineKind::Interp => 0,
    };
    // Every run sees the packet as given: a program that moves the head or the tail (a
    // decapsulation, a VLAN push) would otherwise be measured on a packet that changes from
    // run to run. Plain memory stays as the previous run left it.
    let packet = input.packet.clone();
    let mut once = |input: &mut r::Input| {
        input.packet.clear();
        input.packet.extend_from_slice(&packet);
        r::rearm(ra, &mut prog);
        r::exec(&mut prog, input).map_err(|e| r::facade_error(ra.file(), e.into()))
    };
    let (result, action) = once(&mut input)?;
    quiet.store(true, Ordering::Relaxed);
    let m = measure(Duration::from_millis(args.min_time), || {
        once(&mut input).map(|_| ())
    })?;

    // --out: the packet of the last run (every run starts from the same packet).
    if let Some(path) = ra.out() {
        std::fs::write(path, &input.packet[..input.kept]).map_err(|source| CliError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }

    let engine = ra.engine();
    if ra.json() {
        let mut out = serde_json::json!({
            "engine": engine.name(),
            "code_memory": ra.code_memory().to_string(),
            "hardened": ra.hardened(),
            "mode": if ra.strict() { "strict" } else { "checked" },
            "verify_ns": verify_ns as u64,
            "compile_ns": compile_ns as u64,
            "ns_per_run": m.ns_per_run,
            "runs_per_batch": m.batch,
            "batches": m.batches,
        });
        crate::error::set_u64(&mut out, "result", result);
        if let Some(a) = action {
            out["action"] = a.to_string().into();
        }
        if ra.dump_maps() {
            out["maps"] = crate::dump::maps_json(&obj);
        }
        if !ra.hist().is_empty() {
            out["hist"] = crate::maps_init::hists(&obj, ra.hist())?.1.into();
        }
        crate::cmd::write_line(crate::error::json_ok(out))?;
    } else {
        let compile = match engine {
            EngineKind::Jit => format_ns(compile_ns as f64),
            EngineKind::Interp => "none (interpreter)".to_string(),
        };
        let mut s = match action {
            Some(a) => format!("result:  {a} ({result})\n"),
            None => format!("result:  {result} ({result:#x})\n"),
        };
        s.push_str(&format!("engine:  {}\n", engine.name()));
        s.push_str(&format!("verify:  {}\n", format_ns(verify_ns as f64)));
        s.push_str(&format!("compile: {compile}\n"));
        s.push_str(&format!(
            "per run: {} (median of {} batches of {} runs)\n",
            format_ns(m.ns_per_run),
            m.batches,
            m.batch
        ));
        if ra.dump_maps() {
            s.push_str(&crate::dump::maps_text(&obj));
        }
        s.push_str(&crate::maps_init::hists(&obj, ra.hist())?.0);
        crate::cmd::write_stdout(&s)?;
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
