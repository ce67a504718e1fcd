//! Million-instruction programs verify: nothing in the verifier recurses, and the cost stays
//! linear (these tests would exhaust the stack or the test timeout otherwise).

use bpfx_bytecode::{AluOp, Cond, Op, Operand, Program, Reg, Size, Width};
use bpfx_verifier::{Config, Mode, verify};

const N: usize = 1_000_000;

fn alu(op: AluOp, dst: Reg, imm: i32) -> Op {
    Op::Alu {
        width: Width::W64,
        op,
        dst,
        src: Operand::Imm(imm),
    }
}

#[test]
fn a_million_straight_line_instructions_verify_in_both_modes() {
    let mut ops = vec![alu(AluOp::Mov, Reg::R0, 0)];
    while ops.len() < N - 1 {
        ops.push(alu(AluOp::Add, Reg::R0, 1));
    }
    ops.push(Op::Exit);
    let prog = Program::from_ops(&ops).expect("decodes");
    assert_eq!(prog.len(), N);
    for mode in [Mode::Strict, Mode::Checked] {
        let cfg = Config {
            mode,
            mem_size: Some(0),
            ..Config::default()
        };
        let v = verify(prog.clone(), &cfg).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(v.program().len(), N);
    }
}

#[test]
fn a_million_instructions_of_branches_and_stack_accesses_verify() {
    // Blocks of: load a byte of input, branch over a store on it, store to the stack, reload.
    // Every block has a join point, so this exercises the worklist rather than the straight
    // walk.
    let mut ops = vec![alu(AluOp::Mov, Reg::R0, 0), {
        Op::Store {
            size: Size::Dw,
            base: Reg::R10,
            off: -8,
            src: Operand::Imm(0),
        }
    }];
    while ops.len() < N - 1 - 5 {
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
            size: Size::W,
            base: Reg::R10,
            off: -8,
            src: Operand::Imm(1),
        });
        ops.push(Op::Load {
            size: Size::Dw,
            signed: false,
            dst: Reg::R4,
            base: Reg::R10,
            off: -8,
        });
        ops.push(Op::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst: Reg::R0,
            src: Operand::Reg(Reg::R4),
        });
    }
    ops.push(Op::Exit);
    let prog = Program::from_ops(&ops).expect("decodes");
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(1),
        ..Config::default()
    };
    let v = verify(prog, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let pc = bpfx_bytecode::Pc(5);
    assert_eq!(
        v.access(pc).map(|f| f.proven),
        Some(true),
        "stack reload is proven"
    );
}

#[test]
fn an_unbounded_loop_ends_at_the_default_budget_naming_the_loop() {
    use bpfx_bytecode::{Pc, assemble};
    use bpfx_verifier::{DEFAULT_INSN_BUDGET, VerifyErrorKind};
    // The bound is an unknown 64-bit value: every iteration is a new state, so only the budget
    // stops the exploration.
    let text = "ldxdw r2, [r1+0]\nmov r0, 0\nl:\nadd r0, 1\njlt r0, r2, l\nexit\n";
    let prog = Program::decode(assemble(text).expect("assembles")).expect("decodes");
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(8),
        ..Config::default()
    };
    assert_eq!(cfg.insn_budget, 1_000_000);
    let e = verify(prog.clone(), &cfg).expect_err("Strict mode cannot bound it");
    assert_eq!(
        e.kind,
        VerifyErrorKind::LoopTooComplex {
            head: Pc(2),
            budget: DEFAULT_INSN_BUDGET
        }
    );
    assert!(e.to_string().contains("the loop at insn #2"), "{e}");
    // Checked mode widens the counter and accepts it in a few rounds.
    let cfg = Config {
        mode: Mode::Checked,
        ..cfg
    };
    let v = verify(prog, &cfg).expect("Checked mode accepts");
    assert!(v.insns_processed() < 100, "{}", v.insns_processed());
}
