//! Basic blocks for the per-block instruction budget.
//!
//! A block starts at every leader of the program's [`Cfg`] (pc 0 and every function entry,
//! every jump and branch target, after every jump, branch, local call, callback-taking helper
//! call and `exit`), after every
//! always-trapping instruction, and after [`MAX_BLOCK`] instructions. Inside a block control runs straight through, unless an instruction faults (or
//! a legacy packet load halts), which ends the whole run: so charging a block's length on entry
//! is exact once every such exit refunds the instructions it skipped ([`Blocks::rest`]).
//!
//! One exception: the instruction a fused or if-converted branch absorbs
//! ([`super::plan::Plan::absorbed`]: the `ja` of `jcc +1; ja T` lowered as one inverted branch,
//! the move of `jcc +1; mov` lowered as a conditional move) stays in its branch's block, which
//! may then hold `MAX_BLOCK + 1` instructions. The block's charge pays for it too, and the
//! lowering gives that unit back where the branch skips it (`emit/mod.rs`, `emit/select.rs`).

use bpfx_bytecode::{CallTarget, Cfg, Imm64, Op, Pc};

/// Longest block, in instructions: bounds the charge (an 8-bit value, not worth blinding) and
/// the refunds.
pub(crate) const MAX_BLOCK: u32 = 64;

/// Block structure of one program, per slot.
#[derive(Debug, Default)]
pub(crate) struct Blocks {
    /// Per slot: the number of instructions in the block starting here (0: not a block start).
    len: Vec<u32>,
    /// Per slot: instructions after this one in its block.
    rest: Vec<u32>,
}

impl Blocks {
    /// The blocks of the program of `cfg`, whose callback-taking helper calls are at
    /// `callbacks` (each ends its block: the callback's instructions are charged between it
    /// and the next instruction), and where `absorbed(pc)` says the instruction at `pc`
    /// belongs to the fused or if-converted branch before it (it joins the branch's block).
    pub(crate) fn new(cfg: &Cfg, callbacks: &[(Pc, Pc)], absorbed: impl Fn(Pc) -> bool) -> Blocks {
        let prog = cfg.program();
        let n = prog.len();
        // The program's block leaders, and after each instruction that always traps.
        let mut leader: Vec<bool> = (0..n).map(|i| cfg.is_leader(Pc(i as u32))).collect();
        for &(site, _) in callbacks {
            if let Some(next) = leader.get_mut(site.index() + 1) {
                *next = true;
            }
        }
        for (pc, op) in prog.iter() {
            let traps = match *op {
                Op::Call(CallTarget::Kfunc(_)) => true,
                Op::LoadImm64 { value, .. } => {
                    !matches!(value, Imm64::Value(_) | Imm64::Func { .. })
                }
                _ => false,
            };
            if let Some(next) = leader.get_mut(pc.index() + op.slots() as usize)
                && traps
            {
                *next = true;
            }
        }
        let mut b = Blocks {
            len: vec![0; n],
            rest: vec![0; n],
        };
        let mut members: Vec<Pc> = Vec::new();
        let flush = |b: &mut Blocks, members: &mut Vec<Pc>| {
            let count = members.len() as u32;
            if let Some(first) = members.first().copied() {
                b.len[first.index()] = count;
                for (i, pc) in members.iter().enumerate() {
                    b.rest[pc.index()] = count - 1 - i as u32;
                }
            }
            members.clear();
        };
        for (pc, _) in prog.iter() {
            if absorbed(pc) {
                // Nothing jumps to it (or it would not be absorbed): it follows its branch.
                members.push(pc);
                continue;
            }
            if leader[pc.index()] || members.len() as u32 >= MAX_BLOCK {
                flush(&mut b, &mut members);
            }
            members.push(pc);
        }
        flush(&mut b, &mut members);
        b
    }

    /// The length of the block starting at `pc`, if one does.
    pub(crate) fn starting_at(&self, pc: Pc) -> Option<u32> {
        self.len.get(pc.index()).copied().filter(|&n| n > 0)
    }

    /// Instructions after `pc` in its block: what a fault at `pc` gives back.
    pub(crate) fn rest(&self, pc: Pc) -> u32 {
        self.rest.get(pc.index()).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_bytecode::assemble;

    fn blocks(text: &str) -> Blocks {
        let prog =
            bpfx_bytecode::Program::decode(assemble(text).expect("assembles")).expect("decodes");
        Blocks::new(&Cfg::new(&prog), &[], |_| false)
    }

    #[test]
    fn leaders_are_targets_and_followers_of_control_transfers() {
        let b = blocks(
            "mov r0, 1
             lddw r1, 5
             jeq r0, 1, +1
             add r0, 1
             call 5
             exit",
        );
        // pc 0..3 (lddw is two slots), the branch ends the block; its target (5) starts one,
        // and so does its fall-through (4).
        assert_eq!(b.starting_at(Pc(0)), Some(3));
        assert_eq!(b.starting_at(Pc(4)), Some(1));
        assert_eq!(
            b.starting_at(Pc(5)),
            Some(2),
            "a helper call does not end a block"
        );
        assert_eq!(b.rest(Pc(0)), 2);
        assert_eq!(b.rest(Pc(1)), 1);
        assert_eq!(b.rest(Pc(3)), 0);
        assert_eq!(b.rest(Pc(5)), 1);
    }

    #[test]
    fn long_straight_lines_are_split() {
        let text = "mov r0, 1\n".repeat(150) + "exit";
        let b = blocks(&text);
        assert_eq!(b.starting_at(Pc(0)), Some(MAX_BLOCK));
        assert_eq!(b.starting_at(Pc(64)), Some(MAX_BLOCK));
        assert_eq!(b.starting_at(Pc(128)), Some(23));
        assert_eq!(b.rest(Pc(128)), 22);
        assert_eq!(b.rest(Pc(63)), 0);
    }
}
