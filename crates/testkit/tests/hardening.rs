//! The per-block instruction budget, exact to the instruction, for every budget from 0 to 50,
//! on every engine of the matrix (the JIT under every option set: blinding and Spectre masking
//! change the code between two charges, never where a run stops). That hardened code agrees
//! with the interpreter on generated programs is `tests/differential.rs`, whose sampled subset
//! runs every option set.

use bpfx_bytecode::Program;
use bpfx_exec::Env;
use bpfx_jit::{JitOptions, compile_unverified};
use bpfx_testkit::{Case, check_with, engines, generate, run_corpus};

/// Runs every case on every engine of the matrix.
fn run_all(cases: impl Iterator<Item = (String, Case)>) -> usize {
    let engines = engines();
    run_corpus(cases, |(name, case)| match check_with(&case, &engines) {
        Ok(_) => Ok(()),
        Err(m) => Err(format!("{name}: {m}")),
    })
}

#[test]
fn budgets_from_0_to_50_stop_at_the_same_instruction() {
    let cases = (0..150u64).flat_map(|seed| {
        let case = generate(seed);
        (0..=50).map(move |budget| {
            let mut c = case.clone();
            c.budget = Some(budget);
            (format!("seed {seed}, budget {budget}"), c)
        })
    });
    assert_eq!(run_all(cases), 150 * 51);
}

/// Long straight-line code spans several blocks (a block holds at most 64 instructions), and
/// a loop re-enters its block: every budget around the block boundaries must stop exactly.
#[test]
fn budgets_in_long_blocks_and_loops_are_exact() {
    let mut text = String::from("mov r0, 0\n");
    for i in 0..150 {
        text.push_str(&format!("add r0, {}\n", i + 1));
        if i % 37 == 0 {
            text.push_str("stxdw [r10-8], r0\n");
        }
    }
    text.push_str("mov r2, 5\nloop:\nadd r0, r2\nsub r2, 1\njne r2, 0, loop\nexit\n");
    let prog =
        Program::decode(bpfx_bytecode::assemble(&text).expect("assembles")).expect("decodes");
    let total = prog.iter().count() as u64 + 3 * 4;
    let cases = (0..=total + 2).map(|budget| {
        let case = Case {
            prog: prog.clone(),
            input: Vec::new(),
            budget: Some(budget),
            helpers: bpfx_exec::Helpers::conformance(),
        };
        (format!("budget {budget}"), case)
    });
    run_all(cases);
    // The premise: the largest budgets finish and the smaller ones trap.
    let mut env = Env::new();
    env.budget = Some(total);
    let jit = compile_unverified(
        &prog,
        &JitOptions {
            budget: true,
            ..JitOptions::default()
        },
    )
    .expect("compiles");
    assert!(jit.run(&mut [], &mut env).is_ok(), "{total} is enough");
    assert_eq!(env.budget, Some(0));
    env.budget = Some(total - 1);
    assert!(jit.run(&mut [], &mut env).is_err(), "{} is not", total - 1);
}

/// The optimisations that stay on under the budget charge, each where a run can stop: a
/// versioned loop (its fast copy charges per block, with the same exact slow paths), a fused
/// loop tail (`jcc +1; ja`, the `ja` charged with its branch's block and given back when the
/// branch falls through), a merged guard whose run spans two blocks, with stores (its
/// fallback charges the second), and conditional moves (the move charged with the branch's
/// block and given back when the branch skips it: a carry condition and another; a move into a
/// jump stays a branch with the charge, and is here as the control). Every budget from 0 to past
/// the end, on inputs that keep every access inside and inputs where the loop, the merged
/// guard or one member steps out: same r0 or trap pc, same memory, same budget left.
#[test]
fn budgets_through_versioned_loops_fused_branches_and_merged_guards_are_exact() {
    let text = "
        mov r0, 0
        mov r3, 0
    loop:
        mov r4, r1
        add r4, r3
        ldxb r5, [r4+0]
        add r0, r5
        add r3, 1
        jge r3, r2, +1
        ja loop
        mov r6, 1
        ldxb r5, [r1+0]
        stxb [r1+3], r6
        add r0, r5
        jeq r5, 7, +3
        ldxb r5, [r1+5]
        stxb [r1+6], r0
        add r0, r5
        ldxb r5, [r1+9]
        add r0, r5
        jlt r5, 9, +1
        mov r0, r3
        jsgt r5, 2, +1
        mov r6, r0
        add r0, r6
        jeq r5, 4, tail
        mov r0, 77
        ja tail
        add r0, 1
    tail:
        exit";
    let prog = Program::decode(bpfx_bytecode::assemble(text).expect("assembles")).expect("decodes");
    // The premise: with the charge compiled in, the loop is versioned, the branch fused (one
    // `ja` fewer in the code than without fusion is not observable, so the plan is asserted
    // through the stats of what is), and the accesses after the loop share one merged guard.
    let charged = JitOptions {
        budget: true,
        ..JitOptions::default()
    };
    let stats = compile_unverified(&prog, &charged)
        .expect("compiles")
        .stats();
    assert_eq!(stats.versioned_loops, 1, "{stats:?}");
    assert_eq!(stats.merged_groups, 1, "{stats:?}");
    assert_eq!(stats.merged_accesses, 4, "{stats:?}");
    let inputs: Vec<Vec<u8>> = [0usize, 1, 4, 5, 6, 7, 9, 10, 16]
        .into_iter()
        .flat_map(|len| {
            let plain: Vec<u8> = (0..len).map(|i| (i * 3 + 1) as u8).collect();
            let mut seven = plain.clone();
            if let Some(b) = seven.first_mut() {
                *b = 7;
            }
            [plain, seven]
        })
        .collect();
    // The longest run: 2, then 7 per byte of the 16-byte input (6 in the last iteration,
    // which leaves without the `ja`), then 11 after the loop and 7 of the 10 conditional moves
    // and jumps (`p[9]` is 28: the first and third moves run, the second does not).
    let most = 2 + 7 * 16 - 1 + 11 + 7;
    let p = &prog;
    let cases = inputs.iter().flat_map(|input| {
        (0..=most + 2).map(move |budget| {
            let case = Case {
                prog: p.clone(),
                input: input.clone(),
                budget: Some(budget),
                helpers: bpfx_exec::Helpers::conformance(),
            };
            (format!("input {input:?}, budget {budget}"), case)
        })
    });
    assert_eq!(run_all(cases), inputs.len() * (most as usize + 3));
    // The premise of the sweep's end: the 16-byte input's run takes exactly `most`.
    let mut env = Env::new();
    env.budget = Some(most);
    let jit = compile_unverified(&prog, &charged).expect("compiles");
    let mut mem = inputs[inputs.len() - 2].clone();
    assert!(jit.run(&mut mem, &mut env).is_ok(), "{most} is enough");
    assert_eq!(env.budget, Some(0));
}
