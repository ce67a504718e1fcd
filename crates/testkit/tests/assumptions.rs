//! The limits a proof rests on travel with it: a run whose environment differs from the one
//! the program was verified for in a way that breaks a proof is refused at pc 0, before
//! anything runs, identically on the interpreter and on the verified JIT under every option set;
//! a run within the verified limits behaves the same on every engine.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_exec::{Env, Helpers, Trap, TrapKind};
use bpfx_testkit::jit_option_sets;
use bpfx_verifier::{Config, MapDef, MapRef, MapTable, Mode, VerifiedProgram, verify};

fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

/// A recursive function whose store `stdw [r10 - ((r1 >> 3) << 20) - 8]` is in the current
/// frame while the depth in r1 is below 8, and 1 MiB below it from depth 8 on. Verified with
/// 8 frames, the analysis sees depths 0..=6 (the call that needs a 9th frame traps), so it
/// proves the store in bounds; a run allowing 16 frames would reach depth 8, where the JIT
/// drops the guard the proof removed.
const DEEP_STORE: &str = "
    mov r1, 0
    call local f
    exit
f:
    mov r2, r1
    rsh r2, 3
    lsh r2, 20
    mov r3, r10
    sub r3, r2
    stdw [r3-8], 1
    add r1, 1
    call local f
    exit";

/// pc of the store in [`DEEP_STORE`], and of the recursive call.
const STORE_PC: u32 = 8;
const CALL_PC: u32 = 10;

fn verified(text: &str, cfg: &Config) -> VerifiedProgram {
    verify(prog(text), cfg).expect("verifies")
}

fn frames(n: u32) -> Config {
    Config {
        mem_size: Some(0),
        max_frames: n,
        ..Config::default()
    }
}

fn env(max_frames: u32) -> Env {
    let mut env = Env::with_helpers(Helpers::new());
    env.set_max_frames(max_frames);
    env
}

/// Runs `v` on `input` with a fresh environment of `max_frames` frames (and `budget`) on the
/// interpreter and then on the verified JIT under every option set; every engine must give the
/// interpreter's result, leave the same input bytes and the same budget. Returns the result.
fn run_everywhere(
    v: &VerifiedProgram,
    input: &[u8],
    max_frames: u32,
    budget: Option<u64>,
) -> Result<u64, Trap> {
    let mut mem = input.to_vec();
    let mut e = env(max_frames);
    e.budget = budget;
    let expected = bpfx_interp::run(v, &mut mem, &mut e);
    let (expected_mem, expected_left) = (mem, e.budget);
    for (name, opts) in jit_option_sets() {
        let opts = bpfx_jit::JitOptions {
            budget: budget.is_some(),
            ..opts
        };
        let jit = bpfx_jit::compile(v, &opts).expect("compiles");
        let mut mem = input.to_vec();
        let mut e = env(max_frames);
        e.budget = budget;
        let got = jit.run(&mut mem, &mut e);
        assert_eq!(got, expected, "jit ({name}), {max_frames} frames");
        assert_eq!(mem, expected_mem, "jit ({name}): memory");
        assert_eq!(e.budget, expected_left, "jit ({name}): budget left");
    }
    expected
}

fn at(kind: TrapKind, pc: u32) -> Result<u64, Trap> {
    Err(Trap { kind, pc: Pc(pc) })
}

#[test]
fn the_proof_records_what_it_assumed() {
    let mut maps = MapTable::new();
    maps.insert(MapRef::Idx(0), MapDef::new(4, 8).with_read_only(true));
    let cfg = Config {
        mode: Mode::Checked,
        mem_size: Some(16),
        max_frames: 5,
        maps: maps.clone(),
        ..Config::default()
    };
    let v = verified("mov r0, 0\nexit", &cfg);
    let a = v.assumptions();
    assert_eq!(a.max_frames, 5);
    assert_eq!(a.frame_size, bpfx_exec::STACK_FRAME_SIZE);
    assert_eq!(a.mem_size, Some(16));
    assert_eq!(a.maps, maps);
    assert_eq!(a.context, cfg.context);
    assert_eq!(a.mode, Mode::Checked);
    assert!(a.terminates, "no loop: every run ends");
    assert!(!a.exact_len, "r2 is never read");
    assert_eq!(v.max_frames(), 5);
}

#[test]
fn more_frames_than_verified_is_refused_before_anything_runs() {
    let v = verified(DEEP_STORE, &frames(8));
    assert!(
        v.access(Pc(STORE_PC)).is_some_and(|f| f.proven),
        "the store is proven for the depths the verifier saw"
    );
    // 16 first: without the check, the interpreter traps at the store (depth 8 is 1 MiB below
    // the stack) while the JIT, trusting the proof, writes there.
    for m in [16, 9, 100, bpfx_jit::MAX_FRAMES + 1] {
        assert_eq!(
            run_everywhere(&v, &[], m, None),
            at(TrapKind::EnvMismatch, 0),
            "verified with 8 frames, run with {m}"
        );
    }
    // The refusal happens before the first instruction: no budget is spent.
    assert_eq!(
        run_everywhere(&v, &[], 16, Some(1000)),
        at(TrapKind::EnvMismatch, 0)
    );
}

#[test]
fn as_many_frames_as_verified_or_fewer_run_alike_everywhere() {
    let v = verified(DEEP_STORE, &frames(8));
    // The recursion never ends, so every run stops at the call that needs one frame more.
    for m in 1..=8 {
        assert_eq!(
            run_everywhere(&v, &[], m, None),
            at(
                TrapKind::CallDepthExceeded,
                if m == 1 { 1 } else { CALL_PC }
            ),
            "verified with 8 frames, run with {m}"
        );
    }
}

#[test]
fn verified_for_enough_frames_the_deep_store_keeps_its_guard() {
    // With 16 frames the analysis reaches depth 8, where the store leaves the stack: it is not
    // proven, and the run traps there on every engine.
    let v = verified(DEEP_STORE, &frames(16));
    assert!(!v.access(Pc(STORE_PC)).is_some_and(|f| f.proven));
    assert_eq!(
        run_everywhere(&v, &[], 16, None),
        at(TrapKind::OutOfBounds, STORE_PC)
    );
    // Fewer frames than verified: the call traps before the depth where the store leaves.
    assert_eq!(
        run_everywhere(&v, &[], 9, None),
        at(TrapKind::CallDepthExceeded, CALL_PC)
    );
}

#[test]
fn an_input_shorter_than_verified_is_refused_and_a_longer_one_runs() {
    // `ldxdw [r1+8]` is proven against 16 bytes of input.
    let cfg = Config {
        mem_size: Some(16),
        ..Config::default()
    };
    let v = verified("ldxdw r0, [r1+8]\nexit", &cfg);
    assert!(v.access(Pc(0)).is_some_and(|f| f.proven));
    let input: Vec<u8> = (0..24).collect();
    for n in [0, 1, 8, 15] {
        assert_eq!(
            run_everywhere(&v, &input[..n], 8, None),
            at(TrapKind::InputTooSmall, 0),
            "verified for 16 bytes, run on {n}"
        );
    }
    let word = |at: usize| u64::from_le_bytes(input[at..at + 8].try_into().unwrap());
    assert_eq!(run_everywhere(&v, &input[..16], 8, None), Ok(word(8)));
    assert_eq!(run_everywhere(&v, &input, 8, None), Ok(word(8)));
}

#[test]
fn several_broken_assumptions_report_the_same_trap_on_every_engine() {
    // Both the input and the frames are wrong: every engine names the input first.
    let cfg = Config {
        mem_size: Some(8),
        max_frames: 2,
        ..Config::default()
    };
    let v = verified("ldxdw r0, [r1]\nexit", &cfg);
    assert_eq!(
        run_everywhere(&v, &[0; 4], 8, None),
        at(TrapKind::InputTooSmall, 0)
    );
    assert_eq!(
        run_everywhere(&v, &[7, 0, 0, 0, 0, 0, 0, 0], 8, None),
        at(TrapKind::EnvMismatch, 0)
    );
    assert_eq!(
        run_everywhere(&v, &[7, 0, 0, 0, 0, 0, 0, 0], 2, None),
        Ok(7)
    );
}

/// Reads `[r1 + 2*r2 - 16]`: at offset 0 for 8 bytes of input, past the end of any longer
/// input. Verified in Strict mode for 8 bytes, the analysis takes r2 for the constant 8 and
/// proves the load; Checked mode takes r2 for any length of at least 8 and guards it.
const DOUBLE_LEN: &str = "
    mov r3, r2
    lsh r3, 1
    sub r3, 16
    add r1, r3
    ldxdw r0, [r1+0]
    exit";

#[test]
fn a_strict_proof_that_read_the_input_length_holds_only_for_that_length() {
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(8),
        ..Config::default()
    };
    let v = verified(DOUBLE_LEN, &cfg);
    assert!(v.access(Pc(4)).is_some_and(|f| f.proven));
    assert!(v.assumptions().exact_len, "the program reads r2 at entry");
    let input: Vec<u8> = (0..24).collect();
    assert_eq!(
        run_everywhere(&v, &input[..8], 8, None),
        Ok(u64::from_le_bytes(input[..8].try_into().unwrap()))
    );
    // Without the refusal the load would run 8 bytes past a 16-byte input on the verified
    // JIT, which trusts the proof.
    for n in [9, 16, 24] {
        assert_eq!(
            run_everywhere(&v, &input[..n], 8, None),
            at(TrapKind::EnvMismatch, 0),
            "verified for exactly 8 bytes, run on {n}"
        );
    }
    for n in [0, 7] {
        assert_eq!(
            run_everywhere(&v, &input[..n], 8, None),
            at(TrapKind::InputTooSmall, 0)
        );
    }
    // A copy or a spill read later is a read too; a program that overwrites r2 first
    // assumes nothing about the length.
    for (text, exact) in [
        ("stxdw [r10-8], r2\nldxdw r0, [r10-8]\nexit", true),
        ("mov r4, 1\njeq r4, 2, +1\nmov r0, r2\nexit", true),
        ("mov r2, 0\nmov r0, r2\nexit", false),
        ("ldxdw r0, [r1+0]\nexit", false),
    ] {
        let v = verified(text, &cfg);
        assert_eq!(v.assumptions().exact_len, exact, "{text}");
        let r = run_everywhere(&v, &input[..16], 8, None);
        assert_eq!(
            r.is_err_and(|t| t.kind == TrapKind::EnvMismatch),
            exact,
            "{text}"
        );
    }
    // With no memory, r1 is the constant 0 too, in either mode.
    let none = Config {
        mem_size: Some(0),
        ..Config::default()
    };
    let v = verified("mov r0, r1\nexit", &none);
    assert!(v.assumptions().exact_len);
    assert_eq!(run_everywhere(&v, &[], 8, None), Ok(0));
    assert_eq!(
        run_everywhere(&v, &input[..1], 8, None),
        at(TrapKind::EnvMismatch, 0)
    );
}

#[test]
fn a_checked_proof_holds_for_every_length_of_at_least_mem_size() {
    // The default mode: one verification serves inputs of any length from `mem_size` up
    // (`ProgramRef::input_size`), so the length in r2 is no constant and proves nothing.
    let cfg = Config {
        mem_size: Some(8),
        ..Config::default()
    };
    let v = verified(DOUBLE_LEN, &cfg);
    assert!(!v.assumptions().exact_len, "r2 is not taken for a constant");
    assert!(
        !v.access(Pc(4)).is_some_and(|f| f.proven),
        "the load keeps its guard"
    );
    let input: Vec<u8> = (0..24).collect();
    assert_eq!(
        run_everywhere(&v, &input[..8], 8, None),
        Ok(u64::from_le_bytes(input[..8].try_into().unwrap()))
    );
    // 12 bytes: the load reads [8, 16), past the end; 16 and 24: [16, 24) and [32, 40).
    for n in [12, 16, 24] {
        assert_eq!(
            run_everywhere(&v, &input[..n], 8, None),
            at(TrapKind::OutOfBounds, 4),
            "verified for at least 8 bytes, run on {n}"
        );
    }
    // A program bounding its reads by the length runs on every longer input, its read
    // proven relative to the length (`L - 8` is a copy of r2 moved by a constant).
    let v = verified(
        "mov r3, r2\nsub r3, 8\nmov r4, r1\nadd r4, r3\nldxdw r0, [r4+0]\nexit",
        &cfg,
    );
    assert!(
        v.access(Pc(4)).is_some_and(|f| f.proven),
        "the last 8 bytes"
    );
    for n in [8, 16, 24] {
        let last = u64::from_le_bytes(input[n - 8..n].try_into().unwrap());
        assert_eq!(
            run_everywhere(&v, &input[..n], 8, None),
            Ok(last),
            "{n} bytes"
        );
    }
}
