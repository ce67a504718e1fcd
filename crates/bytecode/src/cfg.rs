//! Program structure, computed once: the control-flow graph of a decoded [`Program`], its
//! functions and its call graph. The verifier checks its rules on it, the engines plan their
//! code from it; nobody walks jump offsets on their own.
//!
//! Every target here is a [`Pc`], never an `Option`: [`Program::decode`] proved each jump,
//! branch, local call and `lddw func` lands on an instruction start inside the program, so
//! there is no "impossible target" left to handle.
//!
//! # Definitions
//! - **Successors** of an instruction, inside its function: the next instruction when control
//!   falls through (every instruction but `ja` and `exit`; for a call, its return point) and
//!   the target of a `ja` or conditional branch. A call's callee is no successor: it starts
//!   another function, reached through the call graph.
//! - **Functions** start at pc 0, at every local-call target and at every `lddw func` target
//!   (a function whose address is taken, as the kernel counts subprograms); each instruction
//!   belongs to the nearest function start at or before it.
//! - **Block leaders**: pc 0, every function start, every jump and branch target, and the
//!   instruction after every jump, branch, `exit` and local call (a return point, entered from
//!   the callee's `exit`). Between two leaders control runs straight through.
//! - **Back edges**: jump and branch edges to the same or an earlier pc. Every cycle of a
//!   function's graph holds one (pcs only grow along the other edges).
//! - **Call graph**: who calls whom at which pc; its **deepest chain** is the most frames a run
//!   can hold at once, or recursion when a function can call itself again before returning.
//!
//! ```
//! use bpfx_bytecode::{CallDepth, Cfg, Pc, Program, assemble};
//! let prog = Program::decode(assemble(
//!     "mov r0, 0\n\
//!      top:\n\
//!      call local f\n\
//!      jlt r0, 10, top\n\
//!      exit\n\
//!      f:\n\
//!      add r0, 1\n\
//!      exit",
//! ).unwrap()).unwrap();
//! let cfg = Cfg::new(&prog);
//! let entries: Vec<Pc> = cfg.functions().iter().map(|f| f.entry).collect();
//! assert_eq!(entries, [Pc(0), Pc(4)]);
//! assert_eq!(cfg.successors(Pc(2)).iter().collect::<Vec<_>>(), [Pc(3), Pc(1)]);
//! assert_eq!(cfg.back_edges()[0].to, Pc(1));
//! assert_eq!(cfg.calls()[0].callee, Pc(4));
//! assert_eq!(cfg.call_depth(), CallDepth::Frames(2));
//! ```

use crate::op::{CallTarget, Imm64, Op, Pc};
use crate::program::Program;

/// Where control can go after one instruction, inside its function: at most two places.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Successors {
    /// The next instruction, reached by falling through: every instruction but `ja` and
    /// `exit` (for a call, its return point). `Pc(len)`, past the end, when the last
    /// instruction falls through (the verifier rejects such a program).
    pub fall: Option<Pc>,
    /// The target of a `ja` or a conditional branch.
    pub jump: Option<Pc>,
}

impl Successors {
    /// The successors of `op` at `pc` of a decoded [`Program`].
    pub const fn of(op: &Op, pc: Pc) -> Successors {
        let next = Some(Pc(pc.0 + op.slots()));
        match *op {
            Op::Exit => Successors {
                fall: None,
                jump: None,
            },
            Op::Ja { off, .. } => Successors {
                fall: None,
                jump: Some(pc.jump(off)),
            },
            Op::Branch { off, .. } | Op::MayGoto { off } => Successors {
                fall: next,
                jump: Some(pc.jump(off as i32)),
            },
            _ => Successors {
                fall: next,
                jump: None,
            },
        }
    }

    /// The successors, the fall-through first. A branch to the next instruction (`+0`) gives
    /// it twice, once per edge.
    pub fn iter(self) -> impl Iterator<Item = Pc> {
        self.fall.into_iter().chain(self.jump)
    }

    /// Number of edges (0, 1 or 2).
    pub const fn len(self) -> usize {
        self.fall.is_some() as usize + self.jump.is_some() as usize
    }

    /// Whether there is none (`exit`).
    pub const fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A control-flow edge from the instruction at `from` to the one at `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    /// The jump or branch.
    pub from: Pc,
    /// Its target.
    pub to: Pc,
}

/// One function of a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Function {
    /// Its first instruction.
    pub entry: Pc,
    /// The slot after its last one: the next function's entry, or the program's length.
    pub end: Pc,
    /// Whether some local call targets it.
    pub called: bool,
    /// Whether some `lddw func` loads its address (a callback).
    pub address_taken: bool,
}

impl Function {
    /// Whether `pc` lies in the function.
    pub const fn contains(&self, pc: Pc) -> bool {
        self.entry.0 <= pc.0 && pc.0 < self.end.0
    }
}

/// A local call: at `site`, in the function starting at `caller`, to the function starting at
/// `callee`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallSite {
    /// The `call local` instruction.
    pub site: Pc,
    /// The entry of the function holding it.
    pub caller: Pc,
    /// The entry of the function it calls.
    pub callee: Pc,
}

/// How deep calls can nest ([`Cfg::call_depth`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallDepth {
    /// At most this many frames at once: the longest chain of nested local calls starting at
    /// any function, counting that function's own frame (1 for a program without calls).
    Frames(u32),
    /// A function can call itself again before returning; `call` is a call on such a cycle
    /// (the first one the search met).
    Recursive {
        /// A local call on a cycle of the call graph.
        call: CallSite,
    },
}

/// The structure of one program. Built once by [`Cfg::new`], in time linear in its size and
/// without recursion (a program of a million instructions cannot exhaust the host stack).
///
/// # Invariants
/// - `functions()` is sorted by entry, starts at pc 0, and the functions tile the program.
/// - `calls()` and `back_edges()` are sorted by their instruction's pc.
/// - every pc this type returns, other than a [`Successors::fall`] past the last instruction
///   and [`Function::end`], is an instruction start of the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cfg {
    prog: Program,
    leader: Vec<bool>,
    funcs: Vec<Function>,
    back_edges: Vec<Edge>,
    calls: Vec<CallSite>,
    /// Per function `i`, its calls are `calls[call_start[i]..call_start[i + 1]]`.
    call_start: Vec<usize>,
    depth: CallDepth,
}

impl Cfg {
    /// The structure of `prog`.
    pub fn new(prog: &Program) -> Cfg {
        let len = prog.len();
        // Function entries and how they are entered.
        let mut called = vec![false; len];
        let mut taken = vec![false; len];
        for (pc, op) in prog.iter() {
            match *op {
                Op::Call(CallTarget::Local { off }) => called[pc.jump(off).index()] = true,
                Op::LoadImm64 {
                    value: Imm64::Func { off },
                    ..
                } => taken[pc.jump(off).index()] = true,
                _ => {}
            }
        }
        let mut funcs: Vec<Function> = Vec::new();
        for pc in 0..len {
            if pc == 0 || called[pc] || taken[pc] {
                if let Some(last) = funcs.last_mut() {
                    last.end = Pc(pc as u32);
                }
                funcs.push(Function {
                    entry: Pc(pc as u32),
                    end: Pc(len as u32),
                    called: called[pc],
                    address_taken: taken[pc],
                });
            }
        }

        // Leaders, back edges and call sites, in one pass.
        let mut leader = vec![false; len];
        for f in &funcs {
            leader[f.entry.index()] = true;
        }
        let mut mark = |pc: Option<Pc>| {
            if let Some(slot) = pc.and_then(|pc| leader.get_mut(pc.index())) {
                *slot = true;
            }
        };
        let mut back_edges = Vec::new();
        let mut calls = Vec::new();
        let mut call_start = vec![0; funcs.len() + 1];
        let mut func = 0;
        for (pc, op) in prog.iter() {
            while func + 1 < funcs.len() && funcs[func + 1].entry <= pc {
                func += 1;
                call_start[func] = calls.len();
            }
            let succ = Successors::of(op, pc);
            if let Some(to) = succ.jump {
                mark(Some(to));
                if to <= pc {
                    back_edges.push(Edge { from: pc, to });
                }
            }
            match *op {
                Op::Ja { .. } | Op::Branch { .. } | Op::MayGoto { .. } | Op::Exit => {
                    mark(Some(Pc(pc.0 + op.slots())));
                }
                Op::Call(CallTarget::Local { off }) => {
                    mark(Some(Pc(pc.0 + 1)));
                    calls.push(CallSite {
                        site: pc,
                        caller: funcs[func].entry,
                        callee: pc.jump(off),
                    });
                }
                _ => {}
            }
        }
        for start in &mut call_start[func + 1..] {
            *start = calls.len();
        }
        let depth = deepest_chain(&funcs, &calls, &call_start);
        Cfg {
            prog: prog.clone(),
            leader,
            funcs,
            back_edges,
            calls,
            call_start,
            depth,
        }
    }

    /// The program this is the structure of.
    pub fn program(&self) -> &Program {
        &self.prog
    }

    /// The successors of the instruction at `pc`; none when `pc` is no instruction start.
    pub fn successors(&self, pc: Pc) -> Successors {
        self.prog
            .get(pc)
            .map_or(Successors::default(), |op| Successors::of(op, pc))
    }

    /// Whether a basic block starts at `pc`.
    pub fn is_leader(&self, pc: Pc) -> bool {
        self.leader.get(pc.index()).copied().unwrap_or(false)
    }

    /// The block leaders, in increasing order.
    pub fn leaders(&self) -> impl Iterator<Item = Pc> + '_ {
        self.leader
            .iter()
            .enumerate()
            .filter(|(_, l)| **l)
            .map(|(pc, _)| Pc(pc as u32))
    }

    /// The jump and branch edges to the same or an earlier pc, by source pc.
    pub fn back_edges(&self) -> &[Edge] {
        &self.back_edges
    }

    /// The functions, by entry; the first starts at pc 0.
    pub fn functions(&self) -> &[Function] {
        &self.funcs
    }

    /// The index in [`Cfg::functions`] of the function holding `pc` (the last one for a pc
    /// past the end).
    pub fn function_of(&self, pc: Pc) -> usize {
        self.funcs
            .partition_point(|f| f.entry <= pc)
            .saturating_sub(1)
    }

    /// The function starting at `entry`, if one does.
    pub fn function_at(&self, entry: Pc) -> Option<&Function> {
        let f = &self.funcs[self.function_of(entry)];
        (f.entry == entry).then_some(f)
    }

    /// Every local call, by call pc.
    pub fn calls(&self) -> &[CallSite] {
        &self.calls
    }

    /// The local calls inside function `func` (an index in [`Cfg::functions`]), by call pc.
    pub fn calls_from(&self, func: usize) -> &[CallSite] {
        match (self.call_start.get(func), self.call_start.get(func + 1)) {
            (Some(&a), Some(&b)) => &self.calls[a..b],
            _ => &[],
        }
    }

    /// How deep calls can nest.
    pub fn call_depth(&self) -> CallDepth {
        self.depth
    }
}

/// The longest chain of nested calls from any function, in frames, by an iterative depth-first
/// search over the call graph (whose nodes are the functions).
fn deepest_chain(funcs: &[Function], calls: &[CallSite], call_start: &[usize]) -> CallDepth {
    const NEW: u32 = 0;
    const OPEN: u32 = u32::MAX;
    let index = |entry: Pc| funcs.partition_point(|f| f.entry < entry);
    // Per function: NEW, OPEN while on the search path, else its chain length in frames.
    let mut chain = vec![NEW; funcs.len()];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..funcs.len() {
        if chain[root] != NEW {
            continue;
        }
        chain[root] = OPEN;
        stack.push((root, call_start[root]));
        while let Some(&mut (f, ref mut next)) = stack.last_mut() {
            if *next < call_start[f + 1] {
                let call = calls[*next];
                *next += 1;
                let c = index(call.callee);
                match chain[c] {
                    OPEN => return CallDepth::Recursive { call },
                    NEW => {
                        chain[c] = OPEN;
                        stack.push((c, call_start[c]));
                    }
                    _ => {}
                }
            } else {
                stack.pop();
                let below = calls[call_start[f]..call_start[f + 1]]
                    .iter()
                    .map(|call| chain[index(call.callee)])
                    .max()
                    .unwrap_or(0);
                chain[f] = below.saturating_add(1);
            }
        }
    }
    CallDepth::Frames(chain.into_iter().max().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble;

    fn cfg(text: &str) -> Cfg {
        Cfg::new(&Program::decode(assemble(text).expect("assembles")).expect("decodes"))
    }

    fn pcs(it: impl IntoIterator<Item = Pc>) -> Vec<u32> {
        it.into_iter().map(|pc| pc.0).collect()
    }

    #[test]
    fn successors_per_instruction_kind() {
        let c = cfg("lddw r1, 5\n\
             jeq r1, 0, +2\n\
             call 1\n\
             ja +0\n\
             exit\n\
             jeq r1, 0, +0\n\
             exit");
        let s = |pc| pcs(c.successors(Pc(pc)).iter());
        assert_eq!(s(0), [2], "lddw falls through past its second slot");
        assert_eq!(
            s(1),
            Vec::<u32>::new(),
            "second slot of lddw: no instruction"
        );
        assert_eq!(s(2), [3, 5], "branch: fall-through first, then the target");
        assert_eq!(s(3), [4], "helper call returns to the next instruction");
        assert_eq!(s(4), [5], "ja +0");
        assert_eq!(s(5), Vec::<u32>::new(), "exit");
        assert_eq!(s(6), [7, 7], "a branch +0 has two edges to the same pc");
        assert_eq!(c.successors(Pc(6)).len(), 2);
        assert!(c.successors(Pc(5)).is_empty());
        assert_eq!(s(99), Vec::<u32>::new());
        // The last instruction falling through leaves the program.
        assert_eq!(pcs(cfg("mov r0, 0").successors(Pc(0)).iter()), [1]);
    }

    #[test]
    fn functions_are_entry_call_targets_and_address_taken() {
        let c = cfg("lddw r2, func(cb)\n\
             call local f\n\
             exit\n\
             f:\n\
             mov r0, 1\n\
             exit\n\
             cb:\n\
             call local f\n\
             exit");
        let f = c.functions();
        assert_eq!(pcs(f.iter().map(|f| f.entry)), [0, 4, 6]);
        assert_eq!(pcs(f.iter().map(|f| f.end)), [4, 6, 8]);
        assert_eq!(
            f.iter()
                .map(|f| (f.called, f.address_taken))
                .collect::<Vec<_>>(),
            [(false, false), (true, false), (false, true)]
        );
        assert_eq!(c.function_of(Pc(0)), 0);
        assert_eq!(c.function_of(Pc(3)), 0);
        assert_eq!(c.function_of(Pc(4)), 1);
        assert_eq!(c.function_of(Pc(7)), 2);
        assert!(f[1].contains(Pc(5)) && !f[1].contains(Pc(6)));
        assert_eq!(c.function_at(Pc(6)).map(|f| f.entry), Some(Pc(6)));
        assert_eq!(c.function_at(Pc(5)), None);
        // The local call is not a successor; its return point is.
        assert_eq!(pcs(c.successors(Pc(2)).iter()), [3]);
        // `lddw func` is no edge either.
        assert_eq!(pcs(c.successors(Pc(0)).iter()), [2]);
    }

    #[test]
    fn leaders_start_every_straight_run() {
        let c = cfg("mov r0, 0\n\
             jeq r1, 0, +2\n\
             add r0, 1\n\
             add r0, 1\n\
             call local f\n\
             add r0, 1\n\
             exit\n\
             f:\n\
             mov r0, 2\n\
             exit");
        assert_eq!(pcs(c.leaders()), [0, 2, 4, 5, 7]);
        assert!(c.is_leader(Pc(7)) && !c.is_leader(Pc(3)) && !c.is_leader(Pc(100)));
    }

    #[test]
    fn back_edges_are_jumps_to_the_same_or_an_earlier_pc() {
        let c = cfg("mov r0, 0\n\
             top:\n\
             add r0, 1\n\
             jlt r0, 10, top\n\
             ja +0\n\
             self:\n\
             ja self\n\
             exit");
        assert_eq!(
            c.back_edges(),
            [
                Edge {
                    from: Pc(2),
                    to: Pc(1)
                },
                Edge {
                    from: Pc(4),
                    to: Pc(4)
                }
            ]
        );
        // A backward call is recursion, not a back edge.
        let c = cfg("call local +1\nexit\ncall local -3\nexit");
        assert!(c.back_edges().is_empty());
        assert!(c.program().has_back_edges());
    }

    #[test]
    fn call_graph_and_deepest_chain() {
        let c = cfg("mov r0, 0\nexit");
        assert_eq!(c.call_depth(), CallDepth::Frames(1));
        assert!(c.calls().is_empty() && c.calls_from(0).is_empty());

        // main -> f -> g, main -> g: three frames.
        let c = cfg("call local f\n\
             call local g\n\
             exit\n\
             f:\n\
             call local g\n\
             exit\n\
             g:\n\
             mov r0, 0\n\
             exit");
        let site = |site, caller, callee| CallSite {
            site: Pc(site),
            caller: Pc(caller),
            callee: Pc(callee),
        };
        assert_eq!(c.calls(), [site(0, 0, 3), site(1, 0, 5), site(3, 3, 5)]);
        assert_eq!(c.calls_from(0), [site(0, 0, 3), site(1, 0, 5)]);
        assert_eq!(c.calls_from(1), [site(3, 3, 5)]);
        assert!(c.calls_from(2).is_empty() && c.calls_from(3).is_empty());
        assert_eq!(c.call_depth(), CallDepth::Frames(3));

        // A callback's calls count from the callback's own frame.
        let c = cfg("lddw r2, func(cb)\n\
             mov r0, 0\n\
             exit\n\
             cb:\n\
             call local g\n\
             exit\n\
             g:\n\
             mov r0, 0\n\
             exit");
        assert_eq!(c.call_depth(), CallDepth::Frames(2));
    }

    #[test]
    fn recursion_is_reported_with_a_call_on_the_cycle() {
        let c = cfg("call local f\nexit\nf:\ncall local f\nexit");
        assert_eq!(
            c.call_depth(),
            CallDepth::Recursive {
                call: CallSite {
                    site: Pc(2),
                    caller: Pc(2),
                    callee: Pc(2)
                }
            }
        );
        // Mutual recursion through a later function.
        let c = cfg("call local f\nexit\nf:\ncall local g\nexit\ng:\ncall local f\nexit");
        assert!(matches!(c.call_depth(), CallDepth::Recursive { call } if call.site == Pc(4)));
        // A call back to the entry.
        let c = cfg("mov r0, 0\njeq r1, 0, +1\ncall local -3\nexit");
        assert!(matches!(c.call_depth(), CallDepth::Recursive { .. }));
    }

    #[test]
    fn deep_chains_need_no_host_stack() {
        // 100_000 functions each calling the next.
        let n = 100_000;
        let mut text = String::new();
        for _ in 0..n - 1 {
            text.push_str("call local +1\nexit\n");
        }
        text.push_str("mov r0, 0\nexit\n");
        let c = cfg(&text);
        assert_eq!(c.functions().len(), n);
        assert_eq!(c.call_depth(), CallDepth::Frames(n as u32));
    }
}
