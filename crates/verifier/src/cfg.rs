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
    /// Whether every path of one iteration (from the head back to it inside the body) falls
    /// through a `may_goto` of the body, so that each iteration either uses one unit of the
    /// run's `may_goto` counter or leaves: the loop runs at most `MAY_GOTO_BUDGET + 1`
    /// iterations per program run whatever its values do (`analysis/ctx.rs` widens it).
    pub(crate) may_goto: bool,
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
    /// Which registers and stack slots each pc may still read ([`liveness`]).
    pub(crate) live: Liveness,
}

/// What each pc may still read before writing it: registers and, for functions whose stack
/// only `r10`-based accesses with constant offsets reach, 8-byte stack slots ([`liveness`]).
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    /// Per pc: bit `r` set when register `r` is live on entry to the pc (`r10` always is).
    pub(crate) regs: Vec<u16>,
    /// Per pc: bit `i` set when stack slot `i` of the running frame (bytes
    /// `[r10 - 8(i+1), r10 - 8i)`) is live on entry to the pc; every bit for a function whose
    /// stack a pointer other than `r10` may reach.
    pub(crate) stack: Vec<u64>,
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
                if cfg.helpers.get(*id).is_none() && !crate::is_poisoned_helper(*id) =>
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
    // Strict mode keeps every value in a program with loops (see `analysis/mod.rs`,
    // `live_masks`): no liveness to compute there.
    let live = if cfg.mode == crate::Mode::Strict && !loops.info.is_empty() {
        Liveness::default()
    } else {
        liveness(&graph, &funcs, cfg)
    };
    Ok(Structure {
        cfg: graph,
        funcs,
        join,
        keep,
        loops,
        live,
    })
}

/// The slots `[at, at + size)` (bytes from `r10`) touch, as a mask; bytes outside the frame
/// touch none (the access is refused or degraded without reading a slot).
fn slot_mask(at: i64, size: i64) -> u64 {
    let mut mask = 0u64;
    let frame = crate::domain::SLOTS as i64 * 8;
    for b in at.max(-frame)..(at + size).min(0) {
        mask |= 1 << ((-b - 1) / 8);
    }
    mask
}

/// Register and stack-slot liveness, by a backward dataflow over every function to a
/// fixpoint (backward sweeps; one for a program without backward jumps or calls): a value is live at a pc when some path from there reads it before writing it.
/// The analysis forgets dead values at join points (`analysis/mod.rs`), the kernel's
/// "equivalence up to liveness": two states that differ only in what no path reads again
/// cover each other.
///
/// What each instruction reads and writes is what the analysis reads and overwrites (a
/// write counted here must be one the analysis certainly makes, or a value it still reads
/// would be forgotten):
/// - an instruction reads and writes its operands ([`Op::reads`], [`Op::written_reg`]);
/// - a helper call reads r1 up to its signature's arity (a callback-taking helper, and one
///   the configuration does not know, r1–r5) and writes r0–r5 (result and clobbers);
/// - a local call reads what its callee reads on entry among the registers the callee's
///   frame gets from the caller (r1–r5 in `Strict` mode, r0–r9 in `Checked` mode, where
///   the callee's frame starts as a copy of the caller's), and writes r0–r5 (on return the
///   caller's r0 is the callee's, and r1–r5 are cleared or, in `Checked` mode, the
///   callee's);
/// - `exit` reads r0, and in `Checked` mode also r1–r5 (a subprogram's flow back to the
///   caller).
///
/// Stack slots are tracked only in functions where `r10` is used only as the base of loads,
/// stores and atomics (constant offsets) and which are not callbacks (a callback's frame is
/// reached through the key pointer `for_each_map_elem` passes): no other pointer reaches such
/// a frame, so a load reads the slots it touches, an aligned 8-byte store writes its slot and
/// any other store or atomic reads what it touches (it keeps the rest of the slot). Every
/// slot of any other function is live everywhere.
#[inline(never)]
pub(crate) fn liveness(graph: &Cfg, funcs: &[Pc], cfg: &Config) -> Liveness {
    use bpfx_bytecode::{Reg, RegSet};
    let prog = graph.program();
    let len = prog.len();
    let strict = cfg.mode == crate::Mode::Strict;
    let args = RegSet::ARGS.bits();
    let r0_5 = RegSet::CALLER_SAVED.bits();
    let r10 = RegSet::of(Reg::R10).bits();
    // Per instruction, once: what it reads and writes, its successors, its function, and for
    // a local call its callee's entry (whose live-in it reads); per function, whether its
    // stack may escape.
    const NONE: u32 = u32::MAX;
    struct Insn {
        pc: u32,
        func: u32,
        succ: [u32; 2],
        callee: u32,
        use_r: u16,
        def_r: u16,
        use_s: u64,
        def_s: u64,
    }
    let passed = if strict {
        args
    } else {
        RegSet::range(Reg::R0, Reg::R9).bits()
    };
    let mut escapes = vec![false; funcs.len()];
    let mut insns: Vec<Insn> = Vec::with_capacity(len);
    let mut fi = 0usize;
    for (pc, op) in prog.iter() {
        while fi + 1 < funcs.len() && funcs[fi + 1] <= pc {
            fi += 1;
        }
        let escaping = match *op {
            // Reads through its base register only.
            Op::Load { .. } => false,
            Op::Store { src, .. } => src.regs().contains(Reg::R10),
            Op::Atomic { src, .. } => src == Reg::R10,
            _ => op.reads().contains(Reg::R10),
        };
        if escaping {
            escapes[fi] = true;
        }
        let mut succ = [NONE; 2];
        if !matches!(op, Op::Exit) {
            for (k, s) in graph.successors(pc).iter().enumerate().take(2) {
                succ[k] = s.0;
            }
        }
        let mut callee = NONE;
        let (use_r, def_r) = match *op {
            Op::Call(CallTarget::Helper(id)) => {
                let n = match cfg.helpers.get(id) {
                    Some(sig)
                        if !sig.args.iter().any(|k| {
                            matches!(
                                k,
                                crate::config::ArgKind::Callback(_)
                                    | crate::config::ArgKind::CallbackCtx
                            )
                        }) =>
                    {
                        sig.args.len().min(5)
                    }
                    _ => 5,
                };
                (((1u16 << n) - 1) << 1, r0_5)
            }
            Op::Call(CallTarget::Local { off }) => {
                callee = pc.jump(off).0;
                (0, r0_5)
            }
            Op::Call(_) => (op.reads().bits(), r0_5),
            Op::Exit if !strict => (r0_5, 0),
            // A callback's frame is reached through the key pointer of `for_each_map_elem`.
            Op::LoadImm64 {
                dst,
                value: Imm64::Func { off },
            } => {
                if let Ok(t) = funcs.binary_search(&pc.jump(off)) {
                    escapes[t] = true;
                }
                (0, RegSet::of(dst).bits())
            }
            _ => (
                op.reads().bits(),
                op.written_reg().map_or(0, |r| RegSet::of(r).bits()),
            ),
        };
        let (use_s, def_s) = match *op {
            Op::Load {
                base, off, size, ..
            } if base == Reg::R10 => (slot_mask(i64::from(off), i64::from(size.bytes())), 0),
            Op::Store {
                base, off, size, ..
            } if base == Reg::R10 => {
                let at = i64::from(off);
                let n = i64::from(size.bytes());
                let m = slot_mask(at, n);
                if n == 8 && at % 8 == 0 {
                    (0, m)
                } else {
                    (m, 0)
                }
            }
            Op::Atomic {
                base, off, width, ..
            } if base == Reg::R10 => {
                let n = match width {
                    bpfx_bytecode::Width::W32 => 4,
                    bpfx_bytecode::Width::W64 => 8,
                };
                (slot_mask(i64::from(off), n), 0)
            }
            _ => (0, 0),
        };
        insns.push(Insn {
            pc: pc.0,
            func: fi as u32,
            succ,
            callee,
            use_r,
            def_r,
            use_s,
            def_s,
        });
    }
    let mut regs = vec![0u16; len];
    let mut stack = vec![0u64; len];
    // Backward sweeps until nothing changes. Without a backward jump or call, every successor
    // and callee of a pc lies after it, so one sweep from the end is exact.
    let again = prog.has_back_edges();
    loop {
        let mut changed = false;
        for n in insns.iter().rev() {
            let (mut out_r, mut out_s) = (0u16, 0u64);
            for s in n.succ {
                if let (Some(r), Some(st)) = (regs.get(s as usize), stack.get(s as usize)) {
                    out_r |= r;
                    out_s |= st;
                }
            }
            let mut use_r = n.use_r;
            if n.callee != NONE {
                use_r |= regs.get(n.callee as usize).map_or(passed, |r| r & passed);
            }
            let live_r = use_r | (out_r & !n.def_r) | r10;
            let live_s = if escapes[n.func as usize] {
                u64::MAX
            } else {
                n.use_s | (out_s & !n.def_s)
            };
            let i = n.pc as usize;
            if live_r != regs[i] || live_s != stack[i] {
                regs[i] = live_r;
                stack[i] = live_s;
                changed = true;
            }
        }
        if !changed || !again {
            break;
        }
    }
    Liveness { regs, stack }
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
        let may_goto = every_iteration_counts(graph, head, &stamp, tag);
        loops.info.insert(
            head,
            LoopInfo {
                end,
                body,
                may_goto,
            },
        );
        loops.heads[head as usize] = true;
        tag += 1;
    }
    Ok(loops)
}

/// Whether no path from `head` back to it through pcs of its body (those stamped `tag`)
/// avoids the fall-through edge of every `may_goto`: a search from `head` following every
/// edge inside the body except those fall-throughs (the jump of a `may_goto`, taken when the
/// counter is 0, uses nothing) must not come back to `head`.
fn every_iteration_counts(graph: &Cfg, head: u32, stamp: &[u32], tag: u32) -> bool {
    let mut seen: HashMap<u32, ()> = HashMap::default();
    let mut stack = vec![head];
    while let Some(n) = stack.pop() {
        let succ = graph.successors(Pc(n));
        let fall = match graph.program().get(Pc(n)) {
            Some(Op::MayGoto { .. }) => None,
            _ => succ.fall,
        };
        for s in [fall, succ.jump].into_iter().flatten() {
            if s.0 == head {
                return false;
            }
            if stamp.get(s.index()) == Some(&tag) && seen.insert(s.0, ()).is_none() {
                stack.push(s.0);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_bytecode::assemble;

    fn live(text: &str, mode: crate::Mode) -> Liveness {
        let prog = Program::decode(assemble(text).expect("assembles")).expect("decodes");
        let cfg = Config {
            mode,
            ..Config::default()
        };
        let st = check(&prog, &cfg).expect("structurally valid");
        st.live
    }

    fn regs(mask: u16) -> Vec<u8> {
        (0..11).filter(|r| mask & (1 << r) != 0).collect()
    }

    #[test]
    fn liveness_follows_reads_writes_calls_and_exits() {
        // 0: r3 is written before any read; r2 is read on one edge only; the local call at 5
        // reads what its callee reads on entry (r1 in Strict mode), not the other arguments.
        let text = "mov r3, 1\n\
                    jeq r1, 0, +2\n\
                    add r3, r2\n\
                    ja +0\n\
                    mov r1, r3\n\
                    call local +2\n\
                    mov r0, 0\n\
                    exit\n\
                    mov r0, r1\n\
                    exit\n";
        let l = live(text, crate::Mode::Strict);
        assert_eq!(regs(l.regs[0]), [1, 2, 10]);
        assert_eq!(regs(l.regs[2]), [2, 3, 10]);
        assert_eq!(regs(l.regs[4]), [3, 10]);
        assert_eq!(regs(l.regs[5]), [1, 10]);
        assert_eq!(regs(l.regs[7]), [0, 10]);
        assert_eq!(regs(l.regs[8]), [1, 10]);
        // Checked mode: exits also read r1–r5 (a subprogram's flow back to the caller), and
        // the callee's frame starts as a copy of the caller's.
        let l = live(text, crate::Mode::Checked);
        assert_eq!(regs(l.regs[7]), [0, 1, 2, 3, 4, 5, 10]);
        assert_eq!(regs(l.regs[5]), [1, 2, 3, 4, 5, 10]);
    }

    #[test]
    fn stack_slots_are_tracked_only_where_r10_is_never_copied() {
        // An aligned 8-byte store kills its slot, a narrower one keeps it live, a load reads.
        let text = "stxdw [r10-8], r1\n\
                    stxw [r10-16], r1\n\
                    ldxdw r0, [r10-8]\n\
                    ldxw r2, [r10-12]\n\
                    exit\n";
        let l = live(text, crate::Mode::Strict);
        assert_eq!(l.stack[0], 0b10);
        assert_eq!(l.stack[1], 0b11);
        assert_eq!(l.stack[2], 0b11);
        assert_eq!(l.stack[3], 0b10);
        assert_eq!(l.stack[4], 0);
        // A copy of r10 may reach any slot: every slot is live everywhere.
        let text = "mov r2, r10\nstxdw [r10-8], r1\nldxdw r0, [r2-8]\nexit\n";
        let l = live(text, crate::Mode::Strict);
        assert!(l.stack[..4].iter().all(|&m| m == u64::MAX));
    }
}
