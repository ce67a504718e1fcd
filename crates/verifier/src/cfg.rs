//! Structural checks over the control-flow graph, all iterative (no recursion, so a program of
//! a million instructions cannot exhaust the host stack), all linear in the program size.
//!
//! Functions are the entry (pc 0), every local-call target and every `lddw func` target; each
//! instruction belongs to the nearest function start at or before it. The checks, in the order
//! a rejection reports them: targets are instruction starts inside the program, helpers exist,
//! no kfunc calls, jumps stay inside their function, no function falls off its end, every
//! instruction is reachable, and (in `Strict` mode) there is no loop.

use crate::config::Config;
use crate::error::{VerifyError, VerifyErrorKind};
use bpfx_bytecode::{CallTarget, Imm64, Op, Pc, Program};

/// What the abstract interpretation needs to know about the graph.
#[derive(Debug)]
pub(crate) struct Structure {
    /// Function starts, increasing; `funcs[0]` is pc 0.
    pub(crate) funcs: Vec<Pc>,
    /// Whether a state must be stored (and joined) at this pc: function starts, return points
    /// of local calls and every pc with more than one predecessor. Every cycle of the graph goes
    /// through one of them, which is what makes the worklist terminate.
    pub(crate) join: Vec<bool>,
    /// Join points whose stored state must outlive its processing: targets of backward jumps
    /// (loop heads), function starts and return points. The state of any other join point is
    /// complete when the pc-ordered worklist reaches it, so it is dropped once processed.
    pub(crate) keep: Vec<bool>,
}

fn err(prog: &Program, pc: usize, kind: VerifyErrorKind) -> VerifyError {
    VerifyError {
        pc: Pc(pc as u32),
        op: prog.get(Pc(pc as u32)).copied(),
        kind,
    }
}

/// Successors inside the function, in order: fall-through (or return point of a local call)
/// first, then the jump target. Local-call targets are not successors: they start another
/// function.
fn succs(op: &Op, pc: usize) -> ([Option<usize>; 2], usize) {
    let next = pc + op.slots() as usize;
    let target = op.jump_target(Pc(pc as u32)).map(Pc::index);
    match op {
        Op::Exit => ([None, None], 0),
        Op::Ja { .. } => ([target, None], 1),
        Op::Branch { .. } => ([Some(next), target], 2),
        _ => ([Some(next), None], 1),
    }
}

/// Runs every structural check; on success, returns the graph facts the analysis uses.
pub(crate) fn check(prog: &Program, cfg: &Config) -> Result<Structure, VerifyError> {
    let len = prog.len();
    // Targets and function starts.
    let mut is_func = vec![false; len];
    is_func[0] = true;
    for (pc, op) in prog.iter() {
        if op
            .written_reg()
            .is_some_and(|r| r == bpfx_bytecode::Reg::R10)
        {
            return Err(err(prog, pc.index(), VerifyErrorKind::WritesFramePointer));
        }
        if let Some(t) = op.jump_target(pc) {
            if t.index() >= len {
                let kind = VerifyErrorKind::JumpOutOfRange {
                    target: t.0 as i64,
                    len,
                };
                return Err(err(prog, pc.index(), kind));
            }
            if !prog.is_insn_start(t) {
                return Err(err(prog, pc.index(), VerifyErrorKind::JumpIntoLddw(t)));
            }
            if matches!(
                op,
                Op::Call(CallTarget::Local { .. })
                    | Op::LoadImm64 {
                        value: Imm64::Func { .. },
                        ..
                    }
            ) {
                is_func[t.index()] = true;
            }
        } else if matches!(
            op,
            Op::Ja { .. } | Op::Branch { .. } | Op::Call(CallTarget::Local { .. })
        ) {
            // A target that does not even fit a u32 (decoding rules this out too).
            return Err(err(
                prog,
                pc.index(),
                VerifyErrorKind::JumpOutOfRange { target: -1, len },
            ));
        }
        match op {
            Op::Call(CallTarget::Helper(id)) if cfg.helpers.get(*id).is_none() => {
                return Err(err(prog, pc.index(), VerifyErrorKind::UnknownHelper(*id)));
            }
            Op::Call(CallTarget::Kfunc(_)) => {
                return Err(err(prog, pc.index(), VerifyErrorKind::Kfunc));
            }
            _ => {}
        }
    }
    let funcs: Vec<Pc> = (0..len)
        .filter(|&i| is_func[i])
        .map(|i| Pc(i as u32))
        .collect();

    // Jumps stay inside their function; no function falls off its end.
    let mut func_idx = 0usize;
    for (pc, op) in prog.iter() {
        while func_idx + 1 < funcs.len() && funcs[func_idx + 1] <= pc {
            func_idx += 1;
        }
        let start = funcs[func_idx];
        let end = funcs.get(func_idx + 1).map_or(len, |p| p.index());
        let (ss, n) = succs(op, pc.index());
        for (k, s) in ss.iter().take(n).enumerate() {
            let Some(s) = *s else { continue };
            let is_fallthrough = k == 0 && op.falls_through();
            if is_fallthrough {
                if s >= len {
                    return Err(err(prog, pc.index(), VerifyErrorKind::FallsOffEnd));
                }
                if s >= end {
                    let kind = VerifyErrorKind::FallsIntoFunction(Pc(s as u32));
                    return Err(err(prog, pc.index(), kind));
                }
            } else if s < start.index() || s >= end {
                let kind = VerifyErrorKind::JumpOutOfFunction {
                    target: Pc(s as u32),
                    func: start,
                };
                return Err(err(prog, pc.index(), kind));
            }
        }
    }

    // Reachability and predecessor counts, with an explicit stack.
    let mut preds = vec![0u8; len];
    let mut seen = vec![false; len];
    let mut join = vec![false; len];
    let mut keep = vec![false; len];
    let mut stack = vec![0usize];
    seen[0] = true;
    while let Some(pc) = stack.pop() {
        let op = prog
            .get(Pc(pc as u32))
            .expect("reachable pcs are instruction starts");
        let (ss, n) = succs(op, pc);
        if let Some(t) = ss.iter().take(n).flatten().find(|t| **t <= pc) {
            keep[*t] = true;
        }
        let extra = match op {
            Op::Call(CallTarget::Local { .. }) => {
                join[pc + 1] = true;
                keep[pc + 1] = true;
                op.jump_target(Pc(pc as u32)).map(Pc::index)
            }
            Op::LoadImm64 {
                value: Imm64::Func { .. },
                ..
            } => op.jump_target(Pc(pc as u32)).map(Pc::index),
            _ => None,
        };
        for s in ss.iter().take(n).flatten() {
            preds[*s] = preds[*s].saturating_add(1);
            if !seen[*s] {
                seen[*s] = true;
                stack.push(*s);
            }
        }
        if let Some(t) = extra
            && !seen[t]
        {
            seen[t] = true;
            stack.push(t);
        }
    }
    for (pc, _) in prog.iter() {
        if !seen[pc.index()] {
            return Err(err(prog, pc.index(), VerifyErrorKind::Unreachable));
        }
        if preds[pc.index()] > 1 {
            join[pc.index()] = true;
        }
    }
    for f in &funcs {
        join[f.index()] = true;
        keep[f.index()] = true;
    }

    if cfg.mode == crate::Mode::Strict {
        check_no_loops(prog, &funcs)?;
    }
    Ok(Structure { funcs, join, keep })
}

/// Rejects the first back-edge found by an iterative depth-first search from every function
/// start (edges inside a function only: recursion is bounded by the frame limit instead).
fn check_no_loops(prog: &Program, funcs: &[Pc]) -> Result<(), VerifyError> {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut colour = vec![WHITE; prog.len()];
    // (pc, index of the next successor to visit)
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for f in funcs {
        if colour[f.index()] != WHITE {
            continue;
        }
        colour[f.index()] = GREY;
        stack.push((f.index(), 0));
        while let Some(top) = stack.last_mut() {
            let (pc, next) = *top;
            let op = prog
                .get(Pc(pc as u32))
                .expect("reachable pcs are instruction starts");
            let (ss, n) = succs(op, pc);
            if next >= n {
                colour[pc] = BLACK;
                stack.pop();
                continue;
            }
            top.1 += 1;
            let Some(s) = ss[next] else { continue };
            match colour[s] {
                WHITE => {
                    colour[s] = GREY;
                    stack.push((s, 0));
                }
                GREY => {
                    return Err(err(prog, pc, VerifyErrorKind::Loop(Pc(s as u32))));
                }
                _ => {}
            }
        }
    }
    Ok(())
}
