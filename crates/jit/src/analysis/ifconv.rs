//! If-conversion: which conditional branches over one register move become a conditional move
//! (lowered by `emit/select.rs`).
//!
//! ```text
//!     jcc  +1                          cmp   lhs, rhs
//!     mov  dst, src          ──►       cmov!cc dst, src
//!
//!     jcc  T                           cmp   lhs, rhs
//!     mov  dst, src          ──►       cmov!cc dst, src
//!     ja   T                           jmp   T
//! ```
//! A branch the data decides (a binary search's `lo = mid + 1` or `hi = mid`) mispredicts
//! about half the time; the conditional move costs one cycle whichever way the data goes,
//! which is what compilers emit for the same C natively. Only 64-bit moves qualify (`mov32`
//! zero-extends even when a `cmov` does not move), only when nothing else jumps to the move or
//! the `ja`, only when both are still emitted as written (not folded away by the plan), and
//! not with blinding (an immediate source goes through a register the blinded compare may
//! need). With the budget charge the move joins the branch's block, and the lowering gives its
//! unit back when the branch would have skipped it ([`super::plan::Plan::absorbed`]); the
//! second form is left as written there (giving back two units costs more than the branch it
//! saves on the instruction count).

use super::plan::Action;
use bpfx_bytecode::{AluOp, Op, Pc, Program, Width};

/// Marks the branches to lower as conditional moves, and skips their moves. `target(pc)`:
/// some jump lands at `pc`; `into_jump`: convert the `jcc T; mov; ja T` form too.
pub(crate) fn convert(
    prog: &Program,
    target: impl Fn(Pc) -> bool,
    into_jump: bool,
    actions: &mut [Action],
) {
    let emitted = |actions: &[Action], pc: Pc| actions[pc.index()] == Action::Emit;
    // Each instruction with the two after it.
    let mut rest = prog.iter();
    let mut window = [rest.next(), rest.next(), rest.next()];
    while let [Some((pc, op)), after, then] = window {
        window = [after, then, rest.next()];
        let Op::Branch { off, .. } = *op else {
            continue;
        };
        let Some((
            mv,
            &Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst,
                src,
            },
        )) = after
        else {
            continue;
        };
        let over_move = off == 1;
        // `jcc T; mov; ja T`: both ways lead to T.
        let into_jump = into_jump
            && then.is_some_and(|(ja, next)| {
                matches!(next, Op::Ja { .. })
                    && next.jump_target(ja) == Some(pc.jump(i32::from(off)))
                    && !target(ja)
                    && emitted(actions, ja)
            });
        if (over_move || into_jump) && !target(mv) && emitted(actions, pc) && emitted(actions, mv) {
            actions[pc.index()] = Action::Select { dst, src };
            actions[mv.index()] = Action::Skip;
        }
    }
}
