//! `bpf_loop` (helper 181): clang-built programs (`objects/loops.c`) whose callbacks sum,
//! parse and stop early, with `nr_loops` from the input and from a map, verified in both
//! modes and run on every engine and JIT option set, results compared with values computed
//! here; and the unsafe twins (`objects/loops_bad.c`) rejected in both modes.

mod common;

use bpfx::{Mode, Object, UpdateFlag};
use common::{engines, prepare};
use std::path::PathBuf;

fn object(name: &str) -> Object {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects"));
    Object::open(dir.join(name)).unwrap()
}

/// `struct in { u32 n; u32 stop; u8 bytes[64]; }`.
fn input(n: u32, stop: u32, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 72];
    v[..4].copy_from_slice(&n.to_le_bytes());
    v[4..8].copy_from_slice(&stop.to_le_bytes());
    v[8..8 + bytes.len()].copy_from_slice(bytes);
    v
}

/// Runs program `name` of `obj` on `inp` in both modes on every engine; every run must give
/// `want` (the program's `int` result, as r0's low 32 bits).
fn check(obj: &Object, name: &str, inp: &[u8], want: u32) {
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj
                .program(name)
                .unwrap()
                .input_size(72)
                .verify(mode)
                .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let mut m = inp.to_vec();
            let r0 = prog
                .run(&mut m)
                .unwrap_or_else(|t| panic!("{name} {mode:?} {engine}: {t}"));
            assert_eq!(r0 as u32, want, "{name} {mode:?} {engine}");
        }
    }
}

#[test]
fn bpf_loop_sums_through_a_context_on_the_stack() {
    let obj = object("loops.o");
    for n in [0u32, 1, 2, 7, 100, 1000] {
        let sum: u64 = (0..u64::from(n)).map(|i| i * i).sum();
        let want = sum + 1_000_000 * u64::from(n) + 1000 * u64::from(n);
        check(&obj, "sum_squares", &input(n, 0, &[]), want as u32);
    }
    // Above BPF_MAX_LOOPS the helper fails with -E2BIG before any call.
    let want = (-7i64 * 1_000_000) as u32;
    check(&obj, "sum_squares", &input((1 << 23) + 1, 0, &[]), want);
}

#[test]
fn bpf_loop_callback_stops_early_by_returning_one() {
    let obj = object("loops.o");
    for text in ["12345x", "0", "", "9876543210123456789", "42"] {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        let value = digits.bytes().fold(0u64, |v, b| {
            v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
        });
        // Calls made: each digit, plus the call that found the first non-digit (the input is
        // zero-padded, so there always is one before 64).
        let calls = digits.len() as u64 + 1;
        let want = value.wrapping_mul(100).wrapping_add(calls);
        check(
            &obj,
            "parse_number",
            &input(0, 0, text.as_bytes()),
            want as u32,
        );
    }
}

#[test]
fn bpf_loop_runs_nr_loops_from_a_map() {
    let obj = object("loops.o");
    let map = obj.map("loops").unwrap();
    for (n, stop) in [(0u64, 5u32), (3, 9), (10, 4), (10, 0), (1000, 999)] {
        map.update(&0u32.to_le_bytes(), &n.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        // Calls made: up to and including index `stop`, at most n.
        let calls = n.min(u64::from(stop) + 1);
        check(
            &obj,
            "loops_from_map",
            &input(0, stop, &[]),
            (calls * 1001) as u32,
        );
    }
}

#[test]
fn a_budget_exhausted_inside_the_callback_traps_at_the_callback_pc_on_every_engine() {
    let obj = object("loops.o");
    let mut seen = None;
    for budget in [5u64, 40, 200] {
        for (engine, opts) in engines() {
            let v = obj
                .program("sum_squares")
                .unwrap()
                .input_size(72)
                .verify(Mode::Checked)
                .unwrap();
            // Every JIT option set, with the budget charge compiled in.
            let opts = opts.map(|o| bpfx_jit::JitOptions { budget: true, ..o });
            let mut prog = prepare(v, opts);
            prog.set_budget(bpfx::Budget::Limit(budget));
            let got = prog.run(&mut input(1000, 0, &[])).map_err(|e| match e {
                bpfx::Error::Trap { trap, .. } => trap,
                e => panic!("{engine}: {e}"),
            });
            match &seen {
                Some((b, s)) if *b == budget => assert_eq!(s, &got, "{engine} budget {budget}"),
                _ => seen = Some((budget, got)),
            }
            if budget == 40 {
                // Nine instructions up to and including the `call` (the `lddw` counts once),
                // three runs of the nine-instruction callback (`add_square`, linked at pc 18),
                // then four of the fourth: its fifth instruction finds the budget spent.
                let trap = got.unwrap_err();
                assert_eq!(trap.kind, bpfx_exec::TrapKind::BudgetExhausted, "{engine}");
                assert_eq!(trap.pc, bpfx::bytecode::Pc(22), "{engine}");
            }
        }
    }
}

#[test]
fn unsafe_callbacks_are_rejected_in_both_modes() {
    let obj = object("loops_bad.o");
    for (name, says) in [
        ("bad_return", "must return 0 or 1"),
        ("bad_write", "outside the stack frame"),
    ] {
        for mode in [Mode::Checked, Mode::Strict] {
            let r = obj.program(name).unwrap().verify(mode);
            match (name, mode) {
                // Checked mode guards the unproven write and runs it: it traps.
                ("bad_write", Mode::Checked) => {
                    let v = r.unwrap_or_else(|e| panic!("{name}: {e}"));
                    for (engine, opts) in engines() {
                        let mut prog = prepare(v.clone(), opts);
                        match prog.run(&mut [0u8; 8]) {
                            Err(bpfx::Error::Trap { trap, .. }) => {
                                assert_eq!(trap.kind, bpfx_exec::TrapKind::OutOfBounds, "{engine}")
                            }
                            r => panic!("{engine}: {r:?}"),
                        }
                    }
                }
                _ => {
                    let e = r
                        .err()
                        .unwrap_or_else(|| panic!("{name} {mode:?} accepted"));
                    assert!(e.to_string().contains(says), "{name} {mode:?}: {e}");
                }
            }
        }
    }
}

/// Every run starts with a zeroed stack, the callback's frame included (it lies below its
/// caller's, outside the local-call graph the JIT sizes its stack from): a callback reading
/// its own slot before writing it sees 0 on every run, on every engine.
#[test]
fn a_callback_frame_starts_zeroed_on_every_run() {
    let text = "mov r6, 0\nstxdw [r10-8], r6\nmov r1, 1\nlddw r2, func(cb)\nmov r3, r10\n\
                add r3, -8\nmov r4, 0\ncall 181\nldxdw r0, [r10-8]\nexit\n\
                cb:\nldxdw r3, [r10-8]\nstxdw [r2+0], r3\nmov r3, 99\nstxdw [r10-8], r3\n\
                mov r0, 0\nexit";
    let obj = bpfx::Vm::new()
        .object(
            vec![bpfx::ProgramDef::new("p", "test", common::code(text))],
            vec![],
        )
        .unwrap();
    for (engine, opts) in engines() {
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = prepare(v, opts);
        for run in 0..3 {
            assert_eq!(prog.run(&mut []).unwrap(), 0, "{engine} run {run}");
        }
    }
}
