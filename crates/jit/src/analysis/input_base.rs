//! Which registers hold the input's address: a forward dataflow over the program, so that a
//! guard through such a register compares the rest of the address with the input's length
//! directly.
//!
//! At entry r1 is the input's address (`RunCtx::input_base`). A 64-bit `mov` copies the fact;
//! so do a spill to the frame (`stxdw [r10+off], r`) and the fill that reads it back (compilers
//! keep the input pointer in a stack slot across a loop); any other write to a register or
//! slot ends it; a store or atomic through any other register may hit the frame and ends it for
//! every slot; a call ends it for r0–r5 (r6–r9 come back as they were) and for every slot; a
//! local function starts knowing nothing (its r1 is an argument). Where paths meet, a register
//! or slot keeps the fact only when it holds it on every path in.
//!
//! A guard of `[base + index + disp]` with `base` holding the input's address then computes
//! the offset into the input as `index + disp` instead of `base + index + disp - input_base`:
//! the same value (both wrap the same way), one instruction and one load fewer:
//! ```text
//!     lea  r10, [index + disp]        ; was: lea r10, [base + index + disp]
//!     cmp  r10, [r12 + input_ok[k]]   ;      sub r10, [r12 + input_base]
//!     jae  cold                       ;      cmp r10, [r12 + input_ok[k]]; jae cold
//! ```

use bpfx_bytecode::{AluOp, Cfg, Op, Operand, Pc, Reg, RegSet, Successors, Width};

/// The registers (bit `i` for `ri`) and the 8-byte frame slots (bit `k` for `[r10 - 8(k+1)]`)
/// holding the input's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Holders {
    regs: u16,
    slots: u64,
}

impl Holders {
    /// Everything (the identity of the meet, for slots not reached yet).
    const ALL: Holders = Holders {
        regs: u16::MAX,
        slots: u64::MAX,
    };
    const NONE: Holders = Holders { regs: 0, slots: 0 };

    fn meet(self, o: Holders) -> Holders {
        Holders {
            regs: self.regs & o.regs,
            slots: self.slots & o.slots,
        }
    }
}

/// Per slot of the program: what holds the input's address before the instruction there.
#[derive(Debug, Default)]
pub(crate) struct InputRegs {
    before: Vec<Holders>,
}

/// Forward passes the dataflow makes at most (bounds the compile time of deeply nested loops).
const MAX_PASSES: u32 = 16;

/// No jump back changed its target in a pass.
const NO_PC: u32 = u32::MAX;

/// r0–r5, which a call clobbers.
const CALL_CLOBBERS: u16 = RegSet::CALLER_SAVED.bits();

/// The frame slot an 8-byte access at `r10 + off` covers exactly, if it is one.
fn slot(off: i16) -> Option<u32> {
    let off = i32::from(off);
    ((-512..=-8).contains(&off) && off % 8 == 0).then(|| (-off / 8 - 1) as u32)
}

/// The frame slots an access of `size` bytes at `r10 + off` touches: slot `k` holds the bytes
/// `[-8(k+1), -8k)`, so bytes `lo..hi` below the top touch slots `-hi / 8` to `(-lo - 1) / 8`.
fn slots_touched(off: i16, size: u32) -> u64 {
    let lo = i32::from(off).max(-512);
    let hi = (i32::from(off) + size as i32).min(0);
    if lo >= hi {
        return 0;
    }
    let (first, last) = (-hi / 8, (-lo - 1) / 8);
    // Both within 0..=63: bytes -512..0 are the 64 slots.
    let upto = if last == 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    upto & !((1u64 << first) - 1)
}

impl InputRegs {
    pub(crate) fn new(cfg: &Cfg) -> InputRegs {
        let prog = cfg.program();
        let n = prog.len();
        let mut before = entry_states(cfg);
        if n == 0 {
            return InputRegs { before };
        }
        // Forward passes in pc order. A pass meets each successor before reaching it, except
        // at a jump back, whose target it has passed already: only a change there needs
        // another pass. Straight and forward-branching code settles in one pass, each level
        // of loops in one more. Past MAX_PASSES (deeply nested loops) nothing is known, which
        // only costs the shorter guards. A pass after the first starts at the earliest target
        // of a jump back that changed: nothing before it changed since the last pass visited
        // it, so the instructions there would meet what they met already (the same states,
        // pass for pass, as passes over the whole program).
        let meet = |at: Pc, set: Holders, before: &mut [Holders]| {
            before.get_mut(at.index()).is_some_and(|b| {
                let m = b.meet(set);
                let changed = m != *b;
                *b = m;
                changed
            })
        };
        let mut passes = 0;
        let mut from = 0;
        loop {
            passes += 1;
            if passes > MAX_PASSES {
                before.fill(Holders::NONE);
                break;
            }
            let mut again = NO_PC;
            for i in from..n as u32 {
                let pc = Pc(i);
                let Some(op) = prog.get(pc) else { continue };
                let out = transfer(op, before[pc.index()]);
                // The successors of the instruction in hand (what `Cfg::successors` looks up).
                let succ = Successors::of(op, pc);
                if let Some(t) = succ.jump
                    && meet(t, out, &mut before)
                    && t <= pc
                {
                    again = again.min(t.0);
                }
                if let Some(next) = succ.fall {
                    meet(next, out, &mut before);
                }
            }
            if again == NO_PC {
                break;
            }
            from = again;
        }
        InputRegs { before }
    }

    /// Whether `r` holds the input's address before the instruction at `pc`.
    pub(crate) fn holds(&self, pc: Pc, r: Reg) -> bool {
        self.before
            .get(pc.index())
            .is_some_and(|&h| h != Holders::ALL && h.regs & (1 << r.index()) != 0)
    }
}

/// What holds the input's address after `op`, from what held it before.
fn transfer(op: &Op, h: Holders) -> Holders {
    let mut out = h;
    let reg = |r: Reg| h.regs & (1 << r.index()) != 0;
    match *op {
        Op::Call(_) => {
            out.regs &= !CALL_CLOBBERS;
            out.slots = 0;
        }
        Op::Store {
            base: Reg::R10,
            off,
            size,
            src,
        } => {
            out.slots &= !slots_touched(off, size.bytes());
            if let (Operand::Reg(s), bpfx_bytecode::Size::Dw, Some(k)) = (src, size, slot(off))
                && reg(s)
            {
                out.slots |= 1 << k;
            }
        }
        Op::Atomic {
            base: Reg::R10,
            off,
            width,
            ..
        } => out.slots &= !slots_touched(off, width.bits() / 8),
        // Through any other register the store may hit the frame.
        Op::Store { .. } | Op::Atomic { .. } => out.slots = 0,
        _ => {}
    }
    if let Some(dst) = op.written_reg() {
        let holds = match *op {
            Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                src: Operand::Reg(s),
                ..
            } => reg(s),
            Op::Load {
                size: bpfx_bytecode::Size::Dw,
                base: Reg::R10,
                off,
                ..
            } => slot(off).is_some_and(|k| h.slots & (1 << k) != 0),
            _ => false,
        };
        out.regs &= !(1 << dst.index());
        if holds {
            out.regs |= 1 << dst.index();
        }
    }
    out
}

/// The dataflow's states before its first pass: unvisited instructions hold ALL (the identity
/// of the meet), a local function's entry (called, or its address taken) knows nothing, and
/// the program's entry knows that r1 holds the input.
fn entry_states(cfg: &Cfg) -> Vec<Holders> {
    let mut before = vec![Holders::ALL; cfg.program().len()];
    if before.is_empty() {
        return before;
    }
    for f in cfg.functions() {
        if f.called || f.address_taken {
            before[f.entry.index()] = Holders::NONE;
        }
    }
    before[0] = before[0].meet(Holders {
        regs: 1 << Reg::R1.index(),
        slots: 0,
    });
    before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(text: &str) -> InputRegs {
        let prog =
            bpfx_bytecode::Program::decode(bpfx_bytecode::assemble(text).expect("assembles"))
                .expect("decodes");
        InputRegs::new(&bpfx_bytecode::Cfg::new(&prog))
    }

    /// The closed form against the definition: slot `k` covers bytes `[-8(k+1), -8k)`, and an
    /// access touches it when the byte ranges overlap.
    #[test]
    fn slots_touched_is_the_overlap_with_each_slot() {
        for off in -530..16i16 {
            for size in [1u32, 2, 4, 8] {
                let (lo, hi) = (i32::from(off), i32::from(off) + size as i32);
                let want = (0..64u32)
                    .filter(|k| {
                        let start = -8 * (*k as i32 + 1);
                        start < hi && lo < start + 8
                    })
                    .fold(0u64, |acc, k| acc | 1 << k);
                assert_eq!(slots_touched(off, size), want, "off {off} size {size}");
            }
        }
    }

    /// The dataflow as it was first written: every pass over the whole program, until no jump
    /// back changes its target. The passes that start at the earliest changed target must
    /// reach the same states.
    fn whole_passes(cfg: &bpfx_bytecode::Cfg) -> Vec<Holders> {
        let prog = cfg.program();
        let mut before = entry_states(cfg);
        let meet = |at: Pc, set: Holders, before: &mut [Holders]| {
            before.get_mut(at.index()).is_some_and(|b| {
                let m = b.meet(set);
                let changed = m != *b;
                *b = m;
                changed
            })
        };
        for _ in 0..MAX_PASSES {
            let mut again = false;
            for (pc, op) in prog.iter() {
                let out = transfer(op, before[pc.index()]);
                let succ = cfg.successors(pc);
                if let Some(t) = succ.jump {
                    again |= meet(t, out, &mut before) && t <= pc;
                }
                if let Some(next) = succ.fall {
                    meet(next, out, &mut before);
                }
            }
            if !again {
                return before;
            }
        }
        vec![Holders::NONE; prog.len()]
    }

    /// Loops after straight code, one after another, nested, with a jump back from past an
    /// inner loop to before it, and a loop whose fact is lost one frame slot further each pass
    /// (within the pass bound and past it): the same states as whole passes.
    #[test]
    fn passes_from_the_earliest_changed_target_reach_the_whole_passes_states() {
        let nested = |depth: usize| {
            let mut text = String::from("mov r2, r1\nmov r3, r1\nstxdw [r10-8], r1\n");
            for d in 0..depth {
                text += &format!("l{d}:\nmov r{}, 0\n", 6 + d % 3);
            }
            text += "ldxb r0, [r2+0]\nadd r2, 1\n";
            for d in (0..depth).rev() {
                text += &format!("add r{0}, 1\njlt r{0}, 2, l{1}\n", 6 + d % 3, d);
            }
            text + "ldxdw r4, [r10-8]\nldxb r0, [r4+0]\nexit"
        };
        // Slot k takes slot k + 1's value each iteration and the last slot is overwritten: the
        // loss reaches slot 1 after `slots` passes.
        let chain = |slots: usize| {
            let mut text = String::new();
            for k in 1..=slots {
                text += &format!("stxdw [r10-{}], r1\n", 8 * k);
            }
            text += "top:\n";
            for k in 1..slots {
                text += &format!(
                    "ldxdw r6, [r10-{}]\nstxdw [r10-{}], r6\n",
                    8 * (k + 1),
                    8 * k
                );
            }
            text += &format!("stdw [r10-{}], 0\n", 8 * slots);
            text + "ldxdw r7, [r10-8]\nldxb r0, [r7+0]\njlt r0, 4, top\nexit"
        };
        let programs = [
            "mov r2, r1
            mov r5, 0
            ldxb r0, [r2+0]
        a:
            ldxb r0, [r2+0]
            add r5, 1
            jlt r5, 4, a
            mov r6, r2
        b:
            ldxb r0, [r6+0]
            mov r2, r6
            add r6, 1
            jlt r6, 4, b
            mov r3, r2
        c:
            mov r3, r1
            ldxb r0, [r3+0]
            jlt r0, 4, b
            jgt r0, 9, c
            exit"
                .to_string(),
            "mov r7, r1
            stxdw [r10-16], r7
        top:
            ldxdw r8, [r10-16]
            ldxb r0, [r8+0]
            jeq r0, 0, +2
            stxdw [r10-16], r0
            ja top
            call 5
            jne r0, 0, top
            exit"
                .to_string(),
            nested(3),
            chain(MAX_PASSES as usize - 2),
            chain(MAX_PASSES as usize + 4),
        ];
        for text in &programs {
            let prog =
                bpfx_bytecode::Program::decode(bpfx_bytecode::assemble(text).expect("assembles"))
                    .expect("decodes");
            let cfg = bpfx_bytecode::Cfg::new(&prog);
            assert_eq!(InputRegs::new(&cfg).before, whole_passes(&cfg), "{text}");
        }
        // The chains do take that many passes: r1, never written, keeps the fact within the
        // bound and loses it past it.
        for (slots, within) in [(MAX_PASSES - 2, true), (MAX_PASSES + 4, false)] {
            let prog = bpfx_bytecode::Program::decode(
                bpfx_bytecode::assemble(&chain(slots as usize)).expect("assembles"),
            )
            .expect("decodes");
            let load = Pc(prog.len() as u32 - 3);
            let r = InputRegs::new(&bpfx_bytecode::Cfg::new(&prog));
            assert_eq!(r.holds(load, Reg::R1), within, "{slots} slots");
            assert!(!r.holds(load, Reg::R7), "{slots} slots");
        }
    }

    #[test]
    fn copies_spills_and_fills_carry_the_input_address() {
        let r = regs(
            "mov r6, r1
            stxdw [r10-24], r6
            mov r6, 0
            ldxdw r7, [r10-24]
            ldxb r0, [r7+0]
            exit",
        );
        assert!(r.holds(Pc(1), Reg::R6));
        assert!(!r.holds(Pc(3), Reg::R6), "overwritten");
        assert!(r.holds(Pc(4), Reg::R7), "filled from the slot");
        assert!(r.holds(Pc(4), Reg::R1));
    }

    #[test]
    fn writes_calls_and_stores_through_pointers_end_it() {
        let r = regs(
            "mov r6, r1
            stxdw [r10-8], r1
            add r1, 0
            call 5
            ldxdw r2, [r10-8]
            stxdw [r10-8], r1
            stxdw [r10-16], r6
            stxb [r6+0], r2
            ldxdw r3, [r10-16]
            exit",
        );
        // `add` ends it even when it adds nothing.
        assert!(!r.holds(Pc(3), Reg::R1));
        // A call clobbers r1–r5 and every slot, but not r6.
        assert!(r.holds(Pc(4), Reg::R6));
        assert!(!r.holds(Pc(5), Reg::R2));
        // A store through r6 may overwrite the slot just spilled.
        assert!(!r.holds(Pc(9), Reg::R3));
    }

    /// A loop's back edge brings `r2 + 1` to the top: r2 holds the input's address on the first
    /// iteration only, so not at the top, nor in what copies it inside the loop; a nested
    /// loop's edge carries the loss to the outer top as well. r1 and what is copied from it
    /// after the loops keep it.
    #[test]
    fn a_back_edge_that_changes_the_register_loses_it_in_the_whole_loop() {
        let r = regs(
            "mov r2, r1
            mov r3, 0
        outer:
            mov r6, 0
        inner:
            ldxb r0, [r2+0]
            mov r5, r2
            ldxb r0, [r5+0]
            add r2, 1
            add r6, 1
            jlt r6, 2, inner
            add r3, 1
            jlt r3, 4, outer
            mov r4, r1
            ldxb r0, [r4+0]
            exit",
        );
        assert!(r.holds(Pc(1), Reg::R2));
        for pc in 2..=10 {
            assert!(!r.holds(Pc(pc), Reg::R2), "r2 at {pc}");
            assert!(r.holds(Pc(pc), Reg::R1), "r1 at {pc}");
        }
        assert!(!r.holds(Pc(5), Reg::R5), "a copy of it inside the loop");
        assert!(r.holds(Pc(12), Reg::R4));
    }

    #[test]
    fn paths_that_disagree_lose_it_and_callees_start_without_it() {
        let r = regs(
            "mov r2, r1
            jeq r0, 0, +1
            mov r2, 7
            ldxb r0, [r2+0]
            call local f
            exit
        f:
            ldxb r0, [r1+0]
            exit",
        );
        assert!(r.holds(Pc(1), Reg::R2));
        assert!(!r.holds(Pc(3), Reg::R2), "one path overwrote it");
        assert!(r.holds(Pc(3), Reg::R1));
        assert!(!r.holds(Pc(6), Reg::R1), "a callee's r1 is an argument");
    }
}
