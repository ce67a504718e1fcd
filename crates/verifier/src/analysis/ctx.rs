//! Contexts: the calling context of a state (the chain of call sites) and, in `Strict` mode,
//! the loop iteration it is in; where a state leaving one goes; loop latches, the start of
//! the next iteration and the snapshots that reject a loop whose state repeats.

use super::{Analysis, Held, R};
use crate::domain::{Merge, State};
use crate::error::VerifyErrorKind as K;
use bpfx_bytecode::Pc;

/// The id of a context: an index into [`Analysis::ctxs`], made only by [`Analysis::intern`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct CtxId(u32);

impl CtxId {
    pub(super) const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A context: a call (the call site that created it in its parent context), or one iteration
/// of a loop (`Strict` mode). The entry and callbacks have no parent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx {
    pub(super) parent: Option<CtxId>,
    pub(super) kind: CtxKind,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum CtxKind {
    /// The entry, a callback, or a local call made at `call_site` in the parent.
    Call { call_site: Pc },
    /// Iteration `iter` of the loop at `head`, entered in context `base`; `first` is the
    /// context of iteration 0 (it names the loop instance).
    Iter {
        head: Pc,
        iter: u32,
        base: CtxId,
        first: CtxId,
    },
}

/// What distinguishes the children of one context: contexts are interned by (parent, tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum CtxTag {
    /// A call made at this pc (the entry and callbacks: their own pc, with no parent).
    Call(Pc),
    /// Iteration 0 of the loop at this head.
    Enter(Pc),
    /// The next iteration of the loop at this head.
    Next(Pc),
}

/// Where a state flowing along an edge goes.
pub(super) enum Dest {
    /// Into this context at the target pc.
    Ctx(CtxId),
    /// Back to the head of the loop this iteration context runs: the next iteration.
    Latch(CtxId),
}

/// Iterations of a loop bounded by `may_goto` always explored exactly
/// ([`Analysis::may_goto_iteration`]): enough for the first few headers of a packet walk or
/// elements of an array to keep their exact offsets.
pub(super) const WIDEN_AFTER: u32 = 16;

/// The share of what is left of the instruction budget when an instance of a loop bounded
/// by `may_goto` starts (`1 / EXACT_SHARE` of it) that the instance may use exploring its
/// iterations exactly before its head widens: a loop that ends within it (`for (i = 0; i <
/// 2048 && can_loop; i++)`, whose counter clang tests with `!=`, which a widened bound does
/// not survive) keeps every exact proof, as the kernel's exploration does. Each further
/// instance of the same loop (entered again inside another loop) gets half the share of the
/// one before, so all of them together use at most twice the first one's share.
pub(super) const EXACT_SHARE: u64 = 16;

/// An instance of a loop bounded by `may_goto`, for its widening.
pub(super) struct MayGotoHead {
    /// The state at its head in the latest iteration processed there (kept from iteration
    /// `WIDEN_AFTER - 2` on).
    pub(super) base: Option<State>,
    /// How many times its head was widened.
    pub(super) rounds: u32,
    /// The processed-instruction count when its iteration 0 started.
    pub(super) start: u64,
    /// The instructions it may process exactly before it widens.
    pub(super) share: u64,
}

impl Analysis<'_> {
    pub(super) fn ctx_kind(&self, ctx: CtxId) -> CtxKind {
        self.ctxs[ctx.index()].kind
    }

    pub(super) fn intern(&mut self, parent: Option<CtxId>, tag: CtxTag, kind: CtxKind) -> CtxId {
        let n = CtxId(self.ctxs.len() as u32);
        *self.ctx_ids.entry((parent, tag)).or_insert_with(|| {
            self.ctxs.push(Ctx { parent, kind });
            n
        })
    }

    /// Counts a pending node in (`add`) or out of every loop instance enclosing `ctx`, and
    /// frees the snapshots of an instance left with none. A later arrival at a freed
    /// instance's head from outside starts its snapshots afresh; snapshots only let a
    /// repeating loop be rejected before the budget does it, so fewer of them is still sound.
    pub(super) fn hold(&mut self, ctx: CtxId, add: bool) {
        if !self.strict || self.loops.info.is_empty() {
            return;
        }
        let mut cur = Some(ctx);
        while let Some(ctx) = cur {
            let c = self.ctxs[ctx.index()];
            match c.kind {
                CtxKind::Iter { first, base, .. } => {
                    let f = first.index();
                    if self.live.len() <= f {
                        self.live.resize(f + 1, 0);
                    }
                    if add {
                        self.live[f] += 1;
                    } else {
                        self.live[f] -= 1;
                        if self.live[f] == 0 {
                            self.snapshots.remove(&first);
                            self.may_goto_heads.remove(&first);
                        }
                    }
                    cur = Some(base);
                }
                CtxKind::Call { .. } => cur = c.parent,
            }
        }
    }

    /// Where a state leaving `ctx` for `to` goes: out of every loop whose body `to` is not in,
    /// then into a new loop at its head, or around the current loop.
    pub(super) fn route(&mut self, ctx: CtxId, to: Pc) -> Dest {
        if !self.strict || self.loops.info.is_empty() {
            return Dest::Ctx(ctx);
        }
        let mut c = ctx;
        while let CtxKind::Iter { head, base, .. } = self.ctx_kind(c) {
            if self.loops.contains(head.0, to.0) {
                break;
            }
            c = base;
        }
        if !self.loops.is_head(to.0) {
            return Dest::Ctx(c);
        }
        // A head whose loop this call is iterating, in this context or one around it (bodies
        // need not nest: a path may reach it from inside a loop it overlaps): that loop's next
        // iteration. Without this, such a path would open a new instance of the loop inside
        // the other one, one level deeper at every turn.
        let mut a = c;
        while let CtxKind::Iter { head, base, .. } = self.ctx_kind(a) {
            if head == to {
                return Dest::Latch(a);
            }
            a = base;
        }
        let first = CtxId(self.ctxs.len() as u32);
        let id = self.intern(
            Some(c),
            CtxTag::Enter(to),
            CtxKind::Iter {
                head: to,
                iter: 0,
                base: c,
                first,
            },
        );
        Dest::Ctx(id)
    }

    /// Holds a state that went around the loop until every path of its iteration has.
    pub(super) fn latch(&mut self, ctx: CtxId, head: Pc, from: Pc, mut st: State) -> R<()> {
        let end = self.loops.info.get(&head.0).map_or(head, |i| Pc(i.end));
        match self.latches.get_mut(&(ctx, head)) {
            Some((old, _)) if old.depth() != st.depth() => {
                return Err(self.internal(from, "states of one context differ in depth"));
            }
            Some((old, _)) => {
                // Not processed yet (it waits for the iteration's other paths): the
                // rewrite needs no new processing.
                super::state::relate_packets(old, &mut st, &mut self.next_id);
                super::state::unify_maps(&self.cfg.maps, old, &mut st);
                old.join(&st);
            }
            None => {
                self.latches.insert((ctx, head), (st, from));
                self.push(end, head, ctx, Held::Latch);
            }
        }
        Ok(())
    }

    /// Starts the next iteration of the loop `ctx` runs, unless its state repeats.
    pub(super) fn next_iteration(&mut self, ctx: CtxId, head: Pc) -> R<()> {
        let Some((st, from)) = self.latches.remove(&(ctx, head)) else {
            return Ok(());
        };
        let CtxKind::Iter {
            iter, base, first, ..
        } = self.ctx_kind(ctx)
        else {
            return Err(self.internal(from, "a loop latch outside an iteration context"));
        };
        let may_goto = self.loops.info.get(&head.0).is_some_and(|i| i.may_goto);
        let st = if may_goto {
            match self.may_goto_iteration(first, head, iter, st) {
                Some(st) => st,
                None => return Ok(()),
            }
        } else {
            st
        };
        // An iteration whose state at the head an earlier iteration's covers, up to what no
        // path reads again (dead values are forgotten in both, as the kernel's loop check
        // compares states up to liveness), may repeat forever.
        let mut st = st;
        self.live_masks(ctx, head, st.depth());
        st.forget(&self.masks);
        if !may_goto
            && self
                .snapshots
                .get(&first)
                .is_some_and(|snaps| snaps.iter().any(|(k, old)| *k <= iter && st.le(old)))
        {
            let e = self.err(from, K::Loop(head));
            if let Some(log) = self.log.as_deref_mut() {
                log.push(e.to_string());
            }
            return Err(e);
        }
        let next = self.intern(
            Some(ctx),
            CtxTag::Next(head),
            CtxKind::Iter {
                head,
                iter: iter + 1,
                base,
                first,
            },
        );
        self.merge(next, head, st, false)
    }

    /// The state a loop bounded by `may_goto` ([`crate::cfg::LoopInfo::may_goto`]) starts its
    /// next iteration with, or `None` when an earlier iteration's state covers `st` (its
    /// future was or will be explored from there, and the run's `may_goto` counter, not the
    /// exploration, bounds how often the loop goes round): the kernel's pruning at a
    /// `may_goto` of a state within one explored there. Iterations are explored exactly up to
    /// [`WIDEN_AFTER`], and after that as long as the instance has used no more than its
    /// share of what was left of the budget when it started ([`EXACT_SHARE`]); from then on,
    /// the latch's state is widened with the head state of the iteration before
    /// ([`Merge::Widen`], [`Merge::Hard`] after [`super::HEAD_ROUNDS`] rounds), as `Checked`
    /// mode does at a loop head, so the states at the head grow to a fixpoint in a few
    /// iterations and the loop is done once one adds nothing.
    fn may_goto_iteration(
        &mut self,
        first: CtxId,
        head: Pc,
        iter: u32,
        mut st: State,
    ) -> Option<State> {
        let covered = |old: &State, st: &State, next_id: &mut u32| {
            let (mut old, mut st) = (old.clone(), st.clone());
            !super::state::relate_packets(&mut old, &mut st, next_id)
                && !old.merge_live(&st, Merge::Join, &[])
        };
        if let Some(snaps) = self.snapshots.get(&first) {
            for (k, old) in snaps {
                if *k <= iter && covered(old, &st, &mut self.next_id) {
                    if let Some(log) = self.log.as_deref_mut() {
                        log.push(format!(
                            "the loop at {head} repeats the state of its iteration {k}: pruned (may_goto bounds it)"
                        ));
                    }
                    return None;
                }
            }
        }
        let Some(MayGotoHead {
            base: Some(base),
            rounds,
            start,
            share,
        }) = self.may_goto_heads.get_mut(&first)
        else {
            return Some(st);
        };
        if iter + 1 < WIDEN_AFTER || (*rounds == 0 && self.processed - *start <= *share) {
            return Some(st);
        }
        let mut w = base.clone();
        super::state::unify_maps(&self.cfg.maps, &w, &mut st);
        let rewrote = super::state::relate_packets(&mut w, &mut st, &mut self.next_id);
        let how = if *rounds >= super::HEAD_ROUNDS {
            Merge::Hard
        } else {
            Merge::Widen
        };
        *rounds += 1;
        let changed = w.merge_live(&st, how, &[]) | rewrote;
        if let Some(log) = self.log.as_deref_mut() {
            log.push(if changed {
                format!("the loop at {head} (bounded by may_goto) widened at iteration {}", iter + 1)
            } else {
                format!("the loop at {head} (bounded by may_goto) reached its fixpoint at iteration {iter}")
            });
        }
        changed.then_some(w)
    }

    /// The head of the innermost loop `ctx` is iterating, if any.
    pub(super) fn loop_of(&self, ctx: CtxId) -> Option<Pc> {
        let mut cur = Some(ctx);
        while let Some(ctx) = cur {
            match self.ctx_kind(ctx) {
                CtxKind::Iter { head, .. } => return Some(head),
                CtxKind::Call { .. } => cur = self.ctxs[ctx.index()].parent,
            }
        }
        None
    }

    /// The call context `ctx` runs in (leaving the iterations of any loops inside it behind),
    /// with the pc of the call that made it.
    pub(super) fn call_of(&self, ctx: CtxId) -> (CtxId, Pc) {
        let mut call = ctx;
        loop {
            match self.ctx_kind(call) {
                CtxKind::Iter { base, .. } => call = base,
                CtxKind::Call { call_site } => return (call, call_site),
            }
        }
    }

    /// The parent of a context.
    pub(super) fn parent(&self, ctx: CtxId) -> Option<CtxId> {
        self.ctxs[ctx.index()].parent
    }
}
