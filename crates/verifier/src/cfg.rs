//! Structural checks over the control-flow graph, all iterative (no recursion, so a program of
//! a million instructions cannot exhaust the host stack), all linear in the program size.
//!
//! Functions are the entry (pc 0), every local-call target and every `lddw func` target; each
//! instruction belongs to the nearest function start at or before it. The checks, in the order
//! a rejection reports them (targets need none: decoding proved them): helpers exist, no kfunc
//! calls, jumps stay inside their function, no function falls off its end, every
//! instruction is reachable. In `Strict` mode it also finds the loops ([`Loops`]), so the
//! analysis can explore them iteration by iteration.

use crate::config::Config;
use crate::error::{VerifyError, VerifyErrorKind};
use bpfx_bytecode::{CallTarget, Cfg, Imm64, Op, Pc, Program};
use std::collections::HashMap;

/// "No loop" in [`Loops::head_of`] and [`LoopInfo::parent`].
pub(crate) const NO_LOOP: u32 = u32::MAX;

/// One natural loop: its head is the target of a backward jump (the head's pc is at most the
/// jump's), its body every pc that reaches such a jump without passing the head, plus the head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoopInfo {
    /// The head of the innermost loop around this one, or [`NO_LOOP`].
    pub(crate) parent: u32,
    /// The highest pc of the body.
    pub(crate) end: u32,
}

/// The loops of a `Strict`-mode program, properly nested.
#[derive(Debug, Default)]
pub(crate) struct Loops {
    /// The head of the innermost loop whose body holds each pc, or [`NO_LOOP`].
    pub(crate) head_of: Vec<u32>,
    /// Per head.
    pub(crate) info: HashMap<u32, LoopInfo>,
    /// Whether each pc is a loop head (the keys of `info`, for a lookup without hashing).
    pub(crate) heads: Vec<bool>,
}

impl Loops {
    /// Whether `pc` is in the body of the loop headed by `head`.
    pub(crate) fn contains(&self, head: u32, pc: u32) -> bool {
        let mut h = self.head_of.get(pc as usize).copied().unwrap_or(NO_LOOP);
        while h != NO_LOOP {
            if h == head {
                return true;
            }
            h = self.info.get(&h).map_or(NO_LOOP, |i| i.parent);
        }
        false
    }

    pub(crate) fn is_head(&self, pc: u32) -> bool {
        self.heads.get(pc as usize).copied().unwrap_or(false)
    }
}

/// What the abstract interpretation needs to know about the graph.
#[derive(Debug)]
pub(crate) struct Structure {
    /// The program's structure, from `bpfx-bytecode`.
    pub(crate) cfg: Cfg,
    /// Function starts, increasing; `funcs[0]` is pc 0.
    pub(crate) funcs: Vec<Pc>,
    /// Whether a state must be stored (and joined) at this pc: function starts, return points
    /// of local calls, every pc with more than one predecessor and, in `Checked` mode, every
    /// target of a backward jump (where the analysis widens). Every cycle of the graph goes
    /// through one of them, which is what makes the worklist terminate.
    pub(crate) join: Vec<bool>,
    /// Join points whose stored state must outlive its processing: targets of backward jumps
    /// (loop heads), function starts and return points. The state of any other join point is
    /// complete when the pc-ordered worklist reaches it, so it is dropped once processed.
    pub(crate) keep: Vec<bool>,
    /// The loops (`Strict` mode only; empty otherwise).
    pub(crate) loops: Loops,
}

fn err(prog: &Program, pc: usize, kind: VerifyErrorKind) -> VerifyError {
    VerifyError {
        pc: Pc(pc as u32),
        op: prog.get(Pc(pc as u32)).copied(),
        kind,
    }
}

/// Runs every structural check; on success, returns the graph facts the analysis uses.
/// Targets need no check: decoding proved each lands on an instruction start.
pub(crate) fn check(prog: &Program, cfg: &Config) -> Result<Structure, VerifyError> {
    let len = prog.len();
    for (pc, op) in prog.iter() {
        match op {
            Op::Call(CallTarget::Helper(id))
                if cfg.helpers.get(*id).is_none() && !crate::POISONED_HELPERS.contains(id) =>
            {
                return Err(err(prog, pc.index(), VerifyErrorKind::UnknownHelper(*id)));
            }
            Op::Call(CallTarget::Kfunc(_)) => {
                return Err(err(prog, pc.index(), VerifyErrorKind::Kfunc));
            }
            _ => {}
        }
    }
    let graph = Cfg::new(prog);
    let funcs: Vec<Pc> = graph.functions().iter().map(|f| f.entry).collect();

    // Jumps stay inside their function; no function falls off its end.
    let mut func_idx = 0usize;
    for (pc, _) in prog.iter() {
        while func_idx + 1 < funcs.len() && funcs[func_idx + 1] <= pc {
            func_idx += 1;
        }
        let start = funcs[func_idx];
        let end = funcs.get(func_idx + 1).map_or(len, |p| p.index());
        let succ = graph.successors(pc);
        if let Some(s) = succ.fall {
            if s.index() >= len {
                return Err(err(prog, pc.index(), VerifyErrorKind::FallsOffEnd));
            }
            if s.index() >= end {
                let kind = VerifyErrorKind::FallsIntoFunction(s);
                return Err(err(prog, pc.index(), kind));
            }
        }
        if let Some(s) = succ.jump
            && (s < start || s.index() >= end)
        {
            let kind = VerifyErrorKind::JumpOutOfFunction {
                target: s,
                func: start,
            };
            return Err(err(prog, pc.index(), kind));
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
        let Some(op) = prog.get(Pc(pc as u32)) else {
            continue;
        };
        let succ = graph.successors(Pc(pc as u32));
        // Checked mode joins loop iterations at the head, so its state must outlive one
        // processing; Strict mode explores iterations separately and needs no such state.
        // It must be a join point too, even with one predecessor (a head clang enters only
        // from the bottom of its loop): only a merge there widens, and without one the walk
        // went round such a loop one concrete iteration at a time.
        if cfg.mode != crate::Mode::Strict
            && let Some(t) = succ.iter().find(|t| t.index() <= pc)
        {
            join[t.index()] = true;
            keep[t.index()] = true;
        }
        // A function entered through a call or whose address is taken is reached too.
        let extra = match *op {
            Op::Call(CallTarget::Local { off }) => {
                join[pc + 1] = true;
                keep[pc + 1] = true;
                Some(Pc(pc as u32).jump(off).index())
            }
            Op::LoadImm64 {
                value: Imm64::Func { off },
                ..
            } => Some(Pc(pc as u32).jump(off).index()),
            _ => None,
        };
        for s in succ.iter().map(Pc::index) {
            preds[s] = preds[s].saturating_add(1);
            if !seen[s] {
                seen[s] = true;
                stack.push(s);
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

    let loops = if cfg.mode == crate::Mode::Strict {
        find_loops(&graph, &mut join)?
    } else {
        Loops::default()
    };
    Ok(Structure {
        cfg: graph,
        funcs,
        join,
        keep,
        loops,
    })
}

/// Finds the natural loops (heads are targets of backward jumps), checks that they nest, and
/// marks every pc a loop exits to as a join point, so that the states leaving different
/// iterations meet there instead of each running the rest of the program.
fn find_loops(graph: &Cfg, join: &mut [bool]) -> Result<Loops, VerifyError> {
    let prog = graph.program();
    let len = prog.len();
    // Latches are the sources of back edges, by head.
    let mut latches: Vec<(u32, u32)> = graph
        .back_edges()
        .iter()
        .map(|e| (e.to.0, e.from.0))
        .collect();
    if latches.is_empty() {
        return Ok(Loops::default());
    }
    // Predecessors in compressed rows: counts, then offsets, then fill.
    let mut count = vec![0u32; len + 1];
    for (pc, _) in prog.iter() {
        for s in graph.successors(pc).iter() {
            count[s.index() + 1] += 1;
        }
    }
    for i in 0..len {
        count[i + 1] += count[i];
    }
    let mut fill = count.clone();
    let mut preds = vec![0u32; count[len] as usize];
    for (pc, _) in prog.iter() {
        for s in graph.successors(pc).iter() {
            preds[fill[s.index()] as usize] = pc.0;
            fill[s.index()] += 1;
        }
    }
    latches.sort_unstable();
    // Bodies by backward search from the latches, stopping at the head.
    let mut stamp = vec![u32::MAX; len];
    let mut bodies: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut i = 0;
    while i < latches.len() {
        let head = latches[i].0;
        let tag = bodies.len() as u32;
        let mut body = vec![head];
        stamp[head as usize] = tag;
        let mut stack: Vec<u32> = Vec::new();
        while i < latches.len() && latches[i].0 == head {
            let l = latches[i].1;
            if stamp[l as usize] != tag {
                stamp[l as usize] = tag;
                body.push(l);
                stack.push(l);
            }
            i += 1;
        }
        while let Some(n) = stack.pop() {
            for &p in &preds[count[n as usize] as usize..count[n as usize + 1] as usize] {
                if stamp[p as usize] != tag {
                    stamp[p as usize] = tag;
                    body.push(p);
                    stack.push(p);
                }
            }
        }
        bodies.push((head, body));
    }
    // Outer loops first, so that inner ones overwrite `head_of` with themselves.
    bodies.sort_by_key(|(h, b)| (std::cmp::Reverse(b.len()), *h));
    let mut loops = Loops {
        head_of: vec![NO_LOOP; len],
        info: HashMap::new(),
        heads: vec![false; len],
    };
    // Bodies nest when neither head is in the other's body or only one is (a pc of A reaching
    // A's latch avoids B's head, or B's head would be in A, and goes on through A to B's latch).
    // Heads in each other's bodies (an irreducible graph) can break this, so the chains
    // are checked below: `Loops::contains` must hold for every pc of every body, since the
    // analysis leaves a loop's iterations exactly where it says a pc is outside.
    for (head, body) in &bodies {
        let parent = loops.head_of[*head as usize];
        for &n in body {
            loops.head_of[n as usize] = *head;
        }
        let end = body.iter().copied().max().unwrap_or(*head);
        loops.info.insert(*head, LoopInfo { parent, end });
        loops.heads[*head as usize] = true;
    }
    for (head, body) in &bodies {
        // A head must be in no loop nested inside its own: there the analysis, entering that
        // inner loop and reaching the outer head from inside it, would start a new instance of
        // the outer loop within the inner one, and so on without end (each instance holding a
        // state), instead of going around. Reducible graphs never do this: a nested loop's head
        // dominates its body, so an outer head inside it would be the same head.
        let inner = loops.head_of[*head as usize];
        if inner != *head {
            return Err(err(
                prog,
                *head as usize,
                VerifyErrorKind::IrreducibleLoop(Pc(inner)),
            ));
        }
        if let Some(&n) = body.iter().find(|&&n| !loops.contains(*head, n)) {
            let kind = VerifyErrorKind::IrreducibleLoop(Pc(*head));
            return Err(err(prog, n as usize, kind));
        }
        for &n in body {
            for s in graph.successors(Pc(n)).iter() {
                if !loops.contains(*head, s.0) {
                    join[s.index()] = true;
                }
            }
        }
    }
    Ok(loops)
}
