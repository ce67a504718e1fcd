//! Branch fusion: `jcc +1; ja T` becomes one branch to T on the inverted condition
//! ([`Action::BranchNot`]).

use super::plan::{Action, TARGET};
use bpfx_bytecode::{Op, Program};

/// `jcc +1; ja T` → branch to T on the inverted condition, when nothing else enters the `ja`
/// and neither instruction was already planned otherwise.
pub(super) fn fuse(prog: &Program, target: &[u8], actions: &mut [Action]) {
    let mut branch = None;
    for (next, op) in prog.iter() {
        let pc = branch.take();
        match *op {
            Op::Branch { off: 1, .. } => branch = Some(next),
            Op::Ja { off, .. } => {
                let Some(pc) = pc else { continue };
                let to = next.jump(off);
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
