//! What the verifier proves of the benches' guard-bound workloads (`benches/programs/*.c`,
//! built by `benches/programs/build.sh`), verified as the benches verify them (Checked mode,
//! 4096 bytes of input): the reads bounded by clang's rotated `while (off + 2 <= len)` are
//! proven through a linked scalar and a cap (`docs/verifier.md`), and the proof assumes the
//! input is exactly that long, since the program reads the length in r2.

use bpfx_bytecode::{Op, Pc, Program, Reg};
use bpfx_verifier::{Config, Mode, verify};

fn bench(name: &str) -> Program {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches/programs")
        .join(format!("{name}.o"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = bpfx_elf::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    obj.program(name)
        .unwrap_or_else(|| panic!("no program {name}"))
        .program
        .clone()
}

fn config(mode: Mode) -> Config {
    Config {
        mode,
        mem_size: Some(4096),
        ..Config::default()
    }
}

#[test]
fn packet_reads_its_record_lengths_without_guards() {
    let prog = bench("packet");
    let v = verify(prog.clone(), &config(Mode::Checked)).expect("Checked mode accepts");
    assert!(
        v.assumptions().exact_len,
        "the program reads the length in r2"
    );
    // The two byte loads of the 16-bit record length at the top of the loop, through
    // `mem + off` with `off + 2 <= len` checked at the bottom.
    let reads: Vec<Pc> = prog
        .iter()
        .filter(|(_, op)| matches!(op, Op::Load { base: Reg::R4, .. }))
        .map(|(pc, _)| pc)
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    for pc in reads {
        assert!(
            v.access(pc).is_some_and(|f| f.proven),
            "the record length read at {pc:?} is proven"
        );
    }
    // The record's own reads need `off + rec <= len`, a relation over three registers: they
    // keep their guards, and Strict mode refuses the first.
    let err = verify(prog, &config(Mode::Strict)).expect_err("Strict mode refuses");
    assert!(err.to_string().contains("ldxb r3, [r8+13]"), "{err}");
}
