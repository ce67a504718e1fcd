//! Guard merging: one inline check for a run of accesses off the same address registers.
//!
//! A run of instructions that only falls through (no jump, call or exit; a conditional branch
//! may leave it early; nothing jumps into its middle) in which several guarded loads and stores
//! address `[base + index + disp]` with the same `base` and `index`, neither written along the
//! run, touches at most the span `[base + index + lo, base + index + hi)`. One input guard on that span, rounded up to a
//! power of two, before the run's first access proves them all:
//! ```text
//!     lea  r10, [base + index + lo]
//!     sub  r10, [r12 + input_base]
//!     cmp  r10, [r12 + input_ok[span]]
//!     jae  fallback                  ; a copy of the run with a guard per access
//!     <the run, its accesses unguarded>
//! resume:
//! ```
//! When the span is not wholly inside the input (an access that is out of bounds, in the
//! stack or in a shared block, one that a rounded-up span merely pushes past the end, or one
//! that a branch would have skipped), the fallback runs the same instructions with every guard
//! of its own, in program order, and continues at `resume` (a branch in it jumps to its target
//! as in the run): traps happen at the same pc, with the same memory, as without merging. No
//! member's address can wrap once the span passed: each lies inside it.
//!
//! Merging is off with Spectre hardening (a guard there also masks its own address) and with
//! the budget charge (whose slow paths re-lower whole blocks).

use super::plan::{Action, Addr, Plan};
use bpfx_bytecode::{Op, Pc, Program};

/// The largest span one merged guard covers (the largest `input_ok` entry).
pub(crate) const MAX_SPAN: u32 = 128;

/// A run of accesses one guard covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    /// The first guarded access (where the merged guard goes).
    pub(crate) first: Pc,
    /// The last guarded access.
    pub(crate) last: Pc,
    /// The span's start: the common registers and the lowest displacement.
    pub(crate) start: Addr,
    /// The span's length rounded up to a power of two, at most [`MAX_SPAN`].
    pub(crate) size: u32,
}

/// Per pc: whether an access's guard is merged into a group's, and where groups start.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    /// The group starting at each pc, if any.
    lead: Vec<Option<Group>>,
    /// Whether the access at each pc is covered by its group's guard.
    covered: Vec<bool>,
}

/// A group being collected.
struct Open {
    group: Group,
    lo: i64,
    hi: i64,
    members: Vec<Pc>,
}

impl Groups {
    /// Groups the accesses of `prog` for which `guarded(pc, addr, size)` says a guard is
    /// needed, following the addresses `plan` folded. No group runs across a pc where
    /// `breaks(pc)` (the first instruction after a versioned loop, which its fast copy reaches
    /// without passing the main copy's guards).
    pub(crate) fn new(
        prog: &Program,
        plan: &Plan,
        breaks: impl Fn(Pc) -> bool,
        guarded: impl Fn(Pc, Addr, u32) -> bool,
    ) -> Groups {
        let n = prog.len();
        let mut groups = Groups {
            lead: vec![None; n],
            covered: vec![false; n],
        };
        let mut open: Option<Open> = None;
        for (pc, op) in prog.iter() {
            if plan.is_target(pc) || breaks(pc) {
                groups.close(open.take());
            }
            let access = match (*op, plan.action(pc)) {
                (_, Action::Skip) => None,
                (Op::Load { size, .. } | Op::Store { size, .. }, Action::Access(a)) => {
                    Some((a, size.bytes()))
                }
                (
                    Op::Load {
                        size, base, off, ..
                    }
                    | Op::Store {
                        size, base, off, ..
                    },
                    Action::Emit,
                ) => Some((Addr::plain(base, off), size.bytes())),
                _ => None,
            };
            if let Some((addr, size)) = access.filter(|&(a, s)| guarded(pc, a, s)) {
                let joined = open.as_mut().is_some_and(|g| g.join(pc, addr, size));
                if !joined {
                    groups.close(open.take());
                    open = Some(Open {
                        group: Group {
                            first: pc,
                            last: pc,
                            start: addr,
                            size,
                        },
                        lo: i64::from(addr.disp),
                        hi: i64::from(addr.disp) + i64::from(size),
                        members: vec![pc],
                    });
                }
            }
            // Control leaves the run for good at a jump, call or exit (a fused branch's `ja`,
            // skipped, is not one); a conditional branch may leave it early, which only means
            // that some covered accesses do not happen.
            let ends_run = plan.action(pc) != Action::Skip
                && matches!(op, Op::Ja { .. } | Op::Call(_) | Op::Exit);
            let clobbers = op.written_reg().is_some_and(|r| {
                open.as_ref()
                    .is_some_and(|g| g.group.start.base == r || g.group.start.index == Some(r))
            });
            if ends_run || clobbers {
                groups.close(open.take());
            }
        }
        groups.close(open);
        groups
    }

    fn close(&mut self, open: Option<Open>) {
        let Some(g) = open.filter(|g| g.members.len() > 1) else {
            return;
        };
        for pc in &g.members {
            self.covered[pc.index()] = true;
        }
        self.lead[g.group.first.index()] = Some(g.group);
    }

    /// The group whose merged guard goes before the access at `pc`.
    pub(crate) fn lead(&self, pc: Pc) -> Option<Group> {
        self.lead.get(pc.index()).copied().flatten()
    }

    /// Whether the access at `pc` is covered by a merged guard.
    pub(crate) fn covered(&self, pc: Pc) -> bool {
        self.covered.get(pc.index()).copied().unwrap_or(false)
    }
}

impl Open {
    /// Adds the access at `pc` if it shares the group's registers and keeps the span within
    /// [`MAX_SPAN`].
    fn join(&mut self, pc: Pc, addr: Addr, size: u32) -> bool {
        if addr.base != self.group.start.base || addr.index != self.group.start.index {
            return false;
        }
        let lo = self.lo.min(i64::from(addr.disp));
        let hi = self.hi.max(i64::from(addr.disp) + i64::from(size));
        if hi - lo > i64::from(MAX_SPAN) {
            return false;
        }
        self.lo = lo;
        self.hi = hi;
        self.group.last = pc;
        self.group.start.disp = lo as i32;
        self.group.size = ((hi - lo) as u32).next_power_of_two();
        self.members.push(pc);
        true
    }
}
