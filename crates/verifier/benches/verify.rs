//! Verification cost per processed instruction, on small programs (the clang-built ones and a
//! bounded loop) and large ones (a million straight-line instructions; a million instructions of
//! branches and stack traffic). Throughput is in processed instructions
//! ([`VerifiedProgram::insns_processed`]), so loops, which are explored iteration by iteration,
//! are measured by the work they cause rather than by their length.

use bpfx_bytecode::{AluOp, Cond, Op, Operand, Program, Reg, Size, Width, assemble};
use bpfx_testkit::corpus::clang_object;
use bpfx_verifier::{Config, ContextKind, ContextLayout, Mode, VerifiedProgram, verify};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const N: usize = 1_000_000;

fn alu(op: AluOp, dst: Reg, imm: i32) -> Op {
    Op::Alu {
        width: Width::W64,
        op,
        dst,
        src: Operand::Imm(imm),
    }
}

fn straight_line() -> Program {
    let mut ops = vec![alu(AluOp::Mov, Reg::R0, 0)];
    while ops.len() < N - 1 {
        ops.push(alu(AluOp::Add, Reg::R0, 1));
    }
    ops.push(Op::Exit);
    Program::from_ops(&ops).expect("decodes")
}

/// Blocks of: load an input byte, branch over a store on it, store and reload a stack slot.
fn branchy() -> Program {
    let mut ops = vec![
        alu(AluOp::Mov, Reg::R0, 0),
        Op::Store {
            size: Size::Dw,
            base: Reg::R10,
            off: -8,
            src: Operand::Imm(0),
        },
    ];
    while ops.len() < N - 6 {
        ops.push(Op::Load {
            size: Size::B,
            signed: false,
            dst: Reg::R3,
            base: Reg::R1,
            off: 0,
        });
        ops.push(Op::Branch {
            width: Width::W64,
            cond: Cond::Eq,
            lhs: Reg::R3,
            rhs: Operand::Imm(0),
            off: 1,
        });
        ops.push(Op::Store {
            size: Size::Dw,
            base: Reg::R10,
            off: -8,
            src: Operand::Reg(Reg::R3),
        });
        ops.push(Op::Load {
            size: Size::Dw,
            signed: false,
            dst: Reg::R4,
            base: Reg::R10,
            off: -8,
        });
    }
    ops.push(Op::Exit);
    Program::from_ops(&ops).expect("decodes")
}

fn clang(name: &str) -> (Program, Config) {
    let (prog, helpers, maps) = clang_object(name);
    let context = if name.starts_with("packet") {
        ContextKind::Fields(ContextLayout::packet_struct(16, 0, 8))
    } else {
        ContextKind::Memory
    };
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(if name.starts_with("packet") { 16 } else { 64 }),
        helpers,
        maps,
        context,
        ..Config::default()
    };
    (prog, cfg)
}

fn bench_one(c: &mut Criterion, group: &str, name: &str, prog: Program, cfg: Config) {
    let processed = verify(prog.clone(), &cfg)
        .map(|v: VerifiedProgram| v.insns_processed())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(processed));
    if prog.len() > 10_000 {
        g.sample_size(10);
    }
    g.bench_function(name, |b| {
        b.iter(|| verify(black_box(prog.clone()), &cfg).expect("verifies"))
    });
    g.finish();
}

fn small(c: &mut Criterion) {
    for name in [
        "loop_sum",
        "bounded_loop",
        "stack_array",
        "packet_parse",
        "packet_scan",
        "map_lookup",
    ] {
        let (prog, cfg) = clang(name);
        bench_one(c, "verify_small", name, prog, cfg);
    }
    let counted =
        assemble("mov r0, 0\nmov r2, 0\nl:\nadd r0, r2\nadd r2, 1\njlt r2, 1000, l\nexit\n")
            .expect("assembles");
    let counted = Program::decode(counted).expect("decodes");
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(0),
        ..Config::default()
    };
    bench_one(c, "verify_small", "loop_1000_iterations", counted, cfg);
}

fn large(c: &mut Criterion) {
    for mode in [Mode::Strict, Mode::Checked] {
        let cfg = Config {
            mode,
            mem_size: Some(0),
            ..Config::default()
        };
        bench_one(
            c,
            "verify_large",
            &format!("straight_line_1m_{}", mode.name()),
            straight_line(),
            cfg,
        );
    }
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(64),
        ..Config::default()
    };
    bench_one(c, "verify_large", "branchy_1m_strict", branchy(), cfg);
}

criterion_group!(benches, small, large);
criterion_main!(benches);
