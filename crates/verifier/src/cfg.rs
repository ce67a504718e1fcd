//! Structural checks over the control-flow graph, all iterative (no recursion, so a program of
//! a million instructions cannot exhaust the host stack), all linear in the program size.
//!
//! Functions are the entry (pc 0), every local-call target and every `lddw func` target; each
//! instruction belongs to the nearest function start at or before it. The checks, in the order
//! a rejection reports them (targets need none: decoding proved them): helpers exist, no kfunc
//! calls, jumps stay inside their function, no function falls off its end, every
//! instruction is reachable. In `Strict` mode it also finds the loops ([`Loops`]), so the
//! analysis can explore them iteration by iteration.

use crate::analysis::HashMap;
use crate::config::Config;
use crate::error::{VerifyError, VerifyErrorKind};
use bpfx_bytecode::{CallTarget, Cfg, Imm64, Op, Pc, Program};

/// One loop: its head is the target of a retreating edge of a depth-first search from its
/// function's entry (an edge to a pc still on the search's stack: for a reducible graph, an
/// edge to a dominator, wherever the pcs lie), its body the head and every pc that reaches
/// the source of such an edge without passing the head.
#[derive(Debug, Clone)]
pub(crate) struct LoopInfo {
    /// The highest pc of the body.
    pub(crate) end: u32,
    /// The body's pcs, increasing.
    body: Vec<u32>,
}

/// The loops of a `Strict`-mode program. Bodies need not nest: clang's rotated loops and
/// irreducible graphs make them overlap, and the analysis does not rely on nesting (see
/// `analysis/ctx.rs`, `route`).
#[derive(Debug, Default)]
pub(crate) struct Loops {
    /// Per head.
    pub(crate) info: HashMap<u32, LoopInfo>,
    /// Whether each pc is a loop head (the keys of `info`, for a lookup without hashing).
    pub(crate) heads: Vec<bool>,
}

impl Loops {
    /// Whether `pc` is in the body of the loop headed by `head`.
    pub(crate) fn contains(&self, head: u32, pc: u32) -> bool {
        self.info
            .get(&head)
            .is_some_and(|i| i.body.binary_search(&pc).is_ok())
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
        find_loops(&graph, &funcs, &mut join)?
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

/// Finds the loops (heads are targets of retreating edges of a depth-first search from each
/// function's entry) and marks every pc a loop exits to as a join point, so that the states
/// leaving different iterations meet there instead of each running the rest of the program.
///
/// Every cycle of the graph holds a retreating edge, so it passes through a head, and all of
/// it lies in that head's body (each pc of the cycle reaches the edge's source along the
/// cycle without passing the head). That is all the analysis needs: a state going around a
/// cycle reaches a head whose iteration it is in, and starts that loop's next iteration.
/// Heads are not the lowest pcs of their loops in general (clang enters rotated loops in
/// the middle of their code), and bodies may overlap without nesting.
fn find_loops(graph: &Cfg, funcs: &[Pc], join: &mut [bool]) -> Result<Loops, VerifyError> {
    let prog = graph.program();
    let len = prog.len();
    // Retreating edges (latch, head), by an iterative depth-first search from each function
    // entry; jumps stay inside their function, so the searches cover disjoint pcs.
    let mut latches: Vec<(u32, u32)> = Vec::new();
    // 0: not visited, 1: on the stack, 2: done.
    let mut mark = vec![0u8; len];
    for f in funcs {
        if mark[f.index()] != 0 {
            continue;
        }
        mark[f.index()] = 1;
        let mut stack: Vec<(u32, u8)> = vec![(f.0, 0)];
        while let Some(top) = stack.last_mut() {
            let (n, i) = *top;
            match graph.successors(Pc(n)).iter().nth(usize::from(i)) {
                Some(s) => {
                    top.1 += 1;
                    match mark[s.index()] {
                        0 => {
                            mark[s.index()] = 1;
                            stack.push((s.0, 0));
                        }
                        1 => latches.push((s.0, n)),
                        _ => {}
                    }
                }
                None => {
                    mark[n as usize] = 2;
                    stack.pop();
                }
            }
        }
    }
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
    latches.dedup();
    // Bodies by backward search from the latches, stopping at the head.
    let mut stamp = vec![u32::MAX; len];
    let mut loops = Loops {
        info: HashMap::default(),
        heads: vec![false; len],
    };
    let mut i = 0;
    let mut tag = 0u32;
    while i < latches.len() {
        let head = latches[i].0;
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
        body.sort_unstable();
        for &n in &body {
            for s in graph.successors(Pc(n)).iter() {
                if stamp[s.index()] != tag {
                    join[s.index()] = true;
                }
            }
        }
        let end = body.last().copied().unwrap_or(head);
        loops.info.insert(head, LoopInfo { end, body });
        loops.heads[head as usize] = true;
        tag += 1;
    }
    Ok(loops)
}
