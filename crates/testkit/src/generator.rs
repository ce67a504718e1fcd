//! A seeded generator of valid, terminating random programs for differential testing.
//!
//! [`generate`] turns a seed into a [`Case`]; the same seed always gives the same case. Every
//! generated program decodes, and every run ends: by `exit`, a trap, an out-of-bounds packet
//! load, or the budget.
//!
//! # Shape
//! ```text
//! input   0..=64 random bytes; budget None (half the cases) or Some(0..600); helpers: id 5 echo
//! main    mov r9, r1                    r9 = input base for the whole run
//!         lddw rN, <random>             a few registers get interesting values
//!         <segment>                     10..=50 items
//!         exit
//! sub 0   <segment> exit                may call sub 1
//! sub 1   <segment> exit                calls nothing
//! ```
//! A segment is a list of items:
//! - one instruction: every ALU op at both widths with register and immediate operands (edge
//!   immediates 0, ±1, `i32::MIN`, `i32::MAX`, shift counts 31..=65, so division by zero and
//!   oversized shifts are common), `neg`, every `movsx`, every byte-order op, `lddw` of edge
//!   values and of a subfunction's pc;
//! - a load, store (register and immediate) or atomic (every op, both widths, with and without
//!   fetch) of every size, based on r9 at offsets hugging both ends of the input, or on r10 at
//!   offsets hugging both ends of the frame (`r10-512`, `r10-size`), sometimes one byte outside
//!   (`r10-513`, `r10+0`: the latter is the caller's frame inside a subfunction, so both rules of
//!   the active stack are exercised);
//! - a legacy packet load (`ldabs`, or `mov rX, small; ldind rX`) near the input's end;
//! - a helper call: `call 5`, or `mov rX, id; call rX` (rarely an unregistered id);
//! - a local call to a later subfunction;
//! - a forward branch (`jcc` of either width, any condition, register or immediate, or `ja`)
//!   over a nested segment;
//! - a bounded loop: `mov r8, 1..=4; <segment>; add r8, -1; jne r8, 0, <back>`. Loops do not
//!   nest within a function, and nothing else writes r8 or r9, so every loop terminates (a
//!   subfunction's own loop writes r8, but `exit` restores the caller's);
//! - a branch over one 64-bit move (`jcc +1; mov d, s`, or `jcc +2; mov d, s; ja +0`), which
//!   the JIT turns into a conditional move;
//! - an address chain (`mov d, 0; add d, base; add d, k`, then an access through d at the
//!   same places as above), the shape the JIT folds into one addressing mode.
//!
//! Destinations are r0–r7, so r8 (the counter), r9 (the input base) and r10 stay meaningful.

use crate::check::Case;
use crate::layout::{Emitter, Item, mov64};
use bpfx_bytecode::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Cond, Imm64, Op, Operand, Program, Reg, Size, Width,
};
use bpfx_exec::{Helpers, STACK_FRAME_SIZE};

/// Largest generated input memory, in bytes.
pub const MAX_INPUT: usize = 64;

/// The generators' source of choices, [`bpfx_rng::Rng`]: seeded, or handing out a fuzzer's
/// bytes first.
pub use bpfx_rng::Rng;

/// The loop counter register.
/// The register holding the input's address.
const INPUT: Reg = Reg::R9;
/// Registers random instructions may write.
const DSTS: [Reg; 8] = [
    Reg::R0,
    Reg::R1,
    Reg::R2,
    Reg::R3,
    Reg::R4,
    Reg::R5,
    Reg::R6,
    Reg::R7,
];
/// Number of subfunctions.
const SUBS: usize = 2;

struct Gen {
    rng: Rng,
    input_len: usize,
}

/// The case for `seed`.
pub fn generate(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let input_len = rng.below(MAX_INPUT as u64 + 1) as usize;
    let input = (0..input_len).map(|_| rng.next_u64() as u8).collect();
    let budget = rng.chance(1, 2).then(|| rng.below(600));
    let mut g = Gen { rng, input_len };

    let mut main = vec![Item::Ops(vec![mov64(INPUT, Operand::Reg(Reg::R1))])];
    for _ in 0..g.rng.range(0, 3) {
        let dst = g.rng.pick(&DSTS);
        main.push(Item::Ops(vec![g.lddw(dst)]));
    }
    let n = g.rng.range(10, 50) as usize;
    main.extend(g.segment(n, 0, false, 0));
    let subs: Vec<Vec<Item>> = (0..SUBS)
        .map(|k| {
            let n = g.rng.range(2, 12) as usize;
            g.segment(n, 0, false, k + 1)
        })
        .collect();

    let mut out = Emitter::default();
    out.function(&main);
    let mut starts = Vec::new();
    for sub in &subs {
        starts.push(out.pc);
        out.function(sub);
    }
    let ops = out.finish(&starts);
    let prog = Program::from_ops(&ops).expect("the generator only emits valid programs");
    Case {
        prog,
        input,
        budget,
        helpers: Helpers::conformance(),
    }
}

impl Gen {
    /// `n` items for a function whose local calls may target subfunctions from `first_callee`
    /// on (`SUBS` or more: none). `depth` bounds the nesting of skipped bodies.
    fn segment(&mut self, n: usize, depth: u32, in_loop: bool, first_callee: usize) -> Vec<Item> {
        (0..n)
            .map(|_| self.item(depth, in_loop, first_callee))
            .collect()
    }

    fn item(&mut self, depth: u32, in_loop: bool, first_callee: usize) -> Item {
        match self.rng.below(100) {
            0..=29 => Item::Ops(vec![self.alu()]),
            30..=31 => Item::Ops(vec![Op::Neg {
                width: self.width(),
                dst: self.dst(),
            }]),
            32..=34 => Item::Ops(vec![self.movsx()]),
            35..=37 => Item::Ops(vec![self.endian()]),
            38..=40 => {
                let dst = self.dst();
                Item::Ops(vec![self.lddw(dst)])
            }
            41..=52 => Item::Ops(vec![self.load()]),
            53..=63 => Item::Ops(vec![self.store()]),
            64..=68 => Item::Ops(vec![self.atomic()]),
            69..=70 => Item::Ops(self.packet()),
            71..=73 => Item::Ops(self.helper_call()),
            74..=76 if first_callee < SUBS => {
                let k = self.rng.range(first_callee as i64, SUBS as i64 - 1) as usize;
                if self.rng.chance(1, 4) {
                    Item::FuncAddr(self.dst(), k)
                } else {
                    Item::Call(k)
                }
            }
            77..=89 if depth < 3 => {
                let jump = self.forward_jump();
                let n = self.rng.range(1, 4) as usize;
                let body = self.segment(n, depth + 1, in_loop, first_callee);
                Item::Skip { jump, body }
            }
            90..=93 if !in_loop && depth < 3 => {
                let count = self.rng.range(1, 4) as i32;
                let n = self.rng.range(1, 6) as usize;
                let body = self.segment(n, depth + 1, true, first_callee);
                Item::Loop { count, body }
            }
            94..=96 => Item::Ops(self.address_chain()),
            97..=98 => Item::Ops(self.select()),
            _ => Item::Ops(vec![self.alu()]),
        }
    }

    /// An address built in a register the way compilers write it, then used:
    /// `mov d, 0; add d, base; add d, k; <access [d + off - k]>`, the same place as
    /// `[base + off]`. The JIT folds the chain into the access; its first `add` reads d's own
    /// value, and d stays live for whatever reads it next.
    fn address_chain(&mut self) -> Vec<Op> {
        let size = self.size();
        let (base, off) = self.place(size);
        let d = self.dst();
        let k = self.rng.range(-64, 64) as i32;
        let add = |src| Op::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst: d,
            src,
        };
        let off = (i32::from(off) - k) as i16;
        let access = if self.rng.chance(1, 2) {
            Op::Load {
                size,
                signed: false,
                dst: self.dst(),
                base: d,
                off,
            }
        } else {
            Op::Store {
                size,
                base: d,
                off,
                src: self.operand(),
            }
        };
        vec![
            Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst: d,
                src: Operand::Imm(0),
            },
            add(Operand::Reg(base)),
            add(Operand::Imm(k)),
            access,
        ]
    }

    fn width(&mut self) -> Width {
        if self.rng.chance(1, 2) {
            Width::W64
        } else {
            Width::W32
        }
    }

    fn dst(&mut self) -> Reg {
        self.rng.pick(&DSTS)
    }

    fn any_reg(&mut self) -> Reg {
        self.rng.pick(&Reg::ALL)
    }

    /// An immediate biased toward the values where semantics have edges.
    fn imm(&mut self) -> i32 {
        const EDGES: [i32; 12] = [0, 1, -1, 2, i32::MIN, i32::MAX, 31, 32, 33, 63, 64, 65];
        match self.rng.below(3) {
            0 => self.rng.pick(&EDGES),
            1 => self.rng.range(-16, 16) as i32,
            _ => self.rng.next_u64() as i32,
        }
    }

    fn operand(&mut self) -> Operand {
        if self.rng.chance(1, 2) {
            Operand::Reg(self.any_reg())
        } else {
            Operand::Imm(self.imm())
        }
    }

    fn alu(&mut self) -> Op {
        Op::Alu {
            width: self.width(),
            op: self.rng.pick(&AluOp::ALL),
            dst: self.dst(),
            src: self.operand(),
        }
    }

    fn movsx(&mut self) -> Op {
        let width = self.width();
        let from = match width {
            Width::W32 => self.rng.pick(&[Size::B, Size::H]),
            Width::W64 => self.rng.pick(&[Size::B, Size::H, Size::W]),
        };
        Op::Movsx {
            width,
            from,
            dst: self.dst(),
            src: self.any_reg(),
        }
    }

    fn endian(&mut self) -> Op {
        Op::Endian {
            order: self
                .rng
                .pick(&[ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap]),
            bits: self.rng.pick(&[16, 32, 64]),
            dst: self.dst(),
        }
    }

    fn lddw(&mut self, dst: Reg) -> Op {
        const EDGES: [u64; 8] = [
            0,
            1,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
            0xffff_ffff,
            0x8000_0000,
            0x1_0000_0000,
        ];
        let v = if self.rng.chance(1, 2) {
            self.rng.pick(&EDGES)
        } else {
            self.rng.next_u64()
        };
        Op::LoadImm64 {
            dst,
            value: Imm64::Value(v),
        }
    }

    fn size(&mut self) -> Size {
        self.rng.pick(&[Size::B, Size::H, Size::W, Size::Dw])
    }

    /// A base register and offset for an access of `size` bytes: near an edge of the input or
    /// of the stack frame, and about one time in fifty just outside.
    fn place(&mut self, size: Size) -> (Reg, i16) {
        let s = size.bytes() as i64;
        let outside = self.rng.chance(1, 50);
        if self.input_len as i64 >= s && self.rng.chance(1, 2) {
            let last = self.input_len as i64 - s;
            let off = if outside {
                self.rng.pick(&[-1, last + 1, self.input_len as i64])
            } else {
                match self.rng.below(3) {
                    0 => 0,
                    1 => last,
                    _ => self.rng.range(0, last),
                }
            };
            (INPUT, off as i16)
        } else {
            let frame = STACK_FRAME_SIZE as i64;
            let off = if outside {
                self.rng.pick(&[-frame - 1, 0, 1 - s])
            } else {
                match self.rng.below(3) {
                    0 => -frame,
                    1 => -s,
                    _ => self.rng.range(-frame, -s),
                }
            };
            (Reg::R10, off as i16)
        }
    }

    fn load(&mut self) -> Op {
        let size = self.size();
        let (base, off) = self.place(size);
        Op::Load {
            size,
            signed: size != Size::Dw && self.rng.chance(1, 3),
            dst: self.dst(),
            base,
            off,
        }
    }

    fn store(&mut self) -> Op {
        let size = self.size();
        let (base, off) = self.place(size);
        Op::Store {
            size,
            base,
            off,
            src: self.operand(),
        }
    }

    fn atomic(&mut self) -> Op {
        let width = self.width();
        let size = match width {
            Width::W32 => Size::W,
            Width::W64 => Size::Dw,
        };
        let (base, off) = self.place(size);
        let op = self.rng.pick(&[
            AtomicOp::Add,
            AtomicOp::Or,
            AtomicOp::And,
            AtomicOp::Xor,
            AtomicOp::Xchg,
            AtomicOp::Cmpxchg,
        ]);
        let fetch = matches!(op, AtomicOp::Xchg | AtomicOp::Cmpxchg) || self.rng.chance(1, 2);
        Op::Atomic {
            width,
            op,
            fetch,
            base,
            off,
            src: self.dst(),
        }
    }

    fn packet(&mut self) -> Vec<Op> {
        let size = self.rng.pick(&[Size::B, Size::H, Size::W]);
        // Offsets around the end of the input, so both outcomes are common.
        let near_end = self.input_len as i64 - size.bytes() as i64;
        let imm = (near_end + self.rng.range(-3, 1)) as i32;
        if self.rng.chance(1, 2) {
            vec![Op::LoadPacket {
                size,
                index: None,
                imm,
            }]
        } else {
            let index = self.dst();
            let k = self.rng.range(0, 3) as i32;
            vec![
                mov64(index, Operand::Imm(k)),
                Op::LoadPacket {
                    size,
                    index: Some(index),
                    imm: imm - k,
                },
            ]
        }
    }

    fn helper_call(&mut self) -> Vec<Op> {
        let echo = bpfx_exec::CONFORMANCE_ECHO_HELPER;
        let id = if self.rng.chance(1, 40) { 6 } else { echo };
        if self.rng.chance(2, 3) {
            vec![Op::Call(CallTarget::Helper(id))]
        } else {
            let r = self.dst();
            vec![
                mov64(r, Operand::Imm(id as i32)),
                Op::Call(CallTarget::Register(r)),
            ]
        }
    }

    /// A forward jump with its offset still 0.
    /// A branch over one 64-bit move, the shape the JIT turns into a conditional move:
    /// `jcc +1; mov d, s`, or `jcc +2; mov d, s; ja +0` (both ways reach the same place).
    fn select(&mut self) -> Vec<Op> {
        let into_jump = self.rng.chance(1, 2);
        let branch = self.branch(if into_jump { 2 } else { 1 });
        let mut ops = vec![branch, mov64(self.dst(), self.operand())];
        if into_jump {
            ops.push(Op::Ja {
                off: 0,
                long: false,
            });
        }
        ops
    }

    /// A random conditional branch of offset `off`.
    fn branch(&mut self, off: i16) -> Op {
        Op::Branch {
            width: self.width(),
            cond: self.rng.pick(&Cond::ALL),
            lhs: self.any_reg(),
            rhs: self.operand(),
            off,
        }
    }

    fn forward_jump(&mut self) -> Op {
        if self.rng.chance(1, 10) {
            return Op::Ja {
                off: 0,
                long: self.rng.chance(1, 2),
            };
        }
        self.branch(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_case() {
        for seed in 0..50 {
            let (a, b) = (generate(seed), generate(seed));
            assert_eq!(a.prog, b.prog);
            assert_eq!((a.input, a.budget), (b.input, b.budget));
        }
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(generate(1).prog, generate(2).prog);
    }
}
