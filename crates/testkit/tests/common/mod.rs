//! The harness of the tests of reads bounded by a program's own checks (`length_checks.rs`,
//! `len_symbol.rs`, `linked_scalars.rs`): each program has one such read, `ldx r0, [r6+off]`,
//! verified in `Checked` mode for [`MEM`] bytes and run on every engine.

// Each test file uses its own part of the harness.
#![allow(dead_code)]

use bpfx_bytecode::{Op, Pc, Program, Reg, assemble};
use bpfx_exec::{Helpers, Trap, TrapKind};
use bpfx_testkit::{Case, check_with, verified_engines};
use bpfx_verifier::{Config, Mode, verify};

/// The `mem_size` the programs are verified for.
pub(crate) const MEM: usize = 16;

pub(crate) fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

/// The pc of the only load into r0 through r6 (the bounded read).
pub(crate) fn read_pc(p: &Program) -> Pc {
    let found: Vec<Pc> = p
        .iter()
        .filter(|(_, op)| {
            matches!(
                op,
                Op::Load {
                    dst: Reg::R0,
                    base: Reg::R6,
                    ..
                }
            )
        })
        .map(|(pc, _)| pc)
        .collect();
    assert_eq!(found.len(), 1, "one bounded read");
    found[0]
}

/// Verifies `text` in Checked mode for [`MEM`] bytes (one proof for every input length: no
/// exact-length assumption), asserts whether the read is proven, runs it on `input` on every
/// engine with `budget` and returns the common result.
pub(crate) fn run_with(
    text: &str,
    input: &[u8],
    proven: bool,
    budget: Option<u64>,
) -> Result<u64, Trap> {
    let p = prog(text);
    let cfg = Config {
        mode: Mode::Checked,
        mem_size: Some(MEM as u64),
        ..Config::default()
    };
    let v = verify(p.clone(), &cfg).expect("Checked mode accepts");
    assert!(!v.assumptions().exact_len, "one proof for every length");
    let at = read_pc(&p);
    assert_eq!(
        v.access(at).is_some_and(|f| f.proven),
        proven,
        "proof of the read at {at:?} in\n{text}"
    );
    let case = Case {
        prog: p,
        input: input.to_vec(),
        budget,
        helpers: Helpers::new(),
    };
    let out = check_with(&case, &verified_engines(v)).unwrap_or_else(|m| panic!("{m}"));
    out.result
}

/// [`run_with`] under a budget of 100,000 instructions.
pub(crate) fn run(text: &str, input: &[u8], proven: bool) -> Result<u64, Trap> {
    run_with(text, input, proven, Some(100_000))
}

/// Asserts that `text` keeps its guard and traps at the read on `input`, on every engine under
/// `budget`.
pub(crate) fn traps_with(text: &str, input: &[u8], budget: Option<u64>) {
    let at = read_pc(&prog(text));
    assert_eq!(
        run_with(text, input, false, budget).map_err(|t| (t.kind, t.pc)),
        Err((TrapKind::OutOfBounds, at)),
        "{text}\non {} bytes",
        input.len()
    );
}

/// [`traps_with`] under a budget of 100,000 instructions.
pub(crate) fn traps(text: &str, input: &[u8]) {
    traps_with(text, input, Some(100_000))
}
