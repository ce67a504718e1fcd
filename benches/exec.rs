//! Execution benches: each workload of `programs/` on the same input, side by side:
//! - `native-clang`: the same C compiled natively by clang-19 -O2 (the baseline), when clang
//!   is installed;
//! - `native-gcc`: the same C compiled natively by gcc -O2;
//! - `bpfx-jit`: verified in checked mode, compiled with `bpfx_jit::compile` (guards only on
//!   the accesses the verifier did not prove);
//! - `bpfx-jit-strict`: verified in strict mode (no guard at all), where strict accepts it;
//! - `bpfx-jit-guarded`: `compile_unverified`, every access guarded (the cost of the guards);
//! - `bpfx-interp`, `rbpf-jit`, `rbpf-interp`.
//!
//! Throughput is input bytes per second; compilation happens before timing.
//!
//! Before timing a group, every engine's result (and the other compiler's) is compared with the
//! baseline's: a mismatch is a bug and stops the bench.

use bpfx_benches::{INPUT_LEN, Native, Workload, workloads};
use bpfx_exec::Env;
use bpfx_verifier::{Config, Mode, VerifiedProgram};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use std::hint::black_box;
use std::time::Duration;

fn verify(w: &Workload, mode: Mode) -> Result<VerifiedProgram, String> {
    let prog = w.program().map_err(|e| e.to_string())?;
    let cfg = Config {
        mode,
        mem_size: Some(INPUT_LEN as u64),
        ..Config::default()
    };
    bpfx_verifier::verify(prog, &cfg).map_err(|e| e.to_string())
}

fn exec(c: &mut Criterion) {
    for w in workloads() {
        let name = w.name();
        let input = w.input(INPUT_LEN);
        let expected = w.run_native(&mut input.clone());
        let check = |engine: &str, got: Result<u64, String>| {
            assert_eq!(got, Ok(expected), "{name}: {engine} disagrees with native");
        };
        for native in Native::ALL {
            if let Some(got) = w.run_native_with(native, &mut input.clone()) {
                check(native.id(), Ok(got));
            }
        }

        let checked = verify(&w, Mode::Checked).unwrap_or_else(|e| panic!("{name}: {e}"));
        let jit = bpfx_jit::compile(&checked, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let guarded = bpfx_jit::compile_unverified(checked.program(), &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut env = Env::new();
        check(
            "bpfx interp",
            bpfx_interp::run(&checked, &mut input.clone(), &mut env).map_err(|t| t.to_string()),
        );
        check(
            "bpfx JIT",
            jit.run(&mut input.clone(), &mut env)
                .map_err(|t| t.to_string()),
        );
        check(
            "bpfx JIT (every access guarded)",
            guarded
                .run(&mut input.clone(), &mut env)
                .map_err(|t| t.to_string()),
        );
        // Strict mode: no run-time guards at all. Programs it cannot prove (today: every loop)
        // are left out of the group, with the reason.
        let strict = match verify(&w, Mode::Strict) {
            Ok(v) => {
                let jit = bpfx_jit::compile(&v, &Default::default())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                check(
                    "bpfx JIT (strict)",
                    jit.run(&mut input.clone(), &mut env)
                        .map_err(|t| t.to_string()),
                );
                Some(jit)
            }
            Err(e) => {
                eprintln!("{name}: bpfx-jit-strict n/a: {e}");
                None
            }
        };
        let rbpf = w.rbpf(INPUT_LEN).unwrap_or_else(|e| panic!("{name}: {e}"));
        check("rbpf interp", rbpf.run_interp(&mut input.clone()));
        match rbpf.jit_error() {
            None => check(
                "rbpf JIT",
                rbpf.run_jit(&mut input.clone())
                    .ok_or_else(|| "no JIT".into()),
            ),
            Some(e) => eprintln!("{name}: rbpf-jit n/a: {e}"),
        }

        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(INPUT_LEN as u64));
        let mut mem = input.clone();
        for native in Native::ALL.into_iter().filter(|n| n.built()) {
            g.bench_function(BenchmarkId::from_parameter(native.id()), |b| {
                b.iter(|| w.run_native_with(native, black_box(&mut mem)))
            });
        }
        g.bench_function(BenchmarkId::from_parameter("bpfx-jit"), |b| {
            b.iter(|| jit.run(black_box(&mut mem), &mut env))
        });
        if let Some(strict) = &strict {
            g.bench_function(BenchmarkId::from_parameter("bpfx-jit-strict"), |b| {
                b.iter(|| strict.run(black_box(&mut mem), &mut env))
            });
        }
        g.bench_function(BenchmarkId::from_parameter("bpfx-jit-guarded"), |b| {
            b.iter(|| guarded.run(black_box(&mut mem), &mut env))
        });
        if rbpf.jit_error().is_none() {
            g.bench_function(BenchmarkId::from_parameter("rbpf-jit"), |b| {
                b.iter(|| rbpf.run_jit(black_box(&mut mem)))
            });
        }
        g.bench_function(BenchmarkId::from_parameter("bpfx-interp"), |b| {
            b.iter(|| bpfx_interp::run(&checked, black_box(&mut mem), &mut env))
        });
        g.bench_function(BenchmarkId::from_parameter("rbpf-interp"), |b| {
            b.iter(|| rbpf.run_interp(black_box(&mut mem)))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    // 18 workloads x 7 or 8 columns, 2.5 s each: about 6 minutes in all.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = exec
}
/// `criterion_main!`, then the table of ratios to native over every workload and engine.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\n{}", bpfx_benches::report::exec_table());
}
