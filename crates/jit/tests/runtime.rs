//! The JIT's own run-time contract: W^X code memory, the dual-mapped arena, its frame limit,
//! helper panics, budget-charged and uncharged code, code size bounds. The semantics every
//! engine shares (guards, traps with their pcs, edge-case arithmetic, calls) are tested on every
//! engine and JIT option set by the test kit (`testkit/tests/edge.rs`, `tests/data/*.data`).

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_exec::{Env, Helpers, Trap, TrapKind};
use bpfx_jit::{CodeMemory, JitOptions, JitProgram, MAX_FRAMES, compile_unverified};
use bpfx_testkit::jit_option_sets;

fn prog(text: &str) -> Program {
    let insns = assemble(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Program::decode(insns).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn jit(text: &str) -> JitProgram {
    compile_unverified(&prog(text), &JitOptions::default()).expect("compiles")
}

/// `text` compiled into the dual-mapped arena (this host has `memfd_create`, so no fallback).
fn dual(text: &str) -> JitProgram {
    let opts = JitOptions {
        code_memory: CodeMemory::DualMapped,
        ..JitOptions::default()
    };
    let jit = compile_unverified(&prog(text), &opts).expect("compiles");
    assert_eq!(
        jit.code_memory(),
        CodeMemory::DualMapped,
        "no fallback here"
    );
    jit
}

fn trap(kind: TrapKind, pc: u32) -> Result<u64, Trap> {
    Err(Trap { kind, pc: Pc(pc) })
}

#[test]
fn no_mapping_is_writable_and_executable() {
    let texts = [
        "mov r0, 1\nexit",
        "ldxb r0, [r1]\nexit",
        "mov r1, 7\ncall 5\nexit",
        "mov r0, 0\nadd r0, 1\njlt r0, 10, -2\nexit",
    ];
    // Both kinds of code memory, alive together: sealed mappings, and the arena's two views.
    let programs: Vec<JitProgram> = texts
        .iter()
        .map(|t| jit(t))
        .chain(texts.iter().map(|t| dual(t)))
        .collect();
    let mut input = [1u8; 4];
    for p in &programs {
        p.run(&mut input, &mut Env::with_helpers(Helpers::conformance()))
            .expect("runs");
    }
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable");
    let wx: Vec<&str> = maps
        .lines()
        .filter(|l| {
            let perms = l.split_whitespace().nth(1).unwrap_or("");
            perms.contains('w') && perms.contains('x')
        })
        .collect();
    assert!(
        wx.is_empty(),
        "writable and executable mappings:\n{}",
        wx.join("\n")
    );
    assert!(
        maps.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("r-xp")),
        "sanity: the process has executable mappings"
    );
    assert!(
        maps.lines()
            .any(|l| l.contains("memfd:bpfx-jit") && l.split_whitespace().nth(1) == Some("r-xs")),
        "sanity: the arena's executable view is mapped"
    );
}

/// Lines of `/proc/self/maps` that are views of the dual-mapped arena.
fn arena_views() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps is readable")
        .lines()
        .filter(|l| l.contains("memfd:bpfx-jit"))
        .count()
}

#[test]
fn compile_and_drop_cycles_reuse_dual_mapped_memory() {
    let texts = [
        "mov r0, 1\nexit",
        "ldxb r0, [r1]\nadd r0, 3\nexit",
        "mov r0, 0\nadd r0, 1\njlt r0, 10, -2\nexit",
    ];
    let mut input = [5u8; 4];
    for i in 0..6_000 {
        let p = dual(texts[i % texts.len()]);
        p.run(&mut input, &mut Env::with_helpers(Helpers::conformance()))
            .expect("runs");
    }
    // 6,000 programs of some hundred bytes each would fill about ten 256 KiB chunks if blocks
    // were not reused; other tests of this binary hold a few blocks at the same time.
    let views = arena_views();
    assert!((2..=8).contains(&views), "{views} arena views mapped");
}

#[test]
fn dropping_a_dual_mapped_program_leaves_the_others_intact() {
    let texts = [
        "mov r0, 11\nexit",
        "ldxb r0, [r1]\nadd r0, 100\nexit",
        "mov r0, 0\nadd r0, 1\njlt r0, 30, -2\nexit",
        "lddw r0, 0x1122334455667788\nexit",
    ];
    let mut programs: Vec<Option<JitProgram>> = texts.iter().map(|t| Some(dual(t))).collect();
    let code: Vec<Vec<u8>> = programs
        .iter()
        .flatten()
        .map(|p| p.code().to_vec())
        .collect();
    let expect = [11, 107, 30, 0x1122_3344_5566_7788];
    let mut input = [7u8; 4];
    let mut env = Env::with_helpers(Helpers::conformance());
    // Drop the second and fourth, then compile others into the freed blocks.
    programs[1] = None;
    programs[3] = None;
    let newcomers: Vec<JitProgram> = (0..8)
        .map(|k| dual(&format!("mov r0, {k}\nexit")))
        .collect();
    for (k, p) in newcomers.iter().enumerate() {
        assert_eq!(p.run(&mut input, &mut env), Ok(k as u64));
    }
    for k in [0, 2] {
        let p = programs[k].as_ref().expect("kept");
        assert_eq!(p.code(), &code[k][..], "program {k}'s code changed");
        assert_eq!(p.run(&mut input, &mut env), Ok(expect[k]), "program {k}");
    }
}

/// The JIT's own limit on frames ([`MAX_FRAMES`]: each takes host stack), and where the frames
/// sit. The call depth limit every engine has is `testkit/tests/edge.rs` and the `.data` files.
#[test]
fn call_depth_is_limited() {
    let recurse = "
        mov r6, 0
        call local f
        exit
    f:
        add r6, 1
        mov r0, r6
        call local f
        exit";
    let mut env = Env::new();
    env.set_max_frames(MAX_FRAMES + 1);
    for (name, opts) in jit_option_sets() {
        let p = compile_unverified(&prog(recurse), &opts).expect("compiles");
        let refused = trap(TrapKind::Unsupported, 0);
        assert_eq!(p.run(&mut [], &mut env), refused, "{name}");
    }
    // Seven nested calls are fine with 8 frames.
    let mut nested = String::from("call local f1\nexit\n");
    for k in 1..=7 {
        if k < 7 {
            nested += &format!("f{k}:\ncall local f{}\nadd r0, 1\nexit\n", k + 1);
        } else {
            nested += &format!("f{k}:\nmov r0, r10\nexit\n");
        }
    }
    let mut env = Env::new();
    let top = env.stack_mut().top();
    assert_eq!(jit(&nested).run(&mut [], &mut env), Ok(top - 7 * 512 + 6));
}

#[test]
#[should_panic(expected = "helper panicked")]
fn a_panicking_helper_panics_the_caller_not_the_process() {
    let mut helpers = Helpers::new();
    helpers.register(1, |_, _| panic!("helper panicked"));
    let mut env = Env::with_helpers(helpers);
    let _ = jit("call 1\nexit").run(&mut [], &mut env);
}

/// Code compiled with the budget charge, under every option set: exact to the instruction, a
/// trap costs the faulting instruction, and it runs without a budget too; code compiled without
/// the charge refuses a budget.
#[test]
fn budget_is_exact() {
    let text = "mov r0, 0\nadd r0, 1\njlt r0, 3, -2\nexit"; // 1 + 3 * 2 + 1 = 8 instructions
    for (name, opts) in jit_option_sets() {
        let charged = JitOptions {
            budget: true,
            ..opts.clone()
        };
        let p = compile_unverified(&prog(text), &charged).expect("compiles");
        let mut env = Env::new();
        for (budget, want, left) in [
            (8, Ok(3), 0),
            (7, trap(TrapKind::BudgetExhausted, 3), 0),
            (100, Ok(3), 92),
        ] {
            env.budget = Some(budget);
            assert_eq!(p.run(&mut [], &mut env), want, "{name}, budget {budget}");
            assert_eq!(env.budget, Some(left), "{name}, budget {budget}");
        }
        // A trap costs the faulting instruction.
        let oob = compile_unverified(&prog("ldxb r0, [r0]\nexit"), &charged).expect("compiles");
        env.budget = Some(10);
        let oob_trap = trap(TrapKind::OutOfBounds, 0);
        assert_eq!(oob.run(&mut [], &mut env), oob_trap, "{name}");
        assert_eq!(env.budget, Some(9), "{name}");
        // Metered code runs without a budget too; unmetered code refuses one.
        env.budget = None;
        assert_eq!(p.run(&mut [], &mut env), Ok(3), "{name}");
        // (A program without a loop: code for one that may not end always has the charge.)
        let uncharged = compile_unverified(&prog("mov r0, 3\nexit"), &opts).expect("compiles");
        env.budget = Some(100);
        let refused = trap(TrapKind::Unsupported, 0);
        assert_eq!(uncharged.run(&mut [], &mut env), refused, "{name}");
    }
}

#[test]
fn every_instruction_stays_within_its_code_size_bound() {
    // The largest lowerings, with the budget charge: a guarded fetch-and on a 64-bit value, a
    // signed register division, a helper call, a local call. Compilation checks the bound.
    let text = "
        lock fetch and [r1+1000], r0
        lock fetch xor32 [r0-1000], r0
        stdw [r2+1000], 0x12345678
        jset r3, 0x12345678, +0
        sdiv r3, r0
        smod32 r0, r3
        lsh r4, r2
        call 5
        call r4
        call local f
        ldindw r3, 1000
        lddw r0, 0x123456789abcdef0
        exit
    f:
        exit";
    // Every option set, each with the budget charge, whose slow paths copy every block; the
    // hardened set (every option on at once) makes the largest code.
    for (name, opts) in jit_option_sets() {
        let opts = JitOptions {
            budget: true,
            ..opts
        };
        let p = compile_unverified(&prog(text), &opts);
        assert!(p.is_ok(), "{name}: {:?}", p.err());
    }
}

/// A run never sees stack bytes an earlier run on the same environment left, however much of
/// the stack each program may write: after a program whose stores are all `r10`-relative only
/// its deepest store's bytes are zeroed, after one storing through a copy of `r10` the whole
/// frame, after one that stores nothing nothing at all; on every option set, and as on the
/// interpreter.
#[test]
fn a_run_never_sees_the_stack_a_previous_run_left() {
    // Reads what it then writes, 16 bytes below r10, directly.
    let direct = prog("ldxdw r0, [r10-16]\nstdw [r10-16], 7\nstdw [r10-8], 9\nexit");
    // Writes deep in its frame through a copy of r10, and where `direct` does.
    let through =
        prog("mov r1, r10\nadd r1, -504\nstdw [r1], 5\nstdw [r10-16], 6\nmov r0, 0\nexit");
    // Stores nothing; reads both places.
    let reader = prog("ldxdw r0, [r10-504]\nldxdw r1, [r10-16]\nadd r0, r1\nexit");
    let order = [
        &direct, &direct, &through, &reader, &direct, &reader, &through, &direct,
    ];
    let mut env = Env::new();
    for (i, p) in order.iter().enumerate() {
        assert_eq!(
            bpfx_interp::run_unverified(p, &mut [], &mut env),
            Ok(0),
            "interp, run {i}"
        );
    }
    for (name, opts) in jit_option_sets() {
        let mut env = Env::new();
        for (i, p) in order.iter().enumerate() {
            let jit = compile_unverified(p, &opts).expect("compiles");
            assert_eq!(jit.run(&mut [], &mut env), Ok(0), "{name}, run {i}");
        }
    }
}

/// One environment's runs each see their own input bounds, shared blocks and helpers' outcome,
/// although the JIT keeps its run context between them (`Env::engine_cache`): an input of
/// another length is guarded by its own length, blocks no longer lent are refused and new ones
/// admitted (read-only ones refusing stores), and a run after a trap or a helper's failure
/// starts clean; on every option set, and as on the interpreter.
#[test]
fn runs_on_one_environment_see_their_own_input_blocks_and_outcome() {
    use bpfx_exec::SharedMem;
    use std::sync::Arc;
    // r0 = the 8 bytes at input offset 8.
    let at8 = prog("ldxdw r0, [r1+8]\nexit");
    // r0 = the word at the address in the input's first 8 bytes, after storing 7 there when
    // the input's second word is nonzero.
    let via =
        prog("ldxdw r2, [r1]\nldxdw r3, [r1+8]\njeq r3, 0, +1\nstdw [r2], 7\nldxdw r0, [r2]\nexit");
    // Calls helper 1, which fails on a nonzero argument.
    let failing = prog("mov r1, r2\ncall 1\nmov r0, 5\nexit");
    let a = SharedMem::new(8, true);
    let b = SharedMem::from_bytes(&42u64.to_le_bytes(), false);
    let oob = |pc| trap(TrapKind::OutOfBounds, pc);
    let input = |addr: u64, store: u64| {
        let mut v = addr.to_le_bytes().to_vec();
        v.extend_from_slice(&store.to_le_bytes());
        v
    };
    // (program, input, shared blocks, expected)
    type Step<'a> = (&'a Program, Vec<u8>, Vec<Arc<SharedMem>>, Result<u64, Trap>);
    let steps: Vec<Step<'_>> = vec![
        (&at8, vec![1; 16], vec![], Ok(0x0101_0101_0101_0101)),
        (&at8, vec![1; 8], vec![], oob(0)),
        (&at8, vec![2; 16], vec![], Ok(0x0202_0202_0202_0202)),
        (&at8, vec![3; 15], vec![], oob(0)),
        (&via, input(a.addr(), 1), vec![a.clone()], Ok(7)),
        // `a` is no longer lent: refused, though it still exists.
        (&via, input(a.addr(), 0), vec![b.clone()], oob(4)),
        (&via, input(b.addr(), 0), vec![b.clone()], Ok(42)),
        // Read-only: the store traps.
        (&via, input(b.addr(), 1), vec![b.clone()], oob(3)),
        (&via, input(b.addr(), 0), vec![a.clone(), b.clone()], Ok(42)),
        (&via, input(a.addr(), 0), vec![a.clone(), b.clone()], Ok(7)),
        (
            &failing,
            vec![0; 16],
            vec![],
            trap(TrapKind::HelperError, 1),
        ),
        (&at8, vec![4; 16], vec![], Ok(0x0404_0404_0404_0404)),
        (
            &failing,
            vec![0; 16],
            vec![],
            trap(TrapKind::HelperError, 1),
        ),
    ];
    let helpers = || {
        let mut h = Helpers::new();
        h.register(1, |_, a| {
            if a[0] != 0 {
                Err(bpfx_exec::HelperError("asked to fail".into()))
            } else {
                Ok(0)
            }
        });
        h
    };
    let mut env = Env::with_helpers(helpers());
    for (i, (p, mut data, blocks, want)) in steps.iter().cloned().enumerate() {
        env.shared = blocks;
        let got = bpfx_interp::run_unverified(p, &mut data, &mut env);
        assert_eq!(got, want, "interp, step {i}");
        assert_eq!(
            env.helper_error.is_some(),
            want.is_err() && i >= 10,
            "interp, step {i}"
        );
    }
    for (name, opts) in jit_option_sets() {
        let mut env = Env::with_helpers(helpers());
        let compiled: Vec<JitProgram> = [&at8, &via, &failing]
            .iter()
            .map(|p| compile_unverified(p, &opts).expect("compiles"))
            .collect();
        for (i, (p, mut data, blocks, want)) in steps.iter().cloned().enumerate() {
            env.shared = blocks;
            let j = &compiled[[&at8, &via, &failing]
                .iter()
                .position(|q| std::ptr::eq(*q, p))
                .expect("one of the three")];
            assert_eq!(j.run(&mut data, &mut env), want, "{name}, step {i}");
            assert_eq!(
                env.helper_error.is_some(),
                want.is_err() && i >= 10,
                "{name}, step {i}"
            );
        }
    }
}
