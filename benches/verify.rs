//! Verification-time benches: `bpfx_verifier::verify` on every workload (`programs/*.o`,
//! section `bench`) in `Checked` mode (`verify-checked/<workload>`) and `Strict` mode
//! (`verify-strict/<workload>`; absent where Strict rejects the program, which is printed), and
//! on the generated 10k, 100k and 1M-instruction programs (`verify-generated-checked/<size>`,
//! `verify-generated-strict/<size>`).
//!
//! Criterion's element throughput is the number of instructions the analysis processed
//! (`VerifiedProgram::insns_processed`: each visit of an instruction, in each calling context
//! and loop iteration), so its rate is the cost per processed instruction; the table printed at
//! the end ([`bpfx_benches::report::verify_table`]) gives time per program, per processed
//! instruction, and verify + compile side by side.

use bpfx_benches::report::{VERIFY_MODES, verify_config};
use bpfx_benches::{generate, workloads};
use bpfx_bytecode::Program;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use std::hint::black_box;
use std::time::Duration;

fn bench_program(c: &mut Criterion, generated: bool, id: &str, prog: &Program, mem: u64) {
    for (label, mode) in VERIFY_MODES {
        let group = if generated {
            format!("verify-generated-{label}")
        } else {
            format!("verify-{label}")
        };
        let cfg = verify_config(mode, mem);
        let processed = match bpfx_verifier::verify(prog.clone(), &cfg) {
            Ok(v) => v.insns_processed(),
            Err(e) => {
                eprintln!("{group}/{id}: n/a: {e}");
                continue;
            }
        };
        let mut g = c.benchmark_group(&group);
        g.throughput(Throughput::Elements(processed));
        if prog.len() >= 100_000 {
            g.sampling_mode(SamplingMode::Flat);
            g.sample_size(10);
        }
        g.bench_function(BenchmarkId::from_parameter(id), |b| {
            b.iter(|| bpfx_verifier::verify(black_box(prog).clone(), &cfg).expect("verifies"))
        });
        g.finish();
    }
}

fn verify(c: &mut Criterion) {
    for w in workloads() {
        let prog = w.program().expect("workload decodes");
        bench_program(c, false, w.name(), &prog, bpfx_benches::INPUT_LEN as u64);
    }
    for n in bpfx_benches::report::GENERATED {
        let prog = generate::program(n).expect("generated program decodes");
        bench_program(c, true, &n.to_string(), &prog, generate::GENERATED_MEM);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = verify
}

/// `criterion_main!`, then the table of verification time.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\n{}", bpfx_benches::report::verify_table());
}
