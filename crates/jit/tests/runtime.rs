//! The JIT's run-time contract: guards, traps with their pcs, edge-case arithmetic, calls,
//! budget, W^X.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_exec::{Env, HelperError, Helpers, Trap, TrapKind};
use bpfx_jit::{CodeMemory, JitOptions, JitProgram, MAX_FRAMES, compile_unverified};

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

fn run(text: &str, input: &mut [u8]) -> Result<u64, Trap> {
    jit(text).run(input, &mut Env::with_helpers(Helpers::conformance()))
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

#[test]
fn reads_past_the_input_trap_with_their_pc() {
    let mut input = [0u8; 8];
    let text = "mov r0, 0\nldxdw r0, [r1]\nldxb r0, [r1+7]\nldxb r0, [r1+8]\nexit";
    assert_eq!(run(text, &mut input), trap(TrapKind::OutOfBounds, 3));
    assert_eq!(
        run("ldxw r0, [r1+5]\nexit", &mut input),
        trap(TrapKind::OutOfBounds, 0)
    );
    assert_eq!(
        run("ldxb r0, [r1-1]\nexit", &mut input),
        trap(TrapKind::OutOfBounds, 0)
    );
    // Addresses that wrap around the address space.
    let wrap = "lddw r2, 0xffffffffffffffff\nldxdw r0, [r2+4]\nexit";
    assert_eq!(run(wrap, &mut input), trap(TrapKind::OutOfBounds, 2));
    let null = "mov r2, 0\nldxdw r0, [r2]\nexit";
    assert_eq!(run(null, &mut input), trap(TrapKind::OutOfBounds, 1));
    // An empty input has no bytes at all.
    assert_eq!(
        run("ldxb r0, [r1]\nexit", &mut []),
        trap(TrapKind::OutOfBounds, 0)
    );
}

#[test]
fn a_faulting_store_writes_nothing() {
    let mut input = [0u8; 8];
    let text = "stb [r1], 1\nstxdw [r1+1], r1\nexit";
    assert_eq!(run(text, &mut input), trap(TrapKind::OutOfBounds, 1));
    assert_eq!(input, [1, 0, 0, 0, 0, 0, 0, 0]);
    let atomic = "mov r2, 5\nlock add [r1+4], r2\nexit";
    assert_eq!(run(atomic, &mut input), trap(TrapKind::OutOfBounds, 1));
    assert_eq!(input, [1, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn the_stack_is_the_active_frames_only() {
    // Below the current frame is out of bounds; the whole frame and above it are not.
    assert_eq!(
        run("ldxb r0, [r10-513]\nexit", &mut []),
        trap(TrapKind::OutOfBounds, 0)
    );
    assert_eq!(
        run("ldxb r0, [r10]\nexit", &mut []),
        trap(TrapKind::OutOfBounds, 0)
    );
    assert_eq!(
        run("stb [r10-512], 3\nldxb r0, [r10-512]\nexit", &mut []),
        Ok(3)
    );
    // Through a copy of r10 the guard is at run time.
    let copy = "mov r2, r10\nstdw [r2-8], 9\nldxdw r0, [r10-8]\nexit";
    assert_eq!(run(copy, &mut []), Ok(9));
    // A callee reads its caller's frame through a pointer, but not the other way round.
    let callee_reads_caller = "
        stdw [r10-8], 42
        mov r1, r10
        call local callee
        exit
    callee:
        ldxdw r0, [r1-8]
        exit";
    assert_eq!(run(callee_reads_caller, &mut []), Ok(42));
    let caller_reads_callee = "
        call local callee
        ldxdw r0, [r0-8]
        exit
    callee:
        mov r0, r10
        exit";
    assert_eq!(
        run(caller_reads_callee, &mut []),
        trap(TrapKind::OutOfBounds, 1)
    );
}

#[test]
fn division_edge_cases() {
    let cases: &[(&str, u64)] = &[
        ("mov r0, 7\nmov r1, 0\ndiv r0, r1\nexit", 0),
        ("mov r0, 7\ndiv32 r0, 0\nexit", 0),
        (
            "lddw r0, 0x1234567800000007\nmov r1, 0\nmod r0, r1\nexit",
            0x1234_5678_0000_0007,
        ),
        (
            "lddw r0, 0x1234567800000007\nmov r1, 0\nmod32 r0, r1\nexit",
            7,
        ),
        (
            "lddw r0, 0x8000000000000000\nmov r1, -1\nsdiv r0, r1\nexit",
            1 << 63,
        ),
        ("lddw r0, 0x8000000000000000\nsmod r0, -1\nexit", 0),
        (
            "mov32 r0, 0x80000000\nmov r1, -1\nsdiv32 r0, r1\nexit",
            0x8000_0000,
        ),
        ("mov32 r0, 0x80000000\nsmod32 r0, -1\nexit", 0),
        ("mov r0, -7\nsdiv r0, 2\nexit", (-3i64) as u64),
        ("mov r0, -7\nmov r3, 2\nsmod r3, r0\nmov r0, r3\nexit", 2),
        // r3 is rdx: dividing by it, and into it, keeps r0 (rax) intact.
        (
            "mov r0, 5\nmov r3, 100\nmov r2, 7\ndiv r3, r2\nadd r0, r3\nexit",
            19,
        ),
        ("mov r0, 100\nmov r3, 7\nmod r0, r3\nadd r0, r3\nexit", 9),
    ];
    for (text, want) in cases {
        assert_eq!(run(text, &mut []), Ok(*want), "{text}");
    }
}

#[test]
fn shift_counts_are_masked() {
    let cases: &[(&str, u64)] = &[
        ("mov r0, 1\nlsh r0, 65\nexit", 2),
        ("mov r0, 1\nlsh32 r0, 33\nexit", 2),
        ("mov r0, 1\nmov r4, 64\nlsh r0, r4\nexit", 1),
        ("mov r4, 1\nmov r2, 35\nlsh32 r4, r2\nmov r0, r4\nexit", 8),
        ("mov32 r0, 0x80000000\narsh32 r0, 63\nexit", 0xffff_ffff),
        ("lddw r0, 0xffffffff00000001\nlsh32 r0, 0\nexit", 1),
        ("mov r0, -1\nmov r1, -1\nrsh r0, r1\nexit", 1),
    ];
    for (text, want) in cases {
        assert_eq!(run(text, &mut []), Ok(*want), "{text}");
    }
}

#[test]
fn call_depth_is_limited() {
    // Recursion: every level calls the next, so the call that would make a ninth frame traps
    // (8 frames allowed), at the call's pc.
    let recurse = "
        mov r6, 0
        call local f
        exit
    f:
        add r6, 1
        mov r0, r6
        call local f
        exit";
    assert_eq!(run(recurse, &mut []), trap(TrapKind::CallDepthExceeded, 5));
    let mut env = Env::new();
    env.set_max_frames(3);
    assert_eq!(
        jit(recurse).run(&mut [], &mut env),
        trap(TrapKind::CallDepthExceeded, 5)
    );
    env.set_max_frames(MAX_FRAMES + 1);
    assert_eq!(
        jit(recurse).run(&mut [], &mut env),
        trap(TrapKind::Unsupported, 0)
    );
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
fn helpers_are_called_with_sysv_arguments_and_clobber_r1_to_r5() {
    let mut helpers = Helpers::new();
    helpers.register(1, |_, a| {
        Ok(a[0] + 10 * a[1] + 100 * a[2] + 1000 * a[3] + 10000 * a[4])
    });
    helpers.register(2, |_, _| Err(HelperError("no".into())));
    helpers.register(3, |mem, a| {
        let v = mem.load(a[0], 8).ok_or(HelperError("bad pointer".into()))?;
        mem.store(a[0], 8, v + 1)
            .ok_or(HelperError("bad pointer".into()))?;
        Ok(v)
    });
    let mut env = Env::with_helpers(helpers);
    let call = "
        mov r1, 1
        mov r2, 2
        mov r3, 3
        mov r4, 4
        mov r5, 5
        mov r6, 6
        call 1
        add r0, r1
        add r0, r2
        add r0, r3
        add r0, r4
        add r0, r5
        add r0, r6
        exit";
    assert_eq!(jit(call).run(&mut [], &mut env), Ok(54321 + 6));
    assert_eq!(
        jit("call 2\nexit").run(&mut [], &mut env),
        trap(TrapKind::HelperError, 0)
    );
    assert_eq!(
        jit("mov r0, 0\ncall 99\nexit").run(&mut [], &mut env),
        trap(TrapKind::UnknownHelper, 1)
    );
    // callx: the id in a register, and an id beyond 32 bits names no helper.
    assert_eq!(
        jit("mov r1, 2\nmov r2, 3\nmov r8, 1\ncall r8\nexit").run(&mut [], &mut env),
        Ok(32)
    );
    assert_eq!(
        jit("lddw r8, 0x100000001\ncall r8\nexit").run(&mut [], &mut env),
        trap(TrapKind::UnknownHelper, 2)
    );
    // The helper sees the current frame's stack through GuestMemory.
    let stack = "stdw [r10-8], 41\nmov r1, r10\nadd r1, -8\ncall 3\nldxdw r0, [r10-8]\nexit";
    assert_eq!(jit(stack).run(&mut [], &mut env), Ok(42));
}

#[test]
#[should_panic(expected = "helper panicked")]
fn a_panicking_helper_panics_the_caller_not_the_process() {
    let mut helpers = Helpers::new();
    helpers.register(1, |_, _| panic!("helper panicked"));
    let mut env = Env::with_helpers(helpers);
    let _ = jit("call 1\nexit").run(&mut [], &mut env);
}

#[test]
fn unsupported_forms_trap() {
    assert_eq!(
        run("mov r0, 0\ncall runtime 1\nexit", &mut []),
        trap(TrapKind::Unsupported, 1)
    );
    assert_eq!(
        run("lddw r1, map_fd(3)\nexit", &mut []),
        trap(TrapKind::Unsupported, 0)
    );
    assert_eq!(
        run("mov r0, 1\nmov r0, 2", &mut []),
        trap(TrapKind::FellOffEnd, 1)
    );
    // lddw of a function gives its absolute pc.
    assert_eq!(run("lddw r0, func(f)\nexit\nf:\nexit", &mut []), Ok(3));
}

#[test]
fn packet_loads_out_of_bounds_end_the_program_with_zero() {
    let mut input = [0x11, 0x22, 0x33, 0x44, 0x55];
    assert_eq!(run("ldabsw 1\nexit", &mut input), Ok(0x2233_4455));
    assert_eq!(run("ldabsh 3\nexit", &mut input), Ok(0x4455));
    assert_eq!(run("mov r0, 7\nldabsh 4\nexit", &mut input), Ok(0));
    let callee = "mov r0, 7\ncall local f\nmov r0, 9\nexit\nf:\nmov r2, -1\nldindb r2, 1\nexit";
    assert_eq!(run(callee, &mut input), Ok(9));
    let callee_oob = "mov r0, 7\ncall local f\nmov r0, 9\nexit\nf:\nmov r2, -1\nldindb r2, 0\nexit";
    assert_eq!(run(callee_oob, &mut input), Ok(0));
}

#[test]
fn budget_is_exact() {
    let text = "mov r0, 0\nadd r0, 1\njlt r0, 3, -2\nexit"; // 1 + 3 * 2 + 1 = 8 instructions
    let p = compile_unverified(
        &prog(text),
        &JitOptions {
            budget: true,
            ..JitOptions::default()
        },
    )
    .expect("compiles");
    let mut env = Env::new();
    env.budget = Some(8);
    assert_eq!(p.run(&mut [], &mut env), Ok(3));
    assert_eq!(env.budget, Some(0));
    env.budget = Some(7);
    assert_eq!(p.run(&mut [], &mut env), trap(TrapKind::BudgetExhausted, 3));
    assert_eq!(env.budget, Some(0));
    env.budget = Some(100);
    assert_eq!(p.run(&mut [], &mut env), Ok(3));
    assert_eq!(env.budget, Some(92));
    // A trap costs the faulting instruction.
    let oob = compile_unverified(
        &prog("ldxb r0, [r0]\nexit"),
        &JitOptions {
            budget: true,
            ..JitOptions::default()
        },
    )
    .expect("compiles");
    env.budget = Some(10);
    assert_eq!(oob.run(&mut [], &mut env), trap(TrapKind::OutOfBounds, 0));
    assert_eq!(env.budget, Some(9));
    // Metered code runs without a budget too; unmetered code refuses one.
    env.budget = None;
    assert_eq!(p.run(&mut [], &mut env), Ok(3));
    // (A program without a loop: code for one that may not end always has the charge.)
    env.budget = Some(100);
    assert_eq!(
        jit("mov r0, 3\nexit").run(&mut [], &mut env),
        trap(TrapKind::Unsupported, 0)
    );
}

#[test]
fn atomics_keep_r0_and_zero_extend() {
    let mut input = [0u8; 16];
    let fetch_and = "
        mov r0, 77
        stdw [r1], 0xff
        mov r2, 0x0f
        lock fetch and [r1], r2
        add r2, r0
        ldxdw r0, [r1]
        lsh r0, 16
        add r0, r2
        exit";
    assert_eq!(run(fetch_and, &mut input), Ok((0x0f << 16) + 0xff + 77));
    let cmpxchg32 = "
        stw [r1], 5
        lddw r0, 0xffffffff00000005
        mov r2, 9
        lock cmpxchg32 [r1], r2
        ldxw r3, [r1]
        lsh r3, 32
        or r0, r3
        exit";
    assert_eq!(run(cmpxchg32, &mut input), Ok((9 << 32) | 5));
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
    // Every option on at once is the largest code; the budget's slow paths copy every block.
    for opts in [
        JitOptions {
            budget: true,
            ..JitOptions::default()
        },
        JitOptions {
            budget: true,
            ..JitOptions::hardened()
        },
    ] {
        let p = compile_unverified(&prog(text), &opts);
        assert!(p.is_ok(), "{opts:?}: {:?}", p.err());
    }
}

#[test]
fn compiles_and_runs_a_program_of_the_largest_size() {
    use bpfx_bytecode::{AluOp, MAX_SLOTS, Op, Operand, Reg, Width};
    let add = Op::Alu {
        width: Width::W64,
        op: AluOp::Add,
        dst: Reg::R0,
        src: Operand::Imm(1),
    };
    let mut ops = vec![add; MAX_SLOTS - 1];
    ops.push(Op::Exit);
    let p = compile_unverified(
        &Program::from_ops(&ops).expect("valid"),
        &JitOptions::default(),
    )
    .expect("compiles");
    assert_eq!(p.run(&mut [], &mut Env::new()), Ok(MAX_SLOTS as u64 - 1));
}
