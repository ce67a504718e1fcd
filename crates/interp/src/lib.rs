//! The bpfx reference interpreter: the definition of what a program computes.
//!
//! ```text
//! Program ──► [verifier] ──► interpreter ──► Result<u64, Trap>
//!                               ▲
//!                               └── the oracle the JIT is compared against, program by program
//! ```
//!
//! It implements RFC 9669 and the run-time rules stated once in [`bpfx_exec`] (entry registers,
//! calls, helper clobbering, packet loads, budget, traps, the active-stack rule). Clarity comes
//! before speed: the arithmetic lives in pure functions ([`alu`], [`mem`]) that the JIT's tests
//! reuse as the specification, and the driver is one loop over typed [`Op`]s with an explicit
//! frame vector, so no guest program can grow the host stack.
//!
//! [`run`] takes a [`VerifiedProgram`], the verifier's proof that the program is well formed;
//! [`run_unverified`] is the explicitly named entry for raw test paths (the conformance plugin,
//! the differential tests). Both keep every run-time guard: the reference never trusts a proof. Every load,
//! store and atomic goes through [`bpfx_exec::GuestMemory`]; anything the decoder accepts runs
//! without a panic, however wrong it is, and ends in `r0` or a [`Trap`].
//!
//! [`Op`]: bpfx_bytecode::Op
#![forbid(unsafe_code)]

pub mod alu;
mod machine;
pub mod mem;

use bpfx_bytecode::Program;
use bpfx_exec::{End, Env, Trap};
use bpfx_verifier::VerifiedProgram;

/// Runs a verified program on `input`, returning `r0` or the trap. The interpreter checks every
/// access at run time all the same: it is the reference the proofs are tested against.
///
/// The stack is zeroed first; on return (including after a trap) `env.budget` holds the
/// instructions left, and `input` holds whatever the program stored before it stopped. A run
/// that breaks one of the proof's [`assumptions`](VerifiedProgram::assumptions) traps at pc 0
/// before anything runs, as the JIT's code does: `InputTooSmall` on an input shorter than
/// [`VerifiedProgram::mem_size`], `EnvMismatch` when `env.max_frames` exceeds
/// [`VerifiedProgram::max_frames`]. A program not proven to terminate runs under
/// [`bpfx_exec::DEFAULT_BUDGET`] when `env` sets no budget ([`Env::begin_default_budget`]).
///
/// A helper that ends the program ([`bpfx_exec::HelperRet`]) ends the run with its value; one
/// that ends it with a tail call, which this entry cannot follow, traps with
/// [`bpfx_exec::TrapKind::Unsupported`] at the `call` ([`run_to_end`] hands it over instead).
pub fn run(prog: &VerifiedProgram, input: &mut [u8], env: &mut Env) -> Result<u64, Trap> {
    run_to_end(prog, input, env)?.value()
}

/// [`run`], giving how the run ended: the program's value, or the tail call a helper ended it
/// with, for the caller to follow ([`End::TailCall`]).
pub fn run_to_end(prog: &VerifiedProgram, input: &mut [u8], env: &mut Env) -> Result<End, Trap> {
    env.begin_run();
    if let Err(kind) = prog.check_run(input.len(), env) {
        return Err(Trap {
            kind,
            pc: bpfx_bytecode::Pc(0),
        });
    }
    let default = env.begin_default_budget(!prog.terminates());
    let r = machine::Machine::new(prog.program(), input, env.parts())
        .with_packet_base(prog.packet_base())
        .with_callbacks(prog.callbacks())
        .run();
    env.end_default_budget(default);
    r
}

/// Runs the timer callback of `prog` at `entry` (one of
/// [`VerifiedProgram::timer_callbacks`]) as the kernel runs an async callback: in a run of its
/// own, in frame 0, with the r1–r5 of `step` (for [`bpfx_exec::CallbackStep::CallWithFrame`],
/// its bytes at the bottom of that frame: [`bpfx_exec::Env::async_entry`]), no input, and the
/// budget rules of a run of `prog`. Its `exit` ends the run with r0. An `entry` that is not a
/// timer callback traps with [`bpfx_exec::TrapKind::Unsupported`] at `entry`, and so does a
/// callback that ends in a tail call; one that breaks the proof's frame limit with
/// `EnvMismatch`.
pub fn run_callback(
    prog: &VerifiedProgram,
    entry: bpfx_bytecode::Pc,
    step: bpfx_exec::CallbackStep,
    env: &mut Env,
) -> Result<u64, Trap> {
    let refuse = |kind| Err(Trap { kind, pc: entry });
    env.begin_run();
    if prog.timer_callbacks().binary_search(&entry).is_err() {
        return refuse(bpfx_exec::TrapKind::Unsupported);
    }
    if env.max_frames > prog.max_frames() {
        return refuse(bpfx_exec::TrapKind::EnvMismatch);
    }
    let Some(args) = env.async_entry(step) else {
        return refuse(bpfx_exec::TrapKind::Unsupported);
    };
    let default = env.begin_default_budget(!prog.terminates());
    let r = machine::Machine::new(prog.program(), &mut [], env.parts())
        .with_packet_base(prog.packet_base())
        .with_callbacks(prog.callbacks())
        .run_callback(entry, args);
    env.end_default_budget(default);
    r?.value()
}

/// Runs `prog` on `input` with every run-time guard in place, returning `r0` or the trap.
///
/// The stack is zeroed first; on return (including after a trap) `env.budget` holds the
/// instructions left, and `input` holds whatever the program stored before it stopped. A
/// program with a backward jump or call ([`Program::has_back_edges`]) may not end, so it runs
/// under [`bpfx_exec::DEFAULT_BUDGET`] when `env` sets no budget. Helpers that end the program
/// do so as under [`run`].
pub fn run_unverified(prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, Trap> {
    env.begin_run();
    let default = env.begin_default_budget(prog.has_back_edges());
    let r = machine::Machine::new(prog, input, env.parts()).run();
    env.end_default_budget(default);
    r?.value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_bytecode::{AluOp, CallTarget, Cond, Op, Operand, Pc, Reg, Size, Width};
    use bpfx_exec::{HelperError, Helpers, TrapKind};

    fn mov(dst: Reg, imm: i32) -> Op {
        Op::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst,
            src: Operand::Imm(imm),
        }
    }

    fn add(dst: Reg, src: Operand) -> Op {
        Op::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst,
            src,
        }
    }

    fn run(ops: &[Op], input: &mut [u8], env: &mut Env) -> Result<u64, Trap> {
        let prog = Program::from_ops(ops).expect("test program decodes");
        run_unverified(&prog, input, env)
    }

    fn at(kind: TrapKind, pc: u32) -> Result<u64, Trap> {
        Err(Trap { kind, pc: Pc(pc) })
    }

    #[test]
    fn entry_registers_follow_the_contract() {
        let mut input = [0u8; 5];
        let mut env = Env::new();
        let r1 = input.as_ptr() as u64;
        let ops = [
            Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst: Reg::R0,
                src: Operand::Reg(Reg::R1),
            },
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut input, &mut env), Ok(r1));
        let ops = [
            add(Reg::R2, Operand::Reg(Reg::R3)),
            mov(Reg::R0, 0),
            add(Reg::R0, Operand::Reg(Reg::R2)),
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut input, &mut env), Ok(5));
        let ops = [
            Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst: Reg::R0,
                src: Operand::Reg(Reg::R1),
            },
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut [], &mut env), Ok(0), "empty input: r1 = 0");
    }

    #[test]
    fn stack_is_cleared_between_runs() {
        let mut env = Env::new();
        let store = Op::Store {
            size: Size::Dw,
            base: Reg::R10,
            off: -8,
            src: Operand::Imm(7),
        };
        let load = Op::Load {
            size: Size::Dw,
            signed: false,
            dst: Reg::R0,
            base: Reg::R10,
            off: -8,
        };
        assert_eq!(run(&[store, load, Op::Exit], &mut [], &mut env), Ok(7));
        assert_eq!(run(&[load, Op::Exit], &mut [], &mut env), Ok(0));
    }

    #[test]
    fn falling_off_the_end_traps_at_the_last_instruction() {
        let mut env = Env::new();
        assert_eq!(
            run(&[mov(Reg::R0, 1), mov(Reg::R0, 2)], &mut [], &mut env),
            at(TrapKind::FellOffEnd, 1)
        );
        // A branch not taken at the end falls through too.
        let ops = [
            Op::Branch {
                width: Width::W64,
                cond: Cond::Eq,
                lhs: Reg::R0,
                rhs: Operand::Imm(0),
                off: 1,
            },
            Op::Exit,
            Op::Branch {
                width: Width::W64,
                cond: Cond::Ne,
                lhs: Reg::R0,
                rhs: Operand::Imm(0),
                off: -3,
            },
        ];
        assert_eq!(run(&ops, &mut [], &mut env), at(TrapKind::FellOffEnd, 2));
        // So does returning to a call in the last slot.
        let ops = [
            Op::Ja {
                off: 1,
                long: false,
            },
            Op::Exit,
            Op::Call(CallTarget::Local { off: -2 }),
        ];
        assert_eq!(run(&ops, &mut [], &mut env), at(TrapKind::FellOffEnd, 2));
    }

    #[test]
    fn local_calls_restore_r6_to_r9_and_pass_r0_to_r5() {
        let mut env = Env::new();
        let ops = [
            mov(Reg::R6, 6),
            mov(Reg::R1, 1),
            Op::Call(CallTarget::Local { off: 3 }),
            add(Reg::R0, Operand::Reg(Reg::R6)),
            add(Reg::R0, Operand::Reg(Reg::R1)),
            Op::Exit,
            // callee: r0 = r1 + 100, r1 = 1000, clobber r6
            mov(Reg::R0, 100),
            add(Reg::R0, Operand::Reg(Reg::R1)),
            mov(Reg::R1, 1000),
            mov(Reg::R6, 60),
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut [], &mut env), Ok(101 + 6 + 1000));
    }

    #[test]
    fn callee_frame_pointer_moves_down_one_frame() {
        let mut env = Env::new();
        let mov_reg = |dst, src| Op::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst,
            src: Operand::Reg(src),
        };
        let ops = [
            mov_reg(Reg::R6, Reg::R10),
            Op::Call(CallTarget::Local { off: 3 }),
            Op::Alu {
                width: Width::W64,
                op: AluOp::Sub,
                dst: Reg::R6,
                src: Operand::Reg(Reg::R0),
            },
            mov_reg(Reg::R0, Reg::R6),
            Op::Exit,
            // callee: return its own r10
            mov_reg(Reg::R0, Reg::R10),
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut [], &mut env), Ok(512));
    }

    #[test]
    fn helpers_clobber_and_errors_trap() {
        let mut helpers = Helpers::conformance();
        helpers.register(9, |_, _| Err(HelperError("no".into())));
        let mut env = Env::with_helpers(helpers);
        let ops = [
            mov(Reg::R1, 42),
            mov(Reg::R5, 3),
            Op::Call(CallTarget::Helper(5)),
            add(Reg::R0, Operand::Reg(Reg::R5)),
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut [], &mut env), Ok(42));
        let ops = [Op::Call(CallTarget::Helper(9)), Op::Exit];
        assert_eq!(run(&ops, &mut [], &mut env), at(TrapKind::HelperError, 0));
        let ops = [mov(Reg::R0, 0), Op::Call(CallTarget::Helper(6)), Op::Exit];
        assert_eq!(run(&ops, &mut [], &mut env), at(TrapKind::UnknownHelper, 1));
        let ops = [Op::Call(CallTarget::Kfunc(1)), Op::Exit];
        assert_eq!(run(&ops, &mut [], &mut env), at(TrapKind::Unsupported, 0));
    }

    #[test]
    fn budget_counts_every_instruction_and_is_left_after_a_trap() {
        let mut env = Env::new();
        let ops = [mov(Reg::R0, 1), mov(Reg::R0, 2), Op::Exit];
        env.budget = Some(3);
        assert_eq!(run(&ops, &mut [], &mut env), Ok(2));
        assert_eq!(env.budget, Some(0));
        env.budget = Some(2);
        assert_eq!(
            run(&ops, &mut [], &mut env),
            at(TrapKind::BudgetExhausted, 2)
        );
        assert_eq!(env.budget, Some(0));
        env.budget = Some(10);
        let oob = Op::Load {
            size: Size::B,
            signed: false,
            dst: Reg::R0,
            base: Reg::R0,
            off: 0,
        };
        assert_eq!(
            run(&[oob, Op::Exit], &mut [], &mut env),
            at(TrapKind::OutOfBounds, 0)
        );
        assert_eq!(env.budget, Some(9));
    }

    #[test]
    fn out_of_bounds_packet_load_ends_the_program_with_zero_even_in_a_callee() {
        let mut env = Env::new();
        let mut input = [0xab, 0xcd];
        let ops = [
            mov(Reg::R0, 7),
            Op::Call(CallTarget::Local { off: 1 }),
            Op::Exit,
            Op::LoadPacket {
                size: Size::H,
                index: None,
                imm: 0,
            },
            Op::LoadPacket {
                size: Size::H,
                index: None,
                imm: 1,
            },
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut input, &mut env), Ok(0));
        let ops = [
            mov(Reg::R0, 7),
            Op::LoadPacket {
                size: Size::H,
                index: None,
                imm: 0,
            },
            Op::Exit,
        ];
        assert_eq!(run(&ops, &mut input, &mut env), Ok(0xabcd));
    }
}
