//! A helper that ends the program (`bpfx_exec::HelperRet::Return`, `HelperRet::TailCall`):
//! the run ends at the `call`, from any call depth, with no trap, identically on the
//! interpreter and on the JIT under every option set: the same result, the same `End`, the
//! same pc, the same budget left, the same memory.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_exec::{Budget, End, Env, HelperRet, Helpers, TailCall, Trap, TrapKind};
use bpfx_testkit::engine::jit_option_sets;
use std::sync::Arc;

/// The helper that ends the program.
const ENDS: u32 = 9;

/// `main` stores 1 in the input's first byte and calls `f`, which calls helper 9 with r1 = the
/// input's length (two frames deep); if the helper gives a value, `f` returns it plus 100, and
/// `main` stores that in the first byte and returns it.
const TEXT: &str = "
    mov r6, 1
    stxb [r1+0], r6
    mov r7, r1
    call local f
    stxb [r7+0], r0
    exit
f:
    mov r1, r2
    call 9
    add r0, 100
    exit
";

/// The pc of the helper call.
const CALL_PC: Pc = Pc(7);

fn verified() -> bpfx_verifier::VerifiedProgram {
    let insns = assemble(TEXT).unwrap_or_else(|e| panic!("{e}\n{TEXT}"));
    let prog = Program::decode(insns).expect("decodes");
    let mut helpers = bpfx_verifier::HelperTable::new();
    helpers.insert(
        ENDS,
        bpfx_verifier::HelperSig::new(
            "ends",
            vec![bpfx_verifier::ArgKind::Scalar],
            bpfx_verifier::RetKind::Scalar,
        ),
    );
    let cfg = bpfx_verifier::Config {
        mode: bpfx_verifier::Mode::Checked,
        helpers,
        ..bpfx_verifier::Config::default()
    };
    bpfx_verifier::verify(prog, &cfg).expect("verifies")
}

/// Helper 9: ends the program with `len * 2` for an input of 2 bytes, with a tail call to
/// `target` for one of 3 bytes, and gives `len` otherwise.
fn helpers(target: &TailCall) -> Helpers {
    let target = target.clone();
    let mut h = Helpers::new();
    h.insert(
        ENDS,
        Vec::new(),
        Arc::new(move |_, a| {
            Ok(match a[0] {
                2 => HelperRet::Return(a[0] * 2),
                3 => HelperRet::TailCall(target.clone()),
                n => HelperRet::Value(n),
            })
        }),
    );
    h
}

/// What one engine did: how the run ended (`run_to_end`), the budget left, the input after.
type Outcome = (Result<End, Trap>, Option<u64>, Vec<u8>);

/// Runs `len` bytes of input through `run_to_end` and through `run` (as `End::Return`).
fn outcome(
    len: usize,
    target: &TailCall,
    run: impl Fn(&mut [u8], &mut Env, bool) -> Result<End, Trap>,
) -> (Outcome, Result<u64, Trap>) {
    let go = |to_end: bool| {
        let mut env = Env::with_helpers(helpers(target));
        env.set_budget(Budget::Limit(1000));
        let mut input = vec![0u8; len];
        let end = run(&mut input, &mut env, to_end);
        (end, env.budget, input)
    };
    let plain = match go(false).0 {
        Ok(End::Return(r0)) => Ok(r0),
        Ok(end) => panic!("`run` gave {end:?}"),
        Err(trap) => Err(trap),
    };
    (go(true), plain)
}

fn interp(
    v: &bpfx_verifier::VerifiedProgram,
    len: usize,
    target: &TailCall,
) -> (Outcome, Result<u64, Trap>) {
    let r = outcome(len, target, |input, env, to_end| {
        if to_end {
            bpfx_interp::run_to_end(v, input, env)
        } else {
            bpfx_interp::run(v, input, env).map(End::Return)
        }
    });
    // The unverified entry ends the same way.
    let mut env = Env::with_helpers(helpers(target));
    let unverified = bpfx_interp::run_unverified(v.program(), &mut vec![0; len], &mut env);
    assert_eq!(unverified, r.1, "run_unverified, input of {len}");
    r
}

fn jit(
    v: &bpfx_verifier::VerifiedProgram,
    len: usize,
    target: &TailCall,
    opts: &bpfx_jit::JitOptions,
) -> (Outcome, Result<u64, Trap>) {
    let opts = bpfx_jit::JitOptions {
        budget: true,
        ..opts.clone()
    };
    let code = bpfx_jit::compile(v, &opts).expect("compiles");
    outcome(len, target, |input, env, to_end| {
        if to_end {
            code.run_to_end(input, env)
        } else {
            code.run(input, env).map(End::Return)
        }
    })
}

#[test]
fn a_helper_ends_the_program_at_the_call_on_every_engine() {
    let v = verified();
    let target = TailCall(Arc::new(7u32));
    for len in [1usize, 2, 3] {
        let (expected, plain) = interp(&v, len, &target);
        // The reference itself: the value or the end, and only the first marker stored when
        // the helper ended the program.
        let (end, _, input) = &expected;
        match len {
            1 => {
                assert_eq!(end, &Ok(End::Return(101)));
                assert_eq!(input, &[101]);
            }
            2 => {
                assert_eq!(end, &Ok(End::Return(4)));
                assert_eq!(input, &[1, 0]);
                assert_eq!(plain, Ok(4));
            }
            _ => {
                assert_eq!(
                    end,
                    &Ok(End::TailCall {
                        pc: CALL_PC,
                        target: target.clone()
                    })
                );
                assert_eq!(input, &[1, 0, 0]);
                // `run` cannot follow it: a trap at the call.
                assert_eq!(
                    plain,
                    Err(Trap {
                        kind: TrapKind::Unsupported,
                        pc: CALL_PC
                    })
                );
            }
        }
        for (name, opts) in jit_option_sets() {
            let (got, got_plain) = jit(&v, len, &target, &opts);
            assert_eq!(got, expected, "jit {name}, input of {len}");
            assert_eq!(got_plain, plain, "jit {name} `run`, input of {len}");
        }
    }
}

/// The tail call's target is the helper's own, not a copy: the embedder finds its program in it.
#[test]
fn the_tail_call_target_is_the_helpers() {
    let target = TailCall(Arc::new(String::from("next")));
    let ((end, _, _), _) = interp(&verified(), 3, &target);
    let Ok(End::TailCall { target: got, .. }) = end else {
        panic!("{end:?}");
    };
    assert!(Arc::ptr_eq(&got.0, &target.0));
    assert_eq!(
        got.0.downcast_ref::<String>().map(String::as_str),
        Some("next")
    );
    assert_ne!(
        got,
        TailCall(Arc::new(String::from("next"))),
        "another allocation"
    );
}
