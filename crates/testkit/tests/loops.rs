//! Versioned loops against the interpreter: generated counted loops over the input
//! ([`bpfx_testkit::loop_gen`]) run on every engine, and through the verified JIT when the
//! verifier accepts them. The JIT checks such a loop once on entry and then runs a copy without
//! guards; whichever copy runs, r0 or the trap and its pc, and every byte of the input, must be
//! the interpreter's.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_exec::{Helpers, Trap, TrapKind};
use bpfx_jit::{JitOptions, compile_unverified};
use bpfx_testkit::{Case, Outcome, check, check_verified_loop, check_with, engines, generate_loop};

const CASES: u64 = 6_000;

#[test]
fn generated_loops_agree_on_every_engine() {
    let (mut versioned, mut trapped, mut accepted) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for seed in 0..CASES {
        let case = generate_loop(seed);
        // Without a budget (nor the default one's charge), as `check` runs it.
        let opts = JitOptions {
            unbounded: true,
            ..JitOptions::default()
        };
        let jit = compile_unverified(&case.prog, &opts).expect("compiles");
        versioned += u64::from(jit.stats().versioned_loops > 0);
        match check(&case) {
            Ok(outcome) => trapped += u64::from(outcome.result.is_err()),
            Err(m) => failures.push(format!("seed {seed}: {m}")),
        }
        if let Some(verified) = check_verified_loop(&case) {
            accepted += 1;
            if let Err(m) = verified {
                failures.push(format!("seed {seed} (verified): {m}"));
            }
        }
        if failures.len() >= 3 {
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{versioned} versioned, {trapped} trapped, {accepted} verified of {CASES}");
    // The comparison means something only if loops were versioned, and both ends happen: runs
    // that stay inside the input and runs that step out of it.
    assert!(versioned >= CASES / 4, "only {versioned} loops versioned");
    assert!(trapped >= CASES / 10, "only {trapped} runs trapped");
    assert!(trapped <= CASES * 9 / 10, "{trapped} runs trapped");
    assert!(accepted >= CASES / 10, "only {accepted} loops verified");
}

/// Generated loops under a budget: the JIT compiles the budget charge in and keeps versioning
/// (the fast copy charges per block), and a run must stop at the interpreter's pc, with its
/// memory and the budget left, whichever copy it is in when the budget runs out. Each loop runs
/// under budgets at the start, around the middle and at the end of its run.
#[test]
fn generated_loops_under_a_budget_stop_where_the_interpreter_does() {
    const SEEDS: u64 = 600;
    let engines = engines();
    let (mut versioned, mut stopped) = (0u64, 0u64);
    let mut failures = Vec::new();
    for seed in 0..SEEDS {
        let mut case = generate_loop(seed);
        let opts = JitOptions {
            budget: true,
            ..JitOptions::default()
        };
        let jit = compile_unverified(&case.prog, &opts).expect("compiles");
        versioned += u64::from(jit.stats().versioned_loops > 0);
        // The run's length, from the interpreter.
        let ample = 1 << 20;
        case.budget = Some(ample);
        let used = match check_with(&case, &engines) {
            Ok(o) => ample - o.budget_left.expect("a budget"),
            Err(m) => {
                failures.push(format!("seed {seed}, budget {ample}: {m}"));
                continue;
            }
        };
        let mut budgets = vec![0, 1, used / 3, used / 2, used.saturating_sub(7)];
        budgets.extend(used.saturating_sub(2)..=used + 1);
        for budget in budgets {
            case.budget = Some(budget);
            match check_with(&case, &engines) {
                Ok(o) => {
                    stopped +=
                        u64::from(o.result.is_err_and(|t| t.kind == TrapKind::BudgetExhausted))
                }
                Err(m) => failures.push(format!("seed {seed}, budget {budget}: {m}")),
            }
        }
        if failures.len() >= 3 {
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{versioned} versioned with the charge, {stopped} runs out of budget");
    assert!(versioned >= SEEDS / 4, "only {versioned} loops versioned");
    assert!(stopped >= SEEDS, "only {stopped} runs ran out of budget");
}

fn case(text: &str, input: &[u8]) -> Case {
    let prog = Program::decode(assemble(text).expect("assembles")).expect("decodes");
    Case {
        prog,
        input: input.to_vec(),
        budget: None,
        helpers: Helpers::conformance(),
    }
}

/// Runs `text` on every engine and returns the common outcome.
fn run(text: &str, input: &[u8]) -> Outcome {
    check(&case(text, input)).unwrap_or_else(|m| panic!("{m}"))
}

/// `r0 += p[r3++]` while r3 < r2 (a branch back to `head`): the loop every test below versions.
fn sum_loop(head: &str) -> String {
    format!(
        "
        mov r4, r1
        add r4, r3
        ldxb r5, [r4+0]
        add r0, r5
        add r3, 1
        jlt r3, r2, {head}"
    )
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 37 + 11) as u8).collect()
}

/// r0 = the sum of the input's bytes, then `tail`, then `exit`.
fn sum_program(tail: &str) -> String {
    let sum = sum_loop("head");
    format!(
        "
        mov r0, 0
        mov r3, 0
        jeq r2, 0, out
    head:
{sum}
    out:
        {tail}
        exit"
    )
}

#[test]
fn a_loop_over_the_whole_input_reads_every_byte() {
    let text = &sum_program("");
    for len in 0..=40 {
        let input = bytes(len);
        let sum: u64 = input.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(run(text, &input).result, Ok(sum), "len {len}");
    }
}

#[test]
fn a_store_loop_that_steps_past_the_end_traps_after_the_stores_before() {
    // Words are stored while i + 4 <= len + 2: for most lengths the last store is out of
    // bounds, and the check before the loop must send the run to the guarded copy.
    let text = "
        mov r3, 0
        mov r8, r2
        add r8, 2
    head:
        mov r4, r1
        add r4, r3
        stw [r4+0], 0x01020304
        add r3, 4
        mov r5, r3
        add r5, 4
        jle r5, r8, head
        mov r0, r3
        exit";
    for len in 0..=24 {
        let mut want = bytes(len);
        let mut i = 0;
        let result = loop {
            if i + 4 > len {
                break Err(Trap {
                    kind: TrapKind::OutOfBounds,
                    pc: Pc(5),
                });
            }
            want[i..i + 4].copy_from_slice(&0x0102_0304u32.to_le_bytes());
            i += 4;
            if i + 4 > len + 2 {
                break Ok(i as u64);
            }
        };
        let outcome = run(text, &bytes(len));
        assert_eq!(outcome.result, result, "len {len}");
        assert_eq!(outcome.memory, want, "len {len}");
    }
}

#[test]
fn loops_at_the_program_entry_at_a_function_entry_and_at_the_end() {
    // The loop is the first instruction: every register but r1 and r2 starts at 0.
    let (sum, sum_f) = (sum_loop("head"), sum_loop("f"));
    let at_entry = &format!(
        "
    head:
{sum}
        exit"
    );
    // The loop is a callee's first instruction: the call enters it from outside.
    let at_call = &format!(
        "
        mov r3, 0
        call local f
        exit
    f:
{sum_f}
        exit"
    );
    for text in [at_entry, at_call] {
        for len in 1..=20 {
            let input = bytes(len);
            let sum: u64 = input.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(run(text, &input).result, Ok(sum), "len {len}:{text}");
        }
        // The first iteration always runs: with no input its load traps.
        let load = if text == at_entry { 2 } else { 5 };
        let want = Err(Trap {
            kind: TrapKind::OutOfBounds,
            pc: Pc(load),
        });
        assert_eq!(run(text, &[]).result, want, "{text}");
    }
    // The loop's back edge is the last instruction: leaving the loop falls off the end.
    let at_end = &format!(
        "
        mov r0, 0
    head:
{sum}"
    );
    for len in 1..=8 {
        let result = run(at_end, &bytes(len)).result;
        assert!(
            matches!(
                result,
                Err(Trap {
                    kind: TrapKind::FellOffEnd,
                    ..
                })
            ),
            "len {len}: {result:?}"
        );
    }
}

/// A versioned loop whose iteration is one block that cannot fault in its fast copy is charged
/// once for all its iterations by its check (`prepaid`). Every budget from 0 to past the run's
/// end must stop the run at the interpreter's pc with its budget left, whether the check takes
/// the whole charge or sends the run to the guarded copy: both loop shapes (the trip test as
/// the back edge, and clang's `jcc +1; ja` fused), on every engine and JIT option set.
#[test]
fn prepaid_loops_stop_where_the_interpreter_does_under_every_budget() {
    let back_edge = sum_program("add r0, 1");
    // clang's rotated counter: the exit test on a copy of the counter plus a constant, then a
    // `ja` back (fused into one inverted branch, whose fall-through gives back the `ja`).
    let fused = "
        mov r0, 0
        mov r3, 0
        mov r4, 0
        jlt r2, 4, out
    head:
        mov r5, r1
        add r5, r4
        ldxw r5, [r5+0]
        add r0, r5
        add r3, 4
        mov r5, r4
        add r5, 8
        mov r4, r3
        jgt r5, r2, out
        ja head
    out:
        exit";
    let budgeted = JitOptions {
        budget: true,
        ..JitOptions::default()
    };
    let engines = engines();
    for text in [back_edge.as_str(), fused] {
        let mut case = case(text, &[]);
        let stats = compile_unverified(&case.prog, &budgeted)
            .expect("compiles")
            .stats();
        assert_eq!(stats.prepaid_loops, 1, "{text}");
        for len in [0, 1, 4, 7, 16, 23] {
            case.input = bytes(len);
            let ample = 1 << 20;
            case.budget = Some(ample);
            let used = ample
                - check_with(&case, &engines)
                    .unwrap_or_else(|m| panic!("len {len}: {m}"))
                    .budget_left
                    .expect("a budget");
            let mut stopped = 0;
            for budget in 0..=used + 1 {
                case.budget = Some(budget);
                let o = check_with(&case, &engines)
                    .unwrap_or_else(|m| panic!("len {len}, budget {budget}: {m}\n{text}"));
                stopped += u64::from(o.result.is_err_and(|t| t.kind == TrapKind::BudgetExhausted));
            }
            // Every budget below the run's length stops it, and no other.
            assert_eq!(stopped, used, "len {len}");
        }
    }
}

/// What keeps a loop from being prepaid: a second block in its iteration, a guard its check
/// does not cover, a call; and the code without the budget charge never is. Each such loop
/// still stops where the interpreter does.
#[test]
fn loops_that_can_leave_early_or_branch_inside_are_charged_per_block() {
    let prog = |text: &str| Program::decode(assemble(text).expect("assembles")).expect("decodes");
    let prepaid = |text: &str, opts: &JitOptions| {
        compile_unverified(&prog(text), opts)
            .expect("compiles")
            .stats()
            .prepaid_loops
    };
    let budgeted = JitOptions {
        budget: true,
        ..JitOptions::default()
    };
    let plain = sum_program("");
    assert_eq!(prepaid(&plain, &budgeted), 1);
    assert_eq!(
        prepaid(
            &plain,
            &JitOptions {
                unbounded: true,
                ..JitOptions::default()
            }
        ),
        0
    );
    // A branch inside the iteration: two blocks.
    let branchy = "
        mov r0, 0
        mov r3, 0
        jeq r2, 0, out
    head:
        mov r4, r1
        add r4, r3
        ldxb r5, [r4+0]
        jgt r5, 100, skip
        add r0, r5
    skip:
        add r3, 1
        jlt r3, r2, head
    out:
        exit";
    // A load through a pointer the loop does not step: its guard stays in the fast copy.
    let guarded = "
        mov r0, 0
        mov r3, 0
        jeq r2, 0, out
    head:
        mov r4, r1
        add r4, r3
        ldxb r5, [r4+0]
        add r0, r5
        and r5, 7
        mov r6, r1
        add r6, r5
        ldxb r6, [r6+0]
        add r0, r6
        add r3, 1
        jlt r3, r2, head
    out:
        exit";
    // A helper call inside (it may fail).
    let call = "
        mov r6, r1
        mov r7, r2
        mov r8, 0
        mov r9, 0
        jeq r7, 0, out
    head:
        mov r4, r6
        add r4, r8
        ldxb r5, [r4+0]
        add r9, r5
        mov r1, r5
        call 5
        add r8, 1
        jlt r8, r7, head
    out:
        mov r0, r9
        exit";
    let engines = engines();
    for text in [branchy, guarded, call] {
        assert_eq!(prepaid(text, &budgeted), 0, "{text}");
        if text != call {
            let stats = compile_unverified(&prog(text), &budgeted)
                .expect("compiles")
                .stats();
            assert_eq!(stats.versioned_loops, 1, "{text}");
        }
        let mut case = case(text, &bytes(9));
        for budget in [0, 5, 17, 40, 63, 64, 65, 1 << 20] {
            case.budget = Some(budget);
            check_with(&case, &engines).unwrap_or_else(|m| panic!("budget {budget}: {m}\n{text}"));
        }
    }
}
