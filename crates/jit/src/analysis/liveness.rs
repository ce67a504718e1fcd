//! Register liveness: the usual backward dataflow over the whole program, with conservative
//! summaries at calls (a local call reads every register; its callee's `exit` reads r0–r5)
//! and nothing live after a trap: registers are not part of a trapped run's outcome. Also the
//! register sets and per-instruction effects the other analyses share.

use super::plan::BACK;
use bpfx_bytecode::{AluOp, AtomicOp, CallTarget, Op, Operand, Pc, Reg, RegSet, Successors};

/// A set of eBPF registers, bit `i` for `ri`.
pub(super) type Regs = u16;

pub(super) fn bit(r: Reg) -> Regs {
    1 << r.index()
}

/// The registers of a set, lowest first, as indices.
pub(super) fn regs(mut set: Regs) -> impl Iterator<Item = usize> {
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
pub(super) const ARGS: Regs = RegSet::ARGS.bits();
/// r0–r9 (r10 is never written).
pub(super) const WRITABLE: Regs = RegSet::CALLER_SAVED.union(RegSet::CALLEE_SAVED).bits();

/// What an instruction does to registers.
pub(super) struct Effects {
    /// Read before anything is written.
    pub(super) reads: Regs,
    /// Certainly overwritten.
    pub(super) kills: Regs,
    /// Possibly written (a superset of `kills`).
    pub(super) clobbers: Regs,
}

/// The effects of `op` in a program without local calls: with them, an `exit` also reads
/// r1–r5 (a callee's flow back to its caller), which [`super::plan::Plan::new`] adds.
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
        Op::Ja { .. } | Op::MayGoto { .. } | Op::Call(CallTarget::Kfunc(_)) => (0, 0),
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

/// Registers live before each instruction.
pub(super) struct Liveness {
    /// Per slot, and one more slot (always empty) for "no successor".
    pub(super) live_in: Vec<Regs>,
    /// Per slot: the effects and successors of the instruction starting there.
    pub(super) nodes: Vec<Node>,
}

/// An instruction's effects on registers and its successors, for the dataflow.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node {
    pub(super) reads: Regs,
    pub(super) kills: Regs,
    /// Slots of the successors; the program's length for none.
    pub(super) succ: [u32; 2],
}

impl Node {
    /// The node of `op`, whose successors are `succ`, in a program of `n` slots, as if it had
    /// no local calls (see
    /// [`effects`]).
    pub(super) fn new(op: &Op, succ: Successors, n: usize) -> Node {
        let none = n as u32;
        let e = effects(op);
        let inside = |t: Option<Pc>| t.filter(|t| t.index() < n).map_or(none, |t| t.0);
        let succ = match *op {
            // A kfunc call traps: nothing runs after it.
            Op::Call(CallTarget::Kfunc(_)) => [none, none],
            _ => [inside(succ.fall), inside(succ.jump)],
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
    /// `live_in` is a buffer to fill (its contents are replaced).
    pub(super) fn new(
        nodes: Vec<Node>,
        target: &[u8],
        mut loops: Vec<(Pc, Pc)>,
        mut live_in: Vec<Regs>,
    ) -> Liveness {
        let n = nodes.len();
        live_in.clear();
        live_in.resize(n + 1, 0);
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
    pub(super) fn live_out(&self, node: Node) -> Regs {
        self.live_in[node.succ[0] as usize] | self.live_in[node.succ[1] as usize]
    }
}
