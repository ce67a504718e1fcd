//! Address folding: which `mov`/`add` instructions computing an address emit nothing, and
//! which accesses use the folded `[base + index + disp]` instead ([`Action::Access`],
//! [`Action::Lea`]).
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

use super::liveness::{Effects, Liveness, Regs, WRITABLE, bit, regs};
use super::plan::{Action, Addr};
use bpfx_bytecode::{AluOp, CallTarget, Op, Operand, Pc, Program, Reg, Width};

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

/// The actions of `prog` as the fold scan decides them (every instruction [`Action::Emit`]
/// but the folded ones), on the registers `live` before each; `is_target(i)`: something
/// other than the instruction before slot `i` may lead there.
/// `actions` is a buffer to fill (its contents are replaced).
pub(super) fn fold(
    prog: &Program,
    live: &Liveness,
    is_target: &impl Fn(usize) -> bool,
    blinding: bool,
    mut actions: Vec<Action>,
) -> Vec<Action> {
    let n = prog.len();
    actions.clear();
    actions.resize(n, Action::Emit);
    let mut scan = Scan {
        actions,
        pending: [None; 10],
        tracked: 0,
        blinding,
    };
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
                Some(live.live_in[pc.jump(i32::from(off)).index()])
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
    scan.actions
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
            Op::Ja { .. } | Op::Branch { .. } | Op::MayGoto { .. } | Op::Call(_) | Op::Exit
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
