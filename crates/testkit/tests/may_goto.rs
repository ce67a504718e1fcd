//! `may_goto` (`JMP | JCOND`, 0xe5) run out: the run's counter starts at 8 Mi
//! ([`MAY_GOTO_BUDGET`], the kernel's `BPF_MAX_LOOPS`); each execution while it is not 0
//! decrements it and falls through, then every execution jumps. Every engine (the interpreter
//! and the JIT under every option set) agrees with the interpreter, with no budget, with an
//! instruction budget that runs out first (the budget still applies, at the same pc), and
//! verified in Checked mode, where a loop bounded only by `may_goto` is proven to terminate.
//! (`tests/data/may-goto-*.data` cover the counter before it runs out.)

use bpfx_bytecode::{MAY_GOTO_BUDGET, Pc, Program, assemble};
use bpfx_exec::{Helpers, Trap, TrapKind};
use bpfx_testkit::{Case, check, check_with};
use bpfx_verifier::{Config, Mode, verify};

/// A loop bounded only by `may_goto`: its body runs once per unit of the counter.
const ONE_LOOP: &str = "mov r0, 0\nmay_goto +2\nadd r0, 1\nja -3\nexit\n";

/// Two `may_goto +0` take two units, the first loop the rest; the second loop's `may_goto` finds
/// the counter at 0 and jumps at once (r0: first count | second << 32).
const TWO_LOOPS: &str = "may_goto +0\nmay_goto +0\nmov r0, 0\nmay_goto +2\nadd r0, 1\nja -3\n\
     mov r1, 0\nmay_goto +2\nadd r1, 1\nja -3\nlsh r1, 32\nor r0, r1\nexit\n";

/// The counter belongs to the run, not to a frame: the first call's loop takes all of it.
const TWO_CALLS: &str = "call local f\nmov r6, r0\ncall local f\nlsh r0, 32\nor r0, r6\nexit\n\
     f:\nmov r0, 0\nmay_goto +2\nadd r0, 1\nja -3\nexit\n";

fn case(text: &str, budget: Option<u64>) -> Case {
    Case {
        prog: Program::decode(assemble(text).expect("assembles")).expect("decodes"),
        input: Vec::new(),
        budget,
        helpers: Helpers::conformance(),
    }
}

const PROGRAMS: [(&str, &str, u64); 3] = [
    ("one loop", ONE_LOOP, MAY_GOTO_BUDGET),
    ("two loops", TWO_LOOPS, MAY_GOTO_BUDGET - 2),
    ("two calls", TWO_CALLS, MAY_GOTO_BUDGET),
];

#[test]
fn the_counter_runs_out_after_8_mi_fall_throughs_on_every_engine() {
    assert_eq!(MAY_GOTO_BUDGET, 8 * 1024 * 1024);
    for (name, text, want) in PROGRAMS {
        let out = check(&case(text, None)).unwrap_or_else(|m| panic!("{name}: {m}"));
        assert_eq!(out.result, Ok(want), "{name}");
    }
}

#[test]
fn the_instruction_budget_still_applies() {
    // `ONE_LOOP` spends 3 units per iteration: 1,000,000 runs out at the `may_goto` (pc 1) in
    // iteration 333,334, long before the counter.
    for (name, text, _) in PROGRAMS {
        let out = check(&case(text, Some(1_000_000))).unwrap_or_else(|m| panic!("{name}: {m}"));
        assert!(
            matches!(
                out.result,
                Err(Trap {
                    kind: TrapKind::BudgetExhausted,
                    ..
                })
            ),
            "{name}: {:?}",
            out.result
        );
        assert_eq!(out.budget_left, Some(0), "{name}");
    }
    let out = check(&case(ONE_LOOP, Some(1_000_000))).unwrap();
    assert_eq!(
        out.result,
        Err(Trap {
            kind: TrapKind::BudgetExhausted,
            pc: Pc(1)
        })
    );
}

#[test]
fn verified_in_checked_mode_proven_to_terminate_and_run_on_every_engine() {
    for (name, text, want) in PROGRAMS {
        let c = case(text, None);
        let cfg = Config::conformance(Mode::Checked, 0);
        let v = verify(c.prog.clone(), &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        // 8 Mi + 1 trips of a 3-instruction body: within the limit the proof allows.
        assert!(v.terminates(), "{name}");
        let out = check_with(&c, &bpfx_testkit::engine::verified_engines(v))
            .unwrap_or_else(|m| panic!("{name}: {m}"));
        assert_eq!(out.result, Ok(want), "{name}");
    }
}

#[test]
fn disassembles_and_encodes_as_the_kernel_does() {
    let insns = assemble("may_goto +1\nmay_goto -1\nexit\n").unwrap();
    let prog = Program::decode(insns).unwrap();
    let bytes = prog.to_bytes();
    assert_eq!(&bytes[..8], &[0xe5, 0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(&bytes[8..16], &[0xe5, 0, 0xff, 0xff, 0, 0, 0, 0]);
    let text = bpfx_bytecode::disassemble(&prog);
    assert!(text.contains("may_goto +1"), "{text}");
    assert!(text.contains("may_goto -1"), "{text}");
    // Any other field set is refused, as the kernel does (`src` 0 is the only condition).
    for bad in [
        [0xe5, 0x01, 0, 0, 0, 0, 0, 0],
        [0xe5, 0x10, 0, 0, 0, 0, 0, 0],
        [0xe5, 0, 0, 0, 1, 0, 0, 0],
        [0xed, 0, 0, 0, 0, 0, 0, 0],
        [0xe6, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let mut raw = bad.to_vec();
        raw.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert!(Program::from_bytes(&raw).is_err(), "{bad:02x?}");
    }
}

#[test]
fn a_may_goto_that_a_path_round_the_loop_skips_bounds_nothing() {
    // loop: if r1 == 0 skip the may_goto; ja loop — with r1 == 0 the loop never ends.
    let text = "mov r0, 0\njeq r1, 0, +1\nmay_goto +1\nja -3\nexit\n";
    let cfg = Config::conformance(Mode::Checked, 0);
    let v = verify(case(text, None).prog, &cfg).unwrap();
    assert!(!v.terminates());
    // The same loop with the may_goto on every way round is proven to end.
    let text = "mov r0, 0\njeq r1, 0, +0\nmay_goto +1\nja -3\nexit\n";
    let v = verify(case(text, None).prog, &cfg).unwrap();
    assert!(v.terminates());
}
