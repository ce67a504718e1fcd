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
//! Merging is off with Spectre hardening (a guard there also masks its own address). With the
//! budget charge, a run may span several basic blocks: the fallback charges each block that
//! starts after the run's first instruction (the main copy charged the first before the
//! merged guard). A block's slow path never reaches the main copy's unguarded members: it is
//! entered with less budget than its block needs, so it traps before the block ends
//! (`emit/budget.rs`).

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

/// The groups of a program, and the accesses their guards cover. Most programs have few or
/// none, so both lists are sparse and searched.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    /// The groups, by their first pc.
    groups: Vec<Group>,
    /// The accesses covered by a group's guard, increasing.
    covered: Vec<Pc>,
}

/// A group being collected.
struct Open {
    group: Group,
    lo: i64,
    hi: i64,
    /// Where its members start in [`Groups::covered`].
    members: usize,
}

impl Groups {
    /// Groups the accesses of `prog` for which `guarded(pc)` says a guard is needed, following
    /// the addresses `plan` folded. No group runs across a pc where
    /// `breaks(pc)` (the first instruction after a versioned loop, which its fast copy reaches
    /// without passing the main copy's guards).
    pub(crate) fn new(
        prog: &Program,
        plan: &Plan,
        breaks: impl Fn(Pc) -> bool,
        guarded: impl Fn(Pc) -> bool,
    ) -> Groups {
        let mut groups = Groups {
            groups: Vec::with_capacity(8),
            covered: Vec::with_capacity(16),
        };
        let mut open: Option<Open> = None;
        for (pc, op) in prog.iter() {
            if open.is_none() && !matches!(op, Op::Load { .. } | Op::Store { .. }) {
                // Nothing to close, nothing to start.
                continue;
            }
            if plan.is_target(pc) || breaks(pc) {
                groups.close(open.take());
            }
            let action = plan.action(pc);
            let access = match *op {
                Op::Load {
                    size, base, off, ..
                }
                | Op::Store {
                    size, base, off, ..
                } => match action {
                    Action::Access(a) => Some((a, size.bytes())),
                    Action::Emit => Some((Addr::plain(base, off), size.bytes())),
                    _ => None,
                },
                _ => None,
            };
            if let Some((addr, size)) = access.filter(|_| guarded(pc)) {
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
                        members: groups.covered.len(),
                    });
                }
                groups.covered.push(pc);
            }
            // Control leaves the run for good at a jump, call or exit (a fused branch's `ja`,
            // skipped, is not one); a conditional branch may leave it early, which only means
            // that some covered accesses do not happen.
            let ends_run =
                action != Action::Skip && matches!(op, Op::Ja { .. } | Op::Call(_) | Op::Exit);
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

    /// Keeps the group `open` if it has more than one member, and drops its one member
    /// otherwise.
    fn close(&mut self, open: Option<Open>) {
        let Some(g) = open else { return };
        if self.covered.len() - g.members > 1 {
            self.groups.push(g.group);
        } else {
            self.covered.truncate(g.members);
        }
    }

    /// The group whose merged guard goes before the access at `pc`, for a caller that asks
    /// in increasing pc order with `next` (from 0) kept between calls.
    pub(crate) fn lead(&self, pc: Pc, next: &mut usize) -> Option<Group> {
        let group = self.groups.get(*next).copied().filter(|g| g.first == pc)?;
        *next += 1;
        Some(group)
    }

    /// The group whose merged guard covers the access at `pc`.
    pub(crate) fn covering(&self, pc: Pc) -> Option<Group> {
        if !self.covered(pc) {
            return None;
        }
        let k = self.groups.partition_point(|g| g.first <= pc);
        k.checked_sub(1).map(|k| self.groups[k])
    }

    /// How many merged guards there are.
    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }

    /// How many slots the merged runs span, first to last access: at most the instructions
    /// their fallbacks copy.
    pub(crate) fn slots(&self) -> usize {
        self.groups
            .iter()
            .map(|g| (g.last.0 - g.first.0 + 1) as usize)
            .sum()
    }

    /// Whether a merged guard goes before the instruction at `pc`.
    pub(crate) fn is_lead(&self, pc: Pc) -> bool {
        self.groups.binary_search_by_key(&pc, |g| g.first).is_ok()
    }

    /// Whether the access at `pc` is covered by a merged guard.
    pub(crate) fn covered(&self, pc: Pc) -> bool {
        self.covered.binary_search(&pc).is_ok()
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
        true
    }
}
