//! Guards get one home: for every load, store and atomic, whether its lowering checks the
//! address at run time, and when it does not, why. [`GuardPlan::of`] answers for an access in
//! a given copy of the code ([`CopyKind`]); the lowering (`emit/mem.rs`) and the rel8 estimate
//! (`emit/branch.rs`) ask it, and nothing else decides.
//!
//! | verdict | where | decided here by |
//! |---|---|---|
//! | [`Guard::Elided`] ([`Elision::FrameConstant`]) | every copy | r10 plus a constant inside the current frame |
//! | [`Guard::Elided`] ([`Elision::Proven`]) | every copy | the verifier's proof ([`bpfx_verifier::AccessFact::proven`]), not under Spectre hardening |
//! | [`Guard::Merged`] | the main copy | one check for a run of accesses ([`super::group`]) |
//! | [`Guard::Versioned`] | a versioned loop's fast copy | one check on the loop's entry ([`super::loops`]) |
//! | [`Guard::Inline`] | everywhere else | |
//!
//! The per-access verdict is made once, on the address the plan folded ([`super::plan`]), and
//! the merged groups and versioned loops are built on it: a group or a loop covers only
//! accesses that would otherwise be guarded inline.

use super::CopyKind;
use super::group::{Group, Groups};
use super::loops::Loops;
use super::plan::{Action, Addr, Plan};
use crate::JitOptions;
use crate::abi::FRAME;
use bpfx_bytecode::{AccessKind, Cfg, Pc, Reg};
use bpfx_verifier::VerifiedProgram;

/// Why an access needs no run-time check in any copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elision {
    /// r10 plus a constant inside the current frame: r10 cannot be written (the decoder rejects
    /// it), so the address is always in the active frame (also when the constant was folded
    /// from an `add`).
    FrameConstant,
    /// The verifier proved the access in bounds on every path (the folded address is the value
    /// it reasoned about).
    Proven,
}

/// What the lowering of one access does about its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Nothing: proven in bounds at compile time.
    Elided(Elision),
    /// A check of its own, inline before the access.
    Inline,
    /// Nothing of its own: the merged check before its group's first access covers it.
    Merged(Group),
    /// Nothing: versioned loop `i`'s entry check covers it in the loop's fast copy.
    Versioned(usize),
}

/// One access's verdict before merging and versioning (see [`GuardPlan::own`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Own {
    /// Not an access.
    #[default]
    None,
    Elided(Elision),
    Inline,
}

/// What the compiler did about the bounds of a program's accesses
/// ([`JitProgram::stats`](crate::JitProgram::stats)): counts over its loads, stores and
/// atomics, and the merged guards and versioned loops that stand for their guards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompileStats {
    /// Loads, stores and atomics.
    pub accesses: u32,
    /// Accesses with no guard in any copy because r10 plus a constant stays in the frame.
    pub elided_frame: u32,
    /// Accesses with no guard in any copy because the verifier proved them in bounds.
    pub elided_proven: u32,
    /// Accesses checked at run time in the main code, one guard each.
    pub inline: u32,
    /// Merged guards (one check for a group of accesses).
    pub merged_groups: u32,
    /// Accesses covered by a merged guard in the main code.
    pub merged_accesses: u32,
    /// Versioned loops (an entry check, then a copy of the loop without their guards).
    pub versioned_loops: u32,
    /// Accesses left unguarded in a versioned loop's fast copy.
    pub versioned_accesses: u32,
    /// Versioned loops charged the budget once at their entry check for all their iterations
    /// (code with the budget charge only; `docs/jit-x86-64.md`, "Budget").
    pub prepaid_loops: u32,
}

/// The guard verdicts of one program.
#[derive(Debug, Default)]
pub(crate) struct GuardPlan {
    /// Per slot: the verdict of the access there that holds in every copy.
    own: Vec<Own>,
    /// Runs of accesses sharing one check in the main copy.
    pub(crate) groups: Groups,
    /// Loops whose fast copy runs without the guards their entry check covers.
    pub(crate) loops: Loops,
}

impl GuardPlan {
    /// Decides every access of the program of `cfg` (addresses as `plan` folded them), with the verifier's
    /// `facts` when it has them. Versioning is off with Spectre hardening and blinding, merging
    /// with Spectre hardening (see the modules); both stay on with the budget charge.
    pub(crate) fn new(
        cfg: &Cfg,
        plan: &Plan,
        facts: Option<&VerifiedProgram>,
        opts: &JitOptions,
    ) -> GuardPlan {
        let prog = cfg.program();
        let mut own = vec![Own::None; prog.len()];
        for (pc, op) in prog.iter() {
            let Some(m) = op.mem_access() else { continue };
            // Loads and stores go through the address the plan folded, if it did.
            let addr = match (m.kind, plan.action(pc)) {
                (AccessKind::Load | AccessKind::Store, Action::Access(a)) => a,
                _ => Addr::plain(m.base, m.off),
            };
            own[pc.index()] = decide(pc, addr, m.size.bytes(), facts, opts);
        }
        let inline = |pc: Pc| own.get(pc.index()) == Some(&Own::Inline);
        // Versioned loops and merged groups stand only for inline guards: with none (every
        // access proven or in the frame), neither analysis runs.
        let any_inline = own.contains(&Own::Inline);
        let loops = if !opts.spectre && !opts.blinding && any_inline {
            Loops::new(cfg, plan, inline)
        } else {
            Loops::default()
        };
        let groups = if !opts.spectre && any_inline {
            Groups::new(prog, plan, |pc| loops.is_exit(pc), inline)
        } else {
            Groups::default()
        };
        GuardPlan { own, groups, loops }
    }

    /// The verdict for the access at `pc` in a copy of `kind`.
    pub(crate) fn of(&self, pc: Pc, kind: CopyKind) -> Guard {
        match kind {
            CopyKind::Fast(i) if self.loops.loops.get(i).is_some_and(|l| l.unguarded(pc)) => {
                return Guard::Versioned(i);
            }
            CopyKind::Main => {
                if let Some(g) = self.groups.covering(pc) {
                    return Guard::Merged(g);
                }
            }
            _ => {}
        }
        match self.own.get(pc.index()) {
            Some(&Own::Elided(why)) => Guard::Elided(why),
            _ => Guard::Inline,
        }
    }

    /// What the plan decided, counted.
    pub(crate) fn stats(&self) -> CompileStats {
        let mut s = CompileStats::default();
        for (i, own) in self.own.iter().enumerate() {
            match *own {
                Own::None => continue,
                Own::Elided(Elision::FrameConstant) => s.elided_frame += 1,
                Own::Elided(Elision::Proven) => s.elided_proven += 1,
                Own::Inline if self.groups.covered(Pc(i as u32)) => s.merged_accesses += 1,
                Own::Inline => s.inline += 1,
            }
            s.accesses += 1;
        }
        s.merged_groups = self.groups.len() as u32;
        s.versioned_loops = self.loops.loops.len() as u32;
        s.versioned_accesses = self
            .loops
            .loops
            .iter()
            .map(|l| l.unguarded.len() as u32)
            .sum();
        s
    }
}

/// The verdict that holds in every copy for the access of `size` bytes at `addr` (at `pc`).
fn decide(
    pc: Pc,
    addr: Addr,
    size: u32,
    facts: Option<&VerifiedProgram>,
    opts: &JitOptions,
) -> Own {
    let frame_constant = addr.base == Reg::R10
        && addr.index.is_none()
        && (-FRAME..=-(size as i32)).contains(&addr.disp);
    if frame_constant {
        return Own::Elided(Elision::FrameConstant);
    }
    // A proof may rest on the program's own bounds checks, which the CPU can mispredict: with
    // Spectre hardening only the branch-free frame-constant rule drops a guard.
    let proven = !opts.spectre
        && facts
            .and_then(|f| f.access(pc))
            .is_some_and(|fact| fact.proven);
    if proven {
        Own::Elided(Elision::Proven)
    } else {
        Own::Inline
    }
}
