//! Replay: the repository's XDP filters (`replay/`: `pass`, `fw`, `lb`, see
//! `bpfx_benches::replay`) over 64 frames of 64 and of 1500 bytes, per packet, on bpfx's JIT and
//! interpreter (`Program::run_xdp`; verified in Checked mode) from 1 to N threads (N = the
//! machine's parallelism, each thread its own `Program` clone and CPU slot, the maps shared),
//! and on the JIT verified in Strict mode on one thread, against the same C compiled
//! natively (the ceiling) and, where `bpf()` works, the kernel's own JIT on the same objects
//! (`bpftool prog run … repeat N`, printed at the end; skipped, saying why, elsewhere).
//!
//! Every column copies each frame into its run buffer before each run (a load balancer rewrites
//! it), so that copy is in every column; before timing, every engine's verdicts and output
//! frames are asserted equal to the interpreter's (the kernel's are compared and any difference
//! printed). Criterion's time and throughput (`elem/s`) are per thread: one thread's time for
//! the 64 frames, measured as the thread's own CPU time (`Clock::ThreadCpu`, the default: a
//! shared machine's other work does not count, as the kernel's test-run timer leaves out the
//! time it is rescheduled) or, with `BPFX_BENCH_CLOCK=wall`, wall time.
//!
//! ```text
//! cargo bench -p bpfx-benches --bench replay -- --warm-up-time 1 --measurement-time 3
//! ```

use bpfx::{Mode, Program};
use bpfx_benches::replay::{
    Clock, Filter, Kernel, NativeFrame, frames, native_compiler, programs, run_bpfx, run_native,
    threaded,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// Frame sizes.
const SIZES: [usize; 2] = [64, 1500];
/// Repeats of each frame in the kernel's timed run.
const KERNEL_REPEAT: u32 = 20_000;

/// Checks every engine against the interpreter, frame by frame; returns the kernel's average
/// ns per packet over the frames, or why there is none.
fn agree(
    filter: Filter,
    size: usize,
    jit: &mut Program,
    interp: &mut Program,
) -> Result<f64, String> {
    let frames = frames(size);
    let kernel = Kernel::load(filter);
    let mut kernel_ns = 0.0;
    let mut kernel_err = None;
    for (i, f) in frames.iter().enumerate() {
        let (mut a, mut b) = (f.clone(), f.clone());
        let want = run_bpfx(interp, f, &mut a);
        let got = run_bpfx(jit, f, &mut b);
        assert_eq!(
            (got, &b),
            (want, &a),
            "{}/{size}: frame {i}: JIT against interpreter",
            filter.name()
        );
        let mut n = NativeFrame::new(f);
        if let Some(v) = run_native(filter, &mut n) {
            assert_eq!(
                (v, &n.bytes_mut().to_vec()),
                (want, &a),
                "{}/{size}: frame {i}: native against interpreter",
                filter.name()
            );
        }
        match &kernel {
            Ok(k) if kernel_err.is_none() => {
                // One run for the outcome (a repeated run reruns on the frame as the previous
                // run left it), then the timed one.
                match k
                    .run(f, 1)
                    .and_then(|once| Ok((once, k.run(f, KERNEL_REPEAT)?)))
                {
                    Ok((once, timed)) => {
                        if (once.verdict, &once.frame) != (want, &a) {
                            println!(
                                "KERNEL DISAGREES on {}/{size} frame {i}: verdict {} (bpfx {want}), frame {}",
                                filter.name(),
                                once.verdict,
                                if once.frame == a {
                                    "equal"
                                } else {
                                    "different"
                                }
                            );
                        }
                        kernel_ns += timed.ns;
                    }
                    Err(e) => kernel_err = Some(e),
                }
            }
            _ => {}
        }
    }
    match (kernel, kernel_err) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(_), None) => Ok(kernel_ns / frames.len() as f64),
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let max_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let clock = Clock::from_env();
    let mut kernel_rows = Vec::new();
    for filter in Filter::ALL {
        let (mut jit, mut interp) =
            programs(filter, Mode::Checked).expect("Checked mode verifies the filters");
        // n/a where Strict mode refuses the filter.
        let strict = programs(filter, Mode::Strict).ok().map(|(j, _)| j);
        for size in SIZES {
            let kernel = agree(filter, size, &mut jit, &mut interp);
            kernel_rows.push((filter, size, kernel));
            let frames = frames(size);
            let mut g = c.benchmark_group(format!("replay/{}/{size}B", filter.name()));
            // Per thread: each thread's time for its 64 frames.
            g.throughput(Throughput::Elements(frames.len() as u64));
            if run_native(filter, &mut NativeFrame::new(&frames[0])).is_some() {
                g.bench_function("native", |b| {
                    b.iter_custom(|iters| {
                        threaded(1, clock, |_| {
                            let frames = &frames;
                            let mut natives: Vec<NativeFrame> =
                                frames.iter().map(|f| NativeFrame::new(f)).collect();
                            Box::new(move || {
                                for _ in 0..iters {
                                    for (n, f) in natives.iter_mut().zip(frames) {
                                        n.bytes_mut().copy_from_slice(f);
                                        black_box(run_native(filter, black_box(n)));
                                    }
                                }
                            })
                        })
                    })
                });
            }
            for (engine, prog, most) in [
                ("bpfx-jit", Some(&jit), max_threads),
                ("bpfx-jit-strict", strict.as_ref(), 1),
                ("bpfx-interp", Some(&interp), max_threads),
            ] {
                let Some(prog) = prog else { continue };
                for threads in 1..=most {
                    g.bench_with_input(
                        BenchmarkId::new(engine, format!("{threads}t")),
                        &threads,
                        |b, &t| {
                            b.iter_custom(|iters| {
                                threaded(t, clock, |_| {
                                    let mut p: Program = prog.clone();
                                    let frames = &frames;
                                    let mut work = vec![0u8; frames[0].len()];
                                    Box::new(move || {
                                        for _ in 0..iters {
                                            for f in frames {
                                                black_box(run_bpfx(&mut p, f, &mut work));
                                            }
                                        }
                                    })
                                })
                            })
                        },
                    );
                }
            }
            g.finish();
        }
    }
    c.final_summary();
    println!(
        "\nNative filters built by {}; clock {clock:?}.",
        native_compiler()
    );
    println!(
        "\n### The kernel's JIT: `bpftool prog run … repeat {KERNEL_REPEAT}`, ns per packet (average over the 64 frames)\n"
    );
    println!("| filter | frame | kernel ns/packet |");
    println!("|---|---:|---:|");
    for (filter, size, k) in kernel_rows {
        match k {
            Ok(ns) => println!("| {} | {size} B | {ns:.1} |", filter.name()),
            Err(e) => println!(
                "| {} | {size} B | SKIPPED: {} |",
                filter.name(),
                e.lines().next().unwrap_or("")
            ),
        }
    }
}
