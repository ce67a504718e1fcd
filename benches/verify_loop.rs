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

use bpfx_benches::report::{loop_programs, loop_rounds, verify_config};
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
    let rounds = loop_rounds();
    let names: Vec<String> = args.collect();
    let progs = loop_programs(&names);
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
