//! Edge cases of the execution contract, each run on every engine of `engines()`.
//!
//! Expected values are computed independently of the interpreter's own functions (Rust's
//! `wrapping_*` operations and written-out constants), so these tests check the interpreter as
//! much as any other engine.

use bpfx_bytecode::{
    AluOp, AtomicOp, CallTarget, Cond, Imm64, Op, Operand, Program, Reg, Size, Width,
};
use bpfx_exec::{Env, Helpers, Trap, TrapKind};
use bpfx_testkit::{RunError, engines};

const R0: Reg = Reg::R0;
const R1: Reg = Reg::R1;
const R2: Reg = Reg::R2;
const R3: Reg = Reg::R3;
const R4: Reg = Reg::R4;
const R5: Reg = Reg::R5;
const R6: Reg = Reg::R6;
const R7: Reg = Reg::R7;
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
    engines()
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

#[test]
fn division_and_modulo_by_zero_every_form() {
    let dst: u64 = 0xdead_beef_1234_5678;
    for width in [Width::W32, Width::W64] {
        for op in [AluOp::Div, AluOp::Mod, AluOp::Sdiv, AluOp::Smod] {
            let want = match (op, width) {
                (AluOp::Div | AluOp::Sdiv, _) => 0,
                (_, Width::W64) => dst,
                (_, Width::W32) => dst & 0xffff_ffff,
            };
            // Immediate zero, register zero, and (for 32-bit forms) a register whose low half
            // is zero.
            let mut divisors = vec![Operand::Imm(0), Operand::Reg(R1)];
            if width == Width::W32 {
                divisors.push(Operand::Reg(R2));
            }
            for src in divisors {
                let ops = [
                    lddw(R0, dst),
                    mov(R1, 0),
                    lddw(R2, 0x1_0000_0000),
                    alu(width, op, R0, src),
                    EXIT,
                ];
                expect(&ops, &[], Ok(want));
            }
        }
    }
}

#[test]
fn signed_min_by_minus_one() {
    let cases = [
        (Width::W64, AluOp::Sdiv, i64::MIN as u64),
        (Width::W64, AluOp::Smod, 0),
        (Width::W32, AluOp::Sdiv, 0x8000_0000),
        (Width::W32, AluOp::Smod, 0),
    ];
    for (width, op, want) in cases {
        let min = match width {
            Width::W64 => i64::MIN as u64,
            // High bits set on purpose: a 32-bit operation must ignore them.
            Width::W32 => 0xffff_ffff_8000_0000,
        };
        for src in [Operand::Imm(-1), Operand::Reg(R1)] {
            let ops = [lddw(R0, min), mov(R1, -1), alu(width, op, R0, src), EXIT];
            expect(&ops, &[], Ok(want));
        }
    }
}

#[test]
fn shift_counts_at_or_above_the_width_are_masked() {
    let v: u64 = 0x8000_0000_8000_0001;
    for width in [Width::W32, Width::W64] {
        let bits = width.bits();
        for count in [bits, bits + 1, 2 * bits - 1, 255, u32::MAX] {
            for op in [AluOp::Lsh, AluOp::Rsh, AluOp::Arsh] {
                let want = match (width, op) {
                    (Width::W64, AluOp::Lsh) => v.wrapping_shl(count),
                    (Width::W64, AluOp::Rsh) => v.wrapping_shr(count),
                    (Width::W64, _) => (v as i64).wrapping_shr(count) as u64,
                    (Width::W32, AluOp::Lsh) => u64::from((v as u32).wrapping_shl(count)),
                    (Width::W32, AluOp::Rsh) => u64::from((v as u32).wrapping_shr(count)),
                    (Width::W32, _) => u64::from((v as u32 as i32).wrapping_shr(count) as u32),
                };
                let by_reg = [
                    lddw(R0, v),
                    lddw(R1, u64::from(count)),
                    alu(width, op, R0, Operand::Reg(R1)),
                    EXIT,
                ];
                expect(&by_reg, &[], Ok(want));
                let by_imm = [
                    lddw(R0, v),
                    alu(width, op, R0, Operand::Imm(count as i32)),
                    EXIT,
                ];
                expect(&by_imm, &[], Ok(want));
            }
        }
    }
}

const INPUT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

#[test]
fn loads_at_both_edges_of_the_input() {
    let load = |size, off| [mov(R0, 0), mov(R2, 0), ldx(size, R0, R1, off), EXIT];
    expect(&load(Size::B, 0), &INPUT, Ok(1));
    expect(&load(Size::B, 7), &INPUT, Ok(8));
    expect(&load(Size::Dw, 0), &INPUT, Ok(0x0807_0605_0403_0201));
    expect(&load(Size::W, 4), &INPUT, Ok(0x0807_0605));
    for (size, off) in [
        (Size::B, -1),
        (Size::B, 8),
        (Size::H, 7),
        (Size::Dw, 1),
        (Size::W, -2),
    ] {
        let mem = expect(&load(size, off), &INPUT, trap(TrapKind::OutOfBounds, 2));
        assert_eq!(mem, INPUT);
    }
    // Empty input: r1 is 0 and nothing is accessible through it.
    expect(&load(Size::B, 0), &[], trap(TrapKind::OutOfBounds, 2));
}

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

#[test]
fn stack_edges_at_depth_zero() {
    let ops = [
        st(Size::Dw, R10, -512, -1),
        st(Size::B, R10, -1, 7),
        ldx(Size::B, R0, R10, -512),
        ldx(Size::B, R1, R10, -1),
        add(R0, Operand::Reg(R1)),
        EXIT,
    ];
    expect(&ops, &[], Ok(0xff + 7));
    for off in [-513, 0] {
        expect(
            &[mov(R0, 0), ldx(Size::B, R0, R10, off), EXIT],
            &[],
            trap(TrapKind::OutOfBounds, 1),
        );
        expect(
            &[mov(R0, 0), st(Size::B, R10, off, 1), EXIT],
            &[],
            trap(TrapKind::OutOfBounds, 1),
        );
    }
    // A doubleword ending one byte past the top.
    expect(
        &[ldx(Size::Dw, R0, R10, -7), EXIT],
        &[],
        trap(TrapKind::OutOfBounds, 0),
    );
}

#[test]
fn a_callee_reaches_its_callers_frame_but_not_below_its_own() {
    // main stores at its frame's bottom (r10-512); the callee's r10+0 is that same byte.
    let reads_caller = [
        st(Size::B, R10, -512, 0x5a),
        call_local(1),
        EXIT,
        ldx(Size::B, R0, R10, 0),
        EXIT,
    ];
    expect(&reads_caller, &[], Ok(0x5a));
    let below = [
        call_local(1),
        EXIT,
        mov(R0, 0),
        ldx(Size::B, R0, R10, -513),
        EXIT,
    ];
    expect(&below, &[], trap(TrapKind::OutOfBounds, 3));
    // The callee's own frame is r10-512 .. r10-1 and starts zeroed.
    let own = [
        call_local(1),
        EXIT,
        st(Size::B, R10, -512, 3),
        ldx(Size::Dw, R0, R10, -512),
        EXIT,
    ];
    expect(&own, &[], Ok(3));
}

#[test]
fn addresses_that_wrap_are_out_of_bounds() {
    for size in [Size::H, Size::W, Size::Dw] {
        let ops = [lddw(R1, u64::MAX - 2), ldx(size, R0, R1, 0), EXIT];
        expect(&ops, &[], trap(TrapKind::OutOfBounds, 2));
        let ops = [lddw(R1, u64::MAX - 2), st(size, R1, 0, 0), EXIT];
        expect(&ops, &[], trap(TrapKind::OutOfBounds, 2));
    }
    // The offset itself wraps the address around to 0.
    let ops = [lddw(R1, u64::MAX), ldx(Size::B, R0, R1, 1), EXIT];
    expect(&ops, &INPUT, trap(TrapKind::OutOfBounds, 2));
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
    // 8 frames (the default limit) work; the call that would make the 9th traps at its pc.
    expect(&nested_frames(8), &[], Ok(42));
    expect(&nested_frames(9), &[], trap(TrapKind::CallDepthExceeded, 5));
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
    let budget = 1_000_000;
    let env = || {
        let mut env = Env::new();
        env.budget = Some(budget);
        env
    };
    for (name, run) in run_all(&prog, &[], &env) {
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

#[test]
fn helper_calls_clobber_r1_to_r5_and_keep_r6_to_r9() {
    let or = |src| alu(Width::W64, AluOp::Or, R7, Operand::Reg(src));
    let ops = [
        mov(R1, 0x11),
        mov(R2, 0x22),
        mov(R3, 0x33),
        mov(R4, 0x44),
        mov(R5, 0x55),
        mov(R6, 0x600),
        Op::Call(CallTarget::Helper(5)),
        movr(R7, R0),
        or(R1),
        or(R2),
        or(R3),
        or(R4),
        or(R5),
        or(R6),
        movr(R0, R7),
        EXIT,
    ];
    expect(&ops, &[], Ok(0x611));
}

#[test]
fn unknown_helpers_and_callx() {
    expect(
        &[mov(R0, 1), Op::Call(CallTarget::Helper(99)), EXIT],
        &[],
        trap(TrapKind::UnknownHelper, 1),
    );
    let callx = |id: u64| {
        [
            mov(R1, 7),
            lddw(R2, id),
            Op::Call(CallTarget::Register(R2)),
            add(R0, Operand::Reg(R2)),
            EXIT,
        ]
    };
    expect(&callx(5), &[], Ok(7));
    expect(&callx(99), &[], trap(TrapKind::UnknownHelper, 3));
    // The id is the whole register: 5 + 2^32 is not helper 5.
    expect(&callx(0x1_0000_0005), &[], trap(TrapKind::UnknownHelper, 3));
    expect(
        &[Op::Call(CallTarget::Kfunc(1)), EXIT],
        &[],
        trap(TrapKind::Unsupported, 0),
    );
}

#[test]
fn packet_loads_in_and_out_of_bounds() {
    let pkt = [0x11, 0x22, 0x33, 0x44, 0x55];
    expect(&[packet(Size::B, None, 0), EXIT], &pkt, Ok(0x11));
    expect(&[packet(Size::H, None, 3), EXIT], &pkt, Ok(0x4455));
    expect(&[packet(Size::W, None, 1), EXIT], &pkt, Ok(0x2233_4455));
    expect(
        &[mov(R3, 2), packet(Size::H, Some(R3), 1), EXIT],
        &pkt,
        Ok(0x4455),
    );
    // The index wraps around 2^64 back to byte 0.
    expect(
        &[mov(R3, -1), packet(Size::B, Some(R3), 1), EXIT],
        &pkt,
        Ok(0x11),
    );
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
    expect(&[packet(Size::B, None, 0), EXIT], &[], Ok(0));
}

#[test]
fn entry_registers_and_r10() {
    // r2 is the input length; r3..r9 start at 0.
    let ops = [
        movr(R0, R2),
        add(R0, Operand::Reg(R3)),
        add(R0, Operand::Reg(R4)),
        add(R0, Operand::Reg(R5)),
        add(R0, Operand::Reg(R6)),
        add(R0, Operand::Reg(R7)),
        EXIT,
    ];
    expect(&ops, &INPUT, Ok(8));
    expect(&[movr(R0, R1), EXIT], &[], Ok(0));
    // r10 is 16-byte aligned.
    let ops = [
        movr(R0, R10),
        alu(Width::W64, AluOp::And, R0, Operand::Imm(15)),
        EXIT,
    ];
    expect(&ops, &[], Ok(0));
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
/// judged alone, in program order: an access near the end whose rounded-up span does not fit,
/// a later access out of bounds after an earlier store landed, a group in the stack, and a
/// span that ends exactly at the input's end.
#[test]
fn accesses_sharing_a_guard_are_still_judged_one_by_one() {
    let input: Vec<u8> = (1..=16).collect();
    let or = |dst, src| alu(Width::W64, AluOp::Or, dst, Operand::Reg(src));
    let lsh8 = alu(Width::W64, AluOp::Lsh, R0, Operand::Imm(8));
    // Span of 9 bytes, checked as 16, in a 10-byte input: both loads are fine.
    let near_end = [
        ldx(Size::B, R0, R1, 8),
        ldx(Size::B, R3, R1, 0),
        lsh8,
        or(R0, R3),
        EXIT,
    ];
    expect(&near_end, &input[..10], Ok(0x0901));
    // Exactly 16 bytes: the span fits.
    let exact = [
        ldx(Size::B, R0, R1, 15),
        ldx(Size::B, R3, R1, 0),
        lsh8,
        or(R0, R3),
        EXIT,
    ];
    expect(&exact, &input, Ok(0x1001));
    // The store lands, then the load one past the end traps at its own pc.
    let store_then_fault = [st(Size::B, R1, 0, 0x77), ldx(Size::B, R0, R1, 10), EXIT];
    let mem = expect(
        &store_then_fault,
        &input[..10],
        trap(TrapKind::OutOfBounds, 1),
    );
    assert_eq!(mem[0], 0x77, "the store before the fault happened");
    // The first access faults: nothing after it runs.
    let fault_first = [ldx(Size::B, R0, R1, 12), st(Size::B, R1, 0, 0x77), EXIT];
    let mem = expect(&fault_first, &input[..10], trap(TrapKind::OutOfBounds, 0));
    assert_eq!(mem[0], 1, "no store after the fault");
    // r10 + r4 (r4 is 0) is not a frame constant, so these accesses are guarded, and live in
    // the stack, not the input.
    let stack = [
        movr(R2, R10),
        add(R2, Operand::Reg(R4)),
        st(Size::Dw, R2, -8, 5),
        st(Size::Dw, R2, -16, 6),
        ldx(Size::Dw, R0, R2, -8),
        ldx(Size::Dw, R3, R2, -16),
        add(R0, Operand::Reg(R3)),
        EXIT,
    ];
    expect(&stack, &input, Ok(11));
    // A branch between two accesses: when it leaves early, the second access (out of bounds)
    // never happens, though the shared span includes it.
    let branch_between = [
        ldx(Size::B, R0, R1, 9),
        Op::Branch {
            width: Width::W64,
            cond: Cond::Eq,
            lhs: R0,
            rhs: Operand::Imm(10),
            off: 1,
        },
        ldx(Size::B, R3, R1, 10),
        EXIT,
    ];
    expect(&branch_between, &input[..10], Ok(10));
    let mut other = input[..10].to_vec();
    other[9] = 0;
    expect(&branch_between, &other, trap(TrapKind::OutOfBounds, 2));
}

/// The `diff_raw` finding: `add r0, r10; sub r0, 13` then two stores through r0. r0 is live at
/// the exit, so the address chain becomes one `lea` into r0; the stores after it must use r0
/// as it now is. The first store lands in the frame (13 bytes below its top), the second (276
/// bytes above the top) traps at its own pc.
#[test]
fn accesses_after_an_address_chain_through_its_own_register_use_the_new_value() {
    let ops = [
        add(R0, Operand::Reg(R10)),
        add(R0, Operand::Imm(-13)),
        st(Size::B, R0, 0, 29184),
        st(Size::B, R0, 289, 0),
        EXIT,
    ];
    expect(&ops, &[], trap(TrapKind::OutOfBounds, 3));
    let reads_back = [
        add(R0, Operand::Reg(R10)),
        add(R0, Operand::Imm(-13)),
        st(Size::B, R0, 0, 0x5a),
        ldx(Size::B, R3, R0, 0),
        movr(R0, R3),
        EXIT,
    ];
    expect(&reads_back, &[], Ok(0x5a));
}

/// The `diff_structured` finding: an address chain `mov r6, r1; add r6, rX` folded into a store
/// after an instruction whose lowering borrows rX's host register because rX is dead after it
/// (division and modulo borrow rax and rdx, r0 and r3; a shift by another register borrows
/// rcx, r4). The store must still see rX's value from before.
#[test]
fn a_folded_address_survives_an_instruction_that_borrows_its_register() {
    let borrowers = [
        (R0, alu(Width::W64, AluOp::Mod, R5, Operand::Imm(50))),
        (R0, alu(Width::W64, AluOp::Div, R5, Operand::Reg(R7))),
        (R3, alu(Width::W64, AluOp::Mod, R5, Operand::Imm(50))),
        (R3, alu(Width::W32, AluOp::Sdiv, R5, Operand::Reg(R7))),
        (R4, alu(Width::W64, AluOp::Lsh, R5, Operand::Reg(R7))),
    ];
    for (component, borrower) in borrowers {
        let ops = [
            mov(component, 2),
            mov(R5, 1000),
            mov(R7, 3),
            mov(R2, 0x1234),
            movr(R6, R1),
            add(R6, Operand::Reg(component)),
            borrower,
            Op::Store {
                size: Size::H,
                base: R6,
                off: 4,
                src: Operand::Reg(R2),
            },
            ldx(Size::H, R0, R1, 6),
            mov(R3, 0),
            mov(R4, 0),
            EXIT,
        ];
        let memory = expect(&ops, &[0; 16], Ok(0x1234));
        assert_eq!(&memory[6..8], &[0x34, 0x12], "{borrower:?}");
    }
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
