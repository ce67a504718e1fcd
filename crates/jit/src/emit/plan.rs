//! A pre-pass that lets the driver emit less than one x86 sequence per eBPF instruction,
//! without changing anything a run can observe.
//!
//! eBPF has no `[reg+reg]` addressing, so compilers write `mov r5, r1; add r5, r4;
//! ldxw r0, [r5+0]`. When r5 is dead once its last address use has run, the `mov` and `add`
//! emit nothing and every load or store through r5 uses `[rdi + rcx + 0]` instead
//! ([`Action::Access`]); the guard, the Spectre mask and the slow path all work on that
//! address, which is the same value. A loop tail `jcc +1; ja back` becomes one inverted
//! branch ([`Action::BranchNot`]).
//!
//! # How a fold is decided
//! One forward scan per basic block keeps, per eBPF register, a *pending* value: an address
//! expression `base + index + disp` over host registers that still hold what they held when
//! the expression was formed, with the `mov`/`add` instructions that would have computed it
//! and the accesses that used it. A pending value is
//! - **committed** (defining instructions skipped, accesses rewritten) when the register is
//!   dead: overwritten, or not live after the point where the scan has to stop tracking it;
//! - **cancelled** (everything emitted as written) when the register is read in any other way
//!   than as an access's base, or when it is still live where tracking must stop (a block
//!   end, or an instruction that writes a register the expression reads).
//!
//! Liveness is the usual backward dataflow over the whole program, with conservative
//! summaries at calls (a local call reads every register; its callee's `exit` reads r0–r5)
//! and nothing live after a trap: registers are not part of a trapped run's outcome.
//!
//! # Invariants
//! - A skipped instruction's result is never read: every reader is a rewritten access whose
//!   expression the host registers still hold when it runs.
//! - No fold crosses a jump target, so every path into an instruction sees the same host
//!   registers. Budget slow paths lower with the same plan, so they agree with the fast code.
//! - Branch fusion happens only without the budget charge, where the `ja` is not a block of
//!   its own, and only when nothing else jumps to the `ja`.

use bpfx_bytecode::{AluOp, AtomicOp, CallTarget, Op, Operand, Pc, Program, Reg, Width};

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
    /// conditional move ([`super::select`]).
    Select { dst: Reg, src: Operand },
}

/// The actions of one program.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    actions: Vec<Action>,
    /// Per slot: [`TARGET`] when some jump, branch, call or function address names it,
    /// [`BACK`] when a jump or branch at or after it does.
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
const TARGET: u8 = 1;
const BACK: u8 = 2;

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

    /// Whether the program calls a local function (then [`Callees`] has work to do).
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

    /// Plans `prog`. `fuse_branches` is false with the budget charge (see the invariants);
    /// `blinding` keeps folded displacements within what blinding leaves in the code anyway
    /// (8-bit immediates, 16-bit memory offsets).
    pub(crate) fn new(prog: &Program, fuse_branches: bool, blinding: bool) -> Plan {
        let n = prog.len();
        let mut target = vec![0u8; n];
        let mut calls = false;
        // Backward jumps and branches, (target, source).
        let mut loops = Vec::with_capacity(8);
        // Some `ja` follows a `jcc +1` (see `fuse`).
        let mut fusable = false;
        let mut skip = false;
        let none = n as u32;
        let mut nodes = vec![
            Node {
                reads: 0,
                kills: 0,
                succ: [none; 2],
            };
            n
        ];
        let mut used = 0;
        for (pc, op) in prog.iter() {
            let node = Node::new(pc, op, n);
            // A local call names nothing itself: its callee's instructions count for themselves.
            if !matches!(op, Op::Call(CallTarget::Local { .. })) {
                used |= node.reads | node.kills;
            }
            nodes[pc.index()] = node;
            if let Some(t) = op.jump_target(pc).filter(|t| t.index() < n) {
                target[t.index()] |= TARGET;
                if t <= pc && matches!(op, Op::Ja { .. } | Op::Branch { .. }) {
                    target[t.index()] |= BACK;
                    loops.push((t, pc));
                }
            }
            calls |= matches!(op, Op::Call(CallTarget::Local { .. }));
            fusable |= skip && matches!(op, Op::Ja { .. });
            skip = matches!(op, Op::Branch { off: 1, .. });
        }
        if calls {
            // A callee's r0–r5 flow back to its caller.
            for (pc, op) in prog.iter() {
                if matches!(op, Op::Exit) {
                    nodes[pc.index()].reads |= ARGS;
                }
            }
        }
        let backward = !loops.is_empty();
        let live = Liveness::new(nodes, &target, loops);
        let mut scan = Scan {
            actions: vec![Action::Emit; n],
            pending: [None; 10],
            tracked: 0,
            blinding,
        };
        let is_target = |i: usize| target.get(i).is_none_or(|&t| t & TARGET != 0);
        for (pc, op) in prog.iter() {
            if scan.tracked != 0 && is_target(pc.index()) {
                let live_in = live.live_in[pc.index()];
                scan.end_all(live_in);
            }
            let fold = scan.fold(op);
            if scan.tracked == 0 && fold.is_none() {
                // Nothing pending, nothing to start: the instruction stays as written.
                continue;
            }
            // A conditional branch whose fall-through nothing else enters continues the
            // block: a pending address dead on the taken path stays pending past it.
            let through = match *op {
                Op::Branch { off, .. } if !is_target(pc.index() + 1) => {
                    let taken = pc.offset(i32::from(off)).filter(|t| t.index() < n);
                    Some(taken.map_or(0, |t| live.live_in[t.index()]))
                }
                _ => None,
            };
            let node = live.nodes[pc.index()];
            let e = Effects {
                reads: node.reads,
                kills: node.kills,
                clobbers: match op {
                    Op::Call(CallTarget::Local { .. }) => WRITABLE,
                    _ => node.kills | (borrowed(op) & !live.live_out(node)),
                },
            };
            scan.step(pc, op, fold, e, || live.live_out(node), through);
        }
        scan.end_all(u16::MAX);
        let mut actions = scan.actions;
        if fuse_branches && fusable {
            fuse(prog, &target, &mut actions);
        }
        if fuse_branches && !blinding {
            super::select::convert(prog, |pc| is_target(pc.index()), &mut actions);
        }
        Plan {
            actions,
            target,
            calls,
            backward,
            used,
            live_in: live.live_in,
        }
    }
}

/// `jcc +1; ja T` → branch to T on the inverted condition, when nothing else enters the `ja`
/// and neither instruction was already planned otherwise.
fn fuse(prog: &Program, target: &[u8], actions: &mut [Action]) {
    let mut branch = None;
    for (next, op) in prog.iter() {
        let pc = branch.take();
        match *op {
            Op::Branch { off: 1, .. } => branch = Some(next),
            Op::Ja { off, .. } => {
                let Some(pc) = pc else { continue };
                let Some(to) = next.offset(off).filter(|t| t.index() < actions.len()) else {
                    continue;
                };
                if target[next.index()] & TARGET != 0
                    || actions[pc.index()] != Action::Emit
                    || actions[next.index()] != Action::Emit
                {
                    continue;
                }
                actions[pc.index()] = Action::BranchNot(to);
                actions[next.index()] = Action::Skip;
            }
            _ => {}
        }
    }
}

/// A set of eBPF registers, bit `i` for `ri`.
type Regs = u16;

fn bit(r: Reg) -> Regs {
    1 << r.index()
}

/// The registers of a set, lowest first, as indices.
fn regs(mut set: Regs) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let r = set.trailing_zeros() as usize;
        set &= set.wrapping_sub(1);
        (r < 16).then_some(r)
    })
}

fn operand(o: Operand) -> Regs {
    match o {
        Operand::Reg(r) => bit(r),
        Operand::Imm(_) => 0,
    }
}

/// r1–r5.
const ARGS: Regs = 0b11_1110;
/// r0–r9 (r10 is never written).
const WRITABLE: Regs = 0x3ff;

/// What an instruction does to registers.
struct Effects {
    /// Read before anything is written.
    reads: Regs,
    /// Certainly overwritten.
    kills: Regs,
    /// Possibly written (a superset of `kills`).
    clobbers: Regs,
}

/// The effects of `op` in a program without local calls: with them, an `exit` also reads
/// r1–r5 (a callee's flow back to its caller), which [`Plan::new`] adds.
fn effects(op: &Op) -> Effects {
    let (reads, kills) = match *op {
        Op::Alu {
            op: AluOp::Mov,
            dst,
            src,
            ..
        } => (operand(src), bit(dst)),
        Op::Alu { dst, src, .. } => (bit(dst) | operand(src), bit(dst)),
        Op::Neg { dst, .. } | Op::Endian { dst, .. } => (bit(dst), bit(dst)),
        Op::Movsx { dst, src, .. } => (bit(src), bit(dst)),
        Op::LoadImm64 { dst, .. } => (0, bit(dst)),
        Op::Load { dst, base, .. } => (bit(base), bit(dst)),
        Op::Store { base, src, .. } => (bit(base) | operand(src), 0),
        Op::Atomic { op, base, src, .. } => {
            let r0 = if op == AtomicOp::Cmpxchg {
                bit(Reg::R0)
            } else {
                0
            };
            // The fetched value's register comes from `written_reg` below.
            (bit(base) | bit(src) | r0, 0)
        }
        Op::LoadPacket { index, .. } => (index.map_or(0, bit), bit(Reg::R0)),
        Op::Ja { .. } | Op::Call(CallTarget::Kfunc(_)) => (0, 0),
        Op::Branch { lhs, rhs, .. } => (bit(lhs) | operand(rhs), 0),
        Op::Call(CallTarget::Helper(_)) => (ARGS, bit(Reg::R0) | ARGS),
        Op::Call(CallTarget::Register(r)) => (ARGS | bit(r), bit(Reg::R0) | ARGS),
        // The callee may read and write anything; r6–r9 come back as they were, but that is
        // no kill.
        Op::Call(CallTarget::Local { .. }) => (WRITABLE | bit(Reg::R10), 0),
        Op::Exit => (bit(Reg::R0), 0),
    };
    let kills = kills | op.written_reg().map_or(0, bit);
    let clobbers = match op {
        Op::Call(CallTarget::Local { .. }) => WRITABLE,
        _ => kills,
    };
    Effects {
        reads,
        kills,
        clobbers,
    }
}

/// The eBPF registers whose host registers the lowering of `op` uses as scratch when they are
/// dead after it (and parks and restores when they are live): rax and rdx (r0, r3) for
/// division and modulo, rcx (r4) for a shift by another register (`emit/alu.rs`). The scan
/// counts them as clobbered there, so no folded address reads them across the instruction.
fn borrowed(op: &Op) -> Regs {
    match *op {
        Op::Alu {
            op: AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod,
            ..
        } => bit(Reg::R0) | bit(Reg::R3),
        Op::Alu {
            op: AluOp::Lsh | AluOp::Rsh | AluOp::Arsh,
            src: Operand::Reg(s),
            ..
        } if s != Reg::R4 => bit(Reg::R4),
        _ => 0,
    }
}

/// Registers live before each instruction.
struct Liveness {
    /// Per slot, and one more slot (always empty) for "no successor".
    live_in: Vec<Regs>,
    /// Per slot: the effects and successors of the instruction starting there.
    nodes: Vec<Node>,
}

/// An instruction's effects on registers and its successors, for the dataflow.
#[derive(Clone, Copy, Debug)]
struct Node {
    reads: Regs,
    kills: Regs,
    /// Slots of the successors; the program's length for none.
    succ: [u32; 2],
}

impl Node {
    /// The node of `op` at `pc` in a program of `n` slots, as if it had no local calls (see
    /// [`effects`]).
    fn new(pc: Pc, op: &Op, n: usize) -> Node {
        let none = n as u32;
        let e = effects(op);
        let inside = |t: Option<Pc>| t.filter(|t| t.index() < n).map_or(none, |t| t.0);
        let next = inside(Some(Pc(pc.0 + op.slots())));
        let succ = match *op {
            Op::Exit | Op::Call(CallTarget::Kfunc(_)) => [none, none],
            Op::Ja { off, .. } => [inside(pc.offset(off)), none],
            Op::Branch { off, .. } => [inside(pc.offset(i32::from(off))), next],
            _ => [next, none],
        };
        Node {
            reads: e.reads,
            kills: e.kills,
            succ,
        }
    }
}

impl Liveness {
    /// The usual backward dataflow, in passes over the program from its end. A pass reads
    /// each successor after (in the pass) computing it, except at a backward jump, which
    /// reads its target before the pass reaches it; so another pass is needed only when
    /// such a target changed, and only from the last backward jump to it down. Straight and
    /// forward-branching code takes one pass; each further pass carries liveness around one
    /// more level of loops. `nodes` are the program's, per slot; `loops` lists the backward
    /// jumps, (target, source).
    fn new(nodes: Vec<Node>, target: &[u8], mut loops: Vec<(Pc, Pc)>) -> Liveness {
        let n = nodes.len();
        let mut live_in = vec![0; n + 1];
        if loops.is_empty() {
            // One pass, with nothing to watch for.
            for (at, &node) in nodes.iter().enumerate().rev() {
                let out = live_in[node.succ[0] as usize] | live_in[node.succ[1] as usize];
                live_in[at] = node.reads | (out & !node.kills);
            }
            return Liveness { live_in, nodes };
        }
        // Per loop target, its last source comes last.
        loops.sort_unstable();
        let mut from = n;
        while from > 0 {
            let mut again = 0;
            for (at, &node) in nodes[..from].iter().enumerate().rev() {
                let out = live_in[node.succ[0] as usize] | live_in[node.succ[1] as usize];
                let live = node.reads | (out & !node.kills);
                if live != live_in[at] {
                    live_in[at] = live;
                    if target[at] & BACK != 0 {
                        // The jumps back to here read the old value: from the last one down.
                        let to = Pc(at as u32);
                        let k = loops.partition_point(|&(t, _)| t <= to);
                        if let Some(&(t, source)) = k.checked_sub(1).and_then(|k| loops.get(k))
                            && t == to
                        {
                            again = again.max(source.index() + 1);
                        }
                    }
                }
            }
            from = again;
        }
        Liveness { live_in, nodes }
    }

    /// Registers live after the instruction of `node`: the union over its successors.
    fn live_out(&self, node: Node) -> Regs {
        self.live_in[node.succ[0] as usize] | self.live_in[node.succ[1] as usize]
    }
}

/// The most instructions one folded address takes to compute (`mov`, `add` reg, `add` imm).
const MAX_DEFS: usize = 3;
/// The most accesses one folded address serves.
const MAX_USES: usize = 4;

/// A register whose address value is not materialised (see the module doc).
#[derive(Clone, Copy, Debug)]
struct Pending {
    expr: Addr,
    defs: [Pc; MAX_DEFS],
    ndefs: usize,
    uses: [(Pc, Addr); MAX_USES],
    nuses: usize,
}

impl Pending {
    fn new(pc: Pc, expr: Addr) -> Pending {
        Pending {
            expr,
            defs: [pc; MAX_DEFS],
            ndefs: 1,
            uses: [(pc, expr); MAX_USES],
            nuses: 0,
        }
    }

    /// The registers the expression reads.
    fn refs(&self) -> Regs {
        bit(self.expr.base) | self.expr.index.map_or(0, bit)
    }
}

/// `a + b` as a displacement. With blinding the sum must fit 16 bits, like a memory offset,
/// and (checked by the caller) a folded immediate must be one blinding leaves in the code (8
/// bits): a chain of folds must not assemble a constant the program chose.
fn disp(blinding: bool, a: i32, b: i32) -> Option<i32> {
    let sum = a.checked_add(b)?;
    if blinding && i16::try_from(sum).is_err() {
        return None;
    }
    Some(sum)
}

/// How an instruction changes a register's pending value.
enum Fold {
    New(Addr),
    Extend(Addr),
}

struct Scan {
    actions: Vec<Action>,
    pending: [Option<Pending>; 10],
    /// The registers whose `pending` entry is `Some`.
    tracked: Regs,
    /// Constant blinding is on: see [`disp`].
    blinding: bool,
}

impl Scan {
    /// Scans `op` at `pc`, whose effects are `e` and which would change a pending value as
    /// `fold` says ([`Self::fold`]); `live_out` gives the registers live after it (asked only while
    /// some register is pending); `through`, for a branch into a fall-through only it enters,
    /// is what the taken path needs live.
    fn step(
        &mut self,
        pc: Pc,
        op: &Op,
        fold: Option<Fold>,
        mut e: Effects,
        live_out: impl Fn() -> Regs,
        through: Option<Regs>,
    ) {
        // An access through a pending register reads the expression, not the register.
        let access = match *op {
            Op::Load { base, off, .. } => Some((base, off)),
            Op::Store { base, off, src, .. } if src != Operand::Reg(base) => Some((base, off)),
            _ => None,
        };
        if let Some((base, off)) = access
            && let Some(p) = self.pending.get_mut(base.index()).and_then(Option::as_mut)
            && p.nuses < MAX_USES
            && let Some(disp) = disp(self.blinding, p.expr.disp, i32::from(off))
        {
            p.uses[p.nuses] = (pc, Addr { disp, ..p.expr });
            p.nuses += 1;
            e.reads &= !bit(base);
        }
        let own = match (&fold, op) {
            (Some(Fold::Extend(_)), Op::Alu { dst, .. }) => {
                e.reads &= !bit(*dst);
                bit(*dst)
            }
            _ => 0,
        };
        for r in regs(self.tracked & !own) {
            // By reference: a pending value is large.
            let Some(refs) = self.pending[r].as_ref().map(Pending::refs) else {
                continue;
            };
            let b = 1 << r;
            if e.reads & b != 0 {
                self.cancel(r);
            } else if e.kills & b != 0 {
                self.commit(r);
            } else if e.clobbers & refs != 0 {
                if live_out() & b != 0 {
                    self.cancel(r);
                } else {
                    self.commit(r);
                }
            }
        }
        if let (Some(fold), Op::Alu { dst, .. }) = (fold, op) {
            let slot = &mut self.pending[dst.index()];
            match (fold, slot.as_mut()) {
                (Fold::Extend(expr), Some(p)) => {
                    p.expr = expr;
                    p.defs[p.ndefs] = pc;
                    p.ndefs += 1;
                }
                (Fold::New(expr), _) => {
                    *slot = Some(Pending::new(pc, expr));
                    self.tracked |= bit(*dst);
                }
                (Fold::Extend(_), None) => {}
            }
        }
        let ends_block = matches!(
            op,
            Op::Ja { .. } | Op::Branch { .. } | Op::Call(_) | Op::Exit
        ) || matches!(op, Op::LoadImm64 { value, .. } if !matches!(value, bpfx_bytecode::Imm64::Value(_)));
        if let Some(taken) = through {
            // Kept pending on into the fall-through when the taken path does not read them.
            for r in regs(self.tracked & taken) {
                self.cancel(r);
            }
        } else if ends_block && self.tracked != 0 {
            self.end_all(live_out());
        }
    }

    /// How `op` would fold into a pending address, if it can.
    fn fold(&self, op: &Op) -> Option<Fold> {
        let Op::Alu {
            width: Width::W64,
            op,
            dst,
            src,
        } = *op
        else {
            return None;
        };
        if dst == Reg::R10 {
            return None;
        }
        let current = self.pending[dst.index()]
            .as_ref()
            .filter(|p| p.ndefs < MAX_DEFS);
        let own = Addr {
            base: dst,
            index: None,
            disp: 0,
        };
        match (op, src) {
            (AluOp::Mov, Operand::Reg(s)) if s != dst => Some(Fold::New(Addr {
                base: s,
                index: None,
                disp: 0,
            })),
            (AluOp::Add, Operand::Reg(s)) if s != dst => match current {
                Some(p) if p.expr.index.is_none() => Some(Fold::Extend(Addr {
                    index: Some(s),
                    ..p.expr
                })),
                Some(_) => None,
                None if self.pending[dst.index()].is_none() => Some(Fold::New(Addr {
                    index: Some(s),
                    ..own
                })),
                None => None,
            },
            (AluOp::Add | AluOp::Sub, Operand::Imm(i)) => {
                let delta = if op == AluOp::Add {
                    i
                } else {
                    i.checked_neg()?
                };
                if self.blinding && i8::try_from(delta).is_err() {
                    return None;
                }
                match current {
                    Some(p) => Some(Fold::Extend(Addr {
                        disp: disp(self.blinding, p.expr.disp, delta)?,
                        ..p.expr
                    })),
                    None if self.pending[dst.index()].is_none() => Some(Fold::New(Addr {
                        disp: disp(self.blinding, 0, delta)?,
                        ..own
                    })),
                    None => None,
                }
            }
            _ => None,
        }
    }

    /// Stops tracking every register: commits those not in `live`, cancels the rest.
    fn end_all(&mut self, live: Regs) {
        for r in regs(self.tracked) {
            if live & (1 << r) == 0 {
                self.commit(r);
            } else {
                self.cancel(r);
            }
        }
    }

    /// The register's value is needed after all: a chain of several instructions becomes one
    /// `lea` at the last of them (the host registers it reads are unchanged up to there), and
    /// the accesses keep their folded addresses; a single instruction stays as written.
    ///
    /// An expression that reads the register's own earlier value (`add r0, r10; sub r0, 13`
    /// is `[r0 + r10 - 13]`) no longer describes it once the `lea` has overwritten it: an
    /// access after the `lea` then goes through the register as written, which holds the
    /// address.
    fn cancel(&mut self, r: usize) {
        self.tracked &= !(1 << r);
        if let Some(p) = self.pending[r].take()
            && p.ndefs >= 2
        {
            let (&last, rest) = p.defs[..p.ndefs].split_last().expect("two or more");
            for &pc in rest {
                self.actions[pc.index()] = Action::Skip;
            }
            self.actions[last.index()] = Action::Lea(p.expr);
            let reads_own =
                p.expr.base.index() == r || p.expr.index.is_some_and(|i| i.index() == r);
            for &(pc, addr) in &p.uses[..p.nuses] {
                if !(reads_own && pc > last) {
                    self.actions[pc.index()] = Action::Access(addr);
                }
            }
        }
    }

    fn commit(&mut self, r: usize) {
        self.tracked &= !(1 << r);
        if let Some(p) = self.pending[r].take() {
            for &pc in &p.defs[..p.ndefs] {
                self.actions[pc.index()] = Action::Skip;
            }
            for &(pc, addr) in &p.uses[..p.nuses] {
                self.actions[pc.index()] = Action::Access(addr);
            }
        }
    }
}

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
const CALLEE_SAVED: Regs = 0b11_1100_0000;
/// Marks a summary whose callee may call a helper.
const HELPER: Regs = 1;
/// Beyond this many instructions visited per callee, every callee saves everything (bounds the
/// compile time of programs with many large functions).
const CALLEE_WORK: usize = 1 << 22;

impl Callees {
    /// The summaries of `prog`, whose plan is `plan`.
    pub(crate) fn new(prog: &Program, plan: &Plan) -> Callees {
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
            let mut entries = Vec::new();
            for (pc, op) in prog.iter() {
                if let Op::Call(CallTarget::Local { off }) = *op
                    && let Some(t) = pc.offset(off).filter(|t| t.index() < n)
                {
                    entries.push(t);
                }
            }
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
                let after = Some(Pc(pc.0 + 1));
                let next = match *op {
                    Op::Exit => [None, None],
                    Op::Ja { off, .. } => [pc.offset(off), None],
                    Op::Branch { off, .. } => [pc.offset(i32::from(off)), after],
                    Op::Call(CallTarget::Local { off }) => {
                        calls.extend(pc.offset(off));
                        [after, None]
                    }
                    Op::Call(CallTarget::Helper(_) | CallTarget::Register(_)) => {
                        regs |= HELPER;
                        [after, None]
                    }
                    _ => [Some(Pc(pc.0 + op.slots())), None],
                };
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
