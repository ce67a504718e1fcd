//! Laying out generated functions: the piece both program generators share (the seeded one in
//! [`crate::generator`] and the `arbitrary`-driven one in [`crate::structured`]). A generator
//! builds a tree of [`Item`]s; the [`Emitter`] turns it into instructions and fills in every jump
//! and call offset once its target is known.

use bpfx_bytecode::{AluOp, CallTarget, Cond, Imm64, Op, Operand, Reg, Width};

/// The loop counter register of [`Item::Loop`]; generators never write it elsewhere.
pub(crate) const COUNTER: Reg = Reg::R8;

pub(crate) fn mov64(dst: Reg, src: Operand) -> Op {
    Op::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src,
    }
}

pub(crate) fn add64(dst: Reg, imm: i32) -> Op {
    Op::Alu {
        width: Width::W64,
        op: AluOp::Add,
        dst,
        src: Operand::Imm(imm),
    }
}

/// A piece of a function, before jump offsets are known.
#[derive(Debug)]
pub(crate) enum Item {
    /// Straight-line instructions.
    Ops(Vec<Op>),
    /// A forward jump (offset filled in) over `body`.
    Skip { jump: Op, body: Vec<Item> },
    /// `mov r8, count; body; add r8, -1; jne r8, 0, <body start>`.
    Loop { count: i32, body: Vec<Item> },
    /// `body; <jump back to the start of body>`, with `jump` a `ja` or any branch: a loop only
    /// the budget (or the branch) ends.
    Back { jump: Op, body: Vec<Item> },
    /// `call local` to function `n`.
    Call(usize),
    /// `lddw dst, func(n)`.
    FuncAddr(Reg, usize),
}

/// Lays items out as instructions, filling in jump offsets once their targets are known.
#[derive(Default)]
pub(crate) struct Emitter {
    pub(crate) ops: Vec<Op>,
    /// The pc of the next instruction.
    pub(crate) pc: u32,
    /// (index in `ops`, pc, function) of each call and function address to patch.
    calls: Vec<(usize, u32, usize)>,
}

impl Emitter {
    pub(crate) fn push(&mut self, op: Op) {
        self.pc += op.slots();
        self.ops.push(op);
    }

    /// A whole function: `items`, then `exit`.
    pub(crate) fn function(&mut self, items: &[Item]) {
        self.items(items);
        self.push(Op::Exit);
    }

    pub(crate) fn items(&mut self, items: &[Item]) {
        for item in items {
            match item {
                Item::Ops(ops) => ops.iter().for_each(|op| self.push(*op)),
                Item::Skip { jump, body } => {
                    let (at, from) = (self.ops.len(), self.pc);
                    self.push(*jump);
                    self.items(body);
                    self.ops[at] = with_offset(*jump, (self.pc - from - 1) as i32);
                }
                Item::Loop { count, body } => {
                    self.push(mov64(COUNTER, Operand::Imm(*count)));
                    let start = self.pc;
                    self.items(body);
                    self.push(add64(COUNTER, -1));
                    let off = start as i32 - self.pc as i32 - 1;
                    self.push(Op::Branch {
                        width: Width::W64,
                        cond: Cond::Ne,
                        lhs: COUNTER,
                        rhs: Operand::Imm(0),
                        off: off as i16,
                    });
                }
                Item::Back { jump, body } => {
                    let start = self.pc;
                    self.items(body);
                    let off = start as i32 - self.pc as i32 - 1;
                    self.push(with_offset(*jump, off));
                }
                Item::Call(k) => {
                    self.calls.push((self.ops.len(), self.pc, *k));
                    self.push(Op::Call(CallTarget::Local { off: 0 }));
                }
                Item::FuncAddr(dst, k) => {
                    self.calls.push((self.ops.len(), self.pc, *k));
                    self.push(Op::LoadImm64 {
                        dst: *dst,
                        value: Imm64::Func { off: 0 },
                    });
                }
            }
        }
    }

    /// The instructions, with calls pointed at the functions starting at `starts`.
    pub(crate) fn finish(mut self, starts: &[u32]) -> Vec<Op> {
        for &(at, pc, k) in &self.calls {
            let off = starts[k] as i32 - pc as i32 - 1;
            self.ops[at] = match self.ops[at] {
                Op::LoadImm64 { dst, .. } => Op::LoadImm64 {
                    dst,
                    value: Imm64::Func { off },
                },
                _ => Op::Call(CallTarget::Local { off }),
            };
        }
        self.ops
    }
}

pub(crate) fn with_offset(jump: Op, off: i32) -> Op {
    match jump {
        Op::Ja { long, .. } => Op::Ja { off, long },
        Op::MayGoto { .. } => Op::MayGoto { off: off as i16 },
        Op::Branch {
            width,
            cond,
            lhs,
            rhs,
            ..
        } => Op::Branch {
            width,
            cond,
            lhs,
            rhs,
            off: off as i16,
        },
        other => other,
    }
}
