//! The plan: what the driver does with each instruction ([`Action`]), so that it emits less
//! than one x86 sequence per eBPF instruction without changing anything a run can observe.
//!
//! eBPF has no `[reg+reg]` addressing, so compilers write `mov r5, r1; add r5, r4;
//! ldxw r0, [r5+0]`. When r5 is dead once its last address use has run, the `mov` and `add`
//! emit nothing and every load or store through r5 uses `[rdi + rcx + 0]` instead
//! ([`Action::Access`], decided by [`super::fold`] on [`super::liveness`]); the guard, the
//! Spectre mask and the slow path all work on that address, which is the same value. A loop
//! tail `jcc +1; ja back` becomes one inverted branch ([`Action::BranchNot`],
//! [`super::fusion`]), and a branch over one move a conditional move ([`Action::Select`],
//! [`super::ifconv`]).
//!
//! # Invariants
//! - A skipped instruction's result is never read: every reader is a rewritten access whose
//!   expression the host registers still hold when it runs.
//! - No fold crosses a jump target, so every path into an instruction sees the same host
//!   registers. Budget slow paths lower with the same plan, so they agree with the fast code.
//! - Branch fusion and if-conversion happen only when nothing else jumps to the instructions
//!   they absorb (the fused `ja`; the converted move, and the `ja` after it). With the budget
//!   charge those belong to the branch's block ([`Plan::absorbed`], [`super::blocks`]): the
//!   block's charge pays for them, the way that skips them gives those units back, and the
//!   block's slow path lowers them as written, a charge each.

use super::liveness::{ARGS, Liveness, Node, Regs, bit};
use super::{fold, fusion, ifconv};
use bpfx_bytecode::{CallTarget, Cfg, Op, Operand, Pc, Reg, Successors};

/// A memory address in eBPF registers: `base + index + disp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Addr {
    pub(crate) base: Reg,
    pub(crate) index: Option<Reg>,
    pub(crate) disp: i32,
}

impl Addr {
    /// The address an instruction names: `base + off`.
    pub(crate) fn plain(base: Reg, off: i16) -> Addr {
        Addr {
            base,
            index: None,
            disp: i32::from(off),
        }
    }
}

/// What the driver does with one instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Action {
    /// Lower it as written.
    #[default]
    Emit,
    /// Emit nothing: an address computation whose result only folded accesses read, or the
    /// `ja` of a fused branch.
    Skip,
    /// A load or store through this address instead of its own `base + off`.
    Access(Addr),
    /// A branch over the next instruction, a `ja` to this target: branch to the target when
    /// the condition fails.
    BranchNot(Pc),
    /// The last of several `mov`/`add` instructions computing an address whose register is
    /// read as a value too: one `lea` of the whole expression (the others are skipped).
    Lea(Addr),
    /// A branch over a move (skipped): `dst = src` when the condition fails, as a
    /// conditional move (`emit/select.rs`, decided by [`super::ifconv`]).
    Select { dst: Reg, src: Operand },
}

/// The actions of one program.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    actions: Vec<Action>,
    /// Per slot: [`TARGET`] when some jump, branch, call or function address names it,
    /// [`BACK`] when a jump or branch at or after it does, [`ABSORBED`] when the instruction
    /// belongs to the fused or if-converted branch before it ([`Plan::absorbed`]).
    target: Vec<u8>,
    /// The program has a local call.
    calls: bool,
    /// The program has a jump or branch backward (or to itself).
    backward: bool,
    /// The registers some instruction reads or writes.
    used: Regs,
    /// Registers live before each slot, and one more slot (empty) for "no successor"
    /// ([`Liveness`]).
    live_in: Vec<Regs>,
}

/// See [`Plan::target`].
pub(super) const TARGET: u8 = 1;
pub(super) const BACK: u8 = 2;
/// See [`Plan::absorbed`]; set once fusion and if-conversion are decided.
const ABSORBED: u8 = 4;

impl Plan {
    /// Whether control can arrive at `pc` other than from the instruction before it.
    pub(crate) fn is_target(&self, pc: Pc) -> bool {
        self.target
            .get(pc.index())
            .is_some_and(|&t| t & TARGET != 0)
    }

    /// Whether a jump or branch at or after `pc` lands on it: the top of a loop.
    pub(crate) fn is_loop_head(&self, pc: Pc) -> bool {
        self.target.get(pc.index()).is_some_and(|&t| t & BACK != 0)
    }

    /// The registers some instruction of the program reads or writes (bit `i` for `ri`).
    pub(crate) fn used(&self) -> u16 {
        self.used
    }

    /// Whether the program calls a local function (then [`super::calls::Callees`] has work to do).
    pub(crate) fn has_local_calls(&self) -> bool {
        self.calls
    }

    /// Whether some jump or branch goes backward (or to itself): the program has a loop.
    pub(crate) fn has_backward_jumps(&self) -> bool {
        self.backward
    }

    /// Whether eBPF register `r` may be read after the one-slot instruction at `pc` before
    /// something writes it; true where nothing is known. A lowering that borrows `r`'s host
    /// register restores it only when this holds.
    pub(crate) fn live_after(&self, pc: Pc, r: Reg) -> bool {
        self.live_in
            .get(pc.index() + 1)
            .is_none_or(|&live| live & bit(r) != 0)
    }

    /// The action at `pc`.
    pub(crate) fn action(&self, pc: Pc) -> Action {
        self.actions.get(pc.index()).copied().unwrap_or_default()
    }

    /// Whether the instruction at `pc` belongs to the fused or if-converted branch before it:
    /// the skipped `ja` of a fused branch ([`Action::BranchNot`]), the skipped move of a
    /// conditional move ([`Action::Select`]) and the `ja` after that move when the branch
    /// jumps where the `ja` does. Nothing else jumps to it, so with the budget charge it is no
    /// block start: the branch's block charges it.
    pub(crate) fn absorbed(&self, pc: Pc) -> bool {
        self.target
            .get(pc.index())
            .is_some_and(|&t| t & ABSORBED != 0)
    }

    /// Plans the program of `cfg`. `budget`: the code has the budget charge, which gives back
    /// the units of what a conditional move skips, so only `jcc +1; mov` is converted (one unit,
    /// given back in one instruction for a carry condition, see `emit/select.rs`); `blinding` keeps folded displacements within what blinding leaves in the code anyway
    /// (8-bit immediates, 16-bit memory offsets).
    /// Its tables are built in `scratch`'s buffers (see [`Plan::recycle`]).
    pub(crate) fn new(cfg: &Cfg, budget: bool, blinding: bool, scratch: &mut Scratch) -> Plan {
        let prog = cfg.program();
        let n = prog.len();
        let mut target = std::mem::take(&mut scratch.target);
        target.clear();
        target.resize(n, 0);
        // Some `ja` follows a `jcc +1` (see `fuse`).
        let mut fusable = false;
        let mut skip = false;
        let none = n as u32;
        let mut nodes = std::mem::take(&mut scratch.nodes);
        nodes.clear();
        nodes.resize(
            n,
            Node {
                reads: 0,
                kills: 0,
                succ: [none; 2],
            },
        );
        let mut used = 0;
        for (pc, op) in prog.iter() {
            // What `Cfg::successors` would look up again.
            let succ = Successors::of(op, pc);
            let node = Node::new(op, succ, n);
            // A local call names nothing itself: its callee's instructions count for themselves.
            if !matches!(op, Op::Call(CallTarget::Local { .. })) {
                used |= node.reads | node.kills;
            }
            nodes[pc.index()] = node;
            if let Some(t) = succ.jump {
                target[t.index()] |= TARGET;
            }
            fusable |= skip && matches!(op, Op::Ja { .. });
            skip = matches!(op, Op::Branch { off: 1, .. });
        }
        for f in cfg.functions() {
            if f.called || f.address_taken {
                target[f.entry.index()] |= TARGET;
            }
        }
        // Backward jumps and branches, (target, source).
        let loops: Vec<(Pc, Pc)> = cfg.back_edges().iter().map(|e| (e.to, e.from)).collect();
        for &(t, _) in &loops {
            target[t.index()] |= BACK;
        }
        let calls = !cfg.calls().is_empty();
        if calls {
            // A callee's r0–r5 flow back to its caller.
            for (pc, op) in prog.iter() {
                if matches!(op, Op::Exit) {
                    nodes[pc.index()].reads |= ARGS;
                }
            }
        }
        let backward = !loops.is_empty();
        let live = Liveness::new(nodes, &target, loops, std::mem::take(&mut scratch.live_in));
        let is_target = |i: usize| target.get(i).is_none_or(|&t| t & TARGET != 0);
        let mut actions = fold::fold(
            prog,
            &live,
            &is_target,
            blinding,
            std::mem::take(&mut scratch.actions),
        );
        if fusable {
            fusion::fuse(prog, &target, &mut actions);
        }
        if !blinding {
            ifconv::convert(prog, |pc| is_target(pc.index()), !budget, &mut actions);
        }
        for (pc, op) in prog.iter() {
            let i = pc.index();
            let count = match (actions[i], *op) {
                (Action::BranchNot(_), _) | (Action::Select { .. }, Op::Branch { off: 1, .. }) => 1,
                // `jcc T; mov; ja T`.
                (Action::Select { .. }, _) => 2,
                _ => 0,
            };
            for k in (i + 1..=i + count).filter(|&k| k < n) {
                target[k] |= ABSORBED;
            }
        }
        scratch.nodes = live.nodes;
        Plan {
            actions,
            target,
            calls,
            backward,
            used,
            live_in: live.live_in,
        }
    }

    /// Gives the plan's tables back to `scratch`, for the next plan to build in.
    pub(crate) fn recycle(self, scratch: &mut Scratch) {
        scratch.target = self.target;
        scratch.actions = self.actions;
        scratch.live_in = self.live_in;
    }
}

/// The buffers a [`Plan`] is built in, kept between compilations (`emit::Scratch`) so that
/// each plan does not allocate its per-slot tables anew.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    target: Vec<u8>,
    nodes: Vec<Node>,
    live_in: Vec<Regs>,
    actions: Vec<Action>,
}
