//! Edge cases of the execution contract that the `.data` format cannot state, each run on every
//! engine of `engines()` (the interpreter and the JIT under every option set): the memory a run
//! leaves, run environments (frame limits, budgets, helpers other than the conformance suite's),
//! several runs on one environment, and instruction forms only bpfx's assembler writes.
//!
//! The rest of the edge cases (arithmetic edges, loads and the stack at their bounds, wrapping
//! addresses, call depth, helper calls, packet loads, entry registers, the JIT's guard sharing
//! and address folds) are `.data` files in `tests/data/`, which `tests/conformance.rs` runs on
//! every engine and the conformance runner's plugin can run too.
//!
//! Expected values are computed independently of the interpreter's own functions (Rust's
//! `wrapping_*` operations and written-out constants), so these tests check the interpreter as
//! much as any other engine.

use bpfx_bytecode::{
    AluOp, AtomicOp, CallTarget, Cond, Imm64, Op, Operand, Program, Reg, Size, Width,
};
use bpfx_exec::{Env, Helpers, Trap, TrapKind};
use bpfx_testkit::{Engine, RunError, engines, matrix};

const R0: Reg = Reg::R0;
const R1: Reg = Reg::R1;
const R2: Reg = Reg::R2;
const R3: Reg = Reg::R3;
const R10: Reg = Reg::R10;
const EXIT: Op = Op::Exit;

fn alu(width: Width, op: AluOp, dst: Reg, src: Operand) -> Op {
    Op::Alu {
        width,
        op,
        dst,
        src,
    }
}
fn mov(dst: Reg, imm: i32) -> Op {
    alu(Width::W64, AluOp::Mov, dst, Operand::Imm(imm))
}
fn movr(dst: Reg, src: Reg) -> Op {
    alu(Width::W64, AluOp::Mov, dst, Operand::Reg(src))
}
fn add(dst: Reg, src: Operand) -> Op {
    alu(Width::W64, AluOp::Add, dst, src)
}
fn lddw(dst: Reg, v: u64) -> Op {
    Op::LoadImm64 {
        dst,
        value: Imm64::Value(v),
    }
}
fn ldx(size: Size, dst: Reg, base: Reg, off: i16) -> Op {
    Op::Load {
        size,
        signed: false,
        dst,
        base,
        off,
    }
}
fn st(size: Size, base: Reg, off: i16, imm: i32) -> Op {
    Op::Store {
        size,
        base,
        off,
        src: Operand::Imm(imm),
    }
}
fn call_local(off: i32) -> Op {
    Op::Call(CallTarget::Local { off })
}
fn packet(size: Size, index: Option<Reg>, imm: i32) -> Op {
    Op::LoadPacket { size, index, imm }
}

fn trap(kind: TrapKind, pc: u32) -> Result<u64, Trap> {
    Err(Trap {
        kind,
        pc: bpfx_bytecode::Pc(pc),
    })
}

/// What one engine did.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    result: Result<u64, Trap>,
    memory: Vec<u8>,
    budget: Option<u64>,
}

/// Runs `prog` on every engine, each with a fresh copy of `input` and an `Env` from `env`, and
/// returns what they did (a compile error fails the test: every program here must run).
fn run_all(prog: &Program, input: &[u8], env: &dyn Fn() -> Env) -> Vec<(&'static str, Run)> {
    run_on(&engines(), prog, input, env)
}

/// [`run_all`] on the given engines.
fn run_on(
    engines: &[Box<dyn Engine>],
    prog: &Program,
    input: &[u8],
    env: &dyn Fn() -> Env,
) -> Vec<(&'static str, Run)> {
    engines
        .iter()
        .map(|engine| {
            let mut mem = input.to_vec();
            let mut e = env();
            let result = match engine.execute(prog, &mut mem, &mut e) {
                Ok(r0) => Ok(r0),
                Err(RunError::Trap(t)) => Err(t),
                Err(RunError::Compile(c)) => panic!("{}: compile error: {c}", engine.name()),
            };
            let run = Run {
                result,
                memory: mem,
                budget: e.budget,
            };
            (engine.name(), run)
        })
        .collect()
}

/// Asserts that every engine returns `want` on `ops`, and returns the memory they left (the
/// same on every engine).
fn expect_with(
    ops: &[Op],
    input: &[u8],
    env: &dyn Fn() -> Env,
    want: Result<u64, Trap>,
) -> Vec<u8> {
    let prog = Program::from_ops(ops).expect("test program decodes");
    let runs = run_all(&prog, input, env);
    for (name, run) in &runs {
        assert_eq!(run.result, want, "engine {name} on {ops:?}");
        assert_eq!(run.memory, runs[0].1.memory, "engine {name} memory");
    }
    runs.into_iter()
        .next()
        .map(|(_, r)| r.memory)
        .unwrap_or_default()
}

fn expect(ops: &[Op], input: &[u8], want: Result<u64, Trap>) -> Vec<u8> {
    expect_with(
        ops,
        input,
        &|| Env::with_helpers(Helpers::conformance()),
        want,
    )
}

const INPUT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

#[test]
fn stores_at_both_edges_of_the_input() {
    let store = |size, off, imm| [mov(R0, 0), mov(R2, 0), st(size, R1, off, imm), EXIT];
    let mem = expect(&store(Size::B, 0, 0xaa), &INPUT, Ok(0));
    assert_eq!(mem, [0xaa, 2, 3, 4, 5, 6, 7, 8]);
    let mem = expect(&store(Size::B, 7, 0x1ff), &INPUT, Ok(0));
    assert_eq!(
        mem,
        [1, 2, 3, 4, 5, 6, 7, 0xff],
        "the immediate is truncated"
    );
    let mem = expect(&store(Size::Dw, 0, -2), &INPUT, Ok(0));
    assert_eq!(
        mem,
        [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        "sign-extended"
    );
    for (size, off) in [
        (Size::B, -1),
        (Size::B, 8),
        (Size::H, 7),
        (Size::Dw, 1),
        (Size::W, -1),
    ] {
        let mem = expect(
            &store(size, off, -1),
            &INPUT,
            trap(TrapKind::OutOfBounds, 2),
        );
        assert_eq!(
            mem, INPUT,
            "a faulting store writes nothing, not even its in-bounds part"
        );
    }
}

#[test]
fn atomics_at_the_edge_of_the_input() {
    let atomic = |off| {
        [
            mov(R2, 0x10),
            Op::Atomic {
                width: Width::W32,
                op: AtomicOp::Add,
                fetch: true,
                base: R1,
                off,
                src: R2,
            },
            movr(R0, R2),
            EXIT,
        ]
    };
    let mem = expect(&atomic(4), &INPUT, Ok(0x0807_0605));
    assert_eq!(mem, [1, 2, 3, 4, 0x15, 6, 7, 8]);
    let mem = expect(&atomic(5), &INPUT, trap(TrapKind::OutOfBounds, 1));
    assert_eq!(mem, INPUT);
}

/// `mov r1, frames - 2; call f; exit; f: if r1 == 0 goto out; r1 -= 1; call f; out: r0 = 42;
/// exit`: `frames - 1` nested local calls, so `frames` frames at the deepest point.
fn nested_frames(frames: i32) -> Vec<Op> {
    vec![
        mov(R1, frames - 2),
        call_local(1),
        EXIT,
        Op::Branch {
            width: Width::W64,
            cond: Cond::Eq,
            lhs: R1,
            rhs: Operand::Imm(0),
            off: 2,
        },
        add(R1, Operand::Imm(-1)),
        call_local(-3),
        mov(R0, 42),
        EXIT,
    ]
}

#[test]
fn call_depth_is_limited_counting_the_outermost_frame() {
    // The default limit of 8 frames is `tests/data/call-depth-*.data`; here, other limits.
    let limit = |n| {
        move || {
            let mut env = Env::with_helpers(Helpers::conformance());
            env.set_max_frames(n);
            env
        }
    };
    expect_with(&[mov(R0, 42), EXIT], &[], &limit(1), Ok(42));
    expect_with(
        &nested_frames(2),
        &[],
        &limit(1),
        trap(TrapKind::CallDepthExceeded, 1),
    );
    expect_with(&nested_frames(3), &[], &limit(3), Ok(42));
    expect_with(
        &nested_frames(4),
        &[],
        &limit(3),
        trap(TrapKind::CallDepthExceeded, 5),
    );
    // Returning frees the frame: 19 calls in sequence never need more than 2 frames.
    // pcs 0..=18: call f; 19: exit; f (20): mov r0, 1; exit
    let mut ops: Vec<Op> = (0..19).map(|pc| call_local(19 - pc)).collect();
    ops.extend([EXIT, mov(R0, 1), EXIT]);
    expect_with(&ops, &[], &limit(2), Ok(1));
}

#[test]
fn a_million_instruction_program_runs() {
    const SLOTS: usize = 1_000_000;
    const SKIPPED: usize = 200_000;
    // mov r0, 0; ja32 +SKIPPED; SKIPPED x add r0, 1000; N x add r0, 1; exit
    let counted = SLOTS - 3 - SKIPPED;
    let mut ops = Vec::with_capacity(SLOTS);
    ops.push(mov(R0, 0));
    ops.push(Op::Ja {
        off: SKIPPED as i32,
        long: true,
    });
    ops.extend(std::iter::repeat_n(add(R0, Operand::Imm(1000)), SKIPPED));
    ops.extend(std::iter::repeat_n(add(R0, Operand::Imm(1)), counted));
    ops.push(EXIT);
    assert_eq!(ops.len(), SLOTS);
    let prog = Program::from_ops(&ops).expect("a program of the maximum size decodes");
    // Without a budget, on every engine: the largest program compiles under every option set.
    for (name, run) in run_all(&prog, &[], &Env::new) {
        assert_eq!(run.result, Ok(counted as u64), "engine {name}");
        assert_eq!(run.budget, None, "engine {name}");
    }
    // With a budget, on every engine but the blinding ones: blinding 200,000 constants and
    // compiling the budget charge together takes a debug build over ten seconds a compilation
    // (either alone, a fraction of one), too slow for `cargo test`.
    let unblinded: Vec<Box<dyn Engine>> = engines()
        .into_iter()
        .zip(matrix())
        .filter(|(_, (_, opts))| !opts.as_ref().is_some_and(|o| o.blinding))
        .map(|(engine, _)| engine)
        .collect();
    assert!(
        unblinded.len() >= 4,
        "the interpreter and three JIT option sets"
    );
    let budget = 1_000_000;
    let env = || {
        let mut env = Env::new();
        env.budget = Some(budget);
        env
    };
    for (name, run) in run_on(&unblinded, &prog, &[], &env) {
        assert_eq!(run.result, Ok(counted as u64), "engine {name}");
        let executed = 3 + counted as u64;
        assert_eq!(run.budget, Some(budget - executed), "engine {name}");
    }
}

#[test]
fn budget_runs_out_at_the_exact_pc() {
    // mov r0, 0; loop: add r0, 1; ja loop
    let spin = [
        mov(R0, 0),
        add(R0, Operand::Imm(1)),
        Op::Ja {
            off: -2,
            long: false,
        },
    ];
    let prog = Program::from_ops(&spin).expect("decodes");
    for (budget, pc) in [(0, 0), (1, 1), (10, 2), (11, 1), (1001, 1)] {
        let env = move || {
            let mut env = Env::new();
            env.budget = Some(budget);
            env
        };
        for (name, run) in run_all(&prog, &[], &env) {
            assert_eq!(
                run.result,
                trap(TrapKind::BudgetExhausted, pc),
                "{name}, budget {budget}"
            );
            assert_eq!(run.budget, Some(0), "{name}");
        }
    }
    // lddw costs one unit although it fills two slots; exit costs one.
    let ops = [lddw(R0, 9), EXIT];
    let with = |b| {
        move || {
            let mut env = Env::new();
            env.budget = Some(b);
            env
        }
    };
    expect_with(&ops, &[], &with(2), Ok(9));
    expect_with(&ops, &[], &with(1), trap(TrapKind::BudgetExhausted, 2));
}

/// The program of `text` (bpfx's assembly syntax), as instructions.
fn ops(text: &str) -> Vec<Op> {
    let prog = Program::decode(bpfx_bytecode::assemble(text).expect("assembles")).expect("decodes");
    prog.iter().map(|(_, op)| *op).collect()
}

/// Forms the `.data` files cannot carry, since only bpfx's assembler writes them: runtime
/// (kfunc) calls and map pseudo-loads trap as unsupported without a runtime to bind them; an
/// `lddw` of a function gives its absolute pc.
#[test]
fn calls_and_loads_only_a_runtime_binds() {
    let unsupported = [
        ("mov r0, 0\ncall runtime 1\nexit", 1),
        ("lddw r1, map_fd(3)\nexit", 0),
    ];
    for (text, pc) in unsupported {
        expect(&ops(text), &[], trap(TrapKind::Unsupported, pc));
    }
    expect(&ops("lddw r0, func(f)\nexit\nf:\nexit"), &[], Ok(3));
}

/// Helpers get r1–r5 as their arguments, in order; a failing helper traps at its call; a helper
/// reaches the current frame's stack through the guest memory it is given.
#[test]
fn helpers_get_their_arguments_and_the_guest_memory() {
    let env = || {
        let mut helpers = Helpers::new();
        helpers.register(1, |_, a| {
            Ok(a[0] + 10 * a[1] + 100 * a[2] + 1000 * a[3] + 10000 * a[4])
        });
        helpers.register(2, |_, _| Err(bpfx_exec::HelperError("no".into())));
        helpers.register(3, |mem, a| {
            let bad = || bpfx_exec::HelperError("bad pointer".into());
            let v = mem.load(a[0], 8).ok_or_else(bad)?;
            mem.store(a[0], 8, v + 1).ok_or_else(bad)?;
            Ok(v)
        });
        Env::with_helpers(helpers)
    };
    let args = "mov r1, 1\nmov r2, 2\nmov r3, 3\nmov r4, 4\nmov r5, 5\nmov r6, 6\ncall 1\n\
                add r0, r1\nadd r0, r6\nexit";
    expect_with(&ops(args), &[], &env, Ok(54321 + 6));
    expect_with(
        &ops("call 2\nexit"),
        &[],
        &env,
        trap(TrapKind::HelperError, 0),
    );
    let callx = "mov r1, 2\nmov r2, 3\nmov r8, 1\ncall r8\nexit";
    expect_with(&ops(callx), &[], &env, Ok(32));
    let stack = "stdw [r10-8], 41\nmov r1, r10\nadd r1, -8\ncall 3\nldxdw r0, [r10-8]\nexit";
    expect_with(&ops(stack), &[], &env, Ok(42));
}

/// Packet loads in bounds are `tests/data/packet-*.data`.
#[test]
fn packet_loads_out_of_bounds_end_the_program_with_zero() {
    let pkt = [0x11, 0x22, 0x33, 0x44, 0x55];
    // Out of bounds: the program returns 0 at once; the store after it never happens.
    let returns_zero = |load| [mov(R0, 7), mov(R3, 3), load, st(Size::B, R1, 0, 0), EXIT];
    for load in [
        packet(Size::W, None, 2),
        packet(Size::B, None, 5),
        packet(Size::B, None, -1),
        packet(Size::B, Some(R3), 2),
        packet(Size::H, Some(R3), 1),
    ] {
        let mem = expect(&returns_zero(load), &pkt, Ok(0));
        assert_eq!(mem, pkt);
    }
}

/// A chain of `frames` frames without recursion: each function but the last is `call next;
/// exit`, and the deepest one runs `body`.
fn call_chain(frames: i32, body: &[Op]) -> Vec<Op> {
    let mut ops: Vec<Op> = (1..frames).flat_map(|_| [call_local(1), EXIT]).collect();
    ops.extend_from_slice(body);
    ops
}

/// Engines zero only the stack frames a run could have written; whatever wrote them (a deep
/// chain, unbounded recursion ending in a trap, either engine), the next run on the same `Env`,
/// on any engine, reads zeros across all eight frames.
#[test]
fn a_run_never_sees_stack_bytes_left_by_the_previous_one() {
    let stores = [st(Size::Dw, R10, -8, 0x55), st(Size::Dw, R10, -512, 0x66)];
    let mut chain_writer = vec![stores[0]];
    chain_writer.extend(call_chain(3, &[stores[0], stores[1], mov(R0, 1), EXIT]));
    // f: two stores, then f again, until the call depth limit traps at pc 3.
    let recursive_writer = vec![call_local(0), stores[0], stores[1], call_local(-3), EXIT];
    // The deepest of eight frames ORs together every word from its frame's bottom to the top.
    let reader = call_chain(
        8,
        &[
            movr(R1, R10),
            add(R1, Operand::Imm(-512)),
            mov(R0, 0),
            mov(R2, 512),
            ldx(Size::Dw, R3, R1, 0),
            alu(Width::W64, AluOp::Or, R0, Operand::Reg(R3)),
            add(R1, Operand::Imm(8)),
            add(R2, Operand::Imm(-1)),
            Op::Branch {
                width: Width::W64,
                cond: Cond::Ne,
                lhs: R2,
                rhs: Operand::Imm(0),
                off: -5,
            },
            EXIT,
        ],
    );
    let reader = Program::from_ops(&reader).expect("reader decodes");
    let writers = [
        (chain_writer, Ok(1)),
        (recursive_writer, trap(TrapKind::CallDepthExceeded, 3)),
    ];
    for (writer, want) in writers {
        let writer = Program::from_ops(&writer).expect("writer decodes");
        for w in engines() {
            for r in engines() {
                let mut env = Env::new();
                let wrote = w.execute(&writer, &mut [], &mut env);
                assert_eq!(
                    wrote,
                    want.map_err(RunError::Trap),
                    "writer on {}",
                    w.name()
                );
                assert_eq!(
                    r.execute(&reader, &mut [], &mut env),
                    Ok(0),
                    "{} read what {} left",
                    r.name(),
                    w.name()
                );
            }
        }
    }
}

/// Loads and stores off the same registers share one guard in the JIT (a span check before
/// the first). Whenever the span is not wholly inside the input, each access must still be
/// judged alone, in program order: a store before a faulting access lands, and nothing after
/// the fault runs (the results, and the other shapes, are `tests/data/guard-span-*.data`).
#[test]
fn accesses_sharing_a_guard_write_memory_in_program_order() {
    let input: Vec<u8> = (1..=10).collect();
    let store_then_fault = [st(Size::B, R1, 0, 0x77), ldx(Size::B, R0, R1, 10), EXIT];
    let mem = expect(&store_then_fault, &input, trap(TrapKind::OutOfBounds, 1));
    assert_eq!(mem[0], 0x77, "the store before the fault happened");
    let fault_first = [ldx(Size::B, R0, R1, 12), st(Size::B, R1, 0, 0x77), EXIT];
    let mem = expect(&fault_first, &input, trap(TrapKind::OutOfBounds, 0));
    assert_eq!(mem[0], 1, "no store after the fault");
}

/// A failing helper stops the run with `HelperError` at the call, and every engine hands the
/// helper's own message to `Env::helper_error`; the next run starts without it.
#[test]
fn a_failing_helpers_message_reaches_the_env_on_every_engine() {
    let fails =
        Program::from_ops(&[mov(R1, 7), Op::Call(CallTarget::Helper(9)), EXIT]).expect("decodes");
    let fine = Program::from_ops(&[mov(R0, 1), EXIT]).expect("decodes");
    for engine in engines() {
        let mut helpers = Helpers::new();
        helpers.register(9, |_, args| {
            Err(bpfx_exec::HelperError(format!("refused {}", args[0])))
        });
        let mut env = Env::with_helpers(helpers);
        let r = engine.execute(&fails, &mut [], &mut env);
        assert_eq!(
            r,
            Err(RunError::Trap(Trap {
                kind: TrapKind::HelperError,
                pc: bpfx_bytecode::Pc(1)
            })),
            "{}",
            engine.name()
        );
        assert_eq!(
            env.helper_error,
            Some(bpfx_exec::HelperError("refused 7".into())),
            "{}",
            engine.name()
        );
        assert_eq!(engine.execute(&fine, &mut [], &mut env), Ok(1));
        assert_eq!(
            env.helper_error,
            None,
            "{}: cleared by the next run",
            engine.name()
        );
    }
}
