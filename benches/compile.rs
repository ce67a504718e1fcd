//! Compile-time benches, reported per eBPF instruction (criterion's element throughput):
//! - `bpfx-jit/<workload>`: bpfx's JIT on the verified program (verified before timing), and
//!   rbpf 0.4.1's JIT beside it (`rbpf-jit/<workload>`);
//! - `bpfx-jit-dual/<workload>`: the same into dual-mapped code memory
//!   (`CodeMemory::DualMapped`: no `mprotect` per compilation);
//! - `bpfx-verify+jit/<workload>`: bpfx's verifier (checked mode) then its JIT;
//! - `generated/<size>`: the same on generated 10k, 100k and 1M-instruction programs (rbpf's
//!   JIT writes into one 4 KiB page and cannot compile them: its column is absent there).

use bpfx_benches::{INPUT_LEN, generate, rbpf, rbpf_jit_compile, workloads};
use bpfx_bytecode::Program;
use bpfx_verifier::{Config, Mode};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use std::hint::black_box;
use std::time::Duration;

fn config(mem: u64) -> Config {
    Config {
        mode: Mode::Checked,
        mem_size: Some(mem),
        ..Config::default()
    }
}

fn bench_program(c: &mut Criterion, group: &str, id: &str, prog: &Program, bytes: &[u8], mem: u64) {
    let insns = prog.len() as u64;
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(insns));
    if insns >= 100_000 {
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
    }
    let opts = bpfx_jit::JitOptions::default();
    let cfg = config(mem);
    let verified = bpfx_verifier::verify(prog.clone(), &cfg).expect("verifies");
    g.bench_function(BenchmarkId::new("bpfx-jit", id), |b| {
        b.iter(|| bpfx_jit::compile(black_box(&verified), &opts).expect("compiles"))
    });
    let dual = bpfx_jit::JitOptions {
        code_memory: bpfx_jit::CodeMemory::DualMapped,
        ..opts.clone()
    };
    g.bench_function(BenchmarkId::new("bpfx-jit-dual", id), |b| {
        b.iter(|| bpfx_jit::compile(black_box(&verified), &dual).expect("compiles"))
    });
    g.bench_function(BenchmarkId::new("bpfx-verify+jit", id), |b| {
        b.iter(|| {
            let v = bpfx_verifier::verify(black_box(prog).clone(), &cfg).expect("verifies");
            bpfx_jit::compile(&v, &opts).expect("compiles")
        })
    });
    match rbpf_jit_compile(bytes) {
        Ok(()) => {
            let mut vm = rbpf::EbpfVmRaw::new(Some(bytes)).expect("rbpf loads it");
            g.bench_function(BenchmarkId::new("rbpf-jit", id), |b| {
                b.iter(|| vm.jit_compile().expect("compiles"))
            });
        }
        Err(e) => eprintln!("{group}/{id}: rbpf-jit n/a: {e}"),
    }
    g.finish();
}

fn compile(c: &mut Criterion) {
    for w in workloads() {
        let bytes = w.bytecode().expect("workload loads");
        let prog = w.program().expect("workload decodes");
        bench_program(c, "compile", w.name(), &prog, &bytes, INPUT_LEN as u64);
    }
    for n in [10_000, 100_000, 1_000_000] {
        let bytes = generate::bytecode(n);
        let prog = Program::from_bytes(&bytes).expect("generated program decodes");
        bench_program(
            c,
            "compile-generated",
            &n.to_string(),
            &prog,
            &bytes,
            generate::GENERATED_MEM,
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = compile
}
/// `criterion_main!`, then the table of compile time per instruction.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\n{}", bpfx_benches::report::compile_table());
}
