//! The loop shapes Checked mode's termination proof covers (`crates/verifier/src/termination.rs`,
//! docs/verifier.md "Termination"), each beside an unsafe twin of the same shape that does not
//! end (or ends only after wrapping around 2^32 or 2^64). The proven ones run to their result on
//! the interpreter and on the JIT under every option set, compiled without the budget charge;
//! the twins are not proven and run into the default instruction budget on every engine. Some
//! twins do end, but only past the instruction limit a proof allows (a counter up to 2^63,
//! 32-bit loops to 2^32 nested three deep, a long callee called too often).

use bpfx_bytecode::{Program, assemble};
use bpfx_exec::{Env, Helpers, TrapKind};
use bpfx_testkit::jit_option_sets;
use bpfx_verifier::{Config, Mode, VerifiedProgram, verify};

/// (shape, proven program, its result, unsafe twin).
const SHAPES: &[(&str, &str, u64, &str)] = &[
    (
        "`!=` counting up from a constant",
        "mov r0, 0\ntop:\nadd r0, 1\njne r0, 31, top\nexit",
        31,
        // Starts above the bound: ends only after 2^64 steps.
        "mov r0, 40\ntop:\nadd r0, 1\njne r0, 31, top\nexit",
    ),
    (
        "`!=` counting down from a constant",
        "mov r0, 31\ntop:\nsub r0, 1\njne r0, 0, top\nexit",
        0,
        // The first step wraps below 0.
        "mov r0, 0\ntop:\nsub r0, 1\njne r0, 31, top\nexit",
    ),
    (
        "32-bit `!=`",
        "mov32 r0, 0\ntop:\nadd32 r0, 1\njne32 r0, 100, top\nexit",
        100,
        // Starts above the bound: ends only after 2^32 steps, far past the budget.
        "mov32 r0, 200\ntop:\nadd32 r0, 1\njne32 r0, 100, top\nexit",
    ),
    (
        "`!=` with early exits on data (strcmp's loop), the start set on two ways in",
        "mov r0, 0\nstdw [r10-8], 0\njeq r1, 1, top\nmov r0, 3\ntop:\nmov r3, r0\nand r3, 7\nmov r4, r10\nsub r4, 8\nadd r4, r3\nldxb r4, [r4]\njne r4, 0, out\nadd r0, 1\njne r0, 31, top\nout:\nexit",
        31,
        // A 32-bit counter against a 64-bit bound it never reaches.
        "mov r0, 0\nstdw [r10-8], 0\njeq r1, 1, top\nmov r0, 3\ntop:\nmov r3, r0\nand r3, 7\nmov r4, r10\nsub r4, 8\nadd r4, r3\nldxb r4, [r4]\njne r4, 0, out\nadd32 r0, 1\njne r0, -1, top\nout:\nexit",
    ),
    (
        "staying while `==`",
        "mov r0, 5\nmov r6, 6\ntop:\nadd r0, 1\njeq r0, r6, top\nexit",
        7,
        // A step of 0.
        "mov r0, 5\nmov r6, 5\ntop:\nadd r0, 0\njeq r0, r6, top\nexit",
    ),
    (
        "a test on an offset copy of the counter (`i + 8 <= n`)",
        "mov r0, 0\nmov r3, 0\ntop:\nadd r0, 1\nmov r5, r3\nadd r5, 8\nadd r3, 4\njgt r5, 400, out\nja top\nout:\nexit",
        100,
        // The copy made once, before the loop.
        "mov r0, 0\nmov r3, 0\nmov r5, r3\nadd r5, 8\ntop:\nadd r0, 1\nadd r3, 4\njgt r5, 400, out\nja top\nout:\nexit",
    ),
    (
        "a bound kept on the stack: spilled before the loop, filled for every test",
        "stdw [r10-8], 400\nmov r0, 0\nmov r3, 0\ntop:\nadd r0, 1\nmov r5, r3\nadd r5, 8\nadd r3, 4\nldxdw r1, [r10-8]\njgt r5, r1, out\nja top\nout:\nexit",
        100,
        // The loop moves the bound ahead of the counter in its slot.
        "stdw [r10-8], 400\nmov r0, 0\nmov r3, 0\ntop:\nadd r0, 1\nmov r5, r3\nadd r5, 8\nadd r3, 4\nmov r1, r5\nadd r1, 8\nstxdw [r10-8], r1\nldxdw r1, [r10-8]\njgt r5, r1, out\nja top\nout:\nexit",
    ),
    (
        "a bound kept on the stack, with a store elsewhere in the frame in the loop",
        "stdw [r10-8], 400\nmov r0, 0\nmov r3, 0\ntop:\nadd r0, 1\nmov r5, r3\nadd r5, 8\nadd r3, 4\nstxdw [r10-16], r5\nldxdw r1, [r10-8]\njgt r5, r1, out\nja top\nout:\nexit",
        100,
        // The same through a pointer into the frame: the store may be to the bound's slot.
        "stdw [r10-8], 400\nmov r2, r10\nadd r2, -8\nmov r0, 0\nmov r3, 0\ntop:\nadd r0, 1\nmov r5, r3\nadd r5, 8\nadd r3, 4\nmov r1, r5\nadd r1, 8\nstxdw [r2+0], r1\nldxdw r1, [r10-8]\njgt r5, r1, out\nja top\nout:\nexit",
    ),
    (
        "an offset stepping by a parsed length plus a header (at least 1), tested as it is carried",
        "sth [r10-8], 3\nmov r0, 0\nmov r3, 2\ntop:\nadd r0, 1\nldxh r9, [r10-8]\nmov r7, r3\nadd r7, r9\nmov r3, r7\nadd r3, 2\njle r3, 400, top\nexit",
        80,
        // No header and a length of 0: the offset stays put.
        "sth [r10-8], 0\nmov r0, 0\nmov r3, 2\ntop:\nadd r0, 1\nldxh r9, [r10-8]\nmov r7, r3\nadd r7, r9\nmov r3, r7\nadd r3, 0\njle r3, 400, top\nexit",
    ),
    (
        "an offset copy against a register bound (a 16-bit load), step 1, strict",
        "stdw [r10-8], 50\nldxh r6, [r10-8]\nmov r0, 0\ntop:\nmov r5, r0\nadd r5, 1\nadd r0, 1\njge r5, r6, out\nja top\nout:\nexit",
        50,
        // Not strict: `<= u64::MAX` always holds.
        "stdw [r10-8], -1\nldxdw r6, [r10-8]\nmov r0, 0\ntop:\nmov r5, r0\nadd r5, 1\nadd r0, 1\njgt r5, r6, out\nja top\nout:\nexit",
    ),
    (
        "the step on both arms of an if",
        "mov r0, 0\ntop:\njset r0, 1, odd\nadd r0, 1\nja next\nodd:\nadd r0, 1\nnext:\njlt r0, 10, top\nexit",
        10,
        // One arm does not step.
        "mov r0, 0\ntop:\njset r0, 1, odd\nadd r0, 1\nja next\nodd:\nadd r0, 0\nnext:\njlt r0, 10, top\nexit",
    ),
    (
        "switch cases jumping back to the latch, above them (clang's layout)",
        "mov r0, 0\nmov r5, 0\nja head\nlatch:\nadd r5, 1\njlt r5, 20, head\nja out\nhead:\njset r5, 1, latch\nadd r0, 1\nja latch\nout:\nexit",
        10,
        // A case jumping back past the step.
        "mov r0, 0\nmov r5, 0\nja head\nlatch:\nadd r5, 1\ntest:\njlt r5, 20, head\nja out\nhead:\njset r5, 1, test\nadd r0, 1\nja latch\nout:\nexit",
    ),
    (
        "a counter lagging an iteration behind (`r4 = r3` after `r3 += 4`), a byte bound",
        "stb [r10-1], 200\nldxb r6, [r10-1]\nmov r0, 0\nmov r3, 0\nmov r4, 0\ntop:\nadd r0, 1\nadd r3, 4\nmov r5, r4\nadd r5, 8\nmov r4, r3\njgt r5, r6, out\nja top\nout:\nexit",
        50,
        // A 64-bit bound of unknown range: `<= u64::MAX` always holds.
        "stdw [r10-8], -1\nldxdw r6, [r10-8]\nmov r0, 0\nmov r3, 0\nmov r4, 0\ntop:\nadd r0, 1\nadd r3, 4\nmov r5, r4\nadd r5, 8\nmov r4, r3\njgt r5, r6, out\nja top\nout:\nexit",
    ),
    (
        "a bound clamped by `min`",
        "stdw [r10-8], 1000\nldxdw r6, [r10-8]\njle r6, 100, ok\nmov r6, 100\nok:\nmov r0, 0\ntop:\nadd r0, 4\njle r0, r6, top\nexit",
        104,
        // Clamped as signed: -1 stays, u64::MAX unsigned.
        "stdw [r10-8], -1\nldxdw r6, [r10-8]\njsle r6, 100, ok\nmov r6, 100\nok:\nmov r0, 0\ntop:\nadd r0, 4\njle r0, r6, top\nexit",
    ),
    (
        "the input length (r2 at the program's entry, below 2^63) as bound, step 8",
        "mov r0, 0\ntop:\nadd r0, 8\njle r0, r2, top\nexit",
        8,
        // r2 in a called function: the caller passes u64::MAX.
        "mov r2, -1\ncall local f\nexit\nf:\nmov r0, 0\ntop:\nadd r0, 8\njle r0, r2, top\nexit",
    ),
    (
        "a 64-bit counter against a bound far below 2^63",
        "mov r0, 0\ntop:\nadd r0, 1\njlt r0, 0x10000, top\nexit",
        0x10000,
        // `for (i = 0; i < (1ULL << 63); i++)`: ends, after centuries.
        "lddw r1, 0x8000000000000000\nmov r0, 0\ntop:\nadd r0, 1\njlt r0, r1, top\nexit",
    ),
    (
        "three nested 32-bit loops, 2^18 runs of the innermost body",
        "mov r0, 0\nmov32 r1, 0\nl1:\nmov32 r2, 0\nl2:\nmov32 r3, 0\nl3:\nadd r0, 1\nadd32 r3, 1\njlt32 r3, 64, l3\nadd32 r2, 1\njlt32 r2, 64, l2\nadd32 r1, 1\njlt32 r1, 64, l1\nexit",
        1 << 18,
        // Each to 2^32 - 1: 2^96 runs of the innermost body.
        "mov r0, 0\nmov32 r1, 0\nl1:\nmov32 r2, 0\nl2:\nmov32 r3, 0\nl3:\nadd r0, 1\nadd32 r3, 1\njlt32 r3, -1, l3\nadd32 r2, 1\njlt32 r2, -1, l2\nadd32 r1, 1\njlt32 r1, -1, l1\nexit",
    ),
    (
        "a loop of a 2^20-iteration callee, called 2^4 times",
        "mov r0, 0\nmov r6, 0\ntop:\ncall local f\nadd r6, 1\njlt r6, 16, top\nmov r0, r6\nexit\nf:\nmov r1, 0\nl:\nadd r1, 1\njlt r1, 0x100000, l\nexit",
        16,
        // Called 2^10 times: 2^31 instructions, past the limit (every loop ends).
        "mov r0, 0\nmov r6, 0\ntop:\ncall local f\nadd r6, 1\njlt r6, 1024, top\nmov r0, r6\nexit\nf:\nmov r1, 0\nl:\nadd r1, 1\njlt r1, 0x100000, l\nexit",
    ),
];

fn checked(text: &str) -> VerifiedProgram {
    let prog = Program::decode(assemble(text).expect("assembles")).expect("decodes");
    verify(
        prog,
        &Config {
            mode: Mode::Checked,
            mem_size: Some(0),
            ..Config::default()
        },
    )
    .expect("checked mode accepts it")
}

#[test]
fn proven_shapes_end_on_every_engine_without_the_budget_charge() {
    for &(shape, text, expected, _) in SHAPES {
        let v = checked(text);
        assert!(v.terminates(), "{shape}: not proven");
        let mut env = Env::with_helpers(Helpers::new());
        assert_eq!(
            bpfx_interp::run(&v, &mut [], &mut env),
            Ok(expected),
            "{shape}: interpreter"
        );
        for (name, opts) in jit_option_sets() {
            let jit = bpfx_jit::compile(&v, &opts).expect("compiles");
            assert!(
                !jit.listing().contains("budget slow paths"),
                "{shape}: {name}: budget charge"
            );
            let mut env = Env::with_helpers(Helpers::new());
            assert_eq!(
                jit.run(&mut [], &mut env),
                Ok(expected),
                "{shape}: JIT {name}"
            );
        }
    }
}

#[test]
fn unsafe_twins_are_not_proven_and_run_into_the_budget_on_every_engine() {
    for &(shape, _, _, twin) in SHAPES {
        let v = checked(twin);
        assert!(!v.terminates(), "{shape}: twin proven");
        let mut env = Env::with_helpers(Helpers::new());
        let trap = bpfx_interp::run(&v, &mut [], &mut env).expect_err("interpreter: ends");
        assert_eq!(trap.kind, TrapKind::BudgetExhausted, "{shape}: interpreter");
        for (name, opts) in jit_option_sets() {
            let jit = bpfx_jit::compile(&v, &opts).expect("compiles");
            assert!(
                jit.listing().contains("budget slow paths"),
                "{shape}: {name}: no budget charge"
            );
            let mut env = Env::with_helpers(Helpers::new());
            let t = jit.run(&mut [], &mut env).expect_err("JIT: ends");
            assert_eq!(t.kind, TrapKind::BudgetExhausted, "{shape}: JIT {name}");
            assert_eq!(t.pc, trap.pc, "{shape}: JIT {name}: trap pc");
        }
    }
}
