//! A generator of mostly-valid programs driven by fuzzer bytes, for the `diff_structured` target.
//!
//! [`case`] reads its choices from an [`arbitrary::Unstructured`] over the fuzzer's input, so
//! libFuzzer's mutations become structural edits (another operation, another offset, one more
//! loop) instead of random bit flips that the decoder would reject. Every byte string gives a
//! case whose program decodes; when the bytes run out, every remaining choice takes its first
//! option, so short inputs give short programs.
//!
//! Where [`crate::generate`] draws from a seeded PRNG and promises termination, this generator
//! reaches further, and leans on the budget where it gives that promise up:
//!
//! - **Two modes.** A *terminating* case keeps the shape of [`crate::generate`] (bounded loops on
//!   r8, input base in r9, calls only to later functions) and may run without a budget, which
//!   exercises the engines' budget-free code. A *free* case always has a budget, and adds what
//!   cannot be proven to end: backward jumps on any condition, recursion (until the frame limit
//!   traps), random writes to r8 and r9.
//! - **Memory near every edge**: the input's both ends, the current frame's both ends, callers'
//!   frames above r10 (the active-stack rule), pointers derived into other registers (which the
//!   JIT cannot treat as r10 plus a constant), and wild addresses next to 0 and `u64::MAX`, where
//!   an address computation wraps.
//! - **Every width**: ALU at both widths with edge immediates, loads (also sign-extending),
//!   stores and atomics of every size, every atomic operation with and without fetch.
//! - **Helpers** that reach guest memory: id 5 echoes, [`STORE_HELPER`] stores through a guest
//!   pointer checked by the dispatch, [`FAIL_HELPER`] always fails, and unregistered ids trap.
//!
//! The case's budget is compared exactly by [`crate::check()`], like everything else.

use crate::check::Case;
use crate::layout::{Emitter, Item, add64, mov64};
use arbitrary::Unstructured;
use bpfx_bytecode::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Cond, Imm64, Op, Operand, Program, Reg, Size, Width,
};
use bpfx_exec::{ArgLen, HelperError, Helpers, MemArg, STACK_FRAME_SIZE};
use std::sync::Arc;

/// Largest input memory, in bytes.
pub const MAX_INPUT: usize = 96;

/// Largest budget of a case, in instructions: enough for every loop shape to finish, small
/// enough that a run of a free case stays fast.
pub const MAX_BUDGET: u64 = 4_000;

/// Helper that stores `r2` (8 bytes, little-endian) at guest address `r1` and returns 0. Its
/// 8 bytes at `r1` are a checked memory argument ([`bpfx_exec::MemArg`]), so an address
/// outside guest memory traps with `OutOfBounds` at the call before it runs: the generated
/// cases drive the engines' checked dispatch to every edge.
pub const STORE_HELPER: u32 = 7;

/// Helper that always fails.
pub const FAIL_HELPER: u32 = 8;

/// Most items (instructions or nested constructs) in one case, so a long input cannot make a
/// program that takes the fuzzer's time compiling instead of running.
const MAX_ITEMS: u32 = 400;

/// Most local functions besides the main one.
const MAX_SUBS: usize = 3;

/// The register holding the input's address at entry (until a free case overwrites it).
const INPUT: Reg = Reg::R9;

/// The helpers every structured case registers.
pub fn helpers() -> Helpers {
    let mut h = Helpers::conformance();
    let eight = MemArg {
        ptr: 0,
        len: ArgLen::From(Arc::new(|_: &[u64; 5], _: &bpfx_exec::GuestMemory<'_>| {
            Some(8)
        })),
        write: true,
    };
    h.register_checked(STORE_HELPER, vec![eight], |mem, args| {
        mem.store(args[0], 8, args[1])
            .map(|()| 0)
            .ok_or_else(|| HelperError(format!("store to {:#x} outside memory", args[0])))
    });
    h.register(FAIL_HELPER, |_, _| Err(HelperError("always fails".into())));
    h
}

/// The case the fuzzer's bytes describe.
pub fn case(data: &[u8]) -> Case {
    let mut g = Gen {
        u: Unstructured::new(data),
        input_len: 0,
        terminating: false,
        items_left: MAX_ITEMS,
    };
    g.terminating = g.chance(1, 2);
    g.input_len = g.int(0, MAX_INPUT as i64) as usize;
    let input: Vec<u8> = (0..g.input_len).map(|_| g.byte()).collect();
    let budget = if g.terminating && g.chance(1, 3) {
        None
    } else {
        Some(g.int(0, MAX_BUDGET as i64) as u64)
    };
    let subs = g.int(0, MAX_SUBS as i64) as usize;
    let funcs = subs + 1;

    let mut bodies = Vec::with_capacity(funcs);
    for f in 0..funcs {
        let mut items = Vec::new();
        if f == 0 {
            items.push(Item::Ops(vec![mov64(INPUT, Operand::Reg(Reg::R1))]));
        }
        let n = g.int(1, 40) as usize;
        items.extend(g.segment(n, 0, false, f, funcs));
        bodies.push(items);
    }

    let mut out = Emitter::default();
    let mut starts = Vec::with_capacity(funcs);
    for (f, body) in bodies.iter().enumerate() {
        starts.push(out.pc);
        out.items(body);
        // A free case sometimes ends its last function with an ALU instruction instead of
        // `exit`, so running off the end of the program is exercised too (a jump over the body
        // still lands on an instruction).
        let last = f + 1 == funcs;
        if last && !g.terminating && g.chance(1, 16) {
            let tail = g.alu();
            out.push(tail);
        } else {
            out.push(Op::Exit);
        }
    }
    let ops = out.finish(&starts);
    let prog = Program::from_ops(&ops)
        .unwrap_or_else(|e| panic!("the structured generator emitted an invalid program: {e}"));
    Case {
        prog,
        input,
        budget,
        helpers: helpers(),
    }
}

struct Gen<'a> {
    u: Unstructured<'a>,
    input_len: usize,
    terminating: bool,
    items_left: u32,
}

impl Gen<'_> {
    /// A value in `lo..=hi`; `lo` once the bytes run out.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        self.u.int_in_range(lo..=hi).unwrap_or(lo)
    }

    fn chance(&mut self, num: i64, den: i64) -> bool {
        self.int(0, den - 1) < num
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.int(0, items.len() as i64 - 1) as usize]
    }

    fn byte(&mut self) -> u8 {
        self.int(0, 255) as u8
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// `n` items of function `func` (of `funcs`); `depth` bounds nesting.
    fn segment(
        &mut self,
        n: usize,
        depth: u32,
        in_loop: bool,
        func: usize,
        funcs: usize,
    ) -> Vec<Item> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            if self.items_left == 0 {
                break;
            }
            self.items_left -= 1;
            items.push(self.item(depth, in_loop, func, funcs));
        }
        items
    }

    fn item(&mut self, depth: u32, in_loop: bool, func: usize, funcs: usize) -> Item {
        match self.int(0, 99) {
            0..=24 => Item::Ops(vec![self.alu()]),
            25..=27 => Item::Ops(vec![self.unary()]),
            28..=30 => {
                let dst = self.dst();
                Item::Ops(vec![self.lddw(dst)])
            }
            31..=42 => Item::Ops(self.load()),
            43..=52 => Item::Ops(self.store()),
            53..=59 => Item::Ops(self.atomic()),
            60..=61 => Item::Ops(self.packet()),
            62..=65 => Item::Ops(self.helper_call()),
            66..=69 => match self.callee(func, funcs) {
                Some(k) if self.chance(1, 5) => Item::FuncAddr(self.dst(), k),
                Some(k) => Item::Call(k),
                None => Item::Ops(vec![self.alu()]),
            },
            70..=81 if depth < 3 => {
                let jump = self.branch();
                let n = self.int(1, 5) as usize;
                let body = self.segment(n, depth + 1, in_loop, func, funcs);
                Item::Skip { jump, body }
            }
            82..=87 if !in_loop && depth < 3 => {
                let count = self.int(1, 5) as i32;
                let n = self.int(1, 6) as usize;
                let body = self.segment(n, depth + 1, true, func, funcs);
                Item::Loop { count, body }
            }
            88..=91 if !self.terminating && depth < 3 => {
                let jump = if self.chance(1, 4) {
                    Op::Ja {
                        off: 0,
                        long: self.chance(1, 2),
                    }
                } else {
                    self.branch()
                };
                let n = self.int(1, 6) as usize;
                let body = self.segment(n, depth + 1, true, func, funcs);
                Item::Back { jump, body }
            }
            92..=93 => Item::Ops(vec![Op::Exit]),
            _ => Item::Ops(vec![self.alu()]),
        }
    }

    /// A function `func` may call: a later one when terminating, any one (itself included, so
    /// recursion runs into the frame limit) otherwise.
    fn callee(&mut self, func: usize, funcs: usize) -> Option<usize> {
        if funcs <= 1 {
            return None;
        }
        if self.terminating {
            (func + 1 < funcs).then(|| self.int(func as i64 + 1, funcs as i64 - 1) as usize)
        } else {
            Some(self.int(1, funcs as i64 - 1) as usize)
        }
    }

    fn width(&mut self) -> Width {
        if self.chance(1, 2) {
            Width::W64
        } else {
            Width::W32
        }
    }

    /// A destination register: r0–r7 in terminating cases, so the loop counter and the input
    /// base stay meaningful; r0–r9 in free ones.
    fn dst(&mut self) -> Reg {
        let hi = if self.terminating { 7 } else { 9 };
        Reg::new(self.int(0, hi) as u8).unwrap_or(Reg::R0)
    }

    fn any_reg(&mut self) -> Reg {
        self.pick(&Reg::ALL)
    }

    /// An immediate biased toward the values where semantics have edges.
    fn imm(&mut self) -> i32 {
        const EDGES: [i32; 14] = [
            0,
            1,
            -1,
            2,
            i32::MIN,
            i32::MAX,
            31,
            32,
            33,
            63,
            64,
            65,
            0xffff,
            -0x8000,
        ];
        match self.int(0, 2) {
            0 => self.pick(&EDGES),
            1 => self.int(-16, 16) as i32,
            _ => self.u64() as i32,
        }
    }

    fn operand(&mut self) -> Operand {
        if self.chance(1, 2) {
            Operand::Reg(self.any_reg())
        } else {
            Operand::Imm(self.imm())
        }
    }

    fn alu(&mut self) -> Op {
        Op::Alu {
            width: self.width(),
            op: self.pick(&AluOp::ALL),
            dst: self.dst(),
            src: self.operand(),
        }
    }

    /// `neg`, `movsx` or a byte-order operation.
    fn unary(&mut self) -> Op {
        match self.int(0, 2) {
            0 => Op::Neg {
                width: self.width(),
                dst: self.dst(),
            },
            1 => {
                let width = self.width();
                let from = match width {
                    Width::W32 => self.pick(&[Size::B, Size::H]),
                    Width::W64 => self.pick(&[Size::B, Size::H, Size::W]),
                };
                Op::Movsx {
                    width,
                    from,
                    dst: self.dst(),
                    src: self.any_reg(),
                }
            }
            _ => Op::Endian {
                order: self.pick(&[ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap]),
                bits: self.pick(&[16, 32, 64]),
                dst: self.dst(),
            },
        }
    }

    fn lddw(&mut self, dst: Reg) -> Op {
        const EDGES: [u64; 10] = [
            0,
            1,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
            0xffff_ffff,
            0x8000_0000,
            0x1_0000_0000,
            u64::MAX - 7,
            0xffff_8000_0000_0000,
        ];
        let v = if self.chance(1, 2) {
            self.pick(&EDGES)
        } else {
            self.u64()
        };
        Op::LoadImm64 {
            dst,
            value: Imm64::Value(v),
        }
    }

    fn size(&mut self) -> Size {
        self.pick(&[Size::B, Size::H, Size::W, Size::Dw])
    }

    /// Setup instructions and a base register and offset for an access of `size` bytes, near
    /// an edge of some region, or just outside it.
    fn place(&mut self, size: Size) -> (Vec<Op>, Reg, i16) {
        let s = i64::from(size.bytes());
        let frame = STACK_FRAME_SIZE as i64;
        let len = self.input_len as i64;
        match self.int(0, 9) {
            // The input through r9, at its ends, inside, or just past either end.
            0..=3 => {
                let off = match self.int(0, 5) {
                    0 => 0,
                    1 => len - s,
                    2 => self.int(0, (len - s).max(0)),
                    3 => -1,
                    4 => len - s + 1,
                    _ => len,
                };
                (Vec::new(), INPUT, off as i16)
            }
            // The current frame through r10, at its ends or one byte past them.
            4..=6 => {
                let off = match self.int(0, 5) {
                    0 => -frame,
                    1 => -s,
                    2 => self.int(-frame, -s),
                    3 => -frame - 1,
                    4 => 1 - s,
                    _ => 0,
                };
                (Vec::new(), Reg::R10, off as i16)
            }
            // The callers' frames, above r10: readable exactly while those frames are active.
            7 => {
                let off = self.pick(&[0, frame - s, frame, 2 * frame - s, 2 * frame, 3 * frame]);
                (Vec::new(), Reg::R10, off as i16)
            }
            // A pointer derived from r10 or r9 into another register, so no engine can see
            // the region from the base register alone.
            8 => {
                let reg = self.pick(&[Reg::R6, Reg::R7]);
                let (from, edge) = if self.chance(1, 2) {
                    (Reg::R10, -frame)
                } else {
                    (INPUT, len)
                };
                let k = edge + self.int(-8, 8);
                let off = self.pick(&[0, -s, s, -1, 1]) as i16;
                let setup = vec![mov64(reg, Operand::Reg(from)), add64(reg, k as i32)];
                (setup, reg, off)
            }
            // A wild address next to 0 or u64::MAX: the address computation wraps.
            _ => {
                let reg = self.pick(&[Reg::R6, Reg::R7]);
                let addr = self.pick(&[0, 1, u64::MAX, u64::MAX - 7, 1 << 63, (1 << 63) - 1]);
                let off = self.pick(&[0, 1, -1, 8, -8, i16::MAX, i16::MIN]);
                let setup = vec![Op::LoadImm64 {
                    dst: reg,
                    value: Imm64::Value(addr),
                }];
                (setup, reg, off)
            }
        }
    }

    fn load(&mut self) -> Vec<Op> {
        let size = self.size();
        let (mut ops, base, off) = self.place(size);
        ops.push(Op::Load {
            size,
            signed: size != Size::Dw && self.chance(1, 3),
            dst: self.dst(),
            base,
            off,
        });
        ops
    }

    fn store(&mut self) -> Vec<Op> {
        let size = self.size();
        let (mut ops, base, off) = self.place(size);
        ops.push(Op::Store {
            size,
            base,
            off,
            src: self.operand(),
        });
        ops
    }

    fn atomic(&mut self) -> Vec<Op> {
        let width = self.width();
        let size = match width {
            Width::W32 => Size::W,
            Width::W64 => Size::Dw,
        };
        let (mut ops, base, off) = self.place(size);
        let op = self.pick(&[
            AtomicOp::Add,
            AtomicOp::Or,
            AtomicOp::And,
            AtomicOp::Xor,
            AtomicOp::Xchg,
            AtomicOp::Cmpxchg,
        ]);
        let fetch = matches!(op, AtomicOp::Xchg | AtomicOp::Cmpxchg) || self.chance(1, 2);
        ops.push(Op::Atomic {
            width,
            op,
            fetch,
            base,
            off,
            // Any register, r10 included: an atomic's operand may be the frame pointer, and a
            // fetch into it is something the decoder must reject, so only without fetch.
            src: if fetch { self.dst() } else { self.any_reg() },
        });
        ops
    }

    fn packet(&mut self) -> Vec<Op> {
        let size = self.pick(&[Size::B, Size::H, Size::W]);
        let near_end = self.input_len as i64 - i64::from(size.bytes());
        let imm = (near_end + self.int(-3, 1)) as i32;
        if self.chance(1, 2) {
            vec![Op::LoadPacket {
                size,
                index: None,
                imm,
            }]
        } else {
            let index = self.dst();
            let k = self.pick(&[0, 1, 3, -1, i32::MIN, i32::MAX]);
            vec![
                mov64(index, Operand::Imm(k)),
                Op::LoadPacket {
                    size,
                    index: Some(index),
                    imm: imm.wrapping_sub(k),
                },
            ]
        }
    }

    fn helper_call(&mut self) -> Vec<Op> {
        let echo = bpfx_exec::CONFORMANCE_ECHO_HELPER;
        let id = self.pick(&[echo, echo, STORE_HELPER, STORE_HELPER, FAIL_HELPER, 1000]);
        let mut ops = Vec::new();
        if id == STORE_HELPER {
            // r1 points near an edge of the stack or input; r2 is whatever it holds.
            let (setup, base, off) = self.place(Size::Dw);
            ops.extend(setup);
            ops.push(mov64(Reg::R1, Operand::Reg(base)));
            ops.push(add64(Reg::R1, i32::from(off)));
        }
        if self.chance(2, 3) {
            ops.push(Op::Call(CallTarget::Helper(id)));
        } else {
            let r = self.pick(&[Reg::R0, Reg::R3, Reg::R4, Reg::R5, Reg::R6, Reg::R7]);
            ops.push(mov64(r, Operand::Imm(id as i32)));
            ops.push(Op::Call(CallTarget::Register(r)));
        }
        ops
    }

    /// A conditional branch (either width, any condition and operand) or `ja`, offset 0.
    fn branch(&mut self) -> Op {
        if self.chance(1, 10) {
            return Op::Ja {
                off: 0,
                long: self.chance(1, 2),
            };
        }
        Op::Branch {
            width: self.width(),
            cond: self.pick(&Cond::ALL),
            lhs: self.any_reg(),
            rhs: self.operand(),
            off: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Rng;

    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = Rng::new(seed);
        (0..len).map(|_| rng.next_u64() as u8).collect()
    }

    #[test]
    fn empty_input_gives_a_minimal_program() {
        let c = case(&[]);
        // Every choice takes its first option: a terminating case without input or budget,
        // main only: `mov r9, r1`, one ALU instruction, `exit`.
        assert_eq!(c.budget, None);
        assert!(c.input.is_empty());
        assert_eq!(c.prog.len(), 3);
    }

    #[test]
    fn same_bytes_same_case_and_both_modes_occur() {
        let mut unbudgeted = 0;
        let mut lens = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let data = bytes(seed, 512);
            let (a, b) = (case(&data), case(&data));
            assert_eq!(a.prog, b.prog);
            assert_eq!((&a.input, a.budget), (&b.input, b.budget));
            unbudgeted += usize::from(a.budget.is_none());
            lens.insert(a.prog.len());
        }
        assert!(unbudgeted > 10, "only {unbudgeted} cases without a budget");
        assert!(lens.len() > 20, "program sizes hardly vary: {lens:?}");
    }

    #[test]
    fn the_store_helper_writes_guest_memory_or_traps_at_the_call() {
        let ops = [
            mov64(Reg::R2, Operand::Imm(-1)),
            Op::Call(CallTarget::Helper(STORE_HELPER)),
            Op::Exit,
        ];
        let mut c = Case {
            prog: Program::from_ops(&ops).expect("valid"),
            input: vec![0; 8],
            budget: None,
            helpers: helpers(),
        };
        let out = crate::check(&c).expect("engines agree");
        assert_eq!(out.result, Ok(0));
        assert_eq!(out.memory, vec![0xff; 8]);
        c.input = vec![0; 7];
        let out = crate::check(&c).expect("engines agree");
        assert_eq!(
            out.result,
            Err(bpfx_exec::Trap {
                kind: bpfx_exec::TrapKind::OutOfBounds,
                pc: bpfx_bytecode::Pc(1),
            })
        );
        assert_eq!(out.memory, vec![0; 7], "the helper never ran");
    }
}
