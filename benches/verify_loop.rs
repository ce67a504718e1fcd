//! Verifies programs in a loop, for profiling the verifier (`valgrind --tool=callgrind`, whose
//! instruction counts do not depend on the machine's load) and for a quick look at its cost
//! without criterion:
//!
//! ```text
//! ROUNDS=100 cargo run --release -p bpfx-benches --example verify_loop -- [checked|strict] [NAME...]
//! ```
//!
//! `NAME` is a workload (`programs/NAME.o`) or a generated size (`10000`); none means every
//! workload. Each is verified `ROUNDS` times (default 100). Prints, per program, the
//! instructions processed and the mean time per verification.

use bpfx_benches::report::verify_config;
use bpfx_benches::{INPUT_LEN, generate, workloads};
use bpfx_bytecode::Program;
use bpfx_verifier::Mode;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mode = match args.peek().map(String::as_str) {
        Some("strict") => {
            args.next();
            Mode::Strict
        }
        Some("checked") => {
            args.next();
            Mode::Checked
        }
        _ => Mode::Checked,
    };
    let rounds: u32 = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let names: Vec<String> = args.collect();
    let mut progs: Vec<(String, Program, u64)> = Vec::new();
    for w in workloads() {
        if names.is_empty() || names.iter().any(|n| n == w.name()) {
            let prog = w.program().expect("workload loads");
            progs.push((w.name().to_string(), prog, INPUT_LEN as u64));
        }
    }
    for n in &names {
        if let Ok(size) = n.parse::<usize>() {
            let prog = generate::program(size).expect("generated program decodes");
            progs.push((n.clone(), prog, generate::GENERATED_MEM));
        }
    }
    for (name, prog, mem) in progs {
        let cfg = verify_config(mode, mem);
        let start = Instant::now();
        let mut processed = None;
        for _ in 0..rounds {
            processed =
                Some(bpfx_verifier::verify(prog.clone(), &cfg).map(|v| v.insns_processed()));
        }
        let per = start.elapsed() / rounds.max(1);
        match processed {
            Some(Ok(p)) => println!(
                "{name:>16} {:>8} insns {p:>9} processed {per:>12.2?} {:>8.1} ns/processed",
                prog.len(),
                per.as_nanos() as f64 / p.max(1) as f64
            ),
            Some(Err(e)) => println!("{name:>16} {:>8} insns rejected: {e}", prog.len()),
            None => {}
        }
    }
}
