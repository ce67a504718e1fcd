//! Call summaries: what each local call must save around its callee, and the deepest chain of
//! calls (how many stack frames a run can occupy).

use super::liveness::{Regs, bit};
use super::plan::Plan;
use bpfx_bytecode::{CallTarget, Cfg, Op, Pc, Reg, RegSet, Successors};

/// What a local call must preserve around its callee, per callee entry: the callee-saved
/// registers (r6–r9) the callee may write, itself or through its own calls, and whether it may
/// call a helper (which needs the SysV stack alignment).
#[derive(Debug, Default)]
pub(crate) struct Callees {
    /// Per slot: r6–r9 in bits 6–9, bit 0 for a helper call (0 when not a callee).
    summary: Vec<Regs>,
    /// The most frames a run can occupy at once (the outermost included), from the longest
    /// chain of calls; `None` when the call graph has a cycle or was too big to explore.
    frames: Option<u32>,
}

/// The longest chain of nested calls starting at any callee, counted in frames, or `None` when
/// the graph has a cycle (or a call leaves it). `graph` lists each callee's entry and whom it
/// calls; an iterative depth-first search, so deep chains cannot overflow the host stack.
fn deepest_chain(graph: &[(Pc, Regs, Vec<Pc>)]) -> Option<u32> {
    const NEW: u32 = 0;
    const OPEN: u32 = u32::MAX;
    // `graph` is in increasing entry order.
    let index = |callee: &Pc| graph.binary_search_by_key(callee, |g| g.0).ok();
    // Per callee: NEW, OPEN while on the search path, else its chain length.
    let mut chain = vec![NEW; graph.len()];
    for root in 0..graph.len() {
        if chain[root] != NEW {
            continue;
        }
        // (callee, next call to look at)
        let mut path = vec![(root, 0)];
        chain[root] = OPEN;
        while let Some(&mut (k, ref mut next)) = path.last_mut() {
            if let Some(&callee) = graph[k].2.get(*next) {
                *next += 1;
                let c = index(&callee)?;
                match chain[c] {
                    OPEN => return None,
                    NEW => {
                        chain[c] = OPEN;
                        path.push((c, 0));
                    }
                    _ => {}
                }
            } else {
                let below = graph[k].2.iter().filter_map(index).map(|c| chain[c]).max();
                chain[k] = below.unwrap_or(0) + 1;
                path.pop();
            }
        }
    }
    chain.into_iter().max()
}

/// r6–r9.
const CALLEE_SAVED: Regs = RegSet::CALLEE_SAVED.bits();
/// Marks a summary whose callee may call a helper.
const HELPER: Regs = 1;
/// Beyond this many instructions visited per callee, every callee saves everything (bounds the
/// compile time of programs with many large functions).
const CALLEE_WORK: usize = 1 << 22;

impl Callees {
    /// The summaries of the program of `cfg`, whose plan is `plan`.
    pub(crate) fn new(cfg: &Cfg, plan: &Plan) -> Callees {
        let prog = cfg.program();
        if !plan.has_local_calls() {
            // Nothing to summarise: `of` is never asked.
            return Callees {
                summary: Vec::new(),
                frames: Some(1),
            };
        }
        let n = prog.len();
        // The callee entries, increasing, each once.
        let callees: Vec<Pc> = {
            let mut entries: Vec<Pc> = cfg.calls().iter().map(|c| c.callee).collect();
            entries.sort_unstable();
            entries.dedup();
            entries
        };
        let mut summary = vec![0; n];
        // Per callee: what its own body writes, and whom it calls.
        let mut direct = Vec::with_capacity(callees.len());
        let mut seen = vec![u32::MAX; n];
        let mut work = 0;
        // The instructions left to visit, shared by every callee's search.
        let mut stack = Vec::new();
        for (k, &entry) in callees.iter().enumerate() {
            let (mut regs, mut calls) = (0, Vec::new());
            stack.push(entry);
            seen[entry.index()] = k as u32;
            while let Some(pc) = stack.pop() {
                work += 1;
                let Some(op) = prog.get(pc) else { continue };
                regs |= op.written_reg().map_or(0, bit) & CALLEE_SAVED;
                match *op {
                    Op::Call(CallTarget::Local { off }) => calls.push(pc.jump(off)),
                    Op::Call(CallTarget::Helper(_) | CallTarget::Register(_)) => regs |= HELPER,
                    _ => {}
                }
                let succ = Successors::of(op, pc);
                let next = [succ.jump, succ.fall];
                for t in next.into_iter().flatten().filter(|t| t.index() < n) {
                    if seen[t.index()] != k as u32 {
                        seen[t.index()] = k as u32;
                        stack.push(t);
                    }
                }
            }
            if work > CALLEE_WORK {
                for &c in &callees {
                    summary[c.index()] = CALLEE_SAVED | HELPER;
                }
                return Callees {
                    summary,
                    frames: None,
                };
            }
            direct.push((entry, regs, calls));
        }
        for &(entry, regs, _) in &direct {
            summary[entry.index()] = regs;
        }
        // Through calls: a fixpoint over the call graph (recursion included), growing only.
        let mut changed = true;
        while changed {
            changed = false;
            for (entry, _, calls) in &direct {
                let mut s = summary[entry.index()];
                for c in calls {
                    s |= summary[c.index()];
                }
                if s != summary[entry.index()] {
                    summary[entry.index()] = s;
                    changed = true;
                }
            }
        }
        let frames = deepest_chain(&direct).map(|chain| chain.saturating_add(1));
        Callees { summary, frames }
    }

    /// The most frames a run can occupy at once; `None` when unbounded (recursion) or unknown.
    pub(crate) fn frames(&self) -> Option<u32> {
        self.frames
    }

    /// The callee-saved eBPF registers a call to `callee` must save, and whether the callee
    /// may call a helper.
    pub(crate) fn of(&self, callee: Pc) -> (impl Iterator<Item = Reg>, bool) {
        let s = self
            .summary
            .get(callee.index())
            .copied()
            .unwrap_or(CALLEE_SAVED | HELPER);
        let regs = [Reg::R6, Reg::R7, Reg::R8, Reg::R9]
            .into_iter()
            .filter(move |&r| s & bit(r) != 0);
        (regs, s & HELPER != 0)
    }
}
