//! Compiles verified programs in a loop, for profiling the JIT's compile time
//! (`valgrind --tool=callgrind`, whose instruction counts do not depend on the machine's load)
//! and for a quick look at its cost without criterion:
//!
//! ```text
//! ROUNDS=100 cargo run --release -p bpfx-benches --example compile_loop -- [sealed|dual] [NAME...]
//! ```
//!
//! `NAME` is a workload (`programs/NAME.o`) or a generated size (`10000`); none means every
//! workload. Each is verified once (checked mode), then compiled `ROUNDS` times (default 100)
//! with the default options, into sealed (default) or dual-mapped code memory, the result
//! dropped each time. Prints, per program, its instructions, its bytes of machine code and
//! the mean time per compilation.

use bpfx_benches::report::{loop_programs, loop_rounds, verify_config};
use bpfx_jit::{CodeMemory, JitOptions};
use bpfx_verifier::Mode;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let code_memory = match args.peek().map(String::as_str) {
        Some("dual") => {
            args.next();
            CodeMemory::DualMapped
        }
        Some("sealed") => {
            args.next();
            CodeMemory::Sealed
        }
        _ => CodeMemory::Sealed,
    };
    let rounds = loop_rounds();
    let names: Vec<String> = args.collect();
    let progs = loop_programs(&names);
    let opts = JitOptions {
        code_memory,
        ..JitOptions::default()
    };
    for (name, prog, mem) in progs {
        let len = prog.len();
        let verified = match bpfx_verifier::verify(prog, &verify_config(Mode::Checked, mem)) {
            Ok(v) => v,
            Err(e) => {
                println!("{name:>16} {len:>8} insns rejected: {e}");
                continue;
            }
        };
        let mut code = 0;
        let start = Instant::now();
        for _ in 0..rounds {
            let jit = black_box(bpfx_jit::compile(black_box(&verified), &opts).expect("compiles"));
            code = jit.code_len();
            drop(jit);
        }
        let per = start.elapsed() / rounds.max(1);
        println!(
            "{name:>16} {len:>8} insns {code:>8} bytes {per:>12.2?} per compilation {:>8.1} ns/insn",
            per.as_nanos() as f64 / len.max(1) as f64
        );
    }
}
